/* chatwire.c: streamed chat events decoded in C (see chatwire.h). yajl reports each JSON
 * token; a small stack of contexts follows the few paths the wire formats use and skips
 * the rest. What an event says is gathered first and applied when its top-level object
 * closes, so a refusal half-way leaves the accumulated state as it was.
 *
 * The rules mirror lua/orket/llm/openai.lua and ollama.lua (which decode with lua-cjson);
 * where the two decoders could disagree (a repeated key: cjson keeps the last; \u0000 and
 * lone surrogates; numbers or literals yajl refuses; nesting past cjson's depth limit) the
 * event is refused, so the Lua code decides exactly as before. */
#include "chatwire.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

/* cjson refuses nesting deeper than 1000; refuse well before it. */
#define CW_MAX_DEPTH 512
/* Contexts followed at once: root, choices, choice, delta, tool_calls, call, function. */
#define CW_STACK 8
#define CW_MAX_CALLS 1024

/* Where a value sits. */
enum { C_SKIP, C_ROOT, C_USAGE, C_CHOICES, C_CHOICE, C_DELTA, C_TCS, C_TC, C_FN, C_MSG };

/* Keys the wire formats read (bit numbers for the repeated-key check). */
enum {
  K_OTHER, K_ERROR, K_ID, K_MODEL, K_USAGE, K_CHOICES, K_PROMPT, K_COMPLETION, K_INDEX,
  K_DELTA, K_MESSAGE, K_FINISH, K_CONTENT, K_TOOL_CALLS, K_FUNCTION, K_NAME, K_ARGS,
  K_DONE, K_DONE_REASON, K_PROMPT_EVAL, K_EVAL
};

typedef struct cw_str {
  size_t off, len;
  int set;
} cw_str;

/* One piece of the event, applied in order: content, or one tool_calls entry. */
typedef struct cw_op {
  int is_call;
  long long idx;      /* 0-based call index */
  cw_str text;        /* content */
  cw_str id, name, args;
} cw_op;

typedef struct cw_frame {
  int ctx;
  int key;            /* the key whose value comes next (maps) */
  unsigned seen;      /* keys met in this map */
} cw_frame;

typedef struct cw_event {
  chatwire *w;
  yajl_handle h;      /* one parser for all the events of a response (see chatwire_take) */
  chatwire_buf scratch; /* the event's strings */
  cw_op *ops;
  size_t nops, opcap;
  cw_frame stack[CW_STACK]; /* values under other keys are skipped, not stacked */
  int depth;          /* frames in use */
  int skip;           /* nesting inside a skipped value */
  int ended;          /* the top-level object closed */
  size_t end_off;     /* where it closed in the event's bytes */
  cw_str id, model, finish;
  int usage;          /* a usage object (OpenAI) */
  chatwire_int prompt, completion;
  int done;           /* Ollama */
  /* the choice being read */
  size_t choice_ops;
  int choice_skip, choice_body;
  cw_str choice_finish;
  /* the tool call being read */
  long long tc_pos;
  int tc_index_set;
  long long tc_index;
} cw_event;

/* ---- buffers --------------------------------------------------------------------------- */

static int cw_append(chatwire_buf *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (np == NULL) return -1;
    b->p = np;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static int cw_keep(cw_event *e, cw_str *s, const unsigned char *p, size_t n) {
  s->off = e->scratch.len;
  s->len = n;
  s->set = 1;
  return cw_append(&e->scratch, p, n) == 0;
}

static cw_op *cw_op_new(cw_event *e) {
  if (e->nops == e->opcap) {
    size_t cap = e->opcap ? e->opcap * 2 : 8;
    cw_op *n = realloc(e->ops, cap * sizeof *n);
    if (n == NULL) return NULL;
    e->ops = n;
    e->opcap = cap;
  }
  cw_op *op = &e->ops[e->nops++];
  memset(op, 0, sizeof *op);
  return op;
}

/* ---- keys ------------------------------------------------------------------------------ */

#define KEYIS(lit) (n == sizeof(lit) - 1 && memcmp(k, lit, n) == 0)

static int cw_key_id(int ctx, const unsigned char *k, size_t n, chatwire_kind kind) {
  switch (ctx) {
  case C_ROOT:
    if (KEYIS("error")) return K_ERROR;
    if (KEYIS("model")) return K_MODEL;
    if (kind == CHATWIRE_OPENAI) {
      if (KEYIS("id")) return K_ID;
      if (KEYIS("usage")) return K_USAGE;
      if (KEYIS("choices")) return K_CHOICES;
    } else {
      if (KEYIS("message")) return K_MESSAGE;
      if (KEYIS("done")) return K_DONE;
      if (KEYIS("done_reason")) return K_DONE_REASON;
      if (KEYIS("prompt_eval_count")) return K_PROMPT_EVAL;
      if (KEYIS("eval_count")) return K_EVAL;
    }
    return K_OTHER;
  case C_USAGE:
    if (KEYIS("prompt_tokens")) return K_PROMPT;
    if (KEYIS("completion_tokens")) return K_COMPLETION;
    return K_OTHER;
  case C_CHOICE:
    if (KEYIS("index")) return K_INDEX;
    if (KEYIS("delta")) return K_DELTA;
    if (KEYIS("message")) return K_MESSAGE;
    if (KEYIS("finish_reason")) return K_FINISH;
    return K_OTHER;
  case C_DELTA:
  case C_MSG:
    if (KEYIS("content")) return K_CONTENT;
    if (KEYIS("tool_calls")) return K_TOOL_CALLS;
    return K_OTHER;
  case C_TC:
    if (KEYIS("index")) return K_INDEX;
    if (KEYIS("id")) return K_ID;
    if (KEYIS("function")) return K_FUNCTION;
    return K_OTHER;
  case C_FN:
    if (KEYIS("name")) return K_NAME;
    if (KEYIS("arguments")) return K_ARGS;
    return K_OTHER;
  default: return K_OTHER;
  }
}

/* ---- values ---------------------------------------------------------------------------- */

enum { V_NULL, V_BOOL, V_NUM, V_STR, V_MAP, V_ARR };

/* The frame a new value belongs to and the key it is for (-1: an array element). */
static cw_frame *cw_top(cw_event *e) { return e->depth > 0 ? &e->stack[e->depth - 1] : NULL; }

static int cw_push(cw_event *e, int ctx) {
  if (e->depth >= CW_STACK) return 0;
  cw_frame *f = &e->stack[e->depth++];
  f->ctx = ctx;
  f->key = K_OTHER;
  f->seen = 0;
  return 1;
}

/* The number cjson decodes from this text (a double; yajl's text is not terminated). */
static double cw_number_value(const char *s, size_t n) {
  char buf[64];
  if (n >= sizeof buf) return NAN; /* compared with nothing, converted to nothing */
  memcpy(buf, s, n);
  buf[n] = '\0';
  return strtod(buf, NULL);
}

/* math.tointeger(x) for a number cjson would decode from this text: the integer when the
 * value is integral and fits, else unset (nil in Lua). */
static chatwire_int cw_tointeger(const char *s, size_t n) {
  chatwire_int r = {0, 0};
  double d = cw_number_value(s, n);
  if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && floor(d) == d) {
    r.v = (long long)d;
    r.set = 1;
  }
  return r;
}

/* A value arrived in the current context: returns 1 to go on, 0 to refuse the event.
 * For maps and arrays `ctx_out` receives the context to push (C_SKIP to skip it). */
static int cw_value(cw_event *e, int type, const unsigned char *s, size_t n, int *ctx_out) {
  if (ctx_out) *ctx_out = C_SKIP;
  if (e->skip) return 1;
  cw_frame *f = cw_top(e);
  if (f == NULL) { /* the event itself: it must be an object */
    if (type != V_MAP || e->ended) return 0;
    *ctx_out = C_ROOT;
    return 1;
  }
  int key = f->key;
  switch (f->ctx) {
  case C_ROOT:
    switch (key) {
    case K_ERROR: return 0; /* the Lua code classifies errors */
    case K_ID:
    case K_MODEL:
      if (type == V_STR) return cw_keep(e, key == K_ID ? &e->id : &e->model, s, n);
      return 1; /* not a string: ignored */
    case K_USAGE:
      if (type == V_ARR) return 0; /* a table too for the Lua code: let it decide */
      if (type == V_MAP) {
        e->usage = 1;
        e->prompt.set = e->completion.set = 0;
        *ctx_out = C_USAGE;
      }
      return 1;
    case K_CHOICES:
      if (type == V_ARR) *ctx_out = C_CHOICES;
      else if (type == V_MAP) return 0; /* an object where a list belongs */
      return 1;
    case K_MESSAGE: /* Ollama */
      if (type == V_MAP) *ctx_out = C_MSG;
      return 1;
    case K_DONE:
      e->done = type == V_BOOL && n == 1;
      return 1;
    case K_DONE_REASON:
      if (type == V_STR) return cw_keep(e, &e->finish, s, n);
      return 0; /* null or another type would reach the result as it is */
    case K_PROMPT_EVAL:
    case K_EVAL: {
      chatwire_int v = {0, 0};
      if (type == V_NUM) v = cw_tointeger((const char *)s, n);
      else if (type == V_STR) return 0; /* math.tointeger converts strings */
      if (key == K_PROMPT_EVAL) e->prompt = v;
      else e->completion = v;
      return 1;
    }
    default: return 1;
    }
  case C_USAGE:
    if (key == K_PROMPT || key == K_COMPLETION) {
      chatwire_int v = {0, 0};
      if (type == V_NUM) v = cw_tointeger((const char *)s, n);
      else if (type == V_STR) return 0;
      if (key == K_PROMPT) e->prompt = v;
      else e->completion = v;
    }
    return 1;
  case C_CHOICES: /* one choice; other element types are skipped, as in the Lua code */
    if (type == V_MAP) {
      e->choice_ops = e->nops;
      e->choice_skip = 0;
      e->choice_body = 0;
      e->choice_finish.set = 0;
      *ctx_out = C_CHOICE;
    } else if (type == V_ARR) {
      return 0;
    }
    return 1;
  case C_CHOICE:
    switch (key) {
    case K_INDEX: /* only choice 0 (or none given) counts; "0", null, ... are not 0 */
      if (type != V_NUM || cw_number_value((const char *)s, n) != 0.0) e->choice_skip = 1;
      return 1;
    case K_DELTA:
    case K_MESSAGE:
      if (type != V_MAP || e->choice_body) return 0; /* delta or message, as an object */
      e->choice_body = 1;
      *ctx_out = C_DELTA;
      return 1;
    case K_FINISH:
      if (type == V_STR) return cw_keep(e, &e->choice_finish, s, n);
      return 1;
    default: return 1;
    }
  case C_DELTA:
  case C_MSG:
    if (key == K_CONTENT) {
      if (type == V_STR && n > 0) {
        cw_op *op = cw_op_new(e);
        return op && cw_keep(e, &op->text, s, n);
      }
      return 1;
    }
    if (key == K_TOOL_CALLS) {
      if (f->ctx == C_MSG) return type != V_ARR && type != V_MAP; /* Ollama calls: Lua */
      if (type == V_ARR) {
        e->tc_pos = 0;
        *ctx_out = C_TCS;
        return 1;
      }
      return type != V_MAP;
    }
    return 1;
  case C_TCS: {
    if (type != V_MAP) return 0;
    e->tc_pos++;
    e->tc_index_set = 0;
    cw_op *op = cw_op_new(e);
    if (op == NULL) return 0;
    op->is_call = 1;
    *ctx_out = C_TC;
    return 1;
  }
  case C_TC: {
    cw_op *op = &e->ops[e->nops - 1];
    switch (key) {
    case K_INDEX: {
      if (type == V_NULL) return 1;
      if (type != V_NUM) return 0;
      chatwire_int v = cw_tointeger((const char *)s, n);
      if (!v.set) return 0;
      e->tc_index_set = 1;
      e->tc_index = v.v;
      return 1;
    }
    case K_ID: /* another type is not taken: the Lua decoder reports the malformed call */
      if (type == V_STR) return cw_keep(e, &op->id, s, n);
      return type == V_NULL;
    case K_FUNCTION:
      if (type != V_MAP) return 0;
      *ctx_out = C_FN;
      return 1;
    default: return 1;
    }
  }
  case C_FN: {
    cw_op *op = &e->ops[e->nops - 1];
    if (key == K_NAME) {
      if (type == V_STR && n > 0) return cw_keep(e, &op->name, s, n);
      return type == V_NULL || type == V_STR; /* as for the id: a name of another type is not taken */
    }
    if (key == K_ARGS) {
      if (type == V_STR) return cw_keep(e, &op->args, s, n);
      return type != V_MAP && type != V_ARR; /* an object: re-encoded by the Lua code */
    }
    return 1;
  }
  default: return 1;
  }
}

/* ---- yajl callbacks ---------------------------------------------------------------------- */

static int cw_scalar(void *ctx, int type, const unsigned char *s, size_t n) {
  return cw_value(ctx, type, s, n, NULL);
}
static int cw_null(void *ctx) { return cw_scalar(ctx, V_NULL, NULL, 0); }
static int cw_bool(void *ctx, int b) { return cw_scalar(ctx, V_BOOL, NULL, b ? 1 : 0); }
static int cw_number(void *ctx, const char *s, size_t n) {
  return cw_scalar(ctx, V_NUM, (const unsigned char *)s, n);
}
static int cw_string(void *ctx, const unsigned char *s, size_t n) {
  return cw_scalar(ctx, V_STR, s, n);
}

static int cw_open(void *ctx, int type) {
  cw_event *e = ctx;
  if (e->skip) {
    e->skip++;
    return e->depth + e->skip < CW_MAX_DEPTH;
  }
  int inner;
  if (!cw_value(e, type, NULL, 0, &inner)) return 0;
  if (inner == C_SKIP) {
    e->skip = 1;
    return 1;
  }
  return cw_push(e, inner);
}
static int cw_start_map(void *ctx) { return cw_open(ctx, V_MAP); }
static int cw_start_array(void *ctx) { return cw_open(ctx, V_ARR); }

static int cw_map_key(void *ctx, const unsigned char *k, size_t n) {
  cw_event *e = ctx;
  if (e->skip) return 1;
  cw_frame *f = cw_top(e);
  int key = cw_key_id(f->ctx, k, n, e->w->kind);
  if (key != K_OTHER) {
    if (f->seen & (1u << key)) return 0; /* repeated: cjson keeps the last one */
    f->seen |= 1u << key;
  }
  f->key = key;
  return 1;
}

/* A tool_calls entry is complete: fix its index as the Lua code computes it. */
static int cw_close_call(cw_event *e) {
  cw_op *op = &e->ops[e->nops - 1];
  op->idx = e->tc_index_set ? e->tc_index : e->tc_pos - 1;
  return 1;
}

static int cw_close(void *ctx) {
  cw_event *e = ctx;
  if (e->skip) {
    e->skip--;
    return 1;
  }
  cw_frame *f = cw_top(e);
  switch (f->ctx) {
  case C_ROOT:
    e->ended = 1;
    e->end_off = yajl_get_bytes_consumed(e->h); /* just past the '}' */
    break;
  case C_CHOICE:
    if (e->choice_skip) e->nops = e->choice_ops; /* another choice: its pieces are dropped */
    else if (e->choice_finish.set) e->finish = e->choice_finish;
    break;
  case C_TC: cw_close_call(e); break;
  default: break;
  }
  e->depth--;
  return 1;
}

static const yajl_callbacks cw_callbacks = {
    cw_null, cw_bool, NULL, NULL, cw_number, cw_string,
    cw_start_map, cw_map_key, cw_close, cw_start_array, cw_close,
};

/* ---- applying an event ----------------------------------------------------------------- */

/* \u0000 and surrogates (paired or not) are where yajl and cjson may decode differently. */
static int cw_escapes_agree(const char *p, size_t n) {
  const char *end = p + n;
  while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
    if (p + 1 >= end) return 1;
    if (p[1] == 'u') {
      if (end - p < 6) return 0;
      unsigned v = 0;
      for (int i = 2; i < 6; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
      }
      if (v == 0 || (v >= 0xD800 && v <= 0xDFFF)) return 0;
      p += 6;
    } else {
      p += 2;
    }
  }
  return 1;
}

static int cw_set(chatwire_buf *b, int *has, const cw_event *e, cw_str s) {
  b->len = 0;
  *has = 1;
  return cw_append(b, e->scratch.p + s.off, s.len);
}

/* Every call index the event names must extend the list without a gap (Lua's # on a table
 * with holes is not defined). Returns 1 and the number of calls after the event, or 0. */
static int cw_check(const chatwire *w, const cw_event *e, size_t *ncalls) {
  size_t n = w->ncalls;
  for (size_t i = 0; i < e->nops; i++) {
    const cw_op *op = &e->ops[i];
    if (!op->is_call) continue;
    if (op->idx < 0 || op->idx > (long long)n || op->idx >= CW_MAX_CALLS) return 0;
    if (op->idx == (long long)n) n++;
  }
  *ncalls = n;
  return 1;
}

static int cw_reserve(chatwire *w, size_t need) {
  if (need <= w->callcap) return 1;
  chatwire_call *c = realloc(w->calls, need * sizeof *c);
  if (c == NULL) return 0;
  w->calls = c;
  w->callcap = need;
  return 1;
}

static int cw_apply(chatwire *w, const cw_event *e) {
  const char *sp = e->scratch.p;
  int rc = 0;
  if (e->id.set) rc |= cw_set(&w->id, &w->has_id, e, e->id);
  if (e->model.set) rc |= cw_set(&w->model, &w->has_model, e, e->model);
  int delta = 0;
  for (size_t i = 0; i < e->nops; i++) {
    const cw_op *op = &e->ops[i];
    delta = 1;
    if (!op->is_call) {
      rc |= cw_append(&w->content, sp + op->text.off, op->text.len);
      continue;
    }
    size_t idx = (size_t)op->idx;
    if (idx == w->ncalls) {
      memset(&w->calls[idx], 0, sizeof w->calls[idx]);
      w->ncalls++;
    }
    chatwire_call *c = &w->calls[idx];
    if (op->id.set) rc |= cw_set(&c->id, &c->has_id, e, op->id);
    if (op->name.set) {
      c->has_name = 1;
      rc |= cw_append(&c->name, sp + op->name.off, op->name.len);
    }
    if (op->args.set) rc |= cw_append(&c->args, sp + op->args.off, op->args.len);
  }
  if (delta) w->deltas++;
  if (w->kind == CHATWIRE_OPENAI) {
    if (e->usage) {
      w->has_usage = 1;
      w->prompt = e->prompt;
      w->completion = e->completion;
    }
    if (e->finish.set) rc |= cw_set(&w->finish, &w->has_finish, e, e->finish);
  } else if (e->done) {
    w->done = 1;
    w->has_usage = 1;
    w->prompt = e->prompt;
    w->completion = e->completion;
    w->has_finish = 0;
    if (e->finish.set) rc |= cw_set(&w->finish, &w->has_finish, e, e->finish);
  }
  return rc == 0;
}

/* ---- public API ------------------------------------------------------------------------ */

void chatwire_init(chatwire *w, chatwire_kind kind) {
  memset(w, 0, sizeof *w);
  w->kind = kind;
}

static void cw_buf_free(chatwire_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

void chatwire_free(chatwire *w) {
  for (size_t i = 0; i < w->ncalls; i++) {
    cw_buf_free(&w->calls[i].id);
    cw_buf_free(&w->calls[i].name);
    cw_buf_free(&w->calls[i].args);
  }
  free(w->calls);
  w->calls = NULL;
  w->ncalls = w->callcap = 0;
  cw_buf_free(&w->content);
  cw_buf_free(&w->id);
  cw_buf_free(&w->model);
  cw_buf_free(&w->finish);
  cw_event *e = w->ev;
  if (e) {
    if (e->h) yajl_free(e->h);
    cw_buf_free(&e->scratch);
    free(e->ops);
    free(e);
    w->ev = NULL;
  }
}

int chatwire_take(chatwire *w, const char *data, size_t len) {
  if (w->refused) return 0;
  cw_event *e = w->ev;
  if (e == NULL) { /* kept between events: its buffers are reused */
    e = calloc(1, sizeof *e);
    if (e == NULL) goto refuse;
    w->ev = e;
  }
  e->w = w;
  e->scratch.len = 0;
  e->nops = 0;
  e->depth = e->skip = e->ended = 0;
  e->id.set = e->model.set = e->finish.set = 0;
  e->usage = e->done = 0;
  e->prompt.set = e->completion.set = 0;
  if (!cw_escapes_agree(data, len)) goto refuse;
  /* One parser serves every event: making and freeing one per event cost more than the
   * parse of a small event. yajl_allow_multiple_values lets it start a new top-level value
   * after the previous one; the event must hold exactly one object followed by nothing but
   * whitespace (as cjson requires), which is checked here rather than by
   * yajl_complete_parse, since a trailing partial token would otherwise stay buffered in
   * the parser for the next event. A failed parse leaves the parser dead, which is fine
   * because a refusal is final. */
  if (e->h == NULL) {
    e->h = yajl_alloc(&cw_callbacks, NULL, e);
    if (e->h == NULL) goto refuse;
    /* cjson takes bytes as they are, valid UTF-8 or not */
    yajl_config(e->h, yajl_dont_validate_strings, 1);
    yajl_config(e->h, yajl_allow_multiple_values, 1);
  }
  if (yajl_parse(e->h, (const unsigned char *)data, len) != yajl_status_ok || !e->ended) goto refuse;
  for (size_t i = e->end_off; i < len; i++)
    if (data[i] != ' ' && data[i] != '\t' && data[i] != '\n' && data[i] != '\r') goto refuse;
  size_t ncalls;
  if (!cw_check(w, e, &ncalls)) goto refuse;
  if (!cw_reserve(w, ncalls) || !cw_apply(w, e)) return -1;
  return 1;
refuse:
  w->refused = 1;
  return 0;
}
