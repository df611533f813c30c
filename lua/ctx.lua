-- ctx.lua — `require "ctx"`: Go's context for Lua 5.4. The work is done by the
-- C part, ctx.core; this module checks where it runs and hands it out.
if _VERSION ~= "Lua 5.4" then
  -- the C part is built for 5.4's API: say so rather than fail on a symbol
  error(string.format("ctx needs Lua 5.4 (this is %s)", _VERSION), 2)
end

local core = require "ctx.core"

-- a table of its own, so that adding to `ctx` never changes ctx.core (whose
-- functions keep their upvalues: calling them costs what calling core's does)
---@type ctxlib
local ctx = {}
for name, value in pairs(core) do ctx[name] = value end
-- tracebacks name a C function by where they find it in package.loaded: as
-- ctx.sleep, not ctx.core.sleep; a later require of ctx.core still gets it
package.preload["ctx.core"] = function() return core end
package.loaded["ctx.core"] = nil

return ctx
