/* lstore.c: Lua module `orket.c.store`, the binding of store.h: a connection userdata with
 * exec (scripts), run (one statement: changes, last id), rows / row (queries as tables of
 * named columns), tx (a function run inside a transaction, rolled back on error), version.
 * lua/orket/store.lua builds migrations, the journal and the record_* API on top. */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "budget.h"
#include "lstore.h"
#include "modules.h"
#include "store.h"

#define LST_NAME "orket.store"
#define LST_READING "orket.store.reading"

/* The connection's first user value is a table of column names by statement cache slot
 * (slot + 1 -> {name, ...}, as Lua strings), valid while stamps[slot] is the slot's
 * store_columns_stamp: a row's keys are then pushed as they are, not made from C strings
 * again for every column of every row. */
typedef struct lst_conn {
  store *s; /* NULL once closed */
  uint64_t stamps[STORE_CACHE_SIZE];
  unsigned char dups[STORE_CACHE_SIZE]; /* the statement has two columns of one name */
  store_stmt *reading; /* the statement whose rows are being built (lst_reading) */
  struct lst_file *file; /* the connections to its file (lst_register); NULL when none or closed */
} lst_conn;

/* The connection's metatable is each method's upvalue 1: compared by identity, without
 * luaL_checkudata's lookup of it in the registry by name (about forty calls a turn); any
 * other value goes to luaL_checkudata, for its error. */
static lst_conn *lst_check(lua_State *L, int i) {
  lst_conn *c = lua_touserdata(L, i);
  int mine = 0;
  if (c != NULL && lua_getmetatable(L, i)) {
    mine = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
  }
  if (!mine) c = luaL_checkudata(L, i, LST_NAME);
  if (c->s == NULL) luaL_argerror(L, i, "store is closed");
  return c;
}

#define LST_FILE_ERROR "orket.store.file_error"
#define LST_BUSY "orket.store.busy"

/* Remembers a failure of a database file (store_file_error) for file_error(): a caller
 * that raises the message (assert(db:rows(...))) loses the code, and the command line
 * still has to tell a damaged or read-only file, which the user fixes, from a bug.
 * A damaged, full, read-only or unreadable file is a fact about the file, kept apart
 * (fact) so a later busy note cannot hide it. A lock another connection held past the
 * busy timeout (EBUSY) is a fact about one write only: it is kept by the thread (the task)
 * that met it, in a table with weak keys, so a run of a process with many tasks (orket
 * serve) stops only for its own (file_error(owned)). L is the running thread here. */
static void lst_note(lua_State *L, store *s) {
  if (!store_file_error(s)) return;
  /* after a transaction's fn, whose results (any number) may fill the stack, and for
   * lst_fail's three results after it */
  luaL_checkstack(L, 8, "store: noting a failure");
  const char *msg = store_error(s), *code = store_code(s);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  int busy = strcmp(code, "EBUSY") == 0;
  if (!busy) {
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "fact");
    lua_pushstring(L, code);
    lua_setfield(L, -2, "fact_code");
  } else if (lua_getfield(L, LUA_REGISTRYINDEX, LST_FILE_ERROR) == LUA_TTABLE) {
    /* the fact noted before stays */
    lua_getfield(L, -1, "fact");
    lua_setfield(L, -3, "fact");
    lua_getfield(L, -1, "fact_code");
    lua_setfield(L, -3, "fact_code");
  }
  if (busy) lua_pop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, LST_FILE_ERROR);
  if (!busy) return;
  if (lua_getfield(L, LUA_REGISTRYINDEX, LST_BUSY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, LST_BUSY);
  }
  lua_pushthread(L);
  lua_pushstring(L, msg);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static int lst_fail(lua_State *L, store *s) {
  lst_note(L, s);
  lua_pushnil(L);
  lua_pushstring(L, store_error(s));
  lua_pushstring(L, store_code(s));
  return 3;
}

/* The connections of this process (of this Lua state) to one database file: how many are
 * open, and (its user value) a table of them with weak keys. Every connection keeps its
 * file's as its user value 3, and the registry's LST_FILES table finds it by the file's full
 * path, as SQLite resolved it (the record's user value 2). The table holds it strongly and
 * lst_close takes it out when the last connection closes: a weak value would go as soon as
 * the GC found a leaked holder unreachable, before its finalizer closed it, and a
 * connection opened in between would not see that holder. A
 * write transaction asks whether another of them holds the file's write lock
 * (lst_held_here), which costs one comparison while the connection is its file's only one. */
typedef struct lst_file {
  int open;
} lst_file;

#define LST_FILES "orket.store.files"
#define LST_HELD_WAIT "orket.store.held_wait"

/* Counts the connection at index i (just opened) among its file's. A file in memory or a
 * temporary one has no path and no other connection, so it is left out. */
static void lst_register(lua_State *L, lst_conn *c, int i) {
  const char *file = store_file(c->s);
  if (file[0] == '\0') return;
  i = lua_absindex(L, i);
  if (lua_getfield(L, LUA_REGISTRYINDEX, LST_FILES) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, LST_FILES);
  }
  if (lua_getfield(L, -1, file) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    lst_file *nf = lua_newuserdatauv(L, sizeof *nf, 2);
    nf->open = 0;
    lua_pushstring(L, file);
    lua_setiuservalue(L, -2, 2);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, file);
  }
  lst_file *f = lua_touserdata(L, -1);
  lua_getiuservalue(L, -1, 1);
  lua_pushvalue(L, i);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_setiuservalue(L, i, 3);
  lua_pop(L, 1);
  /* counted last: an allocation error above leaves the connection uncounted, not the
   * count one too high for ever */
  f->open++;
  c->file = f;
}

/* 1 when another open connection of this process to c's file (c is at index i) holds its
 * write lock. SQLite's busy handler sleeps in this thread, the loop's, where that holder (a
 * task waiting on the loop with a transaction it began by hand) cannot go on: the wait would
 * only block every task for the busy timeout and then fail. A connection of another process
 * is waited for there as before. */
static int lst_held_here(lua_State *L, lst_conn *c, int i) {
  if (c->file == NULL || c->file->open < 2) return 0;
  lua_getiuservalue(L, i, 3);
  lua_getiuservalue(L, -1, 1);
  int held = 0;
  lua_pushnil(L);
  while (!held && lua_next(L, -2) != 0) {
    lst_conn *o = lua_touserdata(L, -2);
    held = o != c && o->s != NULL && store_writing(o->s);
    lua_pop(L, 1);
  }
  lua_pop(L, held ? 3 : 2); /* lua_next left the key when it stopped early */
  return held;
}

/* held_here() -> true while another connection of this process holds this one's file's
 * write lock and this one is in no transaction: a write transaction begun now would wait
 * on the loop (tx) */
static int lst_held_here_m(lua_State *L) {
  lst_conn *c = lst_check(L, 1);
  lua_pushboolean(L, store_depth(c->s) == 0 && lst_held_here(L, c, 1));
  return 1;
}

/* set_held_wait(fn): fn() is what tx calls, in a coroutine that can yield, while another
 * connection of this process holds the write lock: it waits a little on the loop and
 * returns true, or returns false at once when it cannot wait (not in a task). */
static int lst_set_held_wait(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, LST_HELD_WAIT);
  return 0;
}

/* open(path [, create=true [, readonly=false]]) -> conn | nil, msg, CODE. readonly opens
 * without writing anything (create is then ignored). The userdata exists (closed) before
 * the connection does, so an allocation error cannot leak it. */
static int lst_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int create = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  int mode = lua_toboolean(L, 3) ? STORE_OPEN_READONLY : (create ? STORE_OPEN_CREATE : 0);
  lst_conn *c = lua_newuserdatauv(L, sizeof *c, 3);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, LST_NAME);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  lst_conn **guard = lua_newuserdatauv(L, sizeof *guard, 0);
  *guard = c;
  luaL_setmetatable(L, LST_READING);
  lua_setiuservalue(L, -2, 2);
  char err[600];
  const char *code = "ESQL";
  c->s = store_open(path, mode, err, sizeof err, &code);
  if (c->s == NULL) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushstring(L, code);
    return 3;
  }
  /* a read-only connection never holds the write lock nor waits for it */
  if (!(mode & STORE_OPEN_READONLY)) lst_register(L, c, -1);
  return 1;
}

/* Building a read's rows allocates, and an allocation can raise (a script at its memory
 * cap reads the board): the statement must be reset then too, or it stays open, holding
 * its read, the write lock of an INSERT ... RETURNING, and that change uncommitted. The
 * connection's guard (its user value 2) is marked to-be-closed for the time of the read;
 * Lua closes it on the raise as on the return. */
static int lst_reading_close(lua_State *L) {
  /* its metatable is this closure's upvalue 1 (as lst_check's) */
  lst_conn **g = lua_touserdata(L, 1);
  int mine = 0;
  if (g != NULL && lua_getmetatable(L, 1)) {
    mine = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
  }
  if (!mine) g = luaL_checkudata(L, 1, LST_READING);
  lst_conn *c = *g;
  if (c->reading != NULL && c->s != NULL) store_reset(c->reading);
  c->reading = NULL;
  return 0;
}

static void lst_reading(lua_State *L, lst_conn *c, store_stmt *st) {
  lua_getiuservalue(L, 1, 2);
  lua_toclose(L, -1);
  c->reading = st;
}

/* The connection at index 1 no longer counts among its file's; the file's record leaves
 * LST_FILES with its last connection. Nothing here allocates (the path is the record's user
 * value), so a finalizer cannot fail here. */
static void lst_unregister(lua_State *L, lst_conn *c) {
  lst_file *f = c->file;
  c->file = NULL;
  if (f == NULL || --f->open > 0) return;
  lua_getiuservalue(L, 1, 3); /* the record: alive while c is */
  if (lua_getfield(L, LUA_REGISTRYINDEX, LST_FILES) == LUA_TTABLE) {
    lua_getiuservalue(L, -2, 2);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    int mine = lua_rawequal(L, -1, -4); /* not a newer record of the same path */
    lua_pop(L, 1);
    if (mine) {
      lua_pushnil(L);
      lua_rawset(L, -3);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 2);
}

static int lst_close(lua_State *L) {
  lst_conn *c = luaL_checkudata(L, 1, LST_NAME);
  lst_unregister(L, c);
  store_close(c->s);
  c->s = NULL;
  return 0;
}

static int lst_tostring(lua_State *L) {
  lst_conn *c = luaL_checkudata(L, 1, LST_NAME);
  if (c->s == NULL) lua_pushliteral(L, "orket.store (closed)");
  else lua_pushfstring(L, "orket.store (%p)", (void *)c->s);
  return 1;
}

/* exec(sql) -> true | nil, msg, CODE: a script of statements without parameters. */
static int lst_exec(lua_State *L) {
  lst_conn *c = lst_check(L, 1);
  const char *sql = luaL_checkstring(L, 2);
  if (store_exec(c->s, sql) != 0) return lst_fail(L, c->s);
  lua_pushboolean(L, 1);
  return 1;
}

/* Prepares sql (arg 2) and binds arguments 3..top. Raises on a value that has no SQL type
 * or a wrong count (both are bugs in the caller); NULL with the error recorded otherwise. */
static store_stmt *lst_bind(lua_State *L, lst_conn *c) {
  const char *sql = luaL_checkstring(L, 2);
  int nargs = lua_gettop(L) - 2;
  store_stmt *st = store_prepare(c->s, sql);
  if (st == NULL) return NULL;
  if (nargs != store_param_count(st)) {
    luaL_error(L, "store: statement takes %d parameters, got %d: %s", store_param_count(st),
               nargs, sql);
    return NULL;
  }
  for (int i = 1; i <= nargs; i++) {
    int a = i + 2, rc;
    switch (lua_type(L, a)) {
    case LUA_TNIL: rc = store_bind_null(st, i); break;
    case LUA_TBOOLEAN: rc = store_bind_int(st, i, lua_toboolean(L, a)); break;
    case LUA_TNUMBER:
      rc = lua_isinteger(L, a) ? store_bind_int(st, i, lua_tointeger(L, a))
                               : store_bind_float(st, i, lua_tonumber(L, a));
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, a, &len);
      rc = store_bind_text(st, i, s, len);
      break;
    }
    default:
      store_reset(st);
      luaL_argerror(L, a, lua_pushfstring(L, "cannot store a %s", luaL_typename(L, a)));
      return NULL;
    }
    if (rc != 0) {
      store_failed(c->s);
      store_reset(st); /* no binding outlives the call (store_bind_text keeps no copy) */
      return NULL;
    }
  }
  return st;
}

/* Pushes column i's value, of type ty (store_column_type), which is not STORE_NULL. */
static void lst_push_column(lua_State *L, store_stmt *st, int i, int ty) {
  switch (ty) {
  case STORE_INT: lua_pushinteger(L, (lua_Integer)store_column_int(st, i)); break;
  case STORE_FLOAT: lua_pushnumber(L, store_column_float(st, i)); break;
  default: { /* STORE_TEXT, STORE_BLOB */
    size_t len;
    const char *p = store_column_text(st, i, &len);
    lua_pushlstring(L, p ? p : "", len);
    break;
  }
  }
}

/* Pushes st's column names, {name, ...}, kept per cache slot (see lst_conn). The
 * connection is argument 1. -> 1 when two columns have the same name. */
static int lst_push_names(lua_State *L, lst_conn *c, store_stmt *st) {
  int slot = 0;
  uint64_t stamp = store_columns_stamp(c->s, st, &slot);
  lua_getiuservalue(L, 1, 1);
  if (stamp != 0 && c->stamps[slot] == stamp) {
    if (lua_rawgeti(L, -1, slot + 1) == LUA_TTABLE) {
      lua_remove(L, -2);
      return c->dups[slot];
    }
    lua_pop(L, 1);
  }
  int n = store_column_count(st), dup = 0;
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    const char *name = store_column_name(st, i);
    if (name == NULL) luaL_error(L, "store: out of memory"); /* the read's guard resets st */
    for (int j = 0; j < i && !dup; j++) dup = strcmp(name, store_column_name(st, j)) == 0;
    lua_pushstring(L, name);
    lua_rawseti(L, -2, i + 1);
  }
  if (stamp != 0) {
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, slot + 1);
    c->stamps[slot] = stamp;
    c->dups[slot] = (unsigned char)dup;
  }
  lua_remove(L, -2);
  return dup;
}

/* Pushes the current row as {column = value}; names: the index of st's column names. A
 * NULL is no field, so it is not set, unless a column of the same name came before it:
 * then it clears that one's value, as setting each column in turn does. */
static void lst_push_row(lua_State *L, store_stmt *st, int names, int dups) {
  int n = store_column_count(st);
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    int ty = store_column_type(st, i);
    if (ty == STORE_NULL && !dups) continue;
    lua_rawgeti(L, names, i + 1);
    if (ty == STORE_NULL) lua_pushnil(L);
    else lst_push_column(L, st, i, ty);
    lua_rawset(L, -3);
  }
}

/* run(sql, ...) -> changes, last_id | nil, msg, CODE */
static int lst_run(lua_State *L) {
  lst_conn *c = lst_check(L, 1);
  store_stmt *st = lst_bind(L, c);
  if (st == NULL) return lst_fail(L, c->s);
  int rc;
  while ((rc = store_step(st)) == STORE_ROW) {
  }
  if (rc == STORE_ERROR) {
    store_failed(c->s);
    store_reset(st);
    return lst_fail(L, c->s);
  }
  store_reset(st);
  lua_pushinteger(L, (lua_Integer)store_changes(c->s));
  lua_pushinteger(L, (lua_Integer)store_last_id(c->s));
  return 2;
}

/* rows(sql, ...) -> {row, ...} | nil, msg, CODE */
static int lst_rows(lua_State *L) {
  lst_conn *c = lst_check(L, 1);
  store_stmt *st = lst_bind(L, c);
  if (st == NULL) return lst_fail(L, c->s);
  lst_reading(L, c, st);
  lua_newtable(L);
  int rc, n = 0, names = 0, dups = 0;
  while ((rc = store_step(st)) == STORE_ROW) {
    if (names == 0) { /* below the list */
      dups = lst_push_names(L, c, st);
      lua_insert(L, -2);
      names = lua_gettop(L) - 1;
    }
    lst_push_row(L, st, names, dups);
    lua_rawseti(L, -2, ++n);
  }
  c->reading = NULL;
  if (rc == STORE_ERROR) {
    store_failed(c->s);
    store_reset(st);
    return lst_fail(L, c->s);
  }
  store_reset(st);
  return 1;
}

/* row(sql, ...) -> first row | nil (no row) | nil, msg, CODE */
static int lst_row(lua_State *L) {
  lst_conn *c = lst_check(L, 1);
  store_stmt *st = lst_bind(L, c);
  if (st == NULL) return lst_fail(L, c->s);
  int rc = store_step(st);
  if (rc == STORE_ERROR) {
    store_failed(c->s);
    store_reset(st);
    return lst_fail(L, c->s);
  }
  if (rc == STORE_ROW) {
    lst_reading(L, c, st);
    int dups = lst_push_names(L, c, st);
    lst_push_row(L, st, lua_gettop(L), dups);
    c->reading = NULL;
  } else {
    lua_pushnil(L);
  }
  store_reset(st);
  return 1;
}

/* fn run in the transaction just begun, and the transaction closed */
static int lst_run_begun(lua_State *L, lst_conn *c);

/* A write transaction that another connection of this process holds the lock against waits
 * on the loop before it begins, fn not yet run: the registered wait function (store.lua's)
 * sleeps a little at a time, with this call as its continuation, until the lock is free or
 * the busy timeout has passed since the wait began (ctx: that deadline, ms on the monotonic
 * clock). BEGIN then waits in SQLite's busy handler (for another process's lock) only for
 * what is left of it, so the whole wait stays within the busy timeout. Past it, or where
 * nothing can wait (not yieldable, no wait function, not in a task), it fails at once:
 * EBUSY, a file error as a lock another process held past the busy timeout is. Closed by
 * another task during the wait, it returns nil, "store: closed while ...", "ESQL". */
static int lst_tx_held(lua_State *L, int status, lua_KContext deadline) {
  /* index 1 was checked by lst_run_tx; it may have been closed during the wait */
  lst_conn *c = lua_touserdata(L, 1);
  /* a loop, not a call per look: a wait function that returns without yielding would
   * otherwise add a C frame per look until the deadline */
  for (;;) {
    int64_t now = (int64_t)(budget_now_ns() / 1000000u);
    if (status != LUA_OK) { /* back from the wait function: its answer is on top */
      int waited = lua_toboolean(L, -1);
      lua_pop(L, 1);
      if (c->s == NULL) { /* closed by another task during the wait: nothing began */
        lua_pushnil(L);
        lua_pushliteral(L, "store: closed while its transaction waited for the write lock");
        lua_pushliteral(L, "ESQL");
        return 3;
      }
      if (!waited) {
        store_held_elsewhere(c->s);
        return lst_fail(L, c->s);
      }
      if (!lst_held_here(L, c, 1)) {
        int left = now < deadline ? (int)(deadline - now) : 0;
        if (store_begin_within(c->s, left) != 0) return lst_fail(L, c->s);
        return lst_run_begun(L, c);
      }
    }
    if (now >= deadline || !lua_isyieldable(L) ||
        lua_getfield(L, LUA_REGISTRYINDEX, LST_HELD_WAIT) != LUA_TFUNCTION) {
      store_held_elsewhere(c->s);
      return lst_fail(L, c->s);
    }
    lua_callk(L, 0, 1, deadline, lst_tx_held);
    status = LUA_YIELD; /* it returned without yielding */
  }
}

/* tx(fn, ...) -> fn's results | nil, msg, CODE.
 * Runs fn(...) inside a transaction (a savepoint when nested). Rolls back when fn raises
 * (CODE "ETX", msg the error) or returns nil plus a message (its nil, msg, CODE are passed
 * on), commits otherwise. fn is called without a continuation, so it cannot wait on the
 * loop: a transaction never stays open while other tasks run on the same connection. An
 * outermost write transaction may wait on the loop before it begins (lst_tx_held). */
static int lst_run_tx(lua_State *L, int write) {
  lst_conn *c = lst_check(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (write && store_depth(c->s) == 0 && lst_held_here(L, c, 1))
    return lst_tx_held(L, LUA_OK, (lua_KContext)(budget_now_ns() / 1000000u) + STORE_BUSY_TIMEOUT_MS);
  if ((write ? store_begin(c->s) : store_begin_read(c->s)) != 0) return lst_fail(L, c->s);
  return lst_run_begun(L, c);
}

static int lst_run_begun(lua_State *L, lst_conn *c) {
  int base = 1; /* results start after the connection */
  int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
  if (c->s == NULL) /* fn closed the connection; the close rolled back */
    return luaL_error(L, "store: closed inside its own transaction");
  int nres = lua_gettop(L) - base;
  if (status != LUA_OK) {
    store_rollback(c->s);
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) msg = lua_pushfstring(L, "(a %s was raised, not a message)", luaL_typename(L, -1));
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushliteral(L, "ETX");
    return 3;
  }
  if (nres >= 2 && lua_isnil(L, base + 1) && lua_type(L, base + 2) == LUA_TSTRING) {
    store_rollback(c->s);
    return nres;
  }
  if (store_commit(c->s) != 0) {
    lst_note(L, c->s);
    lua_pushnil(L);
    lua_pushstring(L, store_error(c->s));
    lua_pushstring(L, store_code(c->s));
    store_rollback(c->s);
    return 3;
  }
  return nres;
}

static int lst_tx(lua_State *L) { return lst_run_tx(L, 1); }

/* read(fn, ...) -> fn's results | nil, msg, CODE: as tx, but a read transaction (one WAL
 * snapshot and one read lock for all of fn's statements, no write lock). fn should only
 * read: a write inside upgrades the lock and fails with SQLITE_BUSY when another
 * connection wrote after the snapshot was taken. */
static int lst_read(lua_State *L) { return lst_run_tx(L, 0); }

/* depth() -> open transaction levels */
static int lst_depth(lua_State *L) {
  lua_pushinteger(L, store_depth(lst_check(L, 1)->s));
  return 1;
}

/* version() -> schema version; set_version(n) -> true | nil, msg, CODE */
static int lst_version(lua_State *L) {
  lst_conn *c = lst_check(L, 1);
  int v = store_version(c->s);
  if (v < 0) return lst_fail(L, c->s);
  lua_pushinteger(L, v);
  return 1;
}

static int lst_set_version(lua_State *L) {
  lst_conn *c = lst_check(L, 1);
  lua_Integer v = luaL_checkinteger(L, 2);
  luaL_argcheck(L, v >= 0 && v <= 1000000, 2, "must be between 0 and 1000000");
  if (store_set_version(c->s, (int)v) != 0) return lst_fail(L, c->s);
  lua_pushboolean(L, 1);
  return 1;
}

static int lst_cached(lua_State *L) {
  lua_pushinteger(L, store_cached(lst_check(L, 1)->s));
  return 1;
}

/* cards_stamp() -> generation, data_version | nil, msg, CODE: a card cache read through
 * this connection is current while both stay the same (see store.h). */
static int lst_cards_stamp(lua_State *L) {
  lst_conn *c = lst_check(L, 1);
  int64_t dv = store_data_version(c->s);
  if (dv < 0) return lst_fail(L, c->s);
  lua_pushinteger(L, (lua_Integer)store_cards_generation(c->s));
  lua_pushinteger(L, (lua_Integer)dv);
  return 2;
}

/* rollbacks() -> how many transactions or savepoints that wrote this connection rolled
 * back (see store.h) */
static int lst_rollbacks(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)store_rollbacks(lst_check(L, 1)->s));
  return 1;
}

void *lstore_test(lua_State *L, int i) { return luaL_testudata(L, i, LST_NAME); }

store *lstore_store(void *conn) { return ((lst_conn *)conn)->s; }

/* stamp() -> own, data_version | nil, msg, CODE: what was read through this connection
 * outside a transaction is current while both stay the same (see store.h) */

static int lst_stamp(lua_State *L) {
  lst_conn *c = lst_check(L, 1);
  int64_t own, dv;
  if (store_stamp(c->s, &own, &dv) != 0) return lst_fail(L, c->s);
  lua_pushinteger(L, (lua_Integer)own);
  lua_pushinteger(L, (lua_Integer)dv);
  return 2;
}

/* now() -> the transaction's time, as orket_now() gives it in SQL */
static int lst_now(lua_State *L) {
  size_t len;
  const char *now = store_now(lst_check(L, 1)->s, &len);
  lua_pushlstring(L, now, len);
  return 1;
}

static int lst_changes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)store_changes(lst_check(L, 1)->s));
  return 1;
}

/* backup_to(path) -> true | nil, msg, CODE: a copy of the whole database in a new file */
static int lst_backup_to(lua_State *L) {
  lst_conn *c = lst_check(L, 1);
  if (store_backup_to(c->s, luaL_checkstring(L, 2)) != 0) return lst_fail(L, c->s);
  lua_pushboolean(L, 1);
  return 1;
}

/* restore_from(path) -> true | nil, msg, CODE: this database's content replaced with the
 * file's, atomically (the caller checks the file first) */
static int lst_restore_from(lua_State *L) {
  lst_conn *c = lst_check(L, 1);
  if (store_restore_from(c->s, luaL_checkstring(L, 2)) != 0) return lst_fail(L, c->s);
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg lst_methods[] = {
    {"exec", lst_exec},       {"run", lst_run},         {"rows", lst_rows},
    {"row", lst_row},         {"tx", lst_tx},           {"depth", lst_depth},
    {"read", lst_read},       {"held_here", lst_held_here_m},
    {"version", lst_version}, {"set_version", lst_set_version},
    {"cached", lst_cached},   {"changes", lst_changes}, {"close", lst_close},
    {"cards_stamp", lst_cards_stamp}, {"stamp", lst_stamp}, {"rollbacks", lst_rollbacks}, {"now", lst_now},
    {"backup_to", lst_backup_to}, {"restore_from", lst_restore_from},
    {NULL, NULL},
};

static const luaL_Reg lst_meta[] = {
    {"__gc", lst_close},
    {"__close", lst_close},
    {"__tostring", lst_tostring},
    {"__index", NULL}, /* set below */
    {NULL, NULL},
};

/* file_error([owned]) -> message, CODE | nil: the last failure of a database file (damaged,
 * read-only, full, I/O, locked) any connection met since the last clear_file_error().
 * With owned (a table whose keys are threads: a run's tasks): the failure that concerns
 * them only: the last failure of the file itself, met by any thread, else a lock met by one
 * of owned's threads (EBUSY; a third result, that thread), else nil. */
static int lst_file_error(lua_State *L) {
  int owned = lua_type(L, 1) == LUA_TTABLE;
  if (lua_getfield(L, LUA_REGISTRYINDEX, LST_FILE_ERROR) != LUA_TTABLE) {
    lua_pushnil(L);
    return 1;
  }
  if (!owned) {
    lua_getfield(L, -1, "message");
    lua_getfield(L, -2, "code");
    return 2;
  }
  if (lua_getfield(L, -1, "fact") == LUA_TSTRING) {
    lua_getfield(L, -2, "fact_code");
    return 2;
  }
  if (lua_getfield(L, LUA_REGISTRYINDEX, LST_BUSY) == LUA_TTABLE) {
    int busy = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, busy) != 0) { /* a few threads at most: those that met a lock */
      lua_pushvalue(L, -2);
      if (lua_rawget(L, 1) != LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "EBUSY");
        lua_rotate(L, -3, -1); /* message, CODE, thread */
        return 3;
      }
      lua_pop(L, 2);
    }
  }
  lua_pushnil(L);
  return 1;
}

static int lst_clear_file_error(lua_State *L) {
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, LST_FILE_ERROR);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, LST_BUSY);
  return 0;
}

/* write_cause(errno, path) -> note, CODE | note: a failed write of path, outside SQLite,
 * worded as the store's own files' failures are (store_write_cause; note "" when nothing
 * is known) */
static int lst_write_cause(lua_State *L) {
  lua_Integer sys = luaL_checkinteger(L, 1);
  const char *path = luaL_checkstring(L, 2);
  char note[256];
  const char *code = store_write_cause(sys > 0 && sys < 4096 ? (int)sys : 0, path, note, sizeof note);
  lua_pushstring(L, note);
  if (code == NULL) return 1;
  lua_pushstring(L, code);
  return 2;
}

static const luaL_Reg lst_funcs[] = {
    {"open", lst_open},
    {"write_cause", lst_write_cause},
    {"set_held_wait", lst_set_held_wait},
    {"file_error", lst_file_error},
    {"clear_file_error", lst_clear_file_error},
    {NULL, NULL},
};

int luaopen_orket_store(lua_State *L) {
  luaL_newmetatable(L, LST_READING);
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, lst_reading_close, 1);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_newmetatable(L, LST_NAME);
  luaL_setfuncs(L, lst_meta, 0);
  luaL_newlibtable(L, lst_methods);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, lst_methods, 1); /* the metatable, for lst_check */
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, lst_funcs);
  lua_pushinteger(L, STORE_BUSY_TIMEOUT_MS);
  lua_setfield(L, -2, "BUSY_TIMEOUT_MS");
  lua_pushinteger(L, STORE_CACHE_SIZE);
  lua_setfield(L, -2, "CACHE_SIZE");
  return 1;
}
