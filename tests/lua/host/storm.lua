-- storm.lua — run by host.c many times over in each of 4 threads (a new state
-- each round): registrations left pending on deadlines that fire while the
-- state closes, on the timer thread and the core's pool, their stop handles
-- collected first (only the registrations own them then).
local ctx = require "ctx"
local id, round = ...
local bg = ctx.background()
local keep = {}
for i = 1, 200 do
  local when = (i % 10) * 0.0001  -- now, or within 1 ms: as lua_close runs
  local c = ctx.with_timeout_cause(ctx.with_value(bg, "k", i), when, { id, i })
  ctx.after_func(c, function() keep[#keep + 1] = i end)
  local stop = ctx.after_func(c, function() error("stopped one ran") end)
  if i % 3 == 0 then stop() end
  if i % 25 == 0 then keep[#keep + 1] = stop end       -- a few handles outlive the state
  local p, cancel = ctx.with_cancel_cause(c)
  if i % 4 == 0 then cancel({ "cause", i }) end
  if i % 7 == 0 then keep[#keep + 1] = p end
end
if round % 3 == 0 then
  ctx.run(ctx.with_timeout(bg, 0.0005), function() while true do end end)
end
collectgarbage()  -- the stop handles go: the registrations are their last owners
return string.format("%d rounds closed", round + 1)
