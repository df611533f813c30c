/* ctx_thread.c — the core's own threads: starting them (signals blocked,
** library pinned), timer precision, and condition waits on the monotonic clock. */
#include <errno.h>
#include <signal.h>
#include <time.h>
#include "ctx_int.h"
#ifdef CTX_HAVE_PRCTL
#include <sys/prctl.h>
#endif

_Atomic int ctx__spawn_failures;
void ctx__pin_library(void);  /* ctx_pin.c */
static pthread_once_t pin_once = PTHREAD_ONCE_INIT;

int ctx__spawn(void *(*fn)(void *), void *arg) {
  int left = atomic_load_explicit(&ctx__spawn_failures, memory_order_relaxed);
  while (left > 0)   /* injected by tests: this start fails */
    if (atomic_compare_exchange_weak(&ctx__spawn_failures, &left, left - 1)) return CTX_EAGAIN;
  pthread_once(&pin_once, ctx__pin_library);
  pthread_t t;
  pthread_attr_t attr;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  /* the new thread inherits it */
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int rc = pthread_create(&t, &attr, fn, arg);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc == 0 ? CTX_OK : CTX_EAGAIN;
}

void ctx__thread_set_slack(void) {
#ifdef CTX_HAVE_PRCTL
  /* the default 50 us slack would make every deadline fire that much late */
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
#endif
}

void ctx__cond_init(pthread_cond_t *cv) {
#ifdef CTX_HAVE_CONDATTR_SETCLOCK
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &a);
  pthread_condattr_destroy(&a);
#else
  pthread_cond_init(cv, NULL);
#endif
}

/* CTX_FOREVER waits without limit. Spurious and early returns are fine: the
** callers look at the clock again. */
void ctx__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t until) {
  if (until == CTX_FOREVER) {
    pthread_cond_wait(cv, mu);
    return;
  }
#ifdef CTX_HAVE_CONDATTR_SETCLOCK
  struct timespec ts = { (time_t)(until / 1000000000), (long)(until % 1000000000) };
#else
  /* relative to the wall clock, recomputed from the monotonic one at each
  ** wait: a wall clock step makes one wait early or late, never a deadline */
  int64_t left = until - ctx_now();
  if (left <= 0) return;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t abs = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
  abs = left >= INT64_MAX - abs ? INT64_MAX : abs + left;
  struct timespec ts = { (time_t)(abs / 1000000000), (long)(abs % 1000000000) };
#endif
  pthread_cond_timedwait(cv, mu, &ts);
}
