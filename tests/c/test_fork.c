/* test_fork.c — fork() in every awkward moment: deadlines due, a cancel
** propagating, descriptors shared, callbacks queued; the child is consistent. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test.h"
#include "ctx_int.h"

static int child_status(pid_t pid, int limit_ms) {
  int st = 0;
  int64_t until = ctx_now() + limit_ms * MS;
  while (waitpid(pid, &st, WNOHANG) == 0) {
    if (ctx_now() > until) { kill(pid, SIGKILL); waitpid(pid, &st, 0); return -1; }
    test_sleep_ns(MS);
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static int readable(int fd) {
  struct pollfd p = { fd, POLLIN, 0 };
  return poll(&p, 1, 0) == 1;
}

/* Deadlines that pass around the fork fire in the child, the ones the timer
** thread had taken out of its heap at that moment included. */
TEST(fork_deadlines_due_fire_in_child) {
  enum { N = 300 };
  ctx_t *cs[N];
  for (int round = 0; round < 20; round++) {
    int64_t due = ctx_now() + 3 * MS;
    for (int i = 0; i < N; i++) ASSERT_EQ(ctx_with_deadline(ctx_background(), due + i * 2000, &cs[i]), CTX_OK);
    while (ctx_now() < due + (round % 4) * 200000) {}
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      int bad = 0;
      for (int i = 0; i < N; i++)
        bad += ctx_wait(cs[i], 2000 * MS) != CTX_OK || ctx_err(cs[i]) != CTX_ERR_DEADLINE;
      _exit(bad ? 1 : 0);
    }
    ASSERT_EQ(child_status(pid, 10000), 0);
    for (int i = 0; i < N; i++) ctx_unref(cs[i]);
  }
}

/* The same with the child making no wait at all: the timer restarts. */
TEST(fork_timer_restarts_without_waits) {
  ctx_t *c;
  atomic_store(&ctx__timer_stall, 1);   /* due before the fork, unfired */
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 5 * MS, &c), CTX_OK);
  test_sleep_ns(20 * MS);
  ASSERT(!ctx_done(c));
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    atomic_store(&ctx__timer_stall, 0);
    _exit(WAIT_FOR(ctx_done(c), 3000) ? 0 : 1);
  }
  atomic_store(&ctx__timer_stall, 0);
  ASSERT_EQ(child_status(pid, 10000), 0);
  ctx_unref(c);
}

typedef struct { ctx_t *root; _Atomic int go; } prop_t;
static void *cancel_root(void *arg) {
  prop_t *p = arg;
  while (!atomic_load(&p->go)) {}
  ctx_cancel(p->root);
  return NULL;
}

/* fork() while another thread is ending a big tree: in the child no node
** lock is held and every child of a done parent is done. */
TEST(fork_during_propagation) {
  long n = test_iters(100000);
  if (n < 20000) n = 20000;
  ctx_t **kids = malloc((size_t)n * sizeof *kids);
  for (int round = 0; round < 20; round++) {
    prop_t p = { .go = 0 };
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &p.root), CTX_OK);
    for (long i = 0; i < n; i++)
      ASSERT_EQ(ctx_with_cancel(i < 10 ? p.root : kids[i / 10 - 1], &kids[i]), CTX_OK);
    pthread_t t;
    pthread_create(&t, NULL, cancel_root, &p);
    atomic_store(&p.go, 1);
    while (!ctx_done(p.root)) {}   /* the walk has begun */
    for (volatile int spin = 0; spin < (round % 5) * 20000; spin++) {}
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      int bad = 0;
      /* consistent: below a done node everything is done */
      for (long i = 10; i < n; i++)
        if (ctx_done(kids[i / 10 - 1]) && !ctx_done(kids[i])) bad |= 1;
      if (ctx_done(p.root)) for (long i = 0; i < 10; i++) bad |= !ctx_done(kids[i]) ? 2 : 0;
      /* no lock held: these take the locks of the root and of nodes inside */
      ctx_t *x;
      for (long i = 0; i < n; i += n / 50) {
        if (ctx_with_cancel(kids[i], &x) != CTX_OK) bad |= 4;
        ctx_cancel(x);
        ctx_unref(x);
      }
      ctx_cancel(p.root);   /* returns: nothing waits for a walker that is gone */
      for (long i = 0; i < n; i++) bad |= !ctx_done(kids[i]) ? 8 : 0;
      _exit(bad);
    }
    ASSERT_EQ(child_status(pid, 20000), 0);
    pthread_join(t, NULL);
    for (long i = n - 1; i >= 0; i--) ctx_unref(kids[i]);
    ctx_unref(p.root);
  }
  free(kids);
}

/* A context's descriptor is the child's own after fork: a cancel on one side
** never makes the other side's readable. */
TEST(fork_context_fd_not_shared) {
  ctx_t *c, *d;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &d), CTX_OK);
  int fc = ctx_fd(c), fdd = ctx_fd(d);
  ASSERT(fc >= 0 && fdd >= 0);
  ctx_cancel(d);   /* done before the fork: readable on both sides */
  int sync[2];
  ASSERT_EQ(pipe(sync), 0);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int bad = 0;
    bad |= ctx_fd(c) != fc;              /* the same number */
    bad |= !readable(fdd) ? 2 : 0;
    ctx_cancel(c);                        /* the child's copy of c */
    bad |= !readable(fc) ? 4 : 0;
    char x = 1;
    bad |= write(sync[1], &x, 1) != 1 ? 8 : 0;
    _exit(bad);
  }
  char x;
  ASSERT_EQ(read(sync[0], &x, 1), 1);
  ASSERT_EQ(child_status(pid, 10000), 0);
  ASSERT(!ctx_done(c));
  ASSERT(!readable(fc));                  /* the parent's stays quiet */
  ASSERT(readable(fdd));
  /* and the other way round */
  pid = fork();
  if (pid == 0) _exit(WAIT_FOR(!readable(ctx_fd(c)), 10) && !ctx_done(c) ? 0 : 1);
  ctx_cancel(c);
  ASSERT_EQ(child_status(pid, 10000), 0);
  close(sync[0]); close(sync[1]);
  ctx_unref(c); ctx_unref(d);
}

/* A waiting thread's wake-up descriptor is fresh in the child too: a child
** that waits is woken by its own cancels, never by the parent's. */
TEST(fork_waits_in_child) {
  ctx_t *c, *e;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 30 * MS, &e), CTX_OK);
  ASSERT_EQ(ctx_wait(c, 1 * MS), CTX_ETIMEDOUT);   /* makes our wake-up event */
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int64_t t0 = ctx_now();
    int rc = ctx_wait(c, 300 * MS);   /* the parent cancels its c meanwhile */
    int bad = rc != CTX_ETIMEDOUT || ctx_now() - t0 < 290 * MS;
    bad |= ctx_wait(e, 5000 * MS) != CTX_OK;
    _exit(bad);
  }
  test_sleep_ns(50 * MS);
  ctx_cancel(c);
  ASSERT_EQ(child_status(pid, 10000), 0);
  ctx_unref(c); ctx_unref(e);
}

/* Callbacks queued before the fork run in one process only: the parent. */
static void mark(void *arg) { atomic_fetch_add((atomic_int *)arg, 1); }
TEST(fork_queued_callbacks_run_once) {
  ctx_queue_t *q;
  ASSERT_EQ(ctx_queue_new(&q), CTX_OK);
  ctx_t *c, *later;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &later), CTX_OK);
  atomic_int runs = 0, later_runs = 0;
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(ctx_after_func(c, mark, &runs, NULL, ctx_queue_executor(q), NULL), CTX_OK);
  ASSERT_EQ(ctx_after_func(later, mark, &later_runs, NULL, ctx_queue_executor(q), NULL), CTX_OK);
  ctx_cancel(c);
  ASSERT(ctx_queue_pending(q));
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    ctx_task_t *t;
    int bad = ctx_queue_pending(q) != 0;
    bad |= ctx_queue_pop(q, 20 * MS, &t) != CTX_ETIMEDOUT;
    /* a registration still pending is the child's to run when it ends */
    ctx_cancel(later);
    bad |= ctx_queue_pop(q, 1000 * MS, &t) != CTX_OK;
    if (!bad) ctx_task_run(t);
    bad |= atomic_load(&later_runs) != 1 || atomic_load(&runs) != 0;
    _exit(bad);
  }
  ASSERT_EQ(child_status(pid, 10000), 0);
  ctx_task_t *t;
  while (ctx_queue_pop(q, 0, &t) == CTX_OK) ctx_task_run(t);
  ASSERT_EQ(atomic_load(&runs), 5);
  ctx_queue_close(q);
  ctx_unref(later); ctx_unref(c);
}

/* The default pool's threads are gone in the child: a callback registered in
** the parent and ending in the child still runs there. */
TEST(fork_default_executor_in_child) {
  ctx_t *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  atomic_int runs = 0;
  ASSERT_EQ(ctx_after_func(c, mark, &runs, NULL, NULL, NULL), CTX_OK);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    ctx_cancel(c);
    _exit(WAIT_FOR(atomic_load(&runs) == 1, 3000) ? 0 : 1);
  }
  ASSERT_EQ(child_status(pid, 10000), 0);
  ASSERT_EQ(atomic_load(&runs), 0);
  ctx_cancel(c);
  ASSERT(WAIT_FOR(atomic_load(&runs) == 1, 3000));
  ctx_unref(c);
}
