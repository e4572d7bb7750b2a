/* linert.c: Lua module `orket.c.inert`: decode(s, i), valid(s), chars(s) and invisible(cp),
 * inert.c's rules for orket.inert, so the terminal's rules and the printed JSON's
 * (jsonout.c) are one implementation, and so are the schema checker's character count
 * and the CLI's. */
#include <lauxlib.h>
#include <lua.h>

#include "inert.h"
#include "modules.h"

/* decode(s, i) -> length, code point of the strictly valid UTF-8 sequence at byte i of s
 * (a sequence of 2 to 4 bytes) | nil. */
static int linert_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer i = luaL_checkinteger(L, 2);
  luaL_argcheck(L, i >= 1 && (size_t)i <= n, 2, "out of range");
  uint32_t cp;
  int len = inert_decode((const unsigned char *)s + i - 1, n - (size_t)(i - 1), &cp);
  if (len == 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, len);
  lua_pushinteger(L, (lua_Integer)cp);
  return 2;
}

/* valid(s) -> whether s is all strictly valid UTF-8 (inert_valid) */
static int linert_valid(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, inert_valid(s, n));
  return 1;
}

/* chars(s) -> s's length in characters (inert_chars: code points, a byte that is not UTF-8
 * as one) */
static int linert_chars(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushinteger(L, (lua_Integer)inert_chars(s, n));
  return 1;
}

/* invisible(cp) -> whether code point cp is shown escaped (see inert.h) */
static int linert_invisible(lua_State *L) {
  lua_Integer cp = luaL_checkinteger(L, 1);
  lua_pushboolean(L, cp >= 0 && cp <= 0x10ffff && inert_invisible((uint32_t)cp));
  return 1;
}

static const luaL_Reg linert_funcs[] = {
    {"chars", linert_chars},
    {"decode", linert_decode},
    {"invisible", linert_invisible},
    {"valid", linert_valid},
    {NULL, NULL},
};

int luaopen_orket_inert(lua_State *L) {
  luaL_newlib(L, linert_funcs);
  return 1;
}
