/* httpcheck.h: the request intake's checks on text alone (RFC 9110, 9112 and 3986): an
 * absolute target split into path and authority, a Host header's value, the bytes no URI
 * holds, and whether a part of the request line ends where the next one starts. httpd.c
 * runs them on what libmicrohttpd hands it, before any handler; nothing here knows that
 * library, so tests/c/test_httpcheck.c reads each rule on its own. */
#ifndef ORKET_HTTPCHECK_H
#define ORKET_HTTPCHECK_H

#include <stddef.h>
#include <stdint.h>

/* A host's length at most (a DNS name's is 253, 254 with its trailing dot): longer names no
 * origin here (the apps' routing reads no Host longer either). */
#define HC_HOST_MAX 255

/* A request target as it is routed. The origin form ("/path") as it is. The absolute form
 * ("http://host:port/path", RFC 9112 3.2.2, which a server must accept), which
 * libmicrohttpd 0.9.75 hands on as sent (less its query), split in two: its path, what is
 * routed ("/" when it has none), and its authority, which takes the place of the Host
 * header's value (a server must ignore a Host that says otherwise): the authority, never a
 * Host beside it, decides whether the request is for the API or for an app's origin. */
typedef struct hc_target {
  const char *path;
  int absolute;
  char auth[HC_HOST_MAX + 7]; /* the absolute form's host[:port], lower-cased, port as a number */
  size_t authlen;
} hc_target;

/* Splits url (hc_target); NULL, or what is wrong with its absolute form (in err when it
 * names a part). A target that is neither form ("*", "path") is left as it is. */
const char *hc_target_split(const char *url, hc_target *t, char *err, size_t errlen);

/* What is wrong with a Host header's value v (as sent, OWS around it allowed), or NULL.
 * http10: the request is HTTP/1.0, where an empty Host is as good as none. */
const char *hc_host_error(const char *v, int http10, char *err, size_t errlen);

/* v less the spaces and tabs around it (RFC 9110 5.5): where it starts, its length in *len. */
const char *hc_trim_ows(const char *v, size_t *len);

/* The bytes of s that no URI holds, or'd: HC_CTL, a control byte (below 0x20, or 0x7f);
 * HC_HIGH, one above 0x7f. NULL holds none. */
enum { HC_CTL = 1, HC_HIGH = 2 };
int hc_non_uri_bytes(const char *s);

/* Whether a part of a request line, at `at` and len bytes long as a string, ends right
 * before the next part, at `next`, with the one byte between them that was its space
 * (RFC 9112 3: one SP). Not so: the part held a NUL (its string ended sooner), or more
 * than one space followed it. Addresses as numbers, never read. */
int hc_part_ends_at(uintptr_t at, size_t len, uintptr_t next);

#endif
