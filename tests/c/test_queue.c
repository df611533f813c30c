/* test_queue.c — executor queues (order, posted tasks, pending, fd, close with
** registrations pending) and the default executor's pool (no starvation). */
#include <poll.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>
#include "test.h"
#include "ctx_int.h"

static int order[64];
static atomic_int norder;
static void record(void *arg) { order[atomic_fetch_add(&norder, 1)] = (int)(intptr_t)arg; }

typedef struct { ctx_task_t t; atomic_int *ran, *discarded; } my_task_t;
static void my_task_run(ctx_task_t *t, int discard) {
  my_task_t *m = (my_task_t *)t;
  atomic_fetch_add(discard ? m->discarded : m->ran, 1);
}

static int readable(int fd) {
  struct pollfd p = { fd, POLLIN, 0 };
  return poll(&p, 1, 0) == 1;
}

TEST(queue_runs_in_order_where_popped) {
  long base = test_live_allocs();
  ctx_queue_t *q;
  ASSERT_EQ(ctx_queue_new(&q), CTX_OK);
  ctx_t *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  atomic_store(&norder, 0);
  for (int i = 0; i < 5; i++)
    ASSERT_EQ(ctx_after_func(c, record, (void *)(intptr_t)i, NULL, ctx_queue_executor(q), NULL), CTX_OK);
  ASSERT(!ctx_queue_pending(q));
  ASSERT(!readable(ctx_queue_fd(q)));
  ASSERT_EQ(ctx_cancel(c), 1);
  ASSERT(ctx_queue_pending(q));          /* handed off: nothing ran yet */
  ASSERT(readable(ctx_queue_fd(q)));
  ASSERT_EQ(atomic_load(&norder), 0);
  atomic_int ran = 0, discarded = 0;
  my_task_t m = { { NULL, my_task_run }, &ran, &discarded };
  ctx_queue_post(q, &m.t);
  ctx_task_t *t;
  int popped = 0;
  while (ctx_queue_pop(q, 0, &t) == CTX_OK) { ctx_task_run(t); popped++; }
  ASSERT_EQ(popped, 6);
  ASSERT_EQ(atomic_load(&ran), 1);
  for (int i = 0; i < 5; i++) ASSERT_EQ(order[i], i);   /* registration order */
  ASSERT(!ctx_queue_pending(q));
  ASSERT(!readable(ctx_queue_fd(q)));
  ASSERT_EQ(ctx_queue_pop(q, 5 * MS, &t), CTX_ETIMEDOUT);
  ctx_queue_close(q);
  ctx_unref(c);
  ASSERT_NO_LEAK(base);
}

typedef struct { ctx_queue_t *q; atomic_int got; } consumer_t;
static void *consumer(void *arg) {
  consumer_t *k = arg;
  ctx_task_t *t;
  int rc;
  while ((rc = ctx_queue_pop(k->q, -1, &t)) == CTX_OK) {
    ctx_task_run(t);
    atomic_fetch_add(&k->got, 1);
  }
  CHECK(rc == CTX_ECLOSED);
  ctx_queue_unref(k->q);
  return NULL;
}

TEST(queue_blocking_consumers_and_close) {
  long base = test_live_allocs();
  consumer_t k = { .got = 0 };
  ASSERT_EQ(ctx_queue_new(&k.q), CTX_OK);
  pthread_t th[3];
  for (int i = 0; i < 3; i++) {
    ctx_queue_ref(k.q);   /* each consumer's own: it may pop after the close */
    pthread_create(&th[i], NULL, consumer, &k);
  }
  ASSERT(WAIT_FOR(ctx_queue_idle(k.q) == 3, 2000));
  ctx_t *c;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 5 * MS, &c), CTX_OK);
  atomic_store(&norder, 0);
  for (int i = 0; i < 20; i++)
    ASSERT_EQ(ctx_after_func(c, record, NULL, NULL, ctx_queue_executor(k.q), NULL), CTX_OK);
  ASSERT(WAIT_FOR(atomic_load(&k.got) == 20, 5000));
  ctx_queue_close(k.q);   /* blocked consumers get CTX_ECLOSED, busy ones next */
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  ctx_unref(c);
  ASSERT_NO_LEAK(base);
}

/* A consumer busy with a task when the queue is closed pops again after:
** its own reference keeps the queue for it, and it gets CTX_ECLOSED. */
typedef struct { ctx_task_t t; atomic_int started, go; } slow_task_t;
static void slow_run(ctx_task_t *t, int discard) {
  slow_task_t *s = (slow_task_t *)t;
  if (discard) return;
  atomic_store(&s->started, 1);
  while (!atomic_load(&s->go)) test_sleep_ns(MS / 10);
}
typedef struct { ctx_queue_t *q; int rc; } busy_t;
static void *busy_consumer(void *arg) {
  busy_t *b = arg;
  ctx_task_t *t;
  if (ctx_queue_pop(b->q, -1, &t) == CTX_OK) ctx_task_run(t);
  b->rc = ctx_queue_pop(b->q, -1, &t);   /* the queue was closed meanwhile */
  ctx_queue_unref(b->q);
  return NULL;
}

TEST(queue_busy_consumer_outlives_close) {
  long base = test_live_allocs();
  busy_t b = { NULL, 0 };
  ASSERT_EQ(ctx_queue_new(&b.q), CTX_OK);
  slow_task_t s = { { NULL, slow_run }, 0, 0 };
  ctx_queue_post(b.q, &s.t);
  ctx_queue_ref(b.q);
  pthread_t th;
  pthread_create(&th, NULL, busy_consumer, &b);
  ASSERT(WAIT_FOR(atomic_load(&s.started), 2000));
  ctx_queue_close(b.q);    /* the creator's reference goes; the consumer's stays */
  atomic_store(&s.go, 1);
  pthread_join(th, NULL);
  ASSERT_EQ(b.rc, CTX_ECLOSED);
  ASSERT_EQ(ctx_queue_ref(NULL), NULL);
  ctx_queue_unref(NULL);
  ASSERT_NO_LEAK(base);
}

/* Closing stops what is still registered (its context stays alive no more),
** discards what is queued (released, not run), and refuses what comes later;
** a context ended afterwards hands nothing to the dead queue. */
TEST(queue_close_stops_and_discards) {
  long base = test_live_allocs();
  ctx_queue_t *q;
  ASSERT_EQ(ctx_queue_new(&q), CTX_OK);
  ctx_t *live, *ended;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &live), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &ended), CTX_OK);
  atomic_int rel_live = 0, rel_ended = 0;
  ctx_after_t *stop;
  atomic_store(&norder, 0);
  ASSERT_EQ(ctx_after_func(live, record, &rel_live, test_release_count,
                           ctx_queue_executor(q), &stop), CTX_OK);
  ASSERT_EQ(ctx_after_func(ended, record, &rel_ended, test_release_count,
                           ctx_queue_executor(q), NULL), CTX_OK);
  ctx_cancel(ended);                 /* queued */
  atomic_int ran = 0, discarded = 0;
  my_task_t m = { { NULL, my_task_run }, &ran, &discarded };
  ctx_queue_post(q, &m.t);
  ASSERT_EQ(ctx_num_children(live), 1);
  ctx_executor_t *ex = ctx_queue_executor(q);
  ctx_queue_close(q);                /* q may be gone now for its owner */
  ASSERT_EQ(atomic_load(&norder), 0);
  ASSERT_EQ(atomic_load(&rel_ended), 1);
  ASSERT_EQ(atomic_load(&rel_live), 1);
  ASSERT_EQ(atomic_load(&discarded), 1);
  ASSERT_EQ(ctx_num_children(live), 0);
  ASSERT_EQ(ctx_after_stop(stop), 0);  /* close stopped it */
  ctx_after_free(stop);
  ctx_cancel(live);
  ASSERT_EQ(atomic_load(&norder), 0);
  (void)ex;
  ctx_unref(live); ctx_unref(ended);
  ASSERT_NO_LEAK(base);
}

/* Registrations keep the queue's memory alive after its owner closed it; a
** registration racing the close is run or stopped, never both or neither. */
static void count_fn(void *arg) { atomic_fetch_add((atomic_int *)arg, 1); }
typedef struct { ctx_t *c; _Atomic int go; } closer_t;
static void *cancel_when_told(void *arg) {
  closer_t *k = arg;
  while (!atomic_load(&k->go)) {}
  ctx_cancel(k->c);
  return NULL;
}

TEST(queue_close_races_cancel) {
  long base = test_live_allocs();
  long rounds = test_iters(2000);
  for (long r = 0; r < rounds; r++) {
    ctx_queue_t *q;
    ASSERT_EQ(ctx_queue_new(&q), CTX_OK);
    closer_t k = { .go = 0 };
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &k.c), CTX_OK);
    atomic_int runs = 0, rel = 0;
    ASSERT_EQ(ctx_after_func(k.c, count_fn, &rel, test_release_count,
                             ctx_queue_executor(q), NULL), CTX_OK);
    (void)runs;
    pthread_t t;
    pthread_create(&t, NULL, cancel_when_told, &k);
    atomic_store(&k.go, 1);
    ctx_queue_close(q);
    pthread_join(t, NULL);
    /* fn never ran (nobody popped); its argument was released exactly once
    ** (released counts the call to count_fn too if it had run) */
    ASSERT_EQ(atomic_load(&rel), 1);
    ctx_unref(k.c);
  }
  ASSERT_NO_LEAK(base);
}

TEST(queue_refuses_after_close) {
  ctx_queue_t *q, *q2;
  ASSERT_EQ(ctx_queue_new(&q), CTX_OK);
  ASSERT_EQ(ctx_queue_new(&q2), CTX_OK);
  ctx_t *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  /* a registration keeps the queue's memory (here through its stop handle,
  ** as the close stopped it): its executor stays valid, and refuses */
  ctx_after_t *stop;
  ASSERT_EQ(ctx_after_func(c, test_nop, NULL, NULL, ctx_queue_executor(q2), &stop), CTX_OK);
  ctx_executor_t *ex2 = ctx_queue_executor(q2);
  ctx_queue_close(q2);
  ASSERT_EQ(ctx_after_func(c, test_nop, NULL, NULL, ex2, NULL), CTX_ECLOSED);
  ASSERT_EQ(ctx_after_stop(stop), 0);
  ctx_after_free(stop);
  ctx_queue_close(q);
  ASSERT_EQ(ctx_queue_new(NULL), CTX_EINVAL);
  ASSERT(ctx_queue_executor(NULL) == NULL);
  ASSERT_EQ(ctx_queue_pending(NULL), 0);
  ASSERT_EQ(ctx_queue_fd(NULL), CTX_EINVAL);
  ASSERT_EQ(ctx_queue_pop(NULL, 0, NULL), CTX_EINVAL);
  ctx_queue_post(NULL, NULL);
  ctx_queue_close(NULL);
  ctx_task_run(NULL);
  ctx_unref(c);
}

/* The default executor: a callback that blocks until another callback has
** run must not starve it (Go gives each AfterFunc its own goroutine). */
typedef struct { atomic_int stage; atomic_int done; } chain_t;
static void waits_for_second(void *arg) {
  chain_t *ch = arg;
  CHECK(WAIT_FOR(atomic_load(&ch->stage) == 1, 10000));
  atomic_fetch_add(&ch->done, 1);
}
static void second(void *arg) {
  chain_t *ch = arg;
  atomic_store(&ch->stage, 1);
  atomic_fetch_add(&ch->done, 1);
}

TEST(default_executor_blocking_callback_does_not_starve) {
  for (int round = 0; round < 3; round++) {
    chain_t ch = { 0, 0 };
    ctx_t *c;
    ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
    /* several blockers, then the one they wait for */
    for (int i = 0; i < 4; i++)
      ASSERT_EQ(ctx_after_func(c, waits_for_second, &ch, NULL, NULL, NULL), CTX_OK);
    ASSERT_EQ(ctx_after_func(c, second, &ch, NULL, NULL, NULL), CTX_OK);
    ctx_cancel(c);
    ASSERT(WAIT_FOR(atomic_load(&ch.done) == 5, 10000));
    ctx_unref(c);
  }
}

/* A thread that cannot be started makes the call that needed it fail; in a
** fresh child the pool and the timer have no thread yet. */
TEST(thread_start_failure_is_an_error) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int bad = 0;
    ctx_t *c, *t;
    atomic_store(&ctx__spawn_failures, 1000);
    bad |= ctx_with_cancel(ctx_background(), &c) != CTX_OK;
    bad |= ctx_after_func(c, test_nop, NULL, NULL, NULL, NULL) != CTX_EAGAIN;
    bad |= ctx_num_children(c) != 0;              /* nothing registered */
    bad |= ctx_with_timeout(c, 3600000 * MS, &t) != CTX_EAGAIN;
    bad |= ctx_num_children(c) != 0;
    atomic_int rel = 0;
    bad |= ctx_with_timeout_cause(c, 3600000 * MS, &rel, test_release_count, &t) != CTX_EAGAIN;
    bad |= atomic_load(&rel) != 0;                /* not taken */
    atomic_store(&ctx__spawn_failures, 0);
    /* and once threads can start, everything works */
    atomic_int runs = 0;
    bad |= ctx_after_func(c, count_fn, &runs, NULL, NULL, NULL) != CTX_OK;
    bad |= ctx_with_timeout(c, 10 * MS, &t) != CTX_OK;
    bad |= ctx_wait(t, 5000 * MS) != CTX_OK;
    ctx_cancel(c);
    bad |= !WAIT_FOR(atomic_load(&runs) == 1, 5000);
    _exit(bad);
  }
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A consumer that polls nothing learns of a task arriving in the empty queue
** through a notification, called with no lock held; once replaced, the old
** one is never called again. */
static atomic_int notified;
static void on_notify(void *arg) {
  ctx_queue_t *q = arg;
  CHECK(ctx_queue_pending(q));   /* the task is there already */
  atomic_fetch_add(&notified, 1);
}

TEST(queue_notify_on_arrival) {
  ctx_queue_t *q;
  ASSERT_EQ(ctx_queue_new(&q), CTX_OK);
  ctx_queue_set_notify(q, on_notify, q);
  atomic_store(&notified, 0);
  ctx_t *c;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 10 * MS, &c), CTX_OK);
  for (int i = 0; i < 3; i++)
    ASSERT_EQ(ctx_after_func(c, test_nop, NULL, NULL, ctx_queue_executor(q), NULL), CTX_OK);
  ASSERT(WAIT_FOR(atomic_load(&notified) == 1, 5000));   /* once: empty to not */
  ctx_task_t *t;
  while (ctx_queue_pop(q, 0, &t) == CTX_OK) ctx_task_run(t);
  atomic_int ran = 0, discarded = 0;
  my_task_t m = { { NULL, my_task_run }, &ran, &discarded };
  ctx_queue_post(q, &m.t);
  ASSERT_EQ(atomic_load(&notified), 2);   /* on the posting thread, at once */
  ASSERT_EQ(ctx_queue_pop(q, 0, &t), CTX_OK);
  ctx_task_run(t);
  ctx_queue_set_notify(q, NULL, NULL);
  ctx_queue_post(q, &m.t);
  ASSERT_EQ(atomic_load(&notified), 2);
  ctx_queue_close(q);   /* discards the last one */
  ASSERT_EQ(atomic_load(&discarded), 1);
  ctx_queue_set_notify(NULL, NULL, NULL);
  ctx_unref(c);
}
