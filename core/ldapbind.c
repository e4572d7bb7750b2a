/* ldapbind.c: a name and password checked by an LDAP directory (see ldapbind.h). One
 * connection per check: a search bound as the service (the entry's DN and entryUUID), a
 * bind as the person on the same connection, then the groups, searched as the person (a
 * lookup, without the password: as the service), and, when none lists the person, whether
 * that bind can read any group's members at all. Each step has the timeout. */
#include "ldapbind.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

/* a filter "(ATTR=VALUE)" with VALUE escaped by libldap; 0, or -1 */
static int lb_filter(const ldapapi *api, char *out, size_t outlen, const char *attr, const char *value, size_t len) {
  struct berval in = {(ber_len_t)len, (char *)value}, esc = {0, NULL};
  if (api->ldap_bv2escaped_filter_value(&in, &esc) != 0 || esc.bv_val == NULL) return -1;
  int n = snprintf(out, outlen, "(%s=%s)", attr, esc.bv_val);
  api->ldap_memfree(esc.bv_val);
  return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static int lb_fail(char *err, size_t errlen, int rc, const char *what, const char *why) {
  snprintf(err, errlen, "%s: %s", what, why);
  return rc;
}

static int lb_bind(const ldapapi *api, LDAP *ld, const char *dn, const char *pw, size_t pwlen) {
  struct berval cred = {(ber_len_t)pwlen, (char *)pw};
  return api->ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

/* whether this bind can read any group's members under o->group_base_dn: a presence filter
 * matches only where the bind may search the attribute (an ACL that hides member and
 * memberUid from it makes the filter undefined, matching nothing). A failed search tells
 * nothing either: 0. */
static int lb_members_visible(const ldapapi *api, LDAP *ld, const ldapbind_opts *o, struct timeval *tv) {
  char *attrs[] = {"1.1", NULL}; /* RFC 4511 4.5.1.8: no attributes, the entry alone */
  LDAPMessage *res = NULL;
  int rc = api->ldap_search_ext_s(ld, o->group_base_dn, LDAP_SCOPE_SUBTREE, "(|(member=*)(memberUid=*))", attrs, 1,
                                  NULL, NULL, tv, 1, &res);
  int seen = (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED) && res && api->ldap_count_entries(ld, res) > 0;
  if (res) api->ldap_msgfree(res);
  return seen;
}

/* the groups under o->group_base_dn listing dn (member) or name (memberUid); out->members_seen
 * says whether an empty list is the directory's word */
static int lb_groups(const ldapapi *api, LDAP *ld, const ldapbind_opts *o, const char *dn, const char *name,
                     size_t namelen, struct timeval *tv, ldapbind_entry *out, ldapbind_group_fn on_group, void *ud,
                     char *err, size_t errlen) {
  char f1[1200], f2[600], filter[1900];
  if (lb_filter(api, f1, sizeof f1, "member", dn, strlen(dn)) != 0 ||
      lb_filter(api, f2, sizeof f2, "memberUid", name, namelen) != 0)
    return lb_fail(err, errlen, LDAPBIND_BAD, "groups", "the filter cannot be made");
  snprintf(filter, sizeof filter, "(|%s%s)", f1, f2);
  char *attrs[] = {"cn", NULL};
  LDAPMessage *res = NULL;
  int rc = api->ldap_search_ext_s(ld, o->group_base_dn, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL, tv,
                                  LDAPBIND_MAX_GROUPS, &res);
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
    if (res) api->ldap_msgfree(res);
    return lb_fail(err, errlen, LDAPBIND_DOWN, "the group search failed", api->ldap_err2string(rc));
  }
  int listed = api->ldap_count_entries(ld, res) > 0;
  for (LDAPMessage *e = api->ldap_first_entry(ld, res); e != NULL; e = api->ldap_next_entry(ld, e)) {
    struct berval **v = api->ldap_get_values_len(ld, e, "cn");
    int stop = 0;
    for (int i = 0; v && v[i] && !stop; i++) {
      char cn[257];
      if (v[i]->bv_len >= sizeof cn || memchr(v[i]->bv_val, '\0', v[i]->bv_len)) continue;
      memcpy(cn, v[i]->bv_val, v[i]->bv_len);
      cn[v[i]->bv_len] = '\0';
      stop = on_group(ud, cn);
    }
    if (v) api->ldap_value_free_len(v);
    if (stop) break;
  }
  api->ldap_msgfree(res);
  /* asked only when nothing listed the person: one search more, for a person in no group */
  out->members_seen = listed || lb_members_visible(api, ld, o, tv);
  return LDAPBIND_OK;
}

/* the entry's entryUUID into uuid (LDAPBIND_UUID_LEN + 1 bytes), lower case; "" when it has
 * none or one not of the 8-4-4-4-12 hex form (nothing else is taken for an identity) */
static void lb_uuid(const ldapapi *api, LDAP *ld, LDAPMessage *e, char *uuid) {
  uuid[0] = '\0';
  struct berval **v = api->ldap_get_values_len(ld, e, "entryUUID");
  if (v && v[0] && !v[1] && v[0]->bv_len == LDAPBIND_UUID_LEN) {
    const char *c = v[0]->bv_val;
    int ok = 1;
    for (int i = 0; i < LDAPBIND_UUID_LEN && ok; i++) {
      int dash = i == 8 || i == 13 || i == 18 || i == 23;
      int hex = (c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f') || (c[i] >= 'A' && c[i] <= 'F');
      ok = dash ? c[i] == '-' : hex;
    }
    if (ok) {
      for (int i = 0; i < LDAPBIND_UUID_LEN; i++) uuid[i] = (char)(c[i] >= 'A' && c[i] <= 'F' ? c[i] + ('a' - 'A') : c[i]);
      uuid[LDAPBIND_UUID_LEN] = '\0';
    }
  }
  if (v) api->ldap_value_free_len(v);
}

/* the entry's own spelling of its user_attr into own (a name is matched without case, a
 * posixGroup's memberUid with it): name itself when the value is missing or unusable */
static void lb_own_name(const ldapapi *api, LDAP *ld, LDAPMessage *e, const ldapbind_opts *o, const char *name,
                        size_t namelen, char *own, size_t ownlen) {
  struct berval **v = api->ldap_get_values_len(ld, e, o->user_attr);
  int got = 0;
  for (int i = 0; v && v[i] && !got; i++) {
    /* the value the search matched: the name, but for case */
    if (v[i]->bv_len != namelen || v[i]->bv_len >= ownlen || memchr(v[i]->bv_val, '\0', v[i]->bv_len)) continue;
    if (strncasecmp(v[i]->bv_val, name, namelen) != 0) continue;
    memcpy(own, v[i]->bv_val, v[i]->bv_len);
    own[v[i]->bv_len] = '\0';
    got = 1;
  }
  if (v) api->ldap_value_free_len(v);
  if (!got) {
    memcpy(own, name, namelen);
    own[namelen] = '\0';
  }
}

/* finds the one entry whose user_attr is name: its DN and entryUUID into out, its spelling of
 * the name into own. REFUSED only for what is about the person (no entry under a base that exists; for
 * verify, several too); a missing base_dn (noSuchObject: a typo, a replica still loading)
 * or any failed search is about the directory, DOWN, so that a lookup never takes it for
 * a person gone. A lookup's "several" is DOWN too: a second entry with someone's name does
 * not end them. */
static int lb_find(const ldapapi *api, LDAP *ld, const ldapbind_opts *o, const char *name, size_t namelen, int lookup,
                   struct timeval *tv, ldapbind_entry *out, char *own, size_t ownlen, char *err, size_t errlen) {
  char filter[1200];
  if (lb_filter(api, filter, sizeof filter, o->user_attr, name, namelen) != 0)
    return lb_fail(err, errlen, LDAPBIND_BAD, "search", "the filter cannot be made");
  /* entryUUID is operational: returned only when named (RFC 4530 2.1) */
  char *attrs[] = {(char *)o->user_attr, "entryUUID", NULL};
  LDAPMessage *res = NULL;
  /* size limit 2: one entry is the person, a second says the name is ambiguous */
  int rc = api->ldap_search_ext_s(ld, o->base_dn, LDAP_SCOPE_SUBTREE, filter, attrs, 0, NULL, NULL, tv, 2, &res);
  int n = res ? api->ldap_count_entries(ld, res) : 0;
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED) {
    if (res) api->ldap_msgfree(res);
    return lb_fail(err, errlen, LDAPBIND_DOWN, "the search failed", api->ldap_err2string(rc));
  }
  if (n != 1) {
    if (res) api->ldap_msgfree(res);
    return lb_fail(err, errlen, n == 0 || !lookup ? LDAPBIND_REFUSED : LDAPBIND_DOWN, "search",
                   n == 0 ? "no such person" : "several people have this name");
  }
  LDAPMessage *e = api->ldap_first_entry(ld, res);
  char *d = api->ldap_get_dn(ld, e);
  int ok = d != NULL && strlen(d) < sizeof out->dn;
  if (ok) memcpy(out->dn, d, strlen(d) + 1);
  lb_uuid(api, ld, e, out->uuid);
  lb_own_name(api, ld, e, o, name, namelen, own, ownlen);
  if (d) api->ldap_memfree(d);
  api->ldap_msgfree(res);
  return ok ? LDAPBIND_OK : lb_fail(err, errlen, LDAPBIND_DOWN, "search", "the entry's DN cannot be read");
}

/* verify's steps, or lookup's when password is NULL: no bind as the person, the groups
 * searched as the service */
static int lb_check(const ldapapi *api, const ldapbind_opts *o, const char *name, size_t namelen, const char *password,
                    size_t pwlen, ldapbind_entry *out, ldapbind_group_fn on_group, void *ud, char *err,
                    size_t errlen) {
  memset(out, 0, sizeof *out);
  /* an empty password would be an unauthenticated bind, which succeeds (RFC 4513 5.1.2) */
  if (password != NULL && pwlen == 0) return lb_fail(err, errlen, LDAPBIND_BAD, "bind", "an empty password is refused");
  /* so would the service's: a directory that allows it would search as anonymous while the
   * settings name a service account */
  if (o->bind_dn != NULL && (o->bind_password == NULL || o->bind_password[0] == '\0'))
    return lb_fail(err, errlen, LDAPBIND_BAD, "the service's bind",
                   "bind_dn has no password (an empty one would be an unauthenticated bind): none is sent");
  if (namelen == 0 || namelen > LDAPBIND_MAX_NAME || memchr(name, '\0', namelen))
    return lb_fail(err, errlen, LDAPBIND_BAD, "name", "empty, too long or holding a NUL");
  LDAP *ld = NULL;
  int rc = api->ldap_initialize(&ld, o->url);
  if (rc != LDAP_SUCCESS) return lb_fail(err, errlen, LDAPBIND_DOWN, "the directory's URL", api->ldap_err2string(rc));
  int v3 = LDAP_VERSION3;
  struct timeval tv = {o->timeout_ms / 1000, (o->timeout_ms % 1000) * 1000};
  api->ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
  api->ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
  api->ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
  api->ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  int st = LDAPBIND_OK;
  char own[LDAPBIND_MAX_NAME + 1];
  if (o->bind_dn != NULL) {
    rc = lb_bind(api, ld, o->bind_dn, o->bind_password, strlen(o->bind_password));
    if (rc != LDAP_SUCCESS)
      st = lb_fail(err, errlen, LDAPBIND_DOWN, "the service's bind failed", api->ldap_err2string(rc));
  }
  if (st == LDAPBIND_OK)
    st = lb_find(api, ld, o, name, namelen, password == NULL, &tv, out, own, sizeof own, err, errlen);
  if (st == LDAPBIND_OK && password != NULL) {
    rc = lb_bind(api, ld, out->dn, password, pwlen);
    if (rc == LDAP_INVALID_CREDENTIALS) st = lb_fail(err, errlen, LDAPBIND_REFUSED, "bind", "wrong password");
    else if (rc != LDAP_SUCCESS) st = lb_fail(err, errlen, LDAPBIND_DOWN, "the bind failed", api->ldap_err2string(rc));
  }
  if (st == LDAPBIND_OK && o->group_base_dn != NULL)
    st = lb_groups(api, ld, o, out->dn, own, strlen(own), &tv, out, on_group, ud, err, errlen);
  api->ldap_unbind_ext_s(ld, NULL, NULL);
  return st;
}

int ldapbind_verify(const ldapapi *api, const ldapbind_opts *o, const char *name, size_t namelen, const char *password,
                    size_t pwlen, ldapbind_entry *out, ldapbind_group_fn on_group, void *ud, char *err, size_t errlen) {
  /* NULL would be a lookup: a caller's missing password is an empty one */
  return lb_check(api, o, name, namelen, password ? password : "", pwlen, out, on_group, ud, err, errlen);
}

int ldapbind_lookup(const ldapapi *api, const ldapbind_opts *o, const char *name, size_t namelen, ldapbind_entry *out,
                    ldapbind_group_fn on_group, void *ud, char *err, size_t errlen) {
  return lb_check(api, o, name, namelen, NULL, 0, out, on_group, ud, err, errlen);
}
