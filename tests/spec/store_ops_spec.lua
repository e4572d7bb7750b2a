-- The store's named operations (lua/orket/store/*.lua): the shapes they return where the
-- SQL used to sit in the caller (decoded JSON, booleans, ids), that they join the caller's
-- transaction, and that no module outside the store gains SQL again.
local H = require "tests.helpers"
local store = require "orket.store"
local board_mod = require "orket.board"

local function open()
  local db = assert(store.open(H.tmpdir() .. "/orket.db"))
  local imports = require "orket.store.imports"
  imports.insert_card(db, { id = "E", type = "epic", name = "epic", priority = 2, seat = "developer" })
  imports.insert_card(db, { id = "E-1", type = "issue", parent = "E", name = "one", priority = 2, seat = "developer" })
  return db, board_mod.open(db)
end

describe("store operations", function()
  after_each(H.cleanup)

  it("journal: the last transition with its data decoded, the hand-in and a run's moves", function()
    local db, b = open()
    local sj = require "orket.store.journal"
    assert.is_nil(sj.last_transition(db, "E-1"))
    assert.equal(0, sj.last_handin(db, "E-1"))
    local run = assert(db:record_run { target = "E", kind = "epic" })
    b:set_run(run)
    local actor = { seat = "developer", roles = { "senior_developer" } }
    assert(b:transition("E-1", "in_progress", { actor = actor }))
    assert(b:transition("E-1", "code_review", { actor = actor, note = "handed in" }))
    local m = sj.last_transition(db, "E-1")
    assert.equal("in_progress", m.from)
    assert.equal("code_review", m.to)
    assert.equal("handed in", m.data.note)
    assert.equal(m.id, sj.last_handin(db, "E-1"))
    local moves = sj.run_moves(db, require("orket.store.runs").get(db, run))
    local mine = {}
    for _, mv in ipairs(moves) do
      if mv.card_id == "E-1" then mine[#mine + 1] = mv.data.from .. ">" .. mv.data.to end
    end
    assert.same({ "ready>in_progress", "in_progress>code_review" }, mine)
    db:close()
  end)

  it("journal: api_write entries after a cursor, data decoded", function()
    local db = open()
    local sj = require "orket.store.journal"
    local first = db:event { kind = "api_write", card = "E-1", actor = "k1", data = { action = "move", route = "/x" } }
    db:event { kind = "comment", card = "E-1", data = {} }
    local second = db:event { kind = "api_write", card = "E-1", actor = "k2", data = { action = "comment" } }
    local rows = sj.api_writes(db, 0, 10)
    assert.same({ first, second }, { rows[1].id, rows[2].id })
    assert.equal("move", rows[1].data.action)
    assert.equal(1, #sj.api_writes(db, first, 10))
    assert.equal(1, #sj.api_writes(db, 0, 1))
    db:close()
  end)

  it("memory: tags as arrays, a query without words finds nothing, card filter", function()
    local db = open()
    local sm = require "orket.store.memory"
    assert.is_true(sm.is_empty(db))
    local id = sm.insert(db, "E-1", "deployments go through the release script", { "ops", "deploy" })
    sm.insert(db, nil, "the release script needs a token", {})
    assert.is_false(sm.is_empty(db))
    assert.same({ "ops", "deploy" }, sm.get(db, id).tags)
    assert.same({}, sm.search(db, "?? !!", nil, 10))
    assert.equal(2, #sm.search(db, "release", nil, 10))
    local only = sm.search(db, "deploy", "E-1", 10)
    assert.equal(1, #only)
    assert.equal(id, only[1].id)
    assert.same({ "ops", "deploy" }, only[1].tags)
    db:close()
  end)

  it("forge: cycles numbered per card, one undecided, decided in place", function()
    local db = open()
    local sf = require "orket.store.forge"
    assert.equal(1, sf.next_cycle(db, "E-1"))
    sf.save_pull_request(db, "E-1", "gitea", "o/r", 7, "http://x/7", "abc")
    sf.save_pull_request(db, "E-1", "gitea", "o/r", nil, nil, "def") -- a nil number keeps the stored one
    assert.same({ number = 7, url = "http://x/7", head = "def", repo = "o/r" }, sf.pull_request_link(db, "E-1"))
    assert.equal("E-1", sf.card_of_pull_request(db, 7, "o/r"))
    assert.is_nil(sf.card_of_pull_request(db, 7, "other/r"))
    sf.open_cycle(db, "E-1", sf.next_cycle(db, "E-1"), 7, "def")
    local open_id = sf.undecided_cycle(db, "E-1")
    assert.is_truthy(open_id)
    sf.decide_cycle(db, open_id, "approved", "alice", "ok", "d1")
    assert.is_nil(sf.undecided_cycle(db, "E-1"))
    sf.add_decided_cycle(db, "E-1", sf.next_cycle(db, "E-1"), 7, "merged", "bob", nil, "d2")
    local cycles = sf.review_cycles(db, "E-1")
    assert.same({ 1, 2 }, { cycles[1].cycle, cycles[2].cycle })
    assert.same({ "approved", "merged" }, { cycles[1].decision, cycles[2].decision })
    assert.is_false(sf.delivery_seen(db, "gitea", "d1"))
    sf.record_delivery(db, "gitea", "d1", "pull_request_review", "E-1", "done")
    assert.is_true(sf.delivery_seen(db, "gitea", "d1"))
    sf.forget_pull_request(db, "E-1")
    assert.is_nil(sf.pull_request_link(db, "E-1").number)
    db:close()
  end)

  it("cards: a card with its dependencies, lists, heads, counts, status changes, new issues", function()
    local db = open()
    local sc = require "orket.store.cards"
    local imports = require "orket.store.imports"
    imports.insert_card(db, { id = "E-2", type = "issue", parent = "E", name = "two", priority = 3, seat = "developer" })
    imports.insert_card(db, { id = "R", type = "rock", name = "rock", priority = 2 })
    assert.is_nil(sc.get(db, "nope"))
    sc.insert_issue(db, { id = "E-3", parent = "E", name = "three", summary = "s", priority = 1, seat = "developer" })
    sc.add_dependency(db, "E-3", "E-1", 1)
    sc.add_dependency(db, "E-3", "E-2", 2)
    sc.add_dependency(db, "E-3", "E-1", 3) -- already there: nothing
    local c = sc.get(db, "E-3")
    assert.same({ "E-1", "E-2" }, c.depends_on)
    assert.same({ "E-3", "issue", "E", "ready", 1, "s" }, { c.id, c.type, c.parent, c.status, c.priority, c.summary })
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", c.created_at)
    assert.same({ id = "E-3", type = "issue", parent = "E", status = "ready" }, sc.head(db, "E-3"))
    assert.is_nil(sc.head(db, "nope"))
    assert.equal(3, sc.child_count(db, "E"))
    assert.equal(2, sc.open_dependencies(db, "E-3", "E"))
    sc.set_status(db, "E-1", "done", nil, "developer", 0)
    assert.equal(1, sc.open_dependencies(db, "E-3", "E"))
    sc.set_status(db, "E-2", "blocked", "resource", nil, 1)
    local e2 = sc.get(db, "E-2")
    assert.same({ "blocked", "resource", 1 }, { e2.status, e2.wait_reason, e2.retries })
    sc.reset_retries(db, "E-2")
    assert.equal(0, sc.get(db, "E-2").retries)
    local counts = {}
    for _, r in ipairs(sc.child_statuses(db, "E")) do counts[r.status] = r.n end
    assert.same({ done = 1, blocked = 1, ready = 1 }, counts)
    local function ids(list)
      local out = {}
      for i, x in ipairs(list) do out[i] = x.id end
      return out
    end
    assert.same({ "E-1", "E-2", "E-3" }, ids(sc.children(db, "E")))
    assert.same({ "E-1", "E-2", "E-3" }, ids(sc.list(db, { epic = "E" })))
    assert.same({ "E-2", "E-3" }, ids(sc.list(db, { status = { "ready", "blocked" }, type = { "issue" } })))
    assert.same({ "E", "R" }, ids(sc.list(db, { type = { "epic", "rock" } })))
    assert.same({}, sc.list(db, { rock = "R" }))
    assert.same({ "E-1", "E-2" }, ids(sc.list(db, { epic = "E", status = { "done", "blocked" } })))
    assert.same({ "E-1", "E-2" }, sc.list(db, { epic = "E" })[3].depends_on)
    assert.same({ "E-1", "E-3" }, ids(sc.some(db, { "E-3", "nope", "E-1" })))
    assert.is_nil(sc.some(db, { "E-3" })[1].depends_on)
    local light = sc.light(db)
    assert.equal(5, #light)
    assert.same({ id = "E-3", type = "issue", parent = "E", priority = 1, status = "ready" }, light[5])
    local deps = sc.dependencies(db)
    assert.same({ "E-3", "E-1" }, { deps[1].card_id, deps[1].depends_on })
    assert.is_true(sc.exists(db, "E-3"))
    assert.is_false(sc.exists(db, "nope"))
    assert.is_true(sc.is_issue(db, "E-3"))
    assert.is_false(sc.is_issue(db, "E"))
    db:close()
  end)

  it("comments: written now, read back with the card's id", function()
    local db = open()
    local sc = require "orket.store.comments"
    local a = sc.insert(db, "E-1", "alice", "first")
    local b = sc.insert(db, "E-1", "bob", "second")
    sc.insert(db, "E", "carol", "elsewhere")
    local c = sc.get(db, a)
    assert.same({ a, "E-1", "alice", "first" }, { c.id, c.card, c.author, c.body })
    assert.matches("Z$", c.created_at)
    assert.is_nil(sc.get(db, 999))
    local list = sc.of_card(db, "E-1")
    assert.same({ a, b }, { list[1].id, list[2].id })
    db:close()
  end)

  it("journal: the newest id, what follows an id, a card's commits, merges and cancel", function()
    local db = open()
    local sj = require "orket.store.journal"
    local before = sj.latest_id(db)
    local run = assert(db:record_run { target = "E", kind = "epic" })
    local c1 = db:event { kind = "commit", card = "E-1", run = run, actor = "developer", data = { id = "abc", turn = 1 } }
    db:event { kind = "merge_conflict", card = "E-1", data = { paths = {} } }
    assert.equal("merge_conflict", sj.last_merge_mark(db, "E-1"))
    db:event { kind = "merge_main", card = "E-1", data = {} }
    assert.equal("merge_main", sj.last_merge_mark(db, "E-1"))
    assert.is_nil(sj.last_merge_mark(db, "E"))
    assert.is_nil(sj.last_merge(db, "E-1"))
    db:event { kind = "merge", card = "E-1", data = { id = "m1" } }
    db:event { kind = "merge", card = "E-1", data = { id = "m2" } }
    assert.equal("m2", sj.last_merge(db, "E-1").id)
    local commits = sj.commits(db, "E-1")
    assert.equal(1, #commits)
    assert.same({ run, "developer", "abc", 1 }, { commits[1].run_id, commits[1].actor, commits[1].data.id, commits[1].data.turn })
    assert.is_nil(sj.last_cancel(db, "E-1"))
    db:event { kind = "transition", card = "E-1", actor = "alice", data = { from = "ready", to = "canceled", note = "out of scope" } }
    db:event { kind = "transition", card = "E-1", actor = "bob", data = { from = "ready", to = "in_progress" } }
    assert.same({ actor = "alice", note = "out of scope" }, sj.last_cancel(db, "E-1"))
    db:event { kind = "requirements_review", card = "E-1", data = { issue = "E-9" } }
    assert.same({ { issue = "E-9" } }, sj.card_event_data(db, "E-1", "requirements_review"))
    local latest = sj.latest_id(db)
    assert.is_true(latest > before)
    local after = sj.kinds_after(db, c1)
    assert.same({ "merge_conflict", "E-1" }, { after[1].kind, after[1].card_id })
    assert.equal(latest, after[#after].id)
    local mine = sj.entries_after(db, before, run, nil, 10)
    assert.same({ "run_start", "commit" }, { mine[1].kind, mine[2].kind })
    assert.equal("string", type(mine[2].data)) -- the JSON text as stored
    assert.equal(c1, sj.entries_after(db, before, nil, "E-1", 1)[1].id)
    db:close()
  end)

  it("joins the caller's transaction: a rollback takes the operations' writes with it", function()
    local db = open()
    local sk = require "orket.store.keys"
    local ok, err = db:tx(function()
      sk.insert(db, "0123456789abcdef", "ci", "viewer", "hash")
      assert.is_true(sk.name_taken(db, "ci"))
      return nil, "changed my mind", "EINVAL"
    end)
    assert.is_nil(ok)
    assert.equal("changed my mind", err)
    assert.is_false(sk.name_taken(db, "ci"))
    assert.equal(0, sk.total_count(db))
    db:close()
  end)
end)

describe("SQL outside the store", function()
  after_each(H.cleanup)

  -- scripts/sql-inventory.lua --check [ROOT] -> its output, its exit code
  local function check(root)
    local p = io.popen(string.format("cd '%s' && '%s' lua scripts/sql-inventory.lua --check %s 2>&1", H.ROOT, H.BIN,
      root and ("'" .. root .. "'") or ""))
    local out = p:read("a")
    local _, _, code = p:close()
    return out, code
  end

  it("is nowhere in orket's modules: every statement is an operation of lua/orket/store/", function()
    local out, code = check()
    assert.equal(0, code, out)
    assert.truthy(out:find("no SQL outside the store", 1, true), out)
  end)

  it("is found in any module outside the store, however its literal is written", function()
    local root = H.tmpdir()
    for _, d in ipairs { "lua/orket/cmd", "lua/orket/serve", "lua/orket/engine", "lua/orket/store", "tools" } do
      assert(os.execute("mkdir -p '" .. root .. "/" .. d .. "'"))
    end
    -- planted statements: a plain one, one built by concatenation, a fragment for a
    -- statement built elsewhere, a long string over several lines, one in a tool
    H.write(root .. "/lua/orket/x.lua", 'return function(db, p) return db:rows("SELECT id FROM cards WHERE parent = ?", p) end\n')
    H.write(root .. "/lua/orket/cmd/y.lua", 'local COLS = "id, name"\nreturn "SELECT " .. COLS .. "\\n  FROM cards"\n')
    H.write(root .. "/lua/orket/serve/z.lua", 'return function(b, id) return b:_rows("id = ?", id) end\n')
    H.write(root .. "/lua/orket/engine/w.lua", 'return [==[\n  UPDATE cards\n  SET status = ?1 WHERE id = ?2]==]\n')
    H.write(root .. "/tools/t.lua", "return { run = function(ctx) return ctx.db:row('DELETE FROM memory') end }\n")
    -- not SQL: prose about it in comments and messages, and the store's own modules
    H.write(root .. "/lua/orket/prose.lua", '-- SELECT id FROM cards WHERE x = ?\n--[[ INSERT INTO cards ]]\n'
      .. 'return "select a card from the list; the order by priority"\n')
    H.write(root .. "/lua/orket/store/ok.lua", 'return function(db) return db:rows("SELECT id FROM cards") end\n')
    H.write(root .. "/lua/orket/store.lua", 'return "INSERT INTO events (kind) VALUES (?)"\n')
    local out, code = check(root)
    assert.equal(1, code, out)
    local found = {}
    for path in out:gmatch("([^\n]+): %d+ SQL statements") do found[#found + 1] = path end
    table.sort(found)
    assert.same({ "lua/orket/cmd/y.lua", "lua/orket/engine/w.lua", "lua/orket/serve/z.lua", "lua/orket/x.lua",
      "tools/t.lua" }, found)
    -- without the planted statements the same tree passes
    for _, f in ipairs(found) do os.remove(root .. "/" .. f) end
    out, code = check(root)
    assert.equal(0, code, out)
  end)
end)
