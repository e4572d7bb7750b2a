/* lhttp.c: Lua module `orket.c.http`, the binding of http.c. request{...} starts a transfer
 * and returns a request object whose headers() and read() suspend the calling task (the
 * await.h pattern) until the response has something for it. The client behind it (libcurl
 * multi + handles) is created on first use and freed with the Lua state. With decode=, a
 * streamed chat response is decoded as it arrives (chatwire.h) instead of queued. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "await.h"
#include "budget.h"
#include "chatwire.h"
#include "http.h"
#include "lhttp.h"
#include "ljsonout.h"
#include "modules.h"
#include "runtime.h"

#define LH_REQ "orket.http.request"
#define LH_CLIENT "orket.http.client"
#define LH_MAX_HEADERS 64

static const char LH_CLIENT_KEY = 'c'; /* registry key: the runtime's client box */

typedef struct lh_client {
  http_client *c;
} lh_client;

enum { LH_IDLE, LH_WAIT_HEADERS, LH_WAIT_READ };

typedef struct lh_req {
  rt_wait w;      /* first: the cancel callback gets this address */
  http_req *r;    /* NULL once closed */
  int waiting;
  int decode;     /* decode=: 1 + chatwire_kind, else 0 */
  chatwire *cw;   /* the decoded response so far; made with the first event (a request
                     waiting for its answer holds nothing for it) */
  uint64_t first_delta_ns; /* when the first content or tool-call piece was decoded */
} lh_req;

/* ---- the client ---------------------------------------------------------------------- */

static int lh_client_gc(lua_State *L) {
  lh_client *cl = luaL_checkudata(L, 1, LH_CLIENT);
  if (cl->c) {
    http_client_free(cl->c);
    cl->c = NULL;
  }
  return 0;
}

http_client *lhttp_client(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &LH_CLIENT_KEY) == LUA_TUSERDATA) {
    lh_client *cl = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return cl->c;
  }
  lua_pop(L, 1);
  lh_client *cl = lua_newuserdatauv(L, sizeof *cl, 0);
  cl->c = NULL; /* created closed, then the resource: an error half-way leaks nothing */
  if (luaL_newmetatable(L, LH_CLIENT)) {
    lua_pushcfunction(L, lh_client_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  char err[256];
  cl->c = http_client_new(&rt_get(L)->loop, err, sizeof err);
  if (cl->c == NULL) luaL_error(L, "http: %s", err);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &LH_CLIENT_KEY);
  return cl->c;
}

/* ---- results ------------------------------------------------------------------------- */

/* nil, message, code, phase for a failed request. */
static int lh_push_error(lua_State *L, http_req *r) {
  const char *msg, *phase;
  const char *code = http_error(r, &msg, &phase);
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushstring(L, code);
  if (phase) lua_pushstring(L, phase);
  else lua_pushnil(L);
  return 4;
}

/* status, headers (lower-cased names; repeated names joined by ", ") | nil, msg, code, phase */
static int lh_push_headers(lua_State *L, void *ud) {
  http_req *r = ((lh_req *)ud)->r;
  if (!http_headers_done(r)) return lh_push_error(L, r);
  lua_pushinteger(L, http_status(r));
  size_t n = http_header_count(r);
  lua_createtable(L, 0, (int)(n < LH_MAX_HEADERS ? n : LH_MAX_HEADERS));
  for (size_t i = 0; i < n; i++) {
    const char *name, *value;
    http_header_at(r, i, &name, &value);
    if (lua_getfield(L, -1, name) == LUA_TSTRING) {
      lua_pushliteral(L, ", ");
      lua_pushstring(L, value);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushstring(L, value);
    }
    lua_setfield(L, -2, name);
  }
  return 2;
}

/* {event, ...} while events are queued | false at a clean end | nil, msg, code, phase */
static int lh_push_read(lua_State *L, void *ud) {
  http_req *r = ((lh_req *)ud)->r;
  size_t n = http_event_count(r);
  if (n > 0) {
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
      const char *p;
      size_t len;
      http_event_at(r, i, &p, &len);
      lua_pushlstring(L, p, len);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    http_events_clear(r);
    return 1;
  }
  if (http_error(r, NULL, NULL)) return lh_push_error(L, r);
  lua_pushboolean(L, 0);
  return 1;
}

static int lh_ready_read(http_req *r) { return http_event_count(r) > 0 || http_finished(r); }

/* With decode=, the headers of a 2xx response are handed over together with the body's
 * end (or the first event the decoder leaves to Lua), so the task wakes once per response
 * instead of twice: nobody acts on a decoded stream's headers before its end. */
static int lh_ready_headers(const lh_req *q) {
  http_req *r = q->r;
  if (!http_headers_done(r)) return http_finished(r);
  if (q->decode && http_status(r) >= 200 && http_status(r) <= 299) return lh_ready_read(r);
  return 1;
}

static void lh_notify(http_req *r, void *ud) {
  lh_req *q = ud;
  if (q->waiting == LH_WAIT_HEADERS && lh_ready_headers(q)) {
    q->waiting = LH_IDLE;
    rt_wait_finish(&q->w, lh_push_headers, q);
  } else if (q->waiting == LH_WAIT_READ && lh_ready_read(r)) {
    q->waiting = LH_IDLE;
    rt_wait_finish(&q->w, lh_push_read, q);
  }
}

/* The waiting task was cancelled: stop the transfer at once; it is not resumed. */
static void lh_cancel(rt_wait *w) {
  lh_req *q = (lh_req *)w;
  q->waiting = LH_IDLE;
  if (q->r) http_abort(q->r, HTTP_E_CANCELED, "canceled");
}

/* ---- decoding ------------------------------------------------------------------------ */

static const char *const lh_decoders[] = {"openai", "ollama", NULL};
static const chatwire_kind lh_decoder_kinds[] = {CHATWIRE_OPENAI, CHATWIRE_OLLAMA};

static int lh_take(void *ud, const char *data, size_t len) {
  lh_req *q = ud;
  if (q->cw == NULL) {
    q->cw = malloc(sizeof *q->cw);
    if (q->cw == NULL) return -1;
    chatwire_init(q->cw, (chatwire_kind)(q->decode - 1));
  }
  int before = q->cw->deltas;
  int rc = chatwire_take(q->cw, data, len);
  if (rc > 0 && before == 0 && q->cw->deltas > 0) q->first_delta_ns = budget_now_ns();
  return rc;
}

static void lh_push_buf(lua_State *L, const chatwire_buf *b) {
  lua_pushlstring(L, b->p ? b->p : "", b->len);
}

static const char *const lh_failures[] = {NULL, "json", "not_object", "error", "malformed"};

/* A count into the table on top, when one arrived: an integer, or the number as it
 * arrived when it is no whole number (the caller refuses it). */
static void lh_set_count(lua_State *L, const chatwire_int *c, const char *field) {
  if (!c->set) return;
  if (c->whole) lua_pushinteger(L, (lua_Integer)c->v);
  else lua_pushnumber(L, (lua_Number)c->num);
  lua_setfield(L, -2, field);
}

/* The decoded state as a table: {content=, calls={{id=, name=, arguments=, arguments_json=},
 * ...}, finish=, usage={prompt=, completion=} | nil, id=, model=, done=, deltas=,
 * first_delta_ms=, failed=, why=, why_string=} (absent fields are nil; see chatwire.h for
 * what each means). calls are in the answer's order (chatwire_order: by index). */
static void lh_push_decoded(lua_State *L, const chatwire *w, uint64_t first_delta_ns) {
  lua_createtable(L, 0, 10);
  lh_push_buf(L, &w->content);
  lua_setfield(L, -2, "content");
  size_t ncalls = w->ncalls;
  /* a userdata, so that a Lua error (out of memory) below cannot leak it */
  size_t *order = ncalls ? lua_newuserdatauv(L, ncalls * sizeof *order, 0) : NULL;
  if (order) chatwire_order(w, order);
  lua_createtable(L, (int)ncalls, 0);
  for (size_t i = 0; i < ncalls; i++) {
    const chatwire_call *c = &w->calls[order[i]];
    lua_createtable(L, 0, 4);
    if (c->has_id) {
      lh_push_buf(L, &c->id);
      lua_setfield(L, -2, "id");
    }
    if (c->has_name) {
      lh_push_buf(L, &c->name);
      lua_setfield(L, -2, "name");
    }
    if (c->has_args || w->kind == CHATWIRE_OPENAI) {
      lh_push_buf(L, &c->args);
      lua_setfield(L, -2, "arguments");
    }
    if (c->args_json) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "arguments_json");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  if (order) lua_remove(L, -2); /* the order's userdata, below the list */
  lua_setfield(L, -2, "calls");
  if (w->has_finish) {
    lh_push_buf(L, &w->finish);
    lua_setfield(L, -2, "finish");
  }
  if (w->has_usage) {
    lua_createtable(L, 0, 2);
    lh_set_count(L, &w->prompt, "prompt");
    lh_set_count(L, &w->completion, "completion");
    lh_set_count(L, &w->cached, "cached");
    lua_setfield(L, -2, "usage");
  }
  if (w->has_id) {
    lh_push_buf(L, &w->id);
    lua_setfield(L, -2, "id");
  }
  if (w->has_model) {
    lh_push_buf(L, &w->model);
    lua_setfield(L, -2, "model");
  }
  lua_pushboolean(L, w->done);
  lua_setfield(L, -2, "done");
  lua_pushinteger(L, w->deltas);
  lua_setfield(L, -2, "deltas");
  if (first_delta_ns) {
    lua_pushnumber(L, (lua_Number)first_delta_ns / 1e6); /* runtime.now()'s clock */
    lua_setfield(L, -2, "first_delta_ms");
  }
  if (w->failed) {
    lua_pushstring(L, lh_failures[w->failed]);
    lua_setfield(L, -2, "failed");
    lh_push_buf(L, &w->why);
    lua_setfield(L, -2, "why");
    lua_pushboolean(L, w->why_string);
    lua_setfield(L, -2, "why_string");
  }
}

/* ---- the request object -------------------------------------------------------------- */

static lh_req *lh_check(lua_State *L) {
  lh_req *q = luaL_checkudata(L, 1, LH_REQ);
  if (q->r == NULL) luaL_argerror(L, 1, "request is closed");
  return q;
}

static int lh_wait(lua_State *L, int kind) {
  lh_req *q = lh_check(L);
  if (q->waiting) return luaL_error(L, "http: another task already waits on this request");
  int ready = kind == LH_WAIT_HEADERS ? lh_ready_headers(q) : lh_ready_read(q->r);
  rt_wait_push_fn push = kind == LH_WAIT_HEADERS ? lh_push_headers : lh_push_read;
  if (ready) return push(L, q);
  rt_wait_begin(L, &q->w, lh_cancel);
  q->waiting = kind;
  return rt_wait_yield(L);
}

/* req:headers() -> status, headers | nil, message, code, phase (waits for them) */
static int lh_headers(lua_State *L) { return lh_wait(L, LH_WAIT_HEADERS); }

/* req:read() -> array of events | false at the end | nil, message, code, phase (waits) */
static int lh_read(lua_State *L) { return lh_wait(L, LH_WAIT_READ); }

/* req:framing() -> "raw" | "sse" | "ndjson": how the body is split into read()'s events */
static int lh_framing(lua_State *L) {
  lh_req *q = luaL_checkudata(L, 1, LH_REQ);
  static const char *const names[] = {"raw", "sse", "ndjson"};
  lua_pushstring(L, q->r ? names[http_framing(q->r)] : "raw");
  return 1;
}

/* req:ready() -> whether read() answers at once: events are queued, or the transfer has
 * ended (then read() gives false, or the error). A caller can take what has arrived
 * without waiting for more. */
static int lh_ready(lua_State *L) {
  lh_req *q = lh_check(L);
  lua_pushboolean(L, lh_ready_read(q->r));
  return 1;
}

/* req:decoded() -> the decoded state so far (see lh_push_decoded) | nil without decode=.
 * Events it refused (and all after them) come from req:read() as usual. */
static int lh_decoded(lua_State *L) {
  lh_req *q = lh_check(L);
  if (!q->decode) return 0;
  if (q->cw) {
    lh_push_decoded(L, q->cw, q->first_delta_ns);
  } else { /* no event yet */
    chatwire w;
    chatwire_init(&w, (chatwire_kind)(q->decode - 1));
    lh_push_decoded(L, &w, 0);
  }
  return 1;
}

/* req:received() -> body bytes received so far */
static int lh_received(lua_State *L) {
  lh_req *q = lh_check(L);
  lua_pushinteger(L, (lua_Integer)http_received(q->r));
  return 1;
}

/* req:sent() -> true when the whole request body went out (also after an abort) */
/* req:stream_done() -> whether the SSE stream ended with [DONE] (a stream known whole) */
static int lh_stream_done(lua_State *L) {
  lh_req *q = lh_check(L);
  lua_pushboolean(L, http_stream_done(q->r));
  return 1;
}

static int lh_sent(lua_State *L) {
  lh_req *q = lh_check(L);
  lua_pushboolean(L, http_body_sent(q->r));
  return 1;
}

/* req:close(): aborts the transfer if it still runs and frees it. Idempotent. */
static int lh_close(lua_State *L) {
  lh_req *q = luaL_checkudata(L, 1, LH_REQ);
  if (q->r) {
    if (q->waiting && q->w.co_ref != LUA_NOREF) {
      /* closed by another task while one waits: that task gets the error now */
      q->waiting = LH_IDLE;
      http_abort(q->r, HTTP_E_CANCELED, "closed while waiting");
      rt_wait_finish(&q->w, lh_push_read, q);
      if (q->r == NULL) return 0; /* that task closed it meanwhile */
    }
    http_release(q->r);
    q->r = NULL;
    lua_getiuservalue(L, 1, 1); /* the body is no longer sent: a buffer can be freed */
    ljo_pin(L, -1, -1);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setiuservalue(L, 1, 1);
  }
  if (q->cw) {
    chatwire_free(q->cw);
    free(q->cw);
    q->cw = NULL;
  }
  return 0;
}

static int lh_tostring(lua_State *L) {
  lh_req *q = luaL_checkudata(L, 1, LH_REQ);
  if (q->r == NULL) lua_pushliteral(L, "http request (closed)");
  else lua_pushfstring(L, "http request (%s)", http_finished(q->r) ? "finished" : "running");
  return 1;
}

/* ---- request{...} ------------------------------------------------------------------- */

static long lh_opt_ms(lua_State *L, const char *field) {
  lua_getfield(L, 1, field);
  lua_Number v = luaL_optnumber(L, -1, 0);
  lua_pop(L, 1);
  if (v < 0 || v > 86400000.0) luaL_error(L, "bad argument #1 to 'request' (%s must be between 0 and 86400000)", field);
  return (long)v;
}

static size_t lh_opt_size(lua_State *L, const char *field) {
  lua_getfield(L, 1, field);
  lua_Integer v = luaL_optinteger(L, -1, 0);
  lua_pop(L, 1);
  if (v < 0) luaL_error(L, "bad argument #1 to 'request' (%s must not be negative)", field);
  return (size_t)v;
}

/* request{url=, method=, headers={"Name: value", ...}, body=, framing="sse"|"ndjson"|"raw"|"auto",
 *   connect_timeout_ms=, first_byte_timeout_ms=, idle_timeout_ms=, total_timeout_ms=,
 *   max_bytes=, max_event=, max_queued=, unix_socket="/abs/path"} -> req | nil, message, code
 * Starts the transfer now; read it with req:headers() and req:read(). unix_socket: connect
 * there instead of the URL's host (a sandbox's relay); the URL still gives Host and path.
 * framing="auto": SSE when a 2xx answer's Content-Type is text/event-stream, else raw
 * (req:framing() tells which, once the headers are in). */
static int lh_request(lua_State *L) {
  static const char *const framings[] = {"raw", "sse", "ndjson", "auto", NULL};
  static const frame_mode modes[] = {FRAME_RAW, FRAME_SSE, FRAME_NDJSON, FRAME_SSE};
  luaL_checktype(L, 1, LUA_TTABLE);
  http_opts o;
  memset(&o, 0, sizeof o);
  lua_getfield(L, 1, "url");
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "bad argument #1 to 'request' (url must be a string)");
  o.url = lua_tostring(L, -1);
  if (strncmp(o.url, "http://", 7) != 0 && strncmp(o.url, "https://", 8) != 0)
    luaL_error(L, "bad argument #1 to 'request' (url must start with http:// or https://)");
  lua_getfield(L, 1, "method");
  o.method = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 1, "body");
  const jsonout_buf *jb = ljo_testbuf(L, -1); /* JSON made in C, outside the Lua heap */
  if (jb) {
    o.body = jb->p ? jb->p : "";
    o.body_len = jb->len;
  } else {
    o.body = luaL_optlstring(L, -1, NULL, &o.body_len);
  }
  int body_idx = lua_gettop(L);
  lua_getfield(L, 1, "framing");
  int fi = luaL_checkoption(L, -1, "raw", framings);
  o.framing = modes[fi];
  o.framing_by_type = fi == 3;
  o.connect_timeout_ms = lh_opt_ms(L, "connect_timeout_ms");
  o.first_byte_timeout_ms = lh_opt_ms(L, "first_byte_timeout_ms");
  o.idle_timeout_ms = lh_opt_ms(L, "idle_timeout_ms");
  o.total_timeout_ms = lh_opt_ms(L, "total_timeout_ms");
  o.max_bytes = lh_opt_size(L, "max_bytes");
  o.max_event = lh_opt_size(L, "max_event");
  o.max_queued = lh_opt_size(L, "max_queued");
  int ut = lua_getfield(L, 1, "unix_socket");
  if (ut != LUA_TNIL) {
    size_t ulen;
    const char *u = ut == LUA_TSTRING ? lua_tolstring(L, -1, &ulen) : NULL;
    /* 108: a unix socket address's path, with its NUL */
    if (u == NULL || u[0] != '/' || strlen(u) != ulen || ulen >= 108)
      luaL_error(L, "bad argument #1 to 'request' (unix_socket must be an absolute path shorter than 108 bytes)");
    o.unix_socket = u;
  }
  int decode = -1;
  if (lua_getfield(L, 1, "decode") != LUA_TNIL) {
    const char *d = lua_tostring(L, -1);
    for (int i = 0; d && lh_decoders[i]; i++)
      if (strcmp(d, lh_decoders[i]) == 0) decode = i;
    if (decode < 0) luaL_error(L, "bad argument #1 to 'request' (decode must be \"openai\" or \"ollama\")");
    /* a decoder reads one framing, known before the answer */
    if (o.framing_by_type) luaL_error(L, "bad argument #1 to 'request' (decode needs framing \"sse\" or \"ndjson\", not \"auto\")");
  }
  const char *hdrs[LH_MAX_HEADERS];
  if (lua_getfield(L, 1, "headers") == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, -1);
    if (n > LH_MAX_HEADERS) luaL_error(L, "bad argument #1 to 'request' (more than %d headers)", LH_MAX_HEADERS);
    luaL_checkstack(L, (int)n, "headers");
    for (lua_Integer i = 1; i <= n; i++) {
      if (lua_rawgeti(L, -1 - (int)(i - 1), i) != LUA_TSTRING)
        luaL_error(L, "bad argument #1 to 'request' (headers[%d] must be a string)", (int)i);
      const char *h = lua_tostring(L, -1);
      if (strpbrk(h, "\r\n")) luaL_error(L, "bad argument #1 to 'request' (headers[%d] contains a line break)", (int)i);
      hdrs[i - 1] = h;
    }
    o.headers = hdrs;
    o.nheaders = (size_t)n;
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "bad argument #1 to 'request' (headers must be a table)");
  }
  /* Create the object closed, then start the transfer. */
  http_client *c = lhttp_client(L);
  lh_req *q = lua_newuserdatauv(L, sizeof *q, 1);
  memset(q, 0, sizeof *q);
  q->w.co_ref = LUA_NOREF;
  luaL_setmetatable(L, LH_REQ);
  lua_pushvalue(L, body_idx); /* libcurl sends the body from the Lua string or buffer: keep it */
  lua_setiuservalue(L, -2, 1);
  if (decode >= 0 && o.framing != FRAME_RAW) {
    q->decode = 1 + (int)lh_decoder_kinds[decode];
    o.take = lh_take;
    o.take_ud = q;
  }
  char err[512];
  q->r = http_start(c, &o, lh_notify, q, err, sizeof err);
  if (q->r == NULL) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushliteral(L, HTTP_E_PROTOCOL);
    return 3;
  }
  ljo_pin(L, body_idx, 1); /* buf:free() raises until close: libcurl reads the bytes */
  return 1;
}

/* parse_date(s) -> seconds since the epoch | nil (an HTTP date, as in Retry-After) */
static int lh_parse_date(lua_State *L) {
  long long t = http_parse_date(luaL_checkstring(L, 1));
  if (t < 0) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)t);
  return 1;
}

/* origin(url) -> "scheme://host[:port]" | nil when url has no "://" (a relative reference):
 * the URL as messages may show it (http_origin: no user info, path or query) */
static int lh_origin(lua_State *L) {
  const char *url = luaL_checkstring(L, 1);
  char out[256];
  if (!http_is_absolute(url)) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, out, http_origin(out, sizeof out, url));
  return 1;
}

/* decoder(kind) -> a decoder of one response's events outside a request (for callers that
 * take each piece as it comes, and whole bodies): the chatwire state in a userdata, so that
 * a Lua error while it is in use still frees its buffers. */
#define LH_DECODER "orket.http.decoder"

static int lh_decoder_gc(lua_State *L) {
  chatwire_free(luaL_checkudata(L, 1, LH_DECODER)); /* idempotent */
  return 0;
}

static int lh_decoder(lua_State *L) {
  chatwire_kind kind = lh_decoder_kinds[luaL_checkoption(L, 1, NULL, lh_decoders)];
  chatwire *w = lua_newuserdatauv(L, sizeof *w, 0);
  chatwire_init(w, kind);
  luaL_setmetatable(L, LH_DECODER);
  return 1;
}

typedef struct lh_pieces {
  lua_State *L;
  int list; /* stack index of the table receiving them */
  int n;
} lh_pieces;

/* One piece as orket.llm's on_delta sees it: {type="content", text=} or {type="tool_call",
 * index=, id=, name= (the call's so far), arguments_delta=, arguments_json=}. */
static void lh_piece(void *ud, const chatwire *w, const chatwire_piece *p) {
  lh_pieces *c = ud;
  lua_State *L = c->L;
  lua_createtable(L, 0, 5);
  lua_pushstring(L, p->is_call ? "tool_call" : "content");
  lua_setfield(L, -2, "type");
  if (!p->is_call) {
    lua_pushlstring(L, p->text, p->len);
    lua_setfield(L, -2, "text");
  } else {
    lua_pushinteger(L, (lua_Integer)p->index + 1);
    lua_setfield(L, -2, "index");
    if (p->call->has_id) {
      lh_push_buf(L, &p->call->id);
      lua_setfield(L, -2, "id");
    }
    if (p->call->has_name) {
      lh_push_buf(L, &p->call->name);
      lua_setfield(L, -2, "name");
    }
    if (p->text) {
      lua_pushlstring(L, p->text, p->len);
      lua_setfield(L, -2, "arguments_delta");
    }
    if (w->kind == CHATWIRE_OLLAMA && p->call->args_json) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "arguments_json");
    }
  }
  lua_rawseti(L, c->list, ++c->n);
}

/* dec:take(data [, list]) -> n | nil, failed, why, why_string: one event (or a whole body).
 * n counts its pieces (with list, each is appended to it as lh_piece makes it; without,
 * n is 1 when it had any). A failure is sticky, as in chatwire_take. */
static int lh_decoder_take(lua_State *L) {
  chatwire *w = luaL_checkudata(L, 1, LH_DECODER);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  lh_pieces ctx = {L, 3, 0};
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    w->piece = lh_piece;
    w->piece_ud = &ctx;
  }
  int before = w->deltas;
  int rc = chatwire_take(w, s, len);
  w->piece = NULL;
  w->piece_ud = NULL;
  if (rc < 0) return luaL_error(L, "http: out of memory");
  if (rc == 0) {
    lua_pushnil(L);
    lua_pushstring(L, lh_failures[w->failed]);
    lh_push_buf(L, &w->why);
    lua_pushboolean(L, w->why_string);
    return 4;
  }
  lua_pushinteger(L, ctx.n ? ctx.n : w->deltas - before);
  return 1;
}

/* dec:result() -> the decoded state (see lh_push_decoded) */
static int lh_decoder_result(lua_State *L) {
  lh_push_decoded(L, luaL_checkudata(L, 1, LH_DECODER), 0);
  return 1;
}

/* live() -> requests not yet closed (for leak checks in tests) */
static int lh_live(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &LH_CLIENT_KEY) != LUA_TUSERDATA) {
    lua_pushinteger(L, 0);
    return 1;
  }
  lh_client *cl = lua_touserdata(L, -1);
  lua_pushinteger(L, cl->c ? (lua_Integer)http_live(cl->c) : 0);
  return 1;
}

static const luaL_Reg lh_methods[] = {
    {"headers", lh_headers},
    {"read", lh_read},
    {"ready", lh_ready},
    {"framing", lh_framing},
    {"received", lh_received},
    {"sent", lh_sent},
    {"stream_done", lh_stream_done},
    {"decoded", lh_decoded},
    {"close", lh_close},
    {NULL, NULL},
};

static const luaL_Reg lh_meta[] = {
    {"__gc", lh_close},
    {"__close", lh_close},
    {"__tostring", lh_tostring},
    {NULL, NULL},
};

static const luaL_Reg lh_funcs[] = {
    {"request", lh_request},
    {"parse_date", lh_parse_date},
    {"origin", lh_origin},
    {"decoder", lh_decoder},
    {"live", lh_live},
    {NULL, NULL},
};

int luaopen_orket_http(lua_State *L) {
  if (luaL_newmetatable(L, LH_REQ)) {
    luaL_setfuncs(L, lh_meta, 0);
    luaL_newlib(L, lh_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LH_DECODER)) {
    lua_pushcfunction(L, lh_decoder_gc);
    lua_setfield(L, -2, "__gc");
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, lh_decoder_take);
    lua_setfield(L, -2, "take");
    lua_pushcfunction(L, lh_decoder_result);
    lua_setfield(L, -2, "result");
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, lh_funcs);
  return 1;
}
