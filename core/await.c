/* await.c: suspend a coroutine on a C operation and resume it from the loop (see await.h).
 * Pending waits are indexed in a registry table keyed by coroutine, so a cancelled task's
 * operation can be found and stopped. */
#include "await.h"
#include "scriptenv.h"

#include <stdint.h>

#include <lauxlib.h>

static const char AWAIT_WAITS = 'w'; /* registry key: table thread -> lightuserdata rt_wait */

static void await_waits(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &AWAIT_WAITS) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &AWAIT_WAITS);
  }
}

void rt_wait_require(lua_State *L) {
  if (!lua_isyieldable(L))
    luaL_error(L, "this operation waits, so it must run inside a task (orket.spawn) or a "
                  "script run by 'orket lua'");
  /* The loop would resume it behind the script's back, in the middle of something else. */
  if (senv_thread_is_script(L))
    luaL_error(L, "this operation waits, so it cannot run inside a coroutine a script made");
}

void rt_wait_begin(lua_State *L, rt_wait *w, rt_wait_cancel_fn cancel) {
  orket_rt *rt = rt_get(L);
  rt_wait_require(L);
  lua_pushthread(L);
  /* stack: thread */
  w->rt = rt;
  w->cancel = cancel;
  rt->cancel_waits = rt_wait_cancel_all;
  await_waits(L);
  lua_pushvalue(L, -2);
  lua_pushlightuserdata(L, w);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  w->co_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* pops the thread */
  memcap *m = &rt->mem;
  w->mem_headroom = memcap_headroom(m);
  m->limit = SIZE_MAX;
  /* what other tasks make while this one waits is not its script's */
  w->mem_owner = m->owner;
  m->owner = NULL;
  rt->pending_waits++;
}

int rt_wait_yield(lua_State *L) { return lua_yield(L, 0); }

/* Forgets the wait; leaves the coroutine on the stack of L. */
static void await_release(rt_wait *w, lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, w->co_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, w->co_ref);
  w->co_ref = LUA_NOREF;
  w->rt->pending_waits--;
  await_waits(L);
  lua_pushvalue(L, -2);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

void rt_wait_finish(rt_wait *w, rt_wait_push_fn push, void *ud) {
  if (w->co_ref == LUA_NOREF) return;
  orket_rt *rt = w->rt;
  lua_State *L = rt->L;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->waker_ref); /* waker */
  await_release(w, L);                              /* waker co */
  int n = push ? push(L, ud) : 0;                   /* waker co results... */
  /* Give the coroutine back its memory ceiling, measured from what is in use now. */
  if (w->mem_headroom != SIZE_MAX) memcap_push(&rt->mem, w->mem_headroom);
  rt->mem.owner = w->mem_owner;
  if (rt_pcall(L, 1 + n, 0) != LUA_OK) rt_report(rt, L);
  lua_settop(L, top);
}

int rt_wait_cancel_thread(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  await_waits(L);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  rt_wait *w = lua_touserdata(L, -1);
  lua_pop(L, 2);
  if (w == NULL) return 0;
  await_release(w, L);
  lua_pop(L, 1);
  w->cancel(w);
  return 1;
}

void rt_wait_cancel_all(orket_rt *rt) {
  lua_State *L = rt->L;
  await_waits(L);
  int t = lua_gettop(L);
  /* Cancelling edits the table, so collect the threads first. */
  lua_newtable(L);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, t + 1, ++n);
  }
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, t + 1, i);
    rt_wait_cancel_thread(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}
