/* test_budget.c: instruction, deadline and per-call accounting. */
#include <string.h>

#include "budget.h"
#include "check.h"
#include "tests.h"

TEST(test_budget_instructions) {
  budget b;
  budget_start(&b, 2500, 0);
  uint64_t now = budget_now_ns();
  CHECK(t, budget_charge(&b, 1000, now) == BUDGET_OK);
  CHECK(t, budget_charge(&b, 1000, now) == BUDGET_OK);
  CHECK(t, budget_charge(&b, 1000, now) == BUDGET_INSTRUCTIONS);
  char buf[128];
  CHECK_STR(t, budget_describe(&b, buf, sizeof buf), "instruction budget exceeded (2500 instructions)");
}

TEST(test_budget_deadline) {
  budget b;
  budget_start(&b, 0, 50);
  CHECK(t, b.deadline_ns > 0);
  CHECK(t, budget_charge(&b, 1000000, b.deadline_ns - 1) == BUDGET_OK); /* 0: unlimited count */
  CHECK(t, budget_charge(&b, 1, b.deadline_ns) == BUDGET_DEADLINE);
  char buf[128];
  CHECK_STR(t, budget_describe(&b, buf, sizeof buf), "time budget exceeded (50 ms)");
}

TEST(test_budget_sticky) {
  budget b;
  budget_start(&b, 10, 0);
  CHECK(t, budget_charge(&b, 11, 0) == BUDGET_INSTRUCTIONS);
  /* a tripped budget stays tripped whatever comes next */
  CHECK(t, budget_charge(&b, 0, 0) == BUDGET_INSTRUCTIONS);
  budget_start(&b, 0, 0);
  CHECK(t, budget_charge(&b, 1u << 30, budget_now_ns()) == BUDGET_OK);
}

/* One call may not ask for more than BUDGET_CALL_CAP units of work, budget or not; within
 * the cap the work is charged as instructions and the deadline is checked. */
TEST(test_budget_call_cap) {
  budget b;
  budget_start(&b, 0, 0);
  CHECK(t, budget_charge_call(&b, BUDGET_CALL_CAP, budget_now_ns()) == BUDGET_OK);
  CHECK(t, budget_charge_call(&b, BUDGET_CALL_CAP + 1, budget_now_ns()) == BUDGET_CALL);
  char buf[160];
  CHECK(t, strstr(budget_describe(&b, buf, sizeof buf), "call budget exceeded") != NULL);
  CHECK(t, budget_charge(&b, 0, 0) == BUDGET_CALL); /* sticky */
  budget_start(&b, 100, 0);
  CHECK(t, budget_charge_call(&b, 101, budget_now_ns()) == BUDGET_INSTRUCTIONS);
  budget_start(&b, 0, 50);
  CHECK(t, budget_check_deadline(&b, b.deadline_ns - 1) == BUDGET_OK);
  CHECK(t, budget_charge_call(&b, 1, b.deadline_ns) == BUDGET_DEADLINE);
  /* the coarse clock runs with the precise one, within a tick */
  uint64_t fine = budget_now_ns(), coarse = budget_coarse_ns();
  CHECK(t, coarse + 100000000u > fine && coarse < fine + 100000000u);
}
