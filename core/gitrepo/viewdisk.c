/* viewdisk.c: the view's reading of the disk (view.c): what a path of workspace/ holds, read
 * without following a symlink on the way, and whether that is what a tree's side stands for.
 * Shared by the refresh (view.c) and what the view shows a person (viewshow.c). */
#define _GNU_SOURCE
#include "internal.h"
#include "viewside.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GR_VIEW_FILE_MAX ((size_t)64 << 20) /* a larger file on disk is hashed in pieces (gr_vw_disk) */

const char *const gr_vw_kinds[] = {"none", "file", "executable", "symlink", "directory", "other"};

/* ---- the disk ---- */

/* Opens the directory that holds path's last component, below root (a directory fd): each
 * component opened with O_NOFOLLOW, made when missing and mk is set. *leaf points into
 * path at the last component. -1 with errno: ENOENT (missing), ENOTDIR or ELOOP (a file or
 * symlink in the way). */
int gr_vw_parent(int root, const char *path, int mk, const char **leaf) {
  const char *p = path, *slash;
  int fd = dup(root);
  while (fd >= 0 && (slash = strchr(p, '/')) != NULL) {
    char comp[NAME_MAX + 1];
    size_t len = (size_t)(slash - p);
    if (len == 0 || len > NAME_MAX) {
      close(fd);
      errno = EINVAL;
      return -1;
    }
    memcpy(comp, p, len);
    comp[len] = '\0';
    int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && mk && mkdirat(fd, comp, 0777) == 0)
      next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    close(fd);
    errno = err;
    fd = next;
    p = slash + 1;
  }
  *leaf = p;
  return fd;
}

/* 1 when side s (NULL: none) could be a regular file of size bytes: a file or executable
 * whose size is unknown (0 from a tree diff or an index entry) or equal. */
static int vw_may_be(const vw_side *s, int64_t size) {
  return s && (s->kind == VW_FILE || s->kind == VW_EXEC) && (s->size <= 0 || s->size == size);
}

/* 0 when a failed read's err means what it says of the path (missing, or something of the
 * person's in the way: gr_vw_blocked), else err: the machine's for the moment (no descriptors,
 * no memory, an I/O error), and the disk is not known. */
static int vw_read_err(int err) {
  return err == ENOENT || gr_vw_blocked(err) ? 0 : err ? err : EIO;
}

/* What the disk holds at leaf in dfd (dfd < 0: the way there is missing or blocked, so
 * nothing is there as far as this path goes; errno is gr_vw_parent's, so called right after
 * it). s1 and s2 (either NULL) are the sides it is compared with: a huge file is hashed
 * only when it could be one. Returns 0, or the errno of a read that failed for a reason
 * not the path's (vw_read_err): d is then not what the disk holds, and a refresh must not
 * take it for nothing there (a person's deletion, a removal done). */
int gr_vw_disk(const gitapi *g, int dfd, const char *leaf, vw_side *d, const vw_side *s1,
                   const vw_side *s2) {
  struct stat st;
  int err = errno;
  *d = (vw_side){.kind = VW_NONE, .size = -1};
  if (dfd < 0) return vw_read_err(err);
  if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0) return vw_read_err(errno);
  d->size = st.st_size;
  if (S_ISDIR(st.st_mode)) {
    d->kind = VW_DIR;
  } else if (S_ISLNK(st.st_mode)) {
    char t[PATH_MAX];
    ssize_t n = readlinkat(dfd, leaf, t, sizeof t);
    d->kind = VW_LINK;
    if (n < 0) return vw_read_err(errno);
    d->hashed = g->odb_hash(&d->id, t, (size_t)n, GIT_OBJECT_BLOB) == 0;
  } else if (S_ISREG(st.st_mode)) {
    d->kind = (st.st_mode & 0100) ? VW_EXEC : VW_FILE;
    /* A huge file of another size than both sides cannot hold either: hashing it took
     * seconds at every status and web panel load, for nothing. */
    if ((size_t)st.st_size > GR_VIEW_FILE_MAX && !vw_may_be(s1, st.st_size) && !vw_may_be(s2, st.st_size)) return 0;
    int fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return vw_read_err(errno);
    if ((size_t)st.st_size > GR_VIEW_FILE_MAX) {
      /* Hashed in pieces by libgit2, which takes a path: /proc/self/fd/N reopens this very
       * file, not a second lookup of leaf (without /proc it stays unhashed). Unhashed, a
       * person's huge file committed to main stayed listed as theirs for good (invariant 7
       * never held). */
      struct stat fst;
      char via[48];
      if (fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) && snprintf(via, sizeof via, "/proc/self/fd/%d", fd) > 0)
        d->hashed = g->odb_hashfile(&d->id, via, GIT_OBJECT_BLOB) == 0;
      close(fd);
      return 0;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    ssize_t k = 0;
    while (buf && n < (size_t)st.st_size && (k = read(fd, buf + n, (size_t)st.st_size - n)) > 0) n += (size_t)k;
    err = buf == NULL ? ENOMEM : k < 0 ? vw_read_err(errno) : 0;
    close(fd);
    if (buf && k >= 0 && n == (size_t)st.st_size) d->hashed = g->odb_hash(&d->id, buf, n, GIT_OBJECT_BLOB) == 0;
    free(buf);
    return err;
  } else {
    d->kind = VW_OTHER;
  }
  return 0;
}

int gr_vw_kind_of_mode(uint32_t mode) {
  switch (mode) {
  case 0: return VW_NONE;
  case GIT_FILEMODE_BLOB: return VW_FILE;
  case GIT_FILEMODE_BLOB_EXECUTABLE: return VW_EXEC;
  case GIT_FILEMODE_LINK: return VW_LINK;
  case GIT_FILEMODE_TREE: return VW_DIR;
  default: return VW_OTHER;
  }
}

/* 1 when the disk's d is what side s stands for: both nothing, or the same content of the
 * same kind (exec: the executable bit too; otherwise a file is a file either way). */
int gr_vw_holds(const gitapi *g, const vw_side *d, const vw_side *s, int exec) {
  if (s->kind == VW_NONE) return d->kind == VW_NONE;
  if (!s->hashed || !d->hashed) return 0;
  int sf = s->kind == VW_FILE || s->kind == VW_EXEC, df = d->kind == VW_FILE || d->kind == VW_EXEC;
  if (sf != df || (!sf && s->kind != d->kind)) return 0;
  if (exec && sf && s->kind != d->kind) return 0;
  return g->oid_equal(&d->id, &s->id);
}

/* Whether the view's file system keeps the executable bit: core.fileMode, as git's init
 * probed it (true when unset). Where it does, a file's mode that is not B's is the person's
 * (a chmod +x is never undone); where it does not, every file reads alike, and the mode says
 * nothing of anyone. */
int gr_vw_filemode(const gitapi *g, git_repository *repo) {
  git_config *cfg = NULL;
  const char *v = NULL;
  int on = 1;
  if (g->repository_config_snapshot(&cfg, repo) == 0 && g->config_get_string(&v, cfg, "core.filemode") == 0 && v) {
    int b;
    if (g->config_parse_bool(&b, v) == 0) on = b;
  }
  if (cfg) g->config_free(cfg);
  return on;
}

/* 1 when the index entry ie (NULL: none) is side s's. */
int gr_vw_index_is(const gitapi *g, const git_index_entry *ie, const vw_side *s) {
  if (s->kind == VW_NONE) return ie == NULL;
  return ie && s->hashed && g->oid_equal(&ie->id, &s->id) && gr_vw_kind_of_mode(ie->mode) == s->kind;
}

/* 1 when err, a failed write's at a path in workspace/, is the person's: a lasting property
 * of what is on the path, which a retry would meet again (invariant 4: recorded as diverged,
 * listed, the base moves on). Something in the way: a file or symlink where a directory
 * goes, a directory where a file goes (ENOTDIR, ELOOP, EISDIR, ENOTEMPTY, EEXIST). A name
 * or symlink target this file system cannot hold (EINVAL, ENAMETOOLONG, EILSEQ, EOPNOTSUPP).
 * A person's mode, owner, immutable flag, read-only mount or mount point (EACCES, EPERM,
 * EROFS, EBUSY), a directory full of subdirectories or a file too large for the file
 * system (EMLINK, EFBIG; one over the process's own size limit is retried: vw_over_fsize).
 * Anything else is the machine's for the moment (no space, a quota, an I/O error, no
 * memory or descriptors, a directory removed meanwhile, a network file system's hiccup,
 * an errno not known here): the path keeps B's and the refresh fails,
 * said, to be retried (invariant 6). A closed list, so that what is not known is retried,
 * never taken for the person's: a full disk's paths, taken for theirs, stayed missing for
 * good. Orket's own places never reach here with their errno: the blob lookup fails EIO,
 * and a failure in the gitdir's temporary directory falls back beside the path
 * (gr_view_put). */
int gr_vw_blocked(int err) {
  switch (err) {
  case ENOTDIR: case ELOOP: case EISDIR: case ENOTEMPTY: case EEXIST:
  case EINVAL: case ENAMETOOLONG: case EILSEQ: case EOPNOTSUPP:
  case EACCES: case EPERM: case EROFS: case EBUSY: case EMLINK: case EFBIG:
    return 1;
  default:
    return 0;
  }
}

/* The side tree holds at path (nothing when it holds none). */
void gr_vw_side_at(const gitapi *g, git_tree *tree, const char *path, vw_side *s) {
  git_tree_entry *te = NULL;
  *s = (vw_side){.kind = VW_NONE, .size = -1};
  if (g->tree_entry_bypath(&te, tree, path) != 0) return;
  s->kind = gr_vw_kind_of_mode((uint32_t)g->tree_entry_filemode(te));
  s->hashed = s->kind == VW_FILE || s->kind == VW_EXEC || s->kind == VW_LINK;
  s->id = *g->tree_entry_id(te);
  g->tree_entry_free(te);
}
