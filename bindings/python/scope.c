/* scope.c — scopes (ctx.scope/timeout/deadline as `with`) and ctx.current():
** the chain of scope records, which knows the generators that suspend inside one. */
#include "pyctx.h"
#include "docs.h"
#include "structmember.h"

/* ---- owners: the generator or coroutine whose frame entered a scope ---- */

static PyObject *weak_get(PyObject *ref) {  /* new reference or NULL */
#if PY_VERSION_HEX >= 0x030D0000
  PyObject *o;
  if (PyWeakref_GetRef(ref, &o) < 0) { PyErr_Clear(); return NULL; }
  return o;
#else
  PyObject *o = PyWeakref_GetObject(ref);
  return o && o != Py_None ? Py_NewRef(o) : NULL;
#endif
}

static int attr_true(PyObject *o, const char *name) {
  PyObject *v = PyObject_GetAttrString(o, name);
  if (!v) { PyErr_Clear(); return 0; }
  int r = v != Py_None && PyObject_IsTrue(v) == 1;
  Py_DECREF(v);
  return r;
}

int pyctx_owner_state(PyObject *ref) {
  PyObject *g = weak_get(ref);
  if (!g) return 0;  /* gone: it runs nowhere */
  int r;
  if (PyCoro_CheckExact(g))
    r = attr_true(g, "cr_running") ? 1 : attr_true(g, "cr_await") ? 2 : 0;
  else if (PyAsyncGen_CheckExact(g))
    r = attr_true(g, "ag_running") ? 1 : attr_true(g, "ag_await") ? 2 : 0;
  else
    r = attr_true(g, "gi_running");
  Py_DECREF(g);
  return r;
}

/* The owner of a scope entered by frame f, as a weak reference: its
** generator or coroutine when f is one's own frame, NULL for a plain
** function, and NULL for a generator driven by a context manager's
** __enter__/__aenter__ (contextlib.contextmanager): that one wraps its
** caller's block on purpose. *hide: a generator, whose scope its caller
** must not see while it is suspended (a coroutine's task suspends whole). */
PyObject *pyctx_frame_owner(PyFrameObject *f, int want_coro, int *hide) {
  *hide = 0;
  if (!f) return NULL;
  PyCodeObject *code = PyFrame_GetCode(f);
  int flags = code->co_flags;
  Py_DECREF(code);
  int gen = (flags & (CO_GENERATOR | CO_ASYNC_GENERATOR)) != 0;
  int coro = (flags & (CO_COROUTINE | CO_ITERABLE_COROUTINE)) != 0;
  if (!gen && !(coro && want_coro)) return NULL;
  PyFrameObject *back = PyFrame_GetBack(f);
  if (back) {
    PyCodeObject *bc = PyFrame_GetCode(back);
    int cm = PyUnicode_CompareWithASCIIString(bc->co_name, "__enter__") == 0 ||
             PyUnicode_CompareWithASCIIString(bc->co_name, "__aenter__") == 0;
    Py_DECREF(bc);
    Py_DECREF(back);
    if (cm) return NULL;
  }
  PyObject *g = PyFrame_GetGenerator(f);
  if (!g) { PyErr_Clear(); return NULL; }
  PyObject *w = PyWeakref_NewRef(g, NULL);
  Py_DECREF(g);
  if (!w) { PyErr_Clear(); return NULL; }
  *hide = gen && !coro;
  return w;
}

/* ---- ctx.current() ---- */

static int is_record(ctxstate *st, PyObject *v) {
  return v && PyObject_TypeCheck(v, st->ScopeContext);
}

/* Whether record r may be current: not exited, and a generator's only while
** the generator is in the middle of a step. */
static int visible(ScopeCtxObject *r) {
  return !r->exited && (!r->hide || pyctx_owner_state(r->owner) != 0);
}

/* The slow path, for chains with exited records or generators' scopes: the
** innermost visible record on this thread's frame stack wins (a generator
** resumed inside its caller's later scope still sees its own); records
** whose frame is not on the stack (a context copied to another thread)
** come after, newest first. */
static PyObject *resolve(ctxstate *st, PyObject *top) {
  Py_ssize_t n = 0, cap = 16;
  ScopeCtxObject *small[16], **vis = small;
  int any_hide = 0;
  for (PyObject *v = top; is_record(st, v); v = ((ScopeCtxObject *)v)->prev) {
    ScopeCtxObject *r = (ScopeCtxObject *)v;
    if (!visible(r)) continue;
    if (n == cap) {
      ScopeCtxObject **grown = PyMem_Malloc(2 * cap * sizeof *grown);
      if (!grown) { if (vis != small) PyMem_Free(vis); return PyErr_NoMemory(); }
      memcpy(grown, vis, n * sizeof *grown);
      if (vis != small) PyMem_Free(vis);
      vis = grown;
      cap *= 2;
    }
    vis[n++] = r;
    any_hide |= r->hide;
  }
  PyObject *res = NULL;
  if (any_hide) {
    PyFrameObject *f = PyEval_GetFrame();
    Py_XINCREF(f);
    while (f && !res) {
      for (Py_ssize_t i = 0; i < n && !res; i++)
        if (vis[i]->frame == (const void *)f) res = (PyObject *)vis[i];
      PyFrameObject *b = PyFrame_GetBack(f);
      Py_DECREF(f);
      f = b;
    }
    Py_XDECREF(f);
  }
  for (Py_ssize_t i = 0; i < n && !res; i++)
    if (!vis[i]->hide) res = (PyObject *)vis[i];
  if (vis != small) PyMem_Free(vis);
  return Py_NewRef(res ? res : st->background);
}

PyObject *pyctx_current(ctxstate *st) {
  PyObject *v;
  if (PyContextVar_Get(st->current_var, NULL, &v) < 0) return NULL;
  if (!v) return Py_NewRef(st->background);
  if (is_record(st, v)) {
    ScopeCtxObject *r = (ScopeCtxObject *)v;
    if (r->chain_hide || r->exited) {
      PyObject *res = resolve(st, v);
      Py_DECREF(v);
      return res;
    }
  }
  return v;
}

/* ---- the Scope type ---- */

PyObject *pyctx_make_scope(ctxstate *st, int kind, int64_t ns, PyObject *parent,
                           int interrupt) {
  ScopeObject *s = PyObject_GC_New(ScopeObject, st->new_Scope);
  if (!s) return NULL;
  memset((char *)s + sizeof(PyObject), 0, sizeof *s - sizeof(PyObject));
  s->kind = kind;
  s->interrupt = interrupt;
  s->ns = ns;
  s->parent = Py_XNewRef(parent);
  s->istate = IS_EXITED;
  PyObject_GC_Track(s);
  return (PyObject *)s;
}

/* Enters the scope on behalf of frame f (the `with` statement's frame). */
static PyObject *enter_at(ScopeObject *self, PyFrameObject *f) {
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
  ScopeCtxObject *r = (ScopeCtxObject *)pyctx_wrap(st, st->new_ScopeContext, c);
  if (!r) return NULL;
  if (PyContextVar_Get(st->current_var, NULL, &r->prev) < 0) goto fail;
  r->frame = f;
  r->owner = pyctx_frame_owner(f, self->interrupt, &r->hide);
  r->chain_hide = r->hide || (is_record(st, r->prev) && ((ScopeCtxObject *)r->prev)->chain_hide);
  PyObject *token = PyContextVar_Set(st->current_var, (PyObject *)r);
  if (!token) goto fail;
  self->active = r;
  self->token = token;
  self->enter_lasti = f ? PyFrame_GetLasti(f) : -1;
  if (self->interrupt && pyctx_interrupt_enter(st, self) < 0) {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    if (PyContextVar_Reset(st->current_var, token) < 0) PyErr_Clear();
    ctx_cancel(c);
    r->exited = 1;
    Py_CLEAR(self->active);
    Py_CLEAR(self->token);
    PyErr_Restore(et, ev, tb);
    return NULL;
  }
  return Py_NewRef(r);
fail:
  ctx_cancel(c);
  Py_DECREF(r);
  return NULL;
}

static PyObject *sc_enter(ScopeObject *self, PyObject *u) {
  (void)u;
  return enter_at(self, PyEval_GetFrame());
}

/* _enter_at(frame): __aenter__ enters on behalf of the `async with` frame. */
static PyObject *sc_enter_at(ScopeObject *self, PyObject *frame) {
  if (!PyFrame_Check(frame)) {
    PyErr_SetString(PyExc_TypeError, "_enter_at(frame) takes a frame");
    return NULL;
  }
  return enter_at(self, (PyFrameObject *)frame);
}

/* Takes record r out of ctx.current: restored to what it was before r when r
** is on top here, else marked exited (a generator's scope ending under a
** later one of its caller, or in another thread): current() skips it. */
static void leave_record(ctxstate *st, ScopeObject *self) {
  ScopeCtxObject *r = self->active;
  r->exited = 1;
  PyObject *v;
  if (PyContextVar_Get(st->current_var, NULL, &v) < 0) { PyErr_Clear(); return; }
  if (v == (PyObject *)r && PyContextVar_Reset(st->current_var, self->token) < 0) {
    PyErr_Clear();  /* a token of another Context (a copy): set it back by hand */
    PyObject *t = PyContextVar_Set(st->current_var, r->prev ? r->prev : st->background);
    if (t) Py_DECREF(t); else PyErr_Clear();
  }
  Py_XDECREF(v);
  /* exited records left on top by out-of-order exits: drop them now, so
  ** that current() takes its fast path again (tokens still active hold
  ** their own old values, which they restore regardless) */
  for (int i = 0; i < 64; i++) {
    if (PyContextVar_Get(st->current_var, NULL, &v) < 0) { PyErr_Clear(); return; }
    int stale = is_record(st, v) && ((ScopeCtxObject *)v)->exited && ((ScopeCtxObject *)v)->prev;
    PyObject *t = stale ? PyContextVar_Set(st->current_var, ((ScopeCtxObject *)v)->prev) : NULL;
    Py_XDECREF(v);
    if (!stale) return;
    if (t) Py_DECREF(t); else { PyErr_Clear(); return; }
  }
}

static PyObject *sc_exit(ScopeObject *self, PyObject *const *a, Py_ssize_t n) {
  if (!self->active) Py_RETURN_FALSE;
  ctxstate *st = pyctx_state_of(Py_TYPE(self));
  PyObject *passing = n >= 2 && a[1] != Py_None ? a[1] : NULL;
  int failed = 0;
  if (self->interrupt && self->ith) failed = pyctx_interrupt_exit(st, self, passing) < 0;
  PyObject *et = NULL, *ev = NULL, *tb = NULL;
  if (failed) PyErr_Fetch(&et, &ev, &tb);
  leave_record(st, self);
  ctx_cancel(self->active->base.c);
  Py_CLEAR(self->token);
  Py_CLEAR(self->active);
  if (failed) {
    PyErr_Restore(et, ev, tb);
    return NULL;
  }
  Py_RETURN_FALSE;
}

/* _detach(): in a process forked inside the block, the scope stops
** interrupting and its context stops being ctx.current(); nothing is
** canceled (python -m ctx: a forked child does not inherit the runner's root). */
static PyObject *sc_detach(ScopeObject *self, PyObject *u) {
  (void)u;
  if (self->interrupt && self->ith) pyctx_interrupt_detach(self);
  self->interrupt = 0;
  if (self->active) self->active->exited = 1;  /* current() passes over it */
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

/* _suspended: inside a generator's scope whose generator sits at a yield
** (its caller runs): `async with` then waits for it to resume to cancel. */
static PyObject *sc_get_suspended(ScopeObject *self, void *closure) {
  (void)closure;
  ScopeCtxObject *r = self->active;
  return PyBool_FromLong(r && r->hide && pyctx_owner_state(r->owner) == 0);
}

static int sc_traverse(ScopeObject *self, visitproc visit, void *arg) {
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(self->parent);
  Py_VISIT(self->active);
  Py_VISIT(self->token);
  Py_VISIT(self->aux);
  return 0;
}

static int sc_clear(ScopeObject *self) {
  Py_CLEAR(self->parent);
  Py_CLEAR(self->token);
  Py_CLEAR(self->aux);
  Py_CLEAR(self->active);
  return 0;
}

static void sc_dealloc(ScopeObject *self) {
  PyTypeObject *tp = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
  pyctx_interrupt_dealloc(self);
  if (self->active) {  /* entered, never exited */
    self->active->exited = 1;
    ctx_cancel(self->active->base.c);
  }
  sc_clear(self);
  tp->tp_free(self);
  Py_DECREF(tp);
}

#define FC(f) (PyCFunction)(void (*)(void))(f)
static PyMethodDef sc_methods[] = {
  { "__enter__", FC(sc_enter), METH_NOARGS, NULL },
  { "__exit__", FC(sc_exit), METH_FASTCALL, NULL },
  { "_enter_at", FC(sc_enter_at), METH_O, "Enters on behalf of a frame (async with)." },
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
  { "_suspended", (getter)sc_get_suspended, NULL, NULL, NULL },
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
  Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE |
  Py_TPFLAGS_DISALLOW_INSTANTIATION, sc_slots };
