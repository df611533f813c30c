/* proc.c — ctx._Proc, run_process's hold on a child: the core's supervisor
** (ctx_proc_*) waits for it with a context and pipes, and ends its group. */
#include <limits.h>
#include <stdlib.h>
#include "pyctx.h"

typedef struct {
  PyObject_HEAD
  ctx_proc_t *p;
  int pid, exited;
} ProcObject;


/* _Proc(pid, flags): the child Popen started (flags: CTX_PROC_*). */
static PyObject *proc_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
  int pid, flags;
  static char *kwlist[] = { "pid", "flags", NULL };
  if (!PyArg_ParseTupleAndKeywords(args, kw, "ii:_Proc", kwlist, &pid, &flags)) return NULL;
  ProcObject *self = (ProcObject *)tp->tp_alloc(tp, 0);
  if (!self) return NULL;
  int rc = ctx_proc_open(pid, flags, &self->p);
  if (rc) {
    Py_DECREF(self);
    return pyctx_check_rc(rc), NULL;
  }
  self->pid = pid;
  if (pyctx_track_child(pid, flags & CTX_PROC_GROUP) < 0) {
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  return (PyObject *)self;
}

/* wait(c, fds, timeout) -> 'exited' | 'done' | index into fds | None (timeout).
** Also returns at once for an ended interrupting scope of this thread, by
** raising its stop; a signal handler that raises ends the wait with it. */
static PyObject *proc_wait(ProcObject *self, PyObject *args) {
  PyObject *co, *fdseq, *to;
  if (!PyArg_ParseTuple(args, "OOO:wait", &co, &fdseq, &to)) return NULL;
  ctxstate *st = pyctx_state_of(Py_TYPE(self));
  ctx_t *c;
  int64_t ns = -1;
  if (!st || pyctx_parent(st, co, &c) < 0) return NULL;
  if (to != Py_None && pyctx_seconds(st, to, &ns) < 0) return NULL;
  PyObject *seq = PySequence_Fast(fdseq, "fds must be a sequence of ints");
  if (!seq) return NULL;
  Py_ssize_t nfd = PySequence_Fast_GET_SIZE(seq);
  int *fds = PyMem_New(int, nfd ? (size_t)nfd : 1);
  if (!fds) {
    Py_DECREF(seq);
    return PyErr_NoMemory();
  }
  for (Py_ssize_t i = 0; i < nfd; i++) {
    long fd = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
    if (fd < 0 || fd > INT_MAX) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "bad file descriptor");
      Py_DECREF(seq);
      PyMem_Free(fds);
      return NULL;
    }
    fds[i] = (int)fd;
  }
  Py_DECREF(seq);
  size_t which;
  int r = pyctx_wait_any(st, c, fds, (size_t)nfd, self->exited ? NULL : self->p, ns, &which);
  PyMem_Free(fds);
  if (r < 0) return NULL;
  if (r == PYCTX_W_EXITED) {
    self->exited = 1;
    return PyUnicode_FromString("exited");
  }
  if (r == PYCTX_W_DONE) return PyUnicode_FromString("done");
  if (r == PYCTX_W_FD) return PyLong_FromSize_t(which);
  Py_RETURN_NONE;
}

/* terminate(grace): SIGTERM to its group, SIGKILL after grace seconds, until
** it has exited (what is left of its group is killed with it). A signal
** handler's exception is raised once that is done, never in between. */
static PyObject *proc_terminate(ProcObject *self, PyObject *grace) {
  ctxstate *st = pyctx_state_of(Py_TYPE(self));
  int64_t ns;
  if (!st || pyctx_seconds(st, grace, &ns) < 0) return NULL;
  PyObject *et = NULL, *ev = NULL, *tb = NULL;
  for (;;) {
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ctx_proc_terminate(self->p, ns);
    Py_END_ALLOW_THREADS
    if (rc != CTX_EINTR) break;
    if (!et && PyErr_CheckSignals() < 0) PyErr_Fetch(&et, &ev, &tb);
  }
  self->exited = 1;
  if (et) {
    PyErr_Restore(et, ev, tb);
    return NULL;
  }
  Py_RETURN_NONE;
}

/* close(): gives the terminal back; the child is no longer a hard exit's. */
static PyObject *proc_close(ProcObject *self, PyObject *u) {
  (void)u;
  if (self->p) {
    ctx_proc_close(self->p);
    self->p = NULL;
    pyctx_untrack_child(self->pid);
  }
  Py_RETURN_NONE;
}

static void proc_dealloc(ProcObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  if (self->p) {
    ctx_proc_close(self->p);
    pyctx_untrack_child(self->pid);
  }
  tp->tp_free(self);
  Py_DECREF(tp);
}

#define FC(f) (PyCFunction)(void (*)(void))(f)
static PyMethodDef proc_methods[] = {
  { "wait", FC(proc_wait), METH_VARARGS, NULL },
  { "terminate", FC(proc_terminate), METH_O, NULL },
  { "close", FC(proc_close), METH_NOARGS, NULL },
  { NULL, NULL, 0, NULL } };

static PyType_Slot proc_slots[] = {
  { Py_tp_new, proc_new },
  { Py_tp_methods, proc_methods },
  { Py_tp_dealloc, proc_dealloc },
  { Py_tp_doc, "Internal: run_process's hold on a child (the core's ctx_proc_*)." },
  { 0, NULL } };

static PyType_Spec proc_spec = { "ctx._Proc", sizeof(ProcObject), 0, Py_TPFLAGS_DEFAULT,
  proc_slots };

int pyctx_proc_init(PyObject *m) {
  PyObject *t = PyType_FromModuleAndSpec(m, &proc_spec, NULL);
  if (!t) return -1;
  int rc = PyModule_AddObjectRef(m, "_Proc", t);
  Py_DECREF(t);
  if (rc < 0) return -1;
  if (PyModule_AddIntConstant(m, "_PROC_GROUP", CTX_PROC_GROUP) < 0 ||
      PyModule_AddIntConstant(m, "_PROC_NOREAP", CTX_PROC_NOREAP) < 0 ||
      PyModule_AddIntConstant(m, "_PROC_TERMINAL", CTX_PROC_TERMINAL) < 0) return -1;
  return 0;
}
