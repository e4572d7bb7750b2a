/* lstatemachine.c: Lua module `orket.c.statemachine`, the thin binding of statemachine.h:
 * check(...) decides one transition; statuses/types/reasons/codes/transitions expose the
 * tables so the board, the gate and the doc test read the same data. */
#include <lauxlib.h>
#include <lua.h>

#include "modules.h"
#include "statemachine.h"

#define SML_MAX_ROLES 32

/* Argument i: a string or nil (NULL). */
static const char *sml_optstring(lua_State *L, int i, const char *name) {
  int ty = lua_type(L, i);
  if (ty == LUA_TSTRING) return lua_tostring(L, i);
  if (ty != LUA_TNIL && ty != LUA_TNONE)
    luaL_error(L, "bad argument #%d to 'check' (%s must be a string)", i, name);
  return NULL;
}

/* check(type, from, to, seat, roles, by, reason, worked_by, deps_done)
 *   roles: {...} | nil; by: "agent" (also nil), "engine" or "person"; deps_done: nil counts
 *   as true. Positional rather than a table: the board checks every move it makes, and a
 *   request table of nine fields per check was garbage.
 *   -> true | nil, message, CODE */
static int sml_check(lua_State *L) {
  sm_request rq = {0};
  const char *roles[SML_MAX_ROLES];
  rq.type = sml_optstring(L, 1, "type");
  rq.from = sml_optstring(L, 2, "from");
  rq.to = sml_optstring(L, 3, "to");
  rq.seat = sml_optstring(L, 4, "seat");
  const char *by = sml_optstring(L, 6, "by");
  rq.reason = sml_optstring(L, 7, "reason");
  rq.worked_by = sml_optstring(L, 8, "worked_by");
  if (by != NULL) {
    int b = sm_by_parse(by);
    if (b < 0) return luaL_argerror(L, 6, "by must be \"agent\", \"engine\" or \"person\"");
    rq.by = (sm_by)b;
  }
  rq.deps_done = lua_isnoneornil(L, 9) ? 1 : lua_toboolean(L, 9);
  int ty = lua_type(L, 5); /* the roles table is an argument: it anchors the role strings */
  if (ty == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, 5);
    luaL_argcheck(L, n <= SML_MAX_ROLES, 5, "too many roles (at most 32)");
    for (lua_Integer i = 1; i <= n; i++) {
      if (lua_rawgeti(L, 5, i) != LUA_TSTRING)
        return luaL_error(L, "bad argument #5 to 'check' (roles[%d] must be a string)", (int)i);
      roles[rq.nroles++] = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
  } else if (ty != LUA_TNIL && ty != LUA_TNONE) {
    return luaL_argerror(L, 5, "roles must be a table");
  }
  rq.roles = roles;
  sm_verdict v;
  if (sm_check(&rq, &v)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, v.message);
  lua_pushstring(L, v.code);
  return 3;
}

static int sml_names(lua_State *L, const char *(*name)(int)) {
  lua_newtable(L);
  for (int i = 0; name(i) != NULL; i++) {
    lua_pushstring(L, name(i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}
static int sml_statuses(lua_State *L) { return sml_names(L, sm_status_name); }
static int sml_types(lua_State *L) { return sml_names(L, sm_type_name); }
static int sml_reasons(lua_State *L) { return sml_names(L, sm_reason_name); }

static int sml_codes(lua_State *L) {
  lua_newtable(L);
  for (int i = 0; sm_codes[i]; i++) {
    lua_pushstring(L, sm_codes[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* remedy(code) -> what to do about that refusal | nil for an unknown code */
static int sml_remedy(lua_State *L) {
  const char *r = sm_remedy(luaL_checkstring(L, 1));
  if (r) lua_pushstring(L, r);
  else lua_pushnil(L);
  return 1;
}

/* transitions(type) -> {from = {to, ...}} in status order (archived included) */
static int sml_transitions(lua_State *L) {
  int type = sm_type_parse(luaL_checkstring(L, 1));
  luaL_argcheck(L, type >= 0, 1, "unknown card type (rock, epic or issue)");
  lua_newtable(L);
  for (int f = 0; f < SM_NSTATUS; f++) {
    lua_newtable(L);
    int n = 0;
    for (int t = 0; t < SM_NSTATUS; t++) {
      if (!sm_allowed((sm_type)type, (sm_status)f, (sm_status)t)) continue;
      lua_pushstring(L, sm_status_name(t));
      lua_rawseti(L, -2, ++n);
    }
    lua_setfield(L, -2, sm_status_name(f));
  }
  return 1;
}

/* needs_reason(status) -> bool */
static int sml_needs_reason(lua_State *L) {
  int s = sm_status_parse(luaL_checkstring(L, 1));
  luaL_argcheck(L, s >= 0, 1, "unknown status");
  lua_pushboolean(L, sm_needs_reason((sm_status)s));
  return 1;
}

static const luaL_Reg sml_funcs[] = {
    {"check", sml_check},
    {"statuses", sml_statuses},
    {"types", sml_types},
    {"reasons", sml_reasons},
    {"codes", sml_codes},
    {"remedy", sml_remedy},
    {"transitions", sml_transitions},
    {"needs_reason", sml_needs_reason},
    {NULL, NULL},
};

int luaopen_orket_statemachine(lua_State *L) {
  luaL_newlib(L, sml_funcs);
  lua_pushliteral(L, SM_REVIEWER_ROLE);
  lua_setfield(L, -2, "REVIEWER_ROLE");
  return 1;
}
