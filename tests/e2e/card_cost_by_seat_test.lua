-- orket card's model line by seat (docs/cost.md, "Where it shows"): a card's calls are the
-- coder's and the reviewer's, each on its own model and price; the card showed only their
-- sum, so what review cost beside the work was nowhere to be read. On SQLite, and on
-- PostgreSQL under tests/with_pg.lua (tests/backends.lua).
local H = require "tests.helpers"
local F = require "tests.fixtures"
local B = require "tests.backends"

local fake = F.model_server(teardown)
after_each(H.cleanup)

local CODER = "tool=update_issue_status,arg_status=code_review,prompt=4000,cached=3000"
local GUARD = "tool=update_issue_status,arg_status=done,prompt=2000"

-- the store line of orket.lua for the backend under test
local function store()
  return B.name() == "pg" and string.format("store = { url = %q }\n", B.fresh_url()) or ""
end

describe("orket card (" .. B.name() .. ")", function()
  before_each(function() fake.reset() end)

  it("shows the card's calls by seat under its model line, and an epic's the same", function()
    local dir = fake.one_issue(string.format([[
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q } },
  prices = { ["fake:%s"] = { input = "2.50", cached_input = "1.25", output = "10", currency = "USD" },
             ["fake:%s"] = { input = "0.15", cached_input = "0.075", output = "0.60", currency = "USD" } } }
team = { senior_developer = { roles = { "coder" } },
         integrity_guard = { roles = { "integrity_guard" }, model = "fake:%s" } }
%s]], CODER, fake.url .. "/v1", CODER, GUARD, GUARD, store()))
    local evs = fake.run_events(dir)
    assert.equal("done", evs.run_end[1].status)
    local out = H.orket("card M-1", { cwd = dir }).stdout
    -- the coder's call: 1000 tokens at 2.50, 3000 cached at 1.25, 5 output at 10 a million;
    -- the reviewer's: 2000 at 0.15, 5 at 0.60
    local pad = string.rep(" ", 14)
    assert.matches("\nmodel:        2 calls, 6000 prompt tokens %(3000 cached%), 10 output tokens, cost 0%.006603 USD\n"
      .. pad .. "integrity_guard: 1 call, 2000 prompt tokens, 5 output tokens, cost 0%.000303 USD\n"
      .. pad .. "senior_developer: 1 call, 4000 prompt tokens %(3000 cached%), 5 output tokens, cost 0%.0063 USD\n", out)
    local epic = H.orket("card M", { cwd = dir }).stdout
    assert.matches("\n" .. pad .. "integrity_guard: 1 call, 2000 prompt tokens, 5 output tokens, cost 0%.000303 USD\n",
      epic)
    -- --json (and the API's card) the same, as usage_by_seat
    local doc = require("cjson").decode(H.orket("card M-1 --json", { cwd = dir }).stdout)
    local by = {}
    for _, t in ipairs(doc.usage_by_seat) do by[t.seat] = { math.tointeger(t.calls), math.tointeger(t.cost.USD) } end
    assert.same({ integrity_guard = { 1, 303 }, senior_developer = { 1, 6300 } }, by)
  end)

  it("shows no seat lines when one seat made every call", function()
    local dir = fake.one_issue(string.format([[
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q } },
  prices = { ["fake:%s"] = { input = "2.50", cached_input = "1.25", output = "10", currency = "USD" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
%s]], "prompt=4000", fake.url .. "/v1", "prompt=4000", store()))
    fake.run_events(dir)
    local out = H.orket("card M-1", { cwd = dir }).stdout
    assert.matches("\nmodel:        1 call, 4000 prompt tokens, 5 output tokens, cost 0%.01005 USD\n[a-z]", out)
  end)
end)
