-- orket restore refuses to undo an act that took a power away unless told
-- (--accept-undone-revocations, EAUDITUNDONE): a project's removal, which dropped its
-- memberships, and a sign-out, which ended a session, count as the server's own lists count
-- them (orket.audit.revoking). With --accept-older-audit alone, an older backup gave a
-- removed project's members their access back and revived a signed-out session's cookie.
-- On the backend the suite runs on (SQLite, or PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local people = require "tests.people"
local backends = require "tests.backends"
local cjson = require "cjson"

local ok = H.ok

local function backup_file()
  return H.tmpdir() .. "/before" .. (backends.name() == "pg" and ".export" or ".db")
end

-- the restore refused for the undone act alone, then let through when told
local function refused_then_told(dir, file, said)
  local r = H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir })
  assert.equal(1, r.status, r.stdout .. r.stderr)
  assert.matches(said, r.stderr)
  assert.matches("restoring it undoes what was done since to people and keys (above); restore a newer backup, or "
    .. "this one with --accept-undone-revocations", r.stderr, 1, true)
  assert.matches("(the store was not changed)", r.stderr, 1, true)
  r = ok(H.orket("restore --accept-older-audit --accept-undone-revocations " .. H.quote(file), { cwd = dir }),
    "restore told")
  assert.matches("accepted %(%-%-accept%-undone%-revocations%): " .. said:gsub("^refused: ", ""), r.stderr)
  return r
end

describe("orket restore of a backup older than an act that took a power away", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("refuses to give a removed project's memberships back unless told", function()
    local dir = H.example("webapp")
    local other = H.example("adder")
    -- (PostgreSQL: the tests' databases are copies of one template, and share its store id)
    if backends.name() == "pg" then
      local url = H.read(other .. "/orket.lua"):match('store = { url = "([^"]+)" }')
      local db = assert(require("orket.store").open_url(url))
      assert(db:run("UPDATE store_identity SET id = md5(random()::text)"))
      db:close()
    end
    ok(H.orket("projects add " .. H.quote(other) .. " --name web", { cwd = dir }), "projects add")
    people.add(dir, "alice", "viewer")
    ok(H.orket("projects grant web alice developer", { cwd = dir }), "grant")
    local file = backup_file()
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    ok(H.orket("projects remove web", { cwd = dir }), "remove")
    refused_then_told(dir, file, "refused: the store's entry %d+, a project removed, and its memberships with it "
      .. "%(project_remove members=alice:developer project=web, by local:[^ ]+ at [^)]+%), is not in the backup: "
      .. "restoring it undoes that")
    assert.matches("members: alice %(developer%)", ok(H.orket("projects list", { cwd = dir }), "list").stdout)
  end)

  it("refuses to revive a signed-out session unless told", function()
    local dir = H.example("webapp")
    people.add(dir, "alice", "viewer")
    local s = H.serve(dir)
    local h = people.sign_in(s, "alice")
    ok(H.orket("audit checkpoint", { cwd = dir }), "checkpoint") -- (the backup's audit signed)
    local file = backup_file()
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local function session()
      return (H.fetch { url = s.url .. "/v1/session", headers = { h[1] }, total_timeout_ms = 20000 })
    end
    assert.equal(200, session())
    local st, text = H.fetch { url = s.url .. "/v1/session", method = "DELETE", headers = h, total_timeout_ms = 20000 }
    assert.equal(200, st, text)
    assert.is_true(cjson.decode(text).signed_out)
    assert.equal(401, session())
    s.stop()
    refused_then_told(dir, file, "refused: the store's entry %d+, a session signed out %(sign_out person=alice "
      .. "session=%x+ via=password, by user:alice at [^)]+%), is not in the backup: restoring it undoes that")
    -- told: the session is back, as the flag's remedy warns
    s = H.serve(dir)
    assert.equal(200, (H.fetch { url = s.url .. "/v1/session", headers = { h[1] }, total_timeout_ms = 20000 }))
  end)
end)
