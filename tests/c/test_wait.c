/* test_wait.c — blocking on a context: ctx_wait with timeouts and signals
** (EINTR reaches the caller), and the eventfd that stays readable once done. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include "test.h"

static int readable(int fd) {
  struct pollfd p = { fd, POLLIN, 0 };
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

TEST(wait_timeout) {
  ctx_t *c;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  int64_t t0 = ctx_now();
  ASSERT_EQ(ctx_wait(c, 30 * MS), CTX_ETIMEDOUT);
  ASSERT(ctx_now() - t0 >= 30 * MS);
  ASSERT_EQ(ctx_wait(c, 0), CTX_ETIMEDOUT);
  ASSERT_EQ(ctx_wait(ctx_background(), 1 * MS), CTX_ETIMEDOUT);
  ctx_cancel(c);
  ASSERT_EQ(ctx_wait(c, 0), CTX_OK);
  ASSERT_EQ(ctx_wait(c, -1), CTX_OK);
  ctx_unref(c);
}

static void *cancel_later(void *arg) {
  test_sleep_ns(30 * MS);
  ctx_cancel(arg);
  return NULL;
}

TEST(wait_wakes_on_cancel) {
  ctx_t *c, *v;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  ASSERT_EQ(ctx_with_value(c, "k", NULL, NULL, &v), CTX_OK);
  pthread_t t;
  pthread_create(&t, NULL, cancel_later, c);
  ASSERT_EQ(ctx_wait(v, 10000 * MS), CTX_OK);  /* through the value node */
  ASSERT_EQ(ctx_err(v), CTX_ERR_CANCELED);
  pthread_join(t, NULL);
  ctx_unref(v); ctx_unref(c);
}

TEST(fd_readable_once_done) {
  long base = test_live_allocs();
  ctx_t *c, *v, *k;
  ASSERT_EQ(ctx_with_cancel(ctx_background(), &c), CTX_OK);
  ASSERT_EQ(ctx_with_value(c, "k", NULL, NULL, &v), CTX_OK);
  ASSERT_EQ(ctx_with_cancel(c, &k), CTX_OK);
  int fd = ctx_fd(c);
  ASSERT(fd >= 0);
  ASSERT_EQ(ctx_fd(c), fd);   /* made once */
  ASSERT_EQ(ctx_fd(v), fd);   /* shared with value descendants */
  int kfd = ctx_fd(k);
  ASSERT(kfd >= 0 && kfd != fd);
  ASSERT(!readable(fd));
  ASSERT(!readable(kfd));
  ctx_cancel(c);
  for (int i = 0; i < 3; i++) {  /* readable, and stays readable */
    struct pollfd p = { fd, POLLIN, 0 };
    ASSERT_EQ(poll(&p, 1, 1000), 1);
    ASSERT(readable(kfd));
  }
  ctx_t *late;
  ASSERT_EQ(ctx_with_cancel(c, &late), CTX_OK);
  int lfd = ctx_fd(late);  /* made after done: readable at once */
  ASSERT(readable(lfd));
  ctx_unref(late);
  ASSERT(fcntl(lfd, F_GETFD) == -1 && errno == EBADF);  /* closed with its node */
  ASSERT(fcntl(fd, F_GETFD) >= 0);
  ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  ctx_unref(k); ctx_unref(v); ctx_unref(c);
  ASSERT(fcntl(fd, F_GETFD) == -1);
  ASSERT_NO_LEAK(base);
}

TEST(fd_on_deadline) {
  ctx_t *c;
  ASSERT_EQ(ctx_with_timeout(ctx_background(), 20 * MS, &c), CTX_OK);
  int fd = ctx_fd(c);
  ASSERT(fd >= 0 && !readable(fd));
  struct pollfd p = { fd, POLLIN, 0 };
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  ASSERT(ctx_done(c));
  ctx_unref(c);
}
