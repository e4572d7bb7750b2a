/* budget.c: instruction, deadline and per-call accounting for script calls (see
 * budget.h). Plain C and the C library's clock. */
#define _GNU_SOURCE /* CLOCK_MONOTONIC_COARSE */
#include "budget.h"

#include <stdio.h>
#include <time.h>

static uint64_t budget_clock(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t budget_now_ns(void) { return budget_clock(CLOCK_MONOTONIC); }

uint64_t budget_coarse_ns(void) { return budget_clock(CLOCK_MONOTONIC_COARSE); }

void budget_start(budget *b, uint64_t max_instructions, uint64_t timeout_ms) {
  b->max_instructions = max_instructions;
  b->used_instructions = 0;
  b->timeout_ms = timeout_ms;
  b->deadline_ns = timeout_ms ? budget_now_ns() + timeout_ms * 1000000u : 0;
  b->refused = 0;
  b->memory = 0;
  b->tripped = BUDGET_OK;
}

budget_verdict budget_check_deadline(budget *b, uint64_t now_ns) {
  if (b->tripped == BUDGET_OK && b->deadline_ns && now_ns >= b->deadline_ns)
    b->tripped = BUDGET_DEADLINE;
  return b->tripped;
}

budget_verdict budget_charge(budget *b, uint64_t n, uint64_t now_ns) {
  if (b->tripped != BUDGET_OK) return b->tripped;
  b->used_instructions += n;
  if (b->max_instructions && b->used_instructions > b->max_instructions) {
    b->tripped = BUDGET_INSTRUCTIONS;
    return b->tripped;
  }
  return budget_check_deadline(b, now_ns);
}

budget_verdict budget_charge_call(budget *b, uint64_t units, uint64_t now_ns) {
  if (b->tripped != BUDGET_OK) return b->tripped;
  if (units > BUDGET_CALL_CAP) {
    b->refused = units;
    b->tripped = BUDGET_CALL;
    return b->tripped;
  }
  return budget_charge(b, units, now_ns);
}

const char *budget_describe(const budget *b, char *buf, unsigned long len) {
  switch (b->tripped) {
  case BUDGET_INSTRUCTIONS:
    snprintf(buf, len, "instruction budget exceeded (%llu instructions)",
             (unsigned long long)b->max_instructions);
    break;
  case BUDGET_DEADLINE:
    snprintf(buf, len, "time budget exceeded (%llu ms)", (unsigned long long)b->timeout_ms);
    break;
  case BUDGET_CALL:
    snprintf(buf, len, "call budget exceeded (one call asked for %llu units of work; the limit is %llu)",
             (unsigned long long)b->refused, (unsigned long long)BUDGET_CALL_CAP);
    break;
  case BUDGET_MEMORY:
    if (b->memory)
      snprintf(buf, len, "memory limit exceeded (%llu MiB)", (unsigned long long)((b->memory + (1 << 20) - 1) >> 20));
    else
      snprintf(buf, len, "memory limit exceeded");
    break;
  default:
    snprintf(buf, len, "within budget");
  }
  return buf;
}
