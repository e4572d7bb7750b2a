/* budget.h: the accounting behind a script call's limits: an instruction count, a
 * monotonic wall-clock deadline, and a cap on the work one C call may do. Pure C;
 * scriptenv.c drives it from Lua hooks and from the functions that charge their work. */
#ifndef ORKET_BUDGET_H
#define ORKET_BUDGET_H

#include <stdint.h>

/* The most units of work (elements moved, repetitions made, ...) one call of a C function
 * may do inside a script environment, budget or not: about a tenth of a second at worst. */
#define BUDGET_CALL_CAP (UINT64_C(1) << 22)

typedef enum budget_verdict {
  BUDGET_OK = 0,
  BUDGET_INSTRUCTIONS, /* the instruction allowance is spent */
  BUDGET_DEADLINE,     /* the wall-clock deadline has passed */
  BUDGET_CALL,         /* one call asked for more work than BUDGET_CALL_CAP */
  BUDGET_MEMORY        /* the memory ceiling was passed (scriptenv.c sets it; memcap.h) */
} budget_verdict;

typedef struct budget {
  uint64_t max_instructions; /* 0 = unlimited */
  uint64_t used_instructions;
  uint64_t deadline_ns;      /* absolute, CLOCK_MONOTONIC; 0 = none */
  uint64_t timeout_ms;       /* as configured, for messages */
  uint64_t refused;          /* the work a refused call asked for, for messages */
  uint64_t memory;           /* the memory budget in bytes, for messages (0: none given) */
  budget_verdict tripped;    /* sticky: once tripped a budget never recovers */
} budget;

/* Monotonic clock in nanoseconds. */
uint64_t budget_now_ns(void);

/* The same clock at tick resolution (a few ms) and a fraction of the cost, for checks
 * made on every function call. */
uint64_t budget_coarse_ns(void);

/* Starts a budget now. max_instructions 0 means unlimited; timeout_ms 0 means no deadline. */
void budget_start(budget *b, uint64_t max_instructions, uint64_t timeout_ms);

/* Charges `n` instructions and checks the deadline; returns the (sticky) verdict. */
budget_verdict budget_charge(budget *b, uint64_t n, uint64_t now_ns);

/* Checks the deadline alone. */
budget_verdict budget_check_deadline(budget *b, uint64_t now_ns);

/* Before a C call does `units` of work: refuses more than BUDGET_CALL_CAP (tripping the
 * budget with BUDGET_CALL), else charges them as instructions and checks the deadline. */
budget_verdict budget_charge_call(budget *b, uint64_t units, uint64_t now_ns);

/* A sentence describing a tripped budget, written into buf (always NUL-terminated). */
const char *budget_describe(const budget *b, char *buf, unsigned long len);

#endif
