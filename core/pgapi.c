/* pgapi.c: loads libpq on first use (see pgapi.h); dlapi.c binds its entry points. */
#define _GNU_SOURCE
#include "pgapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "dlapi.h"

#define SYM(field) {"PQ" #field, offsetof(pgapi, field)},
static const dlapi_sym pq_syms[] = {
    SYM(conninfoParse) SYM(conninfoFree) SYM(connectStart) SYM(connectStartParams) SYM(connectPoll) SYM(finish)
    SYM(status) SYM(errorMessage) SYM(pass) SYM(host) SYM(hostaddr) SYM(socket) SYM(backendPID) SYM(setnonblocking)
    SYM(setNoticeProcessor) SYM(sendQuery) SYM(sendQueryParams) SYM(sendPrepare)
    SYM(sendQueryPrepared) SYM(flush) SYM(consumeInput) SYM(isBusy) SYM(getResult) SYM(notifies)
    SYM(getCancel) SYM(cancel) SYM(freeCancel) SYM(resultStatus) SYM(resultErrorField)
    SYM(resultErrorMessage) SYM(ntuples) SYM(nfields) SYM(fname) SYM(ftype) SYM(getvalue)
    SYM(getlength) SYM(getisnull) SYM(cmdStatus) SYM(cmdTuples) SYM(unescapeBytea) SYM(clear)
    SYM(freemem)
};
#undef SYM

int pgapi_open(pgapi *api, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  /* RTLD_NODELETE: a program that closes its last connection and opens another (a pool
   * emptied by idle timeouts, the tests) would otherwise load libpq and its dozens of
   * libraries again; and OpenSSL and Kerberos keep process-wide state that must not be
   * unmapped under them. */
  api->lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (api->lib == NULL) {
    dlapi_open_failed("libpq", "libpq5", err, errlen);
    return -1;
  }
  if (dlapi_bind(api->lib, api, pq_syms, sizeof pq_syms / sizeof pq_syms[0], "libpq", "too old a libpq", err,
                 errlen) != 0) {
    pgapi_close(api);
    return -1;
  }
  return 0;
}

void pgapi_close(pgapi *api) {
  if (api->lib) dlclose(api->lib);
  memset(api, 0, sizeof *api);
}
