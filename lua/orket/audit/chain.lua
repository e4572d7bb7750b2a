-- orket.audit.chain: the audit as an append-only hash chain (docs/audit.md). Each entry's
-- hash is BLAKE2b over the entry before's hash and the entry's fields, in a canonical
-- encoding (orket.c.auditchain); checkpoints and retention records are entries too, and
-- carry an Ed25519 signature of their own hash, under the project's key (orket.audit.key).
-- The rows live in the store (orket.store.audit); entries are appended inside the
-- transaction of the write they record, checkpoints after it commits.
local ach = require "orket.c.auditchain"
local ops = require "orket.store.audit"
local clock_mod = require "orket.clock"
local keyfile = require "orket.audit.key"

local M = {}

M.ZERO = string.rep("0", 64) -- the first entry's prev
M.DEFAULT_CHECKPOINT_EVERY = require("orket.settings.audit").DEFAULT_CHECKPOINT_EVERY

-- the fields hashed, in order; seq is hashed as its decimal text
M.FIELDS = { "seq", "at", "kind", "actor", "action", "card", "route", "detail" }

--- hash(row) -> hex: the entry's hash over row.prev and its fields
function M.hash(row)
  local f = {}
  for i, k in ipairs(M.FIELDS) do
    local v = row[k]
    if k == "seq" then v = tostring(math.tointeger(tonumber(v))) elseif v ~= nil then v = tostring(v) end
    f[i] = v
  end
  return ach.hash(row.prev, f, #M.FIELDS)
end

local function now_iso(clock)
  local t = (clock or clock_mod.system()):now()
  local s = math.floor(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%03dZ", math.floor((t - s) * 1000))
end
M.now_iso = now_iso

-- appends row (its seq, prev and hash filled in here) after the head; in a transaction
local function append(db, row, clock)
  local head = ops.head(db)
  row.seq = head and math.tointeger(tonumber(head.seq)) + 1 or 1
  row.prev = head and head.hash or M.ZERO
  row.at = row.at or now_iso(clock)
  row.hash = M.hash(row)
  return row
end

--- holds(src, last, mark) -> nil | "cut" | "replaced" | "missing": whether a chain that
--- ends at entry last (nil: empty) holds the entry mark {seq=, hash=} names, a checkpoint
--- signed before: "cut" when it ends before it, "replaced" when its entry at that seq is
--- another, "missing" when it has none there (a gap, named as such on its own). src.get(seq)
--- -> row | nil reads the chain (orket.audit.verify's sources).
function M.holds(src, last, mark)
  if not last or last < mark.seq then return "cut" end
  local r = src.get(mark.seq)
  if not r then return "missing" end
  if r.hash ~= mark.hash then return "replaced" end
  return nil
end

-- a subject's value as one word: bytes other than letters, digits and . _ - : @ as %XX
local function word(v)
  return (tostring(v):gsub("[^%w._:@-]", function(c) return string.format("%%%02X", c:byte()) end))
end

--- subject(t) -> text | nil: whom or what a write was about ({person=, project=, role=,
--- key=, keyid=, members=}: never a secret) as the entry's detail, "name=value" words in name
--- order, so that the entry's hash covers it. An entry written before subjects were
--- recorded has none, and its hash is what it was.
function M.subject(t)
  if not t or next(t) == nil then return nil end
  local names = {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names)
  local out = {}
  for i, k in ipairs(names) do
    assert(k:match("^%l+$"), "audit subject: a field's name is lowercase letters")
    out[i] = k .. "=" .. word(t[k])
  end
  return table.concat(out, " ")
end

-- the mark of a write's result that changed nothing (M.unchanged)
local UNCHANGED = { __name = "orket.audit.unchanged" }

--- unchanged(result) -> result, marked as a write that changed nothing: the server's and
--- the commands' audited writes (orket.serve.admin's in_tx, orket.serve.localuse's audited)
--- record no entry for it. A mark, not a field: a result's own field (an import's count of
--- unchanged cards) never drops an entry
function M.unchanged(result) return setmetatable(result, UNCHANGED) end

--- is_unchanged(result) -> whether result was marked by unchanged
function M.is_unchanged(result) return type(result) == "table" and getmetatable(result) == UNCHANGED end

-- the free-text fields of a card write whose hash, never the text, a decision carries
local TEXTS = { "body", "note", "reason", "text", "title" }

--- decision(d, body) -> table | nil: what a card write decided, for record's e.decision:
--- d's fields (from=, to=, result=, approval=, tool=, scope=: never a secret) and, of body
--- (the write's request or options), each free text (TEXTS) as its BLAKE2b hash alone:
--- the chain then says what was decided and which words were given, without holding the
--- words (the card's history shows them, and a hash matches them)
function M.decision(d, body)
  local out = {}
  for k, v in pairs(d or {}) do out[k] = v end
  for _, k in ipairs(TEXTS) do
    local v = type(body) == "table" and body[k]
    if type(v) == "string" and out[k] == nil then out[k] = "b2:" .. require("orket.c.crypto").hash(v, 16) end -- lazy: card writes only
  end
  return next(out) and out or nil
end

--- card_decision(action, body, r, from) -> table | nil: what a card write decided, for its
--- chained entry (decision): a move's from (the card's status before), to, reason (a code)
--- and result (a merge conflict sends the card back), a decision's request (approval=,
--- tool=) or money budget (scope=); body's free text as its hash. body: the API's request
--- body, or a command's words under the same names; r: the write's result. orket serve's
--- writes and the commands' (orket cancel, comment, retry, answer) say it alike.
function M.card_decision(action, body, r, from)
  local d = {}
  if action == "move" then
    d.from, d.to = from, type(body) == "table" and type(body.to) == "string" and body.to:sub(1, 64) or nil
    d.result = type(r) == "table" and type(r.code) == "string" and r.code or nil
    d.reason = type(body) == "table" and type(body.reason) == "string" and body.reason:sub(1, 64) or nil
  elseif (action == "approve" or action == "deny") and type(r) == "table" then
    d.approval = math.tointeger(r.id)
    d.tool = type(r.tool) == "string" and r.tool:sub(1, 128) or nil
    d.scope = type(r.scope) == "string" and r.scope:sub(1, 64) or nil
  end
  return M.decision(d, body)
end

--- record(db, e): the write e {actor=, action=, card=, route=, subject=, decision=,
--- journal=} appended to the chain, its subject and decision (M.decision) as the entry's
--- detail (M.subject: their fields' names do not overlap). journal: the kind of the journal
--- row written with it ("api_write"), which then carries the entry's seq (chain=):
--- orket.audit.journal checks the two against each other. Call it inside the transaction of
--- the write it records (serve's writes do, with their api_write event).
function M.record(db, e)
  local words = e.subject
  if e.decision or e.journal then
    words = {}
    for k, v in pairs(e.subject or {}) do words[k] = v end
    for k, v in pairs(e.decision or {}) do
      assert(words[k] == nil, "audit decision: a field's name is a subject's")
      words[k] = v
    end
    words.journal = e.journal
  end
  local row = append(db, { kind = "write", actor = e.actor, action = e.action, card = e.card, route = e.route,
    detail = M.subject(words) })
  ops.insert(db, row)
  return row
end

-- a signed entry (checkpoint or retention) appended in the caller's transaction
local function signed(db, signer, kind, detail, clock)
  local row = append(db, { kind = kind, detail = detail }, clock)
  row.sig = ach.sign(signer.seed, row.hash)
  ops.insert(db, row)
  return row
end

-- the key the chain is signed with so far (its newest signed entry's) | nil: this host
-- signs with it, or not at all
local function signed_key(db)
  local seq = ops.last_signed(db)
  return seq > 0 and M.detail(ops.get(db, seq) or {}).key or nil, seq
end

-- what orket audit checkpoint is told to say when a checkpoint is refused over the head
local RESET = "; nothing was signed (orket audit verify names it). If this chain is the one to keep (the head file "
  .. "lost; a copy of the store put back on purpose, which orket restore records itself), orket audit checkpoint "
  .. "--reset-head signs it as it is, and records that in the chain (docs/audit.md)"

-- The checkpoint this host signed last (.orket/audit.head) against the chain, asked before
-- another is signed on it -> nil | why not: a chain rolled back to an older copy, its tail
-- cut or replaced, or the head gone while the chain was signed, would be signed as it is,
-- and the new head would hide from verify what it saw (holds, as verify asks it; a head's
-- checkpoint that retention removed, "missing", is not this)
local function head_problem(db, dir, last)
  local head, herr = keyfile.read_head(dir)
  if herr then return herr end
  local pk = keyfile.public_key(dir)
  if not head then
    local signed = ops.last_signed(db)
    if not pk and signed == 0 then return nil end -- nothing signed here yet: the first checkpoint
    return string.format(".orket/audit.head is missing, though %s: without it a cut of the chain's tail is not seen",
      pk and ".orket/audit.pub says this project signs its audit"
        or string.format("the chain holds signed entries (the newest, %d)", signed))
  end
  if pk and not ach.verify(pk, head.hash, head.sig) then
    return ".orket/audit.head does not verify under .orket/audit.pub: it was changed"
  end
  local held = M.holds({ get = function(seq) return ops.get(db, seq) end }, last, head)
  if held == "cut" then
    return string.format("the audit ends at entry %d, but checkpoint %d was signed (.orket/audit.head): the store "
      .. "holds an older copy of the chain, or its tail was cut", last, head.seq)
  elseif held == "replaced" then
    return string.format("entry %d is not the checkpoint .orket/audit.head signed: the chain up to it was replaced "
      .. "(an older copy of the store, or a rewrite)", head.seq)
  end
end

--- head_check(db, dir) -> nil | why: whether the next checkpoint would be refused over
--- .orket/audit.head (a chain rolled back, cut or replaced, a head gone while the project
--- signs): orket serve says it at its start, not only once a checkpoint comes due
function M.head_check(db, dir)
  local head = ops.head(db)
  return head_problem(db, dir, head and math.tointeger(tonumber(head.seq)) or 0)
end

-- the key's options for a checkpoint's opts (orket.audit.key's signer)
local function key_opts(db, opts)
  return { new_key = opts.any_key or opts.new_key, rotate = opts.new_key, made_before = function()
    local e = ops.key_event(db)
    return e and string.format("the journal records that key %s was made for this chain (event %d, %s)",
      tostring(e.key), e.id, tostring(e.at))
  end }
end

--- checkpoint(db, dir, opts) -> {checkpoint=row|nil, removed=n|nil} | nil, msg, CODE.
--- Run after the writes commit, never inside their transaction. Appends a signed
--- checkpoint when opts.force, or when opts.every (16) entries or more follow the last
--- signed one; with opts.retention_days, first removes the entries older than that, whole,
--- and appends a signed record of the removal. The newest checkpoint goes to .orket/audit.head
--- (opts.replace_head: over a newer one, after a restore). Nothing is signed (ETAMPERED)
--- while the chain does not hold the checkpoint .orket/audit.head names, or the head is
--- gone though the project signs (head_problem), unless opts.replace_head (a restore, a
--- reanchor: they record why). opts.any_key: signed with this host's key even when the
--- chain's newest checkpoint names another (a restore that accepted a backup's audit signed
--- so: orket.audit.restore), and a key made though one was before; opts.new_key: the key
--- replaced with a new one (reanchor). A key made is recorded in the journal (audit_key).
function M.checkpoint(db, dir, opts)
  opts = opts or {}
  local every = opts.every or M.DEFAULT_CHECKPOINT_EVERY
  local made -- a key this checkpoint made (its files written before the commit)
  local res, err, code = db:tx(function()
    made = nil
    local out = {}
    local head = ops.head(db)
    if not head then return out end -- nothing to sign: no key is made yet
    local signed_by, signed_seq = signed_key(db)
    local cutoff, through
    if opts.retention_days then
      cutoff = now_iso(clock_mod.new { offset = -opts.retention_days * clock_mod.DAY,
        offset_file = os.getenv("ORKET_CLOCK_OFFSET_FILE") })
      -- never the head itself: the chain goes on from it
      through = ops.older_than(db, cutoff, math.tointeger(tonumber(head.seq)))
    end
    local since = math.tointeger(tonumber(head.seq)) - signed_seq
    -- the key is made only with something to sign: audit.pub then dates the first
    -- checkpoint, which signs every entry before it (orket.audit.verify.unsigned)
    if not through and not (since > 0 and (opts.force or since >= every)) then return out end
    local kopts = key_opts(db, opts)
    local by = not kopts.new_key and signed_by or nil
    local ok, kerr, kcode = keyfile.can_sign(dir, by, kopts)
    if not ok then return nil, kerr, kcode end
    local hp = not opts.replace_head and head_problem(db, dir, math.tointeger(tonumber(head.seq)))
    if hp then return nil, hp .. RESET, "ETAMPERED" end
    local signer, serr, scode = keyfile.signer(dir, by, kopts)
    if not signer then return nil, serr, scode end
    if signer.made then
      made = not opts.new_key
      db:event { kind = "audit_key", data = { key = signer.pk } }
    end
    if through then
      local last = ops.get(db, through)
      local n = ops.delete_through(db, through)
      out.removed = n
      out.retention = signed(db, signer, "retention", string.format("key=%s through=%d hash=%s removed=%d before=%s",
        signer.pk, through, last.hash, n, cutoff), opts.clock)
      head = out.retention
    end
    since = math.tointeger(tonumber(head.seq)) - (out.retention and out.retention.seq or signed_seq)
    if since > 0 and (opts.force or since >= every) then
      out.checkpoint = signed(db, signer, "checkpoint", "key=" .. signer.pk, opts.clock)
    end
    return out
  end)
  if not res then
    -- a first key whose checkpoint did not commit is taken back: its audit.pub without a head
    -- made every later checkpoint refuse the chain (head_problem) until --reset-head
    if made then keyfile.unmake(dir) end
    return nil, err, code
  end
  local newest = res.checkpoint or res.retention
  if newest then
    local ok, herr, hcode = keyfile.write_head(dir, newest, opts.replace_head)
    if not ok then return nil, herr, hcode end
  end
  return res
end

--- reanchor(db, dir, o) -> {entry=, checkpoint=} | nil, msg, CODE: orket audit checkpoint
--- --reset-head (o.new_key: --new-key). The chain signed as it is, though it does not hold
--- the checkpoint .orket/audit.head names, or the head is gone (with o.new_key: the key is
--- lost, or is to be replaced). First an entry records it (action audit_reset_head or
--- audit_new_key, actor o.actor), its subject the head it
--- replaces (head, headhash; head=none), the chain's last entry before (last) and the key
--- before (key; key=none); --new-key's says accept=unverified-audit: its checkpoint, under
--- the new key, vouches for the signatures before it (orket.audit.verify's anchors). Then a
--- checkpoint is signed and written to .orket/audit.head over the one before.
function M.reanchor(db, dir, o)
  local kopts = key_opts(db, { new_key = o.new_key })
  local ok, err, code = keyfile.can_sign(dir, not o.new_key and db:read(function() return signed_key(db) end) or nil,
    kopts)
  if not ok then return nil, err, code end
  local head = keyfile.read_head(dir) -- (unreadable: named as none, as it cannot be trusted)
  local old = keyfile.public_key(dir)
  local row, rerr, rcode = db:tx(function()
    local last = ops.head(db)
    local subject = { head = head and head.seq or "none", headhash = head and head.hash, key = old or "none",
      last = last and math.tointeger(tonumber(last.seq)) or 0, accept = o.new_key and "unverified-audit" or nil }
    return M.record(db, { actor = o.actor, action = o.new_key and "audit_new_key" or "audit_reset_head",
      route = "cli: audit checkpoint " .. (o.new_key and "--new-key" or "--reset-head"), subject = subject })
  end)
  if not row then return nil, rerr, rcode end
  local res, cerr, ccode = M.checkpoint(db, dir, { force = true, replace_head = true, new_key = o.new_key })
  if not res then return nil, cerr, ccode end
  return { entry = row, checkpoint = res.checkpoint }
end

--- detail(row) -> table of the key=value words of a signed entry's detail
function M.detail(row)
  local t = {}
  for k, v in tostring(row.detail or ""):gmatch("(%w+)=(%S+)") do t[k] = v end
  return t
end

return M
