/* lbytecode.c: the searcher that loads Orket's modules from the precompiled library linked
 * into the binary (bytecode.h), put before Lua's file searcher. Not a module of its own:
 * main.c installs it once the runtime is open. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "bytecode.h"
#include "lbytecode.h"

#define BC_SOURCE_MAX (16u << 20) /* a library file larger than this is left to Lua */

typedef struct bc_state {
  const unsigned char *bundle;
  size_t len;
  char home[];
} bc_state;

/* lua_load's reader over the code with its chunk name replaced: three pieces in turn */
typedef struct bc_pieces {
  const char *p[3];
  size_t n[3];
  int i;
} bc_pieces;

static const char *bc_read(lua_State *L, void *ud, size_t *size) {
  (void)L;
  bc_pieces *r = ud;
  while (r->i < 3 && r->n[r->i] == 0) r->i++;
  if (r->i == 3) {
    *size = 0;
    return NULL;
  }
  *size = r->n[r->i];
  return r->p[r->i++];
}

/* the whole file at path, in a userdata pushed on the stack | NULL (nothing pushed) */
static unsigned char *bc_slurp(lua_State *L, const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  unsigned char *p = NULL;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= BC_SOURCE_MAX) {
    size_t want = (size_t)st.st_size, got = 0;
    p = lua_newuserdatauv(L, want ? want : 1, 0);
    while (got < want) {
      ssize_t n = read(fd, p + got, want - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += (size_t)n;
    }
    if (got != want) { /* it changed under us: leave it to the file searcher */
      lua_pop(L, 1);
      p = NULL;
    }
    *len = got;
  }
  close(fd);
  return p;
}

/* searcher(name) -> loader, path | message: as Lua's searchers answer */
static int bc_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const bc_state *s = lua_touserdata(L, lua_upvalueindex(1));
  bytecode_entry e;
  if (bytecode_find(s->bundle, s->len, name, &e) != 1) {
    lua_pushfstring(L, "no module '%s' in Orket's precompiled library", name);
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, s->home);
  luaL_addchar(&b, '/');
  luaL_addlstring(&b, e.path, e.path_len);
  luaL_pushresult(&b);
  const char *path = lua_tostring(L, -1);
  size_t len = 0;
  unsigned char *source = bc_slurp(L, path, &len);
  if (source == NULL || !bytecode_matches(&e, source, len)) {
    lua_pushfstring(L, "%s is not the file Orket's precompiled '%s' was made from", path, name);
    return 1;
  }
  lua_pop(L, 1); /* the source: checked, not needed */
  lua_pushfstring(L, "@%s", path);
  size_t chunk_len;
  const char *chunkname = lua_tolstring(L, -1, &chunk_len);
  unsigned char *enc = lua_newuserdatauv(L, chunk_len + 16, 0);
  size_t enc_len = bytecode_encode_name(chunkname, chunk_len, enc, chunk_len + 16);
  bc_pieces r = {{(const char *)e.code, (const char *)enc, (const char *)e.code + e.chunkname_end},
                 {e.chunkname_at, enc_len, e.code_len - e.chunkname_end},
                 0};
  /* a load that fails (a liblua whose format differs from the one the build used) leaves
   * the module to the file searcher */
  if (enc_len == 0 || lua_load(L, bc_read, &r, chunkname, "b") != LUA_OK) {
    lua_pushfstring(L, "Orket's precompiled '%s' does not load here", name);
    return 1;
  }
  lua_pushvalue(L, -4); /* the path: the loader's second argument, as from a file */
  return 2;
}

int lbytecode_install(lua_State *L, const unsigned char *bundle, size_t len, const char *home) {
  bytecode_entry e;
  if (bytecode_find(bundle, len, "orket", &e) < 0) return -1; /* malformed: not used */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  if (lua_type(L, -1) != LUA_TTABLE) {
    lua_pop(L, 2);
    return -1;
  }
  size_t hl = strlen(home);
  bc_state *s = lua_newuserdatauv(L, sizeof *s + hl + 1, 0);
  s->bundle = bundle;
  s->len = len;
  memcpy(s->home, home, hl + 1);
  lua_pushcclosure(L, bc_searcher, 1);
  /* second, after the preload searcher: searchers[2..n] move up one */
  lua_Integer n = (lua_Integer)lua_rawlen(L, -2);
  for (lua_Integer i = n; i >= 2; i--) {
    lua_rawgeti(L, -2, i);
    lua_rawseti(L, -3, i + 1);
  }
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
  return 0;
}
