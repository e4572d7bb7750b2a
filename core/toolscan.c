/* toolscan.c: the string-aware bracket scan behind tool calls printed as text (toolscan.h).
 * One pass, no allocation, no recursion: a fixed bracket stack per candidate. */
#include "toolscan.h"

const char *toolscan_status_name(ts_status s) {
  switch (s) {
  case TS_OK: return "ok";
  case TS_UNTERMINATED: return "unterminated JSON object (the text ended before its closing '}')";
  case TS_MISMATCH: return "mismatched bracket in JSON object";
  case TS_TOO_DEEP: return "JSON object nested too deeply";
  }
  return "?";
}

/* Scans one candidate starting at text[start] == '{'. Returns where to continue: just past
 * a whole candidate, or just past its opening brace when it is damaged, so that a real call
 * printed after a stray '{' in prose is still found (damaged spans count toward the cap,
 * which bounds the rescanning). */
static size_t ts_one(const char *text, size_t len, size_t start, ts_span *sp) {
  char stack[TS_MAX_DEPTH];
  int depth = 0, in_str = 0;
  sp->start = start;
  sp->status = TS_OK;
  sp->err_at = 0;
  for (size_t i = start; i < len; i++) {
    char c = text[i];
    if (in_str) {
      if (c == '\\') i++; /* the escaped byte cannot end the string */
      else if (c == '"') in_str = 0;
      continue;
    }
    if (c == '"') {
      in_str = 1;
    } else if (c == '{' || c == '[') {
      if (depth == TS_MAX_DEPTH) {
        sp->status = TS_TOO_DEEP;
        sp->err_at = i;
        sp->len = i + 1 - start;
        return start + 1;
      }
      stack[depth++] = c == '{' ? '}' : ']';
    } else if (c == '}' || c == ']') {
      if (depth == 0 || stack[depth - 1] != c) {
        sp->status = TS_MISMATCH;
        sp->err_at = i;
        sp->len = i + 1 - start;
        return start + 1;
      }
      if (--depth == 0) {
        sp->len = i + 1 - start;
        return i + 1;
      }
    }
  }
  sp->status = TS_UNTERMINATED;
  sp->err_at = len;
  sp->len = len - start;
  return start + 1;
}

void toolscan_scan(const char *text, size_t len, ts_result *r) {
  r->n = 0;
  r->truncated = 0;
  if (len > TS_MAX_TEXT) {
    len = TS_MAX_TEXT;
    r->truncated = 1;
  }
  size_t i = 0;
  while (i < len) {
    if (text[i] != '{') {
      i++;
      continue;
    }
    if (r->n == TS_MAX_SPANS) {
      r->truncated = 1;
      return;
    }
    i = ts_one(text, len, i, &r->spans[r->n]);
    r->n++;
  }
}
