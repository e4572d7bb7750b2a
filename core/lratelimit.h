/* lratelimit.h: the limiter userdata of `orket.c.ratelimit`, for another binding that
 * takes from the same buckets in C (orket serve's /health answer, lhealth.c). */
#ifndef ORKET_LRATELIMIT_H
#define ORKET_LRATELIMIT_H

#include <lua.h>

#include "ratelimit.h"

/* The open limiter at index i; raises an argument error naming i otherwise. The userdata
 * owns it: the caller keeps the value referenced while it uses the pointer. */
ratelimit *lrl_check(lua_State *L, int i);

/* As lrl_check, for a borrower that keeps the pointer: the limiter's close() refuses until
 * the borrower gives it back by decrementing *lent (set here). The borrower also keeps the
 * value referenced, so it is not collected meanwhile. */
ratelimit *lrl_lend(lua_State *L, int i, int **lent);

#endif
