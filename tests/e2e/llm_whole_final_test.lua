-- A server that answers a streamed request with one whole answer fails the call once, and
-- finally: the engine does not ask again (budgets.model_retries) for the same whole answer,
-- and the call is not charged (docs/llm.md, `stream`).
local llm = require "orket.llm"
local fake = require("tests.fake_server").start()
local USER = { { role = "user", content = "hello" } }

teardown(function() fake.stop() end)

describe("a whole answer to a streamed request", function()
  it("is a final failure, asked once, not charged", function()
    local c = llm.new { default = "oa:ok", providers = { oa = { kind = "openai", base_url = fake.url .. "/v1",
      retry = { max_attempts = 4, base_ms = 5, max_ms = 100 } } } }
    local r, msg, class, failure = c:chat { model = "oa:whole", messages = USER, stream = true }
    assert.is_nil(r)
    assert.equal("transient", class)
    assert.matches("set models.providers.oa.stream = false", msg, 1, true)
    assert.equal(1, fake.requests("whole"))
    assert.equal(1, failure.attempts)
    -- final: the engine's retries would get the same whole answer again
    assert.is_true(failure.final)
    -- not read as an answer: nothing the engine charges (turn.lua: failure.delivered)
    assert.is_nil(failure.delivered)
  end)
end)
