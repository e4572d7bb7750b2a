/* test_frame.c: SSE and NDJSON framing: line ends split across chunks, comments, multi-line
 * data, [DONE], size caps, and the lenient end of stream. */
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "http.h"
#include "tests.h"

typedef struct got {
  char buf[4096];
  int n;
} got;

/* Records events as "<ev>|" so a test compares one string. */
static int tf_emit(void *ud, const char *data, size_t len) {
  got *g = ud;
  size_t at = strlen(g->buf);
  memcpy(g->buf + at, data, len);
  g->buf[at + len] = '|';
  g->buf[at + len + 1] = '\0';
  g->n++;
  return 0;
}

/* Feeds text one byte at a time: every split point is exercised. */
static frame_status tf_bytewise(frame *f, const char *text, got *g) {
  frame_status st = FRAME_OK;
  for (size_t i = 0; text[i] && st == FRAME_OK; i++) st = frame_feed(f, text + i, 1, tf_emit, g);
  return st;
}

TEST(test_frame_sse_basic) {
  frame f;
  got g = {{0}, 0};
  frame_init(&f, FRAME_SSE, 0);
  const char *s = ": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\ndata:x\ndata: y\n\nevent: e\nid: 3\ndata: z\r\r";
  CHECK(t, frame_feed(&f, s, strlen(s), tf_emit, &g) == FRAME_OK);
  CHECK_STR(t, g.buf, "{\"a\":1}|x\ny|z|");
  CHECK(t, g.n == 3);
  frame_free(&f);
}

/* Every split of one stream into two chunks gives the same events: lines wholly inside a
 * chunk are read in place, a line cut by the split is assembled, both in one feed. */
TEST(test_frame_sse_every_two_chunk_split) {
  const char *s = "data: one\r\n\r\n: c\ndata: two\ndata: 2\n\ndata:three\r\rdata: four\n\n";
  size_t n = strlen(s);
  for (size_t cut = 0; cut <= n; cut++) {
    frame f;
    got g = {{0}, 0};
    frame_init(&f, FRAME_SSE, 0);
    CHECK(t, frame_feed(&f, s, cut, tf_emit, &g) == FRAME_OK);
    CHECK(t, frame_feed(&f, s + cut, n - cut, tf_emit, &g) == FRAME_OK);
    CHECK_STR(t, g.buf, "one|two\n2|three|four|");
    frame_free(&f);
  }
}

TEST(test_frame_sse_split_crlf_and_done) {
  frame f;
  got g = {{0}, 0};
  frame_init(&f, FRAME_SSE, 0);
  CHECK(t, tf_bytewise(&f, "data: one\r\n\r\ndata: two\r\n\r\ndata: [DONE]\r\n\r\ndata: late\n\n", &g) == FRAME_DONE);
  CHECK_STR(t, g.buf, "one|two|");
  CHECK(t, frame_feed(&f, "data: x\n\n", 9, tf_emit, &g) == FRAME_DONE);
  frame_free(&f);
}

TEST(test_frame_sse_cr_at_chunk_end) {
  frame f;
  got g = {{0}, 0};
  frame_init(&f, FRAME_SSE, 0);
  /* "\r" ends one chunk and "\n" starts the next: one line end, not two */
  CHECK(t, frame_feed(&f, "data: a\r", 8, tf_emit, &g) == FRAME_OK);
  CHECK(t, frame_feed(&f, "\ndata: b\r\n\r\n", 12, tf_emit, &g) == FRAME_OK);
  CHECK_STR(t, g.buf, "a\nb|");
  frame_free(&f);
}

TEST(test_frame_sse_finish_lenient) {
  frame f;
  got g = {{0}, 0};
  frame_init(&f, FRAME_SSE, 0);
  CHECK(t, frame_feed(&f, "data: tail", 10, tf_emit, &g) == FRAME_OK);
  CHECK(t, g.n == 0);
  CHECK(t, frame_finish(&f, tf_emit, &g) == FRAME_OK);
  CHECK_STR(t, g.buf, "tail|");
  frame_free(&f);
}

TEST(test_frame_ndjson) {
  frame f;
  got g = {{0}, 0};
  frame_init(&f, FRAME_NDJSON, 0);
  CHECK(t, tf_bytewise(&f, "{\"a\":1}\n\n  \n{\"b\":2}\r\n{\"c\":3}", &g) == FRAME_OK);
  CHECK_STR(t, g.buf, "{\"a\":1}|{\"b\":2}|");
  CHECK(t, frame_finish(&f, tf_emit, &g) == FRAME_OK);
  CHECK_STR(t, g.buf, "{\"a\":1}|{\"b\":2}|{\"c\":3}|");
  frame_free(&f);
}

TEST(test_frame_caps) {
  frame f;
  got g = {{0}, 0};
  frame_init(&f, FRAME_NDJSON, 8);
  CHECK(t, frame_feed(&f, "12345678\n", 9, tf_emit, &g) == FRAME_OK);
  CHECK(t, frame_feed(&f, "123456789\n", 10, tf_emit, &g) == FRAME_TOO_BIG);
  frame_free(&f);
  frame_init(&f, FRAME_SSE, 8);
  CHECK(t, frame_feed(&f, "data: 1234\ndata: 5678\n\n", 23, tf_emit, &g) == FRAME_TOO_BIG);
  frame_free(&f);
}

TEST(test_frame_raw) {
  frame f;
  got g = {{0}, 0};
  frame_init(&f, FRAME_SSE, 0);
  frame_set_mode(&f, FRAME_RAW);
  CHECK(t, frame_feed(&f, "{\"error\":\n", 10, tf_emit, &g) == FRAME_OK);
  CHECK_STR(t, g.buf, "{\"error\":\n|");
  frame_free(&f);
}

/* Retry-After dates: the three forms HTTP/1.1 recipients must accept, and rubbish. */
TEST(test_http_parse_date) {
  CHECK(t, http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777LL);
  CHECK(t, http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777LL);
  CHECK(t, http_parse_date("Sun Nov  6 08:49:37 1994") == 784111777LL);
  CHECK(t, http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT trailing") == -1);
  CHECK(t, http_parse_date("120") == -1);
  CHECK(t, http_parse_date("") == -1);
}

/* A URL as messages show it: no user info, path, query or fragment (they may hold a key). */
TEST(test_http_origin) {
  char out[64];
  CHECK(t, http_origin(out, sizeof out, "https://u:pw@h.example:8443/k/ak-1?api_key=s#f") == 22);
  CHECK_STR(t, out, "https://h.example:8443");
  http_origin(out, sizeof out, "http://[::1]:9/mcp");
  CHECK_STR(t, out, "http://[::1]:9");
  http_origin(out, sizeof out, "http://h?q=1");
  CHECK_STR(t, out, "http://h");
  http_origin(out, 8, "https://long.example");
  CHECK_STR(t, out, "https:/");
  /* a password holding '@': the user info ends at the authority's last one */
  http_origin(out, sizeof out, "https://u:p@ssw0rd@host/x");
  CHECK_STR(t, out, "https://host");
  http_origin(out, sizeof out, "https://u:p/w@host/x");
  CHECK_STR(t, out, "https://u"); /* '/' ends the authority early: the password's start is no port */
  http_origin(out, sizeof out, "http://h.example:8080");
  CHECK_STR(t, out, "http://h.example:8080");
  /* a path's '@' is not user info */
  http_origin(out, sizeof out, "https://server.example/@owner/mcp");
  CHECK_STR(t, out, "https://server.example");
  /* a relative reference whose query holds "://" names no scheme: nothing of it */
  CHECK(t, !http_is_absolute("/mcp/ak-KEY?next=https://x/cb"));
  CHECK(t, http_origin(out, sizeof out, "/mcp/ak-KEY?next=https://x/cb") == 0);
  CHECK(t, http_is_absolute("HTTPS://h") && http_is_absolute("svn+ssh://h") && !http_is_absolute("1http://h"));
}
