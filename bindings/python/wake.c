/* wake.c — the signal that wakes the main thread for its interrupting scopes:
** SIGRTMAX plus a kernel timer per deadline on Linux, SIGURG from the core's
** threads elsewhere (or with -DCTX_FORCE_POSIX). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "pyctx.h"

/* Chosen by what the platform offers, not by its name: a timer that signals
** one thread (SIGEV_THREAD_ID) and real-time signals. A real signal both
** breaks a blocking system call of the main thread (time.sleep, a read) and
** runs our handler at its next bytecode, without waiting for the GIL. */
#if !defined(CTX_FORCE_POSIX) && defined(SIGEV_THREAD_ID) && defined(SIGRTMAX)
#include <sys/syscall.h>
#define WAKE_LINUX 1
#endif

static atomic_int g_wake_sig;  /* 0 until installed */

int pyctx_wake_sig(void) { return atomic_load(&g_wake_sig); }

const char *pyctx_wake_path(void) {
#ifdef WAKE_LINUX
  return "linux-timer";
#else
  return "posix-signal";
#endif
}

void pyctx_wake_main(void) {
  int sig = atomic_load(&g_wake_sig);
  if (sig) pthread_kill((pthread_t)pyctx_main_ident(), sig);
}

int pyctx_install_wake(ctxstate *st) {
  if (atomic_load(&g_wake_sig)) return 0;
#ifdef WAKE_LINUX
  int sig = SIGRTMAX;
#else
  /* ignored by default: one landing after our handler is gone does no harm */
  int sig = SIGURG;
#endif
  PyObject *signal = PyImport_ImportModule("signal");
  if (!signal) return -1;
  PyObject *cur = PyObject_CallMethod(signal, "getsignal", "i", sig);
  PyObject *dfl = cur ? PyObject_GetAttrString(signal, "SIG_DFL") : NULL;
  int rc = 0;
  if (!dfl) {
    rc = -1;
  } else if (cur == Py_None || cur == dfl) {  /* never take a signal in use */
    PyObject *r = PyObject_CallMethod(signal, "signal", "iO", sig, st->wake);
    if (r) { atomic_store(&g_wake_sig, sig); Py_DECREF(r); }
    else rc = -1;
  }
  /* else: no wake signal; the stopper thread still arms delivery with the GIL */
  Py_XDECREF(dfl);
  Py_XDECREF(cur);
  Py_DECREF(signal);
  return rc;
}

#ifdef WAKE_LINUX
/* A POSIX timer that signals this (main) thread right at the deadline: the
** kernel delivers it even while the core's timer thread waits for a CPU. */
void *pyctx_timer_arm(int64_t deadline) {
  int sig = atomic_load(&g_wake_sig);
  if (!sig) return NULL;
  struct sigevent ev = { 0 };
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = sig;
#ifdef sigev_notify_thread_id
  ev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
#else
  ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
#endif
  timer_t t;
  if (timer_create(CLOCK_MONOTONIC, &ev, &t) != 0) return NULL;  /* best effort */
  struct itimerspec its = { { 0, 0 }, { (time_t)(deadline / 1000000000),
                                        (long)(deadline % 1000000000) } };
  if (its.it_value.tv_sec <= 0 && its.it_value.tv_nsec <= 0) {
    its.it_value.tv_sec = 0;
    its.it_value.tv_nsec = 1;
  }
  if (timer_settime(t, TIMER_ABSTIME, &its, NULL) != 0) { timer_delete(t); return NULL; }
  timer_t *box = malloc(sizeof *box);
  if (!box) { timer_delete(t); return NULL; }
  *box = t;
  return box;
}

void pyctx_timer_disarm(void *timer) {
  if (!timer) return;
  timer_delete(*(timer_t *)timer);
  free(timer);
}
#else
/* No per-thread timer: the callback of the scope's context, run by the
** core's timer thread as the deadline passes, signals the main thread. */
void *pyctx_timer_arm(int64_t deadline) { (void)deadline; return NULL; }
void pyctx_timer_disarm(void *timer) { free(timer); }
#endif

void pyctx_timer_forget(void *timer) { free(timer); }
