/* test_otlpspan.c: a span's bytes in OTLP's JSON mapping (otlpspan.c): keys sorted, ids as
 * hex, times and integers as decimal text, text escaped by jsonout.c. */
#include "check.h"
#include "otlpspan.h"
#include "tests.h"

#include <math.h>
#include <string.h>

TEST(test_otlpspan_bytes) {
  jsonout_buf b = {0};
  otlp_span_begin(&b);
  otlp_value s = {OTLP_STRING, "a\"b\n", 4, 0, 0};
  otlp_value i = {OTLP_INT, NULL, 0, -42, 0};
  otlp_value d = {OTLP_DOUBLE, NULL, 0, 0, 1.5};
  otlp_value n = {OTLP_DOUBLE, NULL, 0, 0, NAN};
  otlp_value tb = {OTLP_BOOL, NULL, 0, 1, 0};
  otlp_attribute(&b, 1, "k", 1, &s);
  otlp_attribute(&b, 0, "i", 1, &i);
  otlp_attribute(&b, 0, "d", 1, &d);
  otlp_attribute(&b, 0, "n", 1, &n);
  otlp_attribute(&b, 0, "t", 1, &tb);
  otlp_span sp = {"chat m", 6, 0x0102030405060708ULL, 0xffffffffffffffffULL, 0xabcULL, 0x10ULL, 1, 3, 5, 9, 1, "bad", 3};
  otlp_span_end(&b, &sp);
  const char *want = "{\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":\"a\\\"b\\n\"}},"
                     "{\"key\":\"i\",\"value\":{\"intValue\":\"-42\"}},{\"key\":\"d\",\"value\":{\"doubleValue\":1.5}},"
                     "{\"key\":\"n\",\"value\":{\"doubleValue\":\"NaN\"}},{\"key\":\"t\",\"value\":{\"boolValue\":true}}],"
                     "\"endTimeUnixNano\":\"9\",\"kind\":3,\"name\":\"chat m\",\"parentSpanId\":\"0000000000000010\","
                     "\"spanId\":\"0000000000000abc\",\"startTimeUnixNano\":\"5\",\"status\":{\"code\":2,\"message\":\"bad\"},"
                     "\"traceId\":\"0102030405060708ffffffffffffffff\"}";
  CHECK(t, b.len == strlen(want) && memcmp(b.p, want, b.len) == 0);
  /* a root span with no attributes, status OK */
  b.len = 0;
  otlp_span_begin(&b);
  otlp_span root = {"r", 1, 1, 2, 3, 0, 0, 1, 10, 20, 0, NULL, 0};
  otlp_span_end(&b, &root);
  const char *want2 = "{\"attributes\":[],\"endTimeUnixNano\":\"20\",\"kind\":1,\"name\":\"r\","
                      "\"spanId\":\"0000000000000003\",\"startTimeUnixNano\":\"10\","
                      "\"traceId\":\"00000000000000010000000000000002\"}";
  CHECK(t, b.len == strlen(want2) && memcmp(b.p, want2, b.len) == 0);
  jsonout_free(&b);
}

/* The text of a string attribute of value p[0..n) as written: its JSON string's content
 * (between the quotes), in *out_len bytes of b (freed by the caller). */
static const char *written_value(jsonout_buf *b, const char *p, size_t n, size_t *out_len) {
  static const char head[] = "{\"key\":\"k\",\"value\":{\"stringValue\":\"";
  static const char tail[] = "\"}}";
  b->len = 0;
  otlp_value v = {OTLP_STRING, p, n, 0, 0};
  otlp_attribute(b, 1, "k", 1, &v);
  if (b->len < sizeof head - 1 + sizeof tail - 1 || memcmp(b->p, head, sizeof head - 1) != 0 ||
      memcmp(b->p + b->len - (sizeof tail - 1), tail, sizeof tail - 1) != 0) {
    *out_len = (size_t)-1;
    return NULL;
  }
  *out_len = b->len - (sizeof head - 1) - (sizeof tail - 1);
  return b->p + sizeof head - 1;
}

/* n times the 6 bytes of \ufffd, and nothing else */
static int all_replacements(const char *w, size_t len, size_t n) {
  if (len != 6 * n) return 0;
  for (size_t i = 0; i < n; i++)
    if (memcmp(w + 6 * i, "\\ufffd", 6) != 0) return 0;
  return 1;
}

TEST(test_otlpspan_text_cut) {
  enum { LEN = 5000 };
  char text[LEN];
  jsonout_buf b = {0};
  size_t len;
  const char *w;
  /* a 4-byte character (U+1F600) at each offset near the cap: kept whole or left out */
  for (size_t at = OTLP_MAX_TEXT - 6; at <= OTLP_MAX_TEXT; at++) {
    memset(text, 'a', LEN);
    memcpy(text + at, "\xF0\x9F\x98\x80", 4);
    size_t want = at < OTLP_MAX_TEXT && at + 4 > OTLP_MAX_TEXT ? at : OTLP_MAX_TEXT;
    w = written_value(&b, text, LEN, &len);
    CHECK(t, w != NULL && len == want && memcmp(w, text, want) == 0);
  }
  /* exactly the cap: not cut, its last character whole */
  memset(text, 'a', LEN);
  memcpy(text + OTLP_MAX_TEXT - 4, "\xF0\x9F\x98\x80", 4);
  w = written_value(&b, text, OTLP_MAX_TEXT, &len);
  CHECK(t, w != NULL && len == OTLP_MAX_TEXT && memcmp(w, text, len) == 0);
  /* one byte over, plain: cut at the cap */
  memset(text, 'a', LEN);
  w = written_value(&b, text, OTLP_MAX_TEXT + 1, &len);
  CHECK(t, w != NULL && len == OTLP_MAX_TEXT);
  /* a stray lead byte just before the cap: the cut keeps it, written as U+FFFD */
  memset(text, 'a', LEN);
  text[OTLP_MAX_TEXT - 1] = (char)0xF0;
  w = written_value(&b, text, LEN, &len);
  CHECK(t, w != NULL && len == OTLP_MAX_TEXT - 1 + 6 && memcmp(w, text, OTLP_MAX_TEXT - 1) == 0 &&
               memcmp(w + OTLP_MAX_TEXT - 1, "\\ufffd", 6) == 0);
  /* nothing but continuation bytes: backs up 3 at most, never to an empty string */
  memset(text, 0x80, LEN);
  w = written_value(&b, text, LEN, &len);
  CHECK(t, w != NULL && all_replacements(w, len, OTLP_MAX_TEXT - 3));
  /* plain text then more than 3 continuation bytes across the cap: cut at the cap less 3 */
  memset(text, 'a', LEN);
  memset(text + OTLP_MAX_TEXT - 8, 0x80, 16);
  w = written_value(&b, text, LEN, &len);
  CHECK(t, w != NULL && len == OTLP_MAX_TEXT - 8 + 6 * 5 && memcmp(w, text, OTLP_MAX_TEXT - 8) == 0 &&
               all_replacements(w + OTLP_MAX_TEXT - 8, 6 * 5, 5));
  jsonout_free(&b);
}
