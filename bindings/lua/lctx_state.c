/* lctx_state.c — the per-state hub: after_func callbacks and releases queued
** by any thread, run or dropped on the owning lua_State; blocking waits. */
#include <stdlib.h>
#include <time.h>
#include "lctx.h"

lctx_S *lctx_S_new(void) {
  lctx_S *S = calloc(1, sizeof *S);
  if (!S) return NULL;
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);  /* the deadlines' clock */
  pthread_cond_init(&S->cv, &a);
  pthread_condattr_destroy(&a);
  pthread_mutex_init(&S->mu, NULL);
  atomic_init(&S->refs, 1);
  atomic_init(&S->pending, 0);
  return S;
}

void lctx_S_ref(lctx_S *S) { atomic_fetch_add_explicit(&S->refs, 1, memory_order_relaxed); }

void lctx_S_unref(lctx_S *S) {
  if (atomic_fetch_sub_explicit(&S->refs, 1, memory_order_acq_rel) != 1) return;
  pthread_mutex_destroy(&S->mu);
  pthread_cond_destroy(&S->cv);
  free(S);
}

/* The lua_State is closing: what is queued is dropped without Lua (the
** registry goes away with the state), and later arrivals are dropped at once. */
static void stop_pending(lctx_S *S);

void lctx_S_close(lctx_S *S) {
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
  lctx_S_unref(S);
}

static void af_destroy(lctx_rel *r);

void lctx_release(void *p) {
  lctx_rel *r = p;
  lctx_S *S = r->S;
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
  lctx_S_unref(r->S);
  free(r);
}

lctx_rel *lctx_cause_new(lctx_S *S) {
  lctx_rel *r = malloc(sizeof *r);
  if (!r) return NULL;
  r->next = NULL;
  r->S = S;
  r->ref = LUA_NOREF;
  r->destroy = cause_destroy;
  lctx_S_ref(S);
  return r;
}

/* ---- after_func registrations ---- */

void lctx_af_unref(lctx_af *af) {
  if (atomic_fetch_sub_explicit(&af->owners, 1, memory_order_acq_rel) != 1) return;
  lctx_S *S = af->rel.S;
  pthread_mutex_lock(&S->mu);
  if (af->prev) af->prev->next = af->next; else S->afs = af->next;
  if (af->next) af->next->prev = af->prev;
  pthread_mutex_unlock(&S->mu);
  if (af->h) ctx_after_free(af->h);
  lctx_S_unref(S);
  free(af);
}

/* At close, registrations still pending would hold their contexts forever
** (nothing can stop them any more): stop them. */
static void stop_pending(lctx_S *S) {
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
  lctx_S *S = af->rel.S;
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

lctx_af *lctx_af_new(lctx_S *S) {
  lctx_af *af = calloc(1, sizeof *af);
  if (!af) return NULL;
  af->rel.S = S;
  af->rel.ref = LUA_NOREF;
  af->rel.destroy = af_destroy;
  af->ex.submit = af_submit;
  atomic_init(&af->owners, 1);
  lctx_S_ref(S);
  pthread_mutex_lock(&S->mu);
  af->next = S->afs;
  if (af->next) af->next->prev = af;
  S->afs = af;
  pthread_mutex_unlock(&S->mu);
  return af;
}

static void warn_error(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  ctx_err_t *e = luaL_testudata(L, -1, LCTX_ERR_MT);
  if (e) msg = ctx_err_string(*e);       /* ctx.canceled: say so */
  if (!msg) msg = luaL_typename(L, -1);  /* no __tostring: it could raise again */
  lua_warning(L, "ctx: error in after_func callback: ", 1);
  lua_warning(L, msg, 0);
  lua_pop(L, 1);
}

/* A callback delivered inside a ctx.run (by a cancel call, a check of the
** run) is not part of the run's fn: a stop of that run must not cut it short
** (nor be reported as its error); it is raised once the callback is over.
** Runs the callback starts itself work as usual. */
void lctx_af_fn(void *arg) {
  lctx_af *af = arg;
  lua_State *L = af->L;
  if (!L) return;
  lctx_S *S = af->rel.S;
  lctx_runrec *barrier = S->barrier;
  int stopping = S->stopping;
  S->barrier = S->runs;
  S->stopping = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, af->rel.ref);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) warn_error(L);
  S->barrier = barrier;
  S->stopping = stopping;
}

/* Runs what other threads queued for this state, until nothing is left
** (callbacks may queue more). */
void lctx_drain(lua_State *L, lctx_S *S) {
  luaL_checkstack(L, 8, "ctx");
  for (;;) {
    pthread_mutex_lock(&S->mu);
    lctx_rel *dead = S->dead;
    lctx_af *af = S->ready;
    S->dead = NULL;
    if (af) {
      S->ready = af->qnext;
      if (!S->ready) S->ready_tail = NULL;
    }
    if (!dead && !af) {
      atomic_store_explicit(&S->pending, 0, memory_order_relaxed);
      pthread_mutex_unlock(&S->mu);
      return;
    }
    pthread_mutex_unlock(&S->mu);
    for (lctx_rel *r = dead, *next; r; r = next) {
      next = r->next;
      luaL_unref(L, LUA_REGISTRYINDEX, r->ref);
      r->destroy(r);
    }
    if (af) {
      af->L = L;
      ctx_after_run(af->run);  /* calls lctx_af_fn, then releases af */
    }
  }
}

/* ---- waits ---- */

/* A registration on the waited context that wakes the hub's condition
** variable; it runs inside submit(), on the thread that ended the context. */
static void wake_fn(void *arg) {
  lctx_S *S = arg;
  pthread_mutex_lock(&S->mu);
  pthread_cond_broadcast(&S->cv);
  pthread_mutex_unlock(&S->mu);
}

static void wake_release(void *arg) { lctx_S_unref(arg); }

static void inline_submit(ctx_executor_t *ex, ctx_after_t *a) {
  (void)ex;
  ctx_after_run(a);
}
static ctx_executor_t inline_executor = { inline_submit };

ctx_after_t *lctx_watch(lctx_S *S, ctx_t *c) {
  ctx_after_t *h = NULL;
  lctx_S_ref(S);
  if (ctx_after_func(c, wake_fn, S, wake_release, &inline_executor, &h) != CTX_OK) {
    lctx_S_unref(S);
    return NULL;
  }
  return h;
}

void lctx_unwatch(ctx_after_t *h) {
  ctx_after_stop(h);
  ctx_after_free(h);
}

#define MAXWATCH 8

/* The thread that ended a context sets it done before it hands on the
** after_funcs registered there: a wait that saw the end waits for those of
** this state to be queued, so that it runs them before returning. */
static void settle(lctx_S *S) {
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

void lctx_settle(lua_State *L, lctx_S *S) {
  settle(S);
  if (atomic_load_explicit(&S->pending, memory_order_relaxed)) lctx_drain(L, S);
}

/* Also wakes when the context of an active ctx.run ends: the stop is raised
** here, a check point of the run, rather than after the whole wait. */
int lctx_wait(lua_State *L, lctx_S *S, ctx_t *c, int64_t until) {
  lctx_runrec *stopped = lctx_run_stopped(S);
  if (!stopped && !ctx_done(c) && until > ctx_now()) {
    ctx_after_t *h[MAXWATCH];
    int nh = 0;
    h[nh++] = lctx_watch(S, c);
    for (lctx_runrec *r = S->runs; r != S->barrier && nh < MAXWATCH; r = r->outer)
      h[nh++] = lctx_watch(S, r->c);
    for (int i = 0; i < nh; i++)
      if (!h[i]) {
        for (int j = 0; j < nh; j++) if (h[j]) lctx_unwatch(h[j]);
        luaL_error(L, "ctx: %s", ctx_strerror(CTX_ENOMEM));
      }
    /* wake at c's deadline too: a timer thread late on a loaded machine
    ** must not make the wait late (ctx_expire fires it from here) */
    int64_t d, wake = until;
    if (ctx_deadline(c, &d) && d < wake) wake = d;
    pthread_mutex_lock(&S->mu);
    for (;;) {
      if (ctx_done(c) || (stopped = lctx_run_stopped(S)) != NULL) break;
      if (S->ready || S->dead) {
        pthread_mutex_unlock(&S->mu);
        lctx_drain(L, S);  /* a callback error is caught there: no longjmp here */
        pthread_mutex_lock(&S->mu);
        continue;
      }
      int64_t now = ctx_now();
      if (now >= wake && wake < until) {
        pthread_mutex_unlock(&S->mu);  /* its callbacks take S->mu */
        ctx_expire(c);
        wake = until;
        pthread_mutex_lock(&S->mu);
        continue;
      }
      if (now >= until) break;
      S->waiting++;
      if (wake == CTX_FOREVER) {
        pthread_cond_wait(&S->cv, &S->mu);
      } else {
        struct timespec ts = { (time_t)(wake / 1000000000), (long)(wake % 1000000000) };
        pthread_cond_timedwait(&S->cv, &S->mu, &ts);
      }
      S->waiting--;
    }
    pthread_mutex_unlock(&S->mu);
    for (int i = 0; i < nh; i++) lctx_unwatch(h[i]);
  }
  if (ctx_done(c)) settle(S);
  if (atomic_load_explicit(&S->pending, memory_order_relaxed)) lctx_drain(L, S);
  if (stopped) lctx_run_raise(L, stopped);
  return ctx_done(c);
}
