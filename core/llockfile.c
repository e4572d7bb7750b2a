/* llockfile.c: Lua module `orket.c.lockfile`, a thin binding of lockfile.h.
 *   acquire(path) -> lock | nil, message, CODE, holder_pid   (CODE "EBUSY" when held)
 *   wait(path, mode, timeout_ms) -> lock | nil, message, CODE: mode "shared" or "exclusive",
 *     waiting (blocking the thread) at most timeout_ms; CODE "EBUSY" when it stayed held
 *   probe(path) -> held, holder_pid, tag: whether a process holds it, without taking it
 *   lock:tag(n)      writes what it is held for (a run id) next to the pid
 *   lock:release()   also on garbage collection and at the end of a to-be-closed variable */
#include <errno.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lockfile.h"
#include "modules.h"

#define LLF_MT "orket.lockfile"

typedef struct llf_lock {
  int fd;
} llf_lock;

static int llf_acquire(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  llf_lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);
  lk->fd = -1;
  luaL_setmetatable(L, LLF_MT);
  char err[512];
  const char *code = "EIO";
  pid_t holder = 0;
  int fd = lockfile_acquire(path, &holder, err, sizeof err, &code);
  if (fd < 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushstring(L, code);
    if (holder > 0) lua_pushinteger(L, (lua_Integer)holder);
    else lua_pushnil(L);
    return 4;
  }
  lk->fd = fd;
  return 1;
}

/* wait(path, mode, timeout_ms): see lockfile_wait */
static int llf_wait(lua_State *L) {
  static const char *const modes[] = {"exclusive", "shared", NULL};
  const char *path = luaL_checkstring(L, 1);
  int shared = luaL_checkoption(L, 2, NULL, modes);
  lua_Integer ms = luaL_checkinteger(L, 3);
  luaL_argcheck(L, ms >= 0 && ms <= 3600000, 3, "a wait of 0 to 3600000 ms expected");
  llf_lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);
  lk->fd = -1;
  luaL_setmetatable(L, LLF_MT);
  char err[512];
  const char *code = "EIO";
  int fd = lockfile_wait(path, shared, (int)ms, err, sizeof err, &code);
  if (fd < 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushstring(L, code);
    return 3;
  }
  lk->fd = fd;
  return 1;
}

static int llf_release(lua_State *L) {
  llf_lock *lk = luaL_checkudata(L, 1, LLF_MT);
  lockfile_release(lk->fd);
  lk->fd = -1;
  return 0;
}

static int llf_held(lua_State *L) {
  llf_lock *lk = luaL_checkudata(L, 1, LLF_MT);
  lua_pushboolean(L, lk->fd >= 0);
  return 1;
}

/* probe(path) -> held, pid | nil, msg: whether a process holds the lock on path (pid as it
 * wrote it, nil if unknown), without taking it */
static int llf_probe(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  pid_t holder = 0;
  long tag = 0;
  int held = lockfile_probe(path, &holder, &tag);
  if (held < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot read the lock %s: %s", path, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, held);
  if (held && holder > 0) lua_pushinteger(L, (lua_Integer)holder);
  else lua_pushnil(L);
  if (held && tag > 0) lua_pushinteger(L, (lua_Integer)tag);
  else lua_pushnil(L);
  return 3;
}

/* lock:tag(n): writes what the lock is held for (a positive integer) next to the pid */
static int llf_tag(lua_State *L) {
  llf_lock *lk = luaL_checkudata(L, 1, LLF_MT);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n > 0, 2, "positive integer expected");
  lockfile_tag(lk->fd, (long)n);
  return 0;
}

static const luaL_Reg llf_methods[] = {
    {"release", llf_release}, {"held", llf_held}, {"tag", llf_tag}, {"__gc", llf_release}, {"__close", llf_release}, {NULL, NULL}};

int luaopen_orket_lockfile(lua_State *L) {
  luaL_newmetatable(L, LLF_MT);
  luaL_setfuncs(L, llf_methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, llf_acquire);
  lua_setfield(L, -2, "acquire");
  lua_pushcfunction(L, llf_probe);
  lua_setfield(L, -2, "probe");
  lua_pushcfunction(L, llf_wait);
  lua_setfield(L, -2, "wait");
  return 1;
}
