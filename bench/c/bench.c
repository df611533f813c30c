/* bench.c — the C workloads of BENCH.md against the ctx core; prints one JSON
** object {name: value}. "mem" measures bytes per live timeout ctx alone. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctx.h"

#define HOUR 3600000000000LL
static volatile long sink;
static int first = 1;

static void out(const char *name, double v) {
  printf("%s\"%s\": %.3f", first ? "{" : ", ", name, v);
  first = 0;
}

static double per_op(int64_t t0, long n) { return (double)(ctx_now() - t0) / (double)n; }

static void must(int rc) { if (rc != CTX_OK) { fprintf(stderr, "ctx: %s\n", ctx_strerror(rc)); exit(1); } }

static double create_cancel(ctx_t *parent, int timeout, long n) {
  int64_t t0 = ctx_now();
  for (long i = 0; i < n; i++) {
    ctx_t *c;
    must(timeout ? ctx_with_timeout(parent, HOUR, &c) : ctx_with_cancel(parent, &c));
    ctx_cancel(c);
    ctx_unref(c);
  }
  return per_op(t0, n);
}

static double done_or_err(int err, long n) {
  ctx_t *c;
  must(ctx_with_cancel(ctx_background(), &c));
  long hits = 0;
  int64_t t0 = ctx_now();
  if (err) { for (long i = 0; i < n; i++) hits += ctx_err(c) != CTX_ERR_NONE; }
  else { for (long i = 0; i < n; i++) hits += ctx_done(c); }
  double r = per_op(t0, n);
  sink = hits;
  ctx_cancel(c);
  ctx_unref(c);
  return r;
}

static double value_depth10(long n) {
  static char keys[10];
  ctx_t *c = ctx_background(), *layers[10];
  for (int i = 0; i < 10; i++) {
    must(ctx_with_value(c, &keys[i], &keys[i], NULL, &layers[i]));
    c = layers[i];
  }
  long hits = 0;
  int64_t t0 = ctx_now();
  for (long i = 0; i < n; i++) {
    void *v;
    hits += ctx_value(c, &keys[0], NULL, NULL, &v);  /* bound 10 layers up */
  }
  double r = per_op(t0, n);
  sink = hits;
  for (int i = 9; i >= 0; i--) ctx_unref(layers[i]);
  return r;
}

/* fan-out 10, depth 5 under one root: build, cancel the root, free */
static double cancel_tree(void) {
  enum { NODES = 111110 };
  ctx_t **all = malloc(NODES * sizeof *all), *root;
  int64_t t0 = ctx_now();
  must(ctx_with_cancel(ctx_background(), &root));
  long n = 0, level_start = 0, level_len = 0;
  for (int i = 0; i < 10; i++) must(ctx_with_cancel(root, &all[n++]));
  level_len = 10;
  for (int depth = 2; depth <= 5; depth++) {
    long start = n;
    for (long p = level_start; p < level_start + level_len; p++)
      for (int i = 0; i < 10; i++) must(ctx_with_cancel(all[p], &all[n++]));
    level_start = start;
    level_len = n - start;
  }
  ctx_cancel(root);
  for (long i = n - 1; i >= 0; i--) ctx_unref(all[i]);
  ctx_unref(root);
  double r = per_op(t0, n);
  free(all);
  return r;
}

typedef struct { ctx_t *parent; long n; } two_t;
static void *two_worker(void *arg) {
  two_t *t = arg;
  create_cancel(t->parent, 0, t->n);
  return NULL;
}

static double two_threads(long n) {
  ctx_t *p;
  must(ctx_with_cancel(ctx_background(), &p));
  two_t t = { p, n };
  pthread_t a, b;
  int64_t t0 = ctx_now();
  pthread_create(&a, NULL, two_worker, &t);
  pthread_create(&b, NULL, two_worker, &t);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  double r = per_op(t0, 2 * n);
  ctx_cancel(p);
  ctx_unref(p);
  return r;
}

static double timers_with_live(long live, long n) {
  ctx_t **keep = malloc((size_t)live * sizeof *keep);
  for (long i = 0; i < live; i++) must(ctx_with_timeout(ctx_background(), HOUR, &keep[i]));
  double r = create_cancel(ctx_background(), 1, n);
  for (long i = 0; i < live; i++) { ctx_cancel(keep[i]); ctx_unref(keep[i]); }
  free(keep);
  return r;
}

/* ---- timer lateness: the callback runs where done is first observed ---- */
enum { LATE_N = 100000 };
static int64_t *late_deadline, *late_seen;

static void inline_submit(ctx_executor_t *self, ctx_after_t *a) { (void)self; ctx_after_run(a); }
static void note(void *arg) { late_seen[(intptr_t)arg] = ctx_now(); }
static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static void lateness(void) {
  static ctx_executor_t ex = { inline_submit };
  late_deadline = calloc(LATE_N, sizeof *late_deadline);
  late_seen = calloc(LATE_N, sizeof *late_seen);
  ctx_t **cs = malloc(LATE_N * sizeof *cs);
  int64_t start = ctx_now() + 500000000;  /* all are made before the first fires */
  unsigned seed = 42;
  for (long i = 0; i < LATE_N; i++) late_deadline[i] = start + 1000000000LL * i / LATE_N;
  for (long i = LATE_N - 1; i > 0; i--) {  /* made in shuffled order */
    seed = seed * 1103515245 + 12345;
    long j = (long)((seed >> 8) % (unsigned)(i + 1));
    int64_t t = late_deadline[i]; late_deadline[i] = late_deadline[j]; late_deadline[j] = t;
  }
  for (long i = 0; i < LATE_N; i++) {
    must(ctx_with_deadline(ctx_background(), late_deadline[i], &cs[i]));
    must(ctx_after_func(cs[i], note, (void *)(intptr_t)i, NULL, &ex, NULL));
  }
  if (ctx_now() >= start) fprintf(stderr, "lateness: setup took longer than 0.5 s\n");
  for (long i = 0; i < LATE_N; i++) ctx_wait(cs[i], -1);
  for (long i = 0; i < LATE_N; i++) {
    while (!__atomic_load_n(&late_seen[i], __ATOMIC_ACQUIRE)) usleep(100);
    late_seen[i] -= late_deadline[i];
    ctx_unref(cs[i]);
  }
  qsort(late_seen, LATE_N, sizeof *late_seen, cmp64);
  out("timer_lateness_p50_us", (double)late_seen[LATE_N / 2] / 1e3);
  out("timer_lateness_p99_us", (double)late_seen[LATE_N * 99 / 100] / 1e3);
  out("timer_lateness_max_us", (double)late_seen[LATE_N - 1] / 1e3);
  free(cs); free(late_deadline); free(late_seen);
}

/* ---- waking: cancel to waiter, and one wait on 1,000 contexts ---- */

/* One thread waits on each round's context in turn: the canceler hands it
** the context, gives it 50 us to block, cancels, and the op is the time from
** the cancel call to the waiter running. Go's run keeps one goroutine so. */
typedef struct {
  ctx_t *_Atomic c;
  _Atomic long round, ready;   /* the round handed over; the one it waits in */
  _Atomic int64_t woke;
  int n;
} wake_t;

static void *wake_waiter(void *arg) {
  wake_t *w = arg;
  for (long i = 0; i < w->n; i++) {
    while (atomic_load(&w->round) != i) sched_yield();
    ctx_t *c = atomic_load(&w->c);
    atomic_store(&w->ready, i);
    ctx_wait(c, -1);
    atomic_store(&w->woke, ctx_now());
  }
  return NULL;
}

static void cancel_wake(int n) {
  int64_t *lat = malloc((size_t)n * sizeof *lat);
  wake_t w = { .n = n };
  atomic_store(&w.round, -1);
  atomic_store(&w.ready, -1);
  pthread_t t;
  pthread_create(&t, NULL, wake_waiter, &w);
  for (int i = 0; i < n; i++) {
    ctx_t *c;
    must(ctx_with_cancel(ctx_background(), &c));
    atomic_store(&w.c, c);
    atomic_store(&w.woke, 0);
    atomic_store(&w.round, i);
    while (atomic_load(&w.ready) != i) sched_yield();
    int64_t until = ctx_now() + 50000;   /* 50 us for it to block, as in Go */
    while (ctx_now() < until) {}
    int64_t t0 = ctx_now(), woke;
    ctx_cancel(c);
    while (!(woke = atomic_load(&w.woke))) sched_yield();
    lat[i] = woke - t0;
    ctx_unref(c);
  }
  pthread_join(t, NULL);
  qsort(lat, (size_t)n, sizeof *lat, cmp64);
  out("cancel_wake_p50_us", (double)lat[n / 2] / 1e3);
  out("cancel_wake_p99_us", (double)lat[n * 99 / 100] / 1e3);
  free(lat);
}

/* The waiter announces each wait; the canceler gives it a fixed 200 us to
** block, cancels one context at random, and the op's cost is the round
** trip minus those 200 us: registering on 1,000 contexts, sleeping, waking,
** unregistering. Go's run does the same around reflect.Select. */
enum { K = 1000 };
#define ANY_DELAY_NS 200000
typedef struct {
  ctx_t *cs[K];
  _Atomic long entering, got;   /* the round the waiter entered; its answer */
  int n;
} any_t;

static void *any_waiter(void *arg) {
  any_t *a = arg;
  for (long i = 0; i < a->n; i++) {
    while (atomic_load(&a->got) != -1) {}
    atomic_store(&a->entering, i);
    size_t which;
    must(ctx_wait_any(a->cs, K, NULL, 0, -1, &which));
    atomic_store(&a->got, (long)which);
  }
  return NULL;
}

static double wait_any_1k(int n) {
  any_t *a = calloc(1, sizeof *a);
  a->n = n;
  atomic_store(&a->got, -1);
  atomic_store(&a->entering, -1);
  for (int i = 0; i < K; i++) must(ctx_with_cancel(ctx_background(), &a->cs[i]));
  pthread_t t;
  pthread_create(&t, NULL, any_waiter, a);
  unsigned seed = 7;
  int64_t t0 = ctx_now();
  for (long i = 0; i < n; i++) {
    seed = seed * 1103515245 + 12345;
    int r = (int)((seed >> 8) % K);
    while (atomic_load(&a->entering) != i) {}
    int64_t until = ctx_now() + ANY_DELAY_NS;
    while (ctx_now() < until) {}
    ctx_cancel(a->cs[r]);
    long w;
    while ((w = atomic_load(&a->got)) < 0) {}
    if (w != r) { fprintf(stderr, "wait_any_1k: woke for the wrong context\n"); exit(1); }
    ctx_unref(a->cs[r]);
    must(ctx_with_cancel(ctx_background(), &a->cs[r]));
    atomic_store(&a->got, -1);
  }
  double r = (double)(ctx_now() - t0) / n - ANY_DELAY_NS;
  pthread_join(t, NULL);
  for (int i = 0; i < K; i++) ctx_unref(a->cs[i]);
  free(a);
  return r / 1e3;
}

static long rss_bytes(void) {
  long pages = 0, res = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f || fscanf(f, "%ld %ld", &pages, &res) != 2) exit(1);
  fclose(f);
  return res * sysconf(_SC_PAGESIZE);
}

static void mem(void) {
  enum { N = 100000 };
  ctx_t *p, **cs = malloc(N * sizeof *cs);
  must(ctx_with_cancel(ctx_background(), &p));
  memset(cs, 0, N * sizeof *cs);  /* touch the array before the baseline */
  long before = rss_bytes();
  for (long i = 0; i < N; i++) must(ctx_with_timeout(p, HOUR, &cs[i]));
  out("bytes_per_live_timeout_ctx", (double)(rss_bytes() - before) / N);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "mem")) { mem(); puts("}"); return 0; }
  ctx_t *p;
  must(ctx_with_cancel(ctx_background(), &p));
  create_cancel(ctx_background(), 1, 100000);  /* warm up: timer thread, malloc */
  out("with_cancel_cancel", create_cancel(ctx_background(), 0, 2000000));
  out("with_cancel_child_of_cancelable", create_cancel(p, 0, 2000000));
  out("with_timeout_cancel", create_cancel(ctx_background(), 1, 2000000));
  out("done_check", done_or_err(0, 50000000));
  out("err_check", done_or_err(1, 50000000));
  out("value_depth10", value_depth10(10000000));
  cancel_tree();
  out("cancel_tree_per_node", cancel_tree());
  out("common_parent_cancel_2threads", two_threads(1000000));
  out("timer_add_cancel_1k", timers_with_live(1000, 2000000));
  out("timer_add_cancel_1m", timers_with_live(1000000, 2000000));
  lateness();
  cancel_wake(2000);
  out("wait_any_1k", wait_any_1k(2000));
  puts("}");
  ctx_cancel(p);
  ctx_unref(p);
  return 0;
}
