/* test_memcap.c: the counting allocator and its ceilings. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "memcap.h"
#include "tests.h"

TEST(test_memcap_counts) {
  memcap m;
  memcap_init(&m);
  void *p = memcap_alloc(&m, NULL, 5 /* a type tag, not a size */, 100);
  CHECK(t, p != NULL);
  CHECK(t, m.used == 100);
  p = memcap_alloc(&m, p, 100, 300);
  CHECK(t, m.used == 300 && m.peak == 300);
  p = memcap_alloc(&m, p, 300, 50);
  CHECK(t, m.used == 50 && m.peak == 300);
  CHECK(t, memcap_alloc(&m, p, 50, 0) == NULL);
  CHECK(t, m.used == 0);
}

TEST(test_memcap_ceiling) {
  memcap m;
  memcap_init(&m);
  void *a = memcap_alloc(&m, NULL, 0, 1000);
  size_t prev = memcap_push(&m, 500);
  CHECK(t, prev == SIZE_MAX);
  CHECK(t, m.limit == 1500);
  void *b = memcap_alloc(&m, NULL, 0, 400);
  CHECK(t, b != NULL);
  void *c = memcap_alloc(&m, NULL, 0, 200); /* 1600 > 1500 */
  CHECK(t, c == NULL && m.denied == 1);
  /* shrinking and freeing always work, even at the ceiling */
  b = memcap_alloc(&m, b, 400, 10);
  CHECK(t, b != NULL && m.used == 1010);
  memcap_restore(&m, prev);
  c = memcap_alloc(&m, NULL, 0, 100000);
  CHECK(t, c != NULL);
  memcap_alloc(&m, a, 1000, 0);
  memcap_alloc(&m, b, 10, 0);
  memcap_alloc(&m, c, 100000, 0);
  CHECK(t, m.used == 0);
}

TEST(test_memcap_nested) {
  memcap m;
  memcap_init(&m);
  size_t outer = memcap_push(&m, 1000);
  size_t inner = memcap_push(&m, 5000); /* never rises above the outer ceiling */
  CHECK(t, m.limit == 1000);
  memcap_restore(&m, inner);
  CHECK(t, m.limit == 1000);
  memcap_restore(&m, outer);
  CHECK(t, m.limit == SIZE_MAX);
  size_t p = memcap_push(&m, SIZE_MAX); /* no overflow */
  CHECK(t, m.limit == SIZE_MAX);
  memcap_restore(&m, p);
}

TEST(test_memcap_headroom) {
  memcap m;
  memcap_init(&m);
  CHECK(t, memcap_headroom(&m) == SIZE_MAX); /* no ceiling */
  void *a = memcap_alloc(&m, NULL, 0, 300);
  size_t prev = memcap_push(&m, 200);
  CHECK(t, memcap_headroom(&m) == 200);
  /* lifted and set back from the headroom, the ceiling is where it was */
  size_t room = memcap_headroom(&m), lifted = m.limit;
  m.limit = SIZE_MAX;
  memcap_push(&m, room);
  CHECK(t, m.limit == lifted);
  /* at or past the ceiling (it was lowered under what is held): none left */
  m.limit = 100;
  CHECK(t, memcap_headroom(&m) == 0);
  memcap_restore(&m, prev);
  memcap_alloc(&m, a, 300, 0);
}

TEST(test_memcap_owners) {
  memcap m;
  memcap_init(&m);
  memcap_owner *o = memcap_owner_new();
  CHECK(t, o != NULL);
  void *host = memcap_alloc(&m, NULL, 0, 100); /* no owner: the host's */
  m.owner = o;
  void *a = memcap_alloc(&m, NULL, 0, 300);
  void *b = memcap_alloc(&m, NULL, 0, 50);
  CHECK(t, o->held == 350 && o->blocks == 2 && m.owned == 350);
  /* a host block the owner grows becomes its own; one it shrinks stays whose it was */
  host = memcap_alloc(&m, host, 100, 400);
  CHECK(t, o->held == 750 && o->blocks == 3 && m.owned == 750);
  m.owner = NULL;
  a = memcap_alloc(&m, a, 300, 10);
  CHECK(t, o->held == 460 && o->blocks == 3);
  /* blocks keep their owner when freed by the host; a released owner goes with its last block */
  memcap_alloc(&m, b, 50, 0);
  CHECK(t, o->held == 410 && o->blocks == 2);
  memcap_owner_release(o);
  memcap_alloc(&m, a, 10, 0);
  memcap_alloc(&m, host, 400, 0);
  CHECK(t, m.used == 0 && m.owned == 0);
}

TEST(test_memcap_grace) {
  memcap m;
  memcap_init(&m);
  void *a = memcap_alloc(&m, NULL, 0, 1000);
  size_t prev = memcap_push(&m, 500);
  m.grace = 300;
  /* refused once; the same request again (Lua's retry after its emergency collection)
   * passes within the grace and is counted in over */
  CHECK(t, memcap_alloc(&m, NULL, 4, 700) == NULL && m.over == 0);
  void *b = memcap_alloc(&m, NULL, 4, 700);
  CHECK(t, b != NULL && m.over == 1 && m.used == 1700);
  /* past the ceiling, the rest of the grace is given at once; beyond it, refused */
  void *c = memcap_alloc(&m, NULL, 4, 50);
  CHECK(t, c != NULL && m.over == 2);
  CHECK(t, memcap_alloc(&m, NULL, 4, 400) == NULL);
  CHECK(t, memcap_alloc(&m, NULL, 4, 400) == NULL);
  /* the grace is one for the whole overshoot: 1750 + 100 would pass 1500 + 300 */
  CHECK(t, memcap_alloc(&m, NULL, 4, 100) == NULL);
  CHECK(t, memcap_alloc(&m, NULL, 4, 100) == NULL);
  CHECK(t, m.used == 1750);
  memcap_restore(&m, prev);
  memcap_alloc(&m, a, 1000, 0);
  memcap_alloc(&m, b, 700, 0);
  memcap_alloc(&m, c, 50, 0);
  CHECK(t, m.used == 0);
}
