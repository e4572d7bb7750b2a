/* commit.c: a turn's commit on its card's branch, idempotent by its turn trailer, and the
 * trailer searches. See gitrepo.h and docs/git.md. */
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

/* ---- commits ------------------------------------------------------------------------------ */

static int gr_key_ok(const char *key) {
  size_t n = strlen(key);
  if (n == 0 || n > GR_KEY_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)key[i] < 0x21 || key[i] == 0x7f) return 0;
  return 1;
}

static void gr_keys_add(gr_keys *k, const char *value) {
  size_t vl = strlen(value) + 1;
  char *v = k->full || k->n >= GR_TURNS_MAX ? NULL : realloc(k->v, k->len + vl);
  if (v == NULL) {
    k->full = 1;
    return;
  }
  memcpy(v + k->len, value, vl);
  k->v = v;
  k->len += vl;
  k->n++;
}

/* Walks ref's history (from: that commit of it, else its tip; since_main: only commits not
 * in main) for a commit with the trailer key: value. 1 found (id set), 0 not, -1 error. keys
 * (or NULL): every value of key met is added to it, and the walk then goes on to the end
 * unless the value is found. */
static int gr_find_trailer_in(const gitapi *g, git_repository *repo, const char *ref, const git_oid *from,
                              const char *key, const char *value, int since_main, char *id, gr_keys *keys,
                              gr_err *e) {
  git_revwalk *walk = NULL;
  git_oid oid;
  int rc, found = 0;
  if ((rc = g->revwalk_new(&walk, repo)) < 0) return gr_git(g, e, rc, "revwalk");
  g->revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
  rc = from ? g->revwalk_push(walk, from) : g->revwalk_push_ref(walk, ref);
  if (rc == 0 && since_main && strcmp(ref, "refs/heads/" GR_MAIN) != 0)
    rc = g->revwalk_hide_ref(walk, "refs/heads/" GR_MAIN);
  if (rc < 0) {
    g->revwalk_free(walk);
    if (rc == GIT_ENOTFOUND)
    return gr_fail(e, "ENOENT", "no branch %s", strncmp(ref, "refs/heads/", 11) == 0 ? ref + 11 : ref);
    return gr_git(g, e, rc, ref);
  }
  while (!found && (rc = g->revwalk_next(&oid, walk)) == 0) {
    git_commit *c = NULL;
    if ((rc = g->commit_lookup(&c, repo, &oid)) < 0) break;
    git_message_trailer_array arr = {0};
    if (g->message_trailers(&arr, g->commit_message(c)) == 0) {
      for (size_t i = 0; i < arr.count && !found; i++) {
        if (strcmp(arr.trailers[i].key, key) != 0) continue;
        found = strcmp(arr.trailers[i].value, value) == 0;
        if (keys) gr_keys_add(keys, arr.trailers[i].value);
      }
      g->message_trailer_array_free(&arr);
    }
    g->commit_free(c);
    if (found) g->oid_tostr(id, GR_OID_HEX + 1, &oid);
  }
  g->revwalk_free(walk);
  if (!found && rc != GIT_ITEROVER) return gr_git(g, e, rc, "walking the history");
  return found;
}

/* Whether the card's branch (ref, at tip) has a commit of turn `key` not in main: 1 (id
 * set), 0 or -1, as gr_find_trailer_in. An attached card's handle answers "no" from its
 * list of the branch's turns when that list is of this very tip (see gr_att), and otherwise
 * walks the whole branch once to make the list. */
static int gr_turn_seen(const gitapi *g, const gr_wd *wd, const char *ref, const git_oid *tip, const char *key,
                        char *id, gr_err *e) {
  gr_att *a = wd->att;
  if (a && a->turns_known && g->oid_equal(&a->turns_tip, tip)) {
    int listed = 0;
    for (size_t i = 0, off = 0; i < a->turns.n && !listed; i++, off += strlen(a->turns.v + off) + 1)
      listed = strcmp(a->turns.v + off, key) == 0;
    if (!listed) return 0; /* else walk: the commit's id is wanted, and it may be in main now */
  }
  gr_keys keys = {0};
  int found = gr_find_trailer_in(g, wd->repo, ref, tip, GR_TURN_TRAILER, key, 1, id, a ? &keys : NULL, e);
  if (a && found == 0 && !keys.full) {
    free(a->turns.v);
    a->turns = keys;
    a->turns_tip = *tip;
    a->turns_known = 1;
  } else {
    free(keys.v);
  }
  return found;
}

/* After this handle committed turn `key` on top of `parent`: the list follows the tip. */
static void gr_turn_committed(const gitapi *g, const gr_wd *wd, const git_oid *parent, const git_oid *tip,
                              const char *key) {
  gr_att *a = wd->att;
  if (a == NULL || !a->turns_known) return;
  if (!g->oid_equal(&a->turns_tip, parent)) {
    a->turns_known = 0;
    return;
  }
  gr_keys_add(&a->turns, key);
  a->turns_tip = *tip;
  a->turns_known = !a->turns.full;
}

/* A linked worktree costs libgit2 an open of its repository whenever another is made
 * (git_worktree_add asks every one whether it has the branch checked out), so a card's is
 * removed once the card is done. Its branch stays. */
int gitrepo_worktree_remove(gitrepo *r, const char *card, int *removed, gr_err *e) {
  const gitapi *g = &r->git;
  *removed = 0;
  if (gr_check_card(card, e) != 0) return -1;
  git_worktree *wt = NULL;
  int rc = gr_wt_lookup(g, r->repo, card, &wt);
  if (rc == GIT_ENOTFOUND) return 0;
  if (rc < 0) return gr_fail(e, "EINVAL", "the worktree of card %s is broken; make it again", card);
  int ret = -1;
  if (g->worktree_validate(wt) == 0) { /* its files are there: nothing uncommitted may go */
    git_repository *w = NULL;
    gr_paths dirty = {NULL, 0};
    int updated;
    if ((w = gr_kept(r, card, NULL)) != NULL && gr_wt_gitdir_check(g, r->repo, card, e) != 0) {
      gr_forget(r, card);
      goto out;
    }
    if (w == NULL && gr_open_wt(r, card, NULL, wt, &w, e) != 0) goto out;
    gr_wd wd = {.repo = w};
    int st = gr_refresh_repo(g, &wd, &updated, e) == 0 ? gr_status_repo(g, &wd, &dirty, e) : -1;
    if (st == 0 && dirty.n)
      st = gr_fail(e, "EDIRTY", "card %s has uncommitted changes (%s%s); commit them first", card, dirty.v[0],
                   dirty.n > 1 ? ", ..." : "");
    gr_paths_free(&dirty);
    if (st != 0) goto out;
  }
  gr_forget(r, card); /* its files go now */
  git_worktree_prune_options po;
  (void)g->worktree_prune_options_init(&po, GIT_WORKTREE_PRUNE_OPTIONS_VERSION);
  po.flags = GIT_WORKTREE_PRUNE_VALID | GIT_WORKTREE_PRUNE_WORKING_TREE;
  if ((rc = g->worktree_prune(wt, &po)) < 0) {
    gr_git(g, e, rc, "removing the worktree");
    goto out;
  }
  *removed = 1;
  ret = 0;
out:
  g->worktree_free(wt);
  return ret;
}

int gitrepo_find_trailer(gitrepo *r, const char *branch, const char *key, const char *value,
                         int since_main, char *id, gr_err *e) {
  const gitapi *g = &r->git;
  char ref[GR_CARD_MAX + 64];
  if (gr_branch_ref(g, branch, ref, sizeof ref, e) != 0) return -1;
  if (key == NULL || value == NULL || !gr_key_ok(key) || strchr(key, ':'))
    return gr_fail(e, "EINVAL", "a trailer key is 1 to %d printable characters without ':'", GR_KEY_MAX);
  return gr_find_trailer_in(g, r->repo, ref, NULL, key, value, since_main, id, NULL, e);
}

/* message without trailing blank lines, then the turn trailer in its own paragraph. */
static char *gr_message(const char *message, const char *turn_key) {
  size_t n = strlen(message);
  while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' ' || message[n - 1] == '\r' ||
                   message[n - 1] == '\t'))
    n--;
  size_t cap = n + (turn_key ? strlen(turn_key) : 0) + sizeof GR_TURN_TRAILER + 8;
  char *m = malloc(cap);
  if (m == NULL) return NULL;
  if (turn_key) snprintf(m, cap, "%.*s\n\n" GR_TURN_TRAILER ": %s\n", (int)n, message, turn_key);
  else snprintf(m, cap, "%.*s\n", (int)n, message);
  return m;
}

/* 1 when path names a file beneath the working tree as the engine's workspace normalizes one:
 * relative, no empty, "." or ".." component, no trailing '/'. */
int gitrepo_path_valid(const char *path) {
  size_t n = strlen(path);
  if (n == 0 || n >= PATH_MAX - 2 || path[0] == '/' || path[n - 1] == '/') return 0;
  for (const char *c = path; *c;) {
    size_t cl = strcspn(c, "/");
    if (cl == 0 || (cl == 1 && c[0] == '.') || (cl == 2 && c[0] == '.' && c[1] == '.')) return 0;
    c += cl;
    if (*c == '/') c++;
  }
  return 1;
}

int gr_names_dotgit(const char *path) {
  for (const char *c = path; *c;) {
    size_t cl = strcspn(c, "/");
    if (cl == 4 && strncasecmp(c, ".git", 4) == 0) return 1;
    c += cl;
    if (*c == '/') c++;
  }
  return 0;
}

int gitrepo_commit(gitrepo *r, const char *card, const gr_sig *who, const char *message, const char *turn_key,
                   const gr_paths *only, const gr_paths *wrote, char *id, gr_commit_kind *kind, gr_paths *skipped,
                   gr_err *e) {
  const gitapi *g = &r->git;
  char bname[GR_CARD_MAX + 16], ref[GR_CARD_MAX + 32];
  gr_wd wd;
  git_repository *w = NULL;
  git_signature *sig = NULL;
  git_index *idx = NULL;
  git_reference *head = NULL;
  git_commit *parent = NULL;
  char *msg = NULL;
  git_oid tid, cid;
  gr_scan scan = {0};
  int rc, ret = -1, updated;
  if (skipped) {
    skipped->v = NULL;
    skipped->n = 0;
  }

  if (message == NULL || strspn(message, " \t\r\n") == strlen(message))
    return gr_fail(e, "EINVAL", "a commit needs a message");
  if (turn_key && !gr_key_ok(turn_key))
    return gr_fail(e, "EINVAL", "a turn key is 1 to %d printable characters without spaces", GR_KEY_MAX);
  int whole = only == NULL || only->n > GR_ONLY_MAX;
  for (size_t i = 0; !whole && i < only->n; i++) {
    if (!gitrepo_path_valid(only->v[i]))
      return gr_fail(e, "EINVAL", "paths[%zu]: %s is not a relative path beneath the working tree", i + 1, only->v[i]);
    whole = gr_names_dotgit(only->v[i]);
  }
  if (gr_make_sig(g, who, &sig, e) != 0) return -1;
  if (gr_open_card(r, card, &wd, e) != 0) goto out;
  w = wd.repo;
  gr_card_branch(card, bname, sizeof bname);
  snprintf(ref, sizeof ref, "refs/heads/%s", bname);
  /* a checkout left unfinished (merge from main) must land first, or this commit would
   * record the old files over the merged ones */
  if (gr_refresh_repo(g, &wd, &updated, e) != 0) goto out;
  /* the tip the commit goes on: read once, for the turn's question and as the parent (the
   * branch moves only if it still points there) */
  rc = wd.ref ? g->reference_lookup(&head, w, wd.ref) : g->repository_head(&head, w);
  if (rc < 0 || (rc = g->reference_peel((git_object **)&parent, head, GIT_OBJECT_COMMIT)) < 0) {
    gr_git(g, e, rc, "HEAD");
    goto out;
  }
  if (turn_key) {
    int found = gr_turn_seen(g, &wd, ref, g->commit_id(parent), turn_key, id, e);
    if (found < 0) goto out;
    if (found) {
      *kind = GR_EXISTS;
      ret = 0;
      goto out;
    }
  }
  if ((rc = g->repository_index(&idx, w)) < 0 || (rc = g->index_read(idx, 0)) < 0) {
    gr_git(g, e, rc, "index");
    goto out;
  }
  if (!whole && (whole = gr_stage_paths(g, w, idx, only, &scan, e)) < 0) goto out;
  if (whole && (gr_scan_run(g, w, &scan, 1, e) != 0 || gr_stage_all(g, idx, &scan, e) != 0)) goto out;
  /* walked whole without named paths (a program ran): the paths the turn's tools wrote are
   * still said when a rule kept them out, by a lookup each, the ignored tree never walked */
  if (gr_note_ignored(g, w, idx, only ? only : wrote, &scan, e) != 0) goto out;
  /* a tracked file over the cap that the card changed: neither that change nor a deletion is
   * committed, and the rest is not committed without it (scan.c) */
  if (gr_scan_grown(&scan, e) != 0) goto out;
  if ((rc = g->index_write_tree(&tid, idx)) < 0) { gr_git(g, e, rc, "tree"); goto out; }
  if (g->oid_equal(&tid, g->commit_tree_id(parent))) {
    *kind = GR_CLEAN;
    g->oid_tostr(id, GR_OID_HEX + 1, g->commit_id(parent));
  } else {
    if ((msg = gr_message(message, turn_key)) == NULL) { gr_fail(e, "ENOMEM", "out of memory"); goto out; }
    /* objects first, made durable, then the branch moves by compare-and-swap (refused when
     * it no longer points at the parent), made durable before the caller records it */
    git_reference *moved = NULL;
    char why[96];
    snprintf(why, sizeof why, "commit: %.80s", msg);
    why[strcspn(why, "\n")] = '\0';
    /* by ids: the tree was just written from the index, and reading it back to name it
     * would inflate, hash and parse all of main's root tree (it grows with the board) */
    const git_oid *parent_ids[1] = {g->commit_id(parent)};
    /* never under a person's checkout of the branch in workspace/ (git refuses the same for
     * another worktree's branch): the card is blocked, saying so, and its files stay */
    if (gr_ref_in_view(g, w, ref, e) != 0) goto out;
    rc = g->commit_create_from_ids(&cid, w, NULL, sig, sig, NULL, msg, &tid, 1, parent_ids);
    if (rc < 0) { gr_git(g, e, rc, "commit"); goto out; }
    if (gr_sync(g, w, e) != 0) goto out;
    rc = g->reference_create_matching(&moved, w, ref, &cid, 1, g->commit_id(parent), why);
    g->reference_free(moved);
    if (rc < 0) { gr_git(g, e, rc, "commit"); goto out; }
    if (gr_sync(g, w, e) != 0) goto out;
    if (turn_key) gr_turn_committed(g, &wd, g->commit_id(parent), &cid, turn_key);
    *kind = GR_COMMITTED;
    g->oid_tostr(id, GR_OID_HEX + 1, &cid);
  }
  /* the index follows HEAD only after HEAD moved; a crash before this leaves an index that
   * the next commit's staging rebuilds from the files anyway. Nothing changed and only named
   * paths staged: the index on disk already says the same (not rewritten: each write is a
   * new file, an inode the file system must find) */
  if ((*kind != GR_CLEAN || whole) && (rc = g->index_write(idx)) < 0) { gr_git(g, e, rc, "index write"); goto out; }
  gr_settle(g, &wd);
  if (skipped) { /* the notes move to the caller */
    *skipped = scan.notes;
    scan.notes.v = NULL;
    scan.notes.n = 0;
  }
  ret = 0;
out:
  if (ret != 0 && idx) (void)g->index_read(idx, 1); /* what was staged goes with the failure */
  gr_scan_free(&scan);
  free(msg);
  g->commit_free(parent);
  g->reference_free(head);
  g->index_free(idx);
  g->signature_free(sig);
  return ret;
}
