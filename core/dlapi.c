/* dlapi.c: see dlapi.h. Uses dlsym. */
#define _GNU_SOURCE
#include "dlapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int dlapi_bind(void *lib, void *table, const dlapi_sym *syms, size_t n, const char *libname, const char *why,
               char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    void *sym = dlsym(lib, syms[i].name);
    if (sym == NULL) {
      snprintf(err, errlen, "%s has no %s: %s", libname, syms[i].name, why);
      return -1;
    }
    /* dlsym returns void*; POSIX guarantees it converts to a function pointer */
    memcpy((char *)table + syms[i].offset, &sym, sizeof sym);
  }
  return 0;
}
