/* gitexport.c: a commit's tree exported into a new directory (see gitexport.h): the sizes
 * summed from the object database's headers first, then libgit2's checkout aimed at the
 * directory (target_directory), which writes blobs and links and refuses unsafe names.
 * Nothing of the repository's working tree, index, HEAD or config is read (gx_detach):
 * the export is the commit's alone, filtered by the commit's own .gitattributes. */
#define _GNU_SOURCE
#include "gitexport.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "gitapi.h"

/* git's empty tree, the baseline of a checkout into an empty directory */
#define GX_EMPTY_TREE "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
/* room for "reading " and a path in a message */
#define GX_PATH_MSG 384

typedef struct gx_ctx {
  const gitapi *g;
  git_odb *odb;
  const gx_caps *caps;
  size_t files;
  unsigned long long bytes;
  int failed; /* 1: too large; 2: an object could not be read */
  gx_err *e;
} gx_ctx;

static int gx_fail(gx_err *e, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  e->code = code;
  return -1;
}

static int gx_git(const gitapi *g, gx_err *e, const char *what) {
  const git_error *ge = g->error_last();
  return gx_fail(e, "EGIT", "%s: %s", what, ge && ge->message ? ge->message : "libgit2 failed");
}

/* tree_walk's callback: counts each blob (files and links) and its size; past a cap, stops
 * the walk. Submodules (commits) are not exported, so not counted. */
static int gx_count(const char *root, const git_tree_entry *entry, void *payload) {
  gx_ctx *c = payload;
  if (c->g->tree_entry_type(entry) != GIT_OBJECT_BLOB) return 0;
  size_t len = 0;
  git_object_t type;
  if (c->g->odb_read_header(&len, &type, c->odb, c->g->tree_entry_id(entry)) < 0) {
    char what[GX_PATH_MSG];
    snprintf(what, sizeof what, "reading %s%s", root, c->g->tree_entry_name(entry));
    gx_git(c->g, c->e, what);
    c->failed = 2;
    return -1;
  }
  c->files++;
  c->bytes += len;
  if (c->files > c->caps->files || c->bytes > c->caps->bytes) {
    gx_fail(c->e, "ETOOLARGE", "the tree holds more than %zu files or %llu bytes (at %s%s)", c->caps->files,
            c->caps->bytes, root, c->g->tree_entry_name(entry));
    c->failed = 1;
    return -1;
  }
  return 0;
}

/* Cuts the repository off from what a person may hold in its working tree: an empty
 * config (no core.autocrlf, core.attributesFile or other setting of the clone's), the
 * export's own directory as the working tree, and an index in memory holding the exported
 * tree. checkout's filters read attributes from the working tree (now dest, holding only
 * what checkout writes of the commit) and the index: so from the commit's .gitattributes
 * alone, as git archive takes them from the tree. $GIT_DIR/info/attributes is read still,
 * as git archive reads it. dest must exist (libgit2 resolves it). */
static int gx_detach(const gitapi *g, git_repository *repo, git_tree *tree, const char *dest, gx_err *e) {
  git_config *cfg = NULL;
  git_index *idx = NULL;
  int rc = g->config_new(&cfg);
  if (rc == 0) rc = g->repository_set_config(repo, cfg);
  if (rc == 0) rc = g->repository_set_workdir(repo, dest, 0);
  if (rc == 0) rc = g->index_new(&idx);
  if (rc == 0) rc = g->index_read_tree(idx, tree);
  if (rc == 0) rc = g->repository_set_index(repo, idx);
  /* the repository holds its own references */
  if (idx) g->index_free(idx);
  if (cfg) g->config_free(cfg);
  return rc < 0 ? gx_git(g, e, "setting up the export") : 0;
}

/* The commit rev names: a full id, else the branch refs/heads/<rev>. */
static int gx_resolve(const gitapi *g, git_repository *repo, const char *rev, git_oid *id, gx_err *e) {
  if (strlen(rev) == GX_OID_HEX && strspn(rev, "0123456789abcdef") == GX_OID_HEX) {
    if (g->oid_fromstr(id, rev) < 0) return gx_git(g, e, rev);
    return 0;
  }
  char ref[256];
  if (snprintf(ref, sizeof ref, "refs/heads/%s", rev) >= (int)sizeof ref)
    return gx_fail(e, "EINVAL", "not a branch name: %s", rev);
  int valid = 0;
  if (g->reference_name_is_valid(&valid, ref) < 0 || !valid) return gx_fail(e, "EINVAL", "not a branch name: %s", rev);
  if (g->reference_name_to_id(id, repo, ref) < 0) return gx_fail(e, "ENOENT", "no branch %s", rev);
  return 0;
}

static int gx_export(const gitapi *g, git_repository *repo, const char *rev, const char *dest,
                     const gx_caps *caps, gx_result *out, gx_err *e) {
  git_oid id;
  if (gx_resolve(g, repo, rev, &id, e) != 0) return -1;
  git_commit *commit = NULL;
  git_tree *tree = NULL, *empty = NULL;
  git_odb *odb = NULL;
  int rc = -1;
  if (g->commit_lookup(&commit, repo, &id) < 0) {
    gx_fail(e, "ENOENT", "no commit %s", rev);
    goto done;
  }
  if (g->commit_tree(&tree, commit) < 0 || g->repository_odb(&odb, repo) < 0) {
    gx_git(g, e, "the commit's tree");
    goto done;
  }
  gx_ctx c = {.g = g, .odb = odb, .caps = caps, .e = e};
  if (g->tree_walk(tree, GIT_TREEWALK_PRE, gx_count, &c) < 0) {
    if (!c.failed) gx_git(g, e, "walking the tree");
    goto done;
  }
  if (mkdir(dest, 0755) != 0) {
    gx_fail(e, errno == EEXIST ? "EEXIST" : "EIO", "%s: %s", dest, strerror(errno));
    goto done;
  }
  if (gx_detach(g, repo, tree, dest, e) != 0) goto done;
  /* baseline: what dest holds before, nothing (the empty tree, which libgit2 knows without
   * the object database). Left unset, libgit2 takes HEAD's tree, and a path HEAD holds as
   * another type was left out or failed ("null OID cannot exist"). */
  git_oid empty_id;
  if (g->oid_fromstr(&empty_id, GX_EMPTY_TREE) < 0 || g->tree_lookup(&empty, repo, &empty_id) < 0) {
    gx_git(g, e, "the empty tree");
    goto done;
  }
  git_checkout_options co;
  if (g->checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION) < 0) {
    gx_git(g, e, "checkout options");
    goto done;
  }
  /* FORCE: everything the tree holds is written into the empty directory. NO_REFRESH: the
   * index in memory is not re-read from a file (it has none); DONT_UPDATE_INDEX: nor
   * changed. */
  co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DONT_UPDATE_INDEX | GIT_CHECKOUT_NO_REFRESH;
  co.target_directory = dest;
  co.baseline = empty;
  if (g->checkout_tree(repo, (const git_object *)tree, &co) < 0) {
    gx_git(g, e, dest);
    goto done;
  }
  g->oid_tostr(out->commit, sizeof out->commit, &id);
  out->files = c.files;
  out->bytes = c.bytes;
  rc = 0;
done:
  if (odb) g->odb_free(odb);
  if (empty) g->tree_free(empty);
  if (tree) g->tree_free(tree);
  if (commit) g->commit_free(commit);
  return rc;
}

int gitexport_tree(const char *repo_path, const char *rev, const char *dest, const gx_caps *caps, gx_result *out,
                   gx_err *e) {
  memset(out, 0, sizeof *out);
  e->msg[0] = '\0';
  e->code = NULL;
  gitapi api;
  char err[512];
  if (gitapi_open(&api, err, sizeof err) != 0) return gx_fail(e, "EGIT", "%s", err);
  const gitapi *g = &api;
  if (g->libgit2_init() < 0) {
    gx_git(g, e, "libgit2 init");
    gitapi_close(&api);
    return -1;
  }
  /* no user or system git config: an export is the same on every machine (a process-wide
   * setting gitrepo.c makes too) */
  static const int levels[] = {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL,
                               GIT_CONFIG_LEVEL_PROGRAMDATA};
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < sizeof levels / sizeof levels[0]; i++)
    rc = g->libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "");
  git_repository *repo = NULL;
  if (rc < 0) rc = gx_git(g, e, "libgit2 options");
  else if (g->repository_open_ext(&repo, repo_path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
    rc = gx_fail(e, "ENOENT", "%s: no repository", repo_path);
  else
    rc = gx_export(g, repo, rev, dest, caps, out, e);
  if (repo) g->repository_free(repo);
  g->libgit2_shutdown();
  gitapi_close(&api);
  return rc;
}
