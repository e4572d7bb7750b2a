-- The audit's anchors outside the chain (docs/audit.md), on the backend the suite runs on
-- (SQLite, or PostgreSQL under tests/with_pg.lua): a checkpoint is not signed over a chain
-- that no longer holds what .orket/audit.head names (a store rolled back, its tail cut), nor
-- while the head is gone; a lost key is not replaced unasked; the files' absence is a
-- problem to verify, not a pass; a restore that drops the store's unsigned entries asks for
-- it and counts them; the append-only triggers are checked; an export is checked offline
-- against a public key and head kept elsewhere; and a rehashed chain is named once, where
-- it parts from its checkpoints.
local H = require "tests.helpers"
local backends = require "tests.backends"
local cjson = require "cjson"

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

-- runs a Lua script in the project with its store open as `db` (and the chain as `chain`);
-- `unguard()` lets the script change rows as an attacker with the database would, and
-- `guard()` puts the trigger back as it was (so that only what the test means is found)
local PRELUDE = [[
local db = assert(require("orket.project").open_store(".", false))
local chain = require "orket.audit.chain"
local guard_sql = db.backend ~= "pg" and db:row("SELECT sql FROM sqlite_master WHERE name = 'audit_log_append_only'").sql
local function unguard()
  if db.backend == "pg" then assert(db:exec("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
  else assert(db:exec("DROP TRIGGER IF EXISTS audit_log_append_only")) end
end
local function guard()
  if db.backend == "pg" then assert(db:exec("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
  else assert(db:exec(guard_sql)) end
end
local function write(actor)
  assert(db:tx(function() chain.record(db, { actor = actor, action = "comment", card = "API-2" }) return true end))
end
]]
local function script(dir, body)
  H.write(dir .. "/t.lua", PRELUDE .. body .. "\ndb:close()\n")
  return ok(H.orket("lua t.lua", { cwd = dir }), "script")
end

-- a project whose audit holds `n` writes, a checkpoint after every 10 entries (1-10 writes,
-- 11 a checkpoint, 12-21 writes, 22 a checkpoint, ...)
local function project(n)
  local dir = H.example("webapp")
  script(dir, string.format([[
for i = 1, %d do
  write("key" .. i)
  assert(chain.checkpoint(db, ".", { every = 10 }))
end
]], n))
  return dir
end

local function verify(dir, args)
  return H.orket("audit verify" .. (args or ""), { cwd = dir })
end

local function refused(dir, want, args)
  local r = verify(dir, args)
  assert.equal(1, r.status, r.stdout)
  assert.matches(want, r.stdout, 1, true)
  return r.stdout
end

local function entries(dir)
  local out = {}
  for l in ok(H.orket("audit export", { cwd = dir }), "export").stdout:gmatch("[^\n]+") do
    out[#out + 1] = cjson.decode(l)
  end
  return out
end

local function head_of(dir)
  local h = cjson.decode(H.read(dir .. "/.orket/audit.head"))
  h.seq = math.tointeger(h.seq)
  return h
end

describe("the audit's head", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("is not signed over by a checkpoint once the chain no longer holds it, until a reset recorded in it", function()
    local dir = project(25) -- checkpoints 11 and 22; the head names 22
    local head = head_of(dir)
    assert.equal(22, head.seq)
    -- the store put back to an older copy: entries 20 on gone, then ordinary use
    script(dir, [[unguard(); assert(db:run("DELETE FROM audit_log WHERE seq >= 20")); guard()
for i = 1, 12 do write("later" .. i) end]])
    -- orket serve's checkpoint (chain.checkpoint, as after each audited write): refused
    H.write(dir .. "/cp.lua", PRELUDE .. [[
local res, err, code = chain.checkpoint(db, ".", { every = 10 })
io.write(tostring(res), "|", tostring(code), "|", tostring(err))
db:close()]])
    local r = ok(H.orket("lua cp.lua", { cwd = dir }), "serve's checkpoint")
    assert.matches("^nil|ETAMPERED|entry 22 is not the checkpoint %.orket/audit%.head signed: the chain up to it was "
      .. "replaced", r.stdout)
    -- and the command's: exit 1, said, nothing signed, the head as it was
    r = H.orket("audit checkpoint", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("(an older copy of the store, or a rewrite); nothing was signed", r.stderr, 1, true)
    assert.matches("orket audit checkpoint --reset-head signs it as it is", r.stderr, 1, true)
    assert.equal(22, head_of(dir).seq)
    assert.equal(31, #entries(dir))
    -- verify goes on naming the cut, and where the chain parts from what was signed
    refused(dir, "entry 22 is not the checkpoint .orket/audit.head signed: the chain up to it was replaced; and no "
      .. "checkpoint that verifies signs entries 12 to 22: the chain parts from the one that was signed after entry 11")
    -- told: an entry records the head it signs over, then a checkpoint, and the head moves
    r = ok(H.orket("audit checkpoint --reset-head", { cwd = dir }), "reset")
    assert.matches("audit: entry 32 records the reset (.orket/audit.head named checkpoint 22; the chain ended at "
      .. "entry 31); checkpoint 33 signed", r.stdout, 1, true)
    local e = entries(dir)
    assert.same({ "audit_reset_head", "cli: audit checkpoint --reset-head" }, { e[32].action, e[32].route })
    assert.equal(string.format("head=22 headhash=%s key=%s last=31", head.hash,
      H.read(dir .. "/.orket/audit.pub"):match("%x+")), e[32].detail)
    assert.equal(33, head_of(dir).seq)
    r = ok(verify(dir), "verify")
    assert.matches("audit: note: entry 32, cli: audit checkpoint --reset-head, signed the chain as it was (its last "
      .. "entry 31) over .orket/audit.head's checkpoint 22 (hash " .. head.hash .. ")", r.stdout, 1, true)
    assert.matches("33 entries (1 to 33), 2 signed checkpoints: verified", r.stdout, 1, true)
  end)

  it("refuses orket serve's checkpoint over a rolled-back store, in its log, and the revocation stays seen", function()
    local dir = H.example("webapp")
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. "\naudit = { checkpoint_every = 2 }\n")
    local k = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    for i = 1, 4 do assert.equal(200, (H.api(s, "POST", "/v1/cards/API-2/comments", k, { body = "c" .. i }))) end
    assert.equal(0, s.stop())
    local head = head_of(dir)
    -- the tail cut as a rollback leaves it
    script(dir, string.format([[unguard(); assert(db:run("DELETE FROM audit_log WHERE seq > %d")); guard()]],
      head.seq - 2))
    s = H.serve(dir)
    -- said at the start, before any checkpoint comes due
    H.wait_for(function() return s.log():find('"message":"audit: the next checkpoint will be refused: the audit ends '
      .. "at entry", 1, true) end, "the start's word of the audit's head")
    for i = 1, 4 do assert.equal(200, (H.api(s, "POST", "/v1/cards/API-2/comments", k, { body = "d" .. i }))) end
    assert.equal(0, s.stop())
    -- (the log's JSON may escape the head file's slash)
    -- (cut, or, once the chain has grown past it, replaced: whichever the first checkpoint due met)
    assert.truthy(s.log():find("audit checkpoint: the audit ends at entry %d+, but checkpoint " .. head.seq
      .. " was signed") or s.log():find("audit checkpoint: entry " .. head.seq .. " is not the checkpoint "
      .. ".orket/audit.head signed", 1, true), s.log())
    assert.equal(head.seq, head_of(dir).seq)
    refused(dir, "entry " .. head.seq .. " is not the checkpoint .orket/audit.head signed")
  end)

  it("is a problem when it is missing while the project signs, and no checkpoint follows without it", function()
    local dir = project(25)
    -- the newest checkpoint cut, and the head removed: a tail check there would see it
    script(dir, [[unguard(); assert(db:run("DELETE FROM audit_log WHERE seq >= 22")); guard()]])
    os.remove(dir .. "/.orket/audit.head")
    refused(dir, ".orket/audit.head is missing, though .orket/audit.pub says this project signs its audit: without "
      .. "it a cut of the chain's tail, checkpoints and all, is not seen")
    local r = H.orket("audit checkpoint", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches(".orket/audit.head is missing, though .orket/audit.pub says this project signs its audit", r.stderr,
      1, true)
    assert.is_nil(io.open(dir .. "/.orket/audit.head"))
    -- the whole audit wiped: no longer "empty"
    script(dir, [[unguard(); assert(db:run("DELETE FROM audit_log")); guard()]])
    local out = refused(dir, ".orket/audit.head is missing")
    assert.is_nil(out:find("audit: empty", 1, true), out)
  end)

  it("checks against a head and public key kept elsewhere, and an export offline", function()
    local dir = project(25)
    local away = H.tmpdir() -- the regulator's copies
    assert(H.sh(string.format("cp %s/.orket/audit.pub %s/.orket/audit.head %s/", H.quote(dir), H.quote(dir),
      H.quote(away))))
    local anchors = string.format(" --pub %s --head %s", H.quote(away .. "/audit.pub"), H.quote(away .. "/audit.head"))
    ok(verify(dir, anchors), "verify against the copies")
    -- the machine's own files deleted and the tail cut: the copies still see it
    script(dir, [[unguard(); assert(db:run("DELETE FROM audit_log WHERE seq >= 20")); guard()]])
    os.remove(dir .. "/.orket/audit.head")
    refused(dir, "the audit ends at entry 19, but checkpoint 22 was signed (" .. away .. "/audit.head)", anchors)
    -- an export, checked with no store at all (from a folder that is no project)
    local good = project(25)
    local x = away .. "/x.jsonl"
    H.write(x, ok(H.orket("audit export", { cwd = good }), "export").stdout)
    local pub, head = good .. "/.orket/audit.pub", good .. "/.orket/audit.head"
    local function offline(file, extra)
      return H.orket(string.format("audit verify --file %s --pub %s%s", H.quote(file), H.quote(pub), extra or ""),
        { cwd = away })
    end
    local r = ok(offline(x, " --head " .. H.quote(head)), "offline")
    assert.matches("27 entries (1 to 27), 2 signed checkpoints; entries 23 to 27 are not signed yet: verified",
      r.stdout, 1, true)
    r = ok(offline(x), "offline without a head")
    assert.matches("audit: note: no --head FILE: a cut of the export's tail", r.stdout, 1, true)
    -- an entry changed in the export, and the export cut before the head's checkpoint
    local lines = {}
    for l in H.read(x):gmatch("[^\n]+") do lines[#lines + 1] = l end
    lines[5] = lines[5]:gsub('"actor":"key5"', '"actor":"mallory"')
    H.write(away .. "/edited.jsonl", table.concat(lines, "\n") .. "\n")
    r = offline(away .. "/edited.jsonl", " --head " .. H.quote(head))
    assert.equal(1, r.status)
    assert.matches("entry 5 was changed: its hash does not match its content (write by mallory)", r.stdout, 1, true)
    H.write(away .. "/cut.jsonl", table.concat(lines, "\n", 1, 20) .. "\n")
    r = offline(away .. "/cut.jsonl", " --head " .. H.quote(head))
    assert.equal(1, r.status)
    assert.matches("the audit ends at entry 20, but checkpoint 22 was signed (" .. head .. ")", r.stdout, 1, true)
    -- under another key: every checkpoint named
    r = H.orket(string.format("audit verify --file %s --pub %s", H.quote(x), H.quote(dir .. "/.orket/audit.pub")),
      { cwd = away })
    assert.equal(1, r.status)
    assert.matches("checkpoint 11 is signed with another key", r.stdout, 1, true)
    -- the public key is not taken from the export itself
    r = H.orket("audit verify --file " .. H.quote(x), { cwd = away })
    assert.equal(2, r.status)
    assert.matches("--file needs --pub FILE", r.stderr, 1, true)
    r = H.orket("audit checkpoint --pub " .. H.quote(pub), { cwd = good })
    assert.equal(2, r.status)
    -- the signature's message, as docs/audit.md gives it: the domain, a zero byte, the hash's 32 bytes
    H.write(away .. "/sig.lua", [[
local ach, sodium_ok = require "orket.c.auditchain", 0
local pk = io.open(arg[1]):read("l")
for l in io.lines(arg[2]) do
  local e = require("cjson").decode(l)
  if e.sig then
    local msg = "orket audit checkpoint v1\0" .. (e.hash:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
    assert(#msg == 58)
    if ach.verify(pk, e.hash, e.sig) then sodium_ok = sodium_ok + 1 end
  end
end
io.write(sodium_ok)]])
    assert.equal("2", ok(H.orket(string.format("lua %s %s %s", H.quote(away .. "/sig.lua"), H.quote(pub), H.quote(x)),
      { cwd = away }), "signatures").stdout)
  end)
end)

describe("the audit's key", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("is not made anew over a chain once the project made one, unless told, and the reset is recorded", function()
    local dir = project(25)
    local old_pk = H.read(dir .. "/.orket/audit.pub"):match("%x+")
    -- the key's files gone and the chain rewritten without its checkpoints (no key needed)
    for _, f in ipairs { "audit.key", "audit.pub", "audit.head" } do os.remove(dir .. "/.orket/" .. f) end
    script(dir, [[
unguard()
local rows = assert(db:rows("SELECT seq, at, kind, actor, action, card_id AS card, route, detail FROM audit_log "
  .. "WHERE sig IS NULL ORDER BY seq"))
assert(db:run("DELETE FROM audit_log"))
local prev = chain.ZERO
for i, r in ipairs(rows) do
  r.seq, r.prev = i, prev
  r.actor = i == 3 and "mallory" or r.actor
  r.hash = chain.hash(r)
  require("orket.store.audit").insert(db, r)
  prev = r.hash
end
guard()]])
    -- the journal remembers the key: verify says what is missing
    refused(dir, ".orket/audit.pub is missing, though the journal records that key " .. old_pk .. " was made for this "
      .. "chain")
    local r = H.orket("audit checkpoint", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("audit.key is missing, but the journal records that key " .. old_pk .. " was made for this chain",
      r.stderr, 1, true)
    assert.matches("orket audit checkpoint --new-key makes one", r.stderr, 1, true)
    assert.is_nil(io.open(dir .. "/.orket/audit.key"))
    -- told: a new key, the entry that says so, and verify passes naming it
    r = ok(H.orket("audit checkpoint --new-key", { cwd = dir }), "new key")
    assert.matches("audit: entry 26 records the reset (.orket/audit.head named checkpoint none; the chain ended at "
      .. "entry 25), with a new key", r.stdout, 1, true)
    local e = entries(dir)
    assert.same({ "audit_new_key", "accept=unverified-audit head=none key=none last=25" },
      { e[26].action, e[26].detail })
    r = ok(verify(dir), "verify")
    assert.matches("audit: note: entry 26, cli: audit checkpoint --new-key, signed the chain as it was (its last "
      .. "entry 25) over .orket/audit.head's checkpoint none, with a new key (the one before: none)", r.stdout, 1, true)
    -- the audit.pub kept without its key: refused too
    dir = project(12)
    os.remove(dir .. "/.orket/audit.key")
    os.remove(dir .. "/.orket/audit.head")
    script(dir, [[unguard(); assert(db:run("DELETE FROM audit_log")); guard(); write("x")]])
    r = H.orket("audit checkpoint --reset-head", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("audit.key is missing, but " , r.stderr, 1, true)
    assert.matches("/audit.pub names key ", r.stderr, 1, true)
  end)
end)

describe("a restore that drops the store's unsigned entries", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("asks for it, names them, and counts them in its entry", function()
    local dir = project(12)
    ok(H.orket("audit checkpoint", { cwd = dir }), "checkpoint") -- 14: a backup with nothing unsigned
    local file = H.tmpdir() .. "/pre.db"
    ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
    ok(H.orket("secrets set forge_token", { cwd = dir, stdin = "evil-token\n" }), "secret")
    for _, check in ipairs { "--check ", "" } do
      local r = H.orket("restore " .. check .. H.quote(file), { cwd = dir })
      assert.equal(1, r.status, r.stdout)
      assert.matches(file .. ": refused: the store's entries 15 to 15 (secret_set) are not in it: restoring it "
        .. "removes it from the audit, the restore's entry counting it (dropped=1); a secret's change among them stays "
        .. "in force (secrets live outside the store), its record gone", r.stderr, 1, true)
      assert.matches("restore it all the same with --accept-older-audit", r.stderr, 1, true)
    end
    assert.equal(15, #entries(dir))
    local r = ok(H.orket("restore --accept-older-audit " .. H.quote(file), { cwd = dir }), "restore")
    assert.matches("accepted (--accept-older-audit): the store's entries 15 to 15 (secret_set)", r.stderr, 1, true)
    assert.matches("entry 15 records it, and the 1 entries dropped (dropped=1)", r.stdout, 1, true)
    local e = entries(dir)
    assert.equal("restore", e[15].action)
    assert.matches("accept=older-audit ", e[15].detail, 1, true)
    assert.matches(" dropped=1 ", e[15].detail, 1, true)
    ok(verify(dir), "verify")
  end)
end)

describe("the store's append-only triggers", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("on PostgreSQL, are each checked to fire on every write, as the schema defines them", function()
    if backends.name() ~= "pg" then return pending("PostgreSQL's triggers: replica mode and WHEN clauses") end
    local dir = project(5)
    ok(verify(dir), "verify")
    script(dir, [[
assert(db:exec("ALTER TABLE events ENABLE REPLICA TRIGGER events_append_only_truncate"))
assert(db:exec("DROP TRIGGER events_append_only_delete ON events"))
assert(db:exec("CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events FOR EACH ROW WHEN (false) "
  .. "EXECUTE FUNCTION events_append_only()"))]])
    local out = refused(dir, "the store's trigger events_append_only_truncate (on events) fires for replicas only")
    assert.matches("the store's trigger events_append_only_delete (on events) is defined otherwise than orket's", out,
      1, true)
  end)

  it("are checked by verify, each missing one named", function()
    local dir = project(5)
    ok(verify(dir), "verify")
    if backends.name() == "pg" then
      script(dir, [[
assert(db:exec("DROP TRIGGER events_append_only_update ON events"))
assert(db:exec("DROP TRIGGER events_append_only_delete ON events"))
assert(db:exec("ALTER TABLE events DISABLE TRIGGER events_append_only_truncate"))
assert(db:exec("CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"))]])
    else
      script(dir, [[
assert(db:exec("DROP TRIGGER events_append_only_update"))
assert(db:exec("DROP TRIGGER events_append_only_delete"))
assert(db:exec("DROP TRIGGER audit_log_append_only"))
assert(db:exec("CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log BEGIN SELECT 1; END"))]])
    end
    local out = refused(dir, "the store's trigger events_append_only_update (on events) is missing: the journal's rows "
      .. "(GET /v1/audit, a card's history) can be changed or reattributed, which no hash shows")
    assert.matches("the store's trigger events_append_only_delete (on events) is missing", out, 1, true)
    if backends.name() == "pg" then
      assert.matches("the store's trigger events_append_only_truncate (on events) is disabled", out, 1, true)
      assert.matches("the store's trigger audit_log_append_only (on audit_log) runs a function that no longer refuses "
        .. "the change", out, 1, true)
    else
      assert.matches("the store's trigger audit_log_append_only (on audit_log) is defined otherwise than orket's", out,
        1, true)
    end
  end)
end)

describe("a chain rehashed after an edit", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("is named once, where it parts from its checkpoints, not as every later checkpoint's own change", function()
    local dir = project(40) -- checkpoints 11, 22, 33, 44
    -- entry 15 removed, the rest renumbered and rehashed, the signatures kept
    script(dir, [[
unguard()
local rows = assert(db:rows("SELECT seq, at, kind, actor, action, card_id AS card, route, detail, sig FROM audit_log "
  .. "ORDER BY seq"))
assert(db:run("DELETE FROM audit_log"))
local prev, n = chain.ZERO, 0
for _, r in ipairs(rows) do
  if r.seq ~= 15 then
    n = n + 1
    r.seq, r.prev = n, prev
    r.hash = chain.hash(r)
    require("orket.store.audit").insert(db, r)
    prev = r.hash
  end
end
guard()]])
    local out = refused(dir, "checkpoint 21 does not verify under the audit's public key: an entry from 12 to 21 was "
      .. "changed, removed or reordered after it was signed; checkpoints 32, 43 after it fail with it, signed over the "
      .. "chain as it was: the chain parts from its checkpoints after entry 11")
    assert.is_nil(out:find("an entry from 22 to", 1, true), out)
    assert.is_nil(out:find("checkpoint 32 does not verify", 1, true), out)
    -- the head (44) is not this chain's entry 44 either: the same place named
    assert.matches("the chain parts from the one that was signed after entry 11", out, 1, true)
    assert.matches("; entries 12 to 43 are vouched for by no checkpoint that verifies: 2 problems", out, 1, true)
  end)
end)
