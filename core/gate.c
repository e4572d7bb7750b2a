/* gate.c: the tool-call decision (see gate.h). Uses schema.c for arguments, workspace.c's
 * lexical path rules (so the gate and the filesystem agree on what a path means) and
 * statemachine.c for status changes (so the gate and the board agree on what may move). */
#include "gate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statemachine.h"
#include "workspace.h"

#define GATE_MAX_PATHS 32

/* ---- globs ------------------------------------------------------------------------------ */

enum { G_LIT, G_ANY1, G_STAR, G_DSTAR, G_DSTAR_SLASH };

/* An ASCII letter in lower case; any other byte as it is (no locale: tolower's could fold
 * a byte of a UTF-8 character). */
static unsigned char gate_fold(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c; }

/* n bytes of a and b equal, letters in either case under GATE_GLOB_IGNORE_CASE. */
static int gate_same(const char *a, const char *b, size_t n, unsigned flags) {
  if (!(flags & GATE_GLOB_IGNORE_CASE)) return memcmp(a, b, n) == 0;
  for (size_t i = 0; i < n; i++)
    if (gate_fold((unsigned char)a[i]) != gate_fold((unsigned char)b[i])) return 0;
  return 1;
}

/* A pattern of one star, first or last, and no '?' (a star alone, "*_file", "src/" then a
 * star) -> its match read as it is written: the literal at its end, nothing but the star's
 * part free of '/'; -1 for any other pattern. A policy's rules mostly name tools so, and
 * every check matches them: the table (gate_glob_dp) was about 900 machine instructions a
 * match, and a calloc. */
static int gate_glob_one_star(const char *p, size_t plen, const char *s, size_t n, unsigned flags) {
  const char *star = memchr(p, '*', plen);
  size_t at = (size_t)(star - p), lit = plen - 1;
  if ((at != 0 && at != lit) || memchr(p, '?', plen) != NULL || memchr(star + 1, '*', lit - at) != NULL) return -1;
  if (n < lit) return 0;
  const char *fixed = at == 0 ? s + n - lit : s; /* where the literal sits in s */
  const char *free_part = at == 0 ? s : s + lit;
  return gate_same(fixed, at == 0 ? p + 1 : p, lit, flags) && memchr(free_part, '/', n - lit) == NULL;
}

/* The general matcher: the pattern as tokens, matched against s by a table (pattern x subject
 * cells, so no backtracking). plen and n are within the limits gate_glob checks. */
static int gate_glob_dp(const char *pattern, size_t plen, const char *s, size_t n, unsigned flags) {
  /* a trailing slash-double-star also names the directory itself */
  if (plen >= 3 && strcmp(pattern + plen - 3, "/**") == 0 && n == plen - 3 && gate_same(pattern, s, n, flags))
    return 1;
  int fold = (flags & GATE_GLOB_IGNORE_CASE) != 0;
  unsigned char kind[512];
  char lit[512];
  size_t nt = 0;
  for (size_t i = 0; i < plen;) {
    if (pattern[i] == '*' && pattern[i + 1] == '*') {
      i += 2;
      while (pattern[i] == '*') i++; /* "***" is "**" */
      if (pattern[i] == '/') {
        kind[nt++] = G_DSTAR_SLASH;
        i++;
      } else {
        kind[nt++] = G_DSTAR;
      }
    } else if (pattern[i] == '*') {
      kind[nt++] = G_STAR;
      i++;
    } else if (pattern[i] == '?') {
      kind[nt++] = G_ANY1;
      i++;
    } else {
      lit[nt] = fold ? (char)gate_fold((unsigned char)pattern[i]) : pattern[i];
      i++;
      kind[nt++] = G_LIT;
    }
  }
  /* m[i][j]: tokens i.. match s[j..]; d[i][j]: some '/' at k >= j has m[i+1][k+1]. */
  size_t w = n + 1;
  unsigned char *m = calloc((nt + 1) * w, 2);
  if (m == NULL) return -1;
  unsigned char *d = m + (nt + 1) * w;
  m[nt * w + n] = 1;
  for (size_t i = nt; i-- > 0;) {
    for (size_t j = n + 1; j-- > 0;) {
      int more = j < n;
      unsigned char r = 0;
      switch (kind[i]) {
      case G_LIT:
        r = more && (fold ? (char)gate_fold((unsigned char)s[j]) : s[j]) == lit[i] && m[(i + 1) * w + j + 1];
        break;
      case G_ANY1: r = more && s[j] != '/' && m[(i + 1) * w + j + 1]; break;
      case G_STAR: r = m[(i + 1) * w + j] || (more && s[j] != '/' && m[i * w + j + 1]); break;
      case G_DSTAR: r = m[(i + 1) * w + j] || (more && m[i * w + j + 1]); break;
      case G_DSTAR_SLASH:
        d[i * w + j] = more && ((s[j] == '/' && m[(i + 1) * w + j + 1]) || d[i * w + j + 1]);
        r = m[(i + 1) * w + j] || d[i * w + j];
        break;
      }
      m[i * w + j] = r;
    }
  }
  int res = m[0];
  free(m);
  return res;
}

int gate_glob_flags(const char *pattern, const char *s, size_t n, unsigned flags) {
  size_t plen = strlen(pattern);
  if (plen > 512 || n > WS_PATH_MAX) return -1;
  const char *wild = strpbrk(pattern, "*?");
  if (wild == NULL) return plen == n && gate_same(pattern, s, n, flags);
  if (*wild == '*') {
    int m = gate_glob_one_star(pattern, plen, s, n, flags);
    if (m >= 0) return m;
  }
  return gate_glob_dp(pattern, plen, s, n, flags);
}

int gate_glob(const char *pattern, const char *s, size_t n) { return gate_glob_flags(pattern, s, n, 0); }

int gate_glob_table(const char *pattern, const char *s, size_t n, unsigned flags) {
  size_t plen = strlen(pattern);
  if (plen > 512 || n > WS_PATH_MAX) return -1;
  return gate_glob_dp(pattern, plen, s, n, flags);
}

/* ---- effect kinds ----------------------------------------------------------------------- */

static const gate_effect gate_effect_table[] = {
    {"read", GATE_EFFECT_DECLARED},
    {"board", GATE_EFFECT_DECLARED},
    {"write", GATE_EFFECT_DECLARED | GATE_EFFECT_WRITES | GATE_EFFECT_OUTSIDE | GATE_EFFECT_RECOVER},
    {"process", GATE_EFFECT_DECLARED | GATE_EFFECT_PROGRAM | GATE_EFFECT_OUTSIDE | GATE_EFFECT_RECOVER},
    {"sandbox", GATE_EFFECT_DECLARED | GATE_EFFECT_OUTSIDE | GATE_EFFECT_RECOVER},
    {"mcp", GATE_EFFECT_OUTSIDE},
    {NULL, 0},
};

const gate_effect *gate_effects(void) { return gate_effect_table; }

int gate_effect_flags(const char *name, unsigned *flags) {
  if (name == NULL) name = "read";
  for (const gate_effect *e = gate_effect_table; e->name; e++)
    if (strcmp(e->name, name) == 0) {
      *flags = e->flags;
      return 0;
    }
  *flags = 0;
  return -1;
}

/* ---- decisions -------------------------------------------------------------------------- */

/* dst = a then b, cut to cap - 1 bytes as snprintf(dst, cap, "%s%s", a, b) cuts it: a plain
 * copy, where a "%s" through snprintf cost about 2k instructions, three times a check */
static void gd_copy(char *dst, size_t cap, const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  if (na > cap - 1) na = cap - 1;
  if (nb > cap - 1 - na) nb = cap - 1 - na;
  memcpy(dst, a, na);
  memcpy(dst + na, b, nb);
  dst[na + nb] = '\0';
}

static void gd_set(gate_decision *d, gate_verdict v, const char *code, const char *remedy,
                   const char *fmt, ...) {
  d->verdict = v;
  gd_copy(d->code, sizeof d->code, code, "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->reason, sizeof d->reason, fmt, ap);
  va_end(ap);
  gd_copy(d->remedy, sizeof d->remedy, remedy ? remedy : "", "");
}

/* An allowed call's decision, every allowed call's: as gd_set(d, GATE_ALLOW, "ALLOWED", "",
 * "%s: allowed (no rule refused it)", tool) writes it, without the format's machinery. */
static void gd_allow(gate_decision *d, const char *tool) {
  d->verdict = GATE_ALLOW;
  gd_copy(d->code, sizeof d->code, "ALLOWED", "");
  gd_copy(d->reason, sizeof d->reason, tool, ": allowed (no rule refused it)");
  d->remedy[0] = '\0';
}

typedef struct gate_paths {
  char norm[GATE_MAX_PATHS][WS_PATH_MAX];
  size_t n;
} gate_paths;

static int jv_fmt_is(const jv *schema, const char *fmt) {
  const jv *f = jv_get(schema, "format");
  return f && f->type == JV_STR && f->n == strlen(fmt) && memcmp(f->u.s, fmt, f->n) == 0;
}

/* The walk over a call's arguments, guided by the tool's schema: every string whose schema
 * says format = "path" (or every string item of a list whose schema says so), at any depth
 * of objects and arrays, is a path argument; every "content"-format string counts as bytes
 * written. Paths nested in objects or lists get the same checks as top-level ones: a tool
 * that takes {edits = {{path =, content =}}} must not slip a path past the gate. The walk
 * follows the schema, so it is bounded by schema_check's nesting cap. */
typedef struct gate_walk {
  const gate_input *in;
  gate_paths *p;
  gate_decision *d;
  long long bytes;
  char where[256]; /* the argument being looked at: "path", "edits[2].path" */
  size_t wlen;
  int writes;      /* the tool's effect writes: its paths must be writable */
} gate_walk;

/* Appends ".key" ("key" at the top) or "[i]" to w->where; returns the old length for
 * gw_pop. A name too long for the buffer is cut short (it is only used in messages). */
static size_t gw_push(gate_walk *w, const char *key, size_t klen, size_t index) {
  size_t old = w->wlen, room = sizeof w->where - old;
  int n;
  if (key) {
    /* as snprintf(.., "%s%.*s", old ? "." : "", klen cut to 100, key) writes it, copied:
     * every argument of every call comes here */
    char *dst = w->where + old;
    size_t kl = strnlen(key, klen > 100 ? 100 : klen), cap = room - 1, k = 0;
    if (old && k < cap) dst[k++] = '.';
    size_t take = kl < cap - k ? kl : cap - k;
    memcpy(dst + k, key, take);
    dst[k + take] = '\0';
    n = (int)((old ? 1 : 0) + kl);
  } else {
    n = snprintf(w->where + old, room, "[%zu]", index);
  }
  w->wlen = n < 0 ? old : ((size_t)n >= room ? sizeof w->where - 1 : old + (size_t)n);
  return old;
}

static void gw_pop(gate_walk *w, size_t old) {
  w->wlen = old;
  w->where[old] = '\0';
}

/* The remedy for a path ws_path_normalize refused as malformed (EINVAL), by the same
 * checks in the same order, so that it names what to fix. */
_Static_assert(WS_PATH_MAX == 4096 && WS_NAME_MAX == 255, "gate_path_remedy states these limits");
static const char *gate_path_remedy(const char *path, size_t len) {
  if (len == 0) return "Give a non-empty path (\".\" is the workspace root), or leave out an optional path.";
  if (memchr(path, '\0', len) != NULL) return "Remove the NUL byte: a path cannot hold one.";
  if (len >= WS_PATH_MAX) return "Use a shorter path: at most 4095 bytes.";
  return "Use shorter file and directory names: at most 255 bytes each.";
}

/* One path value: confined, not protected for writers, at most GATE_MAX_PATHS per call. */
static int gw_path(gate_walk *w, const jv *s) {
  const gate_input *in = w->in;
  gate_paths *p = w->p;
  if (p->n == GATE_MAX_PATHS) {
    gd_set(w->d, GATE_DENY, "ARGS_INVALID", "Act on fewer files per call.",
           "%s: more than %d paths in one call", in->tool, GATE_MAX_PATHS);
    return -1;
  }
  ws_err e;
  if (ws_path_normalize(s->u.s, s->n, p->norm[p->n], WS_PATH_MAX, &e) != 0) {
    /* only a way out (absolute, "..": the workspace's EPERM) is an escape; a path that is
     * malformed (EINVAL) is a bad argument, and its remedy must say what to fix, not '..' */
    int escape = strcmp(e.code, "EPERM") == 0;
    gd_set(w->d, GATE_DENY, escape ? "PATH_ESCAPE" : "ARGS_INVALID",
           escape ? "Name files with paths relative to the workspace root, without '..' (e.g. \"src/main.c\")."
                  : gate_path_remedy(s->u.s, s->n),
           "%s: argument '%s' %s", in->tool, w->where, e.msg + strlen("workspace: "));
    return -1;
  }
  if (w->writes && ws_path_protected(p->norm[p->n])) {
    gd_set(w->d, GATE_DENY, "PATH_PROTECTED",
           "A .git in any folder is git's and .orket/ is Orket's: both are read-only to agents; write elsewhere or ask the developer with request_input.",
           "%s: argument '%s' names a protected path: %s", in->tool, w->where, p->norm[p->n]);
    return -1;
  }
  p->n++;
  return 0;
}

/* Walks value v under schema s (either may be NULL: nothing to check). Returns 0, or -1
 * with w->d filled. */
static int gw_value(gate_walk *w, const jv *s, const jv *v, int depth) {
  if (s == NULL || v == NULL) return 0;
  if (depth > SCHEMA_MAX_NESTING) { /* schema_check refuses such schemas; fail closed anyway */
    gd_set(w->d, GATE_DENY, "ARGS_INVALID", "Fix the tool's parameter schema.",
           "%s: argument '%s': schema nested deeper than %d levels", w->in->tool, w->where,
           SCHEMA_MAX_NESTING);
    return -1;
  }
  if (jv_fmt_is(s, "content")) {
    if (v->type == JV_STR) w->bytes += (long long)v->n;
    return 0;
  }
  if (jv_fmt_is(s, "path")) {
    if (v->type == JV_STR) return gw_path(w, v);
    for (size_t k = 0; v->type == JV_ARR && k < v->n; k++) {
      if (v->u.items[k].type != JV_STR) continue; /* the schema check already refused these */
      size_t old = gw_push(w, NULL, 0, k); /* from 0: the arguments are JSON, as the schema check counts them */
      int r = gw_path(w, &v->u.items[k]);
      gw_pop(w, old);
      if (r != 0) return -1;
    }
    return 0;
  }
  if (v->type == JV_ARR) {
    const jv *items = jv_get(s, "items");
    for (size_t k = 0; items && k < v->n; k++) {
      size_t old = gw_push(w, NULL, 0, k);
      int r = gw_value(w, items, &v->u.items[k], depth + 1);
      gw_pop(w, old);
      if (r != 0) return -1;
    }
  } else if (v->type == JV_OBJ) {
    /* in the schema's order, so which bad path is reported does not depend on the caller */
    const jv *props = jv_get(s, "properties");
    for (size_t i = 0; props && props->type == JV_OBJ && i < props->n; i++) {
      /* looked up by the whole name; only the copy used in messages is cut short */
      const jv *x = jv_getn(v, props->keys[i], props->klens[i]);
      if (x == NULL) continue;
      size_t old = gw_push(w, props->keys[i], props->klens[i], 0);
      int r = gw_value(w, &props->u.items[i], x, depth + 1);
      gw_pop(w, old);
      if (r != 0) return -1;
    }
    /* the properties not listed, under an additionalProperties schema: the same checks */
    const jv *ap = jv_get(s, "additionalProperties");
    for (size_t i = 0; ap && ap->type == JV_OBJ && i < v->n; i++) {
      if (jv_getn(props, v->keys[i], v->klens[i]) != NULL) continue;
      size_t old = gw_push(w, v->keys[i], v->klens[i], 0);
      int r = gw_value(w, ap, &v->u.items[i], depth + 1);
      gw_pop(w, old);
      if (r != 0) return -1;
    }
  }
  return 0;
}

/* A jv string as a C string in buf, or "?" (a name no table knows, so the state machine
 * refuses it) when it is too long or holds a NUL byte: "done\0x" must not read as "done". */
static const char *gate_cstr(const jv *v, char *buf, size_t size) {
  if (v->n >= size || memchr(v->u.s, '\0', v->n) != NULL) return "?";
  memcpy(buf, v->u.s, v->n);
  buf[v->n] = '\0';
  return buf;
}

/* The state machine's verdict on moving the card to `to`, as this actor. Returns 0 when
 * legal, else -1 with d filled. The wait reason is the call's top-level "wait_reason"
 * string, else (for the tool's fixed status) the tool's own. */
static int gate_transition(const gate_input *in, const jv *to, int fixed, gate_decision *d) {
  char tobuf[40], whybuf[40];
  const char *status = gate_cstr(to, tobuf, sizeof tobuf);
  const jv *w = in->args ? jv_get(in->args, "wait_reason") : NULL;
  const char *reason = w && w->type == JV_STR ? gate_cstr(w, whybuf, sizeof whybuf) : NULL;
  if (reason == NULL && fixed) reason = in->fixed_reason;
  /* fields not named here (those added later) are zero: the actor is an agent */
  sm_request rq = {
      .type = in->card_type ? in->card_type : "issue",
      .from = in->card_status,
      .to = status,
      .seat = in->seat,
      .roles = in->roles,
      .nroles = in->n_roles,
      .reason = reason,
      .worked_by = in->card_worked_by,
      .deps_done = !in->card_deps_open,
  };
  sm_verdict v;
  if (sm_check(&rq, &v)) return 0;
  const char *remedy = sm_remedy(v.code);
  gd_set(d, GATE_DENY, v.code ? v.code : "TRANSITION_ILLEGAL",
         remedy ? remedy : "Choose a status this card may move to from its current one.",
         "%s: moving card %s from %s to %.*s is not allowed: %s", in->tool, in->card_id ? in->card_id : "?",
         in->card_status ? in->card_status : "?", (int)(to->n > 40 ? 40 : to->n), to->u.s, v.message);
  return -1;
}

/* The "status"-format argument, if the tool has one and the call gives it. */
static const jv *gate_status_arg(const gate_input *in) {
  const jv *props = jv_get(in->schema, "properties");
  /* (an array's items have no keys: a schema no check has seen may hold one here) */
  if (props == NULL || props->type != JV_OBJ) return NULL;
  for (size_t i = 0; in->args && in->args->type == JV_OBJ && i < props->n; i++) {
    if (!jv_fmt_is(&props->u.items[i], "status")) continue;
    for (size_t j = 0; j < in->args->n; j++)
      if (in->args->klens[j] == props->klens[i] && memcmp(in->args->keys[j], props->keys[i], props->klens[i]) == 0 && in->args->u.items[j].type == JV_STR)
        return &in->args->u.items[j];
  }
  return NULL;
}

static int gate_limit(const gate_input *in, gate_decision *d, const char *what, long long used,
                      long long add, long long limit, const char *scope) {
  if (limit <= 0 || used + add <= limit) return 0;
  /* a turn's limit is met again by the next turn; a run's stays until the run ends */
  gd_set(d, GATE_DENY, "LIMIT_EXCEEDED",
         strcmp(scope, "turn") == 0
             ? "Finish the turn with what is done (update the issue or add a comment); the limit resets with the next turn."
             : "Finish the turn with what is done; this run can make no more such calls (the limit resets with the next run).",
         "%s: %s limit per %s reached (%lld used, this call adds %lld, limit %lld)", in->tool,
         what, scope, used, add, limit);
  return -1;
}

/* -1: deny/ask rules treat an unmatchable glob as a match (fail closed); allow rules not.
 * flags: the rule's for a glob of the call's arguments (paths, args), 0 for a name's. */
static int gate_glob_rule(const gate_rule *r, const char *g, const char *s, unsigned flags) {
  if (g == NULL || *g == '\0') return 1;
  if (s == NULL) return 0;
  int m = gate_glob_flags(g, s, strlen(s), flags);
  return m < 0 ? r->level != GATE_RULE_ALLOW : m;
}

static int gate_rule_matches(const gate_input *in, const gate_rule *r, const gate_paths *p) {
  /* names (tool, seat, card, status, role) are Orket's own spelling, always matched
   * exactly; what the model writes, paths and arguments, as the rule asks */
  unsigned flags = r->ignore_case ? GATE_GLOB_IGNORE_CASE : 0;
  if (!gate_glob_rule(r, r->tool, in->tool, 0)) return 0;
  if (!gate_glob_rule(r, r->seat, in->seat, 0)) return 0;
  if (!gate_glob_rule(r, r->card, in->card_id, 0)) return 0;
  if (!gate_glob_rule(r, r->status, in->card_status, 0)) return 0;
  if (r->role && *r->role) {
    int any = 0;
    for (size_t i = 0; i < in->n_roles && !any; i++) any = gate_glob_rule(r, r->role, in->roles[i], 0);
    if (!any) return 0;
  }
  if (r->n_paths) {
    int any = 0;
    for (size_t k = 0; k < p->n && !any; k++)
      for (size_t i = 0; i < r->n_paths && !any; i++) any = gate_glob_rule(r, r->paths[i], p->norm[k], flags);
    if (!any) return 0;
  }
  if (r->n_outside) {
    /* folded, "inside" would grow: a deny or ask rule kept to src/ would let SRC/a.txt out,
     * another directory on Linux. Only an allow rule, which then applies to fewer paths,
     * folds its outside globs. */
    unsigned oflags = r->level == GATE_RULE_ALLOW ? flags : 0;
    int any_out = 0;
    for (size_t k = 0; k < p->n && !any_out; k++) {
      int inside = 0;
      for (size_t i = 0; i < r->n_outside && !inside; i++) {
        int m = gate_glob_flags(r->outside[i], p->norm[k], strlen(p->norm[k]), oflags);
        inside = m < 0 ? r->level == GATE_RULE_ALLOW : m;
      }
      any_out = !inside;
    }
    if (!any_out) return 0;
  }
  for (size_t i = 0; i < r->n_args; i++) {
    const jv *v = in->args ? jv_get(in->args, r->arg_keys[i]) : NULL;
    if (v == NULL || v->type != JV_STR) return 0;
    char *tmp = malloc(v->n + 1);
    if (tmp == NULL) return r->level != GATE_RULE_ALLOW;
    memcpy(tmp, v->u.s, v->n);
    tmp[v->n] = '\0';
    int m = v->n > WS_PATH_MAX ? -1 : gate_glob_flags(r->arg_globs[i], tmp, v->n, flags);
    free(tmp);
    if (m < 0 ? r->level == GATE_RULE_ALLOW : !m) return 0;
  }
  return 1;
}

static const char *const gate_level_codes[] = {"POLICY_DENY", "POLICY_ASK", "POLICY_ALLOW"};
static const gate_verdict gate_level_verdicts[] = {GATE_DENY, GATE_ASK, GATE_ALLOW};

/* Returns 1 when a rule decided (d filled). */
/* A tool that runs a program (GATE_EFFECT_PROGRAM), allowed by every check before and by no
 * policy: asked about unless args.argv[0] is one of the project's commands as written.
 * Arguments without an argv array have no program to ask about (run_tests runs the
 * project's own command). Returns 1 when it decided. */
static int gate_program(const gate_input *in, const jv *args, gate_decision *d) {
  const jv *argv = jv_get(args, "argv");
  if (argv == NULL || argv->type != JV_ARR) return 0;
  const jv *prog = argv->n > 0 ? &argv->u.items[0] : NULL;
  if (prog && prog->type == JV_STR)
    for (size_t i = 0; i < in->n_commands; i++)
      if (strlen(in->commands[i]) == prog->n && memcmp(in->commands[i], prog->u.s, prog->n) == 0) return 0;
  char buf[160];
  const char *name = prog == NULL ? "nil" : prog->type == JV_STR ? gate_cstr(prog, buf, sizeof buf) : "?";
  if (name == buf) /* the model's text, shown quoted on one line */
    for (char *c = buf; *c; c++)
      if ((unsigned char)*c < 0x20 || *c == '"' || *c == '\\') *c = '?';
  gd_set(d, GATE_ASK, "COMMAND_ASK",
         "Wait for a developer's approval, or use run_tests or a program the project allows.",
         "program \"%s\" is not in verify.commands and no policy allows it", name);
  return 1;
}

static int gate_policies(const gate_input *in, const gate_paths *p, gate_decision *d) {
  for (int level = GATE_RULE_DENY; level <= GATE_RULE_ALLOW; level++) {
    for (size_t i = 0; i < in->n_rules; i++) {
      const gate_rule *r = &in->rules[i];
      if ((int)r->level != level || !gate_rule_matches(in, r, p)) continue;
      if (r->predicate && in->predicate) {
        int m = in->predicate(in->ud, i, d);
        if (m < 0) {
          char why[sizeof d->reason];
          snprintf(why, sizeof why, "%s", d->reason);
          gd_set(d, GATE_DENY, "POLICY_ERROR", "Fix the policy's predicate; until then the call is refused.",
                 "%s: the predicate of policy rule %s failed: %s", in->tool, r->name ? r->name : "?", why);
          d->rule = (int)i;
          return 1;
        }
        if (m == 0) continue;
      }
      static const char *const default_remedy[] = {
          "This call is refused by an operator policy; choose another approach or ask the developer with request_input.",
          "A developer must approve this call before it runs.", ""};
      gd_set(d, gate_level_verdicts[level], gate_level_codes[level],
             r->remedy && *r->remedy ? r->remedy : default_remedy[level], "%s: %s (policy %s)",
             in->tool, r->reason && *r->reason ? r->reason : "matched an operator rule",
             r->name ? r->name : "?");
      d->rule = (int)i;
      return 1;
    }
  }
  return 0;
}

void gate_measure(const jv *schema, const jv *args, const char *effect, long long *bytes, long long *files) {
  *bytes = *files = 0;
  unsigned flags;
  (void)gate_effect_flags(effect, &flags);
  int writes = (flags & GATE_EFFECT_WRITES) != 0;
  gate_paths *p = malloc(sizeof *p);
  if (p == NULL) return;
  p->n = 0;
  gate_input in = {.tool = "", .effect = effect};
  gate_decision d;
  gate_walk w = {.in = &in, .p = p, .d = &d, .bytes = 0, .where = "", .wlen = 0, .writes = writes};
  (void)gw_value(&w, schema, args, 0); /* an allowed call's walk finishes; counts so far otherwise */
  *bytes = w.bytes;
  *files = writes ? (long long)p->n : 0;
  free(p);
}

void gate_check(const gate_input *in, gate_decision *d) {
  d->rule = -1;
  const char *tool = in->tool ? in->tool : "";
  if (!in->tool_known) {
    gd_set(d, GATE_DENY, "TOOL_UNKNOWN", "Call one of the tools listed in your instructions.",
           "no tool named '%.100s'", tool);
    return;
  }
  unsigned effect;
  if (gate_effect_flags(in->effect, &effect) != 0) { /* the registry lets none through */
    gd_set(d, GATE_DENY, "INTERNAL", "Call another tool; this one is misdeclared.",
           "%s: unknown effect kind '%.40s'", tool, in->effect);
    return;
  }
  if (in->restrict_tools) {
    int ok = 0;
    for (size_t i = 0; i < in->n_allowed && !ok; i++) ok = strcmp(in->allowed[i], tool) == 0;
    if (!ok) {
      gd_set(d, GATE_DENY, "ROLE_FORBIDDEN",
             "Use a tool your role lists, or hand the work on (add_issue_comment, update_issue_status).",
             "%s: seat '%s' (roles: %s%s) may not use this tool", tool, in->seat ? in->seat : "?",
             in->n_roles ? in->roles[0] : "none", in->n_roles > 1 ? ", ..." : "");
      return;
    }
  }
  /* arguments nobody can judge are refused, never judged as {} (a tool with no required
   * argument would run) */
  if (in->args_error) {
    gd_set(d, GATE_DENY, "ARGS_MALFORMED",
           "Send the arguments as one complete JSON object of the tool's parameters, e.g. {\"name\": \"value\"}.",
           "%s: the call's %.600s", tool, in->args_error);
    return;
  }
  if (in->args_bad) {
    gd_set(d, GATE_DENY, "ARGS_INVALID", "Call the tool again with plain JSON arguments that match its parameter schema.",
           "%s: %.600s", tool, in->args_bad);
    return;
  }
  schema_err se;
  static const jv empty = {JV_OBJ, 1, 0, {0}, NULL, NULL};
  const jv *args = in->args ? in->args : &empty;
  if (schema_validate(in->schema, args, &in->schema_limits, &se) != 0) {
    gd_set(d, GATE_DENY, "ARGS_INVALID", "Call the tool again with arguments that match its parameter schema.",
           "%s: %s", tool, se.msg);
    return;
  }
  gate_paths *p = malloc(sizeof *p);
  if (p == NULL) {
    gd_set(d, GATE_DENY, "INTERNAL", "Retry the call.", "%s: out of memory in the gate", tool);
    return;
  }
  gate_walk w = {.in = in, .p = p, .d = d, .bytes = 0, .where = "", .wlen = 0,
                 .writes = (effect & GATE_EFFECT_WRITES) != 0};
  p->n = 0;
  if (gw_value(&w, in->schema, args, 0) != 0) goto done;
  long long bytes = w.bytes;
  long long files = w.writes ? (long long)p->n : 0;
  if (gate_limit(in, d, "tool call", in->turn.calls, 1, in->limits.calls_turn, "turn") ||
      gate_limit(in, d, "tool call", in->run.calls, 1, in->limits.calls_run, "run") ||
      gate_limit(in, d, "bytes written", in->turn.bytes, bytes, in->limits.bytes_turn, "turn") ||
      gate_limit(in, d, "bytes written", in->run.bytes, bytes, in->limits.bytes_run, "run") ||
      gate_limit(in, d, "files touched", in->turn.files, files, in->limits.files_turn, "turn") ||
      gate_limit(in, d, "files touched", in->run.files, files, in->limits.files_run, "run"))
    goto done;
  const jv *to = gate_status_arg(in);
  jv fixed;
  if (to == NULL && in->fixed_status) {
    memset(&fixed, 0, sizeof fixed);
    fixed.type = JV_STR;
    fixed.u.s = in->fixed_status;
    fixed.n = strlen(in->fixed_status);
    to = &fixed;
  }
  if (to && gate_transition(in, to, to == &fixed, d) != 0) goto done;
  if (gate_policies(in, p, d)) goto done;
  if ((effect & GATE_EFFECT_PROGRAM) && gate_program(in, args, d)) goto done;
  gd_allow(d, tool);
done:
  free(p);
}
