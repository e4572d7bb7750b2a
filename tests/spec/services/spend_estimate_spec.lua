-- orket.engine.spend's estimate of a call not yet sent, as a refused usage is charged: the
-- same number whether its tools' characters are counted at the call or kept for the list,
-- and a reloaded tool list's own; a model's price, made once per price entry.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local spend = require "orket.engine.spend"
local tools = require "orket.tools"
local calls = require "tests.calls"
local cjson = require "cjson.safe"
local cost = require "orket.cost"

local PRICE = { input = "0.15", cached_input = "0.075", output = "0.60", currency = "USD" }
local run = { settings = { models = { prices = { ["p:m"] = PRICE } } }, add_tokens = function() end }
local job = { model = "p:m", card_id = "C-1" }

-- the prompt tokens and the cost a call of req is charged when its usage is refused (its
-- counts below the estimate, so the estimate is what is charged)
local function charged(req)
  local c = spend.refused(run, job, req, { prompt_tokens = 0, completion_tokens = 0 })
  return c.prompt_tokens, c.cost
end

-- the prompt's estimate as it has always been counted: its messages' and each tool entry's
-- JSON characters, 4 a token
local function counted(req)
  local n = 0
  for _, m in ipairs(req.messages) do n = n + #m.content end
  for _, t in ipairs(req.tools) do n = n + #assert(cjson.encode(t)) end
  return math.ceil(n / 4)
end

local function request(list)
  return { model = "p:m", fixed_tools = true, tools = list,
    messages = { { role = "system", content = "You write code." }, { role = "user", content = "Fix B-1." } } }
end

local function entry(name, description)
  return { name = name, description = description,
    parameters = { type = "object", required = { "path" },
      properties = { path = { type = "string", maxLength = 4096 }, lines = { type = "integer", minimum = 1 } } } }
end

describe("a call's estimate under a money budget", function()
  after_each(H.cleanup)

  it("is the same number for a request, counted or kept, and its tools are encoded once", function()
    local a, b = entry("read_file", "Reads a file of the workspace."), entry("write_file", "Writes a file.")
    local prompt, micros = charged(request { a, b })
    -- the figure the estimate gave before the tools' count was kept for their list
    assert.equal(109, prompt)
    assert.equal(counted(request { a, b }), prompt)
    assert.equal(2474, micros)
    -- a fresh list of the same entries (the engine's every turn): the kept count, no encoding
    local again, again_micros
    assert.equal(0, calls(cjson, "encode", function() again, again_micros = charged(request { a, b }) end))
    assert.equal(prompt, again)
    assert.equal(micros, again_micros)
    -- a list the caller does not call fixed is counted at the call: the same number
    local loose = request { a, b }
    loose.fixed_tools = nil
    assert.equal(prompt, (charged(loose)))
    -- another list of the same first entry is its own
    assert.equal(counted(request { a }), (charged(request { a })))
  end)

  it("follows a hot reload of the tools, whose entries are new", function()
    local dir = H.tmpdir()
    local function write(description) F.note_tool(dir, description) end
    write("Notes a line.")
    local before_req = request(assert(tools.load_dirs { dir }):specs())
    local before = charged(before_req)
    assert.equal(counted(before_req), before)
    assert.equal(before, (charged(request(before_req.tools))))
    -- the description made 40 characters (10 tokens) longer
    write("Notes a line." .. string.rep("x", 40))
    local after_req = request(assert(tools.load_dirs { dir }):specs())
    local after = charged(after_req)
    assert.equal(counted(after_req), after)
    assert.equal(before + 10, after)
  end)
end)

describe("a model's price under a money budget", function()
  it("is made once per price entry, and anew from a reload's", function()
    local prices = { ["p:m"] = { input = "0.15", cached_input = "0.075", output = "0.60", currency = "USD" } }
    local r = { settings = { models = { prices = prices } } }
    local first = spend.price(r, "p:m")
    assert.same({ input = 150000, cached_input = 75000, output = 600000, currency = "USD" }, first)
    -- the check and the record ask at every call: the price made the first time
    local again
    assert.equal(0, calls(cost, "price", function() again = spend.price(r, "p:m") end))
    assert.equal(first, again)
    assert.is_nil(spend.price(r, "p:other"))
    -- a reload's settings are new tables
    r.settings = { models = { prices = { ["p:m"] = { input = "1", cached_input = "0.5", output = "2", currency = "EUR" } } } }
    assert.same({ input = 1000000, cached_input = 500000, output = 2000000, currency = "EUR" }, spend.price(r, "p:m"))
  end)

  it("follows an entry edited in place, as the REPL may", function()
    local entry = { input = "0.15", cached_input = "0.075", output = "0.60", currency = "USD" }
    local r = { settings = { models = { prices = { ["p:m"] = entry } } } }
    assert.equal(150000, spend.price(r, "p:m").input)
    entry.input = "3"
    assert.equal(3000000, spend.price(r, "p:m").input)
    -- a field no price has makes the entry no price, as it would be read afresh
    entry.discount = "0.1"
    assert.is_nil(spend.price(r, "p:m"))
    entry.discount = nil
    assert.equal(3000000, spend.price(r, "p:m").input)
  end)
end)

describe("the check before a call under a money budget", function()
  local costs = require "orket.store.costs"

  -- spend.check of a call on card C-1 with these budgets (nothing spent yet) -> how many
  -- times the card's approval mark was read, and the check's outcome
  local function check(budgets)
    local r = { run_id = 7, settings = { models = { prices = { ["p:m"] = PRICE } }, budgets = budgets },
      board = { status = function(_, id) return id == "C-1" and "in_progress" or nil end,
        get = function(_, id) return id == "C-1" and { id = id, type = "issue", status = "in_progress" } or nil end } }
    local totals, approved_marks, heads, marks = costs.totals, costs.approved_marks, costs.heads, 0
    costs.totals = function() return { cost = {} } end
    costs.heads = function() return 0, 0, "2026-01-01" end
    costs.approved_marks = function()
      marks = marks + 1
      return { card = { 0, 0 }, epic = { 0, 0 }, rock = { 0, 0 } }
    end
    local ok, out = pcall(spend.check, r, { model = "p:m", card_id = "C-1" }, request {})
    costs.totals, costs.approved_marks, costs.heads = totals, approved_marks, heads
    assert(ok, out)
    return marks, out
  end

  it("reads the card's approval mark only for a budget of the card's own scopes", function()
    local room = { micros = 10 ^ 9, currency = "USD" }
    -- a run's and a day's budget count every call of their scope, from no mark
    local marks, out = check { cost_per_run = room, cost_per_day = room }
    assert.equal(0, marks)
    assert.is_nil(out)
    -- a card's budget counts from the card's last approval: read once for the call
    marks, out = check { cost_per_run = room, cost_per_card = room }
    assert.equal(1, marks)
    assert.is_nil(out)
  end)
end)
