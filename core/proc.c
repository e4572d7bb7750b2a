/* proc.c: the process runner (see proc.h). One run = the confinement helper spawned
 * detached (its own session), three pipes read from the loop (stdout, stderr, the helper's
 * report on fd 3), a timeout timer and a backstop timer. The helper kills the tree on
 * SIGTERM; the backstop SIGKILLs both process groups if it does not. Uses libuv. */
#define _GNU_SOURCE
#include "proc.h"
#include "confine_pids.h"
#include "workspace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROC_DEFAULT_CAP (1u << 20)
#define PROC_READ_BUF 32768
#define PROC_BACKSTOP_MS 2000 /* after SIGTERM to the helper, before SIGKILL to the groups */
#define PROC_DRAIN_MS 1000    /* after the helper exits: then what the pipes hold is read at once */
#define PROC_RM_PASSES 100000 /* passes over a temp dir's top before the rest is the next sweep's */

struct proc_ctx {
  uv_loop_t *loop;
  char helper[PATH_MAX]; /* the helper binary: orket-confine next to orket, else orket */
  int pidfd;             /* 1: spawn with posix_spawn and watch a pidfd; 0: uv_spawn */
  proc_run *live; /* doubly linked through prev/next */
  size_t nlive;
  int freeing;
};

struct proc_run {
  proc_ctx *ctx;
  proc_run *prev, *next;
  proc_done_fn done;
  void *ud;
  uv_process_t proc;  /* the helper, when spawned with uv_spawn */
  uv_poll_t exitpoll; /* else: readable on its pidfd when it exits */
  int by_pidfd;       /* which of the two watches the helper */
  int pidfd;          /* the pidfd while open, else -1 */
  uv_pipe_t pipes[3]; /* stdout, stderr, report */
  uv_timer_t timer;   /* the timeout, then the drain */
  uv_timer_t backstop;
  int open;           /* handles initialised and not yet closed */
  int pipe_open[3];
  int spawned, exited, finished, released, kill_sent;
  proc_reason reason;
  int code, sig;
  unsigned layers;
  int abi, have_layers;
  char *missing[CONFINE_NLAYERS];
  char failure[400];
  char note[200];      /* the helper's note on a layer that held with less ("N" line) */
  const char *failure_code;
  int helper_pid, prog_pgid;
  uint64_t t0, t_exec, t_end;
  uint64_t output_limit;
  uint64_t max_rss_kb, cpu_ms;
  proc_stream s[2];
  char rep_line[512];
  size_t rep_len;
  char tmpdir[64];
  char *cgroup;        /* the run's pids cgroup ("C" line), removed after the helper if left */
  char readbuf[2][PROC_READ_BUF];
  char repbuf[256];
};

/* ---- captures --------------------------------------------------------------------------- */

void proc_stream_add(proc_stream *s, const char *p, size_t n) {
  s->total += n;
  size_t headcap = s->cap / 2, tailcap = s->cap - headcap;
  if (s->head_len < headcap) {
    size_t take = n < headcap - s->head_len ? n : headcap - s->head_len;
    if (s->head_len + take > s->head_size) { /* grow by doubling: most output is short */
      size_t size = s->head_size ? s->head_size : 4096;
      while (size < s->head_len + take) size *= 2;
      if (size > headcap) size = headcap;
      char *grown = realloc(s->head, size);
      if (grown == NULL) return; /* out of memory: the bytes are counted, not kept */
      s->head = grown;
      s->head_size = size;
    }
    memcpy(s->head + s->head_len, p, take);
    s->head_len += take;
    p += take;
    n -= take;
  }
  if (n == 0 || tailcap == 0) return;
  if (s->tail == NULL) s->tail = malloc(tailcap);
  if (s->tail == NULL) return;
  if (n >= tailcap) { /* only the last tailcap bytes can survive */
    p += n - tailcap;
    n = tailcap;
  }
  size_t first = tailcap - s->tail_pos < n ? tailcap - s->tail_pos : n;
  memcpy(s->tail + s->tail_pos, p, first);
  memcpy(s->tail, p + first, n - first);
  s->tail_pos = (s->tail_pos + n) % tailcap;
  s->tail_len = s->tail_len + n > tailcap ? tailcap : s->tail_len + n;
}

size_t proc_stream_text(const proc_stream *s, char *out, size_t outlen) {
  char mark[96];
  uint64_t dropped = s->total - s->head_len - s->tail_len;
  int mlen = dropped ? snprintf(mark, sizeof mark, "\n[... %llu bytes omitted ...]\n", (unsigned long long)dropped) : 0;
  size_t need = s->head_len + (size_t)mlen + s->tail_len;
  if (outlen < need) return need;
  if (s->head_len) memcpy(out, s->head, s->head_len);
  if (mlen) memcpy(out + s->head_len, mark, (size_t)mlen);
  char *t = out + s->head_len + mlen;
  size_t tailcap = s->cap - s->cap / 2;
  size_t start = s->tail_len < tailcap ? 0 : s->tail_pos; /* oldest byte in the ring */
  for (size_t i = 0; i < s->tail_len; i++) t[i] = s->tail[(start + i) % tailcap];
  return need;
}

/* ---- context ---------------------------------------------------------------------------- */

/* The helper: the small `orket-confine` installed next to the running orket binary when it
 * is there and executable (an exec of orket itself maps every library Orket links), else
 * orket itself, which has the same helper mode. */
static void proc_find_helper(const char *exe, char *out, size_t outlen) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  snprintf(out, outlen, "/proc/self/exe");
  if (n > 0) {
    self[n] = '\0';
  } else {
    /* no /proc: the executable main.c found from argv[0] (home.c), so that the helper
     * installed beside it is used, and orket itself otherwise, not a /proc path that is
     * not there */
    if (exe == NULL || *exe == '\0' || (size_t)snprintf(self, sizeof self, "%s", exe) >= sizeof self) return;
    snprintf(out, outlen, "%s", self);
  }
  char *slash = strrchr(self, '/');
  if (slash == NULL) return;
  slash[1] = '\0';
  char cand[PATH_MAX];
  if ((size_t)snprintf(cand, sizeof cand, "%sorket-confine", self) >= sizeof cand) return;
  struct stat st;
  if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) snprintf(out, outlen, "%s", cand);
}

proc_ctx *proc_ctx_new(uv_loop_t *loop, const char *exe) {
  /* Orket holds API keys in its environment and memory. Not dumpable, its /proc files
   * (environ, mem) are closed to a program of the same user that lacks CAP_SYS_PTRACE,
   * which is every confined program with a user namespace, Landlock or not. */
  prctl(PR_SET_DUMPABLE, 0);
  proc_ctx *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->loop = loop;
  proc_find_helper(exe, c->helper, sizeof c->helper);
  /* the first run of this process clears what runs of killed ones left (proc_start) */
  proc_sweep_tmp("/tmp");
  int fd = confine_pids_pidfd(getpid());
  if (fd >= 0) {
    c->pidfd = 1;
    close(fd);
  }
  return c;
}

size_t proc_ctx_live(const proc_ctx *c) { return c->nlive; }

const char *proc_ctx_helper(const proc_ctx *c) { return c->helper; }

/* Removing a run's temp dir, however deep its program made it: no recursion and no
 * descriptor per level (either runs out: a tree 30,000 levels deep takes a few seconds to
 * make). Each directory in the root is emptied of what is not a directory; a directory in it
 * that is not empty is renamed up into the root, under a fresh name, to be emptied in its
 * turn; the root is read again until a pass changes nothing. Two descriptors at a time,
 * whatever the depth. Every directory is opened from its parent's descriptor with
 * O_NOFOLLOW, never by path: a link (or one swapped in for a directory meanwhile) is
 * removed as a link and its target never entered. A directory on another mount than the
 * root's (a bind mount inside, of the same file system or not) is neither entered nor
 * moved, and stays, with the directories above it. */
typedef struct proc_rm {
  int root;            /* the directory being emptied */
  ws_mnt_source src;   /* how its mount is told from another (ws_mount_best) */
  uint64_t mnt;
  unsigned long fresh; /* the next name a directory moved up may take */
} proc_rm;

/* Opens the directory name of parent to empty it, never through a link. A directory its
 * program took the modes away from is given them back first (the owner may: this user). */
static int proc_rm_open(int parent, const char *name) {
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0 || errno != EACCES) return fd;
  if (fchmodat(parent, name, 0700, AT_SYMLINK_NOFOLLOW) != 0) return -1;
  return openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Moves the directory name (in dir) up into the root under a name not taken. 1 when moved. */
static int proc_rm_hoist(proc_rm *rm, int dir, const char *name) {
  char to[64];
  int chmodded = 0;
  for (int attempt = 0; attempt < 1000; attempt++) {
    snprintf(to, sizeof to, ".orket-rm-%lu", rm->fresh);
    if (renameat2(dir, name, rm->root, to, RENAME_NOREPLACE) == 0) return 1;
    if (errno == EEXIST) rm->fresh++;
    else if (errno == EACCES && !chmodded++) (void)fchmodat(dir, name, 0700, AT_SYMLINK_NOFOLLOW); /* its ".." */
    else return 0; /* EBUSY: a mount point, left */
  }
  return 0;
}

/* Removes the entry name of dir. Returns 1 when it is gone, 0 when it is left (refused, or
 * gone already), -1 when it is a directory that is not empty. */
static int proc_rm_entry(int dir, const char *name) {
  if (unlinkat(dir, name, 0) == 0) return 1;
  if (errno != EISDIR) return 0;
  if (unlinkat(dir, name, AT_REMOVEDIR) == 0) return 1;
  return errno == ENOTEMPTY || errno == EEXIST ? -1 : 0; /* EBUSY: a mount point, left */
}

/* Empties the root's directory name by one level (its directories that are not empty moved
 * up into the root) and removes it when that leaves it empty. Returns how many changed. */
static size_t proc_rm_dir(proc_rm *rm, const char *name) {
  int fd = proc_rm_open(rm->root, name);
  if (fd < 0) return 0;
  struct stat st;
  uint64_t mnt;
  if (ws_mount_id(fd, rm->src, &mnt) != 0 || mnt != rm->mnt || fstat(fd, &st) != 0) {
    close(fd); /* another mount (or it cannot be told): not entered */
    return 0;
  }
  if ((st.st_mode & 0700) != 0700) (void)fchmod(fd, 0700); /* to remove from it */
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return 0;
  }
  size_t changed = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    int r = proc_rm_entry(dirfd(d), e->d_name);
    changed += r > 0 || (r < 0 && proc_rm_hoist(rm, dirfd(d), e->d_name));
  }
  closedir(d);
  return changed + (unlinkat(rm->root, name, AT_REMOVEDIR) == 0);
}

/* Removes what the open directory fd holds, then closes fd. */
static void proc_rm_fd(int fd) {
  proc_rm rm = {.root = fd};
  DIR *d = ws_mount_best(fd, &rm.src, &rm.mnt) == 0 ? fdopendir(fd) : NULL;
  if (d == NULL) {
    close(fd);
    return;
  }
  size_t changed, passes = 0;
  /* finite while nothing writes there: each change removes an entry or moves one nearer the
   * root. A process left writing into it (one the run's end did not reach) could keep it
   * going for ever on the loop's thread: past PROC_RM_PASSES what is left stays for the next
   * process's sweep. */
  do {
    changed = 0;
    rewinddir(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      int r = proc_rm_entry(fd, e->d_name);
      changed += r > 0 ? 1 : r < 0 ? proc_rm_dir(&rm, e->d_name) : 0;
    }
  } while (changed > 0 && ++passes < PROC_RM_PASSES);
  closedir(d);
}

/* Removes the directory path and everything in it (proc_rm_fd), opened from its parent
 * without following a link. */
static void proc_rm_tree(const char *path) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL || slash[1] == '\0') return;
  char parent[PATH_MAX];
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  if (n >= sizeof parent) return;
  memcpy(parent, path, n);
  parent[n] = '\0';
  int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0) return;
  int fd = proc_rm_open(pfd, slash + 1);
  if (fd >= 0) {
    proc_rm_fd(fd);
    (void)unlinkat(pfd, slash + 1, AT_REMOVEDIR);
  }
  close(pfd);
}

/* The inode of this process's PID namespace (0: unknown). A run's temp dir names it, since
 * a pid means a process only in its own namespace: an Orket in a container sharing /tmp
 * has pids this one cannot see. */
static unsigned long proc_pidns(void) {
  struct stat st;
  return stat("/proc/self/ns/pid", &st) == 0 ? (unsigned long)st.st_ino : 0;
}

void proc_sweep_tmp(const char *base) {
  char ns[32];
  unsigned long ino = proc_pidns();
  if (ino == 0) return; /* whose pids the names hold cannot be told */
  int nslen = snprintf(ns, sizeof ns, "-%lu-", ino);
  DIR *d = opendir(base);
  if (d == NULL) return;
  uid_t me = geteuid();
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    /* a run's, or a stdio MCP server's (orket.mcp.client names it the same way) */
    if (strncmp(e->d_name, "orket-run-", 10) != 0 && strncmp(e->d_name, "orket-mcp-", 10) != 0) continue;
    const char *rest = e->d_name + 10 + strspn(e->d_name + 10, "0123456789");
    if (strncmp(rest, ns, (size_t)nslen) != 0 || !confine_pids_stale(e->d_name, 1)) continue;
    /* only a real directory of this user, checked on the descriptor that is removed from: a
     * link named like one is left, never followed */
    int fd = proc_rm_open(dirfd(d), e->d_name);
    if (fd < 0) continue;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_uid != me) {
      close(fd);
      continue;
    }
    proc_rm_fd(fd);
    (void)unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
  }
  closedir(d);
}

/* The run's pids cgroup, when the helper did not remove it (killed outright: by the
 * backstop, or with Orket). Only a directory the helper names as its own is touched, and
 * rmdir removes only an empty cgroup: one whose tasks are still exiting stays for the
 * next helper of the same pid, which replaces it. */
static void proc_rm_cgroup(proc_run *r) {
  if (r->cgroup == NULL) return;
  const char *base = strrchr(r->cgroup, '/');
  if (r->cgroup[0] == '/' && base && strncmp(base + 1, "orket-run-", 10) == 0) (void)rmdir(r->cgroup);
  free(r->cgroup);
  r->cgroup = NULL;
}

static void proc_free(proc_run *r) {
  proc_ctx *c = r->ctx;
  proc_rm_cgroup(r);
  if (r->prev) r->prev->next = r->next;
  else c->live = r->next;
  if (r->next) r->next->prev = r->prev;
  c->nlive--;
  if (r->tmpdir[0]) proc_rm_tree(r->tmpdir);
  for (int i = 0; i < CONFINE_NLAYERS; i++) free(r->missing[i]);
  for (int i = 0; i < 2; i++) {
    free(r->s[i].head);
    free(r->s[i].tail);
  }
  free(r);
  if (c->freeing && c->nlive == 0) free(c);
}

static void proc_closed(uv_handle_t *h) {
  proc_run *r = h->data;
  if (h == (uv_handle_t *)&r->exitpoll && r->pidfd >= 0) {
    close(r->pidfd);
    r->pidfd = -1;
  }
  if (--r->open == 0 && r->released) proc_free(r);
}

static void proc_close(proc_run *r, uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, proc_closed);
}

static void proc_close_pipe(proc_run *r, int i) {
  if (!r->pipe_open[i]) return;
  r->pipe_open[i] = 0;
  proc_close(r, (uv_handle_t *)&r->pipes[i]);
}

/* Closes the run's pipes and timers (each once; proc_closed counts them down). */
static void proc_close_handles(proc_run *r) {
  for (int i = 0; i < 3; i++) proc_close_pipe(r, i);
  proc_close(r, (uv_handle_t *)&r->timer);
  proc_close(r, (uv_handle_t *)&r->backstop);
}

/* ---- ending ----------------------------------------------------------------------------- */

static void proc_backstop(uv_timer_t *t) {
  proc_run *r = t->data;
  /* The helper did not clean up in time (or is gone): kill both groups outright. */
  if (!r->exited && r->helper_pid > 0) kill(-r->helper_pid, SIGKILL);
  if (r->prog_pgid > 0) kill(-r->prog_pgid, SIGKILL);
}

/* Asks the helper to kill the tree; the backstop follows if it does not. */
static void proc_kill_tree(proc_run *r) {
  if (r->kill_sent || !r->spawned || r->exited) return;
  r->kill_sent = 1;
  kill(r->helper_pid, SIGTERM);
  uv_update_time(r->ctx->loop);
  uv_timer_start(&r->backstop, proc_backstop, PROC_BACKSTOP_MS, 0);
}

static void proc_check_done(proc_run *r) {
  if (r->finished || !r->exited || r->pipe_open[0] || r->pipe_open[1] || r->pipe_open[2]) return;
  r->finished = 1;
  r->t_end = uv_hrtime();
  uv_timer_stop(&r->timer);
  uv_timer_stop(&r->backstop);
  if (r->reason == PROC_RUNNING) {
    if (r->failure[0]) r->reason = PROC_FAILED;
    else if (!r->have_layers) {
      snprintf(r->failure, sizeof r->failure, "the confinement helper ended before the program ran (%s %d)",
               r->sig ? "signal" : "exit", r->sig ? r->sig : r->code);
      r->failure_code = "ESPAWN";
      r->reason = PROC_FAILED;
    } else if (r->sig) r->reason = PROC_KILLED;
    else r->reason = PROC_EXIT;
  }
  if (r->tmpdir[0]) {
    proc_rm_tree(r->tmpdir);
    r->tmpdir[0] = '\0';
  }
  proc_rm_cgroup(r);
  if (r->done) r->done(r, r->ud);
}

static void proc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void proc_read_out(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);
static void proc_read_report(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

/* The drain time is over: take what the pipes still hold without waiting (a process that
 * escaped the sweep may keep one open), then close them. */
static void proc_drain_over(uv_timer_t *t) {
  proc_run *r = t->data;
  for (int i = 0; i < 3; i++) {
    uv_os_fd_t fd;
    if (!r->pipe_open[i] || uv_fileno((uv_handle_t *)&r->pipes[i], &fd) != 0) continue;
    uv_buf_t buf;
    proc_alloc((uv_handle_t *)&r->pipes[i], 0, &buf);
    ssize_t n;
    while (r->pipe_open[i] && (n = read(fd, buf.base, buf.len)) > 0) {
      if (i == 2) proc_read_report((uv_stream_t *)&r->pipes[i], n, &buf);
      else proc_read_out((uv_stream_t *)&r->pipes[i], n, &buf);
    }
  }
  for (int i = 0; i < 3; i++) proc_close_pipe(r, i);
  proc_check_done(r);
}

/* The handle that watches the helper's exit. */
static uv_handle_t *proc_exit_handle(proc_run *r) {
  return r->by_pidfd ? (uv_handle_t *)&r->exitpoll : (uv_handle_t *)&r->proc;
}

static void proc_helper_exited(proc_run *r, int64_t status, int sig) {
  r->exited = 1;
  r->code = sig ? -1 : (int)status;
  r->sig = sig;
  uv_timer_stop(&r->timer);
  uv_timer_stop(&r->backstop);
  /* A helper that died by a signal did not sweep: clear what is left of the program's
   * group (its members hold the group id, so it cannot have been reused). */
  if (sig && r->prog_pgid > 0) kill(-r->prog_pgid, SIGKILL);
  proc_close(r, proc_exit_handle(r));
  if (r->released) { /* cancelled and forgotten: nothing more to read */
    proc_close_handles(r);
    return;
  }
  /* Everything that held the pipes is gone; give the kernel's buffers a moment to drain.
   * Exit callbacks can run late in a long loop turn: measure from now, not from its start,
   * or the pipes would be closed before they were read. */
  uv_update_time(r->ctx->loop);
  uv_timer_start(&r->timer, proc_drain_over, PROC_DRAIN_MS, 0);
  proc_check_done(r);
}

static void proc_exited(uv_process_t *p, int64_t status, int sig) { proc_helper_exited(p->data, status, sig); }

/* The helper's pidfd is readable: it has exited; reap it here (libuv reaps only the
 * processes it spawned itself). */
static void proc_pidfd_ready(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  proc_run *r = h->data;
  if (r->exited) return;
  int st;
  pid_t got = waitpid(r->helper_pid, &st, WNOHANG);
  if (got == 0) return; /* not yet (a spurious wake) */
  if (got < 0) st = 0;  /* reaped elsewhere: nothing more to learn */
  uv_poll_stop(h);
  proc_helper_exited(r, WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}
static void proc_timeout(uv_timer_t *t) {
  proc_run *r = t->data;
  if (r->reason == PROC_RUNNING) r->reason = PROC_TIMEOUT;
  proc_kill_tree(r);
}

/* ---- reading ---------------------------------------------------------------------------- */

static void proc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  proc_run *r = h->data;
  if (h == (uv_handle_t *)&r->pipes[2]) *buf = uv_buf_init(r->repbuf, sizeof r->repbuf);
  else {
    int i = h == (uv_handle_t *)&r->pipes[1];
    *buf = uv_buf_init(r->readbuf[i], PROC_READ_BUF);
  }
}

static void proc_read_out(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  proc_run *r = st->data;
  int i = st == (uv_stream_t *)&r->pipes[1];
  if (n < 0) {
    r->s[i].eof = 1;
    proc_close_pipe(r, i);
    proc_check_done(r);
    return;
  }
  proc_stream_add(&r->s[i], buf->base, (size_t)n);
  if (r->output_limit && r->s[0].total + r->s[1].total > r->output_limit && !r->kill_sent) {
    if (r->reason == PROC_RUNNING) r->reason = PROC_OUTPUT;
    proc_kill_tree(r);
  }
}

static const char *proc_errno_code(int e) {
  switch (e) {
  case ENOENT: return "ENOENT";
  case EACCES: return "EACCES";
  case ENOEXEC: return "ENOEXEC";
  case ENOTDIR: return "ENOTDIR";
  case E2BIG: return "E2BIG";
  case ENOMEM: return "ENOMEM";
  default: return "EEXEC";
  }
}

/* One report line from the helper (see confine.h). */
static void proc_report_line(proc_run *r, char *line) {
  char kind = line[0];
  char *rest = line[0] && line[1] == ' ' ? line + 2 : line + strlen(line);
  if (kind == 'P') {
    r->prog_pgid = atoi(rest);
  } else if (kind == 'L') {
    unsigned mask;
    int abi;
    if (sscanf(rest, "%u %d", &mask, &abi) == 2) {
      r->layers = mask;
      r->abi = abi;
      r->have_layers = 1;
      r->t_exec = uv_hrtime();
    }
  } else if (kind == 'W' || kind == 'F') {
    char *sp = strchr(rest, ' ');
    const char *msg = sp ? sp + 1 : "";
    if (sp) *sp = '\0';
    unsigned bit = confine_layer_bit(rest);
    if (kind == 'W') {
      for (int i = 0; i < CONFINE_NLAYERS; i++)
        if (bit == 1u << i && r->missing[i] == NULL) r->missing[i] = strdup(msg);
    } else if (!r->failure[0]) {
      snprintf(r->failure, sizeof r->failure, "%s", msg);
      r->failure_code = bit == 0 || (CONFINE_ALWAYS & bit) ? "ESPAWN" : "ELAYER";
      if (strcmp(rest, "require") == 0) r->failure_code = "ELAYER";
      if (strcmp(rest, "cwd") == 0) r->failure_code = "ENOENT";
    }
  } else if (kind == 'C') {
    if (r->cgroup == NULL) r->cgroup = strdup(rest);
  } else if (kind == 'N') {
    if (!r->note[0]) snprintf(r->note, sizeof r->note, "%s", rest);
  } else if (kind == 'X') {
    unsigned long long rss, cpu;
    if (sscanf(rest, "%llu %llu", &rss, &cpu) == 2) {
      r->max_rss_kb = rss;
      r->cpu_ms = cpu;
    }
  } else if (kind == 'E') {
    int e = 0, off = 0;
    if (sscanf(rest, "%d %n", &e, &off) >= 1 && !r->failure[0]) {
      snprintf(r->failure, sizeof r->failure, "cannot run '%s': %s", rest + off, strerror(e));
      r->failure_code = proc_errno_code(e);
    }
  }
}

static void proc_read_report(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  proc_run *r = st->data;
  if (n < 0) {
    proc_close_pipe(r, 2);
    proc_check_done(r);
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char ch = buf->base[i];
    if (ch == '\n') {
      r->rep_line[r->rep_len] = '\0';
      proc_report_line(r, r->rep_line);
      r->rep_len = 0;
    } else if (r->rep_len < sizeof r->rep_line - 1) {
      r->rep_line[r->rep_len++] = ch;
    }
  }
}

/* ---- starting --------------------------------------------------------------------------- */

static int proc_env_has(char *const *env, const char *name) {
  size_t len = strlen(name);
  for (; env && *env; env++)
    if (strncmp(*env, name, len) == 0 && (*env)[len] == '=') return 1;
  return 0;
}

/* Spawns the helper as uv_spawn would (its own session, stdin the null device, fds 1-3 the
 * pipes' write ends, nothing else open, default signals, only henv, the program's entries
 * under CONFINE_ENV_PREFIX), but with
 * posix_spawn, which does not copy Orket's page tables as fork does (glibc uses
 * CLONE_VM|CLONE_VFORK): on a busy virtual machine that copy was a good part of a run's
 * cost. The exit is watched through a pidfd on the loop. Returns 0 or a libuv error code;
 * on error no handle is left initialised and no helper is left running. */
static int proc_spawn_pidfd(proc_run *r, const char *helper, char **args, char **henv, int fds[3][2]) {
  int out[3], rc = 0;
  for (int i = 0; i < 3; i++) out[i] = -1;
  /* a write end that sits on a low descriptor would be overwritten by the dup2s (or keep
   * its close-on-exec flag when dup2'd onto itself): move it up first */
  for (int i = 0; i < 3 && rc == 0; i++) {
    out[i] = fcntl(fds[i][1], F_DUPFD_CLOEXEC, 10);
    if (out[i] < 0) rc = -(errno);
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  pid_t pid = -1;
  if (rc == 0) {
    int e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    for (int i = 0; i < 3 && e == 0; i++) e = posix_spawn_file_actions_adddup2(&fa, out[i], i + 1);
    if (e == 0) e = posix_spawn_file_actions_addclosefrom_np(&fa, 4);
    if (e == 0) e = posix_spawnattr_setsigdefault(&at, &all);
    if (e == 0) e = posix_spawnattr_setsigmask(&at, &none);
    if (e == 0) e = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    if (e == 0) e = posix_spawn(&pid, helper, &fa, &at, args, henv);
    if (e != 0) rc = -(e);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  for (int i = 0; i < 3; i++)
    if (out[i] >= 0) close(out[i]);
  if (rc != 0) return rc;
  r->pidfd = confine_pids_pidfd(pid);
  if (r->pidfd < 0) rc = -(errno);
  if (rc == 0) rc = uv_poll_init(r->ctx->loop, &r->exitpoll, r->pidfd);
  if (rc != 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (r->pidfd >= 0) close(r->pidfd);
    r->pidfd = -1;
    return rc;
  }
  r->by_pidfd = 1;
  r->exitpoll.data = r;
  r->helper_pid = pid;
  uv_poll_start(&r->exitpoll, UV_READABLE, proc_pidfd_ready);
  return 0;
}

proc_run *proc_start(proc_ctx *c, const proc_opts *o, proc_done_fn done, void *ud, char *err,
                     size_t errlen, const char **code) {
  struct stat st;
  *code = "ESPAWN";
  if (o->cwd == NULL || o->cwd[0] != '/' || stat(o->cwd, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "working directory %s is not a directory", o->cwd ? o->cwd : "(none)");
    *code = "ENOENT";
    return NULL;
  }
  proc_run *r = calloc(1, sizeof *r);
  if (r == NULL) {
    snprintf(err, errlen, "out of memory");
    *code = "ENOMEM";
    return NULL;
  }
  r->ctx = c;
  r->next = c->live;
  if (c->live) c->live->prev = r;
  c->live = r;
  c->nlive++;
  r->done = done;
  r->ud = ud;
  r->pidfd = -1;
  r->t0 = uv_hrtime();
  r->output_limit = o->output_limit;
  for (int i = 0; i < 2; i++) r->s[i].cap = o->output_cap ? o->output_cap : PROC_DEFAULT_CAP;
  r->released = 1; /* until started: an early failure frees it through the close callbacks */

  /* named for this process (its pid and PID namespace), so that once it is gone, killed
   * before it could remove the dir, the next one's proc_ctx_new knows the dir for a
   * leftover */
  snprintf(r->tmpdir, sizeof r->tmpdir, "/tmp/orket-run-%d-%lu-XXXXXX", (int)getpid(), proc_pidns());
  char tried[sizeof r->tmpdir];
  memcpy(tried, r->tmpdir, sizeof tried); /* mkdtemp leaves the template undefined on failure */
  if (mkdtemp(r->tmpdir) == NULL) {
    /* the path and that $TMPDIR is not the way out: a hardened runner's scratch space is
     * often only there (the sweep of leftovers looks in /tmp alone) */
    int e = errno;
    const char *td = getenv("TMPDIR");
    int has_td = td != NULL && *td != '\0';
    snprintf(err, errlen, "cannot make the run's temp dir %s: %s (confined runs always make it in /tmp%s%.160s: "
             "make /tmp writable)", tried, strerror(e), has_td ? ", not in $TMPDIR=" : "", has_td ? td : "");
    r->tmpdir[0] = '\0';
    proc_free(r);
    return NULL;
  }
  /* The program's environment: the caller's entries, then the defaults it did not set. */
  size_t nextra = 0;
  while (o->env && o->env[nextra]) nextra++;
  char **env = malloc((nextra + 5) * sizeof *env);
  if (env == NULL) {
    snprintf(err, errlen, "out of memory");
    proc_free(r);
    return NULL;
  }
  char home[96], tmp[96];
  snprintf(home, sizeof home, "HOME=%s", r->tmpdir);
  snprintf(tmp, sizeof tmp, "TMPDIR=%s", r->tmpdir);
  size_t k = 0;
  for (size_t i = 0; i < nextra; i++) env[k++] = o->env[i];
  if (!proc_env_has(o->env, "PATH")) env[k++] = "PATH=/usr/local/bin:/usr/bin:/bin";
  if (!proc_env_has(o->env, "HOME")) env[k++] = home;
  if (!proc_env_has(o->env, "TMPDIR")) env[k++] = tmp;
  if (!proc_env_has(o->env, "LANG")) env[k++] = "LANG=C.UTF-8";
  env[k] = NULL;

  confine_spec spec = {
      .want = o->want, .require = o->require, .lim = o->lim, .cwd = o->cwd,
      .tmpdir = r->tmpdir, .env = env, .argv = o->argv,
      .flags = o->flags, .nbinds = o->nbinds, .binds = o->binds,
      .relay_path = o->relay_path, .relay_port = o->relay_port,
      .inward_path = o->inward_path, .inward_port = o->inward_port, .run_as = o->run_as,
      .nservices = o->nservices,
  };
  memcpy(spec.service_ports, o->service_ports, sizeof spec.service_ports);
  char scratch[384];
  const char *helper = o->helper ? o->helper : c->helper;
  char **args = confine_encode(helper, &spec, scratch, sizeof scratch);
  /* The program's entries reach the helper in its environment, not in its argv, which any
   * local user reads; none of Orket's own variables does. */
  char **henv = args ? confine_encode_env(&spec) : NULL;
  if (henv == NULL) {
    free(args);
    free(env);
    snprintf(err, errlen, "out of memory");
    proc_free(r);
    return NULL;
  }
  /* Our own pipes rather than libuv's socketpairs: a pipe moves bulk output several times
   * faster, and its buffer can be enlarged. */
  int fds[3][2];
  for (int i = 0; i < 3; i++) {
    uv_pipe_init(c->loop, &r->pipes[i], 0);
    r->pipes[i].data = r;
    r->pipe_open[i] = 1;
    r->open++;
    fds[i][0] = fds[i][1] = -1;
  }
  uv_timer_init(c->loop, &r->timer);
  uv_timer_init(c->loop, &r->backstop);
  r->timer.data = r->backstop.data = r->proc.data = r;
  r->open += 2;
  int rc = 0;
  for (int i = 0; i < 3 && rc == 0; i++) {
    rc = uv_pipe(fds[i], UV_NONBLOCK_PIPE, 0);
    if (rc == 0 && i < 2) fcntl(fds[i][1], F_SETPIPE_SZ, 1 << 20); /* best effort */
    if (rc == 0) rc = uv_pipe_open(&r->pipes[i], fds[i][0]);
    if (rc == 0) fds[i][0] = -1; /* the handle owns it now */
  }
  uv_stdio_container_t stdio[4];
  stdio[0].flags = UV_IGNORE;
  for (int i = 0; i < 3; i++) {
    stdio[i + 1].flags = UV_INHERIT_FD;
    stdio[i + 1].data.fd = fds[i][1];
  }
  uv_process_options_t po;
  memset(&po, 0, sizeof po);
  po.exit_cb = proc_exited;
  po.file = helper;
  po.args = args;
  po.env = henv;
  po.flags = UV_PROCESS_DETACHED; /* setsid: the helper leads its own session and group */
  po.stdio_count = 4;
  po.stdio = stdio;
  int spawn_tried = rc == 0;
  if (spawn_tried && c->pidfd) rc = proc_spawn_pidfd(r, helper, args, henv, fds);
  else if (spawn_tried) rc = uv_spawn(c->loop, &r->proc, &po);
  free(args);
  free(henv);
  free(env);
  for (int i = 0; i < 3; i++) {
    if (fds[i][0] >= 0) close(fds[i][0]);
    if (fds[i][1] >= 0) close(fds[i][1]); /* the helper holds its copies */
  }
  if (rc != 0) {
    int no_proc = strncmp(helper, "/proc/", 6) == 0 && access("/proc/self", F_OK) != 0;
    snprintf(err, errlen, "cannot start the confinement helper %s: %s%s", helper, uv_strerror(rc),
             no_proc ? " (/proc is not mounted, and the executable's path is not known from argv[0]: mount /proc, "
                       "or start orket by a path to it with orket-confine beside it)" : "");
    proc_close_handles(r);
    if (spawn_tried && !c->pidfd) { /* uv_spawn leaves the handle initialised even when it fails */
      uv_close((uv_handle_t *)&r->proc, proc_closed);
      r->open++;
    }
    return NULL;
  }
  r->open++;
  r->spawned = 1;
  r->released = 0;
  if (!r->by_pidfd) r->helper_pid = r->proc.pid;
  uv_read_start((uv_stream_t *)&r->pipes[0], proc_alloc, proc_read_out);
  uv_read_start((uv_stream_t *)&r->pipes[1], proc_alloc, proc_read_out);
  uv_read_start((uv_stream_t *)&r->pipes[2], proc_alloc, proc_read_report);
  /* The loop's clock is only as fresh as its last turn, and a caller may have spent long
   * since (spawning a hundred runs, say): a timer from it would fire that much early. */
  uv_update_time(c->loop);
  if (o->timeout_ms) uv_timer_start(&r->timer, proc_timeout, o->timeout_ms, 0);
  return r;
}

void proc_cancel(proc_run *r) {
  if (r->finished) return;
  r->finished = 1;
  r->done = NULL;
  proc_kill_tree(r);
}

void proc_release(proc_run *r) {
  if (r->released) return;
  proc_cancel(r);
  r->released = 1;
  /* Still running: the handles close when the helper has exited (or at proc_ctx_free). */
  if (!r->exited) return;
  proc_close_handles(r);
  if (r->open == 0) proc_free(r);
}

void proc_ctx_free(proc_ctx *c) {
  if (c == NULL) return;
  c->freeing = 1;
  if (c->nlive == 0) {
    free(c);
    return;
  }
  for (proc_run *r = c->live; r; r = r->next) {
    if (r->spawned && !r->exited) {
      /* The helper sweeps on SIGTERM; the program's group goes at once. */
      kill(r->helper_pid, SIGTERM);
      if (r->prog_pgid > 0) kill(-r->prog_pgid, SIGKILL);
      proc_close(r, proc_exit_handle(r));
    }
    r->finished = 1;
    r->done = NULL;
    r->released = 1;
    proc_close_handles(r);
  }
}

/* ---- results ---------------------------------------------------------------------------- */

proc_reason proc_result_reason(const proc_run *r) { return r->reason; }
int proc_result_code(const proc_run *r) { return r->sig ? -1 : r->code; }
int proc_result_signal(const proc_run *r) { return r->sig; }
unsigned proc_result_layers(const proc_run *r) { return r->layers; }
int proc_result_landlock_abi(const proc_run *r) { return r->abi; }
uint64_t proc_result_wall_ns(const proc_run *r) { return (r->t_end ? r->t_end : uv_hrtime()) - r->t0; }
uint64_t proc_result_max_rss_kb(const proc_run *r) { return r->max_rss_kb; }
uint64_t proc_result_cpu_ms(const proc_run *r) { return r->cpu_ms; }
uint64_t proc_result_exec_ns(const proc_run *r) { return r->t_exec ? r->t_exec - r->t0 : 0; }
const proc_stream *proc_result_stream(const proc_run *r, int which) { return &r->s[which == 2]; }

const char *proc_result_note(const proc_run *r) { return r->note[0] ? r->note : NULL; }

const char *proc_result_missing(const proc_run *r, unsigned bit) {
  for (int i = 0; i < CONFINE_NLAYERS; i++)
    if (bit == 1u << i) return r->missing[i];
  return NULL;
}

const char *proc_result_failure(const proc_run *r, const char **code) {
  if (code) *code = r->failure_code;
  return r->failure[0] ? r->failure : NULL;
}
