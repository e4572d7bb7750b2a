/* sandbox.h: what the rest of the core needs to know about sandboxed scripts (the budgets
 * themselves live in lsandbox.c, driven by a count hook). */
#ifndef ORKET_SANDBOX_H
#define ORKET_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

/* Whether the running thread of L is a coroutine a script made. Such a coroutine is
 * resumed by the script itself, so it must never be suspended on the loop. */
int sb_thread_is_script(lua_State *L);

/* Whether the running thread of L runs under a sandbox budget (a script's call, or a
 * coroutine a script made). */
int sb_thread_budgeted(lua_State *L);

/* Charges n instructions' worth of work done in C (a pattern match, say) to the running
 * thread's budget, and checks its deadline. Returns 0 while within budget (or when the
 * thread has none). Once spent: re-arms the hook so the script stops at its next
 * instruction, writes what was exceeded into why, and returns 1. */
int sb_charge(lua_State *L, uint64_t n, char *why, size_t whylen);

#endif
