-- cause_spec.lua — Go's TestCause table, and cause values of any Lua type.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
local H = require "helper"
local ctx = H.ctx
local bg = ctx.background()
local canceled, dl = ctx.canceled, ctx.deadline_exceeded

local parent_cause, child_cause = "parentCause", "childCause"
local finished_early, too_slow = { "finishedEarly" }, setmetatable({}, { __tostring = function() return "tooSlow" end })

local cases = {
  { "Background", function() return bg end, nil, nil },
  { "TODO", function() return ctx.todo() end, nil, nil },
  { "WithCancel", function()
      local c, cancel = ctx.with_cancel(bg); cancel(); return c end, canceled, canceled },
  { "WithCancelCause", function()
      local c, cancel = ctx.with_cancel_cause(bg); cancel(finished_early); return c end,
    canceled, finished_early },
  { "WithCancelCause nil", function()
      local c, cancel = ctx.with_cancel_cause(bg); cancel(nil); return c end, canceled, canceled },
  { "WithCancelCause: parent cause before child", function()
      local p, cancelp = ctx.with_cancel_cause(bg)
      local c, cancel = ctx.with_cancel_cause(p)
      cancelp(parent_cause); cancel(child_cause); return c end, canceled, parent_cause },
  { "WithCancelCause: parent cause after child", function()
      local p, cancelp = ctx.with_cancel_cause(bg)
      local c, cancel = ctx.with_cancel_cause(p)
      cancel(child_cause); cancelp(parent_cause); return c end, canceled, child_cause },
  { "WithCancelCause: parent cause before nil", function()
      local p, cancelp = ctx.with_cancel_cause(bg)
      local c = ctx.with_cancel_cause(p)
      cancelp(parent_cause); return c end, canceled, parent_cause },
  { "WithCancelCause: parent cause after nil", function()
      local p, cancelp = ctx.with_cancel_cause(bg)
      local c, cancel = ctx.with_cancel_cause(p)
      cancel(); cancelp(parent_cause); return c end, canceled, canceled },
  { "WithCancelCause: child cause after nil", function()
      local c, cancel = ctx.with_cancel_cause(bg)
      cancel(nil); cancel(child_cause); return c end, canceled, canceled },
  { "WithCancelCause: child cause before nil", function()
      local c, cancel = ctx.with_cancel_cause(bg)
      cancel(child_cause); cancel(nil); return c end, canceled, child_cause },
  { "WithTimeout", function() return (ctx.with_timeout(bg, 0)) end, dl, dl },
  { "WithTimeout canceled", function()
      local c, cancel = ctx.with_timeout(bg, 3600); cancel(); return c end, canceled, canceled },
  { "WithTimeoutCause", function() return (ctx.with_timeout_cause(bg, 0, too_slow)) end, dl, too_slow },
  { "WithTimeoutCause canceled", function()
      local c, cancel = ctx.with_timeout_cause(bg, 3600, too_slow)
      cancel(finished_early)  -- this cancel function takes no cause
      return c end, canceled, canceled },
  { "WithTimeoutCause stacked", function()
      local p, cancel = ctx.with_cancel_cause(bg)
      local c = ctx.with_timeout_cause(p, 0, too_slow)
      cancel(finished_early); return c end, dl, too_slow },
  { "WithTimeoutCause stacked canceled", function()
      local p, cancel = ctx.with_cancel_cause(bg)
      cancel(finished_early)
      return (ctx.with_timeout_cause(p, 0, too_slow)) end, canceled, finished_early },
  { "WithDeadlineCause", function()
      return (ctx.with_deadline_cause(bg, ctx.now() - 1, too_slow)) end, dl, too_slow },
  { "WithoutCancel", function() return ctx.without_cancel(bg) end, nil, nil },
  { "WithoutCancel canceled", function()
      local p, cancel = ctx.with_cancel_cause(bg)
      cancel(finished_early); return ctx.without_cancel(p) end, nil, nil },
  { "WithoutCancel timeout", function()
      return ctx.without_cancel((ctx.with_timeout_cause(bg, 0, too_slow))) end, nil, nil },
}

describe("Cause table", function()
  for _, case in ipairs(cases) do
    it(case[1], function()
      local c = case[2]()
      assert.equal(case[3], c:err())
      assert.equal(case[4], c:cause())
      assert.equal(case[4], ctx.cause(c))
    end)
  end
end)

describe("causes", function()
  it("fires the deadline cause from the timer thread", function()
    local c = ctx.with_timeout_cause(bg, 0.02, too_slow)
    assert.is_nil(c:cause())
    assert.is_true(c:wait(2))
    assert.equal(dl, c:err())
    assert.equal(too_slow, c:cause())
    local d = ctx.with_value(ctx.with_cancel(c), "k", 1)
    assert.equal(too_slow, ctx.cause(d))
  end)

  it("a nil deadline cause is the plain error", function()
    local c = ctx.with_timeout_cause(bg, 0, nil)
    assert.equal(dl, c:cause())
  end)

  it("causes of every type come back as the same value", function()
    local co = coroutine.create(function() end)
    for _, v in ipairs { 0, 1.5, "s", false, true, {}, print, co, io.stdout, ctx.canceled } do
      local c, cancel = ctx.with_cancel_cause(bg)
      local kid = ctx.with_cancel(c)
      cancel(v)
      assert.equal(v, c:cause())
      assert.equal(v, kid:cause())
    end
  end)

  it("causes are released when the contexts go", function()
    local weak = setmetatable({}, { __mode = "v" })
    do
      local c, cancel = ctx.with_cancel_cause(bg)
      local kid = ctx.with_cancel(c)
      weak[1] = {}
      cancel(weak[1])
      assert.equal(weak[1], kid:cause())
      local t = ctx.with_timeout_cause(bg, 3600, {})
      weak[2] = t
    end
    for _ = 1, 4 do collectgarbage() ctx.now() end
    assert.is_nil(weak[1])
    assert.is_nil(weak[2])
  end)
end)
