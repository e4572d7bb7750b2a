/* runtime.h: the host context: one Lua state, one libuv loop shared with luv, the counting
 * allocator, where Orket's own files live, and the protected-call helper everything uses.
 * No file-scope state: everything hangs off an orket_rt so tests can make many. */
#ifndef ORKET_RUNTIME_H
#define ORKET_RUNTIME_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <uv.h>

#include "memcap.h"

#define ORKET_VERSION "0.1.0"

typedef struct orket_rt {
  memcap mem;            /* first: the allocator's ud, and how rt_get finds the context */
  lua_State *L;
  uv_loop_t loop;
  char home[PATH_MAX];   /* holds lua/, roles/, tools/ */
  char exe[PATH_MAX];    /* the executable, as main.c found it ("" unknown; another embedding) */
  int waker_ref;         /* Lua function(co, ...) that resumes a waiting coroutine */
  int reporter_ref;      /* Lua function(msg) for errors raised in loop callbacks */
  int loop_running;      /* uv_run is on the stack: it must not be entered again */
  int pending_waits;     /* operations a coroutine is suspended on (see await.h) */
  int left_running;      /* git remote operations (push, fetch_main, fetch_branch) whose
                          * coroutine was cancelled, until they end on the thread pool
                          * (see lgitrepo.c); nothing else is counted */
  /* Cancels every pending wait before the state closes. await.c sets it, so the runtime
   * needs nothing from await.c and the dependency points one way. */
  void (*cancel_waits)(struct orket_rt *rt);
  uv_work_t pool_start;  /* the no-op that makes libuv's thread pool at the start (rt_open) */
  /* Bit n - 3: descriptor n (3 to 66) was open when main began, so the caller's, not one
   * the loop or a library opened since (main.c sets it; 0 in any other embedding) */
  uint64_t inherited_fds;
} orket_rt;

/* Creates the runtime: allocator, loop, Lua state with the standard libraries, luv bound to
 * our loop, cjson and Orket's C modules preloaded, package.path pointing at `home`.
 * `home` is the directory that holds lua/ (main.c finds it with home_locate).
 * Returns NULL and writes a message into err on failure. */
orket_rt *rt_open(const char *home, char *err, size_t errlen);

/* Cancels pending waits, closes the Lua state and every loop handle, frees the context. */
void rt_close(orket_rt *rt);

/* From now on SIGINT and SIGTERM are discarded by the kernel as they are sent: a process
 * already stopping on one has no use for the next, and each delivered one costs a wakeup
 * and a callback. Call it from the first signal's callback; the loop's signal handles stay
 * started (stopping them would bring the default action back). */
void rt_ignore_stop_signals(void);

/* The runtime that owns L (any thread of its state). */
orket_rt *rt_get(lua_State *L);

/* Finds Orket's home: $ORKET_HOME, else the source tree above the executable's directory
 * (build/orket -> .), else PREFIX/share/orket for an installed bin/orket. A directory
 * qualifies when it holds lua/orket/init.lua. Returns 0 or -1 with a message in err. */
int rt_find_home(const char *exe_dir, char *out, size_t outlen, char *err, size_t errlen);

/* 1 when cand resolves to a directory holding lua/orket/init.lua, copied into out (its
 * real path); 0 otherwise. */
int rt_try_home(const char *cand, char *out, size_t outlen);

/* Protected call with a traceback: like lua_pcall(L, nargs, nres, msgh) with our handler.
 * On error leaves one string (message + traceback) on the stack. Non-string error values
 * are described (their __tostring is used when they have one). */
int rt_pcall(lua_State *L, int nargs, int nresults);

/* The message handler rt_pcall installs, for callers that need lua_pcallk themselves. */
int rt_traceback(lua_State *L);

/* Reports an error raised inside a loop callback through the Lua reporter (or stderr when
 * none is set). Pops the message. */
void rt_report(orket_rt *rt, lua_State *L);

/* Runs the loop until it has nothing to do (mode UV_RUN_DEFAULT), or once. Raises if the
 * loop is already running. */
int rt_run(orket_rt *rt, uv_run_mode mode);

/* Reads an operator's script or project file (roles, tools, policies, orket.lua, epics)
 * whole into *text (malloc'd, NUL-terminated, *len bytes; the caller frees it), following
 * links. Only a regular file of at most max bytes is read, and nothing blocks: the type is
 * checked before opening (a device is never opened), the file is opened O_NONBLOCK and
 * checked again on its descriptor (it may have been swapped), and at most max + 1 bytes
 * are read (it may have grown). Returns 0, or an errno value: the system's (ENOENT, EACCES,
 * ...), EISDIR for a directory, EINVAL for another kind of file (a FIFO, a device, a
 * socket), EFBIG over max; *kind then says what the file is ("a FIFO (named pipe)"). */
int rt_read_script(const char *path, size_t max, char **text, size_t *len, const char **kind);

#endif
