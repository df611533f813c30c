/* lctx_run.c — ctx.run(c, fn, ...): a pcall that stops pure Lua code, every
** coroutine included, when c ends; the stop cannot be swallowed. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lualib.h"
#include "lctx.h"

const char lctx_hub_key, lctx_canceled_key, lctx_deadline_key;

/* How it stops code that never calls into ctx, at full speed while c is live:
** - no hook at all while c is live (when a signal can reach the thread and
**   the state's threads are tracked, lctx_threads.c); when c ends, the
**   thread that ended it signals the run's OS thread, whose handler gives a
**   count hook of 1 to every thread the runs know of (lua_sethook is safe
**   there, as lua.c's Ctrl-C handler relies on): whichever runs stops at its
**   next instruction;
** - without a usable signal, a count hook on every known thread (inherited by
**   the coroutines they create) checks every 1000 instructions;
** - once a stop is raised, call, return and count hooks on every thread see
**   it through: the first return after the stop was thrown is whatever
**   caught it (pcall, resume, any C function), and the stop is raised again
**   there; calls made while it unwinds are <close> handlers, which run to
**   their end out of the run's reach (a level of their own). */

static lctx_runs *runs_of(lctx_hub *S) { return &S->R; }
static lctx_level *top(lctx_runs *R) { return &R->lv[R->nlv - 1]; }

/* ---- levels ---- */

static lctx_level *push_level(lctx_runs *R, int kind) {
  if (R->nlv == R->lvcap) {
    size_t cap = R->lvcap * 2;
    lctx_level *lv = realloc(R->lv, cap * sizeof *lv);
    if (!lv) return NULL;
    R->lv = lv;
    R->lvcap = cap;
  }
  lctx_level *l = &R->lv[R->nlv++];
  memset(l, 0, sizeof *l);
  l->kind = kind;
  l->barrier = R->runs;
  return l;
}

/* The innermost run out of reach of the code running now (NULL: none). */
static lctx_runrec *barrier(lctx_runs *R) {
  for (size_t i = R->nlv; i-- > 0;)
    if (!R->lv[i].lifted) return R->lv[i].barrier;
  return NULL;
}

lctx_runrec *lctx_run_stopped(lctx_hub *S) {
  lctx_runs *R = runs_of(S);
  if (!R->runs || top(R)->unwinding) return NULL;
  lctx_runrec *b = barrier(R), *stopped = NULL;
  for (lctx_runrec *r = R->runs; r && r != b; r = r->outer)
    if (ctx_done(r->c)) stopped = r;  /* the outermost: inner runs pass it on */
  return stopped;
}

/* The runs a callback running now holds back: [from, to). */
static int held_range(lctx_runs *R, lctx_runrec **from, lctx_runrec **to) {
  lctx_level *t = top(R);
  if (t->kind != LCTX_LV_CALLBACK || t->lifted || t->unwinding) return 0;
  *from = t->barrier;
  *to = NULL;
  for (size_t i = R->nlv - 1; i-- > 0;)
    if (!R->lv[i].lifted) {
      *to = R->lv[i].barrier;
      break;
    }
  return 1;
}

/* A callback holds back the stop of a run whose context ended: until when
** (CTX_FOREVER: it does not); 0 once the bound has passed, the runs being in
** its reach from then on. */
static int64_t hold_until(lctx_runs *R) {
  lctx_runrec *from, *to;
  if (!held_range(R, &from, &to)) return CTX_FOREVER;
  int held = 0;
  for (lctx_runrec *r = from; r && r != to && !held; r = r->outer) held = ctx_done(r->c);
  if (!held) return CTX_FOREVER;
  int64_t now = ctx_now();
  if (!R->stop_seen) R->stop_seen = now;
  int64_t until = R->stop_seen + (int64_t)(LCTX_CALLBACK_BOUND * 1e9);
  int64_t own = top(R)->started + (int64_t)(LCTX_CALLBACK_MIN * 1e9);
  if (own > until) until = own;
  if (now < until) return until;
  top(R)->lifted = 1;
  return 0;
}

static int wanted_mode(lctx_runs *R) {
  if (!R->runs) return LCTX_M_NONE;
  for (size_t i = 0; i < R->nlv; i++)
    if (R->lv[i].unwinding || R->lv[i].kind == LCTX_LV_HANDLER) return LCTX_M_STOPPING;
  for (lctx_runrec *r = R->runs; r; r = r->outer)
    if (ctx_done(r->c)) return LCTX_M_STOPPING;
  return R->fast ? LCTX_M_NONE : LCTX_M_COUNT;
}

static void update_mode(lctx_hub *S) {
  int m = wanted_mode(runs_of(S));
  if (m != S->R.mode) lctx_set_mode(S, m);
}

/* (out of memory, the callback runs without a level: in reach of the stop) */
size_t lctx_level_push(lctx_hub *S) {
  lctx_runs *R = runs_of(S);
  size_t depth = R->nlv;
  lctx_level *l = push_level(R, LCTX_LV_CALLBACK);
  if (l) l->started = ctx_now();
  return depth;
}

int lctx_level_pop(lctx_hub *S, size_t depth) {
  lctx_runs *R = runs_of(S);
  int lifted = R->nlv > depth && R->lv[depth].lifted;
  R->nlv = depth;
  if (R->runs) update_mode(S);
  return lifted;
}

/* ---- raising the stop ---- */

int lctx_is_stop(lua_State *L, int idx) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lctx_canceled_key);
  int is = lua_rawequal(L, -1, idx);
  lua_pop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lctx_deadline_key);
  is = is || lua_rawequal(L, -1, idx);
  lua_pop(L, 1);
  return is;
}

/* Stands in for an xpcall's message handler: the stop goes through as it is
** (the user's handler could loop, and Lua runs it with hooks off when the
** stop comes from a hook); other errors go to the user's handler. */
static int handler_passthrough(lua_State *L) {
  if (lctx_is_stop(L, 1)) {
    lua_settop(L, 1);
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* An xpcall between here and what catches the stop would call its message
** handler with it (from a hook, with hooks off: a handler that loops could
** never be stopped): every xpcall on this thread gets its handler wrapped
** (xpcall reads it from its own stack slot 2 when an error is thrown). */
static void wrap_message_handlers(lua_State *L, lctx_runs *R, int from) {
  lua_Debug ar;
  if (!R->xpcall || !lua_checkstack(L, 4)) return;
  for (int level = from; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "f", &ar)) return;
    lua_CFunction f = lua_iscfunction(L, -1) ? lua_tocfunction(L, -1) : NULL;
    lua_pop(L, 1);
    if (f != R->xpcall || !lua_getlocal(L, &ar, 2)) continue;
    if (lua_tocfunction(L, -1) == handler_passthrough) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushcclosure(L, handler_passthrough, 1);
    if (!lua_setlocal(L, &ar, 2)) lua_pop(L, 1);
  }
}

/* `from`: the first stack level that may be protecting (a C function being
** called, returning or raising does not protect what it raises) */
static int raise_stop(lua_State *L, lctx_hub *S, lctx_runrec *r, int from) {
  lctx_runs *R = runs_of(S);
  top(R)->unwinding = 1;
  if (R->mode != LCTX_M_STOPPING) lctx_set_mode(S, LCTX_M_STOPPING);
  wrap_message_handlers(L, R, from);
  lua_rawgetp(L, LUA_REGISTRYINDEX,
              ctx_err(r->c) == CTX_ERR_DEADLINE ? &lctx_deadline_key : &lctx_canceled_key);
  return lua_error(L);
}

/* Finalizers run with hooks off and in no run's name: a check point inside
** one leaves the stop to the run's own code. */
static int in_finalizer(lua_State *L) {
  lua_Debug ar;
  for (int level = 0; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "n", &ar)) return 0;
    if (ar.namewhat && ar.name && strcmp(ar.namewhat, "metamethod") == 0 &&
        strcmp(ar.name, "__gc") == 0)
      return 1;
  }
  return 0;
}

int lctx_run_held_over(lctx_hub *S) {
  lctx_runs *R = runs_of(S);
  return R->stop_seen && ctx_now() >= R->stop_seen + (int64_t)(LCTX_CALLBACK_BOUND * 1e9);
}

int64_t lctx_run_hold(lctx_hub *S) {
  lctx_runs *R = runs_of(S);
  if (!R->runs || lctx_run_stopped(S)) return CTX_FOREVER;
  int64_t hold = hold_until(R);
  return hold == 0 ? CTX_FOREVER : hold;  /* 0: the bound passed, in reach now */
}

int64_t lctx_checkpoint(lua_State *L, lctx_hub *S) {
  if (!S->R.runs) return CTX_FOREVER;
  int64_t hold = lctx_run_hold(S);
  lctx_runrec *r = lctx_run_stopped(S);
  if (r && !in_finalizer(L)) raise_stop(L, S, r, 1);
  return hold;
}

int lctx_run_watch(lctx_hub *S, lctx_ctxs *w) {
  lctx_runs *R = runs_of(S);
  if (!R->runs || top(R)->unwinding) return 0;
  lctx_runrec *b = barrier(R), *from, *to;
  for (lctx_runrec *r = R->runs; r && r != b; r = r->outer)
    if (lctx_ctxs_add(w, r->c) != 0) return -1;
  if (held_range(R, &from, &to))
    for (lctx_runrec *r = from; r && r != to; r = r->outer)
      if (lctx_ctxs_add(w, r->c) != 0) return -1;
  return 0;
}

/* ---- the hook ---- */

static lctx_hub *hub_of_state(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &lctx_hub_key);
  lctx_hub *S = lua_touserdata(L, -1);
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

/* Another tool's hook that ours replaced on L gets its events still. */
static void chain(lctx_hub *S, lua_State *L, lua_Debug *ar) {
  lctx_slot *s = lctx_slot_find(S, L);
  lua_Hook h = S->R.idle;
  int mask = S->R.idle_mask;
  if (s && s->ours) {
    h = s->hook;
    mask = s->mask;
  }
  if (h && h != lctx_run_hook && (mask & event_mask(ar->event))) h(L, ar);
}

/* Handler levels end when their frame returns; one whose frame went away by
** an error is noticed when its frame is reused, its caller returns, or its
** thread has no frames left. A frame is known by lua_Debug's i_ci (in the
** private part of every 5.4 lua.h), used as an identity only. */
static int handler_event(lctx_hub *S, lua_State *L, lua_Debug *ar) {
  lctx_runs *R = runs_of(S);
  for (;;) {
    lctx_level *t = top(R);
    if (t->kind != LCTX_LV_HANDLER) return 0;
    if (L == t->hL) {
      if (ar->event == LUA_HOOKRET && (const void *)ar->i_ci == t->hci) {
        R->nlv--;
        return 1;  /* the handler returned: that is no catch */
      }
      if ((ar->event == LUA_HOOKCALL && (const void *)ar->i_ci == t->hci) ||
          (ar->event == LUA_HOOKRET && t->cci && (const void *)ar->i_ci == t->cci)) {
        R->nlv--;
        continue;
      }
      return 0;
    }
    lua_Debug tmp;
    if (lua_getstack(t->hL, 0, &tmp)) return 0;
    R->nlv--;
  }
}

void lctx_run_hook(lua_State *L, lua_Debug *ar) {
  lctx_hub *S = hub_of_state(L);
  if (!S) return;
  lctx_runs *R = runs_of(S);
  chain(S, L, ar);
  if (!R->runs) {
    /* a coroutine made inside a run that has ended: give it back the hook
    ** it would have had, so that nothing of ours fires after the run */
    lctx_slot *s = lctx_slot_find(S, L);
    if (s && s->ours) {
      s->ours = 0;
      lua_sethook(L, s->hook, s->mask, s->count);
    } else {
      lua_sethook(L, R->idle, R->idle_mask, R->idle_count);
    }
    return;
  }
  /* hooks run: the runs whose context ended need no more signals */
  for (lctx_runrec *x = R->runs; x; x = x->outer)
    if (!atomic_load_explicit(&x->ack, memory_order_relaxed) && ctx_done(x->c))
      atomic_store_explicit(&x->ack, 1, memory_order_release);
  if (R->nlv > 1 && handler_event(S, L, ar)) {
    update_mode(S);
    return;
  }
  lctx_level *t = top(R);
  if (t->unwinding) {
    if (ar->event == LUA_HOOKCALL || ar->event == LUA_HOOKTAILCALL) {
      /* a <close> handler (or a message handler) while the stop unwinds */
      lua_Debug caller;
      const void *cci = lua_getstack(L, 1, &caller) ? (const void *)caller.i_ci : NULL;
      lctx_level *h = push_level(R, LCTX_LV_HANDLER);
      if (h) {
        h->hL = L;
        h->hci = ar->i_ci;
        h->cci = cci;
      }
      return;
    }
    /* a return: what caught the stop; code running: caught unseen */
    t->unwinding = 0;
  }
  /* callbacks first (they may end a run's context; those delivered while a
  ** stop waits are bounded), then the stop */
  if (ctx_queue_pending(S->q)) lctx_drain(L, S);
  int from = ar->event == LUA_HOOKCOUNT || ar->event == LUA_HOOKLINE ? 0 : 1;
  lctx_runrec *r = lctx_run_stopped(S);
  if (r || (hold_until(R) == 0 && (r = lctx_run_stopped(S)) != NULL)) raise_stop(L, S, r, from);
  update_mode(S);
}

/* ---- ctx.run ---- */

/* The run's helper, a task on the core's pool while the run is active and
** needs one (it leaves when r->end is canceled):
** - a busy run in signal mode looks at nothing while its context is live:
**   when callbacks of this state are queued, the helper signals it (once per
**   batch: the queue's descriptor stays readable until the run drains it);
** - Lua's own race: a frame left with its trap flag set while no hook is
**   (after a stop or a callback) clears that flag in luaG_traceexec after
**   reading the hook mask, so a signal landing in between arms hooks that
**   never fire: the signal is sent again until a hook has run. */
static void helper_fn(void *arg) {
  lctx_runrec *r = arg;
  lctx_hub *S = r->S;
  int qfd = ctx_queue_fd(S->q);  /* the queue is closed at lua_close only */
  unsigned poked = 0;
  int havepoked = 0;
  int64_t delay = 1000000, next = 0;
  while (!ctx_done(r->end)) {
    int64_t now = ctx_now(), timeout = -1;
    int queued = ctx_queue_pending(S->q);
    unsigned gen = atomic_load_explicit(&S->drain_gen, memory_order_acquire);
    if (queued && (!havepoked || gen != poked)) {
      lctx_signal_send(r->tid, r->sig);
      poked = gen;
      havepoked = 1;
    }
    if (ctx_done(r->c) && !atomic_load_explicit(&r->ack, memory_order_acquire)) {
      if (next && now >= next) {
        lctx_signal_send(r->tid, r->sig);
        if (delay < 16000000) delay *= 2;
      }
      if (!next || now >= next) next = now + delay;
      timeout = next - now;
    }
    /* after a poke, look again soon: the run drains, then a batch may come */
    if (queued && (timeout < 0 || timeout > 2000000)) timeout = 2000000;
    size_t which;
    ctx_wait_any(&r->end, 1, &qfd, queued || qfd < 0 ? 0 : 1, timeout, &which);
  }
  atomic_store_explicit(&r->helped, 1, memory_order_release);  /* last touch */
}

/* S->mu held: the run thread and the thread that ends c may both want it. */
static void start_helper(lctx_hub *S, lctx_runrec *r) {
  if (r->helper || !r->sig) return;
  if (ctx_with_cancel(ctx_background(), &r->end) != CTX_OK) return;
  /* a done context: the helper starts at once, on the core's own executor */
  if (ctx_after_func(S->donectx, helper_fn, r, NULL, NULL, &r->helper) != CTX_OK) {
    ctx_unref(r->end);
    r->end = NULL;
    r->helper = NULL;
  }
}

static void stop_helper(lctx_hub *S, lctx_runrec *r) {
  pthread_mutex_lock(&S->mu);
  ctx_after_t *h = r->helper;
  pthread_mutex_unlock(&S->mu);
  if (!h) return;
  ctx_cancel(r->end);
  if (!ctx_after_stop(h))
    while (!atomic_load_explicit(&r->helped, memory_order_acquire)) sched_yield();
  ctx_after_free(h);
  ctx_unref(r->end);
}

void lctx_run_registered(lctx_hub *S) {
  lctx_runs *R = runs_of(S);
  if (!R->runs || !R->fast) return;
  lctx_runrec *outermost = R->runs;
  while (outermost->outer) outermost = outermost->outer;
  pthread_mutex_lock(&S->mu);
  start_helper(S, outermost);
  pthread_mutex_unlock(&S->mu);
}

/* The watch on a run's context: runs on the thread that ended it. */
static void arm_fn(void *arg) {
  lctx_runrec *r = arg;
  lctx_hub *S = r->S;
  lctx_signal_send(r->tid, r->sig);  /* the run waits for us before it returns */
  pthread_mutex_lock(&S->mu);
  start_helper(S, r);  /* sends it again if it was lost */
  pthread_mutex_unlock(&S->mu);
  atomic_store_explicit(&r->fired, 1, memory_order_release);
}

static void inline_submit(ctx_executor_t *ex, ctx_after_t *a) {
  (void)ex;
  ctx_after_run(a);
}
static ctx_executor_t inline_executor = { inline_submit };

int lctx_run(lua_State *L) {
  lctx_hub *S = lctx_enter(L);
  lctx_runs *R = runs_of(S);
  lctx_ud *u = lctx_check(L, 1, "run");
  if (lua_type(L, 2) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, 2, "__call") == LUA_TNIL)
      return lctx_typeerror(L, 2, "run", "function");
    lua_pop(L, 1);
  }
  lctx_checkpoint(L, S);  /* a run in reach that ended: its stop */
  if (ctx_done(u->c)) {   /* nothing runs */
    lctx_settle(L, S, u->c);
    lua_pushboolean(L, 0);
    lctx_pusherr(L, ctx_err(u->c));
    return 2;
  }
  int outermost = !R->runs;
  lctx_runrec r;
  memset(&r, 0, sizeof r);
  r.c = u->c;  /* the userdata at index 1 keeps it alive */
  r.L = L;
  r.S = S;
  r.tid = pthread_self();
  atomic_init(&r.fired, 0);
  atomic_init(&r.ack, 0);
  atomic_init(&r.helped, 0);
  if (outermost) {
    int sig = lctx_signal();
    int tracked = lctx_track_begin(L, S);
    R->fast = sig && tracked && lctx_signal_here(sig);
    lua_Hook h = lua_gethook(L);
    lctx_slot *s = lctx_slot_find(S, L);
    if (s && s->ours) h = s->hook;
    if (h == lctx_run_hook) h = NULL;  /* left by an earlier run */
    R->idle = h;
    R->idle_mask = h ? lua_gethookmask(L) : 0;
    R->idle_count = h ? lua_gethookcount(L) : 0;
    if (s && s->ours) {
      R->idle_mask = s->mask;
      R->idle_count = s->count;
    }
    R->stop_seen = 0;
  }
  r.sig = R->fast ? lctx_signal() : 0;
  if (!lctx_slot_pin(S, L) ||
      (r.sig && ctx_after_func(u->c, arm_fn, &r, NULL, &inline_executor, &r.watch) != CTX_OK)) {
    lctx_slot_unpin(S, L);
    if (outermost) lctx_track_end(L, S);
    return luaL_error(L, "ctx: %s", ctx_strerror(CTX_ENOMEM));
  }
  size_t depth = R->nlv;
  int unwinding = top(R)->unwinding;
  r.outer = R->runs;
  atomic_signal_fence(memory_order_seq_cst);  /* r complete before the handler sees it */
  R->runs = &r;
  if (outermost) {
    lctx_tl_enter(S);
    /* callbacks that may be queued while fn is busy: the helper pokes it */
    if (r.sig && atomic_load_explicit(&S->nregs, memory_order_relaxed) > 0) {
      pthread_mutex_lock(&S->mu);
      start_helper(S, &r);
      pthread_mutex_unlock(&S->mu);
    }
  }
  if (!R->fast && R->mode != LCTX_M_STOPPING) lctx_set_mode(S, LCTX_M_COUNT);
  /* a signal that came before the run was in place found nothing to arm:
  ** c ended, or a callback was queued, meanwhile */
  if (R->fast && R->mode == LCTX_M_NONE && (ctx_done(u->c) || ctx_queue_pending(S->q)))
    lctx_set_mode(S, LCTX_M_ARMED);
  int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
  R->runs = r.outer;
  atomic_signal_fence(memory_order_seq_cst);
  if (r.watch) {
    /* after this, no signal of ours is on its way to this thread */
    if (!ctx_after_stop(r.watch))
      while (!atomic_load_explicit(&r.fired, memory_order_acquire)) sched_yield();
    ctx_after_free(r.watch);
  }
  stop_helper(S, &r);
  /* levels opened inside (handlers whose end went unseen) end with it */
  R->nlv = depth;
  top(R)->unwinding = unwinding;
  R->stop_seen = 0;  /* a stop callbacks held back is over */
  if (outermost) lctx_tl_leave(S);
  update_mode(S);
  lctx_slot_unpin(S, L);
  if (outermost) lctx_track_end(L, S);
  if (ctx_queue_pending(S->q)) lctx_drain(L, S);
  /* the verdict is c's error if c ended before fn returned, however fn
  ** returned: `return os.execute(...)` and a call with code after it agree */
  if (status == LUA_OK && !ctx_done(u->c)) {
    lua_pushboolean(L, 1);
    lua_replace(L, 1);      /* true, then fn's results */
    return lua_gettop(L);
  }
  if (status == LUA_OK) lua_settop(L, 2);  /* keep one slot: [c, err] */
  lua_pushboolean(L, 0);
  if (ctx_done(u->c)) {
    lctx_settle(L, S, u->c);
    lctx_pusherr(L, ctx_err(u->c));
    return 2;
  }
  lctx_checkpoint(L, S);    /* an outer run's stop that fn let through: on */
  lua_pushvalue(L, -2);     /* fn's own error, as pcall */
  return 2;
}

/* ---- setup ---- */

static lua_CFunction real_xpcall;
static pthread_once_t catchers_once = PTHREAD_ONCE_INIT;

/* The base library's own functions, from a state of our own: the globals of
** this state may have been replaced by Lua wrappers before require. */
static void find_catchers(void) {
  lua_State *P = luaL_newstate();
  if (!P) return;
  luaL_requiref(P, "_G", luaopen_base, 1);
  lua_getfield(P, -1, "xpcall");
  real_xpcall = lua_tocfunction(P, -1);
  lua_close(P);
}

void lctx_runs_init(lua_State *L, lctx_hub *S) {
  lctx_runs *R = runs_of(S);
  pthread_once(&catchers_once, find_catchers);
  R->xpcall = real_xpcall;
  R->lv = calloc(8, sizeof *R->lv);
  if (!R->lv) luaL_error(L, "ctx: %s", ctx_strerror(CTX_ENOMEM));
  R->lvcap = 8;
  R->nlv = 1;
  R->lv[0].kind = LCTX_LV_BASE;
  R->mode = LCTX_M_NONE;
  lctx_threads_init(L, S);
}

void lctx_runs_close(lua_State *L, lctx_hub *S) {
  lctx_runs *R = runs_of(S);
  lctx_threads_close(L, S);
  free(R->lv);
  R->lv = NULL;
  R->nlv = R->lvcap = 0;
}
