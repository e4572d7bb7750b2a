/* budget.h: the accounting behind a sandboxed call's limits: an instruction count and a
 * monotonic wall-clock deadline. Pure C; sandbox.c drives it from a Lua count hook. */
#ifndef ORKET_BUDGET_H
#define ORKET_BUDGET_H

#include <stdint.h>

typedef enum budget_verdict {
  BUDGET_OK = 0,
  BUDGET_INSTRUCTIONS, /* the instruction allowance is spent */
  BUDGET_DEADLINE      /* the wall-clock deadline has passed */
} budget_verdict;

typedef struct budget {
  uint64_t max_instructions; /* 0 = unlimited */
  uint64_t used_instructions;
  uint64_t deadline_ns;      /* absolute, CLOCK_MONOTONIC; 0 = none */
  uint64_t timeout_ms;       /* as configured, for messages */
  budget_verdict tripped;    /* sticky: once tripped a budget never recovers */
} budget;

/* Monotonic clock in nanoseconds. */
uint64_t budget_now_ns(void);

/* Starts a budget now. max_instructions 0 means unlimited; timeout_ms 0 means no deadline. */
void budget_start(budget *b, uint64_t max_instructions, uint64_t timeout_ms);

/* Charges `n` instructions and checks the deadline; returns the (sticky) verdict. */
budget_verdict budget_charge(budget *b, uint64_t n, uint64_t now_ns);

/* A sentence describing a tripped budget, written into buf (always NUL-terminated). */
const char *budget_describe(const budget *b, char *buf, unsigned long len);

#endif
