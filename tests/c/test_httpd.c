/* test_httpd.c: the server's pure helpers (listen addresses, loopback) and its lifecycle on
 * a loop of its own: start on an ephemeral port, stop, and leave nothing behind. */
#include <string.h>

#include <uv.h>

#include "check.h"
#include "httpd.h"
#include "tests.h"

TEST(test_httpd_parse_listen) {
  char host[64], err[256];
  unsigned port = 1;
  CHECK(t, httpd_parse_listen("127.0.0.1:8765", host, sizeof host, &port, err, sizeof err) == 0);
  CHECK_STR(t, host, "127.0.0.1");
  CHECK(t, port == 8765);
  CHECK(t, httpd_parse_listen("[::1]:0", host, sizeof host, &port, err, sizeof err) == 0);
  CHECK_STR(t, host, "::1");
  CHECK(t, port == 0);
  CHECK(t, httpd_parse_listen("localhost:80", host, sizeof host, &port, err, sizeof err) == 0);
  CHECK_STR(t, host, "127.0.0.1");
  CHECK(t, httpd_parse_listen("127.0.0.1", host, sizeof host, &port, err, sizeof err) == -1);
  CHECK(t, strstr(err, "no port") != NULL);
  CHECK(t, httpd_parse_listen("127.0.0.1:65536", host, sizeof host, &port, err, sizeof err) == -1);
  CHECK(t, httpd_parse_listen("127.0.0.1:-1", host, sizeof host, &port, err, sizeof err) == -1);
  CHECK(t, httpd_parse_listen("127.0.0.1:80x", host, sizeof host, &port, err, sizeof err) == -1);
  CHECK(t, httpd_parse_listen("example.com:80", host, sizeof host, &port, err, sizeof err) == -1);
  CHECK(t, strstr(err, "numeric") != NULL);
  CHECK(t, httpd_parse_listen("::1:80", host, sizeof host, &port, err, sizeof err) == -1);
  CHECK(t, strstr(err, "brackets") != NULL);
  CHECK(t, httpd_parse_listen("[::1:80", host, sizeof host, &port, err, sizeof err) == -1);
  CHECK(t, httpd_parse_listen(":80", host, sizeof host, &port, err, sizeof err) == -1);
}

TEST(test_httpd_is_loopback) {
  CHECK(t, httpd_is_loopback("127.0.0.1"));
  CHECK(t, httpd_is_loopback("127.1.2.3"));
  CHECK(t, httpd_is_loopback("::1"));
  CHECK(t, httpd_is_loopback("::ffff:127.0.0.1"));
  CHECK(t, !httpd_is_loopback("0.0.0.0"));
  CHECK(t, !httpd_is_loopback("::"));
  CHECK(t, !httpd_is_loopback("10.0.0.1"));
  CHECK(t, !httpd_is_loopback("128.0.0.1"));
  CHECK(t, !httpd_is_loopback("::ffff:10.0.0.1"));
  CHECK(t, !httpd_is_loopback("localhost")); /* numeric only: names are resolved before */
}

TEST(test_httpd_lifecycle) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  char err[256];
  httpd_opts o = {.host = "127.0.0.1", .port = 0};
  httpd *h = httpd_new(&loop, &o, NULL, NULL, err, sizeof err);
  CHECK(t, h != NULL);
  if (h) {
    CHECK(t, httpd_port(h) > 0);
    CHECK(t, httpd_live(h) == 0);
    CHECK(t, httpd_next(h) == NULL);
    httpd_stop_accepting(h);
    httpd_free(h);
  }
  httpd_opts bad = {.host = "not-an-address", .port = 0};
  CHECK(t, httpd_new(&loop, &bad, NULL, NULL, err, sizeof err) == NULL);
  CHECK(t, strstr(err, "numeric") != NULL);
  uv_run(&loop, UV_RUN_DEFAULT); /* the handles' close callbacks free the server */
  CHECK(t, uv_loop_close(&loop) == 0);
}
