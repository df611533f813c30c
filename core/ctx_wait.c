/* ctx_wait.c — blocking: a wait on any number of contexts, descriptors and a
** child, and the pollable descriptor a context exposes (fresh in a forked child). */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include "ctx_int.h"

/* ---- the descriptors of contexts ----
** Kept in a table indexed by the read end, so that the write end of a pipe
** is found without a field in every node, and a forked child can give each
** a fresh event of its own. */
static struct {
  pthread_mutex_t mu;
  struct fdent { ctx_t *node; int w; } *ents;
  int cap;
} F = { .mu = PTHREAD_MUTEX_INITIALIZER };

static int fd_register(ctx_t *node, int r, int w) {
  pthread_mutex_lock(&F.mu);
  if (r >= F.cap) {
    int cap = F.cap ? F.cap : 64;
    while (cap <= r) cap *= 2;
    struct fdent *e = realloc(F.ents, (size_t)cap * sizeof *e);
    if (!e) { pthread_mutex_unlock(&F.mu); return CTX_ENOMEM; }
    for (int i = F.cap; i < cap; i++) e[i].node = NULL;
    F.ents = e;
    F.cap = cap;
  }
  F.ents[r].node = node;
  F.ents[r].w = w;
  pthread_mutex_unlock(&F.mu);
  return CTX_OK;
}

void ctx__fd_signal(int r) {
  pthread_mutex_lock(&F.mu);
  int w = F.ents[r].w;
  pthread_mutex_unlock(&F.mu);
  ctx__event_signal(w);
}

void ctx__fd_close(int r) {
  pthread_mutex_lock(&F.mu);
  int w = F.ents[r].w;
  F.ents[r].node = NULL;
  pthread_mutex_unlock(&F.mu);
  ctx__event_close(r, w);
}

int ctx_fd(ctx_t *c) {
  if (!c) return CTX_EINVAL;
  CTX__CHECK(c);
  ctx_t *k = c->canc;
  int rc = CTX_OK;
  ctx__lock(&k->lock);
  if (k->fd < 0) {
    int r, w;
    if ((rc = ctx__event_open(&r, &w)) == CTX_OK) {
      if ((rc = fd_register(k, r, w)) != CTX_OK) {
        ctx__event_close(r, w);
      } else {
        if (atomic_load_explicit(&k->state, memory_order_relaxed) & CTX__ERRMASK)
          ctx__event_signal(w);
        k->fd = r;
      }
    }
  }
  int fd = k->fd;
  ctx__unlock(&k->lock);
  return rc != CTX_OK ? rc : fd;
}

void ctx__fds_atfork_prepare(void) { pthread_mutex_lock(&F.mu); }
void ctx__fds_atfork_parent(void) { pthread_mutex_unlock(&F.mu); }

/* The child's descriptors still share their open file descriptions with the
** parent: a cancel on one side would make the other side's readable. */
void ctx__fds_atfork_child(void) {
  pthread_mutex_init(&F.mu, NULL);
  for (int r = 0; r < F.cap; r++) {
    ctx_t *n = F.ents[r].node;
    if (n) ctx__event_renew(r, F.ents[r].w,
                            (atomic_load_explicit(&n->state, memory_order_relaxed) & CTX__ERRMASK) != 0);
  }
  ctx__thread_t *me = &ctx__self;
  if (me->wake_r >= 0) ctx__event_renew(me->wake_r, me->wake_w, 0);
}

/* ---- waiting ---- */

int ctx__thread_wake_event(ctx__thread_t *t) {
  if (t->wake_r >= 0) return CTX_OK;
  return ctx__event_open(&t->wake_r, &t->wake_w);
}

static int first_done(ctx_t *const *cs, size_t nc, size_t *which) {
  for (size_t i = 0; i < nc; i++)
    if (cs[i] && ctx_done(cs[i]) == 1) {
      *which = i;
      return 1;
    }
  return 0;
}

#define SMALL 8   /* contexts and descriptors waited on without allocating */

/* ---- spinning before sleeping ----
** A thread that sleeps in the kernel takes tens of microseconds to wake once
** its CPU has gone idle (far more than a cancel costs). So a wait on contexts
** alone first spins for a while that adapts, as the kernel's halt polling
** does: a wait that slept and was ended by a context within CTX__SPIN_MAX_NS
** grows it to twice that wait, one that slept longer shrinks it by a quarter,
** down to nothing, so waits of milliseconds never spin. It yields the CPU as
** it spins (the thread that will end the wait may need it); signals are
** blocked meanwhile and looked for before it sleeps, so none goes unreported. */
_Atomic int64_t ctx__spin_ns;

static int many_cpus(void) {
#ifdef _SC_NPROCESSORS_ONLN
  static _Atomic int n;
  int k = atomic_load_explicit(&n, memory_order_relaxed);
  if (!k) atomic_store_explicit(&n, k = (int)sysconf(_SC_NPROCESSORS_ONLN), memory_order_relaxed);
  return k > 1;
#else
  return 1;
#endif
}

/* Until `until` at most: 1 if a context woke us, -1 if a signal is waiting
** to be handled (CTX_EINTR), 0 to sleep. */
static int spin(ctx__thread_t *t, int64_t until) {
  int64_t budget = atomic_load_explicit(&ctx__spin_ns, memory_order_relaxed);
  if (!budget || !many_cpus()) return 0;
  sigset_t all, old, pending;
  sigfillset(&all);
  if (pthread_sigmask(SIG_BLOCK, &all, &old) != 0) return 0;
  int64_t end = ctx_now() + budget;
  if (end > until) end = until;
  int woken = 0, sig = 0;
  for (unsigned i = 1;; i++) {
    if (atomic_load_explicit(&t->woken, memory_order_acquire)) { woken = 1; break; }
    if (i & 31) { ctx__cpu_relax(); continue; }
    sched_yield();   /* about once a microsecond */
    if (ctx_now() >= end) {
      woken = atomic_load_explicit(&t->woken, memory_order_acquire) != 0;
      break;
    }
  }
  if (!woken && sigpending(&pending) == 0)
    for (int s = 1; s < 65 && !sig; s++)
      sig = sigismember(&pending, s) == 1 && sigismember(&old, s) == 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return woken ? 1 : -sig;
}

static void spin_adapt(int64_t slept_ns, int by_context) {
  int64_t s = atomic_load_explicit(&ctx__spin_ns, memory_order_relaxed), next = s;
  if (slept_ns > CTX__SPIN_MAX_NS)   /* gently: one preempted wait says little */
    next = s - s / 4 < CTX__SPIN_START_NS ? 0 : s - s / 4;
  else if (by_context && slept_ns > s)   /* enough for that wait, twice over */
    next = slept_ns * 2 > CTX__SPIN_MAX_NS ? CTX__SPIN_MAX_NS
         : slept_ns * 2 > s * 2 ? slept_ns * 2 : s * 2;
  if (next != s) atomic_store_explicit(&ctx__spin_ns, next, memory_order_relaxed);
}

static void unlink_all(ctx_t *const *cs, ctx__wlink_t *links, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (!links[i].t) continue;   /* never linked */
    ctx_t *k = cs[i]->canc;
    ctx__lock(&k->lock);
    if (links[i].h.linked) {
      ctx__hook_t *h = &links[i].h;
      if (h->prev) h->prev->next = h->next; else k->u.c.hooks = h->next;
      if (h->next) h->next->prev = h->prev;
      h->linked = 0;
    }
    ctx__unlock(&k->lock);
  }
}

int ctx__wait(ctx_t *const *cs, size_t nc, const int *fds, size_t nfd, ctx_proc_t *p,
              int64_t timeout_ns, size_t *which) {
  if ((nc && !cs) || (nfd && !fds) || !which) return CTX_EINVAL;
  int64_t until = timeout_ns < 0 ? CTX_FOREVER : ctx_deadline_from_timeout(timeout_ns);
  if (first_done(cs, nc, which)) return CTX_OK;
  if (p && ctx__proc_poll(p)) { *which = CTX_PROC_EXITED; return CTX_OK; }
  int64_t started = ctx_now();   /* what the spin learns from: waits that block */
  ctx__thread_t *t = &ctx__self;
  if (!t->registered) ctx__thread_register(t);
  int rc = ctx__thread_wake_event(t);
  if (rc != CTX_OK) return rc;
  int pidfd = p ? ctx__proc_pidfd(p) : -1;
  size_t np = 1 + nfd + (pidfd >= 0);
  ctx__wlink_t small_links[SMALL], *links = small_links;
  struct pollfd small_pfd[SMALL], *pfd = small_pfd;
  if (nc > SMALL && !(links = ctx__alloc(nc * sizeof *links))) return CTX_ENOMEM;
  if (np > SMALL && !(pfd = ctx__alloc(np * sizeof *pfd))) {
    if (links != small_links) ctx__free_mem(links);
    return CTX_ENOMEM;
  }
  pfd[0] = (struct pollfd){ .fd = t->wake_r, .events = POLLIN };
  for (size_t j = 0; j < nfd; j++)
    pfd[1 + j] = (struct pollfd){ .fd = fds[j] < 0 ? fds[j] : fds[j] & ~CTX_FD_WRITE,
                                  .events = fds[j] >= 0 && (fds[j] & CTX_FD_WRITE) ? POLLOUT : POLLIN };
  if (pidfd >= 0) pfd[np - 1] = (struct pollfd){ .fd = pidfd, .events = POLLIN };

  /* from here a cancel of any linked context sets woken (and signals our
  ** event once we sleep) */
  atomic_store_explicit(&t->woken, 0, memory_order_relaxed);
  ctx__event_drain(t->wake_r);
  size_t nlinked = 0;
  for (; nlinked < nc; nlinked++) {
    ctx__wlink_t *l = &links[nlinked];
    ctx_t *k = cs[nlinked] ? cs[nlinked]->canc : NULL;
    l->t = NULL;
    if (!k || !(k->flags & CTX__CANCELABLE)) continue;   /* never ends */
    l->t = t;
    l->h.kind = CTX__HOOK_WAIT;
    ctx__lock(&k->lock);
    int done = (atomic_load_explicit(&k->state, memory_order_relaxed) & CTX__ERRMASK) != 0;
    l->h.linked = !done;
    if (!done) {
      l->h.prev = NULL;
      l->h.next = k->u.c.hooks;
      if (l->h.next) l->h.next->prev = &l->h;
      k->u.c.hooks = &l->h;
    }
    ctx__unlock(&k->lock);
    if (done) { nlinked++; break; }
  }

  int interrupted = 0, polled = 0, slept = 0;
  int may_spin = !nfd && !p;   /* contexts alone: a descriptor or a child never spins */
  for (;;) {
    if (first_done(cs, nc, which)) { rc = CTX_OK; break; }
    size_t j = 0;
    while (polled && j < nfd && !pfd[1 + j].revents) j++;
    if (polled && j < nfd) { *which = nc + j; rc = CTX_OK; break; }
    if (p && ctx__proc_poll(p)) { *which = CTX_PROC_EXITED; rc = CTX_OK; break; }
    if (interrupted) { rc = CTX_EINTR; break; }
    /* never sleep past a deadline, and fire it here if the timer is late */
    int64_t now = ctx_now(), wake = until;
    int expired = 0;
    for (size_t i = 0; i < nc; i++) {
      if (!cs[i] || cs[i]->deadline == CTX_FOREVER) continue;
      if (cs[i]->deadline <= now) expired |= ctx_expire(cs[i]) == 1;
      else if (cs[i]->deadline < wake) wake = cs[i]->deadline;
    }
    if (expired) continue;
    if (now >= until) { rc = CTX_ETIMEDOUT; break; }
    if (p && pidfd < 0) {
      int64_t next = ctx__proc_next_check(p, now);
      if (next < wake) wake = next;
    }
    if (may_spin) {
      may_spin = 0;
      int r = spin(t, wake);
      if (r) { interrupted = r < 0; continue; }
      if ((now = ctx_now()) >= wake) continue;
    }
    /* from here a waker must signal the event: we are going to sleep */
    uint32_t awake = 0;
    if (!atomic_compare_exchange_strong_explicit(&t->woken, &awake, CTX__WAKE_SLEEPING,
          memory_order_acq_rel, memory_order_acquire) && awake == 1)
      continue;
    slept = 1;
    int r = ctx__poll(pfd, np, wake == CTX_FOREVER ? -1 : wake - now);
    polled = r > 0;
    if (r < 0) {
      if (errno != EINTR) { rc = errno == ENOMEM ? CTX_ENOMEM : CTX_EINVAL; break; }
      interrupted = 1;
    }
  }
  if (slept) spin_adapt(ctx_now() - started, rc == CTX_OK && *which < nc);
  unlink_all(cs, links, nlinked);
  if (links != small_links) ctx__free_mem(links);
  if (pfd != small_pfd) ctx__free_mem(pfd);
  return rc;
}

int ctx_wait_any(ctx_t *const *cs, size_t nc, const int *fds, size_t nfd,
                 int64_t timeout_ns, size_t *which) {
  return ctx__wait(cs, nc, fds, nfd, NULL, timeout_ns, which);
}

int ctx_wait(const ctx_t *c, int64_t timeout_ns) {
  if (!c) return CTX_EINVAL;
  CTX__CHECK(c);
  if (ctx_done(c)) return CTX_OK;
  if (timeout_ns == 0) return ctx_expire((ctx_t *)c) == 1 ? CTX_OK : CTX_ETIMEDOUT;
  ctx_t *cc = (ctx_t *)c;
  size_t which;
  return ctx__wait(&cc, 1, NULL, 0, NULL, timeout_ns, &which);
}
