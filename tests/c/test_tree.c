/* test_tree.c — the context tree: roots, WithCancel propagation, child
** removal, values, WithoutCancel, references, deep chains and bad arguments. */
#include "test.h"

TEST(background_todo) {
  ctx_t *b = ctx_background(), *t = ctx_todo();
  ASSERT(b != t);
  ASSERT(ctx_background() == b);
  ASSERT(!ctx_done(b));
  ASSERT_EQ(ctx_err(t), CTX_ERR_NONE);
  ASSERT(ctx_cause(b) == NULL);
  ASSERT(!ctx_deadline(b, NULL));
  ASSERT(ctx_parent(b) == NULL);
  ASSERT_EQ(ctx_kind(b), CTX_KIND_BACKGROUND);
  ASSERT_EQ(ctx_kind(t), CTX_KIND_TODO);
  ASSERT_EQ(ctx_cancel(b), CTX_EINVAL);
  ctx_unref(ctx_ref(b));  /* static: references are no-ops */
  ctx_unref(b);
  ASSERT(!ctx_done(b));
  ASSERT_STR(ctx_err_string(CTX_ERR_CANCELED), "context canceled");
  ASSERT_STR(ctx_err_string(CTX_ERR_DEADLINE), "context deadline exceeded");
  ASSERT_STR(ctx_err_string(CTX_ERR_NONE), "");
  ASSERT_STR(ctx_strerror(CTX_ENOMEM), "out of memory");
}

TEST(with_cancel) {
  long base = test_live_allocs();
  ctx_t *c1, *v, *c2;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c1), CTX_OK);
  ASSERT_EQ(ctx_with_value(c1, (void *)"k", (void *)"v", NULL, &v), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(v, &c2), CTX_OK);
  ctx_t *all[] = { c1, v, c2 };
  for (int i = 0; i < 3; i++) {
    ASSERT(!ctx_done(all[i]));
    ASSERT_EQ(ctx_err(all[i]), CTX_ERR_NONE);
    ASSERT(ctx_cause(all[i]) == NULL);
  }
  ASSERT_EQ(ctx_cancel(c1), 1);
  ASSERT_EQ(ctx_cancel(c1), 0);  /* idempotent: the first wins */
  for (int i = 0; i < 3; i++) {
    ASSERT(ctx_done(all[i]));
    ASSERT_EQ(ctx_err(all[i]), CTX_ERR_CANCELED);
    ASSERT(ctx_cause(all[i]) == NULL);  /* the cause is the error itself */
  }
  ASSERT_EQ(ctx_cancel(c2), 0);
  ASSERT_EQ(ctx_cancel(v), CTX_EINVAL);  /* a value node has no cancel */
  ctx_unref(c2); ctx_unref(v); ctx_unref(c1);
  ASSERT_NO_LEAK(base);
}

static void nop(void *arg) { (void)arg; }

TEST(parent_finishes_child) {
  long base = test_live_allocs();
  ctx_t *parent, *cancel_child, *value_child, *timer_child;
  ctx_after_t *stop;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &parent), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(parent, &cancel_child), CTX_OK);
  ASSERT_EQ(ctx_with_value(parent, (void *)"k", NULL, NULL, &value_child), CTX_OK);
  ASSERT_EQ(ctx_with_timeout(value_child, 3600 * 1000 * MS, &timer_child), CTX_OK);
  ASSERT_EQ(ctx_after_func(parent, nop, NULL, NULL, NULL, &stop), CTX_OK);
  /* the value child is not a canceler: the timer child registers on parent */
  ASSERT_EQ(ctx_num_children(parent), 3);
  ASSERT_EQ(ctx_cancel(parent), 1);
  ASSERT_EQ(ctx_num_children(parent), 0);
  ctx_t *all[] = { parent, cancel_child, value_child, timer_child };
  for (int i = 0; i < 4; i++) ASSERT_EQ(ctx_err(all[i]), CTX_ERR_CANCELED);
  ASSERT_EQ(ctx_after_stop(stop), 0);  /* it was started */
  /* a child made under a done parent is done at creation */
  ctx_t *late;
  ASSERT_EQ(ctx_with_cancel(value_child, &late), CTX_OK);
  ASSERT_EQ(ctx_err(late), CTX_ERR_CANCELED);
  ASSERT_EQ(ctx_num_children(parent), 0);
  ctx_unref(late);
  ctx_after_free(stop);
  for (int i = 3; i >= 0; i--) ctx_unref(all[i]);
  ASSERT_NO_LEAK(base);
}

TEST(child_finishes_first) {
  long base = test_live_allocs();
  ctx_t *cancelable;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &cancelable), CTX_OK);
  ctx_t *parents[] = { ctx_background(), cancelable };
  for (int i = 0; i < 2; i++) {
    ctx_t *parent = parents[i], *child;
    ASSERT_EQ(ctx_with_cancel(parent, &child), CTX_OK);
    ASSERT_EQ(ctx_num_children(parent), i == 1 ? 1 : 0);
    ASSERT_EQ(ctx_cancel(child), 1);
    ASSERT_EQ(ctx_err(child), CTX_ERR_CANCELED);
    ASSERT_EQ(ctx_num_children(parent), 0);  /* removed at once */
    ASSERT(!ctx_done(parent));
    if (i == 1) {
      ctx_cancel(parent);
      ASSERT_EQ(ctx_err(child), CTX_ERR_CANCELED);
    }
    ctx_unref(child);
  }
  ctx_unref(cancelable);
  ASSERT_NO_LEAK(base);
}

TEST(cancel_removes) {
  long base = test_live_allocs();
  ctx_t *parent, *child;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &parent), CTX_OK);
  ASSERT_EQ(ctx_num_children(parent), 0);
  ASSERT_EQ(ctx_with_cancel(parent, &child), CTX_OK);
  ASSERT_EQ(ctx_num_children(parent), 1);
  ctx_cancel(child);
  ASSERT_EQ(ctx_num_children(parent), 0);
  ctx_unref(child);
  ASSERT_EQ(ctx_with_timeout(parent, 3600 * 1000 * MS, &child), CTX_OK);
  ASSERT_EQ(ctx_num_children(parent), 1);
  ctx_cancel(child);
  ASSERT_EQ(ctx_num_children(parent), 0);
  ctx_unref(child);
  ctx_after_t *stop;
  ASSERT_EQ(ctx_after_func(parent, nop, NULL, NULL, NULL, &stop), CTX_OK);
  ASSERT_EQ(ctx_num_children(parent), 1);
  ASSERT_EQ(ctx_after_stop(stop), 1);
  ASSERT_EQ(ctx_num_children(parent), 0);
  ASSERT_EQ(ctx_after_stop(stop), 0);
  ctx_after_free(stop);
  ASSERT(!ctx_done(parent));
  ctx_unref(parent);
  ASSERT_NO_LEAK(base);
}

static int str_eq(const void *wanted, const void *bound, void *ud) {
  (void)ud;
  return strcmp(wanted, bound) == 0;
}

static int abort_eq(const void *wanted, const void *bound, void *ud) {
  (void)wanted; (void)bound;
  ++*(int *)ud;
  return -7;
}

static void check_value(ctx_t *c, const char *key, const char *want) {
  void *got = (void *)"untouched";
  char copy[8];
  snprintf(copy, sizeof copy, "%s", key);  /* equal string, other pointer */
  int r = ctx_value(c, copy, str_eq, NULL, &got);
  if (!want) { ASSERT_EQ(r, 0); ASSERT_STR(got, "untouched"); return; }
  ASSERT_EQ(r, 1);
  if (strcmp(want, "NULL") == 0) ASSERT(got == NULL);
  else ASSERT_STR(got, want);
}

TEST(values) {
  long base = test_live_allocs();
  ctx_t *c1, *c2, *c3, *c4, *cc, *wc;
  ctx_t *c0 = ctx_background();
  check_value(c0, "k1", NULL);
  ASSERT_EQ(ctx_with_value(c0, "k1", "c1k1", NULL, &c1), CTX_OK);
  check_value(c1, "k1", "c1k1");
  check_value(c1, "k2", NULL);
  ASSERT_EQ(ctx_with_value(c1, "k2", "c2k2", NULL, &c2), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(c2, &cc), CTX_OK);  /* other kinds pass lookups on */
  ASSERT_EQ(ctx_with_value(cc, "k3", "c3k3", NULL, &c3), CTX_OK);
  check_value(c3, "k1", "c1k1");
  check_value(c3, "k2", "c2k2");
  check_value(c3, "k3", "c3k3");
  ASSERT_EQ(ctx_with_value(c3, "k1", NULL, NULL, &c4), CTX_OK);
  check_value(c4, "k1", "NULL");  /* a NULL binding shadows the outer one */
  check_value(c4, "k2", "c2k2");
  ASSERT_EQ(ctx_with_value(c2, "k2", "inner", NULL, &wc), CTX_OK);
  check_value(wc, "k2", "inner");
  check_value(c2, "k2", "c2k2");  /* a parent never sees a child's binding */
  /* pointer equality by default, and eq's negative result aborts the walk */
  void *got = NULL;
  char other[] = "k1";
  ASSERT_EQ(ctx_value(c4, other, NULL, NULL, &got), 0);
  int calls = 0;
  ASSERT_EQ(ctx_value(c4, "k1", abort_eq, &calls, &got), -7);
  ASSERT_EQ(calls, 1);
  ctx_unref(wc); ctx_unref(c4); ctx_unref(c3); ctx_unref(cc); ctx_unref(c2); ctx_unref(c1);
  ASSERT_NO_LEAK(base);
}

TEST(value_ownership) {
  long base = test_live_allocs();
  atomic_int kc = 0, vc = 0;
  ctx_t *c, *child;
  /* one release function for both: count key and value separately */
  ASSERT_EQ(ctx_with_value(ctx_background(), &kc, &vc, test_release_count, &c), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(c, &child), CTX_OK);
  ctx_unref(c);  /* the child keeps its parent alive */
  void *got = NULL;
  ASSERT_EQ(ctx_value(child, &kc, NULL, NULL, &got), 1);
  ASSERT(got == &vc);
  ASSERT_EQ(kc + vc, 0);
  ctx_unref(child);
  ASSERT_EQ(kc, 1);
  ASSERT_EQ(vc, 1);
  ASSERT_NO_LEAK(base);
}

TEST(without_cancel) {
  long base = test_live_allocs();
  ctx_t *p, *v, *w, *wc, *wd;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 3600 * 1000 * MS, &p), CTX_OK);
  ASSERT_EQ(ctx_with_value(p, "k", "val", NULL, &v), CTX_OK);
  ASSERT_EQ(ctx_without_cancel(v, &w), CTX_OK);
  ASSERT(!ctx_deadline(w, NULL));
  ASSERT_EQ(ctx_cancel_cause(p, "why", NULL), 1);
  ASSERT(ctx_done(v));
  ASSERT(!ctx_done(w));
  ASSERT_EQ(ctx_err(w), CTX_ERR_NONE);
  ASSERT(ctx_cause(w) == NULL);
  ASSERT_EQ(ctx_cancel(w), CTX_EINVAL);
  check_value(w, "k", "val");
  ASSERT_EQ(ctx_kind(w), CTX_KIND_WITHOUT_CANCEL);
  /* its children are cancelable as usual, and not by the done ancestor */
  ASSERT_EQ(ctx_with_cancel(w, &wc), CTX_OK);
  ASSERT(!ctx_done(wc));
  ASSERT_EQ(ctx_with_timeout(w, 3600 * 1000 * MS, &wd), CTX_OK);
  ASSERT(ctx_deadline(wd, NULL));
  ASSERT_EQ(ctx_cancel(wc), 1);
  ASSERT(!ctx_done(wd));
  char *s = ctx_string(wc, NULL, NULL);
  ASSERT(s && strstr(s, ".WithoutCancel.WithCancel"));
  free(s);
  ctx_unref(wd); ctx_unref(wc); ctx_unref(w); ctx_unref(v); ctx_unref(p);
  ASSERT_NO_LEAK(base);
}

static char *fmt_kv(const void *k, const void *v, void *ud) {
  (void)ud;
  char *s = malloc(64);
  snprintf(s, 64, "%s, %s", (const char *)k, v ? (const char *)v : "<nil>");
  return s;
}

static char *fmt_fail(const void *k, const void *v, void *ud) {
  (void)k; (void)v; (void)ud;
  return NULL;
}

TEST(string_forms) {
  char *s;
  ASSERT_STR(s = ctx_string(ctx_background(), NULL, NULL), "context.Background"); free(s);
  ASSERT_STR(s = ctx_string(ctx_todo(), NULL, NULL), "context.TODO"); free(s);
  ctx_t *c, *v, *w, *d, *later, *forever;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  ASSERT_STR(s = ctx_string(c, NULL, NULL), "context.Background.WithCancel"); free(s);
  ASSERT_EQ(ctx_with_value(c, "user", "alice", NULL, &v), CTX_OK);
  ASSERT_STR(s = ctx_string(v, fmt_kv, NULL), "context.Background.WithCancel.WithValue(user, alice)");
  free(s);
  ASSERT(ctx_string(v, fmt_fail, NULL) == NULL);
  s = ctx_string(v, NULL, NULL);  /* pointers when no formatter is given */
  ASSERT(s && strncmp(s, "context.Background.WithCancel.WithValue(0x", 42) == 0);
  free(s);
  ASSERT_EQ(ctx_without_cancel(v, &w), CTX_OK);
  ASSERT_STR(s = ctx_string(w, fmt_kv, NULL),
             "context.Background.WithCancel.WithValue(user, alice).WithoutCancel");
  free(s);
  /* 2009-11-10 23:00:00.5 UTC as Go's playground prints it */
  int64_t when = ctx_wall_to_mono(1257894000.5);
  ASSERT_EQ(ctx_with_deadline(ctx_todo(), when, &d), CTX_OK);
  s = ctx_string(d, NULL, NULL);
  const char *want = "context.TODO.WithDeadline(2009-11-10 23:00:00.5 +0000 UTC [-";
  ASSERT(s && strncmp(s, want, strlen(want)) == 0);
  ASSERT(s[strlen(s) - 1] == ')' && strstr(s, "s])"));
  free(s);
  ASSERT_EQ(ctx_err(d), CTX_ERR_DEADLINE);  /* in the past: done at creation */
  ctx_t *hour;
  ASSERT_EQ(ctx_with_timeout(c, 3600 * 1000 * MS, &hour), CTX_OK);
  s = ctx_string(hour, NULL, NULL);
  ASSERT(s && strstr(s, "context.Background.WithCancel.WithDeadline(") == s);
  ASSERT(strstr(s, " +0000 UTC [59m59.") || strstr(s, " +0000 UTC [1h0m0s])"));
  free(s);
  /* a later deadline than the parent's is a plain WithCancel child */
  ASSERT_EQ(ctx_with_timeout(hour, 7200 * 1000 * MS, &later), CTX_OK);
  ASSERT_EQ(ctx_kind(later), CTX_KIND_CANCEL);
  s = ctx_string(later, NULL, NULL);
  ASSERT(s && strcmp(s + strlen(s) - 11, ".WithCancel") == 0);
  free(s);
  ASSERT_EQ(ctx_with_deadline(c, CTX_FOREVER, &forever), CTX_OK);
  ASSERT_EQ(ctx_kind(forever), CTX_KIND_CANCEL);
  ASSERT(!ctx_deadline(forever, NULL));
  ctx_unref(forever); ctx_unref(later); ctx_unref(hour);
  ctx_unref(d); ctx_unref(w); ctx_unref(v); ctx_unref(c);
}

TEST(durations_in_string) {
  /* Go's Duration.String() for the time left, one unit per range */
  struct { int64_t ns; const char *a, *b; } cases[] = {
    { 90 * 1000 * MS, "[1m29.", "[1m30s])" }, { 500 * MS, "ms])", "ms])" },
    { 50LL * 3600 * 1000 * MS, "[49h59m59.", "[50h0m0s])" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    ctx_t *c;
    ASSERT_EQ(ctx_with_timeout(ctx_background(), cases[i].ns, &c), CTX_OK);
    char *s = ctx_string(c, NULL, NULL);
    ASSERT(s != NULL);
    if (!strstr(s, cases[i].a) && !strstr(s, cases[i].b)) {
      fprintf(stderr, "  got %s\n", s);
      ASSERT(0);
    }
    free(s);
    ctx_unref(c);
  }
}

TEST(bad_arguments) {
  ctx_t *c = NULL, *p;
  atomic_int released = 0;
  ASSERT_EQ(ctx_with_cancel(NULL, &c), CTX_EINVAL);
  ASSERT_EQ(ctx_with_cancel(ctx_background(), NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_with_deadline(NULL, 0, &c), CTX_EINVAL);
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 1, NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_with_timeout_cause(NULL, 1, &released, test_release_count, &c), CTX_EINVAL);
  ASSERT_EQ(released, 0);  /* not taken on failure */
  ASSERT_EQ(ctx_with_value(ctx_background(), NULL, "v", test_release_count, &c), CTX_EINVAL);
  ASSERT_EQ(ctx_with_value(NULL, "k", "v", NULL, &c), CTX_EINVAL);
  ASSERT_EQ(ctx_without_cancel(NULL, &c), CTX_EINVAL);
  ASSERT_EQ(ctx_cancel(NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_cancel_cause(ctx_todo(), &released, test_release_count), CTX_EINVAL);
  ASSERT_EQ(released, 1);  /* cancel_cause always takes the cause */
  ASSERT_EQ(ctx_wait(NULL, 0), CTX_EINVAL);
  ASSERT_EQ(ctx_fd(NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_after_func(NULL, nop, &released, test_release_count, NULL, NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_after_func(ctx_background(), NULL, NULL, NULL, NULL, NULL), CTX_EINVAL);
  ASSERT_EQ(released, 1);
  ASSERT_EQ(ctx_after_stop(NULL), CTX_EINVAL);
  ctx_after_free(NULL);
  ctx_unref(NULL);
  ASSERT(ctx_ref(NULL) == NULL);
  ASSERT(ctx_string(NULL, NULL, NULL) == NULL);
  ASSERT_EQ(ctx_num_children(NULL), 0);
  ASSERT(c == NULL);
  ASSERT_EQ(ctx_with_value(ctx_background(), "k", "v", NULL, &p), CTX_OK);
  ASSERT_EQ(ctx_cancel(p), CTX_EINVAL);
  ctx_unref(p);
}

TEST(deep_chain) {
  long base = test_live_allocs();
  long depth = test_iters(1000000);
  if (depth < 100000) depth = 100000;
  ctx_t *root, *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &root), CTX_OK);
  c = ctx_ref(root);
  for (long i = 0; i < depth; i++) {
    ctx_t *next;
    int rc = i % 3 == 1 ? ctx_with_value(c, "k", NULL, NULL, &next)
                        : ctx_with_cancel(c, &next);
    ASSERT_EQ(rc, CTX_OK);
    ctx_unref(c);  /* the child holds the chain */
    c = next;
  }
  ASSERT(!ctx_done(c));
  ASSERT_EQ(ctx_cancel(root), 1);  /* iterative: no stack overflow */
  ASSERT_EQ(ctx_err(c), CTX_ERR_CANCELED);
  ctx_unref(root);
  ctx_unref(c);  /* frees the whole chain, iteratively too */
  ASSERT_NO_LEAK(base);
  /* a deep chain dropped without cancel frees as well */
  c = ctx_background();
  for (long i = 0; i < depth; i++) {
    ctx_t *next;
    ASSERT_EQ(ctx_with_cancel(c, &next), CTX_OK);
    if (i) ctx_unref(c);
    c = next;
  }
  ctx_unref(c);
  ASSERT_NO_LEAK(base);
}

TEST(dropped_contexts_free_everything) {
  long base = test_live_allocs();
  ctx_t *parent;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &parent), CTX_OK);
  long with_parent = test_live_allocs();
  for (int i = 0; i < 100; i++) {
    ctx_t *a, *b, *v;
    ASSERT_EQ(ctx_with_cancel(parent, &a), CTX_OK);
    ASSERT_EQ(ctx_with_value(a, "k", NULL, NULL, &v), CTX_OK);
    ASSERT_EQ(ctx_with_timeout_cause(v, 30 * MS, "c", NULL, &b), CTX_OK);
    ASSERT_EQ(ctx_fd(b) >= 0, 1);
    ASSERT_EQ(ctx_num_children(parent), 1);
    ASSERT_EQ(ctx_num_children(a), 1);
    ctx_unref(a);  /* b keeps a alive */
    ASSERT_EQ(ctx_num_children(parent), 1);
    ctx_unref(v);
    ctx_unref(b);  /* never canceled: leaves the tree, its timer goes too */
    ASSERT_EQ(ctx_num_children(parent), 0);
  }
  ASSERT_EQ(test_live_allocs(), with_parent);
  /* had a timer stayed behind, it would fire on freed memory now */
  test_sleep_ns(60 * MS);
  ASSERT(!ctx_done(parent));
  ctx_unref(parent);
  ASSERT_NO_LEAK(base);
}

TEST(extreme_deadlines) {
  /* far past and far future: no overflow (UBSan checks), sane strings */
  int64_t ds[] = { -CTX_FOREVER, INT64_MIN, CTX_FOREVER - 1, ctx_wall_to_mono(-9.1e9),
                   ctx_wall_to_mono(9.1e9), ctx_wall_to_mono(-1e300) };
  for (size_t i = 0; i < sizeof ds / sizeof *ds; i++) {
    ctx_t *c;
    ASSERT_EQ(ctx_with_deadline(ctx_background(), ds[i], &c), CTX_OK);
    ASSERT_EQ(ctx_done(c), ds[i] < ctx_now());
    char *s = ctx_string(c, NULL, NULL);
    ASSERT(s && strncmp(s, "context.Background.WithDeadline(", 32) == 0);
    ASSERT(strcmp(s + strlen(s) - 2, "])") == 0);
    free(s);
    (void)ctx_mono_to_wall(ds[i]);
    if (!ctx_done(c)) ctx_cancel(c);
    ctx_unref(c);
  }
  ASSERT(ctx_wall_to_mono(-1e300) < 0);
  ASSERT(ctx_wall_to_mono(9.1e9) > ctx_now());
}

/* Go's WithCancelCanceledParent: every kind of child made under a canceled
** parent is done at creation, with the parent's error and cause */
TEST(with_cancel_canceled_parent) {
  long base = test_live_allocs();
  static char why[] = "why";
  ctx_t *p, *v, *kids[4];
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &p), CTX_OK);
  ASSERT_EQ(ctx_cancel_cause(p, why, NULL), 1);
  ASSERT_EQ(ctx_with_value(p, "k", NULL, NULL, &v), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(p, &kids[0]), CTX_OK);
  ASSERT_EQ(ctx_with_timeout(p, 3600LL * 1000 * MS, &kids[1]), CTX_OK);
  ASSERT_EQ(ctx_with_timeout_cause(v, 3600LL * 1000 * MS, "own", NULL, &kids[2]), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(v, &kids[3]), CTX_OK);
  for (int i = 0; i < 4; i++) {
    ASSERT_EQ(ctx_err(kids[i]), CTX_ERR_CANCELED);
    ASSERT(ctx_cause(kids[i]) == why);
    ASSERT_EQ(ctx_wait(kids[i], 0), CTX_OK);
  }
  ASSERT_EQ(ctx_num_children(p), 0);  /* never registered */
  for (int i = 3; i >= 0; i--) ctx_unref(kids[i]);
  ctx_unref(v); ctx_unref(p);
  ASSERT_NO_LEAK(base);
}
