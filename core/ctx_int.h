/* ctx_int.h — internals shared by the core's sources: the node layout, the
** node lock and fork gate, and the ctx__ functions each file offers the others. */
#ifndef CTX_INT_H
#define CTX_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "ctx.h"
#include "ctx_platform.h"

/* state word of a cancelable node: the error in the low bits, then flags,
** then the fork generation in which it ended (see ctx__settle_wait) */
#define CTX__ERRMASK   3u
#define CTX__PARKED    4u    /* a thread sleeps on the word: wake it */
#define CTX__SETTLED   8u    /* its whole subtree has ended (what cancel waits for) */
#define CTX__HANDED    16u   /* and the subtree's callbacks were handed on (ctx_settle) */
#define CTX__GEN_SHIFT 5
#define CTX__GEN_MASK  0x07ffffffu

/* flags: immutable once the node is published */
#define CTX__TIMER      2u   /* may own a slot in the timer heap */
#define CTX__CANCELABLE 4u   /* CANCEL or DEADLINE kind (immutable) */
#define CTX__STATIC     8u   /* background/todo: never freed */
#define CTX__HOLD      16u   /* holds its parent through a shard's count, not refs */

/* refs: the count, and a bit set for good once the node has shards (then its
** count reaches 0 only under every shard lock: see ctx_shard.c) */
#define CTX__REF_SHARDED 0x80000000u
#define CTX__REF_COUNT   0x7fffffffu

#define CTX__NO_SLOT UINT32_MAX
#define CTX__MAGIC 0x63747821u   /* "ctx!" in debug builds; poison when freed */

typedef _Atomic uint32_t ctx__lock_t;

/* A cause object shared by every node that a cancellation reached. */
typedef struct ctx__cause {
  _Atomic uint32_t refs;
  void *obj;
  ctx_release_fn release;
  struct ctx__cause *next;   /* a cancel walk's list of causes to release */
} ctx__cause_t;

/* What a node calls when it ends: after_func registrations and waiters,
** one list guarded by the node's lock. */
typedef struct ctx__hook {
  struct ctx__hook *next, *prev;
  uint8_t kind;              /* CTX__HOOK_* */
  uint8_t linked;            /* in a node's hooks; guarded by that node's lock */
} ctx__hook_t;
enum { CTX__HOOK_AFTER, CTX__HOOK_WAIT };
struct ctx__thread;
typedef struct ctx__wlink {  /* a waiting thread, linked on each context it waits for */
  ctx__hook_t h;
  struct ctx__thread *t;
} ctx__wlink_t;

/* Field order matters: what threads sharing a parent touch (refs, state,
** lock, children) comes first, so it tends to share one cache line. */
struct ctx {
  _Atomic uint32_t refs;
  _Atomic uint32_t state;    /* used on nodes where canc == self */
  ctx__lock_t lock;          /* guards children, hooks, cause, fd, and the
                                sibling links of the children */
  uint8_t kind;
  uint8_t flags;
  _Atomic uint8_t linked;    /* in parent->canc's child list; set under that
                                lock, read without it to skip it once 0 */
  uint8_t shard;             /* that list: 0 the node's own, else shards[shard-1] */
  ctx_t *canc;               /* the node whose state this one reports */
  int64_t deadline;          /* effective deadline, CTX_FOREVER if none */
  ctx_t *parent;             /* holds a reference */
  int32_t fd;                /* pollable event (read end), -1 until asked for */
  _Atomic uint32_t slot;     /* timer heap index; written under the timer lock */
  union {
    struct {                 /* CANCEL and DEADLINE nodes */
      ctx_t *children;
      ctx_t *next, *prev;    /* siblings in parent->canc's children; then a
                                cancel walk's lists */
      ctx__cause_t *cause;   /* before done: the deadline's pending cause */
      ctx__hook_t *hooks;
      struct ctx__shards *_Atomic shards;  /* made once threads contend */
    } c;
    struct {                 /* VALUE nodes */
      void *key, *val;
      ctx_release_fn release;
    } v;
  } u;
#ifdef CTX_DEBUG
  uint32_t magic;            /* CTX__MAGIC while alive */
#endif
};

struct ctx_after {
  ctx__hook_t h;             /* in canc's hooks while pending; then a walk's list */
  ctx_task_t task;           /* in a queue once submitted to one */
  _Atomic uint32_t refs;     /* the registration and the stop handle */
  _Atomic uint32_t state;    /* CTX__AF_* */
  ctx_t *c;                  /* referenced until run or stopped */
  ctx_func_fn fn;
  void *arg;
  ctx_release_fn release;
  ctx_executor_t *ex;
  ctx_queue_t *q;            /* ex is q's executor: q is counted and tracks us */
  ctx_after_t *qnext, *qprev;  /* q's pending registrations (q's lock) */
  int qlisted;               /* in q's list (q's lock) */
};

enum { CTX__AF_PENDING, CTX__AF_STARTED, CTX__AF_STOPPED };

/* A parent that threads contend for gets one child list per group of
** threads, each with its own lock on its own cache line; the children a
** shard lists hold the parent through its count instead of the parent's refs
** (ctx_shard.c). Lock order: a node's lock, then its shards in index order. */
#define CTX__NSHARD 8
typedef struct ctx__shard {
  ctx__lock_t lock;
  _Atomic uint32_t holds;    /* CTX__HOLD children attached here, linked or not */
  ctx_t *children;
  char pad[64 - 2 * sizeof(uint32_t) - sizeof(ctx_t *)];
} ctx__shard_t;
typedef struct ctx__shards {
  ctx__shard_t s[CTX__NSHARD];
  uint8_t orphan;            /* refs reached 0 while holds remained (all locks) */
  uint8_t reaped;            /* decided dead (all locks) */
  void *raw;                 /* the allocation, as the allocator returned it */
} ctx__shards_t;

/* ---- memory (ctx_tree.c) ---- */
void *ctx__alloc(size_t n);
void ctx__free_mem(void *p);
#ifdef CTX_DEBUG
void ctx__check_alive(const ctx_t *c);   /* aborts on a freed node */
#define CTX__CHECK(c) ctx__check_alive(c)
#else
#define CTX__CHECK(c) ((void)0)
#endif

/* ---- parking: futex or its emulation (ctx_park_futex.c / ctx_park_posix.c) ---- */
/* Sleeps while *word == expected (spurious returns allowed). */
void ctx__park(_Atomic uint32_t *word, uint32_t expected);
void ctx__unpark_one(_Atomic uint32_t *word);
void ctx__unpark_all(_Atomic uint32_t *word);
void ctx__park_atfork_child(void);

/* ---- threads and the fork gate (ctx_fork.c) ----
** A node lock is held, and a cancel walk's first phase runs, inside the fork
** gate: fork() waits (in its prepare handler) until no other thread is inside,
** so a child never inherits a held node lock or a half-ended subtree. */
typedef struct ctx__thread {
  _Atomic uint32_t depth;    /* gate nesting; read by the forking thread */
  uint8_t registered, failed;
  uint8_t shard;             /* which shard of a contended parent it uses */
  struct ctx__thread *next, *prev;  /* the registry (its lock) */
  pthread_t self;
  int wake_r, wake_w;        /* this thread's wake-up event, -1 until a wait */
  _Atomic uint32_t woken;    /* 1 once a context it waits on ended; a waker
                                signals the event only if it is SLEEPING */
} ctx__thread_t;

#define CTX__WAKE_SLEEPING 2u
extern CTX_TLS ctx__thread_t ctx__self;
extern _Atomic uint32_t ctx__forking;
extern _Atomic uint32_t ctx__fork_gen;  /* bumped in every forked child */
void ctx__thread_register(ctx__thread_t *t);
void ctx__gate_wait(void);                  /* until the fork in progress is over */
void ctx__lock_slow(ctx__lock_t *l);
void ctx__lock_backoff(ctx__lock_t *l);

/* The seq_cst CAS of the lock orders our depth before our read of
** ctx__forking, against the forking thread's store then read (Dekker). */
/* Returns 1 if another thread held it (how a parent learns to shard). */
static inline int ctx__lock(ctx__lock_t *l) {
  ctx__thread_t *t = &ctx__self;
  if (!t->registered) ctx__thread_register(t);
  uint32_t d = atomic_load_explicit(&t->depth, memory_order_relaxed);
  atomic_store_explicit(&t->depth, d + 1, memory_order_relaxed);
  uint32_t unlocked = 0;
  int contended = !atomic_compare_exchange_strong_explicit(l, &unlocked, 1,
                    memory_order_seq_cst, memory_order_relaxed);
  if (contended) ctx__lock_slow(l);
  if (d == 0 && atomic_load_explicit(&ctx__forking, memory_order_seq_cst))
    ctx__lock_backoff(l);
  return contended;
}

static inline void ctx__unlock(ctx__lock_t *l) {
  if (atomic_exchange_explicit(l, 0, memory_order_release) == 2)
    ctx__unpark_one(l);
  ctx__thread_t *t = &ctx__self;
  atomic_store_explicit(&t->depth, atomic_load_explicit(&t->depth, memory_order_relaxed) - 1,
                        memory_order_release);
}

void ctx__gate_enter(void);   /* outermost entry waits while a fork is in progress */
void ctx__gate_exit(void);
/* The state word's generation bits for an ending now. */
static inline uint32_t ctx__gen_bits(void) {
  return (atomic_load_explicit(&ctx__fork_gen, memory_order_relaxed) & CTX__GEN_MASK)
         << CTX__GEN_SHIFT;
}
/* Starts a detached thread with every signal blocked (so signals reach the
** application's threads, whose waits they must interrupt). CTX_EAGAIN. */
int ctx__spawn(void *(*fn)(void *), void *arg);
extern _Atomic int ctx__spawn_failures;     /* tests: fail the next N spawns */
void ctx__thread_set_slack(void);            /* timer precision, where possible */
/* Timed condition waits on the monotonic clock, or relative where the
** platform cannot (ctx_thread.c). */
void ctx__cond_init(pthread_cond_t *cv);
void ctx__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t mono_deadline);

/* ---- pollable events (ctx_event_eventfd.c / ctx_event_pipe.c) ----
** An event is readable once signaled until drained. With eventfd both ends
** are one descriptor. */
int ctx__event_open(int *r, int *w);          /* CTX_OK, CTX_EMFILE, CTX_ENOMEM */
void ctx__event_signal(int w);                /* async-signal-safe */
void ctx__event_drain(int r);
void ctx__event_close(int r, int w);
/* After fork: puts a fresh event on the same descriptor numbers (so the
** child no longer shares it with the parent), signaled if `set`. */
void ctx__event_renew(int r, int w, int set);
/* poll() with a nanosecond timeout (negative: none); ppoll where it exists. */
struct pollfd;
int ctx__poll(struct pollfd *p, size_t n, int64_t timeout_ns);

/* ---- children (ctx_child_pidfd.c / ctx_child_poll.c) ---- */
int ctx__pidfd_open(int pid);                 /* -1 where there is none */

/* ---- tree (ctx_tree.c) ---- */
int ctx__try_ref(ctx_t *c);
void ctx__detach_from_link(ctx_t *c);
/* Under the lock of `head`, one of link's child lists: c joins it (1), or is
** born done if link has ended (0; *drop is the cause to release after). */
int ctx__join(ctx_t *c, ctx_t *link, ctx_t **head, ctx__cause_t **drop);
void ctx__unjoin(ctx_t *c, ctx_t **head);   /* if still linked */
void ctx__cause_unref(ctx__cause_t *cause);
/* Ends c with err (the timer uses its pending cause: use_pending=1) and its
** subtree; returns once the subtree is done. 1 if this call ended c. */
int ctx__cancel(ctx_t *c, uint32_t err, ctx__cause_t *cause, int use_pending);
/* The same for a batch, whose first phase runs inside the caller's gate. */
typedef struct ctx__walk ctx__walk_t;
struct ctx__walk {
  ctx_t *head, *tail;        /* nodes this walk ended (roots excluded), referenced */
  ctx_t *foreign;            /* nodes another walk ended first: wait for them */
  ctx__hook_t *afters, *afters_tail;  /* callbacks to hand on */
  ctx__cause_t *drops;       /* pending causes to release */
  ctx_t *root;
  int root_own;
};
void ctx__walk_begin(ctx__walk_t *w, ctx_t *root, uint32_t err, ctx__cause_t *cause,
                     int use_pending);  /* inside the gate */
void ctx__walk_finish(ctx__walk_t *w);  /* outside it */
/* Waits until canc's state has `bit` (CTX__SETTLED or CTX__HANDED). */
void ctx__settle_wait(const ctx_t *canc, uint32_t bit);

/* ---- shards (ctx_shard.c) ---- */
static inline ctx__shards_t *ctx__shards_of(const ctx_t *c) {
  return (c->flags & CTX__CANCELABLE)
    ? atomic_load_explicit(&((ctx_t *)c)->u.c.shards, memory_order_acquire) : NULL;
}
void ctx__shards_make(ctx_t *link);          /* link's lock held */
int ctx__shard_attach(ctx_t *c, ctx_t *parent, ctx__shards_t *s);  /* as attach() */
void ctx__shard_unlink(ctx_t *c);            /* from its shard, if still linked */
int ctx__shard_leave(ctx_t *c);              /* destroying c: 1 if its parent died */
int ctx__shards_release(ctx_t *c);           /* c's last ref: 1 if c is dead */
int ctx__shards_try_ref(ctx_t *c);           /* a ref on c at count 0, if alive */
uint32_t ctx__shards_holds(const ctx__shards_t *s);
void ctx__shards_take(ctx__walk_t *w, ctx__shards_t *s);  /* end_node: their children */
void ctx__walk_take(ctx__walk_t *w, ctx_t *list); /* ctx_cancel.c */
size_t ctx__shards_count(ctx__shards_t *s);  /* children listed */

/* ---- timer (ctx_timer.c) and clocks (ctx_clock.c) ---- */
int64_t ctx__mono_to_wall_ns(int64_t mono_ns);
int ctx__timer_add(ctx_t *c);      /* CTX_OK, CTX_ENOMEM or CTX_EAGAIN */
void ctx__timer_remove(ctx_t *c);
extern _Atomic int ctx__timer_stall;   /* tests: the timer thread fires nothing */
void ctx__timer_atfork_prepare(void);
void ctx__timer_atfork_parent(void);
void ctx__timer_atfork_child(void);

/* ---- after_func and queues (ctx_after.c, ctx_queue.c) ---- */
void ctx__after_dispatch(ctx_after_t *a);
void ctx__after_unref(ctx_after_t *a);
ctx_queue_t *ctx__queue_of(ctx_executor_t *ex);   /* NULL if ex is not a queue's */
int ctx__queue_track(ctx_queue_t *q, ctx_after_t *a);  /* CTX_ECLOSED */
void ctx__queue_untrack(ctx_queue_t *q, ctx_after_t *a);
void ctx__queue_unref(ctx_queue_t *q);
ctx_executor_t *ctx__pool_executor(void);   /* the default executor */
int ctx__pool_ensure(void);                 /* a thread exists, or CTX_EAGAIN */
void ctx__queues_atfork_prepare(void);
void ctx__queues_atfork_parent(void);
void ctx__queues_atfork_child(void);

/* ---- waits (ctx_wait.c) ---- */
int ctx__wait(ctx_t *const *cs, size_t nc, const int *fds, size_t nfd, ctx_proc_t *p,
              int64_t timeout_ns, size_t *which);
int ctx__thread_wake_event(ctx__thread_t *t);   /* makes it on first use */
/* How long a wait on contexts spins before it sleeps (adapts; see there). */
#define CTX__SPIN_START_NS 10000
#define CTX__SPIN_MAX_NS 200000
extern _Atomic int64_t ctx__spin_ns;
void ctx__fds_atfork_prepare(void);
void ctx__fds_atfork_parent(void);
void ctx__fds_atfork_child(void);
void ctx__fd_signal(int fd);     /* the node lock held: the context ended */
void ctx__fd_close(int fd);

/* ---- children (ctx_proc.c) ---- */
/* 1 if p's child exited (reaped unless NOREAP); checked without blocking. */
int ctx__proc_poll(ctx_proc_t *p);
int ctx__proc_pidfd(const ctx_proc_t *p);
int64_t ctx__proc_next_check(ctx_proc_t *p, int64_t now);  /* poll schedule */
void ctx__procs_atfork_child(void);

#endif /* CTX_INT_H */
