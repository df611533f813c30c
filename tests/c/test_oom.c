/* test_oom.c — out of memory: every allocation of a scenario fails in turn;
** each call then returns CTX_ENOMEM, changes nothing, takes nothing, leaks nothing. */
#include "test.h"

#define HOUR (3600LL * 1000 * MS)

typedef struct {
  atomic_int key, val, cause, arg, cancel_cause, ran;
  int nomem;  /* how many calls reported CTX_ENOMEM (or a NULL string) */
  int canceled;
} owned_t;

static void ran_fn(void *arg) { (void)arg; }

#define TRY(call, on_fail) do { int rc_ = (call); \
  if (rc_ == CTX_ENOMEM) { o->nomem++; on_fail; } else ASSERT(rc_ >= 0); } while (0)

static void scenario(owned_t *o) {
  ctx_t *p = NULL, *v = NULL, *d = NULL, *w = NULL, *k = NULL, *past = NULL;
  ctx_after_t *stop = NULL;
  TRY(ctx_with_cancel(ctx_background(), &p), return);
  TRY(ctx_with_value(p, &o->key, &o->val, test_release_count, &v),
      { ASSERT_EQ(o->key + o->val, 0); v = NULL; });
  ctx_t *under = v ? v : p;
  size_t before = ctx_num_children(p);
  TRY(ctx_with_timeout_cause(under, HOUR, &o->cause, test_release_count, &d),
      { ASSERT_EQ(o->cause, 0); ASSERT_EQ(ctx_num_children(p), before); d = NULL; });
  before = ctx_num_children(p);
  TRY(ctx_after_func(d ? d : p, ran_fn, &o->arg, test_release_count, NULL, &stop),
      { ASSERT_EQ(o->arg, 0); stop = NULL; });
  if (!d) ASSERT_EQ(ctx_num_children(p), before + (stop != NULL));
  TRY(ctx_without_cancel(under, &w), w = NULL);
  TRY(ctx_with_cancel(w ? w : under, &k), k = NULL);
  TRY(ctx_with_timeout(p, -1, &past), past = NULL);
  if (past) ASSERT_EQ(ctx_err(past), CTX_ERR_DEADLINE);
  char *s = ctx_string(d ? d : under, NULL, NULL);  /* NULL when out of memory */
  if (!s) o->nomem++;
  free(s);
  o->canceled = 1;
  int rc = ctx_cancel_cause(p, &o->cancel_cause, test_release_count);
  ASSERT(rc == 1 || rc == CTX_ENOMEM);
  ASSERT_EQ(ctx_err(p), CTX_ERR_CANCELED);  /* canceled either way */
  if (rc == CTX_ENOMEM) { o->nomem++; ASSERT(ctx_cause(p) == NULL); ASSERT_EQ(o->cancel_cause, 1); }
  else ASSERT(ctx_cause(p) == &o->cancel_cause);
  if (d) ASSERT_EQ(ctx_err(d), CTX_ERR_CANCELED);
  if (stop) { ASSERT_EQ(ctx_after_stop(stop), 0); ctx_after_free(stop); }
  ctx_unref(past); ctx_unref(k); ctx_unref(w); ctx_unref(d); ctx_unref(v); ctx_unref(p);
}

static void run_failing(int sticky) {
  long base = test_live_allocs();
  for (long n = 0;; n++) {
    owned_t o;
    memset(&o, 0, sizeof o);
    long calls0 = test_alloc_calls();
    test_fail_alloc_after(n, sticky);
    scenario(&o);
    test_fail_alloc_after(-1, 0);
    long made = test_alloc_calls() - calls0;
    /* the after_func runs on the default executor: wait for it to finish */
    ASSERT_NO_LEAK(base);
    ASSERT_EQ(o.key, o.val);
    ASSERT(o.key <= 1 && o.cause <= 1 && o.arg <= 1);
    ASSERT_EQ(o.cancel_cause, o.canceled);  /* always taken */
    if (n < made) ASSERT(o.nomem >= 1);  /* every failure is reported */
    if (n >= made) break;  /* this run saw no failure: every point was hit */
    ASSERT(n < 1000);
  }
}

TEST(oom_each_allocation_fails_in_turn) { run_failing(0); }
TEST(oom_from_an_allocation_on) { run_failing(1); }

TEST(oom_plain) {
  long base = test_live_allocs();
  ctx_t *c = NULL;
  test_fail_alloc_after(0, 1);
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_ENOMEM);
  ASSERT_EQ(ctx_with_timeout(ctx_background(), HOUR, &c), CTX_ENOMEM);
  ASSERT_EQ(ctx_without_cancel(ctx_background(), &c), CTX_ENOMEM);
  ASSERT(ctx_string(ctx_background(), NULL, NULL) == NULL);
  test_fail_alloc_after(-1, 0);
  ASSERT(c == NULL);
  ASSERT_NO_LEAK(base);
}

/* the timer heap cannot grow: the deadline child is undone, cause kept */
TEST(oom_timer_heap_growth) {
  long base = test_live_allocs();
  enum { MAX = 1 << 18 };
  ctx_t *p, **cs = malloc(MAX * sizeof *cs);
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &p), CTX_OK);
  atomic_int cause = 0;
  int n = 0, rc = CTX_OK;
  while (n < MAX) {
    test_fail_alloc_after(2, 1);  /* the cause box and node may be made, no more */
    rc = ctx_with_timeout_cause(p, HOUR, &cause, test_release_count, &cs[n]);
    test_fail_alloc_after(-1, 0);
    if (rc != CTX_OK) break;
    n++;
  }
  ASSERT_EQ(rc, CTX_ENOMEM);
  ASSERT(n >= 1);
  ASSERT_EQ(cause, 0);  /* the failed call did not take its cause */
  ASSERT_EQ(ctx_num_children(p), (size_t)n);
  ctx_cancel(p);
  ASSERT_EQ(cause, n);  /* a canceled node's deadline cause is dropped */
  for (int i = 0; i < n; i++) ctx_unref(cs[i]);
  ctx_unref(p);
  free(cs);
  ASSERT_NO_LEAK(base);
}
