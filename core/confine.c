/* confine.c: the confinement helper (see confine.h). Runs in `orket --confine-exec`, before
 * any Lua: namespaces first (user, then network and PID), then in a child the working
 * directory, fds, no_new_privs, Landlock, seccomp, the capabilities dropped and the
 * rlimits, then exec. The helper stays outside as a child subreaper and kills every process
 * left when the program ends. Uses Linux syscalls and libseccomp. */
#define _GNU_SOURCE
#include "confine.h"
#include "confine_pids.h"
#include "confine_relay.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/landlock.h>
#include <linux/securebits.h>
#include <seccomp.h>

#define CF_REPORT_FD 3 /* to the runner: P, L, W, F, E lines */
#define CF_STATUS_FD 4 /* PID namespace: its init hands the program's wait status up */

/* Debian 12's headers stop at Landlock ABI 2: the newer bits, from the kernel's UAPI. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

/* The ruleset attribute as of ABI 6; its size is passed by ABI so older kernels accept it. */
struct cf_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

static const char *const cf_names[CONFINE_NLAYERS] = {
    "session", "fds",   "env",      "cwd",          "rlimits",        "no_new_privs", "caps",
    "userns",  "netns", "pidns",    "landlock",     "landlock_net",   "landlock_scope", "seccomp",
    "view",    "pids",
};

const char *confine_layer_name(unsigned bit) {
  for (int i = 0; i < CONFINE_NLAYERS; i++)
    if (bit == 1u << i) return cf_names[i];
  return NULL;
}

unsigned confine_layer_bit(const char *name) {
  for (int i = 0; i < CONFINE_NLAYERS; i++)
    if (strcmp(name, cf_names[i]) == 0) return 1u << i;
  return 0;
}

/* ---- the spec in argv --------------------------------------------------------------- */

/* argv: helper, CONFINE_ARG, "want require cpu mem as fsize nofile nproc flags nbinds
 * [relay_port [inward_port run_as]]", cwd, tmpdir, [relay_path,] [inward_path,]
 * [service ports "P,P,...",] nenv, binds..., program argv... ("flags nbinds" may be
 * left out: 0 0; the long form's ports are 0 for a relay not there, each path comes only
 * with its port, and the service ports only with CONFINE_F_SERVICES in flags). The env
 * entries themselves travel in the helper's environment (confine_encode_env). */
char **confine_encode(const char *helper, const confine_spec *s, char *scratch, size_t scratchlen) {
  size_t nenv = 0, nargv = 0;
  while (s->env && s->env[nenv]) nenv++;
  while (s->argv && s->argv[nargv]) nargv++;
  const confine_limits *l = &s->lim;
  int relay = s->relay_path != NULL, inward = s->inward_path != NULL;
  int services = relay && s->nservices > 0;
  if (s->nservices > CONFINE_MAX_SERVICES) return NULL;
  unsigned flags = services ? s->flags | CONFINE_F_SERVICES : s->flags & ~(unsigned)CONFINE_F_SERVICES;
  int n = snprintf(scratch, scratchlen, "%u %u %llu %llu %llu %llu %llu %llu %u %zu", s->want, s->require,
                   (unsigned long long)l->cpu_seconds, (unsigned long long)l->memory,
                   (unsigned long long)l->address_space, (unsigned long long)l->file_size,
                   (unsigned long long)l->open_files, (unsigned long long)l->processes, flags, s->nbinds);
  if (n >= 0 && (size_t)n < scratchlen) {
    if (inward || s->run_as)
      n += snprintf(scratch + n, scratchlen - (size_t)n, " %u %u %u", relay ? s->relay_port : 0u,
                    inward ? s->inward_port : 0u, s->run_as);
    else if (relay)
      n += snprintf(scratch + n, scratchlen - (size_t)n, " %u", s->relay_port);
  }
  if (n < 0 || (size_t)n + 24 + (services ? 7u * CONFINE_MAX_SERVICES : 0u) > scratchlen) return NULL;
  char *count = scratch + n + 1;
  snprintf(count, 22, "%zu", nenv);
  char *ports = count + 23; /* "P,P,..." : at most 16 ports of 5 digits and a comma each */
  ports[0] = '\0';
  for (size_t i = 0, m = 0; services && i < s->nservices; i++)
    m += (size_t)snprintf(ports + m, 7, i ? ",%u" : "%u", s->service_ports[i] % 100000u);
  char **out = malloc((10 + s->nbinds + nargv) * sizeof *out);
  if (out == NULL) return NULL;
  size_t k = 0;
  out[k++] = (char *)helper;
  out[k++] = (char *)CONFINE_ARG;
  out[k++] = scratch;
  out[k++] = (char *)s->cwd;
  out[k++] = (char *)(s->tmpdir ? s->tmpdir : "");
  if (relay) out[k++] = (char *)s->relay_path;
  if (inward) out[k++] = (char *)s->inward_path;
  if (services) out[k++] = ports;
  out[k++] = count;
  for (size_t i = 0; i < s->nbinds; i++) out[k++] = s->binds[i];
  for (size_t i = 0; i < nargv; i++) out[k++] = s->argv[i];
  out[k] = NULL;
  return out;
}

char **confine_encode_env(const confine_spec *s) {
  size_t nenv = 0, bytes = 0;
  const size_t plen = sizeof CONFINE_ENV_PREFIX - 1;
  for (; s->env && s->env[nenv]; nenv++) bytes += plen + 22 + strlen(s->env[nenv]) + 1;
  char **out = malloc((nenv + 1) * sizeof *out + bytes);
  if (out == NULL) return NULL;
  char *p = (char *)(out + nenv + 1);
  for (size_t i = 0; i < nenv; i++) {
    out[i] = p;
    p += sprintf(p, CONFINE_ENV_PREFIX "%zu=%s", i, s->env[i]) + 1;
  }
  out[nenv] = NULL;
  return out;
}

/* The value of envp entry e when it is CONFINE_ENV_PREFIX "i=..." with i < n (*index set),
 * else NULL. */
static char *cf_env_entry(char *e, size_t n, size_t *index) {
  const size_t plen = sizeof CONFINE_ENV_PREFIX - 1;
  if (strncmp(e, CONFINE_ENV_PREFIX, plen) != 0 || e[plen] < '0' || e[plen] > '9') return NULL;
  char *end;
  errno = 0;
  unsigned long long i = strtoull(e + plen, &end, 10);
  if (errno || *end != '=' || i >= n || (e[plen] == '0' && end != e + plen + 1)) return NULL;
  *index = (size_t)i;
  return end + 1;
}

int confine_decode_env(char **envp, confine_spec *s, char *err, size_t errlen) {
  size_t n = s->nenv, got = 0, bytes = 0, i;
  char **out = calloc(n + 1, sizeof *out);
  if (out == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (char **e = envp; e && *e; e++) {
    char *v = cf_env_entry(*e, n, &i);
    if (v == NULL) continue;
    if (out[i] != NULL) {
      snprintf(err, errlen, "environment entry %zu given twice", i);
      free(out);
      return -1;
    }
    out[i] = v;
    got++;
    bytes += strlen(v) + 1;
  }
  if (got != n) {
    snprintf(err, errlen, "the environment holds %zu entries, the spec counts %zu", got, n);
    free(out);
    return -1;
  }
  char **env = malloc((n + 1) * sizeof *env + bytes);
  if (env == NULL) {
    snprintf(err, errlen, "out of memory");
    free(out);
    return -1;
  }
  char *p = (char *)(env + n + 1);
  for (i = 0; i < n; i++) {
    size_t len = strlen(out[i]);
    env[i] = memcpy(p, out[i], len + 1);
    p += len + 1;
  }
  env[n] = NULL;
  free(out);
  /* /proc/PID/environ reads this memory for the helper's whole life: the values leave it */
  for (char **e = envp; e && *e; e++)
    if (cf_env_entry(*e, n, &i)) memset(*e, 0, strlen(*e));
  s->env = env;
  return 0;
}

int confine_path_ok(const char *p) {
  if (p == NULL || p[0] != '/' || p[1] == '\0') return 0;
  size_t len = strlen(p);
  if (len >= PATH_MAX / 2 || p[len - 1] == '/') return 0;
  for (const char *c = p; *c; ) {
    const char *e = strchr(c + 1, '/');
    size_t seg = e ? (size_t)(e - c - 1) : strlen(c + 1);
    if (seg == 0) return 0; /* "//" */
    if ((seg == 1 && c[1] == '.') || (seg == 2 && c[1] == '.' && c[2] == '.')) return 0;
    if (!e) break;
    c = e;
  }
  return 1;
}

int confine_relay_path_ok(const char *p) {
  return confine_path_ok(p) && strlen(p) <= CONFINE_RELAY_PATH_MAX;
}

int confine_inward_path_ok(const char *p) {
  return confine_path_ok(p) && strlen(p) <= CONFINE_INWARD_PATH_MAX;
}

_Static_assert(CONFINE_MAX_SERVICES == CONFINE_RELAY_MAX_SERVICES, "one cap on a relay's services");

/* The service ports' list "P,P,..." into s: each 1..65535, none the relay's port, none
 * twice, at most CONFINE_MAX_SERVICES. */
static int cf_service_ports(const char *list, unsigned relay_port, confine_spec *s, char *err, size_t errlen) {
  const char *c = list;
  s->nservices = 0;
  for (;;) {
    char *end;
    errno = 0;
    unsigned long v = (*c >= '0' && *c <= '9') ? strtoul(c, &end, 10) : 0;
    if (errno || v < 1 || v > 65535 || v == relay_port || s->nservices >= CONFINE_MAX_SERVICES ||
        (*end != ',' && *end != '\0')) {
      snprintf(err, errlen, "bad service ports: %s", list);
      return -1;
    }
    for (size_t i = 0; i < s->nservices; i++)
      if (s->service_ports[i] == v) {
        snprintf(err, errlen, "bad service ports: %s (%lu twice)", list, v);
        return -1;
      }
    s->service_ports[s->nservices++] = (unsigned)v;
    if (*end == '\0') return 0;
    c = end + 1;
  }
}

int confine_decode(int argc, char **argv, confine_spec *s, char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  if (argc < 7 || strcmp(argv[1], CONFINE_ARG) != 0) {
    snprintf(err, errlen, "too few arguments");
    return -1;
  }
  unsigned long long v[6];
  unsigned long nbinds = 0;
  unsigned port = 0, inport = 0, run_as = 0;
  char tail;
  int got = sscanf(argv[2], "%u %u %llu %llu %llu %llu %llu %llu %u %lu %u %u %u%c", &s->want, &s->require, &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &s->flags, &nbinds, &port, &inport, &run_as, &tail);
  if (got != 8 && got != 10 && got != 11 && got != 13) {
    snprintf(err, errlen, "bad numbers: %s", argv[2]);
    return -1;
  }
  if (got == 8) s->flags = 0, nbinds = 0;
  s->lim = (confine_limits){v[0], v[1], v[2], v[3], v[4], v[5]};
  s->cwd = argv[3];
  s->tmpdir = argv[4];
  int b = 5; /* the environment's count */
  if (got == 11 && port == 0) {
    snprintf(err, errlen, "bad relay port: %u", port);
    return -1;
  }
  unsigned ports[2] = {port, inport};
  const char **paths[2] = {&s->relay_path, &s->inward_path};
  for (int i = 0; i < 2; i++) {
    if (ports[i] == 0) continue;
    if (argc < b + 3) {
      snprintf(err, errlen, "too few arguments");
      return -1;
    }
    if (ports[i] > 65535) {
      snprintf(err, errlen, "bad %s port: %u", i ? "inward" : "relay", ports[i]);
      return -1;
    }
    if (!(i ? confine_inward_path_ok(argv[b]) : confine_relay_path_ok(argv[b]))) {
      snprintf(err, errlen, "bad %s path: %s", i ? "inward" : "relay", argv[b]);
      return -1;
    }
    *paths[i] = argv[b++];
  }
  if (s->inward_path && !s->relay_path) {
    snprintf(err, errlen, "an inward relay comes only with a relay");
    return -1;
  }
  if (s->flags & CONFINE_F_SERVICES) {
    if (!s->relay_path || argc < b + 3) {
      snprintf(err, errlen, "service ports come only with a relay");
      return -1;
    }
    if (cf_service_ports(argv[b], port, s, err, errlen) != 0) return -1;
    b++;
  }
  s->relay_port = port;
  s->inward_port = inport;
  s->run_as = run_as;
  char *end;
  errno = 0;
  unsigned long nenv = strtoul(argv[b], &end, 10);
  if (errno || *end || end == argv[b] || nenv > CONFINE_MAX_ENV) {
    snprintf(err, errlen, "bad environment count: %s", argv[b]);
    return -1;
  }
  if (nbinds > CONFINE_MAX_BINDS || b + 1 + nbinds >= (unsigned long)argc) {
    snprintf(err, errlen, "bad path count: %lu", nbinds);
    return -1;
  }
  if (s->cwd[0] != '/') {
    snprintf(err, errlen, "working directory is not absolute: %s", s->cwd);
    return -1;
  }
  for (unsigned long i = 0; i < nbinds; i++) {
    const char *p = argv[b + 1 + i];
    if ((p[0] != 'r' && p[0] != 'w') || !confine_path_ok(p + 1)) {
      snprintf(err, errlen, "bad extra path: %s", p);
      return -1;
    }
  }
  s->env = NULL;
  s->nenv = nenv;
  s->nbinds = nbinds;
  s->binds = argv + b + 1;
  s->argv = argv + b + 1 + nbinds;
  return 0;
}

/* ---- reporting to the runner --------------------------------------------------------- */

static void cf_say(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
  for (int i = 0; i < n; i++)
    if (buf[i] == '\n') buf[i] = ' ';
  buf[n++] = '\n';
  /* One write: the runner reads whole lines from a stream socket. */
  ssize_t w;
  do w = write(CF_REPORT_FD, buf, (size_t)n);
  while (w < 0 && errno == EINTR);
}

static _Noreturn void cf_fail(const char *layer, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cf_say("F %s %s", layer, msg);
  _exit(127);
}

/* An optional layer that did not apply: fatal when required, else reported with why. */
static void cf_missing(const confine_spec *s, unsigned bit, const char *why) {
  const char *name = confine_layer_name(bit);
  if (s->require & bit) cf_fail(name, "required layer '%s' is not available: %s", name, why);
  cf_say("W %s %s", name, why);
}

/* ---- namespaces (in the helper) ------------------------------------------------------ */

static int cf_write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = strlen(text);
  ssize_t w = write(fd, text, len);
  int e = errno;
  close(fd);
  errno = e;
  return w == (ssize_t)len ? 0 : -1;
}

/* The program, started by root, becomes uid and gid id, with no supplementary groups, for
 * good. The helper stays root in the namespaces it made as root (so no user namespace is
 * needed), and relays to sockets only root may reach; the program holds no root anywhere.
 * The parent-death signal does not survive a change of credentials: it is set again. */
static void cf_run_as(unsigned id) {
  if (setgroups(0, NULL) != 0 || setgid((gid_t)id) != 0 || setuid((uid_t)id) != 0)
    cf_fail("session", "becoming uid %u: %s", id, strerror(errno));
  if (setuid(0) == 0) cf_fail("session", "uid %u could become root again", id);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* A user namespace where the program is an ordinary user: root outside maps to uid 1000
 * inside, so exec drops every capability; others keep their own ids. */
static int cf_userns(char *why, size_t whylen) {
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER) != 0) {
    snprintf(why, whylen, "unshare(CLONE_NEWUSER): %s", strerror(errno));
    return -1;
  }
  char map[64];
  if (cf_write_file("/proc/self/setgroups", "deny") != 0 && errno != ENOENT)
    cf_fail("userns", "setgroups: %s", strerror(errno));
  snprintf(map, sizeof map, "%u %u 1\n", (unsigned)(uid ? uid : 1000), (unsigned)uid);
  /* Past unshare there is no way back: an unmapped user could not even create files. */
  if (cf_write_file("/proc/self/uid_map", map) != 0) cf_fail("userns", "uid_map: %s", strerror(errno));
  snprintf(map, sizeof map, "%u %u 1\n", (unsigned)(gid ? gid : 1000), (unsigned)gid);
  if (cf_write_file("/proc/self/gid_map", map) != 0) cf_fail("userns", "gid_map: %s", strerror(errno));
  return 0;
}

/* Brings the new network namespace's loopback up (asked for by CONFINE_F_LOOPBACK): the
 * namespace is still the confined program's alone, so 127.0.0.1 reaches only its own processes. */
static int cf_loopback_up(char *why, size_t whylen) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(why, whylen, "loopback: socket: %s", strerror(errno));
    return -1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP;
    rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
  }
  int e = errno;
  close(fd);
  if (rc != 0) {
    snprintf(why, whylen, "loopback: SIOCSIFFLAGS: %s", strerror(e));
    return -1;
  }
  return 0;
}

/* ---- the layers applied in the child ------------------------------------------------- */

/* soft = want; hard = want + slack (CPU: SIGXCPU at the soft limit names the cause, the
 * kernel's SIGKILL follows a second later at the hard one). */
static int cf_rlimit(int res, uint64_t want, uint64_t slack) {
  if (want == 0) return 0;
  struct rlimit cur;
  if (getrlimit(res, &cur) != 0) return -1;
  rlim_t v = (rlim_t)want, h = (rlim_t)(want + slack);
  /* Without CAP_SYS_RESOURCE a hard limit can only be lowered: never ask for more. */
  if (cur.rlim_max != RLIM_INFINITY && h > cur.rlim_max) h = cur.rlim_max;
  if (v > h) v = h;
  struct rlimit r = {v, h};
  return setrlimit(res, &r);
}

/* RLIMIT_NPROC only without the pids cgroup: the kernel counts it per user (in its user
 * namespace), so where the cgroup counts this run alone it would only add a count of the
 * user's other processes. */
static int cf_rlimits(const confine_limits *l, int pids_held) {
  int rc = 0;
  rc |= cf_rlimit(RLIMIT_CPU, l->cpu_seconds, 1);
  rc |= cf_rlimit(RLIMIT_DATA, l->memory, 0);
  rc |= cf_rlimit(RLIMIT_AS, l->address_space, 0);
  rc |= cf_rlimit(RLIMIT_FSIZE, l->file_size, 0);
  rc |= cf_rlimit(RLIMIT_NOFILE, l->open_files, 0);
  if (!pids_held) rc |= cf_rlimit(RLIMIT_NPROC, l->processes, 0);
  struct rlimit none = {0, 0};
  rc |= setrlimit(RLIMIT_CORE, &none);
  return rc;
}

/* Closes every fd from `from` up. */
static int cf_close_from(int from) {
  if (syscall(SYS_close_range, (unsigned)from, ~0u, 0u) == 0) return 0;
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  int dfd = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    if (fd >= from && fd != dfd) close(fd);
  }
  closedir(d);
  return 0;
}

static int cf_landlock_abi(void) {
  long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : (int)abi;
}

/* A rule beneath path; on a file only the file rights apply (the kernel refuses the rest). */
static int cf_landlock_rule(int ruleset, const char *path, uint64_t access) {
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
    access &= LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
              LANDLOCK_ACCESS_FS_TRUNCATE;
  struct landlock_path_beneath_attr pb = {.allowed_access = access, .parent_fd = fd};
  long rc = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
  int e = errno;
  close(fd);
  errno = e;
  return rc == 0 ? 0 : -1;
}

/* Read and execute only what the view holds (the same list, see confine_view_plan), write
 * only in the workspace, the run's temp dir, the extra read-write paths, the safe devices
 * and, in the view, its private /dev/shm; no TCP (ABI 4); no signals or abstract
 * sockets beyond the confinement (ABI 6). Where the view did not apply these are the host's
 * paths, so reads are narrowed all the same. Adds the bits it applied to *got. */
static int cf_landlock(const confine_spec *s, int abi, int in_view, unsigned *got, char *why, size_t whylen) {
  if (abi < 1) {
    snprintf(why, whylen, "Landlock is not offered by this kernel");
    errno = EOPNOTSUPP;
    return -1;
  }
  uint64_t fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */
  if (abi >= 2) fs |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
  struct cf_ruleset_attr a = {.handled_access_fs = fs};
  size_t size = sizeof a.handled_access_fs;
  /* the sub-layers only when wanted: a sandbox serving on its loopback switches TCP's off */
  int net = abi >= 4 && (s->want & CONFINE_LANDLOCK_NET), scope = abi >= 6 && (s->want & CONFINE_LANDLOCK_SCOPE);
  if (net) {
    a.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
    size = offsetof(struct cf_ruleset_attr, scoped);
  }
  if (scope) {
    a.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
    size = sizeof a;
  }
  int rs = (int)syscall(SYS_landlock_create_ruleset, &a, size, 0);
  if (rs < 0) {
    int e = errno;
    snprintf(why, whylen, "landlock_create_ruleset: %s", strerror(e));
    errno = e;
    return -1;
  }
  uint64_t ro = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
  uint64_t devnull = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                     (abi >= 3 ? LANDLOCK_ACCESS_FS_TRUNCATE : 0);
  size_t n = confine_view_size(s);
  confine_mount *plan = malloc(n * sizeof *plan);
  if (plan == NULL) {
    close(rs);
    snprintf(why, whylen, "out of memory");
    errno = ENOMEM;
    return -1;
  }
  n = confine_view_plan(s, plan);
  const char *what = "/";
  /* in the view everything there is to list is the allow-list's: `ls /` may work */
  int rc = in_view ? cf_landlock_rule(rs, "/", LANDLOCK_ACCESS_FS_READ_DIR) : 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const confine_mount *m = &plan[i];
    uint64_t access;
    switch (m->kind) {
    case CONFINE_M_SYS: case CONFINE_M_ETC: case CONFINE_M_ACCOUNTS: case CONFINE_M_PROC: case CONFINE_M_RO:
      access = ro;
      break;
    case CONFINE_M_DEV: access = devnull; break;
    case CONFINE_M_RW: access = fs; break;
    case CONFINE_M_TMPFS:
      /* the view's own; outside it /tmp and /dev are the host's, shared */
      if (!in_view) continue;
      /* /tmp is read-only to Landlock as outside the view: writes go to $TMPDIR, the run's
       * own, kept on disk and removed after the run */
      access = strcmp(m->dest, "/dev/shm") == 0 ? fs : ro;
      break;
    default: continue;
    }
    rc = cf_landlock_rule(rs, what = m->dest, access);
    /* paths this machine lacks (/lib32...) are no error; the workspace is */
    if (rc != 0 && errno == ENOENT && m->dest != s->cwd) rc = 0;
  }
  free(plan);
  if (rc == 0 && syscall(SYS_landlock_restrict_self, rs, 0) != 0) {
    what = "landlock_restrict_self";
    rc = -1;
  }
  int e = errno;
  close(rs);
  if (rc != 0) {
    snprintf(why, whylen, "%s: %s", what, strerror(e));
    errno = e;
    return -1;
  }
  *got |= CONFINE_LANDLOCK;
  if (net) *got |= CONFINE_LANDLOCK_NET;
  else if (abi >= 4) cf_missing(s, CONFINE_LANDLOCK_NET, "switched off");
  if (scope) *got |= CONFINE_LANDLOCK_SCOPE;
  else if (abi >= 6) cf_missing(s, CONFINE_LANDLOCK_SCOPE, "switched off");
  return 0;
}

/* Calls a confined program has no use for and that reach the kernel's attack surface or
 * out of the confinement: refused with EPERM. io_uring goes too, since its operations bypass
 * seccomp; setsid, so the process group stays whole (unless CONFINE_F_SESSIONS: in a PID
 * namespace of its own no session outlives the namespace's init). */
static const char *const cf_denied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root",
    "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "unshare", "setns",
    "setsid", "acct", "swapon", "swapoff", "syslog", "quotactl", "open_by_handle_at",
    "name_to_handle_at", "lookup_dcookie", "vhangup", "iopl", "ioperm", NULL,
};

static int cf_seccomp(unsigned flags, char *why, size_t whylen) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) {
    snprintf(why, whylen, "seccomp_init failed");
    return -1;
  }
  int rc = 0;
  /* no_new_privs is a layer of its own: libseccomp must not set it behind our back. */
  rc |= seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  rc |= seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  /* the kernel's own error when loading fails (EACCES without no_new_privs), not ECANCELED */
  rc |= seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
  for (const char *const *n = cf_denied; *n && rc == 0; n++) {
    if ((flags & CONFINE_F_SESSIONS) && strcmp(*n, "setsid") == 0) continue;
    int nr = seccomp_syscall_resolve_name(*n);
    if (nr == __NR_SCMP_ERROR) continue; /* not on this architecture */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
  }
  static const unsigned long nsflags[] = {CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                          CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP};
  for (size_t i = 0; i < sizeof nsflags / sizeof *nsflags && rc == 0; i++)
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                           SCMP_A0(SCMP_CMP_MASKED_EQ, nsflags[i], nsflags[i]));
  /* clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc use clone. */
  if (rc == 0) rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  /* No network: IP and packet sockets refused; unix sockets too unless the spec grants them,
   * since a path-named socket (docker.sock, D-Bus) is reached by connect, whose address
   * seccomp cannot read, and neither namespaces nor Landlock cover it. socketpair is a call
   * of its own and stays. */
  static const int families[] = {AF_INET, AF_INET6, AF_PACKET, AF_UNIX};
  for (size_t i = 0; i < sizeof families / sizeof *families && rc == 0; i++) {
    if (families[i] == AF_UNIX && (flags & CONFINE_F_UNIX)) continue;
    /* a loopback of its own (the caller checked the namespace is there) */
    if ((families[i] == AF_INET || families[i] == AF_INET6) && (flags & CONFINE_F_LOOPBACK)) continue;
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                           SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i]));
  }
  if (rc == 0) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) {
    snprintf(why, whylen, "seccomp: %s", strerror(-rc));
    errno = -rc;
    return -1;
  }
  return 0;
}

/* Drops every capability the child holds (in its user namespace when there is one, else
 * the machine's, as a container's root has them): securebits first, while CAP_SETPCAP is
 * still there to set them (root gains nothing by exec, locked), then the ambient and the
 * whole bounding set (no setuid-root or file-capability binary grants any back, even
 * without no_new_privs), then effective, permitted and inheritable. The result is read
 * back, not assumed; why names the first set left and the call that failed. */
static int cf_caps(char *why, size_t whylen) {
  const int secure = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  int bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
  /* best effort: with an empty bounding and inheritable set exec grants nothing anyway */
  if (bits >= 0 && (bits & secure) != secure) (void)prctl(PR_SET_SECUREBITS, bits | secure, 0, 0, 0);
  const char *failed = NULL;
  int err = 0;
  /* EINVAL before Linux 4.3: there is no ambient set to clear */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    failed = "PR_CAP_AMBIENT_CLEAR_ALL";
    err = errno;
  }
  int ncaps = 0; /* PR_CAPBSET_READ answers EINVAL past the kernel's last capability */
  for (; ncaps < 64; ncaps++) {
    int in = prctl(PR_CAPBSET_READ, ncaps, 0, 0, 0);
    if (in < 0) break;
    if (in == 1 && prctl(PR_CAPBSET_DROP, ncaps, 0, 0, 0) != 0 && failed == NULL) {
      failed = "PR_CAPBSET_DROP";
      err = errno;
    }
  }
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
  memset(d, 0, sizeof d);
  if (syscall(SYS_capset, &h, d) != 0 && failed == NULL) {
    failed = "capset";
    err = errno;
  }
  memset(d, 0, sizeof d);
  h.version = _LINUX_CAPABILITY_VERSION_3;
  if (syscall(SYS_capget, &h, d) != 0) {
    snprintf(why, whylen, "capget: %s", strerror(errno));
    return -1;
  }
  const char *left = NULL;
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3 && left == NULL; i++)
    left = d[i].effective ? "effective" : d[i].permitted ? "permitted" : d[i].inheritable ? "inheritable" : NULL;
  for (int c = 0; c < ncaps && left == NULL; c++) {
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 0) left = "bounding";
    else if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) > 0) left = "ambient";
  }
  if (left == NULL) return 0;
  if (failed && err == EPERM && strcmp(failed, "PR_CAPBSET_DROP") == 0)
    snprintf(why, whylen, "the %s set stays: %s: %s (needs CAP_SETPCAP; exec of a setuid or file-capability "
             "binary may grant capabilities)", left, failed, strerror(err));
  else if (failed)
    snprintf(why, whylen, "the %s set stays: %s: %s", left, failed, strerror(err));
  else
    snprintf(why, whylen, "the %s set stays", left);
  return -1;
}


/* ---- the view ------------------------------------------------------------------------ */

/* What a toolchain needs of the system, read-only. The /etc list is what libc (names,
 * hosts, locale, time), TLS clients and the dynamic loader read; never shadow or gshadow,
 * sudoers, ssh keys or machine secrets. */
static const char *const cf_sys[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", NULL};
static const char *const cf_etc[] = {
    "/etc/alternatives", "/etc/ssl", "/etc/ca-certificates", "/etc/ca-certificates.conf", "/etc/pki",
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/resolv.conf", "/etc/hosts",
    "/etc/hostname", "/etc/host.conf", "/etc/nsswitch.conf", "/etc/gai.conf", "/etc/protocols",
    "/etc/services", "/etc/localtime", "/etc/timezone", "/etc/locale.alias", "/etc/locale.conf",
    "/etc/os-release", "/etc/debian_version", "/etc/mime.types", "/etc/magic", "/etc/profile",
    "/etc/bash.bashrc", "/etc/inputrc", "/etc/environment", "/etc/shells", "/etc/login.defs",
    "/etc/subuid", "/etc/subgid", NULL};
static const char *const cf_accounts[] = {"/etc/passwd", "/etc/group", NULL};
static const char *const cf_devs[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                                      "/dev/tty", NULL};

const char *const *confine_system_dirs(void) { return cf_sys; }

static size_t cf_count(const char *const *l) {
  size_t n = 0;
  while (l[n]) n++;
  return n;
}

size_t confine_view_size(const confine_spec *s) {
  return cf_count(cf_sys) + cf_count(cf_etc) + cf_count(cf_accounts) + cf_count(cf_devs) + 12 + s->nbinds;
}

static size_t cf_depth(const char *p) {
  size_t d = 0;
  for (; *p; p++) d += *p == '/';
  return d;
}

size_t confine_view_plan(const confine_spec *s, confine_mount *out) {
  size_t n = 0;
  for (const char *const *p = cf_sys; *p; p++) out[n++] = (confine_mount){CONFINE_M_SYS, *p, *p};
  for (const char *const *p = cf_etc; *p; p++) out[n++] = (confine_mount){CONFINE_M_ETC, *p, *p};
  for (const char *const *p = cf_accounts; *p; p++) out[n++] = (confine_mount){CONFINE_M_ACCOUNTS, *p, *p};
  out[n++] = (confine_mount){CONFINE_M_LINK, "../proc/self/mounts", "/etc/mtab"};
  out[n++] = (confine_mount){CONFINE_M_TMPFS, "mode=755,size=64k", "/dev"};
  for (const char *const *p = cf_devs; *p; p++) out[n++] = (confine_mount){CONFINE_M_DEV, *p, *p};
  out[n++] = (confine_mount){CONFINE_M_LINK, "/proc/self/fd", "/dev/fd"};
  out[n++] = (confine_mount){CONFINE_M_LINK, "/proc/self/fd/0", "/dev/stdin"};
  out[n++] = (confine_mount){CONFINE_M_LINK, "/proc/self/fd/1", "/dev/stdout"};
  out[n++] = (confine_mount){CONFINE_M_LINK, "/proc/self/fd/2", "/dev/stderr"};
  out[n++] = (confine_mount){CONFINE_M_TMPFS, "mode=1777,size=64m", "/dev/shm"};
  out[n++] = (confine_mount){CONFINE_M_PROC, "proc", "/proc"};
  out[n++] = (confine_mount){CONFINE_M_TMPFS, "mode=1777,size=256m", "/tmp"};
  /* The spec's paths, a parent before what lies under it (stable: equal depths keep the
   * spec's order), so the workspace shows through an extra read-only path holding it. */
  size_t first = n;
  if (s->tmpdir && s->tmpdir[0]) out[n++] = (confine_mount){CONFINE_M_RW, s->tmpdir, s->tmpdir};
  out[n++] = (confine_mount){CONFINE_M_RW, s->cwd, s->cwd};
  for (size_t i = 0; i < s->nbinds; i++)
    out[n++] = (confine_mount){s->binds[i][0] == 'w' ? CONFINE_M_RW : CONFINE_M_RO, s->binds[i] + 1, s->binds[i] + 1};
  for (size_t i = first + 1; i < n; i++) {
    confine_mount m = out[i];
    size_t j = i;
    while (j > first && cf_depth(out[j - 1].dest) > cf_depth(m.dest)) {
      out[j] = out[j - 1];
      j--;
    }
    out[j] = m;
  }
  return n;
}

size_t confine_strip_accounts(const char *in, size_t len, char *out) {
  size_t o = 0, i = 0;
  while (i < len) {
    size_t end = i;
    while (end < len && in[end] != '\n') end++;
    const char *c1 = memchr(in + i, ':', end - i);
    if (c1 == NULL) { /* not an entry: dropped rather than guessed at */
      i = end + 1;
      continue;
    }
    const char *c2 = memchr(c1 + 1, ':', (size_t)(in + end - c1 - 1));
    size_t name = (size_t)(c1 - (in + i));
    memcpy(out + o, in + i, name);
    o += name;
    memcpy(out + o, ":x", 2);
    o += 2;
    if (c2) {
      size_t rest = (size_t)(in + end - c2);
      memcpy(out + o, c2, rest);
      o += rest;
    }
    out[o++] = '\n';
    i = end + 1;
  }
  return o;
}

/* The mount flags a bind must keep when remounted: in a user namespace the kernel refuses
 * to clear a flag the source mount had (they are locked). */
static unsigned long cf_locked_flags(int fd) {
  struct statvfs v;
  if (fstatvfs(fd, &v) != 0) return 0;
  unsigned long f = 0;
  if (v.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (v.f_flag & ST_NODEV) f |= MS_NODEV;
  if (v.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (v.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (v.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (v.f_flag & ST_RELATIME) f |= MS_RELATIME;
  if (v.f_flag & ST_RDONLY) f |= MS_RDONLY;
  return f;
}

static int cf_mkdirs(char *path, mode_t mode) {
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    int rc = mkdir(path, mode);
    *p = '/';
    if (rc != 0 && errno != EEXIST) return -1;
  }
  return 0;
}

/* A mount point at path: a dir or an empty file, like the source. */
static int cf_mountpoint(char *path, int dir) {
  if (cf_mkdirs(path, 0755) != 0) return -1;
  if (dir) return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  return errno == EEXIST || errno == EROFS || errno == EACCES ? 0 : -1;
}

/* Binds what fd points to at path, then remounts it with `add` on top of the source's
 * locked flags. */
static int cf_bind_fd(int fd, const char *path, unsigned long add) {
  char src[64];
  snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
  /* not recursive: a mount below the source (its own flags) is not carried in */
  if (mount(src, path, NULL, MS_BIND, NULL) != 0) return -1;
  return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | cf_locked_flags(fd) | add, NULL);
}

typedef struct cf_step {
  int fd;        /* the source, opened before the host's paths are hidden (-1: none) */
  int dir;
  char *text;    /* a symlink's target, or an accounts file stripped */
  size_t len;
  int skip;
} cf_step;

#define CF_STAGE "/tmp" /* the new root is built on a tmpfs here, then pivoted to */

/* Opens every source of the plan: -1 with why for a path the spec names that is missing. */
static int cf_view_open(const confine_mount *m, cf_step *st, char *why, size_t whylen) {
  struct stat sb;
  st->fd = -1;
  if (m->kind == CONFINE_M_LINK || m->kind == CONFINE_M_TMPFS) return 0;
  if (m->kind == CONFINE_M_PROC) { /* the host's, for where a fresh one cannot be had */
    st->fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
    st->dir = 1;
    return 0;
  }
  if (m->kind == CONFINE_M_SYS && lstat(m->src, &sb) == 0 && S_ISLNK(sb.st_mode)) {
    char buf[PATH_MAX];
    ssize_t k = readlink(m->src, buf, sizeof buf - 1);
    if (k <= 0) return st->skip = 1, 0;
    st->text = strndup(buf, (size_t)k);
    return st->text ? 0 : -1;
  }
  if (m->kind == CONFINE_M_ACCOUNTS) {
    int fd = open(m->src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > (1 << 20)) {
      if (fd >= 0) close(fd);
      return st->skip = 1, 0;
    }
    size_t size = (size_t)sb.st_size;
    char *raw = malloc(size + 1);
    st->text = malloc(size + size / 2 + 2);
    ssize_t k = raw && st->text ? read(fd, raw, size) : -1;
    close(fd);
    if (k >= 0) st->len = confine_strip_accounts(raw, (size_t)k, st->text);
    free(raw);
    return k >= 0 ? 0 : (st->skip = 1, 0);
  }
  int follow = m->kind == CONFINE_M_SYS ? O_NOFOLLOW : 0;
  st->fd = open(m->src, O_PATH | O_CLOEXEC | follow);
  if (st->fd < 0 || fstat(st->fd, &sb) != 0) {
    if (m->kind == CONFINE_M_RO || m->kind == CONFINE_M_RW) {
      snprintf(why, whylen, "%s: %s", m->src, strerror(errno));
      return -1;
    }
    return st->skip = 1, 0;
  }
  if (m->kind == CONFINE_M_DEV && !S_ISCHR(sb.st_mode)) return st->skip = 1, 0;
  st->dir = S_ISDIR(sb.st_mode);
  return 0;
}

/* Mounts one step under the stage. */
static int cf_view_mount(unsigned applied, const confine_mount *m, cf_step *st, char *path) {
  if (st->skip) return 0;
  switch (m->kind) {
  case CONFINE_M_SYS:
    if (st->text) return cf_mkdirs(path, 0755) != 0 ? -1 : symlink(st->text, path);
    /* fall through */
  case CONFINE_M_ETC: case CONFINE_M_RO:
    if (cf_mountpoint(path, st->dir) != 0) return -1;
    return cf_bind_fd(st->fd, path, MS_RDONLY | MS_NOSUID | MS_NODEV);
  case CONFINE_M_RW:
    if (cf_mountpoint(path, st->dir) != 0) return -1;
    return cf_bind_fd(st->fd, path, MS_NOSUID | MS_NODEV);
  case CONFINE_M_DEV:
    if (cf_mountpoint(path, 0) != 0) return -1;
    return cf_bind_fd(st->fd, path, MS_NOSUID | MS_NOEXEC);
  case CONFINE_M_ACCOUNTS: {
    if (cf_mkdirs(path, 0755) != 0) return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    ssize_t w = write(fd, st->text, st->len);
    close(fd);
    return w == (ssize_t)st->len ? 0 : -1;
  }
  case CONFINE_M_LINK:
    return cf_mkdirs(path, 0755) != 0 ? -1 : symlink(m->src, path);
  case CONFINE_M_TMPFS:
    if (cf_mountpoint(path, 1) != 0) return -1;
    return mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, m->src);
  case CONFINE_M_PROC: {
    /* A /proc of the PID namespace. Without one (or where the kernel refuses it, as under
     * a container's masked /proc) the host's is bound instead, as a run without the view
     * sees it: other processes' files stay behind ptrace's checks, and the note says so. */
    if (cf_mountpoint(path, 1) != 0) return -1;
    const char *why = "no PID namespace";
    if (applied & CONFINE_PIDNS) {
      if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0) return 0;
      why = strerror(errno);
    }
    char src[64];
    snprintf(src, sizeof src, "/proc/self/fd/%d", st->fd);
    if (st->fd < 0 || mount(src, path, NULL, MS_BIND | MS_REC, NULL) != 0) {
      cf_say("N view no /proc (%s; binding the host's: %s)", why, strerror(errno));
      return 0;
    }
    cf_say("N view /proc is the host's (%s)", why);
    return 0;
  }
  }
  return 0;
}

/* Builds the view and pivots into it. Everything is opened first, then mounted on a tmpfs
 * staged over /tmp (the sources are held as fds, /tmp's included); a failure before the pivot takes the stage down again, leaving the
 * host's tree as it was (in a mount namespace of its own). Returns 0, or -1 with why. */
static int cf_view(const confine_spec *s, unsigned applied, char *why, size_t whylen) {
  size_t n = confine_view_size(s);
  confine_mount *plan = malloc(n * sizeof *plan);
  cf_step *st = calloc(n, sizeof *st);
  char *path = malloc(PATH_MAX);
  int rc = -1, staged = 0;
  if (plan == NULL || st == NULL || path == NULL) {
    snprintf(why, whylen, "out of memory");
    goto out;
  }
  n = confine_view_plan(s, plan);
  for (size_t i = 0; i < n; i++) st[i].fd = -1;
  if (unshare(CLONE_NEWNS) != 0) {
    snprintf(why, whylen, "unshare(CLONE_NEWNS): %s", strerror(errno));
    goto out;
  }
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    snprintf(why, whylen, "making / private: %s", strerror(errno));
    goto out;
  }
  /* opened in the new namespace: a bind's source must be a mount of the caller's own */
  for (size_t i = 0; i < n; i++)
    if (cf_view_open(&plan[i], &st[i], why, whylen) != 0) goto out;
  if (mount("tmpfs", CF_STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=4m") != 0) {
    snprintf(why, whylen, "tmpfs root: %s", strerror(errno));
    goto out;
  }
  staged = 1;
  for (size_t i = 0; i < n; i++) {
    if ((size_t)snprintf(path, PATH_MAX, CF_STAGE "%s", plan[i].dest) >= PATH_MAX) {
      snprintf(why, whylen, "path too long: %s", plan[i].dest);
      goto out;
    }
    if (cf_view_mount(applied, &plan[i], &st[i], path) != 0) {
      snprintf(why, whylen, "%s: %s", plan[i].dest, strerror(errno));
      goto out;
    }
  }
  /* The workspace's .git (a linked worktree's pointer to its gitdir, or a repository) is the
   * engine's: read-only over itself, so agent code can neither rewrite nor remove it. */
  struct stat sb;
  snprintf(path, PATH_MAX, CF_STAGE "%s/.git", s->cwd);
  if (lstat(path, &sb) == 0 && (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode))) {
    int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    int bad = fd < 0 || cf_bind_fd(fd, path, MS_RDONLY | MS_NOSUID | MS_NODEV) != 0;
    if (fd >= 0) close(fd);
    if (bad) {
      snprintf(why, whylen, "%s/.git read-only: %s", s->cwd, strerror(errno));
      goto out;
    }
  }
  /* The root and /dev hold only mount points now: read-only. */
  snprintf(path, PATH_MAX, CF_STAGE "/dev");
  if (mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0 ||
      mount(NULL, CF_STAGE, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) {
    snprintf(why, whylen, "read-only root: %s", strerror(errno));
    goto out;
  }
  /* pivot_root(".", "."): the old root lands on top of the new one, then goes */
  if (chdir(CF_STAGE) != 0 || syscall(SYS_pivot_root, ".", ".") != 0) {
    snprintf(why, whylen, "pivot_root: %s", strerror(errno));
    goto out;
  }
  staged = 0;
  if (umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
    cf_fail("view", "detaching the host's root: %s", strerror(errno)); /* half-made: no way back */
  rc = 0;
out:
  if (staged) {
    int e = errno;
    if (chdir("/") != 0 || umount2(CF_STAGE, MNT_DETACH) != 0)
      cf_fail("view", "%s; taking the stage down: %s", why, strerror(errno));
    errno = e;
  }
  if (st)
    for (size_t i = 0; i < n; i++) {
      if (st[i].fd >= 0) close(st[i].fd);
      free(st[i].text);
    }
  free(st);
  free(plan);
  free(path);
  return rc;
}

/* pid 1 of a new PID namespace: a private mount namespace with a /proc of its own, so
 * /proc/PID and tools like ps see the confined processes and not the host's. Best effort:
 * the namespace holds without it. */
static void cf_mount_proc(void) {
  if (unshare(CLONE_NEWNS) != 0) return;
  if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return;
  mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

/* execve through the env's PATH (execvpe would use the helper's own, empty, environment). */
static void cf_exec(const confine_spec *s) {
  const char *prog = s->argv[0];
  if (strchr(prog, '/')) {
    execve(prog, s->argv, s->env);
    return;
  }
  const char *path = "/usr/local/bin:/usr/bin:/bin";
  for (char *const *e = s->env; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  int saved = ENOENT;
  char buf[PATH_MAX];
  while (*path) {
    const char *colon = strchr(path, ':');
    size_t len = colon ? (size_t)(colon - path) : strlen(path);
    if (len > 0 && snprintf(buf, sizeof buf, "%.*s/%s", (int)len, path, prog) < (int)sizeof buf) {
      execve(buf, s->argv, s->env);
      if (errno == EACCES) saved = EACCES;
      else if (errno != ENOENT && errno != ENOTDIR) saved = errno;
    }
    path += len + (colon ? 1 : 0);
  }
  errno = saved;
}

/* Every signal to its default and unblocked; but SIGTERM kept blocked for a PID namespace's
 * init (keep_term), which passes it on once it has its program (cf_child): unblocked, one
 * sent meanwhile would be dropped, as an init ignores a signal it has no handler for. */
static void cf_reset_signals(int keep_term) {
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  sigset_t mask;
  sigemptyset(&mask);
  if (keep_term) sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_SETMASK, &mask, NULL);
}

static _Noreturn void cf_exec_or_report(const confine_spec *s) {
  cf_exec(s);
  cf_say("E %d %s", errno, s->argv[0]);
  _exit(127);
}

/* Landlock and seccomp refused for want of privilege: says which, since either
 * no_new_privs or CAP_SYS_ADMIN (in the user namespace) would have let them apply. */
static void cf_privs_why(char *why, size_t whylen, int err, unsigned applied) {
  if ((err != EPERM && err != EACCES) || (applied & CONFINE_NNP)) return;
  size_t n = strlen(why);
  snprintf(why + n, whylen - n, " (no no_new_privs and no CAP_SYS_ADMIN)");
}

/* The PID namespace's init waits for its signals with sigwaitinfo, blocked; a handler is
 * installed all the same, since a namespace's init is sent no signal from outside it that
 * it has no handler for. It does nothing: the loop acts (cf_child). */
static void cf_init_wake(int sig) { (void)sig; }

/* The child: applies the remaining layers, then execs (or, as the PID namespace's init,
 * runs the program in a grandchild and reaps until it ends). */
static _Noreturn void cf_child(const confine_spec *s, unsigned applied, int status_fd) {
  cf_reset_signals(status_fd >= 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  setpgid(0, 0);
  char why[300];
  /* The view first: Landlock's rules below name its paths. */
  if (s->want & CONFINE_VIEW) {
    if (cf_view(s, applied, why, sizeof why) == 0) applied |= CONFINE_VIEW;
    else cf_missing(s, CONFINE_VIEW, why);
  } else {
    cf_missing(s, CONFINE_VIEW, "switched off");
  }
  if ((applied & CONFINE_PIDNS) && !(applied & CONFINE_VIEW)) cf_mount_proc();
  if (chdir(s->cwd) != 0) cf_fail("cwd", "cannot enter %s: %s", s->cwd, strerror(errno));
  applied |= CONFINE_CWD;
  if (status_fd >= 0 && status_fd != CF_STATUS_FD) {
    if (dup2(status_fd, CF_STATUS_FD) < 0) cf_fail("fds", "dup2: %s", strerror(errno));
    status_fd = CF_STATUS_FD;
  }
  if (cf_close_from(status_fd >= 0 ? CF_STATUS_FD + 1 : CF_REPORT_FD + 1) != 0)
    cf_fail("fds", "cannot close inherited descriptors: %s", strerror(errno));
  fcntl(CF_REPORT_FD, F_SETFD, FD_CLOEXEC);
  if (status_fd >= 0) fcntl(status_fd, F_SETFD, FD_CLOEXEC);
  applied |= CONFINE_FDS | CONFINE_ENV;
  umask(022);
  if (s->run_as && geteuid() == 0) cf_run_as(s->run_as);

  if (s->want & CONFINE_NNP) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) applied |= CONFINE_NNP;
    else cf_missing(s, CONFINE_NNP, strerror(errno));
  } else {
    cf_missing(s, CONFINE_NNP, "switched off");
  }
  /* Landlock and seccomp before caps: without no_new_privs only CAP_SYS_ADMIN lets a
   * process apply them, and caps drops it. */
  int abi = cf_landlock_abi();
  if (s->want & CONFINE_LANDLOCK) {
    if (cf_landlock(s, abi, (applied & CONFINE_VIEW) != 0, &applied, why, sizeof why) != 0) {
      cf_privs_why(why, sizeof why, errno, applied);
      cf_missing(s, CONFINE_LANDLOCK, why);
      /* the kernel offers the sub-layers; they are missing for the same reason */
      char sub[340];
      snprintf(sub, sizeof sub, "Landlock did not apply (%s)", why);
      if (abi >= 4) cf_missing(s, CONFINE_LANDLOCK_NET, sub);
      if (abi >= 6) cf_missing(s, CONFINE_LANDLOCK_SCOPE, sub);
    }
  } else {
    cf_missing(s, CONFINE_LANDLOCK, "switched off");
  }
  /* The Landlock sub-layers are required through their own names. */
  for (unsigned bit = CONFINE_LANDLOCK_NET; bit <= CONFINE_LANDLOCK_SCOPE; bit <<= 1)
    if (!(applied & bit) && (s->require & bit))
      cf_fail(confine_layer_name(bit), "required layer '%s' is not available: Landlock ABI %d",
              confine_layer_name(bit), abi);
  if (s->want & CONFINE_SECCOMP) {
    /* IP sockets are the program's only when it has a network namespace of its own with
     * its loopback up (a sandbox serving on 127.0.0.1): they reach nothing else there */
    unsigned sflags = s->flags;
    if (!(applied & CONFINE_NETNS)) sflags &= ~(unsigned)CONFINE_F_LOOPBACK;
    /* a new session escapes the group kill: allowed only where the namespace's end takes it */
    if (!(applied & CONFINE_PIDNS)) sflags &= ~(unsigned)CONFINE_F_SESSIONS;
    if (cf_seccomp(sflags, why, sizeof why) == 0) applied |= CONFINE_SECCOMP;
    else {
      cf_privs_why(why, sizeof why, errno, applied);
      cf_missing(s, CONFINE_SECCOMP, why);
    }
  } else {
    cf_missing(s, CONFINE_SECCOMP, "switched off");
  }
  if (s->want & CONFINE_CAPS) {
    if (cf_caps(why, sizeof why) == 0) applied |= CONFINE_CAPS;
    else cf_missing(s, CONFINE_CAPS, why);
  } else {
    cf_missing(s, CONFINE_CAPS, "switched off");
  }
  /* The limits come last: nothing here allocates after them (a sanitizer build of this
   * helper could not, under the program's memory limit). */
  if (cf_rlimits(&s->lim, (applied & CONFINE_PIDS) != 0) != 0) cf_fail("rlimits", "setrlimit: %s", strerror(errno));
  applied |= CONFINE_RLIMITS;
  if (s->require & ~applied)
    cf_fail("require", "required layers are missing (mask %u)", s->require & ~applied);
  cf_say("L %u %d", applied, abi);

  if (status_fd < 0) cf_exec_or_report(s);
  /* pid 1 of the namespace: the program runs in a grandchild; orphans land here and are
   * reaped; when the program ends, this process exits and the kernel kills the rest. A
   * SIGTERM from the helper (cf_ask_end) is passed on to the program: from outside the
   * namespace, its init gets only the signals it has a handler for (cf_init_wake). SIGTERM
   * is blocked from the start (cf_reset_signals), and with SIGCHLD stays blocked, taken by
   * sigwaitinfo: one sent before the program was forked is passed on too. */
  sigset_t waits;
  sigemptyset(&waits);
  sigaddset(&waits, SIGTERM);
  sigaddset(&waits, SIGCHLD);
  sigprocmask(SIG_BLOCK, &waits, NULL);
  pid_t prog = fork();
  if (prog < 0) cf_fail("pidns", "fork: %s", strerror(errno));
  if (prog == 0) {
    sigprocmask(SIG_UNBLOCK, &waits, NULL);
    cf_exec_or_report(s);
  }
  struct sigaction wake = {.sa_handler = cf_init_wake};
  sigemptyset(&wake.sa_mask);
  sigaction(SIGTERM, &wake, NULL);
  sigaction(SIGCHLD, &wake, NULL);
  close(CF_REPORT_FD);
  for (;;) {
    int st;
    pid_t r;
    while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
      if (r == prog) {
        ssize_t w = write(status_fd, &st, sizeof st);
        (void)w;
        _exit(0);
      }
    }
    if (r < 0 && errno == ECHILD) _exit(0);
    if (sigwaitinfo(&waits, NULL) == SIGTERM) kill(prog, SIGTERM);
  }
}

/* The run's pids cgroup (confine_pids.h), entered by the helper before it forks. Missing,
 * the report says what holds the count instead: RLIMIT_NPROC for any user but root, and
 * for root nothing (the kernel exempts it), so that a run as root says so. A require of
 * "pids" fails here, before anything runs. */
static void cf_pids(const confine_spec *s, int root, confine_pids *p, unsigned *applied) {
  p->dir[0] = p->back[0] = '\0';
  if (!(s->want & CONFINE_PIDS)) {
    cf_missing(s, CONFINE_PIDS, "switched off");
    return;
  }
  if (!s->lim.processes) { /* nothing to hold: a cgroup would only count */
    cf_missing(s, CONFINE_PIDS, "no process limit was asked (limits.processes = 0)");
    return;
  }
  char why[400], msg[480];
  uint64_t max = s->lim.processes + CONFINE_PIDS_OVERHEAD;
  if (confine_pids_open(p, max, why, sizeof why) == 0) {
    *applied |= CONFINE_PIDS;
    cf_say("C %s", p->dir); /* the runner removes it if this helper cannot */
    return;
  }
  /* what holds the count first: the reasons after it may be cut to fit a report line */
  snprintf(msg, sizeof msg, "%s: %s",
           root ? "root is exempt from RLIMIT_NPROC, so nothing holds the process count"
                : "RLIMIT_NPROC holds the process count (per user)",
           why);
  cf_missing(s, CONFINE_PIDS, msg);
}

/* ---- the helper: supervise, sweep, pass the status on --------------------------------------------- */

/* SIGKILLs every process whose parent is this one (orphans land here: we are a child
 * subreaper). Scans /proc since /proc/PID/task/TID/children is not always built in. */
static void cf_kill_children(void) {
  pid_t me = getpid();
  DIR *d = opendir("/proc");
  if (d == NULL) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold anything but not after ')' */
    int ppid;
    if (p && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == me) kill(atoi(e->d_name), SIGKILL);
  }
  closedir(d);
}

/* Kills the program's group and everything below this process until nothing is left.
 * Records the program's status if it is reaped here. */
static void cf_sweep(pid_t prog, int *prog_status, int *prog_done) {
  for (;;) {
    kill(-prog, SIGKILL);
    int st;
    /* No child left (the usual end): nothing is below, since an orphan is re-parented
     * here before its parent can be reaped. Skips the /proc scan, most of a short run's
     * teardown. */
    pid_t r = waitpid(-1, &st, WNOHANG);
    if (r < 0 && errno == ECHILD) return;
    if (r == 0) {
      cf_kill_children();
      r = waitpid(-1, &st, 0);
    }
    if (r < 0 && errno == ECHILD) return;
    if (r == prog && !*prog_done) {
      *prog_status = st;
      *prog_done = 1;
    }
  }
}

static _Noreturn void cf_pass_status(int st) {
  if (WIFEXITED(st)) _exit(WEXITSTATUS(st));
  int sig = WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL;
  prctl(PR_SET_DUMPABLE, 0); /* pass the signal on, never a core file of the helper */
  signal(sig, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  sigprocmask(SIG_UNBLOCK, &one, NULL);
  raise(sig);
  _exit(128 + sig);
}

/* SIGUSR1 from the runner: the program is asked to end, by SIGTERM to it alone (not its
 * group: a sandbox's script stops its services itself, in their order, and the processes
 * that carry their output must outlive them). Its end ends the run, and the sweep then takes
 * whatever it left; the runner bounds the wait with a SIGTERM, which sweeps at once. With
 * a PID namespace, prog is the namespace's init, which passes the signal on (cf_child). */
static void cf_ask_end(pid_t prog, int *asked) {
  if (*asked) return;
  *asked = 1;
  kill(prog, SIGTERM);
}

/* The wait of a run with a relay: the relay's poll loop, woken by the blocked signals
 * through sigfd; the same handling as the plain wait in confine_main. */
static void cf_supervise_relay(confine_relay *relay, int sigfd, pid_t prog, int *prog_status, int *prog_done) {
  int asked = 0;
  while (!*prog_done) {
    if (confine_relay_run(relay, sigfd) != 0) { /* cannot wait any more: end the run */
      cf_sweep(prog, prog_status, prog_done);
      return;
    }
    struct signalfd_siginfo si;
    while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
      if (si.ssi_signo == SIGUSR1) { /* the runner asks the program to end */
        cf_ask_end(prog, &asked);
        continue;
      }
      if (si.ssi_signo != SIGCHLD) { /* the runner asks for the tree to go */
        cf_sweep(prog, prog_status, prog_done);
        return;
      }
      int wst;
      pid_t r;
      while ((r = waitpid(-1, &wst, WNOHANG)) > 0) {
        if (r == prog) {
          *prog_status = wst;
          *prog_done = 1;
        }
      }
    }
  }
}

void confine_main(int argc, char **argv) {
  confine_spec s;
  char err[300];
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127); /* the runner is already gone */
  struct stat st0;
  if (fstat(CF_REPORT_FD, &st0) != 0) _exit(127); /* not started by the runner */
  if (confine_decode(argc, argv, &s, err, sizeof err) != 0 || confine_decode_env(environ, &s, err, sizeof err) != 0)
    cf_fail("spec", "%s", err);
  s.want |= CONFINE_ALWAYS;
  cf_close_from(CF_REPORT_FD + 1);
  struct rlimit none = {0, 0};
  setrlimit(RLIMIT_CORE, &none);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, NULL);
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  unsigned applied = 0;
  int root = geteuid() == 0; /* before the user namespace, where root shows as uid 1000 */
  if (getsid(0) == getpid()) applied |= CONFINE_SESSION;
  else cf_fail("session", "the helper does not lead its own session");
  char why[300];
  if (s.want & CONFINE_USERNS) {
    if (cf_userns(why, sizeof why) == 0) applied |= CONFINE_USERNS;
    else cf_missing(&s, CONFINE_USERNS, why);
  } else {
    cf_missing(&s, CONFINE_USERNS, "switched off");
  }
  if (s.want & CONFINE_NETNS) {
    if (unshare(CLONE_NEWNET) == 0) {
      applied |= CONFINE_NETNS;
      if ((s.flags & CONFINE_F_LOOPBACK) && cf_loopback_up(why, sizeof why) != 0) cf_fail("netns", "%s", why);
    } else {
      snprintf(why, sizeof why, "unshare(CLONE_NEWNET): %s", strerror(errno));
      cf_missing(&s, CONFINE_NETNS, why);
    }
  } else {
    cf_missing(&s, CONFINE_NETNS, "switched off");
  }
  int status[2] = {-1, -1};
  if (s.want & CONFINE_PIDNS) {
    if (unshare(CLONE_NEWPID) == 0) {
      applied |= CONFINE_PIDNS;
      if (pipe2(status, O_CLOEXEC) != 0) cf_fail("pidns", "pipe: %s", strerror(errno));
    } else {
      snprintf(why, sizeof why, "unshare(CLONE_NEWPID): %s", strerror(errno));
      cf_missing(&s, CONFINE_PIDNS, why);
    }
  } else {
    cf_missing(&s, CONFINE_PIDNS, "switched off");
  }

  /* The relay listens before the program starts, so a bad path fails a run that never
   * began; the child closes these descriptors with the rest. */
  confine_relay *relay = NULL;
  int sigfd = -1;
  if (s.relay_path) {
    if (!(applied & CONFINE_NETNS))
      cf_fail("netns", "a relay needs the network namespace: %s",
              (s.want & CONFINE_NETNS) ? "this kernel does not offer it" : "it is switched off");
    if (!(s.flags & CONFINE_F_LOOPBACK)) cf_fail("netns", "a relay needs the loopback up");
    sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0) cf_fail("relay", "signalfd: %s", strerror(errno));
    relay = confine_relay_open(s.relay_path, s.relay_port, why, sizeof why);
    if (relay == NULL) cf_fail("relay", "%s", why);
    int bad = s.inward_path && confine_relay_inward(relay, s.inward_port, s.inward_path, why, sizeof why) != 0;
    for (size_t i = 0; !bad && i < s.nservices; i++)
      bad = confine_relay_service(relay, s.service_ports[i], why, sizeof why) != 0;
    if (bad) {
      confine_relay_close(relay);
      cf_fail("relay", "%s", why);
    }
  }

  /* The pids cgroup last before the fork, so that every failure above leaves none
   * behind; from here on every way out passes the sweep and its removal below. */
  confine_pids pids;
  cf_pids(&s, root, &pids, &applied);
  pid_t prog = fork();
  if (prog < 0) {
    confine_relay_close(relay);
    confine_pids_close(&pids);
    cf_fail("session", "fork: %s", strerror(errno));
  }
  if (prog == 0) {
    if (status[0] >= 0) close(status[0]);
    cf_child(&s, applied, status[1]);
  }
  setpgid(prog, prog); /* also done in the child: whichever runs first */
  if (status[1] >= 0) close(status[1]);
  cf_say("P %d", (int)prog);

  int prog_status = 0, prog_done = 0, asked = 0;
  if (relay) {
    cf_say("R %s", s.relay_path);
    cf_supervise_relay(relay, sigfd, prog, &prog_status, &prog_done);
    confine_relay_close(relay);
    close(sigfd);
  }
  while (!s.relay_path && !prog_done) {
    int sig = sigwaitinfo(&set, NULL);
    if (sig < 0) continue;
    if (sig == SIGUSR1) { /* the runner asks the program to end */
      cf_ask_end(prog, &asked);
      continue;
    }
    if (sig != SIGCHLD) { /* the runner asks for the tree to go: timeout or cancel */
      cf_sweep(prog, &prog_status, &prog_done);
      break;
    }
    int wst;
    pid_t r;
    while ((r = waitpid(-1, &wst, WNOHANG)) > 0) {
      if (r == prog) {
        prog_status = wst;
        prog_done = 1;
      }
    }
  }
  /* The program ended: nothing it started may outlive it. */
  cf_sweep(prog, &prog_status, &prog_done);
  confine_pids_close(&pids);
  if (status[0] >= 0) {
    int inner;
    if (read(status[0], &inner, sizeof inner) == (ssize_t)sizeof inner) prog_status = inner;
  }
  /* Every process below was reaped here (a subreaper), so this covers the whole tree. */
  struct rusage ru;
  if (getrusage(RUSAGE_CHILDREN, &ru) == 0)
    cf_say("X %ld %ld", ru.ru_maxrss,
           (long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
               (long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000);
  cf_pass_status(prog_status);
}

/* ---- probing ------------------------------------------------------------------------- */

/* Runs fn in a throw-away child; 1 when it exits 0. */
static int cf_try(int (*fn)(void)) {
  pid_t p = fork();
  if (p < 0) return 0;
  if (p == 0) _exit(fn() == 0 ? 0 : 1);
  int st;
  while (waitpid(p, &st, 0) < 0)
    if (errno != EINTR) return 0;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int cf_try_userns(void) { return unshare(CLONE_NEWUSER); }
/* As in a run: in a user namespace when there is one, else as is (root may still unshare). */
static int cf_try_netns(void) {
  (void)unshare(CLONE_NEWUSER);
  return unshare(CLONE_NEWNET);
}
static int cf_try_pidns(void) {
  (void)unshare(CLONE_NEWUSER);
  return unshare(CLONE_NEWPID);
}
static int cf_try_caps(void) {
  char why[300];
  (void)unshare(CLONE_NEWUSER);
  return cf_caps(why, sizeof why);
}
static int cf_try_seccomp(void) {
  char why[128];
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  return cf_seccomp(0, why, sizeof why);
}

/* As in a run: a mount namespace with a tmpfs mounted in it (in the user namespace when
 * there is one). */
static int cf_try_view(void) {
  (void)unshare(CLONE_NEWUSER);
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return -1;
  return mount("tmpfs", CF_STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k");
}

/* As in a run: a pids cgroup made, entered and removed. */
static int cf_try_pids(void) {
  confine_pids p;
  char why[400];
  if (confine_pids_open(&p, 0, why, sizeof why) != 0) return -1;
  confine_pids_close(&p);
  return 0;
}

unsigned confine_probe(int *landlock_abi) {
  unsigned offered = CONFINE_NNP;
  int abi = cf_landlock_abi();
  if (landlock_abi) *landlock_abi = abi;
  if (abi >= 1) offered |= CONFINE_LANDLOCK;
  if (abi >= 4) offered |= CONFINE_LANDLOCK_NET;
  if (abi >= 6) offered |= CONFINE_LANDLOCK_SCOPE;
  if (cf_try(cf_try_userns)) offered |= CONFINE_USERNS;
  if (cf_try(cf_try_netns)) offered |= CONFINE_NETNS;
  if (cf_try(cf_try_pidns)) offered |= CONFINE_PIDNS;
  if (cf_try(cf_try_seccomp)) offered |= CONFINE_SECCOMP;
  if (cf_try(cf_try_caps)) offered |= CONFINE_CAPS;
  if (cf_try(cf_try_view)) offered |= CONFINE_VIEW;
  if (cf_try(cf_try_pids)) offered |= CONFINE_PIDS;
  return offered;
}
