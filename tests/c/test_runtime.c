/* test_runtime.c: opening and closing the host, the protected-call helper, locating home,
 * the memory ceiling holding a bomb inside one call, and reading script files. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <errno.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "check.h"
#include "runtime.h"
#include "tests.h"

static orket_rt *open_rt(check_ctx *t) {
  char err[512];
  char cwd[4096];
  CHECK(t, getcwd(cwd, sizeof cwd) != NULL); /* tests run from the source tree */
  orket_rt *rt = rt_open(cwd, err, sizeof err);
  if (rt == NULL) fprintf(stderr, "    rt_open: %s\n", err);
  return rt;
}

TEST(test_runtime_open_close) {
  /* several runtimes at once: nothing is shared between them */
  orket_rt *a = open_rt(t), *b = open_rt(t);
  CHECK(t, a && b && a != b);
  if (!a || !b) return;
  CHECK(t, rt_get(a->L) == a && rt_get(b->L) == b);
  CHECK(t, luaL_dostring(a->L, "x = require('orket').version") == LUA_OK);
  CHECK(t, luaL_dostring(b->L, "return x") == LUA_OK && lua_isnil(b->L, -1));
  CHECK(t, luaL_dostring(a->L, "return require('luv').loop_alive ~= nil") == LUA_OK);
  rt_close(a);
  rt_close(b);
}

TEST(test_runtime_pcall_traceback) {
  orket_rt *rt = open_rt(t);
  if (!rt) return;
  lua_State *L = rt->L;
  CHECK(t, luaL_loadstring(L, "local function inner() error('boom') end inner()") == LUA_OK);
  CHECK(t, rt_pcall(L, 0, 0) == LUA_ERRRUN);
  const char *msg = lua_tostring(L, -1);
  CHECK(t, msg && strstr(msg, "boom") && strstr(msg, "stack traceback:") && strstr(msg, "inner"));
  CHECK(t, lua_gettop(L) == 1);
  rt_close(rt);
}

TEST(test_runtime_pcall_nonstring) {
  orket_rt *rt = open_rt(t);
  if (!rt) return;
  lua_State *L = rt->L;
  luaL_loadstring(L, "error({})");
  CHECK(t, rt_pcall(L, 0, 0) == LUA_ERRRUN);
  CHECK(t, strstr(lua_tostring(L, -1), "(a table was raised, not a message)") != NULL);
  lua_settop(L, 0);
  luaL_loadstring(L, "error(setmetatable({}, {__tostring = function() return 'custom' end}))");
  CHECK(t, rt_pcall(L, 0, 0) == LUA_ERRRUN);
  CHECK(t, strncmp(lua_tostring(L, -1), "custom", 6) == 0);
  rt_close(rt);
}

/* The handler copes with hostile error values: a __tostring that raises or returns a
 * non-string is not trusted, and a message that already carries a traceback keeps its own. */
TEST(test_runtime_pcall_hostile_errors) {
  orket_rt *rt = open_rt(t);
  if (!rt) return;
  lua_State *L = rt->L;
  luaL_loadstring(L, "error(setmetatable({}, {__tostring = function() error('no') end}))");
  CHECK(t, rt_pcall(L, 0, 0) == LUA_ERRRUN);
  CHECK(t, strncmp(lua_tostring(L, -1), "(a table was raised, not a message)", 35) == 0);
  lua_settop(L, 0);
  luaL_loadstring(L, "error(setmetatable({}, {__tostring = function() return {} end}))");
  CHECK(t, rt_pcall(L, 0, 0) == LUA_ERRRUN);
  CHECK(t, strncmp(lua_tostring(L, -1), "(a table was raised, not a message)", 35) == 0);
  lua_settop(L, 0);
  luaL_loadstring(L, "error(42)");
  CHECK(t, rt_pcall(L, 0, 0) == LUA_ERRRUN);
  CHECK(t, strncmp(lua_tostring(L, -1), "42\nstack traceback:", 19) == 0);
  lua_settop(L, 0);
  /* an error already described by an inner handler is passed on as it is */
  lua_pushcfunction(L, rt_traceback);
  lua_pushliteral(L, "inner: boom\nstack traceback:\n\t[C]: in ?");
  lua_call(L, 1, 1);
  CHECK_STR(t, lua_tostring(L, -1), "inner: boom\nstack traceback:\n\t[C]: in ?");
  lua_settop(L, 0);
  rt_close(rt);
}

TEST(test_runtime_find_home) {
  char out[4096], err[512], cwd[4096], bin[4400], build[256];
  CHECK(t, getcwd(cwd, sizeof cwd) != NULL);
  unsetenv("ORKET_HOME");
  check_build_dir(build, sizeof build);
  snprintf(bin, sizeof bin, "%s/%s", cwd, build); /* build/orket in the source tree */
  CHECK(t, rt_find_home(bin, out, sizeof out, err, sizeof err) == 0);
  CHECK_STR(t, out, cwd);
  CHECK(t, rt_find_home("/nonexistent/bin", out, sizeof out, err, sizeof err) == -1);
  CHECK(t, strstr(err, "ORKET_HOME") != NULL);
  setenv("ORKET_HOME", "/nonexistent", 1);
  CHECK(t, rt_find_home(bin, out, sizeof out, err, sizeof err) == -1);
  CHECK(t, strstr(err, "ORKET_HOME=/nonexistent") != NULL);
  unsetenv("ORKET_HOME");
}

TEST(test_runtime_memory_bomb_contained) {
  orket_rt *rt = open_rt(t);
  if (!rt) return;
  lua_State *L = rt->L;
  const char *src =
      "local sb = require 'orket.c.scriptenv'\n"
      "local ok, msg, code = sb.pcall(0, 0, 8 << 20, function() return string.rep('x', 1 << 30) end)\n"
      "assert(not ok and code == 'ENOMEM', tostring(msg) .. ' ' .. tostring(code))\n"
      "return #string.rep('y', 16 << 20)"; /* healthy again afterwards */
  CHECK(t, luaL_loadstring(L, src) == LUA_OK);
  int st = rt_pcall(L, 0, 1);
  if (st != LUA_OK) fprintf(stderr, "    %s\n", lua_tostring(L, -1));
  CHECK(t, st == LUA_OK && lua_tointeger(L, -1) == (16 << 20));
  CHECK(t, rt->mem.limit == SIZE_MAX);
  rt_close(rt);
}

/* rt_read_script reads regular files only, never blocking: a FIFO, a device, a directory
 * and a file over the cap are refused with their kind, before any read. */
TEST(test_runtime_read_script) {
  char dir[] = "/tmp/orket-ctest.XXXXXX";
  CHECK(t, mkdtemp(dir) != NULL);
  char path[128], link[128];
  char *text = NULL;
  size_t len = 0;
  const char *kind = NULL;

  snprintf(path, sizeof path, "%s/a.lua", dir);
  FILE *f = fopen(path, "wb");
  CHECK(t, f != NULL);
  if (!f) return;
  fputs("return 1\n", f);
  fclose(f);
  CHECK(t, rt_read_script(path, 100, &text, &len, &kind) == 0);
  CHECK(t, text != NULL && len == 9 && strcmp(text, "return 1\n") == 0);
  free(text);
  CHECK(t, rt_read_script(path, 8, &text, &len, &kind) == EFBIG && text == NULL);
  CHECK_STR(t, kind, "too large");
  CHECK(t, rt_read_script(path, 9, &text, &len, &kind) == 0 && len == 9);
  free(text);

  snprintf(link, sizeof link, "%s/fifo.lua", dir);
  CHECK(t, mkfifo(link, 0600) == 0);
  CHECK(t, rt_read_script(link, 100, &text, &len, &kind) == EINVAL && text == NULL);
  CHECK_STR(t, kind, "a FIFO (named pipe)");
  unlink(link);

  snprintf(link, sizeof link, "%s/zero.lua", dir);
  CHECK(t, symlink("/dev/zero", link) == 0);
  CHECK(t, rt_read_script(link, 100, &text, &len, &kind) == EINVAL);
  CHECK_STR(t, kind, "a character device");
  unlink(link);

  CHECK(t, rt_read_script(dir, 100, &text, &len, &kind) == EISDIR);
  CHECK_STR(t, kind, "a directory");
  snprintf(link, sizeof link, "%s/none.lua", dir);
  CHECK(t, rt_read_script(link, 100, &text, &len, &kind) == ENOENT && kind == NULL);

  unlink(path);
  rmdir(dir);
}
