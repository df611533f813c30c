/* lctx_hub.c — the per-state hub: a core queue of after_func callbacks and
** releases for the owning lua_State, run there; blocking waits. */
#include <stdlib.h>
#include <string.h>
#include "lctx.h"

lctx_hub *lctx_hub_new(void) {
  lctx_hub *S = calloc(1, sizeof *S);
  if (!S) return NULL;
  if (ctx_queue_new(&S->q) != CTX_OK) {
    free(S);
    return NULL;
  }
  ctx_t *done;
  if (ctx_with_cancel(ctx_background(), &done) != CTX_OK) {
    ctx_queue_close(S->q);
    free(S);
    return NULL;
  }
  ctx_cancel(done);
  S->donectx = done;
  pthread_mutex_init(&S->mu, NULL);
  atomic_init(&S->refs, 1);
  atomic_init(&S->drain_gen, 0);
  atomic_init(&S->nregs, 0);
  S->cbref = LUA_NOREF;
  return S;
}

void lctx_hub_ref(lctx_hub *S) { atomic_fetch_add_explicit(&S->refs, 1, memory_order_relaxed); }

void lctx_hub_unref(lctx_hub *S) {
  if (atomic_fetch_sub_explicit(&S->refs, 1, memory_order_acq_rel) != 1) return;
  pthread_mutex_destroy(&S->mu);
  free(S);
}

/* The lua_State is closing: the queue is closed, which discards what waits
** in it (releases free their C parts only: the registry goes with the state)
** and stops the registrations still pending on it; releases that come later,
** from any thread, see `closed` and do the same at once. */
void lctx_hub_close(lctx_hub *S) {
  pthread_mutex_lock(&S->mu);
  S->closed = 1;
  pthread_mutex_unlock(&S->mu);
  ctx_queue_close(S->q);
  ctx_unref(S->donectx);
  lctx_hub_unref(S);
}

/* ---- releases: registry references dropped on the state's thread ---- */

static void rel_run(ctx_task_t *t, int discard) {
  lctx_rel *r = (lctx_rel *)((char *)t - offsetof(lctx_rel, task));
  if (!discard) luaL_unref(r->S->curL, LUA_REGISTRYINDEX, r->ref);
  r->destroy(r);
}

int lctx_is_release(const ctx_task_t *t) { return t->run == rel_run; }

void lctx_release(void *p) {
  lctx_rel *r = p;
  lctx_hub *S = r->S;
  pthread_mutex_lock(&S->mu);
  if (!S->closed) {  /* the queue is closed under S->mu: posting is safe */
    ctx_queue_post(S->q, &r->task);
    pthread_mutex_unlock(&S->mu);
    return;
  }
  pthread_mutex_unlock(&S->mu);
  r->destroy(r);
}

static void cause_destroy(lctx_rel *r) {
  lctx_hub_unref(r->S);
  free(r);
}

lctx_rel *lctx_cause_new(lctx_hub *S) {
  lctx_rel *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->task.run = rel_run;
  r->S = S;
  r->ref = LUA_NOREF;
  r->destroy = cause_destroy;
  lctx_hub_ref(S);
  return r;
}

/* ---- after_func registrations ---- */

/* Two owners: the core's registration (until its release has dropped the
** callback's reference) and the Lua stop handle. */
void lctx_af_unref(lctx_af *af) {
  if (atomic_fetch_sub_explicit(&af->owners, 1, memory_order_acq_rel) != 1) return;
  lctx_hub_unref(af->rel.S);
  free(af);
}

static void af_destroy(lctx_rel *r) { lctx_af_unref((lctx_af *)r); }

/* The release of a registration (after its callback ran, once stopped, or
** discarded at close): any thread. */
void lctx_af_release(void *p) {
  lctx_af *af = p;
  atomic_fetch_sub_explicit(&af->rel.S->nregs, 1, memory_order_relaxed);
  lctx_release(&af->rel);
}

lctx_af *lctx_af_new(lctx_hub *S) {
  lctx_af *af = calloc(1, sizeof *af);
  if (!af) return NULL;
  af->rel.task.run = rel_run;
  af->rel.S = S;
  af->rel.ref = LUA_NOREF;
  af->rel.destroy = af_destroy;
  atomic_init(&af->owners, 1);
  lctx_hub_ref(S);
  return af;
}

/* ---- running callbacks ---- */

static void warn_error(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  ctx_err_t *e = luaL_testudata(L, -1, LCTX_ERR_MT);
  if (e) msg = ctx_err_string(*e);       /* ctx.canceled: say so */
  if (!msg) msg = luaL_typename(L, -1);  /* no __tostring: it could raise again */
  lua_warning(L, "ctx: error in after_func callback: ", 1);
  lua_warning(L, msg, 0);
  lua_pop(L, 1);
}

/* Each callback runs in a coroutine of its own (an idle one is kept, in slot
** 1 of a registry table: storing there never allocates): a callback run from
** inside ctx.run's hook would otherwise run with the hook's thread's hooks
** off, beyond the reach of the run's stop. Made before a task is popped, so
** that nothing can raise once the core runs the callback. */
static int ensure_cb_thread(lua_State *L, lctx_hub *S) {
  if (S->cbref == LUA_NOREF) {
    lua_createtable(L, 1, 0);
    lua_pushboolean(L, 0);
    lua_rawseti(L, -2, 1);
    S->cbref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->cbref);
  int have = lua_rawgeti(L, -1, 1) == LUA_TTHREAD;
  lua_pop(L, 1);
  if (!have) {
    lua_newthread(L);
    lua_rawseti(L, -2, 1);
  }
  lua_pop(L, 1);
  return 1;
}

/* The callback, run by the core from the queue on the state's thread (in
** drain below). A stop of a run it holds back waits for its end, for at most
** LCTX_CALLBACK_BOUND; a callback stopped then is not warned about. */
void lctx_af_fn(void *arg) {
  lctx_af *af = arg;
  lctx_hub *S = af->rel.S;
  lua_State *L = S->curL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->cbref);  /* drain checked the stack */
  lua_rawgeti(L, -1, 1);
  lua_State *co = lua_tothread(L, -1);           /* anchored on L's stack */
  lua_pushboolean(L, 0);
  lua_rawseti(L, -3, 1);                         /* in use: nested ones make their own */
  if (co && lctx_slot_pin(S, co)) lctx_slot_sync(S, co);  /* count mode: its hook */
  int nres, status = LUA_ERRRUN;
  if (co) {
    lua_rawgeti(co, LUA_REGISTRYINDEX, af->rel.ref);
    size_t depth = lctx_level_push(S);
    S->incallback++;
    status = lua_resume(co, L, 0, &nres);
    S->incallback--;
    int stopped = lctx_level_pop(S, depth);
    if (status == LUA_YIELD) {
      lua_warning(L, "ctx: error in after_func callback: attempt to yield from a callback", 0);
    } else if (status != LUA_OK && !(stopped && lctx_is_stop(co, -1))) {
      lua_pushvalue(co, -1);
      warn_error(co);
    }
    lctx_slot_unpin(S, co);
    if (status != LUA_OK) lua_resetthread(co);  /* its <close> variables, as pcall would */
    lua_settop(co, 0);
  }
  /* kept for the next one if it returned (one stopped from a hook is left
  ** with that thread's hooks off) */
  lua_rawgeti(L, -2, 1);
  int cached = lua_type(L, -1) == LUA_TTHREAD;
  lua_pop(L, 1);
  if (status == LUA_OK && !cached) lua_rawseti(L, -2, 1);
  else lua_pop(L, 1);
  lua_pop(L, 1);
}

/* Runs what other threads queued for this state, until nothing is left
** (callbacks may queue more). Inside a callback only a wait runs others
** (nested): anywhere else they run after it, so that a chain of callbacks,
** each ending a context watched by the next, never deepens the C stack. */
static void drain(lua_State *L, lctx_hub *S, int nested) {
  if (!nested && S->incallback) return;
  luaL_checkstack(L, 8, "ctx");
  lua_State *saved = S->curL;
  S->curL = L;
  for (;;) {
    /* a run whose stop callbacks have held back for their bound: the
    ** others wait until it has returned */
    if (lctx_run_stopped(S) && lctx_run_held_over(S)) break;
    ensure_cb_thread(L, S);
    ctx_task_t *t;
    if (ctx_queue_pop(S->q, 0, &t) != CTX_OK) {
      atomic_fetch_add_explicit(&S->drain_gen, 1, memory_order_release);
      break;
    }
    ctx_task_run(t);  /* a release, or a callback (lctx_af_fn) */
  }
  S->curL = saved;
}

void lctx_drain(lua_State *L, lctx_hub *S) { drain(L, S, 0); }

/* ---- waits ---- */

void lctx_ctxs_init(lctx_ctxs *l) {
  l->n = 0;
  l->cap = sizeof l->small / sizeof l->small[0];
  l->v = l->small;
}

int lctx_ctxs_add(lctx_ctxs *l, ctx_t *c) {
  if (l->n == l->cap) {
    size_t cap = l->cap * 2;
    ctx_t **v = malloc(cap * sizeof *v);
    if (!v) return -1;
    memcpy(v, l->v, l->n * sizeof *v);
    if (l->v != l->small) free(l->v);
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = c;
  return 0;
}

void lctx_ctxs_free(lctx_ctxs *l) {
  if (l->v != l->small) free(l->v);
  lctx_ctxs_init(l);
}

/* Whoever sees c done sees its callbacks run: the thread that ended it may
** still be handing them to the queue (ctx_settle waits for that). */
void lctx_settle(lua_State *L, lctx_hub *S, ctx_t *c) {
  ctx_settle(c);
  if (ctx_queue_pending(S->q)) lctx_drain(L, S);
}

static lua_Hook main_hook(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  lua_State *M = lua_tothread(L, -1);
  lua_pop(L, 1);
  return M ? lua_gethook(M) : NULL;
}

/* A signal handler ran during a wait: one that set a hook that is not ours
** (lua.c's on Ctrl-C) wants Lua to run it now, so the wait returns. */
static int interrupted(lua_State *L, lua_Hook before_L, lua_Hook before_main) {
  lua_Hook h = lua_gethook(L), m = main_hook(L);
  return (h != before_L && h != lctx_run_hook) || (m != before_main && m != lctx_run_hook);
}

int lctx_wait(lua_State *L, lctx_hub *S, ctx_t *c, int64_t until) {
  lua_Hook before_L = lua_gethook(L), before_main = main_hook(L);
  for (;;) {
    int64_t hold = lctx_checkpoint(L, S);  /* a run's stop in reach: raised */
    int64_t now = ctx_now();
    if (ctx_done(c) || now >= until) break;
    lctx_ctxs w;
    lctx_ctxs_init(&w);
    if (lctx_ctxs_add(&w, c) != 0 || lctx_run_watch(S, &w) != 0) {
      lctx_ctxs_free(&w);
      return luaL_error(L, "ctx: %s", ctx_strerror(CTX_ENOMEM));
    }
    int64_t end = hold < until ? hold : until;
    int qfd = ctx_queue_fd(S->q);
    size_t which;
    int rc = ctx_wait_any(w.v, w.n, &qfd, 1, end == CTX_FOREVER ? -1 : end - now, &which);
    lctx_ctxs_free(&w);
    if (rc == CTX_EINTR && interrupted(L, before_L, before_main)) return ctx_done(c);
    if (rc == CTX_ENOMEM || rc == CTX_EMFILE) return luaL_error(L, "ctx: %s", ctx_strerror(rc));
    if (ctx_queue_pending(S->q)) drain(L, S, 1);
  }
  if (ctx_done(c)) {
    ctx_settle(c);
    if (ctx_queue_pending(S->q)) drain(L, S, 1);
  }
  return ctx_done(c);
}
