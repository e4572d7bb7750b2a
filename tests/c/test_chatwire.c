/* test_chatwire.c: the decoder of streamed chat events: content and tool calls assembled
 * across events, usage and finish reason, Ollama's done line and calls, the pieces handed
 * to a caller as they are applied, and failures (sticky, and leaving state untouched).
 * tests/spec/core/chatwire_spec.lua covers the wire formats' rules event by event. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "chatwire.h"
#include "tests.h"

static int tc_take(chatwire *w, const char *s) { return chatwire_take(w, s, strlen(s)); }

static int tc_eq(const chatwire_buf *b, const char *s) {
  return b->len == strlen(s) && (b->len == 0 || memcmp(b->p, s, b->len) == 0);
}

TEST(test_chatwire_openai_content) {
  chatwire w;
  chatwire_init(&w, CHATWIRE_OPENAI);
  CHECK(t, tc_take(&w, "{\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}") == 1);
  CHECK(t, w.deltas == 0); /* an empty piece is not a delta */
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"content\":\"h\\u00e9\\n\\\"\"},\"logprobs\":{\"x\":[1,[2,{}]]}}]}") == 1);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other choice\"},\"finish_reason\":\"length\"}]}") == 1);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2.0}}") == 1);
  CHECK(t, tc_eq(&w.content, "h\xc3\xa9\n\""));
  CHECK(t, w.deltas == 1);
  CHECK(t, w.has_id && tc_eq(&w.id, "c1") && w.has_model && tc_eq(&w.model, "m"));
  CHECK(t, w.has_finish && tc_eq(&w.finish, "stop"));
  CHECK(t, w.has_usage && w.prompt.set && w.prompt.v == 11 && w.completion.set && w.completion.v == 2);
  /* a number that is no whole count arrives as it is, for the caller to refuse; a
   * negative one too: it is whole, and no count */
  CHECK(t, tc_take(&w, "{\"usage\":{\"prompt_tokens\":1.5,\"completion_tokens\":\"1e999\"}}") == 1);
  CHECK(t, w.has_usage && w.prompt.set && !w.prompt.whole && w.prompt.num == 1.5);
  CHECK(t, w.completion.set && !w.completion.whole && isinf(w.completion.num));
  CHECK(t, tc_take(&w, "{\"usage\":{\"prompt_tokens\":-5000000000,\"completion_tokens\":\"x\"}}") == 1);
  CHECK(t, w.prompt.set && w.prompt.whole && w.prompt.v == -5000000000LL && !w.completion.set);
  /* text is a count only as a decimal number's text: hex, inf and words are no count (a
   * priced call is then charged its estimate), as JSON writes a number is one */
  CHECK(t, tc_take(&w, "{\"usage\":{\"prompt_tokens\":\"0x10\",\"completion_tokens\":\" 7 \"}}") == 1);
  CHECK(t, !w.prompt.set && w.completion.set && w.completion.v == 7);
  CHECK(t, tc_take(&w, "{\"usage\":{\"prompt_tokens\":\"inf\",\"completion_tokens\":\"\"}}") == 1);
  CHECK(t, !w.prompt.set && !w.completion.set);
  CHECK(t, tc_take(&w, "{\"usage\":{\"prompt_tokens\":\"1e3\",\"completion_tokens\":\"-5\"}}") == 1);
  CHECK(t, w.prompt.set && w.prompt.v == 1000 && w.completion.set && w.completion.v == -5);
  CHECK(t, tc_take(&w, "{\"usage\":{\"prompt_tokens\":\"12.\",\"completion_tokens\":\"+3\"}}") == 1);
  CHECK(t, !w.prompt.set && !w.completion.set);
  chatwire_free(&w);
}

TEST(test_chatwire_openai_tool_calls) {
  chatwire w;
  chatwire_init(&w, CHATWIRE_OPENAI);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"write_file\",\"arguments\":\"\"}}]}}]}") == 1);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"path\\\":\"}}]}}]}") == 1);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"a\\\"}\"}},{\"index\":1,\"id\":\"call_2\",\"function\":{\"name\":\"read\"}}]}}]}") == 1);
  CHECK(t, w.ncalls == 2);
  CHECK(t, tc_eq(&w.calls[0].id, "call_1") && tc_eq(&w.calls[0].name, "write_file"));
  CHECK(t, tc_eq(&w.calls[0].args, "{\"path\":\"a\"}"));
  CHECK(t, w.calls[1].has_name && tc_eq(&w.calls[1].name, "read") && w.calls[1].args.len == 0);
  CHECK(t, w.deltas == 3);
  /* indexes with gaps, negative or past 1023, in any order: each index a call, the calls
   * ordered by index */
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":5000,\"function\":{\"name\":\"x\"}}]}}]}") == 1);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":-1,\"function\":{\"name\":\"y\"}}]}}]}") == 1);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":5000,\"function\":{\"arguments\":\"{}\"}}]}}]}") == 1);
  CHECK(t, w.ncalls == 4 && tc_eq(&w.calls[2].name, "x") && tc_eq(&w.calls[2].args, "{}") && tc_eq(&w.calls[3].name, "y"));
  size_t at[4];
  chatwire_order(&w, at);
  CHECK(t, at[0] == 3 && at[1] == 0 && at[2] == 1 && at[3] == 2);
  chatwire_free(&w);

  /* no index (Gemini's endpoint, mistral.rs, SGLang): a new id is a new call, a piece with
   * neither continues the last one; the same index with a new id (0 for every call) too */
  chatwire_init(&w, CHATWIRE_OPENAI);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"p\\\"\"}}]}}]}") == 1);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\":1}\"}}]}}]}") == 1);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"b\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}") == 1);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"h\"}}]}}]}") == 1);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"d\",\"function\":{\"name\":\"i\"}}]}}]}") == 1);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}") == 1);
  CHECK(t, w.ncalls == 4 && tc_eq(&w.calls[0].name, "f") && tc_eq(&w.calls[0].args, "{\"p\":1}"));
  CHECK(t, tc_eq(&w.calls[1].name, "g") && tc_eq(&w.calls[2].name, "h") && w.calls[2].args.len == 0);
  CHECK(t, tc_eq(&w.calls[3].name, "i") && tc_eq(&w.calls[3].args, "{}"));
  chatwire_free(&w);

  /* more calls than any answer holds: refused, not kept */
  chatwire_init(&w, CHATWIRE_OPENAI);
  char ev[128];
  for (int i = 0; i < 1024; i++) {
    snprintf(ev, sizeof ev, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":%d,\"function\":{\"name\":\"x\"}}]}}]}", i * 7);
    CHECK(t, tc_take(&w, ev) == 1);
  }
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"name\":\"x\"}}]}}]}") == 0);
  CHECK(t, w.failed == CHATWIRE_E_MALFORMED && tc_eq(&w.why, "more than 1024 tool calls in one answer") && w.ncalls == 1024);
  chatwire_free(&w);
}

TEST(test_chatwire_failures) {
  static const struct {
    const char *event;
    chatwire_failure failed;
    const char *why;
  } cases[] = {
      {"{\"error\":{\"message\":\"boom\"}}", CHATWIRE_E_SERVER, "{\"message\":\"boom\"}"},
      {"{\"choices\":[],\"error\":null}", CHATWIRE_E_SERVER, "null"},
      {"\"text\"", CHATWIRE_E_NOT_OBJECT, ""},
      {"{\"choices\": [{\"delta\": ", CHATWIRE_E_JSON, "parse error: premature EOF"},
      {"{\"id\":\"a\",\"id\":\"b\"}", CHATWIRE_E_MALFORMED, "repeated key \"id\""},
      {"{\"choices\":[{\"delta\":{\"content\":\"\\ud83d\"}}]}", CHATWIRE_E_JSON, "invalid unicode escape (a lone surrogate) at byte 34"},
      {"{\"choices\":[{\"delta\":7}]}", CHATWIRE_E_MALFORMED, "choices[1].delta is a number, not an object"},
      {"{\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":[]}]}}]}", CHATWIRE_E_MALFORMED, "tool_calls[1].id is an empty object or list, not a string"},
      {"{\"a\":1} {\"b\":2}", CHATWIRE_E_JSON, "more than one JSON value (the first ends at byte 7)"},
      {"{\"a\":1} x", CHATWIRE_E_JSON, "lexical error: invalid char in json text."},
      {"", CHATWIRE_E_JSON, "no JSON value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    chatwire w;
    chatwire_init(&w, CHATWIRE_OPENAI);
    CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"content\":\"kept\"}}]}") == 1);
    CHECK(t, tc_take(&w, cases[i].event) == 0);
    CHECK(t, w.failed == cases[i].failed && tc_eq(&w.why, cases[i].why));
    CHECK(t, tc_eq(&w.content, "kept")); /* failed whole: nothing of it applied */
    /* sticky: a good event after a failure is not taken */
    CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"content\":\"more\"}}]}") == 0);
    CHECK(t, tc_eq(&w.content, "kept"));
    chatwire_free(&w);
  }
}

/* 1000 levels of nesting are taken, 1001 are not (as lua-cjson decides). */
TEST(test_chatwire_depth) {
  static char ev[2100];
  for (int levels = 1000; levels <= 1001; levels++) {
    size_t n = 0;
    n += (size_t)snprintf(ev, sizeof ev, "{\"x\":");
    for (int i = 1; i < levels; i++) ev[n++] = '[';
    for (int i = 1; i < levels; i++) ev[n++] = ']';
    ev[n++] = '}';
    ev[n] = '\0';
    chatwire w;
    chatwire_init(&w, CHATWIRE_OPENAI);
    CHECK(t, chatwire_take(&w, ev, n) == (levels == 1000 ? 1 : 0));
    CHECK(t, levels == 1000 || w.failed == CHATWIRE_E_JSON);
    chatwire_free(&w);
  }
}

typedef struct tc_seen {
  char log[256];
  size_t n;
} tc_seen;

static void tc_piece(void *ud, const chatwire *w, const chatwire_piece *p) {
  tc_seen *s = ud;
  (void)w;
  s->n += (size_t)snprintf(s->log + s->n, sizeof s->log - s->n, "%s%zu:%.*s;", p->is_call ? "call" : "text", p->index,
                           p->text ? (int)p->len : 0, p->text ? p->text : "");
}

TEST(test_chatwire_pieces) {
  chatwire w;
  tc_seen seen = {{0}, 0};
  chatwire_init(&w, CHATWIRE_OPENAI);
  w.piece = tc_piece;
  w.piece_ud = &seen;
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{}\"}},{\"index\":0,\"function\":{\"name\":\"f\"}}],\"content\":\"hi\"}}]}") == 1);
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":{\"a\":1}}}]}}]}") == 1);
  /* a piece's index is its call's place as the calls began (index 1 came first), the
   * answer's order is by index */
  CHECK(t, strcmp(seen.log, "text0:hi;call0:{};call1:;call1:;") == 0);
  CHECK(t, tc_eq(&w.calls[1].args, "{\"a\":1}") && w.deltas == 2);
  size_t at[2];
  chatwire_order(&w, at);
  CHECK(t, at[0] == 1 && at[1] == 0);
  chatwire_free(&w);
}

/* content as a list of parts: the text parts joined, in order and before the calls; any other
 * part, or content of another type, is a malformed piece rather than words dropped. */
TEST(test_chatwire_content_parts) {
  chatwire w;
  tc_seen seen = {{0}, 0};
  chatwire_init(&w, CHATWIRE_OPENAI);
  w.piece = tc_piece;
  w.piece_ud = &seen;
  CHECK(t, tc_take(&w, "{\"choices\":[{\"index\":0,\"message\":{\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}],"
                       "\"content\":[{\"type\":\"text\",\"text\":\"one \"},{\"text\":\"\",\"type\":\"text\"},{\"text\":\"two\",\"type\":\"text\",\"x\":[1]}]}}]}") == 1);
  CHECK(t, tc_eq(&w.content, "one two") && w.ncalls == 1);
  CHECK(t, strcmp(seen.log, "text0:one ;text0:two;call0:{};") == 0);
  chatwire_free(&w);
  static const struct { chatwire_kind kind; const char *ev, *why; } bad[] = {
      {CHATWIRE_OPENAI, "{\"choices\":[{\"message\":{\"content\":[{\"type\":\"refusal\",\"refusal\":\"no\"}]}}]}",
       "content[1] is a part of type \"refusal\", not text"},
      {CHATWIRE_OPENAI, "{\"choices\":[{\"delta\":{\"content\":[{\"type\":\"text\",\"text\":\"a\"},\"b\"]}}]}",
       "content[2] is a string, not a text part"},
      {CHATWIRE_OPENAI, "{\"choices\":[{\"delta\":{\"content\":[{\"type\":\"text\",\"text\":{}}]}}]}",
       "content[1].text is an empty object or list, not a string"},
      {CHATWIRE_OPENAI, "{\"choices\":[{\"delta\":{\"content\":[{\"text\":\"a\"}]}}]}", "content[1] has no type"},
      {CHATWIRE_OPENAI, "{\"choices\":[{\"delta\":{\"content\":[{\"type\":\"text\"}]}}]}", "content[1] has no text"},
      {CHATWIRE_OPENAI, "{\"choices\":[{\"delta\":{\"content\":[{\"type\":1}]}}]}", "content[1].type is a number, not a string"},
      {CHATWIRE_OPENAI, "{\"choices\":[{\"delta\":{\"content\":7}}]}", "content is a number, not a string or a list of text parts"},
      {CHATWIRE_OLLAMA, "{\"message\":{\"content\":{\"text\":\"a\"}}}", "message.content is an object, not a string or a list of text parts"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    chatwire_init(&w, bad[i].kind);
    CHECK(t, tc_take(&w, bad[i].ev) == 0);
    CHECK(t, w.failed == CHATWIRE_E_MALFORMED && tc_eq(&w.why, bad[i].why));
    if (!tc_eq(&w.why, bad[i].why)) fprintf(stderr, "  %zu: %.*s\n", i, (int)w.why.len, w.why.p ? w.why.p : "");
    chatwire_free(&w);
  }
  chatwire_init(&w, CHATWIRE_OLLAMA); /* null content is no content, as before */
  CHECK(t, tc_take(&w, "{\"message\":{\"content\":null},\"done\":false}") == 1 && w.content.len == 0);
  chatwire_free(&w);
}

TEST(test_chatwire_ollama) {
  chatwire w;
  chatwire_init(&w, CHATWIRE_OLLAMA);
  CHECK(t, tc_take(&w, "{\"model\":\"q\",\"created_at\":\"x\",\"message\":{\"role\":\"assistant\",\"content\":\"a \\u003cb\\u003e\"},\"done\":false}") == 1);
  CHECK(t, !w.done && !w.has_usage);
  CHECK(t, tc_take(&w, "{\"model\":\"q\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":13,\"eval_count\":5}") == 1);
  CHECK(t, tc_eq(&w.content, "a <b>") && w.done && w.has_finish && tc_eq(&w.finish, "stop"));
  CHECK(t, w.has_usage && w.prompt.v == 13 && w.completion.v == 5);
  chatwire_free(&w);
  chatwire_init(&w, CHATWIRE_OLLAMA); /* calls arrive whole, arguments as an object */
  CHECK(t, tc_take(&w, "{\"message\":{\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":{ \"a\" : [1] }}}]},\"done\":false}") == 1);
  CHECK(t, tc_take(&w, "{\"message\":{\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}") == 1);
  CHECK(t, w.ncalls == 2 && tc_eq(&w.calls[0].name, "f") && w.calls[0].args_json && tc_eq(&w.calls[0].args, "{ \"a\" : [1] }"));
  CHECK(t, tc_eq(&w.calls[1].id, "c") && !w.calls[1].args_json && tc_eq(&w.calls[1].args, "{}"));
  CHECK(t, tc_take(&w, "{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"\"}}]}}") == 0);
  CHECK(t, w.failed == CHATWIRE_E_MALFORMED && tc_eq(&w.why, "message.tool_calls[1].function.name is a string, not a tool name"));
  chatwire_free(&w);
  chatwire_init(&w, CHATWIRE_OLLAMA);
  CHECK(t, tc_take(&w, "{\"error\":\"model not found\"}") == 0);
  CHECK(t, w.failed == CHATWIRE_E_SERVER && w.why_string && tc_eq(&w.why, "model not found"));
  chatwire_free(&w);
}
