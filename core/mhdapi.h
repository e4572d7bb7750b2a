/* mhdapi.h: libmicrohttpd's entry points, loaded with dlopen when the first server starts.
 * libmicrohttpd brings GnuTLS and its dozen libraries with it; resolving their symbols took
 * a share of the start-up time of every orket command, though only `orket serve` (and the
 * tests' fake servers) listen. <microhttpd.h> is used for its types alone. */
#ifndef ORKET_MHDAPI_H
#define ORKET_MHDAPI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <microhttpd.h>

/* The functions used, each named without its MHD_ prefix. One list makes both the table
 * and its loader, and each field takes its type from libmicrohttpd's own declaration, so
 * the two cannot disagree. */
#define MHDAPI_FUNCS(X)                                                                    \
  X(start_daemon) X(stop_daemon) X(quiesce_daemon) X(run) X(get_timeout)                   \
  X(get_daemon_info) X(get_connection_info) X(get_connection_values)                      \
  X(lookup_connection_value) X(suspend_connection) X(resume_connection)                   \
  X(create_response_from_buffer) X(create_response_from_buffer_with_free_callback_cls)    \
  X(create_response_from_callback) X(add_response_header) X(queue_response)               \
  X(destroy_response) X(set_response_options) X(set_connection_option)

typedef struct mhdapi {
  void *lib;
#define MHDAPI_FIELD(name) __typeof__(MHD_##name) *name;
  MHDAPI_FUNCS(MHDAPI_FIELD)
#undef MHDAPI_FIELD
} mhdapi;

/* Loads libmicrohttpd (libmicrohttpd.so.12) and every entry point above. Returns 0, or -1
 * with a message naming what is missing. Once loaded, it stays loaded until the process
 * ends (see mhdapi.c); each table holds a reference. */
int mhdapi_open(mhdapi *api, char *err, size_t errlen);

/* Drops the table's reference; the table must not be used afterwards. Idempotent. */
void mhdapi_close(mhdapi *api);

#endif
