/* modules.c: the list of C bindings the runtime preloads (see modules.h). */
#include "modules.h"

#include <stddef.h>

const orket_module orket_modules[] = {
    {"orket.c.runtime", luaopen_orket_runtime},
    {"orket.c.sandbox", luaopen_orket_sandbox},
    {"orket.c.lineedit", luaopen_orket_lineedit},
    {"orket.c.http", luaopen_orket_http},
    {NULL, NULL},
};
