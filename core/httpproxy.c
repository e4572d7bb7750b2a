/* httpproxy.c: the pump (see httpproxy.h). Both sides notify it (the upstream's transfer
 * when it has headers, bytes or its end; the client's request when its queue drained or it
 * left), and each notice runs one step that moves what can move now. */
#include "httpproxy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PP_QUEUE_HIGH ((size_t)128 << 10)
#define PP_WHOLE_MAX ((size_t)256 << 10)
#define PP_AHEAD ((size_t)32 << 10)
#define PP_PASS_MAX 4095
#define PP_LOCATION_MAX ((size_t)16 << 10) /* a Location's longest (pp_cap) */
#define PP_COOKIE_MAX 8192
/* the answer's header lines in all: libmicrohttpd builds them in its 52 KiB of memory per
 * connection and, past that, sends nothing at all */
#define PP_HEADERS_MAX ((size_t)32 << 10)
#define PP_MAX_LINES 96 /* answer header lines at most (the upstream's beyond are dropped) */
/* links in one Link value rewritten at most, and anchor parameters in it (one with more of
 * either is dropped) */
#define PP_LINKS_MAX 32

/* A copy of a vector of strings, in one allocation: the pointers, then the bytes. */
typedef struct pp_strv {
  char **v;
  size_t n;
} pp_strv;

enum { PP_HEADERS, PP_STREAM, PP_DONE };

/* What the pumps to one upstream share (httpproxy_kept_new), each pump holding a reference. */
struct httpproxy_kept {
  size_t refs;
  http_opts up;      /* but url, method, headers and body, which are each request's */
  char *unix_socket; /* up.unix_socket's copy */
  pp_strv lines, pass, cookies, pass_in;
  pp_strv loc_from;        /* the starts of the upstream's own URLs (location_from, location_also) */
  char *loc_to;            /* NULL: Location passed as it is */
  int loc_links;           /* Link's URI-references made as Location is */
  int with_cookies;
  size_t pass_max, queue_high, whole_max;
  size_t max_live;         /* 0: no bound */
  size_t max_live_each;    /* of those, from one client address at most (0: no bound) */
  int each_skip_local;     /* loopback and unix-socket clients held to no share */
  httpproxy_live *live;    /* the pumps running, counted with the kept parts sharing it */
};

/* One client address's running pumps, in a shared count */
typedef struct pp_addr {
  char *addr;
  size_t n;
} pp_addr;

/* The count of running pumps some kept parts share (live_with), counted by its references,
 * and of them, those of each client address that has one running (no more entries than
 * running pumps). */
struct httpproxy_live {
  size_t refs, n;
  pp_addr *by;
  size_t nby, cap;
};

struct httpproxy {
  http_req *up;
  httpd_req *req;
  httpproxy_done_fn done;
  void *ud;
  httpproxy_kept *k;
  char *addr; /* the client's share as counted in k's live (NULL: not counted) */
  char *body;
  char *base; /* the app's request's path and query, with loc_to (pp_ctx) */
  int phase;
  int stepping;     /* inside pp_step: a notice meanwhile only asks for another pass */
  int again;
  size_t next_ev;   /* the upstream's queued events before this one are on the client's queue */
  size_t sent;
  uint64_t length; /* streamed: the upstream's Content-Length passed on, UINT64_MAX none */
  unsigned status;
  int timed_out; /* status 0 because the upstream gave no answer in time */
  const char *timeout_phase; /* which of its deadlines passed (http_error's phase) */
  char *message;
};

static int pp_strv_copy(pp_strv *s, const char *const *v, size_t n) {
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++) bytes += strlen(v[i]) + 1;
  s->n = n;
  s->v = malloc(n * sizeof *s->v + bytes + 1);
  if (s->v == NULL) return -1;
  char *p = (char *)(s->v + n);
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(v[i]) + 1;
    memcpy(p, v[i], len);
    s->v[i] = p;
    p += len;
  }
  return 0;
}

/* name lower-case (as the upstream's are), s's names lower-cased by httpproxy_kept_new */
static int pp_has(const pp_strv *s, const char *name, size_t len) {
  for (size_t i = 0; i < s->n; i++)
    /* strncmp stops at the entry's end, and its length is asked only of a match: an entry
     * shorter than name is never read past */
    if (s->v[i][0] == name[0] && strncmp(s->v[i], name, len) == 0 && strlen(s->v[i]) == len) return 1;
  return 0;
}

static char pp_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

static void pp_strv_lower(pp_strv *s) {
  for (size_t i = 0; i < s->n; i++)
    for (char *c = s->v[i]; *c; c++) *c = pp_lower(*c);
}

/* A request header's name (as sent) is want, in any case: the first byte first */
static int pp_named(const char *name, const char *want) {
  return pp_lower(name[0]) == pp_lower(want[0]) && strcasecmp(name, want) == 0;
}

/* Whether a cookie attribute (what follows a ';') is Domain: browsers trim spaces and tabs
 * around its name and compare it without case (RFC 6265 5.2), so "Domain =x" counts too;
 * a bare "Domain" also goes (its value would be empty, which browsers ignore anyway). */
static int pp_is_domain(const char *attr) {
  while (*attr == ' ' || *attr == '\t') attr++;
  size_t n = strcspn(attr, "=;");
  while (n > 0 && (attr[n - 1] == ' ' || attr[n - 1] == '\t')) n--;
  return n == 6 && strncasecmp(attr, "domain", 6) == 0;
}

int httpproxy_cookie(const char *v, const char *const *refused, size_t nrefused, char *out, size_t outlen) {
  while (*v == ' ' || *v == '\t') v++;
  size_t nlen = strcspn(v, "=; \t");
  if (nlen == 0 || v[nlen] != '=') return 0;
  for (size_t i = 0; i < nrefused; i++)
    if (strncmp(refused[i], v, nlen) == 0 && refused[i][nlen] == '\0') return 0;
  /* host-only: a Domain attribute would reach the other hosts of the site */
  size_t o = 0;
  const char *p = v;
  while (*p) {
    const char *semi = strchr(p, ';');
    const char *attr = semi ? semi + 1 : NULL;
    size_t upto = semi ? (size_t)(semi - p) : strlen(p);
    if (o + upto + 1 > outlen) return 0;
    memcpy(out + o, p, upto);
    o += upto;
    if (!semi) break;
    if (pp_is_domain(attr)) { /* skipped, with its separator */
      const char *next = strchr(attr, ';');
      p = next ? next : attr + strlen(attr);
      continue;
    }
    if (o + 2 > outlen) return 0; /* the ';' and the final NUL */
    out[o++] = ';';
    p = semi + 1;
  }
  out[o] = '\0';
  return 1;
}

static void pp_fail(httpproxy *p, const char *prefix, const char *msg) {
  if (p->message) return;
  size_t n = strlen(prefix) + strlen(msg ? msg : "") + 1;
  p->message = malloc(n);
  if (p->message) snprintf(p->message, n, "%s%s", prefix, msg ? msg : "");
}

static void pp_finish(httpproxy *p) {
  p->phase = PP_DONE;
  if (p->up && !http_finished(p->up)) http_abort(p->up, HTTP_E_CANCELED, "the client left");
  p->done(p, p->ud); /* last: the owner may free p */
}

static int pp_has_ctl(const char *v) {
  for (; *v; v++)
    if (((unsigned char)*v < 0x20 && *v != '\t') || (unsigned char)*v == 0x7f) return 1;
  return 0;
}

/* A tab or line break: a browser drops them from a URL before it reads it (WHATWG URL). */
static int pp_dropped(char c) { return c == '\t' || c == '\r' || c == '\n'; }

/* Whether a rest put after location_to's "/" would name another host to a browser: "/x"
 * after it is "//x", and a browser reads a backslash as "/" and drops tabs and line breaks
 * from a URL (WHATWG URL), so a backslash and x, or a tab, "/" and x, are the same. Such a
 * Location is passed as it is (the upstream's own URL, which leads nowhere): made "//x" it
 * would send the client to x. */
static int pp_names_host(const char *rest, const char *end) {
  while (rest < end && pp_dropped(*rest)) rest++;
  return rest < end && (*rest == '/' || *rest == '\\');
}

/* What of a URL of the upstream's (value, len bytes) follows the start the client's
 * replaces with loc_to (httpproxy_opts' location_from), or NULL: passed as it is. Location's
 * value, and each URI-reference of a Link's (location_links). */
static const char *pp_own_rest(const httpproxy_kept *k, const char *value, size_t len) {
  const char *rest = NULL, *end = value + len;
  for (size_t i = 0; rest == NULL && i < k->loc_from.n; i++) {
    const char *from = k->loc_from.v[i];
    size_t fl = strlen(from);
    /* a scheme and host are without case (RFC 3986 6.2.2.1) */
    if (len >= fl && strncasecmp(value, from, fl) == 0) rest = value + fl;
    /* the origin alone ("http://127.0.0.1:8080", "...?q", "...#f") is its root too */
    else if (fl > 1 && from[fl - 1] == '/' && len >= fl - 1 && strncasecmp(value, from, fl - 1) == 0 &&
             (len == fl - 1 || value[fl - 1] == '?' || value[fl - 1] == '#'))
      rest = value + fl - 1;
  }
  /* an absolute path is the upstream's root */
  if (rest == NULL && len > 0 && value[0] == '/') rest = value + 1;
  return rest && !pp_names_host(rest, end) ? rest : NULL;
}

/* 1 or 2 when a path segment (n bytes at s) is "." or ".." as a browser reads one (WHATWG
 * URL: "%2e" is a dot too, and tabs and line breaks are not there), else 0. */
static int pp_dots(const char *s, size_t n) {
  int dots = 0;
  for (size_t i = 0; i < n;) {
    if (pp_dropped(s[i])) {
      i++;
      continue;
    }
    if (dots == 2) return 0;
    if (s[i] == '.') i++;
    else if (i + 3 <= n && s[i] == '%' && s[i + 1] == '2' && (s[i + 2] | 0x20) == 'e') i += 3;
    else return 0;
    dots++;
  }
  return dots;
}

/* A rest (len bytes at rest, after loc_to) at out with its path's dot segments removed (RFC
 * 3986 5.2.4), never climbing above the app's root, a backslash read as "/" and tabs and line
 * breaks left out, as a browser reads them: put after loc_to as it was, "../../v1/keys" (or
 * ".<TAB>.") led a browser out of the app onto the API's routes. No separator is left at its
 * start (after loc_to "/" it would name a host). The query and fragment follow as they are.
 * -> the bytes written (no more than len). */
static size_t pp_clean_rest(const char *rest, size_t len, char *out) {
  size_t path = 0, o = 0;
  while (path < len && rest[path] != '?' && rest[path] != '#') path++;
  for (size_t i = 0;;) {
    size_t j = i;
    while (j < path && rest[j] != '/' && rest[j] != '\\') j++;
    int end = j >= path, d = pp_dots(rest + i, j - i);
    if (d == 2 && o > 0) { /* the segment before goes: out ends with its '/' */
      o--;
      while (o > 0 && out[o - 1] != '/') o--;
    } else if (d == 0 && (j > i || o > 0)) {
      for (size_t k = i; k < j; k++)
        if (!pp_dropped(rest[k])) out[o++] = rest[k];
      if (!end) out[o++] = '/';
    }
    if (end) break;
    i = j + 1;
  }
  memcpy(out + o, rest + path, len - path);
  return o + len - path;
}

#define PP_NAMES 3 /* the names this server was reached by that a request tells (pp_ctx) */

/* What a URL of the app's is judged against, for one answer: the kept part's starts and
 * loc_to, the path and query the app was asked for (the base its relative references resolve
 * against, RFC 3986 5.2.1), and this server's names as the client gave them. */
typedef struct pp_ctx {
  const httpproxy_kept *k;
  const char *base; /* the app's request's "/path?query" */
  size_t blen;
  const char *names[PP_NAMES]; /* the request's Host, X-Forwarded-Host's first and Forwarded's
                                  first host= (RFC 7239); NULL: none */
  size_t nlen[PP_NAMES];
} pp_ctx;

/* pp_url's outcomes */
enum { PP_URL_OUT, PP_URL_ASIS, PP_URL_MADE };

static int pp_slashy(char c) { return c == '/' || c == '\\'; }

static int pp_hex(char c) {
  return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
}

/* A host and port (n bytes at s, an authority without userinfo) at host (cap bytes) and
 * *port as a browser compares them (WHATWG URL): percent-escapes read, lower-case, a trailing
 * dot dropped, an IPv4 address in any form inet_aton reads ("2130706433", "0x7f.1") dotted;
 * the port a number, 0 for none or a default one (80 or 443: which one the client's scheme
 * makes is not known here, so either counts); an IPv6 address in inet_ntop's spelling.
 * -1 when it is no host a browser goes to; 1 when it holds bytes beyond ASCII, which a
 * client maps (IDNA) to a host that cannot be told here. */
static int pp_host_norm(const char *s, size_t n, char *host, size_t cap, unsigned long *port) {
  size_t hl = n;
  if (n > 0 && s[0] == '[') {
    const char *rb = memchr(s, ']', n);
    if (rb == NULL) return -1;
    hl = (size_t)(rb - s) + 1;
    if (hl < n && s[hl] != ':') return -1;
  } else {
    const char *colon = memchr(s, ':', n);
    if (colon) hl = (size_t)(colon - s);
  }
  *port = 0;
  if (hl < n) {
    unsigned long v = 0;
    for (size_t i = hl + 1; i < n; i++) {
      if (s[i] < '0' || s[i] > '9') return -1;
      v = v * 10 + (unsigned long)(s[i] - '0');
      if (v > 65535) return -1;
    }
    *port = v == 80 || v == 443 ? 0 : v;
  }
  size_t o = 0;
  for (size_t i = 0; i < hl; i++) {
    char c = s[i];
    if (c == '%' && i + 2 < hl && pp_hex(s[i + 1]) >= 0 && pp_hex(s[i + 2]) >= 0) {
      c = (char)(pp_hex(s[i + 1]) * 16 + pp_hex(s[i + 2]));
      i += 2;
    }
    if (o + 1 >= cap) return -1;
    host[o++] = pp_lower(c);
  }
  if (o > 0 && host[o - 1] == '.') o--;
  host[o] = '\0';
  if (o == 0) return -1;
  /* a name beyond ASCII is mapped by a client before it connects (IDNA: fullwidth letters,
   * the ideographic full stop): which host it is cannot be told here, so it may be this one */
  for (size_t i = 0; i < o; i++)
    if ((unsigned char)host[i] >= 0x80) return 1;
  if (host[0] == '[') { /* an IPv6 address in its one spelling ([0:0:0:0:0:0:0:1] is [::1]) */
    struct in6_addr a6;
    char in[INET6_ADDRSTRLEN + 1];
    if (o < 3 || o - 2 > INET6_ADDRSTRLEN || host[o - 1] != ']') return -1;
    memcpy(in, host + 1, o - 2);
    in[o - 2] = '\0';
    if (inet_pton(AF_INET6, in, &a6) != 1) return 0; /* (a zone, a future form: compared as written) */
    if (cap < INET6_ADDRSTRLEN + 2 || inet_ntop(AF_INET6, &a6, host + 1, (socklen_t)(cap - 2)) == NULL) return -1;
    size_t l = strlen(host);
    host[l] = ']';
    host[l + 1] = '\0';
    return 0;
  }
  struct in_addr a4;
  if (host[0] != '[' && cap >= INET_ADDRSTRLEN && inet_aton(host, &a4) == 1) inet_ntop(AF_INET, &a4, host, (socklen_t)cap);
  return 0;
}

/* Whether an authority (n bytes at a, userinfo and all) names this server as the client
 * reached it (c's names): a redirect there is followed with the client's own credentials */
static int pp_names_server(const pp_ctx *c, const char *a, size_t n) {
  for (size_t i = n; i > 0; i--)
    if (a[i - 1] == '@') { /* a browser reads the host after the last '@' */
      a += i;
      n -= i;
      break;
    }
  char host[256], mine[256];
  unsigned long port, mport;
  int r = pp_host_norm(a, n, host, sizeof host, &port);
  if (r == 1) return 1; /* beyond ASCII: taken for this server's, as it may be */
  if (r != 0) return 0;
  for (size_t i = 0; i < PP_NAMES; i++)
    if (c->names[i] && pp_host_norm(c->names[i], c->nlen[i], mine, sizeof mine, &mport) == 0 &&
        strcmp(host, mine) == 0 && port == mport)
      return 1;
  return 0;
}

/* The app's own path (rest: after its root's "/", len bytes) at out under loc_to, cleaned
 * (pp_clean_rest). -> the bytes written. */
static size_t pp_under(const httpproxy_kept *k, const char *rest, size_t len, char *out) {
  size_t tl = strlen(k->loc_to);
  memcpy(out, k->loc_to, tl);
  return tl + pp_clean_rest(rest, len, out + tl);
}

/* An authority-form URL's part after its scheme's ':' (or a scheme-relative one, its
 * slashes and all; n bytes at a): another host's passes as it is; this server's own passes,
 * as its path, only when that path, its dot segments removed as a browser removes them,
 * stays under loc_to. */
static int pp_server_url(const pp_ctx *c, const char *a, size_t n, char *out, size_t *olen) {
  while (n > 0 && pp_slashy(*a)) { /* a browser skips any number of them (WHATWG URL) */
    a++;
    n--;
  }
  size_t al = 0;
  while (al < n && !pp_slashy(a[al]) && a[al] != '?' && a[al] != '#') al++;
  if (!pp_names_server(c, a, al)) return PP_URL_ASIS;
  const char *path = a + al;
  size_t pl = n - al, tl = strlen(c->k->loc_to);
  if (pl == 0 || !pp_slashy(path[0])) return PP_URL_OUT; /* the server's root */
  out[0] = '/';
  size_t ol = 1 + pp_clean_rest(path + 1, pl - 1, out + 1);
  if (ol < tl || memcmp(out, c->k->loc_to, tl) != 0) return PP_URL_OUT;
  *olen = ol;
  return PP_URL_MADE;
}

/* A relative reference with a relative path, or none ("?q", "#f"; rl bytes at r), resolved
 * against the app's request (RFC 3986 5.2.2, 5.2.3) and put under loc_to: the app meant its
 * own URL, and its dot segments stop at its root, as on its own origin they would. */
static int pp_resolve(const pp_ctx *c, const char *r, size_t rl, char *out, size_t *olen) {
  const char *b = c->base;
  size_t bl = c->blen, bp = strcspn(b, "?#"), rp = 0;
  while (rp < rl && r[rp] != '?' && r[rp] != '#') rp++;
  char *m = malloc(bl + rl + 1);
  if (m == NULL) return PP_URL_OUT; /* not passed rather than passed unjudged */
  size_t ml;
  if (rp == 0) { /* the base's path, and its query unless the reference gives one */
    ml = bp - 1;
    memcpy(m, b + 1, ml);
    if (rl == 0 || r[0] == '#') {
      memcpy(m + ml, b + bp, bl - bp);
      ml += bl - bp;
    }
  } else { /* merged: the base's path up to its last '/' */
    size_t d = bp;
    while (d > 1 && b[d - 1] != '/') d--;
    ml = d - 1;
    memcpy(m, b + 1, ml);
  }
  memcpy(m + ml, r, rl);
  *olen = pp_under(c->k, m, ml + rl, out);
  free(m);
  return PP_URL_MADE;
}

/* pp_url's reading, under a path prefix, of a value that starts with none of the app's own
 * starts (w, wl bytes, its tabs and line breaks dropped) */
static int pp_url_read(const pp_ctx *c, const char *w, size_t wl, char *out, size_t *olen) {
  size_t sl = 0;
  if (wl > 0 && (w[0] | 0x20) >= 'a' && (w[0] | 0x20) <= 'z') {
    sl = 1;
    while (sl < wl && (((w[sl] | 0x20) >= 'a' && (w[sl] | 0x20) <= 'z') || (w[sl] >= '0' && w[sl] <= '9') ||
                       w[sl] == '+' || w[sl] == '-' || w[sl] == '.'))
      sl++;
    if (sl >= wl || w[sl] != ':') sl = 0;
  }
  const char *r = w;
  size_t rl = wl;
  if (sl > 0) {
    if (!((sl == 4 && strncasecmp(w, "http", 4) == 0) || (sl == 5 && strncasecmp(w, "https", 5) == 0)))
      return PP_URL_ASIS; /* another scheme's (mailto:, an app's own): none of this server's routes */
    /* "http:x" without its slashes: a browser at an http URL reads it relative to that URL */
    r = w + sl + 1;
    rl = wl - sl - 1;
  }
  if (rl >= 2 && pp_slashy(r[0]) && pp_slashy(r[1])) return pp_server_url(c, r, rl, out, olen);
  if (rl >= 1 && pp_slashy(r[0])) { /* an absolute path (a backslash is a '/' to a browser) */
    *olen = pp_under(c->k, r + 1, rl - 1, out);
    return PP_URL_MADE;
  }
  return pp_resolve(c, r, rl, out, olen);
}

/* A URL of the upstream's (len bytes at v: a Location, a Link's URI-reference) at out as
 * the client's (*olen bytes). One of the app's own URLs (pp_own_rest) is loc_to then its
 * rest, cleaned. Under a path prefix (loc_to not "/") a client resolves any other against
 * the proxied URL, where "../../../cards/X" climbs out of the app onto this server's own
 * routes, and follows it with its credentials (an API key is sent again to the same host):
 * a relative reference (and "http:x", and a backslash's "\x") is resolved against the app's
 * request instead and put under loc_to; a URL of this server's own host (the request's Host)
 * passes only when its path stays under loc_to. -> PP_URL_MADE; PP_URL_ASIS (out holds v);
 * PP_URL_OUT when it leads out of the app onto this server (out undefined). out: room for
 * len + strlen(loc_to) + c->blen. */
static int pp_url(const pp_ctx *c, const char *v, size_t len, char *out, size_t *olen) {
  const httpproxy_kept *k = c->k;
  const char *rest = pp_own_rest(k, v, len);
  if (rest) {
    *olen = pp_under(k, rest, len - (size_t)(rest - v), out);
    return PP_URL_MADE;
  }
  memcpy(out, v, len);
  *olen = len;
  /* on an origin of its own (loc_to "/") the client's URL is the app's: a relative one
   * leads where the app meant, and this server's routes are another host's */
  if (k->loc_to[1] == '\0') return PP_URL_ASIS;
  char *w = malloc(len + 1); /* as a browser reads it: without tabs and line breaks */
  if (w == NULL) return PP_URL_OUT;
  size_t wl = 0;
  for (size_t i = 0; i < len; i++)
    if (!pp_dropped(v[i])) w[wl++] = v[i];
  int r = pp_url_read(c, w, wl, out, olen);
  free(w);
  if (r == PP_URL_ASIS) {
    memcpy(out, v, len);
    *olen = len;
  }
  return r;
}

/* A quoted string's content (len bytes at v, between its quotes) holding one of the
 * upstream's URLs, at out as the client's: its value (RFC 9110 5.6.4: a quoted-pair "\\c" is
 * c) judged as a Location's is, so that an escape neither hides the app's own URL ("\\/x" is
 * "/x") nor slips one past the guard ("/\\\\x" is "/\\x"). The value is written at out
 * first, as scratch (it is no longer than v); what replaces the start is loc_to, then the
 * rest as the upstream escaped it, the guard judging it both read and as written. Any
 * other value is judged by pp_url, by its value and as written; made the client's, it must
 * need no escape. -> the bytes written at *olen; 0 when the Link is left out (pp_url's
 * PP_URL_OUT, either way, or a made URL holding '"' or a backslash). */
static int pp_own_quoted(const pp_ctx *c, const char *v, size_t len, char *out, size_t *olen) {
  const httpproxy_kept *k = c->k;
  size_t ul = 0;
  for (size_t i = 0; i < len; i++) out[ul++] = v[i] == '\\' && i + 1 < len ? v[++i] : v[i];
  const char *rest = pp_own_rest(k, out, ul);
  if (rest == NULL) {
    char *u = malloc(ul + 1);
    if (u == NULL) return 0;
    memcpy(u, out, ul);
    int r = pp_url(c, u, ul, out, olen);
    free(u);
    if (r == PP_URL_MADE) return memchr(out, '"', *olen) == NULL && memchr(out, '\\', *olen) == NULL;
    /* as is: a client that only strips the quotes reads it as written */
    if (r == PP_URL_OUT || pp_url(c, v, len, out, olen) != PP_URL_ASIS) return 0;
    return 1;
  }
  /* the rest's first byte in v: skip as many of the value's bytes as precede it */
  size_t skip = (size_t)(rest - out), i = 0;
  for (; skip > 0; skip--) i += v[i] == '\\' && i + 1 < len ? 2 : 1;
  /* many Link readers only strip the quotes: the rest as the upstream escaped it is what
   * such a client reads after loc_to, so it is judged by the guard too ("\\evil" reads as
   * "evil", but taken as written a browser reads its backslash as "/") */
  if (pp_names_host(v + i, v + len)) {
    memcpy(out, v, len);
    *olen = len;
    return 1;
  }
  size_t tl = strlen(k->loc_to);
  memcpy(out, k->loc_to, tl);
  memcpy(out + tl, v + i, len - i);
  *olen = tl + len - i;
  return 1;
}

/* A Link value (RFC 8288 3: comma-separated "<URI-Reference>" each followed by
 * "; name[=token or quoted-string]" parameters, a quoted string's commas and semicolons
 * its own) at out with its URI-references made the client's as a Location is: each
 * link's target and its anchor parameter. out: room for strlen(v) + 1 and loc_to's length
 * and the base's per '<' and '=' in v, up to 2 * PP_LINKS_MAX of them (each rewrite takes one,
 * and no more are made). 0 when it is not of that grammar or holds more than PP_LINKS_MAX
 * links or anchor parameters, or a URL that leads out of the app onto this server (pp_url):
 * the header is left out, not passed with URLs that lead elsewhere. */
static int pp_link_value(const pp_ctx *c, const char *v, char *out) {
  size_t o = 0, links = 0, anchors = 0, ul;
  const char *p = v;
  for (;;) {
    const char *s = p;
    p += strspn(p, " \t,"); /* empty elements are allowed (RFC 9110 5.6.1) */
    memcpy(out + o, s, (size_t)(p - s));
    o += (size_t)(p - s);
    if (*p == '\0') break;
    const char *gt = *p == '<' ? strchr(p + 1, '>') : NULL;
    if (gt == NULL || ++links > PP_LINKS_MAX) return 0;
    out[o++] = '<';
    if (pp_url(c, p + 1, (size_t)(gt - p - 1), out + o, &ul) == PP_URL_OUT) return 0;
    o += ul;
    out[o++] = '>';
    p = gt + 1;
    for (;;) { /* its parameters */
      s = p;
      p += strspn(p, " \t");
      if (*p == '\0' || *p == ',') {
        memcpy(out + o, s, (size_t)(p - s));
        o += (size_t)(p - s);
        break;
      }
      if (*p != ';') return 0;
      p++;
      p += strspn(p, " \t");
      size_t nl = strcspn(p, "=;, \t\"<>");
      if (nl == 0) return 0;
      int anchor = nl == 6 && strncasecmp(p, "anchor", 6) == 0;
      if (anchor && ++anchors > PP_LINKS_MAX) return 0;
      p += nl;
      p += strspn(p, " \t");
      if (*p == '=') {
        p++;
        p += strspn(p, " \t");
        if (*p == '"') {
          const char *q = p + 1;
          while (*q && *q != '"') q += q[0] == '\\' && q[1] ? 2 : 1;
          if (*q != '"') return 0;
          memcpy(out + o, s, (size_t)(p + 1 - s));
          o += (size_t)(p + 1 - s);
          /* anchor's URI-reference (RFC 8288 3.2) is the quoted string's value */
          if (anchor) {
            if (!pp_own_quoted(c, p + 1, (size_t)(q - p - 1), out + o, &ul)) return 0;
            o += ul;
          } else {
            memcpy(out + o, p + 1, (size_t)(q - p - 1));
            o += (size_t)(q - p - 1);
          }
          out[o++] = '"';
          p = q + 1;
          continue;
        }
        size_t tl = strcspn(p, ";, \t\"<>");
        /* a backslash is no token's (RFC 9110 5.6.2 tchar), and a browser taking it as
         * written reads it as "/" ("\\/x" as "//x", another host) */
        if (tl == 0 || memchr(p, '\\', tl) != NULL) return 0;
        if (anchor) {
          memcpy(out + o, s, (size_t)(p - s));
          o += (size_t)(p - s);
          if (pp_url(c, p, tl, out + o, &ul) == PP_URL_OUT) return 0;
          o += ul;
          p += tl;
          continue;
        }
        p += tl;
      }
      memcpy(out + o, s, (size_t)(p - s));
      o += (size_t)(p - s);
    }
  }
  out[o] = '\0';
  return 1;
}

/* The longest value passed back of the upstream's header name (lower-case): pass_max, or
 * for a Location PP_LOCATION_MAX when that is more (an OAuth or SAML redirect carries its
 * request in the URL) */
static size_t pp_cap(const httpproxy_kept *k, const char *name) {
  return strcmp(name, "location") == 0 && k->pass_max < PP_LOCATION_MAX ? PP_LOCATION_MAX : k->pass_max;
}

/* pp_ctx for p's answer: the app's request's path and query, this server's names from the
 * client's request */
static void pp_ctx_of(const httpproxy *p, pp_ctx *c) {
  memset(c, 0, sizeof *c);
  c->k = p->k;
  c->base = p->base ? p->base : "/";
  c->blen = strlen(c->base);
  const char *name, *value;
  for (size_t i = 0; httpd_header_at(p->req, i, &name, &value) == 0; i++) {
    int at = pp_named(name, "host") ? 0 : pp_named(name, "x-forwarded-host") ? 1 : pp_named(name, "forwarded") ? 2 : -1;
    if (at < 0 || c->names[at]) continue;
    if (at == 2) { /* its first element's host=, a token or a quoted string (RFC 7239) */
      size_t end = strcspn(value, ","), j = 0;
      while (j < end && !(strncasecmp(value + j, "host=", 5) == 0 && (j == 0 || value[j - 1] == ';' ||
                                                                       value[j - 1] == ' ' || value[j - 1] == '\t')))
        j++;
      if (j >= end) continue;
      value += j + 5;
      if (*value == '"') {
        value++;
        c->names[2] = value;
        c->nlen[2] = strcspn(value, "\"");
      } else {
        c->names[2] = value;
        c->nlen[2] = strcspn(value, ";, \t");
      }
      continue;
    }
    value += strspn(value, " \t");
    c->names[at] = value;
    c->nlen[at] = strcspn(value, ", \t");
  }
}

/* Whether the upstream's header name is a Link whose URLs are made the client's */
static int pp_is_link(const httpproxy_kept *k, const char *name) {
  return k->loc_to != NULL && k->loc_links && strcmp(name, "link") == 0;
}

/* The answer's header lines: the fixed ones, then what passes of the upstream's, the
 * latter made in one allocation (*owned, NULL when none passes: freed by the caller), as
 * memcpy, not a malloc and a format per line. Returns the count. *refused 1 (the pump's
 * message says why) when the upstream's Location cannot be passed on: longer than
 * pp_cap, or leading out of the app onto this server (pp_url); a redirect without it would
 * lead nowhere, and with it, unjudged, somewhere the client did not mean to send its key. */
static size_t pp_answer_lines(httpproxy *p, const char **out, char **owned, int *refused) {
  size_t n = 0, room = 0;
  pp_ctx c;
  *refused = 0;
  for (size_t i = 0; i < p->k->lines.n && n < PP_MAX_LINES; i++) out[n++] = p->k->lines.v[i];
  const char *name, *value;
  /* the room first: each passed line as "Name: value" or "Set-Cookie: value", and its NUL */
  pp_ctx_of(p, &c);
  /* a Location made longer: loc_to, and the base a relative one is resolved against */
  size_t more = p->k->loc_to ? strlen(p->k->loc_to) + c.blen : 0;
  for (size_t i = 0; http_header_next(p->up, &i, &name, &value) == 0;) {
    size_t nl = strlen(name), vl = strlen(value);
    room += nl + vl + 13;
    /* the longer URLs only of a line that may pass: an upstream's 64 KiB of headers are
     * not made a few MiB of room for lines that are left out */
    if (!pp_has(&p->k->pass, name, nl) || vl > pp_cap(p->k, name)) continue;
    if (pp_is_link(p->k, name)) { /* each URL in it (after '<', or an anchor's '='), as
                                      many as pp_link_value rewrites at most */
      size_t urls = 0;
      for (const char *u = value; urls < 2 * PP_LINKS_MAX && (u = strpbrk(u, "<=")) != NULL; u++) urls++;
      room += urls * more;
    } else {
      room += more; /* a Location */
    }
  }
  char *buf = *owned = room ? malloc(room) : NULL, *at = buf;
  if (buf == NULL) return n;
  for (size_t i = 0; n < PP_MAX_LINES && http_header_next(p->up, &i, &name, &value) == 0;) {
    /* an empty value would make libmicrohttpd refuse the whole answer; a control byte but
     * HTAB (RFC 9110 5.5: CR, LF, ESC's terminal sequences, DEL) is no value to pass on */
    if (value[strspn(value, " \t")] == '\0' || pp_has_ctl(value)) continue;
    size_t nl = strlen(name), vl = strlen(value);
    int passed = pp_has(&p->k->pass, name, nl), location = passed && strcmp(name, "location") == 0;
    if (location && vl > pp_cap(p->k, name)) {
      char msg[160];
      snprintf(msg, sizeof msg, "the app's redirect has a Location of %zu bytes, longer than the %zu passed on", vl,
               pp_cap(p->k, name));
      pp_fail(p, "", msg);
      *refused = 1;
      break;
    }
    if (passed && vl <= pp_cap(p->k, name)) {
      memcpy(at, name, nl);
      memcpy(at + nl, ": ", 2);
      size_t ul;
      if (pp_is_link(p->k, name)) {
        if (!pp_link_value(&c, value, at + nl + 2)) continue;
      } else if (location && p->k->loc_to) {
        if (pp_url(&c, value, vl, at + nl + 2, &ul) == PP_URL_OUT) {
          pp_fail(p, "", "the app's redirect leads out of its route onto this server's own: its Location is not "
                         "passed on (docs/serve.md, The proxy)");
          *refused = 1;
          break;
        }
        at[nl + 2 + ul] = '\0';
      } else {
        memcpy(at + nl + 2, value, vl + 1);
      }
    } else if (p->k->with_cookies && strcmp(name, "set-cookie") == 0 && vl <= PP_COOKIE_MAX) {
      if (!httpproxy_cookie(value, (const char *const *)p->k->cookies.v, p->k->cookies.n, at + 12, vl + 1)) continue;
      memcpy(at, "Set-Cookie: ", 12);
    } else {
      continue;
    }
    out[n++] = at;
    at += strlen(at) + 1;
  }
  return n;
}

static size_t pp_queued_bytes(const http_req *up) {
  size_t total = 0, l;
  const char *d;
  for (size_t i = 0; i < http_event_count(up); i++) {
    http_event_at(up, i, &d, &l);
    total += l;
  }
  return total;
}

/* The upstream's queued body in one allocation (its length in *len). NULL out of memory. */
static char *pp_gather(const http_req *up, size_t *len) {
  size_t total = pp_queued_bytes(up), o = 0, l;
  const char *d;
  char *buf = malloc(total ? total : 1);
  if (buf == NULL) return NULL;
  for (size_t i = 0; i < http_event_count(up); i++) {
    http_event_at(up, i, &d, &l);
    memcpy(buf + o, d, l);
    o += l;
  }
  *len = total;
  return buf;
}

/* The answer could not be queued: -2, a header line refused, leaves it unanswered for the
 * owner (status 0); else the client is gone. */
static void pp_refused(httpproxy *p, int rc) {
  if (rc == -2) {
    p->status = 0;
    pp_fail(p, "", "the app's answer headers were refused");
  } else {
    p->status = 499;
  }
}

/* A Content-Length value (RFC 9110 8.6: 1*DIGIT, between optional spaces; a list of one
 * number repeated, "2, 2", is that number, RFC 9112 6.3): its number's digits, leading
 * zeros dropped, at *num (*len of them); -1 when it is not one number (libcurl would read
 * the first digits of "2, 5", "2 5" or "2abc" and go on). */
static int pp_cl_parse(const char *v, const char **num, size_t *len) {
  const char *got = NULL;
  size_t glen = 0;
  for (;;) {
    v += strspn(v, " \t");
    while (*v == '0' && v[1] >= '0' && v[1] <= '9') v++; /* "02" is 2, as libcurl reads it */
    size_t n = strspn(v, "0123456789");
    if (n == 0 || (got && (n != glen || memcmp(got, v, n) != 0))) return -1;
    got = v;
    glen = n;
    v += n;
    v += strspn(v, " \t");
    if (*v == '\0') break;
    if (*v++ != ',') return -1;
  }
  *num = got;
  *len = glen;
  return 0;
}

/* The upstream's Content-Length, UINT64_MAX when it gave none (or one not a number). */
static uint64_t pp_length(const http_req *up) {
  const char *name, *value, *num;
  size_t n;
  for (size_t i = 0; http_header_next(up, &i, &name, &value) == 0;) {
    if (strcmp(name, "content-length") != 0) continue;
    if (pp_cl_parse(value, &num, &n) != 0 || n > 18) return UINT64_MAX;
    return strtoull(num, NULL, 10);
  }
  return UINT64_MAX;
}

/* Why the upstream's answer is framed by no length it can be read by (RFC 9112 6.3: a
 * Content-Length that is not a number, too large a number, or lines that differ; a proxy
 * answers 502 rather than pick one, as libcurl would, or read to the close past a number
 * libcurl cannot hold), or NULL. With a Transfer-Encoding anywhere among its headers
 * (*te 1), which frames it instead, no Content-Length counts. */
static const char *pp_framing_error(const http_req *up, int *te) {
  const char *name, *value, *first = NULL, *num, *bad = NULL;
  size_t flen = 0, n;
  *te = 0;
  for (size_t i = 0; http_header_next(up, &i, &name, &value) == 0;) {
    if (strcmp(name, "transfer-encoding") == 0) *te = 1;
    if (bad || strcmp(name, "content-length") != 0) continue;
    if (pp_cl_parse(value, &num, &n) != 0) bad = "the app's answer gave a Content-Length that is not one number (RFC 9112 6.3)";
    /* pp_length's bound: 10^18 bytes is more than any answer, and libcurl drops a length
     * past its 63 bits, reading to the close as though there were none */
    else if (n > 18) bad = "the app's answer gave a Content-Length too large to read (RFC 9112 6.3)";
    else if (first == NULL) {
      first = num;
      flen = n;
    } else if (n != flen || memcmp(first, num, n) != 0) {
      bad = "the app's answer gave Content-Length twice, differing (RFC 9112 6.3)";
    }
  }
  return *te ? NULL : bad;
}

/* The pump's own 502 for an answer the app gave and the pump will not pass on (its
 * message, JSON-safe, says why), in the owner's error shape: the owner's 502 would send the
 * client to the app's log, where the answer looks well. -> httpd_respond's. */
static int pp_bad_gateway(httpproxy *p) {
  const char *lines[PP_MAX_LINES + 1];
  size_t n = 0;
  for (size_t i = 0; i < p->k->lines.n && n < PP_MAX_LINES; i++) lines[n++] = p->k->lines.v[i];
  lines[n++] = "Content-Type: application/json";
  const char *msg = p->message ? p->message : "the app's answer could not be passed on";
  size_t room = strlen(msg) + 64;
  char *body = malloc(room);
  if (body == NULL) return -1;
  int bl = snprintf(body, room, "{\"error\":{\"code\":\"bad_gateway\",\"message\":\"%s\"}}\n", msg);
  p->status = 502;
  int rc = httpd_respond(p->req, 502, lines, n, body, (size_t)bl);
  free(body);
  return rc;
}

/* The headers are in: the answer whole (when the body is too, and short) or a stream.
 * 1 to go on streaming, 0 when over. */
static int pp_answer(httpproxy *p) {
  const char *lines[PP_MAX_LINES];
  char *owned = NULL;
  int refused;
  size_t nl = pp_answer_lines(p, lines, &owned, &refused), hbytes = 0;
  for (size_t i = 0; i < nl; i++) hbytes += strlen(lines[i]) + 2;
  int st = http_status(p->up), rc, streaming = 0, te = 0;
  const char *framing;
  /* RFC 9110 15: 100-599 only; a 1xx here is one libcurl did not take as interim */
  p->status = st < 200 || st > 599 ? 502 : (unsigned)st;
  if (refused) {
    rc = pp_bad_gateway(p);
  } else if (hbytes > PP_HEADERS_MAX) { /* left to the owner, as an answer the app failed to give */
    p->status = 0;
    pp_fail(p, "", "the app's answer headers passed back exceed 32 KiB");
    rc = 0;
  } else if ((framing = pp_framing_error(p->up, &te)) != NULL) { /* the same */
    p->status = 0;
    pp_fail(p, "", framing);
    rc = 0;
  } else if (strcmp(httpd_method(p->req), "HEAD") == 0 || p->status == 204 || p->status == 304) {
    /* whole at once and without a body, whatever the upstream still sends: a streamed
     * answer would end with a chunk the client does not expect. The app's Content-Length
     * is the one its GET's body has (RFC 9110 8.6), so it is passed as it is, or none */
    rc = httpd_respond_head(p->req, p->status, lines, nl, pp_length(p->up));
  } else if (http_finished(p->up) && http_error(p->up, NULL, NULL) == NULL &&
             pp_queued_bytes(p->up) <= p->k->whole_max) {
    /* an answer in one piece (the usual small one) is answered from it, not a copy */
    size_t len = 0;
    const char *one = "";
    char *body = NULL;
    if (http_event_count(p->up) == 1) http_event_at(p->up, 0, &one, &len);
    else if (http_event_count(p->up) > 1) one = body = pp_gather(p->up, &len);
    rc = one ? httpd_respond(p->req, p->status, lines, nl, one, len) : -1;
    if (rc == 0) p->sent = len;
    free(body);
  } else {
    /* the app's length, when it framed its body by one (a Transfer-Encoding frames it
     * instead, RFC 9112 6.3), goes with the stream: a client shows a download's progress.
     * libcurl reads no more than it, and an answer cut short of it ends with the
     * connection closed, so the client sees it short as it would a cut chunked one */
    p->length = te ? UINT64_MAX : pp_length(p->up);
    rc = httpd_stream_length(p->req, p->status, lines, nl, p->length);
    streaming = rc == 0;
  }
  free(owned);
  if (rc != 0) pp_refused(p, rc);
  if (!streaming) return 0;
  httpd_stream_drain_at(p->req, p->k->queue_high / 2);
  p->phase = PP_STREAM;
  return 1;
}

/* Moves what the upstream has queued to the client's queue, within queue_high. 1 to go on
 * waiting, 0 when over. */
static int pp_pump(httpproxy *p) {
  for (;;) {
    size_t n = http_event_count(p->up);
    while (p->next_ev < n) {
      const char *d;
      size_t l;
      http_event_at(p->up, p->next_ev, &d, &l);
      /* a slow client is waited for (its queue drains to half), never dropped for the
       * upstream's speed; meanwhile the transfer pauses at its read-ahead */
      if (httpd_stream_queued(p->req) + l > p->k->queue_high && !httpd_stream_drained(p->req)) return 1;
      if (httpd_stream_send(p->req, d, l) != 0) {
        pp_fail(p, "the client left", "");
        return 0;
      }
      p->sent += l;
      p->next_ev++;
    }
    if (n == 0 || p->next_ev < n) break;
    p->next_ev = 0;
    http_events_clear(p->up); /* resumes a paused transfer, which may queue more at once */
  }
  if (!http_finished(p->up) || http_event_count(p->up) > 0) return 1;
  const char *msg;
  if (http_error(p->up, &msg, NULL)) {
    pp_fail(p, "the app's answer broke off: ", msg);
    httpd_stream_cut(p->req); /* the client must not take it for whole */
  } else {
    httpd_stream_close(p->req);
  }
  return 0;
}

static void pp_step(httpproxy *p) {
  if (p->phase == PP_DONE) return;
  if (p->stepping) {
    p->again = 1;
    return;
  }
  p->stepping = 1;
  int go = 1;
  do {
    p->again = 0;
    if (httpd_gone(p->req)) { /* the client left (or, streaming, the end was sent) */
      /* unanswered here: the client left, or the server closed and sent it 503 */
      if (p->phase == PP_HEADERS) p->status = httpd_answered(p->req) ? 503 : 499;
      /* an answer of a known length is over once that much is sent, whether or not the
       * transfer has said it ended yet */
      else if (!http_finished(p->up) && (p->length == UINT64_MAX || p->sent < p->length))
        pp_fail(p, "the client left", "");
      go = 0;
    } else if (p->phase == PP_HEADERS) {
      if (!http_headers_done(p->up)) {
        if (http_finished(p->up)) {
          const char *msg, *phase;
          const char *code = http_error(p->up, &msg, &phase);
          /* no answer in time is a gateway's timeout (504, RFC 9110 15.6.5), not a bad one */
          p->timed_out = code != NULL && strcmp(code, HTTP_E_TIMEOUT) == 0;
          p->timeout_phase = p->timed_out ? phase : NULL;
          pp_fail(p, "", msg ? msg : "no answer");
          go = 0;
        }
      } else {
        go = pp_answer(p);
      }
    }
    if (go && p->phase == PP_STREAM) go = pp_pump(p);
  } while (go && p->again);
  p->stepping = 0;
  if (!go) pp_finish(p);
}

static void pp_on_up(http_req *r, void *ud) {
  (void)r;
  pp_step(ud);
}

static void pp_on_client(httpd_req *r, void *ud) {
  (void)r;
  pp_step(ud);
}

/* location_from and each of location_also, in one vector */
static int pp_location_starts(pp_strv *s, const httpproxy_opts *o) {
  const char *v[1 + HTTPPROXY_LOCATION_ALSO_MAX];
  size_t n = 0;
  v[n++] = o->location_from;
  for (size_t i = 0; i < o->nlocation_also && n < 1 + HTTPPROXY_LOCATION_ALSO_MAX; i++) v[n++] = o->location_also[i];
  return pp_strv_copy(s, v, n);
}

httpproxy_kept *httpproxy_kept_new(const httpproxy_opts *o) {
  httpproxy_kept *k = calloc(1, sizeof *k);
  if (k == NULL) return NULL;
  k->refs = 1;
  if (pp_strv_copy(&k->lines, o->lines, o->nlines) != 0 || pp_strv_copy(&k->pass, o->pass, o->npass) != 0 ||
      pp_strv_copy(&k->cookies, o->cookies, o->ncookies) != 0 ||
      pp_strv_copy(&k->pass_in, o->pass_in, o->npass_in) != 0 ||
      (o->up.unix_socket && (k->unix_socket = strdup(o->up.unix_socket)) == NULL) ||
      (o->location_from && o->location_to && (pp_location_starts(&k->loc_from, o) != 0 ||
                                                (k->loc_to = strdup(o->location_to)) == NULL))) {
    httpproxy_kept_unref(k);
    return NULL;
  }
  pp_strv_lower(&k->pass); /* compared with the upstream's lower-cased names */
  k->up = o->up;
  k->up.url = k->up.method = NULL;
  k->up.headers = NULL;
  k->up.nheaders = 0;
  k->up.body = NULL;
  k->up.body_len = 0;
  k->up.unix_socket = k->unix_socket;
  k->with_cookies = o->cookies != NULL;
  k->pass_max = o->pass_max ? o->pass_max : PP_PASS_MAX;
  k->queue_high = o->queue_high ? o->queue_high : PP_QUEUE_HIGH;
  k->whole_max = o->whole_max ? o->whole_max : PP_WHOLE_MAX;
  k->max_live = o->max_live;
  k->max_live_each = o->max_live ? o->max_live_each : 0;
  k->each_skip_local = o->each_skip_local;
  k->loc_links = o->location_links;
  if (o->live_with && o->live_with->live) { /* its count is this one's too */
    k->live = o->live_with->live;
    k->live->refs++;
  } else if ((k->live = calloc(1, sizeof *k->live)) != NULL) {
    k->live->refs = 1;
  } else {
    httpproxy_kept_unref(k);
    return NULL;
  }
  return k;
}

void httpproxy_kept_unref(httpproxy_kept *k) {
  if (k == NULL || --k->refs > 0) return;
  free(k->lines.v);
  free(k->pass.v);
  free(k->cookies.v);
  free(k->pass_in.v);
  free(k->unix_socket);
  free(k->loc_from.v);
  free(k->loc_to);
  if (k->live && --k->live->refs == 0) {
    free(k->live->by); /* empty: each running pump holds a reference */
    free(k->live);
  }
  free(k);
}

httpproxy *httpproxy_start(http_client *c, httpd_req *req, const httpproxy_opts *o, httpproxy_done_fn done,
                           void *ud, char *err, size_t errlen) {
  httpproxy_kept *k = httpproxy_kept_new(o);
  if (k == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  httpproxy *p = httpproxy_start_kept(c, req, k, &o->up, done, ud, err, errlen);
  httpproxy_kept_unref(k);
  return p;
}

/* The request's header lines to the upstream: pass_in's from the client's request, then
 * each's own, in one allocation (the pointers, then the bytes; freed by the caller once the
 * transfer has copied them). NULL out of memory. */
static const char **pp_request_lines(const httpproxy_kept *k, const httpd_req *req, const http_opts *each, size_t *n) {
  const char *name, *value;
  size_t room = 0;
  /* counted as the copy below writes: once per pass_in name, for each header it matches
   * (a name given twice, in any case, is paid for twice, never overrun) */
  for (size_t j = 0; j < k->pass_in.n; j++)
    for (size_t i = 0; httpd_header_at(req, i, &name, &value) == 0; i++)
      if (pp_named(name, k->pass_in.v[j])) room += strlen(name) + strlen(value) + 4;
  size_t most = k->pass_in.n + each->nheaders;
  const char **lines = malloc(most * sizeof *lines + room + 1);
  if (lines == NULL) return NULL;
  char *at = (char *)(lines + most);
  *n = 0;
  for (size_t j = 0; room > 0 && j < k->pass_in.n; j++) {
    const char *want = k->pass_in.v[j];
    size_t wl = strlen(want), o = 0;
    for (size_t i = 0; httpd_header_at(req, i, &name, &value) == 0; i++) {
      if (!pp_named(name, want)) continue;
      size_t vl = strlen(value);
      if (o == 0) {
        memcpy(at, want, wl);
        memcpy(at + wl, ": ", 2);
        o = wl + 2;
      } else {
        memcpy(at + o, ", ", 2); /* as the request's headers table joins a repeated name */
        o += 2;
      }
      memcpy(at + o, value, vl);
      o += vl;
    }
    if (o == 0) continue;
    at[o] = '\0';
    if (strpbrk(at + wl, "\r\n")) continue; /* never a line of the client's making */
    lines[(*n)++] = at;
    at += o + 1;
  }
  for (size_t i = 0; i < each->nheaders; i++) lines[(*n)++] = each->headers[i];
  return lines;
}

/* A URL's path and query, "/" first (its fragment left out): the base the app's relative
 * URLs resolve against. NULL out of memory. */
static char *pp_base_of(const char *url) {
  const char *a = strstr(url, "://");
  a = a ? a + 3 : url;
  a += strcspn(a, "/?#");
  size_t n = strcspn(a, "#"), o = 0;
  char *b = malloc(n + 2);
  if (b == NULL) return NULL;
  if (*a != '/') b[o++] = '/';
  memcpy(b + o, a, n);
  b[o + n] = '\0';
  return b;
}

/* The count of addr's running pumps in live, NULL when it has none */
static pp_addr *pp_addr_of(const httpproxy_live *live, const char *addr) {
  for (size_t i = 0; i < live->nby; i++)
    if (strcmp(live->by[i].addr, addr) == 0) return &live->by[i];
  return NULL;
}

#define PP_SHARE_LEN (INET6_ADDRSTRLEN + 4)

/* The share a client address (httpd_remote's) is counted under, in buf (PP_SHARE_LEN
 * bytes), or NULL when it is held to none: k has no max_live_each, or it skips local
 * clients and this is one. An IPv6 address counts by its /64: a client is given a /64, and
 * each of its addresses would otherwise be a share of its own. */
static const char *pp_share(const httpproxy_kept *k, const char *addr, char *buf) {
  if (addr == NULL || !k->max_live_each) return NULL;
  if (k->each_skip_local && (strncmp(addr, "unix", 4) == 0 || httpd_is_loopback(addr))) return NULL;
  struct in6_addr a6;
  if (inet_pton(AF_INET6, addr, &a6) == 1) {
    memset(a6.s6_addr + 8, 0, 8);
    if (inet_ntop(AF_INET6, &a6, buf, INET6_ADDRSTRLEN) != NULL) {
      strcat(buf, "/64");
      return buf;
    }
  }
  snprintf(buf, PP_SHARE_LEN, "%s", addr);
  return buf;
}

int httpproxy_kept_full(const httpproxy_kept *k, const char *addr) {
  if (k->max_live && k->live->n >= k->max_live) return 1;
  char buf[PP_SHARE_LEN];
  const char *share = pp_share(k, addr, buf);
  const pp_addr *a = share ? pp_addr_of(k->live, share) : NULL;
  return a && a->n >= k->max_live_each ? 2 : 0;
}

/* One more of addr's pumps counted in live: its entry, NULL out of memory */
static pp_addr *pp_addr_count(httpproxy_live *live, const char *addr) {
  pp_addr *a = pp_addr_of(live, addr);
  if (a == NULL) {
    if (live->nby == live->cap) {
      size_t cap = live->cap ? live->cap * 2 : 8;
      pp_addr *by = realloc(live->by, cap * sizeof *by);
      if (by == NULL) return NULL;
      live->by = by;
      live->cap = cap;
    }
    char *copy = strdup(addr);
    if (copy == NULL) return NULL;
    a = &live->by[live->nby++];
    a->addr = copy;
    a->n = 0;
  }
  a->n++;
  return a;
}

/* One fewer of the pump's address's (the entry dropped at none: entries are no more than
 * the pumps running) */
static void pp_addr_uncount(httpproxy_live *live, const char *addr) {
  pp_addr *a = pp_addr_of(live, addr);
  if (a == NULL || --a->n > 0) return;
  free(a->addr);
  *a = live->by[--live->nby];
}

httpproxy *httpproxy_start_kept(http_client *c, httpd_req *req, httpproxy_kept *k, const http_opts *each,
                                httpproxy_done_fn done, void *ud, char *err, size_t errlen) {
  const char *addr = httpd_remote(req);
  char buf[PP_SHARE_LEN];
  const char *share = pp_share(k, addr, buf);
  int full = httpproxy_kept_full(k, addr);
  if (full == 1) {
    snprintf(err, errlen, "%zu requests to the app are in progress already", k->max_live);
    return NULL;
  }
  if (full == 2) {
    snprintf(err, errlen, "%zu requests to the app from %s are in progress already", k->max_live_each, share);
    return NULL;
  }
  httpproxy *p = calloc(1, sizeof *p);
  if (p == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  k->refs++;
  p->k = k;
  k->live->n++; /* given back in httpproxy_free */
  if (share) {
    if ((p->addr = strdup(share)) == NULL || pp_addr_count(k->live, share) == NULL) {
      free(p->addr); /* not counted: nothing to give back */
      p->addr = NULL;
      httpproxy_free(p);
      snprintf(err, errlen, "out of memory");
      return NULL;
    }
  }
  p->req = req;
  p->length = UINT64_MAX;
  if (k->loc_to && each->url && (p->base = pp_base_of(each->url)) == NULL) {
    httpproxy_free(p);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  p->done = done;
  p->ud = ud;
  http_opts up = k->up;
  up.url = each->url;
  up.method = each->method;
  const char **lines = pp_request_lines(k, req, each, &up.nheaders);
  if (lines == NULL) {
    httpproxy_free(p);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  up.headers = lines;
  up.body = each->body;
  up.body_len = each->body_len;
  if (up.max_queued == 0) up.max_queued = PP_AHEAD; /* never read without bound */
  up.framing = FRAME_RAW;
  up.take = NULL;
  if (up.body) { /* kept by the pump: the transfer reads it as it goes */
    p->body = malloc(up.body_len ? up.body_len : 1);
    if (p->body == NULL) {
      httpproxy_free(p);
      snprintf(err, errlen, "out of memory");
      return NULL;
    }
    memcpy(p->body, up.body, up.body_len);
    up.body = p->body;
  }
  p->up = http_start(c, &up, pp_on_up, p, err, errlen);
  free(lines); /* the transfer holds its own copy (a header list) */
  if (p->up == NULL) {
    httpproxy_free(p);
    return NULL;
  }
  httpd_set_notify(req, pp_on_client, p);
  /* a client that leaves before the app answers stops the transfer at once (one that
   * sent its next request early too) */
  httpd_watch_gone(req);
  return p;
}

unsigned httpproxy_status(const httpproxy *p, const char **message) {
  if (message) *message = p->message;
  return p->status;
}

size_t httpproxy_sent(const httpproxy *p) { return p->sent; }

int httpproxy_timed_out(const httpproxy *p) { return p->status == 0 && p->timed_out; }

const char *httpproxy_timeout_phase(const httpproxy *p) {
  return httpproxy_timed_out(p) && p->timeout_phase ? p->timeout_phase : NULL;
}

void httpproxy_free(httpproxy *p) {
  if (p == NULL) return;
  /* stopped mid-stream (its task cancelled, its request closed): the client must see the
   * answer cut, not end as if whole */
  if (p->phase == PP_STREAM) httpd_stream_cut(p->req);
  if (p->up) http_release(p->up);
  p->k->live->n--;
  if (p->addr) pp_addr_uncount(p->k->live, p->addr);
  free(p->addr);
  httpproxy_kept_unref(p->k);
  free(p->body);
  free(p->base);
  free(p->message);
  free(p);
}
