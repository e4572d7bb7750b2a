/* test_statemachine.c: every (type, from, to) pair against the issue's table written out
 * independently here, and each guard with its refusal code and message. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "statemachine.h"
#include "tests.h"

/* The table from the issue, as text: "from:to,to;..." per type (archived added below). */
static const char *const expected_rows[SM_NTYPES] = {
    [SM_ISSUE] = "ready:in_progress,canceled,blocked;"
                 "in_progress:blocked,waiting_for_developer,ready_for_testing,code_review,canceled;"
                 "blocked:in_progress,ready,canceled;"
                 "waiting_for_developer:in_progress,ready,code_review,canceled;"
                 "ready_for_testing:code_review,in_progress,canceled;"
                 "code_review:done,in_progress,ready_for_testing,blocked,waiting_for_developer,canceled;",
    [SM_EPIC] = "ready:in_progress,canceled;in_progress:code_review,done,canceled;"
                "code_review:done,in_progress,canceled;",
    [SM_ROCK] = "ready:in_progress,canceled;in_progress:code_review,done,canceled;"
                "code_review:done,in_progress,canceled;",
};

static int expected(int type, int from, int to) {
  if (to == SM_ARCHIVED) return from != SM_ARCHIVED;
  char want[80];
  snprintf(want, sizeof want, "%s:", sm_status_name(from));
  const char *row = strstr(expected_rows[type], want);
  while (row && row != expected_rows[type] && row[-1] != ';') row = strstr(row + 1, want);
  if (!row) return 0;
  row += strlen(want);
  size_t len = strcspn(row, ";");
  const char *name = sm_status_name(to);
  for (const char *p = row; p < row + len;) {
    size_t n = strcspn(p, ",;");
    if (n == strlen(name) && strncmp(p, name, n) == 0) return 1;
    p += n + 1;
  }
  return 0;
}

static const char *const reviewer_roles[] = {"integrity_guard"};

/* A request that satisfies every guard, so only the table decides. */
static sm_request permissive(int type, int from, int to) {
  sm_request rq = {0};
  rq.type = sm_type_name(type);
  rq.from = sm_status_name(from);
  rq.to = sm_status_name(to);
  rq.seat = "reviewer";
  rq.roles = reviewer_roles;
  rq.nroles = 1;
  rq.worked_by = "developer";
  rq.reason = sm_needs_reason((sm_status)to) ? "input" : NULL;
  rq.deps_done = 1;
  rq.by = SM_BY_PERSON; /* a person may make every move the table has */
  return rq;
}

TEST(test_statemachine_table) {
  int allowed = 0, refused = 0;
  for (int ty = 0; ty < SM_NTYPES; ty++)
    for (int f = 0; f < SM_NSTATUS; f++)
      for (int to = 0; to < SM_NSTATUS; to++) {
        sm_request rq = permissive(ty, f, to);
        sm_verdict v;
        int ok = sm_check(&rq, &v);
        CHECK(t, sm_allowed((sm_type)ty, (sm_status)f, (sm_status)to) == expected(ty, f, to));
        if (ok != expected(ty, f, to))
          fprintf(stderr, "    %s %s -> %s: got %d (%s)\n", rq.type, rq.from, rq.to, ok,
                  v.message);
        CHECK(t, ok == expected(ty, f, to));
        if (ok) {
          allowed++;
          CHECK(t, v.code == NULL);
        } else {
          refused++;
          CHECK(t, v.code != NULL && v.message[0] != '\0');
          if (f == to) CHECK_STR(t, v.code, "ESAME");
          else if (f == SM_ARCHIVED || f == SM_DONE || f == SM_CANCELED) CHECK_STR(t, v.code, "ETERMINAL");
          else CHECK_STR(t, v.code, "ETRANSITION");
        }
      }
  /* issue: 3+5+3+4+3+6 = 24 table moves + 8 archivings; epic/rock: 2+3+3 + 8 each */
  CHECK(t, allowed == 32 + 16 + 16);
  CHECK(t, refused == 3 * 81 - allowed);
}

TEST(test_statemachine_refusal_messages) {
  sm_request rq = permissive(SM_ISSUE, SM_READY, SM_DONE);
  sm_verdict v;
  CHECK(t, !sm_check(&rq, &v));
  CHECK_STR(t, v.code, "ETRANSITION");
  CHECK_STR(t, v.message,
            "an issue cannot go from ready to done; from ready it may go to in_progress, "
            "blocked, canceled or archived");
  rq = permissive(SM_EPIC, SM_DONE, SM_READY);
  CHECK(t, !sm_check(&rq, &v));
  CHECK_STR(t, v.code, "ETERMINAL");
  CHECK(t, strstr(v.message, "the epic is done, which is final; it may only go to archived") != NULL);
  rq = permissive(SM_ROCK, SM_READY, SM_READY);
  CHECK(t, !sm_check(&rq, &v));
  CHECK_STR(t, v.code, "ESAME");
}

TEST(test_statemachine_wait_reasons) {
  sm_verdict v;
  for (int to = SM_BLOCKED; to <= SM_WAITING_FOR_DEVELOPER; to++) {
    sm_request rq = permissive(SM_ISSUE, SM_IN_PROGRESS, to);
    rq.reason = NULL;
    CHECK(t, !sm_check(&rq, &v));
    CHECK_STR(t, v.code, "EREASON_REQUIRED");
    CHECK(t, strstr(v.message, "needs a wait reason") != NULL);
    rq.reason = "boredom";
    CHECK(t, !sm_check(&rq, &v));
    CHECK_STR(t, v.code, "EREASON_INVALID");
    CHECK(t, strstr(v.message, "\"boredom\"") != NULL);
    for (int r = 0; r < SM_NREASON; r++) {
      rq.reason = sm_reason_name(r);
      CHECK(t, sm_check(&rq, &v));
    }
  }
  sm_request rq = permissive(SM_ISSUE, SM_READY, SM_IN_PROGRESS);
  rq.reason = "input";
  CHECK(t, !sm_check(&rq, &v));
  CHECK_STR(t, v.code, "EREASON_UNEXPECTED");
  CHECK(t, sm_reason_parse("system") == SM_REASON_SYSTEM && sm_reason_parse("x") == -1);
  /* budget: the engine's reason for a card a money budget stopped; a model may not claim it */
  CHECK(t, sm_reason_parse("budget") == SM_REASON_BUDGET);
  rq = permissive(SM_ISSUE, SM_IN_PROGRESS, SM_WAITING_FOR_DEVELOPER);
  rq.reason = "budget";
  rq.by = SM_BY_ENGINE;
  CHECK(t, sm_check(&rq, &v));
  rq.by = SM_BY_AGENT;
  CHECK(t, !sm_check(&rq, &v));
  CHECK_STR(t, v.code, "EREASON_INVALID");
  CHECK(t, strstr(v.message, "the wait reason budget is the engine's") != NULL);
}

TEST(test_statemachine_dependencies) {
  sm_verdict v;
  int froms[] = {SM_READY, SM_BLOCKED, SM_WAITING_FOR_DEVELOPER, SM_READY_FOR_TESTING,
                 SM_CODE_REVIEW};
  for (size_t i = 0; i < sizeof froms / sizeof froms[0]; i++) {
    sm_request rq = permissive(SM_ISSUE, froms[i], SM_IN_PROGRESS);
    rq.deps_done = 0;
    CHECK(t, !sm_check(&rq, &v));
    CHECK_STR(t, v.code, "EDEPENDENCY");
    CHECK(t, strstr(v.message, "finish the dependencies first") != NULL);
  }
  /* Undone dependencies do not stop cancelling, blocking or archiving. */
  sm_request rq = permissive(SM_ISSUE, SM_READY, SM_CANCELED);
  rq.deps_done = 0;
  CHECK(t, sm_check(&rq, &v));
  rq = permissive(SM_ISSUE, SM_READY, SM_BLOCKED);
  rq.deps_done = 0;
  CHECK(t, sm_check(&rq, &v));
}

TEST(test_statemachine_review_guards) {
  sm_verdict v;
  sm_request rq = permissive(SM_ISSUE, SM_CODE_REVIEW, SM_DONE);
  const char *dev_roles[] = {"senior_developer", "lead_architect"};
  rq.roles = dev_roles;
  rq.nroles = 2;
  CHECK(t, !sm_check(&rq, &v));
  CHECK_STR(t, v.code, "EREVIEWER");
  CHECK(t, strstr(v.message, "integrity_guard") != NULL);
  rq.nroles = 0;
  CHECK(t, !sm_check(&rq, &v));
  CHECK_STR(t, v.code, "EREVIEWER");
  rq = permissive(SM_ISSUE, SM_CODE_REVIEW, SM_DONE);
  rq.seat = "developer"; /* the seat that did the work, even holding the reviewer role */
  CHECK(t, !sm_check(&rq, &v));
  CHECK_STR(t, v.code, "ESELF_REVIEW");
  CHECK(t, strstr(v.message, "seat developer did the work") != NULL);
  rq.worked_by = NULL; /* nobody recorded: a reviewer may close it */
  CHECK(t, sm_check(&rq, &v));
  /* Epics and rocks have no reviewer guard. */
  rq = permissive(SM_EPIC, SM_CODE_REVIEW, SM_DONE);
  rq.nroles = 0;
  CHECK(t, sm_check(&rq, &v));
}

TEST(test_statemachine_unknown_names) {
  sm_verdict v;
  sm_request rq = permissive(SM_ISSUE, SM_READY, SM_IN_PROGRESS);
  rq.type = "story";
  CHECK(t, !sm_check(&rq, &v));
  CHECK_STR(t, v.code, "ETYPE");
  rq = permissive(SM_ISSUE, SM_READY, SM_IN_PROGRESS);
  rq.to = "finished";
  CHECK(t, !sm_check(&rq, &v));
  CHECK_STR(t, v.code, "ESTATUS");
  CHECK(t, strstr(v.message, "\"finished\"") != NULL);
  rq.to = NULL;
  CHECK(t, !sm_check(&rq, &v));
  CHECK_STR(t, v.code, "ESTATUS");
  CHECK(t, sm_status_name(SM_NSTATUS) == NULL && sm_status_parse(NULL) == -1);
  int n = 0;
  while (sm_codes[n]) n++;
  CHECK(t, n == 13);
}

/* Agents (the zero value) never cancel or archive, and a reviewer in code_review only
 * approves or sends back; the engine and a person may. */
TEST(test_statemachine_actors) {
  sm_verdict v;
  int froms[] = {SM_READY, SM_IN_PROGRESS, SM_BLOCKED, SM_WAITING_FOR_DEVELOPER,
                 SM_READY_FOR_TESTING, SM_CODE_REVIEW};
  for (int ty = 0; ty < SM_NTYPES; ty++)
    for (size_t i = 0; i < sizeof froms / sizeof froms[0]; i++)
      for (int to = SM_CANCELED; to <= SM_ARCHIVED; to++) {
        sm_request rq = permissive(ty, froms[i], to);
        if (!sm_allowed((sm_type)ty, (sm_status)froms[i], (sm_status)to)) continue;
        CHECK(t, sm_check(&rq, &v));
        rq.by = SM_BY_ENGINE;
        CHECK(t, sm_check(&rq, &v));
        rq.by = SM_BY_AGENT;
        CHECK(t, !sm_check(&rq, &v));
        CHECK_STR(t, v.code, "EPERSON");
        CHECK(t, strstr(v.message, "orket cancel") != NULL);
      }
  /* a request with the field left out, as a designated initializer writes it */
  sm_request rq = {.type = "issue", .from = "done", .to = "archived", .deps_done = 1};
  CHECK(t, !sm_check(&rq, &v));
  CHECK_STR(t, v.code, "EPERSON");
  /* code_review: done and in_progress only, for an agent */
  for (int to = 0; to < SM_NSTATUS; to++) {
    rq = permissive(SM_ISSUE, SM_CODE_REVIEW, to);
    if (!sm_allowed(SM_ISSUE, SM_CODE_REVIEW, (sm_status)to)) continue;
    rq.by = SM_BY_AGENT;
    int ok = sm_check(&rq, &v);
    CHECK(t, ok == (to == SM_DONE || to == SM_IN_PROGRESS));
    if (!ok && to != SM_CANCELED && to != SM_ARCHIVED) CHECK_STR(t, v.code, "EREVIEW_DECISION");
    rq.by = SM_BY_ENGINE;
    CHECK(t, sm_check(&rq, &v));
  }
  CHECK(t, sm_by_parse("person") == SM_BY_PERSON && sm_by_parse("root") == -1);
  CHECK(t, sm_by_name(SM_BY_AGENT) != NULL && sm_by_name(SM_NBY) == NULL);
}
