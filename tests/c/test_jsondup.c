/* test_jsondup.c: core/jsondup.c: a key given twice in one object is found with its offset,
 * also when only its unescaped form repeats; keys repeated in other objects are not; too
 * deep, not JSON, and an object of many keys. */
#include "check.h"
#include "jsondup.h"
#include "tests.h"

#include <stdlib.h>
#include <string.h>

static int find(const char *s, jsondup_result *r) { return jsondup_find(s, strlen(s), r); }

TEST(test_jsondup_found) {
  jsondup_result r;
  CHECK(t, find("{\"a\":1,\"b\":{\"a\":2,\"b\":[{\"a\":3},{\"a\":4}]},\"c\":\"\\\"a\\\":\",\"d\":[\"a\",\"a\"]}", &r) == JSONDUP_NONE);
  CHECK(t, find("{\"o\":{\"k\":1,\"k\":2}}", &r) == JSONDUP_FOUND);
  CHECK(t, r.offset == 15 && r.key_len == 1 && memcmp(r.key, "k", 1) == 0);
  CHECK(t, find("[{\"x\":1},{\"x\":1,\"y\":{},\"x\":2}]", &r) == JSONDUP_FOUND);
  CHECK(t, r.offset == 26 && r.key_len == 1 && r.key[0] == 'x');
  /* equal only once unescaped */
  CHECK(t, find("{\"issues\":[],\n\"\\u0069ssues\":[]}", &r) == JSONDUP_FOUND);
  CHECK(t, r.offset == 27 && r.key_len == 6 && memcmp(r.key, "issues", 6) == 0);
  CHECK(t, find("{\"/\":1,\"\\/\":2}", &r) == JSONDUP_FOUND);
  CHECK(t, find("{\"a\\u0000b\":1,\"a\\u0000c\":2}", &r) == JSONDUP_NONE); /* NUL kept in the compare */
  CHECK(t, find("{\"\":1,\"\":2}", &r) == JSONDUP_FOUND && r.key_len == 0);
  /* a long key is cut, its length kept */
  char *s = malloc(700);
  CHECK(t, s != NULL);
  if (s) {
    char *p = s;
    for (int i = 0; i < 2; i++) {
      p += sprintf(p, "%s\"", i ? "," : "{");
      memset(p, 'k', 300);
      p += 300;
      p += sprintf(p, "\":1");
    }
    strcpy(p, "}");
    CHECK(t, find(s, &r) == JSONDUP_FOUND && r.key_len == 300 && r.key[JSONDUP_KEY_MAX - 1] == 'k');
    free(s);
  }
}

TEST(test_jsondup_errors) {
  jsondup_result r;
  CHECK(t, find("{\"a\":1,\n\"b\":0x3}", &r) == JSONDUP_ERROR); /* cjson takes it, JSON has no hex */
  CHECK_STR(t, r.err, "lexical error: invalid char in json text");
  CHECK(t, r.offset > 8 && r.offset <= 15); /* on the second line: the place is kept */
  CHECK(t, find("{\"a\":1,}", &r) == JSONDUP_ERROR && r.err[0] != '\0');
  CHECK(t, find("{\"a\":1} x", &r) == JSONDUP_ERROR);
  CHECK(t, find("{\"a\":1", &r) == JSONDUP_ERROR);
  CHECK(t, find("{\"a\":1e999999}", &r) == JSONDUP_NONE); /* numbers as text: none too big */
  /* depth: 1000 levels are read, 1001 refused (yajl's own stack, no recursion here) */
  size_t n = 200000;
  char *s = malloc(2 * n + 1);
  CHECK(t, s != NULL);
  if (s == NULL) return;
  for (int depth = 1000; depth <= 1001; depth++) {
    memset(s, '[', (size_t)depth);
    memset(s + depth, ']', (size_t)depth);
    s[2 * depth] = '\0';
    int st = find(s, &r);
    CHECK(t, st == (depth == 1000 ? JSONDUP_NONE : JSONDUP_ERROR));
    if (depth == 1001) CHECK(t, strstr(r.err, "nested too deeply") != NULL);
  }
  memset(s, '[', n); /* far too deep: stopped at the cap, the open levels freed */
  memset(s + n, ']', n);
  s[2 * n] = '\0';
  CHECK(t, find(s, &r) == JSONDUP_ERROR);
  free(s);
}

/* 200,000 keys in one object, the repeat last: found, in linear time (a quadratic scan
 * would take minutes). */
TEST(test_jsondup_many_keys) {
  size_t keys = 200000;
  char *s = malloc(keys * 16 + 32);
  CHECK(t, s != NULL);
  if (s == NULL) return;
  char *p = s;
  *p++ = '{';
  for (size_t i = 0; i < keys; i++) p += sprintf(p, "%s\"k%zu\":0", i ? "," : "", i);
  p += sprintf(p, ",\"k%zu\":1}", keys / 2);
  jsondup_result r;
  CHECK(t, jsondup_find(s, (size_t)(p - s), &r) == JSONDUP_FOUND);
  CHECK(t, r.offset == (size_t)(p - s) - 3);
  CHECK(t, r.key_len == 7 && memcmp(r.key, "k100000", 7) == 0);
  p[-1] = '\0'; /* the same without the repeat: none */
  p = strrchr(s, ',');
  strcpy(p, "}");
  CHECK(t, find(s, &r) == JSONDUP_NONE);
  free(s);
}
