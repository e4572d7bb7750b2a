/* joseapi.c: loads libcjose on first use (see joseapi.h); dlapi.c binds its entry points. */
#define _GNU_SOURCE
#include "joseapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "dlapi.h"

#define JOSEAPI_SYM(name) {#name, offsetof(joseapi, name)},
static const dlapi_sym jose_syms[] = {JOSEAPI_FUNCS(JOSEAPI_SYM)};
#undef JOSEAPI_SYM

int joseapi_open(joseapi *api, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  /* RTLD_NODELETE: OpenSSL registers exit handlers that must find their code mapped */
  api->lib = dlopen("libcjose.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (api->lib == NULL) {
    dlapi_open_failed("libcjose", "libcjose0", err, errlen);
    return -1;
  }
  if (dlapi_bind(api->lib, api, jose_syms, sizeof jose_syms / sizeof jose_syms[0], "libcjose", "too old a libcjose",
                 err, errlen) != 0) {
    joseapi_close(api);
    return -1;
  }
  return 0;
}

void joseapi_close(joseapi *api) {
  if (api->lib != NULL) dlclose(api->lib);
  memset(api, 0, sizeof *api);
}
