/* workspace.h: the confined filesystem agents act on. Every path is checked lexically (no
 * absolute paths, no "..", no NUL) and then resolved by the kernel beneath the root:
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS),
 * or, where openat2 is missing, a component-by-component O_NOFOLLOW walk with the same
 * verdicts. Uses only POSIX/Linux calls; knows nothing of Lua. */
#ifndef ORKET_WORKSPACE_H
#define ORKET_WORKSPACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WS_PATH_MAX 4096
#define WS_NAME_MAX 255
#define WS_READ_DEFAULT (1024 * 1024)        /* bytes read() returns unless asked otherwise */
#define WS_READ_HARD_MAX (16 * 1024 * 1024)  /* no read returns more than this */
#define WS_LIST_MAX 10000                    /* entries list() returns at most */

typedef enum { WS_RESOLVE_AUTO = 0, WS_RESOLVE_OPENAT2, WS_RESOLVE_WALK } ws_resolve_mode;

/* An expected failure: code is an errno-style name ("EPERM", "ENOENT", ...), msg a sentence
 * beginning "workspace: " that names the path. */
typedef struct ws_err {
  const char *code;
  char msg[WS_PATH_MAX + 256];
} ws_err;

typedef struct ws {
  int rootfd;          /* O_PATH descriptor of the root; -1 when closed */
  dev_t dev;           /* the root's device: nothing beneath may be on another mount */
  ws_resolve_mode mode; /* OPENAT2 or WALK once open */
} ws;

typedef enum { WS_FILE, WS_DIR, WS_SYMLINK, WS_OTHER } ws_type;

typedef struct ws_stat {
  ws_type type;
  uint64_t size;
  int64_t mtime; /* seconds since the epoch */
  unsigned mode; /* permission bits */
  uint64_t nlink;
} ws_stat;

typedef struct ws_entry {
  char name[WS_NAME_MAX + 1];
  ws_stat st;
} ws_entry;

/* Lexical checks shared with the gate. ws_path_normalize writes the canonical relative form
 * of `path` (len bytes; "." for the root) into out: drops "." components and repeated
 * slashes; refuses empty, absolute, "..", NUL bytes and over-long paths (EPERM/EINVAL).
 * Returns 0 or -1 with e filled. */
int ws_path_normalize(const char *path, size_t len, char *out, size_t outlen, ws_err *e);

/* 1 when a normalized path is read-only to agents: .git/, .orket/, roles/, tools/,
 * policies/ (and everything under them) and orket.lua. */
int ws_path_protected(const char *norm);

/* Opens the root directory. mode AUTO probes for openat2 and falls back to the walk.
 * Returns 0 or -1 with e filled. */
int ws_open(ws *w, const char *root, ws_resolve_mode mode, ws_err *e);
void ws_close(ws *w);

/* Reads up to maxlen bytes (capped at WS_READ_HARD_MAX) from offset of a regular file into a
 * malloc'd buffer (*out, *outlen; free it). *size gets the file's size. Refuses FIFOs,
 * devices, sockets and directories without opening them for I/O. */
int ws_read(ws *w, const char *path, size_t len, uint64_t offset, size_t maxlen, char **out,
            size_t *outlen, uint64_t *size, ws_err *e);

/* Atomic replace: temp file in the same directory, fsync, rename, fsync of the directory.
 * Refuses a target that is not a regular file or has more than one hard link, and
 * protected paths. The parent directory must exist. */
int ws_write(ws *w, const char *path, size_t len, const char *data, size_t datalen, ws_err *e);

/* Appends (creating the file if needed); same refusals as ws_write. */
int ws_append(ws *w, const char *path, size_t len, const char *data, size_t datalen, ws_err *e);

/* Fills *st for path without following a final symlink. */
int ws_stat_path(ws *w, const char *path, size_t len, ws_stat *st, ws_err *e);

/* Lists a directory, sorted by name, at most WS_LIST_MAX entries (*truncated set when more).
 * *out is malloc'd (free it). */
int ws_list(ws *w, const char *path, size_t len, ws_entry **out, size_t *n, int *truncated,
            ws_err *e);

/* Creates a directory and any missing parents (like mkdir -p). */
int ws_mkdir(ws *w, const char *path, size_t len, ws_err *e);

/* Deletes a file, a symlink (never its target) or an empty directory. */
int ws_delete(ws *w, const char *path, size_t len, ws_err *e);

/* Renames from -> to; refuses to replace an existing target (EEXIST). */
int ws_move(ws *w, const char *from, size_t flen, const char *to, size_t tlen, ws_err *e);

#endif
