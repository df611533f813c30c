/* ctx_fork.c — the threads that use the core and the fork gate: fork() waits
** until no other thread holds a node lock or is ending a subtree, then resets. */
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "ctx_int.h"

CTX_TLS ctx__thread_t ctx__self;
_Atomic uint32_t ctx__forking;
_Atomic uint32_t ctx__fork_gen;

static struct {
  pthread_mutex_t mu;        /* guards the list */
  ctx__thread_t *head;
  pthread_key_t key;         /* its destructor unlists an exiting thread */
  int key_ok;
} R = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* Threads whose record could not be listed count here instead. */
static _Atomic uint32_t unlisted_depth;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void on_thread_exit(void *arg) {
  ctx__thread_t *t = arg;
  pthread_mutex_lock(&R.mu);
  if (t->prev) t->prev->next = t->next; else R.head = t->next;
  if (t->next) t->next->prev = t->prev;
  pthread_mutex_unlock(&R.mu);
  if (t->wake_r >= 0) ctx__event_close(t->wake_r, t->wake_w);
  t->wake_r = t->wake_w = -1;
  t->registered = 0;
}

static void atfork_prepare(void);
static void atfork_parent(void);
static void atfork_child(void);

static void init_once(void) {
  R.key_ok = pthread_key_create(&R.key, on_thread_exit) == 0;
  /* one handler for the whole core, so the order of its locks is ours */
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void ctx__thread_register(ctx__thread_t *t) {
  pthread_once(&once, init_once);
  t->self = pthread_self();
  t->wake_r = t->wake_w = -1;
  t->registered = 1;
  static _Atomic uint32_t next_shard;
  t->shard = (uint8_t)(atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed)
                       % CTX__NSHARD);
  if (!R.key_ok || pthread_setspecific(R.key, t) != 0) {
    t->failed = 1;   /* not listed: its gate entries use the shared counter */
    return;
  }
  pthread_mutex_lock(&R.mu);
  t->prev = NULL;
  t->next = R.head;
  if (R.head) R.head->prev = t;
  R.head = t;
  pthread_mutex_unlock(&R.mu);
}

/* ---- the gate ---- */

void ctx__gate_wait(void) {
  uint32_t f;
  while ((f = atomic_load_explicit(&ctx__forking, memory_order_acquire)) != 0)
    ctx__park(&ctx__forking, f);
}

void ctx__gate_enter(void) {
  ctx__thread_t *t = &ctx__self;
  if (!t->registered) ctx__thread_register(t);
  _Atomic uint32_t *depth = t->failed ? &unlisted_depth : &t->depth;
  for (;;) {
    uint32_t d = atomic_load_explicit(&t->depth, memory_order_relaxed);
    if (d && !t->failed) {  /* nested: the outermost entry was checked */
      atomic_store_explicit(&t->depth, d + 1, memory_order_relaxed);
      return;
    }
    atomic_fetch_add_explicit(depth, 1, memory_order_seq_cst);
    if (!atomic_load_explicit(&ctx__forking, memory_order_seq_cst)) return;
    atomic_fetch_sub_explicit(depth, 1, memory_order_release);
    ctx__gate_wait();
  }
}

void ctx__gate_exit(void) {
  ctx__thread_t *t = &ctx__self;
  atomic_fetch_sub_explicit(t->failed ? &unlisted_depth : &t->depth, 1, memory_order_release);
}

/* Took a node lock as the outermost gate entry while a fork is starting: let
** the fork go first, then take it again. */
void ctx__lock_backoff(ctx__lock_t *l) {
  ctx__unlock(l);
  ctx__gate_wait();
  ctx__lock(l);
}

/* 0 unlocked, 1 locked, 2 locked with sleepers (Drepper, "Futexes are
** tricky"). Sections are a few dozen instructions, so a waiter spins first:
** parking costs a system call on both sides, far more than the section. */
void ctx__lock_slow(ctx__lock_t *l) {
  for (int spin = 0; spin < 200; spin++) {
    for (int i = 0; i < 1 + (spin & 15); i++) ctx__cpu_relax();
    uint32_t unlocked = 0;
    if (atomic_load_explicit(l, memory_order_relaxed) == 0 &&
        atomic_compare_exchange_weak_explicit(l, &unlocked, 1,
          memory_order_seq_cst, memory_order_relaxed))
      return;
  }
  while (atomic_exchange_explicit(l, 2, memory_order_seq_cst) != 0)
    ctx__park(l, 2);
}

/* ---- fork ---- */

static int others_inside(void) {
  if (atomic_load_explicit(&unlisted_depth, memory_order_seq_cst)) return 1;
  for (ctx__thread_t *t = R.head; t; t = t->next)
    if (t != &ctx__self && atomic_load_explicit(&t->depth, memory_order_seq_cst))
      return 1;
  return 0;
}

static void atfork_prepare(void) {
  atomic_store_explicit(&ctx__forking, 1, memory_order_seq_cst);
  pthread_mutex_lock(&R.mu);
  /* gate sections never block on anything a fork holds: they end soon */
  for (int i = 0; others_inside(); i++) {
    if (i < 100) sched_yield();
    else nanosleep(&(struct timespec){ 0, 100000 }, NULL);
  }
  ctx__timer_atfork_prepare();
  ctx__queues_atfork_prepare();
  ctx__fds_atfork_prepare();
}

static void atfork_parent(void) {
  ctx__fds_atfork_parent();
  ctx__queues_atfork_parent();
  ctx__timer_atfork_parent();
  pthread_mutex_unlock(&R.mu);
  atomic_store_explicit(&ctx__forking, 0, memory_order_seq_cst);
  ctx__unpark_all(&ctx__forking);
}

static void atfork_child(void) {
  ctx__park_atfork_child();
  pthread_mutex_init(&R.mu, NULL);
  /* only this thread survived: forget the others (their wake-up events are
  ** the parent's; close our copies), and let endings by walks that did not
  ** survive count as settled (ctx__settle_wait) */
  atomic_fetch_add_explicit(&ctx__fork_gen, 1, memory_order_relaxed);
  for (ctx__thread_t *t = R.head, *next; t; t = next) {
    next = t->next;
    if (t != &ctx__self && t->wake_r >= 0) ctx__event_close(t->wake_r, t->wake_w);
  }
  ctx__thread_t *me = &ctx__self;
  R.head = NULL;
  if (me->registered && !me->failed) {
    me->prev = me->next = NULL;
    R.head = me;
    me->self = pthread_self();
  }
  atomic_store_explicit(&unlisted_depth, 0, memory_order_relaxed);
  ctx__fds_atfork_child();     /* our wake event and the contexts' descriptors */
  ctx__queues_atfork_child();
  ctx__procs_atfork_child();
  ctx__timer_atfork_child();
  atomic_store_explicit(&ctx__forking, 0, memory_order_relaxed);
}
