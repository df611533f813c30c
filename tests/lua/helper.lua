-- helper.lua — shared bits of the Lua specs: the module, a busy clock loop that
-- never calls into ctx, and resident memory from /proc.
local ctx = require "ctx"
local H = { ctx = ctx }

-- spins for `seconds` in pure Lua, without any call into ctx
function H.spin(seconds)
  local t = os.clock() + seconds
  while os.clock() < t do end
end

-- resident set size in bytes
function H.rss()
  local f = assert(io.open("/proc/self/statm"))
  local _, res = f:read("n", "n")
  f:close()
  return res * 4096
end

-- runs `code` in a fresh lua5.4 (module on the same path), killed after
-- `limit` seconds if given (status 137 then), through `wrapper` if given (a
-- command that runs the rest); output, status
function H.run_lua(code, flags, limit, wrapper)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local p = io.popen(string.format("%s%slua5.4 %s %s 2>&1",
    limit and ("timeout -s KILL " .. limit .. " ") or "", wrapper and (wrapper .. " ") or "",
    flags or "", path))
  local out = p:read("a")
  local ok, _, status = p:close()
  os.remove(path)
  return out, ok and 0 or status
end

return H
