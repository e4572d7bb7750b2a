/* pgapi.h: libpq's entry points, loaded with dlopen when the first PostgreSQL connection
 * is opened. libpq brings Kerberos, LDAP, SASL and OpenSSL with it; resolving their symbols
 * took most of the start-up time of every orket command, though only the PostgreSQL
 * backend uses them. <libpq-fe.h> is used for its types alone. */
#ifndef ORKET_PGAPI_H
#define ORKET_PGAPI_H

#include <stddef.h>

#include <libpq-fe.h>

/* Each field is the libpq function of that name with its PQ prefix dropped. */
typedef struct pgapi {
  void *lib;
  /* connecting and the connection */
  PQconninfoOption *(*conninfoParse)(const char *conninfo, char **errmsg);
  void (*conninfoFree)(PQconninfoOption *opts);
  PGconn *(*connectStart)(const char *conninfo);
  PGconn *(*connectStartParams)(const char *const *keywords, const char *const *values, int expand_dbname);
  PostgresPollingStatusType (*connectPoll)(PGconn *conn);
  void (*finish)(PGconn *conn);
  ConnStatusType (*status)(const PGconn *conn);
  char *(*errorMessage)(const PGconn *conn);
  char *(*pass)(const PGconn *conn);
  char *(*host)(const PGconn *conn);
  char *(*hostaddr)(const PGconn *conn);
  int (*socket)(const PGconn *conn);
  int (*backendPID)(const PGconn *conn);
  int (*setnonblocking)(PGconn *conn, int arg);
  PQnoticeProcessor (*setNoticeProcessor)(PGconn *conn, PQnoticeProcessor proc, void *arg);
  /* sending and receiving */
  int (*sendQuery)(PGconn *conn, const char *query);
  int (*sendQueryParams)(PGconn *conn, const char *command, int nparams, const Oid *types,
                         const char *const *values, const int *lengths, const int *formats,
                         int result_format);
  int (*sendPrepare)(PGconn *conn, const char *name, const char *query, int nparams,
                     const Oid *types);
  int (*sendQueryPrepared)(PGconn *conn, const char *name, int nparams, const char *const *values,
                           const int *lengths, const int *formats, int result_format);
  int (*flush)(PGconn *conn);
  int (*consumeInput)(PGconn *conn);
  int (*isBusy)(PGconn *conn);
  PGresult *(*getResult)(PGconn *conn);
  PGnotify *(*notifies)(PGconn *conn);
  /* cancelling */
  PGcancel *(*getCancel)(PGconn *conn);
  int (*cancel)(PGcancel *cancel, char *errbuf, int errbufsize);
  void (*freeCancel)(PGcancel *cancel);
  /* results */
  ExecStatusType (*resultStatus)(const PGresult *res);
  char *(*resultErrorField)(const PGresult *res, int fieldcode);
  char *(*resultErrorMessage)(const PGresult *res);
  int (*ntuples)(const PGresult *res);
  int (*nfields)(const PGresult *res);
  char *(*fname)(const PGresult *res, int field);
  Oid (*ftype)(const PGresult *res, int field);
  char *(*getvalue)(const PGresult *res, int row, int field);
  int (*getlength)(const PGresult *res, int row, int field);
  int (*getisnull)(const PGresult *res, int row, int field);
  char *(*cmdStatus)(PGresult *res);
  char *(*cmdTuples)(PGresult *res);
  unsigned char *(*unescapeBytea)(const unsigned char *text, size_t *len);
  void (*clear)(PGresult *res);
  void (*freemem)(void *ptr);
} pgapi;

/* Loads libpq (libpq.so.5) and every entry point above. Returns 0, or -1 with a message
 * naming what is missing. Once loaded, libpq stays loaded until the process ends (see
 * pgapi.c); each table holds a reference. */
int pgapi_open(pgapi *api, char *err, size_t errlen);

/* Drops the table's reference; the table must not be used afterwards. Idempotent. */
void pgapi_close(pgapi *api);

#endif
