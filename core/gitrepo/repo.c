/* repo.c: the git layer's context: libgit2 loaded and set up, init and open of the
 * repository, errors, names, reading (heads, logs), recovery after a crash and the
 * consistency check. See gitrepo.h and docs/git.md. */
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


/* ---- errors ------------------------------------------------------------------------------ */

int gr_fail(gr_err *e, const char *code, const char *fmt, ...) {
  va_list ap;
  e->code = code;
  int n = snprintf(e->msg, sizeof e->msg, "git: ");
  va_start(ap, fmt);
  vsnprintf(e->msg + n, sizeof e->msg - (size_t)n, fmt, ap);
  va_end(ap);
  /* a full disk is the machine's state, not the repository's: the engine stops the run and
   * a resume carries on once there is room (libgit2 reports it only in its message) */
  if ((strcmp(code, "EIO") == 0 || strcmp(code, "EGIT") == 0) &&
      (strstr(e->msg, strerror(ENOSPC)) || strstr(e->msg, strerror(EDQUOT))))
    e->code = "ENOSPC";
  /* so is a write past the process's file-size limit (EFBIG, SIGXFSZ being caught: main.c),
   * named, as libgit2 says only "File too large"; without a limit set, EFBIG is the file
   * system's own largest file, which no resume gets past: left as it is */
  struct rlimit fl;
  if (strstr(e->msg, strerror(EFBIG)) && !strstr(e->msg, "LimitFSIZE") && getrlimit(RLIMIT_FSIZE, &fl) == 0 &&
      fl.rlim_cur != RLIM_INFINITY) {
    if (strcmp(code, "EIO") == 0 || strcmp(code, "EGIT") == 0) e->code = "ENOSPC";
    size_t used = strlen(e->msg);
    snprintf(e->msg + used, sizeof e->msg - used, " (the process's file-size limit: ulimit -f, systemd LimitFSIZE=)");
  }
  return -1;
}

int gr_no_fds(int os) {
  if (os == EMFILE || os == ENFILE) return os;
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  return errno == EMFILE || errno == ENFILE ? errno : 0;
}

/* Reports a libgit2 failure rc of `what`, with a code chosen from rc. */
int gr_git(const gitapi *g, gr_err *e, int rc, const char *what) {
  int os = errno; /* what the failed call left, read before anything here can change it */
  const git_error *le = g->error_last();
  /* libgit2 says an index whose file it could not open for its checksum "no longer exists",
   * hiding the reason: out of descriptors, that is a host's fault, said in the C library's
   * words as every other one (orket.engine.gitwork's HOST) */
  if (le && le->message && (os == EMFILE || os == ENFILE) && strstr(le->message, "no longer exists") != NULL)
    return gr_fail(e, "EGIT", "%s: %s: %s", what, le->message, strerror(os));
  /* so does any failure met out of descriptors: libgit2 reads a file it could not open as
   * missing (a branch "cannot be located", the card blocked for good); the C library's words
   * make it the host fault it is (orket.engine.gitwork's HOST: the run stops, a resume goes on) */
  int nofd = gr_no_fds(0); /* the probe's word only: errno may be an earlier call's */
  if (nofd && !(le && le->message && strstr(le->message, strerror(nofd))))
    return gr_fail(e, "EGIT", "%s: %s (%s)", what, le && le->message ? le->message : "unknown libgit2 error",
                   strerror(nofd));
  const char *code = rc == GIT_ENOTFOUND ? "ENOENT"
                     : rc == GIT_ELOCKED  ? "ELOCKED"
                     : rc == GIT_EMODIFIED ? "EAGAIN"
                     : rc == GIT_ECONFLICT ? "EDIRTY"
                     : rc == GIT_EEXISTS   ? "EEXIST"
                     : rc == GIT_EOWNER    ? "EACCES" /* owned by another user: libgit2 refuses (gr_check_owner) */
                                           : "EGIT";
  return gr_fail(e, code, "%s: %s", what, le && le->message ? le->message : "unknown libgit2 error");
}

void gr_paths_free(gr_paths *p) {
  for (size_t i = 0; i < p->n; i++) free(p->v[i]);
  free(p->v);
  p->v = NULL;
  p->n = 0;
}

void gr_commits_free(gr_commit *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].summary);
    free(v[i].author_name);
    free(v[i].author_email);
  }
  free(v);
}

int gr_paths_add(gr_paths *p, const char *path) {
  return gr_paths_has(p, path) ? 0 : gr_paths_push(p, path);
}

int gr_paths_push(gr_paths *p, const char *path) {
  char **v = realloc(p->v, (p->n + 1) * sizeof *v);
  if (v == NULL) return -1;
  p->v = v;
  if ((v[p->n] = strdup(path)) == NULL) return -1;
  p->n++;
  return 0;
}

int gr_paths_has(const gr_paths *p, const char *path) {
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->v[i], path) == 0) return 1;
  return 0;
}

void gr_paths_uniq(gr_paths *p) {
  if (p->n < 2) return;
  qsort(p->v, p->n, sizeof *p->v, gr_cmp_str);
  size_t k = 1;
  for (size_t i = 1; i < p->n; i++) {
    if (strcmp(p->v[i], p->v[k - 1]) == 0) free(p->v[i]);
    else p->v[k++] = p->v[i];
  }
  p->n = k;
}

int gr_paths_sorted_has(const gr_paths *p, const char *path) {
  return p->n && bsearch(&path, p->v, p->n, sizeof *p->v, gr_cmp_str) != NULL;
}

int gr_cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- names and checks -------------------------------------------------------------------- */

int gitrepo_card_valid(const char *card) {
  size_t n = card ? strlen(card) : 0;
  if (n == 0 || n > GR_CARD_MAX || card[0] == '.' || card[0] == '-') return 0;
  for (size_t i = 0; i < n; i++) {
    char c = card[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    if (!ok) return 0;
  }
  if (strstr(card, "..")) return 0;
  return !(n >= 5 && strcmp(card + n - 5, ".lock") == 0);
}

int gr_check_card(const char *card, gr_err *e) {
  if (!gitrepo_card_valid(card))
    return gr_fail(e, "EINVAL", "not a usable card id: \"%.120s\"", card ? card : "");
  return 0;
}

static int gr_sig_field_ok(const char *s) {
  if (s == NULL || *s == '\0' || strlen(s) > 256) return 0;
  return strpbrk(s, "<>\n\r") == NULL;
}

int gr_make_sig(const gitapi *g, const gr_sig *who, git_signature **out, gr_err *e) {
  if (who == NULL || !gr_sig_field_ok(who->name) || !gr_sig_field_ok(who->email))
    return gr_fail(e, "EINVAL", "author name and email must be non-empty, without '<', '>' or newlines");
  int rc = g->signature_now(out, who->name, who->email);
  return rc < 0 ? gr_git(g, e, rc, "signature") : 0;
}

int gr_branch_ref(const gitapi *g, const char *branch, char *buf, size_t cap, gr_err *e) {
  int valid = 0;
  if (branch == NULL || (size_t)snprintf(buf, cap, "refs/heads/%s", branch) >= cap ||
      g->reference_name_is_valid(&valid, buf) < 0 || !valid)
    return gr_fail(e, "EINVAL", "not a valid branch name: \"%.120s\"", branch ? branch : "");
  return 0;
}

void gr_card_branch(const char *card, char *buf, size_t cap) {
  snprintf(buf, cap, GR_CARD_PREFIX "%s", card);
}

int gr_ref_id(const gitapi *g, git_repository *repo, const char *ref, git_oid *id, gr_err *e) {
  int rc = g->reference_name_to_id(id, repo, ref);
  if (rc == GIT_ENOTFOUND)
    return gr_fail(e, "ENOENT", "no branch %s", strncmp(ref, "refs/heads/", 11) == 0 ? ref + 11 : ref);
  return rc < 0 ? gr_git(g, e, rc, ref) : 0;
}

int gr_abspath(const char *path, char *buf, size_t cap, gr_err *e) {
  if (path == NULL || *path == '\0') return gr_fail(e, "EINVAL", "empty path");
  if (path[0] == '/') {
    if (strlen(path) >= cap) return gr_fail(e, "EINVAL", "path too long");
    snprintf(buf, cap, "%s", path);
  } else {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) return gr_fail(e, "EIO", "cannot read the current directory: %s", strerror(errno));
    if ((size_t)snprintf(buf, cap, "%s/%s", cwd, path) >= cap) return gr_fail(e, "EINVAL", "path too long");
  }
  size_t n = strlen(buf);
  while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
  return 0;
}

/* ---- the context ------------------------------------------------------------------------- */

/* gr_lib_load loads libgit2's table into api (gitapi.h) and takes a reference of libgit2's
 * set-up (git_libgit2_init/shutdown are counted); gr_lib_acquire also makes the
 * process-wide settings Orket relies on:
 * objects and refs fsync'd (a power cut after a commit keeps it), and no user or system git
 * config (the workspace must behave the same on every machine). Idempotent, so every
 * context sets them. gr_lib_release undoes it. */
int gr_lib_load(gitapi *api, gr_err *e) {
  char err[512];
  if (gitapi_open(api, err, sizeof err) != 0) return gr_fail(e, "EGIT", "%s", err);
  if (api->libgit2_init() < 0) {
    gr_git(api, e, -1, "libgit2 init");
    gitapi_close(api);
    return -1;
  }
  return 0;
}

static int gr_lib_acquire(gitapi *api, gr_err *e) {
  if (gr_lib_load(api, e) != 0) return -1;
  const gitapi *g = api;
  static const int levels[] = {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL,
                               GIT_CONFIG_LEVEL_PROGRAMDATA};
  /* libgit2 writes objects, refs and the index unsynced; each ref move is made durable by
   * gr_sync, before (what it will name) and after (the move itself): git's
   * core.fsyncMethod=batch, two calls where libgit2's own syncs took two for each file */
  int rc = g->libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 0);
  /* A tree written from an index is not checked object by object: every blob in it was
   * written (or read) by libgit2 here. Strict creation opens each of the tree's objects, so
   * every commit and merge cost as much as main's whole tree held. */
  if (rc == 0) rc = g->libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 0);
  /* A tree is kept in libgit2's object cache only up to 4 KiB by default (about a hundred
   * entries): a larger directory's tree was read from its pack, inflated and parsed again at
   * every lookup of a path in it, so listing the view's paths in a folder of thousands was
   * quadratic (10,000 diverged files: 30 s). Such trees are kept (the cache's whole size
   * stays bounded, 256 MiB by default). */
  if (rc == 0) rc = g->libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, (size_t)GR_TREE_CACHE_MAX);
  for (size_t i = 0; rc == 0 && i < sizeof levels / sizeof levels[0]; i++)
    rc = g->libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "");
  if (rc < 0) {
    gr_git(g, e, rc, "libgit2 options");
    g->libgit2_shutdown();
    gitapi_close(api);
    return -1;
  }
  return 0;
}

void gr_lib_release(gitapi *api) {
  api->libgit2_shutdown();
  gitapi_close(api);
}

int gr_is_shallow(const gitapi *g, git_repository *repo) {
  char p[PATH_MAX];
  struct stat st;
  return (size_t)snprintf(p, sizeof p, "%sshallow", g->repository_commondir(repo)) < sizeof p && stat(p, &st) == 0 &&
         st.st_size > 0;
}

/* The context for repo, which takes over api and repo (both released on failure). */
static int gr_new(gitapi *api, git_repository *repo, const char *path, gitrepo **out, gr_err *e) {
  gitrepo *r = calloc(1, sizeof *r);
  if (r == NULL || (r->path = strdup(path)) == NULL) {
    free(r);
    api->repository_free(repo);
    gr_lib_release(api);
    return gr_fail(e, "ENOMEM", "out of memory");
  }
  r->git = *api;
  r->repo = repo;
  *out = r;
  return 0;
}

void gitrepo_close(gitrepo *r) {
  if (r == NULL) return;
  const gitapi *g = &r->git;
  gr_write_end(g, r->repo); /* a write that failed before its end was said (a merge refused) */
  gr_forget(r, NULL);
  while (r->natt) gr_att_drop(r, r->natt - 1);
  free(r->att);
  while (r->nspare) gr_spare_free(r, --r->nspare, 1);
  g->repository_free(r->walk);
  g->tree_free(r->view_tip);
  g->repository_free(r->repo);
  gr_paths_free(&r->view_named);
  free(r->path);
  gitapi api = r->git; /* released last: the calls above are libgit2's */
  free(r);
  gr_lib_release(&api);
}

const char *gitrepo_path(const gitrepo *r) { return r->path; }

int gr_plain_file(const char *path, const char *what, const char *fix, gr_err *e) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return 0;
  if (fd < 0) return gr_fail(e, "EIO", "%s %s cannot be read: %s", what, path, strerror(errno));
  int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  close(fd);
  if (ok) return 0;
  return gr_fail(e, "EUNSAFE", "%s %s is %s, not a regular file: never opened (%s)", what, path,
                 S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISDIR(st.st_mode) ? "a directory" : S_ISSOCK(st.st_mode) ? "a socket"
                 : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "not a regular file", fix);
}

int gr_head_on_main(const gitapi *g, git_repository *repo, char *target, size_t cap, gr_err *e) {
  git_reference *head = NULL;
  char hp[PATH_MAX];
  /* libgit2 reads HEAD by name with a plain open(): a FIFO there would block for good */
  if ((size_t)snprintf(hp, sizeof hp, "%sHEAD", g->repository_path(repo)) < sizeof hp &&
      gr_plain_file(hp, "HEAD", "remove it; 'git -C workspace symbolic-ref HEAD refs/heads/main' writes it again", e) != 0)
    return -1;
  int rc = g->reference_lookup(&head, repo, "HEAD");
  if (rc < 0) return gr_git(g, e, rc, "HEAD");
  const char *t = g->reference_type(head) == GIT_REFERENCE_SYMBOLIC ? g->reference_symbolic_target(head) : NULL;
  int ok = t && strcmp(t, "refs/heads/" GR_MAIN) == 0;
  snprintf(target, cap, "%s", t ? t : "a detached commit");
  g->reference_free(head);
  return ok;
}

/* Refuses a repository gitrepo cannot work with: bare, or without main while HEAD is on
 * another branch (a repository of someone's on master). A person's branch checked out
 * while main exists stops nothing: main is its ref, and only the view waits (view.c). */
static int gr_check_shape(const gitapi *g, git_repository *repo, gr_err *e) {
  if (g->repository_is_bare(repo)) return gr_fail(e, "EINVAL", "the repository is bare; the workspace needs a working tree");
  /* a shallow clone (git clone --depth): libgit2 1.5 knows nothing of its boundary, so the
   * first merge whose base search reaches it looks for a parent that was never fetched and
   * fails ("object not found"), for good: refused before anything is written, the fetch
   * that settles it named */
  if (gr_is_shallow(g, repo))
    return gr_fail(e, "EINVAL",
                   "workspace/ is a shallow clone (%sshallow lists commits whose parents were never fetched): "
                   "Orket's merges need main's history, which libgit2 cannot follow past that boundary: "
                   "git -C workspace fetch --unshallow fetches the rest of it",
                   g->repository_commondir(repo));
  char target[256];
  git_oid main;
  int ok = gr_head_on_main(g, repo, target, sizeof target, e);
  if (ok < 0) return -1;
  if (ok || g->reference_name_to_id(&main, repo, "refs/heads/" GR_MAIN) == 0) return 0;
  /* no main to check out (a repository on master, a detached HEAD): say how to make one. The
   * branch is renamed without naming it (a branch's name may hold ';' or '$', which a shell
   * reads); a detached HEAD can only be branched. A remote gets main from Orket, so the forge
   * must take it. */
  int branch = strncmp(target, "refs/heads/", 11) == 0;
  return gr_fail(e, "EINVAL",
                 "HEAD is on %s, not refs/heads/" GR_MAIN ", and there is no branch " GR_MAIN ", which every card "
                 "starts from and merges into: %s (git -C workspace checkout -b " GR_MAIN "); with orket.lua's "
                 "git.remote, Orket pushes " GR_MAIN " there and opens pull requests against it, so make " GR_MAIN
                 " the forge's default branch",
                 target,
                 branch ? "rename that branch to " GR_MAIN " (git -C workspace branch -m " GR_MAIN
                          "), or make " GR_MAIN " from it and keep it too"
                        : "make " GR_MAIN " at that commit");
}

int gr_sync(const gitapi *g, git_repository *repo, gr_err *e) {
  const char *dir = g->repository_commondir(repo);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || syncfs(fd) != 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    return gr_fail(e, "EIO", "cannot sync %s: %s", dir, strerror(err));
  }
  close(fd);
  return 0;
}

/* A repository of another user's (its working tree or its .git) is refused before libgit2
 * or anything here looks at it, with EACCES. libgit2 refuses it too, but 1.5 said so as
 * "config value 'safe.directory' was not found" (GIT_ENOTFOUND: Orket reads no user config,
 * gr_lib_acquire), which read as no repository at all: a run then moved the cards'
 * directories aside and made a repository over it. And under sudo (SUDO_UID the owner)
 * libgit2 lets root in, whose objects, refs and files the owner could no longer write. */
static int gr_check_owner(const char *abs, gr_err *e) {
  static const char *const parts[] = {"", "/.git"};
  unsigned long me = (unsigned long)geteuid();
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    char p[PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(p, sizeof p, "%s%s", abs, parts[i]) >= sizeof p) return gr_fail(e, "EINVAL", "path too long");
    if (stat(p, &st) != 0) continue; /* absent (or unreachable): the open says which */
    unsigned long owner = (unsigned long)st.st_uid;
    if (owner != me)
      return gr_fail(e, "EACCES", "%s belongs to uid %lu and this process runs as uid %lu: the repository is "
                     "another user's, and git refuses it (what this process wrote there would not be the "
                     "owner's); nothing was changed: run the command as the project's owner (sudo -u '#%lu' ...)",
                     p, owner, me, owner);
  }
  return 0;
}

/* libgit2 finds no repository at abs where a .git is there that this process may not read
 * (it says GIT_ENOTFOUND of it too): that is no missing repository, to be made again over
 * the one there, but a refusal (EACCES, -1); 0 when there is no such .git. */
static int gr_unreadable_git(const char *abs, gr_err *e) {
  char p[PATH_MAX];
  struct stat st;
  if ((size_t)snprintf(p, sizeof p, "%s/.git", abs) >= sizeof p || stat(p, &st) != 0 ||
      access(p, S_ISDIR(st.st_mode) ? R_OK | X_OK : R_OK) == 0)
    return 0;
  int err = errno;
  return gr_fail(e, "EACCES", "%s cannot be read (%s; mode %04o, uid %lu's, and this process runs as uid %lu); "
                 "nothing was changed: give it modes its owner may use (chmod -R u+rwX)", p, strerror(err),
                 (unsigned)(st.st_mode & 07777), (unsigned long)st.st_uid, (unsigned long)geteuid());
}

int gitrepo_open(const char *path, gitrepo **out, gr_err *e) {
  char abs[PATH_MAX];
  if (gr_abspath(path, abs, sizeof abs, e) != 0 || gr_check_owner(abs, e) != 0) return -1;
  gitapi api;
  if (gr_lib_acquire(&api, e) != 0) return -1;
  const gitapi *g = &api;
  git_repository *repo = NULL;
  int rc = g->repository_open_ext(&repo, abs, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
  if (rc < 0) {
    if (rc != GIT_ENOTFOUND) gr_git(g, e, rc, abs);
    else if (gr_unreadable_git(abs, e) == 0) gr_fail(e, "ENOENT", "no git repository at %s (run orket init)", abs);
    gr_lib_release(&api);
    return -1;
  }
  if (gr_check_shape(g, repo, e) != 0) {
    g->repository_free(repo);
    gr_lib_release(&api);
    return -1;
  }
  if (gr_new(&api, repo, abs, out, e) != 0) return -1;
  gr_view_adopt(*out); /* a person's repository, opened the first time */
  return 0;
}

int gr_stage_all(const gitapi *g, git_index *idx, gr_scan *scan, gr_err *e) {
  int rc = g->index_add_all(idx, NULL, GIT_INDEX_ADD_DEFAULT, gr_stage_filter, scan);
  if (rc == 0) rc = g->index_update_all(idx, NULL, gr_stage_filter, scan);
  /* what libgit2's walk left out for a person's exclude alone (scan.c): added by name */
  for (size_t i = 0; rc == 0 && i < scan->hidden.n; i++)
    if (g->index_get_bypath(idx, scan->hidden.v[i], 0) == NULL && !gr_stage_filter(scan->hidden.v[i], NULL, scan))
      rc = g->index_add_bypath(idx, scan->hidden.v[i]);
  return rc < 0 ? gr_git(g, e, rc, "staging the working tree") : 0;
}

static int gr_initial_commit(const gitapi *g, git_repository *repo, const gr_sig *who, git_oid *tid, gr_err *e) {
  git_signature *sig = NULL;
  git_index *idx = NULL;
  git_tree *tree = NULL;
  git_oid cid;
  gr_scan scan = {0};
  int rc, ret = -1;
  if (gr_make_sig(g, who, &sig, e) != 0) return -1;
  if ((rc = g->repository_set_head(repo, "refs/heads/" GR_MAIN)) < 0) { gr_git(g, e, rc, "HEAD"); goto out; }
  if ((rc = g->repository_index(&idx, repo)) < 0) { gr_git(g, e, rc, "index"); goto out; }
  if (gr_scan_run(g, repo, &scan, 0, e) != 0 || gr_stage_all(g, idx, &scan, e) != 0) goto out;
  if ((rc = g->index_write_tree(tid, idx)) < 0 || (rc = g->tree_lookup(&tree, repo, tid)) < 0) {
    gr_git(g, e, rc, "tree");
    goto out;
  }
  git_reference *made = NULL;
  rc = g->commit_create(&cid, repo, NULL, sig, sig, NULL, "Initial commit\n", tree, 0, NULL);
  if (rc < 0) { gr_git(g, e, rc, "initial commit"); goto out; }
  if (gr_sync(g, repo, e) != 0) goto out;
  rc = g->reference_create_matching(&made, repo, "refs/heads/" GR_MAIN, &cid, 0, NULL, "commit (initial): Initial commit");
  g->reference_free(made);
  if (rc < 0) { gr_git(g, e, rc, "initial commit"); goto out; }
  if (gr_sync(g, repo, e) != 0) goto out;
  /* main exists now: a lock this write leaves is not an unborn repository's (gr_clear_unborn_locks) */
  gr_write_begin(g, repo, "index.lock");
  rc = g->index_write(idx);
  gr_write_end(g, repo);
  if (rc < 0) { gr_git(g, e, rc, "index write"); goto out; }
  ret = 0;
out:
  gr_scan_free(&scan);
  g->tree_free(tree);
  g->index_free(idx);
  g->signature_free(sig);
  return ret;
}

/* A first run killed while it made the repository leaves libgit2's lock files behind
 * (config.lock from init, main.lock from the first commit), and every later init fails on
 * them. A repository without main is one nothing uses yet: init's one caller holds the
 * project's git lock, and no run goes on before main exists. So they are stale, and go. */
static int gr_unlink_lock(const char *path, int *removed, gr_err *e);
static int gr_clear_unborn_locks(const char *abs, gr_err *e) {
  static const char *const files[] = {"config.lock", "HEAD.lock", "index.lock", "refs/heads/" GR_MAIN ".lock", NULL};
  char p[PATH_MAX];
  struct stat st;
  if ((size_t)snprintf(p, sizeof p, "%s/.git", abs) >= sizeof p || lstat(p, &st) != 0 || !S_ISDIR(st.st_mode))
    return 0;
  if ((size_t)snprintf(p, sizeof p, "%s/.git/refs/heads/" GR_MAIN, abs) >= sizeof p || lstat(p, &st) == 0) return 0;
  if ((size_t)snprintf(p, sizeof p, "%s/.git/packed-refs", abs) >= sizeof p || lstat(p, &st) == 0) return 0;
  int removed = 0;
  for (const char *const *f = files; *f; f++) {
    if ((size_t)snprintf(p, sizeof p, "%s/.git/%s", abs, *f) >= sizeof p) continue;
    if (gr_unlink_lock(p, &removed, e) != 0) return -1;
  }
  return 0;
}

int gitrepo_init(const char *path, const gr_sig *who, gitrepo **out, int *created, gr_err *e) {
  char abs[PATH_MAX];
  *created = 0;
  /* first, the owner and the modes: nothing, not even a stale lock, is touched in a
   * repository of another user's or one this process may not read */
  if (gr_abspath(path, abs, sizeof abs, e) != 0 || gr_check_owner(abs, e) != 0 || gr_unreadable_git(abs, e) != 0 ||
      gr_clear_unborn_locks(abs, e) != 0)
    return -1;
  gitapi api;
  if (gr_lib_acquire(&api, e) != 0) return -1;
  const gitapi *g = &api;
  git_repository *repo = NULL;
  int rc = g->repository_open_ext(&repo, abs, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
  if (rc == GIT_ENOTFOUND) {
    git_repository_init_options o;
    (void)g->repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    o.flags = GIT_REPOSITORY_INIT_MKPATH;
    o.initial_head = GR_MAIN;
    rc = g->repository_init_ext(&repo, abs, &o);
  }
  if (rc < 0) {
    gr_git(g, e, rc, abs);
    gr_lib_release(&api);
    return -1;
  }
  int unborn = g->repository_head_unborn(repo);
  git_oid tree;
  if (unborn < 0 || (unborn == 1 && gr_initial_commit(g, repo, who, &tree, e) != 0) ||
      gr_check_shape(g, repo, e) != 0) {
    if (unborn < 0) gr_git(g, e, unborn, "HEAD");
    g->repository_free(repo);
    gr_lib_release(&api);
    return -1;
  }
  *created = unborn == 1;
  if (gr_new(&api, repo, abs, out, e) != 0) return -1;
  /* the view holds the first commit's files; an older repository's view finds its base at
   * its first refresh (view.c) */
  if (*created && gr_view_reset(*out, &tree, e) != 0) {
    gitrepo_close(*out);
    *out = NULL;
    return -1;
  }
  if (!*created) gr_view_adopt(*out); /* a person's repository with commits of its own */
  return 0;
}

/* ---- reading ------------------------------------------------------------------------------ */

int gitrepo_head(gitrepo *r, const char *branch, char *id, gr_err *e) {
  const gitapi *g = &r->git;
  char ref[GR_CARD_MAX + 64];
  git_oid oid;
  if (gr_branch_ref(g, branch, ref, sizeof ref, e) != 0 || gr_ref_id(g, r->repo, ref, &oid, e) != 0) return -1;
  g->oid_tostr(id, GR_OID_HEX + 1, &oid);
  return 0;
}

/* ---- setting a card's branch aside ------------------------------------------------------- */

int gitrepo_set_aside(gitrepo *r, const char *card, const char *aside, const char *keep, char *id, gr_err *e) {
  const gitapi *g = &r->git;
  char ref[GR_CARD_MAX + 64], why[GR_CARD_MAX + 96];
  git_reference *br = NULL, *made = NULL;
  git_oid oid, back;
  gr_err seen;
  int valid = 0, rc, ret = -1;
  if (card == NULL || !gitrepo_card_valid(card))
    return gr_fail(e, "EINVAL", "not a card id: \"%.120s\"", card ? card : "");
  if (aside == NULL || strncmp(aside, GR_ASIDE_PREFIX, strlen(GR_ASIDE_PREFIX)) != 0 ||
      g->reference_name_is_valid(&valid, aside) < 0 || !valid)
    return gr_fail(e, "EINVAL", "not a ref name under " GR_ASIDE_PREFIX ": \"%.120s\"", aside ? aside : "");
  if (keep != NULL && (strlen(keep) != GR_OID_HEX || g->oid_fromstr(&back, keep) < 0))
    return gr_fail(e, "EINVAL", "not a commit id: \"%.64s\"", keep);
  snprintf(ref, sizeof ref, "refs/heads/" GR_CARD_PREFIX "%s", card);
  /* a person's checkout of it in workspace/ would be left on a branch that is gone, or whose
   * files no longer match it */
  if (gr_ref_in_view(g, r->repo, ref, &seen) != 0)
    return gr_fail(e, "EUNSAFE", "workspace/ has %s checked out, and Orket does not move a branch under a person's "
                   "checkout; nothing was moved. Check out something else there (git -C workspace checkout " GR_MAIN
                   "), then again", ref + 11);
  if ((rc = g->reference_lookup(&br, r->repo, ref)) < 0)
    return rc == GIT_ENOTFOUND ? gr_fail(e, "ENOENT", "no branch %s", ref + 11) : gr_git(g, e, rc, ref);
  if (g->reference_type(br) != GIT_REFERENCE_DIRECT || g->reference_name_to_id(&oid, r->repo, ref) < 0) {
    gr_fail(e, "EINVAL", "%s is not a branch pointing at a commit", ref + 11);
    goto out;
  }
  /* the branch goes back only to a commit of its own history, never to another line */
  if (keep != NULL && (g->oid_equal(&back, &oid) || g->graph_descendant_of(r->repo, &oid, &back) != 1)) {
    gr_fail(e, "EINVAL", "%s is not an ancestor of %s's tip", keep, ref + 11);
    goto out;
  }
  snprintf(why, sizeof why, "orket: set aside %s", ref + 11);
  rc = g->reference_create_matching(&made, r->repo, aside, &oid, 0, NULL, why);
  g->reference_free(made);
  made = NULL;
  if (rc == GIT_EEXISTS) {
    gr_fail(e, "EEXIST", "%s is there already", aside);
    goto out;
  }
  if (rc < 0) {
    gr_git(g, e, rc, aside);
    goto out;
  }
  /* the copy durable before the branch moves: a crash between leaves both, never neither */
  if (gr_sync(g, r->repo, e) != 0) goto out;
  if (keep != NULL) {
    /* moved back only while it still points at the tip set aside (compare-and-swap) */
    snprintf(why, sizeof why, "orket: %s back to a commit the store knows", ref + 11);
    rc = g->reference_create_matching(&made, r->repo, ref, &back, 1, &oid, why);
    g->reference_free(made);
  } else {
    gr_write_begin(g, r->repo, "packed-refs.lock");
    rc = g->reference_delete(br); /* refused when the branch moved since the lookup */
    gr_write_end(g, r->repo);
  }
  if (rc < 0) {
    gr_git(g, e, rc, ref);
    goto out;
  }
  if (gr_sync(g, r->repo, e) != 0) goto out;
  gr_forget(r, card); /* a linked worktree this handle kept open named the branch at its tip */
  g->oid_tostr(id, GR_OID_HEX + 1, &oid);
  ret = 0;
out:
  g->reference_free(br);
  return ret;
}

static char *gr_dup_line(const char *s) {
  if (s == NULL) s = "";
  size_t n = strcspn(s, "\n");
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

int gitrepo_log(gitrepo *r, const char *branch, size_t max, gr_commit **out, size_t *n, gr_err *e) {
  const gitapi *g = &r->git;
  char ref[GR_CARD_MAX + 64];
  git_revwalk *walk = NULL;
  git_oid oid;
  int rc;
  *out = NULL;
  *n = 0;
  if (gr_branch_ref(g, branch, ref, sizeof ref, e) != 0) return -1;
  if ((rc = g->revwalk_new(&walk, r->repo)) < 0) return gr_git(g, e, rc, "revwalk");
  g->revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
  rc = g->revwalk_push_ref(walk, ref);
  if (rc == 0 && strcmp(ref, "refs/heads/" GR_MAIN) != 0) rc = g->revwalk_hide_ref(walk, "refs/heads/" GR_MAIN);
  if (rc < 0) {
    g->revwalk_free(walk);
    return rc == GIT_ENOTFOUND ? gr_fail(e, "ENOENT", "no branch %s", branch) : gr_git(g, e, rc, ref);
  }
  gr_commit *v = NULL;
  size_t cnt = 0;
  while (cnt < max && (rc = g->revwalk_next(&oid, walk)) == 0) {
    git_commit *c = NULL;
    if ((rc = g->commit_lookup(&c, r->repo, &oid)) < 0) break;
    gr_commit *nv = realloc(v, (cnt + 1) * sizeof *v);
    if (nv == NULL) {
      g->commit_free(c);
      rc = -1;
      break;
    }
    v = nv;
    gr_commit *k = &v[cnt++];
    const git_signature *a = g->commit_author(c);
    g->oid_tostr(k->id, sizeof k->id, &oid);
    k->summary = gr_dup_line(g->commit_message(c));
    k->author_name = gr_dup_line(a->name);
    k->author_email = gr_dup_line(a->email);
    k->time = (int64_t)a->when.time;
    k->parents = g->commit_parentcount(c);
    g->commit_free(c);
    if (!k->summary || !k->author_name || !k->author_email) {
      rc = -1;
      break;
    }
  }
  g->revwalk_free(walk);
  if (rc != 0 && rc != GIT_ITEROVER) {
    gr_commits_free(v, cnt);
    return rc == -1 ? gr_fail(e, "ENOMEM", "out of memory") : gr_git(g, e, rc, "log");
  }
  *out = v;
  *n = cnt;
  return 0;
}

/* ---- recovery ----------------------------------------------------------------------------- */

static int gr_unlink_lock(const char *path, int *removed, gr_err *e) {
  if (unlink(path) == 0) {
    (*removed)++;
    return 0;
  }
  return errno == ENOENT ? 0 : gr_fail(e, "EIO", "cannot remove %s: %s", path, strerror(errno));
}

/* Removes *.lock files under dir (refs/), depth-limited. */
static int gr_unlink_locks_under(const char *dir, int depth, int *removed, gr_err *e) {
  if (depth > 32) return 0;
  DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : gr_fail(e, "EIO", "cannot list %s: %s", dir, strerror(errno));
  struct dirent *de;
  int ret = 0;
  while (ret == 0 && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= sizeof p) continue;
    struct stat st;
    if (lstat(p, &st) != 0) continue;
    size_t n = strlen(de->d_name);
    if (S_ISDIR(st.st_mode)) ret = gr_unlink_locks_under(p, depth + 1, removed, e);
    else if (n > 5 && strcmp(de->d_name + n - 5, ".lock") == 0) ret = gr_unlink_lock(p, removed, e);
  }
  closedir(d);
  return ret;
}

/* ---- Orket's writes in main's gitdir -------------------------------------------------------

 * main's repository (workspace/.git) is a person's too: their git holds index.lock for as
 * long as a commit's editor is open, and a lock taken from under it breaks their commit
 * (it lands, and their index is left a staged revert of it). So a lock there is never taken
 * on the strength of Orket's locks alone (.orket/git.lock keeps out Orket's processes, not
 * theirs). Each of Orket's writes there that a kill could leave locked records itself first,
 * in the gitdir beside the view's state: GR_WRITE_REC "." pid, saying the pid, the time and
 * the lock the write takes (gitdir-relative, one of gr_write_locks), written only while that
 * lock is absent, removed as soon as the write returned. A record left is a process killed
 * inside its write, or just before libgit2 took the lock, or just after the write returned:
 * so the lock it names may be a person's taken since. Recovery removes it only when the
 * process is gone, the lock is this user's (Orket's writes make theirs as the repository's
 * owner, gr_check_owner), its change time fits the write (from the record's time, less the
 * file system's coarse clock, to GR_WRITE_AFTER later), and no live process holds it open
 * (gr_lock_open: git and libgit2 keep a lock open while they write it). A person's lock kept
 * closed (git commit closes index.lock before its editor runs) is told from the killed
 * write's by its time alone. Any other lock there is left: the view waits, naming it (view.c).
 * The cards' own locks (their refs' namespaces, their directories') stay Orket's alone.
 * The record is one per process, not per handle: a second handle's write overwrites it and
 * any handle's close removes it, so a lock is then left for a person, never taken. */
#define GR_WRITE_REC "orket-write"
#define GR_WRITE_MAGIC "orket-write 1 "
#define GR_WRITE_BEFORE 2 /* seconds: file times taken from a coarse clock, or in whole seconds */
/* seconds from the record to the last change of its lock, which the write makes itself: each
 * write is in memory and unsynced (gr_lib_acquire), into the page cache. An index write:
 * libgit2 hashes the entries it did not add that are as new as the index (racily clean,
 * usually none), takes index.lock, serializes and hashes the index (100 MB: well under a
 * second), renames. A move of main: lock, a reflog line or two, 41 bytes, rename. A delete of
 * a packed ref: packed-refs rewritten (a million refs: some 50 MB). Milliseconds as a rule;
 * five seconds leaves room for a stalled disk's write-back throttling. A write slower still
 * leaves its lock to a person (named by the view), never the other way round. */
#define GR_WRITE_AFTER 5
static const char *const gr_write_locks[] = {"index.lock", "refs/heads/" GR_MAIN ".lock", "packed-refs.lock", NULL};

static int gr_write_rec(const gitapi *g, git_repository *repo, long pid, char *buf, size_t cap) {
  return (size_t)snprintf(buf, cap, "%s" GR_WRITE_REC ".%ld", g->repository_path(repo), pid) < cap;
}

void gr_write_begin(const gitapi *g, git_repository *repo, const char *lock) {
  char rec[PATH_MAX], lp[PATH_MAX], body[160];
  struct stat st;
  struct timespec now;
  if (!gr_write_rec(g, repo, (long)getpid(), rec, sizeof rec)) return;
  /* a lock already there is someone's: the write fails on it, and leaves none of Orket's */
  if ((size_t)snprintf(lp, sizeof lp, "%s%s", g->repository_path(repo), lock) >= sizeof lp ||
      lstat(lp, &st) == 0 || errno != ENOENT || clock_gettime(CLOCK_REALTIME, &now) != 0) {
    (void)unlink(rec);
    return;
  }
  int n = snprintf(body, sizeof body, GR_WRITE_MAGIC "%ld %lld.%09ld %s\n", (long)getpid(), (long long)now.tv_sec,
                   now.tv_nsec, lock);
  /* best effort, unsynced: a record lost only leaves a killed write's lock for a person */
  int fd = n > 0 && (size_t)n < sizeof body ? open(rec, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644)
                                            : -1;
  if (fd < 0) return;
  ssize_t w = write(fd, body, (size_t)n);
  if (close(fd) != 0 || w != n) (void)unlink(rec);
}

void gr_write_end(const gitapi *g, git_repository *repo) {
  char rec[PATH_MAX];
  if (gr_write_rec(g, repo, (long)getpid(), rec, sizeof rec)) (void)unlink(rec);
}

/* 1 when the process that wrote a record at sec (seconds since the epoch) is gone: no
 * process has its pid, or a zombie has it (a killed run its parent never reaped), or one
 * that began after sec (its pid taken again: /proc/PID/stat's start in clock ticks after
 * boot, and /proc/stat's boot time). Unknown is alive. */
static int gr_writer_gone(long pid, long long sec) {
  char p[64], buf[1024];
  long long btime = 0, ticks = -1;
  long hz = sysconf(_SC_CLK_TCK);
  if (gr_pid_gone(pid)) return 1;
  snprintf(p, sizeof p, "/proc/%ld/stat", pid);
  FILE *f = fopen(p, "re");
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f) fclose(f);
  buf[n] = '\0';
  char *at = strrchr(buf, ')'); /* past the command's name, which may hold anything */
  if (at && (at[1] == ' ') && (at[2] == 'Z' || at[2] == 'X')) return 1;
  for (int field = 2; at && *at && field < 22; field++) at = strchr(at + 1, ' ');
  if (at && *at) ticks = strtoll(at + 1, NULL, 10);
  if ((f = fopen("/proc/stat", "re")) != NULL) {
    char line[256];
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "btime %lld", &btime) == 1) break;
    fclose(f);
  }
  return ticks >= 0 && btime > 0 && hz > 0 && btime + ticks / hz > sec + 1;
}

/* 1 when process pid runs as uid by any of the ids of /proc/PID/status's Uid: line (real,
 * effective, saved, file system), or when that cannot be read (unknown is a match); 0 when
 * it does not, or is gone. */
static int gr_proc_as(long pid, uid_t uid) {
  char p[64], line[256];
  snprintf(p, sizeof p, "/proc/%ld/status", pid);
  FILE *f = fopen(p, "re");
  if (f == NULL) return errno != ENOENT; /* gone meanwhile: holds nothing */
  int as = 1;
  while (fgets(line, sizeof line, f)) {
    unsigned long u[4];
    if (strncmp(line, "Uid:", 4) != 0) continue;
    if (sscanf(line + 4, "%lu %lu %lu %lu", &u[0], &u[1], &u[2], &u[3]) == 4)
      as = u[0] == (unsigned long)uid || u[1] == (unsigned long)uid || u[2] == (unsigned long)uid ||
           u[3] == (unsigned long)uid;
    break;
  }
  fclose(f);
  return as;
}

/* 1 when a live process holds the lock at path (lst: its lstat) open, or when that cannot be
 * told: /proc not readable, or the fds of a process of the lock's user not readable (a lock
 * is made with O_EXCL by the process that writes it, as its user; another user's processes
 * are not looked at). Each fd whose link ends in the lock's name is compared by device and
 * inode (the link's text differs across mount namespaces); no other file is looked at. A
 * thread with an fd table of its own (unshared) is not seen: git and libgit2 make none. */
static int gr_lock_open(const char *path, const struct stat *lst) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t bl = strlen(base);
  DIR *d = opendir("/proc");
  if (d == NULL) return 1;
  DIR *self = opendir("/proc/self/fd"); /* /proc mounted, and fds readable at all */
  if (self == NULL) {
    closedir(d);
    return 1;
  }
  closedir(self);
  int held = 0;
  for (struct dirent *de; !held && (de = readdir(d)) != NULL;) {
    char *end, fp[64];
    errno = 0;
    long pid = strtol(de->d_name, &end, 10);
    if (de->d_name[0] < '1' || de->d_name[0] > '9' || *end != '\0' || errno != 0) continue; /* not a process's */
    snprintf(fp, sizeof fp, "/proc/%ld/fd", pid);
    DIR *fds = opendir(fp);
    if (fds == NULL) {
      held = errno != ENOENT && gr_proc_as(pid, lst->st_uid);
      continue;
    }
    for (struct dirent *fe; !held && (fe = readdir(fds)) != NULL;) {
      char link[PATH_MAX];
      ssize_t n = readlinkat(dirfd(fds), fe->d_name, link, sizeof link - 1);
      if (n < (ssize_t)bl + 1) continue; /* ".", "..", closed meanwhile, or too short to be it */
      link[n] = '\0';
      if (link[n - (ssize_t)bl - 1] != '/' || strcmp(link + n - bl, base) != 0) continue;
      struct stat st;
      if (fstatat(dirfd(fds), fe->d_name, &st, 0) != 0) held = errno != ENOENT;
      else held = st.st_dev == lst->st_dev && st.st_ino == lst->st_ino;
    }
    closedir(fds);
  }
  closedir(d);
  return held;
}

/* Removes the locks main's gitdir holds that a record of a process now gone names, where the
 * lock fits the record's write and no one holds it open (above); the records of gone
 * processes go with them. */
static int gr_clear_recorded(const gitapi *g, git_repository *repo, int *removed, gr_err *e) {
  const char *gd = g->repository_path(repo);
  DIR *d = opendir(gd);
  if (d == NULL) return 0;
  size_t rl = strlen(GR_WRITE_REC), ml = strlen(GR_WRITE_MAGIC);
  int ret = 0;
  for (struct dirent *de; ret == 0 && (de = readdir(d)) != NULL;) {
    char *end, body[160], lock[64], p[PATH_MAX];
    if (strncmp(de->d_name, GR_WRITE_REC ".", rl + 1) != 0) continue;
    errno = 0;
    long pid = strtol(de->d_name + rl + 1, &end, 10);
    if (end == de->d_name + rl + 1 || *end != '\0' || errno != 0 || pid <= 0) continue;
    int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, body, sizeof body - 1) : -1;
    close(fd);
    body[n > 0 ? n : 0] = '\0';
    long rpid = 0;
    long long sec = 0;
    long nsec = 0;
    int ok = n > 0 && strncmp(body, GR_WRITE_MAGIC, ml) == 0 &&
             sscanf(body + ml, "%ld %lld.%ld %63s", &rpid, &sec, &nsec, lock) == 4 && rpid == pid;
    /* alive: its write may be under way, or the record being written */
    if (!(ok ? gr_writer_gone(pid, sec) : gr_pid_gone(pid))) continue;
    for (const char *const *k = gr_write_locks; ok && *k; k++) {
      if (strcmp(lock, *k) != 0) continue;
      if ((size_t)snprintf(p, sizeof p, "%s%s", gd, lock) >= sizeof p || lstat(p, &st) != 0 || !S_ISREG(st.st_mode))
        break;
      long long t = (long long)st.st_ctim.tv_sec;
      if (st.st_uid == geteuid() && t >= sec - GR_WRITE_BEFORE && t <= sec + GR_WRITE_AFTER && !gr_lock_open(p, &st))
        ret = gr_unlink_lock(p, removed, e);
    }
    if (ret == 0) (void)unlinkat(dirfd(d), de->d_name, 0); /* a gone process's, or unreadable: no write of anyone's */
  }
  closedir(d);
  return ret;
}

int gr_ref_in_view(const gitapi *g, git_repository *repo, const char *ref, gr_err *e) {
  char p[PATH_MAX], buf[GR_CARD_MAX + 64];
  if ((size_t)snprintf(p, sizeof p, "%sHEAD", g->repository_commondir(repo)) >= sizeof p) return 0;
  int fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st;
  ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof buf - 1) : -1;
  close(fd);
  if (n <= 5) return 0;
  buf[n] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  if (strncmp(buf, "ref: ", 5) != 0 || strcmp(buf + 5, ref) != 0) return 0;
  const char *branch = strncmp(ref, "refs/heads/", 11) == 0 ? ref + 11 : ref;
  size_t pl = strlen(GR_CARD_PREFIX);
  const char *card = strncmp(branch, GR_CARD_PREFIX, pl) == 0 ? branch + pl : "the card";
  return gr_fail(e, "EUNSAFE",
                 "workspace/ has %s checked out, and Orket does not move a branch under a person's checkout (its "
                 "index would undo the card's change at the next commit made there); nothing was moved, the card's "
                 "files stay. Check out something else there (git -C workspace switch --detach %s to look at the "
                 "card's work, or git -C workspace checkout " GR_MAIN "), then orket retry %s",
                 ref, branch, card);
}

static int gr_clear_locks(gitrepo *r, const git_strarray *wts, int *removed, gr_err *e) {
  const gitapi *g = &r->git;
  static const char *const files[] = {"index.lock", "HEAD.lock", NULL};
  /* the refs Orket alone writes: its cards' branches and what its fetches keep */
  static const char *const ours[] = {"refs/heads/orket", "refs/orket", "refs/remotes/orket",
                                     "refs/remotes/orket-branches", NULL};
  const char *common = g->repository_commondir(r->repo); /* ends in '/' */
  char p[PATH_MAX];
  if (gr_clear_recorded(g, r->repo, removed, e) != 0) return -1;
  /* a linked worktree of a card's (an older orket's): its gitdir's locks are the card's */
  for (size_t i = 0; i < wts->count; i++)
    for (int k = 0; files[k]; k++) {
      snprintf(p, sizeof p, "%sworktrees/%s/%s", common, wts->strings[i], files[k]);
      if (gr_unlink_lock(p, removed, e) != 0) return -1;
    }
  for (const char *const *o = ours; *o; o++) {
    snprintf(p, sizeof p, "%s%s", common, *o);
    if (gr_unlink_locks_under(p, 0, removed, e) != 0) return -1;
  }
  return 0;
}

int gitrepo_recover(gitrepo *r, int *removed, gr_err *e) {
  const gitapi *g = &r->git;
  git_strarray wts = {0};
  int rc, updated, ret = -1;
  *removed = 0;
  gr_forget(r, NULL); /* after a crash: every worktree read afresh */
  if ((rc = g->worktree_list(&wts, r->repo)) < 0) return gr_git(g, e, rc, "worktrees");
  if (gr_clear_locks(r, &wts, removed, e) != 0) goto out;
  for (size_t i = 0; i < wts.count; i++) {
    gr_wd w;
    if (!gitrepo_card_valid(wts.strings[i])) continue; /* not one of ours */
    /* a rewritten .git is put back and its refusal kept for the card's next operation to
     * report (recover's own errors go nowhere) */
    gr_wt_gitdir_sweep(g, r->repo, wts.strings[i]);
    if (gr_wt_refused(g, r->repo, wts.strings[i])) continue;
    gr_err ignored;
    if (gr_open_card(r, wts.strings[i], &w, &ignored) != 0) continue; /* broken: gitrepo_worktree remakes it */
    if (gr_refresh_repo(g, &w, &updated, e) != 0) goto out;
  }
  /* main's view last: what a crash left between a merge's ref move and its refresh is
   * finished here, and a view that cannot follow never stops a resume */
  size_t diverged;
  gr_err ignored;
  (void)gr_view_refresh(r, &diverged, &ignored);
  ret = 0;
out:
  g->strarray_dispose(&wts);
  return ret;
}

typedef struct gr_walkctx {
  const gitapi *g;
  git_odb *odb;
  const char *missing;
  char where[256];
} gr_walkctx;

static int gr_check_entry(const char *root, const git_tree_entry *te, void *payload) {
  gr_walkctx *c = payload;
  const gitapi *g = c->g;
  if (g->tree_entry_type(te) == GIT_OBJECT_COMMIT) return 0; /* a submodule: not ours */
  if (!g->odb_exists(c->odb, g->tree_entry_id(te))) {
    c->missing = "object";
    snprintf(c->where, sizeof c->where, "%s%s", root, g->tree_entry_name(te));
    return -1;
  }
  return 0;
}

/* Every commit reachable from ref, its tree and each tree's entries exist (at most max commits). */
static int gr_check_history(gitrepo *r, git_odb *odb, const char *ref, gr_err *e) {
  const gitapi *g = &r->git;
  git_revwalk *walk = NULL;
  git_oid oid;
  int rc;
  if ((rc = g->revwalk_new(&walk, r->repo)) < 0) return gr_git(g, e, rc, "revwalk");
  if ((rc = g->revwalk_push_ref(walk, ref)) < 0) {
    g->revwalk_free(walk);
    return gr_fail(e, "EINCONSISTENT", "%s does not resolve to a commit", ref);
  }
  int ret = 0;
  while (ret == 0 && (rc = g->revwalk_next(&oid, walk)) == 0) {
    git_commit *c = NULL;
    git_tree *t = NULL;
    char hex[GR_OID_HEX + 1];
    g->oid_tostr(hex, sizeof hex, &oid);
    if (g->commit_lookup(&c, r->repo, &oid) < 0 || g->commit_tree(&t, c) < 0) {
      ret = gr_fail(e, "EINCONSISTENT", "commit %s of %s or its tree is missing", hex, ref);
    } else {
      gr_walkctx wc = {g, odb, NULL, {0}};
      if (g->tree_walk(t, GIT_TREEWALK_PRE, gr_check_entry, &wc) != 0 || wc.missing)
        ret = gr_fail(e, "EINCONSISTENT", "commit %s of %s: %s %s is missing", hex, ref,
                      wc.missing ? wc.missing : "tree", wc.where);
    }
    g->tree_free(t);
    g->commit_free(c);
  }
  g->revwalk_free(walk);
  if (ret == 0 && rc != GIT_ITEROVER) return gr_fail(e, "EINCONSISTENT", "walking %s failed", ref);
  return ret;
}

static int gr_check_worktree(const gitapi *g, git_repository *w, const char *name, gr_err *e) {
  git_index *idx = NULL;
  git_reference *head = NULL;
  int ret = 0;
  if (gr_pending(g, &(gr_wd){.repo = w}, NULL)) return gr_fail(e, "EINCONSISTENT", "%s: a checkout is pending (run recovery)", name);
  if (g->repository_head(&head, w) < 0) ret = gr_fail(e, "EINCONSISTENT", "%s: HEAD does not resolve", name);
  else if (g->repository_index(&idx, w) < 0 || g->index_read(idx, 1) < 0)
    ret = gr_fail(e, "EINCONSISTENT", "%s: the index cannot be read", name);
  else if (g->index_has_conflicts(idx))
    ret = gr_fail(e, "EINCONSISTENT", "%s: the index has conflicts", name);
  else {
    git_oid tid;
    git_tree *ht = NULL;
    if (g->index_write_tree(&tid, idx) < 0 || g->reference_peel((git_object **)&ht, head, GIT_OBJECT_TREE) < 0)
      ret = gr_fail(e, "EINCONSISTENT", "%s: the index or HEAD's tree cannot be read", name);
    else if (!g->oid_equal(&tid, g->tree_id(ht)))
      ret = gr_fail(e, "EINCONSISTENT", "%s: the index is not HEAD's tree (run recovery; or changes were staged by hand)",
                    name);
    g->tree_free(ht);
  }
  g->index_free(idx);
  g->reference_free(head);
  return ret;
}

int gitrepo_check(gitrepo *r, gr_err *e) {
  const gitapi *g = &r->git;
  git_odb *odb = NULL;
  git_branch_iterator *it = NULL;
  git_strarray wts = {0};
  git_reference *ref = NULL;
  git_branch_t bt;
  int rc, ret = -1;
  if ((rc = g->repository_odb(&odb, r->repo)) < 0) return gr_git(g, e, rc, "objects");
  git_reference *head = NULL;
  if (g->repository_head(&head, r->repo) < 0) {
    gr_fail(e, "EINCONSISTENT", GR_MAIN ": HEAD does not resolve");
    goto out;
  }
  g->reference_free(head);
  if ((rc = g->branch_iterator_new(&it, r->repo, GIT_BRANCH_LOCAL)) < 0) { gr_git(g, e, rc, "branches"); goto out; }
  while ((rc = g->branch_next(&ref, &bt, it)) == 0) {
    int bad = gr_check_history(r, odb, g->reference_name(ref), e);
    g->reference_free(ref);
    if (bad) goto out;
  }
  if (rc != GIT_ITEROVER) {
    gr_fail(e, "EINCONSISTENT", "a branch ref cannot be read");
    goto out;
  }
  if ((rc = g->worktree_list(&wts, r->repo)) < 0) { gr_git(g, e, rc, "worktrees"); goto out; }
  for (size_t i = 0; i < wts.count; i++) {
    gr_wd w;
    if (!gitrepo_card_valid(wts.strings[i])) continue; /* not one of ours */
    gr_wt_gitdir_sweep(g, r->repo, wts.strings[i]);
    if (gr_wt_refused(g, r->repo, wts.strings[i])) {
      gr_fail(e, "EINCONSISTENT", "worktree %s: its .git file was refused (the card's next operation says why)",
              wts.strings[i]);
      goto out;
    }
    if (gr_open_card(r, wts.strings[i], &w, e) != 0) {
      gr_fail(e, "EINCONSISTENT", "worktree %s cannot be opened", wts.strings[i]);
      goto out;
    }
    if (w.ref == NULL && gr_check_worktree(g, w.repo, wts.strings[i], e)) goto out;
  }
  ret = 0;
out:
  g->strarray_dispose(&wts);
  g->branch_iterator_free(it);
  g->odb_free(odb);
  return ret;
}

int gitrepo_refresh(gitrepo *r, const char *card, int *updated, gr_err *e) {
  const gitapi *g = &r->git;
  *updated = 0;
  if (card == NULL) {
    size_t diverged;
    return gr_view_refresh(r, &diverged, e);
  }
  gr_wd w;
  if (gr_open_card(r, card, &w, e) != 0) return -1;
  return gr_refresh_repo(g, &w, updated, e);
}
