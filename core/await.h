/* await.h: how a C operation that waits suspends the calling Lua coroutine and resumes it
 * from the libuv loop. Every waiting capability (timers, HTTP, subprocesses) follows this:
 *
 *   1. embed an rt_wait in the request struct (which also holds the uv handle);
 *   2. rt_wait_begin(L, &req->w, cancel_fn) anchors the coroutine, then start the uv work
 *      and `return rt_wait_yield(L);`
 *   3. in the uv callback: rt_wait_finish(&req->w, push, ud) pushes the results and resumes
 *      the coroutine through the runtime's waker; then close/free the request;
 *   4. cancel_fn is called instead of 3 when the coroutine is cancelled: it must stop the
 *      uv work and arrange the free; the coroutine is not resumed.
 */
#ifndef ORKET_AWAIT_H
#define ORKET_AWAIT_H

#include <lua.h>

#include "runtime.h"

typedef struct rt_wait rt_wait;
typedef void (*rt_wait_cancel_fn)(rt_wait *w);
/* Pushes the results for the resumed coroutine onto L (the main thread); returns how many. */
typedef int (*rt_wait_push_fn)(lua_State *L, void *ud);

struct rt_wait {
  orket_rt *rt;
  int co_ref;              /* registry reference to the coroutine; LUA_NOREF when over */
  rt_wait_cancel_fn cancel;
  size_t mem_headroom;     /* the script memory ceiling, lifted while suspended */
  struct memcap_owner *mem_owner; /* the script the blocks were charged to, none while suspended */
};

/* Raises unless L is a coroutine that can yield (the same error rt_wait_begin raises);
 * call it before allocating a request so the error leaks nothing. */
void rt_wait_require(lua_State *L);

/* Raises unless L is a coroutine that can yield. Anchors it; lifts any script memory
 * ceiling while suspended (other coroutines run meanwhile). */
void rt_wait_begin(lua_State *L, rt_wait *w, rt_wait_cancel_fn cancel);

/* Yields the coroutine; its resumption values are whatever rt_wait_finish pushes. */
int rt_wait_yield(lua_State *L);

/* Resumes the waiting coroutine with the values `push` provides (push may be NULL).
 * A no-op when the wait was cancelled. */
void rt_wait_finish(rt_wait *w, rt_wait_push_fn push, void *ud);

/* Cancels what coroutine `co` (at index idx of L) waits on, if anything. Returns 1 if there
 * was a wait. */
int rt_wait_cancel_thread(lua_State *L, int idx);

/* Cancels every pending wait (used at shutdown). */
void rt_wait_cancel_all(orket_rt *rt);

#endif
