-- orket keys create|list|revoke: the API keys of orket serve (orket.serve.keys). A new
-- key is printed once, on stdout; only its id, name, role and keyed hash are stored.
local jsonout = require "orket.jsonout"
local keys = require "orket.serve.keys"

local USAGE = "orket keys create NAME --role viewer|operator|admin | keys list [--json] | keys revoke ID|NAME  [-C DIR]"
local cmd = { summary = "create, list and revoke API keys for orket serve", usage = USAGE }
cmd.help = [[
create prints a new key once (ork_<id>_<secret>); keep it: it cannot be shown again. A
viewer reads the board and its events, an operator may also run and answer, an admin may
also manage keys. list shows every key's id, name, role and state, never a secret; revoke
stops a key at once, also in a running 'orket serve'. See docs/serve.md.]]

function cmd.run(args, cli)
  local role, json
  local flags = {
    ["--json"] = function() json = true end,
  }
  local dir, pos = cli.words(cmd, args, flags, "a key's name",
    { ["--role"] = { what = "viewer, operator or admin", set = function(v) role = v end } })
  if not dir then return pos end
  local sub = pos[1]
  if sub ~= "create" and sub ~= "list" and sub ~= "revoke" then
    return cli.usage_error(cmd, sub and ("unknown keys command '" .. sub .. "'") or "keys needs create, list or revoke")
  end
  if sub == "create" then
    if #pos ~= 2 then return cli.usage_error(cmd, "keys create needs one NAME") end
    if not role then return cli.usage_error(cmd, "keys create needs --role viewer, operator or admin") end
    if not keys.ROLES[role] then return cli.usage_error(cmd, "unknown role '%s': use viewer, operator or admin", role) end
  elseif sub == "revoke" then
    if #pos ~= 2 then return cli.usage_error(cmd, "keys revoke needs one key id or name") end
  elseif #pos ~= 1 then
    return cli.usage_error(cmd, "keys list takes no other word")
  end
  if role and sub ~= "create" then return cli.usage_error(cmd, "--role goes with keys create") end
  local db = cli.open_store(dir, false, sub == "list")
  if not db then return 1 end
  if sub == "create" then
    local key, info, code = keys.create(db, dir, pos[2], role)
    db:close()
    if not key then
      if code == "EUSAGE" then return cli.usage_error(cmd, "%s", info) end
      cli.err("%s", info)
      return 1
    end
    io.stderr:write(string.format("created key %s (%s, %s); it is shown once, keep it now:\n", info.id, info.name, info.role))
    io.stdout:write(key, "\n")
    return 0
  elseif sub == "revoke" then
    local info, err = keys.revoke(db, pos[2])
    db:close()
    if not info then
      cli.err("%s", err)
      return 1
    end
    io.stdout:write(string.format("revoked key %s (%s, %s)\n", info.id, info.name, info.role))
    return 0
  end
  if json then
    local doc = keys.list_doc(db)
    db:close()
    io.stdout:write(jsonout.encode(doc), "\n")
    return 0
  end
  local list = keys.list(db)
  db:close()
  if #list == 0 then
    io.stdout:write("no keys; create one with 'orket keys create NAME --role viewer'\n")
    return 0
  end
  for _, k in ipairs(list) do
    io.stdout:write(string.format("%s  %-20s %-8s created %s%s\n", k.id, k.name, k.role, k.created_at,
      k.revoked_at and ("  revoked " .. k.revoked_at) or ""))
  end
  return 0
end

return cmd
