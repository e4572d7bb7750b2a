/* lhttpd.c: Lua module `orket.c.httpd`, the binding of httpd.c. listen{...} starts a server
 * on the runtime's loop; srv:accept() suspends the calling task (the await.h pattern) until
 * a request's headers are in; the request's body() and a stream's drain()/wait() suspend
 * likewise. A request not answered when it is closed or collected gets a 500. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>
#include <lua.h>

#include "await.h"
#include "health.h"
#include "httpd.h"
#include "httpproxy.h"
#include "lhealth.h"
#include "lhttp.h"
#include "lratelimit.h"
#include "lstore.h"
#include "modules.h"
#include "proxymemo.h"
#include "runtime.h"

#define LHD_SRV "orket.httpd.server"
#define LHD_REQ "orket.httpd.request"
#define LHD_BLOB "orket.httpd.blob"
#define LHD_KEPT "orket.httpd.proxy_kept"
#define LHD_TALLY "orket.httpd.proxy_tally"
#define LHD_MAX_HEADERS 64

typedef struct lhd_srv {
  rt_wait w; /* first: the cancel callback gets this address */
  httpd *h;  /* NULL once closed */
  int waiting;
  lua_State *L;  /* the main thread, where quick answers are asked for */
  /* {fn, the server} while quick paths are set (LUA_NOREF: none): the server is kept from
   * collection as long as libmicrohttpd may call into it with its address */
  int quick_ref;
  int in_quick;  /* inside it, or a refusal's log function (srv:refusals): the server may not
                    be closed (libmicrohttpd is running) */
  httpd_quick_fn c_quick; /* an answer in C set instead of fn (orket.c.health), and its ud */
  void *c_quick_ud;
  /* {tally, the server} while the requests refused at their headers are counted and logged
   * by the tally (srv:refusals; LUA_NOREF: none), the server kept as quick_ref keeps it */
  int refused_ref;
  struct lhd_tally *refused;
  /* the proxy's memory (srv:proxy_memo): NULL while off; the store whose stamp it reads
   * and the limiters it takes from, referenced (conn_ref, ...) while it is on */
  proxymemo *memo;
  void *memo_conn;
  ratelimit *by_addr, *by_key;
  int *addr_lent, *key_lent;
  int conn_ref, addr_ref, key_ref;
  /* while the memory is on: its timer (its own block, freed once libuv has closed it; data
   * is this server, NULL once off), which sweeps what no longer holds and ends, outside
   * libmicrohttpd's dispatch, the requests whose pump failed to start (fast_failed) */
  uv_timer_t *memo_timer;
  struct lhd_fast *fast_failed;
  struct lhd_fast *fast_running; /* its requests proxied from the memory whose pump runs */
  lua_Integer fast_serial;       /* the last number given one of them (srv:proxy_running) */
} lhd_srv;

enum { LHD_IDLE, LHD_WAIT_BODY, LHD_WAIT_DRAIN, LHD_WAIT_GONE, LHD_WAIT_PROXY, LHD_ENDS_IN_C };

typedef struct lhd_tally lhd_tally;

typedef struct lhd_req {
  rt_wait w;
  httpd_req *r; /* NULL once closed */
  int waiting;
  httpproxy *px; /* while req:proxy pumps */
  /* req:proxy{..., tally=}: the pump ends the request in C (LHD_ENDS_IN_C); the request
   * and the options' table are kept from collection until then */
  lhd_tally *tally;
  int self_ref, opts_ref;
  uint64_t t0;
  int cut; /* req:cut ended it: its log line says so */
} lhd_req;

static void lhd_tally_drop(lua_State *L, lhd_req *q);
static void lhd_memo_put(lua_State *L, lhd_req *q, int t, int64_t own, int64_t dv, double until_ms,
                         const char *rate_key);

/* ---- requests -------------------------------------------------------------------------- */

static int lhd_ready(const lhd_req *q, int kind) {
  httpd_req *r = q->r;
  switch (kind) {
  case LHD_WAIT_BODY: return httpd_body_state(r) != HTTPD_BODY_READING;
  case LHD_WAIT_DRAIN: return httpd_gone(r) || httpd_stream_drained(r);
  case LHD_WAIT_GONE: return httpd_gone(r);
  default: return 0;
  }
}

/* body | nil, message, code */
static int lhd_push_body(lua_State *L, void *ud) {
  httpd_req *r = ((lhd_req *)ud)->r;
  switch (httpd_body_state(r)) {
  case HTTPD_BODY_DONE: {
    size_t len;
    const char *b = httpd_body(r, &len);
    lua_pushlstring(L, b, len);
    return 1;
  }
  case HTTPD_BODY_TOO_LARGE:
    lua_pushnil(L);
    lua_pushliteral(L, "the request body is larger than the server accepts");
    lua_pushliteral(L, "E2BIG");
    return 3;
  case HTTPD_BODY_BUSY:
    lua_pushnil(L);
    lua_pushliteral(L, "the server holds as many request bodies as it takes at once");
    lua_pushliteral(L, "EBUSY");
    return 3;
  case HTTPD_BODY_TIMEOUT:
    lua_pushnil(L);
    lua_pushliteral(L, "the request body did not arrive in time");
    lua_pushliteral(L, "ETIMEDOUT");
    return 3;
  case HTTPD_BODY_STOPPED: /* answered 503 already: the owner's log says so */
    lua_pushnil(L);
    lua_pushliteral(L, "the server is stopping");
    lua_pushliteral(L, "ESHUTDOWN");
    return 3;
  default:
    lua_pushnil(L);
    lua_pushliteral(L, "the client is gone");
    lua_pushliteral(L, "EPIPE");
    return 3;
  }
}

static int lhd_push_gone(lua_State *L, void *ud) {
  lua_pushboolean(L, httpd_gone(((lhd_req *)ud)->r));
  return 1;
}

static void lhd_notify(httpd_req *r, void *ud) {
  lhd_req *q = ud;
  (void)r;
  if (q->waiting == LHD_IDLE || !lhd_ready(q, q->waiting)) return;
  int kind = q->waiting;
  q->waiting = LHD_IDLE;
  rt_wait_finish(&q->w, kind == LHD_WAIT_BODY ? lhd_push_body : lhd_push_gone, q);
}

static void lhd_req_cancel(rt_wait *w) { ((lhd_req *)w)->waiting = LHD_IDLE; }

static lhd_req *lhd_check(lua_State *L) {
  lhd_req *q = luaL_checkudata(L, 1, LHD_REQ);
  if (q->r == NULL) luaL_argerror(L, 1, "request is closed");
  return q;
}

static int lhd_wait(lua_State *L, lhd_req *q, int kind, rt_wait_push_fn push) {
  if (q->waiting) return luaL_error(L, "httpd: another task already waits on this request");
  if (lhd_ready(q, kind)) return push(L, q);
  rt_wait_begin(L, &q->w, lhd_req_cancel); /* may raise (not in a task): marked only after */
  q->waiting = kind;
  return rt_wait_yield(L);
}

/* req:body() -> body | nil, message, code (E2BIG, EBUSY, ETIMEDOUT, ESHUTDOWN, EPIPE); waits for it */
static int lhd_body(lua_State *L) {
  lhd_req *q = lhd_check(L);
  httpd_read_body(q->r);
  return lhd_wait(L, q, LHD_WAIT_BODY, lhd_push_body);
}

/* Header lines from a table {"Name: value", ...} at index idx (absent: none). */
static size_t lhd_header_lines(lua_State *L, int idx, const char **out, int argn) {
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer n = luaL_len(L, idx);
  if (n > LHD_MAX_HEADERS) luaL_argerror(L, argn, "too many headers");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (s == NULL || strpbrk(s, "\r\n") || strchr(s, ':') == NULL)
      luaL_argerror(L, argn, "headers must be \"Name: value\" strings without line breaks");
    out[i - 1] = s;
    lua_pop(L, 1); /* the table keeps the string alive */
  }
  return (size_t)n;
}

/* ---- the proxy -------------------------------------------------------------------------- */

/* Strings from the array in field `name` of the table at index t (absent: none); fn names
 * the function in messages. */
static size_t lhd_proxy_strings(lua_State *L, int t, const char *fn, const char *name, const char **out, int lines) {
  if (lua_getfield(L, t, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "bad argument #1 to '%s' (%s must be an array of strings)", fn, name);
  lua_Integer n = luaL_len(L, -1);
  if (n > LHD_MAX_HEADERS) luaL_error(L, "bad argument #1 to '%s' (%s holds more than %d)", fn, name, LHD_MAX_HEADERS);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (v == NULL || strpbrk(v, "\r\n") || (lines && strchr(v, ':') == NULL))
      luaL_error(L, "bad argument #1 to '%s' (%s[%d] must be a %s without line breaks)", fn, name, (int)i,
                 lines ? "\"Name: value\" string" : "string");
    out[i - 1] = v;
    lua_pop(L, 1); /* the table, on the stack until the pump has copied them, keeps it */
  }
  lua_pop(L, 1);
  return (size_t)n;
}

/* Names the pump never passes on (in pass_in) or back (pass): they frame this hop's request
 * or answer, which is the server's own. */
static void lhd_proxy_check_pass(lua_State *L, const char *fn, const char *what, const char *const *pass, size_t n) {
  static const char *const hop[] = {"connection", "content-length", "keep-alive", "proxy-connection",
                                    "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade",
                                    /* a request's own: libcurl sets them for the upstream */
                                    "host", "expect", "proxy-authorization"};
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < sizeof hop / sizeof hop[0]; j++) /* (first letters first: 81 calls a request) */
      if ((pass[i][0] | 0x20) == hop[j][0] && strcasecmp(pass[i], hop[j]) == 0)
        luaL_error(L, "bad argument #1 to '%s' (%s[%d] names %s, which belongs to this hop)", fn, what, (int)i + 1,
                   hop[j]);
    for (size_t j = 0; j < i; j++) /* a name twice would pass its header twice */
      if (strcasecmp(pass[i], pass[j]) == 0)
        luaL_error(L, "bad argument #1 to '%s' (%s[%d] names %s again)", fn, what, (int)i + 1, pass[j]);
  }
}

/* The method goes on the upstream's request line as given: only those serve proxies. */
static void lhd_proxy_check_method(lua_State *L, const char *m) {
  static const char *const ok[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  if (m == NULL) return;
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (strcmp(m, ok[i]) == 0) return;
  luaL_error(L, "bad argument #1 to 'proxy' (method must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)");
}

static size_t lhd_proxy_size(lua_State *L, int t, const char *fn, const char *name) {
  lua_getfield(L, t, name);
  int ok = 1;
  lua_Integer v = lua_isnil(L, -1) ? 0 : lua_tointegerx(L, -1, &ok);
  if (!ok || v < 0 || v > ((lua_Integer)1 << 40))
    luaL_error(L, "bad argument #1 to '%s' (%s must be a non-negative integer)", fn, name);
  lua_pop(L, 1);
  return (size_t)v;
}

static const char *lhd_proxy_string(lua_State *L, int t, const char *fn, const char *name, int required, size_t *len) {
  lua_getfield(L, t, name);
  if (lua_isnil(L, -1) && !required) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "bad argument #1 to '%s' (%s must be a string)", fn, name);
  const char *v = lua_tolstring(L, -1, len);
  lua_pop(L, 1); /* the table keeps it */
  return v;
}

/* The array parts of a proxy's options, pointers into the options' table. */
typedef struct lhd_proxy_lists {
  const char *lines[LHD_MAX_HEADERS], *pass[LHD_MAX_HEADERS], *cookies[LHD_MAX_HEADERS], *pass_in[LHD_MAX_HEADERS];
  const char *location_also[HTTPPROXY_LOCATION_ALSO_MAX];
} lhd_proxy_lists;

/* Whether the string on the stack's top is a header value's text the pump may match and put
 * in a Location: non-empty, no NUL (the pump would read it cut short: "http://\0x" as
 * "http://", matching every http URL), no other control byte. Popped. */
static int lhd_location_text(lua_State *L) {
  size_t len;
  const char *v = lua_tolstring(L, -1, &len);
  int ok = v != NULL && len > 0;
  for (size_t i = 0; ok && i < len; i++) ok = (unsigned char)v[i] >= 0x20 && (unsigned char)v[i] != 0x7f;
  lua_pop(L, 1);
  return ok;
}

/* The options every request to one upstream shares (see req:proxy), from the table at t. */
static void lhd_proxy_shared(lua_State *L, int t, const char *fn, httpproxy_opts *o, lhd_proxy_lists *l) {
  size_t ulen = 0;
  o->up.unix_socket = lhd_proxy_string(L, t, fn, "unix_socket", 0, &ulen);
  if (o->up.unix_socket && (o->up.unix_socket[0] != '/' || strlen(o->up.unix_socket) != ulen || ulen >= 108))
    luaL_error(L, "bad argument #1 to '%s' (unix_socket must be an absolute path shorter than 108 bytes)", fn);
  o->up.connect_timeout_ms = (long)lhd_proxy_size(L, t, fn, "connect_timeout_ms");
  o->up.total_timeout_ms = (long)lhd_proxy_size(L, t, fn, "total_timeout_ms");
  o->up.first_byte_timeout_ms = (long)lhd_proxy_size(L, t, fn, "first_byte_timeout_ms");
  o->up.idle_timeout_ms = (long)lhd_proxy_size(L, t, fn, "idle_timeout_ms");
  o->up.headers_timeout_ms = (long)lhd_proxy_size(L, t, fn, "headers_timeout_ms");
  o->up.max_bytes = lhd_proxy_size(L, t, fn, "max_bytes");
  o->up.max_queued = lhd_proxy_size(L, t, fn, "read_ahead");
  o->lines = l->lines;
  o->nlines = lhd_proxy_strings(L, t, fn, "lines", l->lines, 1);
  o->pass = l->pass;
  o->npass = lhd_proxy_strings(L, t, fn, "pass", l->pass, 0);
  lhd_proxy_check_pass(L, fn, "pass", l->pass, o->npass);
  o->pass_max = lhd_proxy_size(L, t, fn, "pass_max");
  if (lua_getfield(L, t, "cookies") != LUA_TNIL) o->cookies = l->cookies;
  lua_pop(L, 1);
  o->ncookies = lhd_proxy_strings(L, t, fn, "cookies", l->cookies, 0);
  o->pass_in = l->pass_in;
  o->npass_in = lhd_proxy_strings(L, t, fn, "pass_in", l->pass_in, 0);
  lhd_proxy_check_pass(L, fn, "pass_in", l->pass_in, o->npass_in);
  o->queue_high = lhd_proxy_size(L, t, fn, "queue_high");
  o->whole_max = lhd_proxy_size(L, t, fn, "whole_max");
  /* both or neither; each a header value's text (lhd_location_text): the from part is
   * matched at the start of the upstream's Location */
  o->location_from = lhd_proxy_string(L, t, fn, "location_from", 0, NULL);
  o->location_to = lhd_proxy_string(L, t, fn, "location_to", 0, NULL);
  int bad = (o->location_from == NULL) != (o->location_to == NULL);
  if (!bad && o->location_from) {
    lua_getfield(L, t, "location_from");
    bad = !lhd_location_text(L);
    lua_getfield(L, t, "location_to");
    bad = bad || !lhd_location_text(L);
  }
  if (bad)
    luaL_error(L, "bad argument #1 to '%s' (location_from and location_to must be given together, "
               "as non-empty strings without control bytes)", fn);
  /* Link's URLs made as Location's: a boolean, with location_from */
  int lt = lua_getfield(L, t, "location_links");
  o->location_links = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (lt != LUA_TNIL && lt != LUA_TBOOLEAN)
    luaL_error(L, "bad argument #1 to '%s' (location_links must be a boolean)", fn);
  if (o->location_links && o->location_from == NULL)
    luaL_error(L, "bad argument #1 to '%s' (location_links goes with location_from and location_to)", fn);
  /* written into a Link's "<...>" and anchor parameters: one of Link's own delimiters would
   * let it add links or parameters of its own */
  if (o->location_links && o->location_to[strcspn(o->location_to, "<>\",; \\")] != '\0')
    luaL_error(L, "bad argument #1 to '%s' (location_to holds one of < > \" , ; \\ or a space, which a Link's "
               "URL cannot: refused with location_links)", fn);
  /* more starts of the upstream's own URLs, as location_from, which they go with */
  lua_getfield(L, t, "location_also");
  int also = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!also) return;
  if (o->location_from == NULL)
    luaL_error(L, "bad argument #1 to '%s' (location_also goes with location_from and location_to)", fn);
  const char *all[LHD_MAX_HEADERS];
  size_t n = lhd_proxy_strings(L, t, fn, "location_also", all, 0);
  if (n > HTTPPROXY_LOCATION_ALSO_MAX)
    luaL_error(L, "bad argument #1 to '%s' (location_also holds more than %d)", fn, HTTPPROXY_LOCATION_ALSO_MAX);
  lua_getfield(L, t, "location_also");
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    if (!lhd_location_text(L))
      luaL_error(L, "bad argument #1 to '%s' (location_also[%d] must be a non-empty string without control bytes)",
                 fn, (int)i + 1);
    l->location_also[i] = all[i];
  }
  lua_pop(L, 1);
  o->location_also = l->location_also;
  o->nlocation_also = n;
}

/* httpd.proxy_kept{unix_socket=, connect_timeout_ms=, first_byte_timeout_ms=,
 *   idle_timeout_ms=, headers_timeout_ms=, total_timeout_ms=, max_bytes=, read_ahead=, lines=,
 *   pass=, pass_max=, cookies=, pass_in=, queue_high=, whole_max=, location_from=,
 *   location_to=, location_also=, location_links=, max_live=, max_live_each=, each_skip_local=,
 *   live_with=} -> kept:
 * those options of req:proxy checked and copied once, for the many requests to one
 * upstream (req:proxy{..., kept=}): each request then reads only its own url, method,
 * headers and body. max_live: requests proxied with it at once at most (0 or absent: no
 * bound), counted together with live_with's (another kept) when given: past it req:proxy
 * refuses (its fifth result true); max_live_each (with max_live): of those, the requests
 * from one client address at most (an IPv6 address's /64), each_skip_local: but loopback
 * and unix-socket clients held to none (httpproxy.h). */
static int lhd_kept_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  httpproxy_opts o;
  memset(&o, 0, sizeof o);
  lhd_proxy_lists l;
  lhd_proxy_shared(L, 1, "proxy_kept", &o, &l);
  o.max_live = lhd_proxy_size(L, 1, "proxy_kept", "max_live");
  o.max_live_each = lhd_proxy_size(L, 1, "proxy_kept", "max_live_each");
  if (o.max_live_each && !o.max_live)
    luaL_error(L, "bad argument #1 to 'proxy_kept' (max_live_each goes with max_live)");
  int st = lua_getfield(L, 1, "each_skip_local");
  o.each_skip_local = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (st != LUA_TNIL && st != LUA_TBOOLEAN)
    luaL_error(L, "bad argument #1 to 'proxy_kept' (each_skip_local must be a boolean)");
  if (lua_getfield(L, 1, "live_with") != LUA_TNIL) {
    httpproxy_kept **w = luaL_testudata(L, -1, LHD_KEPT);
    if (w == NULL || *w == NULL)
      luaL_error(L, "bad argument #1 to 'proxy_kept' (live_with must be an open httpd.proxy_kept)");
    o.live_with = *w;
  }
  lua_pop(L, 1);
  httpproxy_kept **k = lua_newuserdatauv(L, sizeof *k, 0);
  *k = NULL; /* made closed, then the resource */
  luaL_setmetatable(L, LHD_KEPT);
  *k = httpproxy_kept_new(&o);
  if (*k == NULL) return luaL_error(L, "out of memory");
  return 1;
}

static int lhd_kept_gc(lua_State *L) {
  httpproxy_kept **k = luaL_checkudata(L, 1, LHD_KEPT);
  httpproxy_kept_unref(*k); /* the pumps started with it hold their own references */
  *k = NULL;
  return 0;
}

static int lhd_kept_tostring(lua_State *L) {
  httpproxy_kept **k = luaL_checkudata(L, 1, LHD_KEPT);
  lua_pushstring(L, *k ? "proxy options" : "proxy options (closed)");
  return 1;
}

/* status, note | nil, message: the pump's outcome (see httpproxy_status); the pump is freed */
static int lhd_push_proxy(lua_State *L, void *ud) {
  lhd_req *q = ud;
  const char *msg;
  unsigned st = httpproxy_status(q->px, &msg);
  if (st) lua_pushinteger(L, st);
  else lua_pushnil(L);
  if (msg) lua_pushstring(L, msg);
  else lua_pushnil(L);
  lua_pushinteger(L, (lua_Integer)httpproxy_sent(q->px));
  lua_pushboolean(L, httpproxy_timed_out(q->px));
  lua_pushnil(L); /* full: it started */
  const char *phase = httpproxy_timeout_phase(q->px);
  if (phase) lua_pushstring(L, phase);
  else lua_pushnil(L);
  httpproxy_free(q->px);
  q->px = NULL;
  return 6;
}

/* nil, message: req:proxy's request was closed by another task, its pump stopped */
static int lhd_push_closed(lua_State *L, void *ud) {
  (void)ud;
  lua_pushnil(L);
  lua_pushliteral(L, "the request was closed while proxying");
  return 2;
}

static void lhd_proxy_done(httpproxy *px, void *ud) {
  lhd_req *q = ud;
  (void)px;
  q->waiting = LHD_IDLE;
  if (q->r) httpd_set_notify(q->r, lhd_notify, q);
  rt_wait_finish(&q->w, lhd_push_proxy, q);
}

/* The waiting task was cancelled: the pump stops; the request is its owner's again. */
static void lhd_proxy_cancel(rt_wait *w) {
  lhd_req *q = (lhd_req *)w;
  q->waiting = LHD_IDLE;
  httpproxy_free(q->px);
  q->px = NULL;
  if (q->r) httpd_set_notify(q->r, lhd_notify, q);
}

/* ---- the proxy's end in C ---------------------------------------------------------------- */

#define LHD_MAX_STATUS 600 /* a pump's status is 200-599, 499 or 503 (httpproxy_status) */

/* What a proxied request's end records, for every request to one route (httpd.proxy_tally):
 * the route's counts and the log line, made here, so that the request's task is not resumed
 * for them. A server's requests refused at their headers are recorded by one too
 * (srv:refusals). */
struct lhd_tally {
  lua_State *L; /* the main thread, where the log function runs */
  int log_ref;  /* LUA_NOREF once collected */
  char *route;
  double buckets[HEALTH_MAX_BUCKETS];
  size_t nbuckets;
  health_stats stats;
  uint64_t by_status[LHD_MAX_STATUS];
  char *fail_headers[LHD_MAX_HEADERS]; /* the 502's lines when nothing came to pass on */
  size_t nfail;
  size_t active; /* pumps that will end here */
  health_stamp stamp;
  jsonout_buf line;
};

/* The request no longer ends in C: its references dropped (it may be collected after). */
static void lhd_tally_drop(lua_State *L, lhd_req *q) {
  int self_ref = q->self_ref, opts_ref = q->opts_ref;
  q->tally->active--;
  q->tally = NULL;
  if (q->waiting == LHD_ENDS_IN_C) q->waiting = LHD_IDLE;
  luaL_unref(L, LUA_REGISTRYINDEX, opts_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, self_ref); /* q may be collected from here on */
}

/* What a proxied request's end in C needs beyond its tally, whichever way it started:
 * req:proxy from a task (its fields from the request's and the options' tables) or the
 * proxy's memory (from what was remembered). */
typedef struct lhd_end {
  const char *remote, *method;
  const char *key;               /* the log line's key; NULL: null */
  const char *const *more;       /* the 502's lines after the tally's */
  size_t nmore;
  const char *fail_body;         /* the 502's body */
  size_t fail_len;
  const char *timeout_body;      /* the 504's body (NULL: fail_body) */
  size_t timeout_len;
  int timed_out;                 /* nothing came in time: 504, not 502 */
  const char *headers_body;      /* the 504's body when the answer began but its headers
                                    were not complete in time (NULL: timeout_body) */
  size_t headers_len;
  const char *phase;             /* which deadline passed (httpproxy_timeout_phase) */
  const char *via;               /* the log line's via (httpd_via); NULL: none */
  const char *project;           /* the log line's project (a project's route); NULL: none */
} lhd_end;

/* The 504's body for the deadline that passed: timeout_body when nothing came (no
 * connection, no first byte), headers_body when the answer began and stopped short of its
 * headers (their deadline, or silence); fail_body when neither is given */
static const char *lhd_timeout_body(const lhd_end *e, size_t *len) {
  int begun = e->phase && (strcmp(e->phase, "headers") == 0 || strcmp(e->phase, "idle") == 0);
  if (begun && e->headers_body) {
    *len = e->headers_len;
    return e->headers_body;
  }
  if (e->timeout_body) {
    *len = e->timeout_len;
    return e->timeout_body;
  }
  *len = e->fail_len;
  return e->fail_body;
}

/* The log line's note in out: the pump's message, or, when nothing came to pass on (st 0),
 * the note's start and the message as tostring would give it. -> out, or NULL: none. */
static const char *lhd_end_note(char *out, size_t n, unsigned st, const char *msg, const char *fail_note) {
  if (st == 0) snprintf(out, n, "%s%s", fail_note ? fail_note : "", msg ? msg : "nil");
  else if (msg) snprintf(out, n, "%s", msg);
  else return NULL;
  return out;
}

/* The pump is over (freed by the caller, its status st and note taken first): the 502 when
 * nothing came to pass on (504 when nothing came in time), as the caller would answer it, then the counts, the log line (to
 * the log function, protected) and the request released (r NULL: already closed, or none:
 * a refusal's, srv:refusals, st its status). */
static void lhd_tally_end(lua_State *L, lhd_tally *t, httpd_req *r, uint64_t t0, unsigned st, const char *note,
                          const lhd_end *e) {
  /* the log function below may close the server, whose shutdown would reach the freed pump
   * through the request's notify */
  if (r) httpd_set_notify(r, NULL, NULL);
  if (t->route == NULL) { /* the tally was finalized (the Lua state closing): nothing to count or log */
    if (r) httpd_release(r);
    return;
  }
  if (st == 0) {
    st = e->timed_out ? 504 : 502;
    size_t len = e->fail_len;
    const char *body = e->timed_out ? lhd_timeout_body(e, &len) : e->fail_body;
    if (r && body) {
      const char *lines[2 * LHD_MAX_HEADERS];
      size_t n = 0;
      for (; n < t->nfail; n++) lines[n] = t->fail_headers[n];
      for (size_t i = 0; i < e->nmore && n < 2 * LHD_MAX_HEADERS; i++) lines[n++] = e->more[i];
      httpd_respond(r, st, lines, n, body, len);
    }
  }
  long long us = (long long)((uv_hrtime() - t0) / 1000);
  health_stats_count(&t->stats, t->buckets, t->nbuckets, (double)us / 1e6);
  t->by_status[st < LHD_MAX_STATUS ? st : 0]++;
  health_value v[HEALTH_LINE_FIELDS] = {{HEALTH_ABSENT, NULL, 0, 0}};
  if (e->remote) v[HEALTH_LINE_ADDR] = (health_value){HEALTH_STRING, e->remote, strlen(e->remote), 0};
  if (e->via) v[HEALTH_LINE_VIA] = (health_value){HEALTH_STRING, e->via, strlen(e->via), 0};
  v[HEALTH_LINE_KEY].kind = HEALTH_NULL;
  if (e->key) v[HEALTH_LINE_KEY] = (health_value){HEALTH_STRING, e->key, strlen(e->key), 0};
  if (e->method) v[HEALTH_LINE_METHOD] = (health_value){HEALTH_STRING, e->method, strlen(e->method), 0};
  if (note) v[HEALTH_LINE_NOTE] = (health_value){HEALTH_STRING, note, strlen(note), 0};
  if (e->project) v[HEALTH_LINE_PROJECT] = (health_value){HEALTH_STRING, e->project, strlen(e->project), 0};
  v[HEALTH_LINE_ROUTE] = (health_value){HEALTH_STRING, t->route, strlen(t->route), 0};
  v[HEALTH_LINE_STATUS] = (health_value){HEALTH_NUMBER, NULL, 0, (double)st};
  const char *stamp = health_stamp_of(&t->stamp);
  v[HEALTH_LINE_T] = (health_value){HEALTH_STRING, stamp, strlen(stamp), 0};
  v[HEALTH_LINE_US] = (health_value){HEALTH_NUMBER, NULL, 0, (double)us};
  t->line.len = 0;
  t->line.oom = 0;
  if (health_line_write(&t->line, v) == 0 && !t->line.oom && t->log_ref != LUA_NOREF) {
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->log_ref);
    lua_pushlstring(L, t->line.p, t->line.len);
    if (rt_pcall(L, 1, 0) != LUA_OK) rt_report(rt_get(L), L);
    lua_settop(L, top);
  }
  if (t->line.cap > 4096) jsonout_free(&t->line);
  if (r) {
    httpd_set_notify(r, NULL, NULL);
    httpd_release(r);
  }
}

/* The note of a pump cut by req:cut or srv:proxy_cut (its caller may read no more) */
#define LHD_CUT_NOTE "cut: the caller may no longer read it (a key revoked, a person disabled or taken out)"

/* req:proxy's pump with a tally is done: its end, from the request's and the options'
 * tables, on L (the loop's: the tally's main thread; req:cut's: its caller's). */
static void lhd_proxy_end_on(lua_State *L, httpproxy *px, lhd_req *q) {
  lhd_tally *t = q->tally;
  /* called from the loop, not by Lua: the 12 slots below and lhd_tally_end's 2 are made
   * sure of, not assumed; refused only out of memory, when the request is let go unlogged */
  if (!lua_checkstack(L, 16)) {
    httpproxy_free(px);
    q->px = NULL;
    httpd_req *r = q->r;
    q->r = NULL;
    if (r) {
      httpd_set_notify(r, NULL, NULL);
      httpd_release(r);
    }
    lhd_tally_drop(L, q);
    return;
  }
  int top = lua_gettop(L);
  const char *msg;
  unsigned st = httpproxy_status(px, &msg);
  lua_rawgeti(L, LUA_REGISTRYINDEX, q->opts_ref); /* top + 1: the options */
  lua_rawgeti(L, LUA_REGISTRYINDEX, q->self_ref);
  lua_getiuservalue(L, -1, 1);                    /* top + 3: the request's fields */
  char buf[1024];
  lua_getfield(L, top + 1, "fail_note");          /* top + 4, a string (checked by req:proxy) */
  const char *note = q->cut ? LHD_CUT_NOTE : lhd_end_note(buf, sizeof buf, st, msg, lua_tostring(L, top + 4));
  lhd_end e = {0};
  e.timed_out = httpproxy_timed_out(px);
  e.phase = httpproxy_timeout_phase(px); /* a literal: outlives the pump */
  httpproxy_free(px);
  q->px = NULL;
  const char *more[LHD_MAX_HEADERS];
  if (lua_getfield(L, top + 1, "fail_more") == LUA_TTABLE) /* top + 5; checked by req:proxy */
    for (lua_Integer i = 1; e.nmore < LHD_MAX_HEADERS && lua_rawgeti(L, top + 5, i) == LUA_TSTRING; i++) {
      more[e.nmore++] = lua_tostring(L, -1);
      lua_pop(L, 1); /* the table keeps it */
    }
  lua_settop(L, top + 5);
  e.more = more;
  lua_getfield(L, top + 1, "fail_body"); /* top + 6 */
  e.fail_body = lua_tolstring(L, top + 6, &e.fail_len);
  lua_getfield(L, top + 3, "remote");    /* top + 7 */
  e.remote = lua_tostring(L, top + 7);
  lua_getfield(L, top + 1, "key");       /* top + 8 */
  e.key = lua_tostring(L, top + 8);
  lua_getfield(L, top + 3, "method");    /* top + 9 */
  e.method = lua_tostring(L, top + 9);
  lua_getfield(L, top + 1, "timeout_body"); /* top + 10, a string or nil (checked by req:proxy) */
  e.timeout_body = lua_tolstring(L, top + 10, &e.timeout_len);
  lua_getfield(L, top + 1, "headers_timeout_body"); /* top + 11, a string or nil (checked) */
  e.headers_body = lua_tolstring(L, top + 11, &e.headers_len);
  lua_getfield(L, top + 1, "project"); /* top + 12, a string or nil (checked by req:proxy) */
  e.project = lua_tostring(L, top + 12);
  httpd_req *r = q->r;
  e.via = r ? httpd_via(r) : NULL; /* the request's, alive until lhd_tally_end releases it */
  q->r = NULL;
  lhd_tally_end(L, t, r, q->t0, st, note, &e); /* the stack keeps e's strings */
  lhd_tally_drop(L, q);
  lua_settop(L, top);
}

static void lhd_proxy_ended(httpproxy *px, void *ud) {
  lhd_req *q = ud;
  lhd_proxy_end_on(q->tally->L, px, q);
}

/* req:cut() -> whether it cut one: a request whose pump ends in C (req:proxy with tally)
 * and still runs is ended now, its answer cut as a cancelled pump's (httpproxy_free), and
 * counted and logged as its end would be, noted as cut (a caller who may read no more) */
static int lhd_cut(lua_State *L) {
  lhd_req *q = luaL_checkudata(L, 1, LHD_REQ);
  int running = q->r != NULL && q->px != NULL && q->tally != NULL;
  if (running) {
    q->cut = 1;
    lhd_proxy_end_on(L, q->px, q);
  }
  lua_pushboolean(L, running);
  return 1;
}
/* httpd.proxy_tally{route=, buckets={rising seconds}, log=fn(line), fail_headers={"Name:
 * value", ...}} -> tally: given to req:proxy{..., tally=, t0=, key=, fail_body=, fail_more=,
 * fail_note=}, the request ends when its pump does, here: no task waits for it. t0:
 * uv.hrtime() when the request's handling began; key: the log line's key (nil: null);
 * fail_body: the 502's body when the upstream failed before anything was sent (its lines
 * fail_headers, then fail_more's), fail_note its note's start (the pump's message follows);
 * timeout_body (optional): the 504's, when the upstream gave no answer within its timeouts;
 * headers_timeout_body (optional): the 504's instead when it began its answer but did not
 * complete its headers in time (their deadline, or its silence, passed). tally:stats() -> count, sum (seconds),
 * {count per bucket, not cumulative}, {status -> count}; tally:active() -> the requests
 * still to end here. srv:refusals(tally) has it count and log a server's refusals too. */
static int lhd_tally_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "route"); /* 2 */
  const char *route = lua_tostring(L, -1);
  if (route == NULL) return luaL_argerror(L, 1, "route must be a string");
  lua_getfield(L, 1, "log");
  luaL_argcheck(L, lua_isfunction(L, -1), 1, "log must be a function");
  lua_getfield(L, 1, "buckets");
  luaL_argcheck(L, lua_istable(L, -1), 1, "buckets must be a list of rising numbers");
  lua_Integer nb = luaL_len(L, -1);
  luaL_argcheck(L, nb <= HEALTH_MAX_BUCKETS, 1, "at most 32 buckets");
  lua_getfield(L, 1, "fail_headers");
  const char *lines[LHD_MAX_HEADERS];
  size_t nfail = lhd_header_lines(L, lua_gettop(L), lines, 1);
  lhd_tally *t = lua_newuserdatauv(L, sizeof *t, 0);
  memset(t, 0, sizeof *t);
  t->log_ref = LUA_NOREF;
  t->stamp.sec = (time_t)-1;
  luaL_setmetatable(L, LHD_TALLY);
  for (lua_Integer i = 1; i <= nb; i++) {
    lua_rawgeti(L, 4, i); /* the buckets */
    int isnum;
    double d = lua_tonumberx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum || (i > 1 && !(d > t->buckets[i - 2]))) return luaL_argerror(L, 1, "buckets must be a list of rising numbers");
    t->buckets[i - 1] = d;
  }
  t->nbuckets = (size_t)nb;
  t->route = strdup(route);
  if (t->route == NULL) return luaL_error(L, "out of memory");
  for (size_t i = 0; i < nfail; i++) {
    t->fail_headers[i] = strdup(lines[i]);
    if (t->fail_headers[i] == NULL) return luaL_error(L, "out of memory");
    t->nfail = i + 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  t->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_pushvalue(L, 3); /* log */
  t->log_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

static int lhd_tally_stats(lua_State *L) {
  lhd_tally *t = luaL_checkudata(L, 1, LHD_TALLY);
  lua_pushinteger(L, (lua_Integer)t->stats.count);
  lua_pushnumber(L, t->stats.sum);
  lua_createtable(L, (int)t->nbuckets, 0);
  for (size_t i = 0; i < t->nbuckets; i++) {
    lua_pushinteger(L, (lua_Integer)t->stats.counts[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_newtable(L);
  for (int st = 0; st < LHD_MAX_STATUS; st++) {
    if (t->by_status[st] == 0) continue;
    lua_pushinteger(L, (lua_Integer)t->by_status[st]);
    lua_rawseti(L, -2, st);
  }
  return 4;
}

static int lhd_tally_active(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)((lhd_tally *)luaL_checkudata(L, 1, LHD_TALLY))->active);
  return 1;
}

/* Collected only once no request ends here (each one's options keep it) */
static int lhd_tally_gc(lua_State *L) {
  lhd_tally *t = luaL_checkudata(L, 1, LHD_TALLY);
  luaL_unref(L, LUA_REGISTRYINDEX, t->log_ref);
  t->log_ref = LUA_NOREF;
  free(t->route);
  t->route = NULL;
  for (size_t i = 0; i < t->nfail; i++) free(t->fail_headers[i]);
  t->nfail = 0;
  jsonout_free(&t->line);
  return 0;
}

/* req:proxy{url=, unix_socket=, method=, headers={"Name: value", ...}, body=,
 *   connect_timeout_ms=, first_byte_timeout_ms=, idle_timeout_ms=, headers_timeout_ms=,
 *   total_timeout_ms=, max_bytes=, read_ahead=, lines={"Name: value", ...}, pass={name, ...}, pass_max=,
 *   cookies={name, ...}, pass_in={name, ...}, queue_high=, whole_max=, location_from=, location_to=,
 *   location_also={start, ...}, location_links=}
 * The timeouts are http.h's: first_byte_timeout_ms until the answer begins, idle_timeout_ms
 * of silence once it has, headers_timeout_ms until its final headers are in (interim 1xx
 * answers and header lines do not move it), total_timeout_ms for all of it (0 or absent:
 * none). location_also:
 * more starts made location_to as location_from is (httpproxy.h); location_links: a Link's
 * URI-references made so too (httpproxy.h).
 *   -> status, note, bytes | nil, message, 0, timed_out, full, phase
 * pass_in: the request's own headers of those (lower-case) names go to the upstream, each
 * line as req.headers has it (a repeated name joined with ", "), before headers' lines.
 * Answers the request with the upstream's answer (httpproxy.h), waiting until it is over:
 * the status sent (499: the client left first) and why it broke off, if it did, and the
 * body bytes sent; nil when the upstream failed before anything was sent (the caller
 * answers: 504 when timed_out, the upstream gave no answer within its timeouts, phase
 * saying which deadline passed as httpproxy_timeout_phase does, else 502);
 * full true when nothing was started because kept's max_live requests are in progress,
 * "address" when max_live_each of the request's address are (the
 * caller answers 503: not the upstream's failure). With kept= (httpd.proxy_kept) the options it holds are its, and the table's
 * own of those are not read: only url, method, headers and body. */
static int lhd_proxy(lua_State *L) {
  lhd_req *q = lhd_check(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (q->waiting || q->px) return luaL_error(L, "httpd: another task already waits on this request");
  rt_wait_require(L);
  const char *hdrs[LHD_MAX_HEADERS];
  httpproxy_opts o;
  memset(&o, 0, sizeof o);
  o.up.url = lhd_proxy_string(L, 2, "proxy", "url", 1, NULL);
  if (strncmp(o.up.url, "http://", 7) != 0) luaL_error(L, "bad argument #1 to 'proxy' (url must start with http://)");
  o.up.method = lhd_proxy_string(L, 2, "proxy", "method", 0, NULL);
  lhd_proxy_check_method(L, o.up.method);
  o.up.body = lhd_proxy_string(L, 2, "proxy", "body", 0, &o.up.body_len);
  o.up.headers = hdrs;
  o.up.nheaders = lhd_proxy_strings(L, 2, "proxy", "headers", hdrs, 1);
  httpproxy_kept *kept = NULL;
  if (lua_getfield(L, 2, "kept") != LUA_TNIL) {
    httpproxy_kept **k = luaL_testudata(L, -1, LHD_KEPT);
    if (k == NULL || *k == NULL) luaL_error(L, "bad argument #1 to 'proxy' (kept must be an open httpd.proxy_kept)");
    kept = *k;
  }
  lua_pop(L, 1); /* the options' table keeps it */
  lhd_tally *tally = NULL;
  if (lua_getfield(L, 2, "tally") != LUA_TNIL) {
    tally = luaL_testudata(L, -1, LHD_TALLY);
    if (tally == NULL || tally->route == NULL) luaL_error(L, "bad argument #1 to 'proxy' (tally must be an httpd.proxy_tally)");
    const char *more[LHD_MAX_HEADERS]; /* checked before the pump starts: nothing raises after */
    lua_getfield(L, 2, "fail_more");
    lhd_header_lines(L, lua_gettop(L), more, 1);
    lua_pop(L, 1);
    /* the end reads these inside libcurl's and libmicrohttpd's callbacks, where a raise
     * would unwind through them */
    if (lua_getfield(L, 2, "fail_body") != LUA_TSTRING || lua_getfield(L, 2, "fail_note") != LUA_TSTRING)
      luaL_error(L, "bad argument #1 to 'proxy' (fail_body and fail_note must be strings with tally)");
    int kt = lua_getfield(L, 2, "key");
    if (kt != LUA_TNIL && kt != LUA_TSTRING) luaL_error(L, "bad argument #1 to 'proxy' (key must be a string)");
    kt = lua_getfield(L, 2, "project");
    if (kt != LUA_TNIL && kt != LUA_TSTRING) luaL_error(L, "bad argument #1 to 'proxy' (project must be a string)");
    int tt = lua_getfield(L, 2, "timeout_body");
    if (tt != LUA_TNIL && tt != LUA_TSTRING) luaL_error(L, "bad argument #1 to 'proxy' (timeout_body must be a string)");
    tt = lua_getfield(L, 2, "headers_timeout_body");
    if (tt != LUA_TNIL && tt != LUA_TSTRING)
      luaL_error(L, "bad argument #1 to 'proxy' (headers_timeout_body must be a string)");
    lua_pop(L, 6);
  }
  lua_pop(L, 1);
  /* memo={own=, dv=, until_ms=, rate_key=}: the request may be remembered (lhd_memo_put) */
  int memo = 0;
  int64_t m_own = 0, m_dv = 0;
  double m_until = 0;
  const char *m_rate = NULL;
  if (lua_getfield(L, 2, "memo") != LUA_TNIL) {
    int ok1 = 0, ok2 = 0, ok3 = 0;
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "own");
      m_own = (int64_t)lua_tointegerx(L, -1, &ok1);
      lua_getfield(L, -2, "dv");
      m_dv = (int64_t)lua_tointegerx(L, -1, &ok2);
      lua_getfield(L, -3, "until_ms");
      m_until = lua_tonumberx(L, -1, &ok3);
      int rt = lua_getfield(L, -4, "rate_key");
      m_rate = rt == LUA_TSTRING ? lua_tostring(L, -1) : NULL; /* the options' table keeps it */
      if (rt != LUA_TNIL && rt != LUA_TSTRING) ok1 = 0;
      lua_pop(L, 4);
    }
    if (!ok1 || !ok2 || !ok3 || tally == NULL || kept == NULL)
      luaL_error(L, "bad argument #1 to 'proxy' (memo must be {own=, dv=, until_ms=[, rate_key=]}, with tally and kept)");
    memo = 1;
  }
  lua_pop(L, 1);
  int opts_ref = LUA_NOREF, self_ref = LUA_NOREF;
  if (tally) { /* taken before the pump starts: nothing may fail once it runs */
    lua_pushvalue(L, 2);
    opts_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 1);
    self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lhd_proxy_lists l;
  if (kept == NULL) lhd_proxy_shared(L, 2, "proxy", &o, &l);
  char err[256];
  int full = kept ? httpproxy_kept_full(kept, httpd_remote(q->r)) : 0;
  httpproxy_done_fn done = tally ? lhd_proxy_ended : lhd_proxy_done;
  q->px = kept ? httpproxy_start_kept(lhttp_client(L), q->r, kept, &o.up, done, q, err, sizeof err)
               : httpproxy_start(lhttp_client(L), q->r, &o, done, q, err, sizeof err);
  if (q->px == NULL) {
    luaL_unref(L, LUA_REGISTRYINDEX, opts_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, self_ref);
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushinteger(L, 0);
    lua_pushboolean(L, 0);
    if (full == 2) lua_pushliteral(L, "address"); /* the address's share, not the whole count */
    else lua_pushboolean(L, full);
    lua_pushnil(L); /* no timeout's phase */
    return 6;
  }
  if (tally) { /* ends in C: this task goes on */
    lua_getfield(L, 2, "t0");
    q->t0 = (uint64_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    q->tally = tally;
    tally->active++;
    q->waiting = LHD_ENDS_IN_C;
    q->opts_ref = opts_ref;
    q->self_ref = self_ref;
    if (memo) lhd_memo_put(L, q, 2, m_own, m_dv, m_until, m_rate);
    lua_pushboolean(L, 1);
    return 1;
  }
  rt_wait_begin(L, &q->w, lhd_proxy_cancel);
  q->waiting = LHD_WAIT_PROXY;
  return rt_wait_yield(L);
}

/* ---- blobs ------------------------------------------------------------------------------ */

typedef struct lhd_blob {
  httpd_blob *b; /* NULL once collected */
} lhd_blob;

/* blob(text) -> a body many answers share: one copy of text, sent without copying again */
static int lhd_blob_new(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lhd_blob *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->b = NULL;
  luaL_setmetatable(L, LHD_BLOB);
  u->b = httpd_blob_new(s, len);
  if (u->b == NULL) return luaL_error(L, "httpd: out of memory for a %I-byte body", (lua_Integer)len);
  return 1;
}

/* __gc and __close; idempotent */
static int lhd_blob_gc(lua_State *L) {
  lhd_blob *u = luaL_checkudata(L, 1, LHD_BLOB);
  httpd_blob_unref(u->b); /* answers still being sent keep their own references */
  u->b = NULL;
  return 0;
}

static int lhd_blob_tostring(lua_State *L) {
  lhd_blob *u = luaL_checkudata(L, 1, LHD_BLOB);
  if (u->b == NULL) lua_pushliteral(L, "http blob (collected)");
  else lua_pushfstring(L, "http blob (%I bytes)", (lua_Integer)httpd_blob_len(u->b));
  return 1;
}

static int lhd_blob_len(lua_State *L) {
  lhd_blob *u = luaL_checkudata(L, 1, LHD_BLOB);
  lua_pushinteger(L, u->b ? (lua_Integer)httpd_blob_len(u->b) : 0);
  return 1;
}

/* An answer as Lua gives it: status, {"Name: value", ...}, body (a string, copied, or a
 * blob, shared; absent: empty), at indices 2, 3 and 4 (the header lines and body string
 * stay there, alive). */
typedef struct lhd_answer {
  unsigned status;
  const char *hdrs[LHD_MAX_HEADERS];
  size_t nh;
  const char *body;
  size_t len;
  httpd_blob *blob; /* NULL: body */
} lhd_answer;

static void lhd_check_answer(lua_State *L, lhd_answer *a) {
  lua_Integer status = luaL_checkinteger(L, 2);
  luaL_argcheck(L, status >= 100 && status <= 599, 2, "must be an HTTP status");
  a->status = (unsigned)status;
  a->nh = lhd_header_lines(L, 3, a->hdrs, 3);
  lhd_blob *blob = luaL_testudata(L, 4, LHD_BLOB);
  a->blob = NULL;
  a->body = NULL;
  a->len = 0;
  if (blob) {
    luaL_argcheck(L, blob->b != NULL, 4, "the blob is collected");
    a->blob = blob->b;
  } else {
    a->body = luaL_optlstring(L, 4, "", &a->len);
  }
}

/* req:respond(status, {"Name: value", ...}, body) -> true | nil, message, code; body: a
 * string (copied) or a blob (shared) */
static int lhd_respond(lua_State *L) {
  lhd_req *q = lhd_check(L);
  lhd_answer a;
  lhd_check_answer(L, &a);
  int rc = a.blob ? httpd_respond_blob(q->r, a.status, a.hdrs, a.nh, a.blob)
                  : httpd_respond(q->r, a.status, a.hdrs, a.nh, a.body, a.len);
  if (rc == -2) return luaL_argerror(L, 3, "a header was refused");
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "the request is already answered, or its client is gone");
    lua_pushliteral(L, "EPIPE");
    return 3;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Starts the request's stream: the request (now a stream) | nil, msg, code. hidx: the
 * header table's argument, for a refused line. */
static int lhd_start_stream(lua_State *L, lhd_req *q, unsigned status, const char **hdrs, size_t nh, int hidx) {
  int rc = httpd_stream(q->r, status, hdrs, nh);
  if (rc == -2) return luaL_argerror(L, hidx, "a header was refused");
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "the request is already answered, or its client is gone");
    lua_pushliteral(L, "EPIPE");
    return 3;
  }
  lua_settop(L, 1);
  return 1;
}

/* req:sse({"Name: value", ...}) -> req, now a stream (200, text/event-stream) | nil, msg, code */
static int lhd_sse(lua_State *L) {
  lhd_req *q = lhd_check(L);
  const char *hdrs[LHD_MAX_HEADERS + 2];
  size_t nh = lhd_header_lines(L, 2, hdrs, 2);
  hdrs[nh++] = "Content-Type: text/event-stream; charset=utf-8";
  hdrs[nh++] = "Cache-Control: no-store";
  return lhd_start_stream(L, q, 200, hdrs, nh, 2);
}

/* req:stream(status, {"Name: value", ...}) -> req, now a stream (chunked, the header lines
 * as given: a proxied answer) | nil, msg, code */
static int lhd_stream(lua_State *L) {
  lhd_req *q = lhd_check(L);
  lua_Integer status = luaL_checkinteger(L, 2);
  luaL_argcheck(L, status >= 200 && status <= 599, 2, "must be an HTTP status from 200");
  const char *hdrs[LHD_MAX_HEADERS];
  size_t nh = lhd_header_lines(L, 3, hdrs, 3);
  return lhd_start_stream(L, q, (unsigned)status, hdrs, nh, 3);
}

/* stream:send(text) -> true | nil, message, code (EPIPE: closed or gone; ESLOW: the client
 * fell behind and was disconnected); text: a string (copied) or a blob (shared: an event
 * sent to many streams) */
static int lhd_send(lua_State *L) {
  lhd_req *q = lhd_check(L);
  lhd_blob *blob = luaL_testudata(L, 2, LHD_BLOB);
  int rc;
  if (blob) {
    luaL_argcheck(L, blob->b != NULL, 2, "the blob is collected");
    rc = httpd_stream_send_blob(q->r, blob->b);
  } else {
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    rc = httpd_stream_send(q->r, s, len);
  }
  if (rc == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  if (rc == -3) {
    lua_pushliteral(L, "the client fell behind and was disconnected");
    lua_pushliteral(L, "ESLOW");
  } else {
    lua_pushliteral(L, "the stream is closed or its client is gone");
    lua_pushliteral(L, "EPIPE");
  }
  return 3;
}

/* stream:queued() -> bytes not yet handed to the socket */
static int lhd_queued(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)httpd_stream_queued(lhd_check(L)->r));
  return 1;
}

/* stream:drain([bytes]) -> gone: waits until at most half the queue's cap is queued (or
 * at most bytes, when fewer), or the client is gone */
static int lhd_drain(lua_State *L) {
  lhd_req *q = lhd_check(L);
  lua_Integer at = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, at >= 0, 2, "must not be negative");
  httpd_stream_drain_at(q->r, (size_t)at);
  return lhd_wait(L, q, LHD_WAIT_DRAIN, lhd_push_gone);
}

/* req:wait_gone() -> true: waits until the client is gone or the response is sent */
static int lhd_wait_gone(lua_State *L) { return lhd_wait(L, lhd_check(L), LHD_WAIT_GONE, lhd_push_gone); }

/* req:gone() -> whether the client is gone (or the response was sent) */
static int lhd_gone(lua_State *L) {
  lua_pushboolean(L, httpd_gone(lhd_check(L)->r));
  return 1;
}

/* req:close(): ends a stream once its queue is sent; an unanswered request gets 500.
 * Idempotent; also __gc and __close. */
static int lhd_close(lua_State *L) {
  lhd_req *q = luaL_checkudata(L, 1, LHD_REQ);
  if (q->r == NULL) return 0;
  httpd_req *r = q->r;
  if (q->tally) lhd_tally_drop(L, q); /* no line, no count: its end was taken from the pump */
  if (q->px) { /* the pump stops with the request (its waiting task is woken below) */
    httpproxy_free(q->px);
    q->px = NULL;
  }
  if (q->waiting && q->w.co_ref != LUA_NOREF) {
    /* closed by another task while one waits: that task is woken now */
    int kind = q->waiting;
    q->waiting = LHD_IDLE;
    httpd_set_notify(r, NULL, NULL);
    httpd_release(r);
    q->r = NULL;
    rt_wait_finish(&q->w, kind == LHD_WAIT_PROXY ? lhd_push_closed : NULL, NULL);
    return 0;
  }
  httpd_set_notify(r, NULL, NULL);
  q->r = NULL;
  httpd_release(r);
  return 0;
}

/* req.name: the request's fields (its uservalue), else its methods. Fields: method, path
 * (raw, still percent-encoded), remote (the client's: httpd_remote), peer (the connection's),
 * trusted_peer (true when the peer is a trusted proxy, else nil), headers (lower-cased names, repeated ones joined by
 * ", ", Cookie's by "; "), query (raw names -> raw values, the first of a name wins), raw_query (the text
 * after the target's "?" as sent; nil without one), content_length (nil when none),
 * too_large. Upvalues: the metatable, the methods. A request's fields are read
 * a few dozen times while it is served, and luaL_checkudata's look-up of the metatable by
 * name cost more than the rest of a read. */
static int lhd_index(lua_State *L) {
  int ours = lua_getmetatable(L, 1);
  if (ours) {
    ours = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
  }
  if (!ours) luaL_checkudata(L, 1, LHD_REQ); /* raises, with its message */
  if (lua_getiuservalue(L, 1, 1) == LUA_TTABLE) { /* fields */
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(2));
  return 1;
}

static void lhd_push_lower(lua_State *L, const char *s) {
  char buf[128];
  size_t n = strlen(s);
  if (n >= sizeof buf) {
    lua_pushstring(L, s); /* longer names are left as sent */
    return;
  }
  for (size_t i = 0; i < n; i++) buf[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
  lua_pushlstring(L, buf, n);
}

/* Whether a header's name is Cookie, in any case. */
static int lhd_is_cookie(const char *k) {
  static const char c[] = "cookie";
  for (size_t i = 0; i < sizeof c - 1; i++)
    if (k[i] == '\0' || (k[i] | 0x20) != c[i]) return 0;
  return k[sizeof c - 1] == '\0';
}

static void lhd_push_req(lua_State *L, httpd_req *r) {
  lhd_req *q = lua_newuserdatauv(L, sizeof *q, 1);
  memset(q, 0, sizeof *q);
  q->w.co_ref = LUA_NOREF;
  q->r = r;
  luaL_setmetatable(L, LHD_REQ);
  httpd_set_notify(r, lhd_notify, q);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, httpd_method(r));
  lua_setfield(L, -2, "method");
  lua_pushstring(L, httpd_path(r));
  lua_setfield(L, -2, "path");
  lua_pushstring(L, httpd_remote(r));
  lua_setfield(L, -2, "remote");
  lua_pushstring(L, httpd_peer(r));
  lua_setfield(L, -2, "peer");
  if (httpd_peer_trusted(r)) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "trusted_peer");
  }
  /* the tables made at their size: grown one insertion at a time, each rehashed at every
   * power of two */
  const char *k, *v;
  size_t nh = 0, nq = 0;
  while (httpd_header_at(r, nh, &k, &v) == 0) nh++;
  while (httpd_arg_at(r, nq, &k, &v) == 0) nq++;
  lua_createtable(L, 0, (int)nh);
  for (size_t i = 0; httpd_header_at(r, i, &k, &v) == 0; i++) {
    lhd_push_lower(L, k);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TSTRING) {
      /* Cookie lines are one list joined with "; " (RFC 6265 5.4, RFC 9113 8.2.3): with
       * ", " a cookie on a later line read as part of the value before it */
      if (lhd_is_cookie(k)) lua_pushliteral(L, "; ");
      else lua_pushliteral(L, ", ");
      lua_pushstring(L, v);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushstring(L, v);
    }
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "headers");
  lua_createtable(L, 0, (int)nq);
  for (size_t i = 0; httpd_arg_at(r, i, &k, &v) == 0; i++) {
    if (lua_getfield(L, -1, k) == LUA_TNIL) { /* a name given twice keeps its first value */
      lua_pop(L, 1);
      lua_pushstring(L, v);
      lua_setfield(L, -2, k);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_setfield(L, -2, "query");
  /* the query as sent, for what passes it on whole (an app's origin): its order, a name
   * given twice, "+", a name without "=" and an empty pair as the client wrote them */
  const char *rq = httpd_raw_query(r);
  if (rq) {
    lua_pushstring(L, rq);
    lua_setfield(L, -2, "raw_query");
  }
  long long cl = httpd_content_length(r);
  if (cl >= 0) {
    lua_pushinteger(L, (lua_Integer)cl);
    lua_setfield(L, -2, "content_length");
  }
  lua_pushboolean(L, httpd_too_large(r));
  lua_setfield(L, -2, "too_large");
  lua_setiuservalue(L, -2, 1);
}

static int lhd_req_tostring(lua_State *L) {
  lhd_req *q = luaL_checkudata(L, 1, LHD_REQ);
  if (q->r == NULL) lua_pushliteral(L, "http server request (closed)");
  else lua_pushfstring(L, "http server request (%s %s)", httpd_method(q->r), httpd_path(q->r));
  return 1;
}

/* ---- the proxy's memory ----------------------------------------------------------------- */

/* What the memory keeps for a request decided the Lua way (req:proxy{..., memo=}): what the
 * same request again needs to be proxied from C and ended as that one was. Counted
 * references: the memory's and each pump started from it. */
typedef struct lhd_memo_val {
  int refs;
  lua_State *L;          /* the main thread, where the references are dropped */
  int tally_ref, kept_ref;
  lhd_tally *tally;
  httpproxy_kept **kept; /* the httpd.proxy_kept's: *kept is NULL once it was closed */
  char *url, *key, *project, *rate_key, *fail_body, *fail_note, *timeout_body, *headers_body;
  size_t fail_len, timeout_len, headers_len;
  char *more[LHD_MAX_HEADERS];
  size_t nmore;
} lhd_memo_val;

static void lhd_memo_unref(lhd_memo_val *v) {
  if (v == NULL || --v->refs > 0) return;
  luaL_unref(v->L, LUA_REGISTRYINDEX, v->tally_ref);
  luaL_unref(v->L, LUA_REGISTRYINDEX, v->kept_ref);
  free(v->url);
  free(v->key);
  free(v->project);
  free(v->rate_key);
  free(v->fail_body);
  free(v->fail_note);
  free(v->timeout_body);
  free(v->headers_body);
  for (size_t i = 0; i < v->nmore; i++) free(v->more[i]);
  free(v);
}

static void lhd_memo_drop(void *val, void *ud) {
  (void)ud;
  lhd_memo_unref(val);
}

static int lhd_memo_header(const void *req, size_t i, const char **name, const char **value) {
  return httpd_header_at(req, i, name, value);
}

static int lhd_memo_stamp(void *conn, int64_t *own, int64_t *dv) {
  store *st = lstore_store(conn);
  return st ? store_stamp(st, own, dv) : -1;
}

/* Whether the memory may hold a request: a GET or HEAD without a query (its path is all the
 * memory compares of its target) */
static int lhd_memo_fits(const httpd_req *r) {
  const char *m = httpd_method(r), *n, *v;
  return (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) && httpd_arg_at(r, 0, &n, &v) != 0;
}

/* A request proxied from the memory, until its pump is done */
typedef struct lhd_fast {
  httpd_req *r;
  lhd_memo_val *v;
  uint64_t t0;
  struct lhd_fast *next; /* in fast_failed */
  char err[256];         /* why its pump did not start */
  httpproxy *px;         /* while its pump runs */
  /* while its pump runs and its server is open: the server, in whose fast_running it is
   * (srv:proxy_cut ends them; a closed server lets go of the pumps that outlive it) */
  lhd_srv *srv;
  struct lhd_fast *run_prev, *run_next;
  lua_Integer serial; /* its number among its server's (srv:proxy_running, srv:proxy_cut) */
} lhd_fast;

static void lhd_fast_unlink(lhd_fast *f) {
  if (f->srv == NULL) return;
  if (f->run_prev) f->run_prev->run_next = f->run_next;
  else f->srv->fast_running = f->run_next;
  if (f->run_next) f->run_next->run_prev = f->run_prev;
  f->srv = NULL;
  f->run_prev = f->run_next = NULL;
}

/* How often the memory drops what no longer holds while no request comes (a key revoked,
 * a decision expired: their credentials are not kept past this) */
#define LHD_MEMO_SWEEP_MS 1000

/* Its end, as the remembered request's: lhd_tally_end with what was remembered (note: the
 * log line's, made by lhd_end_note, or NULL) */
static void lhd_fast_end(lua_State *L, lhd_fast *f, unsigned st, const char *note, int timed_out, const char *phase) {
  lhd_memo_val *v = f->v;
  lhd_end e = {httpd_remote(f->r), httpd_method(f->r), v->key, (const char *const *)v->more, v->nmore,
               v->fail_body, v->fail_len, v->timeout_body, v->timeout_len, timed_out,
               v->headers_body, v->headers_len, phase, httpd_via(f->r), v->project};
  lhd_tally_end(L, v->tally, f->r, f->t0, st, note, &e);
  v->tally->active--;
  free(f);
  lhd_memo_unref(v);
}

static void lhd_fast_ended(httpproxy *px, void *ud) {
  lhd_fast *f = ud;
  const char *msg;
  unsigned st = httpproxy_status(px, &msg);
  char buf[1024]; /* made before the pump, which holds msg, is freed */
  const char *note = lhd_end_note(buf, sizeof buf, st, msg, f->v->fail_note);
  int timed_out = httpproxy_timed_out(px);
  const char *phase = httpproxy_timeout_phase(px); /* a literal: outlives the pump */
  lhd_fast_unlink(f);
  httpproxy_free(px);
  lhd_fast_end(f->v->tally->L, f, st, note, timed_out, phase);
}

/* The requests whose pump failed to start, ended as the remembered request's (a 502) */
static void lhd_fast_fail(lhd_fast *f) {
  char buf[1024];
  lhd_fast_end(f->v->tally->L, f, 0, lhd_end_note(buf, sizeof buf, 0, f->err, f->v->fail_note), 0, NULL);
}

static void lhd_memo_tick(uv_timer_t *tm) {
  lhd_srv *s;
  /* a log function may turn the memory off (data NULL then) or close the server */
  while ((s = tm->data) != NULL && s->fast_failed) {
    lhd_fast *f = s->fast_failed;
    s->fast_failed = f->next;
    lhd_fast_fail(f);
  }
  if ((s = tm->data) == NULL || s->memo == NULL) return;
  if (proxymemo_sweep(s->memo, (double)uv_now(tm->loop), lhd_memo_stamp, s->memo_conn))
    uv_timer_start(tm, lhd_memo_tick, LHD_MEMO_SWEEP_MS, 0);
}

/* The request first in the queue, proxied from the memory when the memory holds it (the
 * same request, the store's stamp unchanged, not expired) and its address and key have a
 * token each: 1, taken. Otherwise 0, and it goes the Lua way as any other (where a 429 is
 * answered from the same buckets). */
static int lhd_memo_take(lhd_srv *s) {
  httpd_req *r = httpd_peek(s->h);
  if (r == NULL || !lhd_memo_fits(r)) return 0;
  proxymemo_key k = {httpd_method(r), httpd_path(r), httpd_remote(r), lhd_memo_header, r};
  double now = (double)uv_now(&rt_get(s->L)->loop);
  lhd_memo_val *v = proxymemo_get(s->memo, &k, now, lhd_memo_stamp, s->memo_conn);
  /* a full kept goes the Lua way, which answers it */
  if (v == NULL || *v->kept == NULL || httpproxy_kept_full(*v->kept, k.remote)) return 0;
  size_t nr = strlen(k.remote), nk = v->rate_key ? strlen(v->rate_key) : 0;
  if (ratelimit_empty(s->by_addr, k.remote, nr, now) != 0) return 0;
  if (v->rate_key && ratelimit_empty(s->by_key, v->rate_key, nk, now) != 0) return 0;
  lhd_fast *f = calloc(1, sizeof *f);
  if (f == NULL) return 0;
  long retry;
  if (ratelimit_take(s->by_addr, k.remote, nr, now, &retry) != 1 ||
      (v->rate_key && ratelimit_take(s->by_key, v->rate_key, nk, now, &retry) != 1)) {
    free(f); /* out of memory in a limiter: the Lua way says so */
    return 0;
  }
  f->r = httpd_next(s->h);
  f->v = v;
  v->refs++;
  f->t0 = uv_hrtime();
  v->tally->active++;
  http_opts each;
  memset(&each, 0, sizeof each);
  each.url = v->url;
  each.method = "GET"; /* a HEAD too: the pump answers it without the body */
  httpproxy *px = httpproxy_start_kept(lhttp_client(s->L), f->r, *v->kept, &each, lhd_fast_ended, f, f->err,
                                       sizeof f->err);
  if (px != NULL) {
    f->px = px;
    f->srv = s;
    f->serial = ++s->fast_serial;
    f->run_next = s->fast_running;
    if (s->fast_running) s->fast_running->run_prev = f;
    s->fast_running = f;
  } else {
    /* ended on the timer: its log function may close the server, not to be done from
     * libmicrohttpd's dispatch, where this runs */
    f->next = s->fast_failed;
    s->fast_failed = f;
    uv_timer_start(s->memo_timer, lhd_memo_tick, 0, 0);
  }
  return 1;
}

/* Remembers a request req:proxy just started with a tally (its options at t, checked), when
 * its server's memory is on: memo={own=, dv=, until_ms=, rate_key=} from the options. Out of
 * memory or too large: not remembered, nothing else changes. */
static void lhd_memo_put(lua_State *L, lhd_req *q, int t, int64_t own, int64_t dv, double until_ms,
                         const char *rate_key) {
  lhd_srv *s = httpd_ud_of(q->r);
  if (s == NULL || s->memo == NULL || !lhd_memo_fits(q->r)) return;
  int top = lua_gettop(L);
  lhd_memo_val *v = calloc(1, sizeof *v);
  if (v == NULL) return;
  v->refs = 1;
  v->L = s->L;
  lua_getfield(L, t, "tally");
  v->tally = lua_touserdata(L, -1);
  v->tally_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, t, "kept");
  v->kept = lua_touserdata(L, -1);
  v->kept_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  size_t len;
  const char *url = (lua_getfield(L, t, "url"), lua_tostring(L, -1));
  v->url = url ? strdup(url) : NULL;
  const char *key = (lua_getfield(L, t, "key"), lua_tostring(L, -1));
  v->key = key ? strdup(key) : NULL;
  const char *proj = (lua_getfield(L, t, "project"), lua_tostring(L, -1));
  v->project = proj ? strdup(proj) : NULL;
  const char *body = (lua_getfield(L, t, "fail_body"), lua_tolstring(L, -1, &len));
  if (body && (v->fail_body = malloc(len + 1)) != NULL) {
    memcpy(v->fail_body, body, len + 1);
    v->fail_len = len;
  }
  const char *fnote = (lua_getfield(L, t, "fail_note"), lua_tostring(L, -1));
  v->fail_note = fnote ? strdup(fnote) : NULL;
  const char *tbody = (lua_getfield(L, t, "timeout_body"), lua_tolstring(L, -1, &len));
  if (tbody && (v->timeout_body = malloc(len + 1)) != NULL) {
    memcpy(v->timeout_body, tbody, len + 1);
    v->timeout_len = len;
  }
  const char *hbody = (lua_getfield(L, t, "headers_timeout_body"), lua_tolstring(L, -1, &len));
  if (hbody && (v->headers_body = malloc(len + 1)) != NULL) {
    memcpy(v->headers_body, hbody, len + 1);
    v->headers_len = len;
  }
  lua_pop(L, 7);
  v->rate_key = rate_key ? strdup(rate_key) : NULL;
  int ok = v->url && (key == NULL || v->key) && (proj == NULL || v->project) && v->fail_body && v->fail_note &&
           (tbody == NULL || v->timeout_body) &&
           (hbody == NULL || v->headers_body) &&
           (rate_key == NULL || v->rate_key);
  if (lua_getfield(L, t, "fail_more") == LUA_TTABLE)
    for (lua_Integer i = 1; ok && v->nmore < LHD_MAX_HEADERS && lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
      ok = (v->more[v->nmore] = strdup(lua_tostring(L, -1))) != NULL;
      v->nmore += ok;
      lua_pop(L, 1);
    }
  lua_settop(L, top);
  proxymemo_key k = {httpd_method(q->r), httpd_path(q->r), httpd_remote(q->r), lhd_memo_header, q->r};
  double now = (double)uv_now(&rt_get(L)->loop);
  if (!ok || proxymemo_put(s->memo, &k, own, dv, now, until_ms, v) != 0) lhd_memo_unref(v);
  else if (!uv_is_active((uv_handle_t *)s->memo_timer)) uv_timer_start(s->memo_timer, lhd_memo_tick, LHD_MEMO_SWEEP_MS, 0);
}

/* Turns the server's memory off: what it held is forgotten (pumps under way hold their own) */
static void lhd_memo_timer_closed(uv_handle_t *h) { free(h); }

static void lhd_memo_off(lua_State *L, lhd_srv *s) {
  if (s->memo == NULL) return;
  proxymemo_free(s->memo);
  s->memo = NULL;
  s->memo_timer->data = NULL;
  uv_close((uv_handle_t *)s->memo_timer, lhd_memo_timer_closed);
  s->memo_timer = NULL;
  lhd_fast *failed = s->fast_failed;
  s->fast_failed = NULL;
  if (s->addr_lent) (*s->addr_lent)--;
  if (s->key_lent) (*s->key_lent)--;
  s->addr_lent = s->key_lent = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, s->conn_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, s->addr_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, s->key_ref);
  s->conn_ref = s->addr_ref = s->key_ref = LUA_NOREF;
  s->memo_conn = NULL;
  s->by_addr = s->by_key = NULL;
  while (failed) { /* last (their log functions may turn a memory on), before the server goes */
    lhd_fast *f = failed;
    failed = f->next;
    lhd_fast_fail(f);
  }
}

/* ---- the server ------------------------------------------------------------------------ */

static int lhd_push_next(lua_State *L, void *ud) {
  lhd_srv *s = ud;
  httpd_req *r = s->h ? httpd_next(s->h) : NULL;
  if (r == NULL) {
    lua_pushnil(L);
    return 1;
  }
  lhd_push_req(L, r);
  return 1;
}

static void lhd_on_accept(httpd *h, void *ud) {
  lhd_srv *s = ud;
  /* a request the proxy's memory holds is proxied here, one a loop turn as any other */
  if (s->memo && proxymemo_count(s->memo) && lhd_memo_take(s)) {
    httpd_accept_later(h);
    return;
  }
  if (!s->waiting) return;
  s->waiting = 0;
  rt_wait_finish(&s->w, lhd_push_next, s);
}

static void lhd_srv_cancel(rt_wait *w) { ((lhd_srv *)w)->waiting = 0; }

static lhd_srv *lhd_check_srv(lua_State *L) {
  lhd_srv *s = luaL_checkudata(L, 1, LHD_SRV);
  if (s->h == NULL) luaL_argerror(L, 1, "server is closed");
  return s;
}

/* srv:accept() -> req | nil once the server is closed; waits for the next request */
static int lhd_accept(lua_State *L) {
  lhd_srv *s = luaL_checkudata(L, 1, LHD_SRV);
  if (s->h == NULL) {
    lua_pushnil(L);
    return 1;
  }
  if (s->waiting) return luaL_error(L, "httpd: another task already waits in accept");
  /* Always through the loop, one request per iteration: one MHD_run can complete the
   * headers of many requests (64 connections under load), and handing them out at once
   * would run every handler before the loop's timers, so an engine step falling due
   * would wait for the whole burst instead of one request's handling. */
  rt_wait_begin(L, &s->w, lhd_srv_cancel);
  s->waiting = 1;
  httpd_accept_later(s->h);
  return rt_wait_yield(L);
}

/* ---- quick answers ---------------------------------------------------------------------- */

/* In a protected call: the quick function's answer to the request (upvalue 1), queued. */
static int lhd_quick_call(lua_State *L) {
  httpd_quick *q = lua_touserdata(L, 1);
  lua_settop(L, 2); /* the function at 2 */
  lua_pushstring(L, q->method);
  lua_pushstring(L, q->path);
  lua_pushstring(L, q->remote);
  if (q->host) lua_pushstring(L, q->host);
  else lua_pushnil(L);
  if (q->origin) lua_pushstring(L, q->origin);
  else lua_pushnil(L);
  if (q->via) lua_pushstring(L, q->via);
  else lua_pushnil(L);
  lua_call(L, 6, 3); /* at 2: status, headers, body | nil: declined */
  if (lua_isnil(L, 2)) return 0;
  lhd_answer a;
  lhd_check_answer(L, &a);
  if (httpd_quick_respond(q, a.status, a.hdrs, a.nh, a.body, a.len, a.blob) == -2)
    return luaL_argerror(L, 3, "a header was refused");
  return 0;
}

/* From inside libmicrohttpd: nothing may be thrown past here. A failing function's request
 * is handed over, as if declined, and its error reported (a bug, to be seen). The server
 * cannot be collected meanwhile: quick_ref holds it. */
static void lhd_on_quick(httpd_quick *q, void *ud) {
  lhd_srv *s = ud;
  lua_State *L = s->L;
  int top = lua_gettop(L);
  lua_pushcfunction(L, lhd_quick_call);
  lua_pushlightuserdata(L, q);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->quick_ref);
  lua_rawgeti(L, -1, 1);
  lua_remove(L, -2);
  s->in_quick = 1;
  if (rt_pcall(L, 2, 0) != LUA_OK) rt_report(rt_get(L), L);
  s->in_quick = 0;
  lua_settop(L, top);
}

/* An answer in C, guarded as fn is: its log function may not close the server either. */
static void lhd_on_quick_c(httpd_quick *q, void *ud) {
  lhd_srv *s = ud;
  s->in_quick = 1;
  s->c_quick(q, s->c_quick_ud);
  s->in_quick = 0;
}

/* A registry reference to {the value at idx, the server at 1}: what C calls back into is
 * kept, and its server with it, for as long as libmicrohttpd may call with their address. */
static int lhd_pin(lua_State *L, int idx) {
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, idx);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 2);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* srv:quick({path, ...}, fn): fn(method, path, remote, host, origin, via) -> status, {"Name:
 * value", ...}, body (a string or a blob) | nil, for a GET on one of the paths with no query
 * and no body, called inside the server's run: it must not wait. nil hands the request
 * over to accept() as any other; so does an error, which is reported. With an empty list,
 * none. While paths are set the server is not collected: close it, or set none. Instead
 * of fn, an orket.c.health answers in C, with no Lua call but its log line's. */
static int lhd_quick(lua_State *L) {
  lhd_srv *s = lhd_check_srv(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  httpd_quick_fn c_fn = NULL;
  void *c_ud = NULL;
  if (n > 0 && !lhealth_test(L, 3, &c_fn, &c_ud)) luaL_checktype(L, 3, LUA_TFUNCTION);
  luaL_argcheck(L, n <= 16, 2, "at most 16 paths");
  const char *paths[16];
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    paths[i - 1] = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (paths[i - 1] == NULL || paths[i - 1][0] != '/') luaL_argerror(L, 2, "paths must be strings starting with /");
    lua_pop(L, 1); /* a string: the table keeps it */
  }
  int ref = LUA_NOREF;
  if (n > 0) ref = lhd_pin(L, 3); /* made before anything changes: a raise here leaves the old ones */
  if (httpd_set_quick(s->h, paths, (size_t)n, c_fn ? lhd_on_quick_c : lhd_on_quick, s) != 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    return luaL_error(L, "httpd: out of memory");
  }
  s->c_quick = c_fn;
  s->c_quick_ud = c_ud;
  luaL_unref(L, LUA_REGISTRYINDEX, s->quick_ref); /* the old function, its server unpinned */
  s->quick_ref = ref;
  return 0;
}

/* ---- requests refused at their headers --------------------------------------------------- */

/* From inside libmicrohttpd (httpd_set_refused): counted and logged as a proxied request's
 * end is (lhd_tally_end, no request to answer or release), guarded as a quick answer is:
 * the log function may not close the server. The stack's room made sure of, not assumed
 * (called from the loop): out of memory, the refusal goes uncounted and unlogged. */
static void lhd_on_refused(const httpd_refusal *rf, void *ud) {
  lhd_srv *s = ud;
  if (s->refused == NULL || !lua_checkstack(s->L, 8)) return;
  lhd_end e = {0};
  e.remote = rf->remote;
  e.method = rf->method;
  e.via = rf->via;
  int was = s->in_quick, top = lua_gettop(s->L);
  s->in_quick = 1;
  /* the tally held on the stack while it ends the request: the log function may set
   * another (srv:refusals), which lets this one be collected */
  lua_rawgeti(s->L, LUA_REGISTRYINDEX, s->refused_ref);
  lhd_tally_end(s->L, s->refused, NULL, rf->t0, rf->status, rf->note, &e);
  lua_settop(s->L, top);
  s->in_quick = was;
}

/* srv:refusals(tally | nil): the requests refused at their headers, before any is made of
 * them (httpd_refusal: a 431, framing that could be read two ways, a target or Host that is
 * not valid), counted by tally (httpd.proxy_tally: tally:stats()'s statuses) and logged
 * through its log function, their line's route the tally's, note the answer's message and
 * key null; no Lua call but that. nil: neither. While a tally is set the server is not
 * collected: close it, or set nil. */
static int lhd_refusals(lua_State *L) {
  lhd_srv *s = lhd_check_srv(L);
  lhd_tally *t = lua_isnoneornil(L, 2) ? NULL : luaL_checkudata(L, 2, LHD_TALLY);
  luaL_argcheck(L, t == NULL || t->route != NULL, 2, "the tally is finalized");
  int ref = LUA_NOREF;
  if (t) ref = lhd_pin(L, 2);
  httpd_set_refused(s->h, t ? lhd_on_refused : NULL, s);
  luaL_unref(L, LUA_REGISTRYINDEX, s->refused_ref); /* the old tally, its server unpinned */
  s->refused_ref = ref;
  s->refused = t;
  return 0;
}

/* srv:proxy_memo{conn=, by_addr=, by_key=} | srv:proxy_memo(nil): turns the proxy's
 * memory on (conn: the store connection whose stamp decisions are made under; by_addr,
 * by_key: the orket.c.ratelimit limiters the Lua way takes from) or off. On, a request
 * req:proxy{..., tally=, memo=} started is remembered, and the same request again is
 * proxied from C (docs/serve.md, "The proxy's memory"). */
static int lhd_proxy_memo(lua_State *L) {
  lhd_srv *s = lhd_check_srv(L);
  /* off first: it may call log functions (lhd_memo_off), which may close the server or a
   * limiter, or turn a memory on again; everything is checked after */
  while (s->memo) lhd_memo_off(L, s);
  if (lua_isnoneornil(L, 2)) return 0;
  s = lhd_check_srv(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_getfield(L, 2, "conn");    /* 3 */
  lua_getfield(L, 2, "by_addr"); /* 4 */
  lua_getfield(L, 2, "by_key");  /* 5 */
  void *conn = lstore_test(L, 3);
  if (conn == NULL || lstore_store(conn) == NULL)
    return luaL_error(L, "bad argument #1 to 'proxy_memo' (conn must be an open store connection of orket.c.store)");
  if (luaL_testudata(L, 4, "orket.ratelimit") == NULL || luaL_testudata(L, 5, "orket.ratelimit") == NULL)
    return luaL_error(L, "bad argument #1 to 'proxy_memo' (by_addr and by_key must be limiters of orket.c.ratelimit)");
  lrl_check(L, 4); /* open, before anything is lent */
  lrl_check(L, 5);
  proxymemo *m = proxymemo_new(lhd_memo_drop, NULL);
  uv_timer_t *tm = malloc(sizeof *tm);
  if (m == NULL || tm == NULL) {
    proxymemo_free(m);
    free(tm);
    return luaL_error(L, "httpd: out of memory");
  }
  uv_timer_init(&rt_get(L)->loop, tm);
  uv_unref((uv_handle_t *)tm); /* the server's work keeps the loop alive, not its sweeps */
  tm->data = s;
  s->memo_timer = tm;
  s->memo = m;
  s->memo_conn = conn;
  s->by_addr = lrl_lend(L, 4, &s->addr_lent);
  s->by_key = lrl_lend(L, 5, &s->key_lent);
  s->key_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  s->addr_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  s->conn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* srv:proxy_forget() -> how many requests the memory held: it holds none after (a sandbox
 * stopped, the settings changed: what was decided no longer holds) */
static int lhd_proxy_forget(lua_State *L) {
  lhd_srv *s = luaL_checkudata(L, 1, LHD_SRV);
  size_t n = s->memo ? proxymemo_count(s->memo) : 0;
  if (s->memo) proxymemo_clear(s->memo);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* srv:proxy_running() -> {{id=, authorization=}, ...}: the requests of this server proxied
 * from the memory whose pump runs, each with its number and its Authorization header (nil:
 * none, local use). Their callers are not known here: the Lua side checks each credential
 * again at a revoking row and cuts those refused (srv:proxy_cut), as it does the streams
 * it started itself. */
static int lhd_proxy_running(lua_State *L) {
  lhd_srv *s = luaL_checkudata(L, 1, LHD_SRV);
  lua_newtable(L);
  lua_Integer n = 0;
  for (lhd_fast *f = s->fast_running; f != NULL; f = f->run_next) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, f->serial);
    lua_setfield(L, -2, "id");
    const char *name, *value;
    for (size_t i = 0; httpd_header_at(f->r, i, &name, &value) == 0; i++)
      if (strcasecmp(name, "Authorization") == 0) {
        lua_pushstring(L, value);
        lua_setfield(L, -2, "authorization");
        break;
      }
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* srv:proxy_cut(ids) -> how many: ends the requests of this server proxied from the memory
 * whose numbers are listed (srv:proxy_running) and whose pump still runs, their answer cut,
 * counted and logged as cut: their callers may read no more. Those callers' clients come
 * again the Lua way, the store's stamp having moved. */
static int lhd_proxy_cut(lua_State *L) {
  lhd_srv *s = luaL_checkudata(L, 1, LHD_SRV);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = 0, len = (lua_Integer)lua_rawlen(L, 2);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, 2, i);
    int isnum;
    lua_Integer id = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum) return luaL_error(L, "bad argument #1 to 'proxy_cut' (item %d is not an integer)", (int)i);
    /* looked up from the start each time: a log line's function may end others */
    lhd_fast *f = s->fast_running;
    while (f != NULL && f->serial != id) f = f->run_next;
    if (f == NULL) continue; /* ended meanwhile */
    httpproxy *px = f->px;
    unsigned st = httpproxy_status(px, NULL);
    lhd_fast_unlink(f);
    httpproxy_free(px);
    lhd_fast_end(L, f, st, LHD_CUT_NOTE, 0, NULL);
    n++;
  }
  lua_pushinteger(L, n);
  return 1;
}

/* srv:proxy_memo_count() -> how many requests the memory holds */
static int lhd_proxy_memo_count(lua_State *L) {
  lhd_srv *s = luaL_checkudata(L, 1, LHD_SRV);
  lua_pushinteger(L, (lua_Integer)(s->memo ? proxymemo_count(s->memo) : 0));
  return 1;
}

static int lhd_port(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)httpd_port(lhd_check_srv(L)->h));
  return 1;
}

static int lhd_live(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)httpd_live(lhd_check_srv(L)->h));
  return 1;
}

/* srv:stop_accepting(): closes the listening socket; open connections go on */
static int lhd_stop_accepting(lua_State *L) {
  httpd_stop_accepting(lhd_check_srv(L)->h);
  return 0;
}

/* srv:shut(): begins the stop (httpd_shut): streams end, what is unanswered gets 503, as
 * does a request coming on a connection still open; the loop sends them, then srv:close() */
static int lhd_shut(lua_State *L) {
  httpd_shut(lhd_check_srv(L)->h);
  return 0;
}

/* srv:pending() -> requests whose answer (or stream's end) is not yet sent */
static int lhd_pending(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)httpd_pending(lhd_check_srv(L)->h));
  return 1;
}

/* srv:close(): ends streams, answers 503 to what is unanswered, stops. Idempotent. A task
 * waiting in accept() gets nil. Also __close; __gc never runs inside the quick function
 * (quick_ref keeps the server while paths are set) nor a refusal's log function
 * (refused_ref), so only these calls are refused there. */
static int lhd_srv_close(lua_State *L) {
  lhd_srv *s = luaL_checkudata(L, 1, LHD_SRV);
  if (s->h == NULL) return 0;
  if (s->in_quick) return luaL_error(L, "httpd: a server cannot be closed from its quick function");
  httpd *h = s->h;
  s->h = NULL;
  lhd_memo_off(L, s);
  httpd_free(h);
  while (s->fast_running) lhd_fast_unlink(s->fast_running); /* pumps that outlive it end alone */
  luaL_unref(L, LUA_REGISTRYINDEX, s->quick_ref);
  s->quick_ref = LUA_NOREF;
  luaL_unref(L, LUA_REGISTRYINDEX, s->refused_ref);
  s->refused_ref = LUA_NOREF;
  s->refused = NULL;
  if (s->waiting && s->w.co_ref != LUA_NOREF) {
    s->waiting = 0;
    rt_wait_finish(&s->w, lhd_push_next, s);
  }
  return 0;
}

static int lhd_srv_tostring(lua_State *L) {
  lhd_srv *s = luaL_checkudata(L, 1, LHD_SRV);
  if (s->h == NULL) lua_pushliteral(L, "http server (closed)");
  else lua_pushfstring(L, "http server (port %d)", (int)httpd_port(s->h));
  return 1;
}

static lua_Integer lhd_opt_int(lua_State *L, const char *field, lua_Integer max) {
  lua_getfield(L, 1, field);
  lua_Integer v = 0;
  if (!lua_isnil(L, -1)) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 0 || v > max)
      luaL_error(L, "bad argument #1 to 'listen' (%s must be an integer from 0 to %I)", field, max);
  }
  lua_pop(L, 1);
  return v;
}

/* The trusted_proxies option (an array of "ADDR" or "ADDR/BITS") into nets: their count. A
 * bad one raises, naming it. */
static size_t lhd_trusted(lua_State *L, httpd_net *nets) {
  if (lua_getfield(L, 1, "trusted_proxies") == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "bad argument #1 to 'listen' (trusted_proxies must be an array of strings)");
  lua_Integer n = luaL_len(L, -1);
  if (n > HTTPD_MAX_TRUSTED) luaL_error(L, "bad argument #1 to 'listen' (more than %d trusted_proxies)", HTTPD_MAX_TRUSTED);
  for (lua_Integer i = 1; i <= n; i++) {
    char err[160];
    const char *v = lua_rawgeti(L, -1, i) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (v == NULL) luaL_error(L, "bad argument #1 to 'listen' (trusted_proxies[%I] must be a string)", i);
    if (httpd_net_parse(v, &nets[i - 1], err, sizeof err) != 0)
      luaL_error(L, "bad argument #1 to 'listen' (trusted_proxies[%I] '%s': %s)", i, v, err);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return (size_t)n;
}

/* listen{host=, port= | unix=PATH, max_header_bytes=, max_body_bytes=, max_bodies_bytes=, max_connections=, max_per_ip=,
 *   idle_timeout_s=, header_timeout_ms=, body_timeout_ms=, body_min_rate=, max_stream_queue=, trusted_proxies=}
 *   -> server | nil, message, code (0 in a field: its default, see httpd.h) */
static int lhd_listen(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  httpd_opts o;
  memset(&o, 0, sizeof o);
  lua_getfield(L, 1, "host");
  o.host = lua_tostring(L, -1);
  lua_getfield(L, 1, "unix");
  o.unix_path = lua_tostring(L, -1);
  if ((o.host == NULL) == (o.unix_path == NULL))
    return luaL_error(L, "bad argument #1 to 'listen' (give host or unix, a string)");
  o.port = (unsigned)lhd_opt_int(L, "port", 65535);
  o.max_header_bytes = (size_t)lhd_opt_int(L, "max_header_bytes", 1 << 24);
  o.max_body_bytes = (size_t)lhd_opt_int(L, "max_body_bytes", (lua_Integer)1 << 32);
  o.max_bodies_bytes = (size_t)lhd_opt_int(L, "max_bodies_bytes", (lua_Integer)1 << 40);
  o.max_connections = (unsigned)lhd_opt_int(L, "max_connections", 100000);
  o.max_per_ip = (unsigned)lhd_opt_int(L, "max_per_ip", 100000);
  o.idle_timeout_s = (unsigned)lhd_opt_int(L, "idle_timeout_s", 86400);
  o.header_timeout_ms = (unsigned)lhd_opt_int(L, "header_timeout_ms", 86400000);
  o.body_timeout_ms = (unsigned)lhd_opt_int(L, "body_timeout_ms", 86400000);
  o.body_min_rate = (unsigned)lhd_opt_int(L, "body_min_rate", 1 << 30);
  o.max_stream_queue = (size_t)lhd_opt_int(L, "max_stream_queue", (lua_Integer)1 << 30);
  httpd_net *nets = lua_newuserdatauv(L, HTTPD_MAX_TRUSTED * sizeof *nets, 0); /* collected */
  o.trusted = nets;
  o.ntrusted = lhd_trusted(L, nets);
  lhd_srv *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s); /* created closed, then the resource */
  s->w.co_ref = LUA_NOREF;
  s->quick_ref = s->refused_ref = LUA_NOREF;
  s->conn_ref = s->addr_ref = s->key_ref = LUA_NOREF;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  s->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  luaL_setmetatable(L, LHD_SRV);
  char err[256];
  s->h = httpd_new(&rt_get(L)->loop, &o, lhd_on_accept, s, err, sizeof err);
  if (s->h == NULL) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    lua_pushliteral(L, "ELISTEN");
    return 3;
  }
  return 1;
}

/* parse_listen("HOST:PORT") -> host, port | nil, message */
static int lhd_parse_listen(lua_State *L) {
  char host[64], err[256];
  unsigned port;
  if (httpd_parse_listen(luaL_checkstring(L, 1), host, sizeof host, &port, err, sizeof err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushstring(L, host);
  lua_pushinteger(L, port);
  return 2;
}

/* trusted_proxy(text) -> true | nil, why: whether text is a trusted_proxies entry of listen's
 * ("ADDR" or "ADDR/BITS", httpd_net_parse) */
static int lhd_trusted_proxy(lua_State *L) {
  httpd_net net;
  char err[160];
  if (httpd_net_parse(luaL_checkstring(L, 1), &net, err, sizeof err) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* is_loopback(host) -> whether the numeric address is a loopback one */
static int lhd_is_loopback(lua_State *L) {
  lua_pushboolean(L, httpd_is_loopback(luaL_checkstring(L, 1)));
  return 1;
}

static const luaL_Reg lhd_req_methods[] = {
    {"body", lhd_body},
    {"proxy", lhd_proxy},
    {"cut", lhd_cut},
    {"respond", lhd_respond},
    {"sse", lhd_sse},
    {"stream", lhd_stream},
    {"send", lhd_send},
    {"queued", lhd_queued},
    {"drain", lhd_drain},
    {"wait_gone", lhd_wait_gone},
    {"gone", lhd_gone},
    {"close", lhd_close},
    {NULL, NULL},
};

static const luaL_Reg lhd_req_meta[] = {
    {"__gc", lhd_close},
    {"__close", lhd_close},
    {"__tostring", lhd_req_tostring},
    {NULL, NULL},
};

static const luaL_Reg lhd_srv_methods[] = {
    {"accept", lhd_accept},
    {"quick", lhd_quick},
    {"refusals", lhd_refusals},
    {"proxy_memo", lhd_proxy_memo},
    {"proxy_forget", lhd_proxy_forget},
    {"proxy_cut", lhd_proxy_cut},
    {"proxy_running", lhd_proxy_running},
    {"proxy_memo_count", lhd_proxy_memo_count},
    {"port", lhd_port},
    {"live", lhd_live},
    {"stop_accepting", lhd_stop_accepting},
    {"shut", lhd_shut},
    {"pending", lhd_pending},
    {"close", lhd_srv_close},
    {NULL, NULL},
};

static const luaL_Reg lhd_srv_meta[] = {
    {"__gc", lhd_srv_close},
    {"__close", lhd_srv_close},
    {"__tostring", lhd_srv_tostring},
    {NULL, NULL},
};

static const luaL_Reg lhd_blob_meta[] = {
    {"__gc", lhd_blob_gc},
    {"__close", lhd_blob_gc},
    {"__len", lhd_blob_len},
    {"__tostring", lhd_blob_tostring},
    {NULL, NULL},
};

static const luaL_Reg lhd_kept_meta[] = {
    {"__gc", lhd_kept_gc},
    {"__close", lhd_kept_gc},
    {"__tostring", lhd_kept_tostring},
    {NULL, NULL},
};

static const luaL_Reg lhd_tally_methods[] = {
    {"stats", lhd_tally_stats},
    {"active", lhd_tally_active},
    {NULL, NULL},
};

static const luaL_Reg lhd_funcs[] = {
    {"listen", lhd_listen},
    {"blob", lhd_blob_new},
    {"proxy_kept", lhd_kept_new},
    {"proxy_tally", lhd_tally_new},
    {"parse_listen", lhd_parse_listen},
    {"is_loopback", lhd_is_loopback},
    {"trusted_proxy", lhd_trusted_proxy},
    {NULL, NULL},
};

int luaopen_orket_httpd(lua_State *L) {
  if (luaL_newmetatable(L, LHD_REQ)) {
    luaL_setfuncs(L, lhd_req_meta, 0);
    lua_pushvalue(L, -1);
    luaL_newlib(L, lhd_req_methods);
    lua_pushcclosure(L, lhd_index, 2);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LHD_SRV)) {
    luaL_setfuncs(L, lhd_srv_meta, 0);
    luaL_newlib(L, lhd_srv_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LHD_BLOB)) luaL_setfuncs(L, lhd_blob_meta, 0);
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LHD_KEPT)) luaL_setfuncs(L, lhd_kept_meta, 0);
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LHD_TALLY)) {
    lua_pushcfunction(L, lhd_tally_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, lhd_tally_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, lhd_funcs);
  return 1;
}
