/* confine_pids.c: the run's pids cgroup (see confine_pids.h). Reads /proc/self/cgroup and
 * /proc/self/mountinfo to find the helper's own cgroup in a hierarchy with the pids
 * controller, makes a child there and moves the helper into it before it forks. */
#define _GNU_SOURCE
#include "confine_pids.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The whole of a small kernel file (NUL-terminated); -1 with errno when it cannot be read. */
static ssize_t cp_read(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t n = 0;
  while (n < size - 1) {
    ssize_t r = read(fd, buf + n, size - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  int e = errno;
  close(fd);
  errno = e;
  buf[n] = '\0';
  return (ssize_t)n;
}

static int cp_write(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = strlen(text);
  ssize_t w;
  do w = write(fd, text, len);
  while (w < 0 && errno == EINTR);
  int e = errno;
  close(fd);
  errno = e;
  return w == (ssize_t)len ? 0 : -1;
}

/* 1 when the comma- or space-separated list [s, end) holds word. */
static int cp_has_word(const char *s, const char *end, const char *word) {
  size_t wl = strlen(word);
  while (s < end) {
    const char *e = s;
    while (e < end && *e != ',' && *e != ' ' && *e != '\n') e++;
    if ((size_t)(e - s) == wl && memcmp(s, word, wl) == 0) return 1;
    s = e + 1;
  }
  return 0;
}

int confine_pids_own(const char *text, int v2, char *out, size_t outlen) {
  for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    const char *eol = strchr(l, '\n');
    if (!eol) eol = l + strlen(l);
    const char *c1 = memchr(l, ':', (size_t)(eol - l));
    const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(eol - c1 - 1)) : NULL;
    if (!c2) continue;
    int match = v2 ? (c1 - l == 1 && l[0] == '0' && c2 == c1 + 1) : cp_has_word(c1 + 1, c2, "pids");
    if (!match) continue;
    size_t n = (size_t)(eol - c2 - 1);
    if (n == 0 || n >= outlen || c2[1] != '/') return -1;
    memcpy(out, c2 + 1, n);
    out[n] = '\0';
    return 0;
  }
  return -1;
}

/* Copies the mountinfo field [s, e) into out, undoing the kernel's \ooo escapes. */
static int cp_unescape(const char *s, const char *e, char *out, size_t outlen) {
  size_t n = 0;
  while (s < e) {
    char c = *s++;
    if (c == '\\' && e - s >= 3 && s[0] >= '0' && s[0] <= '3' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' &&
        s[2] <= '7') {
      c = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0'));
      s += 3;
    }
    if (n + 1 >= outlen) return -1;
    out[n++] = c;
  }
  out[n] = '\0';
  return 0;
}

int confine_pids_mount(const char *text, int v2, char *mnt, size_t mntlen, char *root, size_t rootlen) {
  for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    const char *eol = strchr(l, '\n');
    if (!eol) eol = l + strlen(l);
    /* id parent maj:min root mountpoint options [optional...] - fstype source superoptions */
    const char *f[6];
    const char *p = l;
    int nf = 0;
    while (nf < 6 && p < eol) {
      f[nf++] = p;
      while (p < eol && *p != ' ') p++;
      if (p < eol) p++;
    }
    const char *dash = NULL;
    for (const char *q = p; q + 2 < eol; q++)
      if (q[-1] == ' ' && q[0] == '-' && q[1] == ' ') {
        dash = q;
        break;
      }
    if (nf < 6 || !dash) continue;
    const char *fs = dash + 2, *fse = memchr(fs, ' ', (size_t)(eol - fs));
    if (!fse) continue;
    const char *src = fse + 1, *srce = memchr(src, ' ', (size_t)(eol - src));
    const char *opts = srce ? srce + 1 : eol;
    int match = v2 ? (fse - fs == 7 && memcmp(fs, "cgroup2", 7) == 0)
                   : (fse - fs == 6 && memcmp(fs, "cgroup", 6) == 0 && cp_has_word(opts, eol, "pids"));
    if (!match) continue;
    if (cp_unescape(f[3], f[4] - 1, root, rootlen) != 0) return -1;
    if (cp_unescape(f[4], f[5] - 1, mnt, mntlen) != 0) return -1;
    return 0;
  }
  return -1;
}

int confine_pids_dir(const char *mnt, const char *root, const char *own, char *out, size_t outlen) {
  size_t rl = strlen(root);
  if (rl == 1) rl = 0; /* the hierarchy's root mounted: the path as it is */
  if (strncmp(own, root, rl) != 0 || (own[rl] != '/' && own[rl] != '\0')) return -1;
  const char *rest = own + rl;
  if (strcmp(rest, "/") == 0) rest = "";
  int n = snprintf(out, outlen, "%s%s", mnt, rest);
  return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* The helper's cgroup directory in one hierarchy, and the mount point above which it has
 * no parent. Returns 0, or -1 with why. */
static int cp_own(int v2, char *own, size_t ownlen, char *mnt, size_t mntlen, char *why, size_t whylen) {
  const char *what = v2 ? "cgroup2" : "cgroup v1 pids";
  char text[65536], root[PATH_MAX], path[PATH_MAX];
  if (cp_read("/proc/self/mountinfo", text, sizeof text) < 0) {
    snprintf(why, whylen, "%s: /proc/self/mountinfo: %s", what, strerror(errno));
    return -1;
  }
  if (confine_pids_mount(text, v2, mnt, mntlen, root, sizeof root) != 0) {
    snprintf(why, whylen, "%s: not mounted", what);
    return -1;
  }
  if (cp_read("/proc/self/cgroup", text, sizeof text) < 0 || confine_pids_own(text, v2, path, sizeof path) != 0) {
    snprintf(why, whylen, "%s at %.200s: this process has no cgroup there", what, mnt);
    return -1;
  }
  if (confine_pids_dir(mnt, root, path, own, ownlen) != 0) {
    snprintf(why, whylen, "%s at %.100s: cgroup %.100s lies outside the mounted %.60s", what, mnt, path, root);
    return -1;
  }
  return 0;
}

/* cgroup v2: 1 when dir enables pids for its children (cgroup.subtree_control), else 0
 * with why. */
static int cp_delegates(const char *dir, char *why, size_t whylen) {
  char path[PATH_MAX + 32], ctl[512];
  snprintf(path, sizeof path, "%s/cgroup.subtree_control", dir);
  ssize_t n = cp_read(path, ctl, sizeof ctl);
  if (n < 0) {
    snprintf(why, whylen, "cgroup2: %.200s: %s", path, strerror(errno));
    return 0;
  }
  if (cp_has_word(ctl, ctl + n, "pids")) return 1;
  snprintf(why, whylen, "cgroup2: %.160s does not delegate pids to its children (cgroup.subtree_control: \"%.*s\")",
           dir, (int)(strcspn(ctl, "\n") > 80 ? 80 : strcspn(ctl, "\n")), ctl);
  return 0;
}

int confine_pids_pidfd(pid_t pid) {
  /* glibc wraps it only from 2.36; PIDFD_NONBLOCK is not wanted, 0 gives close-on-exec */
  return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* 1 when pid, a pid some process has (kill found it), is a process that has exited and
 * waits to be reaped (a zombie): gone as much as one already reaped, its pid held until
 * then. Its pidfd tells: readable once every thread of it has ended, in one look by the
 * kernel (a first thread that ended alone, pthread_exit, while others run, or one a
 * thread's execve is replacing, leaves it unreadable), and resolved in this PID namespace
 * whatever /proc is mounted. No pidfd to be had (ESRCH aside: gone meanwhile): 0, alive,
 * as a zombie counted before pidfds were used for this. */
static int cp_exited(pid_t pid) {
  int fd = confine_pids_pidfd(pid);
  if (fd < 0) return errno == ESRCH;
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  int r;
  do r = poll(&pfd, 1, 0);
  while (r < 0 && errno == EINTR);
  close(fd);
  return r == 1 && (pfd.revents & POLLIN) != 0;
}

int confine_pids_stale(const char *name, int suffixed) {
  /* a temp dir is a run's or a stdio MCP server's (orket.mcp.client), named the same way */
  if (strncmp(name, "orket-run-", 10) != 0 && !(suffixed && strncmp(name, "orket-mcp-", 10) == 0)) return 0;
  char *end;
  errno = 0;
  long pid = strtol(name + 10, &end, 10);
  if (errno != 0 || end == name + 10 || pid <= 0 || pid > INT_MAX) return 0;
  if (suffixed ? *end != '-' || end[1] == '\0' : *end != '\0') return 0;
  if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return 1;
  /* a process of another user (EPERM) or this one's is there, alive unless a zombie */
  return cp_exited((pid_t)pid);
}

/* Removes the empty cgroups that helpers killed outright left in base (their runner gone
 * too, so nobody else will): orket-run-PID of a pid no process has now (or a zombie only:
 * confine_pids_stale). rmdir takes only empty ones, so a helper that has moved in is never
 * touched, and one whose pid is checked alive is not either. One window stays: between the
 * check and the rmdir, the pid is freed (its zombie reaped) and taken by a new helper,
 * which makes orket-run-PID afresh and has not yet moved in. Its still-empty cgroup is
 * removed; its own pids.max or cgroup.procs write then fails, and that run reports the
 * pids layer missing (cf_pids), or fails before anything runs where it is required. It
 * takes the pid space wrapping round within that moment. */
static void cp_sweep(const char *base) {
  DIR *d = opendir(base);
  if (d == NULL) return;
  struct dirent *e;
  char path[PATH_MAX + 300];
  while ((e = readdir(d)) != NULL) {
    if (!confine_pids_stale(e->d_name, 0)) continue;
    snprintf(path, sizeof path, "%s/%s", base, e->d_name);
    (void)rmdir(path);
  }
  closedir(d);
}

/* Makes base/orket-run-PID with pids.max and moves this process in from own. */
static int cp_make(confine_pids *p, const char *base, const char *own, uint64_t max, char *why, size_t whylen) {
  char path[PATH_MAX + 32], num[32];
  int n = snprintf(p->dir, sizeof p->dir, "%s/orket-run-%d", base, (int)getpid());
  if (n < 0 || (size_t)n >= sizeof p->dir) {
    snprintf(why, whylen, "%.200s: path too long", base);
    p->dir[0] = '\0';
    return -1;
  }
  snprintf(p->back, sizeof p->back, "%s/cgroup.procs", own);
  cp_sweep(base);
  /* one of a helper that was killed outright, under a pid used again: empty, so removable */
  if (mkdir(p->dir, 0755) != 0 && !(errno == EEXIST && rmdir(p->dir) == 0 && mkdir(p->dir, 0755) == 0)) {
    snprintf(why, whylen, "mkdir %.200s: %s", p->dir, strerror(errno));
    p->dir[0] = '\0';
    return -1;
  }
  const char *step = "pids.max";
  snprintf(path, sizeof path, "%s/pids.max", p->dir);
  if (max) snprintf(num, sizeof num, "%llu", (unsigned long long)max);
  else snprintf(num, sizeof num, "max");
  int rc = cp_write(path, num);
  if (rc == 0) {
    step = "cgroup.procs";
    snprintf(path, sizeof path, "%s/cgroup.procs", p->dir);
    snprintf(num, sizeof num, "%d", (int)getpid());
    rc = cp_write(path, num);
  }
  if (rc != 0) {
    snprintf(why, whylen, "%.200s/%s: %s", p->dir, step, strerror(errno));
    rmdir(p->dir);
    p->dir[0] = '\0';
    return -1;
  }
  return 0;
}

/* cgroup v2: a child of the helper's own cgroup where that delegates pids; else a child of
 * its parent, beside it, where the parent does: a process's own cgroup seldom can (the
 * kernel lets no cgroup that holds processes enable controllers for children), while
 * systemd enables pids for its slices and for a unit's delegated subtree, so that a
 * service, a login session or a user's manager finds it one level up. */
static int cp_v2(confine_pids *p, uint64_t max, char *why, size_t whylen) {
  char own[PATH_MAX], mnt[PATH_MAX], w[300];
  if (cp_own(1, own, sizeof own, mnt, sizeof mnt, why, whylen) != 0) return -1;
  if (cp_delegates(own, w, sizeof w)) return cp_make(p, own, own, max, why, whylen);
  char parent[PATH_MAX];
  snprintf(parent, sizeof parent, "%s", own);
  char *slash = strrchr(parent, '/');
  if (strlen(own) <= strlen(mnt) || slash == NULL || slash - parent < (ptrdiff_t)strlen(mnt)) {
    snprintf(why, whylen, "%s", w);
    return -1;
  }
  *slash = '\0';
  if (!cp_delegates(parent, w, sizeof w)) {
    snprintf(why, whylen, "cgroup2: neither %.200s nor its parent delegates pids to its children", own);
    return -1;
  }
  return cp_make(p, parent, own, max, why, whylen);
}

int confine_pids_open(confine_pids *p, uint64_t max, char *why, size_t whylen) {
  p->dir[0] = p->back[0] = '\0';
  char own[PATH_MAX], mnt[PATH_MAX], w2[320], w1[320];
  /* v2 first, the layout of current systems; a hybrid layout's unified tree seldom has
   * the pids controller, and its v1 pids hierarchy serves instead */
  if (cp_v2(p, max, w2, sizeof w2) == 0) return 0;
  if (cp_own(0, own, sizeof own, mnt, sizeof mnt, w1, sizeof w1) == 0 && cp_make(p, own, own, max, w1, sizeof w1) == 0)
    return 0;
  snprintf(why, whylen, "no pids cgroup: %s; %s", w2, w1);
  return -1;
}

void confine_pids_close(confine_pids *p) {
  if (!p->dir[0]) return;
  char num[32];
  snprintf(num, sizeof num, "%d", (int)getpid());
  if (cp_write(p->back, num) == 0) {
    /* the last reaped tasks may take a moment to leave the cgroup */
    for (int i = 0; i < 100 && rmdir(p->dir) != 0 && errno == EBUSY; i++) {
      struct timespec ts = {0, 2000000};
      nanosleep(&ts, NULL);
    }
  }
  p->dir[0] = '\0';
}
