/* chatwire.c: the streamed chat formats decoded in C (see chatwire.h). yajl reports each
 * JSON token; a small stack of contexts follows the few paths the wire formats use and
 * skips the rest. What an event says is gathered first and applied when it is known to be
 * whole and well-formed, so a failure half-way leaves the accumulated state as it was.
 *
 * The rules are the wire formats' (docs/llm.md): a field of the wrong type is ignored where
 * servers are known to vary (ids, counts, usage, extra choices) and is a malformed piece
 * where it would lose or change the model's action (a tool call of the wrong shape); the
 * first malformed piece in the order the fields are read is the one reported. */
#include "chatwire.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

/* Nesting deeper than this is refused, as lua-cjson refuses it. */
#define CW_MAX_DEPTH 1000
/* Contexts followed at once: root, choices, choice, delta, tool_calls, call, function (or
 * content's list and one of its parts). */
#define CW_STACK 8
/* Calls an answer may hold: past this, a server is flooding, not answering */
#define CW_MAX_CALLS 1024
#define CW_BAD 200

/* Where a value sits. */
enum { C_SKIP, C_ROOT, C_USAGE, C_UDETAIL, C_TIMINGS, C_CHOICES, C_CHOICE, C_BODY, C_TCS, C_TC, C_FN, C_PARTS, C_PART };

/* Keys the wire formats read (bit numbers for the repeated-key check). */
enum {
  K_OTHER, K_ERROR, K_ID, K_MODEL, K_USAGE, K_CHOICES, K_PROMPT, K_COMPLETION, K_INDEX,
  K_DELTA, K_MESSAGE, K_FINISH, K_CONTENT, K_TOOL_CALLS, K_FUNCTION, K_NAME, K_ARGS,
  K_DONE, K_DONE_REASON, K_PROMPT_EVAL, K_EVAL, K_TYPE, K_TEXT, K_PDETAILS, K_CACHED, K_TIMINGS, K_CACHE_N
};

/* Why the parse was stopped from a callback. */
enum { A_NONE, A_OOM, A_DEPTH, A_SECOND };

typedef struct cw_str {
  size_t off, len;
  int set;
} cw_str;

/* One piece of the event, applied in order: content, or one tool_calls entry. */
typedef struct cw_op {
  int is_call;
  long long idx;      /* the call's index (OpenAI), when has_idx */
  int has_idx;
  int whole;          /* a message's call (a whole answer, Ollama's line): always a call of its own */
  long long pos;      /* 1-based position in its tool_calls list */
  size_t slot;        /* where it goes in chatwire.calls (cw_place) */
  cw_str text;        /* content */
  cw_str id, name, args;
  int args_json;      /* args is a JSON value's text (Ollama), or an object sent for the
                         string (OpenAI: appended as its text, reported as no string piece) */
} cw_op;

typedef struct cw_frame {
  int ctx;
  int key;            /* the key whose value comes next (maps) */
  unsigned seen;      /* keys met in this map */
} cw_frame;

typedef struct cw_bad {
  int set;
  char msg[CW_BAD];
} cw_bad;

/* A delta or message object of a choice (OpenAI) or the message (Ollama). */
typedef struct cw_body {
  int present;        /* a value other than null arrived */
  const char *scalar; /* its kind when it is not an object or list */
  size_t ops_start, ops_end;
  cw_bad bad;
} cw_body;

/* The tool call being read: the kind of each field of the wrong type, NULL when fine. */
typedef struct cw_tc {
  long long pos;      /* 1-based position in tool_calls */
  int index_set;
  long long index;
  const char *index_k, *id_k, *fn_k, *name_k, *args_k;
} cw_tc;

/* The part of a content list being read: its type and text, or the kind of each when it is
 * of the wrong type. */
typedef struct cw_part {
  long long pos;      /* 1-based position in content */
  cw_str type, text;
  const char *type_k, *text_k;
} cw_part;

/* A value being skipped whose kind or text is wanted when it closes. */
typedef struct cw_watch {
  int on, is_arr, nonempty;
  const char **kind;  /* receives its kind */
  cw_str *span;       /* receives its JSON text */
  size_t start;
} cw_watch;

/* A call an event begins, while the event's calls are placed (cw_place). */
typedef struct cw_newcall {
  int has_index;
  long long index, order;
  const char *id;     /* NULL: none yet */
  size_t idlen;
} cw_newcall;

typedef struct cw_event {
  chatwire *w;
  yajl_handle h;      /* one parser for all the events of a response (see chatwire_take) */
  const char *data;   /* the event's bytes, while it is parsed */
  chatwire_buf scratch; /* the event's strings */
  cw_op *ops;
  size_t nops, opcap;
  cw_frame stack[CW_STACK]; /* values under other keys are skipped, not stacked */
  int depth;          /* frames in use */
  int skip;           /* nesting inside a skipped value */
  int abort;          /* A_*: why a callback stopped the parse */
  int ended;          /* the top-level value closed */
  int scalar_top;     /* ... and was not an object or list */
  size_t end_off;     /* where it closed in the event's bytes */
  cw_watch watch;
  cw_str id, model, finish;
  int error;          /* an "error" field arrived; its text is err */
  cw_str err;
  int err_string;
  int usage;          /* a usage object (OpenAI) */
  chatwire_int prompt, completion;
  chatwire_int cached; /* usage.prompt_tokens_details.cached_tokens (OpenAI) */
  int timings;         /* a timings object (llama.cpp's server) */
  chatwire_int cache_n; /* timings.cache_n: prompt tokens taken from its cache */
  int done;           /* Ollama */
  cw_bad bad;         /* the first malformed piece */
  /* the choice being read (OpenAI) */
  size_t choice_ops;
  int choice_skip, cur_body;
  cw_body body[2];    /* delta, message; Ollama's message is body[1] */
  cw_str choice_finish;
  cw_tc tc;
  cw_part part;
  cw_newcall *news;   /* the event's new calls (cw_place), capacity newcap */
  size_t newcap;
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

static int cw_keep(cw_event *e, cw_str *s, const void *p, size_t n) {
  s->off = e->scratch.len;
  s->len = n;
  s->set = 1;
  if (cw_append(&e->scratch, p, n) == 0) return 1;
  e->abort = A_OOM;
  return 0;
}

static cw_op *cw_op_new(cw_event *e) {
  if (e->nops == e->opcap) {
    size_t cap = e->opcap ? e->opcap * 2 : 8;
    cw_op *n = realloc(e->ops, cap * sizeof *n);
    if (n == NULL) {
      e->abort = A_OOM;
      return NULL;
    }
    e->ops = n;
    e->opcap = cap;
  }
  cw_op *op = &e->ops[e->nops++];
  memset(op, 0, sizeof *op);
  return op;
}

/* Only the first malformed piece is reported. */
static void cw_bad_set(cw_bad *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cw_bad_set(cw_bad *b, const char *fmt, ...) {
  if (b->set) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b->msg, sizeof b->msg, fmt, ap);
  va_end(ap);
  b->set = 1;
}

static void cw_bad_copy(cw_bad *to, const cw_bad *from) {
  if (from->set && !to->set) *to = *from;
}

/* ---- keys ------------------------------------------------------------------------------ */

#define KEYIS(lit) (n == sizeof(lit) - 1 && memcmp(k, lit, n) == 0)

static int cw_key_id(int ctx, const unsigned char *k, size_t n, chatwire_kind kind) {
  int oa = kind == CHATWIRE_OPENAI;
  switch (ctx) {
  case C_ROOT:
    if (KEYIS("error")) return K_ERROR;
    if (KEYIS("model")) return K_MODEL;
    if (oa) {
      if (KEYIS("id")) return K_ID;
      if (KEYIS("usage")) return K_USAGE;
      if (KEYIS("choices")) return K_CHOICES;
      if (KEYIS("timings")) return K_TIMINGS;
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
    if (KEYIS("prompt_tokens_details")) return K_PDETAILS;
    return K_OTHER;
  case C_UDETAIL:
    if (KEYIS("cached_tokens")) return K_CACHED;
    return K_OTHER;
  case C_TIMINGS:
    if (KEYIS("cache_n")) return K_CACHE_N;
    return K_OTHER;
  case C_CHOICE:
    if (KEYIS("index")) return K_INDEX;
    if (KEYIS("delta")) return K_DELTA;
    if (KEYIS("message")) return K_MESSAGE;
    if (KEYIS("finish_reason")) return K_FINISH;
    return K_OTHER;
  case C_BODY:
    if (KEYIS("content")) return K_CONTENT;
    if (KEYIS("tool_calls")) return K_TOOL_CALLS;
    return K_OTHER;
  case C_TC:
    if (oa && KEYIS("index")) return K_INDEX;
    if (KEYIS("id")) return K_ID;
    if (KEYIS("function")) return K_FUNCTION;
    return K_OTHER;
  case C_FN:
    if (KEYIS("name")) return K_NAME;
    if (KEYIS("arguments")) return K_ARGS;
    return K_OTHER;
  case C_PART:
    if (KEYIS("type")) return K_TYPE;
    if (KEYIS("text")) return K_TEXT;
    return K_OTHER;
  default: return K_OTHER;
  }
}

/* ---- values ---------------------------------------------------------------------------- */

enum { V_NULL, V_BOOL, V_NUM, V_STR, V_MAP, V_ARR };

/* How a value of the wrong type is named in a message (containers: see cw_watch_end). */
static const char *cw_kind(int type) {
  switch (type) {
  case V_NULL: return "null";
  case V_BOOL: return "a boolean";
  case V_NUM: return "a number";
  case V_STR: return "a string";
  case V_MAP: return "an object";
  default: return "a list";
  }
}

static cw_frame *cw_top(cw_event *e) { return e->depth > 0 ? &e->stack[e->depth - 1] : NULL; }

static int cw_push(cw_event *e, int ctx) {
  if (e->depth >= CW_STACK) return 0;
  cw_frame *f = &e->stack[e->depth++];
  f->ctx = ctx;
  f->key = K_OTHER;
  f->seen = 0;
  return 1;
}

/* The number a JSON number's text stands for, as a double. */
static double cw_number_value(const char *s, size_t n) {
  char buf[64];
  if (n >= sizeof buf) return NAN; /* compared with nothing, converted to nothing */
  memcpy(buf, s, n);
  buf[n] = '\0';
  return strtod(buf, NULL);
}

static chatwire_int cw_int_of(double d) {
  chatwire_int r = {0, 0, 0, 0.0};
  if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && floor(d) == d) {
    r.v = (long long)d;
    r.set = r.whole = 1;
  }
  return r;
}

/* A count as it arrived: a whole number in v, or any other number in num (the caller
 * refuses it: a fraction or 1e30 is a server's mistake, not an absent count). */
static chatwire_int cw_count_of(double d) {
  chatwire_int r = cw_int_of(d);
  if (!r.set) {
    r.set = 1;
    r.num = d;
  }
  return r;
}

static int cw_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int cw_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Whether s[0..n) is a decimal number's text as JSON writes one (a sign, digits, a
 * fraction, an exponent), spaces around it allowed: what strtod would read beyond that
 * ("0x10" as 16, "inf", "nan") is no count a server means. */
static int cw_decimal_text(const unsigned char *s, size_t n) {
  size_t i = 0, d;
  while (i < n && cw_space(s[i])) i++;
  if (i < n && s[i] == '-') i++;
  for (d = i; i < n && cw_digit(s[i]); i++) {}
  if (i == d) return 0;
  if (i < n && s[i] == '.') {
    for (d = ++i; i < n && cw_digit(s[i]); i++) {}
    if (i == d) return 0;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    for (d = i; i < n && cw_digit(s[i]); i++) {}
    if (i == d) return 0;
  }
  while (i < n && cw_space(s[i])) i++;
  return i == n;
}

/* A token count: a number, or a string holding a decimal one (servers that quote their
 * numbers); anything else ("abc", "", "0x10", "inf", true, null) is no count: the call's
 * usage is then incomplete, and a priced call is charged its estimate (docs/cost.md). */
static chatwire_int cw_count(int type, const unsigned char *s, size_t n) {
  chatwire_int none = {0, 0, 0, 0.0};
  if (type == V_NUM) return cw_count_of(cw_number_value((const char *)s, n));
  if (type != V_STR || n >= 64 || !cw_decimal_text(s, n)) return none;
  char buf[64];
  memcpy(buf, s, n);
  buf[n] = '\0';
  return cw_count_of(strtod(buf, NULL));
}

/* Watches the container about to be skipped: its kind into *kind, its text into *span. */
static void cw_watch_begin(cw_event *e, int type, const char **kind, cw_str *span) {
  e->watch.on = 1;
  e->watch.is_arr = type == V_ARR;
  e->watch.nonempty = 0;
  e->watch.kind = kind;
  e->watch.span = span;
  e->watch.start = yajl_get_bytes_consumed(e->h) - 1; /* at the '{' or '[' */
}

static int cw_watch_end(cw_event *e) {
  cw_watch *wt = &e->watch;
  wt->on = 0;
  if (wt->kind) *wt->kind = !wt->nonempty ? "an empty object or list" : wt->is_arr ? "a list" : "an object";
  if (wt->span) {
    size_t end = yajl_get_bytes_consumed(e->h);
    return cw_keep(e, wt->span, e->data + wt->start, end - wt->start);
  }
  return 1;
}

/* Both bodies empty again (their messages are left: only `set` says one is there). */
static void cw_bodies_reset(cw_event *e) {
  for (int i = 0; i < 2; i++) {
    cw_body *b = &e->body[i];
    b->present = 0;
    b->scalar = NULL;
    b->ops_start = b->ops_end = 0;
    b->bad.set = 0;
  }
}

/* The current body's malformed-piece record. */
static cw_bad *cw_body_bad(cw_event *e) { return &e->body[e->cur_body].bad; }

/* Each cw_*_value below: a value arrived under `key` in its context; returns 1 to go on, 0
 * to stop the parse (out of memory). `table`: the value is an object or a list, whose
 * context to push goes to *ctx_out (left C_SKIP to skip it). */

/* The event itself: an object is read, anything else ends it. */
static int cw_event_value(cw_event *e, int type, int *ctx_out) {
  if (e->ended) {
    e->abort = A_SECOND;
    return 0;
  }
  if (type == V_MAP) *ctx_out = C_ROOT;
  else if (type != V_ARR) { /* a list is skipped: it holds no field */
    e->scalar_top = e->ended = 1;
    e->end_off = yajl_get_bytes_consumed(e->h);
  }
  return 1;
}

/* The error field, kept as its text whatever its type. */
static int cw_error_value(cw_event *e, int type, const unsigned char *s, size_t n) {
  e->error = 1;
  if (type == V_MAP || type == V_ARR) {
    cw_watch_begin(e, type, NULL, &e->err);
    return 1;
  }
  e->err_string = type == V_STR;
  if (type == V_STR || type == V_NUM) return cw_keep(e, &e->err, s, n);
  if (type == V_NULL) return cw_keep(e, &e->err, "null", 4);
  return n ? cw_keep(e, &e->err, "true", 4) : cw_keep(e, &e->err, "false", 5);
}

/* The event's own fields (both formats). */
static int cw_root_value(cw_event *e, int key, int type, const unsigned char *s, size_t n, int *ctx_out) {
  switch (key) {
  case K_ERROR: return cw_error_value(e, type, s, n);
  case K_ID:
  case K_MODEL:
    if (type == V_STR) return cw_keep(e, key == K_ID ? &e->id : &e->model, s, n);
    return 1; /* not a string: ignored */
  case K_USAGE:
    if (type == V_MAP || type == V_ARR) { /* a list is a usage without counts */
      e->usage = 1;
      e->prompt.set = e->completion.set = e->cached.set = 0;
      if (type == V_MAP) *ctx_out = C_USAGE;
    }
    return 1;
  case K_TIMINGS: /* llama.cpp */
    if (type == V_MAP) {
      e->timings = 1;
      e->cache_n.set = 0;
      *ctx_out = C_TIMINGS;
    }
    return 1;
  case K_CHOICES:
    if (type == V_ARR) *ctx_out = C_CHOICES; /* an object holds no choices */
    return 1;
  case K_MESSAGE: /* Ollama */
    if (type == V_MAP) {
      e->cur_body = 1;
      e->body[1].ops_start = e->nops;
      *ctx_out = C_BODY;
    }
    return 1;
  case K_DONE:
    e->done = type == V_BOOL && n == 1;
    return 1;
  case K_DONE_REASON:
    if (type == V_STR) return cw_keep(e, &e->finish, s, n);
    return 1; /* another type is no reason */
  case K_PROMPT_EVAL: e->prompt = cw_count(type, s, n); return 1;
  case K_EVAL: e->completion = cw_count(type, s, n); return 1;
  default: return 1;
  }
}

/* One entry of choices: a choice; a list or a scalar holds none. */
static void cw_choices_value(cw_event *e, int type, int *ctx_out) {
  if (type != V_MAP) return;
  e->choice_ops = e->nops;
  e->choice_skip = 0;
  e->cur_body = 0;
  cw_bodies_reset(e);
  e->choice_finish.set = 0;
  *ctx_out = C_CHOICE;
}

/* A choice's fields (OpenAI). */
static int cw_choice_value(cw_event *e, int key, int type, const unsigned char *s, size_t n, int *ctx_out) {
  switch (key) {
  case K_INDEX: /* only choice 0 (or none given) counts; "0", null, ... are not 0 */
    if (type != V_NUM || cw_number_value((const char *)s, n) != 0.0) e->choice_skip = 1;
    return 1;
  case K_DELTA:
  case K_MESSAGE: {
    cw_body *b = &e->body[key == K_MESSAGE];
    if (type == V_NULL) return 1; /* null is absent */
    b->present = 1;
    b->ops_start = b->ops_end = e->nops;
    if (type == V_MAP) {
      e->cur_body = key == K_MESSAGE;
      *ctx_out = C_BODY;
    } else if (type != V_ARR) {
      b->scalar = cw_kind(type);
    }
    return 1;
  }
  case K_FINISH:
    if (type == V_STR) return cw_keep(e, &e->choice_finish, s, n);
    return 1;
  default: return 1;
  }
}

/* A piece of content (kept text): an op placed after the body's earlier pieces and before
 * its tool calls, wherever the key stands. */
static int cw_content_piece(cw_event *e, cw_str text) {
  cw_op *op = cw_op_new(e);
  if (op == NULL) return 0;
  op->text = text;
  size_t at = e->body[e->cur_body].ops_start;
  while (at < e->nops - 1 && !e->ops[at].is_call) at++;
  if (at < e->nops - 1) {
    cw_op c = *op;
    memmove(&e->ops[at + 1], &e->ops[at], (e->nops - 1 - at) * sizeof c);
    e->ops[at] = c;
  }
  return 1;
}

/* content: a string, or a list of parts (as some servers send it: the text parts joined);
 * another type would lose the model's words without a word, so it is a malformed piece. */
static int cw_content_value(cw_event *e, int type, const unsigned char *s, size_t n, int *ctx_out) {
  const char *at = e->w->kind == CHATWIRE_OPENAI ? "" : "message.";
  if (type == V_STR) {
    cw_str text = {0, 0, 0};
    if (n == 0) return 1;
    return cw_keep(e, &text, s, n) && cw_content_piece(e, text);
  }
  if (type == V_ARR) {
    e->part.pos = 0;
    *ctx_out = C_PARTS;
  } else if (type != V_NULL) {
    cw_bad_set(cw_body_bad(e), "%scontent is %s, not a string or a list of text parts", at,
               cw_kind(type));
  }
  return 1;
}

/* One entry of a content list: a part begins. */
static void cw_parts_value(cw_event *e, int type, int *ctx_out) {
  cw_part *pt = &e->part;
  pt->pos++;
  if (type != V_MAP) {
    cw_bad_set(cw_body_bad(e), "%scontent[%lld] is %s, not a text part", e->w->kind == CHATWIRE_OPENAI ? "" : "message.",
               pt->pos, cw_kind(type));
    return;
  }
  pt->type.set = pt->text.set = 0;
  pt->type_k = pt->text_k = NULL;
  *ctx_out = C_PART;
}

/* A part's type or text: a string each; another kind is noted for cw_close_part. */
static int cw_part_value(cw_event *e, int key, int type, const unsigned char *s, size_t n) {
  cw_part *pt = &e->part;
  if (key != K_TYPE && key != K_TEXT) return 1;
  cw_str *str = key == K_TYPE ? &pt->type : &pt->text;
  const char **kind = key == K_TYPE ? &pt->type_k : &pt->text_k;
  if (type == V_STR) return cw_keep(e, str, s, n);
  if (type == V_MAP || type == V_ARR) cw_watch_begin(e, type, kind, NULL);
  else *kind = cw_kind(type);
  return 1;
}

/* A part is complete: a text part's text becomes a piece; any other part is malformed (a
 * refusal or an image dropped would change what the model said). */
static int cw_close_part(cw_event *e) {
  cw_part *pt = &e->part;
  cw_bad *b = cw_body_bad(e);
  const char *at = e->w->kind == CHATWIRE_OPENAI ? "" : "message.";
  const char *type = pt->type.set ? e->scratch.p + pt->type.off : "";
  if (pt->type_k) cw_bad_set(b, "%scontent[%lld].type is %s, not a string", at, pt->pos, pt->type_k);
  else if (!pt->type.set) cw_bad_set(b, "%scontent[%lld] has no type", at, pt->pos);
  else if (pt->type.len != 4 || memcmp(type, "text", 4) != 0)
    cw_bad_set(b, "%scontent[%lld] is a part of type \"%.*s\", not text", at, pt->pos,
               (int)(pt->type.len > 32 ? 32 : pt->type.len), type);
  else if (pt->text_k) cw_bad_set(b, "%scontent[%lld].text is %s, not a string", at, pt->pos, pt->text_k);
  else if (!pt->text.set) cw_bad_set(b, "%scontent[%lld] has no text", at, pt->pos);
  else if (pt->text.len > 0) return cw_content_piece(e, pt->text);
  return 1;
}

/* A delta's or message's fields. */
static int cw_body_value(cw_event *e, int key, int type, const unsigned char *s, size_t n, int *ctx_out) {
  int oa = e->w->kind == CHATWIRE_OPENAI;
  if (key == K_CONTENT) return cw_content_value(e, type, s, n, ctx_out);
  if (key == K_TOOL_CALLS) {
    if (type == V_ARR) {
      e->tc.pos = 0;
      *ctx_out = C_TCS;
    } else if (type != V_MAP && type != V_NULL) {
      cw_bad_set(cw_body_bad(e), "%stool_calls is %s, not a list", oa ? "" : "message.", cw_kind(type));
    }
    return 1; /* an object holds no calls */
  }
  return 1;
}

/* One entry of tool_calls: a call begins. */
static int cw_calls_value(cw_event *e, int type, int *ctx_out) {
  int oa = e->w->kind == CHATWIRE_OPENAI;
  cw_tc *tc = &e->tc;
  tc->pos++;
  if (type != V_MAP && type != V_ARR) {
    cw_bad_set(cw_body_bad(e), "%stool_calls[%lld] is %s, not an object", oa ? "" : "message.", tc->pos, cw_kind(type));
    return 1;
  }
  tc->index_set = 0;
  tc->index_k = tc->id_k = tc->name_k = tc->args_k = NULL;
  tc->fn_k = oa ? NULL : "a nil";
  if (!oa) tc->name_k = "a nil";
  cw_op *op = cw_op_new(e);
  if (op == NULL) return 0;
  op->is_call = 1;
  if (type == V_MAP) *ctx_out = C_TC;
  /* a list: a call with no fields, closed by cw_close */
  return 1;
}

/* A call's index (OpenAI): a whole number; the wrong type is noted for cw_close_call. */
static void cw_call_index(cw_event *e, int type, const unsigned char *s, size_t n) {
  cw_tc *tc = &e->tc;
  if (type == V_NULL) return;
  if (type == V_MAP || type == V_ARR) {
    cw_watch_begin(e, type, &tc->index_k, NULL);
    return;
  }
  if (type != V_NUM) {
    tc->index_k = cw_kind(type);
    return;
  }
  chatwire_int v = cw_int_of(cw_number_value((const char *)s, n));
  if (!v.set) tc->index_k = cw_kind(type);
  tc->index_set = v.set;
  tc->index = v.v;
}

/* A call's fields. */
static int cw_call_value(cw_event *e, int key, int type, const unsigned char *s, size_t n, int *ctx_out) {
  int oa = e->w->kind == CHATWIRE_OPENAI;
  cw_op *op = &e->ops[e->nops - 1];
  cw_tc *tc = &e->tc;
  switch (key) {
  case K_INDEX: cw_call_index(e, type, s, n); return 1;
  case K_ID:
    if (type == V_STR) return cw_keep(e, &op->id, s, n);
    if (type == V_MAP || type == V_ARR) cw_watch_begin(e, type, &tc->id_k, NULL);
    else if (type != V_NULL) tc->id_k = cw_kind(type);
    return 1;
  case K_FUNCTION:
    if (type == V_MAP) {
      tc->fn_k = NULL;
      *ctx_out = C_FN;
    } else if (type == V_ARR) {
      tc->fn_k = NULL; /* a list: a function without a name */
    } else if (type != V_NULL || !oa) {
      tc->fn_k = cw_kind(type);
    }
    return 1;
  default: return 1;
  }
}

/* A call's function name: a non-empty string. */
static int cw_function_name(cw_event *e, int type, const unsigned char *s, size_t n) {
  int oa = e->w->kind == CHATWIRE_OPENAI;
  cw_tc *tc = &e->tc;
  if (type == V_STR) {
    if (n > 0) {
      tc->name_k = NULL;
      return cw_keep(e, &e->ops[e->nops - 1].name, s, n);
    }
    if (!oa) tc->name_k = "a string"; /* an empty name is no tool */
    return 1;
  }
  if (type == V_MAP || type == V_ARR) cw_watch_begin(e, type, &tc->name_k, NULL);
  else if (type != V_NULL || !oa) tc->name_k = cw_kind(type);
  return 1;
}

/* A call's arguments: OpenAI's string of JSON, Ollama's JSON value. */
static int cw_function_args(cw_event *e, int type, const unsigned char *s, size_t n) {
  int oa = e->w->kind == CHATWIRE_OPENAI;
  cw_op *op = &e->ops[e->nops - 1];
  if (type == V_STR) return cw_keep(e, &op->args, s, n);
  if (type == V_MAP || type == V_ARR) { /* OpenAI: an object where a string of JSON belongs is taken as its text */
    op->args_json = 1;
    cw_watch_begin(e, type, NULL, &op->args);
    return 1;
  }
  if (type == V_NULL) {
    if (oa) return 1;
    op->args_json = 1; /* Ollama: arguments null (the gate refuses them) */
    return cw_keep(e, &op->args, "null", 4);
  }
  e->tc.args_k = cw_kind(type);
  return 1;
}

/* A value arrived in the current context: returns 1 to go on, 0 to stop the parse. For
 * maps and arrays `ctx_out` receives the context to push (C_SKIP to skip it). */
static int cw_value(cw_event *e, int type, const unsigned char *s, size_t n, int *ctx_out) {
  int scratch = C_SKIP;
  if (ctx_out == NULL) ctx_out = &scratch; /* scalars push nothing */
  *ctx_out = C_SKIP;
  cw_frame *f = cw_top(e);
  if (f == NULL) return cw_event_value(e, type, ctx_out);
  switch (f->ctx) {
  case C_ROOT: return cw_root_value(e, f->key, type, s, n, ctx_out);
  case C_USAGE:
    if (f->key == K_PROMPT) e->prompt = cw_count(type, s, n);
    else if (f->key == K_COMPLETION) e->completion = cw_count(type, s, n);
    else if (f->key == K_PDETAILS && type == V_MAP) *ctx_out = C_UDETAIL;
    return 1;
  case C_UDETAIL:
    if (f->key == K_CACHED) e->cached = cw_count(type, s, n);
    return 1;
  case C_TIMINGS:
    if (f->key == K_CACHE_N) e->cache_n = cw_count(type, s, n);
    return 1;
  case C_CHOICES: cw_choices_value(e, type, ctx_out); return 1;
  case C_CHOICE: return cw_choice_value(e, f->key, type, s, n, ctx_out);
  case C_BODY: return cw_body_value(e, f->key, type, s, n, ctx_out);
  case C_TCS: return cw_calls_value(e, type, ctx_out);
  case C_TC: return cw_call_value(e, f->key, type, s, n, ctx_out);
  case C_FN:
    if (f->key == K_NAME) return cw_function_name(e, type, s, n);
    if (f->key == K_ARGS) return cw_function_args(e, type, s, n);
    return 1;
  case C_PARTS: cw_parts_value(e, type, ctx_out); return 1;
  case C_PART: return cw_part_value(e, f->key, type, s, n);
  default: return 1;
  }
}

/* ---- yajl callbacks ---------------------------------------------------------------------- */

static int cw_scalar(void *ctx, int type, const unsigned char *s, size_t n) {
  cw_event *e = ctx;
  if (e->skip) {
    if (e->skip == 1) e->watch.nonempty = 1;
    return 1;
  }
  return cw_value(e, type, s, n, NULL);
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
  if (e->depth + e->skip + 1 > CW_MAX_DEPTH) {
    e->abort = A_DEPTH;
    return 0;
  }
  if (e->skip) {
    if (e->skip == 1) e->watch.nonempty = 1;
    e->skip++;
    return 1;
  }
  int inner;
  e->watch.on = 0;
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
  if (e->skip) {
    if (e->skip == 1) e->watch.nonempty = 1;
    return 1;
  }
  cw_frame *f = cw_top(e);
  int key = cw_key_id(f->ctx, k, n, e->w->kind);
  if (key != K_OTHER) {
    if (f->seen & (1u << key))
      cw_bad_set(&e->bad, "repeated key \"%.*s\"", (int)n, (const char *)k); /* which one counts? */
    f->seen |= 1u << key;
  }
  f->key = key;
  return 1;
}

/* A tool_calls entry is complete: its index, and the first field of the wrong type in the
 * order the wire format reads them. */
static void cw_close_call(cw_event *e) {
  cw_op *op = &e->ops[e->nops - 1];
  cw_tc *tc = &e->tc;
  cw_bad *b = cw_body_bad(e);
  long long pos = tc->pos;
  op->pos = pos;
  op->whole = e->cur_body == 1;
  if (e->w->kind == CHATWIRE_OPENAI) {
    op->idx = tc->index_set ? tc->index : 0;
    op->has_idx = tc->index_set;
    if (tc->index_k) cw_bad_set(b, "tool_calls[%lld].index is %s, not an integer", pos, tc->index_k);
    else if (tc->id_k) cw_bad_set(b, "tool_calls[%lld].id is %s, not a string", pos, tc->id_k);
    else if (tc->fn_k) cw_bad_set(b, "tool_calls[%lld].function is %s, not an object", pos, tc->fn_k);
    else if (tc->name_k) cw_bad_set(b, "tool_calls[%lld].function.name is %s, not a string", pos, tc->name_k);
    else if (tc->args_k) cw_bad_set(b, "tool_calls[%lld].function.arguments is %s, not a string of JSON", pos, tc->args_k);
  } else {
    /* a call of another shape is the server's fault, and dropping it would lose the
     * model's action without a word */
    if (tc->fn_k) cw_bad_set(b, "message.tool_calls[%lld].function is %s, not an object", pos, tc->fn_k);
    else if (tc->name_k) cw_bad_set(b, "message.tool_calls[%lld].function.name is %s, not a tool name", pos, tc->name_k);
    else if (tc->id_k) cw_bad_set(b, "message.tool_calls[%lld].id is %s, not a string", pos, tc->id_k);
    else if (tc->args_k) cw_bad_set(b, "message.tool_calls[%lld].function.arguments is %s, not an object", pos, tc->args_k);
  }
}

/* Drops ops[from, to) (a body a choice does not use). */
static void cw_drop_ops(cw_event *e, size_t from, size_t to) {
  if (from >= to || to > e->nops) return;
  memmove(&e->ops[from], &e->ops[to], (e->nops - to) * sizeof e->ops[0]);
  e->nops -= to - from;
}

/* A choice is complete: the delta if there is one, else the message, else nothing. */
static void cw_close_choice(cw_event *e) {
  if (e->choice_skip) { /* another choice: its pieces are dropped */
    e->nops = e->choice_ops;
    return;
  }
  int use = e->body[0].present ? 0 : e->body[1].present ? 1 : -1;
  if (use == 0 && e->body[1].present) cw_drop_ops(e, e->body[1].ops_start, e->body[1].ops_end);
  if (use >= 0) {
    cw_body *b = &e->body[use];
    if (b->scalar) cw_bad_set(&e->bad, "choices[1].%s is %s, not an object", use ? "message" : "delta", b->scalar);
    cw_bad_copy(&e->bad, &b->bad);
  }
  if (e->choice_finish.set) e->finish = e->choice_finish;
}

static int cw_close(void *ctx) {
  cw_event *e = ctx;
  if (e->skip) {
    e->skip--;
    if (e->skip == 0) {
      if (e->watch.on && !cw_watch_end(e)) return 0;
      cw_frame *f = cw_top(e);
      if (f == NULL) { /* a list as the whole event */
        e->ended = 1;
        e->end_off = yajl_get_bytes_consumed(e->h);
      } else if (f->ctx == C_TCS) {
        cw_close_call(e); /* a list as a call: one without fields */
      }
    }
    return 1;
  }
  cw_frame *f = cw_top(e);
  switch (f->ctx) {
  case C_ROOT:
    e->ended = 1;
    e->end_off = yajl_get_bytes_consumed(e->h); /* just past the '}' */
    if (e->w->kind == CHATWIRE_OLLAMA) cw_bad_copy(&e->bad, &e->body[1].bad);
    break;
  case C_CHOICE: cw_close_choice(e); break;
  case C_BODY: e->body[e->cur_body].ops_end = e->nops; break;
  case C_TC: cw_close_call(e); break;
  case C_PART:
    if (!cw_close_part(e)) return 0; /* out of memory */
    break;
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

/* The value of the 4 hex digits at p, or 0x10000 when they are not 4 hex digits. */
static unsigned cw_hex4(const char *p, const char *end) {
  if (end - p < 4) return 0x10000;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0x10000;
  }
  return v;
}

/* A surrogate escape must be a high one followed by a low one (yajl would put '?' for a
 * lone one, where the JSON is simply wrong). Returns the offset of a lone one, or n. */
static size_t cw_lone_surrogate(const char *p0, size_t n) {
  const char *p = p0, *end = p0 + n;
  while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
    if (end - p < 2) break;
    if (p[1] != 'u') {
      p += 2;
      continue;
    }
    unsigned v = cw_hex4(p + 2, end);
    if (v > 0xFFFF) return n; /* not an escape: yajl refuses the JSON */
    if (v >= 0xDC00 && v <= 0xDFFF) return (size_t)(p - p0);
    if (v >= 0xD800 && v <= 0xDBFF) {
      if (end - p < 12 || p[6] != '\\' || p[7] != 'u') return (size_t)(p - p0);
      unsigned lo = cw_hex4(p + 8, end);
      if (lo < 0xDC00 || lo > 0xDFFF) return (size_t)(p - p0);
      p += 12;
      continue;
    }
    p += 6;
  }
  return n;
}

static int cw_set(chatwire_buf *b, int *has, const cw_event *e, cw_str s) {
  b->len = 0;
  *has = 1;
  return cw_append(b, e->scratch.p + s.off, s.len);
}

static int cw_reserve(chatwire *w, size_t need) {
  if (need <= w->callcap) return 1;
  size_t cap = w->callcap ? w->callcap : 4;
  while (cap < need) cap *= 2;
  chatwire_call *c = realloc(w->calls, cap * sizeof *c);
  if (c == NULL) return 0;
  w->calls = c;
  w->callcap = cap;
  return 1;
}

/* Slot k's index and id so far: a call kept from earlier events, or one this event begins. */
static const cw_newcall *cw_slot(const chatwire *w, const cw_event *e, size_t k, cw_newcall *tmp) {
  if (k >= w->ncalls) return &e->news[k - w->ncalls];
  const chatwire_call *c = &w->calls[k];
  tmp->has_index = c->has_index;
  tmp->index = c->index;
  tmp->order = c->order;
  tmp->id = c->has_id ? (c->id.p ? c->id.p : "") : NULL;
  tmp->idlen = c->id.len;
  return tmp;
}

/* Places an event's call pieces: op->slot for each, the calls it begins in e->news.
 * Streamed (a delta's), a piece with an index continues the last call of that index, and
 * one without continues the last call; a piece whose id is not that call's begins a new
 * one (servers that send no index, or 0 for every call, tell their calls apart by id), as
 * does a second entry of one tool_calls list without an index. Indexes are any integers,
 * in any order, with gaps: the answer's calls are ordered by them (chatwire_order). A
 * message's calls (a whole answer, Ollama's lines) are each a call of its own. *out: the
 * calls there will be. Returns 0 when memory ran out. */
static int cw_place(cw_event *e, size_t *out) {
  const chatwire *w = e->w;
  size_t n = w->ncalls, ncall = 0;
  for (size_t i = 0; i < e->nops; i++) ncall += e->ops[i].is_call;
  /* each piece scans the calls placed so far: past the cap the answer is refused before
   * any placing, so one hostile event (a MiB of pieces) costs at most the cap squared */
  if (ncall > CW_MAX_CALLS || n > CW_MAX_CALLS) {
    *out = (size_t)CW_MAX_CALLS + 1;
    return 1;
  }
  if (ncall > e->newcap) {
    cw_newcall *nw = realloc(e->news, ncall * sizeof *nw);
    if (nw == NULL) return 0;
    e->news = nw;
    e->newcap = ncall;
  }
  for (size_t i = 0; i < e->nops; i++) {
    cw_op *op = &e->ops[i];
    if (!op->is_call) continue;
    const char *id = op->id.set ? e->scratch.p + op->id.off : NULL;
    size_t at = SIZE_MAX;
    cw_newcall tmp;
    if (op->whole) {
      /* a call of its own */
    } else if (op->has_idx) {
      for (size_t k = n; k-- > 0;) {
        const cw_newcall *c = cw_slot(w, e, k, &tmp);
        if (c->has_index && c->index == op->idx) {
          at = k;
          break;
        }
      }
    } else if (n > 0 && (id != NULL || op->pos == 1)) {
      at = n - 1;
    }
    if (at != SIZE_MAX && id != NULL) {
      const cw_newcall *c = cw_slot(w, e, at, &tmp);
      if (c->id != NULL && (c->idlen != op->id.len || memcmp(c->id, id, op->id.len) != 0)) at = SIZE_MAX;
    }
    if (at == SIZE_MAX) {
      if (n >= CW_MAX_CALLS) { /* one more is past the cap: refused by the caller */
        *out = n + 1;
        return 1;
      }
      at = n++;
      cw_newcall *c = &e->news[at - w->ncalls];
      c->has_index = op->has_idx;
      c->index = op->idx;
      /* without an index, it stands after the call before it */
      c->order = op->has_idx ? op->idx : at > 0 ? cw_slot(w, e, at - 1, &tmp)->order : 0;
      c->id = id;
      c->idlen = op->id.len;
    } else if (id != NULL && at >= w->ncalls && e->news[at - w->ncalls].id == NULL) {
      e->news[at - w->ncalls].id = id;
      e->news[at - w->ncalls].idlen = op->id.len;
    }
    op->slot = at;
  }
  *out = n;
  return 1;
}

/* Applies an event whose calls were placed (cw_place; ncalls: the calls after it). */
static int cw_apply(chatwire *w, const cw_event *e, size_t ncalls) {
  const char *sp = e->scratch.p;
  int rc = 0;
  if (!cw_reserve(w, ncalls)) return 0;
  for (size_t i = w->ncalls; i < ncalls; i++) {
    const cw_newcall *nc = &e->news[i - w->ncalls];
    memset(&w->calls[i], 0, sizeof w->calls[i]);
    w->calls[i].present = 1;
    w->calls[i].has_index = nc->has_index;
    w->calls[i].index = nc->index;
    w->calls[i].order = nc->order;
  }
  w->ncalls = ncalls;
  if (e->id.set) rc |= cw_set(&w->id, &w->has_id, e, e->id);
  if (e->model.set) rc |= cw_set(&w->model, &w->has_model, e, e->model);
  for (size_t i = 0; i < e->nops; i++) {
    const cw_op *op = &e->ops[i];
    chatwire_piece piece = {0, 0, NULL, NULL, 0};
    if (!op->is_call) {
      rc |= cw_append(&w->content, sp + op->text.off, op->text.len);
      piece.text = sp + op->text.off;
      piece.len = op->text.len;
    } else {
      size_t idx = op->slot;
      chatwire_call *c = &w->calls[idx];
      if (op->id.set) rc |= cw_set(&c->id, &c->has_id, e, op->id);
      if (op->name.set) {
        c->has_name = 1;
        rc |= cw_append(&c->name, sp + op->name.off, op->name.len);
      }
      if (op->args.set) {
        c->has_args = 1;
        if (w->kind == CHATWIRE_OLLAMA) c->args_json = op->args_json;
        rc |= cw_append(&c->args, sp + op->args.off, op->args.len);
        if (!op->args_json || w->kind == CHATWIRE_OLLAMA) {
          piece.text = sp + op->args.off;
          piece.len = op->args.len;
        }
      }
      piece.is_call = 1;
      piece.index = idx;
      piece.call = c;
    }
    if (rc == 0 && w->piece) w->piece(w->piece_ud, w, &piece);
  }
  if (e->nops) w->deltas++;
  if (w->kind == CHATWIRE_OPENAI) {
    if (e->usage) {
      w->has_usage = 1;
      w->prompt = e->prompt;
      w->completion = e->completion;
      w->cached = e->cached;
    }
    /* llama.cpp's server reports its prompt cache in timings, beside an OpenAI usage */
    if (e->timings && e->cache_n.set && !w->cached.set) w->cached = e->cache_n;
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
  cw_buf_free(&w->why);
  cw_event *e = w->ev;
  if (e) {
    if (e->h) yajl_free(e->h);
    cw_buf_free(&e->scratch);
    free(e->ops);
    free(e->news);
    free(e);
    w->ev = NULL;
  }
}

/* Fails the decoder: returns 0, or -1 when even the reason could not be kept. */
static int cw_fail(chatwire *w, chatwire_failure why, const char *text, size_t n) {
  w->failed = why;
  w->why.len = 0;
  return cw_append(&w->why, text, n) == 0 ? 0 : -1;
}

static int cw_fail_json(chatwire *w, const char *msg) { return cw_fail(w, CHATWIRE_E_JSON, msg, strlen(msg)); }

/* The parser's own message for JSON it refused. */
static int cw_fail_yajl(chatwire *w, yajl_handle h) {
  unsigned char *m = yajl_get_error(h, 0, NULL, 0);
  if (m == NULL) return cw_fail_json(w, "JSON that does not parse");
  size_t n = strlen((char *)m);
  while (n && (m[n - 1] == '\n' || m[n - 1] == ' ')) n--;
  int rc = cw_fail(w, CHATWIRE_E_JSON, (char *)m, n);
  yajl_free_error(h, m);
  return rc;
}

static int cw_blank(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') return 0;
  return 1;
}

int chatwire_take(chatwire *w, const char *data, size_t len) {
  if (w->failed) return 0;
  cw_event *e = w->ev;
  if (e == NULL) { /* kept between events: its buffers are reused */
    e = calloc(1, sizeof *e);
    if (e == NULL) return -1;
    w->ev = e;
  }
  e->w = w;
  e->data = data;
  e->scratch.len = 0;
  e->nops = 0;
  e->depth = e->skip = e->abort = e->ended = e->scalar_top = 0;
  e->watch.on = 0;
  e->id.set = e->model.set = e->finish.set = e->err.set = 0;
  e->error = e->err_string = e->usage = e->timings = e->done = 0;
  e->prompt.set = e->completion.set = 0;
  e->bad.set = 0;
  e->cur_body = 1;
  cw_bodies_reset(e);
  char msg[120];
  size_t lone = cw_lone_surrogate(data, len);
  if (lone < len) {
    snprintf(msg, sizeof msg, "invalid unicode escape (a lone surrogate) at byte %zu", lone + 1);
    return cw_fail_json(w, msg);
  }
  /* One parser serves every event: making and freeing one per event cost more than the
   * parse of a small event. yajl_allow_multiple_values lets it start a new top-level value
   * after the previous one; the event must hold exactly one value followed by nothing but
   * whitespace, which is checked here rather than by yajl_complete_parse, since a trailing
   * partial token would otherwise stay buffered in the parser for the next event. A failed
   * parse leaves the parser dead, which is fine because a failure is final. */
  if (e->h == NULL) {
    e->h = yajl_alloc(&cw_callbacks, NULL, e);
    if (e->h == NULL) return -1;
    /* bytes are taken as they are, valid UTF-8 or not */
    yajl_config(e->h, yajl_dont_validate_strings, 1);
    yajl_config(e->h, yajl_allow_multiple_values, 1);
  }
  yajl_status st = yajl_parse(e->h, (const unsigned char *)data, len);
  if (st == yajl_status_ok && !e->ended) st = yajl_complete_parse(e->h); /* a bare number */
  if (st == yajl_status_client_canceled) {
    if (e->abort == A_OOM) return -1;
    if (e->abort == A_DEPTH)
      snprintf(msg, sizeof msg, "too many nested data structures (more than %d) at byte %zu", CW_MAX_DEPTH, yajl_get_bytes_consumed(e->h));
    else
      snprintf(msg, sizeof msg, "more than one JSON value (the first ends at byte %zu)", e->end_off);
    return cw_fail_json(w, msg);
  }
  if (st != yajl_status_ok) return cw_fail_yajl(w, e->h);
  if (!e->ended) return cw_fail_json(w, cw_blank(data, len) ? "no JSON value" : "an incomplete JSON value");
  if (!e->scalar_top && !cw_blank(data + e->end_off, len - e->end_off)) {
    snprintf(msg, sizeof msg, "text after the JSON value, which ends at byte %zu", e->end_off);
    return cw_fail_json(w, msg);
  }
  if (e->scalar_top) return cw_fail(w, CHATWIRE_E_NOT_OBJECT, "", 0);
  if (e->error) {
    w->why_string = e->err_string;
    return cw_fail(w, CHATWIRE_E_SERVER, e->scratch.p + e->err.off, e->err.len);
  }
  if (e->bad.set) return cw_fail(w, CHATWIRE_E_MALFORMED, e->bad.msg, strlen(e->bad.msg));
  size_t ncalls;
  if (!cw_place(e, &ncalls)) return -1;
  if (ncalls > CW_MAX_CALLS) {
    snprintf(msg, sizeof msg, "more than %d tool calls in one answer", CW_MAX_CALLS);
    return cw_fail(w, CHATWIRE_E_MALFORMED, msg, strlen(msg));
  }
  if (!cw_apply(w, e, ncalls)) return -1;
  return 1;
}

/* Orders by `order`, then by position (qsort is not stable). */
static int cw_order_cmp(const void *a, const void *b, const chatwire *w) {
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  long long oi = w->calls[i].order, oj = w->calls[j].order;
  if (oi != oj) return oi < oj ? -1 : 1;
  return i < j ? -1 : i > j;
}

void chatwire_order(const chatwire *w, size_t *at) {
  /* insertion sort: an answer holds a few calls (at most CW_MAX_CALLS), and qsort takes
   * no context without file-scope state */
  for (size_t i = 0; i < w->ncalls; i++) {
    size_t k = i;
    while (k > 0 && cw_order_cmp(&i, &at[k - 1], w) < 0) {
      at[k] = at[k - 1];
      k--;
    }
    at[k] = i;
  }
}
