/* test_home.c: finding the executable and Orket's home without /proc: from argv[0] as a
 * path or a name on PATH, and from the install prefix when nothing shows where it runs. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "home.h"
#include "tests.h"

#define NO_PROC "/nonexistent/proc/self/exe" /* what a missing /proc looks like */

TEST(test_home_exe_dir_without_proc) {
  char cwd[PATH_MAX], out[PATH_MAX], want[PATH_MAX + 300], path[PATH_MAX + 600], build[256];
  CHECK(t, getcwd(cwd, sizeof cwd) != NULL); /* tests run from the source tree: BUILD/test_core */
  check_build_dir(build, sizeof build);
  snprintf(want, sizeof want, "%s/%s", cwd, build);
  char *real = realpath(want, NULL);
  CHECK(t, real != NULL);
  if (!real) return;
  /* /proc works: the link is read, argv[0] does not matter */
  CHECK(t, home_exe_dir("/proc/self/exe", "nonsense", NULL, out, sizeof out, NULL, 0) == 0);
  /* no /proc: argv[0] as a path, relative or absolute (this test's own program) */
  snprintf(path, sizeof path, "%s/test_core", build);
  CHECK(t, home_exe_dir(NO_PROC, path, NULL, out, sizeof out, NULL, 0) == 0);
  CHECK_STR(t, out, real);
  snprintf(path, sizeof path, "%s/%s/test_core", cwd, build);
  CHECK(t, home_exe_dir(NO_PROC, path, NULL, out, sizeof out, NULL, 0) == 0);
  CHECK_STR(t, out, real);
  /* no /proc: a bare name, looked up on PATH in order (missing and empty entries pass) */
  snprintf(path, sizeof path, "/nonexistent::%s/%s:/usr/bin", cwd, build);
  CHECK(t, home_exe_dir(NO_PROC, "test_core", path, out, sizeof out, NULL, 0) == 0);
  CHECK_STR(t, out, real);
  /* a directory or a file that is not executable is not the program */
  CHECK(t, home_exe_dir(NO_PROC, "core", cwd, out, sizeof out, NULL, 0) == -1);
  CHECK(t, home_exe_dir(NO_PROC, "Makefile", cwd, out, sizeof out, NULL, 0) == -1);
  CHECK(t, home_exe_dir(NO_PROC, "orket", "/nonexistent", out, sizeof out, NULL, 0) == -1);
  CHECK(t, home_exe_dir(NO_PROC, NULL, NULL, out, sizeof out, NULL, 0) == -1);
  free(real);
}

TEST(test_home_locate_prefix) {
  char tmpl[] = "/tmp/orket-home-XXXXXX", dir[PATH_MAX + 64], out[PATH_MAX], err[PATH_MAX + 512];
  char *root = mkdtemp(tmpl);
  CHECK(t, root != NULL);
  if (!root) return;
  unsetenv("ORKET_HOME");
  /* PREFIX/share/orket as `make install` lays it out */
  const char *parts[] = {"share", "share/orket", "share/orket/lua", "share/orket/lua/orket"};
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
    snprintf(dir, sizeof dir, "%s/%s", root, parts[i]);
    CHECK(t, mkdir(dir, 0755) == 0);
  }
  snprintf(dir, sizeof dir, "%s/share/orket/lua/orket/init.lua", root);
  FILE *f = fopen(dir, "w");
  CHECK(t, f != NULL);
  if (f) fclose(f);
  char *real = realpath(root, NULL);
  snprintf(dir, sizeof dir, "%s/share/orket", real ? real : root);
  /* neither /proc nor argv[0] shows the executable: the prefix is the last place */
  CHECK(t, home_locate(NO_PROC, "orket", "/nonexistent", root, out, sizeof out, NULL, 0, err, sizeof err) == 0);
  CHECK_STR(t, out, dir);
  /* without a prefix that holds the library: an error naming what to do */
  CHECK(t, home_locate(NO_PROC, "orket", "/nonexistent", "/nonexistent", out, sizeof out, NULL, 0, err,
                       sizeof err) == -1);
  CHECK(t, strstr(err, "ORKET_HOME") != NULL && strstr(err, "/nonexistent/share/orket") != NULL);
  CHECK(t, strstr(err, "argv[0]") != NULL);
  /* ORKET_HOME, when set, is the only place */
  setenv("ORKET_HOME", "/nonexistent", 1);
  CHECK(t, home_locate(NO_PROC, "orket", "/nonexistent", root, out, sizeof out, NULL, 0, err, sizeof err) == -1);
  CHECK(t, strstr(err, "ORKET_HOME=/nonexistent") != NULL);
  unsetenv("ORKET_HOME");
  char cmd[PATH_MAX + 32];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  CHECK(t, system(cmd) == 0);
  free(real);
}
