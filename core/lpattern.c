/* lpattern.c: Lua module `orket.c.pattern`: find, match, gmatch and gsub with the results
 * and messages of Lua 5.4's, on pattern.c's compiled, step-counted matcher. Inside a
 * script call the steps are charged to the call's budget (scriptenv.h); every call is also
 * capped at step_limit() steps. methods(string) gives the string metatable's dispatchers. */
#define _GNU_SOURCE /* memmem */
#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "modules.h"
#include "pattern.h"
#include "scriptenv.h"

#define LP_DEFAULT_STEPS 100000000 /* about a second of matching */
#define LP_SMALL 2048              /* compiled programs up to this size live on the C stack */

/* Upvalue 1 of every function: the step cap shared by one Lua state's functions. */
typedef struct lp_config {
  lua_Integer max_steps;
} lp_config;

static lp_config *lp_cfg(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

static int lp_charge_budget(void *ud, uint64_t steps, char *why, size_t whylen) {
  return senv_charge((lua_State *)ud, steps, why, whylen);
}

static void lp_run_init(lua_State *L, pat_run *r) {
  pat_run_init(r, (uint64_t)lp_cfg(L)->max_steps,
               senv_thread_budgeted(L) ? lp_charge_budget : NULL, L);
}

static int lp_fail(lua_State *L, pat_run *r) { return luaL_error(L, "%s", r->msg); }

/* Room for a compiled program: on the C stack when small, else a userdata pushed on L
 * (so an error anywhere later frees it). */
typedef struct lp_space {
  alignas(max_align_t) unsigned char small[LP_SMALL];
} lp_space;

static pat_prog *lp_compile(lua_State *L, lp_space *sp, const char *p, size_t lp, int anchor,
                            pat_run *r) {
  size_t need = pat_prog_size(lp);
  void *mem = need <= sizeof sp->small ? sp->small : lua_newuserdatauv(L, need, 0);
  pat_prog *g = pat_compile(mem, p, lp, anchor);
  if (pat_run_charge(r, lp / 8)) lp_fail(L, r);
  return g;
}

/* 1-based, negative-from-the-end init, as a 0-based offset (may exceed ls). */
static size_t lp_start(lua_State *L, int arg, size_t ls) {
  lua_Integer i = luaL_optinteger(L, arg, 1);
  if (i > 0) return (size_t)i - 1;
  if (i == 0 || (lua_Unsigned)-(i + 1) >= ls) return 0; /* before the start: the start */
  return ls - (size_t)-(i + 1) - 1;
}

static void lp_push_capture(lua_State *L, const char *s, const pat_match *m, int i) {
  size_t at = 0, len = 0;
  char err[64];
  switch (pat_capture_get(m, i, &at, &len, err, sizeof err)) {
  case PAT_CAP_TEXT: lua_pushlstring(L, s + at, len); break;
  case PAT_CAP_AT: lua_pushinteger(L, (lua_Integer)at); break;
  default: luaL_error(L, "%s", err);
  }
}

/* Pushes captures 0..n-1; returns n. */
static int lp_push_captures(lua_State *L, const char *s, const pat_match *m, int n) {
  luaL_checkstack(L, n, "too many captures");
  for (int i = 0; i < n; i++) lp_push_capture(L, s, m, i);
  return n;
}

/* find and match share everything but what they return. */
static int lp_locate(lua_State *L, int want_bounds) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t from = lp_start(L, 3, ls);
  if (from > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (want_bounds && (lua_toboolean(L, 4) || pat_is_plain(p, lp))) {
    /* plain text: a linear search the C library does well */
    const char *hit = memmem(s + from, ls - from, p, lp);
    if (hit == NULL) {
      luaL_pushfail(L);
      return 1;
    }
    lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
    lua_pushinteger(L, (lua_Integer)(hit - s) + (lua_Integer)lp);
    return 2;
  }
  pat_run r;
  lp_space sp;
  pat_match m;
  lp_run_init(L, &r);
  const pat_prog *g = lp_compile(L, &sp, p, lp, 1, &r);
  int found = pat_search(g, s, ls, from, &r, &m);
  if (found < 0 || pat_run_flush(&r) != 0) return lp_fail(L, &r);
  if (found == 0) {
    luaL_pushfail(L);
    return 1;
  }
  if (!want_bounds) return lp_push_captures(L, s, &m, pat_nvalues(&m));
  lua_pushinteger(L, (lua_Integer)m.start + 1);
  lua_pushinteger(L, (lua_Integer)m.end);
  return 2 + lp_push_captures(L, s, &m, m.ncaps);
}

/* find(s, pattern [, init [, plain]]) -> start, end, captures... | fail */
static int lp_find(lua_State *L) { return lp_locate(L, 1); }

/* match(s, pattern [, init]) -> captures... | fail */
static int lp_match(lua_State *L) { return lp_locate(L, 0); }

/* ---- gmatch ------------------------------------------------------------------------------ */

/* The iterator's state, a userdata followed by the compiled program. */
typedef struct lp_iter {
  size_t next;     /* where the next search starts; > length when done */
  size_t last_end; /* end of the previous match (no empty match may end there again) */
  int any;         /* whether there was a previous match */
  pat_prog *g;
  alignas(max_align_t) unsigned char prog[];
} lp_iter;

/* Upvalues: config, subject, pattern (kept alive), state. Each call has its own step
 * allowance and is charged to whoever calls it. */
static int lp_gmatch_step(lua_State *L) {
  size_t ls;
  const char *s = lua_tolstring(L, lua_upvalueindex(2), &ls);
  lp_iter *it = lua_touserdata(L, lua_upvalueindex(4));
  pat_run r;
  pat_match m;
  lp_run_init(L, &r);
  for (size_t at = it->next; at <= ls; at++) {
    int res = pat_match_at(it->g, s, ls, at, &r, &m);
    if (res < 0) return lp_fail(L, &r);
    if (res > 0 && !(it->any && m.end == it->last_end)) {
      it->next = it->last_end = m.end;
      it->any = 1;
      if (pat_run_flush(&r) != 0) return lp_fail(L, &r);
      return lp_push_captures(L, s, &m, pat_nvalues(&m));
    }
  }
  if (pat_run_flush(&r) != 0) return lp_fail(L, &r);
  return 0;
}

/* gmatch(s, pattern [, init]) -> iterator */
static int lp_gmatch(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t from = lp_start(L, 3, ls);
  lua_settop(L, 2);
  lp_iter *it = lua_newuserdatauv(L, sizeof *it + pat_prog_size(lp), 0);
  it->next = from > ls ? ls + 1 : from;
  it->any = 0;
  it->last_end = 0;
  it->g = pat_compile(it->prog, p, lp, 0);
  (void)s;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1); /* config, s, p, state */
  lua_pushcclosure(L, lp_gmatch_step, 4);
  return 1;
}

/* ---- gsub -------------------------------------------------------------------------------- */

/* Appends the replacement template (argument 3) for match m, expanding %0-%9 and %%. */
static void lp_add_template(lua_State *L, luaL_Buffer *b, const char *s, const pat_match *m) {
  size_t lt;
  const char *t = lua_tolstring(L, 3, &lt);
  size_t i = 0;
  while (i < lt) {
    const char *pct = memchr(t + i, '%', lt - i);
    size_t run = pct ? (size_t)(pct - t) - i : lt - i;
    luaL_addlstring(b, t + i, run);
    i += run;
    if (pct == NULL) break;
    char d = i + 1 < lt ? t[i + 1] : '\0';
    i += 2;
    if (d == '%') {
      luaL_addchar(b, '%');
    } else if (d == '0') {
      luaL_addlstring(b, s + m->start, m->end - m->start);
    } else if (d >= '1' && d <= '9') {
      lp_push_capture(L, s, m, d - '1');
      luaL_addvalue(b);
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", '%');
    }
  }
}

/* Appends what replaces match m; returns whether it differs from the matched text. */
static int lp_add_replacement(lua_State *L, luaL_Buffer *b, const char *s, const pat_match *m,
                              int kind) {
  if (kind == LUA_TSTRING || kind == LUA_TNUMBER) {
    lp_add_template(L, b, s, m);
    return 1;
  }
  if (kind == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    lua_call(L, lp_push_captures(L, s, m, pat_nvalues(m)), 1);
  } else { /* a table, indexed by the first capture */
    lp_push_capture(L, s, m, 0);
    lua_gettable(L, 3);
  }
  if (!lua_toboolean(L, -1)) { /* false or nil keeps the original */
    lua_pop(L, 1);
    luaL_addlstring(b, s + m->start, m->end - m->start);
    return 0;
  }
  if (!lua_isstring(L, -1))
    return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return 1;
}

/* gsub(s, pattern, repl [, n]) -> string, count */
static int lp_gsub(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  int kind = lua_type(L, 3);
  lua_Integer limit = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  luaL_argexpected(L, kind == LUA_TNUMBER || kind == LUA_TSTRING || kind == LUA_TFUNCTION ||
                          kind == LUA_TTABLE,
                   3, "string/function/table");
  lua_settop(L, 4);
  pat_run r;
  lp_space sp;
  pat_match m;
  lp_run_init(L, &r);
  const pat_prog *g = lp_compile(L, &sp, p, lp, 1, &r); /* may push a userdata: slot 5 */
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_Integer count = 0;
  int changed = 0, any = 0;
  size_t at = 0, copied = 0, last_end = 0;
  while (count < limit) {
    int res = pat_match_at(g, s, ls, at, &r, &m);
    if (res < 0) return lp_fail(L, &r);
    if (res > 0 && !(any && m.end == last_end)) {
      luaL_addlstring(&b, s + copied, at - copied);
      count++;
      changed |= lp_add_replacement(L, &b, s, &m, kind);
      at = copied = last_end = m.end;
      any = 1;
    } else if (at < ls) {
      at++; /* the byte stays; copied later in one piece */
    } else {
      break;
    }
    if (pat_anchored(g)) break;
  }
  if (pat_run_flush(&r) != 0) return lp_fail(L, &r);
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, s + copied, ls - copied);
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, count);
  return 2;
}

/* ---- the string metatable's methods and the step cap --------------------------------------- */

/* Upvalues: config, the stock function, the budgeted one. Both run as this very call, so
 * argument errors read exactly as the stock ones do. */
static int lp_dispatch(lua_State *L) {
  lua_CFunction f = lua_tocfunction(L, lua_upvalueindex(senv_thread_budgeted(L) ? 3 : 2));
  return f(L);
}

static const luaL_Reg lp_funcs[] = {
    {"find", lp_find},
    {"match", lp_match},
    {"gmatch", lp_gmatch},
    {"gsub", lp_gsub},
    {NULL, NULL},
};

/* methods(string) -> {find=, match=, gmatch=, gsub=}: for the string metatable's __index,
 * so s:find(...) is budgeted while a script budget runs and stock otherwise.
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
  lua_insert(L, -3); /* config, module, config */
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
