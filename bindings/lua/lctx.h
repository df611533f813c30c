/* lctx.h — internals of the Lua 5.4 binding of ctx: the userdata layouts, the
** per-state hub that hands work from other threads to a lua_State, ctx.run. */
#ifndef LCTX_H
#define LCTX_H

#if !defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L
#error "ctx needs a C11 compiler (atomics)"
#endif

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "lua.h"
#include "lauxlib.h"
#include "ctx.h"

#define LCTX_MT "ctx.Context"
#define LCTX_ERR_MT "ctx.Error"
#define LCTX_HUB_MT "ctx.Hub"
#define LCTX_STOP_MT "ctx.Stop"

#if defined(__GNUC__) || defined(__clang__)
#define LCTX_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LCTX_NOINLINE __attribute__((noinline))
#else
#define LCTX_UNLIKELY(x) (x)
#define LCTX_NOINLINE
#endif

/* Upvalues shared by every module function and method (one set per state):
** fetching them is cheaper than a registry lookup on each call. */
enum {
  LCTX_UV_HUB = 1,     /* the hub box (full userdata holding lctx_hub *, NULL once closed) */
  LCTX_UV_MT,          /* the Context metatable, for the type check */
  LCTX_UV_CANCELED,    /* ctx.canceled */
  LCTX_UV_DEADLINE,    /* ctx.deadline_exceeded */
  LCTX_UV_BG,          /* ctx.background() */
  LCTX_UV_TODO,        /* ctx.todo() */
  LCTX_NUV = LCTX_UV_TODO
};

/* A key as rawequal sees it, so the core's lookup compares keys in C without
** touching the Lua state (the key itself stays referenced by the binding). */
typedef struct lctx_key {
  int type;            /* LUA_T*, with LUA_TNUMBER split into the two below */
  size_t len;          /* strings */
  union { lua_Integer i; lua_Number n; const void *p; int b; } u;
} lctx_key;
#define LCTX_TFLOAT (LUA_NUMTYPES + 100)  /* a float with no integer value */

/* A Context userdata. Non-value contexts allocate only `c`; value contexts
** also hold their key and value in the registry. User value 1 is the parent
** userdata, so a live context keeps every ancestor's key descriptor alive. */
typedef struct lctx_ud {
  ctx_t *c;            /* one core reference; NULL once collected */
  int keyref, valref;  /* value contexts only */
  lctx_key key;
} lctx_ud;
#define LCTX_UD_SMALL (sizeof(ctx_t *))

typedef struct lctx_hub lctx_hub;
typedef struct lctx_runrec lctx_runrec;

/* Something the core releases on any thread while its Lua part (a registry
** reference) may only be dropped on the owning state's thread: the release
** posts it to the hub's queue, run at the state's next call into ctx. */
typedef struct lctx_rel {
  ctx_task_t task;                     /* posted to S->q */
  lctx_hub *S;
  int ref;                             /* registry reference, LUA_NOREF if none */
  void (*destroy)(struct lctx_rel *);  /* frees the C part; any thread */
} lctx_rel;

/* An after_func registration, on the hub queue's executor (the core counts
** it and stops it when the queue is closed). Two owners: the registration,
** until its release has dropped the callback's reference, and the Lua stop
** handle. */
typedef struct lctx_af {
  lctx_rel rel;        /* rel.ref: the Lua callback */
  ctx_after_t *h;      /* stop handle (freed by the Lua stop handle) */
  _Atomic int owners;
} lctx_af;

/* A growable list of contexts (a wait's watch list), inline while short. */
typedef struct lctx_ctxs {
  size_t n, cap;
  ctx_t **v;
  ctx_t *small[8];
} lctx_ctxs;

/* ---- ctx.run's state, per hub (lctx_run.c, lctx_threads.c) ---- */

/* How a stop reaches the state's threads while runs are active:
** NONE     no hook at all (the signal arms them when a context ends)
** COUNT    a count hook on every thread (no usable signal: the fallback)
** ARMED    the signal handler gave every thread a count hook of 1
** STOPPING call, return and count hooks on every thread: a stop is on its way */
enum { LCTX_M_NONE, LCTX_M_COUNT, LCTX_M_ARMED, LCTX_M_STOPPING };

/* A known thread of the state, reachable from the signal handler. */
typedef struct lctx_slot {
  lua_State *L;            /* NULL: a free slot */
  lua_Hook hook;           /* the hook it had before ours (when `ours`) */
  int mask, count;
  int ours;                /* our hook is set on it (its own is saved above) */
  int tracked;             /* seen created by the allocator: removed when freed */
  int nruns;               /* active runs started on it */
} lctx_slot;

/* The dynamic extent of an after_func callback or of a <close> handler that
** runs while a stop unwinds: runs started before it (up to `barrier`) are out
** of its reach, so their stops wait for its end. */
typedef struct lctx_level {
  lctx_runrec *barrier;    /* the innermost run hidden here; NULL: none */
  int kind;                /* LCTX_LV_* */
  int unwinding;           /* a stop raised here has not been caught yet */
  int lifted;              /* a callback past its bound: the runs are in reach */
  int64_t started;         /* callback levels: when the callback began */
  lua_State *hL;           /* handler levels: the handler's thread, and the */
  const void *hci, *cci;   /* frames of the handler and of its caller */
} lctx_level;
enum { LCTX_LV_BASE, LCTX_LV_CALLBACK, LCTX_LV_HANDLER };

/* How long the stop of a run waits for the after_func callbacks running inside
** it before the one running is stopped like the run's own code (seconds); a
** callback always gets LCTX_CALLBACK_MIN of its own first, so one that had
** just begun (a burst on a loaded machine) is never cut short at its start. */
#define LCTX_CALLBACK_BOUND 0.1
#define LCTX_CALLBACK_MIN 0.02

typedef struct lctx_runs {
  lctx_runrec *runs;       /* the active runs, innermost first */
  lctx_level *lv;          /* lv[0] is the base level; lv[nlv - 1] the current one */
  size_t nlv, lvcap;
  int fast;                /* the outermost run reaches threads by signal */
  int mode;                /* LCTX_M_*: the hooks set now */
  int64_t stop_seen;       /* when a callback was first seen holding a stop back */
  lua_Hook idle;           /* another tool's hook found on the outermost run's */
  int idle_mask, idle_count;  /* thread, chained by ours */
  lctx_hub *tl_outer;      /* the hub whose runs this thread ran before ours */
  /* the known threads: slots (stable indices, read by the signal handler),
  ** a hash from lua_State to slot, and a free list */
  lctx_slot *slots;
  size_t nslots, slotcap;  /* slots in use up to nslots (some free) */
  size_t *freeslots, nfree;
  lua_State **hkeys;       /* open addressing, linear probing */
  size_t *hvals, hcap, hcount;
  /* the signal handler defers its work while the state's thread changes the
  ** slots or the hooks (cs > 0); the change then does it on leaving */
  volatile sig_atomic_t cs, deferred;
  struct lctx_alloc *alloc;   /* the allocator wrapper that tracks threads */
  int tracking;               /* it is in place (while runs are active) */
  /* the base library's xpcall (from a state of our own: an xpcall replaced
  ** in Lua does not hide it), whose message handler a stop bypasses */
  lua_CFunction xpcall;
} lctx_runs;

/* The per-state hub: malloc'd and reference counted, so that releases on
** other threads may still find it after its lua_State is closed. */
struct lctx_hub {
  _Atomic int refs;
  pthread_mutex_t mu;      /* `closed`; the queue is closed under it */
  int closed;
  ctx_queue_t *q;          /* callbacks and releases for this state's thread */
  ctx_t *donectx;          /* a done context: hands work to the core's pool at once */
  _Atomic unsigned drain_gen;  /* counts drains that emptied the queue */
  _Atomic int nregs;       /* after_func registrations not yet released */
  /* the state's own thread only: */
  lua_State *curL;         /* the thread running queued tasks */
  int incallback;          /* callbacks running: nested calls leave theirs to the drain */
  int cbref;               /* registry: { idle coroutine for the next callback } */
  lctx_runs R;
};

/* An active ctx.run (on the C stack of the call). */
struct lctx_runrec {
  lctx_runrec *outer;
  ctx_t *c;
  lua_State *L;            /* the thread that called ctx.run */
  lctx_hub *S;
  ctx_after_t *watch;      /* signals this thread when c ends (or NULL) */
  pthread_t tid;
  int sig;                 /* the signal to send, 0: none */
  _Atomic int fired;       /* the watch is done with this record */
  /* the run's helper on the core's pool (lctx_run.c): pokes the run when
  ** callbacks are queued, sends the signal again until a hook has run */
  _Atomic int ack;         /* a hook ran after c ended */
  ctx_t *end;              /* canceled when the run returns: the helper leaves */
  ctx_after_t *helper;
  _Atomic int helped;      /* the helper is done with this record */
};

extern const char lctx_hub_key;          /* registry: light userdata lctx_hub * */
extern const char lctx_canceled_key, lctx_deadline_key;  /* registry: the errors */

/* lctx_hub.c */
lctx_hub *lctx_hub_new(void);
void lctx_hub_ref(lctx_hub *S);
void lctx_hub_unref(lctx_hub *S);
void lctx_hub_close(lctx_hub *S);
void lctx_release(void *rel);              /* a ctx_release_fn for lctx_rel */
void lctx_drain(lua_State *L, lctx_hub *S);
lctx_af *lctx_af_new(lctx_hub *S);
void lctx_af_unref(lctx_af *af);
void lctx_af_fn(void *arg);                /* the ctx_func_fn of registrations */
void lctx_af_release(void *arg);           /* ... and their ctx_release_fn */
lctx_rel *lctx_cause_new(lctx_hub *S);
/* Blocks until c is done or `until` (ctx_now scale) passes, running callbacks
** of this state that become pending meanwhile; 1 if c is done. A check point
** of the active runs: raises a run's stop when its context ends meanwhile.
** Returns early when a signal handler set a hook of its own (lua.c's Ctrl-C). */
int lctx_wait(lua_State *L, lctx_hub *S, ctx_t *c, int64_t until);
/* c was seen done: runs the callbacks its end made pending once they are all
** queued (the ending thread sets done before it hands them on), so that
** whoever sees a context done sees its callbacks have run. */
void lctx_settle(lua_State *L, lctx_hub *S, ctx_t *c);
void lctx_ctxs_init(lctx_ctxs *l);
int lctx_ctxs_add(lctx_ctxs *l, ctx_t *c);  /* 0, or -1 out of memory */
void lctx_ctxs_free(lctx_ctxs *l);

lctx_hub *lctx_closed_error(lua_State *L);

static inline lctx_hub *lctx_hub_of(lua_State *L) {
  lctx_hub *S = *(lctx_hub **)lua_touserdata(L, lua_upvalueindex(LCTX_UV_HUB));
  if (LCTX_UNLIKELY(!S)) return lctx_closed_error(L);  /* a finalizer at lua_close */
  return S;
}

/* Every entry point runs pending callbacks and releases first: one relaxed
** load when there is nothing to do. */
static inline lctx_hub *lctx_enter(lua_State *L) {
  lctx_hub *S = lctx_hub_of(L);
  if (ctx_queue_pending(S->q)) lctx_drain(L, S);
  return S;
}

/* lctx_key.c */
void lctx_key_from(lua_State *L, int idx, const char *fname, int arg, lctx_key *k);
int lctx_key_eq(const void *wanted, const void *bound, void *ud);
char *lctx_fmt(const void *key, const void *value, void *L);

/* lctx.c: argument errors worded as luaL_argerror's, but naming the function
** as the SPEC does, whatever the call site looks like */
int lctx_argerror(lua_State *L, int arg, const char *fname, const char *msg);
int lctx_typeerror(lua_State *L, int arg, const char *fname, const char *tname);
int lctx_badctx(lua_State *L, int arg, const char *fname);
lua_Number lctx_checkseconds(lua_State *L, int arg, const char *fname);
void lctx_pusherr(lua_State *L, ctx_err_t err);
int64_t lctx_after_now(lua_Number seconds);

/* The type check on every call: the metatable is compared with the one kept
** as an upvalue, which costs less than luaL_checkudata's registry lookup. */
static inline lctx_ud *lctx_check(lua_State *L, int arg, const char *fname) {
  lctx_ud *u = lua_touserdata(L, arg);
  if (u && lua_getmetatable(L, arg)) {
    int ok = lua_rawequal(L, -1, lua_upvalueindex(LCTX_UV_MT));
    lua_pop(L, 1);
    if (ok && u->c) return u;
  }
  lctx_badctx(L, arg, fname);
  return NULL;
}

/* lctx_run.c */
int lctx_run(lua_State *L);
void lctx_runs_init(lua_State *L, lctx_hub *S);
void lctx_runs_close(lua_State *L, lctx_hub *S);
/* The outermost run in reach of the code running now whose context is done
** (none while a stop unwinds), or NULL. */
lctx_runrec *lctx_run_stopped(lctx_hub *S);
/* A check point of the active runs (waits, execute, run): raises the stop of
** a run in reach whose context ended. Returns until when a running callback
** holds back the stop of a run out of its reach (CTX_FOREVER: none). */
int64_t lctx_checkpoint(lua_State *L, lctx_hub *S);
int64_t lctx_run_hold(lctx_hub *S);  /* the same, without raising */
/* Callbacks have held a run's stop back for their bound: no more start. */
int lctx_run_held_over(lctx_hub *S);
/* Adds to w the contexts whose end a blocking call must wake for: the runs
** in reach, and those a running callback holds back. 0, or -1 out of memory. */
int lctx_run_watch(lctx_hub *S, lctx_ctxs *w);
/* A registration was made: a busy run must be told when its callback is
** queued (the run's helper watches the queue). */
void lctx_run_registered(lctx_hub *S);
/* An after_func callback starts or ends (lctx_af_fn): a level of its own. */
size_t lctx_level_push(lctx_hub *S);
int lctx_level_pop(lctx_hub *S, size_t depth);  /* 1: it was stopped past its bound */
int lctx_is_stop(lua_State *L, int idx);         /* ctx.canceled or ctx.deadline_exceeded */

/* lctx_threads.c: the state's threads, and the signal that reaches them */
int lctx_threads_init(lua_State *L, lctx_hub *S);  /* 1: threads can be tracked */
void lctx_threads_close(lua_State *L, lctx_hub *S);
int lctx_track_begin(lua_State *L, lctx_hub *S);    /* the outermost run begins */
void lctx_track_end(lua_State *L, lctx_hub *S);     /* ... and ends */
lctx_slot *lctx_slot_find(lctx_hub *S, lua_State *L);
lctx_slot *lctx_slot_pin(lctx_hub *S, lua_State *L);  /* NULL: out of memory */
void lctx_slot_unpin(lctx_hub *S, lua_State *L);
void lctx_slot_sync(lctx_hub *S, lua_State *L);      /* gives L the hooks of now */
/* Sets the hooks of `mode` (on every known thread, or for COUNT on the runs'
** threads), keeping the hooks of other tools to be chained and restored. */
void lctx_set_mode(lctx_hub *S, int mode);
/* The signal of this process (0: none usable), and whether it can reach this
** thread now (not blocked). */
int lctx_signal(void);
int lctx_signal_here(int sig);
void lctx_signal_send(pthread_t tid, int sig);
void lctx_tl_enter(lctx_hub *S);   /* this thread runs S's runs (signal handler) */
void lctx_tl_leave(lctx_hub *S);
void lctx_run_hook(lua_State *L, lua_Debug *ar);

/* lctx_exec.c */
int lctx_execute(lua_State *L);

#endif
