/* frame.h: splits a streamed HTTP body into events: Server-Sent Events (`data:` lines,
 * comments, CR/LF/CRLF line ends, the `[DONE]` sentinel) or newline-delimited JSON.
 * Pure C, no Lua and no I/O: the HTTP transport feeds it bytes as they arrive. */
#ifndef ORKET_FRAME_H
#define ORKET_FRAME_H

#include <stddef.h>

typedef enum { FRAME_RAW, FRAME_SSE, FRAME_NDJSON } frame_mode;

typedef enum {
  FRAME_OK = 0,
  FRAME_DONE,    /* SSE `data: [DONE]` seen: the stream is over, later bytes are ignored */
  FRAME_TOO_BIG, /* one line or event exceeds max_event */
  FRAME_NOMEM,
  FRAME_STOP     /* the emit callback asked to stop */
} frame_status;

/* Receives one event: the SSE data (data lines joined by "\n"), one NDJSON line without its
 * line end, or (FRAME_RAW) one chunk as it arrived. Returns 0, or non-zero to stop. */
typedef int (*frame_emit_fn)(void *ud, const char *data, size_t len);

typedef struct frame {
  frame_mode mode;
  size_t max_event;  /* longest line or event accepted */
  char *line;        /* the line being assembled */
  size_t line_len, line_cap;
  char *data;        /* SSE: the event being assembled */
  size_t data_len, data_cap;
  int have_data;     /* SSE: a data field was seen since the last dispatch */
  int after_cr;      /* the previous chunk ended in CR: a leading LF belongs to it */
  int done;
} frame;

/* Prepares f; max_event 0 means 1 MiB. Allocates nothing until bytes arrive. */
void frame_init(frame *f, frame_mode mode, size_t max_event);

/* Feeds n bytes, calling emit for each complete event. */
frame_status frame_feed(frame *f, const char *p, size_t n, frame_emit_fn emit, void *ud);

/* The body ended: emits an event left without its final line end (a lenient reading:
 * servers often omit the last blank line or newline). */
frame_status frame_finish(frame *f, frame_emit_fn emit, void *ud);

/* Switches mode (the transport drops to FRAME_RAW for a non-2xx body). Only before feeding. */
void frame_set_mode(frame *f, frame_mode mode);

void frame_free(frame *f);

#endif
