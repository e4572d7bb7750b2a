-- orket runs stop and orket worker's stop, as an operator meets them: a run held by a worker
-- that was killed, and the events of a worker stopped mid-run. On PostgreSQL
-- (tests/with_pg.lua) the project names a fresh database of the test server.
local H = require "tests.helpers"
local backends = require "tests.backends"
local project_mod = require "orket.project"

-- the starter project (its scripted model, offline), on the backend under test -> dir
local function starter()
  local dir = H.tmpdir() .. "/p"
  assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
  if backends.name() == "pg" then
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format("\nstore = { url = %q }\n",
      backends.fresh_url()))
    assert.equal(0, H.orket("import", { cwd = dir }).status)
  end
  return dir
end

describe("orket runs stop", function()
  after_each(H.cleanup)

  -- A worker killed with SIGKILL leaves its lease live until it ends: the refusal told the
  -- operator to stop that worker (it no longer existed) and not that the refusal ends by
  -- itself once the lease does.
  it("says, when a worker holds the run, that a dead one holds it until its lease ends, and when", function()
    local dir = starter()
    local db = assert(project_mod.open_store(dir, true))
    local id = assert(db:record_run { target = "START", kind = "epic", data = { workers = true } })
    local ops = require("orket.engine.lease").ops(db)
    assert(db:tx(function()
      return #ops.claim(db, { worker = "gone#0123456789abcdef", run = id, ids = { "START-1" }, ttl_ms = 600000 }) == 1
    end))
    local until_ = ops.live(db, id)[1].expires_at
    db:close()
    local r = H.orket("runs stop " .. id, { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.matches("run " .. id .. " is worked by worker gone now (card START-1)", r.stderr, 1, true)
    assert.matches("a worker that died (SIGKILL, its machine lost) holds its cards until its lease ends, by "
      .. until_ .. ": then stop the run again", r.stderr, 1, true)
  end)
end)
