/* curlapi.h: libcurl's entry points, loaded with dlopen when the first HTTP client is made.
 * libcurl brings some thirty shared libraries with it; resolving their symbols took most of
 * the start-up time of every orket command, including the many that never talk HTTP. */
#ifndef ORKET_CURLAPI_H
#define ORKET_CURLAPI_H

#include <stddef.h>

#include <curl/curl.h>

typedef struct curlapi {
  void *lib;
  CURLcode (*global_init)(long flags);
  void (*global_cleanup)(void);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *e, CURLoption opt, ...);
  CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
  void (*easy_cleanup)(CURL *e);
  void (*easy_reset)(CURL *e);
  CURLcode (*easy_pause)(CURL *e, int bitmask);
  const char *(*easy_strerror)(CURLcode rc);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
  CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
  CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
  CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t fd, int ev, int *running);
  CURLMsg *(*multi_info_read)(CURLM *m, int *left);
  CURLMcode (*multi_cleanup)(CURLM *m);
  const char *(*multi_strerror)(CURLMcode rc);
  struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
  void (*slist_free_all)(struct curl_slist *l);
} curlapi;

/* Loads libcurl (libcurl.so.4) and every entry point above. Returns 0, or -1 with a
 * message naming what is missing. */
int curlapi_open(curlapi *api, char *err, size_t errlen);

/* Unloads it; the table must not be used afterwards. Idempotent. */
void curlapi_close(curlapi *api);

#endif
