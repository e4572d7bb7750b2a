/* httpd.h: an HTTP/1.1 server on libmicrohttpd in external epoll mode, driven by a libuv
 * loop (one uv_poll on MHD's epoll descriptor, one uv_timer from MHD_get_timeout, one
 * uv_idle for work MHD has at once): no threads. A request is handed to its owner once its
 * headers are in (one without a body: once it is whole), with the connection suspended; the owner reads the body on request, answers once, or streams (SSE). Caps:
 * header and body size, connections in total and per address, header/body/idle
 * deadlines, a bounded queue per stream. Pure C: the Lua binding is lhttpd.c; each server
 * holds libmicrohttpd's table (mhdapi.h), loaded when it starts. */
#ifndef ORKET_HTTPD_H
#define ORKET_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct httpd httpd;
typedef struct httpd_req httpd_req;

/* A network whose hosts are trusted proxies (httpd_opts.trusted): an address, an IPv4 one
 * in its IPv4-mapped IPv6 form (so that a dual-stack peer ::ffff:a.b.c.d matches it), and
 * how many of its leading bits count (an IPv4 prefix plus 96). */
typedef struct httpd_net {
  unsigned char addr[16];
  unsigned bits;
} httpd_net;

/* At most this many trusted networks, and X-Forwarded-For entries read per request (from
 * the right: see httpd_remote). */
#define HTTPD_MAX_TRUSTED 256
#define HTTPD_XFF_MAX 16

typedef struct httpd_opts {
  const char *host;            /* a numeric IPv4 or IPv6 address (NULL with unix_path) */
  const char *unix_path;       /* instead: a unix socket at this path, mode 0600, that
                                  serves only peers of this process's user (SO_PEERCRED);
                                  their requests' remote is "unix". A socket file nobody
                                  answers on (ECONNREFUSED: a server that died) is
                                  replaced; one a server answers on, one that cannot be
                                  told, and any other file are refused. */
  unsigned port;               /* 0: an ephemeral port (httpd_port tells which) */
  size_t max_header_bytes;     /* request line + headers (MHD's per-connection memory);
                                  larger gets 431 from MHD. 0: 16 KiB */
  size_t max_body_bytes;       /* 0: 1 MiB */
  size_t max_bodies_bytes;     /* the bodies being read, held whole, in all; one that would
                                  pass it gets 503 busy and a close. 0: 64 MiB */
  unsigned max_connections;    /* 0: 512 */
  unsigned max_per_ip;         /* 0: 64. Near either cap (a sixteenth of it left), a new
                                  connection closes the oldest one idle between requests */
  unsigned idle_timeout_s;     /* no byte in either direction for this long. 0: 30 */
  unsigned header_timeout_ms;  /* from accept (or the end of the previous request) to
                                  complete headers. 0: 10000 */
  unsigned body_timeout_ms;    /* how long a body may go with none of it arriving, and the window in
                                  each of which at least body_min_rate bytes a second must come
                                  (core/httpd.c). 0: 30000 */
  unsigned body_min_rate;      /* bytes a second, in each such window. 0: 4096 */
  size_t max_stream_queue;     /* bytes a stream may queue for a slow client. 0: 1 MiB */
  const httpd_net *trusted;    /* proxies whose X-Forwarded-For names the client (copied; */
  size_t ntrusted;             /* at most HTTPD_MAX_TRUSTED). None: the header is ignored */
} httpd_opts;

/* "ADDR" or "ADDR/BITS" (IPv4 or IPv6, numeric) into out: 0, or -1 with why in err (not an
 * address, a prefix that is not 1 to 32 or 128 bits, host bits set past the prefix). */
int httpd_net_parse(const char *s, httpd_net *out, char *err, size_t errlen);

/* Called (never from inside libmicrohttpd) when a request is waiting in httpd_next: in the
 * loop's idle pass, at most once per loop iteration. */
typedef void (*httpd_accept_fn)(httpd *h, void *ud);
/* Called (never from inside libmicrohttpd) when a request has news for its owner: its body
 * is complete or refused, its stream drained below half its cap, or the client is gone. */
typedef void (*httpd_notify_fn)(httpd_req *r, void *ud);

/* Binds and starts listening; the first server loads libmicrohttpd (mhdapi.h). NULL with
 * a message in err on failure, a missing libmicrohttpd among them. */
httpd *httpd_new(uv_loop_t *loop, const httpd_opts *o, httpd_accept_fn on_accept, void *ud,
                 char *err, size_t errlen);
unsigned httpd_port(const httpd *h);
/* Closes the listening socket; connections already open go on. */
void httpd_stop_accepting(httpd *h);
/* Requests alive: accepted and not released, or still on a connection. */
size_t httpd_live(const httpd *h);
/* Begins a stop, the daemon still running so that the loop sends what this queues: every
 * stream ends once its queue is sent (one its owner closed with its terminating chunk; one
 * still open is cut, as httpd_stream_cut does: its client sees it incomplete), every request still
 * unanswered gets 503 (one whose body is being read at once, its owner hearing
 * HTTPD_BODY_STOPPED), and a request that comes on a connection still open gets 503 and a
 * close. Then let the loop run until httpd_pending is 0 (bounded), and httpd_free. */
void httpd_shut(httpd *h);
/* Requests still on a connection: an answer or a stream's end not yet sent. */
size_t httpd_pending(const httpd *h);
/* Ends (or cuts) every stream, answers 503 to every request still unanswered (httpd_shut, when it was
 * not called), runs libmicrohttpd once, stops the daemon and closes the loop handles (the
 * memory goes with their close callbacks): what one run did not send is cut. Requests the
 * owner holds stay valid (as gone) until httpd_release. Owners are notified first. */
void httpd_free(httpd *h);

/* The next request whose headers are complete, now owned by the caller (who must
 * httpd_release it), or NULL. */
httpd_req *httpd_next(httpd *h);
/* The request httpd_next would give, still the server's (read it, do not keep it), or NULL. */
httpd_req *httpd_peek(httpd *h);
/* The ud given to httpd_new for r's server (NULL once the server is freed): the owner's
 * way from a request back to its server. */
void *httpd_ud_of(const httpd_req *r);
/* Calls on_accept again on the loop's next iteration when requests are waiting (after
 * the loop's timers), so an owner can take one request per iteration. */
void httpd_accept_later(httpd *h);
void httpd_set_notify(httpd_req *r, httpd_notify_fn fn, void *ud);

const char *httpd_method(const httpd_req *r);
/* The path as sent, still percent-encoded (never decoded by the server). */
const char *httpd_path(const httpd_req *r);
/* The client's numeric address: the connection's peer, unless the peer is a trusted proxy
 * (httpd_opts.trusted) and X-Forwarded-For names one. Its lines are read as one list in
 * order, from the right, at most HTTPD_XFF_MAX entries (empty ones skipped, but counted),
 * each trusted address skipped: the first other one is the client, as inet_ntop writes it.
 * An entry that is not an address, every entry trusted, the cap reached or no header: the
 * peer. What the client itself wrote, left of what the proxies added, is never read. */
const char *httpd_remote(const httpd_req *r);
/* The connection's peer ("unix" on the unix socket), which the connection caps count, and
 * whether it is a trusted proxy. */
const char *httpd_peer(const httpd_req *r);
int httpd_peer_trusted(const httpd_req *r);
/* The peer when it is a trusted proxy, the request having come through it (the log line's
 * "via"), else NULL. */
const char *httpd_via(const httpd_req *r);
/* The target's query as sent, after its "?" (order, repeats, "+" and empty pairs kept;
 * "" for a bare "?"), or NULL when the target has no "?" (or memory ran out). */
const char *httpd_raw_query(const httpd_req *r);
/* Header i (name as sent; 0 or -1 past the end); query argument i likewise, raw. */
int httpd_header_at(const httpd_req *r, size_t i, const char **name, const char **value);
int httpd_arg_at(const httpd_req *r, size_t i, const char **name, const char **value);
/* The declared Content-Length (-1 when none), and whether it exceeds the body cap. */
long long httpd_content_length(const httpd_req *r);
int httpd_too_large(const httpd_req *r);
/* 1 when the client is gone or the request was answered and sent. */
int httpd_gone(const httpd_req *r);
/* 1 once the request was answered: by its owner, or with 503 by httpd_free. */
int httpd_answered(const httpd_req *r);
/* Watches an unanswered request's connection (its body read or never asked for) for the
 * client leaving meanwhile: libmicrohttpd does not look at a connection while the request
 * waits, so without it a client's leaving is seen only when the request is answered. Once
 * seen, httpd_gone is 1 and notify is called. Stops when the request is answered (a
 * stream goes on being watched). A client that sends more meanwhile (its next request,
 * early) is then watched for its hang-up alone (a half-close counts as leaving, as it
 * does without those bytes). 0, or -1 when it cannot watch. */
int httpd_watch_gone(httpd_req *r);

/* Body state: HTTPD_BODY_NONE until asked for, then READING, then one of the rest (BUSY: the
 * server held max_bodies_bytes of bodies already; refused as TOO_LARGE is, with a 503.
 * STOPPED: httpd_shut came while it was read; answered 503). */
enum { HTTPD_BODY_NONE, HTTPD_BODY_READING, HTTPD_BODY_DONE, HTTPD_BODY_TOO_LARGE,
       HTTPD_BODY_TIMEOUT, HTTPD_BODY_GONE, HTTPD_BODY_BUSY, HTTPD_BODY_STOPPED };
/* Starts reading the body (a no-op once started); notify says when it ends. */
int httpd_read_body(httpd_req *r);
int httpd_body_state(const httpd_req *r);
const char *httpd_body(const httpd_req *r, size_t *len);

/* Answers the request: status, "Name: value" lines, body (copied). 0, or -1 when it was
 * already answered or the client is gone, -2 when a header is refused. */
int httpd_respond(httpd_req *r, unsigned status, const char *const *headers, size_t nheaders,
                  const char *body, size_t len);
/* Answers without a body: a HEAD request, or a 304 or 204 answer. The length given (that
 * of the body a GET would get) is sent as the Content-Length, except on a 204, which has
 * none; UINT64_MAX, unknown: no Content-Length at all, and the connection is closed after
 * the answer. 0 or as above. */
int httpd_respond_head(httpd_req *r, unsigned status, const char *const *headers, size_t nheaders,
                       uint64_t length);
/* A body many answers share (a kept board): one copy of the bytes, counted references.
 * httpd_blob_new copies data and holds one reference, dropped by httpd_blob_unref; each
 * answer sent from it holds another until libmicrohttpd is done with it, so the owner may
 * drop its own at any time. NULL when out of memory. */
typedef struct httpd_blob httpd_blob;
httpd_blob *httpd_blob_new(const char *data, size_t len);
size_t httpd_blob_len(const httpd_blob *b);
void httpd_blob_unref(httpd_blob *b);
/* As httpd_respond, the body being the blob's bytes, not copied. */
int httpd_respond_blob(httpd_req *r, unsigned status, const char *const *headers, size_t nheaders,
                       httpd_blob *b);
/* Quick answers, settled inside libmicrohttpd's callback: a GET without a body or a query,
 * on one of the paths set (as sent, compared exactly), is offered to fn before any request
 * is made of it; an answer fn gives with httpd_quick_respond is queued at once, with no
 * suspend, resume or hand-over, and the connection stays open for the next. fn declining
 * (no answer) hands the request over as any other. fn must not wait. Offered only while no
 * timer of the loop is due (the next one's due time is taken at each run of libmicrohttpd):
 * past it, a request is left unanswered at libmicrohttpd and offered at its next run, on
 * the loop's next turn, after the timers; so a due timer waits for at most one quick
 * answer. */
typedef struct httpd_quick {
  const char *method, *path, *remote; /* remote: the client's, as httpd_remote's */
  const char *host, *origin; /* the headers' values, NULL when absent */
  void *priv;                /* the server's */
  const char *via;           /* as httpd_via's */
} httpd_quick;
typedef void (*httpd_quick_fn)(httpd_quick *q, void *ud);
/* Sets the paths (copied; replacing those set before) and fn. 0, or -1 out of memory. */
int httpd_set_quick(httpd *h, const char *const *paths, size_t n, httpd_quick_fn fn, void *ud);
/* Answers an offered request: the body copied, or blob's bytes shared (blob non-NULL). 0, -1
 * when already answered or refused by libmicrohttpd, -2 when a header is refused. */
int httpd_quick_respond(httpd_quick *q, unsigned status, const char *const *headers, size_t nheaders,
                        const char *body, size_t len, httpd_blob *blob);
/* As httpd_quick_respond with blob's bytes, the answer made once into *kept (NULL the
 * first time) and sent from there every time after, for an answer that never changes:
 * status, headers and blob are only read when *kept is NULL. Free it with
 * httpd_kept_free (NULL is fine), at any time: answers being sent hold their own. */
typedef struct httpd_kept httpd_kept;
int httpd_quick_respond_kept(httpd_quick *q, unsigned status, const char *const *headers, size_t nheaders,
                             httpd_blob *blob, httpd_kept **kept);
void httpd_kept_free(httpd_kept *k);
/* A request refused at its headers, before any request is made of it or fn offered it:
 * request line and headers over max_header_bytes (431), framing that could be read two
 * ways (400; a transfer coding not served, 501), a target or Host that is not valid (400).
 * Answered with JSON and closed by the server; then, the answer queued, fn is told, inside
 * libmicrohttpd's callback as a quick one is (it must not wait), so that the owner counts
 * and logs it: no request reaches the owner otherwise. */
typedef struct httpd_refusal {
  unsigned status;
  const char *note;   /* the answer's message */
  const char *method; /* as sent; NULL when it is not a token (the refusal may be of it) */
  const char *remote; /* as httpd_remote's */
  const char *via;    /* as httpd_via's */
  uint64_t t0;        /* uv_hrtime() when its headers were in */
} httpd_refusal;
typedef void (*httpd_refused_fn)(const httpd_refusal *rf, void *ud);
/* Sets fn (NULL: none, the refusals then told to no one). */
void httpd_set_refused(httpd *h, httpd_refused_fn fn, void *ud);
/* Starts a streamed (chunked) response with this status (200 for an event stream) and
 * these header lines. 0 or as above. */
int httpd_stream(httpd_req *r, unsigned status, const char *const *headers, size_t nheaders);
/* As httpd_stream, the body's length known (UINT64_MAX: unknown, chunked): sent as its
 * Content-Length, the body framed by it rather than by chunks. A stream closed short of it
 * (or cut) closes the connection, so the client sees the answer incomplete. */
int httpd_stream_length(httpd_req *r, unsigned status, const char *const *headers, size_t nheaders,
                        uint64_t length);
/* Queues bytes on the stream: 0; -1 when the stream is closed or the client gone; -3 when
 * the queue would exceed its cap: the client is disconnected (it fell behind). */
int httpd_stream_send(httpd_req *r, const char *data, size_t len);
/* As httpd_stream_send, the bytes being the blob's, not copied: the queue holds a
 * reference until they are handed to the socket, so one event encoded once is queued on
 * every subscriber without a copy each. */
int httpd_stream_send_blob(httpd_req *r, httpd_blob *b);
/* Bytes queued and not yet handed to the socket. */
size_t httpd_stream_queued(const httpd_req *r);
/* 1 when at most half the queue's cap is queued, or fewer bytes as httpd_stream_drain_at
 * set (notify says when it drains to that). */
int httpd_stream_drained(const httpd_req *r);
/* Drained means at most this many bytes queued (0, or more than half the cap: half). A
 * relay keeps a small queue with it, however large the cap. */
void httpd_stream_drain_at(httpd_req *r, size_t bytes);
/* Ends the stream once its queue is sent. */
void httpd_stream_close(httpd_req *r);
/* As httpd_stream_close for an answer broken off: once the queue is sent the connection is
 * closed without the chunked terminator, so the client sees the answer incomplete. */
void httpd_stream_cut(httpd_req *r);
/* The owner is done: an unanswered request gets 500, a stream is ended; freed once the
 * connection is done with it. */
void httpd_release(httpd_req *r);

/* Pure helpers (tested alone). */
/* Parses "HOST:PORT" ("127.0.0.1:8765", "[::1]:8765", "localhost:0") into a numeric
 * host (out, hostlen) and port. 0, or -1 with a message in err. */
int httpd_parse_listen(const char *s, char *host, size_t hostlen, unsigned *port,
                       char *err, size_t errlen);
/* 1 when the numeric address is a loopback one (127.0.0.0/8, ::1, ::ffff:127.x.x.x). */
int httpd_is_loopback(const char *host);

#endif
