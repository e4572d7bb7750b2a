/* w2floor.c: with the journal floor, the C floor under bench/gitscale.lua's W2 figure: per
 * card, what a C program doing the run's work must do besides its git steps (bench/gitfloor.c)
 * and its journal rows. Its model requests, the bodies an Orket run of the same board sent,
 * replayed in their order to the same fake model server by the least a libcurl client does
 * (one easy handle kept alive, each answer read whole into a buffer, nothing decoded); and
 * the card's file written durably, as write_file writes it (a new file synced, renamed onto
 * its name, its directory synced).
 *   w2floor URL BODIES DIR CARDS  -> prints "us_per_card cpu_us_per_card requests_per_card"
 * BODIES holds one request body a line; the requests are spread over the cards in order
 * (the run made as many for each). DIR must exist; the cards' files are written there and
 * left for the caller to remove. The git floor writes each card's file too (unsynced), so
 * the sum of the floors counts that write twice: a few tens of us against about 5 ms. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "floor.h"

typedef struct buf {
  char *p;
  size_t len, cap;
} buf;

static void out_of_memory(void) {
  fprintf(stderr, "w2floor: out of memory\n");
  exit(1);
}

static int grow(buf *b, size_t need) {
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < need) cap *= 2;
  char *np = realloc(b->p, cap);
  if (np == NULL) return -1;
  b->p = np;
  b->cap = cap;
  return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  buf *b = ud;
  size_t k = size * n;
  if (grow(b, b->len + k) != 0) return 0;
  memcpy(b->p + b->len, p, k);
  b->len += k;
  return k;
}

/* The file of bodies, one a line, into lines (pointers into *all, newlines made NULs). */
static size_t read_bodies(const char *path, char **all, char ***lines) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    exit(1);
  }
  buf b = {0};
  char chunk[65536];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (grow(&b, b.len + k + 1) != 0) out_of_memory();
    memcpy(b.p + b.len, chunk, k);
    b.len += k;
  }
  if (ferror(f)) {
    perror(path);
    exit(1);
  }
  fclose(f);
  if (grow(&b, b.len + 1) != 0) out_of_memory();
  b.p[b.len] = '\0';
  size_t n = 0, cap = 1024;
  char **l = malloc(cap * sizeof *l);
  if (l == NULL) out_of_memory();
  for (char *s = b.p; *s;) {
    char *nl = strchr(s, '\n');
    if (nl) *nl = '\0';
    if (*s) {
      if (n == cap) {
        char **nl2 = realloc(l, (cap *= 2) * sizeof *l);
        if (nl2 == NULL) out_of_memory();
        l = nl2;
      }
      l[n++] = s;
    }
    if (!nl) break;
    s = nl + 1;
  }
  *all = b.p;
  *lines = l;
  return n;
}

/* The card's file, as write_file makes it durable: written, synced, named, its directory synced. */
static void write_durably(int dfd, const char *name, const char *text) {
  char tmp[128];
  snprintf(tmp, sizeof tmp, ".tmp-%s", name);
  int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  size_t len = strlen(text);
  if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0 || close(fd) != 0 ||
      renameat(dfd, tmp, dfd, name) != 0 || fsync(dfd) != 0) {
    perror(name);
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: w2floor URL BODIES DIR CARDS\n");
    return 2;
  }
  const char *url = argv[1];
  int cards = atoi(argv[4]);
  int dfd = open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cards <= 0 || dfd < 0) {
    fprintf(stderr, "w2floor: CARDS must be positive and DIR a directory\n");
    return 2;
  }
  char *all = NULL, **bodies = NULL;
  size_t n = read_bodies(argv[2], &all, &bodies);
  if (n == 0) {
    fprintf(stderr, "w2floor: no request bodies in %s\n", argv[2]);
    return 1;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL *e = curl_easy_init();
  struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
  buf answer = {0};
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  long long t0 = floor_now_us(), c0 = floor_cpu_us();
  size_t next = 0;
  for (int i = 1; i <= cards; i++) {
    size_t upto = n * (size_t)i / (size_t)cards; /* this card's share of the requests, in order */
    for (; next < upto; next++) {
      answer.len = 0;
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, bodies[next]);
      long status = 0;
      CURLcode rc = curl_easy_perform(e);
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      if (rc != CURLE_OK || status != 200 || answer.len == 0) {
        fprintf(stderr, "w2floor: request %zu: %s, status %ld\n", next + 1, curl_easy_strerror(rc), status);
        return 1;
      }
    }
    char name[64], text[96];
    snprintf(name, sizeof name, "f-%d.txt", i);
    snprintf(text, sizeof text, "the change of card B-%d\n", i);
    write_durably(dfd, name, text);
  }
  long long us = floor_now_us() - t0, cpu = floor_cpu_us() - c0;
  printf("%.1f %.1f %.2f\n", (double)us / cards, (double)cpu / cards, (double)n / cards);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(e);
  curl_global_cleanup();
  free(answer.p);
  free(bodies);
  free(all);
  close(dfd);
  return 0;
}
