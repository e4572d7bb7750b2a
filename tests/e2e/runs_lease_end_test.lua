-- orket runs (text): each card worked now says when its lease ends. A card under a killed
-- worker was shown as worked, with nothing to tell that the lease counts down unrenewed
-- (--json gives expires_at; the text gave nothing).
local H = require "tests.helpers"
local cjson = require "cjson"
local backends = require "tests.backends"
local project_mod = require "orket.project"
local runs_cmd = require "orket.cmd.runs"

local starter = backends.starter

describe("orket runs", function()
  after_each(H.cleanup)

  it("says when each worked card's lease ends", function()
    local dir = starter()
    local db = assert(project_mod.open_store(dir, true))
    local id = assert(db:record_run { target = "START", kind = "epic", data = { workers = true } })
    local ops = require("orket.engine.lease").ops(db)
    assert(db:tx(function()
      return #ops.claim(db, { worker = "gone#0123456789abcdef", run = id, ids = { "START-1" }, ttl_ms = 60000 }) == 1
    end))
    assert(db:tx(function()
      return #ops.claim(db, { worker = "slow#0123456789abcdef", run = id, ids = { "START-2" }, ttl_ms = 3000000 }) == 1
    end))
    db:close()
    local r = H.orket("runs", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local s = tonumber(r.stdout:match("START%-1 %(gone, lease ends in (%d+) s%)"))
    assert.is_number(s, r.stdout)
    -- (a bound of the lease itself: the seconds left, whatever the machine's pace)
    assert.is_true(s >= 1 and s <= 60, r.stdout)
    local m = tonumber(r.stdout:match("START%-2 %(slow, lease ends in (%d+) min%)"))
    assert.is_true(m ~= nil and m >= 2 and m <= 50, r.stdout)
    -- the same end as --json gives
    local leases = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs[1].leases
    assert.equal(2, #leases)
    assert.is_string(leases[1].expires_at)
  end)

  it("words a lease's end by the time left, and an end passed as expired", function()
    local at = require("orket.clock").parse_time("2026-11-29T18:00:00Z")
    assert.equal("lease ends in 23 s", runs_cmd.lease_words("2026-11-29T18:00:23.456Z", at))
    assert.equal("lease ends in 119 s", runs_cmd.lease_words("2026-11-29T18:01:59.000Z", at))
    assert.equal("lease ends in 2 min", runs_cmd.lease_words("2026-11-29T18:02:00.000Z", at))
    assert.equal("lease ends in 3 h", runs_cmd.lease_words("2026-11-29T21:00:00.000Z", at))
    assert.equal("lease expired", runs_cmd.lease_words("2026-11-29T18:00:00.000Z", at))
    assert.equal("lease expired", runs_cmd.lease_words("2026-11-29T17:59:00.000Z", at))
    assert.is_nil(runs_cmd.lease_words("soon", at))
    assert.is_nil(runs_cmd.lease_words(nil, at))
  end)
end)
