/* ljsonout.c: Lua module `orket.c.jsonout`: encode(v, array_mt), the walk behind
 * orket.jsonout.encode (see lua/orket/jsonout.lua for the format's rules: sorted keys,
 * arrays, shapes). The bytes of strings and numbers are jsonout.c's. In Lua the walk cost
 * a whole board's JSON several times the read of its rows. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "jsonout.h"
#include "ljsonout.h"
#include "modules.h"

#define LJO_BUF "orket.jsonout.buf"
#define LJO_MAX_DEPTH 1000 /* lua-cjson's limit too: deeper is a cycle or a mistake */

/* A buffer userdata: the bytes, and how many readers outside Lua hold them (ljo_pin). */
typedef struct ljo_ubuf {
  jsonout_buf b; /* first: a pointer to it is one to the userdata */
  int pins;
} ljo_ubuf;

/* The output buffer lives in a userdata, so an error half-way through frees it (__gc).
 * A pinned buffer is collected only with the request that pins it, whose finalizer runs
 * first (Lua calls them in the reverse order they were set) and unpins it. */
static int ljo_buf_gc(lua_State *L) {
  jsonout_free(luaL_checkudata(L, 1, LJO_BUF));
  return 0;
}

/* buf:free(): refused while a request sends the bytes, which would read freed memory */
static int ljo_buf_free(lua_State *L) {
  ljo_ubuf *u = luaL_checkudata(L, 1, LJO_BUF);
  if (u->pins > 0) return luaL_error(L, "jsonout: the buffer is being sent by %d request(s); close them first", u->pins);
  jsonout_free(&u->b);
  return 0;
}

static int ljo_buf_text(lua_State *L) {
  jsonout_buf *b = luaL_checkudata(L, 1, LJO_BUF);
  lua_pushlstring(L, b->p ? b->p : "", b->len);
  return 1;
}

static int ljo_buf_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)((jsonout_buf *)luaL_checkudata(L, 1, LJO_BUF))->len);
  return 1;
}

static const luaL_Reg ljo_buf_meta[] = {
    {"__gc", ljo_buf_gc},
    {"__len", ljo_buf_len},
    {NULL, NULL},
};

static const luaL_Reg ljo_buf_methods[] = {
    {"text", ljo_buf_text},
    {"free", ljo_buf_free},
    {NULL, NULL},
};

/* the buffers' metatable, made at the first use by any binding */
static void ljo_buf_meta_push(lua_State *L) {
  if (luaL_newmetatable(L, LJO_BUF)) {
    luaL_setfuncs(L, ljo_buf_meta, 0);
    luaL_newlib(L, ljo_buf_methods);
    lua_setfield(L, -2, "__index");
  }
}

jsonout_buf *ljo_pushbuf(lua_State *L) {
  ljo_ubuf *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  ljo_buf_meta_push(L);
  lua_setmetatable(L, -2);
  return &u->b;
}

jsonout_buf *ljo_testbuf(lua_State *L, int i) { return luaL_testudata(L, i, LJO_BUF); }

void ljo_pin(lua_State *L, int i, int delta) {
  ljo_ubuf *u = luaL_testudata(L, i, LJO_BUF);
  if (u) u->pins += delta;
}

typedef struct ljo_key {
  const char *s;
  size_t n;
} ljo_key;

static int ljo_key_cmp(const void *a, const void *b) {
  const ljo_key *x = a, *y = b;
  int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
  if (c != 0) return c;
  return (x->n > y->n) - (x->n < y->n);
}

typedef struct ljo_walk {
  jsonout_buf *b;
  int array_mt;   /* stack index of the array marker metatable */
  int encoded_mt; /* stack index of the encoded-text marker metatable (nil: none) */
} ljo_walk;

static void ljo_value(lua_State *L, ljo_walk *w, int v, int depth);

/* Raises "jsonout: ..." with no position: the message names what, the caller says where. */
static int ljo_fail(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lua_error(L);
}

static void ljo_scalar_string(lua_State *L, ljo_walk *w, int v) {
  size_t n;
  const char *s = lua_tolstring(L, v, &n);
  jsonout_string(w->b, s, n);
}

/* An object whose metatable lists its keys, sorted (jsonout.shape): no sort per object.
 * Its absent keys are left out, or written null when the metatable says nulls = true. */
static void ljo_shaped(lua_State *L, ljo_walk *w, int v, int mt, int depth) {
  lua_getfield(L, mt, "nulls");
  int nulls = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, mt, "keys"); /* v..mt keys */
  int keys = lua_gettop(L);
  lua_Integer nk = luaL_len(L, keys);
  int first = 1;
  jsonout_raw(w->b, "{", 1);
  for (lua_Integer i = 1; i <= nk; i++) {
    lua_rawgeti(L, keys, i); /* keys k */
    lua_pushvalue(L, -1);
    lua_gettable(L, v); /* keys k x */
    if (!lua_isnil(L, -1) || nulls) {
      if (!first) jsonout_raw(w->b, ",", 1);
      first = 0;
      ljo_scalar_string(L, w, -2);
      jsonout_raw(w->b, ":", 1);
      ljo_value(L, w, lua_gettop(L), depth + 1);
    }
    lua_pop(L, 2);
  }
  jsonout_raw(w->b, "}", 1);
  lua_pop(L, 1);
}

static void ljo_array(lua_State *L, ljo_walk *w, int v, lua_Integer n, int depth) {
  jsonout_raw(w->b, "[", 1);
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1) jsonout_raw(w->b, ",", 1);
    lua_geti(L, v, i);
    ljo_value(L, w, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
  jsonout_raw(w->b, "]", 1);
}

static void ljo_object(lua_State *L, ljo_walk *w, int v, int depth) {
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, v) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) ljo_fail(L, "jsonout: object keys must be strings");
    n++;
  }
  /* the keys' texts stay valid: each is a key of v, which is on the stack */
  ljo_key *k = lua_newuserdatauv(L, n ? n * sizeof *k : 1, 0);
  size_t i = 0;
  lua_pushnil(L);
  while (lua_next(L, v) != 0) {
    lua_pop(L, 1);
    k[i].s = lua_tolstring(L, -1, &k[i].n);
    i++;
  }
  qsort(k, n, sizeof *k, ljo_key_cmp);
  jsonout_raw(w->b, "{", 1);
  for (i = 0; i < n; i++) {
    if (i > 0) jsonout_raw(w->b, ",", 1);
    jsonout_string(w->b, k[i].s, k[i].n);
    jsonout_raw(w->b, ":", 1);
    lua_pushlstring(L, k[i].s, k[i].n);
    lua_rawget(L, v);
    ljo_value(L, w, lua_gettop(L), depth + 1);
    lua_pop(L, 1);
  }
  jsonout_raw(w->b, "}", 1);
  lua_pop(L, 1); /* the keys */
}

static void ljo_table(lua_State *L, ljo_walk *w, int v, int depth) {
  if (depth > LJO_MAX_DEPTH) ljo_fail(L, "jsonout: nested deeper than %d (a cycle?)", LJO_MAX_DEPTH);
  luaL_checkstack(L, 8, "jsonout: nested too deep");
  if (lua_getmetatable(L, v)) {
    int mt = lua_gettop(L);
    /* JSON text encoded before (jsonout.encoded), written as it is: a part made once and
     * sent in many documents costs its walk once */
    if (lua_rawequal(L, mt, w->encoded_mt)) {
      lua_pop(L, 1);
      lua_getfield(L, v, "text");
      size_t n;
      const char *text = lua_tolstring(L, -1, &n);
      if (lua_type(L, -1) != LUA_TSTRING || n == 0) ljo_fail(L, "jsonout: an encoded value without its text");
      jsonout_raw(w->b, text, n);
      lua_pop(L, 1);
      return;
    }
    lua_pushliteral(L, "keys");
    lua_rawget(L, mt);
    int shaped = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (shaped) {
      ljo_shaped(L, w, v, mt, depth);
      lua_pop(L, 1);
      return;
    }
    int marked = lua_rawequal(L, mt, w->array_mt);
    lua_pop(L, 1);
    if (marked) {
      ljo_array(L, w, v, luaL_len(L, v), depth);
      return;
    }
  }
  /* an array: elements at 1..n and nothing after n (as next(v, #v) == nil in Lua) */
  lua_Integer n = luaL_len(L, v);
  if (n > 0) {
    lua_pushinteger(L, n);
    if (lua_next(L, v) == 0) {
      ljo_array(L, w, v, n, depth);
      return;
    }
    lua_pop(L, 2);
  }
  ljo_object(L, w, v, depth);
}

static void ljo_value(lua_State *L, ljo_walk *w, int v, int depth) {
  switch (lua_type(L, v)) {
  case LUA_TNIL: jsonout_raw(w->b, "null", 4); break;
  case LUA_TLIGHTUSERDATA: /* cjson.null */
    if (lua_touserdata(L, v) != NULL) ljo_fail(L, "jsonout: cannot encode a userdata");
    jsonout_raw(w->b, "null", 4);
    break;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, v)) jsonout_raw(w->b, "true", 4);
    else jsonout_raw(w->b, "false", 5);
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, v)) /* every digit: an id past 2^53 comes back as it was sent */
      jsonout_integer(w->b, (long long)lua_tointeger(L, v));
    else if (jsonout_number(w->b, lua_tonumber(L, v)) != 0)
      ljo_fail(L, "jsonout: Cannot serialise number: must not be NaN or Infinity");
    break;
  case LUA_TSTRING: ljo_scalar_string(L, w, v); break;
  case LUA_TTABLE: ljo_table(L, w, v, depth); break;
  default: ljo_fail(L, "jsonout: cannot encode a %s", luaL_typename(L, v));
  }
}

/* encode(v, array_mt[, encoded_mt]) -> the JSON text of v; tables marked with encoded_mt
 * are written as their field text. Raises "jsonout: ..." for what JSON cannot hold
 * (functions, userdata, non-string keys of an object, NaN, nesting past 1000). */
static int ljo_encode(lua_State *L) {
  luaL_checkany(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 3);
  jsonout_buf *b = ljo_pushbuf(L);
  ljo_walk w = {b, 2, 3};
  ljo_value(L, &w, 1, 0);
  if (b->oom) return ljo_fail(L, "jsonout: out of memory");
  lua_pushlstring(L, b->p ? b->p : "", b->len);
  jsonout_free(b);
  return 1;
}

static const luaL_Reg ljo_funcs[] = {
    {"encode", ljo_encode},
    {NULL, NULL},
};

int luaopen_orket_jsonout(lua_State *L) {
  ljo_buf_meta_push(L);
  lua_pop(L, 1);
  luaL_newlib(L, ljo_funcs);
  return 1;
}
