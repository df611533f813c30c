/* pyctx.h — shared declarations of the ctx._ctx extension: module state,
** object layouts and the functions each source file offers the others. */
#ifndef PYCTX_H
#define PYCTX_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include "ctx.h"

typedef struct {
  /* the C base types (type checks use them) */
  PyTypeObject *Context, *ScopeContext, *Scope, *Shield, *Cancel, *Stop;
  /* what C instantiates: the Python subclasses registered by ctx/_types.py
  ** (they add the asyncio and decorator methods), the bases until then */
  PyTypeObject *new_Context, *new_ScopeContext, *new_Scope;
  PyObject *ContextError, *Canceled, *DeadlineExceeded;
  PyObject *msg_canceled, *msg_deadline;
  PyObject *current_var;        /* contextvars.ContextVar('ctx.current') */
  PyObject *background, *todo;  /* the two root Context objects */
  PyObject *timedelta, *datetime;
  PyObject *dispatch_loop;      /* the module's _dispatch_loop function */
  PyObject *wake;               /* the module's _wake function (a signal handler) */
  PyObject *on_instruction, *on_start;  /* sys.monitoring callbacks (3.12+) */
} ctxstate;

typedef struct {
  PyObject_HEAD
  ctx_t *c;
  PyObject *err;         /* cached c.err() instance, NULL until done */
  PyObject *weakreflist;
} CtxObject;

/* The Context bound by a scope, and the value of ctx.current while inside it:
** a record of the scope chain. A scope entered by a generator's own frame is
** the generator's: it is current (and interrupts) only while the generator
** runs, so a suspended generator never leaves its scope to its caller. */
typedef struct {
  CtxObject base;
  PyObject *prev;        /* ctx.current's value when entered; NULL once exited */
  PyObject *owner;       /* weakref to the generator/coroutine whose frame entered it */
  const void *frame;     /* the entering frame: compared, never dereferenced */
  int hide;              /* a generator's (not a coroutine's): hidden while suspended */
  int chain_hide;        /* this record or one below it hides */
  int exited;
} ScopeCtxObject;

typedef struct ithread ithread_t;

/* A scope: the manager returned by ctx.scope/timeout/deadline. */
typedef struct ScopeObject {
  PyObject_HEAD
  int kind;              /* SCOPE_CANCEL, SCOPE_TIMEOUT, SCOPE_DEADLINE */
  int interrupt;
  int64_t ns;            /* timeout ns or monotonic deadline */
  PyObject *parent;      /* Context or NULL (current() at enter) */
  ScopeCtxObject *active;  /* the ScopeContext while inside, else NULL */
  PyObject *token;       /* ContextVar token while inside */
  PyObject *aux;         /* scratch slot for the Python layer (asyncio) */
  /* interrupt bookkeeping, guarded by the GIL (interrupt.c) */
  int istate;            /* IS_ACTIVE or IS_EXITED */
  int64_t raised_at;     /* when its stop was last raised (ctx_now), 0 never */
  ithread_t *ith;        /* the thread it interrupts */
  struct ScopeObject *outer;  /* the scope entered before it on that thread */
  ctx_after_t *after;
  ctx_executor_t wake;   /* signals the main thread as its context ends */
  unsigned fork_gen;     /* the fork generation it was entered in */
  void *timer;           /* a POSIX timer (Linux main thread, deadline) or NULL */
  ctx_t *rearm;          /* when its caught stop is raised again */
  ctx_after_t *rearm_after;
  int64_t rearm_at;
  PyObject *delivered;   /* the last stop raised for it (where it was caught) */
  int chase;             /* that one was raised where it was caught again */
  long enter_lasti;      /* where its frame entered it (its `with`), -1 unknown */
  int wake_main;         /* it interrupts the main thread: signal it */
  PyObject *weakreflist;
} ScopeObject;

enum { SCOPE_CANCEL, SCOPE_TIMEOUT, SCOPE_DEADLINE };
enum { IS_ACTIVE, IS_EXITED };

extern PyModuleDef pyctx_module;

/* ---- args.c: argument conversion, one place for every function ---- */
ctxstate *pyctx_state_of(PyTypeObject *tp);
int pyctx_check_rc(int rc);           /* CTX_E* -> Python exception, -1 */
/* Binds positional and keyword arguments to names[0..want) as a def would:
** the first npos may be positional, the rest are keyword-only; the first
** `required` must be given; missing optional ones stay NULL. */
int pyctx_bind(const char *fname, const char *const *names, Py_ssize_t want,
               Py_ssize_t npos, Py_ssize_t required, PyObject *const *a, Py_ssize_t n,
               PyObject *kwn, PyObject **out);
/* TypeError "<what> must be a ctx.Context" unless o is one */
int pyctx_context_arg(ctxstate *st, PyObject *o, const char *what, ctx_t **out);
int pyctx_parent(ctxstate *st, PyObject *o, ctx_t **out);  /* what = "parent" */
/* o, or ctx.current() for NULL/None: a new reference, NULL with TypeError */
PyObject *pyctx_context_or_current(ctxstate *st, PyObject *o);
int pyctx_seconds(ctxstate *st, PyObject *o, int64_t *ns);
int pyctx_when(ctxstate *st, PyObject *o, int64_t *mono);
int pyctx_cause_arg(PyObject *cause);  /* TypeError unless exception or None */

/* ---- module.c ---- */
PyObject *pyctx_wrap(ctxstate *st, PyTypeObject *tp, ctx_t *c);  /* steals c */
/* cancel(cause=None) of cancel functions and scopes: None records the plain error */
PyObject *pyctx_cancel_with(ctx_t *c, PyObject *cause);

/* ---- dispatch.c: handing work between threads ---- */
void pyctx_release(void *obj);        /* Py_DECREF from any thread */
/* user after_func callbacks run on one dispatcher thread, the library's own
** (scope stops, async with, wait_async) on another */
enum { PYCTX_Q_USER, PYCTX_Q_INTERNAL };
extern ctx_executor_t pyctx_dispatcher, pyctx_internal_dispatcher;
int pyctx_ensure_dispatcher(ctxstate *st, int which);
unsigned long pyctx_main_ident(void);
void pyctx_set_main_ident(unsigned long id);
PyObject *pyctx_dispatch_loop(PyObject *mod, PyObject *which);
PyObject *pyctx_shutdown(PyObject *mod, PyObject *unused);
PyObject *pyctx_after_fork_child(PyObject *mod, PyObject *unused);

/* ---- context.c ---- */
extern PyType_Spec pyctx_context_spec, pyctx_scopectx_spec;
PyObject *pyctx_err_instance(ctxstate *st, CtxObject *self);  /* new ref or None */
PyObject *pyctx_new_err(ctxstate *st, ctx_t *c);  /* fresh instance with __cause__ */
/* The one wait of the binding (ctx.sleep, c.wait, run_process), on the
** core's ctx_wait_any (ctx_proc_wait with a child): until c is done, one of
** fds is readable (*which: its index), proc exits, timeout_ns passes
** (negative: no limit), or a stop of this thread's interrupting scopes is
** due (-1, the stop raised; so is a signal handler's exception). */
enum { PYCTX_W_TIMEOUT, PYCTX_W_DONE, PYCTX_W_FD, PYCTX_W_EXITED };
int pyctx_wait_any(ctxstate *st, ctx_t *c, const int *fds, size_t nfd, ctx_proc_t *proc,
                   int64_t timeout_ns, size_t *which);
/* the same for c alone: 1 done, 0 timed out, -1 with an exception */
int pyctx_wait(ctxstate *st, ctx_t *c, int64_t timeout_ns);

/* ---- scope.c ---- */
extern PyType_Spec pyctx_scope_spec;
PyObject *pyctx_current(ctxstate *st);  /* new reference */
PyObject *pyctx_make_scope(ctxstate *st, int kind, int64_t ns, PyObject *parent,
                           int interrupt);
/* The owner of a scope or shield entered by frame f: a weakref to its
** generator (or coroutine, if want_coro) when f is one's own frame, else
** NULL; *hide for a generator, whose scope its caller must not see. */
PyObject *pyctx_frame_owner(PyFrameObject *f, int want_coro, int *hide);
/* 1 if the generator or coroutine behind a weakref is executing now, 2 if it
** is in the middle of a step (executing, or awaiting inside it), 0 if not */
int pyctx_owner_state(PyObject *owner_ref);

/* ---- interrupt.c: interrupt=True scopes and shields, per thread ---- */

/* The period after which a stop that was caught is raised again while its
** thread is still inside the ended block (level-triggered, as Lua's ctx.run). */
#define PYCTX_REARM_NS (20 * 1000000LL)

typedef struct { const void *shield; PyObject *owner; const void *frame; } shield_entry_t;

/* Per thread with interrupting scopes or shields; all fields but `dead` are
** guarded by the GIL. Freed by its own thread once empty. */
struct ithread {
  unsigned long tid;          /* PyThread ident */
  PyThreadState *tstate;      /* its thread state (validated before use) */
  int is_main;
  volatile int dead;          /* its thread exited, or it was forked away */
  ScopeObject *top;           /* innermost interrupting scope */
  shield_entry_t *shields;    /* active shields, innermost last */
  size_t nshields, cap;
  /* instruction-level delivery (deliver.c) */
  int armed;
  Py_tracefunc trace_prev;    /* 3.11: the tracer we chain to while armed */
  PyObject *trace_prev_obj;
  PyObject *armed_codes;      /* 3.12+: code objects given local events */
  int next_safe;              /* the next instruction event is a place to raise */
  struct ithread *next_all;   /* every ithread, for fork() */
};

int pyctx_interrupt_enter(ctxstate *st, ScopeObject *s);
/* leaves s's interrupt duty; on a normal exit (passing NULL), raises the stop
** of an enclosing scope that ended meanwhile: -1 with it set */
int pyctx_interrupt_exit(ctxstate *st, ScopeObject *s, PyObject *passing);
void pyctx_interrupt_dealloc(ScopeObject *s);
void pyctx_interrupt_detach(ScopeObject *s);  /* leaves its duty, raises nothing */
/* For waits: -1 with the stop set if one is due now; else 0, with the
** contexts of this thread's interrupting scopes that may still end (new
** references in a PyMem array, *cs NULL when none) and when the next stop
** falls due (CTX_FOREVER if none). */
int pyctx_interrupt_poll(ctxstate *st, ctx_t ***cs, size_t *n, int64_t *due);
void pyctx_interrupt_fork_child(void);
ithread_t *pyctx_ith(void);   /* this thread's, or NULL */
/* Raises this thread's due stop: -1 with it set; 0 if none is due; 1 if
** the caller (an instruction event) is to stay armed: the stop waits for a
** place out of the reach of the handler that caught the last one.
** A caught stop is raised again PYCTX_REARM_NS after the last: from an
** instruction event, preferably out of that handler's reach (within a
** second period); from a wait, where it is; and if it was caught again
** there, at once when the thread leaves that handler's try (its except
** clause). code/off: the instruction about to run, from an event. */
enum { PYCTX_RAISE_EVENT, PYCTX_RAISE_WAIT, PYCTX_RAISE_NOW /* exits: at once */ };
int pyctx_try_raise(ctxstate *st, ithread_t *ith, int mode, PyObject *code, int off);
int pyctx_stop_pending(ithread_t *ith);  /* a scope of ith has ended */
/* the thread behind ith still runs (its thread state is live) */
int pyctx_ith_alive(ithread_t *ith);
extern PyType_Spec pyctx_shield_spec;
PyObject *pyctx_interrupt_check(PyObject *mod, PyObject *const *a, Py_ssize_t n);

/* ---- deliver.c: raising a stop where CPython handles it right ----
** Not from the eval breaker (an asynchronous exception there escapes its
** handlers: gh-108214, gh-139622) but at the next instruction event: a line
** or call trace event on 3.11, a sys.monitoring INSTRUCTION or PY_START event
** on 3.12+. */
int pyctx_deliver_init(ctxstate *st);
extern int pyctx_op_copy;  /* the COPY opcode: cleanup handlers start with it */
/* the handler (byte offset) covering byte offset off of code, -1 for none */
long pyctx_handler_of(PyCodeObject *code, long off);
void pyctx_arm(ctxstate *st, ithread_t *ith);    /* any thread, GIL held */
void pyctx_disarm(ithread_t *ith);
/* whether f sits at an eval-breaker check (a backward jump, a resume), where
** raising is unsafe, rather than inside a call */
int pyctx_at_eval_breaker(PyFrameObject *f);
void pyctx_deliver_shutdown(void);
PyObject *pyctx_wake(PyObject *mod, PyObject *const *a, Py_ssize_t n);
PyObject *pyctx_on_instruction(PyObject *mod, PyObject *const *a, Py_ssize_t n);
PyObject *pyctx_on_start(PyObject *mod, PyObject *const *a, Py_ssize_t n);

/* ---- wake.c: the signal that wakes the main thread (platform) ---- */
int pyctx_install_wake(ctxstate *st);  /* main thread only */
int pyctx_wake_sig(void);              /* 0 when not installed */
void pyctx_wake_main(void);            /* from any thread, no GIL needed */
/* a kernel timer that signals this (main) thread at a deadline, where the
** platform has one (Linux), else NULL: the timer thread's callback signals */
void *pyctx_timer_arm(int64_t deadline);
void pyctx_timer_disarm(void *timer);
void pyctx_timer_forget(void *timer);  /* after fork: the kernel dropped it */
const char *pyctx_wake_path(void);     /* "linux-timer" or "posix-signal" */

/* runner.c: the watchdog of `python -m ctx` and the children run_process
** started (a hard exit kills their groups) */
int pyctx_runner_init(PyObject *mod);  /* adds its functions to the module */
/* proc.c: adds ctx._Proc, run_process's hold on a child */
int pyctx_proc_init(PyObject *mod);
int pyctx_track_child(int pid, int group);
void pyctx_untrack_child(int pid);

#endif
