/* lratelimit.c: Lua module `orket.c.ratelimit`, the binding of ratelimit.c (token buckets
 * by name, bounded). new(rate, burst[, max]) -> limiter; limiter:take(name, now_ms) ->
 * true | false, retry_s; limiter:empty(name, now_ms) -> false | retry_s; limiter:count();
 * retry_after(tokens, rate) -> whole seconds. A name is a string or a number (as text). */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>

#include "lratelimit.h"
#include "modules.h"

#define LRL_MT "orket.ratelimit"

typedef struct lrl {
  ratelimit *rl; /* NULL once closed */
  int lent;      /* how many borrowers (lrl_lend) use rl: close() refuses meanwhile */
} lrl;

ratelimit *lrl_check(lua_State *L, int i) {
  lrl *u = luaL_checkudata(L, i, LRL_MT);
  if (u->rl == NULL) luaL_argerror(L, i, "the limiter is closed");
  return u->rl;
}

ratelimit *lrl_lend(lua_State *L, int i, int **lent) {
  ratelimit *rl = lrl_check(L, i);
  lrl *u = lua_touserdata(L, i);
  u->lent++;
  *lent = &u->lent;
  return rl;
}

/* new(rate, burst[, max]): rate > 0 tokens a second, burst >= 1, max >= 1 names (10000) */
static int lrl_new(lua_State *L) {
  lua_Number rate = luaL_checknumber(L, 1), burst = luaL_checknumber(L, 2);
  lua_Integer max = luaL_optinteger(L, 3, 10000);
  luaL_argcheck(L, rate > 0 && rate < HUGE_VAL, 1, "a finite rate > 0 expected");
  luaL_argcheck(L, burst >= 1 && burst < HUGE_VAL, 2, "a finite burst >= 1 expected");
  luaL_argcheck(L, max >= 1, 3, "max >= 1 expected");
  lrl *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->rl = NULL; /* created closed, then the resource */
  u->lent = 0;
  luaL_setmetatable(L, LRL_MT);
  u->rl = ratelimit_new(rate, burst, (size_t)max);
  if (u->rl == NULL) return luaL_error(L, "ratelimit: out of memory");
  return 1;
}

static const char *lrl_name(lua_State *L, size_t *n) {
  int t = lua_type(L, 2);
  luaL_argexpected(L, t == LUA_TSTRING || t == LUA_TNUMBER, 2, "string or number");
  return lua_tolstring(L, 2, n);
}

static int lrl_take(lua_State *L) {
  ratelimit *rl = lrl_check(L, 1);
  size_t n;
  const char *name = lrl_name(L, &n);
  long retry = 0;
  int rc = ratelimit_take(rl, name, n, luaL_checknumber(L, 3), &retry);
  if (rc < 0) return luaL_error(L, "ratelimit: out of memory");
  lua_pushboolean(L, rc);
  if (rc) return 1;
  lua_pushinteger(L, retry);
  return 2;
}

static int lrl_empty(lua_State *L) {
  ratelimit *rl = lrl_check(L, 1);
  size_t n;
  const char *name = lrl_name(L, &n);
  long wait = ratelimit_empty(rl, name, n, luaL_checknumber(L, 3));
  if (wait) lua_pushinteger(L, wait);
  else lua_pushboolean(L, 0);
  return 1;
}

static int lrl_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ratelimit_count(lrl_check(L, 1)));
  return 1;
}

/* At collection nothing borrows it any more: a borrower keeps it referenced. */
static int lrl_gc(lua_State *L) {
  lrl *u = luaL_checkudata(L, 1, LRL_MT);
  ratelimit_free(u->rl);
  u->rl = NULL;
  return 0;
}

static int lrl_close(lua_State *L) {
  lrl *u = luaL_checkudata(L, 1, LRL_MT);
  if (u->lent > 0) return luaL_error(L, "ratelimit: the limiter is lent (to a health or a server's proxy memory): close that first");
  return lrl_gc(L);
}

static int lrl_tostring(lua_State *L) {
  lrl *u = luaL_checkudata(L, 1, LRL_MT);
  if (u->rl) lua_pushfstring(L, "ratelimit (%d names)", (int)ratelimit_count(u->rl));
  else lua_pushliteral(L, "ratelimit (closed)");
  return 1;
}

static int lrl_retry_after(lua_State *L) {
  lua_Number rate = luaL_checknumber(L, 2);
  luaL_argcheck(L, rate > 0, 2, "rate > 0 expected");
  lua_pushinteger(L, ratelimit_retry_after(luaL_checknumber(L, 1), rate));
  return 1;
}

static const luaL_Reg lrl_methods[] = {
    {"take", lrl_take},
    {"empty", lrl_empty},
    {"count", lrl_count},
    {"close", lrl_close},
    {NULL, NULL},
};

static const luaL_Reg lrl_meta[] = {
    {"__gc", lrl_gc},
    {"__close", lrl_close},
    {"__tostring", lrl_tostring},
    {NULL, NULL},
};

static const luaL_Reg lrl_funcs[] = {
    {"new", lrl_new},
    {"retry_after", lrl_retry_after},
    {NULL, NULL},
};

int luaopen_orket_ratelimit(lua_State *L) {
  if (luaL_newmetatable(L, LRL_MT)) {
    luaL_setfuncs(L, lrl_meta, 0);
    luaL_newlib(L, lrl_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, lrl_funcs);
  return 1;
}
