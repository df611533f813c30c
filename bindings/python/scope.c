/* scope.c — scopes (ctx.scope/timeout/deadline as `with`), ctx.current(),
** and interrupt=True: raising a scope's stop in its thread, never after exit. */
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "pyctx.h"
#include "docs.h"
#include "structmember.h"

/* the innermost interrupting scopes of this thread (NULL when there are none) */
static _Thread_local ithread_t *tls_ith;

PyObject *pyctx_current(ctxstate *st) {
  PyObject *v;
  if (PyContextVar_Get(st->current_var, NULL, &v) < 0) return NULL;
  return v ? v : Py_NewRef(st->background);
}

PyObject *pyctx_make_scope(ctxstate *st, int kind, int64_t ns, PyObject *parent,
                           int interrupt) {
  ScopeObject *s = PyObject_GC_New(ScopeObject, st->Scope);
  if (!s) return NULL;
  s->kind = kind;
  s->interrupt = interrupt;
  s->ns = ns;
  s->parent = Py_XNewRef(parent);
  s->active = NULL;
  s->token = NULL;
  s->aux = NULL;
  s->istate = IS_EXITED;
  s->depth = s->delivered_depth = 0;
  s->ith = NULL;
  s->outer = NULL;
  s->after = NULL;
  s->timer = NULL;
  s->delivered = NULL;
  s->weakreflist = NULL;
  PyObject_GC_Track(s);
  return (PyObject *)s;
}

/* ---- interrupts ---- */

/* Raises S's stop in this thread (S's own thread) as a fresh instance. */
static void deliver(ctxstate *st, ScopeObject *s) {
  PyObject *inst = pyctx_new_err(st, s->active->c);
  if (!inst) return;
  s->istate = IS_FIRED;
  s->delivered_depth = s->ith->top ? s->ith->top->depth : s->depth;
  Py_XSETREF(s->delivered, Py_NewRef(inst));
  PyErr_SetObject((PyObject *)Py_TYPE(inst), inst);
  Py_DECREF(inst);
}

/* A stop from another thread: set an async exception of the _Interrupt class,
** whose constructor (run in the target thread) yields the pending stop. */
static void fire_async(ctxstate *st, ScopeObject *s) {
  ithread_t *ith = s->ith;
  s->istate = IS_FIRED;
  if (ith->pending && ith->pending->depth <= s->depth) return;  /* outer wins */
  ith->pending = s;
  PyThreadState_SetAsyncExc(ith->tid, (PyObject *)st->Interrupt);
}

/* Whether an outer scope's stop was raised while S was active: S's context,
** its child, ended with it, and raising S's own stop as well would hit the
** code handling the first one; the outer stop is raised again when S exits
** if that code swallowed it. */
static int covered(ScopeObject *s) {
  for (ScopeObject *o = s->outer; o; o = o->outer)
    if (o->istate == IS_FIRED && o->delivered_depth >= s->depth) return 1;
  return 0;
}

static void interrupt_fn(void *arg) {
  ScopeObject *s = arg;
  if (s->istate != IS_ACTIVE) return;  /* exited (or already raised) */
  if (covered(s)) {
    s->istate = IS_FIRED;
    return;
  }
  ctxstate *st = pyctx_state_of(Py_TYPE(s));
  if (!st) { PyErr_Clear(); return; }
  if (PyThread_get_thread_ident() == s->ith->tid) {
    /* a pending call in the main thread: raise right here (an outer stop
    ** already set as an async exception wins) */
    ScopeObject *p = s->ith->pending;
    if (p) {
      PyThreadState_SetAsyncExc(s->ith->tid, NULL);
      s->ith->pending = NULL;
      if (p->depth < s->depth) {
        s->istate = IS_FIRED;
        s = p;
      }
    }
    deliver(st, s);
  } else {
    fire_async(st, s);
  }
}

int pyctx_interrupt_poll(ctxstate *st, int *fds, int max, int *nfds) {
  ithread_t *ith = tls_ith;
  *nfds = 0;
  if (!ith) return 0;
  if (ith->pending) {  /* set from another thread while we slept: raise it now */
    ScopeObject *p = ith->pending;
    ith->pending = NULL;
    PyThreadState_SetAsyncExc(ith->tid, NULL);
    deliver(st, p);
    return -1;
  }
  ScopeObject *chain[64];
  int n = 0;
  for (ScopeObject *s = ith->top; s && n < 64; s = s->outer) chain[n++] = s;
  for (int i = n - 1; i >= 0; i--) {  /* outermost first: its stop wins */
    ScopeObject *s = chain[i];
    if (s->istate != IS_ACTIVE) continue;
    if (ctx_done(s->active->c)) {
      if (covered(s)) {
        s->istate = IS_FIRED;
        continue;
      }
      deliver(st, s);
      return -1;
    }
    int fd = *nfds < max ? ctx_fd(s->active->c) : -1;
    if (fd >= 0) fds[(*nfds)++] = fd;
  }
  return 0;
}

/* _interrupt_check(): raises now the stop of an ended interrupting scope of
** this thread (signal handlers call it: blocking calls then fail at once). */
PyObject *pyctx_interrupt_check(PyObject *mod, PyObject *unused) {
  (void)unused;
  ctxstate *st = PyModule_GetState(mod);
  int fds[8], n;
  if (pyctx_interrupt_poll(st, fds, 8, &n) < 0) return NULL;
  /* woken by a scope's own POSIX timer: its deadline has passed, but the core's
  ** timer thread may still wait for a CPU: fire the deadline from here */
  for (ScopeObject *s = tls_ith ? tls_ith->top : NULL; s; s = s->outer) {
    int64_t d;
    if (s->istate == IS_ACTIVE && ctx_deadline(s->active->c, &d) && d <= ctx_now()) {
      ctx_expire(s->active->c);  /* ends it now, as the timer thread would */
      if (pyctx_interrupt_poll(st, fds, 8, &n) < 0) return NULL;
      break;
    }
  }
  Py_RETURN_NONE;
}

/* Arms a per-scope POSIX timer that signals this (main) thread right at the
** deadline: the kernel delivers it even while this thread keeps the CPU. */
static void arm_timer(ScopeObject *s) {
  int64_t d;
  int sig = pyctx_wake_sig();
  if (!sig || !ctx_deadline(s->active->c, &d)) return;
  struct sigevent ev = { 0 };
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = sig;
#ifdef sigev_notify_thread_id
  ev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
#else
  ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
#endif
  timer_t t;
  if (timer_create(CLOCK_MONOTONIC, &ev, &t) != 0) return;  /* best effort */
  struct itimerspec its = { { 0, 0 }, { (time_t)(d / 1000000000), (long)(d % 1000000000) } };
  if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
  if (timer_settime(t, TIMER_ABSTIME, &its, NULL) != 0) { timer_delete(t); return; }
  timer_t *box = malloc(sizeof *box);
  if (!box) { timer_delete(t); return; }
  *box = t;
  s->timer = box;
}

static void disarm_timer(ScopeObject *s) {
  if (!s->timer) return;
  timer_delete(*(timer_t *)s->timer);
  free(s->timer);
  s->timer = NULL;
}

static int interrupt_enter(ctxstate *st, ScopeObject *s) {
  ithread_t *ith = tls_ith;
  unsigned long tid = PyThread_get_thread_ident();
  int is_main = tid == pyctx_main_ident();
  if (!is_main && pyctx_ensure_dispatcher(st, PYCTX_Q_INTERNAL) < 0) return -1;
  if (is_main && pyctx_install_wake(st) < 0) return -1;
  if (!ith) {
    if (!(ith = PyMem_RawMalloc(sizeof *ith))) { PyErr_NoMemory(); return -1; }
    ith->tid = tid;
    ith->top = ith->pending = NULL;
    tls_ith = ith;
  }
  s->ith = ith;
  s->outer = ith->top;
  s->depth = s->outer ? s->outer->depth + 1 : 1;
  s->delivered_depth = 0;
  s->istate = IS_ACTIVE;
  ith->top = s;
  Py_INCREF(s);  /* the thread's stack holds it until exit */
  Py_INCREF(s);  /* the callback's argument */
  int rc = ctx_after_func(s->active->c, interrupt_fn, s, pyctx_release,
                          is_main ? &pyctx_main_executor : &pyctx_internal_dispatcher,
                          &s->after);
  if (!rc && is_main) arm_timer(s);
  if (rc) {
    ith->top = s->outer;
    s->istate = IS_EXITED;
    if (!ith->top) { tls_ith = NULL; PyMem_RawFree(ith); }
    Py_DECREF(s);  /* the callback's argument: not taken on failure */
    Py_DECREF(s);  /* the thread's stack */
    return pyctx_check_rc(rc);
  }
  return 0;
}

/* Leaves S's interrupt duty; may raise an outer scope's stop that was
** swallowed inside S (so an inner except cannot eat it). */
static void interrupt_exit(ctxstate *st, ScopeObject *s, PyObject *passing) {
  ithread_t *ith = s->ith;
  s->istate = IS_EXITED;
  disarm_timer(s);
  if (s->after) {
    ctx_after_stop(s->after);
    ctx_after_free(s->after);
    s->after = NULL;
  }
  if (ith->pending == s) {  /* raised too late: never after the block */
    PyThreadState_SetAsyncExc(ith->tid, NULL);
    ith->pending = NULL;
  }
  if (ith->top == s) {
    ith->top = s->outer;
  } else {
    for (ScopeObject *k = ith->top; k; k = k->outer)
      if (k->outer == s) { k->outer = s->outer; break; }
  }
  ScopeObject *owner = NULL;
  for (ScopeObject *o = s->outer; o; o = o->outer)
    if (o->istate == IS_FIRED && o->delivered_depth >= s->depth && ith->pending != o)
      owner = o;  /* keep the outermost */
  if (owner) {
    if (passing && passing == owner->delivered) owner->delivered_depth = s->depth - 1;
    else deliver(st, owner);
  }
  Py_CLEAR(s->delivered);
  s->outer = NULL;
  /* freed by its own thread only: a scope exited elsewhere leaves it in place */
  if (!ith->top && ith == tls_ith) {
    if (ith->pending) PyThreadState_SetAsyncExc(ith->tid, NULL);
    tls_ith = NULL;
    PyMem_RawFree(ith);
  }
  s->ith = NULL;
  Py_DECREF(s);  /* the stack's reference; the caller still holds one */
}

/* ---- the Scope type ---- */

static PyObject *sc_enter(ScopeObject *self, PyObject *u) {
  (void)u;
  ctxstate *st = pyctx_state_of(Py_TYPE(self));
  if (self->active) {
    PyErr_SetString(PyExc_RuntimeError, "this scope is already active");
    return NULL;
  }
  PyObject *parent = self->parent ? Py_NewRef(self->parent) : pyctx_current(st);
  if (!parent) return NULL;
  ctx_t *p = ((CtxObject *)parent)->c, *c;
  int rc = self->kind == SCOPE_CANCEL ? ctx_with_cancel(p, &c)
         : self->kind == SCOPE_TIMEOUT ? ctx_with_timeout(p, self->ns, &c)
         : ctx_with_deadline(p, self->ns, &c);
  Py_DECREF(parent);
  if (rc) return pyctx_check_rc(rc), NULL;
  CtxObject *co = (CtxObject *)pyctx_wrap(st, st->ScopeContext, c);
  if (!co) return NULL;
  PyObject *token = PyContextVar_Set(st->current_var, (PyObject *)co);
  if (!token) { Py_DECREF(co); return NULL; }
  self->active = co;
  self->token = token;
  if (self->interrupt && interrupt_enter(st, self) < 0) {
    PyObject *r = PyObject_CallMethod(st->current_var, "reset", "O", token);
    Py_XDECREF(r);
    ctx_cancel(co->c);
    Py_CLEAR(self->active);
    Py_CLEAR(self->token);
    return NULL;
  }
  return Py_NewRef(co);
}

static PyObject *sc_exit(ScopeObject *self, PyObject *const *a, Py_ssize_t n) {
  if (!self->active) Py_RETURN_FALSE;
  ctxstate *st = pyctx_state_of(Py_TYPE(self));
  PyObject *passing = n >= 2 && a[1] != Py_None ? a[1] : NULL;
  int failed = 0;
  if (self->interrupt && self->ith) {
    interrupt_exit(st, self, passing);
    failed = PyErr_Occurred() != NULL;
  }
  PyObject *et = NULL, *ev = NULL, *tb = NULL;
  if (failed) PyErr_Fetch(&et, &ev, &tb);
  if (PyContextVar_Reset(st->current_var, self->token) < 0) failed = 1;
  ctx_cancel(self->active->c);
  Py_CLEAR(self->token);
  Py_CLEAR(self->active);
  if (et) PyErr_Restore(et, ev, tb);
  if (failed) return NULL;
  Py_RETURN_FALSE;
}

/* _detach(): in a process forked inside the block, the scope stops
** interrupting and its context stops being ctx.current(); nothing is
** canceled (python -m ctx: a forked child does not inherit the runner's root). */
static PyObject *sc_detach(ScopeObject *self, PyObject *u) {
  (void)u;
  ctxstate *st = pyctx_state_of(Py_TYPE(self));
  if (self->interrupt && self->ith) {
    interrupt_exit(st, self, NULL);
    if (PyErr_Occurred()) return NULL;
  }
  self->interrupt = 0;
  PyObject *cur = self->active ? pyctx_current(st) : NULL;
  if (cur) {
    int is_ours = cur == (PyObject *)self->active;
    Py_DECREF(cur);
    PyObject *tok = is_ours ? PyContextVar_Set(st->current_var, st->background) : NULL;
    if (is_ours && !tok) return NULL;
    Py_XDECREF(tok);
  } else if (PyErr_Occurred()) {
    return NULL;
  }
  Py_RETURN_NONE;
}

static PyObject *sc_clone(ScopeObject *self, PyObject *u) {
  (void)u;
  return pyctx_make_scope(pyctx_state_of(Py_TYPE(self)), self->kind, self->ns,
                          self->parent, self->interrupt);
}

static PyObject *sc_get_context(ScopeObject *self, void *closure) {
  (void)closure;
  return Py_NewRef(self->active ? (PyObject *)self->active : Py_None);
}

static PyObject *sc_get_interrupt(ScopeObject *self, void *closure) {
  (void)closure;
  return PyBool_FromLong(self->interrupt);
}

static int sc_traverse(ScopeObject *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->parent);
  Py_VISIT(self->active);
  Py_VISIT(self->token);
  Py_VISIT(self->aux);
  Py_VISIT(self->delivered);
  return 0;
}

static int sc_clear(ScopeObject *self) {
  Py_CLEAR(self->parent);
  Py_CLEAR(self->active);
  Py_CLEAR(self->token);
  Py_CLEAR(self->aux);
  Py_CLEAR(self->delivered);
  return 0;
}

static void sc_dealloc(ScopeObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
  if (self->after) ctx_after_free(self->after);
  disarm_timer(self);
  if (self->active) ctx_cancel(self->active->c);  /* entered, never exited */
  sc_clear(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

#define FC(f) (PyCFunction)(void (*)(void))(f)
static PyMethodDef sc_methods[] = {
  { "__enter__", FC(sc_enter), METH_NOARGS, NULL },
  { "__exit__", FC(sc_exit), METH_FASTCALL, NULL },
  { "_clone", FC(sc_clone), METH_NOARGS, "A fresh, unentered scope with the same arguments." },
  { "_detach", FC(sc_detach), METH_NOARGS, NULL },
  { NULL, NULL, 0, NULL } };

static PyMemberDef sc_members[] = {
  { "_aux", T_OBJECT, offsetof(ScopeObject, aux), 0, NULL },
  { "__weaklistoffset__", T_PYSSIZET, offsetof(ScopeObject, weakreflist), READONLY, NULL },
  { NULL, 0, 0, 0, NULL } };

static PyGetSetDef sc_getset[] = {
  { "context", (getter)sc_get_context, NULL, "The scope's Context while inside, else None.", NULL },
  { "interrupt", (getter)sc_get_interrupt, NULL, "Whether the scope interrupts its thread.", NULL },
  { NULL, NULL, NULL, NULL, NULL } };

static PyType_Slot sc_slots[] = {
  { Py_tp_methods, sc_methods },
  { Py_tp_members, sc_members },
  { Py_tp_getset, sc_getset },
  { Py_tp_traverse, sc_traverse },
  { Py_tp_clear, sc_clear },
  { Py_tp_dealloc, sc_dealloc },
  { Py_tp_doc, DOC_SCOPE_TYPE },
  { 0, NULL } };

PyType_Spec pyctx_scope_spec = { "ctx.Scope", sizeof(ScopeObject), 0,
  Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION, sc_slots };

/* ---- the async exception's class ---- */

/* Called (with no arguments) where the async exception lands: returns the
** pending scope's stop, an instance of Canceled or DeadlineExceeded. */
static PyObject *interrupt_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
  (void)args; (void)kw;
  ctxstate *st = pyctx_state_of(tp);
  if (!st) return NULL;
  ithread_t *ith = tls_ith;
  ScopeObject *p = ith ? ith->pending : NULL;
  if (!p || !p->active)
    return PyObject_CallOneArg(st->Canceled, st->msg_canceled);
  ith->pending = NULL;
  PyObject *inst = pyctx_new_err(st, p->active->c);
  if (inst) {
    p->delivered_depth = ith->top ? ith->top->depth : p->depth;
    Py_XSETREF(p->delivered, Py_NewRef(inst));
  }
  return inst;
}

static PyType_Slot intr_slots[] = {
  { Py_tp_new, interrupt_new },
  { Py_tp_doc, "Internal: the class set as an async exception by interrupt scopes." },
  { 0, NULL } };

PyType_Spec pyctx_interrupt_spec = { "ctx._Interrupt", 0, 0,
  Py_TPFLAGS_DEFAULT, intr_slots };
