-- context_spec.lua — the Go-derived cases: roots, propagation parent -> child,
-- children leaving their parent, strings, without_cancel.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
local H = require "helper"
local ctx = H.ctx
local bg = ctx.background()

describe("roots", function()
  it("background and todo are fixed values that never end", function()
    assert.equal(bg, ctx.background())
    assert.equal(ctx.todo(), ctx.todo())
    assert.not_equal(bg, ctx.todo())
    for _, c in ipairs { bg, ctx.todo() } do
      assert.is_false(c:done())
      assert.is_nil(c:err())
      assert.is_nil(c:cause())
      assert.is_nil(c:deadline())
      assert.is_nil(c:remaining())
      assert.is_nil(c:value("k"))
      assert.is_false(c:wait(0))
    end
    assert.equal("context.Background", tostring(bg))
    assert.equal("context.TODO", tostring(ctx.todo()))
  end)

  it("error values print as Go's", function()
    assert.equal("context canceled", tostring(ctx.canceled))
    assert.equal("context deadline exceeded", tostring(ctx.deadline_exceeded))
    assert.equal("err: context canceled", "err: " .. ctx.canceled)
    assert.not_equal(ctx.canceled, ctx.deadline_exceeded)
  end)

  it("now is epoch seconds", function()
    assert.is_true(math.abs(ctx.now() - os.time()) < 2)
    assert.equal("float", math.type(ctx.now()))
  end)
end)

describe("with_cancel", function()
  it("cancel ends the context and its descendants, not its parent", function()
    local c1, cancel1 = ctx.with_cancel(bg)
    assert.equal("context.Background.WithCancel", tostring(c1))
    local c2 = ctx.with_cancel(c1)
    local c3 = ctx.with_value(c2, "k", "v")
    local c4 = ctx.with_cancel(c3)
    local side, cancel_side = ctx.with_cancel(bg)
    for _, c in ipairs { c1, c2, c3, c4 } do
      assert.is_false(c:done())
      assert.is_nil(c:err())
    end
    cancel1()
    for _, c in ipairs { c1, c2, c3, c4 } do
      assert.is_true(c:done())
      assert.equal(ctx.canceled, c:err())
      assert.equal(ctx.canceled, c:cause())
    end
    assert.is_false(side:done())
    cancel_side()
  end)

  it("canceling a child leaves the parent alive and removes the child", function()
    local p, cancelp = ctx.with_cancel(bg)
    local c, cancel = ctx.with_cancel(p)
    local t, cancelt = ctx.with_timeout(p, 3600)
    assert.equal(2, ctx._children(p))
    cancel()
    assert.equal(1, ctx._children(p))
    cancelt()
    assert.equal(0, ctx._children(p))
    assert.is_false(p:done())
    assert.is_true(c:done() and t:done())
    cancelp()
  end)

  it("a parent's cancel leaves no children behind", function()
    local p, cancelp = ctx.with_cancel(bg)
    local kids = {}
    for i = 1, 10 do kids[i] = { ctx.with_cancel(p) } end
    assert.equal(10, ctx._children(p))
    cancelp()
    assert.equal(0, ctx._children(p))
    for i = 1, 10 do
      assert.equal(ctx.canceled, kids[i][1]:err())
      assert.equal(0, ctx._children(kids[i][1]))
    end
  end)

  it("cancel is idempotent and the first error stays", function()
    local c, cancel = ctx.with_timeout(bg, 0.02)
    cancel()
    cancel()
    assert.is_true(c:wait(0))
    ctx.sleep(bg, 0.05)
    assert.equal(ctx.canceled, c:err())
  end)

  it("a child of a done parent is done at creation with its error and cause", function()
    local p, cancelp = ctx.with_cancel_cause(bg)
    cancelp("why")
    local c = ctx.with_cancel(p)
    assert.is_true(c:done())
    assert.equal(ctx.canceled, c:err())
    assert.equal("why", c:cause())
    local t = ctx.with_timeout(p, 3600)
    assert.equal(ctx.canceled, t:err())
    assert.equal("why", ctx.cause(t))
  end)

  it("cancellation never flows upward", function()
    local p = ctx.with_cancel(bg)
    local _, cancel = ctx.with_cancel(p)
    cancel()
    assert.is_false(p:done())
  end)

  it("deep chains cancel and collect", function()
    local root, cancel = ctx.with_cancel(bg)
    local c = root
    for _ = 1, 100000 do c = ctx.with_cancel(c) end
    cancel()
    assert.is_true(c:done())
    c = nil
    collectgarbage()
    collectgarbage()
  end)
end)

describe("without_cancel", function()
  it("keeps values, drops deadline, done and cause", function()
    local p, cancel = ctx.with_timeout(ctx.with_value(bg, "k", 1), 0.01)
    local w = ctx.without_cancel(p)
    assert.equal(1, w:value("k"))
    assert.is_nil(w:deadline())
    cancel()
    assert.is_true(p:done())
    assert.is_false(w:done())
    assert.is_nil(w:err())
    assert.is_nil(w:cause())
    assert.is_false(w:wait(0.01))
    assert.matches("%.WithoutCancel$", tostring(w))
    local c, cc = ctx.with_cancel(w)
    assert.is_false(c:done())
    cc()
    assert.is_true(c:done())
  end)
end)
