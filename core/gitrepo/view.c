/* view.c: main's working tree (the workspace folder) as a view for people, derived from main.
 * Uses libgit2 through the context's table for trees, blobs and main's index, and plain
 * POSIX calls (each directory opened without following symlinks) for the files.
 *
 * The view's invariants:
 * 1. Nothing in a run needs the view. main is its ref and its objects; a merge moves the ref
 *    (its commit point) and only then asks the view to follow. A view that cannot follow is
 *    reported, never raised: the merge stands.
 * 2. The view's state is one small file in the gitdir (viewstate.c): the tree the view last
 *    held (its base) and the paths recorded as diverged, in the format every orket reads
 *    (one that reads none takes main's index, a person's staging in it, for the base: so a
 *    repository adopted, one with no state and no branch of Orket's, gets its state from
 *    main's commit at its first open, gr_view_adopt); why
 *    the last refresh failed is in a file beside it. Each is replaced whole by a rename and
 *    never synced: losing it to a power cut only makes the next refresh start from an older
 *    base, and 3 and 4 then err on the person's side. A rename, not a write in place: on
 *    ext4 the rename is ordered after the view's own renames, so the state is never ahead
 *    of the files after a power cut, and a reader never sees half of it. A state there but
 *    unreadable (empty after a power cut, garbled) or whose base is gone gives no base, and
 *    main's index is never taken for one then (vw_prev_base). Records no path can be (a
 *    leading '/') keep the base's commit and a person's move with the paths it left listed
 *    (vw_read_record): every orket skips them, and one that drops them leaves a base known
 *    by its tree alone. They come before the paths: a merge's intent reads the head alone.
 * 3. A refresh from base B to main's tip M looks only at the paths of diff(B, M). It writes a
 *    path only where the disk holds what B had there (nothing, where B had nothing; its
 *    executable bit too, where core.fileMode says the file system keeps it) and
 *    main's index holds B's or M's entry: the view still holds what it last held. A path
 *    that already holds M's is done. So the refresh is idempotent, and costs what the merge
 *    changed, not what main holds.
 * 4. Anything else at such a path is the person's: never written, moved or deleted. It is
 *    recorded as diverged, and its index entry is set to M's only where the index held B's,
 *    so that `git status` shows the person's file as a change against main. A path beneath a
 *    submodule main's index holds (a gitlink) is the person's checkout of another repository:
 *    never written, its entry never set (vw_item.in_sub). A version the
 *    person committed in the view is theirs too where a later merge changes the path:
 *    telling their commit from a restore of an older version needs the refreshes' own
 *    history, which is not kept (a rule by main's history since the base counted merges
 *    the view could not follow as the person's, and overwrote a restore).
 * 5. Files are written under a temporary name, in a directory of the refresh's own in the
 *    gitdir (viewput.c: no name a tree can hold, none taken from anyone), or beside the
 *    path as `.orket-view-PID.N.tmp` (O_EXCL) where that directory is on another file
 *    system or cannot be used, and renamed into place only while the path's lstat is still
 *    the one taken before its check (a save since is the person's; one in the last
 *    microseconds before the rename is not seen) (a gone process's left beside is
 *    removed from the folders a refresh writes into: vw_sweep_beside); a directory on the
 *    way is opened with O_NOFOLLOW (a symlink of someone's is never followed); a directory
 *    is removed only when empty.
 * 6. The base moves to M only once every path of diff(B, M) was written or recorded: a crash
 *    before that leaves base B, and the same refresh runs again (on the next merge, or at
 *    recovery), finishing what is left (3). So does a write of the refresh's own that fails
 *    (no space, a quota, an I/O error: gr_vw_blocked), or a read of the disk that fails for
 *    such a reason (vw_read_err: never taken for nothing there): that path keeps B's file
 *    and index entry (the directories its write made on the way go again, vw_unmake_dirs;
 *    one a kill left may stay, empty: git tracks none), the other paths are written, and
 *    the refresh fails with the reason (a merge says it as stale); never counted as the
 *    person's. Where main was moved by Orket alone, the state's base then becomes what the
 *    view holds: B with M's side at each path written or removed (vw_partial_base, synced
 *    before the state names it), its commit M's, marked partial (the view is behind M; the
 *    last base that was a commit's tree kept beside it), the rest of the state untouched, so
 *    that the next refresh, to M or past it, takes those for the view's own (from B, a file
 *    removed for a directory read as a person's deletion once a later merge changed it), and
 *    a person's move of main back past M (a reset to B, an amend) is theirs (10). Its tree
 *    is no commit's: gone (a person's gc), the refresh goes from the kept one, guessed (a
 *    path done since is then recorded, never overwritten). A kill before that leaves B: a
 *    merge into main first runs the refresh of Orket's last merge again while the view has
 *    not followed it (gr_view_intent_from), and so does one that answers uptodate.
 * 7. A recorded path stays diverged until the disk holds what main holds there (the person
 *    took main's version, or committed theirs to main); gitrepo_view_status checks each one
 *    again and forgets those that no longer differ.
 * 8. libgit2 never reads the view. main's index is opened on its own file, with no repository
 *    behind it: the repository's index would, when written, compare its racy entries with
 *    the working tree, opening each .gitattributes and .gitignore on their way by name (a
 *    FIFO there blocked every run for good, a huge one was read whole). The comparisons
 *    that write made for us are done here with our own reads (vw_index_set, and git's racy
 *    entries in vw_smudge_racy). The index is written only over the file it was read from:
 *    one a person's git add replaced meanwhile makes the refresh run again (vw_refresh).
 *    What libgit2 opens by name (the index, HEAD) is looked at first without
 *    blocking: a FIFO there fails the refresh, said, never a hang (gr_plain_file).
 * 9. The view follows main only while main is checked out there: with a person's branch or a
 *    detached commit checked out, the refresh writes nothing and says why (the view is then
 *    behind main); checking main out again brings main's files, and the next refresh finds
 *    them done (status no longer says the view is behind for that reason).
 * 10. Orket moves main only by its merges, each recording its intent first (P, the commit it
 *    merges onto, and M; gr_view_intent). The view's base commit B being P or an ancestor of
 *    it, main was moved by Orket alone. Otherwise someone else moved it (a reset, amend,
 *    rebase, update-ref, any number of them): their move is diff(B, P), and its paths are
 *    theirs, never written, recorded where the disk differs from M (vw_person_guard); the
 *    merge's other paths are followed. No merge to tip (P is tip): nothing is written and the
 *    base stays B. Decided by commits, trees and the disk: a refresh after a crash decides
 *    the same. The move is named (gitrepo_view_moved) while a path its refresh listed is
 *    still listed: the move is why it is, and later merges do not settle it. */
#define _GNU_SOURCE
#include "internal.h"
#include "viewside.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- one refresh ---- */

/* A path of diff(B, M): its two sides, the index's entry at the start, and what happened. */
typedef struct vw_item {
  const char *path;
  vw_side b, m;
  int index_ok; /* main's index held B's or M's entry */
  int diverged;
  int done;   /* the disk holds M's */
  int failed; /* errno of a write of the refresh's own that failed (gr_vw_blocked): B's kept */
  int in_sub; /* beneath a submodule of main's index: the person's checkout, never written */
} vw_item;

static void vw_side_of(const git_diff_file *f, vw_side *s) {
  s->kind = gr_vw_kind_of_mode(f->mode);
  s->hashed = s->kind == VW_FILE || s->kind == VW_EXEC || s->kind == VW_LINK;
  s->id = f->id;
  s->size = (int64_t)f->size;
}

/* Removes the directories above path that our deletions left empty (invariant 5). */
static void vw_prune_dirs(int root, const char *path) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s", path);
  for (char *slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
    *slash = '\0';
    if (unlinkat(root, p, AT_REMOVEDIR) != 0) break;
  }
}

/* 1 when the disk at it's path still holds M's side. */
static int vw_still(const gitapi *g, int root, const vw_item *it) {
  const char *leaf;
  int dfd = gr_vw_parent(root, it->path, 0, &leaf);
  vw_side d;
  gr_vw_disk(g, dfd, leaf, &d, &it->m, NULL);
  if (dfd >= 0) close(dfd);
  return gr_vw_holds(g, &d, &it->m, 1);
}

/* main's entry at a written path (a file, an executable or a link), its stat fields zero */
static void vw_entry(const vw_item *it, git_index_entry *en) {
  memset(en, 0, sizeof *en);
  en->path = it->path;
  en->id = it->m.id;
  en->mode = it->m.kind == VW_LINK ? GIT_FILEMODE_LINK : it->m.kind == VW_EXEC ? GIT_FILEMODE_BLOB_EXECUTABLE
                                                                               : GIT_FILEMODE_BLOB;
}

/* Sets the index entry of it's path to side m (removed when m is nothing), its stat data
 * from the disk when the disk holds m (done), else none: git then compares the content.
 * The content is checked again after the stat (invariant 8): a person's write since pass 2,
 * in the same clock tick and of the same size, would otherwise be taken for main's. */
static int vw_index_set(const gitapi *g, git_index *idx, int root, const vw_item *it) {
  if (it->m.kind == VW_NONE || it->m.kind == VW_DIR || it->m.kind == VW_OTHER) {
    if (g->index_get_bypath(idx, it->path, 0) == NULL) return 0;
    return g->index_remove_bypath(idx, it->path) < 0 ? -1 : 1;
  }
  git_index_entry en;
  vw_entry(it, &en);
  struct stat st;
  if (it->done && fstatat(root, it->path, &st, AT_SYMLINK_NOFOLLOW) == 0 && vw_still(g, root, it)) {
    en.ctime.seconds = (int32_t)st.st_ctim.tv_sec;
    en.ctime.nanoseconds = (uint32_t)st.st_ctim.tv_nsec;
    en.mtime.seconds = (int32_t)st.st_mtim.tv_sec;
    en.mtime.nanoseconds = (uint32_t)st.st_mtim.tv_nsec;
    en.dev = (uint32_t)st.st_dev;
    en.ino = (uint32_t)st.st_ino;
    en.uid = (uint32_t)st.st_uid;
    en.gid = (uint32_t)st.st_gid;
    en.file_size = (uint32_t)st.st_size;
  }
  const git_index_entry *cur = g->index_get_bypath(idx, it->path, 0);
  if (cur && g->oid_equal(&cur->id, &en.id) && cur->mode == en.mode && cur->file_size == en.file_size &&
      cur->mtime.seconds == en.mtime.seconds && cur->mtime.nanoseconds == en.mtime.nanoseconds)
    return 0;
  /* the person's skip-worktree and assume-unchanged stay on main's entry: they keep a local
   * version of theirs out of `git status` and `commit -a`, and without them the next commit -a
   * reverted main's change with it. intent-to-add is not kept: it marks an entry with no
   * content, and main's has its blob. */
  if (cur) {
    en.flags |= cur->flags & GIT_INDEX_ENTRY_VALID;
    en.flags_extended |= cur->flags_extended & GIT_INDEX_ENTRY_SKIP_WORKTREE;
  }
  return g->index_add(idx, &en) < 0 ? -1 : 1;
}

/* 1 when the disk holds index entry ie's blob at path, 0 when not, -1 when ie is no blob
 * (a submodule's commit); *was gets ie as a side, *d the disk's. */
static int vw_disk_is(const gitapi *g, int root, const char *path, const git_index_entry *ie, vw_side *was,
                      vw_side *d) {
  *was = (vw_side){.kind = gr_vw_kind_of_mode(ie->mode), .hashed = 1, .id = ie->id};
  if (was->kind != VW_FILE && was->kind != VW_EXEC && was->kind != VW_LINK) return -1;
  const char *leaf;
  int dfd = gr_vw_parent(root, path, 0, &leaf);
  gr_vw_disk(g, dfd, leaf, d, was, NULL);
  if (dfd >= 0) close(dfd);
  return gr_vw_holds(g, d, was, 1);
}


/* 1 when blob id is larger than the process may write (RLIMIT_FSIZE, finite): an EFBIG
 * then is that limit's, which a later run without it does not meet, so the path is retried
 * (invariant 6). Orket sets no such limit on itself, so an EFBIG is otherwise the file
 * system's lasting limit (a blob over 4 GiB on FAT32): the person's, listed, never retried
 * for good. */
static int vw_over_fsize(const gitapi *g, git_repository *repo, const git_oid *id) {
  struct rlimit rl;
  git_odb *odb = NULL;
  size_t len = 0;
  git_object_t type;
  if (getrlimit(RLIMIT_FSIZE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
  int known = g->repository_odb(&odb, repo) == 0 && g->odb_read_header(&len, &type, odb, id) == 0;
  g->odb_free(odb);
  return known && (uint64_t)len > (uint64_t)rl.rlim_cur;
}

/* Pass 1, deepest first: what B had and M has not goes, where it still is B's. (A file
 * turned symlink, or back, is one write in pass 2, a rename over it: removed here and
 * written there, a crash in between would leave nothing, which reads as a person's
 * deletion.) The directories it leaves empty go too, so that a file can take their place. */
static void vw_clear(const gitapi *g, int root, vw_item *it, int filemode) {
  const char *leaf;
  int dfd = gr_vw_parent(root, it->path, 0, &leaf);
  vw_side d;
  int rerr = gr_vw_disk(g, dfd, leaf, &d, &it->b, NULL);
  if (rerr) {
    it->failed = rerr; /* not known to be gone: kept, retried (invariant 6) */
  } else if (d.kind == VW_NONE) {
    vw_prune_dirs(root, it->path);
  } else if (!it->index_ok || !gr_vw_holds(g, &d, &it->b, filemode)) {
    it->diverged = 1;
  } else if (unlinkat(dfd, leaf, 0) == 0) {
    vw_prune_dirs(root, it->path);
  } else if (gr_vw_blocked(errno)) {
    it->diverged = 1;
  } else {
    it->failed = errno ? errno : EIO;
  }
  if (dfd >= 0) close(dfd);
}

/* The length of path's first leading directory missing from the disk (0: none is), so that
 * a write that fails can take away the directories it made on the way (vw_unmake_dirs).
 * Each looked up from its parent, opened without following a symlink (gr_vw_parent). */
static size_t vw_missing(int root, const char *path) {
  char p[PATH_MAX];
  const char *leaf;
  struct stat st;
  snprintf(p, sizeof p, "%s", path);
  for (char *slash = strchr(p, '/'); slash; slash = strchr(slash + 1, '/')) {
    *slash = '\0';
    int dfd = gr_vw_parent(root, p, 0, &leaf);
    int there = dfd >= 0 && fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0;
    int err = errno;
    if (dfd >= 0) close(dfd);
    if (!there) return err == ENOENT ? strlen(p) : 0;
    *slash = '/';
  }
  return 0;
}

/* Removes the directories a failed write made for path, deepest first, down to the one of
 * length top (vw_missing), each only while empty: they are the refresh's own, and left
 * there a directory where a later merge puts a file read as a person's (it stayed unwritten
 * once the disk had room again). One not there (its mkdir was the one that failed) is passed
 * over to its parent; each is removed from its parent's descriptor, opened without following
 * a symlink (a person's symlink put in place of one is never gone through). */
static void vw_unmake_dirs(int root, const char *path, size_t top) {
  char p[PATH_MAX];
  const char *leaf;
  snprintf(p, sizeof p, "%s", path);
  for (char *slash = strrchr(p, '/'); slash && (size_t)(slash - p) >= top; slash = strrchr(p, '/')) {
    *slash = '\0';
    int dfd = gr_vw_parent(root, p, 0, &leaf);
    int gone = dfd >= 0 && unlinkat(dfd, leaf, AT_REMOVEDIR) == 0;
    int err = errno;
    if (dfd >= 0) close(dfd);
    if (!gone && err != ENOENT) break; /* not empty, or not ours to take */
  }
}

/* Which directories a refresh sweeps of what killed writes beside a path left (a file in a
 * person's folder, untracked in git status): those the refresh writes into where
 * gr_view_put may go beside, each once a refresh. That is a directory on another file
 * system than the gitdir's temporary directory (a mount in workspace/), or every one while
 * that directory cannot be used (not made, not writable): a listing of each at every merge
 * costs more than the write itself in a large folder (7.6 ms for 20,000 files), for nothing
 * where writes never go beside. The directories swept are the ancestors of the last one
 * (items come in path order: a directory's paths are together), kept by their lengths in
 * dir; one deeper than len holds is swept again (a cost only). */
typedef struct vw_sweep {
  int probed;     /* the gitdir's temporary directory looked at */
  int everywhere; /* it cannot be used: every write goes beside */
  dev_t dev;      /* else its file system */
  char dir[PATH_MAX];
  size_t len[32], depth;
} vw_sweep;

/* Sweeps dfd, path's directory, where sweep says (above), after a write there (t's
 * directory then made, when it could be). */
static void vw_sweep_beside(const gr_view_tmp *t, vw_sweep *sw, int dfd, const char *path) {
  struct stat st;
  if (!sw->probed && t->at != -1) {
    sw->probed = 1;
    sw->everywhere = t->at < 0 || fstat(t->at, &st) != 0 || faccessat(t->at, ".", W_OK | X_OK, AT_EACCESS) != 0;
    if (!sw->everywhere) sw->dev = st.st_dev;
  }
  if (!sw->probed || (!sw->everywhere && (fstat(dfd, &st) != 0 || st.st_dev == sw->dev))) return;
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  while (sw->depth) { /* the swept directories that are not path's ancestors go */
    size_t l = sw->len[sw->depth - 1];
    if (l <= n && strncmp(path, sw->dir, l) == 0 && (l == 0 || path[l] == '/' || l == n)) break;
    sw->depth--;
  }
  if (sw->depth && sw->len[sw->depth - 1] == n) return; /* swept this refresh */
  gr_view_tmp_sweep(dfd, 1);
  if (n >= sizeof sw->dir || sw->depth == sizeof sw->len / sizeof *sw->len) return;
  memcpy(sw->dir, path, n);
  sw->dir[n] = '\0';
  sw->len[sw->depth++] = n;
}

/* Pass 2, in path order: M's content where the view holds B's. */
static void vw_write_m(const gitapi *g, git_repository *repo, gr_view_tmp *t, vw_sweep *sw, int root, vw_item *it,
                       int filemode) {
  const char *leaf;
  int dfd = gr_vw_parent(root, it->path, 0, &leaf);
  vw_side d;
  /* the path's identity before its content is read: gr_view_put renames over it only while
   * it is still this, so a save after the read is not overwritten (st_mode 0: nothing) */
  struct stat was = {0};
  if (dfd < 0 || fstatat(dfd, leaf, &was, AT_SYMLINK_NOFOLLOW) != 0) memset(&was, 0, sizeof was);
  int rerr = gr_vw_disk(g, dfd, leaf, &d, &it->m, &it->b);
  if (rerr) {
    it->failed = rerr; /* not read: never taken for the person's deletion (invariant 6) */
  } else if (gr_vw_holds(g, &d, &it->m, 1)) {
    it->done = 1;
  } else if (it->in_sub) {
    it->diverged = 1;
  } else if (it->m.kind == VW_OTHER) {
    it->done = 1; /* a submodule's commit: nothing to write */
  } else if (!it->index_ok || !gr_vw_holds(g, &d, &it->b, filemode)) {
    it->diverged = 1;
  } else {
    size_t made = dfd < 0 ? vw_missing(root, it->path) : 0;
    if (dfd < 0) dfd = gr_vw_parent(root, it->path, 1, &leaf); /* directories M brings */
    int put = dfd >= 0 ? gr_view_put(g, repo, t, dfd, leaf, &it->m.id, it->m.kind == VW_LINK, it->m.kind == VW_EXEC, &was)
                       : -1;
    int err = errno;
    if (dfd >= 0) vw_sweep_beside(t, sw, dfd, it->path);
    if (put == 0) {
      it->done = 1;
    } else {
      if (gr_vw_blocked(err) && !(err == EFBIG && vw_over_fsize(g, repo, &it->m.id))) it->diverged = 1; /* someone's on the way */
      else it->failed = err ? err : EIO; /* a full disk: B's stays, the next refresh writes it */
    }
    if (it->failed && made) vw_unmake_dirs(root, it->path, made);
  }
  if (dfd >= 0) close(dfd);
}

/* A directory of B's left where M has a file because a removal below it failed (pass 1) is
 * the refresh's own failure, not a person's directory: it takes that removal's errno, so
 * that the path is retried rather than counted as the person's in the same refresh. */
static void vw_below_failed(vw_item *items, size_t n, vw_item *it) {
  size_t len = strlen(it->path);
  for (size_t j = 0; j < n; j++)
    if (items[j].failed && strncmp(items[j].path, it->path, len) == 0 && items[j].path[len] == '/') {
      it->diverged = 0;
      it->failed = items[j].failed;
      return;
    }
}

/* The items of diff (a change of kind comes as a deletion and an addition of one path,
 * next to each other: one item). */
static vw_item *vw_items(const gitapi *g, git_diff *diff, size_t *count) {
  size_t n = g->diff_num_deltas(diff), k = 0;
  vw_item *v = calloc(n ? n : 1, sizeof *v);
  if (v == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    const git_diff_delta *d = g->diff_get_delta(diff, i);
    const char *path = d->new_file.path ? d->new_file.path : d->old_file.path;
    vw_item *it = (k && strcmp(v[k - 1].path, path) == 0) ? &v[k - 1] : &v[k++];
    it->path = path;
    if (d->status != GIT_DELTA_ADDED) vw_side_of(&d->old_file, &it->b);
    if (d->status != GIT_DELTA_DELETED) vw_side_of(&d->new_file, &it->m);
  }
  *count = k;
  return v;
}

/* git's racy-entry rule, which libgit2 applies only to a repository's own index (invariant
 * 8): an entry whose file changed in the second its stat data was taken (as new as the index
 * file read, since) is told from a clean one by content alone, and once the index is
 * written later it would pass for clean. Its size is zeroed where the disk does not hold its
 * content, as git does, so that git compares the content again. read_sec: the index file's
 * mtime before it was read. 0, or -1 when the index could not be changed. */
static int vw_smudge_racy(const gitapi *g, git_index *idx, int root, int64_t read_sec) {
  for (size_t i = 0, n = g->index_entrycount(idx); i < n; i++) {
    const git_index_entry *ie = g->index_get_byindex(idx, i);
    if (ie == NULL || ie->file_size == 0 || (int64_t)ie->mtime.seconds < read_sec || GIT_INDEX_ENTRY_STAGE(ie) != 0)
      continue;
    vw_side was, d;
    if (vw_disk_is(g, root, ie->path, ie, &was, &d) != 0) continue; /* held, or no blob */
    char path[PATH_MAX];
    git_index_entry en = *ie;
    snprintf(path, sizeof path, "%s", ie->path);
    en.path = path;
    en.file_size = 0;
    if (g->index_add(idx, &en) < 0) return -1;
  }
  return 0;
}

/* ---- the setting that keeps main's index split ----

 * Under core.splitIndex = true a person's git writes main's index split at each command
 * that writes it, so `update-index --no-split-index` alone does not hold: the reason names
 * where the setting is and the command that turns it off there. Read as git reads it: the
 * system's file ($GIT_CONFIG_SYSTEM, else /etc/gitconfig; none under GIT_CONFIG_NOSYSTEM),
 * the global ones ($GIT_CONFIG_GLOBAL, else $XDG_CONFIG_HOME/git/config or
 * ~/.config/git/config, then ~/.gitconfig), the repository's own, then what `git -c` passes
 * on (GIT_CONFIG_COUNT's, then GIT_CONFIG_PARAMETERS'): the last that sets it wins. Each
 * file is read by libgit2 on its own (its includes followed), looked at first without
 * blocking; Orket itself never takes a setting from them (repo.c): this only says why. */
#define VW_CONFIG_MAX ((off_t)4 << 20) /* a larger config file is not read for it */
#define VW_GLOBAL_FIX "git config --global core.splitIndex false (or, for workspace/ alone, git -C workspace config " \
                      "core.splitIndex false)"

typedef struct vw_split {
  int on;            /* core.splitIndex is true for the person's git in workspace/ */
  char where[400];   /* the file or variable that says so last */
  const char *level; /* what it is to git */
  const char *fix;   /* the command that turns it off there */
} vw_split;

/* core.splitIndex as the config file path says it (level: libgit2's for it): 1 true, 0
 * false, -1 not said (no such regular file, or one too large or unreadable) */
static int vw_split_in_file(const gitapi *g, git_repository *repo, const char *path,
                            git_config_level_t level) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return -1;
  int plain = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= VW_CONFIG_MAX;
  close(fd);
  git_config *cfg = NULL;
  int on = 0, v = -1;
  if (plain && g->config_new(&cfg) == 0 && g->config_add_file_ondisk(cfg, path, level, repo, 0) == 0 &&
      g->config_get_bool(&on, cfg, "core.splitIndex") == 0)
    v = on != 0;
  g->config_free(cfg);
  return v;
}

static void vw_split_file(const gitapi *g, git_repository *repo, vw_split *sp, const char *path,
                          git_config_level_t level, const char *what, const char *fix) {
  int v = path && *path ? vw_split_in_file(g, repo, path, level) : -1;
  if (v < 0) return;
  sp->on = v;
  snprintf(sp->where, sizeof sp->where, "%s", path);
  sp->level = what;
  sp->fix = fix;
}

/* One of git's single-quoted words at *p, as GIT_CONFIG_PARAMETERS holds them ('a'\''b' for
 * a'b), into out (cut at cap): 0 and *p past it, or -1 when *p holds none. */
static int vw_sq_word(const char **p, char *out, size_t cap) {
  const char *s = *p;
  size_t n = 0;
  if (*s != '\'') return -1;
  while (*s == '\'') {
    for (s++; *s && *s != '\''; s++)
      if (n + 1 < cap) out[n++] = *s;
    if (*s != '\'') return -1;
    s++;
    if (s[0] != '\\' || (s[1] != '\'' && s[1] != '!')) break;
    if (n + 1 < cap) out[n++] = s[1];
    s += 2;
  }
  out[n] = '\0';
  *p = s;
  return 0;
}

/* A `git -c` setting of core.splitIndex (value NULL: given without one, which is true) */
static void vw_split_param(const gitapi *g, vw_split *sp, const char *key, const char *value, const char *var) {
  int on = 1;
  if (strcasecmp(key, "core.splitIndex") != 0 || (value && g->config_parse_bool(&on, value) < 0)) return;
  sp->on = on != 0;
  snprintf(sp->where, sizeof sp->where, "%s", var);
  sp->level = "a `git -c`, or the environment";
  sp->fix = strcmp(var, "GIT_CONFIG_COUNT") == 0 ? "leave core.splitIndex out of GIT_CONFIG_COUNT's GIT_CONFIG_KEY_N"
                                                 : "leave core.splitIndex out of GIT_CONFIG_PARAMETERS";
}

static void vw_split_env(const gitapi *g, vw_split *sp) {
  const char *count = getenv("GIT_CONFIG_COUNT");
  long n = count ? strtol(count, NULL, 10) : 0;
  for (long i = 0; i < n && i < 1000; i++) {
    char kn[40], vn[40];
    snprintf(kn, sizeof kn, "GIT_CONFIG_KEY_%ld", i);
    snprintf(vn, sizeof vn, "GIT_CONFIG_VALUE_%ld", i);
    const char *k = getenv(kn), *v = getenv(vn);
    if (k && v) vw_split_param(g, sp, k, v, "GIT_CONFIG_COUNT");
  }
  const char *p = getenv("GIT_CONFIG_PARAMETERS");
  char key[256], value[256];
  while (p && *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n') p++;
    if (*p == '\0' || vw_sq_word(&p, key, sizeof key) != 0) break;
    const char *val = NULL;
    if (*p == '=') { /* 'key'='value' (git 2.31 on) */
      p++;
      if (vw_sq_word(&p, value, sizeof value) != 0) break;
      val = value;
    } else { /* 'key=value' (older), or 'key' alone */
      char *eq = strchr(key, '=');
      if (eq) *eq = '\0';
      val = eq ? eq + 1 : NULL;
    }
    vw_split_param(g, sp, key, val, "GIT_CONFIG_PARAMETERS");
  }
}

/* Whether the person's git keeps main's index split by the setting, and where it says so */
static void vw_split_setting(const gitapi *g, git_repository *repo, vw_split *sp) {
  memset(sp, 0, sizeof *sp);
  char path[PATH_MAX];
  const char *nosys = getenv("GIT_CONFIG_NOSYSTEM"), *sys = getenv("GIT_CONFIG_SYSTEM");
  int b = 0;
  if (!(nosys && g->config_parse_bool(&b, nosys) == 0 && b))
    vw_split_file(g, repo, sp, sys ? sys : "/etc/gitconfig", GIT_CONFIG_LEVEL_SYSTEM, "the system's git config",
                  VW_GLOBAL_FIX);
  const char *global = getenv("GIT_CONFIG_GLOBAL"), *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");
  if (global) {
    vw_split_file(g, repo, sp, global, GIT_CONFIG_LEVEL_GLOBAL, "your global git config", VW_GLOBAL_FIX);
  } else {
    if (xdg && *xdg) snprintf(path, sizeof path, "%s/git/config", xdg);
    else snprintf(path, sizeof path, "%s/.config/git/config", home ? home : "");
    if ((xdg && *xdg) || (home && *home))
      vw_split_file(g, repo, sp, path, GIT_CONFIG_LEVEL_XDG, "your global git config", VW_GLOBAL_FIX);
    if (home && *home) {
      snprintf(path, sizeof path, "%s/.gitconfig", home);
      vw_split_file(g, repo, sp, path, GIT_CONFIG_LEVEL_GLOBAL, "your global git config", VW_GLOBAL_FIX);
    }
  }
  snprintf(path, sizeof path, "%sconfig", g->repository_commondir(repo));
  vw_split_file(g, repo, sp, path, GIT_CONFIG_LEVEL_LOCAL, "the repository's own config",
                "git -C workspace config core.splitIndex false");
  vw_split_env(g, sp);
}

/* A split or sparse index of a person's git, which libgit2 cannot read, stops every refresh
 * until they act: the reason names what makes it readable, and the setting that splits it
 * again (above) with the command that turns it off. */
static void vw_index_fix(const gitapi *g, git_repository *repo, gr_err *e) {
  const char *fix = strstr(e->msg, "extension: 'link'") ? "git -C workspace update-index --no-split-index"
                    : strstr(e->msg, "extension: 'sdir'") ? "git -C workspace sparse-checkout reapply --no-sparse-index"
                                                          : NULL;
  size_t n = strlen(e->msg);
  const git_error *le = g->error_last();
  vw_split sp = {0};
  if (fix && strstr(e->msg, "'link'")) vw_split_setting(g, repo, &sp);
  if (sp.on) {
    snprintf(e->msg + n, sizeof e->msg - n,
             " (a form of git's index libgit2 cannot read, which your git writes again at each command while "
             "core.splitIndex is true in %s (%s): %s, then %s makes it readable for good)",
             sp.where, sp.level, sp.fix, fix);
  } else if (fix) {
    snprintf(e->msg + n, sizeof e->msg - n, " (a form of git's index libgit2 cannot read: %s makes it readable)", fix);
  } else if (le && le->klass == GIT_ERROR_INDEX) {
    /* damaged: git itself then fails on it too ("index file corrupt"), and nothing else says
     * what settles it; reset rewrites it from main, leaving the files on disk alone */
    snprintf(e->msg + n, sizeof e->msg - n,
             " (the index is damaged: 'rm workspace/.git/index && git -C workspace reset' writes it again from main, "
             "keeping your files; what you had staged is then unstaged)");
  }
}


/* Why the view is behind main while main's index is locked (its files written, the index
 * not): the file and what settles it. The lock is a person's git's while it runs (git holds
 * it through a commit's editor), and Orket never takes it (repo.c: only a lock a killed
 * write of Orket's left). */
#define VW_INDEX_LOCKED                                                                                              \
  "main's index: the index is locked: workspace/.git/index.lock is there, which a git command at work in workspace/ " \
  "holds while it runs (a commit whose editor is open, say); Orket never takes it away. If no git runs there, a "    \
  "killed one left it: rm workspace/.git/index.lock"

static int vw_same(const gitapi *g, const vw_side *x, const vw_side *y) {
  return x->kind == y->kind && (x->kind == VW_NONE || g->oid_equal(&x->id, &y->id));
}

/* Invariant 10: main moved by someone other than Orket's merges since the view's base B (a
 * person's reset, amend, rebase, update-ref, a commit on another base), to p, the commit
 * Orket's merge (if any) went from. Their move is diff(B, P): a path of the refresh's where
 * B's and P's sides differ is theirs, never written (3 takes it for not the view's own:
 * recorded, unless the disk holds M's already). A path of diff(B, P) the merge left alone
 * (M's side is B's there, so not an item) is recorded where the disk holds another version
 * than M's. Every other path of the merge is followed as ever. Decided by the trees, the
 * disk and the intent alone: a refresh run again after a crash decides the same. */
static int vw_person_guard(const gitapi *g, git_repository *repo, const git_oid *p, git_tree *base, git_tree *target,
                           int root, vw_item *items, size_t n, gr_paths *extra) {
  git_commit *pc = NULL;
  git_tree *pt = NULL;
  git_diff *d = NULL;
  int ret = 0;
  if (g->commit_lookup(&pc, repo, p) < 0 || g->commit_tree(&pt, pc) < 0) {
    /* P gone: nothing of the move is known to be Orket's, every path is taken for theirs */
    for (size_t i = 0; i < n; i++) items[i].index_ok = 0;
    g->commit_free(pc);
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    /* both read from the trees: the diff's side of a file added where a directory was is
     * nothing, the trees' a directory (and a directory on both sides is no path of theirs) */
    vw_side bs, ps;
    gr_vw_side_at(g, base, items[i].path, &bs);
    gr_vw_side_at(g, pt, items[i].path, &ps);
    if (!(bs.kind == VW_DIR && ps.kind == VW_DIR) && !vw_same(g, &ps, &bs)) items[i].index_ok = 0;
  }
  if (g->diff_tree_to_tree(&d, repo, base, pt, NULL) == 0) {
    for (size_t i = 0, k = g->diff_num_deltas(d); i < k && ret == 0; i++) {
      const git_diff_delta *dd = g->diff_get_delta(d, i);
      const char *path = dd->new_file.path ? dd->new_file.path : dd->old_file.path, *leaf;
      vw_side b, m, disk;
      gr_vw_side_at(g, base, path, &b);
      gr_vw_side_at(g, target, path, &m);
      if (!vw_same(g, &b, &m)) continue; /* an item: decided above */
      int dfd = gr_vw_parent(root, path, 0, &leaf);
      gr_vw_disk(g, dfd, leaf, &disk, &m, NULL);
      if (dfd >= 0) close(dfd);
      if (!gr_vw_holds(g, &disk, &m, 1) && !(m.kind == VW_DIR && disk.kind == VW_DIR)) ret = gr_paths_add(extra, path);
    }
  } else {
    ret = -1;
  }
  g->diff_free(d);
  g->tree_free(pt);
  g->commit_free(pc);
  return ret;
}

/* 1 with P when Orket's merge to tip is one the view has not followed yet: its intent names
 * tip, and the view's base commit is P (the usual case: no walk) or was never at tip or past
 * it (a person's move back to a tip the view followed once is theirs, not a merge again). */
int gr_vw_merged(const gitrepo *r, const gr_view_state *s, const git_oid *tip, git_oid *p) {
  const gitapi *g = &r->git;
  if (!gr_view_read_intent(r, tip, p)) return 0;
  if (!s->has_commit || g->oid_equal(&s->commit, p)) return 1;
  return !g->oid_equal(&s->commit, tip) && g->graph_descendant_of(r->repo, &s->commit, tip) != 1;
}

/* P for the intent of Orket's merge from main's commit mid: the previous intent's P while
 * the view has not followed that merge to mid (gr_vw_merged: its refresh failed), else mid.
 * Returns whether the view's last refresh did not follow Orket's own merge to mid (it
 * failed: a full disk), so that the merge runs that refresh again before it moves main; a
 * person's move of main is not this (the merge's own refresh tells it, as before). */
int gr_view_intent_from(const gitrepo *r, const git_oid *mid, git_oid *from) {
  gr_view_state s;
  git_oid p;
  gr_view_state_head(r, &s); /* its base and commit: the refresh after the move reads the rest */
  /* behind Orket's merge to mid: its refresh failed before the state was written (the
   * intent names mid), or part-way, its base then short of mid (the state's partial) */
  int behind = s.has_base && s.has_commit &&
               (r->git.oid_equal(&s.commit, mid) ? s.partial : gr_view_read_intent(r, mid, &p));
  if (!s.has_base || !gr_vw_merged(r, &s, mid, from)) *from = *mid;
  gr_view_state_free(&s);
  return behind;
}

/* The base when the state gives none (unreadable, or its tree gone from the object
 * database): the tree of P when Orket's merge moved main to tip (the tree the last refresh
 * most likely went to), else tip's own tree. Never main's index: it holds what the person
 * staged, which would count as the view's and be written over. A real tree of main's keeps
 * invariants 3 and 4 as they are; what is lost is only the paths main changed before and the
 * view had not followed, which keep their older files and entries (git status shows them). */
static void vw_prev_base(const gitrepo *r, const git_oid *tip, const git_oid *tip_tree, git_oid *out) {
  const gitapi *g = &r->git;
  git_oid p;
  git_commit *c = NULL;
  *out = *tip_tree;
  if (gr_view_read_intent(r, tip, &p) && g->commit_lookup(&c, r->repo, &p) == 0) *out = *g->commit_tree_id(c);
  g->commit_free(c);
}

/* The tree the view holds after a refresh from base to M that failed part-way (invariant
 * 6): base, but M's side at each path it wrote or removed. The next refresh starts from it,
 * so that what this one did is the view's own there: from base it read as a person's
 * change (a file removed for a directory as their deletion, a path written with M's entry
 * staged as neither base's nor the next M's), and main's file was never written. The paths
 * it recorded or failed at keep base's side (the disk and the index hold base's there). 0
 * with *out, or -1 (it could not be made: the base stays, as before). */
static int vw_partial_base(const gitapi *g, git_repository *repo, git_tree *base, const vw_item *items, size_t n,
                           git_oid *out) {
  git_index *ix = NULL;
  int rc = g->index_new(&ix) < 0 || g->index_read_tree(ix, base) < 0 ? -1 : 0;
  for (int pass = 0; rc == 0 && pass < 2; pass++) /* what goes, then what comes (a file and a directory trade places) */
    for (size_t i = 0; rc == 0 && i < n; i++) {
      const vw_item *it = &items[i];
      int gone = it->m.kind == VW_NONE;
      if (!it->done || it->failed || it->diverged || gone != (pass == 0)) continue;
      if (gone) {
        if (g->index_get_bypath(ix, it->path, 0) != NULL && g->index_remove_bypath(ix, it->path) < 0) rc = -1;
        continue;
      }
      if (it->m.kind != VW_FILE && it->m.kind != VW_EXEC && it->m.kind != VW_LINK) continue; /* nothing written */
      git_index_entry en;
      vw_entry(it, &en);
      if (g->index_add(ix, &en) < 0) rc = -1;
    }
  if (rc == 0 && g->index_write_tree_to(out, ix, repo) < 0) rc = -1;
  g->index_free(ix);
  return rc;
}

/* One refresh (gr_view_refresh). raced: NULL, or set when main's index changed on disk
 * between its read and the write (a person's git add, which takes the index's lock only for
 * its own write): the refresh then stops before writing, said nowhere, to be run again. */
static int vw_refresh(gitrepo *r, size_t *diverged, int *raced, gr_err *e) {
  const gitapi *g = &r->git;
  git_repository *repo = r->repo;
  gr_view_state s;
  git_oid tip_tree;
  git_tree *base = NULL, *target = NULL;
  git_diff *diff = NULL;
  git_index *idx = NULL;
  vw_item *items = NULL;
  size_t n = 0;
  int root = -1, rc, ret = -1;
  gr_view_tmp tmp = {.at = -1, .pid = (long)getpid()};
  vw_sweep sweep = {0}; /* what killed writes left beside a path, in the folders written (vw_sweep_beside) */
  gr_paths extra = {0}; /* paths of a person's move recorded besides the merge's (vw_person_guard) */
  *diverged = 0;
  gr_paths_free(&r->view_named);
  gr_view_state_read(r, &s);
  /* a person's branch (or a detached commit) checked out in the view: main's files are not
   * theirs to get, nor main's entries their index; the view waits, said (invariant 9) */
  char on[256];
  git_oid tip;
  int head = gr_head_on_main(g, repo, on, sizeof on, e);
  if (head == 0) {
    char why[sizeof e->msg];
    gr_vw_waits(g, repo, on, why, sizeof why);
    gr_fail(e, "EINVAL", "%s", why);
  }
  if (head != 1) goto out;
  git_commit *tc = NULL;
  if ((rc = g->reference_name_to_id(&tip, repo, "refs/heads/" GR_MAIN)) < 0 ||
      (rc = g->commit_lookup(&tc, repo, &tip)) < 0) {
    gr_git(g, e, rc, "main");
    goto out;
  }
  tip_tree = *g->commit_tree_id(tc);
  g->commit_free(tc);
  char ip[PATH_MAX];
  if ((size_t)snprintf(ip, sizeof ip, "%sindex", g->repository_path(repo)) >= sizeof ip) {
    gr_fail(e, "EINVAL", "gitdir path too long");
    goto out;
  }
  struct stat ist; /* before reading: a later write can only make more entries racy */
  int had = stat(ip, &ist) == 0;
  int64_t read_sec = had ? (int64_t)ist.st_mtim.tv_sec : 0;
  /* libgit2 opens it by name with a plain open(), which a FIFO there blocks for good */
  if (gr_plain_file(ip, "main's index", "remove it; 'git -C workspace reset' writes it again", e) != 0) goto out;
  if ((rc = g->index_open(&idx, ip)) < 0) { /* on its own file (invariant 8) */
    gr_git(g, e, rc, "main's index");
    vw_index_fix(g, repo, e);
    goto out;
  }
  /* a base guessed (the state unreadable, or its tree gone) may be older than what the view
   * holds: a path is then written only where main's index holds the base's entry, never on
   * the strength of M's entry alone (a person's unstaged restore of the older version would
   * match the guessed base, and be overwritten) */
  int guessed = 0;
  int lost = 0; /* the partial base was gone: the guessed one is never kept as a base */
  if (!s.has_base && s.unreadable) {
    /* a state that is there but cannot be read (empty or garbled after a power cut: it is not
     * synced) says nothing of what the view holds: not main's index (vw_prev_base) */
    vw_prev_base(r, &tip, &tip_tree, &s.base);
    s.has_base = 1;
    guessed = 1;
  }
  if (!s.has_base) {
    /* a repository from before the view had a state: its index was kept at what the files
     * were last checked out as; else (no index that can say) main's tree */
    if (g->index_has_conflicts(idx) || g->index_write_tree_to(&s.base, idx, repo) < 0) s.base = tip_tree;
    s.has_base = 1;
  }
  if (g->oid_equal(&s.base, &tip_tree)) {
    /* an older state, or a refresh that failed part-way to a commit whose changes a later
     * merge took back (the view holds main's tree): its commit is tip's from now on */
    if (!s.has_commit || s.partial) {
      s.commit = tip;
      s.has_commit = 1;
      s.partial = 0;
    }
    ret = 0;
    goto out;
  }
  /* the base is most often the tree the last refresh here went to, kept in memory: main's
   * root tree grows with the board, and reading it again inflated, hashed and parsed all of
   * it at every merge. An object never changes under its id, so the id alone decides. */
  if (r->view_tip && g->oid_equal(g->tree_id(r->view_tip), &s.base)) {
    base = r->view_tip;
    r->view_tip = NULL;
  }
  /* a partial base gone from the object database (its tree no commit's: a person's gc may
   * take it): the last base that was a commit's tree, guessed, so that a path done since is
   * written only where main's index holds that older entry, else recorded as the person's */
  if (!base && s.partial && g->tree_lookup(&base, repo, &s.base) < 0) {
    base = NULL;
    s.base = s.partial_from;
    guessed = 1;
    lost = 1;
  }
  /* a base gone from the object database (a person's gc): as for a state that cannot be read */
  if (!base && g->tree_lookup(&base, repo, &s.base) < 0) {
    vw_prev_base(r, &tip, &tip_tree, &s.base);
    guessed = 1;
    if (g->oid_equal(&s.base, &tip_tree)) { /* nothing to go by: the view is taken to hold main */
      ret = 0;
      goto out;
    }
  }
  if ((!base && (rc = g->tree_lookup(&base, repo, &s.base)) < 0) || (rc = g->tree_lookup(&target, repo, &tip_tree)) < 0 ||
      (rc = g->diff_tree_to_tree(&diff, repo, base, target, NULL)) < 0) {
    gr_git(g, e, rc, "main's change since the view's last refresh");
    goto out;
  }
  if ((items = vw_items(g, diff, &n)) == NULL) {
    gr_fail(e, "ENOMEM", "out of memory");
    goto out;
  }
  const char *wd = g->repository_workdir(repo);
  if (wd == NULL || (root = open(wd, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    gr_fail(e, "EIO", "cannot open main's working tree %s: %s", wd ? wd : "(none)", strerror(errno));
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    const git_index_entry *ie = g->index_get_bypath(idx, items[i].path, 0);
    items[i].index_ok = gr_vw_index_is(g, ie, &items[i].b) || (!guessed && gr_vw_index_is(g, ie, &items[i].m));
    /* a path in a submodule main's index holds (a tree of main's over the gitlink): that folder
     * is the person's checkout of another repository, never written into (invariant 4) */
    if ((items[i].in_sub = gr_in_gitlink(g, idx, items[i].path) != 0)) items[i].index_ok = 0;
  }
  /* invariant 10: P, main's commit Orket's merge to tip went from (tip itself when none did);
   * main was moved by Orket alone when the view's base B is P or an ancestor of it (as a
   * refresh that failed, or a person's commit on top, leaves it), or holds P's tree */
  git_oid p;
  int merged = gr_vw_merged(r, &s, &tip, &p);
  if (!merged) p = tip;
  int ours = 0;
  git_commit *pcm = NULL;
  if (g->commit_lookup(&pcm, repo, &p) == 0) ours = g->oid_equal(g->commit_tree_id(pcm), &s.base);
  g->commit_free(pcm);
  if (!ours && s.has_commit && !guessed) /* normally B == P: the descendant walk is rare */
    ours = g->oid_equal(&s.commit, &p) || g->graph_descendant_of(repo, &p, &s.commit) == 1;
  if (!ours && vw_person_guard(g, repo, &p, base, target, root, items, n, &extra) != 0) {
    gr_fail(e, "ENOMEM", "out of memory");
    goto out;
  }

  size_t cleared_failed = 0; /* removals of pass 1 that failed (vw_below_failed) */
  int filemode = gr_vw_filemode(g, repo);
  for (size_t i = n; i-- > 0;)
    if (items[i].b.kind != VW_NONE && items[i].b.kind != VW_OTHER && items[i].m.kind == VW_NONE) {
      vw_clear(g, root, &items[i], filemode);
      cleared_failed += items[i].failed != 0;
    }
  for (size_t i = 0; i < n; i++) {
    if (items[i].diverged || items[i].failed) continue;
    if (items[i].m.kind == VW_NONE) items[i].done = 1;
    else vw_write_m(g, repo, &tmp, &sweep, root, &items[i], filemode);
    if (items[i].diverged && cleared_failed) vw_below_failed(items, n, &items[i]);
  }
  int changed = 0;
  size_t failed = 0; /* paths a write of ours failed at: B's file and entry kept (invariant 6) */
  const vw_item *first = NULL;
  for (size_t i = 0; i < n; i++) {
    vw_item *it = &items[i];
    if (it->failed) {
      if (!failed++) first = it;
      continue;
    }
    const git_index_entry *ie = g->index_get_bypath(idx, it->path, 0);
    /* the person's staging is theirs (invariant 4): only B's or M's entry is replaced */
    if (!it->in_sub && (gr_vw_index_is(g, ie, &it->b) || (it->done && gr_vw_index_is(g, ie, &it->m)))) {
      int k = vw_index_set(g, idx, root, it);
      if (k < 0) {
        gr_git(g, e, -1, "main's index");
        goto out;
      }
      changed |= k;
    }
    if (it->diverged) {
      if (gr_paths_add(&s.diverged, it->path) != 0) {
        gr_fail(e, "ENOMEM", "out of memory");
        goto out;
      }
      ++*diverged;
      /* a name the journal cannot have is no failure of the refresh: the count stands */
      if (r->view_named.n < GR_VIEW_NAMED) (void)gr_paths_add(&r->view_named, it->path);
    } else {
      for (size_t j = 0; j < s.diverged.n; j++) /* resolved by main's own change */
        if (strcmp(s.diverged.v[j], it->path) == 0) {
          free(s.diverged.v[j]);
          s.diverged.v[j] = s.diverged.v[--s.diverged.n];
          break;
        }
    }
  }
  for (size_t i = 0; i < extra.n; i++) { /* vw_person_guard's, each once */
    size_t j = 0;
    while (j < s.diverged.n && strcmp(s.diverged.v[j], extra.v[i]) != 0) j++;
    if (j < s.diverged.n) continue;
    if (gr_paths_add(&s.diverged, extra.v[i]) != 0) {
      gr_fail(e, "ENOMEM", "out of memory");
      goto out;
    }
    ++*diverged;
    if (r->view_named.n < GR_VIEW_NAMED) (void)gr_paths_add(&r->view_named, extra.v[i]);
  }
  if (changed && vw_smudge_racy(g, idx, root, read_sec) != 0) {
    gr_git(g, e, -1, "main's index");
    goto out;
  }
  /* the index as read is the one replaced: a person's git add meanwhile (its lock taken and
   * renamed away since) is not written over. What is left is the moment between this look
   * and libgit2's taking the lock, not the whole refresh. */
  struct stat now;
  int has = stat(ip, &now) == 0;
  if (changed && (had != has || (has && (now.st_ino != ist.st_ino || now.st_size != ist.st_size ||
                                         now.st_mtim.tv_sec != ist.st_mtim.tv_sec ||
                                         now.st_mtim.tv_nsec != ist.st_mtim.tv_nsec)))) {
    gr_fail(e, "EAGAIN", "main's index changed while the view was refreshed (git at work in workspace/); "
                         "the next refresh takes it up");
    if (raced) *raced = 1;
    goto out;
  }
  /* the paths a write failed at are the reason said when the index cannot be written either
   * (a full disk fails both; the files are what a person misses) */
  /* recorded first: a kill inside the write leaves a lock recovery knows for Orket's (repo.c) */
  if (changed) gr_write_begin(g, repo, "index.lock");
  int index_held = !changed || (rc = g->index_write(idx)) >= 0; /* holds what was done (vw_partial_base) */
  if (changed) gr_write_end(g, repo);
  if (!index_held && !failed) {
    if (rc == GIT_ELOCKED) gr_fail(e, "ELOCKED", VW_INDEX_LOCKED);
    else gr_git(g, e, rc, "main's index");
    goto out;
  }
  /* what was written stays (done, found done by the next refresh) and so does the index for
   * it, but the base stays B and the state as it was: the next refresh writes the rest, and
   * records again what is the person's (invariant 6) */
  if (failed) {
    int err = first->failed;
    char more[64] = "";
    if (failed > 1) snprintf(more, sizeof more, " (and %zu more path%s)", failed - 1, failed > 2 ? "s" : "");
    /* the code from the errnos, not the message's text: a path can read "No space left on
     * device", and a long one cut the errno's text off */
    const char *code = "EIO";
    for (size_t i = 0; i < n; i++)
      if (items[i].failed == ENOSPC || items[i].failed == EDQUOT || items[i].failed == EFBIG) code = "ENOSPC";
    gr_fail(e, code, "cannot write workspace/%.*s%s: %s", 400, first->path, more, strerror(err));
    e->code = code;
    /* the base becomes what the view holds now, the state otherwise as it was read (what this
     * refresh recorded, it records again); not made or not written, or main's index not
     * written (it holds B's entries at the paths done: the next refresh takes up those only
     * from B): the base stays B, and the next merge's catch-up runs this refresh again */
    git_oid part;
    gr_view_state was;
    gr_err ignored;
    if (ours && !guessed && index_held && vw_partial_base(g, repo, base, items, n, &part) == 0 &&
        !g->oid_equal(&part, &s.base) && gr_sync(g, repo, &ignored) == 0) { /* the tree durable before named */
      gr_view_state_read(r, &was);
      if (was.has_base && g->oid_equal(&was.base, &s.base) && was.has_commit == s.has_commit &&
          (!s.has_commit || g->oid_equal(&was.commit, &s.commit))) {
        /* its commit the refresh's target: the view is on its way to tip, and a person's move
         * of main back past it (a reset to B, an amend) is theirs, not Orket's (invariant 10) */
        if (!was.partial) was.partial_from = s.base;
        was.partial = 1;
        was.base = part;
        was.commit = tip;
        was.has_commit = 1;
        (void)gr_view_state_write(r, &was, &ignored);
      }
      gr_view_state_free(&was);
    }
    goto out;
  }
  if (!ours) {
    /* said by status while a path this refresh listed is still listed (a move not from a
     * known commit: unnamed); the same move found again (no merge of Orket's to follow at
     * first, then one) keeps the paths it listed before */
    if (!s.moved || !s.has_commit || !g->oid_equal(&s.moved_from, &s.commit)) gr_paths_free(&s.moved_paths);
    s.moved = s.has_commit && !guessed;
    s.moved_from = s.commit;
    s.moved_to = p;
    for (size_t i = 0; s.moved && i < n; i++)
      if (items[i].diverged && gr_paths_push(&s.moved_paths, items[i].path) != 0) s.moved = 0;
    for (size_t i = 0; s.moved && i < extra.n; i++)
      if (gr_paths_push(&s.moved_paths, extra.v[i]) != 0) s.moved = 0;
    gr_paths_uniq(&s.moved_paths); /* each once, sorted once rather than scanned per path */
    if (!s.moved_paths.n) s.moved = 0; /* nothing of it listed: nothing to name */
  }
  /* a person's move with no merge of Orket's since: nothing written, and the base stays B,
   * so that the next merge still finds their whole move in diff(B, P), any number of moves */
  /* after a lost partial base, the guessed base is not kept either: saved, a later refresh
   * would take it for a real one and write over what a person restored at a path the failed
   * refresh had done; main's tree is the base, the paths listed stay the person's */
  if (ours || merged || lost) {
    s.base = tip_tree;
    s.commit = tip;
    s.has_commit = 1;
    s.partial = 0;
  }
  ret = 0;
out:
  if (ret == 0) {
    s.why[0] = '\0'; /* the view holds main's tree: nothing left behind */
    ret = gr_view_state_write(r, &s, e);
    if (ret == 0) gr_view_forget_why(r);
  }
  if (ret == 0 && target && g->oid_equal(&s.base, g->tree_id(target))) { /* the next refresh's base */
    g->tree_free(r->view_tip);
    r->view_tip = target;
    target = NULL;
  } else if (ret != 0 && base && r->view_tip == NULL) { /* a failed refresh's base is the next one's */
    r->view_tip = base;
    base = NULL;
  }
  if (root >= 0) close(root);
  if (tmp.at >= 0) close(tmp.at);
  free(items);
  gr_paths_free(&extra);
  gr_view_state_free(&s);
  g->diff_free(diff);
  g->tree_free(base);
  g->tree_free(target);
  g->index_free(idx); /* not read again first: freed, nothing half-made stays, and a read by name could block */
  r->view_diverged = *diverged;
  if (ret != 0 && !(raced && *raced)) gr_view_behind_why(r, e);
  return ret;
}

/* A refresh raced by a person's git is run again at once: what it wrote is done (invariant
 * 3), and the index it reads now holds what they staged. */
int gr_view_refresh(gitrepo *r, size_t *diverged, gr_err *e) {
  enum { TRIES = 3 };
  /* a killed writer's left-overs, looked for once a handle (listing the gitdir at every
   * merge cost more than the rest of the view's bookkeeping): what a process that died
   * before this handle opened left is removed at its first refresh, and a later death's by
   * the next handle's (a run's or resume's first refresh is at recover(), or at its first
   * merge when another run is going and recover() is skipped; status handles never refresh).
   * Meanwhile such a file is read by no one, and its name, its pid's, is taken again only by
   * a process of that pid: a state file's is truncated, a written file's is skipped (O_EXCL,
   * the next number) */
  if (!r->view_swept) {
    gr_view_sweep_tmp(r);
    gr_view_put_sweep(&r->git, r->repo); /* the written files' too: listed once, not at each refresh that writes */
    r->view_swept = 1;
  }
  for (int i = 1;; i++) {
    int raced = 0;
    int rc = vw_refresh(r, diverged, i < TRIES ? &raced : NULL, e);
    if (!raced) return rc;
  }
}
