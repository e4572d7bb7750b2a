-- The audit chain holds what a card write decided, and orket audit verify matches the
-- journal's api_write rows against their chain entries (reports20/auditor.md 1): a move's
-- from and to, a comment's text as its hash; a journal row reattributed, removed or made up
-- is named, while a chain written before (entries without detail, rows naming no entry)
-- still verifies.
local H = require "tests.helpers"

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

local PRELUDE = [[
local db = assert(require("orket.project").open_store(".", false))
local function unguard()
  if db.backend == "pg" then
    assert(db:exec("ALTER TABLE events DISABLE TRIGGER USER"))
  else
    for _, t in ipairs(db:rows("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'")) do
      assert(db:exec("DROP TRIGGER " .. t.name))
    end
  end
end
]]
local function script(dir, body)
  H.write(dir .. "/t.lua", PRELUDE .. body .. "\ndb:close()\n")
  return ok(H.orket("lua t.lua", { cwd = dir }), "script")
end

local function export(dir)
  local out = {}
  for l in ok(H.orket("audit export", { cwd = dir }), "export").stdout:gmatch("[^\n]+") do
    out[#out + 1] = require("cjson").decode(l)
  end
  return out
end

local function copy(dir)
  local two = H.tmpdir()
  assert(H.sh(string.format("cp -a '%s/.' '%s/'", dir, two)))
  return two
end

describe("the audit chain and the journal", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("chains a card write's decision, and names a journal row reattributed, removed or made up", function()
    local dir = H.example("webapp")
    local k, id = H.api_key(dir, "alice", "operator")
    local s = H.serve(dir)
    local st, body = H.api(s, "POST", "/v1/cards/API-2/comments", k, { body = "use UTC timestamps" })
    assert.equal(200, st, body)
    st, body = H.api(s, "POST", "/v1/cards/API-2/cancel", k, { reason = "no longer needed" })
    assert.equal(200, st, body)
    assert.equal(0, s.stop())
    local r = ok(H.orket("audit verify", { cwd = dir }), "verify")
    assert.matches("verified", r.stdout, 1, true)
    local crypto = require "orket.c.crypto"
    local comment, cancel
    for _, e in ipairs(export(dir)) do
      if e.action == "comment" then comment = e elseif e.action == "cancel" then cancel = e end
    end
    assert.equal("body=b2:" .. crypto.hash("use UTC timestamps", 16) .. " journal=api_write", comment.detail)
    assert.equal("journal=api_write reason=b2:" .. crypto.hash("no longer needed", 16), cancel.detail)
    assert.not_matches("UTC timestamps", comment.detail, 1, true)
    -- the comment's journal row reattributed: named, the chain's entry the record
    local two = copy(dir)
    script(two, string.format([[unguard()
assert(db:run("UPDATE events SET actor = 'user:carol' WHERE kind = 'api_write' AND card_id = 'API-2' "
  .. "AND CAST(data AS TEXT) LIKE '%%\"comment\"%%'"))]]))
    r = H.orket("audit verify", { cwd = two })
    assert.equal(1, r.status, r.stdout)
    assert.matches("(api_write comment by user:carol) disagrees with audit entry " .. math.tointeger(comment.seq)
      .. " on its actor: the journal says user:carol, the chain " .. id, r.stdout, 1, true)
    -- removed
    two = copy(dir)
    script(two, [[unguard()
assert(db:run("DELETE FROM events WHERE kind = 'api_write' AND CAST(data AS TEXT) LIKE '%\"cancel\"%'"))]])
    r = H.orket("audit verify", { cwd = two })
    assert.equal(1, r.status, r.stdout)
    assert.matches("audit entry " .. math.tointeger(cancel.seq) .. " (cancel by " .. id .. ", card API-2) was written with a journal "
      .. "row (api_write), which the journal no longer holds: it was removed", r.stdout, 1, true)
    -- made up, after the rows that name entries
    two = copy(dir)
    script(two, [[unguard()
db:tx(function() db:event { kind = "api_write", card = "API-2", actor = "user:carol",
  data = { action = "move", route = "/v1/cards/{id}/move" } } return true end)]])
    r = H.orket("audit verify", { cwd = two })
    assert.equal(1, r.status, r.stdout)
    assert.matches("(api_write move by user:carol) names no audit entry, though it was written after journal row",
      r.stdout, 1, true)
    -- made up naming an entry past the chain's end, and one naming the comment's entry again
    two = copy(dir)
    script(two, string.format([[unguard()
db:tx(function()
  db:event { kind = "api_write", card = "API-2", actor = "user:carol", data = { action = "move", chain = 999999 } }
  db:event { kind = "api_write", card = "API-2", actor = "user:dave", data = { action = "move", chain = %d } }
  return true end)]], math.tointeger(comment.seq)))
    r = H.orket("audit verify", { cwd = two })
    assert.equal(1, r.status, r.stdout)
    assert.matches("(api_write move by user:carol) names audit entry 999999, which the chain does not hold",
      r.stdout, 1, true)
    assert.matches("(api_write move by user:dave) names audit entry " .. math.tointeger(comment.seq)
      .. ", as journal row", r.stdout, 1, true)
    -- the comment's own row still matches its entry: no disagreement named for it
    assert.not_matches("(api_write comment by " .. id .. ") disagrees", r.stdout, 1, true)
  end)

  it("chains a command's card write with its text's hash, and no journal mark", function()
    local dir = H.example("webapp")
    ok(H.orket('comment API-2 "ship it friday"', { cwd = dir }), "comment")
    ok(H.orket('cancel API-2 "dropped"', { cwd = dir }), "cancel")
    local crypto = require "orket.c.crypto"
    local got = {}
    for _, e in ipairs(export(dir)) do got[e.action] = e.detail end
    assert.equal("body=b2:" .. crypto.hash("ship it friday", 16), got.comment)
    assert.equal("reason=b2:" .. crypto.hash("dropped", 16), got.cancel)
    ok(H.orket("audit verify", { cwd = dir }), "verify")
  end)

  it("chains a move's from and to", function()
    local dir = H.example("webapp")
    local k = H.api_key(dir, "alice", "operator")
    local s = H.serve(dir)
    local st, body = H.api(s, "POST", "/v1/cards/API-2/move", k, { to = "blocked", reason = "dependency",
      note = "waits on the vendor" })
    assert.equal(200, st, body)
    assert.equal(0, s.stop())
    ok(H.orket("audit verify", { cwd = dir }), "verify")
    local move
    for _, e in ipairs(export(dir)) do if e.action == "move" then move = e end end
    assert.matches("^from=%l[%l_]* journal=api_write note=b2:%x+ reason=dependency result=moved to=blocked$", move.detail)
  end)
end)
