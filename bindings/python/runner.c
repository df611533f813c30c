/* runner.c — what `python -m ctx` needs below Python: a watchdog thread that
** ends the process without the GIL, and the children run_process started. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "pyctx.h"

/* ---- the children run_process started (killed by a hard exit) ---- */

typedef struct { int pid, group; } child_t;
static pthread_mutex_t g_kids_mu = PTHREAD_MUTEX_INITIALIZER;
static child_t *g_kids;
static size_t g_nkids, g_capkids;

int pyctx_track_child(int pid, int group) {
  int rc = 0;
  pthread_mutex_lock(&g_kids_mu);
  if (g_nkids == g_capkids) {
    size_t cap = g_capkids ? 2 * g_capkids : 8;
    child_t *k = realloc(g_kids, cap * sizeof *k);
    if (k) { g_kids = k; g_capkids = cap; }
  }
  if (g_nkids < g_capkids) g_kids[g_nkids++] = (child_t){ pid, group };
  else rc = -1;
  pthread_mutex_unlock(&g_kids_mu);
  return rc;
}

void pyctx_untrack_child(int pid) {
  pthread_mutex_lock(&g_kids_mu);
  for (size_t i = 0; i < g_nkids; i++)
    if (g_kids[i].pid == pid) { g_kids[i] = g_kids[--g_nkids]; break; }
  pthread_mutex_unlock(&g_kids_mu);
}

/* SIGKILL to every tracked child, to its whole group when it leads one.
** Just before _exit: the lock is waited for only briefly (a thread that holds
** it is in the middle of a short update, or did not survive a fork). */
static void kill_children(void) {
  int locked = 0;
  for (int i = 0; i < 1000 && !locked; i++)
    if (!(locked = pthread_mutex_trylock(&g_kids_mu) == 0)) sched_yield();
  for (size_t i = 0; i < g_nkids; i++) {
    if (g_kids[i].group) kill(-g_kids[i].pid, SIGKILL);
    kill(g_kids[i].pid, SIGKILL);
  }
  if (locked) pthread_mutex_unlock(&g_kids_mu);
}

/* ---- the watchdog ---- */

/* Once the runner's root context is done, the script has `grace` seconds to
** end; then the process is ended with the verdict's status. A thread of its
** own, never a callback queue (a stuck after_func cannot delay it), without
** the GIL (a script stuck in C cannot either). */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int running, disarmed;
  ctx_t *c;
  int64_t grace_ns;
  int code;                        /* 0: from c's error */
  char *msg, *msg_deadline, *msg_cancel;
} W;  /* its lock and condition are made by pyctx_runner_init */

/* Flushes sys.stdout and sys.stderr, so what the script printed is not lost. */
static void *flusher(void *done) {
  PyGILState_STATE g = PyGILState_Ensure();
  PyObject *r;
  if ((r = PyObject_CallMethod(PySys_GetObject("stdout"), "flush", NULL))) Py_DECREF(r);
  if ((r = PyObject_CallMethod(PySys_GetObject("stderr"), "flush", NULL))) Py_DECREF(r);
  PyErr_Clear();
  pthread_mutex_lock(&W.mu);
  *(int *)done = 1;
  pthread_cond_broadcast(&W.cv);
  pthread_mutex_unlock(&W.mu);
  PyGILState_Release(g);
  return NULL;
}

static struct timespec mono_ts(int64_t ns) {
  return (struct timespec){ (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
}

static void *watchdog(void *unused) {
  (void)unused;
  while (ctx_wait(W.c, -1) != CTX_OK) {}
  pthread_mutex_lock(&W.mu);
  int64_t until = ctx_now() + W.grace_ns;
  while (!W.disarmed && ctx_now() < until) {
    struct timespec ts = mono_ts(until);
    pthread_cond_timedwait(&W.cv, &W.mu, &ts);
  }
  if (W.disarmed) {
    W.running = 0;
    pthread_mutex_unlock(&W.mu);
    return NULL;
  }
  int code = W.code;
  const char *msg = W.msg;
  if (!code) {
    int dl = ctx_err(W.c) == CTX_ERR_DEADLINE;
    code = dl ? 124 : 1;
    msg = dl ? W.msg_deadline : W.msg_cancel;
  }
  /* the GIL for a flush, if it can be had soon (not while exiting) */
#if PY_VERSION_HEX >= 0x030D0000
  int finalizing = Py_IsFinalizing();
#else
  int finalizing = _Py_IsFinalizing();
#endif
  static int flushed;
  pthread_t t;
  if (!finalizing && pthread_create(&t, NULL, flusher, &flushed) == 0) {
    pthread_detach(t);
    int64_t by = ctx_now() + 200 * 1000000LL;
    while (!flushed && ctx_now() < by) {
      struct timespec ts = mono_ts(by);
      pthread_cond_timedwait(&W.cv, &W.mu, &ts);
    }
  }
  kill_children();
  if (msg) {
    ssize_t n = write(2, msg, strlen(msg));
    (void)n;
  }
  _exit(code);
}

static char *dup_utf8(PyObject *s) {
  const char *u = s == Py_None ? NULL : PyUnicode_AsUTF8(s);
  if (!u) return NULL;
  char *r = strdup(u);
  if (!r) PyErr_NoMemory();
  return r;
}

/* _watchdog(c, grace, msg_deadline, msg_cancel): arms it for c. */
static PyObject *f_watchdog(PyObject *m, PyObject *args) {
  ctxstate *st = PyModule_GetState(m);
  PyObject *c, *grace, *md, *mc;
  int64_t ns;
  if (!PyArg_ParseTuple(args, "OOUU:_watchdog", &c, &grace, &md, &mc)) return NULL;
  ctx_t *k;
  if (pyctx_parent(st, c, &k) < 0 || pyctx_seconds(st, grace, &ns) < 0) return NULL;
  char *a = dup_utf8(md), *b = a ? dup_utf8(mc) : NULL;
  if (!b) { free(a); return NULL; }
  pthread_mutex_lock(&W.mu);
  if (W.running) {
    pthread_mutex_unlock(&W.mu);
    free(a); free(b);
    PyErr_SetString(PyExc_RuntimeError, "a watchdog is already running");
    return NULL;
  }
  if (W.c) ctx_unref(W.c);
  free(W.msg); free(W.msg_deadline); free(W.msg_cancel);
  W.c = ctx_ref(k);
  W.grace_ns = ns < 0 ? 0 : ns;
  W.code = 0;
  W.msg = NULL;
  W.msg_deadline = a;
  W.msg_cancel = b;
  W.disarmed = 0;
  /* signals stay with the other threads: the main thread runs the handlers */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pthread_t t;
  int rc = pthread_create(&t, NULL, watchdog, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == 0) {
    pthread_detach(t);
    W.running = 1;
  }
  pthread_mutex_unlock(&W.mu);
  if (rc) return PyErr_SetFromErrno(PyExc_OSError);
  Py_RETURN_NONE;
}

/* _watchdog_verdict(code, msg): the status and message it ends with (set
** when a signal stopped the script). */
static PyObject *f_watchdog_verdict(PyObject *m, PyObject *args) {
  (void)m;
  int code;
  PyObject *msg;
  if (!PyArg_ParseTuple(args, "iU:_watchdog_verdict", &code, &msg)) return NULL;
  char *s = dup_utf8(msg);
  if (!s) return NULL;
  pthread_mutex_lock(&W.mu);
  free(W.msg);
  W.msg = s;
  W.code = code;
  pthread_mutex_unlock(&W.mu);
  Py_RETURN_NONE;
}

/* _watchdog_disarm(): the script ended on time. */
static PyObject *f_watchdog_disarm(PyObject *m, PyObject *u) {
  (void)m; (void)u;
  pthread_mutex_lock(&W.mu);
  W.disarmed = 1;
  pthread_cond_broadcast(&W.cv);
  pthread_mutex_unlock(&W.mu);
  Py_RETURN_NONE;
}

/* _hard_exit(code, msg): the second signal: kills run_process's children,
** writes msg and ends the process now (no atexit, no flush that may block). */
static PyObject *f_hard_exit(PyObject *m, PyObject *args) {
  (void)m;
  int code;
  const char *msg;
  if (!PyArg_ParseTuple(args, "is:_hard_exit", &code, &msg)) return NULL;
  kill_children();
  ssize_t n = write(2, msg, strlen(msg));
  (void)n;
  _exit(code);
}

/* _track_child(pid, group) / _untrack_child(pid), for run_process. */
static PyObject *f_track_child(PyObject *m, PyObject *args) {
  (void)m;
  int pid, group;
  if (!PyArg_ParseTuple(args, "ip:_track_child", &pid, &group)) return NULL;
  if (pyctx_track_child(pid, group) < 0) return PyErr_NoMemory();
  Py_RETURN_NONE;
}

static PyObject *f_untrack_child(PyObject *m, PyObject *args) {
  (void)m;
  int pid;
  if (!PyArg_ParseTuple(args, "i:_untrack_child", &pid)) return NULL;
  pyctx_untrack_child(pid);
  Py_RETURN_NONE;
}

/* the watchdog's condition variable times out on the monotonic clock */
static void init_sync(void) {
  pthread_mutex_init(&W.mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&W.cv, &ca);
  pthread_condattr_destroy(&ca);
}

/* In a forked child: no watchdog thread, no children of its own yet. The
** locks are made anew, as their holders did not survive the fork. */
static void after_fork_child(void) {
  init_sync();
  W.running = 0;
  W.disarmed = 1;
  pthread_mutex_init(&g_kids_mu, NULL);
  g_nkids = 0;
}

int pyctx_runner_init(PyObject *m) {
  static int once;
  if (!once) {
    init_sync();
    if (pthread_atfork(NULL, NULL, after_fork_child) != 0) {
      PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
      return -1;
    }
    once = 1;
  }
  static PyMethodDef methods[] = {
    { "_watchdog", f_watchdog, METH_VARARGS, NULL },
    { "_watchdog_verdict", f_watchdog_verdict, METH_VARARGS, NULL },
    { "_watchdog_disarm", f_watchdog_disarm, METH_NOARGS, NULL },
    { "_hard_exit", f_hard_exit, METH_VARARGS, NULL },
    { "_track_child", f_track_child, METH_VARARGS, NULL },
    { "_untrack_child", f_untrack_child, METH_VARARGS, NULL },
    { NULL, NULL, 0, NULL } };
  return PyModule_AddFunctions(m, methods);
}
