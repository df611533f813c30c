/* sigblock.c — runs a command with every signal blocked, as a parent that
** blocks them passes its mask on through exec (ctx.run must still stop). */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
  sigset_t all;
  if (argc < 2) {
    fprintf(stderr, "usage: %s command [args...]\n", argv[0]);
    return 2;
  }
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  execvp(argv[1], argv + 1);
  perror(argv[1]);
  return 127;
}
