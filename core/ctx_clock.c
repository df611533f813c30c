/* ctx_clock.c — the clocks and time arithmetic: monotonic deadlines, the wall
** clock offset fixed per process, saturating conversions computed in integers. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <time.h>
#include "ctx_int.h"

static int64_t wall_offset;  /* realtime - monotonic, fixed per process */
static pthread_once_t offset_once = PTHREAD_ONCE_INIT;

static int64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ctx_now(void) { return clock_ns(CLOCK_MONOTONIC); }

double ctx_wall_now(void) { return (double)clock_ns(CLOCK_REALTIME) / 1e9; }

static void fix_offset(void) {
  int64_t m1 = clock_ns(CLOCK_MONOTONIC), r = clock_ns(CLOCK_REALTIME),
          m2 = clock_ns(CLOCK_MONOTONIC);
  wall_offset = r - (m1 + (m2 - m1) / 2);
}

/* The double s * 1e9 rounded up, computed without long double: a = whole +
** frac with both parts exact (Sterbenz, for a >= 0), so that the one product
** rounded is frac * 1e9, whose rounding error is far below a nanosecond.
** Decimal inputs keep their intended value: 0.1 s is 100000000 ns. */
static int64_t scaled(double a, int up) {
  double whole = floor(a), frac = a - whole;
  double p = frac * 1e9;
  return (int64_t)whole * 1000000000 + (int64_t)(up ? ceil(p) : floor(p));
}

int64_t ctx_seconds_to_ns(double s) {
  if (isnan(s) || s >= 9.2e9) return CTX_FOREVER;
  if (s <= -9.2e9) return -CTX_FOREVER;
  return s >= 0 ? scaled(s, 1) : -scaled(-s, 0);
}

int64_t ctx_wall_to_mono(double s) {
  pthread_once(&offset_once, fix_offset);
  int64_t ns = ctx_seconds_to_ns(s);
  if (ns == CTX_FOREVER || ns == -CTX_FOREVER) return ns;
  int64_t m;
  if (__builtin_sub_overflow(ns, wall_offset, &m)) return ns < 0 ? -CTX_FOREVER : CTX_FOREVER - 1;
  return m == CTX_FOREVER ? CTX_FOREVER - 1 : m;
}

int64_t ctx__mono_to_wall_ns(int64_t m) {
  pthread_once(&offset_once, fix_offset);
  int64_t w;  /* saturates: deadlines centuries away must not overflow */
  if (__builtin_add_overflow(m, wall_offset, &w)) return m < 0 ? INT64_MIN : INT64_MAX;
  return w;
}

/* whole seconds and the remainder, each converted exactly, added once: the
** result is the double nearest to w / 1e9 but for one rounding of a value
** that is already within 1e-16 s of it (see ctx.h for what that guarantees) */
double ctx_mono_to_wall(int64_t m) {
  if (m == CTX_FOREVER) return INFINITY;
  int64_t w = ctx__mono_to_wall_ns(m);
  int64_t q = w / 1000000000, r = w % 1000000000;
  if (r < 0) { q -= 1; r += 1000000000; }
  return (double)q + (double)r / 1e9;
}

int64_t ctx_deadline_from_timeout(int64_t timeout_ns) {
  int64_t d;
  if (__builtin_add_overflow(ctx_now(), timeout_ns, &d))
    return timeout_ns < 0 ? -CTX_FOREVER : CTX_FOREVER;
  return d < -CTX_FOREVER ? -CTX_FOREVER : d;
}

int64_t ctx_remaining(const ctx_t *c) {
  int64_t d;
  int r = ctx_deadline(c, &d);
  if (r < 0) return r;
  if (r == 0) return CTX_FOREVER;
  int64_t now = ctx_now();
  return d <= now ? 0 : d - now;
}

int ctx_poll_timeout(int64_t ns) {
  if (ns == CTX_FOREVER) return -1;
  if (ns <= 0) return 0;
  int64_t ms = ns / 1000000 + (ns % 1000000 != 0);
  return ms > INT_MAX ? INT_MAX : (int)ms;
}
