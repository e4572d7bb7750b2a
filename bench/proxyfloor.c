/* proxyfloor.c: the floor under bench/sandbox.lua's proxy figure. The least a reverse proxy
 * built on the two libraries orket serve uses can do: libmicrohttpd on a libuv loop (external
 * epoll mode, as core/httpd.c drives it) answering each GET with what one libcurl request to
 * the upstream answered (one multi handle on the same loop, its connections kept alive, as
 * core/http.c drives it). No routing, no authentication, no header filtering, no streaming,
 * no Lua, no log: every request is copied whole, then answered. What orket serve's proxy
 * costs beyond this is orket's.
 *   proxyfloor URL [UNIX_SOCKET]
 * URL: the upstream's base ("http://127.0.0.1:PORT", or "http://sandbox" with UNIX_SOCKET);
 * the request's path is appended. Listens on 127.0.0.1 on a free port, prints "port N" on
 * stdout, serves until SIGTERM. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define PF_MAX_BODY (1u << 20)

typedef struct pf_srv pf_srv;

/* one request in flight: its client's connection (suspended) and the upstream's answer */
typedef struct pf_req {
  pf_srv *s;
  struct MHD_Connection *conn;
  CURL *easy;
  char *body;
  size_t len, cap;
  long status;
  int done, failed;
} pf_req;

/* a socket libcurl asked to be watched */
typedef struct pf_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  pf_srv *s;
} pf_sock;

struct pf_srv {
  struct MHD_Daemon *d;
  CURLM *multi;
  const char *base, *unix_socket;
  CURL *idle[256]; /* easy handles kept for the next request: their connections stay open */
  size_t nidle;
  uv_poll_t mhd_poll;
  uv_timer_t mhd_timer, curl_timer;
  uv_idle_t kick;
  uv_signal_t term;
};

static void pf_mhd_run(pf_srv *s);

static size_t pf_on_body(char *p, size_t size, size_t n, void *ud) {
  pf_req *r = ud;
  size_t len = size * n;
  if (r->len + len > PF_MAX_BODY) return 0;
  if (r->len + len > r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 4096;
    while (cap < r->len + len) cap *= 2;
    char *nb = realloc(r->body, cap);
    if (nb == NULL) return 0;
    r->body = nb;
    r->cap = cap;
  }
  memcpy(r->body + r->len, p, len);
  r->len += len;
  return len;
}

/* transfers libcurl reports ended: their connections resumed, answered at MHD's next call */
static void pf_reap(pf_srv *s) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE) continue;
    pf_req *r;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &r->status);
    r->failed = m->data.result != CURLE_OK;
    curl_multi_remove_handle(s->multi, m->easy_handle);
    if (s->nidle < sizeof s->idle / sizeof s->idle[0]) s->idle[s->nidle++] = m->easy_handle;
    else curl_easy_cleanup(m->easy_handle);
    r->easy = NULL;
    r->done = 1;
    MHD_resume_connection(r->conn);
  }
  pf_mhd_run(s);
}

static void pf_on_sock_ready(uv_poll_t *p, int status, int events) {
  pf_sock *k = p->data;
  int flags = 0, running;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(k->s->multi, k->fd, flags, &running);
  pf_reap(k->s);
}

static void pf_free_sock(uv_handle_t *h) { free(h->data); }

static int pf_on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp) {
  pf_srv *s = ud;
  pf_sock *k = sockp;
  if (what == CURL_POLL_REMOVE) {
    if (k) {
      uv_poll_stop(&k->poll);
      uv_close((uv_handle_t *)&k->poll, pf_free_sock);
      curl_multi_assign(s->multi, fd, NULL);
    }
    return 0;
  }
  if (k == NULL) {
    k = calloc(1, sizeof *k);
    if (k == NULL) return -1;
    k->fd = fd;
    k->s = s;
    uv_poll_init_socket(uv_default_loop(), &k->poll, fd);
    k->poll.data = k;
    curl_multi_assign(s->multi, fd, k);
  }
  int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
  uv_poll_start(&k->poll, ev, pf_on_sock_ready);
  return 0;
}

static void pf_on_curl_timer(uv_timer_t *t) {
  pf_srv *s = t->data;
  int running;
  curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  pf_reap(s);
}

static int pf_on_curl_timeout(CURLM *m, long ms, void *ud) {
  pf_srv *s = ud;
  if (ms < 0) uv_timer_stop(&s->curl_timer);
  else uv_timer_start(&s->curl_timer, pf_on_curl_timer, (uint64_t)ms, 0);
  return 0;
}

static enum MHD_Result pf_answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_len, void **state) {
  pf_srv *s = cls;
  pf_req *r = *state;
  if (r == NULL) { /* the headers: answered at the next call, which keeps the connection open */
    if (strcmp(method, "GET") != 0) return MHD_NO;
    r = calloc(1, sizeof *r);
    if (r == NULL) return MHD_NO;
    r->s = s;
    r->conn = c;
    *state = r;
    return MHD_YES;
  }
  if (!r->done) {
    if (r->easy) return MHD_YES;
    CURL *e = s->nidle ? s->idle[--s->nidle] : curl_easy_init();
    if (e == NULL) return MHD_NO;
    char target[4096];
    snprintf(target, sizeof target, "%s%s", s->base, url);
    curl_easy_setopt(e, CURLOPT_URL, target);
    if (s->unix_socket) curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, s->unix_socket);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, pf_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    r->easy = e;
    MHD_suspend_connection(c);
    if (curl_multi_add_handle(s->multi, e) != CURLM_OK) return MHD_NO;
    return MHD_YES;
  }
  if (r->failed) return MHD_NO;
  struct MHD_Response *resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_COPY);
  if (resp == NULL) return MHD_NO;
  MHD_add_response_header(resp, "Content-Type", "application/json");
  enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  return ok;
}

static void pf_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode why) {
  pf_req *r = *state;
  if (r == NULL) return;
  if (r->easy) { /* the client left first: the transfer is dropped */
    curl_multi_remove_handle(r->s->multi, r->easy);
    curl_easy_cleanup(r->easy);
  }
  free(r->body);
  free(r);
  *state = NULL;
}

static void pf_on_mhd_timer(uv_timer_t *t) { pf_mhd_run(t->data); }

static void pf_on_mhd_poll(uv_poll_t *p, int status, int events) { pf_mhd_run(p->data); }

static void pf_on_kick(uv_idle_t *i) {
  uv_idle_stop(i);
  pf_mhd_run(i->data);
}

/* one pass of MHD's work, then its next deadline (as bench/mhdfloor.c) */
static void pf_mhd_run(pf_srv *s) {
  MHD_run(s->d);
  MHD_UNSIGNED_LONG_LONG ms;
  if (MHD_get_timeout(s->d, &ms) != MHD_YES) {
    uv_timer_stop(&s->mhd_timer);
  } else if (ms == 0) {
    uv_timer_stop(&s->mhd_timer);
    uv_idle_start(&s->kick, pf_on_kick);
  } else {
    uv_timer_start(&s->mhd_timer, pf_on_mhd_timer, ms, 0);
  }
}

static void pf_on_term(uv_signal_t *h, int sig) {
  pf_srv *s = h->data;
  uv_stop(uv_default_loop());
  (void)s;
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: proxyfloor URL [UNIX_SOCKET]\n");
    return 2;
  }
  static pf_srv s;
  s.base = argv[1];
  s.unix_socket = argc == 3 ? argv[2] : NULL;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  s.multi = curl_multi_init();
  curl_multi_setopt(s.multi, CURLMOPT_SOCKETFUNCTION, pf_on_socket);
  curl_multi_setopt(s.multi, CURLMOPT_SOCKETDATA, &s);
  curl_multi_setopt(s.multi, CURLMOPT_TIMERFUNCTION, pf_on_curl_timeout);
  curl_multi_setopt(s.multi, CURLMOPT_TIMERDATA, &s);
  curl_multi_setopt(s.multi, CURLMOPT_MAXCONNECTS, 256L);
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* TURBO (reads and writes tried before the loop is asked) passed ~15% more here: the
   * floor is the fastest such proxy, not one driven exactly as orket's */
  s.d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO, 0, NULL, NULL, pf_answer, &s,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_LIMIT, 4096u,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_NOTIFY_COMPLETED, pf_completed, &s,
                         MHD_OPTION_END);
  const union MHD_DaemonInfo *ep = s.d ? MHD_get_daemon_info(s.d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
  const union MHD_DaemonInfo *pi = s.d ? MHD_get_daemon_info(s.d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
  if (s.multi == NULL || ep == NULL || pi == NULL) {
    fprintf(stderr, "proxyfloor: cannot start the server\n");
    return 1;
  }
  uv_loop_t *loop = uv_default_loop();
  uv_poll_init(loop, &s.mhd_poll, ep->epoll_fd);
  uv_timer_init(loop, &s.mhd_timer);
  uv_timer_init(loop, &s.curl_timer);
  uv_idle_init(loop, &s.kick);
  uv_signal_init(loop, &s.term);
  s.mhd_poll.data = s.mhd_timer.data = s.curl_timer.data = s.kick.data = s.term.data = &s;
  uv_poll_start(&s.mhd_poll, UV_READABLE, pf_on_mhd_poll);
  uv_signal_start(&s.term, pf_on_term, SIGTERM);
  printf("port %u\n", (unsigned)pi->port);
  fflush(stdout);
  pf_mhd_run(&s);
  uv_run(loop, UV_RUN_DEFAULT);
  /* the process ends here: the kernel closes what is still open */
  return 0;
}
