/* lockfile.c: exclusive advisory locks on files (see lockfile.h); flock(2) on a descriptor
 * opened with O_CLOEXEC, so child processes (tools, model servers) never inherit it. */
#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static pid_t lockfile_read_pid(int fd) {
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  long v = strtol(buf, NULL, 10);
  return v > 0 ? (pid_t)v : 0;
}

int lockfile_acquire(const char *path, pid_t *holder, char *err, size_t errlen, const char **code) {
  *holder = 0;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open lock file %s: %s", path, strerror(errno));
    *code = errno == EACCES ? "EACCES" : "EIO";
    return -1;
  }
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    if (e == EWOULDBLOCK) {
      *holder = lockfile_read_pid(fd);
      snprintf(err, errlen, "%s is locked by another process", path);
      *code = "EBUSY";
    } else {
      snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
      *code = "EIO";
    }
    close(fd);
    return -1;
  }
  /* The pid is information for the next process's message, not part of the lock: a
   * failed write leaves the lock held and the message without a pid. */
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) == n) {
    /* written */
  }
  return fd;
}

void lockfile_release(int fd) {
  if (fd < 0) return;
  /* close drops the flock; truncating first would race with the next holder's write */
  close(fd);
}
