/* ctx_event_eventfd.c — pollable events on Linux: one eventfd per event, and
** ppoll() for nanosecond timeouts. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ctx_platform.h"
#ifdef CTX_HAVE_EVENTFD
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "ctx_int.h"

int ctx__event_open(int *r, int *w) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return errno == ENOMEM ? CTX_ENOMEM : CTX_EMFILE;
  *r = *w = fd;
  return CTX_OK;
}

void ctx__event_signal(int w) {
  uint64_t one = 1;
  ssize_t n = write(w, &one, sizeof one);
  (void)n;  /* cannot fail: the counter never nears overflow */
}

void ctx__event_drain(int r) {
  uint64_t v;
  ssize_t n = read(r, &v, sizeof v);  /* non-blocking: EAGAIN when clear */
  (void)n;
}

void ctx__event_close(int r, int w) {
  (void)w;
  close(r);
}

void ctx__event_renew(int r, int w, int set) {
  (void)w;
  int fd = eventfd(set ? 1 : 0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return;  /* keeps the shared one: better than none */
  dup3(fd, r, O_CLOEXEC);
  close(fd);
}

int ctx__poll(struct pollfd *p, size_t n, int64_t timeout_ns) {
  struct timespec ts, *tsp = NULL;
  if (timeout_ns >= 0) {
    ts.tv_sec = (time_t)(timeout_ns / 1000000000);
    ts.tv_nsec = (long)(timeout_ns % 1000000000);
    tsp = &ts;
  }
  return ppoll(p, (nfds_t)n, tsp, NULL);
}
#else
typedef int ctx__no_eventfd;  /* ctx_event_pipe.c serves this build */
#endif
