/* test_deadline.c — deadlines and timeouts: firing (never early), inheritance,
** cancel before the deadline, layered timeouts, and timers after fork(). */
#include <dlfcn.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test.h"
#include "ctx_int.h"

#define HOUR (3600LL * 1000 * MS)

/* The latest moment a deadline may fire in a test: machines are shared. */
#define SLACK (1500 * MS)

static void check_fires(ctx_t *c, int64_t deadline) {
  ASSERT_EQ(ctx_wait(c, 5000 * MS), CTX_OK);
  int64_t seen = ctx_now();
  ASSERT(seen >= deadline);  /* never early */
  ASSERT(seen < deadline + SLACK);
  ASSERT_EQ(ctx_err(c), CTX_ERR_DEADLINE);
}

TEST(deadline) {
  long base = test_live_allocs();
  ctx_t *c, *child, *later;
  int64_t d = ctx_now() + 50 * MS, got = 0;
  ASSERT_EQ(ctx_with_deadline(ctx_background(), d, &c), CTX_OK);
  ASSERT_EQ(ctx_kind(c), CTX_KIND_DEADLINE);
  ASSERT(ctx_deadline(c, &got) && got == d);
  ASSERT_EQ(ctx_with_cancel(c, &child), CTX_OK);
  ASSERT(ctx_deadline(child, &got) && got == d);  /* inherited */
  ASSERT_EQ(ctx_with_deadline(c, d + HOUR, &later), CTX_OK);
  ASSERT(ctx_deadline(later, &got) && got == d);  /* the parent's is earlier */
  ASSERT_EQ(ctx_kind(later), CTX_KIND_CANCEL);
  ASSERT(!ctx_done(c));
  check_fires(c, d);
  /* the timer thread ends the children right after c (as Go does) */
  ASSERT_EQ(ctx_wait(child, 5000 * MS), CTX_OK);
  ASSERT_EQ(ctx_wait(later, 5000 * MS), CTX_OK);
  ASSERT_EQ(ctx_err(child), CTX_ERR_DEADLINE);
  ASSERT_EQ(ctx_err(later), CTX_ERR_DEADLINE);
  ASSERT_EQ(ctx_cancel(c), 0);  /* the deadline won */
  ASSERT_EQ(ctx_err(c), CTX_ERR_DEADLINE);
  ctx_unref(later); ctx_unref(child); ctx_unref(c);
  ASSERT_NO_LEAK(base);
}

TEST(equal_deadline_is_own) {
  ctx_t *p, *c;
  int64_t d = ctx_now() + HOUR;
  ASSERT_EQ(ctx_with_deadline(ctx_background(), d, &p), CTX_OK);
  ASSERT_EQ(ctx_with_deadline(p, d, &c), CTX_OK);  /* not later: Go keeps it */
  ASSERT_EQ(ctx_kind(c), CTX_KIND_DEADLINE);
  ctx_t *shorter;
  ASSERT_EQ(ctx_with_deadline(p, d - HOUR / 2, &shorter), CTX_OK);
  int64_t got;
  ASSERT(ctx_deadline(shorter, &got) && got == d - HOUR / 2);
  ctx_unref(shorter); ctx_unref(c); ctx_unref(p);
}

TEST(timeout) {
  ctx_t *p, *c;
  ASSERT_EQ(ctx_with_value(ctx_background(), "k", "v", NULL, &p), CTX_OK);
  int64_t before = ctx_now();
  ASSERT_EQ(ctx_with_timeout(p, 40 * MS, &c), CTX_OK);
  int64_t d;
  ASSERT(ctx_deadline(c, &d));
  ASSERT(d >= before + 40 * MS && d <= ctx_now() + 40 * MS);
  check_fires(c, d);
  ctx_unref(c); ctx_unref(p);
}

TEST(canceled_timeout) {
  long base = test_live_allocs();
  ctx_t *c;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 1000 * MS, &c), CTX_OK);
  ASSERT_EQ(ctx_cancel(c), 1);
  ASSERT_EQ(ctx_wait(c, 0), CTX_OK);
  ASSERT_EQ(ctx_err(c), CTX_ERR_CANCELED);
  ctx_unref(c);
  ASSERT_NO_LEAK(base);
}

TEST(past_deadline_done_at_creation) {
  ctx_t *c;
  int64_t timeouts[] = { 0, -1, -HOUR, INT64_MIN };
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(ctx_with_timeout(ctx_background(), timeouts[i], &c), CTX_OK);
    ASSERT_EQ(ctx_err(c), CTX_ERR_DEADLINE);
    ASSERT(ctx_cause(c) == NULL);
    ASSERT_EQ(ctx_kind(c), CTX_KIND_DEADLINE);
    ctx_unref(c);
  }
  atomic_int released = 0;
  ASSERT_EQ(ctx_with_deadline_cause(ctx_background(), ctx_now() - 1, &released,
                                    test_release_count, &c), CTX_OK);
  ASSERT_EQ(ctx_err(c), CTX_ERR_DEADLINE);
  ASSERT(ctx_cause(c) == &released);
  ctx_unref(c);
  ASSERT_EQ(released, 1);
}

TEST(forever_is_plain_cancel) {
  ctx_t *c, *d;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), CTX_FOREVER, &c), CTX_OK);
  ASSERT_EQ(ctx_kind(c), CTX_KIND_CANCEL);
  ASSERT(!ctx_deadline(c, NULL));
  ASSERT_EQ(ctx_with_timeout(c, CTX_FOREVER - 1, &d), CTX_OK);  /* saturates */
  ASSERT_EQ(ctx_kind(d), CTX_KIND_CANCEL);
  ctx_unref(d); ctx_unref(c);
  ASSERT_EQ(ctx_seconds_to_ns(1.5), 1500000000LL);
  ASSERT_EQ(ctx_seconds_to_ns(1e-10), 1);  /* rounds up */
  ASSERT_EQ(ctx_seconds_to_ns(1e300), CTX_FOREVER);
  ASSERT_EQ(ctx_seconds_to_ns(-2.0), -2000000000LL);
  ASSERT_EQ(ctx_wall_to_mono(1.0 / 0.0), CTX_FOREVER);
  double wall = ctx_wall_now();
  int64_t mono = ctx_wall_to_mono(wall + 10);
  ASSERT(mono - ctx_now() > 9 * 1000 * MS && mono - ctx_now() <= 10 * 1000 * MS + 50 * MS);
  double back = ctx_mono_to_wall(mono);
  ASSERT(back > wall + 9.999 && back < wall + 10.001);
}

TEST(deadlines_never_fire_early) {
  enum { N = 200 };
  ctx_t *cs[N];
  int64_t deadlines[N];
  unsigned seed = 12345;
  for (int i = 0; i < N; i++) {
    seed = seed * 1103515245 + 12345;
    deadlines[i] = ctx_now() + 1 * MS + (int64_t)(seed >> 8) % (60 * MS);
    ASSERT_EQ(ctx_with_deadline(ctx_background(), deadlines[i], &cs[i]), CTX_OK);
  }
  for (int i = 0; i < N; i++) {
    ASSERT_EQ(ctx_wait(cs[i], 5000 * MS), CTX_OK);
    ASSERT(ctx_now() >= deadlines[i]);
    ASSERT_EQ(ctx_err(cs[i]), CTX_ERR_DEADLINE);
    ctx_unref(cs[i]);
  }
}

typedef struct { int64_t deadline; _Atomic int64_t seen; } fire_rec_t;

static void note_time(void *arg) {
  atomic_store(&((fire_rec_t *)arg)->seen, ctx_now());
}

/* an executor that runs callbacks at once, on the thread that made them due */
static void inline_submit(ctx_executor_t *self, ctx_after_t *a) {
  (void)self;
  ctx_after_run(a);
}

TEST(after_func_sees_deadline_late_not_early) {
  enum { N = 100 };
  static ctx_executor_t ex = { inline_submit };
  static fire_rec_t rec[N];
  for (int i = 0; i < N; i++) {
    ctx_t *c;
    rec[i].deadline = ctx_now() + (int64_t)(N - i) * MS / 2 + 5 * MS;
    atomic_store(&rec[i].seen, 0);
    ASSERT_EQ(ctx_with_deadline(ctx_background(), rec[i].deadline, &c), CTX_OK);
    ASSERT_EQ(ctx_after_func(c, note_time, &rec[i], NULL, &ex, NULL), CTX_OK);
    ctx_unref(c);  /* the registration keeps it until it fires */
  }
  for (int i = 0; i < N; i++) {
    ASSERT(WAIT_FOR(atomic_load(&rec[i].seen) != 0, 5000));
    ASSERT(atomic_load(&rec[i].seen) >= rec[i].deadline);
  }
}

/* Go's testLayers with timeouts: a random chain of value, cancel and
** timeout layers; the innermost is done once the shortest timeout passes. */
TEST(layers_timeout) {
  unsigned seed = 7;
  for (int round = 0; round < 20; round++) {
    ctx_t *layers[16], *c = ctx_background();
    int n = 0, timeouts = 0;
    const char *keys[] = { "a", "b", "c" };
    for (int i = 0; i < 12; i++) {
      seed = seed * 1103515245 + 12345;
      int kind = (int)((seed >> 16) % 3);
      ctx_t *next;
      if (kind == 0) ASSERT_EQ(ctx_with_value(c, (void *)keys[i % 3], (void *)keys[i % 3], NULL, &next), CTX_OK);
      else if (kind == 1) ASSERT_EQ(ctx_with_cancel(c, &next), CTX_OK);
      else { ASSERT_EQ(ctx_with_timeout(c, 20 * MS + (i % 4) * MS, &next), CTX_OK); timeouts++; }
      layers[n++] = c = next;
    }
    if (timeouts) {
      ASSERT_EQ(ctx_wait(c, 5000 * MS), CTX_OK);
      ASSERT_EQ(ctx_err(c), CTX_ERR_DEADLINE);
    } else {
      ASSERT_EQ(ctx_wait(c, 30 * MS), CTX_ETIMEDOUT);
    }
    for (int i = n - 1; i >= 0; i--) ctx_unref(layers[i]);
  }
}

static int child_checks(void) {
  /* in the forked child: a new deadline fires, and one made before the
  ** fork (still pending in the parent) fires too */
  ctx_t *c;
  if (ctx_with_timeout(ctx_background(), 20 * MS, &c) != CTX_OK) return 10;
  if (ctx_wait(c, 5000 * MS) != CTX_OK) return 11;
  if (ctx_err(c) != CTX_ERR_DEADLINE) return 12;
  ctx_unref(c);
  return 0;
}

static void set_flag(void *arg) { atomic_store((atomic_int *)arg, 1); }

TEST(fork_child_timers) {
  ctx_t *before, *hour;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), HOUR, &hour), CTX_OK);  /* thread up */
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 100 * MS, &before), CTX_OK);
  fflush(NULL);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    int rc = child_checks();
    if (!rc && ctx_wait(before, 5000 * MS) != CTX_OK) rc = 13;
    if (!rc && ctx_err(before) != CTX_ERR_DEADLINE) rc = 14;
    atomic_int ran = 0;
    ctx_t *c;
    if (!rc && ctx_with_cancel(ctx_background(), &c) == CTX_OK) {
      ctx_after_func(c, set_flag, &ran, NULL, NULL, NULL);  /* default executor */
      ctx_cancel(c);
      for (int i = 0; i < 5000 && !atomic_load(&ran); i++) test_sleep_ns(MS);
      if (!atomic_load(&ran)) rc = 15;
    }
    _exit(rc);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  /* the parent's timers are unaffected */
  ASSERT_EQ(ctx_wait(before, 5000 * MS), CTX_OK);
  ASSERT(!ctx_done(hour));
  ctx_unref(before); ctx_unref(hour);
}


TEST(expire_fires_without_the_timer_thread) {
  static char cause_a[] = "A", cause_b[] = "B";
  ctx_t *blocker, *p, *c, *g, *v, *w, *later;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &blocker), CTX_OK);
  atomic_store(&ctx__timer_stall, 1);   /* a timer thread that is late */
  int64_t d = ctx_now() + 20 * MS;
  ASSERT_EQ(ctx_with_deadline_cause(ctx_background(), d, cause_a, NULL, &p), CTX_OK);
  ASSERT_EQ(ctx_with_deadline_cause(p, d, cause_b, NULL, &c), CTX_OK);  /* equal: own */
  ASSERT_EQ(ctx_with_cancel(c, &g), CTX_OK);
  ASSERT_EQ(ctx_with_value(g, "k", NULL, NULL, &v), CTX_OK);
  ASSERT_EQ(ctx_without_cancel(v, &w), CTX_OK);
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 3600LL * 1000 * MS, &later), CTX_OK);
  ASSERT_EQ(ctx_expire(v), 0);  /* still ahead */
  test_sleep_ns(40 * MS);
  ASSERT(!ctx_done(v));  /* passed, but the timer thread is held */
  ASSERT_EQ(ctx_expire(v), 1);
  ASSERT_EQ(ctx_err(p), CTX_ERR_DEADLINE);  /* the outermost owner ended */
  ASSERT(ctx_cause(p) == cause_a);
  ASSERT(ctx_cause(v) == cause_a && ctx_cause(c) == cause_a);
  ASSERT_EQ(ctx_err(g), CTX_ERR_DEADLINE);
  ASSERT_EQ(ctx_expire(v), 0);  /* done now */
  ASSERT(!ctx_done(w));
  ASSERT_EQ(ctx_expire(w), 0);  /* no deadline past WithoutCancel */
  ASSERT_EQ(ctx_expire(later), 0);
  ASSERT_EQ(ctx_expire(ctx_background()), 0);
  ASSERT_EQ(ctx_expire(NULL), CTX_EINVAL);
  atomic_store(&ctx__timer_stall, 0);
  ctx_t *all[] = { later, w, v, g, c, p, blocker };
  for (int i = 0; i < 7; i++) ctx_unref(all[i]);
}

/* A host that dlopen()s the core (a Python or Lua module) and unloads it
** while the timer thread lives must survive: the core pins itself. Runs in
** a child, so a crash is a failure, not the end of the run. CTX_TEST_SO
** names the built libctx.so (the makefile sets it). */
TEST(dlclose_with_live_timer_thread) {
  const char *so = getenv("CTX_TEST_SO");
  if (!so) { fprintf(stderr, "  (CTX_TEST_SO not set: skipped)\n"); return; }
  fflush(NULL);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!h) _exit(20);
    int (*with_timeout)(ctx_t *, int64_t, ctx_t **) =
        (int (*)(ctx_t *, int64_t, ctx_t **))dlsym(h, "ctx_with_timeout");
    ctx_t *(*background)(void) = (ctx_t *(*)(void))dlsym(h, "ctx_background");
    ctx_t *c;
    if (!with_timeout || !background || with_timeout(background(), 30 * MS, &c)) _exit(21);
    dlclose(h);
    test_sleep_ns(100 * MS);  /* the timer thread wakes at 30 ms */
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
}
