/* gitdiff.h: what a branch changed, read from a repository with libgit2 (loaded on first
 * use, a table of its own entry points: this capability only reads). The files two
 * commits' trees differ in, each with its unified diff, within caps; a binary file, or one
 * too large to show, is named and never shown. Also the lookups that choose the commit to
 * compare against: a name or id resolved to a commit, a merge base, a commit's parents.
 * Read by orket.serve.changes through lgitdiff.c (GET /v1/cards/{id}/diff). */
#ifndef ORKET_GITDIFF_H
#define ORKET_GITDIFF_H

#include <stddef.h>

#define GITDIFF_HEX 41 /* a commit id in hex and its NUL */

typedef struct gitdiff gitdiff;

typedef struct gd_err {
  const char *code; /* EGIT (libgit2 failed or is missing), ENOENT (no such commit), EINVAL */
  char msg[512];
} gd_err;

typedef struct gd_file {
  char *path;     /* the path in the tip (in the base for a deleted file) */
  char *old_path; /* the path in the base when it differs (a rename), else NULL */
  char status;    /* 'A' added, 'D' deleted, 'M' modified, 'R' renamed, 'T' type changed */
  int binary;     /* binary (or over the size a text diff is made for): named, not shown */
  size_t additions, deletions;
  char *patch; /* the file's unified diff; NULL when binary or omitted */
  size_t patch_len;
  int omitted; /* its diff would pass the byte cap: named, not shown */
} gd_file;

typedef struct gd_result {
  gd_file *files;
  size_t n;
  size_t changed;   /* files the trees differ in (n is at most max_files of them) */
  size_t bytes;     /* patch bytes given */
  int truncated;    /* files or diffs were left out for a cap */
} gd_result;

/* Opens the repository at path (a working tree or a .git folder). 0, or -1 with e set. */
int gitdiff_open(const char *path, gitdiff **out, gd_err *e);

/* Closes it and releases libgit2. NULL is ignored. */
void gitdiff_close(gitdiff *g);

/* spec (a commit id in hex, or a name such as refs/heads/main) as a commit id in hex.
 * 1 found, 0 no such commit, -1 error with e set. */
int gitdiff_resolve(gitdiff *g, const char *spec, char hex[GITDIFF_HEX], gd_err *e);

/* The best common ancestor of commits a and b. 1 found, 0 none, -1 error. */
int gitdiff_merge_base(gitdiff *g, const char *a, const char *b, char hex[GITDIFF_HEX], gd_err *e);

/* The parents of commit, in order, at most max of them (*n set). 0, or -1 with e set. */
int gitdiff_parents(gitdiff *g, const char *commit, char (*parents)[GITDIFF_HEX], size_t max, size_t *n, gd_err *e);

/* What tip's tree changed against base's: at most max_files files, their diffs together at
 * most max_bytes (a file whose diff would pass it is named, omitted). A text diff is made
 * only of files up to 1 MiB; larger ones count as binary. Renames are found. out is filled
 * (free it with gitdiff_result_free) on 0; -1 with e set, nothing to free. */
int gitdiff_between(gitdiff *g, const char *base, const char *tip, size_t max_files, size_t max_bytes,
                    gd_result *out, gd_err *e);

void gitdiff_result_free(gd_result *r);

#endif
