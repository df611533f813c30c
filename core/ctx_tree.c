/* ctx_tree.c — the context tree: creation, references, values, causes and
** queries; cancellation walks the subtree in ctx_cancel.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ctx_int.h"

static void *(*alloc_fn)(size_t) = malloc;
static void (*dealloc_fn)(void *) = free;

void ctx_set_allocator(void *(*alloc)(size_t), void (*dealloc)(void *)) {
  alloc_fn = alloc ? alloc : malloc;
  dealloc_fn = dealloc ? dealloc : free;
}

void *ctx__alloc(size_t n) { return alloc_fn(n); }
void ctx__free_mem(void *p) { if (p) dealloc_fn(p); }

#ifdef CTX_DEBUG
#define ROOT_MAGIC , .magic = CTX__MAGIC
void ctx__check_alive(const ctx_t *c) {
  if (c->magic == CTX__MAGIC) return;
  fprintf(stderr, "ctx: use of a freed context %p (one ctx_unref too many?)\n", (void *)c);
  abort();
}
#else
#define ROOT_MAGIC
#endif

#define ROOT(name, k) static ctx_t name = { .refs = 1, .kind = (k), \
  .flags = CTX__STATIC, .fd = -1, .slot = CTX__NO_SLOT, \
  .deadline = CTX_FOREVER, .canc = &name ROOT_MAGIC }
ROOT(background_node, CTX_KIND_BACKGROUND);
ROOT(todo_node, CTX_KIND_TODO);

ctx_t *ctx_background(void) { return &background_node; }
ctx_t *ctx_todo(void) { return &todo_node; }

const char *ctx_version(void) { return CTX_VERSION_STRING; }

const char *ctx_err_string(ctx_err_t err) {
  switch (err) {
    case CTX_ERR_CANCELED: return "context canceled";
    case CTX_ERR_DEADLINE: return "context deadline exceeded";
    default: return "";
  }
}

const char *ctx_strerror(int code) {
  switch (code) {
    case CTX_OK: return "success";
    case CTX_EINTR: return "interrupted by a signal";
    case CTX_ECHILD: return "no such child process";
    case CTX_EAGAIN: return "no thread could be started";
    case CTX_ENOMEM: return "out of memory";
    case CTX_EINVAL: return "invalid argument";
    case CTX_EMFILE: return "no file descriptor available";
    case CTX_ECLOSED: return "queue closed";
    case CTX_ETIMEDOUT: return "timed out";
    default: return "unknown error";
  }
}

/* ---- references ---- */

ctx_t *ctx_ref(ctx_t *c) {
  if (!c) return NULL;
  CTX__CHECK(c);
  if (!(c->flags & CTX__STATIC))
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
  return c;
}

/* Takes a reference only if the node is not already being destroyed. */
int ctx__try_ref(ctx_t *c) {
  uint32_t r = atomic_load_explicit(&c->refs, memory_order_acquire);
  while (r & CTX__REF_COUNT)
    if (atomic_compare_exchange_weak_explicit(&c->refs, &r, r + 1,
          memory_order_acquire, memory_order_acquire))
      return 1;
  return (r & CTX__REF_SHARDED) && ctx__shards_try_ref(c);
}

void ctx__cause_unref(ctx__cause_t *z) {
  if (!z || atomic_fetch_sub_explicit(&z->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (z->release) z->release(z->obj);
  ctx__free_mem(z);
}

/* Once unlinked a node is never linked again, so seeing 0 here (acquire,
** paired with the canceler's release) lets us skip the parent's lock. */
void ctx__detach_from_link(ctx_t *c) {
  if (c->shard) { ctx__shard_unlink(c); return; }
  if (!atomic_load_explicit(&c->linked, memory_order_acquire)) return;
  ctx_t *link = c->parent->canc;  /* where attach() linked it */
  ctx__lock(&link->lock);
  ctx__unjoin(c, &link->u.c.children);
  ctx__unlock(&link->lock);
}

/* Frees c; 1 if that gave up the last hold on a parent that no reference
** keeps (then the parent is the caller's to destroy). */
static int destroy(ctx_t *c) {
  int parent_dead = 0;
  if (c->flags & CTX__CANCELABLE) {
    if (c->shard) parent_dead = ctx__shard_leave(c);
    else ctx__detach_from_link(c);
    if (c->flags & CTX__TIMER) ctx__timer_remove(c);
    ctx__cause_unref(c->u.c.cause);
    ctx__shards_t *s = ctx__shards_of(c);
    if (s) ctx__free_mem(s->raw);
  } else if (c->kind == CTX_KIND_VALUE && c->u.v.release) {
    c->u.v.release(c->u.v.key);
    c->u.v.release(c->u.v.val);
  }
  if (c->fd >= 0) ctx__fd_close(c->fd);
#ifdef CTX_DEBUG
  memset(c, 0x5a, sizeof *c);   /* poison: magic no longer matches */
#endif
  ctx__free_mem(c);
  return parent_dead;
}

/* Drops one reference; 1 if it was the last. With shards the last one is
** dropped under their locks, where children's holds are counted too. */
static int release(ctx_t *c) {
  uint32_t r = atomic_load_explicit(&c->refs, memory_order_acquire);
  for (;;) {
    if ((r & CTX__REF_SHARDED) && (r & CTX__REF_COUNT) == 1) return ctx__shards_release(c);
    if (atomic_compare_exchange_weak_explicit(&c->refs, &r, r - 1,
          memory_order_acq_rel, memory_order_acquire))
      return r == 1;
  }
}

void ctx_unref(ctx_t *c) {
  if (c) CTX__CHECK(c);
  /* a loop, not recursion: dropping the leaf of a long chain frees the chain */
  while (c && !(c->flags & CTX__STATIC)) {
    if (!release(c)) return;
    for (;;) {   /* c is dead; a child that held its parent in a shard may end it too */
      ctx_t *parent = c->parent;
      int held = c->flags & CTX__HOLD;
      int parent_dead = destroy(c);
      c = parent;
      if (!held) break;
      if (!parent_dead) return;
    }
  }
}

/* ---- creation ---- */

static ctx_t *node_new(ctx_t *parent, ctx_kind_t kind) {
  ctx_t *c = ctx__alloc(sizeof *c);
  if (!c) return NULL;
  memset(c, 0, sizeof *c);
  atomic_init(&c->refs, 1);
  atomic_init(&c->state, 0);
  atomic_init(&c->lock, 0);
  c->kind = (uint8_t)kind;
  c->fd = -1;
  atomic_init(&c->slot, CTX__NO_SLOT);
  /* cancelable nodes take this reference in attach(), under the lock they
  ** take anyway: one cache line transfer fewer when threads share a parent */
  c->parent = kind == CTX_KIND_CANCEL || kind == CTX_KIND_DEADLINE ? parent : ctx_ref(parent);
  c->deadline = parent->deadline;
  c->canc = c;
#ifdef CTX_DEBUG
  c->magic = CTX__MAGIC;
#endif
  return c;
}

/* Registers a new cancelable c under the nearest cancelable ancestor, or makes
** it done at once when that ancestor already is (Go's propagateCancel).
** Returns 1 if c was linked (so it can still end by itself), 0 if not. */
static int attach(ctx_t *c, ctx_t *parent) {
  ctx_t *link = parent->canc;
  if (!(link->flags & CTX__CANCELABLE)) {  /* ancestors never end */
    ctx_ref(parent);
    return 1;
  }
  ctx__shards_t *s = ctx__shards_of(link);
  if (s) return ctx__shard_attach(c, parent, s);
  if (link != parent) ctx_ref(parent);
  int contended = ctx__lock(&link->lock);
  if (link == parent) atomic_fetch_add_explicit(&parent->refs, 1, memory_order_relaxed);
  ctx__cause_t *drop = NULL;
  int linked = ctx__join(c, link, &link->u.c.children, &drop);
  if (linked && contended) ctx__shards_make(link);   /* for the children to come */
  ctx__unlock(&link->lock);
  ctx__cause_unref(drop);
  return linked;
}

int ctx__join(ctx_t *c, ctx_t *link, ctx_t **head, ctx__cause_t **drop) {
  uint32_t err = atomic_load_explicit(&link->state, memory_order_acquire) & CTX__ERRMASK;
  if (err) {
    /* born done: nothing below it yet, and no callback: settled at once;
    ** link's cause was stored before its state and is never replaced */
    *drop = c->u.c.cause;
    c->u.c.cause = link->u.c.cause;
    if (c->u.c.cause) atomic_fetch_add_explicit(&c->u.c.cause->refs, 1, memory_order_relaxed);
    atomic_store_explicit(&c->state, err | CTX__SETTLED | CTX__HANDED | ctx__gen_bits(),
                          memory_order_release);
    return 0;
  }
  c->u.c.prev = NULL;
  c->u.c.next = *head;
  if (c->u.c.next) c->u.c.next->u.c.prev = c;
  *head = c;
  atomic_store_explicit(&c->linked, 1, memory_order_relaxed);
  return 1;
}

void ctx__unjoin(ctx_t *c, ctx_t **head) {
  if (!atomic_load_explicit(&c->linked, memory_order_relaxed)) return;
  if (c->u.c.prev) c->u.c.prev->u.c.next = c->u.c.next;
  else *head = c->u.c.next;
  if (c->u.c.next) c->u.c.next->u.c.prev = c->u.c.prev;
  atomic_store_explicit(&c->linked, 0, memory_order_relaxed);
}

int ctx_with_cancel(ctx_t *parent, ctx_t **out) {
  if (!parent || !out) return CTX_EINVAL;
  CTX__CHECK(parent);
  ctx_t *c = node_new(parent, CTX_KIND_CANCEL);
  if (!c) return CTX_ENOMEM;
  c->flags = CTX__CANCELABLE;
  attach(c, parent);
  *out = c;
  return CTX_OK;
}

static ctx__cause_t *cause_new(void *obj, ctx_release_fn release) {
  ctx__cause_t *z = ctx__alloc(sizeof *z);
  if (!z) return NULL;
  atomic_init(&z->refs, 1);
  z->obj = obj;
  z->release = release;
  z->next = NULL;
  return z;
}

/* `future`: the deadline cannot have passed yet (a timeout this long, just
** read off the clock), which spares a second clock read; if this thread is
** preempted past it anyway, the timer fires it, as it would any deadline. */
#define FAR_NS 1000000
static int with_deadline(ctx_t *parent, int64_t deadline, void *cause,
                         ctx_release_fn release, ctx_t **out, int future) {
  ctx__cause_t *pending = NULL;
  if (!parent || !out) return CTX_EINVAL;
  CTX__CHECK(parent);
  if (deadline == CTX_FOREVER || parent->deadline < deadline) {
    /* the parent ends first anyway: Go returns a plain WithCancel, and the
    ** cause can never be reported, so the core drops it (it owns it now) */
    int rc = ctx_with_cancel(parent, out);
    if (rc == CTX_OK && cause && release) release(cause);
    return rc;
  }
  if (cause && !(pending = cause_new(cause, release))) return CTX_ENOMEM;
  ctx_t *c = node_new(parent, CTX_KIND_DEADLINE);
  if (!c) { ctx__free_mem(pending); return CTX_ENOMEM; }
  c->flags = CTX__CANCELABLE | CTX__TIMER;
  c->deadline = deadline;
  c->u.c.cause = pending;
  if (attach(c, parent)) {
    int rc;
    if (!future && deadline <= ctx_now()) {
      ctx__cancel(c, CTX_ERR_DEADLINE, NULL, 1);
    } else if ((rc = ctx__timer_add(c)) != CTX_OK) {
      /* the caller keeps the cause on failure: take it back, unless the
      ** parent ended c meanwhile (then c needs no timer and we succeed) */
      ctx__lock(&c->lock);
      int done = (atomic_load_explicit(&c->state, memory_order_relaxed) & CTX__ERRMASK) != 0;
      if (!done) c->u.c.cause = NULL;
      ctx__unlock(&c->lock);
      if (!done) {
        ctx__free_mem(pending);
        ctx_unref(c);
        return rc;
      }
    }
  }
  *out = c;
  return CTX_OK;
}

int ctx_with_deadline_cause(ctx_t *parent, int64_t deadline, void *cause,
                            ctx_release_fn release, ctx_t **out) {
  return with_deadline(parent, deadline, cause, release, out, 0);
}

int ctx_with_deadline(ctx_t *parent, int64_t deadline, ctx_t **out) {
  return with_deadline(parent, deadline, NULL, NULL, out, 0);
}

int ctx_with_timeout_cause(ctx_t *parent, int64_t timeout_ns, void *cause,
                           ctx_release_fn release, ctx_t **out) {
  return with_deadline(parent, ctx_deadline_from_timeout(timeout_ns), cause, release, out,
                       timeout_ns >= FAR_NS);
}

int ctx_with_timeout(ctx_t *parent, int64_t timeout_ns, ctx_t **out) {
  return with_deadline(parent, ctx_deadline_from_timeout(timeout_ns), NULL, NULL, out,
                       timeout_ns >= FAR_NS);
}

int ctx_with_value(ctx_t *parent, void *key, void *value, ctx_release_fn release,
                   ctx_t **out) {
  ctx_t *c = NULL;
  int rc = CTX_EINVAL;
  if (parent && key && out) {
    CTX__CHECK(parent);
    rc = CTX_ENOMEM;
    c = node_new(parent, CTX_KIND_VALUE);
  }
  if (!c) return rc;  /* key and value stay the caller's */
  c->canc = parent->canc;
  c->u.v.key = key;
  c->u.v.val = value;
  c->u.v.release = release;
  *out = c;
  return CTX_OK;
}

int ctx_without_cancel(ctx_t *parent, ctx_t **out) {
  if (!parent || !out) return CTX_EINVAL;
  CTX__CHECK(parent);
  ctx_t *c = node_new(parent, CTX_KIND_WITHOUT_CANCEL);
  if (!c) return CTX_ENOMEM;
  c->deadline = CTX_FOREVER;
  *out = c;
  return CTX_OK;
}

/* ---- cancel entry points (the walk is in ctx_cancel.c) ---- */

int ctx_cancel(ctx_t *c) {
  if (!c) return CTX_EINVAL;
  CTX__CHECK(c);
  if (!(c->flags & CTX__CANCELABLE)) return CTX_EINVAL;
  return ctx__cancel(c, CTX_ERR_CANCELED, NULL, 0);
}

int ctx_cancel_cause(ctx_t *c, void *cause, ctx_release_fn release) {
  if (c) CTX__CHECK(c);
  if (!c || !(c->flags & CTX__CANCELABLE)) {
    if (cause && release) release(cause);
    return CTX_EINVAL;
  }
  if (!cause) return ctx_cancel(c);
  if (ctx_done(c)) {  /* the first cancellation won: nothing to record */
    if (release) release(cause);
    ctx__settle_wait(c, CTX__SETTLED);
    return 0;
  }
  ctx__cause_t *z = cause_new(cause, release);
  if (!z) {
    /* ENOMEM only when this call is the one that ended c */
    int r = ctx_cancel(c);
    if (release) release(cause);
    return r == 1 ? CTX_ENOMEM : r;
  }
  int r = ctx__cancel(c, CTX_ERR_CANCELED, z, 0);
  ctx__cause_unref(z);  /* the nodes that took it keep it */
  return r;
}

/* ---- queries ---- */

int ctx_done(const ctx_t *c) {
  if (!c) return CTX_EINVAL;
  return (atomic_load_explicit(&c->canc->state, memory_order_acquire) & CTX__ERRMASK) != 0;
}

ctx_err_t ctx_err(const ctx_t *c) {
  if (!c) return CTX_ERR_INVALID;
  return (ctx_err_t)(atomic_load_explicit(&c->canc->state, memory_order_acquire) & CTX__ERRMASK);
}

void *ctx_cause(const ctx_t *c) {
  if (!c) return NULL;
  const ctx_t *k = c->canc;
  if (!(atomic_load_explicit(&k->state, memory_order_acquire) & CTX__ERRMASK))
    return NULL;
  /* written before the state under the lock, and never again */
  return k->u.c.cause ? k->u.c.cause->obj : NULL;
}

int ctx_deadline(const ctx_t *c, int64_t *deadline) {
  if (!c) return CTX_EINVAL;
  if (c->deadline == CTX_FOREVER) return 0;
  if (deadline) *deadline = c->deadline;
  return 1;
}

int ctx_value(const ctx_t *c, const void *key, ctx_key_eq_fn eq, void *ud,
              void **value) {
  if (!c) return CTX_EINVAL;
  CTX__CHECK(c);
  for (; c; c = c->parent) {
    if (c->kind != CTX_KIND_VALUE) continue;
    int r = eq ? eq(key, c->u.v.key, ud) : key == c->u.v.key;
    if (r < 0) return r;
    if (r) {
      if (value) *value = c->u.v.val;
      return 1;
    }
  }
  return 0;
}

ctx_kind_t ctx_kind(const ctx_t *c) { return c ? (ctx_kind_t)c->kind : CTX_KIND_INVALID; }

ctx_t *ctx_parent(const ctx_t *c) { return c ? c->parent : NULL; }

size_t ctx_num_children(ctx_t *c) {
  size_t n = 0;
  if (!c || !(c->flags & CTX__CANCELABLE)) return 0;
  ctx__lock(&c->lock);
  /* pending after_funcs count too, as Go's AfterFunc registers a child */
  for (ctx_t *k = c->u.c.children; k; k = k->u.c.next) n++;
  for (ctx__hook_t *h = c->u.c.hooks; h; h = h->next) n += h->kind == CTX__HOOK_AFTER;
  ctx__shards_t *s = ctx__shards_of(c);
  if (s) n += ctx__shards_count(s);
  ctx__unlock(&c->lock);
  return n;
}

/* A node is visited while the reference below it (the caller's, then the
** child's) is its only one: then no one else can reach its objects. */
int ctx_visit(const ctx_t *c, int (*visit)(void *obj, void *ud), void *ud) {
  if (!c || !visit) return CTX_EINVAL;
  for (; c && !(c->flags & CTX__STATIC); c = c->parent) {
    ctx__shards_t *s = ctx__shards_of(c);
    if ((atomic_load_explicit(&c->refs, memory_order_acquire) & CTX__REF_COUNT) +
        (s ? ctx__shards_holds(s) : 0) != 1)
      return 0;
    int r = 0;
    if (c->kind == CTX_KIND_VALUE) {
      if (c->u.v.key) r = visit(c->u.v.key, ud);
      if (!r && c->u.v.val) r = visit(c->u.v.val, ud);
    } else if (c->flags & CTX__CANCELABLE) {
      /* the cause box is shared by the nodes a cancellation reached; a
      ** cancel may replace it meanwhile, but not free what it held: the
      ** binding's release of it cannot run while its collector does */
      void *obj = NULL;
      ctx__lock((ctx__lock_t *)&c->lock);
      ctx__cause_t *z = c->u.c.cause;
      if (z && atomic_load_explicit(&z->refs, memory_order_acquire) == 1) obj = z->obj;
      ctx__unlock((ctx__lock_t *)&c->lock);
      if (obj) r = visit(obj, ud);
    }
    if (r) return r;
  }
  return 0;
}
