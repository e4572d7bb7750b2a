-- orket secrets set|list|rotate|rm: the project's secret store (orket.store.secrets), which
-- orket.lua names as secret "NAME". A value is read from stdin, never from the words; each
-- change is journaled and appended to the audit (orket.audit.chain) with its name and the
-- local operator, never its value.
local jsonout = require "orket.jsonout"
local cmdline = require "orket.cmdline"
local uv = require "luv"
local config = require "orket.config"
local scriptfile = require "orket.scriptfile"

local cmd = { name = "secrets", summary = "keep forge tokens, model keys and passwords encrypted, by name" }
cmd.args = {
  usage = "orket secrets set NAME < FILE | secrets list [--json] | secrets rotate [--not-shared] | secrets rm NAME  [-C DIR]",
  text = "a secret's name",
  { "set|list|rotate|rm", key = "sub", missing = "secrets needs set, list, rotate or rm",
    check = cmdline.one_of({ "set", "list", "rotate", "rm" }, "unknown secrets command '%s'") },
  { "NAME", key = "words", many = true },
  { "--json", help = "list the secrets' names and times as JSON" },
  { "--not-shared", help = "rotate: the key file ORKET_SECRETS_KEY_FILE names seals no other project's store" },
  cmdline.DIR,
}
cmd.help = [[
set reads the value from stdin (to its end, one final line break dropped; on a terminal it
is asked with echo off) and seals it under the project's key file, made (mode 600) on the
first set; a value is never an argument, which other users could read in the process list.
list shows names and when each was set and rotated, never a value. rotate seals every value
under a new key and replaces the key file; a key file ORKET_SECRETS_KEY_FILE names may seal
other projects' stores too, and is rotated only with --not-shared. rm removes one. orket.lua names a secret as
secret "NAME" (git.token, git.webhook_secret, updates.token, a provider's api_key, an MCP
server's env and headers). Each change is in the journal and the audit, with its name and
who made it. See docs/secrets.md.]]

local MAX_READ = 65536

-- The words of each subcommand, checked -> exit status when they are wrong. A second word
-- of set is refused without being repeated: it is likely the value itself.
local function misused(o, cli)
  local n, want = #(o.words or {}), (o.sub == "set" or o.sub == "rm") and 1 or 0
  if o.sub == "set" and n > 1 then
    return cli.usage_error(cmd, "secrets set takes the value on stdin, never as an argument (others can read "
      .. "arguments in the process list): printf '%%s' \"$VALUE\" | orket secrets set NAME")
  end
  if n ~= want then
    return cli.usage_error(cmd, want == 1 and "secrets %s needs one NAME" or "secrets %s takes no other word", o.sub)
  end
  if o.json and o.sub ~= "list" then return cli.usage_error(cmd, "--json goes with secrets list") end
  if o.not_shared and o.sub ~= "rotate" then return cli.usage_error(cmd, "--not-shared goes with secrets rotate") end
  local store = require "orket.store.secrets" -- lazy: as the store
  local ok, err = store.check_name(o.words and o.words[1])
  if want == 1 and not ok then
    -- the word is not repeated (check_name's message never does): NAME=VALUE, or a value
    -- given where the name goes, would be copied into the terminal or a CI log
    local given = o.words[1]:find("=", 1, true) and "NAME=VALUE" or "the word given as NAME"
    return cli.usage_error(cmd, "secrets %s: %s is refused, and not repeated here (it may hold a value): %s. A value is read "
      .. "from stdin, never from the words: printf '%%s' \"$VALUE\" | orket secrets set NAME. If a value was typed "
      .. "on the command line, it is in the shell's history and was in the process list: replace it where it was "
      .. "issued", o.sub, given, err)
  end
  return nil
end

-- the value: stdin to its end (a final line break dropped), or asked on a terminal
local function read_value(name)
  if uv.guess_handle(0) == "tty" then
    return require("orket.c.seal").read_tty(string.format("value of %s: ", name)) -- lazy: only on a terminal
  end
  local v = io.stdin:read(MAX_READ + 2) or ""
  if io.stdin:read(0) then return nil, string.format("the value on stdin is longer than %d bytes", MAX_READ) end
  v = v:gsub("\r?\n$", "")
  -- a UTF-8 byte order mark a Windows editor saved first (Notepad's "UTF-8 with BOM") is no
  -- part of the value, as the script loaders skip it (orket.scriptfile.text): kept, it went
  -- into the Authorization header and the server said 401 with nothing to point at
  local encoded, eerr = scriptfile.encoding(v)
  if not encoded then return nil, "the value on stdin " .. eerr end
  v = encoded
  if v == "" then return nil, "stdin is empty: give the value on stdin, e.g. printf '%s' \"$VALUE\" | orket secrets set NAME" end
  return v
end

-- the local operator, as the journal and the audit name them
local function operator()
  local pw = uv.os_get_passwd()
  return "local:" .. (pw and pw.username or tostring(uv.getuid()))
end

-- change() inside one transaction with its journal event and audit entry -> its result
local function audited(db, action, name, change)
  local chain = require "orket.audit.chain" -- lazy: as the store
  local actor = operator()
  return db:tx(function()
    db:event { kind = "secret_" .. action, actor = actor, data = { name = name } }
    chain.record(db, { actor = actor, action = "secret_" .. action,
      route = "cli: secrets " .. action .. (name and " " .. name or "") })
    return change()
  end)
end

local function list(o)
  -- a directory that holds no project (a mistyped -C, a folder of a project's tree) has no
  -- secrets to list, and saying "no secrets" there would hide the mistake
  local tree = config.in_tree(o.dir)
  if tree and not uv.fs_stat(o.dir .. "/orket.lua") then
    tree = string.format("no project in %s (orket.lua not found); %s", o.dir, config.no_project(o.dir))
  end
  if tree then return nil, tree, "ENOENT" end
  if not uv.fs_stat(o.dir .. "/orket.lua") and not uv.fs_stat(o.dir .. "/.orket") then
    return nil, string.format("no project in %s (neither orket.lua nor .orket/ there); %s", o.dir,
      config.no_project(o.dir)),
      "ENOENT"
  end
  local store = require "orket.store.secrets" -- lazy: as the store
  local rows, err = store.list(o.dir)
  if not rows then return nil, err end
  if o.json then
    io.stdout:write(jsonout.encode { secrets = jsonout.array(rows) }, "\n")
  elseif #rows == 0 then
    io.stdout:write("no secrets; set one with: printf '%s' \"$VALUE\" | orket secrets set NAME\n")
  end
  for _, r in ipairs(o.json and {} or rows) do
    io.stdout:write(string.format("%-32s set %s%s\n", r.name, r.set_at, r.rotated_at and ("  rotated " .. r.rotated_at) or ""))
  end
  return 0
end

-- set, rotate or rm, audited -> exit status | nil, msg, CODE
local function change(o, cli, value)
  local store = require "orket.store.secrets" -- lazy: as the store
  local db = cli.open_store(o.dir, false)
  if not db then return 1 end
  local name = o.words and o.words[1]
  local res, err, code = audited(db, o.sub, name, function()
    if o.sub == "set" then return store.set(o.dir, name, value) end
    if o.sub == "rm" then return store.remove(o.dir, name) end
    return store.rotate(o.dir, nil, { not_shared = o.not_shared })
  end)
  db:close()
  if not res then return nil, err, code end
  local actor = operator()
  if o.sub == "set" then
    io.stdout:write(string.format("%s secret %s (as %s)\n", res.replaced and "replaced" or "set", name, actor))
  elseif o.sub == "rm" then
    io.stdout:write(string.format("removed secret %s (as %s)\n", name, actor))
  else
    io.stdout:write(string.format("rotated the key: %d secret%s sealed again (as %s)\n", res, res == 1 and "" or "s", actor))
  end
  return 0
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local bad = misused(o, cli)
  if bad then return bad end
  local value, verr
  if o.sub == "set" then
    value, verr = read_value(o.words[1])
    if not value then
      cli.err("secrets set: %s", verr)
      return 1
    end
  end
  local status, err, code
  if o.sub == "list" then status, err, code = list(o) else status, err, code = change(o, cli, value) end
  if not status then
    return cli.fail(code, "secrets %s: %s", o.sub, err) or 1
  end
  return status
end

return cmd
