/* test_pattern.c: the step-budgeted matcher (core/pattern.c) against a table of cases
 * covering each pattern item class, anchors, captures and Lua's error messages, plus the
 * step budget and the check callback. */
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

static void run_case(check_ctx *t, const pcase *c) {
  size_t ls = strlen(c->subject), lp = strlen(c->pattern);
  const char *p = c->pattern;
  int anchor = *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  pat_state ms;
  pat_prepare(&ms, c->subject, ls, p, lp, 0, NULL, NULL);
  size_t init = pat_posrelat(c->init, ls) - 1;
  const char *start = NULL;
  const char *e = pat_search(&ms, c->subject + init, p, anchor, &start);
  char got[256] = "";
  if (e != NULL && c->caps != NULL) {
    size_t o = 0;
    for (int i = 0; i < pat_ncaptures(&ms, NULL); i++) {
      const char *cap;
      size_t pos = 0;
      ptrdiff_t l = pat_get_capture(&ms, i, start, e, &cap, &pos);
      if (l == -1) break;
      int w = l == PAT_CAP_POSITION ? snprintf(got + o, sizeof got - o, "%s@%zu", i ? "|" : "", pos)
                                    : snprintf(got + o, sizeof got - o, "%s%.*s", i ? "|" : "", (int)l, cap);
      o += (size_t)w;
    }
  } else if (e != NULL) { /* a finished match must have no unfinished capture */
    for (int i = 0; i < pat_ncaptures(&ms, NULL); i++) {
      const char *cap;
      size_t pos;
      if (pat_get_capture(&ms, i, start, e, &cap, &pos) == -1) break;
    }
  }
  if (c->error) {
    if (ms.status != PAT_EPATTERN || strcmp(ms.msg, c->error) != 0)
      fprintf(stderr, "    case \"%s\" ~ \"%s\":\n", c->subject, c->pattern);
    CHECK(t, ms.status == PAT_EPATTERN);
    CHECK_STR(t, ms.msg, c->error);
    return;
  }
  int s0 = e ? (int)(start - c->subject) + 1 : 0, e0 = e ? (int)(e - c->subject) : 0;
  if (ms.status != PAT_OK || s0 != c->start || e0 != c->end)
    fprintf(stderr, "    case \"%s\" ~ \"%s\": got %d..%d (%s), want %d..%d\n", c->subject, c->pattern,
            s0, e0, ms.msg, c->start, c->end);
  CHECK(t, ms.status == PAT_OK);
  CHECK(t, s0 == c->start && e0 == c->end);
  if (c->caps) CHECK_STR(t, got, c->caps);
}

TEST(test_pattern_cases) {
  for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) run_case(t, &pcases[i]);
  /* subjects are not NUL-terminated: a frontier at the end sees '\0' */
  const char buf[] = {'a', 'b', 'X'};
  pat_state ms;
  pat_prepare(&ms, buf, 2, "b%f[^%w]", 8, 0, NULL, NULL);
  const char *start = NULL;
  const char *e = pat_search(&ms, buf, "b%f[^%w]", 0, &start);
  CHECK(t, e == buf + 2 && start == buf + 1);
  /* embedded NULs are ordinary characters */
  const char nul[] = {'a', '\0', 'b'};
  pat_prepare(&ms, nul, 3, "%z?b", 4, 0, NULL, NULL);
  e = pat_search(&ms, nul, "%z?b", 0, &start);
  CHECK(t, e == nul + 3 && start == nul + 1);
  /* plain search helpers */
  CHECK(t, pat_nospecials("abc", 3) && !pat_nospecials("a.c", 3));
  const char *h = "hello";
  CHECK(t, pat_memfind(h, 5, "llo", 3) == h + 2 && pat_memfind(h, 5, "lx", 2) == NULL);
  CHECK(t, pat_posrelat(-2, 5) == 4 && pat_posrelat(0, 5) == 1 && pat_posrelat(-9, 5) == 1);
}

/* Deep recursion stops with Lua's own "pattern too complex" at PAT_MAXCCALLS. */
TEST(test_pattern_depth) {
  char pat[1200];
  size_t n = 0;
  for (int i = 0; i < 300; i++) {
    pat[n++] = 'a';
    pat[n++] = '?';
  }
  char subj[301];
  memset(subj, 'a', 300);
  pat_state ms;
  pat_prepare(&ms, subj, 300, pat, n, 0, NULL, NULL);
  const char *start;
  CHECK(t, pat_search(&ms, subj, pat, 1, &start) == NULL);
  CHECK(t, ms.status == PAT_EPATTERN);
  CHECK_STR(t, ms.msg, "pattern too complex");
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
  pat_state ms;
  pat_prepare(&ms, subj, sizeof subj, pat, strlen(pat), 100000, NULL, NULL);
  const char *start;
  CHECK(t, pat_search(&ms, subj, pat, 0, &start) == NULL);
  CHECK(t, ms.status == PAT_ESTEPS);
  CHECK_STR(t, ms.msg, "pattern too complex: step budget exhausted (100000 steps)");
  CHECK(t, ms.steps <= 100001);

  stop_after sa = {0, 50000, 0};
  pat_prepare(&ms, subj, sizeof subj, pat, strlen(pat), 0, stop_check, &sa);
  CHECK(t, pat_search(&ms, subj, pat, 0, &start) == NULL);
  CHECK(t, ms.status == PAT_ECHECK);
  CHECK_STR(t, ms.msg, "pattern too complex: deadline passed");
  CHECK(t, sa.seen >= 50000 && sa.seen < 50000 + 2 * PAT_CHECK_EVERY);

  /* %b and back-references count the bytes they scan */
  static char parens[100001];
  memset(parens, '(', 100000);
  parens[100000] = ')';
  pat_prepare(&ms, parens, sizeof parens - 1, "%b()", 4, 1000000, NULL, NULL);
  CHECK(t, pat_search(&ms, parens, "%b()", 0, &start) == NULL);
  CHECK(t, ms.status == PAT_ESTEPS);

  stop_after ok = {0, (uint64_t)-1, 0};
  pat_prepare(&ms, subj, 5000, "a+$", 3, 0, stop_check, &ok);
  CHECK(t, pat_search(&ms, subj, "a+$", 0, &start) == subj + 5000);
  CHECK(t, pat_flush(&ms) == 0);
  CHECK(t, ok.seen == ms.steps && ok.calls >= 1);
}
