/* hmac.h: HMAC-SHA256 (libsodium, keys of any length) and the verification of a forge
 * webhook's signature over the raw body: GitHub's `X-Hub-Signature-256: sha256=<hex>` and
 * Gitea/Forgejo's bare `<hex>`, compared in constant time. Knows nothing of Lua or HTTP. */
#ifndef ORKET_HMAC_H
#define ORKET_HMAC_H

#include <stddef.h>

#define HMAC_SHA256_BYTES 32
#define HMAC_SHA256_HEX 64

typedef enum {
  HMAC_SIG_OK = 0,
  HMAC_SIG_NO_SECRET, /* the secret is empty or unset: every delivery is refused */
  HMAC_SIG_MALFORMED, /* missing, not 64 lowercase hex digits, or another scheme (sha1=) */
  HMAC_SIG_MISMATCH   /* well formed, but not the body's signature under this secret */
} hmac_sig_result;

/* out (HMAC_SHA256_BYTES) = HMAC-SHA256 of msg under key; key may have any length. */
void hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char *out);

/* out (HMAC_SHA256_HEX + 1) = the lowercase hex of hmac_sha256, NUL-terminated. */
void hmac_sha256_hex(const void *key, size_t klen, const void *msg, size_t mlen, char *out);

/* Verifies sig (siglen bytes, the header's value; NULL when the header is absent) against
 * the HMAC-SHA256 of body under secret. Accepts "sha256=<hex>" and bare "<hex>", the hex
 * being exactly 64 lowercase digits. The secret is checked first, the format next, and the
 * comparison of the 32 bytes is constant-time (sodium_memcmp). */
hmac_sig_result hmac_verify_signature(const void *secret, size_t slen, const void *body, size_t blen,
                                      const char *sig, size_t siglen);

/* A short code ("NO_SECRET", "BAD_SIGNATURE_FORMAT", "BAD_SIGNATURE") and a sentence for r. */
const char *hmac_sig_code(hmac_sig_result r);
const char *hmac_sig_message(hmac_sig_result r);

#endif
