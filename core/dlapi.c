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

void dlapi_open_failed(const char *libname, const char *package, char *err, size_t errlen) {
  const char *why = dlerror();
  if (why == NULL) why = "unknown error";
  /* glibc's words when mmap or open ran into a limit (ENOMEM, EMFILE, ENFILE); anything else
   * (no such file, a file too short or of another machine) is the package's to put right */
  if (strstr(why, "map segment") != NULL || strstr(why, "allocate memory") != NULL ||
      strstr(why, "open files") != NULL)
    snprintf(err, errlen, "cannot load %s: %s (installed, but not mapped: a limit of this process, its "
             "address space, ulimit -v, or its open files, ulimit -n; or a mount or policy that forbids running "
             "code from it, noexec, SELinux)", libname, why);
  else
    snprintf(err, errlen, "cannot load %s (install the %s package): %s", libname, package, why);
}
