/* test_gitcrash.c: a deterministic crash test of the git layer. Random sequences (fixed
 * seeds) of cards (attached, committed, merged into main, with type changes between file,
 * directory and symlink) and of a person's edits, deletions and staging in main's view. Each
 * card is run once for every durable step it takes, crashing (the child process exits) just
 * before step k, then the repository is reopened and recovered and checked against a model:
 * main's tree is the one before or the one after the card, and the view equals main's tree
 * but at the paths the person touched, which hold exactly what they left there.
 *
 * The seam: this binary defines fsync, fdatasync, syncfs, rename and renameat itself. The
 * core's own calls (linked with --wrap=fsync, --wrap=syncfs: test_gitrepo.c's wrappers pass
 * them on here) and libgit2's (which this binary links, so its calls bind to these) all
 * come through them: every object, index, reflog and ref write, every ref move (a rename of
 * its lock file) and every file the view renames into place is a numbered step. Once a
 * seed, two cards' view writes fail as on a full disk that stays full (the first card's
 * refresh is stale, the second's catch-up of it and its own refresh too), and the next
 * card's crash points then cut short the refresh that catches up. */
#define _GNU_SOURCE
#include "check.h"
#include "tests.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <git2.h>

#include "gitrepo.h"

/* ---- the seam ---- */

/* armed in a child only: the step count so far, and the step to crash before (0: count) */
static struct {
  int armed;
  int nosync; /* a kill, not a power cut, is what is modelled: syncs are counted, not made */
  long steps, crash_at;
  int fail_view;     /* a full disk under the view: its renames out of .git/orket-view-tmp fail */
  int behind;        /* the view was left behind by the last card: the merge catches it up first */
  long failed_views; /* how many did */
  int stale;         /* the last card's merge said the view is stale */
} tc_seam;

/* 1 when fd is the view's temporary directory in the gitdir */
static int tc_view_tmp(int fd) {
  char link[64], path[1024];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t k = readlink(link, path, sizeof path - 1);
  if (k <= 0) return 0;
  path[k] = '\0';
  return k >= 15 && strcmp(path + k - 15, "/orket-view-tmp") == 0;
}

static void tc_step(void) {
  if (!tc_seam.armed) return;
  if (++tc_seam.steps == tc_seam.crash_at) _exit(77); /* a kill: nothing after this reaches the disk */
}

int fsync(int fd) {
  tc_step();
  return tc_seam.nosync ? 0 : (int)syscall(SYS_fsync, fd);
}
int fdatasync(int fd) {
  tc_step();
  return tc_seam.nosync ? 0 : (int)syscall(SYS_fdatasync, fd);
}
int syncfs(int fd) {
  tc_step();
  return tc_seam.nosync ? 0 : (int)syscall(SYS_syncfs, fd);
}
int rename(const char *from, const char *to) {
  tc_step();
  return (int)syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to);
}
int renameat(int fromfd, const char *from, int tofd, const char *to) {
  tc_step();
  if (tc_seam.fail_view && tc_view_tmp(fromfd)) {
    tc_seam.failed_views++;
    errno = ENOSPC;
    return -1;
  }
  return (int)syscall(SYS_renameat, fromfd, from, tofd, to);
}

/* ---- the model ---- */

/* The paths a sequence uses: some are files or directories of others (type changes). */
static const char *const tc_paths[] = {"a", "b", "d", "d/x", "d/y", "e", "e/f", "s", "t/u/v", "t"};
#define TC_N (sizeof tc_paths / sizeof tc_paths[0])
enum { TC_NONE, TC_FILE, TC_LINK };

typedef struct tc_entry {
  int kind;
  char data[48]; /* a file's content, a symlink's target */
} tc_entry;
typedef struct tc_tree {
  tc_entry e[TC_N];
} tc_tree;

/* the person's paths in the view: what they left there (kind NONE: deleted) */
typedef struct tc_person {
  int touched[TC_N];
  int ever[TC_N];   /* touched at some point: what was in its way may stay as it was */
  int staged[TC_N]; /* staged at some point: main's index holds theirs, so the path stays theirs */
  tc_entry e[TC_N];
} tc_person;

static uint64_t tc_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* 1 when a is a proper ancestor directory of b */
static int tc_above(const char *a, const char *b) {
  size_t n = strlen(a);
  return strncmp(a, b, n) == 0 && b[n] == '/';
}

/* 1 when p may hold a file in t: nothing above it or below it is there */
static int tc_free(const tc_tree *t, size_t p) {
  for (size_t i = 0; i < TC_N; i++)
    if (i != p && t->e[i].kind != TC_NONE && (tc_above(tc_paths[i], tc_paths[p]) || tc_above(tc_paths[p], tc_paths[i])))
      return 0;
  return 1;
}

/* ---- files ---- */

static char tc_root[64];

static int tc_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void tc_rmtree(const char *dir) {
  struct stat st;
  if (lstat(dir, &st) == 0 && nftw(dir, tc_rm_cb, 16, FTW_DEPTH | FTW_PHYS) != 0)
    fprintf(stderr, "    could not remove %s\n", dir);
}

/* Copies from (a directory, a file or a symlink) to to, modes kept; 0 or -1. Done here
 * rather than by cp: a crash point costs a copy, and a process each was most of the time. */
static int tc_copy_tree(const char *from, const char *to) {
  struct stat st;
  if (lstat(from, &st) != 0) return -1;
  if (S_ISLNK(st.st_mode)) {
    char t[512];
    ssize_t n = readlink(from, t, sizeof t - 1);
    if (n < 0) return -1;
    t[n] = '\0';
    return symlink(t, to);
  }
  if (S_ISREG(st.st_mode)) {
    int in = open(from, O_RDONLY | O_CLOEXEC), out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
    char buf[65536];
    ssize_t n;
    int ok = in >= 0 && out >= 0;
    while (ok && (n = read(in, buf, sizeof buf)) > 0) ok = write(out, buf, (size_t)n) == n;
    if (in >= 0) close(in);
    if (out >= 0 && close(out) != 0) ok = 0;
    return ok ? 0 : -1;
  }
  if (!S_ISDIR(st.st_mode) || mkdir(to, st.st_mode & 07777) != 0) return -1;
  DIR *d = opendir(from);
  struct dirent *de;
  int ret = d ? 0 : -1;
  while (ret == 0 && d && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/%s", from, de->d_name);
    snprintf(b, sizeof b, "%s/%s", to, de->d_name);
    ret = tc_copy_tree(a, b);
  }
  if (d) closedir(d);
  return ret;
}

/* to made a copy of from, whatever was at to removed first */
static void tc_copy(const char *from, const char *to) {
  tc_rmtree(to);
  if (tc_copy_tree(from, to) != 0) fprintf(stderr, "    could not copy %s to %s\n", from, to);
}

static void tc_mkparents(const char *dir, const char *path) {
  char p[600];
  snprintf(p, sizeof p, "%s/%s", dir, path);
  for (char *s = strchr(p + strlen(dir) + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    (void)mkdir(p, 0755);
    *s = '/';
  }
}

/* Puts entry en at path under dir (whatever was there removed first). */
static int tc_put(const char *dir, const char *path, const tc_entry *en) {
  char p[600];
  snprintf(p, sizeof p, "%s/%s", dir, path);
  tc_rmtree(p);
  if (en->kind == TC_NONE) return 0;
  tc_mkparents(dir, path);
  if (en->kind == TC_LINK) return symlink(en->data, p);
  FILE *f = fopen(p, "w");
  if (f == NULL) return -1;
  fputs(en->data, f);
  return fclose(f);
}

/* What the disk holds at path under dir: TC_NONE (also a directory: no file there), a file
 * or a symlink with its content; 2 when something else is there. */
static int tc_read(const char *dir, const char *path, tc_entry *out) {
  char p[600];
  struct stat st;
  memset(out, 0, sizeof *out);
  snprintf(p, sizeof p, "%s/%s", dir, path);
  if (lstat(p, &st) != 0 || S_ISDIR(st.st_mode)) return 0;
  if (S_ISLNK(st.st_mode)) {
    ssize_t n = readlink(p, out->data, sizeof out->data - 1);
    out->kind = TC_LINK;
    return n < 0 ? 2 : 0;
  }
  if (!S_ISREG(st.st_mode)) return 2;
  FILE *f = fopen(p, "r");
  if (f == NULL) return 2;
  size_t n = fread(out->data, 1, sizeof out->data - 1, f);
  out->data[n] = '\0';
  fclose(f);
  out->kind = TC_FILE;
  return 0;
}

static int tc_same(const tc_entry *a, const tc_entry *b) {
  return a->kind == b->kind && (a->kind == TC_NONE || strcmp(a->data, b->data) == 0);
}

/* The tree refname names as the repository holds it, read into t; -1 when it cannot be read. */
static int tc_ref_tree(const char *ws, const char *refname, tc_tree *t) {
  git_repository *repo = NULL;
  git_reference *ref = NULL;
  git_tree *tree = NULL;
  int ret = -1;
  memset(t, 0, sizeof *t);
  if (git_repository_open(&repo, ws) != 0 || git_reference_lookup(&ref, repo, refname) != 0 ||
      git_reference_peel((git_object **)&tree, ref, GIT_OBJECT_TREE) != 0)
    goto out;
  ret = 0;
  for (size_t i = 0; i < TC_N; i++) {
    git_tree_entry *te = NULL;
    if (git_tree_entry_bypath(&te, tree, tc_paths[i]) != 0) continue;
    if (git_tree_entry_type(te) == GIT_OBJECT_BLOB) {
      git_blob *b = NULL;
      if (git_blob_lookup(&b, repo, git_tree_entry_id(te)) == 0) {
        t->e[i].kind = git_tree_entry_filemode(te) == GIT_FILEMODE_LINK ? TC_LINK : TC_FILE;
        snprintf(t->e[i].data, sizeof t->e[i].data, "%.*s", (int)git_blob_rawsize(b), (const char *)git_blob_rawcontent(b));
      } else {
        ret = -1;
      }
      git_blob_free(b);
    }
    git_tree_entry_free(te);
  }
out:
  git_tree_free(tree);
  git_reference_free(ref);
  git_repository_free(repo);
  return ret;
}

static int tc_main_tree(const char *ws, tc_tree *t) { return tc_ref_tree(ws, "refs/heads/main", t); }

/* The view against main's tree m and the person's paths: 0, or -1 with what differs said. */
static int tc_check_view(const char *ws, const tc_tree *m, const tc_person *pp, const char *when) {
  int bad = 0;
  for (size_t i = 0; i < TC_N; i++) {
    tc_entry d;
    if (tc_read(ws, tc_paths[i], &d) != 0) {
      fprintf(stderr, "    %s: %s is neither file nor symlink nor directory\n", when, tc_paths[i]);
      bad = 1;
      continue;
    }
    if (pp->touched[i]) {
      if (!tc_same(&d, &pp->e[i])) {
        fprintf(stderr, "    %s: %s holds \"%s\" (%d), the person left \"%s\" (%d)\n", when, tc_paths[i], d.data,
                d.kind, pp->e[i].data, pp->e[i].kind);
        bad = 1;
      }
      continue;
    }
    int excused = 0; /* beside a person's path: a directory of theirs, or a file of theirs in the way */
    for (size_t j = 0; j < TC_N; j++)
      if (pp->ever[j] && (tc_above(tc_paths[i], tc_paths[j]) || tc_above(tc_paths[j], tc_paths[i]))) excused = 1;
    if (!excused && !tc_same(&d, &m->e[i])) {
      fprintf(stderr, "    %s: %s holds \"%s\" (%d), main \"%s\" (%d)\n", when, tc_paths[i], d.data, d.kind,
              m->e[i].data, m->e[i].kind);
      bad = 1;
    }
  }
  /* nothing else of ours left behind (a temporary file of a refresh cut short) */
  char cmd[700];
  snprintf(cmd, sizeof cmd, "find '%s' -path '%s/.git' -prune -o -name '.orket-view*' -print | grep -q .", ws, ws);
  if (system(cmd) == 0) {
    fprintf(stderr, "    %s: a temporary file of the view is left in %s\n", when, ws);
    bad = 1;
  }
  /* nor in the refresh's own directory of the gitdir, once a refresh wrote again */
  snprintf(cmd, sizeof cmd, "find '%s/.git/orket-view-tmp' -mindepth 1 -print 2>/dev/null | grep -q .", ws);
  if (system(cmd) == 0) {
    fprintf(stderr, "    %s: a temporary file of the view is left in %s/.git/orket-view-tmp\n", when, ws);
    bad = 1;
  }
  return bad ? -1 : 0;
}

/* ---- one card: attached, changed, committed, merged ---- */

typedef struct tc_card {
  char id[16];
  char key[16]; /* its commit's turn key: a card run again makes a new commit */
  int pool; /* the reused directory it works in: another card's before it */
  size_t n;
  size_t path[4];
  tc_entry to[4];
} tc_card;

/* Deletes, as changes of card c to t, what is below path p (below) or above it (a file in
 * the way of p's directories). */
static void tc_clear_beside(tc_tree *t, tc_card *c, size_t p, int below) {
  for (size_t i = 0; i < TC_N && c->n < 3; i++)
    if ((below ? tc_above(tc_paths[p], tc_paths[i]) : tc_above(tc_paths[i], tc_paths[p])) && t->e[i].kind != TC_NONE) {
      c->path[c->n] = i;
      c->to[c->n++] = (tc_entry){0};
      t->e[i] = (tc_entry){0};
    }
}

/* A card's changes to tree t (applied to t): 1 to 3 of them, among them type changes. */
static void tc_plan(uint64_t *seed, tc_tree *t, tc_card *c) {
  c->n = 0;
  size_t want = 1 + tc_next(seed) % 3;
  for (int tries = 0; c->n < want && tries < 40; tries++) {
    size_t p = tc_next(seed) % TC_N;
    tc_entry en = {0};
    unsigned what = (unsigned)(tc_next(seed) % 4);
    if (t->e[p].kind != TC_NONE && what == 0) {
      en.kind = TC_NONE; /* a deletion */
    } else if (what == 1 && tc_free(t, p) == 0 && t->e[p].kind == TC_NONE) {
      tc_clear_beside(t, c, p, 1); /* a directory turned file: everything below p goes */
      if (!tc_free(t, p)) continue;
      en.kind = TC_FILE;
      snprintf(en.data, sizeof en.data, "%s was a directory %u\n", tc_paths[p], (unsigned)(tc_next(seed) % 1000));
    } else if (what == 2 && tc_free(t, p) && t->e[p].kind != TC_LINK) {
      en.kind = TC_LINK;
      snprintf(en.data, sizeof en.data, "%s", tc_paths[tc_next(seed) % 2]);
    } else {
      tc_clear_beside(t, c, p, 0); /* a file, maybe where a file above it was (a file turned directory) */
      if (!tc_free(t, p)) continue;
      en.kind = TC_FILE;
      snprintf(en.data, sizeof en.data, "%s %u\n", tc_paths[p], (unsigned)(tc_next(seed) % 100000));
    }
    c->path[c->n] = p;
    c->to[c->n++] = en;
    t->e[p] = en;
  }
}

/* Runs card c against the repository at ws: attached at cards/<id>, its changes written,
 * committed, merged into main. 0, or -1 with the failure said. */
static int tc_run_card(const char *ws, const tc_card *c, const gr_sig *who) {
  char dir[400], state[400], id[41];
  gitrepo *r = NULL;
  gr_err e;
  int sw, ret = -1;
  gr_commit_kind ck;
  gr_merge_kind mk;
  gr_paths conf = {0};
  snprintf(dir, sizeof dir, "%s/pool/%d", tc_root, c->pool);
  snprintf(state, sizeof state, "%s/state/%d", tc_root, c->pool);
  if (gitrepo_open(ws, &r, &e) != 0 || gitrepo_attach(r, c->id, dir, state, &sw, &e) != 0) goto out;
  for (size_t i = 0; i < c->n; i++)
    if (tc_put(dir, tc_paths[c->path[i]], &c->to[i]) != 0) {
      snprintf(e.msg, sizeof e.msg, "writing %s in the card's directory failed", tc_paths[c->path[i]]);
      goto out;
    }
  if (gitrepo_commit(r, c->id, who, "work", c->key, NULL, NULL, id, &ck, NULL, &e) != 0) goto out;
  /* stale (1) exactly when a write of the view's was made to fail (tc_seam.fail_view); a
   * view behind may fail in its catch-up alone, and the merge's own refresh then succeed */
  int mr = gitrepo_merge_to_main(r, c->id, who, id, &mk, &conf, &e);
  if (mr < 0) goto out;
  tc_seam.stale = mr;
  if (mr != (tc_seam.failed_views > 0) && !(mr == 0 && tc_seam.behind)) {
    if (mr == 0) snprintf(e.msg, sizeof e.msg, "the view's failed writes (%ld) not said", tc_seam.failed_views);
    goto out;
  }
  if (mk == GR_CONFLICT) {
    snprintf(e.msg, sizeof e.msg, "the merge conflicts");
    goto out;
  }
  int det; /* handed on: the next card in this directory switches it */
  if (gitrepo_detach(r, c->id, NULL, &det, &e) != 0) goto out;
  ret = 0;
out:
  if (ret != 0) fprintf(stderr, "    card %s: %s\n", c->id, e.msg);
  gr_paths_free(&conf);
  gitrepo_close(r);
  return ret;
}

/* After a crash: the repository reopened and recovered, as `orket resume` does, and the
 * card's directory attached again (the engine's recovery does): it then holds its branch's
 * tree, whatever switch or checkout the crash cut short, but for the card's own changes
 * written before the crash and not committed yet. */
static int tc_restart(const char *ws, const tc_card *c) {
  gitrepo *r = NULL;
  gr_err e;
  int removed, sw, ret = 0;
  char dir[400], state[400], ref[64];
  snprintf(dir, sizeof dir, "%s/pool/%d", tc_root, c->pool);
  snprintf(state, sizeof state, "%s/state/%d", tc_root, c->pool);
  snprintf(ref, sizeof ref, "refs/heads/orket/%s", c->id);
  char lock[420]; /* a kill's index lock in the directory's state: the engine's recovery clears it */
  snprintf(lock, sizeof lock, "%s/index.lock", state);
  (void)unlink(lock);
  if (gitrepo_open(ws, &r, &e) != 0 || gitrepo_recover(r, &removed, &e) != 0 || gitrepo_check(r, &e) != 0 ||
      gitrepo_attach(r, c->id, dir, state, &sw, &e) != 0) {
    fprintf(stderr, "    restart: %s\n", e.msg);
    ret = -1;
  }
  /* what the kill left locked in main's gitdir was Orket's own write, recorded: recovered */
  static const char *const locks[] = {".git/index.lock", ".git/refs/heads/main.lock"};
  for (size_t i = 0; i < sizeof locks / sizeof *locks; i++) {
    char lp[600];
    struct stat ls;
    snprintf(lp, sizeof lp, "%s/%s", ws, locks[i]);
    if (lstat(lp, &ls) == 0) {
      fprintf(stderr, "    restart: %s left by the kill and kept\n", locks[i]);
      ret = -1;
    }
  }
  tc_tree want;
  for (size_t i = 0; ret == 0 && tc_ref_tree(ws, ref, &want) == 0 && i < TC_N; i++) {
    tc_entry d;
    int mine = 0; /* the card's own change, written before the crash and not committed yet */
    for (size_t j = 0; j < c->n; j++)
      if (c->path[j] == i && tc_read(dir, tc_paths[i], &d) == 0 && tc_same(&d, &c->to[j])) mine = 1;
    if (!mine && (tc_read(dir, tc_paths[i], &d) != 0 || !tc_same(&d, &want.e[i]))) {
      fprintf(stderr, "    restart: the card's directory holds \"%s\" at %s, its branch \"%s\"\n", d.data, tc_paths[i],
              want.e[i].data);
      ret = -1;
    }
  }
  gitrepo_close(r);
  return ret;
}

/* ---- a person in the view ---- */

/* A path whose person's content is main's (both nothing, say) is the view's again: the next
 * refresh that meets it finds it holding what the view would have written. */
static void tc_settle_person(tc_person *pp, const tc_tree *m) {
  for (size_t i = 0; i < TC_N; i++)
    if (pp->touched[i] && !pp->staged[i] && tc_same(&pp->e[i], &m->e[i])) pp->touched[i] = 0;
}

/* A person's step in the view, whose main is m: a file written (and maybe staged) or a file
 * deleted. Deleting a file main does not have (one of theirs) gives the path back to the
 * view: it then holds what main holds there, nothing, and follows main again. */
static void tc_person_step(uint64_t *seed, const char *ws, const tc_tree *m, tc_person *pp) {
  size_t p = tc_next(seed) % TC_N;
  char full[600];
  struct stat st;
  snprintf(full, sizeof full, "%s/%s", ws, tc_paths[p]);
  int has = lstat(full, &st) == 0;
  unsigned what = (unsigned)(tc_next(seed) % 3);
  if (what == 0 && has && !S_ISDIR(st.st_mode)) { /* deleted */
    unlink(full);
    pp->touched[p] = pp->ever[p] = 1;
    pp->e[p] = (tc_entry){0};
    tc_settle_person(pp, m);
    return;
  }
  if (has && S_ISDIR(st.st_mode)) return;
  for (size_t i = 0; i < TC_N; i++) { /* their file's directories: only where nothing is in the way */
    char q[600];
    snprintf(q, sizeof q, "%s/%s", ws, tc_paths[i]);
    if (tc_above(tc_paths[i], tc_paths[p]) && lstat(q, &st) == 0 && !S_ISDIR(st.st_mode)) return;
  }
  tc_entry en = {.kind = TC_FILE};
  snprintf(en.data, sizeof en.data, "the person's %s %u\n", tc_paths[p], (unsigned)(tc_next(seed) % 1000));
  if (tc_put(ws, tc_paths[p], &en) != 0) return;
  pp->touched[p] = pp->ever[p] = 1;
  pp->e[p] = en;
  if (what == 2) { /* and staged */
    git_repository *repo = NULL;
    git_index *idx = NULL;
    if (git_repository_open(&repo, ws) == 0 && git_repository_index(&idx, repo) == 0 &&
        git_index_add_bypath(idx, tc_paths[p]) == 0 && git_index_write(idx) == 0)
      pp->staged[p] = 1;
    git_index_free(idx);
    git_repository_free(repo);
  }
}

/* A person's move of main back by one card: main's ref set to its first parent without a
 * reflog message of git's (as update-ref does; the view goes by ancestry, not by what git
 * wrote), main's index and the view's files made that parent's tree, prev, at the paths where
 * it differs from main's, undone. Those paths are the person's until main holds what they
 * hold there. Skipped (0) where the person has a path there or beside one: 1 when made. */
static int tc_person_reset(const char *ws, const tc_tree *undone, const tc_tree *prev, tc_person *pp) {
  if (memcmp(undone, prev, sizeof *prev) == 0) return 0; /* the last card changed nothing: main's parent is older */
  for (size_t i = 0; i < TC_N; i++)
    for (size_t j = 0; j < TC_N && !tc_same(&undone->e[i], &prev->e[i]); j++)
      if (pp->ever[j] && (i == j || tc_above(tc_paths[i], tc_paths[j]) || tc_above(tc_paths[j], tc_paths[i]))) return 0;
  git_repository *repo = NULL;
  git_commit *tip = NULL, *parent = NULL;
  git_index *idx = NULL;
  git_reference *ref = NULL;
  git_oid id;
  int ok = git_repository_open(&repo, ws) == 0 && git_reference_name_to_id(&id, repo, "refs/heads/main") == 0 &&
           git_commit_lookup(&tip, repo, &id) == 0 && git_commit_parentcount(tip) > 0 && git_commit_parent(&parent, tip, 0) == 0 &&
           git_reference_create(&ref, repo, "refs/heads/main", git_commit_id(parent), 1, NULL) == 0 &&
           git_repository_index(&idx, repo) == 0;
  /* the files and their index entries, only where the trees differ (the person's staging
   * elsewhere stays theirs): what goes first, then what comes (a file and a directory trade places) */
  for (int pass = 0; ok && pass < 2; pass++)
    for (size_t i = 0; i < TC_N; i++)
      if (!tc_same(&undone->e[i], &prev->e[i]) && (prev->e[i].kind == TC_NONE) == (pass == 0)) {
        (void)tc_put(ws, tc_paths[i], &prev->e[i]);
        if (prev->e[i].kind == TC_NONE) (void)git_index_remove_bypath(idx, tc_paths[i]);
        else ok = git_index_add_bypath(idx, tc_paths[i]) == 0;
        pp->touched[i] = pp->ever[i] = 1; /* theirs until main holds the same (tc_settle_person) */
        pp->e[i] = prev->e[i];
      }
  ok = ok && git_index_write(idx) == 0;
  git_reference_free(ref);
  git_index_free(idx);
  git_commit_free(parent);
  git_commit_free(tip);
  git_repository_free(repo);
  return ok;
}

/* ---- the sequence ---- */

/* One seed's sequence of `cards` cards, a person's steps between them; every card crashed
 * before each of its steps in turn. *steps counts the crash points tried. */
static void tc_sequence(check_ctx *t, uint64_t seed, int cards, long *steps) {
  const uint64_t seed0 = seed;
  int trace = getenv("ORKET_GITCRASH_TRACE") != NULL;
  static const gr_sig who = {"tester", "tester@orket.invalid"};
  char ws[128], snap[96], work[64];
  /* a memory file system when there is one: each crash point copies the repository twice */
  struct stat shm;
  snprintf(tc_root, sizeof tc_root, "%s/orket-gitcrash-XXXXXX", stat("/dev/shm", &shm) == 0 && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
  if (mkdtemp(tc_root) == NULL) return;
  snprintf(work, sizeof work, "%.50s/w", tc_root);
  snprintf(snap, sizeof snap, "%.50s/snap", tc_root);
  char base[100];
  snprintf(base, sizeof base, "%s", tc_root);
  snprintf(tc_root, sizeof tc_root, "%.60s", work); /* cards and state live in the copied tree */
  snprintf(ws, sizeof ws, "%s/ws", work);
  mkdir(work, 0755);
  mkdir(ws, 0755);
  tc_tree m = {0}, prev = {0};
  tc_person pp = {0};
  int resets = 0, just = 0; /* just: the last card ran again after a move back (main's parent is then not prev) */
  /* the last card's refresh failed (a full disk): the view is behind main until the next
   * refresh, which the next card's crash points cut short in turn. No move back by the
   * person then: what the failed refresh removed is gone from the view, and a move of main
   * back to the view's base leaves the refresh nothing to restore it by. */
  int failed_last = 0, failed_runs = 0;
  m.e[0] = (tc_entry){TC_FILE, "a first\n"};
  tc_put(ws, "a", &m.e[0]);
  gitrepo *r = NULL;
  gr_err e;
  int created;
  CHECK(t, gitrepo_init(ws, &who, &r, &created, &e) == 0);
  gitrepo_close(r);
  for (int k = 0; k < cards && !t->failures; k++) {
    for (int s = (int)(tc_next(&seed) % 3); s > 0; s--) {
      tc_person_step(&seed, ws, &m, &pp);
      for (size_t i = 0; trace && i < TC_N; i++)
        if (pp.touched[i]) fprintf(stderr, "    person: %s = %d \"%s\"\n", tc_paths[i], pp.e[i].kind, pp.e[i].data);
    }
    tc_tree after = m;
    tc_card c;
    snprintf(c.id, sizeof c.id, "C%d", k);
    snprintf(c.key, sizeof c.key, "C%d", k);
    c.pool = k % 2;
    /* now and then the person moves main back by the last card, whose branch still holds
     * what they undid: that card runs again, its next merge bringing it back into main with
     * the card's new changes. Never a path of the person's written; the rest followed. */
    uint64_t bs = seed0 * 1000003u + (uint64_t)k; /* a stream of its own: the rest of the sequence is a seed's as before */
    int back = k > 0 && !just && !failed_last && tc_next(&bs) % 3 == 0 && tc_person_reset(ws, &m, &prev, &pp);
    just = back;
    if (back) {
      snprintf(c.id, sizeof c.id, "C%d", k - 1);
      c.pool = (k - 1) % 2;
      m = prev; /* main's now; the card plans against what its branch holds (after) */
      resets++;
      if (trace) fprintf(stderr, "    person: main moved back by card %d\n", k - 1);
      /* a run's start between: its refresh must not take the move for the view's own */
      int removed;
      CHECK(t, gitrepo_open(ws, &r, &e) == 0 && gitrepo_recover(r, &removed, &e) == 0);
      gitrepo_close(r);
      r = NULL;
      char when[64];
      snprintf(when, sizeof when, "seed %llu: after main moved back", (unsigned long long)seed0);
      CHECK(t, tc_check_view(ws, &m, &pp, when) == 0);
    }
    tc_plan(&seed, &after, &c);
    for (size_t i = 0; trace && i < c.n; i++)
      fprintf(stderr, "    card %d: %s -> %d \"%s\"\n", k, tc_paths[c.path[i]], c.to[i].kind, c.to[i].data);
    tc_copy(work, snap);
    for (long at = 1;; at++) {
      pid_t pid = fork();
      if (pid == 0) {
        tc_seam.armed = 1;
        tc_seam.crash_at = at;
        _exit(tc_run_card(ws, &c, &who) == 0 ? 0 : 1);
      }
      int st = 0;
      waitpid(pid, &st, 0);
      int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      char when[96];
      snprintf(when, sizeof when, "seed %llu card %d crash before step %ld", (unsigned long long)seed0, k, at);
      if (code != 77 && code != 0) {
        fprintf(stderr, "    %s: the card failed (%d)\n", when, code);
        t->failures++;
        break;
      }
      if (code == 0) { /* the card finished before step `at`: every step was tried */
        tc_copy(snap, work);
        break;
      }
      ++*steps;
      tc_tree now;
      CHECK(t, tc_restart(ws, &c) == 0 || !fprintf(stderr, "    %s\n", when));
      CHECK(t, tc_main_tree(ws, &now) == 0);
      int before = memcmp(&now, &m, sizeof now) == 0, done = memcmp(&now, &after, sizeof now) == 0;
      CHECK(t, before || done || !fprintf(stderr, "    %s: main's tree is neither the one before nor after\n", when));
      CHECK(t, tc_check_view(ws, &now, &pp, when) == 0);
      tc_copy(snap, work);
      if (t->failures) break;
    }
    /* and once uninterrupted; from the third card on, until one writes a file in the view,
     * with the view's writes failing (a full disk), and for the card after it too (the disk
     * still full: its catch-up and its own refresh fail part-way from what the first left),
     * so that the next card's crash points cut short the refresh that catches up */
    tc_seam.fail_view = (failed_runs == 0 && k >= 2 && k + 2 < cards) || (failed_runs == 1 && failed_last);
    tc_seam.failed_views = 0;
    tc_seam.stale = 0;
    tc_seam.behind = failed_last;
    CHECK(t, tc_run_card(ws, &c, &who) == 0);
    tc_seam.fail_view = tc_seam.behind = 0;
    failed_runs += tc_seam.failed_views > 0;
    failed_last = tc_seam.stale;
    if (trace && failed_last) fprintf(stderr, "    card %d: %ld view writes failed\n", k, tc_seam.failed_views);
    tc_seam.failed_views = 0; /* the next card's children expect none */
    tc_tree now;
    CHECK(t, tc_main_tree(ws, &now) == 0 && memcmp(&now, &after, sizeof now) == 0);
    char when[64];
    snprintf(when, sizeof when, "after card %d", k);
    CHECK(t, failed_last || tc_check_view(ws, &now, &pp, when) == 0);
    prev = m;
    m = after;
    tc_settle_person(&pp, &m);
  }
  if (trace) fprintf(stderr, "    seed %llu: %d moves of main by the person\n", (unsigned long long)seed0, resets);
  if (!t->failures) tc_rmtree(base);
  else fprintf(stderr, "    kept %s\n", base);
}

/* The seeds `make test` runs; ORKET_GITCRASH_SEEDS=N runs N more (make soak). */
TEST(test_gitcrash) {
  long steps = 0;
  git_libgit2_init();
  tc_seam.nosync = 1;
  const char *more = getenv("ORKET_GITCRASH_SEEDS");
  long extra = more ? strtol(more, NULL, 10) : 0;
  static const uint64_t seeds[] = {1, 7, 42};
  for (size_t i = 0; !getenv("ORKET_GITCRASH_ONLY") && i < sizeof seeds / sizeof seeds[0] && !t->failures; i++)
    tc_sequence(t, seeds[i], 6, &steps);
  const char *only = getenv("ORKET_GITCRASH_ONLY"); /* one seed again, to look at it */
  if (only) {
    tc_sequence(t, strtoull(only, NULL, 10), 10, &steps);
    extra = 0;
  }
  for (long i = 0; i < extra && !t->failures; i++) tc_sequence(t, 1000 + (uint64_t)i, 10, &steps);
  printf("    gitcrash: %ld crash points\n", steps);
  tc_seam.nosync = 0;
  git_libgit2_shutdown();
}
