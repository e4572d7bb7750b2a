/* inert.c: strict UTF-8 decoding and the invisible characters (see inert.h). */
#include "inert.h"

#include <string.h>

static int inert_cont(const unsigned char *s, size_t n, size_t i) {
  return i < n && s[i] >= 0x80 && s[i] <= 0xbf;
}

int inert_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  if (n == 0) return 0;
  unsigned b = s[0];
  if (b < 0xc2 || b > 0xf4) return 0;
  if (b < 0xe0) {
    if (!inert_cont(s, n, 1)) return 0;
    *cp = ((b & 0x1fu) << 6) | (s[1] & 0x3fu);
    return 2;
  }
  /* the second byte's range rules out overlongs (e0, f0), surrogates (ed), > U+10FFFF (f4) */
  unsigned lo = 0x80, hi = 0xbf;
  if (b == 0xe0) lo = 0xa0;
  else if (b == 0xed) hi = 0x9f;
  else if (b == 0xf0) lo = 0x90;
  else if (b == 0xf4) hi = 0x8f;
  if (n < 2 || s[1] < lo || s[1] > hi || !inert_cont(s, n, 2)) return 0;
  if (b < 0xf0) {
    *cp = ((b & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
    return 3;
  }
  if (!inert_cont(s, n, 3)) return 0;
  *cp = ((b & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
  return 4;
}

/* Eight bytes at a time while they are ASCII (nearly all of what is recorded), the strict
 * decoder for the rest: the check runs over every record's JSON text, a request's whole
 * messages among them, where Lua's utf8.len decoded it character by character. */
int inert_valid(const char *p, size_t n) {
  const unsigned char *s = (const unsigned char *)p;
  size_t i = 0;
  while (i < n) {
    if (n - i >= 8) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if ((w & UINT64_C(0x8080808080808080)) == 0) {
        i += 8;
        continue;
      }
    }
    if (s[i] < 0x80) {
      i++;
      continue;
    }
    uint32_t cp;
    int len = inert_decode(s + i, n - i, &cp);
    if (len == 0) return 0;
    i += (size_t)len;
  }
  return 1;
}

int inert_invisible(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) || cp == 0xad || cp == 0x61c || cp == 0x180e ||
         cp == 0x200b || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
         (cp >= 0xe0000 && cp <= 0xe007f);
}

/* A fourth continuation byte in a row starts a character too: one is never more than 4
 * bytes, so n characters are at most 4n bytes (what the byte caps behind character limits
 * rely on). */
size_t inert_chars(const char *p, size_t n) {
  size_t chars = 0;
  int run = 3; /* continuation bytes since a character began: a leading one begins one */
  for (size_t i = 0; i < n; i++) {
    if (((unsigned char)p[i] & 0xC0) != 0x80 || ++run > 3) {
      chars++;
      run = 0;
    }
  }
  return chars;
}
