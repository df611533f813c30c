/* interpose.c — a host built with -rdynamic that defines functions named like
** the core's (a clock stuck at 0): the module it loads with require must keep
** using its own, so waits end on time. Run: interpose script.lua */
#include <stdint.h>
#include <stdio.h>
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

/* exported by this executable (-rdynamic): a module whose calls bound to
** these would never see time pass, and its waits would hang */
int64_t ctx_now(void) { return 0; }
int64_t ctx_deadline_from_timeout(int64_t t) { (void)t; return INT64_MAX; }
int ctx_done(const void *c) { (void)c; return 0; }

int main(int argc, char **argv) {
  if (argc < 2) { fputs("usage: interpose script.lua\n", stderr); return 2; }
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  int rc = luaL_dofile(L, argv[1]);
  if (rc != LUA_OK) fprintf(stderr, "%s\n", lua_tostring(L, -1));
  lua_close(L);
  return rc == LUA_OK ? 0 : 1;
}
