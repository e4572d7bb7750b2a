/* ldapapi.c: loads libldap on first use (see ldapapi.h); dlapi.c binds its entry points. */
#define _GNU_SOURCE
#include "ldapapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "dlapi.h"

#define LDAPAPI_SYM(name) {#name, offsetof(ldapapi, name)},
static const dlapi_sym ldap_syms[] = {LDAPAPI_FUNCS(LDAPAPI_SYM)};
#undef LDAPAPI_SYM

int ldapapi_open(ldapapi *api, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  /* RTLD_NODELETE: libldap's TLS and SASL set-up registers handlers run at exit */
  api->lib = dlopen("libldap-2.5.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (api->lib == NULL) {
    dlapi_open_failed("libldap", "libldap-2.5-0", err, errlen);
    return -1;
  }
  if (dlapi_bind(api->lib, api, ldap_syms, sizeof ldap_syms / sizeof ldap_syms[0], "libldap", "too old a libldap",
                 err, errlen) != 0) {
    dlclose(api->lib);
    memset(api, 0, sizeof *api);
    return -1;
  }
  return 0;
}
