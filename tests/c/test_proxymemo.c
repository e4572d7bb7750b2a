/* test_proxymemo.c: the proxy's memory of core/proxymemo.c: a request is found again only
 * when it is byte for byte the same (method, path, address, every header in order), under
 * the stamp it was kept with and before its time; the memory is bounded, and what an entry
 * holds is freed when it goes. */
#include "check.h"
#include "proxymemo.h"
#include "tests.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct fake_req {
  const char *h[16]; /* name, value, ... */
  size_t n;          /* headers */
} fake_req;

static int fake_header(const void *req, size_t i, const char **name, const char **value) {
  const fake_req *r = req;
  if (i >= r->n) return -1;
  *name = r->h[2 * i];
  *value = r->h[2 * i + 1];
  return 0;
}

static proxymemo_key key_of(const char *method, const char *path, const char *remote, const fake_req *r) {
  return (proxymemo_key){method, path, remote, fake_header, r};
}

typedef struct stamp {
  int64_t own, dv;
  int fail, reads;
} stamp;

static int read_stamp(void *ud, int64_t *own, int64_t *dv) {
  stamp *s = ud;
  s->reads++;
  if (s->fail) return -1;
  *own = s->own;
  *dv = s->dv;
  return 0;
}

static void count_free(void *val, void *ud) {
  (void)val;
  (*(int *)ud)++;
}

static int vals[PROXYMEMO_MAX + 8];

TEST(test_proxymemo_same_request) {
  int freed = 0;
  proxymemo *m = proxymemo_new(count_free, &freed);
  CHECK(t, m != NULL);
  stamp st = {1, 2, 0, 0};
  fake_req r = {{"Host", "a", "Authorization", "Bearer x"}, 2};
  proxymemo_key k = key_of("GET", "/p", "127.0.0.1", &r);
  CHECK(t, proxymemo_get(m, &k, 0, read_stamp, &st) == NULL);
  CHECK(t, st.reads == 0); /* nothing held: the store is not asked */
  CHECK(t, proxymemo_put(m, &k, 1, 2, 0, 1000, &vals[0]) == 0);
  CHECK(t, proxymemo_get(m, &k, 10, read_stamp, &st) == &vals[0]);
  CHECK(t, st.reads == 1);
  /* each part of the request, changed, is another request */
  fake_req other = {{"Host", "a", "Authorization", "Bearer y"}, 2};
  proxymemo_key k2 = key_of("GET", "/p", "127.0.0.1", &other);
  CHECK(t, proxymemo_get(m, &k2, 10, read_stamp, &st) == NULL);
  fake_req more = {{"Host", "a", "Authorization", "Bearer x", "X", ""}, 3};
  k2 = key_of("GET", "/p", "127.0.0.1", &more);
  CHECK(t, proxymemo_get(m, &k2, 10, read_stamp, &st) == NULL);
  fake_req fewer = {{"Host", "a"}, 1};
  k2 = key_of("GET", "/p", "127.0.0.1", &fewer);
  CHECK(t, proxymemo_get(m, &k2, 10, read_stamp, &st) == NULL);
  fake_req swapped = {{"Authorization", "Bearer x", "Host", "a"}, 2};
  k2 = key_of("GET", "/p", "127.0.0.1", &swapped);
  CHECK(t, proxymemo_get(m, &k2, 10, read_stamp, &st) == NULL);
  /* a name and value split elsewhere are other bytes too */
  fake_req split = {{"Host", "a", "Authorization", "Bearer", " x", ""}, 3};
  k2 = key_of("GET", "/p", "127.0.0.1", &split);
  CHECK(t, proxymemo_get(m, &k2, 10, read_stamp, &st) == NULL);
  k2 = key_of("HEAD", "/p", "127.0.0.1", &r);
  CHECK(t, proxymemo_get(m, &k2, 10, read_stamp, &st) == NULL);
  k2 = key_of("GET", "/q", "127.0.0.1", &r);
  CHECK(t, proxymemo_get(m, &k2, 10, read_stamp, &st) == NULL);
  k2 = key_of("GET", "/p", "127.0.0.2", &r);
  CHECK(t, proxymemo_get(m, &k2, 10, read_stamp, &st) == NULL);
  CHECK(t, proxymemo_count(m) == 1 && freed == 0);
  /* the same request put again replaces its entry, the old value freed */
  CHECK(t, proxymemo_put(m, &k, 1, 2, 0, 1000, &vals[1]) == 0);
  CHECK(t, proxymemo_count(m) == 1 && freed == 1);
  CHECK(t, proxymemo_get(m, &k, 10, read_stamp, &st) == &vals[1]);
  /* too large: refused, nothing kept */
  static char big[PROXYMEMO_MAX_BYTES];
  memset(big, 'a', sizeof big - 1);
  fake_req huge = {{"Cookie", big}, 1};
  k2 = key_of("GET", "/p", "127.0.0.1", &huge);
  CHECK(t, proxymemo_put(m, &k2, 1, 2, 0, 1000, &vals[2]) == -1);
  CHECK(t, proxymemo_count(m) == 1 && freed == 1);
  proxymemo_clear(m);
  CHECK(t, proxymemo_count(m) == 0 && freed == 2);
  CHECK(t, proxymemo_get(m, &k, 10, read_stamp, &st) == NULL);
  proxymemo_free(m);
}

TEST(test_proxymemo_stamp_and_time) {
  int freed = 0;
  proxymemo *m = proxymemo_new(count_free, &freed);
  stamp st = {5, 7, 0, 0};
  fake_req r = {{"Host", "a"}, 1};
  proxymemo_key k = key_of("GET", "/p", "::1", &r);
  CHECK(t, proxymemo_put(m, &k, 5, 7, 0, 100, &vals[0]) == 0);
  /* the stamp unreadable: not found, and kept */
  st.fail = 1;
  CHECK(t, proxymemo_get(m, &k, 10, read_stamp, &st) == NULL);
  CHECK(t, proxymemo_count(m) == 1);
  st.fail = 0;
  CHECK(t, proxymemo_get(m, &k, 99, read_stamp, &st) == &vals[0]);
  /* at its time: gone */
  CHECK(t, proxymemo_get(m, &k, 100, read_stamp, &st) == NULL);
  CHECK(t, proxymemo_count(m) == 0 && freed == 1);
  /* another stamp, in either part: gone */
  CHECK(t, proxymemo_put(m, &k, 5, 7, 0, 1000, &vals[0]) == 0);
  st.own = 6;
  CHECK(t, proxymemo_get(m, &k, 10, read_stamp, &st) == NULL);
  CHECK(t, proxymemo_count(m) == 0 && freed == 2);
  st.own = 5;
  CHECK(t, proxymemo_put(m, &k, 5, 7, 0, 1000, &vals[0]) == 0);
  st.dv = 8;
  CHECK(t, proxymemo_get(m, &k, 10, read_stamp, &st) == NULL);
  CHECK(t, proxymemo_count(m) == 0 && freed == 3);
  /* a put drops what can never be found again: entries of another stamp, or past their time */
  fake_req r2 = {{"Host", "b"}, 1};
  proxymemo_key k2 = key_of("GET", "/p", "::1", &r2);
  CHECK(t, proxymemo_put(m, &k, 5, 7, 0, 50, &vals[0]) == 0);
  CHECK(t, proxymemo_put(m, &k2, 5, 7, 0, 1000, &vals[1]) == 0);
  CHECK(t, proxymemo_count(m) == 2 && freed == 3);
  CHECK(t, proxymemo_put(m, &k2, 5, 7, 60, 1000, &vals[1]) == 0); /* k's time is over */
  CHECK(t, proxymemo_count(m) == 1 && freed == 5);                 /* k's, and k2's replaced */
  CHECK(t, proxymemo_put(m, &k, 5, 8, 60, 1000, &vals[0]) == 0);  /* another stamp: k2's dropped */
  CHECK(t, proxymemo_count(m) == 1 && freed == 6);
  proxymemo_free(m);
  CHECK(t, freed == 7);
}

/* The sweep (on serve's timer) drops what no longer holds without a request coming: entries
 * of another stamp, or past their time; with the stamp unreadable, only the latter. */
TEST(test_proxymemo_sweep) {
  int freed = 0;
  proxymemo *m = proxymemo_new(count_free, &freed);
  stamp st = {3, 4, 0, 0};
  CHECK(t, proxymemo_sweep(m, 0, read_stamp, &st) == 0);
  CHECK(t, st.reads == 0); /* nothing held: the store is not asked */
  fake_req a = {{"Authorization", "Bearer a"}, 1}, b = {{"Authorization", "Bearer b"}, 1},
           c = {{"Authorization", "Bearer c"}, 1};
  proxymemo_key ka = key_of("GET", "/p", "::1", &a), kb = key_of("GET", "/p", "::1", &b),
                kc = key_of("GET", "/p", "::1", &c);
  CHECK(t, proxymemo_put(m, &ka, 3, 4, 0, 100, &vals[0]) == 0);
  CHECK(t, proxymemo_put(m, &kb, 3, 4, 0, 1000, &vals[1]) == 0);
  CHECK(t, proxymemo_sweep(m, 50, read_stamp, &st) == 2 && freed == 0);
  CHECK(t, st.reads == 1);
  CHECK(t, proxymemo_sweep(m, 100, read_stamp, &st) == 1 && freed == 1); /* a's time is over */
  CHECK(t, proxymemo_get(m, &kb, 100, read_stamp, &st) == &vals[1]);
  /* unreadable: b kept (it may still hold), an expired one dropped all the same */
  CHECK(t, proxymemo_put(m, &kc, 3, 4, 100, 200, &vals[2]) == 0);
  st.fail = 1;
  CHECK(t, proxymemo_sweep(m, 300, read_stamp, &st) == 1 && freed == 2);
  CHECK(t, proxymemo_get(m, &kc, 300, read_stamp, &st) == NULL);
  st.fail = 0;
  /* the stamp moved (a key revoked, by any connection): everything of the old one goes */
  st.dv = 5;
  CHECK(t, proxymemo_sweep(m, 300, read_stamp, &st) == 0 && freed == 3);
  proxymemo_free(m);
  CHECK(t, freed == 3);
}

TEST(test_proxymemo_bounded) {
  int freed = 0;
  proxymemo *m = proxymemo_new(count_free, &freed);
  stamp st = {1, 1, 0, 0};
  fake_req r = {{"Host", "a"}, 1};
  char paths[PROXYMEMO_MAX + 8][16];
  for (int i = 0; i < PROXYMEMO_MAX + 8; i++) {
    snprintf(paths[i], sizeof paths[i], "/p%d", i);
    proxymemo_key k = key_of("GET", paths[i], "127.0.0.1", &r);
    CHECK(t, proxymemo_put(m, &k, 1, 1, 0, 1000, &vals[i]) == 0);
  }
  /* the oldest eight made room */
  CHECK(t, proxymemo_count(m) == PROXYMEMO_MAX && freed == 8);
  for (int i = 0; i < PROXYMEMO_MAX + 8; i++) {
    proxymemo_key k = key_of("GET", paths[i], "127.0.0.1", &r);
    void *v = proxymemo_get(m, &k, 10, read_stamp, &st);
    CHECK(t, v == (i < 8 ? NULL : (void *)&vals[i]));
  }
  proxymemo_free(m);
  CHECK(t, freed == PROXYMEMO_MAX + 8);
}
