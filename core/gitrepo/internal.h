/* internal.h: what the units of the git layer (core/gitrepo/) share behind gitrepo.h: the
 * context, a working directory as the units see it, and the error helpers. Not for use
 * outside core/gitrepo*.c. */
#ifndef ORKET_GITREPO_INTERNAL_H
#define ORKET_GITREPO_INTERNAL_H

#include <limits.h>
#include <sys/stat.h>

#include "../gitapi.h"
#include "../gitrepo.h"


/* A card's linked worktree, kept open between calls: opening one costs libgit2 some 75
 * system calls (its .git file, gitdir, commondir, config, a realpath of each), and a turn
 * asked for it several times (making or finding it, each commit, the status). An entry is
 * reused only while the two files that name the worktree, its metadata's gitdir and its
 * working tree's .git, are the very files it was opened from (device, inode, size, change
 * time): a worktree removed or made again, here or by another process, is opened afresh.
 * What the repository object caches of the files (index, config, refs, packs) it checks
 * against the disk itself, and every index use here reads it again first. */
#define GR_OPEN_MAX 8
#define GR_SPARE_MAX 16

typedef struct gr_open {
  git_repository *w; /* NULL: a free slot */
  char card[GR_CARD_MAX + 1];
  char path[PATH_MAX]; /* where gitrepo_worktree was asked to have it (the fast path's key) */
  struct stat meta, dotgit;
  unsigned long long used;
} gr_open;

/* Keys gathered by a walk: each value of one trailer, NUL-ended, one after another; at most
 * GR_TURNS_MAX of them (more: full, and the gathering stops counting). */
#define GR_TURNS_MAX 256
typedef struct gr_keys {
  char *v;
  size_t len, n;
  int full;
} gr_keys;

/* What a handle knows of a working tree's index: it last left the index file (known: this
 * very file, by its stamp) holding the tree of commit tip. libgit2 replaces an index whole by
 * a rename, so another writer (a process, a handle) changes the stamp. */
typedef struct gr_mark {
  int known;
  struct stat index;
  git_oid tip;
} gr_mark;


/* A card's attached directory (gitrepo_attach): the main repository opened again with the
 * directory as its working directory and an index of its own under state. Kept until
 * gitrepo_detach; used only while the directory and state are the very ones attached. */
typedef struct gr_att {
  git_repository *w;
  char card[GR_CARD_MAX + 1];
  char ref[GR_CARD_MAX + 32];
  char dir[PATH_MAX], state[PATH_MAX];
  struct stat dir_st, state_st;
  /* settled: this handle last left the directory's index matching the branch's tip; while
   * neither has changed since, gr_refresh_repo has nothing to do (gr_mark_holds, gr_at_tip) */
  gr_mark settled;
  /* turns: the turn keys of the branch's commits not in main as of the branch's tip
   * turns_tip (turns_known), so that a commit need not walk the history to learn that its
   * turn is new (gr_turn_seen). main only moves forward, so as it moves on the list can
   * only hold keys no longer counted, never miss one: a key absent from it is absent from
   * the branch. Kept up as this handle commits; any other move of the tip (another
   * process, a merge from main) makes the next commit walk again. */
  int turns_known;
  git_oid turns_tip;
  gr_keys turns;
} gr_att;

struct gitrepo {
  gitapi git; /* libgit2, loaded when the first repository is opened */
  git_repository *repo;
  /* the same repository again, only for merge-base searches (gr_ancestry), opened when
   * first needed. libgit2 keeps a commit such a search reads in the handle's cache only if
   * that handle never parsed the commit as an object; on repo, which does, every search
   * read each commit again from its file, and a merge's search crosses every card merged
   * since the card began (eight or so at concurrency 8) */
  git_repository *walk;
  char *path;
  gr_open open[GR_OPEN_MAX];
  unsigned long long tick;
  gr_att *att; /* the attached cards (natt of them) */
  size_t natt;
  /* handles of directories detached to be handed on (gitrepo_detach), for the next attach
   * of a card without one: opening a repository (its config read, its caches cold) cost more
   * than anything else a card's directory asks of git at this size */
  struct {
    git_repository *w;
    gr_mark index; /* what it knew of its directory's index, which moves with the directory */
  } spare[GR_SPARE_MAX];
  size_t nspare;
  size_t view_diverged; /* paths the view's last refresh recorded as diverged (view.c) */
};

/* A working directory as the functions below see it: a repository handle whose working
 * directory and index are the directory's, the branch it holds (NULL: HEAD's), and where its
 * own state lives (the index's directory and the pending marker; NULL: the gitdir). main's
 * working tree and a linked worktree use HEAD and their gitdir; a card's attached directory
 * (gitrepo_attach) has no gitdir of its own, so both are named. */
typedef struct gr_wd {
  git_repository *repo;
  const char *ref;
  const char *state;
  gr_att *att;   /* an attached directory's (docs/git.md), else NULL */
  gr_mark *mark; /* what this process knows of its index (gr_settle), NULL: nothing kept */
} gr_wd;

/* ---- errors (repo.c) ---- */

/* Sets e (code, "git: " + the formatted message) and returns -1. */
int gr_fail(gr_err *e, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Reports a libgit2 failure rc of `what`, with a code chosen from rc; returns -1. */
int gr_git(const gitapi *g, gr_err *e, int rc, const char *what);
/* Adds path to p unless it is there: 0, or -1 out of memory. */
int gr_paths_add(gr_paths *p, const char *path);
/* strcmp for qsort over char * */
int gr_cmp_str(const void *a, const void *b);

/* ---- the view (view.c) ---- */

/* Brings main's working tree towards main's tip (invariants at the top of view.c): writes
 * the paths main changed since the view's base where the view still holds what it last
 * held, records the rest as diverged. *diverged counts the paths this call recorded. 0, or
 * -1 with e set (the view could not be read or written; main is never affected). */
int gr_view_refresh(gitrepo *r, size_t *diverged, gr_err *e);
/* Records tree as what the view holds now (a new repository's first commit). */
int gr_view_reset(gitrepo *r, const git_oid *tree, gr_err *e);

#endif
