-- gc_spec.lua — dropped contexts are collected and leave their parent; memory
-- stays flat over 800k of them.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
local H = require "helper"
local ctx = H.ctx
local bg = ctx.background()

local function full_gc()
  for _ = 1, 3 do collectgarbage() end
  ctx.now()  -- drops the releases queued by finalizers
end

describe("garbage collection", function()
  it("a dropped child leaves its parent's child set", function()
    local p, cancel = ctx.with_cancel(bg)
    do
      for _ = 1, 1000 do ctx.with_cancel(p) end
      for _ = 1, 1000 do ctx.with_timeout(p, 3600) end
      for _ = 1, 10 do ctx.with_cancel(ctx.with_value(ctx.without_cancel(p), "k", {})) end
    end
    assert.is_true(ctx._children(p) > 0)
    full_gc()
    assert.equal(0, ctx._children(p))
    cancel()
  end)

  it("800k dropped contexts do not grow memory by more than tens of MB", function()
    local p, cancel = ctx.with_cancel(bg)
    local v = ctx.with_value(p, "k", "v")
    full_gc()
    local before = H.rss()
    for i = 1, 800000 do
      local kind = i % 4
      if kind == 0 then ctx.with_cancel(v)
      elseif kind == 1 then ctx.with_timeout(v, 3600)
      elseif kind == 2 then ctx.with_value(v, i, i)
      else ctx.with_cancel_cause(p) end
    end
    full_gc()
    local grown = (H.rss() - before) / 2^20
    assert.equal(0, ctx._children(p))
    assert.is_true(grown < 40, string.format("grew %.1f MB", grown))
    cancel()
  end)

  it("collected contexts give their keys, values and causes back", function()
    local weak = setmetatable({}, { __mode = "k" })
    do
      local c, cancel = ctx.with_cancel_cause(bg)
      local k, val, why = {}, {}, {}
      weak[k], weak[val], weak[why] = true, true, true
      local v = ctx.with_value(c, k, val)
      cancel(why)
      assert.equal(why, v:cause())
    end
    full_gc()
    full_gc()
    assert.is_nil(next(weak))
  end)

  it("a finalizer that calls ctx while the state closes gets an error, not a crash", function()
    -- its metatable got __gc before require "ctx": at lua_close it is
    -- finalized after ctx's own hub (it used to segfault)
    local out, status = H.run_lua([[
      local mt = { __gc = function()
        local ctx = package.loaded.ctx
        local ok, err = pcall(function()
          local c, cancel = ctx.with_timeout(ctx.background(), 1)
          cancel()
          return c:done()
        end)
        io.stdout:write("finalizer: ", tostring(ok), " ", tostring(err), "\n")
        ctx.background():done()  -- unprotected: a warning, no crash
      end }
      local early = setmetatable({}, mt)
      local ctx = require "ctx"
      local keep = ctx.with_cancel(ctx.background())
      print("closing")
    ]], "-W", 20)
    assert.equal(0, status, out)
    assert.matches("closing\n", out)
    local line = out:match("finalizer: ([^\n]*)")
    assert.is_true(line == "true true" or line:match("^false .*state is closing") ~= nil, line)
  end)
end)
