-- The store's named operations (lua/orket/store/*.lua): the shapes they return where the
-- SQL used to sit in the caller (decoded JSON, booleans, ids), that they join the caller's
-- transaction, and that no module outside the store gains SQL again.
local H = require "tests.helpers"
local board_mod = require "orket.board"

local function open()
  local db = require("tests.backends").open_store()
  local imports = require "orket.store.imports"
  imports.insert_card(db, { id = "E", type = "epic", name = "epic", priority = 2, seat = "developer" })
  imports.insert_card(db, { id = "E-1", type = "issue", parent = "E", name = "one", priority = 2, seat = "developer" })
  return db, board_mod.open(db)
end

describe("store operations", function()
  after_each(H.cleanup)

  it("journal: the last transition with its data decoded, the hand-in and a run's moves", function()
    local db, b = open()
    local sj = require "orket.store.journal_reads"
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
    local sj = require "orket.store.journal_reads"
    local first = db:event { kind = "api_write", card = "E-1", actor = "k1", data = { action = "move", route = "/x" } }
    db:event { kind = "comment", card = "E-1", data = {} }
    local second = db:event { kind = "api_write", card = "E-1", actor = "k2", data = { action = "comment" } }
    local rows = sj.api_writes(db, 0, 10)
    assert.same({ first, second }, { rows[1].id, rows[2].id })
    assert.equal("move", rows[1].data.action)
    assert.equal(1, #sj.api_writes(db, first, 10))
    assert.equal(1, #sj.api_writes(db, 0, 1))
    -- one actor's alone (GET /v1/audit?actor=), paged the same
    assert.same({ second }, { sj.api_writes(db, 0, 10, "k2")[1].id })
    assert.equal(1, #sj.api_writes(db, 0, 10, "k2"))
    assert.equal(0, #sj.api_writes(db, second, 10, "k2"))
    assert.equal(0, #sj.api_writes(db, 0, 10, "nobody"))
    -- one key's alone (?key=): a person's key is not the actor, its id is data.key
    local third = db:event { kind = "api_write", card = "E-1", actor = "user:bob", data = { action = "comment", key = "00ff" } }
    db:event { kind = "api_write", card = "E-1", actor = "user:bob", data = { action = "comment" } }
    assert.same({ third }, { sj.api_writes(db, 0, 10, nil, "00ff")[1].id })
    assert.equal(1, #sj.api_writes(db, 0, 10, nil, "00ff"))
    assert.equal(1, #sj.api_writes(db, 0, 10, "user:bob", "00ff"))
    assert.equal(0, #sj.api_writes(db, 0, 10, "k2", "00ff"))
    assert.equal(0, #sj.api_writes(db, third, 10, nil, "00ff"))
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

  it("forge: a take-in's last failure and a review's refusal said, read back from the journal", function()
    local db = open()
    local sf = require "orket.store.forge"
    assert.is_nil(sf.last_take_in_failure(db, "E-1"))
    assert.is_false(sf.refusal_said(db, "E-1", "review:o/r:5", "alice", "older head"))
    assert(db:tx(function()
      db:event { kind = "take_in_failed", card = "E-1", actor = "orket",
        data = { from = "aa", head = "bb", error = "x" } }
      db:event { kind = "take_in_failed", card = "E-1", actor = "orket",
        data = { from = "cc", head = "dd", error = "y" } }
      db:event { kind = "webhook", card = "E-1", actor = "alice", data = { outcome = "ignored", reason = "older head",
        identity = "review:o/r:5" } }
      return true
    end))
    local last = sf.last_take_in_failure(db, "E-1")
    assert.is_number(last.event)
    assert.same({ from = "cc", head = "dd", error = "y" }, { from = last.from, head = last.head, error = last.error })
    assert.is_nil(sf.last_take_in_failure(db, "E-2"))
    -- a person's move after it is seen; the engine's, an agent's or one before it are not
    assert.is_false(sf.moved_by_person_since(db, "E-1", last.event))
    assert(db:tx(function()
      db:event { kind = "transition", card = "E-1", actor = "orket", data = { from = "a", to = "b", by = "engine" } }
      db:event { kind = "transition", card = "E-1", actor = "coder", data = { from = "b", to = "c" } }
      db:event { kind = "transition", card = "E-2", actor = "alice", data = { from = "c", to = "d", by = "person" } }
      return true
    end))
    assert.is_false(sf.moved_by_person_since(db, "E-1", last.event))
    assert.is_true(sf.moved_by_person_since(db, "E-2", last.event))
    assert(db:tx(function()
      db:event { kind = "transition", card = "E-1", actor = "alice", data = { from = "c", to = "d", by = "person" } }
      return true
    end))
    assert.is_true(sf.moved_by_person_since(db, "E-1", last.event))
    assert.is_true(sf.refusal_said(db, "E-1", "review:o/r:5", "alice", "older head"))
    -- another reason, review, reviewer or card, or no identity: not said yet
    assert.is_false(sf.refusal_said(db, "E-1", "review:o/r:5", "alice", "being verified"))
    assert.is_false(sf.refusal_said(db, "E-1", "review:o/r:6", "alice", "older head"))
    assert.is_false(sf.refusal_said(db, "E-1", "review:o/r:5", "carol", "older head"))
    assert.is_false(sf.refusal_said(db, "E-2", "review:o/r:5", "alice", "older head"))
    assert.is_false(sf.refusal_said(db, "E-1", nil, "alice", "older head"))
    -- its pull request comment: the last forge_comment event of that refusal, and the
    -- refusals whose comment was claimed for a delivery
    assert.is_nil(sf.refusal_comment(db, "E-1", "review:o/r:5", "alice", "older head"))
    assert.same({}, sf.delivery_comments(db, "gitea", "d-1"))
    assert(db:tx(function()
      for _, state in ipairs { "posting", "failed" } do
        db:event { kind = "forge_comment", card = "E-1", actor = "alice", data = { forge = "gitea", number = 5,
          reason = "older head", identity = "review:o/r:5", delivery = "d-1", text = "t", state = state, at = 7 } }
      end
      db:event { kind = "forge_comment", card = "E-1", actor = "carol", data = { forge = "gitea", number = 5,
        reason = "older head", identity = "review:o/r:5", delivery = "d-2", state = "posted", at = 8 } }
      -- the claims' deliveries, recorded on the refused card; another card's event naming
      -- d-1 is not read (the delivery's card's events only, through its index)
      sf.record_delivery(db, "gitea", "d-1", "pull_request_review_approved", "E-1", "ignored: older head")
      sf.record_delivery(db, "gitea", "d-3", "pull_request_review_approved", nil, "ignored: no card")
      db:event { kind = "forge_comment", card = "E-2", actor = "dave", data = { forge = "gitea", number = 6,
        reason = "older head", identity = "review:o/r:6", delivery = "d-1", state = "failed", at = 9 } }
      return true
    end))
    local c = assert(sf.refusal_comment(db, "E-1", "review:o/r:5", "alice", "older head"))
    assert.equal("failed", c.state)
    assert.equal("t", c.text)
    assert.equal(5, c.number)
    assert.is_number(c.event)
    assert.equal("posted", sf.refusal_comment(db, "E-1", "review:o/r:5", "carol", "older head").state)
    assert.is_nil(sf.refusal_comment(db, "E-1", "review:o/r:5", "alice", "being verified"))
    assert.is_nil(sf.refusal_comment(db, "E-2", "review:o/r:5", "alice", "older head"))
    assert.is_nil(sf.refusal_comment(db, "E-1", nil, "alice", "older head"))
    assert.same({ { card = "E-1", reviewer = "alice", identity = "review:o/r:5", reason = "older head" } },
      sf.delivery_comments(db, "gitea", "d-1"))
    assert.same({}, sf.delivery_comments(db, "github", "d-1"))
    assert.same({}, sf.delivery_comments(db, "gitea", "d-3"))
    db:close()
  end)

  it("sandboxes: a row per sandbox, its states and ends, the live ports", function()
    local db = open()
    local ops = require "orket.store.sandboxes"
    local id = ops.insert(db, { target = "main", port = 8080, socket = "", command = '["node","s.js"]',
      owner_pid = 42, owner_start = "123" })
    ops.set_socket(db, id, "/p/.orket/sandboxes/" .. id .. "/app.sock")
    local r = ops.get(db, id)
    assert.equal("starting", r.status)
    assert.equal("/p/.orket/sandboxes/" .. id .. "/app.sock", r.socket)
    assert.equal(42, r.owner_pid)
    assert.equal("123", r.owner_start)
    assert.is_nil(r.healthy_at)
    ops.set_status(db, id, "healthy")
    r = ops.get(db, id)
    assert.equal("healthy", r.status)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", r.healthy_at)
    local id2 = ops.insert(db, { target = "main", port = 8081, socket = "s2", command = "[]" })
    assert.same({ [8080] = true, [8081] = true }, ops.ports(db))
    ops.set_status(db, id2, "exited", "the app exited (status 3)", { code = 3 })
    r = ops.get(db, id2)
    assert.equal(3, r.exit_code)
    assert.equal("the app exited (status 3)", r.detail)
    assert.matches("^%d%d%d%d%-", r.ended_at)
    assert.same({ [8080] = true }, ops.ports(db))
    assert.equal(1, #ops.list(db, false))
    assert.equal(2, #ops.list(db, true))
    assert.equal(id2, ops.list(db, true)[1].id) -- newest first
    local ups = ops.uptimes(db, 10)
    assert.equal(1, #ups)
    assert.equal(id, ups[1].id)
    assert.equal("healthy", ups[1].status)
    assert.is_true(ups[1].uptime_s >= 0 and ups[1].uptime_s < 60, tostring(ups[1].uptime_s))
    -- the states are the table's: anything else is refused
    assert.has_error(function() ops.set_status(db, id, "sleeping") end)
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

  it("app grants: a ticket made through one handle of the store is taken once, through another", function()
    local db = open()
    local store = require "orket.store"
    local other = db.url and assert(store.open_url(db.url)) or assert(store.open(db.path))
    local grants = require "orket.store.app_grants"
    local now = os.time()
    grants.insert(db, "h1", "ticket", { sandbox = 3, key = nil, local_use = true, role = "viewer", start = "/x",
      expires_s = now + 60 })
    grants.insert(db, "h0", "ticket", { sandbox = 3, role = "viewer", expires_s = now - 1 }) -- ended
    assert.is_nil(grants.get(other, "h1", "session")) -- a ticket is not a session
    assert.equal(1, grants.live(other, "ticket", now))
    local g = grants.take(other, "h1", "ticket")
    -- read with the store's clock (the database's on PostgreSQL)
    assert.is_true(math.abs(g.now - now) <= 5, tostring(g.now))
    g.now = nil
    assert.same({ sandbox = 3, local_use = true, role = "viewer", start = "/x", expires_s = now + 60 }, g)
    assert.is_nil(grants.take(db, "h1", "ticket")) -- used up
    assert.equal(0, grants.live(db, "ticket", now))
    other:close()
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
