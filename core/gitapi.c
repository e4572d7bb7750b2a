/* gitapi.c: loads libgit2 on first use (see gitapi.h); dlapi.c binds its entry points. */
#define _GNU_SOURCE
#include "gitapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "dlapi.h"

#define GITAPI_SYM(name) {"git_" #name, offsetof(gitapi, name)},
static const dlapi_sym git_syms[] = {GITAPI_FUNCS(GITAPI_SYM)};
#undef GITAPI_SYM

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
    dlapi_open_failed("libgit2", "libgit2-" LIBGIT2_SOVERSION, err, errlen);
    return -1;
  }
  if (dlapi_bind(api->lib, api, git_syms, sizeof git_syms / sizeof git_syms[0], "libgit2",
                 "not the libgit2 " LIBGIT2_VERSION " orket was built with", err, errlen) != 0) {
    gitapi_close(api);
    return -1;
  }
  return 0;
}

void gitapi_close(gitapi *api) {
  if (api->lib) dlclose(api->lib);
  memset(api, 0, sizeof *api);
}
