-- args_spec.lua — argument mistakes raise the standard `bad argument` errors,
-- and nothing crashes whatever is passed.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
local H = require "helper"
local ctx = H.ctx
local bg = ctx.background()

local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  return err
end

describe("bad arguments", function()
  it("a parent that is not a context", function()
    for _, name in ipairs { "with_cancel", "with_cancel_cause", "with_deadline",
        "with_deadline_cause", "with_timeout", "with_timeout_cause", "with_value",
        "without_cancel", "after_func", "cause", "sleep" } do
      assert.equal("bad argument #1 to '" .. name .. "' (ctx.Context expected, got nil)",
        err_of(ctx[name], nil, 1, 2))
      assert.equal("bad argument #1 to '" .. name .. "' (ctx.Context expected, got table)",
        err_of(ctx[name], {}, 1, 2))
      assert.equal("bad argument #1 to '" .. name .. "' (ctx.Context expected, got FILE*)",
        err_of(ctx[name], io.stdout, 1, 2))
      assert.equal("bad argument #1 to '" .. name .. "' (ctx.Context expected, got ctx.Error)",
        err_of(ctx[name], ctx.canceled, 1, 2))
    end
  end)

  it("names the function whatever the call site", function()
    assert.has_error(function() ctx.with_timeout(nil, 2) end,
      "bad argument #1 to 'with_timeout' (ctx.Context expected, got nil)")
    local wt = ctx.with_timeout
    assert.has_error(function() wt(nil, 2) end,
      "bad argument #1 to 'with_timeout' (ctx.Context expected, got nil)")
    assert.has_error(function() ctx.with_timeout(bg, "soon") end,
      "bad argument #2 to 'with_timeout' (number expected, got string)")
    assert.has_error(function() ctx.with_timeout(bg) end,
      "bad argument #2 to 'with_timeout' (number expected, got no value)")
    assert.has_error(function() ctx.with_deadline(bg, {}) end,
      "bad argument #2 to 'with_deadline' (number expected, got table)")
  end)

  it("NaN seconds raise", function()
    for _, f in ipairs { ctx.with_timeout, ctx.with_deadline, ctx.sleep } do
      assert.matches("seconds must not be NaN", err_of(f, bg, 0/0))
    end
    assert.matches("seconds must not be NaN", err_of(ctx.with_timeout_cause, bg, 0/0, "x"))
    assert.matches("seconds must not be NaN", err_of(ctx.with_deadline_cause, bg, 0/0, "x"))
    assert.has_error(function() bg:wait(0/0) end, "bad argument #1 to 'wait' (seconds must not be NaN)")
  end)

  it("methods check self", function()
    for _, m in ipairs { "done", "wait", "err", "cause", "deadline", "remaining", "value" } do
      local f = bg[m]
      assert.equal("bad argument #1 to '" .. m .. "' (ctx.Context expected, got no value)", err_of(f))
      assert.equal("bad argument #1 to '" .. m .. "' (ctx.Context expected, got nil)", err_of(f, nil))
      assert.equal("bad argument #1 to '" .. m .. "' (ctx.Context expected, got number)", err_of(f, 3))
      assert.equal("bad argument #1 to '" .. m .. "' (ctx.Context expected, got FILE*)", err_of(f, io.stderr))
    end
    assert.has_error(function() bg.done("x") end,
      "bad argument #1 to 'done' (ctx.Context expected, got string)")
  end)

  it("after_func needs a function", function()
    assert.equal("bad argument #2 to 'after_func' (function expected, got no value)", err_of(ctx.after_func, bg))
    assert.equal("bad argument #2 to 'after_func' (function expected, got nil)", err_of(ctx.after_func, bg, nil))
    assert.equal("bad argument #2 to 'after_func' (function expected, got table)", err_of(ctx.after_func, bg, {}))
    local callable = setmetatable({}, { __call = function() end })
    local c, cancel = ctx.with_cancel(bg)
    local ran = false
    ctx.after_func(c, setmetatable({}, { __call = function() ran = true end }))
    ctx.after_func(c, callable)
    cancel()
    assert.is_true(ran)
  end)

  it("the metatable is not handed out", function()
    assert.equal("ctx.Context", getmetatable(bg))
  end)

  it("nothing crashes whatever is passed", function()
    local c, cancel = ctx.with_cancel_cause(bg)
    local values = { nil, true, 0, -1, 1/0, -1/0, 0/0, 2^63, math.mininteger, "", "1",
      {}, print, coroutine.create(print), io.stdout, bg, c, ctx.canceled,
      setmetatable({}, { __index = function() error("x") end }) }
    local n = 19
    local funcs = {}
    for k, v in pairs(ctx) do if type(v) == "function" and k ~= "run" and k ~= "execute" then funcs[k] = v end end
    for m, f in pairs { done = bg.done, wait = bg.wait, err = bg.err, cause = bg.cause,
        deadline = bg.deadline, remaining = bg.remaining, value = bg.value } do funcs[m] = f end
    local calls = 0
    for name, f in pairs(funcs) do
      for i = 1, n do
        for j = 1, n do
          if name == "sleep" or name == "wait" then
            -- no timeout, or a long one, on a live context would just wait
            local t = tonumber(values[j])
            if t == nil or t > 0.001 then goto skip end
          end
          pcall(f, values[i], values[j], values[(i + j) % n + 1])
          calls = calls + 1
          ::skip::
        end
      end
    end
    assert.is_true(calls > 1000)
    for _ = 1, 3 do collectgarbage() end
    cancel("done")
    assert.equal("done", c:cause())
  end)
end)
