-- orket restore FILE: the project's store replaced with a backup (orket backup), checked
-- whole first and replaced in one transaction (orket.store.backup).
local backup = require "orket.store.backup"
local sealed = require "orket.store.sealed"
local audit_key = require "orket.audit.key"
local service = require "orket.sandboxes.service"

local USAGE = "orket restore FILE [--check] [--key-file KEYFILE | --passphrase-env NAME] [-C DIR]"
local cmd = { summary = "replace the project's store with a backup", usage = USAGE }
cmd.help = [[
Checks FILE first: that it is undamaged (SQLite's integrity check, or every line and count
of a PostgreSQL export), that it is an orket store, and that its schema version is one this
orket knows. Only then it replaces the store's whole content, in one transaction: anyone
reading the board sees the old content or the new, never a mix. --check only checks. Refused
while a run works on the project; stop 'orket serve' and workers first, as their runs would
continue on cards the restore changed. Refused too while a sandbox of the project runs
(orket sandbox list): stop it first with 'orket sandbox stop ID'. A SQLite backup restores into SQLite, a PostgreSQL
export into PostgreSQL. See docs/guide/deploying.md.

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
      return nil, file .. ": it is not encrypted; --key-file and --passphrase-env are for an encrypted backup", "EINVAL"
    end
    return file, function() end
  end
  local secret, serr, scode = sealed.secret(opts, false)
  if not secret then return nil, string.format("%s is encrypted with a %s: %s", file, kind == "key" and "key file" or "passphrase", serr), scode end
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

-- --check: FILE checked whole, nothing changed -> exit status
local function check_only(file, name, cli)
  local info, err, code = backup.check(file)
  if not info then
    cli.fail(code, "restore: %s", err)
    return 1
  end
  io.stdout:write(string.format("%s: a good backup of %d cards (schema version %d)\n", name, info.cards, info.version))
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
    names[i] = string.format("sandbox %d (%s, %s)", math.tointeger(row.id), tostring(row.target), tostring(row.status))
    ids[i] = "orket sandbox stop " .. math.tointeger(row.id)
  end
  return string.format("%s of this project %s running; stop %s first: %s", table.concat(names, ", "),
    #live == 1 and "is" or "are", #live == 1 and "it" or "them", table.concat(ids, ", "))
end

-- The store replaced with FILE's content, under the project's lock -> exit status
local function replace(dir, file, name, cli)
  local db, lock = cli.open_store_locked(dir)
  if not db then return 1 end
  local busy = running_sandboxes(db)
  local info, err, code
  if busy then
    err, code = busy, "EBUSY"
  else
    info, err, code = backup.restore(db, file)
  end
  db:close()
  lock:release()
  if not info then
    cli.fail(code, "restore: %s (the store was not changed)", err)
    return 1
  end
  -- the store's audit chain is the backup's now: the newest checkpoint kept outside the
  -- store named the old one's, and the next checkpoint names the new one's
  audit_key.forget_head(dir)
  -- an older backup's schema is brought up to date now, not at the next command
  local again = cli.open_store(dir, false)
  if not again then return 1 end
  again:close()
  io.stdout:write(string.format("restored %d cards (schema version %d) from %s\n", info.cards, info.version, name))
  return 0
end

function cmd.run(args, cli)
  local only_check
  local opts = {}
  local dir, pos = cli.words(cmd, args, { ["--check"] = function() only_check = true end }, "a file name", {
    ["--key-file"] = { what = "a key file", set = function(v) opts.key_file = v end },
    ["--passphrase-env"] = { what = "the name of an environment variable", set = function(v) opts.passphrase_env = v end },
  })
  if not dir then return pos end
  if #pos ~= 1 then return cli.usage_error(cmd, "restore needs one FILE") end
  local file, cleanup, pcode, signal = plain(dir, pos[1], opts)
  if not file then
    cli.fail(pcode, "restore: %s (the store was not changed)", cleanup)
    return backup.STOP_STATUS[signal] or 1
  end
  local status
  if only_check then
    status = check_only(file, pos[1], cli)
  else
    status = replace(dir, file, pos[1], cli)
  end
  cleanup()
  return status
end

return cmd
