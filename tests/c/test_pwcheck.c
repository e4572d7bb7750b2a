/* test_pwcheck.c: password jobs on the loop's thread pool (core/pwcheck.c): two at once,
 * the others started in order as those end, a waiting job taken back, a running one seen
 * to its end, and a queue closed while a job runs freed after it. */
#include "check.h"
#include "pwcheck.h"
#include "tests.h"

#include <stddef.h>
#include <string.h>

typedef struct ended {
  int order[8], n;
} ended;

typedef struct tjob {
  pwjob job;
  int index;
  ended *ends;
} tjob;

static void on_done(pwjob *j) {
  tjob *tj = (tjob *)((char *)j - offsetof(tjob, job));
  tj->ends->order[tj->ends->n++] = tj->index;
}

static void job_init(tjob *tj, int index, ended *ends, const char *hash, const char *pass) {
  memset(tj, 0, sizeof *tj);
  tj->index = index;
  tj->ends = ends;
  tj->job.op = PWJOB_VERIFY;
  tj->job.pass = pass;
  tj->job.passlen = strlen(pass);
  tj->job.hashlen = strlen(hash);
  memcpy(tj->job.hash, hash, tj->job.hashlen);
  tj->job.done = on_done;
}

TEST(test_pwcheck_queue) {
  uv_loop_t loop;
  CHECK(t, uv_loop_init(&loop) == 0);
  char hash[PASSWORD_HASHMAX];
  CHECK(t, password_hash(hash, "pw-right", 8) == 0);
  pwcheck *q = pwcheck_new(&loop, 2);
  CHECK(t, q != NULL);
  ended ends = {{0}, 0};
  tjob jobs[5];
  for (int i = 0; i < 5; i++) {
    job_init(&jobs[i], i, &ends, hash, i == 4 ? "pw-right" : "pw-wrong");
    CHECK(t, pwcheck_submit(q, &jobs[i].job) == 0);
  }
  int running, waiting;
  pwcheck_counts(q, &running, &waiting);
  CHECK(t, running == 2 && waiting == 3);
  CHECK(t, pwcheck_cancel(&jobs[3].job) == 1); /* waiting: taken back */
  CHECK(t, pwcheck_cancel(&jobs[0].job) == 0); /* running: it ends on its thread */
  pwcheck_counts(q, &running, &waiting);
  CHECK(t, running == 2 && waiting == 2);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(t, ends.n == 4); /* all but the one taken back */
  CHECK(t, ends.order[0] == 0 || ends.order[0] == 1); /* the third waited for one of them */
  for (int i = 0; i < ends.n; i++) CHECK(t, ends.order[i] != 3);
  CHECK(t, jobs[4].job.rc == 1 && jobs[1].job.rc == 0 && jobs[2].job.rc == 0);
  pwcheck_counts(q, &running, &waiting);
  CHECK(t, running == 0 && waiting == 0);

  /* closed while one runs: freed after it ends (ASan tells a leak or a use after free) */
  tjob last;
  job_init(&last, 7, &ends, hash, "pw-right");
  last.job.op = PWJOB_HASH;
  CHECK(t, pwcheck_submit(q, &last.job) == 0);
  pwcheck_close(q);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(t, ends.n == 5 && ends.order[4] == 7 && last.job.rc == 0);
  CHECK(t, password_verify(last.job.hash, strlen(last.job.hash), "pw-right", 8) == 1);
  CHECK(t, uv_loop_close(&loop) == 0);
}
