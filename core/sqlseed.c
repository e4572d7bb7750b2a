/* sqlseed.c: a sandbox's SQLite database made from the repository's seed SQL, confined to
 * its own file, a size and a deadline (sqlseed.h). */
#define _POSIX_C_SOURCE 200809L
#include "sqlseed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#define SQLSEED_LENGTH_MAX (64 * 1024 * 1024) /* bytes of one value: randomblob() is memory */
#define SQLSEED_PROGRESS_OPS 1000             /* VM steps between two looks at the clock */
#define SQLSEED_NO_ATTACH "ATTACH and VACUUM are not allowed in a seed: it reaches only its own database"

typedef struct seed_run {
  struct timespec deadline;
  atomic_int *stop;
  int timed_out, stopped;
  const char *denied; /* why the authorizer refused, for the message */
} seed_run;

static int past(const struct timespec *d) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec > d->tv_sec || (now.tv_sec == d->tv_sec && now.tv_nsec >= d->tv_nsec);
}

/* nonzero interrupts the statement running */
static int seed_progress(void *ud) {
  seed_run *r = ud;
  if (r->stop != NULL && atomic_load(r->stop)) {
    r->stopped = 1;
    return 1;
  }
  if (past(&r->deadline)) {
    r->timed_out = 1;
    return 1;
  }
  return 0;
}

/* Pragmas a seed may not run: they move files, change settings of the whole process
 * (every connection of Orket's), or lift this connection's limits. */
static const char *const DENIED_PRAGMAS[] = {
    "temp_store_directory", "data_store_directory", "soft_heap_limit", "hard_heap_limit",
    "max_page_count",       "page_size",            "cache_size",      "temp_store",
    "mmap_size",            "trusted_schema",       "writable_schema", NULL,
};

static int seed_authorize(void *ud, int action, const char *a3, const char *a4, const char *db, const char *trigger) {
  (void)db;
  (void)trigger;
  seed_run *r = ud;
  if (action == SQLITE_ATTACH || action == SQLITE_DETACH) {
    /* (plain VACUUM attaches a temporary copy: refused too, a fresh database needs none) */
    r->denied = SQLSEED_NO_ATTACH;
    return SQLITE_DENY;
  }
  if (action == SQLITE_PRAGMA && a3 != NULL) {
    for (const char *const *p = DENIED_PRAGMAS; *p != NULL; p++) {
      if (sqlite3_stricmp(a3, *p) == 0) {
        r->denied = "this pragma is not allowed in a seed (it changes files, limits or the whole process)";
        return SQLITE_DENY;
      }
    }
  }
  if (action == SQLITE_FUNCTION && a4 != NULL &&
      (sqlite3_stricmp(a4, "load_extension") == 0 || sqlite3_stricmp(a4, "fts3_tokenizer") == 0)) {
    r->denied = "this function is not allowed in a seed";
    return SQLITE_DENY;
  }
  return SQLITE_OK;
}

/* removes a stale journal of a database that is not there (unlink: a link goes as a link) */
static int drop_stale(const char *path, const char *suffix, char *err, size_t errlen) {
  char p[4096];
  if ((size_t)snprintf(p, sizeof p, "%s%s", path, suffix) >= sizeof p) {
    snprintf(err, errlen, "its path is too long");
    return -1;
  }
  if (unlink(p) != 0 && errno != ENOENT) {
    snprintf(err, errlen, "a stale %s is there and cannot be removed: %s", p, strerror(errno));
    return -1;
  }
  return 0;
}

int sqlseed_run(const char *path, const char *sql, size_t len, int timeout_ms, long long max_bytes,
                atomic_int *stop, char *err, size_t errlen) {
  static const char *const stale[] = {"-journal", "-wal", "-shm"};
  for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++)
    if (drop_stale(path, stale[i], err, errlen) != 0) return SQLSEED_FILE;
  /* made here, exclusively: never a file (or a link's target) that was there before */
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    snprintf(err, errlen, "cannot make %s: %s", path, strerror(errno));
    return SQLSEED_FILE;
  }
  close(fd);

  seed_run r = {0};
  r.stop = stop;
  clock_gettime(CLOCK_MONOTONIC, &r.deadline);
  r.deadline.tv_sec += timeout_ms / 1000;
  r.deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (r.deadline.tv_nsec >= 1000000000L) {
    r.deadline.tv_sec++;
    r.deadline.tv_nsec -= 1000000000L;
  }

  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return SQLSEED_FILE;
  }
  /* its own file only: nothing attached (VACUUM INTO attaches its output too) */
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, SQLSEED_LENGTH_MAX);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int *)NULL);
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0, (int *)NULL);
  /* the size cap, in pages of the fresh file's size (the seed cannot change either) */
  long long pages = max_bytes / 4096;
  if (pages < 1) pages = 1;
  char cap[160];
  snprintf(cap, sizeof cap, "PRAGMA main.page_size=4096; PRAGMA main.max_page_count=%lld; "
           "PRAGMA temp.max_page_count=%lld;", pages, pages);
  rc = sqlite3_exec(db, cap, NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "cannot set its limits: %s", sqlite3_errmsg(db));
    sqlite3_close_v2(db);
    return SQLSEED_FILE;
  }
  sqlite3_set_authorizer(db, seed_authorize, &r);
  sqlite3_progress_handler(db, SQLSEED_PROGRESS_OPS, seed_progress, &r);

  int out = SQLSEED_OK;
  const char *p = sql, *end = sql + len;
  while (p < end && out == SQLSEED_OK) {
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    /* the clock is looked at before each statement and each row too: a seed of many short
     * statements never reaches the progress handler's thousand steps */
    rc = seed_progress(&r) ? SQLITE_INTERRUPT : sqlite3_prepare_v2(db, p, (int)(end - p), &st, &tail);
    if (rc == SQLITE_OK && st != NULL) {
      while (!seed_progress(&r) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
      }
      if (r.timed_out || r.stopped) rc = SQLITE_INTERRUPT;
      else if (rc == SQLITE_DONE) rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK) {
      if (r.timed_out) {
        snprintf(err, errlen, "it ran longer than %d ms (a seed's time limit)", timeout_ms);
        out = SQLSEED_TIMEOUT;
      } else if (r.stopped) {
        snprintf(err, errlen, "stopped");
        out = SQLSEED_STOPPED;
      } else if (rc == SQLITE_NOMEM) {
        snprintf(err, errlen, "it needed more memory than a seed may use");
        out = SQLSEED_MEMORY;
      } else if (rc == SQLITE_FULL) {
        snprintf(err, errlen, "its database would grow past %lld bytes (a seed's size limit)", max_bytes);
        out = SQLSEED_FULL;
      } else if (rc == SQLITE_AUTH && r.denied != NULL) {
        snprintf(err, errlen, "%s", r.denied);
        out = SQLSEED_SQL;
      } else if (strncmp(sqlite3_errmsg(db), "too many attached databases", 27) == 0) {
        snprintf(err, errlen, "%s", SQLSEED_NO_ATTACH);
        out = SQLSEED_SQL;
      } else {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        out = SQLSEED_SQL;
      }
    }
    sqlite3_finalize(st);
    if (tail == NULL || tail <= p) break; /* nothing consumed: the rest is blank */
    p = tail;
  }
  sqlite3_close_v2(db);
  return out;
}
