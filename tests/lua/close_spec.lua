-- close_spec.lua — contexts with a cancel function are to-be-closed values.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
local H = require "helper"
local ctx = H.ctx
local bg = ctx.background()

describe("<close>", function()
  it("cancels at scope exit", function()
    local saved
    do
      local c <close>, cancel = ctx.with_timeout(bg, 2.5)
      assert.is_function(cancel)
      saved = c
      assert.is_false(c:done())
    end
    assert.equal(ctx.canceled, saved:err())
  end)

  it("cancels when the scope exits by error, and the error passes through", function()
    local saved
    local ok, err = pcall(function()
      local c <close> = ctx.with_cancel(bg)
      saved = c
      error("oops", 0)
    end)
    assert.is_false(ok)
    assert.equal("oops", err)
    assert.equal(ctx.canceled, saved:err())
  end)

  it("cancels on return, and the context stays usable", function()
    local function make()
      local c <close> = ctx.with_cancel_cause(bg)
      return c
    end
    local c = make()
    assert.equal(ctx.canceled, c:err())
    assert.equal(ctx.canceled, c:cause())
  end)

  it("runs after_func callbacks at scope exit", function()
    local ran = false
    do
      local c <close> = ctx.with_deadline(bg, ctx.now() + 60)
      ctx.after_func(c, function() ran = true end)
    end
    assert.is_true(ran)
  end)

  it("children end with the closed parent; a deadline already hit stays", function()
    local kid, t
    do
      local c <close> = ctx.with_cancel(bg)
      kid = ctx.with_value(ctx.with_cancel(c), "k", "v")
      t = ctx.with_timeout(c, 0)
    end
    assert.equal(ctx.canceled, kid:err())
    assert.equal(ctx.deadline_exceeded, t:err())
  end)

  it("is harmless on contexts without a cancel function", function()
    local p, cancel = ctx.with_cancel(bg)
    do
      local v <close> = ctx.with_value(p, "k", 1)
      local w <close> = ctx.without_cancel(p)
      local b <close> = ctx.background()
    end
    assert.is_false(p:done())
    cancel()
  end)
end)
