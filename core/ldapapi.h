/* ldapapi.h: OpenLDAP's libldap entry points, loaded with dlopen the first time a person
 * signs in with a directory's password: libldap brings liblber, SASL and GnuTLS, which no
 * other command needs. <ldap.h> is used for its declarations alone. */
#ifndef ORKET_LDAPAPI_H
#define ORKET_LDAPAPI_H

#include <stddef.h>

#include <ldap.h>

#define LDAPAPI_FUNCS(X)                                                                                      \
  X(ldap_initialize) X(ldap_set_option) X(ldap_sasl_bind_s) X(ldap_search_ext_s) X(ldap_unbind_ext_s)       \
  X(ldap_err2string) X(ldap_count_entries) X(ldap_first_entry) X(ldap_next_entry) X(ldap_get_dn)            \
  X(ldap_get_values_len) X(ldap_value_free_len) X(ldap_msgfree) X(ldap_memfree)                             \
  X(ldap_bv2escaped_filter_value)

typedef struct ldapapi {
  void *lib;
#define LDAPAPI_FIELD(name) __typeof__(name) *name;
  LDAPAPI_FUNCS(LDAPAPI_FIELD)
#undef LDAPAPI_FIELD
} ldapapi;

/* Loads libldap (libldap-2.5.so.0) and every entry point above. Returns 0, or -1 with a
 * message naming the package to install. */
int ldapapi_open(ldapapi *api, char *err, size_t errlen);

#endif
