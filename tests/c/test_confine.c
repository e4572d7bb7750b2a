/* test_confine.c: the confinement helper's spec in argv (encode/decode), its layer names,
 * and the runner's head-and-tail output capture. Running programs is proc_spec.lua's job. */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <string.h>

#include "confine.h"
#include "confine_pids.h"
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
  CHECK(t, argc == 6 + 4); /* the env's values are not in argv: any local user reads it */
  CHECK_STR(t, enc[1], CONFINE_ARG);
  for (int i = 0; i < argc; i++) CHECK(t, strstr(enc[i], "with space") == NULL && strstr(enc[i], "PATH") == NULL);
  confine_spec d;
  char err[128];
  CHECK(t, confine_decode(argc, enc, &d, err, sizeof err) == 0);
  CHECK(t, d.nenv == 2 && d.env == NULL);
  char **henv = confine_encode_env(&s);
  CHECK(t, henv != NULL);
  if (henv == NULL) return;
  CHECK_STR(t, henv[0], CONFINE_ENV_PREFIX "0=PATH=/bin");
  CHECK_STR(t, henv[1], CONFINE_ENV_PREFIX "1=A=with space");
  CHECK(t, henv[2] == NULL);
  CHECK(t, confine_decode_env(henv, &d, err, sizeof err) == 0);
  /* taken out of the helper's environment: /proc/PID/environ no longer shows them */
  CHECK(t, henv[0][0] == '\0' && henv[1][0] == '\0');
  free(henv);
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
  free((void *)d.env);
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
  char *noprog[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8", "/w", "", "1", NULL};
  CHECK(t, confine_decode(6, noprog, &d, err, sizeof err) == -1); /* no program */
  char *count[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8", "/w", "", "2", "true", NULL};
  CHECK(t, confine_decode(7, count, &d, err, sizeof err) == 0 && d.nenv == 2);
  /* the environment must hold entries 0 and 1, each once; others are ignored */
  char e0[] = CONFINE_ENV_PREFIX "0=A=1", e1[] = CONFINE_ENV_PREFIX "1=B=2", e1b[] = CONFINE_ENV_PREFIX "1=C=3";
  char e2[] = CONFINE_ENV_PREFIX "2=D=4", e01[] = CONFINE_ENV_PREFIX "01=E=5", other[] = "LD_PRELOAD=/x.so";
  char *missing[] = {e0, other, e2, e01, NULL};
  CHECK(t, confine_decode_env(missing, &d, err, sizeof err) == -1);
  CHECK(t, strstr(err, "holds 1 entries, the spec counts 2") != NULL);
  char *twice[] = {e1, e0, e1b, NULL};
  CHECK(t, confine_decode_env(twice, &d, err, sizeof err) == -1 && strstr(err, "entry 1 given twice") != NULL);
  char *shuffled[] = {e1, other, e0, NULL};
  CHECK(t, confine_decode_env(shuffled, &d, err, sizeof err) == 0);
  CHECK_STR(t, d.env[0], "A=1");
  CHECK_STR(t, d.env[1], "B=2");
  CHECK(t, d.env[2] == NULL);
  CHECK_STR(t, other, "LD_PRELOAD=/x.so");
  CHECK(t, e0[0] == '\0' && e1[0] == '\0');
  free((void *)d.env);
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

TEST(test_confine_spec_paths) {
  char *env[] = {"PATH=/bin", NULL};
  char *argv[] = {"true", NULL};
  char *binds[] = {"r/opt/jdk", "w/var/cache/x"};
  confine_spec s = {.want = CONFINE_ALL, .cwd = "/w", .tmpdir = "/tmp/x", .env = env, .argv = argv,
                    .flags = CONFINE_F_UNIX | CONFINE_F_LOOPBACK | CONFINE_F_SESSIONS, .nbinds = 2,
                    .binds = binds};
  char scratch[200];
  char **enc = confine_encode("/bin/orket", &s, scratch, sizeof scratch);
  CHECK(t, enc != NULL);
  if (enc == NULL) return;
  int argc = 0;
  while (enc[argc]) argc++;
  CHECK(t, argc == 6 + 2 + 1);
  confine_spec d;
  char err[128];
  CHECK(t, confine_decode(argc, enc, &d, err, sizeof err) == 0);
  CHECK(t, d.flags == (CONFINE_F_UNIX | CONFINE_F_LOOPBACK | CONFINE_F_SESSIONS) && d.nbinds == 2);
  CHECK_STR(t, d.binds[0], "r/opt/jdk");
  CHECK_STR(t, d.binds[1], "w/var/cache/x");
  CHECK(t, d.nenv == 1);
  CHECK_STR(t, d.argv[0], "true");
  CHECK(t, d.argv[1] == NULL);
  free(enc);
  /* the older eight numbers still decode, with no flags and no paths */
  char *old[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8", "/w", "", "0", "true", NULL};
  CHECK(t, confine_decode(7, old, &d, err, sizeof err) == 0);
  CHECK(t, d.flags == 0 && d.nbinds == 0);
  /* a path that is not clean, a tag that is neither r nor w, more paths than arguments */
  char *dots[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 0 1", "/w", "", "0", "r/a/../etc", "true", NULL};
  CHECK(t, confine_decode(8, dots, &d, err, sizeof err) == -1);
  CHECK(t, strstr(err, "bad extra path") != NULL);
  char *tag[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 0 1", "/w", "", "0", "x/opt", "true", NULL};
  CHECK(t, confine_decode(8, tag, &d, err, sizeof err) == -1);
  char *many[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 0 2", "/w", "", "0", "r/opt", "true", NULL};
  CHECK(t, confine_decode(8, many, &d, err, sizeof err) == -1);
  CHECK(t, strstr(err, "bad path count") != NULL);
}

TEST(test_confine_spec_inward) {
  char *env[] = {"PATH=/bin", NULL};
  char *argv[] = {"chromedriver", "--port=9515", NULL};
  confine_spec s = {.want = CONFINE_USERNS | CONFINE_NETNS, .cwd = "/p", .tmpdir = "", .env = env,
                    .argv = argv, .flags = CONFINE_F_LOOPBACK, .relay_path = "/p/driver.sock",
                    .relay_port = 9515, .inward_path = "/p/app.sock", .inward_port = 8080, .run_as = 65534};
  char scratch[256];
  char **enc = confine_encode("/bin/orket", &s, scratch, sizeof scratch);
  CHECK(t, enc != NULL);
  if (enc == NULL) return;
  int argc = 0;
  while (enc[argc]) argc++;
  CHECK(t, argc == 5 + 2 + 1 + 2);
  confine_spec d;
  char err[128];
  CHECK(t, confine_decode(argc, enc, &d, err, sizeof err) == 0);
  CHECK_STR(t, d.relay_path, "/p/driver.sock");
  CHECK(t, d.relay_port == 9515 && d.inward_port == 8080 && d.run_as == 65534);
  CHECK_STR(t, d.inward_path, "/p/app.sock");
  CHECK(t, d.nenv == 1);
  CHECK_STR(t, d.argv[0], "chromedriver");
  CHECK(t, d.argv[2] == NULL);
  free(enc);
  /* run_as alone: no relay, no paths */
  confine_spec s2 = {.cwd = "/p", .tmpdir = "", .env = env, .argv = argv, .run_as = 65534};
  enc = confine_encode("/bin/orket", &s2, scratch, sizeof scratch);
  CHECK(t, enc != NULL);
  if (enc == NULL) return;
  argc = 0;
  while (enc[argc]) argc++;
  CHECK(t, confine_decode(argc, enc, &d, err, sizeof err) == 0);
  CHECK(t, d.relay_path == NULL && d.inward_path == NULL && d.run_as == 65534);
  CHECK_STR(t, d.argv[0], "chromedriver");
  free(enc);
  /* an inward relay without a relay, a bad inward path, an inward port past 65535 */
  char *alone[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 0 0 0 80 0", "/w", "", "/p/a.sock", "0", "true", NULL};
  CHECK(t, confine_decode(8, alone, &d, err, sizeof err) == -1);
  CHECK(t, strstr(err, "only with a relay") != NULL);
  char *dots[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 0 0 9 80 0", "/w", "", "/p/d", "/p/../a", "0", "true", NULL};
  CHECK(t, confine_decode(9, dots, &d, err, sizeof err) == -1);
  CHECK(t, strstr(err, "bad inward path") != NULL);
  char *big[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 0 0 9 70000 0", "/w", "", "/p/d", "/p/a", "0", "true", NULL};
  CHECK(t, confine_decode(9, big, &d, err, sizeof err) == -1);
  CHECK(t, strstr(err, "bad inward port") != NULL);
}

TEST(test_confine_path_ok) {
  CHECK(t, confine_path_ok("/opt"));
  CHECK(t, confine_path_ok("/opt/jdk-21/lib"));
  CHECK(t, confine_path_ok("/a/.hidden/..x"));
  CHECK(t, !confine_path_ok("/"));
  CHECK(t, !confine_path_ok(""));
  CHECK(t, !confine_path_ok("opt"));
  CHECK(t, !confine_path_ok("/opt/"));
  CHECK(t, !confine_path_ok("/opt//jdk"));
  CHECK(t, !confine_path_ok("/opt/./jdk"));
  CHECK(t, !confine_path_ok("/opt/.."));
  CHECK(t, !confine_path_ok("/../etc"));
  CHECK(t, !confine_path_ok(NULL));
}

static const confine_mount *plan_find(const confine_mount *p, size_t n, const char *dest, size_t *at) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(p[i].dest, dest) == 0) {
      if (at) *at = i;
      return &p[i];
    }
  return NULL;
}

TEST(test_confine_view_plan) {
  char *argv[] = {"true", NULL};
  /* an extra read-only path that holds the workspace comes before it, so the workspace
   * shows through; a deeper read-write one after */
  char *binds[] = {"w/srv/proj/ws/out", "r/srv/proj", "r/opt/jdk"};
  confine_spec s = {.cwd = "/srv/proj/ws", .tmpdir = "/tmp/orket-run-1", .argv = argv, .nbinds = 3,
                    .binds = binds};
  size_t cap = confine_view_size(&s);
  confine_mount *p = malloc(cap * sizeof *p);
  size_t n = confine_view_plan(&s, p);
  CHECK(t, n <= cap);
  size_t i_proj = 0, i_ws = 0, i_out = 0, i_tmp = 0, i_run = 0, i_dev = 0, i_null = 0;
  CHECK(t, plan_find(p, n, "/usr", NULL) && plan_find(p, n, "/usr", NULL)->kind == CONFINE_M_SYS);
  CHECK(t, plan_find(p, n, "/etc/ssl", NULL) && plan_find(p, n, "/etc/ssl", NULL)->kind == CONFINE_M_ETC);
  CHECK(t, plan_find(p, n, "/etc/passwd", NULL)->kind == CONFINE_M_ACCOUNTS);
  /* never the secrets, the host's runtime state or homes */
  CHECK(t, plan_find(p, n, "/etc/shadow", NULL) == NULL);
  CHECK(t, plan_find(p, n, "/etc/gshadow", NULL) == NULL);
  CHECK(t, plan_find(p, n, "/etc", NULL) == NULL);
  CHECK(t, plan_find(p, n, "/run", NULL) == NULL);
  CHECK(t, plan_find(p, n, "/var/run", NULL) == NULL);
  CHECK(t, plan_find(p, n, "/home", NULL) == NULL);
  CHECK(t, plan_find(p, n, "/root", NULL) == NULL);
  CHECK(t, plan_find(p, n, "/srv/proj", &i_proj)->kind == CONFINE_M_RO);
  CHECK(t, plan_find(p, n, "/srv/proj/ws", &i_ws)->kind == CONFINE_M_RW);
  CHECK(t, plan_find(p, n, "/srv/proj/ws/out", &i_out)->kind == CONFINE_M_RW);
  CHECK(t, plan_find(p, n, "/opt/jdk", NULL)->kind == CONFINE_M_RO);
  CHECK(t, i_proj < i_ws && i_ws < i_out);
  CHECK(t, plan_find(p, n, "/tmp", &i_tmp)->kind == CONFINE_M_TMPFS);
  CHECK(t, plan_find(p, n, "/tmp/orket-run-1", &i_run)->kind == CONFINE_M_RW);
  CHECK(t, i_tmp < i_run);
  CHECK(t, plan_find(p, n, "/dev", &i_dev)->kind == CONFINE_M_TMPFS);
  CHECK(t, plan_find(p, n, "/dev/null", &i_null)->kind == CONFINE_M_DEV);
  CHECK(t, i_dev < i_null);
  CHECK(t, plan_find(p, n, "/dev/sda", NULL) == NULL);
  CHECK(t, plan_find(p, n, "/proc", NULL)->kind == CONFINE_M_PROC);
  CHECK_STR(t, plan_find(p, n, "/dev/fd", NULL)->src, "/proc/self/fd");
  free(p);
}

TEST(test_confine_strip_accounts) {
  const char *in = "root:$6$salt$hash:0:0:root:/root:/bin/bash\nbob::1000:1000::/home/bob:/bin/sh\n"
                   "# a comment\nstaff:x:50:bob,ann\nnofields";
  size_t len = strlen(in);
  char *out = malloc(len + len / 2 + 2);
  size_t n = confine_strip_accounts(in, len, out);
  out[n] = '\0';
  CHECK_STR(t, out, "root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/sh\nstaff:x:50:bob,ann\n");
  CHECK(t, strstr(out, "$6$") == NULL);
  free(out);
}

TEST(test_confine_spec_relay) {
  char *env[] = {"PATH=/bin", NULL};
  char *argv[] = {"node", "app.js", NULL};
  char *binds[] = {"r/opt/node"};
  confine_spec s = {.want = CONFINE_ALL, .cwd = "/w", .tmpdir = "/tmp/x", .env = env, .argv = argv,
                    .flags = CONFINE_F_LOOPBACK, .nbinds = 1, .binds = binds,
                    .relay_path = "/srv/sb/app.sock", .relay_port = 8080};
  char scratch[220];
  char **enc = confine_encode("/bin/orket", &s, scratch, sizeof scratch);
  CHECK(t, enc != NULL);
  if (enc == NULL) return;
  int argc = 0;
  while (enc[argc]) argc++;
  CHECK(t, argc == 7 + 1 + 2); /* the relay's path is one more argument */
  CHECK_STR(t, enc[5], "/srv/sb/app.sock");
  confine_spec d;
  char err[128];
  CHECK(t, confine_decode(argc, enc, &d, err, sizeof err) == 0);
  CHECK_STR(t, d.relay_path, "/srv/sb/app.sock");
  CHECK(t, d.relay_port == 8080);
  CHECK(t, d.flags == CONFINE_F_LOOPBACK && d.nbinds == 1);
  CHECK_STR(t, d.binds[0], "r/opt/node");
  CHECK(t, d.nenv == 1);
  CHECK_STR(t, d.argv[0], "node");
  CHECK_STR(t, d.argv[1], "app.js");
  CHECK(t, d.argv[2] == NULL);
  free(enc);
  /* without a relay nothing changes: no path argument, and none decoded */
  s.relay_path = NULL;
  enc = confine_encode("/bin/orket", &s, scratch, sizeof scratch);
  CHECK(t, enc != NULL);
  if (enc == NULL) return;
  argc = 0;
  while (enc[argc]) argc++;
  CHECK(t, argc == 6 + 1 + 2);
  CHECK(t, confine_decode(argc, enc, &d, err, sizeof err) == 0);
  CHECK(t, d.relay_path == NULL && d.relay_port == 0);
  free(enc);
  /* a bad port, a path that is relative, unclean or too long for the probe's address */
  char *port0[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 2 0 0", "/w", "", "/a.sock", "0", "true", NULL};
  CHECK(t, confine_decode(8, port0, &d, err, sizeof err) == -1);
  CHECK(t, strstr(err, "bad relay port") != NULL);
  char *port_big[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 2 0 65536", "/w", "", "/a.sock", "0", "true", NULL};
  CHECK(t, confine_decode(8, port_big, &d, err, sizeof err) == -1);
  char *rel[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 2 0 80", "/w", "", "a.sock", "0", "true", NULL};
  CHECK(t, confine_decode(8, rel, &d, err, sizeof err) == -1);
  CHECK(t, strstr(err, "bad relay path") != NULL);
  char *dots[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 2 0 80", "/w", "", "/a/../b.sock", "0", "true", NULL};
  CHECK(t, confine_decode(8, dots, &d, err, sizeof err) == -1);
  char longp[120];
  memset(longp, 'x', sizeof longp);
  longp[0] = '/';
  longp[CONFINE_RELAY_PATH_MAX + 1] = '\0'; /* one byte too many */
  char *toolong[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 2 0 80", "/w", "", longp, "0", "true", NULL};
  CHECK(t, confine_decode(8, toolong, &d, err, sizeof err) == -1);
  longp[CONFINE_RELAY_PATH_MAX] = '\0'; /* the longest that fits */
  char *fits[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 2 0 80", "/w", "", longp, "0", "true", NULL};
  CHECK(t, confine_decode(8, fits, &d, err, sizeof err) == 0);
  CHECK(t, strlen(d.relay_path) + sizeof ".probe" <= 108);
  /* the relay's argument missing altogether: too few left for a program */
  char *short_[] = {"orket", CONFINE_ARG, "1 2 3 4 5 6 7 8 2 0 80", "/w", "", "/a.sock", "0", NULL};
  CHECK(t, confine_decode(7, short_, &d, err, sizeof err) == -1);
  CHECK(t, confine_relay_path_ok("/srv/a.sock") && !confine_relay_path_ok("/srv/") && !confine_relay_path_ok(NULL));
}

/* Where the run's pids cgroup goes: this process's cgroup in the hierarchy with pids,
 * read from /proc/self/cgroup and /proc/self/mountinfo as a hybrid, a pure v2 and a
 * container's layout give them. */
TEST(test_confine_pids_paths) {
  char own[256], mnt[256], root[256], dir[256];
  const char *hybrid_cg = "9:name=systemd:/\n8:pids:/user.slice\n4:memory:/a/b\n0::/\n";
  CHECK(t, confine_pids_own(hybrid_cg, 0, own, sizeof own) == 0);
  CHECK_STR(t, own, "/user.slice");
  CHECK(t, confine_pids_own(hybrid_cg, 1, own, sizeof own) == 0);
  CHECK_STR(t, own, "/");
  /* "pids" must be a whole controller name, not part of one */
  CHECK(t, confine_pids_own("3:notpids,cpu:/x\n", 0, own, sizeof own) == -1);
  CHECK(t, confine_pids_own("3:cpu,pids:/x\n", 0, own, sizeof own) == 0);
  CHECK_STR(t, own, "/x");
  CHECK(t, confine_pids_own("", 1, own, sizeof own) == -1);
  CHECK(t, confine_pids_own("0::/a\n", 1, own, 2) == -1); /* does not fit */

  const char *mi =
      "24 30 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
      "35 24 0:30 / /sys/fs/cgroup/pids rw,relatime shared:15 - cgroup cgroup rw,pids\n"
      "36 24 0:31 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "37 24 0:32 / /sys/fs/cgroup/un\\040ified rw,relatime - cgroup2 cgroup2 rw\n";
  CHECK(t, confine_pids_mount(mi, 0, mnt, sizeof mnt, root, sizeof root) == 0);
  CHECK_STR(t, mnt, "/sys/fs/cgroup/pids");
  CHECK_STR(t, root, "/");
  CHECK(t, confine_pids_mount(mi, 1, mnt, sizeof mnt, root, sizeof root) == 0);
  CHECK_STR(t, mnt, "/sys/fs/cgroup/un ified"); /* the kernel's \040 undone */
  CHECK(t, confine_pids_mount("36 24 0:31 / /c rw - cgroup cgroup rw,cpu\n", 0, mnt, sizeof mnt, root,
                              sizeof root) == -1);
  /* optional fields before the separator; a container's mount of a subtree */
  const char *ct = "50 40 0:33 /docker/abc /sys/fs/cgroup rw master:9 shared:2 - cgroup2 cgroup2 rw\n";
  CHECK(t, confine_pids_mount(ct, 1, mnt, sizeof mnt, root, sizeof root) == 0);
  CHECK_STR(t, root, "/docker/abc");

  CHECK(t, confine_pids_dir("/sys/fs/cgroup/pids", "/", "/", dir, sizeof dir) == 0);
  CHECK_STR(t, dir, "/sys/fs/cgroup/pids");
  CHECK(t, confine_pids_dir("/sys/fs/cgroup/pids", "/", "/user.slice", dir, sizeof dir) == 0);
  CHECK_STR(t, dir, "/sys/fs/cgroup/pids/user.slice");
  CHECK(t, confine_pids_dir("/sys/fs/cgroup", "/docker/abc", "/docker/abc/init", dir, sizeof dir) == 0);
  CHECK_STR(t, dir, "/sys/fs/cgroup/init");
  CHECK(t, confine_pids_dir("/sys/fs/cgroup", "/docker/abc", "/docker/abc", dir, sizeof dir) == 0);
  CHECK_STR(t, dir, "/sys/fs/cgroup");
  /* outside the mounted subtree, or a sibling sharing its prefix */
  CHECK(t, confine_pids_dir("/sys/fs/cgroup", "/docker/abc", "/other", dir, sizeof dir) == -1);
  CHECK(t, confine_pids_dir("/sys/fs/cgroup", "/docker/abc", "/docker/abcd", dir, sizeof dir) == -1);
  CHECK(t, confine_pids_dir("/sys/fs/cgroup", "/", "/x", dir, 8) == -1);
}

/* A run's temp dir left by an Orket process killed outright: swept once no process has its
 * pid in this PID namespace; a live one's is kept, as is one named for another namespace,
 * and a link named like a dead one's is neither followed nor removed. */
TEST(test_proc_sweep_tmp) {
  char base[] = "/tmp/orket-sweep-XXXXXX", p[160], q[256];
  struct stat st;
  CHECK(t, mkdtemp(base) != NULL);
  CHECK(t, stat("/proc/self/ns/pid", &st) == 0);
  unsigned long ns = (unsigned long)st.st_ino;
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  CHECK(t, dead > 0 && waitpid(dead, NULL, 0) == dead);
  /* a dead pid's dir, with a file and a dir inside */
  snprintf(p, sizeof p, "%s/orket-run-%d-%lu-abc123", base, (int)dead, ns);
  CHECK(t, mkdir(p, 0700) == 0);
  snprintf(q, sizeof q, "%.150s/sub", p);
  CHECK(t, mkdir(q, 0700) == 0);
  snprintf(q, sizeof q, "%.150s/sub/f", p);
  FILE *f = fopen(q, "w");
  CHECK(t, f != NULL);
  fclose(f);
  /* inside it, a link to a dir outside (as a run's program left it, or swapped in for a
   * subdir while the sweep ran): removed as a link, its target untouched (checked below) */
  snprintf(q, sizeof q, "%.150s/out", p);
  char outside[200];
  snprintf(outside, sizeof outside, "%s/outside", base);
  CHECK(t, mkdir(outside, 0700) == 0);
  CHECK(t, symlink(outside, q) == 0);
  snprintf(q, sizeof q, "%s/outside/keep", base);
  f = fopen(q, "w");
  CHECK(t, f != NULL);
  fclose(f);
  /* a live pid's (this process's) */
  snprintf(p, sizeof p, "%s/orket-run-%d-%lu-def456", base, (int)getpid(), ns);
  CHECK(t, mkdir(p, 0700) == 0);
  /* the dead pid in another PID namespace: a process there may have it */
  snprintf(p, sizeof p, "%s/orket-run-%d-%lu-jkl012", base, (int)dead, ns + 1);
  CHECK(t, mkdir(p, 0700) == 0);
  /* a link named for the dead pid, to a dir holding a file that must survive */
  snprintf(p, sizeof p, "%s/target", base);
  CHECK(t, mkdir(p, 0700) == 0);
  snprintf(q, sizeof q, "%s/target/keep", base);
  f = fopen(q, "w");
  CHECK(t, f != NULL);
  fclose(f);
  snprintf(q, sizeof q, "%s/orket-run-%d-%lu-ghi789", base, (int)dead, ns);
  CHECK(t, symlink(p, q) == 0);
  /* a stdio MCP server's scratch dir (orket.mcp.client), named the same way: a dead pid's
   * swept, a live one's kept */
  snprintf(p, sizeof p, "%s/orket-mcp-%d-%lu-mno345", base, (int)dead, ns);
  CHECK(t, mkdir(p, 0700) == 0);
  snprintf(q, sizeof q, "%.150s/f", p);
  f = fopen(q, "w");
  CHECK(t, f != NULL);
  fclose(f);
  snprintf(p, sizeof p, "%s/orket-mcp-%d-%lu-pqr678", base, (int)getpid(), ns);
  CHECK(t, mkdir(p, 0700) == 0);
  /* names that are not a run's temp dir (a cgroup's, no pid) are left */
  snprintf(p, sizeof p, "%s/orket-run-%d", base, (int)dead);
  CHECK(t, mkdir(p, 0700) == 0);
  snprintf(p, sizeof p, "%s/orket-run-XyZ123", base);
  CHECK(t, mkdir(p, 0700) == 0);

  proc_sweep_tmp(base);

  snprintf(p, sizeof p, "%s/orket-run-%d-%lu-abc123", base, (int)dead, ns);
  CHECK(t, lstat(p, &st) != 0);
  snprintf(p, sizeof p, "%s/orket-run-%d-%lu-def456", base, (int)getpid(), ns);
  CHECK(t, lstat(p, &st) == 0 && S_ISDIR(st.st_mode));
  snprintf(p, sizeof p, "%s/orket-run-%d-%lu-jkl012", base, (int)dead, ns + 1);
  CHECK(t, lstat(p, &st) == 0 && S_ISDIR(st.st_mode));
  snprintf(q, sizeof q, "%s/orket-run-%d-%lu-ghi789", base, (int)dead, ns);
  CHECK(t, lstat(q, &st) == 0 && S_ISLNK(st.st_mode));
  snprintf(q, sizeof q, "%s/target/keep", base);
  CHECK(t, lstat(q, &st) == 0);
  snprintf(q, sizeof q, "%s/outside/keep", base);
  CHECK(t, lstat(q, &st) == 0);
  snprintf(p, sizeof p, "%s/orket-run-%d", base, (int)dead);
  CHECK(t, lstat(p, &st) == 0);
  snprintf(p, sizeof p, "%s/orket-run-XyZ123", base);
  CHECK(t, lstat(p, &st) == 0);
  snprintf(p, sizeof p, "%s/orket-mcp-%d-%lu-mno345", base, (int)dead, ns);
  CHECK(t, lstat(p, &st) != 0);
  snprintf(p, sizeof p, "%s/orket-mcp-%d-%lu-pqr678", base, (int)getpid(), ns);
  CHECK(t, lstat(p, &st) == 0 && S_ISDIR(st.st_mode));

  CHECK(t, confine_pids_stale("orket-run-1-x", 1) == 0); /* init lives */
  CHECK(t, confine_pids_stale("orket-run--5-x", 1) == 0);
  CHECK(t, confine_pids_stale("orket-run-99999999999-x", 1) == 0);
  snprintf(p, sizeof p, "orket-run-%d-", (int)dead);
  CHECK(t, confine_pids_stale(p, 1) == 0);
  snprintf(p, sizeof p, "orket-run-%d", (int)dead);
  CHECK(t, confine_pids_stale(p, 0) == 1 && confine_pids_stale(p, 1) == 0);
  /* an MCP server's temp dir is one; a cgroup is never named so */
  snprintf(p, sizeof p, "orket-mcp-%d-x", (int)dead);
  CHECK(t, confine_pids_stale(p, 1) == 1);
  snprintf(p, sizeof p, "orket-mcp-%d", (int)dead);
  CHECK(t, confine_pids_stale(p, 0) == 0);

  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", base);
  CHECK(t, system(cmd) == 0);
}

/* Waits (2 s at most) until /proc/PID/stat says state; 1 when it did. */
static int wait_state(pid_t pid, char state) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  for (int i = 0; i < 400; i++) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    const char *e = strrchr(buf, ')');
    if (e && e[1] == ' ' && e[2] == state) return 1;
    usleep(5000);
  }
  return 0;
}

static void *park(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

/* An Orket process that has exited but is not yet reaped (a zombie) is gone: its temp dirs
 * and cgroup name are stale and swept. A process whose first thread ended alone
 * (pthread_exit) while another runs shows Z too, and is alive. */
TEST(test_pids_stale_zombie) {
  char base[] = "/tmp/orket-sweep-XXXXXX", p[160], name[64];
  struct stat st;
  CHECK(t, mkdtemp(base) != NULL);
  CHECK(t, stat("/proc/self/ns/pid", &st) == 0);
  unsigned long ns = (unsigned long)st.st_ino;
  pid_t zombie = fork();
  if (zombie == 0) _exit(0);
  CHECK(t, zombie > 0 && wait_state(zombie, 'Z'));
  snprintf(p, sizeof p, "%s/orket-run-%d-%lu-abc123", base, (int)zombie, ns);
  CHECK(t, mkdir(p, 0700) == 0);
  snprintf(p, sizeof p, "%s/orket-mcp-%d-%lu-def456", base, (int)zombie, ns);
  CHECK(t, mkdir(p, 0700) == 0);
  snprintf(name, sizeof name, "orket-run-%d", (int)zombie);
  CHECK(t, confine_pids_stale(name, 0) == 1);

  /* the leader ended, a thread of it lives on */
  int ready[2] = {-1, -1};
  CHECK(t, pipe(ready) == 0);
  pid_t half = fork();
  if (half == 0) {
    /* ends with this test's process, should that end first */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(ready[0]);
    pthread_t th;
    if (pthread_create(&th, NULL, park, NULL) != 0) _exit(1);
    if (write(ready[1], "x", 1) != 1) _exit(1);
    pthread_exit(NULL);
  }
  close(ready[1]); /* so that the read below ends if the child dies before it writes */
  char c;
  CHECK(t, half > 0 && read(ready[0], &c, 1) == 1 && wait_state(half, 'Z'));
  snprintf(p, sizeof p, "%s/orket-run-%d-%lu-ghi789", base, (int)half, ns);
  CHECK(t, mkdir(p, 0700) == 0);
  snprintf(name, sizeof name, "orket-mcp-%d-x", (int)half);
  CHECK(t, confine_pids_stale(name, 1) == 0);

  proc_sweep_tmp(base);

  snprintf(p, sizeof p, "%s/orket-run-%d-%lu-abc123", base, (int)zombie, ns);
  CHECK(t, lstat(p, &st) != 0);
  snprintf(p, sizeof p, "%s/orket-mcp-%d-%lu-def456", base, (int)zombie, ns);
  CHECK(t, lstat(p, &st) != 0);
  snprintf(p, sizeof p, "%s/orket-run-%d-%lu-ghi789", base, (int)half, ns);
  CHECK(t, lstat(p, &st) == 0 && S_ISDIR(st.st_mode));

  /* on every path, checks failed or not: never kill(-1) (a failed fork's pid) */
  if (half > 0) {
    kill(half, SIGKILL);
    CHECK(t, waitpid(half, NULL, 0) == half);
  }
  if (zombie > 0) CHECK(t, waitpid(zombie, NULL, 0) == zombie);
  close(ready[0]);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", base);
  CHECK(t, system(cmd) == 0);
}

/* 1 when /proc/PID/comm is name. */
static int comm_is(pid_t pid, const char *name) {
  char path[64], buf[64];
  snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f) fclose(f);
  buf[n] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  return strcmp(buf, name) == 0;
}

static void *exec_sleep(void *arg) {
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* kept by the task that runs on as the process */
  usleep((useconds_t)(uintptr_t)arg);
  execl("/bin/sleep", "sleep", "5", (char *)NULL);
  _exit(127);
}

/* A thread other than the first calls execve: the kernel ends the first thread (shown Z,
 * the task dir holding it alone at moments) and then moves the exec'ing one onto the pid.
 * The process runs throughout, so its name is never stale, however the check falls in that
 * moment; each child is checked in a tight loop from before its exec until it runs sleep.
 * Bounded by time, not by a count of looks, since the C tests run beside the others and a
 * loaded machine may be slow to run the child; a child that died before its exec (no
 * thread to be had there) is stale by right, so it is counted apart and said. */
TEST(test_pids_stale_exec) {
  if (access("/bin/sleep", X_OK) != 0) {
    SKIP(t, "no /bin/sleep to exec");
    return;
  }
  enum { CHILDREN = 40 };
  int stale = 0, ran = 0, died = 0, slow = 0;
  for (int i = 0; i < CHILDREN; i++) {
    pid_t c = fork();
    if (c == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      pthread_t th;
      if (pthread_create(&th, NULL, exec_sleep, (void *)(uintptr_t)(1000 + 250 * (i % 12))) != 0) _exit(1);
      for (;;) pause();
    }
    CHECK(t, c > 0);
    if (c < 0) break;
    char name[64];
    snprintf(name, sizeof name, "orket-run-%d", (int)c);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int seen = 0, done = 0, reaped = 0, status = 0;
    for (long k = 0; !done && !reaped; k++) {
      if (!seen && confine_pids_stale(name, 0)) seen = 1;
      if (k % 32 != 0) continue;
      if (comm_is(c, "sleep")) done = 1;
      else if (waitpid(c, &status, WNOHANG) == c) reaped = 1;
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec - t0.tv_sec > 20) break;
    }
    if (done) {
      ran++;
      stale += seen;
    } else if (reaped) {
      died++;
      fprintf(stderr, "    child %d ended before its exec (status %#x)\n", i, (unsigned)status);
    } else {
      slow++;
    }
    if (!reaped) {
      kill(c, SIGKILL);
      CHECK(t, waitpid(c, NULL, 0) == c);
    }
  }
  if (stale || ran < CHILDREN / 2 || slow)
    fprintf(stderr, "    %d children ran sleep, %d seen stale while alive; %d died before exec, %d not at exec in 20 s\n",
            ran, stale, died, slow);
  CHECK(t, stale == 0);
  CHECK(t, slow == 0);
  CHECK(t, ran >= CHILDREN / 2);
}
