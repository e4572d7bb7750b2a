/* test_pg.c: the pure parts of pg.c: masking the password of a connection string in a
 * message (plain and percent-encoded, URL and key=value forms), scrubbing a connection
 * string for display, and the error code of a SQLSTATE. No server needed. */
#include "check.h"
#include "pg.h"
#include "tests.h"

TEST(test_pg_mask_password) {
  char out[256];
  pg_mask_password("postgresql://u:s3cret@h/db", "bad: s3cret and s3cret", out, sizeof out);
  CHECK_STR(t, out, "bad: *** and ***");
  /* the decoded form of a percent-encoded password is masked too */
  pg_mask_password("postgresql://u:p%40ss@h/db", "token \"p%40ss\" or p@ss", out, sizeof out);
  CHECK_STR(t, out, "token \"***\" or ***");
  pg_mask_password("postgresql://u@h/db?sslmode=require&password=q1w2", "q1w2!", out, sizeof out);
  CHECK_STR(t, out, "***!");
  pg_mask_password("host=h password='it\\'s x' user=u", "see it's x", out, sizeof out);
  CHECK_STR(t, out, "see ***");
  pg_mask_password("host=h password = abc user=u", "abc", out, sizeof out);
  CHECK_STR(t, out, "***");
  /* no password: unchanged; a key merely ending in "password" is not one */
  pg_mask_password("host=h user=u", "host=h user=u", out, sizeof out);
  CHECK_STR(t, out, "host=h user=u");
  pg_mask_password("host=h mypassword=zz", "zz", out, sizeof out);
  CHECK_STR(t, out, "zz");
  /* the last @ ends the user info, so an @ in the password is covered */
  pg_mask_password("postgres://u:a@b@h/db", "a@b", out, sizeof out);
  CHECK_STR(t, out, "***");
  /* a short buffer truncates, never overflows */
  char small[5];
  pg_mask_password("postgresql://u:pw@h", "xxxxxxxxxx", small, sizeof small);
  CHECK_STR(t, small, "xxxx");
}

TEST(test_pg_scrub_conninfo) {
  char out[256];
  pg_scrub_conninfo("postgresql://u:pw@h:5432/db?password=pw2&x=1", out, sizeof out);
  CHECK_STR(t, out, "postgresql://u:***@h:5432/db?password=***&x=1");
  pg_scrub_conninfo("postgresql://u@/db?host=/run/pg", out, sizeof out);
  CHECK_STR(t, out, "postgresql://u@/db?host=/run/pg");
  pg_scrub_conninfo("dbname=x password=secret host=h", out, sizeof out);
  CHECK_STR(t, out, "dbname=x password=*** host=h");
  /* libpq decodes a parameter's name: %70assword is the password */
  pg_scrub_conninfo("postgresql://o@/d?%70assword=pw&pass%77ord=p2&x=1", out, sizeof out);
  CHECK_STR(t, out, "postgresql://o@/d?%70assword=***&pass%77ord=***&x=1");
  /* the client key's passphrase, in either form */
  pg_scrub_conninfo("postgresql://o@/d?sslpassword=kk", out, sizeof out);
  CHECK_STR(t, out, "postgresql://o@/d?sslpassword=***");
  /* a key libpq refuses but the person meant as the password: in capitals, or mangled */
  pg_scrub_conninfo("postgresql://o@/d?x=1&PASSWORD=S3cret&password%3D=s2&%20password=s3&y=2", out, sizeof out);
  CHECK_STR(t, out, "postgresql://o@/d?x=1&PASSWORD=***&password%3D=***&%20password=***&y=2");
  pg_scrub_conninfo("host=h PASSWORD=pp Password = 'p q'", out, sizeof out);
  CHECK_STR(t, out, "host=h PASSWORD=*** Password = '***'");
  pg_scrub_conninfo("host=h sslpassword=kk password=pp", out, sizeof out);
  CHECK_STR(t, out, "host=h sslpassword=*** password=***");
  pg_scrub_conninfo("host=h mysslpassword=kk", out, sizeof out);
  CHECK_STR(t, out, "host=h mysslpassword=kk");
  /* a URL of another scheme, or in capitals, as a mistaken setting is echoed */
  pg_scrub_conninfo("mysql://orket:hunter2@db/orket", out, sizeof out);
  CHECK_STR(t, out, "mysql://orket:***@db/orket");
  pg_scrub_conninfo("POSTGRESQL://orket:hunter2@h/x", out, sizeof out);
  CHECK_STR(t, out, "POSTGRESQL://orket:***@h/x");
}

TEST(test_pg_sqlstate_codes) {
  CHECK_STR(t, pg_code_for_sqlstate("23505"), PG_E_CONSTRAINT);
  CHECK_STR(t, pg_code_for_sqlstate("40001"), PG_E_CONFLICT);
  CHECK_STR(t, pg_code_for_sqlstate("40P01"), PG_E_CONFLICT);
  CHECK_STR(t, pg_code_for_sqlstate("28P01"), PG_E_AUTH);
  CHECK_STR(t, pg_code_for_sqlstate("57014"), PG_E_CANCELED);
  CHECK_STR(t, pg_code_for_sqlstate("55P03"), PG_E_BUSY); /* lock_timeout: busy, as SQLite says it */
  CHECK_STR(t, pg_code_for_sqlstate("57P01"), PG_E_LOST);
  CHECK_STR(t, pg_code_for_sqlstate("08006"), PG_E_LOST);
  CHECK_STR(t, pg_code_for_sqlstate("42601"), PG_E_SQL);
  CHECK_STR(t, pg_code_for_sqlstate(""), PG_E_SQL);
  CHECK_STR(t, pg_code_for_sqlstate(NULL), PG_E_SQL);
}

/* How pg_open reads a connection string (libpq's own parse; libpq loaded, no server): the
 * hosts it tries one at a time, each host's values, the string's connect_timeout, the TCP
 * keepalive defaults it adds where the string sets none, and what it leaves to libpq. */
void test_pg_plan(check_ctx *t);
TEST(test_pg_plan) {
  pgapi api;
  char err[512];
  const char *code = NULL;
  if (pgapi_open(&api, err, sizeof err) != 0) {
    SKIP(t, "%s", err);
    return;
  }
  pg_plan p;
  int rc = pg_plan_make(&api,
                        "postgresql://u@/db?host=/a,/b&port=5433,5434&connect_timeout=3&application_name=x"
                        "&target_session_attrs=read-write",
                        &p, &code, err, sizeof err);
  CHECK(t, rc == 0);
  if (rc == 0) {
    CHECK(t, p.nhosts == 2);
    CHECK(t, p.url_timeout_ms == 3000);
    CHECK(t, p.i_target >= 0);
    CHECK_STR(t, pg_plan_get(&p, "application_name"), "x");
    CHECK_STR(t, pg_plan_get(&p, "target_session_attrs"), "read-write");
    /* the TCP defaults, where the string sets none */
    CHECK_STR(t, pg_plan_get(&p, "keepalives_idle"), "30");
    CHECK_STR(t, pg_plan_get(&p, "keepalives_interval"), "10");
    CHECK_STR(t, pg_plan_get(&p, "keepalives_count"), "3");
    CHECK_STR(t, pg_plan_get(&p, "tcp_user_timeout"), "30000");
    pg_plan_host(&p, 1);
    CHECK_STR(t, pg_plan_get(&p, "host"), "/b");
    CHECK_STR(t, pg_plan_get(&p, "port"), "5434");
    pg_plan_host(&p, 0);
    CHECK_STR(t, pg_plan_get(&p, "host"), "/a");
    CHECK_STR(t, pg_plan_get(&p, "port"), "5433");
    char label[64];
    pg_plan_label(&p, 1, label, sizeof label);
    CHECK_STR(t, label, "/b:5434");
    pg_plan_free(&api, &p);
  }
  /* the string's own keepalive settings are kept; one port for every host; an empty
   * element is libpq's default host */
  rc = pg_plan_make(&api, "host=db1,,db3 port=6000 keepalives_idle=5 tcp_user_timeout=0 connect_timeout=1", &p, &code,
                    err, sizeof err);
  CHECK(t, rc == 0);
  if (rc == 0) {
    CHECK(t, p.nhosts == 3);
    CHECK(t, p.url_timeout_ms == 2000); /* 1 s is 2 s, as libpq reads it */
    CHECK_STR(t, pg_plan_get(&p, "keepalives_idle"), "5");
    CHECK_STR(t, pg_plan_get(&p, "tcp_user_timeout"), "0");
    pg_plan_host(&p, 2);
    CHECK_STR(t, pg_plan_get(&p, "host"), "db3");
    CHECK_STR(t, pg_plan_get(&p, "port"), "6000");
    pg_plan_host(&p, 1);
    CHECK_STR(t, pg_plan_get(&p, "host"), "");
    char label[64];
    pg_plan_label(&p, 1, label, sizeof label);
    CHECK_STR(t, label, "the default host");
    pg_plan_label(&p, 2, label, sizeof label);
    CHECK_STR(t, label, "db3");
    pg_plan_free(&api, &p);
  }
  /* addresses name the hosts when given; a connect_timeout of 0 is none */
  rc = pg_plan_make(&api, "hostaddr=127.0.0.1,127.0.0.2 connect_timeout=0", &p, &code, err, sizeof err);
  CHECK(t, rc == 0 && p.nhosts == 2 && p.url_timeout_ms == 0);
  if (rc == 0) {
    char label[64];
    pg_plan_label(&p, 1, label, sizeof label);
    CHECK_STR(t, label, "127.0.0.2");
    pg_plan_free(&api, &p);
  }
  /* lists libpq refuses are left to it (one attempt, libpq's message); one host is one */
  rc = pg_plan_make(&api, "host=a,b port=1,2,3", &p, &code, err, sizeof err);
  CHECK(t, rc == 0 && p.nhosts == 1);
  if (rc == 0) pg_plan_free(&api, &p);
  /* so is an order across hosts one at a time cannot keep (a standby before any primary) */
  rc = pg_plan_make(&api, "host=a,b target_session_attrs=prefer-standby", &p, &code, err, sizeof err);
  CHECK(t, rc == 0 && p.nhosts == 1);
  if (rc == 0) pg_plan_free(&api, &p);
  rc = pg_plan_make(&api, "postgresql://u@h/db", &p, &code, err, sizeof err);
  CHECK(t, rc == 0 && p.nhosts == 1 && p.url_timeout_ms == 0);
  if (rc == 0) {
    char label[64];
    pg_plan_label(&p, 0, label, sizeof label);
    CHECK_STR(t, label, "h");
    pg_plan_free(&api, &p);
  }
  /* refused: more than PG_MAX_HOSTS hosts; a string libpq cannot read (password masked) */
  char many[1024] = "host=h";
  for (int i = 1; i <= PG_MAX_HOSTS; i++) strcat(many, ",h");
  rc = pg_plan_make(&api, many, &p, &code, err, sizeof err);
  CHECK(t, rc == -1);
  CHECK_STR(t, code, PG_E_INVAL);
  CHECK_STR(t, err, "pg: bad connection string: it names 65 hosts, more than 64");
  pg_plan_free(&api, &p);
  rc = pg_plan_make(&api, "postgresql://u:s3cret@h/db?nosuch=1", &p, &code, err, sizeof err);
  CHECK(t, rc == -1);
  CHECK_STR(t, code, PG_E_INVAL);
  CHECK(t, strncmp(err, "pg: bad connection string: ", 27) == 0 && strstr(err, "s3cret") == NULL);
  pg_plan_free(&api, &p);
  pgapi_close(&api);
}
