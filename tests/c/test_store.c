/* test_store.c: the statement cache's lookups, the transaction control statements, and
 * the system's cause of a failed write named in the store's messages. */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "store.h"
#include "tests.h"

static store *open_temp(check_ctx *t, char *dir, size_t len) {
  snprintf(dir, len, "/tmp/orket-test-store-XXXXXX");
  if (mkdtemp(dir) == NULL) return NULL;
  char path[256], err[600];
  const char *code = NULL;
  snprintf(path, sizeof path, "%s/s.db", dir);
  store *s = store_open(path, STORE_OPEN_CREATE, err, sizeof err, &code);
  CHECK(t, s != NULL);
  return s;
}

static void remove_temp(const char *dir) {
  const char *names[] = {"s.db", "s.db-wal", "s.db-shm"};
  char path[256];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* sql prepared and stepped to its first row | NULL (the caller resets it) */
static store_stmt *first_row(store *s, const char *sql) {
  store_stmt *st = store_prepare(s, sql);
  return st != NULL && store_step(st) == STORE_ROW ? st : NULL;
}

static int64_t select_int(store *s, const char *sql) {
  store_stmt *st = first_row(s, sql);
  if (st == NULL) return -1;
  int64_t v = store_column_int(st, 0);
  store_reset(st);
  return v;
}

/* The cache finds a statement again by the text's address first: the same address holding
 * other text (a caller's buffer written again) must give that text's statement. */
TEST(test_store_cache_same_address) {
  char dir[64];
  store *s = open_temp(t, dir, sizeof dir);
  if (s == NULL) return;
  char buf[32];
  for (int round = 0; round < 2; round++) {
    for (int i = 1; i <= 3; i++) {
      snprintf(buf, sizeof buf, "SELECT %d", i);
      CHECK(t, select_int(s, buf) == i);
    }
  }
  CHECK(t, store_cached(s) == 3);
  /* more texts than the cache holds: every one answers its own value, evicted or not */
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < STORE_CACHE_SIZE + 20; i++) {
      snprintf(buf, sizeof buf, "SELECT %d", 1000 + i);
      CHECK(t, select_int(s, buf) == 1000 + i);
    }
  }
  store_close(s);
  remove_temp(dir);
}

/* Many texts at addresses of their own, as a turn's constants are: however they share the
 * address memo's sets, each finds its own statement, none is prepared twice while the cache
 * holds them all, and past the cache's size every one still answers its own value. */
TEST(test_store_cache_many_addresses) {
  char dir[64];
  store *s = open_temp(t, dir, sizeof dir);
  if (s == NULL) return;
  enum { FEW = 100, MANY = 1200 };
  char **texts = calloc(MANY, sizeof *texts);
  CHECK(t, texts != NULL);
  if (texts == NULL) return;
  for (int i = 0; i < MANY; i++) {
    texts[i] = malloc(32);
    if (texts[i] != NULL) snprintf(texts[i], 32, "SELECT %d", 5000 + i);
  }
  int before = store_cached(s);
  for (int round = 0; round < 3; round++) {
    for (int k = 0; k < FEW; k++) {
      int i = round == 1 ? FEW - 1 - k : (k * 37) % FEW; /* in other orders */
      CHECK(t, texts[i] != NULL && select_int(s, texts[i]) == 5000 + i);
    }
  }
  CHECK(t, store_cached(s) == before + FEW);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < MANY; i++) CHECK(t, texts[i] != NULL && select_int(s, texts[i]) == 5000 + i);
  }
  for (int i = 0; i < MANY; i++) free(texts[i]);
  free(texts);
  store_close(s);
  remove_temp(dir);
}

/* Savepoints past the levels kept as constants nest, release and roll back as the others. */
TEST(test_store_deep_savepoints) {
  char dir[64];
  store *s = open_temp(t, dir, sizeof dir);
  if (s == NULL) return;
  CHECK(t, store_exec(s, "CREATE TABLE x (v INTEGER)") == 0);
  for (int i = 0; i < 9; i++) {
    CHECK(t, store_begin(s) == 0);
    char sql[64];
    snprintf(sql, sizeof sql, "INSERT INTO x VALUES (%d)", i);
    CHECK(t, store_exec(s, sql) == 0);
  }
  CHECK(t, store_depth(s) == 9);
  CHECK(t, store_rollback(s) == 0); /* level 8's row goes */
  CHECK(t, store_commit(s) == 0);   /* level 7's stays */
  CHECK(t, store_rollback(s) == 0); /* level 6's rows (6 and 7) go */
  while (store_depth(s) > 0) CHECK(t, store_commit(s) == 0);
  CHECK(t, select_int(s, "SELECT count(*) FROM x") == 6);
  CHECK(t, select_int(s, "SELECT max(v) FROM x") == 5);
  store_close(s);
  remove_temp(dir);
}

/* Savepoints open at a level's first write, one for levels nested with no write between
 * them: each level still rolls back to the state it began in, alone. */
TEST(test_store_lazy_savepoints) {
  char dir[64];
  store *s = open_temp(t, dir, sizeof dir);
  if (s == NULL) return;
  CHECK(t, store_exec(s, "CREATE TABLE x (v INTEGER)") == 0);
  CHECK(t, select_int(s, "SELECT count(*) FROM x") == 0);
  CHECK(t, store_begin(s) == 0);
  int cached = store_cached(s);
  /* levels that only read open no savepoint (no statement for one is ever prepared) */
  CHECK(t, store_begin(s) == 0 && store_begin(s) == 0);
  CHECK(t, select_int(s, "SELECT count(*) FROM x") == 0);
  uint64_t undone = store_rollbacks(s);
  CHECK(t, store_rollback(s) == 0 && store_commit(s) == 0);
  CHECK(t, store_cached(s) == cached);
  CHECK(t, store_rollbacks(s) == undone); /* nothing written, nothing undone */
  CHECK(t, store_exec(s, "INSERT INTO x VALUES (1)") == 0);
  /* three levels, no write between their starts: one savepoint for the three */
  CHECK(t, store_begin(s) == 0 && store_begin(s) == 0 && store_begin(s) == 0);
  CHECK(t, store_exec(s, "INSERT INTO x VALUES (2)") == 0);
  CHECK(t, store_commit(s) == 0);                                 /* the innermost's 2 kept */
  CHECK(t, store_exec(s, "INSERT INTO x VALUES (3)") == 0);
  CHECK(t, store_begin(s) == 0);
  CHECK(t, store_exec(s, "INSERT INTO x VALUES (4)") == 0);
  CHECK(t, store_rollback(s) == 0);                               /* 4 goes, alone */
  CHECK(t, select_int(s, "SELECT sum(v) FROM x") == 6);
  CHECK(t, store_rollbacks(s) == undone + 1);
  CHECK(t, store_rollback(s) == 0);                               /* the middle: 2 and 3 go */
  CHECK(t, select_int(s, "SELECT sum(v) FROM x") == 1);
  CHECK(t, store_exec(s, "INSERT INTO x VALUES (5)") == 0);      /* the outer level's, still open */
  CHECK(t, store_begin(s) == 0 && store_begin(s) == 0);
  CHECK(t, store_exec(s, "INSERT INTO x VALUES (7)") == 0);
  CHECK(t, store_rollback(s) == 0);                               /* 7 goes */
  CHECK(t, store_exec(s, "INSERT INTO x VALUES (8)") == 0);
  CHECK(t, store_commit(s) == 0);
  CHECK(t, store_rollback(s) == 0);                               /* 5 and 8 go */
  CHECK(t, store_rollbacks(s) == undone + 4);
  CHECK(t, select_int(s, "SELECT sum(v) FROM x") == 1);
  CHECK(t, store_depth(s) == 1);
  CHECK(t, store_commit(s) == 0);
  CHECK(t, select_int(s, "SELECT sum(v) FROM x") == 1);
  /* a statement that writes through store_prepare opens the savepoint too */
  CHECK(t, store_begin(s) == 0 && store_begin(s) == 0);
  store_stmt *st = store_prepare(s, "INSERT INTO x VALUES (?)");
  CHECK(t, st != NULL && store_bind_int(st, 1, 10) == 0 && store_step(st) == STORE_DONE);
  if (st) store_reset(st);
  CHECK(t, store_rollback(s) == 0);
  CHECK(t, select_int(s, "SELECT sum(v) FROM x") == 1);
  CHECK(t, store_commit(s) == 0);
  /* a transaction rolled back is counted only when it ran a statement that may write */
  undone = store_rollbacks(s);
  CHECK(t, store_begin(s) == 0 && select_int(s, "SELECT sum(v) FROM x") == 1 && store_rollback(s) == 0);
  CHECK(t, store_rollbacks(s) == undone);
  CHECK(t, store_begin(s) == 0 && store_exec(s, "INSERT INTO x VALUES (9)") == 0 && store_rollback(s) == 0);
  CHECK(t, store_rollbacks(s) == undone + 1);
  store_close(s);
  remove_temp(dir);
}

/* Bound text is not copied (store_bind_text): store_reset ends the statement's use and
 * clears it, so a later use never reads a caller's buffer that has changed since. */
TEST(test_store_reset_clears_bindings) {
  char dir[64];
  store *s = open_temp(t, dir, sizeof dir);
  if (s == NULL) return;
  CHECK(t, store_exec(s, "CREATE TABLE x (v TEXT)") == 0);
  char buf[16];
  snprintf(buf, sizeof buf, "first");
  store_stmt *st = store_prepare(s, "INSERT INTO x VALUES (?)");
  CHECK(t, st != NULL && store_bind_text(st, 1, buf, strlen(buf)) == 0);
  CHECK(t, st != NULL && store_step(st) == STORE_DONE);
  if (st) store_reset(st);
  snprintf(buf, sizeof buf, "second");
  st = store_prepare(s, "INSERT INTO x VALUES (?)");
  CHECK(t, st != NULL && store_step(st) == STORE_DONE); /* no binding: NULL */
  if (st) store_reset(st);
  CHECK(t, select_int(s, "SELECT count(*) FROM x WHERE v = 'first'") == 1);
  CHECK(t, select_int(s, "SELECT count(*) FROM x WHERE v IS NULL") == 1);
  store_close(s);
  remove_temp(dir);
}

/* A statement a caller left unfinished (a row read, no reset) starts again from its first
 * row at its next use, and one left after its last row runs again too. */
TEST(test_store_reuse_after_unfinished) {
  char dir[64];
  store *s = open_temp(t, dir, sizeof dir);
  if (s == NULL) return;
  CHECK(t, store_exec(s, "CREATE TABLE x (v INTEGER); INSERT INTO x VALUES (1), (2), (3)") == 0);
  const char *sql = "SELECT v FROM x ORDER BY v";
  store_stmt *st = first_row(s, sql);
  CHECK(t, st != NULL && store_column_int(st, 0) == 1);
  CHECK(t, st != NULL && store_step(st) == STORE_ROW && store_column_int(st, 0) == 2);
  st = first_row(s, sql); /* not reset by the caller */
  CHECK(t, st != NULL && store_column_int(st, 0) == 1);
  int rows = 1;
  while (st != NULL && store_step(st) == STORE_ROW) rows++;
  CHECK(t, rows == 3);
  st = first_row(s, sql); /* run to its end, not reset */
  CHECK(t, st != NULL && store_column_int(st, 0) == 1);
  if (st) store_reset(st);
  CHECK(t, select_int(s, "SELECT count(*) FROM x") == 3);
  store_close(s);
  remove_temp(dir);
}

/* What names a statement's columns: the same while the statement stays cached as it is, new
 * when SQLite re-prepares it after a schema change (SELECT * then has other columns) or
 * when its slot is given to another statement (lstore keeps column names by it). */
static uint64_t stamp_of(store *s, const char *sql, int *slot, int *ncol) {
  store_stmt *st = first_row(s, sql);
  if (st == NULL) return 0;
  uint64_t stamp = store_columns_stamp(s, st, slot);
  *ncol = store_column_count(st);
  store_reset(st);
  return stamp;
}

TEST(test_store_columns_stamp) {
  char dir[64];
  store *s = open_temp(t, dir, sizeof dir);
  if (s == NULL) return;
  CHECK(t, store_exec(s, "CREATE TABLE y (a, b); INSERT INTO y VALUES (1, 2)") == 0);
  int slot = -1, slot2 = -1, ncol = 0;
  uint64_t s1 = stamp_of(s, "SELECT * FROM y", &slot, &ncol);
  CHECK(t, s1 != 0 && ncol == 2 && slot >= 0 && slot < STORE_CACHE_SIZE);
  CHECK(t, select_int(s, "SELECT 7") == 7); /* another statement meanwhile */
  CHECK(t, stamp_of(s, "SELECT * FROM y", &slot2, &ncol) == s1 && slot2 == slot);
  CHECK(t, store_exec(s, "ALTER TABLE y ADD COLUMN c") == 0);
  uint64_t s2 = stamp_of(s, "SELECT * FROM y", &slot2, &ncol);
  CHECK(t, s2 != 0 && s2 != s1 && ncol == 3 && slot2 == slot);
  CHECK(t, stamp_of(s, "SELECT * FROM y", &slot2, &ncol) == s2);
  char buf[32];
  for (int i = 0; i < STORE_CACHE_SIZE; i++) { /* evicts every statement */
    snprintf(buf, sizeof buf, "SELECT %d", 2000 + i);
    CHECK(t, select_int(s, buf) == 2000 + i);
  }
  uint64_t s3 = stamp_of(s, "SELECT * FROM y", &slot2, &ncol);
  CHECK(t, s3 != 0 && s3 != s2 && s3 != s1 && ncol == 3);
  store_close(s);
  remove_temp(dir);
}

/* store_process_init as main() calls it: SQLite keeps no memory statistics after it (each
 * allocation would take a global mutex for them), so a connection's memory is not counted. */
TEST(test_store_process_init) {
  CHECK(t, sqlite3_shutdown() == SQLITE_OK); /* the options are taken only before SQLite starts */
  store_process_init();
  CHECK(t, sqlite3_initialize() == SQLITE_OK);
  sqlite3_int64 before = sqlite3_memory_used();
  char dir[64];
  store *s = open_temp(t, dir, sizeof dir);
  if (s == NULL) return;
  CHECK(t, store_exec(s, "CREATE TABLE z (a); INSERT INTO z VALUES (randomblob(4000))") == 0);
  CHECK(t, select_int(s, "SELECT count(*) FROM z") == 1);
  CHECK(t, sqlite3_memory_used() == before);
  store_close(s);
  remove_temp(dir);
}

/* How failing_write's child meets the failure: writing, from its open on (the -shm's growth
 * fails) or from a commit on; or reading, opened read-only. */
enum { FAIL_AT_COMMIT, FAIL_AT_OPEN, FAIL_READING };

/* A write of the store's files failing with err (EDQUOT, EIO, ENOSPC), in a child process:
 * every pwrite64 fails so, which is how SQLite writes its -wal and grows its -shm (the
 * kernel's own failure, by a seccomp filter: no quota needs to be set up). The child writes
 * the store's code and message into code and msg (through a pipe; reading, "" and "rows N"
 * when it read x) -> 0, or -1 when it could not run. */
static int failing_write(const char *path, int err, int how, char *msg, size_t len, char *code, size_t clen) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fds[0]);
    FILE *out = fdopen(fds[1], "w");
    if (out == NULL) _exit(2);
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    if (f == NULL || seccomp_rule_add(f, SCMP_ACT_ERRNO((unsigned)err), SCMP_SYS(pwrite64), 0) != 0) _exit(3);
    char e[600];
    const char *c = "";
    if (how != FAIL_AT_COMMIT && seccomp_load(f) != 0) _exit(4);
    store *s = store_open(path, how == FAIL_READING ? STORE_OPEN_READONLY : 0, e, sizeof e, &c);
    if (s != NULL && how == FAIL_READING) {
      int64_t n = select_int(s, "SELECT count(*) FROM x");
      if (n >= 0) snprintf(e, sizeof e, "rows %lld", (long long)n);
      else snprintf(e, sizeof e, "%s", store_error(s));
      c = n >= 0 ? "" : store_code(s);
    } else if (s != NULL) {
      if (how == FAIL_AT_COMMIT && (select_int(s, "SELECT count(*) FROM x") != 1 || seccomp_load(f) != 0)) _exit(5);
      if (store_exec(s, "INSERT INTO x VALUES (2)") == 0) {
        snprintf(e, sizeof e, "the write went through");
        c = "";
      } else {
        snprintf(e, sizeof e, "%s", store_error(s));
        c = store_code(s);
      }
    }
    fprintf(out, "%s\n%s\n", c, e);
    fclose(out);
    _exit(0); /* no atexit handlers: the filter is still on */
  }
  close(fds[1]);
  FILE *in = fdopen(fds[0], "r");
  int ok = in != NULL && fgets(code, (int)clen, in) != NULL && fgets(msg, (int)len, in) != NULL;
  if (in) fclose(in);
  else close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  code[strcspn(code, "\n")] = '\0';
  msg[strcspn(msg, "\n")] = '\0';
  return 0;
}

/* SQLite says "disk I/O error" for any write that fails but for a full disk, and keeps the
 * system's errno only on some paths (none for a commit): the store's VFS keeps it, and the
 * message names it, a used-up quota with its remedy and coded as a full disk is. */
TEST(test_store_write_errno_named) {
  char dir[64];
  store *s = open_temp(t, dir, sizeof dir);
  if (s == NULL) return;
  CHECK(t, store_exec(s, "CREATE TABLE x (v INTEGER); INSERT INTO x VALUES (1)") == 0);
  store_close(s); /* the children open it afresh (no -wal, no -shm) */
  char path[256], msg[600], code[32];
  snprintf(path, sizeof path, "%s/s.db", dir);
  static const struct {
    int err, how;
    const char *code, *says, *remedy;
  } cases[] = {
      {EDQUOT, FAIL_AT_COMMIT, "ENOSPC", "s.db: disk I/O error (Disk quota exceeded: ", "raise the quota"},
      {EDQUOT, FAIL_AT_OPEN, "ENOSPC", "store: cannot open ", "(Disk quota exceeded: "},
      {EIO, FAIL_AT_COMMIT, "ESQL", "s.db: disk I/O error (Input/output error)", NULL},
      {ENOSPC, FAIL_AT_COMMIT, "ENOSPC", "s.db: database or disk is full", NULL},
      {ENOSPC, FAIL_AT_OPEN, "ENOSPC", "store: cannot open ", "(No space left on device)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (failing_write(path, cases[i].err, cases[i].how, msg, sizeof msg, code, sizeof code) != 0) {
      CHECK(t, !"the child could not run");
      break;
    }
    if (strstr(msg, cases[i].says) == NULL || (cases[i].remedy && strstr(msg, cases[i].remedy) == NULL) ||
        strcmp(code, cases[i].code) != 0)
      fprintf(stderr, "    case %zu: %s: %s\n", i, code, msg);
    CHECK(t, strstr(msg, cases[i].says) != NULL);
    CHECK(t, cases[i].remedy == NULL || strstr(msg, cases[i].remedy) != NULL);
    CHECK_STR(t, code, cases[i].code);
  }
  /* nothing was written, and the store is whole */
  const char *ocode = NULL;
  s = store_open(path, 0, msg, sizeof msg, &ocode);
  CHECK(t, s != NULL);
  if (s != NULL) {
    CHECK(t, select_int(s, "SELECT count(*) FROM x") == 1);
    store_close(s);
  }
  remove_temp(dir);
}

/* On a full disk (or a used-up quota) the -shm cannot be grown, and a read-only open failed
 * with it: the board could not be read, nor backed up to another disk, though nothing had to
 * be written. It is read with SQLite's read-only shared memory instead, every commit with
 * it, those of a writer killed before its -wal was checkpointed too. */
TEST(test_store_readonly_full_disk) {
  char dir[64];
  store *s = open_temp(t, dir, sizeof dir);
  if (s == NULL) return;
  CHECK(t, store_exec(s, "CREATE TABLE x (v INTEGER); INSERT INTO x VALUES (1)") == 0);
  store_close(s);
  char path[256], msg[600], code[32];
  snprintf(path, sizeof path, "%s/s.db", dir);
  /* a writer killed after its commit: the row is in the -wal alone */
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    const char *c = NULL;
    store *w = store_open(path, 0, msg, sizeof msg, &c);
    _exit(w != NULL && store_exec(w, "INSERT INTO x VALUES (2)") == 0 ? 0 : 1);
  }
  int status = 0;
  CHECK(t, pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(t, access(path, F_OK) == 0);
  static const int errs[] = {ENOSPC, EDQUOT};
  for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
    CHECK(t, failing_write(path, errs[i], FAIL_READING, msg, sizeof msg, code, sizeof code) == 0);
    if (strcmp(msg, "rows 2") != 0) fprintf(stderr, "    errno %d: %s: %s\n", errs[i], code, msg);
    CHECK_STR(t, msg, "rows 2");
  }
  /* a writer's open still says the disk is full */
  CHECK(t, failing_write(path, ENOSPC, FAIL_AT_OPEN, msg, sizeof msg, code, sizeof code) == 0);
  CHECK_STR(t, code, "ENOSPC");
  const char *ocode = NULL;
  s = store_open(path, 0, msg, sizeof msg, &ocode);
  CHECK(t, s != NULL);
  if (s != NULL) {
    CHECK(t, select_int(s, "SELECT count(*) FROM x") == 2);
    store_close(s);
  }
  remove_temp(dir);
}
