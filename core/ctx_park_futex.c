/* ctx_park_futex.c — parking on a 32-bit word with Linux futexes: the node
** locks and the waits for a subtree to settle sleep here. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ctx_platform.h"
#ifdef CTX_HAVE_FUTEX
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "ctx_int.h"

void ctx__park(_Atomic uint32_t *word, uint32_t expected) {
  /* EINTR, EAGAIN: the caller looks at the word again */
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void ctx__unpark_one(_Atomic uint32_t *word) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void ctx__unpark_all(_Atomic uint32_t *word) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void ctx__park_atfork_child(void) {}  /* the kernel keeps no state of ours */
#else
typedef int ctx__no_futex;  /* ctx_park_posix.c serves this build */
#endif
