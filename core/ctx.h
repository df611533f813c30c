/* ctx.h — Go's context for C: a tree of cancelable, deadline-bound contexts.
** The one public header of the ctx core; every function is documented here. */
#ifndef CTX_H
#define CTX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; ctx_version() gives the library's. This is the
** one place the project's version is written: the Makefile, setup.py, the
** rockspec and both packages read it from here. */
#define CTX_VERSION_MAJOR 0
#define CTX_VERSION_MINOR 2
#define CTX_VERSION_PATCH 0
#define CTX_VERSION_STRING "0.2.0"

/* Only the functions below are exported from libctx.so; the core's internals
** and everything a binding compiles in stay hidden. */
#ifndef CTX_API
#  if defined(CTX_BUILD_SHARED) && (defined(__GNUC__) || defined(__clang__))
#    define CTX_API __attribute__((visibility("default")))
#  else
#    define CTX_API
#  endif
#endif

/* ---- conventions ----
** Return codes: 0 is success; failures are negative errno-style values.
** NULL: a NULL context (or handle) is never dereferenced. Functions that return
** an int return CTX_EINVAL for it (ctx_done and ctx_deadline included: test
** them with `== 1`), those that return a pointer return NULL, ctx_err returns
** CTX_ERR_INVALID and ctx_kind CTX_KIND_INVALID; the void ones do nothing.
** References: one ctx_unref too many is a use after free, as for free(); a
** build with -DCTX_DEBUG poisons freed nodes and aborts with a message when a
** freed context is used again (tests build so). Release builds do not check.
** Threads: every function may be called from any thread. Async-signal-safe:
** ctx_done, ctx_err, ctx_kind, ctx_parent, ctx_deadline, ctx_remaining,
** ctx_now, ctx_poll_timeout, ctx_err_string, ctx_strerror, ctx_version.
** Blocking: only ctx_wait, ctx_wait_any, ctx_proc_wait, ctx_proc_terminate,
** ctx_queue_pop and ctx_settle block; ctx_cancel and friends may wait briefly
** for another thread that is ending the same subtree (see ctx_cancel). */
#define CTX_OK          0
#define CTX_EINTR      (-4)    /* a signal handler ran during a wait */
#define CTX_EAGAIN     (-11)   /* no thread could be started; nothing was changed */
#define CTX_ENOMEM     (-12)   /* out of memory; nothing was changed */
#define CTX_EINVAL     (-22)   /* bad argument */
#define CTX_EMFILE     (-24)   /* no file descriptor could be made */
#define CTX_ECLOSED    (-32)   /* the queue was closed */
#define CTX_ECHILD     (-10)   /* no such child process (or it was reaped elsewhere) */
#define CTX_ETIMEDOUT  (-110)  /* a wait's timeout passed first */

/* What a context's Err() reports. */
typedef enum ctx_err {
  CTX_ERR_INVALID = -1,    /* a NULL context */
  CTX_ERR_NONE = 0,        /* not done */
  CTX_ERR_CANCELED = 1,    /* "context canceled" */
  CTX_ERR_DEADLINE = 2     /* "context deadline exceeded" */
} ctx_err_t;

/* How a context was made (its String() form follows from it). */
typedef enum ctx_kind {
  CTX_KIND_INVALID = -1,   /* a NULL context */
  CTX_KIND_BACKGROUND, CTX_KIND_TODO, CTX_KIND_CANCEL, CTX_KIND_DEADLINE,
  CTX_KIND_VALUE, CTX_KIND_WITHOUT_CANCEL
} ctx_kind_t;

/* A deadline or timeout that never comes: gives a plain WithCancel child. */
#define CTX_FOREVER INT64_MAX

typedef struct ctx ctx_t;              /* opaque, reference counted */
typedef struct ctx_after ctx_after_t;  /* an after_func registration and its stop handle */
typedef struct ctx_queue ctx_queue_t;  /* a queue of callbacks run by the binding's threads */
typedef struct ctx_proc ctx_proc_t;    /* a supervised child process */

/* Releases a binding-owned object (key, value, cause, callback argument).
** Called exactly once per object handed to the core, possibly on another
** thread (the timer thread included), never while the core holds a lock. */
typedef void (*ctx_release_fn)(void *obj);

/* Key equality for ctx_value: 1 equal, 0 not, negative to abort the lookup. */
typedef int (*ctx_key_eq_fn)(const void *wanted, const void *bound, void *ud);

/* Formats the "key, value" part of a WithValue node's String(); returns a
** malloc'd string, or NULL to abort ctx_string. */
typedef char *(*ctx_fmt_fn)(const void *key, const void *value, void *ud);

/* An after_func callback. */
typedef void (*ctx_func_fn)(void *arg);

/* Where after_func callbacks run. submit() is called once per callback that
** must run, from whichever thread made the context done (the timer thread
** included), never under a core lock; it must hand `a` on quickly and make
** sure ctx_after_run(a) (or ctx_after_discard(a)) is called exactly once
** later. An executor must outlive every registration made with it; the
** queues below are counted by the core and need no such care. */
typedef struct ctx_executor {
  void (*submit)(struct ctx_executor *self, ctx_after_t *a);
} ctx_executor_t;

/* ---- errors, clocks, time arithmetic ---- */

/* Go's message for an error: "context canceled", "context deadline exceeded", "". */
CTX_API const char *ctx_err_string(ctx_err_t err);
/* A short message for a CTX_E* return code. */
CTX_API const char *ctx_strerror(int code);
/* The library's version, "MAJOR.MINOR.PATCH". */
CTX_API const char *ctx_version(void);
/* Nanoseconds on CLOCK_MONOTONIC: the scale of every deadline in this API. */
CTX_API int64_t ctx_now(void);
/* Seconds since the epoch (the wall clock), as time.time() gives them. */
CTX_API double ctx_wall_now(void);
/* Converts epoch seconds to the monotonic deadline scale, rounding up, with one
** offset fixed per process; +inf and NaN give CTX_FOREVER (bindings reject NaN
** first), -inf gives -CTX_FOREVER. Exact without long double: see below. */
CTX_API int64_t ctx_wall_to_mono(double epoch_seconds);
/* Converts a monotonic deadline back to epoch seconds: the exact inverse of
** ctx_wall_to_mono for every time from April 1970 on (where doubles are
** spaced wider than 2 ns), computed in integers, so it holds on platforms
** whose long double is a double. CTX_FOREVER gives +inf. */
CTX_API double ctx_mono_to_wall(int64_t mono_ns);
/* Converts a duration in seconds to nanoseconds, rounding up and saturating at
** CTX_FOREVER (also for +inf and NaN) and -CTX_FOREVER (-inf). */
CTX_API int64_t ctx_seconds_to_ns(double seconds);
/* ctx_now() + timeout_ns, saturating: CTX_FOREVER for a timeout that reaches
** past it, -CTX_FOREVER at the other end. A deadline at or before now has passed. */
CTX_API int64_t ctx_deadline_from_timeout(int64_t timeout_ns);
/* Nanoseconds left until c's deadline (its own or inherited): CTX_FOREVER if
** it has none, 0 once it has passed (whatever the deadline's value). */
CTX_API int64_t ctx_remaining(const ctx_t *c);
/* A poll() timeout for a wait of `ns`: milliseconds rounded up (so a wait
** never wakes early and spins), -1 for CTX_FOREVER, 0 for ns <= 0, INT_MAX at most. */
CTX_API int ctx_poll_timeout(int64_t ns);

/* Replaces malloc/free for everything the core allocates (tests use it to
** inject out-of-memory). Call before creating any context. NULL restores. */
CTX_API void ctx_set_allocator(void *(*alloc)(size_t), void (*dealloc)(void *));

/* ---- roots and references ---- */

/* The root contexts: static, never done, no values, no deadline. */
CTX_API ctx_t *ctx_background(void);
CTX_API ctx_t *ctx_todo(void);
/* Takes one more reference and returns c. */
CTX_API ctx_t *ctx_ref(ctx_t *c);
/* Drops a reference. The last one frees c: it leaves its parent's child set,
** its timer is removed, and its values and cause are released. */
CTX_API void ctx_unref(ctx_t *c);

/* ---- constructors: on success *out holds a new reference ---- */

/* WithCancel: a child done when ctx_cancel is called or parent is done. */
CTX_API int ctx_with_cancel(ctx_t *parent, ctx_t **out);
/* WithDeadline(Cause): also done with CTX_ERR_DEADLINE at `deadline` (ns on
** the ctx_now scale). A deadline later than the parent's, or CTX_FOREVER,
** gives a plain WithCancel child; one at or before now gives a context done at
** creation. `cause` (may be NULL) becomes Cause() when the deadline fires; it
** is owned by the core on success (released with `release`), not on failure.
** CTX_EAGAIN when the timer thread cannot be started. */
CTX_API int ctx_with_deadline(ctx_t *parent, int64_t deadline, ctx_t **out);
CTX_API int ctx_with_deadline_cause(ctx_t *parent, int64_t deadline, void *cause,
                                    ctx_release_fn release, ctx_t **out);
/* WithTimeout(Cause): WithDeadline at ctx_deadline_from_timeout(timeout_ns). */
CTX_API int ctx_with_timeout(ctx_t *parent, int64_t timeout_ns, ctx_t **out);
CTX_API int ctx_with_timeout_cause(ctx_t *parent, int64_t timeout_ns, void *cause,
                                   ctx_release_fn release, ctx_t **out);
/* WithValue: binds key to value (opaque to the core; NULL key is CTX_EINVAL).
** Both are released with `release` (may be NULL) when the node is freed; on
** failure they are not taken. */
CTX_API int ctx_with_value(ctx_t *parent, void *key, void *value,
                           ctx_release_fn release, ctx_t **out);
/* WithoutCancel: keeps parent's values; never done, no deadline, no cause. */
CTX_API int ctx_without_cancel(ctx_t *parent, ctx_t **out);

/* ---- cancel ---- */

/* Cancels a WithCancel/WithDeadline context with CTX_ERR_CANCELED; its cause is
** the error itself. Returns 1 if this call made it done, 0 if it already was,
** CTX_EINVAL for a context that cannot be canceled. As in Go, once any cancel
** of c (or its deadline, or an ancestor's cancel) has returned, c's whole
** subtree is done: a call that finds c already ending waits for the thread
** that ends it to finish the subtree. */
CTX_API int ctx_cancel(ctx_t *c);
/* Same, recording `cause` (NULL records the plain error). The core always
** takes `cause`: it is released at once if the call did not make c done. On
** CTX_ENOMEM, c is still canceled, with the plain error. */
CTX_API int ctx_cancel_cause(ctx_t *c, void *cause, ctx_release_fn release);

/* ---- queries: never block, never lock (ctx_done/ctx_err are one atomic load) ---- */

CTX_API int ctx_done(const ctx_t *c);
CTX_API ctx_err_t ctx_err(const ctx_t *c);
/* The cause object given when c (or the ancestor that ended it) was canceled;
** NULL while not done and when the cause is the error itself. Borrowed: valid
** while the caller holds a reference to c. */
CTX_API void *ctx_cause(const ctx_t *c);
/* 1 and *deadline set when c has a deadline (its own or inherited), else 0. */
CTX_API int ctx_deadline(const ctx_t *c, int64_t *deadline);
/* Value(key): the innermost binding of key on the way to the root. eq NULL
** compares pointers. Returns 1 and sets *value if found, 0 if not, or eq's
** negative result. No lock is held while eq runs. */
CTX_API int ctx_value(const ctx_t *c, const void *key, ctx_key_eq_fn eq, void *ud,
                      void **value);
CTX_API ctx_kind_t ctx_kind(const ctx_t *c);
/* The parent (borrowed), NULL for the roots. */
CTX_API ctx_t *ctx_parent(const ctx_t *c);
/* How many children are registered for cancellation under c, pending
** after_funcs included, as Go counts them (tests use it). */
CTX_API size_t ctx_num_children(ctx_t *c);
/* Go's String(): a malloc'd string (free() it), NULL on failure. fmt may be
** NULL (prints pointers). */
CTX_API char *ctx_string(const ctx_t *c, ctx_fmt_fn fmt, void *ud);
/* For a garbage collector's traversal (Python's tp_traverse): calls
** visit(obj, ud) for each binding-owned object (key, value, cause) that the
** caller's one reference to c alone keeps alive: c's, then its ancestors'
** while each is referenced only by the node below it. Stops at the first
** nonzero result and returns it; 0 otherwise. */
CTX_API int ctx_visit(const ctx_t *c, int (*visit)(void *obj, void *ud), void *ud);

/* Fires a passed deadline now, without waiting for the timer thread (which
** may wait for a CPU on a loaded machine): if c's deadline, its own or an
** inherited one, is at or before ctx_now(), ends the outermost node on the
** way to the root that owns that deadline exactly as the timer thread would
** and returns 1. Returns 0 if the deadline is still ahead, c has none or c is
** already done. The waits below call it themselves. */
CTX_API int ctx_expire(ctx_t *c);

/* ---- waiting ----
** A wait never sleeps past the earliest deadline of the contexts it watches,
** and fires a passed deadline itself (ctx_expire) when the timer thread is
** late. Signals: a signal handler that runs in the waiting thread makes the
** wait return CTX_EINTR, whether or not it was installed with SA_RESTART
** (waits sleep in poll(), which is never restarted), so the caller can run
** its own handlers (Python's) and wait again. The thread's wake-up descriptor
** is made on its first wait (CTX_EMFILE if none can be). A wait on contexts
** alone (no descriptor, no process) may first spin for up to 200 us, yielding
** the CPU, with signals blocked: only while recent waits ended that soon; a
** signal that arrives meanwhile is handled when it ends, and reported. */

/* Blocks until c is done (CTX_OK), timeout_ns passes (CTX_ETIMEDOUT; negative
** means no timeout) or a signal handler runs (CTX_EINTR). */
CTX_API int ctx_wait(const ctx_t *c, int64_t timeout_ns);
/* Blocks until one of nc contexts is done or one of nfd descriptors is
** readable (or has hung up, or is not open), at most timeout_ns (negative: no limit). CTX_OK
** sets *which: i < nc for cs[i] (the lowest such index), nc + j for fds[j].
** Any number of each; NULL entries in cs are ignored. CTX_ETIMEDOUT,
** CTX_EINTR, CTX_ENOMEM (more than a few contexts need memory), CTX_EMFILE. */
CTX_API int ctx_wait_any(ctx_t *const *cs, size_t nc, const int *fds, size_t nfd,
                         int64_t timeout_ns, size_t *which);
/* Or this into an entry of fds to wait until it is writable instead. */
#define CTX_FD_WRITE 0x40000000
/* A file descriptor that becomes readable when c is done and stays readable
** (never read from it). Made on first request, owned by c (closed when c is
** freed); shared by c's value descendants. After fork() the child gets a
** descriptor of its own under the same number, so a cancel on one side never
** makes the other side's readable. Negative CTX_E* on failure. */
CTX_API int ctx_fd(ctx_t *c);
/* Waits until the thread that ended c has ended c's whole subtree and handed
** every after_func of it to its executor. Returns at once if c is not done or
** that already happened (then it is one atomic load). Not from a callback
** that an inline executor runs for the same ending (it would wait for itself). */
CTX_API void ctx_settle(const ctx_t *c);

/* ---- after_func ---- */

/* AfterFunc: arranges for fn(arg) to run once after c is done (at once if it
** is), on `ex`; NULL picks the core's own executor: a pool of threads that
** grows when every thread is busy, up to 256 (as Go gives each AfterFunc its
** own goroutine, a callback that blocks never starves another), never the
** timer thread. `release` (may be NULL) is called on arg after fn ran or once it was
** stopped. A pending registration keeps c alive. If stop is not NULL, *stop
** gets a handle for ctx_after_stop that must be freed with ctx_after_free.
** On failure nothing is taken; CTX_EAGAIN when the default executor has no
** thread and none can be started. A registration that returned CTX_OK always
** runs or is stopped (or, for a closed queue, is discarded). */
CTX_API int ctx_after_func(ctx_t *c, ctx_func_fn fn, void *arg, ctx_release_fn release,
                           ctx_executor_t *ex, ctx_after_t **stop);
/* Stop: 1 if this call prevented fn from running, 0 if fn was already started
** (handed to its executor) or stopped before. */
CTX_API int ctx_after_stop(ctx_after_t *a);
/* Drops the stop handle (does not stop). */
CTX_API void ctx_after_free(ctx_after_t *a);
/* For executors: runs the callback handed to submit(), then releases it. */
CTX_API void ctx_after_run(ctx_after_t *a);
/* For executors that cannot run it any more (their thread or state is gone):
** releases the callback's argument without calling fn. */
CTX_API void ctx_after_discard(ctx_after_t *a);

/* ---- queues: callbacks handed to a binding's own threads ----
** A queue is an executor whose callbacks wait in FIFO order until a consumer
** pops and runs them, plus plain tasks a binding posts for its own threads
** (releasing a Lua or Python object where that is allowed). Submitting and
** posting never block and never fail. The core counts the registrations
** that use a queue: it stays valid until it is closed and the last of them
** is gone. Callbacks queued before a fork() run in the parent only: the
** child's copy of every queue starts empty. */

/* A task a binding posts, embedded in its own object (no allocation). run is
** called once: by ctx_task_run (discard 0) or when the queue is closed or the
** process forks (discard 1: free what is yours, run nothing). */
typedef struct ctx_task {
  struct ctx_task *next;
  void (*run)(struct ctx_task *t, int discard);
} ctx_task_t;

CTX_API int ctx_queue_new(ctx_queue_t **out);
/* The executor to pass to ctx_after_func; valid as long as the queue. */
CTX_API ctx_executor_t *ctx_queue_executor(ctx_queue_t *q);
CTX_API void ctx_queue_post(ctx_queue_t *q, ctx_task_t *t);
/* Takes the oldest task, waiting up to timeout_ns (0: do not wait, negative:
** no limit): CTX_OK and *t, CTX_ETIMEDOUT, CTX_EINTR, or CTX_ECLOSED. */
CTX_API int ctx_queue_pop(ctx_queue_t *q, int64_t timeout_ns, ctx_task_t **t);
/* Runs a popped task: an after_func callback through ctx_after_run. */
CTX_API void ctx_task_run(ctx_task_t *t);
/* 1 while tasks wait (one relaxed atomic load: cheap enough for every call). */
CTX_API int ctx_queue_pending(const ctx_queue_t *q);
/* How many consumers are blocked in ctx_queue_pop now: a consumer about to
** run a long task can start another when it was the last one waiting. */
CTX_API size_t ctx_queue_idle(const ctx_queue_t *q);
/* A descriptor readable while tasks wait (for ctx_wait_any), or CTX_E*. */
CTX_API int ctx_queue_fd(ctx_queue_t *q);
/* Calls fn(arg) each time a task arrives in the empty queue, on the thread
** that queued it (the timer thread included), with no lock held: for a
** consumer that polls no descriptor (a busy interpreter), fn must only wake
** it (a flag, a signal) and return. fn NULL stops the calls; once this
** returns, no call of the previous fn is running or will start. */
CTX_API void ctx_queue_set_notify(ctx_queue_t *q, void (*fn)(void *arg), void *arg);
/* Closes the queue: queued and later tasks are discarded, the after_funcs
** still registered with it are stopped, blocked consumers get CTX_ECLOSED,
** and the caller's reference is dropped. */
CTX_API void ctx_queue_close(ctx_queue_t *q);
/* A consumer that may call ctx_queue_pop after another thread closes the
** queue (one busy running a task, say) holds a reference of its own: taken
** before it starts, dropped with ctx_queue_unref when it stops. Without one,
** close may free the queue under it. Freed once closed and unreferenced. */
CTX_API ctx_queue_t *ctx_queue_ref(ctx_queue_t *q);
CTX_API void ctx_queue_unref(ctx_queue_t *q);

/* ---- child processes ----
** The binding starts the child (fork/posix_spawn, Popen) in a process group of
** its own (CTX_PROC_GROUP) and hands its pid to the core, which waits for it
** together with contexts, and ends it: SIGCONT and SIGTERM to its group, SIGKILL
** after a grace period, then reaps it and kills what is left of the group.
** CTX_PROC_TERMINAL: when this process is in the foreground of its controlling
** terminal, the child's group gets the foreground while it runs (so it can
** read and prompt, and Ctrl-C reaches it) and it comes back at the end; a
** child that dies of SIGINT or SIGQUIT then sends the same signal to this
** process, as a shell does, so Ctrl-C stops both. A descendant that holds the
** child's pipes open or left the group never delays the end of a wait. */
#define CTX_PROC_GROUP    1  /* pid leads its own process group: signal -pid */
#define CTX_PROC_NOREAP   2  /* the caller reaps (Popen.wait): the core only watches */
#define CTX_PROC_TERMINAL 4  /* hand over the terminal's foreground, see above */
#define CTX_PROC_EXITED   ((size_t)-1)  /* *which of ctx_proc_wait: the child exited */

CTX_API int ctx_proc_open(int pid, int flags, ctx_proc_t **out);
/* As ctx_wait_any, and also until the child exits (*which = CTX_PROC_EXITED;
** reaped unless CTX_PROC_NOREAP). Pidfd where the kernel has one, a bounded
** poll otherwise. */
CTX_API int ctx_proc_wait(ctx_proc_t *p, ctx_t *const *cs, size_t nc, const int *fds,
                          size_t nfd, int64_t timeout_ns, size_t *which);
/* Ends the child as above (SIGKILL at once for grace_ns <= 0). Blocks until it
** has exited; CTX_EINTR when a signal handler runs meanwhile: call it again to
** go on (the grace period keeps its first end). CTX_OK once done. */
CTX_API int ctx_proc_terminate(ctx_proc_t *p, int64_t grace_ns);
/* 1 and *status (a waitpid() status) once the core reaped the child, else 0. */
CTX_API int ctx_proc_status(const ctx_proc_t *p, int *status);
/* Frees p; gives the terminal back if the child had it. Does not signal. */
CTX_API void ctx_proc_close(ctx_proc_t *p);

#ifdef __cplusplus
}
#endif
#endif /* CTX_H */
