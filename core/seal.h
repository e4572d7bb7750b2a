/* seal.h: encrypted backups. A file is sealed into an authenticated stream (libsodium's
 * crypto_secretstream_xchacha20poly1305, 64 KiB chunks) under a 32-byte key, given as is
 * or derived from a passphrase with Argon2id (crypto_pwhash, salt and limits in the
 * header). Opening checks every chunk and needs the final tag, so a changed, cut or
 * extended file is refused. Knows nothing of Lua. */
#ifndef ORKET_SEAL_H
#define ORKET_SEAL_H

#include <stddef.h>

#define SEAL_KEYBYTES 32
#define SEAL_SALTBYTES 16
#define SEAL_CHUNK 65536

typedef enum { SEAL_KDF_KEY = 0, SEAL_KDF_ARGON2ID = 1 } seal_kdf;

/* The sealed file's clear header: how its key is made. */
typedef struct {
  seal_kdf kdf;
  unsigned char salt[SEAL_SALTBYTES];   /* SEAL_KDF_ARGON2ID only */
  unsigned long long opslimit;          /* SEAL_KDF_ARGON2ID only */
  unsigned long long memlimit;          /* bytes; SEAL_KDF_ARGON2ID only */
} seal_params;

typedef enum {
  SEAL_OK = 0,
  SEAL_EIO,        /* a file cannot be opened, read or written (errno in the message) */
  SEAL_NOT_SEALED, /* the file does not start with an orket sealed header */
  SEAL_EPARAMS,    /* the header's kdf or limits are unknown or out of bounds */
  SEAL_EKEY,       /* the first chunk does not open: a wrong key or passphrase, or a changed start */
  SEAL_ETAMPERED,  /* a later chunk does not open, or bytes follow the final tag */
  SEAL_ETRUNCATED, /* the file ends before the final tag */
  SEAL_ENOMEM      /* Argon2id could not get its memory */
} seal_result;

/* Fills p for a passphrase: a fresh random salt and the interactive limits. */
void seal_params_passphrase(seal_params *p);

/* key (SEAL_KEYBYTES) = Argon2id(pass) with p's salt and limits. SEAL_OK, SEAL_EPARAMS
 * (limits outside libsodium's or above the sensitive ones: a hostile header is capped) or
 * SEAL_ENOMEM. */
seal_result seal_derive_key(unsigned char *key, const char *pass, size_t passlen, const seal_params *p);

/* Reads the clear header of the file at path into p. SEAL_OK, SEAL_EIO, SEAL_NOT_SEALED,
 * SEAL_EPARAMS or SEAL_ETRUNCATED. */
seal_result seal_read_params(const char *path, seal_params *p, char *err, size_t errlen);

/* Seals the file in_path into out_path, made new (mode 0600; refused, SEAL_EIO, when
 * anything is there, a link too) under key, with p written as the header (and authenticated
 * with the first chunk). SEAL_OK or SEAL_EIO; err gets a sentence. On failure out_path is
 * removed when it was made here, and left as it was when it could not be made. */
seal_result seal_file(const char *in_path, const char *out_path, const unsigned char *key,
                      const seal_params *p, char *err, size_t errlen);

/* Opens the sealed file in_path into out_path, made new as seal_file makes it, under key.
 * On any result but SEAL_OK out_path, which may hold a part of the plain text, is removed
 * when it was made here, and left as it was when it could not be made. err gets a sentence
 * naming the byte offset where the stream fails. */
seal_result seal_open_file(const char *in_path, const char *out_path, const unsigned char *key,
                           char *err, size_t errlen);

/* The longest text seal_buffer and seal_open_buffer take. */
#define SEAL_BUFMAX (4 * SEAL_CHUNK)

/* Seals the inlen bytes at in (1 to SEAL_BUFMAX) under key, in the file format above (a key,
 * not a passphrase), into *out (malloc'd, *outlen bytes; the caller frees it). SEAL_OK,
 * SEAL_EPARAMS (a length out of bounds) or SEAL_ENOMEM. */
seal_result seal_buffer(const unsigned char *in, size_t inlen, unsigned char **out, size_t *outlen,
                        const unsigned char *key, char *err, size_t errlen);

/* Opens a sealed buffer as seal_open_file opens a file, every chunk checked, into *out
 * (malloc'd, *outlen bytes; the caller wipes and frees it), which is NULL on failure. A
 * passphrase-sealed buffer fails as a wrong key does (SEAL_EKEY). */
seal_result seal_open_buffer(const unsigned char *in, size_t inlen, unsigned char **out, size_t *outlen,
                             const unsigned char *key, char *err, size_t errlen);

/* A short code for r ("EKEY", "ETAMPERED", ...). */
const char *seal_code(seal_result r);


/* Reads one line (without its newline) from /dev/tty into buf (cap bytes, NUL-terminated)
 * after writing prompt there, with echo off. 0, or -1 with errno (ENXIO: no terminal;
 * E2BIG: a longer line; EINTR: SIGINT, SIGTERM or SIGHUP came, the mode was restored and the
 * signal raised again, which by default ends the process). */
int seal_read_tty(const char *prompt, char *buf, size_t cap);

#endif
