-- blocked.lua — run by host.c with LCTX_HOST_BLOCK=1 (its threads block every
-- signal, as some hosts' worker threads do): ctx.run falls back to its count
-- hook by itself and still stops busy loops, coroutines included.
local ctx = require "ctx"
local bg = ctx.background()
local how = ctx._mode()
assert(how == "count", "expected the count-hook fallback, got " .. tostring(how))
for _ = 1, 20 do
  local ok, err = ctx.run(ctx.with_timeout(bg, 0.01), function() while true do end end)
  assert(ok == false and err == ctx.deadline_exceeded)
  ok, err = ctx.run(ctx.with_timeout(bg, 0.01), function()
    local tasks = {}
    for i = 1, 20 do
      tasks[i] = coroutine.wrap(function()
        coroutine.yield()
        if i == 1 then while true do end end
        while true do coroutine.yield() end
      end)
    end
    while true do for i = 1, 20 do tasks[i]() end end
  end)
  assert(ok == false and err == ctx.deadline_exceeded)
end
return "stopped with every signal blocked (" .. how .. ")"
