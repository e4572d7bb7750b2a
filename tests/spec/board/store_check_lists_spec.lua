-- orket.store's migration 25: the CHECK (x IN (...)) lists of cards and gate_decisions
-- become ORs of the same values, which SQLite compiles without the temporary b-tree it built
-- for each list at every write of the column. A board from version 24 keeps every row, and
-- refuses what it refused.
local H = require "tests.helpers"
local store = require "orket.store"

local NOW = store.NOW
local TYPES = { "rock", "epic", "issue" }
local STATUSES = { "ready", "in_progress", "blocked", "waiting_for_developer", "ready_for_testing", "code_review",
  "done", "canceled", "archived" }
local REASONS = { "resource", "dependency", "review", "input", "system", "budget" }
local VERDICTS = { "allow", "deny", "ask" }

-- A board at version 24: an epic of each type's parent, then a card in every status with
-- each wait reason (and none) in turn, each with a comment, a dependency and an experiment
-- arm (children whose ON DELETE CASCADE a rebuild of cards could fire).
local function v24_board(path)
  local db = assert(store.open(path, { upto = 24 }))
  assert.equal(24, db:version())
  db:tx(function()
    assert(db:run("INSERT INTO cards (id, type, created_at, updated_at) VALUES ('R', 'rock', " .. NOW .. ", " .. NOW .. ")"))
    assert(db:run("INSERT INTO cards (id, type, parent, name, created_at, updated_at) VALUES ('E', 'epic', 'R', 'Ep', "
      .. NOW .. ", " .. NOW .. ")"))
    for i, s in ipairs(STATUSES) do
      local id = "I-" .. i
      local reason = (i % (#REASONS + 1) ~= 0) and REASONS[i % (#REASONS + 1)] or nil
      assert(db:run("INSERT INTO cards (id, type, parent, summary, priority, seat, status, wait_reason, retries, "
        .. "worked_by, verification, created_at, updated_at) VALUES (?, 'issue', 'E', ?, ?, 'coder', ?, ?, ?, 'w1', ?, "
        .. NOW .. ", " .. NOW .. ")", id, "card " .. s, i / 2, s, reason, i, '{"command":["true"]}'))
      assert(db:run("INSERT INTO comments (card_id, author, body, created_at) VALUES (?, 'me', 'hi', " .. NOW .. ")", id))
      if i > 1 then
        assert(db:run("INSERT INTO dependencies (card_id, depends_on, position) VALUES (?, 'I-1', 1)", id))
      end
      assert(db:run("INSERT INTO experiment_cards (experiment, card_id, arm, assigned_at) VALUES ('x', ?, 'control', "
        .. NOW .. ")", id))
    end
    for _, v in ipairs(VERDICTS) do
      assert(db:run("INSERT INTO gate_decisions (tool, verdict, code, reason, created_at) VALUES ('write_file', ?, 'C', "
        .. "'why', " .. NOW .. ")", v))
    end
    for _, r in ipairs(REASONS) do -- every wait reason on some card
      assert(db:run("INSERT INTO cards (id, type, parent, status, wait_reason, created_at, updated_at) VALUES (?, 'issue', "
        .. "'E', 'blocked', ?, " .. NOW .. ", " .. NOW .. ")", "W-" .. r, r))
    end
  end)
  return db
end

local CHILDREN = { "comments", "dependencies", "experiment_cards", "gate_decisions" }

local function snapshot(db)
  local out = { cards = assert(db:rows("SELECT rowid AS rid, * FROM cards ORDER BY id")) }
  for _, t in ipairs(CHILDREN) do out[t] = assert(db:rows("SELECT * FROM " .. t .. " ORDER BY 1, 2")) end
  return out
end

local function ephemeral_tables(db, sql)
  local n = 0
  for _, op in ipairs(assert(db:rows("EXPLAIN " .. sql))) do
    if op.opcode == "OpenEphemeral" then n = n + 1 end
  end
  return n
end

describe("store migration 25: CHECK lists", function()
  after_each(H.cleanup)

  it("keeps every row of a version 24 board, its children and its indexes", function()
    local path = H.tmpdir() .. "/orket.db"
    local db = v24_board(path)
    local before = snapshot(db)
    local indexes = assert(db:rows("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'cards' AND type = 'index' ORDER BY name"))
    db:close()
    db = assert(store.open(path))
    assert.equal(store.latest_version, db:version())
    assert.is_true(store.latest_version >= 25)
    assert.same(before, snapshot(db))
    assert.same(indexes, assert(db:rows("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'cards' AND type = 'index' ORDER BY name")))
    assert.same({}, assert(db:rows("PRAGMA foreign_key_check")))
    assert.equal("ok", db:row("PRAGMA integrity_check").integrity_check)
    assert.equal(1, db:row("PRAGMA foreign_keys").foreign_keys)
    db:close()
  end)

  it("writes a card's status and wait reason, and a gate decision, without a temporary b-tree", function()
    local path = H.tmpdir() .. "/orket.db"
    local db = assert(store.open(path))
    local move = "UPDATE cards SET status = 'done', wait_reason = NULL, worked_by = 'w', retries = retries + 0 WHERE id = 'x'"
    assert.equal(0, ephemeral_tables(db, move))
    assert.equal(0, ephemeral_tables(db, "INSERT INTO cards (id, type, created_at, updated_at) VALUES ('x', 'epic', 'a', 'a')"))
    assert.equal(0, ephemeral_tables(db, "INSERT INTO gate_decisions (verdict, created_at) VALUES ('deny', 'a')"))
    for _, t in ipairs { "cards", "gate_decisions" } do
      local sql = db:row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", t).sql
      assert.is_nil(sql:find(" IN (", 1, true))
    end
    db:close()
  end)

  it("accepts every type, status, wait reason and verdict it accepted, and refuses any other with the check's text", function()
    local path = H.tmpdir() .. "/orket.db"
    local db = v24_board(path)
    db:close()
    db = assert(store.open(path))
    db:tx(function()
      for _, t in ipairs(TYPES) do
        assert(db:run("INSERT INTO cards (id, type, created_at, updated_at) VALUES (?, ?, " .. NOW .. ", " .. NOW .. ")", "T-" .. t, t))
      end
      for _, s in ipairs(STATUSES) do assert(db:run("UPDATE cards SET status = ? WHERE id = 'I-1'", s)) end
      for _, r in ipairs(REASONS) do assert(db:run("UPDATE cards SET wait_reason = ? WHERE id = 'I-1'", r)) end
      assert(db:run("UPDATE cards SET wait_reason = NULL WHERE id = 'I-1'"))
      for _, v in ipairs(VERDICTS) do
        assert(db:run("INSERT INTO gate_decisions (verdict, created_at) VALUES (?, " .. NOW .. ")", v))
      end
    end)
    local function refused(sql, ...)
      local ok, msg, code = db:run(sql, ...)
      assert.is_nil(ok)
      assert.equal("ECONSTRAINT", code)
      return msg
    end
    assert.matches("CHECK constraint failed: status = 'ready' OR", refused("UPDATE cards SET status = ? WHERE id = 'I-1'", "finished"), 1, true)
    assert.matches("CHECK constraint failed: status = 'ready' OR", refused("UPDATE cards SET status = ? WHERE id = 'I-1'", "Done"), 1, true)
    assert.matches("CHECK constraint failed: wait_reason IS NULL OR wait_reason = 'resource'",
      refused("UPDATE cards SET wait_reason = ? WHERE id = 'I-1'", "bored"), 1, true)
    assert.matches("CHECK constraint failed: type = 'rock' OR",
      refused("INSERT INTO cards (id, type, created_at, updated_at) VALUES ('T-x', 'task', " .. NOW .. ", " .. NOW .. ")"), 1, true)
    assert.matches("CHECK constraint failed: verdict = 'allow' OR verdict = 'deny' OR verdict = 'ask'",
      refused("INSERT INTO gate_decisions (verdict, created_at) VALUES ('maybe', " .. NOW .. ")"), 1, true)
    assert.matches("NOT NULL constraint failed: cards.status", refused("UPDATE cards SET status = NULL WHERE id = 'I-1'"), 1, true)
    assert.equal("archived", db:row("SELECT status FROM cards WHERE id = 'I-1'").status) -- the last accepted
    db:close()
  end)

  it("fails, changing nothing, on a cards table whose list is not the one it replaces", function()
    local path = H.tmpdir() .. "/orket.db"
    local db = v24_board(path)
    -- a list edited by hand: a status more than the migration knows
    local sql = db:row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'cards'").sql
    local edited = sql:gsub("'done', 'canceled'", "'done', 'shelved', 'canceled'")
    local cookie = db:row("PRAGMA schema_version").schema_version
    assert(db:exec("PRAGMA writable_schema = ON"))
    assert(db:run("UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = 'cards'", edited))
    assert(db:exec("PRAGMA schema_version = " .. (cookie + 1)))
    assert(db:exec("PRAGMA writable_schema = OFF"))
    db:close()
    local none, err = store.open(path)
    assert.is_nil(none)
    assert.matches("migration 25 %(CHECK lists without a temporary b%-tree%) failed: .*cards%.status's CHECK lists "
      .. "ready, in_progress, blocked, waiting_for_developer, ready_for_testing, code_review, done, shelved, canceled, archived", err)
    db = assert(store.open(path, { upto = 24 }))
    assert.equal(24, db:version())
    assert.equal(edited, db:row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'cards'").sql)
    db:close()
  end)

  -- an upgrade is all or nothing: a file two versions behind whose second step fails keeps
  -- neither, so the orket that made it still opens it (one saved step left a version no
  -- orket could open, nor restore a backup into)
  it("keeps none of an upgrade's steps when a later one fails", function()
    local path = H.tmpdir() .. "/orket.db"
    local db = assert(store.open(path, { upto = 23 }))
    local sql = db:row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'cards'").sql
    local cookie = db:row("PRAGMA schema_version").schema_version
    assert(db:exec("PRAGMA writable_schema = ON"))
    assert(db:run("UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = 'cards'",
      (sql:gsub("'done', 'canceled'", "'done', 'shelved', 'canceled'"))))
    assert(db:exec("PRAGMA schema_version = " .. (cookie + 1)))
    assert(db:exec("PRAGMA writable_schema = OFF"))
    db:close()
    local none, err = store.open(path)
    assert.is_nil(none)
    assert.matches("migration 25 %(.-%) failed: .*nothing of the upgrade was kept %(the file is at schema version 23, "
      .. "as before%)", err)
    db = assert(store.open(path, { upto = 23 }))
    assert.equal(23, db:version())
    assert.is_nil(db:row("SELECT name FROM sqlite_master WHERE name = 'projects'")) -- migration 24's table
    db:close()
  end)
end)
