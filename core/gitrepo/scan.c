/* scan.c: what libgit2 is let near in a card's working tree (the walk that refuses or
 * skips what it must not read, the engine's own .git file) and staging, whole or only the
 * paths a turn touched. See gitrepo.h and docs/git.md. */
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

/* ---- what libgit2 is let near in a working tree --------------------------------------------

 * A card's working tree is written by agent code, so it is data, never trusted. libgit2's
 * own walk skips FIFOs, sockets and devices, but it opens some files by name, following
 * symlinks and without O_NONBLOCK: each directory's .gitignore and .gitattributes, the
 * root's .gitmodules, and a nested repository's .git (an untracked directory holding one is
 * added as a submodule: its repository opened wherever its .git points). A FIFO there
 * blocks the engine for good; a symlink reads a file outside. So before libgit2 reads a
 * working tree, gr_scan walks it itself (no-follow, non-blocking) and:
 * - refuses (EUNSAFE) when one of those by-name files is not a regular file or is large;
 * - lists what is not handed to libgit2's staging (skip: a FIFO, socket or device, a file
 *   over GR_FILE_MAX, a directory holding a nested .git), each with a note saying why. */
#define GR_FILE_MAX ((off_t)64 << 20)   /* a larger regular file is not committed */
#define GR_CONTROL_MAX ((off_t)1 << 20) /* a larger .gitignore/.gitattributes is refused */
#define GR_SCAN_DEPTH 128
#define GR_NOTES_MAX 50 /* notes kept per scan (the skip list itself is whole) */
/* The files (and symlinks) a card's directory may hold outside its ignored directories
 * beyond those its index tracks already (a big project's own files never count against
 * it). Staging, the commit's tree, the merge into main and main's view's checkout all grow
 * with the tree and run on the loop thread (docs/git.md, *Threads and the loop*): agent
 * code made 300,000 files and stalled `orket serve` for 52 s. Past this the walk stops and
 * the card's commit is refused (EUNSAFE: the card is blocked with the count and the limit). */
#define GR_TREE_FILES_MAX 50000

/* ---- the rules a card's files are excluded by -----------------------------------------------

 * A card's handle is main's repository opened on the card's directory, so libgit2 applies
 * main's .git/info/exclude and a core.excludesFile of main's config to it: a person's own
 * ignores for workspace/, which kept an agent's files out of the card's commits unsaid (and a
 * detach then deleted them as ignored). A card's change is its directory's, excluded by the
 * tree's .gitignore files alone. libgit2 cannot be told to skip those sources, so where the
 * person has any, the rules are asked of a repository of no gitdir (no info/exclude) and an
 * empty config (no excludesFile: the global and XDG search paths are emptied at set-up)
 * whose working tree is the card's directory; what the handle's own walks (staging, status)
 * then miss is added back by name from the scan (gr_scan.hidden). Without any, the handle's
 * rules are the tree's and nothing changes. */
#define GR_EXCLUDE_READ 65536

/* 1 when repo's ignores hold a person's on top of the tree's: info/exclude with a rule (a
 * line neither blank nor a comment; one too long to read counts) or core.excludesFile set. */
static int gr_has_excludes(const gitapi *g, git_repository *repo) {
  git_config *cfg = NULL;
  const char *v = NULL;
  int has = 0;
  if (g->repository_config_snapshot(&cfg, repo) == 0) {
    has = g->config_get_string(&v, cfg, "core.excludesFile") == 0 && v && *v;
    g->config_free(cfg);
  }
  char path[PATH_MAX];
  if (has || (size_t)snprintf(path, sizeof path, "%sinfo/exclude", g->repository_commondir(repo)) >= sizeof path)
    return 1;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC); /* libgit2 follows a symlink there too */
  if (fd < 0) return 0;
  struct stat st;
  char *buf = NULL;
  ssize_t n = -1;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    if (st.st_size >= GR_EXCLUDE_READ) has = 1;
    else if ((buf = malloc(GR_EXCLUDE_READ)) != NULL) n = read(fd, buf, GR_EXCLUDE_READ - 1);
    else has = 1;
  }
  close(fd);
  for (ssize_t i = 0; i < n && !has; i++) {
    while (i < n && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r')) i++;
    if (i < n && buf[i] != '\n' && buf[i] != '#') has = 1;
    while (i < n && buf[i] != '\n') i++;
  }
  free(buf);
  return has;
}

/* *out: the repository a card's ignore rules are asked of (above), or NULL when they are
 * repo's own. */
static int gr_rules_open(const gitapi *g, git_repository *repo, git_repository **out, gr_err *e) {
  *out = NULL;
  const char *wd = g->repository_workdir(repo);
  if (wd == NULL || !gr_has_excludes(g, repo)) return 0;
  git_repository *rr = NULL;
  git_config *cfg = NULL;
  int rc = g->repository_new(&rr);
  if (rc == 0) rc = g->config_new(&cfg);
  if (rc == 0) rc = g->repository_set_config(rr, cfg);
  if (rc == 0) rc = g->repository_set_workdir(rr, wd, 0);
  g->config_free(cfg); /* the repository holds its own reference */
  if (rc < 0) {
    if (rr) g->repository_free(rr);
    return gr_git(g, e, rc, "the working tree's ignore rules");
  }
  *out = rr;
  return 0;
}

/* 1 when path (a directory's ending in '/') is ignored by the working tree's rules */
static int gr_rule_ignored(const gitapi *g, const gr_scan *s, const char *path) {
  int ignored = 0;
  return g->ignore_path_is_ignored(&ignored, s->rules ? s->rules : s->repo, path) == 0 && ignored;
}

void gr_scan_free(gr_scan *s) {
  if (s->rules) s->g->repository_free(s->rules);
  s->rules = NULL;
  if (s->idx) s->g->index_free(s->idx);
  s->idx = NULL;
  gr_paths_free(&s->grown);
  gr_paths_free(&s->hidden);
  gr_paths_free(&s->skip);
  gr_paths_free(&s->notes);
  gr_paths_free(&s->filtered);
  s->unnoted = 0;
}

static const char *gr_kind(mode_t m) {
  return S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) ? "a character device"
       : S_ISBLK(m) ? "a block device" : S_ISLNK(m) ? "a symlink" : S_ISDIR(m) ? "a directory" : "not a regular file";
}

static int gr_scan_skip(gr_scan *s, const char *path, const char *why, gr_err *e) {
  char note[PATH_MAX + 320];
  if (gr_paths_add(&s->skip, path) != 0) return gr_fail(e, "ENOMEM", "out of memory");
  if (s->notes.n >= GR_NOTES_MAX) {
    s->unnoted++;
    return 0;
  }
  snprintf(note, sizeof note, "%s (%s)", path, why);
  return gr_paths_add(&s->notes, note) != 0 ? gr_fail(e, "ENOMEM", "out of memory") : 0;
}

/* ---- what the branch tracks is never turned into a deletion ----------------------------------

 * A path the scan leaves out is one libgit2's staging never sees: where the index tracks it,
 * its entry stays as it is (a commit keeps what the card did not change), and a detach must
 * not remove it from the directory either, or the next card's commit would record it gone.
 * - A tracked file over GR_FILE_MAX (a model, a data set: real repositories track them) is
 *   left to its entry while it holds the entry's content (git would commit it unchanged;
 *   its stat as the index recorded it says so, else it is hashed); one whose content
 *   changed (a card's edit, a truncation) cannot be committed and must not be lost:
 *   gr_scan.grown, refused at the commit (EUNSAFE, naming it and the cap) and an
 *   uncommitted change to a detach.
 * - A submodule (a gitlink entry, mode 160000) is a folder in a card's directory (its
 *   repository is never checked out there): what a card writes in it is not the branch's
 *   (git refuses `git add lib/x`, and `git add -A` stages nothing there), so it is left out
 *   with a note, and the gitlink itself is never staged from a card's directory (libgit2
 *   dropped it for a tree of the card's files, which main's view then wrote into the
 *   person's submodule checkout). */

/* 1 when idx tracks path as a submodule (a gitlink entry) */
static int gr_gitlink_at(const gitapi *g, git_index *idx, const char *path) {
  const git_index_entry *en = idx ? g->index_get_bypath(idx, path, 0) : NULL;
  return en != NULL && en->mode == GIT_FILEMODE_COMMIT;
}

size_t gr_in_gitlink(const gitapi *g, git_index *idx, const char *path) {
  char pre[PATH_MAX];
  for (const char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
    size_t n = (size_t)(slash - path);
    if (n >= sizeof pre) return 0;
    memcpy(pre, path, n);
    pre[n] = '\0';
    if (gr_gitlink_at(g, idx, pre)) return n;
  }
  return 0;
}

static int gr_entry_holds(const gitapi *g, git_repository *repo, const git_index_entry *en, const char *path,
                          const struct stat *st);

/* What a regular file over the cap at path (st: its lstat) is to idx: 0 untracked (left out,
 * noted), 1 tracked and holding its entry's content (nothing to stage: the entry stays), 2
 * tracked and changed (gr_scan.grown). */
static int gr_big_tracked(const gitapi *g, git_repository *repo, git_index *idx, const char *path,
                          const struct stat *st) {
  const git_index_entry *en = idx ? g->index_get_bypath(idx, path, 0) : NULL;
  if (en == NULL) return 0;
  if (en->mode != GIT_FILEMODE_BLOB && en->mode != GIT_FILEMODE_BLOB_EXECUTABLE) return 2;
  if (en->file_size && en->file_size != (uint32_t)st->st_size) return 2;
  /* its stat as the index recorded it (a checkout or a staging of it): unchanged, without
   * reading 64 MiB or more; only where the index was written after the file's time, as git
   * rules: an edit within the same tick as the checkout (a filesystem of coarse times)
   * keeps the stat it had, and is hashed */
  const char *ip = g->index_path(idx);
  struct stat ist;
  int settled = ip != NULL && stat(ip, &ist) == 0 &&
                (ist.st_mtim.tv_sec > st->st_mtim.tv_sec ||
                 (ist.st_mtim.tv_sec == st->st_mtim.tv_sec && ist.st_mtim.tv_nsec > st->st_mtim.tv_nsec));
  if (settled && en->file_size && en->ino == (uint32_t)st->st_ino && en->mtime.seconds == (int32_t)st->st_mtim.tv_sec &&
      en->mtime.nanoseconds == (uint32_t)st->st_mtim.tv_nsec && en->ctime.seconds == (int32_t)st->st_ctim.tv_sec &&
      en->ctime.nanoseconds == (uint32_t)st->st_ctim.tv_nsec &&
      (en->mode == GIT_FILEMODE_BLOB_EXECUTABLE) == ((st->st_mode & S_IXUSR) != 0))
    return 1;
  return gr_entry_holds(g, repo, en, path, st) ? 1 : 2;
}

/* Puts a file over the cap (rel, st) on s's lists by gr_big_tracked's answer; walk: a whole
 * walk's, whose skip list keeps a tracked one from libgit2's staging too. */
static int gr_scan_big(const gitapi *g, gr_scan *s, git_index *idx, const char *rel, const struct stat *st, int walk,
                       gr_err *e) {
  int k = gr_big_tracked(g, s->repo, idx, rel, st);
  if (k == 0) {
    char why[96];
    snprintf(why, sizeof why, "%lld bytes, over the %lld MiB cap: not committed", (long long)st->st_size,
             (long long)(GR_FILE_MAX >> 20));
    return gr_scan_skip(s, rel, why, e);
  }
  if (walk && gr_paths_add(&s->skip, rel) != 0) return gr_fail(e, "ENOMEM", "out of memory");
  if (k == 2) {
    if (s->grown.n == 0) s->grown_size = (long long)st->st_size;
    if (gr_paths_add(&s->grown, rel) != 0) return gr_fail(e, "ENOMEM", "out of memory");
  }
  return 0;
}

/* ---- a filter driver Orket does not run -----------------------------------------------------

 * git stages a file whose attributes name a filter driver (`filter=lfs` for Git LFS,
 * `filter=git-crypt`, a team's own clean filter) through that driver's clean command;
 * libgit2 runs only its own crlf and ident filters, never a driver, so a card's file under one
 * went into main as its raw content (an LFS object's bytes where git commits a pointer, a
 * secret git-crypt would have encrypted) and the person's git then showed it as modified.
 * So in a card's working tree such a path is never staged: a new one is left out with a note
 * naming the attribute and the driver (gr_scan_skip, as a new file over the cap), and a
 * tracked one whose content the card changed refuses the commit (s->filtered, as a tracked
 * file over the cap that changed: a deletion is no way out of it); one that still holds its
 * committed content, or is deleted, is an ordinary path. Any driver is refused, whatever a
 * config says of it (its command, `required`): Orket runs none, and the repository's
 * attributes say the same on every machine. A person commits such a file in workspace/
 * with git, which runs the driver. */
#define GR_DRIVER_SHOWN 48 /* a driver's name as far as a note or a refusal says it */

/* The filter driver path's attributes name (filter=NAME, its bytes past GR_DRIVER_SHOWN
 * cut and those that are not printable as '?') into driver: 1; 0 when they name none (no
 * filter attribute, or one set or unset without a name, which git takes for none); -1
 * when the attributes cannot be read (libgit2's error is its last). */
static int gr_filter_of(const gitapi *g, git_repository *repo, const char *path, char *driver, size_t cap) {
  const char *v = NULL;
  if (g->attr_get(&v, repo, GIT_ATTR_CHECK_FILE_THEN_INDEX | GIT_ATTR_CHECK_NO_SYSTEM, path, "filter") < 0) return -1;
  if (g->attr_value(v) != GIT_ATTR_VALUE_STRING) return 0;
  size_t n = strlen(v);
  if (n > GR_DRIVER_SHOWN) n = GR_DRIVER_SHOWN;
  if (n >= cap) n = cap - 1;
  for (size_t i = 0; i < n; i++) driver[i] = (unsigned char)v[i] < 0x21 || v[i] == 0x7f ? '?' : v[i];
  driver[n] = '\0';
  return 1;
}

/* A new file of a card's under a filter driver: left out, noted. */
static int gr_scan_skip_filtered(gr_scan *s, const char *path, const char *driver, gr_err *e) {
  char why[3 * GR_DRIVER_SHOWN + 160];
  snprintf(why, sizeof why, "its attributes say filter=%s: git commits it through the filter driver %s, which Orket "
           "does not run: not committed", driver, driver);
  return gr_scan_skip(s, path, why, e);
}

/* A tracked file of a card's under a filter driver whose content changed: on s->filtered. */
static int gr_scan_add_filtered(gr_scan *s, const char *path, const char *driver) {
  for (size_t i = 0; i < s->filtered.n; i++)
    if (strcmp(s->filtered.v[i], path) == 0) return 0;
  if (s->filtered.n == 0) snprintf(s->filter_driver, sizeof s->filter_driver, "%s", driver);
  return gr_paths_add(&s->filtered, path);
}

int gr_scan_grown(const gr_scan *s, gr_err *e) {
  if (s->grown.n == 0 && s->filtered.n > 0)
    return gr_fail(e, "EUNSAFE",
                   "%s changed, and its attributes say filter=%s: git commits it through the filter driver %s, which "
                   "Orket does not run, so its raw content would go into main; the change is not committed, nor "
                   "anything else of the turn%s: bring it back to its committed version or delete it (a person "
                   "commits such a change in workspace/ with git, which runs the driver)",
                   s->filtered.v[0], s->filter_driver, s->filter_driver,
                   s->filtered.n > 1 ? " (and more such files)" : "");
  if (s->grown.n == 0) return 0;
  return gr_fail(e, "EUNSAFE",
                 "%s changed and is %lld bytes, over the %lld MiB cap on a file git work commits%s: the change is not "
                 "committed, and neither is a deletion of the file; bring it back to its committed version, make it "
                 "at most %lld MiB, or delete it",
                 s->grown.v[0], s->grown_size, (long long)(GR_FILE_MAX >> 20),
                 s->grown.n > 1 ? " (and more such files)" : "", (long long)(GR_FILE_MAX >> 20));
}

/* 1 when the directory open as dfd holds anything */
static int gr_dir_holds(int dfd) {
  int fd = dup(dfd);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    if (fd >= 0) close(fd);
    return 0;
  }
  struct dirent *de;
  int any = 0;
  while (!any && (de = readdir(d)) != NULL) any = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
  closedir(d);
  return any;
}

int gr_scan_controls(int dfd, const char *rel, gr_err *e) {
  static const char *const names[] = {".gitignore", ".gitattributes", ".gitmodules", NULL};
  for (const char *const *n = names; *n; n++) {
    struct stat st;
    if (fstatat(dfd, *n, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode) || st.st_size > GR_CONTROL_MAX)
      return gr_fail(e, "EUNSAFE",
                     "%s%s is %s%s; git reads that file by name, so no git work is done on this working tree "
                     "until it is removed or made a regular file of at most 1 MiB",
                     rel, *n, S_ISREG(st.st_mode) ? "larger than 1 MiB" : gr_kind(st.st_mode),
                     S_ISREG(st.st_mode) ? "" : " (never opened)");
  }
  return 0;
}

/* A file (or symlink) the walk met at rel (st: its lstat) that staging would stage: left
 * out when it is a card's new file under a filter driver (above) that the tree's rules do
 * not ignore; put on s->hidden when only a person's excludes hide it (hidden: its directory
 * is so hidden; with s->rules only). */
static int gr_scan_file(const gitapi *g, gr_scan *s, const char *rel, const struct stat *st, int hidden, gr_err *e) {
  if (s->card && S_ISREG(st->st_mode) && (s->idx == NULL || g->index_get_bypath(s->idx, rel, 0) == NULL)) {
    char driver[GR_DRIVER_SHOWN + 1];
    int f = gr_filter_of(g, s->repo, rel, driver, sizeof driver);
    if (f < 0) return gr_git(g, e, -1, rel);
    if (f && !gr_rule_ignored(g, s, rel)) return gr_scan_skip_filtered(s, rel, driver, e);
  }
  if (!s->rules) return 0;
  /* what staging stages; the handle's walk misses it where a person's rule matches */
  int ig = 0;
  if ((hidden || (g->ignore_path_is_ignored(&ig, s->repo, rel) == 0 && ig)) && !gr_rule_ignored(g, s, rel) &&
      gr_paths_push(&s->hidden, rel) != 0)
    return gr_fail(e, "ENOMEM", "out of memory");
  return 0;
}

/* Walks directory dfd (closed here, whatever happens), whose path is rel. hidden: the
 * handle's own rules ignore it (a person's excludes; with s->rules only). */
static int gr_scan_dir(const gitapi *g, gr_scan *s, int dfd, char *rel, size_t rlen, int depth, int hidden,
                       size_t *files, gr_err *e) {
  if (gr_scan_controls(dfd, rel, e) != 0) {
    close(dfd);
    return -1;
  }
  if (rlen > 0) { /* an ignored directory is not walked by libgit2 either */
    if (gr_rule_ignored(g, s, rel)) {
      close(dfd);
      return 0;
    }
    int ig = 0;
    if (s->rules && !hidden) hidden = g->ignore_path_is_ignored(&ig, s->repo, rel) == 0 && ig;
  }
  DIR *d = fdopendir(dfd);
  if (d == NULL) {
    int err = errno;
    close(dfd);
    return gr_fail(e, "EIO", "cannot list %s: %s", rlen ? rel : "the working tree", strerror(err));
  }
  struct dirent *de;
  int ret = 0;
  while (ret == 0 && (de = readdir(d)) != NULL) {
    const char *name = de->d_name;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
    if (rlen == 0 && strcmp(name, ".git") == 0) continue; /* the engine's own: gr_wt_gitdir_check */
    size_t nl = strlen(name);
    if (rlen + nl + 2 >= PATH_MAX) continue; /* libgit2 cannot name it either */
    memcpy(rel + rlen, name, nl + 1);
    struct stat st;
    if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      rel[rlen] = '\0';
      continue; /* gone since readdir */
    }
    if (strcmp(name, ".git") == 0) { /* a nested repository: its .git may point anywhere */
      rel[rlen] = '\0';
      ret = gr_scan_skip(s, rel, "holds a nested .git: a repository of its own, not committed", e);
      break;
    }
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      char why[64];
      snprintf(why, sizeof why, "%s: never opened, not committed", gr_kind(st.st_mode));
      ret = gr_scan_skip(s, rel, why, e);
    } else if (S_ISREG(st.st_mode) && st.st_size > GR_FILE_MAX) {
      ret = gr_scan_big(g, s, s->idx, rel, &st, 1, e);
    } else if (!S_ISDIR(st.st_mode) && gr_gitlink_at(g, s->idx, rel)) {
      /* a file or link where a submodule is: git would not stage it either (the gitlink is
       * a commit of another repository), and without the note it vanished unsaid */
      char why[80];
      snprintf(why, sizeof why, "%s at a submodule's path: the submodule is kept, not committed",
               S_ISREG(st.st_mode) ? "a file" : gr_kind(st.st_mode));
      ret = gr_scan_skip(s, rel, why, e);
    } else if (S_ISDIR(st.st_mode) && gr_gitlink_at(g, s->idx, rel)) {
      /* a submodule: never walked; what a card wrote in it is noted (gr_scan_run adds the
       * empty ones) */
      int cfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
      int holds = cfd >= 0 && gr_dir_holds(cfd);
      if (cfd >= 0) close(cfd);
      if (holds) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof why, "inside the submodule %s: not committed", rel);
        rel[rlen + nl] = '/';
        rel[rlen + nl + 1] = '\0';
        ret = gr_scan_skip(s, rel, why, e);
      }
    } else if (S_ISDIR(st.st_mode)) {
      if (depth >= GR_SCAN_DEPTH) {
        rel[rlen + nl] = '/';
        rel[rlen + nl + 1] = '\0';
        ret = gr_scan_skip(s, rel, "nested too deep: not committed", e);
      } else {
        int cfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (cfd >= 0) {
          rel[rlen + nl] = '/';
          rel[rlen + nl + 1] = '\0';
          ret = gr_scan_dir(g, s, cfd, rel, rlen + nl + 1, depth + 1, hidden, files, e); /* closes cfd */
        }
      }
    } else if ((S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) && files && ++*files > s->files_max) {
      const char *wd = g->repository_workdir(s->repo);
      ret = gr_fail(e, "EUNSAFE",
                    "%s holds more than %zu files, %d more than its index tracks (the limit of a card's directory, "
                    "GR_TREE_FILES_MAX in core/gitrepo/scan.c; an ignored directory does not count): not committed; "
                    "delete files, or list the directory generated ones go to in .gitignore (a file a pattern ignores "
                    "still counts)",
                    wd ? wd : "the card's directory", s->files_max, GR_TREE_FILES_MAX);
    } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
      ret = gr_scan_file(g, s, rel, &st, hidden, e);
    }
    rel[rlen] = '\0';
  }
  closedir(d);
  return ret;
}

int gr_workdir_fd(const gitapi *g, git_repository *repo, gr_err *e) {
  const char *wd = g->repository_workdir(repo);
  if (wd == NULL) return -2;
  int fd = open(wd, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  return fd >= 0 ? fd : gr_fail(e, "EIO", "cannot open %s: %s", wd, strerror(errno));
}

int gr_scan_run(const gitapi *g, git_repository *repo, gr_scan *s, int card, gr_err *e) {
  memset(s, 0, sizeof *s);
  s->repo = repo;
  s->g = g;
  s->card = card;
  if (card && gr_rules_open(g, repo, &s->rules, e) != 0) return -1;
  int rc = g->repository_index(&s->idx, repo);
  if (rc < 0) {
    s->idx = NULL;
    gr_scan_free(s);
    return gr_git(g, e, rc, "index");
  }
  int fd = gr_workdir_fd(g, repo, e);
  if (fd < 0) {
    gr_scan_free(s);
    return fd == -2 ? 0 : -1;
  }
  char rel[PATH_MAX] = "";
  size_t files = 0;
  s->files_max = g->index_entrycount(s->idx) + GR_TREE_FILES_MAX;
  if (gr_scan_dir(g, s, fd, rel, 0, 0, 0, card ? &files : NULL, e) != 0) {
    gr_scan_free(s);
    return -1;
  }
  /* every submodule is left to its gitlink, its folder empty or missing too (a card's
   * directory never holds its repository, so nothing there says the gitlink changed) */
  size_t ne = g->index_entrycount(s->idx);
  for (size_t i = 0; i < ne; i++) {
    const git_index_entry *en = g->index_get_byindex(s->idx, i);
    if (en == NULL || en->mode != GIT_FILEMODE_COMMIT) continue;
    size_t pl = strlen(en->path);
    if (pl + 2 > sizeof rel) continue;
    memcpy(rel, en->path, pl);
    rel[pl] = '/';
    rel[pl + 1] = '\0';
    if (gr_paths_add(&s->skip, rel) != 0) {
      gr_scan_free(s);
      return gr_fail(e, "ENOMEM", "out of memory");
    }
  }
  if (s->unnoted) {
    char more[64];
    snprintf(more, sizeof more, "... and %zu more", s->unnoted);
    if (gr_paths_add(&s->notes, more) != 0) {
      gr_scan_free(s);
      return gr_fail(e, "ENOMEM", "out of memory");
    }
  }
  return 0;
}

/* 1 when path (as libgit2 names it: a file, or a directory with or without its '/') is one
 * the scan left out, or lies beneath one. */
static int gr_scan_skips(const gr_paths *skip, const char *path) {
  size_t pl = strlen(path);
  for (size_t i = 0; i < skip->n; i++) {
    const char *s = skip->v[i];
    size_t sl = strlen(s);
    if (sl > 0 && s[sl - 1] == '/') {
      if (strncmp(path, s, sl) == 0 || (pl == sl - 1 && strncmp(path, s, pl) == 0)) return 1;
    } else if (strcmp(path, s) == 0) {
      return 1;
    }
  }
  return 0;
}

int gr_scan_untracked(const gitapi *g, git_repository *repo, const gr_scan *s, gr_paths *out, gr_err *e) {
  if (s->hidden.n == 0) return 0;
  git_index *idx = NULL;
  int rc = g->repository_index(&idx, repo), n = 0;
  if (rc < 0) return gr_git(g, e, rc, "index");
  for (size_t i = 0; i < s->hidden.n; i++) {
    const char *p = s->hidden.v[i];
    if (g->index_get_bypath(idx, p, 0) != NULL || gr_scan_skips(&s->skip, p)) continue;
    if (gr_paths_add(out, p) != 0) {
      g->index_free(idx);
      return gr_fail(e, "ENOMEM", "out of memory");
    }
    n++;
  }
  g->index_free(idx);
  return n;
}

const char *gr_status_change(const gitapi *g, git_status_list *sl, size_t i, const gr_paths *skip) {
  const git_status_entry *s = g->status_byindex(sl, i);
  if (s->status == GIT_STATUS_CURRENT || (s->status & GIT_STATUS_IGNORED)) return NULL;
  const git_diff_delta *d = s->index_to_workdir ? s->index_to_workdir : s->head_to_index;
  const char *p = d->new_file.path ? d->new_file.path : d->old_file.path;
  return gr_scan_skips(skip, p) ? NULL : p;
}

int gr_stage_filter(const char *path, const char *matched, void *payload) {
  (void)matched;
  gr_scan *s = payload;
  if (gr_scan_skips(&s->skip, path)) return 1;
  const gitapi *g = s->g;
  /* a tracked file of a card's under a filter driver (the walk decided the new ones): left
   * to its entry while it holds the entry's content, else refused at the commit */
  const git_index_entry *en = s->card && s->idx ? g->index_get_bypath(s->idx, path, 0) : NULL;
  const char *wd = en ? g->repository_workdir(s->repo) : NULL;
  char full[PATH_MAX], driver[GR_DRIVER_SHOWN + 1];
  struct stat st;
  if (wd == NULL || (size_t)snprintf(full, sizeof full, "%s%s", wd, path) >= sizeof full ||
      lstat(full, &st) != 0 || !S_ISREG(st.st_mode))
    return 0; /* deleted, or no longer a file: an ordinary change */
  int f = gr_filter_of(g, s->repo, path, driver, sizeof driver);
  if (f <= 0) return f; /* (-1: the staging fails with libgit2's error) */
  if (gr_entry_holds(g, s->repo, en, path, &st)) return 1;
  return gr_scan_add_filtered(s, path, driver) != 0 ? -1 : 1;
}

/* ---- the worktree's .git is the engine's ----------------------------------------------------

 * A card's working tree holds the .git file naming its gitdir, and agent code can write
 * there. libgit2 follows that file when it opens the worktree by its directory: rewritten,
 * commits would land in whatever repository it names and a FIFO there would block. So the
 * engine opens a card's repository from its gitdir (<commondir>/worktrees/<card>, never
 * agent-writable; the working tree comes from its gitdir file), and before each operation
 * checks that the .git file is still what git_worktree_add wrote. A .git found otherwise is
 * refused (EUNSAFE, once) and put back: the one found is moved into the gitdir as
 * dotgit.refused-N (never deleted) and the right file written, so that libgit2's own visits to every
 * worktree (making another card's) never follow it; the refusal is kept in the gitdir
 * (GR_REFUSED) until the card's next operation reports it. */
#define GR_DOTGIT_MAX 4096
#define GR_REFUSED "orket-gitdir-refused"

/* Reads a small regular file at dirfd/name (at most cap-1 bytes) into buf without following
 * a symlink, opening a FIFO, socket or device (lstat first; the open is O_NOFOLLOW|O_NONBLOCK
 * and checked again, so a swap in between cannot block). 0, or -1 with errno: EINVAL when
 * it is not a regular file (*mode says what it is), EFBIG when it is too large. */
static int gr_read_small(int dirfd, const char *name, char *buf, size_t cap, mode_t *mode) {
  struct stat st;
  *mode = 0;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return -1;
  *mode = st.st_mode;
  if (!S_ISREG(st.st_mode) || (size_t)st.st_size >= cap) {
    errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
    return -1;
  }
  int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return -1;
  int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  ssize_t n = ok ? read(fd, buf, cap - 1) : -1;
  int err = ok ? errno : EINVAL;
  close(fd);
  if (n < 0) {
    errno = err;
    return -1;
  }
  buf[n] = '\0';
  return 0;
}

static void gr_chomp(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '/')) s[--n] = '\0';
}

/* Puts card's .git back: whatever is there moved into the card's gitdir (meta) as
 * dotgit.refused-N (kept for a person to look at until the worktree is removed, and out of
 * the working tree so it is never committed), then the file git_worktree_add writes written in its place.
 * Best effort: the refusal stands either way. */
static void gr_dotgit_restore(const char *wd, const char *meta) {
  int dfd = open(wd, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return;
  int mfd = open(meta, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (mfd >= 0 && fstatat(dfd, ".git", &st, AT_SYMLINK_NOFOLLOW) == 0) {
    char aside[64];
    int moved = 0;
    for (int i = 1; i < 1000 && !moved; i++) {
      snprintf(aside, sizeof aside, "dotgit.refused-%d", i);
      if (fstatat(mfd, aside, &st, AT_SYMLINK_NOFOLLOW) == 0) continue;
      moved = renameat(dfd, ".git", mfd, aside) == 0;
      if (!moved) break;
    }
    if (!moved) {
      close(mfd);
      close(dfd);
      return;
    }
  }
  if (mfd >= 0) close(mfd);
  char line[PATH_MAX + 16];
  int n = snprintf(line, sizeof line, "gitdir: %s/\n", meta);
  int fd = openat(dfd, ".git", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd >= 0) {
    if (write(fd, line, (size_t)n) != n) { /* best effort: checked again next time */ }
    close(fd);
  }
  close(dfd);
}

int gr_wt_gitdir_check(const gitapi *g, git_repository *repo, const char *card, gr_err *e) {
  char meta[PATH_MAX], link[PATH_MAX], dotgit[GR_DOTGIT_MAX], wd[PATH_MAX];
  mode_t mode;
  if ((size_t)snprintf(meta, sizeof meta, "%sworktrees/%s", g->repository_commondir(repo), card) >= sizeof meta)
    return gr_fail(e, "EINVAL", "path too long");
  int mfd = open(meta, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (mfd < 0) return gr_fail(e, "ENOENT", "card %s has no worktree", card);
  char refused[1024];
  if (gr_read_small(mfd, GR_REFUSED, refused, sizeof refused, &mode) == 0) {
    (void)unlinkat(mfd, GR_REFUSED, 0);
    close(mfd);
    return gr_fail(e, "EUNSAFE", "%s", refused);
  }
  int rc = gr_read_small(mfd, "gitdir", link, sizeof link, &mode);
  close(mfd);
  if (rc != 0) return gr_fail(e, "EINVAL", "the worktree of card %s is broken; make it again", card);
  gr_chomp(link);
  size_t ll = strlen(link);
  if (ll < 5 || strcmp(link + ll - 5, "/.git") != 0)
    return gr_fail(e, "EINVAL", "the worktree of card %s is broken; make it again", card);
  snprintf(wd, sizeof wd, "%.*s", (int)(ll - 5), link);
  int wfd = open(wd, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (wfd < 0) return gr_fail(e, "EINVAL", "the worktree of card %s is broken; make it again", card);
  rc = gr_read_small(wfd, ".git", dotgit, sizeof dotgit, &mode);
  int err = errno;
  close(wfd);
  char found[PATH_MAX + 64];
  if (rc != 0) {
    if (err == ENOENT) snprintf(found, sizeof found, "is missing");
    else if (err == EFBIG) snprintf(found, sizeof found, "is too large for a .git file");
    else if (err == EINVAL && mode) snprintf(found, sizeof found, "is %s", gr_kind(mode));
    else snprintf(found, sizeof found, "cannot be read (%s)", strerror(err));
  } else {
    gr_chomp(dotgit);
    if (strncmp(dotgit, "gitdir: ", 8) == 0 && strcmp(dotgit + 8, meta) == 0) return 0;
    snprintf(found, sizeof found, "points to \"%.*s\"", 200, strncmp(dotgit, "gitdir: ", 8) == 0 ? dotgit + 8 : dotgit);
  }
  gr_dotgit_restore(wd, meta);
  return gr_fail(e, "EUNSAFE",
                 "the .git file of card %s's worktree %s, not the repository's worktrees/%s: refused, never "
                 "followed (the engine alone writes it: it was put back, and what was there kept as %s/dotgit.refused-N)",
                 card, found, card, meta);
}

void gr_wt_gitdir_sweep(const gitapi *g, git_repository *repo, const char *card) {
  gr_err e;
  if (gr_wt_gitdir_check(g, repo, card, &e) == 0 || strcmp(e.code, "EUNSAFE") != 0) return;
  char p[PATH_MAX], tmp[PATH_MAX + 8];
  if ((size_t)snprintf(p, sizeof p, "%sworktrees/%s/" GR_REFUSED, g->repository_commondir(repo), card) >= sizeof p)
    return;
  snprintf(tmp, sizeof tmp, "%s.tmp", p);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t n = strlen(e.msg + 5); /* without "git: ": gr_fail adds it again */
  int ok = write(fd, e.msg + 5, n) == (ssize_t)n && fsync(fd) == 0;
  close(fd);
  if (ok) (void)rename(tmp, p);
  else (void)unlink(tmp);
}

int gr_wt_refused(const gitapi *g, git_repository *repo, const char *card) {
  char p[PATH_MAX];
  struct stat st;
  return (size_t)snprintf(p, sizeof p, "%sworktrees/%s/" GR_REFUSED, g->repository_commondir(repo), card) < sizeof p &&
         lstat(p, &st) == 0;
}

void gr_wt_gitdir_sweep_all(const gitapi *g, git_repository *repo, const char *except) {
  git_strarray wts = {0};
  if (g->worktree_list(&wts, repo) < 0) return;
  for (size_t i = 0; i < wts.count; i++)
    if (gitrepo_card_valid(wts.strings[i]) && strcmp(wts.strings[i], except) != 0)
      gr_wt_gitdir_sweep(g, repo, wts.strings[i]);
  g->strarray_dispose(&wts);
}

/* The index is read with a soft read (git_index_read's force 0): reloaded only when the file
 * on disk changed since this handle last read or wrote it (libgit2 compares its stamp), so
 * a turn's several operations do not each parse and checksum main's whole index again. Every
 * change made in memory is written, or dropped by a hard read when the operation fails. */

/* ---- staging only the paths a turn touched -------------------------------------------------

 * A turn that changed a file or two should not cost a walk of every file main holds. When
 * the caller knows every path changed since the working tree last matched its index (the
 * engine does while only its file tools wrote there: docs/git.md), only those are staged,
 * with the same rules as the whole walk: each directory on the way is checked as gr_scan
 * checks it (the files libgit2 reads by name there, a nested repository), and the path is
 * staged as index_add_all and index_update_all would stage it. Anything that is not a plain
 * file or a missing one (a directory, a symlink, a control file whose rules reach other
 * paths, a nested repository, a path deeper than the scan goes) is left to the whole walk:
 * gr_stage_paths answers 1 and stages nothing more. */

/* 1 when idx holds an entry beneath directory path */
static int gr_index_has_under(const gitapi *g, git_index *idx, const char *path) {
  char pre[PATH_MAX + 2];
  size_t at;
  if ((size_t)snprintf(pre, sizeof pre, "%s/", path) >= sizeof pre) return 1;
  return g->index_find_prefix(&at, idx, pre) == 0;
}

static int gr_control_name(const char *base) {
  return strcmp(base, ".gitignore") == 0 || strcmp(base, ".gitattributes") == 0 || strcmp(base, ".gitmodules") == 0;
}

/* 1 when the index entry en already records the file at path (st: its lstat) as staging it
 * would: the same mode and the same blob, hashed as libgit2 stages it (filters applied).
 * Staging writes the blob first (a temporary object file, dropped when the object exists),
 * which a detach's check of a card's committed files paid for every one. */
static int gr_entry_holds(const gitapi *g, git_repository *repo, const git_index_entry *en, const char *path,
                          const struct stat *st) {
  git_oid id;
  if (en == NULL || (en->mode != GIT_FILEMODE_BLOB && en->mode != GIT_FILEMODE_BLOB_EXECUTABLE) ||
      (en->mode == GIT_FILEMODE_BLOB_EXECUTABLE) != ((st->st_mode & S_IXUSR) != 0))
    return 0;
  /* a relative path is the working tree's; as_path names it for the filters */
  return g->repository_hashfile(&id, repo, path, GIT_OBJECT_BLOB, path) == 0 && g->oid_equal(&id, &en->id);
}

/* Stages one path (valid: gitrepo_path_valid). 0 staged (or rightly left out), 1 the whole
 * walk is needed, -1 error (EUNSAFE as gr_scan's). */
static int gr_stage_one(const gitapi *g, git_repository *repo, git_index *idx, int root, const char *path,
                        gr_scan *s, gr_err *e) {
  char rel[PATH_MAX];
  size_t depth = 0;
  int dfd = dup(root), full = 0;
  if (dfd < 0) return gr_fail(e, "EIO", "cannot open the working tree: %s", strerror(errno));
  const char *base = path;
  /* each directory on the way: what gr_scan_dir checks before it walks one */
  for (const char *slash; dfd >= 0 && (slash = strchr(base, '/')) != NULL; base = slash + 1) {
    size_t rl = (size_t)(base - path);
    memcpy(rel, path, rl);
    rel[rl] = '\0';
    struct stat dst;
    if (gr_scan_controls(dfd, rel, e) != 0) {
      close(dfd);
      return -1;
    }
    if (++depth > GR_SCAN_DEPTH || (rl > 0 && fstatat(dfd, ".git", &dst, AT_SYMLINK_NOFOLLOW) == 0)) {
      full = 1;
      break;
    }
    memcpy(rel, base, (size_t)(slash - base));
    rel[slash - base] = '\0';
    int nfd = openat(dfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int err = errno;
    close(dfd);
    dfd = nfd;
    if (nfd < 0 && err != ENOENT) full = 1; /* not a directory (a symlink, a file) on the way */
    if (nfd < 0) break;
  }
  struct stat st;
  int gone = 0;
  if (!full && dfd >= 0) {
    memcpy(rel, path, (size_t)(base - path));
    rel[base - path] = '\0';
    if (gr_scan_controls(dfd, rel, e) != 0) { /* the path's own directory */
      close(dfd);
      return -1;
    }
    if (base != path && fstatat(dfd, ".git", &st, AT_SYMLINK_NOFOLLOW) == 0) {
      full = 1; /* a nested repository: the whole walk leaves it out */
    } else if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      gone = 1;
      full = errno != ENOENT;
    }
  } else if (!full) {
    gone = 1; /* a directory on its way is gone */
  }
  if (dfd >= 0) close(dfd);
  /* in a submodule, or one itself: never staged from a card's directory (above) */
  if (gr_gitlink_at(g, idx, path)) return gone ? 0 : 1; /* its folder: the whole walk leaves it */
  size_t sub = gr_in_gitlink(g, idx, path);
  if (sub) {
    if (gone) return 0;
    char why[PATH_MAX + 64];
    snprintf(why, sizeof why, "inside the submodule %.*s: not committed", (int)sub, path);
    return gr_scan_skip(s, path, why, e);
  }
  if (full || gr_control_name(base) || gr_index_has_under(g, idx, path)) return 1;
  int rc = 0;
  if (gone) {
    rc = g->index_remove_bypath(idx, path);
  } else if (!S_ISREG(st.st_mode)) {
    return 1;
  } else if (st.st_size > GR_FILE_MAX) {
    return gr_scan_big(g, s, idx, path, &st, 0, e);
  } else {
    int ignored = 0; /* as index_add_all: an ignored file is added only when already tracked */
    const git_index_entry *en = g->index_get_bypath(idx, path, 0);
    /* so a tracked path's rules are not read (libgit2 reads the exclude files per call) */
    if (en == NULL) rc = g->ignore_path_is_ignored(&ignored, s->rules ? s->rules : repo, path);
    if (rc < 0 || ignored || gr_entry_holds(g, repo, en, path, &st)) return rc < 0 ? gr_git(g, e, rc, path) : 0;
    char driver[GR_DRIVER_SHOWN + 1]; /* under a filter driver (above): left out, or refused */
    int f = gr_filter_of(g, repo, path, driver, sizeof driver);
    if (f < 0) return gr_git(g, e, -1, path);
    if (f && en == NULL) return gr_scan_skip_filtered(s, path, driver, e);
    if (f) return gr_scan_add_filtered(s, path, driver) != 0 ? gr_fail(e, "ENOMEM", "out of memory") : 0;
    rc = g->index_add_bypath(idx, path);
  }
  return rc < 0 ? gr_git(g, e, rc, path) : 0;
}

int gr_note_ignored(const gitapi *g, git_repository *repo, git_index *idx, const gr_paths *only, gr_scan *s,
                    gr_err *e) {
  if (only == NULL) return 0;
  int root = gr_workdir_fd(g, repo, e);
  if (root < 0) return root == -2 ? 0 : -1;
  int ret = 0;
  for (size_t i = 0; ret == 0 && i < only->n && i < GR_ONLY_MAX; i++) {
    const char *p = only->v[i];
    struct stat st;
    int ignored = 0;
    /* a name beneath no tree (only's were checked, a turn's written paths were not) */
    if (!gitrepo_path_valid(p) || gr_names_dotgit(p)) continue;
    /* staged (tracked, or added just now) or gone: nothing of the turn's was left out */
    if (g->index_get_bypath(idx, p, 0) != NULL || fstatat(root, p, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode) || g->ignore_path_is_ignored(&ignored, s->rules ? s->rules : repo, p) < 0 || !ignored)
      continue;
    ret = gr_scan_skip(s, p, "matched by a .gitignore rule: not committed", e);
  }
  close(root);
  return ret;
}

int gr_stage_paths(const gitapi *g, git_repository *repo, git_index *idx, const gr_paths *only, gr_scan *s,
                          gr_err *e) {
  memset(s, 0, sizeof *s);
  s->repo = repo;
  s->g = g;
  s->card = 1;
  if (gr_rules_open(g, repo, &s->rules, e) != 0) return -1;
  int root = gr_workdir_fd(g, repo, e);
  if (root < 0) {
    gr_scan_free(s);
    return root == -2 ? 1 : -1;
  }
  int ret = 0;
  for (size_t i = 0; ret == 0 && i < only->n; i++) ret = gr_stage_one(g, repo, idx, root, only->v[i], s, e);
  close(root);
  if (ret != 0) gr_scan_free(s);
  return ret;
}
