/* health.h: orket serve's GET /health, answered whole inside libmicrohttpd's callback
 * (docs/serve.md, "/health"): the per-address rate limit (ratelimit.h, the buckets the
 * Lua side takes from for every other route), CORS for the allowed origins, one kept
 * answer (an httpd blob), the request's log line (jsonout.h) and its metrics counted
 * here. What it does not settle it declines, and the request goes the Lua way: a Host on
 * the apps' origin (an app's, or to be told apart there) and an address out of tokens
 * (answered 429 there, with the same bucket). Pure C, knows nothing of Lua. */
#ifndef ORKET_HEALTH_H
#define ORKET_HEALTH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "httpd.h"
#include "jsonout.h"
#include "ratelimit.h"

#define HEALTH_MAX_BUCKETS 32
#define HEALTH_MAX_HEADERS 8
#define HEALTH_MAX_CORS 4096 /* allowed origins, an answer kept for each (serve.cors's cap) */

typedef struct health_opts {
  const char *const *headers; /* the answer's header lines ("Name: value") */
  size_t nheaders;            /* at most HEALTH_MAX_HEADERS */
  const char *body;           /* the answer's bytes, kept in one blob */
  size_t len;
  const char *const *cors;    /* the origins whose requests get CORS headers */
  size_t ncors;
  const char *cors_expose;    /* a header line added with an allowed origin's; NULL: none */
  const char *app_base;       /* hosts *.app_base[:port] are declined; NULL: none */
  const double *buckets;      /* the latency histogram's upper bounds, seconds, rising */
  size_t nbuckets;            /* at most HEALTH_MAX_BUCKETS */
  ratelimit *by_addr;         /* borrowed: outlives the health */
} health_opts;

typedef struct health_stats {
  uint64_t count;                      /* answers given */
  double sum;                          /* their handling, seconds */
  uint64_t counts[HEALTH_MAX_BUCKETS]; /* by the first bound at or above it, not cumulative */
} health_stats;

typedef struct health health;

/* A health from o (copied, but for by_addr). NULL out of memory or for options out of
 * range (*err then says which). */
health *health_new(const health_opts *o, const char **err);
void health_free(health *hl);

/* Answers the offered request q at now_ms (the loop's clock, as the limiter's other
 * takers use): 1 answered, with its log line in *line (cleared first; its bytes out of
 * memory: line->oom); 0 declined, nothing sent and nothing counted. */
int health_answer(health *hl, httpd_quick *q, double now_ms, jsonout_buf *line);

/* A request's log line (docs/serve.md, "Logs"), the one format of every route's, /health's
 * here and the Lua server's: an object of these fields in this (sorted) order, absent ones
 * left out. */
enum { HEALTH_LINE_ADDR, HEALTH_LINE_AUTH, HEALTH_LINE_KEY, HEALTH_LINE_METHOD, HEALTH_LINE_NOTE,
       HEALTH_LINE_PROJECT, HEALTH_LINE_ROUTE, HEALTH_LINE_STATUS, HEALTH_LINE_T, HEALTH_LINE_US, HEALTH_LINE_VIA,
       HEALTH_LINE_FIELDS };
typedef struct health_value {
  enum { HEALTH_ABSENT, HEALTH_NULL, HEALTH_STRING, HEALTH_NUMBER, HEALTH_TRUE, HEALTH_FALSE } kind;
  const char *s; /* HEALTH_STRING: n bytes, any bytes */
  size_t n;
  double d;      /* HEALTH_NUMBER */
} health_value;
/* Appends the line of v[HEALTH_LINE_FIELDS] (no newline), its bytes those of jsonout's
 * encoding of the same fields. -> 0, or -1 for a number that is NaN or infinite (the line
 * then partly written). */
int health_line_write(jsonout_buf *b, const health_value *v);
const health_stats *health_stats_of(const health *hl);
/* s counts one answer handled in seconds, in the first of buckets (rising) at or above it. */
void health_stats_count(health_stats *s, const double *buckets, size_t nbuckets, double seconds);

/* A log line's "t" (UTC, to the second), its text made once a second: sec (time_t)-1 at
 * first. */
typedef struct health_stamp {
  time_t sec;
  char text[32];
} health_stamp;
const char *health_stamp_of(health_stamp *st);

#endif
