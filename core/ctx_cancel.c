/* ctx_cancel.c — ending a context and its subtree: a walk that ends every node
** (inside the fork gate), then hands callbacks on and marks the subtree settled. */
#include "ctx_int.h"

/* Children still alive join the walk, under the lock of the list they were
** on; their sibling links are free once unlinked. */
void ctx__walk_take(ctx__walk_t *w, ctx_t *list) {
  for (ctx_t *k = list, *next; k; k = next) {
    next = k->u.c.next;
    if (ctx__try_ref(k)) {   /* a dying child is left to its destructor */
      k->u.c.next = NULL;
      if (w->tail) w->tail->u.c.next = k; else w->head = k;
      w->tail = k;
    }
    /* last touch of a dying k: its destructor may free it once it sees 0 */
    atomic_store_explicit(&k->linked, 0, memory_order_release);
  }
}

static int has_after(const ctx_t *c) {
  for (const ctx__hook_t *h = c->u.c.hooks; h; h = h->next)
    if (h->kind == CTX__HOOK_AFTER) return 1;
  return 0;
}

/* Ends one node under its lock. Children still alive join the walk; waiters
** are woken here, after_funcs and a replaced pending cause wait for the
** walk's end (they run binding code, which must not run inside the gate).
** Returns 0 if c was already done. */
static int end_node(ctx__walk_t *w, ctx_t *c, uint32_t err, ctx__cause_t **cause,
                    int use_pending) {
  ctx__lock(&c->lock);
  if (atomic_load_explicit(&c->state, memory_order_relaxed) & CTX__ERRMASK) {
    ctx__unlock(&c->lock);
    return 0;
  }
  if (use_pending) {
    *cause = c->u.c.cause;
  } else {
    ctx__cause_t *drop = c->u.c.cause;
    if (drop) { drop->next = w->drops; w->drops = drop; }
    c->u.c.cause = *cause;
    if (*cause) atomic_fetch_add_explicit(&(*cause)->refs, 1, memory_order_relaxed);
  }
  ctx__shards_t *shards = ctx__shards_of(c);
  uint32_t bits = err | ctx__gen_bits();
  if (!c->u.c.children && !shards && !has_after(c))
    bits |= CTX__SETTLED | CTX__HANDED;   /* a leaf with no callback: nothing to wait for */
  ctx__walk_take(w, c->u.c.children);
  c->u.c.children = NULL;
  /* done before any waiter wakes: a woken waiter must see why */
  atomic_fetch_or_explicit(&c->state, bits, memory_order_release);
  if (shards) ctx__shards_take(w, shards);
  /* hooks are listed newest first: the callbacks join the walk's list in
  ** the order they were registered, nodes in the order they ended */
  ctx__hook_t *first = NULL, *last = NULL;
  for (ctx__hook_t *h = c->u.c.hooks, *next; h; h = next) {
    next = h->next;
    h->linked = 0;
    if (h->kind == CTX__HOOK_WAIT) {
      ctx__thread_t *t = ((ctx__wlink_t *)h)->t;
      /* under the lock: the waiter's unlink takes it, then its link is gone */
      if (atomic_exchange_explicit(&t->woken, 1, memory_order_acq_rel) == CTX__WAKE_SLEEPING)
        ctx__event_signal(t->wake_w);
    } else {
      atomic_fetch_add_explicit(&((ctx_after_t *)h)->refs, 1, memory_order_relaxed);
      h->next = first;
      first = h;
      if (!last) last = h;
    }
  }
  if (first) {
    if (w->afters_tail) w->afters_tail->next = first; else w->afters = first;
    w->afters_tail = last;
  }
  c->u.c.hooks = NULL;
  if (c->fd >= 0) ctx__fd_signal(c->fd);
  ctx__unlock(&c->lock);
  if (c->flags & CTX__TIMER) ctx__timer_remove(c);
  return 1;
}

/* Breadth first, iteratively: a chain a million deep must not overflow the
** stack. Every queued node holds a reference taken under its parent's lock;
** root holds the cause box alive while descendants take their own refs. A
** node another thread ended first is that thread's to finish: it moves to the
** foreign list, and ctx__walk_finish waits for it. */
void ctx__walk_begin(ctx__walk_t *w, ctx_t *root, uint32_t err, ctx__cause_t *cause,
                     int use_pending) {
  w->head = w->tail = w->foreign = NULL;
  w->afters = w->afters_tail = NULL;
  w->drops = NULL;
  w->root = root;
  w->root_own = end_node(w, root, err, &cause, use_pending);
  if (!w->root_own) return;
  ctx__detach_from_link(root);
  for (ctx_t *k = w->head, *prev = NULL, *next; k; k = next) {
    if (end_node(w, k, err, &cause, 0)) {
      prev = k;
      next = k->u.c.next;
      continue;
    }
    next = k->u.c.next;   /* unlist it: it is not ours */
    if (prev) prev->u.c.next = next; else w->head = next;
    if (w->tail == k) w->tail = prev;
    k->u.c.next = w->foreign;
    w->foreign = k;
  }
}

static void mark(ctx_t *c, uint32_t bit) {
  /* set as it ended: no waiter ever parked for it */
  if (atomic_load_explicit(&c->state, memory_order_relaxed) & bit) return;
  uint32_t old = atomic_fetch_or_explicit(&c->state, bit, memory_order_release);
  if (old & CTX__PARKED) ctx__unpark_all(&c->state);
}

/* The subtree is settled before its callbacks are handed on: a callback run
** inline that cancels the context it was registered on must not wait for
** its own hand-off. */
void ctx__walk_finish(ctx__walk_t *w) {
  if (!w->root_own) {   /* another thread is ending it: wait for its subtree */
    ctx__settle_wait(w->root, CTX__SETTLED);
    return;
  }
  for (ctx_t *k = w->foreign, *next; k; k = next) {
    next = k->u.c.next;
    ctx__settle_wait(k, CTX__SETTLED);
    ctx_unref(k);
  }
  for (ctx_t *k = w->head; k; k = k->u.c.next) mark(k, CTX__SETTLED);
  mark(w->root, CTX__SETTLED);
  /* an inline executor runs user code here */
  for (ctx__hook_t *h = w->afters, *next; h; h = next) {
    next = h->next;
    ctx__after_dispatch((ctx_after_t *)h);
    ctx__after_unref((ctx_after_t *)h);
  }
  for (ctx__cause_t *z = w->drops, *next; z; z = next) {
    next = z->next;
    ctx__cause_unref(z);
  }
  for (ctx_t *k = w->head, *next; k; k = next) {
    next = k->u.c.next;
    mark(k, CTX__HANDED);
    ctx_unref(k);
  }
  mark(w->root, CTX__HANDED);
}

int ctx__cancel(ctx_t *root, uint32_t err, ctx__cause_t *cause, int use_pending) {
  ctx__walk_t w;
  ctx__gate_enter();
  ctx__walk_begin(&w, root, err, cause, use_pending);
  ctx__gate_exit();
  ctx__walk_finish(&w);
  return w.root_own;
}

/* Ended in an earlier fork generation: by a walk that did not survive the
** fork (this process is its child), so nothing will settle it. */
static int orphaned(uint32_t s) {
  uint32_t gen = atomic_load_explicit(&ctx__fork_gen, memory_order_relaxed) & CTX__GEN_MASK;
  return ((s >> CTX__GEN_SHIFT) & CTX__GEN_MASK) != gen;
}

void ctx__settle_wait(const ctx_t *canc, uint32_t bit) {
  _Atomic uint32_t *word = (_Atomic uint32_t *)&canc->state;
  for (int spin = 0;; spin++) {
    uint32_t s = atomic_load_explicit(word, memory_order_acquire);
    if (!(s & CTX__ERRMASK) || (s & bit) || orphaned(s)) return;
    if (spin < 100) {
      ctx__cpu_relax();
      continue;
    }
    if (!(s & CTX__PARKED) &&
        !atomic_compare_exchange_weak_explicit(word, &s, s | CTX__PARKED,
          memory_order_acq_rel, memory_order_acquire))
      continue;
    ctx__park(word, s | CTX__PARKED);
  }
}

void ctx_settle(const ctx_t *c) {
  if (!c || !(c->canc->flags & CTX__CANCELABLE)) return;
  ctx__settle_wait(c->canc, CTX__HANDED);
}
