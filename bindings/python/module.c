/* module.c — the ctx._ctx module: state, errors, argument conversion, cancel
** and stop handles, and the Go-shaped functions. */
#include <stdlib.h>
#include <string.h>
#include "pyctx.h"
#include "docs.h"

PyObject *pyctx_wrap(ctxstate *st, PyTypeObject *tp, ctx_t *c) {
  (void)st;
  CtxObject *o = PyObject_GC_New(CtxObject, tp);
  if (!o) { ctx_unref(c); return NULL; }
  /* a ScopeContext's record fields, and a subclass's slots, start empty */
  memset((char *)o + sizeof(PyObject), 0, (size_t)tp->tp_basicsize - sizeof(PyObject));
  o->c = c;
  PyObject_GC_Track(o);
  return (PyObject *)o;
}

PyObject *pyctx_cancel_with(ctx_t *c, PyObject *cause) {
  if (pyctx_cause_arg(cause) < 0) return NULL;
  if (cause == Py_None) {
    ctx_cancel(c);
  } else {
    Py_INCREF(cause);  /* the core takes it, and releases it if c was already done */
    if (ctx_cancel_cause(c, cause, pyctx_release) == CTX_ENOMEM) return PyErr_NoMemory();
  }
  Py_RETURN_NONE;
}

/* ---- cancel functions and stop handles ---- */

/* A cancel function holds the Context object, not a reference of its own
** to the node: the node then has one owner, whose tp_traverse can visit the
** cause a cancel stored in it (ctx_visit), so `except Exception as e:
** cancel(e)` in the context's own frame makes a cycle the collector sees. */
typedef struct { PyObject_HEAD PyObject *w; int with_cause; } CancelObject;

static PyObject *cancel_call(CancelObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = { "cause", NULL };
  PyObject *cause = Py_None;
  if (self->with_cause) {
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:cancel", kwlist, &cause)) return NULL;
  } else if (!PyArg_ParseTupleAndKeywords(args, kw, ":cancel", kwlist + 1)) {
    return NULL;
  }
  return pyctx_cancel_with(((CtxObject *)self->w)->c, cause);
}

static int cancel_traverse(CancelObject *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->w);
  return 0;
}

static void cancel_dealloc(CancelObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  Py_CLEAR(self->w);
  tp->tp_free(self);
  Py_DECREF(tp);
}

static PyType_Slot cancel_slots[] = {
  { Py_tp_call, cancel_call },
  { Py_tp_traverse, cancel_traverse },
  { Py_tp_dealloc, cancel_dealloc },
  { Py_tp_doc, "cancel(): ends the context (idempotent); cancel(cause) where the cause is recorded." },
  { 0, NULL } };
static PyType_Spec cancel_spec = { "ctx.CancelFunc", sizeof(CancelObject), 0,
  Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_HAVE_GC, cancel_slots };

typedef struct { PyObject_HEAD ctx_after_t *a; } StopObject;

static PyObject *stop_call(StopObject *self, PyObject *args, PyObject *kw) {
  if (!PyArg_ParseTuple(args, ":stop") || (kw && PyDict_GET_SIZE(kw))) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "stop() takes no arguments");
    return NULL;
  }
  return PyBool_FromLong(ctx_after_stop(self->a) == 1);
}

static void stop_dealloc(StopObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  ctx_after_free(self->a);
  tp->tp_free(self);
  Py_DECREF(tp);
}

static PyType_Slot stop_slots[] = {
  { Py_tp_call, stop_call },
  { Py_tp_dealloc, stop_dealloc },
  { Py_tp_doc, "stop() -> bool: True if this call prevented the callback from running." },
  { 0, NULL } };
static PyType_Spec stop_spec = { "ctx.StopFunc", sizeof(StopObject), 0,
  Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, stop_slots };

static PyObject *pair(ctxstate *st, ctx_t *c, int with_cause) {
  PyObject *w = pyctx_wrap(st, st->new_Context, c);
  if (!w) return NULL;
  CancelObject *k = PyObject_GC_New(CancelObject, st->Cancel);
  if (!k) { Py_DECREF(w); return NULL; }
  k->w = Py_NewRef(w);
  k->with_cause = with_cause;
  PyObject_GC_Track(k);
  PyObject *t = PyTuple_Pack(2, w, (PyObject *)k);
  Py_DECREF(w);
  Py_DECREF(k);
  return t;
}

/* ---- Go-shaped functions ---- */

#define ST(mod) ((ctxstate *)PyModule_GetState(mod))

static const char *const P_PARENT[] = { "parent" };

static PyObject *f_background(PyObject *m, PyObject *u) { (void)u; return Py_NewRef(ST(m)->background); }
static PyObject *f_todo(PyObject *m, PyObject *u) { (void)u; return Py_NewRef(ST(m)->todo); }

static PyObject *f_with_cancel(PyObject *m, PyObject *const *a0, Py_ssize_t n, PyObject *kwn) {
  ctx_t *p, *c;
  PyObject *a[1];
  if (!pyctx_bind("with_cancel", P_PARENT, 1, 1, 1, a0, n, kwn, a) ||
      pyctx_parent(ST(m), a[0], &p) < 0) return NULL;
  int rc = ctx_with_cancel(p, &c);
  if (rc) return pyctx_check_rc(rc), NULL;
  return pair(ST(m), c, 0);
}

static PyObject *f_with_cancel_cause(PyObject *m, PyObject *const *a0, Py_ssize_t n,
                                     PyObject *kwn) {
  ctx_t *p, *c;
  PyObject *a[1];
  if (!pyctx_bind("with_cancel_cause", P_PARENT, 1, 1, 1, a0, n, kwn, a) ||
      pyctx_parent(ST(m), a[0], &p) < 0) return NULL;
  int rc = ctx_with_cancel(p, &c);
  if (rc) return pyctx_check_rc(rc), NULL;
  return pair(ST(m), c, 1);
}

static PyObject *deadline_common(PyObject *m, PyObject *const *a0, Py_ssize_t n,
                                 PyObject *kwn, const char *name, int is_timeout,
                                 int has_cause) {
  static const char *const p_deadline[] = { "parent", "when", "cause" };
  static const char *const p_timeout[] = { "parent", "seconds", "cause" };
  ctxstate *st = ST(m);
  ctx_t *p, *c;
  int64_t t;
  PyObject *a[3];
  Py_ssize_t want = has_cause ? 3 : 2;
  if (!pyctx_bind(name, is_timeout ? p_timeout : p_deadline, want, want, want, a0, n, kwn, a) ||
      pyctx_parent(st, a[0], &p) < 0) return NULL;
  if ((is_timeout ? pyctx_seconds(st, a[1], &t) : pyctx_when(st, a[1], &t)) < 0) return NULL;
  PyObject *cause = has_cause ? a[2] : Py_None;
  if (pyctx_cause_arg(cause) < 0) return NULL;
  int rc;
  if (cause == Py_None) {
    rc = is_timeout ? ctx_with_timeout(p, t, &c) : ctx_with_deadline(p, t, &c);
  } else {
    Py_INCREF(cause);
    rc = is_timeout ? ctx_with_timeout_cause(p, t, cause, pyctx_release, &c)
                    : ctx_with_deadline_cause(p, t, cause, pyctx_release, &c);
  }
  if (rc) {
    if (cause != Py_None) Py_DECREF(cause);  /* not taken on failure */
    return pyctx_check_rc(rc), NULL;
  }
  return pair(st, c, 0);
}

static PyObject *f_with_deadline(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return deadline_common(m, a, n, k, "with_deadline", 0, 0);
}
static PyObject *f_with_deadline_cause(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return deadline_common(m, a, n, k, "with_deadline_cause", 0, 1);
}
static PyObject *f_with_timeout(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return deadline_common(m, a, n, k, "with_timeout", 1, 0);
}
static PyObject *f_with_timeout_cause(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return deadline_common(m, a, n, k, "with_timeout_cause", 1, 1);
}

static PyObject *f_with_value(PyObject *m, PyObject *const *a0, Py_ssize_t n, PyObject *kwn) {
  static const char *const names[] = { "parent", "key", "value" };
  ctxstate *st = ST(m);
  ctx_t *p, *c;
  PyObject *a[3];
  if (!pyctx_bind("with_value", names, 3, 3, 3, a0, n, kwn, a) ||
      pyctx_parent(st, a[0], &p) < 0) return NULL;
  if (a[1] == Py_None) {
    PyErr_SetString(PyExc_TypeError, "key must not be None");
    return NULL;
  }
  if (PyObject_Hash(a[1]) == -1) return NULL;  /* unhashable: TypeError */
  Py_INCREF(a[1]);
  Py_INCREF(a[2]);
  int rc = ctx_with_value(p, a[1], a[2], pyctx_release, &c);
  if (rc) {
    Py_DECREF(a[1]);
    Py_DECREF(a[2]);
    return pyctx_check_rc(rc), NULL;
  }
  return pyctx_wrap(st, st->new_Context, c);
}

static PyObject *f_without_cancel(PyObject *m, PyObject *const *a0, Py_ssize_t n,
                                  PyObject *kwn) {
  ctx_t *p, *c;
  PyObject *a[1];
  if (!pyctx_bind("without_cancel", P_PARENT, 1, 1, 1, a0, n, kwn, a) ||
      pyctx_parent(ST(m), a[0], &p) < 0) return NULL;
  int rc = ctx_without_cancel(p, &c);
  if (rc) return pyctx_check_rc(rc), NULL;
  return pyctx_wrap(ST(m), ST(m)->new_Context, c);
}

static void call_user(void *arg) {
  PyObject *r = PyObject_CallNoArgs((PyObject *)arg);
  if (r) Py_DECREF(r);
  else PyErr_WriteUnraisable((PyObject *)arg);
}

static PyObject *after_func_on(PyObject *m, PyObject *const *a0, Py_ssize_t n,
                               PyObject *kwn, int which) {
  static const char *const names[] = { "c", "fn" };
  ctxstate *st = ST(m);
  ctx_t *c;
  PyObject *a[2];
  if (!pyctx_bind("after_func", names, 2, 2, 2, a0, n, kwn, a) ||
      pyctx_context_arg(st, a[0], "c", &c) < 0) return NULL;
  if (!PyCallable_Check(a[1])) {
    PyErr_Format(PyExc_TypeError, "fn must be callable, not %.100s", Py_TYPE(a[1])->tp_name);
    return NULL;
  }
  if (pyctx_ensure_dispatcher(st, which) < 0) return NULL;
  StopObject *s = PyObject_New(StopObject, st->Stop);
  if (!s) return NULL;
  s->a = NULL;
  Py_INCREF(a[1]);
  int rc = ctx_after_func(c, call_user, a[1], pyctx_release,
                          which == PYCTX_Q_USER ? &pyctx_dispatcher : &pyctx_internal_dispatcher,
                          &s->a);
  if (rc) {  /* not taken on failure */
    Py_DECREF(a[1]);
    Py_DECREF(s);
    return pyctx_check_rc(rc), NULL;
  }
  return (PyObject *)s;
}

static PyObject *f_after_func(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return after_func_on(m, a, n, k, PYCTX_Q_USER);
}

/* _after_func_internal(c, fn): for the library's own quick callbacks
** (async with, wait_async), on the thread user callbacks cannot hold up. */
static PyObject *f_after_func_internal(PyObject *m, PyObject *const *a, Py_ssize_t n,
                                       PyObject *k) {
  return after_func_on(m, a, n, k, PYCTX_Q_INTERNAL);
}

static PyObject *f_cause(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *kwn) {
  static const char *const names[] = { "c" };
  PyObject *c;
  ctx_t *cc;
  if (!pyctx_bind("cause", names, 1, 1, 1, a, n, kwn, &c) ||
      pyctx_context_arg(ST(m), c, "c", &cc) < 0) return NULL;
  return PyObject_CallMethod(c, "cause", NULL);
}

static PyObject *f_current(PyObject *m, PyObject *u) { (void)u; return pyctx_current(ST(m)); }

/* scope(parent=None), timeout(seconds, parent=None, *, interrupt=False),
** deadline(when, parent=None, *, interrupt=False) */
static PyObject *scope_factory(PyObject *m, PyObject *const *a0, Py_ssize_t n,
                               PyObject *kwn, int kind) {
  static const char *const p_scope[] = { "parent", "interrupt" };
  static const char *const p_timeout[] = { "seconds", "parent", "interrupt" };
  static const char *const p_deadline[] = { "when", "parent", "interrupt" };
  static const char *const fname[] = { "scope", "timeout", "deadline" };
  ctxstate *st = ST(m);
  PyObject *a[3];
  int npos = kind == SCOPE_CANCEL ? 0 : 1;
  /* scope() has no interrupt: its name is bound, then refused below */
  if (!pyctx_bind(fname[kind], kind == SCOPE_CANCEL ? p_scope : kind == SCOPE_TIMEOUT
                  ? p_timeout : p_deadline, npos + 2, npos + 1, npos, a0, n, kwn, a))
    return NULL;
  if (kind == SCOPE_CANCEL && a[1]) {
    PyErr_SetString(PyExc_TypeError, "scope() got an unexpected keyword argument 'interrupt'");
    return NULL;
  }
  PyObject *parent = a[npos] && a[npos] != Py_None ? a[npos] : NULL, *intr = a[npos + 1];
  int64_t ns = 0;
  if (kind == SCOPE_TIMEOUT && pyctx_seconds(st, a[0], &ns) < 0) return NULL;
  if (kind == SCOPE_DEADLINE && pyctx_when(st, a[0], &ns) < 0) return NULL;
  ctx_t *dummy;
  if (parent && pyctx_parent(st, parent, &dummy) < 0) return NULL;
  int it = intr ? PyObject_IsTrue(intr) : 0;
  if (it < 0) return NULL;
  return pyctx_make_scope(st, kind, ns, parent, it);
}

static PyObject *f_scope(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return scope_factory(m, a, n, k, SCOPE_CANCEL);
}
static PyObject *f_timeout(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return scope_factory(m, a, n, k, SCOPE_TIMEOUT);
}
static PyObject *f_deadline(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *k) {
  return scope_factory(m, a, n, k, SCOPE_DEADLINE);
}

/* _context_or_current(c): c, or ctx.current() for None (for the helpers). */
static PyObject *f_context_or_current(PyObject *m, PyObject *c) {
  return pyctx_context_or_current(ST(m), c);
}

/* sleep(seconds, c=None): raises c.err() if c ends first. */
static PyObject *f_sleep(PyObject *m, PyObject *const *a0, Py_ssize_t n, PyObject *kwn) {
  static const char *const names[] = { "seconds", "c" };
  ctxstate *st = ST(m);
  PyObject *a[2], *c;
  int64_t ns;
  if (!pyctx_bind("sleep", names, 2, 2, 1, a0, n, kwn, a) ||
      pyctx_seconds(st, a[0], &ns) < 0 || !(c = pyctx_context_or_current(st, a[1])))
    return NULL;
  int r = pyctx_wait(st, ((CtxObject *)c)->c, ns < 0 ? 0 : ns);
  PyObject *res = NULL;
  if (r == 1) res = PyObject_CallMethod(c, "check", NULL);
  else if (r >= 0) res = Py_NewRef(Py_None);
  Py_DECREF(c);
  return res;
}

static PyObject *f_num_children(PyObject *m, PyObject *c) {
  ctx_t *p;
  if (pyctx_parent(ST(m), c, &p) < 0) return NULL;
  return PyLong_FromSize_t(ctx_num_children(p));
}

/* _register_types(Context, ScopeContext, Scope): the Python subclasses
** (ctx/_types.py) that add the asyncio and decorator methods; from then on
** every object C makes is of these types. */
static PyObject *f_register_types(PyObject *m, PyObject *const *a, Py_ssize_t n) {
  ctxstate *st = ST(m);
  PyTypeObject *bases[3] = { st->Context, st->ScopeContext, st->Scope };
  if (n != 3) {
    PyErr_SetString(PyExc_TypeError, "_register_types takes 3 types");
    return NULL;
  }
  for (int i = 0; i < 3; i++) {
    if (!PyType_Check(a[i]) || !PyType_IsSubtype((PyTypeObject *)a[i], bases[i]) ||
        ((PyTypeObject *)a[i])->tp_basicsize != bases[i]->tp_basicsize) {
      PyErr_Format(PyExc_TypeError, "_register_types: argument %d must be a slot-less subclass of %s",
                   i + 1, bases[i]->tp_name);
      return NULL;
    }
  }
  Py_SETREF(st->new_Context, (PyTypeObject *)Py_NewRef(a[0]));
  Py_SETREF(st->new_ScopeContext, (PyTypeObject *)Py_NewRef(a[1]));
  Py_SETREF(st->new_Scope, (PyTypeObject *)Py_NewRef(a[2]));
  PyObject *bg = pyctx_wrap(st, st->new_Context, ctx_background());
  PyObject *todo = bg ? pyctx_wrap(st, st->new_Context, ctx_todo()) : NULL;
  if (!todo) { Py_XDECREF(bg); return NULL; }
  Py_SETREF(st->background, bg);
  Py_SETREF(st->todo, todo);
  Py_RETURN_NONE;
}

/* _wake_path(): how the main thread is woken ("linux-timer", "posix-signal"). */
static PyObject *f_wake_path(PyObject *m, PyObject *u) {
  (void)m; (void)u;
  return PyUnicode_FromString(pyctx_wake_path());
}

#define FC(f) (PyCFunction)(void (*)(void))(f)
static PyMethodDef mod_methods[] = {
  { "background", f_background, METH_NOARGS,
    DOC_BACKGROUND },
  { "todo", f_todo, METH_NOARGS,
    DOC_TODO },
  { "with_cancel", FC(f_with_cancel), METH_FASTCALL | METH_KEYWORDS,
    DOC_WITH_CANCEL },
  { "with_cancel_cause", FC(f_with_cancel_cause), METH_FASTCALL | METH_KEYWORDS,
    DOC_WITH_CANCEL_CAUSE },
  { "with_deadline", FC(f_with_deadline), METH_FASTCALL | METH_KEYWORDS,
    DOC_WITH_DEADLINE },
  { "with_deadline_cause", FC(f_with_deadline_cause), METH_FASTCALL | METH_KEYWORDS,
    DOC_WITH_DEADLINE_CAUSE },
  { "with_timeout", FC(f_with_timeout), METH_FASTCALL | METH_KEYWORDS,
    DOC_WITH_TIMEOUT },
  { "with_timeout_cause", FC(f_with_timeout_cause), METH_FASTCALL | METH_KEYWORDS,
    DOC_WITH_TIMEOUT_CAUSE },
  { "with_value", FC(f_with_value), METH_FASTCALL | METH_KEYWORDS,
    DOC_WITH_VALUE },
  { "without_cancel", FC(f_without_cancel), METH_FASTCALL | METH_KEYWORDS,
    DOC_WITHOUT_CANCEL },
  { "after_func", FC(f_after_func), METH_FASTCALL | METH_KEYWORDS,
    DOC_AFTER_FUNC },
  { "cause", FC(f_cause), METH_FASTCALL | METH_KEYWORDS,
    DOC_CAUSE },
  { "current", f_current, METH_NOARGS,
    DOC_CURRENT },
  { "scope", FC(f_scope), METH_FASTCALL | METH_KEYWORDS,
    DOC_SCOPE },
  { "timeout", FC(f_timeout), METH_FASTCALL | METH_KEYWORDS,
    DOC_TIMEOUT },
  { "deadline", FC(f_deadline), METH_FASTCALL | METH_KEYWORDS,
    DOC_DEADLINE },
  { "sleep", FC(f_sleep), METH_FASTCALL | METH_KEYWORDS,
    DOC_SLEEP },
  { "_context_or_current", f_context_or_current, METH_O, NULL },
  { "_register_types", FC(f_register_types), METH_FASTCALL, NULL },
  { "_interrupt_check", FC(pyctx_interrupt_check), METH_FASTCALL, NULL },
  { "_wake", FC(pyctx_wake), METH_FASTCALL, NULL },
  { "_on_instruction", FC(pyctx_on_instruction), METH_FASTCALL, NULL },
  { "_on_start", FC(pyctx_on_start), METH_FASTCALL, NULL },
  { "_wake_path", f_wake_path, METH_NOARGS, NULL },
  { "_num_children", f_num_children, METH_O, NULL },
  { "_dispatch_loop", pyctx_dispatch_loop, METH_O, NULL },
  { "_after_func_internal", FC(f_after_func_internal), METH_FASTCALL | METH_KEYWORDS, NULL },
  { "_shutdown", pyctx_shutdown, METH_NOARGS, NULL },
  { "_after_fork_child", pyctx_after_fork_child, METH_NOARGS, NULL },
  { NULL, NULL, 0, NULL } };

/* ---- module lifecycle ---- */

static PyObject *new_type(PyObject *m, PyType_Spec *spec, PyObject *base) {
  PyObject *t = PyType_FromModuleAndSpec(m, spec, base);
  if (t && PyModule_AddObjectRef(m, strrchr(spec->name, '.') + 1, t) < 0) Py_CLEAR(t);
  return t;
}

static PyObject *new_exc(PyObject *m, const char *name, PyObject *base, const char *doc,
                         PyObject *dict) {
  PyObject *e = PyErr_NewExceptionWithDoc(name, doc, base, dict);
  if (e && PyModule_AddObjectRef(m, strrchr(name, '.') + 1, e) < 0) Py_CLEAR(e);
  return e;
}

static PyObject *import_attr(const char *mod, const char *attr) {
  PyObject *m = PyImport_ImportModule(mod);
  if (!m) return NULL;
  PyObject *a = PyObject_GetAttrString(m, attr);
  Py_DECREF(m);
  return a;
}

#define CONTEXT_ERROR_DOC \
  "Base of the errors a done context reports: Canceled and DeadlineExceeded.\n\n" \
  "stdout, stderr: the output captured so far when ctx.run_process raised it\n" \
  "(as subprocess.TimeoutExpired has them); None otherwise."

static int mod_exec(PyObject *m) {
  ctxstate *st = ST(m);
  pyctx_set_main_ident(PyThread_get_thread_ident());
  PyObject *mt = import_attr("threading", "main_thread");
  if (mt) {
    PyObject *t = PyObject_CallNoArgs(mt), *id = t ? PyObject_GetAttrString(t, "ident") : NULL;
    if (id) pyctx_set_main_ident(PyLong_AsUnsignedLong(id));
    Py_XDECREF(id); Py_XDECREF(t); Py_DECREF(mt);
  }
  if (PyErr_Occurred()) return -1;
  if (!(st->Context = (PyTypeObject *)new_type(m, &pyctx_context_spec, NULL))) return -1;
  if (!(st->ScopeContext = (PyTypeObject *)new_type(m, &pyctx_scopectx_spec,
                                                     (PyObject *)st->Context))) return -1;
  if (!(st->Scope = (PyTypeObject *)new_type(m, &pyctx_scope_spec, NULL))) return -1;
  if (!(st->Shield = (PyTypeObject *)new_type(m, &pyctx_shield_spec, NULL))) return -1;
  st->new_Context = (PyTypeObject *)Py_NewRef(st->Context);
  st->new_ScopeContext = (PyTypeObject *)Py_NewRef(st->ScopeContext);
  st->new_Scope = (PyTypeObject *)Py_NewRef(st->Scope);
  if (!(st->Cancel = (PyTypeObject *)new_type(m, &cancel_spec, NULL))) return -1;
  if (!(st->Stop = (PyTypeObject *)new_type(m, &stop_spec, NULL))) return -1;
  /* run_process sets stdout/stderr on the errors it raises (the output so
  ** far, as subprocess.TimeoutExpired has it); None on every other one */
  PyObject *attrs = Py_BuildValue("{sOsO}", "stdout", Py_None, "stderr", Py_None);
  if (!attrs) return -1;
  st->ContextError = new_exc(m, "ctx.ContextError", PyExc_Exception, CONTEXT_ERROR_DOC, attrs);
  Py_DECREF(attrs);
  if (!st->ContextError) return -1;
  if (!(st->Canceled = new_exc(m, "ctx.Canceled", st->ContextError,
        "The error of a context ended by a cancel: str() is 'context canceled'.\n\n"
        "Raised by c.check(), ctx.sleep, ctx.run_process and interrupting scopes;\n"
        "the cancel's cause, if any, is its __cause__.", NULL))) return -1;
  PyObject *bases = PyTuple_Pack(2, st->ContextError, PyExc_TimeoutError);
  if (!bases) return -1;
  st->DeadlineExceeded = new_exc(m, "ctx.DeadlineExceeded", bases,
      "The error of a context whose deadline passed: str() is\n"
      "'context deadline exceeded'. Also a TimeoutError, so code that handles\n"
      "timeouts in general handles it too.", NULL);
  Py_DECREF(bases);
  if (!st->DeadlineExceeded) return -1;
  if (!(st->msg_canceled = PyUnicode_FromString("context canceled"))) return -1;
  if (!(st->msg_deadline = PyUnicode_FromString("context deadline exceeded"))) return -1;
  PyObject *cv = import_attr("contextvars", "ContextVar");
  if (!cv) return -1;
  st->current_var = PyObject_CallFunction(cv, "s", "ctx.current");
  Py_DECREF(cv);
  if (!st->current_var) return -1;
  if (!(st->background = pyctx_wrap(st, st->Context, ctx_background()))) return -1;
  if (!(st->todo = pyctx_wrap(st, st->Context, ctx_todo()))) return -1;
  if (!(st->timedelta = import_attr("datetime", "timedelta"))) return -1;
  if (!(st->datetime = import_attr("datetime", "datetime"))) return -1;
  if (!(st->dispatch_loop = PyObject_GetAttrString(m, "_dispatch_loop"))) return -1;
  if (!(st->wake = PyObject_GetAttrString(m, "_wake"))) return -1;
  if (!(st->on_instruction = PyObject_GetAttrString(m, "_on_instruction"))) return -1;
  if (!(st->on_start = PyObject_GetAttrString(m, "_on_start"))) return -1;
  if (pyctx_deliver_init(st) < 0) return -1;
  /* the version is written once, in ctx.h; the package reads it from here */
  if (PyModule_AddStringConstant(m, "__version__", ctx_version()) < 0) return -1;
  if (pyctx_proc_init(m) < 0) return -1;
  return pyctx_runner_init(m);
}

static int mod_traverse(PyObject *m, visitproc visit, void *arg) {
  ctxstate *st = ST(m);
  Py_VISIT(st->Context); Py_VISIT(st->ScopeContext); Py_VISIT(st->Scope);
  Py_VISIT(st->Shield); Py_VISIT(st->Cancel); Py_VISIT(st->Stop);
  Py_VISIT(st->new_Context); Py_VISIT(st->new_ScopeContext); Py_VISIT(st->new_Scope);
  Py_VISIT(st->on_instruction); Py_VISIT(st->on_start);
  Py_VISIT(st->ContextError); Py_VISIT(st->Canceled); Py_VISIT(st->DeadlineExceeded);
  Py_VISIT(st->current_var); Py_VISIT(st->background); Py_VISIT(st->todo);
  Py_VISIT(st->timedelta); Py_VISIT(st->datetime); Py_VISIT(st->dispatch_loop); Py_VISIT(st->wake);
  return 0;
}

static int mod_clear(PyObject *m) {
  ctxstate *st = ST(m);
  Py_CLEAR(st->Context); Py_CLEAR(st->ScopeContext); Py_CLEAR(st->Scope);
  Py_CLEAR(st->Shield); Py_CLEAR(st->Cancel); Py_CLEAR(st->Stop);
  Py_CLEAR(st->new_Context); Py_CLEAR(st->new_ScopeContext); Py_CLEAR(st->new_Scope);
  Py_CLEAR(st->on_instruction); Py_CLEAR(st->on_start);
  Py_CLEAR(st->ContextError); Py_CLEAR(st->Canceled); Py_CLEAR(st->DeadlineExceeded);
  Py_CLEAR(st->msg_canceled); Py_CLEAR(st->msg_deadline);
  Py_CLEAR(st->current_var); Py_CLEAR(st->background); Py_CLEAR(st->todo);
  Py_CLEAR(st->timedelta); Py_CLEAR(st->datetime); Py_CLEAR(st->dispatch_loop); Py_CLEAR(st->wake);
  return 0;
}

static void mod_free(void *m) { mod_clear((PyObject *)m); }

static PyModuleDef_Slot mod_slots[] = { { Py_mod_exec, mod_exec }, { 0, NULL } };

PyModuleDef pyctx_module = {
  PyModuleDef_HEAD_INIT, "ctx._ctx", "Go's context for Python: the C extension.",
  sizeof(ctxstate), mod_methods, mod_slots, mod_traverse, mod_clear, mod_free };

PyMODINIT_FUNC PyInit__ctx(void) { return PyModuleDef_Init(&pyctx_module); }
