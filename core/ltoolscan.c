/* ltoolscan.c: Lua module `orket.c.toolscan`: the scan for tool-call candidates in a
 * model's text (toolscan.c) for Lua: scan(text) -> spans, truncated. Used by
 * lua/orket/toolcalls.lua. */
#include <lauxlib.h>
#include <lua.h>

#include "modules.h"
#include "toolscan.h"

/* scan(text) -> {{start=, stop=, status=, message=, err_at=}...}, truncated
 * start/stop are 1-based inclusive (string.sub positions). */
static int lt_scan(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  ts_result *r = lua_newuserdatauv(L, sizeof *r, 0); /* 1.5 KB: keep it off the C stack */
  toolscan_scan(text, n, r);
  lua_createtable(L, (int)r->n, 0);
  for (size_t i = 0; i < r->n; i++) {
    const ts_span *sp = &r->spans[i];
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, (lua_Integer)sp->start + 1);
    lua_setfield(L, -2, "start");
    lua_pushinteger(L, (lua_Integer)(sp->start + sp->len));
    lua_setfield(L, -2, "stop");
    static const char *const names[] = {"ok", "unterminated", "mismatch", "too_deep"};
    lua_pushstring(L, names[sp->status]);
    lua_setfield(L, -2, "status");
    if (sp->status != TS_OK) {
      lua_pushstring(L, toolscan_status_name(sp->status));
      lua_setfield(L, -2, "message");
      lua_pushinteger(L, (lua_Integer)sp->err_at + 1);
      lua_setfield(L, -2, "err_at");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_pushboolean(L, r->truncated);
  return 2;
}

static const luaL_Reg lt_funcs[] = {
    {"scan", lt_scan},
    {NULL, NULL},
};

int luaopen_orket_toolscan(lua_State *L) {
  luaL_newlib(L, lt_funcs);
  return 1;
}
