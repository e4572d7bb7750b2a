/* chatwire.h: decodes the streamed chat formats (OpenAI SSE chunks, Ollama NDJSON lines;
 * a whole non-streamed body is one such event) in C and accumulates them: content, tool
 * calls by index, finish reason, usage, id, model. Pure C on yajl's event parser; the Lua
 * binding is in lhttp.c, and orket.llm's wire formats build their results from it.
 *
 * This is orket's only decoder of these formats. An event that cannot be taken fails the
 * decoder (and every later event): JSON that does not parse, a value that is not an object,
 * an error the server put in the stream, or a malformed piece (a tool call of the wrong
 * shape, a repeated key); `failed` and `why` say which and what, and the caller turns that
 * into its classified failure. Each event is applied whole or not at all. */
#ifndef ORKET_CHATWIRE_H
#define ORKET_CHATWIRE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CHATWIRE_OPENAI, CHATWIRE_OLLAMA } chatwire_kind;

/* Why the decoder stopped (0: it did not). */
typedef enum {
  CHATWIRE_OK,
  CHATWIRE_E_JSON,       /* the event is not JSON (why: the parser's message) */
  CHATWIRE_E_NOT_OBJECT, /* a JSON string, number or literal where an object belongs */
  CHATWIRE_E_SERVER,     /* an "error" field (why: its JSON text, or the string itself) */
  CHATWIRE_E_MALFORMED   /* JSON of another shape (why: what is wrong, naming the field) */
} chatwire_failure;

typedef struct chatwire_buf {
  char *p;
  size_t len, cap;
} chatwire_buf;

typedef struct chatwire_call {
  chatwire_buf id, name, args;
  int present;           /* always 1: every call kept was named by a piece */
  int has_index;         /* OpenAI: the call came with an index (any integer) */
  long long index;       /* ... that index */
  long long order;       /* where the call stands among the answer's calls: its index, or
                            the order of the call before it when it came without one */
  int has_id, has_name;  /* has_name: a non-empty name arrived */
  int has_args;          /* arguments arrived */
  int args_json;         /* Ollama: args is a JSON value's text (an object), not a string */
} chatwire_call;

/* One optional integer (token counts). A count that arrived as a number that is no whole
 * number in v's range (1.5, 1e30, a text too long to read) is set but not whole, its value
 * in num, so that the caller refuses it by what the server said rather than reading it
 * as no count at all (docs/llm.md). */
typedef struct chatwire_int {
  long long v;
  int set;
  int whole;  /* v holds it */
  double num; /* set && !whole: the number as it arrived (maybe NaN: unreadable) */
} chatwire_int;

/* One piece of an event as it is applied (for callers that show the answer as it comes):
 * content text, or a tool-call piece (call: the call's state after it; text: the piece of
 * its arguments string, if any). */
typedef struct chatwire_piece {
  int is_call;
  size_t index;                /* 0-based call index */
  const chatwire_call *call;
  const char *text;            /* NULL: none */
  size_t len;
} chatwire_piece;

typedef struct chatwire chatwire;
struct chatwire {
  chatwire_kind kind;
  chatwire_buf content;
  chatwire_call *calls;   /* calls[0..ncalls) as they began; chatwire_order sorts them */
  size_t ncalls, callcap;
  chatwire_buf id, model, finish; /* finish: OpenAI finish_reason, Ollama done_reason */
  int has_id, has_model, has_finish;
  int has_usage;          /* OpenAI: a usage object arrived; Ollama: the done line */
  chatwire_int prompt, completion;
  chatwire_int cached;    /* prompt tokens served from the provider's cache, when it says */
  int done;               /* Ollama: the done line arrived */
  int deltas;             /* events that carried content or tool-call pieces */
  chatwire_failure failed; /* sticky: this and later events are not taken */
  int why_string;         /* E_SERVER: why is the error's string value, not JSON text */
  chatwire_buf why;
  /* Optional: called for each piece as it is applied. */
  void (*piece)(void *ud, const chatwire *w, const chatwire_piece *p);
  void *piece_ud;
  void *ev;               /* the event being parsed (private) */
};

void chatwire_init(chatwire *w, chatwire_kind kind);
void chatwire_free(chatwire *w);

/* The calls in the answer's order (by `order`, then as they began): fills at[0..ncalls)
 * with their positions in calls. */
void chatwire_order(const chatwire *w, size_t *at);

/* Takes one event (an SSE data payload, one NDJSON line or a whole body). Returns 1 when it
 * was taken; 0 when it failed (see `failed`; then so does every later event); -1 when
 * memory ran out while applying it (the state is then incomplete: fail the request). */
int chatwire_take(chatwire *w, const char *data, size_t len);

#endif
