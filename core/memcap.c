/* memcap.c: counting allocator with a ceiling (see memcap.h). Plain C, no Lua types. */
#include "memcap.h"

#include <stdint.h>
#include <stdlib.h>

void memcap_init(memcap *m) {
  m->used = 0;
  m->peak = 0;
  m->limit = SIZE_MAX;
  m->denied = 0;
  m->settled = 0;
}

void *memcap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  memcap *m = ud;
  /* When ptr is NULL, osize encodes the kind of object, not a size. */
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    m->used -= old;
    return NULL;
  }
  if (nsize > old && nsize - old > m->limit - (m->used < m->limit ? m->used : m->limit)) {
    /* Refusing is safe: Lua runs an emergency collection and retries before raising. */
    m->denied++;
    return NULL;
  }
  /* A new block through malloc: realloc(NULL, n) is malloc behind a few more checks, and
   * most of a Lua state's calls here are new blocks. */
  void *p = ptr ? realloc(ptr, nsize) : malloc(nsize);
  if (p == NULL) return NULL;
  m->used = m->used - old + nsize;
  if (m->used > m->peak) m->peak = m->used;
  return p;
}

size_t memcap_push(memcap *m, size_t extra) {
  size_t previous = m->limit;
  size_t want = (extra > SIZE_MAX - m->used) ? SIZE_MAX : m->used + extra;
  if (want < m->limit) m->limit = want;
  return previous;
}

void memcap_restore(memcap *m, size_t previous) { m->limit = previous; }

size_t memcap_headroom(const memcap *m) {
  if (m->limit == SIZE_MAX) return SIZE_MAX;
  return m->used < m->limit ? m->limit - m->used : 0;
}
