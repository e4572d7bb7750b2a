/* viewstate.c: main's view's state in the gitdir (view.c's invariant 2): the base the view
 * last held, its commit, the paths recorded as diverged, a person's move of main the view did
 * not follow; why the last refresh failed, and Orket's merge's intent (invariant 10), each in
 * a file beside it. Each file is replaced whole by a rename and never synced. */
#define _GNU_SOURCE
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GR_VIEW_STATE "orket-view"       /* in main's gitdir */
#define GR_VIEW_MAGIC "orket-view 1 "    /* then the base tree's hex id, a newline, the records */
#define GR_VIEW_MAGIC2 "orket-view 2 "   /* read only: as some unreleased builds wrote it, a line saying why after the id */
/* why the last refresh failed, beside the state (an older orket neither reads nor keeps it):
 * the base's hex id it was said at, a newline, the reason; gone once a refresh succeeds */
#define GR_VIEW_WHY_SUFFIX "-why"
/* records of the state no path can be (vw_read_record) */
#define GR_VIEW_COMMIT "/base "
/* right after the commit: the base is short of it, then the last base that was a commit's
 * tree, hex (gr_view_state.partial) */
#define GR_VIEW_PARTIAL "/partial "
#define GR_VIEW_MOVED "/moved "
#define GR_VIEW_MOVED_PATH "/moved-path " /* then a path that move left listed */
/* what Orket's merge is about to do (gr_view_intent), beside the state: main's commit it
 * merges onto (P) and the commit main moves to (M), hex, one line */
#define GR_VIEW_INTENT_SUFFIX "-intent"
#define GR_VIEW_STATE_MAX ((size_t)8 << 20)

static int vw_state_path(const gitrepo *r, char *buf, size_t cap, const char *suffix) {
  return (size_t)snprintf(buf, cap, "%s%s%s", r->git.repository_path(r->repo), GR_VIEW_STATE, suffix) < cap ? 0 : -1;
}

/* Reads why the last refresh failed into s->why, where it was said at s's base (a reason
 * left by a refresh an older orket then made succeed, at another base, is no reason). */
static void vw_read_why(const gitrepo *r, gr_view_state *s) {
  char p[PATH_MAX], buf[GIT_OID_HEXSZ + 1 + GR_VIEW_WHY], hex[GIT_OID_HEXSZ + 1];
  if (vw_state_path(r, p, sizeof p, GR_VIEW_WHY_SUFFIX) != 0) return;
  int fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof buf - 1) : -1;
  close(fd);
  if (n < GIT_OID_HEXSZ + 1 || buf[GIT_OID_HEXSZ] != '\n') return;
  buf[n] = '\0';
  r->git.oid_tostr(hex, sizeof hex, &s->base);
  if (memcmp(buf, hex, GIT_OID_HEXSZ) == 0)
    snprintf(s->why, sizeof s->why, "%.*s", (int)strcspn(buf + GIT_OID_HEXSZ + 1, "\n"), buf + GIT_OID_HEXSZ + 1);
}

/* One record of the state that no path can be (it starts with '/': every orket skips those
 * it does not know, and an older one writing the state drops them): GR_VIEW_COMMIT, the
 * base's commit; GR_VIEW_MOVED, a person's move of main the view did not follow, and
 * GR_VIEW_MOVED_PATH each path the refresh that found it listed. */
static void vw_read_record(const gitrepo *r, gr_view_state *s, const char *rec) {
  char a[GIT_OID_HEXSZ + 1] = {0}, b[GIT_OID_HEXSZ + 1] = {0};
  size_t cl = strlen(GR_VIEW_COMMIT), ml = strlen(GR_VIEW_MOVED);
  if (strncmp(rec, GR_VIEW_COMMIT, cl) == 0 && strlen(rec + cl) == GIT_OID_HEXSZ) {
    memcpy(a, rec + cl, GIT_OID_HEXSZ);
    s->has_commit = r->git.oid_fromstr(&s->commit, a) == 0;
  } else if (strncmp(rec, GR_VIEW_PARTIAL, strlen(GR_VIEW_PARTIAL)) == 0 &&
             strlen(rec + strlen(GR_VIEW_PARTIAL)) == GIT_OID_HEXSZ) {
    s->partial = r->git.oid_fromstr(&s->partial_from, rec + strlen(GR_VIEW_PARTIAL)) == 0;
  } else if (strncmp(rec, GR_VIEW_MOVED, ml) == 0 && strlen(rec + ml) == 2 * GIT_OID_HEXSZ + 1 &&
             rec[ml + GIT_OID_HEXSZ] == ' ') {
    memcpy(a, rec + ml, GIT_OID_HEXSZ);
    memcpy(b, rec + ml + GIT_OID_HEXSZ + 1, GIT_OID_HEXSZ);
    s->moved = r->git.oid_fromstr(&s->moved_from, a) == 0 && r->git.oid_fromstr(&s->moved_to, b) == 0;
  } else if (strncmp(rec, GR_VIEW_MOVED_PATH, strlen(GR_VIEW_MOVED_PATH)) == 0) {
    const char *path = rec + strlen(GR_VIEW_MOVED_PATH);
    /* appended, duplicates dropped once the whole state is read; one not kept (invalid, out of
     * memory) only narrows the paths the move is named by, and with none kept the older rule
     * applies (named while any path is listed) */
    if (*path && gitrepo_path_valid(path) && s->moved_paths.v && (s->moved_paths.v[s->moved_paths.n] = strdup(path)) != NULL)
      s->moved_paths.n++; /* room made for every record (gr_view_state_read) */
  }
}

/* Empties s and opens the state for reading -> fd | -1 (a missing file: nothing recorded;
 * any other failure: s->unreadable), for both readers below. */
static int vw_state_open(const gitrepo *r, gr_view_state *s) {
  char p[PATH_MAX];
  *s = (gr_view_state){0};
  if (vw_state_path(r, p, sizeof p, "") != 0) return -1;
  int fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) s->unreadable = errno != ENOENT;
  return fd;
}

/* Reads the state (a missing or unreadable file: no base, nothing recorded). */
void gr_view_state_read(const gitrepo *r, gr_view_state *s) {
  int fd = vw_state_open(r, s);
  if (fd < 0) {
    vw_read_why(r, s); /* said at no base (gr_view_behind_why) */
    return;
  }
  struct stat st;
  char *buf = NULL;
  size_t n = 0;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= GR_VIEW_STATE_MAX &&
      (buf = malloc((size_t)st.st_size + 1)) != NULL) {
    ssize_t k;
    while (n < (size_t)st.st_size && (k = read(fd, buf + n, (size_t)st.st_size - n)) > 0) n += (size_t)k;
    buf[n] = '\0';
  }
  close(fd);
  size_t m = strlen(GR_VIEW_MAGIC);
  int v1 = buf && n >= m && memcmp(buf, GR_VIEW_MAGIC, m) == 0;
  if (buf && n >= m + GIT_OID_HEXSZ + 1 && (v1 || memcmp(buf, GR_VIEW_MAGIC2, m) == 0) && buf[m + GIT_OID_HEXSZ] == '\n') {
    char hex[GIT_OID_HEXSZ + 1];
    memcpy(hex, buf + m, GIT_OID_HEXSZ);
    hex[GIT_OID_HEXSZ] = '\0';
    static const git_oid zero;
    s->has_base = r->git.oid_fromstr(&s->base, hex) == 0 && !r->git.oid_equal(&s->base, &zero);
    size_t i = m + GIT_OID_HEXSZ + 1;
    const char *nl = v1 ? NULL : memchr(buf + i, '\n', n - i);
    if (nl) { /* why the view is behind, one line */
      size_t wl = (size_t)(nl - (buf + i));
      snprintf(s->why, sizeof s->why, "%.*s", (int)(wl < sizeof s->why ? wl : sizeof s->why - 1), buf + i);
      i += wl + 1;
    } else if (!v1) {
      i = n; /* cut short */
    }
    /* room for every path and move's path first: one array each, not grown per path (a
     * realloc may copy the whole array each time) */
    size_t np = 0, nm = 0, ml = strlen(GR_VIEW_MOVED_PATH);
    for (size_t j = i; s->has_base && j < n;) {
      size_t len = strnlen(buf + j, n - j);
      if (j + len >= n) break;
      if (len && buf[j] != '/') np++;
      else if (len > ml && strncmp(buf + j, GR_VIEW_MOVED_PATH, ml) == 0) nm++;
      j += len + 1;
    }
    if ((np && (s->diverged.v = malloc(np * sizeof *s->diverged.v)) == NULL) ||
        (nm && (s->moved_paths.v = malloc(nm * sizeof *s->moved_paths.v)) == NULL))
      np = 0; /* out of memory: no path read */
    /* then each diverged path, NUL-ended (a path may hold a newline); a record no path can
     * be (a "/commit" one some builds wrote) is skipped */
    for (; s->has_base && i < n;) {
      size_t len = strnlen(buf + i, n - i);
      if (i + len >= n) break; /* cut short: the rest is lost, as if never recorded */
      if (buf[i] == '/') vw_read_record(r, s, buf + i);
      else if (len && gitrepo_path_valid(buf + i)) {
        if (!np || (s->diverged.v[s->diverged.n] = strdup(buf + i)) == NULL) break;
        s->diverged.n++;
      }
      i += len + 1;
    }
  }
  free(buf);
  /* a path written twice (by hand) counts once: sorted and deduplicated once, not scanned for
   * at each path (quadratic in the listed paths) */
  gr_paths_uniq(&s->diverged);
  gr_paths_uniq(&s->moved_paths);
  s->unreadable = !s->has_base;
  if (!s->has_base) memset(&s->base, 0, sizeof s->base);
  vw_read_why(r, s); /* at s's base, the zero id where it has none */
}

void gr_view_state_free(gr_view_state *s) {
  gr_paths_free(&s->diverged);
  gr_paths_free(&s->moved_paths);
}

/* Reads the state's head alone: its base and the base's commit, which the writer puts
 * before the paths (vw_state_body), so that a merge's intent (gr_view_intent_from) does not
 * parse every listed path a second time. A state whose head does not say the commit (an
 * older writer put it after the paths, or another format) is read whole, and so is one over
 * GR_VIEW_STATE_MAX: one rule for both readers, such a state is unreadable (no base). */
void gr_view_state_head(const gitrepo *r, gr_view_state *s) {
  char buf[192], hex[GIT_OID_HEXSZ + 1]; /* the header, the commit's record and GR_VIEW_PARTIAL's */
  size_t m = strlen(GR_VIEW_MAGIC), cl = strlen(GR_VIEW_COMMIT), n = 0;
  int fd = vw_state_open(r, s);
  if (fd < 0) return;
  struct stat st;
  ssize_t k = 0;
  int reg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= GR_VIEW_STATE_MAX;
  while (reg && n < sizeof buf && (k = read(fd, buf + n, sizeof buf - n)) > 0) n += (size_t)k;
  close(fd);
  size_t h = m + GIT_OID_HEXSZ + 1; /* the header line's length */
  if (!reg || k < 0 || n < h || memcmp(buf, GR_VIEW_MAGIC, m) != 0 || buf[h - 1] != '\n') {
    gr_view_state_read(r, s);
    return;
  }
  static const git_oid zero;
  memcpy(hex, buf + m, GIT_OID_HEXSZ);
  hex[GIT_OID_HEXSZ] = '\0';
  s->has_base = r->git.oid_fromstr(&s->base, hex) == 0 && !r->git.oid_equal(&s->base, &zero);
  s->unreadable = !s->has_base;
  if (!s->has_base || (size_t)st.st_size == h) return; /* nothing after the header */
  if (n >= h + cl + GIT_OID_HEXSZ + 1 && memcmp(buf + h, GR_VIEW_COMMIT, cl) == 0 && buf[h + cl + GIT_OID_HEXSZ] == '\0') {
    memcpy(hex, buf + h + cl, GIT_OID_HEXSZ);
    s->has_commit = r->git.oid_fromstr(&s->commit, hex) == 0;
    size_t at = h + cl + GIT_OID_HEXSZ + 1, pl = strlen(GR_VIEW_PARTIAL);
    if (n >= at + pl + GIT_OID_HEXSZ + 1 && memcmp(buf + at, GR_VIEW_PARTIAL, pl) == 0 && buf[at + pl + GIT_OID_HEXSZ] == '\0') {
      memcpy(hex, buf + at + pl, GIT_OID_HEXSZ);
      s->partial = r->git.oid_fromstr(&s->partial_from, hex) == 0;
    }
    if (s->has_commit) return;
  }
  gr_view_state_read(r, s);
}

/* Removes the temporary files vw_replace left when its process was killed between their
 * open and their rename (GR_VIEW_STATE, a suffix or none, '.', the pid): only a dead
 * process's, so that a live writer's is never taken from under it. */
void gr_view_sweep_tmp(const gitrepo *r) {
  const char *gd = r->git.repository_path(r->repo);
  DIR *d = opendir(gd);
  if (d == NULL) return;
  size_t sl = strlen(GR_VIEW_STATE);
  static const char *const sfx[] = {"", GR_VIEW_WHY_SUFFIX, GR_VIEW_INTENT_SUFFIX};
  for (struct dirent *de; (de = readdir(d)) != NULL;) {
    if (strncmp(de->d_name, GR_VIEW_STATE, sl) != 0) continue;
    for (size_t k = 0; k < sizeof sfx / sizeof *sfx; k++) {
      const char *t = de->d_name + sl;
      size_t kl = strlen(sfx[k]);
      if (strncmp(t, sfx[k], kl) != 0 || t[kl] != '.') continue;
      char *end;
      errno = 0;
      long pid = strtol(t + kl + 1, &end, 10);
      if (end == t + kl + 1 || *end != '\0' || errno != 0 || pid == (long)getpid()) continue;
      if (gr_pid_gone(pid)) (void)unlinkat(dirfd(d), de->d_name, 0);
    }
  }
  closedir(d);
}

/* Replaces the file GR_VIEW_STATE + suffix whole, body writing its content: a temporary
 * file renamed over it (invariant 2: not synced). */
static int vw_replace(const gitrepo *r, const char *suffix, void (*body)(const gitrepo *, FILE *, const void *),
                      const void *arg, gr_err *e) {
  char p[PATH_MAX], tmp[PATH_MAX], sfx[48];
  snprintf(sfx, sizeof sfx, "%s.%ld", suffix, (long)getpid());
  if (vw_state_path(r, p, sizeof p, suffix) != 0 || vw_state_path(r, tmp, sizeof tmp, sfx) != 0)
    return gr_fail(e, "EINVAL", "gitdir path too long");
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0) return gr_fail(e, "EIO", "cannot write %s: %s", tmp, strerror(errno));
  FILE *f = fdopen(fd, "w");
  if (f == NULL) {
    close(fd);
    unlink(tmp);
    return gr_fail(e, "EIO", "cannot write %s: %s", tmp, strerror(errno));
  }
  body(r, f, arg);
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  if (bad || rename(tmp, p) != 0) {
    int err = errno;
    unlink(tmp);
    return gr_fail(e, "EIO", "cannot write %s: %s", p, strerror(err));
  }
  return 0;
}

/* 1 when path is in the list: sorted (a sorted copy of s->diverged) or, without one, scanned */
static int vw_in(const gr_paths *sorted, const gr_paths *list, const char *path) {
  return sorted->v ? gr_paths_sorted_has(sorted, path) : gr_paths_has(list, path);
}

static void vw_state_body(const gitrepo *r, FILE *f, const void *arg) {
  const gr_view_state *s = arg;
  char hex[GIT_OID_HEXSZ + 1];
  r->git.oid_tostr(hex, sizeof hex, &s->base);
  fprintf(f, "%s%s\n", GR_VIEW_MAGIC, hex);
  /* the records first: the commit is read from the head alone (gr_view_state_head); every
   * orket skips a record wherever it is */
  if (s->has_commit) {
    r->git.oid_tostr(hex, sizeof hex, &s->commit);
    fprintf(f, "%s%s%c", GR_VIEW_COMMIT, hex, '\0');
    if (s->partial) { /* in the head too (gr_view_state_head) */
      r->git.oid_tostr(hex, sizeof hex, &s->partial_from);
      fprintf(f, "%s%s%c", GR_VIEW_PARTIAL, hex, '\0');
    }
  }
  /* a person's move, kept while a path its refresh listed is still listed (invariant 10):
   * the move is why those paths are there, and no later merge settles them. Each of its
   * paths is looked up in a sorted copy of the list, not by a scan of the list per path
   * (written at every merge while the move is recorded). */
  gr_paths sorted = {0};
  if (s->moved && s->moved_paths.n && s->diverged.n && (sorted.v = malloc(s->diverged.n * sizeof *sorted.v)) != NULL) {
    memcpy(sorted.v, s->diverged.v, s->diverged.n * sizeof *sorted.v);
    sorted.n = s->diverged.n;
    qsort(sorted.v, sorted.n, sizeof *sorted.v, gr_cmp_str);
  }
  size_t kept = 0, size = strlen(GR_VIEW_MAGIC) + GIT_OID_HEXSZ + 1 + strlen(GR_VIEW_COMMIT) + GIT_OID_HEXSZ + 1 +
                          strlen(GR_VIEW_MOVED) + 2 * GIT_OID_HEXSZ + 2;
  for (size_t i = 0; i < s->diverged.n; i++) size += strlen(s->diverged.v[i]) + 1;
  for (size_t i = 0; s->moved && i < s->moved_paths.n; i++)
    if (vw_in(&sorted, &s->diverged, s->moved_paths.v[i])) {
      kept++;
      size += strlen(GR_VIEW_MOVED_PATH) + strlen(s->moved_paths.v[i]) + 1;
    }
  if (kept || (s->moved && !s->moved_paths.n && s->diverged.n)) { /* without paths: an older orket's record */
    char to[GIT_OID_HEXSZ + 1];
    r->git.oid_tostr(hex, sizeof hex, &s->moved_from);
    r->git.oid_tostr(to, sizeof to, &s->moved_to);
    fprintf(f, "%s%s %s%c", GR_VIEW_MOVED, hex, to, '\0');
    /* its paths only while the whole state stays readable (GR_VIEW_STATE_MAX): else the move
     * alone, named by the older rule (while any path is listed), rather than the state lost */
    for (size_t i = 0; kept && size <= GR_VIEW_STATE_MAX && i < s->moved_paths.n; i++)
      if (vw_in(&sorted, &s->diverged, s->moved_paths.v[i]))
        fprintf(f, "%s%s%c", GR_VIEW_MOVED_PATH, s->moved_paths.v[i], '\0');
  }
  free(sorted.v); /* the strings are the list's */
  for (size_t i = 0; i < s->diverged.n; i++) fwrite(s->diverged.v[i], 1, strlen(s->diverged.v[i]) + 1, f);
}

static void vw_why_body(const gitrepo *r, FILE *f, const void *arg) {
  const gr_view_state *s = arg;
  char hex[GIT_OID_HEXSZ + 1];
  r->git.oid_tostr(hex, sizeof hex, &s->base);
  fprintf(f, "%s\n", hex);
  for (const char *w = s->why; *w; w++) fputc(*w == '\n' ? ' ' : *w, f);
  fputc('\n', f);
}

int gr_view_state_write(const gitrepo *r, const gr_view_state *s, gr_err *e) {
  return vw_replace(r, "", vw_state_body, s, e);
}

/* Keeps why a refresh failed beside the state, said at its base (the zero id where the
 * state is missing or unreadable: a state that cannot be written was otherwise said nowhere,
 * and orket status reported nothing of the person's), so that gitrepo_view_status can say
 * why the view is behind main until a refresh succeeds (a successful one removes it). Best
 * effort: a reason that cannot be written either leaves the view behind, said without it. */
void gr_view_behind_why(gitrepo *r, const gr_err *why) {
  gr_view_state s;
  gr_err ignored;
  gr_view_state_read(r, &s);
  if (!s.has_base) memset(&s.base, 0, sizeof s.base);
  snprintf(s.why, sizeof s.why, "%.*s", (int)sizeof s.why - 1, why->msg);
  (void)vw_replace(r, GR_VIEW_WHY_SUFFIX, vw_why_body, &s, &ignored);
  gr_view_state_free(&s);
}

/* A refresh that succeeded: no reason left (one that cannot be removed names another base
 * than the next refresh's, and is not read). */
void gr_view_forget_why(const gitrepo *r) {
  char p[PATH_MAX];
  if (vw_state_path(r, p, sizeof p, GR_VIEW_WHY_SUFFIX) == 0) (void)unlink(p);
}

int gr_view_reset(gitrepo *r, const git_oid *tree, gr_err *e) {
  gr_view_state s = {.has_base = 1, .base = *tree};
  git_commit *c = NULL; /* main's first commit, whose tree it is */
  if (r->git.reference_name_to_id(&s.commit, r->repo, "refs/heads/" GR_MAIN) == 0 &&
      r->git.commit_lookup(&c, r->repo, &s.commit) == 0)
    s.has_commit = r->git.oid_equal(r->git.commit_tree_id(c), tree);
  r->git.commit_free(c);
  return gr_view_state_write(r, &s, e);
}

void gr_view_adopt(gitrepo *r) {
  const gitapi *g = &r->git;
  char p[PATH_MAX];
  struct stat st;
  if (vw_state_path(r, p, sizeof p, "") != 0 || lstat(p, &st) == 0 || errno != ENOENT) return;
  /* a branch of Orket's: a repository an older orket worked in, whose main its merges may
   * have moved past the files the index was last checked out as (view.c keeps its rule) */
  git_branch_iterator *it = NULL;
  git_reference *ref = NULL;
  git_branch_t bt;
  int ours = 0, rc;
  if (g->branch_iterator_new(&it, r->repo, GIT_BRANCH_LOCAL) < 0) return;
  while (!ours && (rc = g->branch_next(&ref, &bt, it)) == 0) {
    ours = strncmp(g->reference_name(ref), "refs/heads/orket/", 17) == 0;
    g->reference_free(ref);
  }
  g->branch_iterator_free(it);
  if (ours || rc != GIT_ITEROVER) return;
  git_oid tip;
  git_commit *c = NULL;
  gr_err ignored;
  if (g->reference_name_to_id(&tip, r->repo, "refs/heads/" GR_MAIN) == 0 && g->commit_lookup(&c, r->repo, &tip) == 0)
    (void)gr_view_reset(r, g->commit_tree_id(c), &ignored);
  g->commit_free(c);
}

static void vw_intent_body(const gitrepo *r, FILE *f, const void *arg) {
  const git_oid *pm = arg;
  char p[GIT_OID_HEXSZ + 1], m[GIT_OID_HEXSZ + 1];
  r->git.oid_tostr(p, sizeof p, &pm[0]);
  r->git.oid_tostr(m, sizeof m, &pm[1]);
  fprintf(f, "%s %s\n", p, m);
}

int gr_view_intent(gitrepo *r, const git_oid *from, const git_oid *to, gr_err *e) {
  git_oid pm[2] = {*from, *to};
  if (vw_replace(r, GR_VIEW_INTENT_SUFFIX, vw_intent_body, pm, e) != 0) return -1;
  /* the move's own lock, should a kill leave it: Orket's, for recovery to take (repo.c); the
   * record is written last, the move follows at once, and the merge ends the record as soon
   * as the move returns (gr_merge_into_main) */
  gr_write_begin(&r->git, r->repo, "refs/heads/" GR_MAIN ".lock");
  return 0;
}

/* P, main's commit Orket's last merge moved main from, when that merge moved it to tip (the
 * intent kept by gr_view_intent): 1, else 0 (main moved since by someone else, or no intent). */
int gr_view_read_intent(const gitrepo *r, const git_oid *tip, git_oid *p) {
  char path[PATH_MAX], buf[2 * GIT_OID_HEXSZ + 3], a[GIT_OID_HEXSZ + 1], b[GIT_OID_HEXSZ + 1];
  git_oid m;
  if (vw_state_path(r, path, sizeof path, GR_VIEW_INTENT_SUFFIX) != 0) return 0;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st;
  ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof buf) : -1;
  close(fd);
  if (n != (ssize_t)sizeof buf - 1 || buf[GIT_OID_HEXSZ] != ' ' || buf[2 * GIT_OID_HEXSZ + 1] != '\n') return 0;
  memcpy(a, buf, GIT_OID_HEXSZ);
  memcpy(b, buf + GIT_OID_HEXSZ + 1, GIT_OID_HEXSZ);
  a[GIT_OID_HEXSZ] = b[GIT_OID_HEXSZ] = '\0';
  return r->git.oid_fromstr(p, a) == 0 && r->git.oid_fromstr(&m, b) == 0 && r->git.oid_equal(&m, tip);
}
