/* lhttp.h: what other bindings take of orket.c.http (lhttp.c). */
#ifndef ORKET_LHTTP_H
#define ORKET_LHTTP_H

#include <lua.h>

#include "http.h"

/* The runtime's HTTP client, made on first use (raises when it cannot be). */
http_client *lhttp_client(lua_State *L);

#endif
