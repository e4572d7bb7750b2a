/* joseapi.h: libcjose's entry points (JSON Web Keys and Signatures), loaded with dlopen
 * the first time a token is checked: cjose brings OpenSSL and Jansson, which no command but
 * a server signing people in needs. <cjose/cjose.h> is used for its declarations alone. */
#ifndef ORKET_JOSEAPI_H
#define ORKET_JOSEAPI_H

#include <stddef.h>

#include <cjose/cjose.h>

/* The functions used: one list makes the table and its loader, each field typed by cjose's
 * own declaration. */
#define JOSEAPI_FUNCS(X)                                                                                      \
  X(cjose_jws_import) X(cjose_jws_verify) X(cjose_jws_get_plaintext) X(cjose_jws_get_protected)              \
  X(cjose_jws_release) X(cjose_jws_sign) X(cjose_jws_export) X(cjose_header_new) X(cjose_header_set)         \
  X(cjose_header_get) X(cjose_header_release) X(cjose_jwk_import) X(cjose_jwk_release) X(cjose_jwk_get_kty)  \
  X(cjose_jwk_to_json) X(cjose_jwk_create_RSA_random) X(cjose_jwk_create_EC_random) X(cjose_get_dealloc)   \
  X(cjose_base64url_encode)

typedef struct joseapi {
  void *lib;
#define JOSEAPI_FIELD(name) __typeof__(name) *name;
  JOSEAPI_FUNCS(JOSEAPI_FIELD)
#undef JOSEAPI_FIELD
} joseapi;

/* Loads libcjose (libcjose.so.0) and every entry point above. Returns 0, or -1 with a
 * message naming the package to install. joseapi_close unloads it (idempotent). */
int joseapi_open(joseapi *api, char *err, size_t errlen);
void joseapi_close(joseapi *api);

#endif
