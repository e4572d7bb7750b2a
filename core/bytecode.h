/* bytecode.h: Orket's Lua library precompiled, linked into the binary. Parsing the modules
 * a command loads was a fifth of `orket run`'s CPU (96 modules, 850 KB of source), and
 * loading bytecode takes a third of the time parsing does. The build makes the bundle
 * (scripts/luabc.c); core/bytecode_data.S links it in; lbytecode.c puts a searcher for it
 * before Lua's own file searcher.
 *
 * A module's bytecode is used only while the file it was made from is unchanged: its size
 * and BLAKE2b hash are in the bundle, and the file under the home's lua/ is read and hashed
 * first (reading is what the file searcher does anyway). An edited, added or missing file
 * is left to Lua's searchers, so a source tree stays the truth without a rebuild.
 *
 * The bundle, integers little-endian u32:
 *   "ORKETBC1", count, count entries of BYTECODE_ENTRY_SIZE bytes (sorted by name), data.
 *   entry: name_off, name_len, path_off, path_len, source_len, hash[16], code_off,
 *          code_len, chunkname_at, chunkname_end
 * Offsets count from the bundle's start; chunkname_at/_end from the code's: the span of the
 * main function's source name ("@lua/orket/x.lua"), replaced at load by the file's full
 * path so that errors and debug.getinfo name the file as a source load would. */
#ifndef ORKET_BYTECODE_H
#define ORKET_BYTECODE_H

#include <stddef.h>
#include <stdint.h>

#define BYTECODE_MAGIC "ORKETBC1"
#define BYTECODE_HASH_SIZE 16
#define BYTECODE_NAME_MAX 256
#define BYTECODE_COUNT 8  /* the count's offset in the bundle */
#define BYTECODE_TABLE 12 /* the entries' */

/* An entry's fields, by their offset in it: the one statement of the layout that the
 * reader (bytecode.c), the writer (scripts/luabc.c) and the tests use. */
enum {
  BC_NAME_OFF = 0,
  BC_NAME_LEN = 4,
  BC_PATH_OFF = 8,
  BC_PATH_LEN = 12,
  BC_SOURCE_LEN = 16,
  BC_HASH = 20,
  BC_CODE_OFF = BC_HASH + BYTECODE_HASH_SIZE,
  BC_CODE_LEN = BC_CODE_OFF + 4,
  BC_CHUNKNAME_AT = BC_CODE_LEN + 4,
  BC_CHUNKNAME_END = BC_CHUNKNAME_AT + 4,
  BYTECODE_ENTRY_SIZE = BC_CHUNKNAME_END + 4
};

typedef struct bytecode_entry {
  const char *name, *path; /* not NUL-terminated */
  size_t name_len, path_len;
  size_t source_len;
  const unsigned char *hash;
  const unsigned char *code;
  size_t code_len;
  size_t chunkname_at, chunkname_end;
} bytecode_entry;

/* Finds module name in the bundle. Returns 1 with *out set, 0 when it is not there, -1
 * when the bundle is malformed (bad magic, an entry out of bounds). */
int bytecode_find(const unsigned char *bundle, size_t len, const char *name, bytecode_entry *out);

/* 1 when source (its bytes) is the very file the entry's code was made from. */
int bytecode_matches(const bytecode_entry *e, const unsigned char *source, size_t len);

/* Writes v at at, little-endian, as the bundle holds its integers. */
void bytecode_put_u32(unsigned char *at, uint32_t v);

/* Encodes a chunk name as Lua 5.4's dump stores a string (its length plus one, in 7-bit
 * groups, the last marked with 0x80, then the bytes) into out. Returns the bytes used, 0
 * when out is too small. */
size_t bytecode_encode_name(const char *name, size_t len, unsigned char *out, size_t outlen);

#endif
