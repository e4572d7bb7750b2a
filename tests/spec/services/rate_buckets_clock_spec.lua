-- The failed-authentication buckets shared by every server (orket.store.rate_buckets) and
-- the clocks they are counted by, on SQLite and on PostgreSQL (tests/backends.lua): a
-- bucket stamped later than now (written by a server whose clock is ahead) neither empties
-- nor locks valid keys out; on PostgreSQL the database's clock counts, not the server's.
local H = require "tests.helpers"
local B = require "tests.backends"
local ratelimit = require "orket.serve.ratelimit"
local buckets = require "orket.store.rate_buckets"
local uv = require "luv"

local function wall_ms()
  local s, us = uv.gettimeofday()
  return s * 1000 + us // 1000
end

describe("the shared rate buckets' clock (" .. B.name() .. ")", function()
  after_each(H.cleanup)

  local O = { rate = 0.1, burst = 5 } -- a token each 10 s

  it("does not read a bucket stamped ahead of now as emptied: one failure elsewhere locks no one out", function()
    local db = B.open_store()
    -- one failed authentication counted by a server whose clock is 10 minutes ahead
    assert(db:run("INSERT INTO rate_buckets (scope, name, tokens, at_ms) VALUES ('auth_fail', '10.0.0.1', 4, ?)",
      wall_ms() + 600000))
    local l = ratelimit.shared(db, "auth_fail", O)
    assert.is_false(l:empty("10.0.0.1"))
    assert.equal(4, buckets.tokens(db, "auth_fail", "10.0.0.1", wall_ms(), O.rate, O.burst))
    -- a failure here takes one token of the four, not of a bucket emptied by the skew
    l:take("10.0.0.1")
    local row = assert(buckets.row(db, "auth_fail", "10.0.0.1"))
    assert.equal(3, row.tokens)
    assert.is_false(l:empty("10.0.0.1"))
    -- the limit still holds: three more failures empty it
    for _ = 1, 3 do l:take("10.0.0.1") end
    assert.is_true(l:empty("10.0.0.1") >= 1)
    db:close()
  end)

  it("still refills a bucket over time", function()
    local db = B.open_store()
    local now = B.name() == "pg" and db:row("SELECT (floor(extract(epoch FROM now()) * 1000))::bigint AS ms").ms
      or wall_ms()
    assert(db:run("INSERT INTO rate_buckets (scope, name, tokens, at_ms) VALUES ('auth_fail', 'a', 0, ?)", now - 25000))
    local l = ratelimit.shared(db, "auth_fail", O)
    assert.is_false(l:empty("a")) -- 2.5 tokens gained in 25 s
    assert(db:run("UPDATE rate_buckets SET at_ms = ? WHERE name = 'a'", now + 1000))
    assert.is_true(l:empty("a") >= 1) -- stamped just now, still empty
    db:close()
  end)

  it("counts by the database's clock on PostgreSQL, whatever the server's", function()
    if B.name() ~= "pg" then return end -- one machine, one clock
    local db = B.open_store()
    local real = uv.gettimeofday
    uv.gettimeofday = function() -- this server's clock, 10 minutes ahead
      local s, us = real()
      return s + 600, us
    end
    local ok, err = pcall(function()
      local l = ratelimit.shared(db, "auth_fail", O)
      l:take("10.0.0.2")
      local row = assert(buckets.row(db, "auth_fail", "10.0.0.2"))
      assert.is_true(math.abs(row.at_ms - row.now_ms) < 5000, "stamped by the database's clock")
      assert.is_true(math.abs(row.at_ms - (wall_ms() - 600000)) < 5000)
      assert.is_false(l:empty("10.0.0.2"))
    end)
    uv.gettimeofday = real
    assert(ok, err)
    db:close()
  end)

  it("keeps at most max names of a scope, forgetting first those that would be full again soonest", function()
    local db = B.open_store()
    local l = ratelimit.shared(db, "account_fail", { rate = 0.001, burst = 3, max = 4 })
    -- a name emptied by guesses, then a flood of names tried once each
    for _ = 1, 3 do l:take("alice") end
    assert.is_true(l:empty("alice") >= 1)
    for i = 1, 20 do l:take("flood" .. i) end
    local n = assert(db:row("SELECT count(*) AS n FROM rate_buckets WHERE scope = 'account_fail'")).n
    assert.equal(4, tonumber(n))
    -- the flood did not free the name it was meant to
    assert.is_true(l:empty("alice") >= 1)
    -- other scopes are not counted in, nor trimmed
    ratelimit.shared(db, "auth_fail", O):take("10.0.0.9")
    assert.truthy(assert(buckets.row(db, "auth_fail", "10.0.0.9")))
    db:close()
  end)

  it("never frees a name held off now to make room, a flood of names emptied after it neither; with every "
    .. "name kept held off, counts the new ones together in one bucket", function()
    local db = B.open_store()
    local l = ratelimit.shared(db, "account_fail", { rate = 0.001, burst = 2, max = 3 })
    local function kept()
      return tonumber(assert(db:row("SELECT count(*) AS n FROM rate_buckets WHERE scope = 'account_fail' AND name <> ?",
        ratelimit.OVERFLOW)).n)
    end
    -- the name being guessed at, emptied; then names each emptied after it (full again
    -- later), past max (as after a restart with a lower account_fail_names)
    for _ = 1, 2 do l:take("alice") end
    local now = B.name() == "pg" and db:row("SELECT (floor(extract(epoch FROM now()) * 1000))::bigint AS ms").ms
      or wall_ms()
    for i = 1, 3 do
      assert(db:run("INSERT INTO rate_buckets (scope, name, tokens, at_ms) VALUES ('account_fail', ?, 0, ?)",
        "flood" .. i, now + 5))
    end
    -- every name kept is held off: the names past them are not kept, but share one bucket
    l:take("newcomer1")
    assert.truthy(assert(buckets.row(db, "account_fail", "alice")))
    assert.is_true(l:empty("alice") >= 1)
    assert.equal(4, kept())
    assert.is_false(buckets.row(db, "account_fail", "newcomer1"))
    l:take("newcomer2")
    assert.is_true(l:empty(ratelimit.OVERFLOW) >= 1)
    local bucket, wait = l:reserve("newcomer3")
    assert.is_false(bucket)
    assert.is_true(wait >= 1)
    assert.is_false(buckets.row(db, "account_fail", "newcomer3")) -- not kept: its own would be a fresh one
    assert.is_true(l:empty("alice") >= 1)
    -- a name kept that is not held off makes room again: a new name gets its own bucket
    assert(db:run("UPDATE rate_buckets SET tokens = 2 WHERE scope = 'account_fail' AND name IN ('flood1', 'flood2')"))
    assert.equal("carol", (l:reserve("carol")))
    assert.truthy(assert(buckets.row(db, "account_fail", "carol")))
    assert.is_false(buckets.row(db, "account_fail", "flood1"))
    assert.is_true(l:empty("alice") >= 1)
    assert.equal(3, kept())
    db:close()
  end)

  it("takes a name's token before the check, only when there is one: a second server asking for the last "
    .. "token at once gets none; a success gives it back", function()
    local db = B.open_store()
    local O2 = { rate = 0.001, burst = 2, max = 100 }
    local a, b = ratelimit.shared(db, "account_fail", O2), ratelimit.shared(db, "account_fail", O2)
    assert.equal("alice", (a:reserve("alice"))) -- a failure: kept taken
    -- the last token: one server's check has it, the other's is refused before checking
    assert.equal("alice", (a:reserve("alice")))
    local got, wait = b:reserve("alice")
    assert.is_false(got)
    assert.is_true(wait >= 1)
    -- the first check succeeded: its token is back, and the next one may be checked
    a:give("alice")
    assert.equal("alice", (b:reserve("alice")))
    -- given back to full, the bucket is forgotten as a full one is
    b:give("alice")
    a:give("alice")
    assert.is_false(buckets.row(db, "account_fail", "alice"))
    db:close()
  end)
end)
