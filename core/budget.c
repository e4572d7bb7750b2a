/* budget.c: instruction and deadline accounting for sandboxed calls (see budget.h). */
#define _POSIX_C_SOURCE 200809L
#include "budget.h"

#include <stdio.h>
#include <time.h>

uint64_t budget_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void budget_start(budget *b, uint64_t max_instructions, uint64_t timeout_ms) {
  b->max_instructions = max_instructions;
  b->used_instructions = 0;
  b->timeout_ms = timeout_ms;
  b->deadline_ns = timeout_ms ? budget_now_ns() + timeout_ms * 1000000u : 0;
  b->tripped = BUDGET_OK;
}

budget_verdict budget_charge(budget *b, uint64_t n, uint64_t now_ns) {
  if (b->tripped != BUDGET_OK) return b->tripped;
  b->used_instructions += n;
  if (b->max_instructions && b->used_instructions > b->max_instructions)
    b->tripped = BUDGET_INSTRUCTIONS;
  else if (b->deadline_ns && now_ns >= b->deadline_ns)
    b->tripped = BUDGET_DEADLINE;
  return b->tripped;
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
  default:
    snprintf(buf, len, "within budget");
  }
  return buf;
}
