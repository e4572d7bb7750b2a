-- orket keys create|list|revoke: the API keys of orket serve (orket.serve.keys). A new
-- key is printed once, on stdout; only its id, name, role and keyed hash are stored.
local uv = require "luv"
local jsonout = require "orket.jsonout"
local config = require "orket.config"
local keys = require "orket.serve.keys"
local cmdline = require "orket.cmdline"
local localuse = require "orket.serve.localuse"
local users = require "orket.store.users"

local cmd = { name = "keys", summary = "create, list and revoke API keys for orket serve" }
cmd.args = {
  usage = "orket keys create NAME --role viewer|operator|admin [--for PERSON] | keys list [--json] | keys revoke ID|NAME  [-C DIR]",
  text = "a key's name",
  { "create|list|revoke", key = "sub", missing = "keys needs create, list or revoke",
    check = cmdline.one_of({ "create", "list", "revoke" }, "unknown keys command '%s'") },
  { "NAME|ID", key = "words", many = true, empty = true }, -- an empty one: misused says which
  -- given twice, the key's power is refused rather than taken from the later word
  { "--role", value = "ROLE", what = "viewer, operator or admin", once = cmdline.one_value("--role"),
    help = "the new key's role: viewer, operator or admin" },
  { "--json", help = "list the keys as JSON" },
  { "--for", value = "PERSON", key = "person", what = "a person's name", once = cmdline.one_value("--for"),
    help = "a personal key of that person (docs/teams.md)" },
  cmdline.DIR,
}
cmd.help = [[
create prints a new key once (ork_<id>_<secret>); keep it: it cannot be shown again (one
whose secret could not be written, stdout closed or full or its reader gone, is revoked
again at once, exit 1). A viewer reads the board and its events, an operator may also run
and answer, an admin may also manage keys. --for PERSON makes a personal key: it acts as that person (user:NAME),
in their projects with their roles, never more than its own role, and stops while they are
disabled; its role may be no stronger than their strongest in the projects served here. list shows every key's id, name, role and state, never a secret; revoke
stops a key at once, also in a running 'orket serve'. See docs/serve.md.]]

-- A word quoted back in a usage error, cut: a hostile argument is not echoed whole.
local function quoted(w)
  return #w > 60 and (w:sub(1, 60) .. "...") or w
end

-- The words of each subcommand, checked -> exit status when they are wrong.
local function misused(o, cli)
  local n = #(o.words or {})
  if o.sub == "create" then
    if n == 0 then return cli.usage_error(cmd, "keys create needs one NAME") end
    if n > 1 then return cli.usage_error(cmd, "keys create takes one NAME, not '%s' as well", quoted(o.words[2])) end
    -- the API's rule and words (orket.serve.keys), said before the store is opened
    local bad = keys.name_problem(o.words[1])
    if bad then return cli.usage_error(cmd, "keys create: %s", bad) end
    if not o.role then return cli.usage_error(cmd, "keys create needs --role viewer, operator or admin") end
    if not keys.ROLES[o.role] then return cli.usage_error(cmd, "unknown role '%s': use viewer, operator or admin", o.role) end
  elseif o.sub == "revoke" then
    if n == 0 then return cli.usage_error(cmd, "keys revoke needs one key id or name") end
    if n > 1 then return cli.usage_error(cmd, "keys revoke takes one key id or name, not '%s' as well", quoted(o.words[2])) end
    if o.words[1] == "" then return cli.usage_error(cmd, "keys revoke: the key's id or name is empty") end
  elseif n ~= 0 then
    return cli.usage_error(cmd, "keys list takes no other word ('%s')", quoted(o.words[1]))
  end
  -- create and revoke print plain text: a --json there would be a parser's empty promise
  if o.json and o.sub ~= "list" then return cli.usage_error(cmd, "--json goes with keys list") end
  if (o.role or o.person) and o.sub ~= "create" then return cli.usage_error(cmd, "--role and --for go with keys create") end
  return nil
end

-- A person's key made here is held to the person's strongest role in the projects a server of
-- this folder hosts, as POST /v1/users/{name}/keys holds it (orket.serve.projects.strongest):
-- a key stored stronger would act so the day its person were promoted -> nil | exit status
local function beyond_person(db, o, cli)
  local projects = require "orket.serve.projects" -- lazy: it loads the settings
  if not users.get(db, o.person) then return nil end -- keys.create names it
  local known, err = projects.hosted(db, o.dir)
  if not known then
    cli.err("%s", err)
    return 1
  end
  local top = projects.strongest(db, { user = o.person }, o.person, known)
  local grant = keys.grant_words(o.person, o.role, "orket projects grant PROJECT " .. o.person .. " ROLE", not top)
  if not top then
    cli.err("%s is a member of no project: a key of theirs would reach nothing; %s", o.person, grant)
    return 1
  end
  if not keys.allows(top, o.role) then
    cli.err("%s's strongest role is %s: a key of theirs may be %s; %s", o.person, top, keys.cap_words(top, o.role), grant)
    return 1
  end
end

-- The secret on stdout -> true | nil, why: written and flushed. SIGPIPE is caught meanwhile,
-- so that a reader gone (`| true`) is a failed write here, not the process's end.
local function shown(key)
  local pipe = uv.new_signal()
  pipe:start("sigpipe", function() end)
  local ok, err = io.stdout:write(key, "\n")
  if ok then ok, err = io.stdout:flush() end
  pipe:close()
  return ok, err
end

-- A key whose secret could not be shown (stdout closed, a full disk, its reader gone) is
-- revoked again, audited: stored, it kept its name and a power nobody could use, and the
-- script that asked was told it succeeded. -> 1
local function unshown(db, o, cli, info, why)
  local actor = cli.operator().seat
  local ok, err = localuse.audited(db, "key_revoke", nil, function() return keys.revoke(db, info.id, actor) end,
    keys.subject)
  if ok then
    cli.err("key %s (%s) was not shown: its secret could not be written (%s); it is revoked again, as nobody has "
      .. "it: create another (the name is free)", info.id, info.name, tostring(why))
  else
    cli.err("key %s (%s) was created but not shown: its secret could not be written (%s), and revoking it failed "
      .. "(%s): revoke it with 'orket keys revoke %s%s'", info.id, info.name, tostring(why), tostring(err), info.id,
      config.at(o.dir))
  end
  return 1
end

local function create(db, o, cli)
  local actor = cli.operator().seat
  local refused = o.person and beyond_person(db, o, cli)
  if refused then return refused end
  local key, info, code = localuse.audited(db, "key_create", nil, function()
    return keys.create(db, o.dir, o.words[1], o.role, actor, o.person)
  end, keys.subject)
  if not key then
    if code == "EUSAGE" then return cli.usage_error(cmd, "%s", info) end
    cli.err("%s", info)
    return 1
  end
  cli.say_operator()
  io.stderr:write(string.format("created key %s (%s, %s%s); it is shown once, keep it now:\n", info.id, info.name, info.role,
    info.user and (", of " .. info.user) or ""))
  local ok, why = shown(key)
  if not ok then return unshown(db, o, cli, info, why) end
  return 0
end

local function revoke(db, o, cli)
  local actor = cli.operator().seat
  local info, err = localuse.audited(db, "key_revoke", nil, function() return keys.revoke(db, o.words[1], actor) end,
    keys.subject)
  if not info then
    cli.err("%s", err)
    return 1
  end
  cli.say_operator()
  -- a person's key says whose it was: one name may be several people's keys
  io.stdout:write(string.format("revoked key %s (%s, %s%s)\n", info.id, info.name, info.role,
    info.user and (", of " .. info.user) or ""))
  return 0
end

local function list(db, o)
  if o.json then
    io.stdout:write(jsonout.encode(keys.list_doc(db)), "\n")
    return 0
  end
  local rows = keys.list(db)
  if #rows == 0 then
    io.stdout:write("no keys; create one with 'orket keys create NAME --role viewer'\n")
    return 0
  end
  for _, k in ipairs(rows) do
    io.stdout:write(string.format("%s  %-20s %-8s created %s%s%s\n", k.id, k.name, k.role, k.created_at,
      k.user_name and ("  of " .. k.user_name) or "", k.revoked_at and ("  revoked " .. k.revoked_at) or ""))
  end
  return 0
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local bad = misused(o, cli)
  if bad then return bad end
  local db = cli.open_store(o.dir, false, o.sub == "list")
  if not db then return 1 end
  local status = ({ create = create, revoke = revoke, list = list })[o.sub](db, o, cli)
  db:close()
  return status
end

return cmd
