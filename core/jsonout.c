/* jsonout.c: the bytes of orket's printed JSON (see jsonout.h). Uses inert.c's rules for
 * which characters a terminal must not get as they are. */
#include "jsonout.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inert.h"

static int jsonout_grow(jsonout_buf *b, size_t more) {
  if (b->oom) return -1;
  if (b->cap - b->len >= more) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < more) {
    if (cap > SIZE_MAX / 2) {
      b->oom = 1;
      return -1;
    }
    cap *= 2;
  }
  char *p = realloc(b->p, cap);
  if (p == NULL) {
    b->oom = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void jsonout_raw(jsonout_buf *b, const char *s, size_t n) {
  if (n == 0) return; /* an empty buffer has no bytes yet: memcpy to NULL is undefined */
  if (jsonout_grow(b, n) != 0) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

const char jsonout_hex[17] = "0123456789abcdef";

/* \uXXXX in lower-case hex, as lua-cjson writes its escapes; u < 0x10000 */
static void jsonout_u(jsonout_buf *b, uint32_t u) {
  const char *hex = jsonout_hex;
  char e[6] = {'\\', 'u', hex[(u >> 12) & 15], hex[(u >> 8) & 15], hex[(u >> 4) & 15], hex[u & 15]};
  jsonout_raw(b, e, 6);
}

/* Bytes written as they are: printable ASCII but '"' and '\\'. A run of them is copied
 * at once (most strings are all such bytes). */
static int jsonout_plain(unsigned char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; }

size_t jsonout_plain_len(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && jsonout_plain((unsigned char)s[i])) i++;
  return i;
}

void jsonout_string(jsonout_buf *b, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  jsonout_raw(b, "\"", 1);
  size_t i = 0;
  while (i < n) {
    size_t j = i + jsonout_plain_len(str + i, n - i);
    if (j > i) jsonout_raw(b, str + i, j - i);
    if (j >= n) break;
    unsigned char c = s[j];
    i = j + 1;
    if (c >= 0x80) {
      uint32_t cp;
      int len = inert_decode(s + j, n - j, &cp);
      if (len == 0) {
        jsonout_raw(b, "\\ufffd", 6); /* not UTF-8: JSON text cannot hold the byte */
      } else if (inert_invisible(cp)) {
        if (cp >= 0x10000) {
          jsonout_u(b, 0xd800 + ((cp - 0x10000) >> 10));
          jsonout_u(b, 0xdc00 + ((cp - 0x10000) & 0x3ff));
        } else {
          jsonout_u(b, cp);
        }
        i = j + (size_t)len;
      } else {
        jsonout_raw(b, str + j, (size_t)len);
        i = j + (size_t)len;
      }
      continue;
    }
    switch (c) { /* lua-cjson's escapes, so both encoders agree on every ASCII string */
    case '"': jsonout_raw(b, "\\\"", 2); break;
    case '\\': jsonout_raw(b, "\\\\", 2); break;
    case '\b': jsonout_raw(b, "\\b", 2); break;
    case '\f': jsonout_raw(b, "\\f", 2); break;
    case '\n': jsonout_raw(b, "\\n", 2); break;
    case '\r': jsonout_raw(b, "\\r", 2); break;
    case '\t': jsonout_raw(b, "\\t", 2); break;
    default: jsonout_u(b, c); break; /* other C0 controls and DEL */
    }
  }
  jsonout_raw(b, "\"", 1);
}

void jsonout_integer(jsonout_buf *b, long long x) {
  char num[24], *p = num + sizeof num;
  unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
  do *--p = (char)('0' + u % 10); while ((u /= 10) != 0);
  if (x < 0) *--p = '-';
  jsonout_raw(b, p, (size_t)(num + sizeof num - p));
}

int jsonout_number(jsonout_buf *b, double d) {
  if (!isfinite(d)) return -1;
  /* A whole number a double holds exactly (up to 2^53) is its digits, all of them: %.14g
   * would round 123456789012345, a JSON-RPC id a client waits for, to 1.2345678901234e+14.
   * -0 and the rest go through %.14g, as lua-cjson writes them. */
  if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(long long)d &&
      !(d == 0 && signbit(d))) {
    jsonout_integer(b, (long long)d);
    return 0;
  }
  char e[32];
  snprintf(e, sizeof e, "%.14g", d);
  jsonout_raw(b, e, jsonout_c_point(e)); /* 0,25 is no JSON */
  return 0;
}

size_t jsonout_c_point(char *s) {
  size_t n = 0;
  for (size_t i = 0; s[i]; i++) {
    char c = s[i];
    if (isdigit((unsigned char)c) || c == '-' || c == '+' || c == 'e') s[n++] = c;
    else if (n == 0 || s[n - 1] != '.') s[n++] = '.';
  }
  s[n] = '\0';
  return n;
}

void jsonout_free(jsonout_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}
