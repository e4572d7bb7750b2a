/* otlpspan.c: a span's OTLP JSON (see otlpspan.h); strings and numbers are jsonout.c's. */
#include "otlpspan.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#define LIT(b, s) jsonout_raw((b), (s), sizeof(s) - 1)

/* proto3 JSON writes 64-bit integers as decimal text */
static void otlp_int_text(jsonout_buf *b, int64_t v) {
  char t[32];
  int n = snprintf(t, sizeof t, "\"%" PRId64 "\"", v);
  jsonout_raw(b, t, (size_t)n);
}

void otlp_span_begin(jsonout_buf *b) { LIT(b, "{\"attributes\":["); }

void otlp_attribute(jsonout_buf *b, int first, const char *key, size_t key_len, const otlp_value *v) {
  if (!first) LIT(b, ",");
  LIT(b, "{\"key\":");
  jsonout_string(b, key, key_len);
  switch (v->type) {
  case OTLP_INT:
    LIT(b, ",\"value\":{\"intValue\":");
    otlp_int_text(b, v->i);
    break;
  case OTLP_DOUBLE:
    LIT(b, ",\"value\":{\"doubleValue\":");
    /* proto3 JSON's names for what a JSON number cannot hold */
    if (jsonout_number(b, v->d) != 0) {
      if (isnan(v->d)) LIT(b, "\"NaN\"");
      else if (v->d > 0) LIT(b, "\"Infinity\"");
      else LIT(b, "\"-Infinity\"");
    }
    break;
  case OTLP_BOOL:
    LIT(b, ",\"value\":{\"boolValue\":");
    if (v->i) LIT(b, "true");
    else LIT(b, "false");
    break;
  default:
    LIT(b, ",\"value\":{\"stringValue\":");
    jsonout_string(b, v->s, v->len);
    break;
  }
  LIT(b, "}}");
}

static void otlp_hex(jsonout_buf *b, uint64_t hi, uint64_t lo, int two) {
  char t[40];
  int n = two ? snprintf(t, sizeof t, "\"%016" PRIx64 "%016" PRIx64 "\"", hi, lo)
              : snprintf(t, sizeof t, "\"%016" PRIx64 "\"", lo);
  jsonout_raw(b, t, (size_t)n);
}

void otlp_span_end(jsonout_buf *b, const otlp_span *sp) {
  char t[32];
  LIT(b, "],\"endTimeUnixNano\":");
  otlp_int_text(b, sp->end_ns);
  int n = snprintf(t, sizeof t, ",\"kind\":%d,\"name\":", sp->kind);
  jsonout_raw(b, t, (size_t)n);
  jsonout_string(b, sp->name, sp->name_len);
  if (sp->has_parent) {
    LIT(b, ",\"parentSpanId\":");
    otlp_hex(b, 0, sp->parent_id, 0);
  }
  LIT(b, ",\"spanId\":");
  otlp_hex(b, 0, sp->span_id, 0);
  LIT(b, ",\"startTimeUnixNano\":");
  otlp_int_text(b, sp->start_ns);
  if (sp->failed) {
    LIT(b, ",\"status\":{\"code\":2");
    if (sp->message) {
      LIT(b, ",\"message\":");
      jsonout_string(b, sp->message, sp->message_len);
    }
    LIT(b, "}");
  }
  LIT(b, ",\"traceId\":");
  otlp_hex(b, sp->trace_hi, sp->trace_lo, 1);
  LIT(b, "}");
}
