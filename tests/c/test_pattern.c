/* test_pattern.c: the step-budgeted matcher (core/pattern.c) against a table of cases
 * covering each pattern item class, anchors, captures and Lua's error messages, the
 * nesting bound, the step budget and the check callback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pattern.h"
#include "tests.h"

typedef struct pcase {
  const char *subject, *pattern;
  long long init;     /* 1-based as in string.find */
  int start, end;     /* 1-based match, or 0, 0 for no match */
  const char *caps;   /* captures joined with '|', positions as "@n", or NULL */
  const char *error;  /* expected message, or NULL */
} pcase;

static const pcase pcases[] = {
    /* single characters and classes */
    {"hello", "l", 1, 3, 3, NULL, NULL},
    {"hello", ".", 1, 1, 1, NULL, NULL},
    {"ab1c", "%d", 1, 3, 3, NULL, NULL},
    {"12a", "%D", 1, 3, 3, NULL, NULL},
    {"1 a", "%a", 1, 3, 3, NULL, NULL},
    {"ab 1", "%A", 1, 3, 3, NULL, NULL},
    {"a\tb", "%c", 1, 2, 2, NULL, NULL},
    {" \tx", "%g", 1, 3, 3, NULL, NULL},
    {"ABc", "%l", 1, 3, 3, NULL, NULL},
    {"abC", "%u", 1, 3, 3, NULL, NULL},
    {"ab,c", "%p", 1, 3, 3, NULL, NULL},
    {"ab c", "%s", 1, 3, 3, NULL, NULL},
    {"  x", "%S", 1, 3, 3, NULL, NULL},
    {"!!a1", "%w", 1, 3, 3, NULL, NULL},
    {"zzfG", "%x", 1, 3, 3, NULL, NULL},
    {"a.b", "%.", 1, 2, 2, NULL, NULL},
    {"a%b", "%%", 1, 2, 2, NULL, NULL},
    /* sets */
    {"hello", "[lo]+", 1, 3, 5, NULL, NULL},
    {"hello", "[^hel]", 1, 5, 5, NULL, NULL},
    {"x-y", "[a-z]-", 1, 1, 0, NULL, NULL},
    {"x-y", "[a-z]-%-", 1, 1, 2, NULL, NULL},
    {"FOO12", "[%d]+", 1, 4, 5, NULL, NULL},
    {"a]b", "[]]", 1, 2, 2, NULL, NULL},
    {"a-b", "[a%-]+", 1, 1, 2, NULL, NULL},
    {"q^", "[%^]", 1, 2, 2, NULL, NULL},
    /* repetition */
    {"aaab", "a*", 1, 1, 3, NULL, NULL},
    {"baaa", "a*", 1, 1, 0, NULL, NULL},
    {"aaab", "a+b", 1, 1, 4, NULL, NULL},
    {"aaab", "a-b", 1, 1, 4, NULL, NULL},
    {"<a><b>", "<.->", 1, 1, 3, NULL, NULL},
    {"<a><b>", "<.*>", 1, 1, 6, NULL, NULL},
    {"color colour", "colou?r", 7, 7, 12, NULL, NULL},
    {"xyz", "a?", 1, 1, 0, NULL, NULL},
    /* anchors */
    {"hello", "^h", 1, 1, 1, NULL, NULL},
    {"hello", "^e", 1, 0, 0, NULL, NULL},
    {"hello", "o$", 1, 5, 5, NULL, NULL},
    {"hello", "l$", 1, 0, 0, NULL, NULL},
    {"a$b", "$b", 1, 2, 3, NULL, NULL},
    {"hello", "^hello$", 1, 1, 5, NULL, NULL},
    /* init */
    {"hello", "l", 4, 4, 4, NULL, NULL},
    {"hello", "l", -2, 4, 4, NULL, NULL},
    {"hello", "h", -100, 1, 1, NULL, NULL},
    {"hello", "", 6, 6, 5, NULL, NULL},
    /* captures */
    {"key = val", "(%w+)%s*=%s*(%w+)", 1, 1, 9, "key|val", NULL},
    {"hello", "()ll()", 1, 3, 4, "@3|@5", NULL},
    {"abcabc", "(abc)%1", 1, 1, 6, "abc", NULL},
    {"xaax", "(a)%1", 1, 2, 3, "a", NULL},
    {"f(a(b)c)d", "%b()", 1, 2, 8, NULL, NULL},
    {"f(a(bc)d", "%b()", 1, 4, 7, NULL, NULL},
    {"THE (quick) fox", "%f[%a]%a+", 5, 6, 10, NULL, NULL},
    {"hello world", "%f[%w]%w+$", 1, 7, 11, NULL, NULL},
    {"ab", "((a)(b))", 1, 1, 2, "ab|a|b", NULL},
    /* errors, with Lua's messages */
    {"a", "%", 1, 0, 0, NULL, "malformed pattern (ends with '%')"},
    {"a", "[a", 1, 0, 0, NULL, "malformed pattern (missing ']')"},
    {"a", "[a%", 1, 0, 0, NULL, "malformed pattern (missing ']')"},
    {"a", "%b(", 1, 0, 0, NULL, "malformed pattern (missing arguments to '%b')"},
    {"a", "%fa", 1, 0, 0, NULL, "missing '[' after '%f' in pattern"},
    {"aa", "(a)%2", 1, 0, 0, NULL, "invalid capture index %2"},
    {"aa", "%0", 1, 0, 0, NULL, "invalid capture index %0"},
    {"aa", "(a%1)", 1, 0, 0, NULL, "invalid capture index %1"},
    {"a)", "a)", 1, 0, 0, NULL, "invalid pattern capture"},
    {"a", "(a", 1, 1, 1, NULL, "unfinished capture"},
    {"x", "x()()()()()()()()()()()()()()()()()()()()()()()()()()()()()()()()()", 1, 0, 0, NULL, "too many captures"},
    /* errors are lazy, as in Lua: never reached, never raised */
    {"abc", "x%", 1, 0, 0, NULL, NULL},
};

/* Compiles a pattern into malloc'd memory (the caller frees it). */
static pat_prog *compile(const char *p, size_t lp, int anchor) {
  void *mem = malloc(pat_prog_size(lp));
  return mem ? pat_compile(mem, p, lp, anchor) : NULL;
}

static void run_case(check_ctx *t, const pcase *c) {
  size_t ls = strlen(c->subject);
  pat_prog *g = compile(c->pattern, strlen(c->pattern), 1);
  CHECK(t, g != NULL);
  if (g == NULL) return;
  pat_run r;
  pat_run_init(&r, 0, NULL, NULL);
  pat_match m;
  size_t from = c->init > 0 ? (size_t)c->init - 1 : c->init == 0 || (size_t)-c->init > ls ? 0 : ls - (size_t)-c->init;
  int found = pat_search(g, c->subject, ls, from, &r, &m);
  char got[256] = "", err[64] = "";
  int bad = 0;
  if (found > 0) {
    size_t o = 0;
    for (int i = 0; i < m.ncaps && !bad; i++) {
      size_t at = 0, len = 0;
      int kind = pat_capture_get(&m, i, &at, &len, err, sizeof err);
      if (kind == PAT_CAP_BAD) {
        bad = 1;
        break;
      }
      int w = kind == PAT_CAP_AT ? snprintf(got + o, sizeof got - o, "%s@%zu", i ? "|" : "", at)
                                 : snprintf(got + o, sizeof got - o, "%s%.*s", i ? "|" : "", (int)len, c->subject + at);
      o += (size_t)w;
    }
  }
  if (c->error) {
    const char *msg = bad ? err : r.msg;
    if (strcmp(msg, c->error) != 0) fprintf(stderr, "    case \"%s\" ~ \"%s\": %s\n", c->subject, c->pattern, msg);
    CHECK(t, bad || (found < 0 && r.status == PAT_EPATTERN));
    CHECK_STR(t, msg, c->error);
    free(g);
    return;
  }
  int s0 = found > 0 ? (int)m.start + 1 : 0, e0 = found > 0 ? (int)m.end : 0;
  if (r.status != PAT_OK || s0 != c->start || e0 != c->end)
    fprintf(stderr, "    case \"%s\" ~ \"%s\": got %d..%d (%s), want %d..%d\n", c->subject, c->pattern,
            s0, e0, r.msg, c->start, c->end);
  CHECK(t, r.status == PAT_OK && !bad);
  CHECK(t, s0 == c->start && e0 == c->end);
  if (c->caps) CHECK_STR(t, got, c->caps);
  free(g);
}

/* Matches p in s from the start (unanchored search); returns 1-based start or 0, -1. */
static int first_at(const char *s, size_t ls, const char *p, size_t *end, pat_run *r) {
  pat_prog *g = compile(p, strlen(p), 1);
  pat_match m;
  int found = pat_search(g, s, ls, 0, r, &m);
  free(g);
  if (found <= 0) return found;
  *end = m.end;
  return (int)m.start + 1;
}

TEST(test_pattern_cases) {
  for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) run_case(t, &pcases[i]);
  pat_run r;
  size_t end = 0;
  /* subjects are not NUL-terminated: a frontier at the end sees '\0' */
  const char buf[] = {'a', 'b', 'X'};
  pat_run_init(&r, 0, NULL, NULL);
  CHECK(t, first_at(buf, 2, "b%f[^%w]", &end, &r) == 2 && end == 2);
  /* embedded NULs are ordinary characters, in subjects and patterns */
  const char nul[] = {'a', '\0', 'b'};
  CHECK(t, first_at(nul, 3, "%z?b", &end, &r) == 2 && end == 3);
  pat_prog *g = compile("\0b", 2, 1);
  pat_match m;
  CHECK(t, pat_search(g, nul, 3, 0, &r, &m) == 1 && m.start == 1);
  free(g);
  /* gmatch's patterns: a leading '^' is an ordinary character */
  g = compile("^a", 2, 0);
  CHECK(t, !pat_anchored(g) && pat_search(g, "x^a", 3, 0, &r, &m) == 1 && m.start == 1);
  free(g);
  /* a pattern without captures yields its whole match; index 2 does not exist */
  g = compile("b+", 2, 1);
  CHECK(t, pat_search(g, "abbc", 4, 0, &r, &m) == 1 && pat_nvalues(&m) == 1);
  size_t at, len;
  char err[64];
  CHECK(t, pat_capture_get(&m, 0, &at, &len, err, sizeof err) == PAT_CAP_TEXT && at == 1 && len == 2);
  CHECK(t, pat_capture_get(&m, 1, &at, &len, err, sizeof err) == PAT_CAP_BAD);
  CHECK_STR(t, err, "invalid capture index %2");
  free(g);
  CHECK(t, pat_is_plain("abc]", 4) && !pat_is_plain("a.c", 3) && !pat_is_plain("a-", 2));
}

/* Nesting stops with stock Lua's "pattern too complex" where stock Lua stops: 199 open
 * alternatives pass, the 200th does not; captures count too. */
TEST(test_pattern_depth) {
  char pat[1200], subj[301];
  memset(subj, 'a', 300);
  for (int n = 198; n <= 200; n++) {
    size_t lp = 0;
    for (int i = 0; i < n; i++) {
      pat[lp++] = 'a';
      pat[lp++] = '?';
    }
    pat[lp] = '\0';
    pat_prog *g = compile(pat, lp, 1);
    pat_run r;
    pat_run_init(&r, 0, NULL, NULL);
    pat_match m;
    int res = pat_match_at(g, subj, 300, 0, &r, &m);
    if (n < 200) {
      CHECK(t, res == 1 && m.end == (size_t)n);
    } else {
      CHECK(t, res == -1 && r.status == PAT_EPATTERN);
      CHECK_STR(t, r.msg, "pattern too complex");
    }
    free(g);
  }
  /* 32 captures (64 capture nodes) leave room for 135 alternatives */
  size_t lp = 0;
  for (int i = 0; i < 32; i++) lp += (size_t)sprintf(pat + lp, "(a)");
  for (int i = 0; i < 136; i++) lp += (size_t)sprintf(pat + lp, "a?");
  for (int extra = 0; extra < 2; extra++) {
    pat_prog *g = compile(pat, lp - (extra ? 0 : 2), 1);
    pat_run r;
    pat_run_init(&r, 0, NULL, NULL);
    pat_match m;
    int res = pat_match_at(g, subj, 300, 0, &r, &m);
    CHECK(t, extra ? res == -1 : res == 1);
    free(g);
  }
}

typedef struct stop_after {
  uint64_t seen, limit;
  int calls;
} stop_after;

static int stop_check(void *ud, uint64_t steps, char *why, size_t len) {
  stop_after *s = ud;
  s->seen += steps;
  s->calls++;
  if (s->seen < s->limit) return 0;
  snprintf(why, len, "deadline passed");
  return 1;
}

/* A pathological pattern on a long subject ends at the step cap or when the check says
 * stop, with a distinct error; a normal match reports every step. */
TEST(test_pattern_budget) {
  static char subj[200000];
  memset(subj, 'a', sizeof subj);
  const char *pat = ".-.-.-.-b";
  pat_prog *g = compile(pat, strlen(pat), 1);
  pat_run r;
  pat_match m;
  pat_run_init(&r, 100000, NULL, NULL);
  CHECK(t, pat_search(g, subj, sizeof subj, 0, &r, &m) == -1);
  CHECK(t, r.status == PAT_ESTEPS);
  CHECK_STR(t, r.msg, "pattern too complex: step budget exhausted (100000 steps)");
  CHECK(t, r.steps <= 100001);
  /* the error is sticky: the run refuses further work */
  CHECK(t, pat_match_at(g, subj, 10, 0, &r, &m) == -1 && pat_run_charge(&r, 1) == -1);

  stop_after sa = {0, 50000, 0};
  pat_run_init(&r, 0, stop_check, &sa);
  CHECK(t, pat_search(g, subj, sizeof subj, 0, &r, &m) == -1);
  CHECK(t, r.status == PAT_ECHECK);
  CHECK_STR(t, r.msg, "pattern too complex: deadline passed");
  CHECK(t, sa.seen >= 50000 && sa.seen < 50000 + 2 * PAT_CHECK_EVERY);
  free(g);

  /* %b and back-references count the bytes they scan */
  static char parens[100001];
  memset(parens, '(', 100000);
  parens[100000] = ')';
  g = compile("%b()", 4, 1);
  pat_run_init(&r, 1000000, NULL, NULL);
  CHECK(t, pat_search(g, parens, sizeof parens - 1, 0, &r, &m) == -1);
  CHECK(t, r.status == PAT_ESTEPS);
  free(g);

  stop_after ok = {0, (uint64_t)-1, 0};
  g = compile("a+$", 3, 1);
  pat_run_init(&r, 0, stop_check, &ok);
  CHECK(t, pat_search(g, subj, 5000, 0, &r, &m) == 1 && m.end == 5000);
  CHECK(t, pat_run_flush(&r) == 0);
  CHECK(t, ok.seen == r.steps && ok.calls >= 1);
  free(g);
}
