/* main.c: the `orket` executable. Opens the runtime and hands the command line to the Lua
 * CLI (lua/orket/cli.lua), which decides what to print and the exit status. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "confine.h"
#include "home.h"
#include "lbytecode.h"
#include "runtime.h"
#include "store.h"

/* The install prefix `make install` lays out (PREFIX/bin/orket, PREFIX/share/orket): where
 * the library is looked for last, when neither /proc nor argv[0] shows the executable. */
#ifndef ORKET_PREFIX
#define ORKET_PREFIX "/usr/local"
#endif

/* The precompiled library (core/bytecode_data.S, made by the build from lua/). */
extern const unsigned char orket_bytecode[], orket_bytecode_end[];

/* Stack: [1] home. Puts the precompiled library's searcher in place (protected: it
 * allocates). */
static int main_bytecode(lua_State *L) {
  lbytecode_install(L, orket_bytecode, (size_t)(orket_bytecode_end - orket_bytecode), lua_tostring(L, 1));
  return 0;
}

/* Stack: [1] argv table. Returns the exit status from orket.cli.main(argv). */
static int main_cli(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "orket.cli");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

/* Standard input, output or error closed by the caller (`orket board >&-`): /dev/null in
 * its place. Else the next file opened takes that number, output meant for the terminal goes
 * into it, and libuv aborts closing it (it never closes 0 to 2). Standard output's is opened
 * read-only, so that a write to it fails (EBADF) as on the closed fd: orket.cli's check of
 * the output then says so, exit 1, as `ls >&-` fails (writable, every command "succeeded"
 * with its output lost, a key shown once among it). Standard error's takes the writes: its
 * messages go nowhere and the status tells, as before, and the tools orket starts with it
 * are not failed for a stderr nobody reads. */
static int main_std_fds(void) {
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int nfd = open("/dev/null", fd == 2 ? O_WRONLY : O_RDONLY);
    if (nfd == -1) {
      /* going on would bring back what this prevents: said where stderr is open (when it is
       * the closed one the message goes nowhere, and the status alone tells) */
      fprintf(stderr, "orket: standard %s is closed and /dev/null cannot be opened in its place: %s\n",
              fd == 0 ? "input" : fd == 1 ? "output" : "error", strerror(errno));
      return -1;
    }
    if (nfd != fd) close(nfd); /* not fd: the lower ones are open by now */
  }
  return 0;
}

/* Below this many descriptors (ulimit -n) not even the event loop and the store open: libuv
 * aborted (SIGABRT, no word) at 4 or 5, and at 6 to 9 the loop said only "too many open
 * files". Said once, with the limit to raise, before anything opens one. */
enum { MAIN_MIN_FDS = 16 };

static int main_enough_fds(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= MAIN_MIN_FDS) return 0;
  fprintf(stderr, "orket: this process may open at most %llu files (ulimit -n %llu), and orket needs at least %d: "
          "raise its limit, ulimit -n or systemd LimitNOFILE=\n", (unsigned long long)rl.rlim_cur,
          (unsigned long long)rl.rlim_cur, MAIN_MIN_FDS);
  return -1;
}

/* The descriptors from 3 to 66 the caller left open, before anything here opens one: an
 * option naming a descriptor (worker --stop-budget-fd) must name one of these, never the
 * loop's own pipes, which take the first free numbers once it starts. */
static uint64_t main_inherited_fds(void) {
  uint64_t mask = 0;
  for (int fd = 3; fd < 67; fd++)
    if (fcntl(fd, F_GETFD) != -1) mask |= (uint64_t)1 << (fd - 3);
  return mask;
}

static void main_on_xfsz(int sig) { (void)sig; }

/* A write past the file-size limit (ulimit -f, systemd LimitFSIZE=) raises SIGXFSZ, whose
 * default action killed orket run, serve or backup with 153 and no word. Caught, the write
 * fails with EFBIG instead, which the store's and the workspace's error paths say as they
 * say a full disk (the run stops, resumable). A handler rather than SIG_IGN: exec resets a
 * handler, so the tools and sandboxes orket starts (through any spawn, a shell's too) get
 * the default action, as they would have; an ignored one would stay ignored in them. A
 * disposition orket was started with (ignored) is left alone, and so passed on as given. */
static void main_catch_xfsz(void) {
  struct sigaction old;
  if (sigaction(SIGXFSZ, NULL, &old) != 0 || old.sa_handler != SIG_DFL) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = main_on_xfsz;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  (void)sigaction(SIGXFSZ, &sa, NULL);
}

int main(int argc, char **argv) {
  /* The process runner's confinement step (core/confine.c): before any Lua, never returns. */
  if (argc > 1 && strcmp(argv[1], CONFINE_ARG) == 0) confine_main(argc, argv);
  main_catch_xfsz();
  if (main_std_fds() != 0 || main_enough_fds() != 0) return 1;
  uint64_t inherited = main_inherited_fds();
  store_process_init();
  char err[PATH_MAX + 512], home[PATH_MAX], exe[PATH_MAX];
  if (home_locate("/proc/self/exe", argc > 0 ? argv[0] : NULL, getenv("PATH"), ORKET_PREFIX, home,
                  sizeof home, exe, sizeof exe, err, sizeof err) != 0) {
    fprintf(stderr, "orket: %s\n", err);
    return 1;
  }
  orket_rt *rt = rt_open(home, err, sizeof err);
  if (rt == NULL) {
    fprintf(stderr, "orket: %s\n", err);
    return 1;
  }
  rt->inherited_fds = inherited;
  snprintf(rt->exe, sizeof rt->exe, "%s", exe);
  lua_State *L = rt->L;
  /* ORKET_NO_BYTECODE: load every module from its source, as before the library was
   * precompiled (to compare the two, or to rule the bundle out) */
  const char *nobc = getenv("ORKET_NO_BYTECODE");
  if (nobc == NULL || *nobc == '\0') {
    lua_pushcfunction(L, main_bytecode);
    lua_pushstring(L, rt->home);
    if (rt_pcall(L, 1, 0) != LUA_OK) lua_pop(L, 1); /* without it, modules load from source */
  }
  int status = 1;
  lua_pushcfunction(L, main_cli);
  lua_createtable(L, argc, 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  if (rt_pcall(L, 1, 1) != LUA_OK) {
    fprintf(stderr, "orket: internal error: %s\n", lua_tostring(L, -1));
    status = 70; /* EX_SOFTWARE: a bug in Orket, not in what the user asked */
  } else {
    status = (int)luaL_optinteger(L, -1, 0);
  }
  lua_settop(L, 0);
  rt_close(rt);
  return status;
}
