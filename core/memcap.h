/* memcap.h: a counting allocator for a Lua state, with an adjustable ceiling.
 * Used by the runtime so a script's memory bomb fails its own allocation
 * (Lua turns that into an ordinary "not enough memory" error) instead of the process.
 * Each block also records its owner (memcap_owner): the script whose call made it, or
 * none, so that what a script still holds after its calls is known at any time without
 * walking the heap (scriptenv.lua checks it after every call). */
#ifndef ORKET_MEMCAP_H
#define ORKET_MEMCAP_H

#include <stddef.h>

/* The blocks made while it was memcap.owner (or grown then): a script's. */
typedef struct memcap_owner {
  size_t held;   /* bytes of its blocks still allocated */
  size_t blocks; /* how many */
  int released;  /* its holder is gone: freed with its last block (memcap_owner_release) */
} memcap_owner;

typedef struct memcap {
  size_t used;   /* bytes currently held by the state */
  size_t peak;   /* highest `used` seen */
  size_t limit;  /* allocations that would take `used` above this fail; SIZE_MAX = none */
  size_t denied; /* allocations refused so far (for tests and diagnostics) */
  size_t settled; /* `used` right after the last full collection a budgeted call asked for (0: none) */
  /* Lua retries a refused allocation once, after an emergency full collection. The retry
   * of the last refusal may take `used` up to `grace` bytes above the ceiling: it succeeds
   * and counts in `over`, so that the script's budget stops it at its next instruction
   * or call, where the error can name the script's line (a refusal raises Lua's bare
   * "not enough memory", before any message handler). */
  size_t grace;
  size_t over;
  void *retry_ptr; /* the last refused growth: block, old and new size */
  size_t retry_old, retry_new;
  memcap_owner *owner; /* the owner of the blocks made now; NULL: the host's */
  size_t owned;        /* bytes of all owned blocks */
} memcap;

/* Initialise with no ceiling. */
void memcap_init(memcap *m);

/* A lua_Alloc: `ud` is a memcap*. Frees always succeed; shrinking always succeeds. A block
 * made, or grown, while m->owner is set is that owner's. */
void *memcap_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Sets a ceiling `extra` bytes above what is in use now and returns the previous ceiling,
 * to be handed back to memcap_restore. The ceiling never rises above an outer one. */
size_t memcap_push(memcap *m, size_t extra);
void memcap_restore(memcap *m, size_t previous);

/* The bytes left under the ceiling (0 once `used` has reached it), or SIZE_MAX when there is
 * none: what memcap_push(m, memcap_headroom(m)) sets back after the ceiling was lifted. */
size_t memcap_headroom(const memcap *m);

/* A new owner (NULL when out of memory), and its release by its holder: freed now when it
 * owns no block, else when its last block is freed. */
memcap_owner *memcap_owner_new(void);
void memcap_owner_release(memcap_owner *o);

#endif
