-- orket users add|list|disable|enable|passwd|role|unlock: the local accounts people sign in to
-- the web board with (orket.serve.accounts). A password is read from the terminal (twice,
-- echo off) or from the environment variable --password-env names, never from the command
-- line.
local cmdline = require "orket.cmdline"
local jsonout = require "orket.jsonout"
local task = require "orket.task"

local USAGE = "orket users add NAME --role viewer|operator|admin [--password-env VAR | --password-stdin] | "
  .. "users list [--json] | users disable NAME | users enable NAME [--new-subject] | users passwd NAME "
  .. "[--password-env VAR | --password-stdin] | "
  .. "users role NAME viewer|operator|admin | users unlock NAME  [-C DIR]"
local cmd = { summary = "add, list, disable and enable the people who sign in to orket serve, set their password "
  .. "and role, lift a lockout", usage = USAGE }
cmd.help = [[
A local account is a person with a name, a role and a password, for a server without an
identity provider. Only the password's Argon2id hash is stored. The person signs in to the
web board with name and password (or POST /v1/session {"user", "password"}), and the
journal and the audit name them as user:NAME. add asks the password on the terminal
(twice), or reads it from the environment variable --password-env names, or as the first
line of standard input with --password-stdin (for a script); it is never an argument,
which other users could read in the process list. disable ends the person's
sessions at once, also in a running 'orket serve'; enable lets them sign in again, and
says which of their keys work again with it. enable --new-subject, for a person of the
LDAP directory whose name the directory now gives to another entry (a newcomer given a
leaver's DN; or the person's own entry moved, where the directory gives no entryUUID),
hands the name to that entry: the old subject's keys are revoked, its sessions ended and
its project memberships dropped (it says how many), and the entry's next sign-in takes
the name, with the role its groups give. A plain enable of such a person would be undone
by the server's next look at the directory. passwd
sets a person's password (asked, or from --password-env or --password-stdin, as for add) and ends the
sessions they signed in to with the old one. role sets their account's role: admin makes
them a server admin, another role unmakes one; the last enabled admin keeps it. Their role
in the default project becomes the one add gives (operator: developer), at once; their
roles in other projects stay as granted (orket projects grant). unlock
forgets the failed password sign-ins counted against a name, which hold it off (429) for
as long as someone keeps guessing at it, so the person signs in at once; passwd does too.
See docs/teams.md.]]

-- the new password: from the named variable, or standard input's first line, else asked
-- twice on the terminal
local function password(env, stdin)
  if stdin then
    -- capped: a password is 1024 bytes at most (a longer line is refused by its check)
    local line = (io.stdin:read(1026) or ""):match("^([^\n]*)"):gsub("\r$", "")
    if line == "" then return nil, "--password-stdin: standard input's first line is empty" end
    return line
  end
  if env then
    local v = os.getenv(env)
    if not v or v == "" then return nil, "--password-env " .. env .. ": that environment variable is unset or empty" end
    return v
  end
  local seal = require "orket.c.seal" -- lazy: only add asks
  local p, err = seal.read_tty("password: ")
  if not p then return nil, err .. ": give --password-env VAR or --password-stdin" end
  if seal.read_tty("password again: ") ~= p then return nil, "the two passwords differ" end
  return p
end

-- The words: {dir, sub, name, role, env, json} | nil, exit status (the usage error said)
local function words(args, cli)
  local o = {}
  local flags = { ["--json"] = function() o.json = true end, ["--password-stdin"] = function() o.stdin = true end,
    ["--new-subject"] = function() o.new_subject = true end }
  local dir, pos = cli.words(cmd, args, flags, "a person's name", {
    -- a second, different --role is refused: the last winning made `--role viewer --role admin` an admin
    ["--role"] = { what = "viewer, operator or admin", set = function(v) o.role = v end, once = cmdline.one_value("--role") },
    ["--password-env"] = { what = "the name of an environment variable", set = function(v) o.env = v end },
  })
  if not dir then return nil, pos end
  o.dir, o.sub, o.name = dir, pos[1], pos[2]
  o.new_role = pos[3]
  local known = { add = 2, list = 1, disable = 2, enable = 2, passwd = 2, role = 3, unlock = 2 }
  if not known[o.sub] then
    return nil, cli.usage_error(cmd, o.sub and ("unknown users command '" .. o.sub .. "'")
      or "users needs add, list, disable, enable, passwd, role or unlock")
  end
  if #pos ~= known[o.sub] then
    local need = { "users %s takes no other word", "users %s needs one NAME", "users %s needs NAME and a role" }
    return nil, cli.usage_error(cmd, need[known[o.sub]], o.sub)
  end
  if o.role and o.sub ~= "add" then return nil, cli.usage_error(cmd, "--role goes with users add") end
  if (o.env or o.stdin) and o.sub ~= "add" and o.sub ~= "passwd" then
    return nil, cli.usage_error(cmd, "--password-env and --password-stdin go with users add and users passwd")
  end
  if o.env and o.stdin then return nil, cli.usage_error(cmd, "give --password-env or --password-stdin, not both") end
  if o.json and o.sub ~= "list" then return nil, cli.usage_error(cmd, "--json goes with users list") end
  if o.new_subject and o.sub ~= "enable" then return nil, cli.usage_error(cmd, "--new-subject goes with users enable") end
  if o.sub == "add" and not o.role then return nil, cli.usage_error(cmd, "users add needs --role viewer, operator or admin") end
  return o
end

-- users add's password hash, the name and role checked before the password is asked and
-- its length after -> hash | nil, exit status (the error said)
local function new_password(accounts, o, cli)
  local ok, cerr = accounts.check(o.name, o.role or "viewer", string.rep("x", accounts.MIN_PASSWORD))
  if not ok then return nil, cli.usage_error(cmd, "%s", cerr) end
  local pass, perr = password(o.env, o.stdin)
  if not pass then
    cli.err("users: %s", perr)
    return nil, 1
  end
  -- hashed on the loop's thread pool (orket.c.crypto): a task waits for it
  local done, hash, herr, code
  if o.sub == "add" then done, hash, herr, code = task.spawn(accounts.hash, o.name, o.role, pass):join()
  else done, hash, herr, code = task.spawn(accounts.hash_password, pass):join() end
  if done and code == "EUSAGE" then return nil, cli.usage_error(cmd, "%s", herr) end
  if not (done and hash) then
    cli.err("users: %s", done and herr or hash)
    return nil, 1
  end
  return hash
end

-- users list -> exit status
local function list_people(accounts, db, json)
  local list = accounts.list(db)
  db:close()
  if json then
    for _, u in ipairs(list) do setmetatable(u, nil) end
    -- (named, as every --json document is: a reader tells it from GET /v1/users' orket.users/2)
    io.stdout:write(jsonout.encode { format = "orket.user_list/1", users = jsonout.array(list) }, "\n")
    return 0
  end
  if #list == 0 then io.stdout:write("no people; add one with 'orket users add NAME --role operator'\n") end
  for _, u in ipairs(list) do
    io.stdout:write(string.format("%-24s %-8s added %s%s%s\n", u.name, u.role, u.created_at,
      u.disabled_at and ("  disabled " .. u.disabled_at) or "",
      u.signs_in ~= "password" and ("  signs in through " .. u.signs_in) or ""))
  end
  return 0
end

-- what each change says it did
local SAID = {
  add = function(res) return string.format("added %s (%s)", res.name, res.role) end,
  passwd = function(res) return string.format("set the password of %s; their password sessions ended", res.name) end,
  -- and what they are in the default project, which follows (orket.serve.accounts' set_role)
  role = function(res)
    local dp = res.default_project
    if not res.changed then
      return string.format("%s is %s already: nothing changed, their roles in projects included", res.name, res.role)
    end
    return string.format("%s is %s now%s; %s", res.name, res.role,
      res.role ~= res.was and (" (was " .. res.was .. ")") or ", as before",
      not dp and "no member of the default project, left so; their roles in other projects stay as granted"
        or string.format("in the default project: %s%s; their roles in other projects stay as granted", dp.role,
          dp.role ~= dp.was and (" now (was " .. dp.was .. ")") or ", as before"))
  end,
  unlock = function(res)
    return res.cleared and string.format("unlocked %s: their failed sign-ins are forgotten", res.name)
      or string.format("%s had no failed sign-ins counted: nothing to unlock", res.name)
  end,
}

-- what an enable brings back with the person: "their keys work again: NAME (ID), ..." | the
-- words for none, and for a directory's person the way out when the directory gave their
-- name to another entry (read before the store is closed)
local function brought_back(db, name)
  local keys = require "orket.store.keys" -- lazy: as accounts
  local users = require "orket.store.users" -- lazy: as accounts
  local live = {}
  for _, k in ipairs(keys.live(db, name)) do live[#live + 1] = string.format("%s (%s, %s)", k.name, k.id, k.role) end
  local lines = { #live == 0 and "no key of theirs comes back: they have none that is not revoked"
    or string.format("%d key%s of theirs work%s again: %s", #live, #live == 1 and "" or "s", #live == 1 and "s" or "",
      table.concat(live, ", ")) }
  local row = users.get(db, name)
  if row and row.hash:match("^!ldap:") then
    lines[#lines + 1] = string.format("if the directory disabled %s because it gives the name to another entry now, "
      .. "its next look disables them again: 'orket users enable %s --new-subject' hands the name to that entry "
      .. "instead, revoking these keys", name, name)
  end
  return table.concat(lines, "\n")
end

-- a change the store refused -> exit status: a usage error, said with the usage, or the failure
local function refused(cli, err, code)
  if code == "EUSAGE" then return cli.usage_error(cmd, "%s", err) end
  return cli.fail(code, "users: %s", err) or 1
end

-- users enable NAME --new-subject -> exit status (orket.serve.identity's hand_over)
local function hand_over(db, o, cli)
  local actor, localuse = cli.operator()
  local identity = require "orket.serve.identity" -- lazy: as accounts
  local res, err, code = identity.hand_over(db, o.name, { actor = actor.seat, audit_actor = localuse.operator(),
    route = "cli" })
  db:close()
  if not res then return refused(cli, err, code) end
  cli.say_operator()
  local ks, ps = {}, {}
  for i, k in ipairs(res.keys) do ks[i] = string.format("%s (%s)", k.name, k.id) end
  for i, m in ipairs(res.projects) do ps[i] = m.project .. ":" .. m.role end
  local function n(count, one) return string.format("%d %s%s", count, one, count == 1 and "" or "s") end
  io.stdout:write(string.format("handed %s to the directory's entry that has the name now: its next sign-in takes "
    .. "it, with the role its groups give; the old subject's %s revoked%s, %s ended, %s dropped%s; %s is "
    .. "enabled\n", res.name, n(#res.keys, "key"), #ks > 0 and (" (" .. table.concat(ks, ", ") .. ")") or "",
    n(res.sessions, "session"), n(#res.projects, "project membership"),
    #ps > 0 and (" (" .. table.concat(ps, ", ") .. ")") or "", res.name))
  return 0
end

-- users add, disable, enable, passwd, role or unlock -> exit status
local function change(accounts, db, o, hash, cli)
  if o.new_subject then return hand_over(db, o, cli) end
  local actor, localuse = cli.operator()
  local acts = {
    add = function() return accounts.add(db, o.name, o.role, hash, actor.seat) end,
    passwd = function() return accounts.set_password(db, o.name, hash, actor.seat) end,
    role = function() return accounts.set_role(db, o.name, o.new_role, actor.seat) end,
    unlock = function() return accounts.unlock(db, o.name, actor.seat) end,
  }
  local action = o.sub == "passwd" and "user_password" or "user_" .. o.sub
  local res, err, code = localuse.audited(db, action, nil, acts[o.sub] or function()
    return accounts.set_disabled(db, o.name, o.sub == "disable", actor.seat)
  end, accounts.subject)
  -- read before the store is closed: who there is to make one; what an enable brings back
  local none_left = res and res.no_admin_left and accounts.none_left(db, res.name, "this machine")
  local back = res and o.sub == "enable" and res.changed and brought_back(db, res.name)
  db:close()
  if not res then return refused(cli, err, code) end
  cli.say_operator()
  if SAID[o.sub] then
    io.stdout:write(SAID[o.sub](res), "\n")
  else
    io.stdout:write(string.format("%s %s (%s)%s\n", o.sub == "disable" and "disabled" or "enabled", res.name, res.role,
      res.changed and "" or ", as it was already"))
    if back then io.stdout:write(back, "\n") end
    if res.no_admin_left then
      cli.err("users: " .. none_left)
    end
  end
  return 0
end

function cmd.run(args, cli)
  local o, st = words(args, cli)
  if not o then return st end
  local accounts = require "orket.serve.accounts" -- lazy: as the store
  local hash, db
  if o.sub == "passwd" then -- the person first: a password asked of no one is asked for nothing
    db = cli.open_store(o.dir, false)
    if not db then return 1 end
    if not accounts.exists(db, o.name) then
      local msg = require("orket.store.users").unknown(db, o.name) -- lazy: as accounts
      db:close()
      return cli.fail("ENOENT", "users: %s", msg) or 1
    end
  end
  if o.sub == "add" or o.sub == "passwd" then
    hash, st = new_password(accounts, o, cli)
    if not hash then
      if db then db:close() end
      return st
    end
  end
  db = db or cli.open_store(o.dir, false, o.sub == "list")
  if not db then return 1 end
  if o.sub == "list" then return list_people(accounts, db, o.json) end
  return change(accounts, db, o, hash, cli)
end

return cmd
