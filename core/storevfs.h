/* storevfs.h: the SQLite VFS the store opens its files through (storevfs.c): SQLite's own
 * Unix one, every call passed on, with two additions. The WAL index's shared memory (the
 * -shm file, mapped) gets its disk blocks when a region is mapped, so that a full disk
 * fails that map with SQLITE_FULL instead of killing the process with SIGBUS at a later
 * store into a hole of the file. And the system's errno of a file operation that failed
 * is kept, for the store's message to name (SQLite keeps it only on some paths). */
#ifndef ORKET_STOREVFS_H
#define ORKET_STOREVFS_H

#include <sqlite3.h>

/* The VFS's name, for sqlite3_open_v2: registered at the first call (never as the
 * default). NULL when it could not be (no memory): SQLite's default VFS then serves. */
const char *storevfs_name(void);

/* The system's errno behind rc (an error code, extended or not, db's last call gave) when
 * it came from a file operation of db's main database, its -wal, -journal or -shm that
 * went through this VFS: 0 when unknown. Forgets the failures kept for db. */
int storevfs_errno(sqlite3 *db, int rc);

#endif
