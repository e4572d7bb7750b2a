-- An app's ticket and session (orket.store.app_grants, orket.serve.apps) are dated and
-- judged by the store's clock, as the board's sessions are: on PostgreSQL the database's,
-- which every server of the store shares. Judged by each server's own clock, a server whose
-- clock ran ahead took others' live app sessions for ended, and deleted them. Here this
-- process's clock is put 10 minutes ahead of the machine's (os.time); on the backend under
-- test (tests.backends: SQLite, or PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local B = require "tests.backends"
local grants = require "orket.store.app_grants"

local SKEW = 600

describe("app grants on " .. B.name() .. ", this server's clock 10 minutes ahead", function()
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

  it("read with the store's clock: the database's on PostgreSQL, this machine's on SQLite", function()
    local made = grants.now(db)
    grants.insert(db, "h1", "session", { sandbox = 1, key = "k", role = "viewer", expires_s = made + 300 })
    os.time = function(t) if t then return real_time(t) end return real_time() + SKEW end
    local g = assert(grants.get(db, "h1", "session"))
    if B.name() == "pg" then
      -- five minutes left by the database's clock, which this server's lead does not change
      assert.is_true(g.now < g.expires_s, g.now .. " " .. g.expires_s)
      assert.is_true(math.abs(grants.now(db) - real_time()) <= 5)
      -- nor does it end the grant for the others
      assert.equal(1, grants.live(db, "session", grants.now(db)))
    else
      assert.is_true(g.now >= g.expires_s) -- one machine, one clock: this one
    end
  end)
end)
