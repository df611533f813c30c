/* main.c — runs the registered tests in order, each in a process of its own
** (a name filter may be given); ends with the line "N passed, M failed". */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ctx_int.h"   /* ctx__pool_executor */
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

atomic_int test_usr1_handled;
static struct sigaction usr1_old;
static void on_usr1(int sig) { (void)sig; atomic_fetch_add(&test_usr1_handled, 1); }

void test_usr1_install(int restart) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, &usr1_old);
  atomic_store(&test_usr1_handled, 0);
}

void test_usr1_restore(void) { sigaction(SIGUSR1, &usr1_old, NULL); }

static void *usr1_later(void *arg) {
  test_sleep_ns(30 * MS);
  pthread_kill(*(pthread_t *)arg, SIGUSR1);
  return NULL;
}

pthread_t test_usr1_later(pthread_t *target) {
  pthread_t t;
  pthread_create(&t, NULL, usr1_later, target);
  return t;
}

static double now_ms(void) { return (double)ctx_now() / 1e6; }

/* Runs one test in a child process: a crash or a hang names the test instead
** of ending the run (libuv's runner does the same). 1 if it failed. */
static int run_one(int i, long base, double limit_s) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); return 1; }
  if (pid == 0) {
    for (int w = 0; w < 2000 && test_live_allocs() != base; w++) test_sleep_ns(1000000);
    failed_now = 0;
    atomic_store(&test_thread_failures, 0);
    if (!setjmp(fail_jump)) tests[i].fn();
    test_fail_alloc_after(-1, 0);
    if (atomic_load(&test_thread_failures)) failed_now = 1;
    fflush(stdout);
    exit(failed_now);
  }
  int status = 0;
  int64_t until = ctx_now() + (int64_t)(limit_s * 1e9);
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (ctx_now() > until) {
      fprintf(stderr, "  %s: still running after %.0f s: killed\n", tests[i].name, limit_s);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return 1;
    }
    test_sleep_ns(MS);
  }
  if (WIFSIGNALED(status))
    fprintf(stderr, "  %s: died of signal %d\n", tests[i].name, WTERMSIG(status));
  return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

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
  /* the runner forks every test: let its threads settle first, so that
  ** none holds an allocator lock at a fork (ASan's allocator has no fork
  ** handler; a child would inherit the lock held and deadlock) */
  ctx_queue_t *pool = (ctx_queue_t *)ctx__pool_executor();  /* its first member */
  for (int w = 0; w < 5000 && ctx_queue_idle(pool) == 0; w++) test_sleep_ns(MS);
  test_sleep_ns(50 * MS);
  long base = test_live_allocs();
  /* sanitizers and valgrind run 3x-50x slower */
  double limit = 120 / (test_scale() < 1 ? test_scale() : 1);
  if (limit > 600) limit = 600;
  int passed = 0, failed = 0;
  for (int i = 0; i < ntests; i++) {
    if (argc > 1) {
      int want = 0;
      for (int a = 1; a < argc; a++) want |= strstr(tests[i].name, argv[a]) != NULL;
      if (!want) continue;
    }
    double t0 = now_ms();
    int bad = run_one(i, base, limit);
    printf("%s %s (%.0f ms)\n", bad ? "FAIL" : "ok  ", tests[i].name, now_ms() - t0);
    if (bad) failed++; else passed++;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
