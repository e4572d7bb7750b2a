/* jsondup.c: the first key given twice in one JSON object (see jsondup.h). yajl parses
 * without recursion; each open object has a hash set of its keys, so an object of many keys
 * costs linear time. */
#include "jsondup.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

typedef struct dup_slot {
  uint64_t hash; /* 0: empty (a key's hash is never 0, see dup_hash) */
  size_t off;    /* the key's bytes in the level's arena */
  size_t len;
} dup_slot;

/* An open object (a key set) or array (cap 0, never used). */
typedef struct dup_level {
  dup_slot *slots;
  size_t cap, count; /* cap: a power of 2, or 0 */
  char *arena;       /* the keys' bytes, one after another */
  size_t arena_len, arena_cap;
} dup_level;

typedef struct dup_ctx {
  yajl_handle h;
  dup_level levels[JSONDUP_MAX_DEPTH];
  int depth;
  jsondup_result *r;
  int abort; /* why a callback stopped yajl: 0, A_FOUND, A_DEPTH, A_NOMEM */
} dup_ctx;

enum { A_FOUND = 1, A_DEPTH, A_NOMEM };

static uint64_t dup_hash(const unsigned char *k, size_t n) {
  uint64_t h = 14695981039346656037ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 1099511628211ull;
  return h ? h : 1;
}

static void dup_level_free(dup_level *l) {
  free(l->slots);
  free(l->arena);
  memset(l, 0, sizeof *l);
}

/* The table doubled (load kept at most half). */
static int dup_grow(dup_level *l) {
  size_t cap = l->cap ? l->cap * 2 : 16;
  dup_slot *s = calloc(cap, sizeof *s);
  if (s == NULL) return 0;
  for (size_t i = 0; i < l->cap; i++) {
    if (l->slots[i].hash == 0) continue;
    size_t j = l->slots[i].hash & (cap - 1);
    while (s[j].hash) j = (j + 1) & (cap - 1);
    s[j] = l->slots[i];
  }
  free(l->slots);
  l->slots = s;
  l->cap = cap;
  return 1;
}

/* 1: added; 0: already there; -1: out of memory. */
static int dup_add(dup_level *l, const unsigned char *k, size_t n) {
  if ((l->count + 1) * 2 > l->cap && !dup_grow(l)) return -1;
  uint64_t h = dup_hash(k, n);
  size_t j = h & (l->cap - 1);
  for (; l->slots[j].hash; j = (j + 1) & (l->cap - 1)) {
    dup_slot *s = &l->slots[j];
    /* an empty key ("") has no bytes, and the arena may be none yet */
    if (s->hash == h && s->len == n && (n == 0 || memcmp(l->arena + s->off, k, n) == 0)) return 0;
  }
  if (l->arena_len + n > l->arena_cap) {
    size_t cap = l->arena_cap ? l->arena_cap : 256;
    while (cap < l->arena_len + n) cap *= 2;
    char *a = realloc(l->arena, cap);
    if (a == NULL) return -1;
    l->arena = a;
    l->arena_cap = cap;
  }
  if (n) memcpy(l->arena + l->arena_len, k, n);
  l->slots[j] = (dup_slot){h, l->arena_len, n};
  l->arena_len += n;
  l->count++;
  return 1;
}

static int dup_open(void *ctx) {
  dup_ctx *c = ctx;
  if (c->depth >= JSONDUP_MAX_DEPTH) {
    c->abort = A_DEPTH;
    return 0;
  }
  c->depth++;
  return 1;
}

static int dup_close(void *ctx) {
  dup_ctx *c = ctx;
  dup_level_free(&c->levels[--c->depth]); /* an array's is empty */
  return 1;
}

static int dup_key(void *ctx, const unsigned char *k, size_t n) {
  dup_ctx *c = ctx;
  int added = dup_add(&c->levels[c->depth - 1], k, n);
  if (added == 1) return 1;
  if (added < 0) {
    c->abort = A_NOMEM;
    return 0;
  }
  jsondup_result *r = c->r;
  memcpy(r->key, k, n < JSONDUP_KEY_MAX ? n : JSONDUP_KEY_MAX);
  r->key_len = n;
  r->offset = yajl_get_bytes_consumed(c->h); /* just past the key's closing quote */
  c->abort = A_FOUND;
  return 0;
}

/* Numbers are taken as text, so none is refused as out of a C type's range. */
static int dup_number(void *ctx, const char *s, size_t n) { return 1; }

static const yajl_callbacks dup_callbacks = {
    NULL, NULL, NULL, NULL, dup_number, NULL, dup_open, dup_key, dup_close, dup_open, dup_close,
};

int jsondup_find(const char *text, size_t len, jsondup_result *r) {
  memset(r, 0, sizeof *r);
  dup_ctx *c = calloc(1, sizeof *c); /* 1000 levels: too big for the stack */
  if (c == NULL) {
    snprintf(r->err, sizeof r->err, "out of memory");
    return JSONDUP_ERROR;
  }
  c->r = r;
  c->h = yajl_alloc(&dup_callbacks, NULL, c);
  if (c->h == NULL) {
    free(c);
    snprintf(r->err, sizeof r->err, "out of memory");
    return JSONDUP_ERROR;
  }
  /* UTF-8 is the caller's to judge, naming the field (a key's bytes compare as they are) */
  yajl_config(c->h, yajl_dont_validate_strings, 1);
  yajl_status st = yajl_parse(c->h, (const unsigned char *)text, len);
  if (st == yajl_status_ok) st = yajl_complete_parse(c->h);
  int ret = JSONDUP_NONE;
  if (c->abort != A_FOUND) r->offset = yajl_get_bytes_consumed(c->h); /* an error's place */
  if (c->abort == A_FOUND) {
    ret = JSONDUP_FOUND;
  } else if (c->abort == A_DEPTH) {
    snprintf(r->err, sizeof r->err, "nested too deeply (more than %d objects and arrays)", JSONDUP_MAX_DEPTH);
    ret = JSONDUP_ERROR;
  } else if (c->abort == A_NOMEM) {
    snprintf(r->err, sizeof r->err, "out of memory");
    ret = JSONDUP_ERROR;
  } else if (st != yajl_status_ok) {
    unsigned char *m = yajl_get_error(c->h, 0, NULL, 0);
    size_t n = m ? strlen((const char *)m) : 0; /* "lexical error: invalid char in json text.\n" */
    while (n && (m[n - 1] == '\n' || m[n - 1] == '.')) n--; /* the caller's message goes on */
    snprintf(r->err, sizeof r->err, "%.*s", (int)n, n ? (const char *)m : "not JSON");
    if (m) yajl_free_error(c->h, m);
    ret = JSONDUP_ERROR;
  }
  for (int i = 0; i < c->depth; i++) dup_level_free(&c->levels[i]); /* left open by a stop */
  yajl_free(c->h);
  free(c);
  return ret;
}

