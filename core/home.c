/* home.c: locating Orket's home for the executable (home.h). /proc may be missing (a
 * chroot, a container without it, another kernel's procfs), so the executable is also
 * found from argv[0], and an installed binary falls back to the prefix it was built for. */
#define _GNU_SOURCE
#include "home.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"

/* Cuts path (a real file's path) to its directory, into out. */
static int home_dirname(const char *path, char *out, size_t outlen) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) return -1;
  size_t n = slash == path ? 1 : (size_t)(slash - path); /* "/orket" -> "/" */
  if (n >= outlen) return -1;
  memcpy(out, path, n);
  out[n] = '\0';
  return 0;
}

/* The directory of the executable file at path, resolved through symlinks. */
static int home_from_path(const char *path, char *out, size_t outlen) {
  char real[PATH_MAX];
  struct stat st;
  if (realpath(path, real) == NULL || stat(real, &st) != 0 || !S_ISREG(st.st_mode) ||
      access(real, X_OK) != 0)
    return -1;
  return home_dirname(real, out, outlen);
}

int home_exe_dir(const char *proc_link, const char *argv0, const char *path_env, char *out,
                 size_t outlen) {
  char buf[PATH_MAX];
  if (proc_link) {
    ssize_t n = readlink(proc_link, buf, sizeof buf - 1);
    if (n > 0) {
      buf[n] = '\0';
      if (buf[0] == '/' && home_dirname(buf, out, outlen) == 0) return 0;
    }
  }
  if (argv0 == NULL || *argv0 == '\0') return -1;
  if (strchr(argv0, '/')) return home_from_path(argv0, out, outlen);
  /* a bare name: the shell found it on PATH, so look where it looked */
  const char *p = path_env ? path_env : "";
  while (1) {
    const char *end = strchr(p, ':');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    int w = n == 0 ? snprintf(buf, sizeof buf, "./%s", argv0)
                   : snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, argv0);
    if (w > 0 && (size_t)w < sizeof buf && home_from_path(buf, out, outlen) == 0) return 0;
    if (!end) break;
    p = end + 1;
  }
  return -1;
}

int home_locate(const char *proc_link, const char *argv0, const char *path_env, const char *prefix,
                char *out, size_t outlen, char *err, size_t errlen) {
  char exe_dir[PATH_MAX];
  int have = home_exe_dir(proc_link, argv0, path_env, exe_dir, sizeof exe_dir) == 0;
  if (rt_find_home(have ? exe_dir : NULL, out, outlen, err, errlen) == 0) return 0;
  const char *env = getenv("ORKET_HOME");
  if (env && *env) return -1; /* ORKET_HOME is asked for: its error stands */
  if (prefix && *prefix) {
    /* PREFIX/share/orket, as `make install` lays it out (PREFIX/bin need not exist) */
    char cand[PATH_MAX];
    if (snprintf(cand, sizeof cand, "%s/share/orket", prefix) < (int)sizeof cand && rt_try_home(cand, out, outlen))
      return 0;
  }
  snprintf(err, errlen,
           "cannot find Orket's Lua library (lua/orket/init.lua): not beside the executable (%s), "
           "nor in %s/share/orket; set ORKET_HOME to the directory that holds lua/",
           have ? exe_dir : "its path unknown: no /proc/self/exe, and argv[0] names no file",
           prefix && *prefix ? prefix : "(no prefix)");
  return -1;
}
