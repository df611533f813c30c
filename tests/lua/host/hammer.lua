-- hammer.lua — run by host.c in each of 4 lua_States at once: trees of
-- deadlines, cancels, values and after_funcs, checked as they end.
local ctx = require "ctx"
local id = ...
local bg = ctx.background()
local fired, expected = 0, 0
local t_end = ctx.now() + 1.5
local rounds = 0
while ctx.now() < t_end do
  rounds = rounds + 1
  local root <close>, cancel = ctx.with_cancel_cause(ctx.with_value(bg, "state", id))
  local leaves = {}
  for i = 1, 20 do
    local mid = ctx.with_timeout(root, (i % 5) * 0.001)
    for j = 1, 5 do
      local leaf = ctx.with_timeout_cause(ctx.with_value(mid, j, i), (j % 3) * 0.002, "slow")
      leaves[#leaves + 1] = leaf
      ctx.after_func(leaf, function() fired = fired + 1 end)
      expected = expected + 1
    end
  end
  -- a few stopped ones must never fire
  local stop = ctx.after_func(root, function() error("stopped callback ran") end)
  assert(stop() == true)
  leaves[1]:wait(0.01)
  -- a busy loop stopped by its deadline, fired from the timer thread
  local ok, err = ctx.run(ctx.with_timeout(root, 0.001), function() while true do end end)
  assert(ok == false and err == ctx.deadline_exceeded)
  if rounds % 2 == 0 then cancel("round over") else ctx.sleep(bg, 0.006) end
  for _, leaf in ipairs(leaves) do
    assert(leaf:wait(1), "leaf never ended")
    assert(leaf:value("state") == id)
    local e = leaf:err()
    assert(e == ctx.canceled or e == ctx.deadline_exceeded)
  end
  if rounds % 50 == 0 then collectgarbage() end
end
ctx.now()
assert(fired == expected, string.format("%d of %d callbacks ran", fired, expected))
-- leave some work pending for lua_close
for _ = 1, 50 do
  ctx.after_func(ctx.with_timeout(bg, 0.001), function() end)
end
return string.format("%d rounds, %d callbacks", rounds, fired)
