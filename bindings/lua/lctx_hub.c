/* lctx_hub.c — the per-state hub: after_func callbacks and releases queued by
** any thread, run or dropped on the owning lua_State; blocking waits. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lctx.h"

lctx_hub *lctx_hub_new(void) {
  lctx_hub *S = calloc(1, sizeof *S);
  if (!S) return NULL;
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);  /* the deadlines' clock */
  pthread_cond_init(&S->cv, &a);
  pthread_cond_init(&S->ncv, &a);
  pthread_condattr_destroy(&a);
  pthread_mutex_init(&S->mu, NULL);
  atomic_init(&S->refs, 1);
  atomic_init(&S->pending, 0);
  S->cbref = LUA_NOREF;
  return S;
}

void lctx_hub_ref(lctx_hub *S) { atomic_fetch_add_explicit(&S->refs, 1, memory_order_relaxed); }

void lctx_hub_unref(lctx_hub *S) {
  if (atomic_fetch_sub_explicit(&S->refs, 1, memory_order_acq_rel) != 1) return;
  pthread_mutex_destroy(&S->mu);
  pthread_cond_destroy(&S->cv);
  pthread_cond_destroy(&S->ncv);
  free(S);
}

/* The lua_State is closing: what is queued is dropped without Lua (the
** registry goes away with the state), and later arrivals are dropped at once. */
static void stop_pending(lctx_hub *S);

void lctx_hub_close(lctx_hub *S) {
  pthread_mutex_lock(&S->mu);
  S->closed = 1;
  lctx_rel *dead = S->dead;
  lctx_af *ready = S->ready;
  S->dead = NULL;
  S->ready = S->ready_tail = NULL;
  pthread_mutex_unlock(&S->mu);
  for (lctx_af *af = ready, *next; af; af = next) {
    next = af->qnext;
    ctx_after_run(af->run);  /* af->L is NULL: the callback is skipped */
  }
  for (lctx_rel *r = dead, *next; r; r = next) {
    next = r->next;
    r->destroy(r);
  }
  stop_pending(S);
  lctx_hub_unref(S);
}

static void af_destroy(lctx_rel *r);

void lctx_release(void *p) {
  lctx_rel *r = p;
  lctx_hub *S = r->S;
  pthread_mutex_lock(&S->mu);
  if (r->destroy == af_destroy) ((lctx_af *)r)->c = NULL;  /* stopped */
  if (!S->closed) {
    r->next = S->dead;
    S->dead = r;
    atomic_store_explicit(&S->pending, 1, memory_order_relaxed);
    pthread_mutex_unlock(&S->mu);
    return;
  }
  pthread_mutex_unlock(&S->mu);
  r->destroy(r);
}

/* ---- causes ---- */

static void cause_destroy(lctx_rel *r) {
  lctx_hub_unref(r->S);
  free(r);
}

lctx_rel *lctx_cause_new(lctx_hub *S) {
  lctx_rel *r = malloc(sizeof *r);
  if (!r) return NULL;
  r->next = NULL;
  r->S = S;
  r->ref = LUA_NOREF;
  r->destroy = cause_destroy;
  lctx_hub_ref(S);
  return r;
}

/* ---- after_func registrations ---- */

void lctx_af_unref(lctx_af *af) {
  if (atomic_fetch_sub_explicit(&af->owners, 1, memory_order_acq_rel) != 1) return;
  lctx_hub *S = af->rel.S;
  pthread_mutex_lock(&S->mu);
  if (af->prev) af->prev->next = af->next; else S->afs = af->next;
  if (af->next) af->next->prev = af->prev;
  pthread_mutex_unlock(&S->mu);
  if (af->h) ctx_after_free(af->h);
  lctx_hub_unref(S);
  free(af);
}

/* At close, registrations still pending would hold their contexts forever
** (nothing can stop them any more): stop them. */
static void stop_pending(lctx_hub *S) {
  pthread_mutex_lock(&S->mu);
  size_t n = 0;
  for (lctx_af *af = S->afs; af; af = af->next) n++;
  lctx_af **all = n ? malloc(n * sizeof *all) : NULL;
  n = 0;
  if (all)
    for (lctx_af *af = S->afs; af; af = af->next) {
      atomic_fetch_add_explicit(&af->owners, 1, memory_order_relaxed);
      all[n++] = af;
    }
  pthread_mutex_unlock(&S->mu);
  for (size_t i = 0; i < n; i++) {
    if (all[i]->h) ctx_after_stop(all[i]->h);  /* released at once: S is closed */
    lctx_af_unref(all[i]);
  }
  free(all);
}

static void af_destroy(lctx_rel *r) { lctx_af_unref((lctx_af *)r); }

/* Called by whichever thread ended the context (the timer thread included):
** queue and wake a waiting state, nothing more. */
static void af_submit(ctx_executor_t *ex, ctx_after_t *a) {
  lctx_af *af = (lctx_af *)((char *)ex - offsetof(lctx_af, ex));
  lctx_hub *S = af->rel.S;
  af->run = a;
  pthread_mutex_lock(&S->mu);
  af->c = NULL;
  if (S->closed) {
    pthread_mutex_unlock(&S->mu);
    ctx_after_run(a);  /* no state to run it on: skipped, then released */
    return;
  }
  af->qnext = NULL;
  if (S->ready_tail) S->ready_tail->qnext = af; else S->ready = af;
  S->ready_tail = af;
  atomic_store_explicit(&S->pending, 1, memory_order_relaxed);
  if (S->waiting) pthread_cond_broadcast(&S->cv);
  if (S->poke) lctx_run_poke(S);
  pthread_mutex_unlock(&S->mu);
}

lctx_af *lctx_af_new(lctx_hub *S) {
  lctx_af *af = calloc(1, sizeof *af);
  if (!af) return NULL;
  af->rel.S = S;
  af->rel.ref = LUA_NOREF;
  af->rel.destroy = af_destroy;
  af->ex.submit = af_submit;
  atomic_init(&af->owners, 1);
  lctx_hub_ref(S);
  pthread_mutex_lock(&S->mu);
  af->next = S->afs;
  if (af->next) af->next->prev = af;
  S->afs = af;
  pthread_mutex_unlock(&S->mu);
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

/* Each callback runs in a coroutine of its own (one is kept for the next):
** a callback delivered from inside ctx.run's hook would otherwise run with
** the hook's thread's hooks off, beyond the reach of the run's stop. */
static lua_State *callback_thread(lua_State *L, lctx_hub *S) {
  if (S->cbref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->cbref);
    luaL_unref(L, LUA_REGISTRYINDEX, S->cbref);
    S->cbref = LUA_NOREF;
  } else {
    lua_newthread(L);
  }
  return lua_tothread(L, -1);  /* anchored on L's stack while it runs */
}

/* The callback (af->L is the coroutine to run it in, af->from the thread
** resuming it). A stop of a run it holds back waits for its end, for at most
** LCTX_CALLBACK_BOUND; a callback stopped then is not warned about. */
void lctx_af_fn(void *arg) {
  lctx_af *af = arg;
  lua_State *co = af->L;
  if (!co) return;
  lctx_hub *S = af->rel.S;
  lua_State *L = af->from;
  int nres;
  lua_rawgeti(co, LUA_REGISTRYINDEX, af->rel.ref);
  size_t depth = lctx_level_push(S);
  S->incallback++;
  int status = lua_resume(co, L, 0, &nres);
  S->incallback--;
  int stopped = lctx_level_pop(S, depth);
  S->cbstatus = status;
  if (status == LUA_OK) {
    lua_settop(co, 0);
    return;
  }
  if (status == LUA_YIELD)
    lua_warning(L, "ctx: error in after_func callback: attempt to yield from a callback", 0);
  else if (!(stopped && lctx_is_stop(co, -1))) {
    lua_pushvalue(co, -1);
    warn_error(co);
  }
  /* its pending <close> variables are closed, as a pcall would have */
  lua_resetthread(co);
}

/* Runs what other threads queued for this state, until nothing is left
** (callbacks may queue more). Inside a callback only a wait runs others
** (nested): anywhere else they run after it, so that a chain of callbacks,
** each ending a context watched by the next, never deepens the C stack. */
static void drain(lua_State *L, lctx_hub *S, int nested) {
  luaL_checkstack(L, 8, "ctx");
  for (;;) {
    /* a run whose stop callbacks have held back for their bound: the
    ** others wait until it has returned */
    int run_cb = (nested || !S->incallback) && !(lctx_run_stopped(S) && lctx_run_held_over(S));
    pthread_mutex_lock(&S->mu);
    lctx_rel *dead = S->dead;
    lctx_af *af = run_cb ? S->ready : NULL;
    S->dead = NULL;
    if (af) {
      S->ready = af->qnext;
      if (!S->ready) S->ready_tail = NULL;
    }
    if (!dead && !af) {
      if (!S->ready) atomic_store_explicit(&S->pending, 0, memory_order_relaxed);
      pthread_mutex_unlock(&S->mu);
      return;
    }
    pthread_mutex_unlock(&S->mu);
    for (lctx_rel *r = dead, *next; r; r = next) {
      next = r->next;
      luaL_unref(L, LUA_REGISTRYINDEX, r->ref);
      r->destroy(r);
    }
    if (!af) continue;
    /* the coroutine first: its allocation may raise, ctx_after_run must not */
    int top = lua_gettop(L);
    lua_State *co = lua_checkstack(L, 2) ? callback_thread(L, S) : NULL;
    /* pinned: in count mode it gets the hook the runs' threads have */
    if (co && lctx_slot_pin(S, co)) lctx_slot_sync(S, co);
    af->L = co;
    af->from = L;
    S->cbstatus = -1;
    ctx_after_run(af->run);  /* calls lctx_af_fn, then releases af */
    int af_status = S->cbstatus;
    if (co) lctx_slot_unpin(S, co);
    /* kept for the next one if it returned (one stopped from a hook is left
    ** with that thread's hooks off) */
    if (co && S->cbref == LUA_NOREF && af_status == LUA_OK) {
      lua_pushvalue(L, -1);
      S->cbref = luaL_ref(L, LUA_REGISTRYINDEX);  /* kept for the next one */
    }
    lua_settop(L, top);
  }
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

/* A registration on a watched context that wakes the hub's condition
** variable; it runs inside submit(), on the thread that ended the context. */
static void wake_fn(void *arg) {
  lctx_hub *S = arg;
  pthread_mutex_lock(&S->mu);
  pthread_cond_broadcast(&S->cv);
  pthread_mutex_unlock(&S->mu);
}

static void wake_release(void *arg) { lctx_hub_unref(arg); }

static void inline_submit(ctx_executor_t *ex, ctx_after_t *a) {
  (void)ex;
  ctx_after_run(a);
}
static ctx_executor_t inline_executor = { inline_submit };

/* The thread that ended a context sets it done before it hands on the
** after_funcs registered there: a wait that saw the end waits for those of
** this state to be queued, so that it runs them before returning. */
static void settle(lctx_hub *S) {
  pthread_mutex_lock(&S->mu);
  for (;;) {
    int inflight = 0;
    for (lctx_af *af = S->afs; af && !inflight; af = af->next)
      inflight = af->c && ctx_done(af->c);
    if (!inflight) break;
    int64_t until = ctx_now() + 1000000;  /* a broadcast comes; poll anyway */
    struct timespec ts = { (time_t)(until / 1000000000), (long)(until % 1000000000) };
    S->waiting++;
    pthread_cond_timedwait(&S->cv, &S->mu, &ts);
    S->waiting--;
  }
  pthread_mutex_unlock(&S->mu);
}

void lctx_settle(lua_State *L, lctx_hub *S) {
  settle(S);
  if (atomic_load_explicit(&S->pending, memory_order_relaxed)) lctx_drain(L, S);
}

static int any_done(const lctx_ctxs *w) {
  for (size_t i = 0; i < w->n; i++) if (ctx_done(w->v[i])) return 1;
  return 0;
}

/* Sleeps on the hub until a context of w ends, work is queued or `wake`
** passes; fires passed deadlines itself (a timer thread late on a loaded
** machine must not make the wait late). */
static void wait_on(lctx_hub *S, lctx_ctxs *w, int64_t wake) {
  ctx_after_t *small[8], **h = small;
  if (w->n > 8 && !(h = malloc(w->n * sizeof *h))) return;  /* then a poll */
  size_t nh = 0;
  for (size_t i = 0; i < w->n; i++) {
    lctx_hub_ref(S);
    if (ctx_after_func(w->v[i], wake_fn, S, wake_release, &inline_executor, &h[nh]) == CTX_OK)
      nh++;
    else
      lctx_hub_unref(S);
  }
  if (nh < w->n && wake - ctx_now() > 5000000) wake = ctx_now() + 5000000;
  pthread_mutex_lock(&S->mu);
  for (;;) {
    if (any_done(w) || S->ready || S->dead) break;
    int64_t now = ctx_now(), next = wake, d;
    int expired = 0;
    for (size_t i = 0; i < w->n; i++)
      if (ctx_deadline(w->v[i], &d) == 1) {
        if (d <= now) expired = 1;
        else if (d < next) next = d;
      }
    if (expired) {
      pthread_mutex_unlock(&S->mu);  /* its callbacks take S->mu */
      for (size_t i = 0; i < w->n; i++) ctx_expire(w->v[i]);
      pthread_mutex_lock(&S->mu);
      continue;
    }
    if (now >= wake) break;
    S->waiting++;
    if (next == CTX_FOREVER) {
      pthread_cond_wait(&S->cv, &S->mu);
    } else {
      struct timespec ts = { (time_t)(next / 1000000000), (long)(next % 1000000000) };
      pthread_cond_timedwait(&S->cv, &S->mu, &ts);
    }
    S->waiting--;
  }
  pthread_mutex_unlock(&S->mu);
  for (size_t i = 0; i < nh; i++) {
    ctx_after_stop(h[i]);
    ctx_after_free(h[i]);
  }
  if (h != small) free(h);
}

/* Also wakes when the context of an active ctx.run ends: the stop is raised
** here, a check point of the run, rather than after the whole wait. */
int lctx_wait(lua_State *L, lctx_hub *S, ctx_t *c, int64_t until) {
  for (;;) {
    int64_t hold = lctx_checkpoint(L, S);
    if (ctx_done(c) || ctx_now() >= until) break;
    lctx_ctxs w;
    lctx_ctxs_init(&w);
    if (lctx_ctxs_add(&w, c) != 0 || lctx_run_watch(S, &w) != 0) {
      lctx_ctxs_free(&w);
      luaL_error(L, "ctx: %s", ctx_strerror(CTX_ENOMEM));
    }
    wait_on(S, &w, hold < until ? hold : until);
    lctx_ctxs_free(&w);
    if (atomic_load_explicit(&S->pending, memory_order_relaxed)) drain(L, S, 1);
  }
  if (ctx_done(c)) settle(S);
  if (atomic_load_explicit(&S->pending, memory_order_relaxed)) drain(L, S, 1);
  return ctx_done(c);
}
