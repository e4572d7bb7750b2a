/* memcap.c: counting allocator with a ceiling (see memcap.h). Plain C, no Lua types. */
#include "memcap.h"

#include <stdint.h>
#include <stdlib.h>

/* Each block starts with its owner, in a header that keeps the block's alignment. */
typedef union memcap_hdr {
  memcap_owner *owner;
  max_align_t align;
} memcap_hdr;

#define MEMCAP_HDR sizeof(memcap_hdr)

void memcap_init(memcap *m) {
  m->used = 0;
  m->peak = 0;
  m->limit = SIZE_MAX;
  m->denied = 0;
  m->settled = 0;
  m->grace = 0;
  m->over = 0;
  m->retry_ptr = NULL;
  m->retry_old = 0;
  m->retry_new = 0;
  m->owner = NULL;
  m->owned = 0;
}

static void memcap_disown(memcap *m, memcap_owner *o, size_t n) {
  if (o == NULL) return;
  o->held -= n;
  o->blocks--;
  m->owned -= n;
  if (o->released && o->blocks == 0) free(o);
}

static void memcap_own(memcap *m, memcap_owner *o, size_t n) {
  if (o == NULL) return;
  o->held += n;
  o->blocks++;
  m->owned += n;
}

/* What is left of the grace once `used` has passed the ceiling. */
static size_t memcap_past(const memcap *m) {
  size_t past = m->used > m->limit ? m->used - m->limit : 0;
  return past < m->grace ? m->grace - past : 0;
}

/* The bytes a growth of `more` may not exceed: the room under the ceiling. */
static size_t memcap_room(const memcap *m) { return m->limit - (m->used < m->limit ? m->used : m->limit); }

void *memcap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  memcap *m = ud;
  /* When ptr is NULL, osize encodes the kind of object, not a size. */
  size_t old = ptr ? osize : 0;
  memcap_hdr *h = ptr ? (memcap_hdr *)ptr - 1 : NULL;
  if (nsize == 0) {
    if (h) memcap_disown(m, h->owner, old);
    free(h);
    m->used -= old;
    return NULL;
  }
  if (nsize > old && nsize - old > memcap_room(m)) {
    size_t room = memcap_room(m);
    int retry = ptr == m->retry_ptr && old == m->retry_old && nsize == m->retry_new;
    /* once past the ceiling (the script is being stopped) the rest of the grace is given
     * at once: the error's message and traceback would pay a full collection a block */
    if (!(retry || m->over) || nsize - old - room > memcap_past(m)) {
      /* Refusing is safe: Lua runs an emergency collection and retries before raising. */
      m->retry_ptr = ptr;
      m->retry_old = old;
      m->retry_new = nsize;
      m->denied++;
      return NULL;
    }
    m->over++;
  }
  if (nsize > old) { /* (the emergency collection shrinks blocks between refusal and retry) */
    m->retry_ptr = NULL;
    m->retry_new = 0;
  }
  if (nsize > SIZE_MAX - MEMCAP_HDR) return NULL;
  /* A new block through malloc: realloc(NULL, n) is malloc behind a few more checks, and
   * most of a Lua state's calls here are new blocks. */
  memcap_hdr *p = h ? realloc(h, nsize + MEMCAP_HDR) : malloc(nsize + MEMCAP_HDR);
  if (p == NULL) return NULL;
  if (h == NULL) {
    p->owner = m->owner;
    memcap_own(m, p->owner, nsize);
  } else if (nsize > old && p->owner != m->owner) {
    /* grown: the owner now is whoever grew it (a script filling a table the host made) */
    memcap_disown(m, p->owner, old);
    p->owner = m->owner;
    memcap_own(m, p->owner, nsize);
  } else if (p->owner) {
    p->owner->held = p->owner->held - old + nsize;
    m->owned = m->owned - old + nsize;
  }
  m->used = m->used - old + nsize;
  if (m->used > m->peak) m->peak = m->used;
  return p + 1;
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

memcap_owner *memcap_owner_new(void) { return calloc(1, sizeof(memcap_owner)); }

void memcap_owner_release(memcap_owner *o) {
  if (o == NULL) return;
  o->released = 1;
  if (o->blocks == 0) free(o);
}
