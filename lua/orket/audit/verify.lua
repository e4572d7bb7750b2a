-- orket.audit.verify: reads a whole audit chain in order and names every entry changed,
-- removed or reordered (docs/audit.md): an entry whose hash is not its content's, a seq
-- missing, an entry whose prev is not the hash before it, a signed entry whose signature
-- does not verify under the project's public key, a start removed without a signed
-- retention record, and a tail cut past the newest checkpoint (which .orket/audit.head,
-- outside the store, names). The chain is a store's (verify) or a backup's (chain, with the
-- backup's rows: orket.store.backup's audit_source), checked the same way.
local ach = require "orket.c.auditchain"
local ops = require "orket.store.audit"
local chain = require "orket.audit.chain"

local M = {}

local PAGE = 1000

local function int(v) return math.tointeger(tonumber(v)) end

--- store_source(db) -> the store's chain as chain() reads it
function M.store_source(db)
  return {
    page = function(after, limit) return db:read(function() return ops.page(db, after, limit) end) end,
    get = function(seq) return db:read(function() return ops.get(db, seq) end) end,
  }
end

--- holds(src, last, mark): orket.audit.chain's, the one test of whether a chain holds a
--- checkpoint signed before (the tail here, a backup's age in orket.audit.restore)
M.holds = chain.holds

-- A signed entry r (checkpoint or retention) whose content hashes to h, checked under pk:
-- counted in rep when it vouches for the entries from `from` to it, else its problem named.
-- Without pk (no audit.pub here) its signature is not checked, only counted as unchecked.
local function signed_entry(rep, problem, r, h, pk, from)
  local seq0 = int(r.seq)
  -- a signature that fails is set apart: a restore that accepted the backup's audit as it
  -- was, signed under pk after, vouches for it (anchor, in chain())
  local function sig_problem(fails, fmt, ...)
    rep.sig_problems[#rep.sig_problems + 1] = { seq = seq0, from = from, fails = fails, text = string.format(fmt, ...) }
  end
  local seq = int(r.seq)
  local d = chain.detail(r)
  rep.sig_key = d.key
  if not pk then
    rep.unchecked = rep.unchecked + 1
    return d
  end
  local other = d.key ~= pk and r.sig and type(d.key) == "string" and #d.key == 64 and d.key:match("^%x+$")
  if other and ach.verify(d.key, h, r.sig) then
    -- whole and signed, but not under the key this host trusts: another server's key,
    -- or a forger's; either way its entries are not vouched for
    sig_problem(false, "%s %d is signed with another key (%s) than %s (%s): entries %d to %d are not "
      .. "verified. If another server of this store signed it, give every server the same .orket/audit.key "
      .. "and audit.pub (docs/audit.md); if not, someone signed it in the key's stead", r.kind, seq, d.key,
      rep.pub_file, pk, from, seq)
    return nil
  elseif not r.sig or not ach.verify(pk, h, r.sig) or d.key ~= pk then
    sig_problem(true, "%s %d does not verify under the audit's public key: an entry from %d to %d was changed, removed "
      .. "or reordered after it was signed", r.kind, seq, from, seq)
    return nil
  end
  rep.signed = rep.signed + 1
  rep.last_signed, rep.last_signed_hash = seq, r.hash
  local a = rep.anchor_pending
  if a and r.kind == "checkpoint" then
    -- this host's key signs the restore that accepted the signatures before it: those
    -- become the operator's word (notes), and the anchor is the trust from here on
    local kept = {}
    for _, p in ipairs(rep.sig_problems) do
      if p.seq < a.seq then a.vouched[#a.vouched + 1] = p.text else kept[#kept + 1] = p end
    end
    rep.sig_problems, rep.anchor_pending, a.by = kept, nil, seq
    if #a.vouched > 0 then rep.anchors[#rep.anchors + 1] = a end
  end
  return d
end

-- the start: entry 1, or a signed record of the removal of everything before it
local function check_start(problem, first, retention)
  local f = int(first.seq)
  if f == 1 then
    if first.prev ~= chain.ZERO then problem("entry 1 was changed: it does not start the chain") end
    return
  end
  local rr = retention[f - 1]
  if not rr then
    problem("entries 1 to %d are missing, with no signed retention record of their removal", f - 1)
  elseif rr.hash ~= first.prev then
    problem("entry %d does not follow the entries retention record %d says were removed", f, rr.seq)
  end
end

-- what is left unvouched, said after a head the chain does not hold: the entries after the
-- newest checkpoint that verifies. The checkpoints that signed them are gone, so whether
-- they are original or rewritten cannot be told, and is not claimed either way; the
-- summary says them unvouched too (rep.unvouched), not "not signed yet"
local function parted(rep, last)
  local from = rep.last_signed + 1
  if not last or last < from then return "" end
  rep.unvouched = rep.unvouched or from
  local which = from == last and string.format("entry %d", from) or string.format("entries %d to %d", from, last)
  local parts = rep.last_signed > 0 and string.format("the chain parts from the one that was signed after entry %d",
    rep.last_signed) or "none that verifies is left"
  return string.format("; and no checkpoint that verifies signs %s: %s. The checkpoints that signed %s are gone: "
    .. "%s be original or rewritten, which cannot be told", which, parts, from == last and "it" or "them",
    from == last and "it may" or "they may")
end

-- the tail: the newest checkpoint signed, kept outside the store (head.file: where it was
-- read, .orket/audit.head or the file verify --head names)
local function check_tail(src, problem, pk, head, rep, last)
  local file = head.file or ".orket/audit.head"
  if not ach.verify(pk, head.hash, head.sig) then
    problem("%s does not verify under the audit's public key: it was changed", file)
    return
  end
  local held = M.holds(src, last, head)
  if held == "cut" then
    problem("the audit ends at entry %d, but checkpoint %d was signed (%s): entries %d to %d were removed%s",
      last or 0, head.seq, file, (last or 0) + 1, head.seq, parted(rep, last))
  elseif held == "replaced" then
    problem("entry %d is not the checkpoint %s signed: the chain up to it was replaced%s", head.seq, file,
      parted(rep, math.min(last, head.seq)))
  end
end

--- RESETS: the entries orket audit checkpoint writes when told to sign over what this host
--- signed before (orket.audit.chain's reanchor): verify names each as a note
M.RESETS = { audit_reset_head = "--reset-head", audit_new_key = "--new-key" }

-- one entry r after `last` (nil for the first) checked into rep; -> whether it is a signed
-- entry that vouches for the entries before it (its signature verified, or not checked)
local function check_entry(rep, problem, r, last, pk, from, retention)
  local seq = int(r.seq)
  if last and seq ~= int(last.seq) + 1 then
    problem("entries %d to %d are missing: removed from the audit", int(last.seq) + 1, seq - 1)
  elseif last and r.prev ~= last.hash then
    problem("entry %d does not follow entry %d (its prev is not that entry's hash): an entry was changed, "
      .. "removed or reordered", seq, int(last.seq))
  end
  local h = chain.hash(r)
  if h ~= r.hash then
    problem("entry %d was changed: its hash does not match its content (%s by %s)", seq, tostring(r.kind),
      tostring(r.actor or "-"))
  end
  if r.kind == "checkpoint" or r.kind == "retention" then
    local d = signed_entry(rep, problem, r, h, pk, from)
    if d and r.kind == "retention" and int(d.through) then retention[int(d.through)] = { hash = d.hash, seq = seq } end
    return d ~= nil
  elseif r.sig then
    problem("entry %d is a %s but carries a signature: it was changed", seq, tostring(r.kind))
    rep.sig_key = chain.detail(r).key
  end
  if r.action == "restore" or M.RESETS[r.action] then
    local d = chain.detail(r)
    if M.RESETS[r.action] then
      rep.resets[#rep.resets + 1] = { seq = seq, action = r.action, route = r.route, detail = d }
    elseif d.accept or d.unverified then
      rep.overrides[#rep.overrides + 1] = { seq = seq, accept = d.accept, unverified = d.unverified, route = r.route }
    end
    if d.accept and d.accept:find("unverified-audit", 1, true) then
      rep.anchor_pending = { seq = seq, route = r.route, vouched = {} }
    end
  end
  return false
end

-- The failed signatures into rep.problems, once per place the chain parts from them: each
-- checkpoint after the first that fails since the last that verified signed the chain as
-- it was before that change, so they share its `from`, and are named with it, not each
-- blaming entries no one touched. rep.unvouched: the first entry after the newest signed
-- one that verified, when a signature after it failed (verify's summary).
local function sig_problems(rep)
  local group -- {from=, first= its text, at= its index in rep.problems, later= seqs}
  for _, p in ipairs(rep.sig_problems) do
    if p.fails and group and group.from == p.from then
      local later = group.later
      later[#later + 1] = p.seq
      local where = group.from == 1 and "at its start: no checkpoint of it verifies"
        or string.format("after entry %d, the last one a checkpoint that verifies signs", group.from - 1)
      rep.problems[group.at] = string.format("%s; checkpoint%s %s after it fail%s with it, signed over the chain as "
        .. "it was: the chain parts from its checkpoints %s", group.first, #later == 1 and "" or "s",
        table.concat(later, ", "), #later == 1 and "s" or "", where)
    else
      rep.problems[#rep.problems + 1] = p.text
      group = p.fails and { from = p.from, first = p.text, at = #rep.problems, later = {} } or nil
    end
    if p.seq > rep.last_signed then rep.unvouched = rep.unvouched or rep.last_signed + 1 end
  end
end

--- chain(src, pk, head) -> report {entries=, first=, first_at=, last=, last_hash=, signed=,
--- last_signed=, last_signed_hash=, unchecked=, sig_key=, overrides=, problems = {"entry 7:
--- ...", ...}} of the chain src holds (src.page(after, limit) -> rows in seq order, src.get
--- (seq) -> row | nil). pk: the trusted public key (hex), or nil: signatures unchecked (each
--- signed entry counted in unchecked); head: the newest checkpoint known outside the chain
--- ({seq, hash, sig}) or nil. sig_key: the key the newest entry with a signature names;
--- overrides: the restores that accepted a backup's audit as it was, or let in entries they
--- could not verify ({seq=, accept=, unverified="FROM-TO", route=}); anchors: the restores
--- with --accept-unverified-audit that a checkpoint under pk signs, each with the failed
--- signatures before it it vouches for ({seq=, route=, by= checkpoint seq, vouched={text}}),
--- which are then not problems (hashes and links before it still are); resets: the entries
--- of orket audit checkpoint --reset-head or --new-key ({seq=, action=, route=, detail=});
--- unvouched: when a signature failed after the newest signed entry that verified, the
--- first entry after that one. head.file: where head was read, to name it (default
--- .orket/audit.head). pub_file: where pk was read, to name it (verify --pub FILE; default
--- .orket/audit.pub).
function M.chain(src, pk, head, pub_file)
  local rep = { entries = 0, signed = 0, last_signed = 0, unchecked = 0, overrides = {}, problems = {},
    sig_problems = {}, anchors = {}, resets = {}, pub_file = pub_file or ".orket/audit.pub" }
  local function problem(fmt, ...) rep.problems[#rep.problems + 1] = string.format(fmt, ...) end
  local retention = {} -- through -> {hash=, seq=}: the removals signed records vouch for
  local first, last, last_cp = nil, nil, 0
  local after, stop = 0, false
  while not stop do
    local rows = src.page(after, PAGE)
    if not rows or #rows == 0 then break end
    for _, r in ipairs(rows) do
      -- seqs must rise: one stored as text sorts above every number and would come back on
      -- every page (a forged file), so the read stops there
      local s = int(r.seq)
      if s and last and s == int(last.seq) and s > after and math.type(r.seq) == "integer" then
        -- a repeat within a page is named as one, and the rest still checked (it is not a
        -- removal); one that comes back on the next page stops the read below
        problem("entry %d appears twice%s: it was changed", s, r.hash == last.hash and "" or " (the two differ)")
      elseif not s or s <= after or (last and s <= int(last.seq)) then
        problem("the audit's entries are not in seq order after entry %d (%s): it was changed",
          last and int(last.seq) or after, (s and math.type(r.seq) == "integer") and string.format("entry %d comes "
            .. "after it", s) or "a seq is not a number")
        stop = true
        break
      else
        rep.entries = rep.entries + 1
        first = first or r
        if check_entry(rep, problem, r, last, pk, last_cp + 1, retention) then last_cp = int(r.seq) end
        last = r
      end
    end
    if last then after = int(last.seq) end
  end
  if first then
    check_start(problem, first, retention)
    rep.first, rep.first_at, rep.last, rep.last_hash = int(first.seq), first.at, int(last.seq), last.hash
  end
  if head and pk then check_tail(src, problem, pk, head, rep, rep.last) end
  sig_problems(rep)
  return rep
end

--- unsigned(rep, made, every) -> the problem | nil: a chain report's (chain()) of a
--- project that holds .orket/audit.pub, made at time made (ISO text), and no audit.head.
--- The key is made by the project's first checkpoint, which signs every entry before it,
--- and orket serve signs one once every entries follow the last: a chain no checkpoint
--- signs, though it has entries older than the key or every of them, was replaced or
--- stripped of its checkpoints. A young chain with none yet (a store begun after the key
--- was made or copied) passes, its entries "not signed yet".
function M.unsigned(rep, made, every)
  if rep.entries == 0 or rep.signed > 0 or rep.unchecked > 0 then return nil end
  local why
  if rep.first_at and made and rep.first_at < made then
    why = string.format("entry %d (%s) is older than .orket/audit.pub (%s), and the checkpoint that made the key "
      .. "signed every entry before it", rep.first, rep.first_at, made)
  elseif rep.entries >= every then
    why = string.format("orket serve signs one once %d entries follow the last (audit.checkpoint_every)", every)
  else
    return nil
  end
  return string.format("entries %d to %d are signed by no checkpoint, though this project signs its audit "
    .. "(.orket/audit.pub): %s. The chain was replaced or its checkpoints removed; if it is the one you trust "
    .. "(a new store, a key copied ahead), sign it with orket audit checkpoint --reset-head", rep.first, rep.last, why)
end

--- verify(db, pk, head, pub_file) -> chain()'s report of the store's chain
function M.verify(db, pk, head, pub_file) return M.chain(M.store_source(db), pk, head, pub_file) end

return M
