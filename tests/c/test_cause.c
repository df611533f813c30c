/* test_cause.c — Cause(): Go's table of cause cases, the race between a
** cause and Err, and who releases cause objects when. */
#include <pthread.h>
#include "test.h"

#define HOUR (3600LL * 1000 * MS)
static char cause_a[] = "cause A", cause_b[] = "cause B";

typedef struct { ctx_t *c, *parent; } pair_t;

static void drop(pair_t *p) {
  ctx_unref(p->c);
  ctx_unref(p->parent);
  p->c = p->parent = NULL;
}

static void expect(ctx_t *c, ctx_err_t err, void *cause, int line) {
  if (ctx_err(c) != err || ctx_cause(c) != cause) {
    fprintf(stderr, "  case at line %d: err %d cause %s\n", line, ctx_err(c),
            ctx_cause(c) ? (char *)ctx_cause(c) : "(the error)");
    ASSERT(0);
  }
}
#define EXPECT(c, err, cause) expect(c, err, cause, __LINE__)

TEST(cause_table) {
  long base = test_live_allocs();
  pair_t p = { 0, 0 };
  EXPECT(ctx_background(), CTX_ERR_NONE, NULL);
  EXPECT(ctx_todo(), CTX_ERR_NONE, NULL);

  /* WithCancel: cause is the error */
  ctx_with_cancel(ctx_background(), &p.c); ctx_cancel(p.c);
  EXPECT(p.c, CTX_ERR_CANCELED, NULL); drop(&p);
  /* WithCancelCause */
  ctx_with_cancel(ctx_background(), &p.c); ctx_cancel_cause(p.c, cause_a, NULL);
  EXPECT(p.c, CTX_ERR_CANCELED, cause_a); drop(&p);
  /* WithCancelCause nil */
  ctx_with_cancel(ctx_background(), &p.c); ctx_cancel_cause(p.c, NULL, NULL);
  EXPECT(p.c, CTX_ERR_CANCELED, NULL); drop(&p);
  /* WithCancelCause -> WithCancel: the child inherits the parent's cause */
  ctx_with_cancel(ctx_background(), &p.parent); ctx_with_cancel(p.parent, &p.c);
  ctx_cancel_cause(p.parent, cause_a, NULL);
  EXPECT(p.c, CTX_ERR_CANCELED, cause_a); drop(&p);
  /* WithCancel -> WithCancelCause, parent canceled */
  ctx_with_cancel(ctx_background(), &p.parent); ctx_with_cancel(p.parent, &p.c);
  ctx_cancel(p.parent);
  EXPECT(p.c, CTX_ERR_CANCELED, NULL); drop(&p);
  /* WithCancelCause -> WithCancelCause, parent canceled first */
  ctx_with_cancel(ctx_background(), &p.parent); ctx_cancel_cause(p.parent, cause_a, NULL);
  ctx_with_cancel(p.parent, &p.c);
  ASSERT_EQ(ctx_cancel_cause(p.c, cause_b, NULL), 0);  /* done at creation */
  EXPECT(p.c, CTX_ERR_CANCELED, cause_a); drop(&p);
  /* WithCancelCause -> WithCancelCause, child canceled first */
  ctx_with_cancel(ctx_background(), &p.parent); ctx_with_cancel(p.parent, &p.c);
  ctx_cancel_cause(p.c, cause_a, NULL); ctx_cancel_cause(p.parent, cause_b, NULL);
  EXPECT(p.c, CTX_ERR_CANCELED, cause_a);
  EXPECT(p.parent, CTX_ERR_CANCELED, cause_b); drop(&p);
  /* WithTimeout, fired */
  ctx_with_timeout(ctx_background(), 5 * MS, &p.c); ctx_wait(p.c, -1);
  EXPECT(p.c, CTX_ERR_DEADLINE, NULL); drop(&p);
  /* WithTimeout canceled */
  ctx_with_timeout(ctx_background(), HOUR, &p.c); ctx_cancel(p.c);
  EXPECT(p.c, CTX_ERR_CANCELED, NULL); drop(&p);
  /* WithTimeoutCause, fired */
  ctx_with_timeout_cause(ctx_background(), 5 * MS, cause_a, NULL, &p.c); ctx_wait(p.c, -1);
  EXPECT(p.c, CTX_ERR_DEADLINE, cause_a); drop(&p);
  /* WithTimeoutCause canceled: its cancel does not set the cause */
  ctx_with_timeout_cause(ctx_background(), HOUR, cause_a, NULL, &p.c); ctx_cancel(p.c);
  EXPECT(p.c, CTX_ERR_CANCELED, NULL); drop(&p);
  /* WithTimeout -> WithCancelCause, parent fired */
  ctx_with_timeout(ctx_background(), 5 * MS, &p.parent); ctx_with_cancel(p.parent, &p.c);
  ctx_wait(p.c, -1);
  ASSERT_EQ(ctx_cancel_cause(p.c, cause_a, NULL), 0);
  EXPECT(p.c, CTX_ERR_DEADLINE, NULL); drop(&p);
  /* WithTimeout -> WithCancelCause, child canceled */
  ctx_with_timeout(ctx_background(), HOUR, &p.parent); ctx_with_cancel(p.parent, &p.c);
  ctx_cancel_cause(p.c, cause_a, NULL);
  EXPECT(p.c, CTX_ERR_CANCELED, cause_a);
  EXPECT(p.parent, CTX_ERR_NONE, NULL); drop(&p);
  /* WithTimeoutCause -> WithTimeoutCause: the parent's fires first */
  ctx_with_timeout_cause(ctx_background(), 5 * MS, cause_a, NULL, &p.parent);
  ctx_with_timeout_cause(p.parent, HOUR, cause_b, NULL, &p.c);
  ctx_wait(p.c, -1);
  EXPECT(p.c, CTX_ERR_DEADLINE, cause_a); drop(&p);
  /* WithTimeoutCause -> WithTimeoutCause: the child's fires first */
  ctx_with_timeout_cause(ctx_background(), HOUR, cause_a, NULL, &p.parent);
  ctx_with_timeout_cause(p.parent, 5 * MS, cause_b, NULL, &p.c);
  ctx_wait(p.c, -1);
  EXPECT(p.c, CTX_ERR_DEADLINE, cause_b);
  EXPECT(p.parent, CTX_ERR_NONE, NULL); drop(&p);
  /* WithCancelCause -> WithTimeout */
  ctx_with_cancel(ctx_background(), &p.parent); ctx_with_timeout(p.parent, HOUR, &p.c);
  ctx_cancel_cause(p.parent, cause_a, NULL);
  EXPECT(p.c, CTX_ERR_CANCELED, cause_a); drop(&p);
  /* WithCancelCause -> WithTimeout, child fired first */
  ctx_with_cancel(ctx_background(), &p.parent); ctx_with_timeout(p.parent, 5 * MS, &p.c);
  ctx_wait(p.c, -1); ctx_cancel_cause(p.parent, cause_a, NULL);
  EXPECT(p.c, CTX_ERR_DEADLINE, NULL); drop(&p);
  /* value and WithoutCancel layers pass causes on / hide them */
  ctx_t *v, *w;
  ctx_with_cancel(ctx_background(), &p.parent); ctx_with_value(p.parent, "k", NULL, NULL, &v);
  ctx_without_cancel(v, &w); ctx_with_cancel(v, &p.c);
  ctx_cancel_cause(p.parent, cause_a, NULL);
  EXPECT(v, CTX_ERR_CANCELED, cause_a);
  EXPECT(p.c, CTX_ERR_CANCELED, cause_a);
  EXPECT(w, CTX_ERR_NONE, NULL);
  ctx_unref(w); ctx_unref(v); drop(&p);
  ASSERT_NO_LEAK(base);
}

TEST(cause_ownership) {
  long base = test_live_allocs();
  atomic_int a = 0, b = 0, d = 0;
  ctx_t *p, *c1, *c2;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &p), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(p, &c1), CTX_OK);
  ASSERT_EQ(ctx_with_timeout_cause(p, HOUR, &d, test_release_count, &c2), CTX_OK);
  ASSERT_EQ(ctx_cancel_cause(p, &a, test_release_count), 1);
  ASSERT_EQ(d, 1);  /* the deadline's cause can no longer be reported */
  ASSERT(ctx_cause(c1) == &a && ctx_cause(c2) == &a);
  ASSERT_EQ(ctx_cancel_cause(p, &b, test_release_count), 0);
  ASSERT_EQ(b, 1);  /* released at once: it did not make p done */
  ctx_unref(p); ctx_unref(c1);
  ASSERT_EQ(a, 0);  /* shared by c2 still */
  ASSERT(ctx_cause(c2) == &a);
  ctx_unref(c2);
  ASSERT_EQ(a, 1);
  /* a deadline later than the parent's: the cause is dropped at once */
  atomic_int e = 0;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), HOUR, &p), CTX_OK);
  ASSERT_EQ(ctx_with_timeout_cause(p, 2 * HOUR, &e, test_release_count, &c1), CTX_OK);
  ASSERT_EQ(e, 1);
  ctx_unref(c1); ctx_unref(p);
  ASSERT_NO_LEAK(base);
}

static atomic_int race_go;
static void *cancel_with_cause(void *arg) {
  while (!atomic_load(&race_go)) {}
  ctx_cancel_cause(arg, cause_a, NULL);
  return NULL;
}

/* Go's CauseRace: once Err is seen, Cause is already the final one */
TEST(cause_race) {
  for (int round = 0; round < test_iters(200); round++) {
    ctx_t *c;
    pthread_t t;
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
    atomic_store(&race_go, 0);
    pthread_create(&t, NULL, cancel_with_cause, c);
    atomic_store(&race_go, 1);
    while (!ctx_err(c)) {}
    ASSERT(ctx_cause(c) == cause_a);
    pthread_join(t, NULL);
    ctx_unref(c);
  }
}
