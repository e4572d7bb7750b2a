/* test_httpproxy.c: the pump's pure cookie rule (the pump itself is exercised through its
 * binding: tests/spec/core/httpproxy_spec.lua). */
#include <string.h>

#include "check.h"
#include "httpproxy.h"
#include "tests.h"

TEST(test_httpproxy_cookie) {
  const char *refused[] = {"orket_app", "orket_session"};
  char out[128];
  CHECK(t, httpproxy_cookie("a=1; Path=/", refused, 2, out, sizeof out) == 1);
  CHECK_STR(t, out, "a=1; Path=/");
  /* host-only: every Domain attribute goes, whatever its case or spacing */
  CHECK(t, httpproxy_cookie("a=1; Domain=example.com; Path=/", refused, 2, out, sizeof out) == 1);
  CHECK_STR(t, out, "a=1; Path=/");
  CHECK(t, httpproxy_cookie("b=2;domain=x;Secure;  DOMAIN=y", refused, 2, out, sizeof out) == 1);
  CHECK_STR(t, out, "b=2;Secure");
  /* spaces or tabs around the attribute's name, as browsers trim them (RFC 6265 5.2) */
  CHECK(t, httpproxy_cookie("a=1; Domain =example.com; Path=/", refused, 2, out, sizeof out) == 1);
  CHECK_STR(t, out, "a=1; Path=/");
  CHECK(t, httpproxy_cookie("b=1; Domain\t=example.com", refused, 2, out, sizeof out) == 1);
  CHECK_STR(t, out, "b=1");
  CHECK(t, httpproxy_cookie("c=1;\tdOmAiN \t= example.com ;Secure; Domain", refused, 2, out, sizeof out) == 1);
  CHECK_STR(t, out, "c=1;Secure");
  CHECK(t, httpproxy_cookie("d=1; Domainx=y", refused, 2, out, sizeof out) == 1);
  CHECK_STR(t, out, "d=1; Domainx=y");
  /* an Expires date's comma is the value's: each line is one cookie */
  CHECK(t, httpproxy_cookie("c=3; Expires=Thu, 01 Jan 2037 00:00:00 GMT; HttpOnly", refused, 2, out, sizeof out) == 1);
  CHECK_STR(t, out, "c=3; Expires=Thu, 01 Jan 2037 00:00:00 GMT; HttpOnly");
  /* a name refused, or no name at all, never passes; a longer name is not the refused one */
  CHECK(t, httpproxy_cookie("orket_app=x", refused, 2, out, sizeof out) == 0);
  CHECK(t, httpproxy_cookie(" orket_session=x; Path=/", refused, 2, out, sizeof out) == 0);
  CHECK(t, httpproxy_cookie("orket_apps=x", refused, 2, out, sizeof out) == 1);
  CHECK(t, httpproxy_cookie("=x", refused, 2, out, sizeof out) == 0);
  CHECK(t, httpproxy_cookie("novalue", refused, 2, out, sizeof out) == 0);
  /* what does not fit is dropped, never cut */
  CHECK(t, httpproxy_cookie("long=0123456789", refused, 2, out, 8) == 0);
  /* a trailing ';' and the NUL need two bytes: never one past outlen */
  char small[8];
  memset(small, 'X', sizeof small);
  CHECK(t, httpproxy_cookie("a=1;", refused, 2, small, 4) == 0);
  CHECK(t, small[4] == 'X');
  CHECK(t, httpproxy_cookie("a=1;", refused, 2, small, 5) == 1);
  CHECK_STR(t, small, "a=1;");
}
