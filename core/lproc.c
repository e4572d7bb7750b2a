/* lproc.c: Lua module `orket.c.proc`, the binding of proc.c (the process runner) and
 * confine.c's probe. run{...} starts a confined program and suspends the calling task (the
 * await.h pattern) until it is over; the loop goes on meanwhile. The runner's context is
 * made on first use and freed with the Lua state. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "await.h"
#include "confine.h"
#include "jsonout.h"
#include "modules.h"
#include "proc.h"
#include "runtime.h"

#define LP_CTX "orket.proc.ctx"
#define LP_MAX_ARGS 4096
#define LP_MAX_ENV 256
/* limits.processes when a run gives none: tasks at once (threads count), far above a
 * build's needs, far below a machine's process table */
#define LP_PROCESSES 1024

static const char LP_CTX_KEY = 'p'; /* registry key: the runtime's runner context box */

typedef struct lp_box {
  proc_ctx *c;
} lp_box;

typedef struct lp_wait {
  rt_wait w; /* first: the cancel callback gets this address */
  proc_run *r;
  unsigned want;       /* layers asked for, to tell "switched off" from "not offered" */
  uint64_t memory;     /* the memory limit, to name an exhausted one */
} lp_wait;

/* ---- the context ----------------------------------------------------------------------- */

static int lp_ctx_gc(lua_State *L) {
  lp_box *b = luaL_checkudata(L, 1, LP_CTX);
  if (b->c) {
    proc_ctx_free(b->c);
    b->c = NULL;
  }
  return 0;
}

static proc_ctx *lp_ctx(lua_State *L, int create) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &LP_CTX_KEY) == LUA_TUSERDATA) {
    lp_box *b = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return b->c;
  }
  lua_pop(L, 1);
  if (!create) return NULL;
  lp_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->c = NULL; /* created closed, then the resource */
  if (luaL_newmetatable(L, LP_CTX)) {
    lua_pushcfunction(L, lp_ctx_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  b->c = proc_ctx_new(&rt_get(L)->loop, rt_get(L)->exe);
  if (b->c == NULL) luaL_error(L, "proc: out of memory");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &LP_CTX_KEY);
  return b->c;
}

/* ---- the result ------------------------------------------------------------------------ */

static const char *lp_signame(int sig) {
  static const struct {
    int n;
    const char *name;
  } names[] = {{1, "SIGHUP"},   {2, "SIGINT"},   {3, "SIGQUIT"},  {4, "SIGILL"},   {5, "SIGTRAP"},
               {6, "SIGABRT"},  {7, "SIGBUS"},   {8, "SIGFPE"},   {9, "SIGKILL"},  {10, "SIGUSR1"},
               {11, "SIGSEGV"}, {12, "SIGUSR2"}, {13, "SIGPIPE"}, {14, "SIGALRM"}, {15, "SIGTERM"},
               {24, "SIGXCPU"}, {25, "SIGXFSZ"}, {31, "SIGSYS"}};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (names[i].n == sig) return names[i].name;
  return NULL;
}

static void lp_push_stream(lua_State *L, const proc_stream *s, const char *field) {
  size_t need = proc_stream_text(s, NULL, 0);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, need);
  proc_stream_text(s, p, need);
  luaL_pushresultsize(&b, need);
  lua_setfield(L, -2, field);
}

/* The result table, or nil, message, code for a run that never ran. */
static int lp_push_result(lua_State *L, void *ud) {
  lp_wait *q = ud;
  proc_run *r = q->r;
  proc_reason why = proc_result_reason(r);
  if (why == PROC_FAILED) {
    const char *code;
    const char *msg = proc_result_failure(r, &code);
    lua_pushnil(L);
    lua_pushfstring(L, "proc: %s", msg ? msg : "the program did not run");
    lua_pushstring(L, code ? code : "ESPAWN");
    return 3;
  }
  lua_createtable(L, 0, 16);
  int sig = proc_result_signal(r);
  uint64_t rss = proc_result_max_rss_kb(r);
  /* A program that failed with its peak memory at the limit ran out of it (the limit makes
   * allocations fail; what the program does then is its own business). */
  int oom = (sig || proc_result_code(r) != 0) && q->memory && rss * 1024 >= q->memory / 10 * 9;
  const char *reason = why == PROC_TIMEOUT ? "timeout"
                       : why == PROC_OUTPUT ? "output_cap"
                       : oom                ? "memory"
                       : why == PROC_KILLED ? "killed"
                                            : "exit";
  lua_pushstring(L, reason);
  lua_setfield(L, -2, "reason");
  if (sig) {
    const char *name = lp_signame(sig);
    if (name) lua_pushstring(L, name);
    else lua_pushinteger(L, sig);
    lua_setfield(L, -2, "signal");
  } else {
    lua_pushinteger(L, proc_result_code(r));
    lua_setfield(L, -2, "code");
  }
  lua_pushnumber(L, (lua_Number)proc_result_wall_ns(r) / 1e6);
  lua_setfield(L, -2, "wall_ms");
  lua_pushnumber(L, (lua_Number)proc_result_exec_ns(r) / 1e6);
  lua_setfield(L, -2, "start_ms");
  lua_pushinteger(L, (lua_Integer)proc_result_cpu_ms(r));
  lua_setfield(L, -2, "cpu_ms");
  lua_pushinteger(L, (lua_Integer)rss);
  lua_setfield(L, -2, "max_rss_kb");
  const proc_stream *out = proc_result_stream(r, 1), *err = proc_result_stream(r, 2);
  lp_push_stream(L, out, "stdout");
  lp_push_stream(L, err, "stderr");
  lua_pushinteger(L, (lua_Integer)out->total);
  lua_setfield(L, -2, "stdout_bytes");
  lua_pushinteger(L, (lua_Integer)err->total);
  lua_setfield(L, -2, "stderr_bytes");
  lua_pushboolean(L, out->total > out->head_len + out->tail_len || err->total > err->head_len + err->tail_len);
  lua_setfield(L, -2, "truncated");
  unsigned layers = proc_result_layers(r);
  lua_createtable(L, CONFINE_NLAYERS, 0);
  lua_createtable(L, 0, 4);
  int n = 0;
  for (int i = 0; i < CONFINE_NLAYERS; i++) {
    unsigned bit = 1u << i;
    if (layers & bit) {
      lua_pushstring(L, confine_layer_name(bit));
      lua_rawseti(L, -3, ++n);
    } else if (!(CONFINE_ALWAYS & bit)) {
      const char *why_missing = proc_result_missing(r, bit);
      if (why_missing == NULL) why_missing = (q->want & bit) ? "not offered by this kernel" : "switched off";
      lua_pushstring(L, why_missing);
      lua_setfield(L, -2, confine_layer_name(bit));
    }
  }
  lua_setfield(L, -3, "missing");
  lua_setfield(L, -2, "layers");
  lua_pushinteger(L, proc_result_landlock_abi(r));
  lua_setfield(L, -2, "landlock_abi");
  if (proc_result_note(r)) {
    lua_pushstring(L, proc_result_note(r));
    lua_setfield(L, -2, "layer_note");
  }
  return 1;
}

static void lp_done(proc_run *r, void *ud) {
  lp_wait *q = ud;
  (void)r;
  rt_wait_finish(&q->w, lp_push_result, q);
  proc_release(q->r);
  free(q);
}

/* The waiting task was cancelled: the tree is killed and the run forgotten. */
static void lp_cancel(rt_wait *w) {
  lp_wait *q = (lp_wait *)w;
  proc_release(q->r);
  free(q);
}

/* ---- run{...} -------------------------------------------------------------------------- */

static int lp_argerr(lua_State *L, const char *fmt, const char *what) {
  lua_pushfstring(L, fmt, what);
  return luaL_argerror(L, 1, lua_tostring(L, -1));
}

static uint64_t lp_opt_u64(lua_State *L, int t, const char *field, uint64_t dflt, uint64_t max) {
  lua_getfield(L, t, field);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return dflt;
  }
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok || v < 0 || (uint64_t)v > max) {
    lua_pushfstring(L, "%s must be a whole number between 0 and %I", field, (lua_Integer)max);
    luaL_argerror(L, 1, lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  return (uint64_t)v;
}

/* "NAME=value" strings from a {NAME = value} table, on the Lua stack (kept alive there);
 * names the program may not be given raise. */
static int lp_env(lua_State *L, int t, const char **out) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, 1, "env must map names to strings");
    const char *k = lua_tostring(L, -2);
    int good = (isalpha((unsigned char)k[0]) || k[0] == '_');
    for (const char *p = k; *p && good; p++) good = isalnum((unsigned char)*p) || *p == '_';
    if (!good) lp_argerr(L, "env name '%s' is not a valid variable name", k);
    if (strncmp(k, "ORKET_", 6) == 0) lp_argerr(L, "env name '%s': Orket's own settings never reach a program", k);
    size_t vlen;
    const char *v = lua_tolstring(L, -1, &vlen);
    if (strlen(v) != vlen) lp_argerr(L, "env value of '%s' contains a NUL byte", k);
    if (n >= LP_MAX_ENV) luaL_argerror(L, 1, "env has too many entries");
    luaL_checkstack(L, 3, "env");
    lua_pushfstring(L, "%s=%s", k, v);
    out[n++] = lua_tostring(L, -1);
    lua_insert(L, -3); /* keep the string below the key and value */
    lua_pop(L, 1);
  }
  out[n] = NULL;
  return n;
}

/* Raises that field[i], the value on the stack's top, is not an extra path the view takes:
 * the rule (confine_path_ok's), and the value as given, quoted and escaped as JSON (a
 * newline or a terminal's control in it would act where the message is shown), its first
 * LP_SHOWN_MAX bytes cut on a character's start when longer; or its type. */
#define LP_SHOWN_MAX 128
static void lp_bad_path(lua_State *L, const char *field, lua_Integer i) {
  char shown[6 * LP_SHOWN_MAX + 64]; /* an escaped byte takes 6 at most (\u00XX, \ufffd) */
  if (lua_type(L, -1) != LUA_TSTRING) { /* asked first: lua_tolstring would turn a number into a string */
    snprintf(shown, sizeof shown, "a %s", luaL_typename(L, -1));
  } else {
    size_t n, cut;
    const char *p = lua_tolstring(L, -1, &n);
    for (cut = n > LP_SHOWN_MAX ? LP_SHOWN_MAX : n; cut < n && cut > 0 && ((unsigned char)p[cut] & 0xC0) == 0x80;)
      cut--;
    jsonout_buf b = {0};
    jsonout_string(&b, p, cut);
    int w = cut < n ? snprintf(shown, sizeof shown, "%zu bytes: ", n) : 0;
    if (b.oom) snprintf(shown, sizeof shown, "a string of %zu bytes", n);
    else snprintf(shown + w, sizeof shown - (size_t)w, "%.*s%s", (int)b.len, b.p, cut < n ? "..." : "");
    jsonout_free(&b);
  }
  lua_pushfstring(L, "%s[%I] must be an absolute path of at most %d bytes without '.', '..', '//' or a trailing "
                  "'/', and not \"/\" (got %s)", field, i, PATH_MAX / 2 - 1, shown);
  luaL_argerror(L, 1, lua_tostring(L, -1));
}

/* The extra paths of run's field (an array of absolute paths) as "<tag><path>" strings,
 * kept alive on the stack, appended to out from n; returns the new count. */
static size_t lp_paths(lua_State *L, const char *field, char tag, const char **out, size_t n) {
  int t = lua_getfield(L, 1, field);
  if (t == LUA_TNIL) return n;
  if (t != LUA_TTABLE) lp_argerr(L, "%s must be a list of absolute paths", field);
  int idx = lua_gettop(L);
  lua_Integer len = luaL_len(L, idx);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, idx, i);
    size_t sl;
    const char *p = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &sl) : NULL;
    if (p == NULL || strlen(p) != sl || !confine_path_ok(p)) lp_bad_path(L, field, i);
    if (n >= CONFINE_MAX_BINDS) luaL_argerror(L, 1, "more than 64 extra paths");
    luaL_checkstack(L, 2, "paths");
    out[n++] = lua_pushfstring(L, "%c%s", tag, p); /* stays on the stack until the run starts */
    lua_remove(L, -2);
  }
  return n;
}

/* One end of a relay, the table at index t: {path = (clean, absolute, at most max bytes),
 * port = 1..65535}, named `what` in errors. The path stays anchored by the table. */
static void lp_socket_end(lua_State *L, int t, const char *what, size_t max, const char **path, unsigned *port) {
  size_t len;
  const char *p = lua_getfield(L, t, "path") == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
  if (p == NULL || strlen(p) != len || len > max || !confine_path_ok(p)) {
    lua_pushfstring(L, "%s.path must be an absolute path without '.', '..', '//' or a trailing '/', at most %d bytes",
                    what, (int)max);
    luaL_argerror(L, 1, lua_tostring(L, -1));
  }
  *path = p;
  lua_pop(L, 1);
  lua_getfield(L, t, "port");
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok || v < 1 || v > 65535) lp_argerr(L, "%s.port must be a whole number between 1 and 65535", what);
  lua_pop(L, 1);
  *port = (unsigned)v;
}

/* relay.services of the relay table at t: a list of further ports, each relayed from the
 * relay's path ".PORT"; none the relay's own port, none twice. */
static void lp_service_ports(lua_State *L, int t, proc_opts *o) {
  int ft = lua_getfield(L, t, "services");
  if (ft == LUA_TNIL) return;
  if (ft != LUA_TTABLE) luaL_argerror(L, 1, "relay.services must be a list of ports");
  lua_Integer n = luaL_len(L, -1);
  if (n > CONFINE_MAX_SERVICES) luaL_argerror(L, 1, "relay.services holds at most 16 ports");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    lua_pop(L, 1);
    int twice = 0;
    for (size_t k = 0; ok && k < o->nservices; k++) twice |= o->service_ports[k] == (unsigned)v;
    if (!ok || v < 1 || v > 65535 || (unsigned)v == o->relay_port || twice) {
      lua_pushfstring(L, "relay.services[%I] must be a port between 1 and 65535, not relay.port and not named twice", i);
      luaL_argerror(L, 1, lua_tostring(L, -1));
    }
    o->service_ports[o->nservices++] = (unsigned)v;
  }
}

/* The options of run{} and helper_argv{} from the table at 1, into o; env receives the
 * "NAME=value" strings and binds the extra paths (both anchored on the Lua stack). Misuse
 * raises; returns 0, or 3 with nil, message, code pushed (a required layer switched off). */
static int lp_opts(lua_State *L, proc_opts *o, const char **env, const char **binds) {
  memset(o, 0, sizeof *o);

  if (lua_getfield(L, 1, "argv") != LUA_TTABLE) luaL_argerror(L, 1, "argv must be a table of strings");
  int argv_idx = lua_gettop(L);
  lua_Integer argc = luaL_len(L, argv_idx);
  if (argc < 1 || argc > LP_MAX_ARGS) luaL_argerror(L, 1, "argv must hold between 1 and 4096 strings");
  const char **argv = lua_newuserdatauv(L, (size_t)(argc + 1) * sizeof *argv, 0);
  for (lua_Integer i = 1; i <= argc; i++) {
    lua_rawgeti(L, argv_idx, i);
    size_t len;
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (s == NULL || strlen(s) != len) {
      lua_pushfstring(L, "argv[%I] must be a string without NUL bytes", i);
      luaL_argerror(L, 1, lua_tostring(L, -1));
    }
    argv[i - 1] = s; /* anchored by the argv table */
    lua_pop(L, 1);
  }
  argv[argc] = NULL;
  o->argv = (char *const *)argv;

  lua_getfield(L, 1, "cwd");
  if (lua_type(L, -1) != LUA_TSTRING || lua_tostring(L, -1)[0] != '/')
    luaL_argerror(L, 1, "cwd must be an absolute path (the workspace)");
  o->cwd = lua_tostring(L, -1);

  int t = lua_getfield(L, 1, "env");
  if (t == LUA_TTABLE) {
    lp_env(L, lua_gettop(L), env);
    o->env = (char *const *)env;
  } else if (t != LUA_TNIL) {
    luaL_argerror(L, 1, "env must be a table");
  }

  o->timeout_ms = lp_opt_u64(L, 1, "timeout_ms", 60000, 86400000);
  o->output_cap = (size_t)lp_opt_u64(L, 1, "output_cap", 1u << 20, 64u << 20);
  if (o->output_cap < 2) luaL_argerror(L, 1, "output_cap must be at least 2");
  o->output_limit = lp_opt_u64(L, 1, "output_limit", 1ull << 30, UINT64_MAX >> 1);

  uint64_t cpu_default = o->timeout_ms ? o->timeout_ms / 1000 + 1 : 3600;
  t = lua_getfield(L, 1, "limits");
  if (t == LUA_TNIL) { /* no limits given: every field takes its default below */
    lua_pop(L, 1);
    lua_newtable(L);
    t = LUA_TTABLE;
  }
  if (t == LUA_TTABLE) {
    int lt = lua_gettop(L);
    o->lim.cpu_seconds = lp_opt_u64(L, lt, "cpu_seconds", cpu_default, 86400);
    o->lim.memory = lp_opt_u64(L, lt, "memory", 2ull << 30, UINT64_MAX >> 1);
    o->lim.address_space = lp_opt_u64(L, lt, "address_space", 0, UINT64_MAX >> 1);
    o->lim.file_size = lp_opt_u64(L, lt, "file_size", 1ull << 30, UINT64_MAX >> 1);
    o->lim.open_files = lp_opt_u64(L, lt, "open_files", 256, 1u << 20);
    /* a default, so that no run of hostile code can fill the machine's process table */
    o->lim.processes = lp_opt_u64(L, lt, "processes", LP_PROCESSES, 1u << 22);
  } else {
    luaL_argerror(L, 1, "limits must be a table");
  }

  o->want = CONFINE_ALL;
  t = lua_getfield(L, 1, "layers");
  if (t == LUA_TTABLE) {
    int lt = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, lt)) {
      unsigned bit = lua_type(L, -2) == LUA_TSTRING ? confine_layer_bit(lua_tostring(L, -2)) : 0;
      if (bit == 0 || (CONFINE_ALWAYS & bit))
        lp_argerr(L, "layers: '%s' is not an optional layer", lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?");
      if (lua_type(L, -1) != LUA_TBOOLEAN) luaL_argerror(L, 1, "layers must map layer names to booleans");
      if (lua_toboolean(L, -1)) o->want |= bit;
      else o->want &= ~bit;
      lua_pop(L, 1);
    }
    /* The Landlock sub-layers come with Landlock. */
    if (!(o->want & CONFINE_LANDLOCK)) o->want &= ~(CONFINE_LANDLOCK_NET | CONFINE_LANDLOCK_SCOPE);
  } else if (t != LUA_TNIL) {
    luaL_argerror(L, 1, "layers must be a table");
  }

  t = lua_getfield(L, 1, "require");
  if (t == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      unsigned bit = lua_type(L, -1) == LUA_TSTRING ? confine_layer_bit(lua_tostring(L, -1)) : 0;
      if (bit == 0) {
        lua_pushfstring(L, "require[%I] is not a layer name", i);
        luaL_argerror(L, 1, lua_tostring(L, -1));
      }
      o->require |= bit;
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    luaL_argerror(L, 1, "require must be a list of layer names");
  }
  /* A layer both required and switched off cannot be had: say so before running. */
  unsigned off = o->require & ~(o->want | CONFINE_ALWAYS);
  if (off) {
    for (int i = 0; i < CONFINE_NLAYERS; i++)
      if (off & (1u << i)) {
        lua_pushnil(L);
        lua_pushfstring(L, "proc: required layer '%s' is switched off for this run", confine_layer_name(1u << i));
        lua_pushliteral(L, "ELAYER");
        return 3;
      }
  }

  o->nbinds = lp_paths(L, "read_only", 'r', binds, 0);
  o->nbinds = lp_paths(L, "read_write", 'w', binds, o->nbinds);
  o->binds = (char *const *)binds;
  int ft = lua_getfield(L, 1, "unix_sockets");
  if (ft != LUA_TNIL && ft != LUA_TBOOLEAN) luaL_argerror(L, 1, "unix_sockets must be a boolean");
  if (lua_toboolean(L, -1)) o->flags |= CONFINE_F_UNIX;
  ft = lua_getfield(L, 1, "loopback");
  if (ft != LUA_TNIL && ft != LUA_TBOOLEAN) luaL_argerror(L, 1, "loopback must be a boolean");
  if (lua_toboolean(L, -1)) o->flags |= CONFINE_F_LOOPBACK;
  ft = lua_getfield(L, 1, "sessions");
  if (ft != LUA_TNIL && ft != LUA_TBOOLEAN) luaL_argerror(L, 1, "sessions must be a boolean");
  if (lua_toboolean(L, -1)) o->flags |= CONFINE_F_SESSIONS;
  ft = lua_getfield(L, 1, "relay");
  if (ft == LUA_TTABLE) {
    int rt = lua_gettop(L);
    lp_socket_end(L, rt, "relay", CONFINE_RELAY_PATH_MAX, &o->relay_path, &o->relay_port);
    if (!(o->flags & CONFINE_F_LOOPBACK)) luaL_argerror(L, 1, "relay needs loopback = true");
    if (!(o->want & CONFINE_NETNS)) luaL_argerror(L, 1, "relay needs the netns layer");
    ft = lua_getfield(L, rt, "inward");
    if (ft == LUA_TTABLE) lp_socket_end(L, lua_gettop(L), "relay.inward", CONFINE_INWARD_PATH_MAX, &o->inward_path,
                                        &o->inward_port);
    else if (ft != LUA_TNIL) luaL_argerror(L, 1, "relay.inward must be a table {path =, port =}");
    lp_service_ports(L, rt, o);
  } else if (ft != LUA_TNIL) {
    luaL_argerror(L, 1, "relay must be a table {path =, port =[, inward = {path =, port =}, services = {port, ...}]}");
  }
  o->run_as = (unsigned)lp_opt_u64(L, 1, "run_as", 0, 4294967294u);
  return 0;
}

/* run{argv = {...}, cwd =, env = {NAME = value}, timeout_ms =, limits = {cpu_seconds =,
 *   memory =, address_space =, file_size =, open_files =, processes =}, layers = {name =
 *   false}, require = {name, ...}, output_cap =, output_limit =, read_only = {path, ...},
 *   read_write = {path, ...}, unix_sockets = bool, loopback = bool, sessions = bool,
 *   relay = {path =, port = [, inward = {path =, port =}]}, run_as = uid}
 * read_only and read_write are shown in the view and allowed by Landlock beside the
 * workspace; unix_sockets lets socket(AF_UNIX) through seccomp; loopback brings the network
 * namespace's lo up (seccomp and Landlock still refuse IP sockets unless switched off);
 * sessions lets setsid through seccomp when the run has its PID namespace (confine.h);
 * relay makes the helper listen on path (and path ".probe") and connect each client to
 * 127.0.0.1:port inside the namespace (needs loopback and the netns layer; confine.h);
 * relay.inward = {port =, path =} also joins 127.0.0.1:port inside to the unix socket path
 * outside; relay.services = {port, ...} relays each further port from path ".PORT". run_as: started by root, the program becomes that uid and gid (the helper stays
 * root).
 * -> result | nil, message, code. Waits in the calling task. */
static int lp_run(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  rt_wait_require(L);
  proc_opts o;
  const char *env[LP_MAX_ENV + 1] = {NULL};
  const char *binds[CONFINE_MAX_BINDS];
  if (lp_opts(L, &o, env, binds) != 0) return 3;

  proc_ctx *c = lp_ctx(L, 1);
  lp_wait *q = calloc(1, sizeof *q);
  if (q == NULL) return luaL_error(L, "proc: out of memory");
  q->w.co_ref = LUA_NOREF;
  q->want = o.want;
  q->memory = o.lim.memory;
  char err[400];
  const char *code;
  q->r = proc_start(c, &o, lp_done, q, err, sizeof err, &code);
  if (q->r == NULL) {
    free(q);
    lua_pushnil(L);
    lua_pushfstring(L, "proc: %s", err);
    lua_pushstring(L, code);
    return 3;
  }
  rt_wait_begin(L, &q->w, lp_cancel);
  return rt_wait_yield(L);
}

/* Whether env (NULL-terminated "NAME=value") sets name. */
static int lp_env_has(const char **env, const char *name) {
  size_t n = strlen(name);
  for (; *env; env++)
    if (strncmp(*env, name, n) == 0 && (*env)[n] == '=') return 1;
  return 0;
}

/* helper_argv{argv =, cwd =, tmpdir =, env =, limits =, layers =, require =, read_only =,
 *   read_write =, unix_sockets =, loopback =, sessions =, relay =, run_as =} -> {helper,
 *   ...}, {helper's env} | nil, message, code: the confinement helper's command line and
 * environment (the program's entries, kept out of argv, which any local user reads) for a long-lived
 * program its caller spawns with pipes of its own (an MCP server on stdio), confined as
 * run{} confines one: the same layers, limits and environment rules (PATH, HOME and TMPDIR,
 * tmpdir, LANG added unless env sets them). Spawn it with exactly that environment and fd 3
 * a pipe (the helper's report lines). */
static int lp_helper_argv(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  proc_opts o;
  const char *env[LP_MAX_ENV + 5] = {NULL};
  const char *binds[CONFINE_MAX_BINDS];
  if (lp_opts(L, &o, env, binds) != 0) return 3;
  lua_getfield(L, 1, "tmpdir");
  if (lua_type(L, -1) != LUA_TSTRING || lua_tostring(L, -1)[0] != '/')
    luaL_argerror(L, 1, "tmpdir must be an absolute path");
  const char *tmpdir = lua_tostring(L, -1);
  int n = 0;
  while (env[n]) n++;
  if (!lp_env_has(env, "PATH")) env[n++] = "PATH=/usr/local/bin:/usr/bin:/bin";
  if (!lp_env_has(env, "HOME")) env[n++] = lua_pushfstring(L, "HOME=%s", tmpdir);
  if (!lp_env_has(env, "TMPDIR")) env[n++] = lua_pushfstring(L, "TMPDIR=%s", tmpdir);
  if (!lp_env_has(env, "LANG")) env[n++] = "LANG=C.UTF-8";
  env[n] = NULL;
  confine_spec spec = {.want = o.want, .require = o.require, .lim = o.lim, .cwd = o.cwd,
                       .tmpdir = tmpdir, .env = (char *const *)env, .argv = o.argv,
                       .flags = o.flags, .nbinds = o.nbinds, .binds = o.binds,
                       .relay_path = o.relay_path, .relay_port = o.relay_port,
                       .inward_path = o.inward_path, .inward_port = o.inward_port, .run_as = o.run_as,
                       .nservices = o.nservices};
  memcpy(spec.service_ports, o.service_ports, sizeof spec.service_ports);
  char scratch[384];
  char **args = confine_encode(proc_ctx_helper(lp_ctx(L, 1)), &spec, scratch, sizeof scratch);
  char **henv = args ? confine_encode_env(&spec) : NULL;
  if (henv == NULL) {
    free(args);
    return luaL_error(L, "proc: out of memory");
  }
  lua_newtable(L);
  for (int i = 0; args[i]; i++) {
    lua_pushstring(L, args[i]);
    lua_rawseti(L, -2, i + 1);
  }
  free(args);
  lua_newtable(L);
  for (int i = 0; henv[i]; i++) {
    lua_pushstring(L, henv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  free(henv);
  return 2;
}

/* probe() -> {userns = bool, netns = bool, pidns = bool, landlock = bool, landlock_net =
 * bool, landlock_scope = bool, seccomp = bool, no_new_privs = bool, caps = bool, view = bool, pids = bool,
 * landlock_abi = n}:
 * what this kernel offers, tried in throw-away processes. */
static int lp_probe(lua_State *L) {
  int abi = 0;
  unsigned offered = confine_probe(&abi);
  lua_createtable(L, 0, 10);
  for (int i = 0; i < CONFINE_NLAYERS; i++) {
    unsigned bit = 1u << i;
    if (CONFINE_ALWAYS & bit) continue;
    lua_pushboolean(L, (offered & bit) != 0);
    lua_setfield(L, -2, confine_layer_name(bit));
  }
  lua_pushinteger(L, abi);
  lua_setfield(L, -2, "landlock_abi");
  return 1;
}

/* path_ok(path) -> bool: an extra path the view accepts (confine_path_ok). */
static int lp_path_ok(lua_State *L) {
  size_t len;
  const char *p = luaL_checklstring(L, 1, &len);
  lua_pushboolean(L, strlen(p) == len && confine_path_ok(p));
  return 1;
}

/* layers() -> {always = {names}, optional = {names}} */
static int lp_layers(lua_State *L) {
  lua_createtable(L, 0, 2);
  lua_newtable(L);
  lua_newtable(L);
  int na = 0, no = 0;
  for (int i = 0; i < CONFINE_NLAYERS; i++) {
    unsigned bit = 1u << i;
    lua_pushstring(L, confine_layer_name(bit));
    if (CONFINE_ALWAYS & bit) lua_rawseti(L, -3, ++na);
    else lua_rawseti(L, -2, ++no);
  }
  lua_setfield(L, -3, "optional");
  lua_setfield(L, -2, "always");
  return 1;
}

/* live() -> runs not yet freed (for leak checks in tests) */
static int lp_live(lua_State *L) {
  proc_ctx *c = lp_ctx(L, 0);
  lua_pushinteger(L, c ? (lua_Integer)proc_ctx_live(c) : 0);
  return 1;
}

/* helper() -> the path of the confinement helper runs exec (orket-confine next to the
 * running binary, else "/proc/self/exe"): bench and tests say which one they measured */
static int lp_helper(lua_State *L) {
  proc_ctx *c = lp_ctx(L, 1);
  lua_pushstring(L, proc_ctx_helper(c));
  return 1;
}

/* system_dirs() -> {"/usr", "/bin", ...}: the system's directories every confined view
 * holds (confine_system_dirs), for messages that say what a program sees */
static int lp_system_dirs(lua_State *L) {
  const char *const *d = confine_system_dirs();
  lua_newtable(L);
  for (lua_Integer i = 0; d[i]; i++) {
    lua_pushstring(L, d[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static const luaL_Reg lp_funcs[] = {
    {"run", lp_run},
    {"system_dirs", lp_system_dirs},
    {"helper", lp_helper},
    {"helper_argv", lp_helper_argv},
    {"probe", lp_probe},
    {"layers", lp_layers},
    {"path_ok", lp_path_ok},
    {"live", lp_live},
    {NULL, NULL},
};

int luaopen_orket_proc(lua_State *L) {
  luaL_newlib(L, lp_funcs);
  return 1;
}
