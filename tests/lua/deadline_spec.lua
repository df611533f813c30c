-- deadline_spec.lua — with_deadline / with_timeout: firing, never early, the
-- parent's earlier deadline winning, immediate and infinite deadlines.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
local H = require "helper"
local ctx = H.ctx
local bg = ctx.background()

describe("deadlines", function()
  it("with_timeout fires with deadline_exceeded, never early", function()
    local t0 = ctx.now()
    local c, cancel = ctx.with_timeout(bg, 0.05)
    assert.is_false(c:done())
    assert.is_true(c:remaining() > 0 and c:remaining() <= 0.05)
    assert.is_true(math.abs(c:deadline() - (t0 + 0.05)) < 0.01)
    assert.is_true(c:wait())
    assert.is_true(ctx.now() - t0 >= 0.049)
    assert.equal(ctx.deadline_exceeded, c:err())
    assert.equal(ctx.deadline_exceeded, c:cause())
    assert.equal(0, c:remaining())
    cancel()
    assert.equal(ctx.deadline_exceeded, c:err())
  end)

  it("remaining() is 0 once passed, for any deadline in the past", function()
    -- a deadline at the far end used to give about 9.2e9 (signed overflow)
    for _, when in ipairs { -math.huge, math.mininteger, -1e308, -1e18, 0, ctx.now() - 1 } do
      local c = ctx.with_deadline(bg, when)
      assert.equal(0, c:remaining(), tostring(when))
      assert.is_true(c:done())
    end
    for _, secs in ipairs { -math.huge, math.mininteger, -1e308, 0 } do
      assert.equal(0, (ctx.with_timeout(bg, secs)):remaining(), tostring(secs))
    end
  end)

  it("with_deadline uses the ctx.now() scale", function()
    local c = ctx.with_deadline(bg, ctx.now() + 0.03)
    assert.matches("^context%.Background%.WithDeadline%(", tostring(c))
    assert.is_false(c:done())
    assert.is_true(c:wait(1))
    assert.equal(ctx.deadline_exceeded, c:err())
  end)

  it("cancel before the deadline records canceled", function()
    local c, cancel = ctx.with_timeout(bg, 1)
    cancel()
    assert.equal(ctx.canceled, c:err())
  end)

  it("a timeout of 0 or less, a deadline in the past: done at creation", function()
    for _, c in ipairs {
      ctx.with_timeout(bg, 0), ctx.with_timeout(bg, -1),
      ctx.with_deadline(bg, ctx.now() - 1), (ctx.with_deadline(bg, -math.huge)),
    } do
      assert.is_true(c:done())
      assert.equal(ctx.deadline_exceeded, c:err())
    end
  end)

  it("a later deadline than the parent's is a plain WithCancel child", function()
    local p = ctx.with_timeout(bg, 0.05)
    local c, cancel = ctx.with_timeout(p, 10)
    assert.equal(p:deadline(), c:deadline())
    assert.matches("%)%.WithCancel$", tostring(c))
    assert.is_true(c:wait(2))
    assert.equal(ctx.deadline_exceeded, c:err())
    cancel()
  end)

  it("an earlier deadline than the parent's is its own", function()
    local p, cp = ctx.with_timeout(bg, 10)
    local c = ctx.with_timeout(p, 0.02)
    assert.is_true(c:deadline() < p:deadline())
    assert.is_true(c:wait(2))
    assert.is_false(p:done())
    cp()
  end)

  it("an infinite timeout has no deadline", function()
    local c, cancel = ctx.with_timeout(bg, math.huge)
    assert.is_nil(c:deadline())
    assert.is_nil(c:remaining())
    assert.equal("context.Background.WithCancel", tostring(c))
    local d = ctx.with_deadline(bg, math.huge)
    assert.is_nil(d:deadline())
    cancel()
  end)

  it("a parent's deadline reaches children and their deadline", function()
    local p = ctx.with_timeout(bg, 0.03)
    local c = ctx.with_cancel(ctx.with_value(p, "k", "v"))
    assert.equal(p:deadline(), c:deadline())
    assert.is_true(c:wait(2))
    assert.equal(ctx.deadline_exceeded, c:err())
  end)

  it("wait with a timeout returns false when the context is still live", function()
    local c, cancel = ctx.with_cancel(bg)
    local t0 = ctx.now()
    assert.is_false(c:wait(0.05))
    assert.is_true(ctx.now() - t0 >= 0.049)
    assert.is_false(c:wait(0))
    assert.is_false(c:wait(-1))
    cancel()
    assert.is_true(c:wait(0))
  end)

  it("sleep returns true, or nil and the error when the context ends first", function()
    local t0 = ctx.now()
    assert.is_true(ctx.sleep(bg, 0.02))
    assert.is_true(ctx.now() - t0 >= 0.019)
    local c = ctx.with_timeout(bg, 0.02)
    t0 = ctx.now()
    local ok, err = ctx.sleep(c, 5)
    assert.is_nil(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.is_true(ctx.now() - t0 < 1)
    ok, err = ctx.sleep(c, 5)  -- already done: at once
    assert.is_nil(ok)
    assert.equal(ctx.deadline_exceeded, err)
  end)

  it("many deadlines fire in order, none early", function()
    local cs = {}
    local t0 = ctx.now()
    for i = 1, 200 do cs[i] = ctx.with_timeout(bg, (i % 20) * 0.002) end
    for i = 1, 200 do
      assert.is_true(cs[i]:wait(2))
      assert.is_true(ctx.now() >= cs[i]:deadline() - 1e-6)
    end
    assert.is_true(ctx.now() - t0 < 2)
  end)
end)
