/* test_stress.c — threads doing random create/cancel/deadline/after_func/
** stop/drop on one shared tree, then the invariants checked at rest. */
#include <pthread.h>
#include "test.h"

enum { SLOTS = 64, THREADS = 4, MAXREG = 4096 };

typedef struct { atomic_int ran; int stopped; ctx_after_t *h; } reg_t;

static struct {
  pthread_mutex_t mu[SLOTS];
  ctx_t *slot[SLOTS];
  reg_t regs[THREADS][MAXREG];
  int nregs[THREADS];
  long ops;
} S;

static char cause_x[] = "x";
static const char *keys[] = { "a", "b", "c" };

static void ran_fn(void *arg) { CHECK(atomic_fetch_add((atomic_int *)arg, 1) == 0); }

/* A reference to slot i's context, or to background when it is empty. */
static ctx_t *take(int i) {
  pthread_mutex_lock(&S.mu[i]);
  ctx_t *c = S.slot[i] ? ctx_ref(S.slot[i]) : ctx_background();
  pthread_mutex_unlock(&S.mu[i]);
  return c;
}

static void put(int i, ctx_t *c) {
  pthread_mutex_lock(&S.mu[i]);
  ctx_t *old = S.slot[i];
  S.slot[i] = c;
  pthread_mutex_unlock(&S.mu[i]);
  ctx_unref(old);  /* never under our own lock: may free a chain */
}

static void check_one(ctx_t *c) {
  ctx_err_t e = ctx_err(c);
  if (e) CHECK(ctx_done(c));
  ctx_t *p = ctx_parent(c);
  int64_t dc, dp;
  if (p && ctx_kind(c) != CTX_KIND_WITHOUT_CANCEL && ctx_deadline(p, &dp))
    CHECK(ctx_deadline(c, &dc) && dc <= dp);
  if (e == CTX_ERR_CANCELED && ctx_cause(c)) CHECK(ctx_cause(c) == cause_x);
}

static void *worker(void *arg) {
  int t = (int)(intptr_t)arg;
  unsigned seed = 0x9e3779b9u * (unsigned)(t + 1);
  for (long n = 0; n < S.ops; n++) {
    seed = seed * 1103515245 + 12345;
    unsigned r = seed >> 8;
    int a = (int)(r % SLOTS), b = (int)((r >> 6) % SLOTS);
    ctx_t *c = take(a), *k = NULL;
    switch ((r >> 12) % 10) {
      case 0: case 1: CHECK(ctx_with_cancel(c, &k) == CTX_OK); break;
      case 2: CHECK(ctx_with_timeout(c, (int64_t)((r >> 16) % 4) * MS, &k) == CTX_OK); break;
      case 3: CHECK(ctx_with_timeout_cause(c, 3600000 * MS, cause_x, NULL, &k) == CTX_OK); break;
      case 4: CHECK(ctx_with_value(c, (void *)keys[r % 3], NULL, NULL, &k) == CTX_OK); break;
      case 5: if ((r >> 16) % 8 == 0) CHECK(ctx_without_cancel(c, &k) == CTX_OK); break;
      case 6: if (ctx_kind(c) <= CTX_KIND_DEADLINE && ctx_kind(c) >= CTX_KIND_CANCEL) {
                if (r & 1) ctx_cancel(c); else ctx_cancel_cause(c, cause_x, NULL);
              } break;
      case 7: if (S.nregs[t] < MAXREG) {
                reg_t *g = &S.regs[t][S.nregs[t]++];
                CHECK(ctx_after_func(c, ran_fn, &g->ran, NULL, NULL, &g->h) == CTX_OK);
                if (r & 2) g->stopped = ctx_after_stop(g->h);
              } break;
      case 8: put(b, NULL); break;
      default: {  /* readers racing the writers */
        check_one(c);
        ctx_num_children(c);
        void *v;
        ctx_value(c, keys[r % 3], NULL, NULL, &v);
        if (r % 7 == 0) CHECK(ctx_wait(c, 0) == (ctx_done(c) ? CTX_OK : CTX_ETIMEDOUT) || ctx_done(c));
        if (r % 13 == 0) { char *s = ctx_string(c, NULL, NULL); CHECK(s != NULL); free(s); }
        if (r % 31 == 0) CHECK(ctx_fd(c) >= 0);
      } break;
    }
    if (k) put(b, k);
    ctx_unref(c);
  }
  return NULL;
}

TEST(stress_shared_tree) {
  long base = test_live_allocs();
  memset(&S, 0, sizeof S);
  for (int i = 0; i < SLOTS; i++) pthread_mutex_init(&S.mu[i], NULL);
  S.ops = test_iters(1000000);
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  /* at rest: a done ancestor (through cancelable links) means done */
  for (int i = 0; i < SLOTS; i++) {
    ctx_t *c = S.slot[i];
    if (!c) continue;
    check_one(c);
    for (ctx_t *n = c; ctx_parent(n); n = ctx_parent(n)) {
      if (ctx_kind(n) == CTX_KIND_WITHOUT_CANCEL) break;  /* cut off above */
      if (ctx_done(ctx_parent(n))) { CHECK(ctx_done(c)); break; }
    }
    if (ctx_done(c)) ASSERT_EQ(ctx_num_children(c), 0);
  }
  /* every registration ends exactly one way: stopped, or run once */
  for (int i = 0; i < SLOTS; i++) {
    ctx_t *c = S.slot[i];
    if (c && ctx_kind(c) >= CTX_KIND_CANCEL && ctx_kind(c) <= CTX_KIND_DEADLINE) ctx_cancel(c);
    put(i, NULL);
  }
  for (int t = 0; t < THREADS; t++)
    for (int j = 0; j < S.nregs[t]; j++) {
      reg_t *g = &S.regs[t][j];
      if (!g->stopped) g->stopped = ctx_after_stop(g->h);  /* uncancelable ones */
      ctx_after_free(g->h);
    }
  for (int t = 0; t < THREADS; t++)
    for (int j = 0; j < S.nregs[t]; j++) {
      reg_t *g = &S.regs[t][j];
      if (g->stopped) ASSERT_EQ(atomic_load(&g->ran), 0);
      else ASSERT(WAIT_FOR(atomic_load(&g->ran) == 1, 5000));
    }
  ASSERT_NO_LEAK(base);
}
