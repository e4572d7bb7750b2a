/* http.h: an HTTP client on libcurl's multi interface, driven by a libuv loop (one uv_poll
 * per socket, one uv_timer for curl's timeouts): many transfers at once on one thread, no
 * busy polling. Bodies are framed as they arrive (frame.h) and queued as events for the
 * caller. Pure C: the Lua binding is lhttp.c. State hangs off an http_client. */
#ifndef ORKET_HTTP_H
#define ORKET_HTTP_H

#include <stddef.h>

#include <uv.h>

#include "frame.h"

typedef struct http_client http_client;
typedef struct http_req http_req;

/* Called (outside libcurl's callbacks, so it may start or release requests) when a request
 * has news: its headers arrived, events were queued, or it finished. */
typedef void (*http_notify_fn)(http_req *r, void *ud);

typedef struct http_opts {
  const char *url;             /* http:// or https:// only; redirects are never followed */
  const char *method;          /* "GET" or "POST" (default "GET", "POST" when body is set) */
  const char *body;            /* not copied: must stay valid until http_release */
  size_t body_len;
  const char *const *headers;  /* "Name: value" lines */
  size_t nheaders;
  frame_mode framing;          /* applies to 2xx bodies; others arrive raw */
  int framing_by_type;         /* 1: a 2xx body is framed as SSE when its Content-Type is
                                  text/event-stream, else it arrives raw (framing unused) */
  long connect_timeout_ms;     /* 0: none (each 0 below means none too) */
  long first_byte_timeout_ms;  /* from the start until the body's first byte (headers
                                  sent at once do not end the wait) */
  long idle_timeout_ms;        /* longest silence once the response has begun: its body,
                                  or with no first byte's deadline, its status line */
  long headers_timeout_ms;     /* from the start until the final (non-1xx) headers are
                                  complete: header lines and interim answers do not move it
                                  (a server that sent nothing when it passes, with the first
                                  byte's or before it, is said to have passed the first
                                  byte's: it never began an answer) */
  long total_timeout_ms;
  size_t max_bytes;            /* body size cap (0: 64 MiB) */
  size_t max_event;            /* longest SSE event / NDJSON line (0: 1 MiB) */
  size_t max_queued;           /* bytes of events queued for the owner past which the
                                  transfer pauses (nothing more is read from the server)
                                  until the owner takes them; 0: no bound. Time
                                  spent paused counts toward no timeout */
  const char *unix_socket;     /* connect to this unix socket's path instead of the URL's
                                  host and port (NULL: over TCP); the URL still names the
                                  Host header and the path */
  /* Optional: offered each framed event of a 2xx body before it is queued. Returns 1 when
   * it took the event (it is not queued, and nobody is woken for it), 0 to queue it, -1 to
   * fail the request (out of memory). */
  int (*take)(void *take_ud, const char *data, size_t len);
  void *take_ud;
} http_opts;

/* Error codes a finished request may carry (http_error). */
#define HTTP_E_TIMEOUT "timeout"
#define HTTP_E_TRANSIENT "transient"   /* connection refused/reset, disconnect mid-body */
#define HTTP_E_CANCELED "canceled"
#define HTTP_E_TOO_BIG "too_large"
#define HTTP_E_PROTOCOL "bad_request"  /* unsupported scheme, malformed URL or response, a
                                          proxy variable that is no proxy URL, a server
                                          certificate not trusted: asking again gets the same */

http_client *http_client_new(uv_loop_t *loop, char *err, size_t errlen);

/* Stops every request (they finish as canceled and are detached; release them as usual),
 * closes the client's handles; the memory is freed by the loop's close callbacks. */
void http_client_free(http_client *c);

/* Starts a transfer. Returns NULL with a message in err when it cannot start. */
http_req *http_start(http_client *c, const http_opts *o, http_notify_fn notify, void *ud,
                     char *err, size_t errlen);

/* Stops the transfer now (if still running); it finishes with error code `code`.
 * notify is not called for it. */
void http_abort(http_req *r, const char *code, const char *msg);

/* Aborts if needed and frees the request (its timer closes through the loop). */
void http_release(http_req *r);

/* The response status (0 until the headers are complete) and its headers. */
int http_status(const http_req *r);
int http_headers_done(const http_req *r);
size_t http_header_count(const http_req *r);
/* name is lower-cased; returns 0, or -1 past the end. */
int http_header_at(const http_req *r, size_t i, const char **name, const char **value);
/* The headers in order, in one walk: *at is 0 for the first, moved past each one given;
 * 0, or -1 past the end. */
int http_header_next(const http_req *r, size_t *at, const char **name, const char **value);

/* Queued events not yet taken: count, each one, then clear (which resumes a transfer
 * paused at max_queued). */
size_t http_event_count(const http_req *r);
void http_event_at(const http_req *r, size_t i, const char **data, size_t *len);
void http_events_clear(http_req *r);

/* 1 when no more events will come: the body ended, [DONE] was seen, or an error. */
int http_finished(const http_req *r);
/* 1 when an SSE stream ended with its [DONE] event: the server said it was whole. */
int http_stream_done(const http_req *r);
/* NULL when it finished cleanly; else the code (HTTP_E_*), message and, for timeouts, the
 * phase ("connect", "first_byte", "headers", "idle", "total"). */
const char *http_error(const http_req *r, const char **msg, const char **phase);

/* How the body is split: with framing_by_type, known once the headers are complete. */
frame_mode http_framing(const http_req *r);

/* 1 when the request's whole body went out (a request aborted after it reached the server,
 * which may bill it), also once it was aborted; 0 for one not sent whole, or with no body. */
int http_body_sent(http_req *r);

/* Bytes of body received so far. */
size_t http_received(const http_req *r);

/* Requests alive (started and not released) on this client. */
size_t http_live(const http_client *c);

/* "scheme://host[:port]" of url into out (n bytes, cut to fit; NUL-terminated when n > 0):
 * no user info, path, query or fragment, which may carry a key. Without "://", the text
 * up to the first / ? or #. -> its length. */
size_t http_origin(char *out, size_t n, const char *url);
/* 1 when url starts with a scheme (RFC 3986: a letter, then letters, digits, '+', '-', '.')
 * and "://"; 0 for a relative reference, whose "://" (in a query, say) names no scheme. */
int http_is_absolute(const char *url);

/* The proxy a request to url goes through, chosen from the environment as libcurl 7.88
 * chooses (and then handed to libcurl, so the two never differ): for http:// only
 * http_proxy (libcurl ignores HTTP_PROXY), for https:// https_proxy then HTTPS_PROXY, then
 * all_proxy, ALL_PROXY; an empty variable is unset. none when no_proxy (else NO_PROXY) names
 * the URL's host as written: "*" (as the whole value only), a name (also covering its
 * subdomains; a leading dot
 * allowed), an IP address or a CIDR range (a /0 is the one address, as libcurl reads it),
 * separated by commas or blanks. A host on this
 * machine (localhost, *.localhost, 127.x.x.x, [::1], 0.0.0.0) always goes direct: a proxy
 * elsewhere cannot reach it, and one that tried would reach its own loopback instead.
 * -> 1 with *var (the variable's name) and *value (its text, which may hold a password:
 * never print it, http_origin it), or 0 for a direct connection. */
int http_proxy_for(const char *url, const char **var, const char **value);

/* 1 when the URL's host is this machine (localhost, *.localhost, 127.x.x.x, [::1], 0.0.0.0),
 * which no proxy is used for; 0 otherwise, and for text with no "scheme://". */
int http_url_is_local(const char *url);

/* msg into out (n bytes, cut to fit, NUL-terminated when n > 0) with the user info of
 * every proxy variable's URL (as above) and of any "scheme://user:pw@" in it replaced by
 * "[redacted]": libcurl's messages quote a proxy setting whole ("Unsupported proxy scheme
 * for '...'"). -> the length written. */
size_t http_redact(char *out, size_t n, const char *msg);

/* Seconds since the epoch for an HTTP date (Retry-After), or -1. */
long long http_parse_date(const char *s);

#endif
