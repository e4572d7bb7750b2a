/* test_gitrepo.c: the workspace repository of gitrepo.h: init with main, a worktree per card,
 * idempotent commits with the turn trailer, fast-forward / merge commit / conflict merges in
 * both directions, and recovery from the states a crash leaves (stale locks, a checkout that
 * did not finish), built here with libgit2 directly. */
#define _GNU_SOURCE /* O_TMPFILE, which the core makes files with: __wrap_openat passes its mode on */
#include "check.h"
#include "gitrepo.h"
#include "tests.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <git2.h>

static const gr_sig tg_who = {"senior_developer (coder)", "senior_developer@orket.invalid"};

/* fsync as the core calls it in this binary (linked with -Wl,--wrap=fsync): while
 * tg_sync_log is on, each synced file's path is logged in order, with whether the ref file
 * tg_ref_path still held tg_ref_before (main had not moved yet), so a test sees which writes
 * were made durable, and before what. */
int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __real_syncfs(int fd);
int __wrap_syncfs(int fd);
#define TG_SYNCS 256
static struct {
  char path[1024];
  int before; /* main's ref still at tg_ref_before */
} tg_syncs[TG_SYNCS];
static int tg_nsyncs, tg_sync_log;
static int tg_sync_skip; /* logged but not made: for a test that counts syncs, not makes them */
static char tg_ref_path[1024], tg_ref_before[41];
static void tg_log_sync(int fd, const char *prefix) {
  char link[64], path[1000], ref[48] = {0};
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (tg_sync_log && n > 0 && tg_nsyncs < TG_SYNCS) {
    path[n] = '\0';
    snprintf(tg_syncs[tg_nsyncs].path, sizeof tg_syncs[tg_nsyncs].path, "%s%s", prefix, path);
    FILE *f = fopen(tg_ref_path, "r");
    tg_syncs[tg_nsyncs].before = f && fgets(ref, sizeof ref, f) && strncmp(ref, tg_ref_before, 40) == 0;
    if (f) fclose(f);
    tg_nsyncs++;
  }
}
int __wrap_fsync(int fd) {
  tg_log_sync(fd, "");
  return tg_sync_skip ? 0 : __real_fsync(fd);
}
/* a whole file system's sync, logged as "syncfs:" and the path of the directory it was asked
 * through */
int __wrap_syncfs(int fd) {
  tg_log_sync(fd, "syncfs:");
  return tg_sync_skip ? 0 : __real_syncfs(fd);
}

/* stat as the core calls it here (-Wl,--wrap=stat): fails for the path tg_stat_fail, so a
 * test reaches an error path that needs a directory gone at one precise moment. */
int __real_stat(const char *path, struct stat *st);
int __wrap_stat(const char *path, struct stat *st);
static const char *tg_stat_fail;
/* a command run (once) just before the core's tg_stat_hook_at-th stat of tg_stat_hook_path */
static const char *tg_stat_hook_path, *tg_stat_hook_cmd;
static int tg_stat_hook_at, tg_stat_hook_seen;
int __wrap_stat(const char *path, struct stat *st) {
  if (tg_stat_fail && strcmp(path, tg_stat_fail) == 0) {
    errno = ENOENT;
    return -1;
  }
  if (tg_stat_hook_path && strcmp(path, tg_stat_hook_path) == 0 && ++tg_stat_hook_seen == tg_stat_hook_at)
    (void)!system(tg_stat_hook_cmd);
  return __real_stat(path, st);
}

/* write, mkdirat, openat and unlinkat as the core calls them here (-Wl,--wrap=...): a write
 * to a file whose path holds one of tg_write_fail, the making of a directory named
 * tg_mkdir_fail, the making of a file in a directory whose path holds tg_openat_fail and the
 * removal of a file named tg_unlink_fail fail with tg_fail_errno (0: ENOSPC), so a test sees
 * a disk that fills up under one step of the view's refresh and not another, or a directory
 * of Orket's own made unwritable; the opening of a directory named tg_open_fail (no O_CREAT)
 * fails too, a read that fails (no descriptors left, say). Each does nothing unless set. */
ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
int __real_mkdirat(int dfd, const char *name, mode_t mode);
int __wrap_mkdirat(int dfd, const char *name, mode_t mode);
int __real_openat(int dfd, const char *name, int flags, ...);
int __wrap_openat(int dfd, const char *name, int flags, ...);
int __real_unlinkat(int dfd, const char *name, int flags);
int __wrap_unlinkat(int dfd, const char *name, int flags);
static const char *tg_write_fail[2], *tg_mkdir_fail, *tg_openat_fail, *tg_unlink_fail, *tg_open_fail;
static int tg_fail_errno;
static int tg_fail(void) {
  errno = tg_fail_errno ? tg_fail_errno : ENOSPC;
  return -1;
}
/* 1 when the file or directory open as fd has a path holding part */
static int tg_fd_holds(int fd, const char *part) {
  char link[64], path[1024];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t k = readlink(link, path, sizeof path - 1);
  if (k <= 0) return 0;
  path[k] = '\0';
  return strstr(path, part) != NULL;
}
/* a person's save of tg_save_path (under tg_save_ws) with tg_save_text, made once as the core
 * writes a file whose path holds tg_save_at: the moment between the view's check of a path and
 * its rename into place (glibc's own stdio below is not wrapped) */
static const char *tg_save_at, *tg_save_ws, *tg_save_path, *tg_save_text;
ssize_t __wrap_write(int fd, const void *buf, size_t n) {
  if (tg_save_at && tg_fd_holds(fd, tg_save_at)) {
    char p[1024];
    tg_save_at = NULL;
    snprintf(p, sizeof p, "%s/%s", tg_save_ws, tg_save_path);
    FILE *f = fopen(p, "w");
    if (f) {
      fputs(tg_save_text, f);
      fclose(f);
    }
  }
  for (int i = 0; i < 2; i++)
    if (tg_write_fail[i] && tg_fd_holds(fd, tg_write_fail[i])) return tg_fail();
  return __real_write(fd, buf, n);
}
int __wrap_mkdirat(int dfd, const char *name, mode_t mode) {
  if (tg_mkdir_fail && strcmp(name, tg_mkdir_fail) == 0) return tg_fail();
  return __real_mkdirat(dfd, name, mode);
}
int __wrap_openat(int dfd, const char *name, int flags, ...) {
  mode_t mode = 0;
  if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = (mode_t)va_arg(ap, int);
    va_end(ap);
  }
  if (tg_openat_fail && (flags & O_CREAT) && tg_fd_holds(dfd, tg_openat_fail)) return tg_fail();
  if (tg_open_fail && (flags & O_DIRECTORY) && !(flags & O_CREAT) && strcmp(name, tg_open_fail) == 0) return tg_fail();
  return __real_openat(dfd, name, flags, mode);
}
int __wrap_unlinkat(int dfd, const char *name, int flags) {
  if (tg_unlink_fail && !(flags & AT_REMOVEDIR) && strcmp(name, tg_unlink_fail) == 0) return tg_fail();
  return __real_unlinkat(dfd, name, flags);
}

/* strcmp as the core calls it here (-Wl,--wrap=strcmp): counted while tg_cmp_on is set, so a
 * test sees how many comparisons an operation makes (linear or quadratic in its list), not how
 * long it took. */
int __real_strcmp(const char *a, const char *b);
int __wrap_strcmp(const char *a, const char *b);
static int tg_cmp_on;
static size_t tg_cmps;
int __wrap_strcmp(const char *a, const char *b) {
  if (tg_cmp_on) tg_cmps++;
  return __real_strcmp(a, b);
}

/* 1 when /proc/self/fd/N names the directory dir opened as descriptor N. */
static int tg_proc_names_dir(const char *dir) {
  struct stat want, via;
  char p[64];
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  int ok = stat(p, &via) == 0 && stat(dir, &want) == 0 && via.st_dev == want.st_dev && via.st_ino == want.st_ino;
  close(fd);
  return ok;
}

/* Descriptors this process holds (-1: /proc cannot tell). */
static int tg_open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  int n = 0;
  for (struct dirent *de; (de = readdir(d)) != NULL;) n += de->d_name[0] != '.';
  closedir(d);
  return n;
}


static int tg_write(const char *dir, const char *name, const char *data) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (f == NULL) return -1;
  fputs(data, f);
  return fclose(f);
}

static const char *tg_read(const char *dir, const char *name, char *buf, size_t cap) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "r");
  buf[0] = '\0';
  if (f == NULL) return "(missing)";
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void tg_rmtree(const char *dir) {
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "    could not remove %s\n", dir);
}

/* A temp base with ws/ (main's working tree, holding README) and an initialised repo. */
static gitrepo *tg_setup(check_ctx *t, char *base, char *ws) {
  if (mkdtemp(base) == NULL) return NULL;
  snprintf(ws, 512, "%s/ws", base);
  mkdir(ws, 0755);
  tg_write(ws, "README", "hello\n");
  gitrepo *r = NULL;
  gr_err e;
  int created = 0;
  CHECK(t, gitrepo_init(ws, &tg_who, &r, &created, &e) == 0);
  CHECK(t, created == 1);
  return r;
}

static void tg_wt(const char *base, const char *card, char *out) {
  snprintf(out, 512, "%s/wt-%s", base, card);
}


/* Commits a file with content in card's worktree; returns the commit kind. */
static int tg_commit_file(gitrepo *r, const char *wt, const char *card, const char *name,
                          const char *data, const char *key, char *id) {
  gr_commit_kind kind = GR_CLEAN;
  gr_err e;
  if (name) tg_write(wt, name, data);
  if (gitrepo_commit(r, card, &tg_who, "work", key, NULL, NULL, id, &kind, NULL, &e) != 0) {
    fprintf(stderr, "    commit: %s\n", e.msg);
    return -1;
  }
  return (int)kind;
}

/* A restart: *r closed, the workspace ws opened again and recovered (gitrepo_recover): its
 * result, -2 when ws could not be opened (*r NULL then). */
static int tg_restart(gitrepo **r, const char *ws, gr_err *e) {
  int removed;
  gitrepo_close(*r);
  *r = NULL;
  if (gitrepo_open(ws, r, e) != 0) return -2;
  return gitrepo_recover(*r, &removed, e);
}

/* A person's git add in main: name written with data and staged. 0 or -1. */
static int tg_stage(const char *ws, const char *name, const char *data) {
  git_repository *repo = NULL;
  git_index *idx = NULL;
  int rc = data ? tg_write(ws, name, data) : 0;
  if (rc == 0) rc = git_repository_open(&repo, ws);
  if (rc == 0) rc = git_repository_index(&idx, repo);
  if (rc == 0) rc = git_index_add_bypath(idx, name);
  if (rc == 0) rc = git_index_write(idx);
  git_index_free(idx);
  git_repository_free(repo);
  return rc;
}


/* The content main's index holds for name, into buf ("(none)" when it holds none). */
static const char *tg_index_blob(const char *ws, const char *name, char *buf, size_t cap) {
  git_repository *repo = NULL;
  git_index *idx = NULL;
  git_blob *b = NULL;
  snprintf(buf, cap, "(none)");
  if (git_repository_open(&repo, ws) == 0 && git_repository_index(&idx, repo) == 0) {
    const git_index_entry *en = git_index_get_bypath(idx, name, 0);
    if (en && git_blob_lookup(&b, repo, &en->id) == 0)
      snprintf(buf, cap, "%.*s", (int)git_blob_rawsize(b), (const char *)git_blob_rawcontent(b));
  }
  git_blob_free(b);
  git_index_free(idx);
  git_repository_free(repo);
  return buf;
}


/* A person's move of main to the commit hex (a reset: why says so in the reflog). 0 or -1. */
static int tg_move_main(const char *ws, const char *hex, const char *why) {
  git_repository *repo = NULL;
  git_reference *ref = NULL;
  git_oid oid;
  int rc = git_repository_open(&repo, ws);
  if (rc == 0) rc = git_oid_fromstr(&oid, hex);
  if (rc == 0) rc = git_reference_create(&ref, repo, "refs/heads/main", &oid, 1, why);
  git_reference_free(ref);
  git_repository_free(repo);
  return rc;
}

TEST(test_gitrepo_init_worktree) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], wt[512], buf[256], id[41], id2[41];
  gr_err e;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  int created = 1;
  gitrepo *r2 = NULL;
  CHECK(t, gitrepo_init(ws, &tg_who, &r2, &created, &e) == 0); /* idempotent */
  CHECK(t, created == 0);
  CHECK(t, gitrepo_head(r, "main", id, &e) == 0 && gitrepo_head(r2, "main", id2, &e) == 0);
  CHECK_STR(t, id, id2);
  gitrepo_close(r2);

  tg_wt(base, "X1", wt);
  CHECK(t, gitrepo_worktree(r, "X1", wt, &created, &e) == 0 && created == 1);
  CHECK_STR(t, tg_read(wt, "README", buf, sizeof buf), "hello\n");
  CHECK(t, gitrepo_worktree(r, "X1", wt, &created, &e) == 0 && created == 0); /* reused */
  CHECK(t, gitrepo_head(r, "orket/X1", id2, &e) == 0);
  CHECK_STR(t, id2, id); /* starts from main */
  char other[600];
  snprintf(other, sizeof other, "%s/elsewhere", base);
  CHECK(t, gitrepo_worktree(r, "X1", other, &created, &e) == -1);
  CHECK_STR(t, e.code, "EEXIST");
  char got[512];
  CHECK(t, gitrepo_worktree_path(r, "X1", got, sizeof got, &e) == 0);
  CHECK(t, strstr(got, "/wt-X1") != NULL);
  for (const char *bad = "../x\0.hidden\0a b\0x.lock\0-x\0a/b\0"; *bad; bad += strlen(bad) + 1) {
    CHECK(t, !gitrepo_card_valid(bad));
    CHECK(t, gitrepo_worktree(r, bad, other, &created, &e) == -1);
    CHECK_STR(t, e.code, "EINVAL");
  }
  CHECK(t, gitrepo_head(r, "orket/none", id, &e) == -1);
  CHECK_STR(t, e.code, "ENOENT");
  CHECK(t, gitrepo_check(r, &e) == 0);
  gitrepo_close(r);

  /* a second context on the same repository works alongside (no shared state) */
  gitrepo *ra = NULL, *rb = NULL;
  CHECK(t, gitrepo_open(ws, &ra, &e) == 0 && gitrepo_open(ws, &rb, &e) == 0);
  gitrepo_close(ra);
  CHECK(t, gitrepo_head(rb, "main", id, &e) == 0);
  gitrepo_close(rb);
  snprintf(other, sizeof other, "%s/nothing", base);
  CHECK(t, gitrepo_open(other, &ra, &e) == -1);
  CHECK_STR(t, e.code, "ENOENT");
  tg_rmtree(base);
}

TEST(test_gitrepo_commit_idempotent) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], wt[512], id[41], id2[41], id3[41];
  gr_err e;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  int created;
  tg_wt(base, "C7", wt);
  CHECK(t, gitrepo_worktree(r, "C7", wt, &created, &e) == 0);

  gr_paths st;
  tg_write(wt, "new.txt", "one\n");
  CHECK(t, gitrepo_status(r, "C7", &st, &e) == 0);
  CHECK(t, st.n == 1 && strcmp(st.v[0], "new.txt") == 0);
  gr_paths_free(&st);

  CHECK(t, tg_commit_file(r, wt, "C7", NULL, NULL, "run1/C7/1", id) == GR_COMMITTED);
  CHECK(t, gitrepo_status(r, "C7", &st, &e) == 0 && st.n == 0);
  gr_paths_free(&st);
  /* the same turn again: found by its trailer, nothing written */
  tg_write(wt, "new.txt", "changed after\n");
  CHECK(t, tg_commit_file(r, wt, "C7", NULL, NULL, "run1/C7/1", id2) == GR_EXISTS);
  CHECK_STR(t, id2, id);
  CHECK(t, gitrepo_find_trailer(r, "orket/C7", GR_TURN_TRAILER, "run1/C7/1", 1, id3, &e) == 1);
  CHECK_STR(t, id3, id);
  CHECK(t, gitrepo_find_trailer(r, "orket/C7", GR_TURN_TRAILER, "run1/C7/9", 1, id3, &e) == 0);
  CHECK(t, gitrepo_find_trailer(r, "main", GR_TURN_TRAILER, "run1/C7/1", 0, id3, &e) == 0);
  /* a new turn commits the change; then nothing left: CLEAN with HEAD's id */
  CHECK(t, tg_commit_file(r, wt, "C7", NULL, NULL, "run1/C7/2", id2) == GR_COMMITTED);
  CHECK(t, tg_commit_file(r, wt, "C7", NULL, NULL, "run1/C7/3", id3) == GR_CLEAN);
  CHECK_STR(t, id3, id2);
  /* deletions are committed too */
  char p[600];
  snprintf(p, sizeof p, "%s/new.txt", wt);
  unlink(p);
  CHECK(t, tg_commit_file(r, wt, "C7", NULL, NULL, NULL, id3) == GR_COMMITTED);

  gr_commit *log = NULL;
  size_t n = 0;
  CHECK(t, gitrepo_log(r, "orket/C7", 100, &log, &n, &e) == 0);
  CHECK(t, n == 3);
  if (n == 3) {
    CHECK_STR(t, log[0].id, id3); /* newest first */
    CHECK_STR(t, log[2].id, id);
    CHECK_STR(t, log[2].summary, "work");
    CHECK_STR(t, log[2].author_name, tg_who.name);
    CHECK_STR(t, log[2].author_email, tg_who.email);
  }
  gr_commits_free(log, n);
  CHECK(t, gitrepo_log(r, "main", 100, &log, &n, &e) == 0 && n == 1);
  gr_commits_free(log, n);

  gr_commit_kind kind;
  gr_sig bad = {"a<b", "x@y"};
  CHECK(t, gitrepo_commit(r, "C7", &bad, "m", NULL, NULL, NULL, id, &kind, NULL, &e) == -1);
  CHECK_STR(t, e.code, "EINVAL");
  CHECK(t, gitrepo_commit(r, "C7", &tg_who, "m", "has space", NULL, NULL, id, &kind, NULL, &e) == -1);
  CHECK(t, gitrepo_commit(r, "C7", &tg_who, " \n", NULL, NULL, NULL, id, &kind, NULL, &e) == -1);
  CHECK(t, gitrepo_commit(r, "NOPE", &tg_who, "m", NULL, NULL, NULL, id, &kind, NULL, &e) == -1);
  CHECK_STR(t, e.code, "ENOENT");
  gitrepo_close(r);
  tg_rmtree(base);
}

TEST(test_gitrepo_merges) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], a[512], b[512], c[512], d[512], id[41], m0[41],
       m1[41], buf[512];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int created;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  tg_wt(base, "A", a);
  tg_wt(base, "B", b);
  tg_wt(base, "C", c);
  tg_wt(base, "D", d);
  CHECK(t, gitrepo_worktree(r, "A", a, &created, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "B", b, &created, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "C", c, &created, &e) == 0);

  /* nothing done yet: up to date */
  CHECK(t, gitrepo_merge_to_main(r, "A", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_UPTODATE);
  /* A and B edit different files: A fast-forwards, B needs a merge commit; both land */
  CHECK(t, tg_commit_file(r, a, "A", "a.txt", "from A\n", NULL, id) == GR_COMMITTED);
  CHECK(t, tg_commit_file(r, b, "B", "b.txt", "from B\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "A", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_FASTFORWARD);
  CHECK(t, gitrepo_head(r, "orket/A", m0, &e) == 0);
  CHECK_STR(t, id, m0);
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "from A\n"); /* main's tree follows */
  CHECK(t, gitrepo_merge_to_main(r, "B", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_MERGED);
  CHECK(t, gitrepo_head(r, "main", m0, &e) == 0);
  CHECK_STR(t, id, m0);
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "from B\n");
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "from A\n");
  CHECK(t, gitrepo_merge_to_main(r, "B", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_UPTODATE);

  /* C started before A's work and edits a.txt too: a conflict, main untouched */
  CHECK(t, tg_commit_file(r, c, "C", "a.txt", "from C\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "C", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, kind == GR_CONFLICT);
  CHECK(t, conf.n == 1 && strcmp(conf.v[0], "a.txt") == 0);
  gr_paths_free(&conf);
  CHECK(t, gitrepo_head(r, "main", m1, &e) == 0);
  CHECK_STR(t, m1, m0);
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "from A\n");
  gr_paths st;
  CHECK(t, gitrepo_refresh(r, NULL, &created, &e) == 0 && created == 0);

  /* main into C: a merge commit with markers; the card resolves, then it merges cleanly */
  tg_write(c, "scratch", "uncommitted");
  CHECK(t, gitrepo_merge_from_main(r, "C", &tg_who, id, &kind, &conf, &e) == -1);
  CHECK_STR(t, e.code, "EDIRTY");
  char p[600];
  snprintf(p, sizeof p, "%s/scratch", c);
  unlink(p);
  CHECK(t, gitrepo_merge_from_main(r, "C", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, kind == GR_CONFLICT && conf.n == 1);
  gr_paths_free(&conf);
  tg_read(c, "a.txt", buf, sizeof buf);
  CHECK(t, strstr(buf, "<<<<<<< orket/C") && strstr(buf, "from C") && strstr(buf, "from A") &&
           strstr(buf, ">>>>>>> main"));
  CHECK_STR(t, tg_read(c, "b.txt", buf, sizeof buf), "from B\n"); /* main's other work is in */
  CHECK(t, gitrepo_status(r, "C", &st, &e) == 0 && st.n == 0);
  gr_paths_free(&st);
  gr_commit *log = NULL;
  size_t n = 0;
  CHECK(t, gitrepo_log(r, "orket/C", 10, &log, &n, &e) == 0 && n == 2 && log[0].parents == 2);
  gr_commits_free(log, n);
  CHECK(t, tg_commit_file(r, c, "C", "a.txt", "from A and C\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "C", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_FASTFORWARD);
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "from A and C\n");

  /* a card that started before all that: main into it fast-forwards (no work of its own) */
  CHECK(t, gitrepo_worktree(r, "D", d, &created, &e) == 0);
  CHECK(t, gitrepo_merge_from_main(r, "D", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_UPTODATE);
  CHECK(t, gitrepo_merge_from_main(r, "B", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_FASTFORWARD);
  CHECK_STR(t, tg_read(b, "a.txt", buf, sizeof buf), "from A and C\n");
  CHECK(t, gitrepo_check(r, &e) == 0);
  gitrepo_close(r);
  tg_rmtree(base);
}

/* A card's branch on a remote: fetched (absent: 0), then merged into the card (up to date
 * while it holds nothing new; a merge once the card moved on too); the card's directory
 * follows. The remote's commit on top is made by a copy of the
 * repository (a person's clone). */
TEST(test_gitrepo_fetch_branch) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], a[512], remote[600], copy[600], cmd[1600], id[41], mine[41],
       theirs[41], buf[512];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int created;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  tg_wt(base, "A", a);
  snprintf(remote, sizeof remote, "%s/remote.git", base);
  CHECK(t, gitrepo_init_bare(remote, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "A", a, &created, &e) == 0);
  CHECK(t, tg_commit_file(r, a, "A", "a.txt", "mine\n", NULL, mine) == GR_COMMITTED);
  CHECK(t, gitrepo_push(r, remote, "orket/A", 0, NULL, NULL, id, &e) == 0);
  CHECK(t, gitrepo_fetch_branch(r, remote, "orket/NONE", NULL, NULL, id, &e) == 0);
  CHECK(t, gitrepo_fetch_branch(r, remote, "orket/A", NULL, NULL, id, &e) == 1);
  CHECK_STR(t, id, mine);
  CHECK(t, gitrepo_merge_remote_to_card(r, "A", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_UPTODATE);
  gr_paths_free(&conf);
  /* the person's copy adds a commit on top and pushes it */
  snprintf(copy, sizeof copy, "%s/copy", base);
  snprintf(cmd, sizeof cmd, "cp -a '%s' '%s/ws2'", ws, base);
  CHECK(t, system(cmd) == 0);
  gitrepo *p = NULL;
  snprintf(cmd, sizeof cmd, "%s/ws2", base);
  CHECK(t, gitrepo_open(cmd, &p, &e) == 0);
  if (p == NULL) goto out;
  {
    char pstate[600];
    snprintf(pstate, sizeof pstate, "%s/pstate", base);
    CHECK(t, gitrepo_attach(p, "A", copy, pstate, &created, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
    CHECK(t, tg_commit_file(p, copy, "A", "p.txt", "theirs\n", NULL, theirs) == GR_COMMITTED);
    CHECK(t, gitrepo_push(p, remote, "orket/A", 0, NULL, NULL, id, &e) == 0);
  }
  /* the card moved on too */
  CHECK(t, tg_commit_file(r, a, "A", "b.txt", "more\n", NULL, mine) == GR_COMMITTED);
  CHECK(t, gitrepo_fetch_branch(r, remote, "orket/A", NULL, NULL, id, &e) == 1);
  CHECK_STR(t, id, theirs);
  /* merged: both in the branch and in the card's directory */
  CHECK(t, gitrepo_merge_remote_to_card(r, "A", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_MERGED);
  gr_paths_free(&conf);
  CHECK(t, gitrepo_contains(r, "refs/heads/orket/A", theirs, &e) == 1);
  CHECK_STR(t, tg_read(a, "p.txt", buf, sizeof buf), "theirs\n");
  CHECK_STR(t, tg_read(a, "b.txt", buf, sizeof buf), "more\n");
  CHECK(t, gitrepo_check(r, &e) == 0);
  gitrepo_close(p);
out:
  gitrepo_close(r);
  tg_rmtree(base);
}

/* The state a kill leaves between moving a card's ref and checking it out: the marker, the
 * branch at the new commit, files and index still old. */
static int tg_fake_crash(const char *ws, const char *card, const char *target_hex) {
  git_repository *repo = NULL;
  git_reference *ref = NULL;
  git_oid oid;
  char refname[128], marker[1024];
  int rc = git_repository_open(&repo, ws);
  if (rc == 0) rc = git_oid_fromstr(&oid, target_hex);
  snprintf(refname, sizeof refname, "refs/heads/orket/%s", card);
  if (rc == 0) rc = git_reference_create(&ref, repo, refname, &oid, 1, "test: crash");
  snprintf(marker, sizeof marker, "%s/.git/worktrees/%s/orket-checkout-pending", ws, card);
  FILE *f = rc == 0 ? fopen(marker, "w") : NULL;
  if (f) fclose(f);
  git_reference_free(ref);
  git_repository_free(repo);
  return f ? 0 : -1;
}

TEST(test_gitrepo_recovery) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], a[512], b[512], id[41], old[41], buf[256], p[700];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gr_commit_kind ck;
  int created, removed;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  tg_wt(base, "A", a);
  tg_wt(base, "B", b);
  CHECK(t, gitrepo_worktree(r, "A", a, &created, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "B", b, &created, &e) == 0);
  CHECK(t, gitrepo_head(r, "orket/B", old, &e) == 0);
  CHECK(t, tg_commit_file(r, a, "A", "x.txt", "x1\n", NULL, id) == GR_COMMITTED);
  CHECK(t, tg_commit_file(r, a, "A", "y.txt", "y1\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "A", &tg_who, id, &kind, &conf, &e) == 0);

  /* killed after B's branch moved to main's tip, before its files followed */
  CHECK(t, tg_fake_crash(ws, "B", id) == 0);
  CHECK_STR(t, tg_read(b, "x.txt", buf, sizeof buf), "(missing)");
  CHECK(t, gitrepo_check(r, &e) == -1);
  CHECK_STR(t, e.code, "EINCONSISTENT");
  tg_write(b, "y.txt", "y1\n"); /* this file was already written when the kill came */
  /* the next commit finishes the checkout first rather than committing the old files */
  CHECK(t, gitrepo_commit(r, "B", &tg_who, "turn", "k1", NULL, NULL, id, &ck, NULL, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, ck == GR_CLEAN);
  CHECK_STR(t, tg_read(b, "x.txt", buf, sizeof buf), "x1\n");
  CHECK(t, gitrepo_check(r, &e) == 0);

  /* the same, but someone changed a file the checkout must write: refused, file kept */
  CHECK(t, tg_fake_crash(ws, "B", old) == 0); /* "back" to the old commit: deletes x.txt */
  tg_write(b, "x.txt", "edited by hand\n");
  CHECK(t, gitrepo_recover(r, &removed, &e) == -1);
  CHECK_STR(t, e.code, "EDIRTY");
  CHECK_STR(t, tg_read(b, "x.txt", buf, sizeof buf), "edited by hand\n");
  tg_write(b, "x.txt", "x1\n");
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 && removed == 0);
  CHECK_STR(t, tg_read(b, "x.txt", buf, sizeof buf), "(missing)");

  /* stale lock files of a killed process block work until recovery removes them */
  snprintf(p, sizeof p, "%s/.git/refs/heads/orket/A.lock", ws);
  FILE *f = fopen(p, "w");
  if (f) fclose(f);
  snprintf(p, sizeof p, "%s/.git/worktrees/A/index.lock", ws);
  f = fopen(p, "w");
  if (f) fclose(f);
  tg_write(a, "z.txt", "z\n");
  CHECK(t, gitrepo_commit(r, "A", &tg_who, "turn", NULL, NULL, NULL, id, &ck, NULL, &e) == -1);
  CHECK_STR(t, e.code, "ELOCKED");
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 && removed == 2);
  CHECK(t, tg_commit_file(r, a, "A", NULL, NULL, NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_check(r, &e) == 0);

  /* killed before a first checkout wrote its index (the first commit, a new worktree):
   * the files are there, the index is not; settling writes it and no file changes */
  snprintf(p, sizeof p, "%s/.git/index", ws);
  CHECK(t, unlink(p) == 0);
  snprintf(p, sizeof p, "%s/.git/worktrees/A/index", ws);
  CHECK(t, unlink(p) == 0);
  CHECK(t, gitrepo_check(r, &e) == -1);
  gitrepo *again = NULL;
  CHECK(t, gitrepo_init(ws, &tg_who, &again, &created, &e) == 0 && created == 0);
  gitrepo_close(again);
  CHECK(t, gitrepo_worktree(r, "A", a, &created, &e) == 0 && created == 0);
  CHECK(t, gitrepo_check(r, &e) == 0);
  CHECK_STR(t, tg_read(ws, "README", buf, sizeof buf), "hello\n");
  CHECK_STR(t, tg_read(a, "z.txt", buf, sizeof buf), "z\n");
  gr_paths st;
  CHECK(t, gitrepo_status(r, "A", &st, &e) == 0 && st.n == 0);
  gr_paths_free(&st);

  /* a worktree whose directory vanished is made again; its branch keeps the work */
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", a);
  CHECK(t, system(cmd) == 0);
  CHECK(t, gitrepo_worktree(r, "A", a, &created, &e) == 0 && created == 1);
  CHECK_STR(t, tg_read(a, "z.txt", buf, sizeof buf), "z\n");
  git_libgit2_shutdown();
  gitrepo_close(r);
  tg_rmtree(base);
}








/* Ends a test of scenarios (tg_next): libgit2 let go, the repository closed, and base removed
 * unless the last scenario did (base emptied) or it was never made (still a template). */
static void tg_end(gitrepo *r, const char *base) {
  git_libgit2_shutdown();
  gitrepo_close(r);
  /* made (mkdtemp replaced the XXXXXX; its name may hold an X of its own) */
  size_t n = strlen(base);
  if (base[0] == '/' && n > 6 && strcmp(base + n - 6, "XXXXXX") != 0) tg_rmtree(base);
}

/* Ends one scenario of a test: the repository closed and removed, base ready for the next. */
static void tg_next(gitrepo **r, char *base) {
  gitrepo_close(*r);
  *r = NULL;
  tg_rmtree(base);
  strcpy(base, "/tmp/orket-git-XXXXXX");
}


/* A repository under base with cards A (a.txt) and B (files as given: name, data, ...,
 * NULL) committed, both from main's first commit; *m0 is that commit. */
static gitrepo *tg_two_cards(check_ctx *t, char *base, char *ws, char *m0, const char *const *bfiles) {
  char a[512], b[512], id[41];
  gr_err e;
  int created;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return NULL;
  tg_wt(base, "A", a);
  tg_wt(base, "B", b);
  CHECK(t, gitrepo_head(r, "main", m0, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "A", a, &created, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "B", b, &created, &e) == 0);
  CHECK(t, tg_commit_file(r, a, "A", "a.txt", "a\n", NULL, id) == GR_COMMITTED);
  for (size_t i = 0; bfiles[i]; i += 2) {
    const char *slash = strrchr(bfiles[i], '/');
    if (slash) {
      char d[700];
      snprintf(d, sizeof d, "%s/%.*s", b, (int)(slash - bfiles[i]), bfiles[i]);
      mkdir(d, 0755);
    }
    tg_write(b, bfiles[i], bfiles[i + 1]);
  }
  CHECK(t, tg_commit_file(r, b, "B", NULL, NULL, NULL, id) == GR_COMMITTED);
  return r;
}

/* Card's worktree under base: its files changed by hand as ops say ("rm PATH", "ln PATH
 * TARGET", "dir PATH": the file replaced by a directory, "put PATH DATA": its directories
 * made as needed), then committed. */
static int tg_card_change(gitrepo *r, const char *base, const char *card, const char *const *ops, char *id) {
  char wt[512], p[1400];
  gr_err e;
  int created;
  gr_commit_kind ck = GR_CLEAN;
  tg_wt(base, card, wt);
  if (gitrepo_worktree(r, card, wt, &created, &e) != 0) return -1;
  for (size_t i = 0; ops[i]; i += 3) {
    snprintf(p, sizeof p, "%s/%s", wt, ops[i + 1]);
    if (strcmp(ops[i], "rm") == 0) (void)unlink(p);
    else if (strcmp(ops[i], "rmdir") == 0) (void)rmdir(p);
    else if (strcmp(ops[i], "ln") == 0 && (unlink(p) != 0 && errno != ENOENT)) return -1;
    if (strcmp(ops[i], "ln") == 0 && symlink(ops[i + 2], p) != 0) return -1;
    if (strcmp(ops[i], "dir") == 0 && (unlink(p) != 0 || mkdir(p, 0755) != 0)) return -1;
    for (char *sl = strchr(p + strlen(wt) + 1, '/'); strcmp(ops[i], "put") == 0 && sl; sl = strchr(sl + 1, '/')) {
      *sl = '\0'; /* its directories first */
      (void)mkdir(p, 0755);
      *sl = '/';
    }
    if (strcmp(ops[i], "put") == 0 && tg_write(wt, ops[i + 1], ops[i + 2]) != 0) return -1;
  }
  return gitrepo_commit(r, card, &tg_who, "work", NULL, NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED ? 0 : -1;
}


/* The diverged path of status at path, or NULL. */
static const gr_view_path *tg_diverged(const gr_view_path *v, size_t n, const char *path) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i].path, path) == 0) return &v[i];
  return NULL;
}

/* main's view (view.c): after each merge it follows main where it still holds what it last
 * held; a person's file, edit, deletion or staged change at a path a merge changes is kept
 * and named by gitrepo_view_status, and never stops the merge; type changes are followed; a
 * crash between main's move and the view's refresh is caught up by recovery. */
TEST(test_gitrepo_view) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], p[1400];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gr_view_path *v = NULL;
  size_t n = 0, dv = 0;
  struct stat st;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  /* the issue's scenario: a person's file where a card then adds one */
  CHECK(t, tg_write(ws, "hello.txt", "draft\n") == 0);
  const char *c1[] = {"put", "hello.txt", "hi\n", "put", "b.txt", "b\n", "put", "a.txt", "a\n", NULL};
  CHECK(t, tg_card_change(r, base, "C1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "C1", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, gitrepo_view_last(r) == 1);
  CHECK_STR(t, tg_read(ws, "hello.txt", buf, sizeof buf), "draft\n");
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n");
  CHECK_STR(t, tg_index_blob(ws, "hello.txt", buf, sizeof buf), "hi\n"); /* git status: yours vs main's */
  CHECK(t, gitrepo_view_status(r, &v, &n, NULL, 0, 1, &e) == 0 && n == 1);
  const gr_view_path *d = tg_diverged(v, n, "hello.txt");
  CHECK(t, d && strcmp(d->main_kind, "file") == 0 && d->main_size == 3 && strcmp(d->view_kind, "file") == 0 &&
               d->view_size == 6 && strlen(d->main_id) == 40 && strcmp(d->main_id, d->view_id) != 0);
  gr_view_paths_free(v, n);
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));

  /* a person's edit, deletion and staged change at paths the next merge changes; a path
   * they left is followed */
  CHECK(t, tg_write(ws, "README", "mine\n") == 0);
  snprintf(p, sizeof p, "%s/b.txt", ws);
  CHECK(t, unlink(p) == 0);
  CHECK(t, tg_stage(ws, "a.txt", "staged a\n") == 0);
  const char *c2[] = {"put", "README", "theirs\n", "put", "b.txt", "b2\n", "put", "a.txt", "a2\n", "put", "c.txt",
                      "c\n", NULL};
  CHECK(t, tg_card_change(r, base, "C2", c2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "C2", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, gitrepo_view_last(r) == 3);
  CHECK_STR(t, tg_read(ws, "README", buf, sizeof buf), "mine\n");
  CHECK(t, lstat(p, &st) != 0);
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "staged a\n");
  CHECK_STR(t, tg_index_blob(ws, "a.txt", buf, sizeof buf), "staged a\n"); /* their staging is kept */
  CHECK_STR(t, tg_read(ws, "c.txt", buf, sizeof buf), "c\n");
  CHECK(t, gitrepo_view_status(r, &v, &n, NULL, 0, 1, &e) == 0 && n == 4);
  d = tg_diverged(v, n, "b.txt");
  CHECK(t, d && strcmp(d->view_kind, "none") == 0 && d->view_size == -1 && strcmp(d->main_kind, "file") == 0);
  CHECK(t, tg_diverged(v, n, "README") && tg_diverged(v, n, "a.txt") && !tg_diverged(v, n, "c.txt"));
  gr_view_paths_free(v, n);

  /* taking main's version ends a divergence */
  CHECK(t, tg_write(ws, "hello.txt", "hi\n") == 0 && tg_write(ws, "b.txt", "b2\n") == 0);
  CHECK(t, gitrepo_view_status(r, &v, &n, NULL, 0, 1, &e) == 0 && n == 2);
  CHECK(t, !tg_diverged(v, n, "hello.txt") && !tg_diverged(v, n, "b.txt"));
  gr_view_paths_free(v, n);

  /* type changes: a file turned directory, a directory turned file, a file turned symlink */
  const char *c3[] = {"put", "e", "e\n", "put", "g/h", "h\n", "put", "l", "l\n", NULL};
  CHECK(t, tg_card_change(r, base, "C3", c3, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "C3", &tg_who, id, &kind, &conf, &e) == 0);
  const char *c4[] = {"dir", "e", NULL, "put", "e/z", "z\n", "rm", "g/h", NULL, "ln", "l", "c.txt", NULL};
  CHECK(t, tg_card_change(r, base, "C4", c4, id) == 0);
  char wt4[512];
  tg_wt(base, "C4", wt4);
  snprintf(p, sizeof p, "%s/g", wt4);
  CHECK(t, rmdir(p) == 0 && tg_commit_file(r, wt4, "C4", "g", "now a file\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "C4", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "e/z", buf, sizeof buf), "z\n");
  CHECK_STR(t, tg_read(ws, "g", buf, sizeof buf), "now a file\n");
  snprintf(p, sizeof p, "%s/l", ws);
  CHECK(t, lstat(p, &st) == 0 && S_ISLNK(st.st_mode));
  CHECK(t, gitrepo_view_last(r) == 0);

  /* a person's file on the way of a directory a merge brings: theirs, the path named */
  CHECK(t, tg_write(ws, "f", "a person's f\n") == 0);
  const char *c5[] = {"put", "f/x", "x\n", NULL};
  CHECK(t, tg_card_change(r, base, "C5", c5, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "C5", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK_STR(t, tg_read(ws, "f", buf, sizeof buf), "a person's f\n");
  CHECK(t, gitrepo_view_status(r, &v, &n, NULL, 0, 1, &e) == 0 && tg_diverged(v, n, "f/x") != NULL);
  gr_view_paths_free(v, n);

  /* main moved, the view not refreshed (a kill between the two): recovery catches up, and a
   * second refresh finds nothing to do */
  const char *c6[] = {"put", "k.txt", "k\n", NULL};
  CHECK(t, tg_card_change(r, base, "C6", c6, id) == 0);
  CHECK(t, tg_move_main(ws, id, "a fast-forward behind the view's back") == 0);
  CHECK_STR(t, tg_read(ws, "k.txt", buf, sizeof buf), "(missing)");
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "k.txt", buf, sizeof buf), "k\n");
  CHECK(t, gitrepo_view_refresh(r, &dv, &e) == 0 && dv == 0);
  CHECK_STR(t, tg_read(ws, "README", buf, sizeof buf), "mine\n");
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));

  /* a base the object database no longer has (a person's gc): main's tree before its last
   * move stands in (its reflog) */
  CHECK(t, tg_write(ws, ".git/orket-view", "orket-view 1 1111111111111111111111111111111111111111\n") == 0);
  const char *c7[] = {"put", "m.txt", "m\n", NULL};
  CHECK(t, tg_card_change(r, base, "C7", c7, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "C7", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "m.txt", buf, sizeof buf), "m\n");
  CHECK_STR(t, tg_read(ws, "README", buf, sizeof buf), "mine\n");
done:
  tg_end(r, base);
}

/* Notes ref (a loose ref file under ws/.git) and where it points now, so that each sync
 * logged from here on says whether it came before the ref moved (tg_log_sync). 0 or -1. */
static int tg_note_ref(const char *ws, const char *ref, gitrepo *r) {
  gr_err e;
  snprintf(tg_ref_path, sizeof tg_ref_path, "%s/.git/%s", ws, ref);
  tg_nsyncs = 0;
  return gitrepo_head(r, ref + strlen("refs/heads/"), tg_ref_before, &e);
}

/* Durable writes (docs/git.md): libgit2 syncs nothing itself; a commit is made durable by a
 * syncfs before its branch moves (the objects) and one after (the move); a merge commit into
 * main the same; a fast-forward of main by one after (the commits it names were synced). */
/* The view's refresh takes its base, the tree its last refresh went to, from memory, not
 * from the object database again: main's root tree grows with the board, and each read
 * inflated, hashed and parsed all of it at every merge. Seen here by removing that tree's
 * object before the next merge: read from the database, it would be missing, and the
 * fallback (the index's tree, written again) would put it back. */
TEST(test_gitrepo_view_base_kept) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], obj[1400];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  struct stat st;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  /* a tree over libgit2's cache limit (4 KB), which the library's own cache does not keep */
  enum { K1_FILES = 200 };
  static char names[K1_FILES][24];
  const char *c1[K1_FILES * 3 + 4];
  size_t k = 0;
  for (int i = 0; i < K1_FILES; i++) {
    snprintf(names[i], sizeof names[i], "f-%03d.txt", i);
    c1[k++] = "put", c1[k++] = names[i], c1[k++] = "f\n";
  }
  c1[k++] = "put", c1[k++] = "one.txt", c1[k++] = "1\n", c1[k] = NULL;
  CHECK(t, tg_card_change(r, base, "K1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "K1", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  const char *c2[] = {"put", "two.txt", "2\n", NULL};
  CHECK(t, tg_card_change(r, base, "K2", c2, id) == 0);
  /* main's tree now, the view's base: its object goes */
  git_repository *repo = NULL;
  git_object *tree = NULL;
  char hex[41] = "";
  CHECK(t, git_repository_open(&repo, ws) == 0 && git_revparse_single(&tree, repo, "main^{tree}") == 0);
  if (tree) git_oid_tostr(hex, sizeof hex, git_object_id(tree));
  git_object_free(tree);
  git_repository_free(repo);
  snprintf(obj, sizeof obj, "%s/.git/objects/%.2s/%s", ws, hex, hex + 2);
  CHECK(t, strlen(hex) == 40 && unlink(obj) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "K2", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, gitrepo_view_last(r) == 0);
  CHECK_STR(t, tg_read(ws, "two.txt", buf, sizeof buf), "2\n");
  CHECK_STR(t, tg_read(ws, "one.txt", buf, sizeof buf), "1\n");
  CHECK(t, lstat(obj, &st) != 0); /* the base was not looked for: not written back either */
  gitrepo_close(r);
  git_libgit2_shutdown();
  tg_rmtree(base);
}

/* A person's git add between the refresh's read of main's index and its write (git takes
 * the index's lock only to write) is not written over: the refresh sees the index changed
 * and runs again from what they staged. */
TEST(test_gitrepo_view_index_raced) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], ip[600], cmd[1400];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "a.txt", "a\n", NULL};
  CHECK(t, tg_card_change(r, base, "R1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "R1", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, tg_write(ws, "mine.txt", "a person's new file\n") == 0);
  snprintf(ip, sizeof ip, "%s/.git/index", ws);
  snprintf(cmd, sizeof cmd, "git -C '%s' add mine.txt", ws);
  const char *c2[] = {"put", "b.txt", "b\n", NULL};
  CHECK(t, tg_card_change(r, base, "R2", c2, id) == 0);
  /* the refresh's first look at the index is before its read, the second before its write */
  tg_stat_hook_seen = 0, tg_stat_hook_at = 2, tg_stat_hook_cmd = cmd, tg_stat_hook_path = ip;
  CHECK(t, gitrepo_merge_to_main(r, "R2", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  tg_stat_hook_path = NULL;
  CHECK(t, tg_stat_hook_seen >= 3); /* it looked again, and read again */
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n");
  /* what they staged is still staged, and main's new file is clean in git's eyes */
  snprintf(cmd, sizeof cmd, "git -C '%s' status --porcelain", ws);
  FILE *p = popen(cmd, "r");
  size_t got = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
  buf[got] = '\0';
  if (p) pclose(p);
  CHECK_STR(t, buf, "A  mine.txt\n");
  CHECK(t, gitrepo_view_last(r) == 0);
  tg_end(r, base);
}

/* The refresh's temporary files take no name a tree can hold: main's file named as the old
 * fixed temporary name (.orket-view.tmp) stays in the view, and a directory of that name
 * stops no write beside it (each was taken for a person's deletion). */
TEST(test_gitrepo_view_tmp_names) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], cmd[1400];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", ".orket-view.tmp", "main's own\n", "put", "a.txt", "a\n", "put", "sub/.orket-view.tmp/x.txt",
                      "x\n", "put", "sub/1.orket-view", "1\n", NULL};
  CHECK(t, tg_card_change(r, base, "N1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "N1", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, gitrepo_view_last(r) == 0);
  CHECK_STR(t, tg_read(ws, ".orket-view.tmp", buf, sizeof buf), "main's own\n");
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a\n");
  CHECK_STR(t, tg_read(ws, "sub/.orket-view.tmp/x.txt", buf, sizeof buf), "x\n");
  /* a person's file named as a temporary file of the gitdir's would be, beside main's */
  CHECK(t, tg_write(ws, "sub/1.0", "a person's\n") == 0);
  const char *c2[] = {"put", "b.txt", "b\n", "put", "sub/c.txt", "c\n", NULL};
  CHECK(t, tg_card_change(r, base, "N2", c2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "N2", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, gitrepo_view_last(r) == 0);
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n");
  CHECK_STR(t, tg_read(ws, "sub/c.txt", buf, sizeof buf), "c\n");
  CHECK_STR(t, tg_read(ws, ".orket-view.tmp", buf, sizeof buf), "main's own\n");
  CHECK_STR(t, tg_read(ws, "sub/1.0", buf, sizeof buf), "a person's\n");
  /* git sees main's files as main's: only the person's file is new */
  snprintf(cmd, sizeof cmd, "git -C '%s' status --porcelain", ws);
  FILE *p = popen(cmd, "r");
  size_t got = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
  buf[got] = '\0';
  if (p) pclose(p);
  CHECK_STR(t, buf, "?? sub/1.0\n");
  /* nothing left in the refresh's own directory */
  snprintf(cmd, sizeof cmd, "find '%s/.git/orket-view-tmp' -mindepth 1 | grep -q .", ws);
  CHECK(t, system(cmd) != 0);
  tg_end(r, base);
}

/* Runs gitrepo_merge_to_main of card's commit id in a child process given 20 s: what it
 * returned (1: merged, the view not followed), or -2 when it had to be killed (blocked). */
static int tg_merge_bounded(gitrepo *r, const char *card, char *id) {
  pid_t pid = fork();
  if (pid == 0) {
    gr_err e;
    gr_paths conf;
    gr_merge_kind kind;
    alarm(20);
    _exit(gitrepo_merge_to_main(r, card, &tg_who, id, &kind, &conf, &e) + 1);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid) return -2;
  return WIFEXITED(st) ? WEXITSTATUS(st) - 1 : -2;
}

/* A FIFO at main's index (or at HEAD) never blocks a merge's refresh: the merge stands, the
 * view is behind with the reason naming the path, and once the file is one again the view
 * catches up. */
TEST(test_gitrepo_view_fifo_index) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], p[1400], behind[GR_VIEW_WHY];
  gr_err e;
  gr_view_path *v = NULL;
  size_t n = 0, dv = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "a.txt", "a\n", NULL};
  CHECK(t, tg_card_change(r, base, "F1", c1, id) == 0);
  snprintf(p, sizeof p, "%s/.git/index", ws);
  CHECK(t, unlink(p) == 0 && mkfifo(p, 0644) == 0);
  CHECK(t, tg_merge_bounded(r, "F1", id) == 1); /* merged; the view behind */
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "(missing)");
  CHECK(t, gitrepo_view_status(r, &v, &n, behind, sizeof behind, 1, &e) == 0 && n == 0);
  gr_view_paths_free(v, n);
  CHECK(t, strstr(behind, "/.git/index is a FIFO, not a regular file") != NULL || !fprintf(stderr, "    %s\n", behind));
  /* HEAD a FIFO: said, never read */
  char hp[1400];
  snprintf(hp, sizeof hp, "%s/.git/HEAD", ws);
  CHECK(t, unlink(hp) == 0 && mkfifo(hp, 0644) == 0);
  pid_t pid = fork();
  if (pid == 0) {
    alarm(20);
    _exit(gitrepo_view_refresh(r, &dv, &e) == -1 && strcmp(e.code, "EUNSAFE") == 0 && strstr(e.msg, "HEAD") ? 0 : 1);
  }
  int st = 0;
  CHECK(t, pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CHECK(t, unlink(hp) == 0 && tg_write(ws, ".git/HEAD", "ref: refs/heads/main\n") == 0);
  /* the index a file again (git reset writes main's): the next refresh catches up */
  CHECK(t, unlink(p) == 0);
  snprintf(p, sizeof p, "git -C '%s' reset -q", ws);
  CHECK(t, system(p) == 0);
  CHECK(t, gitrepo_view_refresh(r, &dv, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, gitrepo_view_status(r, &v, &n, behind, sizeof behind, 1, &e) == 0 && behind[0] == '\0');
  gr_view_paths_free(v, n);
  tg_end(r, base);
}

/* A view state that is there but cannot be read (empty after a power cut, or garbled) does
 * not make main's index the base: what the person staged stays staged, their file is not
 * written over; main's tree before its last move is the base. */
TEST(test_gitrepo_view_state_unreadable) {
  /* empty, a zero id, garbled, and a base gone from the object database (a person's gc) */
  static const char *const states[] = {"", "orket-view 1 0000000000000000000000000000000000000000\n", "garbage",
                                       "orket-view 1 1111111111111111111111111111111111111111\n", NULL};
  for (size_t k = 0; states[k]; k++) {
    char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], card[8];
    gr_err e;
    gr_paths conf;
    gr_merge_kind kind;
    gitrepo *r = tg_setup(t, base, ws);
    if (r == NULL) return;
    git_libgit2_init();
    const char *c1[] = {"put", "c1.txt", "main's first\n", "put", "same.txt", "s\n", NULL};
    snprintf(card, sizeof card, "U%zu", k);
    CHECK(t, tg_card_change(r, base, card, c1, id) == 0);
    CHECK(t, gitrepo_merge_to_main(r, card, &tg_who, id, &kind, &conf, &e) == 0);
    /* staged as one version, the file edited again; another staged and left as staged */
    CHECK(t, tg_stage(ws, "c1.txt", "person staged\n") == 0 && tg_write(ws, "c1.txt", "person edits on\n") == 0);
    CHECK(t, tg_stage(ws, "same.txt", "staged as is\n") == 0);
    CHECK(t, tg_write(ws, ".git/orket-view", states[k]) == 0);
    const char *c2[] = {"put", "c1.txt", "card two\n", "put", "same.txt", "card two\n", "put", "new.txt", "n\n", NULL};
    snprintf(card, sizeof card, "V%zu", k);
    CHECK(t, tg_card_change(r, base, card, c2, id) == 0);
    CHECK(t, gitrepo_merge_to_main(r, card, &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
    CHECK_STR(t, tg_index_blob(ws, "c1.txt", buf, sizeof buf), "person staged\n");
    CHECK_STR(t, tg_read(ws, "c1.txt", buf, sizeof buf), "person edits on\n");
    CHECK_STR(t, tg_index_blob(ws, "same.txt", buf, sizeof buf), "staged as is\n");
    CHECK_STR(t, tg_read(ws, "same.txt", buf, sizeof buf), "staged as is\n");
    /* main's tree before this merge (its intent, recorded first) is the base: the merge's own change is
     * followed, and both of the person's paths are named */
    CHECK_STR(t, tg_read(ws, "new.txt", buf, sizeof buf), "n\n");
    CHECK(t, gitrepo_view_last(r) == 2);
    /* the state is whole again: a later merge follows main */
    const char *c3[] = {"put", "later.txt", "l\n", NULL};
    snprintf(card, sizeof card, "W%zu", k);
    CHECK(t, tg_card_change(r, base, card, c3, id) == 0);
    CHECK(t, gitrepo_merge_to_main(r, card, &tg_who, id, &kind, &conf, &e) == 0);
    CHECK_STR(t, tg_read(ws, "later.txt", buf, sizeof buf), "l\n");
    tg_end(r, base);
  }
}

/* A base guessed (the state unreadable) is older than what the view holds: a person's
 * unstaged restore of the older version matches it, but main's index holds the newer entry,
 * and the file is theirs: recorded, not written over. */
TEST(test_gitrepo_view_guessed_base_keeps) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  size_t dv = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "c1.txt", "one\n", NULL};
  CHECK(t, tg_card_change(r, base, "R1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "R1", &tg_who, id, &kind, &conf, &e) == 0);
  const char *c2[] = {"put", "c1.txt", "two\n", NULL};
  CHECK(t, tg_card_change(r, base, "R2", c2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "R2", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK_STR(t, tg_read(ws, "c1.txt", buf, sizeof buf), "two\n");
  CHECK(t, tg_write(ws, "c1.txt", "one\n") == 0); /* the person's restore, not staged */
  CHECK(t, tg_write(ws, ".git/orket-view", "") == 0);
  CHECK(t, gitrepo_view_refresh(r, &dv, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "c1.txt", buf, sizeof buf), "one\n");
  CHECK(t, dv == 1 || !fprintf(stderr, "    diverged %zu\n", dv));
  tg_end(r, base);
}

/* The refresh's temporary directory: what a process that is gone left is removed, what a
 * live process (another run refreshing at the same moment) is writing is left alone. */
TEST(test_gitrepo_view_tmp_sweep) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], live[64], dead[64], p[1400];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  CHECK(t, gone > 0 && waitpid(gone, NULL, 0) == gone);
  snprintf(live, sizeof live, ".git/orket-view-tmp/%ld.0", (long)getppid());
  snprintf(dead, sizeof dead, ".git/orket-view-tmp/%ld.0", (long)gone);
  snprintf(p, sizeof p, "%s/.git/orket-view-tmp", ws);
  (void)mkdir(p, 0777);
  CHECK(t, tg_write(ws, live, "in flight\n") == 0 && tg_write(ws, dead, "left by a kill\n") == 0);
  const char *c1[] = {"put", "a.txt", "a\n", NULL};
  CHECK(t, tg_card_change(r, base, "S1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "S1", &tg_who, id, &kind, &conf, &e) == 0);
  char buf[64];
  CHECK_STR(t, tg_read(ws, live, buf, sizeof buf), "in flight\n");
  CHECK_STR(t, tg_read(ws, dead, buf, sizeof buf), "(missing)");
  tg_end(r, base);
}

/* Written beside their paths (the gitdir's temporary directory cannot be used), the files a
 * killed refresh left in a folder the next refresh writes into are removed there: a gone
 * process's file or symlink (the link removed, its target kept), never a live process's or
 * this one's, nor a directory or another name. Before, they stayed in the person's folder
 * for good, untracked in git status. */
TEST(test_gitrepo_view_beside_sweep) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[64], p[1400];
  char dead[64], deadlink[64], deaddir[64], odd[64], live[64], self[64];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  CHECK(t, gone > 0 && waitpid(gone, NULL, 0) == gone);
  snprintf(dead, sizeof dead, "d/.orket-view-%ld.0.tmp", (long)gone);
  snprintf(deadlink, sizeof deadlink, "d/.orket-view-%ld.1.tmp", (long)gone);
  snprintf(deaddir, sizeof deaddir, "d/.orket-view-%ld.2.tmp", (long)gone);
  snprintf(odd, sizeof odd, "d/.orket-view-%ld.3.tmp~", (long)gone);
  snprintf(live, sizeof live, "d/.orket-view-%ld.0.tmp", (long)getppid());
  snprintf(self, sizeof self, "d/.orket-view-%ld.0.tmp", (long)getpid());
  CHECK(t, tg_write(ws, ".git/orket-view-tmp", "a file: no directory can be made there\n") == 0);
  snprintf(p, sizeof p, "%s/d", ws);
  CHECK(t, mkdir(p, 0777) == 0);
  snprintf(p, sizeof p, "%s/%s", ws, deaddir);
  CHECK(t, mkdir(p, 0777) == 0);
  snprintf(p, sizeof p, "%s/%s", ws, deadlink);
  CHECK(t, symlink("keep.txt", p) == 0);
  CHECK(t, tg_write(ws, "d/keep.txt", "kept\n") == 0 && tg_write(ws, dead, "left by a kill\n") == 0 &&
               tg_write(ws, odd, "not ours\n") == 0 && tg_write(ws, live, "in flight\n") == 0 &&
               tg_write(ws, self, "ours\n") == 0);
  /* each folder written is swept, its subfolder's writes between its own (path order) */
  char deep[64], top[64];
  snprintf(deep, sizeof deep, "d/e/.orket-view-%ld.0.tmp", (long)gone);
  snprintf(top, sizeof top, ".orket-view-%ld.0.tmp", (long)gone);
  snprintf(p, sizeof p, "%s/d/e", ws);
  CHECK(t, mkdir(p, 0777) == 0 && tg_write(ws, deep, "left\n") == 0 && tg_write(ws, top, "left\n") == 0);
  const char *c1[] = {"put", "d/x.txt", "x\n", "put", "d/e/y.txt", "y\n", "put", "d/z.txt", "z\n", "put", "top.txt", "t\n",
                      NULL};
  CHECK(t, tg_card_change(r, base, "B1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "B1", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, gitrepo_view_last(r) == 0);
  CHECK_STR(t, tg_read(ws, "d/x.txt", buf, sizeof buf), "x\n");
  CHECK_STR(t, tg_read(ws, "d/e/y.txt", buf, sizeof buf), "y\n");
  CHECK_STR(t, tg_read(ws, "top.txt", buf, sizeof buf), "t\n");
  CHECK_STR(t, tg_read(ws, dead, buf, sizeof buf), "(missing)");
  CHECK_STR(t, tg_read(ws, deep, buf, sizeof buf), "(missing)");
  CHECK_STR(t, tg_read(ws, top, buf, sizeof buf), "(missing)");
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", ws, deadlink);
  CHECK(t, lstat(p, &st) != 0 && errno == ENOENT);
  CHECK_STR(t, tg_read(ws, "d/keep.txt", buf, sizeof buf), "kept\n");
  snprintf(p, sizeof p, "%s/%s", ws, deaddir);
  CHECK(t, stat(p, &st) == 0 && S_ISDIR(st.st_mode));
  CHECK_STR(t, tg_read(ws, odd, buf, sizeof buf), "not ours\n");
  CHECK_STR(t, tg_read(ws, live, buf, sizeof buf), "in flight\n");
  CHECK_STR(t, tg_read(ws, self, buf, sizeof buf), "ours\n");
  tg_end(r, base);
}

/* main's commit and root tree ids, as git reads them in the repository at ws -> 0 | -1 */
static int tg_main_ids(const char *ws, char commit[41], char tree[41]) {
  char cmd[700];
  snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse main main^{tree}", ws);
  FILE *p = popen(cmd, "r");
  int ok = p != NULL && fscanf(p, "%40s %40s", commit, tree) == 2;
  if (p) pclose(p);
  return ok ? 0 : -1;
}

/* A merge reads the view's state once: its intent takes the base's commit from the state's
 * head (written before the paths). A state an older orket wrote, the commit after the
 * paths, is read whole for it: taken for a state without a commit, the last merge's own
 * change counted as a person's move of main, and the next merge's change at that path was
 * left unwritten, listed. */
TEST(test_gitrepo_view_state_head) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], tree[41] = "", commit[41] = "", cmd[700];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init(); /* tg_end shuts it down */
  const char *c1[] = {"put", "a.txt", "1\n", NULL};
  CHECK(t, tg_card_change(r, base, "H1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "H1", &tg_who, id, &kind, &conf, &e) == 0);
  /* the records come before the paths */
  char st[2048];
  snprintf(cmd, sizeof cmd, "%s/.git/orket-view", ws);
  FILE *f = fopen(cmd, "r");
  size_t n = f ? fread(st, 1, sizeof st, f) : 0;
  if (f) fclose(f);
  CHECK(t, n > 54 + 6 && memcmp(st + 54, "/base ", 6) == 0);
  /* as an older orket wrote it: a path listed, then the commit */
  CHECK(t, tg_main_ids(ws, commit, tree) == 0);
  snprintf(cmd, sizeof cmd, "%s/.git/orket-view", ws);
  f = fopen(cmd, "w");
  CHECK(t, f != NULL);
  if (f) {
    fprintf(f, "orket-view 1 %s\n", tree);
    fwrite("x.txt", 1, 6, f);
    fprintf(f, "/base %s", commit);
    fputc('\0', f);
    fclose(f);
  }
  const char *c2[] = {"put", "a.txt", "2\n", NULL};
  CHECK(t, tg_card_change(r, base, "H1", c2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "H1", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "2\n");
  CHECK(t, gitrepo_view_last(r) == 0);
  tg_end(r, base);
}

/* Writes main's view's state by hand: the header for main's tree, then body (n bytes). */
static void tg_state(const char *ws, const char *tree, const char *body, size_t n) {
  char p[600];
  snprintf(p, sizeof p, "%s/.git/orket-view", ws);
  FILE *f = fopen(p, "w");
  if (f == NULL) return;
  fprintf(f, "orket-view 1 %s\n", tree);
  fwrite(body, 1, n, f);
  fclose(f);
}

/* The state's records are read wherever they sit (an older orket rewriting the state, or a
 * hand edit, may put them after the paths), a path or a move's path written twice counts
 * once, and a state cut inside the move's paths keeps the move with the paths read before the
 * cut: still readable, nothing listed, nothing named. */
TEST(test_gitrepo_view_moved_records) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], tree[41] = "", commit[41] = "", cmd[700], body[1024];
  char from[GR_OID_HEX + 1], to[GR_OID_HEX + 1];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gr_view_path *v = NULL;
  size_t n = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init(); /* tg_end shuts it down */
  const char *c1[] = {"put", "a.txt", "1\n", NULL};
  CHECK(t, tg_card_change(r, base, "M1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "M1", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, tg_main_ids(ws, commit, tree) == 0);
  snprintf(cmd, sizeof cmd, "%s/a.txt", ws);
  FILE *f = fopen(cmd, "w"); /* the person's a.txt: differs from main's */
  CHECK(t, f != NULL);
  if (f) {
    fputs("mine\n", f);
    fclose(f);
  }
  /* the paths first (a.txt twice), then the records, the move's path twice */
  int k = snprintf(body, sizeof body, "a.txt%cb.txt%ca.txt%c/base %s%c/moved %s %s%c/moved-path a.txt%c/moved-path a.txt%c",
                   0, 0, 0, commit, 0, commit, commit, 0, 0, 0);
  tg_state(ws, tree, body, (size_t)k);
  CHECK(t, gitrepo_view_moved(r, from, to) == 1);
  CHECK_STR(t, from, commit);
  CHECK(t, gitrepo_view_status(r, &v, &n, NULL, 0, 0, &e) == 0 && n == 1);
  CHECK(t, n == 1 && strcmp(v[0].path, "a.txt") == 0);
  gr_view_paths_free(v, n);
  v = NULL;
  /* cut inside the move's paths: the move and its first path are left, and no path listed */
  k = snprintf(body, sizeof body, "/base %s%c/moved %s %s%c/moved-path b.txt%c/moved-pa", commit, 0, commit, commit, 0, 0);
  tg_state(ws, tree, body, (size_t)k);
  CHECK(t, gitrepo_view_moved(r, from, to) == 0);
  CHECK(t, gitrepo_view_status(r, &v, &n, NULL, 0, 0, &e) == 0 && n == 0);
  gr_view_paths_free(v, n);
  tg_end(r, base);
}

/* Status's forget rebuilds the list without a scan per kept path: with 3,000 paths still
 * listed and 3,000 settled, its string comparisons stay linear-ish (the reader's and the
 * listing's sorts), where a search of the kept list per path made 4.5 million. */
TEST(test_gitrepo_view_forget_linear) {
  enum { HALF = 3000 };
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], tree[41] = "", commit[41] = "", p[700];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gr_view_path *v = NULL;
  size_t n = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init(); /* tg_end shuts it down */
  const char *c1[] = {"put", "a.txt", "1\n", NULL};
  CHECK(t, tg_card_change(r, base, "F1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "F1", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, tg_main_ids(ws, commit, tree) == 0);
  /* blk/... stay listed (a person's file blk in the way, main has nothing there); gone/...
   * are settled (nothing on disk, nothing in main) */
  CHECK(t, tg_write(ws, "blk", "mine\n") == 0);
  size_t cap = (size_t)HALF * 2 * 16, len = 0;
  char *body = malloc(cap);
  CHECK(t, body != NULL);
  if (body == NULL) {
    tg_end(r, base);
    return;
  }
  for (unsigned i = 0; i < HALF; i++) {
    len += (size_t)snprintf(body + len, cap - len, "blk/p%05u", i) + 1;
    len += (size_t)snprintf(body + len, cap - len, "gone/p%05u", i) + 1;
  }
  tg_state(ws, tree, body, len);
  free(body);
  tg_cmps = 0;
  tg_cmp_on = 1;
  int rc = gitrepo_view_status(r, &v, &n, NULL, 0, 1, &e);
  tg_cmp_on = 0;
  CHECK(t, rc == 0 && n == HALF);
  CHECK(t, tg_cmps < (size_t)HALF * 2 * 40 || !fprintf(stderr, "    %zu comparisons\n", tg_cmps));
  snprintf(p, sizeof p, "blk/p%05u", HALF - 1);
  CHECK(t, n == HALF && strcmp(v[0].path, "blk/p00000") == 0 && strcmp(v[HALF - 1].path, p) == 0);
  gr_view_paths_free(v, n);
  v = NULL;
  /* the settled ones were forgotten, the listed ones kept */
  CHECK(t, gitrepo_view_status(r, &v, &n, NULL, 0, 0, &e) == 0 && n == HALF);
  gr_view_paths_free(v, n);
  snprintf(p, sizeof p, "%s/.git/orket-view", ws);
  FILE *f = fopen(p, "r");
  size_t sn = 0;
  char *all = malloc((size_t)HALF * 2 * 16);
  if (f && all) sn = fread(all, 1, (size_t)HALF * 2 * 16 - 1, f);
  if (f) fclose(f);
  int gone = 0;
  for (size_t i = 0; all && i + 5 <= sn; i++) gone |= memcmp(all + i, "gone/", 5) == 0;
  CHECK(t, sn > 0 && !gone);
  free(all);
  tg_end(r, base);
}

/* The refresh's temporary directory is listed once a handle, not at each refresh that
 * writes a file: a killed process's file found after the handle's first refresh stays until
 * the next handle's (a restart's recover()), which removes it. */
TEST(test_gitrepo_view_tmp_sweep_once) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], dead[64], buf[64];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  CHECK(t, gone > 0 && waitpid(gone, NULL, 0) == gone);
  const char *c1[] = {"put", "a.txt", "a\n", NULL};
  CHECK(t, tg_card_change(r, base, "S1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "S1", &tg_who, id, &kind, &conf, &e) == 0);
  snprintf(dead, sizeof dead, ".git/orket-view-tmp/%ld.0", (long)gone);
  CHECK(t, tg_write(ws, dead, "left by a kill\n") == 0);
  const char *c2[] = {"put", "b.txt", "b\n", NULL};
  CHECK(t, tg_card_change(r, base, "S1", c2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "S1", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n"); /* the second refresh wrote */
  CHECK_STR(t, tg_read(ws, dead, buf, sizeof buf), "left by a kill\n");
  CHECK(t, tg_restart(&r, ws, &e) == 0);
  CHECK_STR(t, tg_read(ws, dead, buf, sizeof buf), "(missing)");
  tg_end(r, base);
}

/* The state's head reader (a merge's intent) refuses a state over the readers' cap (8 MB)
 * as the whole reader does: unreadable, no base, its head not read. Taken from its head,
 * the base's commit there (main's commit before the last merge) made the next merge's
 * intent start there, and the refresh, guessing its base from that intent, took the last
 * merge's own file for a person's and left the new one unwritten. */
TEST(test_gitrepo_view_state_head_cap) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[128], tree[41] = "", c0[41] = "", c1[41] = "";
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init(); /* tg_end shuts it down */
  const char *a1[] = {"put", "a.txt", "1\n", NULL};
  CHECK(t, tg_card_change(r, base, "C1", a1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "C1", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, tg_main_ids(ws, c1, tree) == 0);
  /* main's commit before that merge: the merge's intent names it first */
  CHECK(t, strlen(tg_read(ws, ".git/orket-view-intent", buf, sizeof buf)) == 82);
  memcpy(c0, buf, 40);
  c0[40] = '\0';
  CHECK(t, strcmp(c0, c1) != 0);
  /* a well-formed head naming c0 as the base's commit, then paths past the cap */
  size_t cap = ((size_t)8 << 20) + 64, n = 0;
  char *body = malloc(cap);
  CHECK(t, body != NULL);
  if (body == NULL) {
    tg_end(r, base);
    return;
  }
  n += (size_t)snprintf(body, cap, "/base %s%c", c0, 0);
  for (unsigned i = 0; n + 16 < cap; i++) n += (size_t)snprintf(body + n, cap - n, "p%08u", i) + 1;
  tg_state(ws, tree, body, n);
  free(body);
  const char *a2[] = {"put", "a.txt", "2\n", NULL};
  CHECK(t, tg_card_change(r, base, "C1", a2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "C1", &tg_who, id, &kind, &conf, &e) == 0);
  /* the intent starts at main's commit before this merge, not at the refused state's */
  CHECK(t, strlen(tg_read(ws, ".git/orket-view-intent", buf, sizeof buf)) == 82 && memcmp(buf, c1, 40) == 0);
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "2\n");
  CHECK(t, gitrepo_view_last(r) == 0);
  tg_end(r, base);
}

/* A state whose move's paths would take it past the readers' cap (8 MB) keeps the move
 * without them, named by the older rule, rather than become unreadable with every path. */
TEST(test_gitrepo_view_moved_cap) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], tree[41] = "", commit[41] = "", cmd[700], name[210];
  char from[GR_OID_HEX + 1], to[GR_OID_HEX + 1];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init(); /* tg_end shuts it down */
  const char *c1[] = {"put", "a.txt", "1\n", NULL};
  CHECK(t, tg_card_change(r, base, "M2", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "M2", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, tg_main_ids(ws, commit, tree) == 0);
  /* the move and 1,000 of its paths (22 KB of records), then paths to 100 bytes under the
   * cap: the next merge's listed path (205 bytes) takes the whole past it, not the state
   * without the move's paths */
  size_t cap = (size_t)8 << 20, n = 0, head = strlen("orket-view 1 ") + 41;
  char *body = malloc(cap);
  CHECK(t, body != NULL);
  if (body == NULL) {
    tg_end(r, base);
    return;
  }
  n += (size_t)snprintf(body, cap, "/base %s%c/moved %s %s%c", commit, 0, commit, commit, 0);
  for (unsigned i = 0; i < 1000; i++) n += (size_t)snprintf(body + n, cap - n, "/moved-path p%08u", i) + 1;
  for (unsigned i = 0; head + n + 10 <= cap - 100; i++) n += (size_t)snprintf(body + n, cap - n, "p%08u", i) + 1;
  tg_state(ws, tree, body, n);
  free(body);
  memset(name, 'b', 200);
  memcpy(name + 200, ".txt", 5);
  tg_write(ws, name, "mine\n"); /* the person's: the card's merge leaves it listed */
  const char *c2[] = {"put", name, "2\n", NULL};
  CHECK(t, tg_card_change(r, base, "M2", c2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "M2", &tg_who, id, &kind, &conf, &e) == 0);
  char *st = malloc(cap + 1);
  size_t sn = 0;
  snprintf(cmd, sizeof cmd, "%s/.git/orket-view", ws);
  FILE *f = fopen(cmd, "r");
  CHECK(t, f != NULL && st != NULL);
  if (f && st) sn = fread(st, 1, cap + 1, f);
  if (f) fclose(f);
  /* header, /base (47 bytes), /moved (89), then the paths: no /moved-path record */
  CHECK(t, sn > head + 136 + 12 && sn <= cap);
  CHECK(t, sn > head + 136 + 12 && memcmp(st + head + 47, "/moved ", 7) == 0 && memcmp(st + head + 136, "/moved-path ", 12) != 0);
  free(st);
  CHECK(t, gitrepo_view_moved(r, from, to) == 1); /* the older rule: a path is listed */
  tg_end(r, base);
}

/* A refresh that failed because a person's branch was checked out: once main is checked out
 * again, status no longer says the view is behind for that reason (git's checkout brought
 * main's files); the next refresh finds them done. */
TEST(test_gitrepo_view_waits_cleared) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], cmd[1400], behind[GR_VIEW_WHY];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gr_view_path *v = NULL;
  size_t n = 0, dv = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  snprintf(cmd, sizeof cmd, "git -C '%s' checkout -q -b mine", ws);
  CHECK(t, system(cmd) == 0);
  const char *c1[] = {"put", "a.txt", "a\n", NULL};
  CHECK(t, tg_card_change(r, base, "B1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "B1", &tg_who, id, &kind, &conf, &e) == 1); /* the view waits */
  CHECK(t, gitrepo_view_status(r, &v, &n, behind, sizeof behind, 1, &e) == 1 && strstr(behind, "refs/heads/mine"));
  gr_view_paths_free(v, n);
  snprintf(cmd, sizeof cmd, "git -C '%s' checkout -q main", ws);
  CHECK(t, system(cmd) == 0);
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a\n");
  CHECK(t, gitrepo_view_status(r, &v, &n, behind, sizeof behind, 1, &e) == 0 && n == 0);
  gr_view_paths_free(v, n);
  CHECK(t, behind[0] == '\0' || !fprintf(stderr, "    still: %s\n", behind));
  /* another reason stays said until a refresh succeeds: a lock of a person's git */
  CHECK(t, tg_write(ws, ".git/index.lock", "") == 0);
  const char *c2[] = {"put", "b.txt", "b\n", NULL};
  CHECK(t, tg_card_change(r, base, "B2", c2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "B2", &tg_who, id, &kind, &conf, &e) == 1);
  CHECK(t, gitrepo_view_status(r, &v, &n, behind, sizeof behind, 1, &e) == 0 && strstr(behind, "lock"));
  gr_view_paths_free(v, n);
  snprintf(cmd, sizeof cmd, "%s/.git/index.lock", ws);
  CHECK(t, unlink(cmd) == 0 && gitrepo_view_refresh(r, &dv, &e) == 0);
  CHECK(t, gitrepo_view_status(r, &v, &n, behind, sizeof behind, 1, &e) == 0 && behind[0] == '\0');
  gr_view_paths_free(v, n);
  tg_end(r, base);
}

/* A write of the view's own that fails (the disk full under the temporary file, or under a
 * directory the merge brings) is no person's change: the merge stands and says why (stale,
 * ENOSPC), no path is counted as diverged, and the view's base stays where it was, so the
 * next refresh (the next merge, or recovery's) writes what is left. Counted as a person's,
 * the files stayed missing for good and every later merge answered as if the view held
 * main. */
TEST(test_gitrepo_view_write_fails) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], cmd[700], behind[GR_VIEW_WHY];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gr_view_path *v = NULL;
  size_t n = 0, dv = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "a.txt", "a\n", "put", "d/x.txt", "x\n", NULL};
  CHECK(t, tg_card_change(r, base, "W1", c1, id) == 0);
  tg_write_fail[0] = "/orket-view-tmp/"; /* a full disk: the gitdir's and beside the path */
  tg_write_fail[1] = "/.orket-view-";
  int rc = gitrepo_merge_to_main(r, "W1", &tg_who, id, &kind, &conf, &e);
  tg_write_fail[0] = tg_write_fail[1] = NULL;
  CHECK(t, rc == 1 || !fprintf(stderr, "    rc %d, %zu diverged\n", rc, gitrepo_view_last(r)));
  CHECK(t, rc != 1 || (strcmp(e.code, "ENOSPC") == 0 && strstr(e.msg, strerror(ENOSPC)) && strstr(e.msg, "a.txt")) ||
               !fprintf(stderr, "    %s: %s\n", e.code, e.msg));
  CHECK(t, gitrepo_view_last(r) == 0);
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "(missing)");
  CHECK(t, gitrepo_view_status(r, &v, &n, behind, sizeof behind, 1, &e) == 0 && n == 0);
  gr_view_paths_free(v, n);
  CHECK(t, strstr(behind, strerror(ENOSPC)) || !fprintf(stderr, "    behind: %s\n", behind));

  /* room for files again, none for a new directory: the next merge writes what the first
   * left, and says why its own directory's file is not there */
  const char *c2[] = {"put", "e/y.txt", "y\n", "put", "b.txt", "b\n", NULL};
  CHECK(t, tg_card_change(r, base, "W2", c2, id) == 0);
  tg_mkdir_fail = "e";
  rc = gitrepo_merge_to_main(r, "W2", &tg_who, id, &kind, &conf, &e);
  tg_mkdir_fail = NULL;
  CHECK(t, (rc == 1 && strcmp(e.code, "ENOSPC") == 0 && strstr(e.msg, "e/y.txt")) ||
               !fprintf(stderr, "    rc %d: %s\n", rc, rc ? e.msg : ""));
  CHECK(t, gitrepo_view_last(r) == 0);
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a\n");
  CHECK_STR(t, tg_read(ws, "d/x.txt", buf, sizeof buf), "x\n");
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n");
  CHECK_STR(t, tg_read(ws, "e/y.txt", buf, sizeof buf), "(missing)");

  /* room again: recovery's refresh (no merge) finishes, and git sees main's files clean */
  CHECK(t, gitrepo_view_refresh(r, &dv, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, dv == 0);
  CHECK_STR(t, tg_read(ws, "e/y.txt", buf, sizeof buf), "y\n");
  CHECK(t, gitrepo_view_status(r, &v, &n, behind, sizeof behind, 1, &e) == 0 && n == 0 && behind[0] == '\0');
  gr_view_paths_free(v, n);
  snprintf(cmd, sizeof cmd, "git -C '%s' status --porcelain", ws);
  FILE *p = popen(cmd, "r");
  size_t got = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
  buf[got] = '\0';
  if (p) pclose(p);
  CHECK_STR(t, buf, "");
  tg_end(r, base);
}

/* An I/O error under a file whose name reads like a full disk's message is EIO: the code is
 * chosen from the errno, not from the message's text (which holds the path). */
TEST(test_gitrepo_view_write_eio_code) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "No space left on device", "n\n", NULL};
  CHECK(t, tg_card_change(r, base, "E1", c1, id) == 0);
  tg_write_fail[0] = "/orket-view-tmp/";
  tg_write_fail[1] = "/.orket-view-";
  tg_fail_errno = EIO;
  int rc = gitrepo_merge_to_main(r, "E1", &tg_who, id, &kind, &conf, &e);
  tg_write_fail[0] = tg_write_fail[1] = NULL;
  tg_fail_errno = 0;
  CHECK(t, (rc == 1 && strcmp(e.code, "EIO") == 0 && strstr(e.msg, strerror(EIO))) ||
               !fprintf(stderr, "    rc %d: %s %s\n", rc, rc ? e.code : "", rc ? e.msg : ""));
  CHECK(t, gitrepo_view_last(r) == 0);
  tg_end(r, base);
}

/* A person's save between the refresh's check of a path (it held the base's file) and the
 * rename of main's file into place: kept and listed, never overwritten (invariant 4). The
 * rename is made only while the path is still what was checked. */
TEST(test_gitrepo_view_put_race) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], behind[GR_VIEW_WHY];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gr_view_path *v = NULL;
  size_t n = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "edit.txt", "base\n", NULL};
  CHECK(t, tg_card_change(r, base, "R1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "R1", &tg_who, id, &kind, &conf, &e) == 0);
  const char *c2[] = {"put", "edit.txt", "card v2\n", NULL};
  CHECK(t, tg_card_change(r, base, "R2", c2, id) == 0);
  tg_save_at = "/orket-view-tmp/";
  tg_save_ws = ws;
  tg_save_path = "edit.txt";
  tg_save_text = "PERSON SAVED DURING REFRESH\n";
  int rc = gitrepo_merge_to_main(r, "R2", &tg_who, id, &kind, &conf, &e);
  CHECK(t, tg_save_at == NULL); /* the save was made, mid-refresh */
  tg_save_at = NULL;
  CHECK(t, rc == 0 || !fprintf(stderr, "    rc %d: %s\n", rc, e.msg));
  CHECK_STR(t, tg_read(ws, "edit.txt", buf, sizeof buf), "PERSON SAVED DURING REFRESH\n");
  CHECK(t, gitrepo_view_last(r) == 1);
  CHECK(t, gitrepo_view_status(r, &v, &n, behind, sizeof behind, 1, &e) == 0 && n == 1 && tg_diverged(v, n, "edit.txt"));
  gr_view_paths_free(v, n);
  tg_end(r, base);
}

/* EFBIG with the process under a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) the file
 * is over: that limit's, not the person's, so the path is not counted as diverged and keeps
 * waiting, and the next refresh without the limit writes it. */
TEST(test_gitrepo_view_write_efbig) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], p[600];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  size_t dv = 0, big = 150000;
  struct stat st;
  struct rlimit was, lim;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  char *data = malloc(big + 1);
  if (data == NULL) return;
  memset(data, 'x', big);
  data[big] = '\0';
  const char *c1[] = {"put", "big.bin", data, NULL};
  CHECK(t, tg_card_change(r, base, "F1", c1, id) == 0);
  CHECK(t, getrlimit(RLIMIT_FSIZE, &was) == 0);
  lim = was;
  lim.rlim_cur = 100000; /* under the file, over what else the merge writes (compressed objects) */
  void (*old)(int) = signal(SIGXFSZ, SIG_IGN);
  CHECK(t, setrlimit(RLIMIT_FSIZE, &lim) == 0);
  tg_write_fail[0] = "/orket-view-tmp/";
  tg_write_fail[1] = "/.orket-view-";
  tg_fail_errno = EFBIG;
  int rc = gitrepo_merge_to_main(r, "F1", &tg_who, id, &kind, &conf, &e);
  tg_write_fail[0] = tg_write_fail[1] = NULL;
  tg_fail_errno = 0;
  CHECK(t, setrlimit(RLIMIT_FSIZE, &was) == 0);
  signal(SIGXFSZ, old);
  CHECK(t, (rc == 1 && strstr(e.msg, strerror(EFBIG))) || !fprintf(stderr, "    rc %d: %s\n", rc, rc ? e.msg : ""));
  CHECK(t, gitrepo_view_last(r) == 0);
  snprintf(p, sizeof p, "%s/big.bin", ws);
  CHECK(t, lstat(p, &st) != 0);
  CHECK(t, (gitrepo_view_refresh(r, &dv, &e) == 0 && dv == 0) || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == big);
  free(data);
  tg_end(r, base);
}

/* EFBIG with no file size limit on the process (Orket sets none on itself): the file
 * system's own, which lasts (a blob over 4 GiB on FAT32), so the path is the person's to
 * settle, listed, and the view is not left stale for good retrying it. */
TEST(test_gitrepo_view_write_efbig_fs) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], p[600];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  struct stat st;
  struct rlimit lim;
  CHECK(t, getrlimit(RLIMIT_FSIZE, &lim) == 0);
  if (lim.rlim_cur != RLIM_INFINITY) return; /* the case is a process without a limit */
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "big.bin", "large\n", NULL};
  CHECK(t, tg_card_change(r, base, "F1", c1, id) == 0);
  tg_write_fail[0] = "/orket-view-tmp/";
  tg_write_fail[1] = "/.orket-view-";
  tg_fail_errno = EFBIG;
  int rc = gitrepo_merge_to_main(r, "F1", &tg_who, id, &kind, &conf, &e);
  tg_write_fail[0] = tg_write_fail[1] = NULL;
  tg_fail_errno = 0;
  CHECK(t, rc == 0 || !fprintf(stderr, "    rc %d: %s\n", rc, e.msg));
  CHECK(t, gitrepo_view_last(r) == 1);
  snprintf(p, sizeof p, "%s/big.bin", ws);
  CHECK(t, lstat(p, &st) != 0);
  tg_end(r, base);
}

/* What `git status --porcelain` says in ws ("" when clean). */
static const char *tg_porcelain(const char *ws, char *buf, size_t cap) {
  char cmd[700];
  snprintf(cmd, sizeof cmd, "git -C '%s' status --porcelain", ws);
  FILE *p = popen(cmd, "r");
  size_t got = p ? fread(buf, 1, cap - 1, p) : 0;
  buf[got] = '\0';
  if (p) pclose(p);
  return buf;
}

/* A read of the view's that fails for a reason of the machine's (no descriptors left) is
 * not "nothing there": a changed file is not counted as the person's deletion, a removed
 * one's removal is not taken as done (its file left untracked, listed by no one). The
 * refresh is stale, writes nothing there, and the next one does it. */
TEST(test_gitrepo_view_read_fails) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gr_view_path *v = NULL;
  size_t n = 0, dv = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "d/x.txt", "x\n", "put", "d/y.txt", "y\n", NULL};
  CHECK(t, tg_card_change(r, base, "F1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "F1", &tg_who, id, &kind, &conf, &e) == 0);
  const char *c2[] = {"put", "d/x.txt", "x2\n", "rm", "d/y.txt", NULL, "put", "top.txt", "t\n", NULL};
  CHECK(t, tg_card_change(r, base, "F2", c2, id) == 0);
  tg_open_fail = "d";
  tg_fail_errno = EMFILE;
  int rc = gitrepo_merge_to_main(r, "F2", &tg_who, id, &kind, &conf, &e);
  tg_open_fail = NULL;
  tg_fail_errno = 0;
  CHECK(t, (rc == 1 && strcmp(e.code, "EIO") == 0 && strstr(e.msg, strerror(EMFILE))) ||
               !fprintf(stderr, "    rc %d: %s %s\n", rc, rc ? e.code : "", rc ? e.msg : ""));
  CHECK(t, gitrepo_view_last(r) == 0 || !fprintf(stderr, "    %zu diverged\n", gitrepo_view_last(r)));
  CHECK_STR(t, tg_read(ws, "d/x.txt", buf, sizeof buf), "x\n");
  CHECK_STR(t, tg_read(ws, "d/y.txt", buf, sizeof buf), "y\n");
  CHECK_STR(t, tg_read(ws, "top.txt", buf, sizeof buf), "t\n");
  CHECK(t, gitrepo_view_refresh(r, &dv, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, dv == 0);
  CHECK_STR(t, tg_read(ws, "d/x.txt", buf, sizeof buf), "x2\n");
  CHECK_STR(t, tg_read(ws, "d/y.txt", buf, sizeof buf), "(missing)");
  CHECK(t, gitrepo_view_status(r, &v, &n, buf, sizeof buf, 1, &e) == 0 && n == 0 && buf[0] == '\0');
  gr_view_paths_free(v, n);
  CHECK_STR(t, tg_porcelain(ws, buf, sizeof buf), "");
  tg_end(r, base);
}

/* 1 when ws holds a file the view writes beside a path (.orket-view-PID.N.tmp) anywhere */
static int tg_beside_left(const char *ws) {
  char cmd[700], buf[256];
  snprintf(cmd, sizeof cmd, "find '%s' -name '.orket-view-*' -not -path '*/.git/*'", ws);
  FILE *p = popen(cmd, "r");
  size_t got = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
  if (p) pclose(p);
  return got > 0;
}

/* Orket's own temporary directory in the gitdir unusable (made read-only by a run under
 * sudo, say): the file is written beside its path instead, and nothing is blamed on the
 * path. Before, the failure there ended the write, and the path was counted as the
 * person's (a file lost for good) or the refresh was stale at every merge. */
TEST(test_gitrepo_view_tmp_unwritable) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gr_view_path *v = NULL;
  size_t n = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "a.txt", "a\n", "put", "d/x.txt", "x\n", NULL};
  CHECK(t, tg_card_change(r, base, "U1", c1, id) == 0);
  tg_openat_fail = "/orket-view-tmp";
  tg_fail_errno = EACCES;
  int rc = gitrepo_merge_to_main(r, "U1", &tg_who, id, &kind, &conf, &e);
  tg_openat_fail = NULL;
  tg_fail_errno = 0;
  CHECK(t, rc == 0 || !fprintf(stderr, "    rc %d: %s\n", rc, e.msg));
  CHECK(t, gitrepo_view_last(r) == 0);
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a\n");
  CHECK_STR(t, tg_read(ws, "d/x.txt", buf, sizeof buf), "x\n");
  CHECK(t, !tg_beside_left(ws));
  CHECK(t, gitrepo_view_status(r, &v, &n, buf, sizeof buf, 1, &e) == 0 && n == 0 && buf[0] == '\0');
  gr_view_paths_free(v, n);
  CHECK_STR(t, tg_porcelain(ws, buf, sizeof buf), "");
  tg_end(r, base);
}

/* A permission at a path in workspace/ (a person's read-only directory) lasts: the path is
 * the person's, counted, listed and left, and the view's base moves on. Said as stale, every
 * later merge was stale too and re-read every path since, and the person's path was listed
 * by no one. */
TEST(test_gitrepo_view_write_denied) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], behind[GR_VIEW_WHY];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gr_view_path *v = NULL;
  size_t n = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "ro/new.txt", "n\n", "put", "top.txt", "t\n", NULL};
  CHECK(t, tg_card_change(r, base, "P1", c1, id) == 0);
  tg_mkdir_fail = "ro";
  tg_fail_errno = EACCES;
  int rc = gitrepo_merge_to_main(r, "P1", &tg_who, id, &kind, &conf, &e);
  tg_mkdir_fail = NULL;
  tg_fail_errno = 0;
  CHECK(t, rc == 0 || !fprintf(stderr, "    rc %d: %s\n", rc, e.msg));
  CHECK(t, gitrepo_view_last(r) == 1);
  CHECK_STR(t, tg_read(ws, "top.txt", buf, sizeof buf), "t\n");
  CHECK(t, gitrepo_view_status(r, &v, &n, behind, sizeof behind, 1, &e) == 0 && n == 1 && tg_diverged(v, n, "ro/new.txt"));
  gr_view_paths_free(v, n);
  CHECK(t, behind[0] == '\0' || !fprintf(stderr, "    behind: %s\n", behind));
  /* the base moved: the next merge is not stale and counts only its own */
  const char *c2[] = {"put", "z.txt", "z\n", NULL};
  CHECK(t, tg_card_change(r, base, "P2", c2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "P2", &tg_who, id, &kind, &conf, &e) == 0 && gitrepo_view_last(r) == 0);
  CHECK_STR(t, tg_read(ws, "z.txt", buf, sizeof buf), "z\n");
  tg_end(r, base);
}

/* A removal that fails for want of space (pass 1) under a directory main turns into a file:
 * the directory still there is the refresh's own failure, not a person's, so the file is
 * not counted as theirs in the same refresh; with room, the next refresh writes it. */
TEST(test_gitrepo_view_remove_fails) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], wt[512], id[41], buf[256], p[1100];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gr_commit_kind ck = GR_CLEAN;
  gr_view_path *v = NULL;
  size_t n = 0, dv = 0;
  int created;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "d/x.txt", "x\n", NULL};
  CHECK(t, tg_card_change(r, base, "R1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "R1", &tg_who, id, &kind, &conf, &e) == 0);
  tg_wt(base, "R2", wt); /* d/x.txt gone, d a file */
  CHECK(t, gitrepo_worktree(r, "R2", wt, &created, &e) == 0);
  snprintf(p, sizeof p, "%s/d/x.txt", wt);
  CHECK(t, unlink(p) == 0);
  snprintf(p, sizeof p, "%s/d", wt);
  CHECK(t, rmdir(p) == 0 && tg_write(wt, "d", "d\n") == 0);
  CHECK(t, gitrepo_commit(r, "R2", &tg_who, "work", NULL, NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  tg_unlink_fail = "x.txt";
  int rc = gitrepo_merge_to_main(r, "R2", &tg_who, id, &kind, &conf, &e);
  tg_unlink_fail = NULL;
  CHECK(t, (rc == 1 && strcmp(e.code, "ENOSPC") == 0 && strstr(e.msg, "workspace/d (and 1 more path)")) ||
               !fprintf(stderr, "    rc %d: %s\n", rc, rc ? e.msg : ""));
  CHECK(t, gitrepo_view_last(r) == 0 || !fprintf(stderr, "    %zu diverged\n", gitrepo_view_last(r)));
  CHECK_STR(t, tg_read(ws, "d/x.txt", buf, sizeof buf), "x\n");
  CHECK(t, gitrepo_view_refresh(r, &dv, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, dv == 0);
  CHECK_STR(t, tg_read(ws, "d", buf, sizeof buf), "d\n");
  CHECK(t, gitrepo_view_status(r, &v, &n, buf, sizeof buf, 1, &e) == 0 && n == 0 && buf[0] == '\0');
  gr_view_paths_free(v, n);
  CHECK_STR(t, tg_porcelain(ws, buf, sizeof buf), "");
  tg_end(r, base);
}

/* A full disk under a file the merge brings and a lock on main's index in the same refresh
 * (another file written, so the index is to be written too, and fails): the reason said
 * names the file (what a person misses), not the index. */
TEST(test_gitrepo_view_write_and_index_fail) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], cmd[700];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  size_t dv = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "b.txt", "b\n", "put", "e/y.txt", "y\n", NULL};
  CHECK(t, tg_card_change(r, base, "I1", c1, id) == 0);
  CHECK(t, tg_write(ws, ".git/index.lock", "") == 0);
  tg_mkdir_fail = "e";
  int rc = gitrepo_merge_to_main(r, "I1", &tg_who, id, &kind, &conf, &e);
  tg_mkdir_fail = NULL;
  CHECK(t, (rc == 1 && strcmp(e.code, "ENOSPC") == 0 && strstr(e.msg, "cannot write workspace/e/y.txt: ") &&
            !strstr(e.msg, "index")) ||
               !fprintf(stderr, "    rc %d: %s %s\n", rc, rc ? e.code : "", rc ? e.msg : ""));
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n");
  snprintf(cmd, sizeof cmd, "%s/.git/index.lock", ws);
  CHECK(t, unlink(cmd) == 0);
  CHECK(t, gitrepo_view_refresh(r, &dv, &e) == 0 && dv == 0);
  CHECK_STR(t, tg_read(ws, "e/y.txt", buf, sizeof buf), "y\n");
  CHECK_STR(t, tg_porcelain(ws, buf, sizeof buf), "");
  tg_end(r, base);
}

/* A refresh that failed part-way (no room for e/y.txt's directory) wrote a.txt; the disk
 * still full, the next merge changes a.txt again and fails too. The view's base then holds
 * what the first wrote: from main's older tree, a.txt (its index entry the first merge's)
 * read as the person's change, and the second merge's version was never written once the
 * disk had room (view.c, invariant 6). */
TEST(test_gitrepo_view_partial_base) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  size_t dv = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c0[] = {"put", "a.txt", "a1\n", NULL};
  CHECK(t, tg_card_change(r, base, "Q0", c0, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "Q0", &tg_who, id, &kind, &conf, &e) == 0);
  const char *c1[] = {"put", "a.txt", "a2\n", "put", "e/y.txt", "y\n", NULL};
  CHECK(t, tg_card_change(r, base, "Q1", c1, id) == 0);
  tg_mkdir_fail = "e";
  CHECK(t, gitrepo_merge_to_main(r, "Q1", &tg_who, id, &kind, &conf, &e) == 1);
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a2\n");
  const char *c2[] = {"put", "a.txt", "a3\n", NULL};
  CHECK(t, tg_card_change(r, base, "Q2", c2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "Q2", &tg_who, id, &kind, &conf, &e) == 1);
  tg_mkdir_fail = NULL;
  CHECK(t, gitrepo_view_last(r) == 0);
  CHECK(t, (gitrepo_view_refresh(r, &dv, &e) == 0 && dv == 0) || !fprintf(stderr, "    dv %zu: %s\n", dv, e.msg));
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a3\n");
  CHECK_STR(t, tg_read(ws, "e/y.txt", buf, sizeof buf), "y\n");
  CHECK_STR(t, tg_porcelain(ws, buf, sizeof buf), "");
  tg_end(r, base);
}

/* A file turned directory whose file in it cannot be written (a full disk): the directory
 * made on its way goes again, so that a later merge turning it back into a file, the disk
 * still full, does not find a directory there and take it for the person's (the file was
 * never written once the disk had room). */
TEST(test_gitrepo_view_failed_dirs_go) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], p[600];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  size_t dv = 0;
  struct stat st;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c0[] = {"put", "t", "t0\n", NULL};
  CHECK(t, tg_card_change(r, base, "U0", c0, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "U0", &tg_who, id, &kind, &conf, &e) == 0);
  const char *c1[] = {"rm", "t", "", "put", "t/u/v", "v\n", NULL};
  CHECK(t, tg_card_change(r, base, "U1", c1, id) == 0);
  tg_write_fail[0] = "/orket-view-tmp/";
  tg_write_fail[1] = "/.orket-view-";
  CHECK(t, gitrepo_merge_to_main(r, "U1", &tg_who, id, &kind, &conf, &e) == 1);
  snprintf(p, sizeof p, "%s/t", ws);
  CHECK(t, lstat(p, &st) != 0);
  const char *c2[] = {"rm", "t/u/v", "", "rmdir", "t/u", "", "rmdir", "t", "", "put", "t", "t2\n", NULL};
  CHECK(t, tg_card_change(r, base, "U2", c2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "U2", &tg_who, id, &kind, &conf, &e) == 1);
  tg_write_fail[0] = tg_write_fail[1] = NULL;
  CHECK(t, gitrepo_view_last(r) == 0);
  CHECK(t, (gitrepo_view_refresh(r, &dv, &e) == 0 && dv == 0) || !fprintf(stderr, "    dv %zu: %s\n", dv, e.msg));
  CHECK_STR(t, tg_read(ws, "t", buf, sizeof buf), "t2\n");
  CHECK_STR(t, tg_porcelain(ws, buf, sizeof buf), "");
  tg_end(r, base);
}

/* A person who takes main back past the merge whose refresh failed part-way (a reset to
 * the commit before it, keeping its change staged or in the files to redo it): main's
 * move is theirs, not Orket's, so the path that refresh wrote keeps their version at the
 * next merge (the partial base names the failed refresh's commit, invariant 10). */
TEST(test_gitrepo_view_partial_reset) {
  static const char *const modes[] = {"--soft", "--mixed"};
  for (size_t k = 0; k < 2; k++) {
    char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], cmd[1400];
    gr_err e;
    gr_paths conf;
    gr_merge_kind kind;
    gitrepo *r = tg_setup(t, base, ws);
    if (r == NULL) return;
    git_libgit2_init();
    const char *c0[] = {"put", "a.txt", "a1\n", NULL};
    CHECK(t, tg_card_change(r, base, "Q0", c0, id) == 0);
    CHECK(t, gitrepo_merge_to_main(r, "Q0", &tg_who, id, &kind, &conf, &e) == 0);
    snprintf(cmd, sizeof cmd, "git -C %s branch keep0 main", ws);
    CHECK(t, system(cmd) == 0);
    const char *c1[] = {"put", "a.txt", "a2\n", "put", "e/y.txt", "y\n", NULL};
    CHECK(t, tg_card_change(r, base, "Q1", c1, id) == 0);
    tg_mkdir_fail = "e";
    CHECK(t, gitrepo_merge_to_main(r, "Q1", &tg_who, id, &kind, &conf, &e) == 1);
    tg_mkdir_fail = NULL;
    snprintf(cmd, sizeof cmd, "git -C %s reset -q %s keep0", ws, modes[k]);
    CHECK(t, system(cmd) == 0);
    const char *c2[] = {"put", "b.txt", "b\n", NULL};
    CHECK(t, tg_card_change(r, base, "Q2", c2, id) == 0);
    CHECK(t, gitrepo_merge_to_main(r, "Q2", &tg_who, id, &kind, &conf, &e) == 0);
    CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a2\n");
    CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n");
    tg_end(r, base);
  }
}

/* A mkdir that fails part-way (t made, t/u not: a full disk) takes away what it made, so
 * that a later merge turning t back into a file finds nothing of the view's there and
 * writes it once the disk has room (not recorded as the person's). */
TEST(test_gitrepo_view_failed_mkdir_dirs_go) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], p[600];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  size_t dv = 0;
  struct stat st;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c0[] = {"put", "t", "t0\n", NULL};
  CHECK(t, tg_card_change(r, base, "U0", c0, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "U0", &tg_who, id, &kind, &conf, &e) == 0);
  const char *c1[] = {"rm", "t", "", "put", "t/u/v", "v\n", NULL};
  CHECK(t, tg_card_change(r, base, "U1", c1, id) == 0);
  tg_mkdir_fail = "u";
  CHECK(t, gitrepo_merge_to_main(r, "U1", &tg_who, id, &kind, &conf, &e) == 1);
  snprintf(p, sizeof p, "%s/t", ws);
  CHECK(t, lstat(p, &st) != 0);
  const char *c2[] = {"rm", "t/u/v", "", "rmdir", "t/u", "", "rmdir", "t", "", "put", "t", "t2\n", NULL};
  CHECK(t, tg_card_change(r, base, "U2", c2, id) == 0);
  /* its catch-up fails again (u cannot be made), its own refresh needs no directory */
  CHECK(t, gitrepo_merge_to_main(r, "U2", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, gitrepo_view_last(r) == 0);
  tg_mkdir_fail = NULL;
  CHECK(t, (gitrepo_view_refresh(r, &dv, &e) == 0 && dv == 0) || !fprintf(stderr, "    dv %zu: %s\n", dv, e.msg));
  CHECK_STR(t, tg_read(ws, "t", buf, sizeof buf), "t2\n");
  CHECK_STR(t, tg_porcelain(ws, buf, sizeof buf), "");
  tg_end(r, base);
}

/* A partial base gone from the object database (its tree is no commit's: a person's gc may
 * prune it) after a person's commit on main: the refresh goes from the last base that is a
 * commit's tree, guessed, so the path the failed refresh could not write is listed as
 * diverged rather than the view taken to hold main (where it was never written nor said). */
TEST(test_gitrepo_view_partial_base_gone) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], cmd[1600];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  size_t dv = 0, n = 0;
  gr_view_path *v = NULL;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c0[] = {"put", "a.txt", "a1\n", NULL};
  CHECK(t, tg_card_change(r, base, "Q0", c0, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "Q0", &tg_who, id, &kind, &conf, &e) == 0);
  const char *c1[] = {"put", "a.txt", "a2\n", "put", "e/y.txt", "y\n", NULL};
  CHECK(t, tg_card_change(r, base, "Q1", c1, id) == 0);
  tg_mkdir_fail = "e";
  CHECK(t, gitrepo_merge_to_main(r, "Q1", &tg_who, id, &kind, &conf, &e) == 1);
  tg_mkdir_fail = NULL;
  gitrepo_close(r);
  r = NULL;
  /* the person's commit on main (main's tree, their index untouched), then the partial
   * base's loose tree pruned */
  snprintf(cmd, sizeof cmd,
           "cd %s && x=$(git -c user.name=p -c user.email=p@p commit-tree -p main -m mine 'main^{tree}') && "
           "git update-ref refs/heads/main $x && "
           "g=$(git rev-parse --git-dir) && h=$(head -n 1 \"$g/orket-view\" | cut -d' ' -f3) && "
           "test -n \"$h\" && test \"$(git cat-file -t $h)\" = tree && "
           "rm -f \"$g/objects/$(echo $h | cut -c1-2)/$(echo $h | cut -c3-)\" && ! git cat-file -e $h 2>/dev/null",
           ws);
  CHECK(t, system(cmd) == 0);
  CHECK(t, gitrepo_open(ws, &r, &e) == 0);
  if (r == NULL) return;
  CHECK(t, gitrepo_view_refresh(r, &dv, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a2\n");
  CHECK(t, gitrepo_view_status(r, &v, &n, NULL, 0, 0, &e) >= 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, tg_diverged(v, n, "e/y.txt") != NULL || !fprintf(stderr, "    %zu listed\n", n));
  gr_view_paths_free(v, n);
  tg_end(r, base);
}

/* A partial base gone (pruned) after a person put back a path the failed refresh had
 * written: the next merge's catch-up goes from the guessed base and lists the path, and its
 * own refresh must not take that guessed base for a real one and write over the person's
 * content (it keeps main's tree as the base, the path listed). */
TEST(test_gitrepo_view_partial_base_gone_restore_kept) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], cmd[1200];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  size_t n = 0;
  gr_view_path *v = NULL;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c0[] = {"put", "a.txt", "a1\n", NULL};
  CHECK(t, tg_card_change(r, base, "R0", c0, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "R0", &tg_who, id, &kind, &conf, &e) == 0);
  const char *c1[] = {"put", "a.txt", "a2\n", "put", "e/y.txt", "y\n", NULL};
  CHECK(t, tg_card_change(r, base, "R1", c1, id) == 0);
  tg_mkdir_fail = "e";
  CHECK(t, gitrepo_merge_to_main(r, "R1", &tg_who, id, &kind, &conf, &e) == 1);
  tg_mkdir_fail = NULL;
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a2\n");
  gitrepo_close(r);
  r = NULL;
  /* the person puts a1 back, then the partial base's loose tree is pruned */
  snprintf(cmd, sizeof cmd,
           "cd %s && printf 'a1\\n' > a.txt && "
           "g=$(git rev-parse --git-dir) && h=$(head -n 1 \"$g/orket-view\" | cut -d' ' -f3) && "
           "test -n \"$h\" && test \"$(git cat-file -t $h)\" = tree && "
           "rm -f \"$g/objects/$(echo $h | cut -c1-2)/$(echo $h | cut -c3-)\" && ! git cat-file -e $h 2>/dev/null",
           ws);
  CHECK(t, system(cmd) == 0);
  CHECK(t, gitrepo_open(ws, &r, &e) == 0);
  if (r == NULL) return;
  const char *c2[] = {"put", "b.txt", "b\n", NULL};
  CHECK(t, tg_card_change(r, base, "R2", c2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "R2", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a1\n");
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n");
  CHECK(t, gitrepo_view_status(r, &v, &n, NULL, 0, 0, &e) >= 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, tg_diverged(v, n, "a.txt") != NULL || !fprintf(stderr, "    %zu listed\n", n));
  gr_view_paths_free(v, n);
  tg_end(r, base);
}

/* A partial base that a later merge's tip holds (it took back what could not be written):
 * the view holds main, so an up-to-date merge is cheap again and, with a person's branch
 * checked out, answers uptodate, not stale (no refresh to catch up). */
TEST(test_gitrepo_view_partial_base_is_tip) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], cmd[700];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c0[] = {"put", "a.txt", "a1\n", NULL};
  CHECK(t, tg_card_change(r, base, "Q0", c0, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "Q0", &tg_who, id, &kind, &conf, &e) == 0);
  const char *c1[] = {"put", "a.txt", "a2\n", "put", "e/y.txt", "y\n", NULL};
  CHECK(t, tg_card_change(r, base, "Q1", c1, id) == 0);
  tg_mkdir_fail = "e";
  CHECK(t, gitrepo_merge_to_main(r, "Q1", &tg_who, id, &kind, &conf, &e) == 1);
  const char *c2[] = {"rm", "e/y.txt", "", "rmdir", "e", "", NULL};
  CHECK(t, tg_card_change(r, base, "Q2", c2, id) == 0);
  (void)gitrepo_merge_to_main(r, "Q2", &tg_who, id, &kind, &conf, &e);
  tg_mkdir_fail = NULL;
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a2\n");
  snprintf(cmd, sizeof cmd, "git -C %s checkout -q -b mine", ws);
  CHECK(t, system(cmd) == 0);
  CHECK(t, (gitrepo_merge_to_main(r, "Q2", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_UPTODATE) ||
               !fprintf(stderr, "    %s\n", e.msg));
  tg_end(r, base);
}

/* A merge that answers uptodate catches up a view its last merge's refresh left behind (a
 * full disk since freed), not only the next merge that changes main; with the disk still
 * full it says stale. */
TEST(test_gitrepo_view_uptodate_catches_up) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "w.txt", "w\n", NULL};
  CHECK(t, tg_card_change(r, base, "W1", c1, id) == 0);
  tg_write_fail[0] = "/orket-view-tmp/";
  tg_write_fail[1] = "/.orket-view-";
  CHECK(t, gitrepo_merge_to_main(r, "W1", &tg_who, id, &kind, &conf, &e) == 1);
  CHECK(t, gitrepo_merge_to_main(r, "W1", &tg_who, id, &kind, &conf, &e) == 1 && kind == GR_UPTODATE);
  tg_write_fail[0] = tg_write_fail[1] = NULL;
  CHECK(t, (gitrepo_merge_to_main(r, "W1", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_UPTODATE) ||
               !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "w.txt", buf, sizeof buf), "w\n");
  CHECK_STR(t, tg_porcelain(ws, buf, sizeof buf), "");
  tg_end(r, base);
}

/* A full disk and a person's change in the same refresh: the person's path is counted in the
 * merge's answer but not listed yet (the state is not written on failure); the next refresh
 * with room writes what is left, counts it again and lists it (docs/git.md, invariant 6). */
TEST(test_gitrepo_view_fail_and_person) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], behind[GR_VIEW_WHY];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gr_view_path *v = NULL;
  size_t n = 0, dv = 0;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  const char *c1[] = {"put", "p.txt", "1\n", NULL};
  CHECK(t, tg_card_change(r, base, "F1", c1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "F1", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, tg_write(ws, "p.txt", "mine\n") == 0);
  const char *c2[] = {"put", "p.txt", "2\n", "put", "e/y.txt", "y\n", NULL};
  CHECK(t, tg_card_change(r, base, "F2", c2, id) == 0);
  tg_mkdir_fail = "e";
  int rc = gitrepo_merge_to_main(r, "F2", &tg_who, id, &kind, &conf, &e);
  tg_mkdir_fail = NULL;
  CHECK(t, (rc == 1 && strcmp(e.code, "ENOSPC") == 0 && strstr(e.msg, "e/y.txt")) ||
               !fprintf(stderr, "    rc %d: %s\n", rc, rc ? e.msg : ""));
  CHECK(t, gitrepo_view_last(r) == 1);
  CHECK_STR(t, tg_read(ws, "p.txt", buf, sizeof buf), "mine\n");
  CHECK(t, gitrepo_view_status(r, &v, &n, behind, sizeof behind, 1, &e) == 0 && n == 0 && strstr(behind, "e/y.txt"));
  gr_view_paths_free(v, n);
  CHECK(t, gitrepo_view_refresh(r, &dv, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, dv == 1);
  CHECK_STR(t, tg_read(ws, "e/y.txt", buf, sizeof buf), "y\n");
  CHECK_STR(t, tg_read(ws, "p.txt", buf, sizeof buf), "mine\n");
  CHECK(t, gitrepo_view_status(r, &v, &n, behind, sizeof behind, 1, &e) == 0 && n == 1 && tg_diverged(v, n, "p.txt") &&
               behind[0] == '\0');
  gr_view_paths_free(v, n);
  tg_end(r, base);
}

TEST(test_gitrepo_durable) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], wt[512], id[41];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int created;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  tg_wt(base, "D1", wt);
  CHECK(t, gitrepo_worktree(r, "D1", wt, &created, &e) == 0);
  CHECK(t, tg_write(wt, "d.txt", "d\n") == 0);
  CHECK(t, tg_note_ref(ws, "refs/heads/orket/D1", r) == 0);
  tg_sync_log = 1;
  gr_commit_kind ck = GR_CLEAN;
  CHECK(t, gitrepo_commit(r, "D1", &tg_who, "work", NULL, NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  tg_sync_log = 0;
  CHECK(t, tg_nsyncs == 2 || !fprintf(stderr, "    a commit: %d syncs\n", tg_nsyncs));
  CHECK(t, tg_nsyncs == 2 && strncmp(tg_syncs[0].path, "syncfs:", 7) == 0 && tg_syncs[0].before == 1 &&
               tg_syncs[1].before == 0);
  /* a fast-forward of main */
  char mref[] = "refs/heads/main";
  CHECK(t, tg_note_ref(ws, mref, r) == 0);
  tg_sync_log = 1;
  CHECK(t, gitrepo_merge_to_main(r, "D1", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_FASTFORWARD);
  tg_sync_log = 0;
  CHECK(t, tg_nsyncs == 1 && tg_syncs[0].before == 0);
  /* a merge commit: main moved since D2 began */
  char wt2[512], wt3[512];
  tg_wt(base, "D2", wt2);
  tg_wt(base, "D3", wt3);
  CHECK(t, gitrepo_worktree(r, "D2", wt2, &created, &e) == 0 && gitrepo_worktree(r, "D3", wt3, &created, &e) == 0);
  CHECK(t, tg_commit_file(r, wt2, "D2", "e.txt", "e\n", NULL, id) == GR_COMMITTED);
  CHECK(t, tg_commit_file(r, wt3, "D3", "f.txt", "f\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "D2", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, tg_note_ref(ws, mref, r) == 0);
  tg_sync_log = 1;
  CHECK(t, gitrepo_merge_to_main(r, "D3", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_MERGED);
  tg_sync_log = 0;
  CHECK(t, tg_nsyncs == 2 && tg_syncs[0].before == 1 && tg_syncs[1].before == 0);
  tg_end(r, base);
}

/* A directory a card emptied (its last file deleted) is not in its tree: detach removes it,
 * so that the next card switched into the directory can write a file there (a directory
 * turned file on main meanwhile), rather than stop at it (EDIRTY). */
TEST(test_gitrepo_card_dir_emptied) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], p[1400], pool[600], state[600];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int sw, det;
  gr_commit_kind ck;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  snprintf(pool, sizeof pool, "%s/pool", base);
  snprintf(state, sizeof state, "%s/state", base);
  const char *m[] = {"put", "t/u/v", "v\n", NULL};
  CHECK(t, tg_card_change(r, base, "M", m, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "M", &tg_who, id, &kind, &conf, &e) == 0);
  /* X, in the reused directory, deletes t/u/v: t/u stays on disk, empty */
  CHECK(t, gitrepo_attach(r, "X", pool, state, &sw, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  snprintf(p, sizeof p, "%s/t/u/v", pool);
  CHECK(t, unlink(p) == 0);
  ck = GR_CLEAN;
  CHECK(t, gitrepo_commit(r, "X", &tg_who, "work", NULL, NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  CHECK(t, gitrepo_detach(r, "X", NULL, &det, &e) == 0 && det == 1);
  snprintf(p, sizeof p, "%s/t", pool);
  struct stat st;
  CHECK(t, lstat(p, &st) != 0);
  /* main meanwhile turns t into a file; Y starts from it in the same directory */
  const char *n[] = {"rm", "t/u/v", NULL, NULL};
  CHECK(t, tg_card_change(r, base, "N", n, id) == 0);
  char wtn[512];
  tg_wt(base, "N", wtn);
  snprintf(p, sizeof p, "%s/t/u", wtn);
  CHECK(t, rmdir(p) == 0);
  snprintf(p, sizeof p, "%s/t", wtn);
  CHECK(t, rmdir(p) == 0 && tg_commit_file(r, wtn, "N", "t", "now a file\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "N", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, gitrepo_attach(r, "Y", pool, state, &sw, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(pool, "t", buf, sizeof buf), "now a file\n");
  /* the same with only the paths the turn touched (the engine's usual detach) */
  snprintf(p, sizeof p, "%s/t", pool);
  CHECK(t, unlink(p) == 0 && mkdir(p, 0755) == 0 && mkdir(strcat(p, "/w"), 0755) == 0 && tg_write(p, "x", "x\n") == 0);
  ck = GR_CLEAN;
  CHECK(t, gitrepo_commit(r, "Y", &tg_who, "work", NULL, NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  strcat(p, "/x");
  CHECK(t, unlink(p) == 0);
  char *only_v[] = {"t/w/x"};
  gr_paths only = {only_v, 1};
  CHECK(t, gitrepo_commit(r, "Y", &tg_who, "work", NULL, &only, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  CHECK(t, gitrepo_detach(r, "Y", &only, &det, &e) == 0 && det == 1);
  snprintf(p, sizeof p, "%s/t", pool);
  CHECK(t, lstat(p, &st) != 0);
  tg_end(r, base);
}

/* A reused card directory switched between cards whose trees differ in types, the switch
 * cut short by a lock on its index: it finishes once the lock is gone, every file there. */
TEST(test_gitrepo_card_dir_cut_short) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], m0[41], id[41], buf[256], p[1400], pool[600], state[600];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int sw, det;
  gr_commit_kind ck;
  const char *bl[] = {"b.txt", "b\n", NULL};
  gitrepo *r = NULL;
  git_libgit2_init();
  if ((r = tg_two_cards(t, base, ws, m0, bl)) == NULL) goto done;
  /* a reused card directory switched between cards whose trees differ in types, the switch
   * cut short by a lock on its index */
  snprintf(pool, sizeof pool, "%s/pool", base);
  snprintf(state, sizeof state, "%s/state", base);
  const char *m[] = {"put", "d", "file d\n", "put", "k/j/i", "i\n", NULL};
  CHECK(t, tg_card_change(r, base, "M", m, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "M", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, gitrepo_attach(r, "X", pool, state, &sw, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  snprintf(p, sizeof p, "%s/d", pool);
  CHECK(t, unlink(p) == 0 && mkdir(p, 0755) == 0 && tg_write(pool, "d/z", "z\n") == 0);
  snprintf(p, sizeof p, "%s/k/j/i", pool);
  CHECK(t, unlink(p) == 0);
  snprintf(p, sizeof p, "%s/k/j", pool);
  CHECK(t, rmdir(p) == 0);
  snprintf(p, sizeof p, "%s/k", pool);
  CHECK(t, rmdir(p) == 0 && symlink("d/z", p) == 0);
  ck = GR_CLEAN;
  CHECK(t, gitrepo_commit(r, "X", &tg_who, "work", NULL, NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  CHECK(t, gitrepo_detach(r, "X", NULL, &det, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, tg_write(state, "index.lock", "") == 0);
  CHECK(t, gitrepo_attach(r, "Y", pool, state, &sw, &e) == -1);
  snprintf(p, sizeof p, "%s/index.lock", state);
  CHECK(t, unlink(p) == 0);
  CHECK(t, gitrepo_attach(r, "Y", pool, state, &sw, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(pool, "d", buf, sizeof buf), "file d\n");
  CHECK_STR(t, tg_read(pool, "k/j/i", buf, sizeof buf), "i\n");
  CHECK(t, gitrepo_detach(r, "Y", NULL, &det, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, gitrepo_attach(r, "X", pool, state, &sw, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(pool, "d/z", buf, sizeof buf), "z\n");
  CHECK(t, gitrepo_detach(r, "X", NULL, &det, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  tg_next(&r, base);
  base[0] = '\0';
done:
  tg_end(r, base);
}


/* A card directory parked and taken again (both directories renamed, as engine/gitwork.lua
 * does) keeps the index its handle last had in memory: the next card's attach does not read
 * the index file again (parsed and hashed, it holds every file of main). Seen here by its
 * bytes replaced in place, its stamp (size, mtime, inode) and checksum kept: only a read of
 * the whole file would notice. */
TEST(test_gitrepo_card_dir_index_kept) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], p[1400], pool[600], state[600];
  char pool2[600], state2[600];
  gr_err e;
  int sw, det;
  gr_commit_kind ck = GR_CLEAN;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  snprintf(pool, sizeof pool, "%s/.pool-X", base);
  snprintf(state, sizeof state, "%s/.pool-X.state", base);
  snprintf(pool2, sizeof pool2, "%s/Y", base);
  snprintf(state2, sizeof state2, "%s/Y.state", base);
  /* the directory unreadable as the attach records it: the attach fails and holds nothing */
  int fds = tg_open_fds();
  tg_stat_fail = pool;
  CHECK(t, gitrepo_attach(r, "X", pool, state, &sw, &e) == -1);
  tg_stat_fail = NULL;
  CHECK(t, fds < 0 || tg_open_fds() == fds);
  CHECK(t, gitrepo_attach(r, "X", pool, state, &sw, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, tg_write(pool, "x.txt", "x\n") == 0);
  CHECK(t, gitrepo_commit(r, "X", &tg_who, "work", NULL, NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  CHECK(t, gitrepo_detach(r, "X", NULL, &det, &e) == 0 && det == 1);
  CHECK(t, rename(state, state2) == 0 && rename(pool, pool2) == 0);
  snprintf(p, sizeof p, "%s/index", state2);
  struct stat st;
  /* the index is kept only where /proc names a descriptor (else it is opened by path and
   * the replaced bytes would be read) */
  int fd = tg_proc_names_dir(state2) ? open(p, O_RDWR) : -2;
  if (fd == -2) SKIP(t, "the kept index's part: /proc/self/fd does not name a directory's descriptor here");
  CHECK(t, fd != -1 && (fd < 0 || (fstat(fd, &st) == 0 && st.st_size > 0)));
  if (fd >= 0) {
    /* all but the trailing checksum, which libgit2 compares besides the stamp */
    for (off_t i = 0; i + 20 < st.st_size; i++) CHECK(t, pwrite(fd, "\377", 1, i) == 1);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    CHECK(t, futimens(fd, ts) == 0);
    close(fd);
  }
  /* Y begins at main, which lacks X's file: the switch removes it */
  CHECK(t, gitrepo_attach(r, "Y", pool2, state2, &sw, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(pool2, "x.txt", buf, sizeof buf), "(missing)");
  CHECK(t, gitrepo_detach(r, "Y", NULL, &det, &e) == 0 && det == 1);
  /* parked again and its index file removed meanwhile (a person resetting the directory):
   * the kept index no longer says what the directory holds, so it is dropped, the directory
   * emptied and Z's whole tree written */
  CHECK(t, rename(state2, state) == 0 && rename(pool2, pool) == 0);
  snprintf(p, sizeof p, "%s/index", state);
  CHECK(t, unlink(p) == 0);
  CHECK(t, rename(state, state2) == 0 && rename(pool, pool2) == 0);
  CHECK(t, gitrepo_attach(r, "Z", pool2, state2, &sw, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(pool2, "README", buf, sizeof buf), "hello\n");
  gr_paths left = {0};
  CHECK(t, gitrepo_status(r, "Z", &left, &e) == 0 && left.n == 0);
  gr_paths_free(&left);
  tg_end(r, base);
}

/* Many cards attached at once and none detached (as a run's recovery leaves them, or a
 * worker's cards finished by another): the attachments do not each hold a descriptor, so a
 * process with a modest descriptor limit attaches them all. */
TEST(test_gitrepo_card_dir_many) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], buf[256], dir[600], state[600], card[16];
  gr_err e;
  int sw, det;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  struct rlimit saved, tight;
  CHECK(t, getrlimit(RLIMIT_NOFILE, &saved) == 0);
  int fds = tg_open_fds();
  if (fds < 0) fds = 64; /* no /proc: a guess at what is open, the limit still well above it */
  tight = saved;
  tight.rlim_cur = (rlim_t)fds + 160;
  if (tight.rlim_cur > saved.rlim_cur) tight.rlim_cur = saved.rlim_cur;
  CHECK(t, setrlimit(RLIMIT_NOFILE, &tight) == 0);
  int failed = 0;
  /* attachments that went stale (their state directories moved away) give up their
   * descriptors once the cap is reached */
  for (int i = 0; i < 64 && !failed; i++) {
    snprintf(card, sizeof card, "S%d", i);
    snprintf(dir, sizeof dir, "%s/old/%s", base, card);
    snprintf(state, sizeof state, "%s/oldstate/%s", base, card);
    failed = gitrepo_attach(r, card, dir, state, &sw, &e) != 0;
  }
  CHECK(t, !failed);
  snprintf(dir, sizeof dir, "%s/oldstate", base);
  snprintf(state, sizeof state, "%s/gone", base);
  CHECK(t, rename(dir, state) == 0);
  int held = tg_open_fds();
  for (int i = 0; i < 240 && !failed; i++) {
    snprintf(card, sizeof card, "C%d", i);
    snprintf(dir, sizeof dir, "%s/cards/%s", base, card);
    snprintf(state, sizeof state, "%s/state/%s", base, card);
    if (gitrepo_attach(r, card, dir, state, &sw, &e) != 0) {
      fprintf(stderr, "    attach %d: %s\n", i, e.msg);
      failed = 1;
    }
    if (i == 0) CHECK(t, held < 0 || tg_open_fds() <= held - 63);
  }
  CHECK(t, !failed);
  /* the first and the last still work as attached */
  snprintf(dir, sizeof dir, "%s/cards/C0", base);
  CHECK_STR(t, tg_read(dir, "README", buf, sizeof buf), "hello\n");
  CHECK(t, gitrepo_detach(r, "C0", NULL, &det, &e) == 0 && det == 1);
  CHECK(t, gitrepo_detach(r, "C239", NULL, &det, &e) == 0 && det == 1);
  CHECK(t, setrlimit(RLIMIT_NOFILE, &saved) == 0);
  tg_end(r, base);
}

/* A parked directory replaced by a symbolic link: the next card's attach refuses it (EUNSAFE)
 * and writes nothing where it points, with its index kept or not (one rule for both). */
TEST(test_gitrepo_card_dir_symlink) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], buf[256], p[1400], pool[600], state[600], aside[600];
  char victim[600];
  gr_err e;
  int sw, det;
  gr_commit_kind ck = GR_CLEAN;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  snprintf(pool, sizeof pool, "%s/pool", base);
  snprintf(state, sizeof state, "%s/state", base);
  snprintf(aside, sizeof aside, "%s/aside", base);
  snprintf(victim, sizeof victim, "%s/victim", base);
  CHECK(t, gitrepo_attach(r, "X", pool, state, &sw, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, tg_write(pool, "x.txt", "x\n") == 0);
  CHECK(t, gitrepo_commit(r, "X", &tg_who, "work", NULL, NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  CHECK(t, gitrepo_detach(r, "X", NULL, &det, &e) == 0 && det == 1);
  CHECK(t, rename(pool, aside) == 0 && mkdir(victim, 0755) == 0 && tg_write(victim, "precious.txt", "p\n") == 0);
  CHECK(t, symlink(victim, pool) == 0);
  /* X's tree is main's and x.txt: Y's switch would remove x.txt, and write nothing else */
  CHECK(t, tg_write(victim, "x.txt", "x\n") == 0);
  CHECK(t, gitrepo_attach(r, "Y", pool, state, &sw, &e) == -1);
  CHECK_STR(t, e.code, "EUNSAFE");
  CHECK_STR(t, tg_read(victim, "x.txt", buf, sizeof buf), "x\n");
  /* without its index: refused the same way, nothing emptied */
  snprintf(p, sizeof p, "%s/index", state);
  CHECK(t, unlink(p) == 0);
  CHECK(t, gitrepo_attach(r, "Y", pool, state, &sw, &e) == -1);
  CHECK_STR(t, e.code, "EUNSAFE");
  CHECK_STR(t, tg_read(victim, "precious.txt", buf, sizeof buf), "p\n");
  /* nor is a state directory followed */
  CHECK(t, unlink(pool) == 0 && rename(aside, pool) == 0 && rename(state, aside) == 0 && symlink(aside, state) == 0);
  CHECK(t, gitrepo_attach(r, "Y", pool, state, &sw, &e) == -1);
  CHECK_STR(t, e.code, "EUNSAFE");
  tg_end(r, base);
}

/* Conflicts without text markers: a delete/modify keeps the modified file, a binary file the
 * card's version; both are named. */
TEST(test_gitrepo_conflict_kinds) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], e1[512], f1[512], id[41], buf[256], p[700];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int created;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  tg_wt(base, "E", e1);
  tg_wt(base, "F", f1);
  CHECK(t, gitrepo_worktree(r, "E", e1, &created, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "F", f1, &created, &e) == 0);
  /* E deletes README and writes a binary file; F edits README and writes the same binary path */
  snprintf(p, sizeof p, "%s/README", e1);
  unlink(p);
  CHECK(t, tg_commit_file(r, e1, "E", "bin.dat", "E\001\002\003card\n", NULL, id) == GR_COMMITTED);
  tg_write(f1, "README", "hello, edited\n");
  CHECK(t, tg_commit_file(r, f1, "F", "bin.dat", "F\001\002\003main\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "F", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_FASTFORWARD);
  CHECK(t, gitrepo_merge_to_main(r, "E", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_CONFLICT);
  CHECK(t, conf.n == 2 && strcmp(conf.v[0], "README") == 0 && strcmp(conf.v[1], "bin.dat") == 0);
  gr_paths_free(&conf);
  CHECK(t, gitrepo_merge_from_main(r, "E", &tg_who, id, &kind, &conf, &e) == 0 && kind == GR_CONFLICT);
  CHECK(t, conf.n == 2);
  gr_paths_free(&conf);
  CHECK_STR(t, tg_read(e1, "README", buf, sizeof buf), "hello, edited\n");
  CHECK_STR(t, tg_read(e1, "bin.dat", buf, sizeof buf), "E\001\002\003card\n");
  CHECK(t, gitrepo_check(r, &e) == 0);
  gitrepo_close(r);
  tg_rmtree(base);
}

/* The id of ref in the repository at path, into id ("" when there is none) */
static const char *tg_ref_at(const char *path, const char *ref, char *id) {
  git_repository *repo = NULL;
  git_oid oid;
  id[0] = '\0';
  if (git_repository_open(&repo, path) == 0 && git_reference_name_to_id(&oid, repo, ref) == 0)
    git_oid_tostr(id, 41, &oid);
  git_repository_free(repo);
  return id;
}

/* Sets ref in the repository at path to commit hex (NULL: deletes it) */
static int tg_set_ref(const char *path, const char *ref, const char *hex) {
  git_repository *repo = NULL;
  git_reference *out = NULL;
  git_oid oid;
  int rc = git_repository_open(&repo, path);
  if (rc == 0 && hex) rc = git_oid_fromstr(&oid, hex) || git_reference_create(&out, repo, ref, &oid, 1, "test");
  else if (rc == 0) rc = git_reference_remove(repo, ref);
  git_reference_free(out);
  git_repository_free(repo);
  return rc;
}

/* A commit made in the repository at path on top of commit parent (hex), with its tree: one
 * nobody else has (a person's push), into out */
static int tg_commit_in(const char *path, const char *parent, char *out) {
  git_repository *repo = NULL;
  git_commit *pc = NULL;
  git_tree *tree = NULL;
  git_signature *sig = NULL;
  git_oid oid, made;
  int rc = git_repository_open(&repo, path);
  if (rc == 0) rc = git_oid_fromstr(&oid, parent);
  if (rc == 0) rc = git_commit_lookup(&pc, repo, &oid);
  if (rc == 0) rc = git_commit_tree(&tree, pc);
  if (rc == 0) rc = git_signature_now(&sig, "person", "person@example.invalid");
  const git_commit *parents[] = {pc};
  if (rc == 0) rc = git_commit_create(&made, repo, NULL, sig, sig, NULL, "theirs", tree, 1, parents);
  if (rc == 0) git_oid_tostr(out, 41, &made);
  git_signature_free(sig);
  git_tree_free(tree);
  git_commit_free(pc);
  git_repository_free(repo);
  return rc;
}

/* Sets a string in the config file of the repository at path (value NULL: removes it) */
static int tg_config(const char *path, const char *name, const char *value) {
  git_repository *repo = NULL;
  git_config *cfg = NULL;
  int rc = git_repository_open(&repo, path);
  if (rc == 0) rc = git_repository_config(&cfg, repo);
  if (rc == 0) rc = value ? git_config_set_string(cfg, name, value) : git_config_delete_entry(cfg, name);
  git_config_free(cfg);
  git_repository_free(repo);
  return rc;
}

/* A hook file at dir/name (made with its folder), executable or not */
static void tg_hook(const char *dir, const char *name, int exec) {
  char p[1024];
  mkdir(dir, 0755);
  tg_write(dir, name, "#!/bin/sh\necho refused >&2\nexit 1\n");
  snprintf(p, sizeof p, "%s/%s", dir, name);
  chmod(p, exec ? 0755 : 0644);
}

/* A push to a bare repository on this machine goes through libgit2's local transport, which
 * runs no hook and applies no receive.* setting: one whose git would run a hook (its hooks/
 * folder, core.hooksPath in its config or the global one, a file:// URL too) is refused
 * before anything is sent, as is a forced push receive.denyNonFastForwards refuses; a hook
 * file that is not executable, or a sample, is no hook. */
static void tg_push_local_hooks(check_ctx *t, gitrepo *r, const char *base) {
  char bare[600], hooks[700], dir[700], url[800], pid[41], id[41], glob[700];
  gr_err e;
  /* the machine's own git settings are not the test's (put back at the end) */
  char *was_nosys = getenv("GIT_CONFIG_NOSYSTEM"), *was_glob = getenv("GIT_CONFIG_GLOBAL");
  was_nosys = was_nosys ? strdup(was_nosys) : NULL;
  was_glob = was_glob ? strdup(was_glob) : NULL;
  setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  snprintf(glob, sizeof glob, "%s/global.gitconfig", base);
  tg_write(base, "global.gitconfig", "");
  setenv("GIT_CONFIG_GLOBAL", glob, 1);
  snprintf(bare, sizeof bare, "%s/hooked.git", base);
  snprintf(hooks, sizeof hooks, "%s/hooks", bare);
  CHECK(t, gitrepo_init_bare(bare, &e) == 0);
  tg_hook(hooks, "pre-receive", 0);
  tg_hook(hooks, "update.sample", 1);
  CHECK(t, gitrepo_push(r, bare, "main", 0, NULL, NULL, pid, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_ref_at(bare, "refs/heads/main", id), pid);
  tg_hook(hooks, "pre-receive", 1);
  CHECK(t, gitrepo_push(r, bare, "orket/P1", 0, NULL, NULL, pid, &e) == -1);
  CHECK_STR(t, e.code, "EREJECTED");
  CHECK(t, strstr(e.msg, "hooked.git/hooks/pre-receive") != NULL && strstr(e.msg, "git://") != NULL);
  CHECK_STR(t, tg_ref_at(bare, "refs/heads/orket/P1", id), ""); /* nothing written */
  snprintf(url, sizeof url, "file://%s", bare);
  CHECK(t, gitrepo_push(r, url, "orket/P1", 0, NULL, NULL, pid, &e) == -1);
  CHECK_STR(t, e.code, "EREJECTED");
  tg_hook(hooks, "pre-receive", 0);
  /* core.hooksPath, relative to a bare repository's folder */
  snprintf(dir, sizeof dir, "%s/team-hooks", bare);
  tg_hook(dir, "post-receive", 1);
  CHECK(t, tg_config(bare, "core.hooksPath", "team-hooks") == 0);
  CHECK(t, gitrepo_push(r, bare, "orket/P1", 0, NULL, NULL, pid, &e) == -1);
  CHECK(t, strstr(e.msg, "team-hooks/post-receive") != NULL);
  CHECK(t, tg_config(bare, "core.hooksPath", NULL) == 0);
  /* the global one (GIT_CONFIG_GLOBAL here), an absolute folder */
  snprintf(dir, sizeof dir, "%s/global-hooks", base);
  tg_hook(dir, "update", 1);
  char text[800];
  snprintf(text, sizeof text, "[core]\n\thooksPath = %s\n", dir);
  tg_write(base, "global.gitconfig", text);
  CHECK(t, gitrepo_push(r, bare, "orket/P1", 0, NULL, NULL, pid, &e) == -1);
  CHECK(t, strstr(e.msg, "global-hooks/update") != NULL);
  tg_write(base, "global.gitconfig", "");
  CHECK(t, gitrepo_push(r, bare, "orket/P1", 0, NULL, NULL, pid, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_ref_at(bare, "refs/heads/orket/P1", id), pid);
  /* receive.denyNonFastForwards: a forced push over a branch that moved elsewhere */
  char was[41], base_id[41];
  CHECK(t, gitrepo_head(r, "main", base_id, &e) == 0);
  CHECK(t, tg_commit_in(bare, base_id, was) == 0);
  CHECK(t, tg_set_ref(bare, "refs/heads/orket/P1", was) == 0); /* not in orket/P1's history */
  CHECK(t, tg_config(bare, "receive.denyNonFastForwards", "true") == 0);
  CHECK(t, gitrepo_push(r, bare, "orket/P1", 1, NULL, NULL, pid, &e) == -1);
  CHECK_STR(t, e.code, "EREJECTED");
  CHECK(t, strstr(e.msg, "receive.denyNonFastForwards") != NULL);
  CHECK_STR(t, tg_ref_at(bare, "refs/heads/orket/P1", id), was);
  CHECK(t, tg_config(bare, "receive.denyNonFastForwards", "false") == 0);
  CHECK(t, gitrepo_push(r, bare, "orket/P1", 1, NULL, NULL, pid, &e) == 0);
  CHECK(t, strcmp(tg_ref_at(bare, "refs/heads/orket/P1", id), was) != 0);
  if (was_nosys) setenv("GIT_CONFIG_NOSYSTEM", was_nosys, 1); else unsetenv("GIT_CONFIG_NOSYSTEM");
  if (was_glob) setenv("GIT_CONFIG_GLOBAL", was_glob, 1); else unsetenv("GIT_CONFIG_GLOBAL");
  free(was_nosys);
  free(was_glob);
}

/* git.remote changed, from the remote at ws's tracking ref (which had main: its rename is
 * refused) to other.git, a forge repository made with a README on master and no main: it
 * never had main, so the fetch drops the old remote's tracking ref and the push makes main
 * there. A rename there then is refused, as on any remote that had main; a tracking ref with
 * no record of its remote (an older Orket's) is trusted, its refusal saying so. */
static void tg_remote_changed(check_ctx *t, gitrepo *r, const char *base, const char *ws, const char *main_id) {
  char other[600], rec[600], id[41], pid[41];
  gr_err e;
  snprintf(other, sizeof other, "%s/other.git", base);
  git_repository *o = NULL;
  git_treebuilder *tb = NULL;
  git_signature *sig = NULL;
  git_oid tree, made;
  CHECK(t, git_repository_init(&o, other, 1) == 0 && git_treebuilder_new(&tb, o, NULL) == 0 &&
           git_treebuilder_write(&tree, tb) == 0 && git_signature_now(&sig, "forge", "forge@example.invalid") == 0);
  git_tree *tr = NULL;
  CHECK(t, git_tree_lookup(&tr, o, &tree) == 0 &&
           git_commit_create(&made, o, "refs/heads/master", sig, sig, NULL, "README", tr, 0, NULL) == 0 &&
           git_repository_set_head(o, "refs/heads/master") == 0);
  git_tree_free(tr);
  git_signature_free(sig);
  git_treebuilder_free(tb);
  git_repository_free(o);
  CHECK(t, strcmp(tg_ref_at(ws, "refs/remotes/orket/main", id), "") != 0); /* the old remote's */
  CHECK(t, gitrepo_fetch_main(r, other, NULL, NULL, id, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_ref_at(ws, "refs/remotes/orket/main", id), "");
  CHECK(t, gitrepo_push(r, other, "main", 0, NULL, NULL, pid, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_ref_at(other, "refs/heads/main", id), main_id);
  CHECK_STR(t, tg_ref_at(ws, "refs/remotes/orket/main", id), main_id);
  CHECK(t, gitrepo_fetch_main(r, other, NULL, NULL, id, &e) == 1);
  CHECK_STR(t, id, main_id);
  /* the new remote had main now: its rename is refused */
  CHECK(t, tg_set_ref(other, "refs/heads/main", NULL) == 0);
  CHECK(t, gitrepo_fetch_main(r, other, NULL, NULL, id, &e) == -1);
  CHECK_STR(t, e.code, "ENOENT");
  CHECK(t, strstr(e.msg, "HEAD names master") != NULL && strstr(e.msg, "older Orket") == NULL);
  CHECK(t, gitrepo_push(r, other, "main", 0, NULL, NULL, pid, &e) == -1);
  CHECK_STR(t, e.code, "ENOENT");
  /* no record of which remote the tracking ref is of: trusted, and said */
  snprintf(rec, sizeof rec, "%s/.git/orket-remote-main", ws);
  CHECK(t, unlink(rec) == 0);
  CHECK(t, gitrepo_fetch_main(r, other, NULL, NULL, id, &e) == -1);
  CHECK_STR(t, e.code, "ENOENT");
  CHECK(t, strstr(e.msg, "older Orket") != NULL);
  CHECK_STR(t, tg_ref_at(ws, "refs/remotes/orket/main", id), main_id);
}

/* The remote's main as Orket knows it: a push of main moves the tracking ref; a fetch that
 * finds the remote's main moved back past commits main holds records where it was
 * (refs/orket/remote-main-dropped) until a push puts them back; a remote that had main and
 * has it no more (renamed trunk) is refused by the fetch and by a push, naming its HEAD's
 * branch, the tracking ref kept, until a person drops it. */
static void tg_remote_main_moves(check_ctx *t, gitrepo *r, const char *base, const char *ws) {
  char bare[600], wt[512], pid[41], id[41], first[41], second[41];
  gr_err e;
  int created = 0;
  snprintf(bare, sizeof bare, "%s/moves.git", base);
  CHECK(t, gitrepo_init_bare(bare, &e) == 0);
  CHECK(t, gitrepo_push(r, bare, "main", 0, NULL, NULL, first, &e) == 0);
  CHECK_STR(t, tg_ref_at(ws, "refs/remotes/orket/main", id), first);
  tg_wt(base, "M1", wt);
  CHECK(t, gitrepo_worktree(r, "M1", wt, &created, &e) == 0);
  CHECK(t, tg_commit_file(r, wt, "M1", "m.txt", "m\n", NULL, id) >= 0);
  gr_merge_kind kind;
  gr_paths conf;
  CHECK(t, gitrepo_merge_to_main(r, "M1", &tg_who, second, &kind, &conf, &e) >= 0);
  gr_paths_free(&conf);
  CHECK(t, gitrepo_push(r, bare, "main", 0, NULL, NULL, pid, &e) == 0);
  CHECK_STR(t, pid, second);
  CHECK_STR(t, tg_ref_at(ws, "refs/remotes/orket/main", id), second);
  /* a person moves the remote's main back */
  CHECK(t, tg_set_ref(bare, "refs/heads/main", first) == 0);
  CHECK(t, gitrepo_fetch_main(r, bare, NULL, NULL, id, &e) == 1);
  CHECK_STR(t, id, first);
  CHECK_STR(t, tg_ref_at(ws, "refs/orket/remote-main-dropped", id), second);
  CHECK(t, gitrepo_fetch_main(r, bare, NULL, NULL, id, &e) == 1); /* kept until put back */
  CHECK_STR(t, tg_ref_at(ws, "refs/orket/remote-main-dropped", id), second);
  CHECK(t, gitrepo_push(r, bare, "main", 0, NULL, NULL, pid, &e) == 0);
  CHECK_STR(t, tg_ref_at(ws, "refs/orket/remote-main-dropped", id), "");
  CHECK_STR(t, tg_ref_at(bare, "refs/heads/main", id), second);
  CHECK(t, gitrepo_fetch_main(r, bare, NULL, NULL, id, &e) == 1);
  CHECK_STR(t, tg_ref_at(ws, "refs/orket/remote-main-dropped", id), "");
  /* the remote's default branch renamed: main is not made again beside it */
  git_repository *remote = NULL;
  git_reference *ref = NULL, *moved = NULL;
  CHECK(t, git_repository_open(&remote, bare) == 0);
  CHECK(t, git_reference_lookup(&ref, remote, "refs/heads/main") == 0 &&
           git_reference_rename(&moved, ref, "refs/heads/trunk", 0, "test") == 0);
  git_reference_free(ref);
  git_reference_free(moved);
  CHECK(t, git_repository_set_head(remote, "refs/heads/trunk") == 0);
  git_repository_free(remote);
  CHECK(t, gitrepo_fetch_main(r, bare, NULL, NULL, id, &e) == -1);
  CHECK_STR(t, e.code, "ENOENT");
  CHECK(t, strstr(e.msg, "HEAD names trunk") != NULL && strstr(e.msg, "update-ref -d refs/remotes/orket/main") != NULL);
  CHECK_STR(t, tg_ref_at(ws, "refs/remotes/orket/main", id), second);
  CHECK(t, gitrepo_push(r, bare, "main", 0, NULL, NULL, pid, &e) == -1);
  CHECK_STR(t, e.code, "ENOENT");
  CHECK(t, strstr(e.msg, "pushing main") != NULL && strstr(e.msg, "HEAD names trunk") != NULL);
  CHECK_STR(t, tg_ref_at(bare, "refs/heads/main", id), "");
  /* the remote's folder away for a while (a mount not up yet): refused as no folder here,
   * and what Orket knows of its main kept, not dropped as for a new remote */
  char away[620];
  snprintf(away, sizeof away, "%s.away", bare);
  CHECK(t, rename(bare, away) == 0);
  CHECK(t, gitrepo_fetch_main(r, bare, NULL, NULL, id, &e) == -1);
  CHECK_STR(t, e.code, "EREMOTE");
  CHECK(t, strstr(e.msg, "is no folder here") != NULL);
  char gone_url[620];
  snprintf(gone_url, sizeof gone_url, "file://%s", bare);
  CHECK(t, gitrepo_push(r, gone_url, "main", 0, NULL, NULL, pid, &e) == -1);
  CHECK_STR(t, e.code, "EREMOTE");
  CHECK_STR(t, tg_ref_at(ws, "refs/remotes/orket/main", id), second);
  CHECK(t, rename(away, bare) == 0);
  CHECK(t, gitrepo_fetch_main(r, bare, NULL, NULL, id, &e) == -1);
  CHECK(t, strstr(e.msg, "HEAD names trunk") != NULL);
  /* the same remote given as a file:// URL is the same remote: refused as well, not taken
   * for a new one where main would be made beside trunk */
  char as_url[620];
  snprintf(as_url, sizeof as_url, "file://%s", bare);
  CHECK(t, gitrepo_fetch_main(r, as_url, NULL, NULL, id, &e) == -1);
  CHECK_STR(t, e.code, "ENOENT");
  CHECK(t, strstr(e.msg, "HEAD names trunk") != NULL);
  CHECK(t, gitrepo_push(r, as_url, "main", 0, NULL, NULL, pid, &e) == -1);
  CHECK_STR(t, tg_ref_at(bare, "refs/heads/main", id), "");
  tg_remote_changed(t, r, base, ws, second);
  /* a person chose: Orket's record of the remote's main dropped, main is pushed anew */
  CHECK(t, tg_set_ref(ws, "refs/remotes/orket/main", NULL) == 0);
  CHECK(t, gitrepo_fetch_main(r, bare, NULL, NULL, id, &e) == 0);
  CHECK(t, gitrepo_push(r, bare, "main", 0, NULL, NULL, pid, &e) == 0);
  CHECK_STR(t, tg_ref_at(bare, "refs/heads/main", id), second);
}

/* Pushes to a bare repository made with libgit2: a branch lands as the same name, a
 * rewritten one needs force (EREJECTED otherwise), a missing branch, remote or URL fails by
 * code, and nothing is left open (ASan). A remote on this machine: tg_push_local_hooks, and
 * main's moves there: tg_remote_main_moves. */
TEST(test_gitrepo_push) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], wt[512], bare[600], id[41], id2[41], url[700], pid[41];
  gr_err e;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  snprintf(bare, sizeof bare, "%s/remote.git", base);
  git_libgit2_init();
  git_repository *remote = NULL;
  CHECK(t, git_repository_init(&remote, bare, 1) == 0);
  int created = 0;
  tg_wt(base, "P1", wt);
  CHECK(t, gitrepo_worktree(r, "P1", wt, &created, &e) == 0);
  CHECK(t, tg_commit_file(r, wt, "P1", "a.txt", "a\n", "1/P1/1", id) == GR_COMMITTED);
  CHECK(t, gitrepo_push(r, bare, "main", 0, NULL, NULL, pid, &e) == 0);
  snprintf(url, sizeof url, "file://%s", bare);
  CHECK(t, gitrepo_push(r, url, "orket/P1", 0, NULL, "unused-token", pid, &e) == 0);
  CHECK_STR(t, pid, id); /* the commit pushed */
  git_oid oid;
  CHECK(t, git_reference_name_to_id(&oid, remote, "refs/heads/orket/P1") == 0);
  CHECK_STR(t, git_oid_tostr_s(&oid), id);
  CHECK(t, gitrepo_push(r, url, "orket/P1", 0, NULL, NULL, pid, &e) == 0); /* nothing to send */
  CHECK_STR(t, pid, id);
  /* the remote's branch moves elsewhere (main): a push that is not a fast-forward needs force */
  CHECK(t, gitrepo_head(r, "main", id2, &e) == 0);
  git_oid main_oid;
  CHECK(t, git_oid_fromstr(&main_oid, id2) == 0);
  git_commit *mc = NULL;
  git_tree *tree = NULL;
  git_signature *sig = NULL;
  git_oid other;
  CHECK(t, git_commit_lookup(&mc, remote, &main_oid) == 0 && git_commit_tree(&tree, mc) == 0);
  CHECK(t, git_signature_now(&sig, "x", "x@x") == 0);
  const git_commit *parents[] = {mc};
  git_reference *ref = NULL;
  CHECK(t, git_commit_create(&other, remote, NULL, sig, sig, NULL, "other", tree, 1, parents) == 0);
  CHECK(t, git_reference_create(&ref, remote, "refs/heads/orket/P1", &other, 1, "test") == 0);
  git_reference_free(ref);
  git_signature_free(sig);
  git_tree_free(tree);
  git_commit_free(mc);
  CHECK(t, gitrepo_push(r, bare, "orket/P1", 0, NULL, NULL, pid, &e) == -1);
  CHECK_STR(t, e.code, "EREJECTED");
  CHECK(t, gitrepo_push(r, bare, "orket/P1", 1, NULL, NULL, pid, &e) == 0);
  CHECK_STR(t, pid, id);
  CHECK(t, git_reference_name_to_id(&oid, remote, "refs/heads/orket/P1") == 0);
  CHECK_STR(t, git_oid_tostr_s(&oid), id);
  CHECK(t, gitrepo_push(r, bare, "orket/none", 0, NULL, NULL, pid, &e) == -1);
  CHECK_STR(t, e.code, "ENOENT");
  snprintf(url, sizeof url, "%s/missing.git", base);
  CHECK(t, gitrepo_push(r, url, "main", 0, NULL, NULL, pid, &e) == -1);
  CHECK_STR(t, e.code, "EREMOTE");
  CHECK(t, gitrepo_push(r, "", "main", 0, NULL, NULL, pid, &e) == -1);
  CHECK_STR(t, e.code, "EINVAL");
  CHECK(t, gitrepo_push(r, bare, "bad..name", 0, NULL, NULL, pid, &e) == -1);
  CHECK_STR(t, e.code, "EINVAL");
  /* what the remote advertises, and a second bare remote made by gitrepo_init_bare */
  gr_ref *refs = NULL;
  size_t nrefs = 0;
  CHECK(t, gitrepo_ls_remote(bare, NULL, NULL, &refs, &nrefs, &e) == 0);
  int seen = 0;
  for (size_t i = 0; i < nrefs; i++)
    if (strcmp(refs[i].name, "refs/heads/orket/P1") == 0) seen = strcmp(refs[i].id, id) == 0;
  CHECK(t, seen);
  gr_refs_free(refs, nrefs);
  snprintf(url, sizeof url, "%s/second.git", base);
  CHECK(t, gitrepo_init_bare(url, &e) == 0 && gitrepo_init_bare(url, &e) == 0);
  CHECK(t, gitrepo_ls_remote(url, NULL, NULL, &refs, &nrefs, &e) == 0 && nrefs == 0);
  gr_refs_free(refs, nrefs);
  CHECK(t, gitrepo_push(r, url, "main", 0, NULL, NULL, pid, &e) == 0);
  CHECK(t, gitrepo_ls_remote(url, NULL, NULL, &refs, &nrefs, &e) == 0 && nrefs == 2); /* HEAD, main */
  gr_refs_free(refs, nrefs);
  snprintf(url, sizeof url, "%s/missing.git", base);
  CHECK(t, gitrepo_ls_remote(url, NULL, NULL, &refs, &nrefs, &e) == -1);
  CHECK_STR(t, e.code, "EREMOTE");
  tg_push_local_hooks(t, r, base);
  tg_remote_main_moves(t, r, base, ws);
  git_repository_free(remote);
  git_libgit2_shutdown();
  gitrepo_close(r);
  tg_rmtree(base);
}
