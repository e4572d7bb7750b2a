/* lcard.c: Lua module `orket.c.card`: copy(c), the copy of a card that orket.card hands
 * to the board and the ready order. A copy is made for every read a caller may edit, six
 * or so a turn; walked field by field in Lua (next() called from the VM per field, each
 * field set twice to size the table) it cost about 16k machine instructions, here 9k. */
#include <lauxlib.h>
#include <lua.h>

#include "modules.h"

/* A card's fields that are set: its columns that are not NULL and depends_on, 14 or 15
 * in a usual card; one past this grows the copy once. */
#define LCARD_FIELDS 16

/* copy(c) -> a new table with every field of c (raw, as next() walks them; a field only a
 * metatable gives is not copied, and the copy has none) and its own depends_on array, its
 * entries up to the first nil (as ipairs reads it); raises when c.depends_on is not a
 * table. Cards come from the store and the ready order as plain tables. */
static int lcard_copy(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1); /* the slots below are absolute: extra arguments would shift them */
  lua_createtable(L, 0, LCARD_FIELDS);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, 2);
  }
  if (lua_getfield(L, 1, "depends_on") != LUA_TTABLE)
    return luaL_error(L, "card copy: depends_on is a %s, not a table", luaL_typename(L, -1));
  lua_createtable(L, (int)lua_rawlen(L, 3), 0);
  for (lua_Integer i = 1; lua_rawgeti(L, 3, i) != LUA_TNIL; i++)
    lua_rawseti(L, 4, i);
  lua_pop(L, 1); /* the nil that ended the list */
  lua_setfield(L, 2, "depends_on");
  lua_settop(L, 2);
  return 1;
}

int luaopen_orket_card(lua_State *L) {
  static const luaL_Reg fns[] = {{"copy", lcard_copy}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
