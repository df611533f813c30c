/* lctx_exec.c — ctx.execute(c, cmd [, grace]): os.execute whose command, in a
** process group of its own supervised by the core, ends (TERM, then KILL) with c. */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lctx.h"

extern char **environ;

static int push_status(lua_State *L, int status) {
  const char *what = "exit";
  int code = 0;
  if (WIFEXITED(status)) code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) { what = "signal"; code = WTERMSIG(status); }
  if (*what == 'e' && code == 0) lua_pushboolean(L, 1);
  else lua_pushnil(L);
  lua_pushstring(L, what);
  lua_pushinteger(L, code);
  return 3;
}

/* Starts `sh -c cmd` leading a process group of its own (so that all of it
** can be ended), with no signal blocked; 0 or an errno. */
static int spawn_shell(const char *cmd, pid_t *pid) {
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  char *argv[] = { "sh", "-c", (char *)cmd, NULL };
  int rc = posix_spawn(pid, "/bin/sh", NULL, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  return rc;
}

/* The core waits for the child with c and the runs' contexts (and ends it):
** CTX_PROC_TERMINAL gives it the terminal's foreground while it runs, so that
** it can prompt and Ctrl-C reaches it (and this process, as a shell does). */
int lctx_execute(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "execute");
  const char *cmd = NULL;
  int t = lua_type(L, 2);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) cmd = lua_tostring(L, 2);
  else if (t != LUA_TNONE && t != LUA_TNIL) lctx_typeerror(L, 2, "execute", "string");
  lua_Number grace = 1.0;
  if (!lua_isnoneornil(L, 3)) {
    grace = lctx_checkseconds(L, 3, "execute");
    if (grace < 0) lctx_argerror(L, 3, "execute", "grace must not be negative");
  }
  lctx_checkpoint(L, S);  /* a check point of ctx.run */
  if (ctx_done(u->c)) {   /* nothing runs */
    lctx_settle(L, S, u->c);
    lua_pushnil(L);
    lctx_pusherr(L, ctx_err(u->c));
    return 2;
  }
  if (!cmd) {  /* as os.execute(): is there a shell? */
    lua_pushboolean(L, access("/bin/sh", X_OK) == 0);
    return 1;
  }
  lctx_ctxs w;
  lctx_ctxs_init(&w);
  pid_t pid;
  int rc = spawn_shell(cmd, &pid);
  if (rc != 0) {  /* the command may be long: the message names the shell */
    errno = rc;
    return luaL_fileresult(L, 0, "ctx.execute: /bin/sh");
  }
  ctx_proc_t *p;
  if ((rc = ctx_proc_open(pid, CTX_PROC_GROUP | CTX_PROC_TERMINAL, &p)) != CTX_OK) {
    kill(-pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return luaL_error(L, "ctx: %s", ctx_strerror(rc));
  }
  int exited = 0, status = 0;
  for (;;) {
    int64_t hold = lctx_run_hold(S);  /* a callback holding a run's stop back */
    if (ctx_done(u->c) || lctx_run_stopped(S)) break;
    w.n = 0;
    if (lctx_ctxs_add(&w, u->c) != 0 || lctx_run_watch(S, &w) != 0) {
      rc = CTX_ENOMEM;
      break;
    }
    size_t which;
    int64_t now = ctx_now();
    rc = ctx_proc_wait(p, w.v, w.n, NULL, 0, hold == CTX_FOREVER ? -1 : hold - now, &which);
    if (rc == CTX_OK && which == CTX_PROC_EXITED) {
      exited = 1;
      break;
    }
    /* EINTR: ctx.run's signal or another; the child in the foreground got a
    ** Ctrl-C too: go on waiting for it */
    if (rc != CTX_OK && rc != CTX_EINTR && rc != CTX_ETIMEDOUT) break;
    rc = CTX_OK;
  }
  lctx_ctxs_free(&w);
  if (!exited) {  /* a context ended (or out of memory): the whole group goes */
    int64_t ns = grace >= 9e9 ? CTX_FOREVER : ctx_seconds_to_ns(grace);
    while (ctx_proc_terminate(p, ns) == CTX_EINTR) {}
  }
  int reaped = ctx_proc_status(p, &status);
  ctx_proc_close(p);
  if (rc != CTX_OK) return luaL_error(L, "ctx: %s", ctx_strerror(rc));
  if (exited) {
    if (!reaped) return luaL_fileresult(L, 0, NULL);
    return push_status(L, status);
  }
  if (!ctx_done(u->c)) {
    lctx_checkpoint(L, S);  /* ended by a run's context: its stop */
    lctx_runrec *r = lctx_run_stopped(S);  /* (not raised inside a finalizer) */
    lua_pushnil(L);
    lctx_pusherr(L, r ? ctx_err(r->c) : CTX_ERR_CANCELED);
    return 2;
  }
  lctx_settle(L, S, u->c);
  lua_pushnil(L);
  lctx_pusherr(L, ctx_err(u->c));
  return 2;
}
