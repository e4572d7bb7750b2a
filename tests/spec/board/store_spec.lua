-- orket.store: migrations from empty and from every earlier version, transactions that
-- roll back, the journal, concurrent readers, and integrity after a SIGKILL mid-write.
local H = require "tests.helpers"
local store = require "orket.store"
local cstore = require "orket.c.store"

local NOW = store.NOW

local function tables(db)
  local names = {}
  for _, r in ipairs(assert(db:rows("SELECT name FROM sqlite_master WHERE type IN ('table') AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'memory_fts_%' ORDER BY name"))) do
    names[#names + 1] = r.name
  end
  return names
end

local function add_card(db, id, ty, parent)
  assert(db:run("INSERT INTO cards (id, type, parent, created_at, updated_at) VALUES (?, ?, ?, " .. NOW .. ", " .. NOW .. ")",
    id, ty or "epic", parent))
end

describe("store.open", function()
  after_each(H.cleanup)

  it("creates a new file in WAL mode with foreign keys on and every migration applied", function()
    local path = H.tmpdir() .. "/sub/dir/orket.db"
    local db = assert(store.open(path))
    assert.equal(store.latest_version, db:version())
    assert.equal(#require("orket.store.migrations"), store.latest_version)
    -- what `orket version` says the stores' schemas are
    assert.same({ sqlite = store.latest_version, pg = #require("orket.store.pg_schema").migrations },
      require "orket.store.schema_versions")
    assert.equal("wal", db:row("PRAGMA journal_mode").journal_mode)
    assert.equal(1, db:row("PRAGMA foreign_keys").foreign_keys)
    assert.equal(cstore.BUSY_TIMEOUT_MS, db:row("PRAGMA busy_timeout").timeout)
    assert.same({ "api_keys", "app_grants", "approvals", "audit_log", "bugfix_phases", "bugs", "cards", "comments", "dependencies", "events", "experiment_cards", "gate_decisions", "imported_files", "leases", "memory",
      "memory_fts", "project_members", "project_stores", "projects", "pull_requests", "rate_buckets", "review_cycles", "run_leases", "runs", "sandboxes", "sessions", "store_identity", "tool_calls", "turns", "user_sessions", "users", "verifications",
      "violations",
      "webhook_deliveries" }, tables(db))
    db:close()
  end)

  it("migrates from every earlier version, keeping the data", function()
    for from = 0, store.latest_version - 1 do
      local path = H.tmpdir() .. "/orket.db"
      local db = assert(store.open(path, { upto = from }))
      assert.equal(from, db:version())
      if from >= 1 then
        db:tx(function() add_card(db, "OLD", "epic") end)
      end
      db:close()
      db = assert(store.open(path))
      assert.equal(store.latest_version, db:version())
      if from >= 1 then assert.equal("OLD", db:row("SELECT id FROM cards").id) end
      assert.equal("ok", db:row("PRAGMA integrity_check").integrity_check)
      db:close()
    end
  end)

  it("migration 7 rebuilds events without AUTOINCREMENT or events_run, keeping ids, data and triggers", function()
    local path = H.tmpdir() .. "/orket.db"
    local db = assert(store.open(path, { upto = 6 }))
    db:tx(function() add_card(db, "OLD", "epic") end)
    local ids = {}
    for i = 1, 3 do ids[i] = db:event { kind = "note", card = "OLD", run = i, actor = "a", data = { n = i } } end
    db:close()
    db = assert(store.open(path, { upto = 7 }))
    assert.equal(7, db:version())
    local rows = db:events { card = "OLD" }
    assert.equal(3, #rows)
    for i = 1, 3 do
      assert.equal(ids[i], rows[i].id)
      assert.equal(i, rows[i].run)
      assert.same({ n = i }, rows[i].data)
    end
    local sql = db:row("SELECT sql FROM sqlite_master WHERE name = 'events'").sql
    assert.is_nil(sql:upper():find("AUTOINCREMENT", 1, true))
    assert.is_nil(db:row("SELECT name FROM sqlite_master WHERE name = 'events_run'"))
    assert.equal("events_card", db:row("SELECT name FROM sqlite_master WHERE name = 'events_card'").name)
    assert.is_nil(db:row("SELECT name FROM sqlite_sequence WHERE name = 'events'"))
    -- new ids continue after the old ones, and the journal stays append-only
    local nid = db:event { kind = "note", card = "OLD" }
    assert.equal(ids[3] + 1, nid)
    local none, err = db:run("DELETE FROM events WHERE id = ?", nid)
    assert.is_nil(none)
    assert.matches("append%-only", err)
    none, err = db:run("UPDATE events SET kind = 'x' WHERE id = ?", nid)
    assert.is_nil(none)
    assert.matches("append%-only", err)
    assert.equal("ok", db:row("PRAGMA integrity_check").integrity_check)
    db:close()
  end)

  it("migration 8 marks the runs that existed, up to the last event written before it", function()
    local path = H.tmpdir() .. "/orket.db"
    local db = assert(store.open(path, { upto = 7 }))
    db:tx(function() add_card(db, "OLD", "epic") end)
    local run = assert(db:record_run { target = "OLD", kind = "epic" })
    local last = db:event { kind = "transition", card = "OLD", data = { from = "ready", to = "in_progress" } }
    db:close()
    db = assert(store.open(path))
    assert.equal(last, db:row("SELECT untagged_upto FROM runs WHERE id = ?", run).untagged_upto)
    local new = assert(db:record_run { target = "OLD", kind = "epic" })
    assert.is_nil(db:row("SELECT untagged_upto FROM runs WHERE id = ?", new).untagged_upto)
    db:close()
  end)

  it("opens read-only without writing or migrating, and refuses a file it would have to upgrade", function()
    local dir = H.tmpdir()
    local db = assert(store.open(dir .. "/a.db"))
    assert(db:tx(function() return db:run("INSERT INTO runs (target, kind, started_at) VALUES ('E', 'epic', 'x')") end))
    db:close()
    local ro = assert(store.open(dir .. "/a.db", { readonly = true }))
    assert.is_true(ro.readonly)
    assert.equal(1, ro:row("SELECT count(*) AS n FROM runs").n)
    local ok, err = ro:tx(function() return ro:run("DELETE FROM runs") end)
    assert.is_nil(ok)
    assert.matches("readonly", err)
    ro:close()
    local old = assert(store.open(dir .. "/b.db", { upto = store.latest_version - 1 }))
    old:close()
    local none, oerr, code = store.open(dir .. "/b.db", { readonly = true })
    assert.is_nil(none)
    assert.equal("EVERSION", code)
    assert.matches("b.db has schema version " .. (store.latest_version - 1) .. " and cannot be upgraded to "
      .. store.latest_version .. " while it is read%-only", oerr)
    none, oerr, code = store.open(dir .. "/missing.db", { readonly = true })
    assert.equal("ENOENT", code)
  end)

  it("refuses a file from a newer orket, and a file that is not a database", function()
    local dir = H.tmpdir()
    local db = assert(store.open(dir .. "/a.db"))
    assert(db.conn:set_version(99))
    db:close()
    local none, err, code = store.open(dir .. "/a.db")
    assert.is_nil(none)
    assert.equal("EVERSION", code)
    assert.matches("schema version 99, newer than this orket knows %(" .. store.latest_version .. "%)", err)
    H.write(dir .. "/junk.db", string.rep("not a database ", 100))
    none, err, code = store.open(dir .. "/junk.db")
    assert.is_nil(none)
    assert.equal("ECORRUPT", code)
    assert.matches("junk.db", err)
    none, err, code = store.open(dir .. "/missing.db", { create = false })
    assert.equal("ENOENT", code)
  end)

  it("checks its arguments and closes idempotently", function()
    assert.has_error(function() store.open(42) end, "bad argument #1 to 'open' (string expected, got number)")
    local db = assert(store.open(H.tmpdir() .. "/x.db"))
    assert.matches("^orket.store %(", tostring(db.conn))
    db:close()
    db:close()
    assert.equal("orket.store (closed)", tostring(db.conn))
    assert.has_error(function() db:row("SELECT 1") end, "calling 'row' on bad self (store is closed)")
  end)

  it("refuses a self that is not a connection, another userdata or one with a copied metatable", function()
    local db = assert(store.open(H.tmpdir() .. "/x.db"))
    local conn = db.conn
    -- the methods know their connection by its metatable, kept with them
    assert.has_error(function() conn.row({}, "SELECT 1") end, "bad argument #1 to 'row' (orket.store expected, got table)")
    assert.has_error(function() conn.run(io.stdout, "SELECT 1") end, "bad argument #1 to 'run' (orket.store expected, got FILE*)")
    assert.has_error(function() conn.depth(42) end, "bad argument #1 to 'depth' (orket.store expected, got number)")
    local fake = setmetatable({}, getmetatable(conn))
    assert.has_error(function() conn.rows(fake, "SELECT 1") end, "bad argument #1 to 'rows' (orket.store expected, got orket.store)")
    assert.equal(1, conn:row("SELECT 1 AS x").x)
    db:close()
  end)
end)

describe("store errors", function()
  after_each(H.cleanup)

  it("name the file, and a failure of the file is remembered for the command line", function()
    cstore.clear_file_error()
    local path = H.tmpdir() .. "/r.db"
    local db = assert(store.open(path))
    assert(db:exec("CREATE TABLE t (a)"))
    assert(db:exec("PRAGMA query_only = 1"))
    local ok, err, code = db:run("INSERT INTO t VALUES (1)")
    assert.is_nil(ok)
    assert.equal("EREADONLY", code)
    assert.equal(path .. ": attempt to write a readonly database", err)
    assert.same({ err, "EREADONLY" }, { cstore.file_error() })
    -- the code survives a transaction that passes the error on
    ok, err, code = db:tx(function() return db:run("INSERT INTO t VALUES (2)") end)
    assert.same({ nil, path .. ": attempt to write a readonly database", "EREADONLY" }, { ok, err, code })
    cstore.clear_file_error()
    assert.is_nil(cstore.file_error())
    db:close()
  end)
end)

describe("store queries and transactions", function()
  local db
  before_each(function() db = assert(store.open(H.tmpdir() .. "/t.db")) end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  it("binds parameters, reuses prepared statements and reports SQL errors with a code", function()
    db:exec("CREATE TABLE t (a, b)")
    local before = db.conn:cached()
    for i = 1, 100 do assert(db:run("INSERT INTO t VALUES (?, ?)", i, i % 2 == 0 and "even" or nil)) end
    assert.equal(before + 1, db.conn:cached())
    assert.equal(50, db:row("SELECT count(*) AS n FROM t WHERE b IS NULL").n)
    local r = db:row("SELECT ? AS i, ? AS f, ? AS s, ? AS b", 7, 1.5, "x\0y", true)
    assert.same({ i = 7, f = 1.5, s = "x\0y", b = 1 }, r)
    assert.is_nil(db:row("SELECT 1 AS x WHERE 0"))
    local ok, err, code = db:run("INSERT INTO nowhere VALUES (1)")
    assert.is_nil(ok)
    assert.equal("ESQL", code)
    assert.equal(db.path .. ": no such table: nowhere", err)
    assert.is_nil(cstore.file_error()) -- a mistake in the SQL, not in the file
    assert.has_error(function() db:run("SELECT ?", {}) end, "bad argument #2 to 'run' (cannot store a table)")
    assert.has_error(function() db:run("SELECT ?") end, "store: statement takes 1 parameters, got 0: SELECT ?")
    ok, err, code = db:run("SELECT 1; SELECT 2")
    assert.equal("ESQL", code)
    assert.matches("exactly one SQL statement", err)
  end)

  it("leaves no statement open when building a read's rows runs out of memory", function()
    -- a tool script near its memory cap reads the board: the rows' tables fail to allocate
    -- midway; the statement must still be reset, or its read (here an INSERT's RETURNING)
    -- stays open and holds the write lock and its changes uncommitted
    local senv = require "orket.c.scriptenv"
    db:exec("CREATE TABLE t (x TEXT); CREATE TABLE u (y TEXT)")
    assert(db:tx(function()
      for i = 1, 2000 do assert(db:run("INSERT INTO t VALUES (?)", string.rep("v", 50) .. i)) end
      return true
    end))
    local ok = senv.pcall(0, 0, 300000, function()
      return #db.conn:rows("INSERT INTO u SELECT ? || x FROM t RETURNING y", string.rep("P", 1000))
    end)
    assert.is_false(ok)
    local other = assert(cstore.open(db.path))
    assert(other:run("INSERT INTO u VALUES ('z')")) -- not "database is locked"
    assert(db:run("INSERT INTO u VALUES ('w')"))
    assert.equal(2, other:row("SELECT count(*) AS n FROM u WHERE y IN ('z', 'w')").n)
    -- and for row(): a read left open would keep its snapshot, so this connection would
    -- not see what another wrote since
    local big = string.rep("Q", 1000000)
    collectgarbage()
    ok = senv.pcall(0, 0, 300000, function() return db.conn:row("SELECT ? AS a, count(*) AS n FROM u", big) end)
    assert.is_false(ok)
    assert(other:run("INSERT INTO u VALUES ('after')"))
    assert.equal(1, db:row("SELECT count(*) AS n FROM u WHERE y = 'after'").n)
    other:close()
  end)

  it("names a row's columns as its statement has them now: after a schema change, in a reused cache slot", function()
    db:exec("CREATE TABLE t (a, b); INSERT INTO t VALUES (1, 2), (3, 4)")
    assert.same({ { a = 1, b = 2 }, { a = 3, b = 4 } }, db:rows("SELECT * FROM t ORDER BY a"))
    assert.same({ a = 1, b = 2 }, db:row("SELECT * FROM t ORDER BY a"))
    db:exec("ALTER TABLE t RENAME COLUMN b TO c")
    assert.same({ { a = 1, c = 2 }, { a = 3, c = 4 } }, db:rows("SELECT * FROM t ORDER BY a"))
    assert.same({ a = 1, c = 2 }, db:row("SELECT * FROM t ORDER BY a"))
    for i = 1, cstore.CACHE_SIZE do assert.same({ ["v" .. i] = i }, db:row("SELECT " .. i .. " AS v" .. i)) end
    assert.same({ { a = 1, c = 2 }, { a = 3, c = 4 } }, db:rows("SELECT * FROM t ORDER BY a"))
    -- duplicate names: the last column's value, as a table built field by field has it
    assert.same({ x = 2 }, db:row("SELECT 1 AS x, 2 AS x"))
    assert.same({}, db:row("SELECT 1 AS x, NULL AS x"))
    assert.same({ { x = 2 } }, db:rows("SELECT NULL AS x, 2 AS x"))
    assert.same({ { y = 1 } }, db:rows("SELECT 1 AS y, NULL AS x"))
  end)

  it("commits, rolls back on a raised error and on nil, msg, CODE, and nests", function()
    db:exec("CREATE TABLE t (a UNIQUE)")
    assert.same({ 1, "two" }, { db:tx(function() db:run("INSERT INTO t VALUES (1)") return 1, "two" end) })
    local ok, err, code = db:tx(function()
      db:run("INSERT INTO t VALUES (2)")
      error("broken")
    end)
    assert.is_nil(ok)
    assert.equal("ETX", code)
    assert.matches("broken", err)
    ok, err, code = db:tx(function()
      db:run("INSERT INTO t VALUES (3)")
      return nil, "refused", "EMINE"
    end)
    assert.same({ nil, "refused", "EMINE" }, { ok, err, code })
    -- an inner failure undoes only the inner part
    assert(db:tx(function()
      db:run("INSERT INTO t VALUES (4)")
      local _, _, icode = db:tx(function()
        db:run("INSERT INTO t VALUES (5)")
        return db:run("INSERT INTO t VALUES (1)") -- constraint: nil, msg, ECONSTRAINT
      end)
      assert.equal("ECONSTRAINT", icode)
      assert.equal(1, db.conn:depth())
      return true
    end))
    assert.equal(0, db.conn:depth())
    local vals = {}
    for _, r in ipairs(db:rows("SELECT a FROM t ORDER BY a")) do vals[#vals + 1] = r.a end
    assert.same({ 1, 4 }, vals)
  end)

  it("refuses to wait inside a transaction and rolls it back", function()
    db:exec("CREATE TABLE t (a)")
    local ok, err, code = db:tx(function()
      db:run("INSERT INTO t VALUES (1)")
      orket.sleep(1)
    end)
    assert.is_nil(ok)
    assert.equal("ETX", code)
    assert.matches("must run inside a task", err)
    assert.equal(0, db:row("SELECT count(*) AS n FROM t").n)
  end)

  it("keeps the journal append-only", function()
    db:tx(function() db:event { kind = "test", data = { x = 1 } } end)
    local ok, _, code = db:run("UPDATE events SET kind = 'other'")
    assert.is_nil(ok)
    assert.equal("ECONSTRAINT", code)
    ok = db:run("DELETE FROM events")
    assert.is_nil(ok)
    assert.same({ x = 1 }, db:events()[1].data)
  end)

  it("records runs, turns, tool calls, gate decisions and violations, each with its event", function()
    db:tx(function() add_card(db, "E1") end)
    local run = assert(db:record_run { target = "E1", kind = "epic" })
    local turn = assert(db:record_turn { run = run, card = "E1", seat = "dev", role = "coder", turn = 1,
      model = "m", request = { messages = {} }, response = { content = "hi" }, prompt_tokens = 10 })
    local call = assert(db:record_tool_call { turn = turn, tool = "write_file", arguments = { path = "a" },
      result = { ok = true }, ok = true, run = run, card = "E1", seat = "dev" })
    assert(db:record_gate_decision { turn = turn, tool_call = call, tool = "write_file", verdict = "deny",
      code = "EPATH", reason = "outside", remedy = "stay inside", run = run })
    assert(db:record_violation { turn = turn, card = "E1", seat = "dev", rule = "no_secrets", run = run })
    assert(db:finish_run(run, "done"))
    local kinds = {}
    for _, e in ipairs(db:events { run = run }) do kinds[#kinds + 1] = e.kind end
    assert.same({ "run_start", "turn", "tool_call", "gate_decision", "violation", "run_end" }, kinds)
    assert.equal('{"content":"hi"}', db:row("SELECT response FROM turns WHERE id = ?", turn).response)
    -- a failed record writes neither the row nor its event
    local n = #db:events()
    local ok, _, code = db:record_turn { run = 999, seat = "dev", turn = 1 }
    assert.is_nil(ok)
    assert.equal("ECONSTRAINT", code)
    ok, _, code = db:record_gate_decision { verdict = "maybe" }
    assert.equal("ECONSTRAINT", code)
    assert.equal(n, #db:events())
    assert.has_error(function() db:record_turn { seat = "dev", turn = 1 } end,
      "bad argument #1 to 'record_turn' (field 'run' must be a number)")
    assert.same({ nil, "store: no run 12345", "ENOENT" }, { db:finish_run(12345, "done") })
  end)

  it("stamps every row of a transaction with one time, ISO 8601 UTC with milliseconds", function()
    local pat = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"
    local function busy_ms(ms)
      local t0 = require("luv").hrtime()
      while require("luv").hrtime() - t0 < ms * 1e6 do end
    end
    local t1, t2 = table.unpack(assert(db:tx(function()
      local x = db:row("SELECT " .. NOW .. " AS t").t
      busy_ms(3)
      return { x, db:row("SELECT " .. NOW .. " AS t").t }
    end)))
    assert.matches(pat, t1)
    assert.equal(t1, t2)
    -- outside a transaction every statement takes the time anew; the next transaction too
    local o1 = db:row("SELECT " .. NOW .. " AS t").t
    busy_ms(3)
    local o2 = db:row("SELECT " .. NOW .. " AS t").t
    assert.matches(pat, o1)
    assert.is_true(o2 > o1)
    local t3 = assert(db:tx(function() return db:row("SELECT " .. NOW .. " AS t").t end))
    assert.is_true(t3 > t1)
    -- the same format as SQLite's own clock, within a second of it
    local r = db:row("SELECT " .. NOW .. " AS a, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS b")
    assert.equal(r.b:sub(1, 16), r.a:sub(1, 16))
    -- conn:now() is the same time, inside a transaction and out
    local t4, t5 = table.unpack(assert(db:tx(function()
      local x = db.conn:now()
      busy_ms(3)
      return { x, db:row("SELECT " .. NOW .. " AS t").t }
    end)))
    assert.matches(pat, t4)
    assert.equal(t4, t5)
    local o3 = db.conn:now()
    busy_ms(3)
    assert.is_true(db.conn:now() > o3)
    db:close()
    assert.error_matches(function() db.conn:now() end, "store is closed")
  end)

  it("writes a record inside a transaction all or nothing, without a savepoint of its own", function()
    db:tx(function() add_card(db, "E1") end)
    local run = assert(db:record_run { target = "E1", kind = "epic" })
    local n = #db:events()
    local turn = assert(db:tx(function()
      -- a failing row: nil, msg, CODE and nothing written; the transaction goes on
      local ok, _, code = db:record_turn { run = 999, seat = "dev", turn = 1 }
      assert.is_nil(ok)
      assert.equal("ECONSTRAINT", code)
      assert.equal(1, db.conn:depth())
      return db:record_turn { run = run, card = "E1", seat = "dev", turn = 1 }
    end))
    assert.equal(n + 1, #db:events())
    assert.equal(turn, db:events()[n + 1].data.id)
    -- an allowed call's gate decision rides in its row and event
    local call = assert(db:record_tool_call { turn = turn, tool = "read_file", arguments = { path = "a" },
      result = { ok = true }, ok = true, gate_code = "ALLOWED", run = run, card = "E1", seat = "dev" })
    assert.equal("ALLOWED", db:row("SELECT gate_code FROM tool_calls WHERE id = ?", call).gate_code)
    assert.equal("ALLOWED", db:events()[n + 2].data.gate)
    local started = assert(db:start_tool_call { turn = turn, tool = "write_file", arguments = {}, gate_code = "POLICY_ALLOW" })
    assert.equal("POLICY_ALLOW", db:row("SELECT gate_code FROM tool_calls WHERE id = ?", started).gate_code)
    -- a call's arguments keep every digit (lua-cjson's 14 wrote 1e+14: a resumed call ran
    -- with another id than the model gave)
    local big = assert(db:start_tool_call { turn = turn, tool = "drop", arguments = { id = 100000000000001.0 } })
    assert.equal(100000000000001, require("cjson").decode(
      db:row("SELECT " .. db.dialect.json("arguments") .. " FROM tool_calls WHERE id = ?", big).arguments).id)
    assert.has_error(function() db:record_tool_call { turn = turn, tool = "x", gate_code = 1 } end,
      "bad argument #1 to 'record_tool_call' (field 'gate_code' must be a string)")
  end)

  it("records a tool call's intent, then its result once, and reads in one snapshot", function()
    db:tx(function() add_card(db, "E1") end)
    local run = assert(db:record_run { target = "E1", kind = "epic" })
    local turn = assert(db:record_turn { run = run, card = "E1", seat = "dev", turn = 1 })
    local id = assert(db:start_tool_call { turn = turn, call_id = "1", tool = "move_file",
      arguments = { from = "a", to = "b" }, run = run, card = "E1", seat = "dev" })
    local recorded = require "orket.engine.recorded"
    assert.same({ nil, id }, { recorded.tool_call(db, turn, "1") })
    assert.is_nil(recorded.tool_call(db, turn, "2"))
    assert.is_true(db:finish_tool_call(id, { result = { ok = true, result = { moved = true } }, ok = true,
      turn = turn, tool = "move_file", run = run, card = "E1", seat = "dev" }))
    assert.same({ ok = true, result = { moved = true } }, recorded.tool_call(db, turn, "1"))
    -- a result is recorded once
    assert.same({ nil, "store: no started tool call " .. id .. " without a result", "ENOENT" },
      { db:finish_tool_call(id, { result = {}, ok = false, tool = "move_file" }) })
    local kinds = {}
    for _, e in ipairs(db:events { run = run }) do kinds[#kinds + 1] = e.kind end
    assert.same({ "run_start", "turn", "tool_call_started", "tool_call" }, kinds)
    assert.has_error(function() db:finish_tool_call("1", {}) end,
      "bad argument #1 to 'finish_tool_call' (integer expected)")
    assert.has_error(function() db:start_tool_call { turn = turn } end,
      "bad argument #1 to 'start_tool_call' (field 'tool' must be a string)")
    -- read: a group of reads in one read transaction, results passed on, nested in tx too
    assert.same({ 1, "x" }, { db:read(function() assert.equal(1, db.conn:depth()) return 1, "x" end) })
    assert.equal(0, db.conn:depth())
    local ok, msg, code = db:read(function() error("boom", 0) end)
    assert.same({ nil, "boom", "ETX" }, { ok, msg, code })
    assert.equal(0, db.conn:depth())
    assert.equal(2, db:tx(function() return db:read(function() return db.conn:depth() end) end))
  end)

  it("stamps card changes: own writes to cards, rollbacks, and other connections' commits", function()
    local gen, dv = db.conn:cards_stamp()
    assert.is_true(math.type(gen) == "integer" and math.type(dv) == "integer")
    db:event { kind = "note" } -- the journal is not cards
    assert.same({ gen, dv }, { db.conn:cards_stamp() })
    assert(db:run("INSERT INTO cards (id, type, created_at, updated_at) VALUES ('R', 'rock', 'x', 'x')"))
    local gen2 = db.conn:cards_stamp()
    assert.is_true(gen2 > gen)
    db:tx(function() return nil, "no" end)
    local gen3 = db.conn:cards_stamp()
    assert.is_true(gen3 > gen2)
    local other = assert(store.open(db.path))
    assert(other:run("UPDATE cards SET name = 'n' WHERE id = 'R'"))
    other:close()
    local gen4, dv4 = db.conn:cards_stamp()
    assert.equal(gen3, gen4)
    assert.is_true(dv4 ~= dv)
    db:close()
    assert.error_matches(function() db.conn:cards_stamp() end, "store is closed")
    db = assert(store.open(H.tmpdir() .. "/t2.db"))
    -- read once per write transaction (no other connection can commit during one), and
    -- read again by the next transaction
    other = assert(store.open(db.path))
    local _, dva = db.conn:cards_stamp()
    db:tx(function()
      local _, d1 = db.conn:cards_stamp()
      assert.equal(dva, d1)
      local _, d2 = db.conn:cards_stamp()
      assert.equal(d1, d2)
    end)
    assert(other:run("INSERT INTO cards (id, type, created_at, updated_at) VALUES ('Q', 'rock', 'x', 'x')"))
    db:tx(function()
      local _, d3 = db.conn:cards_stamp()
      assert.is_true(d3 ~= dva)
    end)
    other:close()
    db:close()
    db = assert(store.open(H.tmpdir() .. "/t2.db"))
  end)

  it("stamps every change: own writes to any table, rollbacks, scripts, restores, others' commits", function()
    local function stamp() return { db.conn:stamp() } end
    local s0 = stamp()
    assert.is_true(math.type(s0[1]) == "integer" and math.type(s0[2]) == "integer")
    db:row("SELECT count(*) AS n FROM api_keys") -- a read moves nothing
    assert.same(s0, stamp())
    -- own writes to a table that is not cards (an insert, a delete)
    assert(db:run("INSERT INTO rate_buckets (scope, name, tokens, at_ms) VALUES ('s', 'n', 1, 1)"))
    local s1 = stamp()
    assert.is_true(s1[1] > s0[1])
    assert.equal(s0[2], s1[2]) -- data_version: others' commits only
    assert(db:run("DELETE FROM rate_buckets WHERE scope = 's'"))
    local s2 = stamp()
    assert.is_true(s2[1] > s1[1])
    -- a transaction rolled back after a write, whose rows read inside are gone
    db:tx(function()
      assert(db:run("INSERT INTO rate_buckets (scope, name, tokens, at_ms) VALUES ('s', 'm', 1, 1)"))
      return nil, "no"
    end)
    local s3 = stamp()
    assert.is_true(s3[1] > s2[1])
    db:tx(function() return nil, "no" end) -- nothing written: still a rollback, stamped
    local s4 = stamp()
    assert.is_true(s4[1] > s3[1])
    assert(db:exec("CREATE TABLE stamp_t (x); DROP TABLE stamp_t")) -- a script (schema)
    local s5 = stamp()
    assert.is_true(s5[1] > s4[1])
    -- another connection's commit, to a table other than cards
    local other = assert(store.open(db.path))
    assert(other:run("INSERT INTO rate_buckets (scope, name, tokens, at_ms) VALUES ('s', 'o', 1, 1)"))
    local s6 = stamp()
    assert.equal(s5[1], s6[1])
    assert.is_true(s6[2] ~= s5[2])
    assert.same(s6, stamp())
    other:close()
    -- a restore replaces every row
    local copy = H.tmpdir() .. "/stamp-copy.db"
    assert(db.conn:backup_to(copy))
    assert.same(s6, stamp())
    assert(db.conn:restore_from(copy))
    assert.is_true(stamp()[1] > s6[1])
  end)
end)

describe("store concurrency and crashes", function()
  after_each(H.cleanup)

  it("lets readers read the last commit while a writer's transaction is open", function()
    local path = H.tmpdir() .. "/c.db"
    local w = assert(store.open(path))
    local r = assert(store.open(path))
    w:tx(function() add_card(w, "A") end)
    local seen
    assert(w:tx(function()
      for i = 1, 50 do add_card(w, "B" .. i) end
      -- the reader is not blocked and sees only the committed card
      seen = r:row("SELECT count(*) AS n FROM cards").n
      return true
    end))
    assert.equal(1, seen)
    assert.equal(51, r:row("SELECT count(*) AS n FROM cards").n)
    -- a second writer waits for the lock (busy timeout) rather than failing at once
    local t0 = orket.now()
    assert(r:tx(function() add_card(r, "C") return true end))
    assert.is_true(orket.now() - t0 < 1000)
    w:close()
    r:close()
  end)

  it("survives SIGKILL in the middle of a transaction: integrity ok, the open transaction gone", function()
    local dir = H.tmpdir()
    local path, marker = dir .. "/crash.db", dir .. "/writing"
    local db = assert(store.open(path))
    db:tx(function() add_card(db, "KEPT") end)
    db:close()
    H.write(dir .. "/child.lua", string.format([[
      local store = require "orket.store"
      local db = assert(store.open(%q))
      db:tx(function()
        local i = 0
        while true do
          i = i + 1
          assert(db:run("INSERT INTO cards (id, type, description, created_at, updated_at) VALUES (?, 'epic', ?, 'x', 'x')",
            "LOST" .. i, string.rep("x", 1000)))
          if i == 5000 then local f = io.open(%q, "w") f:write("go") f:close() end
        end
      end)
    ]], path, marker))
    local p = io.popen(string.format("%s lua %s >/dev/null 2>&1 & echo $!", H.quote(H.BIN), H.quote(dir .. "/child.lua")))
    local pid = tonumber(p:read("l"))
    p:close()
    local waited = 0
    while not H.read(marker) and waited < 10000 do
      orket.sleep(10)
      waited = waited + 10
    end
    assert.truthy(H.read(marker), "the child never reached the middle of its transaction")
    orket.sleep(20)
    assert.is_true(os.execute("kill -KILL " .. pid))
    H.wait_for(function() return not H.alive(pid) end, "the killed child to end") -- (reaped or not)
    db = assert(store.open(path))
    assert.equal("ok", db:row("PRAGMA integrity_check").integrity_check)
    assert.same({ { id = "KEPT" } }, db:rows("SELECT id FROM cards"))
    db:tx(function() add_card(db, "AFTER") end)
    assert.equal(2, db:row("SELECT count(*) AS n FROM cards").n)
    db:close()
  end)
end)

-- Nested levels open their savepoint at their first write (core/store.c); these are the
-- cases where that could commit part of a failed transaction.
describe("nested transactions without a savepoint of their own", function()
  after_each(H.cleanup)
  local function values(c)
    local t = {}
    for _, r in ipairs(c:rows("SELECT v FROM x ORDER BY v")) do t[#t + 1] = r.v end
    return table.concat(t, ",")
  end
  local function open()
    local c = assert(cstore.open(H.tmpdir() .. "/sp.db"))
    assert(c:exec("CREATE TABLE x (v INTEGER PRIMARY KEY)"))
    assert(c:run("INSERT INTO x VALUES (1)"))
    return c
  end

  it("report a transaction SQLite rolled back itself, so nothing after it is committed", function()
    local c = open()
    local ok = c:tx(function()
      assert(c:run("INSERT INTO x VALUES (10)"))
      assert(c:tx(function()
        assert(c:tx(function()
          assert(c:run("INSERT INTO x VALUES (20)"))
          c:run("INSERT OR ROLLBACK INTO x VALUES (1)") -- its failure unchecked: SQLite ends the transaction
          return true
        end))
        assert(c:run("INSERT INTO x VALUES (30)"))
        return true
      end))
      return true
    end)
    assert.is_nil(ok)
    assert.equal("1", values(c))
    assert.equal(0, c:depth())
    c:close()
  end)

  it("keep a caller's own savepoint statements inside the level's", function()
    local c = open()
    assert(c:tx(function()
      assert(c:run("INSERT INTO x VALUES (2)"))
      local ok = c:tx(function()
        assert(c:run("SAVEPOINT mine"))
        assert(c:run("INSERT INTO x VALUES (3)"))
        assert(c:run("RELEASE mine"))
        return nil, "the level fails after its own savepoint work"
      end)
      assert.is_nil(ok)
      return true
    end))
    assert.equal("1,2", values(c))
    c:close()
  end)
end)
