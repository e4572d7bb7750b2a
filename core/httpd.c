/* httpd.c: libmicrohttpd in external epoll mode on a libuv loop (see httpd.h). MHD_run is
 * only ever called from our loop callbacks, never from inside one of MHD's callbacks:
 * work that needs it (a resumed connection) sets a flag and starts an idle handle. Owners
 * hear about news after MHD_run returns, as http.c does for libcurl. */
#define _GNU_SOURCE /* struct ucred (SO_PEERCRED) */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "httpcheck.h"
#include "mhdapi.h"

#define HD_DEF_HEADER ((size_t)16 << 10)
#define HD_DEF_BODY ((size_t)1 << 20)
#define HD_DEF_BODIES ((size_t)64 << 20)
#define HD_DEF_CONNS 512u
#define HD_DEF_PER_IP 64u
#define HD_DEF_IDLE_S 30u
#define HD_DEF_HEADER_MS 10000u
#define HD_DEF_BODY_MS 30000u
/* A body is read for as long as it keeps arriving: never silent for body_timeout_ms (T), and
 * at least this many bytes a second in each fixed window of T from when it was asked for,
 * checked as each window ends (the first at T). Bytes count in their own window only: a
 * burst earns no credit for a trickle after it (which would hold the connection and its
 * buffer for max_body_bytes / rate s), so such a client is cut within 2 T of its trickle,
 * and a slow-loris client trickling from the start at T. An upload at a mobile uplink's
 * rate is read whole however long it takes. */
#define HD_DEF_BODY_RATE 4096u
#define HD_DEF_QUEUE ((size_t)1 << 20)
/* MHD's memory per connection: three times the header cap and room for its own records,
 * so that a request over the cap (up to three times it) is read whole and refused by us,
 * as JSON. No larger: libmicrohttpd zeroes all of it after every request (and half of it
 * again as an answer starts; an event stream gives those pages back: hd_reader_release). */
#define HD_POOL_FACTOR 3
#define HD_POOL_SLACK ((size_t)4 << 10)
/* How long a refused upload is still read (and dropped) before the connection closes. */
#define HD_LINGER_MS 2000
/* What a request unanswered at a stop is told (httpd_shut): JSON as every refusal. */
#define HD_STOPPING_MSG "the server is stopping: send the request again shortly (to another instance if there is one)"
#define HD_STOPPING_JSON "{\"error\":{\"code\":\"unavailable\",\"message\":\"" HD_STOPPING_MSG "\"}}"

/* A connection, from MHD's STARTED to CLOSED notification: its deadline (headers, body). */
typedef struct hd_conn {
  httpd *h;
  int fd;
  uint64_t deadline; /* loop ms; 0: none */
  int body_phase;    /* the deadline is the body's: answer 408 when it passes */
  uint64_t body_last; /* loop ms: its body's last bytes came (or it was asked for) */
  uint64_t win_end;   /* loop ms: the end of its body's current window (body_min_rate) */
  uint64_t win_from;  /* its body's bytes before that window */
  uint64_t win_short; /* loop ms: the end of a window that came short, seen as bytes came; 0: none */
  httpd_req *req;    /* the request on it, from its headers to its completion */
  char remote[INET6_ADDRSTRLEN + 1]; /* its address as text, once a request asked ("": not yet) */
  int busy;          /* a request's line is in, until MHD is done with it (answer sent) */
  int closing;       /* shut down by us (evicted, past a deadline): MHD closes it next run */
  uint64_t idle_since; /* loop ms: when it opened, or its last request was done */
  unsigned served;   /* requests answered on it: one that has had none is never made room of */
  int family;        /* AF_INET or AF_INET6 (0: a unix socket's), and the client's address */
  unsigned char addr[16];
  struct hd_watch *watch; /* its socket's handle on the loop, made at the first watch */
  char *raw_query;   /* the query of the request line read last, as sent (NULL: none), until
                        its request takes it (libmicrohttpd reads the next line only after) */
  size_t target_len;   /* that line's target's length as a string, before MHD splits it, */
  uintptr_t target_at; /* its address, and */
  int target_seen;     /* whether one was seen and not yet checked (hd_target_nul) */
  struct hd_conn *prev, *next;
} hd_conn;

struct httpd {
  uv_loop_t *loop;
  mhdapi mhd;        /* libmicrohttpd, loaded when the server starts */
  struct MHD_Daemon *d;
  uv_poll_t poll;    /* MHD's epoll descriptor */
  uv_timer_t timer;  /* MHD_get_timeout */
  uv_idle_t kick;    /* a deferred MHD_run */
  uv_timer_t sweep;  /* header and body deadlines */
  int open_handles;
  int in_run, dispatching, stopped;
  int shut; /* httpd_shut: streams ended, what was unanswered answered 503, new requests 503 */
  httpd_opts o;
  httpd_accept_fn on_accept;
  void *ud;
  httpd_req *acc_head, *acc_tail; /* waiting for httpd_next */
  httpd_req *news_head, *news_tail;
  httpd_req *reqs;                /* every live request */
  hd_conn *conns;
  size_t live;
  size_t bodies;                  /* bytes held for request bodies being read, in all */
  unsigned port;
  int is_unix; /* listening on a unix socket: peers are checked by their uid */
  unsigned mhd_conns; /* libmicrohttpd's count of connections after the last run */
  /* Quick answers (httpd_set_quick): the paths, the owner's function, and until when (loop
   * ms, the next timer's due time) the current run may answer them. */
  char **quick_paths;
  size_t nquick;
  httpd_quick_fn quick;
  void *quick_ud;
  uint64_t quick_until;
  char quick_mark; /* its address marks a request offered as quick, between MHD's calls */
  int quick_waiting; /* a quick request was left for the next run */
  httpd_refused_fn refused; /* told of a request refused at its headers (httpd_set_refused) */
  void *refused_ud;
  httpd_net *trusted; /* the proxies trusted to name their clients (httpd_remote) */
  size_t ntrusted;
};

struct httpd_req {
  httpd *h;                     /* NULL once the server is freed */
  struct MHD_Connection *conn;  /* NULL once MHD is done with the request */
  hd_conn *hc;
  int owned, released, answered, suspended, in_accept, in_news;
  int streaming, stream_closed, stream_dead, reader_waiting;
  int stream_cut; /* closed as broken off: ends without the chunked terminator */
  int client_left; /* the watch saw the client leave while the request waited, unanswered */
  int body_state;
  int notified_drain;
  size_t drain_at;              /* drained at this many bytes queued or fewer (0: half the cap) */
  int header_call_due; /* MHD repeats the headers call once a suspended request resumes */
  long long content_length;
  int has_body;                 /* a Content-Length above 0, or Transfer-Encoding */
  int awaiting_end;             /* without a body: handed over at MHD's next call */
  char *info;                   /* method\0path\0remote\0peer\0 then header and arg pairs */
  int peer_trusted;             /* the peer is a trusted proxy (httpd_remote) */
  size_t nheaders, nargs;
  const char **hv, **av;        /* name, value pointers into info */
  char *raw_query;              /* after the target's "?", as sent; NULL: no "?" */
  char *body;
  size_t body_len, body_cap;
  /* A stream's queue: references to shared blobs (one event, encoded once, queued on
   * every subscriber), a ring; q_off bytes of the first are sent already. */
  struct httpd_blob **q;
  size_t q_head, q_n, q_cap, q_off;
  size_t q_bytes;               /* queued and not yet handed to MHD */
  struct hd_watch *watch;       /* the socket, watched for the client's close (a stream, or
                                   an unanswered request, httpd_watch_gone) */
  char *rd_buf;                 /* the buffer MHD last handed the stream's reader */
  size_t rd_dirty;              /* its bytes whose pages may be resident (hd_reader_release) */
  httpd_notify_fn notify;
  void *ud;
  httpd_req *acc_next, *news_next;
  httpd_req *prev, *next;
};

/* A socket watched on the loop while MHD has it suspended (MHD does not poll a suspended
 * connection): the client's close or an error ends a stream at once, not at the next
 * heartbeat, so its per-address slot and the owner's count are freed; an unanswered
 * request's owner hears of it at once, not when it answers. One per connection, made at
 * its first watch and kept, stopped, between requests: making a poll handle costs four
 * system calls and closing it one more, a fifth of a proxied request's. Its own
 * allocation, closed with its connection and freed by the handle's close callback. */
typedef struct hd_watch {
  uv_poll_t poll;
  httpd *h;
  httpd_req *r; /* the request watched for; NULL while stopped */
} hd_watch;

/* An offered quick request's connection, while the owner's function runs. */
typedef struct hd_quick_ctx {
  httpd *h;
  struct MHD_Connection *conn;
  int answered;
} hd_quick_ctx;

/* ---- small helpers --------------------------------------------------------------------- */

static void hd_err(char *err, size_t errlen, const char *fmt, ...) {
  if (err == NULL || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static void hd_on_kick(uv_idle_t *i);
static void hd_unwatch(httpd_req *r);

static void hd_kick(httpd *h) {
  if (h && !h->stopped) uv_idle_start(&h->kick, hd_on_kick);
}

static void hd_news(httpd_req *r) {
  httpd *h = r->h;
  if (h == NULL || r->in_news || !r->owned || r->released) return;
  r->in_news = 1;
  r->news_next = NULL;
  if (h->news_tail) h->news_tail->news_next = r;
  else h->news_head = r;
  h->news_tail = r;
}

static void hd_unlink_news(httpd_req *r) {
  httpd *h = r->h;
  if (h == NULL || !r->in_news) return;
  httpd_req **pp = &h->news_head, *prev = NULL;
  while (*pp && *pp != r) {
    prev = *pp;
    pp = &(*pp)->news_next;
  }
  if (*pp) {
    *pp = r->news_next;
    if (h->news_tail == r) h->news_tail = prev;
  }
  r->in_news = 0;
}

static void hd_unlink_accept(httpd_req *r) {
  httpd *h = r->h;
  if (h == NULL || !r->in_accept) return;
  httpd_req **pp = &h->acc_head, *prev = NULL;
  while (*pp && *pp != r) {
    prev = *pp;
    pp = &(*pp)->acc_next;
  }
  if (*pp) {
    *pp = r->acc_next;
    if (h->acc_tail == r) h->acc_tail = prev;
  }
  r->in_accept = 0;
}

struct httpd_blob {
  size_t refs, len;
  char data[];
};

/* Drops a stream's queue and its references. */
static void hd_q_clear(httpd_req *r) {
  for (size_t i = 0; i < r->q_n; i++) httpd_blob_unref(r->q[(r->q_head + i) % r->q_cap]);
  free(r->q);
  r->q = NULL;
  r->q_head = r->q_n = r->q_cap = r->q_off = r->q_bytes = 0;
}

static void hd_req_free(httpd_req *r) {
  httpd *h = r->h;
  hd_unwatch(r);
  if (h) {
    hd_unlink_news(r);
    hd_unlink_accept(r);
    if (r->prev) r->prev->next = r->next;
    else h->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    h->live--;
  }
  free(r->info);
  free(r->hv);
  free(r->raw_query);
  if (h) h->bodies -= r->body_cap;
  free(r->body);
  hd_q_clear(r);
  free(r);
}

/* The body was refused while it came (too large, or the server held too many): what still
 * comes is discarded, then the connection closes. */
static int hd_body_refused(const httpd_req *r) {
  return r->body_state == HTTPD_BODY_TOO_LARGE || r->body_state == HTTPD_BODY_BUSY ||
         r->body_state == HTTPD_BODY_STOPPED;
}

static void hd_resume(httpd_req *r) {
  if (r->conn && r->suspended) {
    r->suspended = 0;
    r->reader_waiting = 0;
    r->h->mhd.resume_connection(r->conn);
    hd_kick(r->h);
  }
}

/* The server's memory, once its last handle is closed (libmicrohttpd stays loaded). */
static void hd_server_free(httpd *h) {
  free(h->trusted);
  for (size_t i = 0; i < h->nquick; i++) free(h->quick_paths[i]);
  free(h->quick_paths);
  mhdapi_close(&h->mhd);
  free(h);
}

static void hd_watch_closed(uv_handle_t *hd) {
  hd_watch *w = hd->data;
  httpd *h = w->h;
  free(w);
  if (--h->open_handles == 0) hd_server_free(h);
}

/* Stops watching r's socket; the handle stays with its connection for the next request. */
static void hd_unwatch(httpd_req *r) {
  hd_watch *w = r->watch;
  if (w == NULL) return;
  r->watch = NULL;
  w->r = NULL;
  uv_poll_stop(&w->poll);
}

/* Closes a connection's handle (before MHD closes the descriptor: libuv must not keep a
 * closed one, nor take a reused number for it). */
static void hd_conn_unwatch(hd_conn *hc) {
  hd_watch *w = hc->watch;
  if (w == NULL) return;
  hc->watch = NULL;
  if (w->r) hd_unwatch(w->r);
  uv_close((uv_handle_t *)&w->poll, hd_watch_closed);
}

static void hd_on_watch(uv_poll_t *p, int status, int events) {
  hd_watch *w = p->data;
  httpd_req *r = w->r;
  if (r == NULL) return;
  if (r->h == NULL || r->conn == NULL || r->hc == NULL) {
    /* not reached today (completion stops the watch first); a socket at its end stays
     * readable, so a watch left armed here would spin the loop */
    hd_unwatch(r);
    return;
  }
  int gone = status < 0 || (events & UV_DISCONNECT);
  if (!gone) {
    char c;
    ssize_t n = recv(r->hc->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) gone = 1;
    else if (n > 0) {
      /* the client sent more (its next request, early), which MHD reads later: the socket
       * stays readable, so from now on only its hang-up or an error is watched for */
      uv_poll_start(&w->poll, UV_DISCONNECT, hd_on_watch);
      return;
    }
  }
  if (!gone) return;
  hd_unwatch(r);
  if (!r->answered) { /* still waiting for its owner, who is told now (httpd_release ends it) */
    r->client_left = 1;
    hd_news(r);
    hd_kick(r->h);
    return;
  }
  r->stream_dead = 1; /* the reader ends the response; MHD closes the connection */
  hd_resume(r);
  hd_kick(r->h);
}

/* Watches r's socket on the loop (hd_on_watch). 0, or -1 when it cannot. */
static int hd_watch_start(httpd_req *r) {
  if (r->watch) return 0;
  if (r->hc == NULL || r->hc->fd < 0) return -1;
  hd_watch *w = r->hc->watch;
  if (w == NULL) {
    w = calloc(1, sizeof *w);
    if (w == NULL) return -1;
    w->h = r->h;
    w->poll.data = w;
    if (uv_poll_init(r->h->loop, &w->poll, r->hc->fd) != 0) {
      free(w);
      return -1;
    }
    r->hc->watch = w;
    r->h->open_handles++;
  }
  if (w->r) hd_unwatch(w->r); /* not reached: one request at a time on a connection */
  w->r = r;
  r->watch = w;
  uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, hd_on_watch);
  return 0;
}

/* ---- copying a request's line and headers ---------------------------------------------- */

typedef struct hd_copy {
  char *buf;
  size_t len, cap;
  size_t n;
  int failed;
  const char *host; /* when set, the Host header's value in the copy (not NUL-terminated) */
  size_t hostlen;
  int host_put;
} hd_copy;

/* Puts s's first len bytes and a NUL. */
static void hd_putn(hd_copy *c, const char *s, size_t len) {
  size_t n = len + 1;
  if (c->failed) return;
  if (c->len + n > c->cap) {
    size_t cap = c->cap ? c->cap : 512;
    while (cap < c->len + n) cap *= 2;
    char *nb = realloc(c->buf, cap);
    if (nb == NULL) {
      c->failed = 1;
      return;
    }
    c->buf = nb;
    c->cap = cap;
  }
  memcpy(c->buf + c->len, s, len);
  c->buf[c->len + len] = '\0';
  c->len += n;
}

static void hd_put(hd_copy *c, const char *s) { hd_putn(c, s, strlen(s)); }

static enum MHD_Result hd_copy_pair(void *cls, enum MHD_ValueKind kind, const char *k, const char *v) {
  hd_copy *c = cls;
  if (kind == MHD_HEADER_KIND && k && strcasecmp(k, MHD_HTTP_HEADER_HOST) == 0) {
    size_t vl = 0;
    const char *tv = hc_trim_ows(v ? v : "", &vl); /* as hc_host_error read it */
    if (c->host == NULL && vl == 0) return MHD_YES; /* HTTP/1.0's empty Host: as none */
    hd_put(c, k);
    if (c->host) {
      hd_putn(c, c->host, c->hostlen); /* a target in absolute form names the host (hc_target) */
      c->host_put = 1;
    } else
      hd_putn(c, tv, vl);
    c->n++;
    return MHD_YES;
  }
  hd_put(c, k ? k : "");
  hd_put(c, v ? v : "");
  c->n++;
  return MHD_YES;
}

/* Whether the peer of a unix socket runs as this process's user. */
static int hd_peer_is_user(int fd) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) return 0;
  return cred.uid == geteuid();
}

static void hd_remote_of(const mhdapi *mhd, struct MHD_Connection *conn, char *out, size_t outlen) {
  const union MHD_ConnectionInfo *ci = mhd->get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(out, outlen, "unknown");
  if (ci == NULL || ci->client_addr == NULL) return;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_UNIX) { /* "unix" only for this user's peers (checked again here) */
    const union MHD_ConnectionInfo *fi = mhd->get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    snprintf(out, outlen, "%s", fi && hd_peer_is_user(fi->connect_fd) ? "unix" : "unix-other");
  } else if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)outlen);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)outlen);
}

static hd_conn *hd_conn_of(const mhdapi *mhd, struct MHD_Connection *conn);

/* A request's address: its connection's, made text once per connection (a kept-alive
 * connection's requests each formatted it again, and on the unix socket asked the kernel
 * for the peer's user again: neither changes while the connection lasts). */
static void hd_remote(const mhdapi *mhd, struct MHD_Connection *conn, char *out, size_t outlen) {
  hd_conn *hc = hd_conn_of(mhd, conn);
  if (hc == NULL) {
    hd_remote_of(mhd, conn, out, outlen);
    return;
  }
  if (hc->remote[0] == '\0') hd_remote_of(mhd, conn, hc->remote, sizeof hc->remote);
  size_t n = strnlen(hc->remote, sizeof hc->remote - 1);
  if (n >= outlen) n = outlen - 1;
  memcpy(out, hc->remote, n);
  out[n] = '\0';
}

/* ---- the client behind a trusted proxy (httpd_remote) ----------------------------------- */

/* A numeric address into 16 bytes, an IPv4 one IPv4-mapped (*v4 then 1): 0, or -1 when
 * the text is no address (inet_pton's forms only: no zone, no port, no brackets). */
static int hd_addr16(const char *s, unsigned char out[16], int *v4) {
  struct in_addr a4;
  struct in6_addr a6;
  if (inet_pton(AF_INET, s, &a4) == 1) {
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, &a4, 4);
    *v4 = 1;
    return 0;
  }
  if (inet_pton(AF_INET6, s, &a6) != 1) return -1;
  memcpy(out, a6.s6_addr, 16);
  *v4 = 0;
  return 0;
}

static int hd_net_has(const httpd_net *n, const unsigned char a[16]) {
  unsigned whole = n->bits / 8, rest = n->bits % 8;
  if (memcmp(n->addr, a, whole) != 0) return 0;
  unsigned char mask = (unsigned char)(0xffu << (8 - rest));
  return rest == 0 || (n->addr[whole] & mask) == (a[whole] & mask);
}

static int hd_trusted(const httpd *h, const unsigned char a[16]) {
  for (size_t i = 0; i < h->ntrusted; i++)
    if (hd_net_has(&h->trusted[i], a)) return 1;
  return 0;
}

int httpd_net_parse(const char *s, httpd_net *out, char *err, size_t errlen) {
  char buf[INET6_ADDRSTRLEN + 1];
  const char *slash = strchr(s, '/');
  size_t alen = slash ? (size_t)(slash - s) : strlen(s);
  int v4 = 0;
  if (alen < sizeof buf) {
    memcpy(buf, s, alen);
    buf[alen] = '\0';
  }
  if (alen >= sizeof buf || hd_addr16(buf, out->addr, &v4) != 0) {
    hd_err(err, errlen, "not a numeric IPv4 or IPv6 address, nor one with a /BITS prefix");
    return -1;
  }
  unsigned max = v4 ? 32 : 128, bits = max;
  if (slash) {
    const char *d = slash + 1;
    size_t nd = strlen(d);
    bits = nd >= 1 && nd <= 3 && strspn(d, "0123456789") == nd ? (unsigned)strtoul(d, NULL, 10) : 0;
    /* digits only, no leading zero; /0 would trust every address, which any client could
     * then claim to be forwarded for */
    if (bits == 0 || d[0] == '0' || bits > max) {
      hd_err(err, errlen, "the prefix after '/' must be a number of bits from 1 to %u%s", max,
             strcmp(d, "0") == 0 ? " (a /0 would trust every address: any client could name its own)" : "");
      return -1;
    }
  }
  out->bits = bits + (v4 ? 96 : 0);
  unsigned char net[16];
  memcpy(net, out->addr, 16);
  for (unsigned i = out->bits; i < 128; i++) net[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
  if (memcmp(net, out->addr, 16) != 0) { /* a typo, or a host meant: said, not guessed */
    char shown[INET6_ADDRSTRLEN];
    inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? net + 12 : net, shown, sizeof shown);
    hd_err(err, errlen, "has bits set past its /%u prefix: the network is %s/%u", bits, shown, bits);
    return -1;
  }
  return 0;
}

/* The X-Forwarded-For lines of a request in order, the last HTTPD_XFF_MAX kept in a ring
 * (each line has one entry at least, an empty one maybe: the walk reads no more) */
typedef struct hd_xff {
  const char *v[HTTPD_XFF_MAX];
  size_t n;
} hd_xff;

static enum MHD_Result hd_xff_pair(void *cls, enum MHD_ValueKind kind, const char *k, const char *v) {
  (void)kind;
  hd_xff *x = cls;
  if (k && v && strcasecmp(k, "X-Forwarded-For") == 0) x->v[x->n++ % HTTPD_XFF_MAX] = v;
  return MHD_YES;
}

/* The entry of [a, b) trimmed of white space: 1 and the client in out (untrusted), 0 to
 * go on (trusted, or empty), -1 (not an address) */
static int hd_xff_entry(const httpd *h, const char *a, const char *b, char *out, size_t outlen) {
  while (a < b && (*a == ' ' || *a == '\t')) a++;
  while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
  if (a == b) return 0;
  char buf[INET6_ADDRSTRLEN + 1];
  unsigned char a16[16];
  int v4;
  if ((size_t)(b - a) >= sizeof buf) return -1;
  memcpy(buf, a, (size_t)(b - a));
  buf[b - a] = '\0';
  if (hd_addr16(buf, a16, &v4) != 0) return -1;
  if (hd_trusted(h, a16)) return 0;
  return inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? a16 + 12 : a16, out, (socklen_t)outlen) ? 1 : -1;
}

/* The client X-Forwarded-For names (httpd_remote's rule) into out: 0, or -1 (none) */
static int hd_xff_client(const httpd *h, const hd_xff *x, char *out, size_t outlen) {
  size_t lines = x->n < HTTPD_XFF_MAX ? x->n : HTTPD_XFF_MAX, read = 0;
  for (size_t l = 0; l < lines; l++) {
    const char *v = x->v[(x->n - 1 - l) % HTTPD_XFF_MAX];
    const char *end = v + strlen(v);
    for (;;) {
      const char *start = end;
      while (start > v && start[-1] != ',') start--;
      if (++read > HTTPD_XFF_MAX) return -1;
      int got = hd_xff_entry(h, start, end, out, outlen);
      if (got != 0) return got == 1 ? 0 : -1;
      if (start == v) break;
      end = start - 1; /* before the comma */
    }
  }
  return -1;
}

/* The request's client (httpd_remote) into out, from its peer's address: whether the peer is
 * a trusted proxy. */
static int hd_client(const httpd *h, struct MHD_Connection *conn, const char *peer, char *out, size_t outlen) {
  unsigned char a16[16];
  int v4;
  snprintf(out, outlen, "%s", peer);
  if (h->ntrusted == 0 || hd_addr16(peer, a16, &v4) != 0 || !hd_trusted(h, a16)) return 0;
  hd_xff x;
  x.n = 0;
  h->mhd.get_connection_values(conn, MHD_HEADER_KIND, hd_xff_pair, &x);
  char client[INET6_ADDRSTRLEN + 1];
  if (hd_xff_client(h, &x, client, sizeof client) == 0) snprintf(out, outlen, "%s", client);
  return 1;
}

static enum MHD_Result hd_count_pair(void *cls, enum MHD_ValueKind kind, const char *k, const char *v) {
  (void)kind;
  *(size_t *)cls += (k ? strlen(k) : 0) + (v ? strlen(v) : 0) + 4; /* ": " and CRLF */
  return MHD_YES;
}

/* The request line and headers' size, as sent (near enough: query arguments counted once). */
static size_t hd_head_size(const mhdapi *mhd, struct MHD_Connection *conn, const char *method, const char *url) {
  size_t n = strlen(method) + strlen(url) + 12; /* " ", " HTTP/1.1", CRLF */
  mhd->get_connection_values(conn, MHD_HEADER_KIND, hd_count_pair, &n);
  mhd->get_connection_values(conn, MHD_GET_ARGUMENT_KIND, hd_count_pair, &n);
  return n;
}

/* An answer before any handler runs, as every other error is: JSON, and the connection
 * closed after it (MHD then reads no body of the request). The 431: MHD's own answer, past
 * its memory, is a page of its own; its memory is a multiple of the cap so that a request
 * over the cap reaches here. */
static enum MHD_Result hd_refuse_early(const mhdapi *mhd, struct MHD_Connection *conn, unsigned status,
                                       const char *code, const char *message) {
  char body[512];
  int n = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n", code, message);
  if (n < 0 || (size_t)n >= sizeof body) return MHD_NO;
  struct MHD_Response *resp = mhd->create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
  if (resp == NULL) return MHD_NO;
  mhd->add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
  mhd->add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  mhd->add_response_header(resp, "X-Content-Type-Options", "nosniff");
  mhd->add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  if (status == MHD_HTTP_SERVICE_UNAVAILABLE) mhd->add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
  enum MHD_Result ok = mhd->queue_response(conn, status, resp);
  mhd->destroy_response(resp);
  return ok;
}

/* The request's framing headers, counted: libmicrohttpd takes the first Content-Length
 * of several, and reads a body as chunked when Content-Length comes with it, so the rest
 * would be read as another request on the connection (smuggled past whoever framed it
 * otherwise). */
typedef struct hd_framing {
  unsigned cl, te;
  int cl_bad, te_bad, te_trail, name_bad;
  const char *cr; /* the name of the first header whose value holds a CR */
} hd_framing;

/* RFC 9110 5.6.2: a field name is a token. libmicrohttpd 0.9.75 keeps a space before the
 * colon in the name ("Content-Length "), which then framed nothing here while a lenient
 * front end took it for the length: the body read as a request of its own. */
static int hd_name_is_token(const char *k) {
  if (*k == '\0') return 0;
  for (; *k; k++) {
    unsigned char c = (unsigned char)*k;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c)))
      return 0;
  }
  return 1;
}

/* RFC 9112 5.2: a line folded onto the one before it (obs-fold) must be refused or joined
 * with a space. libmicrohttpd 0.9.75 appends it to the header's name instead:
 * "Content-Length:" then " 5" on the next line is a header "Content-Length5", so a body a
 * front end framed with that length would be read here as the next request. A name that
 * runs on past a framing header's is refused as a fold (no header is so named). */
static int hd_runs_on(const char *k, const char *name) {
  size_t n = strlen(name);
  return strncasecmp(k, name, n) == 0 && k[n] != '\0';
}

static int hd_token_is(const char *v, const char *token) {
  while (*v == ' ' || *v == '\t') v++;
  size_t n = strlen(token);
  if (strncasecmp(v, token, n) != 0) return 0;
  for (v += n; *v == ' ' || *v == '\t'; v++) {}
  return *v == '\0';
}

static enum MHD_Result hd_count_framing(void *cls, enum MHD_ValueKind kind, const char *k, const char *v) {
  (void)kind;
  hd_framing *f = cls;
  if (k == NULL) return MHD_YES;
  if (!hd_name_is_token(k) || hd_runs_on(k, MHD_HTTP_HEADER_CONTENT_LENGTH) ||
      hd_runs_on(k, MHD_HTTP_HEADER_TRANSFER_ENCODING))
    f->name_bad = 1;
  if (f->cr == NULL && v && strchr(v, '\r')) f->cr = k;
  if (strcasecmp(k, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
    f->cl++;
    const char *p = v ? v : "";
    while (*p == ' ' || *p == '\t') p++;
    size_t digits = strspn(p, "0123456789");
    const char *q = p + digits;
    while (*q == ' ' || *q == '\t') q++;
    /* a list ("5, 5"), "+2", "0x2": libmicrohttpd answers these itself (400, and 413 for
     * a number past 64 bits) before any handler runs, so this is a second line should a
     * version let one through; one past 63 bits (hd_req_new) is read as too large */
    if (digits == 0 || *q != '\0') f->cl_bad = 1;
  } else if (strcasecmp(k, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
    f->te++;
    if (v == NULL || !hd_token_is(v, "chunked")) f->te_bad = 1;
    /* RFC 9110 5.5 has "chunked " read as chunked, as a front end reads it; libmicrohttpd
     * 0.9.75 keeps the trailing space in the value and then reads the body up to the
     * connection's close, taking the requests after it for this one's body */
    else if (strchr(" \t", v[strlen(v) - 1])) f->te_trail = 1;
  }
  return MHD_YES;
}

/* RFC 9112 6.1 and 6.3: framing that could be read two ways gets a 400 and a close, before
 * any handler runs (Transfer-Encoding on an HTTP/1.0 request among it: 6.1 has it read as
 * faulty framing, and libmicrohttpd 0.9.75 read it as chunked and kept the connection);
 * a transfer coding other than chunked alone, a 501. So does a CR in a
 * header's value that ends no line (RFC 9112 2.2 lets a recipient refuse it; RFC 9110 5.5
 * calls it dangerous): libmicrohttpd 0.9.75 keeps it in the value, where a front end may
 * have read it as the end of a line and what follows as a header of its own. NULL when
 * sound; err holds a message that names a header. */
static const char *hd_framing_error(const mhdapi *mhd, struct MHD_Connection *conn, const char *version,
                                    unsigned *status, char *err, size_t errlen) {
  hd_framing f = {0};
  mhd->get_connection_values(conn, MHD_HEADER_KIND, hd_count_framing, &f);
  *status = 400;
  if (f.name_bad)
    return "a header's name holds a character no name may (a space before its colon?), or a line was folded onto it "
           "(a line beginning with a space or a tab)";
  if (f.cr) { /* a token (name_bad above): nothing in it to escape in the JSON answer */
    snprintf(err, errlen, "the %.64s header's value holds a CR that ends no line (a CR not followed by LF)", f.cr);
    return err;
  }
  if (f.cl && f.te) return "the request has both Content-Length and Transfer-Encoding";
  if (f.te && strcmp(version, MHD_HTTP_VERSION_1_0) == 0)
    return "an HTTP/1.0 request has no Transfer-Encoding (RFC 9112 6.1: its framing is faulty)";
  if (f.cl > 1) return "the request has more than one Content-Length";
  if (f.te > 1) return "the request has more than one Transfer-Encoding";
  if (f.te_trail) return "the request's Transfer-Encoding has a space or a tab after chunked, which this server "
                         "would not read as chunked";
  if (f.cl_bad) return "the request's Content-Length is not a number";
  if (f.te_bad) {
    *status = 501;
    return "the server reads no transfer coding but chunked alone";
  }
  return NULL;
}

/* A chunked body's trailer section (RFC 9112 7.1.2), read by libmicrohttpd 0.9.75 as it
 * reads headers: a CR that ends no line is kept in a value there too, where a front end
 * may have ended the section at it and sent what follows (another request) as a request
 * of its own, which was read here as more trailers. Nothing reads trailers; their framing
 * is checked as the headers' is (hd_framing_error). NULL when sound. */
static const char *hd_trailer_error(const mhdapi *mhd, struct MHD_Connection *conn, char *err, size_t errlen) {
  hd_framing f = {0};
  mhd->get_connection_values(conn, MHD_FOOTER_KIND, hd_count_framing, &f);
  if (f.cr) { /* first: what follows it reads as a trailer here, and is named so below; its
                * name only when a token (nothing in it to escape in the JSON answer) */
    if (!hd_name_is_token(f.cr)) return "a trailer's value holds a CR that ends no line (a CR not followed by LF)";
    snprintf(err, errlen, "the %.64s trailer's value holds a CR that ends no line (a CR not followed by LF)", f.cr);
    return err;
  }
  if (f.name_bad)
    return "a trailer's name holds a character no name may (a request line read as a trailer?), or a line was "
           "folded onto it";
  return NULL;
}

/* Counts the Host lines of a request (in [0]), its Origin lines (in [1]) and the names
 * that run on past Host (in [2]: a folded line, hd_runs_on). */
static enum MHD_Result hd_count_host_origin(void *cls, enum MHD_ValueKind kind, const char *k, const char *v) {
  (void)kind;
  (void)v;
  int *n = cls;
  if (strcasecmp(k, MHD_HTTP_HEADER_HOST) == 0) n[0]++;
  else if (strcasecmp(k, "Origin") == 0) n[1]++;
  else if (hd_runs_on(k, MHD_HTTP_HEADER_HOST)) n[2]++;
  return MHD_YES;
}

static enum MHD_Result hd_non_uri_pair(void *cls, enum MHD_ValueKind kind, const char *k, const char *v) {
  (void)kind;
  *(int *)cls |= hc_non_uri_bytes(k) | hc_non_uri_bytes(v);
  return MHD_YES;
}

/* Whether the request line's target held a NUL. libmicrohttpd 0.9.75 ends the target's
 * string at it and reads on past it (for its "?" too), so what follows is never seen as
 * text; but it parses the line in place, the target's end (its last byte before the space,
 * made a NUL) right before the version (RFC 9112 3: one space between them), so a target
 * whose string, as the URI callback saw it before the library split it (hd_on_uri), ends
 * sooner than that held a NUL. libmicrohttpd 1.0 refuses a NUL in the line itself and lays
 * the line out alike (a tab before the version is one byte too); a second space after the
 * target it reads as part of the target and answers with a redirect of its own, before
 * this is reached. Fails closed: a target the URI callback did not see, or saw at another
 * address, is refused, and what it recorded serves one request. The addresses are compared
 * as numbers, never dereferenced: a library laying the line out otherwise would have every
 * request refused, at once seen. */
static int hd_target_nul(const mhdapi *mhd, struct MHD_Connection *conn, const char *url, const char *version) {
  hd_conn *hc = hd_conn_of(mhd, conn);
  if (hc == NULL || !hc->target_seen) return 1;
  hc->target_seen = 0;
  return hc->target_at != (uintptr_t)url || !hc_part_ends_at((uintptr_t)url, hc->target_len, (uintptr_t)version);
}

/* RFC 9112 3 and 3.2: a request target holds no space (a client's unencoded one would be
 * read as a path the client never meant), NUL (hd_target_nul), control byte nor byte
 * above 0x7f (hc_non_uri_bytes), an absolute one is
 * sound (hc_target_split), and an HTTP/1.1 request names exactly one Host
 * (two could route one way here and another way wherever the request goes next), even
 * with a target in absolute form, whose host is then the one read: a 400, ours, before any
 * handler runs. libmicrohttpd's strict mode would refuse the first two itself, but 0.9.75
 * closes on a space without an answer and, for a missing Host, writes its answer's header
 * block twice (its state machine goes on past its own refusal). NULL when sound. */
static const char *hd_target_error(const mhdapi *mhd, struct MHD_Connection *conn, const char *method,
                                   const char *url, const char *version, char *err, size_t errlen) {
  /* RFC 9112 3.1: the method is a token; the library keeps a CR in it, where a front end
   * may have ended the request line */
  if (!hd_name_is_token(method)) return "the request's method is not a token (RFC 9110 9.1)";
  /* the method's string ends at a NUL in it, as the target's does (hd_target_nul); the
   * library parses it in place too, one space before the target */
  if (!hc_part_ends_at((uintptr_t)method, strlen(method), (uintptr_t)url))
    return "the request's method holds a NUL byte, or more than one space follows it (RFC 9112 3)";
  if (strchr(url, ' ') != NULL) return "the request target holds a space (encode it as %20)";
  if (hd_target_nul(mhd, conn, url, version)) return "the request target holds a NUL byte (encode it as %00)";
  int bad = hc_non_uri_bytes(url);
  mhd->get_connection_values(conn, MHD_GET_ARGUMENT_KIND, hd_non_uri_pair, &bad);
  if (bad & HC_CTL)
    return "the request target holds a control character (a CR, a tab, a byte below 0x20 or 0x7f: encode it)";
  if (bad & HC_HIGH) return "the request target holds a byte above 0x7f (percent-encode it, as %C3%A9)";
  /* CONNECT's target is an authority (host:port), which hc_target_split reads as a scheme */
  if (strcmp(method, "CONNECT") == 0) return "CONNECT is not served: this server is no proxy to tunnel through";
  hc_target t;
  const char *terr = hc_target_split(url, &t, err, errlen);
  if (terr) return terr;
  int named[3] = {0, 0, 0};
  mhd->get_connection_values(conn, MHD_HEADER_KIND, hd_count_host_origin, named);
  if (named[2] > 0) return "a line was folded onto the Host header (a line beginning with a space or a tab)";
  if (named[0] > 1) return "the request has more than one Host";
  if (named[0] == 0 && strcmp(version, MHD_HTTP_VERSION_1_0) != 0) return "an HTTP/1.1 request must have a Host header";
  return NULL;
}

/* RFC 9110 7.2 and RFC 9112 3.2: a Host that is no host gets a 400 (hc_host_error), also
 * beside a target in absolute form, whose authority is the one read. Checked after the
 * framing (hd_framing_error), which names a CR in it as such. NULL when sound. */
static const char *hd_host_error(const mhdapi *mhd, struct MHD_Connection *conn, const char *version, char *err,
                                 size_t errlen) {
  const char *v = mhd->lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
  if (v == NULL) return NULL; /* none: hd_target_error has refused it unless HTTP/1.0 */
  return hc_host_error(v, strcmp(version, MHD_HTTP_VERSION_1_0) == 0, err, errlen);
}

/* Copies what the owner reads into one block, so nothing points into MHD's pool. */
static int hd_capture(httpd_req *r, struct MHD_Connection *conn, const char *method, const char *url) {
  hd_copy c = {0};
  char addr[INET6_ADDRSTRLEN + 1];
  char err[1];
  hc_target t;
  (void)hc_target_split(url, &t, err, sizeof err); /* sound: hd_target_error passed it */
  char client[INET6_ADDRSTRLEN + 1];
  hd_remote(&r->h->mhd, conn, addr, sizeof addr);
  r->peer_trusted = hd_client(r->h, conn, addr, client, sizeof client);
  hd_put(&c, method);
  hd_put(&c, t.path);
  hd_put(&c, client);
  hd_put(&c, addr);
  c.n = 0;
  c.host = t.absolute ? t.auth : NULL;
  c.hostlen = t.authlen;
  r->h->mhd.get_connection_values(conn, MHD_HEADER_KIND, hd_copy_pair, &c);
  if (c.host && !c.host_put) { /* HTTP/1.0, which needs no Host: its target names one */
    hd_put(&c, MHD_HTTP_HEADER_HOST);
    hd_putn(&c, c.host, c.hostlen);
    c.n++;
  }
  size_t nh = c.n;
  c.n = 0;
  c.host = NULL; /* a query argument named host is the client's, as sent */
  r->h->mhd.get_connection_values(conn, MHD_GET_ARGUMENT_KIND, hd_copy_pair, &c);
  size_t na = c.n;
  if (c.failed) {
    free(c.buf);
    return -1;
  }
  r->info = c.buf;
  r->nheaders = nh;
  r->nargs = na;
  r->hv = malloc((2 * (nh + na) + 1) * sizeof *r->hv);
  if (r->hv == NULL) return -1;
  r->av = r->hv + 2 * nh;
  const char *p = r->info;
  for (int i = 0; i < 4; i++) p += strlen(p) + 1;
  for (size_t i = 0; i < 2 * (nh + na); i++) {
    r->hv[i] = p;
    p += strlen(p) + 1;
  }
  return 0;
}

/* now as an HTTP date (RFC 9110 5.6.7's IMF-fixdate), with English names whatever the locale:
 * the Date every answer carries (6.6.1), where MHD does not add it; n: 30 or more. */
static void hd_http_date(char *out, size_t n) {
  static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = time(NULL);
  struct tm tm;
  if (gmtime_r(&t, &tm) == NULL) memset(&tm, 0, sizeof tm);
  int w = snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[(unsigned)tm.tm_wday % 7], tm.tm_mday,
                   months[(unsigned)tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (w < 0 || (size_t)w >= n) snprintf(out, n, "Thu, 01 Jan 1970 00:00:00 GMT"); /* a year past 9999 */
}

/* ms as said to a client: "30 s", or "2500 ms" for a part of a second */
static void hd_say_ms(char *out, size_t n, unsigned long long ms) {
  if (ms % 1000 == 0) snprintf(out, n, "%llu s", ms / 1000);
  else snprintf(out, n, "%llu ms", ms);
}

/* Answers a request MHD is still receiving, which MHD cannot answer itself (a response
 * may only be queued before the body or after its end): the lines go straight to the
 * socket, where MHD has written nothing yet, and the write side is shut. cap: the body
 * cap, named in a 413 as orket serve (this server's one user) names it for a declared
 * length, so a chunked upload is told the same; for a 408 the body's timeout in ms, with
 * slow: the minimum rate (bytes a second) it came slower than (0: it stopped for that long). */
static void hd_raw_answer(int fd, unsigned status, const char *body);

static void hd_refuse_raw(int fd, unsigned status, size_t cap, unsigned slow) {
  char body[400];
  if (status == 408) {
    char t[32];
    hd_say_ms(t, sizeof t, (unsigned long long)cap);
    if (slow)
      snprintf(body, sizeof body,
               "{\"error\":{\"code\":\"timeout\",\"message\":\"the request body came too slowly: each %s "
               "of it must bring at least %u bytes a second (ORKET_SERVE_LIMITS body_timeout_ms on orket serve "
               "sets the %s, body_min_rate the bytes)\"}}",
               t, slow, t);
    else
      snprintf(body, sizeof body,
               "{\"error\":{\"code\":\"timeout\",\"message\":\"the request body stopped arriving: none of it came "
               "for %s (ORKET_SERVE_LIMITS body_timeout_ms on orket serve sets it)\"}}",
               t);
  } else if (status == 503)
    snprintf(body, sizeof body,
             "{\"error\":{\"code\":\"busy\",\"message\":\"the server holds as many request bodies as it takes at "
             "once (%zu bytes in all: ORKET_SERVE_LIMITS max_bodies_bytes on orket serve sets it); send it again "
             "shortly\"}}",
             cap);
  else
    snprintf(body, sizeof body,
             "{\"error\":{\"code\":\"too_large\",\"message\":\"the request body is larger than the server "
             "accepts (at most %zu bytes: ORKET_SERVE_LIMITS max_body_bytes on orket serve sets it)\"}}",
             cap);
  hd_raw_answer(fd, status, body);
}

/* The answer's lines and JSON body written to the socket (best effort), its write side shut. */
static void hd_raw_answer(int fd, unsigned status, const char *body) {
  const char *reason = status == 408 ? "Request Timeout" : status == 503 ? "Service Unavailable" : "Content Too Large";
  char msg[768], date[32];
  hd_http_date(date, sizeof date);
  /* the headers MHD's own answers and the handlers' carry */
  int n = snprintf(msg, sizeof msg, "HTTP/1.1 %u %s\r\nConnection: close\r\nDate: %s\r\n%s"
                   "Content-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\n"
                   "X-Content-Type-Options: nosniff\r\nContent-Length: %zu\r\n\r\n%s", status, reason, date,
                   status == 503 ? "Retry-After: 1\r\n" : "", strlen(body), body);
  if (n > 0 && (size_t)n < sizeof msg) {
    ssize_t rc = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT); /* best effort */
    (void)rc;
  }
  shutdown(fd, SHUT_WR);
}

/* A connection's silence timeout (libmicrohttpd's, in seconds) set to s. */
static void hd_silence(httpd *h, struct MHD_Connection *conn, unsigned s) {
  if (conn) h->mhd.set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, s);
}

/* ---- MHD callbacks (no MHD_run in here; owner code only through the quick function) ------ */

static size_t hd_unescape_none(void *cls, struct MHD_Connection *c, char *s) {
  (void)cls;
  (void)c;
  return strlen(s); /* the owner decodes, and refuses what it must (NUL, "..") */
}

/* The client's address of a new connection, kept to count its connections (MHD's own
 * count is not readable). */
static void hd_conn_addr(const mhdapi *mhd, struct MHD_Connection *conn, hd_conn *hc) {
  const union MHD_ConnectionInfo *ci = mhd->get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  if (sa && sa->sa_family == AF_INET) {
    hc->family = AF_INET;
    memcpy(hc->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
  } else if (sa && sa->sa_family == AF_INET6) {
    hc->family = AF_INET6;
    memcpy(hc->addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
  }
}

/* Slots kept free of idle connections: a sixteenth of a cap, at least one. */
static unsigned hd_headroom(unsigned cap) { return cap / 16 ? cap / 16 : 1; }

/* Whether a connection is idle between requests: it has answered one (a new connection
 * whose first request is still to come is left to the header deadline), no request on it,
 * nothing left to send, no byte of a next request received since its last answer (the
 * kernel's TCP_INFO: a line MHD has partly read, a long URL on a slow link, is not in the
 * socket for a peek any more), and none waiting in the kernel (MHD reads it at its next run). */
static int hd_conn_idle(const hd_conn *hc, uint64_t now) {
  if (hc->busy || hc->closing || hc->req || hc->fd < 0 || hc->served == 0) return 0;
  struct tcp_info ti;
  socklen_t tl = sizeof ti;
  /* data received more recently than the last answer was sent, a few ms allowed for the clock */
  if (hc->family && getsockopt(hc->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 &&
      (uint64_t)ti.tcpi_last_data_recv + 5 < now - hc->idle_since)
    return 0;
  char c;
  return recv(hc->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int hd_same_addr(const hd_conn *a, const hd_conn *b) {
  return a->family && b->family == a->family && memcmp(b->addr, a->addr, sizeof b->addr) == 0;
}

static void hd_make_room(httpd *h, hd_conn *nc) {
  /* counted first: the kernel is asked of idle connections only when one must go */
  unsigned total = 0, same = 0;
  for (hd_conn *hc = h->conns; hc; hc = hc->next) {
    if (hc->closing) continue;
    total++;
    same += hd_same_addr(nc, hc) ? 1u : 0u;
  }
  int for_addr = nc->family && !h->is_unix && same + hd_headroom(h->o.max_per_ip) > h->o.max_per_ip;
  int for_total = total + hd_headroom(h->o.max_connections) > h->o.max_connections;
  if (!for_addr && !for_total) return;
  uint64_t now = uv_now(h->loop);
  hd_conn *oldest = NULL, *oldest_same = NULL;
  for (hd_conn *hc = h->conns; hc; hc = hc->next) {
    if (hc->closing || hc == nc) continue;
    int mine = hd_same_addr(nc, hc);
    /* the kernel is asked (hd_conn_idle) only of one older than the oldest so far */
    int older = oldest == NULL || hc->idle_since < oldest->idle_since;
    int older_same = mine && (oldest_same == NULL || hc->idle_since < oldest_same->idle_since);
    if ((older || older_same) && hd_conn_idle(hc, now)) {
      if (older) oldest = hc;
      if (older_same) oldest_same = hc;
    }
  }
  hd_conn *victim = for_addr ? oldest_same : NULL;
  if (victim == NULL && for_total) victim = oldest;
  if (victim == NULL) return;
  shutdown(victim->fd, SHUT_RDWR);
  victim->closing = 1;
  victim->deadline = 0;
  hd_kick(h);
}

static void hd_on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                             enum MHD_ConnectionNotificationCode toe) {
  httpd *h = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci = h->mhd.get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci ? ci->connect_fd : -1;
    hd_conn *hc = calloc(1, sizeof *hc);
    if (hc == NULL) { /* fail closed: no deadline for it, and on the unix socket no check */
      if (fd >= 0) shutdown(fd, SHUT_RDWR);
      return;
    }
    hc->h = h;
    hc->fd = fd;
    /* another user's process on the unix socket: closed before any request is read */
    if (h->is_unix && !hd_peer_is_user(hc->fd) && hc->fd >= 0) shutdown(hc->fd, SHUT_RDWR);
    hc->deadline = uv_now(h->loop) + h->o.header_timeout_ms;
    hc->idle_since = uv_now(h->loop);
    hd_conn_addr(&h->mhd, conn, hc);
    hc->next = h->conns;
    if (h->conns) h->conns->prev = hc;
    h->conns = hc;
    *socket_ctx = hc;
    hd_make_room(h, hc);
  } else if (*socket_ctx) {
    hd_conn *hc = *socket_ctx;
    if (hc->prev) hc->prev->next = hc->next;
    else h->conns = hc->next;
    if (hc->next) hc->next->prev = hc->prev;
    /* a request of this connection may still be held by its owner: it is hc->req, the only
     * request whose hc is this one (the two are set and cleared together) */
    if (hc->req) hc->req->hc = NULL;
    hd_conn_unwatch(hc);
    free(hc->raw_query);
    free(hc);
    *socket_ctx = NULL;
  }
}

static hd_conn *hd_conn_of(const mhdapi *mhd, struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *ci = mhd->get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

/* A request's line is in (MHD's URI log callback, before its headers): its connection is
 * no longer idle, and is not closed to make room (hd_make_room), however slowly the rest
 * comes (its header deadline bounds that). The target's query is kept as sent, which only
 * this callback sees (MHD splits it into arguments, dropping their order and form), for
 * what passes it on whole (an app's origin). NULL: the request's context starts empty. */
static void *hd_on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
  httpd *h = cls;
  hd_conn *hc = hd_conn_of(&h->mhd, conn);
  if (hc) {
    hc->busy = 1;
    free(hc->raw_query); /* a line refused before its request was made */
    const char *q = uri ? strchr(uri, '?') : NULL;
    hc->raw_query = q ? strdup(q + 1) : NULL; /* out of memory: as none, the arguments remain */
    hc->target_len = uri ? strlen(uri) : 0;
    hc->target_at = (uintptr_t)uri;
    hc->target_seen = uri != NULL;
  }
  return NULL;
}

/* Queues a request for httpd_next, suspended until its owner answers it. */
static void hd_hand_over(httpd_req *r) {
  httpd *h = r->h;
  r->in_accept = 1;
  if (h->acc_tail) h->acc_tail->acc_next = r;
  else h->acc_head = r;
  h->acc_tail = r;
  r->suspended = 1;
  h->mhd.suspend_connection(r->conn);
}

/* A request made of MHD's view of it (its line and headers copied), on the live list; NULL
 * out of memory. */
static httpd_req *hd_req_new(httpd *h, struct MHD_Connection *conn, const char *method, const char *url) {
  httpd_req *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->h = h;
  r->conn = conn;
  r->content_length = -1;
  if (hd_capture(r, conn, method, url) != 0) {
    free(r->info);
    free(r->hv);
    free(r);
    return NULL;
  }
  const char *cl = h->mhd.lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(cl, &end, 10);
    r->content_length = (errno || *end || end == cl || v > (unsigned long long)INT64_MAX) ? INT64_MAX : (long long)v;
  }
  r->has_body = r->content_length > 0 ||
                h->mhd.lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
  r->hc = hd_conn_of(&h->mhd, conn);
  if (r->hc) {
    r->hc->deadline = 0;
    r->hc->req = r;
    r->raw_query = r->hc->raw_query;
    r->hc->raw_query = NULL;
  }
  r->next = h->reqs;
  if (h->reqs) h->reqs->prev = r;
  h->reqs = r;
  h->live++;
  return r;
}


/* hd_refuse_early for a request refused at its headers, then its owner told (to count and
 * log it: no request is made of it); not told when no answer could be queued. */
static enum MHD_Result hd_refuse_head(httpd *h, struct MHD_Connection *conn, uint64_t t0, const char *method,
                                      unsigned status, const char *code, const char *message) {
  enum MHD_Result ok = hd_refuse_early(&h->mhd, conn, status, code, message);
  if (ok != MHD_YES || h->refused == NULL) return ok;
  char peer[INET6_ADDRSTRLEN + 1], addr[INET6_ADDRSTRLEN + 1];
  hd_remote(&h->mhd, conn, peer, sizeof peer);
  int via = hd_client(h, conn, peer, addr, sizeof addr);
  /* a method that is no token may hold a CR, or run long: the refusal may be of it */
  httpd_refusal rf = {status, message, hd_name_is_token(method) ? method : NULL, addr, via ? peer : NULL, t0};
  h->refused(&rf, h->refused_ud);
  return ok;
}

/* Whether a request whose headers are in may be offered as quick: a GET on one of the quick
 * paths, with no query and no body, and at most one Host and one Origin (the owner is given
 * one of each: two would be read as the first alone, where the Lua way joins them). */
static int hd_quick_path(const httpd *h, const char *url) {
  for (size_t i = 0; i < h->nquick; i++)
    if (strcmp(h->quick_paths[i], url) == 0) return 1;
  return 0;
}

static int hd_quick_fits(httpd *h, struct MHD_Connection *conn, const char *method, const char *url) {
  /* a target in absolute form ("http://host/health") never matches: it goes the Lua way,
   * with its path and host as hd_capture makes them */
  if (strcmp(method, "GET") != 0 || !hd_quick_path(h, url)) return 0;
  if (h->mhd.get_connection_values(conn, MHD_GET_ARGUMENT_KIND, NULL, NULL) != 0) return 0;
  const char *cl = h->mhd.lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl && strspn(cl, "0 \t") != strlen(cl)) return 0;
  if (h->mhd.lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL) return 0;
  int named[3] = {0, 0, 0};
  h->mhd.get_connection_values(conn, MHD_HEADER_KIND, hd_count_host_origin, named);
  return named[0] <= 1 && named[1] <= 1;
}

/* Offers a whole quick request to the owner: 1 when answered, 0 declined; -1 not offered,
 * a timer of the loop being due: left without an answer, MHD calls again at its next run,
 * which comes after the timers. The clock is the precise one, never behind the loop's, so
 * no quick answer starts past a timer's due time. */
static int hd_quick_offer(httpd *h, struct MHD_Connection *conn, const char *method, const char *url) {
  /* the paths unset or changed while it waited for a timer: as any other (what else made
   * it fit, its method and headers, cannot have changed) */
  if (h->quick == NULL || !hd_quick_path(h, url)) return 0;
  if (uv_hrtime() / 1000000 >= h->quick_until) return -1;
  char peer[INET6_ADDRSTRLEN + 1], addr[INET6_ADDRSTRLEN + 1];
  hd_remote(&h->mhd, conn, peer, sizeof peer);
  int via = hd_client(h, conn, peer, addr, sizeof addr);
  httpd_quick q = {method, url, addr,
                   h->mhd.lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
                   h->mhd.lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"), NULL,
                   via ? peer : NULL};
  hd_quick_ctx qc = {h, conn, 0};
  q.priv = &qc;
  h->quick(&q, h->quick_ud);
  return qc.answered;
}

/* Closes the body's windows that ended by now, len: its bytes that came before now. -> the
 * end of one that held fewer than rate * T bytes (the body is then too slow), or 0. The
 * body's deadline is then the sooner of its silence (T past its last bytes) and the current
 * window's end, where it is checked next. */
static uint64_t hd_body_windows(hd_conn *hc, uint64_t now, uint64_t len, uint64_t t, unsigned rate) {
  uint64_t need = (uint64_t)rate * t / 1000;
  while (now >= hc->win_end) {
    if (len - hc->win_from < need) return hc->win_end;
    hc->win_from = len;
    hc->win_end += t;
  }
  uint64_t quiet = hc->body_last + t;
  hc->deadline = quiet < hc->win_end ? quiet : hc->win_end;
  return 0;
}

/* A body's n bytes came: they count in the window they came in (those before, in theirs). */
static void hd_body_progress(httpd_req *r, size_t n) {
  hd_conn *hc = r->hc;
  uint64_t now = uv_now(r->h->loop);
  if (hc->win_short) return; /* too slow already: the sweep answers 408 */
  hc->win_short = hd_body_windows(hc, now, r->body_len - n, r->h->o.body_timeout_ms, r->h->o.body_min_rate);
  if (hc->win_short) {
    hc->deadline = hc->win_short; /* passed: the next sweep */
    return;
  }
  hc->body_last = now;
  uint64_t quiet = now + r->h->o.body_timeout_ms;
  hc->deadline = quiet < hc->win_end ? quiet : hc->win_end;
}

static enum MHD_Result hd_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload, size_t *upload_size, void **con_cls) {
  httpd *h = cls;
  httpd_req *r = *con_cls;
  if (r == NULL) { /* the headers are in */
    /* A request read during httpd_free's last MHD_run (a client that had sent it before the
     * stop) would stay suspended, which MHD_stop_daemon refuses (a fatal error): close it. */
    if (h->stopped) return MHD_NO;
    uint64_t t0 = h->refused ? uv_hrtime() : 0; /* a refusal's handling, for its log line */
    /* stopping (httpd_shut): a request on a connection still open is told so, and closed */
    if (h->shut) return hd_refuse_head(h, conn, t0, method, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", HD_STOPPING_MSG);
    if (hd_head_size(&h->mhd, conn, method, url) > h->o.max_header_bytes) {
      /* the cap and what sets it, as the 413 names its own */
      char big[200];
      snprintf(big, sizeof big, "the request line and headers are larger than the server accepts (at most %zu "
               "bytes: ORKET_SERVE_LIMITS max_header_bytes on orket serve sets it)", h->o.max_header_bytes);
      return hd_refuse_head(h, conn, t0, method, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, "too_large", big);
    }
    char why[200];
    const char *terr = hd_target_error(&h->mhd, conn, method, url, version, why, sizeof why);
    if (terr) return hd_refuse_head(h, conn, t0, method, MHD_HTTP_BAD_REQUEST, "bad_request", terr);
    unsigned fstatus;
    const char *ferr = hd_framing_error(&h->mhd, conn, version, &fstatus, why, sizeof why);
    if (ferr)
      return hd_refuse_head(h, conn, t0, method, fstatus, fstatus == 400 ? "bad_request" : "not_implemented", ferr);
    const char *herr = hd_host_error(&h->mhd, conn, version, why, sizeof why);
    if (herr) return hd_refuse_head(h, conn, t0, method, MHD_HTTP_BAD_REQUEST, "bad_request", herr);
    if (h->quick && hd_quick_fits(h, conn, method, url)) {
      /* offered at MHD's next call, when it is whole; no request made of it until declined */
      hd_conn *qc = hd_conn_of(&h->mhd, conn);
      if (qc) qc->deadline = 0;
      *con_cls = &h->quick_mark;
      return MHD_YES;
    }
    r = hd_req_new(h, conn, method, url);
    if (r == NULL) return MHD_NO;
    *con_cls = r;
    /* Without a body the request is whole at MHD's next call, which comes at once: hand it
     * over there, where an answer keeps the connection open (MHD closes one answered at
     * this first call). With a body, hand it over now, so that its owner decides whether
     * to read the body before any of it is. */
    if (!r->has_body) {
      r->awaiting_end = 1;
      return MHD_YES;
    }
    hd_hand_over(r);
    return MHD_YES;
  }
  if (*con_cls == (void *)&h->quick_mark) { /* offered as quick, now whole */
    if (h->stopped) return MHD_NO; /* as above */
    *upload_size = 0;
    int offered = hd_quick_offer(h, conn, method, url);
    if (offered != 0) { /* answered, or left unanswered till MHD's next run (a timer is due) */
      if (offered < 0) h->quick_waiting = 1;
      return MHD_YES;
    }
    r = hd_req_new(h, conn, method, url); /* declined: as any other */
    if (r == NULL) return MHD_NO;
    *con_cls = r;
    r->body_state = HTTPD_BODY_DONE;
    hd_hand_over(r);
    return MHD_YES;
  }
  if (r->awaiting_end) { /* a request without a body, complete */
    r->awaiting_end = 0;
    if (h->stopped) return MHD_NO; /* as above */
    if (h->shut)
      return hd_refuse_head(h, conn, h->refused ? uv_hrtime() : 0, method, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                            HD_STOPPING_MSG);
    r->body_state = HTTPD_BODY_DONE; /* empty, read */
    *upload_size = 0;
    hd_hand_over(r);
    return MHD_YES;
  }
  if (hd_body_refused(r)) { /* refused already: discard, then close */
    if (*upload_size == 0) return MHD_NO;
    *upload_size = 0;
    return MHD_YES;
  }
  if (r->body_state != HTTPD_BODY_READING) {
    *upload_size = 0;
    return MHD_YES;
  }
  if (*upload_size > 0) {
    size_t n = *upload_size;
    *upload_size = 0;
    size_t cap = r->body_cap;
    if (r->body_len + n > cap) {
      cap = cap ? cap : 4096;
      while (cap < r->body_len + n) cap *= 2;
      if (cap > r->h->o.max_body_bytes) cap = r->h->o.max_body_bytes;
    }
    /* every body in flight is held whole: many connections each sending the most one may
     * send would hold all of them at once (a key is not needed to send a webhook's) */
    size_t all = r->h->bodies - r->body_cap + cap; /* held for every body, this one grown */
    int busy = r->body_len + n <= r->h->o.max_body_bytes && all > r->h->o.max_bodies_bytes;
    if (r->body_len + n > r->h->o.max_body_bytes || busy) {
      /* endless or lying: refuse now, then discard what still comes for a moment so the
       * client reads the refusal (closing at once would reset it) */
      r->body_state = busy ? HTTPD_BODY_BUSY : HTTPD_BODY_TOO_LARGE;
      r->answered = 1;
      if (r->hc) {
        if (busy) hd_refuse_raw(r->hc->fd, 503, r->h->o.max_bodies_bytes, 0);
        else hd_refuse_raw(r->hc->fd, 413, r->h->o.max_body_bytes, 0);
        r->hc->deadline = uv_now(r->h->loop) + HD_LINGER_MS;
        r->hc->body_phase = 0;
      }
      r->h->bodies -= r->body_cap;
      free(r->body);
      r->body = NULL;
      r->body_len = r->body_cap = 0;
      hd_news(r);
      return MHD_YES;
    }
    if (cap != r->body_cap) {
      char *nb = realloc(r->body, cap);
      if (nb == NULL) return MHD_NO;
      r->h->bodies += cap - r->body_cap;
      r->body = nb;
      r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, upload, n);
    r->body_len += n;
    if (n > 0 && r->hc && r->hc->body_phase) hd_body_progress(r, n);
    return MHD_YES;
  }
  if (r->header_call_due) { /* the repeated headers call, not the body's end */
    r->header_call_due = 0;
    return MHD_YES;
  }
  /* the body's end */
  char why[160];
  const char *terr = hd_trailer_error(&h->mhd, conn, why, sizeof why);
  if (terr) { /* answered here, and closed: the owner hears the body as gone */
    r->body_state = HTTPD_BODY_GONE;
    r->answered = 1;
    if (r->hc) {
      r->hc->deadline = 0;
      r->hc->body_phase = 0;
    }
    hd_news(r);
    return hd_refuse_early(&h->mhd, conn, MHD_HTTP_BAD_REQUEST, "bad_request", terr);
  }
  r->body_state = HTTPD_BODY_DONE;
  if (r->hc) {
    r->hc->deadline = 0;
    r->hc->body_phase = 0;
    if (r->h->o.body_timeout_ms / 1000 + 3 > r->h->o.idle_timeout_s) hd_silence(h, conn, r->h->o.idle_timeout_s);
  }
  r->suspended = 1;
  h->mhd.suspend_connection(conn);
  hd_news(r);
  return MHD_YES;
}

static void hd_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                            enum MHD_RequestTerminationCode toe) {
  httpd *h = cls;
  httpd_req *r = *con_cls == &h->quick_mark ? NULL : *con_cls;
  *con_cls = NULL;
  hd_conn *hc = hd_conn_of(&h->mhd, conn);
  if (hc && hc->req == r) { /* a kept-alive connection waits for the next request's headers */
    if (r == NULL || !hd_body_refused(r)) hc->deadline = uv_now(h->loop) + h->o.header_timeout_ms;
    hc->body_phase = 0;
    hc->req = NULL;
  }
  if (hc) { /* its answer is sent (or it closes): idle from now on */
    hc->busy = 0;
    hc->served++;
    hc->idle_since = uv_now(h->loop);
  }
  if (r == NULL) return;
  hd_unwatch(r);
  r->conn = NULL;
  r->hc = NULL;
  r->suspended = 0;
  if (r->body_state == HTTPD_BODY_READING)
    r->body_state = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? HTTPD_BODY_TIMEOUT : HTTPD_BODY_GONE;
  if (!r->owned || r->released) hd_req_free(r);
  else hd_news(r);
}

/* A stream's reader is handed most of its connection's memory pool as the buffer to fill
 * (MHD zeroed half of it when it shrank the request's read buffer), and an idle stream
 * holds that buffer for its life: 28 KB of resident zeros per subscriber with the default
 * caps. The buffer is ours to fill, so its whole pages past the n bytes written (and the 2
 * of the chunk's trailer MHD appends) are handed back to the kernel, which reads them as
 * zeros again when touched. One madvise when the stream starts, then only after a write
 * that reached further than the next one. */
static void hd_reader_release(httpd_req *r, char *buf, size_t max, size_t n) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = (uintptr_t)buf;
  if (buf != r->rd_buf) { /* a new buffer: all of it may be resident */
    r->rd_buf = buf;
    r->rd_dirty = max;
  }
  uintptr_t lo = (start + n + 2 + page - 1) & ~(page - 1);
  uintptr_t hi = (start + (r->rd_dirty < max ? r->rd_dirty : max)) & ~(page - 1);
  if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0) r->rd_dirty = lo - start;
  else if (lo - start > r->rd_dirty) r->rd_dirty = lo - start;
}

static ssize_t hd_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  httpd_req *r = cls;
  if (r->stream_dead) return MHD_CONTENT_READER_END_WITH_ERROR;
  if (r->q_bytes > 0) {
    size_t n = 0;
    while (n < max && r->q_n > 0) {
      httpd_blob *b = r->q[r->q_head];
      size_t take = b->len - r->q_off;
      if (take > max - n) take = max - n;
      memcpy(buf + n, b->data + r->q_off, take);
      n += take;
      r->q_off += take;
      if (r->q_off == b->len) { /* sent whole: its reference goes */
        httpd_blob_unref(b);
        r->q_head = (r->q_head + 1) % r->q_cap;
        r->q_n--;
        r->q_off = 0;
      }
    }
    r->q_bytes -= n;
    hd_reader_release(r, buf, max, n);
    if (!r->notified_drain && httpd_stream_drained(r)) {
      r->notified_drain = 1;
      hd_news(r);
    }
    return (ssize_t)n;
  }
  if (r->stream_closed) return r->stream_cut ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
  /* nothing to send: wait, suspended, for httpd_stream_send (0 alone would spin) */
  r->suspended = 1;
  r->reader_waiting = 1;
  r->h->mhd.suspend_connection(r->conn);
  return 0;
}

/* ---- the loop side ---------------------------------------------------------------------- */

/* Owners hear their news; a waiting owner gets the next request only when may_accept, in
 * the loop's idle pass: one request per loop iteration, so that the loop's timers (an
 * engine step falling due) wait for one request's handling at most, however many MHD has
 * read. */
static void hd_dispatch(httpd *h, int may_accept) {
  if (h->dispatching) return;
  h->dispatching = 1;
  while (h->news_head) {
    httpd_req *r = h->news_head;
    h->news_head = r->news_next;
    if (h->news_head == NULL) h->news_tail = NULL;
    r->in_news = 0;
    if (r->notify) r->notify(r, r->ud);
  }
  if (h->acc_head && h->on_accept) {
    if (may_accept) h->on_accept(h, h->ud);
    else hd_kick(h);
  }
  h->dispatching = 0;
}

static void hd_on_timer(uv_timer_t *t);

/* libmicrohttpd's count of open connections (suspended ones among them). */
static unsigned hd_mhd_conns(const httpd *h) {
  const union MHD_DaemonInfo *di = h->mhd.get_daemon_info(h->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
  return di ? di->num_connections : 0;
}

static void hd_run(httpd *h, int may_accept) {
  if (h->stopped || h->in_run) return;
  h->in_run = 1;
  /* Quick answers stop at the loop's next timer (uv_backend_timeout: ms until it is due
   * from the loop's time, 0 when one is due or other work waits, -1 when none). Our own
   * kick, an idle handle, would read as work waiting: it is left out. */
  int kicked = uv_is_active((uv_handle_t *)&h->kick);
  if (kicked) uv_idle_stop(&h->kick);
  int until = uv_backend_timeout(h->loop);
  if (kicked) uv_idle_start(&h->kick, hd_on_kick);
  h->quick_until = until < 0 ? UINT64_MAX : uv_now(h->loop) + (uint64_t)until;
  h->quick_waiting = 0;
  h->mhd.run(h->d);
  h->in_run = 0;
  if (h->quick_waiting) hd_kick(h); /* the requests left for the timers: at the next turn */
  /* At its connection limit (or out of descriptors) libmicrohttpd takes the listening
   * socket out of its epoll set, and puts it back only at the start of a later run, once
   * under the limit. The closes that bring it under happen at the end of a run; after
   * that nothing is ready on the epoll descriptor and no timeout is due, so no later run
   * came and new connections waited in the backlog for good. A run that closed
   * connections is followed by one more. */
  unsigned conns = hd_mhd_conns(h);
  if (conns < h->mhd_conns) hd_kick(h);
  h->mhd_conns = conns;
  hd_dispatch(h, may_accept);
  if (h->stopped) return;
  MHD_UNSIGNED_LONG_LONG ms;
  if (h->mhd.get_timeout(h->d, &ms) != MHD_YES) {
    uv_timer_stop(&h->timer);
  } else if (ms == 0) {
    /* Work is ready now (a resumed connection, unread data): run again on the next loop
     * iteration, not from a 0 ms timer. libuv runs a timer re-armed with 0 in its own
     * callback again at once, without updating the loop's clock, so under a steady flow of
     * requests hd_on_timer served them one after another and no other timer fell due. */
    uv_timer_stop(&h->timer);
    hd_kick(h);
  } else {
    uv_timer_start(&h->timer, hd_on_timer, ms, 0);
  }
}

static void hd_on_timer(uv_timer_t *t) { hd_run(t->data, 0); }

static void hd_on_poll(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  hd_run(p->data, 0);
}

static void hd_on_kick(uv_idle_t *i) {
  httpd *h = i->data;
  uv_idle_stop(i);
  hd_run(h, 1);
}

/* Connections past their header or body deadline are shut down; MHD then closes them.
 * (MHD's own timeout only measures silence, which a client sending a byte a second
 * never leaves.) */
static void hd_on_sweep(uv_timer_t *t) {
  httpd *h = t->data;
  uint64_t now = uv_now(h->loop);
  int any = 0;
  for (hd_conn *hc = h->conns; hc; hc = hc->next) {
    if (hc->deadline == 0 || hc->deadline > now || hc->fd < 0) continue;
    if (hc->body_phase) {
      uint64_t bt = h->o.body_timeout_ms, quiet = hc->body_last + bt;
      uint64_t short_at = hc->win_short ? hc->win_short
                          : hd_body_windows(hc, now, hc->req ? hc->req->body_len : hc->win_from, bt,
                                            h->o.body_min_rate);
      if (!short_at && now < quiet) continue; /* a window ended full: checked again at the next */
      /* slow: a window came short before the body went silent for T (else it stopped) */
      hd_refuse_raw(hc->fd, 408, bt, short_at && short_at < quiet ? h->o.body_min_rate : 0);
      if (hc->req && hc->req->body_state == HTTPD_BODY_READING) {
        hc->req->body_state = HTTPD_BODY_TIMEOUT;
        hc->req->answered = 1; /* by the 408 above */
        hd_news(hc->req);
      }
      hc->body_phase = 0;
    }
    shutdown(hc->fd, SHUT_RDWR);
    hc->deadline = 0;
    hc->closing = 1;
    any = 1;
  }
  if (any) hd_kick(h);
}

static void hd_handle_closed(uv_handle_t *hd) {
  httpd *h = hd->data;
  if (--h->open_handles == 0) hd_server_free(h);
}

static int hd_sockaddr(const char *host, unsigned port, struct sockaddr_storage *ss, int *v6) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *v6 = 0;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    *v6 = 1;
    return 0;
  }
  return -1;
}

/* Whether a server answers on the unix socket at sa: 0 none (nothing listens there: left by
 * a server that died, ECONNREFUSED; or gone meanwhile), 1 one does (*pid: the pid that
 * listens, as the kernel tells it, else 0), -1 cannot tell (errno). Never blocks: a server
 * whose backlog is full (EAGAIN) is one that answers. */
static int hd_unix_answers(const struct sockaddr_un *sa, long *pid) {
  *pid = 0;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int rc = connect(fd, (const struct sockaddr *)sa, sizeof *sa), e = errno;
  if (rc == 0) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof cred) *pid = (long)cred.pid;
  }
  close(fd);
  if (rc == 0 || e == EAGAIN) return 1;
  if (e == ECONNREFUSED || e == ENOENT) return 0;
  errno = e;
  return -1;
}

/* A listening unix socket at path, mode 0600: -1 with a message on failure. A socket
 * file nobody answers on (a server that died) is replaced; one a live server answers on is
 * refused, as is anything else there: taken over, the live server lost its clients, and
 * its stop removed the file from under the new one. */
static int hd_unix_listen(const char *path, char *err, size_t errlen) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) {
    hd_err(err, errlen, "the socket path '%s' is too long", path);
    return -1;
  }
  memcpy(sa.sun_path, path, strlen(path) + 1);
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      hd_err(err, errlen, "'%s' exists and is not a socket", path);
      return -1;
    }
    long pid;
    int live = hd_unix_answers(&sa, &pid);
    if (live != 0) {
      char who[40] = "";
      if (live > 0 && pid > 0) snprintf(who, sizeof who, " (pid %ld)", pid);
      if (live > 0) hd_err(err, errlen, "%s: a server answers on it%s", path, who);
      else hd_err(err, errlen, "%s: cannot tell whether a server answers on it (connect: %s); it is left alone", path,
                  strerror(errno));
      return -1;
    }
    unlink(path);
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    hd_err(err, errlen, "socket: %s", strerror(errno));
    return -1;
  }
  /* mode before bind: the file is made from it (less the umask), never wider than 0600 */
  if (fchmod(fd, 0600) != 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(path, 0600) != 0 ||
      listen(fd, 128) != 0) {
    hd_err(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/* The descriptors a server takes beyond its connections' (its listener and epoll, and the
 * rest of the process: the stores, the workers' pipes, the log, libuv, model calls). */
#define HD_FD_RESERVE 256u

/* A soft RLIMIT_NOFILE below what max_connections needs raised to the hard limit, as far
 * as it goes: past it, accept fails with EMFILE and libmicrohttpd stops accepting until a
 * connection closes, every client held up. The soft limit is low for select(), which
 * nothing here uses. The owner says whether it is enough (orket serve's start). */
static void hd_fd_room(unsigned conns) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return;
  if (r.rlim_cur >= (rlim_t)conns + HD_FD_RESERVE || r.rlim_cur >= r.rlim_max) return;
  r.rlim_cur = r.rlim_max;
  (void)setrlimit(RLIMIT_NOFILE, &r); /* refused: the owner's warning says the limit as it is */
}

httpd *httpd_new(uv_loop_t *loop, const httpd_opts *o, httpd_accept_fn on_accept, void *ud,
                 char *err, size_t errlen) {
  struct sockaddr_storage ss;
  int v6 = 0, ufd = -1;
  if (o->unix_path) {
    ufd = hd_unix_listen(o->unix_path, err, errlen);
    if (ufd < 0) return NULL;
  } else if (o->host == NULL || hd_sockaddr(o->host, o->port, &ss, &v6) != 0) {
    hd_err(err, errlen, "'%s' is not a numeric IP address", o->host ? o->host : "(null)");
    return NULL;
  }
  if (o->port > 65535 || o->ntrusted > HTTPD_MAX_TRUSTED) {
    if (o->port > 65535) hd_err(err, errlen, "port %u is out of range", o->port);
    else hd_err(err, errlen, "more than %d trusted proxies", HTTPD_MAX_TRUSTED);
    if (ufd >= 0) close(ufd);
    return NULL;
  }
  httpd *h = calloc(1, sizeof *h);
  if (h && o->ntrusted && (h->trusted = malloc(o->ntrusted * sizeof *h->trusted)) == NULL) {
    free(h);
    h = NULL;
  }
  if (h == NULL) {
    hd_err(err, errlen, "out of memory");
    if (ufd >= 0) close(ufd);
    return NULL;
  }
  if (mhdapi_open(&h->mhd, err, errlen) != 0) {
    free(h->trusted);
    free(h);
    if (ufd >= 0) close(ufd);
    return NULL;
  }
  h->loop = loop;
  h->o = *o;
  h->o.host = h->o.unix_path = NULL; /* not kept */
  h->o.trusted = NULL; /* h->trusted, its copy */
  if (o->ntrusted) memcpy(h->trusted, o->trusted, o->ntrusted * sizeof *h->trusted);
  h->ntrusted = o->ntrusted;
  h->is_unix = ufd >= 0;
  if (!h->o.max_header_bytes) h->o.max_header_bytes = HD_DEF_HEADER;
  if (!h->o.max_body_bytes) h->o.max_body_bytes = HD_DEF_BODY;
  if (!h->o.max_bodies_bytes) h->o.max_bodies_bytes = HD_DEF_BODIES;
  if (!h->o.max_connections) h->o.max_connections = HD_DEF_CONNS;
  hd_fd_room(h->o.max_connections);
  if (!h->o.max_per_ip) h->o.max_per_ip = HD_DEF_PER_IP;
  if (!h->o.idle_timeout_s) h->o.idle_timeout_s = HD_DEF_IDLE_S;
  if (!h->o.header_timeout_ms) h->o.header_timeout_ms = HD_DEF_HEADER_MS;
  if (!h->o.body_timeout_ms) h->o.body_timeout_ms = HD_DEF_BODY_MS;
  if (!h->o.body_min_rate) h->o.body_min_rate = HD_DEF_BODY_RATE;
  if (!h->o.max_stream_queue) h->o.max_stream_queue = HD_DEF_QUEUE;
  h->on_accept = on_accept;
  h->ud = ud;
  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0);
  /* Where it listens, the one difference between the two kinds of server: on the unix
   * socket MHD takes the listening descriptor (no per-address limit: one user). */
  struct MHD_OptionItem where[3] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
  if (h->is_unix) {
    where[0] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, (intptr_t)ufd, NULL};
  } else {
    where[0] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    where[1] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)h->o.max_per_ip, NULL};
  }
  h->d = h->mhd.start_daemon(flags, h->is_unix ? 0 : (uint16_t)o->port, NULL, NULL, hd_on_request, h,
                             MHD_OPTION_ARRAY, where,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                             h->o.max_header_bytes * HD_POOL_FACTOR + HD_POOL_SLACK,
                             MHD_OPTION_CONNECTION_LIMIT, h->o.max_connections,
                             MHD_OPTION_CONNECTION_TIMEOUT, h->o.idle_timeout_s,
                             MHD_OPTION_NOTIFY_COMPLETED, hd_on_completed, h,
                             MHD_OPTION_NOTIFY_CONNECTION, hd_on_connection, h,
                             MHD_OPTION_URI_LOG_CALLBACK, hd_on_uri, h,
                             MHD_OPTION_UNESCAPE_CALLBACK, hd_unescape_none, h,
                             /* not strict: the refusals it makes are ours (hd_target_error) */
                             MHD_OPTION_STRICT_FOR_CLIENT, (int)0,
                             MHD_OPTION_END);
  if (h->d == NULL) {
    int e = errno;
    if (h->is_unix) {
      hd_err(err, errlen, "cannot serve %s: %s", o->unix_path, e ? strerror(e) : "libmicrohttpd refused to start");
      close(ufd);
    } else {
      hd_err(err, errlen, "cannot listen on %s:%u: %s", o->host, o->port,
             e ? strerror(e) : "libmicrohttpd refused to start");
    }
    hd_server_free(h);
    return NULL;
  }
  const union MHD_DaemonInfo *di = h->mhd.get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
  const union MHD_DaemonInfo *pi = h->mhd.get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  h->port = pi ? pi->port : o->port;
  if (di == NULL || uv_poll_init(loop, &h->poll, di->epoll_fd) != 0) {
    h->mhd.stop_daemon(h->d);
    hd_err(err, errlen, "cannot watch the server's epoll descriptor");
    hd_server_free(h);
    return NULL;
  }
  h->poll.data = h;
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  uv_idle_init(loop, &h->kick);
  h->kick.data = h;
  uv_timer_init(loop, &h->sweep);
  h->sweep.data = h;
  h->open_handles = 4;
  uv_poll_start(&h->poll, UV_READABLE, hd_on_poll);
  unsigned every = (h->o.header_timeout_ms < h->o.body_timeout_ms ? h->o.header_timeout_ms : h->o.body_timeout_ms) / 4;
  if (every < 20) every = 20;
  if (every > 1000) every = 1000;
  uv_timer_start(&h->sweep, hd_on_sweep, every, every);
  uv_unref((uv_handle_t *)&h->sweep); /* it alone keeps nothing alive */
  hd_run(h, 0);
  return h;
}

unsigned httpd_port(const httpd *h) { return h->port; }
size_t httpd_live(const httpd *h) { return h->live; }

void httpd_stop_accepting(httpd *h) {
  if (h->stopped) return;
  MHD_socket fd = h->mhd.quiesce_daemon(h->d);
  if (fd != MHD_INVALID_SOCKET) close(fd);
  hd_kick(h);
}

/* A request being read when the server stops: 503 written past MHD (which cannot queue an
 * answer mid-body), what still comes dropped, the connection closed after a short linger
 * (or at httpd_free); its owner hears HTTPD_BODY_STOPPED. */
static void hd_shut_body(httpd_req *r) {
  httpd *h = r->h;
  r->body_state = HTTPD_BODY_STOPPED;
  r->answered = 1;
  if (r->hc) {
    hd_raw_answer(r->hc->fd, MHD_HTTP_SERVICE_UNAVAILABLE, HD_STOPPING_JSON);
    r->hc->deadline = uv_now(h->loop) + HD_LINGER_MS;
    r->hc->body_phase = 0;
  }
  h->bodies -= r->body_cap;
  free(r->body);
  r->body = NULL;
  r->body_len = r->body_cap = 0;
  hd_news(r);
}

void httpd_shut(httpd *h) {
  if (h == NULL || h->stopped || h->shut) return;
  h->shut = 1;
  /* Nothing may stay suspended when the daemon stops: answer, end streams, resume. */
  for (httpd_req *r = h->reqs; r; r = r->next) {
    if (r->conn == NULL) continue;
    /* a stream ends once its queue is sent: as its owner ended it (an event stream, the
     * end), else cut, so that a relayed body broken off never reads as whole */
    if (r->streaming && !r->stream_closed) r->stream_cut = 1;
    r->stream_closed = 1;
    if (r->body_state == HTTPD_BODY_READING && !r->answered) {
      hd_shut_body(r);
      continue;
    }
    if (!r->answered && r->suspended) {
      hd_unwatch(r);
      struct MHD_Response *resp = h->mhd.create_response_from_buffer(strlen(HD_STOPPING_JSON), (void *)HD_STOPPING_JSON,
                                                                     MHD_RESPMEM_PERSISTENT);
      if (resp) {
        h->mhd.add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
        h->mhd.add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        h->mhd.add_response_header(resp, "X-Content-Type-Options", "nosniff");
        h->mhd.add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        h->mhd.add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        h->mhd.queue_response(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, resp);
        h->mhd.destroy_response(resp);
      }
      r->answered = 1;
      hd_unlink_accept(r); /* answered: no owner takes it now (unowned, freed when sent) */
    }
    hd_resume(r);
  }
  hd_kick(h);
}

size_t httpd_pending(const httpd *h) {
  size_t n = 0;
  for (const httpd_req *r = h->reqs; r; r = r->next) n += r->conn != NULL;
  return n;
}

void httpd_free(httpd *h) {
  if (h == NULL || h->stopped) return;
  httpd_shut(h); /* a no-op after a shut the loop already sent */
  h->stopped = 1; /* no more kicks or runs from the loop */
  for (httpd_req *r = h->reqs; r; r = r->next) hd_unwatch(r);
  for (hd_conn *hc = h->conns; hc; hc = hc->next) hd_conn_unwatch(hc); /* before MHD closes them */
  uv_poll_stop(&h->poll); /* before MHD closes the descriptor */
  h->in_run = 1;
  h->mhd.run(h->d);
  h->mhd.stop_daemon(h->d);
  h->in_run = 0;
  h->d = NULL;
  hd_dispatch(h, 1); /* owners hear that their clients are gone */
  h->on_accept = NULL;
  while (h->acc_head) hd_req_free(h->acc_head); /* MHD freed these already? only unowned */
  for (httpd_req *r = h->reqs, *n; r; r = n) {
    n = r->next;
    r->h = NULL; /* the owner releases it later */
    r->prev = r->next = NULL;
  }
  h->reqs = NULL;
  while (h->conns) {
    hd_conn *hc = h->conns;
    h->conns = hc->next;
    free(hc->raw_query);
    free(hc);
  }
  uv_close((uv_handle_t *)&h->poll, hd_handle_closed);
  uv_close((uv_handle_t *)&h->timer, hd_handle_closed);
  uv_close((uv_handle_t *)&h->kick, hd_handle_closed);
  uv_close((uv_handle_t *)&h->sweep, hd_handle_closed);
}

/* ---- requests --------------------------------------------------------------------------- */

httpd_req *httpd_next(httpd *h) {
  httpd_req *r = h->acc_head;
  if (r == NULL) return NULL;
  hd_unlink_accept(r);
  r->owned = 1;
  return r;
}

httpd_req *httpd_peek(httpd *h) { return h->acc_head; }

void *httpd_ud_of(const httpd_req *r) { return r->h ? r->h->ud : NULL; }

void httpd_accept_later(httpd *h) {
  if (h->acc_head) hd_kick(h);
}

void httpd_set_notify(httpd_req *r, httpd_notify_fn fn, void *ud) {
  r->notify = fn;
  r->ud = ud;
}

const char *httpd_method(const httpd_req *r) { return r->info; }
const char *httpd_path(const httpd_req *r) { return r->info + strlen(r->info) + 1; }
const char *httpd_raw_query(const httpd_req *r) { return r->raw_query; }
const char *httpd_remote(const httpd_req *r) {
  const char *p = httpd_path(r);
  return p + strlen(p) + 1;
}
const char *httpd_peer(const httpd_req *r) {
  const char *p = httpd_remote(r);
  return p + strlen(p) + 1;
}
int httpd_peer_trusted(const httpd_req *r) { return r->peer_trusted; }
const char *httpd_via(const httpd_req *r) { return r->peer_trusted ? httpd_peer(r) : NULL; }

int httpd_header_at(const httpd_req *r, size_t i, const char **name, const char **value) {
  if (i >= r->nheaders) return -1;
  *name = r->hv[2 * i];
  *value = r->hv[2 * i + 1];
  return 0;
}

int httpd_arg_at(const httpd_req *r, size_t i, const char **name, const char **value) {
  if (i >= r->nargs) return -1;
  *name = r->av[2 * i];
  *value = r->av[2 * i + 1];
  return 0;
}

long long httpd_content_length(const httpd_req *r) { return r->content_length; }

int httpd_too_large(const httpd_req *r) {
  size_t cap = r->h ? r->h->o.max_body_bytes : HD_DEF_BODY;
  return r->content_length >= 0 && (unsigned long long)r->content_length > cap;
}

int httpd_gone(const httpd_req *r) { return r->conn == NULL || r->h == NULL || r->client_left; }

int httpd_answered(const httpd_req *r) { return r->answered; }

int httpd_watch_gone(httpd_req *r) {
  if (httpd_gone(r) || r->answered || !r->suspended || r->body_state == HTTPD_BODY_READING) return -1;
  return hd_watch_start(r);
}

int httpd_read_body(httpd_req *r) {
  if (r->body_state != HTTPD_BODY_NONE) return 0;
  if (httpd_gone(r)) {
    r->body_state = HTTPD_BODY_GONE;
    return -1;
  }
  if (httpd_too_large(r)) {
    r->body_state = HTTPD_BODY_TOO_LARGE;
    return 0;
  }
  r->body_state = HTTPD_BODY_READING;
  r->header_call_due = 1;
  if (r->hc) {
    uint64_t now = uv_now(r->h->loop);
    r->hc->deadline = now + r->h->o.body_timeout_ms;
    r->hc->body_phase = 1;
    r->hc->body_last = now;
    r->hc->win_end = now + r->h->o.body_timeout_ms;
    r->hc->win_from = r->body_len;
    r->hc->win_short = 0;
    /* libmicrohttpd's silence timeout would close a client gone quiet mid-body as the
     * deadline passes (or before it), and the 408 would never be sent: while the body is
     * read it waits past the deadline and the sweep's period (a second at most) */
    unsigned s = (unsigned)(r->h->o.body_timeout_ms / 1000) + 3;
    if (s > r->h->o.idle_timeout_s) hd_silence(r->h, r->conn, s);
  }
  hd_resume(r);
  return 0;
}

int httpd_body_state(const httpd_req *r) { return r->body_state; }

const char *httpd_body(const httpd_req *r, size_t *len) {
  *len = r->body_len;
  return r->body ? r->body : "";
}

/* Adds "Name: value" lines to a response: 0, or -2 when one is refused. */
static int hd_add_headers(const mhdapi *mhd, struct MHD_Response *resp, const char *const *headers, size_t nheaders) {
  for (size_t i = 0; i < nheaders; i++) {
    const char *line = headers[i];
    const char *colon = strchr(line, ':');
    if (colon == NULL || colon == line || strpbrk(line, "\r\n")) return -2;
    char name[128];
    size_t nlen = (size_t)(colon - line);
    if (nlen >= sizeof name) return -2;
    memcpy(name, line, nlen);
    name[nlen] = '\0';
    const char *v = colon + 1;
    while (*v == ' ') v++;
    if (mhd->add_response_header(resp, name, v) != MHD_YES) return -2;
  }
  return 0;
}

/* Queues resp (ours, destroyed here) on conn with the header lines: 0, -1 refused by
 * libmicrohttpd, -2 a header refused. */
static int hd_queue_on(const mhdapi *mhd, struct MHD_Connection *conn, unsigned status, struct MHD_Response *resp,
                       const char *const *headers, size_t nheaders) {
  if (hd_add_headers(mhd, resp, headers, nheaders) != 0) {
    mhd->destroy_response(resp);
    return -2;
  }
  enum MHD_Result ok = mhd->queue_response(conn, status, resp);
  mhd->destroy_response(resp);
  return ok == MHD_YES ? 0 : -1;
}

static int hd_queue(httpd_req *r, unsigned status, struct MHD_Response *resp,
                    const char *const *headers, size_t nheaders) {
  int rc = hd_queue_on(&r->h->mhd, r->conn, status, resp, headers, nheaders);
  if (rc != 0) return rc;
  r->answered = 1;
  if (!r->streaming) hd_unwatch(r); /* MHD polls it again from now on */
  hd_resume(r);
  return 0;
}

static int hd_answer(httpd_req *r, unsigned status, struct MHD_Response *resp, const char *const *headers,
                     size_t nheaders) {
  if (r->body_state == HTTPD_BODY_NONE || hd_body_refused(r)) {
    /* the body was not read: MHD closes the connection after the answer */
    r->h->mhd.add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  }
  return hd_queue(r, status, resp, headers, nheaders);
}

/* MHD is done with an answer sent from a blob (sent, or its connection gone). */
static void hd_blob_done(void *cls) { httpd_blob_unref(cls); }

/* A response of blob's bytes (shared: the answer takes a reference, dropped by hd_blob_done
 * when MHD destroys the response) or, blob NULL, of body's (copied). NULL out of memory. */
static struct MHD_Response *hd_response(const mhdapi *mhd, const char *body, size_t len, httpd_blob *blob) {
  if (blob == NULL) return mhd->create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  struct MHD_Response *resp =
      mhd->create_response_from_buffer_with_free_callback_cls(blob->len, blob->data, hd_blob_done, blob);
  if (resp) blob->refs++;
  return resp;
}

int httpd_respond(httpd_req *r, unsigned status, const char *const *headers, size_t nheaders,
                  const char *body, size_t len) {
  if (r->answered || httpd_gone(r) || !r->suspended) return -1;
  struct MHD_Response *resp = hd_response(&r->h->mhd, body, len, NULL);
  if (resp == NULL) return -1;
  return hd_answer(r, status, resp, headers, nheaders);
}

/* Never called for an answer without a body (HEAD, 204, 304). */
static ssize_t hd_no_body(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)cls, (void)pos, (void)buf, (void)max;
  return MHD_CONTENT_READER_END_WITH_ERROR;
}

int httpd_respond_head(httpd_req *r, unsigned status, const char *const *headers, size_t nheaders,
                       uint64_t length) {
  if (r->answered || httpd_gone(r) || !r->suspended) return -1;
  if (status == 204) length = 0; /* sent with no length at all: nothing to frame */
  /* A response of that size whose bytes are never read: libmicrohttpd sends its length and
   * no body for HEAD and 304, and neither for 204 (and 1xx). Unknown, the size is left
   * unknown, and the response kept from chunked framing: libmicrohttpd (0.9.75) would
   * announce it chunked and send the empty last chunk even for HEAD or 304, bytes the
   * client does not expect. So no length goes at all, and the connection closes after. */
  struct MHD_Response *resp = r->h->mhd.create_response_from_callback(
      length == UINT64_MAX ? MHD_SIZE_UNKNOWN : length, 1024, hd_no_body, NULL, NULL);
  if (resp == NULL) return -1;
  if (length == UINT64_MAX &&
      r->h->mhd.set_response_options(resp, MHD_RF_HTTP_VERSION_1_0_ONLY, MHD_RO_END) != MHD_YES) {
    r->h->mhd.destroy_response(resp);
    return -1;
  }
  return hd_answer(r, status, resp, headers, nheaders);
}

httpd_blob *httpd_blob_new(const char *data, size_t len) {
  httpd_blob *b = malloc(sizeof *b + (len ? len : 1));
  if (b == NULL) return NULL;
  b->refs = 1;
  b->len = len;
  if (len) memcpy(b->data, data, len);
  return b;
}

size_t httpd_blob_len(const httpd_blob *b) { return b->len; }

void httpd_blob_unref(httpd_blob *b) {
  if (b && --b->refs == 0) free(b);
}

int httpd_set_quick(httpd *h, const char *const *paths, size_t n, httpd_quick_fn fn, void *ud) {
  char **np = n ? calloc(n, sizeof *np) : NULL;
  if (n && np == NULL) return -1;
  for (size_t i = 0; i < n; i++) {
    np[i] = strdup(paths[i]);
    if (np[i] == NULL) {
      while (i > 0) free(np[--i]);
      free(np);
      return -1;
    }
  }
  for (size_t i = 0; i < h->nquick; i++) free(h->quick_paths[i]);
  free(h->quick_paths);
  h->quick_paths = np;
  h->nquick = n;
  h->quick = n ? fn : NULL;
  h->quick_ud = ud;
  return 0;
}

void httpd_set_refused(httpd *h, httpd_refused_fn fn, void *ud) {
  h->refused = fn;
  h->refused_ud = fn ? ud : NULL;
}

int httpd_quick_respond(httpd_quick *q, unsigned status, const char *const *headers, size_t nheaders,
                        const char *body, size_t len, httpd_blob *blob) {
  hd_quick_ctx *qc = q->priv;
  if (qc->answered) return -1;
  struct MHD_Response *resp = hd_response(&qc->h->mhd, body, len, blob);
  if (resp == NULL) return -1;
  int rc = hd_queue_on(&qc->h->mhd, qc->conn, status, resp, headers, nheaders);
  if (rc == 0) qc->answered = 1;
  return rc;
}

/* A quick answer kept whole at libmicrohttpd: its destroy function with it, for the free
 * after the server that made it is gone (the library stays loaded). */
struct httpd_kept {
  struct MHD_Response *resp;
  void (*destroy)(struct MHD_Response *);
};

int httpd_quick_respond_kept(httpd_quick *q, unsigned status, const char *const *headers, size_t nheaders,
                             httpd_blob *blob, httpd_kept **kept) {
  hd_quick_ctx *qc = q->priv;
  if (qc->answered) return -1;
  const mhdapi *mhd = &qc->h->mhd;
  if (*kept == NULL) {
    httpd_kept *k = malloc(sizeof *k);
    if (k == NULL) return -1;
    k->resp = hd_response(mhd, NULL, 0, blob);
    k->destroy = mhd->destroy_response;
    if (k->resp == NULL || hd_add_headers(mhd, k->resp, headers, nheaders) != 0) {
      int rc = k->resp ? -2 : -1;
      httpd_kept_free(k);
      return rc;
    }
    *kept = k;
  }
  if (mhd->queue_response(qc->conn, status, (*kept)->resp) != MHD_YES) return -1;
  qc->answered = 1;
  return 0;
}

void httpd_kept_free(httpd_kept *k) {
  if (k == NULL) return;
  if (k->resp) k->destroy(k->resp);
  free(k);
}

int httpd_respond_blob(httpd_req *r, unsigned status, const char *const *headers, size_t nheaders,
                       httpd_blob *b) {
  if (r->answered || httpd_gone(r) || !r->suspended) return -1;
  struct MHD_Response *resp = hd_response(&r->h->mhd, NULL, 0, b);
  if (resp == NULL) return -1;
  return hd_answer(r, status, resp, headers, nheaders);
}

int httpd_stream(httpd_req *r, unsigned status, const char *const *headers, size_t nheaders) {
  return httpd_stream_length(r, status, headers, nheaders, UINT64_MAX);
}

int httpd_stream_length(httpd_req *r, unsigned status, const char *const *headers, size_t nheaders,
                        uint64_t length) {
  if (r->answered || httpd_gone(r) || !r->suspended) return -1;
  /* Asked by HEAD, a stream is its headers alone: framed as one, libmicrohttpd would send
   * the empty last chunk, bytes a client reusing the connection reads as its next answer.
   * What the handler then writes fails as it does for a client gone. */
  if (strcmp(httpd_method(r), "HEAD") == 0) return httpd_respond_head(r, status, headers, nheaders, length);
  /* MHD keeps (and touches) a buffer of this size per stream: 1 KiB, not 4, so a thousand
   * idle subscribers cost 3 MB less; an event larger than it is simply read in parts.
   * With a length, MHD frames the body by it (no chunks) and reads no more than it; a
   * stream closed or cut short of it closes the connection, so the client sees it short */
  struct MHD_Response *resp = r->h->mhd.create_response_from_callback(
      length == UINT64_MAX ? MHD_SIZE_UNKNOWN : length, 1024, hd_reader, r, NULL);
  if (resp == NULL) return -1;
  r->streaming = 1;
  int rc = hd_queue(r, status, resp, headers, nheaders);
  if (rc != 0) {
    r->streaming = 0;
    return rc;
  }
  hd_watch_start(r); /* without it the stream still ends, at its next write */
  return rc;
}

int httpd_stream_send_blob(httpd_req *r, httpd_blob *b) {
  if (!r->streaming || r->stream_closed || r->stream_dead || httpd_gone(r)) return -1;
  if (r->q_bytes + b->len > r->h->o.max_stream_queue) {
    /* the client fell behind: drop it rather than buffer without bound */
    r->stream_dead = 1;
    hd_q_clear(r);
    const union MHD_ConnectionInfo *ci = r->h->mhd.get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) shutdown(ci->connect_fd, SHUT_RDWR);
    hd_resume(r);
    hd_kick(r->h);
    return -3;
  }
  if (b->len == 0) return 0;
  if (r->q_n == r->q_cap) { /* grow the ring, its entries made contiguous from 0 */
    size_t cap = r->q_cap ? r->q_cap * 2 : 4;
    httpd_blob **nq = malloc(cap * sizeof *nq);
    if (nq == NULL) return -3;
    for (size_t i = 0; i < r->q_n; i++) nq[i] = r->q[(r->q_head + i) % r->q_cap];
    free(r->q);
    r->q = nq;
    r->q_cap = cap;
    r->q_head = 0;
  }
  r->q[(r->q_head + r->q_n) % r->q_cap] = b;
  r->q_n++;
  b->refs++; /* the queue's, dropped once the bytes are handed to MHD */
  r->q_bytes += b->len;
  if (!httpd_stream_drained(r)) r->notified_drain = 0;
  if (r->reader_waiting) hd_resume(r);
  return 0;
}

int httpd_stream_send(httpd_req *r, const char *data, size_t len) {
  if (!r->streaming || r->stream_closed || r->stream_dead || httpd_gone(r)) return -1;
  httpd_blob *b = httpd_blob_new(data, len);
  if (b == NULL) return -3;
  int rc = httpd_stream_send_blob(r, b);
  httpd_blob_unref(b);
  return rc;
}

size_t httpd_stream_queued(const httpd_req *r) { return r->q_bytes; }

static size_t hd_drain_at(const httpd_req *r) {
  size_t half = r->h->o.max_stream_queue / 2;
  return r->drain_at && r->drain_at < half ? r->drain_at : half;
}

int httpd_stream_drained(const httpd_req *r) {
  return r->h == NULL || r->q_bytes <= hd_drain_at(r);
}

void httpd_stream_drain_at(httpd_req *r, size_t bytes) {
  r->drain_at = bytes;
  if (r->h && !httpd_stream_drained(r)) r->notified_drain = 0;
}

void httpd_stream_close(httpd_req *r) {
  if (!r->streaming || r->stream_closed) return;
  r->stream_closed = 1;
  if (r->reader_waiting) hd_resume(r);
}

void httpd_stream_cut(httpd_req *r) {
  if (!r->streaming || r->stream_closed) return;
  r->stream_cut = 1;
  httpd_stream_close(r);
}

void httpd_release(httpd_req *r) {
  if (r == NULL || r->released) return;
  r->released = 1;
  r->notify = NULL;
  if (r->h == NULL || r->conn == NULL) {
    hd_req_free(r);
    return;
  }
  hd_unlink_news(r);
  if (r->streaming) {
    httpd_stream_close(r);
  } else if (!r->answered) {
    static const char body[] = "{\"error\":{\"code\":\"internal\",\"message\":\"the request was not answered\"}}";
    /* a client gone while it waited, or one whose body is still being read: its socket is
     * shut, and MHD closes the connection once it runs it again */
    if (r->client_left || !r->suspended) {
      const union MHD_ConnectionInfo *ci = r->h->mhd.get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
      if (ci) shutdown(ci->connect_fd, SHUT_RDWR);
    }
    if (r->suspended) {
      r->client_left = 0; /* answered as any other (to a socket now shut, when it left) */
      httpd_respond(r, 500, NULL, 0, body, sizeof body - 1);
    } else {
      hd_kick(r->h); /* reading its body: it is answered when the body ends */
    }
  }
}

/* ---- pure helpers ----------------------------------------------------------------------- */

int httpd_parse_listen(const char *s, char *host, size_t hostlen, unsigned *port, char *err,
                       size_t errlen) {
  const char *hs, *he, *ps;
  if (s[0] == '[') {
    hs = s + 1;
    he = strchr(hs, ']');
    if (he == NULL || he[1] != ':') {
      hd_err(err, errlen, "'%s' is not [IPv6]:PORT", s);
      return -1;
    }
    ps = he + 2;
  } else {
    he = strrchr(s, ':');
    if (he == NULL) {
      hd_err(err, errlen, "'%s' has no port: give HOST:PORT (127.0.0.1:8765)", s);
      return -1;
    }
    if (memchr(s, ':', (size_t)(he - s))) {
      hd_err(err, errlen, "'%s': write an IPv6 address in brackets, [::1]:8765", s);
      return -1;
    }
    hs = s;
    ps = he + 1;
  }
  size_t hl = (size_t)(he - hs);
  char *end;
  errno = 0;
  unsigned long p = strtoul(ps, &end, 10);
  if (*ps < '0' || *ps > '9' || *end || errno || p > 65535) {
    hd_err(err, errlen, "'%s': the port must be a number from 0 to 65535", s);
    return -1;
  }
  if (hl == 9 && memcmp(hs, "localhost", 9) == 0) {
    hs = "127.0.0.1";
    hl = 9;
  }
  if (hl == 0 || hl >= hostlen) {
    hd_err(err, errlen, "'%s': the host is empty or too long", s);
    return -1;
  }
  memcpy(host, hs, hl);
  host[hl] = '\0';
  struct sockaddr_storage ss;
  int v6;
  if (hd_sockaddr(host, 0, &ss, &v6) != 0) {
    hd_err(err, errlen, "'%s': the host must be a numeric IP address or localhost", s);
    return -1;
  }
  *port = (unsigned)p;
  return 0;
}

int httpd_is_loopback(const char *host) {
  struct in_addr a4;
  struct in6_addr a6;
  if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, host, &a6) != 1) return 0;
  static const unsigned char lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (memcmp(a6.s6_addr, lo, 16) == 0) return 1;
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(a6.s6_addr, mapped, 12) == 0 && a6.s6_addr[12] == 127;
}
