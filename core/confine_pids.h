/* confine_pids.h: the confinement helper's process count, held by a pids cgroup of the
 * run's own. The kernel exempts root from RLIMIT_NPROC (and counts it per user, not per
 * run), so a fork bomb run by root would fill the machine's process table until its
 * timeout; a pids cgroup holds every user alike. Used by confine.c only; plain C over the
 * cgroup filesystem (v2 first, then v1's pids hierarchy). */
#ifndef ORKET_CONFINE_PIDS_H
#define ORKET_CONFINE_PIDS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Tasks of the run's cgroup that are not the program's: the helper and the PID
 * namespace's init. pids.max is the program's limit plus these. */
#define CONFINE_PIDS_OVERHEAD 2

typedef struct confine_pids {
  char dir[PATH_MAX];   /* the run's cgroup directory ("" when none was made) */
  char back[PATH_MAX];  /* cgroup.procs of the cgroup the helper came from */
} confine_pids;

/* Makes a cgroup for this run beside nothing else (a child of the helper's own cgroup, in
 * the first hierarchy that offers the pids controller there: cgroup v2 when the helper's
 * cgroup delegates pids to its children, else cgroup v1's pids hierarchy), sets its
 * pids.max to max (0: "max", counted but not held) and moves the calling process into it,
 * so that everything it forks is counted. Returns 0, or -1 with why naming each hierarchy
 * tried and what refused it; p->dir is then "". */
int confine_pids_open(confine_pids *p, uint64_t max, char *why, size_t whylen);

/* Moves the calling process back to the cgroup it came from and removes the run's cgroup
 * (empty by then: the helper has reaped the whole tree). Idempotent. */
void confine_pids_close(confine_pids *p);

/* 1 when name is "orket-run-PID" (suffixed = 0: a run's cgroup, named for its helper) or
 * "orket-run-PID-SUFFIX" or "orket-mcp-PID-SUFFIX" (suffixed = 1: a run's or a stdio MCP
 * server's temp dir, named for the Orket process that made it, proc.c, which checks the PID
 * namespace in SUFFIX) and no process has PID now, or only a zombie (exited, not yet reaped:
 * every thread of it ended, as its pidfd tells), so whoever would have removed it is gone;
 * else 0 (another name, or a live process, even another user's; a zombie too where no
 * pidfd can be had). */
int confine_pids_stale(const char *name, int suffixed);

/* A pidfd of process pid (pidfd_open, Linux 5.3+), resolved in this process's PID
 * namespace: readable once every thread of it has exited, reaped or not. The one way Orket
 * opens one (proc.c watches its helpers by it). Returns the fd (close-on-exec), or -1 with
 * errno: ESRCH (no such process), EINVAL (pid is a thread's, not a process's), ENOSYS or
 * EPERM (an older kernel, or a seccomp filter that refuses it). */
int confine_pids_pidfd(pid_t pid);

/* ---- pure parts, for the unit tests ------------------------------------------------- */

/* The path of this process's cgroup from /proc/self/cgroup's text: the "0::" line for
 * cgroup v2 (v2 = 1), else the line whose controller list holds "pids". Returns 0, or -1
 * when there is no such line or the path does not fit. */
int confine_pids_own(const char *text, int v2, char *out, size_t outlen);

/* The mount point and the mounted root of the hierarchy from /proc/self/mountinfo's text:
 * the first "cgroup2" mount (v2 = 1), else the first "cgroup" mount whose super options
 * hold "pids". Octal escapes (\040) are undone. Returns 0, or -1 when there is none. */
int confine_pids_mount(const char *text, int v2, char *mnt, size_t mntlen, char *root, size_t rootlen);

/* The directory of the cgroup at path own in a hierarchy mounted at mnt from root root:
 * mnt followed by own without root's prefix. Returns 0, or -1 when own does not lie under
 * root (a cgroup namespace or bind mount that hides it) or it does not fit. */
int confine_pids_dir(const char *mnt, const char *root, const char *own, char *out, size_t outlen);

#endif
