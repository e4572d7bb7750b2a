/* jsondup.h: the first key given twice in one object of a JSON text, found by yajl (the
 * keys compared as yajl hands them, unescaped, so "issues" and "\u0069ssues" are one key).
 * cjson, which decodes epics/ files, keeps the last of such keys without a word; import and
 * validate refuse the file instead (docs/board.md, "Importing"). */
#ifndef ORKET_JSONDUP_H
#define ORKET_JSONDUP_H

#include <stddef.h>

/* Deeper nesting (objects and arrays together) is refused, as cjson's default does. */
#define JSONDUP_MAX_DEPTH 1000

/* A key is for a message: a longer one is cut (no allocation, nothing to free). */
#define JSONDUP_KEY_MAX 200

typedef struct jsondup_result {
  size_t offset;  /* FOUND: bytes of the text up to the end of the second copy's key; ERROR: read */
  char key[JSONDUP_KEY_MAX]; /* JSONDUP_FOUND: the key unescaped, cut to JSONDUP_KEY_MAX bytes */
  size_t key_len;            /* its whole length (it may hold a NUL byte, from "\u0000") */
  char err[256];  /* JSONDUP_ERROR: why (not JSON, too deep, out of memory) */
} jsondup_result;

enum { JSONDUP_NONE = 0, JSONDUP_FOUND = 1, JSONDUP_ERROR = -1 };

/* Parses text[0, len) as one JSON value: JSONDUP_NONE, JSONDUP_FOUND (r->offset, r->key) or
 * JSONDUP_ERROR (r->err). Memory is a key set per open object, freed as the object closes. */
int jsondup_find(const char *text, size_t len, jsondup_result *r);

#endif
