/* lctx.h — internals of the Lua 5.4 binding of ctx: the userdata layouts, the
** per-state hub that hands work from other threads to a lua_State, helpers. */
#ifndef LCTX_H
#define LCTX_H

#if !defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L
#error "ctx needs a C11 compiler (atomics)"
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "lua.h"
#include "lauxlib.h"
#include "ctx.h"

#define LCTX_MT "ctx.Context"
#define LCTX_ERR_MT "ctx.Error"
#define LCTX_STATE_MT "ctx.State"
#define LCTX_STOP_MT "ctx.Stop"

/* Upvalues shared by every module function and method (one set per state):
** fetching them is cheaper than a registry lookup on each call. */
enum {
  LCTX_UV_STATE = 1,   /* the hub box (full userdata holding lctx_S *) */
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

typedef struct lctx_S lctx_S;
#define LCTX_NSWALLOW 5
#define LCTX_NSEEN 8

/* Something the core releases on any thread while its Lua part (a registry
** reference) may only be dropped on the owning state's thread: the release
** queues it on the hub, which unrefs it at the next call into ctx. */
typedef struct lctx_rel {
  struct lctx_rel *next;
  lctx_S *S;
  int ref;                          /* registry reference, LUA_NOREF if none */
  void (*destroy)(struct lctx_rel *);  /* frees the C part; any thread */
} lctx_rel;

/* An after_func registration. Its executor is embedded so that submit() finds
** the registration without allocating; two owners: the core's registration
** (until released) and the Lua stop handle. */
typedef struct lctx_af {
  lctx_rel rel;        /* rel.ref: the Lua callback */
  ctx_executor_t ex;
  ctx_after_t *h;      /* stop handle (freed with the last owner) */
  ctx_after_t *run;    /* what submit() handed us */
  ctx_t *c;            /* while registered and not yet handed on (S->mu) */
  lua_State *L;        /* set while the hub runs it; NULL: state is gone */
  struct lctx_af *qnext;
  struct lctx_af *next, *prev;  /* S->afs, until freed */
  _Atomic int owners;
} lctx_af;

/* The per-state hub: malloc'd and reference counted, so that the timer thread
** may still queue work on it after its lua_State is closed. */
struct lctx_S {
  _Atomic int refs;
  _Atomic int pending;     /* work queued: checked on every call into ctx */
  pthread_mutex_t mu;      /* guards everything below; never held across core calls */
  pthread_cond_t cv;       /* wakes a c:wait / ctx.sleep of this state */
  int waiting, closed;
  int poke;                /* a ctx.run is active on thread poke_tid: signal it */
  pthread_t poke_tid;
  lctx_af *ready, *ready_tail;  /* callbacks to run, in order */
  lctx_rel *dead;          /* registry references to drop */
  lctx_af *afs;            /* every registration not yet freed */
  /* ctx.run, touched only on the state's own thread (and its signal
  ** handler): the active runs, innermost first; the hook found before the
  ** outermost one started; the threads last seen running inside them */
  struct lctx_runrec *runs;
  lua_Hook idle_hook;
  int idle_mask, idle_count;
  int stopping;            /* a stop was raised and is on its way out */
  /* while an after_func callback runs, the runs it interrupted (this one and
  ** those outside it) are out of its reach: their stops wait for its end */
  struct lctx_runrec *barrier;
  lua_State *volatile cur;
  lua_State *volatile seen[LCTX_NSEEN];  /* pinned in the registry */
  int seen_next;
  /* pcall, xpcall, load (a reader function runs protected), coroutine.resume
  ** and coroutine.close (__close handlers run protected) */
  lua_CFunction swallow[LCTX_NSWALLOW];
};

/* An active ctx.run (on the C stack of the call). */
typedef struct lctx_runrec {
  struct lctx_runrec *outer;
  ctx_t *c;
  lua_State *L;            /* the thread that called ctx.run */
  lua_Hook old_hook;       /* what L had before, restored when the run ends */
  int old_mask, old_count;
  int raised;              /* its stop was raised: fn did not run to its end */
  ctx_after_t *watch;      /* signals this thread when c ends (or NULL) */
  pthread_t tid;
  _Atomic int fired;       /* the watch is done with this record */
} lctx_runrec;

extern const char lctx_S_key;            /* registry: light userdata lctx_S * */
extern const char lctx_canceled_key, lctx_deadline_key;  /* registry: the errors */
extern const char lctx_cur_key;          /* registry: pins the threads in S->seen */

/* lctx_state.c */
lctx_S *lctx_S_new(void);
void lctx_S_ref(lctx_S *S);
void lctx_S_unref(lctx_S *S);
void lctx_S_close(lctx_S *S);
void lctx_release(void *rel);              /* a ctx_release_fn for lctx_rel */
void lctx_drain(lua_State *L, lctx_S *S);
lctx_af *lctx_af_new(lctx_S *S);
void lctx_af_unref(lctx_af *af);
void lctx_af_fn(void *arg);                /* the ctx_func_fn of registrations */
lctx_rel *lctx_cause_new(lctx_S *S);
/* Blocks until c is done or `until` (ctx_now scale) passes, running callbacks
** of this state that become pending meanwhile; 1 if c is done. */
int lctx_wait(lua_State *L, lctx_S *S, ctx_t *c, int64_t until);
/* A context was seen done: once this state's callbacks on done contexts are
** queued (the ending thread sets done before it hands them on), runs them,
** so that whoever sees a context done sees its callbacks have run. */
void lctx_settle(lua_State *L, lctx_S *S);
/* Registers a wake-up on c so that a wait of this state returns when c
** ends; NULL when out of memory. */
ctx_after_t *lctx_watch(lctx_S *S, ctx_t *c);
void lctx_unwatch(ctx_after_t *h);

static inline lctx_S *lctx_S_of(lua_State *L) {
  return *(lctx_S **)lua_touserdata(L, lua_upvalueindex(LCTX_UV_STATE));
}

/* Every entry point runs pending callbacks and releases first: one relaxed
** load when there is nothing to do. */
static inline lctx_S *lctx_enter(lua_State *L) {
  lctx_S *S = lctx_S_of(L);
  if (atomic_load_explicit(&S->pending, memory_order_relaxed)) lctx_drain(L, S);
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

/* lctx_run.c, lctx_exec.c */
int lctx_run(lua_State *L);
int lctx_execute(lua_State *L);
/* Called with S->mu held when a callback is queued: makes an active ctx.run
** look at its queue even in a loop that makes no call. */
void lctx_run_poke(lctx_S *S);
/* The outermost active run (above the barrier) whose context is done, or NULL. */
lctx_runrec *lctx_run_stopped(lctx_S *S);
/* Raises the error of the run's context, as the stop of that run. */
int lctx_run_raise(lua_State *L, lctx_runrec *r);

#endif
