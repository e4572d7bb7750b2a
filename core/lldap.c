/* lldap.c: Lua module `orket.c.ldap`, the binding of ldapbind.c (a name and password
 * checked by an LDAP directory with libldap, loaded on first use). The check runs on the
 * loop's thread pool (libldap's calls block), so the calling task waits and the server's
 * other requests go on; each step is bounded by timeout_ms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <sodium.h>
#include <uv.h>

#include "await.h"
#include "ldapbind.h"
#include "modules.h"

/* libldap's table, the first upvalue of every function: loaded when one is first called */
static const ldapapi *ll_api(lua_State *L) {
  ldapapi *api = lua_touserdata(L, lua_upvalueindex(1));
  if (api->lib == NULL) {
    char err[512];
    if (ldapapi_open(api, err, sizeof err) != 0) luaL_error(L, "%s", err);
  }
  return api;
}

/* One check on the thread pool: copies of everything it reads, so that nothing of the Lua
 * state is touched off the loop's thread (the api table too: a copy of its pointers). */
typedef struct ll_req {
  rt_wait w; /* first: the cancel callback gets this address */
  uv_work_t work;
  ldapapi api;
  char *url, *base_dn, *user_attr, *bind_dn, *bind_password, *group_base_dn, *name, *password;
  size_t namelen, pwlen;
  int timeout_ms, rc, cancelled, lookup; /* lookup: no password, ldapbind_lookup */
  ldapbind_entry entry;
  char err[512];
  char *groups[LDAPBIND_MAX_GROUPS];
  size_t ngroups;
} ll_req;

static void ll_wipe_free(char *s, size_t n) {
  if (s == NULL) return;
  sodium_memzero(s, n);
  free(s);
}

static void ll_free(ll_req *q) {
  free(q->url);
  free(q->base_dn);
  free(q->user_attr);
  free(q->bind_dn);
  ll_wipe_free(q->bind_password, q->bind_password ? strlen(q->bind_password) : 0);
  free(q->group_base_dn);
  free(q->name);
  ll_wipe_free(q->password, q->pwlen);
  for (size_t i = 0; i < q->ngroups; i++) free(q->groups[i]);
  free(q);
}

static int ll_on_group(void *ud, const char *cn) {
  ll_req *q = ud;
  if (q->ngroups == LDAPBIND_MAX_GROUPS) return 1;
  char *g = strdup(cn);
  if (g != NULL) q->groups[q->ngroups++] = g;
  return 0;
}

static void ll_work(uv_work_t *wk) {
  ll_req *q = wk->data;
  ldapbind_opts o = {q->url, q->bind_dn, q->bind_password, q->base_dn, q->user_attr, q->group_base_dn, q->timeout_ms};
  if (q->lookup)
    q->rc = ldapbind_lookup(&q->api, &o, q->name, q->namelen, &q->entry, ll_on_group, q, q->err, sizeof q->err);
  else
    q->rc = ldapbind_verify(&q->api, &o, q->name, q->namelen, q->password, q->pwlen, &q->entry, ll_on_group, q, q->err,
                            sizeof q->err);
}

static int ll_results(lua_State *L, void *ud) {
  ll_req *q = ud;
  if (q->rc != LDAPBIND_OK) {
    lua_pushnil(L);
    lua_pushstring(L, q->err);
    lua_pushstring(L, q->rc == LDAPBIND_REFUSED ? "EAUTH" : q->rc == LDAPBIND_DOWN ? "EUNAVAILABLE" : "EINVAL");
    return 3;
  }
  lua_createtable(L, 0, 4);
  lua_pushstring(L, q->entry.dn);
  lua_setfield(L, -2, "dn");
  if (q->entry.uuid[0] != '\0') {
    lua_pushstring(L, q->entry.uuid);
    lua_setfield(L, -2, "uuid");
  }
  lua_pushboolean(L, q->entry.members_seen);
  lua_setfield(L, -2, "members_seen");
  lua_createtable(L, (int)q->ngroups, 0);
  for (size_t i = 0; i < q->ngroups; i++) {
    lua_pushstring(L, q->groups[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "groups");
  return 1;
}

static void ll_done(uv_work_t *wk, int status) {
  (void)status;
  ll_req *q = wk->data;
  if (!q->cancelled) rt_wait_finish(&q->w, ll_results, q);
  ll_free(q);
}

/* A running check cannot be stopped: it ends on its thread (within its timeouts) and
 * ll_done frees it. */
static void ll_cancel(rt_wait *w) { ((ll_req *)w)->cancelled = 1; }

/* a copy of field name of the options table (NULL when absent and not required) */
static char *ll_field(lua_State *L, ll_req *q, const char *name, int required) {
  lua_getfield(L, 1, name);
  if (lua_isnil(L, -1) && !required) {
    lua_pop(L, 1);
    return NULL;
  }
  const char *fn = q->lookup ? "lookup" : "verify"; /* a literal: outlives q */
  if (lua_type(L, -1) != LUA_TSTRING) {
    ll_free(q);
    luaL_error(L, "bad argument #1 to '%s' (%s must be a string)", fn, name);
  }
  char *s = strdup(lua_tostring(L, -1));
  lua_pop(L, 1);
  if (s == NULL) {
    ll_free(q);
    luaL_error(L, "%s: out of memory", fn);
  }
  return s;
}

static int ll_attr_ok(const char *a) {
  size_t n = strlen(a);
  if (n == 0 || n > 64) return 0;
  for (const char *c = a; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-')) return 0;
  return 1;
}

static char *ll_copy(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d != NULL) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

/* verify({url=, base_dn=, user_attr=, bind_dn=, bind_password=, group_base_dn=,
 *   timeout_ms=}, name, password) -> {dn=, uuid= (the entryUUID, lower case; absent when the
 *   directory gives none), groups={cn...}, members_seen= (an empty groups is the directory's
 *   word: ldapbind.h)} | nil, msg, code (EAUTH: no such person or a wrong password;
 *   EUNAVAILABLE: the directory is down or failed; EINVAL: an empty password, a bad name, a
 *   bind_dn without bind_password). Waits (call it in a task) while the check runs. */
static int ll_start(lua_State *L, int lookup) {
  const char *fn = lookup ? "lookup" : "verify"; /* for its errors */
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t nlen, plen = 0;
  const char *name = luaL_checklstring(L, 2, &nlen);
  const char *pw = lookup ? "" : luaL_checklstring(L, 3, &plen);
  lua_getfield(L, 1, "timeout_ms");
  lua_Integer t = luaL_optinteger(L, -1, 5000);
  lua_pop(L, 1);
  if (t < 1 || t > 600000) luaL_error(L, "bad argument #1 to '%s' (timeout_ms must be 1 to 600000)", fn);
  lua_getfield(L, 1, "user_attr");
  const char *attr = luaL_optstring(L, -1, "uid");
  if (!ll_attr_ok(attr)) luaL_error(L, "bad argument #1 to '%s' (user_attr must be an attribute name)", fn);
  lua_pop(L, 1);
  const ldapapi *api = ll_api(L);
  orket_rt *rt = rt_get(L);
  rt_wait_require(L); /* before the allocations, so that its error leaks nothing */
  ll_req *q = calloc(1, sizeof *q);
  if (q == NULL) return luaL_error(L, "%s: out of memory", fn);
  q->api = *api;
  q->timeout_ms = (int)t;
  q->lookup = lookup;
  q->url = ll_field(L, q, "url", 1);
  q->base_dn = ll_field(L, q, "base_dn", 1);
  q->bind_dn = ll_field(L, q, "bind_dn", 0);
  q->bind_password = ll_field(L, q, "bind_password", 0);
  q->group_base_dn = ll_field(L, q, "group_base_dn", 0);
  q->user_attr = strdup(attr);
  q->name = ll_copy(name, nlen);
  q->password = ll_copy(pw, plen);
  q->namelen = nlen;
  q->pwlen = plen;
  if (q->user_attr == NULL || q->name == NULL || q->password == NULL) {
    ll_free(q);
    return luaL_error(L, "%s: out of memory", fn);
  }
  q->work.data = q;
  rt_wait_begin(L, &q->w, ll_cancel);
  int rc = uv_queue_work(&rt->loop, &q->work, ll_work, ll_done);
  if (rc != 0) {
    q->rc = LDAPBIND_DOWN;
    snprintf(q->err, sizeof q->err, "cannot start the check: %s", uv_strerror(rc));
    rt_wait_finish(&q->w, ll_results, q);
    ll_free(q);
  }
  return rt_wait_yield(L);
}

static int ll_verify(lua_State *L) { return ll_start(L, 0); }

/* lookup(opts, name) -> as verify, without the person's password: their entry found and
 *   their groups listed as the service (bind_dn, or anonymous); EAUTH: no such person. */
static int ll_lookup(lua_State *L) { return ll_start(L, 1); }

static const luaL_Reg ll_funcs[] = {
    {"verify", ll_verify},
    {"lookup", ll_lookup},
    {NULL, NULL},
};

int luaopen_orket_ldap(lua_State *L) {
  luaL_newlibtable(L, ll_funcs);
  ldapapi *api = lua_newuserdatauv(L, sizeof *api, 0);
  memset(api, 0, sizeof *api);
  luaL_setfuncs(L, ll_funcs, 1);
  return 1;
}
