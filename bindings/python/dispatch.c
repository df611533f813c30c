/* dispatch.c — handing work between threads: the release of Python objects
** from threads without the GIL, and the after_func dispatcher threads. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include "pyctx.h"

/* Cleared at interpreter exit: from then on objects the core drops are leaked
** rather than touched, and callbacks are no longer run. */
static atomic_int g_alive = 1;
static unsigned long g_main_ident;
/* Callbacks handed to the dispatchers and not yet finished: interpreter exit
** waits (a bounded time) for them, so that work whose context ended before
** the exit still runs. */
static atomic_long g_inflight = 0;
#define EXIT_DRAIN_NS 1000000000LL  /* the bound, documented in the README */

unsigned long pyctx_main_ident(void) { return g_main_ident; }

void pyctx_set_main_ident(unsigned long id) { g_main_ident = id; }

/* ---- releasing objects from threads without the GIL ---- */

typedef struct dnode { struct dnode *next; void *obj; } dnode_t;
static _Atomic(dnode_t *) g_deferred = NULL;

/* A dispatcher queue and its thread: plain mutex + condvar, usable from the
** timer thread. User after_func callbacks have one, the library's own
** (scope stops, async with, wait_async) another, so that a slow user
** callback never holds up the stop of a scope whose deadline passed. */
typedef struct qnode { struct qnode *next; ctx_after_t *a; } qnode_t;
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  qnode_t *head, *tail;
  int started;       /* its thread was started in this process */
  const char *name;  /* the thread's name */
} dqueue_t;
static dqueue_t QS[2] = {
  { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, "ctx-dispatcher" },
  { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, "ctx-stopper" } };

static void wake_dispatcher(void) {
  for (int i = 0; i < 2; i++) {  /* either drains the deferred releases */
    pthread_mutex_lock(&QS[i].mu);
    pthread_cond_signal(&QS[i].cv);
    pthread_mutex_unlock(&QS[i].mu);
  }
}

void pyctx_release(void *obj) {
  if (!obj || !atomic_load(&g_alive)) return;
  if (PyGILState_Check()) {
    Py_DECREF((PyObject *)obj);
    return;
  }
  /* no GIL here (the timer thread, or a wait): hand it to the dispatcher */
  dnode_t *n;
  while (!(n = malloc(sizeof *n))) sched_yield();
  n->obj = obj;
  dnode_t *old = atomic_load(&g_deferred);
  do n->next = old; while (!atomic_compare_exchange_weak(&g_deferred, &old, n));
  if (!old) wake_dispatcher();
}

static void drain_deferred(void) {
  dnode_t *n = atomic_exchange(&g_deferred, NULL);
  while (n) {
    dnode_t *next = n->next;
    Py_DECREF((PyObject *)n->obj);
    free(n);
    n = next;
  }
}

/* ---- executors ---- */

static void queue_submit(dqueue_t *q, ctx_after_t *a) {
  if (!atomic_load(&g_alive)) return;  /* exiting: the callback is dropped */
  qnode_t *n;
  while (!(n = malloc(sizeof *n))) sched_yield();
  n->a = a;
  n->next = NULL;
  atomic_fetch_add(&g_inflight, 1);
  pthread_mutex_lock(&q->mu);
  if (q->tail) q->tail->next = n; else q->head = n;
  q->tail = n;
  pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

static void user_submit(ctx_executor_t *self, ctx_after_t *a) {
  (void)self;
  queue_submit(&QS[PYCTX_Q_USER], a);
}
static void internal_submit(ctx_executor_t *self, ctx_after_t *a) {
  (void)self;
  queue_submit(&QS[PYCTX_Q_INTERNAL], a);
}
ctx_executor_t pyctx_dispatcher = { user_submit };
ctx_executor_t pyctx_internal_dispatcher = { internal_submit };

/* _dispatch_loop(which): the body of a dispatcher thread. */
PyObject *pyctx_dispatch_loop(PyObject *mod, PyObject *which) {
  (void)mod;
  long w = PyLong_AsLong(which);
  if (w != PYCTX_Q_USER && w != PYCTX_Q_INTERNAL) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "no such dispatcher");
    return NULL;
  }
  dqueue_t *q = &QS[w];
  for (;;) {
    qnode_t *batch;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&q->mu);
    while ((!q->head && !atomic_load(&g_deferred)) || !atomic_load(&g_alive))
      pthread_cond_wait(&q->cv, &q->mu);
    batch = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->mu);
    Py_END_ALLOW_THREADS
    drain_deferred();
    while (batch) {
      qnode_t *next = batch->next;
      ctx_after_t *a = batch->a;
      free(batch);
      batch = next;
      ctx_after_run(a);
      if (PyErr_Occurred()) PyErr_WriteUnraisable(NULL);
      atomic_fetch_sub(&g_inflight, 1);
    }
  }
  Py_RETURN_NONE;
}

int pyctx_ensure_dispatcher(ctxstate *st, int which) {
  dqueue_t *q = &QS[which];
  if (q->started) return 0;
  PyObject *threading = PyImport_ImportModule("threading");
  if (!threading) return -1;
  PyObject *cls = PyObject_GetAttrString(threading, "Thread");
  Py_DECREF(threading);
  if (!cls) return -1;
  PyObject *kw = Py_BuildValue("{sOs(i)sOss}", "target", st->dispatch_loop, "args", which,
                               "daemon", Py_True, "name", q->name);
  PyObject *empty = PyTuple_New(0);
  PyObject *t = (kw && empty) ? PyObject_Call(cls, empty, kw) : NULL;
  Py_XDECREF(empty);
  Py_XDECREF(kw);
  Py_DECREF(cls);
  if (!t) return -1;
  PyObject *r = PyObject_CallMethod(t, "start", NULL);
  Py_DECREF(t);
  if (!r) return -1;
  Py_DECREF(r);
  q->started = 1;
  return 0;
}

PyObject *pyctx_shutdown(PyObject *mod, PyObject *unused) {
  (void)mod; (void)unused;
  /* after_funcs already handed over (their context ended before exit) run
  ** first, callbacks they cause included, for at most EXIT_DRAIN_NS */
  int64_t until = ctx_now() + EXIT_DRAIN_NS;
  Py_BEGIN_ALLOW_THREADS
  while (atomic_load(&g_inflight) > 0 && ctx_now() < until) {
    struct timespec ts = { 0, 2000000 };
    nanosleep(&ts, NULL);
  }
  Py_END_ALLOW_THREADS
  atomic_store(&g_alive, 0);
  pyctx_deliver_shutdown();
  /* a scope never exited may keep a kernel timer armed: ignore the wake
  ** signal, as finalization would reset it to its default action, which
  ** kills the process (SIGRTMAX) */
  int sig = pyctx_wake_sig();
  if (sig) {
    PyObject *r = PyObject_CallMethod(PyImport_AddModule("signal"), "signal", "ii",
                                      sig, (int)(intptr_t)SIG_IGN);
    if (r) Py_DECREF(r); else PyErr_Clear();
  }
  Py_RETURN_NONE;
}

PyObject *pyctx_after_fork_child(PyObject *mod, PyObject *unused) {
  (void)unused;
  /* the dispatchers did not survive the fork, and may have held their locks */
  g_main_ident = PyThread_get_thread_ident();
  pyctx_interrupt_fork_child();
  long queued = 0;  /* a callback that was running did not survive the fork */
  for (int i = 0; i < 2; i++)
    for (qnode_t *n = QS[i].head; n; n = n->next) queued++;
  atomic_store(&g_inflight, queued);
  for (int i = 0; i < 2; i++) {
    pthread_mutex_init(&QS[i].mu, NULL);
    pthread_cond_init(&QS[i].cv, NULL);
    int was = QS[i].started;
    QS[i].started = 0;
    if (was && pyctx_ensure_dispatcher(PyModule_GetState(mod), i) < 0) return NULL;
  }
  Py_RETURN_NONE;
}

