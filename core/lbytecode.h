/* lbytecode.h: the precompiled library's searcher (see bytecode.h). */
#ifndef ORKET_LBYTECODE_H
#define ORKET_LBYTECODE_H

#include <stddef.h>

#include <lua.h>

/* Puts the searcher for bundle (len bytes) into package.searchers, before the file
 * searcher; home is the directory that holds lua/. Returns 0, or -1 (nothing installed)
 * when the bundle is malformed. Call it outside any protected call only where allocation
 * cannot fail: main.c runs it before the first require. */
int lbytecode_install(lua_State *L, const unsigned char *bundle, size_t len, const char *home);

#endif
