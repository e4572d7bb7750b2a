/* gitdiff.c: a branch's change as files and unified diffs (see gitdiff.h). It reads through
 * gitapi.h's table of libgit2's entry points, and opens its own handle on the repository, so
 * that this read-only capability stays apart from the repository one (core/gitrepo/). */
#define _GNU_SOURCE
#include "gitdiff.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "gitapi.h"

struct gitdiff {
  gitapi api;
  git_repository *repo;
};

#define GD_TEXT_MAX (1024 * 1024) /* a larger file is named as binary: its diff is not made */

static int gd_fail(gd_err *e, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  e->code = code;
  return -1;
}

/* libgit2's last error for what, as EGIT */
static int gd_git(const gitdiff *g, gd_err *e, const char *what) {
  const git_error *x = g->api.error_last();
  return gd_fail(e, "EGIT", "git: %s: %s", what, x && x->message ? x->message : "failed");
}

int gitdiff_open(const char *path, gitdiff **out, gd_err *e) {
  *out = NULL;
  if (path == NULL || *path == '\0') return gd_fail(e, "EINVAL", "empty path");
  gitdiff *g = calloc(1, sizeof *g);
  if (g == NULL) return gd_fail(e, "ENOMEM", "out of memory");
  char err[256];
  if (gitapi_open(&g->api, err, sizeof err) != 0) {
    gd_fail(e, "EGIT", "%s", err);
    free(g);
    return -1;
  }
  if (g->api.libgit2_init() < 0) {
    gd_fail(e, "EGIT", "libgit2 init failed");
    gitapi_close(&g->api);
    free(g);
    return -1;
  }
  /* no search upwards: the path is the repository, never a parent folder's */
  if (g->api.repository_open_ext(&g->repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0) {
    gd_fail(e, "ENOENT", "%s is not a git repository", path);
    gitdiff_close(g);
    return -1;
  }
  *out = g;
  return 0;
}

void gitdiff_close(gitdiff *g) {
  if (g == NULL) return;
  if (g->repo) g->api.repository_free(g->repo);
  g->api.libgit2_shutdown();
  gitapi_close(&g->api);
  free(g);
}

/* spec's commit in *c (free with object_free). 1, 0 when there is none, -1 error. */
static int gd_commit(gitdiff *g, const char *spec, git_commit **c, gd_err *e) {
  *c = NULL;
  if (spec == NULL || *spec == '\0' || strlen(spec) > 256) return gd_fail(e, "EINVAL", "bad commit name");
  git_object *o = NULL, *peeled = NULL;
  int rc = g->api.revparse_single(&o, g->repo, spec);
  if (rc == GIT_ENOTFOUND || rc == GIT_EAMBIGUOUS || rc == GIT_EINVALIDSPEC) return 0;
  if (rc < 0) return gd_git(g, e, spec);
  rc = g->api.object_peel(&peeled, o, GIT_OBJECT_COMMIT);
  g->api.object_free(o);
  if (rc < 0) return 0; /* not a commit (a tree, a blob) */
  *c = (git_commit *)peeled;
  return 1;
}

static void gd_hex(const gitdiff *g, const git_oid *id, char hex[GITDIFF_HEX]) {
  g->api.oid_tostr(hex, GITDIFF_HEX, id);
}

int gitdiff_resolve(gitdiff *g, const char *spec, char hex[GITDIFF_HEX], gd_err *e) {
  git_commit *c;
  int rc = gd_commit(g, spec, &c, e);
  if (rc <= 0) return rc;
  gd_hex(g, g->api.object_id((git_object *)c), hex);
  g->api.object_free((git_object *)c);
  return 1;
}

int gitdiff_merge_base(gitdiff *g, const char *a, const char *b, char hex[GITDIFF_HEX], gd_err *e) {
  git_commit *ca = NULL, *cb = NULL;
  int rc = gd_commit(g, a, &ca, e);
  if (rc == 1) rc = gd_commit(g, b, &cb, e);
  if (rc == 1) {
    git_oid base;
    int mrc = g->api.merge_base(&base, g->repo, g->api.object_id((git_object *)ca), g->api.object_id((git_object *)cb));
    if (mrc == 0) gd_hex(g, &base, hex);
    rc = mrc == 0 ? 1 : mrc == GIT_ENOTFOUND ? 0 : gd_git(g, e, "merge base");
  }
  g->api.object_free((git_object *)ca);
  g->api.object_free((git_object *)cb);
  return rc;
}

int gitdiff_parents(gitdiff *g, const char *commit, char (*parents)[GITDIFF_HEX], size_t max, size_t *n, gd_err *e) {
  *n = 0;
  git_commit *c;
  int rc = gd_commit(g, commit, &c, e);
  if (rc < 0) return -1;
  if (rc == 0) return gd_fail(e, "ENOENT", "no commit %s", commit);
  unsigned count = g->api.commit_parentcount(c);
  for (unsigned i = 0; i < count && *n < max; i++) gd_hex(g, g->api.commit_parent_id(c, i), parents[(*n)++]);
  g->api.object_free((git_object *)c);
  return 0;
}

static const char gd_status[] = {
    [GIT_DELTA_ADDED] = 'A',   [GIT_DELTA_DELETED] = 'D',    [GIT_DELTA_MODIFIED] = 'M',
    [GIT_DELTA_RENAMED] = 'R', [GIT_DELTA_TYPECHANGE] = 'T', [GIT_DELTA_COPIED] = 'A',
};

static char gd_status_of(git_delta_t s) {
  if ((size_t)s < sizeof gd_status && gd_status[s]) return gd_status[s];
  return 'M';
}

/* One changed file into f: its names, counts and (when it fits and is text) its diff.
 * *budget is what is left of the byte cap. 0, or -1 with e set. */
static int gd_file_of(gitdiff *g, git_diff *diff, size_t i, size_t *budget, gd_file *f, int *cut, gd_err *e) {
  git_patch *patch = NULL;
  if (g->api.patch_from_diff(&patch, diff, i) < 0) return gd_git(g, e, "diff of a file");
  const git_diff_delta *d = g->api.patch_get_delta(patch);
  const char *path = d->status == GIT_DELTA_DELETED ? d->old_file.path : d->new_file.path;
  f->path = strdup(path ? path : "");
  if (d->old_file.path && path && strcmp(d->old_file.path, path) != 0) f->old_path = strdup(d->old_file.path);
  f->status = gd_status_of(d->status);
  f->binary = (d->flags & GIT_DIFF_FLAG_BINARY) != 0;
  int rc = 0;
  if (f->path == NULL) rc = gd_fail(e, "ENOMEM", "out of memory");
  if (rc == 0 && !f->binary) {
    g->api.patch_line_stats(NULL, &f->additions, &f->deletions, patch);
    git_buf buf = {0};
    if (g->api.patch_to_buf(&buf, patch) < 0) {
      rc = gd_git(g, e, "diff text");
    } else if (buf.size > *budget) {
      f->omitted = 1;
      *cut = 1;
    } else {
      f->patch = malloc(buf.size + 1);
      if (f->patch == NULL) {
        rc = gd_fail(e, "ENOMEM", "out of memory");
      } else {
        memcpy(f->patch, buf.ptr, buf.size);
        f->patch[buf.size] = '\0';
        f->patch_len = buf.size;
        *budget -= buf.size;
      }
    }
    g->api.buf_dispose(&buf);
  }
  g->api.patch_free(patch);
  return rc;
}

int gitdiff_between(gitdiff *g, const char *base, const char *tip, size_t max_files, size_t max_bytes,
                    gd_result *out, gd_err *e) {
  memset(out, 0, sizeof *out);
  git_commit *cb = NULL, *ct = NULL;
  git_tree *tb = NULL, *tt = NULL;
  git_diff *diff = NULL;
  int rc = gd_commit(g, base, &cb, e);
  if (rc == 0) rc = gd_fail(e, "ENOENT", "no commit %s", base);
  if (rc == 1) {
    rc = gd_commit(g, tip, &ct, e);
    if (rc == 0) rc = gd_fail(e, "ENOENT", "no commit %s", tip);
  }
  if (rc == 1 && (g->api.commit_tree(&tb, cb) < 0 || g->api.commit_tree(&tt, ct) < 0)) rc = gd_git(g, e, "tree");
  if (rc == 1) {
    git_diff_options o;
    g->api.diff_options_init(&o, GIT_DIFF_OPTIONS_VERSION);
    o.max_size = GD_TEXT_MAX;
    if (g->api.diff_tree_to_tree(&diff, g->repo, tb, tt, &o) < 0 || g->api.diff_find_similar(diff, NULL) < 0)
      rc = gd_git(g, e, "diff");
  }
  if (rc == 1) {
    size_t n = g->api.diff_num_deltas(diff), take = n < max_files ? n : max_files, budget = max_bytes;
    out->changed = n;
    out->truncated = take < n;
    out->files = calloc(take ? take : 1, sizeof *out->files);
    if (out->files == NULL) rc = gd_fail(e, "ENOMEM", "out of memory");
    for (size_t i = 0; rc == 1 && i < take; i++) {
      out->n = i + 1; /* counted before it is filled: a failure half-way frees what it holds */
      if (gd_file_of(g, diff, i, &budget, &out->files[i], &out->truncated, e) != 0) rc = -1;
    }
    out->bytes = max_bytes - budget;
  }
  g->api.diff_free(diff);
  g->api.tree_free(tb);
  g->api.tree_free(tt);
  g->api.object_free((git_object *)cb);
  g->api.object_free((git_object *)ct);
  if (rc != 1) {
    gitdiff_result_free(out);
    return -1;
  }
  return 0;
}

void gitdiff_result_free(gd_result *r) {
  for (size_t i = 0; i < r->n; i++) {
    free(r->files[i].path);
    free(r->files[i].old_path);
    free(r->files[i].patch);
  }
  free(r->files);
  memset(r, 0, sizeof *r);
}
