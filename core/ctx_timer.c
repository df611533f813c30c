/* ctx_timer.c — the one timer thread: a binary heap of deadlines on
** CLOCK_MONOTONIC, started on first need and restarted after fork(). */
#include <string.h>
#include <time.h>
#include "ctx_int.h"

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  ctx_t **heap;
  uint32_t n, cap;
  int started;
  int64_t sleep_until;  /* what the thread sleeps until; 0 while it scans */
} T = { .mu = PTHREAD_MUTEX_INITIALIZER, .sleep_until = CTX_FOREVER };

static pthread_once_t once = PTHREAD_ONCE_INIT;
_Atomic int ctx__timer_stall;

/* ---- the heap (T.mu held) ---- */

/* slot is atomic so that cancel and destroy can skip the timer lock for a
** node that is not (or no longer) in the heap: once out, it never returns */
static void place(uint32_t i, ctx_t *c) {
  T.heap[i] = c;
  atomic_store_explicit(&c->slot, i, memory_order_relaxed);
}

static void sift_up(uint32_t i) {
  ctx_t *c = T.heap[i];
  while (i > 0) {
    uint32_t p = (i - 1) / 2;
    if (T.heap[p]->deadline <= c->deadline) break;
    place(i, T.heap[p]);
    i = p;
  }
  place(i, c);
}

static void sift_down(uint32_t i) {
  ctx_t *c = T.heap[i];
  for (;;) {
    uint32_t k = 2 * i + 1;
    if (k >= T.n) break;
    if (k + 1 < T.n && T.heap[k + 1]->deadline < T.heap[k]->deadline) k++;
    if (c->deadline <= T.heap[k]->deadline) break;
    place(i, T.heap[k]);
    i = k;
  }
  place(i, c);
}

static void remove_at(uint32_t i) {
  /* release: orders our last use of the node before a lock-free destroy */
  atomic_store_explicit(&T.heap[i]->slot, CTX__NO_SLOT, memory_order_release);
  ctx_t *last = T.heap[--T.n];
  if (i == T.n) return;
  place(i, last);
  if (i > 0 && T.heap[(i - 1) / 2]->deadline > last->deadline) sift_up(i);
  else sift_down(i);
}

/* ---- the thread ---- */

/* One expired node at a time, left in the heap until its walk takes it out
** (end_node removes it, inside the fork gate): a fork in between finds it
** there, and the child's timer fires it. And one walk at a time: a thread
** never has two walks waiting for others, so walks cannot wait in a circle. */
static void *timer_main(void *arg) {
  (void)arg;
  ctx__thread_set_slack();
  pthread_mutex_lock(&T.mu);
  for (;;) {
    if (atomic_load_explicit(&ctx__timer_stall, memory_order_relaxed)) {
      pthread_mutex_unlock(&T.mu);
      nanosleep(&(struct timespec){ 0, 1000000 }, NULL);   /* tests: a late timer */
      pthread_mutex_lock(&T.mu);
      continue;
    }
    T.sleep_until = 0;
    if (T.n && T.heap[0]->deadline <= ctx_now()) {
      ctx_t *c = T.heap[0];
      /* a destructor that sees the slot cleared frees c without our lock: a
      ** dying node is only taken out, and ours is done with c first */
      if (!ctx__try_ref(c)) {
        remove_at(0);
        continue;
      }
      pthread_mutex_unlock(&T.mu);
      /* callbacks never run here: the walk only hands them to executors */
      ctx__cancel(c, CTX_ERR_DEADLINE, NULL, 1);
      ctx_unref(c);
      pthread_mutex_lock(&T.mu);
      continue;
    }
    T.sleep_until = T.n ? T.heap[0]->deadline : CTX_FOREVER;
    ctx__cond_wait_until(&T.cv, &T.mu, T.sleep_until);
  }
  return NULL;
}

static void init_once(void) { ctx__cond_init(&T.cv); }

int ctx__timer_add(ctx_t *c) {
  pthread_once(&once, init_once);
  pthread_mutex_lock(&T.mu);
  int rc = CTX_OK;
  if (!T.started) {
    if ((rc = ctx__spawn(timer_main, NULL)) != CTX_OK) goto out;
    T.started = 1;
  }
  if (T.n == T.cap) {
    uint32_t cap = T.cap ? T.cap * 2 : 64;
    ctx_t **h = ctx__alloc(cap * sizeof *h);
    if (!h) { rc = CTX_ENOMEM; goto out; }
    if (T.n) memcpy(h, T.heap, T.n * sizeof *h);
    ctx__free_mem(T.heap);
    T.heap = h;
    T.cap = cap;
  }
  T.heap[T.n] = c;
  sift_up(T.n++);
  /* pairs with the fence in ctx__timer_remove: either a concurrent cancel
  ** sees the slot, or we see its state and take the entry out again */
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&c->state, memory_order_relaxed) & CTX__ERRMASK) {
    remove_at(atomic_load_explicit(&c->slot, memory_order_relaxed));
  } else if (c->deadline < T.sleep_until) {
    /* wake the thread only if it would sleep past the new deadline */
    pthread_cond_signal(&T.cv);
  }
out:
  pthread_mutex_unlock(&T.mu);
  return rc;
}

void ctx__timer_remove(ctx_t *c) {
  atomic_thread_fence(memory_order_seq_cst);  /* see ctx__timer_add */
  if (atomic_load_explicit(&c->slot, memory_order_acquire) == CTX__NO_SLOT)
    return;  /* never added, fired or removed: it cannot come back */
  pthread_mutex_lock(&T.mu);
  uint32_t i = atomic_load_explicit(&c->slot, memory_order_relaxed);
  if (i != CTX__NO_SLOT) remove_at(i);
  pthread_mutex_unlock(&T.mu);
}

/* ---- fork (called by ctx_fork.c, after the gate is drained) ---- */

void ctx__timer_atfork_prepare(void) { pthread_mutex_lock(&T.mu); }
void ctx__timer_atfork_parent(void) { pthread_mutex_unlock(&T.mu); }
void ctx__timer_atfork_child(void) {
  /* the thread did not survive the fork: reset, and restart if deadlines
  ** wait (if it cannot start, the next deadline added tries again, and
  ** waits fire passed deadlines themselves meanwhile) */
  pthread_mutex_init(&T.mu, NULL);
  ctx__cond_init(&T.cv);
  T.started = 0;
  T.sleep_until = CTX_FOREVER;
  if (T.n && ctx__spawn(timer_main, NULL) == CTX_OK) T.started = 1;
}

/* ---- firing from other threads ---- */

int ctx_expire(ctx_t *c) {
  if (!c) return CTX_EINVAL;
  CTX__CHECK(c);
  if (ctx_done(c) || c->deadline == CTX_FOREVER || c->deadline > ctx_now())
    return 0;
  /* the outermost owner: ending it ends every node below with its cause, as
  ** when its timer fires first; nodes above it have later deadlines */
  ctx_t *owner = NULL;
  for (ctx_t *n = c; n && n->kind != CTX_KIND_WITHOUT_CANCEL; n = n->parent)
    if (n->kind == CTX_KIND_DEADLINE && n->deadline == c->deadline) owner = n;
  /* c's references keep its ancestors alive while we end them */
  return owner ? ctx__cancel(owner, CTX_ERR_DEADLINE, NULL, 1) : 0;
}
