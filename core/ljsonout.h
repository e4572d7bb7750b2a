/* ljsonout.h: JSON text made in C and handed to Lua as a buffer userdata whose bytes are
 * malloc'd, outside the Lua heap: a large document (a batch of spans, orket.otel) made
 * this way costs the collector nothing, where a Lua string of its size made the
 * incremental collector mark and sweep in proportion to its bytes. The http binding sends
 * such a buffer as a request's body. In Lua: buf:text() -> its bytes as a string,
 * buf:free() releases them at once (else the collector does), #buf its length; free()
 * raises while the buffer is pinned (a request sends it). */
#ifndef ORKET_LJSONOUT_H
#define ORKET_LJSONOUT_H

#include <lua.h>

#include "jsonout.h"

/* Pushes a new, empty buffer userdata and returns its buffer. */
jsonout_buf *ljo_pushbuf(lua_State *L);
/* The buffer at index i, or NULL when the value there is not one. */
jsonout_buf *ljo_testbuf(lua_State *L, int i);
/* Adds delta (+1 or -1) to the pins of the buffer at index i, if the value there is one:
 * a pinned buffer's bytes are read outside Lua, so buf:free() raises until each pin that
 * was taken is released. The pinning object keeps the buffer alive meanwhile. */
void ljo_pin(lua_State *L, int i, int delta);

#endif
