/* test_pack.c: gitrepo_pack (core/gitrepo/pack.c): loose objects packed and removed only once
 * the new pack holds them; older packs consolidated (never one kept by .keep); a reader opened
 * before the pack still finds every object; a process killed anywhere in a pack, and two
 * packers at once, never lose an object. The repositories are made with git(1). */
#include <dirent.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "check.h"
#include "gitrepo.h"
#include "tests.h"

typedef struct tp_ids {
  char (*v)[41];
  size_t n, cap;
} tp_ids;

static int tp_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int tp_sh(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  return system(cmd);
}

/* A repository at base/ws on main with one commit; NULL when it could not be made */
static const char *tp_setup(char *base) {
  static char ws[600];
  if (mkdtemp(base) == NULL) return NULL;
  snprintf(ws, sizeof ws, "%s/ws", base);
  if (tp_sh("cd '%s' && git init -q -b main ws && cd ws && echo hi > README && git add README && "
            "git -c user.name=t -c user.email=t@t commit -qm first",
            base) != 0)
    return NULL;
  return ws;
}

/* n new loose blobs, their content tagged by tag (unreachable, as a card's objects are until
 * committed: packed all the same), written by libgit2 as Orket's are */
static int tp_blobs(const char *ws, const char *tag, int n) {
  git_repository *repo = NULL;
  int rc = git_repository_open(&repo, ws);
  for (int i = 0; rc == 0 && i < n; i++) {
    char data[96];
    git_oid id;
    int k = snprintf(data, sizeof data, "%s %d\n", tag, i);
    rc = git_blob_create_from_buffer(&id, repo, data, (size_t)k);
  }
  git_repository_free(repo);
  return rc;
}

/* every loose object of ws's repository appended to ids; returns how many */
static size_t tp_loose(const char *ws, tp_ids *ids) {
  size_t found = 0;
  for (unsigned fan = 0; fan < 256; fan++) {
    char dir[700];
    snprintf(dir, sizeof dir, "%s/.git/objects/%02x", ws, fan);
    DIR *d = opendir(dir);
    if (d == NULL) continue;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      if (strlen(de->d_name) != 38) continue;
      found++;
      if (ids == NULL) continue;
      if (ids->n == ids->cap) {
        ids->cap = ids->cap ? ids->cap * 2 : 256;
        ids->v = realloc(ids->v, ids->cap * sizeof *ids->v);
      }
      snprintf(ids->v[ids->n], 41, "%02x", fan);
      memcpy(ids->v[ids->n++] + 2, de->d_name, 39); /* 38 digits and the NUL, as checked */
    }
    closedir(d);
  }
  return found;
}

static size_t tp_packs(const char *ws) {
  char dir[700];
  size_t n = 0;
  snprintf(dir, sizeof dir, "%s/.git/objects/pack", ws);
  DIR *d = opendir(dir);
  if (d == NULL) return 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    size_t k = strlen(de->d_name);
    if (k > 5 && strcmp(de->d_name + k - 5, ".pack") == 0) n++;
  }
  closedir(d);
  return n;
}

/* how many of ids odb cannot read (each read whole: the pack's data, not only its index) */
static size_t tp_unreadable(git_odb *odb, const tp_ids *ids) {
  size_t bad = 0;
  for (size_t i = 0; i < ids->n; i++) {
    git_oid id;
    git_odb_object *o = NULL;
    if (git_oid_fromstr(&id, ids->v[i]) < 0 || git_odb_read(&o, odb, &id) < 0) bad++;
    git_odb_object_free(o);
  }
  return bad;
}

/* the same, on a repository handle opened now */
static size_t tp_unreadable_fresh(const char *ws, const tp_ids *ids) {
  git_repository *repo = NULL;
  git_odb *odb = NULL;
  if (git_repository_open(&repo, ws) < 0 || git_repository_odb(&odb, repo) < 0) {
    git_repository_free(repo);
    return ids->n;
  }
  size_t bad = tp_unreadable(odb, ids);
  git_odb_free(odb);
  git_repository_free(repo);
  return bad;
}

TEST(test_pack_loose_and_consolidate) {
  char base[] = "/tmp/orket-pack-XXXXXX";
  const char *ws = tp_setup(base);
  gitrepo *r = NULL;
  git_repository *reader = NULL;
  git_odb *odb = NULL;
  tp_ids ids = {0};
  gr_err e;
  gr_pack_result res;
  gr_pack_count c;
  git_libgit2_init();
  CHECK(t, ws != NULL);
  if (ws == NULL) goto out;
  CHECK(t, tp_blobs(ws, "a", 2000) == 0);
  CHECK(t, gitrepo_open(ws, &r, &e) == 0);
  if (r == NULL) goto out;
  size_t n = tp_loose(ws, &ids);
  CHECK(t, n >= 2003); /* the blobs, the commit, its tree, README */

  /* git's estimate: objects/17 times 256 */
  char d17[700];
  snprintf(d17, sizeof d17, "%s/.git/objects/17", ws);
  size_t in17 = 0;
  for (size_t i = 0; i < ids.n; i++) in17 += strncmp(ids.v[i], "17", 2) == 0;
  CHECK(t, gitrepo_pack_count(r, &c, &e) == 0);
  CHECK(t, c.loose == in17 * 256 && c.packs == 0);

  /* a reader opened before the pack, having already looked (its pack list read, empty) */
  CHECK(t, git_repository_open(&reader, ws) == 0 && git_repository_odb(&odb, reader) == 0);
  CHECK(t, odb != NULL && tp_unreadable(odb, &ids) == 0);

  /* past its deadline the writing stops and nothing is removed */
  int rc = gitrepo_pack(r, 0, 100000, 1, &res, &e);
  if (rc != 0) {
    CHECK_STR(t, e.code, "ETIMEDOUT");
    CHECK(t, tp_loose(ws, NULL) == n);
  }

  /* max_objects bounds a pass: the rest stay loose for the next */
  CHECK(t, gitrepo_pack(r, 0, 100, 0, &res, &e) == 0);
  CHECK(t, res.loose == 100 && res.packed == 100 && res.removed == 100 && res.name[0] != '\0');
  CHECK(t, tp_loose(ws, NULL) == n - 100);

  CHECK(t, gitrepo_pack(r, 0, 100000, 0, &res, &e) == 0);
  CHECK(t, res.loose == n - 100 && res.removed == n - 100 && res.unread == 0 && res.packs_gone == 0);
  CHECK(t, tp_loose(ws, NULL) == 0);
  CHECK(t, tp_packs(ws) == 2);
  /* the stale reader finds every object (libgit2 lists the packs again on a miss) */
  CHECK(t, odb != NULL && tp_unreadable(odb, &ids) == 0);
  CHECK(t, tp_unreadable_fresh(ws, &ids) == 0);
  CHECK(t, gitrepo_check(r, &e) == 0);
  CHECK(t, tp_sh("git -C '%s' fsck --full --no-dangling --no-progress >/dev/null", ws) == 0);

  /* nothing loose: nothing written */
  CHECK(t, gitrepo_pack(r, 0, 100000, 0, &res, &e) == 0);
  CHECK(t, res.loose == 0 && res.packed == 0 && res.name[0] == '\0');

  /* two more packs, one of them kept by a .keep: consolidated into one, the kept one left */
  CHECK(t, tp_blobs(ws, "b", 50) == 0);
  tp_loose(ws, &ids);
  CHECK(t, gitrepo_pack(r, 0, 100000, 0, &res, &e) == 0);
  char keep[800];
  snprintf(keep, sizeof keep, "%s/.git/objects/pack/pack-%s.keep", ws, res.name);
  CHECK(t, tp_sh("touch '%s'", keep) == 0);
  CHECK(t, tp_blobs(ws, "c", 50) == 0);
  tp_loose(ws, &ids);
  CHECK(t, gitrepo_pack_count(r, &c, &e) == 0 && c.packs == 2); /* the kept one not counted */
  CHECK(t, gitrepo_pack(r, 1, 100000, 0, &res, &e) == 0);
  CHECK(t, res.removed == 50 && res.packs_gone == 2);
  CHECK(t, tp_packs(ws) == 2); /* the new one and the kept one */
  CHECK(t, access(keep, F_OK) == 0);
  CHECK(t, odb != NULL && tp_unreadable(odb, &ids) == 0);
  CHECK(t, tp_unreadable_fresh(ws, &ids) == 0);
  CHECK(t, gitrepo_check(r, &e) == 0);
  CHECK(t, tp_sh("git -C '%s' fsck --full --no-dangling --no-progress >/dev/null", ws) == 0);
  /* one pack left that may be rewritten: nothing to do */
  CHECK(t, gitrepo_pack(r, 1, 100000, 0, &res, &e) == 0);
  CHECK(t, res.name[0] == '\0');
  CHECK(t, gitrepo_pack(r, 0, 0, 0, &res, &e) == -1 && strcmp(e.code, "EINVAL") == 0);
out:
  git_odb_free(odb);
  git_repository_free(reader);
  gitrepo_close(r);
  free(ids.v);
  tp_sh("rm -rf '%s'", base);
  git_libgit2_shutdown();
}

static double tp_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* a child that packs ws (all: consolidating) and exits 0 when it could */
static pid_t tp_packer(const char *ws, int all) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  gitrepo *r = NULL;
  gr_err e;
  gr_pack_result res;
  int rc = gitrepo_open(ws, &r, &e) == 0 && gitrepo_pack(r, all, 100000, 0, &res, &e) == 0;
  gitrepo_close(r);
  _exit(rc ? 0 : 1);
}

TEST(test_pack_killed_anywhere) {
  char base[] = "/tmp/orket-pack-XXXXXX";
  const char *ws = tp_setup(base);
  tp_ids ids = {0};
  git_libgit2_init();
  CHECK(t, ws != NULL);
  if (ws == NULL) goto out;
  /* how long one pass takes here, to spread the kills across it */
  CHECK(t, tp_blobs(ws, "first", 1500) == 0);
  tp_loose(ws, &ids);
  double t0 = tp_now();
  int st = 0;
  pid_t pid = tp_packer(ws, 0);
  waitpid(pid, &st, 0);
  CHECK(t, WIFEXITED(st) && WEXITSTATUS(st) == 0);
  double took = tp_now() - t0;
  enum { KILLS = 16 };
  for (int k = 0; k < KILLS; k++) {
    char tag[32];
    snprintf(tag, sizeof tag, "k%d", k);
    CHECK(t, tp_blobs(ws, tag, 400) == 0);
    tp_loose(ws, &ids);
    pid = tp_packer(ws, k % 3 == 0); /* a consolidation every third time */
    /* 400 objects take less than the first 1,500: the later kills land on the consolidations */
    useconds_t at = (useconds_t)(took * 1e6 * k / KILLS);
    usleep(at);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    size_t bad = tp_unreadable_fresh(ws, &ids);
    if (bad) fprintf(stderr, "    killed after %u us: %zu objects lost\n", (unsigned)at, bad);
    CHECK(t, bad == 0);
  }
  /* a last pass whole: nothing loose, every object there, git agrees */
  pid = tp_packer(ws, 1);
  waitpid(pid, &st, 0);
  CHECK(t, WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CHECK(t, tp_loose(ws, NULL) == 0);
  CHECK(t, tp_unreadable_fresh(ws, &ids) == 0);
  CHECK(t, tp_sh("git -C '%s' fsck --full --no-dangling --no-progress >/dev/null", ws) == 0);
out:
  free(ids.v);
  tp_sh("rm -rf '%s'", base);
  git_libgit2_shutdown();
}

TEST(test_pack_two_packers) {
  char base[] = "/tmp/orket-pack-XXXXXX";
  const char *ws = tp_setup(base);
  tp_ids ids = {0};
  git_libgit2_init();
  CHECK(t, ws != NULL);
  if (ws == NULL) goto out;
  for (int round = 0; round < 6; round++) {
    /* a few packs and loose objects, then two consolidations (or a consolidation and a
     * loose pass) at once */
    for (int k = 0; k < 3; k++) {
      char tag[32];
      snprintf(tag, sizeof tag, "r%dk%d", round, k);
      CHECK(t, tp_blobs(ws, tag, 200) == 0);
      pid_t pid = tp_packer(ws, 0);
      int st = 0;
      waitpid(pid, &st, 0);
    }
    CHECK(t, tp_blobs(ws, "loose", 300 + round) == 0);
    tp_loose(ws, &ids);
    pid_t a = tp_packer(ws, 1), b = tp_packer(ws, round % 2);
    int sa = 0, sb = 0;
    waitpid(a, &sa, 0);
    waitpid(b, &sb, 0);
    CHECK(t, WIFEXITED(sa) && WIFEXITED(sb));
    CHECK(t, tp_unreadable_fresh(ws, &ids) == 0);
  }
  CHECK(t, tp_sh("git -C '%s' fsck --full --no-dangling --no-progress >/dev/null", ws) == 0);
out:
  free(ids.v);
  tp_sh("rm -rf '%s'", base);
  git_libgit2_shutdown();
}
