/* test_health.c: orket serve's /health in C (core/health.c) on a real server and loop,
 * from a client socket: the kept answer, CORS for an allowed origin only, an app's Host
 * and an address out of tokens declined (handed over), the log line's bytes, the counts,
 * and everything freed (the sanitizer build runs this too). */
#include "check.h"
#include "health.h"
#include "tests.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct hq {
  uv_loop_t *loop;
  health *hl;
  jsonout_buf line;
  int answered;
} hq;

static void hq_on_quick(httpd_quick *q, void *ud) {
  hq *x = ud;
  if (health_answer(x->hl, q, (double)uv_now(x->loop), &x->line)) x->answered++;
}

static int hq_connect(unsigned port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) return -1;
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

/* Sends req on fd and runs the loop until a whole answer (headers and Content-Length bytes)
 * is in out, or about wait_ms pass: its length, 0 when none came. */
static size_t hq_ask(uv_loop_t *loop, int fd, const char *req, char *out, size_t cap, int wait_ms) {
  if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) return 0;
  size_t n = 0;
  for (int i = 0; i < wait_ms; i++) {
    uv_run(loop, UV_RUN_NOWAIT);
    ssize_t k = read(fd, out + n, cap - 1 - n);
    if (k > 0) n += (size_t)k;
    out[n] = '\0';
    const char *end = strstr(out, "\r\n\r\n"), *cl = strstr(out, "Content-Length: ");
    if (end && cl && n >= (size_t)(end + 4 - out) + (size_t)atoi(cl + 16)) return n;
    if (k <= 0) usleep(1000);
  }
  return 0;
}

TEST(test_health_answers) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  char err[256];
  httpd_opts o = {.host = "127.0.0.1", .port = 0};
  httpd *h = httpd_new(&loop, &o, NULL, NULL, err, sizeof err);
  CHECK(t, h != NULL);
  if (h == NULL) return;
  ratelimit *rl = ratelimit_new(0.001, 3, 100);
  const char *headers[] = {"Content-Type: application/json; charset=utf-8", "Vary: Origin"};
  const char *cors[] = {"https://ok.example"};
  const double buckets[] = {0.005, 1};
  health_opts ho = {headers, 2, "{\"status\":\"ok\"}\n", 16, cors, 1, "Access-Control-Expose-Headers: Retry-After",
                    "apps.localhost", buckets, 2, rl};
  const char *herr;
  hq x = {&loop, health_new(&ho, &herr), {0}, 0};
  CHECK(t, x.hl != NULL);
  health_opts bad = ho;
  bad.by_addr = NULL;
  CHECK(t, health_new(&bad, &herr) == NULL && strcmp(herr, "no limiter") == 0);
  const char *paths[] = {"/health"};
  httpd_set_quick(h, paths, 1, hq_on_quick, &x);
  unsigned port = httpd_port(h);
  char got[4096];
  int fd = hq_connect(port);
  CHECK(t, fd >= 0);
  /* 1: the kept answer; its log line */
  CHECK(t, hq_ask(&loop, fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", got, sizeof got, 2000) > 0);
  CHECK(t, strncmp(got, "HTTP/1.1 200", 12) == 0);
  CHECK(t, strstr(got, "\r\nVary: Origin\r\n") != NULL);
  CHECK(t, strstr(got, "Access-Control-Allow-Origin") == NULL);
  CHECK(t, strstr(got, "\r\n\r\n{\"status\":\"ok\"}\n") != NULL);
  CHECK(t, x.answered == 1);
  const char *want = "{\"addr\":\"127.0.0.1\",\"key\":null,\"method\":\"GET\",\"route\":\"/health\",\"status\":200,\"t\":\"";
  CHECK(t, x.line.len > strlen(want) && strncmp(x.line.p, want, strlen(want)) == 0);
  CHECK(t, x.line.len > 0 && x.line.p[x.line.len - 1] == '}' && strstr(x.line.p, "Z\",\"us\":") != NULL);
  /* 2: an allowed origin, on the same connection (kept alive) */
  CHECK(t, hq_ask(&loop, fd, "GET /health HTTP/1.1\r\nHost: x\r\nOrigin: https://ok.example\r\n\r\n", got, sizeof got,
                  2000) > 0);
  CHECK(t, strstr(got, "\r\nAccess-Control-Allow-Origin: https://ok.example\r\n") != NULL);
  CHECK(t, strstr(got, "\r\nAccess-Control-Expose-Headers: Retry-After\r\n") != NULL);
  /* 3: an app's Host: declined before its token (handed over, unanswered here) */
  int app = hq_connect(port);
  CHECK(t, hq_ask(&loop, app, "GET /health HTTP/1.1\r\nHost: 5.Apps.Localhost:8\r\n\r\n", got, sizeof got, 100) == 0);
  CHECK(t, x.answered == 2);
  /* 4: the last token; 5: none left, declined */
  CHECK(t, hq_ask(&loop, fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", got, sizeof got, 2000) > 0);
  int late = hq_connect(port);
  CHECK(t, hq_ask(&loop, late, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", got, sizeof got, 100) == 0);
  const health_stats *st = health_stats_of(x.hl);
  CHECK(t, x.answered == 3 && st->count == 3);
  CHECK(t, st->counts[0] + st->counts[1] == 3); /* each under a second */
  CHECK(t, ratelimit_count(rl) == 1);
  close(fd);
  close(app);
  close(late);
  httpd_free(h); /* the kept answers outlive the server */
  health_free(x.hl);
  ratelimit_free(rl);
  jsonout_free(&x.line);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(t, uv_loop_close(&loop) == 0);
}
