/* test_lockfile.c: shared and exclusive file locks (lockfile_wait): which combinations
 * conflict, the bounded wait, the hand-over when a holder leaves, and an exclusive waiter
 * keeping new shared holders out. OFD locks conflict between descriptors of one process, so
 * one process plays every holder. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "lockfile.h"
#include "tests.h"

static long lf_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct lf_taker {
  const char *path;
  int shared, timeout_ms, fd;
  long took_ms;
} lf_taker;

static void *lf_take_thread(void *arg) {
  lf_taker *k = arg;
  char err[256];
  const char *code = NULL;
  long t0 = lf_now_ms();
  k->fd = lockfile_wait(k->path, k->shared, k->timeout_ms, err, sizeof err, &code);
  k->took_ms = lf_now_ms() - t0;
  return NULL;
}

TEST(test_lockfile_shared_exclusive) {
  char dir[] = "/tmp/orket-lockfile-XXXXXX", path[64], err[256];
  const char *code = NULL;
  CHECK(t, mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/git.lock", dir);

  /* shared holders coexist; an exclusive taker is refused, at once or after its wait */
  int s1 = lockfile_wait(path, 1, 0, err, sizeof err, &code);
  int s2 = lockfile_wait(path, 1, 0, err, sizeof err, &code);
  CHECK(t, s1 >= 0 && s2 >= 0);
  CHECK(t, lockfile_wait(path, 0, 0, err, sizeof err, &code) < 0);
  CHECK_STR(t, code, "EBUSY");
  long t0 = lf_now_ms();
  code = NULL;
  CHECK(t, lockfile_wait(path, 0, 150, err, sizeof err, &code) < 0);
  long waited = lf_now_ms() - t0;
  CHECK(t, waited >= 140 && waited < 2000);
  CHECK_STR(t, code, "EBUSY");
  /* the whole-file lock sees them too */
  lockfile_holder holder;
  CHECK(t, lockfile_acquire(path, NULL, &holder, err, sizeof err, &code) < 0);

  /* an exclusive taker waiting: new shared takers are kept out, and it gets the lock the
   * moment the last shared holder leaves */
  lf_taker x = {path, 0, 5000, -1, 0};
  pthread_t th;
  CHECK(t, pthread_create(&th, NULL, lf_take_thread, &x) == 0);
  /* (asked until the taker is seen waiting: on a loaded machine, or under a sanitizer, the
   * thread may take longer than any fixed pause to get there; a shared lock taken before
   * it does is given back at once) */
  int early = -1;
  for (int i = 0; i < 500; i++) {
    early = lockfile_wait(path, 1, 0, err, sizeof err, &code);
    if (early < 0) break;
    lockfile_release(early);
    usleep(10000);
  }
  CHECK(t, early < 0);
  lockfile_release(s1);
  usleep(20000);
  long left = lf_now_ms();
  lockfile_release(s2);
  pthread_join(th, NULL);
  CHECK(t, x.fd >= 0);
  CHECK(t, lf_now_ms() - left < 1000);

  /* held exclusive: shared and exclusive takers wait for it */
  CHECK(t, lockfile_wait(path, 1, 0, err, sizeof err, &code) < 0);
  CHECK(t, lockfile_wait(path, 0, 30, err, sizeof err, &code) < 0);
  lf_taker s = {path, 1, 5000, -1, 0};
  CHECK(t, pthread_create(&th, NULL, lf_take_thread, &s) == 0);
  usleep(30000);
  lockfile_release(x.fd);
  pthread_join(th, NULL);
  CHECK(t, s.fd >= 0);
  lockfile_release(s.fd);

  /* free again: both modes at once, and a file that cannot be made is not EBUSY */
  int e = lockfile_wait(path, 0, 0, err, sizeof err, &code);
  CHECK(t, e >= 0);
  lockfile_release(e);
  char bad[96];
  snprintf(bad, sizeof bad, "%s/no/such/dir/git.lock", dir);
  code = NULL;
  CHECK(t, lockfile_wait(bad, 1, 10, err, sizeof err, &code) < 0);
  CHECK_STR(t, code, "EIO");
  unlink(path);
  rmdir(dir);
}

/* Lock files are their owner's alone whatever the umask (a reader could hold a shared lock
 * and keep runs waiting); an older 0644 one is tightened when taken. */
TEST(test_lockfile_private) {
  char dir[] = "/tmp/orket-lockmode-XXXXXX", a[64], b[64], err[256];
  const char *code = NULL;
  struct stat st;
  lockfile_holder holder;
  CHECK(t, mkdtemp(dir) != NULL);
  snprintf(a, sizeof a, "%s/run.lock", dir);
  snprintf(b, sizeof b, "%s/git.lock", dir);
  mode_t old = umask(0);
  int fa = lockfile_acquire(a, NULL, &holder, err, sizeof err, &code);
  int fb = lockfile_wait(b, 1, 0, err, sizeof err, &code);
  CHECK(t, fa >= 0 && fb >= 0);
  CHECK(t, stat(a, &st) == 0 && (st.st_mode & 07777) == 0600);
  CHECK(t, stat(b, &st) == 0 && (st.st_mode & 07777) == 0600);
  lockfile_release(fa);
  lockfile_release(fb);
  CHECK(t, chmod(a, 0644) == 0 && chmod(b, 0644) == 0);
  fa = lockfile_acquire(a, NULL, &holder, err, sizeof err, &code);
  fb = lockfile_wait(b, 0, 0, err, sizeof err, &code);
  CHECK(t, fa >= 0 && fb >= 0);
  CHECK(t, stat(a, &st) == 0 && (st.st_mode & 07777) == 0600);
  CHECK(t, stat(b, &st) == 0 && (st.st_mode & 07777) == 0600);
  lockfile_release(fa);
  lockfile_release(fb);
  umask(old);
  unlink(a);
  unlink(b);
  rmdir(dir);
}
