-- leaks.lua — run by host.c under valgrind: every kind of context, cause,
-- after_func and run, some left pending when the state closes; nothing may leak.
local ctx = require "ctx"
local bg = ctx.background()
for i = 1, 2000 do
  local p, cancel = ctx.with_cancel_cause(ctx.with_value(bg, {}, i))
  local t = ctx.with_timeout_cause(p, (i % 3) * 0.0005, "slow")
  ctx.after_func(t, function() end)
  local stop = ctx.after_func(p, function() end)
  if i % 2 == 0 then stop() end
  if i % 3 == 0 then cancel({}) end
  tostring(t)
  t:value("x")
end
collectgarbage()
print(ctx.run(ctx.with_timeout(bg, 0.05), function() local co = coroutine.wrap(function() while true do end end) co() end))
print(ctx.execute(ctx.with_timeout(bg, 0.1), "sleep 5"))
ctx.after_func(ctx.with_timeout(bg, 0.01), function() end)
ctx.sleep(bg, 0.05)
local keep = ctx.with_timeout(bg, 0.001)
ctx.after_func(keep, function() end)
return "ok"
