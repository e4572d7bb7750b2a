/* test_hmac.c: HMAC-SHA256 against RFC 4231 vectors and GitHub's documented example, and
 * the webhook signature verifier's refusals. Expected values were computed independently
 * (openssl dgst -sha256 -hmac) and are hard-coded. */
#include "check.h"
#include "hmac.h"
#include "tests.h"

#include <string.h>

#include <sodium.h>

TEST(test_hmac_vectors) {
  CHECK(t, sodium_init() >= 0);
  char hex[HMAC_SHA256_HEX + 1];
  unsigned char k1[20], k6[131];
  memset(k1, 0x0b, sizeof k1);
  memset(k6, 0xaa, sizeof k6);
  /* RFC 4231 test cases 1, 2 and 6 (a key longer than the block) */
  hmac_sha256_hex(k1, sizeof k1, "Hi There", 8, hex);
  CHECK_STR(t, hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, hex);
  CHECK_STR(t, hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
  hmac_sha256_hex(k6, sizeof k6, m6, strlen(m6), hex);
  CHECK_STR(t, hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  /* an empty body */
  hmac_sha256_hex("k", 1, "", 0, hex);
  CHECK_STR(t, hex, "8bb990c40a7d61cb97597a942125025be50ac8beb74436e3735b98893a7f6620");
}

static hmac_sig_result tv_verify(const char *sec, size_t slen, const char *body, size_t bl, const char *sig) {
  return hmac_verify_signature(sec, slen, body, bl, sig, sig ? strlen(sig) : 0);
}

TEST(test_hmac_webhook_signature) {
  CHECK(t, sodium_init() >= 0);
  const char *secret = "It's a Secret to Everybody", *body = "Hello, World!";
  const char *good = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  size_t sl = strlen(secret), bl = strlen(body);
  char hub[80];
  snprintf(hub, sizeof hub, "sha256=%s", good);
#define V(sec, slen, sig) tv_verify(sec, slen, body, bl, sig)
  CHECK(t, V(secret, sl, hub) == HMAC_SIG_OK);  /* GitHub: X-Hub-Signature-256 */
  CHECK(t, V(secret, sl, good) == HMAC_SIG_OK); /* Gitea/Forgejo: bare hex */
  /* an empty or unset secret refuses even a signature made with the empty key */
  char empty_sig[HMAC_SHA256_HEX + 1];
  hmac_sha256_hex("", 0, body, bl, empty_sig);
  CHECK(t, V("", 0, empty_sig) == HMAC_SIG_NO_SECRET);
  CHECK(t, V(NULL, 0, good) == HMAC_SIG_NO_SECRET);
  /* malformed: absent, empty, short, long, uppercase, sha1=, a bare prefix, spaces */
  char upper[80], shortsig[80], longsig[80], spaced[80], wrong[80], sha1[80];
  snprintf(upper, sizeof upper, "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17");
  snprintf(shortsig, sizeof shortsig, "sha256=%.62s", good);
  snprintf(longsig, sizeof longsig, "%s0", good);
  snprintf(spaced, sizeof spaced, " %s", good);
  snprintf(sha1, sizeof sha1, "sha1=%.40s", good);
  CHECK(t, V(secret, sl, NULL) == HMAC_SIG_MALFORMED);
  CHECK(t, V(secret, sl, "") == HMAC_SIG_MALFORMED);
  CHECK(t, V(secret, sl, "sha256=") == HMAC_SIG_MALFORMED);
  CHECK(t, V(secret, sl, shortsig) == HMAC_SIG_MALFORMED);
  CHECK(t, V(secret, sl, longsig) == HMAC_SIG_MALFORMED);
  CHECK(t, V(secret, sl, upper) == HMAC_SIG_MALFORMED);
  CHECK(t, V(secret, sl, spaced) == HMAC_SIG_MALFORMED);
  CHECK(t, V(secret, sl, sha1) == HMAC_SIG_MALFORMED);
  /* well formed but wrong: one digit off, another secret, another body */
  snprintf(wrong, sizeof wrong, "%s", good);
  wrong[63] = wrong[63] == '7' ? '8' : '7';
  CHECK(t, V(secret, sl, wrong) == HMAC_SIG_MISMATCH);
  CHECK(t, V("another secret", 14, good) == HMAC_SIG_MISMATCH);
  CHECK(t, hmac_verify_signature(secret, sl, "Hello, World?", bl, good, strlen(good)) == HMAC_SIG_MISMATCH);
  /* a body with NUL bytes is signed as bytes */
  char nulbody[] = {'a', '\0', 'b'};
  char nulsig[HMAC_SHA256_HEX + 1];
  hmac_sha256_hex(secret, sl, nulbody, sizeof nulbody, nulsig);
  CHECK(t, hmac_verify_signature(secret, sl, nulbody, sizeof nulbody, nulsig, strlen(nulsig)) == HMAC_SIG_OK);
  CHECK(t, hmac_verify_signature(secret, sl, nulbody, 1, nulsig, strlen(nulsig)) == HMAC_SIG_MISMATCH);
#undef V
  CHECK_STR(t, hmac_sig_code(HMAC_SIG_NO_SECRET), "NO_SECRET");
  CHECK_STR(t, hmac_sig_code(HMAC_SIG_MALFORMED), "BAD_SIGNATURE_FORMAT");
  CHECK_STR(t, hmac_sig_code(HMAC_SIG_MISMATCH), "BAD_SIGNATURE");
}
