/* lldap.c: Lua module `orket.c.ldap`, the binding of ldapbind.c (a name and password
 * checked by an LDAP directory with libldap, loaded on first use). The check blocks for at
 * most a few timeouts (timeout_ms each step); it is made only at a sign-in. */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

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

static const char *ll_field(lua_State *L, const char *name, int required) {
  lua_getfield(L, 1, name);
  if (lua_isnil(L, -1) && !required) return NULL;
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "bad argument #1 to 'verify' (%s must be a string)", name);
  return lua_tostring(L, -1); /* stays on the stack, so the pointer stays valid */
}

/* adds each group's cn to the table on top of the stack */
static int ll_on_group(void *ud, const char *cn) {
  lua_State *L = ud;
  lua_pushstring(L, cn);
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  return 0;
}

/* verify({url=, base_dn=, user_attr=, bind_dn=, bind_password=, group_base_dn=,
 *   timeout_ms=}, name, password) -> {dn=, groups={cn...}} | nil, msg, code (EAUTH: no such
 *   person or a wrong password; EUNAVAILABLE: the directory is down or failed; EINVAL: an
 *   empty password, a bad name) */
static int ll_verify(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t nlen, plen;
  const char *name = luaL_checklstring(L, 2, &nlen);
  const char *pw = luaL_checklstring(L, 3, &plen);
  ldapbind_opts o;
  memset(&o, 0, sizeof o);
  o.url = ll_field(L, "url", 1);
  o.base_dn = ll_field(L, "base_dn", 1);
  o.user_attr = ll_field(L, "user_attr", 0);
  o.bind_dn = ll_field(L, "bind_dn", 0);
  o.bind_password = ll_field(L, "bind_password", 0);
  o.group_base_dn = ll_field(L, "group_base_dn", 0);
  if (o.user_attr == NULL) o.user_attr = "uid";
  for (const char *c = o.user_attr; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-') ||
        c - o.user_attr > 64)
      luaL_error(L, "bad argument #1 to 'verify' (user_attr must be an attribute name)");
  lua_getfield(L, 1, "timeout_ms");
  lua_Integer t = luaL_optinteger(L, -1, 5000);
  if (t < 1 || t > 600000) luaL_error(L, "bad argument #1 to 'verify' (timeout_ms must be 1 to 600000)");
  o.timeout_ms = (int)t;
  const ldapapi *api = ll_api(L);
  lua_createtable(L, 0, 2);
  lua_newtable(L); /* the groups, filled by ll_on_group */
  char dn[1024], err[512];
  int rc = ldapbind_verify(api, &o, name, nlen, pw, plen, dn, sizeof dn, ll_on_group, L, err, sizeof err);
  if (rc != LDAPBIND_OK) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushstring(L, rc == LDAPBIND_REFUSED ? "EAUTH" : rc == LDAPBIND_DOWN ? "EUNAVAILABLE" : "EINVAL");
    return 3;
  }
  lua_setfield(L, -2, "groups");
  lua_pushstring(L, dn);
  lua_setfield(L, -2, "dn");
  return 1;
}

static const luaL_Reg ll_funcs[] = {
    {"verify", ll_verify},
    {NULL, NULL},
};

int luaopen_orket_ldap(lua_State *L) {
  luaL_newlibtable(L, ll_funcs);
  ldapapi *api = lua_newuserdatauv(L, sizeof *api, 0);
  memset(api, 0, sizeof *api);
  luaL_setfuncs(L, ll_funcs, 1);
  return 1;
}
