/* lctx.c — ctx.core, the C part of `require "ctx"` for Lua 5.4: the Context
** userdata, its constructors and methods, the two error values, after_func. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lctx.h"

/* ---- argument errors ---- */

int lctx_argerror(lua_State *L, int arg, const char *fname, const char *msg) {
  lua_Debug ar;
  if (lua_getstack(L, 0, &ar)) {
    lua_getinfo(L, "n", &ar);
    if (ar.namewhat && strcmp(ar.namewhat, "method") == 0) {
      arg--;  /* as luaL_argerror: self is not counted */
      if (arg == 0) return luaL_error(L, "calling '%s' on bad self (%s)", fname, msg);
    }
  }
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
}

int lctx_typeerror(lua_State *L, int arg, const char *fname, const char *tname) {
  const char *got;
  if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING) got = lua_tostring(L, -1);
  else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA) got = "light userdata";
  else got = luaL_typename(L, arg);
  return lctx_argerror(L, arg, fname, lua_pushfstring(L, "%s expected, got %s", tname, got));
}

int lctx_badctx(lua_State *L, int arg, const char *fname) {
  lctx_ud *u = lua_touserdata(L, arg);
  if (u && lua_getmetatable(L, arg) && lua_rawequal(L, -1, lua_upvalueindex(LCTX_UV_MT)))
    return lctx_argerror(L, arg, fname, "context already collected");
  return lctx_typeerror(L, arg, fname, LCTX_MT);
}

lua_Number lctx_checkseconds(lua_State *L, int arg, const char *fname) {
  int isnum;
  lua_Number n = lua_tonumberx(L, arg, &isnum);
  if (!isnum) lctx_typeerror(L, arg, fname, "number");
  if (isnan(n)) lctx_argerror(L, arg, fname, "seconds must not be NaN");
  return n;
}

void lctx_pusherr(lua_State *L, ctx_err_t err) {
  if (err == CTX_ERR_CANCELED) lua_pushvalue(L, lua_upvalueindex(LCTX_UV_CANCELED));
  else if (err == CTX_ERR_DEADLINE) lua_pushvalue(L, lua_upvalueindex(LCTX_UV_DEADLINE));
  else lua_pushnil(L);
}

static int fail(lua_State *L, int rc) {
  return luaL_error(L, "ctx: %s", ctx_strerror(rc));
}

/* A finalizer that runs at lua_close after the hub's own (an object whose
** metatable got __gc before require "ctx") may still call ctx: an error. */
lctx_hub *lctx_closed_error(lua_State *L) {
  luaL_error(L, "ctx: the Lua state is closing");
  return NULL;
}

/* ---- making contexts ---- */

/* A new Context userdata on the top of the stack, its parent (at `parent`)
** kept as user value so that ancestors' keys outlive it. */
static lctx_ud *newctx(lua_State *L, int parent, size_t size) {
  lctx_ud *u = lua_newuserdatauv(L, size, 1);
  u->c = NULL;
  if (size > LCTX_UD_SMALL) u->keyref = u->valref = LUA_NOREF;
  lua_pushvalue(L, lua_upvalueindex(LCTX_UV_MT));
  lua_setmetatable(L, -2);
  lua_pushvalue(L, parent);
  lua_setiuservalue(L, -2, 1);
  return u;
}

/* cancel() and cancel(cause): upvalue 1 is the hub box, 2 the context. */
static int l_cancel(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  lctx_ud *u = lua_touserdata(L, lua_upvalueindex(2));
  if (u->c) ctx_cancel(u->c);
  if (ctx_queue_pending(S->q)) lctx_drain(L, S);
  return 0;
}

static int l_cancel_cause(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  lctx_ud *u = lua_touserdata(L, lua_upvalueindex(2));
  if (!u->c) return 0;
  if (lua_isnoneornil(L, 1) || ctx_done(u->c)) {
    ctx_cancel(u->c);  /* no cause: the plain error is recorded */
  } else {
    lua_settop(L, 1);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lctx_rel *r = lctx_cause_new(S);
    if (!r) {
      luaL_unref(L, LUA_REGISTRYINDEX, ref);
      ctx_cancel(u->c);
      return fail(L, CTX_ENOMEM);
    }
    r->ref = ref;
    ctx_cancel_cause(u->c, r, lctx_release);  /* the core takes r in any case */
  }
  if (ctx_queue_pending(S->q)) lctx_drain(L, S);
  return 0;
}

/* Returns c, cancel: the context on the stack top becomes the closure's upvalue. */
static int with_cancel_fn(lua_State *L, lua_CFunction cancel) {
  lua_pushvalue(L, lua_upvalueindex(LCTX_UV_HUB));
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, cancel, 2);
  return 2;
}

static int l_with_cancel(lua_State *L) {
  lctx_enter(L);
  lctx_ud *p = lctx_check(L, 1, "with_cancel");
  lctx_ud *u = newctx(L, 1, LCTX_UD_SMALL);
  int rc = ctx_with_cancel(p->c, &u->c);
  if (rc != CTX_OK) return fail(L, rc);
  return with_cancel_fn(L, l_cancel);
}

static int l_with_cancel_cause(lua_State *L) {
  lctx_enter(L);
  lctx_ud *p = lctx_check(L, 1, "with_cancel_cause");
  lctx_ud *u = newctx(L, 1, LCTX_UD_SMALL);
  int rc = ctx_with_cancel(p->c, &u->c);
  if (rc != CTX_OK) return fail(L, rc);
  return with_cancel_fn(L, l_cancel_cause);
}

/* The deadline constructors; a non-nil cause at index 3 becomes the cause
** reported when the deadline fires. */
static int with_deadline(lua_State *L, int64_t deadline, int has_cause) {
  lctx_hub *S = lctx_hub_of(L);
  lctx_ud *p = lua_touserdata(L, 1);
  lctx_rel *r = NULL;
  lctx_ud *u = newctx(L, 1, LCTX_UD_SMALL);
  if (has_cause && !lua_isnil(L, 3)) {
    r = lctx_cause_new(S);
    if (!r) return fail(L, CTX_ENOMEM);
    lua_pushvalue(L, 3);
    r->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  int rc = r ? ctx_with_deadline_cause(p->c, deadline, r, lctx_release, &u->c)
             : ctx_with_deadline(p->c, deadline, &u->c);
  if (rc != CTX_OK) {
    if (r) {  /* not taken on failure */
      luaL_unref(L, LUA_REGISTRYINDEX, r->ref);
      r->destroy(r);
    }
    return fail(L, rc);
  }
  return with_cancel_fn(L, l_cancel);
}

int64_t lctx_after_now(lua_Number seconds) {
  return ctx_deadline_from_timeout(ctx_seconds_to_ns(seconds));  /* both saturate */
}

/* The four deadline constructors differ only in name, time scale and cause. */
static int deadline_entry(lua_State *L, const char *name, int is_timeout, int has_cause) {
  lctx_enter(L);
  lctx_check(L, 1, name);
  lua_Number t = lctx_checkseconds(L, 2, name);
  lua_settop(L, has_cause ? 3 : 2);
  return with_deadline(L, is_timeout ? lctx_after_now(t) : ctx_wall_to_mono(t), has_cause);
}

static int l_with_deadline(lua_State *L) { return deadline_entry(L, "with_deadline", 0, 0); }
static int l_with_deadline_cause(lua_State *L) { return deadline_entry(L, "with_deadline_cause", 0, 1); }
static int l_with_timeout(lua_State *L) { return deadline_entry(L, "with_timeout", 1, 0); }
static int l_with_timeout_cause(lua_State *L) { return deadline_entry(L, "with_timeout_cause", 1, 1); }

static int l_with_value(lua_State *L) {
  lctx_enter(L);
  lctx_ud *p = lctx_check(L, 1, "with_value");
  lctx_key k;
  lctx_key_from(L, 2, "with_value", 2, &k);
  lua_settop(L, 3);
  lctx_ud *u = newctx(L, 1, sizeof(lctx_ud));
  u->key = k;  /* points into the key, which keyref keeps alive */
  lua_pushvalue(L, 2);
  u->keyref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, 3);
  u->valref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* no release: the userdata owns key and value, and the core reads them
  ** only through our calls on live descendants */
  int rc = ctx_with_value(p->c, &u->key, u, NULL, &u->c);
  if (rc != CTX_OK) return fail(L, rc);
  return 1;
}

static int l_without_cancel(lua_State *L) {
  lctx_enter(L);
  lctx_ud *p = lctx_check(L, 1, "without_cancel");
  lctx_ud *u = newctx(L, 1, LCTX_UD_SMALL);
  int rc = ctx_without_cancel(p->c, &u->c);
  if (rc != CTX_OK) return fail(L, rc);
  return 1;
}

static int l_background(lua_State *L) {
  lctx_enter(L);
  lua_pushvalue(L, lua_upvalueindex(LCTX_UV_BG));
  return 1;
}

static int l_todo(lua_State *L) {
  lctx_enter(L);
  lua_pushvalue(L, lua_upvalueindex(LCTX_UV_TODO));
  return 1;
}

/* ---- after_func ---- */

static int l_stop(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  lctx_af *af = *(lctx_af **)lua_touserdata(L, lua_upvalueindex(2));
  int r = af && ctx_after_stop(af->h) == 1;
  if (ctx_queue_pending(S->q)) lctx_drain(L, S);
  lua_pushboolean(L, r);
  return 1;
}

static int stop_gc(lua_State *L) {
  lctx_af **box = lua_touserdata(L, 1);
  lctx_af *af = *box;
  *box = NULL;
  if (af) {
    ctx_after_free(af->h);
    lctx_af_unref(af);
  }
  return 0;
}

static int l_after_func(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "after_func");
  if (lua_type(L, 2) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, 2, "__call") == LUA_TNIL)
      return lctx_typeerror(L, 2, "after_func", "function");
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  lctx_af **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, LCTX_STOP_MT);
  lua_pushvalue(L, 2);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lctx_af *af = lctx_af_new(S);
  if (!af) {
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    return fail(L, CTX_ENOMEM);
  }
  af->rel.ref = ref;
  atomic_store(&af->owners, 2);  /* the registration and the stop handle */
  atomic_fetch_add_explicit(&S->nregs, 1, memory_order_relaxed);
  int rc = ctx_after_func(u->c, lctx_af_fn, af, lctx_af_release, ctx_queue_executor(S->q), &af->h);
  if (rc != CTX_OK) {  /* nothing taken: drop the registration's share here */
    atomic_fetch_sub_explicit(&S->nregs, 1, memory_order_relaxed);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    atomic_store(&af->owners, 1);
    lctx_af_unref(af);
    return fail(L, rc);
  }
  *box = af;
  lctx_run_registered(S);  /* a busy run is poked when it is queued */
  lua_pushvalue(L, lua_upvalueindex(LCTX_UV_HUB));
  lua_pushvalue(L, 3);
  lua_pushcclosure(L, l_stop, 2);
  /* on a context already done, fn runs now, inside this call */
  if (ctx_queue_pending(S->q)) lctx_drain(L, S);
  return 1;
}

/* ---- queries ---- */

/* done(), err() and cause() that see c done first run the callbacks that
** its end made pending (a loop polling c:done() sees them run) */
static int l_cause(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "cause");
  ctx_err_t err = ctx_err(u->c);
  if (err == CTX_ERR_NONE) {
    lua_pushnil(L);
  } else {
    lctx_settle(L, S, u->c);
    lctx_rel *r = ctx_cause(u->c);
    if (r) lua_rawgeti(L, LUA_REGISTRYINDEX, r->ref);
    else lctx_pusherr(L, err);
  }
  return 1;
}

static int m_done(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "done");
  int done = ctx_done(u->c);
  if (done) lctx_settle(L, S, u->c);
  lua_pushboolean(L, done);
  return 1;
}

static int m_err(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "err");
  ctx_err_t err = ctx_err(u->c);
  if (err != CTX_ERR_NONE) lctx_settle(L, S, u->c);
  lctx_pusherr(L, err);
  return 1;
}

static int m_deadline(lua_State *L) {
  lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "deadline");
  int64_t d;
  if (ctx_deadline(u->c, &d) == 1) lua_pushnumber(L, ctx_mono_to_wall(d));
  else lua_pushnil(L);
  return 1;
}

static int m_remaining(lua_State *L) {
  lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "remaining");
  if (ctx_deadline(u->c, NULL) == 1)
    lua_pushnumber(L, (lua_Number)ctx_remaining(u->c) / 1e9);  /* 0 once passed */
  else
    lua_pushnil(L);
  return 1;
}

static int m_value(lua_State *L) {
  lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "value");
  lctx_key k;
  void *v;
  lctx_key_from(L, 2, "value", 2, &k);
  if (ctx_value(u->c, &k, lctx_key_eq, NULL, &v) == 1)
    lua_rawgeti(L, LUA_REGISTRYINDEX, ((lctx_ud *)v)->valref);
  else
    lua_pushnil(L);
  return 1;
}

/* Absolute end of a wait of `seconds` (nil: none). */
static int64_t wait_until(lua_State *L, int arg, const char *fname) {
  if (lua_isnoneornil(L, arg)) return CTX_FOREVER;
  return lctx_after_now(lctx_checkseconds(L, arg, fname));
}

static int m_wait(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "wait");
  int64_t until = wait_until(L, 2, "wait");
  lua_pushboolean(L, lctx_wait(L, S, u->c, until));
  return 1;
}

static int l_sleep(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "sleep");
  int64_t until = lctx_after_now(lctx_checkseconds(L, 2, "sleep"));
  if (!lctx_wait(L, S, u->c, until)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lctx_pusherr(L, ctx_err(u->c));
  return 2;
}

static int l_now(lua_State *L) {
  lctx_enter(L);
  lua_pushnumber(L, ctx_wall_now());
  return 1;
}

/* How many children and pending after_funcs c has (for tests). */
static int l_children(lua_State *L) {
  lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "_children");
  lua_pushinteger(L, (lua_Integer)ctx_num_children(u->c));
  return 1;
}

/* How a ctx.run started here now would stop busy code (for tests):
** "signal" or "count", and the signal's name. */
static int l_mode(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  int sig = lctx_signal();
  int fast = S->R.runs ? S->R.fast : sig && S->R.alloc && lctx_signal_here(sig);
  lua_pushstring(L, fast ? "signal" : "count");
#ifdef SIGRTMIN
  if (sig >= SIGRTMIN) lua_pushfstring(L, "SIGRTMIN+%d", sig - SIGRTMIN);
  else
#endif
  if (sig == SIGURG) lua_pushliteral(L, "SIGURG");
  else lua_pushnil(L);
  return 2;
}

/* ---- metamethods ---- */

static int m_tostring(lua_State *L) {
  lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "__tostring");
  char *s = ctx_string(u->c, lctx_fmt, L);
  if (!s) return fail(L, CTX_ENOMEM);
  lua_pushstring(L, s);
  free(s);
  return 1;
}

/* __close cancels a context that has a cancel function (others ignore it);
** __gc only drops the reference: a dropped context is detached, not
** canceled, so after_funcs still pending on it do not fire. */
static int m_close(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  lctx_ud *u = lctx_check(L, 1, "__close");
  ctx_cancel(u->c);  /* CTX_EINVAL for the kinds that cannot be canceled */
  if (ctx_queue_pending(S->q)) lctx_drain(L, S);
  return 0;
}

static int m_gc(lua_State *L) {
  lctx_ud *u = lua_touserdata(L, 1);
  if (!u || lua_rawlen(L, 1) < LCTX_UD_SMALL || !lua_getmetatable(L, 1) ||
      !lua_rawequal(L, -1, lua_upvalueindex(LCTX_UV_MT)))
    return 0;  /* reached only through the debug library */
  ctx_t *c = u->c;
  u->c = NULL;
  ctx_unref(c);  /* releases of causes are queued, never run Lua here */
  if (lua_rawlen(L, 1) > LCTX_UD_SMALL) {
    luaL_unref(L, LUA_REGISTRYINDEX, u->keyref);
    luaL_unref(L, LUA_REGISTRYINDEX, u->valref);
    u->keyref = u->valref = LUA_NOREF;
  }
  return 0;
}

static int err_tostring(lua_State *L) {
  ctx_err_t *e = luaL_checkudata(L, 1, LCTX_ERR_MT);
  lua_pushstring(L, ctx_err_string(*e));
  return 1;
}

static int err_concat(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  luaL_tolstring(L, 2, NULL);
  lua_concat(L, 2);
  return 1;
}

/* The hub's finalizer, at lua_close (the module functions hold the box). */
static int hub_gc(lua_State *L) {
  lctx_hub **box = lua_touserdata(L, 1);
  lctx_hub *S = *box;
  if (!S) return 0;
  *box = NULL;  /* later calls raise an error */
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lctx_hub_key);
  lctx_runs_close(L, S);
  lctx_hub_close(S);
  return 0;
}

static const luaL_Reg funcs[] = {
  {"background", l_background}, {"todo", l_todo},
  {"with_cancel", l_with_cancel}, {"with_cancel_cause", l_with_cancel_cause},
  {"with_deadline", l_with_deadline}, {"with_deadline_cause", l_with_deadline_cause},
  {"with_timeout", l_with_timeout}, {"with_timeout_cause", l_with_timeout_cause},
  {"with_value", l_with_value}, {"without_cancel", l_without_cancel},
  {"after_func", l_after_func}, {"cause", l_cause}, {"now", l_now},
  {"sleep", l_sleep}, {"run", lctx_run}, {"execute", lctx_execute},
  {"_children", l_children}, {"_mode", l_mode},
  {NULL, NULL}
};

static const luaL_Reg methods[] = {
  {"done", m_done}, {"wait", m_wait}, {"err", m_err}, {"cause", l_cause},
  {"deadline", m_deadline}, {"remaining", m_remaining}, {"value", m_value},
  {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
  {"__tostring", m_tostring}, {"__close", m_close}, {"__gc", m_gc},
  {NULL, NULL}
};

static void newerr(lua_State *L, ctx_err_t err) {
  ctx_err_t *e = lua_newuserdatauv(L, sizeof *e, 0);
  *e = err;
  luaL_setmetatable(L, LCTX_ERR_MT);
}

static void newroot(lua_State *L, int mt, ctx_t *c) {
  lctx_ud *u = lua_newuserdatauv(L, LCTX_UD_SMALL, 1);
  u->c = c;
  lua_pushvalue(L, mt);
  lua_setmetatable(L, -2);
}

/* pushes the upvalues then registers l into the table at the stack top */
static void setfuncs(lua_State *L, const luaL_Reg *l, int first_uv) {
  for (int i = 0; i < LCTX_NUV; i++) lua_pushvalue(L, first_uv + i);
  luaL_setfuncs(L, l, LCTX_NUV);
}

/* the one symbol the module exports (it is built with hidden visibility) */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((visibility("default")))
#endif
int luaopen_ctx_core(lua_State *L) {
  /* one hub per state, even if the module is required again */
  if (lua_getfield(L, LUA_REGISTRYINDEX, "ctx.core") == LUA_TTABLE) return 1;
  lua_settop(L, 0);
  lctx_hub **box = lua_newuserdatauv(L, sizeof *box, 0);       /* 1 */
  *box = NULL;
  luaL_newmetatable(L, LCTX_HUB_MT);
  lua_pushcfunction(L, hub_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, 1);
  if (!(*box = lctx_hub_new())) return fail(L, CTX_ENOMEM);
  lua_pushlightuserdata(L, *box);  /* for the run hook, which has no upvalues */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lctx_hub_key);
  lctx_runs_init(L, *box);
  luaL_newmetatable(L, LCTX_MT);                                /* 2 */
  luaL_newmetatable(L, LCTX_ERR_MT);
  lua_pushcfunction(L, err_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, err_concat);
  lua_setfield(L, -2, "__concat");
  lua_pop(L, 1);
  newerr(L, CTX_ERR_CANCELED);                                  /* 3 */
  newerr(L, CTX_ERR_DEADLINE);                                  /* 4 */
  lua_pushvalue(L, 3);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lctx_canceled_key);
  lua_pushvalue(L, 4);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lctx_deadline_key);
  newroot(L, 2, ctx_background());                              /* 5 */
  newroot(L, 2, ctx_todo());                                    /* 6 */
  luaL_newmetatable(L, LCTX_STOP_MT);
  lua_pushcfunction(L, stop_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  /* the Context metatable */
  lua_newtable(L);
  setfuncs(L, methods, 1);
  lua_setfield(L, 2, "__index");
  lua_pushvalue(L, 2);
  setfuncs(L, metamethods, 1);
  /* getmetatable(c) must not hand out __gc: a context "collected" by hand
  ** would free keys that its descendants still compare against */
  lua_pushliteral(L, LCTX_MT);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  /* the module */
  luaL_newlibtable(L, funcs);
  setfuncs(L, funcs, 1);
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, "canceled");
  lua_pushvalue(L, 4);
  lua_setfield(L, -2, "deadline_exceeded");
  lua_pushfstring(L, "ctx %s", ctx_version());
  lua_setfield(L, -2, "_VERSION");
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "ctx.core");
  return 1;
}
