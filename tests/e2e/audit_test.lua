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
    assert.matches("audit: 5 entries (1 to 5), 1 signed checkpoint: verified", r.stdout, 1, true)
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
    -- a span past any integer's seconds reaches before 1970: everything (it wrapped round
    -- to an hour ahead, and the export came back empty, exit 0)
    for _, v in ipairs { "106751991167301d", "9223372036854775807h" } do
      r = ok(H.orket("audit export --since " .. v .. " --format jsonl", { cwd = dir }), "export")
      assert.equal(5, select(2, r.stdout:gsub("\n", "")), v)
    end
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
    -- the store's key given to the second host (and the head, which its checkpoints must
    -- follow from): it signs, and both verify
    assert(H.sh(string.format("cp -p '%s/.orket/audit.key' '%s/.orket/audit.pub' '%s/.orket/audit.head' '%s/.orket/'",
      dir, dir, dir, two)))
    ok(H.orket("audit checkpoint", { cwd = two }), "checkpoint with the store's key")
    r = ok(verify(two), "verify")
    assert.matches("verified", r.stdout, 1, true)
  end)

  -- orket serve signs checkpoints in a folder without orket.lua (the defaults); so does the
  -- command, which said "no project in ." there
  it("signs a checkpoint in a project folder without orket.lua, with the defaults", function()
    if backends.name() ~= "sqlite" then
      return pending("SQLite only: a PostgreSQL project's folder has the orket.lua that names its database")
    end
    local dir = H.example("webapp")
    assert.is_nil(io.open(dir .. "/orket.lua"))
    ok(H.orket("keys create ci --role viewer", { cwd = dir }), "a write to sign")
    local r = ok(H.orket("audit checkpoint", { cwd = dir }), "checkpoint")
    assert.matches("checkpoint", r.stdout, 1, true)
    ok(verify(dir), "verify")
  end)

  it("says a retention of one day in the singular", function()
    local dir = project(25)
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. "\naudit = { retention_days = 1 }\n")
    local clock = dir .. "/clock-offset"
    H.write(clock, tostring(40 * 86400))
    local r = ok(H.orket("audit checkpoint", { cwd = dir, env = { ORKET_CLOCK_OFFSET_FILE = clock } }), "checkpoint")
    assert.matches("audit: removed %d+ entr[yies]+ older than 1 day %(signed record %d+%)", r.stdout)
    assert.is_nil(r.stdout:find("1 days", 1, true))
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
    -- a date or time that does not exist is refused, not compared as text (which kept
    -- nothing for a 13th month), and a span reaching before 1970 keeps every entry rather
    -- than failing inside os.date
    for _, v in ipairs { "2026-13-01", "2026-02-29", "2026-11-31", "2026-11-29T24:00:00Z", "2026-11-29T12:60:00Z" } do
      r = H.orket("audit export --since " .. v, { cwd = dir })
      assert.equal(2, r.status, v)
      assert.matches("--since " .. v .. ": give a date that exists", r.stderr, 1, true)
    end
    for _, v in ipairs { "2028-02-29", "2026-11-29T23:59:59Z", "2026-11-29T23:59:59.999Z", "99999999999999d",
      "999999999999999999999d" } do
      r = H.orket("audit export --since " .. v, { cwd = dir })
      -- taken: what follows is the store's (a SQLite project not imported has none yet: 1)
      assert.is_true(r.status == 0 or r.status == 1, v .. ": " .. r.stderr)
      assert.is_nil(r.stderr:find("--since", 1, true), r.stderr)
      assert.is_nil(r.stderr:find("internal error", 1, true), r.stderr)
    end
    r = H.orket("audit", { cwd = dir })
    assert.equal(2, r.status)
  end)
end)

-- A forger with no key, of a backup file (a SQLite store, or a PostgreSQL export): "edit"
-- changes entry 3's actor and nothing else; "strip" changes it too, removes the signed
-- entries, renumbers the rest and recomputes every hash, as anyone who can write the file
-- can (tests/e2e/audit_test.lua's own chain.hash is the algorithm, which is public).
local FORGE = [[
local path, mode, from = arg[1], arg[2], tonumber(arg[3])
local chain = require "orket.audit.chain"
local json = require "cjson"
local function forged(rows)
  if mode == "tail" then
    -- entry `from` of the unsigned tail changed, it and those after rehashed (no key needed)
    local prev
    for _, r in ipairs(rows) do
      if r.seq == from then r.actor = "mallory" end
      if r.seq >= from then r.prev, r.hash = prev, nil; r.hash = chain.hash(r) end
      prev = r.hash
    end
    return rows
  end
  for _, r in ipairs(rows) do if r.seq == 3 then r.actor = "mallory" end end
  if mode == "edit" then return rows end
  local out, prev = {}, chain.ZERO
  for _, r in ipairs(rows) do
    if not r.sig then
      r.seq, r.prev = #out + 1, prev
      r.hash = chain.hash(r)
      prev = r.hash
      out[#out + 1] = r
    end
  end
  return out
end
local f = assert(io.open(path, "rb"))
local magic = f:read(16)
f:close()
if magic == "SQLite format 3\0" then
  local conn = assert(require("orket.c.store").open(path))
  -- the guard dropped while rewriting, and put back as it was (a restore compares the schema)
  local guard = assert(conn:row("SELECT sql FROM sqlite_master WHERE name = 'audit_log_append_only'")).sql
  assert(conn:exec("DROP TRIGGER IF EXISTS audit_log_append_only"))
  local rows = assert(conn:rows("SELECT seq, at, kind, actor, action, card_id AS card, route, detail, prev, hash, sig "
    .. "FROM audit_log ORDER BY seq"))
  assert(conn:exec("DELETE FROM audit_log"))
  for _, r in ipairs(forged(rows)) do
    assert(conn:run("INSERT INTO audit_log (seq, at, kind, actor, action, card_id, route, detail, prev, hash, sig) "
      .. "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", r.seq, r.at, r.kind, r.actor, r.action, r.card, r.route,
      r.detail, r.prev, r.hash, r.sig))
  end
  assert(conn:exec(guard))
  conn:close()
  return
end
-- the export's audit_log lines replaced, its header's count kept true
local kept, rows, slot, cur = {}, {}, nil, nil
for l in io.lines(path) do
  local x = json.decode(l)
  if x.table then cur = x.table end
  if cur == "audit_log" and x.table then
    slot = #kept + 1
    kept[slot] = "slot"
  elseif cur == "audit_log" and x.row then
    local r = {}
    for k, v in pairs(x.row) do if v ~= json.null then r[k == "card_id" and "card" or k] = v end end
    r.seq = math.tointeger(r.seq)
    rows[#rows + 1] = r
  else
    kept[#kept + 1] = l
  end
end
local new = forged(rows)
local out = {}
for i, l in ipairs(kept) do
  if i == slot then
    out[#out + 1] = json.encode { table = "audit_log", rows = #new }
    for _, r in ipairs(new) do
      local row = { seq = r.seq, at = r.at, kind = r.kind, prev = r.prev, hash = r.hash }
      for _, k in ipairs { "actor", "action", "route", "detail", "sig" } do row[k] = r[k] or json.null end
      row.card_id = r.card or json.null
      out[#out + 1] = '{"row":' .. json.encode(row) .. "}"
    end
  else
    out[#out + 1] = l
  end
end
f = assert(io.open(path, "wb"))
f:write(table.concat(out, "\n"), "\n")
f:close()
]]

-- a copy of the backup `from` at `to`, forged (FORGE's mode, and its entry for "tail")
local function forge(from, to, mode, seq)
  assert(H.sh(string.format("cp %s %s", H.quote(from), H.quote(to))))
  local tool = H.tmpdir() .. "/forge.lua"
  H.write(tool, FORGE)
  ok(H.orket(string.format("lua %s %s %s %s", H.quote(tool), H.quote(to), mode, seq or ""), {}), "forge")
end

local function entries(dir)
  local r = ok(H.orket("audit export", { cwd = dir }), "export")
  local out = {}
  for l in r.stdout:gmatch("[^\n]+") do out[#out + 1] = require("cjson").decode(l) end
  return out
end

-- a restore refused: exit 1, nothing changed (the chain, the head), its message matched
local function restore_refused(dir, file, wants, flags)
  local before_head, before = H.read(dir .. "/.orket/audit.head"), #entries(dir)
  for _, check in ipairs { "--check ", "" } do
    local r = H.orket("restore " .. check .. (flags or "") .. H.quote(file), { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    if check == "" then assert.matches("(the store was not changed)", r.stderr, 1, true) end
    for _, w in ipairs(wants) do assert.matches(w, r.stderr, 1, true) end
  end
  assert.equal(before_head, H.read(dir .. "/.orket/audit.head"))
  assert.equal(before, #entries(dir))
  ok(verify(dir), "verify after a refused restore")
end

describe("orket restore and the audit", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("refuses a backup whose audit was rewritten without the key, changed, or signed by another project", function()
    local dir = project(25) -- 27 entries: checkpoints 11 and 22; the head names 22
    local tmp = H.tmpdir()
    local file = tmp .. "/b.backup"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    forge(file, tmp .. "/stripped", "strip")
    restore_refused(dir, tmp .. "/stripped", {
      tmp .. "/stripped: refused: entries 1 to 25 are signed by no checkpoint, and this project signs its audit",
      tmp .. "/stripped: refused: its entry 22 is not checkpoint 22 that this project signed (.orket/audit.head)",
      "restore this one as it is with --accept-unverified-audit", "restore it all the same with --accept-older-audit" })
    -- each refusal carries its code from the vocabulary every command's errors come from,
    -- and says that code's remedy (docs/guide/troubleshooting.md lists it)
    local errors, remedies = require "orket.errors", {}
    for i, code in ipairs { "EAUDITUNVERIFIED", "EAUDITOLDER" } do remedies[i] = assert(errors.remedy(code), code) end
    restore_refused(dir, tmp .. "/stripped", remedies)
    forge(file, tmp .. "/edited", "edit")
    restore_refused(dir, tmp .. "/edited", {
      tmp .. "/edited: refused: entry 3 was changed: its hash does not match its content (write by mallory)" })
    -- one flag is not the other's
    restore_refused(dir, tmp .. "/stripped", { "accepted (--accept-unverified-audit): entries 1 to 25",
      "restore it all the same with --accept-older-audit" }, "--accept-unverified-audit ")
    -- another project's backup: its checkpoints are under its own key
    local other = project(12)
    ok(H.orket("backup " .. H.quote(tmp .. "/other.backup"), { cwd = other }), "other backup")
    local other_pk = H.read(other .. "/.orket/audit.pub"):match("%x+")
    restore_refused(dir, tmp .. "/other.backup", {
      "refused: checkpoint 11 is signed with another key (" .. other_pk .. ") than .orket/audit.pub",
      "refused: it ends at entry 13, before checkpoint 22 that this project signed" })
    -- the genuine file restores
    ok(H.orket("restore " .. H.quote(file), { cwd = dir }), "restore")
    ok(verify(dir), "verify")
  end)

  it("accepts an audit it cannot verify only when told, and records that it was told", function()
    local dir = project(25)
    local tmp = H.tmpdir()
    ok(H.orket("backup " .. H.quote(tmp .. "/b.backup"), { cwd = dir }), "backup")
    forge(tmp .. "/b.backup", tmp .. "/stripped", "strip")
    local r = ok(H.orket("restore --accept-unverified-audit --accept-older-audit " .. H.quote(tmp .. "/stripped"),
      { cwd = dir }), "restore")
    assert.matches("accepted (--accept-older-audit): its entry 22 is not checkpoint 22", r.stderr, 1, true)
    assert.matches("the restore is entry 26, signed by checkpoint 27 (.orket/audit.head)", r.stdout, 1, true)
    local e = entries(dir)
    assert.same({ "restore", "cli: restore " .. tmp .. "/stripped" }, { e[26].action, e[26].route })
    assert.matches("accept=older-audit:unverified-audit", e[26].detail, 1, true)
    assert.matches("checkpoint=0 ", e[26].detail, 1, true)
    -- signed by this project's key now, the operator's word on it in the chain
    r = ok(verify(dir), "verify")
    assert.matches("audit: note: entry 26, cli: restore " .. tmp .. "/stripped, restored a backup accepting its "
      .. "audit as it was (older-audit:unverified-audit)", r.stdout, 1, true)
    assert.matches("27 entries (1 to 27), 1 signed checkpoint: verified", r.stdout, 1, true)
  end)

  it("restores an older backup only with --accept-older-audit, and records the restore in the chain", function()
    local dir = project(5)
    script(dir, [[assert(chain.checkpoint(db, ".", { force = true }))]]) -- 6
    local tmp = H.tmpdir()
    local old = tmp .. "/old.backup"
    ok(H.orket("backup " .. H.quote(old), { cwd = dir }), "backup")
    script(dir, [[
for i = 1, 5 do
  assert(db:tx(function() chain.record(db, { actor = "later" .. i, action = "comment", card = "API-2" }) return true end))
end
assert(chain.checkpoint(db, ".", { force = true }))]]) -- 7 to 11, checkpoint 12
    restore_refused(dir, old, { old .. ": refused: it ends at entry 6, before checkpoint 12 that this project signed "
      .. "(.orket/audit.head): restoring it removes entries 7 to 12, and any after" })
    -- the store's own newest checkpoint is one too, when the head file lags (another server signed it)
    local head = H.read(dir .. "/.orket/audit.head")
    script(dir, [[assert(db:tx(function() chain.record(db, { actor = "x", action = "comment" }) return true end))
local row = assert(chain.checkpoint(db, ".", { force = true })).checkpoint
io.write(row.seq)]])
    H.write(dir .. "/.orket/audit.head", head)
    restore_refused(dir, old, { "refused: it ends at entry 6, before checkpoint 14 that this project signed (the store's newest)" })
    local r = ok(H.orket("restore --accept-older-audit " .. H.quote(old), { cwd = dir }), "restore")
    assert.matches("the restore is entry 7, signed by checkpoint 8 (.orket/audit.head)", r.stdout, 1, true)
    assert.matches("the store's entries up to 14 were replaced by the backup's; entry 7 records it", r.stdout, 1, true)
    local e = entries(dir)
    assert.equal(8, #e)
    assert.same({ "write", "restore", "cli: restore " .. old }, { e[7].kind, e[7].action, e[7].route })
    assert.matches("^local:", e[7].actor)
    -- the backup's last entry is its checkpoint 6
    -- (and counts the store's entries it dropped, 7 to 14)
    assert.equal(string.format("accept=older-audit checkpoint=6 checkpointhash=%s dropped=8 hash=%s last=6 previous=14 "
      .. "previoushash=%s", e[6].hash, e[6].hash, e[7].detail:match("previoushash=(%x+)")), e[7].detail)
    assert.equal("checkpoint", e[8].kind)
    assert.equal(8, require("cjson").decode(H.read(dir .. "/.orket/audit.head")).seq)
    r = ok(verify(dir), "verify")
    assert.matches("audit: 8 entries (1 to 8), 2 signed checkpoints: verified", r.stdout, 1, true)
    -- the journal has it too
    H.write(dir .. "/t.lua", PRELUDE .. [[
local row = db:row("SELECT count(*) AS n FROM events WHERE kind = 'restore'")
io.write(tostring(row.n))
db:close()]])
    assert.equal("1", H.orket("lua t.lua", { cwd = dir }).stdout)
  end)

  -- the pages are copied in one transaction, the restore's entry and checkpoint written in
  -- later ones: a kill between left the backup restored with no record of it, and verify
  -- named removed entries or a replaced chain, never a restore cut short
  for _, point in ipairs { "after_restore_copy", "after_restore_entry" } do
    it("names a restore killed " .. point:gsub("_", " "):gsub("^after restore ", "after its ") .. " in verify, "
      .. "and a restore again records it", function()
      local dir = project(5)
      script(dir, [[assert(chain.checkpoint(db, ".", { force = true }))]]) -- 6
      local tmp = H.tmpdir()
      local old = tmp .. "/old.backup"
      ok(H.orket("backup " .. H.quote(old), { cwd = dir }), "backup")
      script(dir, [[
assert(db:tx(function() chain.record(db, { actor = "later", action = "comment", card = "API-2" }) return true end))
assert(chain.checkpoint(db, ".", { force = true }))]]) -- 7, checkpoint 8
      local r = H.orket("restore --accept-older-audit " .. H.quote(old), { cwd = dir, env = { ORKET_FAULT = point .. ":1" } })
      assert.equal(137, r.status, r.stderr)
      r = verify(dir)
      assert.equal(1, r.status)
      local first = r.stdout:match("^([^\n]*)\n")
      assert.equal("audit: a restore from " .. old .. ", begun at " .. first:match("begun at (%S+),") .. ", did not "
        .. "finish (.orket/restore.pending): the store may hold the backup with no audit entry of the restore, and the "
        .. "problems below may be its doing; run 'orket restore " .. old .. " --accept-older-audit' again, then orket "
        .. "audit verify", first)
      -- a restore refused before the copy leaves the marker as it was
      r = H.orket("restore " .. H.quote(tmp .. "/none.backup"), { cwd = dir })
      assert.equal(1, r.status)
      assert.matches("did not finish", verify(dir).stdout, 1, true)
      ok(H.orket("restore --accept-older-audit " .. H.quote(old), { cwd = dir }), "restore again")
      assert.is_nil(io.open(dir .. "/.orket/restore.pending"))
      r = ok(verify(dir), "verify")
      assert.matches("verified", r.stdout, 1, true)
    end)
  end

  it("restores a current backup as it is: verified, recorded, signed", function()
    local dir = project(25)
    local tmp = H.tmpdir()
    local file = tmp .. "/now.backup"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local r = ok(H.orket("restore --check " .. H.quote(file), { cwd = dir }), "check")
    assert.matches("its audit: 27 entries (1 to 27), newest checkpoint 22, verified under .orket/audit.pub; entries 23 "
      .. "to 27 are chained only, not signed", r.stdout, 1, true)
    assert.equal("", r.stderr)
    r = ok(H.orket("restore " .. H.quote(file), { cwd = dir }), "restore")
    assert.matches("the restore is entry 28, signed by checkpoint 29", r.stdout, 1, true)
    assert.is_nil(r.stdout:find("were replaced", 1, true))
    local e = entries(dir)
    assert.is_nil(e[28].detail:find("accept=", 1, true))
    assert.matches("checkpoint=22 ", e[28].detail, 1, true)
    r = ok(verify(dir), "verify")
    assert.matches("audit: 29 entries (1 to 29), 3 signed checkpoints: verified", r.stdout, 1, true)
    assert.is_nil(r.stdout:find("note:", 1, true))
    -- a project without the key that signed it (a new machine): refused until the key is copied
    local fresh = H.example("webapp")
    r = H.orket("restore " .. H.quote(file), { cwd = fresh })
    assert.equal(1, r.status)
    assert.matches("refused: it has 2 signed entries (the newest signed with key "
      .. H.read(dir .. "/.orket/audit.pub"):match("%x+") .. "), and this project has no .orket/audit.pub", r.stderr, 1, true)
    assert(H.sh(string.format("cp %s/.orket/audit.key %s/.orket/audit.pub %s/.orket/", H.quote(dir), H.quote(dir),
      H.quote(fresh))))
    r = ok(H.orket("restore " .. H.quote(file), { cwd = fresh }), "restore with the key")
    assert.matches("the restore is entry 28, signed by checkpoint 29", r.stdout, 1, true)
    ok(verify(fresh), "verify")
    -- and a project with no audit key restoring a backup none signed gets one from the restore
    local bare, none = H.example("webapp"), tmp .. "/none.backup"
    ok(H.orket("backup " .. H.quote(none), { cwd = bare }), "backup of an empty audit")
    r = ok(H.orket("restore " .. H.quote(none), { cwd = bare }), "restore of an empty audit")
    assert.matches("audit: the backup's audit is empty; the restore is entry 1, signed by checkpoint 2", r.stdout, 1, true)
    assert.truthy(H.read(bare .. "/.orket/audit.pub"))
    ok(verify(bare), "verify")
  end)

  it("has verify name a chain no checkpoint signs while .orket/audit.pub says the project signs", function()
    local dir = project(25)
    -- as a restore by an older orket left a stripped backup: the checkpoints gone, the head forgotten
    os.remove(dir .. "/.orket/audit.head")
    script(dir, [[
unguard()
local rows = assert(db:rows("SELECT seq, at, kind, actor, action, card_id AS card, route, detail FROM audit_log "
  .. "WHERE sig IS NULL ORDER BY seq"))
assert(db:run("DELETE FROM audit_log"))
local prev = chain.ZERO
for i, r in ipairs(rows) do
  r.seq, r.prev = i, prev
  r.hash = chain.hash(r)
  require("orket.store.audit").insert(db, r)
  prev = r.hash
end]])
    -- (older than the key, or as many as orket serve signs at: either reason, as the clock fell)
    refused(dir, "entries 1 to 25 are signed by no checkpoint, though this project signs its audit (.orket/audit.pub): ")
    -- fewer than that, but older than the key, which the first checkpoint made (a checkpoint
    -- asked with nothing due makes no key: orket serve asks after every audited write)
    dir = H.example("webapp")
    script(dir, [[
for i = 1, 5 do
  assert(db:tx(function() chain.record(db, { actor = "k" .. i, action = "comment", card = "API-2" }) return true end))
  assert(chain.checkpoint(db, ".", { every = 16 }))
end
assert(not io.open(".orket/audit.pub") and not io.open(".orket/audit.key"), "a key was made with nothing to sign")
require("orket.c.runtime").sleep(20) -- the key made later than the entries, as a person's checkpoint is
assert(chain.checkpoint(db, ".", { force = true }))]])
    ok(verify(dir), "verify")
    os.remove(dir .. "/.orket/audit.head")
    script(dir, [[unguard(); assert(db:run("DELETE FROM audit_log WHERE seq = 6"))]])
    refused(dir, "entries 1 to 5 are signed by no checkpoint, though this project signs its audit (.orket/audit.pub): "
      .. "entry 1 (")
    -- a store begun after the key was copied in, no head with it: named, however young,
    -- since without a head a cut is not seen; and not signed until told
    local fresh = H.example("webapp")
    H.write(fresh .. "/orket.lua", (H.read(fresh .. "/orket.lua") or "") .. "\naudit = { checkpoint_every = 4 }\n")
    assert(H.sh(string.format("cp %s/.orket/audit.key %s/.orket/audit.pub %s/.orket/", H.quote(dir), H.quote(dir),
      H.quote(fresh))))
    local add = [[for i = 1, 3 do
  assert(db:tx(function() chain.record(db, { actor = "k", action = "comment", card = "API-2" }) return true end))
end]]
    script(fresh, add)
    local out = refused(fresh, ".orket/audit.head is missing, though .orket/audit.pub says this project signs its audit")
    assert.matches("3 entries (1 to 3), 0 signed checkpoints; entries 1 to 3 are not signed yet: 1 problem", out, 1, true)
    script(fresh, add)
    refused(fresh, "entries 1 to 6 are signed by no checkpoint, though this project signs its audit (.orket/audit.pub): "
      .. "orket serve signs one once 4 entries follow the last")
    local r = H.orket("audit checkpoint", { cwd = fresh })
    assert.equal(1, r.status)
    assert.matches("orket audit checkpoint --reset-head signs it as it is", r.stderr, 1, true)
    r = ok(H.orket("audit checkpoint --reset-head", { cwd = fresh }), "checkpoint --reset-head")
    assert.matches("audit: entry 7 records the reset (.orket/audit.head named checkpoint none; the chain ended at "
      .. "entry 6); checkpoint 8 signed", r.stdout, 1, true)
    r = ok(verify(fresh), "verify once signed")
    assert.matches("audit: note: entry 7, cli: audit checkpoint --reset-head, signed the chain as it was (its last "
      .. "entry 6) over .orket/audit.head's checkpoint none", r.stdout, 1, true)
  end)
end)

-- a SQLite backup's file changed by `sql`, run on it as anyone who can write the file can
local function alter(from, to, sql)
  assert(H.sh(string.format("cp %s %s", H.quote(from), H.quote(to))))
  local tool = H.tmpdir() .. "/alter.lua"
  H.write(tool, 'local c = assert(require("orket.c.store").open(arg[1])) assert(c:exec(arg[2])) c:close()')
  ok(H.orket(string.format("lua %s %s %s", H.quote(tool), H.quote(to), H.quote(sql)), {}), "alter")
end

describe("orket restore and the audit: what is restored is what was checked", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("refuses a backup whose unsigned tail is not this store's, and names the entries it cannot check", function()
    local dir = project(12) -- writes 1-10, checkpoint 11, writes 12-13 signed by nothing yet
    local tmp = H.tmpdir()
    local file = tmp .. "/b.backup"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    forge(file, tmp .. "/tail", "tail", 12)
    restore_refused(dir, tmp .. "/tail", { tmp .. "/tail: refused: its entry 12 is not this store's entry 12, and no "
      .. "checkpoint in it signs that entry", "restore this one as it is with --accept-unverified-audit" })
    -- this host signs 12-13 (checkpoint 14): an older backup is accepted when told, a different one is not
    script(dir, [[assert(chain.checkpoint(db, ".", { force = true }))]])
    restore_refused(dir, tmp .. "/tail", { "accepted (--accept-older-audit): it ends at entry 13, before checkpoint 14",
      "refused: its entry 12 is not this store's entry 12" }, "--accept-older-audit ")
    -- a store that does not hold the tail (a new machine, the key copied): restored, and named unverified
    local fresh = H.example("webapp")
    assert(H.sh(string.format("cp %s/.orket/audit.key %s/.orket/audit.pub %s/.orket/", H.quote(dir), H.quote(dir),
      H.quote(fresh))))
    local r = ok(H.orket("restore --check " .. H.quote(file), { cwd = fresh }), "check")
    assert.matches("entries 12 to 13 cannot be verified (no checkpoint signs them and this store does not hold them)",
      r.stdout, 1, true)
    r = ok(H.orket("restore " .. H.quote(file), { cwd = fresh }), "restore")
    assert.matches("entries 12 to 13 cannot be verified", r.stdout, 1, true)
    assert.matches("the restore is entry 14, signed by checkpoint 15", r.stdout, 1, true)
    assert.matches("unverified=12-13", entries(fresh)[14].detail, 1, true)
    r = ok(verify(fresh), "verify")
    assert.matches("audit: note: entry 14, cli: restore " .. file .. ", restored entries 12-13 unverified", r.stdout,
      1, true)
    assert.matches("15 entries (1 to 15), 2 signed checkpoints: verified", r.stdout, 1, true)
  end)

  it("refuses a SQLite backup whose schema is not orket's: a trigger, a view, a table defined otherwise", function()
    if backends.name() ~= "sqlite" then return pending("SQLite only: an export carries rows, not a schema") end
    local dir = project(3)
    local tmp = H.tmpdir()
    local file = tmp .. "/b.backup"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local v = H.orket("lua -e 'io.write(require(\"orket.store\").latest_version)'", {}).stdout
    local cases = {
      { "CREATE TRIGGER zz_hide BEFORE INSERT ON audit_log WHEN NEW.action = 'restore' BEGIN SELECT RAISE(IGNORE); END",
        "trigger zz_hide which orket's schema does not have" },
      { "DROP TABLE audit_log; CREATE TABLE t (x); CREATE VIEW audit_log AS SELECT * FROM t",
        "index audit_log_at is missing" },
      { "ALTER TABLE audit_log ADD COLUMN extra TEXT", "table audit_log is defined otherwise than orket's" },
    }
    for i, c in ipairs(cases) do
      local f = tmp .. "/s" .. i
      alter(file, f, c[1])
      restore_refused(dir, f, { f .. ": its schema is not orket's (version " .. v .. "): " .. c[2] })
    end
    ok(H.orket("restore " .. H.quote(file), { cwd = dir }), "the genuine backup restores")
  end)

  it("refuses an export with a table twice, and signs nothing over a chain that is not the one judged", function()
    local dir = project(12)
    local tmp = H.tmpdir()
    local twice = tmp .. "/twice.jsonl"
    local lines = { '{"format":"orket-pg-backup","version":1}' }
    for _, t in ipairs { "cards", "dependencies", "comments", "events", "audit_log", "audit_log" } do
      lines[#lines + 1] = '{"table":"' .. t .. '","rows":0}'
    end
    lines[#lines + 1] = '{"end":true}'
    H.write(twice, table.concat(lines, "\n") .. "\n")
    restore_refused(dir, twice, { twice .. ": table audit_log appears twice in the export" })
    -- the file judged, then another restored (one that goes on past the judged chain)
    local a, b = tmp .. "/a.backup", tmp .. "/b.backup"
    ok(H.orket("backup " .. H.quote(a), { cwd = dir }), "backup a")
    script(dir, [[for i = 1, 2 do
  assert(db:tx(function() chain.record(db, { actor = "mallory", action = "comment" }) return true end))
end]])
    ok(H.orket("backup " .. H.quote(b), { cwd = dir }), "backup b")
    local head = H.read(dir .. "/.orket/audit.head")
    H.write(dir .. "/swap.lua", PRELUDE .. string.format([[
local r = require "orket.audit.restore"
local v = assert(r.judge(".", %q, db))
assert(require("orket.store.backup").restore(db, %q))
local row, err = r.record(db, ".", v, { actor = "local:t", file = "f", accept = {} })
assert(not row, "recorded")
io.write(err)
db:close()]], a, b))
    local r = ok(H.orket("lua swap.lua", { cwd = dir }), "swap")
    assert.equal("the restore cannot be trusted: what the store now holds is not what was checked (its audit ends "
      .. "at entry 15, not at the entry 13 judged): f changed while it was restored. Nothing was signed; restore "
      .. "again from a copy no one else can write", r.stdout)
    assert.equal(head, H.read(dir .. "/.orket/audit.head"))
    assert.equal(15, #entries(dir))
  end)

  it("fails a restore whose own entry or checkpoint did not land in the store", function()
    local dir = project(12)
    local tmp = H.tmpdir()
    local a = tmp .. "/a.backup"
    ok(H.orket("backup " .. H.quote(a), { cwd = dir }), "backup")
    local head = H.read(dir .. "/.orket/audit.head")
    -- something in the store drops the restore's entry: on SQLite a trigger (which the
    -- schema check names), on PostgreSQL a trigger function (which only the read-back sees)
    local drop = backends.name() == "sqlite" and [[
assert(db:exec("CREATE TRIGGER zz BEFORE INSERT ON audit_log WHEN NEW.action = 'restore' BEGIN SELECT RAISE(IGNORE); END"))]]
      or [[
assert(db:exec("CREATE FUNCTION zz() RETURNS trigger AS $$ BEGIN IF NEW.action = 'restore' THEN RETURN NULL; END IF; "
  .. "RETURN NEW; END $$ LANGUAGE plpgsql"))
assert(db:exec("CREATE TRIGGER zz BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION zz()"))]]
    H.write(dir .. "/drop.lua", PRELUDE .. string.format([[
local r = require "orket.audit.restore"
local v = assert(r.judge(".", %q, db))
assert(require("orket.store.backup").restore(db, %q))
%s
local row, err = r.record(db, ".", v, { actor = "local:t", file = "f", accept = {} })
assert(not row, "recorded")
io.write(err)
db:close()]], a, a, drop))
    local r = ok(H.orket("lua drop.lua", { cwd = dir }), "drop")
    if backends.name() == "sqlite" then
      assert.matches("the restore cannot be trusted: what the store now holds is not what was checked (its schema is "
        .. "not orket's", r.stdout, 1, true)
    else
      assert.equal("the restore's audit entry 14 is not in the store (something in it dropped the write): run orket "
        .. "restore again; verify with orket audit verify", r.stdout)
    end
    assert.equal(head, H.read(dir .. "/.orket/audit.head"))
    assert.equal(13, #entries(dir))
  end)

  it("stops reading a chain whose seqs do not rise (a seq stored as text comes back on every page)", function()
    local dir = H.example("webapp")
    H.write(dir .. "/t.lua", [[
local row = { seq = "3", at = "2026-01-01T00:00:00.000Z", kind = "write", prev = string.rep("0", 64), hash = "x" }
local rep = require("orket.audit.verify").chain({ page = function() return { row } end, get = function() end })
io.write(rep.entries, " ", table.concat(rep.problems, "|"))]])
    local r = ok(H.orket("lua t.lua", { cwd = dir }), "chain")
    assert.equal("1 ", r.stdout:sub(1, 2))
    assert.matches("the audit's entries are not in seq order after entry 3 (a seq is not a number)", r.stdout, 1, true)
  end)

  it("lets verify pass after a backup signed with a lost key is restored as it is", function()
    local dir = project(12) -- checkpoint 11 under this project's key
    local tmp = H.tmpdir()
    local file = tmp .. "/b.backup"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    local old_pk = H.read(dir .. "/.orket/audit.pub"):match("%x+")
    local fresh = H.example("webapp") -- a new machine, the key lost
    restore_refused(fresh, file, { "and this project has no .orket/audit.pub" })
    ok(H.orket("restore --accept-unverified-audit " .. H.quote(file), { cwd = fresh }), "restore")
    local r = ok(verify(fresh), "verify")
    assert.matches("audit: note: accepted by entry 14 (cli: restore " .. file .. "), signed by checkpoint 15 under "
      .. ".orket/audit.pub: checkpoint 11 is signed with another key (" .. old_pk .. ")", r.stdout, 1, true)
    assert.matches("15 entries (1 to 15), 1 signed checkpoint: verified", r.stdout, 1, true)
    -- the new key goes on signing; the chain's hashes are still checked before the restore
    script(fresh, [[assert(db:tx(function() chain.record(db, { actor = "k", action = "comment" }) return true end))
assert(chain.checkpoint(db, ".", { force = true }).checkpoint)]])
    ok(verify(fresh), "verify after")
    script(fresh, [[unguard(); assert(db:run("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"))]])
    refused(fresh, "entry 3 was changed")
  end)
end)
