/* jsonout.h: the bytes of orket's printed JSON (docs/store.md "JSON output"): strings
 * escaped as lua-cjson escapes them but with "/" plain, C1 controls and invisible format
 * characters as \u escapes and bytes that are not UTF-8 as \ufffd; whole numbers exactly,
 * others as lua-cjson writes them (%.14g). A growing buffer; pure C, knows nothing of Lua. */
#ifndef ORKET_JSONOUT_H
#define ORKET_JSONOUT_H

#include <stddef.h>

typedef struct jsonout_buf {
  char *p;
  size_t len, cap;
  int oom; /* an allocation failed: the contents are short, the caller reports it */
} jsonout_buf;

/* Lower-case hex digits, as jsonout's \u escapes and OTLP's ids are written. */
extern const char jsonout_hex[17];

/* Appends n bytes as they are. */
void jsonout_raw(jsonout_buf *b, const char *s, size_t n);
/* Appends the string s (n bytes, any bytes) as a quoted JSON string. */
void jsonout_string(jsonout_buf *b, const char *s, size_t n);
/* Appends the number d: its digits when it is whole and within +-2^53 (not -0), else as
 * %.14g writes it. -> 0, or -1 (nothing written) for NaN and infinities. */
int jsonout_number(jsonout_buf *b, double d);
/* A number printf wrote with %g (NUL-terminated, in place), its point made '.': printf's is
 * the locale's, and a script may set one (os.setlocale in orket lua or the repl: 0,25).
 * %g writes no grouping, so the bytes that are neither digits, signs nor the exponent's are
 * the point's (one, or a multibyte one's): written as one '.'. Returns the new length. */
size_t jsonout_c_point(char *s);
/* Appends the integer x, every digit. */
void jsonout_integer(jsonout_buf *b, long long x);
/* The length of the longest prefix of s (n bytes) that jsonout_string writes as it is
 * (printable ASCII but '"' and '\\'). */
size_t jsonout_plain_len(const char *s, size_t n);
/* Frees the buffer's bytes; idempotent. */
void jsonout_free(jsonout_buf *b);

#endif
