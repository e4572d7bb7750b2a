/* chatwire.h: decodes the events of a streamed chat response (OpenAI SSE chunks, Ollama
 * NDJSON lines) in C and accumulates them: content, tool calls by index, finish reason,
 * usage, id, model. Pure C on yajl's event parser; the Lua binding is in lhttp.c.
 *
 * It is a fast path for the shapes servers actually send. Anything else (an error event,
 * a value of an unexpected type, a repeated key, JSON that yajl refuses, escapes that
 * decoders disagree on) is not taken: the event is refused and so is every later one, so
 * the caller decodes them itself (orket.llm's Lua wire formats) after seeding its state
 * with what was accumulated here. Each event is taken whole or not at all. */
#ifndef ORKET_CHATWIRE_H
#define ORKET_CHATWIRE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CHATWIRE_OPENAI, CHATWIRE_OLLAMA } chatwire_kind;

typedef struct chatwire_buf {
  char *p;
  size_t len, cap;
} chatwire_buf;

typedef struct chatwire_call {
  chatwire_buf id, name, args;
  int has_id, has_name;  /* has_name: a non-empty name arrived */
} chatwire_call;

/* One optional integer (token counts). */
typedef struct chatwire_int {
  long long v;
  int set;
} chatwire_int;

typedef struct chatwire {
  chatwire_kind kind;
  chatwire_buf content;
  chatwire_call *calls;   /* calls[0..ncalls): OpenAI's index 0.. (always contiguous) */
  size_t ncalls, callcap;
  chatwire_buf id, model, finish; /* finish: OpenAI finish_reason, Ollama done_reason */
  int has_id, has_model, has_finish;
  int has_usage;          /* OpenAI: a usage object arrived; Ollama: the done line */
  chatwire_int prompt, completion;
  int done;               /* Ollama: the done line arrived */
  int deltas;             /* events that carried content or tool-call pieces */
  int refused;            /* sticky: this and later events are the caller's */
  void *ev;               /* the event being parsed (private) */
} chatwire;

void chatwire_init(chatwire *w, chatwire_kind kind);
void chatwire_free(chatwire *w);

/* Takes one event (an SSE data payload or one NDJSON line). Returns 1 when it was taken;
 * 0 when it was refused (then so is every later event, which the caller must decode); -1
 * when memory ran out while applying it (the state is then incomplete: fail the request). */
int chatwire_take(chatwire *w, const char *data, size_t len);

#endif
