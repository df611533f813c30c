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

/* Waits for pid to exit or c (if not NULL) to end, through its fd, at most
** timeout_ms (-1: no limit). 1 and *status when pid exited, else 0. */
static int wait_child(pid_t pid, int pidfd, ctx_t *c, int fd, int timeout_ms, int *status) {
  int64_t limit = timeout_ms < 0 ? CTX_FOREVER : ctx_now() + (int64_t)timeout_ms * 1000000;
  int64_t d = CTX_FOREVER;
  if (c) ctx_deadline(c, &d);
  for (;;) {
    pid_t w = waitpid(pid, status, WNOHANG);
    if (w == pid) return 1;
    if (w < 0 && errno != EINTR) { *status = -1; return 1; }
    int64_t now = ctx_now();
    if (now >= limit) return 0;
    if (now >= d) {  /* the timer thread may be late on a loaded machine */
      ctx_expire(c);
      d = CTX_FOREVER;
    }
    int64_t until = d < limit ? d : limit;
    struct pollfd p[2];
    int n = 0;
    if (pidfd >= 0) p[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
    if (fd >= 0) p[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
    /* without a pidfd, poll the child every 5 ms */
    int64_t slice = until == CTX_FOREVER ? -1 : (until - now + 999999) / 1000000;
    if (pidfd < 0 && (slice < 0 || slice > 5)) slice = 5;
    int r = poll(p, (nfds_t)n, (int)slice);
    if (r > 0 && fd >= 0 && (p[n - 1].revents & POLLIN)) {
      if (waitpid(pid, status, WNOHANG) == pid) return 1;
      return 0;
    }
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
  lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "execute");
  const char *cmd = luaL_optstring(L, 2, NULL);
  lua_Number grace = lua_isnoneornil(L, 3) ? 1.0 : lctx_checkseconds(L, 3, "execute");
  if (ctx_done(u->c)) {  /* nothing runs */
    lua_pushnil(L);
    lctx_pusherr(L, ctx_err(u->c));
    return 2;
  }
  if (!cmd) {  /* as os.execute(): is there a shell? */
    lua_pushboolean(L, access("/bin/sh", X_OK) == 0);
    return 1;
  }
  int fd = -1;
  if (ctx_deadline(u->c, NULL) || ctx_kind(u->c) != CTX_KIND_BACKGROUND) {
    fd = ctx_fd(u->c);  /* readable once c is done */
    if (fd < 0 && fd != CTX_EINVAL) return luaL_error(L, "ctx: %s", ctx_strerror(fd));
  }
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
  int exited = wait_child(pid, pidfd, u->c, fd, -1, &status);
  if (!exited) {
    /* c ended: TERM the group, KILL it after the grace period, reap */
    kill(-pid, SIGTERM);
    int64_t ms = grace <= 0 ? 0 : grace >= 1e9 ? -1 : (int64_t)(grace * 1000 + 0.5);
    if (!wait_child(pid, pidfd, NULL, -1, (int)ms, &status)) {
      kill(-pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    }
    kill(-pid, SIGKILL);  /* what is left of the group, if anything */
  }
  if (pidfd >= 0) close(pidfd);
  if (exited) return push_status(L, status);
  lua_pushnil(L);
  lctx_pusherr(L, ctx_err(u->c));
  return 2;
}
