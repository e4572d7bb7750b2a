/* ljsondup.c: Lua module `orket.c.jsondup`: duplicate_key(text), jsondup.c's check of a JSON
 * text for a key given twice in one object. */
#include <lauxlib.h>
#include <lua.h>

#include "jsondup.h"
#include "modules.h"

/* duplicate_key(text) -> offset, key (the first key given twice in one object: the bytes up
 * to the end of its second copy, and the key unescaped, cut to JSONDUP_KEY_MAX bytes with
 * "..." after) | nil (none) | false, message, offset (not
 * JSON, nested too deeply, out of memory; the bytes read up to it). */
static int ljsondup_duplicate_key(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  jsondup_result r;
  int st = jsondup_find(s, n, &r);
  if (st == JSONDUP_NONE) {
    lua_pushnil(L);
    return 1;
  }
  if (st == JSONDUP_ERROR) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, r.err);
    lua_pushinteger(L, (lua_Integer)r.offset);
    return 3;
  }
  lua_pushinteger(L, (lua_Integer)r.offset);
  if (r.key_len <= JSONDUP_KEY_MAX) {
    lua_pushlstring(L, r.key, r.key_len);
  } else {
    lua_pushlstring(L, r.key, JSONDUP_KEY_MAX);
    lua_pushliteral(L, "...");
    lua_concat(L, 2);
  }
  return 2;
}

static const luaL_Reg ljsondup_funcs[] = {
    {"duplicate_key", ljsondup_duplicate_key},
    {NULL, NULL},
};

int luaopen_orket_jsondup(lua_State *L) {
  luaL_newlib(L, ljsondup_funcs);
  return 1;
}
