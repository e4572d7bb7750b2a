/* pg.c: a PostgreSQL connection on a libuv loop (see pg.h). libpq's asynchronous calls are
 * driven from one uv_poll on PQsocket; cancelling a query uses PQcancel on a detached
 * thread of its own, since libpq 15 has no non-blocking cancel. libpq is reached through the connection's
 * table (pgapi.h), loaded when it opens. */
#include "pg.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


/* A liveness check's connection: only host `host` of the string, at the address the
 * checked connection reached (addr, "" for a unix socket), whatever its session takes. */
typedef struct pg_only {
  int host;
  const char *addr;
} pg_only;

struct pg_conn {
  pgapi api;              /* libpq, loaded when the connection opens */
  uv_loop_t *loop;
  PGconn *pq;
  uv_poll_t *poll;        /* on PQsocket; NULL when nothing is watched */
  int poll_events;
  uv_timer_t *timer;      /* the connect or query timeout */
  uv_timer_t *notes_timer;
  pg_state state;
  uint64_t timeout_ms;    /* of the connect or query that runs, for the message */
  int draining;           /* nobody waits for the query in flight: discard its result */
  int flushing;           /* PQflush had more to send: watch for writable too */
  int pending;            /* PG_EV_* to announce at the end of this loop callback */
  PGresult *result;       /* the finished query's (first error, else last) result */
  const char *code;       /* why the last connect or query failed without a result */
  char msg[1024];
  char sqlstate[6];
  char broken[1024];
  PGnotify **notes;
  size_t nnotes, capnotes, dropped;
  int notes_waiting, notes_timed_out;
  pg_event_fn fn;
  void *ud;
  /* statements prepared on this connection (see pg_send) */
  struct pg_stmt *stmts;
  int nstmts, capstmts;
  unsigned next_stmt;     /* names are "orket_<n>" */
  int preparing;          /* 1 + the index of the statement being prepared, 0 when none */
  int prep_failed;
  int dn;                 /* the execution that waits for that PREPARE: its parameters */
  char **dvalues;
  /* connecting, one host at a time (pg_open) */
  pg_opts o;
  pg_plan plan;           /* freed once connected */
  int cur;                /* the host tried now, then the one reached */
  int all_timed_out;      /* every host failed so far timed out */
  int timer_total;        /* the connect's timer is total_timeout_ms's, not the host's */
  uint64_t total_at;      /* the loop time total_timeout_ms ends at (0: none) */
  char tried[2048];       /* "HOST: why; HOST: why" of the hosts that failed */
  char label[256];        /* the host reached, for messages */
  /* the liveness check of a statement in flight (pg_opts.liveness_ms) */
  char *conninfo;         /* kept for the check's connection (NULL without liveness_ms) */
  char *only_addr;        /* a check's own connection: the address it goes to */
  uv_timer_t *check_timer;
  pg_conn *probe;         /* the check's connection while it is made */
  uint64_t sent_at;       /* the loop time the statement in flight was sent */
  uint64_t probe_ms;      /* the check's connect bound */
};

/* A statement is prepared the first time it is sent on a connection (one more round trip,
 * once) and executed by name after: the server parses it once and, after a few
 * executions, plans it once. The key is the text and the parameter types (a NULL or a
 * string leaves a type to the server, so the same text can need two statements). */
typedef struct pg_stmt {
  uint64_t hash;
  char *key;
  size_t keylen;
  unsigned id;
  int ready;
} pg_stmt;

/* ---- masking the password ------------------------------------------------------------- */

typedef struct pg_span {
  const char *p;
  size_t len;
} pg_span;

static int pg_hex(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* The length of a URL's scheme and "://" at the start of s (any scheme, any case: a
 * mistyped one, "mysql://u:pw@h" or "POSTGRESQL://...", is echoed in messages too), or 0. */
static size_t pg_url_prefix(const char *s) {
  size_t i = 0;
  if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return 0;
  while (s[i] && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.')) i++;
  return strncmp(s + i, "://", 3) == 0 ? i + 3 : 0;
}

/* s (len bytes) with its percent escapes decoded into out (cap bytes, cap > 0, cut short
 * there), as libpq decodes a URL's names and values -> the decoded length */
static size_t pg_unescape(const char *s, size_t len, char *out, size_t cap) {
  size_t d = 0;
  for (size_t j = 0; j < len && d + 1 < cap; j++) {
    int hi, lo;
    if (s[j] == '%' && j + 2 < len && (hi = pg_hex(s[j + 1])) >= 0 && (lo = pg_hex(s[j + 2])) >= 0) {
      out[d++] = (char)(hi * 16 + lo);
      j += 2;
    } else {
      out[d++] = s[j];
    }
  }
  return d;
}

/* Whether a URL query's key (klen bytes), its percent escapes decoded, names a secret:
 * libpq decodes the names too, so "%70assword" is the password. Any key holding "password"
 * in any case counts ("PASSWORD", "password%3D", "%20password"): libpq refuses such a key,
 * and the message quoting the URL must not show what the person meant as a password. */
static bool pg_secret_key(const char *k, size_t klen) {
  char dec[64];
  size_t d = pg_unescape(k, klen, dec, sizeof dec - 1);
  for (size_t i = 0; i < d; i++) dec[i] = dec[i] == '\0' ? '?' : (char)tolower((unsigned char)dec[i]);
  dec[d] = '\0';
  return strstr(dec, "password") != NULL;
}

/* The next "password" in s at or after p, in any case (a keyword libpq refuses, but the
 * person meant a password: "PASSWORD=pp" is echoed by the messages that quote it) | NULL */
static const char *pg_next_password(const char *p) {
  for (; *p; p++)
    if (strncasecmp(p, "password", 8) == 0) return p;
  return NULL;
}

/* Where conninfo writes a secret: a URL's user:PASSWORD@host and ?password= or
 * ?sslpassword= (the key's name percent-encoded or not), or the value of password= and
 * sslpassword= in key=value words. Returns how many spans it found (at most max). */
static int pg_password_spans(const char *ci, pg_span *out, int max) {
  int n = 0;
  size_t prefix = pg_url_prefix(ci);
  if (prefix > 0) {
    const char *a = ci + prefix;
    size_t alen = strcspn(a, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
      if (a[i] == '@') at = a + i; /* the last @ ends the user info */
    if (at) {
      const char *colon = memchr(a, ':', (size_t)(at - a));
      if (colon && n < max) out[n++] = (pg_span){colon + 1, (size_t)(at - colon - 1)};
    }
    const char *q = strchr(a, '?');
    while (q && n < max) {
      q++;
      size_t klen = strcspn(q, "=&#");
      if (q[klen] == '=' && pg_secret_key(q, klen)) out[n++] = (pg_span){q + klen + 1, strcspn(q + klen + 1, "&#")};
      q = strchr(q, '&');
    }
    return n;
  }
  for (const char *p = ci; (p = pg_next_password(p)) != NULL && n < max; p += 8) {
    const char *w = p;
    if (w - ci >= 3 && strncasecmp(w - 3, "ssl", 3) == 0) w -= 3; /* sslpassword: the key's passphrase */
    if (w != ci && !(w[-1] == ' ' || w[-1] == '\t' || w[-1] == '\n')) continue;
    const char *v = p + 8;
    while (*v == ' ' || *v == '\t') v++;
    if (*v != '=') continue;
    v++;
    while (*v == ' ' || *v == '\t') v++;
    if (*v == '\'') {
      const char *e = ++v;
      while (*e && *e != '\'') e += (*e == '\\' && e[1]) ? 2 : 1;
      out[n++] = (pg_span){v, (size_t)(e - v)};
    } else {
      out[n++] = (pg_span){v, strcspn(v, " \t\n")};
    }
  }
  return n;
}

/* Copies in into out, each occurrence of secret (slen bytes, > 0) written as "***". */
static void pg_replace(const char *in, const char *secret, size_t slen, char *out, size_t outlen) {
  size_t o = 0;
  if (outlen == 0) return;
  while (*in && o + 1 < outlen) {
    if (slen > 0 && strncmp(in, secret, slen) == 0) {
      for (const char *s = "***"; *s && o + 1 < outlen; s++) out[o++] = *s;
      in += slen;
    } else {
      out[o++] = *in++;
    }
  }
  out[o] = '\0';
}

/* Masks one secret in buf (in place, through a copy). */
static void pg_mask_in(char *buf, size_t buflen, const char *secret, size_t slen) {
  if (slen == 0 || buflen == 0) return;
  char *tmp = malloc(buflen);
  if (tmp == NULL) { /* better no message than one that may show the password */
    buf[0] = '\0';
    return;
  }
  pg_replace(buf, secret, slen, tmp, buflen);
  memcpy(buf, tmp, strlen(tmp) + 1);
  free(tmp);
}

void pg_mask_password(const char *conninfo, const char *msg, char *out, size_t outlen) {
  if (outlen == 0) return;
  snprintf(out, outlen, "%s", msg);
  pg_span sp[8];
  int n = conninfo ? pg_password_spans(conninfo, sp, 8) : 0;
  for (int i = 0; i < n; i++) {
    pg_mask_in(out, outlen, sp[i].p, sp[i].len);
    /* libpq may quote the decoded form of a percent-encoded password */
    char dec[512];
    size_t d = pg_unescape(sp[i].p, sp[i].len, dec, sizeof dec);
    pg_mask_in(out, outlen, dec, d);
    /* and the unescaped form of a quoted key=value password ('it\'s') */
    d = 0;
    for (size_t j = 0; j < sp[i].len && d + 1 < sizeof dec; j++) {
      if (sp[i].p[j] == '\\' && j + 1 < sp[i].len) j++;
      dec[d++] = sp[i].p[j];
    }
    pg_mask_in(out, outlen, dec, d);
  }
}

void pg_scrub_conninfo(const char *conninfo, char *out, size_t outlen) {
  if (outlen == 0) return;
  pg_span sp[8];
  int n = pg_password_spans(conninfo, sp, 8);
  size_t o = 0;
  const char *p = conninfo;
  while (*p && o + 1 < outlen) {
    int hit = -1;
    for (int i = 0; i < n; i++)
      if (sp[i].p == p && sp[i].len > 0) hit = i;
    if (hit >= 0) {
      for (const char *s = "***"; *s && o + 1 < outlen; s++) out[o++] = *s;
      p += sp[hit].len;
    } else {
      out[o++] = *p++;
    }
  }
  out[o] = '\0';
}

/* ---- the hosts of a connection string ------------------------------------------------- */

/* TCP keepalives and a bound on data left unacknowledged, where the string sets none:
 * libpq's defaults left a connection to a host gone off the network (a dropped link, a
 * machine powered off) open for the system's two hours of keepalive; with these it is
 * found dead in about a minute (idle 30 s, then 3 probes 10 s apart; data unacknowledged
 * for 30 s). libpq ignores them on a unix socket. */
static const char *const pg_tcp_defaults[][2] = {
    {"keepalives_idle", "30"},
    {"keepalives_interval", "10"},
    {"keepalives_count", "3"},
    {"tcp_user_timeout", "30000"},
};

/* Elements in a list of libpq's (a comma between each, no escapes, as libpq cuts them) */
static int pg_count(const char *s) {
  int n = 1;
  for (; *s; s++)
    if (*s == ',') n++;
  return n;
}

/* Copies list into *at and cuts it at its commas: out[0..n) its elements. Returns the end. */
static char *pg_cut(const char *list, char *at, char **out) {
  size_t len = strlen(list);
  memcpy(at, list, len + 1);
  int k = 0;
  out[k++] = at;
  for (size_t i = 0; i < len; i++)
    if (at[i] == ',') {
      at[i] = '\0';
      out[k++] = at + i + 1;
    }
  return at + len + 1;
}

/* The string's connect_timeout in ms, as libpq reads it: whole seconds, 0 or less for none,
 * 1 taken for 2. One libpq refuses ("2s") is 0 here: libpq's own error comes at the connect. */
static uint64_t pg_url_timeout(const char *v) {
  if (v == NULL) return 0;
  char *end;
  long t = strtol(v, &end, 10);
  while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r') end++;
  if (end == v || *end != '\0' || t <= 0) return 0;
  if (t < 2) t = 2;
  if (t > 86400) t = 86400;
  return (uint64_t)t * 1000;
}

/* Sets kw's value (a keyword libpq knows, once in the string's parse) in val, adding it when
 * the string left it unset: kw and val have room for every keyword libpq knows. */
static void pg_plan_set(pg_plan *p, const char *kw, const char *v) {
  int n = 0;
  for (; p->kw[n]; n++)
    if (strcmp(p->kw[n], kw) == 0) {
      p->val[n] = v;
      return;
    }
  for (PQconninfoOption *o = p->opts; o->keyword; o++)
    if (strcmp(o->keyword, kw) == 0) {
      p->kw[n] = o->keyword;
      p->val[n] = v;
      return;
    }
}

int pg_plan_make(const pgapi *api, const char *conninfo, pg_plan *p, const char **code, char *err,
                 size_t errlen) {
  memset(p, 0, sizeof *p);
  p->i_host = p->i_addr = p->i_port = p->i_target = -1;
  p->nhosts = 1;
  *code = PG_E_INVAL;
  char *perr = NULL;
  p->opts = api->conninfoParse(conninfo, &perr);
  if (p->opts == NULL) {
    char m[512];
    pg_mask_password(conninfo, perr ? perr : "out of memory", m, sizeof m);
    size_t len = strlen(m);
    while (len > 0 && m[len - 1] == '\n') m[--len] = '\0';
    snprintf(err, errlen, "pg: bad connection string: %s", m);
    if (perr) api->freemem(perr);
    return -1;
  }
  size_t nopts = 0;
  for (PQconninfoOption *o = p->opts; o->keyword; o++) nopts++;
  p->kw = calloc(nopts + 1, sizeof *p->kw);
  p->val = calloc(nopts + 1, sizeof *p->val);
  if (p->kw == NULL || p->val == NULL) goto oom;
  int n = 0;
  const char *hostv = NULL, *addrv = NULL, *portv = NULL;
  for (PQconninfoOption *o = p->opts; o->keyword; o++) {
    const char *v = o->val;
    for (size_t d = 0; v == NULL && d < sizeof pg_tcp_defaults / sizeof pg_tcp_defaults[0]; d++)
      if (strcmp(o->keyword, pg_tcp_defaults[d][0]) == 0) v = pg_tcp_defaults[d][1];
    if (v == NULL) continue;
    if (strcmp(o->keyword, "host") == 0) p->i_host = n, hostv = v;
    else if (strcmp(o->keyword, "hostaddr") == 0) p->i_addr = n, addrv = v;
    else if (strcmp(o->keyword, "port") == 0) p->i_port = n, portv = v;
    else if (strcmp(o->keyword, "target_session_attrs") == 0) p->i_target = n;
    else if (strcmp(o->keyword, "connect_timeout") == 0) p->url_timeout_ms = pg_url_timeout(v);
    p->kw[n] = o->keyword;
    p->val[n] = v;
    n++;
  }
  /* the hosts as libpq counts them: hostaddr's elements, else host's, else one */
  int nh = hostv && *hostv ? pg_count(hostv) : 0;
  int na = addrv && *addrv ? pg_count(addrv) : 0;
  int np = portv && *portv ? pg_count(portv) : 0;
  int hosts = na ? na : nh ? nh : 1;
  if (hosts > PG_MAX_HOSTS) {
    snprintf(err, errlen, "pg: bad connection string: it names %d hosts, more than %d", hosts, PG_MAX_HOSTS);
    return -1;
  }
  /* lists libpq refuses (2 hostaddrs for 3 hosts, 3 ports for 2) are left to it, and its
   * message; so is an order across hosts that one host at a time cannot keep: a standby
   * anywhere before any primary (prefer-standby), a random order (load_balance_hosts) */
  const char *attrs = pg_plan_get(p, "target_session_attrs");
  const char *balance = pg_plan_get(p, "load_balance_hosts");
  if (hosts == 1 || (nh && na && nh != na) || (np > 1 && np != hosts) ||
      (attrs && strcmp(attrs, "prefer-standby") == 0) || (balance && strcmp(balance, "disable") != 0))
    return 0;
  p->lists = malloc((nh ? strlen(hostv) + 1 : 0) + (na ? strlen(addrv) + 1 : 0) + (np > 1 ? strlen(portv) + 1 : 0));
  if (p->lists == NULL) goto oom;
  char *at = p->lists;
  if (nh) {
    if ((p->host = calloc((size_t)hosts, sizeof *p->host)) == NULL) goto oom;
    at = pg_cut(hostv, at, p->host);
  }
  if (na) {
    if ((p->addr = calloc((size_t)hosts, sizeof *p->addr)) == NULL) goto oom;
    at = pg_cut(addrv, at, p->addr);
  }
  if (np > 1) {
    if ((p->port = calloc((size_t)hosts, sizeof *p->port)) == NULL) goto oom;
    pg_cut(portv, at, p->port);
  }
  p->nhosts = hosts;
  return 0;
oom:
  *code = PG_E_CONNECT;
  snprintf(err, errlen, "pg: out of memory");
  return -1;
}

void pg_plan_host(pg_plan *p, int i) {
  if (i < 0 || i >= p->nhosts || p->nhosts < 2) return;
  /* an empty element ("a,,b") is libpq's default for that host: PQconnectStartParams skips
   * an empty value */
  if (p->host) p->val[p->i_host] = p->host[i];
  if (p->addr) p->val[p->i_addr] = p->addr[i];
  if (p->port) p->val[p->i_port] = p->port[i];
}

const char *pg_plan_get(const pg_plan *p, const char *kw) {
  for (int i = 0; p->kw && p->kw[i]; i++)
    if (strcmp(p->kw[i], kw) == 0) return p->val[i];
  return NULL;
}

void pg_plan_label(const pg_plan *p, int i, char *out, size_t outlen) {
  const char *h = NULL;
  if (p->nhosts > 1 && i >= 0 && i < p->nhosts) {
    h = p->host && *p->host[i] ? p->host[i] : p->addr && *p->addr[i] ? p->addr[i] : NULL;
  } else {
    h = pg_plan_get(p, "host");
    if (h == NULL || !*h) h = pg_plan_get(p, "hostaddr");
  }
  if (h == NULL || !*h) h = "the default host";
  if (p->nhosts > 1 && p->port && i >= 0 && i < p->nhosts && *p->port[i]) snprintf(out, outlen, "%s:%s", h, p->port[i]);
  else snprintf(out, outlen, "%s", h);
}

void pg_plan_free(const pgapi *api, pg_plan *p) {
  free(p->kw);
  free(p->val);
  free(p->lists);
  free(p->host);
  free(p->addr);
  free(p->port);
  if (p->opts) api->conninfoFree(p->opts);
  memset(p, 0, sizeof *p);
}

/* Writes a message for this connection, the password libpq holds masked. */
static void pg_set_msg(pg_conn *c, char *buf, size_t buflen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void pg_set_msg(pg_conn *c, char *buf, size_t buflen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, buflen, fmt, ap);
  va_end(ap);
  /* libpq's messages may span lines ("...unexpectedly\n\tThis probably means..."): one
   * line, for logs and the CLI */
  size_t o = 0;
  for (size_t i = 0; buf[i]; i++) {
    if (buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r') {
      if (o > 0 && buf[o - 1] != ' ') buf[o++] = ' ';
    } else {
      buf[o++] = buf[i];
    }
  }
  buf[o] = '\0';
  size_t len = o;
  while (len > 0 && buf[len - 1] == ' ') buf[--len] = '\0';
  const char *pw = c->pq ? c->api.pass(c->pq) : NULL;
  if (pw && *pw) pg_mask_in(buf, buflen, pw, strlen(pw));
}

const char *pg_code_for_sqlstate(const char *s) {
  if (s == NULL || strlen(s) != 5) return PG_E_SQL;
  if (strncmp(s, "23", 2) == 0) return PG_E_CONSTRAINT;
  if (strncmp(s, "40", 2) == 0) return PG_E_CONFLICT;
  if (strncmp(s, "28", 2) == 0) return PG_E_AUTH;
  if (strcmp(s, "57014") == 0) return PG_E_CANCELED;
  if (strcmp(s, "55P03") == 0) return PG_E_BUSY;
  if (strncmp(s, "57P", 3) == 0 || strncmp(s, "08", 2) == 0) return PG_E_LOST;
  return PG_E_SQL;
}

/* ---- handles -------------------------------------------------------------------------- */

static void pg_free_handle(uv_handle_t *h) { free(h); }

static void pg_unwatch(pg_conn *c) {
  if (c->poll) {
    c->poll->data = NULL;
    uv_close((uv_handle_t *)c->poll, pg_free_handle); /* stops it now; frees it later */
    c->poll = NULL;
  }
  c->poll_events = 0;
  c->flushing = 0;
}

static void pg_on_io(uv_poll_t *h, int status, int events);
static void pg_ref(pg_conn *c);
static void pg_on_notes_timeout(uv_timer_t *t);
static int pg_prepared(pg_conn *c);
static void pg_stop_check(pg_conn *c);

/* A new uv_poll on the current PQsocket. While connecting this is made anew at each step:
 * libpq may close the socket and open another (next host or address, SSL retry), perhaps
 * with the same number, and a watcher of the old one must not stay registered. */
static int pg_rewatch(pg_conn *c, int events) {
  pg_unwatch(c);
  int fd = c->api.socket(c->pq);
  if (fd < 0) return -1;
  uv_poll_t *p = malloc(sizeof *p);
  if (p == NULL) return -1;
  if (uv_poll_init(c->loop, p, fd) != 0) {
    free(p);
    return -1;
  }
  p->data = c;
  c->poll = p;
  c->poll_events = events;
  uv_poll_start(p, events, pg_on_io);
  pg_ref(c);
  return 0;
}

static void pg_watch(pg_conn *c, int events) {
  if (c->poll == NULL || c->poll_events == events) return;
  c->poll_events = events;
  uv_poll_start(c->poll, events, pg_on_io);
}

/* Starts a timeout measured from the real now: the loop caches its time at each turn, and
 * a program that blocked between turns (a test waiting on a child process for a minute)
 * would otherwise see a timeout fire at once. 0: no timeout. */
static void pg_start_timer(uv_loop_t *loop, uv_timer_t *t, uv_timer_cb cb, uint64_t ms) {
  if (!ms) return;
  uv_update_time(loop);
  uv_timer_start(t, cb, ms, 0);
}

/* An idle connection does not keep the loop alive (luv's unref'd handles): a program that
 * ends with a pool's connections open ends. Connecting, a query in flight or a task
 * waiting for notifications does. */
static void pg_ref(pg_conn *c) {
  if (c->poll == NULL) return;
  if (c->state == PG_CONNECTING || c->state == PG_BUSY || c->notes_waiting) uv_ref((uv_handle_t *)c->poll);
  else uv_unref((uv_handle_t *)c->poll);
}

/* Announces what happened; the last thing a loop callback does (fn may close c). */
static void pg_emit(pg_conn *c) {
  pg_ref(c);
  int what = c->pending;
  c->pending = 0;
  if (what && c->fn) c->fn(c, c->ud, what);
}

/* ---- cancelling on the server --------------------------------------------------------- */

/* The job may outlive its connection (closed while the cancel is on its way), so it holds
 * libpq through a table of its own. PQcancel blocks until the server answers, and a server
 * that stopped answering (frozen, a dropped network) never does: the cancel runs on a
 * detached thread of its own, not the loop's threadpool, so that it holds neither the loop
 * (the process's exit waited for it: `orket serve` stopped with a query out never ended)
 * nor a threadpool thread (four such cancels held every file operation and DNS lookup).
 * There is one for each query abandoned, and a connection draining an abandoned query is
 * closed, never reused (orket.store.pgpool): against a server that stopped answering, a
 * new connection's connect times out and sends no query, so the threads stay as few as
 * the queries that were out when it stopped. */

typedef struct pg_cancel_job {
  pgapi api;
  PGcancel *cancel;
} pg_cancel_job;

static void pg_cancel_free(pg_cancel_job *j) {
  if (j->cancel) j->api.freeCancel(j->cancel);
  pgapi_close(&j->api);
  free(j);
}

static void *pg_cancel_thread(void *arg) {
  pg_cancel_job *j = arg;
  char buf[256];
  (void)j->api.cancel(j->cancel, buf, sizeof buf); /* best effort: the result is discarded anyway */
  pg_cancel_free(j);
  return NULL;
}

static void pg_cancel_on_server(pg_conn *c) {
  pg_cancel_job *j = calloc(1, sizeof *j);
  char err[256];
  if (j == NULL || pgapi_open(&j->api, err, sizeof err) != 0) { /* libpq is loaded already: cannot fail */
    free(j);
    return;
  }
  j->cancel = c->api.getCancel(c->pq);
  pthread_attr_t attr;
  pthread_t th;
  int made = -1;
  if (j->cancel && pthread_attr_init(&attr) == 0) {
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* the stop signals stay the main thread's (as for the loop's threadpool) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    made = pthread_create(&th, &attr, pg_cancel_thread, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
  }
  if (made != 0) pg_cancel_free(j);
}

/* ---- results -------------------------------------------------------------------------- */

static void pg_clear_result(pg_conn *c) {
  if (c->result) c->api.clear(c->result);
  c->result = NULL;
}

static int pg_is_error(const pg_conn *c, const PGresult *r) {
  ExecStatusType s = c->api.resultStatus(r);
  return s == PGRES_FATAL_ERROR || s == PGRES_BAD_RESPONSE;
}

/* Keeps the first error, else the last result. Returns -1 for a result this API cannot
 * carry on with (COPY). */
static int pg_keep(pg_conn *c, PGresult *r) {
  ExecStatusType s = c->api.resultStatus(r);
  if (s == PGRES_COPY_IN || s == PGRES_COPY_OUT || s == PGRES_COPY_BOTH) {
    c->api.clear(r);
    return -1;
  }
  if (c->result && pg_is_error(c, c->result)) c->api.clear(r);
  else {
    pg_clear_result(c);
    c->result = r;
  }
  return 0;
}

/* The query ended: hand its outcome over, or drop it when nobody waits. */
static void pg_query_done(pg_conn *c) {
  uv_timer_stop(c->timer);
  pg_stop_check(c);
  if (c->state == PG_BUSY) c->state = PG_IDLE;
  if (c->draining) {
    c->draining = 0;
    pg_clear_result(c);
    return;
  }
  c->pending |= PG_EV_QUERY;
}

/* The connection is gone (or unusable): remember why, stop watching it (the fd may be
 * closed already and its number reused) and end the query in flight. */
static void pg_lost(pg_conn *c, const char *why) {
  int was_busy = c->state == PG_BUSY;
  if (was_busy) {
    for (int i = 0; i < 8; i++) { /* libpq turns the loss into an error result */
      PGresult *r = c->api.getResult(c->pq);
      if (r == NULL) break;
      if (pg_keep(c, r) != 0) break;
    }
  }
  const char *pq = c->api.errorMessage(c->pq);
  pg_set_msg(c, c->broken, sizeof c->broken, "pg: connection lost: %s", why ? why : (pq && *pq ? pq : "closed"));
  c->state = PG_BROKEN;
  pg_unwatch(c);
  uv_timer_stop(c->timer);
  pg_stop_check(c);
  if (was_busy && !(c->result && pg_is_error(c, c->result))) {
    pg_clear_result(c);
    c->code = PG_E_LOST;
    snprintf(c->msg, sizeof c->msg, "%s", c->broken);
  }
  if (was_busy && !c->draining) c->pending |= PG_EV_QUERY;
  if (was_busy && c->draining) pg_clear_result(c);
  c->draining = 0;
  /* The task waiting for notifications learns it from the loop, on the next turn: pg_lost
   * also runs inside pg_send, where nobody may be resumed. */
  if (c->notes_waiting) uv_timer_start(c->notes_timer, pg_on_notes_timeout, 0, 0);
}

static void pg_collect_notes(pg_conn *c) {
  PGnotify *n;
  int got = 0;
  while ((n = c->api.notifies(c->pq)) != NULL) {
    if (c->nnotes >= PG_MAX_NOTES) {
      c->api.freemem(n);
      c->dropped++;
      continue;
    }
    if (c->nnotes == c->capnotes) {
      size_t cap = c->capnotes ? c->capnotes * 2 : 16;
      PGnotify **p = realloc(c->notes, cap * sizeof *p);
      if (p == NULL) {
        c->api.freemem(n);
        c->dropped++;
        continue;
      }
      c->notes = p;
      c->capnotes = cap;
    }
    c->notes[c->nnotes++] = n;
    got = 1;
  }
  if (got && c->notes_waiting) {
    c->notes_waiting = 0;
    uv_timer_stop(c->notes_timer);
    c->pending |= PG_EV_NOTES;
  }
}

static void pg_collect_results(pg_conn *c) {
  while (c->state == PG_BUSY && !c->api.isBusy(c->pq)) {
    PGresult *r = c->api.getResult(c->pq);
    if (r == NULL) {
      if (c->preparing && pg_prepared(c)) continue;
      pg_query_done(c);
      return;
    }
    if (c->preparing && pg_is_error(c, r)) c->prep_failed = 1;
    if (pg_keep(c, r) != 0) {
      pg_lost(c, "COPY is not supported on this connection");
      return;
    }
  }
}

/* ---- connecting ----------------------------------------------------------------------- */

static void pg_on_timeout(uv_timer_t *t);
static void pg_drop_notice(void *arg, const char *message);

/* The connect is over without a connection: c->msg and c->code say why. */
static void pg_connect_over(pg_conn *c) {
  c->state = PG_BROKEN;
  snprintf(c->broken, sizeof c->broken, "%s", c->msg);
  pg_unwatch(c);
  uv_timer_stop(c->timer);
  c->pending |= PG_EV_QUERY;
}

static void pg_connect_failed(pg_conn *c, const char *code, const char *what, const char *why) {
  c->code = code;
  pg_set_msg(c, c->msg, sizeof c->msg, "pg: %s: %s", what, why);
  pg_connect_over(c);
}

/* The deadline of the host tried now (pg_opts): the string's connect_timeout, else the
 * caller's, cut to PG_NEXT_HOST_MS when another host follows. 0: none. */
static uint64_t pg_host_ms(const pg_conn *c) {
  if (c->plan.url_timeout_ms) return c->plan.url_timeout_ms;
  uint64_t ms = c->o.connect_timeout_ms;
  if (c->cur + 1 < c->plan.nhosts && (ms == 0 || ms > PG_NEXT_HOST_MS)) ms = PG_NEXT_HOST_MS;
  return ms;
}

/* total_timeout_ms ran out: started, while the host tried now had not answered yet */
static void pg_total_timed_out(pg_conn *c, int started) {
  c->code = PG_E_TIMEOUT;
  unsigned long long ms = (unsigned long long)c->o.total_timeout_ms;
  if (c->plan.nhosts < 2) {
    snprintf(c->msg, sizeof c->msg, "pg: connecting: timed out after %llu ms", ms);
    return;
  }
  char label[256] = "";
  if (started) pg_plan_label(&c->plan, c->cur, label, sizeof label);
  pg_set_msg(c, c->msg, sizeof c->msg, "pg: connecting: timed out after %llu ms (%s%s%s%s)", ms, c->tried,
           *c->tried && started ? "; " : "", label, started ? ": no answer yet" : "");
}

/* The host tried now failed (why: ours, or NULL for libpq's message): it is noted for the
 * message, its connection closed, and the next host is up. */
static void pg_host_failed(pg_conn *c, const char *why, int timed_out) {
  char m[1024];
  if (why) snprintf(m, sizeof m, "%s", why);
  else pg_set_msg(c, m, sizeof m, "%s", c->pq ? c->api.errorMessage(c->pq) : "out of memory");
  if (c->plan.nhosts < 2) { /* one host: the messages it always had */
    c->code = timed_out ? PG_E_TIMEOUT : PG_E_CONNECT;
    pg_set_msg(c, c->msg, sizeof c->msg, "pg: %s: %s", timed_out ? "connecting" : "cannot connect", m);
  } else {
    char label[256];
    pg_plan_label(&c->plan, c->cur, label, sizeof label);
    size_t len = strlen(c->tried);
    snprintf(c->tried + len, sizeof c->tried - len, "%s%s: %s", len ? "; " : "", label, m);
  }
  if (!timed_out) c->all_timed_out = 0;
  pg_unwatch(c); /* before PQfinish closes the socket */
  uv_timer_stop(c->timer);
  if (c->pq) c->api.finish(c->pq);
  c->pq = NULL;
  c->cur++;
}

/* Starts connecting to the next host that can be started, its deadline armed (or what is
 * left of total_timeout_ms, when that comes first). Returns 0 when one is under way, -1 when
 * none is left (then c->msg and c->code say why). */
static int pg_try_hosts(pg_conn *c) {
  while (c->cur < c->plan.nhosts) {
    uint64_t ms = pg_host_ms(c);
    c->timer_total = 0;
    if (c->total_at) {
      uv_update_time(c->loop);
      uint64_t now = uv_now(c->loop);
      if (now >= c->total_at) {
        pg_total_timed_out(c, 0);
        return -1;
      }
      if (ms == 0 || c->total_at - now <= ms) ms = c->total_at - now, c->timer_total = 1;
    }
    pg_plan_host(&c->plan, c->cur);
    c->pq = c->api.connectStartParams(c->plan.kw, c->plan.val, 0);
    if (c->pq == NULL) {
      pg_host_failed(c, "out of memory", 0);
      continue;
    }
    c->api.setNoticeProcessor(c->pq, pg_drop_notice, NULL);
    /* (PQconnectStart's contract: as if PQconnectPoll had said PGRES_POLLING_WRITING) */
    if (c->api.status(c->pq) == CONNECTION_BAD || pg_rewatch(c, UV_WRITABLE) != 0) {
      pg_host_failed(c, NULL, 0);
      continue;
    }
    c->timeout_ms = ms;
    pg_start_timer(c->loop, c->timer, pg_on_timeout, ms);
    return 0;
  }
  if (c->plan.nhosts > 1) {
    c->code = c->all_timed_out ? PG_E_TIMEOUT : PG_E_CONNECT;
    pg_set_msg(c, c->msg, sizeof c->msg, "pg: cannot connect to any of %d hosts: %s", c->plan.nhosts, c->tried);
  }
  return -1;
}

/* Connected to host c->cur: what a liveness check needs of the connect is kept, the rest
 * of the plan freed. */
static void pg_connected(pg_conn *c) {
  if (c->plan.nhosts > 1) {
    pg_plan_label(&c->plan, c->cur, c->label, sizeof c->label);
  } else {
    const char *h = c->api.host(c->pq);
    snprintf(c->label, sizeof c->label, "%s", h && *h ? h : "the server");
  }
  uint64_t ms = c->o.connect_timeout_ms;
  c->probe_ms = c->plan.url_timeout_ms ? c->plan.url_timeout_ms : (ms && ms < PG_NEXT_HOST_MS ? ms : PG_NEXT_HOST_MS);
  pg_plan_free(&c->api, &c->plan);
}

static void pg_connect_step(pg_conn *c) {
  switch (c->api.connectPoll(c->pq)) {
  case PGRES_POLLING_OK:
    uv_timer_stop(c->timer);
    if (c->api.setnonblocking(c->pq, 1) != 0 || pg_rewatch(c, UV_READABLE) != 0) {
      pg_connect_failed(c, PG_E_CONNECT, "cannot watch the connection", c->api.errorMessage(c->pq));
      return;
    }
    pg_connected(c);
    c->state = PG_IDLE;
    c->code = NULL;
    c->pending |= PG_EV_QUERY;
    pg_collect_notes(c); /* none yet, but a NOTICE/NOTIFY could ride on the handshake */
    return;
  case PGRES_POLLING_READING:
    if (pg_rewatch(c, UV_READABLE) != 0) pg_connect_failed(c, PG_E_CONNECT, "cannot connect", "no socket");
    return;
  case PGRES_POLLING_WRITING:
    if (pg_rewatch(c, UV_WRITABLE) != 0) pg_connect_failed(c, PG_E_CONNECT, "cannot connect", "no socket");
    return;
  default: /* this host refused (or read-only, where target_session_attrs wants a primary) */
    pg_host_failed(c, NULL, 0);
    if (pg_try_hosts(c) != 0) pg_connect_over(c);
    return;
  }
}

/* ---- the liveness check of a statement in flight (pg_opts.liveness_ms) ----------------- */

static pg_conn *pg_open_ex(uv_loop_t *loop, const char *conninfo, const pg_opts *o, const pg_only *only,
                           pg_event_fn fn, void *ud, const char **code, char *err, size_t errlen);
static void pg_give_up_as(pg_conn *c, const char *why, const char *sqlstate);

/* Stops the check: the statement ended, was abandoned or given up, or the connection closes. */
static void pg_stop_check(pg_conn *c) {
  if (c->check_timer) uv_timer_stop(c->check_timer);
  if (c->probe) {
    pg_conn *p = c->probe;
    c->probe = NULL;
    pg_close(p);
  }
}

static void pg_on_check(uv_timer_t *t);

/* The check's outcome: a server that answered leaves the statement to go on (checked again
 * later); one that did not has it fail as the store's loss (SQLSTATE 08006,
 * connection_failure: whether it ran is not known, as for a lost connection). No cancel is
 * sent: a server that answers no connection would not take one either, and closing the
 * socket is what ends the session (its transaction rolled back) once the server goes on. */
static void pg_checked(pg_conn *c, int answered) {
  if (c->state != PG_BUSY || c->draining) return;
  if (answered) {
    pg_start_timer(c->loop, c->check_timer, pg_on_check, c->o.liveness_ms);
    return;
  }
  uv_update_time(c->loop);
  char why[1024];
  snprintf(why, sizeof why, "pg: no answer from %s for %llu ms, nor to a new connection to it within %llu ms: the "
           "server is taken for gone (the connection is given up)", c->label,
           (unsigned long long)(uv_now(c->loop) - c->sent_at), (unsigned long long)c->probe_ms);
  pg_give_up_as(c, why, "08006");
}

/* Whether a failed connect was answered by the server itself: a refusal of its own
 * ("FATAL:  sorry, too many clients already", the server shutting down), as the pool's
 * probe reads it (orket.store.pgpool), not a timeout, a refused socket or an unreachable host */
static int pg_server_refused(const char *code, const char *msg) {
  return (code == NULL || strcmp(code, PG_E_TIMEOUT) != 0) && strstr(msg, "FATAL:") != NULL;
}

/* The check's connection is made or failed (inside its own event: closing it is its last
 * step, pg.h). */
static void pg_on_probe(pg_conn *p, void *ud, int what) {
  pg_conn *c = ud;
  if (!(what & PG_EV_QUERY) || c->probe != p) return;
  int answered = p->state == PG_IDLE || pg_server_refused(p->code, p->msg);
  c->probe = NULL;
  pg_close(p);
  pg_checked(c, answered);
}

/* liveness_ms passed without an answer: a connection of its own to the host this one reached
 * (at the address it reached, whatever its session takes), bounded by c->probe_ms. */
static void pg_on_check(uv_timer_t *t) {
  pg_conn *c = t->data;
  if (c == NULL || c->state != PG_BUSY || c->draining || c->probe || c->conninfo == NULL) return;
  pg_opts po = {.connect_timeout_ms = c->probe_ms, .total_timeout_ms = c->probe_ms};
  pg_only only = {.host = c->cur, .addr = c->api.hostaddr(c->pq)};
  const char *code;
  char err[1024];
  pg_conn *p = pg_open_ex(c->loop, c->conninfo, &po, &only, pg_on_probe, c, &code, err, sizeof err);
  if (p == NULL) {
    pg_checked(c, pg_server_refused(code, err));
    return;
  }
  c->probe = p;
}

/* ---- the loop's callbacks ------------------------------------------------------------- */

static void pg_on_io(uv_poll_t *h, int status, int events) {
  pg_conn *c = h->data;
  if (c == NULL) return;
  if (c->state == PG_CONNECTING) {
    pg_connect_step(c); /* a poll error shows as a failed step */
  } else if (status < 0) {
    pg_lost(c, uv_strerror(status));
  } else {
    if (c->flushing) {
      if ((events & UV_READABLE) && !c->api.consumeInput(c->pq)) {
        pg_lost(c, NULL);
        pg_emit(c);
        return;
      }
      int f = c->api.flush(c->pq);
      if (f < 0) {
        pg_lost(c, NULL);
        pg_emit(c);
        return;
      }
      c->flushing = f == 1;
      pg_watch(c, c->flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE);
    } else if (events & UV_READABLE) {
      if (!c->api.consumeInput(c->pq)) {
        pg_lost(c, NULL);
        pg_emit(c);
        return;
      }
    }
    pg_collect_notes(c);
    if (!c->flushing) pg_collect_results(c);
    if (c->state != PG_BROKEN && c->api.status(c->pq) == CONNECTION_BAD) pg_lost(c, NULL);
  }
  pg_emit(c);
}

static void pg_on_timeout(uv_timer_t *t) {
  pg_conn *c = t->data;
  if (c == NULL) return;
  if (c->state == PG_CONNECTING) {
    if (c->timer_total) {
      pg_total_timed_out(c, 1);
      pg_connect_over(c);
    } else { /* this host's deadline: the next one, if any */
      char ms[48];
      snprintf(ms, sizeof ms, "timed out after %llu ms", (unsigned long long)c->timeout_ms);
      pg_host_failed(c, ms, 1);
      if (pg_try_hosts(c) != 0) pg_connect_over(c);
    }
  } else if (c->state == PG_BUSY && !c->draining) {
    /* The waiter gets its answer now; the server is asked to stop, and the connection
     * stays busy until the cancelled query's result has been read and dropped. */
    c->code = PG_E_TIMEOUT;
    snprintf(c->msg, sizeof c->msg, "pg: query timed out after %llu ms (cancelled)",
             (unsigned long long)c->timeout_ms);
    c->sqlstate[0] = '\0';
    pg_clear_result(c);
    c->draining = 1;
    pg_stop_check(c);
    pg_cancel_on_server(c);
    c->pending |= PG_EV_QUERY;
  }
  pg_emit(c);
}

static void pg_on_notes_timeout(uv_timer_t *t) {
  pg_conn *c = t->data;
  if (c == NULL || !c->notes_waiting) return;
  c->notes_waiting = 0;
  c->notes_timed_out = 1;
  c->pending |= PG_EV_NOTES;
  pg_emit(c);
}

/* ---- the API -------------------------------------------------------------------------- */

/* libpq prints notices (NOTICE: ..., the server's warnings) on stderr by default; library
 * code prints nothing, and no caller needs them yet. */
static void pg_drop_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static uv_timer_t *pg_new_timer(uv_loop_t *loop, pg_conn *c) {
  uv_timer_t *t = malloc(sizeof *t);
  if (t == NULL) return NULL;
  uv_timer_init(loop, t);
  t->data = c;
  return t;
}

static pg_conn *pg_open_ex(uv_loop_t *loop, const char *conninfo, const pg_opts *o, const pg_only *only,
                           pg_event_fn fn, void *ud, const char **code, char *err, size_t errlen) {
  *code = PG_E_CONNECT;
  pg_conn *c = calloc(1, sizeof *c);
  if (c == NULL) {
    snprintf(err, errlen, "pg: out of memory");
    return NULL;
  }
  char lerr[512];
  if (pgapi_open(&c->api, lerr, sizeof lerr) != 0) {
    snprintf(err, errlen, "pg: %s", lerr);
    free(c);
    return NULL;
  }
  if (pg_plan_make(&c->api, conninfo, &c->plan, code, err, errlen) != 0) {
    pg_close(c);
    return NULL;
  }
  if (only) { /* a liveness check: that host alone, at that address, any session */
    pg_plan_host(&c->plan, only->host);
    c->plan.nhosts = 1;
    if (only->addr && *only->addr && (c->only_addr = strdup(only->addr)) != NULL)
      pg_plan_set(&c->plan, "hostaddr", c->only_addr);
    if (c->plan.i_target >= 0) pg_plan_set(&c->plan, "target_session_attrs", "any");
  }
  *code = PG_E_CONNECT;
  c->o = *o;
  c->loop = loop;
  c->fn = fn;
  c->ud = ud;
  c->state = PG_CONNECTING;
  c->all_timed_out = 1;
  c->timer = pg_new_timer(loop, c);
  c->notes_timer = pg_new_timer(loop, c);
  if (o->liveness_ms && !only) {
    c->check_timer = pg_new_timer(loop, c);
    c->conninfo = strdup(conninfo);
  }
  if (c->timer == NULL || c->notes_timer == NULL || (o->liveness_ms && !only && (c->check_timer == NULL || c->conninfo == NULL))) {
    snprintf(err, errlen, "pg: out of memory");
    pg_close(c);
    return NULL;
  }
  if (o->total_timeout_ms) {
    uv_update_time(loop);
    c->total_at = uv_now(loop) + o->total_timeout_ms;
  }
  if (pg_try_hosts(c) != 0) {
    *code = c->code;
    snprintf(err, errlen, "%s", c->msg);
    pg_close(c);
    return NULL;
  }
  return c;
}

pg_conn *pg_open(uv_loop_t *loop, const char *conninfo, const pg_opts *o, pg_event_fn fn, void *ud,
                 const char **code, char *err, size_t errlen) {
  return pg_open_ex(loop, conninfo, o, NULL, fn, ud, code, err, errlen);
}

static void pg_close_timer(uv_timer_t *t) {
  if (t == NULL) return;
  t->data = NULL;
  uv_close((uv_handle_t *)t, pg_free_handle);
}

void pg_close(pg_conn *c) {
  if (c == NULL) return;
  pg_stop_check(c);
  pg_unwatch(c); /* before PQfinish closes the socket */
  pg_close_timer(c->timer);
  pg_close_timer(c->notes_timer);
  pg_close_timer(c->check_timer);
  pg_clear_result(c);
  if (c->pq) c->api.finish(c->pq);
  pg_notes_clear(c);
  free(c->notes);
  for (int i = 0; i < c->nstmts; i++) free(c->stmts[i].key);
  free(c->stmts);
  free(c->dvalues);
  pg_plan_free(&c->api, &c->plan);
  free(c->conninfo);
  free(c->only_addr);
  pgapi_close(&c->api); /* last: the calls above are libpq's */
  free(c);
}

pg_state pg_get_state(const pg_conn *c) { return c->state; }

const pgapi *pg_api(const pg_conn *c) { return &c->api; }

pg_state pg_probe(pg_conn *c) {
  if (c->state != PG_IDLE) return c->state;
  if (!c->api.consumeInput(c->pq) || c->api.status(c->pq) == CONNECTION_BAD) {
    pg_lost(c, NULL);
  } else {
    pg_collect_notes(c);
    if (c->pending & PG_EV_NOTES) { /* a waiter is woken from the loop, not from here */
      uv_timer_start(c->notes_timer, pg_on_notes_timeout, 0, 0);
      c->notes_waiting = 1;
    }
  }
  c->pending = 0;
  pg_ref(c);
  return c->state;
}

int pg_backend_pid(const pg_conn *c) { return c->state == PG_BROKEN ? 0 : c->api.backendPID(c->pq); }

/* ---- prepared statements -------------------------------------------------------------- */

static uint64_t pg_hash(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

/* The key: the text, a NUL, the parameter types' bytes. NULL when too long to keep. */
static char *pg_stmt_key(const char *sql, int n, const Oid *types, size_t *len) {
  size_t sl = strlen(sql);
  size_t tl = (size_t)n * sizeof(Oid);
  if (sl + 1 + tl > PG_MAX_STMT_KEY) return NULL;
  char *k = malloc(sl + 1 + tl);
  if (k == NULL) return NULL;
  memcpy(k, sql, sl + 1);
  if (tl) memcpy(k + sl + 1, types, tl);
  *len = sl + 1 + tl;
  return k;
}

static int pg_stmt_find(const pg_conn *c, const char *key, size_t len, uint64_t h) {
  for (int i = 0; i < c->nstmts; i++) {
    const pg_stmt *st = &c->stmts[i];
    if (st->hash == h && st->keylen == len && memcmp(st->key, key, len) == 0) return i;
  }
  return -1;
}

static void pg_stmt_forget(pg_conn *c, int i) {
  free(c->stmts[i].key);
  c->stmts[i] = c->stmts[--c->nstmts];
}

static void pg_stmt_name(unsigned id, char *buf, size_t len) { snprintf(buf, len, "orket_%u", id); }

static void pg_free_deferred(pg_conn *c) {
  free(c->dvalues);
  c->dvalues = NULL;
  c->dn = 0;
}

/* Keeps a copy of the parameters for the execution that follows the PREPARE (the
 * caller's strings need not outlive pg_send). One block: pointers, then the texts. */
static int pg_defer(pg_conn *c, int n, const char *const *values) {
  size_t total = (size_t)n * sizeof(char *);
  for (int i = 0; i < n; i++)
    if (values[i]) total += strlen(values[i]) + 1;
  char **v = malloc(total ? total : 1);
  if (v == NULL) return -1;
  char *text = (char *)(v + n);
  for (int i = 0; i < n; i++) {
    if (values[i] == NULL) {
      v[i] = NULL;
      continue;
    }
    size_t l = strlen(values[i]) + 1;
    memcpy(text, values[i], l);
    v[i] = text;
    text += l;
  }
  c->dvalues = v;
  c->dn = n;
  return 0;
}

/* Makes room for one more statement: 0, or -1 at PG_MAX_STMTS or without memory. */
static int pg_stmt_room(pg_conn *c) {
  if (c->nstmts >= PG_MAX_STMTS) return -1;
  if (c->nstmts < c->capstmts) return 0;
  int cap = c->capstmts ? c->capstmts * 2 : 32;
  pg_stmt *p = realloc(c->stmts, (size_t)cap * sizeof *p);
  if (p == NULL) return -1;
  c->stmts = p;
  c->capstmts = cap;
  return 0;
}

/* Sends a statement: by name when this connection has prepared it; else PREPARE first
 * (its execution follows in pg_prepared) while there is room; else unnamed. Returns
 * libpq's send result. */
static int pg_send_stmt(pg_conn *c, const char *sql, int n, const Oid *types, const char *const *values) {
  size_t len = 0;
  char *key = pg_stmt_key(sql, n, types, &len);
  uint64_t h = key ? pg_hash(key, len) : 0;
  int i = key ? pg_stmt_find(c, key, len, h) : -1;
  char name[32];
  if (i >= 0 && c->stmts[i].ready) {
    free(key);
    pg_stmt_name(c->stmts[i].id, name, sizeof name);
    return c->api.sendQueryPrepared(c->pq, name, n, values, NULL, NULL, 0);
  }
  /* unnamed: a text too long to keep, one found but not ready (only a lost connection
   * leaves one), no room, or no memory for the execution's parameters */
  if (key == NULL || i >= 0 || pg_stmt_room(c) != 0 || pg_defer(c, n, values) != 0) {
    free(key);
    return c->api.sendQueryParams(c->pq, sql, n, types, values, NULL, NULL, 0);
  }
  pg_stmt *st = &c->stmts[c->nstmts];
  st->hash = h;
  st->key = key;
  st->keylen = len;
  st->id = ++c->next_stmt;
  st->ready = 0;
  pg_stmt_name(st->id, name, sizeof name);
  if (!c->api.sendPrepare(c->pq, name, sql, n, types)) {
    free(key);
    pg_free_deferred(c);
    return 0;
  }
  c->nstmts++;
  c->preparing = c->nstmts;
  c->prep_failed = 0;
  return 1;
}

/* The PREPARE's results are all in. Returns 1 when its execution was sent (the query goes
 * on), 0 when the query ends here: the PREPARE failed (its error is the statement's: the
 * text is what is wrong, or the transaction is), nobody waits any more, or the execution
 * could not be sent. */
static int pg_prepared(pg_conn *c) {
  int i = c->preparing - 1;
  c->preparing = 0;
  if (c->prep_failed || (c->result && pg_is_error(c, c->result))) {
    pg_stmt_forget(c, i);
    pg_free_deferred(c);
    return 0;
  }
  c->stmts[i].ready = 1;
  if (c->draining) {
    pg_free_deferred(c);
    return 0;
  }
  pg_clear_result(c);
  char name[32];
  pg_stmt_name(c->stmts[i].id, name, sizeof name);
  int sent = c->api.sendQueryPrepared(c->pq, name, c->dn, (const char *const *)c->dvalues, NULL, NULL, 0);
  pg_free_deferred(c);
  if (!sent) {
    c->code = c->api.status(c->pq) == CONNECTION_BAD ? PG_E_LOST : PG_E_SQL;
    pg_set_msg(c, c->msg, sizeof c->msg, "pg: %s", c->api.errorMessage(c->pq));
    return 0;
  }
  int f = c->api.flush(c->pq);
  if (f < 0) {
    c->code = PG_E_LOST;
    pg_set_msg(c, c->msg, sizeof c->msg, "pg: %s", c->api.errorMessage(c->pq));
    return 0;
  }
  c->flushing = f == 1;
  pg_watch(c, c->flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE);
  return 1;
}

/* script: PQsendQuery (several statements, no parameters), else a statement (pg_send_stmt). */
static int pg_send_any(pg_conn *c, const char *sql, int script, int n, const Oid *types,
                       const char *const *values, uint64_t timeout_ms, const char **code,
                       char *err, size_t errlen) {
  if (c->state != PG_IDLE) {
    *code = PG_E_NOTCONN;
    if (c->state == PG_BROKEN) snprintf(err, errlen, "%s", c->broken);
    else snprintf(err, errlen, "pg: the connection is %s", c->state == PG_BUSY ? "busy" : "still connecting");
    return -1;
  }
  if (c->api.status(c->pq) == CONNECTION_BAD) { /* seen by libpq, not yet by the loop */
    pg_lost(c, NULL);
    c->pending = 0;
    *code = PG_E_NOTCONN;
    snprintf(err, errlen, "%s", c->broken);
    return -1;
  }
  pg_clear_result(c);
  c->code = NULL;
  c->sqlstate[0] = '\0';
  int sent = script ? c->api.sendQuery(c->pq, sql) : pg_send_stmt(c, sql, n, types, values);
  if (!sent) {
    *code = c->api.status(c->pq) == CONNECTION_BAD ? PG_E_NOTCONN : PG_E_SQL;
    pg_set_msg(c, err, errlen, "pg: %s", c->api.errorMessage(c->pq));
    return -1;
  }
  c->state = PG_BUSY;
  int f = c->api.flush(c->pq);
  if (f < 0) {
    pg_lost(c, NULL);
    c->pending = 0;
    *code = PG_E_LOST;
    snprintf(err, errlen, "%s", c->broken);
    return -1;
  }
  c->flushing = f == 1;
  pg_watch(c, c->flushing ? UV_READABLE | UV_WRITABLE : UV_READABLE);
  pg_ref(c);
  c->timeout_ms = timeout_ms;
  pg_start_timer(c->loop, c->timer, pg_on_timeout, timeout_ms);
  if (c->check_timer) {
    uv_update_time(c->loop);
    c->sent_at = uv_now(c->loop);
    pg_start_timer(c->loop, c->check_timer, pg_on_check, c->o.liveness_ms);
  }
  return 0;
}

int pg_send(pg_conn *c, const char *sql, int n, const Oid *types, const char *const *values,
            uint64_t timeout_ms, const char **code, char *err, size_t errlen) {
  return pg_send_any(c, sql, 0, n, types, values, timeout_ms, code, err, errlen);
}

int pg_send_script(pg_conn *c, const char *sql, uint64_t timeout_ms, const char **code, char *err,
                   size_t errlen) {
  return pg_send_any(c, sql, 1, 0, NULL, NULL, timeout_ms, code, err, errlen);
}

PGresult *pg_take(pg_conn *c, const char **code, const char **msg, const char **sqlstate) {
  PGresult *r = c->result;
  c->result = NULL;
  if (r && pg_is_error(c, r)) {
    const char *st = c->api.resultErrorField(r, PG_DIAG_SQLSTATE);
    const char *primary = c->api.resultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = c->api.resultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", st ? st : "");
    /* An error libpq made itself when the server went (its process killed, the primary
     * stopped at once) has no SQLSTATE: a lost connection, not a failed statement. */
    c->code = st == NULL && c->api.status(c->pq) == CONNECTION_BAD ? PG_E_LOST : pg_code_for_sqlstate(c->sqlstate);
    if (primary) {
      pg_set_msg(c, c->msg, sizeof c->msg, "pg: %s (SQLSTATE %s)%s%s", primary, c->sqlstate,
                 detail ? ": " : "", detail ? detail : "");
    } else {
      pg_set_msg(c, c->msg, sizeof c->msg, "pg: %s", c->api.resultErrorMessage(r));
    }
    c->api.clear(r);
    r = NULL;
  } else if (r) {
    c->code = NULL;
  }
  *code = c->code;
  *msg = c->msg;
  *sqlstate = c->sqlstate;
  return r;
}

void pg_abandon(pg_conn *c) {
  if (c->state != PG_BUSY || c->draining) return;
  uv_timer_stop(c->timer);
  pg_stop_check(c);
  c->draining = 1;
  pg_clear_result(c);
  pg_cancel_on_server(c);
}

static void pg_on_given_up(uv_timer_t *t) {
  pg_conn *c = t->data;
  if (c != NULL) pg_emit(c);
}

/* pg_give_up, the waiter's answer given sqlstate (NULL: none) */
static void pg_give_up_as(pg_conn *c, const char *why, const char *sqlstate) {
  if (c->state == PG_BROKEN || c->state == PG_CONNECTING) return; /* (a connect has its own timeout) */
  int waited = c->state == PG_BUSY && !c->draining;
  snprintf(c->broken, sizeof c->broken, "%s", why);
  c->state = PG_BROKEN;
  c->draining = 0;
  pg_unwatch(c);
  uv_timer_stop(c->timer);
  pg_stop_check(c);
  pg_clear_result(c);
  if (waited) {
    c->code = PG_E_TIMEOUT;
    snprintf(c->msg, sizeof c->msg, "%s", why);
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", sqlstate ? sqlstate : "");
    c->pending |= PG_EV_QUERY;
  }
  if (c->notes_waiting) c->pending |= PG_EV_NOTES, c->notes_waiting = 0, c->notes_timed_out = 1;
  /* the waiter is resumed from the loop, not from inside its caller */
  if (c->pending) uv_timer_start(c->timer, pg_on_given_up, 0, 0);
}

void pg_give_up(pg_conn *c, const char *why) { pg_give_up_as(c, why, NULL); }

size_t pg_note_count(const pg_conn *c) { return c->nnotes; }
const PGnotify *pg_note_at(const pg_conn *c, size_t i) { return i < c->nnotes ? c->notes[i] : NULL; }
size_t pg_notes_dropped(const pg_conn *c) { return c->dropped; }

void pg_notes_clear(pg_conn *c) {
  for (size_t i = 0; i < c->nnotes; i++) c->api.freemem(c->notes[i]);
  c->nnotes = 0;
  c->dropped = 0;
}

void pg_notes_wait(pg_conn *c, uint64_t timeout_ms) {
  c->notes_waiting = 1;
  c->notes_timed_out = 0;
  pg_ref(c);
  pg_start_timer(c->loop, c->notes_timer, pg_on_notes_timeout, timeout_ms);
}

void pg_notes_unwait(pg_conn *c) {
  c->notes_waiting = 0;
  pg_ref(c);
  uv_timer_stop(c->notes_timer);
}

int pg_notes_timed_out(const pg_conn *c) { return c->notes_timed_out; }

const char *pg_broken_message(const pg_conn *c) { return c->state == PG_BROKEN ? c->broken : ""; }
