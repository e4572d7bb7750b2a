-- orket.c.crypto's password_hash and password_verify run Argon2id (a good fraction of a
-- second of CPU) on the loop's thread pool: the calling task waits and the loop goes on
-- (a server's other clients, its runs). At most two run at once, the rest wait in order,
-- so that a flood of sign-ins cannot take every thread of the pool. A task cancelled, or
-- a state closed, while one runs leaves nothing behind.
local H = require "tests.helpers"
local crypto = require "orket.c.crypto"
local task = require "orket.task"
local uv = require "luv"

describe("password checks on the thread pool", function()
  after_each(H.cleanup)
  local hash
  setup(function() hash = assert(crypto.password_hash("correct horse")) end)

  it("waits in its task while the loop turns", function()
    local order = {}
    local t = task.spawn(function()
      local ok = crypto.password_verify(hash, "wrong horse")
      order[#order + 1] = "checked"
      return ok
    end)
    -- checked on the loop, the verification would be over before spawn returned
    assert.equal("running", t.state)
    local timer = uv.new_timer()
    timer:start(0, 0, function()
      order[#order + 1] = "timer"
      timer:close()
    end)
    assert.same({ true, false }, { t:join() })
    assert.same({ "timer", "checked" }, order)
    -- hashing waits the same way
    local h = task.spawn(crypto.password_hash, "correct horse")
    assert.equal("running", h.state)
    local ok, made = h:join()
    assert.is_true(ok)
    assert.is_true(crypto.password_verify(made, "correct horse"))
  end)

  it("runs two at once, the others waiting their turn in order", function()
    local ends, tasks = {}, {}
    for i = 1, 5 do
      tasks[i] = task.spawn(function()
        local ok = crypto.password_verify(hash, i == 4 and "correct horse" or "wrong")
        ends[#ends + 1] = i
        return ok
      end)
    end
    assert.same({ 2, 3 }, { crypto.password_checks() })
    for i = 1, 5 do assert.same({ true, i == 4 }, { tasks[i]:join() }) end
    assert.same({ 0, 0 }, { crypto.password_checks() })
    -- the third starts only when one of the first two has ended, so the first to end is one
    -- of those two (the third may still end before the other, on a busy machine)
    assert.is_true(ends[1] == 1 or ends[1] == 2, "first ended: " .. tostring(ends[1]))
  end)

  it("lets a cancelled task go, running or waiting, and goes on with the rest", function()
    local tasks = {}
    for i = 1, 4 do tasks[i] = task.spawn(crypto.password_verify, hash, "correct horse") end
    tasks[1]:cancel() -- running: its check ends on its thread and is dropped
    tasks[3]:cancel() -- waiting: taken out of the queue
    assert.same({ 2, 1 }, { crypto.password_checks() }) -- the first still runs its course
    assert.same({ true, true }, { tasks[2]:join() })
    assert.same({ true, true }, { tasks[4]:join() })
    assert.equal("canceled", tasks[1].state)
    assert.same({ 0, 0 }, { crypto.password_checks() })
  end)

  it("a sign-in's check, a known name's or an unknown one's, waits in its task", function()
    local accounts = require "orket.serve.accounts"
    local db = assert(require("orket.store").open(H.tmpdir() .. "/orket.db"))
    local h = assert(accounts.hash("alice", "viewer", "alice-password"))
    assert(accounts.add(db, "alice", "viewer", h, "test"))
    assert.has_error(function() accounts.add(db, "bob", "viewer", "bob-password", "test") end)
    for _, case in ipairs { { "alice", "wrong-password", "wrong" }, { "nobody", "x", "unknown" } } do
      local t = task.spawn(accounts.verify, db, case[1], case[2])
      assert.equal("running", t.state) -- the loop goes on meanwhile
      assert.same({ true, nil, case[3] }, { t:join() })
    end
    assert.equal("user:alice", assert(accounts.verify(db, "alice", "alice-password")).id)
    -- disabled while her check waits: the answer is the person as she is when it ends
    local t = task.spawn(accounts.verify, db, "alice", "alice-password")
    assert.equal("running", t.state)
    require("orket.store.users").set_disabled(db, "alice", true)
    assert.same({ true, nil, "disabled" }, { t:join() })
    db:close()
  end)

  it("is called in a task, and refuses a password out of bounds before waiting", function()
    assert.is_false(crypto.password_verify("not a hash", "x")) -- a changed row is data
    assert.is_false(crypto.password_verify(string.rep("$", 300), "x"))
    assert.is_false(crypto.password_verify(hash, string.rep("x", 4097)))
    assert.has_error(function() crypto.password_hash(string.rep("x", 4097)) end,
      "bad argument #1 to 'password_hash' (a password must be 1 to 4096 bytes)")
    -- a C function's callback cannot yield
    local ok, msg = pcall(string.gsub, "x", "x", function() return tostring(crypto.password_verify(hash, "x")) end)
    assert.is_false(ok)
    assert.matches("must run inside a task", msg)
  end)

  it("closes a state whose checks still run, leaving nothing behind", function()
    local dir = H.tmpdir()
    H.write(dir .. "/s.lua", [[
local crypto = require "orket.c.crypto"
local task = require "orket.task"
local h = assert(crypto.password_hash("correct horse"))
for _ = 1, 4 do task.spawn(crypto.password_verify, h, "wrong") end
io.write("left ", select(1, crypto.password_checks()), " ", select(2, crypto.password_checks()), "\n")
]])
    local r = H.orket("lua " .. dir .. "/s.lua")
    assert.equal("", r.stderr)
    assert.equal("left 2 2\n", r.stdout)
    assert.equal(0, r.status)
  end)
end)
