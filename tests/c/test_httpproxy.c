/* test_httpproxy.c: the pump's pure cookie rule (the pump itself is exercised through its
 * binding: tests/spec/core/httpproxy_spec.lua). */
#include <string.h>

#include "check.h"
#include "httpproxy.h"
#include "tests.h"

TEST(test_httpproxy_cookie) {
  const char *refused[] = {"orket_app", "orket_session"};
  char out[128];
  /* each passes, as the second text */
  static const char *const passes[][2] = {
      {"a=1; Path=/", "a=1; Path=/"},
      /* host-only: every Domain attribute goes, whatever its case or spacing */
      {"a=1; Domain=example.com; Path=/", "a=1; Path=/"},
      {"b=2;domain=x;Secure;  DOMAIN=y", "b=2;Secure"},
      /* spaces or tabs around the attribute's name, as browsers trim them (RFC 6265 5.2) */
      {"a=1; Domain =example.com; Path=/", "a=1; Path=/"},
      {"b=1; Domain\t=example.com", "b=1"},
      {"c=1;\tdOmAiN \t= example.com ;Secure; Domain", "c=1;Secure"},
      {"d=1; Domainx=y", "d=1; Domainx=y"},
      /* an Expires date's comma is the value's: each line is one cookie */
      {"c=3; Expires=Thu, 01 Jan 2037 00:00:00 GMT; HttpOnly", "c=3; Expires=Thu, 01 Jan 2037 00:00:00 GMT; HttpOnly"},
  };
  for (size_t i = 0; i < sizeof passes / sizeof passes[0]; i++) {
    CHECK(t, httpproxy_cookie(passes[i][0], refused, 2, out, sizeof out) == 1);
    CHECK_STR(t, out, passes[i][1]);
  }
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
