/* hmac.c: HMAC-SHA256 over libsodium's incremental API (any key length) and webhook
 * signature verification (see hmac.h). */
#include "hmac.h"

#include <string.h>

#include <sodium.h>

void hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char *out) {
  crypto_auth_hmacsha256_state st;
  /* _init takes keys of any length (longer than a block: hashed first, as RFC 2104 says);
   * crypto_auth_hmacsha256 itself wants exactly 32 bytes */
  crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, klen);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, mlen);
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof st);
}

void hmac_sha256_hex(const void *key, size_t klen, const void *msg, size_t mlen, char *out) {
  unsigned char mac[HMAC_SHA256_BYTES];
  hmac_sha256(key, klen, msg, mlen, mac);
  sodium_bin2hex(out, HMAC_SHA256_HEX + 1, mac, sizeof mac);
}

static int hmac_nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1; /* uppercase too: GitHub and Gitea both send lowercase */
}

hmac_sig_result hmac_verify_signature(const void *secret, size_t slen, const void *body, size_t blen,
                                      const char *sig, size_t siglen) {
  if (secret == NULL || slen == 0) return HMAC_SIG_NO_SECRET;
  if (sig == NULL) return HMAC_SIG_MALFORMED;
  static const char prefix[] = "sha256=";
  if (siglen >= sizeof prefix - 1 && memcmp(sig, prefix, sizeof prefix - 1) == 0) {
    sig += sizeof prefix - 1;
    siglen -= sizeof prefix - 1;
  }
  if (siglen != HMAC_SHA256_HEX) return HMAC_SIG_MALFORMED;
  unsigned char want[HMAC_SHA256_BYTES], have[HMAC_SHA256_BYTES];
  for (size_t i = 0; i < HMAC_SHA256_BYTES; i++) {
    int hi = hmac_nibble(sig[2 * i]), lo = hmac_nibble(sig[2 * i + 1]);
    if (hi < 0 || lo < 0) return HMAC_SIG_MALFORMED;
    have[i] = (unsigned char)(hi << 4 | lo);
  }
  hmac_sha256(secret, slen, body, blen, want);
  int same = sodium_memcmp(want, have, sizeof want) == 0;
  sodium_memzero(want, sizeof want);
  return same ? HMAC_SIG_OK : HMAC_SIG_MISMATCH;
}

const char *hmac_sig_code(hmac_sig_result r) {
  switch (r) {
  case HMAC_SIG_OK: return "OK";
  case HMAC_SIG_NO_SECRET: return "NO_SECRET";
  case HMAC_SIG_MALFORMED: return "BAD_SIGNATURE_FORMAT";
  default: return "BAD_SIGNATURE";
  }
}

const char *hmac_sig_message(hmac_sig_result r) {
  switch (r) {
  case HMAC_SIG_OK: return "webhook: signature verified";
  case HMAC_SIG_NO_SECRET: return "webhook: no secret is configured for this hook; every delivery is refused";
  case HMAC_SIG_MALFORMED: return "webhook: the signature is missing or not sha256=<64 lowercase hex digits>";
  default: return "webhook: the signature does not match the body";
  }
}
