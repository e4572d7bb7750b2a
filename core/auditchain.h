/* auditchain.h: the audit's hash chain and its signed checkpoints. Each entry's hash is
 * BLAKE2b-256 (libsodium's generic hash) over the previous entry's hash and a canonical
 * encoding of the entry's fields; a checkpoint is an Ed25519 signature (crypto_sign) of
 * one entry's hash under a key made from a 32-byte seed. Knows nothing of Lua or SQL. */
#ifndef ORKET_AUDITCHAIN_H
#define ORKET_AUDITCHAIN_H

#include <stddef.h>

#define AUDITCHAIN_HASHBYTES 32
#define AUDITCHAIN_SEEDBYTES 32
#define AUDITCHAIN_PKBYTES 32
#define AUDITCHAIN_SIGBYTES 64

/* One field of an entry; s NULL for an absent one (encoded apart from an empty one). */
typedef struct {
  const char *s;
  size_t len;
} auditchain_field;

/* out = BLAKE2b-256 of a domain string, prev, and each field as a presence byte (0 or 1),
 * its length as a big-endian u64 and its bytes: no two different lists of fields encode
 * alike, so no entry can be rewritten into another with the same hash. */
void auditchain_hash(const unsigned char *prev, const auditchain_field *fields, size_t n, unsigned char *out);

/* pk (AUDITCHAIN_PKBYTES) = the public key of the key made from seed. */
void auditchain_public_key(unsigned char *pk, const unsigned char *seed);

/* sig (AUDITCHAIN_SIGBYTES) = the Ed25519 signature, under seed's key, of a checkpoint
 * message naming hash (AUDITCHAIN_HASHBYTES). */
void auditchain_sign(unsigned char *sig, const unsigned char *hash, const unsigned char *seed);

/* 1 when sig is pk's signature of the checkpoint message naming hash, else 0. */
int auditchain_verify(const unsigned char *sig, const unsigned char *hash, const unsigned char *pk);

#endif
