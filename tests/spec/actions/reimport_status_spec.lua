-- A card's `status` in an epic file is read and ignored (its status changes only by its
-- moves). It was ignored without a word: a product owner who wrote "canceled" or "done" to
-- end a card was told nothing, and the next run worked it, and "bananas" imported as well.
-- Now a status the board does not have is warned of, with its file, line and the command
-- that gets the card there, and a value that is no status is refused with its file and line.
local H = require "tests.helpers"
local store = require "orket.store"
local import = require "orket.import"
local board_mod = require "orket.board"
local B = require "tests.backends"

local function project(files)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  for name, text in pairs(files) do H.write(dir .. "/epics/" .. name, text) end
  return dir
end

local function open(dir)
  local db = B.name() == "pg" and B.open_store() or assert(store.open(dir .. "/.orket/orket.db"))
  return db, board_mod.open(db)
end

local Q = [[
{ "id": "Q", "name": "Q", "status": "ready",
  "issues": [
    { "id": "Q-1", "summary": "one", "status": "done" },
    { "id": "Q-2", "summary": "two", "status": "ready" },
    { "id": "Q-3", "summary": "three", "status": "canceled" },
    { "id": "Q-4", "summary": "four", "status": "canceled" },
    { "id": "Q-5", "summary": "five" }
  ] }
]]

describe("an epic file's status", function()
  after_each(H.cleanup)

  it("is warned of where the board's differs, with its line and the command that gets it there", function()
    local dir = project { ["q.json"] = Q }
    local db, b = open(dir)
    local r = assert(import.import(db, dir))
    assert.same({
      "epics/q.json:3: issues[0].status: \"done\" is not Q-1's status on the board (ready), and is read and "
        .. "ignored: a card's status changes only by its moves (a run's review finishes it (orket run Q-1), or a "
        .. "person's move: POST /v1/cards/Q-1/move {\"to\":\"done\"})",
      "epics/q.json:5: issues[2].status: \"canceled\" is not the board's status of 2 cards of this file (Q-3 ready, "
        .. "Q-4 ready), and is read and ignored: a card's status changes only by its moves (orket cancel ID "
        .. "\"reason\" ends each without review)",
    }, r.warnings)
    -- ignored: the board's status stands
    assert.same({ "ready", "ready", "ready" }, { b:get("Q-1").status, b:get("Q-3").status, b:get("Q").status })
    -- once the board has it, nothing is said
    assert(b:transition("Q-3", "canceled", { actor = { seat = "user:po", roles = {}, by = "person" }, note = "x" }))
    assert(b:transition("Q-4", "canceled", { actor = { seat = "user:po", roles = {}, by = "person" }, note = "x" }))
    r = assert(import.import(db, dir))
    assert.equal(1, #r.warnings)
    assert.matches("^epics/q.json:3: issues%[0%]%.status: \"done\"", r.warnings[1])
    db:close()
  end)

  it("is refused with its file and line when it is no status", function()
    local dir = project { ["q.json"] = Q:gsub('"status": "ready" },', '"status": "bananas" },') }
    local db, b = open(dir)
    local r, err, code = import.import(db, dir)
    assert.is_nil(r)
    assert.equal("EINVAL", code)
    assert.equal("epics/q.json:4: issues[1].status: \"bananas\" is no status (a card's statuses: "
      .. table.concat(board_mod.statuses(), ", ") .. "); a card's status is the board's, changed by its moves, "
      .. "and this field is read and ignored: leave it out", err)
    assert.is_nil(b:get("Q-1"))
    -- a near miss is named, as any field's is; so is a value of another type
    H.write(dir .. "/epics/q.json", Q:gsub('"status": "canceled" },', '"status": "cancelled" },', 1))
    err = select(2, import.import(db, dir))
    assert.matches("^epics/q.json:5: issues%[2%]%.status: \"cancelled\" is no status .*; did you mean 'canceled'%?$",
      err)
    H.write(dir .. "/epics/q.json", Q:gsub('"status": "ready",', '"status": 3,', 1))
    err = select(2, import.import(db, dir))
    assert.matches("^epics/q.json:1: status: a number is no status", err)
    -- orket validate reports it too (the file's own check)
    local f = assert(import.list_files(dir))[1]
    local cards, problems = import.check_file(f)
    assert(cards)
    assert.matches("^epics/q.json: status: a number is no status", problems[1].message)
    db:close()
  end)
end)
