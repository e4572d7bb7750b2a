/* fuzz_schema.c: libFuzzer target for the schema validator (core/schema.c) and the gate
 * (core/gate.c). The input bytes build two jv trees, a schema and a value, structure-aware
 * (one byte picks each node's kind), so the fuzzer reaches deep and odd shapes quickly. Any
 * schema that passes schema_check must validate any value without crashing, and the gate
 * must decide any call. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gate.h"
#include "schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct src {
  const uint8_t *p;
  size_t n;
} src;

static unsigned take(src *s) {
  if (s->n == 0) return 0;
  s->n--;
  return *s->p++;
}

static const char *const words[] = {
    "type", "properties", "required", "additionalProperties", "enum", "minLength", "maxLength",
    "minimum", "maximum", "items", "minItems", "maxItems", "format", "string", "number",
    "integer", "boolean", "object", "array", "null", "path", "content", "status", "a", "b", "../x",
    ".git/config", "src/**", "done", "", "description", "default"};
#define NWORDS (sizeof words / sizeof words[0])

static void build(jv_arena *a, src *s, jv *v, int depth) {
  unsigned k = take(s);
  memset(v, 0, sizeof *v);
  switch (depth > 12 ? k % 5 : k % 7) {
  case 0: v->type = JV_NULL; break;
  case 1: v->type = JV_BOOL; v->u.b = (int)(take(s) & 1); break;
  case 2: v->type = JV_INT; v->u.i = (long long)(int8_t)take(s); break;
  case 3: v->type = JV_NUM; v->u.d = (double)(int8_t)take(s) / 3.0; break;
  case 4: {
    unsigned w = take(s);
    if (w & 0x80) { /* raw bytes from the input */
      size_t len = w & 0x1f;
      if (len > s->n) len = s->n;
      v->type = JV_STR;
      v->u.s = jv_strdup(a, (const char *)s->p, len);
      v->n = len;
      s->p += len;
      s->n -= len;
    } else {
      *v = (jv){.type = JV_STR};
      v->u.s = words[w % NWORDS];
      v->n = strlen(v->u.s);
    }
    break;
  }
  case 5:
  case 6: {
    size_t n = take(s) % 6;
    int obj = (k % 7) == 6;
    v->type = obj ? JV_OBJ : JV_ARR;
    v->empty_table = n == 0;
    v->n = n;
    v->u.items = jv_alloc(a, (n ? n : 1) * sizeof(jv));
    if (obj) {
      v->keys = jv_alloc(a, (n ? n : 1) * sizeof(char *));
      v->klens = jv_alloc(a, (n ? n : 1) * sizeof(size_t));
    }
    if (!v->u.items || (obj && (!v->keys || !v->klens))) {
      v->type = JV_NULL;
      v->n = 0;
      break;
    }
    for (size_t i = 0; i < n; i++) {
      if (obj) {
        v->keys[i] = words[take(s) % NWORDS];
        v->klens[i] = strlen(v->keys[i]);
      }
      build(a, s, &v->u.items[i], depth + 1);
    }
    break;
  }
  }
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  jv_arena a;
  jv_arena_init(&a, 1 << 24);
  src s = {data, size};
  jv schema, value;
  build(&a, &s, &schema, 0);
  build(&a, &s, &value, 0);
  schema_err e;
  if (schema_check(&schema, "parameters", &e) == 0) {
    schema_limits lim = SCHEMA_DEFAULT_LIMITS;
    (void)schema_validate(&schema, &value, &lim, &e);
    static const char *const roles[] = {"coder"};
    static const char *const globs[] = {"src/**", "**/*.env"};
    gate_rule rule;
    memset(&rule, 0, sizeof rule);
    rule.level = GATE_RULE_ASK;
    rule.paths = globs;
    rule.n_paths = 2;
    rule.ignore_case = size > 0 && (data[size - 1] & 1); /* both ways of matching paths */
    gate_input in;
    memset(&in, 0, sizeof in);
    in.schema_limits = lim;
    in.seat = "dev";
    in.roles = roles;
    in.n_roles = 1;
    in.tool = "t";
    in.tool_known = 1;
    in.effect = "write";
    in.schema = &schema;
    in.args = &value;
    in.rules = &rule;
    in.n_rules = 1;
    in.card_id = "I-1";
    in.card_status = "in_progress";
    in.card_worked_by = "dev";
    gate_decision d;
    gate_check(&in, &d);
    long long bytes, files;
    gate_measure(&schema, &value, "write", &bytes, &files);
    if (bytes < 0 || files < 0) __builtin_trap();
    if (d.verdict != GATE_ALLOW && d.verdict != GATE_DENY && d.verdict != GATE_ASK) __builtin_trap();
  }
  jv_arena_free(&a);
  return 0;
}
