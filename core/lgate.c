/* lgate.c: Lua module `orket.c.gate`: the gate's pure logic (gate.c) for Lua: check(input)
 * -> decision, measure(schema, args, writes) -> bytes, files, compile_schema(schema) and
 * compile_rules(rules) (converted once, for check to reuse) and glob(pattern, s[, opts]). Lua
 * tables become schema.h values through ljv.c, in an arena a userdata owns, so an error
 * half-way leaks nothing. lua/orket/gate.lua and lua/orket/policy.lua build on it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "gate.h"
#include "ljv.h"
#include "modules.h"
#include "schema.h"
#include "scriptenv.h"
#include "workspace.h"

#define LG_COMPILED "orket.gate.compiled"

/* The arena check works in, one per Lua state: check runs on every tool call, and a fresh
 * arena each time cost a 16 KB malloc and free (which glibc handed back to the system and
 * took again, a brk each way), a userdata and its finalizer; that was most of a check's
 * time. It is emptied, its block kept, when check returns or raises (a to-be-closed
 * value). A check inside another (a policy predicate calling the gate) takes a fresh one.
 * measure, which runs after every allowed call, uses it the same way. */
#define LG_POOL "orket.gate.pool"

typedef struct lg_pool {
  jv_arena a;
  int busy;
} lg_pool;

static int lg_pool_close(lua_State *L) {
  lg_pool *p = luaL_checkudata(L, 1, LG_POOL);
  jv_arena_reset(&p->a);
  p->busy = 0;
  return 0;
}

static int lg_pool_gc(lua_State *L) {
  lg_pool *p = luaL_checkudata(L, 1, LG_POOL);
  jv_arena_free(&p->a);
  return 0;
}

/* Pushes the arena for check or measure: the state's own (upvalue 1) unless a call is using it. */
static jv_arena *lg_check_arena(lua_State *L, int *pooled) {
  lg_pool *p = lua_touserdata(L, lua_upvalueindex(1));
  *pooled = !p->busy;
  if (!*pooled) return ljv_arena(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_toclose(L, -1);
  p->busy = 1;
  return &p->a;
}

/* glob(pattern, s[, {ignore_case = true}]) -> bool  (see gate_glob_flags). A script's call
 * (a tool such as search_files matching a model's glob against every file) is charged its
 * table, pattern x subject cells at 2 instructions each (about the time one takes): 200 by
 * 4096 bytes is 9 ms of C the count hook would not see, so a tool's budget bounds the
 * matching as its Lua. */
static int lg_glob(lua_State *L) {
  size_t plen, n;
  const char *p = luaL_checklstring(L, 1, &plen);
  const char *s = luaL_checklstring(L, 2, &n);
  unsigned flags = 0;
  if (!lua_isnoneornil(L, 3)) {
    luaL_argexpected(L, lua_type(L, 3) == LUA_TTABLE, 3, "table of options ({ignore_case = true})");
    /* a misspelt option ({icase = true}) would leave the match silently case-sensitive */
    lua_pushnil(L);
    while (lua_next(L, 3) != 0) {
      lua_pop(L, 1);
      if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "ignore_case") == 0) continue;
      const char *k = luaL_tolstring(L, -1, NULL);
      return luaL_argerror(L, 3, lua_pushfstring(L, "unknown field '%s'; it takes ignore_case", k));
    }
    int ty = lua_getfield(L, 3, "ignore_case");
    luaL_argcheck(L, ty == LUA_TNIL || ty == LUA_TBOOLEAN, 3, "ignore_case must be true or false");
    if (lua_toboolean(L, -1)) flags |= GATE_GLOB_IGNORE_CASE;
    lua_pop(L, 1);
  }
  /* read up to its first NUL byte, "*\0.env" would be "*" and match anything (the subject
   * is matched whole: its length is handed on) */
  luaL_argcheck(L, memchr(p, '\0', plen) == NULL, 1, "pattern holds a NUL byte");
  if (plen <= 512 && n <= WS_PATH_MAX && senv_thread_budgeted(L))
    senv_charge_call(L, (uint64_t)(plen + 1) * (n + 1) * 2, "glob");
  int m = gate_glob_flags(p, s, n, flags);
  luaL_argcheck(L, m >= 0, 1, "pattern longer than 512 bytes or subject longer than 4096");
  lua_pushboolean(L, m);
  return 1;
}

/* ---- check ------------------------------------------------------------------------------ */

typedef struct lg_cb {
  lua_State *L;
  int input; /* stack index of the input table */
} lg_cb;

static void lg_copy_field(lua_State *L, int idx, char *out, size_t outlen) {
  const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
  snprintf(out, outlen, "%s", s ? s : "");
}

/* input.predicate(i, input) -> matched | nil, err (input: the table check was given, so
 * one function serves every check) */
static int lg_predicate(void *ud, size_t rule, gate_decision *d) {
  lg_cb *cb = ud;
  lua_State *L = cb->L;
  lua_getfield(L, cb->input, "predicate");
  if (lua_type(L, -1) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    snprintf(d->reason, sizeof d->reason, "no predicate function was given");
    return -1;
  }
  lua_pushinteger(L, (lua_Integer)rule + 1);
  lua_pushvalue(L, cb->input);
  if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
    snprintf(d->reason, sizeof d->reason, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object)");
    lua_pop(L, 1);
    return -1;
  }
  int r;
  if (lua_isnil(L, -2)) {
    lg_copy_field(L, -1, d->reason, sizeof d->reason);
    r = -1;
  } else {
    r = lua_toboolean(L, -2);
  }
  lua_pop(L, 2);
  return r;
}

/* A rule's index and name ("policies/x.lua:3", or NULL) for its messages; 0: check's own
 * input, not a rule. */
typedef struct lg_at {
  int rule;
  const char *name;
} lg_at;

static const lg_at LG_INPUT = {0, NULL};

/* Raises when s's n bytes hold a NUL, naming the field (a lua_pushfstring format: "tool",
 * "paths[2]"). gate.c reads a name, a glob or a list entry as a C string, up to its first
 * NUL: "admin\0x" would match what "admin" matches, and a glob "*\0.env" anything. */
static void lg_no_nul(lua_State *L, const char *s, size_t n, lg_at at, const char *field, ...) {
  if (s == NULL || memchr(s, '\0', n) == NULL) return;
  va_list ap;
  va_start(ap, field);
  const char *f = lua_pushvfstring(L, field, ap);
  va_end(ap);
  if (at.rule) lua_pushfstring(L, "%s%sbad gate input (rules[%d].%s holds a NUL byte)", at.name ? at.name : "",
                               at.name ? ": " : "", at.rule, f);
  else lua_pushfstring(L, "bad gate input (%s holds a NUL byte)", f);
  lua_error(L);
}

/* t[k] when it is a string, else NULL; *n its length (0 for NULL). */
static const char *lg_optlstr(lua_State *L, int t, const char *k, size_t *n) {
  lua_getfield(L, t, k);
  /* only real strings: they stay alive because the table holds them (a number converted
   * by lua_tostring would live only on the stack) */
  *n = 0;
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, n) : NULL;
  lua_pop(L, 1);
  return s;
}

/* t[k] when it is a string, else NULL: a text only shown (a reason, a rule's name), which a
 * NUL byte only cuts short. */
static const char *lg_optstr(lua_State *L, int t, const char *k) {
  size_t n;
  return lg_optlstr(L, t, k, &n);
}

/* t[k] when it is a string, else NULL: a name gate.c matches or compares, refused when it
 * holds a NUL byte (lg_no_nul). */
static const char *lg_optname(lua_State *L, int t, const char *k, lg_at at) {
  size_t n;
  const char *s = lg_optlstr(L, t, k, &n);
  lg_no_nul(L, s, n, at, "%s", k);
  return s;
}

/* A list of strings at t[k] -> arena array (pointers into the Lua strings), none holding a
 * NUL byte (as lg_optname). */
static const char *const *lg_strlist(lua_State *L, int t, const char *k, lg_at at, jv_arena *a, size_t *n) {
  *n = 0;
  if (lua_getfield(L, t, k) != LUA_TTABLE) {
    lua_pop(L, 1);
    return NULL;
  }
  size_t len = lua_rawlen(L, -1);
  const char **v = jv_alloc(a, (len ? len : 1) * sizeof *v);
  if (v == NULL) luaL_error(L, "gate: out of memory");
  for (size_t i = 0; i < len; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    size_t sl = 0;
    v[i] = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &sl) : NULL;
    lua_pop(L, 1);
    if (v[i] == NULL) luaL_error(L, "bad gate input (%s[%d] must be a string)", k, (int)i + 1);
    lg_no_nul(L, v[i], sl, at, "%s[%d]", k, (int)i + 1);
  }
  lua_pop(L, 1);
  *n = len;
  return v;
}

/* A list of strings the caller hands check (allowed, commands) -> arena array, as
 * lg_strlist; nil or false: none. Anything else is the caller's mistake, raised as
 * orket.gate's check raises it: it no longer walks the lists in Lua first, which for a
 * role's tools at every call cost as much again as this whole check. */
static const char *const *lg_input_list(lua_State *L, int t, const char *k, jv_arena *a, size_t *n) {
  *n = 0;
  int ty = lua_getfield(L, t, k);
  if (ty == LUA_TNIL || (ty == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
    lua_pop(L, 1);
    return NULL;
  }
  if (ty != LUA_TTABLE) {
    luaL_where(L, 2);
    lua_pushfstring(L, "bad argument #1 to 'check' (%s must be a list of strings)", k);
    lua_concat(L, 2);
    lua_error(L);
  }
  size_t len = lua_rawlen(L, -1);
  const char **v = jv_alloc(a, (len ? len : 1) * sizeof *v);
  if (v == NULL) luaL_error(L, "gate: out of memory");
  for (size_t i = 0; i < len; i++) {
    size_t sl = 0;
    v[i] = lua_rawgeti(L, -1, (lua_Integer)i + 1) == LUA_TSTRING ? lua_tolstring(L, -1, &sl) : NULL;
    lua_pop(L, 1);
    if (v[i] == NULL || memchr(v[i], '\0', sl) != NULL) { /* a NUL: as lg_no_nul */
      luaL_where(L, 2);
      lua_pushfstring(L, "bad argument #1 to 'check' (%s[%d] %s)", k, (int)i + 1,
                      v[i] == NULL ? "must be a string" : "holds a NUL byte");
      lua_concat(L, 2);
      lua_error(L);
    }
  }
  lua_pop(L, 1);
  *n = len;
  return v;
}

/* The integer at field k of the table on top of the stack (0 when none). */
static long long lg_int_at(lua_State *L, const char *k) {
  lua_getfield(L, -1, k);
  long long v = (long long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* t[scope] = {calls, bytes, files} -> c (zeros when absent): the table read once. */
static void lg_counters(lua_State *L, int t, const char *scope, gate_counters *c) {
  c->calls = c->bytes = c->files = 0;
  if (lua_getfield(L, t, scope) == LUA_TTABLE) {
    c->calls = lg_int_at(L, "calls");
    c->bytes = lg_int_at(L, "bytes");
    c->files = lg_int_at(L, "files");
  }
  lua_pop(L, 1);
}

/* Each limit: limits[k], or default_limits[k] when limits has none (or is absent): the
 * Lua layer hands both rather than merging them into a fresh table at every call, and
 * each table is looked up once here, not once a limit. */
static void lg_limits(lua_State *L, int t, gate_limits *out) {
  static const char *const keys[] = {"calls_turn", "calls_run", "bytes_turn", "bytes_run", "files_turn", "files_run"};
  long long *fields[] = {&out->calls_turn, &out->calls_run, &out->bytes_turn,
                         &out->bytes_run, &out->files_turn, &out->files_run};
  int top = lua_gettop(L);
  int lim = lua_getfield(L, t, "limits") == LUA_TTABLE ? top + 1 : 0;
  int def = lua_getfield(L, t, "default_limits") == LUA_TTABLE ? top + 2 : 0;
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    int ty = lim ? lua_getfield(L, lim, keys[i]) : LUA_TNIL;
    if (ty == LUA_TNIL && def) ty = lua_getfield(L, def, keys[i]);
    *fields[i] = ty != LUA_TNIL ? (long long)lua_tointeger(L, -1) : 0;
    lua_settop(L, top + 2);
  }
  lua_settop(L, top);
}

static const char *const lg_verdicts[] = {"allow", "deny", "ask"};

/* Converts the rules list at index rt into the arena. The rules point into the list's
 * strings, so whoever keeps the result keeps the list alive. Raises on a malformed rule. */
static void lg_rules_of(lua_State *L, int rt, jv_arena *a, const gate_rule **out, size_t *nout) {
  static const char *const levels[] = {"deny", "ask", "allow", NULL};
  rt = lua_absindex(L, rt);
  size_t n = lua_rawlen(L, rt);
  gate_rule *rules = jv_alloc(a, (n ? n : 1) * sizeof *rules);
  if (rules == NULL) luaL_error(L, "gate: out of memory");
  for (size_t i = 0; i < n; i++) {
    if (lua_rawgeti(L, rt, (lua_Integer)i + 1) != LUA_TTABLE) luaL_error(L, "bad gate input (rules[%d] must be a table)", (int)i + 1);
    int r = lua_gettop(L);
    gate_rule *g = &rules[i];
    const char *lv = lg_optstr(L, r, "level");
    int l = 0;
    while (levels[l] && (lv == NULL || strcmp(levels[l], lv) != 0)) l++;
    if (levels[l] == NULL) luaL_error(L, "bad gate input (rules[%d].level must be deny, ask or allow)", (int)i + 1);
    g->level = (gate_rule_level)l;
    g->name = lg_optstr(L, r, "name");
    lg_at at = {(int)i + 1, g->name};
    g->tool = lg_optname(L, r, "tool", at);
    g->role = lg_optname(L, r, "role", at);
    g->seat = lg_optname(L, r, "seat", at);
    g->card = lg_optname(L, r, "card", at);
    g->status = lg_optname(L, r, "status", at);
    g->reason = lg_optstr(L, r, "reason");
    g->remedy = lg_optstr(L, r, "remedy");
    g->paths = lg_strlist(L, r, "paths", at, a, &g->n_paths);
    g->outside = lg_strlist(L, r, "outside", at, a, &g->n_outside);
    lua_getfield(L, r, "predicate");
    g->predicate = lua_toboolean(L, -1);
    lua_pop(L, 1);
    int ic = lua_getfield(L, r, "ignore_case");
    if (ic != LUA_TNIL && ic != LUA_TBOOLEAN)
      luaL_error(L, "%s%sbad gate input (rules[%d].ignore_case must be true or false)", g->name ? g->name : "",
                 g->name ? ": " : "", (int)i + 1);
    g->ignore_case = lua_toboolean(L, -1);
    lua_pop(L, 1);
    /* args = { {key, glob}, ... } (ordered, so the first listed is checked first) */
    size_t na = 0;
    if (lua_getfield(L, r, "args") == LUA_TTABLE) na = lua_rawlen(L, -1);
    const char **keys = jv_alloc(a, (na ? na : 1) * sizeof *keys);
    const char **globs = jv_alloc(a, (na ? na : 1) * sizeof *globs);
    if (keys == NULL || globs == NULL) luaL_error(L, "gate: out of memory");
    for (size_t k = 0; k < na; k++) {
      lua_rawgeti(L, -1, (lua_Integer)k + 1);
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 2);
      size_t kl = 0, gl = 0;
      keys[k] = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kl) : NULL;
      globs[k] = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &gl) : NULL;
      lua_pop(L, 3);
      if (keys[k] == NULL || globs[k] == NULL) luaL_error(L, "bad gate input (rules[%d].args[%d] must be {key, glob})", (int)i + 1, (int)k + 1);
      lg_no_nul(L, keys[k], kl, at, "args[%d]'s key", (int)k + 1);
      lg_no_nul(L, globs[k], gl, at, "args[%d]'s glob", (int)k + 1);
    }
    lua_pop(L, 1);
    g->arg_keys = keys;
    g->arg_globs = globs;
    g->n_args = na;
    lua_pop(L, 1);
  }
  *out = rules;
  *nout = n;
}

/* ---- compiled schemas and rules --------------------------------------------------------- */

/* A schema or a rules list converted once (compile_schema, compile_rules): the tool
 * registry and the policy set build one when they load, so check converts only the call's
 * arguments. The source table is the userdata's user value: rules point into its strings.
 * Callers never change a table after compiling it (the registry's schemas are its own
 * copies; a reload builds new ones). */
typedef struct lg_compiled {
  jv_arena a;
  int live;
  const jv *schema;          /* compile_schema */
  const gate_rule *rules;    /* compile_rules */
  size_t n_rules;
  int is_rules;
} lg_compiled;

static lg_compiled *lg_newcompiled(lua_State *L, int src) {
  src = lua_absindex(L, src);
  lg_compiled *c = lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  jv_arena_init(&c->a, LJV_ARENA_LIMIT);
  c->live = 1;
  luaL_setmetatable(L, LG_COMPILED);
  lua_pushvalue(L, src);
  lua_setiuservalue(L, -2, 1);
  return c;
}

static int lg_compiled_gc(lua_State *L) {
  lg_compiled *c = luaL_checkudata(L, 1, LG_COMPILED);
  if (c->live) jv_arena_free(&c->a);
  c->live = 0;
  return 0;
}

static int lg_compiled_tostring(lua_State *L) {
  lg_compiled *c = luaL_checkudata(L, 1, LG_COMPILED);
  if (c->is_rules) lua_pushfstring(L, "gate rules (%d) (%p)", (int)c->n_rules, (void *)c);
  else lua_pushfstring(L, "gate schema (%p)", (void *)c);
  return 1;
}

/* compile_schema(schema) -> compiled schema for check's `schema` field; raises, naming the
 * field, when schema_check_shape refuses it (an additionalProperties neither a boolean nor a
 * schema, properties not an object, required not a list of names, a count keyword not a
 * non-negative whole number) */
static int lg_compile_schema(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lg_compiled *c = lg_newcompiled(L, 1);
  c->schema = ljv_check(L, 1, &c->a, "argument #1 to 'compile_schema'");
  /* a schema the validator would read looser than it says is refused here, named */
  schema_err e;
  if (schema_check_shape(c->schema, "inputSchema", &e) != 0) return luaL_error(L, "%s", e.msg);
  return 1;
}

/* compile_rules(rules) -> compiled rules for check's `rules` field */
static int lg_compile_rules(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lg_compiled *c = lg_newcompiled(L, 1);
  c->is_rules = 1;
  lg_rules_of(L, 1, &c->a, &c->rules, &c->n_rules);
  return 1;
}

/* The compiled value at idx, of the kind wanted, or NULL when idx holds something else. */
static const lg_compiled *lg_tocompiled(lua_State *L, int idx, int rules) {
  const lg_compiled *c = luaL_testudata(L, idx, LG_COMPILED);
  if (c == NULL) return NULL;
  if (!c->live || c->is_rules != rules)
    luaL_error(L, "bad gate input (%s must be a %s)", rules ? "rules" : "schema",
               rules ? "rules list or compile_rules' result" : "table or compile_schema's result");
  return c;
}

static void lg_rules(lua_State *L, int input, jv_arena *a, gate_input *in) {
  in->rules = NULL;
  in->n_rules = 0;
  int t = lua_getfield(L, input, "rules");
  const lg_compiled *c = t == LUA_TUSERDATA ? lg_tocompiled(L, -1, 1) : NULL;
  if (c) {
    in->rules = c->rules;
    in->n_rules = c->n_rules;
  } else if (t == LUA_TTABLE) {
    lg_rules_of(L, -1, a, &in->rules, &in->n_rules);
  }
  lua_pop(L, 1); /* its strings stay alive in input.rules */
}

/* The schema at stack index idx: a compiled one, a table (converted into a), or the empty
 * one. A compiled schema lives as long as the value at idx does. */
static const jv *lg_schema_at(lua_State *L, int idx, jv_arena *a) {
  static const jv empty_schema = {JV_OBJ, 1, 0, {0}, NULL, NULL};
  int st = lua_type(L, idx);
  const lg_compiled *cs = st == LUA_TUSERDATA ? lg_tocompiled(L, idx, 0) : NULL;
  if (cs) return cs->schema;
  if (st != LUA_TTABLE) return &empty_schema;
  /* held to what compile_schema holds a schema to: the gate's walks read properties as an
   * object and required as names, which schema_check_shape makes sure they are */
  const jv *s = ljv_check(L, idx, a, "schema");
  schema_err e;
  if (schema_check_shape(s, "schema", &e) != 0) luaL_error(L, "bad gate input (%s)", e.msg);
  return s;
}

/* check(input) -> {verdict=, code=, reason=, remedy=, rule=}
 * input: seat, roles, tool, tool_known, schema, effect (the tool's effect kind), commands
 * (programs an effect that runs one runs unasked), fixed_status, fixed_reason,
 * allowed (list or nil), args, args_error, card_id, card_status, card_type, card_worked_by,
 * card_deps_done (nil: done), turn/run {calls, bytes, files}, limits {calls_turn, calls_run,
 * bytes_turn, bytes_run, files_turn, files_run} (a limit limits lacks is default_limits'),
 * schema_limits, rules, predicate. */
static int lg_check(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  int pooled;
  jv_arena *a = lg_check_arena(L, &pooled); /* [2] */
  gate_input in;
  memset(&in, 0, sizeof in);
  schema_limits lim = SCHEMA_DEFAULT_LIMITS;
  in.schema_limits = lim;
  in.seat = lg_optname(L, 1, "seat", LG_INPUT);
  in.roles = lg_strlist(L, 1, "roles", LG_INPUT, a, &in.n_roles);
  size_t tlen;
  in.tool = lg_optlstr(L, 1, "tool", &tlen);
  in.fixed_status = lg_optname(L, 1, "fixed_status", LG_INPUT);
  in.fixed_reason = lg_optstr(L, 1, "fixed_reason");
  in.args_error = lg_optstr(L, 1, "args_error");
  luaL_argcheck(L, in.tool != NULL, 1, "tool must be a string");
  lua_getfield(L, 1, "tool_known");
  in.tool_known = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (memchr(in.tool, '\0', tlen) != NULL) {
    /* the model's own text: refused as no tool, named with '?' for each NUL, never read
     * up to its NUL (where "run_command\0x" would be run_command to every rule) */
    char *shown = jv_alloc(a, tlen + 1);
    if (shown == NULL) return luaL_error(L, "gate: out of memory");
    for (size_t i = 0; i < tlen; i++) shown[i] = in.tool[i] ? in.tool[i] : '?';
    shown[tlen] = '\0';
    in.tool = shown;
    in.tool_known = 0;
  }
  in.effect = lg_optname(L, 1, "effect", LG_INPUT);
  in.commands = lg_input_list(L, 1, "commands", a, &in.n_commands);
  lua_getfield(L, 1, "schema");
  in.schema = lg_schema_at(L, -1, a);
  lua_pop(L, 1); /* a compiled schema stays alive in input.schema */
  in.allowed = lg_input_list(L, 1, "allowed", a, &in.n_allowed);
  in.restrict_tools = in.allowed != NULL;
  in.card_id = lg_optname(L, 1, "card_id", LG_INPUT);
  in.card_status = lg_optname(L, 1, "card_status", LG_INPUT);
  in.card_type = lg_optname(L, 1, "card_type", LG_INPUT);
  in.card_worked_by = lg_optname(L, 1, "card_worked_by", LG_INPUT);
  lua_getfield(L, 1, "card_deps_done");
  in.card_deps_open = !lua_isnil(L, -1) && !lua_toboolean(L, -1);
  lua_pop(L, 1);
  lg_counters(L, 1, "turn", &in.turn);
  lg_counters(L, 1, "run", &in.run);
  lg_limits(L, 1, &in.limits);
  if (lua_getfield(L, 1, "schema_limits") == LUA_TTABLE) {
    long long v;
    if ((v = lg_int_at(L, "max_depth")) > 0) in.schema_limits.max_depth = (int)v;
    if ((v = lg_int_at(L, "max_string")) > 0) in.schema_limits.max_string = (size_t)v;
    if ((v = lg_int_at(L, "max_items")) > 0) in.schema_limits.max_items = (size_t)v;
  }
  lua_pop(L, 1);
  lg_rules(L, 1, a, &in);
  in.predicate = lg_predicate;
  lg_cb cb = {L, 1};
  in.ud = &cb;

  gate_decision d;
  ljv_conv c = {a, 0, {0}};
  jv *args = jv_alloc(a, sizeof *args);
  lua_getfield(L, 1, "args");
  int conv = -1;
  if (args) conv = ljv_tojv(L, -1, args, &c, 0, "args");
  else snprintf(c.err, sizeof c.err, "args: out of memory");
  lua_pop(L, 1);
  in.args = conv == 0 ? args : NULL;
  if (conv != 0) in.args_bad = c.err; /* gate_check decides where this refusal comes */
  gate_check(&in, &d);
  if (!pooled) jv_arena_free(a); /* the pool is emptied as check returns */
  lua_createtable(L, 0, 5);
  lua_pushstring(L, lg_verdicts[d.verdict]);
  lua_setfield(L, -2, "verdict");
  lua_pushstring(L, d.code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, d.reason);
  lua_setfield(L, -2, "reason");
  lua_pushstring(L, d.remedy);
  lua_setfield(L, -2, "remedy");
  if (d.rule >= 0) {
    lua_pushinteger(L, d.rule + 1);
    lua_setfield(L, -2, "rule");
  }
  return 1;
}

/* measure(schema, args, effect) -> bytes, files: what a call adds to the counters (the
 * gate's own walk; for a call whose decision is not at hand, e.g. one resumed after a crash).
 * It runs after every allowed call, so it shares check's arena (a fresh one was a 16 KB
 * malloc and free and a finalized userdata per call, as much as the check itself). */
static int lg_measure(lua_State *L) {
  luaL_checkany(L, 1);
  luaL_checkany(L, 2);
  const char *effect = luaL_optstring(L, 3, NULL);
  lua_settop(L, 3);
  int pooled;
  jv_arena *a = lg_check_arena(L, &pooled); /* [4] */
  const jv *schema = lg_schema_at(L, 1, a);
  ljv_conv c = {a, 0, {0}};
  jv *args = jv_alloc(a, sizeof *args);
  long long bytes = 0, files = 0;
  if (args && ljv_tojv(L, 2, args, &c, 0, "args") == 0) gate_measure(schema, args, effect, &bytes, &files);
  if (!pooled) jv_arena_free(a); /* the pool is emptied as measure returns */
  lua_pushinteger(L, (lua_Integer)bytes);
  lua_pushinteger(L, (lua_Integer)files);
  return 2;
}

/* Pushes effects: {name = {writes =, outside =, program =, recover =, declared =}} for
 * each kind of gate_effects(), the one table the engine and the registry read. */
static void lg_push_effects(lua_State *L) {
  static const struct {
    const char *key;
    unsigned bit;
  } flags[] = {{"writes", GATE_EFFECT_WRITES},
               {"outside", GATE_EFFECT_OUTSIDE},
               {"program", GATE_EFFECT_PROGRAM},
               {"recover", GATE_EFFECT_RECOVER},
               {"declared", GATE_EFFECT_DECLARED}};
  lua_newtable(L);
  for (const gate_effect *e = gate_effects(); e->name; e++) {
    lua_createtable(L, 0, 5);
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
      lua_pushboolean(L, (e->flags & flags[i].bit) != 0);
      lua_setfield(L, -2, flags[i].key);
    }
    lua_setfield(L, -2, e->name);
  }
}

static const luaL_Reg lg_funcs[] = {
    {"check", lg_check},
    {"compile_schema", lg_compile_schema},
    {"compile_rules", lg_compile_rules},
    {"glob", lg_glob},
    {NULL, NULL},
};

int luaopen_orket_gate(lua_State *L) {
  ljv_open(L);
  luaL_newmetatable(L, LG_COMPILED);
  lua_pushcfunction(L, lg_compiled_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, lg_compiled_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "gate.compiled");
  lua_setfield(L, -2, "__name");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  luaL_newmetatable(L, LG_POOL);
  lua_pushcfunction(L, lg_pool_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, lg_pool_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newlib(L, lg_funcs);
  /* check and measure share the state's arena (lg_check_arena) */
  lg_pool *p = lua_newuserdatauv(L, sizeof *p, 0);
  jv_arena_init(&p->a, LJV_ARENA_LIMIT);
  p->busy = 0;
  luaL_setmetatable(L, LG_POOL);
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, lg_check, 1);
  lua_setfield(L, -3, "check");
  lua_pushcclosure(L, lg_measure, 1);
  lua_setfield(L, -2, "measure");
  lg_push_effects(L);
  lua_setfield(L, -2, "effects");
  return 1;
}
