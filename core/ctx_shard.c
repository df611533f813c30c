/* ctx_shard.c — the child lists of a parent that threads contend for: one
** list per group of threads, each with its own lock on its own cache line,
** so threads creating and ending children of one parent stop trading its
** line. A child listed there holds the parent through its shard's count
** (holds), not the parent's refs, which then no thread writes per child.
**
** Two counts keep the parent alive, so one rule decides its death: with
** shards, its refs go from 1 to 0 only under every shard lock, and whoever
** finds both counts at zero there marks it reaped and destroys it. */
#include <string.h>
#include "ctx_int.h"

static void lock_all(ctx__shards_t *s) {
  for (int i = 0; i < CTX__NSHARD; i++) ctx__lock(&s->s[i].lock);
}

static void unlock_all(ctx__shards_t *s) {
  for (int i = CTX__NSHARD - 1; i >= 0; i--) ctx__unlock(&s->s[i].lock);
}

/* holds changes under its shard's lock; ctx_visit reads it without */
static void add_hold(ctx__shard_t *sh, int delta) {
  atomic_store_explicit(&sh->holds,
                        atomic_load_explicit(&sh->holds, memory_order_relaxed) + (uint32_t)delta,
                        memory_order_relaxed);
}

uint32_t ctx__shards_holds(const ctx__shards_t *s) {
  uint32_t n = 0;
  for (int i = 0; i < CTX__NSHARD; i++)
    n += atomic_load_explicit(&s->s[i].holds, memory_order_relaxed);
  return n;
}

/* Every shard lock held: 1 (and reaped) if nothing keeps c alive. */
static int reap(ctx_t *c, ctx__shards_t *s) {
  if (s->reaped || (atomic_load_explicit(&c->refs, memory_order_relaxed) & CTX__REF_COUNT) ||
      ctx__shards_holds(s))
    return 0;
  s->reaped = 1;
  return 1;
}

void ctx__shards_make(ctx_t *link) {
  if (atomic_load_explicit(&link->u.c.shards, memory_order_relaxed)) return;
  void *raw = ctx__alloc(sizeof(ctx__shards_t) + 63);
  if (!raw) return;   /* it stays one list: slower, not wrong */
  ctx__shards_t *s = (ctx__shards_t *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
  memset(s, 0, sizeof *s);
  for (int i = 0; i < CTX__NSHARD; i++) {
    atomic_init(&s->s[i].lock, 0);
    atomic_init(&s->s[i].holds, 0);
  }
  s->raw = raw;
  /* The caller's reference keeps the count above 0 until both are set, so
  ** no count drops to 0 without the shard locks once a child can hold
  ** through them; and whoever sees the bit (acquire) sees the list. */
  atomic_store_explicit(&link->u.c.shards, s, memory_order_release);
  atomic_fetch_or_explicit(&link->refs, CTX__REF_SHARDED, memory_order_release);
}

/* attach() for a sharded link: the list of this thread's shard. */
int ctx__shard_attach(ctx_t *c, ctx_t *parent, ctx__shards_t *s) {
  ctx_t *link = parent->canc;
  int hold = link == parent;
  if (!hold) ctx_ref(parent);
  ctx__thread_t *t = &ctx__self;
  if (!t->registered) ctx__thread_register(t);
  ctx__shard_t *sh = &s->s[t->shard];
  ctx__cause_t *drop = NULL;
  ctx__lock(&sh->lock);
  c->shard = (uint8_t)(t->shard + 1);
  if (hold) {
    c->flags |= CTX__HOLD;
    add_hold(sh, 1);
  }
  /* end_node sets the state before it empties the shards, under their locks */
  int linked = ctx__join(c, link, &sh->children, &drop);
  ctx__unlock(&sh->lock);
  ctx__cause_unref(drop);
  return linked;
}

static ctx__shard_t *shard_of(ctx_t *c, ctx__shards_t **s) {
  *s = atomic_load_explicit(&c->parent->canc->u.c.shards, memory_order_acquire);
  return &(*s)->s[c->shard - 1];
}

void ctx__shard_unlink(ctx_t *c) {
  if (!atomic_load_explicit(&c->linked, memory_order_acquire)) return;
  ctx__shards_t *s;
  ctx__shard_t *sh = shard_of(c, &s);
  ctx__lock(&sh->lock);
  ctx__unjoin(c, &sh->children);
  ctx__unlock(&sh->lock);
}

/* c is being destroyed. Its hold keeps the parent alive until it is given
** up; if the parent's refs may be 0 (orphan), that happens under every lock,
** where the last holder learns that the parent is its to destroy. */
int ctx__shard_leave(ctx_t *c) {
  if (!(c->flags & CTX__HOLD)) {
    ctx__shard_unlink(c);
    return 0;
  }
  ctx__shards_t *s;
  ctx__shard_t *sh = shard_of(c, &s);
  ctx__lock(&sh->lock);
  if (!s->orphan) {
    ctx__unjoin(c, &sh->children);
    add_hold(sh, -1);
    ctx__unlock(&sh->lock);
    return 0;
  }
  ctx__unlock(&sh->lock);
  lock_all(s);
  ctx__unjoin(c, &sh->children);
  add_hold(sh, -1);
  int dead = reap(c->parent, s);
  unlock_all(s);
  return dead;
}

/* Drops c's last reference; c has shards. 1 if c is dead. */
int ctx__shards_release(ctx_t *c) {
  ctx__shards_t *s = atomic_load_explicit(&c->u.c.shards, memory_order_acquire);
  lock_all(s);
  uint32_t r = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
  int dead = 0;
  if ((r & CTX__REF_COUNT) == 1) {
    dead = reap(c, s);
    if (!dead) s->orphan = 1;
  }
  unlock_all(s);
  return dead;
}

/* A reference on a node whose refs are 0 while children hold it: a walk or
** the timer must still end it, and its subtree. */
int ctx__shards_try_ref(ctx_t *c) {
  ctx__shards_t *s = atomic_load_explicit(&c->u.c.shards, memory_order_acquire);
  lock_all(s);
  int alive = !s->reaped;
  if (alive) atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
  unlock_all(s);
  return alive;
}

/* end_node, c's lock held and its state set: every shard's children join
** the walk; an attach after this sees the state under the shard lock. */
void ctx__shards_take(ctx__walk_t *w, ctx__shards_t *s) {
  for (int i = 0; i < CTX__NSHARD; i++) {
    ctx__lock(&s->s[i].lock);
    ctx__walk_take(w, s->s[i].children);
    s->s[i].children = NULL;
    ctx__unlock(&s->s[i].lock);
  }
}

size_t ctx__shards_count(ctx__shards_t *s) {
  size_t n = 0;
  for (int i = 0; i < CTX__NSHARD; i++) {
    ctx__lock(&s->s[i].lock);
    for (ctx_t *k = s->s[i].children; k; k = k->u.c.next) n++;
    ctx__unlock(&s->s[i].lock);
  }
  return n;
}
