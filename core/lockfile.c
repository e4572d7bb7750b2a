/* lockfile.c: exclusive advisory locks on files (see lockfile.h): an open file description
 * lock (fcntl F_OFD_SETLK) on a descriptor opened with O_CLOEXEC, so child processes
 * (tools, model servers) never inherit it. Unlike flock, another process can ask whether
 * it is held without taking it (F_OFD_GETLK), which lockfile_probe does; unlike classic
 * POSIX locks, closing some other descriptor of the file does not drop it. */
#define _GNU_SOURCE /* F_OFD_SETLK, F_OFD_GETLK */
#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The file holds "PID [TAG]\n": who holds the lock, and what for (lockfile_tag). */
static pid_t lockfile_read(int fd, long *tag) {
  char buf[64];
  if (tag) *tag = 0;
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  char *end;
  long v = strtol(buf, &end, 10);
  if (tag) {
    long t = strtol(end, NULL, 10);
    *tag = t > 0 ? t : 0;
  }
  return v > 0 ? (pid_t)v : 0;
}

static void lockfile_write(int fd, long tag) {
  char buf[64];
  int n = tag > 0 ? snprintf(buf, sizeof buf, "%ld %ld\n", (long)getpid(), tag)
                  : snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) == n) {
    /* written */
  }
}

int lockfile_acquire(const char *path, pid_t *holder, char *err, size_t errlen, const char **code) {
  *holder = 0;
  /* readable by all: other users' reading commands ask whether a run holds it */
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open lock file %s: %s", path, strerror(errno));
    *code = errno == EACCES ? "EACCES" : "EIO";
    return -1;
  }
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  while (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    if (e == EAGAIN || e == EACCES) {
      *holder = lockfile_read(fd, NULL);
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
   * failed write leaves the lock held and the message without a pid. An older file made
   * 0600 is opened up for readers too (best effort: only its owner may). */
  (void)fchmod(fd, 0644);
  lockfile_write(fd, 0);
  return fd;
}

void lockfile_tag(int fd, long tag) {
  if (fd >= 0) lockfile_write(fd, tag);
}

void lockfile_release(int fd) {
  if (fd < 0) return;
  /* close drops the lock; truncating first would race with the next holder's write */
  close(fd);
}

int lockfile_probe(const char *path, pid_t *holder, long *tag) {
  *holder = 0;
  *tag = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  int rc = fcntl(fd, F_OFD_GETLK, &fl);
  int held = rc == 0 && fl.l_type != F_UNLCK;
  if (held) *holder = lockfile_read(fd, tag);
  close(fd);
  return rc == 0 ? held : -1;
}
