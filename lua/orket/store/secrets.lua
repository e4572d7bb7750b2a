-- orket.store.secrets: the project's secret store (docs/secrets.md). Named values, each
-- sealed on its own under a key file with libsodium's secretstream (orket.c.seal, the
-- encrypted backups' format, in memory), kept in .orket/secrets.json with the times each was
-- set and rotated. Names and times are clear (listing and checking orket.lua need no key);
-- a value is only ever in the file sealed, and leaves this module only through reveal.
local seal = require "orket.c.seal"
local crypto = require "orket.c.crypto"
local cjson = require "cjson.safe"
local jsonout = require "orket.jsonout"
local uv = require "luv"
local scriptfile = require "orket.scriptfile"
local lockfile = require "orket.c.lockfile"
local sealed = require "orket.store.sealed"
local nearest = require "orket.nearest"
local read = require("orket.fieldline").read
local write_whole = require("orket.fieldline").write_whole

local M = {}

M.KEY_ENV = "ORKET_SECRETS_KEY_FILE" -- the key file's path, when not .orket/secrets.key
M.MAX_VALUE = 65536
M.MAX_NAME = 64
local MAX_FILE = 16 * 1024 * 1024
local VERSION = 1

--- check_name(name) -> true | nil, msg: a name is a word of letters, digits and _ that
--- does not start with a digit, at most 64 bytes (so it is also a variable's name). The
--- message says what is wrong without repeating the word: a refused name is often the
--- value itself (`secrets set NAME=VALUE`, or the name left out).
function M.check_name(name)
  if type(name) == "string" and name:match("^[%a_][%w_]*$") and #name <= M.MAX_NAME then return true end
  local why
  if type(name) ~= "string" then why = "got " .. type(name)
  elseif name == "" then why = "this one is empty"
  elseif name:find("=", 1, true) then why = "this one holds '=': a value is never part of the name"
  elseif #name > M.MAX_NAME then why = string.format("this one has %d bytes", #name)
  elseif name:match("^%d") then why = "this one starts with a digit"
  else why = "this one holds another character" end
  return nil, string.format("a secret's name is letters, digits and _, not starting with a digit, at most %d bytes "
    .. "(%s)", M.MAX_NAME, why)
end

--- paths(dir[, getenv]) -> store file, key file
function M.paths(dir, getenv)
  local home = (dir or ".") .. "/.orket"
  local k = (getenv or os.getenv)(M.KEY_ENV)
  return home .. "/secrets.json", (k and k ~= "") and k or home .. "/secrets.key"
end

local function hex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
local function unhex(s) return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)) end

-- the key's id in the store: a keyed hash that says which key sealed it, and nothing of it
local function key_id(key) return crypto.hash("orket secrets key", 16, key) end

local function now() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

-- the store file's document, checked: {version, key_id, secrets = {NAME = {value, set_at, rotated_at}}}
local function load(dir)
  local path = M.paths(dir)
  local st = uv.fs_stat(path)
  if not st then return { version = VERSION, secrets = {} } end
  if st.size > MAX_FILE then return nil, path .. ": larger than 16 MiB; not a secret store", "EINVAL" end
  local doc = cjson.decode(read(path) or "")
  local bad = type(doc) ~= "table" or doc.version ~= VERSION or type(doc.secrets) ~= "table"
  for name, s in pairs(not bad and doc.secrets or {}) do
    if not M.check_name(name) or type(s) ~= "table" or type(s.value) ~= "string" or not s.value:match("^%x+$")
        or type(s.set_at) ~= "string" or (s.rotated_at ~= nil and type(s.rotated_at) ~= "string") then
      bad = true
    end
  end
  if bad then return nil, path .. ": not a secret store of this version (was it edited?)", "EINVAL" end
  return doc
end

-- writes the document whole (0600, flushed to the disk, then renamed over the store)
local function save(dir, doc)
  local list = {}
  for name, s in pairs(doc.secrets) do list[name] = { value = s.value, set_at = s.set_at, rotated_at = s.rotated_at } end
  return write_whole(M.paths(dir), jsonout.encode { version = VERSION, key_id = doc.key_id, secrets = list }, 384)
end

-- a new key file at path (0600, never over an existing file): 32 random bytes
local function make_key(path)
  local fd, err = uv.fs_open(path, "wx", 384)
  if not fd then return nil, string.format("cannot create the secret key file %s: %s", path, tostring(err)), "EIO" end
  local key = crypto.random_bytes(32)
  local ok = uv.fs_write(fd, key) == 32 and uv.fs_fsync(fd)
  uv.fs_close(fd)
  if not ok then
    os.remove(path)
    return nil, "cannot write the secret key file " .. path, "EIO"
  end
  return key
end

-- whether doc holds a value: only then is it bound to the key its key_id names. An empty
-- store (every value removed after the key was lost) takes a new key.
local function holds(doc) return next(doc.secrets) ~= nil end

-- the way out of a store whose key is lost, said with each refusal of its key
local function lost_key(path)
  return string.format("restore %s from where it was kept; a new key never opens the values sealed already. "
    .. "If the key is lost for good, remove each secret ('orket secrets rm NAME') and set them again: "
    .. "an empty store takes a new key", path)
end

-- the key that opens doc: the key file's (refused when others may read it or it is not 32
-- bytes), made when create and none exists. A rotation cut short left the new key beside
-- the old one: when the store is already sealed under it, it is moved into place.
local function key_for(dir, doc, getenv, create)
  local _, path = M.paths(dir, getenv)
  local bound = doc.key_id and holds(doc)
  if not uv.fs_stat(path) then
    if create and not bound then return make_key(path) end
    return nil, string.format("no secret key file at %s (the store's values cannot be opened without it; "
      .. "%s names another); %s", path, M.KEY_ENV, lost_key(path)), "ENOENT"
  end
  local key, err, code = sealed.read_key_file(path, "the secret key file")
  if not key and code == "EINVAL" and bound and uv.fs_stat(path).type == "file" then
    -- a cut or damaged key: the advice to make a new random one would never open the store
    return nil, string.format("the secret key file %s is damaged: it must hold 32 bytes, or 64 hex digits (it has "
      .. "%d bytes); %s", path, uv.fs_stat(path).size, lost_key(path)), "EINVAL"
  end
  if not key then return nil, err, code end
  if bound and key_id(key) ~= doc.key_id then
    local nkey = uv.fs_stat(path .. ".next") and sealed.read_key_file(path .. ".next", "the secret key file")
    if nkey and key_id(nkey) == doc.key_id and os.rename(path .. ".next", path) then return nkey end
    return nil, string.format("the secret key file %s is not the key the store's values were sealed under; %s", path,
      lost_key(path)), "EKEY"
  end
  return key
end

local function seal_value(key, name, value)
  -- the name is sealed with the value, so a value moved under another name does not open
  return hex(assert(seal.seal_string(name .. "\0" .. value, key)))
end

local function open_value(key, name, text)
  local plain, err, code = seal.open_string(unhex(text), key)
  if not plain then return nil, string.format("secret %s: %s", name, err), code end
  if plain:sub(1, #name + 1) ~= name .. "\0" then
    return nil, string.format("secret %s: sealed under another name (the store was changed)", name), "ETAMPERED"
  end
  return plain:sub(#name + 2)
end

--- list(dir) -> { {name=, set_at=, rotated_at=}, ... } by name | nil, msg, CODE. No key needed.
function M.list(dir)
  local doc, err, code = load(dir)
  if not doc then return nil, err, code end
  local out = {}
  for name, s in pairs(doc.secrets) do out[#out + 1] = { name = name, set_at = s.set_at, rotated_at = s.rotated_at } end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

--- has(dir, name) -> true | false | nil, msg, CODE
function M.has(dir, name)
  local doc, err, code = load(dir)
  if not doc then return nil, err, code end
  return doc.secrets[name] ~= nil
end

-- fn(...) under the store's lock (.orket/secrets.lock): two changes at once would each
-- write back the document it read, and the first one's would be lost. EBUSY when another
-- change holds it past LOCK_WAIT_MS.
M.LOCK_WAIT_MS = 10000
local function locked(fn)
  return function(dir, ...)
    uv.fs_mkdir((dir or ".") .. "/.orket", 448) -- the lock's and the key's home, on a store that has none yet
    local lock <close>, err, code = lockfile.wait((dir or ".") .. "/.orket/secrets.lock", "exclusive", M.LOCK_WAIT_MS)
    if not lock then return nil, err, code end
    return fn(dir, ...)
  end
end

--- bad_value(value) -> why | nil: a value refused at set. A credential is one line: a line
--- break or a NUL would end the HTTP header it goes into (a pasted CRLF), and a blank one is
--- no credential (a blank environment variable is unset: orket.settings.secret.given); a
--- UTF-16 file and a byte order mark are said as what they are.
function M.bad_value(value)
  -- a file saved as UTF-16 (Windows' "Unicode"): its NULs are no pasted line break; said as
  -- the script loaders say it
  local _, enc = scriptfile.encoding(value)
  if enc then return enc end
  -- a byte order mark (U+FEFF) the command line did not take off (orket secrets set does):
  -- it would go into the header as three bytes the server does not expect
  local bom = value:find("\239\187\191", 1, true)
  if bom then
    return string.format("holds a byte order mark (U+FEFF) at byte %d, as a Windows editor saves one: no "
      .. "credential holds one; remove it", bom)
  end
  local at = value:find("[\r\n\0]")
  if at then
    return string.format("holds a %s at byte %d (a credential is one line; was it pasted with a line break?)",
      value:byte(at) == 0 and "NUL" or "line break", at)
  end
  if not value:find("%S") then return "is only spaces" end
  return nil
end

--- set(dir, name, value[, getenv]) -> {name=, set_at=, replaced=bool} | nil, msg, CODE. The
--- key file is made (0600) when the store has none yet.
M.set = locked(function(dir, name, value, getenv)
  local ok, nerr = M.check_name(name)
  if not ok then return nil, nerr, "EINVAL" end
  if type(value) ~= "string" or value == "" or #value > M.MAX_VALUE then
    return nil, string.format("secret %s: a value is 1 to %d bytes", name, M.MAX_VALUE), "EINVAL"
  end
  local why = M.bad_value(value)
  if why then return nil, string.format("secret %s: the value %s; nothing was changed", name, why), "EINVAL" end
  local doc, err, code = load(dir)
  if not doc then return nil, err, code end
  local key, kerr, kcode = key_for(dir, doc, getenv, true)
  if not key then return nil, kerr, kcode end
  local replaced = doc.secrets[name] ~= nil
  doc.key_id = key_id(key)
  doc.secrets[name] = { value = seal_value(key, name, value), set_at = now() }
  local sok, serr, scode = save(dir, doc)
  if not sok then return nil, serr, scode end
  return { name = name, set_at = doc.secrets[name].set_at, replaced = replaced }
end)

--- remove(dir, name) -> true | nil, msg, CODE (ENOENT: no such secret). No key needed.
M.remove = locked(function(dir, name)
  local doc, err, code = load(dir)
  if not doc then return nil, err, code end
  if not doc.secrets[name] then
    local names = {}
    for n in pairs(doc.secrets) do names[#names + 1] = n end
    table.sort(names)
    local near = nearest.nearest(name, names)
    return nil, string.format("no secret named %s%s", name, near and ("; did you mean " .. near .. "?") or ""), "ENOENT"
  end
  doc.secrets[name] = nil
  return save(dir, doc)
end)

--- reveal(dir, name[, getenv]) -> the value | nil, msg, CODE (ENOENT: no such secret; EKEY:
--- the wrong key; ETAMPERED: a changed value)
function M.reveal(dir, name, getenv)
  local doc, err, code = load(dir)
  if not doc then return nil, err, code end
  local s = doc.secrets[name]
  if not s then return nil, string.format("no secret named %s in %s", name, (M.paths(dir))), "ENOENT" end
  local key, kerr, kcode = key_for(dir, doc, getenv, false)
  if not key then return nil, kerr, kcode end
  return open_value(key, name, s.value)
end

-- A key file ORKET_SECRETS_KEY_FILE names, other than the project's own -> nil | msg:
-- one variable of the process or the service, so other projects' stores are likely sealed
-- under the same file, and a rotation here would replace the only key that opens them.
-- Only the caller can say no other store uses it (opts.not_shared).
local function shared_key(dir, path, opts)
  if opts and opts.not_shared then return nil end
  local own = (dir or ".") .. "/.orket/secrets.key"
  if path == own or (uv.fs_realpath(path) and uv.fs_realpath(path) == uv.fs_realpath(own)) then return nil end
  return string.format("the key file %s comes from %s, which other projects' stores may use too: a new key there "
    .. "would leave their values unopenable for good, so it is not rotated. When no other store is sealed under it, "
    .. "say so: orket secrets rotate --not-shared. Otherwise give this project a key of its own first: copy %s to %s "
    .. "(mode 600), run this project's commands without %s, then rotate", path, M.KEY_ENV, path, own, M.KEY_ENV)
end

--- rotate(dir[, getenv[, opts]]) -> number of values re-sealed | nil, msg, CODE. Every value is
--- opened under the old key and sealed under a new one. Crash points: the new key is
--- written beside the old (KEY.next), then the store sealed under it replaces the old
--- store, then the new key replaces the old; a rotation cut after the store's rename is
--- finished by the next use (key_for), one cut before leaves the old store and key whole.
--- A key file named by ORKET_SECRETS_KEY_FILE is refused (EINVAL) unless opts.not_shared:
--- the caller's word that this store alone is sealed under it.
M.rotate = locked(function(dir, getenv, opts)
  local doc, err, code = load(dir)
  if not doc then return nil, err, code end
  local _, path = M.paths(dir, getenv)
  local shared = shared_key(dir, path, opts)
  if shared then return nil, shared, "EINVAL" end
  -- an empty store needs no old key (a lost one is replaced): there is nothing to open
  local key, kerr, kcode = true, nil, nil
  if holds(doc) then key, kerr, kcode = key_for(dir, doc, getenv, false) end
  if not key then return nil, kerr, kcode end
  os.remove(path .. ".next")
  local nkey, nerr, ncode = make_key(path .. ".next")
  if not nkey then return nil, nerr, ncode end
  local n, at = 0, now()
  for name, s in pairs(doc.secrets) do
    local value, verr, vcode = open_value(key, name, s.value)
    if not value then
      os.remove(path .. ".next")
      return nil, verr, vcode
    end
    s.value, s.rotated_at, n = seal_value(nkey, name, value), at, n + 1
  end
  doc.key_id = key_id(nkey)
  local ok, serr, scode = save(dir, doc)
  if not ok then
    os.remove(path .. ".next")
    return nil, serr, scode
  end
  ok, serr = os.rename(path .. ".next", path)
  if not ok then
    -- a reader may have finished the rotation first (key_for): then the new key is in place
    local now_key = sealed.read_key_file(path, "the secret key file")
    if not (now_key and key_id(now_key) == doc.key_id) then return nil, serr, "EIO" end
  end
  return n
end)

return M
