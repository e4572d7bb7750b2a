/* merge.c: merges computed in the object database: a card (or the remote's main) into
 * main, whose ref move by compare-and-swap is the commit point and after which the view
 * follows (view.c); main into a card's branch. See gitrepo.h and docs/git.md. */
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
  gr_paths_free(&r->view_named);
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
    /* main stays, but a view left behind Orket's last merge (its refresh failed: a full
     * disk) catches up now, not at the next merge that changes main; a view that followed
     * costs the read of the state's head (the intent is read only when it is behind) */
    git_oid from;
    size_t diverged;
    if (gr_view_intent_from(r, &mid, &from)) return gr_view_refresh(r, &diverged, e) == 0 ? 0 : 1;
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
  /* the commit point: main moves by compare-and-swap, or not at all (EAGAIN); what it names
   * is durable before, the move itself after */
  /* (a fast-forward names commits made durable already, by their own commit or fetch) */
  if (*kind != GR_FASTFORWARD && gr_sync(g, r->repo, e) != 0) goto out;
  /* the intent first, or no move: the view's refresh, or one after a crash before it, tells
   * Orket's move from a person's by it (without it a person's earlier move would read as
   * Orket's). P stays the previous intent's while the view has not followed that merge (its
   * refresh failed), so that diff(B, P) is still the person's move alone. The intent becomes
   * durable with the ref, by the sync after the move. */
  /* A view left behind main by a refresh that failed (a full disk) catches up to main first,
   * the same refresh run again (idempotent): what that refresh had done already (a file
   * removed to make way for a directory) is then read as done, where a refresh from its base
   * straight to the new target would take it for a person's deletion. Failing again, the
   * merge goes on as before. */
  git_oid from;
  if (gr_view_intent_from(r, &mid, &from)) {
    size_t caught;
    gr_err ce;
    (void)gr_view_refresh(r, &caught, &ce);
    gr_view_intent_from(r, &mid, &from);
  }
  if (gr_view_intent(r, &from, &target, e) != 0) goto out;
  git_reference *moved = NULL;
  rc = g->reference_create_matching(&moved, r->repo, "refs/heads/" GR_MAIN, &target, 1, &mid, msg);
  g->reference_free(moved);
  /* the move returned: its lock is renamed to main, or removed (refused), so its record ends
   * here, not after the sync (a whole file system's, seconds on a busy disk, when a kill
   * would leave a record no lock of Orket's stands behind) */
  gr_write_end(g, r->repo);
  if (rc < 0) {
    gr_git(g, e, rc, "refs/heads/" GR_MAIN);
    goto out;
  }
  if (gr_sync(g, r->repo, e) != 0) goto out;
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
  /* an object this repository does not have is in no history of it (a repository made again:
   * graph_descendant_of says so only as an error of the object database) */
  git_commit *c = NULL;
  int rc = g->commit_lookup(&c, r->repo, &want);
  g->commit_free(c);
  if (rc == GIT_ENOTFOUND) return 0;
  if (rc < 0) return gr_git(g, e, rc, "history");
  rc = g->graph_descendant_of(r->repo, &tip, &want);
  if (rc == GIT_ENOTFOUND) return 0;
  return rc < 0 ? gr_git(g, e, rc, "history") : rc;
}

int gitrepo_merge_remote_to_main(gitrepo *r, const gr_sig *who, char *id, gr_merge_kind *kind,
                                 gr_paths *conflicts, gr_err *e) {
  conflicts->v = NULL;
  conflicts->n = 0;
  return gr_merge_into_main(r, GR_REMOTE_MAIN, "the remote's " GR_MAIN, who, id, kind, conflicts, e);
}

/* Replaces each conflict in idx by one entry: the text merged with conflict markers (a
 * regular file, when either side was a symlink); for a binary file the card's version; when
 * one side deleted the file, the other side's (no modification is dropped: the turn can
 * delete it again). */
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
      /* a symlink on either side: the markers are text to resolve, never a link's target
       * (the agents' file tools refuse symlinks, so a link could only be deleted) */
      if (ours->mode == GIT_FILEMODE_LINK || theirs->mode == GIT_FILEMODE_LINK) entry.mode = GIT_FILEMODE_BLOB;
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

/* Merges the commit src_ref names (src_name: how messages call it) into orket/<card>, the one
 * merge into a card's branch (gitrepo_merge_from_main, gitrepo_merge_remote_to_card). */
static int gr_merge_into_card(gitrepo *r, const char *card, const char *src_ref, const char *src_name,
                              const gr_sig *who, char *id, gr_merge_kind *kind, gr_paths *conflicts, gr_err *e) {
  const gitapi *g = &r->git;
  char bname[GR_CARD_MAX + 16], ref[GR_CARD_MAX + 32], why[2 * GR_CARD_MAX + 96];
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
  if (gr_ref_id(g, w, src_ref, &mid, e) != 0 || gr_ref_id(g, w, ref, &bid, e) != 0) goto out;
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
    size_t cap = 128 + strlen(src_name) + sizeof GR_CONFLICT_SUFFIX;
    if (g->index_has_conflicts(idx)) {
      if (gr_conflict_paths(g, idx, conflicts, e) != 0 || gr_resolve_with_markers(g, w, idx, conflicts, bname, e) != 0)
        goto out;
      for (size_t i = 0; i < conflicts->n; i++) cap += strlen(conflicts->v[i]) + 2;
      *kind = GR_CONFLICT;
    }
    if ((msg = malloc(cap)) == NULL) { gr_fail(e, "ENOMEM", "out of memory"); goto out; }
    /* a conflict's summary says so: a hand-in can tell from the card's head alone that its
     * markers were never resolved (orket.engine.pull_request, after a kill) */
    int n = snprintf(msg, cap, "Merge %s into %s%s\n", src_name, bname, conflicts->n ? GR_CONFLICT_SUFFIX : "");
    if (conflicts->n) n += snprintf(msg + n, cap - (size_t)n, "\nConflicts:\n");
    for (size_t i = 0; i < conflicts->n; i++) n += snprintf(msg + n, cap - (size_t)n, "\t%s\n", conflicts->v[i]);
    if (gr_commit_tree(g, w, idx, who, msg, bc, mc, &target, e) != 0) goto out;
  }
  snprintf(why, sizeof why, "orket: merge %.*s into %s", GR_CARD_MAX + 32, src_name, bname);
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

int gitrepo_merge_from_main(gitrepo *r, const char *card, const gr_sig *who, char *id,
                            gr_merge_kind *kind, gr_paths *conflicts, gr_err *e) {
  return gr_merge_into_card(r, card, "refs/heads/" GR_MAIN, GR_MAIN, who, id, kind, conflicts, e);
}

int gitrepo_merge_remote_to_card(gitrepo *r, const char *card, const gr_sig *who, char *id,
                                 gr_merge_kind *kind, gr_paths *conflicts, gr_err *e) {
  char src[GR_CARD_MAX + 64], name[GR_CARD_MAX + 32];
  conflicts->v = NULL;
  conflicts->n = 0;
  if (gr_check_card(card, e) != 0) return -1;
  snprintf(src, sizeof src, GR_REMOTE_BRANCHES GR_CARD_PREFIX "%s", card);
  snprintf(name, sizeof name, "the remote's " GR_CARD_PREFIX "%s", card);
  return gr_merge_into_card(r, card, src, name, who, id, kind, conflicts, e);
}
