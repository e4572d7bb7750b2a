/* ratelimit.h: token buckets by name (a client address, a key id), the one implementation
 * of orket serve's rate limits kept in memory (docs/serve.md, "Limits"). Each bucket holds
 * up to burst tokens and gains rate a second; a request takes one. The table is bounded:
 * past max names, the full buckets (idle clients) are forgotten, and if none is full the
 * least recently seen half goes, so a flood of addresses cannot grow it without end. Pure
 * C, knows nothing of Lua; times are milliseconds of one monotonic clock, given by the
 * caller (the loop's). */
#ifndef ORKET_RATELIMIT_H
#define ORKET_RATELIMIT_H

#include <stddef.h>

typedef struct ratelimit ratelimit;

/* A limiter: rate > 0 tokens a second, burst >= 1, at most max names (>= 1). NULL when an
 * argument is out of range or out of memory. */
ratelimit *ratelimit_new(double rate, double burst, size_t max);
void ratelimit_free(ratelimit *rl);

/* Takes a token from name's bucket (n bytes, any bytes) at now_ms: 1 when taken; 0 when
 * empty, *retry_s then the whole seconds (>= 1) until it has one again; -1 out of memory
 * (nothing taken). */
int ratelimit_take(ratelimit *rl, const char *name, size_t n, double now_ms, long *retry_s);
/* Whether a take would fail, without taking: 0 no (an unknown name has a full bucket),
 * else the whole seconds (>= 1) to wait. */
long ratelimit_empty(ratelimit *rl, const char *name, size_t n, double now_ms);
/* The names held now. */
size_t ratelimit_count(const ratelimit *rl);
/* The whole seconds (>= 1) until a bucket of tokens (< 1) gaining rate a second has one:
 * the same answer for buckets kept elsewhere (the store's). */
long ratelimit_retry_after(double tokens, double rate);

#endif
