-- orket.audit.restore: what `orket restore` asks of a backup's audit before the store is
-- replaced with it, and the record of the restore the chain gets after (docs/audit.md,
-- "Restores"). A backup carries no signature of its own: anyone who can change the file
-- can rewrite its entries and recompute every hash. So its chain is verified as the
-- store's is (orket.audit.verify, one implementation), under this project's
-- .orket/audit.pub, and compared with the newest checkpoint this project knows it signed
-- (.orket/audit.head, and the store's own newest one): a changed backup, or an older one,
-- is refused unless the operator says so, and the restore is itself an entry, signed.
local ach = require "orket.c.auditchain"
local backup = require "orket.store.backup"
local ops = require "orket.store.audit"
local key = require "orket.audit.key"
local verify = require "orket.audit.verify"
local chain = require "orket.audit.chain"
local revoking = require "orket.audit.revoking"
local inert = require "orket.inert"
local fieldline = require "orket.fieldline"
local cjson = require "cjson.safe"
local uv = require "luv"

local M = {}

--- ACCEPT: each class of finding and the flag that lets a restore through despite it
M.ACCEPT = { unverified = "--accept-unverified-audit", older = "--accept-older-audit",
  undone = "--accept-undone-revocations" }

--- REVOKING: the acts on people and keys that take a power away, by audit action
--- (orket.audit.revoking, the list the server keeps too). A restore that drops their entries
--- undoes them: a key revoked because it leaked works again, a disabled person signs in, an
--- old password opens the account, a removed project's members are back in it, a
--- signed-out session's cookie works again.
M.REVOKING = revoking.ACTIONS

-- the most of the store's dropped entries read for such acts (a longer tail is named whole)
M.UNDONE_SCAN = 100000

-- The findings that make a backup's audit unverified: the chain's own problems, signed
-- entries this project cannot check, or none signed where this project signs.
local function unverified(v, rep, pk, perr, signs)
  local out = {}
  if perr then out[1] = perr end
  for _, p in ipairs(rep.problems) do out[#out + 1] = p end
  if rep.unchecked > 0 then
    out[#out + 1] = string.format("it has %d signed entries (the newest signed with key %s), and this project has no "
      .. ".orket/audit.pub to check them under: copy .orket/audit.pub and audit.key from the server that signed them "
      .. "(docs/audit.md)", rep.unchecked, tostring(rep.sig_key))
  elseif #out == 0 and signs and rep.entries > 0 and rep.signed == 0 then
    -- an empty chain has nothing to vouch for: only its age matters (older, below)
    out[1] = string.format("entries %d to %d are signed by no checkpoint, and this project signs its audit "
      .. "(.orket/audit.pub, .orket/audit.head): a backup made before the first checkpoint, or one whose "
      .. "checkpoints were removed", rep.first, rep.last)
  end
  v.unverified = out
end

-- The live store's newest entry and newest signed one -> last, signed | nil (no store, or
-- its audit unreadable: the head file still speaks)
local function live_marks(live)
  if not live then return nil end
  local ok, last, signed = pcall(function()
    return live:read(function()
      local s = ops.last_signed(live)
      return ops.head(live), s > 0 and ops.get(live, s) or nil
    end)
  end)
  if not ok then return nil end
  return last, signed
end

local function int(v) return math.tointeger(tonumber(v)) end

-- The checkpoints this project signed that the backup must hold, else it is older: the
-- head file's, and the store's newest that verifies under pk. -> marks, problems
local function marks_of(dir, pk, signed)
  local marks, out = {}, {}
  local head, herr = key.read_head(dir)
  if herr then
    out[1] = "cannot tell whether it is older than this project's audit: " .. herr
  elseif head and pk and not ach.verify(pk, head.hash, head.sig) then
    out[1] = "cannot tell whether it is older than this project's audit: .orket/audit.head does not verify under "
      .. ".orket/audit.pub: it was changed"
  elseif head then
    marks[1] = { seq = head.seq, hash = head.hash, what = ".orket/audit.head" }
  end
  if signed and pk and signed.sig and ach.verify(pk, signed.hash, signed.sig)
      and not (marks[1] and marks[1].seq == int(signed.seq)) then
    marks[#marks + 1] = { seq = int(signed.seq), hash = signed.hash, what = "the store's newest" }
  end
  return marks, out, head
end

-- the words that say the store's entries from to to are only earlier restores' records
-- (v.lost.records) | ""
local function records_of(l, from, to)
  if not (l and l.records) then return "" end
  return string.format("; entries %d to %d are only the record of the restore%s %s", from, to,
    #l.records == 1 and "" or "s", table.concat(l.records, ", "))
end

-- The findings that make a backup's audit older than this project's: a checkpoint it
-- signed that the backup does not hold.
local function older(v, src, rep, marks, out)
  for _, m in ipairs(marks) do
    local held = verify.holds(src, rep.last, m)
    if held == "cut" then
      local ends = rep.last and ("it ends at entry " .. rep.last) or "it holds no audit entry"
      local l = v.lost
      out[#out + 1] = string.format("%s, before checkpoint %d that this project signed (%s): restoring it removes "
        .. "entries %d to %d, and any after%s", ends, m.seq, m.what, (rep.last or 0) + 1, m.seq,
        l and l.from == (rep.last or 0) + 1 and m.seq <= l.to and records_of(l, l.from, l.to) or "")
    elseif held then
      out[#out + 1] = string.format("its entry %d is not checkpoint %d that this project signed (%s): its audit "
        .. "parts from this project's at or before that entry (an older backup, one restored over since, or a "
        .. "changed one)", m.seq, m.seq, m.what)
    end
  end
  v.older = out
end

-- the live store's first and last seq | nil (no entry, or unreadable)
local function against_live(live)
  local ok, lfirst, llast = pcall(function()
    return live:read(function()
      local f, l = ops.page(live, 0, 1)[1], ops.head(live)
      return f and int(f.seq), l and int(l.seq)
    end)
  end)
  if not ok then return nil end
  return lfirst, llast
end

-- The first seq from lo to hi where the backup's entry is not the store's | nil. Chains
-- link (each hash covers the one before), so the same hash at a seq means the same chain
-- up to it: the first that differs is found by halving.
local function first_difference(src, lsrc, lo, hi)
  local function same(s)
    local a, b = src.get(s), lsrc.get(s)
    return a ~= nil and b ~= nil and a.hash == b.hash
  end
  if same(hi) then return nil end
  while lo < hi do
    local mid = (lo + hi) // 2
    if same(mid) then lo = mid + 1 else hi = mid end
  end
  return hi
end

-- The backup's entries after its newest checkpoint that this key verified are signed by
-- nothing: each the live store holds must be the store's own (else refused, "unverified");
-- those it does not hold cannot be checked at all, and the restore's entry names them
-- (v.unverified_range, {from=, to=}) rather than sign them as if verified.
-- The backup's chain against the live store's, read once for tail and undone -> {first=,
-- last= (the store's seqs), hi= (the end of the two chains' overlap, when they overlap),
-- read= (whether the overlap was compared), parted= (its first seq where they differ)} |
-- nil (no store, or its audit empty or unreadable)
local function against(src, rep, live)
  if not live then return nil end
  local lfirst, llast = against_live(live)
  if not (lfirst and llast) then return nil end
  local c = { first = lfirst, last = llast }
  if rep.last then
    local lo, hi = math.max(lfirst, rep.first), math.min(llast, rep.last)
    if lo <= hi then
      local ok, d = pcall(first_difference, src, verify.store_source(live), lo, hi)
      c.hi, c.read, c.parted = hi, ok, ok and d or nil
    end
  end
  return c
end

local function tail(v, rep, c)
  local signed = rep.problems[1] and 0 or rep.last_signed
  if not rep.last or rep.last <= signed then return end
  local through = signed
  if c and c.read then
    local d = c.parted
    if d and d > signed then
      v.unverified[#v.unverified + 1] = string.format("its entry %d is not this store's entry %d, and no "
        .. "checkpoint in it signs that entry: its entries from %d on are another chain than this store's (a "
        .. "changed backup, or this store's entries were changed)", d, d, d)
    end
    through = math.max(through, d and d - 1 or c.hi)
  end
  if rep.last > through then v.unverified_range = { from = through + 1, to = rep.last } end
end

-- the store's dropped entries' actions, counted, as words: "secret_set, 2 comment"
local function actions_of(counts)
  local names, out = {}, {}
  for k in pairs(counts) do names[#names + 1] = k end
  table.sort(names)
  for i, k in ipairs(names) do out[i] = (counts[k] > 1 and (counts[k] .. " ") or "") .. inert.line(k) end
  return table.concat(out, ", ")
end

-- The store's entries the backup lacks (from where the two chains part, or past the
-- backup's last): each that took a power away named in v.undone, which refuses the restore
-- unless accepted; all of them counted in v.lost {from=, to=, n=, actions= (words),
-- outside= (secret acts among them)}, which the older class names: signed or not, the
-- restore removes them from the audit (the command line's acts sign no checkpoint).
local function undone(v, rep, live, c)
  v.undone = {}
  if not c then return end
  local from, llast = math.max(c.parted or (rep.last or 0) + 1, c.first), c.last
  if from > llast then return end
  local counts, outside, records = {}, false, {}
  local ok = pcall(function()
    local after, seen = from - 1, 0
    while after < llast and seen < M.UNDONE_SCAN do
      local rows = live:read(function() return ops.page(live, after, 500) end)
      if #rows == 0 then break end
      for _, r in ipairs(rows) do
        local act = tostring(r.action or r.kind)
        counts[act] = (counts[act] or 0) + 1
        outside = outside or act:find("^secret_") ~= nil
        if act == "restore" then
          local file = tostring(r.route or ""):match("^cli: restore (.*)$")
          records[#records + 1] = string.format("%sat %s", file and ("of " .. inert.line(file) .. " ") or "",
            tostring(r.at))
        end
        local what = M.REVOKING[r.action]
        if what then
          v.undone[#v.undone + 1] = string.format("the store's entry %d, %s (%s%s, by %s at %s), is not in the "
            .. "backup: restoring it undoes that", int(r.seq), what, tostring(r.action), r.detail and (" " .. inert.line(
            tostring(r.detail))) or "", inert.line(tostring(r.actor)), tostring(r.at))
        end
        after = int(r.seq)
      end
      seen = seen + #rows
    end
    if seen >= M.UNDONE_SCAN and after < llast then
      counts["others past the " .. M.UNDONE_SCAN .. " read"] = 1
      v.undone[#v.undone + 1] = string.format("the store's entries %d to %d, past the %d read, are not in the backup "
        .. "either: restoring it undoes whatever they did to people and keys", after + 1, llast, M.UNDONE_SCAN)
    end
  end)
  if not ok then v.undone = {} end
  v.lost = { from = from, to = llast, n = llast - from + 1, actions = actions_of(counts), outside = outside }
  -- entries that are only earlier restores' records (each its entry and checkpoint) hold
  -- no work: said as such, lest a reader take them for work the restore loses
  local others = 0
  for act, k in pairs(counts) do
    if act ~= "restore" and act ~= "checkpoint" then others = others + k end
  end
  if ok and others == 0 and #records > 0 then v.lost.records = records end
end

-- The store's entries the backup lacks, as the older class's finding (v.lost): a restore
-- dropped them unasked when no checkpoint signed them, and an act whose effect lives
-- outside the store (a secret) stayed in force with no record left
local function lost(v)
  local l = v.lost
  if not l then return end
  v.older[#v.older + 1] = string.format("the store's entries %d to %d%s are not in it: restoring it removes "
    .. "%s from the audit, the restore's entry counting %s (dropped=%d)%s%s", l.from, l.to,
    l.actions ~= "" and (" (" .. l.actions .. ")") or "",
    l.n == 1 and "it" or "them", l.n == 1 and "it" or "them", l.n, l.outside and "; a secret's change among them "
    .. "stays in force (secrets live outside the store), its record gone" or "", records_of(l, l.from, l.to))
end

-- src with its signed checkpoints noted as verify reads it ({{seq=, key=}...}, in seq order):
-- the summary names those this project's key does not verify (signed with another key, or
-- with none here to check them under), which verify's report counts as no checkpoint
local function noting(src)
  local seen = {}
  return { get = src.get, page = function(after, limit)
    local rows = src.page(after, limit)
    for _, r in ipairs(rows or {}) do
      if r.kind == "checkpoint" and r.sig and int(r.seq) then
        seen[#seen + 1] = { seq = int(r.seq), key = chain.detail(r).key }
      end
    end
    return rows
  end }, seen
end

-- The backup's checkpoints that another key signed than pk (every one, without pk) ->
-- {n=, newest= (seq), key= (the newest's)} | nil
local function others_of(seen, pk)
  local out
  for _, c in ipairs(seen) do
    if not pk or c.key ~= pk then
      out = out or { n = 0 }
      out.n, out.newest, out.key = out.n + 1, c.seq, c.key
    end
  end
  return out
end

--- judge(dir, path, live) -> verdict | nil, msg, CODE: the audit of the backup at path (a
--- checked plain file) judged for a restore into the project at dir, whose store live is
--- (nil when it cannot be read). verdict: {entries=, first=, last=, hash= (the last
--- entry's), checkpoint= (its newest signed seq, 0 when none), checkpoint_hash=, sig_key=,
--- pub= (whether audit.pub verified it), unverified = {problem, ...}, older = {...},
--- undone = {...} (acts on people and keys the restore would undo, M.REVOKING), lost =
--- {from=, to=, n=, actions=} (the store's entries the restore removes, named in older),
--- previous = {seq=, hash=} (the store's newest entry) | nil, dropped = whether the
--- backup lacks it, others = {n=, newest=, key=}: its checkpoints signed with another key
--- than .orket/audit.pub (or with any, where there is none) | nil}.
function M.judge(dir, path, live)
  local src, close, code = backup.audit_source(path)
  if not src then return nil, close, code end
  local pk, perr, pcode = key.public_key(dir)
  if pcode == "ENOENT" then perr = nil end
  local seen
  src, seen = noting(src)
  local ok, rep = pcall(verify.chain, src, pk, nil)
  if not ok then
    close()
    return nil, string.format("%s: its audit cannot be read: %s", inert.line(path), tostring(rep)), "ECORRUPT"
  end
  local last, signed = live_marks(live)
  local marks, out, head = marks_of(dir, pk, signed)
  local v = { entries = rep.entries, first = rep.first, last = rep.last, hash = rep.last_hash,
    checkpoint = rep.last_signed, checkpoint_hash = rep.last_signed_hash, sig_key = rep.sig_key, pub = pk ~= nil,
    others = others_of(seen, pk) }
  unverified(v, rep, pk, perr, pk or perr or head)
  local c = against(src, rep, live)
  tail(v, rep, c)
  undone(v, rep, live, c)
  older(v, src, rep, marks, out)
  lost(v)
  v.problems = table.concat(rep.problems, "\n")
  if last then
    v.previous = { seq = int(last.seq), hash = last.hash }
    v.dropped = verify.holds(src, rep.last, v.previous) ~= nil
  end
  close()
  return v
end

--- CLASSES: the classes of findings, in the order they are said
M.CLASSES = { "unverified", "older", "undone" }

--- refused(v, accept) -> the classes (M.CLASSES) of findings that accept ({unverified=,
--- older=, undone=}) does not let through, in that order; empty when none
function M.refused(v, accept)
  local out = {}
  for _, class in ipairs(M.CLASSES) do
    if #v[class] > 0 and not accept[class] then out[#out + 1] = class end
  end
  return out
end

-- the backup's checkpoints this project's key does not verify, as words (orket audit
-- verify's: "signed with another key (KEY) than .orket/audit.pub") | nil
local function others_words(v)
  local o = v.others
  if not o then return nil end
  return string.format("%d checkpoint%s (the newest at entry %d) signed with %s", o.n, o.n == 1 and "" or "s", o.newest,
    v.pub and string.format("another key (%s) than .orket/audit.pub", tostring(o.key))
      or string.format("key %s, and this project has no .orket/audit.pub to check %s under", tostring(o.key),
        o.n == 1 and "it" or "them"))
end

--- summary(v) -> one line on the backup's audit
function M.summary(v)
  if v.entries == 0 then return "its audit is empty" end
  local others = others_words(v)
  -- ("none" only when it has none: checkpoints another key signed are named, with the key)
  local s = string.format("its audit: %d entr%s (%d to %d), %s", v.entries, v.entries == 1 and "y" or "ies", v.first,
    v.last, v.checkpoint > 0 and ("newest checkpoint " .. v.checkpoint) or others or "newest checkpoint none")
  if #v.unverified == 0 and v.pub then s = s .. ", verified under .orket/audit.pub" end
  if v.checkpoint > 0 and others then s = s .. "; " .. others end
  if v.checkpoint > 0 and v.checkpoint < v.last then
    s = s .. string.format("; entries %d to %d are %s", v.checkpoint + 1, v.last,
      others and v.others.newest > v.checkpoint and "signed by no checkpoint that this project can verify"
        or "chained only, not signed")
  end
  local u = v.unverified_range
  if u then
    s = s .. string.format("; entries %d to %d cannot be verified (no checkpoint %s them and this store does "
      .. "not hold them): the restore's entry names them", u.from, u.to,
      others and "that this project can verify signs" or "signs")
  end
  return s
end

-- A restore's pages are copied in a transaction of their own (SQLite's backup API; a
-- PostgreSQL import's), and its entry and checkpoint follow in later ones: killed between,
-- the store held the backup with no record of the restore, and verify named removed
-- entries or a replaced chain, never a restore cut short. So a marker is written (synced)
-- into .orket/ before the copy and removed once the restore is recorded; verify names it.
M.PENDING = "restore.pending"

local function pending_path(dir) return (dir or ".") .. "/.orket/" .. M.PENDING end

--- mark(dir, file, accept) -> the marker it replaced ({file=, at=, accept=} | false) | nil,
--- msg, CODE: a restore of file (its real path) about to change the store
function M.mark(dir, file, accept)
  local before = M.pending(dir) or false
  local flags = {}
  for _, class in ipairs { "older", "unverified", "undone" } do
    if accept[class] then flags[#flags + 1] = M.ACCEPT[class] end
  end
  local text = cjson.encode { file = file, at = os.date("!%Y-%m-%dT%H:%M:%SZ"), accept = table.concat(flags, " "),
    pid = uv.os_getpid() }
  local ok, err, code = fieldline.write_whole(pending_path(dir), text .. "\n", 384)
  if not ok then return nil, err, code end
  return before
end

--- unmark(dir[, before]) -> the marker removed (the restore recorded, or refused before
--- the copy), or put back as it was before this restore's mark (an earlier restore's)
function M.unmark(dir, before)
  if before then
    fieldline.write_whole(pending_path(dir), cjson.encode(before) .. "\n", 384)
  else
    os.remove(pending_path(dir))
  end
end

--- pending(dir) -> {file=, at=, accept=} of a restore begun and not recorded | nil
function M.pending(dir)
  local f = io.open(pending_path(dir), "r")
  if not f then return nil end
  local text = f:read("a") or ""
  f:close()
  local m = cjson.decode(text)
  if type(m) ~= "table" then return { file = "?", at = "?", accept = "" } end
  return { file = tostring(m.file or "?"), at = tostring(m.at or "?"), accept = tostring(m.accept or "") }
end

--- pending_problem(dir) -> verify's words for a restore begun and not recorded | nil
function M.pending_problem(dir)
  local m = M.pending(dir)
  if not m then return nil end
  local again = "orket restore " .. inert.shell_word(m.file)
    .. (m.accept ~= "" and (" " .. m.accept) or "")
  return inert.line(string.format("a restore from %s, begun at %s, did not finish (.orket/%s): the store may hold "
    .. "the backup with no audit entry of the restore, and the problems below may be its doing; run '%s' again, "
    .. "then orket audit verify", m.file, m.at, M.PENDING, again))
end

--- can_record(dir, v, accept[, live]) -> true | nil, msg, CODE: whether the restore's
--- checkpoint can be signed here once the store holds the backup's chain (asked before
--- replacing it): a key made only where none was (the live store's journal, when given,
--- says whether one was), or when its audit is accepted unverified
function M.can_record(dir, v, accept, live)
  return key.can_sign(dir, not accept.unverified and v.sig_key or nil, { new_key = accept.unverified,
    made_before = live and function()
      local ok, e = pcall(function() return live:read(function() return ops.key_event(live) end) end)
      return ok and e and string.format("the journal records that key %s was made for this chain (event %d)",
        tostring(e.key), e.id) or nil
    end })
end

-- the accepted flags as one word of the entry's subject
local function accepted(accept)
  local t = {}
  for _, class in ipairs { "older", "unverified" } do
    if accept[class] then t[#t + 1] = class .. "-audit" end
  end
  if accept.undone then t[#t + 1] = "undone-revocations" end
  return #t > 0 and table.concat(t, ":") or nil
end

-- whether the entry row (seq, hash) is in the store as written
local function stored(db, row)
  local got = db:read(function() return ops.get(db, row.seq) end)
  return got ~= nil and got.hash == row.hash
end

-- What the store holds after the copy, against what was judged: the same schema (SQLite:
-- orket's), the same last entry, and the same chain, verified again as judge did (a file
-- swapped between the judgment and the copy shows here) -> what differs | nil
local function restored_differs(db, dir, v)
  if db.backend ~= "pg" then
    local differs = backup.schema_differs(db.conn, db.conn:version())
    if differs then return differs end
  end
  local pk = key.public_key(dir)
  local rep = verify.verify(db, pk, nil)
  if rep.last ~= v.last or rep.last_hash ~= v.hash then
    return string.format("its audit ends at entry %s, not at the entry %s judged", tostring(rep.last), tostring(v.last))
  end
  if rep.entries ~= v.entries or table.concat(rep.problems, "\n") ~= v.problems then
    return string.format("its audit holds %d entries and %d problems, not the %d entries judged", rep.entries,
      #rep.problems, v.entries)
  end
  return nil
end

--- record(db, dir, v, o) -> the restore's entry, the checkpoint signed | nil, msg, CODE:
--- after the store holds the backup, an entry (action restore, route "cli: restore FILE",
--- actor o.actor) naming the backup's last entry and newest checkpoint (seq, hash), the store's
--- newest entry before, and the flags o.accept let through; with a journal event; then a
--- checkpoint signed and written to .orket/audit.head over the one before the restore.
function M.record(db, dir, v, o)
  local untrusted = restored_differs(db, dir, v)
  if untrusted then
    return nil, string.format("the restore cannot be trusted: what the store now holds is not what was checked (%s): "
      .. "%s changed while it was restored. Nothing was signed; restore again from a copy no one else can write",
      untrusted, o.file), "ETAMPERED"
  end
  local subject = { last = v.last or 0, hash = v.hash, checkpoint = v.checkpoint, checkpointhash = v.checkpoint_hash,
    previous = v.previous and v.previous.seq, previoushash = v.previous and v.previous.hash,
    dropped = v.lost and v.lost.n, accept = accepted(o.accept),
    unverified = v.unverified_range and string.format("%d-%d", v.unverified_range.from, v.unverified_range.to) }
  local row, err, code = db:tx(function()
    db:event { kind = "restore", actor = o.actor, data = { file = o.file, last = subject.last, hash = v.hash,
      checkpoint = v.checkpoint, checkpoint_hash = v.checkpoint_hash, previous = subject.previous,
      dropped = subject.dropped, accept = subject.accept, unverified = subject.unverified } }
    return chain.record(db, { actor = o.actor, action = "restore", route = "cli: restore " .. o.file,
      subject = subject })
  end)
  if not row then return nil, err, code end
  if o.after_entry then o.after_entry() end -- (the tests' kill point between the entry and its checkpoint)
  -- read back: the entry and its checkpoint must be in the store, not only in this process
  local again = "run orket restore again; verify with orket audit verify"
  if not stored(db, row) then
    return nil, string.format("the restore's audit entry %d is not in the store (something in it dropped the "
      .. "write): %s", row.seq, again), "ETAMPERED"
  end
  local res, cerr, ccode = chain.checkpoint(db, dir, { force = true, replace_head = true,
    any_key = o.accept.unverified })
  if not res then return nil, cerr, ccode end
  if not (res.checkpoint and stored(db, res.checkpoint)) then
    return nil, string.format("no checkpoint signed the restore's entry %d: run orket audit checkpoint, then orket "
      .. "audit verify", row.seq), "ETAMPERED"
  end
  return row, res.checkpoint
end

return M
