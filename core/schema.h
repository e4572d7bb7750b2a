/* schema.h: plain JSON-like values (jv, allocated from an arena) and the validator for the
 * JSON-schema subset tool parameters use: type, properties, required, additionalProperties,
 * enum, minLength/maxLength (in characters: Unicode code points, as JSON Schema counts
 * them), minimum/maximum, items, minItems/maxItems, format, plus caps on nesting depth,
 * string and array length. Pure C: the Lua binding and the fuzz target build jv trees their
 * own way. */
#ifndef ORKET_SCHEMA_H
#define ORKET_SCHEMA_H

#include <stddef.h>

typedef enum { JV_NULL, JV_BOOL, JV_INT, JV_NUM, JV_STR, JV_ARR, JV_OBJ } jv_type;

typedef struct jv jv;
struct jv {
  jv_type type;
  int empty_table; /* an empty Lua table: valid as either an empty array or object */
  size_t n;        /* string bytes, or item count of an array/object */
  union {
    int b;
    long long i;
    double d;
    const char *s;
    jv *items;     /* arrays and objects: n values */
  } u;
  const char **keys; /* objects: n keys (not NUL-free: use klens) */
  size_t *klens;
};

typedef struct jv_block jv_block;
typedef struct jv_arena {
  jv_block *head;
  size_t used;  /* bytes handed out */
  size_t limit; /* refuse allocations beyond this (0: unlimited) */
} jv_arena;

void jv_arena_init(jv_arena *a, size_t limit);
void *jv_alloc(jv_arena *a, size_t size); /* zeroed; NULL past the limit or out of memory */
char *jv_strdup(jv_arena *a, const char *s, size_t len);
void jv_arena_free(jv_arena *a);
/* Empties the arena for the next use, keeping one standard-sized block (a call that
 * converts the same shapes again then allocates nothing). */
void jv_arena_reset(jv_arena *a);

/* The value under key in an object, or NULL. */
const jv *jv_get(const jv *obj, const char *key);
/* The same with a key of known length (keys may hold any bytes). */
const jv *jv_getn(const jv *obj, const char *key, size_t klen);
const char *jv_type_name(const jv *v);

/* Schemas from elsewhere (an MCP server's) nest no deeper than this (schema_check_shape
 * refuses deeper ones); walks that follow a schema are bounded by it. */
#define SCHEMA_MAX_NESTING 16

/* How deep a call's arguments nest (schema_limits' default): schema_check refuses a schema
 * nested deeper, as no call's arguments could ever reach its deeper levels. */
#define SCHEMA_MAX_ARG_DEPTH 8

typedef struct schema_limits {
  int max_depth;          /* nesting of the value (default SCHEMA_MAX_ARG_DEPTH) */
  size_t max_string;      /* bytes in any string without its own maxLength (default 1 MiB);
                           * one with it has at most 4 bytes a character */
  size_t max_items;       /* items in any array/object without maxItems (default 256) */
} schema_limits;

#define SCHEMA_DEFAULT_LIMITS {SCHEMA_MAX_ARG_DEPTH, 1024 * 1024, 256}

typedef struct schema_err {
  char where[256]; /* dotted path of the offending value, e.g. "args.files[2]" */
  char msg[512];   /* "where: what is wrong; what to send instead" */
} schema_err;

/* Checks that `schema` is a well-formed schema of the supported subset that some call can
 * satisfy: no bounds that cross (minimum above maximum, minLength above maxLength, minItems
 * above maxItems), no format on a type it does not apply to, no enum value or default the
 * schema itself refuses, no level deeper than SCHEMA_MAX_ARG_DEPTH. Returns 0 or -1 with
 * e->msg naming the field ("parameters.properties.path.type: ..."). */
int schema_check(const jv *schema, const char *name, schema_err *e);

/* The looser check of a schema Orket did not write (an MCP server's): only what
 * schema_validate follows must be readable, each additionalProperties a boolean or an
 * object, properties an object, required a list of names, each count (minLength,
 * maxLength, minItems, maxItems) a non-negative whole number, 5.0 as 5 (at properties, items
 * and additionalProperties, any depth), so that no schema is read looser than it says. A
 * null properties, required or count (a Go server's nil map or slice) is one not sent,
 * here and in schema_validate: "properties": null takes any argument, as no properties does.
 * Returns 0 or -1 with e filled (e.msg names the field). */
int schema_check_shape(const jv *schema, const char *name, schema_err *e);

/* Validates value against a schema that passed schema_check. Returns 0 or -1 with e filled.
 * additionalProperties defaults to false where properties is there (not null): a hostile
 * caller cannot smuggle extra fields past the listed ones. */
int schema_validate(const jv *schema, const jv *value, const schema_limits *lim, schema_err *e);

#endif
