/* lseal.c: Lua module `orket.c.seal`, encrypted backup files (seal.h): seal and open a file
 * under a 32-byte key or a passphrase (Argon2id), tell a sealed file, and read a passphrase
 * from the terminal with echo off; seal and open a short text in memory (a secret). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <lauxlib.h>
#include <lua.h>

#include "modules.h"
#include "seal.h"

#define SEA_PASSMAX 1024

static int sea_fail(lua_State *L, const char *msg, const char *code) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushstring(L, code);
  return 3;
}

/* the key (arg 3, 32 bytes) or passphrase (arg 4) as a key for p; 0 or a pushed failure */
static int sea_key(lua_State *L, unsigned char *key, seal_params *p) {
  size_t klen = 0, plen = 0;
  const char *k = luaL_optlstring(L, 3, NULL, &klen);
  const char *pass = luaL_optlstring(L, 4, NULL, &plen);
  luaL_argcheck(L, (k == NULL) != (pass == NULL), 3, "give a key or a passphrase, not both");
  if (k) {
    luaL_argcheck(L, klen == SEAL_KEYBYTES, 3, "the key must be 32 bytes");
    if (p->kdf != SEAL_KDF_KEY) return sea_fail(L, "it was encrypted with a passphrase, not a key file", "EKEY");
    memcpy(key, k, SEAL_KEYBYTES);
    return 0;
  }
  luaL_argcheck(L, plen > 0, 4, "the passphrase is empty");
  if (p->kdf != SEAL_KDF_ARGON2ID) return sea_fail(L, "it was encrypted with a key file, not a passphrase", "EKEY");
  seal_result r = seal_derive_key(key, pass, plen, p);
  if (r == SEAL_ENOMEM) {
    /* how much, and which limit: an operator under ulimit -v (or a container's memory
     * limit) knows what to raise */
    lua_pushnil(L);
    lua_pushfstring(L, "Argon2id could not get the %d MiB of memory it needs (raise the process's address space, "
                    "ulimit -v, or the container's memory limit)", (int)(p->memlimit / (1024 * 1024)));
    lua_pushliteral(L, "ENOMEM");
    return 3;
  }
  if (r != SEAL_OK) return sea_fail(L, "the header's Argon2id limits are out of bounds", seal_code(r));
  return 0;
}

/* seal(in_path, out_path, key|nil, passphrase|nil) -> true | nil, msg, CODE */
static int sea_seal(lua_State *L) {
  const char *in = luaL_checkstring(L, 1), *out = luaL_checkstring(L, 2);
  seal_params p;
  if (lua_isnoneornil(L, 3)) seal_params_passphrase(&p);
  else memset(&p, 0, sizeof p);
  unsigned char key[SEAL_KEYBYTES];
  int n = sea_key(L, key, &p);
  if (n) return n;
  char err[512];
  seal_result r = seal_file(in, out, key, &p, err, sizeof err);
  sodium_memzero(key, sizeof key);
  if (r != SEAL_OK) return sea_fail(L, err, seal_code(r));
  lua_pushboolean(L, 1);
  return 1;
}

/* open(in_path, out_path, key|nil, passphrase|nil) -> true | nil, msg, CODE: the whole
 * stream checked, out_path holding its plain text only when true */
static int sea_open(lua_State *L) {
  const char *in = luaL_checkstring(L, 1), *out = luaL_checkstring(L, 2);
  seal_params p;
  char err[512];
  seal_result r = seal_read_params(in, &p, err, sizeof err);
  if (r != SEAL_OK) return sea_fail(L, err, seal_code(r));
  unsigned char key[SEAL_KEYBYTES];
  int n = sea_key(L, key, &p);
  if (n) return n;
  r = seal_open_file(in, out, key, err, sizeof err);
  sodium_memzero(key, sizeof key);
  if (r != SEAL_OK) return sea_fail(L, err, seal_code(r));
  lua_pushboolean(L, 1);
  return 1;
}

/* kind(path) -> "key" | "passphrase" | false (not sealed) | nil, msg, CODE */
static int sea_kind(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  seal_params p;
  char err[512];
  seal_result r = seal_read_params(path, &p, err, sizeof err);
  if (r == SEAL_NOT_SEALED) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (r != SEAL_OK) return sea_fail(L, err, seal_code(r));
  lua_pushstring(L, p.kdf == SEAL_KDF_KEY ? "key" : "passphrase");
  return 1;
}

/* the 32-byte key at arg 2 */
static const unsigned char *sea_check_key(lua_State *L) {
  size_t klen;
  const char *k = luaL_checklstring(L, 2, &klen);
  luaL_argcheck(L, klen == SEAL_KEYBYTES, 2, "the key must be 32 bytes");
  return (const unsigned char *)k;
}

/* seal_string(text, key) / open_string(sealed, key) -> bytes | nil, msg, CODE: a short
 * text (a secret) sealed in memory in the backups' format; nothing touches the disk */
static int sea_buffer(lua_State *L, int opening) {
  size_t len;
  const unsigned char *in = (const unsigned char *)luaL_checklstring(L, 1, &len);
  const unsigned char *key = sea_check_key(L);
  luaL_argcheck(L, opening || (len > 0 && len <= SEAL_BUFMAX), 1, "the text must be 1 to 262144 bytes");
  unsigned char *out;
  size_t outlen;
  char err[512];
  seal_result r = opening ? seal_open_buffer(in, len, &out, &outlen, key, err, sizeof err)
                          : seal_buffer(in, len, &out, &outlen, key, err, sizeof err);
  if (r != SEAL_OK) return sea_fail(L, err, seal_code(r));
  lua_pushlstring(L, (const char *)out, outlen);
  sodium_memzero(out, outlen);
  free(out);
  return 1;
}

static int sea_seal_string(lua_State *L) { return sea_buffer(L, 0); }
static int sea_open_string(lua_State *L) { return sea_buffer(L, 1); }

/* read_tty(prompt) -> line | nil, msg, CODE (ENOTTY: no terminal; EINTR: a stop signal came and
 * a handler of the command's own took it: by default it ends the process, echo restored) */
static int sea_read_tty(lua_State *L) {
  const char *prompt = luaL_checkstring(L, 1);
  char buf[SEA_PASSMAX];
  if (seal_read_tty(prompt, buf, sizeof buf) != 0) {
    int e = errno;
    if (e == EINTR) return sea_fail(L, "interrupted at the prompt", "EINTR");
    return sea_fail(L, e == E2BIG ? "the passphrase is longer than 1023 bytes" : "there is no terminal to ask on",
                    e == E2BIG ? "EINVAL" : "ENOTTY");
  }
  lua_pushstring(L, buf);
  sodium_memzero(buf, sizeof buf);
  return 1;
}

static const luaL_Reg sea_funcs[] = {
    {"seal", sea_seal},
    {"open", sea_open},
    {"kind", sea_kind},
    {"seal_string", sea_seal_string},
    {"open_string", sea_open_string},
    {"read_tty", sea_read_tty},
    {NULL, NULL},
};

int luaopen_orket_seal(lua_State *L) {
  if (sodium_init() < 0) return luaL_error(L, "seal: libsodium failed to initialise");
  luaL_newlib(L, sea_funcs);
  return 1;
}
