/* ctx_queue.c — executor queues: callbacks and posted tasks waiting for a
** binding's thread; the default executor is a queue with a growing thread pool. */
#include <stdlib.h>
#include "ctx_int.h"

struct ctx_queue {
  ctx_executor_t ex;         /* first: the executor is the queue */
  pthread_mutex_t mu;        /* guards what follows */
  ctx_task_t *head, *tail;
  _Atomic int pending;       /* head != NULL, for lock-free checks */
  size_t idle;               /* consumers blocked in ctx_queue_pop */
  int closed;
  int r, w;                  /* event: signaled while tasks wait */
  _Atomic uint32_t refs;     /* the owner's, and one per registration */
  ctx_after_t *regs;         /* pending registrations that will submit here */
  void (*notify)(void *);    /* called when a task arrives in the empty queue */
  void *notify_arg;
  _Atomic int notifying;     /* calls of notify under way */
  struct ctx_queue *gnext, *gprev;  /* every queue, for fork */
};

/* every queue of the process, for the forked child */
static struct {
  pthread_mutex_t mu;
  ctx_queue_t *head;
  ctx_task_t *orphans;   /* what forked children dropped: kept reachable */
} G = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void queue_submit(ctx_executor_t *ex, ctx_after_t *a);

ctx_queue_t *ctx__queue_of(ctx_executor_t *ex) {
  return ex && ex->submit == queue_submit ? (ctx_queue_t *)ex : NULL;
}

int ctx_queue_new(ctx_queue_t **out) {
  if (!out) return CTX_EINVAL;
  ctx_queue_t *q = ctx__alloc(sizeof *q);
  if (!q) return CTX_ENOMEM;
  int rc = ctx__event_open(&q->r, &q->w);
  if (rc != CTX_OK) { ctx__free_mem(q); return rc; }
  q->ex.submit = queue_submit;
  pthread_mutex_init(&q->mu, NULL);
  q->head = q->tail = NULL;
  atomic_init(&q->pending, 0);
  q->idle = 0;
  q->closed = 0;
  atomic_init(&q->refs, 1);
  q->regs = NULL;
  q->notify = NULL;
  q->notify_arg = NULL;
  atomic_init(&q->notifying, 0);
  pthread_mutex_lock(&G.mu);
  q->gprev = NULL;
  q->gnext = G.head;
  if (G.head) G.head->gprev = q;
  G.head = q;
  pthread_mutex_unlock(&G.mu);
  *out = q;
  return CTX_OK;
}

ctx_executor_t *ctx_queue_executor(ctx_queue_t *q) { return q ? &q->ex : NULL; }

ctx_queue_t *ctx_queue_ref(ctx_queue_t *q) {
  if (q) atomic_fetch_add_explicit(&q->refs, 1, memory_order_relaxed);
  return q;
}

void ctx_queue_unref(ctx_queue_t *q) {
  if (q) ctx__queue_unref(q);
}

void ctx__queue_unref(ctx_queue_t *q) {
  if (atomic_fetch_sub_explicit(&q->refs, 1, memory_order_acq_rel) != 1) return;
  pthread_mutex_lock(&G.mu);
  if (q->gprev) q->gprev->gnext = q->gnext; else G.head = q->gnext;
  if (q->gnext) q->gnext->gprev = q->gprev;
  pthread_mutex_unlock(&G.mu);
  ctx__event_close(q->r, q->w);
  pthread_mutex_destroy(&q->mu);
  ctx__free_mem(q);
}

int ctx__queue_track(ctx_queue_t *q, ctx_after_t *a) {
  pthread_mutex_lock(&q->mu);
  if (q->closed) {
    pthread_mutex_unlock(&q->mu);
    return CTX_ECLOSED;
  }
  atomic_fetch_add_explicit(&q->refs, 1, memory_order_relaxed);
  a->qprev = NULL;
  a->qnext = q->regs;
  if (q->regs) q->regs->qprev = a;
  q->regs = a;
  a->qlisted = 1;
  pthread_mutex_unlock(&q->mu);
  return CTX_OK;
}

/* Once the registration is dispatched or stopped (its state decided). */
void ctx__queue_untrack(ctx_queue_t *q, ctx_after_t *a) {
  pthread_mutex_lock(&q->mu);
  if (a->qlisted) {   /* not if ctx_queue_close took the list */
    if (a->qprev) a->qprev->qnext = a->qnext; else q->regs = a->qnext;
    if (a->qnext) a->qnext->qprev = a->qprev;
    a->qlisted = 0;
  }
  pthread_mutex_unlock(&q->mu);
}

/* Appends t; returns 0 (t not taken) if the queue is closed. */
static int push(ctx_queue_t *q, ctx_task_t *t) {
  t->next = NULL;
  pthread_mutex_lock(&q->mu);
  if (q->closed) {
    pthread_mutex_unlock(&q->mu);
    return 0;
  }
  if (q->tail) q->tail->next = t; else q->head = t;
  void (*fn)(void *) = NULL;
  void *arg = NULL;
  if (!q->tail) {
    atomic_store_explicit(&q->pending, 1, memory_order_relaxed);
    ctx__event_signal(q->w);   /* under the lock: pop drains it under the lock */
    if ((fn = q->notify) != NULL) {
      arg = q->notify_arg;
      atomic_fetch_add_explicit(&q->notifying, 1, memory_order_acquire);
    }
  }
  q->tail = t;
  pthread_mutex_unlock(&q->mu);
  if (fn) {   /* binding code: never under our lock */
    fn(arg);
    atomic_fetch_sub_explicit(&q->notifying, 1, memory_order_release);
  }
  return 1;
}

void ctx_queue_set_notify(ctx_queue_t *q, void (*fn)(void *arg), void *arg) {
  if (!q) return;
  pthread_mutex_lock(&q->mu);
  q->notify = fn;
  q->notify_arg = arg;
  pthread_mutex_unlock(&q->mu);
  /* calls that read the old one finish soon: they only wake someone */
  while (atomic_load_explicit(&q->notifying, memory_order_acquire)) ctx__cpu_relax();
}

static void queue_submit(ctx_executor_t *ex, ctx_after_t *a) {
  if (!push((ctx_queue_t *)ex, &a->task)) ctx_after_discard(a);
}

void ctx_queue_post(ctx_queue_t *q, ctx_task_t *t) {
  if (!q || !t) return;
  if (!push(q, t)) t->run(t, 1);
}

int ctx_queue_pop(ctx_queue_t *q, int64_t timeout_ns, ctx_task_t **out) {
  if (!q || !out) return CTX_EINVAL;
  int64_t until = timeout_ns < 0 ? CTX_FOREVER : ctx_deadline_from_timeout(timeout_ns);
  for (;;) {
    pthread_mutex_lock(&q->mu);
    if (q->closed) {
      pthread_mutex_unlock(&q->mu);
      return CTX_ECLOSED;
    }
    ctx_task_t *t = q->head;
    if (t) {
      q->head = t->next;
      if (!q->head) {
        q->tail = NULL;
        atomic_store_explicit(&q->pending, 0, memory_order_relaxed);
        ctx__event_drain(q->r);
      }
      pthread_mutex_unlock(&q->mu);
      t->next = NULL;
      *out = t;
      return CTX_OK;
    }
    int64_t left = until == CTX_FOREVER ? -1 : until - ctx_now();
    if (until != CTX_FOREVER && left <= 0) {
      pthread_mutex_unlock(&q->mu);
      return CTX_ETIMEDOUT;
    }
    q->idle++;
    atomic_fetch_add_explicit(&q->refs, 1, memory_order_relaxed);  /* outlives a close */
    pthread_mutex_unlock(&q->mu);
    size_t which;
    int rc = ctx_wait_any(NULL, 0, &q->r, 1, left, &which);
    pthread_mutex_lock(&q->mu);
    q->idle--;
    int closed = q->closed;
    pthread_mutex_unlock(&q->mu);
    ctx__queue_unref(q);
    if (closed) return CTX_ECLOSED;   /* q may be gone now */
    if (rc == CTX_EINTR || rc == CTX_EMFILE || rc == CTX_ENOMEM) return rc;
  }
}

void ctx_task_run(ctx_task_t *t) {
  if (t) t->run(t, 0);
}

int ctx_queue_pending(const ctx_queue_t *q) {
  return q ? atomic_load_explicit(&q->pending, memory_order_relaxed) : 0;
}

size_t ctx_queue_idle(const ctx_queue_t *q) {
  if (!q) return 0;
  pthread_mutex_lock((pthread_mutex_t *)&q->mu);
  size_t n = q->idle;
  pthread_mutex_unlock((pthread_mutex_t *)&q->mu);
  return n;
}

int ctx_queue_fd(ctx_queue_t *q) { return q ? q->r : CTX_EINVAL; }

void ctx_queue_close(ctx_queue_t *q) {
  if (!q) return;
  pthread_mutex_lock(&q->mu);
  q->closed = 1;
  ctx_task_t *tasks = q->head;
  q->head = q->tail = NULL;
  atomic_store_explicit(&q->pending, 0, memory_order_relaxed);
  /* a registration listed here holds its own reference: take one more so
  ** that it outlives our stop below whatever its other owners do */
  for (ctx_after_t *a = q->regs; a; a = a->qnext) {
    atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
    a->qlisted = 0;   /* the list is ours now: untrack leaves it alone */
  }
  ctx_after_t *regs = q->regs;
  q->regs = NULL;
  ctx__event_signal(q->w);   /* blocked consumers wake, see it closed */
  pthread_mutex_unlock(&q->mu);
  for (ctx_task_t *t = tasks, *next; t; t = next) {
    next = t->next;
    t->run(t, 1);
  }
  for (ctx_after_t *a = regs, *next; a; a = next) {
    next = a->qnext;
    ctx_after_stop(a);   /* 0 if it was dispatched meanwhile: then discarded */
    ctx__after_unref(a);
  }
  ctx__queue_unref(q);
}

/* ---- fork ---- */

void ctx__queues_atfork_prepare(void) {
  pthread_mutex_lock(&G.mu);
  for (ctx_queue_t *q = G.head; q; q = q->gnext) pthread_mutex_lock(&q->mu);
}

void ctx__queues_atfork_parent(void) {
  for (ctx_queue_t *q = G.head; q; q = q->gnext) pthread_mutex_unlock(&q->mu);
  pthread_mutex_unlock(&G.mu);
}

void ctx__pool_atfork_child(void);

/* What was queued runs in the parent: the child's copies are dropped (not
** discarded: a release could run binding code in a process that is not
** ready for it), its consumers did not survive, its events are fresh. */
void ctx__queues_atfork_child(void) {
  pthread_mutex_init(&G.mu, NULL);
  for (ctx_queue_t *q = G.head; q; q = q->gnext) {
    pthread_mutex_init(&q->mu, NULL);
    if (q->tail) {
      q->tail->next = G.orphans;
      G.orphans = q->head;
    }
    q->head = q->tail = NULL;
    atomic_store_explicit(&q->pending, 0, memory_order_relaxed);
    q->idle = 0;
    ctx__event_renew(q->r, q->w, q->closed);
  }
  ctx__pool_atfork_child();
}

/* ---- the default executor: a pool that grows when all its threads are busy ---- */

#define POOL_IDLE_NS (10LL * 1000000000)   /* a spare thread exits after 10 s idle */
#define POOL_MAX 256                        /* callbacks blocked at once, at most */

static struct {
  pthread_mutex_t mu;
  ctx_queue_t *q;
  int threads;
  int starting;   /* started, not yet waiting for a task: one spare at a time */
} P = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void *pool_main(void *arg);

/* P.mu held. */
static int pool_spawn(void) {
  int rc = ctx__spawn(pool_main, NULL);
  if (rc == CTX_OK) {
    P.threads++;
    P.starting++;
  }
  return rc;
}

static void *pool_main(void *arg) {
  (void)arg;
  ctx_queue_t *q = P.q;
  pthread_mutex_lock(&P.mu);
  P.starting--;
  pthread_mutex_unlock(&P.mu);
  for (;;) {
    ctx_task_t *t;
    int rc = ctx_queue_pop(q, POOL_IDLE_NS, &t);
    if (rc != CTX_OK) {
      pthread_mutex_lock(&P.mu);
      int leave = P.threads > 1;   /* one thread always stays */
      if (leave) P.threads--;
      pthread_mutex_unlock(&P.mu);
      if (leave) return NULL;
      continue;
    }
    /* the last idle thread takes a task that may block: start a spare, so
    ** that a callback waiting for another one's effect never starves it */
    if (ctx_queue_idle(q) == 0) {
      pthread_mutex_lock(&P.mu);
      if (!P.starting && P.threads < POOL_MAX)
        pool_spawn();   /* if it fails, later tasks wait for a free thread */
      pthread_mutex_unlock(&P.mu);
    }
    ctx_task_run(t);
  }
}

int ctx__pool_ensure(void) {
  pthread_mutex_lock(&P.mu);
  int rc = CTX_OK;
  if (!P.q) rc = ctx_queue_new(&P.q);
  if (rc == CTX_OK && P.threads == 0) rc = pool_spawn();
  pthread_mutex_unlock(&P.mu);
  return rc;
}

ctx_executor_t *ctx__pool_executor(void) { return &P.q->ex; }

/* Registrations made in the parent may still fire in the child: they were
** promised a thread. */
void ctx__pool_atfork_child(void) {
  pthread_mutex_init(&P.mu, NULL);
  P.threads = P.starting = 0;
  if (P.q && P.q->regs) pool_spawn();
}
