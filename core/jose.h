/* jose.h: JSON Web Signatures checked against one JSON Web Key, through libcjose
 * (joseapi.h): the token's header read, its algorithm held to a pinned list, its signature
 * verified, its payload returned. No JSON claims are read here; orket.auth.jwt checks them.
 * Signing and key generation exist for tests and for tools that mint a token. */
#ifndef ORKET_JOSE_H
#define ORKET_JOSE_H

#include <stddef.h>

#include "joseapi.h"

/* a compact JWS longer than this is refused unread: an ID token's cap (the token endpoint's
 * answer is read up to 256 KiB; a person in hundreds of groups makes a long token); a bearer
 * token's own, smaller, is the caller's (orket.auth.jwt) */
#define JOSE_MAX_TOKEN (256 * 1024)
#define JOSE_MAX_KEY (16 * 1024)   /* a JWK's JSON */

enum { JOSE_OK = 0, JOSE_MALFORMED = -1, JOSE_REFUSED = -2 };

/* Whether alg is one this module accepts: RS256/384/512, PS256/384/512, ES256/384/512.
 * Never "none", and no HMAC: a provider's public keys cannot verify one, and a key
 * confused between the two kinds is the classic forgery (RFC 8725 §2.1, §3.1). */
int jose_alg_allowed(const char *alg);

/* Reads a compact JWS's protected header: its alg and kid (kid "" when absent). Returns
 * JOSE_OK, JOSE_MALFORMED (not a JWS, a field too long) or JOSE_REFUSED (alg not allowed),
 * with err set on failure. */
int jose_peek(const joseapi *api, const char *compact, size_t len, char *alg, size_t alglen, char *kid,
              size_t kidlen, char *err, size_t errlen);

/* Verifies compact with the JWK jwk (JSON text), whose type must suit the token's alg, which
 * must equal alg. On JOSE_OK *payload is a malloc'd copy of the payload (free it) of
 * *payload_len bytes. JOSE_MALFORMED: the token or key cannot be read; JOSE_REFUSED: the
 * algorithm or the signature is wrong. */
int jose_verify(const joseapi *api, const char *jwk, size_t jwk_len, const char *compact, size_t len,
                const char *alg, char **payload, size_t *payload_len, char *err, size_t errlen);

/* Signs payload with the private JWK jwk under alg and kid (kid may be NULL). Returns a
 * malloc'd compact JWS, or NULL with err set. */
char *jose_sign(const joseapi *api, const char *jwk, size_t jwk_len, const char *alg, const char *kid,
                const char *payload, size_t payload_len, char *err, size_t errlen);

/* A new private key, kty "RSA" (2048 bits) or "EC" (P-256), as JWK JSON (malloc'd), or
 * NULL with err set. jose_public: the public half of a JWK, as JWK JSON (malloc'd). */
char *jose_keygen(const joseapi *api, const char *kty, char *err, size_t errlen);
char *jose_public(const joseapi *api, const char *jwk, size_t jwk_len, char *err, size_t errlen);

/* RFC 7636's S256 code challenge of a PKCE verifier: BASE64URL(SHA-256(verifier)), 43
 * characters and a NUL into out (outlen >= 44). Returns 0, or -1 with err set. */
int jose_pkce_challenge(const joseapi *api, const char *verifier, size_t len, char *out, size_t outlen, char *err,
                        size_t errlen);

#endif
