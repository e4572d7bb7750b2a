/* test_main.c: runs every C unit test and prints "c: N passed, N failed". */
#include <stdio.h>

#include "check.h"
#include "tests.h"

static const check_case cases[] = {
#define X(name) {#name, name},
    ORKET_C_TESTS(X)
#undef X
    {NULL, NULL},
};

int main(int argc, char **argv) {
  int passed = 0, failed = 0, skipped = 0;
  /* a failing check's line (stderr) lands beside its test's name, written to a file too */
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (const check_case *c = cases; c->name; c++) {
    if (argc > 1 && strstr(c->name, argv[1]) == NULL) continue;
    check_ctx t = {0};
    c->fn(&t);
    if (t.failures) {
      failed++;
      printf("  FAIL %s\n", c->name);
    } else if (t.skipped) {
      skipped++;
      printf("  skip %s\n", c->name);
    } else {
      passed++;
      printf("  ok   %s\n", c->name);
    }
  }
  printf("c: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed ? 1 : 0;
}
