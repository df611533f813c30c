/* ctx_after.c — AfterFunc: registrations on a context's hooks, stop, and the
** hand-off to an executor (the default pool, a queue, or the binding's own). */
#include "ctx_int.h"

void ctx__after_unref(ctx_after_t *a) {
  if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1) return;
  ctx_queue_t *q = a->q;
  ctx__free_mem(a);
  if (q) ctx__queue_unref(q);   /* the queue lives while a registration does */
}

static void after_task_run(ctx_task_t *t, int discard) {
  ctx_after_t *a = (ctx_after_t *)((char *)t - offsetof(ctx_after_t, task));
  if (discard) ctx_after_discard(a);
  else ctx_after_run(a);
}

void ctx__after_dispatch(ctx_after_t *a) {
  uint32_t pending = CTX__AF_PENDING;
  if (!atomic_compare_exchange_strong_explicit(&a->state, &pending, CTX__AF_STARTED,
        memory_order_acq_rel, memory_order_acquire))
    return;  /* stopped first */
  if (a->q) ctx__queue_untrack(a->q, a);
  a->ex->submit(a->ex, a);
}

int ctx_after_func(ctx_t *c, ctx_func_fn fn, void *arg, ctx_release_fn release,
                   ctx_executor_t *ex, ctx_after_t **stop) {
  if (!c || !fn) return CTX_EINVAL;   /* arg stays the caller's */
  CTX__CHECK(c);
  int rc;
  if (!ex) {
    /* the pool must have a thread before we promise the callback will run */
    if ((rc = ctx__pool_ensure()) != CTX_OK) return rc;
    ex = ctx__pool_executor();
  }
  ctx_after_t *a = ctx__alloc(sizeof *a);
  if (!a) return CTX_ENOMEM;
  atomic_init(&a->refs, stop ? 2 : 1);
  atomic_init(&a->state, CTX__AF_PENDING);
  a->h.kind = CTX__HOOK_AFTER;
  a->h.linked = 0;
  a->h.next = a->h.prev = NULL;
  a->task.next = NULL;
  a->task.run = after_task_run;
  a->fn = fn;
  a->arg = arg;
  a->release = release;
  a->ex = ex;
  a->q = ctx__queue_of(ex);
  a->qnext = a->qprev = NULL;
  a->qlisted = 0;
  if (a->q && (rc = ctx__queue_track(a->q, a)) != CTX_OK) {
    ctx__free_mem(a);   /* a closed queue: nothing was taken */
    return rc;
  }
  a->c = ctx_ref(c);
  if (stop) *stop = a;
  ctx_t *k = c->canc;
  if (!(k->flags & CTX__CANCELABLE)) return CTX_OK;  /* never done: stays pending */
  ctx__lock(&k->lock);
  if (atomic_load_explicit(&k->state, memory_order_relaxed) & CTX__ERRMASK) {
    ctx__unlock(&k->lock);
    ctx__after_dispatch(a);
    return CTX_OK;
  }
  a->h.next = k->u.c.hooks;
  if (a->h.next) a->h.next->prev = &a->h;
  k->u.c.hooks = &a->h;
  a->h.linked = 1;
  ctx__unlock(&k->lock);
  return CTX_OK;
}

int ctx_after_stop(ctx_after_t *a) {
  uint32_t pending = CTX__AF_PENDING;
  if (!a) return CTX_EINVAL;
  if (!atomic_compare_exchange_strong_explicit(&a->state, &pending, CTX__AF_STOPPED,
        memory_order_acq_rel, memory_order_acquire))
    return 0;
  ctx_t *k = a->c->canc;
  if (k->flags & CTX__CANCELABLE) {
    ctx__lock(&k->lock);
    if (a->h.linked) {
      if (a->h.prev) a->h.prev->next = a->h.next; else k->u.c.hooks = a->h.next;
      if (a->h.next) a->h.next->prev = a->h.prev;
      a->h.linked = 0;
    }
    ctx__unlock(&k->lock);
  }
  if (a->q) ctx__queue_untrack(a->q, a);
  if (a->release) a->release(a->arg);
  ctx_unref(a->c);
  ctx__after_unref(a);  /* the registration's reference */
  return 1;
}

void ctx_after_free(ctx_after_t *a) {
  if (a) ctx__after_unref(a);
}

void ctx_after_run(ctx_after_t *a) {
  if (!a) return;
  a->fn(a->arg);
  if (a->release) a->release(a->arg);
  ctx_unref(a->c);
  ctx__after_unref(a);
}

void ctx_after_discard(ctx_after_t *a) {
  if (!a) return;
  if (a->release) a->release(a->arg);
  ctx_unref(a->c);
  ctx__after_unref(a);
}
