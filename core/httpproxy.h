/* httpproxy.h: a reverse proxy's pump. Once its owner has decided a request (who asks,
 * where it goes, what headers cross), the pump takes the server request (httpd.h) and one
 * transfer to the upstream (http.h) and moves the upstream's status, filtered headers and
 * body to the client on the loop, with no call back to its owner per chunk: one call when
 * it is over. Bounded: at most max_queued bytes read ahead of the client (the transfer
 * pauses) and queue_high queued to it (the pump waits for half of them to go). An answer
 * complete when its headers arrive, and at most whole_max long, is sent in one piece with
 * its length; any other is streamed: framed by the upstream's Content-Length when it gave
 * one (and no Transfer-Encoding), else chunked. The transfer pausing at max_queued, an
 * answer much longer than it is never complete by then, whatever whole_max says. A HEAD request, and a 204 or 304
 * answer, is answered when the headers arrive, without a body, never streamed, with the
 * upstream's Content-Length (none on a 204; none when it gave none). Pure C: the Lua binding is lhttpd.c
 * (req:proxy). */
#ifndef ORKET_HTTPPROXY_H
#define ORKET_HTTPPROXY_H

#include <stddef.h>

#include "http.h"
#include "httpd.h"

typedef struct httpproxy httpproxy;
typedef struct httpproxy_kept httpproxy_kept;
typedef struct httpproxy_live httpproxy_live;

#define HTTPPROXY_LOCATION_ALSO_MAX 16 /* location_also's starts at most (more are not read) */

typedef struct httpproxy_opts {
  http_opts up;                 /* the upstream request (body copied; framing raw;
                                   max_queued 0: 32 KiB) */
  const char *const *lines;     /* "Name: value" lines every answer carries */
  size_t nlines;
  const char *const *pass;      /* the upstream's answer headers passed back (lower-case; one
                                   with an empty value is not) */
  size_t npass;
  size_t pass_max;              /* longest value passed back (0: 4095 bytes) */
  const char *const *cookies;   /* non-NULL: the upstream's Set-Cookie passed back too, made
                                   host-only (its Domain attribute removed), but never
                                   a cookie of these names */
  size_t ncookies;
  const char *const *pass_in;   /* the client's request headers passed to the upstream
                                   (lower-case names), each as "name: value", a name sent
                                   more than once as one line joined with ", ", one whose
                                   value holds a line break not at all; before up.headers */
  size_t npass_in;
  const char *location_from;    /* with location_to: a Location passed back that starts with
                                   location_from, or is an absolute path ("/x", not "//x"),
                                   has that start (the path's "/") made location_to: the
                                   upstream's own URLs made the client's, for a proxy under a
                                   path prefix. Never one whose rest begins, after tabs and
                                   line breaks, with "/" or a backslash: made "//x" after a
                                   location_to "/", it would lead a browser to host x.
                                   With a location_to other than "/" (a path prefix, where
                                   a client resolves a URL against the proxied one, not the
                                   upstream's): a relative reference (and "http:x", "\x")
                                   is resolved against up.url's path and query (RFC 3986
                                   5.2, dot segments stopping at the upstream's root) and
                                   put under location_to; a URL of this server's own host
                                   (the request's Host or X-Forwarded-Host) passes, as its
                                   path, only under location_to, else the pump answers 502
                                   itself (a JSON {"error":{"code":"bad_gateway",...}}
                                   naming why). A Location is passed up to 16 KiB, whatever
                                   pass_max, and a longer one is answered 502 the same way */
  const char *location_to;
  const char *const *location_also; /* more starts made location_to as location_from is (the
                                   upstream's other names for itself: "http://127.0.0.1:PORT/");
                                   each start ending in "/" matches its origin alone too, "x" or
                                   "x?q" or "x#f" for "x/"; all without case; 16 at most */
  size_t nlocation_also;
  int location_links;           /* with location_from and location_to: each URI-reference in
                                   a Link passed back (its target and anchor, RFC 8288 3; a
                                   quoted anchor by its value, its quoted-pairs read, the
                                   guard judging it as written too) made as a Location is, by
                                   the same rule and guard; a Link not of RFC 8288's grammar
                                   (a parameter's token holding a backslash), or of more than
                                   32 links, is left out */
  size_t queue_high;            /* 0: 128 KiB */
  size_t whole_max;             /* 0: 256 KiB (in effect no more than up.max_queued) */
  size_t max_live;              /* kept parts only: pumps running at once at most, counted
                                   with live_with's (httpproxy_start_kept refuses more);
                                   0: no bound */
  const httpproxy_kept *live_with; /* a kept part whose count of running pumps this one shares
                                   (NULL: its own) */
  size_t max_live_each;         /* with max_live: of the pumps counted with it, those for one
                                   client address (httpd_remote; an IPv6 address by its /64)
                                   at most, so that one client cannot hold them all; 0: no
                                   bound of its own */
  int each_skip_local;          /* loopback and unix-socket clients are held to no
                                   max_live_each: a front end's requests, whose users all
                                   come from its one address, or this machine's own */
} httpproxy_opts;

/* Called once, when the pump is over (never from inside httpproxy_start): the owner may
 * free the pump there; the pump does nothing after it. */
typedef void (*httpproxy_done_fn)(httpproxy *p, void *ud);

/* Starts the pump: the request's notify is the pump's until it is freed (the owner sets its
 * own again). NULL with a message in err when the transfer cannot start. */
httpproxy *httpproxy_start(http_client *c, httpd_req *req, const httpproxy_opts *o, httpproxy_done_fn done,
                           void *ud, char *err, size_t errlen);

/* What every pump to one upstream shares, made once from o (copied) but for up's url,
 * method, headers and body, which are each request's: the socket, timeouts and limits, the
 * answer's lines, the names passed back, the cookies refused. Counted references: each
 * pump started with it holds one. NULL out of memory. */
httpproxy_kept *httpproxy_kept_new(const httpproxy_opts *o);
void httpproxy_kept_unref(httpproxy_kept *k);
/* 1 when as many pumps as k's max_live run with k's count, 2 when as many as its
 * max_live_each run for the client address addr's share (NULL: not asked), else 0: whether
 * httpproxy_start_kept would refuse one more. */
int httpproxy_kept_full(const httpproxy_kept *k, const char *addr);
/* httpproxy_start with k's shared part and each's url, method, headers (after those of
 * pass_in) and body (the rest of each is not read); httpproxy_start is this with a kept
 * part made for the one pump. NULL, message in err, when k is full (httpproxy_kept_full) for
 * the request's address. */
httpproxy *httpproxy_start_kept(http_client *c, httpd_req *req, httpproxy_kept *k, const http_opts *each,
                                httpproxy_done_fn done, void *ud, char *err, size_t errlen);

/* Once done: the status sent to the client (the upstream's; 502 for one outside 200-599, or
 * for a Location the pump refused, message saying why), 499
 * when the client left before any answer, 503 when the server closed first (httpd_free), or 0 when nothing was sent because the upstream
 * failed first, framed its answer by Content-Length lines that differ (RFC 9112 6.3), or the server refused its headers (the owner answers: message says why). message: why the answer broke off or
 * failed, NULL when it did not. */
unsigned httpproxy_status(const httpproxy *p, const char **message);
/* 1 when the status is 0 because the upstream gave no answer within its timeouts (the
 * owner answers 504, RFC 9110 15.6.5, where another failure is 502). */
int httpproxy_timed_out(const httpproxy *p);
/* When it did: which deadline passed, as http_error's phase ("connect", "first_byte",
 * "headers", "idle", "total"); else NULL. */
const char *httpproxy_timeout_phase(const httpproxy *p);
/* Body bytes handed to the client's queue. */
size_t httpproxy_sent(const httpproxy *p);

/* Stops the transfer if it still runs (the client's request is left to its owner, a
 * stream already begun cut as with httpd_stream_cut) and frees the pump. */
void httpproxy_free(httpproxy *p);

/* Pure helper (tested alone): whether a Set-Cookie value may pass, given the names refused
 * (0 or 1); out gets it without any Domain attribute (outlen: at least strlen(v) + 1). */
int httpproxy_cookie(const char *v, const char *const *refused, size_t nrefused, char *out, size_t outlen);

#endif
