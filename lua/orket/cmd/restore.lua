-- orket restore FILE: the project's store replaced with a backup (orket backup), checked
-- whole first and replaced in one transaction (orket.store.backup). The backup's audit is
-- verified and compared with this project's before anything changes, and the restore is
-- recorded in the audit after (orket.audit.restore).
local uv = require "luv"
local backup = require "orket.store.backup"
local sealed = require "orket.store.sealed"
local audit_restore = require "orket.audit.restore"
local service = require "orket.sandboxes.service"
local errors = require "orket.errors"
local config = require "orket.config"
local project = require "orket.project"
local setup = require "orket.engine.setup"
local leases = require "orket.store.leases"
local runlease = require "orket.engine.runlease"
local fault = require "orket.engine.fault"
local restore_runs = require "orket.store.restore_runs"
local restore_branches = require "orket.actions.restore_branches"
local inert = require "orket.inert"

local USAGE = "orket restore FILE [--check] [--key-file KEYFILE | --passphrase-env NAME] [--accept-older-audit] "
  .. "[--accept-unverified-audit] [--accept-undone-revocations] [-C DIR]"
local cmd = { summary = "replace the project's store with a backup", usage = USAGE }
cmd.help = [[
Restores into a project whose store is missing (a clone with no .orket/ yet too: it is
made), or is no database any more (damaged): a
damaged file is kept beside it (.orket/orket.db.damaged-TIME), never removed. Checks FILE first: that it is undamaged (SQLite's integrity check and every JSON value of
its JSON columns, naming the table, column and row of one that is not; or every line and
count of a PostgreSQL export), that it is an orket store, and that its schema version is one
this orket knows. A plain backup carries no checksum: a changed byte inside other text (a
comment) passes; only an encrypted one (orket backup --encrypt) shows every changed byte.
Only then it replaces the store's whole content, in one transaction: anyone
reading the board sees the old content or the new, never a mix. --check only checks. Both
say what a store newer than the backup loses: its journal's events after the backup's
newest, and how many runs and cards they are of (no audit entry records a run's work).
workspace/ is not in a backup and keeps its commits: after an older backup is restored,
main can hold merges of cards the store has as not done, which orket status does not point
out; a resume works those cards again. A card's branch orket/CARD holding a commit of a
turn the restored store does not know (a dropped run's, on a card it left unfinished) has
its tip set aside as refs/orket/restored/TIME-PID/CARD, each named (git -C workspace branch
NAME REF takes one back), and goes back to the newest of its commits the restored store knows
(the card's work as of the backup, which stays; removed when it knows none: the card's next
run starts from main), and the card's directory .orket/worktrees/CARD (so is the directory of
a card the dropped runs worked on) is moved to .orket/lost/restore-TIME-PID/, made afresh from
the branch by the card's next run. Run ids the replaced store gave out are
never given again: each one the backup lacks gets a row of its own, stopped, saying so. A
store that cannot be read (damaged, missing) names neither: every card branch is looked at
then, and the run ids its turn commits name are kept. Refused
while a run works on the project; stop 'orket serve' and workers first, as their runs would
continue on cards the restore changed (a run left to the workers that the backup holds
as running is restored interrupted, named, for 'orket resume': an idle worker would carry
it on at once). Refused too while a sandbox of the project runs
(orket sandbox list): stop it first with 'orket sandbox stop ID'. A SQLite backup restores into SQLite, a PostgreSQL
export into PostgreSQL. The store gets a new id for its event streams (the id its members
are bound by kept): a web board's stream, open or opened after, starts over from the board
instead of replaying event ids of the old journal. See docs/guide/deploying.md.

A backup carries no signature: its audit (docs/audit.md) is verified first, every entry's
hash and every checkpoint's signature under this project's .orket/audit.pub, and refused
when an entry fails, a checkpoint is signed with another key, or it has no checkpoint
while this project signs its audit; --accept-unverified-audit restores it as it is. It is
refused too when it is older than a checkpoint this project signed (.orket/audit.head, or
the store's newest): restoring it would drop the entries after it; --accept-older-audit
restores it all the same, but not a backup whose entries after its newest checkpoint
differ from this store's at the same seqs (refused as unverified). The same flag is asked
when the store holds entries the backup lacks that no checkpoint signed yet (a command's
act, a secret set): the restore removes them from the audit, and its entry counts them. Such entries the store
does not hold cannot be checked: they are restored and named. It is refused too when the
store's entries it lacks hold an act that took a power away (a key revoked, a person
disabled, a password, role or membership changed, a project removed with its memberships, a
session signed out): restoring it would undo that, a leaked key or a signed-out session's
cookie working again; --accept-undone-revocations restores it all the same (then revoke,
disable, remove and sign out again what must stay so). A SQLite backup whose schema
is not exactly orket's (a trigger, view or table added or changed) is refused. A restore
checks that the store holds what was judged, appends an entry that records it (the file,
the backup's last entry and newest checkpoint, who ran it, any flag given, the entries it
could not verify) and signs a checkpoint, which .orket/audit.head then names; it exits 1,
signing nothing, when the store holds something else or the entry did not land. A restore
killed after the copy, before it is recorded, leaves .orket/restore.pending, which 'orket
audit verify' names: run the restore again.

An encrypted backup (orket backup --encrypt) needs its key file (--key-file KEYFILE) or its
passphrase (from the environment variable --passphrase-env names, else asked on the
terminal). The whole stream is checked and opened into a private file before anything
else: a wrong key, a changed byte anywhere or a cut file is refused, the store untouched.]]

-- plain(dir, file, opts) -> path of the backup to check and restore, cleanup | nil, msg,
-- CODE: an encrypted FILE opened whole into a private directory first
local function plain(dir, file, opts)
  local kind, kerr, kcode = sealed.is_sealed(file)
  if kind == nil then return nil, kerr, kcode end
  if not kind then
    if opts.key_file or opts.passphrase_env then
      return nil, config.shown(file) .. ": it is not encrypted; --key-file and --passphrase-env are for an encrypted "
        .. "backup", "EINVAL"
    end
    return file, function() end
  end
  -- its clear header says a key file sealed it: no passphrase opens it, so none is asked
  if kind == "key" and not opts.key_file and not opts.passphrase_env then
    return nil, string.format("%s is encrypted with a key file, not a passphrase: give --key-file FILE, the file "
      .. "it was sealed with", config.shown(file)), "EINVAL"
  end
  local secret, serr, scode = sealed.secret(opts, false)
  if not secret then
    return nil, string.format("%s is encrypted with a %s: %s", config.shown(file),
      kind == "key" and "key file" or "passphrase", serr), scode
  end
  -- the opened copy is the store unencrypted: a SIGINT or SIGTERM while it is opened waits
  -- for the opening to end, then removes it; copies of restores and backups stopped harder
  -- (SIGKILL, a crash) are removed here
  local place, perr, pcode = backup.plain_place(dir)
  if not place then return nil, perr, pcode end
  local ok, oerr, ocode = sealed.open_file(file, secret, place.path)
  if ok and place.stopped() then ok, oerr, ocode = nil, "stopped by " .. place.signal(), "EINTERRUPTED" end
  if not ok then
    local signal = place.signal()
    place.close()
    return nil, oerr, ocode, signal
  end
  return place.path, place.close
end

-- s with each from (plain text, not a pattern) replaced by to
local function replaced(s, from, to)
  local out, at = {}, 1
  while true do
    local i, j = s:find(from, at, true)
    if not i then break end
    out[#out + 1] = s:sub(at, i - 1) .. to
    at = j + 1
  end
  return table.concat(out) .. s:sub(at)
end

-- err with the opened copy of an encrypted FILE (file, a private path the user never gave)
-- named as FILE as given (name), and FILE printed inert (config.shown: orket.store.backup's
-- messages name a path so; another module's may name it as given)
local function as_given(err, file, name)
  if type(err) ~= "string" then return err end
  local said = config.shown(name)
  return replaced(replaced(err, file, said), config.shown(file), said)
end

-- each class of the audit's findings that refuses a restore: its code, and why, then what
-- to do (the code's remedy, which names the flag that allows it)
local CODE = { unverified = "EAUDITUNVERIFIED", older = "EAUDITOLDER", undone = "EAUDITUNDONE" }
local REFUSAL = {
  unverified = "its audit cannot be verified under this project's key: " .. errors.remedy(CODE.unverified),
  older = "its audit is older than this project's: restoring it drops the entries after it; "
    .. errors.remedy(CODE.older),
  undone = "restoring it undoes what was done since to people and keys (above); " .. errors.remedy(CODE.undone),
}

-- the backup's audit judged (orket.audit.restore); findings not accepted refuse it, each
-- named, and those accepted are said -> verdict | nil (said)
local function judged(dir, file, name, live, accept, cli)
  local v, err, code = audit_restore.judge(dir, file, live)
  if not v then
    cli.fail(code, "restore: %s (the store was not changed)", as_given(err, file, name))
    return nil
  end
  local refused = audit_restore.refused(v, accept)
  for _, class in ipairs(audit_restore.CLASSES) do
    local verb = accept[class] and ("accepted (" .. audit_restore.ACCEPT[class] .. ")") or "refused"
    for _, p in ipairs(v[class]) do cli.err("restore: %s: %s: %s", config.shown(name), verb, p) end
  end
  -- the message says the code's remedy already: no hint under it
  for _, class in ipairs(refused) do
    cli.fail(CODE[class], "restore: %s: %s (the store was not changed)", config.shown(name), REFUSAL[class])
  end
  if #refused > 0 then return nil end
  return v
end

-- What restoring FILE drops from a store newer than it (orket.store.backup.newer): said by
-- --check (would) and by the restore (were), as no audit entry records a run's work
-- -> the line | nil (the store holds nothing newer, or cannot be read)
local function newer_line(db, info, name, done)
  local ok, n = pcall(backup.newer, db, info)
  if not (ok and n) then return nil end
  local function count(k, one) return string.format("%d %s%s", n[k], one, n[k] == 1 and "" or "s") end
  return string.format("%s: the store it replaces is newer than the backup: its %s %s, up to %s, %s dropped: the "
    .. "work of %s on %s (workspace/ is not in a backup: its main keeps any of their merges, which the store then "
    .. "does not know and orket status does not point out)\n", config.shown(name), count("events", "event"),
    n.since and string.format("after the backup's newest (at %s)", n.since) or "(the backup's journal has none)",
    tostring(n.newest), done and "were" or "would be", count("runs", "run"), count("cards", "card"))
end

-- --check: FILE checked whole, its audit too, nothing changed -> exit status
local function check_only(dir, file, name, accept, cli)
  local info, err, code = backup.check(file)
  if not info then
    return cli.fail(code, "restore: %s", as_given(err, file, name)) or 1
  end
  -- the store compared with, when it opens (its newest checkpoint)
  local live = require("orket.project").open_store(dir, false, true) -- lazy: as the store
  -- a check passes only what the restore would take: an export is no SQLite store's backup
  local fits, ferr, fcode = true, nil, nil
  if live then fits, ferr, fcode = backup.fits(live, name, info) end
  if not fits then
    live:close()
    return cli.fail(fcode, "restore: %s", ferr) or 1
  end
  local v = judged(dir, file, name, live, accept, cli)
  local newer = live and newer_line(live, info, name, false)
  if live then live:close() end
  if not v then return 1 end
  io.stdout:write(string.format("%s: a good backup of %d cards (schema version %d); %s\n", config.shown(name), info.cards,
    info.version, audit_restore.summary(v)), newer or "")
  return 0
end

-- A running sandbox's row would vanish with the old content: it would run on, owned by no
-- row the board shows. It is stopped first, by the person who knows what it serves.
-- -> the refusal's text | nil when none runs
local function running_sandboxes(db)
  local live = service.running(db)
  if #live == 0 then return nil end
  local names, ids = {}, {}
  for i, row in ipairs(live) do
    -- (another machine's is live as it recorded itself: stopped there, or through a shared folder)
    names[i] = string.format("sandbox %d (%s, %s%s)", math.tointeger(row.id), tostring(row.target), tostring(row.status),
      service.elsewhere_live(row) and (", " .. service.runs_on(row) .. ": " .. tostring(service.machine_of(row))) or "")
    -- (another machine's, or another container's, whose folder is not here: asked there,
    -- or, that gone for good, forced)
    local id = math.tointeger(row.id)
    ids[i] = service.unreachable(row)
      and string.format("orket sandbox stop %d where it runs (%s; gone for good: orket sandbox stop --force %d)", id,
        tostring(service.machine_of(row)), id)
      or ("orket sandbox stop " .. id)
  end
  return string.format("%s of this project %s running; stop %s first: %s", table.concat(names, ", "),
    #live == 1 and "is" or "are", #live == 1 and "it" or "them", table.concat(ids, ", "))
end

-- A run worked from another folder of the same database (a worker's card leases, a
-- server's run lease: the store's, which every folder sees) would lose its rows under it:
-- this folder's run lock only keeps off the processes that share the folder.
-- -> the refusal's text | nil when none is live
local function worked_elsewhere(db)
  local cards = leases.live(db)
  if cards[1] then
    local l = cards[1]
    return string.format("run %s is worked by worker %s (its lease on %s is in the store, so from any folder of "
      .. "it); wait for the run to end, or stop its workers (SIGTERM) first", tostring(l.run), tostring(l.worker),
      tostring(l.card))
  end
  local runs = runlease.holders(db)
  local id = next(runs)
  if id then
    -- (the lease does not say which kind of process holds it: an orket run, or a server)
    return string.format("run %s is going in process %s (its lease is in the store, so from any folder of it); "
      .. "wait for it to end, or stop it (Ctrl-C there, or POST /v1/runs/%s/stop to its server) first", tostring(id),
      tostring(runs[id]), tostring(id))
  end
end

-- A run left to the workers that the backup holds as running (taken mid-run) would be
-- joined at once by any worker of the store still up, and the cards done since the backup
-- worked again, their effects applied twice. An idle worker holds nothing in the store (no
-- lease, no run lock) that says it is up, so the restore cannot refuse for it: such runs
-- are ended interrupted in the restore's transaction instead (on SQLite, the new id's),
-- for a resume the operator decides. -> {{id=, target=}}
local REASON = backup.SETTLE_REASON
local function settle_queued(db)
  local ended = {}
  for _, r in ipairs(leases.queued(db)) do
    local id = math.tointeger(r.id)
    if assert(db:finish_run(id, "interrupted", { running = true, reason = REASON })) then
      ended[#ended + 1] = { id = id, target = r.target }
    end
  end
  return ended
end

-- What the store about to be replaced gave out and worked on, read before the copy: its run
-- ids (kept in the copy's transaction: orket.store.restore_runs), and the cards runs worked
-- on after the backup's newest event (whose branches and directories may hold that work).
-- A store that could not be read (unread: damaged or missing, a new one made in its place;
-- or a read that failed) gives neither: then every card branch is looked at, and the run ids
-- its turn commits name are kept (orket.actions.restore_branches.scan). -> needs
-- (restore_runs.needs), what is said of reads that failed | nil
local function given_out(dir, db, checked, unread)
  local gerr
  if not unread then
    local ok, given, worked = pcall(function()
      return restore_runs.given(db), restore_runs.worked_cards(db, checked.newest and checked.newest.at)
    end)
    if ok then return restore_runs.needs { given = given, cards = worked } end
    gerr = tostring(given)
  end
  local ok, scan, serr = pcall(restore_branches.scan, { dir = dir })
  if not (ok and scan) then
    return restore_runs.needs { all = true }, string.format("%s, nor workspace/'s branches (%s): run ids it gave out "
      .. "may be given again", gerr and ("the store's run ids and worked cards could not be read (" .. gerr .. ")")
      or "the store it replaces could not be read", inert.line(ok and serr or scan))
  end
  local said = gerr and string.format("the store's run ids and worked cards could not be read (%s): every card "
    .. "branch is looked at instead, and the run ids its turn commits name are kept", gerr)
  -- (no card is known worked: all looks at every branch, and no directory goes but with its
  -- branch's commits)
  return restore_runs.needs { given = scan.upto and { upto = scan.upto }, all = true, guessed = true }, said
end

-- the copy's transaction's own writes, after the content is in: the runs left to the workers
-- ended (settle_queued), and the run ids given kept (.kept = {from=, to=} | nil)
local function settler(given, file)
  return function(db)
    local ended = settle_queued(db)
    ended.kept = restore_runs.keep(db, given, file)
    return ended
  end
end

-- The branches and directories of work the restored store does not know set aside
-- (orket.actions.restore_branches), each said -> exit status (1: one could not be)
local function branches_aside(dir, needs, cli)
  local db = cli.open_store(dir, false)
  if not db then return 1 end
  local stamp = os.date("!%Y%m%dT%H%M%SZ") .. "-" .. math.tointeger(uv.os_getpid())
  local ok, set, problems = pcall(restore_branches.set_aside, { dir = dir, db = db, worked = needs.cards,
    all = needs.all, stamp = stamp })
  db:close()
  if not ok then set, problems = {}, { tostring(set) } end
  for _, a in ipairs(set) do
    if a.ref and a.keep then
      io.stdout:write(string.format("orket/%s held %d turn commit%s the restored store does not know (the newest %s, "
        .. "%s): its tip %s was set aside as %s (git -C workspace branch NAME %s takes it back), and the branch moved "
        .. "back to %s (%s), the newest of its commits the restored store knows, which stays on it with those before "
        .. "it\n", a.card, a.unknown, a.unknown == 1 and "" or "s", a.turn.id:sub(1, 12), inert.line(a.turn.summary),
        a.id:sub(1, 12), a.ref, a.ref, a.keep.id:sub(1, 12), inert.line(a.keep.summary)))
    elseif a.ref then
      io.stdout:write(string.format("orket/%s held commits the restored store does not know (the newest %s, %s), and "
        .. "none it knows: set aside as %s, so that the card's next run starts from main (git -C workspace branch "
        .. "NAME %s takes it back)\n",
        a.card, a.turn.id:sub(1, 12), inert.line(a.turn.summary), a.ref, a.ref))
    end
    if a.moved then
      io.stdout:write(string.format("%s's directory .orket/worktrees/%s, of work the restored store does not know, "
        .. "was moved to %s\n", a.card, a.card, a.moved))
    end
  end
  for _, p in ipairs(problems) do
    cli.fail("EGIT", "restore: the store was restored, but %s: the card's next run would take that work up as its "
      .. "own; set it aside by hand (git -C workspace branch -m orket/CARD NAME, and move .orket/worktrees/CARD and "
      .. ".orket/worktree-state/CARD out of .orket/) before it runs", p)
  end
  return #problems == 0 and 0 or 1
end

-- Before the store is replaced: no sandbox runs, FILE is whole, its audit passes, and the
-- restore's checkpoint can be signed here -> verdict, FILE's check | nil (said)[, 75 when
-- another process works the project: cli.fail's]
local function ready(dir, db, file, name, accept, cli, checked)
  local info, err, code = checked, nil, nil
  if not info then info, err, code = backup.check(file) end
  if info then
    local fits
    fits, err, code = backup.fits(db, name, info)
    if fits then
      err = running_sandboxes(db)
      code = err and "ESANDBOXRUNNING"
    end
    if fits and not err then
      err = worked_elsewhere(db)
      code = err and "ELOCKED"
    end
    if err then info = nil end
  end
  if not info then return nil, cli.fail(code, "restore: %s (the store was not changed)", as_given(err, file, name)) end
  local v = judged(dir, file, name, db, accept, cli)
  if not v then return nil end
  local ok, kerr, kcode = audit_restore.can_record(dir, v, accept, db)
  if not ok then
    cli.fail(kcode, "restore: %s: the restore's audit checkpoint could not be signed (the store was not changed)", kerr)
    return nil
  end
  return v, info
end

-- After the store holds FILE's content: its schema brought up to date (an older backup's)
-- and the restore recorded in the audit, still under the project's lock -> exit status
local function recorded(dir, v, name, info, accept, cli)
  local db = cli.open_store(dir, false)
  if not db then return 1 end
  local file = uv.fs_realpath(name) or name
  local row, cp, code = audit_restore.record(db, dir, v, { actor = cli.operator().seat, file = file, accept = accept,
    after_entry = function() fault.hit("after_restore_entry") end })
  db:close()
  io.stdout:write(string.format("restored %d cards (schema version %d) from %s\n", info.cards, info.version,
    config.shown(name)), info.dropped or "")
  for _, r in ipairs(info.settled or {}) do
    io.stdout:write(string.format("run %d (%s) was left to the workers when the backup was taken: it is interrupted "
      .. "now, so that no worker carries it on by itself; orket resume %d carries it on\n", r.id, tostring(r.target), r.id))
  end
  local kept = info.settled and info.settled.kept
  if kept then
    local one = kept.from == kept.to
    io.stdout:write(string.format("run id%s given out by the store it replaced, and the backup does not hold %s: "
      .. "a row %s (%s) keeps %s, so that no later run gets %s again\n",
      one and (" " .. kept.from .. " was") or string.format("s %d to %d were", kept.from, kept.to),
      one and "that run" or "those runs", one and "of its own" or "each", restore_runs.STATUS, one and "it" or "them",
      one and "it" or "one"))
  end
  if not row then
    return cli.fail(code, "restore: the store was restored, but its audit entry or checkpoint was not written: %s", cp) or 1
  end
  local what = audit_restore.summary(v):gsub("^its ", "the backup's ")
  io.stdout:write(string.format("audit: %s; the restore is entry %d%s\n", what, row.seq,
    cp and string.format(", signed by checkpoint %d (.orket/audit.head)", cp.seq) or ""))
  cli.say_operator()
  if v.dropped then
    io.stdout:write(string.format("audit: the store's entries up to %d were replaced by the backup's; entry %d "
      .. "records it%s\n", v.previous.seq, row.seq, v.lost and string.format(", and the %d entries dropped (dropped=%d)",
      v.lost.n, v.lost.n) or ""))
  end
  return 0
end

-- The damaged store at path (and its -wal and -shm) renamed to path.damaged-TIME -> that
-- name | nil, message
local function set_aside(path)
  local kept = path .. ".damaged-" .. os.date("!%Y%m%dT%H%M%SZ")
  for _, ext in ipairs { "", "-wal", "-shm" } do
    if uv.fs_lstat(path .. ext) then
      local ok, rerr = os.rename(path .. ext, kept .. ext)
      if not ok then return nil, rerr end
    end
  end
  return kept
end

-- Whether dir's store is a SQLite one that is missing (in a project: its orket.lua, its
-- epics/ or its .orket/ is there) or no database -> why, ENOENT or ECORRUPT | nil
local function lost(dir)
  local db, err, code = project.open_store(dir, false)
  if db then db:close() end
  if db or not (code == "ENOENT" or code == "ECORRUPT") or project.database_url(dir) then return nil end
  local function here(f) return uv.fs_stat((dir or ".") .. "/" .. f) ~= nil end
  if code == "ENOENT" and not (here("orket.lua") or here("epics") or here(".orket")) then return nil end
  return err, code
end

-- A SQLite store that cannot be opened as one, missing or not a database, is what a restore
-- is for: under the project's lock, a damaged file is kept beside it (its -wal and -shm
-- too), never removed, and a new empty store made for the backup to fill; undo() (with db
-- closed) takes the new store away and puts the damaged one back, for a restore refused.
-- Any other failure to open (a PostgreSQL store's, no project here) is said as it is.
-- FILE (file) is checked whole before the damaged store is moved (a kill in a long check
-- left it moved, an empty store in its place), and the move is said only once the restore
-- is done (kept(): a refused one puts the damaged store back).
-- -> db, lock, undo, FILE's check, kept, unread (true: the store replaced could not be
-- read, a new one made in its place) | nil
-- A project's files without its .orket/ (a clone on a new machine): the folder the run lock
-- and the store live in, made first, private as open_store makes it -> true | nil (said)
local function made_home(dir, say, cli)
  local home = (dir or ".") .. "/.orket"
  local ok, merr = project.ensure_home(home, uv.fs_lstat(home))
  if not ok then
    cli.fail("EIO", "%s", say(string.format("%s could not be made: %s", config.shown(home), tostring(merr))))
    return nil
  end
  return true
end

-- what takes the new store at path away and puts the damaged one (kept, when one was) back
local function undoer(path, kept)
  return function()
    for _, ext in ipairs { "", "-wal", "-shm" } do
      uv.fs_unlink(path .. ext)
      if kept and uv.fs_lstat(kept .. ext) then os.rename(kept .. ext, path .. ext) end
    end
  end
end

-- what is said of a damaged store moved aside, once the restore is done
local function kept_line(path, err, kept)
  return string.format("restore: %s could not be opened (%s): kept as %s, and a new store made for the backup",
    config.shown(path), (tostring(err):gsub("^store: cannot open [^:]*: ", "")), config.shown(kept))
end

-- The store to restore into, locked: the project's, or a new one where it is missing or
-- damaged -> db, lock, undo, FILE's check, the damaged store's line, unread | nil (said)[,
-- exit status: 75 when another process holds the lock]
local function recovered(dir, file, name, cli)
  local say = function(m) return string.format("restore: %s: %s (the store was not changed)", config.shown(name), m) end
  local err, code = lost(dir)
  if not err then return cli.open_store_locked(dir, say, "restore") end
  if code == "ENOENT" and not made_home(dir, say, cli) then return nil end
  local lock, lerr, lcode = setup.lock(dir, { what = "restore" })
  if not lock then return nil, cli.fail(lcode, "%s", say(lerr)) end
  local path, kept, merr = project.db_path(dir), nil, nil
  local checked, cerr, ccode = backup.check(file)
  if not checked then
    lock:release()
    cli.fail(ccode, "restore: %s (the store was not changed)", as_given(cerr, file, name))
    return nil
  end
  local said
  if code == "ECORRUPT" then
    kept, merr = set_aside(path)
    if not kept then
      lock:release()
      cli.fail("EIO", "%s", say("the damaged store could not be moved aside: " .. tostring(merr)))
      return nil
    end
    said = kept_line(path, err, kept)
  end
  local undo = undoer(path, kept)
  local fresh, ferr, fcode = project.open_store(dir, true)
  if not fresh then
    undo()
    lock:release()
    cli.fail(fcode, "restore: %s", ferr)
    return nil
  end
  return fresh, lock, undo, checked, said, true
end

-- The store's content replaced with FILE's (orket.store.backup), once what the store it
-- replaces gave out and worked on is read (given_out), with what an earlier restore killed
-- after its copy read (its note: the store it replaced is gone), and noted in turn for a
-- rerun; the copy's transaction keeps the ids -> info | nil, msg, CODE; the needs
local function copied(dir, db, file, name, checked, before, unread, cli)
  checked.dropped = newer_line(db, checked, name, true)
  local needs, gerr = given_out(dir, db, checked, unread)
  if gerr then cli.err("restore: %s", gerr) end
  needs = restore_runs.merged(needs, before and restore_runs.noted(dir) or nil)
  local noted, nerr, ncode = restore_runs.note(dir, needs)
  if not noted then
    audit_restore.unmark(dir, before)
    return nil, "what the restore needs of the store it replaces could not be written: " .. tostring(nerr),
      ncode or "EIO"
  end
  local given = needs.upto and needs or nil
  local info, err, code = backup.restore(db, file, checked, settler(given, uv.fs_realpath(name) or name))
  if not info then
    audit_restore.unmark(dir, before)
    if not before then restore_runs.unnote(dir) end -- (an earlier restore's stays: its marker is back)
  end
  if info then fault.hit("after_restore_copy") end
  return info, err, code, needs
end

-- Marked before the copy, unmarked once recorded: a kill between leaves the marker, which
-- audit verify names (orket.audit.restore) -> the marker it replaced (false: none) | nil (said)
local function marked(dir, name, accept, cli)
  local before, err, code = audit_restore.mark(dir, uv.fs_realpath(name) or name, accept)
  if before == nil then cli.fail(code, "restore: %s: %s (the store was not changed)", config.shown(name), err) end
  return before
end

-- The store replaced with FILE's content, under the project's lock -> exit status
local function replace(dir, file, name, accept, cli)
  local db, lock, undo, precheck, kept, unread = recovered(dir, file, name, cli)
  if not db then return lock or 1 end -- (then a busy project's exit status: cli.fail's)
  local v, checked = ready(dir, db, file, name, accept, cli, precheck)
  local refusal = not v and checked or nil -- (as recovered's)
  local info, err, code, before
  if v then
    before = marked(dir, name, accept, cli)
    if before == nil then v = nil end
  end
  local needs
  if v then info, err, code, needs = copied(dir, db, file, name, checked, before, unread, cli) end
  db:close()
  if not info then
    if v then cli.fail(code, "restore: %s (the store was not changed)", as_given(err, file, name)) end
    if undo then undo() end
    lock:release()
    return refusal or 1
  end
  if kept then cli.err("%s", kept) end
  local status = recorded(dir, v, name, info, accept, cli)
  -- before the marker goes: a restore killed before this is run again, and finds them then,
  -- by what this one noted before its copy (one that could not be set aside is said, and
  -- the restore is done all the same)
  local aside = status == 0 and branches_aside(dir, needs, cli) or 0
  -- (a restore that failed after the copy keeps it: its message says to restore again)
  if status == 0 and not info.unrenewed then
    audit_restore.unmark(dir)
    restore_runs.unnote(dir)
  end
  lock:release()
  if info.unrenewed then
    -- the content is restored; only the new id, which tells event streams to start over, is not
    cli.fail("ESQL", "restore: the store was restored, but its id was not made anew (%s): a client following "
      .. "its events may replay ids of the old journal; restore again", info.unrenewed)
    return 1
  end
  return status ~= 0 and status or aside
end

function cmd.run(args, cli)
  local only_check
  local opts, accept = {}, {}
  local dir, pos = cli.words(cmd, args, {
    ["--check"] = function() only_check = true end,
    [audit_restore.ACCEPT.older] = function() accept.older = true end,
    [audit_restore.ACCEPT.unverified] = function() accept.unverified = true end,
    [audit_restore.ACCEPT.undone] = function() accept.undone = true end,
  }, "a file name", {
    ["--key-file"] = { what = "a key file", set = function(v) opts.key_file = v end },
    ["--passphrase-env"] = { what = "the name of an environment variable", set = function(v) opts.passphrase_env = v end },
  })
  if not dir then return pos end
  if #pos ~= 1 then return cli.usage_error(cmd, "restore needs one FILE") end
  local file, cleanup, pcode, signal = plain(dir, pos[1], opts)
  if not file then
    cli.fail(pcode, "restore: %s (the store was not changed)", as_given(cleanup, pos[1], pos[1]))
    return backup.STOP_STATUS[signal] or 1
  end
  local status
  if only_check then
    status = check_only(dir, file, pos[1], accept, cli)
  else
    status = replace(dir, file, pos[1], accept, cli)
  end
  cleanup()
  return status
end

return cmd
