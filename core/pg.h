/* pg.h: one PostgreSQL connection driven by a libuv loop with libpq's asynchronous API:
 * PQconnectStart/PQconnectPoll, PQsendQueryParams in non-blocking mode, PQconsumeInput/
 * PQisBusy/PQgetResult, all on one uv_poll of PQsocket. Nothing here blocks the loop. Pure
 * C (the Lua binding is lpg.c); state hangs off a pg_conn, libpq's table too (pgapi.h:
 * libpq is loaded when the first connection opens, not when orket starts).
 *
 * The caller learns of news through one callback: the connection finished connecting or a
 * query finished (PG_EV_QUERY), or notifications arrived / their wait timed out
 * (PG_EV_NOTES). The callback is the last thing pg.c does in a loop callback, so it may
 * close the connection. */
#ifndef ORKET_PG_H
#define ORKET_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "pgapi.h"

typedef struct pg_conn pg_conn;

enum { PG_EV_QUERY = 1, PG_EV_NOTES = 2 };
typedef void (*pg_event_fn)(pg_conn *c, void *ud, int what);

typedef enum {
  PG_CONNECTING, /* PQconnectPoll steps in progress */
  PG_IDLE,       /* ready for a query */
  PG_BUSY,       /* a query is in flight (perhaps one nobody waits for, being drained) */
  PG_BROKEN,     /* the connection failed or was lost: close it */
} pg_state;

/* Error codes (pg_error, pg_code_for_sqlstate). */
#define PG_E_SQL "ESQL"               /* the statement failed (syntax, type, ...) */
#define PG_E_CONSTRAINT "ECONSTRAINT" /* SQLSTATE class 23 */
#define PG_E_CONFLICT "ECONFLICT"     /* class 40: serialization failure, deadlock; retry */
#define PG_E_BUSY "EBUSY"             /* 55P03: a lock not had within lock_timeout, as SQLite's busy */
#define PG_E_AUTH "EAUTH"             /* class 28 */
#define PG_E_TIMEOUT "ETIMEDOUT"      /* our timeout (the query was cancelled) */
#define PG_E_CANCELED "ECANCELED"     /* cancelled on the server (57014) */
#define PG_E_CONNECT "ECONNECT"       /* could not connect */
#define PG_E_LOST "ECONNRESET"        /* the connection was lost while the query ran */
#define PG_E_NOTCONN "ENOTCONN"       /* the connection was already unusable: nothing sent */
#define PG_E_INVAL "EINVAL"           /* a bad connection string */

/* How long a connect and a statement may go without an answer (0 in any field: no bound).
 *
 * Each host a connection string names (libpq's multi-host form, host=a,b&port=...) is tried
 * in turn, one at a time, with a deadline of its own: the string's connect_timeout (seconds,
 * 2 at least, as libpq reads it) when it sets one, else connect_timeout_ms, cut to
 * PG_NEXT_HOST_MS for a host that another follows; past it the next host is tried. libpq
 * ignores connect_timeout under PQconnectPoll, so one deadline for the whole attempt kept it
 * on a host that never answered (frozen, behind a dropped network) and never reached the
 * next. total_timeout_ms bounds the whole connect, every host (a stop's bound).
 *
 * liveness_ms: a statement that has had no answer for that long has its server checked
 * with a connection of its own to the same host (target_session_attrs aside), bounded as a
 * host followed by another is; when that one is not had either (no answer, or no server
 * there), the statement fails PG_E_TIMEOUT with SQLSTATE 08006 and the connection is given
 * up (pg_give_up). A server that answers it, even with a refusal of its own ("FATAL:", as
 * at its connection limit), is there: the statement goes on and is checked again
 * liveness_ms later, so a slow statement or a lock waited for never fails so. A server that
 * stopped answering held a statement sent to it for as long as it stayed so (a worker's
 * turn, after a failover, held its cards for minutes). */
typedef struct pg_opts {
  uint64_t connect_timeout_ms;
  uint64_t total_timeout_ms;
  uint64_t liveness_ms;
} pg_opts;

/* The most a host followed by another may take to answer a connect when the connection
 * string sets no connect_timeout; also the bound of a liveness check's connect. */
#define PG_NEXT_HOST_MS 5000
/* The most hosts one connection string may name */
#define PG_MAX_HOSTS 64

/* Starts connecting (conninfo: a postgresql:// URL or key=value words; libpq reads the
 * password from PGPASSWORD or ~/.pgpass when the string has none) with the bounds of o.
 * Returns NULL with a message in err (the password masked) when it cannot even start
 * (*code PG_E_INVAL for a bad string, else PG_E_CONNECT, libpq not installed among them, or
 * PG_E_TIMEOUT when every host failed at once or timed out); else the connection,
 * PG_CONNECTING, whose end is announced with PG_EV_QUERY. When several hosts are named and
 * none can be had, the message names each and why ("pg: cannot connect to any of 2 hosts:
 * /run/a: timed out after 5000 ms; /run/b: connection to server ... failed: session is
 * read-only"); the code is PG_E_TIMEOUT when each timed out, else PG_E_CONNECT. Every
 * other parameter of the string is passed to libpq as given (its own parse,
 * PQconninfoParse, then PQconnectStartParams); TCP keepalives (keepalives_idle 30 s,
 * interval 10 s, count 3) and tcp_user_timeout (30 s) are added where the string sets none
 * (libpq ignores them on a unix socket), so that a connection to a host gone off the
 * network is found dead in about a minute rather than the system's two hours.
 * Host names are resolved by libpq inside a connect step (a blocking lookup): give a unix
 * socket directory or an address (hostaddr=) where that matters. */
pg_conn *pg_open(uv_loop_t *loop, const char *conninfo, const pg_opts *o, pg_event_fn fn, void *ud,
                 const char **code, char *err, size_t errlen);

/* A connection string as pg_open reads it (exposed for the tests): libpq's parse, the
 * keywords and values given to PQconnectStartParams (the string's own, then the TCP
 * defaults it leaves unset), and the hosts it names, tried one at a time. */
typedef struct pg_plan {
  PQconninfoOption *opts; /* libpq's parse (PQconninfoParse); owned */
  const char **kw, **val; /* NULL-terminated; val points into opts, lists and string constants */
  int i_host, i_addr, i_port, i_target; /* their slots in kw/val, -1 when not given */
  char *lists;            /* the host, hostaddr and port values, cut at their commas */
  char **host, **addr, **port; /* each element, NULL where that list is not given per host */
  int nhosts;             /* 1 when libpq is left the string's hosts as they are */
  uint64_t url_timeout_ms; /* the string's connect_timeout, in ms (0: none) */
} pg_plan;

/* Returns 0, or -1 with *code (PG_E_INVAL: libpq refuses the string, or it names more than
 * PG_MAX_HOSTS hosts) and a message, the password masked. Hosts whose lists libpq itself
 * would refuse (3 hosts, 2 ports) are left to libpq: nhosts 1, its error at the connect. */
int pg_plan_make(const pgapi *api, const char *conninfo, pg_plan *p, const char **code, char *err,
                 size_t errlen);
/* Sets the values of host i (0 <= i < nhosts) in val: its host, hostaddr and port. */
void pg_plan_host(pg_plan *p, int i);
/* The value val gives kw, or NULL. */
const char *pg_plan_get(const pg_plan *p, const char *kw);
/* How messages name host i: its host (or hostaddr), ":port" when each host has its own */
void pg_plan_label(const pg_plan *p, int i, char *out, size_t outlen);
void pg_plan_free(const pgapi *api, pg_plan *p);

/* Stops everything and frees the connection (its handles close through the loop). A query
 * in flight is dropped (the server rolls back its transaction when the socket closes). */
void pg_close(pg_conn *c);

pg_state pg_get_state(const pg_conn *c);

/* libpq's entry points, for the results this connection hands out (valid until pg_close). */
const pgapi *pg_api(const pg_conn *c);

/* For an idle connection: reads what the server already sent without waiting (a
 * termination notice, the end of the stream) so a loss the loop has not seen yet is found
 * before a statement is sent on it. Returns the state after. Never announces anything. */
pg_state pg_probe(pg_conn *c);
int pg_backend_pid(const pg_conn *c);

/* Sends one statement with text parameters (values[i] NULL for NULL; types[i] 0 lets the
 * server infer). timeout_ms 0: none; when it passes the query is cancelled on the server
 * and finishes with PG_E_TIMEOUT. Returns 0, or -1 with code (PG_E_NOTCONN: nothing was
 * sent) and message in err. The first time a connection sends a text (with these types)
 * it prepares it, and executes it by name from then on (PG_MAX_STMTS). */
int pg_send(pg_conn *c, const char *sql, int n, const Oid *types, const char *const *values,
            uint64_t timeout_ms, const char **code, char *err, size_t errlen);

/* Sends a script of statements without parameters (PQsendQuery: the simple protocol, one
 * implicit transaction unless the script says otherwise); as pg_send otherwise. The
 * outcome is the first failing statement's, else the last statement's. */
int pg_send_script(pg_conn *c, const char *sql, uint64_t timeout_ms, const char **code, char *err,
                   size_t errlen);

/* After PG_EV_QUERY: the result of the finished query (the caller PQclears it), or NULL
 * when it failed; then *code and *msg say why (and *sqlstate when the server said, else
 * ""). A result with an error status is returned as NULL with its message, code and
 * SQLSTATE. Also answers for a finished connect: NULL with code NULL when it succeeded. */
PGresult *pg_take(pg_conn *c, const char **code, const char **msg, const char **sqlstate);

/* The waiter of the query in flight is gone (cancelled task): the query is cancelled on
 * the server (from a detached thread: PQcancel blocks) and its result discarded when it
 * comes; the connection is idle again after that. */
void pg_abandon(pg_conn *c);

/* Gives the connection up without waiting for the server (a stop's deadline, the server
 * not answering): it is broken from now on, with why as its message; the waiter of a
 * query in flight gets why (PG_E_TIMEOUT) on the loop's next turn. Nothing is sent: a
 * server that does not answer would not take a cancel either. Close it as usual. */
void pg_give_up(pg_conn *c, const char *why);

/* Notifications (LISTEN) received and not yet taken, oldest first; the queue keeps at most
 * PG_MAX_NOTES and counts the ones it dropped. */
#define PG_MAX_NOTES 4096

/* Statements prepared per connection (past it they are sent unnamed, parsed each time) and
 * the longest text prepared: bounds what a connection keeps on both sides. */
#define PG_MAX_STMTS 256
#define PG_MAX_STMT_KEY 16384
size_t pg_note_count(const pg_conn *c);
const PGnotify *pg_note_at(const pg_conn *c, size_t i);
size_t pg_notes_dropped(const pg_conn *c);
void pg_notes_clear(pg_conn *c);

/* Arms a wait for notifications: PG_EV_NOTES fires when one arrives, when timeout_ms
 * passes (0: never), or when the connection is lost. pg_notes_timed_out says which. */
void pg_notes_wait(pg_conn *c, uint64_t timeout_ms);
void pg_notes_unwait(pg_conn *c);
int pg_notes_timed_out(const pg_conn *c);

/* The message of the broken connection (PG_BROKEN), or "". */
const char *pg_broken_message(const pg_conn *c);

/* Copies msg into out (truncated to outlen) with every occurrence of the password written
 * in conninfo (a URL's user:password@ or ?password=, or password=...) replaced by "***". */
void pg_mask_password(const char *conninfo, const char *msg, char *out, size_t outlen);

/* Copies conninfo into out with its password replaced by "***" (for messages). */
void pg_scrub_conninfo(const char *conninfo, char *out, size_t outlen);

/* The error code for a SQLSTATE (PG_E_*). */
const char *pg_code_for_sqlstate(const char *sqlstate);

#endif
