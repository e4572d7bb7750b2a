-- orket gate check: asks the gate about one tool call without running it, and prints the
-- decision with its reason and remedy. Loads Orket's roles/, tools/ and policies/ and the
-- project's (--workspace DIR, default the current directory) the way a run would, so the
-- role's own tool list applies as it does in a turn.
local json = require "cjson.safe"
local uv = require "luv"
local rt = require "orket.c.runtime"
local gate = require "orket.gate"
local tools = require "orket.tools"
local policy = require "orket.policy"
local roles_mod = require "orket.engine.roles"
local board = require "orket.board"
local config = require "orket.config"
local settings = require "orket.settings"
local jsonout = require "orket.jsonout"
local USAGE = "orket gate check --role ROLE --tool TOOL --args JSON [--seat SEAT] [--card ID | --card-status S]\n" ..
  "                  [--allow-tools a,b,...] [--workspace DIR] [--json]"

local HELP = [[
Decides one tool call as the gate would during a run, without running it.
  --role ROLE          the role playing the turn: its tools are the ones it may call
                       (built-in roles and the project's roles/); repeat it for the
                       seat's other roles, which policies may also match
  --seat SEAT          the actor's seat (default: the first role)
  --tool TOOL          the tool name
  --args JSON          the call's arguments, a JSON object (default {})
  --card ID            the card being worked, read from the project's board: its status,
                       type, who worked it and whether its dependencies are done, as a
                       run would see them
  --card-status S      instead of --card: the status of a card being worked (default
                       in_progress)
  --allow-tools LIST   the tools the role may use, comma-separated, instead of the
                       role's own list
  --workspace DIR      the project whose roles/, policies/ and tools/ apply (default .)
  --json               print the decision as JSON
Exit status: 0 allow, 1 deny, 4 ask, 2 usage error.]]

local function run(args, cli)
  local cmd = { usage = USAGE }
  if args[1] ~= "check" then
    return cli.usage_error(cmd, args[1] and ("unknown gate subcommand '" .. args[1] .. "'") or "gate needs a subcommand (check)")
  end
  local o = { roles = {} }
  local i = 2
  local flags = { ["--role"] = "role", ["--seat"] = "seat", ["--tool"] = "tool", ["--args"] = "args",
    ["--card-status"] = "status", ["--workspace"] = "workspace", ["--allow-tools"] = "allow", ["--card"] = "card" }
  while args[i] do
    local a = args[i]
    if a == "--json" then
      o.json = true
      i = i + 1
    elseif flags[a] then
      local v = args[i + 1]
      if v == nil then return cli.usage_error(cmd, "%s needs a value", a) end
      if flags[a] == "role" then o.roles[#o.roles + 1] = v else o[flags[a]] = v end
      i = i + 2
    else
      return cli.usage_error(cmd, "unknown option '%s'", a)
    end
  end
  if #o.roles == 0 then return cli.usage_error(cmd, "--role is required") end
  if not o.tool then return cli.usage_error(cmd, "--tool is required") end
  if o.card and o.status then return cli.usage_error(cmd, "--card and --card-status exclude each other") end
  local call_args = {}
  if o.args then
    local err
    call_args, err = json.decode(o.args)
    if call_args == nil then return cli.usage_error(cmd, "--args is not valid JSON: %s", err) end
    if type(call_args) ~= "table" then return cli.usage_error(cmd, "--args must be a JSON object") end
  end
  local dir = o.workspace or "."
  local st = uv.fs_stat(dir)
  if not st then return cli.usage_error(cmd, "--workspace %s: no such directory", dir) end
  if st.type ~= "directory" then return cli.usage_error(cmd, "--workspace %s: not a directory", dir) end
  local home = rt.home()
  local role_set, rerr = roles_mod.load(roles_mod.dirs(dir))
  if not role_set then
    cli.err("%s", rerr)
    return 1
  end
  for _, r in ipairs(o.roles) do
    if not role_set.by_name[r] then
      return cli.usage_error(cmd, "--role %s: no role named %q (roles: %s)", r, r, table.concat(role_set.names, ", "))
    end
  end
  local reg, terr = tools.load_dirs { home .. "/tools", dir .. "/tools" }
  if not reg then
    cli.err("%s", terr)
    return 1
  end
  local set, perr = policy.load(policy.files_in { home .. "/policies", dir .. "/policies" })
  if not set then
    cli.err("%s", perr)
    return 1
  end
  -- a turn plays one role and may call that role's tools; --allow-tools replaces the list
  local allowed = role_set.by_name[o.roles[1]].tools
  if o.allow then
    allowed = {}
    for t in o.allow:gmatch("[^,%s]+") do allowed[#allowed + 1] = t end
  end
  -- the card's facts as a run gathers them (gate.card_facts), or a card in that status
  local card = { id = "cli", status = o.status or "in_progress" }
  if o.card then
    local db = cli.open_store(dir, false, true)
    if not db then return 1 end
    local b = board.open(db)
    local c, cerr = b:get(o.card)
    if c then card = gate.card_facts(b, c) end
    db:close()
    if not c then
      cli.err("--card %s: %s", o.card, cerr)
      return 1
    end
  end
  -- the programs run_command runs unasked: orket.lua's verify.commands, when it reads
  local commands
  local cfg = config.load(dir)
  local s = cfg and settings.resolve(cfg)
  if s then commands = s.verify.commands end
  local d = gate.check {
    actor = { seat = o.seat or o.roles[1], roles = o.roles }, tool = o.tool, args = call_args,
    card = card, tools = reg, policies = set, allowed = allowed, commands = commands,
  }
  if o.json then
    -- jsonout: keys sorted (the same decision prints the same bytes) and paths plain
    io.stdout:write(jsonout.encode { verdict = d.verdict, code = d.code, reason = d.reason,
      remedy = d.remedy }, "\n")
  else
    io.stdout:write(d.verdict, " (", d.code, ")\n", "reason: ", d.reason, "\n")
    if d.remedy ~= "" then io.stdout:write("remedy: ", d.remedy, "\n") end
  end
  return d.verdict == "allow" and 0 or d.verdict == "ask" and 4 or 1
end

return { summary = "ask the tool gate about a call (orket gate check ...)", usage = USAGE, help = HELP, run = run }
