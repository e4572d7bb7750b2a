/* modules.h: the C modules the runtime preloads (`require "orket.c.<name>"`), one luaopen_
 * per binding file. Add a binding here and in modules.c. */
#ifndef ORKET_MODULES_H
#define ORKET_MODULES_H

#include <lua.h>

typedef struct orket_module {
  const char *name;
  lua_CFunction open;
} orket_module;

extern const orket_module orket_modules[];

int luaopen_orket_runtime(lua_State *L);
int luaopen_orket_scriptenv(lua_State *L);
int luaopen_orket_lineedit(lua_State *L);
int luaopen_orket_crypto(lua_State *L);
int luaopen_orket_seal(lua_State *L);
int luaopen_orket_auditchain(lua_State *L);
int luaopen_orket_statemachine(lua_State *L);
int luaopen_orket_card(lua_State *L);
int luaopen_orket_store(lua_State *L);
int luaopen_orket_workspace(lua_State *L);
int luaopen_orket_gate(lua_State *L);
int luaopen_orket_schema(lua_State *L);
int luaopen_orket_toolscan(lua_State *L);
int luaopen_orket_http(lua_State *L);
int luaopen_orket_httpd(lua_State *L);
int luaopen_orket_health(lua_State *L);
int luaopen_orket_ratelimit(lua_State *L);
int luaopen_orket_plain(lua_State *L);
int luaopen_orket_pattern(lua_State *L);
int luaopen_orket_lockfile(lua_State *L);
int luaopen_orket_gitrepo(lua_State *L);
int luaopen_orket_gitexport(lua_State *L);
int luaopen_orket_gitdiff(lua_State *L);
int luaopen_orket_proc(lua_State *L);
int luaopen_orket_pg(lua_State *L);
int luaopen_orket_jsonout(lua_State *L);
int luaopen_orket_inert(lua_State *L);
int luaopen_orket_otlpspan(lua_State *L);
int luaopen_orket_jose(lua_State *L);
int luaopen_orket_ldap(lua_State *L);
int luaopen_orket_sqlseed(lua_State *L);
int luaopen_orket_jsondup(lua_State *L);

#endif
