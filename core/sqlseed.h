/* sqlseed.h: a sandbox's SQLite database made from the repository's seed SQL (docs/sandbox.md,
 * *A database per sandbox*). The seed is the agents' text and runs in Orket's own process,
 * so it gets a connection of its own that reaches no file but its database: no ATTACH (nor
 * VACUUM INTO, which attaches its output), no extension, defensive mode, and no pragma that
 * moves files, changes process-wide settings or lifts the limits set here; its database
 * (and temp database) stop at a size, and the whole seed at a deadline. It blocks: run it in
 * a child process (lua/orket/sandboxes/seed_child.lua), never on a loop. Knows nothing
 * of Lua. */
#ifndef ORKET_SQLSEED_H
#define ORKET_SQLSEED_H

#include <stdatomic.h>
#include <stddef.h>

enum {
  SQLSEED_OK = 0,
  SQLSEED_SQL = -1,     /* the seed's SQL failed (or did what is not allowed) */
  SQLSEED_TIMEOUT = -2, /* it ran past timeout_ms */
  SQLSEED_FULL = -3,    /* its database grew past max_bytes */
  SQLSEED_STOPPED = -4, /* *stop was set */
  SQLSEED_FILE = -5,    /* the file could not be made (one is there, or a stale journal) */
  SQLSEED_MEMORY = -6,  /* SQLite ran out of memory (the process's address-space limit) */
};

/* Makes the database file `path` (it must not exist: never opened through a symbolic link;
 * stale -journal/-wal/-shm next to it are removed first) and runs the len bytes of sql in
 * it. Stops at timeout_ms, when the database would pass max_bytes, or soon after *stop is
 * set (from another thread); the deadline and *stop are looked at before each statement and
 * row and every thousand VM steps (one slow function call is a single step: only the
 * process's end stops it, so a sandbox runs this in a child process, seed_child.lua). Returns SQLSEED_OK or an error above, with err set. */
int sqlseed_run(const char *path, const char *sql, size_t len, int timeout_ms, long long max_bytes,
                atomic_int *stop, char *err, size_t errlen);

#endif
