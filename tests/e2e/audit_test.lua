-- orket audit end to end, on the backend the suite runs on (SQLite, or PostgreSQL under
-- tests/with_pg.lua): orket serve's writes land in the hash chain naming their key and are
-- signed when the server stops; then each way of tampering with the rows (a changed entry,
-- a chain rewritten without the key, a removed entry, two swapped, the start removed, the
-- tail cut past a checkpoint) is named by `orket audit verify`, and retention's removal,
-- signed, verifies.
local H = require "tests.helpers"
local backends = require "tests.backends"

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

-- runs a Lua script in the project with its store open as `db` (and the chain as `chain`);
-- `unguard()` lets the script change rows as an attacker with the database would
local PRELUDE = [[
local db = assert(require("orket.project").open_store(".", false))
local chain = require "orket.audit.chain"
local function unguard()
  if db.backend == "pg" then assert(db:exec("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
  else assert(db:exec("DROP TRIGGER IF EXISTS audit_log_append_only")) end
end
]]
local function script(dir, body, env)
  H.write(dir .. "/t.lua", PRELUDE .. body .. "\ndb:close()\n")
  return ok(H.orket("lua t.lua", { cwd = dir, env = env }), "script")
end

-- a project whose audit holds `n` writes, a checkpoint after every 10 entries (so 1-10 are
-- writes, 11 a checkpoint, 12-21 writes, 22 a checkpoint, ...)
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

local function verify(dir, env)
  return H.orket("audit verify", { cwd = dir, env = env })
end

local function refused(dir, want)
  local r = verify(dir)
  assert.equal(1, r.status, r.stdout)
  assert.matches(want, r.stdout, 1, true)
  return r.stdout
end

describe("orket audit", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("chains orket serve's writes under their key, signs them at the stop and exports them", function()
    local dir = H.example("webapp")
    local k, id = H.api_key(dir, "alice", "operator")
    local s = H.serve(dir)
    for i = 1, 3 do
      local st = H.api(s, "POST", "/v1/cards/API-2/comments", k, { body = "note " .. i })
      assert.equal(200, st)
    end
    assert.equal(0, s.stop())
    local r = ok(verify(dir), "verify")
    -- the key's creation by the local operator (orket keys create), the three comments and a checkpoint
    assert.matches("audit: 5 entries (1 to 5), 1 signed checkpoints: verified", r.stdout, 1, true)
    r = ok(H.orket("audit export --since 1d --format jsonl", { cwd = dir }), "export")
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = require("cjson").decode(l) end
    assert.equal(5, #lines)
    assert.same({ "write", "key_create", "cli" }, { lines[1].kind, lines[1].action, lines[1].route })
    assert.matches("^local:", lines[1].actor)
    assert.same({ "write", id, "comment", "API-2", "/v1/cards/{id}/comments" },
      { lines[2].kind, lines[2].actor, lines[2].action, lines[2].card, lines[2].route })
    assert.equal("checkpoint", lines[5].kind)
    assert.equal(lines[4].hash, lines[5].prev)
    -- --since in the future: nothing
    r = ok(H.orket("audit export --since 2999-01-01", { cwd = dir }), "export")
    assert.equal("", r.stdout)
    -- the signing key: 0600, 32 bytes, in no row of the store and in no log
    local st = require("luv").fs_stat(dir .. "/.orket/audit.key")
    assert.equal(tonumber("600", 8), st.mode & tonumber("777", 8))
    local seed = H.read(dir .. "/.orket/audit.key")
    assert.equal(32, #seed)
    local hex = (seed:gsub(".", function(c) return string.format("%02x", c:byte()) end))
    assert.is_nil(r.stdout:find(hex, 1, true))
    assert.is_nil(s.log():find(hex, 1, true))
    -- the rows cannot be changed through the store
    H.write(dir .. "/t.lua", PRELUDE .. [[
local okk, err = pcall(function() return assert(db:run("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")) end)
io.write(okk and "changed" or tostring(err))
db:close()]])
    r = H.orket("lua t.lua", { cwd = dir })
    assert.matches("append-only", r.stdout .. r.stderr, 1, true)
  end)

  it("names a changed entry, and a chain rewritten without the key at its checkpoint", function()
    local dir = project(25)
    ok(verify(dir), "verify")
    script(dir, [[unguard(); assert(db:run("UPDATE audit_log SET actor = 'mallory' WHERE seq = 5"))]])
    refused(dir, "entry 5 was changed: its hash does not match its content (write by mallory)")
    -- the attacker recomputes every hash after it: the links hold, checkpoint 11's signature does not
    script(dir, [[
local rows = assert(db:rows("SELECT seq, at, kind, actor, action, card_id AS card, route, detail, prev, hash FROM audit_log ORDER BY seq"))
local prev = chain.ZERO
for _, r in ipairs(rows) do
  r.prev = prev
  r.hash = chain.hash(r)
  assert(db:run("UPDATE audit_log SET prev = ?, hash = ? WHERE seq = ?", r.prev, r.hash, r.seq))
  prev = r.hash
end]])
    local out = refused(dir, "checkpoint 11 does not verify under the audit's public key: an entry from 1 to 11 was changed")
    assert.is_nil(out:find("entry 5 was changed", 1, true))
  end)

  it("names a removed entry, two swapped, and a start removed with no signed record", function()
    local dir = project(25)
    script(dir, [[unguard(); assert(db:run("DELETE FROM audit_log WHERE seq = 7"))]])
    refused(dir, "entries 7 to 7 are missing: removed from the audit")
    dir = project(25)
    script(dir, [[
unguard()
local a = db:row("SELECT actor FROM audit_log WHERE seq = 3").actor
local b = db:row("SELECT actor FROM audit_log WHERE seq = 4").actor
assert(db:run("UPDATE audit_log SET actor = ? WHERE seq = 3", b))
assert(db:run("UPDATE audit_log SET actor = ? WHERE seq = 4", a))]])
    local out = refused(dir, "entry 3 was changed")
    assert.matches("entry 4 was changed", out, 1, true)
    dir = project(25)
    script(dir, [[unguard(); assert(db:run("DELETE FROM audit_log WHERE seq <= 3"))]])
    refused(dir, "entries 1 to 3 are missing, with no signed retention record of their removal")
  end)

  it("names a tail cut past a checkpoint, signatures and all", function()
    local dir = project(25)
    -- 25 writes: checkpoints at 11 and 22; the head file names 22
    script(dir, [[unguard(); assert(db:run("DELETE FROM audit_log WHERE seq >= 20"))]])
    refused(dir, "the audit ends at entry 19, but checkpoint 22 was signed (.orket/audit.head): entries 20 to 22 were removed")
    -- a changed head file is seen too: another seq, or another hash (its signature fails)
    local head = H.read(dir .. "/.orket/audit.head")
    H.write(dir .. "/.orket/audit.head", (head:gsub('"seq":22', '"seq":11')))
    refused(dir, "entry 11 is not the checkpoint .orket/audit.head signed")
    local h = head:match('"hash":"(%x+)"')
    H.write(dir .. "/.orket/audit.head", (head:gsub(h, string.rep("0", 64))))
    refused(dir, ".orket/audit.head does not verify")
  end)

  it("has a second server of the store sign with the store's key or not at all, and names another key", function()
    local dir = project(25)
    local pk = H.read(dir .. "/.orket/audit.pub"):match("%x+")
    -- a second host: the same project and store, its own .orket/ without the audit's key
    local two = H.tmpdir()
    local cst, cout = H.sh(string.format("cp -a '%s/.' '%s/' && rm -f '%s/.orket/audit.key' '%s/.orket/audit.pub' "
      .. "'%s/.orket/audit.head'", dir, two, two, two, two))
    assert(cst == 0, cout)
    H.write(two .. "/orket.lua", (H.read(two .. "/orket.lua") or "") .. "\naudit = { checkpoint_every = 10 }\n")
    script(two, [[assert(db:tx(function() chain.record(db, { actor = "k", action = "comment", card = "API-2" }) return true end))]])
    local r = H.orket("audit checkpoint", { cwd = two })
    assert.equal(1, r.status)
    assert.matches("the audit in the store is signed with key " .. pk, r.stderr, 1, true)
    assert.matches("this host has none; a new one is not made", r.stderr, 1, true)
    assert.is_nil(require("luv").fs_stat(two .. "/.orket/audit.key"))
    r = verify(two)
    assert.equal(1, r.status)
    assert.matches("but the store has signed checkpoints: copy .orket/audit.pub", r.stderr, 1, true)
    -- one made apart (or before this check): refused too, and verify names it as another key
    script(two, [[
local ach = require "orket.c.auditchain"
local seed = ach.new_seed()
local f = assert(io.open(".orket/audit.key", "wb")); f:write(seed); f:close()
assert(require("luv").fs_chmod(".orket/audit.key", 384))
f = assert(io.open(".orket/audit.pub", "w")); f:write(ach.public_key(seed), "\n"); f:close()
]])
    r = H.orket("audit checkpoint", { cwd = two })
    assert.equal(1, r.status)
    assert.matches("this host's is ", r.stderr, 1, true)
    refused(two, "checkpoint 11 is signed with another key (" .. pk .. ") than .orket/audit.pub")
    -- the store's key given to the second host: it signs, and both verify
    assert(H.sh(string.format("cp -p '%s/.orket/audit.key' '%s/.orket/audit.pub' '%s/.orket/'", dir, dir, two)))
    ok(H.orket("audit checkpoint", { cwd = two }), "checkpoint with the store's key")
    r = ok(verify(two), "verify")
    assert.matches("verified", r.stdout, 1, true)
  end)

  it("removes entries past the retention whole, with a signed record verify accepts", function()
    local dir = project(25)
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. "\naudit = { retention_days = 30 }\n")
    local clock = dir .. "/clock-offset"
    H.write(clock, tostring(40 * 86400)) -- forty days on
    local env = { ORKET_CLOCK_OFFSET_FILE = clock }
    local r = ok(H.orket("audit checkpoint", { cwd = dir, env = env }), "checkpoint")
    -- 25 writes and two checkpoints: every entry but the newest (the chain goes on from
    -- it) is older than 30 days
    assert.matches("audit: removed 26 entries older than 30 days (signed record 28)", r.stdout, 1, true)
    r = ok(verify(dir, env), "verify")
    assert.matches("audit: 2 entries (27 to 28)", r.stdout, 1, true)
    assert.matches("verified", r.stdout, 1, true)
    r = ok(H.orket("audit export", { cwd = dir }), "export")
    local last = require("cjson").decode(r.stdout:match("[^\n]+\n$"))
    assert.equal("retention", last.kind)
    assert.matches("through=26 ", last.detail, 1, true)
    -- the record of the removal is needed: without it the start is missing
    script(dir, [[unguard(); assert(db:run("DELETE FROM audit_log WHERE seq = 28"))]])
    refused(dir, "entries 1 to 26 are missing, with no signed retention record")
  end)

  it("checks its settings and arguments", function()
    local dir = H.example("webapp", { import = false })
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. "\naudit = { retention_days = 0 }\n")
    local r = H.orket("validate", { cwd = dir })
    assert.matches("audit.retention_days: must be a whole number from 1 to 36500 (got 0)", r.stdout .. r.stderr, 1, true)
    r = H.orket("audit export --format csv", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("the only format is jsonl", r.stderr, 1, true)
    r = H.orket("audit export --since yesterday", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("--since yesterday", r.stderr, 1, true)
    r = H.orket("audit", { cwd = dir })
    assert.equal(2, r.status)
  end)
end)
