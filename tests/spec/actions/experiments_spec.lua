-- Experiments (docs/cost.md, "Experiments"): orket.lua's section checked field by field,
-- the rule that puts a card in an arm (deterministic by card id, the same in every process,
-- a card in one variant at most), the arms written once (orket.store.experiments), the
-- engine leaving alone reviews and cards that started before, and the report's counts
-- (orket.views.experiments), on the backend under test.
local H = require "tests.helpers"
local B = require "tests.backends"
local settings = require "orket.settings"
local rules = require "orket.settings.experiments"
local store = require "orket.store.experiments"
local engine_x = require "orket.engine.experiments"
local view = require "orket.views.experiments"
local board_mod = require "orket.board"

local MODELS = { providers = { ollama = { kind = "ollama" } } }

local function problem(x)
  local p = settings.check { experiments = x }
  return p[1]
end

describe("orket.lua's experiments", function()
  it("are read with their share, model and role", function()
    local s = assert(settings.resolve { experiments = { small = { share = 0.2, model = "ollama:tiny" },
      terse = { share = 0.1, role = "terse" } } })
    assert.same({ small = { share = 0.2, model = "ollama:tiny" }, terse = { share = 0.1, role = "terse" } }, s.experiments)
    assert.same({}, assert(settings.resolve {}).experiments)
  end)

  it("refuse what is out of range, unknown, or changes nothing, naming the field", function()
    local pre = "orket.lua: experiments."
    assert.equal(pre .. "a.share: must be a number above 0 and at most 1, the part of the cards the variant gets (got 0)",
      problem { a = { share = 0, model = "ollama:x" } })
    assert.equal(pre .. "a.share: must be a number above 0 and at most 1, the part of the cards the variant gets (got 1.5)",
      problem { a = { share = 1.5, model = "ollama:x" } })
    assert.equal(pre .. "a.share: must be a number above 0 and at most 1, the part of the cards the variant gets (got nil)",
      problem { a = { model = "ollama:x" } })
    assert.equal(pre .. "a.shares: unknown field (fields: share, model, role)",
      problem { a = { share = 0.1, model = "ollama:x", shares = 1 } })
    assert.equal(pre .. "a: changes nothing: give the variant's model, role or both", problem { a = { share = 0.1 } })
    assert.equal(pre .. "a.model: must be \"provider:model\", e.g. \"ollama:qwen2.5-coder:7b\" (got tiny)",
      problem { a = { share = 0.1, model = "tiny" } })
    assert.equal(pre .. "a.model: names provider 'nope', which is not configured", problem { a = { share = 0.1, model = "nope:x" } })
    assert.equal(pre .. "a.role: must be a role's name (got 3)", problem { a = { share = 0.1, role = 3 } })
    assert.equal("orket.lua: experiments: names are words of at most 64 characters (got 1)", problem { [1] = { share = 0.1, role = "r" } })
    assert.equal("orket.lua: experiments: must be a table of NAME = { share, model, role }", problem(true))
    assert.equal("orket.lua: experiments: the shares add up to 1.2 (a, b); a card is in one variant at most, so they may add up to 1 at most",
      problem { a = { share = 0.6, role = "r" }, b = { share = 0.6, role = "r" } })
    assert.is_nil(problem { a = { share = 0.5, role = "r" }, b = { share = 0.5, role = "r" } })
  end)

  it("name roles the project has (checked where roles are loaded)", function()
    local x = rules.section({ a = { share = 0.1, role = "coder" }, b = { share = 0.1, role = "ghost" } }, MODELS)
    assert.equal("orket.lua: experiments.b.role: no role named \"ghost\"", rules.check_roles(x, { coder = {} }))
    assert.is_nil(rules.check_roles(x, { coder = {}, ghost = {} }))
  end)
end)

describe("a card's arm", function()
  local X = { a = { share = 0.2, model = "ollama:a" }, b = { share = 0.3, role = "terse" } }

  it("depends on the card id alone: the same in another process", function()
    local ids, here = {}, {}
    for i = 1, 50 do
      ids[i] = "C-" .. i
      here[i] = rules.arms(X, ids[i])[1].experiment .. ":" .. rules.arms(X, ids[i])[1].arm
    end
    local src = [[local r = require "orket.settings.experiments"
local X = { a = { share = 0.2, model = "ollama:a" }, b = { share = 0.3, role = "terse" } }
for i = 1, 50 do local a = r.arms(X, "C-" .. i)[1]; print(a.experiment .. ":" .. a.arm) end]]
    local f = H.tmpdir() .. "/arms.lua"
    H.write(f, src)
    local out = H.orket("lua " .. H.quote(f)).stdout
    local there = {}
    for line in out:gmatch("[^\n]+") do there[#there + 1] = line end
    assert.same(here, there)
  end)

  it("puts each experiment's share of the cards in its variant, a card in one at most", function()
    local n, count = 4000, { a = 0, b = 0, control = 0 }
    for i = 1, n do
      local arms = rules.arms(X, "card-" .. i)
      if arms[1].arm == "variant" then
        assert.equal(1, #arms)
        count[arms[1].experiment] = count[arms[1].experiment] + 1
        assert.same(X[arms[1].experiment].model, arms[1].model)
        assert.same(X[arms[1].experiment].role, arms[1].role)
      else
        -- in no variant: every experiment's control, by name
        assert.same({ { experiment = "a", arm = "control" }, { experiment = "b", arm = "control" } }, arms)
        count.control = count.control + 1
      end
    end
    -- a hash's spread: within a few standard deviations of the shares
    assert.is_true(math.abs(count.a / n - 0.2) < 0.03, tostring(count.a))
    assert.is_true(math.abs(count.b / n - 0.3) < 0.03, tostring(count.b))
    assert.is_true(math.abs(count.control / n - 0.5) < 0.03, tostring(count.control))
    assert.same({}, rules.arms({}, "card-1"))
    assert.same({}, rules.arms(nil, "card-1"))
  end)

  it("grows with the share: a card in a variant stays in it when the share grows", function()
    for i = 1, 500 do
      local id = "g-" .. i
      if rules.arms({ a = { share = 0.1, role = "r" } }, id)[1].arm == "variant" then
        assert.equal("variant", rules.arms({ a = { share = 0.4, role = "r" } }, id)[1].arm)
      end
    end
  end)
end)

describe("the arms in the store (" .. B.name() .. ")", function()
  local db, b
  local DEV = { seat = "developer", roles = { "coder" } }
  local REVIEWER = { seat = "reviewer", roles = { "integrity_guard" } }
  before_each(function()
    db = B.open_store()
    b = board_mod.open(db)
    local imports = require "orket.store.imports"
    assert(db:tx(function()
      imports.insert_card(db, { id = "E", type = "epic", priority = 2 })
      return true
    end))
    for i = 1, 3 do assert(b:create { parent = "E", summary = "issue " .. i, id = "I-" .. i }) end
  end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  it("are written once and never changed", function()
    assert(db:tx(function()
      store.record(db, "I-1", { { experiment = "a", arm = "variant", model = "ollama:a" } })
      store.record(db, "I-1", { { experiment = "a", arm = "control" }, { experiment = "b", arm = "control" } })
      return true
    end))
    assert.same({ { experiment = "a", arm = "variant", model = "ollama:a" } }, store.of(db, "I-1"))
    assert.same({}, store.of(db, "I-2"))
    assert.same({ "a" }, store.names(db))
  end)

  it("are chosen only for a work turn of a card that has not started, and kept after", function()
    local e = { db = db, settings = { experiments = { a = { share = 1, model = "ollama:a" } } },
      roles = { by_name = {}, names = {} } }
    local card = b:get("I-1")
    assert.is_nil((engine_x.variant(e, card, "review")))
    local arm, fresh = engine_x.variant(e, card, "work")
    assert.same({ experiment = "a", arm = "variant", model = "ollama:a" }, arm)
    assert.same({ arm }, fresh)
    assert(db:tx(function()
      store.record(db, "I-1", fresh)
      return true
    end))
    -- recorded: the same arm, nothing to write, whatever share orket.lua says now; the
    -- variant's model as set now (a person's fix for a model that fails)
    e.settings.experiments = { a = { share = 0.01, model = "ollama:b" } }
    arm, fresh = engine_x.variant(e, card, "rework")
    assert.same({ experiment = "a", arm = "variant", model = "ollama:b" }, arm)
    assert.is_nil(fresh)
    -- the experiment ended: the card plays its seat again, its arm kept for the report
    e.settings.experiments = {}
    arm, fresh = engine_x.variant(e, card, "rework")
    assert.is_nil(arm)
    assert.is_nil(fresh)
    assert.same({ { experiment = "a", arm = "variant", model = "ollama:a" } }, store.of(db, "I-1"))
    -- a card that had a turn before the experiment was set keeps out of it
    e.settings.experiments = { a = { share = 1, model = "ollama:a" } }
    db:event { kind = "turn_begin", card = "I-2", data = { turn = 1 } }
    arm, fresh = engine_x.variant(e, b:get("I-2"), "work")
    assert.is_nil(arm)
    assert.is_nil(fresh)
    -- a variant whose role is gone stops the card with why
    e.settings.experiments = { a = { share = 1, role = "gone" } }
    local _, _, why = engine_x.variant(e, b:get("I-3"), "work")
    assert.equal("experiment a's variant plays role \"gone\", which the project has no longer (roles: )", why)
  end)

  it("are counted by the report: cards, done, rejections in review and turns, each arm apart", function()
    assert(db:tx(function()
      store.record(db, "I-1", { { experiment = "a", arm = "variant", model = "ollama:a" } })
      store.record(db, "I-2", { { experiment = "a", arm = "control" } })
      store.record(db, "I-3", { { experiment = "a", arm = "control" } })
      return true
    end))
    -- I-1: sent back once, then done; I-2: done; I-3: still in progress
    local function move(id, to, who) assert(b:transition(id, to, { actor = who })) end
    for _, id in ipairs { "I-1", "I-2", "I-3" } do
      db:event { kind = "turn_begin", card = id, data = { turn = 1 } }
      move(id, "in_progress", DEV)
    end
    move("I-1", "code_review", DEV)
    move("I-1", "in_progress", REVIEWER)
    move("I-1", "code_review", DEV)
    move("I-1", "done", REVIEWER)
    move("I-2", "code_review", DEV)
    move("I-2", "done", REVIEWER)
    local doc = assert(view.doc(db, "a", { a = { share = 0.5, model = "ollama:a" } }))
    local c, v = doc.arms.control, doc.arms.variant
    assert.same({ 2, 1, 0.5, 0, 2, 1.0 }, { c.cards, c.done, c.done_rate, c.rejections, c.turns, c.turns_per_card })
    assert.same({ 1, 1, 1.0, 1, 1 }, { v.cards, v.done, v.done_rate, v.rejections, v.turns })
    assert.same({ 1, 1 }, { c.wall.done_cards, v.wall.done_cards })
    -- no model call was made: nothing charged, 0 (unknown is a call without a price)
    assert.same({ {}, 0, 0 }, { c.cost, c.tokens.calls, c.unpriced_calls })
    assert.matches("cost per card%s+0 %(none charged%)%s+0 %(none charged%)\n", view.text(doc))
    local _, err, code = view.doc(db, "zzz", { a = {} })
    assert.same({ "no experiment named \"zzz\" (experiments: a)", "ENOENT" }, { err, code })
  end)

  it("time a done card's wall from its first turn's start, given to record, not from the record's commit", function()
    -- the first turn's arms are written with its first commit, after its first model call
    local start = db.conn:now()
    orket.sleep(300)
    assert(db:tx(function()
      store.record(db, "I-1", { { experiment = "a", arm = "variant", model = "ollama:a" } }, start)
      store.record(db, "I-2", { { experiment = "a", arm = "control" } })
      return true
    end))
    for _, id in ipairs { "I-1", "I-2" } do
      assert(b:transition(id, "in_progress", { actor = DEV }))
      assert(b:transition(id, "code_review", { actor = DEV }))
      assert(b:transition(id, "done", { actor = REVIEWER }))
    end
    local by = {}
    for _, r in ipairs(store.cards(db, "a")) do by[r.card] = r.wall_ms end
    assert.is_true(by["I-1"] >= 300, tostring(by["I-1"]))
    assert.is_true(by["I-2"] < 300, tostring(by["I-2"]))
  end)

  it("leave out every figure per card of an arm with no cards, cost_per_card too (docs/cost.md)", function()
    local doc = assert(view.doc(db, "empty", { empty = { share = 0.5, model = "ollama:a" } }))
    for _, k in ipairs(view.ARMS) do
      local a = doc.arms[k]
      assert.same({ 0, {} }, { a.cards, a.cost }, k)
      for _, f in ipairs { "done_rate", "rejections_per_card", "turns_per_card", "tokens_per_card", "cost_per_card" } do
        assert.is_nil(a[f], k .. "." .. f)
      end
      assert.is_nil(a.wall.ms_per_card, k .. ".wall.ms_per_card")
    end
    assert.is_nil(require("orket.jsonout").encode(doc):find("per_card", 1, true))
    assert.matches("\ncost per card%s+%-%s+%-\n", view.text(doc))
  end)

  it("say in the report's text the calls of unknown cost beside the cost per card", function()
    -- a variant on an unpriced model: its cost per card counts only its priced reviews, so
    -- it looked half the control's with nothing said of its 4 unpriced calls
    local function arm(micros, unpriced)
      return { cards = 4, done = 4, done_rate = 1, rejections = 0, rejections_per_card = 0, turns_per_card = 2,
        tokens_per_card = 30, cost_per_card = { USD = micros }, unpriced_calls = unpriced, wall = {} }
    end
    local doc = { experiment = "local_model", configured = { share = 0.5, model = "fake:local" },
      arms = { control = arm(156, 0), variant = arm(78, 4) } }
    local text = view.text(doc)
    assert.matches("\ncost per card%s+0.000156 USD%s+0.000078 USD\n", text)
    assert.matches("\ncalls of unknown cost%s+0%s+4\n", text)
    -- with every call priced, nothing more is said
    doc.arms.variant.unpriced_calls = 0
    assert.is_nil(view.text(doc):find("unknown cost", 1, true))
  end)
end)
