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

/* A holder's line read while empty (between its lock and its write) is read again, every
 * 1 ms for at most 50 ms: its write comes microseconds after its lock. A whole line naming a
 * process not seen here is read again only twice: a killed holder's, which the next holder
 * overwrites as soon as it has the lock, or a holder's of another pid namespace (a folder
 * shared with a container), which stays: it is taken as the holder then, not waited on for
 * 50 ms at every try of a caller that waits for the lock. */
enum { LOCKFILE_READ_TRIES = 50, LOCKFILE_DEAD_READS = 3 };
#define LOCKFILE_READ_STEP_NS 1000000L

/* The file holds one line, "PID [TAG [WHAT]]\n": who holds the lock, what for (lockfile_tag: a
 * run id, 0 for none) and what kind of holder it is (a word: "run", "cancel", ...). It is
 * written in place (pwrite, then ftruncate to its length: never empty while held) and
 * emptied by its writer on release, so that a file read while held names the holder or, in
 * the moment between a new holder's lock and its write, nothing (never the one before, but
 * for one killed, whose line stays until the next holder writes: lockfile_who). */
static int lockfile_parse(const char *buf, lockfile_holder *h) {
  const char *nl = strchr(buf, '\n');
  if (!nl) return 0; /* empty, or a line still being written */
  char *end;
  long v = strtol(buf, &end, 10);
  if (v <= 0 || (*end != ' ' && *end != '\n')) return 0;
  h->pid = (pid_t)v;
  if (*end == ' ') {
    long t = strtol(end + 1, &end, 10);
    h->tag = t > 0 ? t : 0;
  }
  if (*end == ' ') {
    const char *w = end + 1;
    size_t n = 0;
    while (w + n < nl && n + 1 < sizeof h->what &&
           ((w[n] >= 'a' && w[n] <= 'z') || (w[n] >= '0' && w[n] <= '9') || w[n] == '-' || w[n] == '_'))
      n++;
    if (w + n == nl) {
      memcpy(h->what, w, n);
      h->what[n] = '\0';
    }
  }
  return 1;
}

/* One read of the holder's line: 1 when it names a pid, 0 when empty or partial. */
static int lockfile_read(int fd, lockfile_holder *h) {
  char buf[80];
  memset(h, 0, sizeof *h);
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  lockfile_holder t = {0};
  if (!lockfile_parse(buf, &t)) return 0;
  *h = t;
  return 1;
}

/* Whether the line names a live process: one killed while it held the lock left its line
 * (the kernel dropped its lock, and nobody emptied the file), which the next holder
 * overwrites a moment after it takes the lock. A pid of another pid namespace (a folder
 * shared with a container) looks dead here too, hence the caller's fallback. */
static int lockfile_fresh(const lockfile_holder *h) {
  return h->pid > 0 && (kill(h->pid, 0) == 0 || errno == EPERM);
}

static void lockfile_pause(void) {
  struct timespec ts = {0, LOCKFILE_READ_STEP_NS};
  nanosleep(&ts, NULL);
}

static void lockfile_write(int fd, long tag, const char *what) {
  char buf[80];
  int n = what && *what ? snprintf(buf, sizeof buf, "%ld %ld %.31s\n", (long)getpid(), tag > 0 ? tag : 0, what)
          : tag > 0     ? snprintf(buf, sizeof buf, "%ld %ld\n", (long)getpid(), tag)
                        : snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
  /* the new line first, then the old one's tail cut: no moment where the file is empty */
  if (n > 0 && pwrite(fd, buf, (size_t)n, 0) == n && ftruncate(fd, n) == 0) {
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

/* The holder's line, read again a few times while it is empty or names a dead process (a
 * holder between its lock and its write): *h as read last. still_held(fd) says whether to
 * go on (the lock may be freed meanwhile, and the file then stays empty). */
static void lockfile_who(int fd, lockfile_holder *h, int (*still_held)(int fd)) {
  lockfile_holder last = {0};
  int dead = 0;
  for (int i = 0; i < LOCKFILE_READ_TRIES; i++) {
    if (lockfile_read(fd, h)) {
      if (lockfile_fresh(h)) return;
      last = *h;
      if (++dead == LOCKFILE_DEAD_READS) break;
    }
    if (i + 1 == LOCKFILE_READ_TRIES || !still_held(fd)) break;
    lockfile_pause();
  }
  *h = last;
}

static int lockfile_conflicts(int fd) {
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

int lockfile_acquire(const char *path, const char *what, lockfile_holder *holder, char *err, size_t errlen,
                     const char **code) {
  memset(holder, 0, sizeof *holder);
  int fd = lockfile_open(path, err, errlen, code);
  if (fd < 0) return -1;
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  while (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    if (e == EAGAIN || e == EACCES) {
      lockfile_who(fd, holder, lockfile_conflicts);
      /* freed while its holder's line was being read: ours after all */
      if (fcntl(fd, F_OFD_SETLK, &fl) == 0) break;
      snprintf(err, errlen, "%s is locked by another process", path);
      *code = "EBUSY";
    } else {
      snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
      *code = "EIO";
    }
    close(fd);
    return -1;
  }
  memset(holder, 0, sizeof *holder);
  /* The pid is information for the next process's message, not part of the lock: a
   * failed write leaves the lock held and the message without a pid. */
  lockfile_write(fd, 0, what);
  return fd;
}

void lockfile_tag(int fd, long tag, const char *what) {
  if (fd >= 0) lockfile_write(fd, tag, what);
}

void lockfile_release(int fd) {
  if (fd < 0) return;
  /* Emptied while still held, by its writer only (a shared holder never wrote it): the next
   * holder's line then follows an empty file, never this one, so a process refused in the
   * moment before that line is written does not name this process, gone by then. */
  lockfile_holder h;
  if (lockfile_read(fd, &h) && h.pid == getpid()) (void)ftruncate(fd, 0);
  close(fd);
}

int lockfile_probe(const char *path, lockfile_holder *holder) {
  memset(holder, 0, sizeof *holder);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  int rc = fcntl(fd, F_OFD_GETLK, &fl);
  int held = rc == 0 && fl.l_type != F_UNLCK;
  if (held) {
    lockfile_who(fd, holder, lockfile_conflicts);
    /* freed while its line was read: free (what a probe a moment later would say) */
    if (!lockfile_conflicts(fd)) {
      held = 0;
      memset(holder, 0, sizeof *holder);
    }
  }
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
  if (!shared) lockfile_write(fd, 0, NULL);
  return fd;
}
