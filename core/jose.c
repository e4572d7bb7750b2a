/* jose.c: JWS verification against one JWK with libcjose (see jose.h). Every string cjose
 * hands back is copied before its owner is released, so nothing here outlives a call. */
#include "jose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* an accepted alg is one of these families (RSA PKCS#1 v1.5, RSA-PSS, ECDSA) with one of
 * these hash sizes: nine names in all */
static const char *const jose_families[] = {"RS", "PS", "ES", NULL};
static const char *const jose_sizes[] = {"256", "384", "512", NULL};

int jose_alg_allowed(const char *alg) {
  if (alg == NULL || strlen(alg) != 5) return 0;
  int family = 0, size = 0;
  for (int i = 0; jose_families[i] != NULL; i++) family |= strncmp(alg, jose_families[i], 2) == 0;
  for (int i = 0; jose_sizes[i] != NULL; i++) size |= strcmp(alg + 2, jose_sizes[i]) == 0;
  return family && size;
}

static void jose_fail(char *err, size_t errlen, const char *what, const cjose_err *e) {
  snprintf(err, errlen, "%s%s%s", what, e && e->message ? ": " : "", e && e->message ? e->message : "");
}

/* copies s into a malloc'd, NUL-terminated string (NULL when out of memory) */
static char *jose_dup(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d == NULL) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

static int jose_copy_field(char *dst, size_t dstlen, const char *src) {
  if (src == NULL) src = "";
  size_t n = strlen(src);
  if (n >= dstlen) return -1;
  memcpy(dst, src, n + 1);
  return 0;
}

int jose_peek(const joseapi *api, const char *compact, size_t len, char *alg, size_t alglen, char *kid,
              size_t kidlen, char *err, size_t errlen) {
  cjose_err e = {0};
  if (len > JOSE_MAX_TOKEN) {
    snprintf(err, errlen, "the token is longer than %d bytes", JOSE_MAX_TOKEN);
    return JOSE_MALFORMED;
  }
  cjose_jws_t *jws = api->cjose_jws_import(compact, len, &e);
  if (jws == NULL) {
    jose_fail(err, errlen, "not a signed token (JWS compact form)", &e);
    return JOSE_MALFORMED;
  }
  cjose_header_t *h = api->cjose_jws_get_protected(jws);
  const char *a = h ? api->cjose_header_get(h, "alg", &e) : NULL;
  const char *k = h ? api->cjose_header_get(h, "kid", &e) : NULL;
  int rc = JOSE_OK;
  if (a == NULL || jose_copy_field(alg, alglen, a) != 0 || jose_copy_field(kid, kidlen, k) != 0) {
    snprintf(err, errlen, "the token's header has no usable alg or kid");
    rc = JOSE_MALFORMED;
  } else if (!jose_alg_allowed(alg)) {
    snprintf(err, errlen, "the token's algorithm '%s' is not accepted (RS, PS or ES 256/384/512 only)", alg);
    rc = JOSE_REFUSED;
  }
  api->cjose_jws_release(jws);
  return rc;
}

/* the key type an algorithm needs */
static cjose_jwk_kty_t jose_kty_of(const char *alg) { return alg[0] == 'E' ? CJOSE_JWK_KTY_EC : CJOSE_JWK_KTY_RSA; }

int jose_verify(const joseapi *api, const char *jwk, size_t jwk_len, const char *compact, size_t len,
                const char *alg, char **payload, size_t *payload_len, char *err, size_t errlen) {
  char talg[16], kid[256];
  *payload = NULL;
  *payload_len = 0;
  if (!jose_alg_allowed(alg)) {
    snprintf(err, errlen, "the algorithm '%s' is not accepted", alg ? alg : "(none)");
    return JOSE_REFUSED;
  }
  int rc = jose_peek(api, compact, len, talg, sizeof talg, kid, sizeof kid, err, errlen);
  if (rc != JOSE_OK) return rc;
  if (strcmp(talg, alg) != 0) {
    snprintf(err, errlen, "the token is signed with %s, not the %s expected", talg, alg);
    return JOSE_REFUSED;
  }
  if (jwk_len > JOSE_MAX_KEY) {
    snprintf(err, errlen, "the key is longer than %d bytes", JOSE_MAX_KEY);
    return JOSE_MALFORMED;
  }
  cjose_err e = {0};
  cjose_jwk_t *key = api->cjose_jwk_import(jwk, jwk_len, &e);
  if (key == NULL) {
    jose_fail(err, errlen, "the key cannot be read as a JWK", &e);
    return JOSE_MALFORMED;
  }
  cjose_jws_t *jws = NULL;
  if (api->cjose_jwk_get_kty(key, &e) != jose_kty_of(alg)) {
    snprintf(err, errlen, "the key's type does not suit %s", alg);
    rc = JOSE_REFUSED;
  } else if ((jws = api->cjose_jws_import(compact, len, &e)) == NULL) {
    jose_fail(err, errlen, "not a signed token (JWS compact form)", &e);
    rc = JOSE_MALFORMED;
  } else if (!api->cjose_jws_verify(jws, key, &e)) {
    jose_fail(err, errlen, "the token's signature does not verify", &e);
    rc = JOSE_REFUSED;
  } else {
    uint8_t *p = NULL;
    size_t n = 0;
    if (!api->cjose_jws_get_plaintext(jws, &p, &n, &e) || (*payload = jose_dup((const char *)p, n)) == NULL) {
      jose_fail(err, errlen, "the token's payload cannot be read", &e);
      rc = JOSE_MALFORMED;
    } else {
      *payload_len = n;
    }
  }
  if (jws) api->cjose_jws_release(jws);
  api->cjose_jwk_release(key);
  return rc;
}

char *jose_sign(const joseapi *api, const char *jwk, size_t jwk_len, const char *alg, const char *kid,
                const char *payload, size_t payload_len, char *err, size_t errlen) {
  cjose_err e = {0};
  if (!jose_alg_allowed(alg)) {
    snprintf(err, errlen, "the algorithm '%s' is not accepted", alg);
    return NULL;
  }
  cjose_jwk_t *key = api->cjose_jwk_import(jwk, jwk_len, &e);
  if (key == NULL) {
    jose_fail(err, errlen, "the key cannot be read as a JWK", &e);
    return NULL;
  }
  char *out = NULL;
  cjose_jws_t *jws = NULL;
  const char *ser = NULL;
  cjose_header_t *h = api->cjose_header_new(&e);
  if (h == NULL || !api->cjose_header_set(h, "alg", alg, &e) || (kid && !api->cjose_header_set(h, "kid", kid, &e)) ||
      (jws = api->cjose_jws_sign(key, h, (const uint8_t *)payload, payload_len, &e)) == NULL ||
      !api->cjose_jws_export(jws, &ser, &e) || (out = jose_dup(ser, strlen(ser))) == NULL)
    jose_fail(err, errlen, "cannot sign", &e);
  if (jws) api->cjose_jws_release(jws);
  if (h) api->cjose_header_release(h);
  api->cjose_jwk_release(key);
  return out;
}

/* the JSON of key (private half too when priv), copied into malloc'd memory */
static char *jose_key_json(const joseapi *api, cjose_jwk_t *key, int priv, char *err, size_t errlen) {
  cjose_err e = {0};
  char *json = api->cjose_jwk_to_json(key, priv != 0, &e);
  char *out = json ? jose_dup(json, strlen(json)) : NULL;
  if (json) api->cjose_get_dealloc()(json);
  if (out == NULL) jose_fail(err, errlen, "cannot write the key as JSON", &e);
  return out;
}

char *jose_keygen(const joseapi *api, const char *kty, char *err, size_t errlen) {
  static const uint8_t e65537[] = {0x01, 0x00, 0x01};
  cjose_err e = {0};
  cjose_jwk_t *key = NULL;
  if (strcmp(kty, "RSA") == 0) key = api->cjose_jwk_create_RSA_random(2048, e65537, sizeof e65537, &e);
  else if (strcmp(kty, "EC") == 0) key = api->cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &e);
  else {
    snprintf(err, errlen, "unknown key type '%s': use RSA or EC", kty);
    return NULL;
  }
  if (key == NULL) {
    jose_fail(err, errlen, "cannot make a key", &e);
    return NULL;
  }
  char *out = jose_key_json(api, key, 1, err, errlen);
  api->cjose_jwk_release(key);
  return out;
}

char *jose_public(const joseapi *api, const char *jwk, size_t jwk_len, char *err, size_t errlen) {
  cjose_err e = {0};
  cjose_jwk_t *key = api->cjose_jwk_import(jwk, jwk_len, &e);
  if (key == NULL) {
    jose_fail(err, errlen, "the key cannot be read as a JWK", &e);
    return NULL;
  }
  char *out = jose_key_json(api, key, 0, err, errlen);
  api->cjose_jwk_release(key);
  return out;
}

int jose_pkce_challenge(const joseapi *api, const char *verifier, size_t len, char *out, size_t outlen, char *err,
                        size_t errlen) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, (const unsigned char *)verifier, len);
  cjose_err e = {0};
  char *b64 = NULL;
  size_t n = 0;
  if (!api->cjose_base64url_encode(digest, sizeof digest, &b64, &n, &e) || n >= outlen) {
    jose_fail(err, errlen, "cannot encode the challenge", &e);
    if (b64) api->cjose_get_dealloc()(b64);
    return -1;
  }
  memcpy(out, b64, n);
  out[n] = '\0';
  api->cjose_get_dealloc()(b64);
  return 0;
}
