/* toolscan.h: finds the JSON objects a model printed in its text (prose, ```json fences,
 * prompt-injection noise) without trusting any of it: a string-aware bracket scan with caps
 * on input size, object count and depth. It only locates candidates and reports structural
 * damage; lua/orket/toolcalls.lua decodes each candidate with cjson and checks its shape.
 * Pure C, driven directly by the fuzz target. */
#ifndef ORKET_TOOLSCAN_H
#define ORKET_TOOLSCAN_H

#include <stddef.h>

#define TS_MAX_TEXT (1024 * 1024) /* bytes of model text scanned at most */
#define TS_MAX_SPANS 64           /* candidate objects reported at most */
#define TS_MAX_DEPTH 64           /* bracket nesting inside one candidate */

typedef enum {
  TS_OK = 0,        /* brackets balance: a candidate for the JSON decoder */
  TS_UNTERMINATED,  /* the text ended inside the object (or inside a string in it) */
  TS_MISMATCH,      /* a closing bracket of the wrong kind */
  TS_TOO_DEEP       /* nesting beyond TS_MAX_DEPTH */
} ts_status;

typedef struct ts_span {
  size_t start, len;  /* the candidate's bytes: text[start .. start+len) */
  ts_status status;
  size_t err_at;      /* offset of the damage when status != TS_OK */
} ts_span;

typedef struct ts_result {
  ts_span spans[TS_MAX_SPANS];
  size_t n;
  int truncated;      /* more candidates than TS_MAX_SPANS, or text over TS_MAX_TEXT */
} ts_result;

/* Scans text for top-level '{' ... '}' candidates. Never fails; damage is per span. */
void toolscan_scan(const char *text, size_t len, ts_result *r);

/* A short English description of a status ("unterminated object", ...). */
const char *toolscan_status_name(ts_status s);

#endif
