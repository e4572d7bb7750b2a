/* confine.h: the confinement step that runs between fork and exec of a program Orket runs
 * for hostile code (tests agents wrote). libuv has no pre-exec hook, so the runner
 * (proc.h) spawns a helper: `orket-confine` (confine_main.c, a static binary beside orket)
 * or the orket binary itself (`orket --confine-exec ...`); the helper applies the layers
 * below, each when the kernel offers it, reports which applied on fd 3 and execs the
 * program. Plain C, no Lua; the spec travels in argv, never in the
 * environment. */
#ifndef ORKET_CONFINE_H
#define ORKET_CONFINE_H

#include <stddef.h>
#include <stdint.h>

/* The first argument that turns `orket` into the helper (main.c dispatches on it). */
#define CONFINE_ARG "--confine-exec"

/* One bit per layer. The first group always applies (a failure there fails the run); the
 * second is optional: applied when the kernel offers it, switchable off per run, and a
 * project may require it. */
enum {
  CONFINE_SESSION = 1u << 0,    /* own session and process group */
  CONFINE_FDS = 1u << 1,        /* only fds 0-2, stdin the null device */
  CONFINE_ENV = 1u << 2,        /* environment exactly the spec's allow-listed list */
  CONFINE_CWD = 1u << 3,        /* working directory the workspace */
  CONFINE_RLIMITS = 1u << 4,    /* CPU, memory, file size, open files, no core files */
  CONFINE_NNP = 1u << 5,        /* PR_SET_NO_NEW_PRIVS */
  CONFINE_CAPS = 1u << 6,       /* no capability in any set, none to regain through exec */
  CONFINE_USERNS = 1u << 7,     /* unprivileged user namespace (no capabilities after exec) */
  CONFINE_NETNS = 1u << 8,      /* network namespace: no interface up, no network at all */
  CONFINE_PIDNS = 1u << 9,      /* PID namespace: the kill takes every process with it */
  CONFINE_LANDLOCK = 1u << 10,  /* Landlock fs: read-only outside the workspace and tmp */
  CONFINE_LANDLOCK_NET = 1u << 11,   /* Landlock ABI >= 4: no TCP bind or connect */
  CONFINE_LANDLOCK_SCOPE = 1u << 12, /* Landlock ABI >= 6: no signals or abstract sockets out */
  CONFINE_SECCOMP = 1u << 13,   /* seccomp deny-list (see confine.c) */
  CONFINE_VIEW = 1u << 14,      /* mount namespace: a minimal root (system dirs read-only, the
                                   workspace, private /tmp, /proc, /dev), the host's unmounted */
  CONFINE_PIDS = 1u << 15,      /* a pids cgroup of the run's own holds its process count,
                                   root's too (RLIMIT_NPROC exempts root) */
  CONFINE_NLAYERS = 16
};

/* Spec flags: grants beyond the default. */
enum {
  CONFINE_F_UNIX = 1u << 0, /* socket(AF_UNIX) allowed (seccomp refuses it otherwise) */
  CONFINE_F_LOOPBACK = 1u << 1, /* the network namespace's loopback brought up (it starts down);
                                   for programs that serve on 127.0.0.1 inside the namespace */
  CONFINE_F_SERVICES = 1u << 2, /* set by confine_encode only: the argv carries service ports */
  CONFINE_F_SESSIONS = 1u << 3, /* setsid allowed through seccomp, only when the PID namespace
                                   applied: its processes all end with it, whatever their
                                   session (PostgreSQL's server processes each call setsid) */
};

/* The most further services a relay serves (its path ".PORT" each); confine_relay.h's
 * CONFINE_RELAY_MAX_SERVICES is the same number. */
#define CONFINE_MAX_SERVICES 16

/* The most environment entries a spec carries (the helper's sanity bound; Lua allows 256). */
#define CONFINE_MAX_ENV 4096

/* The most extra paths a spec carries (read-only and read-write together). */
#define CONFINE_MAX_BINDS 64

#define CONFINE_ALWAYS (CONFINE_SESSION | CONFINE_FDS | CONFINE_ENV | CONFINE_CWD | CONFINE_RLIMITS)
#define CONFINE_ALL ((1u << CONFINE_NLAYERS) - 1u)

/* "session", "fds", ..., "seccomp" for one bit; NULL for anything else. */
const char *confine_layer_name(unsigned bit);
/* The bit for a name, or 0. */
unsigned confine_layer_bit(const char *name);

typedef struct confine_limits {
  uint64_t cpu_seconds;   /* RLIMIT_CPU (0: leave as is) */
  uint64_t memory;        /* RLIMIT_DATA bytes (0: leave) */
  uint64_t address_space; /* RLIMIT_AS bytes (0: leave) */
  uint64_t file_size;     /* RLIMIT_FSIZE bytes (0: leave) */
  uint64_t open_files;    /* RLIMIT_NOFILE (0: leave) */
  uint64_t processes;     /* tasks at once: the pids cgroup's pids.max (plus the helper's
                             own), else RLIMIT_NPROC, which the kernel ignores for root
                             (0: no limit) */
} confine_limits;

typedef struct confine_spec {
  unsigned want;          /* layers to try (CONFINE_ALWAYS are added regardless) */
  unsigned require;       /* layers whose absence fails the run */
  confine_limits lim;
  const char *cwd;        /* the workspace: working directory, writable under Landlock */
  const char *tmpdir;     /* the run's private temp dir, writable too ("" for none) */
  char *const *env;       /* NULL-terminated "NAME=value" list, exactly the program's env
                             (never in the helper's argv: see confine_encode_env) */
  size_t nenv;            /* set by confine_decode: the entries confine_decode_env expects */
  char *const *argv;      /* NULL-terminated; argv[0] is looked up in the env's PATH */
  unsigned flags;         /* CONFINE_F_* */
  size_t nbinds;          /* extra paths in the view and the Landlock allow-list: */
  char *const *binds;     /* "r/abs/path" (read-only) or "w/abs/path" (read-write) */
  const char *relay_path; /* the relay's socket (NULL: no relay; see confine_main) */
  unsigned relay_port;    /* what it connects to on the sandbox's 127.0.0.1 (1..65535) */
  const char *inward_path; /* the way in reversed (NULL: none; needs a relay): the helper */
  unsigned inward_port;    /* listens on 127.0.0.1:inward_port inside and connects each
                              client to the unix socket inward_path outside */
  size_t nservices;        /* further ports relayed, each from relay_path ".PORT" (needs a */
  unsigned service_ports[CONFINE_MAX_SERVICES]; /* relay; none is relay_port, none twice) */
  unsigned run_as;        /* started by root, the program becomes this uid and gid (0: stays
                             root; ignored when not root); the helper stays root */
} confine_spec;

/* The longest relay path: the probe socket's path (relay_path ".probe") must fit a unix
 * socket address (108 bytes with its NUL). */
#define CONFINE_RELAY_PATH_MAX 101

/* Builds the helper's argv: {helper, CONFINE_ARG, ...spec..., NULL}. The strings point into
 * the spec except a few numbers kept in `scratch` (at least 240 bytes; 360 with services). Returns a malloc'd
 * array to free (not its strings), or NULL when out of memory. */
char **confine_encode(const char *helper, const confine_spec *s, char *scratch, size_t scratchlen);

/* The helper's own environment carries the program's: entry i as CONFINE_ENV_PREFIX "i="
 * "NAME=value". The values (secrets among them) travel there and not in argv, which any
 * local user reads through ps; the names keep the dynamic loader and libc from acting on
 * any of them (an LD_PRELOAD of the program's must not load into the helper), and the
 * index keeps them distinct, so that nothing on the way merges them. */
#define CONFINE_ENV_PREFIX "ORKET_CONFINE_ENV_"

/* The helper's environment for s: {CONFINE_ENV_PREFIX "0=NAME=value", ..., NULL}, one
 * malloc'd block to free, or NULL when out of memory. */
char **confine_encode_env(const confine_spec *s);

/* Takes the program's environment from the helper's (envp, writable), after confine_decode:
 * exactly the entries 0 .. s->nenv-1, each once, copied in that order into one malloc'd
 * block (s->env) and wiped where they were, so /proc/PID/environ no longer holds them.
 * Entries without the prefix are ignored. Returns 0, or -1 with a message in err. */
int confine_decode_env(char **envp, confine_spec *s, char *err, size_t errlen);

/* Parses what confine_encode made (argv[0] is the helper, argv[1] CONFINE_ARG). Pointers
 * point into argv; s->env is left NULL (s->nenv counts what confine_decode_env takes).
 * Returns 0, or -1 with a message in err. */
int confine_decode(int argc, char **argv, confine_spec *s, char *err, size_t errlen);

/* The helper: never returns. Exits 127 after writing "F <layer> <message>" on fd 3 when the
 * spec is bad or a required layer cannot be applied. Otherwise writes on fd 3 "C <dir>" (the
 * run's pids cgroup, which it removes when it ends), "P <pid>" (the
 * program's process group), "W <layer> <why>" for each optional layer missing, "N <layer>
 * <what>" for one that held with less (the view without /proc), "L <applied
 * mask> <landlock abi>", execs the program in a child ("E <errno> <program>" if that
 * fails), kills every process left when it ends (or on SIGTERM, SIGINT or SIGHUP), writes
 * "X <max rss KiB> <cpu ms>" and exits with the program's status (the same signal when a
 * signal ended it). SIGUSR1 asks the program to end instead: SIGTERM to the program alone
 * (through the PID namespace's init, which passes it on), whose end is then the run's; the
 * runner that sends it bounds the wait itself, with a SIGTERM (a sandbox's graceful stop).
 *
 * With a relay (relay_path set; needs the network namespace and the loopback flag) the
 * helper, which is in the program's network namespace but under none of the program's
 * other layers, listens on two unix sockets before it starts the program: relay_path
 * (each client connected to 127.0.0.1:relay_port inside the namespace, bytes copied both
 * ways) and relay_path ".probe" (each client told "up\n" or "down <reason>\n" after one
 * connection attempt, then closed). It writes "R <relay_path>" after "P" once both listen,
 * and removes both files when it ends. A stale socket file at either path is replaced;
 * anything else there fails the run ("F relay ..."), as does a relay without the network
 * namespace ("F netns ..."). Each of service_ports gets a socket of its own beside them,
 * relay_path ".PORT", relayed to 127.0.0.1:PORT the same way (no probe), so every service of
 * a sandbox is reached from outside on its own socket. With inward_path too, the same loop listens on
 * 127.0.0.1:inward_port inside the namespace and joins each client to a new connection to
 * the unix socket inward_path: a browser in the namespace reaches one service outside it
 * and nothing else.
 *
 * With run_as set and the helper started as root, the program becomes that uid and gid (no
 * supplementary groups) before its other layers; the helper, root in the namespaces it
 * made, relays for it. */
void confine_main(int argc, char **argv);

/* What the kernel offers, tried in throw-away child processes: a mask of the optional
 * layers that can be applied here, and Landlock's ABI (0 without it). */
unsigned confine_probe(int *landlock_abi);

/* ---- the view (pure parts, for the unit tests) -------------------------------------- */

/* One step of building the view, in order. */
typedef enum confine_mount_kind {
  CONFINE_M_SYS,   /* a system path, read-only; a symlink stays a symlink; absent: skipped */
  CONFINE_M_ETC,   /* a file or dir of /etc, read-only, symlinks followed; absent: skipped */
  CONFINE_M_ACCOUNTS, /* /etc/passwd or /etc/group, copied without the password field */
  CONFINE_M_DEV,   /* a device node bound from the host */
  CONFINE_M_LINK,  /* a symlink: dest -> src */
  CONFINE_M_TMPFS, /* a private tmpfs (src: its options) */
  CONFINE_M_PROC,  /* a fresh /proc (needs the PID namespace) */
  CONFINE_M_RO,    /* an extra path, read-only (must exist) */
  CONFINE_M_RW,    /* read-write: the workspace, the run's temp dir, extra paths (must exist) */
} confine_mount_kind;

typedef struct confine_mount {
  confine_mount_kind kind;
  const char *src;  /* path outside (or the link target, or tmpfs options) */
  const char *dest; /* path in the view */
} confine_mount;

/* Fills out (room for at least confine_view_size(s) entries) with the view's steps for the
 * spec: the fixed system list, then the spec's paths ordered so a parent comes before what
 * lies under it. Returns the count. The strings point into the spec or static text. */
size_t confine_view_plan(const confine_spec *s, confine_mount *out);
size_t confine_view_size(const confine_spec *s);
/* The system's directories every view holds read-only (/usr, /bin, ...), NULL-terminated:
 * what a confined program sees of the machine besides its own binds and /etc's files. */
const char *const *confine_system_dirs(void);

/* Copies a passwd or group file's text without secrets: the second field of each line
 * becomes "x". Returns the length written (out has at least len + len/2 + 2 bytes: a line
 * "a::b" grows by one). */
size_t confine_strip_accounts(const char *in, size_t len, char *out);

/* An extra path is acceptable: absolute, not "/", no "." or ".." component, no "//", no
 * trailing "/". */
int confine_path_ok(const char *p);

/* A relay socket path is acceptable: confine_path_ok and at most CONFINE_RELAY_PATH_MAX
 * bytes. */
int confine_relay_path_ok(const char *p);

/* The longest inward relay path: a unix socket address's 108 bytes with its NUL. */
#define CONFINE_INWARD_PATH_MAX 107

/* An inward relay's socket path is acceptable: confine_path_ok and at most
 * CONFINE_INWARD_PATH_MAX bytes. */
int confine_inward_path_ok(const char *p);

#endif
