/* lhealth.c: Lua module `orket.c.health`, the binding of health.c (orket serve's GET
 * /health answered inside libmicrohttpd's callback). new{...} -> health, handed to a
 * server with srv:quick({"/health"}, health); health:stats() -> count, sum, {counts};
 * line(...) -> a request's log line, the format /health's is written in (for every route).
 * Each answer's log line goes to the log function given, on the main thread, protected:
 * its error is reported, never thrown into libmicrohttpd. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "health.h"
#include "lhealth.h"
#include "lratelimit.h"
#include "modules.h"
#include "runtime.h"

#define LHL_MT "orket.health"

typedef struct lhl {
  health *hl;    /* NULL once closed */
  lua_State *L;  /* the main thread, where the log function runs */
  uv_loop_t *loop;
  int log_ref;   /* the log function */
  int lim_ref;   /* the limiter, kept while hl borrows it */
  int *lim_lent; /* its count of borrowers, given back at close (lrl_lend) */
  jsonout_buf line;
  health_stats last; /* the counts at close: /metrics may still be read after the stop */
} lhl;


/* From inside libmicrohttpd: nothing may be thrown past here. */
static void lhl_on_quick(httpd_quick *q, void *ud) {
  lhl *u = ud;
  if (u->hl == NULL || !health_answer(u->hl, q, (double)uv_now(u->loop), &u->line)) return;
  if (u->line.oom || u->line.len == 0) return;
  lua_State *L = u->L;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, u->log_ref);
  lua_pushlstring(L, u->line.p, u->line.len);
  if (rt_pcall(L, 1, 0) != LUA_OK) rt_report(rt_get(L), L);
  lua_settop(L, top);
}

int lhealth_test(lua_State *L, int i, httpd_quick_fn *fn, void **ud) {
  lhl *u = luaL_testudata(L, i, LHL_MT);
  if (u == NULL) return 0;
  *fn = lhl_on_quick;
  *ud = u;
  return 1;
}

/* Field name of the options at 1, read raw: what is read stays in the table, which keeps
 * the strings the caller holds pointers to (an __index could hand out fresh values that
 * nothing keeps). */
static int lhl_field(lua_State *L, const char *name) {
  lua_pushstring(L, name);
  return lua_rawget(L, 1);
}

/* The strings of the list in field name (at most max), pointers into the table. */
static size_t lhl_strings(lua_State *L, const char *name, const char **out, size_t max) {
  lhl_field(L, name);
  size_t n = 0;
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1)) luaL_error(L, "bad argument #1 to 'new' (%s: a list of strings expected)", name);
    size_t len = lua_rawlen(L, -1);
    if (len > max) luaL_error(L, "bad argument #1 to 'new' (%s: at most %d)", name, (int)max);
    for (size_t i = 1; i <= len; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i);
      if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "bad argument #1 to 'new' (%s[%d]: a string expected)", name, (int)i);
      out[n++] = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return n;
}

static const char *lhl_optstring(lua_State *L, const char *name, size_t *len) {
  if (lhl_field(L, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "bad argument #1 to 'new' (%s: a string expected)", name);
  const char *s = lua_tolstring(L, -1, len);
  lua_pop(L, 1); /* the table keeps it */
  return s;
}

/* new{headers=, body=, cors=, cors_expose=, app_base=, buckets=, by_addr=, log=} (see
 * health.h; by_addr an orket.c.ratelimit limiter, log a function(line)) -> health */
static int lhl_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  health_opts o;
  memset(&o, 0, sizeof o);
  const char *headers[HEALTH_MAX_HEADERS];
  o.headers = headers;
  o.nheaders = lhl_strings(L, "headers", headers, HEALTH_MAX_HEADERS);
  /* as many origins as serve.cors lists: their pointers in a userdata left on the stack */
  lhl_field(L, "cors");
  size_t ncors = lua_istable(L, -1) ? lua_rawlen(L, -1) : 0;
  lua_pop(L, 1);
  if (ncors > HEALTH_MAX_CORS) return luaL_error(L, "bad argument #1 to 'new' (cors: at most %d)", HEALTH_MAX_CORS);
  const char **cors = lua_newuserdatauv(L, (ncors ? ncors : 1) * sizeof *cors, 0);
  o.cors = cors;
  o.ncors = lhl_strings(L, "cors", cors, ncors);
  o.body = lhl_optstring(L, "body", &o.len);
  if (o.body == NULL) return luaL_error(L, "bad argument #1 to 'new' (body: a string expected)");
  o.cors_expose = lhl_optstring(L, "cors_expose", NULL);
  o.app_base = lhl_optstring(L, "app_base", NULL);
  double buckets[HEALTH_MAX_BUCKETS];
  lhl_field(L, "buckets");
  luaL_argexpected(L, lua_istable(L, -1), 1, "buckets: a list of numbers");
  lua_Integer nb = (lua_Integer)lua_rawlen(L, -1);
  luaL_argcheck(L, nb <= HEALTH_MAX_BUCKETS, 1, "buckets: at most 32");
  for (lua_Integer i = 1; i <= nb; i++) {
    lua_rawgeti(L, -1, i);
    int isnum;
    buckets[i - 1] = lua_tonumberx(L, -1, &isnum);
    if (!isnum) return luaL_error(L, "bad argument #1 to 'new' (buckets[%d]: a number expected)", (int)i);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  o.buckets = buckets;
  o.nbuckets = (size_t)nb;
  lhl_field(L, "log");
  luaL_argexpected(L, lua_isfunction(L, -1), 1, "log: a function");
  lhl_field(L, "by_addr"); /* at -1, the log function at -2 */
  if (luaL_testudata(L, -1, "orket.ratelimit") == NULL)
    return luaL_error(L, "bad argument #1 to 'new' (by_addr: a limiter of orket.c.ratelimit expected)");
  lrl_check(L, lua_gettop(L)); /* open: lent below, once nothing can fail */
  lhl *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u); /* created closed, then the resource */
  u->log_ref = u->lim_ref = LUA_NOREF;
  luaL_setmetatable(L, LHL_MT);
  const char *err;
  o.by_addr = lrl_check(L, lua_gettop(L) - 1);
  u->hl = health_new(&o, &err);
  if (u->hl == NULL) return luaL_error(L, "bad argument #1 to 'new' (%s)", err);
  lrl_lend(L, lua_gettop(L) - 1, &u->lim_lent);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  u->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  u->loop = &rt_get(L)->loop;
  lua_pushvalue(L, -2);
  u->lim_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -3);
  u->log_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

/* health:stats() -> count, sum (seconds), {count per bucket, not cumulative} */
static int lhl_stats(lua_State *L) {
  lhl *u = luaL_checkudata(L, 1, LHL_MT);
  const health_stats *s = u->hl ? health_stats_of(u->hl) : &u->last;
  lua_pushinteger(L, (lua_Integer)s->count);
  lua_pushnumber(L, s->sum);
  lua_createtable(L, HEALTH_MAX_BUCKETS, 0);
  for (int i = 0; i < HEALTH_MAX_BUCKETS; i++) {
    lua_pushinteger(L, (lua_Integer)s->counts[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 3;
}

static int lhl_close(lua_State *L) {
  lhl *u = luaL_checkudata(L, 1, LHL_MT);
  if (u->hl) u->last = *health_stats_of(u->hl);
  health_free(u->hl);
  u->hl = NULL;
  if (u->lim_lent) (*u->lim_lent)--; /* the limiter, still referenced here, may close now */
  u->lim_lent = NULL;
  jsonout_free(&u->line);
  luaL_unref(L, LUA_REGISTRYINDEX, u->log_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, u->lim_ref);
  u->log_ref = u->lim_ref = LUA_NOREF;
  return 0;
}

static int lhl_tostring(lua_State *L) {
  lhl *u = luaL_checkudata(L, 1, LHL_MT);
  lua_pushstring(L, u->hl ? "health" : "health (closed)");
  return 1;
}

/* Upvalue 1 of line: a buffer kept between lines (no allocation per request's line). */
static int lhl_buf_gc(lua_State *L) {
  jsonout_free(lua_touserdata(L, 1));
  return 0;
}

/* line(addr, auth, key, method, note, project, route, status, t, us, via) -> a request's log line (see
 * health.h), the fields in their sorted order: nil leaves one out, cjson.null writes null;
 * each a string, a number, a boolean or cjson.null (another value raises). Its bytes are
 * jsonout.encode's of the same fields. */
static int lhl_line(lua_State *L) {
  health_value v[HEALTH_LINE_FIELDS];
  for (int i = 0; i < HEALTH_LINE_FIELDS; i++) {
    int a = i + 1;
    v[i] = (health_value){HEALTH_ABSENT, NULL, 0, 0};
    switch (lua_type(L, a)) {
    case LUA_TNONE:
    case LUA_TNIL: break;
    case LUA_TSTRING: v[i].kind = HEALTH_STRING, v[i].s = lua_tolstring(L, a, &v[i].n); break;
    case LUA_TNUMBER: v[i].kind = HEALTH_NUMBER, v[i].d = lua_tonumber(L, a); break;
    case LUA_TBOOLEAN: v[i].kind = lua_toboolean(L, a) ? HEALTH_TRUE : HEALTH_FALSE; break;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, a) == NULL) {
        v[i].kind = HEALTH_NULL;
        break;
      }
      /* fall through */
    default: return luaL_typeerror(L, a, "string, number, boolean or cjson.null");
    }
  }
  jsonout_buf *b = lua_touserdata(L, lua_upvalueindex(1));
  b->len = 0;
  b->oom = 0;
  if (health_line_write(b, v) != 0) return luaL_error(L, "a log line's number must not be NaN or infinite");
  if (b->oom) return luaL_error(L, "out of memory");
  lua_pushlstring(L, b->p, b->len);
  if (b->cap > 4096) jsonout_free(b); /* a long line's buffer is not kept */
  return 1;
}

static const luaL_Reg lhl_methods[] = {
    {"stats", lhl_stats},
    {"close", lhl_close},
    {NULL, NULL},
};

static const luaL_Reg lhl_meta[] = {
    {"__gc", lhl_close},
    {"__close", lhl_close},
    {"__tostring", lhl_tostring},
    {NULL, NULL},
};

static const luaL_Reg lhl_funcs[] = {
    {"new", lhl_new},
    {NULL, NULL},
};

int luaopen_orket_health(lua_State *L) {
  if (luaL_newmetatable(L, LHL_MT)) {
    luaL_setfuncs(L, lhl_meta, 0);
    luaL_newlib(L, lhl_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, lhl_funcs);
  jsonout_buf *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, lhl_buf_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pushcclosure(L, lhl_line, 1);
  lua_setfield(L, -2, "line");
  return 1;
}
