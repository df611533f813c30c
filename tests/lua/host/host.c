/* host.c — a small C host: 4 lua_States on 4 threads, each running the script
** given (LCTX_HOST_ROUNDS times, a new state each time: a close storm); with
** LCTX_HOST_BLOCK=1 the threads block every signal, as some hosts' worker
** threads do. Built plain and with -fsanitize=thread by make. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

int luaopen_ctx_core(lua_State *L);

#define NSTATES 4

static const char *script;
static int failures;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *run(void *arg) {
  int id = (int)(size_t)arg;
  const char *block = getenv("LCTX_HOST_BLOCK");
  const char *rounds_s = getenv("LCTX_HOST_ROUNDS");
  int rounds = rounds_s ? atoi(rounds_s) : 1;
  if (block && *block == '1') {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
  }
  for (int round = 0; round < rounds; round++) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "ctx.core", luaopen_ctx_core, 0);  /* lua/ctx.lua requires it */
    lua_pop(L, 1);
    int rc = luaL_loadfile(L, script);
    if (rc == LUA_OK) {
      lua_pushinteger(L, id);
      lua_pushinteger(L, round);
      rc = lua_pcall(L, 2, 1, 0);
    }
    pthread_mutex_lock(&mu);
    if (rc != LUA_OK) {
      fprintf(stderr, "state %d: %s\n", id, lua_tostring(L, -1));
      failures++;
    } else if (round == rounds - 1) {
      printf("state %d: %s\n", id, lua_tostring(L, -1));
    }
    pthread_mutex_unlock(&mu);
    lua_close(L);  /* with timers still pending and callbacks queued */
  }
  return NULL;
}

int main(int argc, char **argv) {
  pthread_t t[NSTATES];
  if (argc < 2) {
    fprintf(stderr, "usage: %s script.lua\n", argv[0]);
    return 2;
  }
  script = argv[1];
  for (int i = 0; i < NSTATES; i++)
    if (pthread_create(&t[i], NULL, run, (void *)(size_t)i) != 0) return 1;
  for (int i = 0; i < NSTATES; i++) pthread_join(t[i], NULL);
  printf("%d states, %d failures\n", NSTATES, failures);
  return failures ? 1 : 0;
}
