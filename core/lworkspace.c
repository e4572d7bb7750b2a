/* lworkspace.c: Lua module `orket.c.workspace`: the confined filesystem of workspace.c as a
 * typed userdata (open(root, {resolve=, mount_id=, portable_names=}) -> ws; ws:read/write/
 * append/list/stat/mkdir/delete/move/close), and its name rules (portable_name_refused,
 * device_name, name_fold, name_twin). Only translates between Lua and workspace.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "modules.h"
#include "workspace.h"

#define LWS_META "orket.workspace"

typedef struct lws {
  ws w;
  char root[WS_PATH_MAX];
} lws;

static lws *lws_check(lua_State *L) {
  lws *o = luaL_checkudata(L, 1, LWS_META);
  if (o->w.rootfd < 0) luaL_argerror(L, 1, "workspace is closed");
  return o;
}

static int lws_fail(lua_State *L, const ws_err *e) {
  lua_pushnil(L);
  lua_pushstring(L, e->msg);
  lua_pushstring(L, e->code);
  return 3;
}

static const char *const lws_types[] = {"file", "directory", "symlink", "other"};

static void lws_push_stat(lua_State *L, const ws_stat *st) {
  lua_createtable(L, 0, 5);
  lua_pushstring(L, lws_types[st->type]);
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st->size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)st->mtime);
  lua_setfield(L, -2, "mtime");
  lua_pushinteger(L, (lua_Integer)st->mode);
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, (lua_Integer)st->nlink);
  lua_setfield(L, -2, "nlink");
}

/* Index of opts[field] in names (0 when absent); raises naming the field otherwise. */
static int lws_opt_enum(lua_State *L, const char *field, const char *const names[], const char *msg) {
  int i = 0;
  if (lua_getfield(L, 2, field) != LUA_TNIL) {
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    for (i = 0; names[i] && (m == NULL || strcmp(m, names[i]) != 0); i++) {}
    if (names[i] == NULL) return luaL_argerror(L, 2, msg);
  }
  lua_pop(L, 1);
  return i;
}

/* The boolean field of the options table at index 2 (dflt when absent); anything else
 * raises "FIELD must be true or false". */
static int lws_opt_bool(lua_State *L, const char *field, int dflt) {
  int t = lua_getfield(L, 2, field);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) luaL_argerror(L, 2, lua_pushfstring(L, "%s must be true or false", field));
  int v = t == LUA_TNIL ? dflt : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static const char *const lws_mnt_names[] = {"auto", "statx", "fdinfo", "dev", NULL};

/* open(root [, {resolve="auto"|"openat2"|"walk", mount_id="auto"|"statx"|"fdinfo"|"dev",
 * portable_names=true|false}]) -> ws | nil, msg, CODE. mount_id forces where mount ids come
 * from (tests use it); portable_names = false (orket.lua's workspace section) lets names a
 * Windows or macOS clone cannot check out be made. */
static int lws_open(lua_State *L) {
  static const char *const modes[] = {"auto", "openat2", "walk", NULL};
  const char *root = luaL_checkstring(L, 1);
  int mode = 0, mnt = 0, portable = 1;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    mode = lws_opt_enum(L, "resolve", modes, "resolve must be \"auto\", \"openat2\" or \"walk\"");
    mnt = lws_opt_enum(L, "mount_id", lws_mnt_names, "mount_id must be \"auto\", \"statx\", \"fdinfo\" or \"dev\"");
    portable = lws_opt_bool(L, "portable_names", 1);
  }
  luaL_argcheck(L, strlen(root) < WS_PATH_MAX, 1, "root path too long");
  lws *o = lua_newuserdatauv(L, sizeof *o, 0); /* created closed: an error leaks nothing */
  o->w.rootfd = -1;
  snprintf(o->root, sizeof o->root, "%s", root);
  luaL_setmetatable(L, LWS_META);
  ws_err e;
  if (ws_open(&o->w, root, (ws_resolve_mode)mode, &e) != 0) return lws_fail(L, &e);
  o->w.portable_names = portable;
  if (mnt != 0 && ws_use_mount_source(&o->w, (ws_mnt_source)mnt, &e) != 0) {
    ws_close(&o->w);
    return lws_fail(L, &e);
  }
  return 1;
}

/* A C buffer to copy into Lua inside a protected call (see lws_read, lws_list). */
typedef struct lws_span {
  const char *p;
  size_t n;
} lws_span;

static int lws_push_span(lua_State *L) {
  const lws_span *sp = lua_touserdata(L, 1);
  lua_pushlstring(L, sp->p, sp->n);
  return 1;
}

static int lws_copy_span(lua_State *L) {
  const lws_span *sp = lua_touserdata(L, 1);
  void *copy = lua_newuserdatauv(L, sp->n ? sp->n : 1, 0);
  if (sp->n) memcpy(copy, sp->p, sp->n);
  return 1;
}

/* The integer field of the options table at arg, def when absent. A wrong value is the
 * argument's error, naming the field ("bad argument #2 to 'read' (field 'limit': number
 * expected, got string)"): read from the stack's top, luaL_optinteger counted the argument
 * from there ("#-2"). */
static lua_Integer lws_opt_field(lua_State *L, int arg, const char *field, lua_Integer def) {
  lua_Integer v = def;
  if (lua_getfield(L, arg, field) != LUA_TNIL) {
    int isnum;
    v = lua_tointegerx(L, -1, &isnum);
    if (!isnum) {
      const char *why = lua_isnumber(L, -1)
                            ? "number has no integer representation"
                            : lua_pushfstring(L, "number expected, got %s", luaL_typename(L, -1));
      return luaL_argerror(L, arg, lua_pushfstring(L, "field '%s': %s", field, why));
    }
  }
  lua_pop(L, 1);
  return v;
}

/* ws:read(path [, {offset=, limit=}]) -> data, {size=, truncated=} | nil, msg, CODE */
static int lws_read(lua_State *L) {
  lws *o = lws_check(L);
  size_t len;
  const char *path = luaL_checklstring(L, 2, &len);
  lua_Integer offset = 0, limit = WS_READ_DEFAULT;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    offset = lws_opt_field(L, 3, "offset", 0);
    limit = lws_opt_field(L, 3, "limit", WS_READ_DEFAULT);
    luaL_argcheck(L, offset >= 0, 3, "offset must be >= 0");
    luaL_argcheck(L, limit >= 0 && limit <= WS_READ_HARD_MAX, 3, "limit must be between 0 and 16 MiB");
  }
  char *buf;
  size_t n;
  uint64_t size;
  ws_err e;
  luaL_checkstack(L, 4, "ws:read");
  if (ws_read(&o->w, path, len, (uint64_t)offset, (size_t)limit, &buf, &n, &size, &e) != 0)
    return lws_fail(L, &e);
  /* Copying into Lua may fail under a script's memory ceiling: copy in a protected call,
   * free the C buffer whatever happens, then pass the error on. */
  lws_span span = {buf, n};
  lua_pushcfunction(L, lws_push_span);
  lua_pushlightuserdata(L, &span);
  int st = lua_pcall(L, 1, 1, 0);
  free(buf);
  if (st != LUA_OK) return lua_error(L);
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, (lua_Integer)size);
  lua_setfield(L, -2, "size");
  lua_pushboolean(L, (uint64_t)offset + n < size);
  lua_setfield(L, -2, "truncated");
  return 2;
}

static int lws_write_op(lua_State *L, int append) {
  lws *o = lws_check(L);
  size_t len, dlen;
  const char *path = luaL_checklstring(L, 2, &len);
  const char *data = luaL_checklstring(L, 3, &dlen);
  ws_err e;
  int r = append ? ws_append(&o->w, path, len, data, dlen, &e) : ws_write(&o->w, path, len, data, dlen, &e);
  if (r != 0) return lws_fail(L, &e);
  lua_pushinteger(L, (lua_Integer)dlen);
  return 1;
}

/* ws:write(path, data) -> bytes | nil, msg, CODE  (atomic replace) */
static int lws_write(lua_State *L) { return lws_write_op(L, 0); }
/* ws:append(path, data) -> bytes | nil, msg, CODE */
static int lws_append(lua_State *L) { return lws_write_op(L, 1); }

/* ws:stat(path) -> {type=, size=, mtime=, mode=, nlink=} | nil, msg, CODE */
static int lws_stat(lua_State *L) {
  lws *o = lws_check(L);
  size_t len;
  const char *path = luaL_checklstring(L, 2, &len);
  ws_stat st;
  ws_err e;
  if (ws_stat_path(&o->w, path, len, &st, &e) != 0) return lws_fail(L, &e);
  lws_push_stat(L, &st);
  return 1;
}

/* ws:list([path]) -> {{name=, type=, size=, mtime=, ...}...}, truncated | nil, msg, CODE */
static int lws_list(lua_State *L) {
  lws *o = lws_check(L);
  size_t len;
  const char *path = luaL_optlstring(L, 2, ".", &len);
  ws_entry *v;
  size_t n;
  int truncated;
  ws_err e;
  luaL_checkstack(L, 4, "ws:list");
  if (ws_list(&o->w, path, len, &v, &n, &truncated, &e) != 0) return lws_fail(L, &e);
  /* Copy the entries into a Lua-owned buffer in a protected call, then free ours whatever
   * happened, so a memory error leaks nothing. */
  lws_span span = {(const char *)v, n * sizeof *v};
  lua_pushcfunction(L, lws_copy_span);
  lua_pushlightuserdata(L, &span);
  int st = lua_pcall(L, 1, 1, 0);
  free(v);
  if (st != LUA_OK) return lua_error(L);
  ws_entry *copy = lua_touserdata(L, -1);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lws_push_stat(L, &copy[i].st);
    lua_pushstring(L, copy[i].name);
    lua_setfield(L, -2, "name");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_pushboolean(L, truncated);
  return 2;
}

static int lws_simple(lua_State *L, int (*op)(ws *, const char *, size_t, ws_err *)) {
  lws *o = lws_check(L);
  size_t len;
  const char *path = luaL_checklstring(L, 2, &len);
  ws_err e;
  if (op(&o->w, path, len, &e) != 0) return lws_fail(L, &e);
  lua_pushboolean(L, 1);
  return 1;
}

/* ws:mkdir(path) -> true | nil, msg, CODE (creates parents) */
static int lws_mkdir(lua_State *L) { return lws_simple(L, ws_mkdir); }
/* ws:delete(path) -> true | nil, msg, CODE (file, symlink or empty directory) */
static int lws_delete(lua_State *L) { return lws_simple(L, ws_delete); }

/* ws:move(from, to) -> true | nil, msg, CODE (never replaces) */
static int lws_move(lua_State *L) {
  lws *o = lws_check(L);
  size_t fl, tl;
  const char *from = luaL_checklstring(L, 2, &fl);
  const char *to = luaL_checklstring(L, 3, &tl);
  ws_err e;
  if (ws_move(&o->w, from, fl, to, tl, &e) != 0) return lws_fail(L, &e);
  lua_pushboolean(L, 1);
  return 1;
}

/* ws:take_changes() -> {path...} | false: the paths written, appended to, deleted or moved
 * through this handle since the last call (normalized, each once), forgotten here; false
 * when more than WS_CHANGES_MAX changed (assume anything did) */
static int lws_take_changes(lua_State *L) {
  lws *o = lws_check(L);
  char **v;
  size_t n;
  if (o->w.changed_over) {
    (void)ws_take_changes(&o->w, &v, &n);
    lua_pushboolean(L, 0);
    return 1;
  }
  /* copied before they are taken: a raise here (no memory) leaves them with the handle */
  lua_createtable(L, (int)o->w.nchanged, 0);
  for (size_t i = 0; i < o->w.nchanged; i++) {
    lua_pushstring(L, o->w.changed[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  (void)ws_take_changes(&o->w, &v, &n);
  ws_changes_free(v, n);
  return 1;
}

/* ws:close(): idempotent; also __gc and __close */
static int lws_close(lua_State *L) {
  lws *o = luaL_checkudata(L, 1, LWS_META);
  ws_close(&o->w);
  return 0;
}

static int lws_tostring(lua_State *L) {
  lws *o = luaL_checkudata(L, 1, LWS_META);
  if (o->w.rootfd < 0)
    lua_pushfstring(L, "workspace (closed)");
  else
    lua_pushfstring(L, "workspace (%s, %s)", o->root, o->w.mode == WS_RESOLVE_OPENAT2 ? "openat2" : "walk");
  return 1;
}

/* Fields: ws.root, ws.resolve ("openat2" | "walk"), ws.mount_id ("statx" | "fdinfo" |
 * "dev"), ws.portable_names, ws.closed; everything else a method. */
static int lws_index(lua_State *L) {
  lws *o = luaL_checkudata(L, 1, LWS_META);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "root") == 0) {
    lua_pushstring(L, o->root);
  } else if (strcmp(k, "resolve") == 0) {
    lua_pushstring(L, o->w.mode == WS_RESOLVE_OPENAT2 ? "openat2" : "walk");
  } else if (strcmp(k, "mount_id") == 0) {
    lua_pushstring(L, lws_mnt_names[o->w.mnt_src]);
  } else if (strcmp(k, "portable_names") == 0) {
    lua_pushboolean(L, o->w.portable_names);
  } else if (strcmp(k, "closed") == 0) {
    lua_pushboolean(L, o->w.rootfd < 0);
  } else {
    luaL_getmetatable(L, LWS_META);
    lua_getfield(L, -1, "methods");
    lua_getfield(L, -1, k);
  }
  return 1;
}

static const luaL_Reg lws_methods[] = {
    {"read", lws_read},     {"write", lws_write},   {"append", lws_append},
    {"stat", lws_stat},     {"list", lws_list},     {"mkdir", lws_mkdir},
    {"delete", lws_delete}, {"move", lws_move},     {"close", lws_close},
    {"take_changes", lws_take_changes},
    {NULL, NULL},
};

static const luaL_Reg lws_meta[] = {
    {"__index", lws_index}, {"__gc", lws_close},   {"__close", lws_close},
    {"__tostring", lws_tostring}, {NULL, NULL},
};

/* portable_name_refused(name) -> why a Windows clone cannot check out the one name (a path
 * component) | nil: ws_portable_name_refused, for callers that check names of their own */
static int lws_portable_name_refused(lua_State *L) {
  size_t n;
  const char *c = luaL_checklstring(L, 1, &n);
  const char *why = ws_portable_name_refused(c, n);
  if (why) lua_pushstring(L, why);
  else lua_pushnil(L);
  return 1;
}

/* name_fold(name [, {case = false}]) -> the key under which macOS and Windows take two names
 * of one folder for one (ws_name_fold): twins fold alike. case = false: decomposed only, each
 * letter kept in its case. */
static int lws_name_fold(lua_State *L) {
  size_t n;
  const char *c = luaL_checklstring(L, 1, &n);
  int keep_case = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    keep_case = !lws_opt_bool(L, "case", 1);
  }
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, 2 * n + 1);
  luaL_pushresultsize(&b, ws_name_fold(c, n, out, keep_case));
  return 1;
}

/* name_twin(a, b) -> how two names of one folder are one file on macOS or Windows
 * (ws_name_twin): "case", "Unicode normalization" or "case and Unicode normalization" | nil
 * when they are not twins (or are one name) */
static int lws_name_twin(lua_State *L) {
  static const char *const how[] = {NULL, "case", "Unicode normalization", "case and Unicode normalization"};
  size_t an, bn;
  const char *a = luaL_checklstring(L, 1, &an), *b = luaL_checklstring(L, 2, &bn);
  int kind = ws_name_twin(a, an, b, bn);
  if (kind) lua_pushstring(L, how[kind]);
  else lua_pushnil(L);
  return 1;
}

/* device_name(name) -> the Windows device name is, its stem in upper case ("AUX" for
 * "aux.tar.gz") | nil (ws_device_name) */
static int lws_device_name(lua_State *L) {
  size_t n;
  const char *c = luaL_checklstring(L, 1, &n);
  size_t stem = ws_device_name(c, n);
  if (stem == 0) {
    lua_pushnil(L);
    return 1;
  }
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, stem);
  for (size_t i = 0; i < stem; i++) out[i] = (char)(c[i] >= 'a' && c[i] <= 'z' ? c[i] - 32 : c[i]);
  luaL_pushresultsize(&b, stem);
  return 1;
}

static const luaL_Reg lws_funcs[] = {
    {"open", lws_open},
    {"portable_name_refused", lws_portable_name_refused},
    {"name_fold", lws_name_fold},
    {"name_twin", lws_name_twin},
    {"device_name", lws_device_name},
    {NULL, NULL},
};

int luaopen_orket_workspace(lua_State *L) {
  luaL_newmetatable(L, LWS_META);
  luaL_setfuncs(L, lws_meta, 0);
  luaL_newlib(L, lws_methods);
  lua_setfield(L, -2, "methods");
  lua_pushliteral(L, "workspace");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  luaL_newlib(L, lws_funcs);
  lua_pushinteger(L, WS_READ_DEFAULT);
  lua_setfield(L, -2, "READ_DEFAULT");
  lua_pushinteger(L, WS_READ_HARD_MAX);
  lua_setfield(L, -2, "READ_MAX");
  return 1;
}
