/* ctx_platform.h — which implementation of each platform facility this build
** uses, decided by feature tests (headers and macros), never by OS name alone. */
#ifndef CTX_PLATFORM_H
#define CTX_PLATFORM_H

#include <unistd.h>  /* the _POSIX_* option macros */

/* -DCTX_FORCE_POSIX turns every Linux fast path off, so that CI proves the
** portable fallbacks on Linux; each test below then fails. */
#if defined(__has_include) && !defined(CTX_FORCE_POSIX)
#  if __has_include(<linux/futex.h>) && __has_include(<sys/syscall.h>)
#    define CTX_HAVE_FUTEX 1      /* ctx_park_futex.c, else ctx_park_posix.c */
#  endif
#  if __has_include(<sys/eventfd.h>)
#    define CTX_HAVE_EVENTFD 1    /* ctx_event_eventfd.c, else ctx_event_pipe.c */
#  endif
#  if __has_include(<sys/prctl.h>)
#    define CTX_HAVE_PRCTL 1      /* timer slack of the timer thread */
#  endif
#  if __has_include(<sys/syscall.h>) && defined(__linux__)
#    define CTX_HAVE_PIDFD 1      /* ctx_child_pidfd.c (SYS_pidfd_open checked
                                     there), else ctx_child_poll.c */
#  endif
#endif

/* Condition variables timed on CLOCK_MONOTONIC (POSIX Clock Selection); where
** pthread_condattr_setclock is missing (macOS: no _POSIX_CLOCK_SELECTION)
** timed waits are relative. The forced-POSIX build takes the relative form
** too, the one path no Linux build would otherwise run. */
#if defined(_POSIX_CLOCK_SELECTION) && _POSIX_CLOCK_SELECTION >= 0 && \
    !defined(CTX_FORCE_POSIX)
#  define CTX_HAVE_CONDATTR_SETCLOCK 1
#endif

/* A spin-wait hint: the pause instruction only where the CPU has one. */
#if defined(__x86_64__) || defined(__i386__)
#  define ctx__cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#  define ctx__cpu_relax() __asm__ __volatile__("yield")
#else
#  define ctx__cpu_relax() ((void)0)
#endif

/* Thread-local storage the hot paths can reach without a call: initial-exec
** where the compiler offers it (a dlopen()ed module gets it from the static
** TLS surplus, which a few bytes fit in). */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__ELF__)
#  define CTX_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#  define CTX_TLS _Thread_local
#endif

#endif /* CTX_PLATFORM_H */
