-- after_func_spec.lua — Go's AfterFunc rules and how callbacks are delivered:
-- inside the cancel call, at the next call into ctx, inside a blocked wait.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
local H = require "helper"
local ctx = H.ctx
local bg = ctx.background()

describe("after_func rules", function()
  it("runs once after cancel; stop afterwards returns false", function()
    local c, cancel = ctx.with_cancel(bg)
    local n = 0
    local stop = ctx.after_func(c, function() n = n + 1 end)
    assert.equal(0, n)
    cancel()
    assert.equal(1, n)  -- inside the cancel call
    cancel()
    assert.equal(1, n)
    assert.is_false(stop())
    assert.is_false(stop())
  end)

  it("stop before cancel prevents it, once", function()
    local c, cancel = ctx.with_cancel(bg)
    local ran = false
    local stop = ctx.after_func(c, function() ran = true end)
    assert.equal(1, ctx._children(c))  -- a pending after_func counts as a child
    assert.is_true(stop())
    assert.equal(0, ctx._children(c))
    assert.is_false(stop())
    cancel()
    assert.is_false(ran)
  end)

  it("runs at once on a context already done", function()
    local c, cancel = ctx.with_cancel(bg)
    cancel()
    local ran = false
    local stop = ctx.after_func(c, function() ran = true end)
    assert.is_true(ran)
    assert.is_false(stop())
  end)

  it("is triggered by a parent's cancel and by a deadline", function()
    local p, cancel = ctx.with_cancel(bg)
    local got = {}
    ctx.after_func(ctx.with_value(ctx.with_cancel(p), "k", "v"), function() got[#got + 1] = "child" end)
    cancel()
    assert.same({ "child" }, got)
    local t = ctx.with_timeout(bg, 0.02)
    ctx.after_func(t, function() got[#got + 1] = "deadline" end)
    assert.is_true(t:wait(2))  -- a wait woken by the deadline runs it first
    assert.same({ "child", "deadline" }, got)
  end)

  it("never runs for a context that cannot end", function()
    local ran = false
    local w = ctx.without_cancel((ctx.with_timeout(bg, 0)))
    local stop = ctx.after_func(w, function() ran = true end)
    ctx.sleep(bg, 0.01)
    assert.is_false(ran)
    assert.is_true(stop())
    local stop2 = ctx.after_func(bg, function() ran = true end)
    assert.is_true(stop2())
  end)

  it("many callbacks on one context each run once", function()
    local c, cancel = ctx.with_cancel(bg)
    local count, stops = 0, {}
    for i = 1, 100 do stops[i] = ctx.after_func(c, function() count = count + 1 end) end
    for i = 1, 100, 2 do assert.is_true(stops[i]()) end
    cancel()
    assert.equal(50, count)
  end)

  it("a pending after_func keeps its context working after the handle is dropped", function()
    local p, cancel = ctx.with_cancel(bg)
    local ran = 0
    do
      local c = ctx.with_cancel(p)
      ctx.after_func(c, function() ran = ran + 1 end)
    end
    collectgarbage()
    collectgarbage()
    cancel()
    assert.equal(1, ran)
  end)

  it("a callback may call into ctx, cancel others and register more", function()
    local a, cancel_a = ctx.with_cancel(bg)
    local b, cancel_b = ctx.with_cancel(bg)
    local order = {}
    ctx.after_func(b, function() order[#order + 1] = "b" end)
    ctx.after_func(a, function()
      order[#order + 1] = "a"
      assert.is_true(a:done())
      cancel_b()
      ctx.after_func(a, function() order[#order + 1] = "a2" end)
    end)
    cancel_a()
    assert.same({ "a", "b", "a2" }, order)
  end)
end)

describe("callback delivery", function()
  -- (a machine stalled past the deadline before after_func was called runs
  -- the callback at once, inside it: then there is nothing to wait for)
  it("a deadline's callback waits for the state's next call into ctx", function()
    local c = ctx.with_timeout(bg, 0.02)
    local ran = false
    ctx.after_func(c, function() ran = true end)
    local in_time = not ran
    H.spin(0.2)           -- pure Lua: the timer thread must not touch this state
    if in_time then assert.is_false(ran) end
    assert.is_true(c:wait(5))
    ctx.now()             -- any call into ctx delivers it
    assert.is_true(ran)
  end)

  it("methods deliver too", function()
    local c = ctx.with_timeout(bg, 0.02)
    local ran = false
    ctx.after_func(c, function() ran = true end)
    local in_time = not ran
    H.spin(0.2)
    if in_time then assert.is_false(ran) end
    while ctx.now() < c:deadline() + 0.05 do H.spin(0.01) end
    assert.is_true(bg:done() == false and ran)
  end)

  it("a blocked wait on another context runs callbacks as they come", function()
    local c = ctx.with_timeout(bg, 0.02)
    local at
    ctx.after_func(c, function() at = ctx.now() end)
    local other, cancel = ctx.with_cancel(bg)
    local t0 = ctx.now()
    assert.is_false(other:wait(0.3))
    assert.is_number(at)
    assert.is_true(at - t0 < 0.2)
    assert.is_true(ctx.now() - t0 >= 0.29)
    cancel()
  end)

  it("ctx.sleep runs callbacks while it sleeps", function()
    local c = ctx.with_timeout(bg, 0.02)
    local at
    ctx.after_func(c, function() at = ctx.now() end)
    local t0 = ctx.now()
    assert.is_true(ctx.sleep(bg, 0.2))
    assert.is_true(at - t0 < 0.15)
  end)

  it("a wait woken by a deadline has run every callback of it, every time", function()
    for _ = 1, 200 do
      local p = ctx.with_timeout(bg, 0.0005)
      local n = 0
      for _ = 1, 5 do ctx.after_func(p, function() n = n + 1 end) end
      ctx.after_func(ctx.with_cancel(p), function() n = n + 1 end)
      assert.is_true(p:wait(2))
      assert.equal(6, n)
    end
  end)

  it("the call that first sees a context done has run its callbacks", function()
    -- the timer thread sets done before it hands the callbacks on: a loop
    -- polling c:done() used to see done with them still on their way
    local seen = { done = 0, err = 0, cause = 0, run = 0, execute = 0 }
    local probes = {
      done = function(c) return c:done() end,
      err = function(c) return c:err() ~= nil end,
      cause = function(c) return ctx.cause(c) ~= nil end,
      run = function(c) return ctx.run(c, function() end) == false end,
      execute = function(c) return ctx.execute(c, "true") == nil end,
    }
    for name, probe in pairs(probes) do
      for _ = 1, 100 do
        local c = ctx.with_timeout(bg, 0.0003)
        local n = 0
        for _ = 1, 3 do ctx.after_func(c, function() n = n + 1 end) end
        repeat until probe(c)
        if n == 3 then seen[name] = seen[name] + 1 end
      end
    end
    assert.same({ done = 100, err = 100, cause = 100, run = 100, execute = 100 }, seen)
  end)

  it("wait wakes at once when its context ends", function()
    local c = ctx.with_timeout(bg, 0.03)
    local t0 = ctx.now()
    assert.is_true(c:wait(5))
    local late = ctx.now() - c:deadline()
    assert.is_true(late >= -1e-6 and late < 0.05, "late by " .. late)
    assert.is_true(ctx.now() - t0 < 1)
  end)

  it("an error in a callback does not propagate and others still run", function()
    local c, cancel = ctx.with_cancel(bg)
    local ran = 0
    ctx.after_func(c, function() error("boom") end)
    ctx.after_func(c, function() ran = ran + 1 end)
    ctx.after_func(c, function() error({}) end)
    assert.has_no.errors(cancel)
    assert.equal(1, ran)
  end)

  it("an error in a callback is reported with warn", function()
    local out = H.run_lua([[
      local ctx = require "ctx"
      local c, cancel = ctx.with_cancel(ctx.background())
      ctx.after_func(c, function() error("boom in callback") end)
      cancel()
      print("after cancel")
    ]], "-W")
    assert.matches("ctx: error in after_func callback: .*boom in callback", out)
    assert.matches("after cancel", out)
  end)

  it("a ctx.Error raised by a callback is reported by its message", function()
    local out = H.run_lua([[
      local ctx = require "ctx"
      local c, cancel = ctx.with_cancel(ctx.background())
      ctx.after_func(c, function() error(ctx.deadline_exceeded) end)
      cancel()
    ]], "-W")
    assert.matches("ctx: error in after_func callback: context deadline exceeded", out)
  end)

  it("a callback delivered inside a stopped ctx.run runs to its end, then the run stops", function()
    -- the run's stop used to be raised inside the callback: cut short, and
    -- warned about as the callback's own error
    local out, status = H.run_lua([[
      local ctx = require "ctx"
      local bg = ctx.background()
      local c, cancel = ctx.with_cancel(bg)
      local steps = {}
      local ok, err = ctx.run(c, function()
        ctx.after_func(c, function()
          local function f(x) return x + 1 end
          local n = 0
          for _ = 1, 5000 do n = f(n) end  -- calls and instructions: the run's checks
          steps[#steps + 1] = n
          steps[#steps + 1] = tostring(ctx.sleep(bg, 0.001))  -- no stop in its waits either
          -- runs of its own stop as usual
          local iok, ierr = ctx.run(ctx.with_timeout(bg, 0.02), function() while true do end end)
          steps[#steps + 1] = tostring(iok) .. " " .. tostring(ierr)
          steps[#steps + 1] = select(2, ctx.run(bg, function() return "inner" end))
        end)
        cancel()  -- delivers the callback, then the stop
        while true do end
      end)
      print(ok, err, table.concat(steps, ","))
    ]], "-W", 20)
    assert.equal(0, status, out)
    assert.equal("false\tcontext canceled\t5000,true,false context deadline exceeded,inner\n", out)
  end)

  it("1,000 chained callbacks all run, iteratively", function()
    -- each registered the next from inside itself: nested calls used to stop
    -- after about 200 with "C stack overflow", the rest lost
    local out, status = H.run_lua([[
      local ctx = require "ctx"
      local bg = ctx.background()
      local done, cancel = ctx.with_cancel(bg)
      cancel()
      local n = 0
      local function step()
        n = n + 1
        if n < 1000 then ctx.after_func(done, step) end
      end
      ctx.after_func(done, step)
      print("registered:", n)   -- all ran inside the first after_func call
      -- a chain of cancels, each callback ending the next context
      local cs, cancels = {}, {}
      for i = 1, 1000 do cs[i], cancels[i] = ctx.with_cancel(bg) end
      local m = 0
      for i = 1, 1000 do
        ctx.after_func(cs[i], function()
          m = m + 1
          if i < 1000 then cancels[i + 1]() end
        end)
      end
      cancels[1]()
      print("canceled:", m)
    ]], "-W", 30)
    assert.equal(0, status, out)
    assert.equal("registered:\t1000\ncanceled:\t1000\n", out)
  end)

  it("a callback that yields is an error reported with warn", function()
    local out = H.run_lua([[
      local ctx = require "ctx"
      local c, cancel = ctx.with_cancel(ctx.background())
      local after
      ctx.after_func(c, function() coroutine.yield() after = true end)
      cancel()
      print("after:", after)
    ]], "-W")
    assert.matches("ctx: error in after_func callback: attempt to yield", out)
    assert.matches("after:\tnil", out)
  end)

  it("callbacks run on the registering state, in a coroutine too", function()
    local c, cancel = ctx.with_cancel(bg)
    local seen
    local co = coroutine.wrap(function()
      ctx.after_func(c, function() seen = coroutine.running() end)
      coroutine.yield()
      cancel()
    end)
    co()
    co()
    assert.is_not_nil(seen)
  end)

  it("callbacks pending when the state closes are dropped cleanly", function()
    local out, status = H.run_lua([[
      local ctx = require "ctx"
      local c = ctx.with_timeout(ctx.background(), 0.01)
      ctx.after_func(c, function() print("never") end)
      local p, cancel = ctx.with_cancel(ctx.background())
      for i = 1, 100 do ctx.after_func(ctx.with_timeout(p, 0.02), function() end) end
      print("closing")
    ]])
    assert.equal("closing\n", out)
    assert.equal(0, status)
  end)
end)
