/* curlapi.c: loads libcurl on first use (see curlapi.h). Uses dlopen/dlsym. */
#define _GNU_SOURCE
#include "curlapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int curlapi_open(curlapi *api, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  api->lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (api->lib == NULL) {
    snprintf(err, errlen, "cannot load libcurl (install the libcurl4 package): %s", dlerror());
    return -1;
  }
  /* dlsym returns void*; POSIX guarantees it converts to a function pointer. */
#define LOAD(field, name)                                                      \
  do {                                                                         \
    void *sym = dlsym(api->lib, name);                                         \
    if (sym == NULL) {                                                         \
      snprintf(err, errlen, "libcurl has no %s: too old a libcurl", name);     \
      curlapi_close(api);                                                      \
      return -1;                                                               \
    }                                                                          \
    memcpy(&api->field, &sym, sizeof sym);                                     \
  } while (0)
  LOAD(global_init, "curl_global_init");
  LOAD(global_cleanup, "curl_global_cleanup");
  LOAD(easy_init, "curl_easy_init");
  LOAD(easy_setopt, "curl_easy_setopt");
  LOAD(easy_getinfo, "curl_easy_getinfo");
  LOAD(easy_cleanup, "curl_easy_cleanup");
  LOAD(easy_reset, "curl_easy_reset");
  LOAD(easy_strerror, "curl_easy_strerror");
  LOAD(multi_init, "curl_multi_init");
  LOAD(multi_setopt, "curl_multi_setopt");
  LOAD(multi_add_handle, "curl_multi_add_handle");
  LOAD(multi_remove_handle, "curl_multi_remove_handle");
  LOAD(multi_socket_action, "curl_multi_socket_action");
  LOAD(multi_info_read, "curl_multi_info_read");
  LOAD(multi_cleanup, "curl_multi_cleanup");
  LOAD(multi_strerror, "curl_multi_strerror");
  LOAD(slist_append, "curl_slist_append");
  LOAD(slist_free_all, "curl_slist_free_all");
#undef LOAD
  return 0;
}

void curlapi_close(curlapi *api) {
  if (api->lib) dlclose(api->lib);
  memset(api, 0, sizeof *api);
}
