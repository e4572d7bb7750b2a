/* http.c: libcurl multi on a libuv loop (see http.h). libcurl tells us which sockets to
 * watch (CURLMOPT_SOCKETFUNCTION -> uv_poll) and when to call it back
 * (CURLMOPT_TIMERFUNCTION -> uv_timer); we never call into libcurl from its own callbacks:
 * requests with news are queued and their owners notified after curl returns. */
#define _GNU_SOURCE /* strptime */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>
#include <time.h>
#include <unistd.h>

#include "curlapi.h"

#define HTTP_DEFAULT_MAX_BYTES ((size_t)64 << 20)
#define HTTP_MAX_HEADER_BYTES ((size_t)64 << 10)
/* Idle easy handles kept for reuse: making one and tearing it down costs more CPU than the
 * rest of a short request's client-side work in libcurl. An idle handle holds little. */
#define HTTP_POOL_MAX 16
/* Header lists kept for reuse: one per provider in practice (see http_hdrs_get). */
#define HTTP_HDRS_CACHE 4
/* Connections kept for reuse at least (several providers used in turn keep theirs). */
#define HTTP_CACHE_MIN 16
/* How long a request released after [DONE] may take to read the end of its body (see
 * http_release) before its connection is given up. */
#define HTTP_DRAIN_MS 2000
/* New requests handed to libcurl per loop iteration (see http_on_starter). */
#define HTTP_START_BATCH 1

/* A request header list ("Expect:" then the caller's lines), shared by the requests that
 * send the same lines: each provider sends the same few headers with every request, and
 * building the list costs two allocations a line. */
typedef struct http_hdrs {
  struct curl_slist *list;
  size_t n;    /* the caller's lines */
  size_t refs; /* requests using it, plus one while the client's cache holds it */
} http_hdrs;

/* A socket libcurl has open, with the poll handle that watches it. The handle lives as long
 * as the socket (libcurl closes it through http_on_close), not as long as one transfer: a
 * connection reused by the next request is watched again with the same handle. A new
 * handle per transfer cost four system calls a request (libuv tries a new descriptor in
 * epoll and takes it out again, sets it non-blocking, and unregisters it on close). */
typedef struct http_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  int events; /* what libcurl last asked to watch, as UV_READABLE | UV_WRITABLE */
  http_client *c;
} http_sock;

/* A queue of requests linked through one of their next fields (its offset in http_req). */
typedef struct http_queue {
  http_req *head, *tail;
  size_t link;
} http_queue;

struct http_client {
  curlapi api;         /* libcurl, loaded when the client is made */
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  uv_idle_t starter;   /* runs while requests wait to be handed to libcurl */
  int open_handles;    /* timer and starter: the client is freed when both have closed */
  http_sock **socks;   /* by descriptor: the sockets libcurl has open */
  size_t nsocks;
  http_req *reqs;      /* live requests */
  http_queue ready;    /* requests with news for their owner */
  http_queue starting; /* made but not yet in the multi (see http_on_starter) */
  size_t live;
  int dispatching;
  CURL *pool[HTTP_POOL_MAX]; /* idle easy handles, configured, ready for the next request */
  size_t npool;
  http_hdrs *hdrs[HTTP_HDRS_CACHE]; /* header lists recently sent */
  size_t hdrs_next;  /* the slot to replace next */
  size_t cache_max;    /* CURLMOPT_MAXCONNECTS: never below the most requests live at once */
  /* The CAs to trust, as curl(1) takes them from the environment (libcurl itself reads
   * none of these): CURL_CA_BUNDLE's file, else SSL_CERT_FILE's and SSL_CERT_DIR's; NULL:
   * libcurl's built-in store. Read once, when the client is made. */
  char *ca_file, *ca_dir;
  const char *ca_file_var; /* the variable ca_file came from */
};

struct http_req {
  http_client *c;
  CURL *easy;
  http_hdrs *hdrs;
  uv_timer_t timer;     /* first-byte, idle and total timeouts */
  http_notify_fn notify;
  void *ud;
  frame fr;
  frame_mode framing;
  int framing_by_type;
  int (*take)(void *, const char *, size_t);
  void *take_ud;
  /* response */
  int status;
  int headers_done;
  char *hbuf;           /* name\0value\0 pairs */
  size_t hlen, hcap, hcount;
  /* events queued for the owner: bytes plus offsets */
  char *ev;
  size_t ev_len, ev_cap;
  size_t *ev_off;       /* ev_n + 1 offsets */
  size_t ev_n, ev_offcap;
  size_t received, max_bytes;
  size_t max_queued;    /* 0: no bound; else the transfer pauses past it (paused) */
  int paused;
  uint64_t paused_at;   /* when it paused: the deadlines move by the time spent so */
  uint64_t start, last_rx;
  long first_byte_ms, idle_ms, total_ms, headers_ms;
  int got_byte;         /* any byte of the response: its status line on */
  int got_body;         /* a byte of its body */
  int finished;
  const char *err_code; /* set before finishing with an error */
  const char *phase;
  char *err;            /* the message, allocated when the request fails (most never do) */
  char curl_err[CURL_ERROR_SIZE];
  int sock_errno;       /* why a socket could not be opened (http_on_open): 0, or errno */
  char what[96];        /* "POST http://host:port" for messages; never the query string */
  const char *proxy_var; /* the variable naming the proxy it goes through (NULL: direct) */
  char proxy_shown[96];  /* that proxy's scheme://host:port: no user info */
  int queued;
  int starting;         /* in c->starting, not yet handed to libcurl */
  int draining;         /* released after [DONE]; freed when the transfer ends */
  size_t body_len;
  int body_sent;        /* the whole body went out (http_body_sent), noted as it detaches */
  http_req *ready_next;
  http_req *start_next;
  http_req *prev, *next;
};

/* ---- small helpers --------------------------------------------------------------------- */

static int http_grow(void **buf, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t ncap = *cap ? *cap : 16;
  while (ncap < need) ncap *= 2;
  void *nb = realloc(*buf, ncap * elem);
  if (nb == NULL) return -1;
  *buf = nb;
  *cap = ncap;
  return 0;
}

static http_req **http_link(const http_queue *q, http_req *r) {
  return (http_req **)(void *)((char *)r + q->link);
}

static void http_queue_push(http_queue *q, http_req *r) {
  *http_link(q, r) = NULL;
  if (q->tail) *http_link(q, q->tail) = r;
  else q->head = r;
  q->tail = r;
}

/* Takes r out of q, wherever it is (a scan: queues are short, and r is usually first). */
static void http_queue_remove(http_queue *q, http_req *r) {
  http_req **pp = &q->head, *prev = NULL;
  while (*pp && *pp != r) {
    prev = *pp;
    pp = http_link(q, *pp);
  }
  if (*pp) {
    *pp = *http_link(q, r);
    if (q->tail == r) q->tail = prev;
  }
  *http_link(q, r) = NULL;
}

static void http_enqueue(http_req *r) {
  if (r->queued || r->c == NULL) return;
  r->queued = 1;
  http_queue_push(&r->c->ready, r);
}

static void http_dequeue(http_req *r) {
  if (!r->queued || r->c == NULL) return;
  http_queue_remove(&r->c->ready, r);
  r->queued = 0;
}

static const char *http_env(const char *name);
static int http_url_parts(const char *url, const char **scheme, size_t *slen, const char **host, size_t *hlen,
                          int *v6);

static void http_set_error(http_req *r, const char *code, const char *phase, const char *msg) {
  if (r->err_code) return; /* the first cause wins */
  r->err_code = code;
  r->phase = phase;
  size_t n = strlen(r->what) + strlen(msg) + 3;
  r->err = malloc(n);
  if (r->err) snprintf(r->err, n, "%s: %s", r->what, msg);
}

static size_t http_on_header(char *p, size_t size, size_t n, void *ud);
static int http_on_close(void *clientp, curl_socket_t fd);
static curl_socket_t http_on_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr);
static size_t http_on_body(char *p, size_t size, size_t n, void *ud);

/* A handle for a new request: a pooled one or a new one. Options every request shares are
 * set once, when the handle is made; http_setup sets the rest, all of them every time, so
 * nothing of an earlier request carries over. (curl_easy_reset, then setting everything
 * again, cost more than the rest of libcurl's per-transfer work on the client side.) */
static CURL *http_easy_get(http_client *c) {
  if (c->npool > 0) return c->pool[--c->npool];
  const curlapi *api = &c->api;
  CURL *e = api->easy_init();
  if (e == NULL) return NULL;
  CURLcode rc = CURLE_OK;
#define SET(opt, val) if (rc == CURLE_OK) rc = api->easy_setopt(e, opt, val)
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_CLOSESOCKETFUNCTION, http_on_close);
  SET(CURLOPT_CLOSESOCKETDATA, c);
  SET(CURLOPT_OPENSOCKETFUNCTION, http_on_open);
  SET(CURLOPT_HEADERFUNCTION, http_on_header);
  SET(CURLOPT_WRITEFUNCTION, http_on_body);
  /* 2 KiB instead of 16: streamed events are a few hundred bytes each, and libcurl keeps
   * this buffer for the whole transfer, so with hundreds in flight it weighed more than
   * the rest of a request (8 KiB cost 2 KiB more RSS per in-flight request); a large
   * non-streamed body only takes more reads, each returning up to 2 KiB */
  SET(CURLOPT_BUFFERSIZE, 2048L);
  /* the proxy is chosen here (http_setup, http_proxy_for): libcurl is told it, and an empty
   * no-proxy list keeps it from choosing again from the environment */
  SET(CURLOPT_NOPROXY, "");
  if (c->ca_file) {
    SET(CURLOPT_CAINFO, c->ca_file);
    SET(CURLOPT_PROXY_CAINFO, c->ca_file);
  }
  if (c->ca_dir) {
    SET(CURLOPT_CAPATH, c->ca_dir);
    SET(CURLOPT_PROXY_CAPATH, c->ca_dir);
  }
#undef SET
  if (rc != CURLE_OK) {
    api->easy_cleanup(e);
    return NULL;
  }
  return e;
}

/* Gives back a handle no longer in the multi: pooled (its pointers into the finished
 * request cleared) or freed when the pool is full. Its connection stays in the multi's
 * connection cache either way. */
static void http_easy_put(http_client *c, CURL *e) {
  if (c->npool < HTTP_POOL_MAX) {
    const curlapi *api = &c->api;
    api->easy_setopt(e, CURLOPT_PRIVATE, (char *)NULL);
    api->easy_setopt(e, CURLOPT_ERRORBUFFER, (char *)NULL);
    api->easy_setopt(e, CURLOPT_OPENSOCKETDATA, (void *)NULL);
    api->easy_setopt(e, CURLOPT_HEADERDATA, (void *)NULL);
    api->easy_setopt(e, CURLOPT_WRITEDATA, (void *)NULL);
    api->easy_setopt(e, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    api->easy_setopt(e, CURLOPT_POSTFIELDS, (char *)NULL);
    c->pool[c->npool++] = e;
  } else {
    c->api.easy_cleanup(e);
  }
}

static void http_hdrs_unref(http_client *c, http_hdrs *h) {
  if (h && --h->refs == 0) {
    c->api.slist_free_all(h->list);
    free(h);
  }
}

/* The header list for these lines, with a reference for the caller: a cached one when a
 * recent request sent the same lines, else a new one (then cached). NULL: out of memory. */
static http_hdrs *http_hdrs_get(http_client *c, const char *const *lines, size_t n) {
  for (size_t k = 0; k < HTTP_HDRS_CACHE; k++) {
    http_hdrs *h = c->hdrs[k];
    if (h == NULL || h->n != n) continue;
    const struct curl_slist *l = h->list->next;
    size_t i = 0;
    while (i < n && strcmp(l->data, lines[i]) == 0) {
      l = l->next;
      i++;
    }
    if (i == n) {
      h->refs++;
      return h;
    }
  }
  http_hdrs *h = malloc(sizeof *h);
  if (h == NULL) return NULL;
  /* No "Expect: 100-continue" round trip for large bodies. */
  struct curl_slist *l = c->api.slist_append(NULL, "Expect:");
  for (size_t i = 0; l && i < n; i++) {
    struct curl_slist *nl = c->api.slist_append(l, lines[i]);
    if (nl == NULL) c->api.slist_free_all(l);
    l = nl;
  }
  if (l == NULL) {
    free(h);
    return NULL;
  }
  h->list = l;
  h->n = n;
  h->refs = 2; /* the caller's and the cache's */
  http_hdrs_unref(c, c->hdrs[c->hdrs_next]);
  c->hdrs[c->hdrs_next] = h;
  c->hdrs_next = (c->hdrs_next + 1) % HTTP_HDRS_CACHE;
  return h;
}

static void http_unstart(http_req *r);

/* Whether libcurl sent the whole body of the request's transfer (a handle not yet handed
 * to libcurl may still hold its last transfer's count: not asked). */
static int http_upload_done(http_req *r) {
  curl_off_t sent = -1;
  if (r->c->api.easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &sent) != CURLE_OK) return 0;
  return r->body_len > 0 && sent == (curl_off_t)r->body_len;
}

/* Removes the easy handle from libcurl and marks the request finished. */
static void http_detach(http_req *r) {
  int starting = r->starting;
  if (r->starting) http_unstart(r);
  if (r->easy) {
    r->body_sent = !starting && http_upload_done(r);
    r->c->api.multi_remove_handle(r->c->multi, r->easy);
    /* a paused handle keeps its pause and the piece it held: not one to reuse */
    if (r->paused) r->c->api.easy_cleanup(r->easy);
    else http_easy_put(r->c, r->easy);
    r->easy = NULL;
    r->paused = 0;
  }
  http_hdrs_unref(r->c, r->hdrs);
  r->hdrs = NULL;
  uv_timer_stop(&r->timer);
  r->finished = 1;
}

/* ---- events -------------------------------------------------------------------------- */

static int http_emit(void *ud, const char *data, size_t len) {
  http_req *r = ud;
  if (r->take && r->fr.mode != FRAME_RAW) { /* a non-2xx body arrives raw, for Lua */
    int taken = r->take(r->take_ud, data, len);
    if (taken > 0) return 0;
    if (taken < 0) {
      http_set_error(r, HTTP_E_TOO_BIG, NULL, "out of memory while decoding the response");
      return 1;
    }
  }
  if (http_grow((void **)&r->ev, &r->ev_cap, r->ev_len + len + 1, 1) != 0 ||
      http_grow((void **)&r->ev_off, &r->ev_offcap, r->ev_n + 2, sizeof(size_t)) != 0) {
    http_set_error(r, HTTP_E_TOO_BIG, NULL, "out of memory while queueing the response");
    return 1;
  }
  if (r->ev_n == 0) r->ev_off[0] = r->ev_len;
  memcpy(r->ev + r->ev_len, data, len);
  r->ev_len += len;
  r->ev_off[++r->ev_n] = r->ev_len;
  http_enqueue(r);
  return 0;
}

static void http_frame_status(http_req *r, frame_status st) {
  switch (st) {
  case FRAME_OK: break;
  case FRAME_DONE: http_enqueue(r); break; /* http_finished() now reports 1 */
  case FRAME_TOO_BIG:
    http_set_error(r, HTTP_E_TOO_BIG, NULL, "a streamed event exceeds the size cap");
    break;
  case FRAME_NOMEM: http_set_error(r, HTTP_E_TOO_BIG, NULL, "out of memory"); break;
  case FRAME_STOP: break; /* http_emit recorded why */
  }
}

/* ---- libcurl callbacks (no libcurl calls in here) ------------------------------------- */

static void http_arm(http_req *r);

/* A paused transfer waits for its owner, not for the server: the time it spends so is the
 * owner's, and none of its deadlines counts it (a large answer to a slow reader was cut at
 * the total or idle timeout however quick the server). The timer stops until it resumes;
 * an owner that never takes its events is the owner's to end. */
static void http_pause_clock(http_req *r) {
  r->paused = 1;
  r->paused_at = uv_now(r->c->loop);
  uv_timer_stop(&r->timer);
}

static void http_resume_clock(http_req *r) {
  uint64_t spent = uv_now(r->c->loop) - r->paused_at;
  r->paused = 0;
  r->start += spent;
  r->last_rx += spent;
  http_arm(r);
}

/* Whether the answer has begun, for the deadlines: with a first byte's deadline, at the
 * body's first byte (a model server sends its headers at once and its first token after
 * the prompt is read: that wait is the first byte's, not a stall); without one, at the
 * response's first byte. The idle clock runs from then on. */
static int http_begun(const http_req *r) { return r->first_byte_ms ? r->got_body : r->got_byte; }

/* Whether the first byte's deadline stands: until the answer begins, but not while headers
 * arrive under a deadline of their own (an upstream dripping header lines is slow with its
 * headers, and said so) */
static int http_first_byte_due(const http_req *r) {
  return r->first_byte_ms && !http_begun(r) && !(r->got_byte && !r->headers_done && r->headers_ms);
}

static void http_touch(http_req *r, int body) {
  int was = http_begun(r);
  r->got_byte = 1;
  if (body) r->got_body = 1;
  r->last_rx = uv_now(r->c->loop);
  /* the answer's beginning starts the idle clock; later bytes only move last_rx */
  if (!was || (r->idle_ms && !uv_is_active((uv_handle_t *)&r->timer))) http_arm(r);
}

/* Whether the headers name text/event-stream as the media type (any case, parameters after
 * a ';' allowed): the body is then split into events before the owner sees it. */
static int http_event_stream(const http_req *r) {
  static const char want[] = "text/event-stream";
  size_t at = 0;
  const char *name, *value;
  while (http_header_next(r, &at, &name, &value) == 0) {
    if (strcmp(name, "content-type") != 0) continue;
    while (*value == ' ' || *value == '\t') value++;
    size_t i = 0;
    while (want[i] && tolower((unsigned char)value[i]) == want[i]) i++;
    if (want[i]) return 0;
    char end = value[i];
    return end == '\0' || end == ';' || end == ' ' || end == '\t';
  }
  return 0;
}

/* A line of a folded header (obs-fold: it starts with SP or HTAB) joined to the value before it
 * with one SP, as RFC 9112 5.2 asks of a proxy that passes it on: never a header of its own,
 * so a continuation's "Name: v" is only more of the value. One before any header continues
 * nothing and is ignored (5.2 allows it). 0 (the error set) past the headers' cap. */
static int http_unfold(http_req *r, const char *p, size_t end) {
  size_t s = 0;
  while (s < end && (p[s] == ' ' || p[s] == '\t')) s++;
  if (r->hcount == 0 || s == end) return 1;
  size_t at = r->hlen - 1; /* the last value's NUL, where the line goes */
  while (r->hbuf[at - 1] == ' ' || r->hbuf[at - 1] == '\t') at--;
  /* no SP after an empty value: its leading whitespace is not kept either */
  size_t sep = r->hbuf[at - 1] != '\0', need = at + sep + (end - s) + 1;
  if (need > HTTP_MAX_HEADER_BYTES) {
    http_set_error(r, HTTP_E_PROTOCOL, NULL, "response headers exceed 64 KiB");
    return 0;
  }
  if (http_grow((void **)&r->hbuf, &r->hcap, need, 1) != 0) {
    http_set_error(r, HTTP_E_TOO_BIG, NULL, "out of memory");
    return 0;
  }
  if (sep) r->hbuf[at] = ' ';
  memcpy(r->hbuf + at + sep, p + s, end - s);
  r->hbuf[need - 1] = '\0';
  r->hlen = need;
  return 1;
}

static size_t http_on_header(char *p, size_t size, size_t n, void *ud) {
  http_req *r = ud;
  size_t len = size * n;
  if (r->c) http_touch(r, 0);
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a status line starts a new response */
    const char *sp = memchr(p, ' ', len);
    r->status = sp ? atoi(sp + 1) : 0;
    r->hlen = r->hcount = 0;
    return len;
  }
  size_t end = len;
  while (end > 0 && (p[end - 1] == '\r' || p[end - 1] == '\n')) end--;
  if (end == 0) { /* the blank line: headers complete, unless this was 1xx */
    if (r->status >= 200) {
      r->headers_done = 1;
      if (r->status < 200 || r->status > 299) frame_set_mode(&r->fr, FRAME_RAW);
      else if (r->framing_by_type) frame_set_mode(&r->fr, http_event_stream(r) ? FRAME_SSE : FRAME_RAW);
      http_enqueue(r);
    }
    return len;
  }
  if (p[0] == ' ' || p[0] == '\t') return http_unfold(r, p, end) ? len : 0;
  const char *colon = memchr(p, ':', end);
  if (colon == NULL) return len;
  size_t nlen = (size_t)(colon - p);
  const char *v = colon + 1;
  while (v < p + end && (*v == ' ' || *v == '\t')) v++;
  size_t vlen = (size_t)(p + end - v);
  if (r->hlen + nlen + vlen + 2 > HTTP_MAX_HEADER_BYTES) {
    http_set_error(r, HTTP_E_PROTOCOL, NULL, "response headers exceed 64 KiB");
    return 0; /* aborts the transfer */
  }
  if (http_grow((void **)&r->hbuf, &r->hcap, r->hlen + nlen + vlen + 2, 1) != 0) {
    http_set_error(r, HTTP_E_TOO_BIG, NULL, "out of memory");
    return 0;
  }
  for (size_t i = 0; i < nlen; i++) r->hbuf[r->hlen + i] = (char)tolower((unsigned char)p[i]);
  r->hbuf[r->hlen + nlen] = '\0';
  memcpy(r->hbuf + r->hlen + nlen + 1, v, vlen);
  r->hbuf[r->hlen + nlen + 1 + vlen] = '\0';
  r->hlen += nlen + vlen + 2;
  r->hcount++;
  return len;
}

static size_t http_on_body(char *p, size_t size, size_t n, void *ud) {
  http_req *r = ud;
  size_t len = size * n;
  if (r->c) http_touch(r, 1);
  if (r->fr.done) return len; /* after [DONE]: drain what the server still sends */
  if (r->max_queued && r->ev_len > 0 && r->ev_len + len > r->max_queued) {
    /* the owner is behind: stop reading from the server (libcurl keeps this piece and
     * hands it over again when http_events_clear resumes the transfer) */
    http_pause_clock(r);
    return CURL_WRITEFUNC_PAUSE;
  }
  r->received += len;
  if (r->received > r->max_bytes) {
    char msg[96];
    snprintf(msg, sizeof msg, "response body exceeds the %zu-byte cap", r->max_bytes);
    http_set_error(r, HTTP_E_TOO_BIG, NULL, msg);
    return 0;
  }
  frame_status st = frame_feed(&r->fr, p, len, http_emit, r);
  http_frame_status(r, st);
  return st == FRAME_OK || st == FRAME_DONE ? len : 0;
}

/* ---- finishing ------------------------------------------------------------------------ */

static void http_free(http_req *r);

/* What a failure through a proxy adds to libcurl's words, which name the proxy's host and
 * port as if they were the server's: which proxy, from which variable, and how to go direct. */
static void http_proxy_note(const http_req *r, char *out, size_t n) {
  const char *url = strchr(r->what, ' '); /* "METHOD scheme://host[:port]" */
  const char *scheme, *host = "";
  size_t slen, hlen = 0;
  int v6 = 0;
  if (url == NULL || http_url_parts(url + 1, &scheme, &slen, &host, &hlen, &v6) != 0) hlen = 0;
  snprintf(out, n, " (through the proxy %s, from %s: to reach %.*s directly, add it to NO_PROXY as the URL "
           "writes it)", r->proxy_shown, r->proxy_var, (int)hlen, host);
}

static void http_complete(http_req *r, CURLcode rc) {
  if (rc == CURLE_OK) {
    http_frame_status(r, frame_finish(&r->fr, http_emit, r));
  } else if (!r->err_code) {
    /* libcurl's text may quote a proxy variable whole, password and all */
    char detail[CURL_ERROR_SIZE + 64], msg[CURL_ERROR_SIZE + 1280], note[320] = "";
    http_redact(detail, sizeof detail, r->curl_err[0] ? r->curl_err : r->c->api.easy_strerror(rc));
    if (r->proxy_var) http_proxy_note(r, note, sizeof note);
    if (r->proxy_var && strncmp(r->curl_err, "Unsupported proxy", 17) == 0) {
      /* a setting that can never work: said once, not retried */
      snprintf(msg, sizeof msg, "%s: %s is no proxy URL libcurl can use (scheme://[user:password@]host:port, the "
               "scheme http, https, socks4, socks4a, socks5 or socks5h): fix or unset it",
               detail, r->proxy_var);
      http_set_error(r, HTTP_E_PROTOCOL, NULL, msg);
    } else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_ISSUER_ERROR) {
      /* the same certificate is refused every time: final, and how to trust a private CA */
      const http_client *c = r->c;
      char from[640] = "";
      if (c->ca_file || c->ca_dir)
        snprintf(from, sizeof from, " (the CAs trusted: %s%s%.200s%s%s%.200s)", c->ca_file ? c->ca_file_var : "",
                 c->ca_file ? "=" : "", c->ca_file ? c->ca_file : "", c->ca_file && c->ca_dir ? ", " : "",
                 c->ca_dir ? "SSL_CERT_DIR=" : "", c->ca_dir ? c->ca_dir : "");
      snprintf(msg, sizeof msg, "%s%s%s. To trust a private CA, set SSL_CERT_FILE or CURL_CA_BUNDLE to its PEM file "
               "(or SSL_CERT_DIR to a directory hashed by c_rehash), or add it to the system's store "
               "(update-ca-certificates)", detail, note, from);
      http_set_error(r, HTTP_E_PROTOCOL, NULL, msg);
    } else {
      snprintf(msg, sizeof msg, "%s%s", detail, note);
      switch (rc) {
      case CURLE_OPERATION_TIMEDOUT:
        http_set_error(r, HTTP_E_TIMEOUT, r->got_byte ? "total" : "connect", msg);
        break;
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT:
      case CURLE_WEIRD_SERVER_REPLY:
      case CURLE_TOO_MANY_REDIRECTS:
        http_set_error(r, HTTP_E_PROTOCOL, NULL, msg);
        break;
      default: /* couldn't connect, reset, closed mid-body (PARTIAL_FILE, RECV_ERROR), TLS */
        if (rc == CURLE_COULDNT_CONNECT && r->sock_errno) {
          /* no socket to connect with: the C library's words, never libcurl's "connect" ones */
          snprintf(msg, sizeof msg, "no socket could be opened (%s)%s", strerror(r->sock_errno),
                   r->sock_errno == EMFILE ? ": this process may open no more files: raise its limit, ulimit -n or "
                                             "systemd LimitNOFILE="
                   : r->sock_errno == ENFILE ? ": the system may open no more files: raise sysctl fs.file-max, or "
                                               "end what holds them"
                                             : "");
        }
        http_set_error(r, HTTP_E_TRANSIENT, NULL, msg);
        break;
      }
    }
  }
  http_detach(r);
  if (r->draining) http_free(r);
  else http_enqueue(r);
}

static void http_read_done(http_client *c) {
  CURLMsg *m;
  int left;
  while ((m = c->api.multi_info_read(c->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE) continue;
    http_req *r = NULL;
    c->api.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (r) http_complete(r, m->data.result);
  }
}

/* Tells owners about news, one request at a time; an owner may start or release requests
 * meanwhile (the queue copes), but libcurl is not on the stack. */
static void http_dispatch(http_client *c) {
  if (c->dispatching) return;
  c->dispatching = 1;
  while (c->ready.head) {
    http_req *r = c->ready.head;
    http_queue_remove(&c->ready, r);
    r->queued = 0;
    if (r->notify) r->notify(r, r->ud);
  }
  c->dispatching = 0;
}

static void http_after_curl(http_client *c) {
  http_read_done(c);
  http_dispatch(c);
}

/* ---- the loop side -------------------------------------------------------------------- */

static void http_sock_closed(uv_handle_t *h) { free(h->data); }

/* Stops watching a socket for good: libcurl is about to close it. */
static void http_sock_forget(http_client *c, curl_socket_t fd) {
  if (fd < 0 || (size_t)fd >= c->nsocks || c->socks[fd] == NULL) return;
  http_sock *s = c->socks[fd];
  c->socks[fd] = NULL;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, http_sock_closed);
}

/* The watch for a socket: the one it has, or a new one. NULL when out of memory. */
static http_sock *http_sock_get(http_client *c, curl_socket_t fd) {
  if (fd < 0) return NULL;
  if ((size_t)fd >= c->nsocks) {
    size_t n = c->nsocks ? c->nsocks : 64;
    while (n <= (size_t)fd) n *= 2;
    http_sock **ns = realloc(c->socks, n * sizeof *ns);
    if (ns == NULL) return NULL;
    memset(ns + c->nsocks, 0, (n - c->nsocks) * sizeof *ns);
    c->socks = ns;
    c->nsocks = n;
  }
  if (c->socks[fd]) return c->socks[fd];
  http_sock *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
    free(s);
    return NULL;
  }
  s->poll.data = s;
  s->fd = fd;
  s->c = c;
  c->socks[fd] = s;
  return s;
}

/* libcurl's own socket(), but with its errno kept: out of descriptors, libcurl says only
 * "Couldn't connect to server", which read as nothing listening there (a working model
 * server restarted for nothing); http_complete says what it was */
static curl_socket_t http_on_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr) {
  (void)purpose;
  int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  if (fd < 0 && clientp) ((http_req *)clientp)->sock_errno = errno;
  return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static int http_on_close(void *clientp, curl_socket_t fd) {
  http_sock_forget(clientp, fd);
  return close(fd);
}

static void http_on_poll(uv_poll_t *h, int status, int events) {
  http_sock *s = h->data;
  http_client *c = s->c;
  curl_socket_t fd = s->fd;
  int flags = 0;
  /* An error on the socket (libuv has stopped the watch) is given to libcurl as the
   * readiness it asked for, never as CURL_CSELECT_ERR: its own recv or connect check then
   * meets the error and says what it is, and a kept connection the server reset as a
   * request went out is known as one that died unused, the request sent again on a new
   * one. CURL_CSELECT_ERR fails the transfer at once ("select/poll returned error"). */
  if (status < 0) events = s->events;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running;
  c->api.multi_socket_action(c->multi, fd, flags, &running);
  /* still wanted after an error: watch it again (s lives until its close callback) */
  if (status < 0 && c->socks[fd] == s && s->events != 0) uv_poll_start(&s->poll, s->events, http_on_poll);
  http_after_curl(c);
}

static int http_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)easy;
  (void)socketp; /* the watch is found by descriptor: it outlives libcurl's own record */
  http_client *c = userp;
  if (what == CURL_POLL_REMOVE) { /* not now: the socket may serve the next request */
    if (fd >= 0 && (size_t)fd < c->nsocks && c->socks[fd]) {
      c->socks[fd]->events = 0;
      uv_poll_stop(&c->socks[fd]->poll);
    }
    return 0;
  }
  http_sock *s = http_sock_get(c, fd);
  if (s == NULL) return -1;
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  s->events = events;
  uv_poll_start(&s->poll, events, http_on_poll);
  return 0;
}

static void http_on_timer(uv_timer_t *t) {
  http_client *c = t->data;
  int running;
  c->api.multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  http_after_curl(c);
}

/* Hands waiting requests to libcurl, HTTP_START_BATCH per loop iteration, and lets it send
 * them at once. libcurl would send every request added before its next timeout in one
 * call, and the answers that arrive meanwhile would wait for all of it: 64 started
 * together took some 2 ms to send, a queue every early answer stood in. Started this way,
 * the loop polls between sends (an idle handle makes that poll not block), so an answer
 * waits for at most one send; the server sees the requests as soon as before, only spread
 * over the iterations, and a stream's result reaches its task when it is complete. */
static void http_on_starter(uv_idle_t *h) {
  http_client *c = h->data;
  for (int k = 0; k < HTTP_START_BATCH && c->starting.head; k++) {
    http_req *r = c->starting.head;
    http_unstart(r);
    CURLMcode mc = c->api.multi_add_handle(c->multi, r->easy);
    if (mc != CURLM_OK) {
      http_set_error(r, HTTP_E_TRANSIENT, NULL, c->api.multi_strerror(mc));
      http_detach(r);
      http_enqueue(r);
    }
  }
  if (c->starting.head == NULL) uv_idle_stop(&c->starter);
  int running;
  c->api.multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  http_after_curl(c);
}

static void http_unstart(http_req *r) {
  http_queue_remove(&r->c->starting, r);
  r->starting = 0;
}

static int http_on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  http_client *c = userp;
  if (timeout_ms < 0) uv_timer_stop(&c->timer);
  else uv_timer_start(&c->timer, http_on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

/* ---- per-request timeouts ------------------------------------------------------------- */

static void http_on_deadline(uv_timer_t *t) {
  http_req *r = t->data;
  if (r->finished || r->c == NULL) return;
  uint64_t now = uv_now(r->c->loop);
  if (r->draining && now >= r->start + (uint64_t)r->total_ms) {
    http_detach(r); /* the connection goes with it */
    http_free(r);
    return;
  }
  char msg[96];
  if (r->total_ms && now >= r->start + (uint64_t)r->total_ms) {
    snprintf(msg, sizeof msg, "no complete response within %ld ms", r->total_ms);
    http_abort(r, HTTP_E_TIMEOUT, msg);
    r->phase = "total";
  } else if (http_first_byte_due(r) && now >= r->start + (uint64_t)r->first_byte_ms) {
    /* before the headers' deadline, which passes with it when the two are the same: a
     * server that sent nothing at all is said to be silent, not slow with its headers */
    snprintf(msg, sizeof msg, r->headers_done ? "no response body within %ld ms (the headers came, then nothing)"
                                              : "no response within %ld ms", r->first_byte_ms);
    http_abort(r, HTTP_E_TIMEOUT, msg);
    r->phase = "first_byte";
  } else if (!r->headers_done && r->headers_ms && now >= r->start + (uint64_t)r->headers_ms) {
    /* an upstream that drips header lines or 1xx answers meets no idle limit; one that sent
     * nothing at all by then (the headers' deadline the shorter) is silent, not slow */
    snprintf(msg, sizeof msg, r->got_byte ? "no complete response headers within %ld ms" : "no response within %ld ms",
             r->headers_ms);
    http_abort(r, HTTP_E_TIMEOUT, msg); /* (which clears the phase) */
    r->phase = r->got_byte ? "headers" : "first_byte";
  } else if (http_begun(r) && r->idle_ms && now >= r->last_rx + (uint64_t)r->idle_ms) {
    snprintf(msg, sizeof msg, "the response stalled for %ld ms", r->idle_ms);
    http_abort(r, HTTP_E_TIMEOUT, msg);
    r->phase = "idle";
  } else {
    http_arm(r); /* bytes arrived since: look again at the new deadline */
    return;
  }
  http_enqueue(r);
  http_dispatch(r->c);
}

/* Arms the timer for the nearest deadline. Received bytes move the idle deadline without
 * touching the timer (cheap per chunk); the timer re-checks when it fires. */
static void http_arm(http_req *r) {
  if (r->paused) return; /* the clock stands still until it resumes */
  uint64_t now = uv_now(r->c->loop), due = UINT64_MAX;
  if (r->total_ms) due = r->start + (uint64_t)r->total_ms;
  if (http_first_byte_due(r) && r->start + (uint64_t)r->first_byte_ms < due)
    due = r->start + (uint64_t)r->first_byte_ms;
  if (http_begun(r) && r->idle_ms && r->last_rx + (uint64_t)r->idle_ms < due)
    due = r->last_rx + (uint64_t)r->idle_ms;
  if (!r->headers_done && r->headers_ms && r->start + (uint64_t)r->headers_ms < due)
    due = r->start + (uint64_t)r->headers_ms;
  if (due == UINT64_MAX) return;
  uv_timer_start(&r->timer, http_on_deadline, due > now ? due - now : 0, 0);
}

/* ---- public API ----------------------------------------------------------------------- */

http_client *http_client_new(uv_loop_t *loop, char *err, size_t errlen) {
  http_client *c = calloc(1, sizeof *c);
  if (c == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (curlapi_open(&c->api, err, errlen) != 0) {
    free(c);
    return NULL;
  }
  if (c->api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(err, errlen, "libcurl failed to initialise");
    curlapi_close(&c->api);
    free(c);
    return NULL;
  }
  c->loop = loop;
  c->multi = c->api.multi_init();
  if (c->multi == NULL) {
    snprintf(err, errlen, "libcurl failed to create a multi handle");
    c->api.global_cleanup();
    curlapi_close(&c->api);
    free(c);
    return NULL;
  }
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  uv_idle_init(loop, &c->starter);
  c->starter.data = c;
  c->open_handles = 2;
  c->ready.link = offsetof(http_req, ready_next);
  c->starting.link = offsetof(http_req, start_next);
  c->api.multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, http_on_socket);
  c->api.multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  c->api.multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, http_on_curl_timer);
  c->api.multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  c->cache_max = HTTP_CACHE_MIN;
  c->api.multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->cache_max);
  /* as curl(1): CURL_CA_BUNDLE alone, else SSL_CERT_DIR and SSL_CERT_FILE (a copy fails
   * quietly when out of memory: libcurl's own store is then used, and says what failed) */
  const char *bundle = http_env("CURL_CA_BUNDLE");
  if (bundle) {
    c->ca_file = strdup(bundle);
    c->ca_file_var = "CURL_CA_BUNDLE";
  } else {
    const char *file = http_env("SSL_CERT_FILE"), *dir = http_env("SSL_CERT_DIR");
    if (file) {
      c->ca_file = strdup(file);
      c->ca_file_var = "SSL_CERT_FILE";
    }
    if (dir) c->ca_dir = strdup(dir);
  }
  return c;
}

static void http_client_closed(uv_handle_t *h) {
  http_client *c = h->data;
  if (--c->open_handles > 0) return;
  c->api.global_cleanup();
  curlapi_close(&c->api);
  free(c->ca_file);
  free(c->ca_dir);
  free(c);
}

void http_client_free(http_client *c) {
  if (c == NULL) return;
  while (c->reqs) {
    http_req *r = c->reqs;
    if (!r->finished) {
      http_set_error(r, HTTP_E_CANCELED, NULL, "the runtime is closing");
      http_detach(r);
    }
    http_dequeue(r);
    c->reqs = r->next;
    r->prev = r->next = NULL;
    r->c = NULL;
    if (r->draining) http_free(r); /* nobody else will */
  }
  while (c->npool > 0) c->api.easy_cleanup(c->pool[--c->npool]);
  for (size_t k = 0; k < HTTP_HDRS_CACHE; k++) {
    http_hdrs_unref(c, c->hdrs[k]);
    c->hdrs[k] = NULL;
  }
  c->api.multi_cleanup(c->multi); /* closes its sockets through http_on_close */
  for (size_t fd = 0; fd < c->nsocks; fd++) http_sock_forget(c, (curl_socket_t)fd);
  free(c->socks);
  c->socks = NULL;
  c->nsocks = 0;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, http_client_closed);
  uv_close((uv_handle_t *)&c->starter, http_client_closed);
}

/* Sets every option that differs between requests (see http_easy_get). */
static int http_setup(http_req *r, const http_opts *o, char *err, size_t errlen) {
  http_client *c = r->c;
  const curlapi *api = &c->api;
  CURL *e = r->easy;
  const char *method = o->method ? o->method : (o->body ? "POST" : "GET");
  r->hdrs = http_hdrs_get(c, o->headers, o->nheaders);
  if (r->hdrs == NULL) {
    snprintf(err, errlen, "%s: out of memory", r->what);
    return -1;
  }
  CURLcode rc = CURLE_OK;
#define SET(opt, val) if (rc == CURLE_OK) rc = api->easy_setopt(e, opt, val)
  SET(CURLOPT_URL, o->url);
  SET(CURLOPT_PRIVATE, (char *)r);
  SET(CURLOPT_ERRORBUFFER, r->curl_err);
  SET(CURLOPT_OPENSOCKETDATA, r);
  SET(CURLOPT_HEADERDATA, r);
  SET(CURLOPT_WRITEDATA, r);
  SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 0L);
  SET(CURLOPT_HTTPHEADER, r->hdrs->list);
  SET(CURLOPT_UNIX_SOCKET_PATH, (char *)o->unix_socket); /* NULL: a pooled handle forgets it */
  /* "" is no proxy (a pooled handle forgets the last one); libcurl uses none over a unix socket */
  const char *proxy = NULL;
  r->proxy_var = NULL;
  if (o->unix_socket == NULL && http_proxy_for(o->url, &r->proxy_var, &proxy))
    http_origin(r->proxy_shown, sizeof r->proxy_shown, proxy);
  SET(CURLOPT_PROXY, proxy ? proxy : "");
  /* The method's options are all set every time: a pooled handle keeps what the last
   * request set, and libcurl's NOBODY (a HEAD) survives POSTFIELDS, which would send the
   * next POST as HEAD with no body. NOBODY 0 first (it turns a HEAD back into a GET), then
   * what makes this request's method. */
  int head = o->body == NULL && strcmp(method, "HEAD") == 0;
  SET(CURLOPT_NOBODY, 0L);
  /* a HEAD's connection is not kept: a server that sends a body after a HEAD's headers
   * anyway would leave it at the start of the next answer on that connection */
  SET(CURLOPT_FORBID_REUSE, head ? 1L : 0L);
  if (o->body) { /* a POST unless method says otherwise; the body is not copied */
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
    SET(CURLOPT_POSTFIELDS, o->body);
    SET(CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") == 0 ? (char *)NULL : method);
  } else if (head) {
    /* libcurl's own HEAD: asked as a custom method it waits for the body the headers
     * announce (Content-Length), which never comes */
    SET(CURLOPT_HTTPGET, 1L);
    SET(CURLOPT_CUSTOMREQUEST, (char *)NULL);
    SET(CURLOPT_NOBODY, 1L);
  } else {
    SET(CURLOPT_HTTPGET, 1L);
    SET(CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") == 0 ? (char *)NULL : method);
  }
#undef SET
  if (rc != CURLE_OK) {
    snprintf(err, errlen, "%s: %s", r->what, api->easy_strerror(rc));
    return -1;
  }
  return 0;
}

/* "POST scheme://host[:port]" from the URL, for messages: no path query, no user info. */
static size_t http_put(char *out, size_t o, size_t n, const char *s, size_t len) {
  if (o + 1 >= n) return o;
  if (len > n - 1 - o) len = n - 1 - o; /* cut, as snprintf would */
  memcpy(out + o, s, len);
  return o + len;
}

int http_is_absolute(const char *url) {
  /* RFC 3986 3.1: a letter, then letters, digits, '+', '-' or '.' */
  if (!((url[0] | 0x20) >= 'a' && (url[0] | 0x20) <= 'z')) return 0;
  size_t i = 1;
  while (url[i] && (isalnum((unsigned char)url[i]) || url[i] == '+' || url[i] == '-' || url[i] == '.')) i++;
  return strncmp(url + i, "://", 3) == 0;
}

/* "scheme://host[:port]" from the URL at out + o: the one rule for every message that
 * names a URL (a Location too) -> the new end. (Copied piece by piece, not formatted: it is
 * made for every request, its message for the few that fail.) */
static size_t http_origin_at(char *out, size_t o, size_t n, const char *url) {
  const char *p = http_is_absolute(url) ? strstr(url, "://") : NULL;
  const char *host = p ? p + 3 : url;
  /* the user info ends at the authority's last '@' (a password may hold one; a path's
   * '@', as in https://h/@owner/x, is past the authority) */
  size_t auth = strcspn(host, "/?#");
  for (size_t i = auth; i > 0; i--)
    if (host[i - 1] == '@') {
      host += i;
      break;
    }
  size_t hl = strcspn(host, "/?#");
  /* a port that is not digits is no port: a password holding a '/' ("u:p/w@h") ends the
   * authority early, and what follows its ':' is the password's start */
  const char *colon = host[0] == '[' ? NULL : memchr(host, ':', hl);
  if (colon && strspn(colon + 1, "0123456789") != hl - (size_t)(colon + 1 - host)) hl = (size_t)(colon - host);
  if (p) o = http_put(out, o, n, url, (size_t)(p - url) + 3);
  o = http_put(out, o, n, host, hl);
  out[o] = '\0';
  return o;
}

size_t http_origin(char *out, size_t n, const char *url) {
  if (n == 0) return 0;
  out[0] = '\0';
  return http_origin_at(out, 0, n, url);
}

static void http_describe(char *out, size_t n, const char *method, const char *url) {
  size_t o = 0;
  o = http_put(out, o, n, method, strlen(method));
  o = http_put(out, o, n, " ", 1);
  http_origin_at(out, o, n, url);
}

/* ---- proxies and trusted CAs, from the environment --------------------------------------- */

/* The proxy variables, in the order libcurl 7.88 looks (http_proxy_for), and the ones whose
 * user info is masked in messages (http_redact). */
static const char *const http_proxy_vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                              "all_proxy", "ALL_PROXY"};

/* A variable's value, NULL when unset or empty (as libcurl's curl_getenv takes it). */
static const char *http_env(const char *name) {
  const char *v = getenv(name);
  return v && v[0] ? v : NULL;
}

/* The URL's scheme (up to "://") and host as written: no user info, no port, an IPv6
 * address without its brackets (*v6 set). 0, or -1 for a URL with no "scheme://". */
static int http_url_parts(const char *url, const char **scheme, size_t *slen, const char **host, size_t *hlen,
                          int *v6) {
  if (!http_is_absolute(url)) return -1;
  const char *p = strstr(url, "://");
  *scheme = url;
  *slen = (size_t)(p - url);
  const char *h = p + 3;
  size_t auth = strcspn(h, "/?#");
  for (size_t i = auth; i > 0; i--)
    if (h[i - 1] == '@') {
      auth -= i;
      h += i;
      break;
    }
  *v6 = h[0] == '[';
  if (*v6) {
    const char *end = memchr(h, ']', auth);
    if (end == NULL) return -1;
    *host = h + 1;
    *hlen = (size_t)(end - h - 1);
  } else {
    *host = h;
    const char *colon = memchr(h, ':', auth);
    *hlen = colon ? (size_t)(colon - h) : auth;
  }
  return 0;
}

static int http_ieq(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return 0;
  return 1;
}

/* Whether the host (as http_url_parts gives it) is this machine: the set
 * orket.llm.common.is_loopback names too, so a refused connection there is never a proxy's. */
static int http_host_is_loopback(const char *h, size_t n, int v6) {
  if (n > 0 && h[n - 1] == '.' && !v6) n--;
  if (v6) return n == 3 && memcmp(h, "::1", 3) == 0;
  if ((n == 9 && http_ieq(h, "localhost", 9)) || (n > 10 && http_ieq(h + n - 10, ".localhost", 10))) return 1;
  if (n == 7 && memcmp(h, "0.0.0.0", 7) == 0) return 1;
  char ip[16];
  struct in_addr a;
  if (n < 7 || n >= sizeof ip) return 0;
  memcpy(ip, h, n);
  ip[n] = '\0';
  return inet_pton(AF_INET, ip, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* Whether an address (text of n bytes) is in tok's CIDR range or is tok's address. */
static int http_cidr_match(const char *h, size_t n, int v6, const char *tok, size_t tlen) {
  char ip[64], net[64];
  if (n >= sizeof ip || tlen >= sizeof net) return 0;
  memcpy(ip, h, n);
  ip[n] = '\0';
  memcpy(net, tok, tlen);
  net[tlen] = '\0';
  long bits = -1;
  char *slash = strchr(net, '/');
  if (slash) {
    *slash = '\0';
    char *end;
    bits = strtol(slash + 1, &end, 10);
    if (*end || end == slash + 1) return 0;
  }
  if (net[0] == '[' && net[strlen(net) - 1] == ']') { /* "[::1]" written as the URL writes it */
    memmove(net, net + 1, strlen(net));
    net[strlen(net) - 1] = '\0';
  }
  int af = v6 ? AF_INET6 : AF_INET;
  unsigned char a[16], b[16];
  if (inet_pton(af, ip, a) != 1 || inet_pton(af, net, b) != 1) return 0;
  int len = v6 ? 128 : 32;
  /* no prefix, or /0, is the one address (as libcurl 7.88 reads it: never "every address") */
  if (bits <= 0 || bits > len) bits = len;
  for (long i = 0; i < bits; i++) {
    unsigned char m = (unsigned char)(0x80 >> (i % 8));
    if ((a[i / 8] & m) != (b[i / 8] & m)) return 0;
  }
  return 1;
}

/* Whether a no_proxy list names the host (libcurl's rules; see http_proxy_for). */
static int http_noproxy_match(const char *list, const char *h, size_t n, int v6) {
  /* "*" is every host only as the whole value, as libcurl reads it: in a list it names none */
  if (strcmp(list, "*") == 0) return 1;
  if (!v6 && n > 0 && h[n - 1] == '.') n--;
  char probe[16];
  struct in_addr a4;
  int ip = v6;
  if (!v6 && n < sizeof probe) {
    memcpy(probe, h, n);
    probe[n] = '\0';
    ip = inet_pton(AF_INET, probe, &a4) == 1;
  }
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    const char *tok = p;
    while (*p && *p != ' ' && *p != '\t' && *p != ',') p++;
    size_t tl = (size_t)(p - tok);
    if (tl == 0) continue;
    if (ip) {
      if (http_cidr_match(h, n, v6, tok, tl)) return 1;
      continue;
    }
    if (tok[0] == '.') {
      tok++;
      tl--;
    }
    if (tl > 0 && tok[tl - 1] == '.') tl--;
    if (tl == 0) continue;
    if (tl == n && http_ieq(tok, h, n)) return 1;
    if (tl < n && h[n - tl - 1] == '.' && http_ieq(tok, h + n - tl, tl)) return 1;
  }
  return 0;
}

int http_url_is_local(const char *url) {
  const char *scheme, *host;
  size_t slen, hlen;
  int v6;
  return http_url_parts(url, &scheme, &slen, &host, &hlen, &v6) == 0 && http_host_is_loopback(host, hlen, v6);
}

int http_proxy_for(const char *url, const char **var, const char **value) {
  *var = *value = NULL;
  const char *scheme, *host;
  size_t slen, hlen;
  int v6;
  if (http_url_parts(url, &scheme, &slen, &host, &hlen, &v6) != 0) return 0;
  if (http_host_is_loopback(host, hlen, v6)) return 0;
  const char *name = NULL, *v = NULL;
  if (slen == 4 && http_ieq(scheme, "http", 4)) {
    v = http_env(name = "http_proxy"); /* never HTTP_PROXY: a CGI program's request header */
  } else if (slen == 5 && http_ieq(scheme, "https", 5)) {
    if ((v = http_env(name = "https_proxy")) == NULL) v = http_env(name = "HTTPS_PROXY");
  }
  if (v == NULL && (v = http_env(name = "all_proxy")) == NULL) v = http_env(name = "ALL_PROXY");
  if (v == NULL) return 0;
  const char *no = http_env("no_proxy");
  if (no == NULL) no = http_env("NO_PROXY");
  if (no && http_noproxy_match(no, host, hlen, v6)) return 0;
  *var = name;
  *value = v;
  return 1;
}

size_t http_redact(char *out, size_t n, const char *msg) {
  if (n == 0) return 0;
  /* each proxy variable's user info ("user:pw", the text before the last '@'), and its
   * password alone (4 bytes or more, as orket.llm.common.redact takes secrets) */
  struct {
    const char *s;
    size_t len;
  } secret[2 * sizeof http_proxy_vars / sizeof http_proxy_vars[0]];
  size_t ns = 0;
  for (size_t i = 0; i < sizeof http_proxy_vars / sizeof http_proxy_vars[0]; i++) {
    const char *v = http_env(http_proxy_vars[i]);
    const char *at = v ? strrchr(v, '@') : NULL;
    if (at == NULL) continue;
    const char *sep = strstr(v, "://");
    const char *ui = sep && sep < at ? sep + 3 : v;
    /* a short one only with its ':' (a bare "a" would mask every "a" of the message; a
     * URL's user info is masked below whatever its length) */
    if (at - ui < 4 && memchr(ui, ':', (size_t)(at - ui)) == NULL) continue;
    secret[ns].s = ui;
    secret[ns++].len = (size_t)(at - ui);
    const char *colon = memchr(ui, ':', (size_t)(at - ui));
    if (colon && at - colon - 1 >= 4) {
      secret[ns].s = colon + 1;
      secret[ns++].len = (size_t)(at - colon - 1);
    }
  }
  static const char mask[] = "[redacted]";
  size_t o = 0;
  out[0] = '\0';
  for (const char *p = msg; *p;) {
    size_t hit = 0;
    for (size_t k = 0; k < ns && hit == 0; k++)
      if (strncmp(p, secret[k].s, secret[k].len) == 0) hit = secret[k].len;
    if (hit == 0 && strncmp(p, "://", 3) == 0) {
      /* any URL's own user info: up to the last '@' before its authority ends */
      size_t auth = strcspn(p + 3, "/?# \t\r\n'\"<>"), at = 0;
      for (size_t i = auth; i > 0 && at == 0; i--)
        if (p[3 + i - 1] == '@') at = i;
      o = http_put(out, o, n, p, 3);
      p += 3;
      if (at > 1) {
        o = http_put(out, o, n, mask, sizeof mask - 1);
        p += at - 1; /* on to the '@' */
      }
      continue;
    }
    if (hit) {
      o = http_put(out, o, n, mask, sizeof mask - 1);
      p += hit;
    } else {
      o = http_put(out, o, n, p, 1);
      p++;
    }
  }
  out[o] = '\0';
  return o;
}

http_req *http_start(http_client *c, const http_opts *o, http_notify_fn notify, void *ud,
                     char *err, size_t errlen) {
  http_req *r = calloc(1, sizeof *r);
  if (r == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  http_describe(r->what, sizeof r->what, o->method ? o->method : (o->body ? "POST" : "GET"),
                o->url);
  r->c = c; /* http_setup and the error paths below use its libcurl */
  r->easy = http_easy_get(c);
  if (r->easy == NULL) {
    snprintf(err, errlen, "%s: libcurl could not create a handle", r->what);
    free(r);
    return NULL;
  }
  if (http_setup(r, o, err, errlen) != 0) {
    http_hdrs_unref(c, r->hdrs);
    http_easy_put(c, r->easy);
    free(r);
    return NULL;
  }
  r->notify = notify;
  r->ud = ud;
  r->body_len = o->body ? o->body_len : 0;
  r->framing = o->framing;
  r->framing_by_type = o->framing_by_type;
  r->take = o->take;
  r->take_ud = o->take_ud;
  frame_init(&r->fr, o->framing, o->max_event);
  r->max_bytes = o->max_bytes ? o->max_bytes : HTTP_DEFAULT_MAX_BYTES;
  r->max_queued = o->max_queued;
  r->first_byte_ms = o->first_byte_timeout_ms > 0 ? o->first_byte_timeout_ms : 0;
  r->idle_ms = o->idle_timeout_ms > 0 ? o->idle_timeout_ms : 0;
  r->total_ms = o->total_timeout_ms > 0 ? o->total_timeout_ms : 0;
  r->headers_ms = o->headers_timeout_ms > 0 ? o->headers_timeout_ms : 0;
  uv_update_time(c->loop);
  r->start = uv_now(c->loop);
  uv_timer_init(c->loop, &r->timer);
  r->timer.data = r;
  /* handed to libcurl by http_on_starter, on this loop iteration */
  r->starting = 1;
  http_queue_push(&c->starting, r);
  if (!uv_is_active((uv_handle_t *)&c->starter)) uv_idle_start(&c->starter, http_on_starter);
  r->next = c->reqs;
  if (c->reqs) c->reqs->prev = r;
  c->reqs = r;
  c->live++;
  /* libcurl's default cache holds 4 connections per easy handle in the multi, so as a burst
   * of transfers finishes the cache shrinks and closes the connections the next burst
   * needs (64 concurrent streams opened about 17 new connections a round). Size it to the
   * most transfers ever in flight at once instead: a connection is kept for reuse as long
   * as that many may run again. libcurl still closes idle ones it finds dead or too old. */
  if (c->live > c->cache_max) {
    c->cache_max = c->live;
    c->api.multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->cache_max);
  }
  http_arm(r);
  return r;
}

void http_abort(http_req *r, const char *code, const char *msg) {
  if (r->finished) return;
  http_set_error(r, code, NULL, msg);
  http_detach(r);
}

/* Unlinks and frees a request (its timer closes through the loop). */
static void http_free(http_req *r) {
  http_client *c = r->c;
  if (c) {
    http_dequeue(r);
    if (r->prev) r->prev->next = r->next;
    else c->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
  }
  r->c = NULL;
  frame_free(&r->fr);
  free(r->hbuf);
  free(r->ev);
  free(r->ev_off);
  free(r->err);
  r->err = NULL;
  r->hbuf = r->ev = NULL;
  r->ev_off = NULL;
  uv_close((uv_handle_t *)&r->timer, http_sock_closed); /* frees r via data */
}

/* A stream's [DONE] often arrives in one read and the end of the chunked body in the
 * next; aborting then would close a connection that is about to be reusable (an instant
 * server saw about one new connection per ten sequential requests). So a request released
 * after [DONE], whose body was wholly sent, reads the rest of its body without an owner
 * for up to HTTP_DRAIN_MS and is freed when the transfer ends. */
static int http_can_drain(http_req *r) {
  if (r->finished || !r->fr.done || r->err_code || r->c == NULL || r->easy == NULL) return 0;
  curl_off_t sent = -1;
  if (r->c->api.easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &sent) != CURLE_OK) return 0;
  return sent == (curl_off_t)r->body_len; /* libcurl no longer reads the caller's body */
}

void http_release(http_req *r) {
  if (r == NULL) return;
  http_client *c = r->c;
  if (c) c->live--;
  if (http_can_drain(r)) {
    http_dequeue(r);
    r->draining = 1;
    r->notify = NULL;
    r->ud = NULL;
    r->take = NULL;
    uint64_t now = uv_now(c->loop);
    r->total_ms = (long)(now - r->start) + HTTP_DRAIN_MS;
    r->idle_ms = 0;
    http_arm(r);
    return;
  }
  if (!r->finished) http_abort(r, HTTP_E_CANCELED, "released");
  http_free(r);
}

int http_status(const http_req *r) { return r->headers_done ? r->status : 0; }
int http_headers_done(const http_req *r) { return r->headers_done; }
size_t http_header_count(const http_req *r) { return r->headers_done ? r->hcount : 0; }

int http_header_at(const http_req *r, size_t i, const char **name, const char **value) {
  if (!r->headers_done || i >= r->hcount) return -1;
  const char *p = r->hbuf;
  for (size_t k = 0; k < i; k++) {
    p += strlen(p) + 1;
    p += strlen(p) + 1;
  }
  *name = p;
  *value = p + strlen(p) + 1;
  return 0;
}

int http_header_next(const http_req *r, size_t *at, const char **name, const char **value) {
  if (!r->headers_done || *at >= r->hlen) return -1;
  *name = r->hbuf + *at;
  *value = *name + strlen(*name) + 1;
  *at = (size_t)(*value - r->hbuf) + strlen(*value) + 1;
  return 0;
}

frame_mode http_framing(const http_req *r) { return r->fr.mode; }

size_t http_event_count(const http_req *r) { return r->ev_n; }

void http_event_at(const http_req *r, size_t i, const char **data, size_t *len) {
  *data = r->ev + r->ev_off[i];
  *len = r->ev_off[i + 1] - r->ev_off[i];
}

void http_events_clear(http_req *r) {
  r->ev_n = 0;
  r->ev_len = 0;
  if (r->paused && r->easy && r->c) {
    http_client *c = r->c;
    http_resume_clock(r);
    /* libcurl hands the kept piece over from inside this call (queued as an event) */
    c->api.easy_pause(r->easy, CURLPAUSE_CONT);
    /* and what has arrived meanwhile is read now, not at libcurl's next timeout, so an
     * owner taking what is ready (a relay sending an answer whole) sees it all. Owners
     * hear of news from the starter's next pass, never from inside this call. */
    int running;
    c->api.multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    http_read_done(c);
    if (c->ready.head && !uv_is_active((uv_handle_t *)&c->starter)) uv_idle_start(&c->starter, http_on_starter);
  }
}

int http_finished(const http_req *r) { return r->finished || r->fr.done; }

int http_stream_done(const http_req *r) { return r->fr.done; }

int http_body_sent(http_req *r) {
  if (r->easy && r->c) return !r->starting && http_upload_done(r);
  return r->body_sent;
}

const char *http_error(const http_req *r, const char **msg, const char **phase) {
  if (msg) *msg = r->err_code ? (r->err ? r->err : "out of memory") : NULL;
  if (phase) *phase = r->phase;
  return r->err_code;
}

size_t http_received(const http_req *r) { return r->received; }
size_t http_live(const http_client *c) { return c->live; }

/* The three forms HTTP/1.1 recipients must accept (RFC 9110 5.6.7): IMF-fixdate, the
 * obsolete RFC 850 form and asctime's. Always UTC. */
long long http_parse_date(const char *s) {
  static const char *const forms[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                      "%a %b %e %H:%M:%S %Y"};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, forms[i], &tm);
    if (end == NULL) continue;
    while (*end == ' ') end++;
    if (*end != '\0') continue;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (long long)t;
  }
  return -1;
}
