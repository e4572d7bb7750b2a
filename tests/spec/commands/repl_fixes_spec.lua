-- orket.terminal.console and orket.terminal.repl, as an operator debugging runs finds them:
-- decisions audited as `orket answer`'s, a closed project answering as a value, turns that get
-- none recording no run, replays of a money-budget run, long strings cut, kept replays openable.
local H = require "tests.helpers"
local import = require "orket.import"
local project_mod = require "orket.project"
local console = require "orket.terminal.console"
local approvals = require "orket.actions.approvals"
local localuse = require "orket.serve.localuse"

local function notes_project()
  local dir = H.tmpdir()
  os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
  local db = assert(project_mod.open_store(dir, true))
  assert(import.import(db, dir))
  db:close()
  return dir
end

local DEV = { seat = "senior_developer", roles = {} }

-- NOTES-1 waiting on an approval of a delete_file call, as the gate's ask{} leaves it.
local function held(p)
  assert(p.board:transition("NOTES-1", "in_progress", { actor = DEV }))
  return assert(approvals.request(p.db, p.board, { card = "NOTES-1", seat = "senior_developer", turn = 1,
    tool = "delete_file", args = { path = "old.txt" }, rule = "POLICY_ASK", reason = "deletions", actor = DEV }))
end

describe("REPL fixes", function()
  after_each(H.cleanup)

  it("decides an approval as `orket answer` does: by the local operator, in the audit chain", function()
    local p = assert(console.open(notes_project()))
    held(p)
    local me = localuse.operator()
    local row = assert(p:approve("NOTES-1", "fine"))
    assert.equal(me, row.decided_by)
    local a = p.db:row("SELECT actor, action, card_id, route FROM audit_log ORDER BY seq DESC LIMIT 1")
    assert.same({ actor = me, action = "approve", card_id = "NOTES-1", route = "cli" }, a)
    local moved = p.db:row("SELECT actor FROM events WHERE card_id = 'NOTES-1' "
      .. "ORDER BY id DESC LIMIT 1")
    assert.equal(me, moved and moved.actor)
    -- and a denial too
    assert(p.board:transition("NOTES-1", "in_progress", { actor = DEV }))
    assert(approvals.request(p.db, p.board, { card = "NOTES-1", seat = "senior_developer", turn = 2,
      tool = "delete_file", args = { path = "b.txt" }, rule = "POLICY_ASK", reason = "deletions", actor = DEV }))
    assert(p:deny("NOTES-1", "keep it"))
    assert.equal("deny", p.db:row("SELECT action FROM audit_log ORDER BY seq DESC LIMIT 1").action)
    p:close()
  end)

  it("replays a run a money budget stopped to the same board: each call priced as it was", function()
    local dir = notes_project()
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. [[
models.prices = { ["scripted:team"] = { input = "10", cached_input = "5", output = "10", currency = "USD" } }
budgets = { cost_per_card = "0.2 USD" }
]])
    local p = assert(console.open(dir))
    local e = p.engine
    assert.equal("stalled", (e:execute(assert(e:start("NOTES")))))
    local waiting = p.db:row("SELECT id FROM cards WHERE status = 'waiting_for_developer'")
    assert.is_not_nil(waiting) -- a card the budget stopped
    local rep = assert(p:replay(1))
    assert.same({}, rep.missing) -- "replay:recorded" had no price: the budget never stopped it
    assert.same({}, rep.differs)
    assert.equal(rep.recorded, rep.calls)
    assert.equal("waiting_for_developer", rep.cards[waiting.id].replay)
    p:close()
  end)

  it("keeps a replay, on request, as a folder the read commands open with -C", function()
    local dir = notes_project()
    local p = assert(console.open(dir))
    assert(p:turn("NOTES-1"))
    local rep = assert(p:replay(1, { keep = true }))
    p:close()
    local runs = H.orket("runs -C " .. H.quote(rep.dir))
    assert.equal(0, runs.status, runs.stderr)
    assert.matches("\n%s+1  %a+%s+NOTES%-1 ", runs.stdout)
    local log = H.orket("log 1 -C " .. H.quote(rep.dir))
    assert.equal(0, log.status, log.stderr)
    assert.matches("^run 1: issue NOTES%-1", log.stdout)
  end)

  it("answers a helper of a closed project, or one called with a dot, as a value; reopen opens it again", function()
    local p = assert(console.open(notes_project()))
    -- project.messages("X"): the card id taken for the project
    local none, err, code = p.messages("NOTES-1")
    assert.is_nil(none)
    assert.equal("EUSAGE", code)
    assert.equal("project.messages was called without the project: call it project:messages(...), with a colon", err)
    assert.equal("EUSAGE", select(3, p.turn()))
    p:close()
    for _, call in ipairs {
      function() return p:messages("NOTES-1") end, function() return p:replay(1) end,
      function() return p:turn("NOTES-1") end, function() return p:approvals("NOTES-1") end,
      function() return p:approve("NOTES-1") end, function() return p:deny("NOTES-1", "no") end,
      function() return p:reload() end,
    } do
      local r, msg, c = call()
      assert.is_nil(r)
      assert.equal("ECLOSED", c)
      assert.matches("is closed %(project:close%(%)%): project:reopen%(%) opens it again", msg)
    end
    assert.is_not_nil(require("orket.errors").get("ECLOSED"))
    assert.equal(p, assert(p:reopen()))
    assert.is_table(assert(p:messages("NOTES-1")))
    assert.equal("NOTES-1", p.board:get("NOTES-1").id)
    p:close()
  end)

  it("says what a wrong turn or run number is", function()
    local p = assert(console.open(notes_project()))
    local function usage(want, r, e, c)
      assert.is_nil(r)
      assert.equal(want, e)
      assert.equal("EUSAGE", c)
    end
    usage("bad argument #1 to 'replay' (run number expected: an integer, got 1.5)", p:replay(1.5))
    usage([[bad argument #2 to 'messages' (turn must be a whole number from 1, got "x")]],
      p:messages("NOTES-1", { turn = "x" }))
    usage("bad argument #2 to 'messages' (turn must be a whole number from 1, got -5)",
      p:messages("NOTES-1", { turn = -5 }))
    assert.is_table(assert(p:messages("NOTES-1", { turn = 2 })))
    -- 1.0 is run 1 (none here: the store's answer, not a usage error)
    assert.equal("ENOENT", select(3, p:replay(1.0)))
    p:close()
  end)

  it("cuts a long string as a long table is cut, saying how many bytes it has", function()
    local pretty = require "orket.pretty"
    local s = pretty.render(string.rep("x", 1000000))
    assert.is_true(#s < 5000)
    assert.matches('^"x+" %.%.%. %(995904 more bytes, 1000000 in all%)$', s)
    -- cut on a character's start, never inside one
    local u = pretty.render(string.rep("\u{e9}", 3000), { bytes = 101 })
    assert.matches('^"' .. string.rep("\u{e9}", 50) .. '" %.%.%. %(5900 more bytes, 6000 in all%)$', u)
    assert.equal('"short"', pretty.render("short"))
    local repl = require "orket.terminal.repl"
    assert.matches("more bytes", repl.format_results(1, string.rep("y", 10000)))
  end)

  it("names a way to find the holder of a locked store", function()
    local errors = require "orket.errors"
    local r = errors.remedy("EBUSY", ".orket/orket.db: database is locked")
    assert.is_nil(r:find("the message says how to find it", 1, true))
    assert.matches("`fuser FILE`", r)
    assert.matches("pg_stat_activity", r)
  end)
end)
