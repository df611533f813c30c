/* main.c — runs the registered tests in order (a name filter may be given)
** and ends with the line "N passed, M failed" that CI reads. */
#include <time.h>
#include <unistd.h>
#include "test.h"

#define MAX_TESTS 256
static struct { const char *name; test_fn fn; } tests[MAX_TESTS];
static int ntests;
static jmp_buf fail_jump;
static int failed_now;
atomic_int test_thread_failures;

void test_register(const char *name, test_fn fn) {
  if (ntests == MAX_TESTS) { fputs("too many tests\n", stderr); exit(2); }
  tests[ntests].name = name;
  tests[ntests++].fn = fn;
}

void test_fail(const char *file, int line, const char *what) {
  fprintf(stderr, "  %s:%d: ASSERT %s\n", file, line, what);
  failed_now = 1;
  longjmp(fail_jump, 1);
}

double test_scale(void) {
  const char *s = getenv("CTX_TEST_SCALE");
  double v = s ? atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

long test_iters(long plain) {
  long n = (long)((double)plain * test_scale());
  return n < 1 ? 1 : n;
}

/* ---- counting, failure-injecting allocator ---- */

static atomic_long live, calls, fail_at = -1;
static atomic_int fail_sticky;

static void *count_alloc(size_t n) {
  long k = atomic_fetch_add(&calls, 1);
  long f = atomic_load(&fail_at);
  if (f >= 0 && (k == f || (atomic_load(&fail_sticky) && k > f))) return NULL;
  void *p = malloc(n);
  if (p) atomic_fetch_add(&live, 1);
  return p;
}

static void count_free(void *p) {
  if (!p) return;
  atomic_fetch_sub(&live, 1);
  free(p);
}

long test_live_allocs(void) { return atomic_load(&live); }
long test_alloc_calls(void) { return atomic_load(&calls); }

void test_fail_alloc_after(long n, int sticky) {
  atomic_store(&fail_sticky, sticky);
  atomic_store(&fail_at, n < 0 ? -1 : atomic_load(&calls) + n);
}

void test_sleep_ns(int64_t ns) {
  struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
  while (nanosleep(&ts, &ts) != 0) {}
}

void test_release_count(void *obj) { atomic_fetch_add((atomic_int *)obj, 1); }

void test_nop(void *arg) { (void)arg; }

static double now_ms(void) { return (double)ctx_now() / 1e6; }

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  ctx_set_allocator(count_alloc, count_free);
  /* the timer heap and the default executor's queue are allocated once and
  ** kept: make them before leak counts */
  ctx_t *warm;
  if (ctx_with_timeout(ctx_background(), 3600000000000LL, &warm) == CTX_OK) {
    ctx_after_t *a;
    if (ctx_after_func(warm, test_nop, NULL, NULL, NULL, &a) == CTX_OK) {
      ctx_after_stop(a);
      ctx_after_free(a);
    }
    ctx_cancel(warm);
    ctx_unref(warm);
  }
  long global_base = test_live_allocs();
  int passed = 0, failed = 0;
  for (int i = 0; i < ntests; i++) {
    if (argc > 1) {
      int want = 0;
      for (int a = 1; a < argc; a++) want |= strstr(tests[i].name, argv[a]) != NULL;
      if (!want) continue;
    }
    /* a failed test may leave things behind; a passed one frees all, maybe
    ** a moment late (the timer thread drops its reference after firing) */
    for (int w = 0; w < 2000 && test_live_allocs() != global_base; w++) test_sleep_ns(1000000);
    double t0 = now_ms();
    failed_now = 0;
    atomic_store(&test_thread_failures, 0);
    if (!setjmp(fail_jump)) tests[i].fn();
    test_fail_alloc_after(-1, 0);
    if (atomic_load(&test_thread_failures)) failed_now = 1;
    printf("%s %s (%.0f ms)\n", failed_now ? "FAIL" : "ok  ", tests[i].name, now_ms() - t0);
    if (failed_now) failed++; else passed++;
    if (failed_now) global_base = test_live_allocs();  /* what it left behind */
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
