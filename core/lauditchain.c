/* lauditchain.c: Lua module `orket.c.auditchain`, the audit's hash chain and signed
 * checkpoints (auditchain.h). Hashes, keys and signatures travel as lowercase hex; a seed
 * (the secret) as its 32 bytes. */
#include <sodium.h>

#include <lauxlib.h>
#include <lua.h>

#include "auditchain.h"
#include "modules.h"

#define ACH_FIELDMAX 32

static void ach_hex(lua_State *L, const unsigned char *bin, size_t n) {
  char hex[2 * AUDITCHAIN_SIGBYTES + 1];
  sodium_bin2hex(hex, sizeof hex, bin, n);
  lua_pushlstring(L, hex, 2 * n);
}

/* arg i as exactly n bytes given in hex; raises naming the argument otherwise */
static void ach_unhex(lua_State *L, int i, unsigned char *bin, size_t n, const char *what) {
  size_t len, got = 0;
  const char *hex = luaL_checklstring(L, i, &len);
  if (len != 2 * n || sodium_hex2bin(bin, n, hex, len, NULL, &got, NULL) != 0 || got != n)
    luaL_argerror(L, i, lua_pushfstring(L, "%s must be %d hex digits", what, (int)(2 * n)));
}

static void ach_seed(lua_State *L, int i, unsigned char *seed) {
  size_t len;
  const char *s = luaL_checklstring(L, i, &len);
  luaL_argcheck(L, len == AUDITCHAIN_SEEDBYTES, i, "the seed must be 32 bytes");
  for (size_t k = 0; k < len; k++) seed[k] = (unsigned char)s[k];
}

/* hash(prev_hex, fields, n) -> hex: fields[1..n], each a string or nil (absent) */
static int ach_hash(lua_State *L) {
  unsigned char prev[AUDITCHAIN_HASHBYTES], out[AUDITCHAIN_HASHBYTES];
  ach_unhex(L, 1, prev, sizeof prev, "the previous hash");
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_checkinteger(L, 3);
  luaL_argcheck(L, n >= 0 && n <= ACH_FIELDMAX, 3, "must be between 0 and 32");
  auditchain_field fields[ACH_FIELDMAX];
  luaL_checkstack(L, (int)n, "auditchain.hash");
  for (lua_Integer i = 1; i <= n; i++) {
    int t = lua_geti(L, 2, i); /* stays on the stack while fields point into it */
    if (t == LUA_TNIL) {
      fields[i - 1].s = NULL;
      fields[i - 1].len = 0;
    } else if (t == LUA_TSTRING) {
      fields[i - 1].s = lua_tolstring(L, -1, &fields[i - 1].len);
    } else {
      return luaL_argerror(L, 2, lua_pushfstring(L, "field %d is a %s, not a string or nil", (int)i, luaL_typename(L, -1)));
    }
  }
  auditchain_hash(prev, fields, (size_t)n, out);
  ach_hex(L, out, sizeof out);
  return 1;
}

/* new_seed() -> 32 random bytes: a new signing key's secret */
static int ach_new_seed(lua_State *L) {
  unsigned char seed[AUDITCHAIN_SEEDBYTES];
  randombytes_buf(seed, sizeof seed);
  lua_pushlstring(L, (const char *)seed, sizeof seed);
  sodium_memzero(seed, sizeof seed);
  return 1;
}

/* public_key(seed) -> hex */
static int ach_public_key(lua_State *L) {
  unsigned char seed[AUDITCHAIN_SEEDBYTES], pk[AUDITCHAIN_PKBYTES];
  ach_seed(L, 1, seed);
  auditchain_public_key(pk, seed);
  sodium_memzero(seed, sizeof seed);
  ach_hex(L, pk, sizeof pk);
  return 1;
}

/* sign(seed, hash_hex) -> signature hex */
static int ach_sign(lua_State *L) {
  unsigned char seed[AUDITCHAIN_SEEDBYTES], hash[AUDITCHAIN_HASHBYTES], sig[AUDITCHAIN_SIGBYTES];
  ach_seed(L, 1, seed);
  ach_unhex(L, 2, hash, sizeof hash, "the hash");
  auditchain_sign(sig, hash, seed);
  sodium_memzero(seed, sizeof seed);
  ach_hex(L, sig, sizeof sig);
  return 1;
}

/* verify(pk_hex, hash_hex, sig_hex) -> boolean; a signature that is not 128 hex digits is
 * data (a changed row), so false, not an error */
static int ach_verify(lua_State *L) {
  unsigned char pk[AUDITCHAIN_PKBYTES], hash[AUDITCHAIN_HASHBYTES], sig[AUDITCHAIN_SIGBYTES];
  ach_unhex(L, 1, pk, sizeof pk, "the public key");
  ach_unhex(L, 2, hash, sizeof hash, "the hash");
  size_t len, got = 0;
  const char *hex = luaL_checklstring(L, 3, &len);
  int ok = len == 2 * sizeof sig && sodium_hex2bin(sig, sizeof sig, hex, len, NULL, &got, NULL) == 0 &&
           got == sizeof sig && auditchain_verify(sig, hash, pk);
  lua_pushboolean(L, ok);
  return 1;
}

static const luaL_Reg ach_funcs[] = {
    {"hash", ach_hash},
    {"new_seed", ach_new_seed},
    {"public_key", ach_public_key},
    {"sign", ach_sign},
    {"verify", ach_verify},
    {NULL, NULL},
};

int luaopen_orket_auditchain(lua_State *L) {
  if (sodium_init() < 0) return luaL_error(L, "auditchain: libsodium failed to initialise");
  luaL_newlib(L, ach_funcs);
  lua_pushinteger(L, 2 * AUDITCHAIN_HASHBYTES);
  lua_setfield(L, -2, "HEX");
  return 1;
}
