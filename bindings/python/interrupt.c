/* interrupt.c — interrupt=True: which stop is due on a thread, when it is
** raised (again), shields, and what fork() and exiting threads leave behind. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "pyctx.h"
#include "structmember.h"
#include "frameobject.h"

/* ---- the per-thread state ---- */

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static ithread_t *g_all;          /* every ithread (GIL) */
static atomic_uint g_fork_gen;    /* bumped in every forked child */

/* Runs as a thread exits, without the GIL, after its thread state is gone:
** its scopes (a suspended generator's) can never fire on it any more. */
static void thread_gone(void *p) { ((ithread_t *)p)->dead = 1; }
static void make_key(void) { (void)pthread_key_create(&g_key, thread_gone); }

ithread_t *pyctx_ith(void) {
  pthread_once(&g_key_once, make_key);
  return pthread_getspecific(g_key);
}

int pyctx_ith_alive(ithread_t *ith) {
  if (ith->dead || !ith->tstate) return 0;
  /* a thread state can be gone a moment before thread_gone runs: look it up */
  PyInterpreterState *interp = PyInterpreterState_Get();
  for (PyThreadState *t = PyInterpreterState_ThreadHead(interp); t; t = PyThreadState_Next(t))
    if (t == ith->tstate) return t->thread_id == ith->tid;
  return 0;
}

static void free_ith(ithread_t *ith) {
  pyctx_disarm(ith);
  for (ithread_t **p = &g_all; *p; p = &(*p)->next_all)
    if (*p == ith) { *p = ith->next_all; break; }
  PyMem_RawFree(ith->shields);
  PyMem_RawFree(ith);
}

/* Frees the ithreads of threads that exited with nothing left on them. */
static void reap(void) {
  for (ithread_t *i = g_all, *next; i; i = next) {
    next = i->next_all;
    if (i->dead && !i->top && !i->nshields) free_ith(i);
  }
}

static ithread_t *get_or_make_ith(void) {
  ithread_t *ith = pyctx_ith();
  if (ith) return ith;
  reap();
  if (!(ith = PyMem_RawCalloc(1, sizeof *ith))) { PyErr_NoMemory(); return NULL; }
  ith->tid = PyThread_get_thread_ident();
  ith->tstate = PyThreadState_Get();
  ith->is_main = ith->tid == pyctx_main_ident();
  if (pthread_setspecific(g_key, ith) != 0) {
    PyMem_RawFree(ith);
    PyErr_NoMemory();
    return NULL;
  }
  ith->next_all = g_all;
  g_all = ith;
  return ith;
}

/* Frees this thread's state once nothing is left on it. */
static void release_ith(ithread_t *ith) {
  if (ith->top || ith->nshields || ith != pyctx_ith()) return;
  pthread_setspecific(g_key, NULL);
  free_ith(ith);
}

/* ---- who runs here ---- */

/* Whether owner (a weakref, or NULL for plain frames) executes on this
** thread now: a generator's scope or shield counts only while it runs here. */
static int runs_here(PyObject *owner, const void *frame) {
  if (!owner) return 1;
  if (pyctx_owner_state(owner) != 1) return 0;
  /* executing, but maybe on another thread: look for its frame on ours */
  PyFrameObject *f = PyEval_GetFrame();
  Py_XINCREF(f);
  int found = 0;
  while (f && !found) {
    found = (const void *)f == frame;
    PyFrameObject *b = PyFrame_GetBack(f);
    Py_DECREF(f);
    f = b;
  }
  Py_XDECREF(f);
  return found;
}

static int shielded(ithread_t *ith) {
  for (size_t i = ith->nshields; i-- > 0;)
    if (runs_here(ith->shields[i].owner, ith->shields[i].frame)) return 1;
  return 0;
}

static int scope_runs_here(ScopeObject *s) {
  return runs_here(s->active->owner, s->active->frame);
}

int pyctx_stop_pending(ithread_t *ith) {
  for (ScopeObject *s = ith->top; s; s = s->outer)
    if (s->istate == IS_ACTIVE && ctx_done(s->active->base.c) == 1) return 1;
  return 0;
}

/* The stop due on this thread: of the outermost ended scope that runs here
** (leaving an inner scope does not end an outer one, so the outer's stop is
** the one that must get out); *later: an ended scope of a suspended generator. */
static ScopeObject *due_scope(ithread_t *ith, int *later) {
  ScopeObject *found = NULL;
  *later = 0;
  for (ScopeObject *s = ith->top; s; s = s->outer) {
    if (s->istate != IS_ACTIVE || ctx_done(s->active->base.c) != 1) continue;
    if (scope_runs_here(s)) found = s;
    else *later = 1;
  }
  return found;
}

/* ---- raising, and raising again ---- */



static void rearm_fn(void *arg);

static void stop_rearm(ScopeObject *s) {
  if (!s->rearm) return;
  ctx_after_stop(s->rearm_after);
  ctx_after_free(s->rearm_after);
  ctx_unref(s->rearm);
  s->rearm = NULL;
  s->rearm_after = NULL;
  s->rearm_at = 0;
}

/* Arranges for s's thread to look again at `at` (a caught stop is raised
** again then, a suspended generator's is polled): the core's timer ends a
** context, and its callback arms delivery (and signals the main thread). */
static void schedule_rearm(ScopeObject *s, int64_t at) {
  if (s->rearm && s->rearm_at == at) return;
  stop_rearm(s);
  ctx_t *c;
  if (ctx_with_deadline(ctx_background(), at, &c) != CTX_OK) return;  /* best effort */
  Py_INCREF(s);
  if (ctx_after_func(c, rearm_fn, s, pyctx_release, &s->wake, &s->rearm_after) != CTX_OK) {
    Py_DECREF(s);
    ctx_cancel(c);
    ctx_unref(c);
    return;
  }
  s->rearm = c;
  s->rearm_at = at;
}

/* As in Go, the stop is raised once s's whole subtree is done: the inner
** scopes' contexts, which the thread that ended s's may still be ending. */
static void settle(ScopeObject *s) {
  Py_BEGIN_ALLOW_THREADS
  ctx_settle(s->active->base.c);
  Py_END_ALLOW_THREADS
}

static int raise_stop(ctxstate *st, ScopeObject *s, int64_t now) {
  settle(s);
  PyObject *inst = pyctx_new_err(st, s->active->base.c);
  if (!inst) return -1;
  s->raised_at = now;
  Py_XSETREF(s->delivered, Py_NewRef(inst));
  pyctx_disarm(s->ith);
  schedule_rearm(s, now + PYCTX_REARM_NS);
  PyErr_SetObject((PyObject *)Py_TYPE(inst), inst);
  Py_DECREF(inst);
  return -1;
}

/* The handlers an exception raised at byte offset `at` of code may meet, in
** order: the one covering `at`, then the one covering that handler's entry
** (where its re-raise goes), and so on outward. Cleanups that only re-raise
** (they start with COPY) are followed but not listed: they cannot catch. */
static int chain(PyCodeObject *code, long at, long *out, int max) {
  int n = 0;
  PyObject *b = PyCode_GetCode(code);
  if (!b) { PyErr_Clear(); return 0; }
  for (long h = pyctx_handler_of(code, at), steps = 0; h >= 0 && n < max && steps < 64;
       h = pyctx_handler_of(code, h), steps++) {
    if (h < PyBytes_GET_SIZE(b) && (unsigned char)PyBytes_AS_STRING(b)[h] == pyctx_op_copy) continue;
    int seen = 0;
    for (int i = 0; i < n; i++) seen |= out[i] == h;
    if (seen) break;
    out[n++] = h;
  }
  Py_DECREF(b);
  return n;
}

/* Whether raising s's stop here gets past the handler that caught the last
** one: not while the frame that caught it sits where that handler would
** catch it again, as `while True: try: step() except Exception: log()`
** catches every stop raised inside step(); yes in its except clause, at its
** loop's jump, or once that frame has returned. The catcher is taken to be
** the innermost handler where it was raised (if that one was a `with`
** that let it through, the next stop, caught further out, finds the next);
** the scope's own `with` and what encloses it never count. */
static int escapes_here(ScopeObject *s, PyObject *code, int off) {
  PyObject *tb = s->delivered ? PyException_GetTraceback(s->delivered) : NULL;
  if (!tb || tb == Py_None) { Py_XDECREF(tb); return 1; }
  PyFrameObject *caught = ((PyTracebackObject *)tb)->tb_frame;
  PyCodeObject *cc = PyFrame_GetCode(caught);
  long bad[16], outer[16], now[16], catcher = -1;
  int nbad = chain(cc, ((PyTracebackObject *)tb)->tb_lasti, bad, 16), nout = 0;
  if (s->active->frame == (const void *)caught && s->enter_lasti >= 0)
    nout = chain(cc, s->enter_lasti + 2, outer, 16);  /* under the scope's with */
  for (int i = 0; i < nbad && catcher < 0; i++) {
    int enclosing = 0;
    for (int j = 0; j < nout; j++) enclosing |= bad[i] == outer[j];
    if (!enclosing) catcher = bad[i];
  }
  int escapes = 1;
  PyFrameObject *f = catcher >= 0 ? PyEval_GetFrame() : NULL;
  Py_XINCREF(f);
  for (int top = 1; f; top = 0) {
    if (f == caught) {
      long at = top && code == (PyObject *)cc ? off : PyFrame_GetLasti(f);
      int n = chain(cc, at, now, 16);
      for (int i = 0; i < n; i++) escapes &= now[i] != catcher;
      Py_DECREF(f);
      break;
    }
    PyFrameObject *b = PyFrame_GetBack(f);
    Py_DECREF(f);
    f = b;
  }
  Py_DECREF(cc);
  Py_DECREF(tb);
  return escapes;
}

/* Whether this thread runs a context manager's __enter__ or __exit__ (or
** the generator of a contextlib.contextmanager they drive): a stop raised
** there would skip a release or leak an acquire; it waits for the next
** place out of them. */
static int in_cm_method(void) {
  PyFrameObject *f = PyEval_GetFrame();
  Py_XINCREF(f);
  int found = 0;
  while (f && !found) {
    PyCodeObject *code = PyFrame_GetCode(f);
    const char *name = PyUnicode_AsUTF8(code->co_name);
    found = name && name[0] == '_' && (!strcmp(name, "__exit__") || !strcmp(name, "__enter__") ||
                                       !strcmp(name, "__aexit__") || !strcmp(name, "__aenter__"));
    Py_DECREF(code);
    PyFrameObject *b = PyFrame_GetBack(f);
    Py_DECREF(f);
    f = b;
  }
  Py_XDECREF(f);
  if (!found) PyErr_Clear();
  return found;
}

int pyctx_try_raise(ctxstate *st, ithread_t *ith, int mode, PyObject *code, int off) {
  int later;
  ScopeObject *s = due_scope(ith, &later);
  if (!s) {
    if (later)  /* poll until its generator runs again (or it exits) */
      for (ScopeObject *g = ith->top; g; g = g->outer)
        if (g->istate == IS_ACTIVE && ctx_done(g->active->base.c) == 1) {
          schedule_rearm(g, ctx_now() + PYCTX_REARM_NS);
          break;
        }
    return 0;
  }
  if (shielded(ith)) return 0;  /* the shield's exit raises it */
  if (mode == PYCTX_RAISE_EVENT && in_cm_method()) return 1;
  int64_t now = ctx_now();
  int chase = 0;
  if (mode != PYCTX_RAISE_NOW && s->raised_at) {
    int64_t soft = s->raised_at + PYCTX_REARM_NS, hard = soft + PYCTX_REARM_NS;
    int esc = -1;
    /* the last stop was raised where it was caught again: raise this one as
    ** soon as the thread is out of that handler's reach (its except clause) */
    if (s->chase && (esc = escapes_here(s, code, off))) {
      chase = 1;  /* keep chasing: an outer handler that swallows it is next */
      goto raise;
    }
    if (now < soft) {
      schedule_rearm(s, soft);
      return s->chase;
    }
    if (esc < 0) esc = escapes_here(s, code, off);
    /* in a period, an instruction out of reach is preferred; a wait cannot
    ** pick its place, nor can anything after twice the period */
    if (!esc && mode == PYCTX_RAISE_EVENT && now < hard) {
      schedule_rearm(s, hard);
      return 1;
    }
    chase = !esc;
  }
raise:
  s->chase = chase;
  if (raise_stop(st, s, now) < 0 && chase) {
    pyctx_arm(st, ith);
    ith->next_safe = 0;  /* the next instruction handles this one */
  }
  return -1;
}

/* ---- the callbacks: a scope's context ended, or its re-raise is due ---- */

static void arm_for(ScopeObject *s) {
  if (s->istate != IS_ACTIVE || !s->ith || s->fork_gen != atomic_load(&g_fork_gen)) return;
  if (!pyctx_ith_alive(s->ith)) return;
  ctxstate *st = pyctx_state_of(Py_TYPE(s));
  if (!st) { PyErr_Clear(); return; }
  pyctx_arm(st, s->ith);
}

static void interrupt_fn(void *arg) { arm_for(arg); }
static void rearm_fn(void *arg) { arm_for(arg); }

/* The executor of a scope's callbacks: signals the main thread at once from
** whichever thread ended the context (the timer thread included: no GIL is
** needed), then queues the callback for the stopper thread, which arms
** delivery with the GIL. */
static void wake_submit(ctx_executor_t *ex, ctx_after_t *a) {
  ScopeObject *s = (ScopeObject *)((char *)ex - offsetof(ScopeObject, wake));
  if (s->wake_main && s->fork_gen == atomic_load(&g_fork_gen)) pyctx_wake_main();
  pyctx_internal_dispatcher.submit(&pyctx_internal_dispatcher, a);
}

/* ---- scopes' interrupt duty ---- */

int pyctx_interrupt_enter(ctxstate *st, ScopeObject *s) {
  ithread_t *ith = get_or_make_ith();
  if (!ith) return -1;
  if (pyctx_ensure_dispatcher(st, PYCTX_Q_INTERNAL) < 0 ||
      (ith->is_main && pyctx_install_wake(st) < 0)) {
    release_ith(ith);
    return -1;
  }
  s->ith = ith;
  s->outer = ith->top;
  s->istate = IS_ACTIVE;
  s->raised_at = 0;
  s->fork_gen = atomic_load(&g_fork_gen);
  s->wake.submit = wake_submit;
  s->wake_main = ith->is_main;
  ith->top = s;
  Py_INCREF(s);  /* the thread's list holds it until exit */
  Py_INCREF(s);  /* the callback's argument */
  int rc = ctx_after_func(s->active->base.c, interrupt_fn, s, pyctx_release, &s->wake,
                          &s->after);
  if (rc) {
    ith->top = s->outer;
    s->istate = IS_EXITED;
    s->ith = NULL;
    s->outer = NULL;
    Py_DECREF(s);
    Py_DECREF(s);
    release_ith(ith);
    return pyctx_check_rc(rc);
  }
  int64_t d;
  if (ith->is_main && ctx_deadline(s->active->base.c, &d) == 1) s->timer = pyctx_timer_arm(d);
  return 0;
}

/* Takes s off its thread's list and cancels what it arranged. */
static void unlink_scope(ScopeObject *s) {
  ithread_t *ith = s->ith;
  s->istate = IS_EXITED;
  Py_CLEAR(s->delivered);
  pyctx_timer_disarm(s->timer);
  s->timer = NULL;
  stop_rearm(s);
  if (s->after) {
    ctx_after_stop(s->after);
    ctx_after_free(s->after);
    s->after = NULL;
  }
  if (ith->top == s) {
    ith->top = s->outer;
  } else {
    for (ScopeObject *k = ith->top; k; k = k->outer)
      if (k->outer == s) { k->outer = s->outer; break; }
  }
  s->outer = NULL;
  s->ith = NULL;
}

int pyctx_interrupt_exit(ctxstate *st, ScopeObject *s, PyObject *passing) {
  ithread_t *ith = s->ith;
  unlink_scope(s);
  int rc = 0;
  if (ith == pyctx_ith() && !ith->dead) {
    if (!passing) {
      /* the block was left normally: an enclosing scope that ended meanwhile
      ** had its stop swallowed in here; it must still get out */
      rc = pyctx_try_raise(st, ith, PYCTX_RAISE_NOW, NULL, 0);
    } else if (pyctx_stop_pending(ith)) {
      pyctx_arm(st, ith);  /* raised soon if what passes is caught */
      ith->next_safe = 0;  /* not while it passes */
    }
    if (!ith->top && !pyctx_stop_pending(ith)) pyctx_disarm(ith);
    release_ith(ith);
  }
  Py_DECREF(s);  /* the list's reference; the caller still holds one */
  return rc;
}

void pyctx_interrupt_detach(ScopeObject *s) {
  ithread_t *ith = s->ith;
  unlink_scope(s);
  if (ith == pyctx_ith()) {
    if (!ith->top && !pyctx_stop_pending(ith)) pyctx_disarm(ith);
    release_ith(ith);
  }
  Py_DECREF(s);  /* the list's reference */
}

void pyctx_interrupt_dealloc(ScopeObject *s) {
  if (s->ith) unlink_scope(s);  /* unreachable while listed: kept for safety */
  Py_CLEAR(s->delivered);
  pyctx_timer_disarm(s->timer);
  s->timer = NULL;
  stop_rearm(s);
  if (s->after) {
    ctx_after_free(s->after);
    s->after = NULL;
  }
}

/* ---- waits ---- */

int pyctx_interrupt_poll(ctxstate *st, ctx_t ***cs, size_t *n, int64_t *due) {
  ithread_t *ith = pyctx_ith();
  *cs = NULL;
  *n = 0;
  *due = CTX_FOREVER;
  if (!ith || !ith->top) return 0;
  size_t count = 0;
  for (ScopeObject *s = ith->top; s; s = s->outer) {
    if (s->istate != IS_ACTIVE) continue;
    ctx_expire(s->active->base.c);  /* the timer thread may be late */
    count++;
  }
  int r = pyctx_try_raise(st, ith, PYCTX_RAISE_WAIT, NULL, 0);
  if (r < 0) return -1;
  if (r == 1) pyctx_arm(st, ith);  /* raised at an instruction out of the handler's reach */
  int shield = shielded(ith);
  if (shield || !count) return 0;
  ctx_t **arr = PyMem_Malloc(count * sizeof *arr);
  if (!arr) { PyErr_NoMemory(); return -1; }
  for (ScopeObject *s = ith->top; s; s = s->outer) {
    if (s->istate != IS_ACTIVE || !scope_runs_here(s)) continue;
    if (ctx_done(s->active->base.c) == 1) {
      if (s->raised_at && s->raised_at + PYCTX_REARM_NS < *due)
        *due = s->raised_at + PYCTX_REARM_NS;
    } else {
      arr[(*n)++] = ctx_ref(s->active->base.c);
    }
  }
  if (*n) *cs = arr;
  else PyMem_Free(arr);
  return 0;
}

/* After a signal (the wake signal, or a Python handler that canceled a
** context): raises the due stop now when the interrupted frame sits in a
** call (time.sleep then fails at once), else arms delivery at the next
** instruction: raising at an eval-breaker check would escape the handlers
** there (gh-108214, gh-139622). */
static PyObject *check_from(ctxstate *st, PyFrameObject *f) {
  ithread_t *ith = pyctx_ith();
  if (!ith) Py_RETURN_NONE;
  for (ScopeObject *s = ith->top; s; s = s->outer)
    if (s->istate == IS_ACTIVE) ctx_expire(s->active->base.c);  /* timer thread late */
  if (pyctx_at_eval_breaker(f) || in_cm_method()) {
    if (pyctx_stop_pending(ith)) pyctx_arm(st, ith);
    Py_RETURN_NONE;
  }
  int r = pyctx_try_raise(st, ith, PYCTX_RAISE_WAIT, NULL, 0);
  if (r < 0) return NULL;
  if (r == 1) pyctx_arm(st, ith);
  Py_RETURN_NONE;
}

/* _wake(signum, frame): the wake signal's handler. */
PyObject *pyctx_wake(PyObject *mod, PyObject *const *a, Py_ssize_t n) {
  PyFrameObject *f = n >= 2 && PyFrame_Check(a[1]) ? (PyFrameObject *)a[1] : NULL;
  return check_from(PyModule_GetState(mod), f);
}

/* _interrupt_check(frame=None): for Python signal handlers; the interrupted
** frame is the handler's caller by default. */
PyObject *pyctx_interrupt_check(PyObject *mod, PyObject *const *a, Py_ssize_t n) {
  PyFrameObject *f = NULL;
  if (n >= 1 && a[0] != Py_None) {
    if (!PyFrame_Check(a[0])) {
      PyErr_SetString(PyExc_TypeError, "_interrupt_check(frame=None) takes a frame");
      return NULL;
    }
    f = (PyFrameObject *)Py_NewRef(a[0]);
  } else if (PyEval_GetFrame()) {
    f = PyFrame_GetBack(PyEval_GetFrame());
  }
  PyObject *r = check_from(PyModule_GetState(mod), f);
  Py_XDECREF(f);
  return r;
}

/* ---- fork ---- */

void pyctx_interrupt_fork_child(void) {
  /* thread ids are reused in the child: the other threads' scopes must never
  ** fire there, nor their kernel timers (not inherited) be deleted by id */
  ithread_t *me = pyctx_ith();
  atomic_fetch_add(&g_fork_gen, 1);
  unsigned gen = atomic_load(&g_fork_gen);
  for (ithread_t *i = g_all; i; i = i->next_all) {
    for (ScopeObject *s = i->top; s; s = s->outer) {
      pyctx_timer_forget(s->timer);
      s->timer = NULL;
      if (i == me) {
        s->fork_gen = gen;
        s->wake_main = 1;  /* the forking thread is the child's main thread */
      }
    }
    if (i != me) {
      i->dead = 1;
      i->tstate = NULL;  /* gone with its thread: disarm touches none */
      pyctx_disarm(i);
    }
  }
  if (me) me->is_main = 1;
}

/* ---- shields ---- */

typedef struct { PyObject_HEAD PyObject *weakreflist; } ShieldObject;

static PyObject *sh_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
  if (PyTuple_GET_SIZE(args) || (kw && PyDict_GET_SIZE(kw))) {
    PyErr_SetString(PyExc_TypeError, "shield() takes no arguments");
    return NULL;
  }
  ShieldObject *s = (ShieldObject *)tp->tp_alloc(tp, 0);
  if (s) s->weakreflist = NULL;
  return (PyObject *)s;
}

static PyObject *sh_enter(PyObject *self, PyObject *u) {
  (void)u;
  ithread_t *ith = get_or_make_ith();
  if (!ith) return NULL;
  if (ith->nshields == ith->cap) {
    size_t cap = ith->cap ? 2 * ith->cap : 4;
    shield_entry_t *grown = PyMem_RawRealloc(ith->shields, cap * sizeof *grown);
    if (!grown) { release_ith(ith); return PyErr_NoMemory(); }
    ith->shields = grown;
    ith->cap = cap;
  }
  PyFrameObject *f = PyEval_GetFrame();
  int hide;  /* a generator's or coroutine's shield covers only its own steps */
  PyObject *owner = pyctx_frame_owner(f, 1, &hide);
  ith->shields[ith->nshields++] = (shield_entry_t){ self, owner, f };
  Py_RETURN_NONE;
}

static int drop_entry(ithread_t *ith, const void *self) {
  for (size_t i = ith->nshields; i-- > 0;) {
    if (ith->shields[i].shield != self) continue;
    Py_XDECREF(ith->shields[i].owner);
    memmove(&ith->shields[i], &ith->shields[i + 1],
            (ith->nshields - i - 1) * sizeof *ith->shields);
    ith->nshields--;
    return 1;
  }
  return 0;
}

static PyObject *sh_exit(PyObject *self, PyObject *const *a, Py_ssize_t n) {
  ctxstate *st = pyctx_state_of(Py_TYPE(self));
  ithread_t *ith = pyctx_ith();
  if (!ith || !drop_entry(ith, self)) {
    /* a generator's shield closed on another thread: find its entry there */
    for (ithread_t *i = g_all; i; i = i->next_all)
      if (i != ith && drop_entry(i, self)) break;
    Py_RETURN_FALSE;
  }
  int passing = n >= 2 && a[1] != Py_None;
  if (!ith->dead && !shielded(ith)) {
    if (!passing) {
      /* due meanwhile: now; still in its period: when that ends, as usual */
      int r = pyctx_try_raise(st, ith, PYCTX_RAISE_WAIT, NULL, 0);
      if (r < 0) { release_ith(ith); return NULL; }
      if (r == 1) pyctx_arm(st, ith);
    } else if (pyctx_stop_pending(ith)) {
      pyctx_arm(st, ith);  /* raised soon if what passes is caught */
      ith->next_safe = 0;  /* not while it passes */
    }
  }
  release_ith(ith);
  Py_RETURN_FALSE;
}

static void sh_dealloc(ShieldObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

static int sh_traverse(PyObject *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  return 0;
}

#define FC(f) (PyCFunction)(void (*)(void))(f)
static PyMethodDef sh_methods[] = {
  { "__enter__", FC(sh_enter), METH_NOARGS, NULL },
  { "__exit__", FC(sh_exit), METH_FASTCALL, NULL },
  { NULL, NULL, 0, NULL } };

static PyMemberDef sh_members[] = {
  { "__weaklistoffset__", T_PYSSIZET, offsetof(ShieldObject, weakreflist), READONLY, NULL },
  { NULL, 0, 0, 0, NULL } };

static PyType_Slot sh_slots[] = {
  { Py_tp_new, sh_new },
  { Py_tp_methods, sh_methods },
  { Py_tp_members, sh_members },
  { Py_tp_traverse, sh_traverse },
  { Py_tp_dealloc, sh_dealloc },
  { Py_tp_doc, "shield(): no interrupt is raised inside; see ctx.shield." },
  { 0, NULL } };

PyType_Spec pyctx_shield_spec = { "ctx.Shield", sizeof(ShieldObject), 0,
  Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE, sh_slots };
