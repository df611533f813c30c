/* deliver.c — arming a thread so that its stop is raised at its next
** instruction event, where CPython finds the right handlers (3.11: trace). */
#include "pyctx.h"

/* Why not an asynchronous exception (PyThreadState_SetAsyncExc, or raising
** from a signal handler at the eval breaker): CPython checks the eval breaker
** at backward jumps and attributes what it raises there to the jump's
** neighbour, which need not be covered by the loop's `try` (3.11 and 3.12:
** the instruction before the loop, gh-108214; 3.13.0: the backward jump
** itself is left out of the exception table, gh-139622), so the stop escapes
** its `except` and even the scope's __exit__. Trace and monitoring events are
** raised at the instruction about to run, which is where the handler table
** is exact: we arm those events only between a stop and its delivery. */

/* opcodes, from the running interpreter's `opcode` module */
static unsigned char g_breaker[256];  /* eval-breaker checks: raising there is unsafe */
static unsigned char g_back[256];     /* backward jumps */
static unsigned char g_quiet[256];    /* a handler's bookkeeping, no-ops: never there */
static unsigned char g_after[256];    /* calls, returns, loop jumps: safe after them */

static void mark(PyObject *opmap, const char *name, unsigned char *table, unsigned char v1) {
  PyObject *v = PyDict_GetItemString(opmap, name);  /* borrowed; absent in some versions */
  long op = v ? PyLong_AsLong(v) : -1;
  if (op >= 0 && op < 256) table[op] = v1;
  PyErr_Clear();
}

int pyctx_op_copy = -1;

int pyctx_deliver_init(ctxstate *st) {
  (void)st;
  PyObject *m = PyImport_ImportModule("opcode");
  PyObject *opmap = m ? PyObject_GetAttrString(m, "opmap") : NULL;
  Py_XDECREF(m);
  if (!opmap) return -1;
  static const char *const breaker[] = { "RESUME", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT",
    "POP_JUMP_BACKWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_TRUE", "POP_JUMP_BACKWARD_IF_NONE",
    "POP_JUMP_BACKWARD_IF_NOT_NONE", "ENTER_EXECUTOR", "NOP", "JUMP_FORWARD", NULL };
  static const char *const back[] = { "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT",
    "POP_JUMP_BACKWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_TRUE", "POP_JUMP_BACKWARD_IF_NONE",
    "POP_JUMP_BACKWARD_IF_NOT_NONE", NULL };  /* the last four: 3.11 */
  for (int i = 0; breaker[i]; i++) mark(opmap, breaker[i], g_breaker, 1);
  static const char *const quiet[] = { "COPY", "SWAP", "PUSH_EXC_INFO",
    "POP_EXCEPT", "RERAISE", "WITH_EXCEPT_START", "CHECK_EXC_MATCH", "CHECK_EG_MATCH",
    "JUMP_FORWARD", "JUMP", "JUMP_NO_INTERRUPT", "CACHE", "EXTENDED_ARG", "RESUME",
    "END_SEND", "CLEANUP_THROW", "RETURN_GENERATOR", "INTERPRETER_EXIT", NULL };
  static const char *const after[] = { "CALL", "CALL_KW", "CALL_FUNCTION_EX",
    "CALL_INTRINSIC_1", "CALL_INTRINSIC_2", "BEFORE_WITH", "FOR_ITER", "RETURN_VALUE",
    "RETURN_CONST", "YIELD_VALUE", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT",
    "POP_JUMP_BACKWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_TRUE", "POP_JUMP_BACKWARD_IF_NONE",
    "POP_JUMP_BACKWARD_IF_NOT_NONE", NULL };
  for (int i = 0; after[i]; i++) mark(opmap, after[i], g_after, 1);
  for (int i = 0; back[i]; i++) mark(opmap, back[i], g_back, 1);
  for (int i = 0; quiet[i]; i++) mark(opmap, quiet[i], g_quiet, 1);
  PyObject *copy = PyDict_GetItemString(opmap, "COPY");
  pyctx_op_copy = copy ? (int)PyLong_AsLong(copy) : -1;
  Py_DECREF(opmap);
  return 0;
}

/* the base opcode at byte offset `off` of code, or -1 */
static int opcode_at(PyCodeObject *code, long off) {
  PyObject *b = PyCode_GetCode(code);
  if (!b) { PyErr_Clear(); return -1; }
  int op = off >= 0 && off < PyBytes_GET_SIZE(b) ? (unsigned char)PyBytes_AS_STRING(b)[off] : -1;
  Py_DECREF(b);
  return op;
}

/* The handler (byte offset) that covers byte offset `off` of code in its
** exception table, -1 for none. The table is flat: one handler per range. */
long pyctx_handler_of(PyCodeObject *code, long off) {
  PyObject *t = code->co_exceptiontable;
  if (!t || !PyBytes_Check(t)) return -1;
  const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(t);
  const unsigned char *end = p + PyBytes_GET_SIZE(t);
  long v[4];
  while (p < end) {
    for (int i = 0; i < 4; i++) {  /* start, length, target, depth/lasti: varints */
      if (p >= end) return -1;
      unsigned char b = *p++;
      long x = b & 63;
      while ((b & 64) && p < end) { b = *p++; x = (x << 6) | (b & 63); }
      v[i] = x;
    }
    if (off >= 2 * v[0] && off < 2 * (v[0] + v[1])) return 2 * v[2];
  }
  return -1;
}

/* The next instruction after the one at `off` (inline caches skipped). */
static long next_instruction(PyObject *code_bytes, long off) {
  const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(code_bytes);
  long n = PyBytes_GET_SIZE(code_bytes);
  for (off += 2; off < n && b[off] == 0; off += 2) {}  /* CACHE is opcode 0 */
  return off;
}

/* Whether `off` is a hole in the exception table: covered by no handler
** while the instructions on both sides of it are. CPython leaves such holes
** at a loop's head (the NOP a backward jump lands on, before a `try`,
** gh-108214) and at the jump that closes a loop (gh-139622); raised there,
** the stop would pass every handler of the frame, the scope's `with`
** included. An uncovered run (code outside any `try`) is no hole: a stop
** raised there leaves the frame, as it should. */
static int table_hole(PyCodeObject *code, long off) {
  if (pyctx_handler_of(code, off) >= 0) return 0;
  PyObject *b = PyCode_GetCode(code);
  if (!b) { PyErr_Clear(); return 1; }
  long next = next_instruction(b, off);
  int hole = off >= 2 && pyctx_handler_of(code, off - 2) >= 0 &&
             next < PyBytes_GET_SIZE(b) && pyctx_handler_of(code, next) >= 0;
  Py_DECREF(b);
  return hole;
}

int pyctx_at_eval_breaker(PyFrameObject *f) {
  if (!f) return 0;
  PyCodeObject *code = PyFrame_GetCode(f);
  int op = opcode_at(code, PyFrame_GetLasti(f));
  Py_DECREF(code);
  return op >= 0 && g_breaker[op];
}

/* Raises this thread's stop from an instruction event; disarms unless the
** stop waits for a place out of the reach of the handler that caught the
** last one (a stop not due yet arms again by timer). */
static int deliver_here(PyObject *mod, ithread_t *ith, PyObject *code, int off) {
  int r = pyctx_try_raise(PyModule_GetState(mod), ith, PYCTX_RAISE_EVENT, code, off);
  if (r == 0) pyctx_disarm(ith);
  return r;
}

/* Disarming may call into Python: keep an exception being raised. */
#define KEEP_ERROR(...) do { PyObject *et_, *ev_, *tb_; PyErr_Fetch(&et_, &ev_, &tb_); \
  __VA_ARGS__; PyErr_Clear(); PyErr_Restore(et_, ev_, tb_); } while (0)

/* Whether an instruction event is a place to raise at. The places are
** those where CPython's own asynchronous exceptions land (its eval breaker
** runs after a call returns, at a loop's backward jump, at a function's
** start): the instruction after a call (or a return into the caller, or a
** `with`'s __enter__), and a loop's backward jump, where the exception table
** is exact (trace and monitoring events come before the instruction runs).
** Never at a hole in the table (a loop's head before a `try`, gh-108214; the
** jump that closes a `while cond:` loop, gh-139622): the next instruction
** takes the turn. Raising at an arbitrary instruction could skip a `with`'s
** __exit__ (between its block and the call of its __exit__) or unbalance a
** handler's bookkeeping (PUSH_EXC_INFO, POP_EXCEPT). */
static int safe_point(ithread_t *ith, PyObject *code, int off) {
  int op = opcode_at((PyCodeObject *)code, off);
  if (op < 0) return 0;
  int safe = ith->next_safe;
  ith->next_safe = g_after[op];
  if (g_back[op]) safe = 1;  /* the jump that closes a loop, where the table covers it */
  else if (!safe || g_quiet[op]) return 0;
  if (table_hole((PyCodeObject *)code, off)) {
    ith->next_safe = 1;  /* the instruction after the hole takes its turn */
    return 0;
  }
  return 1;
}

#if PY_VERSION_HEX < 0x030C0000
/* ---- 3.11: a C trace function on the one thread, chained to any tracer
** already there (a debugger, coverage), which gets its events meanwhile.
** Line events come at new lines and backward jumps, but not in a loop of
** one jump (`while 1: pass`): the frames of the stack also get opcode
** events while armed. ---- */

static int flagged(ithread_t *ith, PyFrameObject *f) {
  for (Py_ssize_t i = 0; ith->armed_codes && i < PyList_GET_SIZE(ith->armed_codes); i++)
    if (PyList_GET_ITEM(ith->armed_codes, i) == (PyObject *)f) return 1;
  return 0;
}

static int trace_cb(PyObject *obj, PyFrameObject *f, int what, PyObject *arg) {
  ithread_t *ith = pyctx_ith();
  if (!ith || !ith->armed) return 0;
  if (ith->trace_prev && !(what == PyTrace_OPCODE && flagged(ith, f))) {
    int r = ith->trace_prev(ith->trace_prev_obj, f, what, arg);
    if (r) return r;
  }
  /* opcode events on the frames of the stack, call events for new frames
  ** (generators resuming included); line events would repeat an opcode */
  if (what != PyTrace_CALL && what != PyTrace_OPCODE) return 0;
  PyCodeObject *code = PyFrame_GetCode(f);
  int off = PyFrame_GetLasti(f), r = 0;
  if (what == PyTrace_CALL || safe_point(ith, (PyObject *)code, off))
    r = deliver_here(PyCFunction_GET_SELF(obj), ith, (PyObject *)code, off) < 0 ? -1 : 0;
  Py_DECREF(code);
  return r;
}

void pyctx_arm(ctxstate *st, ithread_t *ith) {
  if (ith->armed || ith->dead || !ith->tstate) return;
  PyThreadState *ts = ith->tstate;
  if (ts->c_tracefunc != trace_cb) {
    ith->trace_prev = ts->c_tracefunc;
    ith->trace_prev_obj = Py_XNewRef(ts->c_traceobj);
    int rc;
    KEEP_ERROR(rc = _PyEval_SetTrace(ts, trace_cb, st->wake));
    if (rc < 0) {
      ith->trace_prev = NULL;
      Py_CLEAR(ith->trace_prev_obj);
      return;
    }
  }
  ith->armed = 1;
  ith->next_safe = 1;  /* paused at an eval breaker, or in a call: what comes next is safe */
  KEEP_ERROR({
    PyObject *frames = PyList_New(0);
    PyFrameObject *f = frames ? PyThreadState_GetFrame(ts) : NULL;
    while (f) {
      PyObject *on = PyObject_GetAttrString((PyObject *)f, "f_trace_opcodes");
      if (on == Py_False && PyObject_SetAttrString((PyObject *)f, "f_trace_opcodes", Py_True) == 0)
        (void)PyList_Append(frames, (PyObject *)f);
      Py_XDECREF(on);
      PyFrameObject *b = PyFrame_GetBack(f);
      Py_DECREF(f);
      f = b;
    }
    ith->armed_codes = frames;
  });
}

void pyctx_disarm(ithread_t *ith) {
  if (!ith->armed) return;
  ith->armed = 0;
  PyObject *prev = ith->trace_prev_obj, *frames = ith->armed_codes;
  Py_tracefunc fn = ith->trace_prev;
  ith->trace_prev = NULL;
  ith->trace_prev_obj = NULL;
  ith->armed_codes = NULL;
  KEEP_ERROR({
    for (Py_ssize_t i = 0; frames && i < PyList_GET_SIZE(frames); i++)
      (void)PyObject_SetAttrString(PyList_GET_ITEM(frames, i), "f_trace_opcodes", Py_False);
    /* a tracer set meanwhile by the code itself stays */
    if (ith->tstate && !ith->dead && ith->tstate->c_tracefunc == trace_cb)
      (void)_PyEval_SetTrace(ith->tstate, fn, prev);
  });
  Py_XDECREF(frames);
  Py_XDECREF(prev);
}

void pyctx_deliver_shutdown(void) {}

PyObject *pyctx_on_instruction(PyObject *mod, PyObject *const *a, Py_ssize_t n) {
  (void)mod; (void)a; (void)n;
  Py_RETURN_NONE;
}
PyObject *pyctx_on_start(PyObject *mod, PyObject *const *a, Py_ssize_t n) {
  (void)mod; (void)a; (void)n;
  Py_RETURN_NONE;
}

#else
/* ---- 3.12+: sys.monitoring with a tool id of our own. INSTRUCTION events
** on the code objects of the thread's stack (local events: other code runs
** at full speed) and PY_START/PY_RESUME everywhere (it may call or resume
** other code first), only while a stop waits for delivery. ---- */

static PyObject *g_mon;          /* sys.monitoring */
static int g_tool = -1;
static long g_ev_instruction, g_ev_start;
static PyObject *g_code_counts;  /* {id(code): [code, threads armed on it]} */
static int g_armed_threads;

static long event(PyObject *events, const char *name) {
  PyObject *v = PyObject_GetAttrString(events, name);
  long r = v ? PyLong_AsLong(v) : -1;
  Py_XDECREF(v);
  return r;
}

static int mon_init(ctxstate *st) {
  if (g_tool >= 0) return 0;
  if (!g_mon) {
    PyObject *sys = PyImport_ImportModule("sys");
    g_mon = sys ? PyObject_GetAttrString(sys, "monitoring") : NULL;
    Py_XDECREF(sys);
    if (!g_mon) return -1;
  }
  PyObject *events = PyObject_GetAttrString(g_mon, "events");
  if (!events) return -1;
  g_ev_instruction = event(events, "INSTRUCTION");
  long start = event(events, "PY_START"), resume = event(events, "PY_RESUME");
  Py_DECREF(events);
  if (g_ev_instruction < 0 || start < 0 || resume < 0) return -1;
  g_ev_start = start | resume;
  if (!g_code_counts && !(g_code_counts = PyDict_New())) return -1;
  /* ids 3 and 4 have no assigned use; the others only if they are free */
  static const int ids[] = { 4, 3, 2, 0, 1, 5 };
  for (int i = 0; i < 6 && g_tool < 0; i++) {
    PyObject *r = PyObject_CallMethod(g_mon, "use_tool_id", "is", ids[i], "ctx");
    if (r) { Py_DECREF(r); g_tool = ids[i]; }
    else if (PyErr_ExceptionMatches(PyExc_ValueError)) PyErr_Clear();
    else return -1;
  }
  if (g_tool < 0) {
    PyErr_SetString(PyExc_RuntimeError, "no sys.monitoring tool id is free for ctx");
    return -1;
  }
  PyObject *r1 = PyObject_CallMethod(g_mon, "register_callback", "ilO", g_tool,
                                     g_ev_instruction, st->on_instruction);
  PyObject *r2 = r1 ? PyObject_CallMethod(g_mon, "register_callback", "ilO", g_tool,
                                          start, st->on_start) : NULL;
  PyObject *r3 = r2 ? PyObject_CallMethod(g_mon, "register_callback", "ilO", g_tool,
                                          resume, st->on_start) : NULL;
  Py_XDECREF(r1);
  Py_XDECREF(r2);
  Py_XDECREF(r3);
  if (!r3) {
    PyObject *r = PyObject_CallMethod(g_mon, "free_tool_id", "i", g_tool);
    Py_XDECREF(r);
    g_tool = -1;
    return -1;
  }
  return 0;
}

static int set_events(PyObject *code, long events) {
  PyObject *r = code ? PyObject_CallMethod(g_mon, "set_local_events", "iOl", g_tool, code, events)
                     : PyObject_CallMethod(g_mon, "set_events", "il", g_tool, events);
  Py_XDECREF(r);
  return r ? 0 : -1;
}

/* Counts one more (delta 1) or one fewer (-1) armed thread on code, and
** turns its INSTRUCTION events on or off as the count leaves or reaches 0. */
static int count_code(PyObject *code, int delta) {
  PyObject *key = PyLong_FromVoidPtr(code);
  if (!key) return -1;
  PyObject *entry = PyDict_GetItemWithError(g_code_counts, key);  /* borrowed */
  long n = entry ? PyLong_AsLong(PyList_GET_ITEM(entry, 1)) : 0;
  int rc = 0;
  if (n + delta <= 0) {
    if (entry) rc = PyDict_DelItem(g_code_counts, key) | set_events(code, 0);
  } else {
    PyObject *cnt = PyLong_FromLong(n + delta);
    PyObject *e = cnt ? PyList_New(2) : NULL;
    if (e) {
      PyList_SET_ITEM(e, 0, Py_NewRef(code));
      PyList_SET_ITEM(e, 1, cnt);
      rc = PyDict_SetItem(g_code_counts, key, e);
      Py_DECREF(e);
      if (!rc && n == 0) rc = set_events(code, g_ev_instruction);
    } else {
      Py_XDECREF(cnt);
      rc = -1;
    }
  }
  Py_DECREF(key);
  return rc;
}

static void arm(ctxstate *st, ithread_t *ith) {
  if (mon_init(st) < 0) return;
  PyObject *codes = PyList_New(0);
  if (!codes) return;
  PyFrameObject *f = PyThreadState_GetFrame(ith->tstate);
  while (f) {
    PyObject *code = (PyObject *)PyFrame_GetCode(f);
    int seen = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(codes) && !seen; i++)
      seen = PyList_GET_ITEM(codes, i) == code;
    if (!seen && (PyList_Append(codes, code) < 0 || count_code(code, 1) < 0)) {
      Py_DECREF(code);
      Py_DECREF(f);
      break;
    }
    Py_DECREF(code);
    PyFrameObject *b = PyFrame_GetBack(f);
    Py_DECREF(f);
    f = b;
  }
  ith->armed_codes = codes;
  ith->armed = 1;
  ith->next_safe = 1;  /* paused at an eval breaker, or in a call: what comes next is safe */
  if (g_armed_threads++ == 0) (void)set_events(NULL, g_ev_start);
}

void pyctx_arm(ctxstate *st, ithread_t *ith) {
  if (ith->armed || ith->dead || !ith->tstate) return;
  KEEP_ERROR(arm(st, ith));
}

static void disarm(ithread_t *ith) {
  PyObject *codes = ith->armed_codes;
  ith->armed_codes = NULL;
  for (Py_ssize_t i = 0; codes && i < PyList_GET_SIZE(codes); i++)
    (void)count_code(PyList_GET_ITEM(codes, i), -1);
  Py_XDECREF(codes);
  if (--g_armed_threads == 0) (void)set_events(NULL, 0);
}

void pyctx_disarm(ithread_t *ith) {
  if (!ith->armed) return;
  ith->armed = 0;
  KEEP_ERROR(disarm(ith));
}

void pyctx_deliver_shutdown(void) {
  if (g_tool < 0 || !g_mon) return;
  KEEP_ERROR({
    (void)set_events(NULL, 0);
    PyObject *r = PyObject_CallMethod(g_mon, "free_tool_id", "i", g_tool);
    Py_XDECREF(r);
  });
  g_tool = -1;
}

/* _on_instruction(code, offset): INSTRUCTION events. */
PyObject *pyctx_on_instruction(PyObject *mod, PyObject *const *a, Py_ssize_t n) {
  ithread_t *ith = pyctx_ith();
  if (!ith || !ith->armed || n < 2 || !PyCode_Check(a[0])) Py_RETURN_NONE;
  int off = (int)PyLong_AsLong(a[1]);
  if (!safe_point(ith, a[0], off)) Py_RETURN_NONE;
  if (deliver_here(mod, ith, a[0], off) < 0) return NULL;
  Py_RETURN_NONE;
}

/* _on_start(code, offset): PY_START and PY_RESUME events. */
PyObject *pyctx_on_start(PyObject *mod, PyObject *const *a, Py_ssize_t n) {
  ithread_t *ith = pyctx_ith();
  if (!ith || !ith->armed) Py_RETURN_NONE;
  if (deliver_here(mod, ith, n >= 2 ? a[0] : NULL, n >= 2 ? (int)PyLong_AsLong(a[1]) : 0) < 0)
    return NULL;
  Py_RETURN_NONE;
}
#endif
