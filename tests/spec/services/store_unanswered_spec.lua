-- A PostgreSQL that stops answering (frozen, behind a dropped network) is the store's loss,
-- as one that refuses or resets connections is: a connection whose connect timed out, and a
-- pool acquire that timed out waiting for one, are noted by the store (db:journal_error),
-- so a run leaves its turn unrecorded and a worker waits for the store (store_lost) rather
-- than take the raise for a bug or block the card. A query's own timeout on a live
-- connection stays that statement's failure. PostgreSQL only (tests/pg.lua's server).
local H = require "tests.helpers"
local PG = require "tests.pg"

local available, why = PG.available()
if not available then
  describe("a store that stops answering", function() pending("skipped: " .. why) end)
  return
end

local pgpool = require "orket.store.pgpool"
local task = require "orket.task"
local store = require "orket.store"
local uv = require "luv"

describe("a PostgreSQL store that stops answering", function()
  local server, db

  setup(function()
    server = PG.start()
    db = assert(store.open_url(server.url, { size = 1, acquire_timeout_ms = 150 }))
  end)
  teardown(function()
    if db then db:close() end
    if server then server.stop() end
    H.cleanup()
  end)
  before_each(function() db:clear_journal_error() end)

  it("takes a connect that timed out for the store's loss", function()
    local url, close = PG.silent()
    local real = db.pool
    db.pool = pgpool.new { url = url, connect_timeout_ms = 100 }
    local rows, msg, code = db:rows("SELECT 1 AS v")
    local _, txmsg, txcode = db:tx(function() return true end)
    db.pool:close()
    db.pool = real
    close()
    assert.is_nil(rows)
    assert.equal("ETIMEDOUT", code)
    assert.equal("pg: connecting: timed out after 100 ms", msg)
    assert.equal("ETIMEDOUT", txcode, txmsg)
    assert.equal("PostgreSQL: pg: connecting: timed out after 100 ms", db:journal_error())
  end)

  it("takes a pool acquire that timed out for the store's loss when the server answers no new connection", function()
    local url, close = PG.silent()
    local real = db.pool
    db.pool = pgpool.new { url = url, size = 1, connect_timeout_ms = 400, acquire_timeout_ms = 100 }
    -- the pool's one connection, being made to a server that never answers
    local mark = db:journal_mark()
    local first = task.spawn(function() return db:rows("SELECT 1 AS v") end)
    local rows, msg, code = db:rows("SELECT 1 AS v")
    first:join()
    db.pool:close()
    db.pool = real
    close()
    assert.is_nil(rows)
    assert.equal("ETIMEDOUT", code, msg)
    assert.equal("pg pool: no connection free within 100 ms (size 1) and the server answers no new one", msg)
    -- (the first task's connect timed out before: the last failure noted is this one)
    assert.matches("no connection free within 100 ms", db:journal_error(mark), 1, true)
  end)

  it("leaves a pool acquire that timed out a busy pool's failure while the server answers", function()
    -- its statements slow, or waiting for a lock another process holds: no loss of the
    -- server, which would stop every run of the handle
    local lease = assert(db.pool:acquire()) -- the pool's one connection, held
    local rows, msg, code = db:rows("SELECT 1 AS v")
    db.pool:release(lease)
    assert.is_nil(rows)
    assert.equal("ETIMEDOUT", code, msg)
    assert.equal("pg pool: no connection free within 300 ms (size 1), the server answering: every connection was busy",
      msg)
    assert.is_nil(db:journal_error())
    assert.equal(1, db:rows("SELECT 1 AS v")[1].v) -- and it answers again once freed
  end)

  it("takes a server at its connection limit for one that answers, not for a lost one", function()
    -- a role allowed one connection: the probe past the pool is refused by the server
    -- itself (FATAL: too many connections), which is an answer
    assert(db:exec("DROP ROLE IF EXISTS lim; CREATE ROLE lim LOGIN CONNECTION LIMIT 1 PASSWORD 'lim-pw-1'; GRANT CONNECT ON DATABASE postgres TO lim"))
    local f = assert(io.open(server.passfile, "a"))
    f:write("*:*:*:lim:lim-pw-1\n")
    f:close()
    local real = db.pool
    db.pool = pgpool.new { url = server.url:gsub("//orket@", "//lim@"), size = 1, acquire_timeout_ms = 100 }
    local lease = assert(db.pool:acquire())
    local rows, msg, code = db:rows("SELECT 1 AS v")
    db.pool:release(lease)
    db.pool:close()
    db.pool = real
    assert.is_nil(rows)
    assert.equal("ETIMEDOUT", code, msg)
    assert.matches("the server answering: every connection was busy", msg, 1, true)
    assert.is_nil(db:journal_error())
  end)

  it("leaves a query's own timeout on a live connection that query's failure", function()
    local real = db.pool
    db.pool = pgpool.new { url = server.url, query_timeout_ms = 100 }
    local rows, msg, code = db:rows("SELECT pg_sleep(30)")
    H.wait_for(function() return db.pool:stats().busy == 0 end, "the timed-out query to be handed back")
    db.pool:close()
    db.pool = real
    assert.is_nil(rows)
    assert.equal("ETIMEDOUT", code)
    assert.equal("pg: query timed out after 100 ms (cancelled)", msg)
    assert.is_nil(db:journal_error())
  end)
  -- A stop's bound is each statement's: one that had no answer in time gives the server up.
  -- It was a deadline from the signal, after which every statement failed: a stop whose own
  -- work took longer (a sandbox's stop, a run's end) lost its last writes on a server that
  -- answered all along.
  it("keeps a stop's statements going on a server that answers, and gives it up on one unanswered", function()
    local pool = pgpool.new { url = server.url, size = 2 }
    pool:stop_within(200)
    for _ = 1, 4 do
      orket.sleep(150)
      local rows, msg = pool:rows("SELECT pg_sleep(0.05), 1 AS v")
      assert.is_table(rows, msg)
    end
    local ok, msg = pool:tx(function(tx) return tx:row("SELECT 2 AS v") end)
    assert.is_table(ok, msg)
    -- a statement that waits past the bound: the server is taken for gone
    local t0 = uv.now()
    local rows, err, code = pool:rows("SELECT pg_sleep(2)")
    assert.is_nil(rows)
    assert.equal("ETIMEDOUT", code)
    assert.matches("had no answer within the stop's 200 ms", err, 1, true)
    assert.is_true(uv.now() - t0 < 1500, tostring(uv.now() - t0))
    -- later ones at once
    t0 = uv.now()
    rows, err, code = pool:rows("SELECT 1 AS v")
    assert.same({ "ETIMEDOUT", true }, { code, uv.now() - t0 < 100 })
    pool:close()
  end)
end)
