/* llockfile.c: Lua module `orket.c.lockfile`, a thin binding of lockfile.h.
 *   acquire(path[, what]) -> lock | nil, message, CODE, holder_pid, holder_what, holder_tag
 *     (CODE "EBUSY" when held; what: a word naming this holder's kind, written beside its pid)
 *   wait(path, mode, timeout_ms) -> lock | nil, message, CODE: mode "shared" or "exclusive",
 *     waiting (blocking the thread) at most timeout_ms; CODE "EBUSY" when it stayed held
 *   probe(path) -> held, holder_pid, tag, what: whether a process holds it, without taking it
 *   lock:tag(n)      writes what it is held for (a run id) next to the pid (and its what)
 *   lock:release()   also on garbage collection and at the end of a to-be-closed variable */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lockfile.h"
#include "modules.h"

#define LLF_MT "orket.lockfile"

typedef struct llf_lock {
  int fd;
  char what[32]; /* kept for lock:tag, which rewrites the line */
} llf_lock;

/* The optional what at index i: a short word ([a-z0-9_-], 1 to 31 characters), as the file
 * holds it for other processes to read; anything else is the caller's mistake. */
static const char *llf_what(lua_State *L, int i) {
  size_t n;
  const char *w = luaL_optlstring(L, i, NULL, &n);
  if (!w) return NULL;
  int ok = n > 0 && n < 32;
  for (size_t k = 0; ok && k < n; k++)
    ok = (w[k] >= 'a' && w[k] <= 'z') || (w[k] >= '0' && w[k] <= '9') || w[k] == '-' || w[k] == '_';
  luaL_argcheck(L, ok, i, "a word of 1 to 31 characters of a-z, 0-9, '-' and '_' expected");
  return w;
}

/* pushes a holder's pid, what and tag (nil for each unknown) */
static void llf_push_holder(lua_State *L, const lockfile_holder *h) {
  if (h->pid > 0) lua_pushinteger(L, (lua_Integer)h->pid);
  else lua_pushnil(L);
  if (h->what[0]) lua_pushstring(L, h->what);
  else lua_pushnil(L);
  if (h->tag > 0) lua_pushinteger(L, (lua_Integer)h->tag);
  else lua_pushnil(L);
}

static int llf_acquire(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *what = llf_what(L, 2);
  llf_lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);
  lk->fd = -1;
  lk->what[0] = '\0';
  luaL_setmetatable(L, LLF_MT);
  char err[512];
  const char *code = "EIO";
  lockfile_holder holder;
  int fd = lockfile_acquire(path, what, &holder, err, sizeof err, &code);
  if (fd < 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushstring(L, code);
    llf_push_holder(L, &holder);
    return 6;
  }
  lk->fd = fd;
  if (what) snprintf(lk->what, sizeof lk->what, "%s", what);
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
  lk->what[0] = '\0';
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

/* probe(path) -> held, pid, tag, what | nil, msg: whether a process holds the lock on path
 * (pid, tag and what as it wrote them, nil if unknown), without taking it */
static int llf_probe(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lockfile_holder h;
  int held = lockfile_probe(path, &h);
  if (held < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot read the lock %s: %s", path, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, held);
  if (h.pid > 0) lua_pushinteger(L, (lua_Integer)h.pid);
  else lua_pushnil(L);
  if (h.tag > 0) lua_pushinteger(L, (lua_Integer)h.tag);
  else lua_pushnil(L);
  if (h.what[0]) lua_pushstring(L, h.what);
  else lua_pushnil(L);
  return 4;
}

/* lock:tag(n): writes what the lock is held for (a positive integer) next to the pid */
static int llf_tag(lua_State *L) {
  llf_lock *lk = luaL_checkudata(L, 1, LLF_MT);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n > 0, 2, "positive integer expected");
  lockfile_tag(lk->fd, (long)n, lk->what[0] ? lk->what : NULL);
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
