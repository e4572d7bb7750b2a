-- Experiments end to end (docs/cost.md, "Experiments"), against the fake model server, on
-- SQLite and PostgreSQL (tests/backends.lua): a board of issues runs with an experiment
-- sending a share of the cards to another model; each card's arm is the one the rule gives
-- its id, recorded once, and `orket experiments report` (and GET /v1/experiments/{name})
-- counts each arm's cards, done, turns, tokens and cost from what ran.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local B = require "tests.backends"
local cjson = require "cjson"
local rules = require "orket.settings.experiments"

local fake = F.model_server(teardown)
after_each(H.cleanup)

local N = 8
-- the variant's coder: the same calls as the team's (F.APPENDER_TEAM), each reporting a
-- prompt of 100 tokens where the fake's default is 11
local VARIANT = "fake:chunks=1,nolog,prompt=100,tool=append_line,arg_note=x,then=update_issue_status,then_arg_status=code_review"
local CODER = "fake:chunks=1,nolog,tool=append_line,arg_note=x,then=update_issue_status,then_arg_status=code_review"
local REVIEWER = "fake:chunks=1,nolog,tool=update_issue_status,arg_status=done"

local function project(share)
  local dir = H.tmpdir()
  F.appender(dir, fake.url, "experiments")
  local price = [[{ input = 1, cached_input = 1, output = 1, currency = "USD" }]]
  H.write(dir .. "/orket.lua", string.format([[
name = "experiments"
models = { default = "fake:chunks=1", providers = { fake = { kind = "openai", base_url = %q } },
  prices = { [%q] = %s, [%q] = %s, [%q] = %s } }
%s
experiments = { bigger_prompt = { share = %s, model = %q } }
%s]], fake.url .. "/v1", CODER, price, VARIANT, price, REVIEWER, price, F.APPENDER_TEAM, tostring(share), VARIANT,
    B.name() == "pg" and string.format("store = { url = %q }\n", B.fresh_url()) or ""))
  local issues = {}
  for i = 1, N do issues[i] = { id = "X-" .. i, summary = "Issue " .. i, seat = "senior_developer" } end
  H.write(dir .. "/epics/x.json", cjson.encode { id = "X", name = "Experiment", issues = issues })
  assert(H.orket("import", { cwd = dir }).status == 0)
  return dir
end

local function report(dir)
  local r = H.orket("experiments report bigger_prompt --json", { cwd = dir })
  assert(r.status == 0, r.stderr)
  return cjson.decode(r.stdout)
end

describe("an experiment (" .. B.name() .. ")", function()
  it("sends the cards its rule picks to the variant, records them, and reports both arms with counts", function()
    local dir = project(0.5)
    -- the arms the rule gives these ids, as any process computes them
    local want = { control = {}, variant = {} }
    local x = { bigger_prompt = { share = 0.5, model = VARIANT } }
    for i = 1, N do
      local id = "X-" .. i
      table.insert(want[rules.arms(x, id)[1].arm], id)
    end
    assert.is_true(#want.control > 0 and #want.variant > 0, "these ids fall in both arms")
    local r = H.orket("run X --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    -- the variant's calls report its 100 prompt tokens
    local seen = {}
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = cjson.decode(line)
      if ev.type == "model" and ev.prompt_tokens == 100 then seen[ev.card] = true end
    end
    for _, id in ipairs(want.variant) do assert.is_true(seen[id] == true, id .. " ran on the variant") end
    for _, id in ipairs(want.control) do assert.is_nil(seen[id], id .. " ran on the team's model") end
    -- each card's arm is recorded in the store
    local db = assert(require("orket.project").open_store(dir, false, true))
    for arm, ids in pairs(want) do
      for _, id in ipairs(ids) do
        local got = require("orket.store.experiments").of(db, id)
        assert.same({ { experiment = "bigger_prompt", arm = arm, model = arm == "variant" and VARIANT or nil } },
          { { experiment = got[1].experiment, arm = got[1].arm, model = got[1].model } })
      end
    end
    db:close()
    local doc = report(dir)
    assert.equal("orket.experiment/1", doc.format)
    local c, v = doc.arms.control, doc.arms.variant
    assert.same({ #want.control, #want.control, 1 }, { c.cards, c.done, c.done_rate })
    assert.same({ #want.variant, #want.variant, 1 }, { v.cards, v.done, v.done_rate })
    -- one work turn and one review turn a card; nothing sent back
    assert.same({ 2 * c.cards, 2 * v.cards, 0, 0 }, { c.turns, v.turns, c.rejections, v.rejections })
    -- three calls a card: the coder's two (100 or 11 prompt tokens each), the reviewer's one (11)
    assert.same({ 3 * c.cards, 3 * v.cards }, { c.tokens.calls, v.tokens.calls })
    assert.same({ 33 * c.cards, 211 * v.cards }, { c.tokens.input, v.tokens.input })
    -- the models the calls went to, as the journal names them (without the provider)
    local function bare(m) return (m:gsub("^fake:", "")) end
    assert.same({ bare(CODER), bare(REVIEWER) }, c.models)
    assert.same({ bare(VARIANT), bare(REVIEWER) }, v.models)
    assert.is_true(v.cost_per_card.USD > c.cost_per_card.USD)
    assert.same({ c.cards, v.cards }, { c.wall.done_cards, v.wall.done_cards })
    assert.is_true(c.wall.ms >= 0 and v.wall.ms >= 0)
    local text = H.orket("experiments report bigger_prompt", { cwd = dir }).stdout
    assert.matches("experiment bigger_prompt: share 0.5, model " .. VARIANT:gsub("%p", "%%%0"), text)
    assert.matches(string.format("\ncards%%s+%d%%s+%d\n", c.cards, v.cards), text)
    -- a share changed later moves no card that started: the report reads the recorded arms
    local lua = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", (lua:gsub("share = 0%.5", "share = 0.1")))
    local again = report(dir)
    assert.same({ c.cards, v.cards }, { again.arms.control.cards, again.arms.variant.cards })
    assert.equal(0.1, again.configured.share)
    -- the API answers the same document; an unknown experiment is a 404 naming the known ones
    local op = H.api_key(dir, "ops", "viewer")
    local s = H.serve(dir)
    local st, api = H.api(s, "GET", "/v1/experiments/bigger_prompt", op)
    assert.equal(200, st)
    assert.same(again.arms, api.arms)
    local st2, miss = H.api(s, "GET", "/v1/experiments/nope", op)
    assert.equal(404, st2)
    assert.matches("no experiment named \"nope\" %(experiments: bigger_prompt%)", miss.error.message)
    local _, oa = H.api(s, "GET", "/v1/openapi.json", op)
    assert.is_table(oa.paths["/v1/experiments/{name}"].get)
    assert.equal(0, s.stop())
  end)

  it("plays the variant's role on the work turns, the reviewer's on reviews", function()
    local dir = project(0.5)
    -- the appender's twin under another name: the variant's role
    H.write(dir .. "/roles/twin.lua", F.APPENDER_ROLE)
    local lua = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", (lua:gsub("experiments = {[^\n]*", 'experiments = { twin = { share = 1, role = "twin" } }')))
    local r = H.orket("run X --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    -- every card's work turn played the twin, its review the reviewer's role
    local db = assert(require("orket.project").open_store(dir, false, true))
    local by_phase = {}
    for _, ev in ipairs(db:events { limit = 5000 }) do
      if ev.kind == "turn_begin" then
        by_phase[ev.data.phase .. ":" .. ev.data.role .. ":" .. tostring(ev.data.experiment)] = true
      end
    end
    db:close()
    assert.same({ ["work:twin:twin"] = true, ["review:integrity_guard:nil"] = true }, by_phase)
    local doc = cjson.decode(H.orket("experiments report twin --json", { cwd = dir }).stdout)
    assert.same({ 0, N, N }, { doc.arms.control.cards, doc.arms.variant.cards, doc.arms.variant.done })
  end)

  it("refuses a share out of range, an unknown field and a variant's unknown role, naming the line", function()
    local dir = project(0.5)
    local lua = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", (lua:gsub("share = 0%.5", "share = 0")))
    local r = H.orket("validate", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("orket%.lua:%d+: experiments%.bigger_prompt%.share: must be a number above 0 and at most 1", r.stdout .. r.stderr)
    H.write(dir .. "/orket.lua", (lua:gsub("share = 0%.5,", "share = 0.5, role = \"nobody\",")))
    r = H.orket("run X", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("experiments%.bigger_prompt%.role: no role named \"nobody\"", r.stderr)
  end)
end)
