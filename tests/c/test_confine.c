/* test_confine.c: the confinement helper's spec in argv (encode/decode), its layer names,
 * and the runner's head-and-tail output capture. Running programs is proc_spec.lua's job. */
#include <stdlib.h>
#include <string.h>

#include "confine.h"
#include "proc.h"
#include "tests.h"

TEST(test_confine_layer_names) {
  for (int i = 0; i < CONFINE_NLAYERS; i++) {
    const char *name = confine_layer_name(1u << i);
    CHECK(t, name != NULL);
    if (name) CHECK(t, confine_layer_bit(name) == 1u << i);
  }
  CHECK(t, confine_layer_name(1u << CONFINE_NLAYERS) == NULL);
  CHECK(t, confine_layer_name(3) == NULL);
  CHECK(t, confine_layer_bit("chroot") == 0);
  CHECK_STR(t, confine_layer_name(CONFINE_NETNS), "netns");
  CHECK_STR(t, confine_layer_name(CONFINE_CAPS), "caps");
  CHECK(t, confine_layer_bit("caps") == CONFINE_CAPS);
  CHECK_STR(t, confine_layer_name(CONFINE_LANDLOCK_NET), "landlock_net");
}

TEST(test_confine_spec_roundtrip) {
  char *env[] = {"PATH=/bin", "A=with space", NULL};
  char *argv[] = {"sh", "-c", "echo 1 2", "", NULL};
  confine_spec s = {.want = CONFINE_ALL, .require = CONFINE_NETNS | CONFINE_LANDLOCK,
                    .lim = {1, 2, 3, 4, 5, 6}, .cwd = "/w s", .tmpdir = "/tmp/x", .env = env, .argv = argv};
  char scratch[200];
  char **enc = confine_encode("/bin/orket", &s, scratch, sizeof scratch);
  CHECK(t, enc != NULL);
  if (enc == NULL) return;
  int argc = 0;
  while (enc[argc]) argc++;
  CHECK(t, argc == 6 + 2 + 4);
  CHECK_STR(t, enc[1], CONFINE_ARG);
  confine_spec d;
  char err[128];
  CHECK(t, confine_decode(argc, enc, &d, err, sizeof err) == 0);
  CHECK(t, d.want == s.want && d.require == s.require);
  CHECK(t, d.lim.cpu_seconds == 1 && d.lim.memory == 2 && d.lim.address_space == 3);
  CHECK(t, d.lim.file_size == 4 && d.lim.open_files == 5 && d.lim.processes == 6);
  CHECK_STR(t, d.cwd, "/w s");
  CHECK_STR(t, d.tmpdir, "/tmp/x");
  CHECK_STR(t, d.env[0], "PATH=/bin");
  CHECK_STR(t, d.env[1], "A=with space");
  CHECK(t, d.env[2] == NULL);
  CHECK_STR(t, d.argv[0], "sh");
  CHECK_STR(t, d.argv[2], "echo 1 2");
  CHECK_STR(t, d.argv[3], "");
  CHECK(t, d.argv[4] == NULL);
  free(enc);
}

TEST(test_confine_decode_rejects) {
  char err[128];
  confine_spec d;
  char *few[] = {"orket", CONFINE_ARG, "1 2 3", NULL};
  CHECK(t, confine_decode(3, few, &d, err, sizeof err) == -1);
  char *nums[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 x", "/w", "", "0", "true", NULL};
  CHECK(t, confine_decode(7, nums, &d, err, sizeof err) == -1);
  CHECK(t, strstr(err, "bad numbers") != NULL);
  char *count[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8", "/w", "", "1", "true", NULL};
  CHECK(t, confine_decode(7, count, &d, err, sizeof err) == -1); /* no program left */
  char *rel[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8", "w", "", "0", "true", NULL};
  CHECK(t, confine_decode(7, rel, &d, err, sizeof err) == -1);
  CHECK(t, strstr(err, "not absolute") != NULL);
}

static char *stream_text(const proc_stream *s) {
  size_t n = proc_stream_text(s, NULL, 0);
  char *p = malloc(n + 1);
  proc_stream_text(s, p, n);
  p[n] = '\0';
  return p;
}

TEST(test_proc_stream_head_tail) {
  proc_stream s = {.cap = 8};
  proc_stream_add(&s, "ab", 2);
  char *p = stream_text(&s);
  CHECK_STR(t, p, "ab");
  free(p);
  proc_stream_add(&s, "cdefg", 5); /* head full at 4; the ring holds efg */
  p = stream_text(&s);
  CHECK_STR(t, p, "abcdefg");
  free(p);
  proc_stream_add(&s, "hijklmnopq", 10); /* more than the ring: only its end stays */
  p = stream_text(&s);
  CHECK_STR(t, p, "abcd\n[... 9 bytes omitted ...]\nnopq");
  free(p);
  for (int i = 0; i < 3; i++) proc_stream_add(&s, "xy", 2); /* wraps around the ring */
  p = stream_text(&s);
  CHECK_STR(t, p, "abcd\n[... 15 bytes omitted ...]\nxyxy");
  CHECK(t, s.total == 23);
  free(p);
  free(s.head);
  free(s.tail);
}

TEST(test_proc_stream_grows_as_needed) {
  proc_stream s = {.cap = 1u << 20};
  char chunk[100];
  memset(chunk, 'a', sizeof chunk);
  for (int i = 0; i < 100; i++) proc_stream_add(&s, chunk, sizeof chunk);
  CHECK(t, s.head_len == 10000 && s.total == 10000);
  CHECK(t, s.head_size == 16384); /* not the half MiB the cap allows */
  CHECK(t, s.tail == NULL);
  CHECK(t, proc_stream_text(&s, NULL, 0) == 10000);
  free(s.head);
}
