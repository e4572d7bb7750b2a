/* pgfloor.c: the floor of bench/pg.lua: one blocking libpq client (PQexecParams) doing the
 * same round trip as the bench's figure, `SELECT $1::int8`, n times on one connection.
 * Prints the mean microseconds per round trip. Usage: pgfloor CONNINFO N */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <libpq-fe.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: pgfloor CONNINFO N\n");
    return 2;
  }
  long n = strtol(argv[2], NULL, 10);
  PGconn *c = PQconnectdb(argv[1]);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "pgfloor: %s", PQerrorMessage(c));
    PQfinish(c);
    return 1;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i++) {
    char v[32];
    snprintf(v, sizeof v, "%ld", i);
    const char *values[1] = {v};
    PGresult *r = PQexecParams(c, "SELECT $1::int8 AS v", 1, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      fprintf(stderr, "pgfloor: %s", PQresultErrorMessage(r));
      PQclear(r);
      PQfinish(c);
      return 1;
    }
    PQclear(r);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3;
  printf("%.3f\n", us / (double)n);
  PQfinish(c);
  return 0;
}
