/* lctx_run.c — ctx.run(c, fn, ...): pcall that stops pure Lua code when c
** ends, through a count hook that coroutines created inside inherit. */
#include "lctx.h"

const char lctx_S_key, lctx_canceled_key, lctx_deadline_key;

/* Instructions between two checks: a stop comes within microseconds. */
#define RUN_COUNT 1000

lctx_runrec *lctx_run_stopped(lctx_S *S) {
  lctx_runrec *stopped = NULL;
  for (lctx_runrec *r = S->runs; r; r = r->outer)
    if (ctx_done(r->c)) stopped = r;  /* the outermost: inner runs pass it on */
  return stopped;
}

int lctx_run_raise(lua_State *L, lctx_runrec *r) {
  r->raised = 1;
  lua_rawgetp(L, LUA_REGISTRYINDEX,
              ctx_err(r->c) == CTX_ERR_DEADLINE ? &lctx_deadline_key : &lctx_canceled_key);
  return lua_error(L);
}

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

/* The C functions that can catch an error and carry on: pcall, xpcall,
** coroutine.resume and ctx.run itself. */
static int swallows(lctx_S *S, lua_CFunction f) {
  if (!f) return 0;
  if (f == lctx_run) return 1;
  for (int i = 0; i < LCTX_NSWALLOW; i++) if (S->swallow[i] == f) return 1;
  return 0;
}

/* Count events check for a stop (and deliver callbacks). Once a stop was
** raised on a thread, it also gets return events: when pcall (or another
** function that catches errors) returns there, the stop is raised again, so
** that no pcall inside the run swallows it, while <close> handlers run. */
static void run_hook(lua_State *L, lua_Debug *ar) {
  lctx_S *S = state_of(L);
  if (!S) return;
  if (S->idle_hook && (S->idle_mask & event_mask(ar->event))) S->idle_hook(L, ar);
  if (!S->runs) {
    /* a coroutine made inside a run that has ended: give it back the hook
    ** it would have had, so that nothing of ours fires after the run */
    lua_sethook(L, S->idle_hook, S->idle_mask, S->idle_count);
    return;
  }
  if (ar->event == LUA_HOOKRET) {
    lctx_runrec *r = lctx_run_stopped(S);
    if (!r) return;
    lua_getinfo(L, "f", ar);
    int again = swallows(S, lua_tocfunction(L, -1));
    lua_pop(L, 1);
    if (again) lctx_run_raise(L, r);
    return;
  }
  if (ar->event != LUA_HOOKCOUNT) return;
  if (atomic_load_explicit(&S->pending, memory_order_relaxed)) lctx_drain(L, S);
  lctx_runrec *r = lctx_run_stopped(S);
  if (r) {
    lua_sethook(L, run_hook, lua_gethookmask(L) | LUA_MASKRET, lua_gethookcount(L));
    lctx_run_raise(L, r);
  }
}

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
    lua_pushboolean(L, 0);
    lctx_pusherr(L, ctx_err(u->c));
    return 2;
  }
  lctx_runrec r;
  r.c = u->c;  /* the userdata at index 1 keeps it alive */
  r.old_hook = lua_gethook(L);
  r.old_mask = lua_gethookmask(L);
  r.old_count = lua_gethookcount(L);
  r.raised = 0;
  if (!S->runs) {
    /* the hook found here is someone else's (a coverage tool's): it keeps
    ** its events; our own, left on a coroutine by an earlier run, is not */
    int ours = r.old_hook == run_hook;
    S->idle_hook = ours ? NULL : r.old_hook;
    S->idle_mask = ours ? 0 : r.old_mask;
    S->idle_count = ours ? 0 : r.old_count;
  }
  r.outer = S->runs;
  S->runs = &r;
  /* set before fn runs, so that coroutines it creates inherit it */
  int count = RUN_COUNT;
  if ((S->idle_mask & LUA_MASKCOUNT) && S->idle_count < count) count = S->idle_count;
  lua_sethook(L, run_hook, S->idle_mask | LUA_MASKCOUNT, count);
  int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
  S->runs = r.outer;
  if (r.old_hook == run_hook && !S->runs)
    lua_sethook(L, S->idle_hook, S->idle_mask, S->idle_count);
  else
    lua_sethook(L, r.old_hook, r.old_mask, r.old_count);
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
    lctx_pusherr(L, ctx_err(u->c));
    return 2;
  }
  outer_stop = lctx_run_stopped(S);
  if (outer_stop) return lctx_run_raise(L, outer_stop);  /* not ours: pass it on */
  lua_pushvalue(L, -2);     /* fn's own error, as pcall */
  return 2;
}
