/* password.h: local accounts' passwords, hashed with Argon2id (libsodium's
 * crypto_pwhash_str: salt and limits inside the encoded string) and checked against it.
 * Knows nothing of Lua. */
#ifndef ORKET_PASSWORD_H
#define ORKET_PASSWORD_H

#include <stddef.h>

#define PASSWORD_HASHMAX 128 /* crypto_pwhash_STRBYTES */
#define PASSWORD_MAXLEN 4096 /* bytes: 1024 characters of up to 4 bytes (orket.serve.accounts counts
                              * characters); longer ones are refused, the hash's cost not theirs to set */

/* out (PASSWORD_HASHMAX) = the encoded Argon2id hash of pass, NUL-terminated, with the
 * interactive limits. 0, or -1 when Argon2id could not get its memory. */
int password_hash(char *out, const char *pass, size_t len);

/* 1 when pass matches the encoded hash, 0 when not (also for a hash that is not an
 * Argon2id string: a changed row is data). */
int password_verify(const char *hash, size_t hashlen, const char *pass, size_t len);

#endif
