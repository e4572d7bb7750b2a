/* confine_main.c: `orket-confine`, the confinement helper as a binary of its own (see
 * confine.h). The runner (proc.c) execs it for every program it runs; it links only
 * confine.o and libseccomp, so its exec maps two libraries instead of Orket's sixteen,
 * which was most of a run's cost above a bare spawn. */
#include "confine.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], CONFINE_ARG) == 0) confine_main(argc, argv);
  fputs("orket-confine: Orket's process runner starts this helper itself; it is not run by hand\n", stderr);
  return 2;
}
