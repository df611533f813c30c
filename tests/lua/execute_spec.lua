-- execute_spec.lua — ctx.execute: os.execute's returns, or the command's
-- process group terminated and reaped when the context ends.
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
local H = require "helper"
local ctx = H.ctx
local bg = ctx.background()

-- the pids of this process's children, zombies included
local function children()
  local self = io.open("/proc/self/stat"):read("a"):match("^%d+")
  local out = {}
  local p = io.popen("ps -o pid=,stat=,comm= --ppid " .. self)
  for line in p:lines() do
    if not line:match(" sh$") then out[#out + 1] = line end  -- popen's own shell
  end
  p:close()
  return out
end

describe("ctx.execute", function()
  it("returns what os.execute returns", function()
    assert.same({ os.execute("true") }, { ctx.execute(bg, "true") })
    assert.same({ os.execute("exit 3") }, { ctx.execute(bg, "exit 3") })
    assert.same({ os.execute("kill -TERM $$") }, { ctx.execute(bg, "kill -TERM $$") })
    assert.same({ true, "exit", 0 }, { ctx.execute(ctx.with_timeout(bg, 5), "true") })
    assert.is_true(ctx.execute(bg))
  end)

  it("terminates `sleep 30` when the context ends, with no zombie", function()
    local c = ctx.with_timeout(bg, 0.1)
    local t0 = ctx.now()
    local ok, err = ctx.execute(c, "sleep 30")
    local took = ctx.now() - t0
    assert.is_nil(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.is_true(took < 1, "took " .. took)
    assert.same({}, children())
  end)

  it("kills the whole process group", function()
    local marker = os.tmpname()
    local c = ctx.with_timeout(bg, 0.1)
    local ok, err = ctx.execute(c, "(sleep 0.4; echo alive > " .. marker .. ") & sleep 30; wait")
    assert.is_nil(ok)
    assert.equal(ctx.deadline_exceeded, err)
    ctx.sleep(bg, 0.6)
    local f = io.open(marker)
    local content = f and f:read("a") or ""
    if f then f:close() end
    os.remove(marker)
    assert.equal("", content)
  end)

  it("SIGKILL after the grace period when TERM is ignored", function()
    local c = ctx.with_timeout(bg, 0.05)
    local t0 = ctx.now()
    local ok, err = ctx.execute(c, "trap '' TERM; sleep 30", 0.2)
    local took = ctx.now() - t0
    assert.is_nil(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.is_true(took >= 0.24 and took < 1.5, "took " .. took)
  end)

  it("returns at once on a context already done, running nothing", function()
    local marker = os.tmpname()
    os.remove(marker)
    local c, cancel = ctx.with_cancel(bg)
    cancel()
    local ok, err = ctx.execute(c, "touch " .. marker)
    assert.is_nil(ok)
    assert.equal(ctx.canceled, err)
    assert.is_nil(io.open(marker))
  end)

  it("checks its arguments", function()
    assert.has_error(function() ctx.execute(nil, "true") end,
      "bad argument #1 to 'execute' (ctx.Context expected, got nil)")
    assert.has_error(function() ctx.execute(bg, "true", 0/0) end,
      "bad argument #3 to 'execute' (seconds must not be NaN)")
    for _, g in ipairs { -1, -0.001, -math.huge } do
      assert.has_error(function() ctx.execute(bg, "true", g) end,
        "bad argument #3 to 'execute' (grace must not be negative)")
    end
    assert.same({ true, "exit", 0 }, { ctx.execute(bg, "true", 0) })
    -- named as the SPEC does even through pcall, where Lua's own check
    -- would say 'ctx.execute'
    local ok, err = pcall(ctx.execute, bg, {})
    assert.is_false(ok)
    assert.equal("bad argument #2 to 'execute' (string expected, got table)", err)
    ok, err = pcall(ctx.execute, bg, "true", "soon")
    assert.equal("bad argument #3 to 'execute' (number expected, got string)", err)
    assert.same({ os.execute("exit 4") }, { ctx.execute(bg, 4 and "exit 4") })
  end)

  it("a start failure's message names the shell, not the whole command", function()
    -- a single argument over 128 KiB: the kernel refuses it (E2BIG)
    local cmd = "echo " .. string.rep("x", 300000)
    local ok, msg, code = ctx.execute(bg, cmd)
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.is_true(#msg < 200, "message of " .. #msg .. " bytes")
    assert.matches("/bin/sh", msg)
    assert.is_number(code)
  end)

  it("a grace of weeks is not cut short (no wrap-around)", function()
    -- 4294968 s is 4294968000 ms: truncated to 32 bits, 704 ms
    local c = ctx.with_timeout(bg, 0.05)
    local t0 = ctx.now()
    local ok, err = ctx.execute(c, "trap '' TERM; sleep 1.2", 4294968)
    local took = ctx.now() - t0
    assert.is_nil(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.is_true(took >= 1.1, "took " .. took)
  end)

  it("is a check point of ctx.run: the run's context ending stops it", function()
    local c = ctx.with_timeout(bg, 0.1)
    local t0 = ctx.now()
    local went_on
    local ok, err = ctx.run(c, function()
      ctx.execute(bg, "sleep 5")
      went_on = true
    end)
    assert.is_false(ok)
    assert.equal(ctx.deadline_exceeded, err)
    assert.is_nil(went_on)
    assert.is_true(ctx.now() - t0 < 1.5, "took " .. (ctx.now() - t0))
    assert.same({}, children())
    -- a run already stopped raises at once, running nothing
    local marker = os.tmpname()
    os.remove(marker)
    local c2, cancel = ctx.with_cancel(bg)
    ok, err = ctx.run(c2, function()
      cancel()
      pcall(ctx.execute, bg, "touch " .. marker)
      went_on = "after"
    end)
    assert.is_false(ok)
    assert.equal(ctx.canceled, err)
    assert.is_nil(io.open(marker))
    -- the command's own context ending returns nil, err as usual
    local c3 = ctx.with_timeout(bg, 0.05)
    assert.same({ true, nil, ctx.deadline_exceeded },
      { ctx.run(bg, function() return ctx.execute(c3, "sleep 5") end) })
  end)
end)
