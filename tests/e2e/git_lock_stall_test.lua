-- A process stopped while it holds the project's repository lock (.orket/git.lock: a worker
-- stopped in the middle of a commit, SIGSTOP or a debugger) made a healthy worker that
-- waited for it inside a step's write transaction look idle to PostgreSQL: past the idle
-- limit (twice the lease: pgdb's idle_tx_limit) the server ended its session, its step was
-- rolled back and its run interrupted as at a lost store, and its lease renewals stood still
-- with its loop. The wait now keeps the transaction alive between slices (gitwork's lock),
-- and the worker goes on once the lock is free. Here a process of the test holds the lock,
-- as the stopped worker would. PostgreSQL only (tests/with_pg.lua): SQLite's store has no
-- server to end a transaction.
local H = require "tests.helpers"
local backends = require "tests.backends"
local WP = require "tests.worker_project"

local LEASE_MS = 1000
local HOLD_MS = 3 * LEASE_MS -- past the idle limit, twice the lease

describe("orket worker waiting for the repository lock inside a write transaction", function()
  local fake
  setup(function() fake = require("tests.fake_server").start() end)
  teardown(function()
    if fake then fake.stop() end
    H.cleanup()
  end)

  local it_pg = backends.name() == "pg" and it or pending
  it_pg("is not taken for idle by the server while another process holds the lock", function()
    local dir = WP.project(fake.url, { epics = { { id = "W", n = 3 } }, slow = 200,
      store_url = backends.fresh_url() })
    local w1 = WP.start_worker(dir, 1, { start = "W", lease_ms = LEASE_MS })
    local holder
    finally(function()
      os.execute("kill -KILL " .. w1 .. (holder and (" " .. holder) or "") .. " 2>/dev/null")
    end)
    H.wait_for(function() return #WP.events(dir, 1, "turn_start") > 0 end, "the worker's first turn", 5000)
    -- the lock held exclusive, as a worker stopped inside a merge holds it
    local p = io.popen(string.format("%s lua -e %s >%s/hold.out 2>&1 & echo $!", H.quote(H.BIN), H.quote(string.format(
      "local lk = assert(require('orket.c.lockfile').wait(%q, 'exclusive', 30000)) print('held') io.stdout:flush() "
      .. "require('orket.c.runtime').sleep(%d) lk:release() print('released')", dir .. "/.orket/git.lock", HOLD_MS)),
      H.quote(dir)))
    holder = tonumber(p:read("l"))
    p:close()
    H.wait_for(function() return (H.read(dir .. "/hold.out") or ""):find("held", 1, true) end, "the lock held", 5000)
    H.wait_for(function() return (H.read(dir .. "/hold.out") or ""):find("released", 1, true) end, "the lock released",
      HOLD_MS + 5000)
    -- its cards' merges need the lock: the worker, still there, waited for it (without the
    -- keep-alive the server ended its step's transaction meanwhile: store_lost, below)
    assert.is_true(H.alive(w1), "the worker ended while the lock was held")
    H.wait_for(function() return not H.alive(w1) end, "the worker to end", 30000)
    for _, kind in ipairs { "store_lost", "journal_error" } do
      local evs = WP.events(dir, 1, kind)
      assert.equal(0, #evs, kind .. ": " .. (evs[1] and tostring(evs[1].error) or ""))
    end
    local state = WP.board_state(dir)
    for i = 1, 3 do
      local id = "W-" .. i
      assert.equal("done", state[id].status, table.concat(getmetatable(state[id]).lines, "\n"))
      assert.equal(id .. "\n", H.read(dir .. "/workspace/" .. id .. ".line"))
    end
  end)
end)
