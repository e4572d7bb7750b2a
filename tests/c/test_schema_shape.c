/* test_schema_shape.c: what schema_check_shape refuses of a schema Orket did not write
 * (properties not an object, required not a list of names, a count keyword that is not a
 * non-negative whole number), counts sent as whole floats (as a JSON decoder gives them)
 * honoured as bounds, null properties and required read as not sent by both the check and
 * the validator, and schema_validate safe on a schema no check saw. */
#include <string.h>

#include "check.h"
#include "schema.h"
#include "tests.h"

static jv ss_str(const char *s) {
  jv v;
  memset(&v, 0, sizeof v);
  v.type = JV_STR;
  v.u.s = s;
  v.n = strlen(s);
  return v;
}

static jv ss_num(double d) {
  jv v;
  memset(&v, 0, sizeof v);
  v.type = JV_NUM;
  v.u.d = d;
  return v;
}

static jv ss_int(long long i) {
  jv v;
  memset(&v, 0, sizeof v);
  v.type = JV_INT;
  v.u.i = i;
  return v;
}

static jv ss_list(jv *items, size_t n) {
  jv v;
  memset(&v, 0, sizeof v);
  v.type = JV_ARR;
  v.n = n;
  v.u.items = items;
  return v;
}

/* An object from parallel arrays (caller-owned storage). */
static jv ss_obj(const char **keys, size_t *klens, jv *vals, size_t n) {
  jv v;
  memset(&v, 0, sizeof v);
  v.type = JV_OBJ;
  v.n = n;
  v.keys = keys;
  v.klens = klens;
  v.u.items = vals;
  for (size_t i = 0; i < n; i++) klens[i] = strlen(keys[i]);
  return v;
}

/* {type = "object", properties = {"a", "b"}} and the same with "abc": a list has no keys and
 * a string's n is its length, so reading either as an object read past them. */
TEST(test_schema_shape_properties) {
  jv names[] = {ss_str("a"), ss_str("b")};
  const char *k[] = {"type", "properties"};
  size_t kl[2];
  jv v[] = {ss_str("object"), ss_list(names, 2)};
  jv s = ss_obj(k, kl, v, 2);
  schema_err e;
  CHECK(t, schema_check_shape(&s, "inputSchema", &e) == -1);
  CHECK_STR(t, e.msg, "inputSchema.properties: must be an object of schemas, got array");
  CHECK(t, schema_check(&s, "parameters", &e) == -1);
  const char *ak[] = {"zz"};
  size_t akl[1];
  jv av[] = {ss_int(1)};
  jv args = ss_obj(ak, akl, av, 1);
  CHECK(t, schema_validate(&s, &args, NULL, &e) == -1); /* refused, not read past the list */
  CHECK(t, strstr(e.msg, "properties is not an object") != NULL);
  v[1] = ss_str("abc");
  s = ss_obj(k, kl, v, 2);
  CHECK(t, schema_check_shape(&s, "inputSchema", &e) == -1);
  CHECK_STR(t, e.msg, "inputSchema.properties: must be an object of schemas, got string");
  CHECK(t, schema_validate(&s, &args, NULL, &e) == -1);
  /* nested: named where it is */
  jv inner_v[] = {ss_str("object"), ss_str("abc")};
  const char *ik[] = {"type", "properties"};
  size_t ikl[2];
  jv inner = ss_obj(ik, ikl, inner_v, 2);
  const char *pk[] = {"x"};
  size_t pkl[1];
  jv pv[] = {inner};
  v[1] = ss_obj(pk, pkl, pv, 1);
  s = ss_obj(k, kl, v, 2);
  CHECK(t, schema_check_shape(&s, "inputSchema", &e) == -1);
  CHECK_STR(t, e.msg, "inputSchema.properties.x.properties: must be an object of schemas, got string");
}

/* required = {false}: no name to look for */
TEST(test_schema_shape_required) {
  jv reqv[] = {ss_str("a"), ss_int(0)};
  jv none;
  memset(&none, 0, sizeof none);
  none.type = JV_ARR;
  none.empty_table = 1;
  const char *k[] = {"type", "properties", "required"};
  size_t kl[3];
  jv v[] = {ss_str("object"), none, ss_list(reqv, 2)};
  jv s = ss_obj(k, kl, v, 3);
  schema_err e;
  CHECK(t, schema_check_shape(&s, "inputSchema", &e) == -1);
  CHECK_STR(t, e.msg, "inputSchema.required[2]: must be a property name (a string), got integer");
  v[2] = ss_str("a");
  s = ss_obj(k, kl, v, 3);
  CHECK(t, schema_check_shape(&s, "inputSchema", &e) == -1);
  CHECK_STR(t, e.msg, "inputSchema.required: must be a list of property names, got string");
  jv null;
  memset(&null, 0, sizeof null);
  null.type = JV_NULL; /* a Go server's nil slice: not sent */
  v[2] = null;
  s = ss_obj(k, kl, v, 3);
  CHECK(t, schema_check_shape(&s, "inputSchema", &e) == 0);
  /* properties null (a Go server's nil map) too, and the validator reads it so as well: any
   * argument, as with no properties, not none, as with an empty list */
  v[1] = null;
  s = ss_obj(k, kl, v, 3);
  CHECK(t, schema_check_shape(&s, "inputSchema", &e) == 0);
  const char *ak[] = {"zz"};
  size_t akl[1];
  jv av[] = {ss_int(1)};
  jv args = ss_obj(ak, akl, av, 1);
  CHECK(t, schema_validate(&s, &args, NULL, &e) == 0);
}

/* maxLength 5.0 (what cjson makes of an MCP server's 5) is the bound 5; -1 and 2.5 are
 * refused by both checks, naming the field; unchecked, -1 does not lift the default caps. */
TEST(test_schema_counts_as_floats) {
  const char *k[] = {"type", "maxLength"};
  size_t kl[2];
  jv v[] = {ss_str("string"), ss_num(5.0)};
  jv s = ss_obj(k, kl, v, 2);
  schema_err e;
  CHECK(t, schema_check_shape(&s, "inputSchema", &e) == 0);
  CHECK(t, schema_check(&s, "parameters", &e) == 0);
  jv arg = ss_str("0123456789");
  CHECK(t, schema_validate(&s, &arg, NULL, &e) == -1);
  CHECK_STR(t, e.msg, "args: string of 10 characters is longer than the limit of 5 characters");
  k[1] = "minLength";
  v[1] = ss_num(3.0);
  s = ss_obj(k, kl, v, 2);
  arg = ss_str("");
  CHECK(t, schema_validate(&s, &arg, NULL, &e) == -1);
  CHECK_STR(t, e.msg, "args: string of 0 characters is shorter than the minimum of 3 characters");
  jv items[] = {ss_int(1), ss_int(2), ss_int(3)};
  jv list = ss_list(items, 3);
  v[0] = ss_str("array");
  k[1] = "maxItems";
  v[1] = ss_num(1.0);
  s = ss_obj(k, kl, v, 2);
  CHECK(t, schema_validate(&s, &list, NULL, &e) == -1);
  CHECK_STR(t, e.msg, "args: 3 items, more than the limit of 1");
  k[1] = "minItems";
  v[1] = ss_num(4.0);
  s = ss_obj(k, kl, v, 2);
  CHECK(t, schema_validate(&s, &list, NULL, &e) == -1);
  CHECK_STR(t, e.msg, "args: fewer than 4 items");
  /* refused: fractional, negative (integer or float), not a number */
  k[1] = "maxItems";
  v[1] = ss_num(2.5);
  s = ss_obj(k, kl, v, 2);
  CHECK(t, schema_check_shape(&s, "inputSchema", &e) == -1);
  CHECK_STR(t, e.msg, "inputSchema.maxItems: must be a non-negative integer, got 2.5");
  CHECK(t, schema_check(&s, "parameters", &e) == -1);
  CHECK_STR(t, e.msg, "parameters.maxItems: must be a non-negative integer, got 2.5");
  v[0] = ss_str("string");
  k[1] = "maxLength";
  v[1] = ss_int(-1);
  s = ss_obj(k, kl, v, 2);
  CHECK(t, schema_check_shape(&s, "inputSchema", &e) == -1);
  CHECK_STR(t, e.msg, "inputSchema.maxLength: must be a non-negative integer, got -1");
  /* validated unchecked: -1 is no bound, so the 1 MiB default still holds */
  schema_limits lim = SCHEMA_DEFAULT_LIMITS;
  lim.max_string = 4;
  arg = ss_str("01234");
  CHECK(t, schema_validate(&s, &arg, &lim, &e) == -1);
  CHECK_STR(t, e.msg, "args: string of 5 bytes is longer than the limit of 4 bytes");
  k[1] = "minLength";
  v[1] = ss_num(-3.0);
  s = ss_obj(k, kl, v, 2);
  CHECK(t, schema_check_shape(&s, "inputSchema", &e) == -1);
  CHECK_STR(t, e.msg, "inputSchema.minLength: must be a non-negative integer, got -3");
  v[1] = ss_str("3");
  s = ss_obj(k, kl, v, 2);
  CHECK(t, schema_check_shape(&s, "inputSchema", &e) == -1);
  CHECK_STR(t, e.msg, "inputSchema.minLength: must be a non-negative integer, got string");
}
