/* memcap.h: a counting allocator for a Lua state, with an adjustable ceiling.
 * Used by the runtime so a script's memory bomb fails its own allocation
 * (Lua turns that into an ordinary "not enough memory" error) instead of the process. */
#ifndef ORKET_MEMCAP_H
#define ORKET_MEMCAP_H

#include <stddef.h>

typedef struct memcap {
  size_t used;   /* bytes currently held by the state */
  size_t peak;   /* highest `used` seen */
  size_t limit;  /* allocations that would take `used` above this fail; SIZE_MAX = none */
  size_t denied; /* allocations refused so far (for tests and diagnostics) */
  size_t settled; /* `used` right after the last full collection a budgeted call asked for (0: none) */
} memcap;

/* Initialise with no ceiling. */
void memcap_init(memcap *m);

/* A lua_Alloc: `ud` is a memcap*. Frees always succeed; shrinking always succeeds. */
void *memcap_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Sets a ceiling `extra` bytes above what is in use now and returns the previous ceiling,
 * to be handed back to memcap_restore. The ceiling never rises above an outer one. */
size_t memcap_push(memcap *m, size_t extra);
void memcap_restore(memcap *m, size_t previous);

/* The bytes left under the ceiling (0 once `used` has reached it), or SIZE_MAX when there is
 * none: what memcap_push(m, memcap_headroom(m)) sets back after the ceiling was lifted. */
size_t memcap_headroom(const memcap *m);

#endif
