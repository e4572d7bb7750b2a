/* store.c: store.h over SQLite 3: connection settings, a statement cache keyed by SQL
 * text (statements are prepared once and reused, transaction control included), nested
 * transactions through savepoints, error codes that name the failure, and the change
 * stamps a card cache checks. Used from the loop thread only. */
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "storevfs.h"

typedef struct store_slot {
  char *sql;
  uint32_t hash;
  sqlite3_stmt *st;
  uint64_t stamp;  /* see store_columns_stamp */
  int reprepared;  /* SQLite's re-prepare count when stamp was given */
} store_slot;

/* The slot a caller's SQL text was last found in, by the text's address: the engine's
 * statements are constants that keep their address, and hashing the text (up to a few
 * hundred bytes) and scanning the cache for each of the fifteen or so statements of a step
 * cost more than running some of them. A hit is confirmed by comparing the text, so an
 * address reused for other text, or a slot evicted since, falls back to the full lookup.
 * Two ways a set, the last found first: a turn's thirty or so texts, direct-mapped into 256
 * entries by address, met at least one pair sharing an entry in most runs (which pair
 * depends on where the allocator put the texts), and such a pair missed at every use. */
#define STORE_MEMO_BITS 9 /* 512 sets */
#define STORE_MEMO_WAYS 2

#define ST(x) ((sqlite3_stmt *)(x))

typedef struct store_memo {
  const char *sql;
  int slot;
} store_memo;

struct store {
  sqlite3 *db;
  int depth;                          /* open transaction levels */
  int next_evict;                     /* round-robin victim when the cache is full */
  int ncached;
  uint64_t cards_gen;                 /* see store_cards_generation */
  uint64_t undone;                    /* see store_rollbacks */
  uint64_t writes, writes_at_begin;   /* statements that may write: the total, and at BEGIN */
  uint64_t own_gen;                   /* see store_stamp: what total_changes misses */
  char now[32];                       /* the transaction's time for orket_now(), or "" */
  int now_len;
  int write_tx;                       /* the outermost transaction is BEGIN IMMEDIATE */
  int dv_known;                       /* dv holds data_version for this write transaction */
  int64_t dv;
  uint64_t stamps;                    /* the last stamp given to a slot */
  int last_slot;                      /* of the statement store_prepare last returned */
  int keep;                           /* a slot + 1 that eviction must spare, 0: none */
  int pend;                           /* the lowest savepoint level not yet opened, 0: none */
  uint64_t shares;                    /* bit L: level L rides on an earlier level's savepoint */
  store_slot cache[STORE_CACHE_SIZE];
  store_memo memo[1 << STORE_MEMO_BITS][STORE_MEMO_WAYS];
  char err[512];
  const char *code;
  int file_error;                     /* the last error is about the file, not the SQL */
  char *path;                         /* as opened: error messages name it */
};

static const char *store_code_of(int rc) {
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return "EBUSY";
  case SQLITE_CONSTRAINT: return "ECONSTRAINT";
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB: return "ECORRUPT";
  case SQLITE_CANTOPEN: return "ECANTOPEN";
  case SQLITE_READONLY: return "EREADONLY";
  case SQLITE_FULL: return "ENOSPC";
  default: return "ESQL";
  }
}

/* Failures of the database file rather than of the SQL run on it: a damaged, read-only,
 * full, unreadable or locked file. The user can act on these (store_file_error). */
static int store_is_file_error(int rc) {
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
  case SQLITE_CANTOPEN:
  case SQLITE_READONLY:
  case SQLITE_FULL:
  case SQLITE_IOERR:
  case SQLITE_PERM:
  case SQLITE_PROTOCOL: return 1;
  default: return 0;
  }
}

/* A write past the process's file-size limit (ulimit -f, systemd LimitFSIZE=) fails with
 * EFBIG (main.c catches SIGXFSZ), which SQLite says as "disk I/O error"; one cut short at
 * the limit, as "database or disk is full". The system's errno (sys, from store_sys_errno)
 * may not be known (a write cut short has none), so a file of path's (the store, its -wal
 * or -journal) within a WAL frame of the limit tells too. Said with the limit named, into
 * note (empty otherwise) -> 1 when the failure is the limit's (then coded as a full disk:
 * the same stop, and a resume carries on once it is raised), 0 otherwise. */
static int store_fsize_note(int sys, const char *path, int rc, char *note, size_t len) {
  note[0] = '\0';
  if ((rc & 0xff) != SQLITE_IOERR && (rc & 0xff) != SQLITE_FULL) return 0;
  int efbig = sys == EFBIG;
  struct rlimit lim;
  int limited = getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY;
  int reached = 0;
  for (int i = 0; limited && !reached && path && i < 3; i++) {
    char p[4096];
    struct stat st;
    /* the largest page (64 KiB) and a WAL frame's header: the next write that failed */
    if (snprintf(p, sizeof p, "%s%s", path, i == 0 ? "" : i == 1 ? "-wal" : "-journal") < (int)sizeof p &&
        stat(p, &st) == 0 && (unsigned long long)st.st_size + 65536 + 24 >= (unsigned long long)lim.rlim_cur)
      reached = 1;
  }
  if (limited && (efbig || reached))
    snprintf(note, len, " (%s: a file reached the process's file-size limit of %llu bytes, ulimit -f or systemd "
             "LimitFSIZE=; raise it)", strerror(EFBIG), (unsigned long long)lim.rlim_cur);
  else if (efbig)
    snprintf(note, len, " (%s: a file reached the largest size its file system allows)", strerror(EFBIG));
  else
    return 0;
  return 1;
}

/* The system's errno behind rc, a failure of db's files: what the store's VFS kept for it
 * (storevfs.c; it forgets it then), or else SQLite's own, which it notes only on some
 * paths (a failed commit leaves none) -> 0 when unknown. */
static int store_sys_errno(sqlite3 *db, int rc) {
  if (db == NULL) return 0;
  int sys = storevfs_errno(db, rc);
  if (sys == 0 && ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_CANTOPEN)) sys = sqlite3_system_errno(db);
  return sys;
}

/* What the system said of a failure of the store's files, into note for after SQLite's
 * message (" (Disk quota exceeded: ...)"; empty when nothing is known or SQLite's words
 * say it) -> the code to report it under instead of SQLite's (a used-up quota or a
 * file-size limit stops a run as a full disk does, and the same resume carries on once
 * it is raised), or NULL. sys: store_sys_errno's. */
static const char *store_cause(int sys, const char *path, int rc, char *note, size_t len) {
  note[0] = '\0';
  if (store_fsize_note(sys, path, rc, note, len)) return "ENOSPC";
  if (sys == 0) return NULL;
  switch (sys) {
  case EDQUOT:
    snprintf(note, len, " (%s: a disk quota (the user's, group's or project's) on its file system is used up; "
             "raise the quota, or free space that counts against it)", strerror(EDQUOT));
    return "ENOSPC";
  case ENOSPC:
    if ((rc & 0xff) != SQLITE_FULL) snprintf(note, len, " (%s)", strerror(ENOSPC));
    return "ENOSPC";
  default:
    snprintf(note, len, " (%s)", strerror(sys));
    return NULL;
  }
}

const char *store_write_cause(int sys, const char *path, char *note, size_t len) {
  return store_cause(sys, path, SQLITE_IOERR, note, len);
}

/* The length of path made absolute, its folder's links resolved as SQLite resolves them
 * (0 when it cannot be told). */
static size_t store_full_length(const char *path) {
  char dir[PATH_MAX], real[PATH_MAX];
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t dlen = slash ? (size_t)(slash - path) : 0;
  if (dlen >= sizeof dir) return 0;
  if (slash && dlen == 0) strcpy(dir, "/");
  else if (slash) {
    memcpy(dir, path, dlen);
    dir[dlen] = '\0';
  } else strcpy(dir, ".");
  if (realpath(dir, real) == NULL) return 0;
  return strlen(real) + (strcmp(real, "/") == 0 ? 0 : 1) + strlen(base);
}

/* SQLite refuses a database whose full path leaves no room for its longest companion's
 * ending ("-journal", 8 bytes) within its VFS's mxPathname (512 bytes on Unix), and says
 * only "unable to open database file": a project under a deep enough folder could not be
 * used, and nothing said why. */
static int store_path_note(int rc, const char *path, char *note, size_t len) {
  note[0] = '\0';
  sqlite3_vfs *vfs = sqlite3_vfs_find(storevfs_name()); /* NULL: the default, which it wraps */
  if ((rc & 0xff) != SQLITE_CANTOPEN || vfs == NULL || path == NULL) return 0;
  size_t n = store_full_length(path);
  if (n == 0 || n + 8 <= (size_t)vfs->mxPathname) return 0;
  snprintf(note, len, ": its full path is %zu bytes, and SQLite opens a database whose path is at most %d (%d with "
           "the 8 of its \"-journal\" ending); move the project to a shorter path", n, vfs->mxPathname - 8,
           vfs->mxPathname);
  return 1;
}

/* The message names the database file ("DIR/.orket/orket.db: database disk image is
 * malformed"), so whoever reads it knows which file to look at. */
static int store_fail(store *s, int rc) {
  const char *path = s->path && s->path[0] && strcmp(s->path, ":memory:") != 0 ? s->path : "store";
  char note[224];
  const char *code = store_is_file_error(rc) ? store_cause(store_sys_errno(s->db, rc), s->path, rc, note, sizeof note)
                                             : (note[0] = '\0', NULL);
  snprintf(s->err, sizeof s->err, "%s: %s%s", path, sqlite3_errmsg(s->db), note);
  s->code = code ? code : store_code_of(rc);
  s->file_error = store_is_file_error(rc);
  return -1;
}

const char *store_error(store *s) { return s->err; }
const char *store_code(store *s) { return s->code ? s->code : "ESQL"; }
int store_file_error(store *s) { return s->file_error; }
int store_cached(store *s) { return s->ncached; }

/* The update hook: counts this connection's changes to cards (the card cache's stamp).
 * dependencies is WITHOUT ROWID, so the hook never sees it; its rows only change together
 * with their card's row (create inserts it, import rewrites it). */
static void store_on_update(void *ud, int op, const char *db, const char *table,
                            sqlite3_int64 rowid) {
  store *s = ud;
  if (strcmp(table, "cards") == 0) s->cards_gen++;
}

/* SQL orket_now(): the time of the current transaction as ISO 8601 UTC with milliseconds
 * ("2024-05-01T12:00:00.123Z", what strftime('%Y-%m-%dT%H:%M:%fZ', 'now') gives), taken once
 * per transaction at its first use and at each call outside one. Every row a
 * transaction writes carries the same time (PostgreSQL's now() means the same), and a
 * record costs no date formatting per row. */
/* v as width decimal digits at o (v in range: 0 <= v < 10^width) -> past them */
static char *store_digits(char *o, int v, int width) {
  for (int i = width - 1; i >= 0; i--) {
    o[i] = (char)('0' + v % 10);
    v /= 10;
  }
  return o + width;
}

const char *store_now(store *s, size_t *len) {
  if (s->depth == 0 || s->now_len == 0) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int year = tm.tm_year + 1900, ms = (int)(ts.tv_nsec / 1000000);
    if (year >= 0 && year <= 9999) {
      /* what "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" writes, digit by digit: snprintf's
       * machinery was most of the cost of the time every transaction stamps its rows with */
      char *o = store_digits(s->now, year, 4);
      *o++ = '-';
      o = store_digits(o, tm.tm_mon + 1, 2);
      *o++ = '-';
      o = store_digits(o, tm.tm_mday, 2);
      *o++ = 'T';
      o = store_digits(o, tm.tm_hour, 2);
      *o++ = ':';
      o = store_digits(o, tm.tm_min, 2);
      *o++ = ':';
      o = store_digits(o, tm.tm_sec, 2);
      *o++ = '.';
      o = store_digits(o, ms, 3);
      *o++ = 'Z';
      *o = '\0';
      s->now_len = (int)(o - s->now);
    } else {
      int n = snprintf(s->now, sizeof s->now, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
      s->now_len = (n > 0 && (size_t)n < sizeof s->now) ? n : 0;
    }
  }
  *len = (size_t)s->now_len;
  if (s->depth == 0) s->now_len = 0; /* outside a transaction the next call takes the clock */
  return s->now;
}

static void store_now_fn(sqlite3_context *cx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  size_t len;
  const char *now = store_now(sqlite3_user_data(cx), &len);
  sqlite3_result_text(cx, now, (int)len, SQLITE_TRANSIENT);
}

/* "file:" URI of path for a read-only open with the given query, or NULL (out of memory).
 * %, ? and # are the characters a URI path cannot hold as they are. */
static char *store_uri(const char *path, const char *query) {
  size_t n = strlen(path), q = strlen(query);
  char *u = malloc(5 + 3 * n + 1 + q + 1);
  if (u == NULL) return NULL;
  char *o = u;
  memcpy(o, "file:", 5);
  o += 5;
  for (const char *p = path; *p; p++) {
    if (*p == '%' || *p == '?' || *p == '#') o += sprintf(o, "%%%02X", (unsigned char)*p);
    else *o++ = *p;
  }
  *o++ = '?';
  memcpy(o, query, q + 1);
  return u;
}

/* One read-only open of path with query (the connection before it, if any, closed first);
 * read: its schema version read too, where SQLite meets the -shm -> SQLite's code. */
static int store_open_ro_as(store *s, const char *path, const char *query, int read) {
  if (s->db != NULL) sqlite3_close_v2(s->db);
  s->db = NULL;
  char *uri = store_uri(path, query);
  if (uri == NULL) return SQLITE_NOMEM;
  int rc = sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, storevfs_name());
  free(uri);
  if (rc == SQLITE_OK && read) rc = sqlite3_exec(s->db, "PRAGMA user_version", NULL, NULL, NULL);
  return rc;
}

/* A read-only connection to a WAL database needs the -shm file, and SQLite creates it when
 * it is missing. On a read-only file system (a board mounted read-only into a container)
 * it cannot, after the last writer closed cleanly and removed it; the file then holds every
 * commit and no writer is at work (a writer would have made a -wal file), so it is opened
 * as immutable: read without locks or shared memory.
 * On a full disk (or a used-up quota) SQLite can make the -shm but not give it its size
 * (nor, where blocks are smaller than a page, its blocks: storevfs.c). A reader needs no
 * room for it: with readonly_shm, SQLite maps it read-only when a writer has it in use,
 * and otherwise reads the -wal's commits into memory of its own (what it does for a
 * database on read-only media), so every commit, a killed writer's too, is read. */
static int store_open_readonly(store *s, const char *path) {
  int rc = store_open_ro_as(s, path, "mode=ro", 1);
  if (rc != SQLITE_OK && s->db != NULL) {
    int sys = store_sys_errno(s->db, rc);
    if ((rc & 0xff) == SQLITE_FULL || sys == ENOSPC || sys == EDQUOT) rc = store_open_ro_as(s, path, "mode=ro&readonly_shm=1", 1);
  }
  /* no -shm and no right to make one: CANTOPEN on a read-only file system (or a full
   * disk with no -shm left to read), READONLY_DIRECTORY (or _CANTINIT) where the folder
   * is not the user's to write */
  int ext = s->db ? sqlite3_extended_errcode(s->db) : rc;
  if ((rc & 0xff) != SQLITE_CANTOPEN && ext != SQLITE_READONLY_DIRECTORY && ext != SQLITE_READONLY_CANTINIT) return rc;
  size_t n = strlen(path);
  char *wal = malloc(n + 5);
  if (wal == NULL) return SQLITE_NOMEM;
  memcpy(wal, path, n);
  memcpy(wal + n, "-wal", 5);
  int writer = access(wal, F_OK) == 0;
  free(wal);
  if (writer) return rc;
  return store_open_ro_as(s, path, "immutable=1", 0);
}

void store_process_init(void) { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

store *store_open(const char *path, int mode, char *err, size_t errlen, const char **code) {
  store *s = calloc(1, sizeof *s);
  if (s == NULL) {
    snprintf(err, errlen, "store: out of memory");
    *code = "ENOMEM";
    return NULL;
  }
  s->path = strdup(path);
  if (s->path == NULL) {
    snprintf(err, errlen, "store: out of memory");
    *code = "ENOMEM";
    free(s);
    return NULL;
  }
  int readonly = (mode & STORE_OPEN_READONLY) != 0;
  int rc;
  if (readonly) {
    rc = store_open_readonly(s, path);
  } else {
    int flags = SQLITE_OPEN_READWRITE | ((mode & STORE_OPEN_CREATE) ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    rc = sqlite3_open_v2(path, &s->db, flags, storevfs_name());
  }
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    sqlite3_update_hook(s->db, store_on_update, s);
    rc = sqlite3_create_function(s->db, "orket_now", 0, SQLITE_UTF8 | SQLITE_DIRECTONLY, s, store_now_fn,
                                 NULL, NULL);
  }
  if (rc == SQLITE_OK) {
    /* user_version first: it reads the header, so a file that is not a database fails
     * here with a clear code rather than on the first real query. synchronous=NORMAL in
     * WAL survives a process crash (what the crash test checks); only an OS crash or
     * power cut can lose the last commits, never corrupt the file. journal_size_limit:
     * SQLite reuses a -wal file without shrinking it, so one large transaction (a restore,
     * an import) left a -wal of its size for as long as any connection (a server) stayed
     * open; with it, the file is cut back to 64 MiB each time the WAL starts over. */
    rc = sqlite3_exec(s->db,
                      readonly ? "PRAGMA user_version; PRAGMA temp_store=MEMORY;"
                               : "PRAGMA user_version; PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;"
                                 "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;"
                                 "PRAGMA journal_size_limit=" STORE_WAL_LIMIT ";",
                      NULL, NULL, NULL);
  }
  if (rc != SQLITE_OK) {
    /* SQLite says "disk I/O error" for a full disk met while it sets up the WAL's index
     * (-shm): the system's own error says which (store_cause), and a full disk is ENOSPC,
     * as a write's */
    int sys = s->db ? store_sys_errno(s->db, rc) : 0;
    char note[256];
    int fsize = store_fsize_note(sys, path, rc, note, sizeof note);
    int toolong = !fsize && store_path_note(rc, path, note, sizeof note);
    const char *cause = fsize ? "ENOSPC" : toolong ? "ENAMETOOLONG" : store_cause(sys, path, rc, note, sizeof note);
    if (toolong) {
      /* a path that long with the note may not fit: its end, which names the file, is shown */
      size_t plen = strlen(path), fixed = strlen(note) + 32;
      size_t room = errlen > fixed ? errlen - fixed : 0;
      const char *shown = plen > room ? path + plen - room : path;
      snprintf(err, errlen, "store: cannot open %s%s%s", shown == path ? "" : "...", shown, note);
    } else
      snprintf(err, errlen, "store: cannot open %s: %s%s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc),
               note);
    *code = cause ? cause : store_code_of(rc);
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
    return NULL;
  }
  return s;
}

static store_stmt *store_lookup(store *s, const char *sql);
static int store_control(store *s, const char *sql);
static int store_open_pending(store *s);
static const char *store_savepoint_sql(int verb, int level, char *buf, size_t len);
enum { STORE_SP_SAVEPOINT, STORE_SP_RELEASE, STORE_SP_ROLLBACK_TO };

void store_close(store *s) {
  if (s == NULL) return;
  for (int i = 0; i < STORE_CACHE_SIZE; i++) {
    sqlite3_finalize(s->cache[i].st);
    free(s->cache[i].sql);
  }
  if (s->depth > 0) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close_v2(s->db);
  free(s->path);
  free(s);
}

int store_exec(store *s, const char *sql) {
  if (s->pend != 0 && store_open_pending(s) != 0) return -1; /* a script may write */
  s->own_gen++; /* a script may change the schema, which sqlite3_total_changes does not count */
  s->writes++;
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : store_fail(s, rc);
}

static uint32_t store_hash(const char *p) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
  return h;
}

/* The set of a text's address: multiplied by 2^64 / phi, its high bits, which every bit of
 * the address moves (its low bits are the allocator's alignment and size class). */
static store_memo *store_memo_of(store *s, const char *sql) {
  uint64_t h = (uint64_t)(uintptr_t)sql * UINT64_C(0x9E3779B97F4A7C15);
  return s->memo[h >> (64 - STORE_MEMO_BITS)];
}

/* Notes that sql was found in slot: first in its set, the other way keeping the one that
 * was first (unless that was sql's own, older entry). */
static void store_memo_note(store_memo *set, const char *sql, int slot) {
  if (set[0].sql != sql) set[1] = set[0];
  set[0] = (store_memo){sql, slot};
}

/* A cached statement for a new use. Its last use ended with store_reset, which cleared
 * its bindings (or it has no parameters); reset again for a use a caller left unfinished
 * (stepped, not run to its end). A statement at rest is not reset again: sqlite3_reset
 * does its whole round (the connection's mutex, the VM's halt) to find nothing to do. */
static store_stmt *store_reuse(store *s, int slot) {
  s->last_slot = slot;
  sqlite3_stmt *st = s->cache[slot].st;
  if (sqlite3_stmt_busy(st)) sqlite3_reset(st);
  return (store_stmt *)st;
}

static store_stmt *store_lookup(store *s, const char *sql) {
  store_memo *m = store_memo_of(s, sql);
  for (int w = 0; w < STORE_MEMO_WAYS; w++) {
    if (m[w].sql != sql) continue;
    int slot = m[w].slot;
    store_slot *c = &s->cache[slot];
    if (c->st != NULL && strcmp(c->sql, sql) == 0) {
      if (w != 0) store_memo_note(m, sql, slot);
      return store_reuse(s, slot);
    }
  }
  uint32_t h = store_hash(sql);
  int free_slot = -1;
  for (int i = 0; i < STORE_CACHE_SIZE; i++) {
    store_slot *c = &s->cache[i];
    if (c->st == NULL) {
      if (free_slot < 0) free_slot = i;
      continue;
    }
    if (c->hash == h && strcmp(c->sql, sql) == 0) {
      store_memo_note(m, sql, i);
      return store_reuse(s, i);
    }
  }
  sqlite3_stmt *st = NULL;
  const char *tail = NULL;
  int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, &tail);
  if (rc != SQLITE_OK) {
    store_fail(s, rc);
    return NULL;
  }
  if (st == NULL || (tail && tail[strspn(tail, " \t\r\n;")] != '\0')) {
    sqlite3_finalize(st);
    snprintf(s->err, sizeof s->err, "store: expected exactly one SQL statement: %.200s", sql);
    s->code = "ESQL";
    s->file_error = 0;
    return NULL;
  }
  char *copy = strdup(sql);
  if (copy == NULL) {
    sqlite3_finalize(st);
    snprintf(s->err, sizeof s->err, "store: out of memory");
    s->code = "ENOMEM";
    s->file_error = 0;
    return NULL;
  }
  if (free_slot < 0) { /* full: evict round-robin (cheap and fair enough for a hot set) */
    free_slot = s->next_evict;
    if (free_slot + 1 == s->keep) free_slot = (free_slot + 1) % STORE_CACHE_SIZE;
    s->next_evict = (free_slot + 1) % STORE_CACHE_SIZE;
    sqlite3_finalize(s->cache[free_slot].st);
    free(s->cache[free_slot].sql);
  } else {
    s->ncached++;
  }
  s->cache[free_slot] = (store_slot){copy, h, st, ++s->stamps, 0};
  store_memo_note(m, sql, free_slot);
  s->last_slot = free_slot;
  return (store_stmt *)st;
}

/* Savepoints are opened when first needed. A nested transaction that writes nothing
 * (most of a step's reads) needs none, and levels opened one inside another with no write
 * between them start from the same state, so one savepoint, the outermost's, serves them
 * all: rolling back an inner one is rolling back to it (the others it serves stay open),
 * and only its owner releases it. Before a statement that writes, the levels still
 * waiting (pend and above) get that one savepoint. Levels past 63 open theirs at once. */
static int store_open_pending(store *s) {
  char buf[48];
  int level = s->pend;
  s->pend = 0;
  if (store_control(s, store_savepoint_sql(STORE_SP_SAVEPOINT, level, buf, sizeof buf)) != 0) {
    s->pend = level;
    return -1;
  }
  for (int l = level + 1; l < s->depth; l++) s->shares |= (uint64_t)1 << l;
  return 0;
}

/* SQLite calls SAVEPOINT, RELEASE, ROLLBACK, BEGIN and COMMIT read-only, yet a caller's
 * own one sent inside a level still waiting for its savepoint would end up around ours
 * (RELEASE of the caller's would release ours too): they count as writes. */
static int store_txn_control(const char *sql) {
  static const char *const words[] = {"savepoint", "release", "rollback", "begin", "commit", "end"};
  while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r') sql++;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    size_t n = strlen(words[i]);
    if (strncasecmp(sql, words[i], n) == 0 && !(sql[n] >= 'A' && sql[n] <= 'Z') && !(sql[n] >= 'a' && sql[n] <= 'z') &&
        sql[n] != '_')
      return 1;
  }
  return 0;
}

/* The cached statement for sql; with levels waiting for their savepoint and a statement
 * that writes, the savepoint is opened first (sparing the statement's slot). */
store_stmt *store_prepare(store *s, const char *sql) {
  store_stmt *st = store_lookup(s, sql);
  /* a statement that may write moves the stamp whatever it changes: DROP TABLE and ALTER
   * TABLE change rows that sqlite3_total_changes does not count */
  if (st != NULL && !sqlite3_stmt_readonly(ST(st))) {
    s->own_gen++;
    s->writes++;
  }
  if (st == NULL || s->pend == 0 || (sqlite3_stmt_readonly(ST(st)) && !store_txn_control(sql))) return st;
  int slot = s->last_slot;
  s->keep = slot + 1;
  int rc = store_open_pending(s);
  s->keep = 0;
  s->last_slot = slot;
  return rc == 0 ? st : NULL;
}

uint64_t store_columns_stamp(store *s, store_stmt *st, int *slot) {
  int i = s->last_slot;
  if (s->cache[i].st != ST(st)) { /* not the last prepared: found by a scan */
    for (i = 0; i < STORE_CACHE_SIZE && s->cache[i].st != ST(st); i++) {
    }
    if (i == STORE_CACHE_SIZE) return 0;
  }
  store_slot *c = &s->cache[i];
  int r = sqlite3_stmt_status(c->st, SQLITE_STMTSTATUS_REPREPARE, 0);
  if (r != c->reprepared) {
    c->reprepared = r;
    c->stamp = ++s->stamps;
  }
  *slot = i;
  return c->stamp;
}

static int store_bound(store_stmt *st, int rc) {
  if (rc == SQLITE_OK) return 0;
  /* the connection's error message says which parameter */
  return -1;
}
int store_bind_null(store_stmt *st, int i) { return store_bound(st, sqlite3_bind_null(ST(st), i)); }
int store_bind_int(store_stmt *st, int i, int64_t v) {
  return store_bound(st, sqlite3_bind_int64(ST(st), i, v));
}
int store_bind_float(store_stmt *st, int i, double v) {
  return store_bound(st, sqlite3_bind_double(ST(st), i, v));
}
/* SQLITE_STATIC: no copy of the text (a turn's request, a tool's result) per insert; the
 * caller keeps it valid until store_reset clears the binding (store.h). */
int store_bind_text(store_stmt *st, int i, const char *v, size_t len) {
  return store_bound(st, sqlite3_bind_text64(ST(st), i, v, len, SQLITE_STATIC, SQLITE_UTF8));
}
int store_param_count(store_stmt *st) { return sqlite3_bind_parameter_count(ST(st)); }

int store_step(store_stmt *st) {
  int rc = sqlite3_step(ST(st));
  if (rc == SQLITE_ROW) return STORE_ROW;
  if (rc == SQLITE_DONE) return STORE_DONE;
  return STORE_ERROR;
}

void store_reset(store_stmt *st) {
  sqlite3_reset(ST(st));
  sqlite3_clear_bindings(ST(st));
}

int store_column_count(store_stmt *st) { return sqlite3_column_count(ST(st)); }
const char *store_column_name(store_stmt *st, int i) { return sqlite3_column_name(ST(st), i); }
int store_column_type(store_stmt *st, int i) {
  switch (sqlite3_column_type(ST(st), i)) {
  case SQLITE_INTEGER: return STORE_INT;
  case SQLITE_FLOAT: return STORE_FLOAT;
  case SQLITE_TEXT: return STORE_TEXT;
  case SQLITE_BLOB: return STORE_BLOB;
  default: return STORE_NULL;
  }
}
int64_t store_column_int(store_stmt *st, int i) { return sqlite3_column_int64(ST(st), i); }
double store_column_float(store_stmt *st, int i) { return sqlite3_column_double(ST(st), i); }
const char *store_column_text(store_stmt *st, int i, size_t *len) {
  const char *p = (const char *)sqlite3_column_text(ST(st), i);
  *len = (size_t)sqlite3_column_bytes(ST(st), i);
  return p;
}

int64_t store_changes(store *s) { return sqlite3_changes64(s->db); }
int64_t store_last_id(store *s) { return sqlite3_last_insert_rowid(s->db); }

/* A failure of the other file of a backup: its message names that file. */
static int store_fail_other(store *s, sqlite3 *other, const char *path, int rc) {
  char note[224];
  const char *code = store_is_file_error(rc) ? store_cause(store_sys_errno(other, rc), path, rc, note, sizeof note)
                                             : (note[0] = '\0', NULL);
  snprintf(s->err, sizeof s->err, "%s: %s%s", path, other ? sqlite3_errmsg(other) : sqlite3_errstr(rc), note);
  s->code = code ? code : store_code_of(rc);
  s->file_error = store_is_file_error(rc);
  return -1;
}

/* Copies src into dst in one step (one read snapshot of src, one write transaction on
 * dst), retrying while either is locked. A step of all pages, not a page at a time: a
 * paged backup starts again each time another connection writes the source, and on a busy
 * board it might never end. */
static int store_copy(sqlite3 *dst, sqlite3 *src) {
  sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
  if (!b) return sqlite3_extended_errcode(dst);
  int rc, waited = 0;
  while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    if (waited >= STORE_BUSY_TIMEOUT_MS) break;
    sqlite3_sleep(20);
    waited += 20;
  }
  int frc = sqlite3_backup_finish(b);
  return rc == SQLITE_DONE ? frc : rc;
}

int store_backup_to(store *s, const char *path) {
  sqlite3 *dst = NULL;
  int rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, storevfs_name());
  if (rc == SQLITE_OK) rc = store_copy(dst, s->db);
  /* the copy keeps the source's WAL flag; a backup is one file, read without a -wal */
  if (rc == SQLITE_OK) rc = sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    store_fail_other(s, dst, path, rc);
    sqlite3_close(dst);
    return -1;
  }
  return sqlite3_close(dst) == SQLITE_OK ? 0 : store_fail_other(s, NULL, path, SQLITE_IOERR);
}

int store_restore_from(store *s, const char *path) {
  if (s->depth > 0) {
    snprintf(s->err, sizeof s->err, "store: a restore cannot run inside a transaction");
    s->code = "ESQL";
    s->file_error = 0;
    return -1;
  }
  sqlite3 *src = NULL;
  int rc = sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, storevfs_name());
  if (rc != SQLITE_OK) {
    store_fail_other(s, src, path, rc);
    sqlite3_close(src);
    return -1;
  }
  rc = store_copy(s->db, src);
  sqlite3_close(src);
  s->cards_gen++; /* every card may have changed */
  s->own_gen++;   /* every row: the backup's pages are no statement's changes */
  if (rc != SQLITE_OK) return store_fail(s, rc);
  /* every page went through the -wal: copied into the file and the -wal cut to nothing,
   * not left the store's size beside it. Best effort: a reader of another connection
   * that holds the WAL makes it BUSY, and then the next checkpoint cuts it to
   * journal_size_limit. */
  sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
  return 0;
}

int store_failed(store *s) { return store_fail(s, sqlite3_extended_errcode(s->db)); }

int store_depth(store *s) { return s->depth; }

int store_writing(store *s) { return sqlite3_txn_state(s->db, "main") == SQLITE_TXN_WRITE; }

const char *store_file(store *s) {
  const char *f = sqlite3_db_filename(s->db, "main");
  return f ? f : "";
}

int store_held_elsewhere(store *s) {
  const char *path = s->path && s->path[0] && strcmp(s->path, ":memory:") != 0 ? s->path : "store";
  snprintf(s->err, sizeof s->err, "%s: database is locked (by another connection of this process)", path);
  s->code = "EBUSY";
  s->file_error = 1;
  return -1;
}

/* Runs one statement without parameters or rows through the cache: BEGIN, COMMIT and the
 * savepoint statements run several times a step, and sqlite3_exec would parse them every
 * time. 0 or -1 with the error recorded. */
static int store_control(store *s, const char *sql) {
  store_stmt *st = store_lookup(s, sql);
  if (st == NULL) return -1;
  int rc = sqlite3_step(ST(st));
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    store_fail(s, sqlite3_extended_errcode(s->db));
    sqlite3_reset(ST(st));
    return -1;
  }
  sqlite3_reset(ST(st));
  return 0;
}

/* A savepoint statement: "VERB orket_txN". The usual levels are constants, so the text
 * keeps its address and the statement cache finds it at once (store_memo); deeper ones
 * are written into buf. */
#define STORE_SP_LEVELS 6

static const char *store_savepoint_sql(int verb, int level, char *buf, size_t len) {
  static const char *const known[3][STORE_SP_LEVELS] = {
      {"SAVEPOINT orket_tx0", "SAVEPOINT orket_tx1", "SAVEPOINT orket_tx2", "SAVEPOINT orket_tx3",
       "SAVEPOINT orket_tx4", "SAVEPOINT orket_tx5"},
      {"RELEASE orket_tx0", "RELEASE orket_tx1", "RELEASE orket_tx2", "RELEASE orket_tx3",
       "RELEASE orket_tx4", "RELEASE orket_tx5"},
      {"ROLLBACK TO orket_tx0", "ROLLBACK TO orket_tx1", "ROLLBACK TO orket_tx2",
       "ROLLBACK TO orket_tx3", "ROLLBACK TO orket_tx4", "ROLLBACK TO orket_tx5"},
  };
  static const char *const verbs[3] = {"SAVEPOINT", "RELEASE", "ROLLBACK TO"};
  if (level >= 0 && level < STORE_SP_LEVELS) return known[verb][level];
  snprintf(buf, len, "%s orket_tx%d", verbs[verb], level);
  return buf;
}

/* Opens a transaction (a savepoint when one is open). A write transaction takes the write
 * lock at once (BEGIN IMMEDIATE); a read transaction (BEGIN DEFERRED) only pins one WAL
 * snapshot, so a group of reads takes one read lock instead of one per statement. */
static int store_open_tx(store *s, int write) {
  char buf[48];
  const char *sql;
  if (s->depth == 0) {
    s->now_len = 0; /* a new transaction takes a new time */
    s->write_tx = write;
    s->dv_known = 0;
    s->pend = 0;
    s->shares = 0;
    s->writes_at_begin = s->writes;
    sql = write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED";
  } else if (s->depth < 64) { /* opened before its first write (store_open_pending) */
    if (s->pend == 0) s->pend = s->depth;
    s->depth++;
    return 0;
  } else {
    if (s->pend != 0 && store_open_pending(s) != 0) return -1;
    sql = store_savepoint_sql(STORE_SP_SAVEPOINT, s->depth, buf, sizeof buf);
  }
  if (store_control(s, sql) != 0) return -1;
  s->depth++;
  return 0;
}

int store_begin(store *s) { return store_open_tx(s, 1); }

int store_begin_read(store *s) { return store_open_tx(s, 0); }

int store_begin_within(store *s, int ms) {
  sqlite3_busy_timeout(s->db, ms > STORE_BUSY_TIMEOUT_MS ? STORE_BUSY_TIMEOUT_MS : ms);
  int rc = store_open_tx(s, 1);
  sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
  return rc;
}

/* Closes level's share of the savepoints when it has none of its own: -> 1 when it was
 * still waiting for one (it wrote nothing) or rode on an earlier level's, 0 when it owns
 * one (or is past 63). */
static int store_riding(store *s, int level) {
  if (s->pend != 0 && s->pend <= level) {
    if (s->pend == level) s->pend = 0;
    return 1;
  }
  if (level < 64 && (s->shares >> level & 1)) {
    s->shares &= ~((uint64_t)1 << level);
    return 1;
  }
  return 0;
}

int store_commit(store *s) {
  char buf[48];
  if (s->depth == 0) {
    snprintf(s->err, sizeof s->err, "store: commit without a transaction");
    s->code = "ESQL";
    s->file_error = 0;
    return -1;
  }
  int level = s->depth - 1;
  /* SQLite rolls the whole transaction back on some errors (SQLITE_FULL, OR ROLLBACK):
   * a level without a savepoint of its own must not report its commit as done then */
  if (level > 0 && sqlite3_get_autocommit(s->db)) {
    snprintf(s->err, sizeof s->err, "store: the transaction is gone: SQLite rolled it back after an earlier error");
    s->code = "ESQL";
    s->file_error = 0;
    return -1;
  }
  if (level > 0 && store_riding(s, level)) { /* nothing of its own to release */
    s->depth--;
    return 0;
  }
  const char *sql = level == 0 ? "COMMIT" : store_savepoint_sql(STORE_SP_RELEASE, level, buf, sizeof buf);
  if (store_control(s, sql) != 0) return -1; /* still open: the caller rolls back */
  s->depth--;
  return 0;
}

int store_rollback(store *s) {
  char buf[48];
  if (s->depth == 0) return 0;
  s->cards_gen++; /* rows read inside may be gone */
  s->own_gen++;
  s->depth--;
  int rc;
  int level = s->depth;
  if (level != 0 && s->pend != 0 && s->pend <= level) { /* it wrote nothing: nothing to undo */
    if (s->pend == level) s->pend = 0;
    return 0;
  }
  if (level != 0 || s->writes != s->writes_at_begin) s->undone++; /* it may have written */
  if (level == 0) {
    rc = store_control(s, "ROLLBACK");
  } else if (level < 64 && (s->shares >> level & 1)) {
    /* back to the savepoint it rides on (the state it began in), which stays open */
    s->shares &= ~((uint64_t)1 << level);
    int owner = level - 1;
    while (owner > 0 && (s->shares >> owner & 1)) owner--;
    rc = store_control(s, store_savepoint_sql(STORE_SP_ROLLBACK_TO, owner, buf, sizeof buf));
  } else {
    rc = store_control(s, store_savepoint_sql(STORE_SP_ROLLBACK_TO, level, buf, sizeof buf));
    if (rc == 0) rc = store_control(s, store_savepoint_sql(STORE_SP_RELEASE, level, buf, sizeof buf));
  }
  /* SQLite may have rolled the whole transaction back itself (e.g. on SQLITE_FULL);
   * then there is nothing left to undo and the error is not worth reporting. */
  if (rc != 0 && sqlite3_get_autocommit(s->db)) {
    s->depth = 0;
    s->pend = 0;
    s->shares = 0;
    return 0;
  }
  return rc;
}

uint64_t store_cards_generation(store *s) { return s->cards_gen; }

uint64_t store_rollbacks(store *s) { return s->undone; }

/* Inside a write transaction no other connection can commit (BEGIN IMMEDIATE holds the
 * write lock from the start and the snapshot cannot move), so the pragma is read once per
 * transaction: a step asks for the card stamp about a dozen times. Not in a read
 * transaction: BEGIN DEFERRED takes its snapshot only at its first read. */
int64_t store_data_version(store *s) {
  int cache = s->depth > 0 && s->write_tx;
  if (cache && s->dv_known) return s->dv;
  store_stmt *st = store_prepare(s, "PRAGMA data_version");
  if (st == NULL) return -1;
  int rc = sqlite3_step(ST(st));
  int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(ST(st), 0) : -1;
  if (v < 0) store_fail(s, sqlite3_extended_errcode(s->db));
  sqlite3_reset(ST(st));
  if (cache && v >= 0) {
    s->dv = v;
    s->dv_known = 1;
  }
  return v;
}

/* sqlite3_total_changes64 counts every row this connection's INSERT, UPDATE and DELETE
 * statements changed (triggers' and WITHOUT ROWID tables' too), never going back; what it
 * does not count (a rollback's undoing, a script's schema change, a restore) moves own_gen. */
int store_stamp(store *s, int64_t *own, int64_t *dv) {
  int64_t v = store_data_version(s);
  if (v < 0) return -1;
  *own = (int64_t)(sqlite3_total_changes64(s->db) + (sqlite3_int64)s->own_gen);
  *dv = v;
  return 0;
}

int store_version(store *s) {
  store_stmt *st = store_prepare(s, "PRAGMA user_version");
  if (st == NULL) return -1;
  int v = store_step(st) == STORE_ROW ? (int)store_column_int(st, 0) : -1;
  store_reset(st);
  return v;
}

int store_set_version(store *s, int version) {
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version);
  return store_exec(s, sql);
}
