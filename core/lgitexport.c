/* lgitexport.c: Lua module `orket.c.gitexport`, a thin binding of gitexport.h: a commit's
 * tree written into a new directory. Synchronous, on the loop thread: a sandbox's tree is
 * written once, as its start. */
#include <lauxlib.h>
#include <lua.h>

#include "gitexport.h"
#include "modules.h"

/* The cap named name in the table at arg: a positive integer, else def. */
static lua_Integer lgx_cap(lua_State *L, int arg, const char *name, lua_Integer def) {
  if (lua_isnoneornil(L, arg)) return def;
  lua_getfield(L, arg, name);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int isint = 0;
    v = lua_tointegerx(L, -1, &isint);
    if (!isint || v <= 0) {
      lua_pushfstring(L, "field '%s' must be a positive integer", name);
      luaL_argerror(L, arg, lua_tostring(L, -1));
    }
  }
  lua_pop(L, 1);
  return v;
}

/* export(repo, rev, dest [, {files=, bytes=}]) -> commit, files, bytes | nil, message, CODE:
 * gitexport_tree. repo: the repository's working tree or git directory; rev: a commit id
 * or a branch name. Caps default to 50,000 files and 512 MiB. */
static int lgx_export(lua_State *L) {
  const char *repo = luaL_checkstring(L, 1);
  const char *rev = luaL_checkstring(L, 2);
  const char *dest = luaL_checkstring(L, 3);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  gx_caps caps = {.files = (size_t)lgx_cap(L, 4, "files", 50000),
                  .bytes = (unsigned long long)lgx_cap(L, 4, "bytes", 512LL * 1024 * 1024)};
  gx_result out;
  gx_err e;
  if (gitexport_tree(repo, rev, dest, &caps, &out, &e) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, e.msg);
    lua_pushstring(L, e.code);
    return 3;
  }
  lua_pushstring(L, out.commit);
  lua_pushinteger(L, (lua_Integer)out.files);
  lua_pushinteger(L, (lua_Integer)out.bytes);
  return 3;
}

static const luaL_Reg lgx_funcs[] = {
    {"export", lgx_export},
    {NULL, NULL},
};

int luaopen_orket_gitexport(lua_State *L) {
  luaL_newlib(L, lgx_funcs);
  return 1;
}
