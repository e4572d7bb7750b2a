/* luabc.c: a build tool. Compiles Orket's Lua library (every lua/ file) to Lua bytecode, in one
 * file that the Makefile links into orket (core/bytecode_data.S), so that a command loads
 * its modules without parsing them (core/bytecode.h says how they are found and checked).
 *   luabc OUT FILE...     FILE: lua/orket/x.lua, run from the directory that holds lua/
 * The format is core/bytecode.h's; the debug information (lines, local names) is kept, so
 * errors and tracebacks read as they do from the sources. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <sodium.h>

#include "../core/bytecode.h"

typedef struct buf {
  unsigned char *p;
  size_t n, cap;
} buf;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("luabc: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void put(buf *b, const void *p, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->n + n) cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (q == NULL) die("out of memory");
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, p, n);
  b->n += n;
}

static void put_u32(unsigned char *at, size_t v) {
  if (v > UINT32_MAX) die("the library is larger than 4 GiB");
  bytecode_put_u32(at, (uint32_t)v);
}

static int dump_writer(lua_State *L, const void *p, size_t n, void *ud) {
  (void)L;
  put(ud, p, n);
  return 0;
}

typedef struct module {
  char name[BYTECODE_NAME_MAX];
  const char *path;
  unsigned char *src;
  size_t src_len;
  buf code;
  size_t name_at; /* where the chunk's name starts and ends in code */
  size_t name_end;
} module;

static int by_name(const void *a, const void *b) {
  return strcmp(((const module *)a)->name, ((const module *)b)->name);
}

static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) die("cannot open %s: %s", path, strerror(errno));
  buf b = {0};
  unsigned char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) put(&b, chunk, n);
  if (ferror(f)) die("cannot read %s: %s", path, strerror(errno));
  fclose(f);
  *len = b.n;
  return b.p ? b.p : calloc(1, 1);
}

/* lua/orket/x/init.lua -> orket.x; lua/orket/x/y.lua -> orket.x.y */
static void module_name(const char *path, char *out, size_t outlen) {
  size_t n = strlen(path);
  if (strncmp(path, "lua/", 4) != 0 || n < 9 || strcmp(path + n - 4, ".lua") != 0)
    die("%s is not a file under lua/ named *.lua", path);
  size_t from = 4, to = n - 4;
  if (to - from >= 5 && strncmp(path + to - 5, "/init", 5) == 0) to -= 5;
  if (to - from + 1 > outlen) die("%s: the module's name is too long", path);
  for (size_t i = from; i < to; i++) out[i - from] = path[i] == '/' ? '.' : path[i];
  out[to - from] = '\0';
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: luabc OUT FILE...\n");
    return 2;
  }
  if (sodium_init() < 0) die("libsodium did not start");
  int count = argc - 2;
  module *mods = calloc((size_t)count, sizeof *mods);
  lua_State *L = luaL_newstate();
  if (mods == NULL || L == NULL) die("out of memory");
  for (int i = 0; i < count; i++) {
    module *m = &mods[i];
    m->path = argv[i + 2];
    module_name(m->path, m->name, sizeof m->name);
    m->src = read_file(m->path, &m->src_len);
    char chunkname[BYTECODE_NAME_MAX + 8];
    snprintf(chunkname, sizeof chunkname, "@%s", m->path);
    if (luaL_loadbufferx(L, (const char *)m->src, m->src_len, chunkname, "t") != LUA_OK)
      die("%s", lua_tostring(L, -1));
    if (lua_dump(L, dump_writer, &m->code, 0) != 0) die("cannot dump %s", m->path);
    lua_pop(L, 1);
    /* the main function's source, the one name the dump holds (its functions inherit it):
     * orket puts the file's real path there when it loads the chunk */
    unsigned char enc[BYTECODE_NAME_MAX + 16];
    size_t enc_len = bytecode_encode_name(chunkname, strlen(chunkname), enc, sizeof enc);
    unsigned char *at = enc_len ? memmem(m->code.p, m->code.n, enc, enc_len) : NULL;
    if (at == NULL) die("%s: cannot find the chunk's name in its bytecode", m->path);
    m->name_at = (size_t)(at - m->code.p);
    m->name_end = m->name_at + enc_len;
  }
  lua_close(L);
  qsort(mods, (size_t)count, sizeof *mods, by_name);
  for (int i = 1; i < count; i++)
    if (strcmp(mods[i - 1].name, mods[i].name) == 0) die("two files make the module %s", mods[i].name);

  buf out = {0};
  put(&out, BYTECODE_MAGIC, 8);
  unsigned char u[4];
  put_u32(u, (size_t)count);
  put(&out, u, 4);
  size_t table = out.n;
  unsigned char zero[BYTECODE_ENTRY_SIZE] = {0};
  for (int i = 0; i < count; i++) put(&out, zero, sizeof zero);
  for (int i = 0; i < count; i++) {
    module *m = &mods[i];
    unsigned char e[BYTECODE_ENTRY_SIZE];
    put_u32(e + BC_NAME_OFF, out.n);
    put_u32(e + BC_NAME_LEN, strlen(m->name));
    put(&out, m->name, strlen(m->name));
    put_u32(e + BC_PATH_OFF, out.n);
    put_u32(e + BC_PATH_LEN, strlen(m->path));
    put(&out, m->path, strlen(m->path));
    put_u32(e + BC_SOURCE_LEN, m->src_len);
    crypto_generichash(e + BC_HASH, BYTECODE_HASH_SIZE, m->src, m->src_len, NULL, 0);
    put_u32(e + BC_CODE_OFF, out.n);
    put_u32(e + BC_CODE_LEN, m->code.n);
    put_u32(e + BC_CHUNKNAME_AT, m->name_at);
    put_u32(e + BC_CHUNKNAME_END, m->name_end);
    put(&out, m->code.p, m->code.n);
    memcpy(out.p + table + (size_t)i * BYTECODE_ENTRY_SIZE, e, sizeof e);
    free(m->src);
    free(m->code.p);
  }
  free(mods);

  /* written whole, then renamed: make never sees half a file */
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
  FILE *f = fopen(tmp, "wb");
  if (f == NULL || fwrite(out.p, 1, out.n, f) != out.n || fclose(f) != 0)
    die("cannot write %s: %s", tmp, strerror(errno));
  if (rename(tmp, argv[1]) != 0) die("cannot rename %s: %s", tmp, strerror(errno));
  free(out.p);
  return 0;
}
