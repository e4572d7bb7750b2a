/* test_jsonout.c: the printed JSON's string and number bytes (jsonout.c) and the strict
 * UTF-8 rules under them (inert.c), on the cases docs/store.md names. */
#include "check.h"
#include "inert.h"
#include "jsonout.h"
#include "tests.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* s (n bytes) as jsonout writes it, NUL-terminated in out (cap bytes) */
static const char *tj_str(const char *s, size_t n, char *out, size_t cap) {
  jsonout_buf b = {0};
  jsonout_string(&b, s, n);
  snprintf(out, cap, "%.*s", (int)b.len, b.p ? b.p : "");
  jsonout_free(&b);
  return out;
}

TEST(test_jsonout_strings) {
  char out[256];
  CHECK_STR(t, tj_str("src/a.c", 7, out, sizeof out), "\"src/a.c\"");
  CHECK_STR(t, tj_str("q\"b\\", 4, out, sizeof out), "\"q\\\"b\\\\\"");
  CHECK_STR(t, tj_str("\b\f\n\r\t\x1b\x7f", 7, out, sizeof out), "\"\\b\\f\\n\\r\\t\\u001b\\u007f\"");
  CHECK_STR(t, tj_str("a\0b", 3, out, sizeof out), "\"a\\u0000b\"");
  /* C1 (NEL), RLO, a tag character as a surrogate pair; ZWNJ and e-acute stay */
  CHECK_STR(t, tj_str("\xc2\x85\xe2\x80\xae\xf3\xa0\x80\x81", 9, out, sizeof out),
            "\"\\u0085\\u202e\\udb40\\udc01\"");
  CHECK_STR(t, tj_str("\xe2\x80\x8c\xc3\xa9", 5, out, sizeof out), "\"\xe2\x80\x8c\xc3\xa9\"");
  /* not UTF-8: a lone byte, an overlong, a surrogate, past U+10FFFF, a cut sequence */
  CHECK_STR(t, tj_str("\xff", 1, out, sizeof out), "\"\\ufffd\"");
  CHECK_STR(t, tj_str("\xc0\x80", 2, out, sizeof out), "\"\\ufffd\\ufffd\"");
  CHECK_STR(t, tj_str("\xed\xa0\x80", 3, out, sizeof out), "\"\\ufffd\\ufffd\\ufffd\"");
  CHECK_STR(t, tj_str("\xf4\x90\x80\x80", 4, out, sizeof out), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
  CHECK_STR(t, tj_str("a\xe2\x80", 3, out, sizeof out), "\"a\\ufffd\\ufffd\"");
  CHECK_STR(t, tj_str("", 0, out, sizeof out), "\"\"");
}

TEST(test_jsonout_numbers) {
  /* whole numbers a double holds exactly are every digit (an id of 10^14 stays itself);
   * past 2^53, -0 and fractions as %.14g writes them */
  const double in[] = {0.1, 1e15, 3, -0.0, 1.0 / 3, 9007199254740992.0, 0, -42, 99999999999999.0,
                       -99999999999999.0, 1e14, -1e14, 2.5, 123456789012345.0, -9007199254740992.0,
                       18014398509481984.0, 1e20, 123456789012345.5};
  const char *want[] = {"0.1", "1000000000000000", "3", "-0", "0.33333333333333", "9007199254740992", "0", "-42",
                        "99999999999999", "-99999999999999", "100000000000000", "-100000000000000", "2.5",
                        "123456789012345", "-9007199254740992", "1.8014398509482e+16", "1e+20",
                        "1.2345678901235e+14"};
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
    jsonout_buf b = {0};
    CHECK(t, jsonout_number(&b, in[i]) == 0);
    char out[64];
    snprintf(out, sizeof out, "%.*s", (int)b.len, b.p);
    CHECK_STR(t, out, want[i]);
    jsonout_free(&b);
  }
  const long long ints[] = {0, -1, 9007199254740993LL, LLONG_MAX, LLONG_MIN};
  const char *iwant[] = {"0", "-1", "9007199254740993", "9223372036854775807", "-9223372036854775808"};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    jsonout_buf b = {0};
    jsonout_integer(&b, ints[i]);
    char out[64];
    snprintf(out, sizeof out, "%.*s", (int)b.len, b.p);
    CHECK_STR(t, out, iwant[i]);
    jsonout_free(&b);
  }
  jsonout_buf b = {0};
  CHECK(t, jsonout_number(&b, NAN) == -1);
  CHECK(t, jsonout_number(&b, INFINITY) == -1);
  CHECK(t, b.len == 0);
  jsonout_free(&b);
  jsonout_free(&b); /* idempotent */
}

/* no bytes on a buffer that holds none: nothing to copy, and no copy to a NULL buffer
 * (undefined behaviour, which UBSan reports in the sanitizer build) */
TEST(test_jsonout_raw_empty) {
  jsonout_buf b = {0};
  jsonout_raw(&b, "", 0);
  jsonout_raw(&b, NULL, 0);
  CHECK(t, b.p == NULL && b.len == 0 && !b.oom);
  jsonout_raw(&b, "ab", 2);
  jsonout_raw(&b, NULL, 0);
  CHECK(t, b.len == 2 && memcmp(b.p, "ab", 2) == 0);
  jsonout_free(&b);
}

TEST(test_inert_decode) {
  uint32_t cp = 0;
  CHECK(t, inert_decode((const unsigned char *)"\xc2\x85", 2, &cp) == 2 && cp == 0x85);
  CHECK(t, inert_decode((const unsigned char *)"\xf4\x8f\xbf\xbf", 4, &cp) == 4 && cp == 0x10ffff);
  CHECK(t, inert_decode((const unsigned char *)"\xe0\xa0\x80", 3, &cp) == 3 && cp == 0x800);
  CHECK(t, inert_decode((const unsigned char *)"\xe0\x9f\xbf", 3, &cp) == 0); /* overlong */
  CHECK(t, inert_decode((const unsigned char *)"\xc2\x85", 1, &cp) == 0);     /* cut */
  CHECK(t, inert_decode((const unsigned char *)"a", 1, &cp) == 0);            /* ASCII */
  CHECK(t, inert_decode((const unsigned char *)"", 0, &cp) == 0);
  CHECK(t, inert_invisible(0x202e) && inert_invisible(0x9f) && inert_invisible(0xe007f));
  CHECK(t, !inert_invisible(0x200c) && !inert_invisible(0x200d) && !inert_invisible(0xe9));
}

/* inert_valid agrees with strict UTF-8 (Lua's utf8.len, which it replaced) on both
 * of its paths: the eight-byte ASCII run and the byte-by-byte rest. */
TEST(test_inert_valid) {
  static const struct {
    const char *s;
    size_t n;
    int valid;
  } cases[] = {
      {"", 0, 1},
      {"plain ascii, longer than eight bytes", 36, 1},
      {"nul\0inside", 10, 1},
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", 19, 1},
      {"\xc0\x80", 2, 0},                  /* overlong NUL */
      {"\xe0\x80\xaf", 3, 0},              /* overlong '/' */
      {"\xed\xa0\x80", 3, 0},              /* surrogate */
      {"\xf4\x90\x80\x80", 4, 0},          /* past U+10FFFF */
      {"\xf8\x88\x80\x80\x80", 5, 0},      /* five bytes */
      {"\x80", 1, 0},                      /* a lone continuation byte */
      {"abcdefg\xc3", 8, 0},               /* cut inside the last character */
      {"abcdefgh\xff", 9, 0},              /* after a full ASCII word */
      {"abc\xe2\x82\xac" "defghijk", 14, 1}, /* a character across the word boundary */
      {"abcdefghijklmnop\xe2\x82", 18, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (inert_valid(cases[i].s, cases[i].n) != cases[i].valid) {
      fprintf(stderr, "inert_valid case %zu\n", i);
      CHECK(t, 0);
    }
  }
}
