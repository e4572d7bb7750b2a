/* lsqlseed.c: Lua module `orket.c.sqlseed`, the binding of sqlseed.c (a sandbox's SQLite
 * database made from the repository's seed, confined to its file). It blocks: only the
 * seed's own child process calls it (lua/orket/sandboxes/seed_child.lua), which the owner
 * can kill and the kernel bounds; never the loop of a process that does anything else. */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "modules.h"
#include "sqlseed.h"

typedef struct ls_req {
  atomic_int stop; /* never set: the process ends instead */
  int rc;
  char err[512];
} ls_req;

static int ls_results(lua_State *L, void *ud) {
  ls_req *q = ud;
  if (q->rc == SQLSEED_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, q->err);
  lua_pushstring(L, q->rc == SQLSEED_TIMEOUT ? "ETIMEDOUT"
                    : q->rc == SQLSEED_FULL  ? "EFBIG"
                    : q->rc == SQLSEED_STOPPED ? "ECANCELED"
                    : q->rc == SQLSEED_FILE  ? "EIO"
                    : q->rc == SQLSEED_MEMORY ? "ENOMEM"
                                             : "EINVAL");
  return 3;
}

/* exec(path, sql, {timeout_ms=, max_bytes=}) -> true | nil, message, CODE (EINVAL: the SQL
 * failed or did what a seed may not; ETIMEDOUT; EFBIG; ENOMEM; EIO: the file could not be
 * made). Makes the database file path, which must not exist, and runs sql in it, blocking
 * the caller: the seed's own child process (seed_child.lua), which does nothing else. */
static int ls_exec(lua_State *L) {
  size_t plen, len;
  const char *path = luaL_checklstring(L, 1, &plen);
  const char *sql = luaL_checklstring(L, 2, &len);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_getfield(L, 3, "timeout_ms");
  lua_Integer t = luaL_checkinteger(L, -1);
  lua_getfield(L, 3, "max_bytes");
  lua_Integer mb = luaL_checkinteger(L, -1);
  lua_pop(L, 2);
  luaL_argcheck(L, t >= 1 && t <= 24 * 3600 * 1000, 3, "timeout_ms must be 1 ms to a day");
  luaL_argcheck(L, mb >= 4096, 3, "max_bytes must be at least 4096");
  luaL_argcheck(L, strlen(path) == plen, 1, "a path holds no NUL");
  ls_req *q = lua_newuserdatauv(L, sizeof *q, 0); /* the Lua state's: freed by it */
  memset(q, 0, sizeof *q);
  atomic_init(&q->stop, 0);
  q->rc = sqlseed_run(path, sql, len, (int)t, (long long)mb, &q->stop, q->err, sizeof q->err);
  return ls_results(L, q);
}

static const luaL_Reg ls_funcs[] = {
    {"exec", ls_exec},
    {NULL, NULL},
};

int luaopen_orket_sqlseed(lua_State *L) {
  luaL_newlib(L, ls_funcs);
  /* ASan maps terabytes of shadow memory up front: a sanitizer build's seed process cannot
   * run under an address-space limit, so database.lua sets none there (a test build only) */
#if defined(__SANITIZE_ADDRESS__)
  lua_pushboolean(L, 1);
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  lua_pushboolean(L, 1);
#else
  lua_pushboolean(L, 0);
#endif
#else
  lua_pushboolean(L, 0);
#endif
  lua_setfield(L, -2, "SANITIZED");
  return 1;
}
