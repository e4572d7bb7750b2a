/* ljose.c: Lua module `orket.c.jose`, the binding of jose.c (JWS checked against a JWK with
 * libcjose, loaded on first use). Expected failures return nil, message, code: "EINVAL" for
 * a token or key that cannot be read, "EAUTH" for a refused algorithm or signature. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "jose.h"
#include "modules.h"

/* libcjose's table, the first upvalue of every function: loaded when one is first called */
static const joseapi *lj_api(lua_State *L) {
  joseapi *api = lua_touserdata(L, lua_upvalueindex(1));
  if (api->lib == NULL) {
    char err[512];
    if (joseapi_open(api, err, sizeof err) != 0) luaL_error(L, "%s", err);
  }
  return api;
}

static int lj_fail(lua_State *L, int rc, const char *err) {
  lua_pushnil(L);
  lua_pushstring(L, err);
  lua_pushstring(L, rc == JOSE_REFUSED ? "EAUTH" : "EINVAL");
  return 3;
}

/* pushes the malloc'd s and frees it, or fails with err */
static int lj_push_owned(lua_State *L, char *s, const char *err) {
  if (s == NULL) return lj_fail(L, JOSE_MALFORMED, err);
  lua_pushstring(L, s);
  free(s);
  return 1;
}

/* peek(token) -> {alg=, kid=} | nil, msg, code: the protected header, alg checked */
static int lj_peek(lua_State *L) {
  size_t len;
  const char *tok = luaL_checklstring(L, 1, &len);
  const joseapi *api = lj_api(L);
  char alg[16], kid[256], err[256];
  int rc = jose_peek(api, tok, len, alg, sizeof alg, kid, sizeof kid, err, sizeof err);
  if (rc != JOSE_OK) return lj_fail(L, rc, err);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, alg);
  lua_setfield(L, -2, "alg");
  lua_pushstring(L, kid);
  lua_setfield(L, -2, "kid");
  return 1;
}

/* verify(jwk_json, token, alg) -> payload | nil, msg, code */
static int lj_verify(lua_State *L) {
  size_t klen, tlen;
  const char *jwk = luaL_checklstring(L, 1, &klen);
  const char *tok = luaL_checklstring(L, 2, &tlen);
  const char *alg = luaL_checkstring(L, 3);
  const joseapi *api = lj_api(L);
  char err[256], *payload = NULL;
  size_t plen = 0;
  int rc = jose_verify(api, jwk, klen, tok, tlen, alg, &payload, &plen, err, sizeof err);
  if (rc != JOSE_OK) return lj_fail(L, rc, err);
  lua_pushlstring(L, payload, plen);
  free(payload);
  return 1;
}

/* sign(jwk_json, alg, kid|nil, payload) -> compact token | nil, msg, "EINVAL" */
static int lj_sign(lua_State *L) {
  size_t klen, plen;
  const char *jwk = luaL_checklstring(L, 1, &klen);
  const char *alg = luaL_checkstring(L, 2);
  const char *kid = luaL_optstring(L, 3, NULL);
  const char *payload = luaL_checklstring(L, 4, &plen);
  const joseapi *api = lj_api(L);
  char err[256];
  return lj_push_owned(L, jose_sign(api, jwk, klen, alg, kid, payload, plen, err, sizeof err), err);
}

/* keygen("RSA" | "EC") -> private JWK JSON */
static int lj_keygen(lua_State *L) {
  static const char *const kinds[] = {"RSA", "EC", NULL};
  int k = luaL_checkoption(L, 1, NULL, kinds);
  const joseapi *api = lj_api(L);
  char err[256];
  char *s = jose_keygen(api, kinds[k], err, sizeof err);
  if (s == NULL) luaL_error(L, "%s", err);
  return lj_push_owned(L, s, err);
}

/* public(jwk_json) -> the public half as JWK JSON | nil, msg, "EINVAL" */
static int lj_public(lua_State *L) {
  size_t klen;
  const char *jwk = luaL_checklstring(L, 1, &klen);
  const joseapi *api = lj_api(L);
  char err[256];
  return lj_push_owned(L, jose_public(api, jwk, klen, err, sizeof err), err);
}

/* pkce_challenge(verifier) -> the S256 challenge (RFC 7636) */
static int lj_pkce_challenge(lua_State *L) {
  size_t len;
  const char *v = luaL_checklstring(L, 1, &len);
  const joseapi *api = lj_api(L);
  char out[64], err[256];
  if (jose_pkce_challenge(api, v, len, out, sizeof out, err, sizeof err) != 0) luaL_error(L, "%s", err);
  lua_pushstring(L, out);
  return 1;
}

/* alg_allowed(alg) -> whether tokens signed so are accepted */
static int lj_alg_allowed(lua_State *L) {
  lua_pushboolean(L, jose_alg_allowed(luaL_checkstring(L, 1)));
  return 1;
}

static const luaL_Reg lj_funcs[] = {
    {"peek", lj_peek},
    {"verify", lj_verify},
    {"sign", lj_sign},
    {"keygen", lj_keygen},
    {"public", lj_public},
    {"pkce_challenge", lj_pkce_challenge},
    {NULL, NULL},
};

int luaopen_orket_jose(lua_State *L) {
  luaL_newlibtable(L, lj_funcs);
  joseapi *api = lua_newuserdatauv(L, sizeof *api, 0);
  memset(api, 0, sizeof *api);
  luaL_setfuncs(L, lj_funcs, 1);
  lua_pushcfunction(L, lj_alg_allowed);
  lua_setfield(L, -2, "alg_allowed");
  return 1;
}
