/* scriptenv.h: the budgets that hold a script's call, on a Lua state: which thread runs
 * under which budget, the hooks that charge it (a count hook for instructions, a call hook
 * that checks the deadline before every function call), the memory ceiling, and charging
 * work done in C. budget.c does the accounting, memcap.c the memory; lscriptenv.c is the
 * Lua module, await.c and lpattern.c ask about and charge the running thread. */
#ifndef ORKET_SCRIPTENV_H
#define ORKET_SCRIPTENV_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "budget.h"
#include "memcap.h"

#define SENV_HOOK_EVERY 1000 /* instructions between count-hook calls while within budget */

/* One budgeted call. It lives in a full userdata, so coroutines made during the call can
 * keep it alive after the call ends. */
typedef struct senv_call {
  budget b;
  size_t prev_limit;         /* the memory ceiling before this call */
  lua_Hook prev_hook;        /* the thread's hook before this call */
  int prev_mask, prev_count;
  struct senv_call *prev_call; /* the thread's budget before this call (nested calls) */
  /* A host hook that was on when the call began (a profiler's), called at its own events
   * and cadence during the call: NULL when there was none. */
  lua_Hook chain_hook;
  int chain_mask, chain_count;
  int mask;                    /* this call's hook mask: ours plus the chained hook's */
  int charge_left, chain_left; /* instructions to the next charge, the next chained count */
  int active;
  memcap *mem;                 /* the runtime's allocator */
  memcap_owner *owner;         /* whose the blocks this call makes are (set before senv_begin; NULL: kept) */
  memcap_owner *prev_owner;    /* the allocator's owner, grace and over before this call */
  size_t prev_grace, prev_over;
} senv_call;

/* Starts budget c (a zeroed full userdata at stack index idx) on L's running thread: 0
 * means unlimited for each limit. The blocks made during the call are c->owner's when it is
 * set (memcap.h). An allocation the ceiling refused, which Lua's retry after its emergency
 * collection takes a little above it (memcap.grace), stops the script at its next
 * instruction or call, as the other budgets do, naming its line (BUDGET_MEMORY). Nothing raises from here to senv_end but the budget (and
 * a host hook that was already on, which keeps running: see chain_hook). */
void senv_begin(lua_State *L, senv_call *c, int idx, uint64_t instructions, uint64_t timeout_ms,
              size_t memory);

/* Ends it: the thread's previous hook, budget and memory ceiling come back. Idempotent. */
void senv_end(lua_State *L, senv_call *c);

/* The error code for a call that ended with status: EBUDGET, ETIMEOUT, ENOMEM, ERUNTIME. */
const char *senv_code(const senv_call *c, int status);

/* Gives coroutine co (on the top of L) the budget of L's running thread, which it keeps
 * even after that call ends. */
void senv_adopt(lua_State *L, lua_State *co);

/* Whether the running thread of L is a coroutine a script made. Such a coroutine is
 * resumed by the script itself, so it must never be suspended on the loop. */
int senv_thread_is_script(lua_State *L);

/* Whether the thread at index idx is a coroutine a script made. */
int senv_is_script_thread(lua_State *L, int idx);

/* Whether the running thread of L runs under a script budget (a script's call, or a
 * coroutine a script made). */
int senv_thread_budgeted(lua_State *L);

/* Whether the running thread's budget is spent. */
int senv_tripped(lua_State *L);

/* Charges n instructions' worth of work done in C (a pattern match, say) to the running
 * thread's budget, and checks its deadline. Returns 0 while within budget (or when the
 * thread has none). Once spent: re-arms the hook so the script stops at its next
 * instruction, writes what was exceeded into why, and returns 1. */
int senv_charge(lua_State *L, uint64_t n, char *why, size_t whylen);

/* The running thread's memory budget is spent (a C function knows its result cannot fit
 * under the ceiling): raises "where: script: memory limit exceeded (N MiB)" at the script's
 * line, as the hook does for the other budgets. Without a budget on the thread, Lua's
 * memory error. */
void senv_memory_spent(lua_State *L);

/* Before a C function does `units` of work (elements, repetitions) for a script: charges
 * them, or raises "<what>: script: ..." when the budget is spent or the call asks for more
 * than BUDGET_CALL_CAP. Without a budget on the thread only the cap applies. */
void senv_charge_call(lua_State *L, uint64_t units, const char *what);

#endif
