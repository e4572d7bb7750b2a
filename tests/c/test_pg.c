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
