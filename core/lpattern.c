/* lpattern.c: Lua module `orket.c.pattern`: find, match, gmatch and gsub with exactly
 * Lua 5.4's semantics, built on pattern.c's step-budgeted matcher, for operator scripts.
 * Under a sandbox budget the match steps are charged to it (lsandbox.c's sb_charge), so
 * a pathological pattern stops at the script's deadline or instruction budget; any call
 * is also capped at step_limit() steps. methods(string) gives the string metatable's
 * dispatchers: budgeted inside a sandbox, the stock functions everywhere else. */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "modules.h"
#include "pattern.h"
#include "sandbox.h"

#define LP_DEFAULT_STEPS 100000000 /* about 1 s of matching; a sandbox budget stops it sooner */

/* Every function's upvalue 1: the step cap shared by one Lua state's functions. */
typedef struct lp_config {
  lua_Integer max_steps;
} lp_config;

static lp_config *lp_cfg(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

static int lp_check(void *ud, uint64_t steps, char *why, size_t whylen) {
  return sb_charge((lua_State *)ud, steps, why, whylen);
}

static void lp_prepare(lua_State *L, pat_state *ms, const char *s, size_t ls, const char *p,
                       size_t lp) {
  pat_prepare(ms, s, ls, p, lp, (uint64_t)lp_cfg(L)->max_steps,
              sb_thread_budgeted(L) ? lp_check : NULL, L);
}

static int lp_error(lua_State *L, pat_state *ms) { return luaL_error(L, "%s", ms->msg); }

/* Charges the steps of a finished call. A budget spent here stops the script at its next
 * instruction (sb_charge re-arms the hook); this call still returns its result. */
static void lp_done(pat_state *ms) { (void)pat_flush(ms); }

static void lp_push_capture(lua_State *L, pat_state *ms, int i, const char *s, const char *e) {
  const char *cap;
  size_t pos = 0;
  ptrdiff_t l = pat_get_capture(ms, i, s, e, &cap, &pos);
  if (l == -1) lp_error(L, ms);
  if (l == PAT_CAP_POSITION)
    lua_pushinteger(L, (lua_Integer)pos);
  else
    lua_pushlstring(L, cap, (size_t)l);
}

static int lp_push_captures(lua_State *L, pat_state *ms, const char *s, const char *e) {
  int n = pat_ncaptures(ms, s);
  luaL_checkstack(L, n, "too many captures");
  for (int i = 0; i < n; i++) lp_push_capture(L, ms, i, s, e);
  return n;
}

static int lp_find_aux(lua_State *L, int find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = pat_posrelat(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) { /* start after string's end? */
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || pat_nospecials(p, lp))) {
    /* a plain search is linear (memchr + memcmp): no budget needed */
    const char *s2 = pat_memfind(s + init, ls - init, p, lp);
    if (s2) {
      lua_pushinteger(L, (s2 - s) + 1);
      lua_pushinteger(L, (lua_Integer)((size_t)(s2 - s) + lp));
      return 2;
    }
  } else {
    pat_state ms;
    int anchor = (*p == '^');
    if (anchor) {
      p++;
      lp--;
    }
    lp_prepare(L, &ms, s, ls, p, lp);
    const char *start = NULL;
    const char *res = pat_search(&ms, s + init, p, anchor, &start);
    if (res != NULL) {
      lp_done(&ms);
      if (find) {
        lua_pushinteger(L, (start - s) + 1);
        lua_pushinteger(L, res - s);
        return lp_push_captures(L, &ms, NULL, 0) + 2;
      }
      return lp_push_captures(L, &ms, start, res);
    }
    if (ms.status != PAT_OK) return lp_error(L, &ms);
    lp_done(&ms);
  }
  luaL_pushfail(L);
  return 1;
}

/* find(s, pattern [, init [, plain]]) -> start, end, captures... | nil */
static int lp_find(lua_State *L) { return lp_find_aux(L, 1); }

/* match(s, pattern [, init]) -> captures... | nil */
static int lp_match(lua_State *L) { return lp_find_aux(L, 0); }

/* ---- gmatch ----------------------------------------------------------------------------- */

typedef struct lp_gmatch {
  const char *src;       /* where the next search starts */
  const char *p;         /* the pattern */
  const char *lastmatch; /* end of the last match, which may not match empty again */
  pat_state ms;
} lp_gmatch;

/* The iterator. Upvalues: config, subject, pattern (kept alive), state. Each call gets
 * its own step allowance and is charged to whoever calls it. */
static int lp_gmatch_aux(lua_State *L) {
  lp_gmatch *gm = lua_touserdata(L, lua_upvalueindex(4));
  pat_state *ms = &gm->ms;
  ms->status = PAT_OK;
  ms->max_steps = (uint64_t)lp_cfg(L)->max_steps;
  ms->check = sb_thread_budgeted(L) ? lp_check : NULL;
  ms->check_ud = L;
  pat_reset_steps(ms);
  for (const char *src = gm->src; src <= ms->src_end; src++) {
    pat_reprepare(ms);
    const char *e = pat_match(ms, src, gm->p);
    if (e != NULL && e != gm->lastmatch) {
      gm->src = gm->lastmatch = e;
      lp_done(ms);
      return lp_push_captures(L, ms, src, e);
    }
    if (ms->status != PAT_OK) return lp_error(L, ms);
  }
  lp_done(ms);
  return 0; /* not found */
}

/* gmatch(s, pattern [, init]) -> iterator */
static int lp_gmatch_new(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = pat_posrelat(luaL_optinteger(L, 3, 1), ls) - 1;
  lua_settop(L, 2); /* keep the strings on the closure so they are not collected */
  lp_gmatch *gm = lua_newuserdatauv(L, sizeof *gm, 0);
  if (init > ls) init = ls + 1; /* start after string's end: avoid overflows in 's + init' */
  lp_prepare(L, &gm->ms, s, ls, p, lp);
  gm->src = s + init;
  gm->p = p;
  gm->lastmatch = NULL;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1); /* config, s, p, state */
  lua_pushcclosure(L, lp_gmatch_aux, 4);
  return 1;
}

/* ---- gsub ------------------------------------------------------------------------------- */

static void lp_add_s(lua_State *L, pat_state *ms, luaL_Buffer *b, const char *s, const char *e) {
  size_t l;
  const char *news = lua_tolstring(L, 3, &l);
  const char *p;
  while ((p = memchr(news, '%', l)) != NULL) {
    luaL_addlstring(b, news, (size_t)(p - news));
    p++; /* skip ESC (a Lua string ends in a NUL, so *p is readable) */
    if (*p == '%') {
      luaL_addchar(b, *p);
    } else if (*p == '0') {
      luaL_addlstring(b, s, (size_t)(e - s));
    } else if (isdigit((unsigned char)*p)) {
      const char *cap;
      size_t pos = 0;
      ptrdiff_t resl = pat_get_capture(ms, *p - '1', s, e, &cap, &pos);
      if (resl == -1) lp_error(L, ms);
      if (resl == PAT_CAP_POSITION) {
        lua_pushinteger(L, (lua_Integer)pos);
        luaL_addvalue(b); /* add position to accumulated result */
      } else {
        luaL_addlstring(b, cap, (size_t)resl);
      }
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", '%');
    }
    l -= (size_t)(p + 1 - news);
    news = p + 1;
  }
  luaL_addlstring(b, news, l);
}

/* Adds the replacement of the match s..e; returns whether it changed the text. */
static int lp_add_value(lua_State *L, pat_state *ms, luaL_Buffer *b, const char *s,
                        const char *e, int tr) {
  switch (tr) {
  case LUA_TFUNCTION: {
    lua_pushvalue(L, 3);
    int n = lp_push_captures(L, ms, s, e);
    lua_call(L, n, 1);
    break;
  }
  case LUA_TTABLE:
    lp_push_capture(L, ms, 0, s, e);
    lua_gettable(L, 3);
    break;
  default: /* LUA_TNUMBER or LUA_TSTRING */
    lp_add_s(L, ms, b, s, e);
    return 1;
  }
  if (!lua_toboolean(L, -1)) { /* nil or false: keep the original text */
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return 0;
  }
  if (!lua_isstring(L, -1))
    return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return 1;
}

/* gsub(s, pattern, repl [, n]) -> string, count */
static int lp_gsub(lua_State *L) {
  size_t srcl, lp;
  const char *src = luaL_checklstring(L, 1, &srcl);
  const char *p = luaL_checklstring(L, 2, &lp);
  const char *lastmatch = NULL;
  int tr = lua_type(L, 3);
  lua_Integer max_s = luaL_optinteger(L, 4, (lua_Integer)srcl + 1);
  int anchor = (*p == '^');
  lua_Integer n = 0;
  int changed = 0;
  pat_state ms;
  luaL_Buffer b;
  luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE,
                   3, "string/function/table");
  luaL_buffinit(L, &b);
  if (anchor) {
    p++;
    lp--;
  }
  lp_prepare(L, &ms, src, srcl, p, lp);
  while (n < max_s) {
    pat_reprepare(&ms);
    const char *e = pat_match(&ms, src, p);
    if (e != NULL && e != lastmatch) { /* match? */
      n++;
      changed = lp_add_value(L, &ms, &b, src, e, tr) | changed;
      src = lastmatch = e;
    } else if (ms.status != PAT_OK) {
      return lp_error(L, &ms);
    } else if (src < ms.src_end) { /* otherwise, skip one character */
      luaL_addchar(&b, *src++);
    } else {
      break; /* end of subject */
    }
    if (anchor) break;
  }
  lp_done(&ms);
  if (!changed) {
    lua_pushvalue(L, 1); /* return the original string */
  } else {
    luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

/* ---- the string metatable's methods and the step cap ------------------------------------ */

/* Upvalues: config, the stock function, the budgeted one (both light C functions). Both
 * run as this very call, so argument errors read exactly as the stock ones do. */
static int lp_dispatch(lua_State *L) {
  lua_CFunction f = lua_tocfunction(L, lua_upvalueindex(sb_thread_budgeted(L) ? 3 : 2));
  return f(L);
}

static const luaL_Reg lp_funcs[] = {
    {"find", lp_find},
    {"match", lp_match},
    {"gmatch", lp_gmatch_new},
    {"gsub", lp_gsub},
    {NULL, NULL},
};

/* methods(string) -> {find=, match=, gmatch=, gsub=}: for the string metatable's __index,
 * so s:find(...) is budgeted while a sandbox budget runs and stock otherwise.
 * `string` must hold Lua's own C functions under those names. */
static int lp_methods(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_createtable(L, 0, 4);
  for (const luaL_Reg *r = lp_funcs; r->name; r++) {
    lua_getfield(L, 1, r->name);
    lua_CFunction stock = lua_tocfunction(L, -1);
    if (stock == NULL || lua_getupvalue(L, -1, 1) != NULL)
      return luaL_error(L, "bad argument #1 to 'methods' (%s is not Lua's own C function)", r->name);
    lua_pop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushcfunction(L, stock);
    lua_pushcfunction(L, r->func);
    lua_pushcclosure(L, lp_dispatch, 3);
    lua_setfield(L, -2, r->name);
  }
  return 1;
}

/* step_limit([n]) -> previous: the most steps one call may take (n >= 1). */
static int lp_step_limit(lua_State *L) {
  lp_config *c = lp_cfg(L);
  lua_Integer prev = c->max_steps;
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1, 1, "must be >= 1");
    c->max_steps = n;
  }
  lua_pushinteger(L, prev);
  return 1;
}

int luaopen_orket_pattern(lua_State *L) {
  lua_createtable(L, 0, 6);
  lp_config *c = lua_newuserdatauv(L, sizeof *c, 0);
  c->max_steps = LP_DEFAULT_STEPS;
  lua_pushvalue(L, -1);
  lua_insert(L, -3);         /* config, module, config */
  luaL_setfuncs(L, lp_funcs, 1);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, lp_methods, 1);
  lua_setfield(L, -2, "methods");
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, lp_step_limit, 1);
  lua_setfield(L, -2, "step_limit");
  lua_remove(L, -2);
  return 1;
}
