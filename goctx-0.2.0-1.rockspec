-- goctx-0.2.0-1.rockspec — Go's context for Lua 5.4, module `ctx`: `luarocks
-- make` at the repository root builds through the Makefile (mk/lua.mk), so
-- the list of sources lives in one place. The version is core/ctx.h's.
rockspec_format = "3.0"
package = "goctx"
version = "0.2.0-1"
source = {
  url = "git+file:///work/main",  -- `luarocks make` builds the checkout it runs in
  tag = "v0.2.0",
}
description = {
  summary = "Go's context (cancellation, deadlines, values) for Lua 5.4",
  detailed = [[
Contexts that end when canceled, when their deadline passes or when their
parent ends; after_func callbacks delivered on the registering lua_State;
ctx.run stops pure Lua code (coroutines included) when its context ends, at
full speed while it is live; ctx.execute kills a command's process group.
Deadlines are served by one C timer thread. `require "ctx"`.
]],
  license = "MIT",
  labels = { "context", "cancellation", "timeout", "deadline" },
}
-- POSIX threads, signals and posix_spawn: not Windows
supported_platforms = { "linux", "macosx", "bsd" }
dependencies = { "lua >= 5.4, < 5.5" }
build = {
  type = "make",
  build_target = "rock",
  build_variables = { CFLAGS = "$(CFLAGS)", LUA_INCDIR = "$(LUA_INCDIR)" },
  install_target = "rock-install",
  install_variables = { LUADIR = "$(LUADIR)", LIBDIR = "$(LIBDIR)" },
}
test_dependencies = { "busted" }
test = { type = "busted", flags = { "--lua=lua5.4", "tests/lua" } }
