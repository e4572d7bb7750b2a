/* lscriptenv.c: Lua module `orket.c.scriptenv`: runs a function under a budget (scriptenv.c),
 * makes coroutines that carry it, and the guarded forms of the library functions whose
 * work grows with an integer argument or a __len result rather than with their input:
 * each charges that work to the budget before it starts and is refused over a cap.
 * lua/orket/scriptenv.lua builds the restricted environments on top. */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "modules.h"
#include "runtime.h"
#include "scriptenv.h"

#define SENVL_CALL "orket.scriptenv.call"
#define SENVL_OWNER "orket.scriptenv.owner"

/* Turns the outcome into `true, ...` or `false, message, CODE`.
 * Stack on entry: [1..3] limits, [4] call userdata, then results or the error. */
static int senvl_finish(lua_State *L, int status, lua_KContext ctx) {
  if (ctx) lua_remove(L, 5); /* resumed after a yield: the message handler is still here */
  senv_call *c = luaL_checkudata(L, 4, SENVL_CALL);
  senv_end(L, c);
  if ((status == LUA_OK || status == LUA_YIELD) && c->b.tripped != BUDGET_OK) {
    /* The budget was spent where the script could catch it and carry on for a few
     * instructions (a coroutine of its own returns the error to resume): it still failed. */
    char buf[160];
    lua_settop(L, 4);
    lua_pushfstring(L, "script: %s", budget_describe(&c->b, buf, sizeof buf));
    status = LUA_ERRRUN;
  }
  if (status == LUA_OK || status == LUA_YIELD) {
    int nres = lua_gettop(L) - 4;
    lua_pushboolean(L, 1);
    lua_insert(L, 5);
    return nres + 1;
  }
  /* The handler makes every error a string, so no value made by the script reaches
   * trusted code; only a memory error arrives without passing it. */
  if (status == LUA_ERRMEM || lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushstring(L, status == LUA_ERRMEM ? "script: memory limit exceeded (not enough memory)"
                                           : "not enough memory");
  }
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  lua_pushstring(L, senv_code(c, status));
  return 3;
}

/* ---- owners: what a script's calls made that is still allocated (memcap.h) ----------- */

static memcap_owner **senvl_owner_slot(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, SENVL_OWNER);
}

/* owner() -> a new owner: the blocks a call made under it (pcall_as) are counted as its
 * until they are freed. The runtime frees it once it is collected and owns no block. */
static int senvl_owner(lua_State *L) {
  memcap_owner **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = NULL;
  luaL_setmetatable(L, SENVL_OWNER);
  *slot = memcap_owner_new();
  if (*slot == NULL) return luaL_error(L, "scriptenv.owner: out of memory");
  return 1;
}

static int senvl_owner_gc(lua_State *L) {
  memcap_owner **slot = senvl_owner_slot(L, 1);
  memcap_owner_release(*slot);
  *slot = NULL;
  return 0;
}

/* held(owner[, collect]) -> bytes the owner's blocks take now, bytes every owner's take;
 * with collect, after a full collection (then the heap's settled size, which senv_begin
 * measures from). */
static int senvl_held(lua_State *L) {
  memcap_owner **slot = senvl_owner_slot(L, 1);
  if (lua_toboolean(L, 2)) {
    lua_gc(L, LUA_GCCOLLECT);
    rt_get(L)->mem.settled = rt_get(L)->mem.used;
  }
  lua_pushinteger(L, *slot ? (lua_Integer)(*slot)->held : 0);
  lua_pushinteger(L, (lua_Integer)rt_get(L)->mem.owned);
  return 2;
}

/* The budgeted call of pcall and pcall_as: stack [1..3] limits, [4] fn, [5..] args. */
static int senvl_run(lua_State *L, memcap_owner *owner) {
  lua_Integer ins = luaL_checkinteger(L, 1);
  lua_Integer ms = luaL_checkinteger(L, 2);
  lua_Integer mem = luaL_checkinteger(L, 3);
  luaL_argcheck(L, ins >= 0, 1, "must be >= 0");
  luaL_argcheck(L, ms >= 0, 2, "must be >= 0");
  luaL_argcheck(L, mem >= 0, 3, "must be >= 0");
  luaL_checktype(L, 4, LUA_TFUNCTION);
  int nargs = lua_gettop(L) - 4;
  luaL_checkstack(L, 4, "scriptenv.pcall");
  senv_call *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  c->owner = owner;
  luaL_setmetatable(L, SENVL_CALL);
  lua_insert(L, 4); /* [4] call, [5] fn, [6..] args */
  lua_pushcfunction(L, rt_traceback);
  lua_insert(L, 5); /* [5] handler, [6] fn */
  senv_begin(L, c, 4, (uint64_t)ins, (uint64_t)ms, (size_t)mem);
  int status = lua_pcallk(L, nargs, LUA_MULTRET, 5, 1, senvl_finish);
  lua_remove(L, 5);
  return senvl_finish(L, status, 0);
}

/* pcall(instructions, timeout_ms, memory_bytes, fn, ...) -> true, ... | false, msg, CODE
 * Runs fn under a fresh budget. 0 means unlimited for each limit. CODE is EBUDGET,
 * ETIMEOUT, ENOMEM or ERUNTIME. fn may wait (yield to the loop) when called from a task. */
static int senvl_pcall(lua_State *L) { return senvl_run(L, NULL); }

/* pcall_as(owner, instructions, timeout_ms, memory_bytes, fn, ...): pcall, the blocks the
 * call makes (or grows) being owner's (held tells how much of it is still allocated). */
static int senvl_pcall_as(lua_State *L) {
  memcap_owner *owner = *senvl_owner_slot(L, 1);
  lua_remove(L, 1);
  return senvl_run(L, owner);
}

/* cocreate(fn) -> co: coroutine.create for scripts; co runs under the creator's budget. */
static int senvl_cocreate(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  senv_adopt(L, co);
  return 1;
}

/* is_script_thread(co) -> bool: whether co was made by a script (coroutine.create/wrap in
 * a script environment). Scripts may resume, close or yield only those. */
static int senvl_is_script_thread(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  lua_pushboolean(L, senv_is_script_thread(L, 1));
  return 1;
}

/* tripped() -> bool: whether the running thread's budget is spent. A hook cannot run
 * while another hook runs, and Lua calls a message handler for an error raised by a hook
 * before it unwinds, so a handler reached from our hook runs with hooks off; the
 * script environment's xpcall asks this first and skips the script's handler. */
static int senvl_tripped(lua_State *L) {
  lua_pushboolean(L, senv_tripped(L));
  return 1;
}

/* ---- guarded library functions --------------------------------------------------------- */

/* Each guard is a closure over the stock C function (upvalue 1). It settles the amount of
 * work from the arguments, fixing any length it had to ask __len for into the arguments
 * (so a __len cannot answer differently the second time), charges it, then runs the stock
 * function as this very call, so argument errors read exactly as the stock ones do. */
static int senvl_stock(lua_State *L) { return lua_tocfunction(L, lua_upvalueindex(1))(L); }

/* Elements from i to j inclusive, without overflow. */
static uint64_t senvl_span(lua_Integer i, lua_Integer j) {
  return j < i ? 0 : (uint64_t)((lua_Unsigned)j - (lua_Unsigned)i) + 1;
}

static void senvl_fix_length(lua_State *L, int arg, lua_Integer n) {
  lua_settop(L, arg);
  lua_pushinteger(L, n);
  lua_replace(L, arg);
}

/* table.concat(t [, sep [, i [, j]]]) */
static int senvl_concat(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE && senv_thread_budgeted(L)) {
    luaL_optlstring(L, 2, "", NULL);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    lua_Integer j = lua_isnoneornil(L, 4) ? luaL_len(L, 1) : luaL_checkinteger(L, 4);
    senvl_fix_length(L, 4, j);
    senv_charge_call(L, senvl_span(i, j), "concat");
  }
  return senvl_stock(L);
}

/* table.unpack(t [, i [, j]]) */
static int senvl_unpack(lua_State *L) {
  if (senv_thread_budgeted(L)) {
    lua_Integer i = luaL_optinteger(L, 2, 1);
    lua_Integer j = lua_isnoneornil(L, 3) ? luaL_len(L, 1) : luaL_checkinteger(L, 3);
    senvl_fix_length(L, 3, j);
    senv_charge_call(L, senvl_span(i, j), "unpack");
  }
  return senvl_stock(L);
}

/* table.move(a1, f, e, t [, a2]) */
static int senvl_move(lua_State *L) {
  if (senv_thread_budgeted(L)) {
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
    luaL_checkinteger(L, 4);
    senv_charge_call(L, senvl_span(f, e), "move");
  }
  return senvl_stock(L);
}

/* table.sort(t [, comp]): the stock sort asks __len itself, so a table with one is refused
 * (it could answer a small length to us and a huge one to the sort). */
static int senvl_sort(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE && senv_thread_budgeted(L)) {
    if (luaL_getmetafield(L, 1, "__len") != LUA_TNIL)
      return luaL_argerror(L, 1, "a table with a __len metamethod cannot be sorted in a script");
    uint64_t n = lua_rawlen(L, 1), log = 1;
    while ((n >> log) != 0) log++;
    senv_charge_call(L, n * log, "sort");
  }
  return senvl_stock(L);
}

/* string.rep(s, n [, sep]): empty pieces would loop n times making nothing, so they answer
 * at once; otherwise the repetitions are charged, unless the result cannot fit in the
 * memory left, which the stock function reports as the memory error it is. */
static int senvl_rep(lua_State *L) {
  size_t l, lsep;
  luaL_checklstring(L, 1, &l);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  if (n > 0 && l + lsep == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  if (n > 0 && senv_thread_budgeted(L)) {
    memcap *mem = &rt_get(L)->mem;
    size_t left = memcap_headroom(mem);
    if ((uint64_t)n > left / (l + lsep) && left != SIZE_MAX) {
      /* Lua's buffer would be refused without the collection and retry its own objects get,
       * and raise before any handler could name the script's line: collected here, and if
       * it still cannot fit, the memory budget is spent at this call */
      lua_gc(L, LUA_GCCOLLECT);
      left = memcap_headroom(mem);
      if ((uint64_t)n > left / (l + lsep)) senv_memory_spent(L);
    }
    senv_charge_call(L, (uint64_t)n / 8, "rep");
  }
  return senvl_stock(L);
}

/* guards(string, table) -> {concat=, unpack=, move=, sort=, rep=}: the guarded forms of
 * those functions of the stock libraries given. */
static int senvl_guards(lua_State *L) {
  static const struct {
    int lib;
    const char *name;
    lua_CFunction guard;
  } list[] = {
      {2, "concat", senvl_concat}, {2, "unpack", senvl_unpack}, {2, "move", senvl_move},
      {2, "sort", senvl_sort},     {1, "rep", senvl_rep},
  };
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_createtable(L, 0, (int)(sizeof list / sizeof list[0]));
  for (size_t k = 0; k < sizeof list / sizeof list[0]; k++) {
    lua_getfield(L, list[k].lib, list[k].name);
    lua_CFunction stock = lua_tocfunction(L, -1);
    if (stock == NULL || lua_getupvalue(L, -1, 1) != NULL)
      return luaL_error(L, "guards: %s is not Lua's own C function", list[k].name);
    lua_pop(L, 1);
    lua_pushcfunction(L, stock);
    lua_pushcclosure(L, list[k].guard, 1);
    lua_setfield(L, -2, list[k].name);
  }
  return 1;
}

static const luaL_Reg senvl_funcs[] = {
    {"pcall", senvl_pcall},
    {"pcall_as", senvl_pcall_as},
    {"owner", senvl_owner},
    {"held", senvl_held},
    {"tripped", senvl_tripped},
    {"is_script_thread", senvl_is_script_thread},
    {"cocreate", senvl_cocreate},
    {"guards", senvl_guards},
    {NULL, NULL},
};

int luaopen_orket_scriptenv(lua_State *L) {
  luaL_newmetatable(L, SENVL_CALL);
  lua_pop(L, 1);
  luaL_newmetatable(L, SENVL_OWNER);
  lua_pushcfunction(L, senvl_owner_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "owner");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  luaL_newlib(L, senvl_funcs);
  return 1;
}
