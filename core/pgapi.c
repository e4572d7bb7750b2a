/* pgapi.c: loads libpq on first use (see pgapi.h). Uses dlopen/dlsym. */
#define _GNU_SOURCE
#include "pgapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int pgapi_open(pgapi *api, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  /* RTLD_NODELETE: a program that closes its last connection and opens another (a pool
   * emptied by idle timeouts, the tests) would otherwise load libpq and its dozens of
   * libraries again; and OpenSSL and Kerberos keep process-wide state that must not be
   * unmapped under them. */
  api->lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (api->lib == NULL) {
    snprintf(err, errlen, "cannot load libpq (install the libpq5 package): %s", dlerror());
    return -1;
  }
  /* dlsym returns void*; POSIX guarantees it converts to a function pointer. */
#define LOAD(field)                                                            \
  do {                                                                         \
    void *sym = dlsym(api->lib, "PQ" #field);                                  \
    if (sym == NULL) {                                                         \
      snprintf(err, errlen, "libpq has no PQ%s: too old a libpq", #field);     \
      pgapi_close(api);                                                        \
      return -1;                                                               \
    }                                                                          \
    memcpy(&api->field, &sym, sizeof sym);                                     \
  } while (0)
  LOAD(conninfoParse);
  LOAD(conninfoFree);
  LOAD(connectStart);
  LOAD(connectPoll);
  LOAD(finish);
  LOAD(status);
  LOAD(errorMessage);
  LOAD(pass);
  LOAD(socket);
  LOAD(backendPID);
  LOAD(setnonblocking);
  LOAD(setNoticeProcessor);
  LOAD(sendQuery);
  LOAD(sendQueryParams);
  LOAD(sendPrepare);
  LOAD(sendQueryPrepared);
  LOAD(flush);
  LOAD(consumeInput);
  LOAD(isBusy);
  LOAD(getResult);
  LOAD(notifies);
  LOAD(getCancel);
  LOAD(cancel);
  LOAD(freeCancel);
  LOAD(resultStatus);
  LOAD(resultErrorField);
  LOAD(resultErrorMessage);
  LOAD(ntuples);
  LOAD(nfields);
  LOAD(fname);
  LOAD(ftype);
  LOAD(getvalue);
  LOAD(getlength);
  LOAD(getisnull);
  LOAD(cmdStatus);
  LOAD(cmdTuples);
  LOAD(unescapeBytea);
  LOAD(clear);
  LOAD(freemem);
#undef LOAD
  return 0;
}

void pgapi_close(pgapi *api) {
  if (api->lib) dlclose(api->lib);
  memset(api, 0, sizeof *api);
}
