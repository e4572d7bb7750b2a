/* workspace.h: the confined filesystem agents act on. Every path is checked lexically (no
 * absolute paths, no "..", no NUL) and then resolved by the kernel beneath the root:
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS),
 * or, where openat2 is missing, a component-by-component O_NOFOLLOW walk with the same
 * verdicts (mount crossings found by mount id). Uses only POSIX/Linux calls; knows nothing
 * of Lua. */
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

/* Where a descriptor's mount id comes from, best first. WS_MNT_DEV is the last resort (no
 * statx mount id, no /proc): it compares devices, so it misses a bind mount of the same
 * filesystem. */
typedef enum { WS_MNT_STATX = 1, WS_MNT_FDINFO, WS_MNT_DEV } ws_mnt_source;

typedef struct ws {
  int rootfd;          /* O_PATH descriptor of the root; -1 when closed */
  dev_t dev;           /* the root's device */
  ws_resolve_mode mode; /* OPENAT2 or WALK once open */
  ws_mnt_source mnt_src; /* chosen once by ws_open: how the walk and the final component
                            tell one mount from another */
  uint64_t mnt_id;     /* the root's mount id from mnt_src (st_dev for WS_MNT_DEV) */
  char **changed;      /* the paths written, appended to, deleted or moved (either end)
                          through this handle since ws_take_changes last took them */
  size_t nchanged;
  int changed_over;    /* more than WS_CHANGES_MAX of them (or no memory to note one) */
  size_t root_len;     /* the root's absolute path's length, read at the first write (0: not
                          yet; SIZE_MAX: cannot be known): a path written must fit beside it
                          in PATH_MAX, or git cannot commit it from there */
  int portable_names;  /* 1 (ws_open's default): names a Windows or macOS clone cannot check
                          out are refused where they would be made (ws_portable_name_refused,
                          and twins in one folder); 0 for a team on Linux only */
} ws;

#define WS_CHANGES_MAX 1024

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

/* 1 when a normalized path is read-only to agents: .orket/ at the root (and everything under
 * it), and any path with a component ".git" in any case (the repository, a linked worktree's
 * .git file, a nested repository). A project's orket.lua, roles/, tools/ and policies/ are in
 * its folder, not in a workspace: those names in a workspace are the team's files. */
int ws_path_protected(const char *norm);

/* Git cannot commit a tree with a folder nested deeper than this (libgit2's walk of the
 * working tree stops at 100 levels, the root's included): a write, a mkdir or a move that
 * would make one is refused (EINVAL), as is a name of ws_git_name_refused. */
#define WS_GIT_DIRS_MAX 99

/* Why git refuses one path component (c, n bytes) as a name, or NULL: what Windows or macOS
 * reads as ".git" ("git~1", ".git ", ".git.", ".git::$INDEX_ALLOCATION", ".g\u200cit", ...;
 * libgit2's core.protectNTFS and git's core.protectHFS). ".git" itself is
 * ws_path_protected's. */
const char *ws_git_name_refused(const char *c, size_t n);

/* Why a Windows clone cannot check out one path component (c, n bytes) as a name, or NULL: a
 * device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9, CONIN$, CONOUT$; any case, with or
 * without an extension), a name ending in a dot or a space, one of < > : " | ? * \ or a
 * control character in it. Refused where a write, an append, a mkdir or a move's target
 * would make it, unless w->portable_names is 0; so is a new name that differs from one
 * already in its folder only in letter case or in NFC/NFD composition (ws_name_twin), which
 * macOS takes for one file (and Windows, for case). */
const char *ws_portable_name_refused(const char *c, size_t n);

/* The length of the Windows device name c (n bytes) is, the part before its first dot with
 * the spaces ending it dropped ("aux" of "Aux .txt"), or 0 when it is none (the list above).
 * The one rule: ws_portable_name_refused's, and card ids' (orket.board, through Lua). */
size_t ws_device_name(const char *c, size_t n);

/* The key under which macOS and Windows take two names of one folder for one (c, n bytes,
 * into out: at least 2 * n + 1 bytes; returns its length): ASCII letters and those of
 * Latin-1 and Latin Extended-A (U+00C0-U+017F) lower-cased, and those letters decomposed
 * (NFD: "\u00e9" as "e\u0301"). keep_case: decomposed only, each letter in its case (two
 * names whose keys so are alike differ only in composition). Other code points are kept as
 * they are, so twins by case or composition beyond those letters (Greek, Cyrillic,
 * Vietnamese) are not found. */
size_t ws_name_fold(const char *c, size_t n, char *out, int keep_case);

/* How two names (a, an and b, bn bytes) are twins by ws_name_fold: 0 when they are not (or
 * are one name), else WS_TWIN_CASE when they differ only in letter case (letter for letter),
 * WS_TWIN_COMPOSED when only in NFC/NFD composition, or both bits. The one rule of the
 * workspace's writes and of orket validate and import's project files (orket.scriptfile). */
#define WS_TWIN_CASE 1
#define WS_TWIN_COMPOSED 2
int ws_name_twin(const char *a, size_t an, const char *b, size_t bn);

/* Hands over the paths changed through w (normalized, each once, in order), and forgets them:
 * *out (free each and the array: ws_changes_free) and *n. Returns 1 instead, with nothing
 * handed over, when more than WS_CHANGES_MAX changed: the caller must assume anything did.
 * What lets a commit stage only what a turn's file tools touched (docs/git.md). */
int ws_take_changes(ws *w, char ***out, size_t *n);
void ws_changes_free(char **v, size_t n);

/* Opens the root directory. mode AUTO probes for openat2 and falls back to the walk.
 * Returns 0 or -1 with e filled. */
int ws_open(ws *w, const char *root, ws_resolve_mode mode, ws_err *e);
void ws_close(ws *w);

/* The mount id of fd (any descriptor, O_PATH included) read from src: statx(STATX_MNT_ID),
 * the "mnt_id:" line of /proc/self/fdinfo/<fd>, or st_dev. Returns 0, or -1 with errno
 * (ENOSYS when that source does not exist here). */
int ws_mount_id(int fd, ws_mnt_source src, uint64_t *id);

/* The best source that answers for fd (statx, else fdinfo, else st_dev; a source that exists
 * but fails is an error, never passed over for a weaker one): *src and *id. Returns 0, or -1
 * with errno. What ws_open and the process runner's removal of a temp dir (proc.c) use. */
int ws_mount_best(int fd, ws_mnt_source *src, uint64_t *id);

/* Makes an open workspace take mount ids from src instead of the one ws_open chose (tests
 * use it to exercise each fallback). Returns 0, or -1 with e filled (ENOSYS) when src does
 * not work here. */
int ws_use_mount_source(ws *w, ws_mnt_source src, ws_err *e);

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

/* Lists a directory, sorted by name: its first WS_LIST_MAX names in that order (*truncated set
 * when it holds more; every name is read to find them).
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
