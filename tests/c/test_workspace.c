/* test_workspace.c: the workspace's mount checks: the mount-id helper agrees with itself
 * across sources, and a bind mount placed inside the root (which keeps st_dev) is refused by
 * every operation under both openat2 and the forced walk. Uses mount(2), so needs root. */
#define _GNU_SOURCE
#include "check.h"
#include "tests.h"
#include "workspace.h"
#include "gitrepo.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static int tw_write_file(const char *path, const char *data) {
  FILE *f = fopen(path, "w");
  if (f == NULL) return -1;
  fputs(data, f);
  return fclose(f);
}

/* The whole content of path into buf (NUL-terminated), or "" when it cannot be read. */
static const char *tw_slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  buf[0] = '\0';
  if (f == NULL) return buf;
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void tw_rmtree(const char *dir) {
  char cmd[WS_PATH_MAX + 32];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "    could not remove %s\n", dir);
}

TEST(test_workspace_mount_id) {
  char base[] = "/tmp/orket-wsmid-XXXXXX";
  CHECK(t, mkdtemp(base) != NULL);
  char sub[sizeof base + 8];
  snprintf(sub, sizeof sub, "%s/sub", base);
  CHECK(t, mkdir(sub, 0755) == 0);
  int rfd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int sfd = open(sub, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int pfd = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
  CHECK(t, rfd >= 0 && sfd >= 0);

  uint64_t r_statx = 0, s_statx = 0, r_fdinfo = 0, s_fdinfo = 0, r_dev = 0, s_dev = 0, p_id = 0;
  int have_statx = ws_mount_id(rfd, WS_MNT_STATX, &r_statx) == 0;
  int have_fdinfo = ws_mount_id(rfd, WS_MNT_FDINFO, &r_fdinfo) == 0;
  printf("  mount ids here: statx %s, /proc/self/fdinfo %s\n", have_statx ? "yes" : "no",
         have_fdinfo ? "yes" : "no");
  if (have_statx) {
    CHECK(t, ws_mount_id(sfd, WS_MNT_STATX, &s_statx) == 0);
    CHECK(t, r_statx == s_statx); /* the root and a subdirectory are on one mount */
  }
  if (have_fdinfo) {
    CHECK(t, ws_mount_id(sfd, WS_MNT_FDINFO, &s_fdinfo) == 0);
    CHECK(t, r_fdinfo == s_fdinfo);
  }
  if (have_statx && have_fdinfo) CHECK(t, r_statx == r_fdinfo); /* one id, two ways to ask */
  CHECK(t, ws_mount_id(rfd, WS_MNT_DEV, &r_dev) == 0 && ws_mount_id(sfd, WS_MNT_DEV, &s_dev) == 0);
  CHECK(t, r_dev == s_dev);
  /* /proc is its own mount: the helper must tell it apart from the temporary directory */
  if (pfd >= 0 && have_statx) {
    CHECK(t, ws_mount_id(pfd, WS_MNT_STATX, &p_id) == 0);
    CHECK(t, p_id != r_statx);
  }
  if (pfd >= 0 && have_fdinfo) {
    CHECK(t, ws_mount_id(pfd, WS_MNT_FDINFO, &p_id) == 0);
    CHECK(t, p_id != r_fdinfo);
  }
  /* a bad descriptor is an error, not an id */
  CHECK(t, ws_mount_id(-1, WS_MNT_STATX, &p_id) == -1);
  CHECK(t, ws_mount_id(-1, WS_MNT_DEV, &p_id) == -1);

  /* ws_open keeps the best source and the root's id from it */
  ws w;
  ws_err e;
  CHECK(t, ws_open(&w, base, WS_RESOLVE_WALK, &e) == 0);
  CHECK(t, w.mnt_src == (have_statx ? WS_MNT_STATX : have_fdinfo ? WS_MNT_FDINFO : WS_MNT_DEV));
  CHECK(t, w.mnt_id == (have_statx ? r_statx : have_fdinfo ? r_fdinfo : r_dev));
  if (have_fdinfo) {
    CHECK(t, ws_use_mount_source(&w, WS_MNT_FDINFO, &e) == 0);
    CHECK(t, w.mnt_src == WS_MNT_FDINFO && w.mnt_id == r_fdinfo);
  }
  ws_close(&w);
  CHECK(t, ws_use_mount_source(&w, WS_MNT_DEV, &e) == -1); /* closed */
  CHECK_STR(t, e.code, "EINVAL");

  if (pfd >= 0) close(pfd);
  close(sfd);
  close(rfd);
  tw_rmtree(base);
}

/* One refusal: r must be -1 with EPERM and a message about the mount point. */
static void tw_refused(check_ctx *t, const char *label, int r, const ws_err *e) {
  if (r == 0 || e->code == NULL || strcmp(e->code, "EPERM") != 0 ||
      (strstr(e->msg, "mount point") == NULL)) {
    fprintf(stderr, "    %s: expected an EPERM mount-point refusal, got %s (%s)\n", label,
            r == 0 ? "success" : e->code, r == 0 ? "" : e->msg);
    t->failures++;
  }
}

typedef struct tw_setup {
  char base[64], outside[96], outside_file[96], root[96];
} tw_setup;

/* Runs every operation through the mounts of s with the workspace opened in mode and taking
 * mount ids from src (0: what ws_open chose). */
static void tw_through_mounts(check_ctx *t, const tw_setup *s, ws_resolve_mode mode,
                              ws_mnt_source src, const char *name) {
  ws w;
  ws_err e;
  if (ws_open(&w, s->root, mode, &e) != 0) {
    printf("  (%s: %s)\n", name, e.msg);
    return;
  }
  if (src != 0 && ws_use_mount_source(&w, src, &e) != 0) {
    printf("  (%s: %s)\n", name, e.msg);
    ws_close(&w);
    return;
  }
  printf("  bind mounts, %s\n", name);
  char label[128], buf[256], path[160];
  char *data;
  size_t n;
  uint64_t size;
  ws_entry *ents;
  int trunc;
  ws_stat st;
#define L(what) (snprintf(label, sizeof label, "%s: %s", name, what), label)

  /* sanity: the workspace itself works, so the refusals below mean something */
  CHECK(t, ws_read(&w, "plain.txt", 9, 0, 100, &data, &n, &size, &e) == 0 && n == 5);
  if (data) free(data);

  /* a bind-mounted directory, at the top and one level down */
  tw_refused(t, L("read mnt/secret.txt"), ws_read(&w, "mnt/secret.txt", 14, 0, 100, &data, &n, &size, &e), &e);
  if (data) free(data);
  tw_refused(t, L("read a/mnt/secret.txt"), ws_read(&w, "a/mnt/secret.txt", 16, 0, 100, &data, &n, &size, &e), &e);
  if (data) free(data);
  tw_refused(t, L("write mnt/new.txt"), ws_write(&w, "mnt/new.txt", 11, "x", 1, &e), &e);
  snprintf(path, sizeof path, "%s/new.txt", s->outside);
  CHECK(t, access(path, F_OK) != 0);
  tw_refused(t, L("append mnt/secret.txt"), ws_append(&w, "mnt/secret.txt", 14, "x", 1, &e), &e);
  tw_refused(t, L("list mnt"), ws_list(&w, "mnt", 3, &ents, &n, &trunc, &e), &e);
  free(ents);
  tw_refused(t, L("list mnt/sub"), ws_list(&w, "mnt/sub", 7, &ents, &n, &trunc, &e), &e);
  free(ents);
  tw_refused(t, L("list a/mnt"), ws_list(&w, "a/mnt", 5, &ents, &n, &trunc, &e), &e);
  free(ents);
  tw_refused(t, L("stat mnt/secret.txt"), ws_stat_path(&w, "mnt/secret.txt", 14, &st, &e), &e);
  tw_refused(t, L("stat mnt"), ws_stat_path(&w, "mnt", 3, &st, &e), &e);
  tw_refused(t, L("delete mnt/secret.txt"), ws_delete(&w, "mnt/secret.txt", 14, &e), &e);
  tw_refused(t, L("delete mnt"), ws_delete(&w, "mnt", 3, &e), &e);
  tw_refused(t, L("move mnt/secret.txt out"), ws_move(&w, "mnt/secret.txt", 14, "stolen.txt", 10, &e), &e);
  tw_refused(t, L("move plain.txt in"), ws_move(&w, "plain.txt", 9, "mnt/plain.txt", 13, &e), &e);
  tw_refused(t, L("move mnt"), ws_move(&w, "mnt", 3, "m2", 2, &e), &e);
  tw_refused(t, L("mkdir mnt/d"), ws_mkdir(&w, "mnt/d", 5, &e), &e);
  tw_refused(t, L("mkdir mnt"), ws_mkdir(&w, "mnt", 3, &e), &e);
  snprintf(path, sizeof path, "%s/secret.txt", s->outside);
  CHECK_STR(t, tw_slurp(path, buf, sizeof buf), "secret");

  /* a bind-mounted file: the final component itself is the mount */
  tw_refused(t, L("read fmnt"), ws_read(&w, "fmnt", 4, 0, 100, &data, &n, &size, &e), &e);
  if (data) free(data);
  tw_refused(t, L("write fmnt"), ws_write(&w, "fmnt", 4, "x", 1, &e), &e);
  tw_refused(t, L("append fmnt"), ws_append(&w, "fmnt", 4, "x", 1, &e), &e);
  tw_refused(t, L("stat fmnt"), ws_stat_path(&w, "fmnt", 4, &st, &e), &e);
  tw_refused(t, L("delete fmnt"), ws_delete(&w, "fmnt", 4, &e), &e);
  tw_refused(t, L("move fmnt"), ws_move(&w, "fmnt", 4, "y", 1, &e), &e);
  CHECK_STR(t, tw_slurp(s->outside_file, buf, sizeof buf), "outside");

  /* listing the root names the mount points but shows nothing from beyond them */
  CHECK(t, ws_list(&w, ".", 1, &ents, &n, &trunc, &e) == 0);
  int seen = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(ents[i].name, "mnt") == 0 || strcmp(ents[i].name, "fmnt") == 0) {
      seen++;
      CHECK(t, ents[i].st.type == WS_OTHER && ents[i].st.size == 0);
    }
  }
  CHECK(t, seen == 2);
  free(ents);
  /* the plain file is untouched by the refused move */
  CHECK(t, ws_stat_path(&w, "plain.txt", 9, &st, &e) == 0 && st.type == WS_FILE);
#undef L
  ws_close(&w);
}

TEST(test_workspace_bind_mount) {
  tw_setup s;
  snprintf(s.base, sizeof s.base, "/tmp/orket-wsbind-XXXXXX");
  if (mkdtemp(s.base) == NULL) {
    CHECK(t, 0);
    return;
  }
  snprintf(s.outside, sizeof s.outside, "%s/outside", s.base);
  snprintf(s.outside_file, sizeof s.outside_file, "%s/outside_file", s.base);
  snprintf(s.root, sizeof s.root, "%s/ws", s.base);
  char p[160];
  CHECK(t, mkdir(s.outside, 0755) == 0 && mkdir(s.root, 0755) == 0);
  snprintf(p, sizeof p, "%s/sub", s.outside);
  CHECK(t, mkdir(p, 0755) == 0);
  snprintf(p, sizeof p, "%s/secret.txt", s.outside);
  CHECK(t, tw_write_file(p, "secret") == 0);
  CHECK(t, tw_write_file(s.outside_file, "outside") == 0);
  snprintf(p, sizeof p, "%s/plain.txt", s.root);
  CHECK(t, tw_write_file(p, "plain") == 0);
  char mnt[128], amnt[128], fmnt[128];
  snprintf(mnt, sizeof mnt, "%s/mnt", s.root);
  snprintf(p, sizeof p, "%s/a", s.root);
  snprintf(amnt, sizeof amnt, "%s/a/mnt", s.root);
  snprintf(fmnt, sizeof fmnt, "%s/fmnt", s.root);
  CHECK(t, mkdir(mnt, 0755) == 0 && mkdir(p, 0755) == 0 && mkdir(amnt, 0755) == 0);
  CHECK(t, tw_write_file(fmnt, "") == 0);

  /* A private mount namespace when we may have one, so a crash leaves no mount behind. */
  if (unshare(CLONE_NEWNS) == 0) mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  int m1 = mount(s.outside, mnt, NULL, MS_BIND, NULL);
  int err = errno;
  if (m1 != 0) {
    SKIP(t, "cannot mount (mount --bind %s: %s; needs root with CAP_SYS_ADMIN)", mnt, strerror(err));
    tw_rmtree(s.base);
    return;
  }
  int m2 = mount(s.outside, amnt, NULL, MS_BIND, NULL);
  int m3 = mount(s.outside_file, fmnt, NULL, MS_BIND, NULL);
  CHECK(t, m2 == 0 && m3 == 0);
  /* the point of the test: a bind mount of the same filesystem keeps st_dev */
  struct stat a, b;
  CHECK(t, stat(s.root, &a) == 0 && stat(mnt, &b) == 0 && a.st_dev == b.st_dev);

  if (m2 == 0 && m3 == 0) {
    tw_through_mounts(t, &s, WS_RESOLVE_OPENAT2, 0, "openat2");
    tw_through_mounts(t, &s, WS_RESOLVE_OPENAT2, WS_MNT_FDINFO, "openat2 + fdinfo");
    tw_through_mounts(t, &s, WS_RESOLVE_WALK, WS_MNT_STATX, "walk + statx");
    tw_through_mounts(t, &s, WS_RESOLVE_WALK, WS_MNT_FDINFO, "walk + fdinfo");
  }

  /* unmount whatever was mounted, whatever happened above */
  if (m3 == 0 && umount2(fmnt, MNT_DETACH) != 0) CHECK(t, 0);
  if (m2 == 0 && umount2(amnt, MNT_DETACH) != 0) CHECK(t, 0);
  if (umount2(mnt, MNT_DETACH) != 0) CHECK(t, 0);
  snprintf(p, sizeof p, "%s/secret.txt", s.outside);
  CHECK(t, access(p, F_OK) == 0);
  tw_rmtree(s.base);
}

/* Out of descriptors while the fdinfo source reads a mount id: an error that says so, never
 * "not supported" (ENOSYS) and never a listing with entries silently missing. */
TEST(test_workspace_fd_exhaustion) {
  char base[] = "/tmp/orket-wsemfile-XXXXXX";
  CHECK(t, mkdtemp(base) != NULL);
  char p[sizeof base + 16];
  for (int i = 0; i < 5; i++) {
    snprintf(p, sizeof p, "%s/f%d", base, i);
    CHECK(t, tw_write_file(p, "x") == 0);
  }
  snprintf(p, sizeof p, "%s/d", base);
  CHECK(t, mkdir(p, 0755) == 0);
  snprintf(p, sizeof p, "%s/d/x", base);
  CHECK(t, tw_write_file(p, "x") == 0);
  ws w;
  ws_err e;
  CHECK(t, ws_open(&w, base, WS_RESOLVE_WALK, &e) == 0);
  if (ws_use_mount_source(&w, WS_MNT_FDINFO, &e) != 0) {
    ws_close(&w);
    tw_rmtree(base);
    SKIP(t, "no /proc/self/fdinfo mount ids here (%s)", e.msg);
    return;
  }
  struct rlimit saved;
  CHECK(t, getrlimit(RLIMIT_NOFILE, &saved) == 0);
  int lowest = dup(0); /* the lowest free descriptor */
  close(lowest);
  /* a list needs the directory, the entry's O_PATH descriptor and the fdinfo file: allow 2 */
  struct rlimit tight = {(rlim_t)(lowest + 2), saved.rlim_max};
  CHECK(t, setrlimit(RLIMIT_NOFILE, &tight) == 0);
  ws_entry *v = NULL;
  size_t n = 0;
  int truncated = 0;
  int r = ws_list(&w, ".", 1, &v, &n, &truncated, &e);
  int listed_all = r == 0 && n == 6;
  int refused = r == -1 && strcmp(e.code, "ENOSYS") != 0;
  if (r == 0) free(v);
  char *data = NULL;
  size_t len = 0;
  uint64_t size = 0;
  tight.rlim_cur = (rlim_t)(lowest + 1);
  CHECK(t, setrlimit(RLIMIT_NOFILE, &tight) == 0);
  int rr = ws_read(&w, "d/x", 3, 0, 10, &data, &len, &size, &e);
  char rcode[sizeof e.code];
  snprintf(rcode, sizeof rcode, "%s", rr == 0 ? "" : e.code);
  char rmsg[sizeof e.msg];
  snprintf(rmsg, sizeof rmsg, "%s", rr == 0 ? "" : e.msg);
  if (rr == 0) free(data);
  CHECK(t, setrlimit(RLIMIT_NOFILE, &saved) == 0);
  CHECK(t, listed_all || refused);
  CHECK(t, rr == -1);
  CHECK(t, strstr(rmsg, "not implemented") == NULL);
  CHECK(t, strcmp(rcode, "ENOSYS") != 0);
  ws_close(&w);
  tw_rmtree(base);
}

/* Agents never write into git's own files: the main repository's .git/ (config, hooks), the
 * .git file of a card's linked worktree (a real one, made by gitrepo), and a .git component
 * anywhere in any case; near misses stay ordinary paths. Both resolution modes. */
TEST(test_workspace_dotgit) {
  char base[] = "/tmp/orket-wsgit-XXXXXX";
  CHECK(t, mkdtemp(base) != NULL);
  char main_ws[sizeof base + 8], wt[sizeof base + 16], p[sizeof base + 64];
  snprintf(main_ws, sizeof main_ws, "%s/ws", base);
  snprintf(wt, sizeof wt, "%s/wt/C1", base);
  CHECK(t, mkdir(main_ws, 0755) == 0);
  snprintf(p, sizeof p, "%s/a.txt", main_ws);
  CHECK(t, tw_write_file(p, "a\n") == 0);
  gitrepo *r = NULL;
  gr_err ge;
  gr_sig who = {"orket", "orket@orket.invalid"};
  int created = 0;
  CHECK(t, gitrepo_init(main_ws, &who, &r, &created, &ge) == 0);
  CHECK(t, r && gitrepo_worktree(r, "C1", wt, &created, &ge) == 0);
  snprintf(p, sizeof p, "%s/.git/hooks", main_ws);
  mkdir(p, 0755);
  char cfg[4096], gitfile[4096];
  snprintf(p, sizeof p, "%s/.git/config", main_ws);
  tw_slurp(p, cfg, sizeof cfg);
  snprintf(p, sizeof p, "%s/.git", wt);
  tw_slurp(p, gitfile, sizeof gitfile);
  CHECK(t, strncmp(gitfile, "gitdir: ", 8) == 0);

  static const char *const refused[] = {".git/config", ".git/hooks/x", ".git/hooks", ".git", ".GIT/config",
                                        "sub/.git", "sub/.Git/hooks/x", "./.git/config", NULL};
  static const char *const allowed[] = {".gitignore", ".github/x", "a.git", "git/x", "orket.lua", "tools", "roles/x", NULL};
  for (int mode = WS_RESOLVE_OPENAT2; mode <= WS_RESOLVE_WALK; mode++) {
    const char *roots[] = {main_ws, wt};
    for (int k = 0; k < 2; k++) {
      ws w;
      ws_err e;
      if (ws_open(&w, roots[k], (ws_resolve_mode)mode, &e) != 0) {
        if (mode == WS_RESOLVE_OPENAT2) continue; /* no openat2 here: the walk covers it */
        CHECK(t, 0);
        continue;
      }
      for (const char *const *q = refused; *q; q++) {
        size_t n = strlen(*q);
        CHECK(t, ws_path_protected(*q + (strncmp(*q, "./", 2) == 0 ? 2 : 0)));
        CHECK(t, ws_write(&w, *q, n, "pwned", 5, &e) == -1 && strcmp(e.code, "EPERM") == 0);
        CHECK(t, ws_append(&w, *q, n, "pwned", 5, &e) == -1 && strcmp(e.code, "EPERM") == 0);
        CHECK(t, ws_mkdir(&w, *q, n, &e) == -1 && strcmp(e.code, "EPERM") == 0);
        CHECK(t, ws_delete(&w, *q, n, &e) == -1 && strcmp(e.code, "EPERM") == 0);
        CHECK(t, ws_move(&w, "a.txt", 5, *q, n, &e) == -1 && strcmp(e.code, "EPERM") == 0);
      }
      CHECK(t, ws_move(&w, ".git", 4, "stolen", 6, &e) == -1 && strcmp(e.code, "EPERM") == 0);
      for (const char *const *q = allowed; *q; q++) {
        CHECK(t, !ws_path_protected(*q));
        if (strchr(*q, '/') == NULL) CHECK(t, ws_write(&w, *q, strlen(*q), "ok", 2, &e) == 0);
      }
      ws_close(&w);
    }
  }
  char after[4096];
  snprintf(p, sizeof p, "%s/.git/config", main_ws);
  CHECK_STR(t, tw_slurp(p, after, sizeof after), cfg);
  snprintf(p, sizeof p, "%s/.git", wt);
  CHECK_STR(t, tw_slurp(p, after, sizeof after), gitfile);
  snprintf(p, sizeof p, "%s/.git/hooks/x", main_ws);
  CHECK(t, access(p, F_OK) != 0);
  CHECK(t, r && gitrepo_check(r, &ge) == 0);
  gitrepo_close(r);
  tw_rmtree(base);
}
