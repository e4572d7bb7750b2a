-- orket audit verify|export|checkpoint: the audit's hash chain (orket.audit.chain) checked
-- whole, exported as JSON Lines, or sealed with a signed checkpoint (and retention applied).
local jsonout = require "orket.jsonout"
local cmdline = require "orket.cmdline"

local USAGE = "orket audit verify [--pub FILE] [--head FILE] [--file EXPORT] | audit export [--since TIME] "
  .. "[--format jsonl] | audit checkpoint [--reset-head | --new-key]  [-C DIR]"
local cmd = { summary = "verify, export and sign the audit of the server's writes", usage = USAGE }
cmd.help = [[
The audit of 'orket serve' is a hash chain: each entry's hash covers the entry before, and
checkpoints are signed with the project's Ed25519 key (.orket/audit.key, mode 600).

verify reads the whole chain and names every entry changed, removed or reordered, every
checkpoint whose signature fails, a tail cut past the newest checkpoint (.orket/audit.head),
a head file missing while the project signs, an append-only trigger of the store removed,
and a journal row of the server's card writes (api_write) that disagrees with its chain
entry, or is missing or made up; exit 1 when it finds one. --pub FILE and --head FILE
check against copies of audit.pub and audit.head kept off this machine; --file EXPORT
checks an export (orket audit export, whole, each line as export wrote it) against them,
without the store (--pub is needed then). export writes the entries as JSON Lines
(--format jsonl, the only format), those at or after --since TIME: a date (2026-11-01, from its midnight UTC, not local
time), a UTC time (2026-11-01T12:00:00Z; no offset such as +05:30), or 7d / 12h ago.
checkpoint signs the entries written since the last checkpoint and applies audit.
retention_days of orket.lua (entries older are removed whole, with a signed record of the
removal); 'orket serve' does this as it goes and when it stops. It signs nothing while the
chain does not hold the checkpoint .orket/audit.head names, or the head is missing: a
store put back to an older copy would be signed as it is. --reset-head signs the chain as
it is all the same, and records that in it; --new-key does so with a new signing key (the
old one kept aside as .orket/audit.key.replaced-TIME), for a key lost. See docs/audit.md.]]

local ROW_KEYS = { "seq", "at", "kind", "actor", "action", "card", "route", "detail", "prev", "hash", "sig" }
local ROW = jsonout.shape(ROW_KEYS)
local ROW_FIELDS = {}
for _, k in ipairs(ROW_KEYS) do ROW_FIELDS[k] = true end

local PAGE = 1000

-- a date and time that exist: the entries' times are compared as text, so 2026-13-01 or
-- 24:00:00 would keep a wrong set (none, or a month's too many) without a word
local function real_time(y, mo, d, h, mi, sec)
  local days = { 31, (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  return mo >= 1 and mo <= 12 and d >= 1 and d <= days[mo] and h < 24 and mi < 60 and sec < 60
end

-- --since TIME -> the ISO text entries are compared with | nil
local function since_time(v, clock)
  local n, unit = v:match("^(%d+)([dh])$")
  if n then
    -- (in floats: 9223372036854775807h in integers wrapped round to an hour ahead, and the
    -- export was empty)
    local t = clock:now() - tonumber(n) * (unit == "d" and 86400.0 or 3600.0)
    -- a span reaching before 1970 keeps every entry (os.date cannot write such a time)
    if t < 0 then return "0" end
    return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. ".000Z"
  end
  local y, mo, d, rest = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  local h, mi, sec, ms = "00", "00", "00", ".000"
  if rest ~= "" then
    h, mi, sec, ms = rest:match("^T(%d%d):(%d%d):(%d%d)(%.?%d*)Z$")
    if not h or not (ms == "" or ms:match("^%.%d%d%d$")) then return nil end
    if ms == "" then ms = ".000" end
  end
  if not real_time(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)) then return nil end
  return string.format("%s-%s-%sT%s:%s:%s%sZ", y, mo, d, h, mi, sec, ms)
end

-- the project's audit.checkpoint_every: orket.lua's, else the default (verify runs
-- whatever orket.lua holds)
local function checkpoint_every(dir)
  local cfg, s = require("orket.config").settings(dir) -- lazy: as the store
  if cfg and s.audit then return s.audit.checkpoint_every end
  return require("orket.settings.audit").DEFAULT_CHECKPOINT_EVERY -- lazy: as the store
end

-- the notes of verify's report: the restores that accepted a backup's audit as it was
-- (not problems: the operator said so, and a checkpoint signed it), the signatures they
-- vouched for, and the chains signed over a head they no longer held (--reset-head, --new-key)
local function notes(rep)
  for _, o in ipairs(rep.overrides) do
    if o.accept then
      io.stdout:write(string.format("audit: note: entry %d, %s, restored a backup accepting its audit as it was "
        .. "(%s)\n", o.seq, tostring(o.route), o.accept))
    end
    if o.unverified then
      io.stdout:write(string.format("audit: note: entry %d, %s, restored entries %s unverified: no checkpoint "
        .. "signed them and this store did not hold them\n", o.seq, tostring(o.route), o.unverified))
    end
  end
  for _, a in ipairs(rep.anchors) do
    for _, p in ipairs(a.vouched) do
      io.stdout:write(string.format("audit: note: accepted by entry %d (%s), signed by checkpoint %d under "
        .. ".orket/audit.pub: %s\n", a.seq, tostring(a.route), a.by, p))
    end
  end
  for _, r in ipairs(rep.resets) do
    local d = r.detail
    io.stdout:write(string.format("audit: note: entry %d, %s, signed the chain as it was (its last entry %s) over "
      .. ".orket/audit.head's checkpoint %s%s%s\n", r.seq, tostring(r.route), tostring(d.last), tostring(d.head),
      d.headhash and (" (hash " .. d.headhash .. ")") or "",
      r.action == "audit_new_key" and (", with a new key (the one before: " .. tostring(d.key) .. ")") or ""))
  end
end

-- verify's report printed: its problems, its notes, the summary -> exit status
local function report(rep)
  for _, p in ipairs(rep.problems) do io.stdout:write("audit: ", p, "\n") end
  notes(rep)
  if rep.entries == 0 and #rep.problems == 0 then
    io.stdout:write("audit: empty (no write through orket serve yet)\n")
    return 0
  end
  -- (after a signature that failed, the entries past the last that verified are not
  -- waiting for a checkpoint: the ones they have do not vouch for them)
  local tail = ""
  local function span(from, to)
    return from == to and ("entry " .. from .. " is") or ("entries " .. from .. " to " .. to .. " are")
  end
  if rep.unvouched and rep.last and rep.last >= rep.unvouched then
    tail = string.format("; %s vouched for by no checkpoint that verifies", span(rep.unvouched, rep.last))
  elseif rep.last and rep.last > rep.last_signed then
    tail = string.format("; %s not signed yet", span(rep.last_signed + 1, rep.last))
  end
  local function n(count, one, many) return string.format("%d %s", count, count == 1 and one or many) end
  io.stdout:write(string.format("audit: %s (%s to %s), %s%s: %s\n", n(rep.entries, "entry", "entries"),
    tostring(rep.first or "-"), tostring(rep.last or "-"), n(rep.signed, "signed checkpoint", "signed checkpoints"),
    tail, #rep.problems == 0 and "verified" or n(#rep.problems, "problem", "problems")))
  return #rep.problems == 0 and 0 or 1
end

-- the trust verify checks under: the files --pub and --head name (copies kept off this
-- machine), else .orket/audit.pub and .orket/audit.head -> pk, perr, head, herr (a head
-- names where it was read: head.file)
local function anchors(dir, o)
  local key = require "orket.audit.key" -- lazy: as the store, when the command runs
  local pk, perr
  if o.pub then pk, perr = key.public_key_at(o.pub) else pk, perr = key.public_key(dir) end
  local head, herr
  if o.head then
    head, herr = key.read_head_at(o.head)
    if not head and not herr then herr = o.head .. ": no such file (an audit head, as .orket/audit.head)" end
    if head then head.file = o.head end
  elseif not o.file then
    head, herr = key.read_head(dir)
  end
  return pk, perr, head, herr
end

-- what verify adds to the chain's report of the store: a head missing where the project
-- signs, a key the journal says was made and audit.pub gone, the append-only triggers ->
-- problems
local function store_problems(db, pk, head, herr)
  local ops = require "orket.store.audit" -- lazy: as the store
  local out = {}
  if pk and not head and not herr then
    out[1] = ".orket/audit.head is missing, though .orket/audit.pub says this project signs its audit: without it a "
      .. "cut of the chain's tail, checkpoints and all, is not seen, and orket serve and orket audit checkpoint sign "
      .. "nothing until it is back. Copy it back from where you keep one (or check against that copy: orket audit "
      .. "verify --head FILE); if it is lost, orket audit checkpoint --reset-head signs the chain as it is, and "
      .. "records that in it"
  end
  local e = not pk and db:read(function() return ops.key_event(db) end)
  if e then
    out[#out + 1] = string.format(".orket/audit.pub is missing, though the journal records that key %s was made for "
      .. "this chain (event %d, %s): without it no signature is checked, and a rewritten chain would pass. Copy "
      .. "audit.pub (and audit.key) back, or check against a copy: orket audit verify --pub FILE", tostring(e.key),
      e.id, tostring(e.at))
  end
  local backup = require "orket.store.backup" -- lazy: as the store
  for _, p in ipairs(db:read(function() return backup.guard_problems(db) end)) do out[#out + 1] = p end
  return out
end

local function verify(cli, dir, db, o)
  local key = require "orket.audit.key" -- lazy: as the store, when the command runs
  local vmod = require "orket.audit.verify" -- lazy: as the store
  local pk, perr, head, herr = anchors(dir, o)
  if o.pub and not pk then
    db:close()
    cli.err("audit: --pub %s", perr)
    return 1
  end
  if not pk then
    -- no key here: the chain is still checked, its signatures cannot be
    local ops = require "orket.store.audit" -- lazy: as the store
    if ops.last_signed(db) > 0 or head then
      db:close()
      -- the store's checkpoints were signed on another server of it (docs/audit.md)
      cli.err("audit: %s, but the store has signed checkpoints: copy .orket/audit.pub (and audit.key, to sign) "
        .. "from the server that signed them", perr)
      return 1
    end
  end
  local rep = vmod.verify(db, pk or string.rep("0", 64), head, o.pub)
  for _, p in ipairs(store_problems(db, pk, head, herr)) do rep.problems[#rep.problems + 1] = p end
  -- the journal's rows of the server's writes against their entries: the journal has no
  -- hashes, and orket card and GET /v1/audit read it
  for _, p in ipairs(require("orket.audit.journal").check(db)) do rep.problems[#rep.problems + 1] = p end -- lazy: as the store
  db:close()
  if herr then rep.problems[#rep.problems + 1] = herr end
  -- a restore killed between its copy and its record: said first, the rest may be its doing
  local cut = require("orket.audit.restore").pending_problem(dir) -- lazy: as the store
  if cut then table.insert(rep.problems, 1, cut) end
  -- a head names a checkpoint the chain must hold (checked above); without one, a chain
  -- none signs is asked whether it should have been signed
  local unsigned = pk and not head and not herr and vmod.unsigned(rep, key.pub_made(dir), checkpoint_every(dir))
  if unsigned then rep.problems[#rep.problems + 1] = unsigned end
  return report(rep)
end

-- why an export's line, decoded as x, is not the bytes orket audit export writes for it |
-- nil: a field verify does not hash would ride along in a file it passed (an "approved_by"),
-- and a key given twice reads one way to cjson (its last) and another to a reader that takes
-- the first (a forged actor put before the true one)
local function not_canonical(line, x)
  local r, extra = {}, {}
  for k, v in pairs(x) do
    if ROW_FIELDS[k] then r[k] = v ~= require("cjson.safe").null and v or nil -- lazy: as export_source
    else extra[#extra + 1] = tostring(k) end
  end
  if #extra > 0 then
    table.sort(extra)
    return "a field orket audit export does not write (" .. table.concat(extra, ", "):sub(1, 200) .. ")"
  end
  r.seq = math.tointeger(r.seq)
  local ok, text = pcall(jsonout.encode, setmetatable(r, ROW))
  if not ok or text ~= line then
    return "not the bytes orket audit export writes for its entry (a key given twice, or its fields reordered "
      .. "or respaced)"
  end
end

-- an export's lines (orket audit export) as a chain orket.audit.verify reads -> src,
-- problems | nil, msg. Each line must be the bytes export writes for its entry (not_canonical);
-- an entry on two lines is named, its first line checked (a repeat is not a removal)
local function export_source(path)
  local backup = require "orket.store.backup" -- lazy: as the store
  local json = require "cjson.safe" -- lazy: only here
  local f, err = io.open(path, "rb")
  if not f then return nil, tostring(err) end
  local rows, n, problems, seen = {}, 0, {}, {}
  for line in f:lines() do
    n = n + 1
    local x = line ~= "" and json.decode(line)
    if line ~= "" and (type(x) ~= "table" or not math.tointeger(x.seq)) then
      f:close()
      return nil, string.format("%s:%d: not an audit entry (a JSON object with a seq, as orket audit export writes)",
        path, n)
    end
    if x then
      local seq = math.tointeger(x.seq)
      local why = not_canonical(line, x)
      if why then problems[#problems + 1] = string.format("%s:%d: entry %d: %s: it was changed", path, n, seq, why) end
      local before = seen[seq]
      if before then
        problems[#problems + 1] = string.format("%s:%d: entry %d appears twice (first on line %d%s): it was changed; "
          .. "line %d is checked", path, n, seq, before.n, before.line == line and "" or ", and the two differ", before.n)
      else
        seen[seq] = { n = n, line = line }
        rows[#rows + 1] = backup.chain_row(x)
      end
    end
  end
  f:close()
  return backup.rows_source(rows), problems
end

-- verify --file EXPORT: an export checked apart from the store, under --pub FILE (and the
-- head --head FILE names) -> exit status
local function verify_file(cli, dir, o)
  local pk, perr, head, herr = anchors(dir, o)
  if not pk then
    cli.err("audit: --pub %s", perr)
    return 1
  end
  local src, err = export_source(o.file)
  if not src then
    cli.err("audit: --file %s", err)
    return 1
  end
  local rep = require("orket.audit.verify").chain(src, pk, head, o.pub) -- lazy: as the store
  for i, p in ipairs(err) do table.insert(rep.problems, i, p) end
  if herr then rep.problems[#rep.problems + 1] = herr end
  if not head and not herr then
    io.stdout:write("audit: note: no --head FILE: a cut of the export's tail, checkpoints and all, is not seen\n")
  end
  return report(rep)
end

local function export(db, since)
  local ops = require "orket.store.audit" -- lazy: as the store
  local after, out = 0, io.stdout
  while true do
    local rows = ops.since(db, since, after, PAGE)
    for _, r in ipairs(rows) do
      r.seq = math.tointeger(tonumber(r.seq))
      out:write(jsonout.encode(setmetatable(r, ROW)), "\n")
    end
    if #rows < PAGE then break end
    after = rows[#rows].seq
  end
  db:close()
  return 0
end

-- audit checkpoint --reset-head | --new-key: the chain signed as it is over the head, the
-- reset recorded in it first (orket.audit.chain's reanchor) -> exit status
local function reanchor(cli, dir, db, o)
  local res, err = require("orket.audit.chain").reanchor(db, dir, { actor = cli.operator().seat, -- lazy: as the store
    new_key = o.new_key })
  db:close()
  if not res then
    cli.err("audit: %s", err)
    return 1
  end
  local d = require("orket.audit.chain").detail(res.entry) -- lazy: as the store
  io.stdout:write(string.format("audit: entry %d records the reset (.orket/audit.head named checkpoint %s; the chain "
    .. "ended at entry %s)%s; checkpoint %d signed (.orket/audit.head)\n", res.entry.seq, tostring(d.head),
    tostring(d.last), o.new_key and (", with a new key: .orket/audit.pub " .. tostring(
      require("orket.audit.key").public_key(dir))) or "", res.checkpoint and res.checkpoint.seq or 0)) -- lazy: as the store
  cli.say_operator()
  return 0
end

-- audit checkpoint: retention applied and a checkpoint signed now -> exit status
local function checkpoint(cli, dir, db, settings, o)
  if o.reset_head or o.new_key then return reanchor(cli, dir, db, o) end
  local chain = require "orket.audit.chain" -- lazy: as the store
  local res, err = chain.checkpoint(db, dir, { force = true, every = settings.checkpoint_every,
    retention_days = settings.retention_days })
  db:close()
  if not res then
    cli.err("audit: %s", err)
    return 1
  end
  if res.retention then
    io.stdout:write(string.format("audit: removed %d %s older than %d %s (signed record %d)\n", res.removed,
      res.removed == 1 and "entry" or "entries", settings.retention_days,
      settings.retention_days == 1 and "day" or "days", res.retention.seq))
  end
  if res.checkpoint then
    io.stdout:write(string.format("audit: checkpoint %d signed\n", res.checkpoint.seq))
  elseif not res.retention then
    io.stdout:write("audit: nothing new to sign\n")
  end
  return 0
end

-- the options that go with one subcommand only -> nil | the usage error's text
local function misplaced(sub, since, format, o)
  if (since or format) and sub ~= "export" then return "--since and --format go with audit export" end
  if (o.pub or o.head or o.file) and sub ~= "verify" then return "--pub, --head and --file go with audit verify" end
  if (o.reset_head or o.new_key) and sub ~= "checkpoint" then return "--reset-head and --new-key go with audit checkpoint" end
  if o.file and not o.pub then
    return "--file needs --pub FILE: an export is checked under a public key you hold, not one it names"
  end
  if format and format ~= "jsonl" then return string.format("--format %s: the only format is jsonl", format) end
end

-- audit's words. No free text: an unknown option is named alone (no "put -- before it",
-- which no audit command, none starting with '-', is helped by).
local ARGS = { cmdline.DIR,
  { "an argument", many = true, key = "words", what = "an audit command" },
  { "--reset-head" }, { "--new-key" },
  { "--since", value = "a time (2026-11-01, UTC; 2026-11-01T12:00:00Z; 7d)" },
  { "--format", value = "jsonl" },
  { "--pub", value = "a copy of .orket/audit.pub" },
  { "--head", value = "a copy of .orket/audit.head" },
  { "--file", value = "an export (orket audit export)" },
}

-- The words: dir, sub, since (a store time, "0" for all), o {pub=, head=, file=,
-- reset_head=, new_key=} | nil, exit status (said)
local function words(args, cli)
  local o, st = cli.parse(cmd, args, ARGS)
  if not o then return nil, st end
  local dir, pos, since, format = o.dir, o.words or {}, o.since, o.format
  local sub = pos[1]
  if sub ~= "verify" and sub ~= "export" and sub ~= "checkpoint" then
    return nil, cli.usage_error(cmd, sub and ("unknown audit command '" .. sub .. "'") or "audit needs verify, export or checkpoint")
  end
  if #pos ~= 1 then return nil, cli.usage_error(cmd, "audit %s takes no other word", sub) end
  local wrong = misplaced(sub, since, format, o)
  if wrong then return nil, cli.usage_error(cmd, "%s", wrong) end
  if not since then return dir, sub, "0", o end
  local at = since_time(since, require("orket.clock").system()) -- lazy: as the store
  if not at then
    return nil, cli.usage_error(cmd, "--since %s: give a date that exists (2026-11-01, from its midnight UTC), "
      .. "a UTC time ending in Z (2026-11-01T12:00:00Z; an offset such as +05:30 is not taken) or 7d / 12h", since)
  end
  return dir, sub, at, o
end

function cmd.run(args, cli)
  local dir, sub, since_at, o = words(args, cli)
  if not dir then return sub end
  -- an export checked apart: no store (the auditor's machine has none)
  if sub == "verify" and o.file then return verify_file(cli, dir, o) end
  local settings
  if sub == "checkpoint" then
    -- (a folder without orket.lua takes the defaults, as orket serve there signs with them)
    local cfg, s = cli.project_settings(dir, true)
    if not cfg then return 1 end
    settings = s.audit
  end
  local db = cli.open_store(dir, false, sub ~= "checkpoint", sub ~= "checkpoint")
  if not db then return 1 end
  if sub == "verify" then return verify(cli, dir, db, o) end
  if sub == "export" then return export(db, since_at) end
  return checkpoint(cli, dir, db, settings, o)
end

return cmd
