-- orket audit verify|export|checkpoint: the audit's hash chain (orket.audit.chain) checked
-- whole, exported as JSON Lines, or sealed with a signed checkpoint (and retention applied).
local jsonout = require "orket.jsonout"

local USAGE = "orket audit verify | audit export [--since TIME] [--format jsonl] | audit checkpoint  [-C DIR]"
local cmd = { summary = "verify, export and sign the audit of the server's writes", usage = USAGE }
cmd.help = [[
The audit of 'orket serve' is a hash chain: each entry's hash covers the entry before, and
checkpoints are signed with the project's Ed25519 key (.orket/audit.key, mode 600).

verify reads the whole chain and names every entry changed, removed or reordered, every
checkpoint whose signature fails, and a tail cut past the newest checkpoint; exit 1 when
it finds one. export writes the entries as JSON Lines (--format jsonl, the only format),
those at or after --since TIME: a date (2026-11-01, from its midnight UTC, not local
time), a UTC time (2026-11-01T12:00:00Z; no offset such as +05:30), or 7d / 12h ago.
checkpoint signs the entries written since the last checkpoint and applies audit.
retention_days of orket.lua (entries older are removed whole, with a signed record of the
removal); 'orket serve' does this as it goes and when it stops. See docs/audit.md.]]

local ROW = jsonout.shape({ "seq", "at", "kind", "actor", "action", "card", "route", "detail", "prev", "hash", "sig" })

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

-- verify's report printed: its problems, the restores that accepted a backup's audit as
-- it was (not problems: the operator said so, and a checkpoint signed it), the summary
-- -> exit status
local function report(rep)
  for _, p in ipairs(rep.problems) do io.stdout:write("audit: ", p, "\n") end
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
  if rep.entries == 0 and #rep.problems == 0 then
    io.stdout:write("audit: empty (no write through orket serve yet)\n")
    return 0
  end
  local tail = rep.last and rep.last > rep.last_signed and string.format("; entries %d to %d are not signed yet",
    rep.last_signed + 1, rep.last) or ""
  local function n(count, one, many) return string.format("%d %s", count, count == 1 and one or many) end
  io.stdout:write(string.format("audit: %s (%s to %s), %s%s: %s\n", n(rep.entries, "entry", "entries"),
    tostring(rep.first or "-"), tostring(rep.last or "-"), n(rep.signed, "signed checkpoint", "signed checkpoints"),
    tail, #rep.problems == 0 and "verified" or n(#rep.problems, "problem", "problems")))
  return #rep.problems == 0 and 0 or 1
end

local function verify(cli, dir, db)
  local key = require "orket.audit.key" -- lazy: as the store, when the command runs
  local vmod = require "orket.audit.verify" -- lazy: as the store
  local pk, perr = key.public_key(dir)
  local head, herr = key.read_head(dir)
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
  local rep = vmod.verify(db, pk or string.rep("0", 64), head)
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

-- audit checkpoint: retention applied and a checkpoint signed now -> exit status
local function checkpoint(cli, dir, db, settings)
  local chain = require "orket.audit.chain" -- lazy: as the store
  local res, err = chain.checkpoint(db, dir, { force = true, every = settings.checkpoint_every,
    retention_days = settings.retention_days })
  db:close()
  if not res then
    cli.err("audit: %s", err)
    return 1
  end
  if res.retention then
    io.stdout:write(string.format("audit: removed %d entries older than %d days (signed record %d)\n", res.removed,
      settings.retention_days, res.retention.seq))
  end
  if res.checkpoint then
    io.stdout:write(string.format("audit: checkpoint %d signed\n", res.checkpoint.seq))
  elseif not res.retention then
    io.stdout:write("audit: nothing new to sign\n")
  end
  return 0
end

-- The words: dir, sub, since (a store time, "0" for all) | nil, exit status (said)
local function words(args, cli)
  local since, format
  local dir, pos = cli.words(cmd, args, {}, "an audit command", {
    ["--since"] = { what = "a time (2026-11-01, UTC; 2026-11-01T12:00:00Z; 7d)", set = function(v) since = v end },
    ["--format"] = { what = "jsonl", set = function(v) format = v end },
  })
  if not dir then return nil, pos end
  local sub = pos[1]
  if sub ~= "verify" and sub ~= "export" and sub ~= "checkpoint" then
    return nil, cli.usage_error(cmd, sub and ("unknown audit command '" .. sub .. "'") or "audit needs verify, export or checkpoint")
  end
  if #pos ~= 1 then return nil, cli.usage_error(cmd, "audit %s takes no other word", sub) end
  if (since or format) and sub ~= "export" then return nil, cli.usage_error(cmd, "--since and --format go with audit export") end
  if format and format ~= "jsonl" then return nil, cli.usage_error(cmd, "--format %s: the only format is jsonl", format) end
  if not since then return dir, sub, "0" end
  local at = since_time(since, require("orket.clock").system()) -- lazy: as the store
  if not at then
    return nil, cli.usage_error(cmd, "--since %s: give a date that exists (2026-11-01, from its midnight UTC), "
      .. "a UTC time ending in Z (2026-11-01T12:00:00Z; an offset such as +05:30 is not taken) or 7d / 12h", since)
  end
  return dir, sub, at
end

function cmd.run(args, cli)
  local dir, sub, since_at = words(args, cli)
  if not dir then return sub end
  local settings
  if sub == "checkpoint" then
    -- (a folder without orket.lua takes the defaults, as orket serve there signs with them)
    local cfg, s = cli.project_settings(dir, true)
    if not cfg then return 1 end
    settings = s.audit
  end
  local db = cli.open_store(dir, false, sub ~= "checkpoint", sub ~= "checkpoint")
  if not db then return 1 end
  if sub == "verify" then return verify(cli, dir, db) end
  if sub == "export" then return export(db, since_at) end
  return checkpoint(cli, dir, db, settings)
end

return cmd
