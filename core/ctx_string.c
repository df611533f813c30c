/* ctx_string.c — Go's String() for contexts: "context.Background.WithCancel",
** deadlines as UTC time plus Go's duration format for the time left. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ctx_int.h"

typedef struct { char *buf; size_t len, cap; int failed; } sbuf_t;

static void sb_add(sbuf_t *b, const char *s) {
  size_t n = strlen(s);
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    char *nb = realloc(b->buf, cap);  /* plain malloc: the caller free()s it */
    if (!nb) { b->failed = 1; return; }
    b->buf = nb;
    b->cap = cap;
  }
  memcpy(b->buf + b->len, s, n + 1);
  b->len += n;
}

/* v / unit with the fraction's trailing zeros trimmed, as Go prints durations. */
static void add_scaled(sbuf_t *b, uint64_t v, uint64_t unit, int digits, const char *suffix) {
  char tmp[64];
  uint64_t frac = v % unit;
  int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v / unit);
  if (frac) {
    char f[24];
    snprintf(f, sizeof f, "%0*" PRIu64, digits, frac);
    for (int i = digits - 1; i > 0 && f[i] == '0'; i--) f[i] = '\0';
    snprintf(tmp + n, sizeof tmp - (size_t)n, ".%s", f);
  }
  sb_add(b, tmp);
  sb_add(b, suffix);
}

/* Go's time.Duration.String(), e.g. "1h0m0s", "29.5s", "1.5ms". */
static void add_duration(sbuf_t *b, int64_t ns) {
  char tmp[64];
  uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
  if (ns < 0) sb_add(b, "-");
  if (u == 0) { sb_add(b, "0s"); return; }
  if (u < 1000) { snprintf(tmp, sizeof tmp, "%" PRIu64 "ns", u); sb_add(b, tmp); return; }
  if (u < 1000000) { add_scaled(b, u, 1000, 3, "\xc2\xb5s"); return; }
  if (u < 1000000000) { add_scaled(b, u, 1000000, 6, "ms"); return; }
  uint64_t h = u / 3600000000000ull, m = u / 60000000000ull % 60;
  if (h) { snprintf(tmp, sizeof tmp, "%" PRIu64 "h", h); sb_add(b, tmp); }
  if (h || m) { snprintf(tmp, sizeof tmp, "%" PRIu64 "m", m); sb_add(b, tmp); }
  add_scaled(b, u % 60000000000ull, 1000000000, 9, "s");
}

/* Go's time.Time.String() in UTC: nanoseconds with trailing zeros trimmed. */
static void add_deadline(sbuf_t *b, int64_t deadline) {
  char tmp[96];
  int64_t wall = ctx__mono_to_wall_ns(deadline);
  int64_t secs = wall / 1000000000, ns = wall % 1000000000;
  if (ns < 0) { ns += 1000000000; secs--; }
  time_t t = (time_t)secs;
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(tmp, sizeof tmp, "%Y-%m-%d %H:%M:%S", &tm);
  if (ns) {
    n += (size_t)snprintf(tmp + n, sizeof tmp - n, ".%09" PRId64, ns);
    while (tmp[n - 1] == '0') tmp[--n] = '\0';
  }
  snprintf(tmp + n, sizeof tmp - n, " +0000 UTC [");
  sb_add(b, ".WithDeadline(");
  sb_add(b, tmp);
  int64_t left;
  if (__builtin_sub_overflow(deadline, ctx_now(), &left)) left = INT64_MIN;
  add_duration(b, left);
  sb_add(b, "])");
}

static void add_value(sbuf_t *b, const ctx_t *c, ctx_fmt_fn fmt, void *ud) {
  char tmp[64];
  sb_add(b, ".WithValue(");
  if (fmt) {
    char *s = fmt(c->u.v.key, c->u.v.val, ud);
    if (!s) { b->failed = 1; return; }
    sb_add(b, s);
    free(s);
  } else {
    snprintf(tmp, sizeof tmp, "%p, %p", c->u.v.key, c->u.v.val);
    sb_add(b, tmp);
  }
  sb_add(b, ")");
}

char *ctx_string(const ctx_t *c, ctx_fmt_fn fmt, void *ud) {
  if (!c) return NULL;
  size_t depth = 0;
  for (const ctx_t *n = c; n; n = n->parent) depth++;
  const ctx_t **chain = ctx__alloc(depth * sizeof *chain);
  if (!chain) return NULL;
  size_t i = depth;
  for (const ctx_t *n = c; n; n = n->parent) chain[--i] = n;
  sbuf_t b = { NULL, 0, 0, 0 };
  for (i = 0; i < depth && !b.failed; i++) {
    const ctx_t *n = chain[i];
    switch ((ctx_kind_t)n->kind) {
      case CTX_KIND_BACKGROUND: sb_add(&b, "context.Background"); break;
      case CTX_KIND_TODO: sb_add(&b, "context.TODO"); break;
      case CTX_KIND_CANCEL: sb_add(&b, ".WithCancel"); break;
      case CTX_KIND_DEADLINE: add_deadline(&b, n->deadline); break;
      case CTX_KIND_VALUE: add_value(&b, n, fmt, ud); break;
      case CTX_KIND_WITHOUT_CANCEL: sb_add(&b, ".WithoutCancel"); break;
      case CTX_KIND_INVALID: break;  /* never stored in a node */
    }
  }
  ctx__free_mem(chain);
  if (b.failed) { free(b.buf); return NULL; }
  return b.buf;
}
