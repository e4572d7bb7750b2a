/* check.h: a minimal unit-test harness for the C core. A test is a function registered in
 * test_main.c's list; CHECK records a failure with file:line and carries on. */
#ifndef ORKET_CHECK_H
#define ORKET_CHECK_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* The build directory the tests run from (build, or build-asan under make asan), named as a
 * path relative to the source tree: the test binary's own directory, read from /proc. Writes
 * "" when it cannot be told. */
static inline void check_build_dir(char *out, size_t outlen) {
  char exe[4096], cwd[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  out[0] = '\0';
  if (n <= 0 || getcwd(cwd, sizeof cwd) == NULL) return;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  size_t c = strlen(cwd);
  if (slash == NULL || strncmp(exe, cwd, c) != 0 || exe[c] != '/') return;
  *slash = '\0';
  snprintf(out, outlen, "%s", exe + c + 1);
}

#endif
