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
#define LDAPBIND_MAX_DN 1024
#define LDAPBIND_UUID_LEN 36 /* an entryUUID's text: 8-4-4-4-12 hex digits (RFC 4530, RFC 4122) */

enum { LDAPBIND_OK = 0, LDAPBIND_REFUSED = -1, LDAPBIND_DOWN = -2, LDAPBIND_BAD = -3 };

typedef struct ldapbind_opts {
  const char *url;           /* ldap://host:port, ldaps://..., ldapi://%2Fpath */
  const char *bind_dn;       /* the service's entry for the search (NULL: anonymous) */
  const char *bind_password; /* its password: required, not empty, with bind_dn */
  const char *base_dn;       /* where people are */
  const char *user_attr;     /* the attribute holding the name, e.g. "uid" */
  const char *group_base_dn; /* where groups are (NULL: none looked up) */
  int timeout_ms;            /* each network step and search */
} ldapbind_opts;

/* Called with each group's cn; a non-zero return stops the listing. */
typedef int (*ldapbind_group_fn)(void *ud, const char *cn);

/* What a check found of the person's entry. */
typedef struct ldapbind_entry {
  char dn[LDAPBIND_MAX_DN];
  /* its entryUUID (RFC 4530: an operational attribute, returned only when asked for by name),
   * in lower case; "" when the directory gives none (or one not of that form). A DN changes
   * when the entry moves, and a deleted entry's DN may be given to a new one; the entryUUID
   * does neither. */
  char uuid[LDAPBIND_UUID_LEN + 1];
  /* 1: the bind that searched the groups could read some group's members (a group listed
   * it, or a group under group_base_dn has a member or memberUid it can see), so no group
   * listed is the directory's word that the person is in none; 0: it could read none, and
   * an empty list tells nothing (an ACL may show members only to the person themselves) */
  int members_seen;
} ldapbind_entry;

/* Checks name and password. Returns LDAPBIND_OK (*out holds the entry's DN and entryUUID;
 * on_group was called for each group listing it as member or memberUid), LDAPBIND_REFUSED
 * (no such person, several, or a wrong password: err says which, for the log only),
 * LDAPBIND_DOWN (the directory cannot be reached or failed, base_dn missing included) or
 * LDAPBIND_BAD (an empty password, a name too long or with a NUL, a bind_dn with no
 * bind_password: refused before any request). */
int ldapbind_verify(const ldapapi *api, const ldapbind_opts *o, const char *name, size_t namelen, const char *password,
                    size_t pwlen, ldapbind_entry *out, ldapbind_group_fn on_group, void *ud, char *err, size_t errlen);

/* Looks name up as the service (bind_dn, or anonymous) without the person's password, as a
 * server re-checking someone signed in does: the same results as ldapbind_verify, the
 * groups searched as the service, and REFUSED only for no entry of that name (several is
 * DOWN: the directory's fault, not a sign the person left). */
int ldapbind_lookup(const ldapapi *api, const ldapbind_opts *o, const char *name, size_t namelen, ldapbind_entry *out,
                    ldapbind_group_fn on_group, void *ud, char *err, size_t errlen);

#endif
