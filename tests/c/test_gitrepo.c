/* test_gitrepo.c: the workspace repository of gitrepo.c: init with main, a worktree per card,
 * idempotent commits with the turn trailer, fast-forward / merge commit / conflict merges in
 * both directions, and recovery from the states a crash leaves (stale locks, a checkout that
 * did not finish), built here with libgit2 directly. */
#include "check.h"
#include "gitrepo.h"
#include "tests.h"

#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* The position (from 1) of the last sync logged of dir/name (before main moved when before
 * is 1, after when 0, either when -1), 0 when there is none. */
static int tg_synced(const char *dir, const char *name, int before) {
  char p[1100];
  snprintf(p, sizeof p, "%s%s%s", dir, name[0] ? "/" : "", name);
  for (int i = tg_nsyncs - 1; i >= 0; i--)
    if (strcmp(tg_syncs[i].path, p) == 0 && (before < 0 || tg_syncs[i].before == before)) return i + 1;
  return 0;
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

/* 1 when what was logged last made main's settle durable: the working tree's file system,
 * then main's index, then main's marker (all after main moved when before is 0; either when
 * -1, as tg_synced) */
static int tg_settle_durable(const char *ws, int before) {
  char git[600], fs[600];
  snprintf(git, sizeof git, "%s/.git", ws);
  snprintf(fs, sizeof fs, "syncfs:%s", ws);
  int files = tg_synced(fs, "", before), idx = tg_synced(git, "index", before),
      mark = tg_synced(git, "orket-checkout-pending", before);
  return files && idx && mark && files < idx && idx < mark;
}

/* Commits a file with content in card's worktree; returns the commit kind. */
static int tg_commit_file(gitrepo *r, const char *wt, const char *card, const char *name,
                          const char *data, const char *key, char *id) {
  gr_commit_kind kind = GR_CLEAN;
  gr_err e;
  if (name) tg_write(wt, name, data);
  if (gitrepo_commit(r, card, &tg_who, "work", key, NULL, id, &kind, NULL, &e) != 0) {
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

/* A person's git rm --cached in main: name's entry taken out of the index. 0 or -1. */
static int tg_unstage(const char *ws, const char *name) {
  git_repository *repo = NULL;
  git_index *idx = NULL;
  int rc = git_repository_open(&repo, ws);
  if (rc == 0) rc = git_repository_index(&idx, repo);
  if (rc == 0) rc = git_index_remove_bypath(idx, name);
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

/* gitrepo_check of r, main's index taken for a moment without the new file name a person
 * staged there (check counts any index other than HEAD's tree, theirs too). 0 or -1. */
static int tg_check_theirs(gitrepo *r, const char *ws, const char *name) {
  gr_err e;
  int rc = tg_unstage(ws, name) == 0 ? gitrepo_check(r, &e) : -2;
  if (rc == -1) fprintf(stderr, "    %s\n", e.msg);
  return tg_stage(ws, name, NULL) == 0 ? rc : -1;
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
  CHECK(t, gitrepo_commit(r, "C7", &bad, "m", NULL, NULL, id, &kind, NULL, &e) == -1);
  CHECK_STR(t, e.code, "EINVAL");
  CHECK(t, gitrepo_commit(r, "C7", &tg_who, "m", "has space", NULL, id, &kind, NULL, &e) == -1);
  CHECK(t, gitrepo_commit(r, "C7", &tg_who, " \n", NULL, NULL, id, &kind, NULL, &e) == -1);
  CHECK(t, gitrepo_commit(r, "NOPE", &tg_who, "m", NULL, NULL, id, &kind, NULL, &e) == -1);
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
  CHECK(t, gitrepo_commit(r, "B", &tg_who, "turn", "k1", NULL, id, &ck, NULL, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
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
  CHECK(t, gitrepo_commit(r, "A", &tg_who, "turn", NULL, NULL, id, &ck, NULL, &e) == -1);
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

/* main's index off its tip with no checkout pending: a change a person staged is kept, and
 * no file is touched; a reset of main by hand then leaves their index as it is, as a soft
 * reset does. */
TEST(test_gitrepo_main_index_moved) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], a[512], id[41], old[41], merged[41], buf[256];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int created;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  tg_wt(base, "A", a);
  CHECK(t, gitrepo_head(r, "main", old, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "A", a, &created, &e) == 0);
  CHECK(t, tg_commit_file(r, a, "A", "x.txt", "x1\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "A", &tg_who, merged, &kind, &conf, &e) == 0 && kind == GR_FASTFORWARD);
  CHECK_STR(t, tg_read(ws, "x.txt", buf, sizeof buf), "x1\n");

  /* a change a person staged in main */
  CHECK(t, tg_stage(ws, "y.txt", "staged by hand\n") == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "y.txt", buf, sizeof buf), "staged by hand\n");
  CHECK_STR(t, tg_read(ws, "x.txt", buf, sizeof buf), "x1\n");
  CHECK_STR(t, tg_index_blob(ws, "y.txt", buf, sizeof buf), "staged by hand\n");
  CHECK(t, tg_check_theirs(r, ws, "y.txt") == 0); /* all else consistent */

  /* a person's reset of main to the commit before the merge: x.txt stays as it is, and so
   * does their index, x.txt in it too (what git reset --soft leaves) */
  CHECK(t, tg_move_main(ws, old, "reset: moving to HEAD~1") == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "x.txt", buf, sizeof buf), "x1\n");
  CHECK_STR(t, tg_index_blob(ws, "x.txt", buf, sizeof buf), "x1\n");
  CHECK_STR(t, tg_index_blob(ws, "y.txt", buf, sizeof buf), "staged by hand\n");
done:
  git_libgit2_shutdown();
  gitrepo_close(r);
  tg_rmtree(base);
}

/* main's marker made to say stage (about commit hex; the stage alone, as older versions
 * wrote it, when hex is NULL). 0 or -1. */
static int tg_write_mark_from(const char *ws, const char *stage, const char *hex, const char *from_hex);
static int tg_write_mark(const char *ws, const char *stage, const char *hex) {
  return tg_write_mark_from(ws, stage, hex, NULL);
}

/* The same, in this version's format when from_hex (the commit the files were checked out at)
 * is given. */
static int tg_write_mark_from(const char *ws, const char *stage, const char *hex, const char *from_hex) {
  char p[1024];
  snprintf(p, sizeof p, "%s/.git/orket-checkout-pending", ws);
  FILE *f = fopen(p, "w");
  int rc = f != NULL && (from_hex ? fprintf(f, "%-7s %s\n%s %s\n", stage, hex, from_hex, hex)
                         : hex    ? fprintf(f, "%-7s %s\n", stage, hex)
                                  : fprintf(f, "%-7s\n", stage)) > 0 ? 0 : -1;
  if (f && fclose(f) != 0) rc = -1;
  return rc;
}

/* main's working tree as a power cut can leave merges into main that moved the ref: the
 * index still the tree of commit from_hex, each of `remove` (NULL-ended) not yet written,
 * and main's marker as stage (and hex, when given) say, whatever reached the disk. */
static int tg_main_unchecked(const char *ws, const char *from_hex, const char *const *remove, const char *stage,
                             const char *hex) {
  git_repository *repo = NULL;
  git_commit *c = NULL;
  git_tree *tree = NULL;
  git_index *idx = NULL;
  git_oid oid;
  char p[1024];
  int rc = git_repository_open(&repo, ws);
  if (rc == 0) rc = git_oid_fromstr(&oid, from_hex);
  if (rc == 0) rc = git_commit_lookup(&c, repo, &oid);
  if (rc == 0) rc = git_commit_tree(&tree, c);
  if (rc == 0) rc = git_repository_index(&idx, repo);
  if (rc == 0) rc = git_index_read_tree(idx, tree);
  if (rc == 0) rc = git_index_write(idx);
  git_index_free(idx);
  git_tree_free(tree);
  git_commit_free(c);
  git_repository_free(repo);
  for (size_t i = 0; remove && remove[i]; i++) {
    snprintf(p, sizeof p, "%s/%s", ws, remove[i]);
    if (unlink(p) != 0) rc = -1;
  }
  return tg_write_mark_from(ws, stage, hex, from_hex) == 0 ? rc : -1;
}

/* main's marker as written: "stage <id>" */
static const char *tg_main_mark(const char *ws, char *buf, size_t cap) {
  char p[1024];
  snprintf(p, sizeof p, "%s/.git/orket-checkout-pending", ws);
  FILE *f = fopen(p, "r");
  buf[0] = '\0';
  if (f == NULL) return "(missing)";
  if (fgets(buf, (int)cap, f) == NULL) buf[0] = '\0';
  fclose(f);
  buf[strcspn(buf, "\n")] = '\0';
  return buf;
}

/* The commit main's marker says the files were checked out at ("(none)" in an older format,
 * zeros when not known). */
static const char *tg_main_from(const char *ws, char *buf, size_t cap) {
  char p[1024], line[256] = "";
  snprintf(p, sizeof p, "%s/.git/orket-checkout-pending", ws);
  FILE *f = fopen(p, "r");
  size_t n = f ? fread(line, 1, sizeof line - 1, f) : 0;
  if (f) fclose(f);
  line[n] = '\0';
  if (n == 131) snprintf(buf, cap, "%.40s", line + 49);
  else snprintf(buf, cap, "(none)");
  return buf;
}

/* A merge into main does not sync its "planned" before main moves: libgit2 syncs main's
 * reflog entry first. After a power cut that lost it, the marker on disk holds an earlier
 * stage; settling finishes the merges' checkout when that stage names the commit the index
 * or one of the merges since started from still holds and the reflog since is only our
 * merges, and otherwise errs on the safe side: an earlier checkout's "writing" is checked as
 * "planned", and a person's staged revert (the marker naming the tip) or reset keeps their
 * files. */
TEST(test_gitrepo_main_mark_lost) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], a[512], b[512], c[512], id[41], old[41], m1[41], m2[41],
       m3[41], buf[256], want[64], p[700];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int created, removed;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  tg_wt(base, "A", a);
  tg_wt(base, "B", b);
  tg_wt(base, "C", c);
  CHECK(t, gitrepo_head(r, "main", old, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "A", a, &created, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "B", b, &created, &e) == 0); /* both from `old`: B's is a merge commit */
  CHECK(t, tg_commit_file(r, a, "A", "x.txt", "x1\n", NULL, id) == GR_COMMITTED);
  CHECK(t, tg_commit_file(r, b, "B", "y.txt", "y1\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "A", &tg_who, m1, &kind, &conf, &e) == 0 && kind == GR_FASTFORWARD);
  CHECK(t, gitrepo_merge_to_main(r, "B", &tg_who, m2, &kind, &conf, &e) == 0 && kind == GR_MERGED);
  snprintf(want, sizeof want, "idle    %s", m2);
  CHECK_STR(t, tg_main_mark(ws, buf, sizeof buf), want);
  gitrepo_close(r);
  r = NULL;

  /* both merges' files lost: the marker still says main settled at `old`, and the reflog
   * since is our two merges, from old's tree, which the index holds */
  const char *both[] = {"x.txt", "y.txt", NULL};
  CHECK(t, tg_main_unchecked(ws, old, both, "idle", old) == 0);
  CHECK(t, gitrepo_open(ws, &r, &e) == 0);
  if (r == NULL) goto done;
  CHECK(t, gitrepo_check(r, &e) == -1);
  tg_nsyncs = 0;
  tg_sync_log = 1;
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  tg_sync_log = 0;
  CHECK_STR(t, tg_read(ws, "x.txt", buf, sizeof buf), "x1\n");
  CHECK_STR(t, tg_read(ws, "y.txt", buf, sizeof buf), "y1\n");
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_main_mark(ws, buf, sizeof buf), want);
  CHECK(t, tg_settle_durable(ws, -1)); /* the settle it made: files, then index, then the marker */
  /* the same, with a file someone changed on the way: recovery stops (EDIRTY) and records
   * the checkout as planned, so that a git add of theirs cannot turn it into an index reset
   * that leaves y.txt unwritten (their staged file then counts as what was checked out, as
   * it always has) */
  CHECK(t, tg_main_unchecked(ws, old, both, "idle", old) == 0);
  tg_write(ws, "x.txt", "edited by hand\n");
  CHECK(t, tg_restart(&r, ws, &e) == -1);
  if (r == NULL) goto done;
  CHECK_STR(t, e.code, "EDIRTY");
  snprintf(want, sizeof want, "planned %s", m2);
  CHECK_STR(t, tg_main_mark(ws, buf, sizeof buf), want);
  /* their change staged: the files are compared with `old` (the marker's record of where
   * they were), where A's merge adds x.txt: still theirs, and named */
  CHECK(t, tg_stage(ws, "x.txt", NULL) == 0);
  CHECK(t, gitrepo_recover(r, &removed, &e) == -1);
  CHECK_STR(t, e.code, "EDIRTY");
  CHECK(t, strstr(e.msg, "x.txt") != NULL);
  CHECK_STR(t, tg_read(ws, "x.txt", buf, sizeof buf), "edited by hand\n");
  CHECK_STR(t, tg_index_blob(ws, "x.txt", buf, sizeof buf), "edited by hand\n");
  /* set aside (unstaged, removed): both merges' files written */
  CHECK(t, tg_unstage(ws, "x.txt") == 0);
  snprintf(p, sizeof p, "%s/x.txt", ws);
  CHECK(t, unlink(p) == 0);
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "x.txt", buf, sizeof buf), "x1\n");
  CHECK_STR(t, tg_read(ws, "y.txt", buf, sizeof buf), "y1\n");
  CHECK(t, gitrepo_check(r, &e) == 0);

  /* neither index nor marker is synced: the index may be older than the marker's idle */
  CHECK(t, tg_main_unchecked(ws, old, both, "idle", m1) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "x.txt", buf, sizeof buf), "x1\n");
  CHECK_STR(t, tg_read(ws, "y.txt", buf, sizeof buf), "y1\n");
  CHECK(t, gitrepo_check(r, &e) == 0);

  /* a person's staged change, the marker back at `old`: the index is none of the trees the
   * merges since started from, so no file is touched */
  CHECK(t, tg_stage(ws, "s.txt", "staged by hand\n") == 0);
  CHECK(t, tg_write_mark(ws, "idle", old) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  CHECK(t, tg_check_theirs(r, ws, "s.txt") == 0); /* all else consistent */

  /* an earlier checkout's "writing" on disk: checked as planned, so a file someone changed
   * stops it and is kept */
  CHECK(t, tg_main_unchecked(ws, old, NULL, "writing", old) == 0);
  tg_write(ws, "x.txt", "edited by hand\n");
  CHECK(t, tg_restart(&r, ws, &e) == -1);
  if (r == NULL) goto done;
  CHECK_STR(t, e.code, "EDIRTY");
  CHECK_STR(t, tg_read(ws, "x.txt", buf, sizeof buf), "edited by hand\n");
  tg_write(ws, "x.txt", "x1\n");
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, gitrepo_check(r, &e) == 0);

  /* a person's staged revert of B's merge, after it settled (the marker names main's tip):
   * theirs, so only the index follows the tip and y.txt stays gone */
  const char *y[] = {"y.txt", NULL};
  CHECK(t, tg_main_unchecked(ws, m1, y, "idle", m2) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "y.txt", buf, sizeof buf), "(missing)");
  CHECK(t, gitrepo_check(r, &e) == 0);
  /* A's merge settled (index m1's tree), then B's moved main and the power cut took every
   * later stage of the marker, leaving `old`: the merges since m1 are ours, so B's is
   * finished (the same state as a person's staged revert of B under a marker a power cut
   * took back to `old`: that one is not told apart, as it never was) */
  CHECK(t, tg_main_unchecked(ws, m1, NULL, "idle", old) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "y.txt", buf, sizeof buf), "y1\n");
  CHECK(t, gitrepo_check(r, &e) == 0);

  /* a person's reset of main to m1: not our move, so no file is touched, and the marker now
   * names m1, where main settled (synced: what a later lost "planned" is read against) */
  CHECK(t, tg_move_main(ws, m1, "reset: moving to HEAD~1") == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "y.txt", buf, sizeof buf), "y1\n");
  snprintf(want, sizeof want, "idle    %s", m1);
  CHECK_STR(t, tg_main_mark(ws, buf, sizeof buf), want);

  /* then our merge of C, its file lost: read against m1, the chain is ours again */
  CHECK(t, gitrepo_worktree(r, "C", c, &created, &e) == 0);
  CHECK(t, tg_commit_file(r, c, "C", "z.txt", "z1\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "C", &tg_who, m3, &kind, &conf, &e) == 0);
  const char *z[] = {"z.txt", NULL};
  CHECK(t, tg_main_unchecked(ws, m1, z, "idle", m1) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "z.txt", buf, sizeof buf), "z1\n");
  CHECK_STR(t, tg_read(ws, "y.txt", buf, sizeof buf), "y1\n"); /* untracked since the reset: kept */
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
done:
  git_libgit2_shutdown();
  gitrepo_close(r);
  tg_rmtree(base);
}

/* A person's changes staged in main's index while merges land (a person working in main's
 * working tree): each merge writes only the paths it changes and keeps what they staged,
 * as `git checkout` does with local changes; a path both they and the merge change stops
 * it (EDIRTY) with their file and entry kept; recovery carries them over the same way, and
 * finishes a checkout a kill cut short. */
TEST(test_gitrepo_main_staged_kept) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], a[512], b[512], c[512], id[41], before[41], tip[41], buf[256],
       want[64];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int created, updated, removed;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  tg_wt(base, "A", a);
  tg_wt(base, "B", b);
  tg_wt(base, "C", c);
  CHECK(t, gitrepo_worktree(r, "A", a, &created, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "B", b, &created, &e) == 0);
  CHECK(t, tg_commit_file(r, a, "A", "a.txt", "a\n", NULL, id) == GR_COMMITTED);
  CHECK(t, tg_commit_file(r, b, "B", "README", "b\n", NULL, id) == GR_COMMITTED);

  /* a new file and an edit, staged: A's merge writes a.txt and keeps both */
  CHECK(t, tg_stage(ws, "s.txt", "staged by hand\n") == 0);
  CHECK(t, tg_stage(ws, "README", "mine\n") == 0);
  CHECK(t, gitrepo_merge_to_main(r, "A", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a\n");
  CHECK_STR(t, tg_index_blob(ws, "a.txt", buf, sizeof buf), "a\n");
  CHECK_STR(t, tg_read(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  CHECK_STR(t, tg_read(ws, "README", buf, sizeof buf), "mine\n");
  CHECK_STR(t, tg_index_blob(ws, "README", buf, sizeof buf), "mine\n");
  CHECK(t, gitrepo_check(r, &e) == -1); /* their staged changes: the index is not HEAD's tree */
  CHECK(t, strstr(e.msg, "staged by hand") != NULL);

  /* B's merge changes README too: it stands, main's working tree waits, theirs kept */
  CHECK(t, gitrepo_merge_to_main(r, "B", &tg_who, id, &kind, &conf, &e) == 1 && kind == GR_MERGED);
  gr_paths_free(&conf);
  CHECK_STR(t, e.code, "EDIRTY");
  CHECK(t, strstr(e.msg, "README") != NULL);
  CHECK_STR(t, tg_read(ws, "README", buf, sizeof buf), "mine\n");
  CHECK_STR(t, tg_index_blob(ws, "README", buf, sizeof buf), "mine\n");
  CHECK(t, gitrepo_refresh(r, NULL, &updated, &e) == -1);
  CHECK_STR(t, e.code, "EDIRTY");
  /* staged back as it was, the file left theirs: still theirs */
  CHECK(t, tg_stage(ws, "README", "hello\n") == 0);
  tg_write(ws, "README", "mine\n");
  CHECK(t, gitrepo_refresh(r, NULL, &updated, &e) == -1);
  CHECK_STR(t, tg_read(ws, "README", buf, sizeof buf), "mine\n");
  /* the file put back too: B's README written, s.txt still theirs */
  tg_write(ws, "README", "hello\n");
  CHECK(t, gitrepo_refresh(r, NULL, &updated, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "README", buf, sizeof buf), "b\n");
  CHECK_STR(t, tg_index_blob(ws, "README", buf, sizeof buf), "b\n");
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  CHECK(t, gitrepo_head(r, "main", tip, &e) == 0);
  snprintf(want, sizeof want, "idle    %s", tip);
  CHECK_STR(t, tg_main_mark(ws, buf, sizeof buf), want);
  CHECK_STR(t, tg_main_from(ws, buf, sizeof buf), tip);
  /* a restart keeps them */
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  CHECK(t, tg_check_theirs(r, ws, "s.txt") == 0); /* all else consistent */

  /* killed after C's merge moved main, before its checkout: recovery writes c.txt from the
   * commit the reflog shows main left, and keeps s.txt */
  CHECK(t, gitrepo_head(r, "main", before, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "C", c, &created, &e) == 0);
  CHECK(t, tg_commit_file(r, c, "C", "c.txt", "c\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "C", &tg_who, tip, &kind, &conf, &e) == 0);
  const char *cf[] = {"c.txt", NULL};
  CHECK(t, tg_main_unchecked(ws, before, cf, "planned", tip) == 0);
  CHECK(t, tg_stage(ws, "s.txt", NULL) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "c.txt", buf, sizeof buf), "c\n");
  CHECK_STR(t, tg_index_blob(ws, "c.txt", buf, sizeof buf), "c\n");
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  /* the same, killed once c.txt was written (the index not yet): it passes as the tip's */
  CHECK(t, tg_main_unchecked(ws, before, NULL, "planned", tip) == 0);
  CHECK(t, tg_stage(ws, "s.txt", NULL) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_index_blob(ws, "c.txt", buf, sizeof buf), "c\n");
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  /* and with a file of theirs where c.txt goes: kept, named */
  CHECK(t, tg_main_unchecked(ws, before, cf, "planned", tip) == 0);
  CHECK(t, tg_stage(ws, "s.txt", NULL) == 0);
  tg_write(ws, "c.txt", "theirs\n");
  CHECK(t, tg_restart(&r, ws, &e) == -1);
  if (r == NULL) goto done;
  CHECK_STR(t, e.code, "EDIRTY");
  CHECK(t, strstr(e.msg, "c.txt") != NULL);
  CHECK_STR(t, tg_read(ws, "c.txt", buf, sizeof buf), "theirs\n");
  CHECK(t, gitrepo_recover(r, &removed, &e) == -1);
done:
  git_libgit2_shutdown();
  gitrepo_close(r);
  tg_rmtree(base);
}

/* A person's git reset (mixed) to HEAD in main: the index set to the tip's tree, no file
 * touched. 0 or -1. */
static int tg_reset_index(const char *ws) {
  git_repository *repo = NULL;
  git_object *head = NULL;
  int rc = git_repository_open(&repo, ws);
  if (rc == 0) rc = git_revparse_single(&head, repo, "HEAD");
  if (rc == 0) rc = git_reset(repo, head, GIT_RESET_MIXED, NULL);
  git_object_free(head);
  git_repository_free(repo);
  return rc;
}

/* A person's git commit of main's index. 0 or -1. */
static int tg_commit_main(const char *ws) {
  git_repository *repo = NULL;
  git_index *idx = NULL;
  git_tree *tree = NULL;
  git_commit *parent = NULL;
  git_signature *sig = NULL;
  git_oid tid, pid, cid;
  int rc = git_repository_open(&repo, ws);
  if (rc == 0) rc = git_repository_index(&idx, repo);
  if (rc == 0) rc = git_index_write_tree(&tid, idx);
  if (rc == 0) rc = git_tree_lookup(&tree, repo, &tid);
  if (rc == 0) rc = git_reference_name_to_id(&pid, repo, "HEAD");
  if (rc == 0) rc = git_commit_lookup(&parent, repo, &pid);
  if (rc == 0) rc = git_signature_now(&sig, "A person", "person@orket.invalid");
  const git_commit *ps[1] = {parent};
  if (rc == 0) rc = git_commit_create(&cid, repo, "HEAD", sig, sig, NULL, "by hand\n", tree, 1, ps);
  git_signature_free(sig);
  git_commit_free(parent);
  git_tree_free(tree);
  git_index_free(idx);
  git_repository_free(repo);
  return rc;
}

/* Ends a test of scenarios (tg_next): libgit2 let go, the repository closed, and base removed
 * unless the last scenario did (base emptied) or it was never made (still a template). */
static void tg_end(gitrepo *r, const char *base) {
  git_libgit2_shutdown();
  gitrepo_close(r);
  if (base[0] == '/' && strchr(base, 'X') == NULL) tg_rmtree(base);
}

/* Ends one scenario of a test: the repository closed and removed, base ready for the next. */
static void tg_next(gitrepo **r, char *base) {
  gitrepo_close(*r);
  *r = NULL;
  tg_rmtree(base);
  strcpy(base, "/tmp/orket-git-XXXXXX");
}

/* main's reflog turned off (core.logAllRefUpdates false, its logs removed) behind *r's back,
 * then *r opened again and recovered (tg_restart). 0, or what failed. */
static int tg_nolog(gitrepo **r, const char *ws) {
  char cmd[1200];
  gr_err e;
  snprintf(cmd, sizeof cmd, "git -C '%s' config core.logAllRefUpdates false && rm -rf '%s/.git/logs'", ws, ws);
  if (system(cmd) != 0) return -3;
  return tg_restart(r, ws, &e);
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
  return gitrepo_commit(r, card, &tg_who, "work", NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED ? 0 : -1;
}

/* The ways a person's git in main meets Orket's checkouts there, each kept to what the files
 * were checked out at (the marker's `from`): a person's staged changes are never undone, a
 * merge's files are never left unwritten under a marker that says idle, and a path in the
 * way stops the checkout before anything is written. */
TEST(test_gitrepo_main_staged_ways) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], m0[41], id[41], tip[41], buf[256], p[1400];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int updated, removed;
  const char *bx[] = {"b.txt", "b\n", NULL};
  const char *breadme[] = {"README", "b\n", "b2.txt", "b2\n", NULL};
  const char *bdir[] = {"d/y", "card\n", "b2.txt", "b2\n", NULL};
  git_libgit2_init();

  /* killed after A's merge moved main, before its checkout; a person stages a file; another
   * worker merges B without recovering first, then recovers: both merges' files written,
   * from the files' commit the marker carried along, and theirs kept */
  gitrepo *r = tg_two_cards(t, base, ws, m0, bx), *w2 = NULL;
  if (r == NULL) goto done;
  CHECK(t, gitrepo_merge_to_main(r, "A", &tg_who, tip, &kind, &conf, &e) == 0);
  gitrepo_close(r);
  r = NULL;
  const char *af[] = {"a.txt", NULL};
  CHECK(t, tg_main_unchecked(ws, m0, af, "planned", tip) == 0);
  CHECK(t, tg_stage(ws, "s.txt", "staged by hand\n") == 0);
  CHECK(t, gitrepo_open(ws, &w2, &e) == 0);
  if (w2 == NULL) goto done;
  CHECK(t, gitrepo_merge_to_main(w2, "B", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_main_from(ws, buf, sizeof buf), id);
  CHECK(t, gitrepo_recover(w2, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a\n");
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n");
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  CHECK(t, tg_check_theirs(w2, ws, "s.txt") == 0); /* all else consistent */
  gitrepo_close(w2);
  w2 = NULL;
  tg_next(&r, base);

  /* B's merge stops on a path they staged; A's lands meanwhile (still from the files' commit,
   * and stopped on the same path); they take their change back with git reset, leaving their
   * file: still theirs; once the file is as it was, both merges' files are written */
  if ((r = tg_two_cards(t, base, ws, m0, breadme)) == NULL) goto done;
  CHECK(t, tg_stage(ws, "README", "mine\n") == 0);
  CHECK(t, gitrepo_merge_to_main(r, "B", &tg_who, id, &kind, &conf, &e) == 1);
  CHECK_STR(t, e.code, "EDIRTY");
  CHECK(t, gitrepo_merge_to_main(r, "A", &tg_who, tip, &kind, &conf, &e) == 1);
  CHECK(t, strstr(e.msg, "README") != NULL);
  CHECK(t, tg_reset_index(ws) == 0);
  CHECK(t, gitrepo_refresh(r, NULL, &updated, &e) == -1);
  CHECK_STR(t, e.code, "EDIRTY");
  CHECK_STR(t, tg_read(ws, "README", buf, sizeof buf), "mine\n");
  CHECK_STR(t, tg_read(ws, "b2.txt", buf, sizeof buf), "(missing)");
  tg_write(ws, "README", "hello\n");
  CHECK(t, gitrepo_refresh(r, NULL, &updated, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "README", buf, sizeof buf), "b\n");
  CHECK_STR(t, tg_read(ws, "b2.txt", buf, sizeof buf), "b2\n");
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a\n");
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  tg_next(&r, base);

  /* main moved to A by hand (git update-ref, no checkout): the files are still at m0, so B's
   * merge writes A's file too; with logging off and the index merely rewritten (git status),
   * and with logging on and a file staged */
  for (int nolog = 1; nolog >= 0; nolog--) {
    char aid[41];
    if ((r = tg_two_cards(t, base, ws, m0, bx)) == NULL) goto done;
    if (nolog) {
      CHECK(t, tg_nolog(&r, ws) == 0);
      if (r == NULL) goto done;
    }
    CHECK(t, gitrepo_head(r, "orket/A", aid, &e) == 0);
    CHECK(t, tg_move_main(ws, aid, "update-ref by hand") == 0);
    CHECK(t, nolog ? tg_stage(ws, "README", NULL) == 0 : tg_stage(ws, "s.txt", "staged by hand\n") == 0);
    CHECK(t, gitrepo_merge_to_main(r, "B", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
    CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a\n");
    CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n");
    if (!nolog) CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
    tg_next(&r, base);
  }

  /* logging off, killed after A's merge moved main, a file staged: recovery keeps it */
  if ((r = tg_two_cards(t, base, ws, m0, bx)) == NULL) goto done;
  CHECK(t, tg_nolog(&r, ws) == 0);
  if (r == NULL) goto done;
  CHECK(t, gitrepo_merge_to_main(r, "A", &tg_who, tip, &kind, &conf, &e) == 0);
  CHECK(t, tg_main_unchecked(ws, m0, af, "planned", tip) == 0);
  CHECK(t, tg_stage(ws, "s.txt", "staged by hand\n") == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a\n");
  CHECK_STR(t, tg_read(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  tg_next(&r, base);

  /* a person's own commit on main, then a change staged and edited again: neither a settle
   * nor a restart resets it, and the next merge keeps it */
  if ((r = tg_two_cards(t, base, ws, m0, bx)) == NULL) goto done;
  CHECK(t, tg_stage(ws, "README", "committed by hand\n") == 0);
  CHECK(t, tg_commit_main(ws) == 0);
  CHECK(t, tg_stage(ws, "s.txt", "v1 staged\n") == 0);
  tg_write(ws, "s.txt", "v2 on disk\n");
  CHECK(t, gitrepo_refresh(r, NULL, &updated, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "v1 staged\n");
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "v1 staged\n");
  CHECK(t, gitrepo_merge_to_main(r, "A", &tg_who, tip, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a\n");
  CHECK_STR(t, tg_read(ws, "README", buf, sizeof buf), "committed by hand\n");
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "v1 staged\n");
  CHECK_STR(t, tg_read(ws, "s.txt", buf, sizeof buf), "v2 on disk\n");
  tg_next(&r, base);

  /* a file where the merge needs a directory (d, for d/y): stopped before anything is
   * written, so a later edit of another path of that checkout is still checked */
  if ((r = tg_two_cards(t, base, ws, m0, bdir)) == NULL) goto done;
  tg_write(ws, "d", "mine\n");
  CHECK(t, gitrepo_merge_to_main(r, "B", &tg_who, id, &kind, &conf, &e) == 1);
  CHECK_STR(t, e.code, "EDIRTY");
  CHECK(t, strstr(e.msg, "d/y") != NULL);
  CHECK(t, strncmp(tg_main_mark(ws, buf, sizeof buf), "planned", 7) == 0);
  CHECK_STR(t, tg_read(ws, "b2.txt", buf, sizeof buf), "(missing)");
  tg_write(ws, "b2.txt", "their own b2\n");
  snprintf(p, sizeof p, "%s/d", ws);
  CHECK(t, unlink(p) == 0);
  CHECK(t, gitrepo_refresh(r, NULL, &updated, &e) == -1);
  CHECK(t, strstr(e.msg, "b2.txt") != NULL);
  CHECK_STR(t, tg_read(ws, "b2.txt", buf, sizeof buf), "their own b2\n");
  tg_next(&r, base);

  /* a person's git add -N (intent to add) in main: the merge lands, their file kept */
  if ((r = tg_two_cards(t, base, ws, m0, bx)) == NULL) goto done;
  tg_write(ws, "n.txt", "new, intent to add\n");
  snprintf(p, sizeof p, "git -C '%s' add -N n.txt", ws);
  CHECK(t, system(p) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "A", &tg_who, tip, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "a\n");
  CHECK_STR(t, tg_read(ws, "n.txt", buf, sizeof buf), "new, intent to add\n");
  gitrepo_close(r);
  r = NULL;
  tg_rmtree(base);
  base[0] = '\0';
done:
  gitrepo_close(w2);
  tg_end(r, base);
}

/* The marker's record of the commit main's files were checked out at (`from`), at its
 * limits: a kill after a checkout finished but for its marker, a `from` the repository no
 * longer has, a power cut followed by a person's git add, an older version's write over the
 * marker, and a file that a merge turns into a directory, in main and in a card. */
TEST(test_gitrepo_main_mark_from) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], m0[41], m1[41], m2[41], id[41], buf[256], p[1400], wc[512],
       wd[512];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int removed, created;
  gr_commit_kind ck;
  const char *bx[] = {"b.txt", "b\n", NULL};
  const char *bd[] = {"d", "file\n", NULL};
  const char *ghost = "0123456789abcdef0123456789abcdef01234567";
  gitrepo *r = NULL;
  git_libgit2_init();

  /* killed once A's checkout wrote files and index, its marker still "writing": finished;
   * a person's edit since is kept. Still "planned" (a power cut took "writing"): every path
   * is checked, so their edit stops it until they put the file back */
  if ((r = tg_two_cards(t, base, ws, m0, bx)) == NULL) goto done;
  CHECK(t, gitrepo_merge_to_main(r, "A", &tg_who, m1, &kind, &conf, &e) == 0);
  CHECK(t, tg_write_mark_from(ws, "writing", m1, m0) == 0);
  tg_write(ws, "a.txt", "edited after the kill\n");
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "edited after the kill\n");
  CHECK(t, tg_write_mark_from(ws, "planned", m1, m0) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == -1);
  if (r == NULL) goto done;
  CHECK(t, strstr(e.msg, "a.txt") != NULL);
  CHECK_STR(t, tg_read(ws, "a.txt", buf, sizeof buf), "edited after the kill\n");
  tg_write(ws, "a.txt", "a\n");
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));

  /* a `from` the repository does not have (a person's gc after rewinding main): not known.
   * With the index at the tip's tree the checkout counts as done; with a change they staged
   * it stops until they unstage it */
  CHECK(t, tg_write_mark_from(ws, "planned", m1, ghost) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK(t, tg_stage(ws, "s.txt", "staged by hand\n") == 0);
  CHECK(t, tg_write_mark_from(ws, "planned", m1, ghost) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == -1);
  if (r == NULL) goto done;
  CHECK(t, strstr(e.msg, "not known") != NULL);
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  CHECK(t, tg_unstage(ws, "s.txt") == 0);
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));

  /* B merged after A on the path that skips syncing; a power cut leaves the marker idle at
   * A's merge, the index its tree and b.txt unwritten; a person's git add before the
   * restart: the chain of our merges is read from the marker's commit, b.txt written, their
   * file kept */
  CHECK(t, gitrepo_merge_to_main(r, "B", &tg_who, m2, &kind, &conf, &e) == 0);
  const char *bf[] = {"b.txt", NULL};
  CHECK(t, tg_main_unchecked(ws, m1, bf, "idle", m1) == 0);
  CHECK(t, tg_stage(ws, "s.txt", "staged by hand\n") == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n");
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  CHECK(t, tg_check_theirs(r, ws, "s.txt") == 0); /* all else consistent */

  /* an older version's write over the marker (its first line alone): the second line, about
   * another commit, is not taken for where the files are */
  CHECK(t, tg_write_mark_from(ws, "planned", m2, m0) == 0);
  snprintf(p, sizeof p, "%s/.git/orket-checkout-pending", ws);
  FILE *f = fopen(p, "r+");
  CHECK(t, f != NULL && fprintf(f, "%-7s %s\n", "writing", m1) == 49);
  if (f) fclose(f);
  CHECK_STR(t, tg_main_from(ws, buf, sizeof buf), m0); /* the bytes are there... */
  CHECK(t, tg_restart(&r, ws, &e) == -1);              /* ...but not read as `from` */
  if (r == NULL) goto done;
  CHECK(t, strstr(e.msg, "not known") != NULL);
  CHECK(t, tg_unstage(ws, "s.txt") == 0);
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  tg_next(&r, base);

  /* logging off; a worker killed once its merge of P wrote files and index (marker still
   * "writing", from the commit before); another merges Q, which takes P's change back,
   * before any recovery: main's index is P's tree, found in main's history though no reflog
   * names it, so it is ours, not a person's, and b.txt follows Q */
  if ((r = tg_two_cards(t, base, ws, m0, bx)) == NULL) goto done;
  CHECK(t, tg_nolog(&r, ws) == 0);
  if (r == NULL) goto done;
  const char *to_p[] = {"put", "b.txt", "p\n", NULL}, *back[] = {"put", "b.txt", "b\n", NULL};
  CHECK(t, tg_card_change(r, base, "P", to_p, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "P", &tg_who, m1, &kind, &conf, &e) == 0);
  CHECK(t, tg_write_mark_from(ws, "writing", m1, m0) == 0);
  gitrepo_close(r);
  r = NULL;
  CHECK(t, gitrepo_open(ws, &r, &e) == 0);
  if (r == NULL) goto done;
  CHECK(t, tg_card_change(r, base, "Q", back, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "Q", &tg_who, m2, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n");
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  tg_next(&r, base);

  /* the same, Q made before P's merge and then given main (merge_from_main), so that its
   * merge fast-forwards main onto it: P's tree is behind Q's second parent, and still found */
  if ((r = tg_two_cards(t, base, ws, m0, bx)) == NULL) goto done;
  CHECK(t, tg_nolog(&r, ws) == 0);
  if (r == NULL) goto done;
  const char *q_c[] = {"put", "c.txt", "q\n", NULL};
  CHECK(t, tg_card_change(r, base, "Q", q_c, id) == 0);
  CHECK(t, tg_card_change(r, base, "P", to_p, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "P", &tg_who, m1, &kind, &conf, &e) == 0);
  CHECK(t, tg_write_mark_from(ws, "writing", m1, m0) == 0);
  gitrepo_close(r);
  r = NULL;
  CHECK(t, gitrepo_open(ws, &r, &e) == 0);
  if (r == NULL) goto done;
  CHECK(t, gitrepo_merge_from_main(r, "Q", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, tg_card_change(r, base, "Q", back, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "Q", &tg_who, m2, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, kind == GR_FASTFORWARD);
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b\n");
  CHECK_STR(t, tg_read(ws, "c.txt", buf, sizeof buf), "q\n");
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  tg_next(&r, base);

  /* a merge that turns file d into directory d/y, in main and, through merge_from_main, in
   * a card that still holds the file */
  if ((r = tg_two_cards(t, base, ws, m0, bd)) == NULL) goto done;
  CHECK(t, gitrepo_merge_to_main(r, "B", &tg_who, m1, &kind, &conf, &e) == 0);
  CHECK_STR(t, tg_read(ws, "d", buf, sizeof buf), "file\n");
  tg_wt(base, "C", wc);
  tg_wt(base, "D", wd);
  CHECK(t, gitrepo_worktree(r, "C", wc, &created, &e) == 0);
  CHECK(t, gitrepo_worktree(r, "D", wd, &created, &e) == 0);
  snprintf(p, sizeof p, "%s/d", wd);
  CHECK(t, unlink(p) == 0 && mkdir(p, 0755) == 0);
  tg_write(wd, "d/y", "now a directory\n");
  ck = GR_CLEAN;
  CHECK(t, gitrepo_commit(r, "D", &tg_who, "work", NULL, NULL, id, &ck, NULL, &e) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "D", &tg_who, m2, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "d/y", buf, sizeof buf), "now a directory\n");
  CHECK(t, gitrepo_merge_from_main(r, "C", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(wc, "d/y", buf, sizeof buf), "now a directory\n");
  CHECK(t, tg_commit_file(r, wc, "C", "c.txt", "c\n", NULL, id) == GR_COMMITTED);
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  tg_next(&r, base);
  base[0] = '\0';
done:
  tg_end(r, base);
}


/* Changes of a path's type reach main's working tree and a card's, each checked as one
 * change: a symlink retargeted, a file turned symlink, a directory turned file (refused
 * while it holds a file of someone's); and a carried checkout killed once written is
 * checked again rather than rewritten over a person's edit. */
TEST(test_gitrepo_main_types) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], m0[41], id[41], buf[256], p[1400], wd[512];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int created, removed;
  const char *bl[] = {"b.txt", "b\n", "e/z", "z\n", NULL};
  gitrepo *r = NULL;
  git_libgit2_init();
  if ((r = tg_two_cards(t, base, ws, m0, bl)) == NULL) goto done;
  CHECK(t, gitrepo_merge_to_main(r, "B", &tg_who, id, &kind, &conf, &e) == 0);
  const char *mk_link[] = {"ln", "l", "b.txt", NULL};
  CHECK(t, tg_card_change(r, base, "C", mk_link, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "C", &tg_who, id, &kind, &conf, &e) == 0);
  tg_wt(base, "D", wd); /* a card holding l as it is now */
  CHECK(t, gitrepo_worktree(r, "D", wd, &created, &e) == 0);

  /* the link retargeted, then b.txt turned into a link: main follows, and so does D */
  const char *retarget[] = {"ln", "l", "e/z", "ln", "b.txt", "e/z", NULL};
  CHECK(t, tg_card_change(r, base, "E", retarget, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "E", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  snprintf(p, sizeof p, "%s/l", ws);
  ssize_t k = readlink(p, buf, sizeof buf - 1);
  buf[k > 0 ? k : 0] = '\0';
  CHECK_STR(t, buf, "e/z");
  snprintf(p, sizeof p, "%s/b.txt", ws);
  k = readlink(p, buf, sizeof buf - 1);
  buf[k > 0 ? k : 0] = '\0';
  CHECK_STR(t, buf, "e/z");
  CHECK(t, gitrepo_merge_from_main(r, "D", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  snprintf(p, sizeof p, "%s/l", wd);
  k = readlink(p, buf, sizeof buf - 1);
  buf[k > 0 ? k : 0] = '\0';
  CHECK_STR(t, buf, "e/z");
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));

  /* directory e turned into a file: refused while e holds a file of someone's, written
   * once it holds only what the merge deletes */
  const char *to_file[] = {"rm", "e/z", NULL, "rm", "l", NULL, "rm", "b.txt", NULL, NULL};
  char we[512];
  CHECK(t, tg_card_change(r, base, "F", to_file, id) == 0);
  tg_wt(base, "F", we);
  snprintf(p, sizeof p, "%s/e", we);
  CHECK(t, rmdir(p) == 0);
  CHECK(t, tg_write(we, "e", "now a file\n") == 0);
  gr_commit_kind ck = GR_CLEAN;
  CHECK(t, gitrepo_commit(r, "F", &tg_who, "work", NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  tg_write(ws, "e/mine.txt", "a person's\n");
  CHECK(t, gitrepo_merge_to_main(r, "F", &tg_who, id, &kind, &conf, &e) == 1);
  CHECK(t, strstr(e.msg, "e was changed") != NULL);
  CHECK_STR(t, tg_read(ws, "e/mine.txt", buf, sizeof buf), "a person's\n");
  snprintf(p, sizeof p, "%s/e/mine.txt", ws);
  CHECK(t, unlink(p) == 0);
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "e", buf, sizeof buf), "now a file\n");
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));

  /* a carried checkout (s.txt staged) killed once written, its marker still "writing"; a
   * person's edit since of a file it wrote is checked, not rewritten */
  char m1[41], m2[41];
  CHECK(t, gitrepo_head(r, "main", m1, &e) == 0);
  CHECK(t, tg_stage(ws, "s.txt", "staged by hand\n") == 0);
  const char *put_g[] = {"put", "g.txt", "g\n", NULL};
  CHECK(t, tg_card_change(r, base, "G", put_g, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "G", &tg_who, m2, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, tg_write_mark_from(ws, "writing", m2, m1) == 0);
  tg_write(ws, "g.txt", "edited after the kill\n");
  CHECK(t, tg_restart(&r, ws, &e) == -1);
  if (r == NULL) goto done;
  CHECK(t, strstr(e.msg, "g.txt") != NULL);
  CHECK_STR(t, tg_read(ws, "g.txt", buf, sizeof buf), "edited after the kill\n");
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  tg_next(&r, base);
  base[0] = '\0';
done:
  tg_end(r, base);
}

/* What may stand on a checkout's way, and what it then does: a person's empty directory in
 * a directory turned file, or where a file goes, stops it before anything is written (so
 * their later edit of another of its paths is still checked); a person's symlink where a
 * directory was stops it, nothing written through it; a tracked symlink to a directory
 * turned directory, a file turned directory already written by a killed carried checkout,
 * and symlinks where the repository makes none (core.symlinks false) all pass. */
TEST(test_gitrepo_main_in_the_way) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], m0[41], m1[41], m2[41], id[41], buf[256], p[1400], wt[512],
       theirs[600];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int removed, created;
  gr_commit_kind ck;
  struct stat st;
  const char *bl[] = {"b.txt", "b\n", "e/z", "z\n", "e/s/w", "w\n", "z.txt", "old\n", "d", "file d\n", NULL};
  gitrepo *r = NULL;
  git_libgit2_init();
  if ((r = tg_two_cards(t, base, ws, m0, bl)) == NULL) goto done;
  CHECK(t, gitrepo_merge_to_main(r, "B", &tg_who, m1, &kind, &conf, &e) == 0);

  /* e turned into a file, z.txt changed; a person's empty directory e/s/keep */
  const char *to_file[] = {"rm", "e/z", NULL, "rm", "e/s/w", NULL, "put", "z.txt", "new\n", NULL};
  CHECK(t, tg_card_change(r, base, "F", to_file, id) == 0);
  tg_wt(base, "F", wt);
  snprintf(p, sizeof p, "%s/e/s", wt);
  CHECK(t, rmdir(p) == 0);
  snprintf(p, sizeof p, "%s/e", wt);
  CHECK(t, rmdir(p) == 0 && tg_write(wt, "e", "now a file\n") == 0);
  ck = GR_CLEAN;
  CHECK(t, gitrepo_commit(r, "F", &tg_who, "work", NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  snprintf(p, sizeof p, "%s/e/s/keep", ws);
  CHECK(t, mkdir(p, 0755) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "F", &tg_who, id, &kind, &conf, &e) == 1);
  CHECK(t, strstr(e.msg, "e was changed") != NULL);
  CHECK(t, strncmp(tg_main_mark(ws, buf, sizeof buf), "planned", 7) == 0);
  CHECK_STR(t, tg_read(ws, "z.txt", buf, sizeof buf), "old\n");
  CHECK_STR(t, tg_read(ws, "e/z", buf, sizeof buf), "z\n");
  tg_write(ws, "z.txt", "a person's edit\n");
  CHECK(t, rmdir(p) == 0);
  CHECK(t, gitrepo_recover(r, &removed, &e) == -1);
  CHECK(t, strstr(e.msg, "z.txt") != NULL);
  CHECK_STR(t, tg_read(ws, "z.txt", buf, sizeof buf), "a person's edit\n");
  tg_write(ws, "z.txt", "old\n");
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "e", buf, sizeof buf), "now a file\n");

  /* a person's empty directory where a merge adds a file: in the way, and kept */
  snprintf(p, sizeof p, "%s/n", ws);
  CHECK(t, mkdir(p, 0755) == 0);
  const char *put_n[] = {"put", "n", "n\n", NULL};
  CHECK(t, tg_card_change(r, base, "N", put_n, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "N", &tg_who, id, &kind, &conf, &e) == 1);
  CHECK(t, lstat(p, &st) == 0 && S_ISDIR(st.st_mode));
  CHECK(t, rmdir(p) == 0);
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));

  /* a person's symlink where directory e/ was (now a file again: put one back first) */
  const char *to_dir[] = {"rm", "e", NULL, NULL};
  CHECK(t, tg_card_change(r, base, "P", to_dir, id) == 0);
  tg_wt(base, "P", wt);
  snprintf(p, sizeof p, "%s/e", wt);
  CHECK(t, mkdir(p, 0755) == 0 && tg_write(wt, "e/z", "z\n") == 0);
  ck = GR_CLEAN;
  CHECK(t, gitrepo_commit(r, "P", &tg_who, "work", NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "P", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  snprintf(theirs, sizeof theirs, "%s/theirs", base);
  CHECK(t, mkdir(theirs, 0755) == 0);
  snprintf(p, sizeof p, "%s/e/z", ws);
  CHECK(t, unlink(p) == 0);
  snprintf(p, sizeof p, "%s/e", ws);
  CHECK(t, rmdir(p) == 0 && symlink(theirs, p) == 0);
  const char *edit[] = {"put", "e/z", "z2\n", NULL};
  CHECK(t, tg_card_change(r, base, "G", edit, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "G", &tg_who, id, &kind, &conf, &e) == 1);
  CHECK(t, strstr(e.msg, "symlink") != NULL);
  CHECK_STR(t, tg_read(theirs, "z", buf, sizeof buf), "(missing)");
  CHECK(t, lstat(p, &st) == 0 && S_ISLNK(st.st_mode));
  CHECK(t, unlink(p) == 0 && mkdir(p, 0755) == 0);
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "e/z", buf, sizeof buf), "z2\n");

  /* a tracked symlink to a directory, turned into a directory of its own */
  const char *mk_link[] = {"ln", "l", "e", NULL};
  CHECK(t, tg_card_change(r, base, "C", mk_link, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "C", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  tg_wt(base, "L", wt);
  CHECK(t, gitrepo_worktree(r, "L", wt, &created, &e) == 0);
  snprintf(p, sizeof p, "%s/l", wt);
  CHECK(t, unlink(p) == 0 && mkdir(p, 0755) == 0 && tg_write(wt, "l/z", "mine\n") == 0);
  ck = GR_CLEAN;
  CHECK(t, gitrepo_commit(r, "L", &tg_who, "work", NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "L", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "l/z", buf, sizeof buf), "mine\n");
  CHECK_STR(t, tg_read(ws, "e/z", buf, sizeof buf), "z2\n");

  /* a file turned directory by a carried checkout (s.txt staged), killed once written */
  CHECK(t, gitrepo_head(r, "main", m1, &e) == 0);
  CHECK(t, tg_stage(ws, "s.txt", "staged by hand\n") == 0);
  const char *d_dir[] = {"dir", "d", NULL, "put", "d/y", "y\n", NULL};
  CHECK(t, tg_card_change(r, base, "H", d_dir, m2) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "H", &tg_who, m2, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, tg_write_mark_from(ws, "writing", m2, m1) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK(t, tg_check_theirs(r, ws, "s.txt") == 0); /* all else consistent */
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  CHECK(t, tg_unstage(ws, "s.txt") == 0);

  /* core.symlinks false: a symlink is a plain file holding its target, retargeted in main
   * and in a card's directory */
  snprintf(p, sizeof p, "git -C '%s' config core.symlinks false", ws);
  CHECK(t, system(p) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  const char *mk_k[] = {"ln", "k", "b.txt", NULL};
  CHECK(t, tg_card_change(r, base, "K", mk_k, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "K", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  snprintf(p, sizeof p, "%s/k", ws);
  CHECK(t, lstat(p, &st) == 0 && S_ISREG(st.st_mode));
  tg_wt(base, "M", wt);
  CHECK(t, gitrepo_worktree(r, "M", wt, &created, &e) == 0);
  const char *re_k[] = {"ln", "k", "z.txt", NULL};
  CHECK(t, tg_card_change(r, base, "R", re_k, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "R", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "k", buf, sizeof buf), "z.txt");
  CHECK(t, gitrepo_merge_from_main(r, "M", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(wt, "k", buf, sizeof buf), "z.txt");
  tg_next(&r, base);
  base[0] = '\0';
done:
  tg_end(r, base);
}

/* Permission checks on (1) or back off (0): as root the file permissions are not checked
 * unless the capabilities that bypass them are dropped from the effective set. 0, or -1
 * when that cannot be done here. */
static int tg_read_only_dirs(int on) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  if (geteuid() != 0) return 0;
  if (syscall(SYS_capget, &h, d) != 0) return -1;
  unsigned bypass = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH);
  if (on) d[0].effective &= ~bypass;
  else d[0].effective |= bypass & d[0].permitted;
  return (int)syscall(SYS_capset, &h, d);
}

/* Checkouts libgit2 stops half way: a directory turned file or symlink whose files were all
 * written when the index could not be (a person's git holding index.lock), or when a kill
 * came; a file cut short by a write error; and the same type changes in a reused card
 * directory whose index is locked. Each finishes once what stopped it is gone, with every
 * file there, and nothing is left pending. */
TEST(test_gitrepo_checkout_cut_short) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], m0[41], id[41], buf[256], p[1400], pool[600], state[600];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int removed, sw, det;
  struct stat st;
  const char *bl[] = {"b.txt", "b\n", NULL};
  gitrepo *r = NULL;
  git_libgit2_init();
  if ((r = tg_two_cards(t, base, ws, m0, bl)) == NULL) goto done;
  CHECK(t, gitrepo_merge_to_main(r, "B", &tg_who, id, &kind, &conf, &e) == 0);

  for (int round = 0; round < 4; round++) { /* file, symlink; index locked, then killed */
    int as_link = round % 2, killed = round >= 2;
    char card[24], wt[512], dir[24], f[32];
    snprintf(card, sizeof card, "E%d", round);
    snprintf(dir, sizeof dir, "e%d", round);
    snprintf(f, sizeof f, "e%d/z", round);
    const char *mk[] = {"put", f, "z\n", NULL};
    CHECK(t, tg_card_change(r, base, card, mk, id) == 0);
    CHECK(t, gitrepo_merge_to_main(r, card, &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
    snprintf(card, sizeof card, "F%d", round);
    const char *rm[] = {"rm", f, NULL, "put", "b.txt", "b2\n", NULL};
    CHECK(t, tg_card_change(r, base, card, rm, id) == 0);
    tg_wt(base, card, wt);
    snprintf(p, sizeof p, "%s/%s", wt, dir);
    CHECK(t, rmdir(p) == 0 && (as_link ? symlink("b.txt", p) : tg_write(wt, dir, "now a file\n")) == 0);
    gr_commit_kind ck = GR_CLEAN;
    CHECK(t, gitrepo_commit(r, card, &tg_who, "work", NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
    snprintf(p, sizeof p, "%s/.git/index.lock", ws);
    CHECK(t, tg_write(ws, ".git/index.lock", "") == 0);
    CHECK(t, gitrepo_merge_to_main(r, card, &tg_who, id, &kind, &conf, &e) == 1);
    CHECK_STR(t, e.code, "ELOCKED");
    CHECK(t, unlink(p) == 0);
    if (killed) {
      gitrepo_close(r);
      r = NULL;
      CHECK(t, gitrepo_open(ws, &r, &e) == 0);
      if (r == NULL) goto done;
    }
    CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    round %d: %s\n", round, e.msg));
    snprintf(p, sizeof p, "%s/%s", ws, dir);
    CHECK(t, lstat(p, &st) == 0 && (as_link ? S_ISLNK(st.st_mode) : S_ISREG(st.st_mode)));
    CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "b2\n");
    CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    round %d: %s\n", round, e.msg));
    CHECK_STR(t, tg_index_blob(ws, f, buf, sizeof buf), "(none)");
  }

  /* a file cut short (a write error: the process's file size limit) is our own: rewritten */
  static char big1[200001], big2[200001];
  memset(big1, 'a', 200000);
  memset(big2, 'b', 200000);
  const char *b1[] = {"put", "big.txt", big1, NULL}, *b2[] = {"put", "big.txt", big2, NULL};
  CHECK(t, tg_card_change(r, base, "G1", b1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "G1", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, tg_card_change(r, base, "G2", b2, id) == 0);
  struct rlimit was, lim;
  CHECK(t, getrlimit(RLIMIT_FSIZE, &was) == 0);
  lim = was;
  lim.rlim_cur = 65536;
  signal(SIGXFSZ, SIG_IGN);
  CHECK(t, setrlimit(RLIMIT_FSIZE, &lim) == 0);
  int rc = gitrepo_merge_to_main(r, "G2", &tg_who, id, &kind, &conf, &e);
  setrlimit(RLIMIT_FSIZE, &was);
  signal(SIGXFSZ, SIG_DFL);
  CHECK(t, rc == 1);
  snprintf(p, sizeof p, "%s/big.txt", ws);
  CHECK(t, stat(p, &st) == 0 && st.st_size < 200000);
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, stat(p, &st) == 0 && st.st_size == 200000);

  /* a merge whose only change deletes e/x, stopped at a locked index once libgit2 removed
   * e/x and e; a person then makes a file e and edits b.txt: with nothing of the checkout left
   * to write, nothing is (libgit2 reads no paths as all of them), and their file in e/x's way
   * stops it until they move it */
  const char *mk_e[] = {"put", "e/x", "x\n", NULL}, *rm_e[] = {"rm", "e/x", NULL, NULL};
  CHECK(t, tg_card_change(r, base, "H1", mk_e, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "H1", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, tg_card_change(r, base, "H2", rm_e, id) == 0);
  CHECK(t, tg_write(ws, ".git/index.lock", "") == 0);
  CHECK(t, gitrepo_merge_to_main(r, "H2", &tg_who, id, &kind, &conf, &e) == 1);
  snprintf(p, sizeof p, "%s/.git/index.lock", ws);
  CHECK(t, unlink(p) == 0);
  snprintf(p, sizeof p, "%s/e", ws);
  CHECK(t, lstat(p, &st) != 0);
  CHECK(t, tg_write(ws, "e", "a person's notes\n") == 0 && tg_write(ws, "b.txt", "a person's edit\n") == 0);
  CHECK(t, gitrepo_recover(r, &removed, &e) == -1);
  CHECK(t, strstr(e.msg, "e/x") != NULL);
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "a person's edit\n");
  CHECK_STR(t, tg_read(ws, "e", buf, sizeof buf), "a person's notes\n");
  CHECK(t, unlink(p) == 0);
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "b.txt", buf, sizeof buf), "a person's edit\n");
  CHECK_STR(t, tg_index_blob(ws, "e/x", buf, sizeof buf), "(none)");
  tg_write(ws, "b.txt", "b2\n");

  /* a directory that cannot be read (mode 0300) holding a file a merge deletes, the marker
   * saying writing (a kill once it did): not taken for something in the way whose paths are
   * gone (the file left on disk, its entry dropped, the marker idle), but deleted, or the
   * checkout left pending */
  const char *mk_u[] = {"put", "u/x", "x\n", "put", "u/y", "y\n", NULL}, *rm_u[] = {"rm", "u/x", NULL, NULL};
  CHECK(t, tg_card_change(r, base, "U1", mk_u, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "U1", &tg_who, id, &kind, &conf, &e) == 0);
  CHECK(t, tg_card_change(r, base, "U2", rm_u, id) == 0);
  CHECK(t, tg_write(ws, ".git/index.lock", "") == 0);
  CHECK(t, gitrepo_merge_to_main(r, "U2", &tg_who, id, &kind, &conf, &e) == 1); /* planned, stopped */
  snprintf(p, sizeof p, "%s/.git/index.lock", ws);
  CHECK(t, unlink(p) == 0);
  char m3[41], ux[1400];
  CHECK(t, gitrepo_head(r, "main", m3, &e) == 0);
  CHECK(t, tg_write_mark_from(ws, "writing", m3, m3) == 0);
  snprintf(p, sizeof p, "%s/u", ws);
  snprintf(ux, sizeof ux, "%s/u/x", ws);
  if (tg_read_only_dirs(1) == 0) {
    CHECK(t, chmod(p, 0300) == 0);
    rc = gitrepo_recover(r, &removed, &e);
    CHECK(t, chmod(p, 0755) == 0);
    tg_read_only_dirs(0);
    if (rc == 0) {
      CHECK(t, lstat(ux, &st) != 0);
      CHECK_STR(t, tg_index_blob(ws, "u/x", buf, sizeof buf), "(none)");
    } else { /* stopped: still pending, whatever libgit2 did first */
      CHECK(t, strncmp(tg_main_mark(ws, buf, sizeof buf), "idle", 4) != 0);
    }
  }
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK(t, lstat(ux, &st) != 0);

  /* a merge turning directory w/f into a file, killed once libgit2 removed the directory
   * and before it wrote the file (index still the old tree, marker "writing"): finished with
   * the file there */
  char mw0[41], mw1[41], wt[512];
  gr_commit_kind ck;
  const char *mk_w[] = {"put", "w/f/in", "in\n", NULL};
  CHECK(t, tg_card_change(r, base, "W1", mk_w, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "W1", &tg_who, mw0, &kind, &conf, &e) == 0);
  const char *w_file[] = {"rm", "w/f/in", NULL, NULL};
  CHECK(t, tg_card_change(r, base, "W2", w_file, id) == 0);
  tg_wt(base, "W2", wt);
  snprintf(p, sizeof p, "%s/w/f", wt);
  CHECK(t, rmdir(p) == 0 && tg_write(wt, "w/f", "now a file\n") == 0);
  ck = GR_CLEAN;
  CHECK(t, gitrepo_commit(r, "W2", &tg_who, "work", NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
  CHECK(t, gitrepo_merge_to_main(r, "W2", &tg_who, mw1, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  const char *wf[] = {"w/f", NULL};
  CHECK(t, tg_main_unchecked(ws, mw0, wf, "writing", mw1) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "w/f", buf, sizeof buf), "now a file\n");
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));

  /* a file turned directory, killed once libgit2 replaced the file by the directory and
   * before it wrote anything in it; the marker "planned" again (another worker's merge, or a
   * power cut): the empty directory is the checkout's own beginning, not in its way */
  char mv0[41], mv1[41];
  const char *mk_v[] = {"put", "v", "v\n", NULL}, *v_dir[] = {"dir", "v", NULL, "put", "v/w/f", "f\n", NULL};
  CHECK(t, tg_card_change(r, base, "V1", mk_v, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "V1", &tg_who, mv0, &kind, &conf, &e) == 0);
  CHECK(t, tg_card_change(r, base, "V2", v_dir, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "V2", &tg_who, mv1, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  const char *vf[] = {"v/w/f", NULL};
  CHECK(t, tg_main_unchecked(ws, mv0, vf, "planned", mv1) == 0);
  snprintf(p, sizeof p, "%s/v/w", ws);
  CHECK(t, rmdir(p) == 0);
  CHECK(t, tg_restart(&r, ws, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  if (r == NULL) goto done;
  CHECK_STR(t, tg_read(ws, "v/w/f", buf, sizeof buf), "f\n");
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));

  /* a worker killed in the middle of a checkout ("writing", a file it cut short); another
   * worker's merge before any recovery finishes that checkout first, so the file cut short
   * is rewritten as its own rather than taken for someone's */
  char mk0[41], mk1[41];
  const char *k1[] = {"put", "kk.txt", "first\n", NULL}, *k2[] = {"put", "kk.txt", "second version\n", NULL},
             *k3[] = {"put", "kl.txt", "l\n", NULL};
  CHECK(t, tg_card_change(r, base, "K1", k1, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "K1", &tg_who, mk0, &kind, &conf, &e) == 0);
  CHECK(t, tg_card_change(r, base, "K3", k3, id) == 0); /* from mk0 */
  CHECK(t, tg_card_change(r, base, "K2", k2, id) == 0);
  CHECK(t, gitrepo_merge_to_main(r, "K2", &tg_who, mk1, &kind, &conf, &e) == 0);
  CHECK(t, tg_main_unchecked(ws, mk0, NULL, "writing", mk1) == 0);
  CHECK(t, tg_write(ws, "kk.txt", "sec") == 0); /* cut short */
  gitrepo_close(r);
  r = NULL;
  CHECK(t, gitrepo_open(ws, &r, &e) == 0);
  if (r == NULL) goto done;
  CHECK(t, gitrepo_merge_to_main(r, "K3", &tg_who, id, &kind, &conf, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  CHECK_STR(t, tg_read(ws, "kk.txt", buf, sizeof buf), "second version\n");
  CHECK_STR(t, tg_read(ws, "kl.txt", buf, sizeof buf), "l\n");
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));

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
  CHECK(t, gitrepo_commit(r, "X", &tg_who, "work", NULL, NULL, id, &ck, NULL, &e) == 0 && ck == GR_COMMITTED);
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

/* Merges card (a file of its own, committed in its worktree under base) into main with the
 * syncs logged (tg_synced); returns 1 when main's marker was synced before main moved, 0
 * when not, -1 on failure. */
static int tg_merge_syncs(gitrepo *r, const char *base, const char *ws, const char *card, char *id) {
  char wt[512], name[64];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  int created;
  tg_wt(base, card, wt);
  snprintf(name, sizeof name, "%s.txt", card);
  if (gitrepo_worktree(r, card, wt, &created, &e) != 0 || tg_commit_file(r, wt, card, name, "work\n", NULL, id) < 0)
    return -1;
  if (gitrepo_head(r, "main", tg_ref_before, &e) != 0) return -1;
  snprintf(tg_ref_path, sizeof tg_ref_path, "%s/.git/refs/heads/main", ws);
  tg_nsyncs = 0;
  tg_sync_log = 1;
  int rc = gitrepo_merge_to_main(r, card, &tg_who, id, &kind, &conf, &e);
  tg_sync_log = 0;
  if (rc != 0) {
    fprintf(stderr, "    merge %s: %s\n", card, e.msg);
    return -1;
  }
  gr_paths_free(&conf);
  char git[600];
  snprintf(git, sizeof git, "%s/.git", ws);
  return tg_synced(git, "orket-checkout-pending", 1) ? 1 : 0;
}

/* Which merges into main sync their "planned" before main moves: none while main's reflog
 * records the move and main is as this handle left it; every one when main's index or tip
 * moved behind its back (a person's git add or reset) or logging is off. */
TEST(test_gitrepo_main_mark_sync) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], prev[41], p[700], buf[256];
  gr_err e;
  int removed, updated, created;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  CHECK(t, tg_merge_syncs(r, base, ws, "A", id) == 1); /* the marker made: synced once */
  CHECK(t, tg_merge_syncs(r, base, ws, "B", prev) == 0);
  CHECK(t, tg_merge_syncs(r, base, ws, "C", id) == 0);
  /* a person's git add in main: the index is not the one this handle left. Their change is
   * carried over, and while it stays staged every merge syncs and settles durably */
  CHECK(t, tg_stage(ws, "s.txt", "staged by hand\n") == 0);
  CHECK(t, tg_merge_syncs(r, base, ws, "D", id) == 1);
  CHECK(t, tg_settle_durable(ws, 0));
  CHECK(t, tg_merge_syncs(r, base, ws, "D2", id) == 1);
  CHECK(t, tg_settle_durable(ws, 0));
  CHECK_STR(t, tg_read(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  CHECK_STR(t, tg_index_blob(ws, "s.txt", buf, sizeof buf), "staged by hand\n");
  CHECK_STR(t, tg_index_blob(ws, "D2.txt", buf, sizeof buf), "work\n");
  /* they unstage it: the next merge syncs (not the index this handle left), and its durable
   * settle is what E's chain of reflog entries is read back to */
  CHECK(t, tg_unstage(ws, "s.txt") == 0);
  CHECK(t, tg_merge_syncs(r, base, ws, "D3", id) == 1);
  CHECK(t, tg_settle_durable(ws, 0));
  CHECK(t, tg_merge_syncs(r, base, ws, "E", id) == 0);
  CHECK(t, !tg_settle_durable(ws, 0));
  /* a person's reset of main */
  CHECK(t, tg_move_main(ws, prev, "reset: moving to HEAD~3") == 0);
  CHECK(t, tg_merge_syncs(r, base, ws, "F", id) == 1);
  CHECK(t, tg_settle_durable(ws, 0));
  /* a person's git add: a settle of main keeps it, theirs (nothing written or synced) */
  CHECK(t, tg_stage(ws, "t.txt", "staged by hand\n") == 0);
  CHECK(t, gitrepo_refresh(r, NULL, &updated, &e) == 0);
  CHECK_STR(t, tg_index_blob(ws, "t.txt", buf, sizeof buf), "staged by hand\n");
  CHECK(t, tg_check_theirs(r, ws, "t.txt") == 0); /* all else consistent */
  CHECK(t, tg_unstage(ws, "t.txt") == 0);
  /* their staged revert of F's merge (the index main's tree before it, as a settle that was
   * cut short leaves it): a settle of main sets the index to the tip (no file written,
   * nothing synced), so the next merge syncs and settles durably */
  CHECK(t, tg_unstage(ws, "F.txt") == 0);
  CHECK(t, gitrepo_refresh(r, NULL, &updated, &e) == 0);
  CHECK_STR(t, tg_index_blob(ws, "F.txt", buf, sizeof buf), "work\n");
  CHECK(t, tg_merge_syncs(r, base, ws, "F2", id) == 1);
  CHECK(t, tg_settle_durable(ws, 0));
  /* a new process: its first merge syncs and settles durably (what it knows of main's
   * index starts there), the next does not */
  gitrepo_close(r);
  r = NULL;
  CHECK(t, gitrepo_open(ws, &r, &e) == 0);
  if (r == NULL) goto done;
  CHECK(t, gitrepo_refresh(r, NULL, &updated, &e) == 0);
  CHECK(t, tg_merge_syncs(r, base, ws, "G", id) == 1);
  CHECK(t, tg_settle_durable(ws, 0));
  CHECK(t, tg_merge_syncs(r, base, ws, "G2", id) == 0);
  /* main's reflog gone (a person's git reflog expire, say): nothing records the move, so the
   * merge syncs, and the next (the reflog there again) does not */
  snprintf(p, sizeof p, "%s/.git/logs/refs/heads/main", ws);
  CHECK(t, unlink(p) == 0);
  CHECK(t, tg_merge_syncs(r, base, ws, "G3", id) == 1);
  CHECK(t, tg_merge_syncs(r, base, ws, "G4", id) == 0);
  /* a merge stopped by a file in its way, a person's git add of it and a settle of main:
   * that settle did not start from the index this handle left, so the next merge syncs */
  {
    char wm[512], mid2[41];
    gr_paths conf;
    gr_merge_kind kind;
    tg_wt(base, "M", wm);
    CHECK(t, gitrepo_worktree(r, "M", wm, &created, &e) == 0);
    CHECK(t, tg_commit_file(r, wm, "M", "M.txt", "m\n", NULL, mid2) == GR_COMMITTED);
    tg_write(ws, "M.txt", "in the way\n");
    CHECK(t, gitrepo_merge_to_main(r, "M", &tg_who, mid2, &kind, &conf, &e) == 1);
    gr_paths_free(&conf);
    /* staged, their file is still theirs: kept, and named */
    CHECK(t, tg_stage(ws, "M.txt", NULL) == 0);
    CHECK(t, gitrepo_refresh(r, NULL, &updated, &e) == -1);
    CHECK_STR(t, e.code, "EDIRTY");
    CHECK(t, strstr(e.msg, "M.txt") != NULL);
    CHECK_STR(t, tg_read(ws, "M.txt", buf, sizeof buf), "in the way\n");
    /* they take it away: the merge's file is written */
    CHECK(t, tg_unstage(ws, "M.txt") == 0);
    snprintf(p, sizeof p, "%s/M.txt", ws);
    CHECK(t, unlink(p) == 0);
    CHECK(t, gitrepo_refresh(r, NULL, &updated, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
    CHECK_STR(t, tg_read(ws, "M.txt", buf, sizeof buf), "m\n");
    CHECK(t, tg_merge_syncs(r, base, ws, "N", id) == 1);
    CHECK(t, tg_settle_durable(ws, 0));
  }
  /* a ref move that fails (a stale lock) while a checkout is pending (a file someone changed
   * stopped it): the marker goes back to planned, and recovery finishes that checkout */
  {
    char wk[512], kid[41];
    gr_paths conf;
    gr_merge_kind kind;
    tg_wt(base, "K", wk);
    CHECK(t, gitrepo_worktree(r, "K", wk, &created, &e) == 0);
    CHECK(t, tg_commit_file(r, wk, "K", "K.txt", "k\n", NULL, kid) == GR_COMMITTED);
    tg_write(ws, "K.txt", "in the way\n");
    CHECK(t, gitrepo_merge_to_main(r, "K", &tg_who, kid, &kind, &conf, &e) == 1); /* merged, files stopped */
    gr_paths_free(&conf);
    snprintf(p, sizeof p, "%s/.git/refs/heads/main.lock", ws);
    FILE *lk = fopen(p, "w");
    if (lk) fclose(lk);
    char wl[512], lid[41];
    tg_wt(base, "L", wl);
    CHECK(t, gitrepo_worktree(r, "L", wl, &created, &e) == 0);
    CHECK(t, tg_commit_file(r, wl, "L", "L.txt", "l\n", NULL, lid) == GR_COMMITTED);
    tg_nsyncs = 0;
    tg_sync_log = 1;
    CHECK(t, gitrepo_merge_to_main(r, "L", &tg_who, lid, &kind, &conf, &e) == -1);
    tg_sync_log = 0;
    CHECK_STR(t, e.code, "ELOCKED");
    /* the marker put back synced, after the working tree's file system and main's index */
    CHECK(t, tg_settle_durable(ws, -1));
    CHECK(t, unlink(p) == 0);
    char mk[64];
    snprintf(mk, sizeof mk, "planned %s", kid);
    CHECK_STR(t, tg_main_mark(ws, buf, sizeof buf), mk);
    tg_write(ws, "K.txt", "k\n");
    CHECK(t, gitrepo_recover(r, &removed, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
    CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
  }
  /* logging off */
  gitrepo_close(r);
  r = NULL;
  snprintf(p, sizeof p, "git -C '%s' config core.logAllRefUpdates false", ws);
  CHECK(t, system(p) == 0);
  CHECK(t, gitrepo_open(ws, &r, &e) == 0);
  if (r == NULL) goto done;
  CHECK(t, gitrepo_recover(r, &removed, &e) == 0);
  CHECK(t, tg_merge_syncs(r, base, ws, "H", id) == 1);
  CHECK(t, tg_merge_syncs(r, base, ws, "I", id) == 1);
  CHECK(t, gitrepo_check(r, &e) == 0);
done:
  git_libgit2_shutdown();
  gitrepo_close(r);
  tg_rmtree(base);
}

/* The limits of merges that skip their sync. One in 1,024 syncs and settles durably again,
 * keeping the reflog chain a power cut is read back through short. And a merge whose move
 * wrote no reflog entry (logging turned off after this process read the config, before
 * libgit2 first did) syncs its marker right after the move, and every later one before it. */
TEST(test_gitrepo_main_mark_chain) {
  char base[] = "/tmp/orket-git-XXXXXX", ws[512], id[41], p[700], name[32], wt[512], hex[41];
  gr_err e;
  gr_paths conf;
  gr_merge_kind kind;
  gitrepo *r = tg_setup(t, base, ws);
  if (r == NULL) return;
  git_libgit2_init();
  /* a thousand merges make and remove some five thousand files: on ext4 the allocator then
   * searches past every inode freed in the last half minute for each new one, unless the
   * directory is marked as the top of a hierarchy (spread over block groups); where the mark
   * is refused nothing changes */
  snprintf(p, sizeof p, "chattr +T '%s' 2>/dev/null", base);
  if (system(p) != 0) { /* not ext4, or not allowed: slower only */ }
  CHECK(t, tg_merge_syncs(r, base, ws, "A", id) == 1);
  CHECK(t, tg_settle_durable(ws, 0));
  /* one card's branch merged again and again: each a fast-forward of one new file (the
   * syncs counted, not made: libgit2's own off meanwhile) */
  tg_sync_skip = 1;
  git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 0);
  tg_wt(base, "A", wt);
  snprintf(tg_ref_path, sizeof tg_ref_path, "%s/.git/refs/heads/main", ws);
  snprintf(p, sizeof p, "%s/.git", ws);
  int skipped = 0, synced_at = 0;
  for (int i = 1; i <= 1025 && synced_at == 0; i++) {
    snprintf(name, sizeof name, "n%d.txt", i);
    char *one[] = {name};
    gr_paths only = {one, 1};
    gr_commit_kind ck = GR_CLEAN;
    tg_write(wt, name, "n\n");
    if (gitrepo_commit(r, "A", &tg_who, "work", NULL, &only, id, &ck, NULL, &e) != 0 || ck != GR_COMMITTED ||
        gitrepo_head(r, "main", tg_ref_before, &e) != 0)
      break;
    tg_nsyncs = 0;
    tg_sync_log = 1;
    int rc = gitrepo_merge_to_main(r, "A", &tg_who, id, &kind, &conf, &e);
    tg_sync_log = 0;
    gr_paths_free(&conf);
    if (rc != 0) break;
    if (tg_synced(p, "orket-checkout-pending", 1)) synced_at = i;
    else skipped++;
  }
  tg_sync_skip = 0;
  git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
  CHECK(t, skipped == 1024);
  CHECK(t, synced_at == 1025);
  CHECK(t, tg_settle_durable(ws, 0));

  /* logging turned off behind a fresh handle's back */
  gitrepo_close(r);
  r = NULL;
  CHECK(t, gitrepo_open(ws, &r, &e) == 0);
  if (r == NULL) goto done;
  snprintf(p, sizeof p, "git -C '%s' config core.logAllRefUpdates false", ws);
  CHECK(t, system(p) == 0);
  CHECK(t, tg_merge_syncs(r, base, ws, "B", id) == 1); /* the first of the process: synced */
  struct stat before, after;
  snprintf(p, sizeof p, "%s/.git/logs/refs/heads/main", ws);
  CHECK(t, stat(p, &before) == 0);
  CHECK(t, tg_merge_syncs(r, base, ws, "C", id) == 0); /* counted on an entry... */
  CHECK(t, stat(p, &after) == 0 && after.st_size == before.st_size); /* ...never written */
  snprintf(p, sizeof p, "%s/.git", ws);
  CHECK(t, tg_synced(p, "orket-checkout-pending", 0) != 0); /* so synced after the move */
  CHECK(t, gitrepo_head(r, "main", hex, &e) == 0 && strcmp(hex, id) == 0);
  CHECK(t, tg_merge_syncs(r, base, ws, "D", id) == 1); /* and from then on before it */
  CHECK(t, gitrepo_check(r, &e) == 0 || !fprintf(stderr, "    %s\n", e.msg));
done:
  git_libgit2_shutdown();
  gitrepo_close(r);
  tg_rmtree(base);
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

/* Pushes to a bare repository made with libgit2: a branch lands as the same name, a
 * rewritten one needs force (EREJECTED otherwise), a missing branch, remote or URL fails by
 * code, and nothing is left open (ASan). */
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
  git_repository_free(remote);
  git_libgit2_shutdown();
  gitrepo_close(r);
  tg_rmtree(base);
}
