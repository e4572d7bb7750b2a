/* memcap.c: counting allocator with a ceiling (see memcap.h). Plain C, no Lua types. */
#include "memcap.h"

#include <stdint.h>
#include <stdlib.h>

/* Lua's blocks come from mimalloc: a turn of the engine allocates about 1,350 of them, most
 * small and short-lived, and glibc's malloc spent 12% of a turn's CPU on them (docs/engine.md,
 * "The allocator"). Sanitizer builds keep libc's, whose calls the sanitizers intercept. */
#if defined(__SANITIZE_ADDRESS__)
#define MEMCAP_LIBC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define MEMCAP_LIBC 1
#endif
#endif

#ifdef MEMCAP_LIBC
#define block_malloc malloc
#define block_realloc realloc
#define block_free free
#else
#include <mimalloc.h>
#define block_malloc mi_malloc
#define block_realloc mi_realloc
#define block_free mi_free
#endif

void memcap_init(memcap *m) {
  m->used = 0;
  m->peak = 0;
  m->limit = SIZE_MAX;
  m->denied = 0;
}

void *memcap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  memcap *m = ud;
  /* When ptr is NULL, osize encodes the kind of object, not a size. */
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    block_free(ptr);
    m->used -= old;
    return NULL;
  }
  if (nsize > old && nsize - old > m->limit - (m->used < m->limit ? m->used : m->limit)) {
    /* Refusing is safe: Lua runs an emergency collection and retries before raising. */
    m->denied++;
    return NULL;
  }
  void *p = ptr ? block_realloc(ptr, nsize) : block_malloc(nsize);
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
