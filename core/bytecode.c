/* bytecode.c: reading the precompiled library's bundle (see bytecode.h). */
#include "bytecode.h"

#include <stdint.h>
#include <string.h>

#include <sodium.h>

static size_t rd_u32(const unsigned char *p) {
  return (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
}

/* a span [off, off+n) inside the bundle */
static int in_bounds(size_t off, size_t n, size_t len) { return off <= len && n <= len - off; }

void bytecode_put_u32(unsigned char *at, uint32_t v) {
  for (int i = 0; i < 4; i++) at[i] = (unsigned char)(v >> (8 * i));
}

static int read_entry(const unsigned char *bundle, size_t len, size_t i, bytecode_entry *e) {
  const unsigned char *p = bundle + BYTECODE_TABLE + i * BYTECODE_ENTRY_SIZE;
  size_t name_off = rd_u32(p + BC_NAME_OFF), path_off = rd_u32(p + BC_PATH_OFF), code_off = rd_u32(p + BC_CODE_OFF);
  e->name_len = rd_u32(p + BC_NAME_LEN);
  e->path_len = rd_u32(p + BC_PATH_LEN);
  e->source_len = rd_u32(p + BC_SOURCE_LEN);
  e->hash = p + BC_HASH;
  e->code_len = rd_u32(p + BC_CODE_LEN);
  e->chunkname_at = rd_u32(p + BC_CHUNKNAME_AT);
  e->chunkname_end = rd_u32(p + BC_CHUNKNAME_END);
  if (!in_bounds(name_off, e->name_len, len) || !in_bounds(path_off, e->path_len, len) ||
      !in_bounds(code_off, e->code_len, len) || e->chunkname_at > e->chunkname_end ||
      e->chunkname_end > e->code_len)
    return -1;
  e->name = (const char *)bundle + name_off;
  e->path = (const char *)bundle + path_off;
  e->code = bundle + code_off;
  return 0;
}

int bytecode_find(const unsigned char *bundle, size_t len, const char *name, bytecode_entry *out) {
  if (bundle == NULL || len < BYTECODE_TABLE || memcmp(bundle, BYTECODE_MAGIC, 8) != 0) return -1;
  size_t count = rd_u32(bundle + BYTECODE_COUNT);
  if (count > (len - BYTECODE_TABLE) / BYTECODE_ENTRY_SIZE) return -1;
  size_t want = strlen(name), lo = 0, hi = count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    bytecode_entry e;
    if (read_entry(bundle, len, mid, &e) != 0) return -1;
    size_t n = e.name_len < want ? e.name_len : want;
    int c = memcmp(e.name, name, n);
    if (c == 0) c = e.name_len < want ? -1 : e.name_len > want ? 1 : 0;
    if (c == 0) {
      *out = e;
      return 1;
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return 0;
}

int bytecode_matches(const bytecode_entry *e, const unsigned char *source, size_t len) {
  if (len != e->source_len) return 0;
  unsigned char h[BYTECODE_HASH_SIZE];
  crypto_generichash(h, sizeof h, source, len, NULL, 0);
  return sodium_memcmp(h, e->hash, sizeof h) == 0;
}

size_t bytecode_encode_name(const char *name, size_t len, unsigned char *out, size_t outlen) {
  unsigned char groups[10];
  size_t x = len + 1, n = 0;
  do {
    groups[n++] = (unsigned char)(x & 0x7f);
    x >>= 7;
  } while (x != 0 && n < sizeof groups);
  if (x != 0 || n + len > outlen) return 0;
  for (size_t i = 0; i < n; i++) out[i] = groups[n - 1 - i]; /* most significant first */
  out[n - 1] |= 0x80;
  memcpy(out + n, name, len);
  return n + len;
}
