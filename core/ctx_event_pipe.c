/* ctx_event_pipe.c — pollable events on plain POSIX: a non-blocking,
** close-on-exec pipe per event, and poll() with the timeout rounded up. */
#include "ctx_platform.h"
#ifndef CTX_HAVE_EVENTFD
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include "ctx_int.h"

static int set_flags(int fd) {
  int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
  return fl >= 0 && fdfl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 &&
         fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) == 0;
}

int ctx__event_open(int *r, int *w) {
  int p[2];
  /* pipe2() is not in POSIX 2008: a fork+exec by another thread between the
  ** two calls may inherit the pipe, which is only a leaked descriptor */
  if (pipe(p) != 0) return errno == ENOMEM ? CTX_ENOMEM : CTX_EMFILE;
  if (!set_flags(p[0]) || !set_flags(p[1])) {
    close(p[0]);
    close(p[1]);
    return CTX_EMFILE;
  }
  *r = p[0];
  *w = p[1];
  return CTX_OK;
}

void ctx__event_signal(int w) {
  char one = 1;
  ssize_t n = write(w, &one, 1);
  (void)n;  /* EAGAIN: the pipe is full, so readable already */
}

void ctx__event_drain(int r) {
  char buf[64];
  while (read(r, buf, sizeof buf) > 0) {}
}

void ctx__event_close(int r, int w) {
  close(r);
  close(w);
}

void ctx__event_renew(int r, int w, int set) {
  int nr, nw;
  if (ctx__event_open(&nr, &nw) != CTX_OK) return;  /* keeps the shared one */
  if (set) ctx__event_signal(nw);
  dup2(nr, r);
  dup2(nw, w);
  fcntl(r, F_SETFD, FD_CLOEXEC);  /* dup2 clears it */
  fcntl(w, F_SETFD, FD_CLOEXEC);
  close(nr);
  close(nw);
}

int ctx__poll(struct pollfd *p, size_t n, int64_t timeout_ns) {
  return poll(p, (nfds_t)n, ctx_poll_timeout(timeout_ns < 0 ? CTX_FOREVER : timeout_ns));
}
#else
typedef int ctx__no_pipe_event;  /* ctx_event_eventfd.c serves this build */
#endif
