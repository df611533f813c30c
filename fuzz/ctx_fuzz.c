/* ctx_fuzz.c — libFuzzer harness: random operation sequences run against the
** core and against a small reference model; every observable result must agree. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ctx.h"

#define MAXN 256      /* model nodes per input */
#define SLOTS 16      /* handles the harness holds */
#define MAXREG 64
#define HOUR 3600000000000LL

#define FAIL(...) do { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)
#define EXPECT(e) do { if (!(e)) FAIL("%s:%d: expected %s", __FILE__, __LINE__, #e); } while (0)

typedef struct {
  int kind, parent, canc;   /* parent/canc: model index, -1 for background */
  int64_t deadline;
  int err, cause;           /* state of a canc node; cause: id or -1 */
  int pending;              /* a deadline node's own cause id, -1 if none */
  int key, refs, exists;
  ctx_t *real;
} mnode_t;

typedef struct { int node, ran, stopped, pending; ctx_after_t *h; } mreg_t;

static mnode_t M[MAXN];
static int nn, slot[SLOTS];
static mreg_t R[MAXREG];
static int nr;
static int cause_obj[MAXN * 2], cause_rel[MAXN * 2], ncause;
static int key_obj[MAXN], key_rel[MAXN], val_obj[MAXN], val_rel[MAXN];
static int64_t now0;

/* ---- allocator: counts, and fails the next allocation when armed ---- */
static long live;
static int armed;
static void *fz_alloc(size_t n) {
  if (armed) { armed = 0; return NULL; }
  void *p = malloc(n);
  if (p) live++;
  return p;
}
static void fz_free(void *p) { if (p) { live--; free(p); } }

static void rel_cause(void *o) { cause_rel[(int *)o - cause_obj]++; }
static void rel_kv(void *o) {
  int *p = o;
  if (p >= key_obj && p < key_obj + MAXN) key_rel[p - key_obj]++;
  else val_rel[p - val_obj]++;
}
static int key_eq(const void *a, const void *b, void *ud) {
  (void)ud;
  return *(const int *)a == *(const int *)b;
}
static char *fmt_kv(const void *k, const void *v, void *ud) {
  (void)ud;
  char *s = malloc(32);
  snprintf(s, 32, "%d, %d", *(const int *)k, (int)((const int *)v - val_obj));
  return s;
}
static void ran_fn(void *arg) { R[(mreg_t *)arg - R].ran++; }
static void inline_submit(ctx_executor_t *self, ctx_after_t *a) { (void)self; ctx_after_run(a); }
static ctx_executor_t inline_ex = { inline_submit };

/* ---- the model ---- */
static int cancelable(int i) { return M[i].kind == CTX_KIND_CANCEL || M[i].kind == CTX_KIND_DEADLINE; }
static int m_err(int i) { int k = i < 0 ? -1 : M[i].canc; return k < 0 ? 0 : M[k].err; }
static int m_cause(int i) { int k = i < 0 ? -1 : M[i].canc; return k < 0 || !M[k].err ? -1 : M[k].cause; }
static int64_t m_deadline(int i) { return i < 0 ? CTX_FOREVER : M[i].deadline; }
static int m_link(int i) { return M[i].parent < 0 ? -1 : M[M[i].parent].canc; }

static void m_unref(int i) {
  while (i >= 0 && --M[i].refs == 0) {
    M[i].exists = 0;
    if (M[i].kind == CTX_KIND_VALUE) EXPECT(key_rel[i] == 1 && val_rel[i] == 1);
    if (M[i].kind == CTX_KIND_DEADLINE && M[i].pending >= 0 && !M[i].err)
      EXPECT(cause_rel[M[i].pending] == 1);  /* never fired: dropped with it */
    i = M[i].parent;
  }
}

/* after a cancel: each live node whose link is done takes its state, in
** creation order (parents first); then pending registrations run */
static void m_propagate(void) {
  for (int i = 0; i < nn; i++) {
    if (!M[i].exists || !cancelable(i) || M[i].err) continue;
    int l = m_link(i);
    if (l >= 0 && M[l].err) {
      M[i].err = M[l].err;
      M[i].cause = M[l].cause;
      if (M[i].pending >= 0) EXPECT(cause_rel[M[i].pending] == 1);
    }
  }
  for (int j = 0; j < nr; j++)
    if (R[j].pending && m_err(R[j].node)) { R[j].pending = 0; EXPECT(R[j].ran == 1); m_unref(R[j].node); }
}

static size_t m_children(int i) {
  size_t n = 0;
  for (int k = 0; k < nn; k++)
    if (M[k].exists && cancelable(k) && !M[k].err && m_link(k) == i) n++;
  for (int j = 0; j < nr; j++) if (R[j].pending && M[R[j].node].canc == i) n++;
  return n;
}

static void expect_string(int i) {
  char want[4096] = "context.Background", tmp[64];
  int chain[MAXN], d = 0;
  for (int k = i; k >= 0; k = M[k].parent) chain[d++] = k;
  while (d--) {
    int k = chain[d];
    switch (M[k].kind) {
      case CTX_KIND_CANCEL: strcat(want, ".WithCancel"); break;
      case CTX_KIND_DEADLINE: strcat(want, ".WithDeadline"); break;
      case CTX_KIND_WITHOUT_CANCEL: strcat(want, ".WithoutCancel"); break;
      default: snprintf(tmp, sizeof tmp, ".WithValue(%d, %d)", M[k].key, k); strcat(want, tmp);
    }
  }
  char *s = ctx_string(M[i].real, fmt_kv, NULL);
  if (!s) return;  /* out of memory is allowed: armed */
  char got[4096];
  size_t g = 0;
  for (const char *p = s; *p && g < sizeof got - 1;) {
    if (!strncmp(p, ".WithDeadline(", 14)) {  /* times vary: compare the kind */
      const char *e = strstr(p, "])");
      EXPECT(e);
      memcpy(got + g, ".WithDeadline", 13); g += 13; p = e + 2;
    } else got[g++] = *p++;
  }
  got[g] = 0;
  if (strcmp(got, want)) FAIL("string %s, want %s", got, want);
  free(s);
}

static void check(int i) {
  ctx_t *c = M[i].real;
  EXPECT((int)ctx_err(c) == m_err(i));
  EXPECT(ctx_done(c) == (m_err(i) != 0));
  int mc = m_cause(i);
  EXPECT(ctx_cause(c) == (mc < 0 ? NULL : (void *)&cause_obj[mc]));
  int64_t dl = 0;
  int has = ctx_deadline(c, &dl);
  EXPECT(has == (m_deadline(i) != CTX_FOREVER));
  if (has) EXPECT(dl == m_deadline(i));
  EXPECT((int)ctx_kind(c) == M[i].kind);
  for (int k = 0; k < 4; k++) {
    void *v = NULL;
    int r = ctx_value(c, &k, key_eq, NULL, &v), want = -1;
    for (int n = i; n >= 0 && want < 0; n = M[n].parent)
      if (M[n].kind == CTX_KIND_VALUE && M[n].key == k) want = n;
    EXPECT(r == (want >= 0));
    if (want >= 0) EXPECT(v == &val_obj[want]);
  }
  if (cancelable(i)) EXPECT(ctx_num_children(c) == m_children(i));
}

/* ---- operations ---- */
static int new_node(int parent, int kind) {
  int i = nn++;
  memset(&M[i], 0, sizeof M[i]);
  M[i].kind = kind;
  M[i].parent = parent;
  M[i].canc = kind == CTX_KIND_VALUE ? (parent < 0 ? -1 : M[parent].canc) : i;
  M[i].deadline = kind == CTX_KIND_WITHOUT_CANCEL ? CTX_FOREVER : m_deadline(parent);
  M[i].cause = M[i].pending = -1;
  M[i].refs = 1;
  M[i].exists = 1;
  if (parent >= 0) M[parent].refs++;
  return i;
}

static void attach(int i) {  /* a new cancelable node under a done link is done */
  int l = m_link(i);
  if (l >= 0 && M[l].err) { M[i].err = M[l].err; M[i].cause = M[l].cause; }
}

static void put(int s, int i) {
  if (slot[s] >= 0) { ctx_unref(M[slot[s]].real); m_unref(slot[s]); }
  slot[s] = i;
}

static void op_create(const uint8_t *a) {
  int p = slot[a[1] % SLOTS], s = a[2] % SLOTS;
  ctx_t *pr = p < 0 ? ctx_background() : M[p].real, *c = NULL;
  int was_armed = armed, kind = a[0] % 4, rc;
  if (kind == 0) {
    rc = ctx_with_cancel(pr, &c);
    if (rc == CTX_OK) { int i = new_node(p, CTX_KIND_CANCEL); M[i].real = c; attach(i); put(s, i); }
  } else if (kind == 1) {
    int k = a[3] % 4, i = nn;
    key_obj[i] = k; key_rel[i] = val_rel[i] = 0;
    rc = ctx_with_value(pr, &key_obj[i], &val_obj[i], rel_kv, &c);
    if (rc == CTX_OK) { new_node(p, CTX_KIND_VALUE); M[i].key = k; M[i].real = c; put(s, i); }
    else EXPECT(key_rel[i] == 0 && val_rel[i] == 0);
  } else if (kind == 2) {
    rc = ctx_without_cancel(pr, &c);
    if (rc == CTX_OK) { int i = new_node(p, CTX_KIND_WITHOUT_CANCEL); M[i].real = c; put(s, i); }
  } else {
    int64_t pd = m_deadline(p), d;
    switch (a[3] % 4) {
      case 0: d = ctx_now() - 1 - a[4]; break;             /* past */
      case 1: d = now0 + HOUR + (int64_t)a[4] * 1000; break; /* far */
      case 2: d = CTX_FOREVER; break;
      default: d = pd != CTX_FOREVER ? pd : now0 + HOUR; break;
    }
    int cz = a[4] & 1 ? ncause++ : -1;
    rc = ctx_with_deadline_cause(pr, d, cz < 0 ? NULL : &cause_obj[cz], rel_cause, &c);
    if (rc == CTX_OK) {
      if (d == CTX_FOREVER || pd < d) {
        int i = new_node(p, CTX_KIND_CANCEL); M[i].real = c; attach(i); put(s, i);
        if (cz >= 0) EXPECT(cause_rel[cz] == 1);
      } else {
        int i = new_node(p, CTX_KIND_DEADLINE);
        M[i].real = c; M[i].deadline = d; M[i].pending = cz;
        attach(i);
        if (M[i].err) { if (cz >= 0) EXPECT(cause_rel[cz] == 1); }
        else if (d <= ctx_now()) { M[i].err = CTX_ERR_DEADLINE; M[i].cause = cz; }
        put(s, i);
      }
    } else if (cz >= 0) {
      EXPECT(cause_rel[cz] == 0);  /* not taken: still ours, never released */
      ncause--;
    }
  }
  EXPECT(rc == CTX_OK || (rc == CTX_ENOMEM && was_armed && !armed));
}

static void op_cancel(const uint8_t *a) {
  int i = slot[a[1] % SLOTS];
  if (i < 0) return;
  int cz = a[2] & 1 ? ncause++ : -1, was_armed = armed && cz >= 0;
  int rc = cz < 0 ? ctx_cancel(M[i].real)
                  : ctx_cancel_cause(M[i].real, &cause_obj[cz], rel_cause);
  if (!cancelable(i)) { EXPECT(rc == CTX_EINVAL); if (cz >= 0) EXPECT(cause_rel[cz] == 1); return; }
  if (M[i].err) {
    if (rc != 0) FAIL("cancel of a done node gave %d (armed %d, cause %d)", rc, was_armed, cz);
    if (cz >= 0) EXPECT(cause_rel[cz] == 1);
    return;
  }
  if (was_armed) { EXPECT(rc == CTX_ENOMEM && cause_rel[cz] == 1); cz = -1; }
  else EXPECT(rc == 1);
  M[i].err = CTX_ERR_CANCELED;
  M[i].cause = cz;
  if (M[i].pending >= 0) EXPECT(cause_rel[M[i].pending] == 1);
  m_propagate();
}

static void op_after(const uint8_t *a) {
  int i = slot[a[1] % SLOTS];
  if (i < 0 || nr == MAXREG) return;
  mreg_t *g = &R[nr];
  memset(g, 0, sizeof *g);
  int was_armed = armed;
  int rc = ctx_after_func(M[i].real, ran_fn, g, NULL, &inline_ex, &g->h);
  if (rc != CTX_OK) { EXPECT(rc == CTX_ENOMEM && was_armed); return; }
  nr++;
  g->node = i;
  if (m_err(i)) EXPECT(g->ran == 1);
  else { EXPECT(g->ran == 0); g->pending = 1; M[i].refs++; }
}

/* A wait that does not block: links on every slot's context and unlinks;
** the lowest slot whose context is done is the one reported. */
static void op_wait_any(void) {
  ctx_t *cs[SLOTS];
  int want = -1;
  for (int s = 0; s < SLOTS; s++) {
    cs[s] = slot[s] < 0 ? NULL : M[slot[s]].real;
    if (want < 0 && slot[s] >= 0 && m_err(slot[s])) want = s;
  }
  int was_armed = armed;
  size_t which;
  int rc = ctx_wait_any(cs, SLOTS, NULL, 0, 0, &which);
  if (rc == CTX_ENOMEM) { EXPECT(was_armed && want < 0); return; }
  if (want >= 0) EXPECT(rc == CTX_OK && which == (size_t)want);
  else EXPECT(rc == CTX_ETIMEDOUT);
  for (int s = 0; s < SLOTS; s++) if (slot[s] >= 0) ctx_settle(cs[s]);
}

static void op_stop(const uint8_t *a) {
  if (!nr) return;
  mreg_t *g = &R[a[1] % nr];
  int r = ctx_after_stop(g->h);
  EXPECT(r == g->pending);
  if (g->pending) { g->pending = 0; g->stopped = 1; m_unref(g->node); }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  ctx_set_allocator(fz_alloc, fz_free);
  ctx_t *warm;  /* the timer heap is made once and kept */
  if (ctx_with_timeout(ctx_background(), HOUR, &warm) == CTX_OK) { ctx_cancel(warm); ctx_unref(warm); }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  long base = live;
  nn = nr = ncause = 0;
  armed = 0;
  now0 = ctx_now();
  memset(cause_rel, 0, sizeof cause_rel);
  for (int s = 0; s < SLOTS; s++) slot[s] = -1;
  for (size_t at = 0; at + 5 <= size && nn < MAXN - 1 && ncause < MAXN; at += 5) {
    const uint8_t *a = data + at;
    switch (a[0] >> 4) {
      case 0: case 1: case 2: case 3: op_create(a); break;
      case 4: case 5: op_cancel(a); break;
      case 6: op_after(a); break;
      case 7: op_stop(a); break;
      case 8: put(a[1] % SLOTS, -1); break;
      case 9: armed = 1; break;
      case 10: { int i = slot[a[1] % SLOTS]; if (i >= 0) expect_string(i); } break;
      case 11: {  /* no deadline here has passed without being done at creation */
        int i = slot[a[1] % SLOTS];
        if (i >= 0) EXPECT(ctx_expire(M[i].real) == 0);
      } break;
      case 12: op_wait_any(); break;
      default: break;
    }
    for (int s = 0; s < SLOTS; s++) if (slot[s] >= 0) check(slot[s]);
  }
  armed = 0;
  /* wind down: stop what is pending, drop every handle; all must be freed */
  for (int j = 0; j < nr; j++) {
    int r = ctx_after_stop(R[j].h);
    EXPECT(r == R[j].pending);
    if (R[j].pending) { R[j].pending = 0; R[j].stopped = 1; m_unref(R[j].node); }
    EXPECT(R[j].ran + R[j].stopped == 1);
    ctx_after_free(R[j].h);
  }
  for (int s = 0; s < SLOTS; s++) put(s, -1);
  for (int i = 0; i < nn; i++) EXPECT(!M[i].exists);
  for (int z = 0; z < ncause; z++) EXPECT(cause_rel[z] == 1);
  EXPECT(live == base);
  return 0;
}
