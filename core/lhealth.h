/* lhealth.h: the health userdata of `orket.c.health`, for the httpd binding, which sets
 * it as a server's quick answer to GET /health (srv:quick({"/health"}, health)). */
#ifndef ORKET_LHEALTH_H
#define ORKET_LHEALTH_H

#include <lua.h>

#include "httpd.h"

/* Whether the value at index i is a health userdata: then *fn and *ud are the quick
 * function and its argument for httpd_set_quick (valid while the userdata lives; a closed
 * one declines every request). */
int lhealth_test(lua_State *L, int i, httpd_quick_fn *fn, void **ud);

#endif
