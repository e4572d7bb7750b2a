/* frame.c: SSE and NDJSON framing for streamed HTTP bodies (see frame.h). Follows the
 * WHATWG event-stream rules: lines end in CR, LF or CRLF; ':' starts a comment; "data:"
 * lines accumulate (one optional space after the colon is dropped); a blank line dispatches;
 * other fields (event, id, retry) carry nothing the model APIs use, so they are skipped. */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#define FRAME_DEFAULT_MAX (1u << 20)

void frame_init(frame *f, frame_mode mode, size_t max_event) {
  memset(f, 0, sizeof *f);
  f->mode = mode;
  f->max_event = max_event ? max_event : FRAME_DEFAULT_MAX;
}

void frame_set_mode(frame *f, frame_mode mode) { f->mode = mode; }

void frame_free(frame *f) {
  free(f->line);
  free(f->data);
  f->line = f->data = NULL;
  f->line_len = f->line_cap = f->data_len = f->data_cap = 0;
}

static int frame_grow(char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t ncap = *cap ? *cap : 256;
  while (ncap < need) ncap *= 2;
  char *nb = realloc(*buf, ncap);
  if (nb == NULL) return -1;
  *buf = nb;
  *cap = ncap;
  return 0;
}

static frame_status frame_append(frame *f, char **buf, size_t *len, size_t *cap, const char *p,
                                 size_t n) {
  if (*len + n > f->max_event) return FRAME_TOO_BIG;
  if (frame_grow(buf, cap, *len + n + 1) != 0) return FRAME_NOMEM;
  memcpy(*buf + *len, p, n);
  *len += n;
  (*buf)[*len] = '\0';
  return FRAME_OK;
}

static frame_status frame_sse_dispatch(frame *f, frame_emit_fn emit, void *ud) {
  if (!f->have_data) return FRAME_OK; /* an event with no data field is not dispatched */
  f->have_data = 0;
  size_t n = f->data_len;
  f->data_len = 0;
  if (n == 6 && memcmp(f->data, "[DONE]", 6) == 0) {
    f->done = 1;
    return FRAME_DONE;
  }
  return emit(ud, f->data ? f->data : "", n) ? FRAME_STOP : FRAME_OK;
}

/* One complete line s[0..n) without its end: in f->line, or straight from the fed chunk when
 * the whole line is inside it (the common case, which then costs no copy). */
static frame_status frame_line(frame *f, const char *s, size_t n, frame_emit_fn emit, void *ud) {
  f->line_len = 0;
  if (f->mode == FRAME_NDJSON) {
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i == n) return FRAME_OK; /* blank lines separate nothing in NDJSON */
    return emit(ud, s, n) ? FRAME_STOP : FRAME_OK;
  }
  if (n == 0) return frame_sse_dispatch(f, emit, ud);
  if (s[0] == ':') return FRAME_OK; /* comment (keep-alives such as ": ping") */
  const char *colon = memchr(s, ':', n);
  size_t name_len = colon ? (size_t)(colon - s) : n;
  if (name_len != 4 || memcmp(s, "data", 4) != 0) return FRAME_OK;
  const char *v = colon ? colon + 1 : s + n;
  size_t vn = (size_t)(s + n - v);
  if (vn > 0 && v[0] == ' ') {
    v++;
    vn--;
  }
  frame_status st;
  if (f->have_data && (st = frame_append(f, &f->data, &f->data_len, &f->data_cap, "\n", 1)))
    return st;
  f->have_data = 1;
  return frame_append(f, &f->data, &f->data_len, &f->data_cap, v, vn);
}

/* The index of the first CR or LF in p[i..n), or n. memchr runs a word at a time; most
 * lines hold no CR, so the second search is over the (short) line found by the first. */
static size_t frame_eol(const char *p, size_t i, size_t n) {
  const char *lf = memchr(p + i, '\n', n - i);
  size_t end = lf ? (size_t)(lf - p) : n;
  const char *cr = memchr(p + i, '\r', end - i);
  return cr ? (size_t)(cr - p) : end;
}

frame_status frame_feed(frame *f, const char *p, size_t n, frame_emit_fn emit, void *ud) {
  if (f->done) return FRAME_DONE;
  if (f->mode == FRAME_RAW) return n == 0 || emit(ud, p, n) == 0 ? FRAME_OK : FRAME_STOP;
  size_t i = 0;
  if (f->after_cr && n > 0) {
    f->after_cr = 0;
    if (p[0] == '\n') i = 1;
  }
  while (i < n) {
    size_t j = frame_eol(p, i, n);
    frame_status st;
    if (j == n) /* the line continues in the next chunk: keep its start */
      return frame_append(f, &f->line, &f->line_len, &f->line_cap, p + i, n - i);
    const char *line = p + i;
    size_t len = j - i;
    if (f->line_len > 0) { /* it began in an earlier chunk */
      st = frame_append(f, &f->line, &f->line_len, &f->line_cap, p + i, j - i);
      if (st != FRAME_OK) return st;
      line = f->line;
      len = f->line_len;
    } else if (len > f->max_event) {
      return FRAME_TOO_BIG;
    }
    if (p[j] == '\r') {
      if (j + 1 < n) {
        if (p[j + 1] == '\n') j++;
      } else {
        f->after_cr = 1;
      }
    }
    i = j + 1;
    st = frame_line(f, line, len, emit, ud);
    if (st != FRAME_OK) return st;
  }
  return FRAME_OK;
}

frame_status frame_finish(frame *f, frame_emit_fn emit, void *ud) {
  if (f->done || f->mode == FRAME_RAW) return f->done ? FRAME_DONE : FRAME_OK;
  frame_status st = FRAME_OK;
  if (f->line_len > 0) st = frame_line(f, f->line, f->line_len, emit, ud);
  if (st == FRAME_OK && f->mode == FRAME_SSE) st = frame_sse_dispatch(f, emit, ud);
  return st;
}
