/* lockfile.c: advisory locks on files (see lockfile.h): an open file description lock
 * (fcntl F_OFD_SETLK) on a descriptor opened with O_CLOEXEC, so child processes (tools,
 * model servers) never inherit it. Unlike flock, another process can ask whether it is held
 * without taking it (F_OFD_GETLK), which lockfile_probe does; unlike classic POSIX locks,
 * closing some other descriptor of the file does not drop it. lockfile_wait's bounded wait
 * blocks in F_OFD_SETLKW on a helper thread (pthreads), so the kernel hands the lock over
 * the moment it is free. */
#define _GNU_SOURCE /* F_OFD_SETLK, F_OFD_GETLK */
#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
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

/* The owner's alone: whoever may read a lock file may hold a shared lock on it, and so keep
 * every exclusive taker (a run, a worker) waiting. An older file made 0644 is tightened
 * (best effort: only its owner may). */
static int lockfile_open(const char *path, char *err, size_t errlen, const char **code) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int e = errno;
    snprintf(err, errlen, "cannot open lock file %s: %s", path, strerror(e));
    /* a full disk (no inode or directory block for the file) or a read-only one is the
     * host's, said as such: an EIO read as a refusal, and a full disk went unnamed */
    *code = e == EACCES ? "EACCES" : (e == ENOSPC || e == EDQUOT) ? "ENOSPC" : e == EROFS ? "EROFS" : "EIO";
    return fd;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0 && st.st_uid == geteuid()) (void)fchmod(fd, 0600);
  return fd;
}

int lockfile_acquire(const char *path, pid_t *holder, char *err, size_t errlen, const char **code) {
  *holder = 0;
  int fd = lockfile_open(path, err, errlen, code);
  if (fd < 0) return -1;
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
   * failed write leaves the lock held and the message without a pid. */
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

/* ---- shared and exclusive, waiting ---------------------------------------------------------
 * Two bytes of the file: byte 0 is the lock itself (read-locked by each shared holder,
 * write-locked by the exclusive one); byte 1 is a turnstile. An exclusive taker write-locks
 * the turnstile first and keeps it, so while it waits for the shared holders to leave no new
 * one comes in (they read-lock the turnstile, briefly, on their way to byte 0): a stream of
 * shared holders cannot starve it. A lock on the whole file (lockfile_acquire) conflicts with
 * both bytes. */

enum { LF_GATE = 1, LF_BYTE = 0 };

static int lockfile_range(int fd, int cmd, short type, off_t start) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1};
  int rc;
  while ((rc = fcntl(fd, cmd, &fl)) != 0 && errno == EINTR) {
  }
  return rc;
}

/* Takes the lock with cmd (F_OFD_SETLK: without waiting, F_OFD_SETLKW: waiting): 0, or -1
 * with errno (EAGAIN when held). On failure nothing this call took stays held. */
static int lockfile_take(int fd, int shared, int cmd) {
  int e;
  if (lockfile_range(fd, cmd, shared ? F_RDLCK : F_WRLCK, LF_GATE) != 0) return -1;
  if (lockfile_range(fd, cmd, shared ? F_RDLCK : F_WRLCK, LF_BYTE) != 0) {
    e = errno;
    (void)lockfile_range(fd, F_OFD_SETLK, F_UNLCK, LF_GATE);
    errno = e;
    return -1;
  }
  if (shared) (void)lockfile_range(fd, F_OFD_SETLK, F_UNLCK, LF_GATE);
  return 0;
}

typedef struct lockfile_waiter {
  int fd, shared, rc, err, done;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} lockfile_waiter;

/* The helper thread: blocks in F_OFD_SETLKW (a cancellation point: a timed-out wait is
 * cancelled there) and says how it went. */
static void *lockfile_wait_thread(void *arg) {
  lockfile_waiter *w = arg;
  int rc = lockfile_take(w->fd, w->shared, F_OFD_SETLKW);
  int e = errno;
  pthread_mutex_lock(&w->mu);
  w->rc = rc;
  w->err = e;
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* Waits on a helper thread until the lock is taken or timeout_ms passed: 0, or -1 with errno
 * (EAGAIN on timeout). A wait cancelled after the kernel granted the lock keeps it. */
static int lockfile_wait_blocking(int fd, int shared, int timeout_ms) {
  lockfile_waiter w = {.fd = fd, .shared = shared, .rc = -1, .err = EAGAIN};
  pthread_condattr_t ca;
  struct timespec deadline;
  pthread_t th;
  if (pthread_condattr_init(&ca) != 0) return errno = ENOMEM, -1;
  int ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&w.cv, &ca) == 0;
  pthread_condattr_destroy(&ca);
  if (!ok) return errno = ENOMEM, -1;
  if (pthread_mutex_init(&w.mu, NULL) != 0) {
    pthread_cond_destroy(&w.cv);
    return errno = ENOMEM, -1;
  }
  /* the helper runs no signal handler: the process's signals stay with its other threads
   * (the mask is inherited; pthread_cancel's own signal cannot be blocked) */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&th, NULL, lockfile_wait_thread, &w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return errno = rc, -1;
  }
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&w.mu);
  int wrc = 0;
  while (!w.done && wrc != ETIMEDOUT) wrc = pthread_cond_timedwait(&w.cv, &w.mu, &deadline);
  int done = w.done;
  pthread_mutex_unlock(&w.mu);
  if (!done) pthread_cancel(th);
  pthread_join(th, NULL);
  /* joined: w is ours alone again */
  rc = w.done ? w.rc : -1;
  int e = w.done ? w.err : EAGAIN;
  pthread_mutex_destroy(&w.mu);
  pthread_cond_destroy(&w.cv);
  errno = e;
  return rc;
}

int lockfile_wait(const char *path, int shared, int timeout_ms, char *err, size_t errlen, const char **code) {
  int fd = lockfile_open(path, err, errlen, code);
  if (fd < 0) return -1;
  int rc = lockfile_take(fd, shared, F_OFD_SETLK);
  if (rc != 0 && (errno == EAGAIN || errno == EACCES) && timeout_ms > 0)
    rc = lockfile_wait_blocking(fd, shared, timeout_ms);
  if (rc != 0) {
    int e = errno;
    if (e == EAGAIN || e == EACCES) {
      snprintf(err, errlen, "%s stayed locked by another process", path);
      *code = "EBUSY";
    } else {
      snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
      *code = "EIO";
    }
    close(fd); /* drops whatever a cancelled wait took */
    return -1;
  }
  /* only the exclusive holder says who it is: shared holders would overwrite each other */
  if (!shared) lockfile_write(fd, 0);
  return fd;
}
