/* storevfs.c: storevfs.h. A shim over SQLite's default (Unix) VFS: each file it opens
 * wraps the Unix VFS's file, and each method calls that file's own.
 *
 * Why the WAL index needs help: SQLite grows the -shm file a 32 KiB region at a time by
 * writing one byte at the end of each 4 KiB memory page, then maps it and writes through
 * the mapping. On a file system whose blocks are smaller than a page (ext4 picks 1 KiB for
 * small volumes) that byte allocates only the page's last block: the rest are holes, and
 * the first store into one needs a block from the file system. On a full disk the kernel
 * has no way to fail that store but SIGBUS, and the process died with no word (even
 * `orket board`, whose read recovers the index after a crash). The first connection of all
 * truncates the file to a few bytes, so each new session grows it again this way.
 *
 * So when a region is mapped writable, its pages are faulted in for writing at once
 * (madvise MADV_POPULATE_WRITE, Linux 5.14): the file system allocates (or reserves) their
 * blocks then, as a store would, but a failure comes back as EFAULT, which the map returns
 * as SQLITE_FULL, before SQLite ever writes there. Not fallocate: SQLite's descriptor of
 * the -shm is its own, and a descriptor of ours would have to be closed, which drops every
 * POSIX lock this process holds on the file (SQLite's locks of the WAL index live there;
 * another process could then reset the index under a reader). A kernel without the advice
 * (EINVAL) maps as before.
 *
 * No state at file scope: the VFS is found by its name among those SQLite has registered,
 * and registered (allocated once, kept for the process's life, as SQLite requires) only
 * when it is not there yet. Each connection's failures are kept in its database file's
 * object, which its -wal and -journal find through sqlite3_database_file_object. */
#include "storevfs.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SV_NAME "orket"

/* A file-control opcode of this VFS's own (SQLite keeps those below 100 for itself):
 * pArg is int[2], {the failed call's code, the errno found (out)}. */
#define SV_FCNTL_ERRNO 0x6f726b

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux's value; headers before 5.14's lack it */
#endif

typedef struct sv_fail {
  int rc;  /* the SQLite code the Unix VFS returned, 0: none */
  int sys; /* the errno behind it, 0: unknown */
} sv_fail;

enum { SV_FAILS = 4 }; /* kept per database: a failure and what its rollback met */

typedef struct sv_file {
  sqlite3_file base;     /* pMethods: sv_io, or sv_io_v1 */
  sqlite3_file *real;    /* the Unix VFS's file, in the same allocation, after this */
  struct sv_file *db;    /* the database file whose failures these are (itself for one) */
  sv_fail fails[SV_FAILS];
  int next;              /* fails[next] is written next */
} sv_file;

/* where the Unix VFS's file starts: its object is aligned as malloc aligns */
#define SV_HEAD ((sizeof(sv_file) + 15) & ~(size_t)15)

#define SV_REAL(f) (((sv_file *)(f))->real)

static sqlite3_vfs *sv_unix(sqlite3_vfs *v) { return v->pAppData; }

/* Failures worth naming: I/O errors (a short read is no error: SQLite asks past a file's
 * end), a full disk, a file that would not open. */
static int sv_kept(int rc) {
  int primary = rc & 0xff;
  return rc != SQLITE_IOERR_SHORT_READ &&
         (primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN);
}

static void sv_note(sv_file *db, int rc, int sys) {
  db->fails[db->next] = (sv_fail){rc, sys};
  db->next = (db->next + 1) % SV_FAILS;
}

/* After a call on f's Unix file returned rc: a failure is kept with the errno the Unix
 * file noted for it. SQLite says SQLITE_FULL for ENOSPC and keeps no errno for it (nor
 * for a write cut short), and that code says it all. */
static int sv_after(sqlite3_file *file, int rc) {
  if (rc == SQLITE_OK || !sv_kept(rc)) return rc;
  sv_file *f = (sv_file *)file;
  int sys = 0;
  if ((rc & 0xff) != SQLITE_FULL && f->real->pMethods != NULL &&
      f->real->pMethods->xFileControl(f->real, SQLITE_FCNTL_LAST_ERRNO, &sys) != SQLITE_OK)
    sys = 0;
  sv_note(f->db, rc, sys);
  return rc;
}

static int sv_close(sqlite3_file *f) { return SV_REAL(f)->pMethods->xClose(SV_REAL(f)); }
static int sv_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 at) {
  return sv_after(f, SV_REAL(f)->pMethods->xRead(SV_REAL(f), buf, n, at));
}
static int sv_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 at) {
  return sv_after(f, SV_REAL(f)->pMethods->xWrite(SV_REAL(f), buf, n, at));
}
static int sv_truncate(sqlite3_file *f, sqlite3_int64 size) {
  return sv_after(f, SV_REAL(f)->pMethods->xTruncate(SV_REAL(f), size));
}
static int sv_sync(sqlite3_file *f, int flags) { return sv_after(f, SV_REAL(f)->pMethods->xSync(SV_REAL(f), flags)); }
static int sv_file_size(sqlite3_file *f, sqlite3_int64 *size) {
  return sv_after(f, SV_REAL(f)->pMethods->xFileSize(SV_REAL(f), size));
}
static int sv_lock(sqlite3_file *f, int level) { return sv_after(f, SV_REAL(f)->pMethods->xLock(SV_REAL(f), level)); }
static int sv_unlock(sqlite3_file *f, int level) {
  return sv_after(f, SV_REAL(f)->pMethods->xUnlock(SV_REAL(f), level));
}
static int sv_check_reserved(sqlite3_file *f, int *out) {
  return sv_after(f, SV_REAL(f)->pMethods->xCheckReservedLock(SV_REAL(f), out));
}

static int sv_file_control(sqlite3_file *file, int op, void *arg) {
  sv_file *f = (sv_file *)file;
  if (op != SV_FCNTL_ERRNO) return f->real->pMethods->xFileControl(f->real, op, arg);
  /* the latest failure kept under that code (or under that primary code, asked without
   * the extended one) */
  int *q = arg, want = q[0];
  q[1] = 0;
  for (int i = 1; i <= SV_FAILS; i++) {
    const sv_fail *k = &f->db->fails[(f->db->next - i + SV_FAILS) % SV_FAILS];
    if (k->rc != 0 && (k->rc == want || ((want & 0xff) == want && (k->rc & 0xff) == want))) {
      q[1] = k->sys;
      break;
    }
  }
  memset(f->db->fails, 0, sizeof f->db->fails);
  f->db->next = 0;
  return SQLITE_OK;
}

static int sv_sector_size(sqlite3_file *f) { return SV_REAL(f)->pMethods->xSectorSize(SV_REAL(f)); }
static int sv_device(sqlite3_file *f) { return SV_REAL(f)->pMethods->xDeviceCharacteristics(SV_REAL(f)); }

/* The region's pages faulted in writable (see the top of the file) -> SQLITE_OK, or
 * SQLITE_FULL with *pp cleared: the WAL then holds no pointer to the region and asks
 * again at its next need, which tries again (the Unix VFS keeps the region mapped). */
static int sv_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **pp) {
  sv_file *f = (sv_file *)file;
  int rc = f->real->pMethods->xShmMap(f->real, region, size, extend, pp);
  if (rc != SQLITE_OK) {
    /* the Unix VFS keeps no errno for the -shm; its failing call was the last one made */
    if (sv_kept(rc)) sv_note(f->db, rc, errno);
    return rc;
  }
  if (*pp == NULL) return rc; /* not there, and not to be made */
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t at = (uintptr_t)*pp;
  uintptr_t start = at & ~(page - 1), end = (at + (uintptr_t)size + page - 1) & ~(page - 1);
  if (madvise((void *)start, end - start, MADV_POPULATE_WRITE) == 0) return SQLITE_OK;
  int sys = errno;
  /* EFAULT: a store there would have raised SIGBUS (no block to be had: a full disk, a
   * used-up quota); ENOMEM, EHWPOISON: no page for it. Anything else (EINVAL: a kernel
   * without the advice) leaves the region as SQLite mapped it. */
  if (sys == EFAULT) rc = SQLITE_FULL;
  else if (sys == ENOMEM || sys == EHWPOISON) rc = SQLITE_IOERR_SHMMAP;
  else return SQLITE_OK;
  sv_note(f->db, rc, rc == SQLITE_FULL ? 0 : sys);
  *pp = NULL;
  return rc;
}

static int sv_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
  return sv_after(f, SV_REAL(f)->pMethods->xShmLock(SV_REAL(f), offset, n, flags));
}
static void sv_shm_barrier(sqlite3_file *f) { SV_REAL(f)->pMethods->xShmBarrier(SV_REAL(f)); }
static int sv_shm_unmap(sqlite3_file *f, int del) {
  return sv_after(f, SV_REAL(f)->pMethods->xShmUnmap(SV_REAL(f), del));
}
static int sv_fetch(sqlite3_file *f, sqlite3_int64 at, int n, void **pp) {
  return sv_after(f, SV_REAL(f)->pMethods->xFetch(SV_REAL(f), at, n, pp));
}
static int sv_unfetch(sqlite3_file *f, sqlite3_int64 at, void *p) {
  return sv_after(f, SV_REAL(f)->pMethods->xUnfetch(SV_REAL(f), at, p));
}

#define SV_IO_V1                                                                                            \
  .xClose = sv_close, .xRead = sv_read, .xWrite = sv_write, .xTruncate = sv_truncate, .xSync = sv_sync,     \
  .xFileSize = sv_file_size, .xLock = sv_lock, .xUnlock = sv_unlock, .xCheckReservedLock = sv_check_reserved, \
  .xFileControl = sv_file_control, .xSectorSize = sv_sector_size, .xDeviceCharacteristics = sv_device

/* Unix's files have version 3 (shared memory, memory-mapped reads); version 1 for a file
 * of another kind (none that the Unix VFS opens on Linux), which then has no WAL. */
static const sqlite3_io_methods sv_io = {
    .iVersion = 3, SV_IO_V1, .xShmMap = sv_shm_map, .xShmLock = sv_shm_lock, .xShmBarrier = sv_shm_barrier,
    .xShmUnmap = sv_shm_unmap, .xFetch = sv_fetch, .xUnfetch = sv_unfetch,
};
static const sqlite3_io_methods sv_io_v1 = {.iVersion = 1, SV_IO_V1};

static int sv_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *file, int flags, int *out) {
  sv_file *f = (sv_file *)file;
  memset(f, 0, sizeof *f);
  f->real = (sqlite3_file *)((char *)f + SV_HEAD);
  f->db = f;
  int rc = sv_unix(v)->xOpen(sv_unix(v), name, f->real, flags, out);
  int sys = errno;
  /* a -wal's or -journal's failures are its database's; the name is the pager's own, what
   * sqlite3_database_file_object takes */
  if (name != NULL && (flags & (SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL))) {
    sqlite3_file *db = sqlite3_database_file_object(name);
    if (db != NULL && (db->pMethods == &sv_io || db->pMethods == &sv_io_v1)) f->db = (sv_file *)db;
  }
  if (rc != SQLITE_OK) {
    if (f->db != f && sv_kept(rc)) sv_note(f->db, rc, sys);
    f->base.pMethods = NULL; /* SQLite closes no file whose open failed */
    return rc;
  }
  f->base.pMethods = f->real->pMethods->iVersion >= 3 ? &sv_io : &sv_io_v1;
  return rc;
}

static int sv_delete(sqlite3_vfs *v, const char *name, int sync_dir) {
  return sv_unix(v)->xDelete(sv_unix(v), name, sync_dir);
}
static int sv_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
  return sv_unix(v)->xAccess(sv_unix(v), name, flags, out);
}
static int sv_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out) {
  return sv_unix(v)->xFullPathname(sv_unix(v), name, n, out);
}
static void *sv_dl_open(sqlite3_vfs *v, const char *name) { return sv_unix(v)->xDlOpen(sv_unix(v), name); }
static void sv_dl_error(sqlite3_vfs *v, int n, char *msg) { sv_unix(v)->xDlError(sv_unix(v), n, msg); }
static void (*sv_dl_sym(sqlite3_vfs *v, void *lib, const char *sym))(void) {
  return sv_unix(v)->xDlSym(sv_unix(v), lib, sym);
}
static void sv_dl_close(sqlite3_vfs *v, void *lib) { sv_unix(v)->xDlClose(sv_unix(v), lib); }
static int sv_randomness(sqlite3_vfs *v, int n, char *out) { return sv_unix(v)->xRandomness(sv_unix(v), n, out); }
static int sv_sleep(sqlite3_vfs *v, int us) { return sv_unix(v)->xSleep(sv_unix(v), us); }
static int sv_current_time(sqlite3_vfs *v, double *t) { return sv_unix(v)->xCurrentTime(sv_unix(v), t); }
static int sv_last_error(sqlite3_vfs *v, int n, char *msg) { return sv_unix(v)->xGetLastError(sv_unix(v), n, msg); }
static int sv_current_time64(sqlite3_vfs *v, sqlite3_int64 *t) {
  return sv_unix(v)->xCurrentTimeInt64(sv_unix(v), t);
}
static int sv_set_syscall(sqlite3_vfs *v, const char *name, sqlite3_syscall_ptr p) {
  return sv_unix(v)->xSetSystemCall(sv_unix(v), name, p);
}
static sqlite3_syscall_ptr sv_get_syscall(sqlite3_vfs *v, const char *name) {
  return sv_unix(v)->xGetSystemCall(sv_unix(v), name);
}
static const char *sv_next_syscall(sqlite3_vfs *v, const char *name) {
  return sv_unix(v)->xNextSystemCall(sv_unix(v), name);
}

const char *storevfs_name(void) {
  if (sqlite3_vfs_find(SV_NAME) != NULL) return SV_NAME;
  sqlite3_vfs *unix_vfs = sqlite3_vfs_find(NULL);
  if (unix_vfs == NULL) return NULL;
  /* kept for the process's life: SQLite holds it once registered. Two threads registering
   * at once would register two alike; sqlite3_vfs_find gives either, and either serves. */
  sqlite3_vfs *v = calloc(1, sizeof *v);
  if (v == NULL) return NULL;
  v->iVersion = unix_vfs->iVersion < 3 ? unix_vfs->iVersion : 3;
  v->szOsFile = (int)SV_HEAD + unix_vfs->szOsFile;
  v->mxPathname = unix_vfs->mxPathname;
  v->zName = SV_NAME;
  v->pAppData = unix_vfs;
  v->xOpen = sv_open;
  v->xDelete = sv_delete;
  v->xAccess = sv_access;
  v->xFullPathname = sv_full_pathname;
  /* the Unix VFS's optional parts, where it has them */
  v->xDlOpen = unix_vfs->xDlOpen ? sv_dl_open : NULL;
  v->xDlError = unix_vfs->xDlError ? sv_dl_error : NULL;
  v->xDlSym = unix_vfs->xDlSym ? sv_dl_sym : NULL;
  v->xDlClose = unix_vfs->xDlClose ? sv_dl_close : NULL;
  v->xRandomness = sv_randomness;
  v->xSleep = sv_sleep;
  v->xCurrentTime = sv_current_time;
  v->xGetLastError = sv_last_error;
  if (v->iVersion >= 2) v->xCurrentTimeInt64 = unix_vfs->xCurrentTimeInt64 ? sv_current_time64 : NULL;
  if (v->iVersion >= 3) {
    v->xSetSystemCall = unix_vfs->xSetSystemCall ? sv_set_syscall : NULL;
    v->xGetSystemCall = unix_vfs->xGetSystemCall ? sv_get_syscall : NULL;
    v->xNextSystemCall = unix_vfs->xNextSystemCall ? sv_next_syscall : NULL;
  }
  if (sqlite3_vfs_register(v, 0) != SQLITE_OK) {
    free(v);
    return NULL;
  }
  return SV_NAME;
}

int storevfs_errno(sqlite3 *db, int rc) {
  int q[2] = {rc, 0};
  if (db == NULL || rc == SQLITE_OK || sqlite3_file_control(db, "main", SV_FCNTL_ERRNO, q) != SQLITE_OK) return 0;
  return q[1];
}
