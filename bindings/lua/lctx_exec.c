/* lctx_exec.c — ctx.execute(c, cmd [, grace]): os.execute whose command, in a
** process group of its own, is terminated (TERM, then KILL) when c ends. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "lctx.h"

extern char **environ;

/* A descriptor readable when pid exits, or -1 (kernels before 5.3). */
static int pidfd_of(pid_t pid) {
#ifdef SYS_pidfd_open
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  return -1;
#endif
}

/* What ends a wait besides the child's exit: the context passed to execute
** and those of the ctx.run calls around it (execute is a check point of
** theirs, as c:wait and ctx.sleep are). */
#define MAXCTX 9
typedef struct watch {
  int n;
  ctx_t *c[MAXCTX];
  int fd[MAXCTX];          /* readable once c[i] is done, or -1 */
  int64_t d[MAXCTX];       /* c[i]'s deadline, CTX_FOREVER once expired by us */
} watch;

static int any_done(const watch *w) {
  for (int i = 0; w && i < w->n; i++) if (ctx_done(w->c[i])) return 1;
  return 0;
}

/* Waits for pid to exit, or for a context of w (if not NULL) to end, at most
** timeout_ms (-1: no limit). 1 and *status when pid exited, else 0. */
static int wait_child(pid_t pid, int pidfd, watch *w, int64_t timeout_ms, int *status) {
  int64_t limit = timeout_ms < 0 || timeout_ms >= CTX_FOREVER / 1000000 - ctx_now() / 1000000
                      ? CTX_FOREVER : ctx_now() + timeout_ms * 1000000;
  int nw = w ? w->n : 0;
  for (;;) {
    pid_t got = waitpid(pid, status, WNOHANG);
    if (got == pid) return 1;
    if (got < 0 && errno != EINTR) { *status = -1; return 1; }
    if (any_done(w)) return 0;
    int64_t now = ctx_now(), until = limit;
    if (now >= limit) return 0;
    for (int i = 0; i < nw; i++) {
      if (now >= w->d[i]) {  /* the timer thread may be late on a loaded machine */
        ctx_expire(w->c[i]);
        w->d[i] = CTX_FOREVER;
      }
      if (w->d[i] < until) until = w->d[i];
    }
    struct pollfd p[MAXCTX + 1];
    nfds_t n = 0;
    if (pidfd >= 0) p[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
    for (int i = 0; i < nw; i++)
      if (w->fd[i] >= 0) p[n++] = (struct pollfd){ .fd = w->fd[i], .events = POLLIN };
    /* without a pidfd, poll the child every 5 ms */
    int64_t slice = until == CTX_FOREVER ? -1 : (until - now + 999999) / 1000000;
    if (pidfd < 0 && (slice < 0 || slice > 5)) slice = 5;
    if (slice > 60000) slice = 60000;  /* poll takes an int */
    poll(p, n, (int)slice);  /* EINTR (ctx.run's signal, say): look again */
  }
}

/* Adds c to w; raises only for out-of-memory or out of descriptors. */
static void watch_add(lua_State *L, watch *w, ctx_t *c) {
  if (w->n == MAXCTX) return;
  int i = w->n++;
  w->c[i] = c;
  w->fd[i] = -1;
  w->d[i] = CTX_FOREVER;
  ctx_deadline(c, &w->d[i]);
  /* the roots and WithoutCancel never end (CTX_EINVAL: they have no fd) */
  if (ctx_deadline(c, NULL) || ctx_kind(c) != CTX_KIND_BACKGROUND) {
    int fd = ctx_fd(c);
    if (fd < 0 && fd != CTX_EINVAL) luaL_error(L, "ctx: %s", ctx_strerror(fd));
    w->fd[i] = fd;
  }
}

static int push_status(lua_State *L, int status) {
  if (status == -1) return luaL_fileresult(L, 0, NULL);
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

int lctx_execute(lua_State *L) {
  lctx_S *S = lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "execute");
  const char *cmd = NULL;
  int t = lua_type(L, 2);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) cmd = lua_tostring(L, 2);
  else if (t != LUA_TNONE && t != LUA_TNIL) lctx_typeerror(L, 2, "execute", "string");
  lua_Number grace = lua_isnoneornil(L, 3) ? 1.0 : lctx_checkseconds(L, 3, "execute");
  lctx_runrec *stopped = lctx_run_stopped(S);
  if (stopped) return lctx_run_raise(L, stopped);  /* a check point of ctx.run */
  if (ctx_done(u->c)) {  /* nothing runs */
    lctx_settle(L, S);
    lua_pushnil(L);
    lctx_pusherr(L, ctx_err(u->c));
    return 2;
  }
  if (!cmd) {  /* as os.execute(): is there a shell? */
    lua_pushboolean(L, access("/bin/sh", X_OK) == 0);
    return 1;
  }
  watch w = { 0 };
  watch_add(L, &w, u->c);
  for (lctx_runrec *r = S->runs; r != S->barrier; r = r->outer) watch_add(L, &w, r->c);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);  /* its own group, so all of it can be killed */
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  char *argv[] = { "sh", "-c", (char *)cmd, NULL };
  pid_t pid;
  int rc = posix_spawn(&pid, "/bin/sh", NULL, &attr, argv, environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    errno = rc;
    return luaL_fileresult(L, 0, cmd);
  }
  int pidfd = pidfd_of(pid);
  int status;
  int exited = wait_child(pid, pidfd, &w, -1, &status);
  if (!exited) {
    /* a context ended: TERM the group, KILL it after the grace period, reap
    ** (milliseconds in 64 bits: a grace of weeks must not wrap around) */
    kill(-pid, SIGTERM);
    int64_t ms = grace <= 0 ? 0 : grace >= 9e12 ? -1 : (int64_t)(grace * 1000 + 0.5);
    if (!wait_child(pid, pidfd, NULL, ms, &status)) {
      kill(-pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    }
    kill(-pid, SIGKILL);  /* what is left of the group, if anything */
  }
  if (pidfd >= 0) close(pidfd);
  if (exited) return push_status(L, status);
  if (!ctx_done(u->c) && (stopped = lctx_run_stopped(S)) != NULL)
    return lctx_run_raise(L, stopped);  /* ended by a run's context: its stop */
  lctx_settle(L, S);
  lua_pushnil(L);
  lctx_pusherr(L, ctx_err(u->c));
  return 2;
}
