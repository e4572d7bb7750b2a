/* pwcheck.c: password hashes made and checked on the loop's thread pool, a few at a time
 * (pwcheck.h). */
#include "pwcheck.h"

#include <stdlib.h>

struct pwcheck {
  uv_loop_t *loop;
  int max, running, waiting, closed;
  pwjob *head, *tail; /* waiting, oldest first */
};

pwcheck *pwcheck_new(uv_loop_t *loop, int running) {
  pwcheck *q = calloc(1, sizeof *q);
  if (q == NULL) return NULL;
  q->loop = loop;
  q->max = running < 1 ? 1 : running;
  return q;
}

/* on a thread of the pool: nothing but the job */
static void pw_work(uv_work_t *w) {
  pwjob *j = w->data;
  if (j->op == PWJOB_HASH)
    j->rc = password_hash(j->hash, j->pass, j->passlen);
  else
    j->rc = password_verify(j->hash, j->hashlen, j->pass, j->passlen);
}

static void pw_after(uv_work_t *w, int status);

static int pw_start(pwcheck *q, pwjob *j) {
  j->work.data = j;
  int rc = uv_queue_work(q->loop, &j->work, pw_work, pw_after);
  if (rc == 0) {
    j->running = 1;
    q->running++;
  }
  return rc;
}

/* Starts waiting jobs, oldest first, while there is room. */
static void pw_start_waiting(pwcheck *q) {
  while (!q->closed && q->running < q->max && q->head != NULL) {
    pwjob *j = q->head;
    q->head = j->next;
    if (q->head == NULL) q->tail = NULL;
    j->next = NULL;
    q->waiting--;
    int rc = pw_start(q, j);
    if (rc != 0) {
      j->rc = rc;
      j->done(j);
    }
  }
}

static void pw_after(uv_work_t *w, int status) {
  pwjob *j = w->data;
  pwcheck *q = j->q;
  if (status != 0) j->rc = status; /* UV_ECANCELED: never asked for, but a job not run is no match */
  q->running--;
  pw_start_waiting(q); /* before done: what done queues comes after those already waiting */
  /* still running until now: a waiting job failing to start calls its done, whose Lua may
   * cancel this one; cancelled while running, it is flagged, never freed before its done */
  j->running = 0;
  j->done(j); /* may free j */
  if (q->closed && q->running == 0) free(q);
}

int pwcheck_submit(pwcheck *q, pwjob *j) {
  j->q = q;
  j->next = NULL;
  j->running = 0;
  if (q->running < q->max && q->head == NULL) return pw_start(q, j);
  if (q->tail != NULL)
    q->tail->next = j;
  else
    q->head = j;
  q->tail = j;
  q->waiting++;
  return 0;
}

int pwcheck_cancel(pwjob *j) {
  if (j->running) return 0;
  pwcheck *q = j->q;
  if (q == NULL) return 1; /* never submitted */
  pwjob *prev = NULL;
  for (pwjob *p = q->head; p != NULL; prev = p, p = p->next) {
    if (p != j) continue;
    if (prev != NULL)
      prev->next = j->next;
    else
      q->head = j->next;
    if (q->tail == j) q->tail = prev;
    j->next = NULL;
    q->waiting--;
    return 1;
  }
  return 1; /* neither running nor waiting: over */
}

int pwcheck_closed(const pwcheck *q) { return q->closed; }

void pwcheck_close(pwcheck *q) {
  if (q == NULL) return;
  q->closed = 1;
  if (q->running == 0) free(q);
}

void pwcheck_counts(const pwcheck *q, int *running, int *waiting) {
  *running = q->running;
  *waiting = q->waiting;
}
