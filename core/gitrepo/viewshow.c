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
    if (cap) snprintf(behind, cap, GR_VIEW_WAITS, on);
    ret = 1;
    goto out;
  }
  /* the last refresh failed (its why kept) and none has reached main's tree since (a base
   * other than main's tree alone says nothing: a person's commit in the view moves main).
   * A refresh that failed because another branch was checked out no longer holds now that
   * main is: git's checkout of main brought main's files, and the next refresh finds them
   * done (invariant 9), so the view is not said to be behind for it. */
  size_t wl = strlen(s.why), tl = strlen(GR_VIEW_WAITS_TAIL);
  int waited = wl > tl && strcmp(s.why + wl - tl, GR_VIEW_WAITS_TAIL) == 0;
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
