/* test_httpcheck.c: the request intake's checks on text alone (core/httpcheck.h): a Host's
 * value, an absolute target's authority, the bytes no URI holds, and where a part of the
 * request line ends. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "httpcheck.h"
#include "tests.h"

static int host_ok(const char *v, int http10) {
  char err[200];
  return hc_host_error(v, http10, err, sizeof err) == NULL;
}

/* Whether v is refused with a message that names the Host header. */
static int host_refused_named(const char *v) {
  char err[200];
  const char *e = hc_host_error(v, 0, err, sizeof err);
  return e != NULL && strstr(e, "the Host header's") != NULL;
}

TEST(test_httpcheck_host) {
  /* sound: names, addresses, ports, OWS around, one trailing dot, %XX in a reg-name */
  const char *good[] = {"localhost", "localhost:8080", "[::1]:8080", "EXAMPLE.COM", "my_service:8080", "127.0.0.1:",
                        "host:", " localhost:8765\t", "example.com.", "example.com.:8080",
                        "svc.ns.svc.cluster.local.:8765", "localhost.", "%2Frun%2Forket%2Fserve.sock",
                        "a%2fb.example:80", NULL};
  for (int i = 0; good[i]; i++) CHECK(t, host_ok(good[i], 0));
  /* refused, each naming the Host header */
  const char *bad[] = {"", "   ", "x y", "a@b", "x:abc", "x:99999", "[::1", ".", "..", "example.com..",
                       ".example.com", "a..b", "%", "%2", "%2G", "a%zz", "a%2:80", "[fe80::1%25eth0]", "[v1.x]",
                       "a:1:2", "x:123456", NULL};
  for (int i = 0; bad[i]; i++) {
    CHECK(t, !host_ok(bad[i], 0));
    CHECK(t, host_refused_named(bad[i]));
  }
  /* HTTP/1.0 needs no Host: an empty one is as none; a bad one is still refused */
  CHECK(t, host_ok("", 1));
  CHECK(t, host_ok(" \t", 1));
  CHECK(t, !host_ok("x y", 1));
  CHECK(t, !host_ok("", 0));
  /* 255 bytes of name, and a trailing dot past them, are too long */
  char name[300];
  memset(name, 'a', 255);
  name[255] = '\0';
  CHECK(t, host_ok(name, 0));
  name[255] = '.';
  name[256] = '\0';
  CHECK(t, !host_ok(name, 0));
}

TEST(test_httpcheck_target) {
  char err[200];
  hc_target tg;
  CHECK(t, hc_target_split("/a/b", &tg, err, sizeof err) == NULL);
  CHECK(t, !tg.absolute);
  CHECK_STR(t, tg.path, "/a/b");
  CHECK(t, hc_target_split("http://Example.COM:08080/x", &tg, err, sizeof err) == NULL);
  CHECK(t, tg.absolute);
  CHECK_STR(t, tg.path, "/x");
  CHECK_STR(t, tg.auth, "example.com:8080");
  CHECK(t, hc_target_split("https://[::1]:", &tg, err, sizeof err) == NULL);
  CHECK_STR(t, tg.path, "/");
  CHECK_STR(t, tg.auth, "[::1]");
  /* a target's authority keeps one spelling per host: no %-escape, no trailing dot */
  const char *bad[] = {"http://a%2fb/", "http://localhost./", "http://a..b/", "http://u@h/", "ftp://h/",
                       "http:/h", "http:///x", "http://h:1:2/", "http://[::1/", NULL};
  for (int i = 0; bad[i]; i++) CHECK(t, hc_target_split(bad[i], &tg, err, sizeof err) != NULL);
  CHECK(t, strstr(hc_target_split("http://localhost./", &tg, err, sizeof err), "request target's") != NULL);
}

TEST(test_httpcheck_bytes_and_parts) {
  CHECK(t, hc_non_uri_bytes("/a?b=c&d=%20") == 0);
  CHECK(t, hc_non_uri_bytes(NULL) == 0);
  CHECK(t, hc_non_uri_bytes("/a\rb") == HC_CTL);
  CHECK(t, hc_non_uri_bytes("/a\x7f") == HC_CTL);
  CHECK(t, hc_non_uri_bytes("/caf\xc3\xa9") == HC_HIGH);
  CHECK(t, hc_non_uri_bytes("/\t\xe9") == (HC_CTL | HC_HIGH));
  size_t n;
  const char *v = hc_trim_ows(" \tab c\t ", &n);
  CHECK(t, n == 4 && strncmp(v, "ab c", 4) == 0);
  /* a line parsed in place: "GET /a HTTP/1.1" with its spaces made NULs */
  char line[] = "GET\0/a\0HTTP/1.1";
  uintptr_t m = (uintptr_t)line, u = (uintptr_t)(line + 4), ver = (uintptr_t)(line + 7);
  CHECK(t, hc_part_ends_at(m, strlen(line), u));
  CHECK(t, hc_part_ends_at(u, strlen(line + 4), ver));
  /* "GET\0X /a": the method's string ends two bytes before its space */
  char nul[] = "GET\0X\0/a";
  CHECK(t, !hc_part_ends_at((uintptr_t)nul, strlen(nul), (uintptr_t)(nul + 6)));
  /* two spaces before the target */
  CHECK(t, !hc_part_ends_at(m, 3, m + 5));
  CHECK(t, !hc_part_ends_at(m, 3, m)); /* the next part before this one */
}
