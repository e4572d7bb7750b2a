/* mhdapi.c: loads libmicrohttpd on first use (see mhdapi.h). Uses dlopen/dlsym. */
#define _GNU_SOURCE
#include "mhdapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int mhdapi_open(mhdapi *api, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  /* RTLD_NODELETE: a process that stops its last server and starts another (the tests)
   * would otherwise load libmicrohttpd and GnuTLS again, and GnuTLS keeps process-wide
   * state that must not be unmapped under it. */
  api->lib = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (api->lib == NULL) {
    snprintf(err, errlen, "cannot load libmicrohttpd (install the libmicrohttpd12 package): %s",
             dlerror());
    return -1;
  }
  /* dlsym returns void*; POSIX guarantees it converts to a function pointer. */
#define LOAD(name)                                                             \
  do {                                                                         \
    void *sym = dlsym(api->lib, "MHD_" #name);                                 \
    if (sym == NULL) {                                                         \
      snprintf(err, errlen, "libmicrohttpd has no MHD_%s: too old a libmicrohttpd", #name); \
      mhdapi_close(api);                                                       \
      return -1;                                                               \
    }                                                                          \
    memcpy(&api->name, &sym, sizeof sym);                                      \
  } while (0);
  MHDAPI_FUNCS(LOAD)
#undef LOAD
  return 0;
}

void mhdapi_close(mhdapi *api) {
  if (api->lib) dlclose(api->lib);
  memset(api, 0, sizeof *api);
}
