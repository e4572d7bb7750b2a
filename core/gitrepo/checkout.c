/* checkout.c: a card directory's checkout that follows a move of its branch, announced
 * by a marker and finished after a crash without overwriting what it did not write
 * (gr_refresh_repo). See docs/git.md, Crash safety. */
#define _GNU_SOURCE /* syncfs */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- pending checkouts ------------------------------------------------------------------- */

/* The directory of w's own state, ending in '/'. */
static int gr_state_dir(const gitapi *g, const gr_wd *w, char *buf, size_t cap) {
  /* git_repository_path is the working tree's own gitdir (.git/ or .git/worktrees/<name>/) */
  if (w->state) return (size_t)snprintf(buf, cap, "%s/", w->state) < cap ? 0 : -1;
  return (size_t)snprintf(buf, cap, "%s", g->repository_path(w->repo)) < cap ? 0 : -1;
}

static int gr_pending_path(const gitapi *g, const gr_wd *w, char *buf, size_t cap) {
  char d[PATH_MAX];
  if (gr_state_dir(g, w, d, sizeof d) != 0) return -1;
  return (size_t)snprintf(buf, cap, "%s%s", d, GR_PENDING) < cap ? 0 : -1;
}

/* fsyncs the file or directory at path: 0, or -1 when it could not be */
static int gr_fsync_path(const char *path, int dir) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc == 0 ? 0 : -1;
}

/* Reads the open marker fd: a missing one is idle; an empty, unreadable or unknown one
 * planned. */
static void gr_stage_pread(const gitapi *g, int fd, gr_stage *out) {
  char line[GR_MARK_LEN + 8];
  ssize_t k = pread(fd, line, sizeof line, 0);
  size_t n = k > 0 ? (size_t)k : 0;
  out->stage = 1;
  out->has_oid = 0;
  if (n >= 4 && strncmp(line, "idle", 4) == 0) out->stage = 0;
  else if (n >= 7 && strncmp(line, "writing", 7) == 0) out->stage = 2;
  if (n >= GR_MARK_LEN && line[7] == ' ' && line[GR_MARK_LEN - 1] == '\n') {
    char hex[GIT_OID_HEXSZ + 1];
    memcpy(hex, line + 8, GIT_OID_HEXSZ);
    hex[GIT_OID_HEXSZ] = '\0';
    out->has_oid = g->oid_fromstr(&out->oid, hex) == 0;
  }
}

static void gr_stage_read(const gitapi *g, const gr_wd *w, gr_stage *out) {
  char p[PATH_MAX];
  *out = (gr_stage){0};
  if (gr_pending_path(g, w, p, sizeof p) != 0) return;
  int fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) out->stage = 1; /* unreadable: the safe reading */
    return;
  }
  gr_stage_pread(g, fd, out);
  close(fd);
}

int gr_pending_write(const gitapi *g, const gr_wd *w, const char *stage, const git_oid *oid, int sync,
                            gr_stage *was, gr_err *e) {
  char p[PATH_MAX], line[GR_MARK_LEN + 8], d[PATH_MAX], hex[GIT_OID_HEXSZ + 1];
  if (gr_pending_path(g, w, p, sizeof p) != 0 || gr_state_dir(g, w, d, sizeof d) != 0)
    return gr_fail(e, "EINVAL", "gitdir path too long");
  int made = 1, fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    made = 0;
    fd = open(p, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  }
  if (fd < 0) return gr_fail(e, "EIO", "cannot write %s: %s", p, strerror(errno));
  gr_stage cur = {0}; /* a new marker: there was none, idle */
  if (!made) gr_stage_pread(g, fd, &cur);
  if (was) *was = cur;
  g->oid_tostr(hex, sizeof hex, oid);
  snprintf(line, sizeof line, "%-7s %s\n", stage, hex);
  if (made) sync = 1;
  int ok = pwrite(fd, line, GR_MARK_LEN, 0) == GR_MARK_LEN && (!sync || fsync(fd) == 0);
  int err = errno;
  close(fd);
  if (!ok) return gr_fail(e, "EIO", "cannot write %s: %s", p, strerror(err));
  if (made) (void)gr_fsync_path(d, 1); /* best effort: the file's own fsync already happened */
  return 0;
}

int gr_pending(const gitapi *g, const gr_wd *w, const git_oid *tip) {
  gr_stage st;
  gr_stage_read(g, w, &st);
  if (st.stage == 2 && st.has_oid && tip && !g->oid_equal(&st.oid, tip)) return 1;
  return st.stage;
}

/* The path delta d is about. */
static const char *gr_delta_path(const git_diff_delta *d) {
  return d->new_file.path ? d->new_file.path : d->old_file.path;
}

/* The old and new sides of delta i's path in diff (NULL: the path is not there). A type change
 * (a file turned symlink, or back) is listed as a deletion and an addition of the one path,
 * next to each other in diff's path order: they are read as one change. */
static void gr_delta_sides(const gitapi *g, git_diff *diff, size_t i, const git_diff_file **old,
                           const git_diff_file **new) {
  const git_diff_delta *d = g->diff_get_delta(diff, i);
  *old = d->status == GIT_DELTA_ADDED ? NULL : &d->old_file;
  *new = d->status == GIT_DELTA_DELETED ? NULL : &d->new_file;
  const char *path = gr_delta_path(d);
  for (size_t k = i ? i - 1 : i + 1, n = g->diff_num_deltas(diff); k <= i + 1 && k < n; k += k < i ? 2 : 1) {
    const git_diff_delta *x = g->diff_get_delta(diff, k);
    if (strcmp(gr_delta_path(x), path) != 0) continue;
    if (x->status == GIT_DELTA_DELETED && *old == NULL) *old = &x->old_file;
    if (x->status == GIT_DELTA_ADDED && *new == NULL) *new = &x->new_file;
  }
}

/* 1 when diff holds a delta of `status` about path. Its deltas are in path order: a binary
 * search, so a check of many paths costs what a sort does. */
static int gr_diff_has(const gitapi *g, git_diff *diff, const char *path, git_delta_t status) {
  size_t lo = 0, n = g->diff_num_deltas(diff), hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(gr_delta_path(g->diff_get_delta(diff, mid)), path) < 0) lo = mid + 1;
    else hi = mid;
  }
  for (; lo < n && strcmp(gr_delta_path(g->diff_get_delta(diff, lo)), path) == 0; lo++)
    if (g->diff_get_delta(diff, lo)->status == status) return 1;
  return 0;
}

/* 1 when the directory full (rel, relative to the working tree) holds nothing but paths of
 * `status` in diff, in directories of its own: a directory turned file whose files the
 * checkout deletes (it leaves the directory empty, for the file; an empty directory among
 * them would not be, so none may be there), or a file turned directory that the checkout
 * began to write (any of it, even none yet). Anything else (a person's file, a socket) is in
 * the way. */
static int gr_dir_only(const gitapi *g, git_diff *diff, const char *full, const char *rel, git_delta_t status,
                       int depth) {
  DIR *dir = depth < 64 ? opendir(full) : NULL;
  if (dir == NULL) return 0;
  struct dirent *de;
  int ok = 1, any = 0;
  while (ok && (de = readdir(dir)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char f[PATH_MAX], r[PATH_MAX];
    struct stat st;
    any = 1;
    if ((size_t)snprintf(f, sizeof f, "%s/%s", full, de->d_name) >= sizeof f ||
        (size_t)snprintf(r, sizeof r, "%s/%s", rel, de->d_name) >= sizeof r || lstat(f, &st) != 0)
      ok = 0;
    else if (S_ISDIR(st.st_mode))
      ok = gr_dir_only(g, diff, f, r, status, depth + 1);
    else
      ok = gr_diff_has(g, diff, r, status);
  }
  closedir(dir);
  return ok && (any || status == GIT_DELTA_ADDED); /* a file turned directory, cut short: not empty of ours yet */
}

/* 1 when side (a blob of diff's, NULL: no file) is what have (the content found, of a symlink
 * when link) stands for. */
static int gr_side_is(const gitapi *g, const git_diff_file *side, const git_oid *have, int link) {
  return side && (side->mode == GIT_FILEMODE_LINK) == link && g->oid_equal(have, &side->id);
}

/* Checks that delta i's path holds either its old (baseline) or its new content, or is
 * missing: anything else was changed by someone and must not be overwritten. A symlink's
 * content is its target (a plain file holding it, where symlinks are not made). */
static int gr_delta_safe(const gitapi *g, git_repository *repo, git_diff *diff, size_t i, size_t blocked, gr_err *e) {
  const git_diff_delta *d = g->diff_get_delta(diff, i);
  const git_diff_file *old, *new;
  gr_delta_sides(g, diff, i, &old, &new);
  const char *path = gr_delta_path(d), *wd = g->repository_workdir(repo);
  char full[PATH_MAX], buf[PATH_MAX];
  struct stat st;
  if ((size_t)snprintf(full, sizeof full, "%s%s", wd, path) >= sizeof full)
    return gr_fail(e, "EINVAL", "path too long: %s", path);
  /* a file or symlink where a leading directory should be (gr_check_ways): what is below it
   * counts as missing when the checkout deletes it (a file turned directory) or, for a path
   * it deletes, writes it (a directory turned file, written already); else it is in the way,
   * and a symlink would have the write land elsewhere */
  if (blocked) {
    snprintf(buf, sizeof buf, "%.*s", (int)blocked, path);
    if (gr_diff_has(g, diff, buf, GIT_DELTA_DELETED) || (new == NULL && gr_diff_has(g, diff, buf, GIT_DELTA_ADDED)))
      return 0;
    return gr_fail(e, "EDIRTY", "%s in %s: a file or symlink of someone's is where a directory on its way should be; "
                   "keep or revert it by hand", path, wd);
  }
  git_oid have;
  ssize_t bl;
  int fd;
  if (lstat(full, &st) != 0) {
    if (errno == ENOENT) return 0;
  } else if (S_ISREG(st.st_mode)) {
    if (g->repository_hashfile(&have, repo, full, GIT_OBJECT_BLOB, NULL) == 0 &&
        (gr_side_is(g, old, &have, 0) || gr_side_is(g, new, &have, 0)))
      return 0;
    /* where symlinks are not made (core.symlinks false), a file holds the target as is */
    if ((old && old->mode == GIT_FILEMODE_LINK) || (new && new->mode == GIT_FILEMODE_LINK)) {
      bl = -1;
      if (st.st_size < (off_t)sizeof buf && (fd = open(full, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) >= 0) {
        bl = read(fd, buf, sizeof buf);
        close(fd);
      }
      if (bl >= 0 && g->odb_hash(&have, buf, (size_t)bl, GIT_OBJECT_BLOB) == 0 &&
          (gr_side_is(g, old, &have, 1) || gr_side_is(g, new, &have, 1)))
        return 0;
    }
  } else if (S_ISLNK(st.st_mode)) {
    if ((bl = readlink(full, buf, sizeof buf)) >= 0 && (size_t)bl < sizeof buf &&
        g->odb_hash(&have, buf, (size_t)bl, GIT_OBJECT_BLOB) == 0 &&
        (gr_side_is(g, old, &have, 1) || gr_side_is(g, new, &have, 1)))
      return 0;
  } else if (S_ISDIR(st.st_mode) && (old == NULL) != (new == NULL) &&
             gr_dir_only(g, diff, full, path, old ? GIT_DELTA_ADDED : GIT_DELTA_DELETED, 0)) {
    return 0; /* a file turned directory, written already; or a directory turned file */
  }
  return gr_fail(e, "EDIRTY", "%s was changed in %s while an update to HEAD was pending; keep or revert it by hand",
                 path, wd);
}

int gr_index_exists(const gitapi *g, const gr_wd *w) {
  char p[PATH_MAX + 8], d[PATH_MAX];
  struct stat st;
  if (gr_state_dir(g, w, d, sizeof d) != 0) return 0;
  snprintf(p, sizeof p, "%sindex", d);
  return lstat(p, &st) == 0;
}

int gr_tip_tree(const gitapi *g, const gr_wd *w, git_tree **out) {
  git_reference *head = NULL;
  int rc = w->ref ? g->reference_lookup(&head, w->repo, w->ref) : g->repository_head(&head, w->repo);
  if (rc == 0) rc = g->reference_peel((git_object **)out, head, GIT_OBJECT_TREE);
  g->reference_free(head);
  return rc;
}

/* Checks the directories on the way to each path (sorted, as a diff lists them) as gr_scan
 * checks every directory: libgit2 reads the files named in gr_scan_controls there when it
 * writes the path. A directory missing (or not a directory: the checkout replaces it) ends
 * that way. The whole working tree is not walked: a checkout of a few paths costs what they
 * cost. blocked[i] is set to the length of paths[i]'s leading directory that is not one (a
 * file or symlink there), 0 when none is. 0, or -1 with EUNSAFE. */
static int gr_check_ways(const gitapi *g, git_repository *repo, char *const *paths, size_t n, size_t *blocked,
                         gr_err *e) {
  memset(blocked, 0, n * sizeof *blocked);
  int root = gr_workdir_fd(g, repo, e);
  if (root < 0) return root == -2 ? 0 : -1;
  char rel[PATH_MAX];
  size_t last = (size_t)-1; /* the previous path's directory, already checked when the same */
  int ret = 0;
  for (size_t i = 0; ret == 0 && i < n; i++) {
    const char *p = paths[i], *end = strrchr(p, '/');
    size_t dl = end ? (size_t)(end - p) + 1 : 0;
    if (dl >= sizeof rel) { /* libgit2 cannot write it either */
      last = (size_t)-1;
      continue;
    }
    if (i > 0 && dl == last && strncmp(p, paths[i - 1], dl) == 0) {
      blocked[i] = blocked[i - 1];
      continue;
    }
    last = dl;
    int dfd = dup(root);
    for (size_t at = 0; dfd >= 0;) { /* dfd: the directory p[0..at) */
      memcpy(rel, p, at);
      rel[at] = '\0';
      if ((ret = gr_scan_controls(dfd, rel, e)) != 0 || at >= dl) break;
      size_t cl = strcspn(p + at, "/");
      memcpy(rel, p + at, cl);
      rel[cl] = '\0';
      int nfd = openat(dfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      if (nfd < 0 && (errno == ENOTDIR || errno == ELOOP)) blocked[i] = at + cl; /* a file or symlink */
      close(dfd);
      dfd = nfd;
      at += cl + 1;
    }
    if (dfd >= 0) close(dfd);
  }
  close(root);
  return ret;
}

/* The stamp of w's index file (its state's, or its gitdir's). */
static int gr_index_stamp(const gitapi *g, const gr_wd *w, struct stat *st) {
  char p[PATH_MAX + 8], d[PATH_MAX];
  if (gr_state_dir(g, w, d, sizeof d) != 0 || (size_t)snprintf(p, sizeof p, "%sindex", d) >= sizeof p) return -1;
  return lstat(p, st);
}

int gr_mark_holds(const gitapi *g, const gr_wd *w) {
  const gr_mark *m = w->mark;
  struct stat st;
  return m && m->known && gr_index_stamp(g, w, &st) == 0 && st.st_ino == m->index.st_ino &&
         st.st_dev == m->index.st_dev && st.st_size == m->index.st_size &&
         st.st_mtim.tv_sec == m->index.st_mtim.tv_sec && st.st_mtim.tv_nsec == m->index.st_mtim.tv_nsec &&
         st.st_ctim.tv_sec == m->index.st_ctim.tv_sec && st.st_ctim.tv_nsec == m->index.st_ctim.tv_nsec;
}

int gr_at_tip(const gitapi *g, const gr_wd *w) {
  git_oid tip;
  return g->reference_name_to_id(&tip, w->repo, w->ref ? w->ref : "HEAD") == 0 && g->oid_equal(&tip, &w->mark->tip);
}

void gr_settle(const gitapi *g, const gr_wd *w) {
  gr_mark *m = w->mark;
  if (m == NULL) return;
  m->known = gr_index_stamp(g, w, &m->index) == 0 &&
             g->reference_name_to_id(&m->tip, w->repo, w->ref ? w->ref : "HEAD") == 0;
}

int gr_index_tree_id(const gitapi *g, const gr_wd *w, int holds, git_index *idx, git_oid *out) {
  if (holds) {
    git_commit *c = NULL;
    if (g->commit_lookup(&c, w->repo, &w->mark->tip) == 0) {
      *out = *g->commit_tree_id(c);
      g->commit_free(c);
      return 0;
    }
  }
  return g->index_write_tree(out, idx);
}

/* The tree base without the paths diff deletes below a file or symlink (blocked, from
 * gr_check_ways): gone already with their directory (a directory turned file, written before
 * a stop). Given as the checkout's baseline, it keeps libgit2 from taking that file away
 * to delete what was below it; libgit2 matches a path to the directory it names too, so
 * leaving them out of its paths is not enough. Rare: it writes a tree. */
static int gr_baseline_without(const gitapi *g, git_repository *repo, git_tree *base, git_diff *diff,
                               const size_t *blocked, git_tree **out, gr_err *e) {
  git_index *bi = NULL;
  git_oid id;
  int rc;
  *out = NULL;
  if ((rc = g->index_open(&bi, NULL)) == 0) rc = g->index_read_tree(bi, base); /* in memory only */
  for (size_t i = 0, n = g->diff_num_deltas(diff); rc == 0 && i < n; i++) {
    const git_diff_delta *d = g->diff_get_delta(diff, i);
    if (blocked[i] && d->status == GIT_DELTA_DELETED && g->index_get_bypath(bi, gr_delta_path(d), 0))
      rc = g->index_remove_bypath(bi, gr_delta_path(d));
  }
  if (rc == 0) rc = g->index_write_tree_to(&id, bi, repo);
  if (rc == 0) rc = g->tree_lookup(out, repo, &id);
  g->index_free(bi);
  return rc < 0 ? gr_git(g, e, rc, "the checkout's baseline") : 0;
}

/* After a checkout of target: each path of diff that target has must be on disk. libgit2,
 * resuming a type change it was killed in the middle of (a directory turned file, removed
 * but not yet written), can leave both sides unwritten and drop the path from the index.
 * Those paths are checked out again against target itself, which reads their absence as a
 * change to undo; one still missing after that is an error, the checkout still pending.
 * paths: room for as many paths as diff has. */
static int gr_checkout_missing(const gitapi *g, git_repository *repo, git_tree *target, git_diff *diff,
                               char **paths, gr_err *e) {
  const char *wd = g->repository_workdir(repo);
  for (int round = 0; round < 2; round++) {
    size_t missing = 0;
    for (size_t i = 0, n = g->diff_num_deltas(diff); i < n; i++) {
      const git_diff_delta *d = g->diff_get_delta(diff, i);
      char full[PATH_MAX];
      struct stat st;
      if (d->status == GIT_DELTA_DELETED || d->new_file.mode == GIT_FILEMODE_COMMIT || /* a submodule: no file */
          (size_t)snprintf(full, sizeof full, "%s%s", wd, d->new_file.path) >= sizeof full ||
          lstat(full, &st) == 0 || errno != ENOENT)
        continue;
      if (round == 1) return gr_fail(e, "EIO", "%s in %s was not written by the checkout of HEAD", d->new_file.path, wd);
      paths[missing++] = (char *)d->new_file.path;
    }
    if (missing == 0) return 0;
    git_checkout_options co;
    (void)g->checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
    co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH;
    co.file_open_flags = O_CREAT | O_TRUNC | O_WRONLY | O_NOFOLLOW | O_NONBLOCK;
    co.baseline = target;
    co.paths.strings = paths;
    co.paths.count = missing;
    int rc = g->checkout_tree(repo, (git_object *)target, &co);
    if (rc < 0) return gr_git(g, e, rc, "updating the working tree to HEAD");
  }
  return 0;
}

/* Settles a card's working directory (gitrepo/internal.h); main's working tree is the view's
 * (view.c), never settled here. */
int gr_refresh_repo(const gitapi *g, const gr_wd *w, int *updated, gr_err *e) {
  git_repository *repo = w->repo;
  *updated = 0;
  int holds = gr_mark_holds(g, w);
  if (holds && gr_at_tip(g, w)) return 0;
  git_oid tip;
  int trc = g->reference_name_to_id(&tip, repo, w->ref ? w->ref : "HEAD");
  if (trc < 0) return gr_git(g, e, trc, "comparing the index with HEAD");
  gr_stage st;
  gr_stage_read(g, w, &st);
  int pending = st.stage;
  if (pending == 2 && st.has_oid && !g->oid_equal(&st.oid, &tip)) pending = 1; /* an earlier checkout's */
  /* No index: a checkout that never finished. In a card's linked worktree that is its
   * creation (a turn only starts once the worktree is made), so every file there is our own
   * half-written checkout and is rewritten ("writing"). In the main working tree the files
   * may be a person's, so they are checked first ("planned"). */
  if (pending == 0 && !gr_index_exists(g, w)) pending = (w->state || g->repository_is_worktree(repo)) ? 2 : 1;
  git_index *idx = NULL;
  git_tree *base = NULL, *target = NULL;
  git_diff *diff = NULL;
  char **paths = NULL;
  size_t *blocked = NULL;
  git_tree *lean = NULL; /* the baseline without paths gone already */
  git_oid bid;
  int rc, ret = -1;
  if ((rc = g->repository_index(&idx, repo)) < 0 || (rc = g->index_read(idx, 0)) < 0) {
    gr_git(g, e, rc, "index");
    goto out;
  }
  if (g->index_has_conflicts(idx)) {
    gr_fail(e, "EDIRTY", "the index of %s has unresolved conflicts", g->repository_workdir(repo));
    goto out;
  }
  rc = gr_index_tree_id(g, w, holds, idx, &bid);
  if (w->mark) w->mark->known = 0; /* until it is settled again */
  git_commit *tc = NULL; /* the tip resolved above: its ref is not read again */
  if (rc == 0 && (rc = g->commit_lookup(&tc, repo, &tip)) == 0) rc = g->commit_tree(&target, tc);
  g->commit_free(tc);
  if (rc < 0 || (rc = g->tree_lookup(&base, repo, &bid)) < 0 ||
      (rc = g->diff_tree_to_tree(&diff, repo, base, target, NULL)) < 0) {
    gr_git(g, e, rc, "comparing the index with HEAD");
    goto out;
  }
  size_t n = g->diff_num_deltas(diff);
  if (n > 0 && !pending) {
    if ((rc = g->index_read_tree(idx, target)) < 0 || (rc = g->index_write(idx)) < 0) {
      gr_git(g, e, rc, "setting the index to HEAD");
      goto out;
    }
  } else if (n > 0) {
    if ((paths = calloc(n, sizeof *paths)) == NULL) { gr_fail(e, "ENOMEM", "out of memory"); goto out; }
    for (size_t i = 0; i < n; i++) {
      const git_diff_delta *d = g->diff_get_delta(diff, i);
      paths[i] = (char *)gr_delta_path(d);
    }
    /* the checkout reads .gitattributes on the way to each path (and hashes files): only
     * once the directories on those ways are checked as gr_scan checks them */
    if ((blocked = calloc(n, sizeof *blocked)) == NULL) { gr_fail(e, "ENOMEM", "out of memory"); goto out; }
    if (gr_check_ways(g, repo, paths, n, blocked, e) != 0) goto out;
    for (size_t i = 0; i < n; i++) /* once writing began, a path that is neither is ours, */
      if ((pending == 1 || blocked[i]) &&    /* but never what stands on a path's way */
          gr_delta_safe(g, repo, diff, i, blocked[i], e) != 0)
        goto out;
    /* a path to delete below a file or symlink is gone already (a directory turned file,
     * written before a stop): libgit2 would take that file away to delete it */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
      if (!blocked[i] || g->diff_get_delta(diff, i)->status != GIT_DELTA_DELETED) paths[kept++] = paths[i];
    /* not synced: after a kill the page cache still holds it; lost only to a power cut in
     * the middle of the checkout, when "planned" makes the check stop at our own half-written
     * file (EDIRTY, a person looks) rather than overwrite anything */
    if (pending == 1 && gr_pending_write(g, w, "writing", &tip, 0, NULL, e) != 0) goto out;
    git_checkout_options co;
    (void)g->checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
    co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH;
    /* whatever was at a path is removed first (FORCE); should something appear there
     * meanwhile, the write neither follows a symlink nor waits on a FIFO */
    co.file_open_flags = O_CREAT | O_TRUNC | O_WRONLY | O_NOFOLLOW | O_NONBLOCK;
    co.baseline = base;
    if (kept < n && gr_baseline_without(g, repo, base, diff, blocked, &lean, e) != 0) goto out;
    if (lean) co.baseline = lean;
    co.paths.strings = paths;
    co.paths.count = kept;
    /* no path left (every one gone already): no checkout, as libgit2 takes no paths for all */
    if (kept && (rc = g->checkout_tree(repo, (git_object *)target, &co)) < 0) {
      gr_git(g, e, rc, "updating the working tree to HEAD");
      goto out;
    }
    if (kept && gr_checkout_missing(g, repo, target, diff, paths, e) != 0) goto out;
    if (kept < n) { /* the paths left out: their index entries go too */
      for (size_t i = 0; rc >= 0 && i < n; i++) {
        const git_diff_delta *d = g->diff_get_delta(diff, i);
        if (blocked[i] && d->status == GIT_DELTA_DELETED && g->index_get_bypath(idx, gr_delta_path(d), 0))
          rc = g->index_remove_bypath(idx, gr_delta_path(d));
      }
      if (rc >= 0) rc = g->index_write(idx);
      if (rc < 0) {
        gr_git(g, e, rc, "updating the index to HEAD");
        goto out;
      }
    }
    *updated = 1;
  }
  /* the marker says the tip now settled: never read against anything (attach plans from
   * index and tip), so not synced */
  if (pending || st.stage || (st.has_oid && !g->oid_equal(&st.oid, &tip))) {
    if (gr_pending_write(g, w, "idle", &tip, 0, NULL, e) != 0) goto out;
  }
  ret = 0;
  gr_settle(g, w);
out:
  if (ret != 0 && idx) (void)g->index_read(idx, 1); /* nothing half-made stays in memory */
  free(paths);
  free(blocked);
  g->tree_free(lean);
  g->diff_free(diff);
  g->tree_free(target);
  g->tree_free(base);
  g->index_free(idx);
  return ret;
}

int gr_move_ref(const gitapi *g, const gr_wd *w, const char *ref, const git_oid *from,
                       const git_oid *to, const char *why, gr_err *e) {
  git_repository *repo = w->repo;
  gr_stage was;
  if (gr_ref_in_view(g, repo, ref, e) != 0) return -1; /* (commit.c says why) */
  if (gr_pending_write(g, w, "planned", to, 1, &was, e) != 0 || gr_sync(g, repo, e) != 0) return -1;
  git_reference *out = NULL;
  int rc = g->reference_create_matching(&out, repo, ref, to, 1, from, why);
  g->reference_free(out);
  if (rc == 0 && gr_sync(g, repo, e) != 0) return -1;
  if (rc < 0) {
    gr_git(g, e, rc, ref);
    gr_err ignored;
    /* nothing moved: the marker goes back to what it said (a checkout still pending stays so) */
    (void)gr_pending_write(g, w, was.stage == 2 ? "writing" : was.stage ? "planned" : "idle",
                           was.has_oid ? &was.oid : from, 1, NULL, &ignored);
    if (w->mark) w->mark->known = 0;
    return -1;
  }
  return 0;
}
