/* lctx_threads.c — how a stop reaches every thread (coroutine) of a run: while
** runs are active, threads are seen created and freed through the state's
** allocator, and a signal arms hooks on all of them when a context ends. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "lctx.h"

/* Why the allocator: ctx.run sets no hook while its context is live (a call
** hook costs 2x on call-heavy code), so when the context ends it must find
** the running coroutine among all of them. Lua has no list of threads, but
** its allocator is told when one is made (ptr NULL, osize LUA_TTHREAD, as the
** manual says) and freed; a thread's block starts with its extra space
** (lua_getextraspace), which require checks on a thread of its own. The
** wrapper costs about 1.5 ns per allocation even when it only passes the
** call on, so it is in place only while runs are active: coroutines made
** before the outermost run began are not known to it. */
typedef struct lctx_alloc {
  lua_Alloc f;             /* the state's own allocator */
  void *ud;
  int std;                 /* f is lauxlib's: call realloc and free ourselves */
  lctx_hub *S;             /* NULL once detached: a plain pass-through */
  size_t tsize;            /* the size of a thread's block (0 until learned) */
  void *pending;           /* a thread block just made: published at the next call */
  int probing;
  void *probe;
} lctx_alloc;

#define RUN_COUNT 1000     /* instructions between checks in the count modes */

/* ---- critical sections against the signal handler ---- */

static void cs_enter(lctx_runs *R) {
  R->cs++;
  atomic_signal_fence(memory_order_seq_cst);
}

static void arm_all(lctx_hub *S);

static void cs_leave(lctx_hub *S) {
  lctx_runs *R = &S->R;
  atomic_signal_fence(memory_order_seq_cst);
  if (--R->cs == 0) {
    atomic_signal_fence(memory_order_seq_cst);
    if (R->deferred) {  /* a signal came meanwhile: do what it would have */
      R->deferred = 0;
      if (R->runs) arm_all(S);
    }
  }
}

/* ---- the slots and their hash ---- */

static size_t hash_of(lua_State *L, size_t cap) {
  uint64_t x = (uint64_t)(uintptr_t)L;
  x ^= x >> 29;
  x *= 0x9E3779B97F4A7C15ULL;
  return (size_t)(x >> 32) & (cap - 1);
}

static size_t *hash_lookup(lctx_runs *R, lua_State *L) {
  if (!R->hcap) return NULL;
  for (size_t i = hash_of(L, R->hcap);; i = (i + 1) & (R->hcap - 1)) {
    if (R->hkeys[i] == L) return &R->hvals[i];
    if (!R->hkeys[i]) return NULL;
  }
}

static int hash_grow(lctx_runs *R) {
  size_t cap = R->hcap ? R->hcap * 2 : 64;
  lua_State **keys = calloc(cap, sizeof *keys);
  size_t *vals = malloc(cap * sizeof *vals);
  if (!keys || !vals) {
    free(keys);
    free(vals);
    return -1;
  }
  for (size_t i = 0; i < R->hcap; i++) {
    if (!R->hkeys[i]) continue;
    size_t j = hash_of(R->hkeys[i], cap);
    while (keys[j]) j = (j + 1) & (cap - 1);
    keys[j] = R->hkeys[i];
    vals[j] = R->hvals[i];
  }
  free(R->hkeys);
  free(R->hvals);
  R->hkeys = keys;
  R->hvals = vals;
  R->hcap = cap;
  return 0;
}

/* removes L, shifting back the entries after it (no tombstones) */
static void hash_remove(lctx_runs *R, lua_State *L) {
  size_t mask = R->hcap - 1, i = hash_of(L, R->hcap);
  while (R->hkeys[i] != L) i = (i + 1) & mask;
  for (size_t j = (i + 1) & mask; R->hkeys[j]; j = (j + 1) & mask) {
    size_t home = hash_of(R->hkeys[j], R->hcap);
    /* j's entry may fill the hole at i unless its home lies in (i, j] */
    int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      R->hkeys[i] = R->hkeys[j];
      R->hvals[i] = R->hvals[j];
      i = j;
    }
  }
  R->hkeys[i] = NULL;
  R->hcount--;
}

lctx_slot *lctx_slot_find(lctx_hub *S, lua_State *L) {
  size_t *v = hash_lookup(&S->R, L);
  return v ? &S->R.slots[*v] : NULL;
}

static void set_slot(lctx_hub *S, lctx_slot *s, int mode);

/* Adds L (inside a critical section); NULL when out of memory. */
static lctx_slot *slot_add(lctx_hub *S, lua_State *L, int tracked) {
  lctx_runs *R = &S->R;
  if ((R->hcount + 1) * 2 > R->hcap && hash_grow(R) != 0) return NULL;
  size_t idx;
  if (R->nfree) {
    idx = R->freeslots[--R->nfree];
  } else {
    if (R->nslots == R->slotcap) {
      size_t cap = R->slotcap ? R->slotcap * 2 : 64;
      lctx_slot *ns = malloc(cap * sizeof *ns);
      size_t *nf = malloc(cap * sizeof *nf);
      if (!ns || !nf) {
        free(ns);
        free(nf);
        return NULL;
      }
      if (R->nslots) memcpy(ns, R->slots, R->nslots * sizeof *ns);
      if (R->nfree) memcpy(nf, R->freeslots, R->nfree * sizeof *nf);
      free(R->slots);
      free(R->freeslots);
      R->slots = ns;
      R->freeslots = nf;
      R->slotcap = cap;
    }
    idx = R->nslots++;
  }
  lctx_slot *s = &R->slots[idx];
  memset(s, 0, sizeof *s);
  s->tracked = tracked;
  size_t i = hash_of(L, R->hcap);
  while (R->hkeys[i]) i = (i + 1) & (R->hcap - 1);
  R->hkeys[i] = L;
  R->hvals[i] = idx;
  R->hcount++;
  s->L = L;
  /* a thread made while the hooks are armed inherited its creator's hook;
  ** one made by a thread we do not know gets them here */
  if (R->runs && (R->mode == LCTX_M_ARMED || R->mode == LCTX_M_STOPPING)) set_slot(S, s, R->mode);
  return s;
}

static void slot_remove(lctx_hub *S, lctx_slot *s) {
  lctx_runs *R = &S->R;
  hash_remove(R, s->L);
  s->L = NULL;
  R->freeslots[R->nfree++] = (size_t)(s - R->slots);
}

lctx_slot *lctx_slot_pin(lctx_hub *S, lua_State *L) {
  cs_enter(&S->R);
  lctx_slot *s = lctx_slot_find(S, L);
  if (!s) s = slot_add(S, L, 0);
  if (s) s->nruns++;
  cs_leave(S);
  return s;
}

void lctx_slot_sync(lctx_hub *S, lua_State *L) {
  lctx_runs *R = &S->R;
  if (!R->runs || R->mode == LCTX_M_NONE) return;
  cs_enter(R);
  lctx_slot *s = lctx_slot_find(S, L);
  if (s) set_slot(S, s, R->mode);
  cs_leave(S);
}

void lctx_slot_unpin(lctx_hub *S, lua_State *L) {
  cs_enter(&S->R);
  lctx_slot *s = lctx_slot_find(S, L);
  if (s && --s->nruns == 0 && !s->tracked) {
    set_slot(S, s, LCTX_M_NONE);
    slot_remove(S, s);
  }
  cs_leave(S);
}

/* ---- the allocator ---- */

static void publish(lctx_alloc *A) {
  lctx_hub *S = A->S;
  lua_State *T = (lua_State *)((char *)A->pending + LUA_EXTRASPACE);
  A->pending = NULL;
  cs_enter(&S->R);
  slot_add(S, T, 1);  /* new (a freed thread left at once); out of memory: not reachable */
  cs_leave(S);
}

static void forget(lctx_alloc *A, void *block) {
  lctx_hub *S = A->S;
  lua_State *T = (lua_State *)((char *)block + LUA_EXTRASPACE);
  lctx_slot *s = lctx_slot_find(S, T);
  if (!s) return;
  cs_enter(&S->R);
  slot_remove(S, s);  /* before the memory goes: the handler may run any time */
  cs_leave(S);
}

LCTX_NOINLINE static void *track_slow(lctx_alloc *A, void *ptr, size_t osize, size_t nsize) {
  if (A->S && !A->probing) {
    /* the thread made by the previous call is initialized by now (Lua
    ** allocates its stack right after filling in the new lua_State) */
    if (A->pending) publish(A);
    if (ptr && nsize == 0 && osize == A->tsize) forget(A, ptr);
  }
  void *p = A->f(A->ud, ptr, osize, nsize);
  if (A->S && !ptr && osize == LUA_TTHREAD && p) {
    if (A->probing) {
      A->probe = p;
      A->tsize = nsize;
    }
    if (nsize == A->tsize) A->pending = p;
  }
  return p;
}

/* Every allocation of the state comes here: anything but a thread's birth or
** a block of a thread's size being freed goes straight on (a tail call). */
static void *track_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lctx_alloc *A = ud;
  if (LCTX_UNLIKELY(A->pending) ||
      LCTX_UNLIKELY(ptr ? nsize == 0 && osize == A->tsize : osize == LUA_TTHREAD))
    return track_slow(A, ptr, osize, nsize);
  if (A->std) {  /* what lauxlib's allocator does, one call less */
    if (nsize == 0) {
      free(ptr);
      return NULL;
    }
    return realloc(ptr, nsize);
  }
  return A->f(A->ud, ptr, osize, nsize);
}

static lua_Alloc std_alloc;  /* lauxlib's, from a state of our own */
static pthread_once_t std_once = PTHREAD_ONCE_INIT;

static void find_std_alloc(void) {
  lua_State *P = luaL_newstate();
  if (!P) return;
  std_alloc = lua_getallocf(P, NULL);
  lua_close(P);
}


/* ---- hooks ---- */

static void set_slot(lctx_hub *S, lctx_slot *s, int mode) {
  lctx_runs *R = &S->R;
  lua_State *L = s->L;
  if (mode == LCTX_M_NONE) {
    if (s->ours) {
      s->ours = 0;
      lua_sethook(L, s->hook, s->mask, s->count);
    } else if (lua_gethook(L) == lctx_run_hook) {  /* inherited in a run */
      lua_sethook(L, R->idle, R->idle_mask, R->idle_count);
    }
    return;
  }
  if (!s->ours) {
    lua_Hook h = lua_gethook(L);
    if (h == lctx_run_hook) {  /* inherited: what its creator had before us */
      s->hook = R->idle;
      s->mask = R->idle_mask;
      s->count = R->idle_count;
    } else {
      s->hook = h;
      s->mask = lua_gethookmask(L);
      s->count = lua_gethookcount(L);
    }
    s->ours = 1;
  }
  int mask = LUA_MASKCOUNT, count = RUN_COUNT;
  if (mode == LCTX_M_ARMED) count = 1;
  if (mode == LCTX_M_STOPPING) mask |= LUA_MASKCALL | LUA_MASKRET;
  if (s->hook) {  /* the other tool's events too: our hook passes them on */
    mask |= s->mask;
    if ((s->mask & LUA_MASKCOUNT) && s->count < count) count = s->count;
  }
  lua_sethook(L, lctx_run_hook, mask, count);
}

/* In the signal handler (or at the end of the critical section it came in):
** every known thread looks at its next instruction. */
static void arm_all(lctx_hub *S) {
  lctx_runs *R = &S->R;
  for (size_t i = 0; i < R->nslots; i++)
    if (R->slots[i].L) set_slot(S, &R->slots[i], LCTX_M_ARMED);
  R->mode = LCTX_M_ARMED;
}

void lctx_set_mode(lctx_hub *S, int mode) {
  lctx_runs *R = &S->R;
  cs_enter(R);
  if (mode == LCTX_M_COUNT && R->mode == LCTX_M_COUNT) {
    /* a nested run: only its thread may be new (one not tracked) */
    for (lctx_runrec *r = R->runs; r; r = r->outer) {
      lctx_slot *s = lctx_slot_find(S, r->L);
      if (s) set_slot(S, s, mode);
    }
  } else if (!(mode == LCTX_M_NONE && R->mode == LCTX_M_NONE)) {
    for (size_t i = 0; i < R->nslots; i++)
      if (R->slots[i].L) set_slot(S, &R->slots[i], mode);
  }
  R->mode = mode;
  cs_leave(S);
}

/* ---- the signal ---- */

static _Thread_local lctx_hub *volatile tl_hub;  /* the innermost hub with runs here */
static int the_signal;
static pthread_once_t signal_once = PTHREAD_ONCE_INIT;

static void on_signal(int sig) {
  int saved = errno;
  (void)sig;
  for (lctx_hub *S = tl_hub; S; S = S->R.tl_outer) {
    if (!S->R.runs) continue;
    if (S->R.cs) S->R.deferred = 1;  /* the thread is changing slots or hooks */
    else arm_all(S);
  }
  errno = saved;
}

/* Takes sig if nobody has: a handler already there is someone else's. */
static int take_signal(int sig) {
  struct sigaction old, sa;
  if (sigaction(sig, NULL, &old) != 0) return 0;
  if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) return 0;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) != 0) return 0;
  the_signal = sig;
  return 1;
}

/* A real-time signal where there are some (Linux, the BSDs), else SIGURG,
** which is ignored by default (a stray one harms nobody) and which few
** programs use; with neither free, the count hook. Under -DCTX_FORCE_POSIX
** (CI's portable build) the real-time signals count as absent, as on macOS. */
static void pick_signal(void) {
#ifdef LCTX_NO_SIGNAL
  /* TSan delivers signals only at its own interceptors, never to a thread
  ** busy in uninstrumented Lua: its build tests the count-hook mode */
  (void)take_signal;
#else
#if defined(SIGRTMIN) && !defined(CTX_FORCE_POSIX)
  if (SIGRTMIN + 7 <= SIGRTMAX && take_signal(SIGRTMIN + 7)) return;
#endif
  take_signal(SIGURG);
#endif
}

int lctx_signal(void) {
  pthread_once(&signal_once, pick_signal);
  return the_signal;
}

/* A thread whose mask blocks the signal (inherited, or a host's worker
** thread that blocks them all) would never see it: such a run falls back to
** the count hook. */
int lctx_signal_here(int sig) {
  sigset_t cur;
  if (!sig || pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0) return 0;
  return !sigismember(&cur, sig);
}

/* Another library may have taken the signal over since: then it is not sent
** (a real-time signal's default action would end the process). */
void lctx_signal_send(pthread_t tid, int sig) {
  struct sigaction cur;
  if (sigaction(sig, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
      cur.sa_handler == on_signal)
    pthread_kill(tid, sig);
}

void lctx_tl_enter(lctx_hub *S) {
  S->R.tl_outer = tl_hub;  /* touches the TLS block before any signal can */
  atomic_signal_fence(memory_order_seq_cst);
  tl_hub = S;
}

void lctx_tl_leave(lctx_hub *S) {
  if (tl_hub == S) tl_hub = S->R.tl_outer;
  atomic_signal_fence(memory_order_seq_cst);
  S->R.tl_outer = NULL;
}

/* ---- setup ---- */

/* The feature test, once per state: a thread made under the wrapper must be
** seen, at its address. */
int lctx_threads_init(lua_State *L, lctx_hub *S) {
  lctx_alloc *A = calloc(1, sizeof *A);
  if (!A) return 0;
  A->f = lua_getallocf(L, &A->ud);
  A->S = S;
  lua_setallocf(L, track_alloc, A);
  A->probing = 1;
  lua_State *T = lua_newthread(L);
  A->probing = 0;
  lua_setallocf(L, A->f, A->ud);
  int ok = A->probe && (char *)A->probe + LUA_EXTRASPACE == (char *)T;
  lua_pop(L, 1);
  A->pending = NULL;
  A->S = NULL;
  if (!ok) {
    free(A);
    return 0;  /* not as Lua 5.4 does it: runs use the count hook */
  }
  S->R.alloc = A;
  return 1;
}

/* The outermost run begins: 1 if the threads it makes will be known. */
int lctx_track_begin(lua_State *L, lctx_hub *S) {
  lctx_alloc *A = S->R.alloc;
  if (!A) return 0;
  A->f = lua_getallocf(L, &A->ud);
  if (A->f == track_alloc) return 0;  /* another state's wrapper, or ours stuck */
  pthread_once(&std_once, find_std_alloc);
  A->std = A->f == std_alloc;
  A->S = S;
  A->pending = NULL;
  lua_setallocf(L, track_alloc, A);
  S->R.tracking = 1;
  return 1;
}

/* The outermost run ended (its hooks are restored): the wrapper goes, and
** with it what it knew (no free would be seen any more). */
void lctx_track_end(lua_State *L, lctx_hub *S) {
  lctx_runs *R = &S->R;
  lctx_alloc *A = R->alloc;
  if (!R->tracking) return;
  R->tracking = 0;
  void *ud;
  if (lua_getallocf(L, &ud) == track_alloc && ud == A) {
    lua_setallocf(L, A->f, A->ud);
  } else {
    /* someone wrapped ours meanwhile: it stays in their chain, inert */
    lctx_alloc *B = calloc(1, sizeof *B);
    if (B) {
      B->tsize = A->tsize;
      R->alloc = B;
    } else {
      R->alloc = NULL;
    }
  }
  A->S = NULL;
  A->pending = NULL;
  cs_enter(R);
  for (size_t i = 0; i < R->nslots; i++) {
    lctx_slot *s = &R->slots[i];
    if (s->L && s->tracked && !s->nruns) slot_remove(S, s);
  }
  if (!R->hcount) {  /* start afresh: big tables from a busy run go */
    R->nslots = R->nfree = 0;
    if (R->hcap > 1024) {
      free(R->hkeys);
      free(R->hvals);
      R->hkeys = NULL;
      R->hvals = NULL;
      R->hcap = 0;
    }
  }
  cs_leave(S);
}

void lctx_threads_close(lua_State *L, lctx_hub *S) {
  lctx_runs *R = &S->R;
  (void)L;
  if (R->alloc && !R->tracking) free(R->alloc);  /* else inert in someone's chain */
  R->alloc = NULL;
  cs_enter(R);
  free(R->slots);
  free(R->freeslots);
  free(R->hkeys);
  free(R->hvals);
  R->slots = NULL;
  R->freeslots = NULL;
  R->hkeys = NULL;
  R->hvals = NULL;
  R->nslots = R->slotcap = R->nfree = R->hcap = R->hcount = 0;
  R->cs--;
}
