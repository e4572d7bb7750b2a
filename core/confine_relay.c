/* confine_relay.c: the helper's relay (see confine_relay.h). One poll loop serves the
 * listening sockets (the relay's, its probe's, one per further service, inward's), every relayed connection (a client and its upstream on the sandbox's
 * loopback) and the probes in flight, so a slow side never stalls the others. Uses Linux
 * sockets only. */
#define _GNU_SOURCE
#include "confine_relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RL_MAX_PROBES 16 /* probes in flight; beyond, a client is told "down busy" */
#define RL_ACCEPTS 32    /* accepts per socket and round, so connections in flight keep moving */

/* One direction of a relayed connection: bytes read from one side, not yet written to the
 * other. */
typedef struct rl_dir {
  char *buf;
  size_t len;
  int eof;  /* the source side has no more to send */
  int shut; /* the end passed on: the destination's writing side shut down */
} rl_dir;

typedef struct rl_pair {
  int fd[2];      /* 0: the client, 1: its upstream (the loopback's port, or inward's socket) */
  int connecting; /* the upstream's connect is still in progress */
  int dead;
  rl_dir d[2];    /* d[0]: client to upstream, d[1]: upstream to client */
} rl_pair;

typedef struct rl_probe {
  int client, up;
  uint64_t deadline_ms;
  int done;
} rl_probe;

/* The listening unix sockets' slots: the relay's, its probe's, then one per service. */
#define RL_SLOTS (2 + CONFINE_RELAY_MAX_SERVICES)

struct confine_relay {
  int fd[RL_SLOTS];         /* slot 0: the relay's, 1: the probe's, 2..: the services' */
  unsigned port[RL_SLOTS];  /* where a slot's clients are connected (the probe's: unused) */
  int nslots;
  int ifd;                  /* inward's listening socket (or -1) */
  char path[RL_SLOTS][112];
  dev_t dev[RL_SLOTS];
  ino_t ino[RL_SLOTS];
  struct sockaddr_un inward; /* where inward's clients are joined to */
  int npairs, nprobes;
  rl_pair pairs[CONFINE_RELAY_MAX_PAIRS];
  rl_probe probes[RL_MAX_PROBES];
  struct pollfd pfds[2 + RL_SLOTS + 2 * CONFINE_RELAY_MAX_PAIRS + RL_MAX_PROBES];
};

static uint64_t rl_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the listening sockets ----------------------------------------------------------- */

/* Whether a unix socket still has a listener: a stale file refuses connections. */
static int rl_socket_live(const struct sockaddr_un *a) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  int rc = connect(fd, (const struct sockaddr *)a, sizeof *a);
  int live = rc == 0 || errno == EAGAIN || errno == EINPROGRESS;
  close(fd);
  return live;
}

static int rl_listen(confine_relay *r, int i, char *why, size_t whylen) {
  const char *path = r->path[i];
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a.sun_path) {
    snprintf(why, whylen, "socket path too long: %s", path);
    return -1;
  }
  memcpy(a.sun_path, path, strlen(path) + 1);
  struct stat st;
  if (lstat(path, &st) == 0) {
    /* Only a socket left by an earlier relay is replaced, never a file someone made. */
    if (!S_ISSOCK(st.st_mode)) {
      snprintf(why, whylen, "%s exists and is not a socket (left in place)", path);
      return -1;
    }
    if (rl_socket_live(&a)) {
      snprintf(why, whylen, "%s is in use by a listening process", path);
      return -1;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
      snprintf(why, whylen, "removing the stale socket %s: %s", path, strerror(errno));
      return -1;
    }
  } else if (errno != ENOENT) {
    snprintf(why, whylen, "%s: %s", path, strerror(errno));
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(why, whylen, "socket: %s", strerror(errno));
    return -1;
  }
  mode_t old = umask(077); /* the file is born private: no window where others connect */
  int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
  int e = errno;
  umask(old);
  if (rc != 0) {
    snprintf(why, whylen, "bind %s: %s", path, strerror(e));
    close(fd);
    return -1;
  }
  if (chmod(path, 0600) != 0 || listen(fd, SOMAXCONN) != 0 || lstat(path, &st) != 0) {
    snprintf(why, whylen, "listen %s: %s", path, strerror(errno));
    close(fd);
    unlink(path);
    return -1;
  }
  r->dev[i] = st.st_dev;
  r->ino[i] = st.st_ino;
  r->fd[i] = fd;
  return 0;
}

confine_relay *confine_relay_open(const char *path, unsigned port, char *why, size_t whylen) {
  confine_relay *r = calloc(1, sizeof *r);
  if (r == NULL) {
    snprintf(why, whylen, "out of memory");
    return NULL;
  }
  for (int i = 0; i < RL_SLOTS; i++) r->fd[i] = -1;
  r->ifd = -1;
  r->nslots = 2;
  r->port[0] = port;
  if (port < 1 || port > 65535 || snprintf(r->path[0], sizeof r->path[0], "%s", path) >= (int)sizeof r->path[0] ||
      snprintf(r->path[1], sizeof r->path[1], "%s.probe", path) >= (int)sizeof r->path[1]) {
    snprintf(why, whylen, "bad relay %s, port %u", path, port);
    free(r);
    return NULL;
  }
  if (rl_listen(r, 0, why, whylen) != 0) {
    free(r);
    return NULL;
  }
  if (rl_listen(r, 1, why, whylen) != 0) {
    confine_relay_close(r);
    return NULL;
  }
  return r;
}

int confine_relay_service(confine_relay *r, unsigned port, char *why, size_t whylen) {
  if (port < 1 || port > 65535) {
    snprintf(why, whylen, "bad service port %u", port);
    return -1;
  }
  if (r->nslots >= RL_SLOTS) {
    snprintf(why, whylen, "more than %d services to relay", CONFINE_RELAY_MAX_SERVICES);
    return -1;
  }
  for (int i = 0; i < r->nslots; i++)
    if (i != 1 && r->port[i] == port) {
      snprintf(why, whylen, "port %u is relayed twice", port);
      return -1;
    }
  int i = r->nslots;
  /* path[0] is at most CONFINE_RELAY_PATH_MAX bytes, so "PATH.65535" fits like "PATH.probe" */
  if (snprintf(r->path[i], sizeof r->path[i], "%s.%u", r->path[0], port) >= (int)sizeof r->path[i]) {
    snprintf(why, whylen, "socket path too long: %s.%u", r->path[0], port);
    return -1;
  }
  if (rl_listen(r, i, why, whylen) != 0) return -1;
  r->port[i] = port;
  r->nslots++;
  return 0;
}

int confine_relay_inward(confine_relay *r, unsigned port, const char *path, char *why, size_t whylen) {
  if (port < 1 || port > 65535 || strlen(path) >= sizeof r->inward.sun_path) {
    snprintf(why, whylen, "bad inward relay %s, port %u", path, port);
    return -1;
  }
  r->inward.sun_family = AF_UNIX;
  memcpy(r->inward.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(why, whylen, "socket: %s", strerror(errno));
    return -1;
  }
  int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, SOMAXCONN) != 0) {
    snprintf(why, whylen, "inward relay on 127.0.0.1:%u: %s", port, strerror(errno));
    close(fd);
    return -1;
  }
  r->ifd = fd;
  return 0;
}

/* A nonblocking connection to 127.0.0.1:port; *pending when it is still in progress.
 * Returns the socket, or -1 with errno. */
static int rl_connect(unsigned port, int *pending) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  *pending = 0;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
  if (errno == EINPROGRESS) {
    *pending = 1;
    return fd;
  }
  int e = errno;
  close(fd);
  errno = e;
  return -1;
}

/* A nonblocking connection to inward's unix socket, as rl_connect. */
static int rl_connect_inward(const confine_relay *r, int *pending) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  *pending = 0;
  if (connect(fd, (const struct sockaddr *)&r->inward, sizeof r->inward) == 0) return fd;
  if (errno == EINPROGRESS) {
    *pending = 1;
    return fd;
  }
  int e = errno; /* EAGAIN too: a full backlog, which no wait for POLLOUT would clear */
  close(fd);
  errno = e;
  return -1;
}

/* The outcome of a finished nonblocking connect: 0, or the error. */
static int rl_connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

/* ---- relayed connections --------------------------------------------------------------- */

static void rl_pair_free(rl_pair *p) {
  for (int k = 0; k < 2; k++) {
    if (p->fd[k] >= 0) close(p->fd[k]);
    free(p->d[k].buf);
  }
}

/* Takes the clients waiting on lfd (a relay slot's, whose clients go to port) or ifd
 * (inward's), each joined to its upstream. */
static void rl_accept_pairs(confine_relay *r, int lfd, unsigned port) {
  for (int n = 0; n < RL_ACCEPTS; n++) {
    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return; /* EAGAIN, or out of descriptors: the rest wait in the backlog */
    if (r->npairs >= CONFINE_RELAY_MAX_PAIRS) { /* full: the client learns at once */
      close(c);
      continue;
    }
    rl_pair *p = &r->pairs[r->npairs];
    memset(p, 0, sizeof *p);
    p->fd[0] = c;
    p->d[0].buf = malloc(CONFINE_RELAY_BUF);
    p->d[1].buf = malloc(CONFINE_RELAY_BUF);
    p->fd[1] = !p->d[0].buf || !p->d[1].buf ? -1
               : lfd == r->ifd ? rl_connect_inward(r, &p->connecting)
                               : rl_connect(port, &p->connecting);
    if (p->fd[1] < 0) { /* nothing listens (yet): the client is closed */
      rl_pair_free(p);
      continue;
    }
    r->npairs++;
  }
}

/* The poll events a side of a pair waits for. */
static short rl_pair_events(const rl_pair *p, int k) {
  if (p->connecting) return k == 1 ? POLLOUT : 0;
  short ev = 0;
  const rl_dir *from = &p->d[k], *to = &p->d[1 - k];
  if (!from->eof && from->len < CONFINE_RELAY_BUF) ev |= POLLIN; /* k's reading side */
  if (to->len > 0) ev |= POLLOUT;                                /* k as a destination */
  return ev;
}

/* Moves what it can of direction i (from fd[i] to fd[1 - i]); -1 on an error that ends
 * the pair. */
static int rl_pair_move(rl_pair *p, int i, int readable) {
  rl_dir *d = &p->d[i];
  int src = p->fd[i], dst = p->fd[1 - i];
  if (readable && !d->eof && d->len < CONFINE_RELAY_BUF) {
    ssize_t n = recv(src, d->buf + d->len, CONFINE_RELAY_BUF - d->len, 0);
    if (n > 0) d->len += (size_t)n;
    else if (n == 0) d->eof = 1;
    else if (errno != EAGAIN && errno != EINTR) return -1;
  }
  if (d->len > 0) { /* tried at once: usually the destination has room */
    ssize_t n = send(dst, d->buf, d->len, MSG_NOSIGNAL);
    if (n > 0) {
      d->len -= (size_t)n;
      memmove(d->buf, d->buf + n, d->len);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return -1;
    }
  }
  if (d->eof && d->len == 0 && !d->shut) { /* the half-close passed on */
    if (shutdown(dst, SHUT_WR) != 0 && errno != ENOTCONN) return -1;
    d->shut = 1;
  }
  return 0;
}

static void rl_pair_step(rl_pair *p, short rev0, short rev1) {
  if (p->connecting) {
    if (!(rev1 & (POLLOUT | POLLERR | POLLHUP))) return;
    if (rl_connect_result(p->fd[1]) != 0) {
      p->dead = 1;
      return;
    }
    p->connecting = 0;
    rev0 |= POLLIN; /* the client may have sent already */
  }
  short rev[2] = {rev0, rev1};
  for (int i = 0; i < 2 && !p->dead; i++)
    if (rl_pair_move(p, i, (rev[i] & (POLLIN | POLLHUP | POLLERR)) != 0) != 0) p->dead = 1;
  if (p->d[0].shut && p->d[1].shut) p->dead = 1;
}

/* ---- probes ------------------------------------------------------------------------------ */

static void rl_probe_answer(int client, const char *text) {
  ssize_t w = send(client, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)w; /* a probe client that cannot take a dozen bytes gets nothing */
  close(client);
}

static void rl_probe_down(int client, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "down %s\n", strerror(err));
  rl_probe_answer(client, msg);
}

static void rl_accept_probes(confine_relay *r) {
  for (int n = 0; n < RL_ACCEPTS; n++) {
    int c = accept4(r->fd[1], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;
    if (r->nprobes >= RL_MAX_PROBES) {
      rl_probe_answer(c, "down busy\n");
      continue;
    }
    int pending;
    int up = rl_connect(r->port[0], &pending);
    if (up < 0) {
      rl_probe_down(c, errno);
    } else if (!pending) {
      close(up);
      rl_probe_answer(c, "up\n");
    } else {
      r->probes[r->nprobes++] = (rl_probe){.client = c, .up = up, .deadline_ms = rl_now_ms() + CONFINE_RELAY_PROBE_MS};
    }
  }
}

static void rl_probe_step(rl_probe *p, short rev, uint64_t now) {
  if (rev & (POLLOUT | POLLERR | POLLHUP)) {
    int err = rl_connect_result(p->up);
    if (err == 0) rl_probe_answer(p->client, "up\n");
    else rl_probe_down(p->client, err);
  } else if (now >= p->deadline_ms) {
    rl_probe_answer(p->client, "down timeout\n");
  } else {
    return;
  }
  close(p->up);
  p->done = 1;
}

/* ---- the loop ------------------------------------------------------------------------------ */

int confine_relay_run(confine_relay *r, int wake_fd) {
  for (;;) {
    struct pollfd *f = r->pfds;
    int n = 0;
    f[n++] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
    for (int i = 0; i < r->nslots; i++) f[n++] = (struct pollfd){.fd = r->fd[i], .events = POLLIN};
    f[n++] = (struct pollfd){.fd = r->ifd, .events = POLLIN}; /* -1 without inward: ignored */
    for (int i = 0; i < r->npairs; i++)
      for (int k = 0; k < 2; k++) {
        short ev = rl_pair_events(&r->pairs[i], k);
        /* a side with nothing to wait for is left out: its hang-up would wake poll for nothing */
        f[n++] = (struct pollfd){.fd = ev ? r->pairs[i].fd[k] : -1, .events = ev};
      }
    uint64_t now = rl_now_ms();
    int timeout = -1;
    for (int j = 0; j < r->nprobes; j++) {
      f[n++] = (struct pollfd){.fd = r->probes[j].up, .events = POLLOUT};
      uint64_t left = r->probes[j].deadline_ms > now ? r->probes[j].deadline_ms - now : 0;
      if (timeout < 0 || left < (uint64_t)timeout) timeout = (int)left;
    }
    int rc = poll(f, (nfds_t)n, timeout);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    now = rl_now_ms();
    int k = 2 + r->nslots;
    for (int i = 0; i < r->npairs; i++, k += 2) rl_pair_step(&r->pairs[i], f[k].revents, f[k + 1].revents);
    for (int j = 0; j < r->nprobes; j++, k++) rl_probe_step(&r->probes[j], f[k].revents, now);
    /* drop the finished ones, then take new clients: the poll slots above stay in order */
    int m = 0;
    for (int i = 0; i < r->npairs; i++) {
      if (r->pairs[i].dead) rl_pair_free(&r->pairs[i]);
      else r->pairs[m++] = r->pairs[i];
    }
    r->npairs = m;
    m = 0;
    for (int j = 0; j < r->nprobes; j++)
      if (!r->probes[j].done) r->probes[m++] = r->probes[j];
    r->nprobes = m;
    for (int i = 0; i < r->nslots; i++) {
      if (!f[1 + i].revents) continue;
      if (i == 1) rl_accept_probes(r);
      else rl_accept_pairs(r, r->fd[i], r->port[i]);
    }
    if (f[1 + r->nslots].revents) rl_accept_pairs(r, r->ifd, 0);
    if (f[0].revents) return 0;
  }
}

void confine_relay_close(confine_relay *r) {
  if (r == NULL) return;
  for (int i = 0; i < r->npairs; i++) rl_pair_free(&r->pairs[i]);
  for (int j = 0; j < r->nprobes; j++) {
    close(r->probes[j].client);
    close(r->probes[j].up);
  }
  if (r->ifd >= 0) close(r->ifd);
  for (int i = 0; i < RL_SLOTS; i++) {
    if (r->fd[i] < 0) continue;
    close(r->fd[i]);
    /* only the file this relay made: another may have replaced it since */
    struct stat st;
    if (lstat(r->path[i], &st) == 0 && st.st_dev == r->dev[i] && st.st_ino == r->ino[i]) unlink(r->path[i]);
  }
  free(r);
}
