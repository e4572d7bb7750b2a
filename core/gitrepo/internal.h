/* internal.h: what the units of the git layer (core/gitrepo/) share behind gitrepo.h: the
 * context, a working directory as the units see it, and the error helpers. Not for use
 * outside core/gitrepo*.c. */
#ifndef ORKET_GITREPO_INTERNAL_H
#define ORKET_GITREPO_INTERNAL_H

#include <errno.h>
#include <limits.h>
#include <signal.h>
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

/* The largest tree libgit2's object cache keeps (gr_lib_acquire): a directory of about
 * 100,000 entries */
#define GR_TREE_CACHE_MAX ((size_t)4 << 20)

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
  /* state_fd: the state directory, held open (O_PATH) while the index is opened through it
   * (-1: by its path); see gitrepo_attach */
  int state_fd;
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
    /* the directory's index itself, opened through state_fd (the state directory, which a
     * rename does not change), kept for the next attach of that very state directory
     * (state_st); NULL and -1: none kept */
    git_index *idx;
    int state_fd;
    struct stat state_st;
  } spare[GR_SPARE_MAX];
  size_t nspare;
  size_t view_diverged; /* paths the view's last refresh recorded as diverged (view.c) */
  gr_paths view_named;  /* the first GR_VIEW_NAMED of them, for the merge's journal event */
  git_tree *view_tip;   /* the tree the view's last refresh went to: the next one's base (view.c) */
  int view_swept;       /* the view's temporaries (state files', written files') looked for once (gr_view_refresh) */
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

/* Where gitrepo_fetch_main records the remote's main as it was before a person moved it back
 * past commits main holds (remote.c, gr_note_dropped); removed once the remote holds it again */
#define GR_REMOTE_MAIN_DROPPED "refs/orket/remote-main-dropped"

/* ---- errors (repo.c) ---- */

/* Sets e (code, "git: " + the formatted message) and returns -1. */
int gr_fail(gr_err *e, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Reports a libgit2 failure rc of `what`, with a code chosen from rc; returns -1. */
int gr_git(const gitapi *g, gr_err *e, int rc, const char *what);
/* EMFILE or ENFILE when this process may open no more files now (os, the errno a failure
 * just left, with errno cleared before the call; or a probe: libgit2's own calls may have
 * changed errno since), else 0. Pass 0 for the probe alone. */
int gr_no_fds(int os);
/* Adds path to p unless it is there: 0, or -1 out of memory. */
/* strcmp for qsort over char * */

/* Makes durable, in one syncfs of the file system holding repo's common gitdir, what was
 * written there unsynced (libgit2's syncs are off: repo.c): called before a ref move (the
 * objects it will name) and after it (the move, its reflog). 0, or -1 with e set (EIO). */
int gr_sync(const gitapi *g, git_repository *repo, gr_err *e);
/* 0 when path is a regular file or missing; else -1 (EUNSAFE: what it is, what and fix
 * said; EIO). Never blocks (O_NONBLOCK, then fstat): for a file of the gitdir libgit2 then
 * opens by name with a plain open(), which a FIFO would block for good. A swap between this
 * look and libgit2's open is not covered. */
int gr_plain_file(const char *path, const char *what, const char *fix, gr_err *e);
/* 1 when repo's HEAD is refs/heads/main, 0 when not (target: what it is on), -1 with e set. */
int gr_head_on_main(const gitapi *g, git_repository *repo, char *target, size_t cap, gr_err *e);
/* Before one of Orket's writes in main's gitdir that takes lock there (gitdir-relative:
 * "index.lock", "refs/heads/main.lock", "packed-refs.lock"), a record of this process's saying
 * so; gr_write_end removes it once the write returned. gitrepo_recover removes a lock there
 * only where a record of a process now gone names it, its time fitting the write and no live
 * process holding it open (repo.c): main's
 * repository is a person's too, whose git's locks are never taken. Best effort. */
void gr_write_begin(const gitapi *g, git_repository *repo, const char *lock);
void gr_write_end(const gitapi *g, git_repository *repo);
/* -1 with e set (EUNSAFE, saying what to do) when main's working tree (workspace/) has ref
 * checked out (main's HEAD names it), so that a card's commit refuses to move it under a
 * person's checkout, as git refuses for another worktree's branch; else 0. */
int gr_ref_in_view(const gitapi *g, git_repository *repo, const char *ref, gr_err *e);

/* ---- the view (view.c) ---- */

/* Brings main's working tree towards main's tip (invariants at the top of view.c): writes
 * the paths main changed since the view's base where the view still holds what it last
 * held, records the rest as diverged. *diverged counts the paths this call recorded. 0, or
 * -1 with e set (the view could not be read or written; main is never affected). */
int gr_view_refresh(gitrepo *r, size_t *diverged, gr_err *e);
/* Records tree as what the view holds now (a new repository's first commit). */
int gr_view_reset(gitrepo *r, const git_oid *tree, gr_err *e);
/* A repository opened with no view state and no branch of Orket's (a person's, adopted):
 * the state is written from main's tip (its tree, its commit), never from main's index, which
 * holds the person's staging (view.c, invariant 2). Best effort, once: a state there (or
 * unreadable) is left alone. */
void gr_view_adopt(gitrepo *r);
/* Records, before Orket's merge moves main from commit from to commit to, that it does
 * (beside the view's state, replaced whole): the refresh after it, or one after a crash in
 * between, tells Orket's move from a person's by it (view.c, invariant 10). */
int gr_view_intent(gitrepo *r, const git_oid *from, const git_oid *to, gr_err *e);

/* ---- main's view's state (viewstate.c) ---- */

typedef struct gr_view_state {
  int has_base;
  int unreadable; /* the file is there but says no base (empty or garbled: a power cut can leave it so) */
  git_oid base;
  int has_commit; /* main's commit the view was last refreshed to (base is its tree); an older state has none */
  git_oid commit;
  int partial; /* base is a refresh to commit that failed part-way: the view is behind it (view.c, invariant 6) */
  git_oid partial_from; /* then the last base that is a commit's tree, should base be gone (a person's gc) */
  int moved; /* a refresh found main moved by a person, from moved_from to moved_to (invariant 10) */
  git_oid moved_from, moved_to;
  gr_paths moved_paths; /* the paths that refresh listed: the move is named while one of them is still listed */
  char why[GR_VIEW_WHY]; /* why the last refresh failed ("" when it did not) */
  gr_paths diverged; /* as read, diverged and moved_paths are sorted, each path once (gr_paths_uniq) */
} gr_view_state;
/* Reads the state (a missing or unreadable file: no base, nothing recorded). */
void gr_view_state_read(const gitrepo *r, gr_view_state *s);
/* Reads only what precedes the paths (base, commit; no why), the whole state where the head
 * does not say the commit. */
void gr_view_state_head(const gitrepo *r, gr_view_state *s);
/* Frees what a read allocated. */
void gr_view_state_free(gr_view_state *s);
/* Replaces the state whole (a rename; not synced). */
int gr_view_state_write(const gitrepo *r, const gr_view_state *s, gr_err *e);
/* Keeps why a refresh failed beside the state, said at its base (best effort). */
void gr_view_behind_why(gitrepo *r, const gr_err *why);
/* A refresh that succeeded: no reason left. */
void gr_view_forget_why(const gitrepo *r);
/* 1 with *p when Orket's last merge's intent (gr_view_intent) moved main to tip. */
int gr_view_read_intent(const gitrepo *r, const git_oid *tip, git_oid *p);
/* P for the intent of Orket's merge from mid (the previous intent's while the view has not
 * followed it, else mid); 1 when the view's last refresh did not follow Orket's merge to
 * mid (the merge runs it again first). */
int gr_view_intent_from(const gitrepo *r, const git_oid *mid, git_oid *from);
/* Removes the view's state files' temporaries a killed process left (its pid is gone);
 * gr_view_refresh calls it once a handle. */
void gr_view_sweep_tmp(const gitrepo *r);

/* ---- how the view writes a file (viewput.c) ---- */

/* Where one refresh makes its temporary files. A fixed name in the target's directory was
 * a name a tree can hold: main's file of that name was deleted from the view, and a
 * directory of that name (an agent can commit one) stopped every write beside it, each
 * taken for a person's deletion. So each file is made in a directory of the refresh's own
 * in the gitdir (a name no tree can hold: git refuses .git in a path), under a name made
 * with O_EXCL and never taken from anyone, then renamed into place. A name holds its
 * process's id: what a process that is gone left there is removed at a handle's first
 * refresh (gr_view_put_sweep; a run and a server may refresh at once: only workers share
 * the git lock). */
typedef struct gr_view_tmp {
  int at;    /* the gitdir's temporary directory; -1 not opened yet, -2 not usable */
  long pid;  /* names: pid.n */
  unsigned long n;
} gr_view_tmp;
/* Writes blob id (link: as a symlink; exec: executable) at leaf in dfd: a temporary file
 * made in t's directory (beside leaf where that is on another file system or cannot be
 * made there), then a rename. 0, or -1 with errno: a step's at leaf's directory, EIO
 * when main's blob cannot be read (nothing of anyone's replaced but leaf), EBUSY when leaf
 * is no longer what was there when the caller checked it (was: its lstat then, st_mode 0
 * for nothing; NULL: not checked). */
int gr_view_put(const gitapi *g, git_repository *repo, gr_view_tmp *t, int dfd, const char *leaf, const git_oid *id, int link,
                int exec, const struct stat *was);
/* Removes the temporary files gr_view_put's refreshes left in the gitdir when their process
 * was killed (its pid gone); gr_view_refresh calls it once a handle. */
void gr_view_put_sweep(const gitapi *g, git_repository *repo);
/* Removes from the directory dfd (not moved: listed through a descriptor of its own) the
 * files gr_view_put named, in the gitdir's directory or beside a path (beside), that a
 * process now gone left: a file or a symlink (never followed), never a directory, a live
 * process's (a run and a server may refresh at once) nor this process's. */
void gr_view_tmp_sweep(int dfd, int beside);

/* ---- shared between the units (each defined in the unit named) ---- */

/* A checkout that follows a ref move is announced by this file in the working tree's own
 * gitdir (a card directory's state), written before the ref moves and saying "idle" once the
 * files and index match HEAD (gr_pending_write). */
#define GR_PENDING "orket-checkout-pending"
/* how a merge into main begins its reflog entry */
#define GR_MERGE_WHY "orket: merge "
#define GR_KEY_MAX 200

typedef struct gr_scan {
  git_repository *repo; /* the working tree's handle */
  /* a card's: the ignore rules (gr_rules_open), owned (freed through g); NULL when they are
   * repo's own */
  git_repository *rules;
  const gitapi *g;
  gr_paths hidden;      /* files a person's excludes hide from repo's walk that the rules keep */
  gr_paths skip;        /* paths ("dir/" for a whole directory) staging leaves out */
  gr_paths notes;       /* "path (why)" for the journal */
  size_t unnoted;       /* skipped paths beyond GR_NOTES_MAX */
  /* the handle's index (a reference of the scan's own): what the branch tracks, which a
   * skip must never turn into a deletion (a tracked file over the cap, a submodule) */
  git_index *idx;
  /* tracked files over the cap whose content changed: on skip too (libgit2 never reads
   * them), never committed, neither as that change nor as a deletion: the commit is refused
   * (gr_scan_grown) and they count as uncommitted changes */
  gr_paths grown;
  long long grown_size; /* the first one's size, for the refusal */
  /* a card's: tracked files whose attributes name a filter driver (scan.c) and whose content
   * the card changed: never staged, the commit refused (gr_scan_grown) as for grown */
  gr_paths filtered;
  char filter_driver[64]; /* the first one's driver, for the refusal */
  int card;               /* a card's working tree (gr_scan_run's card): filter drivers are refused */
  size_t files_max; /* a card's walk: the files it may meet (what idx tracks + GR_TREE_FILES_MAX) */
} gr_scan;

/* The marker holds the checkout's stage and the commit it is about, one line of 49 bytes:
 * "planned <id>" (written, synced, before the ref moves to id), "writing <id>" (every path
 * passed the safety check and id's files are being written) or "idle <id>" (files and index
 * match id; a missing marker is idle too). It is rewritten in place by one write (a write
 * that small is never torn), never replaced: a new file for every checkout cost an inode
 * each. Older versions wrote a second line after it and a marker of the stage alone; both
 * are read by their first line. A write that was not synced may be lost to a power cut,
 * leaving an earlier stage: "planned" checks every path, and "writing" of a commit that is
 * not the tip is an earlier checkout's, read as "planned". */
#define GR_MARK_LEN (8 + GIT_OID_HEXSZ + 1)
typedef struct gr_stage {
  int stage;   /* 0 idle (or no marker), 1 planned, 2 writing */
  int has_oid; /* the marker names its commit (oid) */
  git_oid oid;
} gr_stage;

/* cards.c */
/* git_worktree_lookup, but GIT_ENOTFOUND when there is no metadata at all (libgit2 answers
 * a bare -1 both for that and for metadata a crash left half written). */
int gr_wt_lookup(const gitapi *g, git_repository *repo, const char *card, git_worktree **wt);
/* Closes the kept worktree of card, or every one (card NULL). */
void gr_forget(gitrepo *r, const char *card);
/* card's kept worktree when it is still the one on disk (and, with path, kept for that
 * path), else NULL (and forgotten). */
git_repository *gr_kept(gitrepo *r, const char *card, const char *path);
/* card's repository opened from wt (looked up, valid) and kept for path (NULL: not known):
 * *w is borrowed, as gr_open_card's. */
int gr_open_wt(gitrepo *r, const char *card, const char *path, git_worktree *wt, git_repository **w,
    gr_err *e);
/* card's working directory: its attached directory (gitrepo_attach), else its linked
 * worktree; borrowed: kept open by r, never freed by the caller. */
int gr_open_card(gitrepo *r, const char *card, gr_wd *wd, gr_err *e);
/* The changed paths of wd's working tree, leaving out what gr_scan does (run first:
 * libgit2's status reads .gitignore files). */
int gr_status_repo(const gitapi *g, const gr_wd *wd, gr_paths *out, gr_err *e);
void gr_att_drop(gitrepo *r, size_t i);
/* Frees what spare handle i keeps of its directory (its index, the state directory's
 * descriptor), and the handle too when handle is set. */
void gr_spare_free(gitrepo *r, size_t i, int handle);

/* checkout.c */
/* Writes the marker: stage about oid, synced when sync asks (and when made, with its
 * directory). was (when not NULL) is set to what it said before. */
int gr_pending_write(const gitapi *g, const gr_wd *w, const char *stage, const git_oid *oid, int sync,
    gr_stage *was, gr_err *e);
/* 0: no checkout pending; 1: planned; 2: writing (its safety check had passed). A "writing"
 * about a commit other than tip (when given) is an earlier checkout's: planned. */
int gr_pending(const gitapi *g, const gr_wd *w, const git_oid *tip);
int gr_index_exists(const gitapi *g, const gr_wd *w);
/* The tree of w's branch (HEAD's when w names none). */
int gr_tip_tree(const gitapi *g, const gr_wd *w, git_tree **out);
/* 1 when w's index is still the file this handle left holding the tree of w->mark->tip: the
 * same file (device, inode, size, change and modification times). */
int gr_mark_holds(const gitapi *g, const gr_wd *w);
/* 1 when w's branch still points where w->mark says: with gr_mark_holds, the index this
 * handle left matching the tip still does, and neither changed since (another process's
 * commit or merge changes one of them): nothing to settle. */
int gr_at_tip(const gitapi *g, const gr_wd *w);
/* Records that w's index now matches its branch's tip (callers: once it does); anything
 * unreadable leaves nothing known. */
void gr_settle(const gitapi *g, const gr_wd *w);
/* The id of the tree w's index holds: the tree of the commit it was left matching when the
 * mark holds (gr_mark_holds; a commit's tree is read from the commit, cached), else built
 * from the index, which hashes every entry: as main grows, that made each checkout dearer. */
int gr_index_tree_id(const gitapi *g, const gr_wd *w, int holds, git_index *idx, git_oid *out);
/* Settles a card's working directory after whatever a crash interrupted. The index should
 * always be HEAD's tree (Orket never stages without committing). When it is not:
 * - a checkout is pending (the marker, or no index at all: a worktree killed before its
 *   checkout wrote one, whose files are then all our own): the files must follow HEAD. The
 *   baseline is the index (what the files were last checked out as). Each path that differs
 *   between baseline and HEAD must hold its old or its new content or be missing; then
 *   exactly those paths are written. A path someone changed stops it (EDIRTY, marker kept).
 * - otherwise a commit moved HEAD and was killed before writing the index: the files are the
 *   truth, so only the index is set to HEAD's tree (a mixed reset; no file is touched). */
int gr_refresh_repo(const gitapi *g, const gr_wd *w, int *updated, gr_err *e);
/* Moves a card's ref from `from` to `to` (compare-and-swap) after announcing, with the
 * pending marker (synced), the checkout that must follow into its working directory; a crash
 * anywhere after this is finished by gr_refresh_repo. */
int gr_move_ref(const gitapi *g, const gr_wd *w, const char *ref, const git_oid *from,
    const git_oid *to, const char *why, gr_err *e);

/* commit.c */
/* 1 when a component of path is .git in any case: never staged by name (docs/git.md) */
int gr_names_dotgit(const char *path);

/* repo.c */
/* adds path unless p has it (a scan of p: for short lists) */
int gr_paths_add(gr_paths *p, const char *path);
/* appends path, no scan; gr_paths_uniq then drops what was added twice */
int gr_paths_push(gr_paths *p, const char *path);
/* 1 when path is in p */
int gr_paths_has(const gr_paths *p, const char *path);
/* sorts p and drops duplicates: one O(n log n) pass instead of a scan per path added */
void gr_paths_uniq(gr_paths *p);
/* 1 when path is in p, sorted by gr_paths_uniq (or qsort with gr_cmp_str) */
int gr_paths_sorted_has(const gr_paths *p, const char *path);
int gr_cmp_str(const void *a, const void *b);
int gr_check_card(const char *card, gr_err *e);
int gr_make_sig(const gitapi *g, const gr_sig *who, git_signature **out, gr_err *e);
/* refs/heads/<branch> into buf; EINVAL when it is not a valid ref name. */
int gr_branch_ref(const gitapi *g, const char *branch, char *buf, size_t cap, gr_err *e);
void gr_card_branch(const char *card, char *buf, size_t cap);
int gr_ref_id(const gitapi *g, git_repository *repo, const char *ref, git_oid *id, gr_err *e);
/* An absolute form of path (not resolving symlinks of a missing leaf) into buf. */
int gr_abspath(const char *path, char *buf, size_t cap, gr_err *e);
/* Loads libgit2's table into api (gitapi.h) and takes a reference of libgit2's set-up
 * (git_libgit2_init/shutdown are counted); gr_lib_release undoes it. */
int gr_lib_load(gitapi *api, gr_err *e);
/* Drops what gr_lib_acquire took; api must not be used afterwards. */
void gr_lib_release(gitapi *api);
/* 1 when repo is a shallow clone (its common gitdir's `shallow` file lists commits whose
 * parents were never fetched, as git and libgit2 read it: there and not empty), else 0. */
int gr_is_shallow(const gitapi *g, git_repository *repo);
/* Adds every file of the working tree to idx (honouring .gitignore) and drops entries whose
 * files are gone: `git add -A`, leaving out what gr_scan put on its skip list (run first:
 * the scan also made sure libgit2 can read the working tree without blocking). */
int gr_stage_all(const gitapi *g, git_index *idx, gr_scan *scan, gr_err *e);

/* scan.c */
void gr_scan_free(gr_scan *s);
/* The files libgit2 reads by name in directory dfd (rel: its path, "" or ending in '/')
 * must be small regular files or absent. */
int gr_scan_controls(int dfd, const char *rel, gr_err *e);
/* repo's working tree opened for a walk of our own (no-follow, never blocking): a
 * descriptor, -2 when repo has none, -1 with e set. */
int gr_workdir_fd(const gitapi *g, git_repository *repo, gr_err *e);
/* The length of the directory of path (a prefix ending before a '/') that idx tracks as a
 * submodule (a gitlink entry), 0 when none is. */
size_t gr_in_gitlink(const gitapi *g, git_index *idx, const char *path);
/* EUNSAFE naming the first of s->grown (a tracked file over the cap that changed) and the
 * cap, or the first of s->filtered and its filter driver, when there is one; else 0. */
int gr_scan_grown(const gr_scan *s, gr_err *e);
/* Scans repo's working tree (see above) into *s; EUNSAFE when libgit2 must not read it.
 * card: repo is a card's, whose files only the tree's .gitignore rules exclude (scan.c). */
int gr_scan_run(const gitapi *g, git_repository *repo, gr_scan *s, int card, gr_err *e);
/* Status entry i's path when it is a change a commit would record (not current, not
 * ignored, not beneath a path the scan left out, which is never committed); else NULL. */
const char *gr_status_change(const gitapi *g, git_status_list *sl, size_t i, const gr_paths *skip);
/* Adds to out each of s->hidden that repo's index does not hold (untracked, so a change
 * libgit2's status does not list): how many, or -1 with e set. */
int gr_scan_untracked(const gitapi *g, git_repository *repo, const gr_scan *s, gr_paths *out, gr_err *e);
/* git_index_add_all / update_all's filter (payload: the gr_scan): > 0 leaves the path out:
 * one the scan left out, or a tracked file of a card's under a filter driver whose content
 * changed (put on s->filtered). */
int gr_stage_filter(const char *path, const char *matched, void *payload);
/* Checks card's worktree (registered, its metadata whole) against what the engine made:
 * <meta>/gitdir names <wd>/.git, and <wd>/.git is a small regular file saying
 * "gitdir: <meta>". EUNSAFE otherwise (and the .git put back, see above), or when an earlier
 * visit put one back and this is the first operation since. */
int gr_wt_gitdir_check(const gitapi *g, git_repository *repo, const char *card, gr_err *e);
/* gr_wt_gitdir_check for a worktree libgit2 is about to visit on its own (git_worktree_add
 * opens every one): a refusal is kept in its gitdir for the card's next operation to report. */
void gr_wt_gitdir_sweep(const gitapi *g, git_repository *repo, const char *card);
/* 1 when a refusal of card's .git waits in its gitdir for the card's next operation. */
int gr_wt_refused(const gitapi *g, git_repository *repo, const char *card);
/* Sweeps every registered card worktree but `except` (see gr_wt_gitdir_sweep). */
void gr_wt_gitdir_sweep_all(const gitapi *g, git_repository *repo, const char *except);
/* Notes each of only's paths (a turn's: those staged by name, or those its tools wrote when the
 * tree was walked whole) that is a file a .gitignore rule kept out of the index, as the scan
 * notes what it leaves out: otherwise the turn's work vanishes from main unsaid. A lookup per
 * path (at most GR_ONLY_MAX), never a walk of the ignored tree; a name beneath no tree (not
 * gitrepo_path_valid, or through a .git) is passed over. */
int gr_note_ignored(const gitapi *g, git_repository *repo, git_index *idx, const gr_paths *only, gr_scan *s,
                    gr_err *e);
/* Stages the paths only (above): 0, 1 when the whole walk is needed instead, -1 error. */
int gr_stage_paths(const gitapi *g, git_repository *repo, git_index *idx, const gr_paths *only, gr_scan *s,
    gr_err *e);

/* Whether the process pid has ended (kill(pid, 0) says ESRCH; 0 or EPERM: it lives): a
 * temporary file named by it may then be removed, a live writer's never. */
static inline int gr_pid_gone(long pid) {
  return pid > 0 && pid <= INT_MAX && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

#endif
