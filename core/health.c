/* health.c: orket serve's GET /health inside libmicrohttpd's callback (see health.h). Its
 * way is the Lua server's for this route, in the same order: the address's token, the
 * apps' origin handed over, CORS, the kept answer, then the log line and the counts. */
#include "health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HEALTH_MAX_HOST 255 /* as the Lua side: a longer Host names no app */

struct health {
  char **headers;     /* the answer's lines */
  size_t nheaders;
  char **cors;        /* the allowed origins ... */
  char **cors_lines;  /* ... and their Access-Control-Allow-Origin lines */
  char *cors_expose;  /* a line added after one of those; NULL: none */
  size_t ncors;
  char *app_suffix;   /* ".BASE", lower case; NULL: none */
  size_t app_len;
  double buckets[HEALTH_MAX_BUCKETS];
  size_t nbuckets;
  ratelimit *by_addr;
  httpd_blob *body;
  httpd_kept **kept;  /* the whole answers, made at their first use: [0] without CORS,
                         [1 + i] with the allowed origin i's */
  health_stats stats;
  health_stamp stamp; /* the log line's "t", made once a second */
};

static char *health_dup(const char *a, const char *b) {
  size_t na = strlen(a), nb = b ? strlen(b) : 0;
  char *s = malloc(na + nb + 1);
  if (s == NULL) return NULL;
  memcpy(s, a, na);
  if (nb) memcpy(s + na, b, nb);
  s[na + nb] = '\0';
  return s;
}

void health_free(health *hl) {
  if (hl == NULL) return;
  for (size_t i = 0; i < hl->nheaders; i++) free(hl->headers[i]);
  free(hl->headers);
  for (size_t i = 0; i < hl->ncors; i++) {
    free(hl->cors[i]);
    free(hl->cors_lines[i]);
  }
  free(hl->cors);
  free(hl->cors_lines);
  free(hl->app_suffix);
  free(hl->cors_expose);
  for (size_t i = 0; hl->kept && i <= hl->ncors; i++) httpd_kept_free(hl->kept[i]);
  free(hl->kept);
  httpd_blob_unref(hl->body);
  free(hl);
}

health *health_new(const health_opts *o, const char **err) {
  *err = "out of memory";
  if (o->nheaders > HEALTH_MAX_HEADERS) return *err = "at most 8 header lines", NULL;
  if (o->nbuckets > HEALTH_MAX_BUCKETS) return *err = "at most 32 buckets", NULL;
  if (o->ncors > HEALTH_MAX_CORS) return *err = "at most 4096 allowed origins", NULL;
  if (o->by_addr == NULL) return *err = "no limiter", NULL;
  for (size_t i = 1; i < o->nbuckets; i++)
    if (!(o->buckets[i] > o->buckets[i - 1])) return *err = "the buckets must rise", NULL;
  health *hl = calloc(1, sizeof *hl);
  if (hl == NULL) return NULL;
  hl->by_addr = o->by_addr;
  hl->nbuckets = o->nbuckets;
  if (o->nbuckets) memcpy(hl->buckets, o->buckets, o->nbuckets * sizeof *o->buckets);
  hl->stamp.sec = (time_t)-1;
  hl->headers = calloc(o->nheaders + 1, sizeof *hl->headers);
  hl->cors = calloc(o->ncors + 1, sizeof *hl->cors);
  hl->cors_lines = calloc(o->ncors + 1, sizeof *hl->cors_lines);
  hl->body = httpd_blob_new(o->body, o->len);
  hl->kept = calloc(o->ncors + 1, sizeof *hl->kept);
  if (!hl->headers || !hl->cors || !hl->cors_lines || !hl->body || !hl->kept) goto fail;
  for (size_t i = 0; i < o->nheaders; i++) {
    hl->headers[i] = health_dup(o->headers[i], NULL);
    if (hl->headers[i] == NULL) goto fail;
    hl->nheaders = i + 1;
  }
  for (size_t i = 0; i < o->ncors; i++) {
    hl->cors[i] = health_dup(o->cors[i], NULL);
    hl->cors_lines[i] = health_dup("Access-Control-Allow-Origin: ", o->cors[i]);
    hl->ncors = i + 1;
    if (hl->cors[i] == NULL || hl->cors_lines[i] == NULL) goto fail;
  }
  if (o->cors_expose && (hl->cors_expose = health_dup(o->cors_expose, NULL)) == NULL) goto fail;
  if (o->app_base && o->app_base[0]) {
    hl->app_suffix = health_dup(".", o->app_base);
    if (hl->app_suffix == NULL) goto fail;
    hl->app_len = strlen(hl->app_suffix);
  }
  return hl;
fail:
  health_free(hl);
  return NULL;
}

const health_stats *health_stats_of(const health *hl) { return &hl->stats; }

/* Whether host (its port left out) ends in the apps' domain: the Lua side tells an app's
 * from the rest. A Host too long is not an app's there either. */
static int health_on_app_origin(const health *hl, const char *host) {
  if (hl->app_suffix == NULL || host == NULL) return 0;
  size_t n = strlen(host);
  if (n > HEALTH_MAX_HOST) return 0;
  size_t end = n;
  while (end > 0 && host[end - 1] >= '0' && host[end - 1] <= '9') end--;
  if (end > 0 && end < n && host[end - 1] == ':') n = end - 1; /* ":PORT" */
  return n > hl->app_len && strncasecmp(host + n - hl->app_len, hl->app_suffix, hl->app_len) == 0;
}

const char *health_stamp_of(health_stamp *st) {
  time_t now = time(NULL);
  if (now != st->sec) {
    struct tm tm;
    if (gmtime_r(&now, &tm) == NULL || strftime(st->text, sizeof st->text, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
      st->text[0] = '\0';
    st->sec = now;
  }
  return st->text;
}

void health_stats_count(health_stats *s, const double *buckets, size_t nbuckets, double seconds) {
  for (size_t i = 0; i < nbuckets; i++) {
    if (seconds <= buckets[i]) {
      s->counts[i]++;
      break;
    }
  }
  s->sum += seconds;
  s->count++;
}

static const char *const health_line_names[HEALTH_LINE_FIELDS] = {
    "\"addr\":", "\"auth\":", "\"key\":", "\"method\":", "\"note\":", "\"project\":", "\"route\":", "\"status\":",
    "\"t\":", "\"us\":", "\"via\":"};

int health_line_write(jsonout_buf *b, const health_value *v) {
  int first = 1;
  for (int i = 0; i < HEALTH_LINE_FIELDS; i++) {
    if (v[i].kind == HEALTH_ABSENT) continue;
    const char *name = health_line_names[i];
    if (first) jsonout_raw(b, "{", 1);
    else jsonout_raw(b, ",", 1);
    first = 0;
    jsonout_raw(b, name, strlen(name));
    switch (v[i].kind) {
    case HEALTH_STRING: jsonout_string(b, v[i].s, v[i].n); break;
    case HEALTH_NUMBER:
      if (jsonout_number(b, v[i].d) != 0) return -1;
      break;
    case HEALTH_TRUE: jsonout_raw(b, "true", 4); break;
    case HEALTH_FALSE: jsonout_raw(b, "false", 5); break;
    default: jsonout_raw(b, "null", 4); break;
    }
  }
  jsonout_raw(b, first ? "{}" : "}", first ? 2 : 1);
  return 0;
}

static health_value health_str(const char *s) { return (health_value){HEALTH_STRING, s, strlen(s), 0}; }

/* /health's line: auth and note absent, key null, via absent unless through a trusted proxy */
static void health_line(health *hl, jsonout_buf *b, const httpd_quick *q, long long us) {
  health_value v[HEALTH_LINE_FIELDS] = {{HEALTH_ABSENT, NULL, 0, 0}};
  v[HEALTH_LINE_ADDR] = health_str(q->remote);
  if (q->via) v[HEALTH_LINE_VIA] = health_str(q->via);
  v[HEALTH_LINE_KEY].kind = HEALTH_NULL;
  v[HEALTH_LINE_METHOD] = health_str("GET");
  v[HEALTH_LINE_ROUTE] = health_str("/health");
  v[HEALTH_LINE_STATUS] = (health_value){HEALTH_NUMBER, NULL, 0, 200};
  v[HEALTH_LINE_T] = health_str(health_stamp_of(&hl->stamp));
  v[HEALTH_LINE_US] = (health_value){HEALTH_NUMBER, NULL, 0, (double)us};
  health_line_write(b, v);
}

int health_answer(health *hl, httpd_quick *q, double now_ms, jsonout_buf *line) {
  uint64_t t0 = uv_hrtime();
  line->len = 0;
  line->oom = 0;
  /* an app's origin before the token: the Lua way takes it for that request */
  if (health_on_app_origin(hl, q->host)) return 0;
  /* an address out of tokens is answered 429 the Lua way, from the same bucket (still
   * empty: a take that fails changes nothing) */
  long retry;
  if (ratelimit_take(hl->by_addr, q->remote, strlen(q->remote), now_ms, &retry) != 1) return 0;
  size_t which = 0; /* the answer without CORS, or 1 + the allowed origin's index */
  for (size_t i = 0; q->origin && i < hl->ncors && which == 0; i++)
    if (strcmp(q->origin, hl->cors[i]) == 0) which = 1 + i;
  const char *lines[HEALTH_MAX_HEADERS + 2];
  size_t n = 0;
  for (; n < hl->nheaders; n++) lines[n] = hl->headers[n];
  if (which) {
    lines[n++] = hl->cors_lines[which - 1];
    if (hl->cors_expose) lines[n++] = hl->cors_expose;
  }
  if (httpd_quick_respond_kept(q, 200, lines, n, hl->body, &hl->kept[which]) != 0) return 0;
  long long us = (long long)((uv_hrtime() - t0) / 1000);
  health_stats_count(&hl->stats, hl->buckets, hl->nbuckets, (double)us / 1e6);
  health_line(hl, line, q, us);
  return 1;
}
