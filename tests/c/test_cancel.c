/* test_cancel.c — Go's promise that once any cancel of a context returned, its
** whole subtree is done, and ctx_settle (callbacks of an ending handed off). */
#include <pthread.h>
#include "test.h"
#include "ctx_int.h"

typedef struct {
  ctx_t *root;
  _Atomic int go;
  int rc;
} racer_t;

static void *first_canceler(void *arg) {
  racer_t *r = arg;
  while (!atomic_load(&r->go)) {}
  r->rc = ctx_cancel(r->root);
  return NULL;
}

/* A second cancel that finds the root done returns only after the first one
** has ended all 200,000 children (Go holds the node's lock for as long). */
TEST(cancel_returns_only_when_subtree_done) {
  long n = test_iters(200000);
  if (n < 20000) n = 20000;
  ctx_t **kids = malloc((size_t)n * sizeof *kids);
  for (int round = 0; round < 3; round++) {
    racer_t r = { .go = 0 };
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &r.root), CTX_OK);
    for (long i = 0; i < n; i++) ASSERT_EQ(ctx_with_cancel(r.root, &kids[i]), CTX_OK);
    pthread_t t;
    pthread_create(&t, NULL, first_canceler, &r);
    atomic_store(&r.go, 1);
    while (!ctx_done(r.root)) {}
    int mine = ctx_cancel(r.root);
    long live = 0;
    for (long i = 0; i < n; i++) live += !ctx_done(kids[i]);
    pthread_join(t, NULL);
    ASSERT_EQ(mine + r.rc, 1);   /* exactly one ended it */
    ASSERT_EQ(live, 0);
    for (long i = 0; i < n; i++) ctx_unref(kids[i]);
    ctx_unref(r.root);
  }
  free(kids);
}

/* The same through a deadline: the timer thread ends the tree while another
** thread's cancel of a node inside it must wait for that node's subtree. */
TEST(cancel_inside_a_firing_subtree_waits_for_it) {
  long n = test_iters(50000);
  if (n < 5000) n = 5000;
  ctx_t *root, *mid, **kids = malloc((size_t)n * sizeof *kids);
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 20 * MS, &root), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(root, &mid), CTX_OK);
  for (long i = 0; i < n; i++) ASSERT_EQ(ctx_with_cancel(mid, &kids[i]), CTX_OK);
  while (!ctx_done(mid)) {}
  ctx_cancel(mid);
  long live = 0;
  for (long i = 0; i < n; i++) live += !ctx_done(kids[i]);
  ASSERT_EQ(live, 0);
  ASSERT_EQ(ctx_err(kids[0]), CTX_ERR_DEADLINE);
  for (long i = 0; i < n; i++) ctx_unref(kids[i]);
  ctx_unref(mid); ctx_unref(root);
  free(kids);
}

static ctx_after_t *seen[16];
static atomic_int nseen;
static void note_submit(ctx_executor_t *ex, ctx_after_t *a) {
  (void)ex;
  test_sleep_ns(2 * MS);   /* a slow hand-off: settle must wait for it */
  seen[atomic_fetch_add(&nseen, 1)] = a;
}

/* ctx_settle: once it returns, the callbacks of the ending were handed to
** their executors; on a live or long-settled context it is one load. */
TEST(settle_waits_for_hand_off) {
  static ctx_executor_t ex = { note_submit };
  for (int round = 0; round < 5; round++) {
    atomic_store(&nseen, 0);
    ctx_t *c, *v;
    ASSERT_EQ(ctx_with_timeout(ctx_background(), 50 * MS, &c), CTX_OK);
    ASSERT_EQ(ctx_with_value(c, "k", NULL, NULL, &v), CTX_OK);
    for (int i = 0; i < 3; i++) ASSERT_EQ(ctx_after_func(c, test_nop, NULL, NULL, &ex, NULL), CTX_OK);
    ctx_settle(v);             /* not done: returns at once */
    ASSERT_EQ(atomic_load(&nseen), 0);
    while (!ctx_done(v)) {}
    ctx_settle(v);
    ASSERT_EQ(atomic_load(&nseen), 3);
    for (int i = 0; i < 3; i++) ctx_after_run(seen[i]);
    ctx_settle(ctx_background());
    ctx_settle(NULL);
    ctx_unref(v); ctx_unref(c);
  }
}

/* A child born under a done parent is settled at once. */
TEST(settle_born_done) {
  ctx_t *p, *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &p), CTX_OK);
  ctx_cancel(p);
  ASSERT_EQ(ctx_with_cancel(p, &c), CTX_OK);
  ASSERT(atomic_load(&c->state) & CTX__SETTLED);
  ASSERT_EQ(ctx_cancel(c), 0);
  ctx_unref(c); ctx_unref(p);
}

/* A callback run inline (where the ending thread hands it on) that cancels
** its own context or an ancestor returns: that cancel waits for the subtree
** to be ended, which it already is, not for the callbacks' hand-off. */
static void inline_submit(ctx_executor_t *ex, ctx_after_t *a) { (void)ex; ctx_after_run(a); }
static void cancel_both(void *arg) {
  ctx_t **two = arg;
  CHECK(ctx_cancel(two[0]) == 0);
  CHECK(ctx_cancel(two[1]) == 0);
  CHECK(ctx_done(two[0]) && ctx_done(two[1]));
}

TEST(inline_callback_cancels_its_own_context) {
  static ctx_executor_t ex = { inline_submit };
  ctx_t *two[2];
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &two[0]), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(two[0], &two[1]), CTX_OK);
  ASSERT_EQ(ctx_after_func(two[1], cancel_both, two, NULL, &ex, NULL), CTX_OK);
  ASSERT_EQ(ctx_cancel(two[0]), 1);
  ctx_settle(two[1]);
  ctx_unref(two[1]); ctx_unref(two[0]);
}

typedef struct { ctx_t *root; int64_t at; } at_t;
static void *cancel_at(void *arg) {
  at_t *a = arg;
  while (ctx_now() < a->at) {}
  ctx_cancel(a->root);
  return NULL;
}

/* A root canceled while the deadlines of nodes below it fire: the timer's
** walks and the canceler's each wait for parts of the other's, never in a
** circle (the timer ends one node at a time). */
TEST(cancel_while_descendant_deadlines_fire) {
  enum { KIDS = 60, GRAND = 4 };
  ctx_t *kids[KIDS], *grand[KIDS * GRAND];
  for (int round = 0; round < 40; round++) {
    at_t a;
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &a.root), CTX_OK);
    int64_t due = ctx_now() + 3 * MS;
    for (int i = 0; i < KIDS; i++) {
      ASSERT_EQ(ctx_with_deadline(a.root, due + (i % 7) * 20000, &kids[i]), CTX_OK);
      for (int j = 0; j < GRAND; j++)
        ASSERT_EQ(ctx_with_deadline(kids[i], due + (j % 3) * 15000, &grand[i * GRAND + j]), CTX_OK);
    }
    a.at = due + (round % 8) * 15000;
    pthread_t t;
    pthread_create(&t, NULL, cancel_at, &a);
    pthread_join(t, NULL);
    ctx_settle(a.root);
    for (int i = 0; i < KIDS * GRAND; i++) ASSERT(ctx_done(grand[i]));
    for (int i = 0; i < KIDS * GRAND; i++) ctx_unref(grand[i]);
    for (int i = 0; i < KIDS; i++) ctx_unref(kids[i]);
    ctx_unref(a.root);
  }
}
