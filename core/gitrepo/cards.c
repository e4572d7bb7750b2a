/* cards.c: a card's working directory: linked worktrees (kept open between calls) and
 * attached directories (the repository opened again on a directory of the card's), their
 * status, detach and removal. See gitrepo.h and docs/git.md. */
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

static gr_att *gr_attached(gitrepo *r, const char *card);

/* ---- worktrees ---------------------------------------------------------------------------- */

/* The worktree's metadata directory, <commondir>/worktrees/<card>. */
static void gr_wt_meta(const gitapi *g, git_repository *repo, const char *card, char *buf, size_t cap) {
  snprintf(buf, cap, "%sworktrees/%s", g->repository_commondir(repo), card);
}

int gr_wt_lookup(const gitapi *g, git_repository *repo, const char *card, git_worktree **wt) {
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

void gr_forget(gitrepo *r, const char *card) {
  const gitapi *g = &r->git;
  for (int i = 0; i < GR_OPEN_MAX; i++) {
    gr_open *o = &r->open[i];
    if (o->w && (card == NULL || strcmp(o->card, card) == 0)) {
      g->repository_free(o->w);
      o->w = NULL;
    }
  }
}

git_repository *gr_kept(gitrepo *r, const char *card, const char *path) {
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

int gr_open_wt(gitrepo *r, const char *card, const char *path, git_worktree *wt, git_repository **w,
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

int gr_open_card(gitrepo *r, const char *card, gr_wd *wd, gr_err *e) {
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
  errno = 0; /* what the lookup leaves is its own, not an earlier call's (an accept's EMFILE) */
  int rc = g->branch_lookup(br, r->repo, bname, GIT_BRANCH_LOCAL);
  if (rc == 0) return 0;
  /* "not found" out of descriptors is a ref file that could not be opened, not a first turn:
   * a branch made anew at main's tip would lose the card's work; said as the host fault it is
   * even when the pressure ended before gr_git's own probe */
  int nofd = rc == GIT_ENOTFOUND ? gr_no_fds(errno) : 0;
  if (nofd) return gr_fail(e, "EGIT", "%s: cannot be looked up (%s)", bname, strerror(nofd));
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

int gr_status_repo(const gitapi *g, const gr_wd *wd, gr_paths *out, gr_err *e) {
  gr_scan scan;
  if (gr_scan_run(g, wd->repo, &scan, 1, e) != 0) return -1;
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
  /* libgit2's status does not see what only a person's exclude matches (scan.c) */
  if (gr_scan_untracked(g, wd->repo, &scan, out, e) < 0) {
    g->status_list_free(sl);
    gr_scan_free(&scan);
    gr_paths_free(out);
    return -1;
  }
  /* a tracked file over the cap that changed: left out of staging, a change all the same */
  for (size_t i = 0; i < scan.grown.n + n; i++) {
    const char *p = i < scan.grown.n ? scan.grown.v[i] : gr_status_change(g, sl, i - scan.grown.n, &scan.skip);
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

void gr_att_drop(gitrepo *r, size_t i) {
  const gitapi *g = &r->git;
  g->repository_free(r->att[i].w);
  if (r->att[i].state_fd >= 0) close(r->att[i].state_fd);
  free(r->att[i].turns.v);
  r->att[i] = r->att[r->natt - 1];
  r->natt--;
}

static int gr_same_dir(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* 1 while a's directory and state directory are the very ones it attached. */
static int gr_att_current(const gr_att *a) {
  struct stat d, s;
  return stat(a->dir, &d) == 0 && stat(a->state, &s) == 0 && gr_same_dir(&d, &a->dir_st) &&
         gr_same_dir(&s, &a->state_st);
}

/* card's attached directory while it is still the one attached, else NULL (and forgotten). */
static gr_att *gr_attached(gitrepo *r, const char *card) {
  for (size_t i = 0; i < r->natt; i++) {
    gr_att *a = &r->att[i];
    if (strcmp(a->card, card) != 0) continue;
    if (gr_att_current(a)) return a;
    gr_att_drop(r, i);
    return NULL;
  }
  return NULL;
}

/* Attachments that hold their state directory's descriptor at most: attachments are not
 * bounded (recovery attaches every card directory; a worker keeps those of cards another
 * finished), and one descriptor each would run a process out of them near a thousand
 * cards. Beyond it an index is opened by its path, as where /proc is missing. */
#define GR_ATT_FDS 64

/* 1 when one more attachment may hold a descriptor; at the cap, those whose directories
 * have moved on are forgotten first (their card's next look-up would forget them). */
static int gr_att_fd_free(gitrepo *r) {
  size_t n = 0;
  for (size_t i = 0; i < r->natt; i++) n += r->att[i].state_fd >= 0;
  if (n < GR_ATT_FDS) return 1;
  n = 0;
  for (size_t i = r->natt; i-- > 0;) {
    if (r->att[i].state_fd < 0) continue;
    if (gr_att_current(&r->att[i]))
      n++;
    else
      gr_att_drop(r, i);
  }
  return n < GR_ATT_FDS;
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

/* A card's directory (or its state) must be a directory itself, not a symbolic link to one:
 * its agents are confined beneath it, and a link put in its place (a parked directory
 * replaced) would have them write wherever it points. Refused whether or not the directory
 * comes with its index, as emptying one without it refuses (O_NOFOLLOW). */
static int gr_real_dir(const char *path, gr_err *e) {
  struct stat st;
  if (lstat(path, &st) != 0) return gr_fail(e, "EIO", "cannot read %s: %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return gr_fail(e, "EUNSAFE", "%s is not a directory (%s); a card's directory is never followed elsewhere", path,
                   S_ISLNK(st.st_mode) ? "a symbolic link" : "another kind of file");
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

void gr_spare_free(gitrepo *r, size_t i, int handle) {
  const gitapi *g = &r->git;
  g->index_free(r->spare[i].idx);
  r->spare[i].idx = NULL;
  if (r->spare[i].state_fd >= 0) close(r->spare[i].state_fd);
  r->spare[i].state_fd = -1;
  if (handle) g->repository_free(r->spare[i].w);
}

/* Takes a spare handle for the state directory st: the one kept with that directory's index
 * (its index and descriptor come along while the index file is there: has_index), else the
 * last one (any index kept with it goes). With its file gone the kept index no longer says
 * what the directory holds (the attach empties it), and libgit2 keeps a loaded index's
 * entries when its file is missing, so the switch would write nothing. */
static void gr_spare_take(gitrepo *r, const struct stat *st, int has_index, git_repository **w, gr_mark *was,
                          git_index **idx, int *sfd) {
  size_t i = r->nspare - 1;
  for (size_t j = 0; j < r->nspare; j++)
    if (r->spare[j].idx && gr_same_dir(&r->spare[j].state_st, st)) i = j;
  *w = r->spare[i].w;
  *was = r->spare[i].index;
  if (has_index && r->spare[i].idx && gr_same_dir(&r->spare[i].state_st, st)) {
    *idx = r->spare[i].idx;
    *sfd = r->spare[i].state_fd;
  } else {
    gr_spare_free(r, i, 0);
  }
  r->spare[i] = r->spare[--r->nspare];
}

int gitrepo_attach(gitrepo *r, const char *card, const char *dir, const char *state, int *switched, gr_err *e) {
  const gitapi *g = &r->git;
  char adir[PATH_MAX], astate[PATH_MAX], bname[GR_CARD_MAX + 16], ip[PATH_MAX + 8];
  git_reference *br = NULL;
  git_repository *w = NULL;
  git_index *idx = NULL;
  int rc, ret = -1, sfd = -1;
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
    if (gr_mkdirs(adir, e) != 0 || gr_mkdirs(astate, e) != 0 || gr_real_dir(adir, e) != 0 ||
        gr_real_dir(astate, e) != 0)
      goto out;
    snprintf(ip, sizeof ip, "%s/index", astate);
    /* no index: nothing tells what the directory holds (a new one, or a crash while it
     * changed hands), so whatever is there goes before the card's files are written */
    struct stat st;
    int has_index = lstat(ip, &st) == 0;
    if (!has_index && gr_dir_used(adir) && gr_empty_dir(adir, e) != 0) goto out;
    gr_mark was = {0};
    struct stat sst;
    if (stat(astate, &sst) != 0) {
      gr_fail(e, "EIO", "cannot read %s: %s", astate, strerror(errno));
      goto out;
    }
    /* a spare handle served another directory (or this one by another name): libgit2 keys
     * what it caches of a working tree's .gitattributes and .gitignore files by their path
     * inside it, so that goes */
    if (r->nspare) {
      gr_spare_take(r, &sst, has_index, &w, &was, &idx, &sfd);
      rc = g->attr_cache_flush(w);
    } else {
      rc = g->repository_open_ext(&w, r->path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
    }
    /* the index opened through the state directory's descriptor, not its path: the
     * directory is renamed as it is parked and taken again (engine/gitwork.lua), and an index
     * opened by path would have to be read again whole (parsed and hashed: it holds every
     * file of main) by the next card to take the directory */
    if (rc == 0 && idx == NULL) {
      sfd = gr_att_fd_free(r) ? open(astate, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
      char dp[32], fp[64];
      snprintf(dp, sizeof dp, "/proc/self/fd/%d", sfd);
      snprintf(fp, sizeof fp, "%s/index", dp);
      struct stat via;
      /* no /proc (or not this process's): by its path */
      if (sfd >= 0 && (stat(dp, &via) != 0 || !gr_same_dir(&via, &sst))) {
        close(sfd);
        sfd = -1;
      }
      rc = g->index_open(&idx, sfd >= 0 ? fp : ip);
    }
    if (rc < 0 || (rc = gr_set_workdir(g, w, adir)) < 0) {
      gr_git(g, e, rc, adir);
      goto out;
    }
    /* read before the descriptor is handed over (a failure closes it at out); the state
     * directory's identity is the descriptor's own, the one its index is opened through */
    struct stat dst;
    if (stat(adir, &dst) != 0 || (sfd >= 0 && fstat(sfd, &sst) != 0)) {
      gr_fail(e, "EIO", "cannot read %s: %s", adir, strerror(errno));
      goto out;
    }
    g->repository_set_index(w, idx);
    a = &r->att[r->natt];
    memset(a, 0, sizeof *a);
    a->state_fd = sfd;
    sfd = -1;
    snprintf(a->card, sizeof a->card, "%s", card);
    snprintf(a->ref, sizeof a->ref, "refs/heads/%s", bname);
    snprintf(a->dir, sizeof a->dir, "%s", adir);
    snprintf(a->state, sizeof a->state, "%s", astate);
    a->dir_st = dst;
    a->state_st = sst;
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
    if (!same && gr_pending_write(g, &wd, "planned", &tip_id, 1, NULL, e) != 0) goto out;
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
  if (sfd >= 0) close(sfd);
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

/* Removes the empty directories below dfd, deepest first (depth: how far down this is),
 * never following a symlink and leaving any .git alone: git tracks no directory, so one a
 * card emptied (its last file deleted) is not in its tree, and left behind it stood in the
 * way of a file the next card's switch writes there (a directory turned file: EDIRTY). */
static void gr_prune_empty(int dfd, int depth) {
  int fd = depth < 128 ? dup(dfd) : -1; /* as deep as a scan goes */
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    if (fd >= 0) close(fd);
    return;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || strcasecmp(de->d_name, ".git") == 0) continue;
    int sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (sub < 0) continue;
    gr_prune_empty(sub, depth + 1);
    close(sub);
    (void)unlinkat(dfd, de->d_name, AT_REMOVEDIR); /* fails, and is left, unless empty now */
  }
  closedir(d);
}

/* Removes the directories above rel (a path in the working tree root) that are empty now. */
static void gr_prune_above(const char *root, const char *rel) {
  char p[PATH_MAX];
  if ((size_t)snprintf(p, sizeof p, "%s%s", root, rel) >= sizeof p) return;
  size_t rl = strlen(root);
  for (char *slash = strrchr(p + rl, '/'); slash; slash = strrchr(p + rl, '/')) {
    *slash = '\0';
    if (rmdir(p) != 0) break;
  }
}

/* Readies a done card's directory for the next card, in one walk of it: EDIRTY while it holds
 * uncommitted changes; otherwise what its commits left out goes, so the next card to use the
 * directory sees exactly the tree its index records: the files .gitignore kept out (build
 * output, a secret in an ignored file) and what git never commits (gr_scan's skip list: a
 * FIFO, a file over the cap, a nested repository). */
static int gr_clear_for_next(const gitapi *g, const gr_wd *wd, const char *card, gr_err *e) {
  gr_scan scan;
  if (gr_scan_run(g, wd->repo, &scan, 1, e) != 0) return -1;
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
  /* a tracked file over the cap that changed: uncommitted, never removed */
  for (size_t i = 0; i < scan.grown.n; i++)
    if (dirty++ == 0) first = scan.grown.v[i];
  /* a file only a person's exclude matches is the card's, not ignored: never removed here */
  gr_paths hid = {0};
  int nh = gr_scan_untracked(g, wd->repo, &scan, &hid, e);
  if (nh > 0 && dirty++ == 0) first = hid.v[0];
  int ret = nh < 0 ? -1 : 0;
  if (ret == 0 && dirty)
    ret = gr_fail(e, "EDIRTY", "card %s has uncommitted changes (%s%s); commit them first", card, first,
                  dirty > 1 ? ", ..." : "");
  for (size_t i = 0; ret == 0 && i < n; i++) {
    const git_status_entry *s = g->status_byindex(sl, i);
    if ((s->status & GIT_STATUS_IGNORED) && s->index_to_workdir)
      ret = gr_remove_rel(root, s->index_to_workdir->old_file.path, e);
  }
  /* a directory left out whole (a nested repository) over files the branch tracks cannot go
   * without them: the directory is then kept, not handed on; a file the branch tracks (one
   * over the cap, left to its entry) is the branch's, never removed */
  git_index *idx = NULL;
  if (ret == 0 && scan.skip.n && (rc = g->repository_index(&idx, wd->repo)) < 0) ret = gr_git(g, e, rc, "index");
  for (size_t i = 0; ret == 0 && i < scan.skip.n; i++) {
    const char *p = scan.skip.v[i];
    size_t pl = strlen(p), at;
    if (g->index_get_bypath(idx, p, 0) != NULL) continue;
    if (pl > 0 && p[pl - 1] == '/' && g->index_find_prefix(&at, idx, p) == 0)
      ret = gr_fail(e, "EDIRTY", "card %s: %s holds a nested repository over tracked files; remove its .git by hand",
                    card, p);
    else
      ret = gr_remove_rel(root, p, e);
  }
  g->index_free(idx);
  g->status_list_free(sl);
  gr_scan_free(&scan);
  gr_paths_free(&hid);
  int rfd = ret == 0 ? open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (rfd >= 0) {
    gr_prune_empty(rfd, 0);
    close(rfd);
  }
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
  /* a tracked file over the cap, or under a filter driver (scan.c), that changed: never
   * staged, so the tree alone would not show it; uncommitted, never removed */
  if (scan.grown.n || scan.filtered.n) {
    ret = gr_fail(e, "EDIRTY", "card %s has uncommitted changes (%s); commit them first", card,
                  scan.grown.n ? scan.grown.v[0] : scan.filtered.v[0]);
    goto out;
  }
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
    if (g->index_get_bypath(idx, only->v[i], 0) == NULL && (ret = gr_remove_rel(root, only->v[i], e)) == 0)
      gr_prune_above(root, only->v[i]);
  for (size_t i = 0; ret == 0 && i < scan.skip.n; i++)
    if (g->index_get_bypath(idx, scan.skip.v[i], 0) == NULL) ret = gr_remove_rel(root, scan.skip.v[i], e);
out:
  /* what was staged here stays in memory no longer; after a clean pass there is nothing to
   * undo but fresher file stamps (the files' real ones), which stay in the index kept with
   * the parked directory (gitrepo_detach) and are written with its next change */
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
  if (r->nspare < GR_SPARE_MAX) { /* kept for the next card (gitrepo_attach); its index
                                    * with it while opened through the state directory */
    git_index *idx = NULL;
    if (a->state_fd >= 0 && g->repository_index(&idx, a->w) < 0) idx = NULL;
    g->repository_set_index(a->w, NULL);
    r->spare[r->nspare].w = a->w;
    r->spare[r->nspare].index = a->settled;
    r->spare[r->nspare].idx = idx;
    r->spare[r->nspare].state_fd = idx ? a->state_fd : -1;
    r->spare[r->nspare++].state_st = a->state_st;
    if (idx) a->state_fd = -1;
    a->w = NULL;
  }
  gr_att_drop(r, (size_t)(a - r->att));
  *detached = 1;
  return 0;
}
