/* curlfloor.c: the floor under bench/llm.lua's transport figures. The same streaming chat
 * requests to the same fake model server, made by the least a libcurl client can do: one
 * multi handle driven by its socket interface on epoll (libcurl told which socket is ready,
 * as orket's loop does, rather than asked to look at every transfer on each wake-up),
 * bodies copied into a buffer and nothing else (no SSE framing, no JSON, no Lua, no
 * coroutines). What this program's answers wait is what libcurl, the kernel's loopback TCP
 * and the machine's scheduling add on their own; the difference to bench/llm.lua's rows is
 * orket's.
 *   curlfloor URL MODEL N ROUNDS EACH [SPREAD_MS]
 * N requests in flight, ROUNDS times; EACH = 1: bursts (N started together, 20 ms apart);
 * EACH > 1: steady (each slot starts its next request when one ends, EACH per slot; the
 * first answer of each slot is left out); SPREAD_MS: slot i's first request starts
 * i * SPREAD_MS / N after the round's start (paced streams, as bench/llm.lua spreads them).
 * MODEL must have stamp_end (the server ends the
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
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

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

typedef struct loop {
  int ep;
  long timeout_ms; /* libcurl's wish: -1 none, else call it back after this long */
} loop;

/* libcurl says which sockets to watch for what: mirror it into the epoll set */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sp) {
  loop *l = ud;
  struct epoll_event ev = {.events = 0, .data.fd = fd};
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
    return 0;
  }
  if (what & CURL_POLL_IN) ev.events |= EPOLLIN;
  if (what & CURL_POLL_OUT) ev.events |= EPOLLOUT;
  if (epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &ev) != 0) epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev);
  return 0;
}

static int on_timer(CURLM *m, long ms, void *ud) {
  ((loop *)ud)->timeout_ms = ms;
  return 0;
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
  if (argc != 6 && argc != 7) {
    fprintf(stderr, "usage: curlfloor URL MODEL N ROUNDS EACH [SPREAD_MS]\n");
    return 2;
  }
  const char *url = argv[1], *model = argv[2];
  int n = atoi(argv[3]), rounds = atoi(argv[4]), each = atoi(argv[5]);
  double spread_ms = argc == 7 ? atof(argv[6]) : 0;
  if (n < 1 || rounds < 1 || each < 1 || spread_ms < 0) {
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
  loop l = {.ep = epoll_create1(0), .timeout_ms = -1};
  if (l.ep < 0) return 1;
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, &l);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, &l);
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
    int started = 0, running = 0;
    for (int i = 0; i < n; i++) {
      slots[i].left = r < 0 ? 1 : each;
      slots[i].first = 1;
      slots[i].len = 0;
    }
    while (started < n || running > 0) {
      /* start the slots whose time has come (all at once unless spread) */
      long long now = now_ns();
      while (started < n && (r < 0 || now >= t0 + (long long)(spread_ms * 1e6 * started / n))) {
        curl_multi_add_handle(m, slots[started++].easy);
        running++;
      }
      long wait = l.timeout_ms;
      if (started < n) {
        long next = (long)((t0 + (long long)(spread_ms * 1e6 * started / n) - now) / 1000000);
        if (next < 0) next = 0;
        if (wait < 0 || next < wait) wait = next;
      }
      if (wait < 0 || wait > 1000) wait = 1000;
      struct epoll_event ev[64];
      int k = wait == 0 ? 0 : epoll_wait(l.ep, ev, 64, (int)wait);
      int still;
      if (k <= 0) {
        l.timeout_ms = -1;
        curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &still);
      }
      for (int j = 0; j < k; j++) {
        int flags = 0;
        if (ev[j].events & EPOLLIN) flags |= CURL_CSELECT_IN;
        if (ev[j].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
        if (ev[j].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(m, ev[j].data.fd, flags, &still);
      }
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
        running--;
        if (r >= 0) reqs++;
        if (--s->left > 0) {
          s->len = 0;
          curl_multi_add_handle(m, e);
          running++;
        }
      }
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
  close(l.ep);
  curl_global_cleanup();
  return 0;
}
