/* lotlpspan.c: Lua module `orket.c.otlpspan`: writer() -> a buffer of spans in OTLP's JSON
 * (otlpspan.c), which orket.otel writes each span into as it ends; attributes() -> an
 * attribute list's JSON, by the same rules. The buffer's bytes are
 * malloc'd, not the Lua heap's: a span written costs the collector nothing. */
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "ljsonout.h"
#include "modules.h"
#include "otlpspan.h"

#define LOS_WRITER "orket.otlpspan.writer"

typedef struct los_writer {
  jsonout_buf b;
  lua_Integer count; /* spans in b */
  int open;          /* a span is being written: b past mark holds a part of it */
  size_t mark;       /* b's length before that span */
  size_t last;       /* where the last whole span starts in b (its comma included) */
} los_writer;

/* The writer's text ends with whole spans: a span whose writing raised (an error no check
 * foresaw) is cut off at the next use, so no later batch holds half of it. */
static los_writer *los_check(lua_State *L) {
  los_writer *w = luaL_checkudata(L, 1, LOS_WRITER);
  if (w->open) {
    w->b.len = w->mark;
    w->open = 0;
  }
  return w;
}

static uint64_t los_u64(lua_State *L, int i) { return (uint64_t)luaL_checkinteger(L, i); }

/* a time in nanoseconds since the epoch: OTLP's fields are unsigned (fixed64) */
static int64_t los_time(lua_State *L, int i, const char *what) {
  lua_Integer t = luaL_checkinteger(L, i);
  luaL_argcheck(L, t >= 0, i, what);
  return (int64_t)t;
}

/* the OTLP value of the Lua value at i, one of a string, number or boolean (los_span
 * checked them all before it wrote anything) */
static void los_value(lua_State *L, int i, otlp_value *v) {
  switch (lua_type(L, i)) {
  case LUA_TBOOLEAN:
    v->type = OTLP_BOOL;
    v->i = lua_toboolean(L, i);
    return;
  case LUA_TNUMBER:
    if (lua_isinteger(L, i)) {
      v->type = OTLP_INT;
      v->i = (int64_t)lua_tointeger(L, i);
    } else {
      v->type = OTLP_DOUBLE;
      v->d = (double)lua_tonumber(L, i);
    }
    return;
  default:
    v->type = OTLP_STRING;
    v->s = lua_tolstring(L, i, &v->len);
    return;
  }
}

/* Raises for the first attribute that cannot be written: a value that is not a string,
 * number or boolean, or a key that is not a string. Run before the first byte is written,
 * so a refused span or list leaves nothing behind. keys, values: stack indexes. */
static void los_check_attributes(lua_State *L, int keys, int values, lua_Integer n) {
  for (lua_Integer i = 1; i <= n; i++) {
    int vt = lua_rawgeti(L, values, i);
    lua_pop(L, 1);
    if (vt == LUA_TNIL) continue;
    if (vt != LUA_TSTRING && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN)
      luaL_error(L, "otlpspan: values[%d] is a %s (a string, number or boolean expected)", (int)i,
                 lua_typename(L, vt));
    int kt = lua_rawgeti(L, keys, i);
    lua_pop(L, 1);
    if (kt != LUA_TSTRING) luaL_error(L, "otlpspan: key %d is not a string", (int)i);
  }
}

/* Writes keys[i] = values[i] for i in 1..n (nil values left out), comma-separated; the
 * attributes were checked (los_check_attributes), so nothing here raises. */
static void los_write_attributes(lua_State *L, jsonout_buf *b, int keys, int values, lua_Integer n) {
  int top = lua_gettop(L);
  int first = 1;
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, values, i) == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_rawgeti(L, keys, i);
    size_t kn;
    const char *k = lua_tolstring(L, -1, &kn);
    otlp_value v;
    los_value(L, -2, &v);
    otlp_attribute(b, first, k, kn, &v);
    first = 0;
    lua_settop(L, top);
  }
}

/* w:span(name, trace_hi, trace_lo, span_id, parent_id|nil, kind, start_ns, end_ns, status,
 * keys, values, n): appends one span. kind: a SpanKind, 0..5; times: nanoseconds since the
 * epoch, not negative. status: nil or false for OK, true for ERROR, a string for ERROR
 * with that message. Attribute i is keys[i] = values[i], for i in 1..n, left out where
 * values[i] is nil; values are strings, numbers or booleans. A bad argument raises and
 * writes nothing. Returns the count of spans written since the last take, and their text's
 * length in bytes (a request's body is that and the text around it: orket.otel caps it). */
static int los_span(lua_State *L) {
  los_writer *w = los_check(L);
  otlp_span sp = {0};
  sp.name = luaL_checklstring(L, 2, &sp.name_len);
  sp.trace_hi = los_u64(L, 3);
  sp.trace_lo = los_u64(L, 4);
  sp.span_id = los_u64(L, 5);
  sp.has_parent = !lua_isnoneornil(L, 6);
  if (sp.has_parent) sp.parent_id = los_u64(L, 6);
  lua_Integer kind = luaL_checkinteger(L, 7);
  luaL_argcheck(L, kind >= 0 && kind <= 5, 7, "kind must be a SpanKind, 0 to 5");
  sp.kind = (int)kind;
  sp.start_ns = los_time(L, 8, "start_ns must not be negative");
  sp.end_ns = los_time(L, 9, "end_ns must not be negative");
  if (lua_type(L, 10) == LUA_TSTRING) {
    sp.failed = 1;
    sp.message = lua_tolstring(L, 10, &sp.message_len);
  } else {
    sp.failed = lua_toboolean(L, 10);
  }
  luaL_checktype(L, 11, LUA_TTABLE);
  luaL_checktype(L, 12, LUA_TTABLE);
  lua_Integer n = luaL_checkinteger(L, 13);
  lua_settop(L, 13);
  los_check_attributes(L, 11, 12, n);
  w->mark = w->b.len;
  w->open = 1;
  if (w->count > 0) jsonout_raw(&w->b, ",", 1);
  otlp_span_begin(&w->b);
  los_write_attributes(L, &w->b, 11, 12, n);
  otlp_span_end(&w->b, &sp);
  w->open = 0;
  if (w->b.oom) {
    w->b.oom = 0;
    w->b.len = w->mark;
    return luaL_error(L, "otlpspan: out of memory");
  }
  w->last = w->mark;
  w->count++;
  lua_pushinteger(L, w->count);
  lua_pushinteger(L, (lua_Integer)w->b.len);
  return 2;
}

/* w:count() -> the spans written since the last take, and their text's length in bytes */
static int los_count(lua_State *L) {
  los_writer *w = los_check(L);
  lua_pushinteger(L, w->count);
  lua_pushinteger(L, (lua_Integer)w->b.len);
  return 2;
}

/* w:take(prefix, suffix[, hold_last]) -> a jsonout buffer (ljsonout.h) of prefix .. "[" ..
 * the spans .. "]" .. suffix, and the count of spans; empties the writer. hold_last: every
 * span but the last, which stays in the writer, the first of the next batch (the span that
 * made the batch's text pass orket.otel's cap on a request's size); it needs two spans.
 * The batch's bytes stay out of the Lua heap, sent as they are (http's request body). */
static int los_take(lua_State *L) {
  los_writer *w = los_check(L);
  size_t pn, sn;
  const char *p = luaL_checklstring(L, 2, &pn);
  const char *s = luaL_checklstring(L, 3, &sn);
  int hold = lua_toboolean(L, 4);
  if (hold && w->count < 2) return luaL_error(L, "otlpspan: take(hold_last) needs two spans (has %d)", (int)w->count);
  size_t upto = hold ? w->last : w->b.len;
  jsonout_buf *out = ljo_pushbuf(L);
  jsonout_raw(out, p, pn);
  jsonout_raw(out, "[", 1);
  if (upto > 0) jsonout_raw(out, w->b.p, upto);
  jsonout_raw(out, "]", 1);
  jsonout_raw(out, s, sn);
  if (out->oom) return luaL_error(L, "otlpspan: out of memory");
  lua_pushinteger(L, hold ? w->count - 1 : w->count);
  if (hold) { /* the last span, its comma left out, moves to the buffer's start */
    size_t from = w->last + 1;
    memmove(w->b.p, w->b.p + from, w->b.len - from);
    w->b.len -= from;
    w->count = 1;
    w->last = 0;
  } else {
    w->b.len = 0; /* its bytes are kept for the next batch */
    w->count = 0;
  }
  return 2;
}

/* attributes(keys, values, n) -> the JSON text of an OTLP attribute list: keys[i] =
 * values[i] for i in 1..n, nil values left out, each value as a span's (NaN and the
 * infinities as proto3 JSON's names). orket.otel's resource and metrics attributes, so
 * every attribute it exports follows one rule. */
static int los_attributes(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_checkinteger(L, 3);
  lua_settop(L, 3);
  los_check_attributes(L, 1, 2, n);
  jsonout_buf *b = ljo_pushbuf(L); /* freed by the collector if a push below raises */
  jsonout_raw(b, "[", 1);
  los_write_attributes(L, b, 1, 2, n);
  jsonout_raw(b, "]", 1);
  if (b->oom) return luaL_error(L, "otlpspan: out of memory");
  lua_pushlstring(L, b->p, b->len);
  jsonout_free(b);
  return 1;
}

static int los_gc(lua_State *L) {
  jsonout_free(&los_check(L)->b);
  return 0;
}

/* writer() -> an empty writer */
static int los_new(lua_State *L) {
  los_writer *w = lua_newuserdatauv(L, sizeof *w, 0);
  memset(w, 0, sizeof *w);
  luaL_setmetatable(L, LOS_WRITER);
  return 1;
}

static const luaL_Reg los_methods[] = {
    {"span", los_span},
    {"count", los_count},
    {"take", los_take},
    {NULL, NULL},
};

static const luaL_Reg los_funcs[] = {
    {"writer", los_new},
    {"attributes", los_attributes},
    {NULL, NULL},
};

int luaopen_orket_otlpspan(lua_State *L) {
  luaL_newmetatable(L, LOS_WRITER);
  luaL_newlib(L, los_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, los_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newlib(L, los_funcs);
  return 1;
}
