/* closer.c — lua_close() dlcloses ctx.so while deadlines are still pending:
** the timer thread must find its code mapped when it wakes afterwards. */
#include <stdio.h>
#include <unistd.h>
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

static const char script[] =
  "local ctx = require 'ctx'\n"
  "ctx.after_func(ctx.with_timeout(ctx.background(), 0.02), print)\n"
  "ctx.with_timeout(ctx.background(), 0.03)\n";

int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_dostring(L, script) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  lua_close(L);    /* unloads the C modules */
  usleep(100000);  /* the timer thread wakes meanwhile */
  printf("closer: survived lua_close with deadlines pending\n");
  return 0;
}
