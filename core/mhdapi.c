/* mhdapi.c: loads libmicrohttpd on first use (see mhdapi.h); dlapi.c binds its entry points. */
#define _GNU_SOURCE
#include "mhdapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "dlapi.h"

#define MHDAPI_SYM(name) {"MHD_" #name, offsetof(mhdapi, name)},
static const dlapi_sym mhd_syms[] = {MHDAPI_FUNCS(MHDAPI_SYM)};
#undef MHDAPI_SYM

int mhdapi_open(mhdapi *api, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  /* RTLD_NODELETE: a process that stops its last server and starts another (the tests)
   * would otherwise load libmicrohttpd and GnuTLS again, and GnuTLS keeps process-wide
   * state that must not be unmapped under it. */
  api->lib = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (api->lib == NULL) {
    dlapi_open_failed("libmicrohttpd", "libmicrohttpd12", err, errlen);
    return -1;
  }
  if (dlapi_bind(api->lib, api, mhd_syms, sizeof mhd_syms / sizeof mhd_syms[0], "libmicrohttpd",
                 "too old a libmicrohttpd", err, errlen) != 0) {
    mhdapi_close(api);
    return -1;
  }
  return 0;
}

void mhdapi_close(mhdapi *api) {
  if (api->lib) dlclose(api->lib);
  memset(api, 0, sizeof *api);
}
