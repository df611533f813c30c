/* test_concurrency.c — Go's concurrent cases: simultaneous and interlocked
** cancels, children made while the parent is being canceled, Err/Done order. */
#include <pthread.h>
#include "test.h"

#define HOUR (3600LL * 1000 * MS)

static atomic_int go;

typedef struct { ctx_t **cs; int from, to; } slice_t;

static void *cancel_slice(void *arg) {
  slice_t *s = arg;
  while (!atomic_load(&go)) {}
  for (int i = s->from; i < s->to; i++) CHECK(ctx_cancel(s->cs[i]) >= 0);
  return NULL;
}

/* a tree canceled from everywhere at once: all done, no deadlock */
TEST(simultaneous_cancels) {
  long base = test_live_allocs();
  enum { N = 1000, T = 4 };
  for (int round = 0; round < test_iters(10); round++) {
    ctx_t *cs[N];
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &cs[0]), CTX_OK);
    unsigned seed = (unsigned)round + 1;
    for (int i = 1; i < N; i++) {
      seed = seed * 1103515245 + 12345;
      ctx_t *parent = cs[(seed >> 8) % (unsigned)i];
      int rc = i % 3 ? ctx_with_cancel(parent, &cs[i])
                     : ctx_with_timeout(parent, HOUR, &cs[i]);
      ASSERT_EQ(rc, CTX_OK);
    }
    /* each thread cancels an interleaved slice, in reverse on odd ones */
    pthread_t th[T];
    slice_t sl[T];
    ctx_t *order[T][N / T + 1];
    atomic_store(&go, 0);
    for (int t = 0; t < T; t++) {
      int n = 0;
      for (int i = t; i < N; i += T) order[t][n++] = cs[i];
      for (int i = 0; t % 2 && i < n / 2; i++) {  /* odd threads go leaves first */
        ctx_t *x = order[t][i];
        order[t][i] = order[t][n - 1 - i];
        order[t][n - 1 - i] = x;
      }
      sl[t] = (slice_t){ order[t], 0, n };
      pthread_create(&th[t], NULL, cancel_slice, &sl[t]);
    }
    atomic_store(&go, 1);
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    for (int i = 0; i < N; i++) {
      ASSERT_EQ(ctx_err(cs[i]), CTX_ERR_CANCELED);
      ASSERT_EQ(ctx_num_children(cs[i]), 0);
    }
    for (int i = N - 1; i >= 0; i--) ctx_unref(cs[i]);
  }
  ASSERT_NO_LEAK(base);
}

static void *cancel_child_when_parent_done(void *arg) {
  ctx_t **pc = arg;
  CHECK(ctx_wait(pc[0], 10000 * MS) == CTX_OK);
  ctx_cancel(pc[1]);
  return NULL;
}

TEST(interlocked_cancels) {
  ctx_t *pc[2];
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &pc[0]), CTX_OK);
  ASSERT_EQ(ctx_with_timeout(pc[0], HOUR, &pc[1]), CTX_OK);
  pthread_t t;
  pthread_create(&t, NULL, cancel_child_when_parent_done, pc);
  ctx_cancel(pc[0]);
  ASSERT_EQ(ctx_wait(pc[1], 5000 * MS), CTX_OK);
  pthread_join(t, NULL);
  ctx_unref(pc[1]); ctx_unref(pc[0]);
}

static char the_cause[] = "parent cause";
static void *cancel_parent_cause(void *arg) {
  while (!atomic_load(&go)) {}
  ctx_cancel_cause(arg, the_cause, NULL);
  return NULL;
}

/* children made while the parent is being canceled: each one is either
** canceled with the parent's err and cause, or was never linked after it */
TEST(with_cancel_simultaneously_canceled_parent) {
  long base = test_live_allocs();
  for (int round = 0; round < test_iters(200); round++) {
    ctx_t *p, *kids[64];
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &p), CTX_OK);
    atomic_store(&go, 0);
    pthread_t t;
    pthread_create(&t, NULL, cancel_parent_cause, p);
    atomic_store(&go, 1);
    for (int i = 0; i < 64; i++)
      ASSERT_EQ(i % 2 ? ctx_with_cancel(p, &kids[i]) : ctx_with_timeout(p, HOUR, &kids[i]), CTX_OK);
    pthread_join(t, NULL);
    for (int i = 0; i < 64; i++) {
      ASSERT_EQ(ctx_err(kids[i]), CTX_ERR_CANCELED);
      ASSERT(ctx_cause(kids[i]) == the_cause);
      ctx_unref(kids[i]);
    }
    ASSERT_EQ(ctx_num_children(p), 0);
    ctx_unref(p);
  }
  ASSERT_NO_LEAK(base);
}

static void *cancel_it(void *arg) {
  while (!atomic_load(&go)) {}
  ctx_cancel(arg);
  return NULL;
}

/* Go's ErrDoneRace: whenever Err is non-zero, done is already observable,
** through every layer, including the fd */
TEST(err_done_race) {
  for (int round = 0; round < test_iters(300); round++) {
    ctx_t *p, *v, *c;
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &p), CTX_OK);
    ASSERT_EQ(ctx_with_value(p, "k", NULL, NULL, &v), CTX_OK);
    ASSERT_EQ(ctx_with_cancel(v, &c), CTX_OK);
    atomic_store(&go, 0);
    pthread_t t;
    pthread_create(&t, NULL, cancel_it, p);
    atomic_store(&go, 1);
    for (;;) {
      ctx_err_t e = ctx_err(c);
      if (e) {
        ASSERT(ctx_done(c));
        ASSERT(ctx_done(v) && ctx_done(p));
        ASSERT_EQ(ctx_wait(c, 0), CTX_OK);
        break;
      }
    }
    pthread_join(t, NULL);
    ctx_unref(c); ctx_unref(v); ctx_unref(p);
  }
}

/* Go's testLayers with cancel: random chains of value and cancel layers;
** canceling one layer ends it and everything below, nothing above */
TEST(layers_cancel) {
  long base = test_live_allocs();
  unsigned seed = 99;
  const char *keys[] = { "k0", "k1", "k2", "k3" };
  for (int round = 0; round < 50; round++) {
    ctx_t *ls[20], *c = ctx_background();
    const char *vals[4] = { 0 };
    int n = 0;
    for (int i = 0; i < 20; i++) {
      seed = seed * 1103515245 + 12345;
      ctx_t *next;
      if ((seed >> 16) % 2) {
        int k = (int)((seed >> 20) % 4);
        vals[k] = keys[(k + i) % 4];
        ASSERT_EQ(ctx_with_value(c, (void *)keys[k], (void *)vals[k], NULL, &next), CTX_OK);
      } else {
        ASSERT_EQ(ctx_with_cancel(c, &next), CTX_OK);
      }
      ls[n++] = c = next;
    }
    for (int k = 0; k < 4; k++) {
      void *got = NULL;
      ASSERT_EQ(ctx_value(c, keys[k], NULL, NULL, &got), vals[k] != NULL);
      ASSERT(got == vals[k]);
    }
    int cut = -1;
    for (int i = n / 2; i < n; i++)
      if (ctx_kind(ls[i]) == CTX_KIND_CANCEL) { cut = i; break; }
    if (cut >= 0) {
      ASSERT_EQ(ctx_cancel(ls[cut]), 1);
      for (int i = 0; i < n; i++) ASSERT_EQ(ctx_done(ls[i]), i >= cut);
    }
    for (int i = n - 1; i >= 0; i--) ctx_unref(ls[i]);
  }
  ASSERT_NO_LEAK(base);
}
