-- Project memory as agents use it, on the backend under test (tests.backends: SQLite, or
-- PostgreSQL when tests/with_pg.lua runs this file): the recall tool with a limit as a
-- model sends it (JSON numbers decode as floats), the age limit applied before the recall
-- limit, the brief's recalled memory bounded and each text once, and tags that round-trip.
local H = require "tests.helpers"
local B = require "tests.backends"
local tools = require "orket.tools"
local memory_mod = require "orket.memory"
local context = require "orket.engine.context"
local prompt = require "orket.engine.prompt"
local common = require "orket.llm.common"
local W = require "orket.workspace"

local reg = assert(tools.load_dirs { H.ROOT .. "/tools" })

local function open()
  local db = B.open_store()
  local imports = require "orket.store.imports"
  assert(db:tx(function()
    imports.insert_card(db, { id = "E", type = "epic", name = "epic", priority = 2, seat = "developer" })
    imports.insert_card(db, { id = "E-1", type = "issue", parent = "E", name = "one", priority = 2, seat = "developer" })
    return true
  end))
  return db, memory_mod.open(db)
end

local function tool_ctx(mem)
  return { fs = assert(W.open(H.tmpdir())), memory = mem,
    card = { id = "E-1", type = "issue", parent = "E", status = "in_progress" },
    actor = { seat = "developer", roles = { "coder" } } }
end

-- a tool call's arguments as the engine reads them from a model's reply (JSON text)
local function decoded(name, raw)
  local call = common.tool_call("call-1", name, raw)
  assert.is_nil(call.arguments_error)
  return call.arguments
end

-- entries made `days` days ago (whole days before now, and an hour more)
local function age(db, ids, days)
  local at = os.date("!%Y-%m-%dT%H:%M:%S.000Z", os.time() - days * 86400 - 3600)
  for _, id in ipairs(ids) do assert(db:run("UPDATE memory SET created_at = ? WHERE id = ?", at, id)) end
end

describe("memory as agents use it, on " .. B.name(), function()
  after_each(H.cleanup)

  it("the recall tool answers as many results as a limit sent in JSON asks for", function()
    local db, mem = open()
    for i = 1, 8 do assert(mem:remember { text = "deploy step " .. i }) end
    local ctx = tool_ctx(mem)
    for _, n in ipairs { 1, 3, 5, 20 } do
      local args = decoded("recall", string.format('{"query":"deploy","limit":%d}', n))
      local r = reg:run("recall", args, ctx)
      assert.is_true(r.ok, r.error)
      assert.equal(math.min(n, 8), #r.result.results)
    end
    db:close()
  end)

  it("hands a tool integers where its schema says integer, at any depth, from JSON", function()
    local dir = H.tmpdir()
    H.write(dir .. "/kinds.lua", [[return { name = "kinds", description = "reports kinds", effect = "read",
      parameters = { type = "object", properties = {
        n = { type = "integer" }, x = { type = "number" }, maybe = { type = { "integer", "null" } },
        list = { type = "array", items = { type = "integer" } },
        deep = { type = "object", properties = { m = { type = "integer" }, s = { type = "string" } } },
        rows = { type = "array", items = { type = "object", properties = { k = { type = "integer" } } } },
        map = { type = "object", additionalProperties = { type = "integer" } },
      } },
      handler = function(a)
        local t = math.type
        return { n = t(a.n), x = t(a.x), maybe = t(a.maybe), list = t(a.list[2]), m = t(a.deep.m), s = a.deep.s,
          k = t(a.rows[1].k), map = t(a.map.any), frac = t(a.list[3]) }
      end }]])
    local r2 = assert(tools.load { dir .. "/kinds.lua" })
    local args = decoded("kinds", '{"n":5,"x":2,"maybe":7,"list":[1,2,2.5],"deep":{"m":3,"s":"4"},'
      .. '"rows":[{"k":9}],"map":{"any":11}}')
    local r = r2:run("kinds", args, {})
    assert.is_true(r.ok, r.error)
    -- a "number" stays as decoded, and so does a fraction the gate would refuse as an integer
    assert.same({ n = "integer", x = "float", maybe = "integer", list = "integer", m = "integer", s = "4",
      k = "integer", map = "integer", frac = "float" }, r.result)
  end)

  it("says what a limit that is no integer was", function()
    local db, mem = open()
    assert.has_error(function() mem:recall("x", { limit = 5.0 }) end,
      "bad argument #2 to 'recall' (limit must be an integer from 1 to 100, got 5.0)")
    assert.has_error(function() mem:recall("x", { limit = "5" }) end,
      "bad argument #2 to 'recall' (limit must be an integer from 1 to 100, got a string)")
    db:close()
  end)

  it("leaves out entries past the age before the limit counts: newer ones are recalled", function()
    local db, mem = open()
    local old = {}
    for i = 1, 10 do old[i] = assert(mem:remember { text = "deploy blue green deploy blue green rule " .. i }).id end
    age(db, old, 200)
    local new = assert(mem:remember { text = "deploy now uses canary" }).id
    local also = assert(mem:remember { text = "deploy uses blue green" }).id
    -- the old ones rank first, so a limit counted before the age left nothing
    local best = mem:recall("deploy blue green", { limit = 4 })
    for _, e in ipairs(best) do assert.is_true(e.id <= old[10]) end
    local fresh = mem:recall("deploy blue green", { limit = 4, max_age_days = 90 })
    local ids = {}
    for i, e in ipairs(fresh) do ids[i] = e.id end
    table.sort(ids)
    assert.same({ new, also }, ids)
    local card = { summary = "Deploy the service", description = "deploy with blue green" }
    local got = context.recall(mem, card, { recall = 2, memory_max_age_days = 90, max_chars = 32000 })
    assert.equal(2, #got)
    for _, e in ipairs(got) do assert.equal(0, e.age_days) end
    -- 0: no limit, the old ones again
    got = context.recall(mem, card, { recall = 2, memory_max_age_days = 0, max_chars = 32000 })
    assert.equal(200, got[1].age_days)
    -- an entry exactly at the limit is kept, one a day past it is not
    age(db, { new }, 90)
    age(db, { also }, 91)
    fresh = mem:recall("deploy", { limit = 20, max_age_days = 90 })
    assert.equal(1, #fresh)
    assert.equal(new, fresh[1].id)
    -- an age reaching back before 1970 limits nothing (the settings take up to 1e12 days:
    -- a cut of a three-digit year dropped every entry, and os.date raised past it)
    for _, days in ipairs { 400000, 739000, 800000, 1000000000000 } do
      assert.equal(12, #mem:recall("deploy", { limit = 20, max_age_days = days }), days)
    end
    db:close()
  end)

  it("bounds the brief's recalled memory: each text cut on a character, marked, the whole a share of max_chars", function()
    local db, mem = open()
    local long = ("blue green lorem ipsum é "):rep(2400)
    for i = 1, 5 do assert(mem:remember { text = "deploy big " .. i .. long }) end
    local card = { summary = "lorem ipsum", description = "deploy" }
    local got = context.recall(mem, card, { recall = 5, memory_max_age_days = 90, max_chars = 32000 })
    assert.equal(5, #got)
    local each = 32000 * context.MEMORY_PERCENT // 100 // 5
    for _, e in ipairs(got) do
      assert.truthy(utf8.len(e.text), "cut inside a character")
      local shown, total = e.text:match("^(.*)%.%.%. %((%d+) bytes%)$")
      assert.truthy(shown, "marked as cut")
      assert.is_true(#shown <= each)
      assert.is_true(#shown > each - 4)
      assert.equal(#("deploy big 1" .. long), tonumber(total))
    end
    local section = prompt.memory(got)
    assert.is_true(#section < 32000 * context.MEMORY_PERCENT // 100 + 5 * 60, #section)
    -- a short entry is kept whole
    local db2, mem2 = open()
    assert(mem2:remember { text = "deploy on Fridays" })
    got = context.recall(mem2, card, { recall = 5, memory_max_age_days = 90, max_chars = 32000 })
    assert.same({ { card = nil, text = "deploy on Fridays", age_days = 0 } }, got)
    db:close()
    db2:close()
  end)

  it("recalls a text remembered many times once, and reads on past the repeats", function()
    local db, mem = open()
    assert(mem:remember { text = "deploy rarely" })
    for _ = 1, 12 do assert(mem:remember { text = "deploy deploy deploy uses blue green" }) end
    local card = { summary = "deploy", description = "" }
    local got = context.recall(mem, card, { recall = 2, memory_max_age_days = 90, max_chars = 32000 })
    assert.equal(2, #got)
    assert.equal("deploy deploy deploy uses blue green", got[1].text)
    assert.equal("deploy rarely", got[2].text)
    -- each remember is kept (its event and time): a fact re-remembered stays within the age
    assert.equal(13, #mem:recall("deploy", { limit = 20 }))
    db:close()
  end)

  it("refuses a tag that holds whitespace or is empty, naming it, so stored tags round-trip", function()
    local db, mem = open()
    local e, err, code = mem:remember { text = "zebra fact", tags = { "v2", "release notes" } }
    assert.is_nil(e)
    assert.equal("EINVAL", code)
    assert.equal('memory: tags[2] "release notes" holds whitespace; a tag is one word (as "release-notes")', err)
    e, err, code = mem:remember { text = "zebra fact", tags = { "" } }
    assert.same({ nil, "memory: tags[1] is empty; a tag is one word", "EINVAL" }, { e, err, code })
    assert.is_nil((mem:remember { text = "zebra fact", tags = { "a\tb" } }))
    -- through the tool, as the model sends it
    local r = reg:run("remember", decoded("remember", '{"text":"zebra fact","tags":["release notes"]}'), tool_ctx(mem))
    assert.same({ ok = false, code = "EINVAL",
      error = 'memory: tags[1] "release notes" holds whitespace; a tag is one word (as "release-notes")' }, r)
    assert.same({}, mem:recall("zebra"))
    assert(mem:remember { text = "zebra fact", tags = { "release-notes", "v2" } })
    assert.same({ "release-notes", "v2" }, mem:recall("zebra")[1].tags)
    db:close()
  end)
end)
