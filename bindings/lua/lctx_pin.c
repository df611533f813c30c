/* lctx_pin.c — keeps the module mapped for good: lua_close() dlcloses C
** modules, but the core's timer thread runs code of this library until exit. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1        /* dladdr in glibc */
#endif
#ifndef _DARWIN_C_SOURCE
#define _DARWIN_C_SOURCE 1   /* dladdr on macOS under _POSIX_C_SOURCE */
#endif
#include <dlfcn.h>
#include "lctx.h"

/* Where RTLD_NODELETE is missing the library may be unloaded: then the host
** must not dlclose it while deadlines are pending. */
static const char anchor;  /* an address inside this library */

void lctx_pin_library(void) {
#if defined(RTLD_NODELETE) && defined(RTLD_NOLOAD)
  Dl_info info;
  if (dladdr(&anchor, &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
#endif
}
