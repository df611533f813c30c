-- rock_check.lua — run by `make test-lua-rock` with the paths of a fresh
-- luarocks tree: the installed rock loads, is the version of core/ctx.h, and
-- stops a busy coroutine.
local want = assert(arg[1], "usage: rock_check.lua VERSION")
local ctx = require "ctx"
assert(package.searchpath("ctx", package.path):match("/share/lua/5%.4/ctx%.lua$"),
  "ctx.lua not from the tree: " .. tostring(package.searchpath("ctx", package.path)))
assert(package.searchpath("ctx.core", package.cpath):match("/lib/lua/5%.4/ctx/core%.so$"))
assert(ctx._VERSION == "ctx " .. want, ctx._VERSION)
local ok, err = ctx.run(ctx.with_timeout(ctx.background(), 0.05), function()
  coroutine.wrap(function() while true do end end)()
end)
assert(ok == false and err == ctx.deadline_exceeded)
print("rock " .. want .. ": installed and working (" .. (ctx._mode()) .. " mode)")
