/* demo.c — the C core in one minute: a step with a deadline, a job whose
** cancel reaches every worker, and an after_func that cleans up. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ctx.h"

static int64_t t0;
static double since(void) { return (double)(ctx_now() - t0) / 1e9; }

static void *worker(void *arg) {
  ctx_t *c = arg;
  ctx_wait(c, -1);  /* a real worker would do I/O and check ctx_done() */
  printf("  %.3fs worker sees: %s\n", since(), ctx_err_string(ctx_err(c)));
  return NULL;
}

static void cleanup(void *arg) {
  printf("  %.3fs after_func: %s\n", since(), (const char *)arg);
}

static void release(void *p) { free(p); }

int main(void) {
  ctx_t *job, *step, *w[3];
  pthread_t th[3];
  t0 = ctx_now();

  puts("== C: the core in one minute");
  puts("1. a step with a 200 ms timeout");
  ctx_with_timeout(ctx_background(), 200 * 1000000LL, &step);
  char *s = ctx_string(step, NULL, NULL);
  printf("  %s\n", s);
  free(s);
  ctx_wait(step, -1);
  printf("  %.3fs step ended: %s\n", since(), ctx_err_string(ctx_err(step)));
  ctx_unref(step);

  puts("2. a job with three workers; one cancel reaches them all");
  ctx_with_cancel(ctx_background(), &job);
  ctx_after_func(job, cleanup, strdup("remove temporary files"), release, NULL, NULL);
  for (int i = 0; i < 3; i++) {
    ctx_with_cancel(job, &w[i]);
    pthread_create(&th[i], NULL, worker, w[i]);
  }
  printf("  job has %zu children\n", ctx_num_children(job));
  ctx_cancel_cause(job, strdup("disk full"), release);
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  printf("  cause: %s; children left: %zu\n", (const char *)ctx_cause(job),
         ctx_num_children(job));
  ctx_wait(job, -1);
  struct timespec pause = { 0, 50 * 1000000 };
  nanosleep(&pause, NULL);  /* let the callback thread print */
  for (int i = 0; i < 3; i++) ctx_unref(w[i]);
  ctx_unref(job);
  return 0;
}
