/* otlpspan.h: one span as OTLP's JSON mapping writes it (docs/observability.md), into a
 * jsonout buffer: ids as hex, times and 64-bit integers as decimal text, keys in the order
 * orket.jsonout writes them (sorted). Pure C, knows nothing of Lua: a tracer writes each
 * span here as it ends, so a span costs no table, id or time text of its own. */
#ifndef ORKET_OTLPSPAN_H
#define ORKET_OTLPSPAN_H

#include <stddef.h>
#include <stdint.h>

#include "jsonout.h"

typedef struct otlp_span {
  const char *name;
  size_t name_len;
  uint64_t trace_hi, trace_lo; /* the trace id's 16 bytes, as two integers */
  uint64_t span_id, parent_id;
  int has_parent;
  int kind;                       /* a SpanKind, 0..5: 1 internal, 3 client */
  int64_t start_ns, end_ns;
  int failed;                     /* status ERROR (code 2) */
  const char *message;            /* the status's message, or NULL */
  size_t message_len;
} otlp_span;

enum { OTLP_STRING, OTLP_INT, OTLP_DOUBLE, OTLP_BOOL };

/* The most bytes of a text a span holds (its name, a string attribute, its status's
 * message), cut at a UTF-8 character's start (3 bytes back at most): some come from outside (a tool name a model
 * made up, a server's model name), and one of megabytes made its whole batch too big for
 * the collector, which refused it, every other span of it with it. */
#define OTLP_MAX_TEXT 4096

typedef struct otlp_value {
  int type;
  const char *s; /* OTLP_STRING */
  size_t len;
  int64_t i;     /* OTLP_INT, OTLP_BOOL (0 or 1) */
  double d;      /* OTLP_DOUBLE */
} otlp_value;

/* Opens a span's object and its attribute list: {"attributes":[ */
void otlp_span_begin(jsonout_buf *b);
/* Appends the attribute key = v; first: no comma before it. */
void otlp_attribute(jsonout_buf *b, int first, const char *key, size_t key_len, const otlp_value *v);
/* Closes the attribute list and writes the span's other fields. */
void otlp_span_end(jsonout_buf *b, const otlp_span *sp);

#endif
