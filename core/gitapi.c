/* gitapi.c: loads libgit2 on first use (see gitapi.h). Uses dlopen/dlsym. */
#define _GNU_SOURCE
#include "gitapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* libgit2's soname changes with each minor version (its ABI does): the one whose headers
 * the table's types come from is the one to load. */
#define GITAPI_SONAME "libgit2.so." LIBGIT2_SOVERSION

int gitapi_open(gitapi *api, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  /* RTLD_NODELETE: libgit2 keeps process-wide state (its settings, the per-thread state of
   * the threads that pushed or fetched, OpenSSL's or mbedTLS's) that must outlive the
   * repository handles, which come and go (orket serve opens one per webhook). */
  api->lib = dlopen(GITAPI_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (api->lib == NULL) {
    snprintf(err, errlen, "cannot load libgit2 (install the libgit2-%s package): %s",
             LIBGIT2_SOVERSION, dlerror());
    return -1;
  }
  /* dlsym returns void*; POSIX guarantees it converts to a function pointer. */
#define LOAD(name)                                                             \
  do {                                                                         \
    void *sym = dlsym(api->lib, "git_" #name);                                 \
    if (sym == NULL) {                                                         \
      snprintf(err, errlen, "libgit2 has no git_%s: not the libgit2 " LIBGIT2_VERSION      \
               " orket was built with", #name);                                \
      gitapi_close(api);                                                       \
      return -1;                                                               \
    }                                                                          \
    memcpy(&api->name, &sym, sizeof sym);                                      \
  } while (0);
  GITAPI_FUNCS(LOAD)
#undef LOAD
  return 0;
}

void gitapi_close(gitapi *api) {
  if (api->lib) dlclose(api->lib);
  memset(api, 0, sizeof *api);
}
