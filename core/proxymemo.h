/* proxymemo.h: what orket serve decided for a proxied request, remembered so that the same
 * request again is proxied from C without the Lua side's request path (docs/serve.md, "The
 * proxy's memory"). A request is the same when its method, path, client address and every
 * header line (names and values as sent, in order) are byte for byte the remembered ones,
 * the store's stamp is the one the decision was made under (no connection wrote to the
 * store since: no key revoked, no person disabled) and the decision has not expired (the
 * sandbox's row is read again after its time, as the Lua side's own copy is). Anything else
 * misses and goes the Lua way, which may remember it anew. Bounded: PROXYMEMO_MAX entries
 * (the oldest replaced), each of at most PROXYMEMO_MAX_BYTES of request. Pure C: what is
 * remembered with an entry (val) is opaque here, freed with the function given. */
#ifndef ORKET_PROXYMEMO_H
#define ORKET_PROXYMEMO_H

#include <stddef.h>
#include <stdint.h>

#define PROXYMEMO_MAX 64
#define PROXYMEMO_MAX_BYTES 16384

typedef struct proxymemo proxymemo;

/* A request as the memory compares it: header_at(req, i, &name, &value) gives header i,
 * returning 0, or non-zero past the last (httpd_header_at's way). */
typedef struct proxymemo_key {
  const char *method, *path, *remote;
  int (*header_at)(const void *req, size_t i, const char **name, const char **value);
  const void *req;
} proxymemo_key;

typedef void (*proxymemo_free_fn)(void *val, void *ud);

/* An empty memory; free_val(val, ud) frees what an entry held when it goes. NULL out of
 * memory. */
proxymemo *proxymemo_new(proxymemo_free_fn free_val, void *ud);
void proxymemo_free(proxymemo *m);

/* Remembers val for the request k, decided under the store's stamp (own, dv), until
 * expires_ms (the loop's clock, now_ms now). An entry for the same request is replaced;
 * entries of another stamp or past their time are dropped on the way (a stamp never comes
 * back: they would never be found again, and they hold credentials). 0, or -1 (out of
 * memory, or the request larger than PROXYMEMO_MAX_BYTES): val not kept, still the
 * caller's. */
int proxymemo_put(proxymemo *m, const proxymemo_key *k, int64_t own, int64_t dv, double now_ms, double expires_ms,
                  void *val);

/* The store's stamp now: 0, or non-zero when it cannot be read. */
typedef int (*proxymemo_stamp_fn)(void *ud, int64_t *own, int64_t *dv);

/* What is remembered for the request k at now_ms, or NULL. The stamp is read (stamp(ud))
 * only once an entry for k is found: an entry expired, or of another stamp, is dropped on
 * the way; none is when the stamp cannot be read. */
void *proxymemo_get(proxymemo *m, const proxymemo_key *k, double now_ms, proxymemo_stamp_fn stamp, void *ud);

/* Drops the entries of another stamp than the store's now (stamp(ud), read once) or past
 * their time at now_ms; only the latter when the stamp cannot be read. Run on a timer, so
 * that a request's credentials are not kept for a decision that no longer holds while no
 * other request comes. -> how many entries are left */
size_t proxymemo_sweep(proxymemo *m, double now_ms, proxymemo_stamp_fn stamp, void *ud);

/* Forgets every entry. */
void proxymemo_clear(proxymemo *m);
size_t proxymemo_count(const proxymemo *m);

#endif
