/* viewput.c: how main's view (view.c) writes a file: under a temporary name in a directory
 * of the refresh's own, then renamed into place (view.c's invariant 5). */
#define _GNU_SOURCE
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GR_VIEW_TMPDIR "orket-view-tmp" /* in main's gitdir: the refresh's temporary files */


#define GR_VIEW_BESIDE "orket-view-" /* after a dot, the name's start beside a path */

/* The pid in a name gr_view_put makes: "PID.N" in the gitdir's directory, ".orket-view-
 * PID.N.tmp" beside a path (beside) -> the pid, or -1 for any other name. */
static long vw_tmp_pid(const char *name, int beside) {
  static const char pre[] = "." GR_VIEW_BESIDE;
  const char *p = name;
  if (beside) {
    if (strncmp(p, pre, sizeof pre - 1) != 0) return -1;
    p += sizeof pre - 1;
  }
  size_t a = strspn(p, "0123456789");
  if (!a || p[a] != '.') return -1;
  size_t b = strspn(p + a + 1, "0123456789");
  if (!b || strcmp(p + a + 1 + b, beside ? ".tmp" : "") != 0) return -1;
  return strtol(p, NULL, 10);
}

void gr_view_tmp_sweep(int dfd, int beside) {
  int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    if (fd >= 0) close(fd);
    return;
  }
  long self = (long)getpid();
  for (struct dirent *de; (de = readdir(d)) != NULL;) {
    long pid = vw_tmp_pid(de->d_name, beside);
    struct stat st;
    if (pid == self || !gr_pid_gone(pid) || fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
      continue;
    (void)unlinkat(dfd, de->d_name, 0); /* never a directory: without AT_REMOVEDIR */
  }
  closedir(d);
}

/* Removes what killed refreshes left in the gitdir's temporary directory: names of processes
 * that are gone. Runs and servers in other processes may refresh at the same moment without
 * the git lock (only workers take it), so a name of a live process is left alone, and this
 * process's own too. */
void gr_view_put_sweep(const gitapi *g, git_repository *repo) {
  char p[PATH_MAX];
  if ((size_t)snprintf(p, sizeof p, "%s" GR_VIEW_TMPDIR, g->repository_path(repo)) >= sizeof p) return;
  int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return; /* none yet: nothing left in it */
  gr_view_tmp_sweep(fd, 0);
  close(fd);
}

/* The gitdir's temporary directory, made and opened once a refresh (what killed refreshes
 * left there is swept once a handle: gr_view_put_sweep). */
static int vw_tmp_dir(const gitapi *g, git_repository *repo, gr_view_tmp *t) {
  if (t->at != -1) return t->at;
  char p[PATH_MAX];
  t->at = -2;
  if ((size_t)snprintf(p, sizeof p, "%s" GR_VIEW_TMPDIR, g->repository_path(repo)) >= sizeof p) return t->at;
  (void)mkdir(p, 0777);
  int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return t->at;
  return t->at = fd;
}

/* Makes m's content (data, len) as name in at, O_EXCL (a name already there is never
 * taken, whose-ever it is): 0, or -1 with errno (EEXIST: try another name). */
static int vw_tmp_make(int at, const char *name, int link, int exec, const char *data, size_t len) {
  if (link) {
    char t[PATH_MAX];
    if (len >= sizeof t) {
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(t, data, len);
    t[len] = '\0';
    return symlinkat(t, at, name);
  }
  int fd = openat(at, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, exec ? 0777 : 0666);
  if (fd < 0) return -1;
  int err = 0; /* the write's own errno: the refresh says it (a full disk is not an I/O error) */
  for (size_t off = 0; !err && off < len;) {
    ssize_t k = write(fd, data + off, len - off);
    if (k < 0) err = errno;
    else if (k == 0) err = EIO;
    else off += (size_t)k;
  }
  if (close(fd) != 0 && !err) err = errno;
  if (!err) return 0;
  (void)unlinkat(at, name, 0); /* made here, O_EXCL: ours */
  errno = err;
  return -1;
}

/* 1 when leaf in dfd is still what was (an lstat; st_mode 0: nothing there): the same
 * inode, type, size, mtime and ctime. A person's save since the check replaced or changed it. */
static int vw_still_was(int dfd, const char *leaf, const struct stat *was) {
  struct stat now;
  if (fstatat(dfd, leaf, &now, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT && was->st_mode == 0;
  return was->st_mode != 0 && now.st_dev == was->st_dev && now.st_ino == was->st_ino && now.st_mode == was->st_mode &&
         now.st_size == was->st_size && now.st_mtim.tv_sec == was->st_mtim.tv_sec &&
         now.st_mtim.tv_nsec == was->st_mtim.tv_nsec && now.st_ctim.tv_sec == was->st_ctim.tv_sec &&
         now.st_ctim.tv_nsec == was->st_ctim.tv_nsec;
}

/* Writes side m's blob at leaf in dfd: a temporary file, then a rename (invariant 5). Made
 * in the refresh's own directory in the gitdir; where that is not on leaf's file system
 * (EXDEV: a mount in workspace/) or not usable, beside leaf under a name of the same kind
 * (.orket-view-PID.N.tmp, O_EXCL), which a kill between the two steps leaves there (the
 * refresh removes a gone process's from the folders it writes into: gr_view_tmp_sweep,
 * called by view.c's vw_sweep_beside). 0, or
 * -1 with the errno of the step that failed (the refresh tells a full disk from something
 * of someone's on the way by it: viewdisk.c's gr_vw_blocked). */
int gr_view_put(const gitapi *g, git_repository *repo, gr_view_tmp *t, int dfd, const char *leaf, const git_oid *id, int link,
                int exec, const struct stat *was) {
  git_blob *blob = NULL;
  if (g->blob_lookup(&blob, repo, id) < 0) {
    errno = EIO; /* main's own object unreadable: no one's on the way */
    return -1;
  }
  const char *data = g->blob_rawcontent(blob);
  size_t len = (size_t)g->blob_rawsize(blob);
  int ret = -1, err = EIO;
  for (int beside = 0; beside < 2 && ret != 0; beside++) {
    int at = beside ? dfd : vw_tmp_dir(g, repo, t);
    if (at < 0) continue;
    char name[64];
    int made = -1;
    for (int k = 0; k < 64 && made != 0; k++) {
      snprintf(name, sizeof name, beside ? "." GR_VIEW_BESIDE "%ld.%lu.tmp" : "%ld.%lu", t->pid, t->n++);
      if ((made = vw_tmp_make(at, name, link, exec, data, len)) != 0 && (err = errno) != EEXIST) break;
    }
    /* the gitdir's directory not usable (made read-only by a run under sudo, full on
     * another file system): beside, whose errno is one at the path (viewdisk.c's gr_vw_blocked);
     * the gitdir's would blame the path for Orket's own directory */
    if (made != 0 && !beside) continue;
    if (made != 0) break;
    /* checked again right before the rename, after the temporary file's write (the slow
     * part): a person's save since the caller's check is kept (invariant 4). What is left is
     * a save between this lstat and the rename, which no rename(2) can exclude */
    if (was && !vw_still_was(dfd, leaf, was)) {
      err = EBUSY;
      (void)unlinkat(at, name, 0); /* made above, O_EXCL, not renamed: ours */
      break;
    }
    if (renameat(at, name, dfd, leaf) == 0) {
      ret = 0;
    } else {
      err = errno;
      (void)unlinkat(at, name, 0); /* made above, O_EXCL, not renamed: ours */
      if (err != EXDEV) break;
    }
  }
  g->blob_free(blob);
  if (ret != 0) errno = err;
  return ret;
}

