/* ctx_proc.c — supervising a child process: waiting for it with contexts,
** ending its group (TERM, grace, KILL, reap), and sharing the terminal with it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "ctx_int.h"

struct ctx_proc {
  int pid, flags;
  int pidfd;                 /* -1: the waits look on a schedule instead */
  int exited, reaped, status;
  int term_sent, kill_sent, terminated;
  int64_t kill_at;           /* when SIGKILL follows SIGTERM */
  int64_t next_check, interval;
  int tty;                   /* the controlling terminal, or -1 */
  _Atomic int has_tty;       /* the child's group is in its foreground */
  struct termios tio;        /* the terminal's modes when we handed it over */
  int tio_ok;
  ctx_proc_t *tnext, *tprev; /* live children that asked for the terminal */
  int listed;
};

#define CHECK_MIN_NS   1000000LL     /* without a pidfd: look after 1 ms, */
#define CHECK_MAX_NS  20000000LL     /* then ever less often, 20 ms at most */
#define CHECK_TTY_NS 100000000LL     /* job control stops: every 100 ms */

/* ---- the terminal ----
** As a shell runs a foreground job: the child gets its own process group
** (so all of it can be ended) and the terminal's foreground (so it can read
** and prompt, and Ctrl-C and Ctrl-Z reach it); we take it back at the end.
** Children started while another has it wait their turn: when one ends, the
** foreground goes to the newest one still running (as to the next job). */

static pthread_mutex_t TM = PTHREAD_MUTEX_INITIALIZER;
static ctx_proc_t *tlist;   /* TM: newest first */

static void set_foreground(int fd, pid_t pgrp) {
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);   /* a background group may not, unless blocked */
  pthread_sigmask(SIG_BLOCK, &ttou, &old);
  tcsetpgrp(fd, pgrp);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* TM held. */
static void hand_over(ctx_proc_t *p) {
  if (!p->tio_ok) p->tio_ok = tcgetattr(p->tty, &p->tio) == 0;
  set_foreground(p->tty, p->pid);
  if (tcgetpgrp(p->tty) == p->pid) atomic_store(&p->has_tty, 1);
  /* a read before the hand-over stopped it with SIGTTIN: go on */
  kill(-p->pid, SIGCONT);
}

static void take_terminal(ctx_proc_t *p) {
  int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return;   /* no controlling terminal */
  p->tty = fd;
  pthread_mutex_lock(&TM);
  int ours = tcgetpgrp(fd) == getpgrp();   /* else we are in the background, */
  int waiting = 0;                         /* or another child has it */
  for (ctx_proc_t *q = tlist; q; q = q->tnext) waiting |= atomic_load(&q->has_tty);
  if (ours || waiting) {
    p->tprev = NULL;
    p->tnext = tlist;
    if (tlist) tlist->tprev = p;
    tlist = p;
    p->listed = 1;
    if (ours) hand_over(p);
  } else {
    close(fd);   /* it will never get it */
    p->tty = -1;
  }
  pthread_mutex_unlock(&TM);
}

static void give_terminal_back(ctx_proc_t *p) {
  pthread_mutex_lock(&TM);
  if (p->listed) {
    if (p->tprev) p->tprev->tnext = p->tnext; else tlist = p->tnext;
    if (p->tnext) p->tnext->tprev = p->tprev;
    p->listed = 0;
  }
  if (atomic_exchange(&p->has_tty, 0)) {
    /* a program we killed may have left echo off (a password prompt) */
    if (p->terminated && p->tio_ok) tcsetattr(p->tty, TCSADRAIN, &p->tio);
    if (tlist) hand_over(tlist);
    else set_foreground(p->tty, getpgrp());
  }
  pthread_mutex_unlock(&TM);
}

void ctx__procs_atfork_child(void) {
  pthread_mutex_init(&TM, NULL);
  tlist = NULL;   /* the parent's children, not ours */
}

/* Ctrl-Z stopped the child's group: stop ours too, so the shell that runs
** us sees its job stopped; when it continues us, the child goes on too. */
static void job_stopped(ctx_proc_t *p) {
  set_foreground(p->tty, getpgrp());
  kill(0, SIGTSTP);
  set_foreground(p->tty, p->pid);
  kill(-p->pid, SIGCONT);
}

/* ---- the child ---- */

static void signal_child(ctx_proc_t *p, int sig) {
  if (p->reaped) return;   /* its pid may belong to someone else now */
  kill(p->flags & CTX_PROC_GROUP ? -p->pid : p->pid, sig);
}

int ctx__proc_poll(ctx_proc_t *p) {
  if (p->exited) return 1;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int opts = WEXITED | WNOHANG | WNOWAIT | (atomic_load(&p->has_tty) ? WSTOPPED : 0);
  if (waitid(P_PID, (id_t)p->pid, &si, opts) != 0) {
    if (errno == EINTR) return 0;
    p->exited = p->reaped = 1;   /* ECHILD: reaped elsewhere (SIGCHLD ignored) */
    p->status = -1;
  } else if (si.si_pid != p->pid) {
    return 0;
  } else if (si.si_code == CLD_STOPPED) {
    waitid(P_PID, (id_t)p->pid, &si, WSTOPPED | WNOHANG);   /* consume the stop */
    job_stopped(p);
    return 0;
  } else {
    p->exited = 1;
    /* its group goes with it when we ended it; the zombie keeps the group id
    ** from being reused until then */
    if (p->terminated && (p->flags & CTX_PROC_GROUP)) kill(-p->pid, SIGKILL);
    if (!(p->flags & CTX_PROC_NOREAP)) {
      while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR) {}
      p->reaped = 1;
    }
  }
  int had_tty = atomic_load(&p->has_tty);
  give_terminal_back(p);
  /* Ctrl-C or Ctrl-\ killed it while it had the terminal, which only its
  ** group received: pass it on to us, as a shell does */
  if (had_tty && !p->terminated && (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) &&
      (si.si_status == SIGINT || si.si_status == SIGQUIT))
    kill(getpid(), si.si_status);
  return 1;
}

int ctx__proc_pidfd(const ctx_proc_t *p) { return p->pidfd; }

int64_t ctx__proc_next_check(ctx_proc_t *p, int64_t now) {
  if (p->pidfd >= 0) return p->tty >= 0 ? now + CHECK_TTY_NS : CTX_FOREVER;
  if (now >= p->next_check) {
    p->interval = p->interval ? p->interval * 2 : CHECK_MIN_NS;
    if (p->interval > CHECK_MAX_NS) p->interval = CHECK_MAX_NS;
    p->next_check = now + p->interval;
  }
  return p->next_check;
}

int ctx_proc_open(int pid, int flags, ctx_proc_t **out) {
  if (pid <= 0 || !out || (flags & ~(CTX_PROC_GROUP | CTX_PROC_NOREAP | CTX_PROC_TERMINAL)))
    return CTX_EINVAL;
  ctx_proc_t *p = ctx__alloc(sizeof *p);
  if (!p) return CTX_ENOMEM;
  memset(p, 0, sizeof *p);
  p->pid = pid;
  p->flags = flags;
  p->tty = -1;
  p->pidfd = ctx__pidfd_open(pid);
  if ((flags & CTX_PROC_TERMINAL) && (flags & CTX_PROC_GROUP)) take_terminal(p);
  *out = p;
  return CTX_OK;
}

int ctx_proc_wait(ctx_proc_t *p, ctx_t *const *cs, size_t nc, const int *fds, size_t nfd,
                  int64_t timeout_ns, size_t *which) {
  if (!p) return CTX_EINVAL;
  return ctx__wait(cs, nc, fds, nfd, p, timeout_ns, which);
}

int ctx_proc_terminate(ctx_proc_t *p, int64_t grace_ns) {
  if (!p) return CTX_EINVAL;
  if (!ctx__proc_poll(p) && !p->term_sent) {
    p->term_sent = p->terminated = 1;
    p->kill_at = grace_ns <= 0 ? ctx_now() : ctx_deadline_from_timeout(grace_ns);
    if (grace_ns > 0) {
      signal_child(p, SIGCONT);   /* a stopped group cannot act on SIGTERM */
      signal_child(p, SIGTERM);
    }
  } else if (p->exited && !p->reaped && !p->terminated && (p->flags & CTX_PROC_GROUP)) {
    /* it had exited, but what it left in its group ends with it */
    p->terminated = 1;
    kill(-p->pid, SIGKILL);
  }
  while (!ctx__proc_poll(p)) {
    int64_t now = ctx_now();
    if (now >= p->kill_at && !p->kill_sent) {
      p->kill_sent = 1;
      signal_child(p, SIGKILL);
    }
    size_t which;
    int rc = ctx__wait(NULL, 0, NULL, 0, p, p->kill_sent ? -1 : p->kill_at - now, &which);
    if (rc == CTX_EINTR) return rc;
    if (rc == CTX_EMFILE || rc == CTX_ENOMEM)   /* no wake-up event: nap and look */
      nanosleep(&(struct timespec){ 0, CHECK_MIN_NS }, NULL);
  }
  return CTX_OK;
}

int ctx_proc_status(const ctx_proc_t *p, int *status) {
  if (!p) return CTX_EINVAL;
  if (!p->reaped || p->status == -1) return 0;
  if (status) *status = p->status;
  return 1;
}

void ctx_proc_close(ctx_proc_t *p) {
  if (!p) return;
  give_terminal_back(p);
  if (p->pidfd >= 0) close(p->pidfd);
  if (p->tty >= 0) close(p->tty);
  ctx__free_mem(p);
}
