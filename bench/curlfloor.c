/* curlfloor.c: the floor under bench/llm.lua's transport figures. The same streaming chat
 * requests to the same fake model server, made by the least a libcurl client can do: one
 * multi handle driven by curl_multi_poll, bodies copied into a buffer and nothing else (no
 * SSE framing, no JSON, no Lua, no coroutines). What this program's answers wait is what
 * libcurl, the kernel's loopback TCP and the machine's scheduling add on their own; the
 * difference to bench/llm.lua's rows is orket's.
 *   curlfloor URL MODEL N ROUNDS EACH
 * N requests in flight, ROUNDS times; EACH = 1: bursts (N started together, 20 ms apart);
 * EACH > 1: steady (each slot starts its next request when one ends, EACH per slot; the
 * first answer of each slot is left out). MODEL must have stamp_end (the server ends the
 * last piece of content with " end=<CLOCK_MONOTONIC ns>"). Prints one line:
 *   req/s added_p50_ms added_p99_ms cpu_us_per_request errors done_p50_ms done_p99_ms
 * added: from the stamp to the piece that holds it arriving; done: to libcurl reporting the
 * transfer complete (after the rest of the stream), which is when orket's client can hand
 * over a whole result. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct slot {
  CURL *easy;
  char *buf;
  size_t len, cap;
  int left; /* requests this slot still makes in the round */
  int first;
  long long got; /* when the piece with the server's stamp arrived */
} slot;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  slot *s = ud;
  size_t k = size * n;
  if (s->len + k > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + k) cap *= 2;
    char *nb = realloc(s->buf, cap);
    if (!nb) return 0;
    s->buf = nb;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, p, k);
  s->len += k;
  /* the stamp's own piece: the earliest moment the client holds the whole content, taken
   * here rather than when libcurl reports the transfer done, so the floor is a floor */
  for (size_t i = 0; i + 5 <= k; i++) {
    if (memcmp(p + i, " end=", 5) == 0) {
      s->got = now_ns();
      break;
    }
  }
  return k;
}

/* The server's stamp: the last " end=" in the body (inside the last content piece). */
static long long stamp(const slot *s) {
  long long v = -1;
  for (size_t i = 0; i + 5 < s->len; i++) {
    if (memcmp(s->buf + i, " end=", 5) == 0) v = strtoll(s->buf + i + 5, NULL, 10);
  }
  return v;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)(n * p + 0.999999);
  if (i < 1) i = 1;
  if (i > n) i = n;
  return v[i - 1];
}

static double cpu_us(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: curlfloor URL MODEL N ROUNDS EACH\n");
    return 2;
  }
  const char *url = argv[1], *model = argv[2];
  int n = atoi(argv[3]), rounds = atoi(argv[4]), each = atoi(argv[5]);
  if (n < 1 || rounds < 1 || each < 1) {
    fprintf(stderr, "curlfloor: N, ROUNDS and EACH must be positive\n");
    return 2;
  }
  char body[512];
  snprintf(body, sizeof body,
           "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"benchmark\"}],"
           "\"stream\":true,\"stream_options\":{\"include_usage\":true}}", model);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM *m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)n);
  struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
  slot *slots = calloc((size_t)n, sizeof *slots);
  size_t cap = (size_t)n * (size_t)rounds * (size_t)each, nadded = 0;
  double *added = malloc(cap * sizeof *added), *added_done = malloc(cap * sizeof *added_done);
  if (!slots || !added || !added_done) return 1;
  int errors = 0;
  for (int i = 0; i < n; i++) {
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &slots[i]);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &slots[i]);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    slots[i].easy = e;
  }
  double cpu = 0, wall = 0;
  long long reqs = 0;
  for (int r = -1; r < rounds; r++) { /* round -1 warms connections up, uncounted */
    long long t0 = now_ns();
    double c0 = cpu_us();
    for (int i = 0; i < n; i++) {
      slots[i].left = r < 0 ? 1 : each;
      slots[i].first = 1;
      slots[i].len = 0;
      curl_multi_add_handle(m, slots[i].easy);
    }
    int running = 1;
    while (running) {
      curl_multi_perform(m, &running);
      CURLMsg *msg;
      int q;
      while ((msg = curl_multi_info_read(m, &q))) {
        if (msg->msg != CURLMSG_DONE) continue;
        long long done = now_ns();
        CURL *e = msg->easy_handle;
        slot *s;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
        long long st = stamp(s);
        if (msg->data.result != CURLE_OK || st < 0) {
          errors++;
        } else if (r >= 0 && (each == 1 || !s->first)) {
          added_done[nadded] = (double)(done - st) / 1e6;
          added[nadded++] = (double)(s->got - st) / 1e6;
        }
        s->first = 0;
        s->got = 0;
        curl_multi_remove_handle(m, e);
        if (r >= 0) reqs++;
        if (--s->left > 0) {
          s->len = 0;
          curl_multi_add_handle(m, e);
          running = 1;
        }
      }
      if (running) curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    if (r >= 0) {
      wall += (double)(now_ns() - t0) / 1e9;
      cpu += cpu_us() - c0;
    }
    if (each == 1) nanosleep(&(struct timespec){0, 20000000}, NULL);
  }
  qsort(added, nadded, sizeof *added, cmp);
  qsort(added_done, nadded, sizeof *added_done, cmp);
  printf("%.0f %.3f %.3f %.1f %d %.3f %.3f\n", reqs / wall, pct(added, nadded, 0.5), pct(added, nadded, 0.99),
         cpu / (double)(reqs ? reqs : 1), errors, pct(added_done, nadded, 0.5), pct(added_done, nadded, 0.99));
  for (int i = 0; i < n; i++) {
    curl_easy_cleanup(slots[i].easy);
    free(slots[i].buf);
  }
  free(slots);
  free(added);
  free(added_done);
  curl_slist_free_all(hdr);
  curl_multi_cleanup(m);
  curl_global_cleanup();
  return 0;
}
