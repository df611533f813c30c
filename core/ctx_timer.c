/* ctx_timer.c — clocks and the one timer thread: a binary heap of deadlines on
** CLOCK_MONOTONIC, started on first need and restarted after fork(). */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
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
static int64_t wall_offset;  /* realtime - monotonic, fixed per process */

/* ---- clocks ---- */

static int64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ctx_now(void) { return clock_ns(CLOCK_MONOTONIC); }

double ctx_wall_now(void) { return (double)clock_ns(CLOCK_REALTIME) / 1e9; }

static void fix_offset(void) {
  int64_t m1 = clock_ns(CLOCK_MONOTONIC), r = clock_ns(CLOCK_REALTIME),
          m2 = clock_ns(CLOCK_MONOTONIC);
  wall_offset = r - (m1 + (m2 - m1) / 2);
}
static pthread_once_t offset_once = PTHREAD_ONCE_INIT;

int64_t ctx_seconds_to_ns(double s) {
  if (isnan(s) || s >= 9.2e9) return CTX_FOREVER;
  if (s <= -9.2e9) return -CTX_FOREVER;
  return (int64_t)ceill((long double)s * 1e9L);
}

int64_t ctx_wall_to_mono(double s) {
  pthread_once(&offset_once, fix_offset);
  int64_t ns = ctx_seconds_to_ns(s);
  if (ns == CTX_FOREVER) return CTX_FOREVER;
  if (ns == -CTX_FOREVER) return -CTX_FOREVER;
  int64_t m;
  if (__builtin_sub_overflow(ns, wall_offset, &m)) return ns < 0 ? -CTX_FOREVER : CTX_FOREVER - 1;
  return m == CTX_FOREVER ? CTX_FOREVER - 1 : m;
}

int64_t ctx__mono_to_wall_ns(int64_t m) {
  pthread_once(&offset_once, fix_offset);
  int64_t w;  /* saturates: deadlines centuries away must not overflow */
  if (__builtin_add_overflow(m, wall_offset, &w)) return m < 0 ? INT64_MIN : INT64_MAX;
  return w;
}

double ctx_mono_to_wall(int64_t m) {
  pthread_once(&offset_once, fix_offset);
  if (m == CTX_FOREVER) return INFINITY;
  return (double)(((long double)m + (long double)wall_offset) / 1e9L);
}

/* ---- threads ---- */

/* Our threads run our code until the process ends: if the core was loaded
** with dlopen() (a Python or Lua module), unloading it would leave them in
** unmapped code. Pin the object that holds us; a no-op when linked in. */
static void pin_self(void) {
  Dl_info info;
  if (dladdr((void *)pin_self, &info) && info.dli_fname) {
    void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    (void)h;  /* never closed: that is the point */
  }
}
static pthread_once_t pin_once = PTHREAD_ONCE_INIT;

int ctx__spawn(void *(*fn)(void *), void *arg) {
  pthread_once(&pin_once, pin_self);
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
  return rc == 0 ? CTX_OK : CTX_ENOMEM;
}

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

static void *timer_main(void *arg) {
  (void)arg;
  /* the default 50 us slack would make every deadline fire that much late */
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  pthread_mutex_lock(&T.mu);
  for (;;) {
    ctx_t *batch[64];
    int nb = 0;
    T.sleep_until = 0;
    int64_t now = ctx_now();
    while (T.n && T.heap[0]->deadline <= now && nb < 64) {
      ctx_t *c = T.heap[0];
      /* ref before removal: a destructor that sees the slot cleared frees c
      ** without taking our lock, so we must be done with c by then */
      if (ctx__try_ref(c)) batch[nb++] = c;  /* else its destructor waits */
      remove_at(0);
    }
    if (nb) {
      /* callbacks never run here: ctx__cancel only hands them to executors */
      pthread_mutex_unlock(&T.mu);
      for (int i = 0; i < nb; i++) {
        ctx__cancel(batch[i], CTX_ERR_DEADLINE, NULL, 1);
        ctx_unref(batch[i]);
      }
      pthread_mutex_lock(&T.mu);
      continue;
    }
    T.sleep_until = T.n ? T.heap[0]->deadline : CTX_FOREVER;
    if (T.sleep_until == CTX_FOREVER) {
      pthread_cond_wait(&T.cv, &T.mu);
    } else {
      struct timespec ts = { (time_t)(T.sleep_until / 1000000000),
                             (long)(T.sleep_until % 1000000000) };
      pthread_cond_timedwait(&T.cv, &T.mu, &ts);
    }
  }
  return NULL;
}

static void init_cond(void) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&T.cv, &a);
  pthread_condattr_destroy(&a);
}

static void atfork_prepare(void) { pthread_mutex_lock(&T.mu); }
static void atfork_parent(void) { pthread_mutex_unlock(&T.mu); }
static void atfork_child(void) {
  /* the thread did not survive the fork: reset, and restart if deadlines wait */
  pthread_mutex_init(&T.mu, NULL);
  init_cond();
  T.started = 0;
  T.sleep_until = CTX_FOREVER;
  if (T.n && ctx__spawn(timer_main, NULL) == CTX_OK) T.started = 1;
}

static void init_once(void) {
  init_cond();
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

int ctx__timer_add(ctx_t *c) {
  pthread_once(&once, init_once);
  pthread_mutex_lock(&T.mu);
  if (!T.started) {
    if (ctx__spawn(timer_main, NULL) != CTX_OK) goto nomem;
    T.started = 1;
  }
  if (T.n == T.cap) {
    uint32_t cap = T.cap ? T.cap * 2 : 64;
    ctx_t **h = ctx__alloc(cap * sizeof *h);
    if (!h) goto nomem;
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
  pthread_mutex_unlock(&T.mu);
  return CTX_OK;
nomem:
  pthread_mutex_unlock(&T.mu);
  return CTX_ENOMEM;
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

/* ---- firing from other threads ---- */

int ctx_expire(ctx_t *c) {
  if (!c || ctx_done(c) || c->deadline == CTX_FOREVER || c->deadline > ctx_now())
    return 0;
  /* the outermost owner: ending it ends every node below with its cause, as
  ** when its timer fires first; nodes above it have later deadlines */
  ctx_t *owner = NULL;
  for (ctx_t *n = c; n && n->kind != CTX_KIND_WITHOUT_CANCEL; n = n->parent)
    if (n->kind == CTX_KIND_DEADLINE && n->deadline == c->deadline) owner = n;
  /* c's references keep its ancestors alive while we end them */
  return owner ? ctx__cancel(owner, CTX_ERR_DEADLINE, NULL, 1) : 0;
}
