-- orket users add|list|disable|enable: the local accounts people sign in to the web board
-- with (orket.serve.accounts). A password is read from the terminal (twice, echo off) or
-- from the environment variable --password-env names, never from the command line.
local jsonout = require "orket.jsonout"

local USAGE = "orket users add NAME --role viewer|operator|admin [--password-env VAR] | users list [--json] | "
  .. "users disable NAME | users enable NAME  [-C DIR]"
local cmd = { summary = "add, list, disable and enable the people who sign in to orket serve", usage = USAGE }
cmd.help = [[
A local account is a person with a name, a role and a password, for a server without an
identity provider. Only the password's Argon2id hash is stored. The person signs in to the
web board with name and password (or POST /v1/session {"user", "password"}), and the
journal and the audit name them as user:NAME. add asks the password on the terminal
(twice), or reads it from the environment variable --password-env names; it is never an
argument, which other users could read in the process list. disable ends the person's
sessions at once, also in a running 'orket serve'; enable lets them sign in again. See
docs/serve.md.]]

-- the new password: from the named variable, else asked twice on the terminal
local function password(env)
  if env then
    local v = os.getenv(env)
    if not v or v == "" then return nil, "--password-env " .. env .. ": that environment variable is unset or empty" end
    return v
  end
  local seal = require "orket.c.seal" -- lazy: only add asks
  local p, err = seal.read_tty("password: ")
  if not p then return nil, err .. ": give --password-env VAR" end
  if seal.read_tty("password again: ") ~= p then return nil, "the two passwords differ" end
  return p
end

function cmd.run(args, cli)
  local role, env, json
  local dir, pos = cli.words(cmd, args, { ["--json"] = function() json = true end }, "a person's name", {
    ["--role"] = { what = "viewer, operator or admin", set = function(v) role = v end },
    ["--password-env"] = { what = "the name of an environment variable", set = function(v) env = v end },
  })
  if not dir then return pos end
  local sub = pos[1]
  local known = { add = 2, list = 1, disable = 2, enable = 2 }
  if not known[sub] then
    return cli.usage_error(cmd, sub and ("unknown users command '" .. sub .. "'") or "users needs add, list, disable or enable")
  end
  if #pos ~= known[sub] then
    return cli.usage_error(cmd, known[sub] == 2 and "users %s needs one NAME" or "users %s takes no other word", sub)
  end
  if (role or env) and sub ~= "add" then return cli.usage_error(cmd, "--role and --password-env go with users add") end
  if json and sub ~= "list" then return cli.usage_error(cmd, "--json goes with users list") end
  if sub == "add" and not role then return cli.usage_error(cmd, "users add needs --role viewer, operator or admin") end
  local accounts = require "orket.serve.accounts" -- lazy: as the store
  local pass
  if sub == "add" then
    -- the name and role before the password is asked, the password's length after
    local ok, cerr = accounts.check(pos[2], role, string.rep("x", accounts.MIN_PASSWORD))
    if not ok then return cli.usage_error(cmd, "%s", cerr) end
    local perr
    pass, perr = password(env)
    if not pass then
      cli.err("users: %s", perr)
      return 1
    end
    ok, cerr = accounts.check(pos[2], role, pass)
    if not ok then return cli.usage_error(cmd, "%s", cerr) end
  end
  local db = cli.open_store(dir, false, sub == "list")
  if not db then return 1 end
  if sub == "list" then
    local list = accounts.list(db)
    db:close()
    if json then
      for _, u in ipairs(list) do setmetatable(u, nil) end
      io.stdout:write(jsonout.encode { users = jsonout.array(list) }, "\n")
    elseif #list == 0 then
      io.stdout:write("no people; add one with 'orket users add NAME --role operator'\n")
    end
    if not json then
      for _, u in ipairs(list) do
        io.stdout:write(string.format("%-24s %-8s added %s%s\n", u.name, u.role, u.created_at,
          u.disabled_at and ("  disabled " .. u.disabled_at) or ""))
      end
    end
    return 0
  end
  local res, err, code
  if sub == "add" then
    res, err, code = accounts.add(db, pos[2], role, pass)
  else
    res, err, code = accounts.set_disabled(db, pos[2], sub == "disable")
  end
  db:close()
  if not res then
    if code == "EUSAGE" then return cli.usage_error(cmd, "%s", err) end
    cli.fail(code, "users: %s", err)
    return 1
  end
  if sub == "add" then
    io.stdout:write(string.format("added %s (%s)\n", res.name, res.role))
  else
    io.stdout:write(string.format("%s %s (%s)%s\n", sub == "disable" and "disabled" or "enabled", res.name, res.role,
      res.changed and "" or ", as it was already"))
  end
  return 0
end

return cmd
