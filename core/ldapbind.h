/* ldapbind.h: a person's name and password checked by an LDAP directory with libldap
 * (ldapapi.h): their entry found by a search whose filter holds the name escaped by
 * libldap's own ldap_bv2escaped_filter_value (RFC 4515), a simple bind as that entry, and
 * the groups that list it. No LDAP is written here; libldap speaks it. */
#ifndef ORKET_LDAPBIND_H
#define ORKET_LDAPBIND_H

#include <stddef.h>

#include "ldapapi.h"

#define LDAPBIND_MAX_NAME 256
#define LDAPBIND_MAX_GROUPS 256

enum { LDAPBIND_OK = 0, LDAPBIND_REFUSED = -1, LDAPBIND_DOWN = -2, LDAPBIND_BAD = -3 };

typedef struct ldapbind_opts {
  const char *url;           /* ldap://host:port, ldaps://..., ldapi://%2Fpath */
  const char *bind_dn;       /* the service's entry for the search (NULL: anonymous) */
  const char *bind_password; /* its password */
  const char *base_dn;       /* where people are */
  const char *user_attr;     /* the attribute holding the name, e.g. "uid" */
  const char *group_base_dn; /* where groups are (NULL: none looked up) */
  int timeout_ms;            /* each network step and search */
} ldapbind_opts;

/* Called with each group's cn; a non-zero return stops the listing. */
typedef int (*ldapbind_group_fn)(void *ud, const char *cn);

/* Checks name and password. Returns LDAPBIND_OK (dn, of dnlen bytes, holds the entry's DN;
 * on_group was called for each group listing it as member or memberUid), LDAPBIND_REFUSED
 * (no such person, several, or a wrong password: err says which, for the log only),
 * LDAPBIND_DOWN (the directory cannot be reached or failed, base_dn missing included) or LDAPBIND_BAD (an empty
 * password, a name too long or with a NUL: refused before any request). */
int ldapbind_verify(const ldapapi *api, const ldapbind_opts *o, const char *name, size_t namelen, const char *password,
                    size_t pwlen, char *dn, size_t dnlen, ldapbind_group_fn on_group, void *ud, char *err,
                    size_t errlen);

/* Looks name up as the service (bind_dn, or anonymous) without the person's password, as a
 * server re-checking someone signed in does: the same results as ldapbind_verify, the
 * groups searched as the service, and REFUSED only for no entry of that name (several is
 * DOWN: the directory's fault, not a sign the person left). */
int ldapbind_lookup(const ldapapi *api, const ldapbind_opts *o, const char *name, size_t namelen, char *dn,
                    size_t dnlen, ldapbind_group_fn on_group, void *ud, char *err, size_t errlen);

#endif
