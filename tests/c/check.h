/* check.h: a minimal unit-test harness for the C core. A test is a function registered in
 * test_main.c's list; CHECK records a failure with file:line and carries on. */
#ifndef ORKET_CHECK_H
#define ORKET_CHECK_H

#include <stdio.h>
#include <string.h>

typedef struct check_ctx {
  int failures; /* within the current test */
  int skipped;  /* set by SKIP: the test could not run here; counted apart, never as passed */
} check_ctx;

#define SKIP(T, ...)                 \
  do {                               \
    printf("  skipped: " __VA_ARGS__); \
    printf("\n");                    \
    (T)->skipped = 1;                \
  } while (0)

#define CHECK(T, cond)                                                           \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "    %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      (T)->failures++;                                                           \
    }                                                                            \
  } while (0)

#define CHECK_STR(T, a, b)                                                          \
  do {                                                                              \
    const char *a_ = (a), *b_ = (b);                                                \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                          \
      fprintf(stderr, "    %s:%d: expected \"%s\", got \"%s\"\n", __FILE__, __LINE__, \
              b_ ? b_ : "(null)", a_ ? a_ : "(null)");                              \
      (T)->failures++;                                                              \
    }                                                                               \
  } while (0)

typedef void (*check_fn)(check_ctx *t);
typedef struct check_case {
  const char *name;
  check_fn fn;
} check_case;

#define TEST(name) void name(check_ctx *t)

#endif
