/* ctx_park_posix.c — parking on a 32-bit word without futexes: a fixed table
** of mutex/condition pairs picked by the word's address (a parking lot). */
#include "ctx_platform.h"
#ifndef CTX_HAVE_FUTEX
#include <pthread.h>
#include <stdint.h>
#include "ctx_int.h"

/* Sleepers of different words may share a slot: wake-ups go to all of the
** slot's sleepers, each of which looks at its own word again. */
#define SLOTS 64
static struct slot {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char pad[64];   /* keep neighbours off each other's cache line */
} lot[SLOTS];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_lot(void) {
  for (int i = 0; i < SLOTS; i++) {
    pthread_mutex_init(&lot[i].mu, NULL);
    pthread_cond_init(&lot[i].cv, NULL);
  }
}

static struct slot *slot_of(const void *word) {
  pthread_once(&once, init_lot);
  uintptr_t a = (uintptr_t)word;
  return &lot[((a >> 2) ^ (a >> 9) ^ (a >> 17)) % SLOTS];
}

/* The waker changes the word before it takes the slot's mutex, and the
** sleeper reads it under that mutex: no wake-up is lost. */
void ctx__park(_Atomic uint32_t *word, uint32_t expected) {
  struct slot *s = slot_of(word);
  pthread_mutex_lock(&s->mu);
  if (atomic_load_explicit(word, memory_order_acquire) == expected)
    pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

void ctx__unpark_all(_Atomic uint32_t *word) {
  struct slot *s = slot_of(word);
  pthread_mutex_lock(&s->mu);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

void ctx__unpark_one(_Atomic uint32_t *word) { ctx__unpark_all(word); }

/* a slot's mutex may have been held by a thread that is gone */
void ctx__park_atfork_child(void) { init_lot(); }
#else
typedef int ctx__no_park_posix;  /* ctx_park_futex.c serves this build */
#endif
