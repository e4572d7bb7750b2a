/* ljv.c: Lua values as schema.h's plain values (jv) for the bindings that hand Lua tables
 * to the C core (orket.c.gate, orket.c.schema): the conversion, with its caps on size and
 * depth, into an arena a userdata owns, so an error half-way leaks nothing. */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "ljv.h"

#define LJV_ARENA "orket.jv.arena"
#define LJV_MAX_NODES 100000          /* values in one converted table */
#define LJV_MAX_DEPTH 64              /* conversion depth; the schema's own cap is lower */

static int ljv_arena_gc(lua_State *L) {
  jv_arena *a = luaL_checkudata(L, 1, LJV_ARENA);
  jv_arena_free(a);
  return 0;
}

jv_arena *ljv_arena(lua_State *L) {
  jv_arena *a = lua_newuserdatauv(L, sizeof *a, 0);
  jv_arena_init(a, LJV_ARENA_LIMIT);
  luaL_setmetatable(L, LJV_ARENA);
  return a;
}

static int ljv_fail(ljv_conv *c, const char *where, const char *what) {
  snprintf(c->err, sizeof c->err, "%.200s: %.50s", where, what);
  return -1;
}

int ljv_tojv(lua_State *L, int idx, jv *out, ljv_conv *c, int depth, const char *where) {
  if (++c->nodes > LJV_MAX_NODES) return ljv_fail(c, where, "more than 100000 values");
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNIL: out->type = JV_NULL; return 0;
  case LUA_TLIGHTUSERDATA: /* cjson.null */
    if (lua_touserdata(L, idx) != NULL) return ljv_fail(c, where, "userdata is not plain data");
    out->type = JV_NULL;
    return 0;
  case LUA_TBOOLEAN: out->type = JV_BOOL; out->u.b = lua_toboolean(L, idx); return 0;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      out->type = JV_INT;
      out->u.i = (long long)lua_tointeger(L, idx);
    } else {
      out->type = JV_NUM;
      out->u.d = (double)lua_tonumber(L, idx);
    }
    return 0;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    out->type = JV_STR;
    out->n = n;
    out->u.s = jv_strdup(c->a, s, n);
    return out->u.s ? 0 : ljv_fail(c, where, "too large");
  }
  case LUA_TTABLE: break;
  default: return ljv_fail(c, where, "functions, userdata and threads are not plain data");
  }
  if (depth >= LJV_MAX_DEPTH) return ljv_fail(c, where, "nested deeper than 64 levels");
  luaL_checkstack(L, 4, "converting a table");
  size_t count = 0, len = lua_rawlen(L, idx);
  int all_int = 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || (size_t)lua_tointeger(L, -1) > len) all_int = 0;
    if (lua_type(L, -1) != LUA_TSTRING && !lua_isinteger(L, -1)) {
      lua_pop(L, 1);
      return ljv_fail(c, where, "table keys must be strings (objects) or 1..n (arrays)");
    }
    if (count > LJV_MAX_NODES) {
      lua_pop(L, 1);
      return ljv_fail(c, where, "more than 100000 values");
    }
  }
  if (count == 0) {
    out->type = JV_ARR;
    out->empty_table = 1;
    return 0;
  }
  int is_arr = all_int && count == len;
  out->type = is_arr ? JV_ARR : JV_OBJ;
  out->n = count;
  out->u.items = jv_alloc(c->a, count * sizeof(jv));
  if (!is_arr) {
    out->keys = jv_alloc(c->a, count * sizeof(char *));
    out->klens = jv_alloc(c->a, count * sizeof(size_t));
  }
  if (out->u.items == NULL || (!is_arr && (out->keys == NULL || out->klens == NULL)))
    return ljv_fail(c, where, "too large");
  char sub[256];
  if (is_arr) {
    for (size_t i = 0; i < count; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i + 1);
      snprintf(sub, sizeof sub, "%s[%zu]", where, i + 1);
      int r = ljv_tojv(L, -1, &out->u.items[i], c, depth + 1, sub);
      lua_pop(L, 1);
      if (r != 0) return -1;
    }
    return 0;
  }
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) { /* a mixed table: integer keys in an object */
      lua_pop(L, 2);
      return ljv_fail(c, where, "mixes list items and named fields");
    }
    size_t kl;
    const char *k = lua_tolstring(L, -2, &kl);
    out->keys[i] = jv_strdup(c->a, k, kl);
    out->klens[i] = kl;
    snprintf(sub, sizeof sub, "%s.%.64s", where, k);
    int r = out->keys[i] ? ljv_tojv(L, -1, &out->u.items[i], c, depth + 1, sub) : ljv_fail(c, sub, "too large");
    lua_pop(L, 1);
    if (r != 0) {
      lua_pop(L, 1);
      return -1;
    }
    i++;
  }
  return 0;
}

jv *ljv_check(lua_State *L, int idx, jv_arena *a, const char *what) {
  ljv_conv c = {a, 0, {0}};
  jv *v = jv_alloc(a, sizeof *v);
  if (v == NULL || ljv_tojv(L, idx, v, &c, 0, what) != 0)
    luaL_error(L, "bad %s (%s)", what, v ? c.err : "out of memory");
  return v;
}

void ljv_open(lua_State *L) {
  if (luaL_newmetatable(L, LJV_ARENA)) {
    lua_pushcfunction(L, ljv_arena_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}
