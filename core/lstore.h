/* lstore.h: the connection userdata of `orket.c.store`, for another binding that reads the
 * store's stamp in C (lhttpd.c's proxy memory, docs/serve.md). */
#ifndef ORKET_LSTORE_H
#define ORKET_LSTORE_H

#include <lua.h>

#include "store.h"

/* The store connection at index i, or NULL when the value is not one. The caller keeps the
 * value referenced while it holds the pointer. */
void *lstore_test(lua_State *L, int i);
/* Its store, NULL once the connection was closed. */
store *lstore_store(void *conn);

#endif
