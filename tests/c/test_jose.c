/* test_jose.c: jose.c's pinned algorithms (pure logic), and a JWS signed and verified
 * through libcjose with keys made for the test: a changed byte, another key, another alg
 * and "none" refused; RFC 7636's S256 vector; every string handed back freed (ASan). */
#include "check.h"
#include "jose.h"
#include "tests.h"

#include <stdlib.h>
#include <string.h>

TEST(test_jose_alg_pinning) {
  const char *yes[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) CHECK(t, jose_alg_allowed(yes[i]));
  const char *no[] = {"none", "HS256", "HS512", "RS25", "RS2560", "rs256", "ES128", "EdDSA", "", "RS256\n"};
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) CHECK(t, !jose_alg_allowed(no[i]));
  CHECK(t, !jose_alg_allowed(NULL));
}

TEST(test_jose_sign_verify) {
  joseapi api;
  char err[256], alg[16], kid[256];
  CHECK(t, joseapi_open(&api, err, sizeof err) == 0);
  char *key = jose_keygen(&api, "RSA", err, sizeof err);
  char *other = jose_keygen(&api, "EC", err, sizeof err);
  CHECK(t, key != NULL && other != NULL);
  char *pub = jose_public(&api, key, strlen(key), err, sizeof err);
  char *opub = jose_public(&api, other, strlen(other), err, sizeof err);
  CHECK(t, pub != NULL && strstr(pub, "\"d\"") == NULL); /* no private part */
  const char *claims = "{\"sub\":\"x\"}";
  char *tok = jose_sign(&api, key, strlen(key), "RS256", "k1", claims, strlen(claims), err, sizeof err);
  CHECK(t, tok != NULL);
  CHECK(t, jose_peek(&api, tok, strlen(tok), alg, sizeof alg, kid, sizeof kid, err, sizeof err) == JOSE_OK);
  CHECK_STR(t, alg, "RS256");
  CHECK_STR(t, kid, "k1");
  char *payload = NULL;
  size_t plen = 0;
  CHECK(t, jose_verify(&api, pub, strlen(pub), tok, strlen(tok), "RS256", &payload, &plen, err, sizeof err) == JOSE_OK);
  CHECK(t, payload != NULL && plen == strlen(claims) && memcmp(payload, claims, plen) == 0);
  free(payload);
  /* another alg expected, a key of another type, a changed signature byte */
  CHECK(t, jose_verify(&api, pub, strlen(pub), tok, strlen(tok), "PS256", &payload, &plen, err, sizeof err) ==
               JOSE_REFUSED);
  CHECK(t, jose_verify(&api, opub, strlen(opub), tok, strlen(tok), "RS256", &payload, &plen, err, sizeof err) ==
               JOSE_REFUSED);
  size_t n = strlen(tok);
  tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
  CHECK(t, jose_verify(&api, pub, strlen(pub), tok, n, "RS256", &payload, &plen, err, sizeof err) == JOSE_REFUSED);
  CHECK(t, payload == NULL);
  /* {"alg":"none"} and its payload, unsigned */
  const char *none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
  CHECK(t, jose_peek(&api, none, strlen(none), alg, sizeof alg, kid, sizeof kid, err, sizeof err) == JOSE_REFUSED);
  CHECK(t, jose_verify(&api, pub, strlen(pub), none, strlen(none), "none", &payload, &plen, err, sizeof err) ==
               JOSE_REFUSED);
  CHECK(t, jose_peek(&api, "x.y", 3, alg, sizeof alg, kid, sizeof kid, err, sizeof err) == JOSE_MALFORMED);
  CHECK(t, jose_sign(&api, key, strlen(key), "HS256", NULL, "{}", 2, err, sizeof err) == NULL);
  char challenge[64];
  const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  CHECK(t, jose_pkce_challenge(&api, verifier, strlen(verifier), challenge, sizeof challenge, err, sizeof err) == 0);
  CHECK_STR(t, challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  free(tok);
  free(pub);
  free(opub);
  free(key);
  free(other);
  joseapi_close(&api);
}
