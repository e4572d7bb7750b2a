/* auditchain.c: the audit's hash chain and signed checkpoints (see auditchain.h), over
 * libsodium's crypto_generichash (BLAKE2b) and crypto_sign (Ed25519). */
#include "auditchain.h"

#include <string.h>

#include <sodium.h>

/* domain strings: an entry's hash and a checkpoint's signature can never be mistaken for
 * another use of the same key or function */
static const char auditchain_entry_domain[] = "orket audit entry v1";
static const char auditchain_checkpoint_domain[] = "orket audit checkpoint v1";

void auditchain_hash(const unsigned char *prev, const auditchain_field *fields, size_t n, unsigned char *out) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, AUDITCHAIN_HASHBYTES);
  crypto_generichash_update(&st, (const unsigned char *)auditchain_entry_domain, sizeof auditchain_entry_domain);
  crypto_generichash_update(&st, prev, AUDITCHAIN_HASHBYTES);
  for (size_t i = 0; i < n; i++) {
    unsigned char head[9];
    unsigned long long len = fields[i].s ? fields[i].len : 0;
    head[0] = fields[i].s != NULL;
    for (int b = 8; b >= 1; b--, len >>= 8) head[b] = (unsigned char)(len & 0xff);
    crypto_generichash_update(&st, head, sizeof head);
    if (fields[i].s) crypto_generichash_update(&st, (const unsigned char *)fields[i].s, fields[i].len);
  }
  crypto_generichash_final(&st, out, AUDITCHAIN_HASHBYTES);
}

/* the message a checkpoint signs: the domain and the hash */
static void auditchain_message(unsigned char *msg, const unsigned char *hash) {
  memcpy(msg, auditchain_checkpoint_domain, sizeof auditchain_checkpoint_domain);
  memcpy(msg + sizeof auditchain_checkpoint_domain, hash, AUDITCHAIN_HASHBYTES);
}

#define AUDITCHAIN_MSGBYTES (sizeof auditchain_checkpoint_domain + AUDITCHAIN_HASHBYTES)

void auditchain_public_key(unsigned char *pk, const unsigned char *seed) {
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(pk, sk, seed);
  sodium_memzero(sk, sizeof sk);
}

void auditchain_sign(unsigned char *sig, const unsigned char *hash, const unsigned char *seed) {
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], msg[AUDITCHAIN_MSGBYTES];
  crypto_sign_seed_keypair(pk, sk, seed);
  auditchain_message(msg, hash);
  crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
  sodium_memzero(sk, sizeof sk);
}

int auditchain_verify(const unsigned char *sig, const unsigned char *hash, const unsigned char *pk) {
  unsigned char msg[AUDITCHAIN_MSGBYTES];
  auditchain_message(msg, hash);
  return crypto_sign_verify_detached(sig, msg, sizeof msg, pk) == 0;
}
