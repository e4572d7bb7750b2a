/* lruntime.c: Lua module `orket.c.runtime`: the loop, the waker hook-up, timers
 * (`sleep`, the first operation that suspends a coroutine: the pattern in await.h), the
 * clock and memory figures, read_script for operator files, and cloexec.
 * lua/orket/task.lua builds tasks on top. */
#define _GNU_SOURCE /* strerrorname_np */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "await.h"
#include "budget.h"
#include "modules.h"
#include "runtime.h"

static int rtl_version(lua_State *L) {
  lua_pushliteral(L, ORKET_VERSION);
  return 1;
}

/* now() -> milliseconds on the monotonic clock, as a float */
static int rtl_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)budget_now_ns() / 1e6);
  return 1;
}

/* ---- sleep: a timer that suspends the calling coroutine --------------------------------- */

typedef struct rtl_sleep {
  rt_wait w;
  uv_timer_t timer;
} rtl_sleep;

static void rtl_sleep_free(uv_handle_t *h) { free(h->data); }

static void rtl_sleep_fired(uv_timer_t *t) {
  rtl_sleep *s = t->data;
  uv_close((uv_handle_t *)t, rtl_sleep_free); /* frees s on the next loop turn */
  rt_wait_finish(&s->w, NULL, NULL);
}

static void rtl_sleep_cancel(rt_wait *w) {
  rtl_sleep *s = (rtl_sleep *)w; /* w is the first member */
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, rtl_sleep_free);
}

/* sleep(ms): suspends the calling task for ms milliseconds; other tasks run meanwhile. */
static int rtl_sleep_fn(lua_State *L) {
  lua_Number ms = luaL_checknumber(L, 1);
  luaL_argcheck(L, ms >= 0 && ms <= 1e12, 1, "must be between 0 and 1e12");
  orket_rt *rt = rt_get(L);
  rt_wait_require(L); /* before the malloc, so that error leaks nothing */
  rtl_sleep *s = malloc(sizeof *s);
  if (s == NULL) return luaL_error(L, "sleep: out of memory");
  rt_wait_begin(L, &s->w, rtl_sleep_cancel);
  uv_update_time(&rt->loop); /* the loop caches "now"; measure from the real now */
  uv_timer_init(&rt->loop, &s->timer);
  s->timer.data = s;
  uv_timer_start(&s->timer, rtl_sleep_fired, (uint64_t)ms, 0);
  return rt_wait_yield(L);
}

/* ---- the loop ------------------------------------------------------------------------- */

/* run([mode]) -> alive: mode "default" (until nothing is left), "once" or "nowait" */
static int rtl_run(lua_State *L) {
  static const char *const modes[] = {"default", "once", "nowait", NULL};
  static const uv_run_mode uvmodes[] = {UV_RUN_DEFAULT, UV_RUN_ONCE, UV_RUN_NOWAIT};
  int m = luaL_checkoption(L, 1, "default", modes);
  orket_rt *rt = rt_get(L);
  if (rt->loop_running) return luaL_error(L, "run: the loop is already running");
  lua_pushboolean(L, rt_run(rt, uvmodes[m]) != 0);
  return 1;
}

/* set_waker(fn): fn(co, ...) is called from the loop to resume a coroutine whose wait
 * finished. set_reporter(fn): fn(msg) receives errors raised in loop callbacks. */
static int rtl_set_ref(lua_State *L, int *ref) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  lua_pushvalue(L, 1);
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}
static int rtl_set_waker(lua_State *L) { return rtl_set_ref(L, &rt_get(L)->waker_ref); }
static int rtl_set_reporter(lua_State *L) { return rtl_set_ref(L, &rt_get(L)->reporter_ref); }

/* cancel(co) -> bool: stops what coroutine co waits on (it will not be resumed by it). */
static int rtl_cancel(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  lua_pushboolean(L, rt_wait_cancel_thread(L, 1));
  return 1;
}

/* stats() -> {memory, memory_peak, memory_limit, waits, left_running} */
static int rtl_stats(lua_State *L) {
  orket_rt *rt = rt_get(L);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)rt->mem.used);
  lua_setfield(L, -2, "memory");
  lua_pushinteger(L, (lua_Integer)rt->mem.peak);
  lua_setfield(L, -2, "memory_peak");
  if (rt->mem.limit != SIZE_MAX) {
    lua_pushinteger(L, (lua_Integer)rt->mem.limit);
    lua_setfield(L, -2, "memory_limit");
  }
  lua_pushinteger(L, rt->pending_waits);
  lua_setfield(L, -2, "waits");
  lua_pushinteger(L, rt->left_running);
  lua_setfield(L, -2, "left_running");
  return 1;
}

static int rtl_home(lua_State *L) {
  lua_pushstring(L, rt_get(L)->home);
  return 1;
}

static const char *rtl_errno_code(int e) {
  switch (e) {
  case ENOENT: return "ENOENT";
  case ENOTDIR: return "ENOTDIR";
  case EACCES: return "EACCES";
  case EPERM: return "EPERM";
  case ELOOP: return "ELOOP";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  case EISDIR: return "EISDIR";
  case EINVAL: return "EINVAL";
  case EFBIG: return "EFBIG";
  case ENOMEM: return "ENOMEM";
  default: return "EIO";
  }
}

static int rtl_push_text(lua_State *L) {
  lua_pushlstring(L, (const char *)lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
  return 1;
}

/* read_script(path [, max=1 MiB]) -> text | nil, "path: message", CODE (rt_read_script) */
static int rtl_read_script(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, 1024 * 1024);
  luaL_argcheck(L, max >= 0 && max <= 256 * 1024 * 1024, 2, "must be from 0 to 268435456");
  char *text;
  size_t len;
  const char *kind;
  luaL_checkstack(L, 4, NULL); /* so nothing below raises while text is held */
  int rc = rt_read_script(path, (size_t)max, &text, &len, &kind);
  if (rc == 0) {
    /* the copy into a Lua string may raise (memory cap): protected, so text is freed */
    lua_pushcfunction(L, rtl_push_text);
    lua_pushlightuserdata(L, text);
    lua_pushinteger(L, (lua_Integer)len);
    int st = lua_pcall(L, 2, 1, 0);
    free(text);
    if (st != LUA_OK) return lua_error(L);
    return 1;
  }
  lua_pushnil(L);
  if (rc == EFBIG)
    lua_pushfstring(L, "%s: larger than %I bytes; a script or project file is read only up to that size", path,
                    max);
  else if (kind)
    lua_pushfstring(L, "%s: is %s, not a regular file; only regular files are read", path, kind);
  else
    lua_pushfstring(L, "%s: cannot read: %s", path, strerror(rc));
  lua_pushstring(L, rtl_errno_code(rc));
  return 3;
}

/* rt.ignore_stop_signals(): SIGINT, SIGTERM and SIGHUP discarded from now on (rt_ignore_stop_signals) */
static int rtl_ignore_stop_signals(lua_State *L) {
  (void)L;
  rt_ignore_stop_signals();
  return 0;
}

/* rt.cloexec(fd) -> true | nil, msg, CODE: fd is closed in the programs this process starts
 * (a descriptor it was given, e.g. orket worker's --stop-budget-fd, is not close-on-exec) */
static int rtl_cloexec(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "not a descriptor");
  int flags = fcntl((int)fd, F_GETFD);
  if (flags < 0 || fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "descriptor %d: %s", (int)fd, strerror(e));
    lua_pushstring(L, rtl_errno_code(e));
    return 3;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* rt.errno_text(n) -> NAME, words ("ENOENT", "No such file or directory") | nil for a number
 * the C library has no name for. Asked of glibc, not libuv: libuv's names of a number it
 * does not know are allocated and never freed. */
static int rtl_errno_text(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  const char *name = n > 0 && n < 4096 ? strerrorname_np((int)n) : NULL;
  if (name == NULL) return 0;
  lua_pushstring(L, name);
  lua_pushstring(L, strerror((int)n));
  return 2;
}

/* inherited_fd(n) -> whether descriptor n was open when orket started (the caller's);
 * nil past 66, which the start did not look at */
static int rtl_inherited_fd(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n > 66) return 0;
  lua_pushboolean(L, n >= 3 && (rt_get(L)->inherited_fds >> (n - 3)) & 1);
  return 1;
}

static const luaL_Reg rtl_funcs[] = {
    {"inherited_fd", rtl_inherited_fd},
    {"cloexec", rtl_cloexec},
    {"errno_text", rtl_errno_text},
    {"version", rtl_version},
    {"now", rtl_now},
    {"sleep", rtl_sleep_fn},
    {"run", rtl_run},
    {"set_waker", rtl_set_waker},
    {"set_reporter", rtl_set_reporter},
    {"cancel", rtl_cancel},
    {"stats", rtl_stats},
    {"home", rtl_home},
    {"read_script", rtl_read_script},
    {"ignore_stop_signals", rtl_ignore_stop_signals},
    {NULL, NULL},
};

int luaopen_orket_runtime(lua_State *L) {
  luaL_newlib(L, rtl_funcs);
  return 1;
}
