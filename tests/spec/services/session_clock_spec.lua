-- A session's expiry (orket.serve.session over orket.store.sessions and orket.store.users)
-- is judged and dated by the store's clock: on PostgreSQL the database's, which every
-- server of the store shares. Judged by each server's own clock, a server whose clock ran
-- ahead ended, and deleted for every server, each session with less than its lead left,
-- at a request and at any sign-in on it. On SQLite the servers share one machine, whose
-- clock (the caller's) is the judge. Here this process's clock is put 10 minutes ahead of
-- the machine's (os.time, which the server reads); on the backend under test
-- (tests.backends: SQLite, or PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local B = require "tests.backends"
local crypto = require "orket.c.crypto"
local users = require "orket.store.users"
local sessions = require "orket.store.sessions"
local sk = require "orket.store.keys"

local SKEW = 600

describe("session expiry on " .. B.name() .. ", this server's clock 10 minutes ahead", function()
  local db, real_time
  before_each(function()
    db = B.open_store()
    real_time = os.time
  end)
  after_each(function()
    os.time = real_time
    db:close()
    H.cleanup()
  end)

  local function ahead()
    os.time = function(t) if t then return real_time(t) end return real_time() + SKEW end
  end

  it("is the database's clock on PostgreSQL, this machine's on SQLite", function()
    local session = require "orket.serve.session"
    local accounts = require "orket.serve.accounts"
    local pg = B.name() == "pg"
    local key = string.format("%016x", 7)
    assert(db:tx(function()
      users.insert(db, "ann", "viewer", "$argon2id$stand-in")
      sk.insert(db, key, "ci", "operator", "h7")
      return true
    end))
    -- a person's session and a key's, each with 5 minutes left by the machine's clock
    local function token(n) return "ors_" .. string.rep(n, 64) end
    local left = real_time() + 300
    assert(db:tx(function()
      users.session_insert(db, crypto.hash(token("a"), 32), "ann", left)
      assert(sessions.insert(db, crypto.hash(token("b"), 32), key, left))
      return true
    end))
    ahead()
    local function check(t) return session.check(db, { method = "GET", headers = { cookie = "orket_session=" .. t } }) end
    -- a sign-in here first: it ends the sessions expired, and dates its own, by the store's clock
    local req, ctx = { headers = {} }, { db = db }
    local _, expires = assert(session.start_person(req, ctx, accounts.identity("ann", "viewer")))
    local who = assert(accounts.of_key(db, { id = key, name = "ci", role = "operator" }))
    assert(session.start_key(req, ctx, who))
    local dated = pg and real_time() or os.time()
    assert.is_true(math.abs(expires - (dated + session.TTL_S)) <= 5, "expires " .. (expires - real_time()) .. " s from now")
    if pg then
      assert.is_truthy(check(token("a")))
      assert.is_truthy(check(token("b")))
    else
      -- (ended by the sign-in's trim already: one machine, one clock)
      for _, t in ipairs { token("a"), token("b") } do
        local ok, st = check(t)
        assert.same({ nil, 401 }, { ok, st })
      end
    end
    -- as another server, whose clock is right, sees them
    os.time = real_time
    assert.equal(pg, check(token("a")) ~= nil)
    assert.equal(pg, check(token("b")) ~= nil)
  end)
end)
