/* mhdfloor.c: the floor under bench/serve.lua's HTTP figures. The least a libmicrohttpd
 * server on a libuv loop can do, driven the way orket serve drives it (external epoll mode:
 * one uv_poll on MHD's epoll descriptor, one uv_timer from MHD_get_timeout, no threads),
 * answering the bytes orket answers (/health, and GET /v1/board from a file holding
 * orket's own body) with the same headers, from responses built once: no routing, no
 * authentication, no Lua, no JSON, no log. What orket adds on top of it is orket's.
 *   mhdfloor BOARD_FILE
 * Listens on 127.0.0.1 on a free port, prints "port N" on stdout, serves until SIGTERM. */
#define _POSIX_C_SOURCE 200809L
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct floor_srv {
  struct MHD_Daemon *d;
  struct MHD_Response *health, *board, *missing;
  uv_poll_t poll;
  uv_timer_t timer;
  uv_idle_t kick; /* MHD has work now: run again on the next loop iteration */
  uv_signal_t term;
} floor_srv;

static struct MHD_Response *floor_response(const char *body, size_t len, enum MHD_ResponseMemoryMode mode) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
  if (r == NULL) return NULL;
  MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  return r;
}

static enum MHD_Result floor_answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload, size_t *upload_len, void **state) {
  floor_srv *s = cls;
  /* MHD calls twice for a request without a body: an answer queued at the first call (the
   * headers just read) closes the connection after it, as core/httpd.c avoids too */
  if (*state == NULL) {
    *state = s;
    return MHD_YES;
  }
  if (strcmp(method, "GET") != 0) return MHD_NO;
  if (strcmp(url, "/health") == 0) return MHD_queue_response(c, MHD_HTTP_OK, s->health);
  if (strcmp(url, "/v1/board") == 0) return MHD_queue_response(c, MHD_HTTP_OK, s->board);
  return MHD_queue_response(c, MHD_HTTP_NOT_FOUND, s->missing);
}

static void floor_run(floor_srv *s);

static void floor_on_timer(uv_timer_t *t) { floor_run(t->data); }

static void floor_on_poll(uv_poll_t *p, int status, int events) { floor_run(p->data); }

static void floor_on_kick(uv_idle_t *i) {
  uv_idle_stop(i);
  floor_run(i->data);
}

/* One pass of MHD's work, then its next deadline: on the timer, or, when MHD has work at
 * once, on the next loop iteration (as core/httpd.c does: a 0 ms timer re-armed in its own
 * callback would run again before the loop's other timers). */
static void floor_run(floor_srv *s) {
  MHD_run(s->d);
  MHD_UNSIGNED_LONG_LONG ms;
  if (MHD_get_timeout(s->d, &ms) != MHD_YES) {
    uv_timer_stop(&s->timer);
  } else if (ms == 0) {
    uv_timer_stop(&s->timer);
    uv_idle_start(&s->kick, floor_on_kick);
  } else {
    uv_timer_start(&s->timer, floor_on_timer, ms, 0);
  }
}

static void floor_on_term(uv_signal_t *h, int sig) {
  floor_srv *s = h->data;
  uv_poll_stop(&s->poll);
  uv_timer_stop(&s->timer);
  uv_idle_stop(&s->kick);
  uv_signal_stop(&s->term);
  uv_close((uv_handle_t *)&s->poll, NULL);
  uv_close((uv_handle_t *)&s->timer, NULL);
  uv_close((uv_handle_t *)&s->kick, NULL);
  uv_close((uv_handle_t *)&s->term, NULL);
}

static char *floor_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      char *bigger = realloc(buf, cap *= 2);
      if (bigger == NULL) free(buf);
      buf = bigger;
    }
  }
  fclose(f);
  *len = n;
  return buf;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: mhdfloor BOARD_FILE\n");
    return 2;
  }
  size_t board_len;
  char *board = floor_read(argv[1], &board_len);
  if (board == NULL) {
    fprintf(stderr, "mhdfloor: cannot read %s\n", argv[1]);
    return 1;
  }
  static const char health[] = "{\"status\":\"ok\"}\n";
  static const char missing[] = "{\"error\":{\"code\":\"not_found\",\"message\":\"no such route\"}}\n";
  floor_srv s = {0};
  s.health = floor_response(health, sizeof health - 1, MHD_RESPMEM_PERSISTENT);
  s.board = floor_response(board, board_len, MHD_RESPMEM_PERSISTENT);
  s.missing = floor_response(missing, sizeof missing - 1, MHD_RESPMEM_PERSISTENT);
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s.d = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, floor_answer, &s, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_LIMIT, 4096u,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
  const union MHD_DaemonInfo *ep = s.d ? MHD_get_daemon_info(s.d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
  const union MHD_DaemonInfo *pi = s.d ? MHD_get_daemon_info(s.d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
  if (!s.health || !s.board || !s.missing || ep == NULL || pi == NULL) {
    fprintf(stderr, "mhdfloor: cannot start the server\n");
    return 1;
  }
  uv_loop_t *loop = uv_default_loop();
  uv_poll_init(loop, &s.poll, ep->epoll_fd);
  uv_timer_init(loop, &s.timer);
  uv_idle_init(loop, &s.kick);
  uv_signal_init(loop, &s.term);
  s.poll.data = s.timer.data = s.kick.data = s.term.data = &s;
  uv_poll_start(&s.poll, UV_READABLE, floor_on_poll);
  uv_signal_start(&s.term, floor_on_term, SIGTERM);
  printf("port %u\n", (unsigned)pi->port);
  fflush(stdout);
  floor_run(&s);
  uv_run(loop, UV_RUN_DEFAULT);
  MHD_stop_daemon(s.d);
  MHD_destroy_response(s.health);
  MHD_destroy_response(s.board);
  MHD_destroy_response(s.missing);
  uv_loop_close(loop);
  free(board);
  return 0;
}
