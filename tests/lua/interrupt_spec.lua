-- interrupt_spec.lua — Ctrl-C under the stock lua5.4: it interrupts ctx.sleep
-- and c:wait at once, and reaches ctx.execute's command in the terminal's
-- foreground (which can also read from the terminal).
package.path = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$") .. "?.lua;" .. package.path
local H = require "helper"
local here = debug.getinfo(1, "S").source:match("^@(.-)[^/]*$")

-- runs code in lua5.4, sends it SIGINT after `after` seconds; output, seconds
local function interrupted(code, after)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local t0 = H.ctx.now()
  -- a background job of sh has SIGINT ignored, but lua.c installs its own
  local p = io.popen(string.format(
    "lua5.4 %s 2>&1 & p=$!; sleep %s; kill -INT $p; wait $p; echo status $?", path, after))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out, H.ctx.now() - t0
end

local function has_setsid()
  local ok = os.execute("command -v setsid >/dev/null && command -v python3 >/dev/null")
  return ok
end

-- runs code in lua5.4 in a pty; sends `send` once it printed READY
local function in_pty(code, send)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local hex = send:gsub(".", function(ch) return string.format("%02x", ch:byte()) end)
  local p = io.popen(string.format("python3 %s../pty_run.py '%s' 20 lua5.4 %s 2>&1",
    here, hex, path))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out
end

describe("Ctrl-C under lua5.4", function()
  it("interrupts ctx.sleep and c:wait at once", function()
    -- the wait used to run to its end (30 s), Ctrl-C seen only after it
    for _, case in ipairs {
      { "ctx.sleep(ctx.background(), 30)", "interrupted!" },
      { "ctx.todo():wait()", "interrupted!" },
      -- ctx.run is a pcall: it catches lua.c's error like any other
      { "print(ctx.run(ctx.with_timeout(ctx.background(), 60), function()\n" ..
        "ctx.sleep(ctx.background(), 30) end))", "false\t[^\n]*interrupted!\nwent on" },
    } do
      local out, took = interrupted("local ctx = require 'ctx'\n" .. case[1] .. "\nprint('went on')", 0.5)
      assert.matches(case[2], out)
      if case[2] == "interrupted!" then assert.not_matches("went on", out, nil, true) end
      assert.is_true(took < 5, "took " .. took .. " s: " .. out)
    end
  end)

  it("reaches ctx.execute's command in the foreground, and this process too", function()
    if not has_setsid() then return pending("no setsid(1) or python3") end
    local pidfile = os.tmpname()
    local out = in_pty(string.format([[
      local ctx = require "ctx"
      print("READY")
      local r = { ctx.execute(ctx.background(), "echo $$ > %s; exec sleep 30") }
      print("went on", table.unpack(r))
    ]], pidfile), "\3")
    local pid = io.open(pidfile):read("a"):match("%d+")
    os.remove(pidfile)
    assert.matches("interrupted!", out, nil, true)
    assert.not_matches("went on", out, nil, true)
    local took = tonumber(out:match("^status %S+ ([%d.]+)"))
    assert.is_true(took < 10, out)
    assert.is_not_nil(pid)
    assert.is_falsy(os.execute("kill -0 " .. pid .. " 2>/dev/null"), "the command survived")
  end)

  it("lets ctx.execute's command read from the terminal", function()
    if not has_setsid() then return pending("no setsid(1) or python3") end
    local out = in_pty([[
      local ctx = require "ctx"
      print("READY")
      print(ctx.execute(ctx.background(), "read -r line </dev/tty && echo got:$line"))
    ]], "hello\n")
    assert.matches("got:hello\ntrue\texit\t0", out, nil, true)
  end)
end)
