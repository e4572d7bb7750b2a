/* llineedit.c: Lua module `orket.c.lineedit`, what `orket repl` needs from the terminal:
 * line editing and history (libedit's readline interface), and Ctrl-C that interrupts a
 * running chunk instead of killing the process. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "editapi.h"
#include "modules.h"
#include "runtime.h"

#define LE_WATCH "orket.lineedit.interrupts"

/* ---- interrupts -----------------------------------------------------------------------
 * A signal handler can reach nothing but globals, so this and the completion hook's below
 * are the places with file-scope mutable state; it is only written by the object below
 * (one at a time). */
typedef struct le_watch {
  uv_async_t *wake;         /* wakes the loop when it is waiting */
  lua_State *target;        /* the coroutine running the chunk, or NULL */
  struct sigaction old;
  int installed;
} le_watch;

static struct {
  le_watch *volatile watch;
  volatile sig_atomic_t hits;
} le_sig;

/* libedit's table, the first upvalue of the functions that use it: loaded when one is
 * first called (a REPL on a terminal), never by the commands that only load this module. */
static const editapi *le_api(lua_State *L) {
  editapi *api = lua_touserdata(L, lua_upvalueindex(1));
  if (api->lib == NULL) {
    char err[512];
    if (editapi_open(api, err, sizeof err) != 0) luaL_error(L, "%s", err);
  }
  return api;
}

/* ---- completion ------------------------------------------------------------------------
 * libedit calls its completion hook with no pointer of ours, so the Lua state and the
 * completer reach it through here: set by le_readline for the length of one readline call,
 * cleared before it returns. */
static struct {
  lua_State *L;
  int fn; /* the completer's stack index in L, 0: none */
  const editapi *api;
} le_comp;

/* Characters that end the word Tab completes: everything that cannot be part of a path of
 * names such as `project:mes` ('.' and ':' are missing on purpose). */
static const char le_breaks[] = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^~#";

/* The matches array libedit wants: [0] the longest prefix all matches share (what replaces
 * the word), then each match, then NULL; every string and the array from malloc (libedit
 * frees them). NULL when there is no match or no memory. */
static char **le_matches(lua_State *L, int list) {
  size_t n = lua_rawlen(L, list), count = 0, common = 0;
  if (n == 0 || n > 10000) return NULL;
  char **m = calloc(n + 2, sizeof *m);
  if (m == NULL) return NULL;
  for (size_t i = 1; i <= n; i++) {
    if (lua_rawgeti(L, list, (lua_Integer)i) == LUA_TSTRING) {
      const char *s = lua_tostring(L, -1);
      char *copy = strdup(s);
      if (copy == NULL) break;
      if (count == 0) common = strlen(s);
      else
        for (size_t k = 0; k < common; k++)
          if (m[1][k] != s[k]) common = k;
      m[++count] = copy;
    }
    lua_pop(L, 1);
  }
  if (count > 0) m[0] = strndup(m[1], common);
  if (count == 0 || m[0] == NULL) {
    for (size_t i = 1; i <= count; i++) free(m[i]);
    free(m);
    return NULL;
  }
  return m;
}

/* libedit's hook: completer(word) -> {whole words}. An error in the completer completes
 * nothing (the line being typed must survive it); file names are never offered. */
static char **le_complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  lua_State *L = le_comp.L;
  if (le_comp.api) *le_comp.api->rl_attempted_completion_over = 1;
  if (L == NULL || le_comp.fn == 0 || !lua_checkstack(L, 3)) return NULL;
  int top = lua_gettop(L);
  lua_pushvalue(L, le_comp.fn);
  lua_pushstring(L, text);
  char **m = NULL;
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) m = le_matches(L, lua_gettop(L));
  lua_settop(L, top);
  return m;
}

/* readline(prompt[, completer]) -> line | nil at end of input | "", "interrupted" after
 * Ctrl-C. On a terminal this is libedit (editing, history keys, and Tab: completer(word)
 * returns the whole words that complete the word before the cursor); otherwise a plain
 * read, so the REPL can be driven through a pipe. */
static int le_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  if (isatty(STDIN_FILENO)) {
    sig_atomic_t before = le_sig.hits;
    const editapi *api = le_api(L);
    *api->rl_attempted_completion_function = le_complete;
    *api->rl_basic_word_break_characters = le_breaks;
    *api->rl_completion_append_character = '\0';
    le_comp.L = L;
    le_comp.fn = lua_isnoneornil(L, 2) ? 0 : 2;
    le_comp.api = api;
    char *line = api->readline(prompt);
    le_comp.L = NULL;
    le_comp.fn = 0;
    if (line == NULL && le_sig.hits != before) {
      /* libedit gives up its read when our SIGINT handler runs: that is Ctrl-C, not EOF */
      lua_pushliteral(L, "");
      lua_pushliteral(L, "interrupted");
      return 2;
    }
    if (line == NULL) return 0;
    lua_pushstring(L, line);
    free(line);
    return 1;
  }
  fputs(prompt, stdout);
  fflush(stdout);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int c, any = 0;
  while ((c = getchar()) != EOF && c != '\n') {
    luaL_addchar(&b, (char)c);
    any = 1;
  }
  if (c == EOF && !any) return 0;
  luaL_pushresult(&b);
  return 1;
}

static int le_add_history(lua_State *L) {
  const char *line = luaL_checkstring(L, 1);
  le_api(L)->add_history(line);
  return 0;
}

/* load_history(path), save_history(path, max) -> true | nil, msg, CODE */
static int le_load_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const editapi *api = le_api(L);
  api->using_history();
  if (api->read_history(path) != 0 && errno != ENOENT) {
    lua_pushnil(L);
    lua_pushfstring(L, "history: cannot read %s", path);
    lua_pushliteral(L, "EIO");
    return 3;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int le_save_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, 1000);
  const editapi *api = le_api(L);
  api->stifle_history((int)max);
  if (api->write_history(path) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "history: cannot write %s", path);
    lua_pushliteral(L, "EIO");
    return 3;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* term_size([fd=1]) -> columns, rows | nothing: the terminal's size, read with TIOCGWINSZ,
 * which (unlike opening a libuv tty handle) leaves the descriptor's flags alone. rows is
 * nil when the terminal does not say. */
static int le_term_size(lua_State *L) {
  int fd = (int)luaL_optinteger(L, 1, STDOUT_FILENO);
  struct winsize ws;
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return 0;
  lua_pushinteger(L, ws.ws_col);
  if (ws.ws_row > 0) lua_pushinteger(L, ws.ws_row);
  else lua_pushnil(L);
  return 2;
}

static int le_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

static void le_stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  lua_pushliteral(L, "interrupted"); /* the traceback says where */
  lua_error(L);
}

static void le_on_sigint(int sig) {
  (void)sig;
  le_sig.hits++;
  le_watch *w = le_sig.watch;
  if (w == NULL) return;
  /* The Lua manual allows lua_sethook from a signal handler: the hook then raises in the
   * target at its next instruction, call or return. */
  if (w->target) lua_sethook(w->target, le_stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  if (w->wake) uv_async_send(w->wake); /* async-signal-safe */
}

static void le_async_noop(uv_async_t *a) { (void)a; }
static void le_async_free(uv_handle_t *h) { free(h); }

static le_watch *le_check(lua_State *L) {
  le_watch *w = luaL_checkudata(L, 1, LE_WATCH);
  if (!w->installed) luaL_argerror(L, 1, "interrupt watch is closed");
  return w;
}

/* interrupts() -> watch: SIGINT now interrupts the watch's target coroutine. */
static int le_interrupts(lua_State *L) {
  le_watch *w = lua_newuserdatauv(L, sizeof *w, 1);
  memset(w, 0, sizeof *w);
  luaL_setmetatable(L, LE_WATCH);
  if (le_sig.watch != NULL) return luaL_error(L, "interrupts: already being watched");
  w->wake = malloc(sizeof *w->wake);
  if (w->wake == NULL) return luaL_error(L, "interrupts: out of memory");
  uv_async_init(&rt_get(L)->loop, w->wake, le_async_noop);
  uv_unref((uv_handle_t *)w->wake); /* never keeps the loop alive on its own */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = le_on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &w->old);
  w->installed = 1;
  le_sig.hits = 0;
  le_sig.watch = w;
  return 1;
}

/* watch:target(co|nil): the coroutine a Ctrl-C interrupts. The coroutine is kept alive.
 * The previous target loses a stop hook a Ctrl-C left on it: a coroutine suspended in a
 * wait is cancelled instead (the REPL closes it), and the hook would fire in the close
 * itself, on the call of the first __close, and raise there, so the request it holds would
 * be released only by the collector. */
static int le_target(lua_State *L) {
  le_watch *w = le_check(L);
  lua_State *co = lua_isnoneornil(L, 2) ? NULL : (luaL_checktype(L, 2, LUA_TTHREAD), lua_tothread(L, 2));
  if (w->target && w->target != co && lua_gethook(w->target) == le_stop_hook) lua_sethook(w->target, NULL, 0, 0);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 1);
  w->target = co;
  return 0;
}

/* watch:take() -> number of Ctrl-C since the last take */
static int le_take(lua_State *L) {
  le_check(L);
  lua_pushinteger(L, le_sig.hits);
  le_sig.hits = 0;
  return 1;
}

static int le_close(lua_State *L) {
  le_watch *w = luaL_checkudata(L, 1, LE_WATCH);
  if (!w->installed) return 0;
  w->installed = 0;
  sigaction(SIGINT, &w->old, NULL);
  le_sig.watch = NULL;
  w->target = NULL;
  uv_close((uv_handle_t *)w->wake, le_async_free);
  w->wake = NULL;
  return 0;
}

static int le_tostring(lua_State *L) {
  le_watch *w = luaL_checkudata(L, 1, LE_WATCH);
  lua_pushfstring(L, "interrupt watch (%s)", w->installed ? "open" : "closed");
  return 1;
}

static const luaL_Reg le_methods[] = {
    {"target", le_target},
    {"take", le_take},
    {"close", le_close},
    {NULL, NULL},
};

static const luaL_Reg le_meta[] = {
    {"__gc", le_close},
    {"__close", le_close},
    {"__tostring", le_tostring},
    {"__index", NULL},
    {NULL, NULL},
};

/* these share libedit's table as their upvalue */
static const luaL_Reg le_edit_funcs[] = {
    {"readline", le_readline},
    {"add_history", le_add_history},
    {"load_history", le_load_history},
    {"save_history", le_save_history},
    {NULL, NULL},
};

static const luaL_Reg le_funcs[] = {
    {"isatty", le_isatty},
    {"term_size", le_term_size},
    {"interrupts", le_interrupts},
    {NULL, NULL},
};

int luaopen_orket_lineedit(lua_State *L) {
  luaL_newmetatable(L, LE_WATCH);
  luaL_setfuncs(L, le_meta, 0);
  luaL_newlibtable(L, le_methods);
  luaL_setfuncs(L, le_methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, le_funcs);
  editapi *api = lua_newuserdatauv(L, sizeof *api, 0);
  memset(api, 0, sizeof *api);
  luaL_setfuncs(L, le_edit_funcs, 1);
  return 1;
}
