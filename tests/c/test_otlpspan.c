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
