/* test.h — the tiny test framework of the C suite: self-registering tests,
** ASSERT macros that fail the current test, and helpers shared by the files. */
#ifndef CTX_TEST_H
#define CTX_TEST_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ctx.h"

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);
void test_fail(const char *file, int line, const char *what);

/* TEST(name) { ... } defines and registers a test (runs in file order). */
#define TEST(name) \
  static void test_##name(void); \
  __attribute__((constructor)) static void reg_##name(void) { \
    test_register(#name, test_##name); } \
  static void test_##name(void)

/* Fails the test and leaves it (main thread only; threads use CHECK). */
#define ASSERT(e) do { if (!(e)) test_fail(__FILE__, __LINE__, #e); } while (0)
#define ASSERT_EQ(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
  if (a_ != b_) { char m_[256]; snprintf(m_, sizeof m_, "%s == %s (%lld != %lld)", \
    #a, #b, a_, b_); test_fail(__FILE__, __LINE__, m_); } } while (0)
#define ASSERT_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
  if (!a_ || strcmp(a_, b_)) { char m_[512]; snprintf(m_, sizeof m_, \
    "%s is \"%s\", want \"%s\"", #a, a_ ? a_ : "(null)", b_); \
    test_fail(__FILE__, __LINE__, m_); } } while (0)

/* From any thread: records a failure without leaving (the test fails at end). */
extern atomic_int test_thread_failures;
#define CHECK(e) do { if (!(e)) { fprintf(stderr, "  %s:%d: CHECK %s\n", \
  __FILE__, __LINE__, #e); atomic_fetch_add(&test_thread_failures, 1); } } while (0)

/* Sizes loops to the mode (CTX_TEST_SCALE: 1 plain, smaller under tools). */
double test_scale(void);
long test_iters(long plain);

/* The counting allocator installed for the whole run. */
long test_live_allocs(void);
/* Makes the n-th allocation from now fail (and every later one if sticky);
** -1 disables. */
void test_fail_alloc_after(long n, int sticky);
long test_alloc_calls(void);

/* Time helpers. */
void test_sleep_ns(int64_t ns);
#define MS (1000000LL)

/* Releases that count, for ownership checks: the object is an int counter. */
void test_release_count(void *obj);
/* A callback that does nothing. */
void test_nop(void *arg);

/* SIGUSR1 counted in test_usr1_handled, installed with or without
** SA_RESTART (the old action saved for test_usr1_restore); and a thread that
** sends it to `target` 30 ms from now (join it). */
#include <pthread.h>
extern atomic_int test_usr1_handled;
void test_usr1_install(int restart);
void test_usr1_restore(void);
pthread_t test_usr1_later(pthread_t *target);



/* Polls expr every millisecond for up to ms milliseconds; gives its last value. */
#define WAIT_FOR(expr, ms) ({ int ok_ = 0; \
  for (long t_ = 0; t_ <= (ms) && !(ok_ = !!(expr)); t_++) { test_sleep_ns(MS); } ok_; })
/* Live allocations are back to base (threads that still hold a reference
** for a moment, the timer's or an executor's, get two seconds to drop it). */
#define ASSERT_NO_LEAK(base) ASSERT(WAIT_FOR(test_live_allocs() == (base), 2000))

#endif /* CTX_TEST_H */
