-- run_spec.lua — ctx.run stops pure Lua when its context ends: plain loops,
-- pcall-wrapped loops, coroutines, nested runs, hooks of other tools.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
local H = require "helper"
local ctx = H.ctx
local bg = ctx.background()

describe("ctx.run", function()
  it("is pcall when the context stays live", function()
    assert.same({ true, 3, "x" }, { ctx.run(bg, function(a, b) return a + b, "x" end, 1, 2) })
    local ok, err = ctx.run(bg, function() error("e1", 0) end)
    assert.is_false(ok)
    assert.equal("e1", err)
    local t = {}
    ok, err = ctx.run(bg, function() error(t) end)
    assert.equal(t, err)
    assert.same({ true }, { ctx.run(bg, function() end) })
  end)

  it("stops a busy loop with c:err()", function()
    local c = ctx.with_timeout(bg, 0.05)
    local t0 = ctx.now()
    local ok, err = ctx.run(c, function() while true do end end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.is_true(ctx.now() - t0 < 1)
  end)

  it("stops on cancel from an after_func of another context", function()
    local c, cancel = ctx.with_cancel(bg)
    local trigger = ctx.with_timeout(bg, 0.02)
    ctx.after_func(trigger, cancel)  -- delivered by the run's own checks
    local ok, err = ctx.run(c, function() local n = 0 while true do n = n + 1 end end)
    assert.is_false(ok)
    assert.equal(ctx.canceled, err)
  end)

  it("a pcall inside sees the same value and cannot swallow the stop", function()
    local c = ctx.with_timeout(bg, 0.05)
    local seen, after = {}, 0
    local ok, err = ctx.run(c, function()
      while true do
        local ok2, e = pcall(function() while true do end end)
        seen[#seen + 1] = e
        after = after + 1   -- never reached: the stop is raised again
        local _ = ok2
      end
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.equal(0, after)
    local ok3, err3 = ctx.run(ctx.with_timeout(bg, 0.02), function()
      while true do xpcall(function() while true do end end, function(e) return e end) end
    end)
    assert.is_false(ok3)
    assert.equal(ctx.deadline_exceeded, err3)
  end)

  it("stops coroutines created inside the run", function()
    local c = ctx.with_timeout(bg, 0.05)
    local ok, err = ctx.run(c, function()
      local co = coroutine.wrap(function() while true do end end)
      co()
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)

    c = ctx.with_timeout(bg, 0.05)
    local co, went_on
    ok, err = ctx.run(c, function()
      co = coroutine.create(function() while true do end end)
      local r = { coroutine.resume(co) }  -- resume catches it, then raises it again
      went_on = true
      return table.unpack(r)
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.equal("dead", coroutine.status(co))
    assert.is_nil(went_on)

    -- a coroutine inside a coroutine, the middle one busy once the inner yields
    c = ctx.with_timeout(bg, 0.05)
    ok, err = ctx.run(c, function()
      local outer = coroutine.wrap(function()
        local inner = coroutine.wrap(function() coroutine.yield() end)
        inner()
        while true do end
      end)
      outer()
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)

    -- busy loops with calls in them
    c = ctx.with_timeout(bg, 0.05)
    ok, err = ctx.run(c, function()
      local function f(x) return x + 1 end
      local n = 0
      while true do n = f(n) + #tostring(n) end
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)

    c = ctx.with_timeout(bg, 0.05)
    ok, err = ctx.run(c, function()
      local co = coroutine.wrap(function() while true do coroutine.yield() end end)
      while true do co() end
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
  end)

  it("<close> handlers still run", function()
    local c = ctx.with_timeout(bg, 0.03)
    local closed = {}
    local inner
    local ok, err = ctx.run(c, function()
      local a <close> = setmetatable({}, { __close = function(_, e)
        local s = 0
        for i = 1, 100 do s = s + i end   -- some Lua work of its own
        closed[#closed + 1] = { "a", e, s }
      end })
      local k <close>, _ = ctx.with_cancel(bg)
      inner = k
      while true do end
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.equal(1, #closed)
    assert.equal(ctx.deadline_exceeded, closed[1][2])
    assert.equal(5050, closed[1][3])
    assert.equal(ctx.canceled, inner:err())
  end)

  it("load's reader and coroutine.close cannot swallow the stop either", function()
    -- both run Lua protected: fn used to go on after them
    local went
    local ok, err = ctx.run(ctx.with_timeout(bg, 0.02), function()
      load(function() while true do end end)
      went = "load"
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.is_nil(went)
    ok, err = ctx.run(ctx.with_timeout(bg, 0.02), function()
      local co = coroutine.create(function()
        local _ <close> = setmetatable({}, { __close = function() while true do end end })
        coroutine.yield()
      end)
      coroutine.resume(co)
      coroutine.close(co)
      went = "close"
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.is_nil(went)
    assert.is_function(ctx.run(bg, load, "return 1") and load("return 1"))
  end)

  it("a pcall that a <close> handler makes on the way out completes", function()
    -- a pcall returning true caught nothing: it used to get the stop raised
    -- again as it returned, cutting the handler short
    local trace = {}
    local ok, err = ctx.run(ctx.with_timeout(bg, 0.02), function()
      local _ <close> = setmetatable({}, { __close = function(_, e)
        trace[#trace + 1] = e
        trace[#trace + 1] = select("#", pcall(function() return 1, 2 end))
        local co = coroutine.create(function() coroutine.yield() end)
        trace[#trace + 1] = coroutine.resume(co)
      end })
      while true do end
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.same({ ctx.deadline_exceeded, 3, true }, trace)
    -- one that catches the stop still raises it again
    local after
    ok, err = ctx.run(ctx.with_timeout(bg, 0.02), function()
      local _ <close> = setmetatable({}, { __close = function() end })
      pcall(function() while true do end end)
      after = true
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.is_nil(after)
  end)

  it("returns at once on a context already done, without running fn", function()
    local c, cancel = ctx.with_cancel(bg)
    cancel()
    local ran = false
    local ok, err = ctx.run(c, function() ran = true end)
    assert.is_false(ok)
    assert.equal(ctx.canceled, err)
    assert.is_false(ran)
  end)

  it("nothing fires after run returns, and the hook is removed", function()
    local c = ctx.with_timeout(bg, 0.03)
    local co
    assert.is_true(ctx.run(c, function()
      co = coroutine.wrap(function() while true do coroutine.yield() end end)
      co()
    end))
    assert.is_nil(debug.gethook())
    assert.is_true(c:wait(1))
    local s = 0
    for i = 1, 1e6 do s = s + i end     -- would be interrupted if anything fired
    co()                                 -- a coroutine made in the run, resumed later
    for i = 1, 1e6 do s = s + i end
    assert.is_true(s > 0)
    local ok = ctx.run(ctx.with_timeout(bg, 0.01), function() return 1 end)
    assert.is_true(ok)
    ctx.sleep(bg, 0.03)
    for i = 1, 1e6 do s = s + i end
  end)

  it("nested runs with different contexts", function()
    local outer = ctx.with_timeout(bg, 5)
    local inner = ctx.with_timeout(bg, 0.03)
    local got
    local ok, err = ctx.run(outer, function()
      got = { ctx.run(inner, function() while true do end end) }
      return "outer went on"
    end)
    assert.is_true(ok)
    assert.equal("outer went on", err)
    assert.same({ false, ctx.deadline_exceeded }, got)

    -- the outer one ends: the inner run passes the stop on
    outer = ctx.with_timeout(bg, 0.03)
    inner = ctx.with_timeout(bg, 5)
    local after_inner = false
    ok, err = ctx.run(outer, function()
      ctx.run(inner, function() while true do end end)
      after_inner = true
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.is_false(after_inner)
  end)

  it("ctx.sleep and c:wait inside a run wake when the run's context ends", function()
    local c, cancel = ctx.with_cancel(bg)
    ctx.after_func(ctx.with_timeout(bg, 0.03), cancel)
    local t0 = ctx.now()
    local ok, err = ctx.run(c, function() ctx.sleep(bg, 10) end)
    assert.is_false(ok)
    assert.equal(ctx.canceled, err)
    assert.is_true(ctx.now() - t0 < 2)
    c = ctx.with_timeout(bg, 0.03)
    ok, err = ctx.run(c, function() ctx.todo():wait() end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
  end)

  it("keeps another tool's hook and restores it", function()
    local lines = 0
    local function hook() lines = lines + 1 end
    debug.sethook(hook, "l")
    local ok, err = ctx.run(ctx.with_timeout(bg, 0.03), function()
      local co = coroutine.wrap(function() while true do end end)
      co()
    end)
    local h, mask = debug.gethook()
    debug.sethook()
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.equal(hook, h)
    assert.equal("l", mask)
    assert.is_true(lines > 3)
  end)

  it("stops every time under another tool's line hook (a coverage tool's)", function()
    -- a stop signal landing inside Lua's hook count decrement used to leave
    -- the loop running forever: a child process, so a hang is a failure
    local out, status = H.run_lua([[
      local ctx = require "ctx"
      local bg = ctx.background()
      debug.sethook(function() end, "l")
      for _ = 1, 500 do
        local ok, err = ctx.run(ctx.with_timeout(bg, 0.002), function() while true do end end)
        assert(ok == false and err == ctx.deadline_exceeded)
        ok, err = ctx.run(ctx.with_timeout(bg, 0.002), function()
          coroutine.wrap(function() while true do end end)()
        end)
        assert(ok == false and err == ctx.deadline_exceeded)
      end
      debug.sethook()
      print("stopped")
    ]], nil, 30)
    assert.equal(0, status, out)
    assert.equal("stopped\n", out)
  end)

  it("checks its arguments", function()
    assert.has_error(function() ctx.run(nil, print) end,
      "bad argument #1 to 'run' (ctx.Context expected, got nil)")
    assert.has_error(function() ctx.run(bg, 1) end,
      "bad argument #2 to 'run' (function expected, got number)")
  end)
end)
