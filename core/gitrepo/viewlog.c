/* viewlog.c: main's reflog as main's view reads it (view.c): whose moves main's last ones
 * were. Orket moves main only by its merges (reflog message GR_MERGE_WHY) and the first
 * commit; a person's git in workspace/ moves it by their commits, and moves it back (or
 * anywhere) by git reset and git checkout -B, which write "reset: moving to" and
 * "branch: Reset to". Read by name, after gr_plain_file (a FIFO there fails, never hangs). */
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* how far back main's reflog is read for a person's last move: a merge a minute for a
 * working day is under this */
#define GR_LOG_DEPTH 2000

static int gr_log_orket(const char *m) { return m && strncmp(m, GR_MERGE_WHY, strlen(GR_MERGE_WHY)) == 0; }

static int gr_log_reset(const char *m) {
  return m && (strncmp(m, "reset: moving to ", 17) == 0 || strncmp(m, "branch: Reset to ", 17) == 0);
}

int gr_main_log_read(const gitapi *g, git_repository *repo, const git_oid *tip, gr_main_log *out) {
  char lp[PATH_MAX];
  gr_err ignored;
  git_reflog *log = NULL;
  *out = (gr_main_log){0};
  if ((size_t)snprintf(lp, sizeof lp, "%slogs/refs/heads/" GR_MAIN, g->repository_commondir(repo)) >= sizeof lp ||
      gr_plain_file(lp, "main's reflog", "", &ignored) != 0 || g->reflog_read(&log, repo, "refs/heads/" GR_MAIN) < 0)
    return -1;
  size_t n = g->reflog_entrycount(log);
  const git_reflog_entry *en = n ? g->reflog_entry_byindex(log, 0) : NULL;
  if (en && g->oid_equal(g->reflog_entry_id_new(en), tip)) {
    out->newest_to_tip = 1;
    out->before_tip = *g->reflog_entry_id_old(en);
    out->newest_merge = gr_log_orket(g->reflog_entry_message(en));
  }
  /* the newest move not Orket's: a reset is in effect until the person moves main again */
  for (size_t i = 0; i < n && i < GR_LOG_DEPTH; i++) {
    en = g->reflog_entry_byindex(log, i);
    const char *m = g->reflog_entry_message(en);
    if (gr_log_orket(m)) continue;
    if (gr_log_reset(m) && !g->oid_equal(g->reflog_entry_id_old(en), g->reflog_entry_id_new(en))) {
      out->reset = 1;
      out->reset_from = *g->reflog_entry_id_old(en);
      out->reset_to = *g->reflog_entry_id_new(en);
      out->merged_since = i > 0;
    }
    break;
  }
  g->reflog_free(log);
  return 0;
}

/* The base when the state cannot give one (unreadable, or its tree gone from the object
 * database): main's tree before its last move, from main's reflog when its newest entry is
 * the move to tip (the tree the last refresh most likely went to), else tip's own tree. Never
 * main's index: it holds what the person staged, which would count as the view's and be
 * written over. A real tree of main's keeps invariants 3 and 4 as they are; what is lost is
 * only the paths main changed before that move and the view had not followed, which keep
 * their older files and entries (git status shows them against main). */
void gr_view_prev_base(const gitapi *g, git_repository *repo, const git_oid *tip, const git_oid *tip_tree, git_oid *out) {
  gr_main_log ml;
  git_commit *c = NULL;
  *out = *tip_tree;
  if (gr_main_log_read(g, repo, tip, &ml) == 0 && ml.newest_to_tip && g->commit_lookup(&c, repo, &ml.before_tip) == 0)
    *out = *g->commit_tree_id(c);
  g->commit_free(c);
}

int gitrepo_view_reset(gitrepo *r, char from[GR_OID_HEX + 1], char to[GR_OID_HEX + 1]) {
  const gitapi *g = &r->git;
  git_oid tip;
  gr_main_log ml;
  if (g->reference_name_to_id(&tip, r->repo, "refs/heads/" GR_MAIN) < 0 || gr_main_log_read(g, r->repo, &tip, &ml) != 0 ||
      !ml.reset || !ml.merged_since)
    return 0;
  g->oid_tostr(from, GR_OID_HEX + 1, &ml.reset_from);
  g->oid_tostr(to, GR_OID_HEX + 1, &ml.reset_to);
  return 1;
}

int gr_main_reset_trees(const gitapi *g, git_repository *repo, const git_oid *tip, git_tree **from, git_tree **to) {
  gr_main_log ml;
  git_commit *ca = NULL, *cr = NULL;
  *from = *to = NULL;
  int ok = gr_main_log_read(g, repo, tip, &ml) == 0 && ml.reset && g->commit_lookup(&ca, repo, &ml.reset_from) == 0 &&
           g->commit_lookup(&cr, repo, &ml.reset_to) == 0 && g->commit_tree(from, ca) == 0 && g->commit_tree(to, cr) == 0;
  g->commit_free(ca);
  g->commit_free(cr);
  if (!ok) {
    g->tree_free(*from);
    g->tree_free(*to);
    *from = *to = NULL;
  }
  return ok;
}
