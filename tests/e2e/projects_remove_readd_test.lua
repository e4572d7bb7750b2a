-- `orket projects remove` against a running server: the project is served no more at once
-- (409), and the audit's project_remove entry names the memberships it dropped, so that
-- "when did carl lose access?" has an answer in the chain (docs/audit.md). The same folder
-- added again is served again at once, as `projects add` says (orket.serve.projects.changed).
local H = require "tests.helpers"
local cjson = require "cjson.safe"

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

-- the audit's entries of an action, as `orket audit export` writes them
local function entries(dir, action)
  local out = {}
  for line in ok(H.orket("audit export", { cwd = dir }), "audit export").stdout:gmatch("[^\n]+") do
    local e = cjson.decode(line)
    if e and e.action == action then out[#out + 1] = e end
  end
  return out
end

describe("orket projects remove and add again on a running server", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("names the dropped memberships in the audit, and says when the project is served", function()
    local dir, notes = H.example("webapp"), H.example("notes")
    ok(H.orket("projects add " .. H.quote(notes) .. " --name notes", { cwd = dir }), "projects add")
    for _, p in ipairs { { "boss", "admin" }, { "alice", "operator" }, { "carl", "viewer" } } do
      ok(H.orket("users add " .. p[1] .. " --role " .. p[2] .. " --password-env PW", { cwd = dir,
        env = { PW = "correct horse battery" } }), "users add")
    end
    ok(H.orket("projects grant notes alice developer", { cwd = dir }), "grant")
    ok(H.orket("projects grant notes carl viewer", { cwd = dir }), "grant")
    local boss = H.api_key(dir, "boss-ci --for boss", "admin")
    local s = H.serve(dir)
    assert.equal(200, (H.api(s, "GET", "/v1/projects/notes/board", boss)))

    local r = ok(H.orket("projects remove notes", { cwd = dir }), "projects remove")
    assert.matches("and its 2 membership(s); served no more (a running server answers its routes 409 until it is "
      .. "restarted or the project added again from this folder)", r.stdout, 1, true)
    local st, doc = H.api(s, "GET", "/v1/projects/notes/board", boss)
    assert.same({ 409, "project_changed" }, { st, doc.error.code })
    local removed = entries(dir, "project_remove")
    assert.equal(1, #removed)
    -- (a subject's "," is written %2C: docs/audit.md)
    assert.equal("members=alice:developer%2Ccarl:viewer project=notes", removed[1].detail)

    r = ok(H.orket("projects add " .. H.quote(notes) .. " --name notes", { cwd = dir }), "projects add again")
    assert.matches("served from the server's next start, or at once by a running server that served it from this "
      .. "folder before it was removed", r.stdout, 1, true)
    -- as said: the running server serves it again at once, with no members
    assert.equal(200, (H.api(s, "GET", "/v1/projects/notes/board", boss)))
    local _, listed = H.api(s, "GET", "/v1/projects", boss)
    for _, p in ipairs(listed.projects) do assert.is_nil(p.changed, p.name) end
    -- a removal that dropped no membership says so
    ok(H.orket("projects remove notes", { cwd = dir }), "projects remove again")
    removed = entries(dir, "project_remove")
    assert.equal("members=none project=notes", removed[2].detail)
    assert.matches("verified", ok(H.orket("audit verify", { cwd = dir }), "audit verify").stdout)
  end)
end)
