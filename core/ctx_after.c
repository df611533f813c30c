/* ctx_after.c — AfterFunc: registrations with stop, and the core's default
** executor, a callback thread that is never the timer thread. */
#include <pthread.h>
#include "ctx_int.h"

void ctx__after_unref(ctx_after_t *a) {
  if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) == 1)
    ctx__free_mem(a);
}

/* ---- the default executor ---- */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  ctx_after_t *head, *tail;
  int started;
} X = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0 };

static void *runner_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&X.mu);
  for (;;) {
    while (!X.head) pthread_cond_wait(&X.cv, &X.mu);
    ctx_after_t *a = X.head;
    X.head = a->next;
    if (!X.head) X.tail = NULL;
    pthread_mutex_unlock(&X.mu);
    ctx_after_run(a);
    pthread_mutex_lock(&X.mu);
  }
  return NULL;
}

static void atfork_prepare(void) { pthread_mutex_lock(&X.mu); }
static void atfork_parent(void) { pthread_mutex_unlock(&X.mu); }
static void atfork_child(void) {
  pthread_mutex_init(&X.mu, NULL);
  pthread_cond_init(&X.cv, NULL);
  X.started = 0;
  if (X.head && ctx__spawn(runner_main, NULL) == CTX_OK) X.started = 1;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void init_once(void) {
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static void default_submit(ctx_executor_t *self, ctx_after_t *a) {
  (void)self;
  pthread_once(&once, init_once);
  pthread_mutex_lock(&X.mu);
  a->next = NULL;
  if (X.tail) X.tail->next = a; else X.head = a;
  X.tail = a;
  /* if the thread cannot start now, the next submit retries */
  if (!X.started && ctx__spawn(runner_main, NULL) == CTX_OK) X.started = 1;
  pthread_cond_signal(&X.cv);
  pthread_mutex_unlock(&X.mu);
}

static ctx_executor_t default_executor = { default_submit };

/* ---- registrations ---- */

void ctx__after_dispatch(ctx_after_t *a) {
  uint32_t pending = CTX__AF_PENDING;
  if (!atomic_compare_exchange_strong_explicit(&a->state, &pending, CTX__AF_STARTED,
        memory_order_acq_rel, memory_order_acquire))
    return;  /* stopped first */
  ctx_executor_t *ex = a->ex ? a->ex : &default_executor;
  ex->submit(ex, a);
}

int ctx_after_func(ctx_t *c, ctx_func_fn fn, void *arg, ctx_release_fn release,
                   ctx_executor_t *ex, ctx_after_t **stop) {
  ctx_after_t *a = NULL;
  int rc = CTX_EINVAL;
  if (c && fn) {
    rc = CTX_ENOMEM;
    a = ctx__alloc(sizeof *a);
  }
  if (!a) return rc;  /* arg stays the caller's */
  atomic_init(&a->refs, stop ? 2 : 1);
  atomic_init(&a->state, CTX__AF_PENDING);
  a->linked = 0;
  a->c = ctx_ref(c);
  a->next = a->prev = NULL;
  a->fn = fn;
  a->arg = arg;
  a->release = release;
  a->ex = ex;
  if (stop) *stop = a;
  ctx_t *k = c->canc;
  if (!(k->flags & CTX__CANCELABLE)) return CTX_OK;  /* never done: stays pending */
  ctx__lock(&k->lock);
  if (atomic_load_explicit(&k->state, memory_order_relaxed) & CTX__ERRMASK) {
    ctx__unlock(&k->lock);
    ctx__after_dispatch(a);
    return CTX_OK;
  }
  a->next = k->u.c.afters;
  if (a->next) a->next->prev = a;
  k->u.c.afters = a;
  a->linked = 1;
  ctx__unlock(&k->lock);
  return CTX_OK;
}

int ctx_after_stop(ctx_after_t *a) {
  uint32_t pending = CTX__AF_PENDING;
  if (!a || !atomic_compare_exchange_strong_explicit(&a->state, &pending,
                CTX__AF_STOPPED, memory_order_acq_rel, memory_order_acquire))
    return 0;
  ctx_t *k = a->c->canc;
  if (k->flags & CTX__CANCELABLE) {
    ctx__lock(&k->lock);
    if (a->linked) {
      if (a->prev) a->prev->next = a->next; else k->u.c.afters = a->next;
      if (a->next) a->next->prev = a->prev;
      a->linked = 0;
    }
    ctx__unlock(&k->lock);
  }
  if (a->release) a->release(a->arg);
  ctx_unref(a->c);
  ctx__after_unref(a);  /* the registration's reference */
  return 1;
}

void ctx_after_free(ctx_after_t *a) {
  if (a) ctx__after_unref(a);
}

void ctx_after_run(ctx_after_t *a) {
  a->fn(a->arg);
  if (a->release) a->release(a->arg);
  ctx_unref(a->c);
  ctx__after_unref(a);
}
