/* floor.h: the clocks the C floors of the benchmarks read (bench/gitfloor.c,
 * bench/w2floor.c): wall time on CLOCK_MONOTONIC and this process's CPU time, both in
 * microseconds, as the Lua side's figures are. */
#ifndef ORKET_BENCH_FLOOR_H
#define ORKET_BENCH_FLOOR_H
#include <sys/resource.h>
#include <time.h>

static inline long long floor_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* user + system, all threads */
static inline long long floor_cpu_us(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (long long)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}
#endif
