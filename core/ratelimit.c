/* ratelimit.c: token buckets by name (see ratelimit.h), in an open-addressing table
 * (linear probing, at most half full). Names are never removed one by one: a prune makes
 * the table anew from the buckets it keeps, so no tombstones are needed. */
#include "ratelimit.h"

#include <math.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct rl_bucket {
  char *name; /* NULL: a free slot */
  size_t len;
  uint64_t hash;
  double tokens, at, seen;
} rl_bucket;

struct ratelimit {
  double rate, burst;
  size_t max;
  rl_bucket *slots;
  size_t cap, n; /* cap a power of two */
  unsigned char key[crypto_shorthash_KEYBYTES];
};

/* Keyed (SipHash, a key per limiter): the names are clients' addresses, and with a hash
 * anyone can compute, one with many addresses (an IPv6 /64) could pick names that all land
 * in one run of the table and make every lookup a long walk. */
static uint64_t rl_hash(const ratelimit *rl, const char *s, size_t n) {
  unsigned char out[crypto_shorthash_BYTES];
  crypto_shorthash(out, (const unsigned char *)s, n, rl->key);
  uint64_t h;
  memcpy(&h, out, sizeof h);
  return h;
}

ratelimit *ratelimit_new(double rate, double burst, size_t max) {
  if (!(rate > 0) || !(burst >= 1) || !isfinite(rate) || !isfinite(burst) || max < 1) return NULL;
  if (sodium_init() < 0) return NULL;
  ratelimit *rl = calloc(1, sizeof *rl);
  if (rl == NULL) return NULL;
  crypto_shorthash_keygen(rl->key);
  rl->rate = rate;
  rl->burst = burst;
  rl->max = max;
  rl->cap = 16;
  rl->slots = calloc(rl->cap, sizeof *rl->slots);
  if (rl->slots == NULL) {
    free(rl);
    return NULL;
  }
  return rl;
}

void ratelimit_free(ratelimit *rl) {
  if (rl == NULL) return;
  for (size_t i = 0; i < rl->cap; i++) free(rl->slots[i].name);
  free(rl->slots);
  free(rl);
}

size_t ratelimit_count(const ratelimit *rl) { return rl->n; }

long ratelimit_retry_after(double tokens, double rate) {
  double s = ceil((1 - tokens) / rate);
  if (!(s >= 1)) return 1;
  return s > 1e9 ? 1000000000L : (long)s;
}

static void rl_refill(const ratelimit *rl, rl_bucket *b, double now) {
  double t = b->tokens + (now - b->at) / 1000 * rl->rate;
  b->tokens = t < rl->burst ? t : rl->burst;
  b->at = now;
}

/* The slot holding name, or the free slot where it would go. */
static rl_bucket *rl_slot(rl_bucket *slots, size_t cap, const char *name, size_t n, uint64_t h) {
  size_t i = (size_t)h & (cap - 1);
  while (slots[i].name != NULL &&
         !(slots[i].hash == h && slots[i].len == n && memcmp(slots[i].name, name, n) == 0))
    i = (i + 1) & (cap - 1);
  return &slots[i];
}

/* Moves the buckets of slots (cap of them) that keep[i] marks into a new table of newcap
 * slots; the others are freed. 0, or -1 out of memory (nothing changed). */
static int rl_rebuild(ratelimit *rl, size_t newcap, const unsigned char *keep) {
  rl_bucket *ns = calloc(newcap, sizeof *ns);
  if (ns == NULL) return -1;
  size_t n = 0;
  for (size_t i = 0; i < rl->cap; i++) {
    rl_bucket *b = &rl->slots[i];
    if (b->name == NULL) continue;
    if (keep && !keep[i]) {
      free(b->name);
      continue;
    }
    *rl_slot(ns, newcap, b->name, b->len, b->hash) = *b;
    n++;
  }
  free(rl->slots);
  rl->slots = ns;
  rl->cap = newcap;
  rl->n = n;
  return 0;
}

typedef struct rl_seen {
  double seen;
  size_t i;
} rl_seen;

static int rl_by_seen(const void *a, const void *b) {
  double x = ((const rl_seen *)a)->seen, y = ((const rl_seen *)b)->seen;
  return x < y ? -1 : x > y;
}

/* Forgets the full buckets; when every one is busy, the least recently seen half. */
static int rl_prune(ratelimit *rl, double now) {
  unsigned char *keep = calloc(rl->cap, 1);
  if (keep == NULL) return -1;
  size_t kept = 0;
  for (size_t i = 0; i < rl->cap; i++) {
    if (rl->slots[i].name == NULL) continue;
    rl_refill(rl, &rl->slots[i], now);
    if (rl->slots[i].tokens < rl->burst) keep[i] = 1, kept++;
  }
  if (kept >= rl->max) {
    rl_seen *seen = malloc(kept * sizeof *seen);
    if (seen == NULL) {
      free(keep);
      return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < rl->cap; i++)
      if (keep[i]) seen[k++] = (rl_seen){rl->slots[i].seen, i};
    qsort(seen, kept, sizeof *seen, rl_by_seen);
    for (size_t j = 0; j < kept / 2; j++) keep[seen[j].i] = 0;
    free(seen);
  }
  int rc = rl_rebuild(rl, rl->cap, keep);
  free(keep);
  return rc;
}

/* name's bucket, made full if new, refilled to now. NULL out of memory. */
static rl_bucket *rl_bucket_of(ratelimit *rl, const char *name, size_t n, double now) {
  uint64_t h = rl_hash(rl, name, n);
  rl_bucket *b = rl_slot(rl->slots, rl->cap, name, n, h);
  if (b->name == NULL) {
    if (rl->n >= rl->max && rl_prune(rl, now) != 0) return NULL;
    if ((rl->n + 1) * 2 > rl->cap && rl_rebuild(rl, rl->cap * 2, NULL) != 0) return NULL;
    char *copy = malloc(n ? n : 1);
    if (copy == NULL) return NULL;
    if (n) memcpy(copy, name, n);
    b = rl_slot(rl->slots, rl->cap, name, n, h);
    *b = (rl_bucket){copy, n, h, rl->burst, now, now};
    rl->n++;
  }
  rl_refill(rl, b, now);
  b->seen = now;
  return b;
}

int ratelimit_take(ratelimit *rl, const char *name, size_t n, double now_ms, long *retry_s) {
  rl_bucket *b = rl_bucket_of(rl, name, n, now_ms);
  if (b == NULL) return -1;
  if (b->tokens >= 1) {
    b->tokens -= 1;
    return 1;
  }
  *retry_s = ratelimit_retry_after(b->tokens, rl->rate);
  return 0;
}

long ratelimit_empty(ratelimit *rl, const char *name, size_t n, double now_ms) {
  rl_bucket *b = rl_slot(rl->slots, rl->cap, name, n, rl_hash(rl, name, n));
  if (b->name == NULL) return 0;
  rl_refill(rl, b, now_ms);
  return b->tokens >= 1 ? 0 : ratelimit_retry_after(b->tokens, rl->rate);
}
