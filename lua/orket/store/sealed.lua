-- orket.store.sealed: encrypted backups (orket backup --encrypt, orket restore). The key is
-- a key file's 32 bytes or a passphrase through Argon2id (orket.c.seal, which seals and
-- opens the stream); the passphrase comes from an environment variable the user names, or
-- the terminal, never the command line. A backup's plain copy and a restore's opened copy
-- live only in a private directory (0700) under the project's .orket/, removed after.
local seal = require "orket.c.seal"
local crypto = require "orket.c.crypto"
local uv = require "luv"
local tree = require "orket.tree"
local read = require("orket.fieldline").read
-- a path in a message, escaped on its line (the store layer reads no orket.config; its
-- shown is this)
local shown = require("orket.inert").line

local M = {}

local KEY_BYTES = 32

--- read_key_file(path[, what]) -> 32-byte key | nil, msg, CODE: the file holds the key's 32
--- bytes, or them as 64 hex digits (a line break after them allowed). Refused when other
--- users may read it (EPERM), as ssh refuses such a private key. what names the file in
--- messages ("--key-file" by default).
function M.read_key_file(path, what)
  what = what or "--key-file"
  local st = uv.fs_stat(path)
  local said = shown(path)
  if not st then return nil, string.format("%s %s: no such file", what, said), "ENOENT" end
  -- (a Kubernetes Secret mounted as a volume is a folder of files: name one of them)
  -- (a pipe, as `--key-file <(pass show k)` gives, is read as a file is)
  if st.type == "directory" then
    return nil, string.format("%s %s: is a folder, not a key file (name the file that holds the key)", what, said),
      "EINVAL"
  end
  if st.mode & 0x3f ~= 0 then
    return nil, string.format("%s %s: its mode lets other users read it; chmod 600 it", what, said), "EPERM"
  end
  local data = read(path)
  if not data then return nil, string.format("%s %s: cannot read it", what, said), "EIO" end
  if #data == KEY_BYTES then return data end
  local hex = data:match("^(%x+)\r?\n?$")
  if hex and #hex == 2 * KEY_BYTES then
    return (hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
  end
  return nil, string.format("%s %s: must hold 32 bytes, or 64 hex digits (it has %d bytes); "
    .. "make one with: head -c 32 /dev/urandom > %s", what, said, #data, said), "EINVAL"
end

--- secret(opts, confirm) -> {key=} | {pass=} | nil, msg, CODE: opts.key_file, or
--- opts.passphrase_env (the name of the variable that holds it), else asked on the terminal
--- (twice when confirm: a passphrase mistyped when sealing would lose the backup).
function M.secret(opts, confirm)
  if opts.key_file and opts.passphrase_env then
    return nil, "give --key-file or --passphrase-env, not both", "EINVAL"
  end
  if opts.key_file then
    local key, err, code = M.read_key_file(opts.key_file)
    if not key then return nil, err, code end
    return { key = key }
  end
  if opts.passphrase_env then
    local pass = os.getenv(opts.passphrase_env)
    if not pass or pass == "" then
      return nil, string.format("--passphrase-env %s: that environment variable is unset or empty",
        opts.passphrase_env), "EINVAL"
    end
    return { pass = pass }
  end
  local pass, err, code = seal.read_tty("passphrase: ")
  if not pass then
    return nil, err .. ": give --key-file FILE or --passphrase-env NAME", code
  end
  if pass == "" then return nil, "the passphrase is empty", "EINVAL" end
  if confirm then
    local again = seal.read_tty("passphrase again: ")
    if again ~= pass then return nil, "the two passphrases differ", "EINVAL" end
  end
  return { pass = pass }
end

--- private_dir(dir) -> path | nil, msg, CODE: a new directory (0700) under DIR/.orket for
--- a plain copy; the caller removes it (remove_dir)
function M.private_dir(dir)
  local home = (dir or ".") .. "/.orket"
  uv.fs_mkdir(home, 448) -- on PostgreSQL nothing else may have made it
  local path = home .. "/sealed-" .. crypto.random_id(8)
  local ok, err = uv.fs_mkdir(path, 448)
  if not ok then return nil, string.format("cannot create %s: %s", path, tostring(err)), "EIO" end
  return path
end

--- remove_dir(path): the private directory and the files in it
M.remove_dir = tree.remove

--- seal_file(plain, out, secret) -> true | nil, msg, CODE: plain sealed into out, replaced
--- atomically once written whole
function M.seal_file(plain, out, secret)
  local part = string.format("%s.part-%d", out, uv.os_getpid())
  os.remove(part) -- one a process of this pid left (seal makes a new file only)
  -- a failed seal removes the part it made, and leaves one it could not make: another's
  local ok, err, code = seal.seal(plain, part, secret.key, secret.pass)
  if not ok then return nil, err, code end
  ok, err = os.rename(part, out)
  if not ok then
    os.remove(part)
    return nil, err, "EIO"
  end
  return true
end

--- is_sealed(path) -> "key" | "passphrase" | false | nil, msg, CODE
function M.is_sealed(path)
  if not uv.fs_stat(path) then return nil, shown(path) .. ": no such file", "ENOENT" end
  return seal.kind(path)
end

--- open_file(path, secret, into) -> true | nil, msg, CODE: the whole stream at path checked
--- and opened into the file into, made new; on failure into is removed when it was made
--- here, and left when it already existed (not ours). Codes: EKEY (a wrong key or
--- passphrase, or a changed start), ETAMPERED, ETRUNCATED, EPARAMS, EIO.
function M.open_file(path, secret, into)
  local ok, err, code = seal.open(path, into, secret.key, secret.pass)
  if not ok then return nil, string.format("%s: %s", shown(path), err), code end
  return true
end

return M
