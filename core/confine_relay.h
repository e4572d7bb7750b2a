/* confine_relay.h: the confinement helper's relay, for a sandbox that serves on its own
 * loopback: a unix socket in the filesystem whose clients are connected to 127.0.0.1:PORT
 * in the helper's network namespace, and a probe socket beside it that answers "up" or
 * "down <reason>"; and, for a browser in the namespace, a port there joined to one unix
 * socket outside. Used by confine.c's supervisor only; plain C, poll(2). */
#ifndef ORKET_CONFINE_RELAY_H
#define ORKET_CONFINE_RELAY_H

#include <stddef.h>

typedef struct confine_relay confine_relay;

/* The most client connections relayed at once; further ones are accepted and closed. */
#define CONFINE_RELAY_MAX_PAIRS 128
/* Bytes buffered per direction of one connection: a side is not read while its buffer is
 * full. */
#define CONFINE_RELAY_BUF (64 * 1024)
/* The most further services a relay serves beside its own port (confine_relay_service). */
#define CONFINE_RELAY_MAX_SERVICES 16
/* How long one probe waits for the service's connection. */
#define CONFINE_RELAY_PROBE_MS 1000

/* Listens on path and path ".probe" (mode 0600, nonblocking, close-on-exec). A socket file
 * nobody listens on is replaced; anything else there (a file, a live socket) is left alone
 * and fails. Returns NULL with why filled on failure. */
confine_relay *confine_relay_open(const char *path, unsigned port, char *why, size_t whylen);

/* Adds a further service: listens on the relay's path ".PORT" (as the relay's own socket:
 * mode 0600, a stale socket replaced) and connects each client to 127.0.0.1:port, in the
 * same loop and under the same caps, so each service of a sandbox has its own way in. A
 * port already relayed, or more than CONFINE_RELAY_MAX_SERVICES, fails. Returns 0, or -1
 * with why filled (the relay is left as it was). */
int confine_relay_service(confine_relay *r, unsigned port, char *why, size_t whylen);

/* Adds the way in: listens on 127.0.0.1:port (in the helper's network namespace) and joins
 * each client to a new connection to the unix socket at path, in the same loop and under
 * the same caps. Returns 0, or -1 with why filled. */
int confine_relay_inward(confine_relay *r, unsigned port, const char *path, char *why, size_t whylen);

/* Relays until wake_fd is readable (the supervisor's signalfd); returns 0 then, or -1
 * with errno when poll itself fails. */
int confine_relay_run(confine_relay *r, int wake_fd);

/* Closes every connection and every socket and removes the socket files (when they are
 * still the ones it made). NULL is fine. */
void confine_relay_close(confine_relay *r);

#endif
