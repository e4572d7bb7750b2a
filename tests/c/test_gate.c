/* test_gate.c: globs, the schema validator, the gate's check order and the tool-call scan,
 * on hand-built values (no Lua). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "gate.h"
#include "schema.h"
#include "tests.h"
#include "toolscan.h"

static jv jstr(const char *s) {
  jv v;
  memset(&v, 0, sizeof v);
  v.type = JV_STR;
  v.u.s = s;
  v.n = strlen(s);
  return v;
}

/* An object from parallel arrays (caller-owned storage). */
static jv jobj(const char **keys, size_t *klens, jv *vals, size_t n) {
  jv v;
  memset(&v, 0, sizeof v);
  v.type = JV_OBJ;
  v.n = n;
  v.keys = keys;
  v.klens = klens;
  v.u.items = vals;
  for (size_t i = 0; i < n; i++) klens[i] = strlen(keys[i]);
  return v;
}

TEST(test_gate_glob) {
  CHECK(t, gate_glob("*.c", "a.c", 3) == 1);
  CHECK(t, gate_glob("*.c", "x/a.c", 5) == 0);
  CHECK(t, gate_glob("**/*.c", "x/y/a.c", 7) == 1);
  CHECK(t, gate_glob("**/*.c", "a.c", 3) == 1);
  CHECK(t, gate_glob("src/**", "src", 3) == 1);
  CHECK(t, gate_glob("src/**", "srcx/a", 6) == 0);
  CHECK(t, gate_glob("a?c", "abc", 3) == 1);
  CHECK(t, gate_glob("a?c", "a/c", 3) == 0);
  /* one star, first or last (read without the table): the same answers */
  CHECK(t, gate_glob("*", "", 0) == 1);
  CHECK(t, gate_glob("*", "write_file", 10) == 1);
  CHECK(t, gate_glob("*", "a/b", 3) == 0);
  CHECK(t, gate_glob("*_file", "write_file", 10) == 1);
  CHECK(t, gate_glob("*_file", "_file", 5) == 1);
  CHECK(t, gate_glob("*_file", "file", 4) == 0);
  CHECK(t, gate_glob("*_file", "write_files", 11) == 0);
  CHECK(t, gate_glob("*_file", "a/write_file", 12) == 0);
  CHECK(t, gate_glob("*_file", "update_issue_status", 19) == 0);
  CHECK(t, gate_glob("src/*", "src/a.c", 7) == 1);
  CHECK(t, gate_glob("src/*", "src/", 4) == 1);
  CHECK(t, gate_glob("src/*", "src", 3) == 0);
  CHECK(t, gate_glob("src/*", "src/a/b.c", 9) == 0);
  CHECK(t, gate_glob("src/*", "srcx/a", 6) == 0);
  CHECK(t, gate_glob("*.c", "a.c/", 4) == 0);
  CHECK(t, gate_glob("*_file", "a_file/x", 6) == 1); /* n bytes only */
  /* not that shape: the table decides */
  CHECK(t, gate_glob("a*b", "axxb", 4) == 1);
  CHECK(t, gate_glob("a*b", "ax/b", 4) == 0);
  CHECK(t, gate_glob("*a*", "xay", 3) == 1);
  CHECK(t, gate_glob("?*", "", 0) == 0);
  CHECK(t, gate_glob("*?", "x", 1) == 1);
  CHECK(t, gate_glob("**", "a/b", 3) == 1);
  CHECK(t, gate_glob("a/**", "a", 1) == 1);
  /* no exponential backtracking on a hostile subject */
  char s[4001];
  memset(s, 'a', 4000);
  s[4000] = '\0';
  CHECK(t, gate_glob("*a*a*a*a*a*a*a*a*a*a*b", s, 4000) == 0);
  CHECK(t, gate_glob("x", s, 5000) == -1);
}

/* Every string of 0 to 4 bytes over alpha (na bytes) into out (lengths in len); returns the
 * count (1 + na + na^2 + na^3 + na^4). */
static size_t glob_words(const char *alpha, size_t na, char (*out)[5], size_t *len) {
  size_t count = 0;
  for (size_t l = 0; l <= 4; l++) {
    size_t total = 1;
    for (size_t i = 0; i < l; i++) total *= na;
    for (size_t k = 0; k < total; k++) {
      size_t x = k;
      for (size_t i = 0; i < l; i++, x /= na) out[count][i] = alpha[x % na];
      out[count][l] = '\0';
      len[count++] = l;
    }
  }
  return count;
}

/* gate_glob's shortcuts (no wildcard; one star, first or last) against the general table,
 * for every pattern and subject up to 4 bytes: a letter, '/', '*', '?' and a byte of a
 * multibyte character (0xC3), and in the subject a NUL too (a pattern is a C string, a
 * subject is counted). */
TEST(test_gate_glob_shortcuts) {
  static const char pat_alpha[] = {'a', '/', '*', '?', (char)0xC3};
  static const char sub_alpha[] = {'a', '/', '*', '?', (char)0xC3, '\0'};
  char pats[781][5], subs[1555][5];
  size_t plens[781], slens[1555];
  size_t np = glob_words(pat_alpha, sizeof pat_alpha, pats, plens);
  size_t ns = glob_words(sub_alpha, sizeof sub_alpha, subs, slens);
  CHECK(t, np == 781 && ns == 1555);
  size_t differ = 0, matched = 0;
  for (size_t i = 0; i < np; i++)
    for (size_t j = 0; j < ns; j++) {
      int fast = gate_glob(pats[i], subs[j], slens[j]), table = gate_glob_table(pats[i], subs[j], slens[j], 0);
      matched += fast == 1;
      if (fast != table && differ++ < 5)
        fprintf(stderr, "    glob \"%s\" on %zu bytes: %d, the table says %d\n", pats[i], slens[j], fast, table);
    }
  CHECK(t, differ == 0);
  CHECK(t, matched > 0);
  /* at the limits: a 512-byte pattern, a 4096-byte subject, one byte over either */
  char big[4098], pat[514];
  memset(big, 'b', sizeof big);
  memset(pat, 'b', sizeof pat);
  pat[0] = '*';
  pat[512] = '\0';
  CHECK(t, gate_glob(pat, big, 4096) == 1 && gate_glob_table(pat, big, 4096, 0) == 1);
  CHECK(t, gate_glob(pat, big, 4097) == -1 && gate_glob_table(pat, big, 4097, 0) == -1);
  pat[512] = 'b';
  pat[513] = '\0';
  CHECK(t, gate_glob(pat, big, 4096) == -1 && gate_glob_table(pat, big, 4096, 0) == -1);
  pat[0] = 'b';
  pat[511] = '*';
  pat[512] = '\0';
  big[2000] = '/';
  CHECK(t, gate_glob(pat, big, 4096) == 0 && gate_glob_table(pat, big, 4096, 0) == 0);
  CHECK(t, gate_glob(pat, big, 1999) == 1 && gate_glob_table(pat, big, 1999, 0) == 1);
}

/* GATE_GLOB_IGNORE_CASE: the default policy's secrets and CI globs against names from
 * Windows and macOS; exact matching is unchanged; only ASCII letters fold. */
TEST(test_gate_glob_ignore_case) {
  static const struct {
    const char *pat, *s;
  } hit[] = {{"**/*.env", ".ENV"},          {"**/*.env", "config/PROD.ENV"},
             {"**/*.env", "Prod.Env"},      {"**/.env.*", ".ENV.LOCAL"},
             {"**/*.pem", "KEY.PEM"},       {"**/*.pem", "certs/SERVER.PEM"},
             {"**/id_rsa*", "ID_RSA"},      {"**/id_rsa*", "certs/Id_Rsa.pub"},
             {"Jenkinsfile", "JENKINSFILE"}, {".github/workflows/**", ".GITHUB/workflows/ci.yml"},
             {".github/workflows/**", ".github/Workflows/ci.yml"},
             {".github/workflows/**", ".GitHub/WORKFLOWS"}, /* the folder itself */
             {".github", ".GITHUB"},        {"*.PEM", "key.pem"}, /* the pattern folds too */
             {"SRC/*", "src/a.c"},          {"a?C", "AbC"}};
  const unsigned ic = GATE_GLOB_IGNORE_CASE;
  for (size_t i = 0; i < sizeof hit / sizeof hit[0]; i++) {
    size_t n = strlen(hit[i].s);
    if (gate_glob_flags(hit[i].pat, hit[i].s, n, ic) != 1 || gate_glob_table(hit[i].pat, hit[i].s, n, ic) != 1)
      fprintf(stderr, "    glob \"%s\" on \"%s\" ignoring case: no match\n", hit[i].pat, hit[i].s);
    CHECK(t, gate_glob_flags(hit[i].pat, hit[i].s, n, ic) == 1);
    CHECK(t, gate_glob_table(hit[i].pat, hit[i].s, n, ic) == 1);
    /* without the option, as before: these differ in case, so none matches */
    CHECK(t, gate_glob(hit[i].pat, hit[i].s, n) == 0);
    CHECK(t, gate_glob_flags(hit[i].pat, hit[i].s, n, 0) == 0);
  }
  /* still a glob: '*' stops at '/', other letters differ, the length counts */
  CHECK(t, gate_glob_flags("*.pem", "CERTS/KEY.PEM", 13, ic) == 0);
  CHECK(t, gate_glob_flags("**/*.env", "PROD.ENVX", 9, ic) == 0);
  CHECK(t, gate_glob_flags("Jenkinsfile", "JENKINSFILE2", 12, ic) == 0);
  CHECK(t, gate_glob_flags("id_rsa", "id_rs", 5, ic) == 0);
  /* only ASCII letters fold: '_' and '@' (0x5F, 0x40, next to the letters), a UTF-8
   * letter's bytes ("É" C3 89, "é" C3 A9) and Unicode case folding are left alone */
  CHECK(t, gate_glob_flags("a_b", "A_B", 3, ic) == 1);
  CHECK(t, gate_glob_flags("a_b", "a\x7f" "b", 3, ic) == 0);
  CHECK(t, gate_glob_flags("@", "`", 1, ic) == 0);
  CHECK(t, gate_glob_flags("[", "{", 1, ic) == 0);
  CHECK(t, gate_glob_flags("caf\xc3\xa9", "CAF\xc3\x89", 5, ic) == 0);
  CHECK(t, gate_glob_flags("caf\xc3\xa9", "CAF\xc3\xa9", 5, ic) == 1);
  /* the limits are the same */
  char big[4098];
  memset(big, 'B', sizeof big);
  CHECK(t, gate_glob_flags("*b", big, 4096, ic) == 1);
  CHECK(t, gate_glob_flags("*b", big, 4097, ic) == -1);
}

/* Every pattern and subject up to 4 bytes over letters in both cases, '/', '*', '?' and a
 * UTF-8 lead byte: ignoring case is matching both folded to lower case, by the shortcuts
 * and by the table alike. */
TEST(test_gate_glob_ignore_case_all) {
  static const char pat_alpha[] = {'a', 'B', '/', '*', '?'};
  static const char sub_alpha[] = {'A', 'b', '/', (char)0xC3};
  char pats[781][5], subs[341][5];
  size_t plens[781], slens[341];
  size_t np = glob_words(pat_alpha, sizeof pat_alpha, pats, plens);
  size_t ns = glob_words(sub_alpha, sizeof sub_alpha, subs, slens);
  CHECK(t, np == 781 && ns == 341);
  size_t differ = 0, matched = 0;
  for (size_t i = 0; i < np; i++)
    for (size_t j = 0; j < ns; j++) {
      char lp[5], ls[5];
      for (size_t k = 0; k < 5; k++) {
        lp[k] = pats[i][k] >= 'A' && pats[i][k] <= 'Z' ? (char)(pats[i][k] + 32) : pats[i][k];
        ls[k] = subs[j][k] >= 'A' && subs[j][k] <= 'Z' ? (char)(subs[j][k] + 32) : subs[j][k];
      }
      int want = gate_glob(lp, ls, slens[j]);
      int fast = gate_glob_flags(pats[i], subs[j], slens[j], GATE_GLOB_IGNORE_CASE);
      int table = gate_glob_table(pats[i], subs[j], slens[j], GATE_GLOB_IGNORE_CASE);
      matched += fast == 1;
      if ((fast != want || table != want) && differ++ < 5)
        fprintf(stderr, "    glob \"%s\" on \"%s\" ignoring case: %d, table %d, folded %d\n", pats[i], subs[j], fast,
                table, want);
    }
  CHECK(t, differ == 0);
  CHECK(t, matched > 0);
}

TEST(test_schema_validate) {
  /* {type=object, properties={path={type=string, maxLength=5}}, required={"path"}} */
  jv t_string = jstr("string"), t_object = jstr("object"), five;
  memset(&five, 0, sizeof five);
  five.type = JV_INT;
  five.u.i = 5;
  const char *pk[] = {"type", "maxLength"};
  size_t pl[2];
  jv pv[] = {t_string, five};
  jv path_schema = jobj(pk, pl, pv, 2);
  const char *propk[] = {"path"};
  size_t propl[1];
  jv propv[] = {path_schema};
  jv props = jobj(propk, propl, propv, 1);
  jv reqv[] = {jstr("path")};
  jv req;
  memset(&req, 0, sizeof req);
  req.type = JV_ARR;
  req.n = 1;
  req.u.items = reqv;
  const char *sk[] = {"type", "properties", "required"};
  size_t sl[3];
  jv sv[] = {t_object, props, req};
  jv schema = jobj(sk, sl, sv, 3);
  schema_err e;
  CHECK(t, schema_check(&schema, "parameters", &e) == 0);

  const char *ak[] = {"path"};
  size_t al[1];
  jv av[] = {jstr("a.txt")};
  jv args = jobj(ak, al, av, 1);
  CHECK(t, schema_validate(&schema, &args, NULL, &e) == 0);
  av[0] = jstr("toolong");
  CHECK(t, schema_validate(&schema, &args, NULL, &e) == -1);
  CHECK_STR(t, e.msg, "args.path: string of 7 characters is longer than the limit of 5 characters");
  const char *bk[] = {"other"};
  size_t bl[1];
  jv bv[] = {jstr("x")};
  jv bad = jobj(bk, bl, bv, 1);
  CHECK(t, schema_validate(&schema, &bad, NULL, &e) == -1);
  CHECK_STR(t, e.msg, "args.other: unknown argument; this tool accepts only the parameters its schema lists");
  /* an unknown keyword is a schema error */
  const char *xk[] = {"tpye"};
  size_t xl[1];
  jv xv[] = {t_string};
  jv xs = jobj(xk, xl, xv, 1);
  CHECK(t, schema_check(&xs, "parameters", &e) == -1);
  CHECK(t, strstr(e.msg, "parameters.tpye: unknown schema keyword") != NULL);
  /* bounds read as written: 1048576, not 1.04858e+06 */
  jv big, val, half;
  memset(&big, 0, sizeof big);
  big.type = JV_INT;
  big.u.i = 1048576;
  memset(&val, 0, sizeof val);
  val.type = JV_INT;
  val.u.i = 2000000;
  const char *nk[] = {"type", "maximum"};
  size_t nl[2];
  jv nv[] = {jstr("number"), big};
  jv ns = jobj(nk, nl, nv, 2);
  CHECK(t, schema_validate(&ns, &val, NULL, &e) == -1);
  CHECK_STR(t, e.msg, "args: must be at most 1048576");
  memset(&half, 0, sizeof half);
  half.type = JV_NUM;
  half.u.d = 0.5;
  nv[1] = half;
  ns = jobj(nk, nl, nv, 2);
  CHECK(t, schema_validate(&ns, &val, NULL, &e) == -1);
  CHECK_STR(t, e.msg, "args: must be at most 0.5");
}

/* A string schema with one count keyword (maxLength or minLength) of n. */
static jv len_schema(const char **k, size_t *kl, jv *v, const char *kw, long long n) {
  k[0] = "type";
  k[1] = kw;
  v[0] = jstr("string");
  memset(&v[1], 0, sizeof v[1]);
  v[1].type = JV_INT;
  v[1].u.i = n;
  return jobj(k, kl, v, 2);
}

/* maxLength and minLength count characters (code points), as the models, MCP clients and
 * the OpenAPI document that read the same schemas do; bytes that are not UTF-8 still count
 * at most 4 to a character, so a string within maxLength stays within 4 * maxLength bytes. */
TEST(test_schema_length_chars) {
  const char *k[2];
  size_t kl[2];
  jv v[2];
  jv max5 = len_schema(k, kl, v, "maxLength", 5);
  schema_err e;
  CHECK(t, schema_check(&max5, "parameters", &e) == 0);
  jv s = jstr("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xf0\x9f\x94\x90\xc3\xa9"); /* 日本語🔐é: 5 characters, 15 bytes */
  CHECK(t, schema_validate(&max5, &s, NULL, &e) == 0);
  s = jstr("\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5"); /* 6 characters */
  CHECK(t, schema_validate(&max5, &s, NULL, &e) == -1);
  CHECK_STR(t, e.msg, "args: string of 6 characters is longer than the limit of 5 characters");
  char stray[32]; /* continuation bytes alone: 20 of them are 5 characters, 21 are 6 */
  memset(stray, 0x80, sizeof stray);
  stray[20] = '\0';
  s = jstr(stray);
  CHECK(t, schema_validate(&max5, &s, NULL, &e) == 0);
  stray[20] = (char)0x80;
  stray[21] = '\0';
  s = jstr(stray);
  CHECK(t, schema_validate(&max5, &s, NULL, &e) == -1);
  CHECK_STR(t, e.msg, "args: string of 6 characters is longer than the limit of 5 characters");
  s = jstr("\xe6\x97\xa5\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80");
  CHECK(t, schema_validate(&max5, &s, NULL, &e) == -1); /* 21 bytes, so at least 6 characters */
  jv max1 = len_schema(k, kl, v, "maxLength", 1);
  s = jstr("ab");
  CHECK(t, schema_validate(&max1, &s, NULL, &e) == -1);
  CHECK_STR(t, e.msg, "args: string of 2 characters is longer than the limit of 1 character");
  jv min2 = len_schema(k, kl, v, "minLength", 2);
  s = jstr("\xf0\x9f\x94\x90"); /* one character of 4 bytes */
  CHECK(t, schema_validate(&min2, &s, NULL, &e) == -1);
  CHECK_STR(t, e.msg, "args: string of 1 character is shorter than the minimum of 2 characters");
  s = jstr("\xf0\x9f\x94\x90\xc3\xa9");
  CHECK(t, schema_validate(&min2, &s, NULL, &e) == 0);
  /* without maxLength, the caller's byte cap */
  jv plain = jstr("string");
  const char *pk[] = {"type"};
  size_t pl[1];
  jv pv[] = {plain};
  jv ps = jobj(pk, pl, pv, 1);
  schema_limits lim = SCHEMA_DEFAULT_LIMITS;
  lim.max_string = 4;
  s = jstr("\xc3\xa9\xc3\xa9\xc3\xa9");
  CHECK(t, schema_validate(&ps, &s, &lim, &e) == -1);
  CHECK_STR(t, e.msg, "args: string of 6 bytes is longer than the limit of 4 bytes");
}

/* The input of a check of a known tool by seat dev: its effect, schema and arguments, the
 * default limits, the rest zero (each test sets what else it needs). */
static gate_input known_tool(const char *tool, const char *effect, const jv *schema, const jv *args) {
  gate_input in;
  memset(&in, 0, sizeof in);
  schema_limits lim = SCHEMA_DEFAULT_LIMITS;
  in.schema_limits = lim;
  in.seat = "dev";
  in.tool = tool;
  in.tool_known = 1;
  in.effect = effect;
  in.schema = schema;
  in.args = args;
  return in;
}

TEST(test_gate_order) {
  jv fmt = jstr("path"), t_string = jstr("string");
  const char *pk[] = {"type", "format"};
  size_t pl[2];
  jv pv[] = {t_string, fmt};
  jv ps = jobj(pk, pl, pv, 2);
  const char *propk[] = {"path"};
  size_t propl[1];
  jv propv[] = {ps};
  jv props = jobj(propk, propl, propv, 1);
  const char *sk[] = {"properties"};
  size_t sl[1];
  jv sv[] = {props};
  jv schema = jobj(sk, sl, sv, 1);
  const char *ak[] = {"path"};
  size_t al[1];
  jv av[] = {jstr("src/a.c")};
  jv args = jobj(ak, al, av, 1);
  const char *roles[] = {"coder"};
  gate_input in = known_tool("write_file", "write", &schema, &args);
  in.roles = roles;
  in.n_roles = 1;
  gate_decision d;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ALLOWED");
  CHECK(t, d.verdict == GATE_ALLOW);

  av[0] = jstr("a/../../x");
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "PATH_ESCAPE");
  av[0] = jstr(".orket/x.lua");
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "PATH_PROTECTED");
  av[0] = jstr("tools/x.lua"); /* the team's, in its repository: Orket's tools/ is in the project folder */
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ALLOWED");
  av[0] = jstr("src/a.c");

  in.limits.calls_turn = 3;
  in.turn.calls = 3;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "LIMIT_EXCEEDED");
  in.turn.calls = 0;

  /* status changes: the state machine decides, from the card's facts */
  in.card_id = "I-1";
  in.card_status = "code_review";
  in.card_worked_by = "other";
  in.fixed_status = "done";
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "EREVIEWER"); /* a coder may not approve */
  CHECK(t, d.verdict == GATE_DENY && strstr(d.reason, "from code_review to done") != NULL);
  in.card_status = "in_progress";
  in.fixed_status = "waiting_for_developer";
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "EREASON_REQUIRED");
  in.fixed_reason = "input";
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ALLOWED");
  long long bytes = -1, files = -1;
  gate_measure(&schema, &args, "write", &bytes, &files); /* what the call adds once it ran */
  CHECK(t, bytes == 0 && files == 1);
  gate_measure(&schema, &args, "read", &bytes, &files);
  CHECK(t, bytes == 0 && files == 0);
  in.fixed_reason = NULL;
  in.card_status = "ready";
  in.fixed_status = "in_progress";
  in.card_deps_open = 1;
  gate_check(&in, &d);
  CHECK(t, d.verdict == GATE_DENY && strcmp(d.code, "ALLOWED") != 0);
  in.card_deps_open = 0;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ALLOWED");
  in.fixed_status = NULL;
  in.fixed_reason = NULL;

  /* arguments nobody can judge come right after the tool and role checks */
  in.args_error = "arguments are a JSON array, not an object";
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ARGS_MALFORMED");
  CHECK_STR(t, d.reason, "write_file: the call's arguments are a JSON array, not an object");
  in.tool_known = 0;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "TOOL_UNKNOWN");
  in.tool_known = 1;
  in.args_error = NULL;
  in.args_bad = "args.x: functions, userdata and threads are not plain data";
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ARGS_INVALID");
  in.args_bad = NULL;

  const char *paths[] = {"src/**"};
  gate_rule rules[2];
  memset(rules, 0, sizeof rules);
  rules[0].level = GATE_RULE_ALLOW;
  rules[0].tool = "write_file";
  rules[1].level = GATE_RULE_ASK;
  rules[1].paths = paths;
  rules[1].n_paths = 1;
  rules[1].name = "p.lua:2";
  in.rules = rules;
  in.n_rules = 2;
  gate_check(&in, &d); /* ask is consulted before allow, whatever the order written */
  CHECK_STR(t, d.code, "POLICY_ASK");
  CHECK(t, d.verdict == GATE_ASK && d.rule == 1);

  in.tool_known = 0;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "TOOL_UNKNOWN");
}

TEST(test_toolscan) {
  ts_result r;
  const char *s = "say {\"a\": \"}{\\\"\"} and {\"b\": [1, {\"c\": 2}]} end";
  toolscan_scan(s, strlen(s), &r);
  CHECK(t, r.n == 2);
  CHECK(t, r.spans[0].status == TS_OK && r.spans[0].start == 4 && s[r.spans[0].start + r.spans[0].len - 1] == '}');
  CHECK(t, r.spans[1].status == TS_OK);
  const char *bad = "{\"a\": [}";
  toolscan_scan(bad, strlen(bad), &r);
  CHECK(t, r.n >= 1 && r.spans[0].status == TS_MISMATCH && r.spans[0].err_at == 7);
  const char *open = "x {\"a\": \"unterminated";
  toolscan_scan(open, strlen(open), &r);
  CHECK(t, r.n == 1 && r.spans[0].status == TS_UNTERMINATED);
  char deep[200];
  memset(deep, '{', sizeof deep);
  toolscan_scan(deep, sizeof deep, &r);
  CHECK(t, r.n == TS_MAX_SPANS && r.truncated && r.spans[0].status == TS_TOO_DEEP);
}

static jv jarr(jv *items, size_t n) {
  jv v;
  memset(&v, 0, sizeof v);
  v.type = JV_ARR;
  v.n = n;
  v.u.items = items;
  return v;
}

/* A tool whose paths sit inside objects and lists:
 * {edits = [{path, content}], target = {dirs = [path...]}} */
TEST(test_gate_nested_paths) {
  jv t_string = jstr("string"), t_object = jstr("object"), t_array = jstr("array");
  const char *fk[] = {"type", "format"};
  size_t pl[2], cl[2], dl[2];
  jv pathv[] = {t_string, jstr("path")}, contv[] = {t_string, jstr("content")};
  jv path_s = jobj(fk, pl, pathv, 2), cont_s = jobj(fk, cl, contv, 2);
  const char *ek[] = {"path", "content"};
  size_t el[2];
  jv ev[] = {path_s, cont_s};
  jv eprops = jobj(ek, el, ev, 2);
  const char *ok_[] = {"type", "properties"};
  size_t ol[2];
  jv ov[] = {t_object, eprops};
  jv edit_s = jobj(ok_, ol, ov, 2);
  const char *ak_[] = {"type", "items"};
  size_t al_[2];
  jv arrv[] = {t_array, edit_s};
  jv edits_s = jobj(ak_, al_, arrv, 2);
  /* target.dirs: a list whose own schema says format = "path" */
  jv dirsv[] = {t_array, jstr("path")};
  jv dirs_s = jobj(fk, dl, dirsv, 2);
  const char *tk[] = {"dirs"};
  size_t tl[1];
  jv tv[] = {dirs_s};
  jv tprops = jobj(tk, tl, tv, 1);
  size_t tol[2];
  jv tov[] = {t_object, tprops};
  jv target_s = jobj(ok_, tol, tov, 2);
  const char *rk[] = {"edits", "target"};
  size_t rl[2];
  jv rv[] = {edits_s, target_s};
  jv rprops = jobj(rk, rl, rv, 2);
  const char *sk[] = {"type", "properties"};
  size_t sl[2];
  jv sv[] = {t_object, rprops};
  jv schema = jobj(sk, sl, sv, 2);
  schema_err se;
  CHECK(t, schema_check(&schema, "parameters", &se) == 0);

  /* args: {edits = [{path="a.c", content="xyz"}, {path="b.c", content="12"}],
   *        target = {dirs = ["src", "lib"]}} */
  size_t e1l[2], e2l[2];
  jv e1v[] = {jstr("a.c"), jstr("xyz")}, e2v[] = {jstr("b.c"), jstr("12")};
  jv edit_items[] = {jobj(ek, e1l, e1v, 2), jobj(ek, e2l, e2v, 2)};
  jv dir_items[] = {jstr("src"), jstr("lib")};
  size_t tal[1];
  jv tav[] = {jarr(dir_items, 2)};
  size_t argl[2];
  jv argv_[] = {jarr(edit_items, 2), jobj(tk, tal, tav, 1)};
  jv args = jobj(rk, argl, argv_, 2);

  const char *roles[] = {"coder"};
  gate_input in = known_tool("apply_edits", "write", &schema, &args);
  in.roles = roles;
  in.n_roles = 1;
  gate_decision d;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ALLOWED");

  e2v[0] = jstr("../../etc/passwd");
  edit_items[1] = jobj(ek, e2l, e2v, 2);
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "PATH_ESCAPE");
  CHECK(t, strstr(d.reason, "argument 'edits[1].path'") != NULL);
  e2v[0] = jstr("/abs");
  edit_items[1] = jobj(ek, e2l, e2v, 2);
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "PATH_ESCAPE");
  e2v[0] = jstr("b.c");
  edit_items[1] = jobj(ek, e2l, e2v, 2);

  dir_items[1] = jstr("src/../../x");
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "PATH_ESCAPE");
  CHECK(t, strstr(d.reason, "argument 'target.dirs[1]'") != NULL);
  dir_items[1] = jstr(".orket/orket.db");
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "PATH_PROTECTED");
  CHECK(t, strstr(d.reason, "argument 'target.dirs[1]' names a protected path: .orket/orket.db") != NULL);
  in.effect = "read"; /* a reader may name control files, never escape */
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ALLOWED");
  in.effect = "write";
  dir_items[1] = jstr("lib");

  /* four paths and five content bytes, wherever they sit */
  in.limits.files_turn = 3;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "LIMIT_EXCEEDED");
  CHECK(t, strstr(d.reason, "this call adds 4") != NULL);
  in.limits.files_turn = 4;
  in.limits.bytes_turn = 4;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "LIMIT_EXCEEDED");
  CHECK(t, strstr(d.reason, "bytes written") != NULL && strstr(d.reason, "adds 5") != NULL);
  in.limits.bytes_turn = 5;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ALLOWED");

  /* policy path globs see nested paths too */
  const char *deny_paths[] = {"lib/**"};
  gate_rule rule;
  memset(&rule, 0, sizeof rule);
  rule.level = GATE_RULE_DENY;
  rule.paths = deny_paths;
  rule.n_paths = 1;
  rule.name = "p.lua:1";
  in.rules = &rule;
  in.n_rules = 1;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "POLICY_DENY");
  const char *inside[] = {"src/**", "*.c"};
  rule.paths = NULL;
  rule.n_paths = 0;
  rule.outside = inside;
  rule.n_outside = 2;
  gate_check(&in, &d); /* "lib" is outside both */
  CHECK_STR(t, d.code, "POLICY_DENY");
  dir_items[1] = jstr("src/x");
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ALLOWED");
}

/* The one table of effect kinds: what each means to the gate and the engine. */
/* The decision's texts are cut to their buffers as snprintf cuts them: an allowed call's
 * reason for a tool name longer than the buffer, and an argument's name in a refusal cut
 * to 100 bytes (the gate writes both without snprintf). */
TEST(test_gate_texts_cut) {
  static char tool[1100], key[151], want[1024], part[128];
  memset(tool, 't', sizeof tool - 1);
  memset(key, 'k', sizeof key - 1);
  const char *fk[] = {"type", "format"};
  size_t pl[2];
  jv pathv[] = {jstr("string"), jstr("path")};
  const char *pk[] = {key};
  size_t pkl[1];
  jv pv[] = {jobj(fk, pl, pathv, 2)};
  const char *sk[] = {"type", "properties"};
  size_t sl[2];
  jv sv[] = {jstr("object"), jobj(pk, pkl, pv, 1)};
  jv schema = jobj(sk, sl, sv, 2);
  size_t al[1];
  jv av[] = {jstr("src/a.c")};
  jv args = jobj(pk, al, av, 1);
  gate_input in = known_tool(tool, "write", &schema, &args);
  gate_decision d;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ALLOWED");
  memset(want, 't', sizeof want - 1); /* the name alone fills the reason's 1023 bytes */
  CHECK_STR(t, d.reason, want);
  CHECK_STR(t, d.remedy, "");
  av[0] = jstr("../x");
  in.tool = "w";
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "PATH_ESCAPE");
  snprintf(part, sizeof part, "argument '%.100s'", key);
  CHECK(t, strstr(d.reason, part) != NULL);
}

TEST(test_gate_effects) {
  unsigned f;
  CHECK(t, gate_effect_flags("write", &f) == 0);
  CHECK(t, f == (GATE_EFFECT_DECLARED | GATE_EFFECT_WRITES | GATE_EFFECT_OUTSIDE | GATE_EFFECT_RECOVER));
  CHECK(t, gate_effect_flags("process", &f) == 0);
  CHECK(t, (f & GATE_EFFECT_PROGRAM) && (f & GATE_EFFECT_OUTSIDE) && !(f & GATE_EFFECT_WRITES));
  CHECK(t, gate_effect_flags("mcp", &f) == 0);
  CHECK(t, f == GATE_EFFECT_OUTSIDE); /* given by the runtime, never declared by a tool file */
  CHECK(t, gate_effect_flags(NULL, &f) == 0 && f == GATE_EFFECT_DECLARED); /* "read" */
  CHECK(t, gate_effect_flags("board", &f) == 0 && f == GATE_EFFECT_DECLARED);
  CHECK(t, gate_effect_flags("Write", &f) == -1 && f == 0);
  size_t n = 0;
  for (const gate_effect *e = gate_effects(); e->name; e++) n++;
  CHECK(t, n == 6);
}

/* A tool that runs a program, allowed by every check and no policy: asked about unless
 * argv[0] is one of the project's commands as written; decided in the gate itself. */
TEST(test_gate_command_ask) {
  const char *ak[] = {"argv"};
  size_t al[1];
  jv prog[] = {jstr("make"), jstr("test")};
  jv argv;
  memset(&argv, 0, sizeof argv);
  argv.type = JV_ARR;
  argv.n = 2;
  argv.u.items = prog;
  jv av[] = {argv};
  jv args = jobj(ak, al, av, 1);
  jv schema;
  memset(&schema, 0, sizeof schema);
  schema.type = JV_OBJ; /* {}: any arguments */
  gate_input in = known_tool("run_command", "process", &schema, &args);
  gate_decision d;
  gate_check(&in, &d);
  CHECK(t, d.verdict == GATE_ASK);
  CHECK_STR(t, d.code, "COMMAND_ASK");
  CHECK_STR(t, d.reason, "program \"make\" is not in verify.commands and no policy allows it");
  const char *commands[] = {"lua", "make"};
  in.commands = commands;
  in.n_commands = 2;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ALLOWED");
  /* argv[0] exactly: no PATH lookup, no prefix */
  prog[0] = jstr("/usr/bin/make");
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "COMMAND_ASK");
  prog[0] = jstr("mak");
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "COMMAND_ASK");
  /* the model's text stays on one quoted line */
  prog[0] = jstr("a\"b\nc");
  gate_check(&in, &d);
  CHECK_STR(t, d.reason, "program \"a?b?c\" is not in verify.commands and no policy allows it");
  /* a policy's allow stands */
  gate_rule allow = {.level = GATE_RULE_ALLOW, .name = "p.lua:1", .tool = "run_command"};
  in.rules = &allow;
  in.n_rules = 1;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "POLICY_ALLOW");
  in.rules = NULL;
  in.n_rules = 0;
  /* no argv: nothing to ask (run_tests runs the project's own command) */
  jv none = jobj(NULL, NULL, NULL, 0);
  in.args = &none;
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ALLOWED");
  /* another effect never asks; an effect the table does not know is refused */
  in.args = &args;
  in.n_commands = 0;
  in.effect = "write";
  gate_check(&in, &d);
  CHECK_STR(t, d.code, "ALLOWED");
  in.effect = "exec";
  gate_check(&in, &d);
  CHECK(t, d.verdict == GATE_DENY);
  CHECK_STR(t, d.code, "INTERNAL");
  CHECK(t, strstr(d.reason, "unknown effect kind 'exec'") != NULL);
}
