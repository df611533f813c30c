/* test_after.c — AfterFunc: when callbacks run, stop's answers, executors,
** which thread runs them, lock freedom, and what registrations keep alive. */
#include <pthread.h>
#include "test.h"

#define HOUR (3600LL * 1000 * MS)

typedef struct {
  atomic_int runs;
  pthread_t thread;
  ctx_t *c;           /* if set, the callback works on it (lock checks) */
  atomic_long sleep_ms;
} probe_t;

static void probe_fn(void *arg) {
  probe_t *p = arg;
  p->thread = pthread_self();
  if (p->c) {
    /* would deadlock if the core held c's lock while calling us */
    ctx_t *child;
    CHECK(ctx_num_children(p->c) == 0);
    CHECK(ctx_with_cancel(p->c, &child) == CTX_OK);
    CHECK(ctx_err(child) == ctx_err(p->c));
    ctx_unref(child);
    CHECK(ctx_cancel(p->c) == 0);
  }
  long ms = atomic_load(&p->sleep_ms);
  if (ms) test_sleep_ns(ms * MS);
  atomic_fetch_add(&p->runs, 1);
}

static void count_run(void *arg) { atomic_fetch_add((atomic_int *)arg, 1); }

TEST(after_func_called_after_cancel) {
  long base = test_live_allocs();
  probe_t p = { 0 };
  ctx_t *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  p.c = c;
  ASSERT_EQ(ctx_after_func(c, probe_fn, &p, NULL, NULL, NULL), CTX_OK);
  test_sleep_ns(10 * MS);
  ASSERT_EQ(atomic_load(&p.runs), 0);
  ctx_cancel(c);
  ASSERT(WAIT_FOR(atomic_load(&p.runs) == 1, 5000));
  ASSERT(!pthread_equal(p.thread, pthread_self()));  /* asynchronous */
  test_sleep_ns(10 * MS);
  ASSERT_EQ(atomic_load(&p.runs), 1);  /* once */
  ctx_unref(c);
  ASSERT_NO_LEAK(base);
}

TEST(after_func_called_after_timeout) {
  probe_t p = { 0 };
  ctx_t *c;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 10 * MS, &c), CTX_OK);
  ctx_after_t *stop;
  ASSERT_EQ(ctx_after_func(c, probe_fn, &p, NULL, NULL, &stop), CTX_OK);
  ASSERT(WAIT_FOR(atomic_load(&p.runs) == 1, 5000));
  ASSERT_EQ(ctx_after_stop(stop), 0);  /* already started */
  ctx_after_free(stop);
  ctx_unref(c);
}

TEST(after_func_called_immediately_when_done) {
  probe_t p = { 0 };
  ctx_t *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  ctx_cancel(c);
  ASSERT_EQ(ctx_after_func(c, probe_fn, &p, NULL, NULL, NULL), CTX_OK);
  ASSERT(WAIT_FOR(atomic_load(&p.runs) == 1, 5000));
  ctx_unref(c);
}

TEST(after_func_not_called_after_stop) {
  long base = test_live_allocs();
  probe_t p = { 0 };
  atomic_int released = 0;
  ctx_t *c;
  ctx_after_t *stop;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  ASSERT_EQ(ctx_after_func(c, probe_fn, &p, NULL, NULL, &stop), CTX_OK);
  ASSERT_EQ(ctx_after_stop(stop), 1);
  ASSERT_EQ(ctx_after_stop(stop), 0);  /* stopped before */
  ctx_cancel(c);
  test_sleep_ns(20 * MS);
  ASSERT_EQ(atomic_load(&p.runs), 0);
  ctx_after_free(stop);
  /* on a done context: runs (+1), then its release runs (+1) */
  ASSERT_EQ(ctx_after_func(c, count_run, &released, test_release_count, NULL, NULL), CTX_OK);
  ASSERT(WAIT_FOR(atomic_load(&released) == 2, 5000));
  ctx_unref(c);
  ASSERT_NO_LEAK(base);
}

TEST(after_func_release_after_run_and_stop) {
  atomic_int n = 0, rel = 0;
  ctx_t *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  ctx_after_t *s1, *s2;
  ASSERT_EQ(ctx_after_func(c, count_run, &n, test_release_count, NULL, &s1), CTX_OK);
  ASSERT_EQ(ctx_after_func(c, count_run, &rel, test_release_count, NULL, &s2), CTX_OK);
  ASSERT_EQ(ctx_after_stop(s2), 1);
  ASSERT_EQ(atomic_load(&rel), 1);  /* released by stop, never run */
  ctx_cancel(c);
  /* count_run adds one to n, then release adds another */
  ASSERT(WAIT_FOR(atomic_load(&n) == 2, 5000));
  ASSERT_EQ(atomic_load(&rel), 1);
  ctx_after_free(s1);
  ctx_after_free(s2);
  ctx_unref(c);
}

TEST(after_func_never_on_uncancelable) {
  probe_t p = { 0 };
  ctx_t *c, *w;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  ASSERT_EQ(ctx_without_cancel(c, &w), CTX_OK);
  ctx_after_t *s1, *s2;
  ASSERT_EQ(ctx_after_func(w, probe_fn, &p, NULL, NULL, &s1), CTX_OK);
  ASSERT_EQ(ctx_after_func(ctx_background(), probe_fn, &p, NULL, NULL, &s2), CTX_OK);
  ctx_cancel(c);
  test_sleep_ns(20 * MS);
  ASSERT_EQ(atomic_load(&p.runs), 0);
  ASSERT_EQ(ctx_after_stop(s1), 1);
  ASSERT_EQ(ctx_after_stop(s2), 1);
  ctx_after_free(s1); ctx_after_free(s2);
  ctx_unref(w); ctx_unref(c);
}

TEST(after_func_keeps_context_alive) {
  long base = test_live_allocs();
  probe_t p = { 0 };
  ctx_t *parent, *c, *v;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &parent), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(parent, &c), CTX_OK);
  ASSERT_EQ(ctx_with_value(c, "k", NULL, NULL, &v), CTX_OK);
  ASSERT_EQ(ctx_after_func(v, probe_fn, &p, NULL, NULL, NULL), CTX_OK);
  ctx_unref(v);
  ctx_unref(c);
  ASSERT_EQ(ctx_num_children(parent), 1);  /* still registered: kept alive */
  ctx_cancel(parent);
  ASSERT(WAIT_FOR(atomic_load(&p.runs) == 1, 5000));
  ctx_unref(parent);
  ASSERT_NO_LEAK(base);
}

/* a queueing executor run by hand: callbacks run exactly where we say */
typedef struct {
  ctx_executor_t ex;
  pthread_mutex_t mu;
  ctx_after_t *q[64];
  int n;
  pthread_t submitter;
} queue_ex_t;

static void queue_submit(ctx_executor_t *self, ctx_after_t *a) {
  queue_ex_t *x = (queue_ex_t *)self;
  pthread_mutex_lock(&x->mu);
  x->submitter = pthread_self();
  x->q[x->n++] = a;
  pthread_mutex_unlock(&x->mu);
}

static int queued(queue_ex_t *x) {
  pthread_mutex_lock(&x->mu);
  int n = x->n;
  pthread_mutex_unlock(&x->mu);
  return n;
}

TEST(after_func_custom_executor) {
  queue_ex_t x = { .ex = { queue_submit }, .mu = PTHREAD_MUTEX_INITIALIZER };
  probe_t p = { 0 };
  ctx_t *c, *t;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  p.c = c;
  ASSERT_EQ(ctx_after_func(c, probe_fn, &p, NULL, &x.ex, NULL), CTX_OK);
  ctx_cancel(c);
  ASSERT_EQ(x.n, 1);  /* submitted by the canceling thread, not run yet */
  ASSERT(pthread_equal(x.submitter, pthread_self()));
  ASSERT_EQ(atomic_load(&p.runs), 0);
  ctx_after_run(x.q[0]);  /* the callback works on c: no lock is held */
  ASSERT_EQ(atomic_load(&p.runs), 1);
  ASSERT(pthread_equal(p.thread, pthread_self()));
  /* the timer thread submits fired ones; the default executor never runs
  ** a callback on the timer thread */
  probe_t q = { 0 };
  /* long enough that it cannot pass while we register (sanitizers are slow) */
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 100 * MS, &t), CTX_OK);
  ASSERT_EQ(ctx_after_func(t, probe_fn, &q, NULL, NULL, NULL), CTX_OK);
  ASSERT_EQ(ctx_after_func(t, probe_fn, &p, NULL, &x.ex, NULL), CTX_OK);
  ASSERT(WAIT_FOR(atomic_load(&q.runs) == 1, 5000));
  ASSERT(WAIT_FOR(queued(&x) == 2, 5000));
  pthread_t timer_thread = x.submitter;
  ASSERT(!pthread_equal(timer_thread, pthread_self()));
  ASSERT(!pthread_equal(q.thread, timer_thread));
  p.c = NULL;
  ctx_after_run(x.q[1]);
  ctx_unref(t); ctx_unref(c);
}

TEST(slow_after_func_delays_no_deadline) {
  probe_t slow = { 0 };
  atomic_store(&slow.sleep_ms, 1000);
  ctx_t *a, *b;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 1 * MS, &a), CTX_OK);
  ASSERT_EQ(ctx_after_func(a, probe_fn, &slow, NULL, NULL, NULL), CTX_OK);
  int64_t d = ctx_now() + 30 * MS;
  ASSERT_EQ(ctx_with_deadline(ctx_background(), d, &b), CTX_OK);
  ASSERT_EQ(ctx_wait(b, 5000 * MS), CTX_OK);
  ASSERT(ctx_now() < d + 700 * MS);  /* well before the slow one ends */
  ASSERT(WAIT_FOR(atomic_load(&slow.runs) == 1, 5000));
  ctx_unref(a); ctx_unref(b);
}

static void *stopper(void *arg) {
  ctx_after_t *a = arg;
  return (void *)(intptr_t)ctx_after_stop(a);
}

/* stop racing cancel: exactly one of "stop returned 1" and "fn ran" */
TEST(after_func_stop_races_cancel) {
  for (long i = 0; i < test_iters(300); i++) {
    atomic_int runs = 0;
    ctx_t *c;
    ctx_after_t *a;
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
    ASSERT_EQ(ctx_after_func(c, count_run, &runs, NULL, NULL, &a), CTX_OK);
    pthread_t t;
    pthread_create(&t, NULL, stopper, a);
    ctx_cancel(c);
    void *r;
    pthread_join(t, &r);
    int stopped = (int)(intptr_t)r;
    if (!stopped) ASSERT(WAIT_FOR(atomic_load(&runs) == 1, 5000));
    else { test_sleep_ns(MS / 10); ASSERT_EQ(atomic_load(&runs), 0); }
    ctx_after_free(a);
    ctx_unref(c);
  }
}

static void inline_submit(ctx_executor_t *self, ctx_after_t *a) { (void)self; ctx_after_run(a); }
static void drop_ctx(void *arg) { ctx_unref(arg); }

/* callbacks run inline may drop the last references to the context being
** ended (ASan checks the core does not touch it afterwards) */
TEST(inline_callback_drops_last_reference) {
  long base = test_live_allocs();
  static ctx_executor_t ex = { inline_submit };
  ctx_t *p, *c, *t;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &p), CTX_OK);
  ASSERT_EQ(ctx_with_timeout(p, 3600LL * 1000 * MS, &c), CTX_OK);
  ASSERT_EQ(ctx_after_func(c, drop_ctx, c, NULL, &ex, NULL), CTX_OK);  /* takes our ref */
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 1 * MS, &t), CTX_OK);
  ASSERT_EQ(ctx_after_func(t, drop_ctx, t, NULL, &ex, NULL), CTX_OK);  /* on the timer thread */
  ctx_cancel(p);
  ctx_unref(p);
  ASSERT_NO_LEAK(base);
}
