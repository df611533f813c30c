/* pyctx.h — shared declarations of the ctx._ctx extension: module state,
** object layouts and the functions each source file offers the others. */
#ifndef PYCTX_H
#define PYCTX_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include "ctx.h"

typedef struct {
  PyTypeObject *Context, *ScopeContext, *Scope, *Cancel, *Stop, *Interrupt;
  PyObject *ContextError, *Canceled, *DeadlineExceeded;
  PyObject *msg_canceled, *msg_deadline;
  PyObject *current_var;        /* contextvars.ContextVar('ctx.current') */
  PyObject *background, *todo;  /* the two root Context objects */
  PyObject *timedelta, *datetime;
  PyObject *dispatch_loop;      /* the module's _dispatch_loop function */
  PyObject *wake;               /* the module's _wake function (a signal handler) */
} ctxstate;

typedef struct {
  PyObject_HEAD
  ctx_t *c;
  PyObject *err;         /* cached c.err() instance, NULL until done */
  PyObject *weakreflist;
} CtxObject;

typedef struct ithread ithread_t;

/* A scope: the manager returned by ctx.scope/timeout/deadline. */
typedef struct ScopeObject {
  PyObject_HEAD
  int kind;              /* SCOPE_CANCEL, SCOPE_TIMEOUT, SCOPE_DEADLINE */
  int interrupt;
  int64_t ns;            /* timeout ns or monotonic deadline */
  PyObject *parent;      /* Context or NULL (current() at enter) */
  CtxObject *active;     /* the ScopeContext while inside, else NULL */
  PyObject *token;       /* ContextVar token while inside */
  PyObject *aux;         /* scratch slot for the Python layer (asyncio) */
  /* interrupt bookkeeping, guarded by the GIL */
  int istate;            /* IS_ACTIVE, IS_FIRED, IS_EXITED */
  int depth;             /* 1 for the outermost interrupting scope of a thread */
  int delivered_depth;   /* innermost scope depth when our stop was raised */
  ithread_t *ith;
  struct ScopeObject *outer;
  ctx_after_t *after;
  void *timer;           /* a POSIX timer (main thread, deadline) or NULL */
  PyObject *delivered;   /* the last stop instance raised for this scope */
  PyObject *weakreflist;
} ScopeObject;

enum { SCOPE_CANCEL, SCOPE_TIMEOUT, SCOPE_DEADLINE };
enum { IS_ACTIVE, IS_FIRED, IS_EXITED };

/* Per thread with interrupting scopes: freed when its last scope exits. */
struct ithread {
  unsigned long tid;
  ScopeObject *top;      /* innermost interrupting scope (borrowed) */
  ScopeObject *pending;  /* scope whose async exception is set, not yet raised */
};

extern PyModuleDef pyctx_module;

/* module.c (and dispatch.c) */
ctxstate *pyctx_state_of(PyTypeObject *tp);
void pyctx_release(void *obj);        /* Py_DECREF from any thread */
/* user after_func callbacks run on one dispatcher thread, the library's own
** (scope stops, async with, wait_async) on another */
enum { PYCTX_Q_USER, PYCTX_Q_INTERNAL };
extern ctx_executor_t pyctx_dispatcher, pyctx_internal_dispatcher;
extern ctx_executor_t pyctx_main_executor;
int pyctx_ensure_dispatcher(ctxstate *st, int which);
int pyctx_install_wake(ctxstate *st);  /* main thread only */
int pyctx_wake_sig(void);              /* 0 when not installed */
int pyctx_check_rc(int rc);           /* CTX_E* -> Python exception, -1 */
PyObject *pyctx_wrap(ctxstate *st, PyTypeObject *tp, ctx_t *c);  /* steals c */
int pyctx_parent(ctxstate *st, PyObject *o, ctx_t **out);  /* TypeError if not */
int pyctx_seconds(ctxstate *st, PyObject *o, int64_t *ns);
int pyctx_when(ctxstate *st, PyObject *o, int64_t *mono);
int pyctx_cause_arg(PyObject *cause);  /* TypeError unless exception or None */
/* cancel(cause=None) of cancel functions and scopes: None records the plain error */
PyObject *pyctx_cancel_with(ctx_t *c, PyObject *cause);
unsigned long pyctx_main_ident(void);

/* dispatch.c */
void pyctx_set_main_ident(unsigned long id);
PyObject *pyctx_dispatch_loop(PyObject *mod, PyObject *which);
PyObject *pyctx_shutdown(PyObject *mod, PyObject *unused);
PyObject *pyctx_after_fork_child(PyObject *mod, PyObject *unused);
PyObject *pyctx_wake(PyObject *mod, PyObject *args);

/* context.c */
extern PyType_Spec pyctx_context_spec, pyctx_scopectx_spec;
PyObject *pyctx_err_instance(ctxstate *st, CtxObject *self);  /* new ref or None */
PyObject *pyctx_new_err(ctxstate *st, ctx_t *c);  /* fresh instance with __cause__ */
/* Waits for c (or extra_fd readable, or this thread's interrupting scopes).
** Returns 1 done, 2 extra_fd ready, 0 timed out, -1 with an exception. */
int pyctx_wait(ctxstate *st, ctx_t *c, int64_t timeout_ns, int extra_fd);

/* scope.c */
extern PyType_Spec pyctx_scope_spec, pyctx_interrupt_spec;
PyObject *pyctx_current(ctxstate *st);  /* new reference */
PyObject *pyctx_make_scope(ctxstate *st, int kind, int64_t ns, PyObject *parent,
                           int interrupt);
/* Raises the stop of an ended interrupting scope of this thread: -1 if one
** was raised, 0 if none; fills fds with the fds of still-active ones. */
PyObject *pyctx_interrupt_check(PyObject *mod, PyObject *unused);
int pyctx_interrupt_poll(ctxstate *st, int *fds, int max, int *nfds);

/* runner.c: the watchdog of `python -m ctx` and the children run_process
** started (a hard exit kills their groups) */
int pyctx_runner_init(PyObject *mod);  /* adds its functions to the module */
/* proc.c: adds ctx._Proc, run_process's hold on a child */
int pyctx_proc_init(PyObject *mod);
int pyctx_track_child(int pid, int group);
void pyctx_untrack_child(int pid);

#endif
