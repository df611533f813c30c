/* docs.h — the docstrings of the ctx._ctx module's functions and Context
** methods (what help() shows): kept here so the method tables stay short. */
#ifndef PYCTX_DOCS_H
#define PYCTX_DOCS_H

/* the rules every time argument follows, repeated where one is taken */
#define DOC_SECONDS \
  "seconds: int, float or datetime.timedelta; 0 or less means already passed.\n" \
  "  TypeError for any other type (a bool included), ValueError for NaN.\n"
#define DOC_WHEN \
  "when: epoch seconds (int or float, as time.time() gives them) or a\n" \
  "  datetime (a naive one is local time). TypeError for any other type,\n" \
  "  ValueError for NaN.\n"
#define DOC_PARENT \
  "parent: a ctx.Context; TypeError for anything else (None included).\n"
#define DOC_PAIR \
  "Returns (c, cancel): cancel() ends c and its descendants (idempotent).\n" \
  "Call it when the work is done, as in Go, or the context lives until its\n" \
  "parent ends.\n"

#define DOC_BACKGROUND "background($module, /)\n--\n\n" \
  "The root context: never done, no deadline, no values; the same object\n" \
  "every call. ctx.current() outside every scope."
#define DOC_TODO "todo($module, /)\n--\n\n" \
  "A root context like background(), for code not yet given a context."
#define DOC_WITH_CANCEL "with_cancel($module, /, parent)\n--\n\n" \
  "Go's WithCancel: a child of parent, done when cancel() is called or\n" \
  "parent is done (c.err() is then ctx.Canceled, or parent's error).\n\n" \
  DOC_PARENT DOC_PAIR
#define DOC_WITH_CANCEL_CAUSE "with_cancel_cause($module, /, parent)\n--\n\n" \
  "Go's WithCancelCause: as with_cancel, but cancel(cause=None) records an\n" \
  "exception that ctx.cause(c) returns and c.check() chains as __cause__.\n\n" \
  DOC_PARENT DOC_PAIR \
  "cancel(cause) raises TypeError unless cause is an exception or None."
#define DOC_WITH_DEADLINE "with_deadline($module, /, parent, when)\n--\n\n" \
  "Go's WithDeadline: a child of parent that is also done, with\n" \
  "ctx.DeadlineExceeded, at `when` (not later than parent's deadline).\n\n" \
  DOC_PARENT DOC_WHEN DOC_PAIR
#define DOC_WITH_DEADLINE_CAUSE "with_deadline_cause($module, /, parent, when, cause)\n--\n\n" \
  "As with_deadline; `cause` (an exception or None) is what ctx.cause(c)\n" \
  "returns once the deadline passed.\n\n" DOC_PARENT DOC_WHEN DOC_PAIR
#define DOC_WITH_TIMEOUT "with_timeout($module, /, parent, seconds)\n--\n\n" \
  "Go's WithTimeout: with_deadline(parent, now + seconds).\n\n" \
  DOC_PARENT DOC_SECONDS DOC_PAIR
#define DOC_WITH_TIMEOUT_CAUSE "with_timeout_cause($module, /, parent, seconds, cause)\n--\n\n" \
  "As with_timeout; `cause` (an exception or None) is what ctx.cause(c)\n" \
  "returns once the timeout passed.\n\n" DOC_PARENT DOC_SECONDS DOC_PAIR
#define DOC_WITH_VALUE "with_value($module, /, parent, key, value)\n--\n\n" \
  "Go's WithValue: a child of parent where c.value(key) is value (the\n" \
  "innermost binding wins; keys compare with ==). Not cancelable itself.\n\n" \
  DOC_PARENT \
  "key: any hashable object but None (TypeError otherwise).\n" \
  "Returns the new Context."
#define DOC_WITHOUT_CANCEL "without_cancel($module, /, parent)\n--\n\n" \
  "Go's WithoutCancel: parent's values, but never done, with no deadline\n" \
  "and no cause.\n\n" DOC_PARENT "Returns the new Context."
#define DOC_AFTER_FUNC "after_func($module, /, c, fn)\n--\n\n" \
  "Go's AfterFunc: runs fn() once, after c is done (soon, if it already is),\n" \
  "on a ctx thread that holds the GIL, never the timer thread, in no set\n" \
  "order (as in Go); an exception fn raises goes to\n" \
  "sys.unraisablehook. Callbacks whose context ended before interpreter exit\n" \
  "still run then (the exit waits for them at most 1 s in all). A pending\n" \
  "registration keeps c alive.\n\n" \
  "c: a ctx.Context; fn: a callable taking no arguments (TypeError otherwise).\n" \
  "Returns stop: stop() -> bool, True if that call kept fn from running."
#define DOC_CAUSE "cause($module, /, c)\n--\n\n" \
  "Go's Cause: the exception recorded when c (or the ancestor that ended it)\n" \
  "was canceled with a cause; c.err() when there was none; None while c is\n" \
  "not done. TypeError unless c is a ctx.Context."
#define DOC_CURRENT "current($module, /)\n--\n\n" \
  "The context of the innermost scope (with / async with ctx.scope, timeout,\n" \
  "deadline) of this thread or asyncio task; background() outside every\n" \
  "scope. Threads and tasks each see their own (it is a contextvars value)."

#define DOC_SCOPE_COMMON \
  "Use:\n" \
  "  with ... as c:   c (a ScopeContext: a Context with cancel(cause=None)) is\n" \
  "      ctx.current() inside the block and is canceled when the block exits;\n" \
  "      exceptions from the block pass through unchanged.\n" \
  "  async with ... as c:   the same; when c ends, the running asyncio task is\n" \
  "      cancelled and the block raises c.err() (ctx.DeadlineExceeded or\n" \
  "      ctx.Canceled) instead of CancelledError.\n" \
  "  as a decorator, @ctx.timeout(...) on a function or coroutine function:\n" \
  "      each call runs in a fresh scope.\n" \
  "A scope object is entered once at a time (RuntimeError otherwise).\n\n" \
  "parent: a ctx.Context, or None (the default) for ctx.current() at the\n" \
  "  moment the block is entered. TypeError for anything else.\n"
#define DOC_INTERRUPT \
  "interrupt: if true, once the context ends for any reason (deadline, cancel,\n" \
  "  a parent's end) while this thread is inside the block, c.err()'s type is\n" \
  "  raised in this thread at its next bytecode, with the cause as __cause__:\n" \
  "  code that never checks is stopped too, and so are ctx.sleep, waits and\n" \
  "  ctx.run_process (on the main thread also blocking calls such as\n" \
  "  time.sleep). It is raised again while the thread stays in the block (a\n" \
  "  broad except cannot swallow it) and never after the block exits. It may\n" \
  "  land in any line, a finally or __exit__ included: protect cleanup with\n" \
  "  `with ctx.shield():`. Threads only: `async with` refuses it (ValueError).\n"
#define DOC_SCOPE "scope($module, /, parent=None)\n--\n\n" \
  "A cancel scope: a child of parent that is canceled when the block exits,\n" \
  "or earlier with c.cancel(cause=None).\n\n" DOC_SCOPE_COMMON \
  "Raises nothing itself; code inside sees ctx.Canceled from c.check(),\n" \
  "ctx.sleep and the like once c is canceled."
#define DOC_TIMEOUT "timeout($module, /, seconds, parent=None, *, interrupt=False)\n--\n\n" \
  "A scope whose context ends `seconds` after the block is entered:\n\n" \
  "    with ctx.timeout(5) as c:\n" \
  "        ctx.sleep(10)          # raises ctx.DeadlineExceeded after 5 s\n\n" \
  DOC_SCOPE_COMMON DOC_SECONDS DOC_INTERRUPT \
  "Raises, inside the block: ctx.DeadlineExceeded (also a TimeoutError) once\n" \
  "the time is up, ctx.Canceled once canceled, from c.check(), ctx.sleep,\n" \
  "ctx.run_process, async with and interrupt=True."
#define DOC_DEADLINE "deadline($module, /, when, parent=None, *, interrupt=False)\n--\n\n" \
  "A scope whose context ends at `when`; as ctx.timeout otherwise:\n\n" \
  "    with ctx.deadline(time.time() + 5, interrupt=True):\n" \
  "        crunch()               # stopped with ctx.DeadlineExceeded\n\n" \
  DOC_SCOPE_COMMON DOC_WHEN DOC_INTERRUPT \
  "Raises, inside the block: ctx.DeadlineExceeded once `when` passed,\n" \
  "ctx.Canceled once canceled (see ctx.timeout)."
#define DOC_SLEEP "sleep($module, /, seconds, c=None)\n--\n\n" \
  "Sleeps `seconds`, the GIL released, or until c (default: ctx.current())\n" \
  "is done, whichever comes first.\n\n" DOC_SECONDS \
  "c: a ctx.Context or None; TypeError for anything else.\n" \
  "Raises c.err() (ctx.Canceled or ctx.DeadlineExceeded, with the cause as\n" \
  "__cause__) if c ends first; KeyboardInterrupt on Ctrl-C."

/* Context methods */
#define DOC_C_DONE "done($self, /)\n--\n\n" \
  "True once the context is done (canceled or past its deadline); never blocks."
#define DOC_C_WAIT "wait($self, /, timeout=None)\n--\n\n" \
  "Blocks, the GIL released, until the context is done or `timeout` seconds\n" \
  "(int, float or timedelta; None waits for ever) passed. Returns True once\n" \
  "done, False on timeout. Ctrl-C raises KeyboardInterrupt; an interrupting\n" \
  "scope of this thread raises its stop."
#define DOC_C_ERR "err($self, /)\n--\n\n" \
  "None while not done, then ctx.Canceled or ctx.DeadlineExceeded (the same\n" \
  "instance each call). Never raises."
#define DOC_C_CAUSE "cause($self, /)\n--\n\n" \
  "The exception given to the cancel (or deadline) that ended the context,\n" \
  "err() when none was given, None while not done."
#define DOC_C_CHECK "check($self, /)\n--\n\n" \
  "Returns None while not done; then raises err() (ctx.Canceled or\n" \
  "ctx.DeadlineExceeded), with the cause as __cause__ when there is one."
#define DOC_C_DEADLINE "deadline($self, /)\n--\n\n" \
  "The deadline, own or inherited, in epoch seconds (float), or None."
#define DOC_C_REMAINING "remaining($self, /)\n--\n\n" \
  "Seconds left until the deadline (0.0 once passed), or None without one."
#define DOC_C_VALUE "value($self, /, key, default=None)\n--\n\n" \
  "The value bound to key by the innermost with_value on the way to the\n" \
  "root (keys compare with ==), else default. TypeError for a None or\n" \
  "unhashable key."
#define DOC_C_FILENO "fileno($self, /)\n--\n\n" \
  "A descriptor that becomes readable once the context is done and stays\n" \
  "so (for select, selectors, asyncio's add_reader). Owned by the context:\n" \
  "never read from or close it. OSError when none can be made."
#define DOC_SC_CANCEL "cancel($self, /, cause=None)\n--\n\n" \
  "Ends the scope's context now (idempotent), recording cause (an exception,\n" \
  "or None for the plain ctx.Canceled). TypeError for another cause type."
#define DOC_CONTEXT_TYPE \
  "A context: cancelation, a deadline and values, as Go's context.Context.\n\n" \
  "Made by ctx.background(), ctx.with_cancel() and friends, or a scope;\n" \
  "not instantiable directly (TypeError). str(c) is Go's String(), e.g.\n" \
  "context.Background.WithCancel; it never fails (NUL characters and lone\n" \
  "surrogates in values are escaped). Weak-referenceable."
#define DOC_SCOPE_TYPE \
  "What ctx.scope, ctx.timeout and ctx.deadline return: use it with `with`,\n" \
  "`async with` or as a decorator (see help(ctx.timeout)). .context is the\n" \
  "ScopeContext while inside, else None; .interrupt is the interrupt flag."
#define DOC_SCOPECONTEXT_TYPE \
  "The Context of a scope (`with ctx.timeout(5) as c`): a Context with\n" \
  "cancel(cause=None)."

#endif
