/* test_wait_any.c — one wait on many contexts and descriptors: no limit, which
** one ended it, deadlines fired by the waiter when the timer is late, signals. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include "test.h"
#include "ctx_int.h"

typedef struct { ctx_t *c; int64_t after_ns; } later_t;

static void *cancel_after(void *arg) {
  later_t *l = arg;
  test_sleep_ns(l->after_ns);
  ctx_cancel(l->c);
  return NULL;
}

TEST(wait_any_many_contexts) {
  long base = test_live_allocs();
  enum { N = 1000 };
  ctx_t **cs = malloc(N * sizeof *cs);
  for (int i = 0; i < N; i++) ASSERT_EQ(ctx_with_cancel(ctx_background(), &cs[i]), CTX_OK);
  size_t which = 0;
  ASSERT_EQ(ctx_wait_any(cs, N, NULL, 0, 10 * MS, &which), CTX_ETIMEDOUT);
  for (int round = 0; round < 3; round++) {
    int r = (round * 397 + 11) % N;
    later_t l = { cs[r], 20 * MS };
    pthread_t t;
    pthread_create(&t, NULL, cancel_after, &l);
    ASSERT_EQ(ctx_wait_any(cs, N, NULL, 0, 10000 * MS, &which), CTX_OK);
    ASSERT_EQ(which, r);
    pthread_join(t, NULL);
    ctx_unref(cs[r]);
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &cs[r]), CTX_OK);
  }
  /* every registration is gone once the wait returns */
  for (int i = 0; i < N; i++) ASSERT_EQ(ctx_num_children(cs[i]), 0);
  for (int i = 0; i < N; i++) ctx_unref(cs[i]);
  free(cs);
  ASSERT_NO_LEAK(base);
}

TEST(wait_any_lowest_done_index_and_nulls) {
  ctx_t *a, *b, *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &a), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &b), CTX_OK);
  ASSERT_EQ(ctx_with_value(b, "k", NULL, NULL, &c), CTX_OK);
  ctx_cancel(b);
  ctx_t *set[] = { NULL, a, c, b, ctx_background() };
  size_t which = 99;
  ASSERT_EQ(ctx_wait_any(set, 5, NULL, 0, -1, &which), CTX_OK);
  ASSERT_EQ(which, 2);   /* c, through its value node, before b */
  ctx_t *live[] = { NULL, a, ctx_background(), ctx_todo() };
  ASSERT_EQ(ctx_wait_any(live, 4, NULL, 0, 5 * MS, &which), CTX_ETIMEDOUT);
  ASSERT_EQ(ctx_wait_any(NULL, 0, NULL, 0, 1 * MS, &which), CTX_ETIMEDOUT);
  ASSERT_EQ(ctx_wait_any(NULL, 3, NULL, 0, 1 * MS, &which), CTX_EINVAL);
  ASSERT_EQ(ctx_wait_any(set, 1, NULL, 1, 1 * MS, &which), CTX_EINVAL);
  ASSERT_EQ(ctx_wait_any(set, 1, NULL, 0, 1 * MS, NULL), CTX_EINVAL);
  ctx_unref(c); ctx_unref(b); ctx_unref(a);
}

TEST(wait_any_descriptors) {
  ctx_t *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  int p1[2], p2[2];
  ASSERT_EQ(pipe(p1), 0);
  ASSERT_EQ(pipe(p2), 0);
  int fds[] = { p1[0], p2[0] };
  size_t which;
  ASSERT_EQ(ctx_wait_any(&c, 1, fds, 2, 5 * MS, &which), CTX_ETIMEDOUT);
  ASSERT_EQ(write(p2[1], "x", 1), 1);
  ASSERT_EQ(ctx_wait_any(&c, 1, fds, 2, -1, &which), CTX_OK);
  ASSERT_EQ(which, 2);   /* nc + j */
  close(p1[1]);          /* a hang-up counts as ready too */
  ASSERT_EQ(ctx_wait_any(NULL, 0, fds, 1, -1, &which), CTX_OK);
  ASSERT_EQ(which, 0);
  ctx_cancel(c);          /* a done context comes first */
  ASSERT_EQ(ctx_wait_any(&c, 1, fds, 2, -1, &which), CTX_OK);
  ASSERT_EQ(which, 0);
  /* writable instead: a pipe with room is at once, a full one once read */
  int wfd = p2[1] | CTX_FD_WRITE;
  ASSERT_EQ(ctx_wait_any(NULL, 0, &wfd, 1, -1, &which), CTX_OK);
  ASSERT_EQ(fcntl(p2[1], F_SETFL, O_NONBLOCK), 0);
  ASSERT_EQ(fcntl(p2[0], F_SETFL, O_NONBLOCK), 0);
  char chunk[4096] = { 0 };
  while (write(p2[1], chunk, sizeof chunk) > 0) {}
  ASSERT_EQ(ctx_wait_any(NULL, 0, &wfd, 1, 5 * MS, &which), CTX_ETIMEDOUT);
  while (read(p2[0], chunk, sizeof chunk) > 0) {}
  ASSERT_EQ(ctx_wait_any(NULL, 0, &wfd, 1, 1000 * MS, &which), CTX_OK);
  /* many descriptors: no fixed limit */
  enum { NFD = 40 };
  int many[NFD], ends[NFD][2];
  for (int i = 0; i < NFD; i++) { ASSERT_EQ(pipe(ends[i]), 0); many[i] = ends[i][0]; }
  ASSERT_EQ(write(ends[NFD - 3][1], "x", 1), 1);
  ASSERT_EQ(ctx_wait_any(NULL, 0, many, NFD, -1, &which), CTX_OK);
  ASSERT_EQ(which, NFD - 3);
  for (int i = 0; i < NFD; i++) { close(ends[i][0]); close(ends[i][1]); }
  close(p1[0]); close(p2[0]); close(p2[1]);
  ctx_unref(c);
}

/* A timer thread that is late (a loaded machine) must not make a wait late:
** the waiter fires the deadline itself, with the deadline's error and cause. */
TEST(wait_fires_late_deadline_itself) {
  static int cause = 7;
  ctx_t *d, *v, *other;
  atomic_store(&ctx__timer_stall, 1);
  ASSERT_EQ(ctx_with_timeout_cause(ctx_background(), 30 * MS, &cause, NULL, &d), CTX_OK);
  ASSERT_EQ(ctx_with_value(d, "k", NULL, NULL, &v), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &other), CTX_OK);
  ctx_t *set[] = { other, v };
  size_t which;
  int64_t dl;
  ASSERT_EQ(ctx_deadline(v, &dl), 1);
  ASSERT_EQ(ctx_wait_any(set, 2, NULL, 0, 10000 * MS, &which), CTX_OK);
  int64_t back = ctx_now();
  atomic_store(&ctx__timer_stall, 0);
  ASSERT_EQ(which, 1);
  ASSERT(back >= dl);                   /* never early */
  ASSERT(back < dl + 1000 * MS);        /* and not the whole wait */
  ASSERT_EQ(ctx_err(d), CTX_ERR_DEADLINE);
  ASSERT(ctx_cause(v) == &cause);
  /* the single-context wait and a timed-out wait follow the same rule */
  ctx_t *e;
  atomic_store(&ctx__timer_stall, 1);
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 20 * MS, &e), CTX_OK);
  ASSERT_EQ(ctx_wait(e, 10000 * MS), CTX_OK);
  ASSERT_EQ(ctx_err(e), CTX_ERR_DEADLINE);
  atomic_store(&ctx__timer_stall, 0);
  ctx_unref(e); ctx_unref(other); ctx_unref(v); ctx_unref(d);
}

/* A signal handler that runs makes every wait return CTX_EINTR, with or
** without SA_RESTART: waits sleep in poll(), which never restarts */
TEST(waits_return_eintr) {
  ctx_t *c;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 60000 * MS, &c), CTX_OK);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pthread_t self = pthread_self();
  for (int restart = 0; restart < 2; restart++) {
    test_usr1_install(restart);
    for (int shape = 0; shape < 3; shape++) {
      atomic_store(&test_usr1_handled, 0);
      pthread_t t = test_usr1_later(&self);
      size_t which;
      int rc = shape == 0 ? ctx_wait(c, -1)
             : shape == 1 ? ctx_wait(c, 20000 * MS)
             : ctx_wait_any(&c, 1, &p[0], 1, -1, &which);
      pthread_join(t, NULL);
      ASSERT_EQ(rc, CTX_EINTR);
      ASSERT_EQ(atomic_load(&test_usr1_handled), 1);
    }
    test_usr1_restore();
  }
  close(p[0]); close(p[1]);
  ctx_unref(c);
}

TEST(time_helpers_saturate) {
  ASSERT_EQ(ctx_poll_timeout(CTX_FOREVER), -1);
  ASSERT_EQ(ctx_poll_timeout(0), 0);
  ASSERT_EQ(ctx_poll_timeout(-5), 0);
  ASSERT_EQ(ctx_poll_timeout(1), 1);           /* rounded up: never a busy loop */
  ASSERT_EQ(ctx_poll_timeout(1000000), 1);
  ASSERT_EQ(ctx_poll_timeout(1000001), 2);
  ASSERT_EQ(ctx_poll_timeout(CTX_FOREVER - 1), 2147483647);
  ASSERT_EQ(ctx_deadline_from_timeout(CTX_FOREVER), CTX_FOREVER);
  ASSERT_EQ(ctx_deadline_from_timeout(CTX_FOREVER - 5), CTX_FOREVER);
  ASSERT(ctx_deadline_from_timeout(INT64_MIN) < 0);   /* long passed, no wrap */
  ASSERT(ctx_deadline_from_timeout(-CTX_FOREVER) < 0);
  int64_t now = ctx_now(), d = ctx_deadline_from_timeout(5 * MS);
  ASSERT(d >= now + 5 * MS && d < now + 500 * MS);
  ctx_t *c, *past, *none;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 3600000 * MS, &c), CTX_OK);
  int64_t left = ctx_remaining(c);
  ASSERT(left > 3590000 * MS && left <= 3600000 * MS);
  ASSERT_EQ(ctx_with_deadline(ctx_background(), -CTX_FOREVER, &past), CTX_OK);
  ASSERT_EQ(ctx_remaining(past), 0);            /* 0 once passed, whatever it was */
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &none), CTX_OK);
  ASSERT_EQ(ctx_remaining(none), CTX_FOREVER);
  ASSERT_EQ(ctx_remaining(NULL), CTX_EINVAL);
  ctx_unref(none); ctx_unref(past); ctx_unref(c);
}

/* ceil(s * 1e9) in exact integer arithmetic: s = m * 2^e */
static int64_t ceil_ns_exact(double s) {
  int e;
  double f = frexp(s, &e);              /* s = f * 2^e, 0.5 <= |f| < 1 */
  __int128 m = (__int128)ldexp(f, 53);  /* s = m * 2^(e-53), m exact */
  __int128 x = m * 1000000000;
  int sh = 53 - e;
  if (sh <= 0) return (int64_t)(x * ((__int128)1 << -sh));
  __int128 d = (__int128)1 << sh;       /* shifts of negatives are UB: divide */
  __int128 q = x / d;                   /* truncates toward zero */
  if (q * d != x && x > 0) q += 1;      /* ceil */
  return (int64_t)q;
}

/* seconds <-> ns without long double: never below the double's value by a
** nanosecond or more, monotonic, decimal inputs as meant, round trips exact */
TEST(time_conversions_exact) {
  unsigned seed = 12345;
  int64_t prev = INT64_MIN;
  double prev_s = -1e10;
  for (int i = 0; i < 200000; i++) {
    seed = seed * 1103515245 + 12345;
    double s = (double)(seed >> 4) / (double)(1u << 20) * (i % 2 ? 1e3 : 1e6) *
               (i % 3 == 0 ? -1 : 1);
    if (i % 5 == 0) s = 1.7e9 + (double)(seed % 1000000007) * 1e-9;   /* epoch times */
    int64_t ns = ctx_seconds_to_ns(s);
    int64_t exact = ceil_ns_exact(s);   /* the double's own value, rounded up */
    ASSERT(ns == exact || ns == exact - 1);
    double t = s + 1e-3;   /* monotonic */
    ASSERT(ctx_seconds_to_ns(t) >= ns);
    (void)prev; (void)prev_s;
  }
  ASSERT_EQ(ctx_seconds_to_ns(1e-9), 1);
  ASSERT_EQ(ctx_seconds_to_ns(-1e-10), 0);
  ASSERT_EQ(ctx_seconds_to_ns(-1.5), -1500000000);
  ASSERT_EQ(ctx_seconds_to_ns(0.1), 100000000);
  ASSERT_EQ(ctx_seconds_to_ns(0.3), 300000000);
  ASSERT_EQ(ctx_seconds_to_ns(-INFINITY), -CTX_FOREVER);
  ASSERT_EQ(ctx_seconds_to_ns(NAN), CTX_FOREVER);
  /* a deadline given on the wall clock comes back exactly */
  for (int i = 0; i < 100000; i++) {
    seed = seed * 1103515245 + 12345;
    double w = ctx_wall_now() + (double)(seed % 100000000) / 1e3 - 5e4;
    ASSERT(ctx_mono_to_wall(ctx_wall_to_mono(w)) == w);
  }
  ASSERT(ctx_mono_to_wall(CTX_FOREVER) == INFINITY);
}

/* ---- the spin before a wait sleeps ---- */

typedef struct { ctx_t *c; int64_t after_ns; atomic_int armed; } soon_t;

static void *cancel_soon(void *arg) {
  soon_t *l = arg;
  while (!atomic_load(&l->armed)) {}
  test_sleep_ns(l->after_ns);
  ctx_cancel(l->c);
  return NULL;
}

/* Waits that contexts end within the limit teach a wait to spin; waits that
** last longer unlearn it, down to none. */
TEST(wait_spin_adapts_to_how_long_waits_last) {
  atomic_store(&ctx__spin_ns, 0);
  for (int i = 0; i < 8; i++) {
    soon_t l = { NULL, 20000, 0 };
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &l.c), CTX_OK);
    pthread_t t;
    pthread_create(&t, NULL, cancel_soon, &l);
    atomic_store(&l.armed, 1);
    ASSERT_EQ(ctx_wait(l.c, 5000 * MS), CTX_OK);
    pthread_join(t, NULL);
    ctx_unref(l.c);
  }
  if (test_scale() == 1) ASSERT(atomic_load(&ctx__spin_ns) > 0);  /* tools are slower than the limit */
  ctx_t *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  for (int i = 0; i < 30; i++) ASSERT_EQ(ctx_wait(c, 2 * MS), CTX_ETIMEDOUT);
  ASSERT_EQ(atomic_load(&ctx__spin_ns), 0);
  ctx_unref(c);
}

typedef struct { pthread_t target; int64_t after_ns; atomic_int armed; } kick_t;

static void *usr1_soon(void *arg) {
  kick_t *k = arg;
  while (!atomic_load(&k->armed)) {}
  int64_t until = ctx_now() + k->after_ns;
  while (ctx_now() < until) {}
  pthread_kill(k->target, SIGUSR1);
  return NULL;
}

/* A signal that lands while a wait spins (signals blocked) is still
** reported: CTX_EINTR, not a sleep until the timeout. */
TEST(signal_during_wait_spin_is_reported) {
  /* TSan and valgrind take a signal themselves, and hand it over at a call
  ** of their choosing: the kernel never shows it pending */
#ifdef __SANITIZE_THREAD__
  return;
#endif
  const char *preload = getenv("LD_PRELOAD");
  if (preload && strstr(preload, "vgpreload")) return;
  ctx_t *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  test_usr1_install(1);
  for (int i = 0; i < test_iters(40); i++) {
    atomic_store(&ctx__spin_ns, CTX__SPIN_MAX_NS);
    atomic_store(&test_usr1_handled, 0);
    kick_t k = { pthread_self(), 5000 + (i % 10) * 10000, 0 };
    pthread_t t;
    pthread_create(&t, NULL, usr1_soon, &k);
    atomic_store(&k.armed, 1);
    int64_t t0 = ctx_now();
    int rc = ctx_wait(c, 3000 * MS);
    int64_t took = ctx_now() - t0;
    pthread_join(t, NULL);
    ASSERT_EQ(rc, CTX_EINTR);
    ASSERT_EQ(atomic_load(&test_usr1_handled), 1);
    ASSERT(took < 1000 * MS);
  }
  test_usr1_restore();
  atomic_store(&ctx__spin_ns, 0);
  ctx_unref(c);
}
