-- orket restore of a backup older than the store it replaces, on the backend the suite runs
-- on: the check and the restore say what the store's newer journal held (its events, runs
-- and cards), which no audit entry records when the work was a run's; and a later restore
-- refused for the audit entries the first one wrote says that they are only its record.
local H = require "tests.helpers"
local backends = require "tests.backends"

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr))
  return r
end

describe("orket restore of a backup older than the store", function()
  after_each(function() H.cleanup() end)

  it("says what the newer store's journal held before and after, and names its own record later", function()
    local dir = backends.starter()
    local file = H.tmpdir() .. "/before.db"
    if backends.name() == "pg" then file = file:gsub("%.db$", ".export") end
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    -- a backup of the store as it is drops nothing
    local r = ok(H.orket("restore --check " .. H.quote(file), { cwd = dir }), "check of a current backup")
    assert.not_matches("newer than the backup", r.stdout, 1, true)
    ok(H.orket("run START", { cwd = dir }), "run")

    local said = "the store it replaces is newer than the backup: its %d+ events after the backup's newest "
      .. "%(at [%d%-T:%.Z+]+%), up to [%d%-T:%.Z+]+, VERB dropped: the work of 1 run on 3 cards"
    r = ok(H.orket("restore --check " .. H.quote(file), { cwd = dir }), "check")
    assert.matches((said:gsub("VERB", "would be")), r.stdout)
    r = ok(H.orket("restore " .. H.quote(file), { cwd = dir }), "restore")
    assert.matches((said:gsub("VERB", "were")), r.stdout)
    assert.matches("(workspace/ is not in a backup: its main keeps any of their merges", r.stdout, 1, true)
    -- the dropped run's id is kept by a row of its own, never given again (orket.store.restore_runs)
    assert.matches("run id 1 was given out by the store it replaced, and the backup does not hold that run: a row "
      .. "of its own (stopped) keeps it", r.stdout, 1, true)
    assert.matches("\n +1 +stopped +START ", ok(H.orket("runs", { cwd = dir }), "runs").stdout)

    -- the store's audit now holds only that restore's entry and checkpoint: the refusal
    -- says so rather than leave them to be read as lost work
    r = H.orket("restore " .. H.quote(file), { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("the store's entries 1 to 2 (checkpoint, restore) are not in it", r.stderr, 1, true)
    assert.matches("entries 1 to 2 are only the record of the restore of [^\n]*before%.[a-z]+ at %d%d%d%d%-", r.stderr)
    -- and with the flag, nothing of the store's work is dropped: no such line
    r = ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore again")
    assert.not_matches("newer than the backup", r.stdout, 1, true)
  end)
end)
