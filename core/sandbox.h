/* sandbox.h: what the rest of the core needs to know about sandboxed scripts (the budgets
 * themselves live in lsandbox.c, driven by a count hook). */
#ifndef ORKET_SANDBOX_H
#define ORKET_SANDBOX_H

#include <lua.h>

/* Whether the running thread of L is a coroutine a script made. Such a coroutine is
 * resumed by the script itself, so it must never be suspended on the loop. */
int sb_thread_is_script(lua_State *L);

#endif
