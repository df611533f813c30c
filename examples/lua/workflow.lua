-- workflow.lua — the nightly-report job in Lua 5.4 with ctx: a value carried
-- through the steps, workers stopped together, a runaway loop and command killed.
local ctx = require "ctx"

local t0 = ctx.now()
local function log(step, msg)
  io.write(string.format("  [%6.3fs] %-10s %s\n", ctx.now() - t0, step, msg))
  io.flush()
end

-- fetch: three coroutine workers share a cancel-cause context; the first
-- failure cancels it, and the others see that at their next ctx call.
local function fetch_all(job)
  local c <close>, cancel = ctx.with_cancel_cause(job)
  local workers = {
    { name = "billing", steps = 2 },
    { name = "crm", steps = 4, fails = true },
    { name = "warehouse", steps = 400 },
  }
  for _, w in ipairs(workers) do
    w.co = coroutine.create(function()
      for _ = 1, w.steps do
        local ok, err = ctx.sleep(c, 0.05)  -- a slow network read
        if not ok then
          return string.format("stopped early (%s; cause: %s)", tostring(err), tostring(ctx.cause(c)))
        end
        coroutine.yield()
      end
      if w.fails then error(w.name .. ": connection reset by peer", 0) end
      return "120 rows for " .. c:value("request_id")
    end)
  end
  local running = #workers
  while running > 0 do
    for _, w in ipairs(workers) do
      if coroutine.status(w.co) == "suspended" then
        local ok, res = coroutine.resume(w.co)
        if not ok then
          log("fetch", w.name .. ": FAILED: " .. res .. "; canceling its siblings")
          cancel(res)
          running = running - 1
        elseif coroutine.status(w.co) == "dead" then
          log("fetch", w.name .. ": " .. res)
          running = running - 1
        end
      end
    end
  end
end

-- transform: pure Lua that never checks, stopped by its own timeout; the
-- pcall inside cannot swallow the stop.
local function transform(job)
  local step <close> = ctx.with_timeout(job, 0.3)
  local n = 0
  local ok, err = ctx.run(step, function()
    while true do
      pcall(function() while true do n = n + 1 end end)
    end
  end)
  log("transform", string.format("ctx.run -> %s, %s after %d iterations", tostring(ok), tostring(err), n))
end

-- shell out: the command's process group is terminated when time is up.
local function shell_out(job)
  local step <close> = ctx.with_timeout(job, 0.5)
  local t = ctx.now()
  local ok, err = ctx.execute(step, "sleep 30", 0.2)
  log("shell", string.format("`sleep 30` -> %s, %s after %.2fs", tostring(ok), tostring(err), ctx.now() - t))
end

print("== Lua: a nightly-report job")
local root = ctx.with_value(ctx.background(), "request_id", "req-42")
local job <close>, cancel_job = ctx.with_timeout(root, 10)
ctx.after_func(job, function() log("publish", "job context ended: lock file released") end)
log("start", tostring(job))
fetch_all(job)
transform(job)
shell_out(job)
log("publish", "report for " .. job:value("request_id") .. " published")
cancel_job()  -- runs the after_func here, in this call
