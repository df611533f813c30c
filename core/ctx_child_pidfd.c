/* ctx_child_pidfd.c — a descriptor that becomes readable when a child exits:
** pidfd_open() on Linux 5.3 and later. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ctx_platform.h"
#ifdef CTX_HAVE_PIDFD
#include <sys/syscall.h>
#include <unistd.h>
#include "ctx_int.h"

int ctx__pidfd_open(int pid) {
#ifdef SYS_pidfd_open
  /* older kernels: ENOSYS, and the waits poll the child instead */
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  return -1;
#endif
}
#else
typedef int ctx__no_pidfd;  /* ctx_child_poll.c serves this build */
#endif
