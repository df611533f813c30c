/* ctx.h — Go's context for C: a tree of cancelable, deadline-bound contexts.
** The one public header of the ctx core; every function is documented here. */
#ifndef CTX_H
#define CTX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. 0 is success; failures are negative errno-style values. */
#define CTX_OK          0
#define CTX_EINTR      (-4)    /* a signal handler ran during a wait */
#define CTX_ENOMEM     (-12)   /* out of memory; nothing was changed */
#define CTX_EINVAL     (-22)   /* bad argument */
#define CTX_EMFILE     (-24)   /* no file descriptor could be made */
#define CTX_ETIMEDOUT  (-110)  /* a wait's timeout passed first */

/* What a context's Err() reports. */
typedef enum ctx_err {
  CTX_ERR_NONE = 0,        /* not done */
  CTX_ERR_CANCELED = 1,    /* "context canceled" */
  CTX_ERR_DEADLINE = 2     /* "context deadline exceeded" */
} ctx_err_t;

/* How a context was made (its String() form follows from it). */
typedef enum ctx_kind {
  CTX_KIND_BACKGROUND, CTX_KIND_TODO, CTX_KIND_CANCEL, CTX_KIND_DEADLINE,
  CTX_KIND_VALUE, CTX_KIND_WITHOUT_CANCEL
} ctx_kind_t;

/* A deadline or timeout that never comes: gives a plain WithCancel child. */
#define CTX_FOREVER INT64_MAX

typedef struct ctx ctx_t;              /* opaque, reference counted */
typedef struct ctx_after ctx_after_t;  /* an after_func registration and its stop handle */

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
** sure ctx_after_run(a) is called exactly once later. */
typedef struct ctx_executor {
  void (*submit)(struct ctx_executor *self, ctx_after_t *a);
} ctx_executor_t;

/* ---- errors and clocks ---- */

/* Go's message for an error: "context canceled", "context deadline exceeded", "". */
const char *ctx_err_string(ctx_err_t err);
/* A short message for a CTX_E* return code. */
const char *ctx_strerror(int code);
/* Nanoseconds on CLOCK_MONOTONIC: the scale of every deadline in this API. */
int64_t ctx_now(void);
/* Seconds since the epoch (the wall clock), as time.time() gives them. */
double ctx_wall_now(void);
/* Converts epoch seconds to the monotonic deadline scale, rounding up, with one
** offset fixed per process; +inf gives CTX_FOREVER. NaN gives CTX_FOREVER too:
** bindings reject it first. */
int64_t ctx_wall_to_mono(double epoch_seconds);
/* Converts a monotonic deadline back to epoch seconds (exact inverse of the above). */
double ctx_mono_to_wall(int64_t mono_ns);
/* Converts a duration in seconds to nanoseconds, rounding up and saturating at
** CTX_FOREVER (also for +inf). Negative durations stay negative. */
int64_t ctx_seconds_to_ns(double seconds);

/* Replaces malloc/free for everything the core allocates (tests use it to
** inject out-of-memory). Call before creating any context. NULL restores. */
void ctx_set_allocator(void *(*alloc)(size_t), void (*dealloc)(void *));

/* ---- roots and references ---- */

/* The root contexts: static, never done, no values, no deadline. */
ctx_t *ctx_background(void);
ctx_t *ctx_todo(void);
/* Takes one more reference and returns c. */
ctx_t *ctx_ref(ctx_t *c);
/* Drops a reference. The last one frees c: it leaves its parent's child set,
** its timer is removed, and its values and cause are released. */
void ctx_unref(ctx_t *c);

/* ---- constructors: on success *out holds a new reference ---- */

/* WithCancel: a child done when ctx_cancel is called or parent is done. */
int ctx_with_cancel(ctx_t *parent, ctx_t **out);
/* WithDeadline(Cause): also done with CTX_ERR_DEADLINE at `deadline` (ns on
** the ctx_now scale). A deadline later than the parent's, or CTX_FOREVER,
** gives a plain WithCancel child; one at or before now gives a context done at
** creation. `cause` (may be NULL) becomes Cause() when the deadline fires; it
** is owned by the core on success (released with `release`), not on failure. */
int ctx_with_deadline(ctx_t *parent, int64_t deadline, ctx_t **out);
int ctx_with_deadline_cause(ctx_t *parent, int64_t deadline, void *cause,
                            ctx_release_fn release, ctx_t **out);
/* WithTimeout(Cause): WithDeadline at ctx_now() + timeout_ns (saturating). */
int ctx_with_timeout(ctx_t *parent, int64_t timeout_ns, ctx_t **out);
int ctx_with_timeout_cause(ctx_t *parent, int64_t timeout_ns, void *cause,
                           ctx_release_fn release, ctx_t **out);
/* WithValue: binds key to value (opaque to the core; NULL key is CTX_EINVAL).
** Both are released with `release` (may be NULL) when the node is freed; on
** failure they are not taken. */
int ctx_with_value(ctx_t *parent, void *key, void *value, ctx_release_fn release,
                   ctx_t **out);
/* WithoutCancel: keeps parent's values; never done, no deadline, no cause. */
int ctx_without_cancel(ctx_t *parent, ctx_t **out);

/* ---- cancel ---- */

/* Cancels a WithCancel/WithDeadline context with CTX_ERR_CANCELED; its cause is
** the error itself. Returns 1 if this call made it done, 0 if it already was,
** CTX_EINVAL for a context that cannot be canceled. */
int ctx_cancel(ctx_t *c);
/* Same, recording `cause` (NULL records the plain error). The core always
** takes `cause`: it is released at once if the call did not make c done. On
** CTX_ENOMEM, c is still canceled, with the plain error. */
int ctx_cancel_cause(ctx_t *c, void *cause, ctx_release_fn release);

/* ---- queries: never block, never lock (ctx_done/ctx_err are one atomic load) ---- */

int ctx_done(const ctx_t *c);
ctx_err_t ctx_err(const ctx_t *c);
/* The cause object given when c (or the ancestor that ended it) was canceled;
** NULL while not done and when the cause is the error itself. Borrowed: valid
** while the caller holds a reference to c. */
void *ctx_cause(const ctx_t *c);
/* 1 and *deadline set when c has a deadline (its own or inherited), else 0. */
int ctx_deadline(const ctx_t *c, int64_t *deadline);
/* Value(key): the innermost binding of key on the way to the root. eq NULL
** compares pointers. Returns 1 and sets *value if found, 0 if not, or eq's
** negative result. No lock is held while eq runs. */
int ctx_value(const ctx_t *c, const void *key, ctx_key_eq_fn eq, void *ud,
              void **value);
ctx_kind_t ctx_kind(const ctx_t *c);
/* The parent (borrowed), NULL for the roots. */
ctx_t *ctx_parent(const ctx_t *c);
/* How many children are registered for cancellation under c, pending
** after_funcs included, as Go counts them (tests use it). */
size_t ctx_num_children(ctx_t *c);
/* Go's String(): a malloc'd string (free() it), NULL on failure. fmt may be
** NULL (prints pointers). */
char *ctx_string(const ctx_t *c, ctx_fmt_fn fmt, void *ud);

/* Fires a passed deadline now, without waiting for the timer thread (which
** may wait for a CPU on a loaded machine): if c's deadline, its own or an
** inherited one, is at or before ctx_now(), ends the outermost node on the
** way to the root that owns that deadline exactly as the timer thread would
** (CTX_ERR_DEADLINE, its pending cause, after_funcs dispatched) and returns 1.
** Returns 0 if the deadline is still ahead, c has none or c is already done.
** Any thread; not async-signal-safe. */
int ctx_expire(ctx_t *c);

/* ---- waiting ---- */

/* Blocks until c is done (CTX_OK), timeout_ns passes (CTX_ETIMEDOUT; negative
** means no timeout) or a signal handler runs in this thread (CTX_EINTR, so the
** caller can check for signals and wait again; a handler installed with
** SA_RESTART restarts the wait instead, as for other syscalls). */
int ctx_wait(const ctx_t *c, int64_t timeout_ns);
/* A file descriptor that becomes readable when c is done and stays readable
** (never read from it). Made on first request, owned by c (closed when c is
** freed); shared by c's value descendants. Negative CTX_E* on failure. */
int ctx_fd(ctx_t *c);

/* ---- after_func ---- */

/* AfterFunc: arranges for fn(arg) to run once after c is done (at once if it
** is), on `ex` (NULL: the core's own callback thread, never the timer
** thread). `release` (may be NULL) is called on arg after fn ran or once it was
** stopped. A pending registration keeps c alive. If stop is not NULL, *stop
** gets a handle for ctx_after_stop that must be freed with ctx_after_free.
** On failure nothing is taken. */
int ctx_after_func(ctx_t *c, ctx_func_fn fn, void *arg, ctx_release_fn release,
                   ctx_executor_t *ex, ctx_after_t **stop);
/* Stop: 1 if this call prevented fn from running, 0 if fn was already started
** (handed to its executor) or stopped before. */
int ctx_after_stop(ctx_after_t *a);
/* Drops the stop handle (does not stop). */
void ctx_after_free(ctx_after_t *a);
/* For executors: runs the callback handed to submit(), then releases it. */
void ctx_after_run(ctx_after_t *a);

#ifdef __cplusplus
}
#endif
#endif /* CTX_H */
