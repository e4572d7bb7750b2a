/* gitrepo.h: the workspace as a git repository, over libgit2 (no `git` process): a main
 * branch, a working directory per card on branch orket/<CARD> (attached: the repository
 * opened on it with an index of its own; or a linked worktree), commits with a turn trailer
 * so a resume never commits twice, merges done in the object database so main is never
 * half-merged, and main's working tree as a view for people. Implemented by the units of
 * core/gitrepo/. Knows nothing of Lua. The crash-safety model is in docs/git.md. */
#ifndef ORKET_GITREPO_H
#define ORKET_GITREPO_H

#include <stddef.h>
#include <stdint.h>

#define GR_OID_HEX 40            /* a SHA-1 object id as hex */
#define GR_MAIN "main"           /* the branch every card starts from and merges into */
#define GR_CARD_PREFIX "orket/"  /* a card's branch is orket/<CARD> */
#define GR_CARD_MAX 100          /* longest card id accepted */
#define GR_TURN_TRAILER "Orket-Turn" /* the trailer gitrepo_commit's turn key goes in */
#define GR_REMOTE_MAIN "refs/remotes/orket/main" /* where gitrepo_fetch_main keeps the remote's main */
/* where gitrepo_fetch_branch keeps the remote's branch B: GR_REMOTE_BRANCHES B */
#define GR_REMOTE_BRANCHES "refs/remotes/orket-branches/"
/* ends the summary of a merge into a card's branch that left conflict markers */
#define GR_CONFLICT_SUFFIX ", with conflicts to resolve"

/* An expected failure: code is a short name ("ENOENT", "ECONFLICT", "EDIRTY", "ELOCKED",
 * "EINVAL", "EGIT"), msg a sentence beginning "git: ". */
typedef struct gr_err {
  const char *code;
  char msg[1024];
} gr_err;

/* Who a commit is by: name and email, both non-empty, no '<', '>' or newline. */
typedef struct gr_sig {
  const char *name;
  const char *email;
} gr_sig;

/* A list of repository-relative paths, malloc'd; free with gr_paths_free. */
typedef struct gr_paths {
  char **v;
  size_t n;
} gr_paths;
void gr_paths_free(gr_paths *p);

/* One commit as gitrepo_log lists it. */
typedef struct gr_commit {
  char id[GR_OID_HEX + 1];
  char *summary;      /* first line of the message (malloc'd) */
  char *author_name;  /* malloc'd */
  char *author_email; /* malloc'd */
  int64_t time;       /* author time, seconds since the epoch */
  unsigned parents;
} gr_commit;
void gr_commits_free(gr_commit *v, size_t n);

typedef enum { GR_COMMITTED = 0, GR_EXISTS, GR_CLEAN } gr_commit_kind;
typedef enum { GR_UPTODATE = 0, GR_FASTFORWARD, GR_MERGED, GR_CONFLICT } gr_merge_kind;

/* The context: one open repository (its main working tree is `path`). Holds libgit2's
 * table (gitapi.h: libgit2 is loaded by the first context, not at start-up) and a libgit2
 * reference (git_libgit2_init/shutdown are counted per context). A missing libgit2 fails
 * init, open, init_bare and ls_remote with EGIT and a message naming the package. */
typedef struct gitrepo gitrepo;

/* 1 when card is a usable card id: 1..GR_CARD_MAX of [A-Za-z0-9._-], not starting with '.'
 * or '-', no "..", not ending in ".lock" (so orket/<card> is a valid branch name and the
 * card is a valid worktree name). */
int gitrepo_card_valid(const char *card);

/* Creates a repository at path (a directory, made if missing) whose HEAD is main, with an
 * initial commit of the files already there (honouring .gitignore). On an existing
 * repository it only opens it, and makes the initial commit if main has none yet:
 * idempotent. *created is 1 when this call made the initial commit. */
int gitrepo_init(const char *path, const gr_sig *who, gitrepo **out, int *created, gr_err *e);

/* Opens the repository whose main working tree is path (ENOENT when there is none). A
 * handle keeps the last cards' worktrees open between calls, each used only while it is
 * still the worktree on disk (docs/git.md); close lets go of them. */
int gitrepo_open(const char *path, gitrepo **out, gr_err *e);
void gitrepo_close(gitrepo *r);

/* The main working tree's path, as opened. */
const char *gitrepo_path(const gitrepo *r);

/* Makes the linked worktree of card at path on branch orket/<card>: the branch is created
 * from main when missing (an existing branch keeps its work), the worktree (and the
 * directories above it) is created when
 * missing and reused when present (EEXIST when it is registered at another path). A worktree
 * left half made by a crash is pruned and made again; a directory in the way is moved aside
 * to <path>.stale-N, never deleted. path must be outside main's working tree (EINVAL).
 * Then the worktree is settled (gitrepo_refresh).
 * *created is 1 when this call made the worktree. */
int gitrepo_worktree(gitrepo *r, const char *card, const char *path, int *created, gr_err *e);

/* The worktree path of card into buf (ENOENT when card has no worktree). */
int gitrepo_worktree_path(gitrepo *r, const char *card, char *buf, size_t cap, gr_err *e);

/* Attaches card's branch orket/<card> (made from main when missing) to dir, a working
 * directory that is not a linked worktree: the main repository opened again with dir as its
 * working directory and the index state/index (state: a directory outside dir, made if
 * missing). Nothing in dir is read as git metadata (a `.git` there is data). dir may hold
 * another card's files as its index records them (a directory reused, docs/git.md): it is
 * switched to the card's tip by writing only the paths that differ, each first checked to
 * hold its recorded or its new content (EDIRTY otherwise; nothing written). Without an index,
 * whatever dir holds is removed first. From then on status, commit, merge_from_main, refresh
 * and worktree_path of card use dir, until gitrepo_detach. *switched is 1 when files were
 * written. EINVAL: dir inside main's working tree, or state inside dir. */
int gitrepo_attach(gitrepo *r, const char *card, const char *dir, const char *state, int *switched, gr_err *e);

/* Detaches card's directory (*detached 1; 0 when it has none attached): EDIRTY while it holds
 * uncommitted changes; what its commits left out (files .gitignore kept out, FIFOs, files
 * over the cap, nested repositories) is removed, so the directory holds exactly its
 * index's tree and can be attached to another card (directories left empty go too: git
 * tracks none, and one stood in the way of a file the next card writes). dir and state stay
 * on disk. only, when
 * not NULL, vouches that nothing but those paths changed since the directory last matched
 * its index as a whole (attached fresh, or settled by a whole walk): only they are checked
 * and cleared, unless one is not a plain case (as gitrepo_commit's only), when the whole
 * directory is walked after all. */
int gitrepo_detach(gitrepo *r, const char *card, const gr_paths *only, int *detached, gr_err *e);

/* The changed paths of card's worktree against its HEAD: modified, added, deleted and new
 * untracked files (ignored files are not listed), sorted. */
int gitrepo_status(gitrepo *r, const char *card, gr_paths *out, gr_err *e);
/* Removes the card's worktree (its directory and metadata; the branch stays): *removed 1,
 * or 0 when it has none. EDIRTY while it holds uncommitted changes. */
int gitrepo_worktree_remove(gitrepo *r, const char *card, int *removed, gr_err *e);

/* 1 when path is relative, without empty, "." or ".." components or a trailing '/'. */
int gitrepo_path_valid(const char *path);

#define GR_ONLY_MAX 1024 /* paths gitrepo_commit stages one by one; more: the whole walk */

/* Commits every change in card's worktree (like `git add -A && git commit`) on its branch
 * with author = committer = who, message + "\n\nOrket-Turn: <turn_key>" when turn_key is not
 * NULL. Idempotent: when a commit on the branch (since main) already carries that turn key,
 * its id is returned with *kind = GR_EXISTS and nothing is written; when nothing changed,
 * HEAD's id with GR_CLEAN. Otherwise GR_COMMITTED and the new id. id gets 40 hex + NUL.
 * What is left out (FIFOs, sockets, devices, files over 64 MiB, nested repositories) is
 * listed in *skipped when not NULL, "path (why)" each (gr_paths_free). EUNSAFE: a file
 * libgit2 reads by name (.gitignore, .gitattributes, .gitmodules) is not a small regular
 * file, or the worktree's .git is not the one the engine wrote (docs/git.md).
 * only, when not NULL, vouches that nothing but those paths (gitrepo_path_valid, at most
 * GR_ONLY_MAX) changed since the working tree last matched its index: only they are staged
 * (what the whole walk would stage of them), unless one is not a plain file or a missing one
 * (a directory, a symlink, a .gitignore...), when the whole tree is walked after all; *skipped
 * then lists only what was left out of them. A file of only's that a .gitignore rule keeps out
 * of the commit is listed in *skipped too, and so, when only is NULL, is one of wrote's (when
 * not NULL: the paths a turn's tools wrote, the first GR_ONLY_MAX looked up one by one, never
 * a walk of the ignored tree; a path not gitrepo_path_valid is passed over). */
int gitrepo_commit(gitrepo *r, const char *card, const gr_sig *who, const char *message, const char *turn_key,
                   const gr_paths *only, const gr_paths *wrote, char *id, gr_commit_kind *kind, gr_paths *skipped,
                   gr_err *e);

/* Finds the newest commit on branch (a branch name such as "orket/X1") whose message has the
 * trailer key: value, searching only commits not on main when since_main is set. Returns 1
 * (id filled), 0 when there is none, -1 on error. */
int gitrepo_find_trailer(gitrepo *r, const char *branch, const char *key, const char *value,
                         int since_main, char *id, gr_err *e);

/* Merges orket/<card> into main: up to date, fast-forward when main is an ancestor, else a
 * merge commit by who (parents: main, the card's tip), computed in the object database. On a
 * conflict nothing is written: *kind = GR_CONFLICT, conflicts lists the paths, and the call
 * returns 0. main moves by one compare-and-swap of its ref (EAGAIN if it moved meanwhile):
 * the merge's commit point. Then main's view is refreshed (gitrepo_view_refresh). id gets
 * main's new tip. Returns 0, -1 on error, or 1 when main moved but the view could not be
 * refreshed (e says why): the merge stands, and the next refresh catches up. Up to date, a
 * view left behind Orket's last merge is refreshed (its catch-up), 1 when that fails. Paths the view
 * could not take because they are a person's are not an error: gitrepo_view_status. */
int gitrepo_merge_to_main(gitrepo *r, const char *card, const gr_sig *who, char *id,
                          gr_merge_kind *kind, gr_paths *conflicts, gr_err *e);

/* Merges the remote's main as gitrepo_fetch_main last kept it (GR_REMOTE_MAIN) into main,
 * as gitrepo_merge_to_main merges a card: up to date, fast-forward or a merge commit by who;
 * a conflict writes nothing (*kind = GR_CONFLICT, conflicts named). ENOENT: nothing fetched. */
int gitrepo_merge_remote_to_main(gitrepo *r, const gr_sig *who, char *id, gr_merge_kind *kind,
                                 gr_paths *conflicts, gr_err *e);

/* Merges main into orket/<card> so the card's next turn sees it; the worktree must be clean
 * (EDIRTY lists nothing: commit first). Up to date, fast-forward, or a merge commit. On a
 * conflict the merge commit is still made, with conflict markers in the text files (a
 * binary conflict keeps the card's version, a delete/modify conflict the modified file) and
 * the paths listed in its message: *kind = GR_CONFLICT, conflicts names them; the turn resolves them. */
int gitrepo_merge_from_main(gitrepo *r, const char *card, const gr_sig *who, char *id,
                            gr_merge_kind *kind, gr_paths *conflicts, gr_err *e);

/* Merges the remote's orket/<card> as gitrepo_fetch_branch last kept it into orket/<card>, as
 * gitrepo_merge_from_main merges main (a conflict makes the merge commit with markers, named
 * in conflicts). ENOENT: nothing fetched, or no directory attached for the card. */
int gitrepo_merge_remote_to_card(gitrepo *r, const char *card, const gr_sig *who, char *id,
                                 gr_merge_kind *kind, gr_paths *conflicts, gr_err *e);

/* The commits on branch that are not on main, newest first, at most max (*out malloc'd;
 * gr_commits_free). */
int gitrepo_log(gitrepo *r, const char *branch, size_t max, gr_commit **out, size_t *n,
                gr_err *e);

/* The id branch points at ("main", "orket/X1"); ENOENT when it does not exist. */
int gitrepo_head(gitrepo *r, const char *branch, char *id, gr_err *e);

/* Where gitrepo_set_aside keeps a card's branch: a ref there names no branch, so no card
 * takes it up again, and git shows it only when asked (git log REF, git branch NAME REF). */
#define GR_ASIDE_PREFIX "refs/orket/"

/* Puts the card's branch orket/<card> aside as the ref aside (under GR_ASIDE_PREFIX, not
 * there yet): aside is made at the branch's commit (id, hex) and made durable, then the
 * branch is deleted (keep NULL) or moved back to keep (a commit id, hex: an ancestor of the
 * tip, not the tip), only while it still points at the tip set aside (compare-and-swap; a
 * delete of a packed one rewrites packed-refs as Orket's write, repo.c). Deleted, the card's
 * next turn makes it again from main. ENOENT: no such branch; EEXIST: aside is there
 * already; EINVAL: keep is no ancestor of the tip; EUNSAFE: workspace/ has the branch
 * checked out (nothing moved). A failure after aside was made leaves both: aside is then a
 * copy. */
int gitrepo_set_aside(gitrepo *r, const char *card, const char *aside, const char *keep, char *id, gr_err *e);

/* Settles card's worktree after whatever a crash interrupted (card NULL: refreshes main's
 * view, gitrepo_view_refresh). The index is always meant to be HEAD's tree. A ref move whose
 * files must follow (a merge from main) first writes a marker in the card's state
 * ("planned", then "writing" once every path passed the check below). While a checkout is
 * pending (the marker, or no index at all): each path that differs between the index and
 * HEAD must hold its old or new content or be missing, else EDIRTY; then exactly those paths
 * are written and the index follows. Without a marker, an index that is not HEAD's tree is a
 * commit killed before it wrote the index: the index is set to HEAD's tree and no file is
 * touched. *updated is 1 when files were written. */
int gitrepo_refresh(gitrepo *r, const char *card, int *updated, gr_err *e);

/* Recovery after a crash, for resume: removes the lock files a killed Orket process left:
 * the cards' (under refs/heads/orket/, refs/orket/, refs/remotes/orket/,
 * refs/remotes/orket-branches/; a linked worktree's index.lock and HEAD.lock) and, in main's
 * gitdir, only those a record of a killed write of Orket's names (repo.c: a person's git's
 * are never taken); refreshes every card worktree and main's view (whose failure is never
 * this call's). Call it only while holding the run lock, when no other Orket process works
 * on the repository. *removed counts the lock files removed. */
int gitrepo_recover(gitrepo *r, int *removed, gr_err *e);

/* Consistency check: HEAD, main and every orket/ branch resolve to commits whose trees and
 * blobs exist (full walk of each tree), and each card worktree's index matches its HEAD tree
 * (main's working tree is a person's view: not checked).
 * Returns 0 when consistent, -1 with e saying what is wrong ("EINCONSISTENT"). */
int gitrepo_check(gitrepo *r, gr_err *e);

/* Pushes branch (e.g. "orket/X1") to the same name at url (a path, file:// or
 * http(s):// URL), forced when force is set. password (a forge token), with user (NULL: the
 * URL's or "orket"), is offered once when the remote asks for HTTP credentials; neither is
 * kept or written anywhere. ENOENT: no such branch; EAUTH: the remote refused the
 * credentials; EREJECTED: the remote refused the ref (not a fast-forward, a hook), or a
 * remote on this machine whose git would run a hook on the push or refuse it by
 * receive.denyNonFastForwards (refused before anything is sent: libgit2's local transport
 * runs neither); ENOENT also: a push of main to a remote that had main (GR_REMOTE_MAIN is
 * there) and has other branches but no main; EREMOTE: it could not be reached or failed.
 * The remote's ref moves atomically or not. A push of main moves GR_REMOTE_MAIN to what it
 * pushed, as git's push moves its remote-tracking branch.
 * id (40 hex + NUL): the commit pushed, as the push read the branch (another operation may
 * move it between this call and the push reading it). */
int gitrepo_push(gitrepo *r, const char *url, const char *branch, int force, const char *user,
                 const char *password, char *id, gr_err *e);
/* 1 when commit id (40 hex) is ref's tip or in its history ("refs/heads/main",
 * GR_REMOTE_MAIN), 0 when not (or the repository lacks it), -1 on error (ENOENT: no such ref;
 * EINVAL). */
int gitrepo_contains(gitrepo *r, const char *ref, const char *id, gr_err *e);
/* Fetches the remote's main (url, credentials as for gitrepo_push) into GR_REMOTE_MAIN: 1
 * and its id in id (40 hex + NUL), 0 when the remote has no main and no branch (any earlier
 * tracking ref is dropped), -1 on error (EAUTH, EREMOTE, EINVAL; ENOENT when it had main,
 * GR_REMOTE_MAIN says, and has other branches but no main: the ref kept). A fetch that finds
 * the remote's main no longer holding its previous value, which main holds, records that as
 * refs/orket/remote-main-dropped until the remote holds it again. Nothing else of the
 * repository changes. */
int gitrepo_fetch_main(gitrepo *r, const char *url, const char *user, const char *password, char *id,
                       gr_err *e);
/* Fetches the remote's branch (e.g. "orket/X1") into GR_REMOTE_BRANCHES<branch>, as
 * gitrepo_fetch_main fetches main: 1 and its id, 0 when the remote has no such branch (an
 * earlier tracking ref dropped), -1 on error. */
int gitrepo_fetch_branch(gitrepo *r, const char *url, const char *branch, const char *user, const char *password,
                         char *id, gr_err *e);
/* Creates a bare repository at path (directories made as needed) whose HEAD is main: a
 * remote on disk. Idempotent on an existing repository. */
int gitrepo_init_bare(const char *path, gr_err *e);
/* One ref of a remote as gitrepo_ls_remote lists it. */
typedef struct gr_ref {
  char *name; /* "refs/heads/main", "HEAD", ... (malloc'd) */
  char id[GR_OID_HEX + 1];
} gr_ref;
void gr_refs_free(gr_ref *v, size_t n);
/* The refs a remote (a path, file:// or http(s):// URL) advertises, as a fetch would see them
 * (*out malloc'd: gr_refs_free). Credentials as for gitrepo_push. EREMOTE, EAUTH, EINVAL. */
int gitrepo_ls_remote(const char *url, const char *user, const char *password, gr_ref **out,
                      size_t *n, gr_err *e);
/* Loads libgit2 and sets it up for the rest of the process (on top of each handle's own
 * set-up): a module that hands work to pool threads calls it once, before its first use of
 * libgit2. 0, or -1 with e set when libgit2 cannot be loaded or cannot start. */
int gitrepo_hold_library(gr_err *e);

/* ---- packing the object database (core/gitrepo/pack.c) -----------------------------------
 * libgit2 writes every object loose (a file each) and never runs git's gc.auto: a project's
 * .git grew to hundreds of MB of small files. These put loose objects into a pack, as git's
 * gc.auto would, safe beside other processes reading and writing the same repository. */

/* What gitrepo_pack_count reads: git's own cheap estimate, one directory listed. */
typedef struct gr_pack_count {
  size_t loose; /* the loose objects in objects/17/ times 256: git's gc.auto estimate */
  size_t packs; /* packs (pack-*.idx with its .pack) not kept by a .keep or .promisor file */
} gr_pack_count;
int gitrepo_pack_count(gitrepo *r, gr_pack_count *c, gr_err *e);

/* What one gitrepo_pack did. */
typedef struct gr_pack_result {
  size_t loose;      /* loose objects found (at most max_objects taken) */
  size_t packed;     /* objects the new pack holds */
  size_t removed;    /* loose files removed: their object is in the new pack, checked in its index */
  size_t packs_gone; /* older packs removed (all): each of their objects in the new pack */
  size_t unread;     /* loose objects left as they were: libgit2 could not read them */
  char name[GR_OID_HEX + 1]; /* the new pack's name (its hash), "" when none was written */
} gr_pack_result;

/* Writes one pack (objects/pack, made durable with gr_sync before anything is removed) of up
 * to max_objects loose objects, with all set also of the older packs' objects (the smallest
 * packs first, while they fit), then removes the loose files and older packs whose every
 * object the new pack's index holds. A crash at any step leaves copies, never an object
 * missing; a reader's libgit2 looks for new packs when it misses an object (odb.c's refresh
 * on GIT_ENOTFOUND). Packs kept by .keep or .promisor are never touched, nor is anything
 * outside objects/. deadline_ms (0: none) bounds the pack's writing: past it, ETIMEDOUT and
 * nothing is removed (the search for deltas before it is not interruptible: max_objects
 * bounds it). 0, or -1 with e set (nothing removed unless the new pack was durable). */
int gitrepo_pack(gitrepo *r, int all, size_t max_objects, unsigned deadline_ms, gr_pack_result *out, gr_err *e);

/* ---- main's view (core/gitrepo/view.c) ----------------------------------------------------
 * main's working tree is a view for people, derived from main; nothing in a run reads it.
 * After each merge it follows main at the paths the merge changed, where it still holds
 * what it last held; anything else there is a person's, kept, and recorded as diverged. */

/* Refreshes main's view to main's tip (idempotent; cheap when nothing changed since the last
 * refresh). *diverged counts the paths recorded as diverged by this call; on a failed
 * refresh (-1, a write or read of its own that failed), the paths found the person's but
 * not recorded (the state is untouched: the next refresh records them). 0, or -1 with e
 * set when the view could not be read or written (main itself is never affected). */
int gitrepo_view_refresh(gitrepo *r, size_t *diverged, gr_err *e);

/* How many paths the last merge into main through r found a person's in the view (0 when
 * the last merge moved nothing). */
size_t gitrepo_view_last(const gitrepo *r);

/* The first GR_VIEW_NAMED of those paths, in the merge's order (owned by r: valid until its
 * next merge, refresh or close). */
#define GR_VIEW_NAMED 20
const gr_paths *gitrepo_view_last_paths(const gitrepo *r);

/* A path where the view differs from main, as gitrepo_view_status lists it. Kinds: "none",
 * "file", "executable", "symlink", "directory", "other". */
typedef struct gr_view_path {
  char *path;                    /* malloc'd */
  const char *main_kind;         /* what main's tip has there */
  char main_id[GR_OID_HEX + 1];  /* its blob id ("" when not a blob) */
  int64_t main_size;             /* its size, -1 when not a blob */
  const char *view_kind;         /* what the view (the disk) has there */
  char view_id[GR_OID_HEX + 1];  /* the blob id its content would have ("" when not a file or symlink) */
  int64_t view_size;             /* -1 when nothing is there */
  char *view_at;                 /* malloc'd, NULL but when the view's side is what sits on the way
                                    to path: a file or symlink of a person's at this leading path,
                                    where main has a directory */
  int ignored;                   /* main has nothing there and .gitignore (or the person's own
                                    excludes) matches path: keeping theirs commits it anyway */
} gr_view_path;
void gr_view_paths_free(gr_view_path *v, size_t n);

/* The recorded diverged paths that still differ from main's tip, sorted (*out malloc'd:
 * gr_view_paths_free); those that no longer differ are forgotten, in the state only when
 * forget is set (the caller holds the project's git lock: a refresh writes the state too). Reads, and never writes,
 * the view's files. behind (cap bytes) gets why the view is behind main when its last
 * refresh failed and none has caught up since; "" otherwise. Returns 1, with nothing listed
 * and behind saying so, while a person's branch or a detached commit is checked out in the
 * view: it waits for main (0: listed, -1: failed). Returns 2, listed as for 0 and behind
 * saying so, when Orket's merge to main's tip is not followed yet (its refresh under way, or
 * a process stopped between the merge's ref move and its refresh): any refresh finishes it. */
#define GR_VIEW_WHY 512
int gitrepo_view_status(gitrepo *r, gr_view_path **out, size_t *n, char *behind, size_t cap, int forget, gr_err *e);

/* 1 while a path is still listed that the refresh which found main moved by someone other
 * than Orket's merges (a person's reset, amend, rebase...; docs/git.md) listed: from and to
 * get the commits it moved main from (the view's base then) and to (hex), from the view's
 * state. A move an older orket recorded without its paths: while any path is listed. */
int gitrepo_view_moved(gitrepo *r, char from[GR_OID_HEX + 1], char to[GR_OID_HEX + 1]);

#endif
