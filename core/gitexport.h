/* gitexport.h: a commit's tree written out as plain files into a new directory (a sandbox's
 * copy of main), read from the repository's objects, never from a working tree. Uses
 * libgit2 through gitapi.h. */
#ifndef ORKET_GITEXPORT_H
#define ORKET_GITEXPORT_H

#include <stddef.h>

#define GX_OID_HEX 40

typedef struct gx_caps {
  size_t files;             /* at most this many files and links */
  unsigned long long bytes; /* whose contents total at most this many bytes */
} gx_caps;

typedef struct gx_result {
  char commit[GX_OID_HEX + 1]; /* the commit exported */
  size_t files;
  unsigned long long bytes;
} gx_result;

typedef struct gx_err {
  char msg[512];
  const char *code; /* "ENOENT", "EEXIST", "ETOOLARGE", "EINVAL", "EGIT" */
} gx_err;

/* Writes the tree of rev in the repository whose working tree (or git directory) is repo
 * into the new directory dest (its parent must exist; dest must not). rev is a commit id
 * (40 hex digits) or a branch name ("main": refs/heads/main). Folders, files with their
 * executable bit, and symbolic links (as links) are written; submodules are skipped.
 * Line endings and ident follow the commit's own .gitattributes; nothing of the
 * repository's working tree, index, HEAD or config is read.
 * The tree's size is checked against caps before anything is written (ETOOLARGE: it is
 * the agents' choice). Returns 0 with out filled, or -1 with e set (ENOENT: no such
 * repository or revision; EEXIST: dest exists); a failed export removes nothing it did
 * not make, and leaves dest for the caller to remove. */
int gitexport_tree(const char *repo, const char *rev, const char *dest, const gx_caps *caps, gx_result *out,
                   gx_err *e);

#endif
