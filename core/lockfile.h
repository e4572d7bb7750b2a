/* lockfile.h: an advisory lock on a file (an open file description lock), exclusive or
 * shared, held while the descriptor is open. The kernel drops it when the process dies, even by kill -9,
 * so a crashed run never leaves a stale lock behind. Used to keep two `orket run`s off one
 * project's board, and to tell a run that is going from one that was killed. */
#ifndef ORKET_LOCKFILE_H
#define ORKET_LOCKFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Who holds a lock, as its holder wrote it in the file: pid (0 if unknown), tag (0 if none)
 * and what (a word naming the kind of holder, "" if none). */
typedef struct lockfile_holder {
  pid_t pid;
  long tag;
  char what[32];
} lockfile_holder;

/* Opens (creating, mode 0600) and locks path without waiting. On success returns the
 * descriptor and writes this process id and what (a word of [a-z0-9_-], or NULL) into the
 * file, for the message another process shows. When another process holds the lock returns
 * -1 with *holder as that process wrote it (read again for a moment while the file is empty:
 * the holder writes it just after it takes the lock) and *code "EBUSY"; on any other failure
 * -1 with err filled and *code set. */
int lockfile_acquire(const char *path, const char *what, lockfile_holder *holder, char *err, size_t errlen,
                     const char **code);

/* Takes the lock on path (creating the file, mode 0600), shared (any number of holders) or
 * exclusive (one holder, no shared ones), waiting at most timeout_ms (0: not at all). The
 * wait blocks the calling thread (a helper thread sleeps in the kernel's queue for the
 * lock, so it is handed over as soon as it is free); an exclusive taker that waits keeps new
 * shared holders out, so they cannot starve it. The exclusive holder writes its pid into
 * the file. Returns the descriptor (release it with lockfile_release), or -1 with *code
 * "EBUSY" when it stayed held, other codes (err filled) on any other failure. A process
 * holding this lock through one descriptor that asks for a conflicting one through another
 * waits for itself: release first. */
int lockfile_wait(const char *path, int shared, int timeout_ms, char *err, size_t errlen, const char **code);

/* Releases the lock and closes the descriptor; the file is emptied first when this process
 * wrote it (an exclusive holder), so that the next holder's line never follows this one's. */
void lockfile_release(int fd);

/* Writes what the lock is held for (a positive number, e.g. a run id) and what kind of holder
 * this is (as lockfile_acquire's what) next to the pid, in place: never empty meanwhile. */
void lockfile_tag(int fd, long tag, const char *what);

/* Whether another process holds the lock on path, without taking it: 1 (with *holder as it
 * wrote it, read as lockfile_acquire reads it), 0 (free, or no such file), -1 on error
 * (errno). */
int lockfile_probe(const char *path, lockfile_holder *holder);

#endif
