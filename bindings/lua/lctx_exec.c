/* lctx_exec.c — ctx.execute(c, cmd [, grace]): os.execute whose command, in a
** process group of its own, is terminated (TERM, then KILL) when c ends. */
#if defined(__linux__) && !defined(CTX_FORCE_POSIX) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1  /* syscall(), for pidfd_open: the Linux fast path */
#endif
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__) && !defined(CTX_FORCE_POSIX)
#include <sys/syscall.h>
#endif
#include "lctx.h"

extern char **environ;

/* A descriptor readable when pid exits, or -1 (kernels before 5.3, and
** systems without pidfd: then the child is polled). */
static int pidfd_of(pid_t pid) {
#if defined(__linux__) && !defined(CTX_FORCE_POSIX) && defined(SYS_pidfd_open)
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  return -1;
#endif
}

/* Waits for pid to exit, for a context of w to end or for `until` (ctx_now
** scale) to pass. 1 and *status when pid exited, else 0. */
static int wait_child(pid_t pid, int pidfd, const lctx_ctxs *w, int64_t until, int *status) {
  struct pollfd small[9], *p = small;
  if (w->n + 1 > 9 && !(p = malloc((w->n + 1) * sizeof *p))) p = NULL;
  int exited = 0;
  for (;;) {
    pid_t got = waitpid(pid, status, WNOHANG);
    if (got == pid || (got < 0 && errno != EINTR)) {
      if (got < 0) *status = -1;
      exited = 1;
      break;
    }
    int done = 0;
    for (size_t i = 0; i < w->n && !done; i++) done = ctx_done(w->v[i]);
    int64_t now = ctx_now(), next = until, d;
    if (done || now >= until) break;
    nfds_t n = 0;
    int blind = pidfd < 0 || !p;  /* something can end unseen by poll */
    if (p && pidfd >= 0) p[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
    for (size_t i = 0; i < w->n; i++) {
      if (ctx_deadline(w->v[i], &d) == 1) {
        if (d <= now) ctx_expire(w->v[i]);  /* the timer thread may be late */
        else if (d < next) next = d;
      }
      int fd = ctx_fd(w->v[i]);  /* the roots and WithoutCancel have none */
      if (p && fd >= 0) p[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
      else if (fd != CTX_EINVAL) blind = 1;
    }
    /* without a pidfd (or a context's descriptor), look every 5 ms */
    int64_t slice = next == CTX_FOREVER ? -1 : (next - now + 999999) / 1000000;
    if (blind && (slice < 0 || slice > 5)) slice = 5;
    if (slice > 60000) slice = 60000;
    poll(p, p ? n : 0, (int)slice);  /* EINTR (ctx.run's signal, say): look again */
  }
  if (p != small) free(p);
  return exited;
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

/* Ends the child's group: TERM, KILL after the grace period, reap; then KILL
** what is left of the group (milliseconds in 64 bits: weeks do not wrap). */
static void terminate(pid_t pid, int pidfd, lua_Number grace, int *status) {
  lctx_ctxs none;
  lctx_ctxs_init(&none);
  kill(-pid, SIGCONT);
  kill(-pid, SIGTERM);
  int64_t ns = grace <= 0 ? 0 : grace >= 9e9 ? CTX_FOREVER : (int64_t)(grace * 1e9);
  int64_t until = ns == CTX_FOREVER ? CTX_FOREVER : ctx_now() + ns;
  if (!wait_child(pid, pidfd, &none, until, status)) {
    kill(-pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR) {}
  }
  kill(-pid, SIGKILL);
}

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
    lctx_settle(L, S);
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
  if (lctx_ctxs_add(&w, u->c) != 0) return luaL_error(L, "ctx: %s", ctx_strerror(CTX_ENOMEM));
  int fd = ctx_fd(u->c);  /* made now: out of descriptors, nothing has run */
  if (fd < 0 && fd != CTX_EINVAL) return luaL_error(L, "ctx: %s", ctx_strerror(fd));
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
  if (rc != 0) {  /* the command may be long: the message names the shell */
    lctx_ctxs_free(&w);
    errno = rc;
    return luaL_fileresult(L, 0, "ctx.execute: /bin/sh");
  }
  int pidfd = pidfd_of(pid);
  int status = 0, exited = 0, oom = 0;
  for (;;) {
    int64_t hold = lctx_run_hold(S);  /* a callback holding a run's stop back */
    if (ctx_done(u->c) || lctx_run_stopped(S)) break;
    w.n = 1;
    if (lctx_run_watch(S, &w) != 0) {
      oom = 1;
      break;
    }
    if ((exited = wait_child(pid, pidfd, &w, hold, &status))) break;
  }
  lctx_ctxs_free(&w);
  if (!exited) terminate(pid, pidfd, grace, &status);
  if (pidfd >= 0) close(pidfd);
  if (oom) return luaL_error(L, "ctx: %s", ctx_strerror(CTX_ENOMEM));
  if (exited) return push_status(L, status);
  if (!ctx_done(u->c)) {
    lctx_checkpoint(L, S);  /* ended by a run's context: its stop */
    lctx_runrec *r = lctx_run_stopped(S);  /* (not raised inside a finalizer) */
    lua_pushnil(L);
    lctx_pusherr(L, r ? ctx_err(r->c) : CTX_ERR_CANCELED);
    return 2;
  }
  lctx_settle(L, S);
  lua_pushnil(L);
  lctx_pusherr(L, ctx_err(u->c));
  return 2;
}
