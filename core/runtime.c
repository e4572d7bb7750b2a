/* runtime.c: creates and tears down the host (Lua state + libuv loop + luv), locates
 * Orket's files, and provides the protected-call helper and error reporting.
 * Uses Lua 5.4, libuv, luv (bound to our loop) and lua-cjson. */
#define _GNU_SOURCE
#include "runtime.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>
/* luv.h declares a callback type without a prototype; keep our warnings for our code. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <luv/luv.h>
#pragma GCC diagnostic pop

#include "modules.h"

extern int luaopen_cjson(lua_State *L);
extern int luaopen_cjson_safe(lua_State *L);

orket_rt *rt_get(lua_State *L) {
  void *ud = NULL;
  lua_getallocf(L, &ud);
  return (orket_rt *)((char *)ud - offsetof(orket_rt, mem));
}

/* ---- reading script files ---------------------------------------------------------- */

static const char *rt_file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

/* 0 when st is a regular file of at most max bytes, else the errno rt_read_script gives. */
static int rt_script_ok(const struct stat *st, size_t max, const char **kind) {
  if (!S_ISREG(st->st_mode)) {
    *kind = rt_file_kind(st->st_mode);
    return S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
  }
  if ((unsigned long long)st->st_size > (unsigned long long)max) {
    *kind = "too large";
    return EFBIG;
  }
  return 0;
}

int rt_read_script(const char *path, size_t max, char **text, size_t *len, const char **kind) {
  *text = NULL;
  *len = 0;
  *kind = NULL;
  struct stat st;
  if (stat(path, &st) != 0) return errno;
  int rc = rt_script_ok(&st, max, kind);
  if (rc) return rc;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return errno;
  if (fstat(fd, &st) != 0) {
    rc = errno;
    close(fd);
    return rc;
  }
  rc = rt_script_ok(&st, max, kind);
  if (rc) {
    close(fd);
    return rc;
  }
  /* one byte more than allowed tells a file that grew past max since fstat */
  size_t cap = (size_t)st.st_size < max ? (size_t)st.st_size + 1 : max + 1;
  char *buf = malloc(cap + 1);
  if (!buf) {
    close(fd);
    return ENOMEM;
  }
  size_t got = 0;
  for (;;) {
    if (got == cap) {
      if (got > max) break;
      /* grew since fstat but still within max: make room up to max + 1 */
      size_t ncap = max + 1;
      char *nbuf = realloc(buf, ncap + 1);
      if (!nbuf) {
        free(buf);
        close(fd);
        return ENOMEM;
      }
      buf = nbuf;
      cap = ncap;
    }
    ssize_t n = read(fd, buf + got, cap - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      rc = errno;
      free(buf);
      close(fd);
      return rc;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (got > max) {
    free(buf);
    *kind = "too large";
    return EFBIG;
  }
  buf[got] = '\0';
  *text = buf;
  *len = got;
  return 0;
}

/* ---- locating home ------------------------------------------------------------------ */

static int rt_is_home(const char *dir) {
  char probe[PATH_MAX + 32];
  if (snprintf(probe, sizeof probe, "%s/lua/orket/init.lua", dir) >= (int)sizeof probe) return 0;
  return access(probe, R_OK) == 0;
}

int rt_try_home(const char *cand, char *out, size_t outlen) {
  char real[PATH_MAX];
  if (realpath(cand, real) == NULL || !rt_is_home(real)) return 0;
  if (strlen(real) >= outlen) return 0;
  strcpy(out, real);
  return 1;
}

int rt_find_home(const char *exe_dir, char *out, size_t outlen, char *err, size_t errlen) {
  const char *env = getenv("ORKET_HOME");
  char cand[PATH_MAX + 32];
  if (env && *env) {
    if (rt_try_home(env, out, outlen)) return 0;
    snprintf(err, errlen, "ORKET_HOME=%s does not hold lua/orket/init.lua", env);
    return -1;
  }
  if (exe_dir) {
    /* build/orket in a source tree, then bin/orket under an install prefix */
    snprintf(cand, sizeof cand, "%s/..", exe_dir);
    if (rt_try_home(cand, out, outlen)) return 0;
    snprintf(cand, sizeof cand, "%s/../share/orket", exe_dir);
    if (rt_try_home(cand, out, outlen)) return 0;
  }
  snprintf(err, errlen,
           "cannot find Orket's Lua library (lua/orket/init.lua) beside %s or in "
           "%s/../share/orket; set ORKET_HOME",
           exe_dir ? exe_dir : "(unknown)", exe_dir ? exe_dir : "(unknown)");
  return -1;
}

/* ---- errors --------------------------------------------------------------------------- */

/* Any error value as text, pushed on L: strings and numbers as they are; else what the
 * value's __tostring gives, called protected so that a broken one cannot turn the error
 * into an error in the handler; else the value's type. */
static const char *rt_error_text(lua_State *L, int idx) {
  int type = lua_type(L, idx);
  if (type == LUA_TSTRING || type == LUA_TNUMBER) {
    lua_pushvalue(L, idx);
    return lua_tostring(L, -1);
  }
  if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) return lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  return lua_pushfstring(L, "(a %s was raised, not a message)", luaL_typename(L, idx));
}

int rt_traceback(lua_State *L) {
  const char *text = rt_error_text(L, 1);
  /* Re-raised from an inner protected call, a message already says where it happened;
   * a second traceback would only bury that. */
  if (strstr(text, "\nstack traceback:") != NULL) return 1;
  luaL_traceback(L, L, text, 1);
  return 1;
}

int rt_pcall(lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs; /* the function's index */
  lua_pushcfunction(L, rt_traceback);
  lua_insert(L, base);
  int status = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return status;
}

void rt_report(orket_rt *rt, lua_State *L) {
  if (rt->reporter_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->reporter_ref);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 0, 0) == LUA_OK) return;
  }
  /* No reporter, or it failed: the message must still reach a person. */
  fprintf(stderr, "orket: %s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error)");
  lua_pop(L, 1);
}

/* luv calls this for every Lua callback; luv's default prints and exits on error, which a
 * host must never do. Errors go to our reporter and the loop carries on. */
static int rt_luv_pcall(lua_State *L, int nargs, int nresults, int flags) {
  (void)flags;
  int status = rt_pcall(L, nargs, nresults < 0 ? LUA_MULTRET : nresults);
  if (status != LUA_OK) {
    rt_report(rt_get(L), L);
    return -status;
  }
  return nresults < 0 ? 0 : nresults;
}

int rt_run(orket_rt *rt, uv_run_mode mode) {
  if (rt->loop_running) return -1;
  rt->loop_running = 1;
  int r = uv_run(&rt->loop, mode);
  rt->loop_running = 0;
  return r;
}

/* ---- open / close --------------------------------------------------------------------- */

static int rt_panic(lua_State *L) {
  fprintf(stderr, "orket: unprotected Lua error: %s\n",
          lua_tostring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
  return 0; /* Lua aborts after this */
}

/* Everything that needs the Lua API, run protected so an allocation failure cannot
 * escape. Stack: [1] = home (string). */
/* The search path in field `field` of the table on top of the stack, with only its absolute
 * entries: Lua's defaults end in ./?.lua, ./?/init.lua and ./?.so, so a module file in the
 * current directory (a workspace an agent wrote, a cloned project) would be run as Orket's own
 * code, outside every confinement, by any command started there. */
static void rt_absolute_only(lua_State *L, const char *field) {
  lua_getfield(L, -1, field);
  const char *s = lua_tostring(L, -1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int first = 1;
  while (s && *s) {
    const char *end = strchr(s, ';');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    if (n > 0 && s[0] == '/') {
      if (!first) luaL_addchar(&b, ';');
      luaL_addlstring(&b, s, n);
      first = 0;
    }
    s += n + (end ? 1 : 0);
  }
  luaL_pushresult(&b);
  lua_setfield(L, -3, field);
  lua_pop(L, 1);
}

static int rt_setup(lua_State *L) {
  const char *home = lua_tostring(L, 1);
  luaL_openlibs(L); /* the host is trusted; operator scripts get scriptenv.lua's allow-list */

  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  luv_set_loop(L, &rt_get(L)->loop);
  luv_set_callback(L, rt_luv_pcall);
  luaopen_luv(L);
  lua_setfield(L, -2, "luv");
  lua_pop(L, 1);

  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_cjson);
  lua_setfield(L, -2, "cjson");
  lua_pushcfunction(L, luaopen_cjson_safe); /* the linked copy, not one found on a path */
  lua_setfield(L, -2, "cjson.safe");
  for (const orket_module *m = orket_modules; m->name; m++) {
    lua_pushcfunction(L, m->open);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);

  /* Orket's own library first, then its home's own modules (a source build's home is its
   * checkout: the tests' and benchmarks' helpers, tests.helpers, bench.stats); the system
   * paths stay so trusted tools (busted) load, and none relative to the current directory. */
  lua_getglobal(L, "package");
  rt_absolute_only(L, "path");
  rt_absolute_only(L, "cpath");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua;", home, home, home);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, home);
  lua_setfield(L, -2, "orket_home");
  lua_pop(L, 1);
  return 0;
}

static void rt_pool_noop(uv_work_t *w) { (void)w; }
static void rt_pool_started(uv_work_t *w, int status) {
  (void)w;
  (void)status;
}

/* The pool libuv makes at the first queued work: UV_THREADPOOL_SIZE threads (4 unset, 1 for
 * 0, at most 1024), read as libuv reads it (atoi into an unsigned). */
static unsigned rt_pool_threads(void) {
  const char *v = getenv("UV_THREADPOOL_SIZE");
  unsigned n = v ? (unsigned)atoi(v) : 4;
  if (n == 0) n = 1;
  return n > 1024 ? 1024 : n;
}

/* Each pool thread's stack as libuv sizes it: 8 MiB from 1.45; before, the soft stack limit
 * (ulimit -s) when it is finite and at least 8 KiB and PTHREAD_STACK_MIN, else glibc's 2 MiB. */
static int rt_pool_stack_is_limit(void) { return uv_version() < ((1u << 16) | (45u << 8)); }

static size_t rt_pool_stack(void) {
  if (!rt_pool_stack_is_limit()) return (size_t)8 << 20;
  struct rlimit lim;
  if (getrlimit(RLIMIT_STACK, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    rlim_t s = lim.rlim_cur - lim.rlim_cur % (rlim_t)getpagesize();
    if (s >= 8192 && s >= (rlim_t)PTHREAD_STACK_MIN) return (size_t)s;
  }
  return (size_t)2 << 20;
}

/* Whether the address space (ulimit -v) holds libuv's n stacks of this size, each with its
 * guard page: one mapping made and given back. PROT_NONE, which no overcommit accounting
 * counts: a writable one of all n stacks at once was refused under the default heuristic
 * once it passed RAM and swap, where libuv's stacks, mapped one at a time, are not (a big
 * UV_THREADPOOL_SIZE on a small host). A strict overcommit that refuses a stack is libuv's
 * abort, said by rt_pool_abort. Making the threads themselves to see cost about a
 * millisecond a command. */
static int rt_stacks_fit(unsigned n, size_t stack) {
  size_t each = stack + (size_t)getpagesize();
  if (n == 0 || each > SIZE_MAX / n) return 0;
  void *m = mmap(NULL, each * n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return 0;
  munmap(m, each * n);
  return 1;
}

/* s to standard error, in a signal handler (no stdio) */
static void rt_say(const char *s) {
  size_t left = strlen(s);
  while (left > 0) {
    ssize_t w = write(STDERR_FILENO, s, left);
    if (w <= 0) return;
    s += w;
    left -= (size_t)w;
  }
}

/* SIGABRT while libuv makes its pool: its stacks fit (rt_stacks_fit), so it is a thread the
 * kernel would not make, for the user's count of tasks, the control group's or the system's.
 * Said, and exit 1, where libuv's abort() ended the process with 134 and no word. Only what
 * a signal handler may call: the number is written by hand. */
static void rt_pool_abort(int sig) {
  (void)sig;
  struct rlimit lim;
  rt_say("orket: cannot start libuv's thread pool: a thread of it could not be made (Resource temporarily "
         "unavailable: too many tasks, or, under a strict overcommit, no memory for its stack); ");
  if (getrlimit(RLIMIT_NPROC, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && geteuid() != 0) {
    char num[24], *p = num + sizeof num;
    unsigned long long v = (unsigned long long)lim.rlim_cur;
    *--p = '\0';
    do *--p = (char)('0' + v % 10); while ((v /= 10) > 0 && p > num);
    rt_say("the user may have at most ");
    rt_say(p);
    rt_say(" processes and threads (ulimit -u, systemd LimitNPROC=), or its control group or the system no "
           "more (systemd TasksMax=, pids.max, kernel.threads-max)");
  } else {
    rt_say("the service's control group or the system allows no more threads (systemd TasksMax=, pids.max, "
           "kernel.threads-max)");
  }
  rt_say(": raise it, or set UV_THREADPOOL_SIZE=1 for a pool of one thread\n");
  _exit(1);
}

/* For a pool whose stacks do not fit: the limit, and the way round it, after ": strerror". */
static void rt_pool_why(char *out, size_t outlen) {
  struct rlimit lim;
  if (getrlimit(RLIMIT_AS, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    snprintf(out, outlen, "; the address space is limited to %llu KiB (ulimit -v, systemd LimitAS=): "
             "raise it%s", (unsigned long long)(lim.rlim_cur / 1024),
             rt_pool_stack_is_limit() ? ", lower the stack limit (ulimit -s 1024)" : "");
  else
    snprintf(out, outlen, "; the memory for their stacks is not there (the system's overcommit limit)");
}

/* libuv makes its thread pool's threads at the process's first queued work, and each thread
 * inherits the signal mask of the one that queued it. Made here, with SIGINT, SIGTERM and
 * SIGHUP blocked, no pool thread ever takes them: a process-directed one goes to the loop's
 * thread, whose handler libuv installed, or stays pending while rt_close holds it blocked
 * (a pool thread taking it in rt_close's window, its default action back, ended a cleanly
 * stopping server with 143). The pool is the process's: later runtimes find it made.
 * libuv calls abort() when it cannot make a pool thread (a low ulimit -v or -u), which ended
 * every command with 134 and no word: the stacks are looked for first, and an abort while
 * the pool is made is said (rt_pool_abort; docs/runtime.md, "Host limits"). Not a smaller
 * pool instead: the pool runs file and git work, and one thread held by a slow push would
 * stall the rest, without a word of why. */
static int rt_start_pool(orket_rt *rt, char *err, size_t errlen) {
  unsigned n = rt_pool_threads();
  size_t stack = rt_pool_stack();
  if (!rt_stacks_fit(n, stack)) {
    char why[200];
    rt_pool_why(why, sizeof why);
    snprintf(err, errlen, "cannot start libuv's thread pool (%u threads of %zu KiB of stack): %s%s, "
             "or set UV_THREADPOOL_SIZE=1 for a pool of one thread", n, stack / 1024, strerror(ENOMEM), why);
    return -1;
  }
  sigset_t stop, old;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, &old);
  struct sigaction said = {.sa_handler = rt_pool_abort}, was;
  sigemptyset(&said.sa_mask);
  sigaction(SIGABRT, &said, &was);
  (void)uv_queue_work(&rt->loop, &rt->pool_start, rt_pool_noop, rt_pool_started);
  sigaction(SIGABRT, &was, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return 0;
}

orket_rt *rt_open(const char *home, char *err, size_t errlen) {
  orket_rt *rt = calloc(1, sizeof *rt);
  if (rt == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  memcap_init(&rt->mem);
  rt->waker_ref = LUA_NOREF;
  rt->reporter_ref = LUA_NOREF;
  if (home == NULL || !rt_try_home(home, rt->home, sizeof rt->home)) {
    snprintf(err, errlen, "%s does not hold lua/orket/init.lua", home ? home : "(no home given)");
    free(rt);
    return NULL;
  }
  int r = uv_loop_init(&rt->loop);
  if (r != 0) {
    snprintf(err, errlen, "cannot start the event loop: %s", uv_strerror(r));
    free(rt);
    return NULL;
  }
  rt->L = lua_newstate(memcap_alloc, &rt->mem);
  if (rt->L == NULL) {
    snprintf(err, errlen, "cannot create the Lua state: out of memory");
    uv_loop_close(&rt->loop);
    free(rt);
    return NULL;
  }
  /* The collector starts a cycle when the heap reaches 160% of what the last one left.
   * Marking costs what is live, so a lower pause pays it more often: at 120% (the setting
   * before) a W2 run spent 6.5% of its CPU marking and sweeping, at 160% 2.8% and at Lua's
   * default 200% 1.9% (perf, 400 cards), for 1.1 and 2.2 MB more at its peak, and 5 and 9
   * MB more at the transport benchmark's peak (VmHWM; docs/engine.md, *Peak RSS*). At 100%
   * cycles run back to back and the transport's CPU per request grows twentyfold. */
  lua_gc(rt->L, LUA_GCINC, 160, 0, 0);
  /* Lua leaves the main thread's extra space uninitialised and copies it into every new
   * thread; scriptenv.c keeps a thread's budget there, NULL meaning none. */
  memset(lua_getextraspace(rt->L), 0, LUA_EXTRASPACE);
  lua_atpanic(rt->L, rt_panic);
  lua_pushcfunction(rt->L, rt_setup);
  lua_pushstring(rt->L, rt->home);
  if (rt_pcall(rt->L, 1, 0) != LUA_OK) {
    snprintf(err, errlen, "cannot start the runtime: %s", lua_tostring(rt->L, -1));
    rt_close(rt);
    return NULL;
  }
  if (rt_start_pool(rt, err, errlen) != 0) {
    rt_close(rt);
    return NULL;
  }
  return rt;
}

static void rt_close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void rt_ignore_stop_signals(void) {
  /* A storm of SIGTERMs against a stopping server (a supervisor's retry loop) could send
   * them faster than the loop ran one callback each: libuv reads its signal pipe again
   * while it comes back full, so the loop never left that read and the stop never ended.
   * Ignored, a signal is dropped when sent and never reaches the pipe. SIGHUP stops a
   * server too (lua/orket/stopsignals.lua): a closed terminal can send it twice. */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
}

void rt_close(orket_rt *rt) {
  if (rt == NULL) return;
  if (rt->cancel_waits) rt->cancel_waits(rt); /* set by await.c once anything waited */
  /* luv handles still open are closed while Lua is alive (lua/orket/handles.lua): luv's
   * close callback unrefs them in Lua, which after lua_close would touch freed memory. */
  /* The process is ending, its status decided. Closing the signal handles below gives
   * SIGINT, SIGTERM and SIGHUP their default action back: one arriving then (a second
   * SIGTERM just after the one that stopped orket serve, or a closed terminal's second
   * SIGHUP) would turn a clean exit into 130, 143 or 129. They are blocked first, so that
   * one stays pending through the close, then ignored, which discards it. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  lua_getfield(rt->L, LUA_REGISTRYINDEX, "orket.close_handles");
  if (lua_type(rt->L, -1) != LUA_TFUNCTION || lua_pcall(rt->L, 0, 0, 0) != LUA_OK) lua_pop(rt->L, 1);
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  /* Let close callbacks already queued (they may call into Lua) run while Lua is alive. */
  uv_run(&rt->loop, UV_RUN_NOWAIT);
  lua_close(rt->L); /* luv's __gc closes its handles; their callbacks do not touch Lua */
  uv_walk(&rt->loop, rt_close_walk, NULL);
  while (uv_run(&rt->loop, UV_RUN_NOWAIT) != 0) {
  }
  uv_loop_close(&rt->loop);
  free(rt);
}
