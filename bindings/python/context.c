/* context.c — the ctx.Context type (queries, waits, fileno, String()) and the
** ScopeContext subtype bound by `with ... as c`, which adds cancel(). */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "pyctx.h"
#include "docs.h"
#include "structmember.h"

#define STATE(self) pyctx_state_of(Py_TYPE(self))
#define MS (1000000LL)

PyObject *pyctx_new_err(ctxstate *st, ctx_t *c) {
  ctx_err_t e = ctx_err(c);
  if (e == CTX_ERR_NONE) Py_RETURN_NONE;
  PyObject *inst = e == CTX_ERR_DEADLINE
      ? PyObject_CallOneArg(st->DeadlineExceeded, st->msg_deadline)
      : PyObject_CallOneArg(st->Canceled, st->msg_canceled);
  PyObject *cause = inst ? (PyObject *)ctx_cause(c) : NULL;
  if (cause) PyException_SetCause(inst, Py_NewRef(cause));
  return inst;
}

PyObject *pyctx_err_instance(ctxstate *st, CtxObject *self) {
  if (!ctx_done(self->c)) Py_RETURN_NONE;
  if (!self->err && !(self->err = pyctx_new_err(st, self->c))) return NULL;
  return Py_NewRef(self->err);
}

/* ---- waiting ---- */

int pyctx_wait_any(ctxstate *st, ctx_t *c, const int *fds, size_t nfd, ctx_proc_t *proc,
                   int64_t timeout_ns, size_t *which) {
  int64_t until = timeout_ns < 0 ? CTX_FOREVER : ctx_deadline_from_timeout(timeout_ns);
  /* only the main thread runs signal handlers, and a signal may land on
  ** another thread: it looks again now and then, so Ctrl-C is never missed */
  int is_main = PyThread_get_thread_ident() == pyctx_main_ident();
  for (;;) {
    if (ctx_done(c) == 1) return PYCTX_W_DONE;
    ctx_t **ics;
    size_t nic;
    int64_t due;
    if (pyctx_interrupt_poll(st, &ics, &nic, &due) < 0) return -1;
    int64_t now = ctx_now(), end = until < due ? until : due;
    if (now >= until) {
      for (size_t i = 0; i < nic; i++) ctx_unref(ics[i]);
      PyMem_Free(ics);
      return PYCTX_W_TIMEOUT;
    }
    int64_t chunk = end > now ? end - now : 0;
    if (is_main && chunk > 50 * MS) chunk = 50 * MS;
    /* c first, then the contexts of this thread's interrupting scopes */
    ctx_t *one[1] = { c }, **cs = one;
    if (nic && !(cs = PyMem_Malloc((nic + 1) * sizeof *cs))) {
      for (size_t i = 0; i < nic; i++) ctx_unref(ics[i]);
      PyMem_Free(ics);
      PyErr_NoMemory();
      return -1;
    }
    cs[0] = c;
    for (size_t i = 0; i < nic; i++) cs[i + 1] = ics[i];
    size_t nc = nic + 1, w = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = proc ? ctx_proc_wait(proc, cs, nc, fds, nfd, chunk, &w)
              : ctx_wait_any(cs, nc, fds, nfd, chunk, &w);
    Py_END_ALLOW_THREADS
    for (size_t i = 0; i < nic; i++) ctx_unref(ics[i]);
    PyMem_Free(ics);
    if (cs != one) PyMem_Free(cs);
    if (rc == CTX_OK) {
      if (proc && w == CTX_PROC_EXITED) return PYCTX_W_EXITED;
      if (w == 0) return PYCTX_W_DONE;
      if (w >= nc) {
        *which = w - nc;
        return PYCTX_W_FD;
      }
      /* an interrupting scope ended: the poll raises its stop */
    } else if (rc != CTX_ETIMEDOUT && rc != CTX_EINTR) {
      pyctx_check_rc(rc);
      return -1;
    }
    if (PyErr_CheckSignals() < 0) return -1;
  }
}

int pyctx_wait(ctxstate *st, ctx_t *c, int64_t timeout_ns) {
  size_t which;
  int r = pyctx_wait_any(st, c, NULL, 0, NULL, timeout_ns, &which);
  return r < 0 ? -1 : r == PYCTX_W_DONE;
}

/* ---- methods ---- */

static PyObject *c_done(CtxObject *self, PyObject *u) {
  (void)u;
  return PyBool_FromLong(ctx_done(self->c));
}

static PyObject *c_wait(CtxObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = { "timeout", NULL };
  PyObject *to = Py_None;
  int64_t ns = -1;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:wait", kwlist, &to)) return NULL;
  ctxstate *st = STATE(self);
  if (to != Py_None) {
    if (pyctx_seconds(st, to, &ns) < 0) return NULL;
    if (ns < 0) ns = 0;
  }
  int r = pyctx_wait(st, self->c, ns);
  if (r < 0) return NULL;
  return PyBool_FromLong(r == 1);
}

static PyObject *c_err(CtxObject *self, PyObject *u) {
  (void)u;
  return pyctx_err_instance(STATE(self), self);
}

static PyObject *c_cause(CtxObject *self, PyObject *u) {
  (void)u;
  if (!ctx_done(self->c)) Py_RETURN_NONE;
  PyObject *cause = ctx_cause(self->c);
  if (cause) return Py_NewRef(cause);
  return pyctx_err_instance(STATE(self), self);
}

static PyObject *c_check(CtxObject *self, PyObject *u) {
  (void)u;
  if (!ctx_done(self->c)) Py_RETURN_NONE;
  PyObject *e = pyctx_err_instance(STATE(self), self);
  if (!e) return NULL;
  /* the instance is reused: do not let tracebacks pile up on it, nor an
  ** exception handled at an earlier check() stay on it as __context__ */
  PyException_SetTraceback(e, Py_None);
  PyException_SetContext(e, NULL);
  PyErr_SetObject((PyObject *)Py_TYPE(e), e);
  Py_DECREF(e);
  return NULL;
}

static PyObject *c_deadline(CtxObject *self, PyObject *u) {
  (void)u;
  int64_t d;
  if (!ctx_deadline(self->c, &d)) Py_RETURN_NONE;
  return PyFloat_FromDouble(ctx_mono_to_wall(d));
}

static PyObject *c_remaining(CtxObject *self, PyObject *u) {
  (void)u;
  int64_t d;
  if (!ctx_deadline(self->c, &d)) Py_RETURN_NONE;
  int64_t left = d - ctx_now();
  return PyFloat_FromDouble(left > 0 ? (double)left / 1e9 : 0.0);
}

static int key_eq(const void *wanted, const void *bound, void *ud) {
  (void)ud;
  return PyObject_RichCompareBool((PyObject *)wanted, (PyObject *)bound, Py_EQ);
}

static PyObject *c_value(CtxObject *self, PyObject *const *a, Py_ssize_t n, PyObject *kwn) {
  PyObject *key = NULL, *dflt = Py_None;
  Py_ssize_t nk = kwn ? PyTuple_GET_SIZE(kwn) : 0;
  if (n > 2) {
    PyErr_SetString(PyExc_TypeError, "value() takes at most 2 arguments");
    return NULL;
  }
  if (n >= 1) key = a[0];
  if (n == 2) dflt = a[1];
  for (Py_ssize_t i = 0; i < nk; i++) {
    PyObject *k = PyTuple_GET_ITEM(kwn, i);
    if (!key && PyUnicode_CompareWithASCIIString(k, "key") == 0) key = a[n + i];
    else if (n < 2 && PyUnicode_CompareWithASCIIString(k, "default") == 0) dflt = a[n + i];
    else {
      PyErr_Format(PyExc_TypeError, "value() got an unexpected keyword argument %R", k);
      return NULL;
    }
  }
  if (!key) {
    PyErr_SetString(PyExc_TypeError, "value() missing required argument 'key'");
    return NULL;
  }
  /* None can never be bound (with_value rejects it): asking for it is the
  ** same mistake, reported the same way */
  if (key == Py_None) {
    PyErr_SetString(PyExc_TypeError, "key must not be None");
    return NULL;
  }
  if (!PyUnicode_CheckExact(key) && PyObject_Hash(key) == -1) return NULL;
  void *v;
  int r = ctx_value(self->c, key, key_eq, NULL, &v);
  if (r < 0) return NULL;
  return Py_NewRef(r ? (PyObject *)v : dflt);
}

static PyObject *c_fileno(CtxObject *self, PyObject *u) {
  (void)u;
  int fd = ctx_fd(self->c);
  if (fd < 0) return pyctx_check_rc(fd), NULL;
  return PyLong_FromLong(fd);
}

/* o as UTF-8 with what a C string cannot carry escaped: a NUL as \x00, a
** lone surrogate as \udcxx (str(c) never fails nor stops early). */
static char *utf8_escaped(PyObject *o) {
  PyObject *b = PyUnicode_AsEncodedString(o, "utf-8", "backslashreplace");
  if (!b) return NULL;
  const char *p = PyBytes_AS_STRING(b);
  size_t n = (size_t)PyBytes_GET_SIZE(b), nul = 0;
  for (size_t i = 0; i < n; i++) nul += p[i] == 0;
  char *r = malloc(n + 3 * nul + 1), *w = r;
  if (r) {
    for (size_t i = 0; i < n; i++) {
      if (p[i]) *w++ = p[i];
      else { memcpy(w, "\\x00", 4); w += 4; }
    }
    *w = 0;
  } else {
    PyErr_NoMemory();
  }
  Py_DECREF(b);
  return r;
}

/* "key, value" of a WithValue node: strings as they are (as Go prints
** them), anything else by repr(); a repr() that fails reads as object.__repr__. */
static char *fmt_one(PyObject *o) {
  PyObject *s = PyUnicode_Check(o) ? Py_NewRef(o) : PyObject_Repr(o);
  if (!s && PyErr_ExceptionMatches(PyExc_Exception)) {
    PyErr_Clear();
    s = PyUnicode_FromFormat("<%s object at %p>", Py_TYPE(o)->tp_name, (void *)o);
  }
  if (!s) return NULL;
  char *r = utf8_escaped(s);
  Py_DECREF(s);
  return r;
}

static char *fmt_kv(const void *key, const void *val, void *ud) {
  (void)ud;
  char *k = fmt_one((PyObject *)key), *v = k ? fmt_one((PyObject *)val) : NULL;
  char *r = NULL;
  if (k && v && (r = malloc(strlen(k) + strlen(v) + 3)))
    sprintf(r, "%s, %s", k, v);
  free(k);
  free(v);
  return r;
}

static PyObject *c_str(CtxObject *self) {
  char *s = ctx_string(self->c, fmt_kv, NULL);
  if (!s) return PyErr_Occurred() ? NULL : PyErr_NoMemory();
  PyObject *r = PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
  free(s);
  return r;
}

static PyObject *c_repr(CtxObject *self) {
  PyObject *s = c_str(self);
  if (!s) return NULL;
  const char *name = strrchr(Py_TYPE(self)->tp_name, '.');  /* C: "ctx.X", Python: "X" */
  name = name ? name + 1 : Py_TYPE(self)->tp_name;
  PyObject *r = PyUnicode_FromFormat("<ctx.%s %U>", name, s);
  Py_DECREF(s);
  return r;
}

static PyObject *sc_cancel(CtxObject *self, PyObject *const *a, Py_ssize_t n, PyObject *kwn) {
  PyObject *cause = Py_None;
  Py_ssize_t nk = kwn ? PyTuple_GET_SIZE(kwn) : 0;
  if (n > 1 || n + nk > 1 ||
      (nk && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwn, 0), "cause") != 0)) {
    PyErr_SetString(PyExc_TypeError, "cancel() takes one optional argument, cause");
    return NULL;
  }
  if (n + nk == 1) cause = a[0];
  return pyctx_cancel_with(self->c, cause);
}

/* ---- lifecycle ---- */

typedef struct { visitproc visit; void *arg; } visit_t;
static int visit_owned(void *obj, void *ud) {
  visit_t *v = ud;
  return v->visit((PyObject *)obj, v->arg);
}

/* Also the keys, values and cause that this object's reference alone keeps
** alive (ctx_visit): a value that refers to its context, or a cause whose
** traceback holds the context's frame, is a cycle the collector can free. */
static int c_traverse(CtxObject *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->err);
  visit_t v = { visit, arg };
  return self->c ? ctx_visit(self->c, visit_owned, &v) : 0;
}

static int c_clear(CtxObject *self) {
  Py_CLEAR(self->err);
  return 0;
}

static void c_dealloc(CtxObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
  Py_CLEAR(self->err);
  ctx_unref(self->c);  /* may release values: the GIL is held */
  tp->tp_free(self);
  Py_DECREF(tp);
}

#define FC(f) (PyCFunction)(void (*)(void))(f)
static PyMethodDef c_methods[] = {
  { "done", FC(c_done), METH_NOARGS, DOC_C_DONE },
  { "wait", FC(c_wait), METH_VARARGS | METH_KEYWORDS, DOC_C_WAIT },
  { "err", FC(c_err), METH_NOARGS, DOC_C_ERR },
  { "cause", FC(c_cause), METH_NOARGS, DOC_C_CAUSE },
  { "check", FC(c_check), METH_NOARGS, DOC_C_CHECK },
  { "deadline", FC(c_deadline), METH_NOARGS, DOC_C_DEADLINE },
  { "remaining", FC(c_remaining), METH_NOARGS, DOC_C_REMAINING },
  { "value", FC(c_value), METH_FASTCALL | METH_KEYWORDS, DOC_C_VALUE },
  { "fileno", FC(c_fileno), METH_NOARGS, DOC_C_FILENO },
  { NULL, NULL, 0, NULL } };

static PyMemberDef c_members[] = {
  { "__weaklistoffset__", T_PYSSIZET, offsetof(CtxObject, weakreflist), READONLY, NULL },
  { NULL, 0, 0, 0, NULL } };

static PyType_Slot c_slots[] = {
  { Py_tp_methods, c_methods },
  { Py_tp_members, c_members },
  { Py_tp_str, c_str },
  { Py_tp_repr, c_repr },
  { Py_tp_traverse, c_traverse },
  { Py_tp_clear, c_clear },
  { Py_tp_dealloc, c_dealloc },
  { Py_tp_doc, DOC_CONTEXT_TYPE },
  { 0, NULL } };

PyType_Spec pyctx_context_spec = { "ctx.Context", sizeof(CtxObject), 0,
  Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE |
  Py_TPFLAGS_DISALLOW_INSTANTIATION, c_slots };

static int rec_traverse(ScopeCtxObject *self, visitproc visit, void *arg) {
  Py_VISIT(self->prev);
  Py_VISIT(self->owner);
  return c_traverse((CtxObject *)self, visit, arg);
}

static int rec_clear(ScopeCtxObject *self) {
  Py_CLEAR(self->prev);
  Py_CLEAR(self->owner);
  return c_clear((CtxObject *)self);
}

static void rec_dealloc(ScopeCtxObject *self) {
  PyObject_GC_UnTrack(self);
  Py_CLEAR(self->prev);
  Py_CLEAR(self->owner);
  c_dealloc((CtxObject *)self);
}

static PyMethodDef sc_methods[] = {
  { "cancel", FC(sc_cancel), METH_FASTCALL | METH_KEYWORDS,
    DOC_SC_CANCEL },
  { NULL, NULL, 0, NULL } };

static PyType_Slot sc_slots[] = {
  { Py_tp_methods, sc_methods },
  { Py_tp_traverse, rec_traverse },
  { Py_tp_clear, rec_clear },
  { Py_tp_dealloc, rec_dealloc },
  { Py_tp_doc, DOC_SCOPECONTEXT_TYPE },
  { 0, NULL } };

PyType_Spec pyctx_scopectx_spec = { "ctx.ScopeContext", sizeof(ScopeCtxObject), 0,
  Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE |
  Py_TPFLAGS_DISALLOW_INSTANTIATION, sc_slots };
