/* password.c: Argon2id password hashes over libsodium's crypto_pwhash_str (password.h). */
#include "password.h"

#include <string.h>

#include <sodium.h>

int password_hash(char *out, const char *pass, size_t len) {
  _Static_assert(PASSWORD_HASHMAX == crypto_pwhash_STRBYTES, "PASSWORD_HASHMAX is crypto_pwhash_STRBYTES");
  return crypto_pwhash_str_alg(out, pass, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) == 0
             ? 0
             : -1;
}

int password_verify(const char *hash, size_t hashlen, const char *pass, size_t len) {
  char buf[PASSWORD_HASHMAX];
  /* the encoded string must be NUL-terminated within crypto_pwhash_STRBYTES */
  if (hashlen == 0 || hashlen >= sizeof buf || memchr(hash, '\0', hashlen) != NULL) return 0;
  if (strncmp(hash, crypto_pwhash_argon2id_STRPREFIX, strlen(crypto_pwhash_argon2id_STRPREFIX)) != 0) return 0;
  memcpy(buf, hash, hashlen);
  buf[hashlen] = '\0';
  return crypto_pwhash_str_verify(buf, pass, len) == 0;
}
