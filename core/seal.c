/* seal.c: sealed (encrypted, authenticated) backup files over libsodium's secretstream and
 * Argon2id (see seal.h). Layout: "ORKTSEAL", a version byte (1), a kdf byte; for Argon2id
 * a 16-byte salt and the limits as two big-endian u64; the 24-byte secretstream header;
 * then chunks, each a big-endian u32 length and that many bytes of ciphertext. The clear
 * header is the first chunk's additional data, so changing it fails as a wrong key does. */
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#define SEAL_MAGIC "ORKTSEAL"
#define SEAL_MAGICLEN 8
#define SEAL_VERSION 1
#define SEAL_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define SEAL_HDRMAX (SEAL_MAGICLEN + 2 + SEAL_SALTBYTES + 16)

__attribute__((format(printf, 3, 4))) static void seal_err(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (err && errlen) vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static void seal_put_u64(unsigned char *p, unsigned long long v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (unsigned char)(v & 0xff);
}

static unsigned long long seal_get_u64(const unsigned char *p) {
  unsigned long long v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

/* the clear header of p into buf; returns its length */
static size_t seal_encode_params(unsigned char *buf, const seal_params *p) {
  memcpy(buf, SEAL_MAGIC, SEAL_MAGICLEN);
  buf[SEAL_MAGICLEN] = SEAL_VERSION;
  buf[SEAL_MAGICLEN + 1] = (unsigned char)p->kdf;
  size_t n = SEAL_MAGICLEN + 2;
  if (p->kdf == SEAL_KDF_ARGON2ID) {
    memcpy(buf + n, p->salt, SEAL_SALTBYTES);
    seal_put_u64(buf + n + SEAL_SALTBYTES, p->opslimit);
    seal_put_u64(buf + n + SEAL_SALTBYTES + 8, p->memlimit);
    n += SEAL_SALTBYTES + 16;
  }
  return n;
}

void seal_params_passphrase(seal_params *p) {
  memset(p, 0, sizeof *p);
  p->kdf = SEAL_KDF_ARGON2ID;
  randombytes_buf(p->salt, sizeof p->salt);
  p->opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
  p->memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
}

static int seal_limits_ok(const seal_params *p) {
  return p->opslimit >= crypto_pwhash_OPSLIMIT_MIN && p->opslimit <= crypto_pwhash_OPSLIMIT_SENSITIVE &&
         p->memlimit >= crypto_pwhash_MEMLIMIT_MIN && p->memlimit <= crypto_pwhash_MEMLIMIT_SENSITIVE;
}

seal_result seal_derive_key(unsigned char *key, const char *pass, size_t passlen, const seal_params *p) {
  if (p->kdf != SEAL_KDF_ARGON2ID || !seal_limits_ok(p)) return SEAL_EPARAMS;
  if (crypto_pwhash(key, SEAL_KEYBYTES, pass, passlen, p->salt, p->opslimit, (size_t)p->memlimit,
                    crypto_pwhash_ALG_ARGON2ID13) != 0)
    return SEAL_ENOMEM;
  return SEAL_OK;
}

/* reads the clear header from f into p and its bytes into raw (*rawlen) */
static seal_result seal_read_header(FILE *f, seal_params *p, unsigned char *raw, size_t *rawlen, char *err,
                                    size_t errlen) {
  memset(p, 0, sizeof *p);
  size_t n = fread(raw, 1, SEAL_MAGICLEN + 2, f);
  if (n < SEAL_MAGICLEN || memcmp(raw, SEAL_MAGIC, SEAL_MAGICLEN) != 0) {
    seal_err(err, errlen, "not an encrypted orket backup (no ORKTSEAL header)");
    return SEAL_NOT_SEALED;
  }
  if (n < SEAL_MAGICLEN + 2) {
    seal_err(err, errlen, "the file ends inside its header: truncated");
    return SEAL_ETRUNCATED;
  }
  if (raw[SEAL_MAGICLEN] != SEAL_VERSION || raw[SEAL_MAGICLEN + 1] > SEAL_KDF_ARGON2ID) {
    seal_err(err, errlen, "unknown format version %lld or key kind", (long long)raw[SEAL_MAGICLEN]);
    return SEAL_EPARAMS;
  }
  p->kdf = (seal_kdf)raw[SEAL_MAGICLEN + 1];
  *rawlen = n;
  if (p->kdf == SEAL_KDF_ARGON2ID) {
    if (fread(raw + n, 1, SEAL_SALTBYTES + 16, f) != SEAL_SALTBYTES + 16) {
      seal_err(err, errlen, "the file ends inside its header: truncated");
      return SEAL_ETRUNCATED;
    }
    memcpy(p->salt, raw + n, SEAL_SALTBYTES);
    p->opslimit = seal_get_u64(raw + n + SEAL_SALTBYTES);
    p->memlimit = seal_get_u64(raw + n + SEAL_SALTBYTES + 8);
    *rawlen = n + SEAL_SALTBYTES + 16;
    if (!seal_limits_ok(p)) {
      seal_err(err, errlen, "the header's Argon2id limits are out of bounds (opslimit %lld)",
               (long long)p->opslimit);
      return SEAL_EPARAMS;
    }
  }
  return SEAL_OK;
}

seal_result seal_read_params(const char *path, seal_params *p, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    seal_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return SEAL_EIO;
  }
  unsigned char raw[SEAL_HDRMAX];
  size_t rawlen;
  seal_result r = seal_read_header(f, p, raw, &rawlen, err, errlen);
  fclose(f);
  return r;
}

/* a new file only: never written through a link or over a file someone else made (a part
 * file beside a backup in a shared directory such as /tmp has a name one can guess); NULL
 * leaves nothing made */
static FILE *seal_create(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    int e = errno;
    close(fd);
    unlink(path);
    errno = e;
  }
  return f;
}

/* closes out, flushing it to the disk; 0 on success */
static int seal_close_out(FILE *out) {
  int bad = fflush(out) != 0 || fsync(fileno(out)) != 0;
  return (fclose(out) != 0) | bad;
}

/* Both directions over open streams; in and out stay open (the callers close them). */

static seal_result seal_stream(FILE *in, FILE *out, const unsigned char *key, const seal_params *p, char *err,
                               size_t errlen) {
  unsigned char hdr[SEAL_HDRMAX + crypto_secretstream_xchacha20poly1305_HEADERBYTES];
  size_t hlen = seal_encode_params(hdr, p);
  crypto_secretstream_xchacha20poly1305_state st;
  crypto_secretstream_xchacha20poly1305_init_push(&st, hdr + hlen, key);
  const unsigned char *ad = hdr; /* the clear header: authenticated by the first chunk */
  size_t adlen = hlen;
  hlen += crypto_secretstream_xchacha20poly1305_HEADERBYTES;
  seal_result r = SEAL_OK;
  int eno = 0; /* why a read or write failed (a full disk): said in the message */
  static const size_t cap = SEAL_CHUNK + SEAL_ABYTES;
  unsigned char *plain = sodium_malloc(SEAL_CHUNK), *cipher = sodium_malloc(cap);
  if (!plain || !cipher || fwrite(hdr, 1, hlen, out) != hlen) {
    r = SEAL_EIO;
    eno = errno;
  }
  for (int last = 0; r == SEAL_OK && !last;) {
    size_t n = fread(plain, 1, SEAL_CHUNK, in);
    if (ferror(in)) {
      r = SEAL_EIO;
      eno = errno;
      break;
    }
    if (n < SEAL_CHUNK) {
      last = 1;
    } else { /* a full chunk: the last when nothing follows it */
      int c = getc(in);
      if (c == EOF) last = !ferror(in);
      else ungetc(c, in);
    }
    unsigned long long clen;
    crypto_secretstream_xchacha20poly1305_push(&st, cipher, &clen, plain, n, ad, adlen,
                                               last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
    ad = NULL;
    adlen = 0;
    unsigned char len[4] = {(unsigned char)(clen >> 24), (unsigned char)(clen >> 16), (unsigned char)(clen >> 8),
                            (unsigned char)clen};
    if (fwrite(len, 1, 4, out) != 4 || fwrite(cipher, 1, clen, out) != clen) {
      r = SEAL_EIO;
      eno = errno;
    }
  }
  if (r != SEAL_OK) seal_err(err, errlen, "read or write failed%s%s", eno ? ": " : "", eno ? strerror(eno) : "");
  sodium_free(plain);
  sodium_free(cipher);
  sodium_memzero(&st, sizeof st);
  return r;
}

/* the chunks after the headers, each checked; r of the first failure */
static seal_result seal_pull_chunks(FILE *in, FILE *out, crypto_secretstream_xchacha20poly1305_state *st,
                                    const unsigned char *hdr, size_t hlen, long long off, char *err, size_t errlen) {
  static const size_t cap = SEAL_CHUNK + SEAL_ABYTES;
  unsigned char *plain = sodium_malloc(SEAL_CHUNK), *cipher = sodium_malloc(cap);
  int first = 1;
  seal_result r = (plain && cipher) ? SEAL_OK : SEAL_EIO;
  for (unsigned char tag = 0; r == SEAL_OK && tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL;) {
    unsigned char len[4];
    size_t got = fread(len, 1, 4, in);
    if (got != 4) {
      r = ferror(in) ? SEAL_EIO : SEAL_ETRUNCATED;
      seal_err(err, errlen, "the file ends at byte %lld before its final tag: truncated", off + (long long)got);
      break;
    }
    size_t clen = (size_t)len[0] << 24 | (size_t)len[1] << 16 | (size_t)len[2] << 8 | len[3];
    if (clen < SEAL_ABYTES || clen > cap) {
      r = first ? SEAL_EKEY : SEAL_ETAMPERED;
      seal_err(err, errlen, "the chunk at byte %lld has an impossible length: the file was changed", off);
      break;
    }
    got = fread(cipher, 1, clen, in);
    if (got != clen) {
      r = ferror(in) ? SEAL_EIO : SEAL_ETRUNCATED;
      seal_err(err, errlen, "the file ends at byte %lld inside a chunk: truncated", off + 4 + (long long)got);
      break;
    }
    unsigned long long plen;
    if (crypto_secretstream_xchacha20poly1305_pull(st, plain, &plen, &tag, cipher, clen, first ? hdr : NULL,
                                                   first ? hlen : 0) != 0) {
      r = first ? SEAL_EKEY : SEAL_ETAMPERED;
      seal_err(err, errlen,
               first ? "it does not open from byte %lld: a wrong key or passphrase, or the file was changed"
                     : "the chunk at byte %lld does not authenticate: the file was changed",
               off);
      break;
    }
    first = 0;
    off += 4 + (long long)clen;
    if (fwrite(plain, 1, plen, out) != plen) {
      r = SEAL_EIO;
      seal_err(err, errlen, "cannot write the opened text: %s", strerror(errno));
    }
  }
  if (r == SEAL_OK && getc(in) != EOF) {
    r = SEAL_ETAMPERED;
    seal_err(err, errlen, "bytes follow the final tag at byte %lld: the file was changed", off);
  }
  sodium_free(plain);
  sodium_free(cipher);
  return r;
}

static seal_result seal_open_stream(FILE *in, FILE *out, const unsigned char *key, char *err, size_t errlen) {
  seal_params p;
  unsigned char hdr[SEAL_HDRMAX];
  size_t hlen;
  seal_result r = seal_read_header(in, &p, hdr, &hlen, err, errlen);
  if (r != SEAL_OK) return r;
  unsigned char sshdr[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
  if (fread(sshdr, 1, sizeof sshdr, in) != sizeof sshdr) {
    seal_err(err, errlen, "the file ends inside its header: truncated");
    return SEAL_ETRUNCATED;
  }
  crypto_secretstream_xchacha20poly1305_state st;
  crypto_secretstream_xchacha20poly1305_init_pull(&st, sshdr, key);
  r = seal_pull_chunks(in, out, &st, hdr, hlen, (long long)(hlen + sizeof sshdr), err, errlen);
  sodium_memzero(&st, sizeof st);
  return r;
}

/* opens in_path and creates out_path (0600), or says which failed */
static seal_result seal_open_pair(const char *in_path, const char *out_path, FILE **in, FILE **out, char *err,
                                  size_t errlen) {
  *in = fopen(in_path, "rb");
  if (!*in) {
    seal_err(err, errlen, "cannot open %s: %s", in_path, strerror(errno));
    return SEAL_EIO;
  }
  *out = seal_create(out_path);
  if (!*out) {
    seal_err(err, errlen, "cannot create %s: %s", out_path, strerror(errno));
    fclose(*in);
    return SEAL_EIO;
  }
  return SEAL_OK;
}

/* closes both files (out flushed to the disk); r, or SEAL_EIO when out was not written whole */
static seal_result seal_close_pair(seal_result r, FILE *in, FILE *out, const char *out_path, char *err,
                                   size_t errlen) {
  fclose(in);
  if (seal_close_out(out) != 0 && r == SEAL_OK) {
    seal_err(err, errlen, "cannot write %s: %s", out_path, strerror(errno));
    r = SEAL_EIO;
  }
  return r;
}

seal_result seal_file(const char *in_path, const char *out_path, const unsigned char *key,
                      const seal_params *p, char *err, size_t errlen) {
  FILE *in, *out;
  seal_result r = seal_open_pair(in_path, out_path, &in, &out, err, errlen);
  if (r != SEAL_OK) return r;
  r = seal_stream(in, out, key, p, err, errlen);
  if (r != SEAL_OK && err && errlen) { /* the stream's reason, named with both files */
    char why[160];
    snprintf(why, sizeof why, "%s", err);
    seal_err(err, errlen, "cannot seal %s into %s: %s", in_path, out_path, why);
  }
  r = seal_close_pair(r, in, out, out_path, err, errlen);
  if (r != SEAL_OK) unlink(out_path); /* made above: a part of the stream, never another's file */
  return r;
}

seal_result seal_open_file(const char *in_path, const char *out_path, const unsigned char *key, char *err,
                           size_t errlen) {
  FILE *in, *out;
  seal_result r = seal_open_pair(in_path, out_path, &in, &out, err, errlen);
  if (r != SEAL_OK) return r;
  r = seal_open_stream(in, out, key, err, errlen);
  r = seal_close_pair(r, in, out, out_path, err, errlen);
  if (r != SEAL_OK) unlink(out_path); /* made above: a part of the plain text, never another's file */
  return r;
}

/* Memory as streams (fmemopen, open_memstream), so a buffer is sealed by the same code as
 * a file. The output buffer is wiped and freed on failure. */
static seal_result seal_buffer_with(int opening, const unsigned char *in, size_t inlen, unsigned char **out,
                                    size_t *outlen, const unsigned char *key, const seal_params *p, char *err,
                                    size_t errlen) {
  *out = NULL;
  *outlen = 0;
  if (inlen == 0 || inlen > SEAL_BUFMAX) {
    seal_err(err, errlen, "the text must be 1 to %d bytes (got %zu)", SEAL_BUFMAX, inlen);
    return SEAL_EPARAMS;
  }
  char *buf = NULL;
  size_t size = 0;
  FILE *fin = fmemopen((void *)in, inlen, "rb"), *fout = fin ? open_memstream(&buf, &size) : NULL;
  if (!fin || !fout) {
    if (fin) fclose(fin);
    seal_err(err, errlen, "out of memory");
    return SEAL_ENOMEM;
  }
  seal_result r = opening ? seal_open_stream(fin, fout, key, err, errlen) : seal_stream(fin, fout, key, p, err, errlen);
  fclose(fin);
  if (fclose(fout) != 0 && r == SEAL_OK) r = SEAL_ENOMEM;
  if (r != SEAL_OK) {
    if (buf) sodium_memzero(buf, size);
    free(buf);
    return r;
  }
  *out = (unsigned char *)buf;
  *outlen = size;
  return SEAL_OK;
}

seal_result seal_buffer(const unsigned char *in, size_t inlen, unsigned char **out, size_t *outlen,
                        const unsigned char *key, char *err, size_t errlen) {
  seal_params p;
  memset(&p, 0, sizeof p);
  return seal_buffer_with(0, in, inlen, out, outlen, key, &p, err, errlen);
}

seal_result seal_open_buffer(const unsigned char *in, size_t inlen, unsigned char **out, size_t *outlen,
                             const unsigned char *key, char *err, size_t errlen) {
  return seal_buffer_with(1, in, inlen, out, outlen, key, NULL, err, errlen);
}

const char *seal_code(seal_result r) {
  switch (r) {
  case SEAL_OK: return "OK";
  case SEAL_EIO: return "EIO";
  case SEAL_NOT_SEALED: return "ENOTSEALED";
  case SEAL_EPARAMS: return "EPARAMS";
  case SEAL_EKEY: return "EKEY";
  case SEAL_ETAMPERED: return "ETAMPERED";
  case SEAL_ETRUNCATED: return "ETRUNCATED";
  default: return "ENOMEM";
  }
}

/* A person's Ctrl-C (or a SIGTERM, or the terminal closing) at the prompt must not leave
 * echo off in their shell: the default action killed the process inside read(), before the
 * old mode was put back. The stop signals are blocked in this thread while the prompt waits
 * (the runtime blocks them in every other thread, so they stay pending for the process) and
 * read from a signalfd beside the terminal: no handler, so nothing is shared with one. One
 * that comes ends the prompt; once the mode is restored and the mask put back it is raised
 * again, for what handled it before: by default that ends the process as the signal would
 * have (130 for Ctrl-C); a handler of the command's own (libuv's) sees it later, and the
 * prompt says it was interrupted (EINTR). */
int seal_read_tty(const char *prompt, char *buf, size_t cap) {
  int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    errno = ENXIO;
    return -1;
  }
  sigset_t stops, old;
  sigemptyset(&stops);
  sigaddset(&stops, SIGINT);
  sigaddset(&stops, SIGTERM);
  sigaddset(&stops, SIGHUP);
  int masked = pthread_sigmask(SIG_BLOCK, &stops, &old) == 0;
  int sfd = masked ? signalfd(-1, &stops, SFD_CLOEXEC | SFD_NONBLOCK) : -1;
  struct termios was, quiet;
  int have = tcgetattr(fd, &was) == 0;
  if (have) {
    quiet = was;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  if (write(fd, prompt, strlen(prompt)) < 0) { /* the prompt is a courtesy */
  }
  size_t n = 0;
  int rc = 0, sig = 0;
  for (;;) {
    struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    int pr = poll(pf, sfd >= 0 ? 2 : 1, -1);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) break;
    if (sfd >= 0 && (pf[1].revents & POLLIN)) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        sig = (int)si.ssi_signo;
        break;
      }
    }
    if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || c == '\n') break;
    if (n + 1 >= cap) {
      rc = -1;
      break;
    }
    buf[n++] = c;
  }
  buf[n] = '\0';
  if (have) tcsetattr(fd, TCSAFLUSH, &was);
  if (write(fd, "\n", 1) < 0) {
  }
  if (sfd >= 0) close(sfd);
  if (masked) pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(fd);
  if (sig) {
    sodium_memzero(buf, cap);
    raise(sig);
    errno = EINTR;
    return -1;
  }
  if (rc != 0) {
    sodium_memzero(buf, cap);
    errno = E2BIG;
  }
  return rc;
}
