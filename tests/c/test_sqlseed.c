/* test_sqlseed.c: a seed's database (core/sqlseed.c) on its own: made only where nothing
 * is (never through a link), a stale journal's link removed as a link, no attached file
 * (VACUUM INTO included), and a seed stopped by its flag and by its deadline. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "sqlseed.h"
#include "tests.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char ENDLESS[] = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;";

static long long ms_since(const struct timespec *t0) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - t0->tv_sec) * 1000LL + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static int run(const char *path, const char *sql, int timeout_ms, atomic_int *stop, char *err, size_t n) {
  return sqlseed_run(path, sql, strlen(sql), timeout_ms, 1 << 20, stop, err, n);
}

TEST(test_sqlseed_confined) {
  char dir[] = "/tmp/orket-sqlseed.XXXXXX";
  CHECK(t, mkdtemp(dir) != NULL);
  char a[256], b[256], other[256], link[256], journal[300], sql[512], err[512];
  snprintf(a, sizeof a, "%s/a.sqlite", dir);
  snprintf(b, sizeof b, "%s/b.sqlite", dir);
  snprintf(other, sizeof other, "%s/other.txt", dir);
  snprintf(link, sizeof link, "%s/l.sqlite", dir);
  snprintf(journal, sizeof journal, "%s-journal", b);
  FILE *f = fopen(other, "w");
  CHECK(t, f != NULL);
  if (f != NULL) {
    fputs("precious", f);
    fclose(f);
  }
  atomic_int stop;
  atomic_init(&stop, 0);

  CHECK(t, run(a, "CREATE TABLE t (v); INSERT INTO t VALUES (1);", 5000, &stop, err, sizeof err) == SQLSEED_OK);
  CHECK(t, run(a, "SELECT 1;", 5000, &stop, err, sizeof err) == SQLSEED_FILE); /* there already */
  /* a link where the database goes, and one as its stale journal: never followed */
  CHECK(t, symlink(other, link) == 0);
  CHECK(t, run(link, "CREATE TABLE t (v);", 5000, &stop, err, sizeof err) == SQLSEED_FILE);
  CHECK(t, symlink(other, journal) == 0);
  CHECK(t, run(b, "CREATE TABLE t (v);", 5000, &stop, err, sizeof err) == SQLSEED_OK);
  struct stat st;
  CHECK(t, lstat(journal, &st) != 0);
  CHECK(t, stat(other, &st) == 0 && st.st_size == 8);
  /* nothing attached, VACUUM INTO neither */
  char c[256];
  snprintf(c, sizeof c, "%s/c.sqlite", dir);
  snprintf(sql, sizeof sql, "VACUUM INTO '%s/out.db';", dir);
  CHECK(t, run(c, sql, 5000, &stop, err, sizeof err) == SQLSEED_SQL);
  CHECK_STR(t, err, "ATTACH and VACUUM are not allowed in a seed: it reaches only its own database");
  snprintf(sql, sizeof sql, "%s/out.db", dir);
  CHECK(t, stat(sql, &st) != 0);
  /* the flag stops it at once; the deadline after its time */
  char d[256];
  snprintf(d, sizeof d, "%s/d.sqlite", dir);
  atomic_store(&stop, 1);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK(t, run(d, ENDLESS, 60000, &stop, err, sizeof err) == SQLSEED_STOPPED);
  CHECK(t, ms_since(&t0) < 1000);
  atomic_store(&stop, 0);
  char e[256];
  snprintf(e, sizeof e, "%s/e.sqlite", dir);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK(t, run(e, ENDLESS, 200, &stop, err, sizeof err) == SQLSEED_TIMEOUT);
  long long took = ms_since(&t0);
  CHECK(t, took >= 200 && took < 3000);
  CHECK_STR(t, err, "it ran longer than 200 ms (a seed's time limit)");
  /* many short statements, none reaching the progress handler: the clock is read before
   * each one */
  static const char INSERT[] = "INSERT INTO t VALUES (1);\n";
  size_t n = 200000, one = sizeof INSERT - 1;
  char *many = malloc(32 + n * one);
  CHECK(t, many != NULL);
  if (many != NULL) {
    size_t at = (size_t)snprintf(many, 32, "CREATE TABLE t (x);\n");
    for (size_t i = 0; i < n; i++, at += one) memcpy(many + at, INSERT, one);
    many[at] = '\0';
    char g[256];
    snprintf(g, sizeof g, "%s/g.sqlite", dir);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(t, run(g, many, 100, &stop, err, sizeof err) == SQLSEED_TIMEOUT);
    took = ms_since(&t0);
    CHECK(t, took >= 100 && took < 2000);
    CHECK_STR(t, err, "it ran longer than 100 ms (a seed's time limit)");
    free(many);
  }

  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(t, system(cmd) == 0);
}
