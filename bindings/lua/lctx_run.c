/* lctx_run.c — ctx.run(c, fn, ...): pcall that stops pure Lua code when c
** ends, with a Lua hook that coroutines created inside the run inherit. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include "lctx.h"

const char lctx_S_key, lctx_canceled_key, lctx_deadline_key, lctx_cur_key;

/* How it stops code that never calls into ctx, cheaply while c is live:
** - normally the hook watches calls only (a count hook would make Lua 5.4
**   trace every instruction, doubling the cost of tight loops); each call
**   checks the runs' contexts and notes which thread is running;
** - when c ends, the thread that ended it signals the run's OS thread, whose
**   handler (lua_sethook is safe there, as lua.c's Ctrl-C) arms a count hook
**   of 1 on the run's threads and the one last seen running: a loop with no
**   call at all stops at its next instruction;
** - the stop raised, every thread of the run also gets a count hook and
**   return events: pcall and its kind raise it again as they return.
** Without the signal (taken by someone else), the count hook stays on. */
#define RUN_COUNT 1000
#define STOP_MASK (LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT)

static int run_signal;       /* the signal number, 0 if we have none */
static pthread_once_t signal_once = PTHREAD_ONCE_INIT;
static _Thread_local lctx_S *volatile tl_S;  /* the hub of this thread's runs */

lctx_runrec *lctx_run_stopped(lctx_S *S) {
  lctx_runrec *stopped = NULL;
  for (lctx_runrec *r = S->runs; r != S->barrier; r = r->outer)
    if (ctx_done(r->c)) stopped = r;  /* the outermost: inner runs pass it on */
  return stopped;
}

int lctx_run_raise(lua_State *L, lctx_runrec *r) {
  r->raised = 1;
  lua_rawgetp(L, LUA_REGISTRYINDEX,
              ctx_err(r->c) == CTX_ERR_DEADLINE ? &lctx_deadline_key : &lctx_canceled_key);
  return lua_error(L);
}

static void run_hook(lua_State *L, lua_Debug *ar);

static void set_mode(lua_State *L, lctx_S *S, int mask, int count) {
  if (S->idle_mask & LUA_MASKCOUNT) {
    if (!(mask & LUA_MASKCOUNT) || S->idle_count < count) count = S->idle_count;
  }
  lua_sethook(L, run_hook, mask | S->idle_mask, count);
}

static void normal_mode(lua_State *L, lctx_S *S) {
  if (run_signal) set_mode(L, S, LUA_MASKCALL, 0);
  else set_mode(L, S, LUA_MASKCOUNT, RUN_COUNT);
}

/* ---- the signal ---- */

static void on_signal(int sig) {
  int saved = errno;
  lctx_S *S = tl_S;
  (void)sig;
  if (S && S->runs) {
    /* every thread of the run looks at its next instruction: a stop, or
    ** callbacks to deliver (then it goes back to watching calls only) */
    int mask = STOP_MASK | S->idle_mask;
    for (lctx_runrec *r = S->runs; r; r = r->outer) lua_sethook(r->L, run_hook, mask, 1);
    for (int i = 0; i < LCTX_NSEEN; i++) {
      lua_State *t = S->seen[i];
      if (t) lua_sethook(t, run_hook, mask, 1);
    }
  }
  errno = saved;
}

static void install_signal(void) {
#ifdef LCTX_NO_SIGNAL
  /* TSan delivers signals only at its own interceptors, never to a thread
  ** busy in uninstrumented Lua: its build tests the count-hook mode */
  return;
#endif
  int sig = SIGRTMIN + 7;
  struct sigaction old, sa;
  if (sig > SIGRTMAX || sigaction(sig, NULL, &old) != 0) return;
  if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL) return;  /* someone's */
  if (old.sa_flags & SA_SIGINFO) return;
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) == 0) run_signal = sig;
}

/* The watch on a run's context: runs on the thread that ended it. */
static void arm_fn(void *arg) {
  lctx_runrec *r = arg;
  pthread_kill(r->tid, run_signal);  /* the run waits for us before it returns */
  atomic_store_explicit(&r->fired, 1, memory_order_release);
}

void lctx_run_poke(lctx_S *S) {
  pthread_kill(S->poke_tid, run_signal);  /* S->mu held: the run cannot end meanwhile */
}

/* Lets after_func callbacks queued by other threads reach a busy run. */
static void set_poke(lctx_S *S, int on) {
  if (!run_signal) return;
  pthread_mutex_lock(&S->mu);
  S->poke = on;
  S->poke_tid = pthread_self();
  pthread_mutex_unlock(&S->mu);
}

static void inline_submit(ctx_executor_t *ex, ctx_after_t *a) {
  (void)ex;
  ctx_after_run(a);
}
static ctx_executor_t inline_executor = { inline_submit };

/* ---- the hook ---- */

static lctx_S *state_of(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lctx_S_key);
  lctx_S *S = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return S;
}

static int event_mask(int event) {
  switch (event) {
    case LUA_HOOKCALL: case LUA_HOOKTAILCALL: return LUA_MASKCALL;
    case LUA_HOOKRET: return LUA_MASKRET;
    case LUA_HOOKLINE: return LUA_MASKLINE;
    default: return LUA_MASKCOUNT;
  }
}

/* The C functions that catch an error and carry on. */
static int swallows(lctx_S *S, lua_CFunction f) {
  if (!f) return 0;
  if (f == lctx_run) return 1;
  for (int i = 0; i < LCTX_NSWALLOW; i++) if (S->swallow[i] == f) return 1;
  return 0;
}

/* Remembers the threads seen running for the signal handler (a coroutine
** busy again after the one it resumed yielded is not the last one seen),
** pinned in a registry table so that none is collected while listed. */
static void note_running(lua_State *L, lctx_S *S) {
  S->cur = L;
  for (int i = 0; i < LCTX_NSEEN; i++) if (S->seen[i] == L) return;
  int i = S->seen_next;
  S->seen_next = (i + 1) % LCTX_NSEEN;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lctx_cur_key);
  lua_pushthread(L);
  lua_rawseti(L, -2, i + 1);  /* an existing array slot: no allocation */
  lua_pop(L, 1);
  S->seen[i] = L;  /* the one it replaces cannot be collected before this */
}

static void forget_seen(lua_State *L, lctx_S *S) {
  S->cur = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lctx_cur_key);
  for (int i = 0; i < LCTX_NSEEN; i++) {
    S->seen[i] = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    lua_pushboolean(L, 0);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pop(L, 1);
}

static int stop(lua_State *L, lctx_S *S, lctx_runrec *r) {
  if (!S->stopping) {
    S->stopping = 1;
    for (lctx_runrec *x = S->runs; x; x = x->outer) set_mode(x->L, S, STOP_MASK, RUN_COUNT);
    for (int i = 0; i < LCTX_NSEEN; i++)
      if (S->seen[i]) set_mode(S->seen[i], S, STOP_MASK, RUN_COUNT);
  }
  set_mode(L, S, STOP_MASK, RUN_COUNT);
  return lctx_run_raise(L, r);
}

static void run_hook(lua_State *L, lua_Debug *ar) {
  lctx_S *S = tl_S;
  if (!S && !(S = state_of(L))) return;
  if (S->idle_hook && (S->idle_mask & event_mask(ar->event))) S->idle_hook(L, ar);
  if (!S->runs) {
    /* a coroutine made inside a run that has ended: give it back the hook
    ** it would have had, so that nothing of ours fires after the run */
    lua_sethook(L, S->idle_hook, S->idle_mask, S->idle_count);
    return;
  }
  if (run_signal && L != S->cur) note_running(L, S);
  lctx_runrec *r;
  switch (ar->event) {
    case LUA_HOOKRET:
      if (!S->stopping || !(r = lctx_run_stopped(S))) return;
      lua_getinfo(L, "fr", ar);
      int again = swallows(S, lua_tocfunction(L, -1));
      lua_pop(L, 1);
      /* one that returns true caught nothing: a pcall that a <close>
      ** handler makes on the way out completes as usual */
      if (again && ar->ntransfer > 0 && lua_getlocal(L, ar, ar->ftransfer)) {
        again = !lua_toboolean(L, -1);
        lua_pop(L, 1);
      }
      if (again) lctx_run_raise(L, r);
      return;
    case LUA_HOOKCOUNT:
      if (atomic_load_explicit(&S->pending, memory_order_relaxed)) lctx_drain(L, S);
      if ((r = lctx_run_stopped(S)) != NULL) stop(L, S, r);
      /* a stale signal; but not inside a callback, whose runs behind the
      ** barrier may have ended: their stop needs the count hook after it */
      else if (lua_gethookcount(L) == 1 && !S->stopping && !S->barrier) normal_mode(L, S);
      return;
    case LUA_HOOKLINE:
      /* another tool's line hook (a coverage tool's): Lua counts down the
      ** hook count on every traced instruction even with no count hook, and
      ** a signal landing inside that decrement can leave the count hook
      ** armed by the handler at a huge negative count, never firing; so
      ** these events check the runs as calls do */
    case LUA_HOOKCALL:
    case LUA_HOOKTAILCALL:
      if (atomic_load_explicit(&S->pending, memory_order_relaxed)) lctx_drain(L, S);
      /* once stopping, calls (a <close> handler's, say) go on */
      if (!S->stopping && (r = lctx_run_stopped(S)) != NULL) stop(L, S, r);
      return;
    default:
      return;
  }
}

/* ---- ctx.run ---- */

int lctx_run(lua_State *L) {
  lctx_S *S = lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "run");
  if (lua_type(L, 2) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, 2, "__call") == LUA_TNIL)
      return lctx_typeerror(L, 2, "run", "function");
    lua_pop(L, 1);
  }
  lctx_runrec *outer_stop = lctx_run_stopped(S);
  if (outer_stop) return lctx_run_raise(L, outer_stop);  /* a check point too */
  if (ctx_done(u->c)) {  /* nothing runs */
    lctx_settle(L, S);
    lua_pushboolean(L, 0);
    lctx_pusherr(L, ctx_err(u->c));
    return 2;
  }
  pthread_once(&signal_once, install_signal);
  lctx_runrec r;
  r.c = u->c;  /* the userdata at index 1 keeps it alive */
  r.L = L;
  r.old_hook = lua_gethook(L);
  r.old_mask = lua_gethookmask(L);
  r.old_count = lua_gethookcount(L);
  r.raised = 0;
  r.watch = NULL;
  r.tid = pthread_self();
  atomic_init(&r.fired, 0);
  lctx_S *saved_tl = tl_S;  /* touches the TLS block before any signal can */
  if (!S->runs) {
    /* the hook found here is someone else's (a coverage tool's): it keeps
    ** its events; our own, left on a coroutine by an earlier run, is not */
    int ours = r.old_hook == run_hook;
    S->idle_hook = ours ? NULL : r.old_hook;
    S->idle_mask = ours ? 0 : r.old_mask;
    S->idle_count = ours ? 0 : r.old_count;
    S->stopping = 0;
  }
  if (run_signal &&
      ctx_after_func(u->c, arm_fn, &r, NULL, &inline_executor, &r.watch) != CTX_OK)
    return luaL_error(L, "ctx: %s", ctx_strerror(CTX_ENOMEM));
  r.outer = S->runs;
  atomic_signal_fence(memory_order_seq_cst);  /* r complete before the handler sees it */
  S->runs = &r;
  tl_S = S;
  if (!r.outer) set_poke(S, 1);
  normal_mode(L, S);  /* before fn runs: coroutines it creates inherit it */
  int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
  S->runs = r.outer;
  atomic_signal_fence(memory_order_seq_cst);
  if (r.watch) {
    /* after this, no signal of ours is on its way to this thread */
    if (!ctx_after_stop(r.watch))
      while (!atomic_load_explicit(&r.fired, memory_order_acquire)) sched_yield();
    ctx_after_free(r.watch);
  }
  if (!S->runs) {
    set_poke(S, 0);
    tl_S = saved_tl;
    S->stopping = 0;
    forget_seen(L, S);
    if (r.old_hook == run_hook) lua_sethook(L, S->idle_hook, S->idle_mask, S->idle_count);
    else lua_sethook(L, r.old_hook, r.old_mask, r.old_count);
  } else {
    if (!lctx_run_stopped(S)) S->stopping = 0;
    lua_sethook(L, r.old_hook, r.old_mask, r.old_count);
  }
  if (atomic_load_explicit(&S->pending, memory_order_relaxed)) lctx_drain(L, S);
  /* a stop caught where we could not see it (a coroutine killed by it, say)
  ** still ends the run as stopped */
  if (status == LUA_OK && !(r.raised && ctx_done(u->c))) {
    lua_pushboolean(L, 1);
    lua_replace(L, 1);      /* true, then fn's results */
    return lua_gettop(L);
  }
  if (status == LUA_OK) lua_settop(L, 2);  /* keep one slot: [c, err] */
  lua_pushboolean(L, 0);
  if (ctx_done(u->c)) {     /* stopped: c's error */
    lctx_settle(L, S);
    lctx_pusherr(L, ctx_err(u->c));
    return 2;
  }
  outer_stop = lctx_run_stopped(S);
  if (outer_stop) return lctx_run_raise(L, outer_stop);  /* not ours: pass it on */
  lua_pushvalue(L, -2);     /* fn's own error, as pcall */
  return 2;
}
