-- orket audit verify's words about what it cannot or can tell (reports20/auditor.md 2, 3, 5,
-- 6): a plain tail cut is not called a rewrite; an export line with a field verify does not
-- hash, or a key given twice, is refused; an entry on two lines is named as a repeat and the
-- rest still checked; a key under --pub FILE is named as FILE.
local H = require "tests.helpers"

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

local PRELUDE = [[
local db = assert(require("orket.project").open_store(".", false))
local chain = require "orket.audit.chain"
local function unguard()
  if db.backend == "pg" then assert(db:exec("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
  else assert(db:exec("DROP TRIGGER IF EXISTS audit_log_append_only")) end
end
]]
local function script(dir, body)
  H.write(dir .. "/t.lua", PRELUDE .. body .. "\ndb:close()\n")
  return ok(H.orket("lua t.lua", { cwd = dir }), "script")
end

-- n writes, a checkpoint after every 10 entries (11, 22, ...); the head names the newest
local function project(n)
  local dir = H.example("webapp")
  script(dir, string.format([[
for i = 1, %d do
  assert(db:tx(function() chain.record(db, { actor = "key" .. i, action = "comment", card = "API-2", route = "/v1/cards/{id}/comments" }) return true end))
  assert(chain.checkpoint(db, ".", { every = 10 }))
end
]], n))
  return dir
end

local function lines_of(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

describe("orket audit verify's words", function()
  after_each(function() H.cleanup() end)

  it("calls entries left after a cut tail unvouched, not rewritten", function()
    local dir = project(23) -- checkpoints 11 and 22, then writes 23 to 25; head: 22
    script(dir, [[unguard(); assert(db:run("DELETE FROM audit_log WHERE seq >= 22"))]])
    local r = H.orket("audit verify", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("entries 22 to 22 were removed; and no checkpoint that verifies signs entries 12 to 21: the chain "
      .. "parts from the one that was signed after entry 11. The checkpoints that signed them are gone: they may be "
      .. "original or rewritten, which cannot be told", r.stdout, 1, true)
    assert.not_matches("rewritten from there", r.stdout, 1, true)
    assert.matches("; entries 12 to 21 are vouched for by no checkpoint that verifies: 2 problems", r.stdout, 1, true)
    assert.not_matches("not signed yet", r.stdout, 1, true)
    -- one entry left after the newest checkpoint that verifies: named as one
    dir = project(11) -- checkpoint 11 (the head), then a write 12 and checkpoint 13 (the head)
    script(dir, [[
assert(db:tx(function() chain.record(db, { actor = "k", action = "comment", card = "API-2", route = "cli" }) return true end))
assert(chain.checkpoint(db, ".", { force = true }))]])
    script(dir, [[unguard(); assert(db:run("DELETE FROM audit_log WHERE seq >= 13"))]])
    r = H.orket("audit verify", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("signs entry 12: the chain parts from the one that was signed after entry 11. The checkpoints that "
      .. "signed it are gone: it may be original", r.stdout, 1, true)
    assert.matches("; entry 12 is vouched for by no checkpoint that verifies", r.stdout, 1, true)
  end)

  it("refuses an export line with a field it does not hash, or a key given twice, and names a repeat", function()
    local dir = project(25)
    local away = H.tmpdir()
    local x = away .. "/export.jsonl"
    H.write(x, ok(H.orket("audit export", { cwd = dir }), "export").stdout)
    local pub, head = dir .. "/.orket/audit.pub", dir .. "/.orket/audit.head"
    local function offline(file)
      return H.orket(string.format("audit verify --file %s --pub %s --head %s", H.quote(file), H.quote(pub),
        H.quote(head)), { cwd = away })
    end
    ok(offline(x), "the export as written")
    local lines = lines_of(H.read(x))
    local function with(n, line, also)
      local t = {}
      for i, l in ipairs(lines) do
        t[#t + 1] = i == n and line or l
        if i == n and also then t[#t + 1] = also end
      end
      local f = away .. "/changed.jsonl"
      H.write(f, table.concat(t, "\n") .. "\n")
      return offline(f)
    end
    -- a forged actor put before the true one: cjson reads the last, another reader the first
    local r = with(8, (lines[8]:gsub("^{", '{"actor":"carol",')))
    assert.equal(1, r.status, r.stdout)
    assert.matches("changed.jsonl:8: entry 8: not the bytes orket audit export writes for its entry (a key given "
      .. "twice", r.stdout, 1, true)
    -- a field verify does not hash
    r = with(8, (lines[8]:gsub('"kind":"write"', '"kind":"write","approved_by":"CFO"')))
    assert.equal(1, r.status, r.stdout)
    assert.matches("changed.jsonl:8: entry 8: a field orket audit export does not write (approved_by)", r.stdout, 1,
      true)
    -- a line repeated: named as such, and the entries after it still checked (no removal)
    r = with(8, lines[8], lines[8])
    assert.equal(1, r.status, r.stdout)
    assert.matches("changed.jsonl:9: entry 8 appears twice (first on line 8): it was changed; line 8 is checked",
      r.stdout, 1, true)
    assert.not_matches("seq is not a number", r.stdout, 1, true)
    assert.not_matches("were removed", r.stdout, 1, true)
    assert.matches("27 entries (1 to 27), 2 signed checkpoints", r.stdout, 1, true)
    assert.matches(": 1 problem\n", r.stdout, 1, true)
  end)

  it("names the key --pub FILE gave, not .orket/audit.pub", function()
    local dir = project(12)
    local pub = H.tmpdir() .. "/other.pub"
    script(dir, string.format([[
local ach = require "orket.c.auditchain"
local f = assert(io.open(%q, "w")); f:write(ach.public_key(ach.new_seed()), "\n"); f:close()
]], pub))
    local r = H.orket("audit verify --pub " .. H.quote(pub), { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("checkpoint 11 is signed with another key %(%x+%) than " .. pub:gsub("%p", "%%%0") .. " %(", r.stdout)
    assert.not_matches("than .orket/audit.pub", r.stdout, 1, true)
  end)
end)
