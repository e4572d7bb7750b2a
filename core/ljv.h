/* ljv.h: Lua values as schema.h's plain values (jv), shared by the bindings that give
 * Lua tables to the C core (lgate.c, lschema.c). Not a Lua module of its own. */
#ifndef ORKET_LJV_H
#define ORKET_LJV_H

#include <stddef.h>

#include <lua.h>

#include "schema.h"

#define LJV_ARENA_LIMIT (256u * 1024 * 1024)

/* A conversion in progress: the arena it allocates in, the values so far, why it failed. */
typedef struct ljv_conv {
  jv_arena *a;
  size_t nodes;
  char err[256];
} ljv_conv;

/* Registers the arena's metatable; each binding using these calls it from its luaopen. */
void ljv_open(lua_State *L);

/* Pushes a userdata owning a fresh arena (freed by __gc, or by jv_arena_free at once). */
jv_arena *ljv_arena(lua_State *L);

/* Converts the value at idx into *out: nil, booleans, numbers, strings and tables of them
 * (string keys: an object; keys 1..n: an array; {} an empty array), at most 100,000 values
 * and 64 levels. Returns 0, or -1 with c->err naming `where` (never raises except on Lua
 * memory errors, which the arena userdata survives). */
int ljv_tojv(lua_State *L, int idx, jv *out, ljv_conv *c, int depth, const char *where);

/* Converts a trusted table (a schema) or raises naming the argument `what`. */
jv *ljv_check(lua_State *L, int idx, jv_arena *a, const char *what);

#endif
