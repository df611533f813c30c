-- stops.lua — run under valgrind by make test-lua (lua5.4 itself, so signals
-- reach it): stops reaching coroutines made and freed in and between runs,
-- callbacks and <close> handlers; any read of a freed thread is an error.
local ctx = require "ctx"
local bg = ctx.background()
local live = ctx.with_cancel(bg)
for round = 1, 30 do
  collectgarbage()  -- frees the threads of the last round (and require's probe)
  local ok, err = ctx.run(ctx.with_timeout(bg, 0.005), function()
    local tasks = {}
    for i = 1, 20 do
      tasks[i] = coroutine.wrap(function()
        local _ <close> = setmetatable({}, { __close = function() ctx.sleep(live, 0.0001) end })
        coroutine.yield()
        if i == round % 20 + 1 then while true do end end
        while true do coroutine.yield() end
      end)
    end
    for i = 1, 10 do tasks[i] = nil end  -- some garbage in the middle of the run
    collectgarbage()
    ctx.after_func(ctx.with_timeout(bg, 0.001), function() coroutine.wrap(function() end)() end)
    while true do for i = 11, 20 do tasks[i]() end end
  end)
  assert(ok == false and err == ctx.deadline_exceeded, tostring(err))
end
print("stops: 30 rounds")
