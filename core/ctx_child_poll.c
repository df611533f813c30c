/* ctx_child_poll.c — no descriptor for a child's exit on plain POSIX: the
** waits look at the child on a bounded schedule instead (ctx_proc.c). */
#include "ctx_platform.h"
#ifndef CTX_HAVE_PIDFD
#include "ctx_int.h"

int ctx__pidfd_open(int pid) {
  (void)pid;
  return -1;
}
#else
typedef int ctx__no_child_poll;  /* ctx_child_pidfd.c serves this build */
#endif
