/* lgitdiff.c: Lua module `orket.c.gitdiff`, a thin binding of gitdiff.h: open(path) gives a
 * read-only repository handle with resolve, merge_base, parents and diff. libgit2 runs on
 * the loop thread: a card's diff is read in milliseconds, within its caps. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "gitdiff.h"
#include "modules.h"

#define LGD_META "orket.gitdiff"
#define LGD_RESULT "orket.gitdiff.result" /* a diff's C memory while it is made into Lua */
#define LGD_FILES_DEFAULT 300
#define LGD_FILES_MAX 5000
#define LGD_BYTES_DEFAULT (256 * 1024)
#define LGD_BYTES_MAX (16 * 1024 * 1024)
#define LGD_PARENTS_MAX 16

typedef struct lgd {
  gitdiff *g; /* NULL once closed */
} lgd;

static lgd *lgd_check(lua_State *L) {
  lgd *o = luaL_checkudata(L, 1, LGD_META);
  if (o->g == NULL) luaL_argerror(L, 1, "repository is closed");
  return o;
}

static int lgd_fail(lua_State *L, const gd_err *e) {
  lua_pushnil(L);
  lua_pushstring(L, e->msg);
  lua_pushstring(L, e->code);
  return 3;
}

/* open(path) -> handle | nil, msg, CODE */
static int lgd_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lgd *o = lua_newuserdatauv(L, sizeof *o, 0);
  o->g = NULL; /* closed until the repository is open: an error half-way leaks nothing */
  luaL_setmetatable(L, LGD_META);
  gd_err e = {0};
  if (gitdiff_open(path, &o->g, &e) != 0) return lgd_fail(L, &e);
  return 1;
}

/* h:resolve(spec) -> hex | nil (no such commit) | nil, msg, CODE */
static int lgd_resolve(lua_State *L) {
  lgd *o = lgd_check(L);
  const char *spec = luaL_checkstring(L, 2);
  char hex[GITDIFF_HEX];
  gd_err e = {0};
  int rc = gitdiff_resolve(o->g, spec, hex, &e);
  if (rc < 0) return lgd_fail(L, &e);
  if (rc == 0) lua_pushnil(L);
  else lua_pushstring(L, hex);
  return 1;
}

/* h:merge_base(a, b) -> hex | nil (none) | nil, msg, CODE */
static int lgd_merge_base(lua_State *L) {
  lgd *o = lgd_check(L);
  const char *a = luaL_checkstring(L, 2), *b = luaL_checkstring(L, 3);
  char hex[GITDIFF_HEX];
  gd_err e = {0};
  int rc = gitdiff_merge_base(o->g, a, b, hex, &e);
  if (rc < 0) return lgd_fail(L, &e);
  if (rc == 0) lua_pushnil(L);
  else lua_pushstring(L, hex);
  return 1;
}

/* h:parents(commit) -> {hex...} | nil, msg, CODE */
static int lgd_parents(lua_State *L) {
  lgd *o = lgd_check(L);
  const char *c = luaL_checkstring(L, 2);
  char parents[LGD_PARENTS_MAX][GITDIFF_HEX];
  size_t n = 0;
  gd_err e = {0};
  if (gitdiff_parents(o->g, c, parents, LGD_PARENTS_MAX, &n, &e) != 0) return lgd_fail(L, &e);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, parents[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* An integer option of the table at arg, within [1, max]; dflt when absent. */
static size_t lgd_opt(lua_State *L, int arg, const char *name, size_t dflt, size_t max) {
  if (lua_isnoneornil(L, arg)) return dflt;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_getfield(L, arg, name);
  size_t v = dflt;
  if (!lua_isnil(L, -1)) {
    int isint = 0;
    lua_Integer x = lua_tointegerx(L, -1, &isint);
    if (!isint || x < 1 || (lua_Unsigned)x > max) {
      lua_pushfstring(L, "field '%s' must be a whole number from 1 to %I", name, (lua_Integer)max);
      luaL_argerror(L, arg, lua_tostring(L, -1));
    }
    v = (size_t)x;
  }
  lua_pop(L, 1);
  return v;
}

static void lgd_push_file(lua_State *L, const gd_file *f) {
  lua_createtable(L, 0, 8);
  lua_pushstring(L, f->path);
  lua_setfield(L, -2, "path");
  if (f->old_path) {
    lua_pushstring(L, f->old_path);
    lua_setfield(L, -2, "old_path");
  }
  lua_pushlstring(L, &f->status, 1);
  lua_setfield(L, -2, "status");
  lua_pushboolean(L, f->binary);
  lua_setfield(L, -2, "binary");
  lua_pushinteger(L, (lua_Integer)f->additions);
  lua_setfield(L, -2, "additions");
  lua_pushinteger(L, (lua_Integer)f->deletions);
  lua_setfield(L, -2, "deletions");
  if (f->patch) {
    lua_pushlstring(L, f->patch, f->patch_len);
    lua_setfield(L, -2, "patch");
  }
  lua_pushboolean(L, f->omitted);
  lua_setfield(L, -2, "omitted");
}

/* h:diff(base, tip[, {max_files=300, max_bytes=262144}]) -> {files = {{path=, old_path=,
 * status=, binary=, additions=, deletions=, patch=, omitted=}...}, changed=, bytes=,
 * truncated=} | nil, msg, CODE. What tip's tree changed against base's (gitdiff.h). */
static int lgd_diff(lua_State *L) {
  lgd *o = lgd_check(L);
  const char *base = luaL_checkstring(L, 2), *tip = luaL_checkstring(L, 3);
  size_t max_files = lgd_opt(L, 4, "max_files", LGD_FILES_DEFAULT, LGD_FILES_MAX);
  size_t max_bytes = lgd_opt(L, 4, "max_bytes", LGD_BYTES_DEFAULT, LGD_BYTES_MAX);
  /* the result lives in a userdata whose __gc frees it: a memory error while the table
   * is built below leaks nothing */
  gd_result *rp = lua_newuserdatauv(L, sizeof *rp, 0);
  memset(rp, 0, sizeof *rp);
  luaL_setmetatable(L, LGD_RESULT);
  gd_err e = {0};
  if (gitdiff_between(o->g, base, tip, max_files, max_bytes, rp, &e) != 0) return lgd_fail(L, &e);
  const gd_result r = *rp;
  luaL_checkstack(L, 6, "diff");
  lua_createtable(L, 0, 4);
  lua_createtable(L, (int)r.n, 0);
  for (size_t i = 0; i < r.n; i++) {
    lgd_push_file(L, &r.files[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "files");
  lua_pushinteger(L, (lua_Integer)r.changed);
  lua_setfield(L, -2, "changed");
  lua_pushinteger(L, (lua_Integer)r.bytes);
  lua_setfield(L, -2, "bytes");
  lua_pushboolean(L, r.truncated);
  lua_setfield(L, -2, "truncated");
  gitdiff_result_free(rp);
  return 1;
}

static int lgd_result_gc(lua_State *L) {
  gitdiff_result_free(luaL_checkudata(L, 1, LGD_RESULT));
  return 0;
}

static int lgd_close(lua_State *L) {
  lgd *o = luaL_checkudata(L, 1, LGD_META);
  gitdiff_close(o->g);
  o->g = NULL;
  return 0;
}

static int lgd_tostring(lua_State *L) {
  lgd *o = luaL_checkudata(L, 1, LGD_META);
  lua_pushfstring(L, "gitdiff (%s)", o->g ? "open" : "closed");
  return 1;
}

static const luaL_Reg lgd_methods[] = {
    {"resolve", lgd_resolve},
    {"merge_base", lgd_merge_base},
    {"parents", lgd_parents},
    {"diff", lgd_diff},
    {"close", lgd_close},
    {NULL, NULL},
};

static const luaL_Reg lgd_meta[] = {
    {"__gc", lgd_close},
    {"__close", lgd_close},
    {"__tostring", lgd_tostring},
    {"__index", NULL},
    {NULL, NULL},
};

static const luaL_Reg lgd_funcs[] = {
    {"open", lgd_open},
    {NULL, NULL},
};

int luaopen_orket_gitdiff(lua_State *L) {
  luaL_newmetatable(L, LGD_RESULT);
  lua_pushcfunction(L, lgd_result_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, LGD_META);
  luaL_setfuncs(L, lgd_meta, 0);
  luaL_newlibtable(L, lgd_methods);
  luaL_setfuncs(L, lgd_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, lgd_funcs);
  return 1;
}
