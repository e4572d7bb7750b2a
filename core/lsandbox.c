/* lsandbox.c: the budgets that hold operator scripts: an instruction count and a wall-clock
 * deadline enforced by a count hook that pcall cannot swallow, and a memory ceiling on the
 * runtime's counting allocator. Lua module `orket.c.sandbox`; lua/orket/sandbox.lua builds
 * the restricted environments on top. Uses budget.c and memcap.c for the accounting. */
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "budget.h"
#include "modules.h"
#include "runtime.h"
#include "sandbox.h"

#define SB_CALL "orket.sandbox.call"
#define SB_HOOK_EVERY 1000 /* instructions between hook calls while within budget */

/* One budgeted call. A full userdata, so coroutines created inside it can keep it alive. */
typedef struct sb_call {
  budget b;
  size_t prev_limit;       /* the memory ceiling before this call */
  lua_Hook prev_hook;      /* the thread's hook before this call */
  int prev_mask, prev_count;
  struct sb_call *prev_call; /* the thread's budget before this call (nested calls) */
  int active;
} sb_call;

static const char SB_THREADS = 't'; /* registry key: weak-keyed table thread -> sb_call */

/* The budget a thread runs under lives in its extra space (Lua gives each thread one
 * pointer's worth); the hook reads it without a table lookup. */
static sb_call **sb_slot(lua_State *L) { return (sb_call **)lua_getextraspace(L); }

static void sb_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  sb_call *c = *sb_slot(L);
  if (c == NULL) return;
  if (budget_charge(&c->b, SB_HOOK_EVERY, budget_now_ns()) == BUDGET_OK) return;
  /* Tripped: from now on every instruction of this thread raises again, so a pcall or an
   * error handler inside the script cannot carry on (Redis's kill path does the same). */
  lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
  char buf[128];
  luaL_error(L, "sandbox: %s", budget_describe(&c->b, buf, sizeof buf));
}

/* The anchor table (registry, weak keys) maps each live call's address (lightuserdata,
 * removed when the call ends) and each adopted coroutine to the call's userdata, so a
 * coroutine that outlives its call never sees a freed budget. Leaves it on the stack. */
static void sb_anchors(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SB_THREADS) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &SB_THREADS);
}

/* Undo what sb_begin did to the thread and the allocator. */
static void sb_end(lua_State *L, sb_call *c) {
  if (!c->active) return;
  c->active = 0;
  sb_anchors(L);
  lua_pushnil(L);
  lua_rawsetp(L, -2, c);
  lua_pop(L, 1);
  lua_sethook(L, c->prev_hook, c->prev_mask, c->prev_count);
  *sb_slot(L) = c->prev_call;
  memcap_restore(&rt_get(L)->mem, c->prev_limit);
}

/* Turns the outcome into `true, ...` or `false, message, CODE`.
 * Stack on entry: [1..3] limits, [4] call userdata, then results or the error. */
static int sb_finish(lua_State *L, int status, lua_KContext ctx) {
  if (ctx) lua_remove(L, 5); /* resumed after a yield: the message handler is still here */
  sb_call *c = luaL_checkudata(L, 4, SB_CALL);
  sb_end(L, c);
  if (status == LUA_OK || status == LUA_YIELD) {
    int nres = lua_gettop(L) - 4;
    lua_pushboolean(L, 1);
    lua_insert(L, 5);
    return nres + 1;
  }
  const char *code = "ERUNTIME";
  if (status == LUA_ERRMEM)
    code = "ENOMEM";
  else if (c->b.tripped == BUDGET_INSTRUCTIONS)
    code = "EBUDGET";
  else if (c->b.tripped == BUDGET_DEADLINE)
    code = "ETIMEOUT";
  if (lua_type(L, -1) != LUA_TSTRING) { /* only a memory error can arrive without msgh */
    lua_pop(L, 1);
    lua_pushliteral(L, "not enough memory");
  }
  if (status == LUA_ERRMEM) {
    lua_pop(L, 1);
    lua_pushliteral(L, "sandbox: memory limit exceeded (not enough memory)");
  }
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  lua_pushstring(L, code);
  return 3;
}

/* The message handler: traceback as a string, so no value made by the script (a table
 * with a hostile __tostring, say) reaches trusted code. */
static int sb_msgh(lua_State *L) { return rt_traceback(L); }

/* pcall(instructions, timeout_ms, memory_bytes, fn, ...) -> true, ... | false, msg, CODE
 * Runs fn under a fresh budget. 0 means unlimited for each limit. CODE is EBUDGET,
 * ETIMEOUT, ENOMEM or ERUNTIME. fn may wait (yield to the loop) when called from a task. */
static int sb_pcall(lua_State *L) {
  lua_Integer ins = luaL_checkinteger(L, 1);
  lua_Integer ms = luaL_checkinteger(L, 2);
  lua_Integer mem = luaL_checkinteger(L, 3);
  luaL_argcheck(L, ins >= 0, 1, "must be >= 0");
  luaL_argcheck(L, ms >= 0, 2, "must be >= 0");
  luaL_argcheck(L, mem >= 0, 3, "must be >= 0");
  luaL_checktype(L, 4, LUA_TFUNCTION);
  int nargs = lua_gettop(L) - 4;
  luaL_checkstack(L, 4, "sandbox.pcall");

  sb_call *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, SB_CALL);
  lua_insert(L, 4); /* [4] call, [5] fn, [6..] args */
  budget_start(&c->b, (uint64_t)ins, (uint64_t)ms);
  sb_anchors(L);
  lua_pushvalue(L, 4);
  lua_rawsetp(L, -2, c);
  lua_pop(L, 1);

  /* From here to sb_end, nothing may raise outside the protected call. */
  c->prev_hook = lua_gethook(L);
  c->prev_mask = lua_gethookmask(L);
  c->prev_count = lua_gethookcount(L);
  c->prev_call = *sb_slot(L);
  c->prev_limit = mem ? memcap_push(&rt_get(L)->mem, (size_t)mem) : rt_get(L)->mem.limit;
  c->active = 1;
  *sb_slot(L) = c;
  lua_sethook(L, sb_hook, LUA_MASKCOUNT, SB_HOOK_EVERY);

  lua_pushcfunction(L, sb_msgh);
  lua_insert(L, 5); /* [5] msgh, [6] fn */
  int status = lua_pcallk(L, nargs, LUA_MULTRET, 5, 1, sb_finish);
  lua_remove(L, 5);
  return sb_finish(L, status, 0);
}

/* Coroutines made inside a sandbox run under the budget of the call that made them:
 * a new thread inherits its creator's hook, and this gives it the creator's budget too.
 * Stack: co at the top. */
static void sb_adopt(lua_State *L, lua_State *co) {
  sb_call *c = *sb_slot(L);
  *sb_slot(co) = c;
  if (c == NULL) return;
  sb_anchors(L);                               /* co anchors */
  if (lua_rawgetp(L, -1, c) == LUA_TNIL) {     /* the call has ended: the creator holds it */
    lua_pop(L, 1);
    lua_pushthread(L);
    lua_rawget(L, -2);
  }
  lua_pushvalue(L, -3);                        /* co anchors ud co */
  lua_insert(L, -2);                           /* co anchors co ud */
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static int sb_cocreate(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  sb_adopt(L, co);
  return 1;
}

int sb_thread_is_script(lua_State *L) {
  int ok = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SB_THREADS) == LUA_TTABLE) {
    lua_pushthread(L);
    ok = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return ok;
}

int sb_thread_budgeted(lua_State *L) { return *sb_slot(L) != NULL; }

int sb_charge(lua_State *L, uint64_t n, char *why, size_t whylen) {
  sb_call *c = *sb_slot(L);
  if (c == NULL) return 0;
  if (budget_charge(&c->b, n, budget_now_ns()) == BUDGET_OK) return 0;
  /* as sb_hook does once tripped: the script stops at its next instruction, whatever
   * pcall it runs under */
  lua_sethook(L, sb_hook, LUA_MASKCOUNT, 1);
  budget_describe(&c->b, why, whylen);
  return 1;
}

/* is_script_thread(co) -> bool: whether co was made by a script (coroutine.create/wrap in
 * a sandbox). Scripts may resume, close or yield only those. */
static int sb_is_script_thread(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  int ok = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SB_THREADS) == LUA_TTABLE) {
    lua_pushvalue(L, 1);
    ok = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushboolean(L, ok);
  return 1;
}

/* tripped() -> bool: whether the running thread's budget is spent. A hook cannot run
 * while another hook runs, and Lua calls a message handler for an error raised by a hook
 * before it unwinds, so a handler reached from our hook runs with hooks off; the
 * sandbox's xpcall asks this first and skips the script's handler. */
static int sb_tripped(lua_State *L) {
  sb_call *c = *sb_slot(L);
  lua_pushboolean(L, c != NULL && c->b.tripped != BUDGET_OK);
  return 1;
}

static const luaL_Reg sb_funcs[] = {
    {"pcall", sb_pcall},
    {"tripped", sb_tripped},
    {"is_script_thread", sb_is_script_thread},
    {"cocreate", sb_cocreate},
    {NULL, NULL},
};

int luaopen_orket_sandbox(lua_State *L) {
  luaL_newmetatable(L, SB_CALL);
  lua_pop(L, 1);
  luaL_newlib(L, sb_funcs);
  return 1;
}
