/* lsqlseed.c: Lua module `orket.c.sqlseed`, the binding of sqlseed.c (a sandbox's SQLite
 * database made from the repository's seed, confined to its file). The seed runs on the
 * loop's thread pool, so the calling task waits and the loop goes on (a server keeps
 * answering); cancelling the task stops the seed at its next look at the clock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#include "await.h"
#include "modules.h"
#include "sqlseed.h"

typedef struct ls_req {
  rt_wait w; /* first: the cancel callback gets this address */
  uv_work_t work;
  atomic_int stop;
  int cancelled, rc, timeout_ms;
  long long max_bytes;
  size_t len;
  char err[512];
  char *path, *sql;
} ls_req;

static void ls_free(ls_req *q) {
  free(q->path);
  free(q->sql);
  free(q);
}

static void ls_work(uv_work_t *wk) {
  ls_req *q = wk->data;
  q->rc = sqlseed_run(q->path, q->sql, q->len, q->timeout_ms, q->max_bytes, &q->stop, q->err, sizeof q->err);
}

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
                                             : "EINVAL");
  return 3;
}

static void ls_done(uv_work_t *wk, int status) {
  ls_req *q = wk->data;
  if (status != 0 && q->rc == SQLSEED_OK) { /* never ran */
    q->rc = SQLSEED_FILE;
    snprintf(q->err, sizeof q->err, "the seed did not run: %s", uv_strerror(status));
  }
  if (!q->cancelled) rt_wait_finish(&q->w, ls_results, q);
  ls_free(q);
}

/* A running seed cannot be waited for any more: it is told to stop (within its next
 * thousand steps) and ls_done frees it without touching the Lua state. */
static void ls_cancel(rt_wait *w) {
  ls_req *q = (ls_req *)w;
  q->cancelled = 1;
  atomic_store(&q->stop, 1);
}

/* run(path, sql, {timeout_ms=, max_bytes=}) -> true | nil, message, CODE (EINVAL: the SQL
 * failed or did what a seed may not; ETIMEDOUT; EFBIG; EIO: the file could not be made).
 * Makes the database file path, which must not exist, and runs sql in it. Waits (call it
 * in a task) while a thread of the pool runs it. */
static int ls_run(lua_State *L) {
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
  rt_wait_require(L); /* before the allocations, so that its error leaks nothing */
  orket_rt *rt = rt_get(L);
  ls_req *q = calloc(1, sizeof *q);
  if (q != NULL) {
    q->path = malloc(plen + 1);
    q->sql = malloc(len + 1);
  }
  if (q == NULL || q->path == NULL || q->sql == NULL) {
    if (q != NULL) ls_free(q);
    return luaL_error(L, "sqlseed: out of memory");
  }
  memcpy(q->path, path, plen + 1);
  memcpy(q->sql, sql, len + 1);
  q->len = len;
  q->timeout_ms = (int)t;
  q->max_bytes = (long long)mb;
  atomic_init(&q->stop, 0);
  q->work.data = q;
  rt_wait_begin(L, &q->w, ls_cancel);
  int rc = uv_queue_work(&rt->loop, &q->work, ls_work, ls_done);
  if (rc != 0) {
    q->rc = SQLSEED_FILE;
    snprintf(q->err, sizeof q->err, "the seed cannot start: %s", uv_strerror(rc));
    rt_wait_finish(&q->w, ls_results, q);
    ls_free(q);
  }
  return rt_wait_yield(L);
}

static const luaL_Reg ls_funcs[] = {
    {"run", ls_run},
    {NULL, NULL},
};

int luaopen_orket_sqlseed(lua_State *L) {
  luaL_newlib(L, ls_funcs);
  return 1;
}
