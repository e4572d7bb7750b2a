/* schema.c: jv values in an arena and the tool-parameter schema validator (see schema.h).
 * Recursion is bounded by the value's depth cap and by schema_check's own cap. */
#include "schema.h"

#include "inert.h"
#include "jsonout.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define JV_BLOCK 16384 /* a block's size, unless one allocation needs more */

struct jv_block {
  jv_block *next;
  size_t cap, off;
  max_align_t data[];
};

void jv_arena_init(jv_arena *a, size_t limit) {
  a->head = NULL;
  a->used = 0;
  a->limit = limit;
}

void *jv_alloc(jv_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  if (size == 0) size = 16;
  if (a->limit && (size > a->limit || a->used > a->limit - size)) return NULL;
  jv_block *b = a->head;
  if (b == NULL || b->cap - b->off < size) {
    size_t cap = size > JV_BLOCK ? size : JV_BLOCK;
    b = malloc(sizeof *b + cap);
    if (b == NULL) return NULL;
    b->cap = cap;
    b->off = 0;
    b->next = a->head;
    a->head = b;
  }
  void *p = (char *)b->data + b->off;
  b->off += size;
  a->used += size;
  memset(p, 0, size);
  return p;
}

char *jv_strdup(jv_arena *a, const char *s, size_t len) {
  char *p = jv_alloc(a, len + 1);
  if (p == NULL) return NULL;
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

void jv_arena_free(jv_arena *a) {
  while (a->head) {
    jv_block *n = a->head->next;
    free(a->head);
    a->head = n;
  }
  a->used = 0;
}

void jv_arena_reset(jv_arena *a) {
  jv_block *keep = NULL;
  while (a->head) {
    jv_block *n = a->head->next;
    if (keep == NULL && a->head->cap == JV_BLOCK) keep = a->head;
    else free(a->head);
    a->head = n;
  }
  if (keep) {
    keep->next = NULL;
    keep->off = 0;
  }
  a->head = keep;
  a->used = 0;
}

const jv *jv_get(const jv *obj, const char *key) { return jv_getn(obj, key, strlen(key)); }

const jv *jv_getn(const jv *obj, const char *key, size_t kl) {
  if (obj == NULL || obj->type != JV_OBJ) return NULL;
  for (size_t i = 0; i < obj->n; i++)
    if (obj->klens[i] == kl && memcmp(obj->keys[i], key, kl) == 0) return &obj->u.items[i];
  return NULL;
}

const char *jv_type_name(const jv *v) {
  static const char *const names[] = {"null", "boolean", "integer", "number", "string", "array", "object"};
  if (v->empty_table) return "empty table";
  return names[v->type];
}

static int jv_is_str(const jv *v, const char *s) {
  return v && v->type == JV_STR && v->n == strlen(s) && memcmp(v->u.s, s, v->n) == 0;
}

static int sc_fail(schema_err *e, const char *where, const char *fmt, ...) {
  snprintf(e->where, sizeof e->where, "%s", where);
  int n = snprintf(e->msg, sizeof e->msg, "%s: ", where);
  if (n < 0 || (size_t)n >= sizeof e->msg) n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg + n, sizeof e->msg - (size_t)n, fmt, ap);
  va_end(ap);
  return -1;
}

/* A bound as a person writes it: 1048576, not %g's 1.04858e+06; 0.5 stays 0.5. */
static const char *sc_num_text(const jv *n, char *buf, size_t len) {
  if (n->type == JV_INT) snprintf(buf, len, "%lld", (long long)n->u.i);
  else snprintf(buf, len, "%.15g", n->u.d);
  return buf;
}

/* where + "." + key (or "[i]"), truncated to fit. */
static void sc_join(char *out, size_t outlen, const char *where, const char *key, size_t klen) {
  int n = snprintf(out, outlen, "%.180s.", where);
  if (n < 0 || (size_t)n >= outlen) return;
  snprintf(out + n, outlen - (size_t)n, "%.*s", klen > 64 ? 64 : (int)klen, key);
}

static double jv_num(const jv *v) { return v->type == JV_INT ? (double)v->u.i : v->u.d; }

/* A count keyword's value (minLength, maxLength, minItems, maxItems) into *out: a
 * non-negative whole number, an integer or the float a JSON decoder makes of one (an MCP
 * server's 5 arrives as 5.0). 0 for anything else, which schema_check and
 * schema_check_shape refuse: a negative count cast to size_t would lift the default caps. */
static int jv_count(const jv *v, long long *out) {
  if (v->type == JV_INT && v->u.i >= 0) {
    *out = v->u.i;
    return 1;
  }
  if (v->type != JV_NUM || !isfinite(v->u.d) || v->u.d < 0 || floor(v->u.d) != v->u.d) return 0;
  *out = v->u.d >= 0x1p63 ? LLONG_MAX : (long long)v->u.d; /* past any length there is */
  return 1;
}

/* The count keyword kw of s into *out, or 0 when s has none (or one jv_count refuses). */
static int sc_count_of(const jv *s, const char *kw, long long *out) {
  const jv *v = jv_get(s, kw);
  return v != NULL && jv_count(v, out);
}

/* Each count keyword s has is one jv_count takes; named (where.maxLength) when not. */
static int sc_counts(const jv *s, const char *where, schema_err *e) {
  static const char *const counts[] = {"minLength", "maxLength", "minItems", "maxItems", NULL};
  char sub[256], num[32];
  long long n;
  for (const char *const *c = counts; *c; c++) {
    const jv *v = jv_get(s, *c);
    if (v == NULL || v->type == JV_NULL || jv_count(v, &n)) continue; /* null: not sent, as sv reads it */
    snprintf(sub, sizeof sub, "%.200s.%s", where, *c);
    return sc_fail(e, sub, "must be a non-negative integer, got %s",
                   v->type == JV_INT || v->type == JV_NUM ? sc_num_text(v, num, sizeof num) : jv_type_name(v));
  }
  return 0;
}

/* Whether the type keyword t (a name or a list of names) allows the type named name. */
static int sc_type_allows(const jv *t, const char *name) {
  if (t->type == JV_STR) return jv_is_str(t, name);
  for (size_t i = 0; t->type == JV_ARR && i < t->n; i++)
    if (jv_is_str(&t->u.items[i], name)) return 1;
  return 0;
}

static void sv_describe_types(const jv *t, char *out, size_t outlen);
static int sv(const jv *s, const jv *v, const char *where, int depth, const schema_limits *lim, schema_err *e);

/* ---- schema_check ----------------------------------------------------------------------- */

static const char *const sc_types[] = {"string", "number", "integer", "boolean", "object", "array", "null", NULL};
static const char *const sc_keywords[] = {
    "type", "description", "title", "properties", "required", "additionalProperties", "enum",
    "minLength", "maxLength", "minimum", "maximum", "items", "minItems", "maxItems", "format",
    "default", NULL};
#define SC_KEYWORDS 16 /* sc_keywords' count: a checked schema has no more keys than these */
_Static_assert(sizeof sc_keywords / sizeof *sc_keywords == SC_KEYWORDS + 1, "SC_KEYWORDS counts sc_keywords");

static int sc_is_number(const jv *v) { return v->type == JV_INT || v->type == JV_NUM; }

static int sc_type_name_ok(const jv *v) {
  for (const char *const *t = sc_types; *t; t++)
    if (jv_is_str(v, *t)) return 1;
  return 0;
}

/* lo's bound above hi's (minimum and maximum, minLength and maxLength, ...): no value fits
 * between them. Both already checked to be numbers. */
static int sc_crossed(const jv *s, const char *where, const char *lo, const char *hi, schema_err *e) {
  const jv *a = jv_get(s, lo), *b = jv_get(s, hi);
  if (a == NULL || b == NULL || jv_num(a) <= jv_num(b)) return 0;
  char x[32], y[32];
  return sc_fail(e, where, "%s %s is above %s %s, so no value is allowed", lo, sc_num_text(a, x, sizeof x), hi,
                 sc_num_text(b, y, sizeof y));
}

/* A format on a type it never applies to would be silently ignored (the gate reads "path"
 * in strings and in a list's string items, "content" and "status" in strings). */
static int sc_format_type(const jv *s, const char *where, schema_err *e) {
  const jv *f = jv_get(s, "format"), *t = jv_get(s, "type");
  if (f == NULL || t == NULL) return 0;
  int path = jv_is_str(f, "path");
  if (sc_type_allows(t, "string")) return 0;
  const jv *it = jv_get(s, "items"), *itype = jv_get(it, "type");
  /* a list whose items may be strings (items without a type may) */
  if (path && sc_type_allows(t, "array") && (itype == NULL || sc_type_allows(itype, "string"))) return 0;
  char sub[256], have[128], of[128] = "";
  snprintf(sub, sizeof sub, "%.200s.format", where);
  sv_describe_types(t, have, sizeof have);
  /* the list's type is right there: said with its items' type, which is not */
  if (path && sc_type_allows(t, "array")) sv_describe_types(itype, of, sizeof of);
  return sc_fail(e, sub, "\"%.*s\" applies to %s, not to %s%s%s", (int)f->n, f->u.s,
                 path ? "strings and lists of strings" : "strings", have, of[0] ? " of " : "", of);
}

/* Whether each type t names is "integer": the only case where bounds with no whole number
 * between them leave no value (a number, a null, a string would still fit). */
static int sc_only_integer(const jv *t) {
  if (t->type == JV_STR) return jv_is_str(t, "integer");
  for (size_t i = 0; i < t->n; i++)
    if (!jv_is_str(&t->u.items[i], "integer")) return 0;
  return t->n > 0;
}

/* An integer's fractional bounds with no integer from ceil(minimum) to floor(maximum)
 * (minimum 1.5, maximum 1.7): no call can send one, though the bounds do not cross. */
static int sc_no_integer(const jv *s, const char *where, schema_err *e) {
  const jv *t = jv_get(s, "type"), *a = jv_get(s, "minimum"), *b = jv_get(s, "maximum");
  if (t == NULL || a == NULL || b == NULL || !sc_only_integer(t)) return 0;
  if (ceil(jv_num(a)) <= floor(jv_num(b))) return 0;
  char x[32], y[32];
  return sc_fail(e, where, "no integer lies between minimum %s and maximum %s, so no value is allowed",
                 sc_num_text(a, x, sizeof x), sc_num_text(b, y, sizeof y));
}

/* The schema's own value v (at sub: an enum value, the default) checked against the schema
 * as a call's would be: one it refuses no call can send, or the tool never gets. */
static int sc_own_value(const jv *s, const jv *v, const char *sub, int depth, const char *why, schema_err *e) {
  static const schema_limits lim = SCHEMA_DEFAULT_LIMITS;
  schema_err ie;
  if (sv(s, v, sub, depth, &lim, &ie) == 0) return 0;
  size_t n = strlen(ie.where); /* said again at the same place, with why it matters */
  const char *msg = strncmp(ie.msg, ie.where, n) == 0 && ie.msg[n] == ':' ? ie.msg + n + 2 : ie.msg;
  char at[sizeof ie.where];
  snprintf(at, sizeof at, "%s", ie.where);
  return sc_fail(e, at, "%s; %s", msg, why);
}

/* s without its enum, into out (keys, klens and items of SC_KEYWORDS each): what an enum
 * value is checked against, as the enum holds it anyway, without a walk of the enum for
 * each of its values. */
static const jv *sc_without_enum(const jv *s, jv *out, const char **keys, size_t *klens, jv *items) {
  if (s->n > SC_KEYWORDS) return s;
  *out = *s;
  out->keys = keys;
  out->klens = klens;
  out->u.items = items;
  out->n = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (s->klens[i] == 4 && memcmp(s->keys[i], "enum", 4) == 0) continue;
    keys[out->n] = s->keys[i];
    klens[out->n] = s->klens[i];
    items[out->n++] = s->u.items[i];
  }
  return out;
}

/* What no call can satisfy, in a schema whose keywords are each well-formed already. */
static int sc_satisfiable(const jv *s, const char *where, int depth, schema_err *e) {
  if (sc_crossed(s, where, "minimum", "maximum", e) || sc_no_integer(s, where, e) ||
      sc_crossed(s, where, "minLength", "maxLength", e) || sc_crossed(s, where, "minItems", "maxItems", e) ||
      sc_format_type(s, where, e))
    return -1;
  char sub[256];
  const jv *en = jv_get(s, "enum");
  jv bare;
  const char *keys[SC_KEYWORDS];
  size_t klens[SC_KEYWORDS];
  jv items[SC_KEYWORDS];
  const jv *rest = en ? sc_without_enum(s, &bare, keys, klens, items) : s;
  for (size_t i = 0; en && i < en->n; i++) {
    const jv *x = &en->u.items[i];
    snprintf(sub, sizeof sub, "%.200s.enum[%zu]", where, i + 1);
    if (x->type == JV_ARR || x->type == JV_OBJ || x->empty_table)
      return sc_fail(e, sub, "an enum value is a string, a number, a boolean or null; no argument equals a %s",
                     x->type == JV_ARR ? "list" : "table");
    if (sc_own_value(rest, x, sub, depth, "the schema refuses this value of its own enum, so no call can send it", e)) return -1;
  }
  const jv *def = jv_get(s, "default");
  if (def == NULL) return 0;
  snprintf(sub, sizeof sub, "%.200s.default", where);
  return sc_own_value(s, def, sub, depth, "the schema refuses its own default", e) ? -1 : 0;
}

static int sc_check(const jv *s, const char *where, int depth, schema_err *e) {
  /* a call's value at this level is refused for its depth (sv counts levels as this does) */
  if (depth > SCHEMA_MAX_ARG_DEPTH)
    return sc_fail(e, where, "schema nested deeper than %d levels: a call's arguments nest at most %d levels, so none could reach it",
                   SCHEMA_MAX_ARG_DEPTH, SCHEMA_MAX_ARG_DEPTH);
  if (s->type != JV_OBJ && !s->empty_table) return sc_fail(e, where, "a schema must be a table, got %s", jv_type_name(s));
  char sub[256];
  for (size_t i = 0; i < s->n; i++) {
    const char *k = s->keys[i];
    size_t kl = s->klens[i];
    int known = 0;
    for (const char *const *kw = sc_keywords; *kw; kw++)
      if (strlen(*kw) == kl && memcmp(*kw, k, kl) == 0) known = 1;
    sc_join(sub, sizeof sub, where, k, kl);
    if (!known) {
      char list[320]; /* from the table itself, so the message never lags behind it */
      size_t o = 0;
      list[0] = '\0';
      for (const char *const *kw = sc_keywords; *kw && o < sizeof list; kw++) {
        int w = snprintf(list + o, sizeof list - o, "%s%s", kw == sc_keywords ? "" : ", ", *kw);
        if (w < 0) break;
        o += (size_t)w;
      }
      return sc_fail(e, sub, "unknown schema keyword (supported: %s)", list);
    }
  }
  const jv *t = jv_get(s, "type");
  if (t) {
    snprintf(sub, sizeof sub, "%s.type", where);
    if (t->type == JV_STR) {
      if (!sc_type_name_ok(t)) return sc_fail(e, sub, "unknown type '%.*s'", (int)(t->n > 40 ? 40 : t->n), t->u.s);
    } else if (t->type == JV_ARR && t->n > 0) {
      for (size_t i = 0; i < t->n; i++)
        if (!sc_type_name_ok(&t->u.items[i])) return sc_fail(e, sub, "item %zu is not a type name", i + 1);
    } else {
      return sc_fail(e, sub, "must be a type name or a list of them");
    }
  }
  if (sc_counts(s, where, e) != 0) return -1;
  static const char *const bounds[] = {"minimum", "maximum", NULL};
  for (const char *const *c = bounds; *c; c++) {
    const jv *v = jv_get(s, *c);
    snprintf(sub, sizeof sub, "%s.%s", where, *c);
    if (v && !sc_is_number(v)) return sc_fail(e, sub, "must be a number");
  }
  const jv *f = jv_get(s, "format");
  if (f && !jv_is_str(f, "path") && !jv_is_str(f, "content") && !jv_is_str(f, "status"))
    return sc_fail(e, where, "format must be \"path\", \"content\" or \"status\"");
  const jv *en = jv_get(s, "enum");
  if (en && (en->type != JV_ARR || en->n == 0)) return sc_fail(e, where, "enum must be a non-empty list");
  const jv *ap = jv_get(s, "additionalProperties");
  if (ap && ap->type != JV_BOOL) {
    if (ap->type != JV_OBJ && !ap->empty_table) return sc_fail(e, where, "additionalProperties must be a boolean or a schema");
    snprintf(sub, sizeof sub, "%.200s.additionalProperties", where);
    if (sc_check(ap, sub, depth + 1, e) != 0) return -1;
  }
  const jv *props = jv_get(s, "properties");
  if (props) {
    if (props->type != JV_OBJ && !props->empty_table) return sc_fail(e, where, "properties must be a table of schemas");
    char pw[256];
    snprintf(pw, sizeof pw, "%.200s.properties", where);
    for (size_t i = 0; i < props->n; i++) {
      sc_join(sub, sizeof sub, pw, props->keys[i], props->klens[i]);
      if (sc_check(&props->u.items[i], sub, depth + 1, e) != 0) return -1;
    }
  }
  const jv *req = jv_get(s, "required");
  if (req) {
    if (req->type != JV_ARR && !req->empty_table) return sc_fail(e, where, "required must be a list of property names");
    for (size_t i = 0; i < req->n; i++) {
      const jv *r = &req->u.items[i];
      if (r->type != JV_STR) return sc_fail(e, where, "required[%zu] must be a string", i + 1);
      int found = 0;
      for (size_t j = 0; props && j < props->n; j++)
        if (props->klens[j] == r->n && memcmp(props->keys[j], r->u.s, r->n) == 0) found = 1;
      if (!found) return sc_fail(e, where, "required names '%.*s', which is not in properties", (int)(r->n > 64 ? 64 : r->n), r->u.s);
    }
  }
  const jv *items = jv_get(s, "items");
  if (items) {
    snprintf(sub, sizeof sub, "%s.items", where);
    if (sc_check(items, sub, depth + 1, e) != 0) return -1;
  }
  return sc_satisfiable(s, where, depth, e); /* last: it validates against the whole, checked schema */
}

int schema_check(const jv *schema, const char *name, schema_err *e) {
  return sc_check(schema, name ? name : "parameters", 0, e);
}

/* What schema_validate follows (properties, items, additionalProperties), with each
 * additionalProperties a boolean or an object; other keywords are not looked at. */
static int sc_shape(const jv *s, const char *where, int depth, schema_err *e) {
  if (depth > SCHEMA_MAX_NESTING) return sc_fail(e, where, "schema nested deeper than %d levels", SCHEMA_MAX_NESTING);
  if (s->type != JV_OBJ) return 0;
  char sub[256];
  if (sc_counts(s, where, e) != 0) return -1;
  /* properties and required are read as the object and the list of names they must be:
   * a list or a string in properties has no keys to read, a number in required no name
   * (null is a keyword not sent, as a Go server's nil map or slice is) */
  const jv *props = jv_get(s, "properties");
  char pw[256];
  snprintf(pw, sizeof pw, "%.200s.properties", where);
  if (props && props->type != JV_OBJ && props->type != JV_NULL && !props->empty_table)
    return sc_fail(e, pw, "must be an object of schemas, got %s", jv_type_name(props));
  const jv *req = jv_get(s, "required");
  snprintf(sub, sizeof sub, "%.200s.required", where);
  if (req && req->type != JV_ARR && req->type != JV_NULL) return sc_fail(e, sub, "must be a list of property names, got %s", jv_type_name(req));
  for (size_t i = 0; req && req->type == JV_ARR && i < req->n; i++) {
    snprintf(sub, sizeof sub, "%.200s.required[%zu]", where, i + 1);
    if (req->u.items[i].type != JV_STR)
      return sc_fail(e, sub, "must be a property name (a string), got %s", jv_type_name(&req->u.items[i]));
  }
  const jv *ap = jv_get(s, "additionalProperties");
  snprintf(sub, sizeof sub, "%.200s.additionalProperties", where);
  if (ap && ap->type != JV_BOOL && ap->type != JV_OBJ && !ap->empty_table)
    return sc_fail(e, sub, "must be a boolean or a schema, got %s", jv_type_name(ap));
  if (ap && sc_shape(ap, sub, depth + 1, e) != 0) return -1;
  const jv *items = jv_get(s, "items");
  snprintf(sub, sizeof sub, "%.200s.items", where);
  if (items && sc_shape(items, sub, depth + 1, e) != 0) return -1;
  for (size_t i = 0; props && props->type == JV_OBJ && i < props->n; i++) {
    sc_join(sub, sizeof sub, pw, props->keys[i], props->klens[i]);
    if (sc_shape(&props->u.items[i], sub, depth + 1, e) != 0) return -1;
  }
  return 0;
}

int schema_check_shape(const jv *schema, const char *name, schema_err *e) {
  return sc_shape(schema, name ? name : "parameters", 0, e);
}

/* ---- schema_validate -------------------------------------------------------------------- */

static int sv_type_matches(const jv *v, const jv *tname) {
  if (jv_is_str(tname, "string")) return v->type == JV_STR;
  if (jv_is_str(tname, "integer")) return v->type == JV_INT || (v->type == JV_NUM && isfinite(v->u.d) && floor(v->u.d) == v->u.d);
  if (jv_is_str(tname, "number")) return v->type == JV_INT || (v->type == JV_NUM && isfinite(v->u.d));
  if (jv_is_str(tname, "boolean")) return v->type == JV_BOOL;
  if (jv_is_str(tname, "null")) return v->type == JV_NULL;
  if (jv_is_str(tname, "object")) return v->type == JV_OBJ || v->empty_table;
  if (jv_is_str(tname, "array")) return v->type == JV_ARR || v->empty_table;
  return 0;
}

static int jv_equal(const jv *a, const jv *b) {
  if (a->type == JV_STR && b->type == JV_STR) return a->n == b->n && memcmp(a->u.s, b->u.s, a->n) == 0;
  if (sc_is_number(a) && sc_is_number(b)) {
    double x = a->type == JV_INT ? (double)a->u.i : a->u.d;
    double y = b->type == JV_INT ? (double)b->u.i : b->u.d;
    return x == y;
  }
  if (a->type == JV_BOOL && b->type == JV_BOOL) return (a->u.b != 0) == (b->u.b != 0);
  return a->type == JV_NULL && b->type == JV_NULL;
}

static void sv_describe_types(const jv *t, char *out, size_t outlen) {
  if (t->type == JV_STR) {
    snprintf(out, outlen, "%.*s", (int)t->n, t->u.s);
    return;
  }
  size_t o = 0;
  out[0] = '\0';
  for (size_t i = 0; i < t->n && o + 1 < outlen; i++) {
    int w = snprintf(out + o, outlen - o, "%s%.*s", i ? " or " : "", (int)t->u.items[i].n, t->u.items[i].u.s);
    if (w < 0) break;
    o += (size_t)w;
  }
}

/* An enum value as JSON writes it: a string quoted and escaped (its first 40 bytes, whole
 * characters), a number as a bound is written; a list or table, which nothing equals, as
 * [...] or {...}. */
static void sv_enum_value(jsonout_buf *b, const jv *x) {
  char num[32];
  if (x->type == JV_STR) {
    size_t n = x->n > 40 ? 40 : x->n;
    while (n < x->n && n > 0 && ((unsigned char)x->u.s[n] & 0xC0) == 0x80) n--; /* not mid-character */
    jsonout_string(b, x->u.s, n);
  } else if (x->type == JV_INT || x->type == JV_NUM) {
    sc_num_text(x, num, sizeof num);
    jsonout_raw(b, num, strlen(num));
  } else if (x->type == JV_BOOL) {
    jsonout_raw(b, x->u.b ? "true" : "false", x->u.b ? 4 : 5);
  } else if (x->type == JV_NULL && !x->empty_table) {
    jsonout_raw(b, "null", 4);
  } else {
    jsonout_raw(b, x->type == JV_OBJ ? "{...}" : "[...]", 5);
  }
}

/* The allowed values, for the message that says what to send: as many as fit in out, then
 * ", ..." for the rest. */
static void sv_enum_list(const jv *en, char *out, size_t outlen) {
  jsonout_buf b = {0};
  size_t shown = 0;
  const size_t room = outlen - 6; /* for ", ..." and the NUL */
  for (size_t i = 0; i < en->n; i++) {
    size_t before = b.len;
    if (i) jsonout_raw(&b, ", ", 2);
    sv_enum_value(&b, &en->u.items[i]);
    if (b.oom || b.len > room) {
      b.len = before;
      break;
    }
    shown++;
  }
  snprintf(out, outlen, "%.*s%s", (int)b.len, b.p ? b.p : "", shown < en->n ? (shown ? ", ..." : "...") : "");
  jsonout_free(&b);
}

/* maxLength/minLength in characters, as the schema's readers (models, MCP clients, the
 * OpenAPI document) count them; a string without maxLength is held to lim->max_string
 * bytes, the bound on what a hostile caller can send. */
static int sv_length(const jv *s, const jv *v, const char *where, const schema_limits *lim, schema_err *e) {
  long long mx, mn;
  if (!sc_count_of(s, "maxLength", &mx)) {
    if (v->n > lim->max_string)
      return sc_fail(e, where, "string of %zu bytes is longer than the limit of %zu bytes", v->n, lim->max_string);
  } else if (v->n > (size_t)mx) { /* fewer bytes than the limit are fewer characters too */
    size_t chars = inert_chars(v->u.s, v->n);
    if (chars > (size_t)mx)
      return sc_fail(e, where, "string of %zu character%s is longer than the limit of %lld character%s", chars,
                     chars == 1 ? "" : "s", mx, mx == 1 ? "" : "s");
  }
  if (sc_count_of(s, "minLength", &mn) && v->n / 4 < (size_t)mn) { /* else chars >= bytes / 4 >= minLength */
    size_t chars = inert_chars(v->u.s, v->n);
    if (chars < (size_t)mn)
      return sc_fail(e, where, "string of %zu character%s is shorter than the minimum of %lld character%s", chars,
                     chars == 1 ? "" : "s", mn, mn == 1 ? "" : "s");
  }
  return 0;
}

static int sv(const jv *s, const jv *v, const char *where, int depth, const schema_limits *lim, schema_err *e) {
  if (depth > lim->max_depth) return sc_fail(e, where, "nested deeper than %d levels; send flatter arguments", lim->max_depth);
  const jv *t = jv_get(s, "type");
  if (t) {
    int ok = 0;
    if (t->type == JV_STR) ok = sv_type_matches(v, t);
    for (size_t i = 0; t->type == JV_ARR && i < t->n && !ok; i++) ok = sv_type_matches(v, &t->u.items[i]);
    if (!ok) {
      char want[128];
      sv_describe_types(t, want, sizeof want);
      /* an infinity or NaN is a number to JSON's reader, not to the schema: said as such
       * ("expected number, got number" named nothing) */
      if (v->type == JV_NUM && !isfinite(v->u.d))
        return sc_fail(e, where, "expected %s, got %s (not a finite number)", want,
                       isnan(v->u.d) ? "NaN" : v->u.d > 0 ? "infinity" : "-infinity");
      return sc_fail(e, where, "expected %s, got %s", want, jv_type_name(v));
    }
  }
  const jv *en = jv_get(s, "enum");
  if (en && en->type == JV_ARR) {
    int ok = 0;
    for (size_t i = 0; i < en->n && !ok; i++) ok = jv_equal(v, &en->u.items[i]);
    if (!ok) {
      char list[256];
      sv_enum_list(en, list, sizeof list);
      return sc_fail(e, where, "must be one of %s", list);
    }
  }
  if (v->type == JV_STR && sv_length(s, v, where, lim, e) != 0) return -1;
  if (sc_is_number(v)) {
    const jv *mx = jv_get(s, "maximum"), *mn = jv_get(s, "minimum");
    if (v->type == JV_NUM && !isfinite(v->u.d)) return sc_fail(e, where, "must be a finite number");
    char bound[32];
    if (mx && sc_is_number(mx) && jv_num(v) > jv_num(mx))
      return sc_fail(e, where, "must be at most %s", sc_num_text(mx, bound, sizeof bound));
    if (mn && sc_is_number(mn) && jv_num(v) < jv_num(mn))
      return sc_fail(e, where, "must be at least %s", sc_num_text(mn, bound, sizeof bound));
  }
  if (v->type == JV_ARR || v->type == JV_OBJ) {
    long long mx, mn;
    size_t cap = sc_count_of(s, "maxItems", &mx) ? (size_t)mx : lim->max_items;
    if (v->n > cap) return sc_fail(e, where, "%zu items, more than the limit of %zu", v->n, cap);
    if (sc_count_of(s, "minItems", &mn) && v->n < (size_t)mn) return sc_fail(e, where, "fewer than %lld items", mn);
  }
  char sub[256];
  if (v->type == JV_ARR) {
    const jv *items = jv_get(s, "items");
    for (size_t i = 0; i < v->n; i++) {
      snprintf(sub, sizeof sub, "%s[%zu]", where, i); /* from 0: the value is JSON (a body, a call's arguments) */
      if (sv(items ? items : NULL, &v->u.items[i], sub, depth + 1, lim, e) != 0) return -1;
    }
  }
  if (v->type == JV_OBJ) {
    const jv *props = jv_get(s, "properties");
    const jv *ap = jv_get(s, "additionalProperties");
    /* null is properties not sent, as sc_shape and the gate's walks read it (a Go server's
     * nil map): it lists nothing, so it must not make "only the listed ones" of "any" */
    if (props && props->type == JV_NULL) props = NULL;
    /* a schema schema_check_shape would refuse (properties a list or a string: no keys) */
    if (props && props->type != JV_OBJ && !props->empty_table)
      return sc_fail(e, where, "the schema's properties is not an object of schemas, so no argument is taken");
    /* JSON Schema's reading: a boolean allows or refuses the properties not listed, a
     * schema ({} too) allows them and checks each against it. Absent, Orket is stricter
     * than JSON Schema: listed properties mean only those. Anything else (schema_check and
     * compile_schema refuse it) allows nothing. */
    const jv *extra = NULL;
    int extra_ok = props == NULL;
    if (ap) extra_ok = ap->type == JV_BOOL ? ap->u.b != 0 : (ap->type == JV_OBJ || ap->empty_table);
    if (ap && ap->type == JV_OBJ) extra = ap;
    for (size_t i = 0; i < v->n; i++) {
      sc_join(sub, sizeof sub, where, v->keys[i], v->klens[i]);
      const jv *ps = NULL;
      for (size_t j = 0; props && j < props->n && !ps; j++)
        if (props->klens[j] == v->klens[i] && memcmp(props->keys[j], v->keys[i], v->klens[i]) == 0) ps = &props->u.items[j];
      if (ps == NULL && !extra_ok) {
        return sc_fail(e, sub, "unknown argument; this tool accepts only the parameters its schema lists");
      }
      if (sv(ps ? ps : extra, &v->u.items[i], sub, depth + 1, lim, e) != 0) return -1;
    }
  }
  if (v->type == JV_OBJ || v->empty_table) {
    const jv *req = jv_get(s, "required");
    for (size_t i = 0; req && req->type == JV_ARR && i < req->n; i++) {
      const jv *r = &req->u.items[i];
      if (r->type != JV_STR) return sc_fail(e, where, "the schema's required[%zu] is not a property name", i + 1);
      int found = 0;
      for (size_t j = 0; j < v->n && !found; j++)
        found = v->klens[j] == r->n && memcmp(v->keys[j], r->u.s, r->n) == 0;
      if (!found) {
        sc_join(sub, sizeof sub, where, r->u.s, r->n);
        return sc_fail(e, sub, "required argument is missing");
      }
    }
  }
  return 0;
}

/* A NULL schema (an array without `items`, an extra property) accepts any value within the
 * caps; sv() handles it through this empty object. */
int schema_validate(const jv *schema, const jv *value, const schema_limits *lim, schema_err *e) {
  static const schema_limits defaults = SCHEMA_DEFAULT_LIMITS;
  return sv(schema, value, "args", 0, lim ? lim : &defaults, e);
}
