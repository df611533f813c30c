/* ctx_int.h — internals shared by the core's sources: the node layout, the
** futex lock and the ctx__ functions each source file offers the others. */
#ifndef CTX_INT_H
#define CTX_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include "ctx.h"

/* state word of a node: the error in the low bits, plus a sticky flag telling
** cancel that some thread sleeps on the word (so it must futex-wake). */
#define CTX__ERRMASK  3u
#define CTX__WAITERS  4u

/* flags: immutable once the node is published */
#define CTX__TIMER      2u   /* may own a slot in the timer heap */
#define CTX__CANCELABLE 4u   /* CANCEL or DEADLINE kind (immutable) */
#define CTX__STATIC     8u   /* background/todo: never freed */

#define CTX__NO_SLOT UINT32_MAX

typedef _Atomic uint32_t ctx__lock_t;

/* A cause object shared by every node that a cancellation reached. */
typedef struct ctx__cause {
  _Atomic uint32_t refs;
  void *obj;
  ctx_release_fn release;
} ctx__cause_t;

/* Field order matters: what threads sharing a parent touch (refs, state,
** lock, children) comes first, so it tends to share one cache line. */
struct ctx {
  _Atomic uint32_t refs;
  _Atomic uint32_t state;    /* used on nodes where canc == self */
  ctx__lock_t lock;          /* guards children, afters, cause, fd, and the
                                sibling links of the children */
  uint8_t kind;
  uint8_t flags;
  _Atomic uint8_t linked;    /* in parent->canc's child list; set under that
                                lock, read without it to skip it once 0 */
  ctx_t *children;           /* CANCEL and DEADLINE nodes */
  ctx_t *canc;               /* the node whose state this one reports */
  int64_t deadline;          /* effective deadline, CTX_FOREVER if none */
  ctx_t *parent;             /* holds a reference */
  int32_t fd;                /* eventfd, -1 until asked for; guarded by lock */
  _Atomic uint32_t slot;     /* timer heap index; written under the timer lock */
  union {
    struct {                 /* CANCEL and DEADLINE nodes */
      ctx_t *next, *prev;    /* siblings in parent->canc's children */
      ctx__cause_t *cause;   /* before done: the deadline's pending cause */
      ctx_after_t *afters;
    } c;
    struct {                 /* VALUE nodes */
      void *key, *val;
      ctx_release_fn release;
    } v;
  } u;
};

struct ctx_after {
  _Atomic uint32_t refs;     /* the registration and the stop handle */
  _Atomic uint32_t state;    /* CTX__AF_* */
  int linked;                /* in canc->afters; guarded by canc->lock */
  ctx_t *c;                  /* referenced until run or stopped */
  ctx_after_t *next, *prev;  /* canc->afters, then the executor queue */
  ctx_func_fn fn;
  void *arg;
  ctx_release_fn release;
  ctx_executor_t *ex;
};

enum { CTX__AF_PENDING, CTX__AF_STARTED, CTX__AF_STOPPED };

/* memory (ctx_tree.c) */
void *ctx__alloc(size_t n);
void ctx__free_mem(void *p);

/* the futex lock and waits (ctx_wait.c) */
void ctx__lock_slow(ctx__lock_t *l);
void ctx__futex_wake_all(_Atomic uint32_t *word);
void ctx__futex_wake_one(_Atomic uint32_t *word);

static inline void ctx__lock(ctx__lock_t *l) {
  uint32_t unlocked = 0;
  if (!atomic_compare_exchange_strong_explicit(l, &unlocked, 1,
        memory_order_acquire, memory_order_relaxed))
    ctx__lock_slow(l);
}

static inline void ctx__unlock(ctx__lock_t *l) {
  if (atomic_exchange_explicit(l, 0, memory_order_release) == 2)
    ctx__futex_wake_one(l);
}

/* tree (ctx_tree.c) */
int ctx__try_ref(ctx_t *c);
void ctx__cause_unref(ctx__cause_t *cause);
/* Ends c with err; the timer uses its pending cause (use_pending=1). */
int ctx__cancel(ctx_t *c, uint32_t err, ctx__cause_t *cause, int use_pending);

/* timer (ctx_timer.c) */
/* Epoch nanoseconds of a monotonic deadline, exactly (for String()). */
int64_t ctx__mono_to_wall_ns(int64_t mono_ns);
int ctx__timer_add(ctx_t *c);      /* CTX_OK or CTX_ENOMEM */
void ctx__timer_remove(ctx_t *c);
/* Starts a detached thread with every signal blocked (so signals reach the
** application's threads, whose waits they must interrupt). */
int ctx__spawn(void *(*fn)(void *), void *arg);

/* after_func (ctx_after.c) */
void ctx__after_dispatch(ctx_after_t *a);
void ctx__after_unref(ctx_after_t *a);

#endif /* CTX_INT_H */
