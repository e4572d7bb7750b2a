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

/* Starts connecting (conninfo: a postgresql:// URL or key=value words; libpq reads the
 * password from PGPASSWORD or ~/.pgpass when the string has none). connect_timeout_ms 0:
 * none. Returns NULL with a message in err (the password masked) when it cannot even
 * start (*code PG_E_INVAL for a bad string, else PG_E_CONNECT, libpq not installed among
 * them); else the connection, PG_CONNECTING, whose end is announced with PG_EV_QUERY.
 * Host names are resolved by libpq inside a connect step (a blocking lookup): give a unix
 * socket directory or an address (hostaddr=) where that matters. */
pg_conn *pg_open(uv_loop_t *loop, const char *conninfo, uint64_t connect_timeout_ms,
                 pg_event_fn fn, void *ud, const char **code, char *err, size_t errlen);

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
