/* test_ratelimit.c: the token buckets of core/ratelimit.c: taking, refilling, the wait
 * said, and the table's bound (full buckets forgotten first, then the least recently
 * seen half). */
#include "check.h"
#include "ratelimit.h"
#include "tests.h"

#include <stdio.h>
#include <string.h>

static int take(ratelimit *rl, const char *name, double now, long *retry) {
  return ratelimit_take(rl, name, strlen(name), now, retry);
}

TEST(test_ratelimit_buckets) {
  CHECK(t, ratelimit_new(0, 1, 10) == NULL);
  CHECK(t, ratelimit_new(1, 0.5, 10) == NULL);
  CHECK(t, ratelimit_new(1, 1, 0) == NULL);
  ratelimit *rl = ratelimit_new(2, 3, 100);
  CHECK(t, rl != NULL);
  long retry = 0;
  for (int i = 0; i < 3; i++) CHECK(t, take(rl, "a", 0, &retry) == 1);
  CHECK(t, take(rl, "a", 0, &retry) == 0);
  CHECK(t, retry == 1);
  CHECK(t, take(rl, "b", 0, &retry) == 1);           /* its own bucket */
  CHECK(t, ratelimit_empty(rl, "a", 1, 100) == 1);    /* 0.2 tokens: not yet */
  CHECK(t, ratelimit_empty(rl, "zz", 2, 100) == 0);   /* unknown: full */
  CHECK(t, take(rl, "a", 500, &retry) == 1);          /* one back after half a second */
  CHECK(t, ratelimit_take(rl, "a\0b", 3, 500, &retry) == 1); /* any bytes */
  CHECK(t, ratelimit_count(rl) == 3);
  ratelimit_free(rl);
  CHECK(t, ratelimit_retry_after(0, 0.1) == 10);
  CHECK(t, ratelimit_retry_after(0.95, 0.1) == 1);
  CHECK(t, ratelimit_retry_after(0, 1e-12) == 1000000000L); /* capped */
}

TEST(test_ratelimit_bounded) {
  ratelimit *rl = ratelimit_new(1, 1, 100);
  char name[32];
  long retry;
  for (int i = 0; i < 5000; i++) {
    snprintf(name, sizeof name, "addr%d", i);
    CHECK(t, take(rl, name, 0, &retry) == 1);
    CHECK(t, ratelimit_count(rl) <= 100);
  }
  ratelimit_free(rl);
  /* idle names go first */
  rl = ratelimit_new(1000, 1, 4);
  take(rl, "a", 0, &retry), take(rl, "b", 0, &retry), take(rl, "c", 0, &retry), take(rl, "d", 0, &retry);
  take(rl, "e", 10000, &retry);
  CHECK(t, ratelimit_count(rl) == 1);
  ratelimit_free(rl);
  /* none idle: the least recently seen half */
  rl = ratelimit_new(0.001, 1, 4);
  take(rl, "d", 1, &retry), take(rl, "c", 2, &retry), take(rl, "b", 3, &retry), take(rl, "a", 4, &retry);
  take(rl, "e", 5, &retry);
  CHECK(t, ratelimit_count(rl) == 3);
  CHECK(t, take(rl, "d", 6, &retry) == 1); /* forgotten: full again */
  CHECK(t, take(rl, "b", 6, &retry) == 0); /* kept: still empty */
  CHECK(t, take(rl, "a", 6, &retry) == 0);
  ratelimit_free(rl);
}
