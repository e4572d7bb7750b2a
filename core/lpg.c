/* lpg.c: Lua module `orket.c.pg`, the binding of pg.c. connect() and a connection's query()
 * and notifications() suspend the calling task (the await.h pattern) while the loop goes
 * on; results come back typed (integers, numbers, booleans, text, nil for NULL), read with
 * the libpq table of the connection they come from (pg_api). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "await.h"
#include "jsonout.h"
#include "modules.h"
#include "pg.h"
#include "runtime.h"

#define LP_CONN "orket.pg.conn"
#define LP_MAX_PARAMS 65535 /* the protocol's limit */
#define LP_NUM_LEN 32

/* Type OIDs (pg_type.dat) this binding converts; everything else arrives as text. */
enum {
  LP_BOOL = 16, LP_BYTEA = 17, LP_INT8 = 20, LP_INT2 = 21, LP_INT4 = 23, LP_OID = 26,
  LP_FLOAT4 = 700, LP_FLOAT8 = 701
};

typedef struct lp_conn {
  rt_wait qw;          /* the task waiting for the connect or a query */
  rt_wait nw;          /* the task waiting for notifications */
  pg_conn *c;          /* NULL once closed */
  orket_rt *rt;
  int qwaiting, nwaiting, connecting, is_exec;
  int self_ref;        /* anchors the userdata while a task waits on it */
  int anchor_idx;      /* where lp_event put the userdata on the main stack */
  uint64_t query_timeout_ms;
} lp_conn;

#define LP_FROM(w, field) ((lp_conn *)(void *)((char *)(w) - offsetof(lp_conn, field)))

/* ---- anchoring ------------------------------------------------------------------------ */

static void lp_anchor(lua_State *L, lp_conn *lp, int idx) {
  if (lp->self_ref != LUA_NOREF) return;
  lua_pushvalue(L, idx);
  lp->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

static void lp_unanchor_if_idle(lp_conn *lp) {
  if (lp->qwaiting || lp->nwaiting || lp->self_ref == LUA_NOREF) return;
  luaL_unref(lp->rt->L, LUA_REGISTRYINDEX, lp->self_ref);
  lp->self_ref = LUA_NOREF;
}

/* ---- results -------------------------------------------------------------------------- */

static void lp_push_value(lua_State *L, const pgapi *pq, const PGresult *r, int i, int j) {
  const char *v = pq->getvalue(r, i, j);
  switch (pq->ftype(r, j)) {
  case LP_BOOL:
    lua_pushboolean(L, v[0] == 't');
    return;
  case LP_INT2:
  case LP_INT4:
  case LP_INT8:
  case LP_OID:
    lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
    return;
  case LP_FLOAT4:
  case LP_FLOAT8:
    lua_pushnumber(L, (lua_Number)strtod(v, NULL)); /* strtod reads Infinity and NaN too */
    return;
  case LP_BYTEA: {
    size_t n;
    unsigned char *b = pq->unescapeBytea((const unsigned char *)v, &n);
    if (b == NULL) {
      lua_pushlstring(L, v, (size_t)pq->getlength(r, i, j));
      return;
    }
    lua_pushlstring(L, (const char *)b, n);
    pq->freemem(b);
    return;
  }
  default: /* text, varchar, json, jsonb, numeric (exact, so as text), timestamps, ... */
    lua_pushlstring(L, v, (size_t)pq->getlength(r, i, j));
  }
}

/* rows ({{column = value}, ...}; NULL columns absent), affected rows, command tag */
static int lp_push_rows(lua_State *L, const pgapi *pq, PGresult *r) {
  int nt = pq->ntuples(r), nf = pq->nfields(r);
  luaL_checkstack(L, 4, "pg result");
  lua_createtable(L, nt, 0);
  for (int i = 0; i < nt; i++) {
    lua_createtable(L, 0, nf);
    for (int j = 0; j < nf; j++) {
      if (pq->getisnull(r, i, j)) continue;
      lp_push_value(L, pq, r, i, j);
      lua_setfield(L, -2, pq->fname(r, j));
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  const char *n = pq->cmdTuples(r);
  lua_pushinteger(L, *n ? (lua_Integer)strtoll(n, NULL, 10) : 0);
  lua_pushstring(L, pq->cmdStatus(r));
  pq->clear(r);
  return 3;
}

/* nil, message, code */
static int lp_push_fail(lua_State *L, const char *msg, const char *code) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushstring(L, code);
  return 3;
}

/* nil, message, code, sqlstate | nil */
static int lp_push_error(lua_State *L, const char *msg, const char *code, const char *sqlstate) {
  lp_push_fail(L, msg, code ? code : PG_E_SQL);
  if (sqlstate && *sqlstate) lua_pushstring(L, sqlstate);
  else lua_pushnil(L);
  return 4;
}

static int lp_push_query(lua_State *L, void *ud) {
  lp_conn *lp = ud;
  const char *code, *msg, *st;
  PGresult *r = pg_take(lp->c, &code, &msg, &st);
  if (r) return lp_push_rows(L, pg_api(lp->c), r);
  return lp_push_error(L, msg, code, st);
}

static int lp_push_exec(lua_State *L, void *ud) {
  lp_conn *lp = ud;
  const char *code, *msg, *st;
  PGresult *r = pg_take(lp->c, &code, &msg, &st);
  if (r == NULL) return lp_push_error(L, msg, code, st);
  pg_api(lp->c)->clear(r);
  lua_pushboolean(L, 1);
  return 1;
}

/* conn | nil, msg, code; a failed connection is closed at once */
static int lp_push_connect(lua_State *L, void *ud) {
  lp_conn *lp = ud;
  const char *code, *msg, *st;
  PGresult *r = pg_take(lp->c, &code, &msg, &st);
  if (r) pg_api(lp->c)->clear(r);
  if (pg_get_state(lp->c) == PG_IDLE) {
    lua_pushvalue(L, lp->anchor_idx);
    return 1;
  }
  lp_push_fail(L, msg, code ? code : PG_E_CONNECT);
  pg_close(lp->c);
  lp->c = NULL;
  return 3;
}

/* {{channel=, payload=, pid=}, ...} (empty when the wait timed out), dropped | nil, msg, code */
static int lp_push_notes(lua_State *L, void *ud) {
  lp_conn *lp = ud;
  if (lp->c == NULL) return lp_push_fail(L, "pg: connection closed", PG_E_NOTCONN);
  size_t n = pg_note_count(lp->c);
  if (n == 0 && pg_get_state(lp->c) == PG_BROKEN)
    return lp_push_fail(L, pg_broken_message(lp->c), PG_E_LOST);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    const PGnotify *note = pg_note_at(lp->c, i);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, note->relname);
    lua_setfield(L, -2, "channel");
    lua_pushstring(L, note->extra ? note->extra : "");
    lua_setfield(L, -2, "payload");
    lua_pushinteger(L, note->be_pid);
    lua_setfield(L, -2, "pid");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_pushinteger(L, (lua_Integer)pg_notes_dropped(lp->c));
  pg_notes_clear(lp->c);
  return 2;
}

static int lp_push_closed(lua_State *L, void *ud) {
  (void)ud;
  return lp_push_fail(L, "pg: connection closed while waiting", PG_E_NOTCONN);
}

/* ---- events from pg.c ----------------------------------------------------------------- */

static void lp_event(pg_conn *c, void *ud, int what) {
  lp_conn *lp = ud;
  lua_State *L = lp->rt->L;
  int top = lua_gettop(L);
  if (lp->self_ref == LUA_NOREF) return; /* nobody waits: a dropped query ended */
  lua_rawgeti(L, LUA_REGISTRYINDEX, lp->self_ref); /* keeps it alive while tasks run */
  lp->anchor_idx = lua_gettop(L);
  if ((what & PG_EV_QUERY) && lp->qwaiting) {
    rt_wait_push_fn push = lp->connecting ? lp_push_connect : lp->is_exec ? lp_push_exec : lp_push_query;
    lp->qwaiting = lp->connecting = lp->is_exec = 0;
    lp_unanchor_if_idle(lp);
    rt_wait_finish(&lp->qw, push, lp);
  }
  if ((what & PG_EV_NOTES) && lp->nwaiting && lp->c) {
    lp->nwaiting = 0;
    lp_unanchor_if_idle(lp);
    rt_wait_finish(&lp->nw, lp_push_notes, lp);
  }
  lua_settop(L, top);
}

/* A waiting task was cancelled: it is not resumed. A connect stops; a query is cancelled on
 * the server and its result dropped (the connection is busy until then). */
static void lp_cancel_query(rt_wait *w) {
  lp_conn *lp = LP_FROM(w, qw);
  lp->qwaiting = lp->is_exec = 0;
  if (lp->connecting) {
    lp->connecting = 0;
    pg_close(lp->c);
    lp->c = NULL;
  } else if (lp->c) {
    pg_abandon(lp->c);
  }
  lp_unanchor_if_idle(lp);
}

static void lp_cancel_notes(rt_wait *w) {
  lp_conn *lp = LP_FROM(w, nw);
  lp->nwaiting = 0;
  if (lp->c) pg_notes_unwait(lp->c);
  lp_unanchor_if_idle(lp);
}

/* ---- the connection object ------------------------------------------------------------ */

static lp_conn *lp_check(lua_State *L) {
  lp_conn *lp = luaL_checkudata(L, 1, LP_CONN);
  if (lp->c == NULL) luaL_argerror(L, 1, "connection is closed");
  return lp;
}

/* Binds the arguments from index first on as text parameters, typed by their Lua type so
 * `SELECT $1` gives back what was passed: integer -> int8, float -> float8, boolean ->
 * bool; strings and nil (NULL) are left for the server to infer. */
static int lp_bind(lua_State *L, int first, const char ***values, Oid **types) {
  int n = lua_gettop(L) - first + 1;
  if (n < 0) n = 0;
  if (n > LP_MAX_PARAMS) luaL_error(L, "pg: more than %d parameters", LP_MAX_PARAMS);
  /* one block on the Lua stack, so an error below leaks nothing */
  size_t sz = (size_t)n * (sizeof(char *) + sizeof(Oid) + LP_NUM_LEN);
  char *block = lua_newuserdatauv(L, sz ? sz : 1, 0);
  const char **v = (const char **)(void *)block;
  Oid *t = (Oid *)(void *)(block + (size_t)n * sizeof(char *));
  char *nums = block + (size_t)n * (sizeof(char *) + sizeof(Oid));
  for (int i = 0; i < n; i++) {
    int idx = first + i;
    char *num = nums + (size_t)i * LP_NUM_LEN;
    t[i] = 0;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
      v[i] = NULL;
      break;
    case LUA_TBOOLEAN:
      v[i] = lua_toboolean(L, idx) ? "t" : "f";
      t[i] = LP_BOOL;
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        snprintf(num, LP_NUM_LEN, "%lld", (long long)lua_tointeger(L, idx));
        t[i] = LP_INT8;
      } else {
        double d = lua_tonumber(L, idx);
        if (isnan(d)) snprintf(num, LP_NUM_LEN, "NaN");
        else if (isinf(d)) snprintf(num, LP_NUM_LEN, "%sInfinity", d < 0 ? "-" : "");
        else {
          snprintf(num, LP_NUM_LEN, "%.17g", d);
          jsonout_c_point(num); /* the server takes no 0,25 */
        }
        t[i] = LP_FLOAT8;
      }
      v[i] = num;
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (strlen(s) != len) luaL_argerror(L, idx, "string holds a NUL byte, which PostgreSQL text cannot");
      v[i] = s;
      break;
    }
    default:
      luaL_argerror(L, idx, lua_pushfstring(L, "cannot bind a %s (nil, boolean, number or string)", luaL_typename(L, idx)));
    }
  }
  *values = v;
  *types = t;
  return n;
}

/* conn:query(sql, ...) -> rows, affected, command | nil, message, code, sqlstate (waits)
 * rows: {{column = value}, ...} with NULL columns absent; affected: rows the command
 * changed or returned; command: its tag ("INSERT 0 1", "COMMIT", "ROLLBACK": a COMMIT of a
 * failed transaction says ROLLBACK). One statement; parameters are $1, $2, ... (never
 * interpolated). */
static int lp_query(lua_State *L) {
  lp_conn *lp = lp_check(L);
  const char *sql = luaL_checkstring(L, 2);
  rt_wait_require(L);
  if (lp->qwaiting) return luaL_error(L, "pg: another task already waits on this connection");
  const char **values;
  Oid *types;
  int n = lp_bind(L, 3, &values, &types);
  const char *code;
  char err[1024];
  if (pg_send(lp->c, sql, n, types, values, lp->query_timeout_ms, &code, err, sizeof err) != 0)
    return lp_push_error(L, err, code, NULL);
  rt_wait_begin(L, &lp->qw, lp_cancel_query);
  lp_anchor(L, lp, 1);
  lp->qwaiting = 1;
  return rt_wait_yield(L);
}

/* conn:notifications([timeout_ms]) -> {{channel=, payload=, pid=}, ...}, dropped
 *   | nil, message, code. Returns at once when some are queued; else waits for the next
 * ones (an empty array when timeout_ms passed first). dropped: how many were lost to the
 * queue's cap since the last call. */
static int lp_notifications(lua_State *L) {
  lp_conn *lp = lp_check(L);
  lua_Integer ms = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, ms >= 0 && ms <= 86400000, 2, "timeout must be between 0 and 86400000 ms");
  if (pg_note_count(lp->c) > 0 || pg_get_state(lp->c) == PG_BROKEN) return lp_push_notes(L, lp);
  rt_wait_require(L);
  if (lp->nwaiting) return luaL_error(L, "pg: another task already waits for notifications here");
  rt_wait_begin(L, &lp->nw, lp_cancel_notes);
  lp_anchor(L, lp, 1);
  lp->nwaiting = 1;
  pg_notes_wait(lp->c, (uint64_t)ms);
  return rt_wait_yield(L);
}

/* conn:exec(script) -> true | nil, message, code, sqlstate (waits): several statements
 * separated by semicolons, no parameters (migrations, SET, LISTEN with a fixed name). */
static int lp_exec(lua_State *L) {
  lp_conn *lp = lp_check(L);
  const char *sql = luaL_checkstring(L, 2);
  rt_wait_require(L);
  if (lp->qwaiting) return luaL_error(L, "pg: another task already waits on this connection");
  const char *code;
  char err[1024];
  if (pg_send_script(lp->c, sql, lp->query_timeout_ms, &code, err, sizeof err) != 0)
    return lp_push_error(L, err, code, NULL);
  rt_wait_begin(L, &lp->qw, lp_cancel_query);
  lp_anchor(L, lp, 1);
  lp->qwaiting = lp->is_exec = 1;
  return rt_wait_yield(L);
}

static const char *const lp_states[] = {"connecting", "idle", "busy", "broken"};

/* conn:state() -> "connecting" | "idle" | "busy" | "broken" | "closed" */
static int lp_state(lua_State *L) {
  lp_conn *lp = luaL_checkudata(L, 1, LP_CONN);
  lua_pushstring(L, lp->c ? lp_states[pg_get_state(lp->c)] : "closed");
  return 1;
}

/* conn:check() -> the state, after reading without waiting what the server already sent
 * to an idle connection: finds a lost connection the loop has not noticed yet (the pool
 * asks before it hands one out). */
static int lp_check_state(lua_State *L) {
  lp_conn *lp = lp_check(L);
  lua_pushstring(L, lp_states[pg_probe(lp->c)]);
  return 1;
}

/* conn:pid() -> the server process's id (pg_terminate_backend takes it) | nil */
static int lp_pid(lua_State *L) {
  lp_conn *lp = lp_check(L);
  int pid = pg_backend_pid(lp->c);
  if (pid <= 0) return 0;
  lua_pushinteger(L, pid);
  return 1;
}

/* conn:close(): idempotent; also __close and __gc. A task waiting on it gets
 * nil, "pg: connection closed while waiting", "ENOTCONN". */
static int lp_close(lua_State *L) {
  lp_conn *lp = luaL_checkudata(L, 1, LP_CONN);
  if (lp->c == NULL) return 0;
  pg_close(lp->c);
  lp->c = NULL;
  lp->connecting = lp->is_exec = 0;
  if (lp->qwaiting) {
    lp->qwaiting = 0;
    rt_wait_finish(&lp->qw, lp_push_closed, lp);
  }
  if (lp->nwaiting) {
    lp->nwaiting = 0;
    rt_wait_finish(&lp->nw, lp_push_closed, lp);
  }
  lp_unanchor_if_idle(lp);
  return 0;
}

/* conn:give_up(message): broken from now on without a word to the server (a stop's
 * deadline passed while the server does not answer); a task waiting on a query gets nil,
 * message, "ETIMEDOUT" on the loop's next turn, and later statements nil, message,
 * "ENOTCONN" (not an error raised, as on a closed connection). Close it as usual. */
static int lp_give_up(lua_State *L) {
  lp_conn *lp = luaL_checkudata(L, 1, LP_CONN);
  const char *why = luaL_checkstring(L, 2);
  if (lp->c) pg_give_up(lp->c, why);
  return 0;
}

static int lp_tostring(lua_State *L) {
  lp_conn *lp = luaL_checkudata(L, 1, LP_CONN);
  lua_pushfstring(L, "pg connection (%s)", lp->c ? lp_states[pg_get_state(lp->c)] : "closed");
  return 1;
}

/* ---- module functions ----------------------------------------------------------------- */

static uint64_t lp_opt_ms(lua_State *L, int t, const char *field, lua_Integer def) {
  lua_getfield(L, t, field);
  lua_Integer v = luaL_opt(L, luaL_checkinteger, -1, def);
  lua_pop(L, 1);
  if (v < 0 || v > 86400000) luaL_error(L, "bad argument #2 to 'connect' (%s must be between 0 and 86400000)", field);
  return (uint64_t)v;
}

/* connect(conninfo[, {connect_timeout_ms = 10000, total_timeout_ms = 0, query_timeout_ms = 0,
 * liveness_ms = 0}]) -> conn | nil, message, code (EINVAL: a bad string; ECONNECT;
 * ETIMEDOUT). Waits. conninfo: a postgresql:// URL or key=value words; the password comes
 * from PGPASSWORD or ~/.pgpass (libpq's rules) and is masked in every message. 0 for a
 * timeout: none. connect_timeout_ms bounds each host's attempt (the string's connect_timeout
 * instead when it sets one; PG_NEXT_HOST_MS at most when another host follows),
 * total_timeout_ms the whole connect; liveness_ms: a statement unanswered that long has its
 * server checked (pg.h, pg_opts). */
static int lp_connect(lua_State *L) {
  const char *ci = luaL_checkstring(L, 1);
  pg_opts o = {.connect_timeout_ms = 10000};
  uint64_t qto = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    o.connect_timeout_ms = lp_opt_ms(L, 2, "connect_timeout_ms", 10000);
    o.total_timeout_ms = lp_opt_ms(L, 2, "total_timeout_ms", 0);
    o.liveness_ms = lp_opt_ms(L, 2, "liveness_ms", 0);
    qto = lp_opt_ms(L, 2, "query_timeout_ms", 0);
  }
  rt_wait_require(L);
  lp_conn *lp = lua_newuserdatauv(L, sizeof *lp, 0);
  memset(lp, 0, sizeof *lp); /* created closed, then the connection */
  lp->qw.co_ref = lp->nw.co_ref = LUA_NOREF;
  lp->self_ref = LUA_NOREF;
  lp->rt = rt_get(L);
  lp->query_timeout_ms = qto;
  luaL_setmetatable(L, LP_CONN);
  char err[1024];
  const char *code;
  lp->c = pg_open(&lp->rt->loop, ci, &o, lp_event, lp, &code, err, sizeof err);
  if (lp->c == NULL) return lp_push_fail(L, err, code);
  rt_wait_begin(L, &lp->qw, lp_cancel_query);
  lp_anchor(L, lp, -1);
  lp->qwaiting = lp->connecting = 1;
  return rt_wait_yield(L);
}

/* scrub(conninfo) -> conninfo with its password written as *** (for messages and logs) */
static int lp_scrub(lua_State *L) {
  size_t len;
  const char *ci = luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  /* each secret of one byte or more becomes three: at most three times as long (a
   * password of one letter cut the text after a second one short) */
  size_t room = len * 3 + 1;
  char *out = luaL_buffinitsize(L, &b, room);
  pg_scrub_conninfo(ci, out, room);
  luaL_pushresultsize(&b, strlen(out));
  return 1;
}

static const luaL_Reg lp_methods[] = {
    {"query", lp_query},
    {"exec", lp_exec},
    {"notifications", lp_notifications},
    {"state", lp_state},
    {"check", lp_check_state},
    {"pid", lp_pid},
    {"close", lp_close},
    {"give_up", lp_give_up},
    {NULL, NULL},
};

static const luaL_Reg lp_meta[] = {
    {"__gc", lp_close},
    {"__close", lp_close},
    {"__tostring", lp_tostring},
    {NULL, NULL},
};

static const luaL_Reg lp_funcs[] = {
    {"connect", lp_connect},
    {"scrub", lp_scrub},
    {NULL, NULL},
};

int luaopen_orket_pg(lua_State *L) {
  if (luaL_newmetatable(L, LP_CONN)) {
    luaL_setfuncs(L, lp_meta, 0);
    luaL_newlib(L, lp_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, lp_funcs);
  return 1;
}
