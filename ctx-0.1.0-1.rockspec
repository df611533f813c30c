-- ctx-0.1.0-1.rockspec — Go's context for Lua 5.4: `luarocks make` at the
-- repository root builds the C core and the binding into one module, ctx.
rockspec_format = "3.0"
package = "ctx"
version = "0.1.0-1"
source = {
  url = "git+file:///work/main",  -- `luarocks make` builds the checkout it runs in
  tag = "v0.1.0",
}
description = {
  summary = "Go's context (cancellation, deadlines, values) for Lua 5.4",
  detailed = [[
Contexts that end when canceled, when their deadline passes or when their
parent ends; after_func callbacks delivered on the registering lua_State;
ctx.run stops pure Lua code when its context ends, ctx.execute kills a
command's process group. Deadlines are served by one C timer thread.
]],
  license = "MIT",
  labels = { "context", "cancellation", "timeout", "deadline" },
}
dependencies = { "lua >= 5.4, < 5.5" }
build = {
  type = "builtin",
  modules = {
    ctx = {
      sources = {
        "bindings/lua/lctx.c", "bindings/lua/lctx_key.c", "bindings/lua/lctx_state.c",
        "bindings/lua/lctx_run.c", "bindings/lua/lctx_exec.c",
        "core/ctx_after.c", "core/ctx_string.c", "core/ctx_timer.c",
        "core/ctx_tree.c", "core/ctx_wait.c",
      },
      incdirs = { "core", "bindings/lua" },
      -- builtin has no per-module compiler flags: the sources refuse anything
      -- older than C11 (lctx.h), and `make` builds them with -std=c11
      defines = { "_GNU_SOURCE" },
      libraries = { "pthread", "m", "dl" },
    },
  },
}
test_dependencies = { "busted" }
test = { type = "busted", flags = { "--lua=lua5.4", "tests/lua" } }
