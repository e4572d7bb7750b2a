/* test_chatwire.c: the C decoder of streamed chat events: content and tool calls assembled
 * across events, usage and finish reason, Ollama's done line, and the refusals that hand
 * the rest of a stream back to the Lua wire formats (sticky, and leaving state untouched). */
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
  CHECK(t, tc_take(&w, "{\"usage\":{\"prompt_tokens\":1.5}}") == 1); /* not an integer: nil */
  CHECK(t, w.has_usage && !w.prompt.set && !w.completion.set);
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
  /* a gap in the indexes is the Lua code's to judge */
  CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":5,\"function\":{\"name\":\"x\"}}]}}]}") == 0);
  CHECK(t, w.refused && w.ncalls == 2);
  chatwire_free(&w);
}

TEST(test_chatwire_refusals) {
  static const char *const refused[] = {
      "{\"error\":{\"message\":\"boom\"}}",                      /* errors are classified in Lua */
      "{\"error\":null}",
      "[1,2]",                                                  /* not an object */
      "{\"choices\": [{\"delta\": ",                            /* malformed */
      "{\"id\":\"a\",\"id\":\"b\"}",                            /* repeated key */
      "{\"choices\":[{\"delta\":{\"content\":\"a\\u0000b\"}}]}", /* decoders may disagree */
      "{\"choices\":[{\"delta\":{\"content\":\"\\ud83d\\ude00\"}}]}",
      "{\"choices\":[{\"delta\":null}]}",
      "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":{\"a\":1}}}]}}]}",
      "{\"choices\":{\"0\":{}}}",
      "{\"usage\":{\"prompt_tokens\":\"11\"}}",
      "{\"a\":1} {\"b\":2}",                                    /* two values */
      "",
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    chatwire w;
    chatwire_init(&w, CHATWIRE_OPENAI);
    CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"content\":\"kept\"}}]}") == 1);
    CHECK(t, tc_take(&w, refused[i]) == 0);
    CHECK(t, tc_eq(&w.content, "kept")); /* refused whole: nothing of it applied */
    /* sticky: a good event after a refusal is the caller's too */
    CHECK(t, tc_take(&w, "{\"choices\":[{\"delta\":{\"content\":\"more\"}}]}") == 0);
    CHECK(t, tc_eq(&w.content, "kept"));
    chatwire_free(&w);
  }
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
  chatwire_init(&w, CHATWIRE_OLLAMA); /* tool calls are left to the Lua code */
  CHECK(t, tc_take(&w, "{\"message\":{\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":{}}}]},\"done\":false}") == 0);
  chatwire_free(&w);
  chatwire_init(&w, CHATWIRE_OLLAMA);
  CHECK(t, tc_take(&w, "{\"error\":\"model not found\"}") == 0);
  chatwire_free(&w);
}
