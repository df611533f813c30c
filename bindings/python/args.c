/* args.c — argument conversion for every function of ctx._ctx: binding by
** name, contexts, times and causes, each rule written once. */
#include <math.h>
#include "pyctx.h"

ctxstate *pyctx_state_of(PyTypeObject *tp) {
  PyObject *m = PyType_GetModuleByDef(tp, &pyctx_module);
  return m ? (ctxstate *)PyModule_GetState(m) : NULL;
}

int pyctx_check_rc(int rc) {
  if (rc == CTX_ENOMEM) PyErr_NoMemory();
  else if (rc == CTX_EMFILE) PyErr_SetString(PyExc_OSError, ctx_strerror(rc));
  else if (rc == CTX_EAGAIN) PyErr_SetString(PyExc_RuntimeError, ctx_strerror(rc));
  else PyErr_SetString(PyExc_ValueError, ctx_strerror(rc));
  return -1;
}

int pyctx_bind(const char *fname, const char *const *names, Py_ssize_t want,
               Py_ssize_t npos, Py_ssize_t required, PyObject *const *a, Py_ssize_t n,
               PyObject *kwn, PyObject **out) {
  if (n > npos) {
    PyErr_Format(PyExc_TypeError, "%s() takes %s%zd positional argument%s but %zd were given",
                 fname, required < npos ? "at most " : "", npos, npos == 1 ? "" : "s", n);
    return 0;
  }
  for (Py_ssize_t i = 0; i < want; i++) out[i] = i < n ? a[i] : NULL;
  Py_ssize_t nk = kwn ? PyTuple_GET_SIZE(kwn) : 0;
  for (Py_ssize_t j = 0; j < nk; j++) {
    PyObject *k = PyTuple_GET_ITEM(kwn, j);
    Py_ssize_t i = 0;
    while (i < want && PyUnicode_CompareWithASCIIString(k, names[i]) != 0) i++;
    if (i == want) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fname, k);
      return 0;
    }
    if (out[i]) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
                   fname, names[i]);
      return 0;
    }
    out[i] = a[n + j];
  }
  for (Py_ssize_t i = 0; i < required; i++) {
    if (!out[i]) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
      return 0;
    }
  }
  return 1;
}

int pyctx_context_arg(ctxstate *st, PyObject *o, const char *what, ctx_t **out) {
  if (!PyObject_TypeCheck(o, st->Context) || !((CtxObject *)o)->c) {
    PyErr_Format(PyExc_TypeError, "%s must be a ctx.Context, not %.100s", what,
                 Py_TYPE(o)->tp_name);
    return -1;
  }
  *out = ((CtxObject *)o)->c;
  return 0;
}

int pyctx_parent(ctxstate *st, PyObject *o, ctx_t **out) {
  return pyctx_context_arg(st, o, "parent", out);
}

PyObject *pyctx_context_or_current(ctxstate *st, PyObject *o) {
  ctx_t *c;
  if (!o || o == Py_None) return pyctx_current(st);
  if (pyctx_context_arg(st, o, "c", &c) < 0) return NULL;
  return Py_NewRef(o);
}

static int to_double(ctxstate *st, PyObject *o, double *d, const char *what) {
  if (PyFloat_Check(o)) {
    *d = PyFloat_AS_DOUBLE(o);
  } else if (PyLong_Check(o) && !PyBool_Check(o)) {
    /* a bool is almost surely a misplaced flag (timeout(True) would be 1 s):
    ** it falls through to the TypeError below */
    *d = PyLong_AsDouble(o);
    if (*d == -1.0 && PyErr_Occurred()) {
      if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
      /* beyond a float: saturate as a huge float would (no deadline, or
      ** already passed), rather than fail with OverflowError */
      int sign;
      PyErr_Clear();
      (void)PyLong_AsLongLongAndOverflow(o, &sign);
      *d = sign < 0 ? -INFINITY : INFINITY;
    }
  } else {
    int is_td = PyObject_IsInstance(o, st->timedelta);
    if (is_td < 0) return -1;
    if (!is_td || what[0] != 's') {
      PyErr_Format(PyExc_TypeError, "%s must be %s, not %.100s", what,
                   what[0] == 's' ? "int, float or timedelta" : "int, float or datetime",
                   Py_TYPE(o)->tp_name);
      return -1;
    }
    PyObject *r = PyObject_CallMethod(o, "total_seconds", NULL);
    if (!r) return -1;
    *d = PyFloat_AsDouble(r);
    Py_DECREF(r);
    if (*d == -1.0 && PyErr_Occurred()) return -1;
  }
  if (*d != *d) {
    PyErr_Format(PyExc_ValueError, "%s must not be NaN", what);
    return -1;
  }
  return 0;
}

int pyctx_seconds(ctxstate *st, PyObject *o, int64_t *ns) {
  double d;
  if (to_double(st, o, &d, "seconds") < 0) return -1;
  *ns = ctx_seconds_to_ns(d);
  return 0;
}

int pyctx_when(ctxstate *st, PyObject *o, int64_t *mono) {
  double d;
  int is_dt = PyObject_IsInstance(o, st->datetime);
  if (is_dt < 0) return -1;
  if (is_dt) {
    PyObject *r = PyObject_CallMethod(o, "timestamp", NULL);
    if (!r) return -1;
    d = PyFloat_AsDouble(r);
    Py_DECREF(r);
    if (d == -1.0 && PyErr_Occurred()) return -1;
  } else if (to_double(st, o, &d, "when") < 0) {
    return -1;
  }
  *mono = ctx_wall_to_mono(d);
  return 0;
}

int pyctx_cause_arg(PyObject *cause) {
  if (cause == Py_None || PyExceptionInstance_Check(cause)) return 0;
  PyErr_Format(PyExc_TypeError, "cause must be an exception or None, not %.100s",
               Py_TYPE(cause)->tp_name);
  return -1;
}
