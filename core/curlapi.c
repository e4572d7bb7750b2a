/* curlapi.c: loads libcurl on first use (see curlapi.h); dlapi.c binds its entry points. */
#define _GNU_SOURCE
#include "curlapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "dlapi.h"

#define SYM(field) {"curl_" #field, offsetof(curlapi, field)},
static const dlapi_sym curl_syms[] = {
    SYM(global_init) SYM(global_cleanup) SYM(easy_init) SYM(easy_setopt) SYM(easy_getinfo)
    SYM(easy_cleanup) SYM(easy_reset) SYM(easy_pause) SYM(easy_strerror) SYM(multi_init) SYM(multi_setopt)
    SYM(multi_add_handle) SYM(multi_remove_handle) SYM(multi_socket_action) SYM(multi_info_read)
    SYM(multi_cleanup) SYM(multi_strerror) SYM(slist_append) SYM(slist_free_all)
};
#undef SYM

int curlapi_open(curlapi *api, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  api->lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (api->lib == NULL) {
    dlapi_open_failed("libcurl", "libcurl4", err, errlen);
    return -1;
  }
  if (dlapi_bind(api->lib, api, curl_syms, sizeof curl_syms / sizeof curl_syms[0], "libcurl", "too old a libcurl",
                 err, errlen) != 0) {
    curlapi_close(api);
    return -1;
  }
  return 0;
}

void curlapi_close(curlapi *api) {
  if (api->lib) dlclose(api->lib);
  memset(api, 0, sizeof *api);
}
