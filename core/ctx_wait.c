/* ctx_wait.c — blocking: the futex behind node locks, waits on a node's state
** word that signals interrupt, and the eventfd a context exposes for poll(). */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "ctx_int.h"

static long futex(_Atomic uint32_t *word, int op, uint32_t val,
                  const struct timespec *ts, uint32_t mask) {
  return syscall(SYS_futex, (uint32_t *)word, op, val, ts, NULL, mask);
}

void ctx__futex_wake_all(_Atomic uint32_t *word) {
  futex(word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, 0);
}

void ctx__futex_wake_one(_Atomic uint32_t *word) {
  futex(word, FUTEX_WAKE_PRIVATE, 1, NULL, 0);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* 0 unlocked, 1 locked, 2 locked with sleepers (Drepper, "Futexes are
** tricky"). Critical sections are a few dozen instructions: spin briefly. */
void ctx__lock_slow(ctx__lock_t *l) {
  /* back off exponentially: a spinner that keeps reading the lock's line
  ** steals it from the holder, which then misses again inside its section */
  for (int spin = 1; spin <= 64; spin *= 2) {
    for (int i = 0; i < spin; i++) cpu_relax();
    uint32_t unlocked = 0;
    if (atomic_load_explicit(l, memory_order_relaxed) == 0 &&
        atomic_compare_exchange_weak_explicit(l, &unlocked, 1,
          memory_order_acquire, memory_order_relaxed))
      return;
  }
  while (atomic_exchange_explicit(l, 2, memory_order_acquire) != 0)
    futex(l, FUTEX_WAIT_PRIVATE, 2, NULL, 0);
}

int ctx_wait(const ctx_t *c, int64_t timeout_ns) {
  if (!c) return CTX_EINVAL;
  _Atomic uint32_t *word = &c->canc->state;
  struct timespec abs, *tsp = NULL;
  if (timeout_ns >= 0) {
    int64_t until = timeout_ns >= CTX_FOREVER - ctx_now() ? CTX_FOREVER
                                                          : ctx_now() + timeout_ns;
    abs.tv_sec = (time_t)(until / 1000000000);
    abs.tv_nsec = (long)(until % 1000000000);
    tsp = &abs;
  }
  for (;;) {
    uint32_t s = atomic_load_explicit(word, memory_order_acquire);
    if (s & CTX__ERRMASK) return CTX_OK;
    if (!(s & CTX__WAITERS)) {
      if (!atomic_compare_exchange_weak_explicit(word, &s, s | CTX__WAITERS,
            memory_order_acq_rel, memory_order_acquire))
        continue;
      s |= CTX__WAITERS;
    }
    /* absolute CLOCK_MONOTONIC timeout: spurious wakeups cannot stretch it */
    if (futex(word, FUTEX_WAIT_BITSET_PRIVATE, s, tsp, FUTEX_BITSET_MATCH_ANY) == 0)
      continue;
    if (errno == ETIMEDOUT)
      return ctx_done(c) ? CTX_OK : CTX_ETIMEDOUT;
    if (errno == EINTR)
      return ctx_done(c) ? CTX_OK : CTX_EINTR;
    /* EAGAIN: the word changed before we slept; look again */
  }
}

int ctx_fd(ctx_t *c) {
  if (!c) return CTX_EINVAL;
  ctx_t *k = c->canc;
  int fd;
  ctx__lock(&k->lock);
  if (k->fd < 0) {
    k->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (k->fd >= 0 && (atomic_load_explicit(&k->state, memory_order_relaxed) & CTX__ERRMASK)) {
      uint64_t one = 1;
      ssize_t n = write(k->fd, &one, sizeof one);
      (void)n;
    }
  }
  fd = k->fd;
  ctx__unlock(&k->lock);
  return fd >= 0 ? fd : (errno == ENOMEM ? CTX_ENOMEM : CTX_EMFILE);
}
