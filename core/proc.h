/* proc.h: the process runner. Runs one program for hostile code on the libuv loop: spawns
 * the confinement helper (confine.h) with uv_spawn, captures stdout and stderr up to a cap
 * (head and tail kept, memory flat however much is written), kills the whole tree on a
 * timeout or output limit, and reports how it ended and which layers applied. Plain C: the
 * Lua binding is lproc.c. Live runs hang off a proc_ctx (one per loop). */
#ifndef ORKET_PROC_H
#define ORKET_PROC_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "confine.h"

typedef struct proc_ctx proc_ctx;
typedef struct proc_run proc_run;

/* Called once when the run is over (not after proc_cancel). The run stays readable until
 * proc_release. */
typedef void (*proc_done_fn)(proc_run *r, void *ud);

typedef struct proc_opts {
  const char *helper;        /* the helper binary (NULL: orket-confine next to the running
                                binary, else the running binary itself) */
  char *const *argv;         /* the program, NULL-terminated */
  char *const *env;          /* extra "NAME=value" entries (NULL-terminated or NULL); PATH,
                                HOME, TMPDIR, LANG are set unless given here */
  const char *cwd;           /* absolute path of the workspace */
  confine_limits lim;
  unsigned want;             /* optional layers to try (CONFINE_ALL for all) */
  unsigned require;          /* layers whose absence fails the run */
  uint64_t timeout_ms;       /* 0: none */
  size_t output_cap;         /* bytes kept per stream, half head and half tail (0: 1 MiB) */
  uint64_t output_limit;     /* total output bytes after which the tree is killed (0: none) */
  unsigned flags;            /* CONFINE_F_* */
  size_t nbinds;             /* extra paths: "r/path" read-only, "w/path" read-write */
  char *const *binds;
  const char *relay_path;    /* a relay socket to 127.0.0.1:relay_port (NULL: none; see
                                confine_main) */
  unsigned relay_port;
  const char *inward_path;   /* with a relay: 127.0.0.1:inward_port inside joined to this
                                unix socket outside (NULL: none) */
  unsigned inward_port;
  size_t nservices;          /* with a relay: further ports, each relayed from relay_path
                                ".PORT" (confine.h) */
  unsigned service_ports[CONFINE_MAX_SERVICES];
  unsigned run_as;           /* started by root, the program becomes this uid and gid (0: no) */
} proc_opts;

typedef enum proc_reason {
  PROC_RUNNING = 0,
  PROC_EXIT,        /* the program exited (any code) */
  PROC_KILLED,      /* a signal ended it (its own doing, a limit like SIGXFSZ, or the kernel) */
  PROC_TIMEOUT,     /* timeout_ms passed: the tree was killed */
  PROC_OUTPUT,      /* more than output_limit bytes were written: the tree was killed */
  PROC_FAILED,      /* it never ran: see proc_failure */
} proc_reason;

typedef struct proc_stream {
  char *head;        /* first bytes, up to cap/2 */
  size_t head_len;
  size_t head_size;  /* allocated for head: grows to cap/2 */
  char *tail;        /* a ring of the last bytes, cap - cap/2, allocated once head is full */
  size_t tail_pos;   /* next write position in the ring */
  size_t tail_len;   /* bytes held in the ring */
  size_t cap;
  uint64_t total;    /* bytes written by the program */
  int eof;
} proc_stream;

/* A context per loop. Makes the calling process not dumpable (PR_SET_DUMPABLE 0), so
 * programs it runs cannot read its environment through /proc, and sweeps /tmp
 * (proc_sweep_tmp). exe: the executable's path when /proc is not mounted (NULL or "":
 * unknown), where the helper is looked for then. NULL when out of memory. */
proc_ctx *proc_ctx_new(uv_loop_t *loop, const char *exe);

/* Removes from base the temp dirs of runs and of stdio MCP servers whose Orket process is
 * gone (killed before it could remove them): each "orket-run-PID-NS-XXXXXX" or
 * "orket-mcp-PID-NS-XXXXXX" (orket.mcp.client's) (NS: the inode of the PID namespace
 * PID belongs to, this process's own) that is a directory (not a link: never followed,
 * neither there nor inside) owned by this user, whose PID no process has now, or only a
 * zombie (confine_pids_stale). A live process's dir, another user's or one named for another PID
 * namespace is never touched; where this process's namespace cannot be told (no /proc),
 * nothing is. */
void proc_sweep_tmp(const char *base);

/* Kills every live run's tree at once (SIGKILL), closes their handles and frees the context
 * and the runs once the loop has run their close callbacks. Runs still held by the caller
 * become detached: proc_release frees them as usual. */
void proc_ctx_free(proc_ctx *c);

/* Runs alive on this context (started and not yet freed). */
size_t proc_ctx_live(const proc_ctx *c);

/* The helper binary runs exec: orket-confine next to the running binary when it is there,
 * else "/proc/self/exe" (orket's own helper mode). */
const char *proc_ctx_helper(const proc_ctx *c);

/* Starts a run. Returns NULL with a message in err (and errno-style code in *code, e.g.
 * "ENOENT", "ESPAWN") when it could not start. */
proc_run *proc_start(proc_ctx *c, const proc_opts *o, proc_done_fn done, void *ud, char *err,
                     size_t errlen, const char **code);

/* Kills the tree; done is not called. The run is freed by proc_release (which may follow at
 * once) when the loop has closed its handles. */
void proc_cancel(proc_run *r);

/* Forgets the run: cancels it if still running; the memory goes with its handles. */
void proc_release(proc_run *r);

/* ---- the result, once done has been called -------------------------------------------- */
proc_reason proc_result_reason(const proc_run *r);
/* exit code (>= 0) or -1; the signal that ended it or 0 */
int proc_result_code(const proc_run *r);
int proc_result_signal(const proc_run *r);
/* Layers applied, optional layers missing; landlock ABI. */
unsigned proc_result_layers(const proc_run *r);
int proc_result_landlock_abi(const proc_run *r);
/* Why an optional layer is missing (NULL when it applied or was not asked). */
const char *proc_result_missing(const proc_run *r, unsigned bit);
/* A layer that held with less, as "<layer> <what>" (e.g. "view no /proc: ..."), or NULL. */
const char *proc_result_note(const proc_run *r);
/* For PROC_FAILED: the message and code ("ELAYER" for a required layer, "ENOENT"...). */
const char *proc_result_failure(const proc_run *r, const char **code);
/* Nanoseconds from start to end, and from start to the program's exec. */
uint64_t proc_result_wall_ns(const proc_run *r);
uint64_t proc_result_exec_ns(const proc_run *r);
/* Peak resident set of the largest process and CPU time of the whole tree (0 if unknown). */
uint64_t proc_result_max_rss_kb(const proc_run *r);
uint64_t proc_result_cpu_ms(const proc_run *r);
/* 1: stdout, 2: stderr. */
const proc_stream *proc_result_stream(const proc_run *r, int which);

/* Copies what a stream kept into out (at most outlen): head, then a marker line when bytes
 * were dropped, then the tail. Returns the length it needs (call with outlen 0 to size). */
size_t proc_stream_text(const proc_stream *s, char *out, size_t outlen);

/* Appends bytes to a capture (exposed for the unit tests). */
void proc_stream_add(proc_stream *s, const char *p, size_t n);

#endif
