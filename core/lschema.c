/* lschema.c: Lua module `orket.c.schema`: the JSON schemas of the C core (schema.c) for
 * Lua: validate(schema, value [, limits]) and check_schema(schema [, name]), each true |
 * nil, msg, "ESCHEMA". The tables are converted by ljv.c. Used by the HTTP API's bodies,
 * the MCP server's arguments, the tools' parameters and lua/orket/gate.lua. */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "ljv.h"
#include "modules.h"
#include "schema.h"

/* true | nil, msg, "ESCHEMA": how schema validation and checking report back. */
static int ls_result(lua_State *L, int ok, const schema_err *e) {
  if (ok) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, e->msg);
  lua_pushliteral(L, "ESCHEMA");
  return 3;
}

/* validate(schema, value [, {max_depth=, max_string=, max_items=}]) -> true | nil, msg, "ESCHEMA" */
static int ls_validate(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  schema_limits lim = SCHEMA_DEFAULT_LIMITS;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "max_depth");
    lim.max_depth = (int)luaL_optinteger(L, -1, lim.max_depth);
    lua_getfield(L, 3, "max_string");
    lim.max_string = (size_t)luaL_optinteger(L, -1, (lua_Integer)lim.max_string);
    lua_getfield(L, 3, "max_items");
    lim.max_items = (size_t)luaL_optinteger(L, -1, (lua_Integer)lim.max_items);
    lua_pop(L, 3);
  }
  jv_arena *a = ljv_arena(L);
  jv *schema = ljv_check(L, 1, a, "schema");
  ljv_conv c = {a, 0, {0}};
  jv value;
  memset(&value, 0, sizeof value);
  schema_err e;
  int ok;
  if (ljv_tojv(L, 2, &value, &c, 0, "args") != 0) {
    snprintf(e.msg, sizeof e.msg, "%s", c.err);
    ok = 0;
  } else {
    ok = schema_validate(schema, &value, &lim, &e) == 0;
  }
  jv_arena_free(a);
  return ls_result(L, ok, &e);
}

/* check_schema(schema [, name]) -> true | nil, msg, "ESCHEMA" */
static int ls_check(lua_State *L) {
  luaL_checkany(L, 1);
  const char *name = luaL_optstring(L, 2, "parameters");
  jv_arena *a = ljv_arena(L);
  ljv_conv c = {a, 0, {0}};
  jv schema;
  memset(&schema, 0, sizeof schema);
  schema_err e;
  int ok;
  if (ljv_tojv(L, 1, &schema, &c, 0, name) != 0) {
    snprintf(e.msg, sizeof e.msg, "%s", c.err);
    ok = 0;
  } else {
    ok = schema_check(&schema, name, &e) == 0;
  }
  jv_arena_free(a);
  return ls_result(L, ok, &e);
}

static const luaL_Reg ls_funcs[] = {
    {"validate", ls_validate},
    {"check_schema", ls_check},
    {NULL, NULL},
};

int luaopen_orket_schema(lua_State *L) {
  ljv_open(L);
  luaL_newlib(L, ls_funcs);
  return 1;
}
