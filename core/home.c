/* home.c: locating Orket's home for the executable (home.h). /proc may be missing (a
 * chroot, a container without it, another kernel's procfs), so the executable is also
 * found from argv[0], and an installed binary falls back to the prefix it was built for. */
#define _GNU_SOURCE
#include "home.h"

#include <errno.h>
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

/* The directory of the executable file at path, resolved through symlinks; the file's real
 * path into exe (when not NULL). */
static int home_from_path(const char *path, char *out, size_t outlen, char *exe, size_t exelen) {
  char real[PATH_MAX];
  struct stat st;
  if (realpath(path, real) == NULL || stat(real, &st) != 0 || !S_ISREG(st.st_mode) ||
      access(real, X_OK) != 0)
    return -1;
  if (home_dirname(real, out, outlen) != 0) return -1;
  if (exe) snprintf(exe, exelen, "%s", real);
  return 0;
}

void home_why(const char *cand, char *out, size_t outlen) {
  char real[PATH_MAX], probe[PATH_MAX + 32];
  if (realpath(cand, real) == NULL) {
    snprintf(out, outlen, "%s (%s)", cand, errno == ENOENT ? "not there" : strerror(errno));
    return;
  }
  snprintf(probe, sizeof probe, "%s/lua/orket/init.lua", real);
  if (access(probe, R_OK) == 0) {
    snprintf(out, outlen, "%s (holds the library)", real);
  } else if (errno == ENOENT || errno == ENOTDIR) {
    snprintf(out, outlen, "%s (no lua/orket/init.lua)", real);
  } else if (errno == EACCES) {
    /* the library is there but this user may not read it: an install made under a strict
     * umask (077, 027) gives modes only root reads */
    snprintf(out, outlen, "%s (its lua/orket/init.lua cannot be read: %s; make the library readable to every user: "
             "chmod -R a+rX %s)", real, strerror(EACCES), real);
  } else {
    snprintf(out, outlen, "%s (its lua/orket/init.lua: %s)", real, strerror(errno));
  }
}

int home_exe_dir(const char *proc_link, const char *argv0, const char *path_env, char *out,
                 size_t outlen, char *exe, size_t exelen) {
  char buf[PATH_MAX];
  if (proc_link) {
    ssize_t n = readlink(proc_link, buf, sizeof buf - 1);
    if (n > 0) {
      buf[n] = '\0';
      if (buf[0] == '/' && home_dirname(buf, out, outlen) == 0) {
        if (exe) snprintf(exe, exelen, "%s", buf);
        return 0;
      }
    }
  }
  if (argv0 == NULL || *argv0 == '\0') return -1;
  if (strchr(argv0, '/')) return home_from_path(argv0, out, outlen, exe, exelen);
  /* a bare name: the shell found it on PATH, so look where it looked */
  const char *p = path_env ? path_env : "";
  while (1) {
    const char *end = strchr(p, ':');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    int w = n == 0 ? snprintf(buf, sizeof buf, "./%s", argv0)
                   : snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, argv0);
    if (w > 0 && (size_t)w < sizeof buf && home_from_path(buf, out, outlen, exe, exelen) == 0) return 0;
    if (!end) break;
    p = end + 1;
  }
  return -1;
}

int home_locate(const char *proc_link, const char *argv0, const char *path_env, const char *prefix,
                char *out, size_t outlen, char *exe, size_t exelen, char *err, size_t errlen) {
  char exe_dir[PATH_MAX];
  if (exe && exelen) exe[0] = '\0';
  int have = home_exe_dir(proc_link, argv0, path_env, exe_dir, sizeof exe_dir, exe, exelen) == 0;
  if (rt_find_home(have ? exe_dir : NULL, out, outlen, err, errlen) == 0) return 0;
  const char *env = getenv("ORKET_HOME");
  if (env && *env) {
    /* ORKET_HOME is asked for, and only it: said with why (missing, or there but
     * unreadable) */
    char why[PATH_MAX + 300];
    home_why(env, why, sizeof why);
    snprintf(err, errlen, "ORKET_HOME=%s does not hold a readable lua/orket/init.lua: %s", env, why);
    return -1;
  }
  if (prefix && *prefix) {
    /* PREFIX/share/orket, as `make install` lays it out (PREFIX/bin need not exist) */
    char cand[PATH_MAX];
    if (snprintf(cand, sizeof cand, "%s/share/orket", prefix) < (int)sizeof cand && rt_try_home(cand, out, outlen))
      return 0;
  }
  /* each place tried, with why it did not do: a library that is there but unreadable
   * (EACCES) is not "missing" */
  char beside[2][PATH_MAX + 300], inprefix[PATH_MAX + 300] = "(no prefix)";
  if (have) {
    char cand[PATH_MAX + 32];
    snprintf(cand, sizeof cand, "%s/..", exe_dir);
    home_why(cand, beside[0], sizeof beside[0]);
    snprintf(cand, sizeof cand, "%s/../share/orket", exe_dir);
    home_why(cand, beside[1], sizeof beside[1]);
  }
  if (prefix && *prefix) {
    char cand[PATH_MAX + 32];
    snprintf(cand, sizeof cand, "%s/share/orket", prefix);
    home_why(cand, inprefix, sizeof inprefix);
  }
  if (have)
    snprintf(err, errlen,
             "cannot find Orket's Lua library (lua/orket/init.lua): not beside the executable (%s): tried %s and %s, "
             "then the install prefix %s; set ORKET_HOME to the directory that holds lua/",
             exe_dir, beside[0], beside[1], inprefix);
  else
    snprintf(err, errlen,
             "cannot find Orket's Lua library (lua/orket/init.lua): the executable's path is unknown (no "
             "/proc/self/exe, and argv[0] names no file), nor is it in the install prefix %s; set ORKET_HOME to the "
             "directory that holds lua/",
             inprefix);
  return -1;
}
