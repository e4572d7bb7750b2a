/* otlpspan.c: a span's OTLP JSON (see otlpspan.h); strings and numbers are jsonout.c's.
 * A span's bytes are gathered in a small staging area and appended to the buffer a few
 * hundred at a time, and ids and integers are written digit by digit: with a write to
 * the buffer per piece and snprintf per number, the writing cost more than the span. */
#include "otlpspan.h"

#include <math.h>
#include <string.h>

typedef struct otlp_stage {
  jsonout_buf *b;
  size_t n;
  char t[512];
} otlp_stage;

static void st_flush(otlp_stage *s) {
  jsonout_raw(s->b, s->t, s->n);
  s->n = 0;
}

static void st_raw(otlp_stage *s, const char *p, size_t n) {
  if (s->n + n > sizeof s->t) {
    st_flush(s);
    if (n > sizeof s->t) {
      jsonout_raw(s->b, p, n);
      return;
    }
  }
  memcpy(s->t + s->n, p, n);
  s->n += n;
}

#define LIT(s, text) st_raw((s), (text), sizeof(text) - 1)

/* a JSON string: staged when it is all plain bytes, else written by jsonout. At most
 * OTLP_MAX_TEXT bytes, cut before a UTF-8 continuation byte (a character is kept whole or
 * left out). It backs up 3 bytes at most, all a valid character can need: over more, the
 * text is not UTF-8 there, and backing up without end turned a value of stray continuation
 * bytes into an empty string (jsonout writes each as U+FFFD). */
static void st_string(otlp_stage *s, const char *p, size_t n) {
  if (n > OTLP_MAX_TEXT) {
    n = OTLP_MAX_TEXT;
    for (int k = 0; k < 3 && ((unsigned char)p[n] & 0xC0) == 0x80; k++) n--;
  }
  if (n + 2 <= sizeof s->t && jsonout_plain_len(p, n) == n) {
    if (s->n + n + 2 > sizeof s->t) st_flush(s);
    s->t[s->n++] = '"';
    memcpy(s->t + s->n, p, n);
    s->n += n;
    s->t[s->n++] = '"';
    return;
  }
  st_flush(s);
  jsonout_string(s->b, p, n);
}

/* proto3 JSON writes 64-bit integers as decimal text */
static void st_int_text(otlp_stage *s, int64_t v) {
  char d[24];
  size_t i = sizeof d;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  d[--i] = '"';
  do {
    d[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) d[--i] = '-';
  d[--i] = '"';
  st_raw(s, d + i, sizeof d - i);
}

/* ids as lower-case hex: 16 digits a 64-bit integer */
static void st_hex(otlp_stage *s, const uint64_t *v, int words) {
  const char *hex = jsonout_hex;
  char d[34];
  size_t n = 0;
  d[n++] = '"';
  for (int w = 0; w < words; w++)
    for (int shift = 60; shift >= 0; shift -= 4) d[n++] = hex[(v[w] >> shift) & 15];
  d[n++] = '"';
  st_raw(s, d, n);
}

void otlp_span_begin(jsonout_buf *b) { jsonout_raw(b, "{\"attributes\":[", 15); }

void otlp_attribute(jsonout_buf *b, int first, const char *key, size_t key_len, const otlp_value *v) {
  otlp_stage s; /* its bytes are written before they are read: not cleared */
  s.b = b;
  s.n = 0;
  if (!first) LIT(&s, ",");
  LIT(&s, "{\"key\":");
  st_string(&s, key, key_len);
  switch (v->type) {
  case OTLP_INT:
    LIT(&s, ",\"value\":{\"intValue\":");
    st_int_text(&s, v->i);
    break;
  case OTLP_DOUBLE:
    LIT(&s, ",\"value\":{\"doubleValue\":");
    st_flush(&s);
    /* proto3 JSON's names for what a JSON number cannot hold */
    if (jsonout_number(b, v->d) != 0) {
      if (isnan(v->d)) LIT(&s, "\"NaN\"");
      else if (v->d > 0) LIT(&s, "\"Infinity\"");
      else LIT(&s, "\"-Infinity\"");
    }
    break;
  case OTLP_BOOL:
    LIT(&s, ",\"value\":{\"boolValue\":");
    if (v->i) LIT(&s, "true");
    else LIT(&s, "false");
    break;
  default:
    LIT(&s, ",\"value\":{\"stringValue\":");
    st_string(&s, v->s, v->len);
    break;
  }
  LIT(&s, "}}");
  st_flush(&s);
}

void otlp_span_end(jsonout_buf *b, const otlp_span *sp) {
  otlp_stage s; /* its bytes are written before they are read: not cleared */
  s.b = b;
  s.n = 0;
  LIT(&s, "],\"endTimeUnixNano\":");
  st_int_text(&s, sp->end_ns);
  LIT(&s, ",\"kind\":");
  char k = (char)('0' + (sp->kind >= 0 && sp->kind <= 5 ? sp->kind : 0)); /* SpanKind is 0..5 */
  st_raw(&s, &k, 1);
  LIT(&s, ",\"name\":");
  st_string(&s, sp->name, sp->name_len);
  if (sp->has_parent) {
    LIT(&s, ",\"parentSpanId\":");
    st_hex(&s, &sp->parent_id, 1);
  }
  LIT(&s, ",\"spanId\":");
  st_hex(&s, &sp->span_id, 1);
  LIT(&s, ",\"startTimeUnixNano\":");
  st_int_text(&s, sp->start_ns);
  if (sp->failed) {
    LIT(&s, ",\"status\":{\"code\":2");
    if (sp->message) {
      LIT(&s, ",\"message\":");
      st_string(&s, sp->message, sp->message_len);
    }
    LIT(&s, "}");
  }
  LIT(&s, ",\"traceId\":");
  const uint64_t trace[2] = {sp->trace_hi, sp->trace_lo};
  st_hex(&s, trace, 2);
  LIT(&s, "}");
  st_flush(&s);
}
