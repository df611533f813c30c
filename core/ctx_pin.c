/* ctx_pin.c — keeps the shared object that holds the core mapped for good:
** its threads run its code until the process ends (dladdr + RTLD_NODELETE). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE         /* dladdr() on glibc */
#endif
#ifndef _DARWIN_C_SOURCE
#define _DARWIN_C_SOURCE    /* and on macOS */
#endif
#include <dlfcn.h>

void ctx__pin_library(void);
static const char anchor = 0;  /* any address inside this object */

/* If the core was loaded with dlopen() (a Python or Lua module), unloading it
** would leave its threads in unmapped code. A no-op when linked in. */
void ctx__pin_library(void) {
#if defined(RTLD_NODELETE) && defined(RTLD_NOLOAD)
  Dl_info info;
  if (dladdr(&anchor, &info) && info.dli_fname) {
    void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    (void)h;  /* never closed: that is the point */
  }
#endif
}
