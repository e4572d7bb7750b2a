/* test_confine_relay.c: the helper's relay run in this process against TCP listeners on
 * this namespace's loopback: each service's socket reaches its own port, and the spec
 * carries the services' ports through argv. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "confine.h"
#include "confine_relay.h"
#include "tests.h"

/* A listener on 127.0.0.1 at a port the kernel picks; *port receives it. */
static int tr_listen(unsigned *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

static int tr_connect_unix(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

typedef struct tr_loop {
  confine_relay *r;
  int wake;
  int rc;
} tr_loop;

static void *tr_run(void *arg) {
  tr_loop *l = arg;
  l->rc = confine_relay_run(l->r, l->wake);
  return NULL;
}

/* A client of the socket at path sends a word; the listener lfd (and no other) accepts it,
 * reads the word and answers; the client reads the answer. 1 when all of that held. */
static int tr_round_trip(const char *path, int lfd, const char *word) {
  int c = tr_connect_unix(path);
  if (c < 0) return 0;
  int ok = send(c, word, strlen(word), MSG_NOSIGNAL) == (ssize_t)strlen(word);
  int s = ok ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC) : -1;
  char got[32] = {0};
  ok = s >= 0 && recv(s, got, strlen(word), MSG_WAITALL) == (ssize_t)strlen(word) && strcmp(got, word) == 0;
  ok = ok && send(s, "ok", 2, MSG_NOSIGNAL) == 2;
  if (s >= 0) close(s);
  memset(got, 0, sizeof got);
  ok = ok && recv(c, got, 2, MSG_WAITALL) == 2 && strcmp(got, "ok") == 0;
  close(c);
  return ok;
}

TEST(test_confine_relay_services) {
  char dir[] = "/tmp/orket-relay-XXXXXX";
  CHECK(t, mkdtemp(dir) != NULL);
  unsigned pa = 0, pb = 0;
  int la = tr_listen(&pa), lb = tr_listen(&pb);
  CHECK(t, la >= 0 && lb >= 0);
  char path[96], why[200], spath[112];
  snprintf(path, sizeof path, "%s/app.sock", dir);
  confine_relay *r = confine_relay_open(path, pa, why, sizeof why);
  CHECK(t, r != NULL);
  if (r == NULL || la < 0 || lb < 0) return;
  CHECK(t, confine_relay_service(r, pb, why, sizeof why) == 0);
  /* the entry's port again, or the same service twice: refused, the relay as it was */
  CHECK(t, confine_relay_service(r, pa, why, sizeof why) == -1 && strstr(why, "twice") != NULL);
  CHECK(t, confine_relay_service(r, pb, why, sizeof why) == -1);
  CHECK(t, confine_relay_service(r, 0, why, sizeof why) == -1);
  snprintf(spath, sizeof spath, "%s.%u", path, pb);
  struct stat st;
  CHECK(t, lstat(spath, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
  int wake[2];
  CHECK(t, pipe(wake) == 0);
  tr_loop loop = {.r = r, .wake = wake[0]};
  pthread_t th;
  CHECK(t, pthread_create(&th, NULL, tr_run, &loop) == 0);
  /* each socket reaches its own port: a client of the service's is accepted by lb only */
  CHECK(t, tr_round_trip(spath, lb, "to-b"));
  CHECK(t, tr_round_trip(path, la, "to-a"));
  CHECK(t, tr_round_trip(spath, lb, "again-b"));
  CHECK(t, write(wake[1], "x", 1) == 1);
  pthread_join(th, NULL);
  CHECK(t, loop.rc == 0);
  confine_relay_close(r);
  /* every socket file it made is gone */
  CHECK(t, lstat(spath, &st) != 0 && lstat(path, &st) != 0);
  close(wake[0]);
  close(wake[1]);
  close(la);
  close(lb);
  rmdir(dir);
}

TEST(test_confine_spec_services) {
  char *env[] = {NULL};
  char *argv[] = {"sh", NULL};
  confine_spec s = {.want = CONFINE_ALL, .cwd = "/w", .tmpdir = "", .env = env, .argv = argv,
                    .flags = CONFINE_F_LOOPBACK, .relay_path = "/srv/sb/app.sock", .relay_port = 8080,
                    .nservices = 2, .service_ports = {8081, 5432}};
  char scratch[384];
  char **enc = confine_encode("/bin/orket", &s, scratch, sizeof scratch);
  CHECK(t, enc != NULL);
  if (enc == NULL) return;
  int argc = 0;
  while (enc[argc]) argc++;
  CHECK_STR(t, enc[6], "8081,5432"); /* after the relay's path */
  confine_spec d;
  char err[128];
  CHECK(t, confine_decode(argc, enc, &d, err, sizeof err) == 0);
  CHECK(t, d.nservices == 2 && d.service_ports[0] == 8081 && d.service_ports[1] == 5432);
  CHECK(t, d.relay_port == 8080 && (d.flags & CONFINE_F_LOOPBACK));
  CHECK_STR(t, d.argv[0], "sh");
  free(enc);
  /* none: the argv as before, no list */
  s.nservices = 0;
  enc = confine_encode("/bin/orket", &s, scratch, sizeof scratch);
  CHECK(t, enc != NULL);
  if (enc == NULL) return;
  argc = 0;
  while (enc[argc]) argc++;
  CHECK(t, confine_decode(argc, enc, &d, err, sizeof err) == 0 && d.nservices == 0 && !(d.flags & CONFINE_F_SERVICES));
  free(enc);
  /* bad lists: the relay's port, a port twice, past 65535, not a number, and a list without a relay */
  const char *bad[] = {"8081,8080", "8081,8081", "70000", "80a", "", ",1", "+5"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *a[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 6 0 8080", "/w", "", "/a.sock", (char *)bad[i], "0", "true", NULL};
    CHECK(t, confine_decode(9, a, &d, err, sizeof err) == -1 && strstr(err, "bad service ports") != NULL);
  }
  char *norelay[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 4 0", "/w", "", "8081", "0", "true", NULL};
  CHECK(t, confine_decode(8, norelay, &d, err, sizeof err) == -1 && strstr(err, "only with a relay") != NULL);
}
