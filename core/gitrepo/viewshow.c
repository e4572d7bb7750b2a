/* viewshow.c: what main's view shows a person (view.c's invariants 7, 9 and 10): the paths
 * where workspace/ keeps the person's version, each with main's side and the disk's, and
 * whether the view is behind main and why. */
#define _GNU_SOURCE
#include "internal.h"
#include "viewside.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void gr_view_paths_free(gr_view_path *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].path);
    free(v[i].view_at);
  }
  free(v);
}

/* What blocks the way to path when a leading component is not a directory (a person's file
 * or symlink where main has a directory): that component's length, and what it holds in
 * *d; 0 when nothing does. */
static size_t vw_in_way(const gitapi *g, int root, const char *path, vw_side *d, const vw_side *s) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s", path);
  for (char *slash = strchr(p, '/'); slash; slash = strchr(slash + 1, '/')) {
    struct stat st;
    *slash = '\0';
    int there = fstatat(root, p, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (there && !S_ISDIR(st.st_mode)) {
      const char *leaf;
      int dfd = gr_vw_parent(root, p, 0, &leaf);
      gr_vw_disk(g, dfd, leaf, d, s, NULL);
      if (dfd >= 0) close(dfd);
      return strlen(p);
    }
    if (!there) return 0;
    *slash = '/';
  }
  return 0;
}

static void vw_hex(const gitapi *g, const vw_side *s, char *out) {
  if (s->hashed) g->oid_tostr(out, GR_OID_HEX + 1, &s->id);
  else out[0] = '\0';
}

/* 1 when recorded path is still listed: the disk does not hold what main's tree holds there
 * (invariant 7); *m and *d its two sides, *way what blocks the way to it (vw_in_way). main's
 * size is read from the object's header in odb (NULL: left unknown), not from the blob: a
 * lookup inflated every listed path's whole content to learn its size. */
static int vw_listed(gitrepo *r, git_odb *odb, git_tree *tree, int root, const char *path, vw_side *m, vw_side *d,
                     size_t *way) {
  const gitapi *g = &r->git;
  gr_vw_side_at(g, tree, path, m);
  size_t len;
  git_object_t type;
  if (m->hashed && odb && g->odb_read_header(&len, &type, odb, &m->id) == 0 && type == GIT_OBJECT_BLOB)
    m->size = (int64_t)len;
  const char *leaf;
  int dfd = gr_vw_parent(root, path, 0, &leaf);
  gr_vw_disk(g, dfd, leaf, d, m, NULL);
  *way = dfd < 0 ? vw_in_way(g, root, path, d, m) : 0; /* else nothing, as far as path goes */
  if (dfd >= 0) close(dfd);
  if (*way && m->kind == VW_NONE && *way < PATH_MAX) {
    /* what is in the way is main's own there (the person committed their file at that
     * shorter path: main has nothing below it): the disk holds main's, as far as path goes */
    char pre[PATH_MAX];
    vw_side mp;
    memcpy(pre, path, *way);
    pre[*way] = '\0';
    gr_vw_side_at(g, tree, pre, &mp);
    if (gr_vw_holds(g, d, &mp, 1)) return 0;
  }
  return !(gr_vw_holds(g, d, m, 1) || (m->kind == VW_DIR && d->kind == VW_DIR));
}

/* 1 when the gitdir gd holds name (a directory, when dir), looked at without following it */
static int vw_gitdir_has(const char *gd, const char *name, int dir) {
  char p[PATH_MAX];
  struct stat st;
  return (size_t)snprintf(p, sizeof p, "%s%s", gd, name) < sizeof p && lstat(p, &st) == 0 &&
         (!dir || S_ISDIR(st.st_mode));
}

/* The first line of the gitdir's small regular file name into buf (""; never blocking, no
 * symlink followed) */
static void vw_gitdir_line(const char *gd, const char *name, char *buf, size_t cap) {
  char p[PATH_MAX];
  struct stat st;
  buf[0] = '\0';
  int fd = (size_t)snprintf(p, sizeof p, "%s%s", gd, name) < sizeof p
               ? open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
               : -1;
  if (fd < 0) return;
  ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, cap - 1) : -1;
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
}

/* A person's git operation under way in the gitdir gd, as git marks it: what it is, and
 * git's commands that finish it (NULL: none) and undo it. A rebase first (its steps may
 * leave a cherry-pick's marks), a sequence of picks or reverts known by its todo. */
typedef struct vw_op {
  const char *what, *go, *undo;
} vw_op;
static const vw_op *vw_op_under_way(const char *gd, char *head, size_t cap) {
  static const vw_op rebase = {"a rebase", "git -C workspace rebase --continue", "git -C workspace rebase --abort"};
  static const vw_op am = {"a git am", "git -C workspace am --continue", "git -C workspace am --abort"};
  static const vw_op pick = {"a cherry-pick", "git -C workspace cherry-pick --continue",
                             "git -C workspace cherry-pick --abort"};
  static const vw_op revert = {"a revert", "git -C workspace revert --continue", "git -C workspace revert --abort"};
  static const vw_op merge = {"a merge", "git -C workspace commit", "git -C workspace merge --abort"};
  static const vw_op bisect = {"a bisect", NULL, "git -C workspace bisect reset"};
  char todo[64];
  head[0] = '\0';
  if (vw_gitdir_has(gd, "rebase-merge", 1)) {
    vw_gitdir_line(gd, "rebase-merge/head-name", head, cap);
    return &rebase;
  }
  if (vw_gitdir_has(gd, "rebase-apply", 1)) {
    if (vw_gitdir_has(gd, "rebase-apply/applying", 0)) return &am;
    vw_gitdir_line(gd, "rebase-apply/head-name", head, cap);
    return &rebase;
  }
  if (vw_gitdir_has(gd, "MERGE_HEAD", 0)) return &merge;
  if (vw_gitdir_has(gd, "CHERRY_PICK_HEAD", 0)) return &pick;
  if (vw_gitdir_has(gd, "REVERT_HEAD", 0)) return &revert;
  if (vw_gitdir_has(gd, "sequencer", 1)) {
    vw_gitdir_line(gd, "sequencer/todo", todo, sizeof todo);
    return strncmp(todo, "revert", 6) == 0 ? &revert : &pick;
  }
  if (vw_gitdir_has(gd, "BISECT_LOG", 0)) return &bisect;
  return NULL;
}

/* 1 when s is a branch's ref fit to be quoted in a reason (a name git makes: no control,
 * quote or space; the file it came from is a person's to write) */
static int vw_ref_shown(const char *s) {
  if (strncmp(s, "refs/heads/", 11) != 0 || strlen(s) > 200) return 0;
  for (const char *c = s; *c; c++)
    if ((unsigned char)*c <= ' ' || *c == '\'' || *c == '"' || *c == '\\' || *c == 0x7f) return 0;
  return 1;
}

void gr_vw_waits(const gitapi *g, git_repository *repo, const char *on, char *buf, size_t cap) {
  char head[256], of[280] = "";
  const vw_op *op = vw_op_under_way(g->repository_path(repo), head, sizeof head);
  if (op) {
    /* git's own next step, never a checkout of main: that fails in the middle of one, or
     * carries the operation's commit onto main once its conflicts are staged */
    if (vw_ref_shown(head)) snprintf(of, sizeof of, " (rebasing %s)", head);
    if (op->go)
      snprintf(buf, cap, GR_VIEW_WAITS_HEAD "%s of yours under way%s: finish it with %s once its conflicts are "
               "resolved and added, or undo it with %s; it follows main again once that is done and main is checked "
               "out there", op->what, of, op->go, op->undo);
    else
      snprintf(buf, cap, GR_VIEW_WAITS_HEAD "%s of yours under way: %s ends it, checking out where it began; it "
               "follows main again once that is done and main is checked out there", op->what, op->undo);
    return;
  }
  size_t pl = strlen("refs/heads/" GR_CARD_PREFIX);
  if (strncmp(on, "refs/heads/" GR_CARD_PREFIX, pl) == 0 && gitrepo_card_valid(on + pl)) {
    /* a card's commit would move that branch under the person's index (git status there then
     * shows the card's change undone, and their next commit makes it so): it is refused, the
     * card blocked (gr_ref_in_view), until the branch is no longer checked out */
    snprintf(buf, cap, GR_VIEW_WAITS_HEAD "%s checked out, a card's branch, which Orket's commits move while the "
             "card is worked: one is refused while it is checked out here, the card blocked (your index would undo its "
             "change); to look at its work: git -C workspace switch --detach " GR_CARD_PREFIX "%s (or git -C workspace "
             "checkout main), then orket retry %s if it was blocked; it follows main again once main is checked out "
             "there", on, on + pl, on + pl);
    return;
  }
  snprintf(buf, cap, GR_VIEW_WAITS, on);
}

int gitrepo_view_refresh(gitrepo *r, size_t *diverged, gr_err *e) { return gr_view_refresh(r, diverged, e); }

size_t gitrepo_view_last(const gitrepo *r) { return r->view_diverged; }

const gr_paths *gitrepo_view_last_paths(const gitrepo *r) { return &r->view_named; }

int gitrepo_view_status(gitrepo *r, gr_view_path **out, size_t *count, char *behind, size_t cap, int forget, gr_err *e) {
  const gitapi *g = &r->git;
  gr_view_state s;
  git_commit *tc = NULL;
  git_tree *tree = NULL;
  git_odb *odb = NULL;
  git_oid tip;
  int rc, root = -1, ret = -1, dropped = 0;
  *out = NULL;
  *count = 0;
  if (cap) behind[0] = '\0';
  gr_view_state_read(r, &s);
  if ((rc = g->reference_name_to_id(&tip, r->repo, "refs/heads/" GR_MAIN)) < 0 ||
      (rc = g->commit_lookup(&tc, r->repo, &tip)) < 0 || (rc = g->commit_tree(&tree, tc)) < 0) {
    gr_git(g, e, rc, "main");
    goto out;
  }
  /* a person's branch checked out: the disk is that branch's, so no recorded path is
   * compared with main's (nor forgotten), and none listed (its commands would stage and
   * commit on that branch) */
  char on[256];
  int head = gr_head_on_main(g, r->repo, on, sizeof on, e);
  if (head < 0) goto out;
  if (head == 0) {
    if (cap) gr_vw_waits(g, r->repo, on, behind, cap);
    ret = 1;
    goto out;
  }
  /* the last refresh failed (its why kept) and none has reached main's tree since (a base
   * other than main's tree alone says nothing: a person's commit in the view moves main).
   * A refresh that failed because another branch was checked out no longer holds now that
   * main is: git's checkout of main brought main's files, and the next refresh finds them
   * done (invariant 9), so the view is not said to be behind for it. */
  /* (known by its beginning, which a reason cut short at GR_VIEW_WHY keeps) */
  const char *said = strncmp(s.why, "git: ", 5) == 0 ? s.why + 5 : s.why;
  int waited = strncmp(said, GR_VIEW_WAITS_HEAD, strlen(GR_VIEW_WAITS_HEAD)) == 0;
  if (cap && s.why[0] && !waited && (!s.has_base || !g->oid_equal(&s.base, g->tree_id(tree))))
    snprintf(behind, cap, "%s", s.why);
  /* no refresh failed, yet Orket's merge to main's tip (its intent, gr_view_intent) is not
   * the view's base: its refresh is under way, or the process was stopped between the ref
   * move and the refresh, and `git status` shows the merge as staged reverts until a refresh
   * runs (invariant 6). Nothing here tells the two apart: the words hold for both. */
  git_oid p;
  int unfollowed = !s.why[0] && s.has_base && !g->oid_equal(&s.base, g->tree_id(tree)) &&
                   ((s.partial && s.has_commit && g->oid_equal(&s.commit, &tip)) || gr_vw_merged(r, &s, &tip, &p));
  if (unfollowed && cap) snprintf(behind, cap, GR_VIEW_UNFOLLOWED);
  const char *wd = g->repository_workdir(r->repo);
  if (wd == NULL || (root = open(wd, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    gr_fail(e, "EIO", "cannot open main's working tree %s: %s", wd ? wd : "(none)", strerror(errno));
    goto out;
  }
  /* one object database for every path's size (vw_listed); none: sizes left unknown */
  if (s.diverged.n && g->repository_odb(&odb, r->repo) < 0) odb = NULL;
  gr_view_path *v = calloc(s.diverged.n ? s.diverged.n : 1, sizeof *v);
  if (v == NULL) {
    gr_fail(e, "ENOMEM", "out of memory");
    goto out;
  }
  size_t k = 0;
  for (size_t i = 0; i < s.diverged.n; i++) {
    const char *path = s.diverged.v[i];
    vw_side m, d;
    size_t way;
    if (!vw_listed(r, odb, tree, root, path, &m, &d, &way)) { /* invariant 7 */
      dropped = 1;
      continue;
    }
    if ((v[k].path = strdup(path)) == NULL || (way && (v[k].view_at = strndup(path, way)) == NULL)) {
      free(v[k].path);
      gr_view_paths_free(v, k);
      gr_fail(e, "ENOMEM", "out of memory");
      goto out;
    }
    v[k].main_kind = gr_vw_kinds[m.kind];
    vw_hex(g, &m, v[k].main_id);
    v[k].main_size = m.size;
    v[k].view_kind = gr_vw_kinds[d.kind];
    vw_hex(g, &d, v[k].view_id);
    v[k].view_size = d.kind == VW_NONE ? -1 : d.size;
    int ig = 0; /* unknown (an error) is said as not ignored: only a warning rides on it */
    v[k].ignored = m.kind == VW_NONE && g->ignore_path_is_ignored(&ig, r->repo, path) == 0 && ig;
    k++;
  }
  if (k > 1) qsort(v, k, sizeof *v, gr_cmp_str); /* path is the first field */
  *out = v;
  *count = k;
  ret = unfollowed ? 2 : 0;
  /* only under the git lock (forget): a merge's refresh writes the state too, and this
   * read-modify-write would put its base back */
  if (forget && dropped && s.has_base) {
    /* v is sorted and its paths unique (the state's reader deduplicates them): each is
     * pushed as it is, not looked for in what is kept so far (a scan per path, quadratic in
     * the listed paths) */
    gr_paths keep = {0};
    if (k && (keep.v = malloc(k * sizeof *keep.v)) == NULL) goto out;
    for (; keep.n < k && (keep.v[keep.n] = strdup(v[keep.n].path)) != NULL; keep.n++) continue;
    if (keep.n < k) { /* out of memory: nothing forgotten rather than a listed path lost */
      gr_paths_free(&keep);
      goto out;
    }
    gr_paths_free(&s.diverged);
    s.diverged = keep; /* the move's record goes with its last listed path (vw_state_body) */
    gr_err ignored;
    (void)gr_view_state_write(r, &s, &ignored); /* best effort: the next status drops them again */
  }
out:
  if (root >= 0) close(root);
  g->odb_free(odb);
  gr_view_state_free(&s);
  g->tree_free(tree);
  g->commit_free(tc);
  return ret;
}

int gitrepo_view_moved(gitrepo *r, char from[GR_OID_HEX + 1], char to[GR_OID_HEX + 1]) {
  const gitapi *g = &r->git;
  gr_view_state s;
  gr_view_state_read(r, &s);
  /* named while a path the move's refresh listed is still listed, as gitrepo_view_status
   * lists it (a state no lock let status forget from may still record a settled one); a
   * record an older orket wrote, without its paths: while any path is recorded */
  int moved = s.moved && s.diverged.n && !s.moved_paths.n;
  git_oid tip;
  git_commit *tc = NULL;
  git_tree *tree = NULL;
  const char *wd = g->repository_workdir(r->repo);
  int root = -1;
  git_odb *odb = NULL;
  if (s.moved && s.moved_paths.n && wd && g->reference_name_to_id(&tip, r->repo, "refs/heads/" GR_MAIN) == 0 &&
      g->commit_lookup(&tc, r->repo, &tip) == 0 && g->commit_tree(&tree, tc) == 0 &&
      (root = open(wd, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
    if (g->repository_odb(&odb, r->repo) < 0) odb = NULL;
    for (size_t i = 0; !moved && i < s.moved_paths.n; i++) {
      vw_side m, d;
      size_t way;
      moved = gr_paths_sorted_has(&s.diverged, s.moved_paths.v[i]) &&
              vw_listed(r, odb, tree, root, s.moved_paths.v[i], &m, &d, &way);
    }
  }
  if (root >= 0) close(root);
  g->odb_free(odb);
  g->tree_free(tree);
  g->commit_free(tc);
  if (moved) {
    g->oid_tostr(from, GR_OID_HEX + 1, &s.moved_from);
    g->oid_tostr(to, GR_OID_HEX + 1, &s.moved_to);
  }
  gr_view_state_free(&s);
  return moved;
}
