/* test_bytecode.c: the precompiled library's bundle reader (core/bytecode.h): lookup by
 * name in a bundle built here by hand, refusal of malformed bundles (bad magic, a count
 * or an entry pointing past the end), the source check, and Lua 5.4's encoding of a chunk
 * name (the dump's size: length plus one, 7-bit groups, the last marked with 0x80). */
#include "bytecode.h"
#include "check.h"
#include "tests.h"

#include <string.h>

#include <sodium.h>

/* a bundle of two modules, "a" and "b.c", into buf; returns its length */
static size_t make_bundle(unsigned char *buf) {
  static const char *names[] = {"a", "b.c"}, *paths[] = {"lua/a.lua", "lua/b/c.lua"},
                    *srcs[] = {"return 1", "return 22"}, *codes[] = {"CODE-A", "CODE-BC"};
  memcpy(buf, BYTECODE_MAGIC, 8);
  bytecode_put_u32(buf + BYTECODE_COUNT, 2);
  size_t at = BYTECODE_TABLE + 2 * BYTECODE_ENTRY_SIZE;
  for (int i = 0; i < 2; i++) {
    unsigned char *e = buf + BYTECODE_TABLE + (size_t)i * BYTECODE_ENTRY_SIZE;
    bytecode_put_u32(e + BC_NAME_OFF, (uint32_t)at);
    bytecode_put_u32(e + BC_NAME_LEN, (uint32_t)strlen(names[i]));
    memcpy(buf + at, names[i], strlen(names[i]));
    at += strlen(names[i]);
    bytecode_put_u32(e + BC_PATH_OFF, (uint32_t)at);
    bytecode_put_u32(e + BC_PATH_LEN, (uint32_t)strlen(paths[i]));
    memcpy(buf + at, paths[i], strlen(paths[i]));
    at += strlen(paths[i]);
    bytecode_put_u32(e + BC_SOURCE_LEN, (uint32_t)strlen(srcs[i]));
    crypto_generichash(e + BC_HASH, BYTECODE_HASH_SIZE, (const unsigned char *)srcs[i], strlen(srcs[i]), NULL, 0);
    bytecode_put_u32(e + BC_CODE_OFF, (uint32_t)at);
    bytecode_put_u32(e + BC_CODE_LEN, (uint32_t)strlen(codes[i]));
    bytecode_put_u32(e + BC_CHUNKNAME_AT, 1);
    bytecode_put_u32(e + BC_CHUNKNAME_END, 3);
    memcpy(buf + at, codes[i], strlen(codes[i]));
    at += strlen(codes[i]);
  }
  return at;
}

TEST(test_bytecode_bundle) {
  CHECK(t, sodium_init() >= 0);
  unsigned char buf[512];
  size_t len = make_bundle(buf);
  bytecode_entry e;
  CHECK(t, bytecode_find(buf, len, "b.c", &e) == 1);
  CHECK(t, e.path_len == 11 && memcmp(e.path, "lua/b/c.lua", 11) == 0);
  CHECK(t, e.code_len == 7 && memcmp(e.code, "CODE-BC", 7) == 0);
  CHECK(t, e.chunkname_at == 1 && e.chunkname_end == 3);
  CHECK(t, bytecode_matches(&e, (const unsigned char *)"return 22", 9));
  CHECK(t, !bytecode_matches(&e, (const unsigned char *)"return 23", 9)); /* same size */
  CHECK(t, !bytecode_matches(&e, (const unsigned char *)"return 2", 8));
  CHECK(t, bytecode_find(buf, len, "a", &e) == 1 && e.code_len == 6);
  /* names that sort around and between the two, and prefixes of them */
  CHECK(t, bytecode_find(buf, len, "", &e) == 0);
  CHECK(t, bytecode_find(buf, len, "b", &e) == 0);
  CHECK(t, bytecode_find(buf, len, "b.cd", &e) == 0);
  CHECK(t, bytecode_find(buf, len, "ab", &e) == 0);
  CHECK(t, bytecode_find(buf, len, "z", &e) == 0);
  /* malformed: no bundle, bad magic, cut short, a count beyond the end, an entry's code
   * beyond the end, a chunk name's span beyond its code */
  CHECK(t, bytecode_find(NULL, 0, "a", &e) == -1);
  unsigned char bad[512];
  memcpy(bad, buf, len);
  bad[0] = 'X';
  CHECK(t, bytecode_find(bad, len, "a", &e) == -1);
  CHECK(t, bytecode_find(buf, 11, "a", &e) == -1);
  memcpy(bad, buf, len);
  bytecode_put_u32(bad + BYTECODE_COUNT, 1000000);
  CHECK(t, bytecode_find(bad, len, "a", &e) == -1);
  memcpy(bad, buf, len);
  bytecode_put_u32(bad + BYTECODE_TABLE + BC_CODE_LEN, 100000); /* a's code_len */
  CHECK(t, bytecode_find(bad, len, "a", &e) == -1);
  memcpy(bad, buf, len);
  bytecode_put_u32(bad + BYTECODE_TABLE + BC_CHUNKNAME_END, 7); /* a's chunk name ends past its 6 bytes */
  CHECK(t, bytecode_find(bad, len, "a", &e) == -1);
}

TEST(test_bytecode_encode_name) {
  unsigned char out[300];
  /* "@x": size 3, one group 0x03 marked 0x83 */
  CHECK(t, bytecode_encode_name("@x", 2, out, sizeof out) == 3);
  CHECK(t, out[0] == 0x83 && out[1] == '@' && out[2] == 'x');
  /* 200 bytes: size 201 = 0b1_1001001: groups 0x01, 0x49 (marked: 0xc9) */
  char name[200];
  memset(name, 'n', sizeof name);
  CHECK(t, bytecode_encode_name(name, sizeof name, out, sizeof out) == 202);
  CHECK(t, out[0] == 0x01 && out[1] == 0xc9 && out[2] == 'n' && out[201] == 'n');
  /* no room */
  CHECK(t, bytecode_encode_name(name, sizeof name, out, 201) == 0);
}
