/* pwcheck.h: Argon2id hashes made and checked (password.h) on the loop's thread pool, a
 * few at a time. One costs a good fraction of a second of CPU: on the loop it would stop
 * every other client and run for that long, so it runs on the pool. The pool is libuv's
 * (4 threads unless UV_THREADPOOL_SIZE says more), shared with file, DNS and LDAP work, so
 * at most `running` run at once and the others wait their turn in order: a flood of
 * sign-ins queues behind itself and leaves the rest of the pool free. What waits costs
 * only its job (the password's copy); the caller bounds how many it submits (a server:
 * its connections). Knows nothing of Lua. */
#ifndef ORKET_PWCHECK_H
#define ORKET_PWCHECK_H

#include <stddef.h>

#include <uv.h>

#include "password.h"

#define PWCHECK_RUNNING 2 /* two of the pool's four threads at most */

typedef struct pwcheck pwcheck;
typedef struct pwjob pwjob;
/* Called on the loop's thread when the job ended (or could not start: rc < 0). */
typedef void (*pwjob_done_fn)(pwjob *j);

enum { PWJOB_HASH, PWJOB_VERIFY };

struct pwjob {
  int op;                       /* PWJOB_HASH or PWJOB_VERIFY */
  const char *pass;             /* the caller's, valid until done */
  size_t passlen;
  char hash[PASSWORD_HASHMAX];  /* VERIFY: the hash to check (hashlen bytes); HASH: made here */
  size_t hashlen;
  pwjob_done_fn done;
  int rc;                       /* HASH: 0 | -1 (no memory); VERIFY: 1 match | 0; < 0: a uv error */
  /* the queue's own */
  uv_work_t work;
  pwcheck *q;
  pwjob *next;
  int running;
};

/* A queue on loop letting `running` jobs run at once; NULL when out of memory. */
pwcheck *pwcheck_new(uv_loop_t *loop, int running);

/* Queues j (op, pass, hash and done set): it starts at once when fewer than `running` run,
 * else after those queued before it. 0, or a uv error when it could not start (then done
 * is not called). */
int pwcheck_submit(pwcheck *q, pwjob *j);

/* Takes back a job that has not started: 1, and done is never called; 0 when it runs (its
 * thread cannot be stopped): done is called when it ends. */
int pwcheck_cancel(pwjob *j);

/* The owner lets go of q: freed at once when nothing runs, else when the last running job
 * ends (after its done). No job may still wait (cancel them first). */
void pwcheck_close(pwcheck *q);

/* Whether q was closed (its owner gone): a job's done must then touch nothing of it. */
int pwcheck_closed(const pwcheck *q);

/* How many run and how many wait. */
void pwcheck_counts(const pwcheck *q, int *running, int *waiting);

#endif
