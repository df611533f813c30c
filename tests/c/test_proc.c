/* test_proc.c — supervising a child: its exit, its end when a context ends
** (TERM, grace, KILL, reap, the rest of its group), and the terminal. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include "test.h"

extern char **environ;

/* sh -c cmd in a process group of its own; its stdout to out_fd if >= 0 */
static pid_t spawn_sh(const char *cmd, int out_fd) {
  posix_spawnattr_t at;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_init(&at);
  posix_spawnattr_setpgroup(&at, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawn_file_actions_init(&fa);
  if (out_fd >= 0) posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  char *argv[] = { "sh", "-c", (char *)cmd, NULL };
  pid_t pid = -1;
  if (posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  return pid;
}

/* a zombie is dead: its reaper (init in a container) may take its time */
static int alive(pid_t pid) {
  char path[64], st = 0;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return kill(pid, 0) == 0;
  int ok = fscanf(f, "%*d %*s %c", &st) == 1;
  fclose(f);
  return ok && st != 'Z';
}

TEST(proc_exits_by_itself) {
  long base = test_live_allocs();
  ctx_t *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  pid_t pid = spawn_sh("exit 3", -1);
  ASSERT(pid > 0);
  ctx_proc_t *p;
  ASSERT_EQ(ctx_proc_open(pid, CTX_PROC_GROUP, &p), CTX_OK);
  size_t which;
  ASSERT_EQ(ctx_proc_wait(p, &c, 1, NULL, 0, 10000 * MS, &which), CTX_OK);
  ASSERT(which == CTX_PROC_EXITED);
  int st;
  ASSERT_EQ(ctx_proc_status(p, &st), 1);
  ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 3);
  ASSERT_EQ(ctx_proc_terminate(p, 0), CTX_OK);   /* nothing left to end */
  ASSERT(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD);  /* reaped */
  ctx_proc_close(p);
  ctx_unref(c);
  ASSERT_NO_LEAK(base);
}

/* The whole group ends: a background job of the shell too; a child that
** ignores SIGTERM gets SIGKILL after the grace period. */
TEST(proc_terminate_group_with_grace) {
  ctx_t *c;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 50 * MS, &c), CTX_OK);
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = spawn_sh("trap '' TERM; sleep 30 & echo $!; wait", out[1]);
  close(out[1]);
  ASSERT(pid > 0);
  char buf[32] = { 0 };
  ASSERT(read(out[0], buf, sizeof buf - 1) > 0);
  pid_t bg = atoi(buf);
  ASSERT(bg > 0 && alive(bg));
  ctx_proc_t *p;
  ASSERT_EQ(ctx_proc_open(pid, CTX_PROC_GROUP, &p), CTX_OK);
  size_t which;
  ASSERT_EQ(ctx_proc_wait(p, &c, 1, NULL, 0, -1, &which), CTX_OK);
  ASSERT_EQ(which, 0);
  int64_t t0 = ctx_now();
  ASSERT_EQ(ctx_proc_terminate(p, 200 * MS), CTX_OK);
  int64_t took = ctx_now() - t0;
  ASSERT(took >= 190 * MS && took < 5000 * MS);   /* TERM ignored: KILL after the grace */
  int st;
  ASSERT_EQ(ctx_proc_status(p, &st), 1);
  ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  ASSERT(WAIT_FOR(!alive(bg), 2000));   /* the rest of its group too */
  ctx_proc_close(p);
  close(out[0]);
  ctx_unref(c);
}

/* A stopped group gets SIGCONT with its SIGTERM, so it can act on it. */
TEST(proc_terminate_stopped_child) {
  pid_t pid = spawn_sh("sleep 30", -1);
  ASSERT(pid > 0);
  ctx_proc_t *p;
  ASSERT_EQ(ctx_proc_open(pid, CTX_PROC_GROUP, &p), CTX_OK);
  kill(-pid, SIGSTOP);
  int64_t t0 = ctx_now();
  ASSERT_EQ(ctx_proc_terminate(p, 5000 * MS), CTX_OK);
  ASSERT(ctx_now() - t0 < 3000 * MS);   /* no grace needed: TERM worked */
  int st;
  ASSERT_EQ(ctx_proc_status(p, &st), 1);
  ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
  ctx_proc_close(p);
}

/* A descendant that keeps the output pipe open neither delays the wait nor
** turns a stop into success. */
TEST(proc_pipe_holding_descendant) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = spawn_sh("sleep 5 & echo started", out[1]);
  close(out[1]);
  ctx_proc_t *p;
  ASSERT_EQ(ctx_proc_open(pid, CTX_PROC_GROUP | CTX_PROC_NOREAP, &p), CTX_OK);
  ctx_t *c;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 300 * MS, &c), CTX_OK);
  size_t which;
  int64_t t0 = ctx_now();
  ASSERT_EQ(ctx_proc_wait(p, &c, 1, NULL, 0, -1, &which), CTX_OK);
  ASSERT(which == CTX_PROC_EXITED);             /* the shell, at once */
  ASSERT(ctx_now() - t0 < 2000 * MS);
  /* the caller drains the pipe with the context: the stop wins */
  char buf[64];
  ASSERT(read(out[0], buf, sizeof buf) > 0);
  ASSERT_EQ(ctx_proc_wait(p, &c, 1, &out[0], 1, -1, &which), CTX_OK);
  ASSERT(which == CTX_PROC_EXITED);   /* exited is sticky */
  ASSERT_EQ(ctx_wait_any(&c, 1, &out[0], 1, -1, &which), CTX_OK);
  ASSERT_EQ(which, 0);                 /* the pipe stayed open: the context ended */
  ASSERT(ctx_now() - t0 < 2000 * MS);
  ASSERT_EQ(ctx_proc_terminate(p, 100 * MS), CTX_OK);   /* ends the sleep */
  ASSERT_EQ(ctx_proc_status(p, NULL), 0);        /* NOREAP: the caller reaps */
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  struct pollfd pf = { out[0], POLLIN, 0 };
  ASSERT_EQ(poll(&pf, 1, 2000), 1);              /* EOF: the sleep is gone */
  ASSERT_EQ(read(out[0], buf, sizeof buf), 0);
  ctx_proc_close(p);
  close(out[0]);
  ctx_unref(c);
}

/* Signals come back as CTX_EINTR from the wait and from the grace period;
** terminate goes on where it left off when called again. */
TEST(proc_eintr) {
  test_usr1_install(1);
  pid_t pid = spawn_sh("trap '' TERM; while :; do sleep 1; done", -1);
  ctx_proc_t *p;
  ASSERT_EQ(ctx_proc_open(pid, CTX_PROC_GROUP, &p), CTX_OK);
  pthread_t self = pthread_self(), t;
  size_t which;
  t = test_usr1_later(&self);
  ASSERT_EQ(ctx_proc_wait(p, NULL, 0, NULL, 0, -1, &which), CTX_EINTR);
  pthread_join(t, NULL);
  t = test_usr1_later(&self);
  int64_t t0 = ctx_now();
  ASSERT_EQ(ctx_proc_terminate(p, 300 * MS), CTX_EINTR);
  pthread_join(t, NULL);
  ASSERT_EQ(ctx_proc_terminate(p, 100000 * MS), CTX_OK);   /* keeps the first grace */
  ASSERT(ctx_now() - t0 < 3000 * MS);
  ASSERT_EQ(atomic_load(&test_usr1_handled), 2);
  test_usr1_restore();
  ctx_proc_close(p);
}

TEST(proc_bad_arguments) {
  ctx_proc_t *p;
  ASSERT_EQ(ctx_proc_open(0, 0, &p), CTX_EINVAL);
  ASSERT_EQ(ctx_proc_open(-1, 0, &p), CTX_EINVAL);
  ASSERT_EQ(ctx_proc_open(1, 0, NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_proc_open(1, 64, &p), CTX_EINVAL);
  size_t w;
  ASSERT_EQ(ctx_proc_wait(NULL, NULL, 0, NULL, 0, 0, &w), CTX_EINVAL);
  ASSERT_EQ(ctx_proc_terminate(NULL, 0), CTX_EINVAL);
  ASSERT_EQ(ctx_proc_status(NULL, NULL), CTX_EINVAL);
  ctx_proc_close(NULL);
  /* a pid that is not our child: it "exits" at once, nothing is signaled */
  ASSERT_EQ(ctx_proc_open(getppid(), 0, &p), CTX_OK);
  ASSERT_EQ(ctx_proc_wait(p, NULL, 0, NULL, 0, 1000 * MS, &w), CTX_OK);
  ASSERT(w == CTX_PROC_EXITED);
  ASSERT_EQ(ctx_proc_status(p, NULL), 0);
  ctx_proc_close(p);
}

/* ---- the terminal, on a pseudo-terminal of our own ---- */

/* Runs fn in a new session whose controlling terminal is a fresh pty; returns
** the master side. */
static int in_pty_session(pid_t *pid, int (*fn)(void)) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) || unlockpt(m)) return -1;
  char *name = ptsname(m);
  fflush(stdout);
  fflush(stderr);
  *pid = fork();
  if (*pid == 0) {
    setsid();
    int s = open(name, O_RDWR);   /* the session leader's first tty: controlling */
    ioctl(s, TIOCSCTTY, 0);
    dup2(s, 0);
    dup2(s, 1);
    dup2(s, 2);
    close(m);
    _exit(fn());
  }
  return m;
}

/* the script side: a command that reads the terminal, and one killed by ^C */
static atomic_int got_int;
static void on_int(int sig) { (void)sig; atomic_store(&got_int, 1); }
static int script(void) {
  signal(SIGINT, on_int);
  pid_t pid = spawn_sh("read x </dev/tty && echo got:$x", -1);
  ctx_proc_t *p;
  if (ctx_proc_open(pid, CTX_PROC_GROUP | CTX_PROC_TERMINAL, &p) != CTX_OK) return 10;
  size_t w;
  ctx_t *c;
  ctx_with_timeout(ctx_background(), 20000 * MS, &c);
  while (ctx_proc_wait(p, &c, 1, NULL, 0, -1, &w) == CTX_EINTR) {}
  int st = 0;
  if (w != CTX_PROC_EXITED || ctx_proc_status(p, &st) != 1 || !WIFEXITED(st)) return 11;
  if (WEXITSTATUS(st) != 0) return 12;
  ctx_proc_close(p);
  if (tcgetpgrp(0) != getpgrp()) return 13;     /* the terminal came back */
  /* Ctrl-C: reaches the command, which dies of it, and then us */
  pid = spawn_sh("echo ready; exec sleep 30", -1);
  ctx_proc_open(pid, CTX_PROC_GROUP | CTX_PROC_TERMINAL, &p);
  while (ctx_proc_wait(p, &c, 1, NULL, 0, -1, &w) == CTX_EINTR) {}
  if (w != CTX_PROC_EXITED || ctx_proc_status(p, &st) != 1) return 14;
  if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGINT) return 15;
  ctx_proc_close(p);
  if (!WAIT_FOR(atomic_load(&got_int), 2000)) return 16;
  /* a context that ends: the command dies, the terminal comes back */
  ctx_t *d;
  ctx_with_timeout(ctx_background(), 100 * MS, &d);
  pid = spawn_sh("sleep 30", -1);
  ctx_proc_open(pid, CTX_PROC_GROUP | CTX_PROC_TERMINAL, &p);
  if (tcgetpgrp(0) != pid) return 17;
  ctx_proc_wait(p, &d, 1, NULL, 0, -1, &w);
  if (w != 0 || ctx_proc_terminate(p, 500 * MS) != CTX_OK) return 18;
  ctx_proc_close(p);
  if (tcgetpgrp(0) != getpgrp()) return 19;
  /* two at once: the second gets the terminal when the first one ends */
  pid_t first = spawn_sh("echo first; sleep 0.3", -1);
  ctx_proc_t *p1;
  ctx_proc_open(first, CTX_PROC_GROUP | CTX_PROC_TERMINAL, &p1);
  pid = spawn_sh("read x </dev/tty && echo second:$x", -1);
  ctx_proc_open(pid, CTX_PROC_GROUP | CTX_PROC_TERMINAL, &p);
  if (tcgetpgrp(0) != first) return 20;
  while (ctx_proc_wait(p1, &c, 1, NULL, 0, -1, &w) == CTX_EINTR) {}
  ctx_proc_close(p1);
  if (tcgetpgrp(0) != pid) return 21;
  while (ctx_proc_wait(p, &c, 1, NULL, 0, -1, &w) == CTX_EINTR) {}
  if (w != CTX_PROC_EXITED || ctx_proc_status(p, &st) != 1 || !WIFEXITED(st) || WEXITSTATUS(st))
    return 22;
  ctx_proc_close(p);
  if (tcgetpgrp(0) != getpgrp()) return 23;
  ctx_unref(d);
  ctx_unref(c);
  return 0;
}

/* everything read from the master so far: one read may hold two lines */
static char seen_out[4096];
static size_t nseen_out;

static int expect(int m, const char *what, int ms) {
  char *buf = seen_out;
  size_t n = nseen_out;
  int64_t until = ctx_now() + ms * MS;
  while (ctx_now() < until) {
    struct pollfd pf = { m, POLLIN, 0 };
    buf[n] = 0;
    if (strstr(buf, what)) return 1;
    if (poll(&pf, 1, 20) == 1) {
      ssize_t k = read(m, buf + n, sizeof seen_out - 1 - n);
      if (k <= 0) return 0;
      nseen_out = n += (size_t)k;
    }
  }
  return 0;
}

TEST(proc_terminal_foreground_and_ctrl_c) {
  pid_t pid = -1;
  int m = in_pty_session(&pid, script);
  ASSERT(m >= 0);
  test_sleep_ns(300 * MS);
  ASSERT(write(m, "hello\n", 6) == 6);
  ASSERT(expect(m, "got:hello", 5000));
  ASSERT(expect(m, "ready", 5000));
  test_sleep_ns(100 * MS);
  ASSERT(write(m, "\003", 1) == 1);   /* ^C */
  ASSERT(expect(m, "first", 5000));
  test_sleep_ns(500 * MS);
  ASSERT(write(m, "two\n", 4) == 4);
  int found = expect(m, "second:two", 5000);
  int st;
  int64_t until = ctx_now() + 10000 * MS;
  while (waitpid(pid, &st, WNOHANG) == 0 && ctx_now() < until) {
    char drain[256];
    struct pollfd pf = { m, POLLIN, 0 };
    if (poll(&pf, 1, 10) == 1 && read(m, drain, sizeof drain) <= 0) test_sleep_ns(MS);
  }
  if (ctx_now() >= until) { kill(pid, SIGKILL); waitpid(pid, &st, 0); }
  close(m);
  if (!WIFEXITED(st) || WEXITSTATUS(st)) fprintf(stderr, "  script: status %#x\n", st);
  ASSERT(found);
  ASSERT(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 0);
}
