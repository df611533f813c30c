/* test_shard.c — a parent that threads contend for lists its children per
** thread group (shards), and its children hold it through the shards' counts:
** cancellation still reaches every child, and the parent lives exactly as
** long as a reference or a child keeps it. */
#include <pthread.h>
#include "test.h"
#include "ctx_int.h"

#define HOUR (3600LL * 1000 * MS)

/* What contention does, made certain: the next children go to shards. */
static void force_shards(ctx_t *p) {
  ctx__lock(&p->lock);
  ctx__shards_make(p);
  ctx__unlock(&p->lock);
}

typedef struct { ctx_t *parent; ctx_t **out; int n; } make_t;

/* Each thread is its own shard's user: children spread over the shards. */
static void *make_children(void *arg) {
  make_t *m = arg;
  for (int i = 0; i < m->n; i++) CHECK(ctx_with_cancel(m->parent, &m->out[i]) == CTX_OK);
  return NULL;
}

static void make_from_threads(ctx_t *parent, ctx_t **out, int threads, int per) {
  pthread_t th[CTX__NSHARD];
  make_t m[CTX__NSHARD];
  for (int t = 0; t < threads; t++) {
    m[t] = (make_t){ parent, out + t * per, per };
    pthread_create(&th[t], NULL, make_children, &m[t]);
  }
  for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
}

/* p sharded, and one child made by another thread (so it holds p in a shard). */
static ctx_t *sharded_child(ctx_t *p) {
  ctx_t *c;
  force_shards(p);
  make_from_threads(p, &c, 1, 1);
  return c;
}

/* A cancelable parent over a value node that only it keeps. */
static ctx_t *cancel_over_value(void *key, void *val, ctx_release_fn release) {
  ctx_t *v, *p;
  CHECK(ctx_with_value(ctx_background(), key, val, release, &v) == CTX_OK);
  CHECK(ctx_with_cancel(v, &p) == CTX_OK);
  ctx_unref(v);
  return p;
}

typedef struct { ctx_t *parent; long n; atomic_int started; } hammer_t;

static void *hammer(void *arg) {
  hammer_t *h = arg;
  atomic_fetch_add(&h->started, 1);
  while (atomic_load(&h->started) < 2) {}   /* both at once */
  for (long i = 0; i < h->n; i++) {
    ctx_t *c;
    CHECK(ctx_with_cancel(h->parent, &c) == CTX_OK);
    ctx_cancel(c);
    ctx_unref(c);
  }
  return NULL;
}

/* Threads that create and cancel children of one parent: it shards. */
TEST(contended_parent_gets_shards) {
  long base = test_live_allocs();
  ctx_t *p;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &p), CTX_OK);
  hammer_t h = { p, test_iters(20000), 0 };
  for (int round = 0; round < test_iters(100) && !ctx__shards_of(p); round++) {
    pthread_t a, b;
    atomic_store(&h.started, 0);
    pthread_create(&a, NULL, hammer, &h);
    pthread_create(&b, NULL, hammer, &h);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
  }
  if (test_scale() == 1) ASSERT(ctx__shards_of(p) != NULL);  /* tools serialize threads */
  ASSERT_EQ(ctx_num_children(p), 0);
  ASSERT_EQ(ctx_cancel(p), 1);
  ctx_unref(p);
  ASSERT_NO_LEAK(base);
}

TEST(sharded_children_end_with_their_parent) {
  long base = test_live_allocs();
  enum { T = 4, PER = 100 };
  ctx_t *p, *kids[T * PER], *old, *late;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &p), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(p, &old), CTX_OK);   /* listed before the shards */
  force_shards(p);
  make_from_threads(p, kids, T, PER);
  ASSERT_EQ(ctx_num_children(p), T * PER + 1);
  ASSERT_EQ(ctx_cancel(kids[7]), 1);             /* one leaves its shard early */
  ASSERT_EQ(ctx_num_children(p), T * PER);
  ASSERT_EQ(ctx_cancel(p), 1);
  for (int i = 0; i < T * PER; i++) ASSERT_EQ(ctx_err(kids[i]), CTX_ERR_CANCELED);
  ASSERT_EQ(ctx_err(old), CTX_ERR_CANCELED);
  ASSERT_EQ(ctx_num_children(p), 0);
  ASSERT_EQ(ctx_with_cancel(p, &late), CTX_OK);  /* born done, through a shard */
  ASSERT_EQ(ctx_err(late), CTX_ERR_CANCELED);
  ctx_unref(late);
  for (int i = 0; i < T * PER; i++) ctx_unref(kids[i]);
  ctx_unref(old);
  ctx_unref(p);
  ASSERT_NO_LEAK(base);
}

static int key;

/* The user's last reference goes while a sharded child lives: the parent
** (and what it holds) stays until that child goes. */
TEST(sharded_parent_lives_while_a_child_holds_it) {
  long base = test_live_allocs();
  int released = 0;
  ctx_t *p = cancel_over_value(&key, &released, test_release_count), *c = sharded_child(p);
  ctx_unref(p);
  ASSERT(ctx_parent(c) == p);
  ASSERT_EQ(ctx_err(ctx_parent(c)), CTX_ERR_NONE);
  void *got = NULL;
  ASSERT_EQ(ctx_value(c, &key, NULL, NULL, &got), 1);
  ASSERT(got == &released);
  ASSERT_EQ(released, 0);
  /* a reference taken back through the child, and given up again */
  ctx_t *again = ctx_ref(ctx_parent(c));
  ctx_unref(again);
  ASSERT_EQ(released, 0);
  ASSERT_EQ(ctx_cancel(c), 1);
  ctx_unref(c);
  ASSERT_EQ(released, 1);   /* the value, with the parent */
  ASSERT_NO_LEAK(base);
}

/* Nobody holds the parent but its sharded child: a cancel from above, and
** its own deadline, still reach that child. */
TEST(unreferenced_sharded_parent_still_passes_cancels_on) {
  long base = test_live_allocs();
  ctx_t *gp, *p, *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &gp), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(gp, &p), CTX_OK);
  c = sharded_child(p);
  ctx_unref(p);
  ASSERT_EQ(ctx_cancel(gp), 1);
  ASSERT_EQ(ctx_err(c), CTX_ERR_CANCELED);
  ctx_unref(c);
  ctx_unref(gp);

  ASSERT_EQ(ctx_with_timeout(ctx_background(), 30 * MS, &p), CTX_OK);
  c = sharded_child(p);
  ctx_unref(p);
  ASSERT_EQ(ctx_wait(c, 5000 * MS), CTX_OK);
  ASSERT_EQ(ctx_err(c), CTX_ERR_DEADLINE);
  ctx_unref(c);
  ASSERT_NO_LEAK(base);
}

static int count_visit(void *obj, void *ud) { (void)obj; ++*(int *)ud; return 0; }

/* ctx_visit counts a child's hold like a reference. */
TEST(visit_counts_sharded_holders) {
  long base = test_live_allocs();
  int seen = 0, released = 0;
  ctx_t *p = cancel_over_value(&key, &released, NULL), *c = sharded_child(p);
  ASSERT_EQ(ctx_visit(c, count_visit, &seen), 0);
  ASSERT_EQ(seen, 0);          /* p has two holders: the user and c */
  ctx_unref(p);
  ASSERT_EQ(ctx_visit(c, count_visit, &seen), 0);
  ASSERT_EQ(seen, 2);          /* c alone keeps p, p alone keeps v: key, value */
  ctx_unref(c);
  ASSERT_NO_LEAK(base);
}

/* The parent's last reference, its children's last holds, a cancel from
** above and references taken back through a child, all at once: the parent
** dies exactly once, after the last of them. */
typedef struct {
  ctx_t *c;
  atomic_int *go;
} racer_t;

static void *drop_child(void *arg) {
  racer_t *r = arg;
  while (!atomic_load(r->go)) {}
  ctx_t *back = ctx_ref(ctx_parent(r->c));
  ctx_cancel(r->c);
  CHECK(ctx_err(back) != CTX_ERR_INVALID);
  ctx_unref(r->c);
  ctx_unref(back);
  return NULL;
}

static void *cancel_it(void *arg) {
  racer_t *r = arg;
  while (!atomic_load(r->go)) {}
  ctx_cancel(r->c);
  return NULL;
}

TEST(sharded_parent_dies_once) {
  long base = test_live_allocs();
  enum { T = 4 };
  for (int round = 0; round < test_iters(300); round++) {
    atomic_int go = 0;
    ctx_t *gp, *p, *kids[T];
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &gp), CTX_OK);
    ASSERT_EQ(round % 2 ? ctx_with_timeout(gp, HOUR, &p) : ctx_with_cancel(gp, &p), CTX_OK);
    force_shards(p);
    make_from_threads(p, kids, T, 1);
    pthread_t th[T + 1];
    racer_t r[T + 1];
    for (int t = 0; t < T; t++) {
      r[t] = (racer_t){ kids[t], &go };
      pthread_create(&th[t], NULL, drop_child, &r[t]);
    }
    r[T] = (racer_t){ gp, &go };
    pthread_create(&th[T], NULL, cancel_it, &r[T]);
    atomic_store(&go, 1);
    ctx_unref(p);
    for (int t = 0; t <= T; t++) pthread_join(th[t], NULL);
    ctx_unref(gp);
  }
  ASSERT_NO_LEAK(base);
}
