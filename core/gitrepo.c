/* gitrepo.c: the workspace's git repository over libgit2: init with main, a working
 * directory per card (attached, or a linked worktree), idempotent commits with a turn
 * trailer, in-memory merges, and recovery after a crash (stale locks, a checkout that did
 * not finish). libgit2 is called through the context's table (gitapi.h), loaded on first
 * use. See gitrepo.h and docs/git.md. */
#define _GNU_SOURCE /* syncfs */
#include "gitrepo.h"

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

#include "gitapi.h"
#include "gitrepo/internal.h"
/* A checkout that follows a ref move is announced by this file in the working tree's own
 * gitdir (a card directory's state), written before the ref moves and saying "idle" once the
 * files and index match HEAD (gr_pending_write). */
#define GR_PENDING "orket-checkout-pending"
/* how a merge into main begins its reflog entry (gr_main_merges_since reads it back) */
#define GR_MERGE_WHY "orket: merge "
#define GR_KEY_MAX 200

/* ---- errors ------------------------------------------------------------------------------ */

int gr_fail(gr_err *e, const char *code, const char *fmt, ...) {
  va_list ap;
  e->code = code;
  int n = snprintf(e->msg, sizeof e->msg, "git: ");
  va_start(ap, fmt);
  vsnprintf(e->msg + n, sizeof e->msg - (size_t)n, fmt, ap);
  va_end(ap);
  /* a full disk is the machine's state, not the repository's: the engine stops the run and
   * a resume carries on once there is room (libgit2 reports it only in its message) */
  if ((strcmp(code, "EIO") == 0 || strcmp(code, "EGIT") == 0) &&
      (strstr(e->msg, strerror(ENOSPC)) || strstr(e->msg, strerror(EDQUOT))))
    e->code = "ENOSPC";
  return -1;
}

/* Reports a libgit2 failure rc of `what`, with a code chosen from rc. */
int gr_git(const gitapi *g, gr_err *e, int rc, const char *what) {
  const git_error *le = g->error_last();
  const char *code = rc == GIT_ENOTFOUND ? "ENOENT"
                     : rc == GIT_ELOCKED  ? "ELOCKED"
                     : rc == GIT_EMODIFIED ? "EAGAIN"
                     : rc == GIT_ECONFLICT ? "EDIRTY"
                     : rc == GIT_EEXISTS   ? "EEXIST"
                     : rc == GIT_EOWNER    ? "EPERM" /* owned by another user: libgit2 refuses */
                                           : "EGIT";
  return gr_fail(e, code, "%s: %s", what, le && le->message ? le->message : "unknown libgit2 error");
}

void gr_paths_free(gr_paths *p) {
  for (size_t i = 0; i < p->n; i++) free(p->v[i]);
  free(p->v);
  p->v = NULL;
  p->n = 0;
}

void gr_commits_free(gr_commit *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].summary);
    free(v[i].author_name);
    free(v[i].author_email);
  }
  free(v);
}

int gr_paths_add(gr_paths *p, const char *path) {
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->v[i], path) == 0) return 0;
  char **v = realloc(p->v, (p->n + 1) * sizeof *v);
  if (v == NULL) return -1;
  p->v = v;
  if ((v[p->n] = strdup(path)) == NULL) return -1;
  p->n++;
  return 0;
}

int gr_cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- names and checks -------------------------------------------------------------------- */

int gitrepo_card_valid(const char *card) {
  size_t n = card ? strlen(card) : 0;
  if (n == 0 || n > GR_CARD_MAX || card[0] == '.' || card[0] == '-') return 0;
  for (size_t i = 0; i < n; i++) {
    char c = card[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    if (!ok) return 0;
  }
  if (strstr(card, "..")) return 0;
  return !(n >= 5 && strcmp(card + n - 5, ".lock") == 0);
}

static int gr_check_card(const char *card, gr_err *e) {
  if (!gitrepo_card_valid(card))
    return gr_fail(e, "EINVAL", "not a usable card id: \"%.120s\"", card ? card : "");
  return 0;
}

static int gr_sig_field_ok(const char *s) {
  if (s == NULL || *s == '\0' || strlen(s) > 256) return 0;
  return strpbrk(s, "<>\n\r") == NULL;
}

static int gr_make_sig(const gitapi *g, const gr_sig *who, git_signature **out, gr_err *e) {
  if (who == NULL || !gr_sig_field_ok(who->name) || !gr_sig_field_ok(who->email))
    return gr_fail(e, "EINVAL", "author name and email must be non-empty, without '<', '>' or newlines");
  int rc = g->signature_now(out, who->name, who->email);
  return rc < 0 ? gr_git(g, e, rc, "signature") : 0;
}

/* refs/heads/<branch> into buf; EINVAL when it is not a valid ref name. */
static int gr_branch_ref(const gitapi *g, const char *branch, char *buf, size_t cap, gr_err *e) {
  int valid = 0;
  if (branch == NULL || (size_t)snprintf(buf, cap, "refs/heads/%s", branch) >= cap ||
      g->reference_name_is_valid(&valid, buf) < 0 || !valid)
    return gr_fail(e, "EINVAL", "not a valid branch name: \"%.120s\"", branch ? branch : "");
  return 0;
}

static void gr_card_branch(const char *card, char *buf, size_t cap) {
  snprintf(buf, cap, GR_CARD_PREFIX "%s", card);
}

static int gr_ref_id(const gitapi *g, git_repository *repo, const char *ref, git_oid *id, gr_err *e) {
  int rc = g->reference_name_to_id(id, repo, ref);
  if (rc == GIT_ENOTFOUND)
    return gr_fail(e, "ENOENT", "no branch %s", strncmp(ref, "refs/heads/", 11) == 0 ? ref + 11 : ref);
  return rc < 0 ? gr_git(g, e, rc, ref) : 0;
}

/* An absolute form of path (not resolving symlinks of a missing leaf) into buf. */
static int gr_abspath(const char *path, char *buf, size_t cap, gr_err *e) {
  if (path == NULL || *path == '\0') return gr_fail(e, "EINVAL", "empty path");
  if (path[0] == '/') {
    if (strlen(path) >= cap) return gr_fail(e, "EINVAL", "path too long");
    snprintf(buf, cap, "%s", path);
  } else {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) return gr_fail(e, "EIO", "cannot read the current directory: %s", strerror(errno));
    if ((size_t)snprintf(buf, cap, "%s/%s", cwd, path) >= cap) return gr_fail(e, "EINVAL", "path too long");
  }
  size_t n = strlen(buf);
  while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
  return 0;
}

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

typedef struct gr_scan {
  git_repository *repo; /* asked which directories are ignored (not walked) */
  gr_paths skip;        /* paths ("dir/" for a whole directory) staging leaves out */
  gr_paths notes;       /* "path (why)" for the journal */
  size_t unnoted;       /* skipped paths beyond GR_NOTES_MAX */
} gr_scan;

static void gr_scan_free(gr_scan *s) {
  gr_paths_free(&s->skip);
  gr_paths_free(&s->notes);
  s->unnoted = 0;
}

static const char *gr_kind(mode_t m) {
  return S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) ? "a character device"
       : S_ISBLK(m) ? "a block device" : S_ISLNK(m) ? "a symlink" : S_ISDIR(m) ? "a directory" : "not a regular file";
}

static int gr_scan_skip(gr_scan *s, const char *path, const char *why, gr_err *e) {
  char note[PATH_MAX + 96];
  if (gr_paths_add(&s->skip, path) != 0) return gr_fail(e, "ENOMEM", "out of memory");
  if (s->notes.n >= GR_NOTES_MAX) {
    s->unnoted++;
    return 0;
  }
  snprintf(note, sizeof note, "%s (%s)", path, why);
  return gr_paths_add(&s->notes, note) != 0 ? gr_fail(e, "ENOMEM", "out of memory") : 0;
}

/* The files libgit2 reads by name in directory dfd (rel: its path, "" or ending in '/')
 * must be small regular files or absent. */
static int gr_scan_controls(int dfd, const char *rel, gr_err *e) {
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

/* Walks directory dfd (closed here, whatever happens), whose path is rel. */
static int gr_scan_dir(const gitapi *g, gr_scan *s, int dfd, char *rel, size_t rlen, int depth, gr_err *e) {
  if (gr_scan_controls(dfd, rel, e) != 0) {
    close(dfd);
    return -1;
  }
  if (rlen > 0) { /* an ignored directory is not walked by libgit2 either */
    int ignored = 0;
    if (g->ignore_path_is_ignored(&ignored, s->repo, rel) == 0 && ignored) {
      close(dfd);
      return 0;
    }
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
      char why[96];
      snprintf(why, sizeof why, "%lld bytes, over the %lld MiB cap: not committed", (long long)st.st_size,
               (long long)(GR_FILE_MAX >> 20));
      ret = gr_scan_skip(s, rel, why, e);
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
          ret = gr_scan_dir(g, s, cfd, rel, rlen + nl + 1, depth + 1, e); /* closes cfd */
        }
      }
    }
    rel[rlen] = '\0';
  }
  closedir(d);
  return ret;
}

/* repo's working tree opened for a walk of our own (no-follow, never blocking): a
 * descriptor, -2 when repo has none, -1 with e set. */
static int gr_workdir_fd(const gitapi *g, git_repository *repo, gr_err *e) {
  const char *wd = g->repository_workdir(repo);
  if (wd == NULL) return -2;
  int fd = open(wd, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  return fd >= 0 ? fd : gr_fail(e, "EIO", "cannot open %s: %s", wd, strerror(errno));
}

/* Scans repo's working tree (see above) into *s; EUNSAFE when libgit2 must not read it. */
static int gr_scan_run(const gitapi *g, git_repository *repo, gr_scan *s, gr_err *e) {
  memset(s, 0, sizeof *s);
  s->repo = repo;
  int fd = gr_workdir_fd(g, repo, e);
  if (fd < 0) return fd == -2 ? 0 : -1;
  char rel[PATH_MAX] = "";
  if (gr_scan_dir(g, s, fd, rel, 0, 0, e) != 0) {
    gr_scan_free(s);
    return -1;
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

/* Status entry i's path when it is a change a commit would record (not current, not
 * ignored, not beneath a path the scan left out, which is never committed); else NULL. */
static const char *gr_status_change(const gitapi *g, git_status_list *sl, size_t i, const gr_paths *skip) {
  const git_status_entry *s = g->status_byindex(sl, i);
  if (s->status == GIT_STATUS_CURRENT || (s->status & GIT_STATUS_IGNORED)) return NULL;
  const git_diff_delta *d = s->index_to_workdir ? s->index_to_workdir : s->head_to_index;
  const char *p = d->new_file.path ? d->new_file.path : d->old_file.path;
  return gr_scan_skips(skip, p) ? NULL : p;
}

/* git_index_add_all / update_all's filter: > 0 leaves the path out. */
static int gr_stage_filter(const char *path, const char *matched, void *payload) {
  (void)matched;
  return gr_scan_skips(payload, path);
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

/* Checks card's worktree (registered, its metadata whole) against what the engine made:
 * <meta>/gitdir names <wd>/.git, and <wd>/.git is a small regular file saying
 * "gitdir: <meta>". EUNSAFE otherwise (and the .git put back, see above), or when an earlier
 * visit put one back and this is the first operation since. */
static int gr_wt_gitdir_check(const gitapi *g, git_repository *repo, const char *card, gr_err *e) {
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

/* gr_wt_gitdir_check for a worktree libgit2 is about to visit on its own (git_worktree_add
 * opens every one): a refusal is kept in its gitdir for the card's next operation to report. */
static void gr_wt_gitdir_sweep(const gitapi *g, git_repository *repo, const char *card) {
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

/* 1 when a refusal of card's .git waits in its gitdir for the card's next operation. */
static int gr_wt_refused(const gitapi *g, git_repository *repo, const char *card) {
  char p[PATH_MAX];
  struct stat st;
  return (size_t)snprintf(p, sizeof p, "%sworktrees/%s/" GR_REFUSED, g->repository_commondir(repo), card) < sizeof p &&
         lstat(p, &st) == 0;
}

/* Sweeps every registered card worktree but `except` (see gr_wt_gitdir_sweep). */
static void gr_wt_gitdir_sweep_all(const gitapi *g, git_repository *repo, const char *except) {
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

/* ---- the context ------------------------------------------------------------------------- */

/* gr_lib_load loads libgit2's table into api (gitapi.h) and takes a reference of libgit2's
 * set-up (git_libgit2_init/shutdown are counted); gr_lib_acquire also makes the
 * process-wide settings Orket relies on:
 * objects and refs fsync'd (a power cut after a commit keeps it), and no user or system git
 * config (the workspace must behave the same on every machine). Idempotent, so every
 * context sets them. gr_lib_release undoes it. */
static int gr_lib_load(gitapi *api, gr_err *e) {
  char err[512];
  if (gitapi_open(api, err, sizeof err) != 0) return gr_fail(e, "EGIT", "%s", err);
  if (api->libgit2_init() < 0) {
    gr_git(api, e, -1, "libgit2 init");
    gitapi_close(api);
    return -1;
  }
  return 0;
}

static int gr_lib_acquire(gitapi *api, gr_err *e) {
  if (gr_lib_load(api, e) != 0) return -1;
  const gitapi *g = api;
  static const int levels[] = {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL,
                               GIT_CONFIG_LEVEL_PROGRAMDATA};
  int rc = g->libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
  /* A tree written from an index is not checked object by object: every blob in it was
   * written (or read) by libgit2 here. Strict creation opens each of the tree's objects, so
   * every commit and merge cost as much as main's whole tree held. */
  if (rc == 0) rc = g->libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 0);
  for (size_t i = 0; rc == 0 && i < sizeof levels / sizeof levels[0]; i++)
    rc = g->libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "");
  if (rc < 0) {
    gr_git(g, e, rc, "libgit2 options");
    g->libgit2_shutdown();
    gitapi_close(api);
    return -1;
  }
  return 0;
}

/* Drops what gr_lib_acquire took; api must not be used afterwards. */
static void gr_lib_release(gitapi *api) {
  api->libgit2_shutdown();
  gitapi_close(api);
}

/* The context for repo, which takes over api and repo (both released on failure). */
static int gr_new(gitapi *api, git_repository *repo, const char *path, gitrepo **out, gr_err *e) {
  gitrepo *r = calloc(1, sizeof *r);
  if (r == NULL || (r->path = strdup(path)) == NULL) {
    free(r);
    api->repository_free(repo);
    gr_lib_release(api);
    return gr_fail(e, "ENOMEM", "out of memory");
  }
  r->git = *api;
  r->repo = repo;
  *out = r;
  return 0;
}

static void gr_forget(gitrepo *r, const char *card);

static void gr_att_drop(gitrepo *r, size_t i);

void gitrepo_close(gitrepo *r) {
  if (r == NULL) return;
  const gitapi *g = &r->git;
  gr_forget(r, NULL);
  while (r->natt) gr_att_drop(r, r->natt - 1);
  free(r->att);
  while (r->nspare) g->repository_free(r->spare[--r->nspare].w);
  g->repository_free(r->walk);
  g->repository_free(r->repo);
  free(r->path);
  gitapi api = r->git; /* released last: the calls above are libgit2's */
  free(r);
  gr_lib_release(&api);
}

const char *gitrepo_path(const gitrepo *r) { return r->path; }

/* Refuses a repository gitrepo cannot work with: bare, or HEAD on a branch other than main. */
static int gr_check_shape(const gitapi *g, git_repository *repo, gr_err *e) {
  if (g->repository_is_bare(repo)) return gr_fail(e, "EINVAL", "the repository is bare; the workspace needs a working tree");
  git_reference *head = NULL;
  int rc = g->reference_lookup(&head, repo, "HEAD");
  if (rc < 0) return gr_git(g, e, rc, "HEAD");
  const char *t = g->reference_type(head) == GIT_REFERENCE_SYMBOLIC ? g->reference_symbolic_target(head) : NULL;
  int ok = t && strcmp(t, "refs/heads/" GR_MAIN) == 0;
  char target[256];
  snprintf(target, sizeof target, "%s", t ? t : "a detached commit");
  g->reference_free(head);
  if (!ok) return gr_fail(e, "EINVAL", "HEAD is on %s, not refs/heads/" GR_MAIN "; check out main in %s", target, "the workspace");
  return 0;
}

int gitrepo_open(const char *path, gitrepo **out, gr_err *e) {
  char abs[PATH_MAX];
  if (gr_abspath(path, abs, sizeof abs, e) != 0) return -1;
  gitapi api;
  if (gr_lib_acquire(&api, e) != 0) return -1;
  const gitapi *g = &api;
  git_repository *repo = NULL;
  int rc = g->repository_open_ext(&repo, abs, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
  if (rc < 0) {
    if (rc == GIT_ENOTFOUND) gr_fail(e, "ENOENT", "no git repository at %s (run orket init)", abs);
    else gr_git(g, e, rc, abs);
    gr_lib_release(&api);
    return -1;
  }
  if (gr_check_shape(g, repo, e) != 0) {
    g->repository_free(repo);
    gr_lib_release(&api);
    return -1;
  }
  return gr_new(&api, repo, abs, out, e);
}

/* Adds every file of the working tree to idx (honouring .gitignore) and drops entries whose
 * files are gone: `git add -A`, leaving out what gr_scan put on its skip list (run first:
 * the scan also made sure libgit2 can read the working tree without blocking). */
static int gr_stage_all(const gitapi *g, git_index *idx, const gr_scan *scan, gr_err *e) {
  void *skip = (void *)&scan->skip;
  int rc = g->index_add_all(idx, NULL, GIT_INDEX_ADD_DEFAULT, gr_stage_filter, skip);
  if (rc == 0) rc = g->index_update_all(idx, NULL, gr_stage_filter, skip);
  return rc < 0 ? gr_git(g, e, rc, "staging the working tree") : 0;
}

static int gr_refresh_repo(const gitapi *g, const gr_wd *w, int *updated, gr_err *e);

static int gr_names_dotgit(const char *path);

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
  if (full || gr_control_name(base) || gr_index_has_under(g, idx, path)) return 1;
  int rc = 0;
  if (gone) {
    rc = g->index_remove_bypath(idx, path);
  } else if (!S_ISREG(st.st_mode)) {
    return 1;
  } else if (st.st_size > GR_FILE_MAX) {
    char why[96];
    snprintf(why, sizeof why, "%lld bytes, over the %lld MiB cap: not committed", (long long)st.st_size,
             (long long)(GR_FILE_MAX >> 20));
    return gr_scan_skip(s, path, why, e);
  } else {
    int ignored = 0; /* as index_add_all: an ignored file is added only when already tracked */
    const git_index_entry *en = g->index_get_bypath(idx, path, 0);
    /* so a tracked path's rules are not read (libgit2 reads the exclude files per call) */
    if (en == NULL) rc = g->ignore_path_is_ignored(&ignored, repo, path);
    if (rc == 0 && !ignored && !gr_entry_holds(g, repo, en, path, &st)) rc = g->index_add_bypath(idx, path);
  }
  return rc < 0 ? gr_git(g, e, rc, path) : 0;
}

/* Stages the paths only (above): 0, 1 when the whole walk is needed instead, -1 error. */
static int gr_stage_paths(const gitapi *g, git_repository *repo, git_index *idx, const gr_paths *only, gr_scan *s,
                          gr_err *e) {
  memset(s, 0, sizeof *s);
  s->repo = repo;
  int root = gr_workdir_fd(g, repo, e);
  if (root < 0) return root == -2 ? 1 : -1;
  int ret = 0;
  for (size_t i = 0; ret == 0 && i < only->n; i++) ret = gr_stage_one(g, repo, idx, root, only->v[i], s, e);
  close(root);
  if (ret != 0) gr_scan_free(s);
  return ret;
}

static int gr_initial_commit(const gitapi *g, git_repository *repo, const gr_sig *who, git_oid *tid, gr_err *e) {
  git_signature *sig = NULL;
  git_index *idx = NULL;
  git_tree *tree = NULL;
  git_oid cid;
  gr_scan scan = {0};
  int rc, ret = -1;
  if (gr_make_sig(g, who, &sig, e) != 0) return -1;
  if ((rc = g->repository_set_head(repo, "refs/heads/" GR_MAIN)) < 0) { gr_git(g, e, rc, "HEAD"); goto out; }
  if ((rc = g->repository_index(&idx, repo)) < 0) { gr_git(g, e, rc, "index"); goto out; }
  if (gr_scan_run(g, repo, &scan, e) != 0 || gr_stage_all(g, idx, &scan, e) != 0) goto out;
  if ((rc = g->index_write_tree(tid, idx)) < 0 || (rc = g->tree_lookup(&tree, repo, tid)) < 0) {
    gr_git(g, e, rc, "tree");
    goto out;
  }
  rc = g->commit_create(&cid, repo, "HEAD", sig, sig, NULL, "Initial commit\n", tree, 0, NULL);
  if (rc < 0) { gr_git(g, e, rc, "initial commit"); goto out; }
  if ((rc = g->index_write(idx)) < 0) { gr_git(g, e, rc, "index write"); goto out; }
  ret = 0;
out:
  gr_scan_free(&scan);
  g->tree_free(tree);
  g->index_free(idx);
  g->signature_free(sig);
  return ret;
}

int gitrepo_init(const char *path, const gr_sig *who, gitrepo **out, int *created, gr_err *e) {
  char abs[PATH_MAX];
  *created = 0;
  if (gr_abspath(path, abs, sizeof abs, e) != 0) return -1;
  gitapi api;
  if (gr_lib_acquire(&api, e) != 0) return -1;
  const gitapi *g = &api;
  git_repository *repo = NULL;
  int rc = g->repository_open_ext(&repo, abs, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
  if (rc == GIT_ENOTFOUND) {
    git_repository_init_options o;
    (void)g->repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    o.flags = GIT_REPOSITORY_INIT_MKPATH;
    o.initial_head = GR_MAIN;
    rc = g->repository_init_ext(&repo, abs, &o);
  }
  if (rc < 0) {
    gr_git(g, e, rc, abs);
    gr_lib_release(&api);
    return -1;
  }
  int unborn = g->repository_head_unborn(repo);
  git_oid tree;
  if (unborn < 0 || (unborn == 1 && gr_initial_commit(g, repo, who, &tree, e) != 0) ||
      gr_check_shape(g, repo, e) != 0) {
    if (unborn < 0) gr_git(g, e, unborn, "HEAD");
    g->repository_free(repo);
    gr_lib_release(&api);
    return -1;
  }
  *created = unborn == 1;
  if (gr_new(&api, repo, abs, out, e) != 0) return -1;
  /* the view holds the first commit's files; an older repository's view finds its base at
   * its first refresh (view.c) */
  if (*created && gr_view_reset(*out, &tree, e) != 0) {
    gitrepo_close(*out);
    *out = NULL;
    return -1;
  }
  return 0;
}

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

/* The marker holds the checkout's stage and the commit it is about on its first line, as
 * older versions wrote it (49 bytes), and the commit the files were checked out at on a
 * second ("<from> <id>", 82 bytes): "planned <id>" (written before the ref moves to id),
 * "writing <id>" (every path passed the safety check and id's files are being written) or
 * "idle <id>" (files and index match id, the tip when it was written; a missing marker is
 * idle too). `from` is carried over from the marker each write replaces (an idle one's id; a
 * pending one's own `from`: its checkout never finished), all zeros when not known. The
 * whole is rewritten in place by one write (a write that small is never torn), never
 * replaced: a new file for every checkout cost an inode each, which the file system grew
 * dearer to find as the board grew. An older version reads the first line as its own and
 * writes it alone; markers it left (the stage alone, "%-7s\n", or the first line) are read
 * as before, `from` not known.
 *
 * What a power cut can leave: a write that was not synced may be lost, so the disk holds
 * that stage or any earlier one. Each stage errs on the safe side when it is read against
 * the tip: "planned" checks every path; "writing" of a commit that is not the tip is an
 * earlier checkout's and is read as "planned"; "idle" of a commit that is not the tip says
 * the tip moved after the last settle, and only a move this library is known to have made
 * counts as a checkout to finish (gr_main_merges_since). That holds only while the disk
 * holds this format: so the marker is synced when made and whenever it does not yet hold
 * this format (once), and a caller may ask for a sync (see gr_move_ref). */
#define GR_MARK_ID_LEN (8 + GIT_OID_HEXSZ + 1)                 /* "<stage> <id>\n": older versions' */
#define GR_MARK_LEN (GR_MARK_ID_LEN + 2 * GIT_OID_HEXSZ + 2) /* and "<from> <id>\n" */
typedef struct gr_stage {
  int stage;     /* 0 idle (or no marker), 1 planned, 2 writing */
  int has_oid;   /* the marker names its commit (oid): not the oldest format */
  git_oid oid;
  int has_from;  /* the marker holds `from` (this format) and it is known */
  int this_format;
  git_oid from;  /* the commit the files were checked out at (oid itself when idle) */
} gr_stage;

/* Reads the marker: a missing one is idle; an empty, unreadable or unknown one planned. */
static void gr_stage_parse(const gitapi *g, const char *line, size_t n, gr_stage *out) {
  static const char zeros[GIT_OID_HEXSZ + 1] = "0000000000000000000000000000000000000000";
  out->stage = 1;
  out->has_oid = out->has_from = out->this_format = 0;
  if (n >= 4 && strncmp(line, "idle", 4) == 0) out->stage = 0;
  else if (n >= 7 && strncmp(line, "writing", 7) == 0) out->stage = 2;
  if (n >= GR_MARK_ID_LEN && line[7] == ' ' && line[GR_MARK_ID_LEN - 1] == '\n') {
    char hex[GIT_OID_HEXSZ + 1];
    memcpy(hex, line + 8, GIT_OID_HEXSZ);
    hex[GIT_OID_HEXSZ] = '\0';
    out->has_oid = g->oid_fromstr(&out->oid, hex) == 0;
    /* the second line names the id too: one an older version left under its own first line
     * (it writes that alone) is about another checkout, and does not count */
    const char *l2 = line + GR_MARK_ID_LEN;
    if (out->has_oid && n >= GR_MARK_LEN && l2[GIT_OID_HEXSZ] == ' ' && line[GR_MARK_LEN - 1] == '\n' &&
        memcmp(l2 + GIT_OID_HEXSZ + 1, line + 8, GIT_OID_HEXSZ) == 0) {
      memcpy(hex, l2, GIT_OID_HEXSZ);
      out->this_format = 1;
      out->has_from = memcmp(hex, zeros, GIT_OID_HEXSZ) != 0 && g->oid_fromstr(&out->from, hex) == 0;
    }
  }
  if (out->has_oid && out->stage == 0) { /* idle: the files are its commit's */
    out->from = out->oid;
    out->has_from = 1;
  }
}

/* Reads the open marker fd into out. */
static void gr_stage_pread(const gitapi *g, int fd, gr_stage *out) {
  char line[GR_MARK_LEN + 8];
  ssize_t n = pread(fd, line, sizeof line, 0);
  gr_stage_parse(g, line, n > 0 ? (size_t)n : 0, out);
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

/* The marker's text for stage about oid, the files checked out at `from` (NULL: not known),
 * into line (GR_MARK_LEN + 1 bytes at least). */
static void gr_mark_format(const gitapi *g, char *line, size_t cap, const char *stage, const git_oid *oid,
                           const git_oid *from) {
  char hex[GIT_OID_HEXSZ + 1], fhex[GIT_OID_HEXSZ + 1];
  g->oid_tostr(hex, sizeof hex, oid);
  if (from) g->oid_tostr(fhex, sizeof fhex, from);
  else memset(fhex, '0', GIT_OID_HEXSZ), fhex[GIT_OID_HEXSZ] = '\0';
  snprintf(line, cap, "%-7s %s\n%s %s\n", stage, hex, fhex, hex);
}

/* Writes the marker: stage about oid, synced when sync asks (or the disk may not yet hold this
 * format). Its `from` is oid's when idle, else carried over from the marker it replaces (an
 * idle one's commit; a pending one's own `from`), or `files` when there was none (a new
 * marker, or one holding the stage alone). was (when not NULL) is set to what it said before. */
static int gr_pending_write(const gitapi *g, const gr_wd *w, const char *stage, const git_oid *oid,
                            const git_oid *files, int sync, gr_stage *was, gr_err *e) {
  char p[PATH_MAX], line[GR_MARK_LEN + 8], d[PATH_MAX];
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
  const git_oid *from = strcmp(stage, "idle") == 0 ? oid : cur.has_from ? &cur.from
                        : cur.stage == 0 && !cur.has_oid ? files : NULL;
  gr_mark_format(g, line, sizeof line, stage, oid, from);
  /* what the disk may hold is this format only once a write of it was synced */
  if (made || !cur.this_format) sync = 1;
  int ok = pwrite(fd, line, GR_MARK_LEN, 0) == GR_MARK_LEN && (!sync || fsync(fd) == 0);
  int err = errno;
  close(fd);
  if (!ok) return gr_fail(e, "EIO", "cannot write %s: %s", p, strerror(err));
  if (made) (void)gr_fsync_path(d, 1); /* best effort: the file's own fsync already happened */
  return 0;
}

/* 0: no checkout pending; 1: planned; 2: writing (its safety check had passed). A "writing"
 * about a commit other than tip (when given) is an earlier checkout's: planned. */
static int gr_pending(const gitapi *g, const gr_wd *w, const git_oid *tip) {
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

static int gr_index_exists(const gitapi *g, const gr_wd *w) {
  char p[PATH_MAX + 8], d[PATH_MAX];
  struct stat st;
  if (gr_state_dir(g, w, d, sizeof d) != 0) return 0;
  snprintf(p, sizeof p, "%sindex", d);
  return lstat(p, &st) == 0;
}

/* The tree of w's branch (HEAD's when w names none). */
static int gr_tip_tree(const gitapi *g, const gr_wd *w, git_tree **out) {
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

/* 1 when w's index is still the file this handle left holding the tree of w->mark->tip: the
 * same file (device, inode, size, change and modification times). */
static int gr_mark_holds(const gitapi *g, const gr_wd *w) {
  const gr_mark *m = w->mark;
  struct stat st;
  return m && m->known && gr_index_stamp(g, w, &st) == 0 && st.st_ino == m->index.st_ino &&
         st.st_dev == m->index.st_dev && st.st_size == m->index.st_size &&
         st.st_mtim.tv_sec == m->index.st_mtim.tv_sec && st.st_mtim.tv_nsec == m->index.st_mtim.tv_nsec &&
         st.st_ctim.tv_sec == m->index.st_ctim.tv_sec && st.st_ctim.tv_nsec == m->index.st_ctim.tv_nsec;
}

/* 1 when w's branch still points where w->mark says: with gr_mark_holds, the index this
 * handle left matching the tip still does, and neither changed since (another process's
 * commit or merge changes one of them): nothing to settle. */
static int gr_at_tip(const gitapi *g, const gr_wd *w) {
  git_oid tip;
  return g->reference_name_to_id(&tip, w->repo, w->ref ? w->ref : "HEAD") == 0 && g->oid_equal(&tip, &w->mark->tip);
}

/* Records that w's index now matches its branch's tip (callers: once it does); anything
 * unreadable leaves nothing known. */
static void gr_settle(const gitapi *g, const gr_wd *w) {
  gr_mark *m = w->mark;
  if (m == NULL) return;
  m->known = gr_index_stamp(g, w, &m->index) == 0 &&
             g->reference_name_to_id(&m->tip, w->repo, w->ref ? w->ref : "HEAD") == 0;
}

/* The id of the tree w's index holds: the tree of the commit it was left matching when the
 * mark holds (gr_mark_holds; a commit's tree is read from the commit, cached), else built
 * from the index, which hashes every entry: as main grows, that made each checkout dearer. */
static int gr_index_tree_id(const gitapi *g, const gr_wd *w, int holds, git_index *idx, git_oid *out) {
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

/* Settles a working tree after whatever a crash interrupted. The index should always be
 * HEAD's tree (Orket never stages without committing). When it is not:
 * - a checkout is pending (the marker; in main's working tree, an idle marker about an
 *   earlier commit and our merges since, gr_main_merges_since; or no index at all: a
 *   worktree or the first commit killed before its checkout wrote one; a linked worktree's
 *   files are then all our own):
 *   the files must follow HEAD. The baseline is the
 *   index (what the files were last checked out as; in main's working tree, the commit the
 *   marker says they were checked out at when a person staged changes in the index or reset
 *   it to the tip meanwhile: their staged changes are kept). Each path that differs between
 *   baseline and HEAD must hold its old or its new content or be missing; then exactly those
 *   paths are written. A path someone changed stops it (EDIRTY, marker kept, file kept).
 * - otherwise a commit moved HEAD and was killed before writing the index: the files are the
 *   truth, so only the index is set to HEAD's tree (a mixed reset; no file is touched). */
static int gr_refresh_repo(const gitapi *g, const gr_wd *w, int *updated, gr_err *e) {
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
    if (pending == 1 && gr_pending_write(g, w, "writing", &tip, NULL, 0, NULL, e) != 0) goto out;
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
    if (gr_pending_write(g, w, "idle", &tip, NULL, 0, NULL, e) != 0) goto out;
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

/* Moves a card's ref from `from` to `to` (compare-and-swap) after announcing, with the
 * pending marker (synced), the checkout that must follow into its working directory; a crash
 * anywhere after this is finished by gr_refresh_repo. */
static int gr_move_ref(const gitapi *g, const gr_wd *w, const char *ref, const git_oid *from,
                       const git_oid *to, const char *why, gr_err *e) {
  git_repository *repo = w->repo;
  gr_stage was;
  if (gr_pending_write(g, w, "planned", to, from, 1, &was, e) != 0) return -1;
  git_reference *out = NULL;
  int rc = g->reference_create_matching(&out, repo, ref, to, 1, from, why);
  g->reference_free(out);
  if (rc < 0) {
    gr_git(g, e, rc, ref);
    gr_err ignored;
    /* nothing moved: the marker goes back to what it said (a checkout still pending stays so) */
    (void)gr_pending_write(g, w, was.stage == 2 ? "writing" : was.stage ? "planned" : "idle",
                           was.has_oid ? &was.oid : from, NULL, 1, NULL, &ignored);
    if (w->mark) w->mark->known = 0;
    return -1;
  }
  return 0;
}

/* ---- worktrees ---------------------------------------------------------------------------- */

/* The worktree's metadata directory, <commondir>/worktrees/<card>. */
static void gr_wt_meta(const gitapi *g, git_repository *repo, const char *card, char *buf, size_t cap) {
  snprintf(buf, cap, "%sworktrees/%s", g->repository_commondir(repo), card);
}

/* git_worktree_lookup, but GIT_ENOTFOUND when there is no metadata at all (libgit2 answers
 * a bare -1 both for that and for metadata a crash left half written). */
static int gr_wt_lookup(const gitapi *g, git_repository *repo, const char *card, git_worktree **wt) {
  char meta[PATH_MAX];
  struct stat st;
  gr_wt_meta(g, repo, card, meta, sizeof meta);
  if (lstat(meta, &st) != 0) return GIT_ENOTFOUND;
  return g->worktree_lookup(wt, repo, card);
}

/* ---- open worktrees (gr_open) ---- */

static int gr_same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The two files that name card's worktree, as they are now; -1 when either is missing. */
static int gr_open_stat(gitrepo *r, const char *card, git_repository *w, struct stat *meta, struct stat *dotgit) {
  const gitapi *g = &r->git;
  char p[PATH_MAX];
  if ((size_t)snprintf(p, sizeof p, "%sworktrees/%s/gitdir", g->repository_commondir(r->repo), card) >= sizeof p ||
      stat(p, meta) != 0)
    return -1;
  if ((size_t)snprintf(p, sizeof p, "%s.git", g->repository_workdir(w)) >= sizeof p || stat(p, dotgit) != 0) return -1;
  return 0;
}

/* Closes the kept worktree of card, or every one (card NULL). */
static void gr_forget(gitrepo *r, const char *card) {
  const gitapi *g = &r->git;
  for (int i = 0; i < GR_OPEN_MAX; i++) {
    gr_open *o = &r->open[i];
    if (o->w && (card == NULL || strcmp(o->card, card) == 0)) {
      g->repository_free(o->w);
      o->w = NULL;
    }
  }
}

/* card's kept worktree when it is still the one on disk (and, with path, kept for that
 * path), else NULL (and forgotten). */
static git_repository *gr_kept(gitrepo *r, const char *card, const char *path) {
  const gitapi *g = &r->git;
  for (int i = 0; i < GR_OPEN_MAX; i++) {
    gr_open *o = &r->open[i];
    if (o->w == NULL || strcmp(o->card, card) != 0) continue;
    struct stat meta, dotgit;
    if ((path && strcmp(o->path, path) != 0) || gr_open_stat(r, card, o->w, &meta, &dotgit) != 0 ||
        !gr_same_file(&meta, &o->meta) || !gr_same_file(&dotgit, &o->dotgit)) {
      g->repository_free(o->w);
      o->w = NULL;
      return NULL;
    }
    o->used = ++r->tick;
    return o->w;
  }
  return NULL;
}

/* Keeps w, card's worktree opened for path (NULL: not known), in the least recently used
 * slot; the kept one owns it from here. Not kept (freed) when its files cannot be read. */
static git_repository *gr_keep(gitrepo *r, const char *card, const char *path, git_repository *w) {
  const gitapi *g = &r->git;
  gr_forget(r, card);
  gr_open *o = &r->open[0];
  for (int i = 0; i < GR_OPEN_MAX; i++) {
    if (r->open[i].w == NULL) {
      o = &r->open[i];
      break;
    }
    if (r->open[i].used < o->used) o = &r->open[i];
  }
  if (o->w) g->repository_free(o->w);
  o->w = NULL;
  if (gr_open_stat(r, card, w, &o->meta, &o->dotgit) != 0) {
    g->repository_free(w);
    return NULL;
  }
  snprintf(o->card, sizeof o->card, "%s", card);
  snprintf(o->path, sizeof o->path, "%s", path ? path : "");
  o->w = w;
  o->used = ++r->tick;
  return w;
}

/* card's repository opened from wt (looked up, valid) and kept for path (NULL: not known):
 * *w is borrowed, as gr_open_card's. */
static int gr_open_wt(gitrepo *r, const char *card, const char *path, git_worktree *wt, git_repository **w,
                      gr_err *e) {
  const gitapi *g = &r->git;
  (void)wt;
  /* opened from its gitdir, never through the working tree's .git file (agent-writable):
   * libgit2 takes the working tree from the gitdir's own gitdir file */
  char meta[PATH_MAX];
  gr_wt_meta(g, r->repo, card, meta, sizeof meta);
  if (gr_wt_gitdir_check(g, r->repo, card, e) != 0) return -1;
  git_repository *o = NULL;
  int rc = g->repository_open_ext(&o, meta, GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_NO_DOTGIT, NULL);
  if (rc < 0) return gr_git(g, e, rc, card);
  if (!g->repository_is_worktree(o) || strcmp(g->repository_commondir(o), g->repository_commondir(r->repo)) != 0) {
    g->repository_free(o);
    return gr_fail(e, "EINVAL", "the worktree of card %s is broken; make it again", card);
  }
  if ((*w = gr_keep(r, card, path, o)) == NULL)
    return gr_fail(e, "EINVAL", "the worktree of card %s is broken; make it again", card);
  return 0;
}

static gr_att *gr_attached(gitrepo *r, const char *card);

/* card's working directory: its attached directory (gitrepo_attach), else its linked
 * worktree; borrowed: kept open by r, never freed by the caller. */
static int gr_open_card(gitrepo *r, const char *card, gr_wd *wd, gr_err *e) {
  const gitapi *g = &r->git;
  if (gr_check_card(card, e) != 0) return -1;
  gr_att *a = gr_attached(r, card);
  if (a) {
    *wd = (gr_wd){.repo = a->w, .ref = a->ref, .state = a->state, .att = a, .mark = &a->settled};
    return 0;
  }
  *wd = (gr_wd){.repo = NULL};
  git_repository **wrepo = &wd->repo;
  if ((*wrepo = gr_kept(r, card, NULL)) != NULL) {
    if (gr_wt_gitdir_check(g, r->repo, card, e) == 0) return 0;
    gr_forget(r, card);
    *wrepo = NULL;
    return -1;
  }
  git_worktree *wt = NULL;
  int rc = gr_wt_lookup(g, r->repo, card, &wt);
  if (rc == GIT_ENOTFOUND) return gr_fail(e, "ENOENT", "card %s has no worktree", card);
  if (rc < 0) return gr_fail(e, "EINVAL", "the worktree of card %s is broken; make it again", card);
  if (g->worktree_validate(wt) < 0) {
    g->worktree_free(wt);
    return gr_fail(e, "EINVAL", "the worktree of card %s is broken; make it again", card);
  }
  rc = gr_open_wt(r, card, NULL, wt, wrepo, e);
  g->worktree_free(wt);
  return rc;
}

int gitrepo_worktree_path(gitrepo *r, const char *card, char *buf, size_t cap, gr_err *e) {
  const gitapi *g = &r->git;
  gr_wd w;
  if (gr_open_card(r, card, &w, e) != 0) return -1;
  const char *wd = g->repository_workdir(w.repo);
  size_t n = strlen(wd);
  while (n > 1 && wd[n - 1] == '/') n--;
  int ok = n < cap;
  if (ok) {
    memcpy(buf, wd, n);
    buf[n] = '\0';
  }
  return ok ? 0 : gr_fail(e, "EINVAL", "path too long");
}

/* Makes the parent directories of path (mkdir -p of its dirname). */
static int gr_mkparents(const char *path, gr_err *e) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s", path);
  for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return gr_fail(e, "EIO", "cannot make %s: %s", p, strerror(errno));
    *s = '/';
  }
  return 0;
}

/* Moves whatever is at path aside to path.stale-N (never deletes: it may hold work). */
static int gr_move_aside(const char *path, gr_err *e) {
  struct stat st;
  if (lstat(path, &st) != 0) return 0;
  if (S_ISDIR(st.st_mode) && rmdir(path) == 0) return 0; /* empty: nothing to keep */
  char aside[PATH_MAX];
  for (int i = 1; i < 1000; i++) {
    if ((size_t)snprintf(aside, sizeof aside, "%s.stale-%d", path, i) >= sizeof aside)
      return gr_fail(e, "EINVAL", "path too long");
    if (lstat(aside, &st) == 0) continue;
    if (rename(path, aside) == 0) return 0;
    return gr_fail(e, "EIO", "cannot move %s aside: %s", path, strerror(errno));
  }
  return gr_fail(e, "EEXIST", "too many stale copies of %s", path);
}

/* The card's branch bname in *br, made at main's tip when it does not exist yet (the card's
 * first turn). 0; 1 when made now, at *made_at; or -1 with e set. */
static int gr_card_branch_ref(gitrepo *r, const char *bname, git_reference **br, git_oid *made_at, gr_err *e) {
  const gitapi *g = &r->git;
  int rc = g->branch_lookup(br, r->repo, bname, GIT_BRANCH_LOCAL);
  if (rc == 0) return 0;
  if (rc != GIT_ENOTFOUND) return gr_git(g, e, rc, bname);
  git_oid mid;
  git_commit *main_c = NULL;
  if (gr_ref_id(g, r->repo, "refs/heads/" GR_MAIN, &mid, e) != 0) return -1;
  if ((rc = g->commit_lookup(&main_c, r->repo, &mid)) < 0 ||
      (rc = g->branch_create(br, r->repo, bname, main_c, 0)) < 0) {
    g->commit_free(main_c);
    return gr_git(g, e, rc, bname);
  }
  g->commit_free(main_c);
  *made_at = mid;
  return 1;
}

int gitrepo_worktree(gitrepo *r, const char *card, const char *path, int *created, gr_err *e) {
  const gitapi *g = &r->git;
  char abs[PATH_MAX], bname[GR_CARD_MAX + 16];
  *created = 0;
  if (gr_check_card(card, e) != 0 || gr_abspath(path, abs, sizeof abs, e) != 0) return -1;
  size_t rl = strlen(r->path);
  if (strncmp(abs, r->path, rl) == 0 && (abs[rl] == '/' || abs[rl] == '\0'))
    return gr_fail(e, "EINVAL", "a card's worktree must be outside main's working tree %s: %s", r->path, abs);
  gr_card_branch(card, bname, sizeof bname);
  git_reference *br = NULL;
  git_worktree *wt = NULL;
  git_repository *w = NULL; /* borrowed: kept by r */
  int rc, ret = -1;

  git_oid made_at;
  if (gr_card_branch_ref(r, bname, &br, &made_at, e) < 0) goto out;

  int updated;
  /* the worktree kept open from an earlier call for this very path: still the one on disk */
  if ((w = gr_kept(r, card, abs)) != NULL) {
    if (gr_wt_gitdir_check(g, r->repo, card, e) != 0) {
      gr_forget(r, card);
      goto out;
    }
    ret = gr_refresh_repo(g, &(gr_wd){.repo = w}, &updated, e);
    goto out;
  }
  rc = gr_wt_lookup(g, r->repo, card, &wt);
  if (rc == 0 && g->worktree_validate(wt) == 0) {
    char have[PATH_MAX], want[PATH_MAX];
    const char *wp = g->worktree_path(wt);
    if (realpath(wp, have) == NULL || realpath(abs, want) == NULL || strcmp(have, want) != 0) {
      gr_fail(e, "EEXIST", "card %s already has its worktree at %s", card, wp);
      goto out;
    }
  } else {
    if (rc == 0) { /* registered but broken (a crash while it was made): prune, make again */
      git_worktree_prune_options po;
      (void)g->worktree_prune_options_init(&po, GIT_WORKTREE_PRUNE_OPTIONS_VERSION);
      po.flags = GIT_WORKTREE_PRUNE_VALID | GIT_WORKTREE_PRUNE_LOCKED;
      if ((rc = g->worktree_prune(wt, &po)) < 0) { gr_git(g, e, rc, "pruning a broken worktree"); goto out; }
      g->worktree_free(wt);
      wt = NULL;
    } else if (rc != GIT_ENOTFOUND) { /* metadata half written: keep it aside, make anew */
      char meta[PATH_MAX];
      gr_wt_meta(g, r->repo, card, meta, sizeof meta);
      if (gr_move_aside(meta, e) != 0) goto out;
    }
    if (gr_mkparents(abs, e) != 0 || gr_move_aside(abs, e) != 0) goto out;
    gr_wt_gitdir_sweep_all(g, r->repo, card);
    git_worktree_add_options ao;
    (void)g->worktree_add_options_init(&ao, GIT_WORKTREE_ADD_OPTIONS_VERSION);
    ao.ref = br;
    if ((rc = g->worktree_add(&wt, r->repo, card, abs, &ao)) < 0) {
      gr_git(g, e, rc, "making the worktree");
      goto out;
    }
    *created = 1;
  }
  if (gr_open_wt(r, card, abs, wt, &w, e) != 0 || gr_refresh_repo(g, &(gr_wd){.repo = w}, &updated, e) != 0) goto out;
  ret = 0;
out:
  g->worktree_free(wt);
  g->reference_free(br);
  return ret;
}

/* The changed paths of wd's working tree, leaving out what gr_scan does (run first:
 * libgit2's status reads .gitignore files). */
static int gr_status_repo(const gitapi *g, const gr_wd *wd, gr_paths *out, gr_err *e) {
  gr_scan scan;
  if (gr_scan_run(g, wd->repo, &scan, e) != 0) return -1;
  git_status_options so;
  git_tree *tip = NULL;
  (void)g->status_options_init(&so, GIT_STATUS_OPTIONS_VERSION);
  so.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
             GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
  git_status_list *sl = NULL;
  int rc = 0;
  /* an attached directory's branch is not HEAD (HEAD is main's): compared with its tip */
  if (wd->ref && (rc = gr_tip_tree(g, wd, &tip)) < 0) {
    gr_scan_free(&scan);
    return gr_git(g, e, rc, wd->ref);
  }
  so.baseline = tip;
  rc = g->status_list_new(&sl, wd->repo, &so);
  g->tree_free(tip);
  if (rc < 0) {
    gr_scan_free(&scan);
    return gr_git(g, e, rc, "status");
  }
  size_t n = g->status_list_entrycount(sl);
  for (size_t i = 0; i < n; i++) {
    const char *p = gr_status_change(g, sl, i, &scan.skip);
    if (p && gr_paths_add(out, p) != 0) {
      g->status_list_free(sl);
      gr_scan_free(&scan);
      gr_paths_free(out);
      return gr_fail(e, "ENOMEM", "out of memory");
    }
  }
  g->status_list_free(sl);
  gr_scan_free(&scan);
  if (out->n > 1) qsort(out->v, out->n, sizeof *out->v, gr_cmp_str);
  return 0;
}

int gitrepo_status(gitrepo *r, const char *card, gr_paths *out, gr_err *e) {
  const gitapi *g = &r->git;
  gr_wd w;
  out->v = NULL;
  out->n = 0;
  if (gr_open_card(r, card, &w, e) != 0) return -1;
  int updated;
  return gr_refresh_repo(g, &w, &updated, e) == 0 ? gr_status_repo(g, &w, out, e) : -1;
}

/* ---- attached directories ------------------------------------------------------------------ */

/* A card's working directory without a linked worktree: the main repository opened again,
 * its working directory set to the card's directory and its index to one of its own kept in
 * a state directory outside it. No `.git` entry in the directory is ever read, nothing is
 * registered under .git/worktrees (making one costs nothing per other card), and a directory
 * reused from another card is switched by writing only the paths that differ between the
 * tree its index records and the card's (docs/git.md). */

static void gr_att_drop(gitrepo *r, size_t i) {
  const gitapi *g = &r->git;
  g->repository_free(r->att[i].w);
  free(r->att[i].turns.v);
  r->att[i] = r->att[r->natt - 1];
  r->natt--;
}

static int gr_same_dir(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* card's attached directory while it is still the one attached (the directory and the
 * state directory the very ones), else NULL (and forgotten). */
static gr_att *gr_attached(gitrepo *r, const char *card) {
  for (size_t i = 0; i < r->natt; i++) {
    gr_att *a = &r->att[i];
    if (strcmp(a->card, card) != 0) continue;
    struct stat d, s;
    if (stat(a->dir, &d) == 0 && stat(a->state, &s) == 0 && gr_same_dir(&d, &a->dir_st) && gr_same_dir(&s, &a->state_st))
      return a;
    gr_att_drop(r, i);
    return NULL;
  }
  return NULL;
}

/* Removes everything inside the directory fd (consumed), depth-limited; entries are opened
 * relative to their directory with O_NOFOLLOW, so a symbolic link is removed, never followed. */
static int gr_empty_fd(int fd, int depth) {
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return -1;
  }
  struct dirent *de;
  int ret = 0;
  while (ret == 0 && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (unlinkat(dirfd(d), de->d_name, 0) == 0 || errno == ENOENT) continue;
    if (errno != EISDIR && errno != EPERM) {
      ret = -1;
      break;
    }
    int sub = depth < 64 ? openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (sub < 0 || gr_empty_fd(sub, depth + 1) != 0 || unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) != 0) ret = -1;
  }
  closedir(d);
  return ret;
}

/* Removes everything inside dir, keeping dir. */
static int gr_empty_dir(const char *dir, gr_err *e) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || gr_empty_fd(fd, 0) != 0) return gr_fail(e, "EIO", "cannot empty %s: %s", dir, strerror(errno));
  return 0;
}

static int gr_mkdirs(const char *path, gr_err *e) {
  /* the directory itself first: it is there at every attach but a card's first, and its
   * parents are made only when it cannot be (a mkdir for each of them on every attach
   * was ten system calls a card) */
  if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
  if (errno != ENOENT) return gr_fail(e, "EIO", "cannot make %s: %s", path, strerror(errno));
  if (gr_mkparents(path, e) != 0) return -1;
  if (mkdir(path, 0755) != 0 && errno != EEXIST) return gr_fail(e, "EIO", "cannot make %s: %s", path, strerror(errno));
  return 0;
}

/* 1 when dir holds any entry. */
static int gr_dir_used(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return 0;
  struct dirent *de;
  int used = 0;
  while (!used && (de = readdir(d)) != NULL) used = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
  closedir(d);
  return used;
}

/* git_repository_set_workdir, not called when w's working directory is dir already: libgit2
 * then returns early without freeing the path it made. */
static int gr_set_workdir(const gitapi *g, git_repository *w, const char *dir) {
  const char *now = g->repository_workdir(w);
  size_t n = strlen(dir);
  if (now && strncmp(now, dir, n) == 0 && now[n] == '/' && now[n + 1] == '\0') return 0;
  return g->repository_set_workdir(w, dir, 0);
}

int gitrepo_attach(gitrepo *r, const char *card, const char *dir, const char *state, int *switched, gr_err *e) {
  const gitapi *g = &r->git;
  char adir[PATH_MAX], astate[PATH_MAX], bname[GR_CARD_MAX + 16], ip[PATH_MAX + 8];
  git_reference *br = NULL;
  git_repository *w = NULL;
  git_index *idx = NULL;
  int rc, ret = -1;
  *switched = 0;
  if (gr_check_card(card, e) != 0 || gr_abspath(dir, adir, sizeof adir, e) != 0 ||
      gr_abspath(state, astate, sizeof astate, e) != 0)
    return -1;
  size_t rl = strlen(r->path);
  if (strncmp(adir, r->path, rl) == 0 && (adir[rl] == '/' || adir[rl] == '\0'))
    return gr_fail(e, "EINVAL", "a card's directory must be outside main's working tree %s: %s", r->path, adir);
  if (strcmp(adir, astate) == 0 || (strncmp(astate, adir, strlen(adir)) == 0 && astate[strlen(adir)] == '/'))
    return gr_fail(e, "EINVAL", "a card's git state must be outside its directory: %s", astate);
  gr_card_branch(card, bname, sizeof bname);
  gr_att *a = gr_attached(r, card);
  if (a && (strcmp(a->dir, adir) != 0 || strcmp(a->state, astate) != 0)) {
    gr_att_drop(r, (size_t)(a - r->att));
    a = NULL;
  }
  git_oid made_at;
  int made = gr_card_branch_ref(r, bname, &br, &made_at, e);
  if (made < 0) goto out;
  if (a == NULL) {
    gr_att *v = realloc(r->att, (r->natt + 1) * sizeof *v);
    if (v == NULL) { gr_fail(e, "ENOMEM", "out of memory"); goto out; }
    r->att = v;
    if (gr_mkdirs(adir, e) != 0 || gr_mkdirs(astate, e) != 0) goto out;
    snprintf(ip, sizeof ip, "%s/index", astate);
    /* no index: nothing tells what the directory holds (a new one, or a crash while it
     * changed hands), so whatever is there goes before the card's files are written */
    struct stat st;
    if (lstat(ip, &st) != 0 && gr_dir_used(adir) && gr_empty_dir(adir, e) != 0) goto out;
    /* a spare handle served another directory: libgit2 keys what it caches of a working
     * tree's .gitattributes and .gitignore files by their path inside it, so that goes */
    gr_mark was = {0};
    if (r->nspare) {
      w = r->spare[--r->nspare].w;
      was = r->spare[r->nspare].index;
      rc = g->attr_cache_flush(w);
    } else {
      rc = g->repository_open_ext(&w, r->path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
    }
    if (rc < 0 || (rc = gr_set_workdir(g, w, adir)) < 0 || (rc = g->index_open(&idx, ip)) < 0) {
      gr_git(g, e, rc, adir);
      goto out;
    }
    g->repository_set_index(w, idx);
    a = &r->att[r->natt];
    memset(a, 0, sizeof *a);
    snprintf(a->card, sizeof a->card, "%s", card);
    snprintf(a->ref, sizeof a->ref, "refs/heads/%s", bname);
    snprintf(a->dir, sizeof a->dir, "%s", adir);
    snprintf(a->state, sizeof a->state, "%s", astate);
    if (stat(adir, &a->dir_st) != 0 || stat(astate, &a->state_st) != 0) {
      gr_fail(e, "EIO", "cannot read %s: %s", adir, strerror(errno));
      goto out;
    }
    /* the index a parked directory takes along is the one its last card's handle left: its
     * stamp says whether this directory is that one */
    a->settled = was;
    a->w = w;
    w = NULL;
    r->natt++;
  }
  if (made) { /* made at main's tip: nothing on it is not in main, so no turn yet */
    a->turns_known = 1;
    a->turns_tip = made_at;
    a->turns.len = a->turns.n = 0;
    a->turns.full = 0;
  }
  gr_wd wd = {.repo = a->w, .ref = a->ref, .state = a->state, .att = a, .mark = &a->settled};
  int holds = gr_mark_holds(g, &wd);
  if (holds && gr_at_tip(g, &wd)) { /* attached here already, and nothing moved since */
    ret = 0;
    goto out;
  }
  /* the directory holds what its index records (its last card's tree, or nothing): switched
   * to this card's tip as a checkout that follows a ref move is, so only the paths that
   * differ are written, each first checked to hold its old or new content */
  git_oid tip_id;
  if ((rc = g->reference_name_to_id(&tip_id, a->w, a->ref)) < 0) {
    gr_git(g, e, rc, a->ref);
    goto out;
  }
  if (gr_index_exists(g, &wd) && !gr_pending(g, &wd, &tip_id)) {
    git_index *ci = NULL;
    git_tree *tip = NULL;
    git_oid tid;
    int same = 0;
    rc = g->repository_index(&ci, a->w);
    if (rc == 0) rc = g->index_read(ci, 0);
    if (rc == 0) rc = gr_index_tree_id(g, &wd, holds, ci, &tid);
    if (rc == 0) rc = gr_tip_tree(g, &wd, &tip);
    if (rc == 0) same = g->oid_equal(&tid, g->tree_id(tip));
    g->tree_free(tip);
    g->index_free(ci);
    if (rc < 0) { gr_git(g, e, rc, "the directory's index"); goto out; }
    /* synced: a card's branch starts at main's tip, so an earlier checkout's "writing" may
     * name this very commit, and left on disk it would skip the check below */
    if (!same && gr_pending_write(g, &wd, "planned", &tip_id, NULL, 1, NULL, e) != 0) goto out;
  }
  ret = gr_refresh_repo(g, &wd, switched, e);
  /* the index on disk is what says the directory is this card's: written at once (a tip
   * with no files writes none), so that a kill before the card's first commit leaves the
   * files its turn made to be committed on resume, not emptied as a stranger's */
  snprintf(ip, sizeof ip, "%s/index", a->state);
  struct stat ist;
  if (ret == 0 && lstat(ip, &ist) != 0) {
    git_index *ci = NULL;
    if ((rc = g->repository_index(&ci, a->w)) < 0 || (rc = g->index_write(ci)) < 0) ret = gr_git(g, e, rc, ip);
    g->index_free(ci);
    if (ret == 0) gr_settle(g, &wd);
  }
out:
  g->index_free(idx);
  g->repository_free(w);
  g->reference_free(br);
  return ret;
}

/* Removes path (relative to the working tree wd; "dir/" for a whole directory). */
static int gr_remove_rel(const char *wd, const char *rel, gr_err *e) {
  char p[PATH_MAX];
  struct stat st;
  if ((size_t)snprintf(p, sizeof p, "%s%s", wd, rel) >= sizeof p) return 0;
  size_t pl = strlen(p);
  if (pl > 1 && p[pl - 1] == '/') p[pl - 1] = '\0';
  if (lstat(p, &st) != 0) return 0;
  if (S_ISDIR(st.st_mode)) {
    if (gr_empty_dir(p, e) != 0) return -1;
    if (rmdir(p) != 0) return gr_fail(e, "EIO", "cannot remove %s: %s", p, strerror(errno));
  } else if (unlink(p) != 0) {
    return gr_fail(e, "EIO", "cannot remove %s: %s", p, strerror(errno));
  }
  return 0;
}

/* Readies a done card's directory for the next card, in one walk of it: EDIRTY while it holds
 * uncommitted changes; otherwise what its commits left out goes, so the next card to use the
 * directory sees exactly the tree its index records: the files .gitignore kept out (build
 * output, a secret in an ignored file) and what git never commits (gr_scan's skip list: a
 * FIFO, a file over the cap, a nested repository). */
static int gr_clear_for_next(const gitapi *g, const gr_wd *wd, const char *card, gr_err *e) {
  gr_scan scan;
  if (gr_scan_run(g, wd->repo, &scan, e) != 0) return -1;
  git_status_options so;
  git_tree *tip = NULL;
  git_status_list *sl = NULL;
  (void)g->status_options_init(&so, GIT_STATUS_OPTIONS_VERSION);
  so.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
             GIT_STATUS_OPT_INCLUDE_IGNORED | GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
  int rc = gr_tip_tree(g, wd, &tip);
  so.baseline = tip;
  if (rc == 0) rc = g->status_list_new(&sl, wd->repo, &so);
  g->tree_free(tip);
  if (rc < 0) {
    gr_scan_free(&scan);
    return gr_git(g, e, rc, "status");
  }
  const char *root = g->repository_workdir(wd->repo);
  size_t n = g->status_list_entrycount(sl), dirty = 0;
  const char *first = NULL;
  for (size_t i = 0; i < n; i++) {
    const char *p = gr_status_change(g, sl, i, &scan.skip);
    if (p && dirty++ == 0) first = p;
  }
  int ret = 0;
  if (dirty)
    ret = gr_fail(e, "EDIRTY", "card %s has uncommitted changes (%s%s); commit them first", card, first,
                  dirty > 1 ? ", ..." : "");
  for (size_t i = 0; ret == 0 && i < n; i++) {
    const git_status_entry *s = g->status_byindex(sl, i);
    if ((s->status & GIT_STATUS_IGNORED) && s->index_to_workdir)
      ret = gr_remove_rel(root, s->index_to_workdir->old_file.path, e);
  }
  /* a directory left out whole (a nested repository) over files the branch tracks cannot go
   * without them: the directory is then kept, not handed on */
  git_index *idx = NULL;
  if (ret == 0 && scan.skip.n && (rc = g->repository_index(&idx, wd->repo)) < 0) ret = gr_git(g, e, rc, "index");
  for (size_t i = 0; ret == 0 && i < scan.skip.n; i++) {
    const char *p = scan.skip.v[i];
    size_t pl = strlen(p), at;
    if (pl > 0 && p[pl - 1] == '/' && g->index_find_prefix(&at, idx, p) == 0)
      ret = gr_fail(e, "EDIRTY", "card %s: %s holds a nested repository over tracked files; remove its .git by hand",
                    card, p);
    else
      ret = gr_remove_rel(root, p, e);
  }
  g->index_free(idx);
  g->status_list_free(sl);
  gr_scan_free(&scan);
  return ret;
}

/* What the index holds at one path (stage 0): whether it has an entry, and its blob and mode. */
typedef struct gr_entry_at {
  int present;
  git_oid id;
  uint32_t mode;
} gr_entry_at;

static void gr_entry_get(const gitapi *g, git_index *idx, const char *path, gr_entry_at *out) {
  const git_index_entry *en = g->index_get_bypath(idx, path, 0);
  memset(out, 0, sizeof *out);
  if (en == NULL) return;
  out->present = 1;
  out->id = en->id;
  out->mode = en->mode;
}

/* gr_clear_for_next when nothing but the paths in only changed since the directory last
 * matched its index as a whole: they are staged into the index in memory (gr_stage_paths,
 * never written) and the tree compared with the tip's (EDIRTY when it differs); then each
 * of them that the index does not hold (ignored, or over the cap) goes. 1 when the whole
 * walk is needed instead.
 * The tree is built only when it could differ. When the index matches the tip (settled:
 * gitrepo_detach's gr_refresh_repo has just checked or made it so) and staging gave every
 * path the very entry it had (or none, as before), the index still matches the tip: staging
 * changed nothing but the entries' file stamps. Building the tree and reading the index back
 * would each go over every file of the branch, so a detach would cost more as main grows. A
 * path staged differently goes the long way, which tells a real change (EDIRTY) from a tree
 * that only looks different. */
static int gr_clear_paths(const gitapi *g, const gr_wd *wd, const char *card, const gr_paths *only, gr_err *e) {
  git_index *idx = NULL;
  git_tree *tip = NULL;
  gr_scan scan = {0};
  gr_entry_at *before = NULL;
  git_oid tid;
  int rc, ret = -1, same = wd->mark && wd->mark->known;
  if ((rc = g->repository_index(&idx, wd->repo)) < 0 || (rc = g->index_read(idx, 0)) < 0) {
    gr_git(g, e, rc, "index");
    goto out;
  }
  if (same && (before = calloc(only->n ? only->n : 1, sizeof *before)) == NULL) same = 0;
  for (size_t i = 0; same && i < only->n; i++) gr_entry_get(g, idx, only->v[i], &before[i]);
  if ((ret = gr_stage_paths(g, wd->repo, idx, only, &scan, e)) != 0) goto out;
  for (size_t i = 0; same && i < only->n; i++) {
    gr_entry_at now;
    gr_entry_get(g, idx, only->v[i], &now);
    same = now.present == before[i].present &&
           (!now.present || (now.mode == before[i].mode && g->oid_equal(&now.id, &before[i].id)));
  }
  ret = -1;
  if (!same) {
    if ((rc = g->index_write_tree(&tid, idx)) < 0 || (rc = gr_tip_tree(g, wd, &tip)) < 0) {
      gr_git(g, e, rc, "tree");
      goto out;
    }
    if (!g->oid_equal(&tid, g->tree_id(tip))) {
      gr_fail(e, "EDIRTY", "card %s has uncommitted changes; commit them first", card);
      goto out;
    }
  }
  const char *root = g->repository_workdir(wd->repo);
  ret = 0;
  for (size_t i = 0; ret == 0 && i < only->n; i++)
    if (g->index_get_bypath(idx, only->v[i], 0) == NULL) ret = gr_remove_rel(root, only->v[i], e);
  for (size_t i = 0; ret == 0 && i < scan.skip.n; i++) ret = gr_remove_rel(root, scan.skip.v[i], e);
out:
  /* what was staged here stays in memory no longer; after a clean pass there is nothing to
   * undo but fresher file stamps, and the handle's next directory comes with its own index */
  if (idx && !(ret == 0 && same)) (void)g->index_read(idx, 1);
  free(before);
  gr_scan_free(&scan);
  g->tree_free(tip);
  g->index_free(idx);
  return ret;
}

int gitrepo_detach(gitrepo *r, const char *card, const gr_paths *only, int *detached, gr_err *e) {
  const gitapi *g = &r->git;
  *detached = 0;
  if (gr_check_card(card, e) != 0) return -1;
  int whole = only == NULL || only->n > GR_ONLY_MAX;
  for (size_t i = 0; !whole && i < only->n; i++) {
    if (!gitrepo_path_valid(only->v[i]))
      return gr_fail(e, "EINVAL", "paths[%zu]: %s is not a relative path beneath the working tree", i + 1, only->v[i]);
    whole = gr_names_dotgit(only->v[i]);
  }
  gr_att *a = gr_attached(r, card);
  if (a == NULL) return 0;
  gr_wd wd = {.repo = a->w, .ref = a->ref, .state = a->state, .att = a, .mark = &a->settled};
  int updated;
  if (gr_refresh_repo(g, &wd, &updated, e) != 0) return -1;
  if (!whole && (whole = gr_clear_paths(g, &wd, card, only, e)) < 0) return -1;
  if (whole && gr_clear_for_next(g, &wd, card, e) != 0) return -1;
  if (r->nspare < GR_SPARE_MAX) { /* kept for the next card (gitrepo_attach), which gives it
                                    * an index of its own: this one's entries go now */
    g->repository_set_index(a->w, NULL);
    r->spare[r->nspare].w = a->w;
    r->spare[r->nspare++].index = a->settled;
    a->w = NULL;
  }
  gr_att_drop(r, (size_t)(a - r->att));
  *detached = 1;
  return 0;
}

/* ---- commits ------------------------------------------------------------------------------ */

static int gr_key_ok(const char *key) {
  size_t n = strlen(key);
  if (n == 0 || n > GR_KEY_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)key[i] < 0x21 || key[i] == 0x7f) return 0;
  return 1;
}

static void gr_keys_add(gr_keys *k, const char *value) {
  size_t vl = strlen(value) + 1;
  char *v = k->full || k->n >= GR_TURNS_MAX ? NULL : realloc(k->v, k->len + vl);
  if (v == NULL) {
    k->full = 1;
    return;
  }
  memcpy(v + k->len, value, vl);
  k->v = v;
  k->len += vl;
  k->n++;
}

/* Walks ref's history (from: that commit of it, else its tip; since_main: only commits not
 * in main) for a commit with the trailer key: value. 1 found (id set), 0 not, -1 error. keys
 * (or NULL): every value of key met is added to it, and the walk then goes on to the end
 * unless the value is found. */
static int gr_find_trailer_in(const gitapi *g, git_repository *repo, const char *ref, const git_oid *from,
                              const char *key, const char *value, int since_main, char *id, gr_keys *keys,
                              gr_err *e) {
  git_revwalk *walk = NULL;
  git_oid oid;
  int rc, found = 0;
  if ((rc = g->revwalk_new(&walk, repo)) < 0) return gr_git(g, e, rc, "revwalk");
  g->revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
  rc = from ? g->revwalk_push(walk, from) : g->revwalk_push_ref(walk, ref);
  if (rc == 0 && since_main && strcmp(ref, "refs/heads/" GR_MAIN) != 0)
    rc = g->revwalk_hide_ref(walk, "refs/heads/" GR_MAIN);
  if (rc < 0) {
    g->revwalk_free(walk);
    if (rc == GIT_ENOTFOUND)
    return gr_fail(e, "ENOENT", "no branch %s", strncmp(ref, "refs/heads/", 11) == 0 ? ref + 11 : ref);
    return gr_git(g, e, rc, ref);
  }
  while (!found && (rc = g->revwalk_next(&oid, walk)) == 0) {
    git_commit *c = NULL;
    if ((rc = g->commit_lookup(&c, repo, &oid)) < 0) break;
    git_message_trailer_array arr = {0};
    if (g->message_trailers(&arr, g->commit_message(c)) == 0) {
      for (size_t i = 0; i < arr.count && !found; i++) {
        if (strcmp(arr.trailers[i].key, key) != 0) continue;
        found = strcmp(arr.trailers[i].value, value) == 0;
        if (keys) gr_keys_add(keys, arr.trailers[i].value);
      }
      g->message_trailer_array_free(&arr);
    }
    g->commit_free(c);
    if (found) g->oid_tostr(id, GR_OID_HEX + 1, &oid);
  }
  g->revwalk_free(walk);
  if (!found && rc != GIT_ITEROVER) return gr_git(g, e, rc, "walking the history");
  return found;
}

/* Whether the card's branch (ref, at tip) has a commit of turn `key` not in main: 1 (id
 * set), 0 or -1, as gr_find_trailer_in. An attached card's handle answers "no" from its
 * list of the branch's turns when that list is of this very tip (see gr_att), and otherwise
 * walks the whole branch once to make the list. */
static int gr_turn_seen(const gitapi *g, const gr_wd *wd, const char *ref, const git_oid *tip, const char *key,
                        char *id, gr_err *e) {
  gr_att *a = wd->att;
  if (a && a->turns_known && g->oid_equal(&a->turns_tip, tip)) {
    int listed = 0;
    for (size_t i = 0, off = 0; i < a->turns.n && !listed; i++, off += strlen(a->turns.v + off) + 1)
      listed = strcmp(a->turns.v + off, key) == 0;
    if (!listed) return 0; /* else walk: the commit's id is wanted, and it may be in main now */
  }
  gr_keys keys = {0};
  int found = gr_find_trailer_in(g, wd->repo, ref, tip, GR_TURN_TRAILER, key, 1, id, a ? &keys : NULL, e);
  if (a && found == 0 && !keys.full) {
    free(a->turns.v);
    a->turns = keys;
    a->turns_tip = *tip;
    a->turns_known = 1;
  } else {
    free(keys.v);
  }
  return found;
}

/* After this handle committed turn `key` on top of `parent`: the list follows the tip. */
static void gr_turn_committed(const gitapi *g, const gr_wd *wd, const git_oid *parent, const git_oid *tip,
                              const char *key) {
  gr_att *a = wd->att;
  if (a == NULL || !a->turns_known) return;
  if (!g->oid_equal(&a->turns_tip, parent)) {
    a->turns_known = 0;
    return;
  }
  gr_keys_add(&a->turns, key);
  a->turns_tip = *tip;
  a->turns_known = !a->turns.full;
}

/* A linked worktree costs libgit2 an open of its repository whenever another is made
 * (git_worktree_add asks every one whether it has the branch checked out), so a card's is
 * removed once the card is done. Its branch stays. */
int gitrepo_worktree_remove(gitrepo *r, const char *card, int *removed, gr_err *e) {
  const gitapi *g = &r->git;
  *removed = 0;
  if (gr_check_card(card, e) != 0) return -1;
  git_worktree *wt = NULL;
  int rc = gr_wt_lookup(g, r->repo, card, &wt);
  if (rc == GIT_ENOTFOUND) return 0;
  if (rc < 0) return gr_fail(e, "EINVAL", "the worktree of card %s is broken; make it again", card);
  int ret = -1;
  if (g->worktree_validate(wt) == 0) { /* its files are there: nothing uncommitted may go */
    git_repository *w = NULL;
    gr_paths dirty = {NULL, 0};
    int updated;
    if ((w = gr_kept(r, card, NULL)) != NULL && gr_wt_gitdir_check(g, r->repo, card, e) != 0) {
      gr_forget(r, card);
      goto out;
    }
    if (w == NULL && gr_open_wt(r, card, NULL, wt, &w, e) != 0) goto out;
    gr_wd wd = {.repo = w};
    int st = gr_refresh_repo(g, &wd, &updated, e) == 0 ? gr_status_repo(g, &wd, &dirty, e) : -1;
    if (st == 0 && dirty.n)
      st = gr_fail(e, "EDIRTY", "card %s has uncommitted changes (%s%s); commit them first", card, dirty.v[0],
                   dirty.n > 1 ? ", ..." : "");
    gr_paths_free(&dirty);
    if (st != 0) goto out;
  }
  gr_forget(r, card); /* its files go now */
  git_worktree_prune_options po;
  (void)g->worktree_prune_options_init(&po, GIT_WORKTREE_PRUNE_OPTIONS_VERSION);
  po.flags = GIT_WORKTREE_PRUNE_VALID | GIT_WORKTREE_PRUNE_WORKING_TREE;
  if ((rc = g->worktree_prune(wt, &po)) < 0) {
    gr_git(g, e, rc, "removing the worktree");
    goto out;
  }
  *removed = 1;
  ret = 0;
out:
  g->worktree_free(wt);
  return ret;
}

int gitrepo_find_trailer(gitrepo *r, const char *branch, const char *key, const char *value,
                         int since_main, char *id, gr_err *e) {
  const gitapi *g = &r->git;
  char ref[GR_CARD_MAX + 64];
  if (gr_branch_ref(g, branch, ref, sizeof ref, e) != 0) return -1;
  if (key == NULL || value == NULL || !gr_key_ok(key) || strchr(key, ':'))
    return gr_fail(e, "EINVAL", "a trailer key is 1 to %d printable characters without ':'", GR_KEY_MAX);
  return gr_find_trailer_in(g, r->repo, ref, NULL, key, value, since_main, id, NULL, e);
}

/* message without trailing blank lines, then the turn trailer in its own paragraph. */
static char *gr_message(const char *message, const char *turn_key) {
  size_t n = strlen(message);
  while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' ' || message[n - 1] == '\r' ||
                   message[n - 1] == '\t'))
    n--;
  size_t cap = n + (turn_key ? strlen(turn_key) : 0) + sizeof GR_TURN_TRAILER + 8;
  char *m = malloc(cap);
  if (m == NULL) return NULL;
  if (turn_key) snprintf(m, cap, "%.*s\n\n" GR_TURN_TRAILER ": %s\n", (int)n, message, turn_key);
  else snprintf(m, cap, "%.*s\n", (int)n, message);
  return m;
}

/* 1 when path names a file beneath the working tree as the engine's workspace normalizes one:
 * relative, no empty, "." or ".." component, no trailing '/'. */
int gitrepo_path_valid(const char *path) {
  size_t n = strlen(path);
  if (n == 0 || n >= PATH_MAX - 2 || path[0] == '/' || path[n - 1] == '/') return 0;
  for (const char *c = path; *c;) {
    size_t cl = strcspn(c, "/");
    if (cl == 0 || (cl == 1 && c[0] == '.') || (cl == 2 && c[0] == '.' && c[1] == '.')) return 0;
    c += cl;
    if (*c == '/') c++;
  }
  return 1;
}

/* 1 when a component of path is .git in any case: never staged by name (docs/git.md) */
static int gr_names_dotgit(const char *path) {
  for (const char *c = path; *c;) {
    size_t cl = strcspn(c, "/");
    if (cl == 4 && strncasecmp(c, ".git", 4) == 0) return 1;
    c += cl;
    if (*c == '/') c++;
  }
  return 0;
}

int gitrepo_commit(gitrepo *r, const char *card, const gr_sig *who, const char *message, const char *turn_key,
                   const gr_paths *only, char *id, gr_commit_kind *kind, gr_paths *skipped, gr_err *e) {
  const gitapi *g = &r->git;
  char bname[GR_CARD_MAX + 16], ref[GR_CARD_MAX + 32];
  gr_wd wd;
  git_repository *w = NULL;
  git_signature *sig = NULL;
  git_index *idx = NULL;
  git_reference *head = NULL;
  git_commit *parent = NULL;
  git_tree *tree = NULL;
  char *msg = NULL;
  git_oid tid, cid;
  gr_scan scan = {0};
  int rc, ret = -1, updated;
  if (skipped) {
    skipped->v = NULL;
    skipped->n = 0;
  }

  if (message == NULL || strspn(message, " \t\r\n") == strlen(message))
    return gr_fail(e, "EINVAL", "a commit needs a message");
  if (turn_key && !gr_key_ok(turn_key))
    return gr_fail(e, "EINVAL", "a turn key is 1 to %d printable characters without spaces", GR_KEY_MAX);
  int whole = only == NULL || only->n > GR_ONLY_MAX;
  for (size_t i = 0; !whole && i < only->n; i++) {
    if (!gitrepo_path_valid(only->v[i]))
      return gr_fail(e, "EINVAL", "paths[%zu]: %s is not a relative path beneath the working tree", i + 1, only->v[i]);
    whole = gr_names_dotgit(only->v[i]);
  }
  if (gr_make_sig(g, who, &sig, e) != 0) return -1;
  if (gr_open_card(r, card, &wd, e) != 0) goto out;
  w = wd.repo;
  gr_card_branch(card, bname, sizeof bname);
  snprintf(ref, sizeof ref, "refs/heads/%s", bname);
  /* a checkout left unfinished (merge from main) must land first, or this commit would
   * record the old files over the merged ones */
  if (gr_refresh_repo(g, &wd, &updated, e) != 0) goto out;
  /* the tip the commit goes on: read once, for the turn's question and as the parent (the
   * branch moves only if it still points there) */
  rc = wd.ref ? g->reference_lookup(&head, w, wd.ref) : g->repository_head(&head, w);
  if (rc < 0 || (rc = g->reference_peel((git_object **)&parent, head, GIT_OBJECT_COMMIT)) < 0) {
    gr_git(g, e, rc, "HEAD");
    goto out;
  }
  if (turn_key) {
    int found = gr_turn_seen(g, &wd, ref, g->commit_id(parent), turn_key, id, e);
    if (found < 0) goto out;
    if (found) {
      *kind = GR_EXISTS;
      ret = 0;
      goto out;
    }
  }
  if ((rc = g->repository_index(&idx, w)) < 0 || (rc = g->index_read(idx, 0)) < 0) {
    gr_git(g, e, rc, "index");
    goto out;
  }
  if (!whole && (whole = gr_stage_paths(g, w, idx, only, &scan, e)) < 0) goto out;
  if (whole && (gr_scan_run(g, w, &scan, e) != 0 || gr_stage_all(g, idx, &scan, e) != 0)) goto out;
  if ((rc = g->index_write_tree(&tid, idx)) < 0) { gr_git(g, e, rc, "tree"); goto out; }
  if (g->oid_equal(&tid, g->commit_tree_id(parent))) {
    *kind = GR_CLEAN;
    g->oid_tostr(id, GR_OID_HEX + 1, g->commit_id(parent));
  } else {
    if ((rc = g->tree_lookup(&tree, w, &tid)) < 0) { gr_git(g, e, rc, "tree"); goto out; }
    if ((msg = gr_message(message, turn_key)) == NULL) { gr_fail(e, "ENOMEM", "out of memory"); goto out; }
    /* objects first, then HEAD's branch moves in one locked rename; libgit2 refuses when
     * the branch no longer points at the parent */
    const git_commit *parents[1] = {parent};
    rc = g->commit_create(&cid, w, wd.ref ? wd.ref : "HEAD", sig, sig, NULL, msg, tree, 1, parents);
    if (rc < 0) { gr_git(g, e, rc, "commit"); goto out; }
    if (turn_key) gr_turn_committed(g, &wd, g->commit_id(parent), &cid, turn_key);
    *kind = GR_COMMITTED;
    g->oid_tostr(id, GR_OID_HEX + 1, &cid);
  }
  /* the index follows HEAD only after HEAD moved; a crash before this leaves an index that
   * the next commit's staging rebuilds from the files anyway. Nothing changed and only named
   * paths staged: the index on disk already says the same (not rewritten: each write is a
   * new file, an inode the file system must find) */
  if ((*kind != GR_CLEAN || whole) && (rc = g->index_write(idx)) < 0) { gr_git(g, e, rc, "index write"); goto out; }
  gr_settle(g, &wd);
  if (skipped) { /* the notes move to the caller */
    *skipped = scan.notes;
    scan.notes.v = NULL;
    scan.notes.n = 0;
  }
  ret = 0;
out:
  if (ret != 0 && idx) (void)g->index_read(idx, 1); /* what was staged goes with the failure */
  gr_scan_free(&scan);
  free(msg);
  g->tree_free(tree);
  g->commit_free(parent);
  g->reference_free(head);
  g->index_free(idx);
  g->signature_free(sig);
  return ret;
}

/* ---- merges ------------------------------------------------------------------------------- */

static int gr_conflict_paths(const gitapi *g, git_index *idx, gr_paths *out, gr_err *e) {
  git_index_conflict_iterator *it = NULL;
  const git_index_entry *anc, *ours, *theirs;
  int rc = g->index_conflict_iterator_new(&it, idx);
  if (rc < 0) return gr_git(g, e, rc, "conflicts");
  while ((rc = g->index_conflict_next(&anc, &ours, &theirs, it)) == 0) {
    const char *p = ours ? ours->path : theirs ? theirs->path : anc->path;
    if (gr_paths_add(out, p) != 0) {
      rc = -1;
      break;
    }
  }
  g->index_conflict_iterator_free(it);
  if (rc != GIT_ITEROVER) {
    gr_paths_free(out);
    return gr_fail(e, "ENOMEM", "listing conflicts failed");
  }
  if (out->n > 1) qsort(out->v, out->n, sizeof *out->v, gr_cmp_str);
  return 0;
}

/* 1 when `want` is among the first GR_NEAR commits reachable from `from` (breadth first),
 * 0 when not found there (it may still be further back), -1 on error. A card's branch holds
 * a few commits over the main it started from, so this answers the usual questions without
 * a merge-base search, whose cost grows with the history. */
#define GR_NEAR 16
static int gr_near_ancestor(const gitapi *g, git_repository *repo, const git_oid *from, const git_oid *want) {
  git_oid q[GR_NEAR];
  size_t head = 0, n = 0;
  q[n++] = *from;
  while (head < n) {
    git_commit *c = NULL;
    if (g->commit_lookup(&c, repo, &q[head++]) < 0) return -1;
    unsigned np = g->commit_parentcount(c);
    for (unsigned i = 0; i < np; i++) {
      const git_oid *p = g->commit_parent_id(c, i);
      if (g->oid_equal(p, want)) {
        g->commit_free(c);
        return 1;
      }
      if (n < GR_NEAR) q[n++] = *p;
    }
    g->commit_free(c);
  }
  return 0;
}

/* Merge analysis of `ours` and `theirs` by ancestry: 0 up to date (theirs is in ours), 1 fast
 * forward (ours is in theirs), 2 a real merge. For a real merge, *base is set to their one
 * best common ancestor when there is exactly one (*has_base), for gr_merge_index. The
 * merge-base search runs on walk (see gitrepo.walk). */
static int gr_ancestry(const gitapi *g, git_repository *repo, git_repository *walk, const git_oid *ours,
                       const git_oid *theirs, git_oid *base, int *has_base, gr_err *e) {
  *has_base = 0;
  if (g->oid_equal(ours, theirs)) return 0;
  int near = gr_near_ancestor(g, repo, theirs, ours);
  if (near == 1) return 1;
  if (near == 0) near = gr_near_ancestor(g, repo, ours, theirs);
  if (near == 1) return 0;
  if (near < 0) return gr_git(g, e, near, "merge base");
  /* one merge-base search answers both questions (asking each way searched twice): one
   * side is in the other exactly when it is their best common ancestor; a real merge then
   * starts from that ancestor rather than searching for it again */
  git_oidarray bases = {0};
  int rc = g->merge_bases(&bases, walk, ours, theirs);
  if (rc == GIT_ENOTFOUND) return 2; /* no common history */
  if (rc < 0) return gr_git(g, e, rc, "merge base");
  int a = 2;
  if (bases.count == 1) {
    if (g->oid_equal(&bases.ids[0], theirs)) a = 0;
    else if (g->oid_equal(&bases.ids[0], ours)) a = 1;
    *base = bases.ids[0];
    *has_base = 1;
  }
  g->oidarray_dispose(&bases);
  return a;
}

/* The three-way merge of two commits into an in-memory index: from their one common ancestor
 * when gr_ancestry found it (base), else as libgit2 merges commits (no common history, or
 * several best ancestors, merged recursively). */
static int gr_merge_index(const gitapi *g, git_repository *repo, git_commit *ours, git_commit *theirs,
                          const git_oid *base, git_index **idx, gr_err *e) {
  git_merge_options mo;
  (void)g->merge_options_init(&mo, GIT_MERGE_OPTIONS_VERSION);
  int rc;
  if (base == NULL) {
    rc = g->merge_commits(idx, repo, ours, theirs, &mo);
  } else {
    git_commit *bc = NULL;
    git_tree *bt = NULL, *ot = NULL, *tt = NULL;
    if ((rc = g->commit_lookup(&bc, repo, base)) == 0 && (rc = g->commit_tree(&bt, bc)) == 0 &&
        (rc = g->commit_tree(&ot, ours)) == 0 && (rc = g->commit_tree(&tt, theirs)) == 0)
      rc = g->merge_trees(idx, repo, bt, ot, tt, &mo);
    g->tree_free(tt);
    g->tree_free(ot);
    g->tree_free(bt);
    g->commit_free(bc);
  }
  return rc < 0 ? gr_git(g, e, rc, "merge") : 0;
}

static int gr_commit_tree(const gitapi *g, git_repository *repo, git_index *idx, const gr_sig *who, const char *msg,
                          git_commit *p1, git_commit *p2, git_oid *out, gr_err *e) {
  git_signature *sig = NULL;
  git_tree *tree = NULL;
  git_oid tid;
  int rc;
  if (gr_make_sig(g, who, &sig, e) != 0) return -1;
  if ((rc = g->index_write_tree_to(&tid, idx, repo)) < 0 || (rc = g->tree_lookup(&tree, repo, &tid)) < 0) {
    g->signature_free(sig);
    return gr_git(g, e, rc, "merged tree");
  }
  const git_commit *parents[2] = {p1, p2};
  rc = g->commit_create(out, repo, NULL, sig, sig, NULL, msg, tree, 2, parents);
  g->tree_free(tree);
  g->signature_free(sig);
  return rc < 0 ? gr_git(g, e, rc, "merge commit") : 0;
}

/* Merges the commit `ref` names (bname: how messages call it) into main; the one merge of
 * every gitrepo_merge_*_to_main (see gitrepo_merge_to_main). */
static int gr_merge_into_main(gitrepo *r, const char *ref, const char *bname, const gr_sig *who, char *id,
                              gr_merge_kind *kind, gr_paths *conflicts, gr_err *e) {
  const gitapi *g = &r->git;
  char msg[GR_KEY_MAX + 64];
  git_oid mid, bid, target, base;
  git_commit *mc = NULL, *bc = NULL;
  git_index *idx = NULL;
  int rc, ret = -1, has_base;
  r->view_diverged = 0;
  if (gr_ref_id(g, r->repo, "refs/heads/" GR_MAIN, &mid, e) != 0 || gr_ref_id(g, r->repo, ref, &bid, e) != 0) return -1;
  if (r->walk == NULL && (rc = g->repository_open_ext(&r->walk, r->path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL)) < 0) {
    r->walk = NULL;
    return gr_git(g, e, rc, r->path);
  }
  int a = gr_ancestry(g, r->repo, r->walk, &mid, &bid, &base, &has_base, e);
  if (a < 0) return -1;
  if (a == 0) {
    *kind = GR_UPTODATE;
    g->oid_tostr(id, GR_OID_HEX + 1, &mid);
    return 0;
  }
  if (a == 1) {
    *kind = GR_FASTFORWARD;
    target = bid;
  } else {
    if ((rc = g->commit_lookup(&mc, r->repo, &mid)) < 0 || (rc = g->commit_lookup(&bc, r->repo, &bid)) < 0) {
      gr_git(g, e, rc, "merge");
      goto out;
    }
    if (gr_merge_index(g, r->repo, mc, bc, has_base ? &base : NULL, &idx, e) != 0) goto out;
    if (g->index_has_conflicts(idx)) { /* nothing written: main stays as it was */
      if (gr_conflict_paths(g, idx, conflicts, e) != 0) goto out;
      *kind = GR_CONFLICT;
      g->oid_tostr(id, GR_OID_HEX + 1, &mid);
      ret = 0;
      goto out;
    }
    snprintf(msg, sizeof msg, "Merge %s into " GR_MAIN "\n", bname);
    if (gr_commit_tree(g, r->repo, idx, who, msg, mc, bc, &target, e) != 0) goto out;
    *kind = GR_MERGED;
  }
  snprintf(msg, sizeof msg, GR_MERGE_WHY "%s", bname);
  /* the commit point: main moves by compare-and-swap, or not at all (EAGAIN) */
  git_reference *moved = NULL;
  rc = g->reference_create_matching(&moved, r->repo, "refs/heads/" GR_MAIN, &target, 1, &mid, msg);
  g->reference_free(moved);
  if (rc < 0) {
    gr_git(g, e, rc, "refs/heads/" GR_MAIN);
    goto out;
  }
  g->oid_tostr(id, GR_OID_HEX + 1, &target);
  /* the merge stands whatever the view does: a person's paths are recorded, not an error,
   * and a view that cannot be written at all is caught up by the next refresh */
  size_t diverged;
  ret = gr_view_refresh(r, &diverged, e) == 0 ? 0 : 1;
out:
  g->index_free(idx);
  g->commit_free(mc);
  g->commit_free(bc);
  return ret;
}

int gitrepo_merge_to_main(gitrepo *r, const char *card, const gr_sig *who, char *id,
                          gr_merge_kind *kind, gr_paths *conflicts, gr_err *e) {
  char bname[GR_CARD_MAX + 16], ref[GR_CARD_MAX + 32];
  conflicts->v = NULL;
  conflicts->n = 0;
  if (gr_check_card(card, e) != 0) return -1;
  gr_card_branch(card, bname, sizeof bname);
  snprintf(ref, sizeof ref, "refs/heads/%s", bname);
  return gr_merge_into_main(r, ref, bname, who, id, kind, conflicts, e);
}

int gitrepo_contains(gitrepo *r, const char *ref, const char *id, gr_err *e) {
  const gitapi *g = &r->git;
  int valid = 0;
  git_oid tip, want;
  if (ref == NULL || strncmp(ref, "refs/", 5) != 0 || g->reference_name_is_valid(&valid, ref) < 0 || !valid)
    return gr_fail(e, "EINVAL", "not a valid ref name: \"%.120s\"", ref ? ref : "");
  if (id == NULL || strlen(id) != GR_OID_HEX || g->oid_fromstr(&want, id) < 0)
    return gr_fail(e, "EINVAL", "not a commit id: \"%.60s\"", id ? id : "");
  if (gr_ref_id(g, r->repo, ref, &tip, e) != 0) return -1;
  if (g->oid_equal(&tip, &want)) return 1;
  int rc = g->graph_descendant_of(r->repo, &tip, &want);
  if (rc == GIT_ENOTFOUND) return 0; /* an object this repository does not have is in no history of it */
  return rc < 0 ? gr_git(g, e, rc, "history") : rc;
}

int gitrepo_merge_remote_to_main(gitrepo *r, const gr_sig *who, char *id, gr_merge_kind *kind,
                                 gr_paths *conflicts, gr_err *e) {
  conflicts->v = NULL;
  conflicts->n = 0;
  return gr_merge_into_main(r, GR_REMOTE_MAIN, "the remote's " GR_MAIN, who, id, kind, conflicts, e);
}

/* Replaces each conflict in idx by one entry: the text merged with conflict markers; for a
 * binary file the card's version; when one side deleted the file, the other side's (no
 * modification is dropped: the turn can delete it again). */
static int gr_resolve_with_markers(const gitapi *g, git_repository *repo, git_index *idx, const gr_paths *paths,
                                   const char *card_label, gr_err *e) {
  for (size_t i = 0; i < paths->n; i++) {
    const git_index_entry *anc = NULL, *ours = NULL, *theirs = NULL;
    int rc = g->index_conflict_get(&anc, &ours, &theirs, idx, paths->v[i]);
    if (rc < 0) return gr_git(g, e, rc, paths->v[i]);
    git_index_entry entry;
    git_merge_file_result res = {0};
    int binary = 0;
    const git_index_entry *sides[2] = {ours, theirs};
    for (int s = 0; s < 2; s++) {
      git_blob *b = NULL;
      if (sides[s] && g->blob_lookup(&b, repo, &sides[s]->id) == 0) binary |= g->blob_is_binary(b);
      g->blob_free(b);
    }
    const git_index_entry *keep = ours ? ours : theirs;
    memcpy(&entry, keep, sizeof entry);
    if (ours && theirs && !binary) {
      git_merge_file_options fo;
      (void)g->merge_file_options_init(&fo, GIT_MERGE_FILE_OPTIONS_VERSION);
      fo.our_label = card_label;
      fo.their_label = GR_MAIN;
      if ((rc = g->merge_file_from_index(&res, repo, anc, ours, theirs, &fo)) < 0) return gr_git(g, e, rc, paths->v[i]);
      rc = g->blob_create_from_buffer(&entry.id, repo, res.ptr, res.len);
      g->merge_file_result_free(&res);
      if (rc < 0) return gr_git(g, e, rc, paths->v[i]);
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", paths->v[i]);
    entry.path = path;
    entry.flags = 0; /* stage 0 */
    entry.flags_extended = 0;
    if ((rc = g->index_conflict_remove(idx, path)) < 0 || (rc = g->index_add(idx, &entry)) < 0)
      return gr_git(g, e, rc, path);
  }
  return 0;
}

int gitrepo_merge_from_main(gitrepo *r, const char *card, const gr_sig *who, char *id,
                            gr_merge_kind *kind, gr_paths *conflicts, gr_err *e) {
  const gitapi *g = &r->git;
  char bname[GR_CARD_MAX + 16], ref[GR_CARD_MAX + 32], why[GR_CARD_MAX + 64];
  gr_wd wd;
  git_repository *w = NULL;
  git_oid mid, bid, target, base;
  git_commit *mc = NULL, *bc = NULL;
  git_index *idx = NULL;
  char *msg = NULL;
  gr_paths dirty = {0};
  int rc, ret = -1, updated, has_base;
  conflicts->v = NULL;
  conflicts->n = 0;
  if (gr_open_card(r, card, &wd, e) != 0) return -1;
  w = wd.repo;
  gr_card_branch(card, bname, sizeof bname);
  snprintf(ref, sizeof ref, "refs/heads/%s", bname);
  if (gr_refresh_repo(g, &wd, &updated, e) != 0 || gr_status_repo(g, &wd, &dirty, e) != 0) goto out;
  if (dirty.n) {
    gr_fail(e, "EDIRTY", "card %s has uncommitted changes (%s%s); commit them first", card, dirty.v[0],
            dirty.n > 1 ? ", ..." : "");
    goto out;
  }
  if (gr_ref_id(g, w, "refs/heads/" GR_MAIN, &mid, e) != 0 || gr_ref_id(g, w, ref, &bid, e) != 0) goto out;
  int a = gr_ancestry(g, w, w, &bid, &mid, &base, &has_base, e);
  if (a < 0) goto out;
  if (a == 0) {
    *kind = GR_UPTODATE;
    g->oid_tostr(id, GR_OID_HEX + 1, &bid);
    ret = 0;
    goto out;
  }
  if (a == 1) {
    *kind = GR_FASTFORWARD;
    target = mid;
  } else {
    if ((rc = g->commit_lookup(&mc, w, &mid)) < 0 || (rc = g->commit_lookup(&bc, w, &bid)) < 0) {
      gr_git(g, e, rc, "merge");
      goto out;
    }
    if (gr_merge_index(g, w, bc, mc, has_base ? &base : NULL, &idx, e) != 0) goto out;
    *kind = GR_MERGED;
    size_t cap = 128;
    if (g->index_has_conflicts(idx)) {
      if (gr_conflict_paths(g, idx, conflicts, e) != 0 || gr_resolve_with_markers(g, w, idx, conflicts, bname, e) != 0)
        goto out;
      for (size_t i = 0; i < conflicts->n; i++) cap += strlen(conflicts->v[i]) + 2;
      *kind = GR_CONFLICT;
    }
    if ((msg = malloc(cap)) == NULL) { gr_fail(e, "ENOMEM", "out of memory"); goto out; }
    int n = snprintf(msg, cap, "Merge " GR_MAIN " into %s\n", bname);
    if (conflicts->n) n += snprintf(msg + n, cap - (size_t)n, "\nConflicts:\n");
    for (size_t i = 0; i < conflicts->n; i++) n += snprintf(msg + n, cap - (size_t)n, "\t%s\n", conflicts->v[i]);
    if (gr_commit_tree(g, w, idx, who, msg, bc, mc, &target, e) != 0) goto out;
  }
  snprintf(why, sizeof why, "orket: merge " GR_MAIN " into %s", bname);
  if (gr_move_ref(g, &wd, ref, &bid, &target, why, e) != 0 || gr_refresh_repo(g, &wd, &updated, e) != 0)
    goto out;
  g->oid_tostr(id, GR_OID_HEX + 1, &target);
  ret = 0;
out:
  if (ret != 0) gr_paths_free(conflicts);
  gr_paths_free(&dirty);
  free(msg);
  g->index_free(idx);
  g->commit_free(mc);
  g->commit_free(bc);
  return ret;
}

/* ---- reading ------------------------------------------------------------------------------ */

int gitrepo_head(gitrepo *r, const char *branch, char *id, gr_err *e) {
  const gitapi *g = &r->git;
  char ref[GR_CARD_MAX + 64];
  git_oid oid;
  if (gr_branch_ref(g, branch, ref, sizeof ref, e) != 0 || gr_ref_id(g, r->repo, ref, &oid, e) != 0) return -1;
  g->oid_tostr(id, GR_OID_HEX + 1, &oid);
  return 0;
}

static char *gr_dup_line(const char *s) {
  if (s == NULL) s = "";
  size_t n = strcspn(s, "\n");
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

int gitrepo_log(gitrepo *r, const char *branch, size_t max, gr_commit **out, size_t *n, gr_err *e) {
  const gitapi *g = &r->git;
  char ref[GR_CARD_MAX + 64];
  git_revwalk *walk = NULL;
  git_oid oid;
  int rc;
  *out = NULL;
  *n = 0;
  if (gr_branch_ref(g, branch, ref, sizeof ref, e) != 0) return -1;
  if ((rc = g->revwalk_new(&walk, r->repo)) < 0) return gr_git(g, e, rc, "revwalk");
  g->revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
  rc = g->revwalk_push_ref(walk, ref);
  if (rc == 0 && strcmp(ref, "refs/heads/" GR_MAIN) != 0) rc = g->revwalk_hide_ref(walk, "refs/heads/" GR_MAIN);
  if (rc < 0) {
    g->revwalk_free(walk);
    return rc == GIT_ENOTFOUND ? gr_fail(e, "ENOENT", "no branch %s", branch) : gr_git(g, e, rc, ref);
  }
  gr_commit *v = NULL;
  size_t cnt = 0;
  while (cnt < max && (rc = g->revwalk_next(&oid, walk)) == 0) {
    git_commit *c = NULL;
    if ((rc = g->commit_lookup(&c, r->repo, &oid)) < 0) break;
    gr_commit *nv = realloc(v, (cnt + 1) * sizeof *v);
    if (nv == NULL) {
      g->commit_free(c);
      rc = -1;
      break;
    }
    v = nv;
    gr_commit *k = &v[cnt++];
    const git_signature *a = g->commit_author(c);
    g->oid_tostr(k->id, sizeof k->id, &oid);
    k->summary = gr_dup_line(g->commit_message(c));
    k->author_name = gr_dup_line(a->name);
    k->author_email = gr_dup_line(a->email);
    k->time = (int64_t)a->when.time;
    k->parents = g->commit_parentcount(c);
    g->commit_free(c);
    if (!k->summary || !k->author_name || !k->author_email) {
      rc = -1;
      break;
    }
  }
  g->revwalk_free(walk);
  if (rc != 0 && rc != GIT_ITEROVER) {
    gr_commits_free(v, cnt);
    return rc == -1 ? gr_fail(e, "ENOMEM", "out of memory") : gr_git(g, e, rc, "log");
  }
  *out = v;
  *n = cnt;
  return 0;
}

/* ---- recovery ----------------------------------------------------------------------------- */

static int gr_unlink_lock(const char *path, int *removed, gr_err *e) {
  if (unlink(path) == 0) {
    (*removed)++;
    return 0;
  }
  return errno == ENOENT ? 0 : gr_fail(e, "EIO", "cannot remove %s: %s", path, strerror(errno));
}

/* Removes *.lock files under dir (refs/), depth-limited. */
static int gr_unlink_locks_under(const char *dir, int depth, int *removed, gr_err *e) {
  if (depth > 32) return 0;
  DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : gr_fail(e, "EIO", "cannot list %s: %s", dir, strerror(errno));
  struct dirent *de;
  int ret = 0;
  while (ret == 0 && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= sizeof p) continue;
    struct stat st;
    if (lstat(p, &st) != 0) continue;
    size_t n = strlen(de->d_name);
    if (S_ISDIR(st.st_mode)) ret = gr_unlink_locks_under(p, depth + 1, removed, e);
    else if (n > 5 && strcmp(de->d_name + n - 5, ".lock") == 0) ret = gr_unlink_lock(p, removed, e);
  }
  closedir(d);
  return ret;
}

static int gr_clear_locks(gitrepo *r, const git_strarray *wts, int *removed, gr_err *e) {
  const gitapi *g = &r->git;
  static const char *const files[] = {"index.lock", "HEAD.lock", "packed-refs.lock", "config.lock", NULL};
  const char *common = g->repository_commondir(r->repo); /* ends in '/' */
  char p[PATH_MAX];
  for (const char *const *f = files; *f; f++) {
    snprintf(p, sizeof p, "%s%s", common, *f);
    if (gr_unlink_lock(p, removed, e) != 0) return -1;
  }
  for (size_t i = 0; i < wts->count; i++)
    for (int k = 0; k < 2; k++) {
      snprintf(p, sizeof p, "%sworktrees/%s/%s", common, wts->strings[i], files[k]);
      if (gr_unlink_lock(p, removed, e) != 0) return -1;
    }
  snprintf(p, sizeof p, "%srefs", common);
  return gr_unlink_locks_under(p, 0, removed, e);
}

int gitrepo_recover(gitrepo *r, int *removed, gr_err *e) {
  const gitapi *g = &r->git;
  git_strarray wts = {0};
  int rc, updated, ret = -1;
  *removed = 0;
  gr_forget(r, NULL); /* after a crash: every worktree read afresh */
  if ((rc = g->worktree_list(&wts, r->repo)) < 0) return gr_git(g, e, rc, "worktrees");
  if (gr_clear_locks(r, &wts, removed, e) != 0) goto out;
  for (size_t i = 0; i < wts.count; i++) {
    gr_wd w;
    if (!gitrepo_card_valid(wts.strings[i])) continue; /* not one of ours */
    /* a rewritten .git is put back and its refusal kept for the card's next operation to
     * report (recover's own errors go nowhere) */
    gr_wt_gitdir_sweep(g, r->repo, wts.strings[i]);
    if (gr_wt_refused(g, r->repo, wts.strings[i])) continue;
    gr_err ignored;
    if (gr_open_card(r, wts.strings[i], &w, &ignored) != 0) continue; /* broken: gitrepo_worktree remakes it */
    if (gr_refresh_repo(g, &w, &updated, e) != 0) goto out;
  }
  /* main's view last: what a crash left between a merge's ref move and its refresh is
   * finished here, and a view that cannot follow never stops a resume */
  size_t diverged;
  gr_err ignored;
  (void)gr_view_refresh(r, &diverged, &ignored);
  ret = 0;
out:
  g->strarray_dispose(&wts);
  return ret;
}

typedef struct gr_walkctx {
  const gitapi *g;
  git_odb *odb;
  const char *missing;
  char where[256];
} gr_walkctx;

static int gr_check_entry(const char *root, const git_tree_entry *te, void *payload) {
  gr_walkctx *c = payload;
  const gitapi *g = c->g;
  if (g->tree_entry_type(te) == GIT_OBJECT_COMMIT) return 0; /* a submodule: not ours */
  if (!g->odb_exists(c->odb, g->tree_entry_id(te))) {
    c->missing = "object";
    snprintf(c->where, sizeof c->where, "%s%s", root, g->tree_entry_name(te));
    return -1;
  }
  return 0;
}

/* Every commit reachable from ref, its tree and each tree's entries exist (at most max commits). */
static int gr_check_history(gitrepo *r, git_odb *odb, const char *ref, gr_err *e) {
  const gitapi *g = &r->git;
  git_revwalk *walk = NULL;
  git_oid oid;
  int rc;
  if ((rc = g->revwalk_new(&walk, r->repo)) < 0) return gr_git(g, e, rc, "revwalk");
  if ((rc = g->revwalk_push_ref(walk, ref)) < 0) {
    g->revwalk_free(walk);
    return gr_fail(e, "EINCONSISTENT", "%s does not resolve to a commit", ref);
  }
  int ret = 0;
  while (ret == 0 && (rc = g->revwalk_next(&oid, walk)) == 0) {
    git_commit *c = NULL;
    git_tree *t = NULL;
    char hex[GR_OID_HEX + 1];
    g->oid_tostr(hex, sizeof hex, &oid);
    if (g->commit_lookup(&c, r->repo, &oid) < 0 || g->commit_tree(&t, c) < 0) {
      ret = gr_fail(e, "EINCONSISTENT", "commit %s of %s or its tree is missing", hex, ref);
    } else {
      gr_walkctx wc = {g, odb, NULL, {0}};
      if (g->tree_walk(t, GIT_TREEWALK_PRE, gr_check_entry, &wc) != 0 || wc.missing)
        ret = gr_fail(e, "EINCONSISTENT", "commit %s of %s: %s %s is missing", hex, ref,
                      wc.missing ? wc.missing : "tree", wc.where);
    }
    g->tree_free(t);
    g->commit_free(c);
  }
  g->revwalk_free(walk);
  if (ret == 0 && rc != GIT_ITEROVER) return gr_fail(e, "EINCONSISTENT", "walking %s failed", ref);
  return ret;
}

static int gr_check_worktree(const gitapi *g, git_repository *w, const char *name, gr_err *e) {
  git_index *idx = NULL;
  git_reference *head = NULL;
  int ret = 0;
  if (gr_pending(g, &(gr_wd){.repo = w}, NULL)) return gr_fail(e, "EINCONSISTENT", "%s: a checkout is pending (run recovery)", name);
  if (g->repository_head(&head, w) < 0) ret = gr_fail(e, "EINCONSISTENT", "%s: HEAD does not resolve", name);
  else if (g->repository_index(&idx, w) < 0 || g->index_read(idx, 1) < 0)
    ret = gr_fail(e, "EINCONSISTENT", "%s: the index cannot be read", name);
  else if (g->index_has_conflicts(idx))
    ret = gr_fail(e, "EINCONSISTENT", "%s: the index has conflicts", name);
  else {
    git_oid tid;
    git_tree *ht = NULL;
    if (g->index_write_tree(&tid, idx) < 0 || g->reference_peel((git_object **)&ht, head, GIT_OBJECT_TREE) < 0)
      ret = gr_fail(e, "EINCONSISTENT", "%s: the index or HEAD's tree cannot be read", name);
    else if (!g->oid_equal(&tid, g->tree_id(ht)))
      ret = gr_fail(e, "EINCONSISTENT", "%s: the index is not HEAD's tree (run recovery; or changes were staged by hand)",
                    name);
    g->tree_free(ht);
  }
  g->index_free(idx);
  g->reference_free(head);
  return ret;
}

int gitrepo_check(gitrepo *r, gr_err *e) {
  const gitapi *g = &r->git;
  git_odb *odb = NULL;
  git_branch_iterator *it = NULL;
  git_strarray wts = {0};
  git_reference *ref = NULL;
  git_branch_t bt;
  int rc, ret = -1;
  if ((rc = g->repository_odb(&odb, r->repo)) < 0) return gr_git(g, e, rc, "objects");
  git_reference *head = NULL;
  if (g->repository_head(&head, r->repo) < 0) {
    gr_fail(e, "EINCONSISTENT", GR_MAIN ": HEAD does not resolve");
    goto out;
  }
  g->reference_free(head);
  if ((rc = g->branch_iterator_new(&it, r->repo, GIT_BRANCH_LOCAL)) < 0) { gr_git(g, e, rc, "branches"); goto out; }
  while ((rc = g->branch_next(&ref, &bt, it)) == 0) {
    int bad = gr_check_history(r, odb, g->reference_name(ref), e);
    g->reference_free(ref);
    if (bad) goto out;
  }
  if (rc != GIT_ITEROVER) {
    gr_fail(e, "EINCONSISTENT", "a branch ref cannot be read");
    goto out;
  }
  if ((rc = g->worktree_list(&wts, r->repo)) < 0) { gr_git(g, e, rc, "worktrees"); goto out; }
  for (size_t i = 0; i < wts.count; i++) {
    gr_wd w;
    if (!gitrepo_card_valid(wts.strings[i])) continue; /* not one of ours */
    gr_wt_gitdir_sweep(g, r->repo, wts.strings[i]);
    if (gr_wt_refused(g, r->repo, wts.strings[i])) {
      gr_fail(e, "EINCONSISTENT", "worktree %s: its .git file was refused (the card's next operation says why)",
              wts.strings[i]);
      goto out;
    }
    if (gr_open_card(r, wts.strings[i], &w, e) != 0) {
      gr_fail(e, "EINCONSISTENT", "worktree %s cannot be opened", wts.strings[i]);
      goto out;
    }
    if (w.ref == NULL && gr_check_worktree(g, w.repo, wts.strings[i], e)) goto out;
  }
  ret = 0;
out:
  g->strarray_dispose(&wts);
  g->branch_iterator_free(it);
  g->odb_free(odb);
  return ret;
}

int gitrepo_refresh(gitrepo *r, const char *card, int *updated, gr_err *e) {
  const gitapi *g = &r->git;
  *updated = 0;
  if (card == NULL) {
    size_t diverged;
    return gr_view_refresh(r, &diverged, e);
  }
  gr_wd w;
  if (gr_open_card(r, card, &w, e) != 0) return -1;
  return gr_refresh_repo(g, &w, updated, e);
}

/* ---- push -------------------------------------------------------------------------------- */

/* What the push callbacks share: the credentials (offered once: libgit2 asks again after a
 * refusal, and asking forever would loop) and the remote's refusal of the ref, if any. */
typedef struct gr_push_state {
  const gitapi *g;
  const char *user, *password;
  int asked;
  char rejected[256];
  const char *ref; /* the ref pushed, and the commit it was sent as (pushed: 1) */
  git_oid sent;
  int pushed;
} gr_push_state;

/* What the push sends, as libgit2 read the local ref: the id to report as pushed. */
static int gr_push_negotiated(const git_push_update **updates, size_t len, void *payload) {
  gr_push_state *s = payload;
  for (size_t i = 0; i < len; i++) {
    if (updates[i]->dst_refname && strcmp(updates[i]->dst_refname, s->ref) == 0) {
      s->sent = updates[i]->dst;
      s->pushed = 1;
    }
  }
  return 0;
}

static int gr_push_cred(git_credential **out, const char *url, const char *user_from_url,
                        unsigned int allowed, void *payload) {
  (void)url;
  gr_push_state *s = payload;
  const gitapi *g = s->g;
  if (s->password == NULL || s->asked || !(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT))
    return GIT_PASSTHROUGH;
  s->asked = 1;
  const char *user = s->user ? s->user : user_from_url ? user_from_url : "orket";
  return g->credential_userpass_plaintext_new(out, user, s->password);
}

static int gr_push_ref(const char *refname, const char *status, void *payload) {
  gr_push_state *s = payload;
  if (status != NULL && s->rejected[0] == '\0')
    snprintf(s->rejected, sizeof s->rejected, "%.120s (%.120s)", refname, status);
  return 0;
}

/* An in-memory remote at url for one push or fetch: nothing is written to the repository's
 * config, and no url.*.insteadOf rewriting (the URL is orket.lua's, as given; libgit2 1.5's
 * rewriting also leaks its pattern matches). 0, or -1 with e set. */
static int gr_remote_at(gitrepo *r, const char *url, git_remote **remote, gr_err *e) {
  const gitapi *g = &r->git;
  git_remote_create_options ro;
  g->remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
  ro.repository = r->repo;
  ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
  int rc = g->remote_create_with_opts(remote, url, &ro);
  return rc < 0 ? gr_git(g, e, rc, "remote") : 0;
}

int gitrepo_push(gitrepo *r, const char *url, const char *branch, int force, const char *user,
                 const char *password, char *id_out, gr_err *e) {
  const gitapi *g = &r->git;
  char ref[GR_KEY_MAX + 16], spec[2 * (GR_KEY_MAX + 16) + 2];
  git_oid id;
  if (url == NULL || *url == '\0' || strpbrk(url, "\r\n"))
    return gr_fail(e, "EINVAL", "the remote must be a non-empty URL or path");
  if (gr_branch_ref(g, branch, ref, sizeof ref, e) != 0) return -1;
  if (gr_ref_id(g, r->repo, ref, &id, e) != 0) return -1;
  snprintf(spec, sizeof spec, "%s%s:%s", force ? "+" : "", ref, ref);
  git_remote *remote = NULL;
  int rc;
  if (gr_remote_at(r, url, &remote, e) != 0) return -1;
  gr_push_state st = {.g = g, .user = user, .password = password, .ref = ref};
  git_push_options po;
  g->push_options_init(&po, GIT_PUSH_OPTIONS_VERSION);
  po.callbacks.credentials = gr_push_cred;
  po.callbacks.push_update_reference = gr_push_ref;
  po.callbacks.push_negotiation = gr_push_negotiated;
  po.callbacks.payload = &st;
  char *specs[] = {spec};
  git_strarray refspecs = {specs, 1};
  rc = g->remote_push(remote, &refspecs, &po);
  g->remote_free(remote);
  if (rc < 0) {
    /* libgit2's message may quote the URL; the credentials are never in it (they are not
     * part of the URL Orket passes) */
    const git_error *le = g->error_last();
    const char *code = rc == GIT_EAUTH ? "EAUTH" : rc == GIT_ENONFASTFORWARD ? "EREJECTED" : "EREMOTE";
    return gr_fail(e, code, "pushing %s: %s", branch, le && le->message ? le->message : "unknown libgit2 error");
  }
  if (st.rejected[0]) return gr_fail(e, "EREJECTED", "the remote refused %s", st.rejected);
  /* nothing negotiated: the remote's branch already was the local one, read above */
  g->oid_tostr(id_out, GR_OID_HEX + 1, st.pushed ? &st.sent : &id);
  return 0;
}

int gitrepo_fetch_main(gitrepo *r, const char *url, const char *user, const char *password, char *id,
                       gr_err *e) {
  const gitapi *g = &r->git;
  if (url == NULL || *url == '\0' || strpbrk(url, "\r\n"))
    return gr_fail(e, "EINVAL", "the remote must be a non-empty URL or path");
  git_remote *remote = NULL;
  int rc;
  if (gr_remote_at(r, url, &remote, e) != 0) return -1;
  gr_push_state st = {.g = g, .user = user, .password = password};
  git_fetch_options fo;
  g->fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
  fo.callbacks.credentials = gr_push_cred;
  fo.callbacks.payload = &st;
  fo.prune = GIT_FETCH_NO_PRUNE;
  fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  fo.update_fetchhead = 0;
  char *specs[] = {"+refs/heads/" GR_MAIN ":" GR_REMOTE_MAIN};
  git_strarray refspecs = {specs, 1};
  rc = g->remote_fetch(remote, &refspecs, &fo, "orket: fetch main");
  if (rc < 0) {
    const git_error *le = g->error_last();
    gr_fail(e, rc == GIT_EAUTH ? "EAUTH" : "EREMOTE", "fetching main: %s",
            le && le->message ? le->message : "unknown libgit2 error");
    g->remote_free(remote);
    return -1;
  }
  /* whether the remote has main at all: its advertised refs stay readable after the fetch */
  const git_remote_head **heads = NULL;
  size_t count = 0;
  int found = 0;
  if (g->remote_ls(&heads, &count, remote) == 0) {
    for (size_t i = 0; i < count; i++) {
      if (strcmp(heads[i]->name, "refs/heads/" GR_MAIN) == 0) {
        g->oid_tostr(id, GR_OID_HEX + 1, &heads[i]->oid);
        found = 1;
      }
    }
  }
  g->remote_free(remote);
  if (!found) {
    /* a tracking ref from an earlier fetch names nothing the remote has now */
    git_reference *old = NULL;
    if (g->reference_lookup(&old, r->repo, GR_REMOTE_MAIN) == 0) (void)g->reference_delete(old);
    g->reference_free(old);
  }
  return found;
}

int gitrepo_hold_library(gr_err *e) {
  gitapi api;
  if (gr_lib_load(&api, e) != 0) return -1;
  gitapi_close(&api); /* only the table: the set-up stays, and libgit2 stays loaded (gitapi.c) */
  return 0;
}

/* ---- a remote seen from outside ---------------------------------------------------------- */

int gitrepo_init_bare(const char *path, gr_err *e) {
  if (path == NULL || *path == '\0') return gr_fail(e, "EINVAL", "empty path");
  gitapi api;
  if (gr_lib_load(&api, e) != 0) return -1;
  const gitapi *g = &api;
  git_repository *repo = NULL;
  git_repository_init_options o;
  g->repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
  o.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
  o.initial_head = GR_MAIN;
  int rc = g->repository_init_ext(&repo, path, &o);
  int ret = rc < 0 ? gr_git(g, e, rc, path) : 0;
  g->repository_free(repo);
  gr_lib_release(&api);
  return ret;
}

void gr_refs_free(gr_ref *v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i].name);
  free(v);
}

int gitrepo_ls_remote(const char *url, const char *user, const char *password, gr_ref **out,
                      size_t *n, gr_err *e) {
  *out = NULL;
  *n = 0;
  if (url == NULL || *url == '\0' || strpbrk(url, "\r\n"))
    return gr_fail(e, "EINVAL", "the remote must be a non-empty URL or path");
  gitapi api;
  if (gr_lib_load(&api, e) != 0) return -1;
  const gitapi *g = &api;
  git_remote *remote = NULL;
  int ret = -1, rc = g->remote_create_detached(&remote, url);
  if (rc < 0) {
    gr_git(g, e, rc, "remote");
    goto out;
  }
  gr_push_state st = {.g = g, .user = user, .password = password};
  git_remote_callbacks cb;
  g->remote_init_callbacks(&cb, GIT_REMOTE_CALLBACKS_VERSION);
  cb.credentials = gr_push_cred;
  cb.payload = &st;
  const git_remote_head **heads = NULL;
  size_t count = 0;
  if ((rc = g->remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL)) < 0 ||
      (rc = g->remote_ls(&heads, &count, remote)) < 0) {
    const git_error *le = g->error_last();
    gr_fail(e, rc == GIT_EAUTH ? "EAUTH" : "EREMOTE", "listing %s: %s", url,
            le && le->message ? le->message : "unknown libgit2 error");
    goto out;
  }
  gr_ref *v = calloc(count ? count : 1, sizeof *v);
  if (v == NULL) {
    gr_fail(e, "ENOMEM", "out of memory");
    goto out;
  }
  for (size_t i = 0; i < count; i++) {
    v[i].name = strdup(heads[i]->name);
    g->oid_tostr(v[i].id, sizeof v[i].id, &heads[i]->oid);
    if (v[i].name == NULL) {
      gr_refs_free(v, i + 1);
      gr_fail(e, "ENOMEM", "out of memory");
      goto out;
    }
  }
  *out = v;
  *n = count;
  ret = 0;
out:
  g->remote_free(remote);
  gr_lib_release(&api);
  return ret;
}
