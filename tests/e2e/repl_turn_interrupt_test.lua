-- Ctrl-C in `orket repl` while project:turn waits for a model call the server already has:
-- the call was billed, so it is charged and journaled as `orket run`'s stop does (a
-- charged model_failure of class canceled, aborted; docs/cost.md), and the turn's start
-- (turn_begin, the card's move) with it. Before, the REPL's cancel left no trace of it.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local PTY = H.BIN:gsub("orket$", "ptydrive")
local fake = F.model_server(teardown)
after_each(H.cleanup)

local PRICE = [[{ input = "2.50", cached_input = "1.25", output = 10, currency = "USD" }]]

describe("orket repl's Ctrl-C during project:turn", function()
  it("charges and journals the call in flight, as orket run's Ctrl-C does", function()
    fake.reset()
    local S = "prompt=1000,first_byte_ms=6000"
    local dir = fake.one_issue(string.format([[
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q, retry = { max_attempts = 1 } } },
  prices = { ["fake:%s"] = %s } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { max_output_tokens = 100 }
]], S, fake.url .. "/v1", S, PRICE))
    local steps = table.concat({ "expect > ", "sleep 150", 'send project:turn("M-1")', "sleep 2000", "keys \\x03",
      "expect interrupted", "expect > ", "sleep 150", "eof" }, "\n") .. "\n"
    H.write(dir .. "/steps", steps)
    local p = io.popen(string.format("cd %s && env ORKET_HISTORY= TERM=dumb %s -t 20 -- %s repl <steps 2>&1",
      H.quote(dir), H.quote(PTY), H.quote(H.BIN)))
    local out = p:read("a")
    p:close()
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.equal(1, #fake.log(), "the call reached the server")
    local db <close> = assert(require("orket.project").open_store(dir))
    local kinds, failure = {}, nil
    for _, r in ipairs(assert(db:rows("SELECT kind, data FROM events WHERE card_id = 'M-1' ORDER BY id"))) do
      kinds[#kinds + 1] = r.kind
      if r.kind == "model_failure" then failure = cjson.decode(r.data) end
    end
    assert.truthy(failure, table.concat(kinds, " "))
    assert.same({ "canceled", true, 100, "USD" }, { failure.class, failure.aborted, failure.completion_tokens,
      failure.currency })
    assert.matches("turn_begin", table.concat(kinds, " "))
    local usage = require("orket.store.costs").totals(db, { run = 1 })
    assert.same({ 1, 1, { USD = failure.cost } }, { usage.calls, usage.priced, usage.cost })
    local run = db:row("SELECT status FROM runs WHERE id = 1")
    assert.equal("interrupted", run.status)
  end)
end)
