-- orket.audit.verify: reads the whole audit chain (orket.store.audit) in order and names
-- every entry changed, removed or reordered (docs/audit.md): an entry whose hash is not
-- its content's, a seq missing, an entry whose prev is not the hash before it, a signed
-- entry whose signature does not verify under the project's public key, a start removed
-- without a signed retention record, and a tail cut past the newest checkpoint (which
-- .orket/audit.head, outside the store, names).
local ach = require "orket.c.auditchain"
local ops = require "orket.store.audit"
local chain = require "orket.audit.chain"

local M = {}

local PAGE = 1000

local function int(v) return math.tointeger(tonumber(v)) end

--- verify(db, pk, head) -> report {entries=, first=, last=, signed=, last_signed=,
--- problems = {"entry 7: ...", ...}}. pk: the trusted public key (hex); head: the newest
--- checkpoint known outside the store ({seq, hash, sig}) or nil.
function M.verify(db, pk, head)
  local rep = { entries = 0, signed = 0, last_signed = 0, problems = {} }
  local function problem(fmt, ...) rep.problems[#rep.problems + 1] = string.format(fmt, ...) end
  local retention = {} -- through -> {hash=, seq=}: the removals signed records vouch for
  local first, last, last_cp = nil, nil, 0
  local after = 0
  while true do
    local rows = db:read(function() return ops.page(db, after, PAGE) end)
    if not rows or #rows == 0 then break end
    for _, r in ipairs(rows) do
      local seq = int(r.seq)
      rep.entries = rep.entries + 1
      if not first then
        first = r
      elseif seq ~= int(last.seq) + 1 then
        problem("entries %d to %d are missing: removed from the audit", int(last.seq) + 1, seq - 1)
      elseif r.prev ~= last.hash then
        problem("entry %d does not follow entry %d (its prev is not that entry's hash): an entry was changed, "
          .. "removed or reordered", seq, int(last.seq))
      end
      local h = chain.hash(r)
      if h ~= r.hash then
        problem("entry %d was changed: its hash does not match its content (%s by %s)", seq, tostring(r.kind),
          tostring(r.actor or "-"))
      end
      if r.kind == "checkpoint" or r.kind == "retention" then
        local d = chain.detail(r)
        local other = d.key ~= pk and r.sig and type(d.key) == "string" and #d.key == 64 and d.key:match("^%x+$")
        if other and ach.verify(d.key, h, r.sig) then
          -- whole and signed, but not under the key this host trusts: another server's key,
          -- or a forger's; either way its entries are not vouched for
          problem("%s %d is signed with another key (%s) than .orket/audit.pub (%s): entries %d to %d are not "
            .. "verified. If another server of this store signed it, give every server the same .orket/audit.key "
            .. "and audit.pub (docs/audit.md); if not, someone signed it in the key's stead", r.kind, seq, d.key, pk,
            last_cp + 1, seq)
        elseif not r.sig or not ach.verify(pk, h, r.sig) or d.key ~= pk then
          problem("%s %d does not verify under the audit's public key: an entry from %d to %d was changed, removed "
            .. "or reordered after it was signed", r.kind, seq, last_cp + 1, seq)
        else
          rep.signed = rep.signed + 1
          rep.last_signed = seq
          if r.kind == "retention" and int(d.through) then
            retention[int(d.through)] = { hash = d.hash, seq = seq }
          end
        end
        last_cp = seq
      elseif r.sig then
        problem("entry %d is a %s but carries a signature: it was changed", seq, tostring(r.kind))
      end
      last = r
    end
    after = int(last.seq)
  end
  -- the start: entry 1, or a signed record of the removal of everything before it
  if first then
    local f = int(first.seq)
    if f == 1 then
      if first.prev ~= chain.ZERO then problem("entry 1 was changed: it does not start the chain") end
    else
      local rr = retention[f - 1]
      if not rr then
        problem("entries 1 to %d are missing, with no signed retention record of their removal", f - 1)
      elseif rr.hash ~= first.prev then
        problem("entry %d does not follow the entries retention record %d says were removed", f, rr.seq)
      end
    end
    rep.first, rep.last = f, int(last.seq)
  end
  -- the tail: the newest checkpoint signed, kept outside the store
  if head then
    if not ach.verify(pk, head.hash, head.sig) then
      problem(".orket/audit.head does not verify under the audit's public key: it was changed")
    elseif not last or int(last.seq) < head.seq then
      problem("the audit ends at entry %d, but checkpoint %d was signed (.orket/audit.head): entries %d to %d were "
        .. "removed", last and int(last.seq) or 0, head.seq, last and int(last.seq) + 1 or 1, head.seq)
    else
      local r = db:read(function() return ops.get(db, head.seq) end)
      if r and r.hash ~= head.hash then
        problem("entry %d is not the checkpoint .orket/audit.head signed: the chain up to it was replaced", head.seq)
      end
    end
  end
  return rep
end

return M
