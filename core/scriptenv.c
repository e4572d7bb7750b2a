/* scriptenv.c: budgets on a Lua state (see scriptenv.h). A thread's budget sits in its extra
 * space, where the hooks find it without a lookup; a registry table anchors the budgets
 * that coroutines still hold. Uses budget.c, memcap.c (through the runtime) and the Lua
 * API's hooks. */
#include "scriptenv.h"

#include <string.h>

#include <lauxlib.h>

#include "runtime.h"

static const char SENV_THREADS = 't'; /* registry key: weak-keyed table thread -> senv_call */

static senv_call **senv_slot(lua_State *L) { return (senv_call **)lua_getextraspace(L); }

static void senv_hook(lua_State *L, lua_Debug *ar);
static void senv_hook_chained(lua_State *L, lua_Debug *ar);

/* From now on every instruction and call of this thread raises again, so a pcall or an
 * error handler inside the script cannot carry on (Redis's kill path does the same). */
static void senv_rearm(lua_State *L) { lua_sethook(L, senv_hook, LUA_MASKCOUNT | LUA_MASKCALL, 1); }

/* Pushes where the script was, "file:line: ", or "": in a hook, level 0 is the function
 * that was running (a Lua function's line), which luaL_error's level 1 passes over (its
 * caller, often a C function with no line: the message named no line of the script). Under
 * C functions (a library function and its guard, a hook on a C call) the innermost
 * function with a line, a few levels up at most. */
static void senv_where(lua_State *L) {
  lua_Debug ar;
  for (int level = 0; level < 4 && lua_getstack(L, level, &ar); level++) {
    if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
      lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
      return;
    }
  }
  lua_pushliteral(L, "");
}

static int senv_raise(lua_State *L, senv_call *c) {
  char buf[160];
  senv_rearm(L);
  senv_where(L);
  lua_pushfstring(L, "script: %s", budget_describe(&c->b, buf, sizeof buf));
  lua_concat(L, 2);
  return lua_error(L);
}

/* Whether the function a call hook reports is the runtime's message handler, or one it
 * calls (Lua's string buffer closes its box through a call). The handler describes the
 * error that spent the budget (a match stopped by it, say) and runs no script code, so it
 * may finish: its message says more than a second budget error would. */
static int senv_in_handler(lua_State *L, lua_Debug *ar) {
  lua_Debug caller;
  int found = 0;
  lua_getinfo(L, "f", ar);
  found = lua_tocfunction(L, -1) == rt_traceback;
  lua_pop(L, 1);
  if (!found && lua_getstack(L, 1, &caller)) {
    lua_getinfo(L, "f", &caller);
    found = lua_tocfunction(L, -1) == rt_traceback;
    lua_pop(L, 1);
  }
  return found;
}

/* The count hook charges instructions on the precise clock. The call hook runs before
 * every function call, C functions included: a script whose every instruction is a long
 * C call still meets its deadline, at the cost of a coarse clock read per call. */
/* Whether the call's ceiling was passed (memcap.over): its budget is spent then. */
static int senv_over(senv_call *c) {
  if (c->mem == NULL || c->mem->over == 0 || c->b.tripped != BUDGET_OK) return 0;
  c->b.tripped = BUDGET_MEMORY;
  return 1;
}

/* Whether this event is a call of a C function while the call's budget is spent (or its
 * memory ceiling passed): such a call runs. The error already raised is unwinding, and a
 * to-be-closed value's close is such a call (a store's read reset by it: refused, the read
 * kept its statement open and the write lock); the script's next instruction raises again. */
static int senv_spent_c_call(lua_State *L, senv_call *c, lua_Debug *ar) {
  if (ar->event != LUA_HOOKCALL && ar->event != LUA_HOOKTAILCALL) return 0;
  if (c->b.tripped == BUDGET_OK && (c->mem == NULL || c->mem->over == 0)) return 0;
  return lua_getinfo(L, "S", ar) && ar->what[0] == 'C';
}

static void senv_hook(lua_State *L, lua_Debug *ar) {
  senv_call *c = *senv_slot(L);
  if (c == NULL) return;
  if (senv_spent_c_call(L, c, ar)) return;
  if (senv_over(c)) senv_raise(L, c);
  budget_verdict v = ar->event == LUA_HOOKCOUNT
                         ? budget_charge(&c->b, SENV_HOOK_EVERY, budget_now_ns())
                         : budget_check_deadline(&c->b, budget_coarse_ns());
  if (v == BUDGET_OK) return;
  if (ar->event != LUA_HOOKCOUNT && senv_in_handler(L, ar)) return;
  senv_raise(L, c);
}

static int senv_chain_call(lua_State *L) {
  senv_call *c = lua_touserdata(L, 1);
  c->chain_hook(L, lua_touserdata(L, 2));
  return 0;
}

/* Calls the chained hook protected, with no message handler. The script can make it fail
 * (nest calls to the C-call limit, fill the Lua stack, spend the memory ceiling), and Lua
 * runs the current handler before unwinding, still inside our hook with hooks off: the
 * script's own xpcall handler would then run with no budget and no deadline. Here the error
 * ends in this pcall, and the chained hook is dropped for the rest of the call: a broken
 * profiler loses samples but neither fails nor frees the script. The profiler sees this
 * C function as one more level between it and the sampled function. */
static void senv_chain(lua_State *L, senv_call *c, lua_Debug *ar) {
  if (!lua_checkstack(L, 3)) return;
  lua_pushcfunction(L, senv_chain_call);
  lua_pushlightuserdata(L, c);
  lua_pushlightuserdata(L, ar);
  if (lua_pcall(L, 2, 0, 0) == LUA_OK) return;
  lua_pop(L, 1);
  c->chain_count = 0;
  c->chain_mask = 0;
  c->mask = LUA_MASKCOUNT | LUA_MASKCALL;
  lua_sethook(L, senv_hook_chained, c->mask, c->charge_left);
}

/* senv_hook for a call that began under a host hook (a profiler's count hook), which it
 * chains: a hook function of its own, so a call without one pays nothing for it. The budget
 * is charged SENV_HOOK_EVERY at exactly the instructions senv_hook charges it at, and the
 * chained hook gets its count events every chain_count instructions of the script: the
 * count fires at whichever comes first (the interval just run is the thread's hook count).
 * Its call, return and line events follow ours. The chained hook is host code, run with
 * hooks off, so the budget does not count its instructions; once the budget is spent
 * senv_raise re-arms plain senv_hook and the chained hook is called no more. */
static void senv_hook_chained(lua_State *L, lua_Debug *ar) {
  senv_call *c = *senv_slot(L);
  if (c == NULL) return;
  if (c->chain_hook == NULL) { /* a host-made thread copied the hook from a chained call */
    lua_sethook(L, senv_hook, LUA_MASKCOUNT | LUA_MASKCALL, SENV_HOOK_EVERY);
    senv_hook(L, ar);
    return;
  }
  if (senv_spent_c_call(L, c, ar)) return;
  if (ar->event == LUA_HOOKCOUNT || ar->event == LUA_HOOKCALL || ar->event == LUA_HOOKTAILCALL) {
    if (senv_over(c)) senv_raise(L, c);
  }
  if (ar->event == LUA_HOOKCOUNT) {
    if (c->b.tripped != BUDGET_OK) senv_raise(L, c); /* spent on another thread of the call */
    int ran = lua_gethookcount(L), fire = 0;
    /* The count is shared by the call's threads, and each thread's interval was set from it
     * at that thread's last event: an interval can overrun it, and the overrun is carried
     * (once round at most: ran <= SENV_HOOK_EVERY), so every instruction is charged. */
    c->charge_left -= ran;
    while (c->charge_left <= 0) {
      c->charge_left += SENV_HOOK_EVERY;
      if (budget_charge(&c->b, SENV_HOOK_EVERY, budget_now_ns()) != BUDGET_OK) senv_raise(L, c);
    }
    int next = c->charge_left;
    if (c->chain_count > 0) {
      c->chain_left -= ran;
      if (c->chain_left <= 0) {
        c->chain_left = c->chain_count;
        fire = 1;
      }
      if (c->chain_left < next) next = c->chain_left;
    }
    if (fire) senv_chain(L, c, ar);
    /* The count runs on while a Lua hook runs (calling no hooks), so the chained hook's own
     * instructions would be charged to the script: the interval starts again after it. And
     * should it have changed the thread's hook, ours goes back on: nothing but the call's
     * end takes the budget's hook off. */
    if (fire || next != ran) lua_sethook(L, senv_hook_chained, c->mask, next);
    return;
  }
  if (ar->event == LUA_HOOKCALL || ar->event == LUA_HOOKTAILCALL) {
    if (budget_check_deadline(&c->b, budget_coarse_ns()) != BUDGET_OK) {
      if (senv_in_handler(L, ar)) return;
      senv_raise(L, c);
    }
    if (!(c->chain_mask & LUA_MASKCALL)) return;
  }
  if (c->chain_mask == 0) return; /* dropped (see senv_chain) while this thread had its mask */
  senv_chain(L, c, ar); /* return and line events reach us only when it asked for them */
  if (lua_gethook(L) != senv_hook_chained) lua_sethook(L, senv_hook_chained, c->mask, 1);
}

/* The anchor table (registry, weak keys) maps each live call's address (lightuserdata,
 * removed when the call ends) and each adopted coroutine to the call's userdata, so a
 * coroutine that outlives its call never sees a freed budget. Leaves it on the stack. */
static void senv_anchors(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SENV_THREADS) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &SENV_THREADS);
}

/* A thread has one hook. One the host put on before the call (a profiler's count hook) is
 * chained, not dropped, so it still sees the script run; a nested call chains what the
 * outer one did. */
static void senv_begin_chained(lua_State *L, senv_call *c) {
  if (c->prev_hook == senv_hook_chained) {
    if (c->prev_call == NULL || c->prev_call->chain_hook == NULL) { /* copied the hook only */
      lua_sethook(L, senv_hook, LUA_MASKCOUNT | LUA_MASKCALL, SENV_HOOK_EVERY);
      return;
    }
    c->chain_hook = c->prev_call->chain_hook;
    c->chain_mask = c->prev_call->chain_mask;
    c->chain_count = c->prev_call->chain_count;
  } else {
    c->chain_hook = c->prev_hook;
    c->chain_mask = c->prev_mask;
    c->chain_count = (c->prev_mask & LUA_MASKCOUNT) ? c->prev_count : 0;
  }
  c->mask = LUA_MASKCOUNT | LUA_MASKCALL | (c->chain_mask & (LUA_MASKRET | LUA_MASKLINE));
  c->charge_left = SENV_HOOK_EVERY;
  c->chain_left = c->chain_count;
  lua_sethook(L, senv_hook_chained, c->mask,
              c->chain_count > 0 && c->chain_count < SENV_HOOK_EVERY ? c->chain_count : SENV_HOOK_EVERY);
}

/* The growth of the heap since its last full collection that a budgeted call starts
 * with before one is made first (senv_begin): half the call's budget, at least 32 MiB, so
 * that the garbage of ordinary work between collections never makes a call pay for one. */
static size_t senv_slack(size_t memory) {
  size_t half = memory / 2, floor = (size_t)32 << 20;
  return half > floor ? half : floor;
}

void senv_begin(lua_State *L, senv_call *c, int idx, uint64_t instructions, uint64_t timeout_ms,
              size_t memory) {
  idx = lua_absindex(L, idx);
  budget_start(&c->b, instructions, timeout_ms);
  senv_anchors(L);
  lua_pushvalue(L, idx);
  lua_rawsetp(L, -2, c);
  lua_pop(L, 1);
  memcap *mem = &rt_get(L)->mem;
  c->prev_hook = lua_gethook(L);
  c->prev_mask = lua_gethookmask(L);
  c->prev_count = lua_gethookcount(L);
  c->prev_call = *senv_slot(L);
  /* The ceiling is what is in use plus the budget, and what is in use counts the garbage
   * of earlier calls, which an emergency collection inside this call frees: a call stopped
   * at its cap (a memory bomb) left its budget's worth behind, the next one got twice the
   * room, and so on, the heap growing by a budget a call without end. Past a slack of
   * growth since the last such collection, a full one comes first, so the ceiling stands
   * on what is live (a call's cost only then: a heap that stays near its live size never
   * pays it). */
  if (memory && mem->used > mem->settled && mem->used - mem->settled > senv_slack(memory)) {
    lua_gc(L, LUA_GCCOLLECT);
    mem->settled = mem->used;
  }
  c->mem = mem;
  c->b.memory = memory;
  c->prev_owner = mem->owner;
  c->prev_grace = mem->grace;
  c->prev_over = mem->over;
  if (c->owner) mem->owner = c->owner;
  /* the retry after an emergency collection may pass the ceiling by an eighth of the
   * budget, and at least 16 MiB (the budget when it is smaller): room to raise the error
   * at the script's line, and for the last doubling of a Lua stack (8 MiB to its 16 MiB
   * most), which a recursion without end meets */
  if (memory) {
    size_t floor = memory < ((size_t)16 << 20) ? memory : (size_t)16 << 20;
    mem->grace = memory / 8 > floor ? memory / 8 : floor;
  }
  mem->over = 0;
  c->prev_limit = memory ? memcap_push(mem, memory) : mem->limit;
  c->active = 1;
  *senv_slot(L) = c;
  if (c->prev_hook == NULL || c->prev_hook == senv_hook)
    lua_sethook(L, senv_hook, LUA_MASKCOUNT | LUA_MASKCALL, SENV_HOOK_EVERY);
  else
    senv_begin_chained(L, c);
}

void senv_end(lua_State *L, senv_call *c) {
  if (!c->active) return;
  c->active = 0;
  senv_anchors(L);
  lua_pushnil(L);
  lua_rawsetp(L, -2, c);
  lua_pop(L, 1);
  lua_sethook(L, c->prev_hook, c->prev_mask, c->prev_count);
  *senv_slot(L) = c->prev_call;
  memcap *mem = &rt_get(L)->mem;
  memcap_restore(mem, c->prev_limit);
  mem->owner = c->prev_owner;
  mem->grace = c->prev_grace;
  mem->over = c->prev_over;
}

const char *senv_code(const senv_call *c, int status) {
  if (status == LUA_ERRMEM) return "ENOMEM";
  switch (c->b.tripped) {
  case BUDGET_MEMORY: return "ENOMEM";
  case BUDGET_INSTRUCTIONS:
  case BUDGET_CALL: return "EBUDGET";
  case BUDGET_DEADLINE: return "ETIMEOUT";
  default: return "ERUNTIME";
  }
}

void senv_adopt(lua_State *L, lua_State *co) {
  senv_call *c = *senv_slot(L);
  *senv_slot(co) = c;
  if (c == NULL) return;
  senv_anchors(L);                           /* co anchors */
  if (lua_rawgetp(L, -1, c) == LUA_TNIL) { /* the call has ended: the creator holds it */
    lua_pop(L, 1);
    lua_pushthread(L);
    lua_rawget(L, -2);
  }
  lua_pushvalue(L, -3); /* co anchors ud co */
  lua_insert(L, -2);    /* co anchors co ud */
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

int senv_is_script_thread(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  int ok = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SENV_THREADS) == LUA_TTABLE) {
    lua_pushvalue(L, idx);
    ok = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return ok;
}

int senv_thread_is_script(lua_State *L) {
  lua_pushthread(L);
  int ok = senv_is_script_thread(L, -1);
  lua_pop(L, 1);
  return ok;
}

int senv_thread_budgeted(lua_State *L) { return *senv_slot(L) != NULL; }

int senv_tripped(lua_State *L) {
  senv_call *c = *senv_slot(L);
  return c != NULL && c->b.tripped != BUDGET_OK;
}

int senv_charge(lua_State *L, uint64_t n, char *why, size_t whylen) {
  senv_call *c = *senv_slot(L);
  if (c == NULL) return 0;
  if (budget_charge(&c->b, n, budget_now_ns()) == BUDGET_OK) return 0;
  senv_rearm(L);
  budget_describe(&c->b, why, whylen);
  return 1;
}

void senv_charge_call(lua_State *L, uint64_t units, const char *what) {
  senv_call *c = *senv_slot(L);
  if (c == NULL) {
    if (units > BUDGET_CALL_CAP)
      luaL_error(L, "%s: one call asked for %llu units of work; the limit is %llu", what,
                 (unsigned long long)units, (unsigned long long)BUDGET_CALL_CAP);
    return;
  }
  if (budget_charge_call(&c->b, units, budget_now_ns()) == BUDGET_OK) return;
  char buf[160];
  senv_rearm(L);
  luaL_error(L, "%s: script: %s", what, budget_describe(&c->b, buf, sizeof buf));
}

void senv_memory_spent(lua_State *L) {
  senv_call *c = *senv_slot(L);
  if (c == NULL) {
    lua_pushliteral(L, "not enough memory");
    lua_error(L);
    return;
  }
  if (c->b.tripped == BUDGET_OK) c->b.tripped = BUDGET_MEMORY;
  senv_raise(L, c);
}
