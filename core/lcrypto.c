/* lcrypto.c: Lua module `orket.c.crypto`, the few primitives Orket needs from libsodium:
 * content hashes (BLAKE2b) for journal and resume identities, random ids and bytes from
 * the kernel's generator, constant-time comparison for secrets and signatures, webhook
 * signatures (hmac.h) and local accounts' password hashes (password.h), made and checked
 * on the loop's thread pool (pwcheck.h) while the calling task waits. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <lauxlib.h>
#include <lua.h>

#include "await.h"
#include "hmac.h"
#include "modules.h"
#include "password.h"
#include "pwcheck.h"

#define CRY_MAX_HASH crypto_generichash_BYTES_MAX

static void cry_hex(lua_State *L, const unsigned char *bin, size_t n) {
  char hex[2 * CRY_MAX_HASH + 1];
  sodium_bin2hex(hex, sizeof hex, bin, n);
  lua_pushlstring(L, hex, 2 * n);
}

/* hash(data [, bytes=32 [, key]]) -> lowercase hex BLAKE2b of data; with a key, a MAC */
static int cry_hash(lua_State *L) {
  size_t len, klen = 0;
  const char *data = luaL_checklstring(L, 1, &len);
  lua_Integer n = luaL_optinteger(L, 2, 32);
  const char *key = luaL_optlstring(L, 3, NULL, &klen);
  luaL_argcheck(L, n >= crypto_generichash_BYTES_MIN && n <= crypto_generichash_BYTES_MAX, 2,
                "must be between 16 and 64");
  luaL_argcheck(L, key == NULL || (klen >= crypto_generichash_KEYBYTES_MIN &&
                                   klen <= crypto_generichash_KEYBYTES_MAX), 3,
                "key must be 16 to 64 bytes");
  unsigned char out[CRY_MAX_HASH];
  crypto_generichash(out, (size_t)n, (const unsigned char *)data, len,
                     (const unsigned char *)key, klen);
  cry_hex(L, out, (size_t)n);
  return 1;
}

/* random_bytes(n) -> n bytes from the kernel's generator (n <= 4096) */
static int cry_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0 && n <= 4096, 1, "must be between 0 and 4096");
  luaL_Buffer b;
  unsigned char *p = (unsigned char *)luaL_buffinitsize(L, &b, (size_t)n);
  randombytes_buf(p, (size_t)n);
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

/* random_id([bytes=16]) -> lowercase hex of that many random bytes */
static int cry_random_id(lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 1, 16);
  luaL_argcheck(L, n >= 4 && n <= CRY_MAX_HASH, 1, "must be between 4 and 64");
  unsigned char bin[CRY_MAX_HASH];
  randombytes_buf(bin, (size_t)n);
  cry_hex(L, bin, (size_t)n);
  return 1;
}

/* random_uniform(n) -> an integer in [0, n), without modulo bias */
static int cry_random_uniform(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 0xffffffffLL, 1, "must be between 1 and 2^32-1");
  lua_pushinteger(L, (lua_Integer)randombytes_uniform((uint32_t)n));
  return 1;
}

/* equal(a, b) -> whether two strings are equal, in time that depends only on length */
static int cry_equal(lua_State *L) {
  size_t la, lb;
  const char *a = luaL_checklstring(L, 1, &la);
  const char *b = luaL_checklstring(L, 2, &lb);
  lua_pushboolean(L, la == lb && sodium_memcmp(a, b, la) == 0);
  return 1;
}

/* base64_decode(text) -> bytes | nil, msg, "EINVAL": standard base64 with padding (what a
 * WebDriver screenshot is); blanks and line breaks are skipped */
static int cry_base64_decode(lua_State *L) {
  size_t len, out_len = 0;
  const char *text = luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  unsigned char *p = (unsigned char *)luaL_buffinitsize(L, &b, len / 4 * 3 + 3);
  if (sodium_base642bin(p, len / 4 * 3 + 3, text, len, " \t\r\n", &out_len, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "base64_decode: not valid base64");
    lua_pushliteral(L, "EINVAL");
    return 3;
  }
  luaL_pushresultsize(&b, out_len);
  return 1;
}

/* base64_encode(bytes) -> standard base64 with padding (what an HTTP Basic credential is) */
static int cry_base64_encode(lua_State *L) {
  size_t len;
  const char *bytes = luaL_checklstring(L, 1, &len);
  if (len > ((size_t)1 << 30)) return luaL_argerror(L, 1, "longer than 1 GiB");
  size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n);
  sodium_bin2base64(p, n, (const unsigned char *)bytes, len, sodium_base64_VARIANT_ORIGINAL);
  luaL_pushresultsize(&b, n - 1); /* less the NUL it ends with */
  return 1;
}

/* ---- webhook signatures (hmac.h) ---- */

/* hmac_sha256(key, data) -> lowercase hex HMAC-SHA256 of data under key (any length) */
static int cry_hmac_sha256(lua_State *L) {
  size_t klen, dlen;
  const char *key = luaL_checklstring(L, 1, &klen);
  const char *data = luaL_checklstring(L, 2, &dlen);
  char hex[HMAC_SHA256_HEX + 1];
  hmac_sha256_hex(key, klen, data, dlen, hex);
  lua_pushlstring(L, hex, HMAC_SHA256_HEX);
  return 1;
}

/* verify_webhook(secret|nil, raw_body, signature|nil) -> true | nil, msg, CODE
 * signature: "sha256=<hex>" (X-Hub-Signature-256) or "<hex>" (X-Gitea-Signature,
 * X-Forgejo-Signature); CODE NO_SECRET, BAD_SIGNATURE_FORMAT or BAD_SIGNATURE */
static int cry_verify_webhook(lua_State *L) {
  size_t slen = 0, blen, glen = 0;
  const char *secret = luaL_optlstring(L, 1, NULL, &slen);
  const char *body = luaL_checklstring(L, 2, &blen);
  const char *sig = luaL_optlstring(L, 3, NULL, &glen);
  hmac_sig_result r = hmac_verify_signature(secret, slen, body, blen, sig, glen);
  if (r == HMAC_SIG_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, hmac_sig_message(r));
  lua_pushstring(L, hmac_sig_code(r));
  return 3;
}

/* ---- local accounts' passwords (password.h, on the thread pool: pwcheck.h) ---- */

static const char CRY_PWCHECK = 'p'; /* registry key: the state's queue of password jobs */

static int cry_pwq_gc(lua_State *L) {
  pwcheck **pq = lua_touserdata(L, 1);
  pwcheck_close(*pq); /* a job still running frees it when it ends, after the state */
  *pq = NULL;
  return 0;
}

/* the state's queue (NULL when none was made yet and make is 0) */
static pwcheck *cry_pwq(lua_State *L, int make) {
  int t = lua_rawgetp(L, LUA_REGISTRYINDEX, &CRY_PWCHECK);
  pwcheck *q = t == LUA_TUSERDATA ? *(pwcheck **)lua_touserdata(L, -1) : NULL;
  lua_pop(L, 1);
  if (q != NULL || !make) return q;
  pwcheck **pq = lua_newuserdatauv(L, sizeof *pq, 0);
  *pq = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, cry_pwq_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  *pq = pwcheck_new(&rt_get(L)->loop, PWCHECK_RUNNING);
  if (*pq == NULL) luaL_error(L, "password check: out of memory");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &CRY_PWCHECK);
  return *pq;
}

/* One hash or check: the job and a copy of the password, wiped when freed. */
typedef struct cry_pw {
  rt_wait w; /* first: the cancel callback gets this address */
  pwjob job;
  int cancelled;
  size_t passlen;
  char pass[];
} cry_pw;

static void cry_pw_free(cry_pw *p) {
  sodium_memzero(p->pass, p->passlen);
  free(p);
}

static int cry_pw_results(lua_State *L, void *ud) {
  const pwjob *j = &((cry_pw *)ud)->job;
  if (j->op == PWJOB_VERIFY) {
    lua_pushboolean(L, j->rc == 1);
    return 1;
  }
  if (j->rc == 0) {
    lua_pushstring(L, j->hash);
    return 1;
  }
  lua_pushnil(L);
  lua_pushfstring(L, "password_hash: Argon2id could not get the %d MiB of memory it needs (raise the process's "
                  "address space, ulimit -v, or the container's memory limit)",
                  (int)(crypto_pwhash_MEMLIMIT_INTERACTIVE / (1024 * 1024)));
  lua_pushliteral(L, "ENOMEM");
  return 3;
}

/* on the loop's thread, when the job ended */
static void cry_pw_done(pwjob *j) {
  cry_pw *p = (cry_pw *)((char *)j - offsetof(cry_pw, job));
  /* a queue closed with its Lua state (a check started while the runtime closed, after
   * every wait was cancelled) has no task to resume */
  if (!p->cancelled && !pwcheck_closed(j->q)) rt_wait_finish(&p->w, cry_pw_results, p);
  cry_pw_free(p);
}

/* A waiting job leaves the queue; a running one cannot be stopped: it ends on its thread
 * and cry_pw_done frees it without touching the Lua state. */
static void cry_pw_cancel(rt_wait *w) {
  cry_pw *p = (cry_pw *)w;
  if (pwcheck_cancel(&p->job))
    cry_pw_free(p);
  else
    p->cancelled = 1;
}

/* Queues the job and waits for it. hash is the one to check (VERIFY) or NULL (HASH). */
static int cry_pw_wait(lua_State *L, int op, const char *pass, size_t len, const char *hash, size_t hlen) {
  rt_wait_require(L); /* before the allocations, so that its error leaks nothing */
  pwcheck *q = cry_pwq(L, 1);
  cry_pw *p = calloc(1, sizeof *p + len + 1);
  if (p == NULL) return luaL_error(L, "password check: out of memory");
  memcpy(p->pass, pass, len);
  p->passlen = len;
  p->job.op = op;
  p->job.pass = p->pass;
  p->job.passlen = len;
  p->job.done = cry_pw_done;
  /* a longer one is no hash: hashlen 0 is checked as no match */
  if (hash != NULL && hlen < sizeof p->job.hash) {
    memcpy(p->job.hash, hash, hlen);
    p->job.hashlen = hlen;
  }
  rt_wait_begin(L, &p->w, cry_pw_cancel); /* before the job can end: its done runs from the loop */
  int rc = pwcheck_submit(q, &p->job);
  if (rc != 0) { /* never started: the wait is let go, and cry_pw_cancel frees the job */
    lua_pushthread(L);
    rt_wait_cancel_thread(L, -1);
    lua_pop(L, 1);
    return luaL_error(L, "password check: cannot start: %s", uv_strerror(rc));
  }
  return rt_wait_yield(L);
}

/* password_hash(pass) -> the encoded Argon2id hash | nil, msg, "ENOMEM". Waits (call it in
 * a task) while the pool hashes. */
static int cry_password_hash(lua_State *L) {
  size_t len;
  const char *pass = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len > 0 && len <= PASSWORD_MAXLEN, 1, "a password must be 1 to 4096 bytes");
  return cry_pw_wait(L, PWJOB_HASH, pass, len, NULL, 0);
}

/* password_verify(hash, pass) -> whether pass matches hash (false for a hash that is not
 * one). Waits (call it in a task) while the pool checks. */
static int cry_password_verify(lua_State *L) {
  size_t hlen, len;
  const char *hash = luaL_checklstring(L, 1, &hlen);
  const char *pass = luaL_checklstring(L, 2, &len);
  if (len > PASSWORD_MAXLEN) { /* too long to be one: its cost is not the sender's to set */
    lua_pushboolean(L, 0);
    return 1;
  }
  return cry_pw_wait(L, PWJOB_VERIFY, pass, len, hash, hlen);
}

/* password_checks() -> running, waiting: the password jobs of this state */
static int cry_password_checks(lua_State *L) {
  int running = 0, waiting = 0;
  pwcheck *q = cry_pwq(L, 0);
  if (q != NULL) pwcheck_counts(q, &running, &waiting);
  lua_pushinteger(L, running);
  lua_pushinteger(L, waiting);
  return 2;
}

static const luaL_Reg cry_funcs[] = {
    {"hash", cry_hash},
    {"random_bytes", cry_random_bytes},
    {"random_id", cry_random_id},
    {"random_uniform", cry_random_uniform},
    {"equal", cry_equal},
    {"base64_decode", cry_base64_decode},
    {"base64_encode", cry_base64_encode},
    {"hmac_sha256", cry_hmac_sha256},
    {"verify_webhook", cry_verify_webhook},
    {"password_hash", cry_password_hash},
    {"password_verify", cry_password_verify},
    {"password_checks", cry_password_checks},
    {NULL, NULL},
};

int luaopen_orket_crypto(lua_State *L) {
  if (sodium_init() < 0) return luaL_error(L, "crypto: libsodium failed to initialise");
  luaL_newlib(L, cry_funcs);
  return 1;
}
