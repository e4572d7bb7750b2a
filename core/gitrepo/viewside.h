/* viewside.h: the view's units' shared reading of a path (view.c, viewdisk.c, viewshow.c);
 * inside core/gitrepo only. */
#ifndef ORKET_GITREPO_VIEWSIDE_H
#define ORKET_GITREPO_VIEWSIDE_H

#include "internal.h"

/* what every reason of a view that waits for main to be checked out begins with (gr_vw_waits):
 * a refresh that failed for one no longer holds once main is (viewshow.c) */
#define GR_VIEW_WAITS_HEAD "workspace/ has "
/* what a view with a person's branch (or a detached commit, %s) checked out waits for */
#define GR_VIEW_WAITS                                                                                 \
  GR_VIEW_WAITS_HEAD "%s checked out, not main: it follows main again once main is checked out there " \
                     "(git -C workspace checkout main)"
/* what a view a stopped process left behind main's last merge says (gitrepo_view_status) */
#define GR_VIEW_UNFOLLOWED \
  "main's last merge is not followed in workspace/ yet: its refresh is under way, or the process was stopped before it"

enum { VW_NONE, VW_FILE, VW_EXEC, VW_LINK, VW_DIR, VW_OTHER };
extern const char *const gr_vw_kinds[]; /* each kind's name, as status shows it */

/* One side of a path: what a tree or the disk holds there. */
typedef struct vw_side {
  int kind;
  int hashed; /* id is known (a blob, or the disk's content hashed) */
  git_oid id;
  int64_t size;
} vw_side;

/* viewdisk.c */
int gr_vw_parent(int root, const char *path, int mk, const char **leaf);
int gr_vw_disk(const gitapi *g, int dfd, const char *leaf, vw_side *d, const vw_side *s1, const vw_side *s2);
int gr_vw_kind_of_mode(uint32_t mode);
int gr_vw_holds(const gitapi *g, const vw_side *d, const vw_side *s, int exec);
int gr_vw_filemode(const gitapi *g, git_repository *repo);
int gr_vw_index_is(const gitapi *g, const git_index_entry *ie, const vw_side *s);
int gr_vw_blocked(int err);
void gr_vw_side_at(const gitapi *g, git_tree *tree, const char *path, vw_side *s);

/* viewshow.c */
/* Why the view waits while HEAD is on something other than main (on: what, as
 * gr_head_on_main says it), into buf: a person's operation under way in workspace/ (a
 * rebase, git am, cherry-pick, revert, merge or bisect) with git's commands that finish or
 * undo it; a card's branch, which Orket commits on; else the branch or commit (GR_VIEW_WAITS). */
void gr_vw_waits(const gitapi *g, git_repository *repo, const char *on, char *buf, size_t cap);

/* view.c */
int gr_vw_merged(const gitrepo *r, const gr_view_state *s, const git_oid *tip, git_oid *p);

#endif
