/* store.h: the board's storage engine behind a small SQL interface: open with the right
 * settings (WAL, busy timeout, foreign keys), reusable prepared statements, scripts,
 * transactions with nesting, the schema version. Implemented over SQLite in store.c; a
 * PostgreSQL backend would implement this header. No Lua types here (binding: lstore.c). */
#ifndef ORKET_STORE_H
#define ORKET_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct store_stmt store_stmt;

/* Results of store_step. Errors are negative. */
enum { STORE_DONE = 0, STORE_ROW = 1, STORE_ERROR = -1 };

/* Column types, as store_column_type reports them. */
enum { STORE_NULL, STORE_INT, STORE_FLOAT, STORE_TEXT, STORE_BLOB };

#define STORE_BUSY_TIMEOUT_MS 5000
#define STORE_WAL_LIMIT "67108864" /* journal_size_limit: a -wal file is cut back to 64 MiB */
#define STORE_CACHE_SIZE 128 /* prepared statements kept per connection */

/* How store_open opens: read and write (the default, 0), creating the file when missing,
 * or only reading. */
enum { STORE_OPEN_CREATE = 1, STORE_OPEN_READONLY = 2 };

/* Sets SQLite's process-wide options; called once at start, before any connection (SQLite
 * refuses them after its first open, and this keeps what it had then). Memory statistics
 * off: with them SQLite takes a global mutex around every allocation and free, for counts
 * nothing here reads (no soft heap limit, no sqlite3_status). */
void store_process_init(void);

/* Opens the database at path (mode: STORE_OPEN_* bits) in WAL mode with foreign keys on
 * and a busy timeout. Read-only, nothing is written and the journal mode is left as it is;
 * a board on a read-only file system opens too (see store.c). Returns NULL with a message
 * in err and the error code name (see store_code) in *code on failure. */
store *store_open(const char *path, int mode, char *err, size_t errlen, const char **code);

/* SQL run through a connection may call orket_now(): the current transaction's time as
 * ISO 8601 UTC with milliseconds, the same for every row the transaction writes.
 * store_now returns that text (NUL-terminated, *len bytes; valid until the next call),
 * so a caller that needs the time it wrote does not read it back. */
const char *store_now(store *s, size_t *len);

/* Finalizes every statement and closes the connection. Rolls back an open transaction.
 * NULL is allowed. */
void store_close(store *s);

/* Runs a script of one or more statements without parameters. 0 or -1 (see store_error). */
int store_exec(store *s, const char *sql);

/* A prepared statement for sql, from the cache when it was prepared before; it is reset
 * and has no bindings (store_reset cleared them). NULL on error (see store_error). Valid
 * until the next store_prepare or store_close: callers bind every parameter, step it, and
 * end each use with store_reset right away. */
store_stmt *store_prepare(store *s, const char *sql);

/* Bind parameter i (1-based). 0 or -1. Text is not copied: v must stay valid until the
 * statement's store_reset, which ends its use (the caller's own strings, for the time of
 * one call). */
int store_bind_null(store_stmt *st, int i);
int store_bind_int(store_stmt *st, int i, int64_t v);
int store_bind_float(store_stmt *st, int i, double v);
int store_bind_text(store_stmt *st, int i, const char *v, size_t len);
int store_param_count(store_stmt *st);

/* STORE_ROW, STORE_DONE or STORE_ERROR (then call store_failed). */
int store_step(store_stmt *st);
/* Ends a use of the statement: reset, and its bindings cleared (bound text is then no
 * longer read). */
void store_reset(store_stmt *st);

/* What names the columns of st (from store_prepare) for a binding that keeps what it makes
 * of them, such as their names as strings of its own, per cache slot: *slot is st's place
 * in the cache (0 .. STORE_CACHE_SIZE-1), and the stamp returned (never 0) changes whenever
 * that slot holds another statement or SQLite re-prepared st after a schema change (which
 * may change its columns). Ask after a step: a re-prepare happens inside one. 0 when st is
 * not in the cache. */
uint64_t store_columns_stamp(store *s, store_stmt *st, int *slot);

int store_column_count(store_stmt *st);
const char *store_column_name(store_stmt *st, int i);
int store_column_type(store_stmt *st, int i);
int64_t store_column_int(store_stmt *st, int i);
double store_column_float(store_stmt *st, int i);
const char *store_column_text(store_stmt *st, int i, size_t *len);

/* Rows changed by the last statement, and the last inserted row id. */
int64_t store_changes(store *s);
int64_t store_last_id(store *s);

/* Transactions nest: the outermost is BEGIN IMMEDIATE (it takes the write lock up front,
 * so it never fails half-way on a lock upgrade), inner ones are savepoints. 0 or -1. */
int store_begin(store *s);
/* store_begin_read: a read transaction (one snapshot, no write lock), closed by
 * store_commit or store_rollback; nested inside any transaction it is a savepoint. */
int store_begin_read(store *s);
/* store_begin_within: store_begin, waiting for another process's lock at most ms (0: not
 * at all; at most STORE_BUSY_TIMEOUT_MS), for a caller that has already waited out part of
 * the busy timeout for a lock of its own process's. */
int store_begin_within(store *s, int ms);
int store_commit(store *s);
int store_rollback(store *s);
int store_depth(store *s);

/* store_writing: 1 while the connection holds its file's write lock (a write transaction
 * of store_begin's or one a caller began with BEGIN). store_file: the file's full path as
 * SQLite resolved it ("" in memory), for telling connections of one file from another's.
 * store_held_elsewhere records the failure of a write transaction that another connection
 * of this process holds the lock against (EBUSY, a file error as a busy file's): waiting in
 * SQLite's busy handler would block the very thread that holder needs. Returns -1. */
int store_writing(store *s);
const char *store_file(store *s);
int store_held_elsewhere(store *s);

/* The schema version (PRAGMA user_version). -1 on error. */
int store_version(store *s);
int store_set_version(store *s, int version);

/* The last error: a message naming the database file ("PATH: what SQLite said"; "store:
 * ..." for errors of the caller's own) and a code name: EBUSY, ECONSTRAINT, ECORRUPT,
 * ECANTOPEN, EREADONLY, ENOSPC, ESQL. store_file_error: 1 when it is a failure of the file
 * (damaged, read-only, full, I/O, locked) rather than of the SQL, which the user can fix. */
const char *store_error(store *s);
const char *store_code(store *s);
int store_file_error(store *s);

/* Records the connection's last error (after a failed bind or step) for store_error and
 * store_code. Returns -1. */
int store_failed(store *s);

/* SQLite's online backup, one snapshot copied whole. store_backup_to copies this database
 * into a new file at path (which it creates; the caller renames it into place) and leaves
 * that file in rollback-journal mode, one self-contained file; other connections keep
 * reading and writing meanwhile (WAL). store_restore_from replaces this database's content
 * with the file at path in one write transaction: other connections see all of it or none.
 * Both wait for a lock at most STORE_BUSY_TIMEOUT_MS. 0 or -1 (see store_error). */
int store_backup_to(store *s, const char *path);
int store_restore_from(store *s, const char *path);

/* A write of path that failed with the system's errno sys (0: unknown), outside SQLite (a
 * file orket writes itself: a PostgreSQL export): its cause worded into note as the store's
 * own files' (" (File too large: a file reached the process's file-size limit of N bytes,
 * ...)", a used-up quota; empty when nothing is known) -> the code to report it under
 * ("ENOSPC") or NULL. */
const char *store_write_cause(int sys, const char *path, char *note, size_t len);

/* Statements in the cache (for tests). */
int store_cached(store *s);

/* A counter that moves whenever this connection changes a row of the cards table or rolls
 * a transaction (or savepoint) back: a cache of cards read through this connection is
 * current while it and store_data_version both stay the same. */
uint64_t store_cards_generation(store *s);

/* A counter that moves whenever this connection rolls back a transaction or savepoint that
 * ran a statement that may write (a savepoint opened for one, a transaction with one
 * since its BEGIN): SQLite gives the ids of rows so undone to the next rows inserted, so a reader that
 * kept "read up to id N" inside the undone transaction must read again (the engine's token
 * tallies). */
uint64_t store_rollbacks(store *s);

/* PRAGMA data_version: moves when another connection (in any process) commits. -1 on
 * error (see store_error). */
int64_t store_data_version(store *s);

/* The store's stamp: *own moves whenever this connection changes a row of any table, runs
 * a statement that may write (DROP and ALTER TABLE included), rolls a transaction (or
 * savepoint) back, runs a script (store_exec) or restores; *dv is store_data_version, which
 * moves when another connection commits to the main database (an ATTACHed one is not
 * covered: nothing attaches one). Whatever was read from the main database through this
 * connection outside a transaction is current while both stay the same. 0, or -1 on error
 * (see store_error). */
int store_stamp(store *s, int64_t *own, int64_t *dv);

#endif
