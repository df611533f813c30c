-- value_spec.lua — with_value / c:value: innermost binding wins, nil shadows,
-- keys compare with rawequal, nil and NaN keys raise.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
local H = require "helper"
local ctx = H.ctx
local bg = ctx.background()

describe("values", function()
  it("walks to the root and returns the innermost binding", function()
    local c1 = ctx.with_value(bg, "k1", "c1k1")
    local c2 = ctx.with_value(c1, "k2", "c2k2")
    local c3 = ctx.with_value(c2, "k1", "c3k1")
    local c4, cancel = ctx.with_cancel(c3)
    assert.equal("c1k1", c1:value("k1"))
    assert.is_nil(c1:value("k2"))
    assert.equal("c2k2", c2:value("k2"))
    assert.equal("c1k1", c2:value("k1"))
    assert.equal("c3k1", c4:value("k1"))
    assert.equal("c2k2", c4:value("k2"))
    assert.is_nil(c4:value("k3"))
    assert.equal("context.Background.WithValue(k1, c1k1).WithValue(k2, c2k2)" ..
      ".WithValue(k1, c3k1).WithCancel", tostring(c4))
    cancel()
    assert.equal("c3k1", c4:value("k1"))  -- values survive cancellation
  end)

  it("a binding to nil shadows outer ones", function()
    local c = ctx.with_value(ctx.with_value(bg, "k", "outer"), "k", nil)
    assert.is_nil(c:value("k"))
    assert.equal("context.Background.WithValue(k, outer).WithValue(k, <nil>)", tostring(c))
  end)

  it("keys compare with rawequal", function()
    local t1, t2 = {}, {}
    local eq = setmetatable({}, { __eq = function() return true end })
    local long = string.rep("x", 100)
    local c = bg
    c = ctx.with_value(c, t1, "t1")
    c = ctx.with_value(c, 1, "one")
    c = ctx.with_value(c, 2.5, "two and a half")
    c = ctx.with_value(c, true, "true")
    c = ctx.with_value(c, false, "false")
    c = ctx.with_value(c, long, "long")
    c = ctx.with_value(c, print, "print")
    c = ctx.with_value(c, eq, "eq")
    c = ctx.with_value(c, bg, "bg")
    assert.equal("t1", c:value(t1))
    assert.is_nil(c:value(t2))
    assert.equal("one", c:value(1))
    assert.equal("one", c:value(1.0))      -- rawequal(1, 1.0)
    assert.is_nil(c:value("1"))
    assert.equal("two and a half", c:value(2.5))
    assert.equal("true", c:value(true))
    assert.equal("false", c:value(false))
    assert.equal("long", c:value(string.rep("x", 99) .. "x"))  -- not interned
    assert.is_nil(c:value(string.rep("x", 101)))
    assert.equal("print", c:value(print))
    assert.equal("eq", c:value(eq))
    assert.is_nil(c:value(setmetatable({}, getmetatable(eq))))  -- no __eq
    assert.equal("bg", c:value(ctx.background()))
    assert.is_nil(c:value(ctx.todo()))
    assert.is_nil(c:value(0))
    assert.is_nil(c:value(math.huge))
  end)

  it("integers and floats: exactly as rawequal", function()
    local c = ctx.with_value(bg, 0.0, "zero")
    assert.equal("zero", c:value(0))
    assert.equal("zero", c:value(-0.0))
    c = ctx.with_value(bg, math.maxinteger, "max")
    assert.equal("max", c:value(math.maxinteger))
    assert.is_nil(c:value(2.0^63))
    c = ctx.with_value(bg, 2^53, "p53")
    assert.equal("p53", c:value(math.tointeger(2^53)))
  end)

  it("nil and NaN keys raise", function()
    assert.has_error(function() ctx.with_value(bg, nil, 1) end,
      "bad argument #2 to 'with_value' (key must not be nil)")
    assert.has_error(function() ctx.with_value(bg) end,
      "bad argument #2 to 'with_value' (key must not be nil)")
    assert.has_error(function() ctx.with_value(bg, 0/0, 1) end,
      "bad argument #2 to 'with_value' (key must not be NaN)")
    assert.has_error(function() bg:value(nil) end,
      "bad argument #1 to 'value' (key must not be nil)")
    assert.has_error(function() bg:value(0/0) end,
      "bad argument #1 to 'value' (key must not be NaN)")
  end)

  it("keeps keys and values alive while the context lives", function()
    local weak = setmetatable({}, { __mode = "k" })
    local c = bg
    for i = 1, 50 do
      local k, v = { i }, { tostring(i) }
      weak[k], weak[v] = true, true
      c = ctx.with_value(c, k, v)
    end
    collectgarbage()
    collectgarbage()
    local n = 0
    for _ in pairs(weak) do n = n + 1 end
    assert.equal(100, n)  -- nothing collected: c holds all of them
    for k in pairs(weak) do
      if #k == 1 and type(k[1]) == "number" then assert.equal(tostring(k[1]), c:value(k)[1]) end
    end
    assert.is_truthy(tostring(c):match("WithValue%(table, table%)$"))
    c = nil
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(weak))
  end)

  it("value lookups are cheap to repeat at depth", function()
    local c = bg
    for i = 1, 10 do c = ctx.with_value(c, "k" .. i, i) end
    for _ = 1, 1000 do assert.equal(1, c:value("k1")) end
  end)
end)
