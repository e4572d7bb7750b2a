-- orket backup FILE: the project's store copied into FILE (orket.store.backup) while it keeps
-- serving: SQLite's online backup, or one snapshot of a PostgreSQL database.
local backup = require "orket.store.backup"
local sealed = require "orket.store.sealed"
local secrets = require "orket.store.secrets"
local project = require "orket.project"
local config = require "orket.config"
local store_projects = require "orket.store.projects"
local uv = require "luv"

local MIN_PASSPHRASE = 8

local USAGE = "orket backup FILE [--encrypt [--key-file KEYFILE | --passphrase-env NAME]] [-C DIR]"
local cmd = { summary = "copy the project's store into a file, while it runs", usage = USAGE }
cmd.help = [[
Copies the board, its journal, runs, keys' hashes and everything else in the store into
FILE, replaced atomically once the copy is whole and checked. A running 'orket serve',
'orket run' or worker goes on meanwhile. On SQLite FILE is an orket store itself (SQLite's
online backup); on PostgreSQL it is one consistent snapshot of every table as JSON Lines.
Not in it: workspace/ (a git repository: back it up with git), .orket/keys.pepper
(the secret API keys are checked with; keep it apart, as a secret), the audit's keys
(.orket/audit.key, audit.pub) and the secret store (.orket/secrets.json, secrets.key).
'orket restore FILE' puts it back. FILE is a regular file outside any .orket/, named itself
(not a symbolic link: /dev/stdout is refused), never the store of this project or of one
its server hosts, nor a key file (--key-file, ORKET_SECRETS_KEY_FILE, ORKET_KEY_FILE). An
existing FILE must be an earlier orket backup (plain, encrypted or a PostgreSQL export) or
empty: anything else (orket.lua, a git index) is refused, not replaced. See
docs/guide/deploying.md.

--encrypt writes FILE as an authenticated encrypted stream (XChaCha20-Poly1305), so a
changed or cut file is refused by 'orket restore'. A plain FILE carries no checksum: the
restore's check finds a damaged page, a cut file or a JSON value that is no longer JSON,
not a changed byte inside other text. Its key is a key file's 32 bytes
(--key-file KEYFILE, mode 600: head -c 32 /dev/urandom > KEYFILE; outside .orket/ and never
the secret store's key, which Orket replaces), or a passphrase through
Argon2id, read from the environment variable --passphrase-env names or asked on the
terminal (twice); it has at least 8 bytes. A passphrase is never taken from the command
line. Without the key or passphrase the backup cannot be restored.]]

-- the plain copy goes to a private directory under .orket/, then is sealed into FILE. A
-- signal before the seal removes the copy and ends the backup as the signal would have
-- (128 + its number), FILE not written; said at once, and a second ends it at once.
local function encrypted(db, dir, file, secret, say)
  local place, perr, pcode = backup.plain_place(dir, say)
  if not place then return nil, perr, pcode end
  local info, err, code = backup.backup(db, place.path, place.guard, { private = true })
  if info and place.stopped() then info = nil end
  if info then
    local ok
    ok, err, code = sealed.seal_file(place.path, file, secret)
    -- a signal sent while sealing is seen after FILE is whole: the backup is kept
    if not ok then info = nil end
  end
  local signal = place.signal()
  place.close()
  if signal then return nil, "stopped by " .. signal .. "; nothing was written", "EINTERRUPTED", signal end
  return info, err, code
end

-- The key a new encrypted backup is sealed with -> secret | nil, msg, CODE. A passphrase is
-- at least as long as an account's password (orket.serve.accounts MIN_PASSWORD): the file
-- is attacked offline and kept for years. Restore still opens a file sealed with a shorter one.
local function new_secret(opts)
  local secret, serr, scode = sealed.secret(opts, true)
  if secret and secret.pass and #secret.pass < MIN_PASSPHRASE then
    return nil, string.format("%s has %d bytes; an encrypted backup's passphrase needs at least %d",
      opts.passphrase_env and ("--passphrase-env " .. opts.passphrase_env) or "the passphrase",
      #secret.pass, MIN_PASSPHRASE), "EINVAL"
  end
  return secret, serr, scode
end

-- The key files FILE may not replace (backup.target): the encrypted backup's own, whose
-- loss would lose the backup, and those the project reads from outside .orket/ (the secret
-- store's, serve's given operator key), which no backup holds
local function key_files(dir, opts)
  local keys = {}
  if opts.key_file then
    keys[#keys + 1] = { path = opts.key_file, what = string.format("the key file it is encrypted with "
      .. "(--key-file %s): the backup would replace the key that opens it", config.shown(opts.key_file)) }
  end
  local named = os.getenv(secrets.KEY_ENV)
  keys[#keys + 1] = { path = select(2, secrets.paths(dir)), what = string.format("the secret store's key file%s: "
    .. "replaced, the secrets could never be opened again", (named and named ~= "") and (" (" .. secrets.KEY_ENV .. ")") or "") }
  local given = os.getenv("ORKET_KEY_FILE")
  if given and given ~= "" then
    keys[#keys + 1] = { path = given, what = "the file ORKET_KEY_FILE names, which gives 'orket serve' its "
      .. "operator key: replaced, the key would be lost" }
  end
  return keys
end

-- --key-file KEYFILE judged -> true | nil, msg: never a key Orket replaces, which would
-- leave the backup sealed under a key nobody has: the secret store's (`orket secrets
-- rotate` writes a new one over it), or any file in the project's .orket/ (rotations and
-- `audit checkpoint --new-key` replace theirs)
local function own_key(dir, home, key_file)
  local real = uv.fs_realpath(key_file)
  if not real then return true end -- sealed.secret says it is missing
  local store_key = select(2, secrets.paths(dir))
  if real == uv.fs_realpath(store_key) then
    return nil, string.format("--key-file %s: is the secret store's key file (%s): 'orket secrets rotate' replaces "
      .. "it with a new key, and this backup could never be restored; make a key of the backup's own, kept apart: "
      .. "head -c 32 /dev/urandom > KEYFILE; chmod 600 KEYFILE", config.shown(key_file), config.shown(store_key)), "EINVAL"
  end
  local hreal = uv.fs_realpath(home)
  if hreal and real:sub(1, #hreal + 1) == hreal .. "/" then
    return nil, string.format("--key-file %s: is in the project's %s, whose keys Orket replaces (secrets rotate, "
      .. "audit checkpoint --new-key) and which no backup holds; keep the backup's key file elsewhere: "
      .. "head -c 32 /dev/urandom > KEYFILE; chmod 600 KEYFILE", config.shown(key_file), config.shown(home)), "EINVAL"
  end
  return true
end

-- orket.lua's serve.projects (name -> folder), unchecked | nil: an orket.lua that does not
-- load names none
local function configured(dir)
  local data = config.read(dir)
  local named = type(data) == "table" and type(data.serve) == "table" and data.serve.projects
  return type(named) == "table" and named or nil
end

-- The other projects whose store and .orket/ FILE may not be (backup.target's
-- opts.projects): those orket.lua's serve.projects names (named, configured's; relative to
-- this project's folder, as orket serve takes them) and, the store open (db), those `orket
-- projects add` added to it
local function hosted(dir, named, db)
  local base = uv.fs_realpath(dir or ".") or (dir or ".")
  local out = {}
  local function add(name, pdir)
    if type(name) ~= "string" or type(pdir) ~= "string" or pdir == "" then return end
    if pdir:sub(1, 1) ~= "/" then pdir = uv.fs_realpath(base .. "/" .. pdir) or (base .. "/" .. pdir) end
    local store = project.db_path(pdir)
    out[#out + 1] = { name = name, dir = pdir, store = store, home = store:match("^(.*)/[^/]+$") }
  end
  for name, pdir in pairs(named or {}) do add(name, pdir) end
  if db then
    local ok, rows = pcall(store_projects.list, db) -- (a store older than the table has none)
    for _, r in ipairs(ok and rows or {}) do add(r.name, r.dir) end
  end
  return out
end

-- FILE and --key-file judged, with the projects orket.lua names (named) and the store db
-- (once open) hosts -> target's opts | nil, msg, CODE
local function judged(dir, file, opts, named, db)
  local home = (dir == nil or dir == ".") and ".orket" or (dir .. "/.orket")
  local topts = { store = project.db_path(dir), home = home, keys = key_files(dir, opts),
    projects = hosted(dir, named, db) }
  local fits, err, code = backup.target(db, file, topts)
  if fits and opts.key_file then fits, err, code = own_key(dir, home, opts.key_file) end
  if not fits then return nil, err, code end
  return topts
end

-- err with the copy's private name (FILE.part-PID, removed, a name the user never gave)
-- said as the copy for FILE; a copy found damaged is the store's damage, copied. FILE is
-- printed inert (config.shown), as orket.store.backup's messages name it; another
-- module's (the sealed stream's) may name it as given.
local function as_said(err, code, file, store)
  if type(err) ~= "string" then return err end
  local said = config.shown(file)
  local n = 0
  if said ~= file then err = err:gsub(file:gsub("%p", "%%%0"), (said:gsub("%%", "%%%%"))) end
  err, n = err:gsub(said:gsub("%p", "%%%0") .. "%.part%-%d+", (("the copy for " .. said):gsub("%%", "%%%%")))
  if n == 0 then return err end
  if code == "ECORRUPT" then
    err = err .. string.format(" (nothing was written to %s: the store %s may be damaged)", config.shown(file),
      config.shown(store))
  end
  return err
end

-- plain(db, file, say, topts) -> backup.backup's results. The copy goes to FILE.part-PID
-- first: a signal before it is renamed onto FILE removes it (and its journal) and leaves
-- FILE as it was, as an encrypted backup does; said at once, and a second ends it at once.
local function plain(db, file, say, topts)
  local guard = backup.on_stop(say)
  local res = table.pack(backup.backup(db, file, guard, topts))
  guard.close()
  return table.unpack(res, 1, res.n)
end

-- A backup made, said -> 0
local function done(info, file, secret)
  io.stdout:write(string.format("backed up %d cards (schema version %d, %s%s) to %s\n", info.cards, info.version,
    info.format == "pg" and "PostgreSQL export" or "SQLite store", secret and ", encrypted" or "", config.shown(file)))
  return 0
end

-- FILE and KEYFILE judged before a passphrase is asked for and anything is copied, and
-- FILE again once the store is open, with the projects it hosts (their folders are met by
-- path before: only another way to one, a bind mount, waits for it); backup.backup judges
-- its own path again, the plain copy's when encrypted -> db, target's opts, the secret
-- (encrypt) | nil, said
local function prepared(cli, dir, file, opts, encrypt)
  local named = configured(dir)
  local topts, err, code = judged(dir, file, opts, named)
  local secret
  if topts and encrypt then
    secret, err, code = new_secret(opts)
    if not secret then topts = nil end
  end
  local db = topts and cli.open_store(dir, false, true, true)
  if topts and not db then return nil end
  if db then topts, err, code = judged(dir, file, opts, named, db) end
  if not topts then
    if db then db:close() end
    cli.fail(code, "backup: %s", err)
    return nil
  end
  return db, topts, secret
end

function cmd.run(args, cli)
  local opts, encrypt = {}, false
  local dir, pos = cli.words(cmd, args, { ["--encrypt"] = function() encrypt = true end }, "a file name", {
    ["--key-file"] = { what = "a key file", set = function(v) opts.key_file = v end },
    ["--passphrase-env"] = { what = "the name of an environment variable", set = function(v) opts.passphrase_env = v end },
  })
  if not dir then return pos end
  if #pos ~= 1 then return cli.usage_error(cmd, "backup needs one FILE") end
  if not encrypt and (opts.key_file or opts.passphrase_env) then
    return cli.usage_error(cmd, "--key-file and --passphrase-env go with --encrypt")
  end
  local db, topts, secret = prepared(cli, dir, pos[1], opts, encrypt)
  if not db then return 1 end
  backup.sweep_parts(pos[1])
  local function say(signal)
    cli.err("backup: %s: stopping; %s will not be changed (send it again to end at once)", signal, config.shown(pos[1]))
  end
  local info, err, code, signal
  if secret then info, err, code, signal = encrypted(db, dir, pos[1], secret, say)
  else info, err, code, signal = plain(db, pos[1], say, topts) end
  db:close()
  if not info then
    cli.fail(code, "backup: %s", as_said(err, code, pos[1], project.db_path(dir)))
    return backup.STOP_STATUS[signal] or 1
  end
  return done(info, pos[1], secret)
end

return cmd
