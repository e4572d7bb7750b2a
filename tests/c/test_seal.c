/* test_seal.c: sealed backup files (seal.c) round-trip and refuse a flipped byte, a cut at
 * a chunk's end, a wrong key and a changed header; the audit chain's hash (auditchain.c)
 * matches a value computed independently (Python's hashlib.blake2b over the documented
 * encoding) and its signatures verify only for their own hash; passwords (password.c) hash
 * to Argon2id strings that verify only the same password. */
#include "auditchain.h"
#include "check.h"
#include "password.h"
#include "seal.h"
#include "tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

static int ts_write(const char *path, const unsigned char *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(data, 1, n, f);
  return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static size_t ts_read(const char *path, unsigned char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

TEST(test_seal_round_trip_and_refusals) {
  CHECK(t, sodium_init() >= 0);
  char dir[] = "/tmp/orket-seal-XXXXXX", plain[64], sealed[64], out[64], bad[64], err[256];
  CHECK(t, mkdtemp(dir) != NULL);
  snprintf(plain, sizeof plain, "%s/plain", dir);
  snprintf(sealed, sizeof sealed, "%s/sealed", dir);
  snprintf(out, sizeof out, "%s/out", dir);
  snprintf(bad, sizeof bad, "%s/bad", dir);
  /* two full chunks and a bit: the cut at a chunk's end is a case */
  size_t n = 2 * SEAL_CHUNK + 100, cap = n + 4096;
  unsigned char *data = malloc(n), *back = malloc(cap), *raw = malloc(cap);
  CHECK(t, data && back && raw);
  if (!data || !back || !raw) goto done;
  for (size_t i = 0; i < n; i++) data[i] = (unsigned char)(i * 7 + 3);
  CHECK(t, ts_write(plain, data, n) == 0);
  unsigned char key[SEAL_KEYBYTES], other[SEAL_KEYBYTES];
  memset(key, 1, sizeof key);
  memset(other, 2, sizeof other);
  seal_params p;
  memset(&p, 0, sizeof p);
  CHECK(t, seal_file(plain, sealed, key, &p, err, sizeof err) == SEAL_OK);
  CHECK(t, seal_open_file(sealed, out, key, err, sizeof err) == SEAL_OK);
  CHECK(t, ts_read(out, back, cap) == n && memcmp(back, data, n) == 0);
  /* out is made new only (O_EXCL), and a failed opening removes the out it made */
  CHECK(t, seal_open_file(sealed, out, key, err, sizeof err) == SEAL_EIO && strstr(err, "File exists") != NULL);
  unlink(out);
  CHECK(t, seal_open_file(sealed, out, other, err, sizeof err) == SEAL_EKEY);
  CHECK(t, access(out, F_OK) != 0);
  size_t sn = ts_read(sealed, raw, cap);
  CHECK(t, sn > n);
  /* a flipped byte in the second chunk's ciphertext */
  raw[sn - 200] ^= 1;
  CHECK(t, ts_write(bad, raw, sn) == 0);
  CHECK(t, seal_open_file(bad, out, key, err, sizeof err) == SEAL_ETAMPERED);
  raw[sn - 200] ^= 1;
  /* the kdf byte of the clear header (authenticated as the first chunk's data) */
  raw[9] ^= 1;
  CHECK(t, ts_write(bad, raw, sn) == 0);
  CHECK(t, seal_open_file(bad, out, key, err, sizeof err) != SEAL_OK);
  raw[9] ^= 1;
  /* cut after the first whole chunk: no final tag */
  size_t first = 8 + 2 + 24 + 4 + SEAL_CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES;
  CHECK(t, ts_write(bad, raw, first) == 0);
  CHECK(t, seal_open_file(bad, out, key, err, sizeof err) == SEAL_ETRUNCATED);
  CHECK(t, strstr(err, "before its final tag") != NULL);
  /* a plain file is not sealed */
  CHECK(t, seal_read_params(plain, &p, err, sizeof err) == SEAL_NOT_SEALED);
  /* a passphrase's header round-trips its salt and limits */
  seal_params pp, got;
  seal_params_passphrase(&pp);
  CHECK(t, seal_derive_key(key, "pw", 2, &pp) == SEAL_OK);
  unlink(sealed);
  CHECK(t, seal_file(plain, sealed, key, &pp, err, sizeof err) == SEAL_OK);
  CHECK(t, seal_read_params(sealed, &got, err, sizeof err) == SEAL_OK);
  CHECK(t, got.kdf == SEAL_KDF_ARGON2ID && memcmp(got.salt, pp.salt, sizeof pp.salt) == 0 &&
               got.opslimit == pp.opslimit && got.memlimit == pp.memlimit);
  got.memlimit = 1ULL << 40; /* a hostile header's limit is refused, not allocated */
  CHECK(t, seal_derive_key(other, "pw", 2, &got) == SEAL_EPARAMS);
  CHECK(t, seal_open_file(sealed, out, key, err, sizeof err) == SEAL_OK);
done:
  unlink(plain);
  unlink(sealed);
  unlink(out);
  unlink(bad);
  rmdir(dir);
  free(data);
  free(back);
  free(raw);
}

/* every byte of a small sealed file flipped in turn: not one change opens */
TEST(test_seal_every_byte) {
  CHECK(t, sodium_init() >= 0);
  char dir[] = "/tmp/orket-seal-XXXXXX", plain[64], sealed[64], out[64], bad[64], err[256];
  CHECK(t, mkdtemp(dir) != NULL);
  snprintf(plain, sizeof plain, "%s/plain", dir);
  snprintf(sealed, sizeof sealed, "%s/sealed", dir);
  snprintf(out, sizeof out, "%s/out", dir);
  snprintf(bad, sizeof bad, "%s/bad", dir);
  CHECK(t, ts_write(plain, (const unsigned char *)"a small board", 13) == 0);
  unsigned char key[SEAL_KEYBYTES];
  memset(key, 3, sizeof key);
  seal_params p;
  memset(&p, 0, sizeof p);
  CHECK(t, seal_file(plain, sealed, key, &p, err, sizeof err) == SEAL_OK);
  unsigned char raw[512];
  size_t n = ts_read(sealed, raw, sizeof raw);
  CHECK(t, n > 13 && n < sizeof raw);
  int opened = 0;
  for (size_t i = 0; i < n; i++) {
    raw[i] ^= 0x01;
    CHECK(t, ts_write(bad, raw, n) == 0);
    if (seal_open_file(bad, out, key, err, sizeof err) == SEAL_OK) opened++;
    raw[i] ^= 0x01;
  }
  CHECK(t, opened == 0);
  CHECK(t, seal_open_file(sealed, out, key, err, sizeof err) == SEAL_OK);
  unlink(plain);
  unlink(sealed);
  unlink(out);
  unlink(bad);
  rmdir(dir);
}

TEST(test_auditchain_hash_and_signature) {
  CHECK(t, sodium_init() >= 0);
  unsigned char prev[AUDITCHAIN_HASHBYTES] = {0}, h[AUDITCHAIN_HASHBYTES], h2[AUDITCHAIN_HASHBYTES];
  auditchain_field f[3] = {{"1", 1}, {NULL, 0}, {"", 0}};
  auditchain_hash(prev, f, 3, h);
  char hex[2 * AUDITCHAIN_HASHBYTES + 1];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  CHECK_STR(t, hex, "47c63ad9bf86b45764c8261621160925081bebca7b7d9070969ae59929411259");
  /* an absent field and an empty one differ; so do fields split differently */
  auditchain_field g[3] = {{"1", 1}, {"", 0}, {"", 0}};
  auditchain_hash(prev, g, 3, h2);
  CHECK(t, memcmp(h, h2, sizeof h) != 0);
  auditchain_field ab[2] = {{"ab", 2}, {"c", 1}}, a_bc[2] = {{"a", 1}, {"bc", 2}};
  auditchain_hash(prev, ab, 2, h);
  auditchain_hash(prev, a_bc, 2, h2);
  CHECK(t, memcmp(h, h2, sizeof h) != 0);
  unsigned char seed[AUDITCHAIN_SEEDBYTES], pk[AUDITCHAIN_PKBYTES], sig[AUDITCHAIN_SIGBYTES];
  memset(seed, 9, sizeof seed);
  auditchain_public_key(pk, seed);
  auditchain_sign(sig, h, seed);
  CHECK(t, auditchain_verify(sig, h, pk) == 1);
  CHECK(t, auditchain_verify(sig, h2, pk) == 0);
  sig[0] ^= 1;
  CHECK(t, auditchain_verify(sig, h, pk) == 0);
}

TEST(test_password_hash_and_verify) {
  CHECK(t, sodium_init() >= 0);
  char h[PASSWORD_HASHMAX];
  CHECK(t, password_hash(h, "correct horse", 13) == 0);
  CHECK(t, strncmp(h, "$argon2id$", 10) == 0);
  CHECK(t, password_verify(h, strlen(h), "correct horse", 13) == 1);
  CHECK(t, password_verify(h, strlen(h), "correct horsf", 13) == 0);
  /* a changed row is data: another scheme, an empty or overlong string, a NUL inside */
  CHECK(t, password_verify("$2y$10$abc", 10, "x", 1) == 0);
  CHECK(t, password_verify("", 0, "x", 1) == 0);
  char big[PASSWORD_HASHMAX + 8];
  memset(big, 'a', sizeof big);
  CHECK(t, password_verify(big, sizeof big, "x", 1) == 0);
  char nul[] = "$argon2id$\0rest";
  CHECK(t, password_verify(nul, sizeof nul - 1, "x", 1) == 0);
}

/* a secret sealed in memory: the same format as a file, opened only by its key, whole */
TEST(test_seal_buffer_round_trip_and_refusals) {
  CHECK(t, sodium_init() >= 0);
  unsigned char key[SEAL_KEYBYTES], other[SEAL_KEYBYTES], *sealed = NULL, *back = NULL;
  memset(key, 3, sizeof key);
  memset(other, 4, sizeof other);
  const unsigned char text[] = "ghp_notreallyatoken";
  size_t sn = 0, bn = 0;
  char err[256];
  CHECK(t, seal_buffer(text, sizeof text - 1, &sealed, &sn, key, err, sizeof err) == SEAL_OK);
  CHECK(t, sealed && sn > sizeof text && memcmp(sealed, "ORKTSEAL", 8) == 0);
  if (!sealed) return;
  CHECK(t, seal_open_buffer(sealed, sn, &back, &bn, key, err, sizeof err) == SEAL_OK);
  CHECK(t, back && bn == sizeof text - 1 && memcmp(back, text, bn) == 0);
  free(back);
  CHECK(t, seal_open_buffer(sealed, sn, &back, &bn, other, err, sizeof err) == SEAL_EKEY && back == NULL);
  sealed[sn - 1] ^= 1;
  CHECK(t, seal_open_buffer(sealed, sn, &back, &bn, key, err, sizeof err) == SEAL_EKEY && back == NULL);
  sealed[sn - 1] ^= 1;
  CHECK(t, seal_open_buffer(sealed, sn - 1, &back, &bn, key, err, sizeof err) == SEAL_ETRUNCATED && back == NULL);
  CHECK(t, seal_buffer(text, 0, &back, &bn, key, err, sizeof err) == SEAL_EPARAMS && back == NULL);
  free(sealed);
}
