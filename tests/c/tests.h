/* tests.h: the list of C unit tests. Add a test: write TEST(name) in a tests/c/ source file and
 * add X(name) here. */
#ifndef ORKET_TESTS_H
#define ORKET_TESTS_H

#include "check.h"

#define ORKET_C_TESTS(X)                 \
  X(test_memcap_counts)                  \
  X(test_memcap_ceiling)                 \
  X(test_memcap_nested)                  \
  X(test_budget_instructions)            \
  X(test_budget_deadline)                \
  X(test_budget_sticky)                  \
  X(test_runtime_open_close)             \
  X(test_runtime_pcall_traceback)        \
  X(test_runtime_pcall_nonstring)        \
  X(test_runtime_find_home)              \
  X(test_runtime_memory_bomb_contained)

#define X(name) TEST(name);
ORKET_C_TESTS(X)
#undef X

#endif
