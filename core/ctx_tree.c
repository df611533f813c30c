/* ctx_tree.c — the context tree: creation, cancellation flowing to children,
** reference counting, values, causes and queries. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctx_int.h"

static void *(*alloc_fn)(size_t) = malloc;
static void (*dealloc_fn)(void *) = free;

void ctx_set_allocator(void *(*alloc)(size_t), void (*dealloc)(void *)) {
  alloc_fn = alloc ? alloc : malloc;
  dealloc_fn = dealloc ? dealloc : free;
}

void *ctx__alloc(size_t n) { return alloc_fn(n); }
void ctx__free_mem(void *p) { if (p) dealloc_fn(p); }

#define ROOT(name, k) static ctx_t name = { .refs = 1, .kind = (k), \
  .flags = CTX__STATIC, .fd = -1, .slot = CTX__NO_SLOT, \
  .deadline = CTX_FOREVER, .canc = &name }
ROOT(background_node, CTX_KIND_BACKGROUND);
ROOT(todo_node, CTX_KIND_TODO);

ctx_t *ctx_background(void) { return &background_node; }
ctx_t *ctx_todo(void) { return &todo_node; }

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
    case CTX_ENOMEM: return "out of memory";
    case CTX_EINVAL: return "invalid argument";
    case CTX_EMFILE: return "no file descriptor available";
    case CTX_ETIMEDOUT: return "timed out";
    default: return "unknown error";
  }
}

/* ---- references ---- */

ctx_t *ctx_ref(ctx_t *c) {
  if (c && !(c->flags & CTX__STATIC))
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
  return c;
}

/* Takes a reference only if the node is not already being destroyed. */
int ctx__try_ref(ctx_t *c) {
  uint32_t r = atomic_load_explicit(&c->refs, memory_order_relaxed);
  while (r != 0)
    if (atomic_compare_exchange_weak_explicit(&c->refs, &r, r + 1,
          memory_order_acquire, memory_order_relaxed))
      return 1;
  return 0;
}

static ctx__cause_t *cause_new(void *obj, ctx_release_fn release) {
  ctx__cause_t *z = ctx__alloc(sizeof *z);
  if (!z) return NULL;
  atomic_init(&z->refs, 1);
  z->obj = obj;
  z->release = release;
  return z;
}

static ctx__cause_t *cause_ref(ctx__cause_t *z) {
  if (z) atomic_fetch_add_explicit(&z->refs, 1, memory_order_relaxed);
  return z;
}

void ctx__cause_unref(ctx__cause_t *z) {
  if (!z || atomic_fetch_sub_explicit(&z->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (z->release) z->release(z->obj);
  ctx__free_mem(z);
}

/* Unlinks c from link's child list; the caller holds link->lock. */
static void unlink_child(ctx_t *link, ctx_t *c) {
  if (c->u.c.prev) c->u.c.prev->u.c.next = c->u.c.next;
  else link->children = c->u.c.next;
  if (c->u.c.next) c->u.c.next->u.c.prev = c->u.c.prev;
  atomic_store_explicit(&c->linked, 0, memory_order_relaxed);
}

/* Once unlinked a node is never linked again, so seeing 0 here (acquire,
** paired with end_node's release) lets us skip the parent's lock. */
static void detach_from_link(ctx_t *c) {
  if (!atomic_load_explicit(&c->linked, memory_order_acquire)) return;
  ctx_t *link = c->parent->canc;  /* where attach() linked it */
  ctx__lock(&link->lock);
  if (atomic_load_explicit(&c->linked, memory_order_relaxed)) unlink_child(link, c);
  ctx__unlock(&link->lock);
}

static void destroy(ctx_t *c) {
  if (c->flags & CTX__CANCELABLE) {
    detach_from_link(c);
    if (c->flags & CTX__TIMER) ctx__timer_remove(c);
    ctx__cause_unref(c->u.c.cause);
  } else if (c->kind == CTX_KIND_VALUE && c->u.v.release) {
    c->u.v.release(c->u.v.key);
    c->u.v.release(c->u.v.val);
  }
  if (c->fd >= 0) close(c->fd);
  ctx__free_mem(c);
}

void ctx_unref(ctx_t *c) {
  /* a loop, not recursion: dropping the leaf of a long chain frees the chain */
  while (c && !(c->flags & CTX__STATIC)) {
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
      return;
    ctx_t *parent = c->parent;
    destroy(c);
    c = parent;
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
  return c;
}

/* Registers a new cancelable c under the nearest cancelable ancestor, or makes
** it done at once when that ancestor already is (Go's propagateCancel).
** Returns 1 if c was linked (so it can still end by itself), 0 if not. */
static int attach(ctx_t *c, ctx_t *parent) {
  ctx_t *link = parent->canc;
  if (link != parent || !(link->flags & CTX__CANCELABLE)) ctx_ref(parent);
  if (!(link->flags & CTX__CANCELABLE)) return 1;  /* ancestors never end */
  ctx__lock(&link->lock);
  if (link == parent) atomic_fetch_add_explicit(&parent->refs, 1, memory_order_relaxed);
  uint32_t err = atomic_load_explicit(&link->state, memory_order_relaxed) & CTX__ERRMASK;
  ctx__cause_t *pending = NULL;
  if (err) {
    pending = c->u.c.cause;
    c->u.c.cause = cause_ref(link->u.c.cause);
    atomic_store_explicit(&c->state, err, memory_order_release);
  } else {
    c->u.c.prev = NULL;
    c->u.c.next = link->children;
    if (c->u.c.next) c->u.c.next->u.c.prev = c;
    link->children = c;
    atomic_store_explicit(&c->linked, 1, memory_order_relaxed);
  }
  ctx__unlock(&link->lock);
  ctx__cause_unref(pending);
  return !err;
}

int ctx_with_cancel(ctx_t *parent, ctx_t **out) {
  if (!parent || !out) return CTX_EINVAL;
  ctx_t *c = node_new(parent, CTX_KIND_CANCEL);
  if (!c) return CTX_ENOMEM;
  c->flags = CTX__CANCELABLE;
  attach(c, parent);
  *out = c;
  return CTX_OK;
}

int ctx_with_deadline_cause(ctx_t *parent, int64_t deadline, void *cause,
                            ctx_release_fn release, ctx_t **out) {
  ctx__cause_t *pending = NULL;
  if (!parent || !out) return CTX_EINVAL;
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
    if (deadline <= ctx_now()) {
      ctx__cancel(c, CTX_ERR_DEADLINE, NULL, 1);
    } else if (ctx__timer_add(c) != CTX_OK) {
      /* the caller keeps the cause on failure: take it back, unless the
      ** parent ended c meanwhile (then c needs no timer and we succeed) */
      ctx__lock(&c->lock);
      int done = (atomic_load_explicit(&c->state, memory_order_relaxed) & CTX__ERRMASK) != 0;
      if (!done) c->u.c.cause = NULL;
      ctx__unlock(&c->lock);
      if (!done) {
        ctx__free_mem(pending);
        ctx_unref(c);
        return CTX_ENOMEM;
      }
    }
  }
  *out = c;
  return CTX_OK;
}

int ctx_with_deadline(ctx_t *parent, int64_t deadline, ctx_t **out) {
  return ctx_with_deadline_cause(parent, deadline, NULL, NULL, out);
}

static int64_t deadline_after(int64_t timeout_ns) {
  int64_t now = ctx_now();
  if (timeout_ns >= CTX_FOREVER - now) return CTX_FOREVER;
  return now + timeout_ns;
}

int ctx_with_timeout_cause(ctx_t *parent, int64_t timeout_ns, void *cause,
                           ctx_release_fn release, ctx_t **out) {
  return ctx_with_deadline_cause(parent, deadline_after(timeout_ns), cause,
                                 release, out);
}

int ctx_with_timeout(ctx_t *parent, int64_t timeout_ns, ctx_t **out) {
  return ctx_with_deadline_cause(parent, deadline_after(timeout_ns), NULL, NULL, out);
}

int ctx_with_value(ctx_t *parent, void *key, void *value, ctx_release_fn release,
                   ctx_t **out) {
  ctx_t *c = NULL;
  int rc = CTX_EINVAL;
  if (parent && key && out) {
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
  ctx_t *c = node_new(parent, CTX_KIND_WITHOUT_CANCEL);
  if (!c) return CTX_ENOMEM;
  c->deadline = CTX_FOREVER;
  *out = c;
  return CTX_OK;
}

/* ---- cancellation ---- */

typedef struct { ctx_t *head, *tail; } queue_t;

/* Ends one node under its lock. Children still alive are queued (their
** sibling links are free once unlinked); pending after_funcs are dispatched
** once the lock is released. Returns 0 if c was already done. */
static int end_node(ctx_t *c, uint32_t err, ctx__cause_t **cause, int use_pending,
                    queue_t *q) {
  ctx__cause_t *drop = NULL;
  ctx__lock(&c->lock);
  if (atomic_load_explicit(&c->state, memory_order_relaxed) & CTX__ERRMASK) {
    ctx__unlock(&c->lock);
    return 0;
  }
  if (use_pending) {
    *cause = c->u.c.cause;
  } else {
    drop = c->u.c.cause;
    c->u.c.cause = cause_ref(*cause);
  }
  for (ctx_t *k = c->children, *next; k; k = next) {
    next = k->u.c.next;
    if (ctx__try_ref(k)) {   /* a dying child is left to its destructor */
      k->u.c.next = NULL;
      if (q->tail) q->tail->u.c.next = k; else q->head = k;
      q->tail = k;
    }
    /* last touch of a dying k: its destructor may free it once it sees 0 */
    atomic_store_explicit(&k->linked, 0, memory_order_release);
  }
  c->children = NULL;
  ctx_after_t *afters = c->u.c.afters;
  c->u.c.afters = NULL;
  for (ctx_after_t *a = afters; a; a = a->next) {
    a->linked = 0;
    atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
  }
  uint32_t old = atomic_fetch_or_explicit(&c->state, err, memory_order_release);
  if (c->fd >= 0) {
    uint64_t one = 1;
    ssize_t n = write(c->fd, &one, sizeof one);
    (void)n;  /* cannot fail: the counter never nears overflow */
  }
  ctx__unlock(&c->lock);
  if (old & CTX__WAITERS) ctx__futex_wake_all(&c->state);
  if (c->flags & CTX__TIMER) ctx__timer_remove(c);
  ctx__cause_unref(drop);
  /* last: an inline executor runs user code here */
  for (ctx_after_t *a = afters, *next; a; a = next) {
    next = a->next;
    ctx__after_dispatch(a);
    ctx__after_unref(a);
  }
  return 1;
}

int ctx__cancel(ctx_t *root, uint32_t err, ctx__cause_t *cause, int use_pending) {
  queue_t q = { NULL, NULL };
  if (!end_node(root, err, &cause, use_pending, &q)) return 0;
  detach_from_link(root);
  /* breadth first, iteratively: a chain a million deep must not overflow the
  ** stack. Every queued node holds a reference taken under its parent's lock;
  ** root holds the cause box alive while descendants take their own refs. */
  while (q.head) {
    ctx_t *k = q.head;
    q.head = k->u.c.next;
    if (!q.head) q.tail = NULL;
    end_node(k, err, &cause, 0, &q);
    ctx_unref(k);
  }
  return 1;
}

int ctx_cancel(ctx_t *c) {
  if (!c || !(c->flags & CTX__CANCELABLE)) return CTX_EINVAL;
  return ctx__cancel(c, CTX_ERR_CANCELED, NULL, 0);
}

int ctx_cancel_cause(ctx_t *c, void *cause, ctx_release_fn release) {
  if (!c || !(c->flags & CTX__CANCELABLE)) {
    if (cause && release) release(cause);
    return CTX_EINVAL;
  }
  if (!cause) return ctx_cancel(c);
  if (ctx_done(c)) {  /* the first cancellation won: nothing to record */
    if (release) release(cause);
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
  return (atomic_load_explicit(&c->canc->state, memory_order_acquire) & CTX__ERRMASK) != 0;
}

ctx_err_t ctx_err(const ctx_t *c) {
  return (ctx_err_t)(atomic_load_explicit(&c->canc->state, memory_order_acquire) & CTX__ERRMASK);
}

void *ctx_cause(const ctx_t *c) {
  const ctx_t *k = c->canc;
  if (!(atomic_load_explicit(&k->state, memory_order_acquire) & CTX__ERRMASK))
    return NULL;
  /* written before the state under the lock, and never again */
  return k->u.c.cause ? k->u.c.cause->obj : NULL;
}

int ctx_deadline(const ctx_t *c, int64_t *deadline) {
  if (c->deadline == CTX_FOREVER) return 0;
  if (deadline) *deadline = c->deadline;
  return 1;
}

int ctx_value(const ctx_t *c, const void *key, ctx_key_eq_fn eq, void *ud,
              void **value) {
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

ctx_kind_t ctx_kind(const ctx_t *c) { return (ctx_kind_t)c->kind; }

ctx_t *ctx_parent(const ctx_t *c) { return c->parent; }

size_t ctx_num_children(ctx_t *c) {
  size_t n = 0;
  if (!c || !(c->flags & CTX__CANCELABLE)) return 0;
  ctx__lock(&c->lock);
  /* pending after_funcs count too, as Go's AfterFunc registers a child */
  for (ctx_t *k = c->children; k; k = k->u.c.next) n++;
  for (ctx_after_t *a = c->u.c.afters; a; a = a->next) n++;
  ctx__unlock(&c->lock);
  return n;
}

const char *ctx_version(void) { return CTX_VERSION_STRING; }
