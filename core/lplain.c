/* lplain.c: Lua module `orket.c.plain`: copy(v [, max_depth]), the plain-data copy behind
 * scriptenv.copy, and detach(v [, max_depth]), the same walk keeping functions, for what a
 * script file returns (a role, a tool, routing). Tables are walked with raw access
 * (lua_next, lua_rawset), so no metamethod of a script runs, and the copy has no
 * metatables; only strings, numbers, booleans and tables of them are data, within caps on
 * values and on bytes of strings (see below). It runs
 * several times a turn (the role's context in, its messages out, tool arguments and
 * results), which in Lua was a tenth of a turn. Pure Lua API: no state of its own. */
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>

#include "modules.h"

#define PLAIN_MAX_DEPTH 200 /* the deepest max_depth a caller may ask for */
/* Values one copy may make. A table that holds the same table twice, nested 30 deep, is a
 * few hundred bytes in the script and 2^30 tables in a copy: the walk stops well before. */
#define PLAIN_MAX_VALUES 1000000
/* Bytes of strings one copy may hand over, each string counted at every place it is
 * referenced: the copy shares a string, but whoever encodes the copy (the journal's JSON,
 * a model request) writes it out at each reference. 100,000 references to one 1 MiB string
 * are 1 MiB in the script and 100 GB of JSON, which the encoder (Debian's lua-cjson exits
 * the process when it cannot grow its buffer) must never be asked for. */
#define PLAIN_MAX_BYTES ((size_t)64 << 20)
#define PLAIN_MAX_BYTES_TEXT "more than 64 MiB of strings (each counted at every reference)"

typedef struct plain_walk {
  int max_depth;
  int keep_functions; /* detach: functions are values (they only ever run under a budget) */
  int no_metatables;  /* detach: a table with a metatable is refused, not silently flattened */
  long values;        /* made so far, against PLAIN_MAX_VALUES */
  size_t bytes;       /* of strings handed over so far, against PLAIN_MAX_BYTES */
  const void *path[PLAIN_MAX_DEPTH]; /* tables being copied, outermost first: cycles */
  char why[80];
} plain_walk;

static int plain_is_scalar(int t) {
  return t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN;
}

/* Counts the string at index i (if it is one) against PLAIN_MAX_BYTES: 0 when over. */
static int plain_count(lua_State *L, plain_walk *w, int i) {
  if (lua_type(L, i) != LUA_TSTRING) return 1;
  size_t len;
  lua_tolstring(L, i, &len);
  if (len > PLAIN_MAX_BYTES - w->bytes) return 0;
  w->bytes += len;
  return 1;
}

/* Failure: pushes the key path below the failing value ("" here) and returns 0. */
static int plain_fail(lua_State *L, plain_walk *w, const char *why) {
  snprintf(w->why, sizeof w->why, "%s", why);
  lua_pushliteral(L, "");
  return 0;
}

/* Copies the value at index v. Success: pushes the copy, returns 1. Failure: pushes the
 * key path (".a.1") and returns 0, with the reason in w->why. Nothing else is left. */
static int plain_copy(lua_State *L, plain_walk *w, int v, int depth) {
  int t = lua_type(L, v);
  if (++w->values > PLAIN_MAX_VALUES) return plain_fail(L, w, "more than 1000000 values");
  if (plain_is_scalar(t) || t == LUA_TNIL || (t == LUA_TFUNCTION && w->keep_functions)) {
    if (!plain_count(L, w, v)) return plain_fail(L, w, PLAIN_MAX_BYTES_TEXT);
    lua_pushvalue(L, v);
    return 1;
  }
  char why[64];
  if (t != LUA_TTABLE) {
    snprintf(why, sizeof why, "%s is not plain data", lua_typename(L, t));
    return plain_fail(L, w, why);
  }
  if (depth >= w->max_depth) {
    snprintf(why, sizeof why, "nested deeper than %d", w->max_depth);
    return plain_fail(L, w, why);
  }
  if (w->no_metatables && lua_getmetatable(L, v)) {
    lua_pop(L, 1);
    return plain_fail(L, w, "a table with a metatable; return plain tables");
  }
  const void *p = lua_topointer(L, v);
  for (int i = 0; i < depth; i++)
    if (w->path[i] == p) return plain_fail(L, w, "cycle");
  w->path[depth] = p;
  luaL_checkstack(L, 8, "plain data nested too deep");
  /* Sized from a first walk: filling a table created empty rehashes it at every power of
   * two, which for a card's twenty fields cost more than the walk. */
  lua_Unsigned n = lua_rawlen(L, v), total = 0;
  lua_pushnil(L);
  while (lua_next(L, v) != 0) {
    lua_pop(L, 1);
    total++;
  }
  if (n > total) n = total; /* a border past holes in the array part */
  lua_Unsigned rec = total - n;
  lua_createtable(L, n > 1 << 20 ? 1 << 20 : (int)n, rec > 1 << 20 ? 1 << 20 : (int)rec);
  int out = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, v) != 0) { /* out key val */
    int kt = lua_type(L, -2);
    if (!plain_is_scalar(kt)) {
      snprintf(why, sizeof why, "key of type %s", lua_typename(L, kt));
      lua_settop(L, out - 1);
      return plain_fail(L, w, why);
    }
    if (!plain_count(L, w, -2)) {
      lua_settop(L, out - 1);
      return plain_fail(L, w, PLAIN_MAX_BYTES_TEXT);
    }
    int vt = lua_type(L, -1);
    if (plain_is_scalar(vt) || (vt == LUA_TFUNCTION && w->keep_functions)) {
      if (++w->values > PLAIN_MAX_VALUES) {
        lua_settop(L, out - 1);
        return plain_fail(L, w, "more than 1000000 values");
      }
      if (!plain_count(L, w, -1)) {
        lua_settop(L, out - 1);
        return plain_fail(L, w, PLAIN_MAX_BYTES_TEXT);
      }
      lua_pushvalue(L, -2);
      lua_insert(L, -2); /* out key key val */
      lua_rawset(L, out);
      continue;
    }
    if (plain_copy(L, w, lua_gettop(L), depth + 1)) { /* out key val copy */
      lua_pushvalue(L, -3);
      lua_insert(L, -2); /* out key val key copy */
      lua_rawset(L, out);
      lua_pop(L, 1);
      continue;
    }
    /* out key val where: this level's key goes in front of the path below it */
    lua_pushliteral(L, ".");
    luaL_tolstring(L, -4, NULL);
    lua_pushvalue(L, -3);
    lua_concat(L, 3);
    lua_copy(L, -1, out);
    lua_settop(L, out);
    return 0;
  }
  return 1;
}

static int plain_walk_l(lua_State *L, int keep_functions, int no_metatables) {
  lua_Integer max_depth = luaL_optinteger(L, 2, 32);
  luaL_argcheck(L, max_depth >= 0 && max_depth <= PLAIN_MAX_DEPTH, 2, "must be from 0 to 200");
  lua_settop(L, 1);
  /* On the C stack, which a raise (memory, stack) abandons without a leak: a userdata per
   * call was 1.7 KB of garbage several times a turn. */
  plain_walk w;
  w.max_depth = (int)max_depth;
  w.keep_functions = keep_functions;
  w.no_metatables = no_metatables;
  w.values = 0;
  w.bytes = 0;
  w.why[0] = '\0';
  if (plain_copy(L, &w, 1, 0)) return 1;
  lua_pushnil(L);
  lua_pushfstring(L, "value%s: %s", lua_tostring(L, -2), w.why);
  return 2;
}

/* copy(v [, max_depth=32]) -> a plain-data copy of v | nil, "value.a.1: reason" */
static int plain_copy_l(lua_State *L) { return plain_walk_l(L, 0, 0); }

/* detach(v [, max_depth=32]) -> copy | nil, "value.a.1: reason": as copy, but functions
 * are kept (the same function values) and a table with a metatable is refused (its
 * __index or __pairs is behaviour the host will not run, and flattening it would load
 * something other than what the script meant). So a script's definition (a role, a
 * tool) is read by the host with ordinary indexing, pairs and # and no script code runs. */
static int plain_detach_l(lua_State *L) { return plain_walk_l(L, 1, 1); }

static const luaL_Reg plain_funcs[] = {
    {"copy", plain_copy_l},
    {"detach", plain_detach_l},
    {NULL, NULL},
};

int luaopen_orket_plain(lua_State *L) {
  luaL_newlib(L, plain_funcs);
  return 1;
}
