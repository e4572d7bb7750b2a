/* proxymemo.c: the proxy's memory of decided requests (see proxymemo.h). An entry keeps its
 * request as one block of NUL-ended strings (method, path, remote, then each header's name
 * and value) and a hash of it, so a lookup compares hashes first and bytes only on a match. */
#include "proxymemo.h"

#include <stdlib.h>
#include <string.h>

typedef struct pm_entry {
  char *bytes; /* NULL: a free slot */
  size_t len;
  uint64_t hash;
  int64_t own, dv;
  double expires_ms;
  uint64_t born; /* the put's order: the oldest is replaced when full */
  void *val;
} pm_entry;

struct proxymemo {
  pm_entry e[PROXYMEMO_MAX];
  size_t count;
  uint64_t puts;
  proxymemo_free_fn free_val;
  void *ud;
};

proxymemo *proxymemo_new(proxymemo_free_fn free_val, void *ud) {
  proxymemo *m = calloc(1, sizeof *m);
  if (m == NULL) return NULL;
  m->free_val = free_val;
  m->ud = ud;
  return m;
}

static void pm_drop(proxymemo *m, pm_entry *e) {
  if (e->bytes == NULL) return;
  explicit_bzero(e->bytes, e->len); /* its header lines may hold a credential */
  free(e->bytes);
  e->bytes = NULL;
  void *val = e->val;
  e->val = NULL;
  m->count--;
  if (m->free_val) m->free_val(val, m->ud); /* last: it may not look at the memory again */
}

size_t proxymemo_sweep(proxymemo *m, double now_ms, proxymemo_stamp_fn stamp, void *ud) {
  if (m->count == 0) return 0;
  int64_t own = 0, dv = 0;
  int known = stamp(ud, &own, &dv) == 0;
  for (size_t i = 0; i < PROXYMEMO_MAX && m->count; i++) {
    pm_entry *e = &m->e[i];
    if (e->bytes && ((known && (e->own != own || e->dv != dv)) || !(now_ms < e->expires_ms))) pm_drop(m, e);
  }
  return m->count;
}

void proxymemo_clear(proxymemo *m) {
  for (size_t i = 0; i < PROXYMEMO_MAX; i++) pm_drop(m, &m->e[i]);
}

void proxymemo_free(proxymemo *m) {
  if (m == NULL) return;
  proxymemo_clear(m);
  free(m);
}

size_t proxymemo_count(const proxymemo *m) { return m->count; }

/* FNV-1a over a string and its NUL, continued from h */
static uint64_t pm_hash(uint64_t h, const char *s) {
  for (;; s++) {
    h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    if (*s == '\0') return h;
  }
}

/* The request's block's length (over `cap`: cap + 1) and hash. */
static size_t pm_measure(const proxymemo_key *k, size_t cap, uint64_t *hash) {
  uint64_t h = 0xcbf29ce484222325ULL;
  size_t len = strlen(k->method) + strlen(k->path) + strlen(k->remote) + 3;
  h = pm_hash(pm_hash(pm_hash(h, k->method), k->path), k->remote);
  const char *name, *value;
  for (size_t i = 0; k->header_at(k->req, i, &name, &value) == 0; i++) {
    len += strlen(name) + strlen(value) + 2;
    if (len > cap) return cap + 1;
    h = pm_hash(pm_hash(h, name), value);
  }
  *hash = h;
  return len;
}

/* s and its NUL at *at in the block of len, advancing: 1 when equal */
static int pm_same(const char *block, size_t len, size_t *at, const char *s) {
  size_t n = strlen(s) + 1;
  if (len - *at < n || memcmp(block + *at, s, n) != 0) return 0;
  *at += n;
  return 1;
}

static int pm_matches(const pm_entry *e, const proxymemo_key *k) {
  size_t at = 0;
  if (!pm_same(e->bytes, e->len, &at, k->method) || !pm_same(e->bytes, e->len, &at, k->path) ||
      !pm_same(e->bytes, e->len, &at, k->remote))
    return 0;
  const char *name, *value;
  for (size_t i = 0; k->header_at(k->req, i, &name, &value) == 0; i++)
    if (!pm_same(e->bytes, e->len, &at, name) || !pm_same(e->bytes, e->len, &at, value)) return 0;
  return at == e->len; /* no header remembered beyond the request's */
}

static pm_entry *pm_find(proxymemo *m, const proxymemo_key *k, uint64_t hash, size_t len) {
  for (size_t i = 0; i < PROXYMEMO_MAX && m->count; i++) {
    pm_entry *e = &m->e[i];
    if (e->bytes && e->hash == hash && e->len == len && pm_matches(e, k)) return e;
  }
  return NULL;
}

static void pm_put_string(char *block, size_t *at, const char *s) {
  size_t n = strlen(s) + 1;
  memcpy(block + *at, s, n);
  *at += n;
}

int proxymemo_put(proxymemo *m, const proxymemo_key *k, int64_t own, int64_t dv, double now_ms, double expires_ms,
                  void *val) {
  for (size_t i = 0; i < PROXYMEMO_MAX && m->count; i++) {
    pm_entry *e = &m->e[i];
    if (e->bytes && (e->own != own || e->dv != dv || !(now_ms < e->expires_ms))) pm_drop(m, e);
  }
  uint64_t hash = 0;
  size_t len = pm_measure(k, PROXYMEMO_MAX_BYTES, &hash);
  if (len > PROXYMEMO_MAX_BYTES) return -1;
  char *block = malloc(len);
  if (block == NULL) return -1;
  size_t at = 0;
  pm_put_string(block, &at, k->method);
  pm_put_string(block, &at, k->path);
  pm_put_string(block, &at, k->remote);
  const char *name, *value;
  for (size_t i = 0; k->header_at(k->req, i, &name, &value) == 0; i++) {
    pm_put_string(block, &at, name);
    pm_put_string(block, &at, value);
  }
  /* the same request's entry, else a free slot, else the oldest */
  pm_entry *slot = pm_find(m, k, hash, len);
  for (size_t i = 0; slot == NULL && i < PROXYMEMO_MAX; i++)
    if (m->e[i].bytes == NULL) slot = &m->e[i];
  if (slot == NULL) {
    slot = &m->e[0];
    for (size_t i = 1; i < PROXYMEMO_MAX; i++)
      if (m->e[i].born < slot->born) slot = &m->e[i];
  }
  pm_drop(m, slot);
  *slot = (pm_entry){block, len, hash, own, dv, expires_ms, ++m->puts, val};
  m->count++;
  return 0;
}

void *proxymemo_get(proxymemo *m, const proxymemo_key *k, double now_ms, proxymemo_stamp_fn stamp, void *ud) {
  if (m->count == 0) return NULL;
  uint64_t hash = 0;
  size_t len = pm_measure(k, PROXYMEMO_MAX_BYTES, &hash);
  if (len > PROXYMEMO_MAX_BYTES) return NULL;
  pm_entry *e = pm_find(m, k, hash, len);
  if (e == NULL) return NULL;
  int64_t own, dv;
  if (stamp(ud, &own, &dv) != 0) return NULL;
  if (e->own != own || e->dv != dv || !(now_ms < e->expires_ms)) {
    pm_drop(m, e);
    return NULL;
  }
  return e->val;
}
