-- orket.audit.key: the files in a project's .orket/ the audit's checkpoints rest on:
-- audit.key, the Ed25519 signing key's 32-byte seed (mode 0600, made at the first
-- checkpoint; never logged, never in the store); audit.pub, its public key, which verify
-- trusts; audit.head, the newest checkpoint (seq, hash, signature), kept outside the store
-- so that cutting the chain's tail, checkpoints and all, is seen.
local ach = require "orket.c.auditchain"
local uv = require "luv"
local json = require "cjson.safe"
local read = require("orket.fieldline").read

local M = {}

M.KEY = "audit.key"
M.PUB = "audit.pub"
M.HEAD = "audit.head"

local function home(dir) return (dir or ".") .. "/.orket" end

-- writes path whole (a part file renamed onto it) with mode
local write = require("orket.fieldline").write_whole

-- nil, msg, "EAUDITKEY": the store's chain was signed under signed_by (hex) by another
-- host, and this one has another key, or none (which it would make)
local function another_key(path, signed_by, pk)
  return nil, string.format("%s: the audit in the store is signed with key %s (its newest checkpoint), %s: "
    .. "copy .orket/audit.key, .orket/audit.pub and .orket/audit.head from the server that signed it (every "
    .. "server of one store signs with the same key), or verify would find every checkpoint of one of them forged", path, signed_by,
    pk and ("this host's is " .. pk) or "and this host has none; a new one is not made"), "EAUDITKEY"
end

-- the seed in the key file at path (st: its stat) | nil, msg, CODE: refused when other users
-- may read it, or when it is not 32 bytes
local function seed_of(path, st)
  if st.mode & 0x3f ~= 0 then
    return nil, string.format("%s: other users may read the audit's signing key; chmod 600 it", path), "EPERM"
  end
  local seed = read(path)
  if not seed or #seed ~= 32 then
    return nil, string.format("%s: not an audit signing key (32 bytes)", path), "EINVAL"
  end
  return seed
end

-- nil, msg, "EAUDITKEY": no audit.key here, but this project made one before (why: its
-- audit.pub, or the journal's record of it): a key made now would sign whatever the chain
-- holds, a rewritten one too, and verify would trust it
local function lost_key(path, why)
  return nil, string.format("%s is missing, but %s: a new key is not made over a chain that was signed. Copy "
    .. "audit.key back; if it is lost for good, orket audit checkpoint --new-key makes one, recorded in the chain "
    .. "(docs/audit.md)", path, why), "EAUDITKEY"
end

-- whether a key may be made at path (none there): o.new_key says so; else none was made
-- before (audit.pub, o.made_before(): the journal's words of it | nil) -> true | nil, msg, CODE
local function may_make(dir, path, o)
  if o.new_key then return true end
  local pk = M.public_key(dir)
  if pk then return lost_key(path, string.format("%s/%s names key %s", home(dir), M.PUB, pk)) end
  local before = o.made_before and o.made_before()
  if before then return lost_key(path, before) end
  return true
end

-- a new seed written to path (none there) -> seed | nil, msg, "EIO"
local function made(dir, path)
  uv.fs_mkdir(home(dir), 448)
  local seed = ach.new_seed()
  -- O_EXCL: two processes making the first key at once keep one of them
  local fd = uv.fs_open(path, "wx", 384)
  if fd then
    local ok = uv.fs_write(fd, seed, 0)
    if ok then ok = uv.fs_fsync(fd) end
    uv.fs_close(fd)
    if not ok then return nil, "cannot write " .. path, "EIO" end
    return seed
  end
  seed = read(path)
  if not seed or #seed ~= 32 then return nil, "cannot create " .. path, "EIO" end
  return seed
end

--- signer(dir[, signed_by[, o]]) -> {seed=, pk=, made=} | nil, msg, CODE: the project's
--- signing key, made on first use (with its audit.pub; made=true then). A key file that is
--- not 32 bytes, or that other users may read, is refused (EINVAL, EPERM). signed_by: the
--- public key (hex) of the store's newest checkpoint, when it has one: a key of this host
--- that is not it is refused, and none is made (EAUDITKEY), so that a second server of one
--- store does not sign with a key of its own. Nor is one made when this project had one
--- (audit.pub, or o.made_before() says so: EAUDITKEY), unless o.new_key (a restore that
--- accepted an audit it could not verify, orket audit checkpoint --new-key); o.rotate (the
--- latter) keeps a key already here aside, as audit.key.replaced-TIME, and makes a new one.
function M.signer(dir, signed_by, o)
  o = o or {}
  local path = home(dir) .. "/" .. M.KEY
  local st = uv.fs_stat(path)
  local seed, serr, scode
  if st and o.new_key and o.rotate then
    -- (kept, never removed: what it signed may still be checked with it)
    local ok, rerr = os.rename(path, path .. ".replaced-" .. os.date("!%Y%m%dT%H%M%SZ"))
    if not ok then return nil, "cannot keep the old key aside: " .. tostring(rerr), "EIO" end
    st = nil
  end
  if not st and signed_by and not o.new_key then return another_key(path, signed_by) end
  if st then
    seed, serr, scode = seed_of(path, st)
    if not seed then return nil, serr, scode end
  else
    local ok, merr, mcode = may_make(dir, path, o)
    if not ok then return nil, merr, mcode end
    seed, serr, scode = made(dir, path)
    if not seed then return nil, serr, scode end
  end
  local pk = ach.public_key(seed)
  if signed_by and signed_by ~= pk and not o.new_key then return another_key(path, signed_by, pk) end
  local pub_path = home(dir) .. "/" .. M.PUB
  if read(pub_path) ~= pk .. "\n" then
    local ok, err, code = write(pub_path, pk .. "\n", 420)
    if not ok then return nil, err, code end
  end
  return { seed = seed, pk = pk, made = not st }
end

--- unmake(dir): the key a checkpoint made (signer's made) taken back, its transaction
--- having failed: audit.key and audit.pub removed, as if never made
function M.unmake(dir)
  os.remove(home(dir) .. "/" .. M.KEY)
  os.remove(home(dir) .. "/" .. M.PUB)
end

--- can_sign(dir[, signed_by[, o]]) -> true | nil, msg, CODE: whether signer(dir, signed_by,
--- o) would give a key, asked before a change that a checkpoint must follow; nothing is made
function M.can_sign(dir, signed_by, o)
  o = o or {}
  local path = home(dir) .. "/" .. M.KEY
  local st = uv.fs_stat(path)
  if o.new_key and (o.rotate or not st) then return true end
  if not st then
    if signed_by then return another_key(path, signed_by) end
    return may_make(dir, path, o)
  end
  local seed, err, code = seed_of(path, st)
  if not seed then return nil, err, code end
  local pk = ach.public_key(seed)
  if signed_by and signed_by ~= pk then return another_key(path, signed_by, pk) end
  return true
end

--- public_key_at(path) -> hex | nil, msg, CODE: the audit public key in the file at path
function M.public_key_at(path)
  local text = read(path)
  if not text then return nil, path .. ": no audit public key (no checkpoint was ever made here)", "ENOENT" end
  local pk = text:match("^(%x+)\n?$")
  if not pk or #pk ~= 64 then return nil, path .. ": not an audit public key (64 hex digits)", "EINVAL" end
  return pk:lower()
end

--- public_key(dir) -> hex | nil, msg, CODE: the key verify trusts (audit.pub)
function M.public_key(dir) return M.public_key_at(home(dir) .. "/" .. M.PUB) end

--- pub_made(dir) -> the time audit.pub was last written (ISO text, UTC, as the chain's
--- `at`) | nil when there is none
function M.pub_made(dir)
  local st = uv.fs_stat(home(dir) .. "/" .. M.PUB)
  if not st then return nil end
  return os.date("!%Y-%m-%dT%H:%M:%S", st.mtime.sec) .. string.format(".%03dZ", st.mtime.nsec // 1000000)
end

--- read_head_at(path) -> {seq=, hash=, sig=} | nil (none) | nil, msg, CODE (unreadable)
function M.read_head_at(path)
  local text = read(path)
  if not text then return nil end
  local h = json.decode(text)
  if type(h) ~= "table" or not math.tointeger(h.seq) or type(h.hash) ~= "string" or type(h.sig) ~= "string" then
    return nil, path .. ": not an audit head (seq, hash, sig)", "EINVAL"
  end
  h.seq = math.tointeger(h.seq) -- (JSON's numbers may come back as floats: 22.0 in a message)
  return h
end

--- read_head(dir) -> the project's .orket/audit.head, as read_head_at
function M.read_head(dir) return M.read_head_at(home(dir) .. "/" .. M.HEAD) end

--- write_head(dir, row[, replace]) -> true | nil, msg, CODE: row (a checkpoint) as the
--- newest signed; a head already newer (another process's) is kept, unless replace (a
--- restore: the chain it named is not the store's any more)
function M.write_head(dir, row, replace)
  local cur = M.read_head(dir)
  if cur and cur.seq >= row.seq and not replace then return true end
  return write(home(dir) .. "/" .. M.HEAD, json.encode { seq = row.seq, hash = row.hash, sig = row.sig } .. "\n", 420)
end

return M
