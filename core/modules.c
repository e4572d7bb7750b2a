/* modules.c: the list of C bindings the runtime preloads (see modules.h). */
#include "modules.h"

#include <stddef.h>

const orket_module orket_modules[] = {
    {"orket.c.runtime", luaopen_orket_runtime},
    {"orket.c.scriptenv", luaopen_orket_scriptenv},
    {"orket.c.lineedit", luaopen_orket_lineedit},
    {"orket.c.crypto", luaopen_orket_crypto},
    {"orket.c.seal", luaopen_orket_seal},
    {"orket.c.auditchain", luaopen_orket_auditchain},
    {"orket.c.statemachine", luaopen_orket_statemachine},
    {"orket.c.card", luaopen_orket_card},
    {"orket.c.store", luaopen_orket_store},
    {"orket.c.workspace", luaopen_orket_workspace},
    {"orket.c.gate", luaopen_orket_gate},
    {"orket.c.schema", luaopen_orket_schema},
    {"orket.c.toolscan", luaopen_orket_toolscan},
    {"orket.c.http", luaopen_orket_http},
    {"orket.c.httpd", luaopen_orket_httpd},
    {"orket.c.health", luaopen_orket_health},
    {"orket.c.ratelimit", luaopen_orket_ratelimit},
    {"orket.c.plain", luaopen_orket_plain},
    {"orket.c.pattern", luaopen_orket_pattern},
    {"orket.c.lockfile", luaopen_orket_lockfile},
    {"orket.c.gitrepo", luaopen_orket_gitrepo},
    {"orket.c.gitexport", luaopen_orket_gitexport},
    {"orket.c.gitdiff", luaopen_orket_gitdiff},
    {"orket.c.proc", luaopen_orket_proc},
    {"orket.c.pg", luaopen_orket_pg},
    {"orket.c.jsonout", luaopen_orket_jsonout},
    {"orket.c.inert", luaopen_orket_inert},
    {"orket.c.otlpspan", luaopen_orket_otlpspan},
    {"orket.c.jose", luaopen_orket_jose},
    {"orket.c.ldap", luaopen_orket_ldap},
    {"orket.c.sqlseed", luaopen_orket_sqlseed},
    {NULL, NULL},
};
