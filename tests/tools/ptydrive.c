/* ptydrive.c: runs a command on a pseudo-terminal and drives it like a person at a
 * keyboard, for end-to-end tests of `orket repl` (line editing, Ctrl-C, Ctrl-D).
 *   ptydrive [-t SECONDS] -- CMD ARGS... < steps
 * Steps, one per line: "send TEXT" (TEXT then Enter), "keys TEXT" (TEXT as is, with \n,
 * \t, \x03 escapes), "expect TEXT" (wait until the output since the last expect contains
 * TEXT), "sleep MS", "eof" (Ctrl-D). The transcript goes to stdout; exit 0 when every
 * expect matched and the command exited 0, else 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct drive {
  int fd;
  char *buf; /* output since the last successful expect */
  size_t len, cap;
} drive;

static double drive_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads what is available within ms; returns 0 at end of output. */
static int drive_pump(drive *d, int ms) {
  struct pollfd p = {.fd = d->fd, .events = POLLIN};
  if (poll(&p, 1, ms) <= 0) return 1;
  char chunk[4096];
  ssize_t n = read(d->fd, chunk, sizeof chunk);
  if (n <= 0) return 0;
  fwrite(chunk, 1, (size_t)n, stdout);
  fflush(stdout);
  if (d->len + (size_t)n + 1 > d->cap) {
    d->cap = (d->len + (size_t)n + 1) * 2;
    d->buf = realloc(d->buf, d->cap);
    if (d->buf == NULL) exit(2);
  }
  memcpy(d->buf + d->len, chunk, (size_t)n);
  d->len += (size_t)n;
  d->buf[d->len] = '\0';
  return 1;
}

static void drive_unescape(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (*p == '\\' && p[1] == 'n') { *o++ = '\r'; p++; }
    else if (*p == '\\' && p[1] == 't') { *o++ = '\t'; p++; }
    else if (*p == '\\' && p[1] == 'x' && p[2] && p[3]) {
      char hex[3] = {p[2], p[3], 0};
      *o++ = (char)strtol(hex, NULL, 16);
      p += 3;
    } else *o++ = *p;
  }
  *o = '\0';
}

int main(int argc, char **argv) {
  double timeout = 10;
  int i = 1;
  if (i + 1 < argc && strcmp(argv[i], "-t") == 0) { timeout = atof(argv[i + 1]); i += 2; }
  if (i < argc && strcmp(argv[i], "--") == 0) i++;
  if (i >= argc) {
    fprintf(stderr, "usage: ptydrive [-t SECONDS] -- CMD ARGS... < steps\n");
    return 2;
  }
  struct winsize ws = {.ws_row = 24, .ws_col = 100};
  int fd;
  pid_t pid = forkpty(&fd, NULL, NULL, &ws);
  if (pid < 0) { perror("forkpty"); return 2; }
  if (pid == 0) {
    execvp(argv[i], argv + i);
    perror("exec");
    _exit(127);
  }
  drive d = {.fd = fd};
  int failed = 0;
  char line[8192];
  while (!failed && fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "send ", 5) == 0) {
      drive_unescape(line + 5);
      dprintf(fd, "%s\r", line + 5);
    } else if (strncmp(line, "keys ", 5) == 0) {
      drive_unescape(line + 5);
      if (write(fd, line + 5, strlen(line + 5)) < 0) failed = 1;
    } else if (strcmp(line, "eof") == 0) {
      if (write(fd, "\x04", 1) < 0) failed = 1;
    } else if (strncmp(line, "sleep ", 6) == 0) {
      double until = drive_now() + atof(line + 6) / 1000;
      while (drive_now() < until && drive_pump(&d, 10)) {}
    } else if (strncmp(line, "expect ", 7) == 0) {
      const char *want = line + 7;
      double until = drive_now() + timeout;
      char *hit = NULL;
      while (!(hit = d.buf ? strstr(d.buf, want) : NULL) && drive_now() < until)
        if (!drive_pump(&d, 50)) break;
      if (!hit) {
        fprintf(stdout, "\n[ptydrive: expected \"%s\" within %.0f s]\n", want, timeout);
        failed = 1;
      } else { /* later expects look only after this match */
        size_t keep = d.len - (size_t)(hit + strlen(want) - d.buf);
        memmove(d.buf, hit + strlen(want), keep + 1);
        d.len = keep;
      }
    }
  }
  double until = drive_now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (drive_now() > until) {
      kill(pid, SIGKILL);
      fprintf(stdout, "\n[ptydrive: command did not exit]\n");
      failed = 1;
      waitpid(pid, &status, 0);
      break;
    }
    drive_pump(&d, 20);
  }
  while (drive_pump(&d, 0) && d.len < (1u << 20)) {}
  free(d.buf);
  close(fd);
  int ok = !failed && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  fprintf(stdout, "\n[ptydrive: %s, exit %d]\n", ok ? "ok" : "FAILED",
          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return ok ? 0 : 1;
}
