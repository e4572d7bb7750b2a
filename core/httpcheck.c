/* httpcheck.c: the request intake's checks on text alone (httpcheck.h). */
#include "httpcheck.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int hc_alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int hc_hex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Whose authority hc_authority reads, which its refusals name: an absolute target's, or
 * the Host header's value. */
typedef enum { HC_AUTH_TARGET, HC_AUTH_HOST } hc_auth_of;

static const char *hc_auth_err(char *err, size_t errlen, hc_auth_of of, const char *what) {
  snprintf(err, errlen, "%s %s", of == HC_AUTH_TARGET ? "the request target's" : "the Host header's", what);
  return err;
}

/* Reads an authority, a (len bytes, no "@": hc_target_split; in a Host, "@" is a character
 * no host may), as RFC 3986 3.2.2 and 3.2.3 write it: an IPv6 address in brackets, or a
 * name (an IPv4 address is one too), then ":port". Into t->auth in the one form routing
 * compares: lower-cased (a host is case-insensitive; an Origin beside it is compared as
 * text), the port as its number, an empty port dropped (RFC 3986 6.2.3: the scheme's
 * default). Refused: what a reader further on could take for another host (a second colon,
 * an unclosed bracket), and a name with an empty label ("a..b", a leading dot). A target's
 * authority, which takes the Host's place in routing, is held to one spelling per host: no
 * %-escape (never decoded here) and no trailing dot (DNS resolves "localhost." as
 * "localhost", while routing and the browser's origin compare text). A Host's value is
 * read as RFC 3986 writes a reg-name: a %XX escape (a client on the unix socket may send
 * its path so) and one trailing dot (an absolute DNS name, as in a Kubernetes FQDN) are
 * sound; it is handed on as sent, and a spelling routing does not know is routed to the
 * API, never taken for local use (its readers compare text). NULL when sound, else what is
 * wrong (in err, naming whose authority it is). */
static const char *hc_authority(const char *a, size_t len, hc_target *t, hc_auth_of of, char *err, size_t errlen) {
  size_t hl; /* the host's length: up to the port's colon */
  if (len > 0 && a[0] == '[') {
    const char *end = memchr(a, ']', len);
    if (end == NULL) return hc_auth_err(err, errlen, of, "host opens a bracket it never closes");
    hl = (size_t)(end - a) + 1;
    char v6[INET6_ADDRSTRLEN];
    struct in6_addr in6;
    size_t vl = hl - 2;
    if (vl >= sizeof v6 || (memcpy(v6, a + 1, vl), v6[vl] = '\0', inet_pton(AF_INET6, v6, &in6) != 1))
      return hc_auth_err(err, errlen, of, "host in brackets is not an IPv6 address");
    if (hl < len && a[hl] != ':') return hc_auth_err(err, errlen, of, "host goes on past its closing bracket");
  } else {
    for (hl = 0; hl < len && a[hl] != ':'; hl++) {
      unsigned char c = (unsigned char)a[hl];
      if (c == '%' && of == HC_AUTH_TARGET)
        return hc_auth_err(err, errlen, of, "host holds a %-escape, which this server does not decode");
      if (c == '%') {
        if (hl + 2 >= len || !hc_hex((unsigned char)a[hl + 1]) || !hc_hex((unsigned char)a[hl + 2]))
          return hc_auth_err(err, errlen, of, "host holds a % that is not a %XX escape (two hex digits)");
        hl += 2;
        continue;
      }
      if (c == '[' || c == ']')
        return hc_auth_err(err, errlen, of, "host holds a bracket outside an IPv6 address ([::1])");
      if (!hc_alnum(c) && strchr("-._~!$&'()*+,;=", c) == NULL)
        return hc_auth_err(err, errlen, of, "host holds a character no host may");
    }
    if (hl == 0)
      return hc_auth_err(err, errlen, of,
                         of == HC_AUTH_TARGET ? "host is empty (the absolute form is http://host/path)"
                                              : "host is empty (it is Host: name[:port])");
    size_t nl = hl; /* the name less a Host's one trailing dot */
    if (of == HC_AUTH_HOST && hl > 1 && a[hl - 1] == '.' && a[hl - 2] != '.') nl--;
    int empty = a[0] == '.' || a[nl - 1] == '.';
    for (size_t i = 1; i < nl && !empty; i++) empty = a[i] == '.' && a[i - 1] == '.';
    if (empty)
      return hc_auth_err(err, errlen, of,
                         of == HC_AUTH_TARGET
                             ? "host has an empty label (a dot at its start or end, or two together)"
                             : "host has an empty label (a dot at its start, or two together)");
  }
  if (hl > HC_HOST_MAX) return hc_auth_err(err, errlen, of, "host is longer than 255 bytes");
  unsigned port = 0;
  int has_port = 0;
  if (hl < len) { /* a[hl] == ':' */
    const char *p = a + hl + 1;
    size_t pl = len - hl - 1;
    if (memchr(p, ':', pl) != NULL)
      return hc_auth_err(err, errlen, of,
                         of == HC_AUTH_TARGET
                             ? "host has more than one colon (an IPv6 address goes in brackets: http://[::1]/)"
                             : "host has more than one colon (an IPv6 address goes in brackets: [::1])");
    if (pl > 5) return hc_auth_err(err, errlen, of, "port is not a number from 0 to 65535");
    for (size_t i = 0; i < pl; i++) {
      if (p[i] < '0' || p[i] > '9') return hc_auth_err(err, errlen, of, "port is not a number from 0 to 65535");
      port = port * 10 + (unsigned)(p[i] - '0');
    }
    if (port > 65535) return hc_auth_err(err, errlen, of, "port is not a number from 0 to 65535");
    has_port = pl > 0;
  }
  for (size_t i = 0; i < hl; i++) {
    char c = a[i];
    t->auth[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
  }
  t->authlen = hl;
  if (has_port) t->authlen += (size_t)snprintf(t->auth + hl, sizeof t->auth - hl, ":%u", port);
  t->auth[t->authlen] = '\0';
  return NULL;
}

/* Only http and https: the scheme says nothing of how the request came (a proxy in front
 * says https, docs/serve.md), and the host is all that is read. */
const char *hc_target_split(const char *url, hc_target *t, char *err, size_t errlen) {
  t->path = url;
  t->absolute = 0;
  t->authlen = 0;
  t->auth[0] = '\0';
  size_t n = 0; /* RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
  if (!hc_alnum((unsigned char)url[0]) || (url[0] >= '0' && url[0] <= '9')) return NULL;
  while (hc_alnum((unsigned char)url[n]) || url[n] == '+' || url[n] == '-' || url[n] == '.') n++;
  if (url[n] != ':') return NULL;
  if (!((n == 4 && strncasecmp(url, "http", 4) == 0) || (n == 5 && strncasecmp(url, "https", 5) == 0))) {
    snprintf(err, errlen, "the request target's scheme '%.*s' is not http or https", n > 32 ? 32 : (int)n, url);
    return err;
  }
  const char *a = url + n + 1;
  if (a[0] != '/' || a[1] != '/') return "the request target names no host (the absolute form is http://host/path)";
  a += 2;
  size_t len = strcspn(a, "/");
  if (len == 0) return "the request target's host is empty (the absolute form is http://host/path)";
  if (memchr(a, '@', len) != NULL)
    return "the request target names a user (http://user@host/), which an http target may not";
  const char *aerr = hc_authority(a, len, t, HC_AUTH_TARGET, err, errlen);
  if (aerr) return aerr;
  t->absolute = 1;
  t->path = a[len] == '/' ? a + len : "/";
  return NULL;
}

const char *hc_trim_ows(const char *v, size_t *len) {
  while (*v == ' ' || *v == '\t') v++;
  size_t n = strlen(v);
  while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
  *len = n;
  return v;
}

/* RFC 9110 7.2 and RFC 9112 3.2: a Host's value is uri-host [ ":" port ], read as an
 * absolute target's authority is (hc_authority, with a reg-name's %XX and a trailing dot),
 * and a server must refuse one that is not with a 400: a Host that is no host ("a b",
 * "x:abc", "a@b") may be routed one way here and another wherever the request goes next.
 * An empty one too on HTTP/1.1 (an http URI names a host, RFC 9110 4.2.1); HTTP/1.0 needs
 * no Host, and an empty one there is read as none (httpd.c hands it on as none). */
const char *hc_host_error(const char *v, int http10, char *err, size_t errlen) {
  size_t len;
  v = hc_trim_ows(v, &len);
  if (len == 0 && http10) return NULL;
  hc_target scratch;
  return hc_authority(v, len, &scratch, HC_AUTH_HOST, err, errlen);
}

/* RFC 3986 2 and 3: a URI's characters are ASCII graphics. A CR in the target, kept by
 * libmicrohttpd 0.9.75, is where a front end may have ended the request line; a byte above
 * 0x7f, read by one reader as UTF-8 and by another as Latin-1 or as text to
 * percent-encode, names a different path to each. */
int hc_non_uri_bytes(const char *s) {
  int bad = 0;
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f) bad |= HC_CTL;
    else if (c > 0x7f) bad |= HC_HIGH;
  }
  return bad;
}

int hc_part_ends_at(uintptr_t at, size_t len, uintptr_t next) { return next > at && next - at == len + 1; }
