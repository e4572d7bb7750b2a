/* editapi.c: loads libedit on first use (see editapi.h); dlapi.c binds its entry points. */
#define _GNU_SOURCE
#include "editapi.h"

#include <dlfcn.h>
#include <string.h>

#include "dlapi.h"

#define EDITAPI_SYM(name) {#name, offsetof(editapi, name)},
static const dlapi_sym edit_syms[] = {EDITAPI_FUNCS(EDITAPI_SYM)};
#undef EDITAPI_SYM

int editapi_open(editapi *api, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  /* RTLD_NODELETE: the history lives in the library; it must outlive any one table */
  api->lib = dlopen("libedit.so.2", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (api->lib == NULL) {
    dlapi_open_failed("libedit", "libedit2", err, errlen);
    return -1;
  }
  if (dlapi_bind(api->lib, api, edit_syms, sizeof edit_syms / sizeof edit_syms[0], "libedit", "too old a libedit",
                 err, errlen) != 0) {
    dlclose(api->lib);
    memset(api, 0, sizeof *api);
    return -1;
  }
  return 0;
}
