/* viewside.h: the view's units' shared reading of a path (view.c, viewdisk.c, viewshow.c);
 * inside core/gitrepo only. */
#ifndef ORKET_GITREPO_VIEWSIDE_H
#define ORKET_GITREPO_VIEWSIDE_H

#include "internal.h"

/* what a view with a person's branch (or a detached commit, %s) checked out waits for */
#define GR_VIEW_WAITS_TAIL \
  " checked out, not main: it follows main again once main is checked out there (git -C workspace checkout main)"
#define GR_VIEW_WAITS "workspace/ has %s" GR_VIEW_WAITS_TAIL
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

/* view.c */
int gr_vw_merged(const gitrepo *r, const gr_view_state *s, const git_oid *tip, git_oid *p);

#endif
