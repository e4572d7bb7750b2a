-- orket gate check: asks the gate about one tool call without running it, and prints the
-- decision with its reason and remedy. Loads Orket's roles/, tools/ and policies/ and the
-- project's (--workspace DIR, default the current directory) the way a run would, so the
-- role's own tool list applies as it does in a turn.
local json = require "cjson.safe"
local rt = require "orket.c.runtime"
local gate = require "orket.gate"
local tools = require "orket.tools"
local policy = require "orket.policy"
local roles_mod = require "orket.engine.roles"
local board = require "orket.board"
local config = require "orket.config"
local jsonout = require "orket.jsonout"
local cmdline = require "orket.cmdline"
local sm = require "orket.c.statemachine"
local fieldline = require "orket.fieldline"
local scriptfile = require "orket.scriptfile"

local cmd = { name = "gate", summary = "ask the tool gate about a call (orket gate check ...)" }
cmd.help = [[
Decides one tool call as the gate would during a run, without running it.
Exit status: 0 allow, 1 deny (or an error, said on stderr: the project's orket.lua does
not load, its roles, tools or policies do not (or one is a file, not a folder), or its
board cannot be read), 4 ask,
2 usage error (an unknown --role, or a --card the board does not hold).]]
cmd.args = {
  usage = "orket gate check --role ROLE --tool TOOL [--args JSON] [--seat SEAT] [--card ID | --card-status S]\n" ..
    "                  [--allow-tools a,b,...] [-C DIR] [--json]",
  { "check", key = "subcommand", missing = "gate needs a subcommand (check)",
    check = function(v) return v == "check" and v, "unknown gate subcommand '" .. v .. "'" end },
  { "--role", value = "ROLE", what = "a value", many = true, required = true,
    help = "the role playing the turn: its tools are the ones it may call\n(built-in roles and the project's roles/); "
      .. "repeat it for the\nseat's other roles, which policies may also match" },
  { "--seat", value = "SEAT", what = "a value", help = "the actor's seat (default: the team's first seat, by name, that\nholds the first role; without one, the role's name)" },
  { "--tool", value = "TOOL", what = "a value", required = true, help = "the tool name" },
  { "--args", value = "JSON", what = "a value", help = "the call's arguments, a JSON object (default {})" },
  { "--card", value = "ID", what = "a value", help = "the card being worked, read from the project's board: its status,\n"
    .. "type, who worked it and whether its dependencies are done, as a\nrun would see them" },
  { "--card-status", value = "S", what = "a value", key = "status",
    check = cmdline.one_of(sm.statuses(), "--card-status: no card status '%s' (statuses: "
      .. table.concat(sm.statuses(), ", ") .. ")"),
    help = "instead of --card: the status of a card being worked (default\nin_progress)" },
  { "--allow-tools", value = "LIST", what = "a value", key = "allow", empty = true, -- "": no tool at all
    help = "the tools the role may use, comma-separated, instead of the\nrole's own list (\"\": none)" },
  { "-C", alias = "--workspace", value = "DIR", what = "a directory", key = "workspace", default = ".", once = cmdline.one_dir,
    check = cmdline.a_dir("-C", true), -- named as given: -C or --workspace
    help = "the project whose roles/, policies/ and tools/ apply (default .)" },
  { "--json", help = "print the decision as JSON" },
}

-- The call's arguments, checked -> call_args | nil, exit status (the directory is, as it is
-- read: its entry's check).
local function checked_words(o, cli)
  if o.card and o.status then return nil, cli.usage_error(cmd, "--card and --card-status exclude each other") end
  local call_args = {}
  if o.args then
    local err
    call_args, err = json.decode(o.args)
    if call_args == nil then return nil, cli.usage_error(cmd, "--args is not valid JSON: %s", err) end
    -- (an array decodes to a table too)
    if type(call_args) ~= "table" or not o.args:find("^%s*{") then
      return nil, cli.usage_error(cmd, "--args must be a JSON object")
    end
  end
  return call_args
end

-- Orket's policies and the project's -> set | nil, msg, CODE. A policy not read (policies/x.lua.txt,
-- a Policies/ folder) is a deny not in force: refused, as a run refuses it, not answered without it.
local function policies_of(home, dir)
  local paths, lerr, lcode = policy.files_in({ home .. "/policies", dir .. "/policies" }, dir)
  if lerr then return nil, lerr, lcode end
  return policy.load(paths, dir)
end

-- Orket's roles, tools and policies and the workspace's, loaded as a run loads them
-- -> { roles, tools, policies } | nil, exit status (the error printed).
local function load_rules(o, cli)
  local home, dir = rt.home(), o.workspace
  -- a project's file named as other commands name it: relative to the project (the name
  -- each script is loaded under, given dir), under -C DIR from where the command ran; a
  -- mistake in a script (EINVAL: its checks keep field paths, not positions) placed at its
  -- line as `orket validate` and `orket run` place it
  local function named(msg, code)
    if code == "EINVAL" then msg = fieldline.locate(msg, dir, function(path) return (scriptfile.read(path)) end) end
    return cli.in_dir(dir, msg)
  end
  -- roles/, tools/ or policies/ that is a file: the built-in scripts alone would decide,
  -- unlike the run, which refuses the project (config.script_folders)
  -- a folder of a project's tree: its scripts are files agents wrote, never loaded
  local ferr = config.in_tree(dir) or config.script_folders(dir)
  if ferr then
    cli.err("%s", named(ferr))
    return nil, 1
  end
  local role_set, rerr, rcode = roles_mod.load(roles_mod.dirs(dir), dir)
  if not role_set then
    cli.err("%s", named(rerr, rcode))
    return nil, 1
  end
  for _, r in ipairs(o.role) do
    if not role_set.by_name[r] then
      return nil, cli.usage_error(cmd, "--role %s: no role named %q (roles: %s)", r, r, table.concat(role_set.names, ", "))
    end
  end
  local reg, terr, tcode = tools.load_dirs({ home .. "/tools", dir .. "/tools" }, dir)
  if not reg then
    cli.err("%s", named(terr, tcode))
    return nil, 1
  end
  local set, perr, pcode = policies_of(home, dir)
  if not set then
    cli.err("%s", named(perr, pcode))
    return nil, 1
  end
  return { roles = role_set, tools = reg, policies = set }
end

-- The card's facts as a run gathers them (gate.card_facts), or a card in --card-status
-- -> facts | nil, exit status (the error printed). A card the board does not hold is a
-- mistake in the argument, a usage error as an unknown --role is: 1 is deny's answer.
local function card_facts(o, cli)
  -- without --card, a stand-in whose name reads as one in the gate's messages (a note says so)
  if not o.card then return { id = "CARD", status = o.status or "in_progress" } end
  local db = cli.open_store(o.workspace, false, true)
  if not db then return nil, 1 end
  local b = board.open(db)
  local c, cerr, ccode = b:get(o.card)
  local facts = c and gate.card_facts(b, c)
  db:close()
  if ccode == "ENOENT" then return nil, cli.usage_error(cmd, "--card %s: %s", o.card, cerr) end
  if not c then cli.err("--card %s: %s", o.card, cerr) end
  return facts, 1
end

-- The seat a run would give the role's turn: the first of the team's seats (by name) that
-- holds it -> name | nil
local function seat_of(team, role)
  if type(team) ~= "table" then return nil end
  local names = {}
  for name, t in pairs(team) do
    if type(t) == "table" and type(t.roles) == "table" then
      for _, r in ipairs(t.roles) do
        if r == role then names[#names + 1] = name break end
      end
    end
  end
  table.sort(names)
  return names[1]
end

-- The seat the call is judged for, and the notes naming the seat and card that stand in
-- for those the command line did not give -> seat, seat_note | nil, card_note | nil
local function stand_ins(o, team, card)
  local seat, seat_note, card_note = o.seat, nil, nil
  if not seat then
    seat = seat_of(team, o.role[1])
    if seat then
      seat_note = string.format("no --seat: the team's seat %s, which holds %s", seat, o.role[1])
    else
      seat = o.role[1]
      seat_note = string.format("no --seat, and no seat of the team holds %s: the seat is named '%s' after it",
        o.role[1], seat)
    end
  end
  if not o.card then
    card_note = string.format("no --card: CARD stands for a card in status %s with its dependencies done", card.status)
  end
  return seat, seat_note, card_note
end

-- Without --card, the policy rules that name a card (card = "START-*") the stand-in CARD
-- does not match: never applied here, which a decision cannot say -> note | nil
local function card_rules_note(o, set)
  if o.card then return nil end
  local skipped = {}
  for _, rule in ipairs(set.rules) do
    local glob = rule.card
    if type(glob) == "string" then
      local pat = "^" .. glob:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*+", ".*"):gsub("%?", ".") .. "$"
      if not ("CARD"):find(pat) then
        skipped[#skipped + 1] = string.format("%s (card = %q)", tostring(rule.name), glob)
      end
    end
  end
  if #skipped == 0 then return nil end
  local one = #skipped == 1
  return string.format("no --card: %s %s never %s the stand-in CARD, so %s not applied; give --card ID to judge %s",
    one and "the rule" or "the rules", table.concat(skipped, ", "), one and "matches" or "match",
    one and "it was" or "they were", one and "it" or "them")
end

local function print_decision(d, as_json)
  if as_json then
    -- jsonout: keys sorted (the same decision prints the same bytes) and paths plain
    io.stdout:write(jsonout.encode { verdict = d.verdict, code = d.code, reason = d.reason,
      remedy = d.remedy }, "\n")
  else
    io.stdout:write(d.verdict, " (", d.code, ")\n", "reason: ", d.reason, "\n")
    if d.remedy ~= "" then io.stdout:write("remedy: ", d.remedy, "\n") end
  end
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local call_args, werr = checked_words(o, cli)
  if not call_args then return werr end
  local rules, lerr = load_rules(o, cli)
  if not rules then return lerr end
  -- a turn plays one role and may call that role's tools; --allow-tools replaces the list
  local allowed = rules.roles.by_name[o.role[1]].tools
  if o.allow then
    allowed = {}
    for t in o.allow:gmatch("[^,%s]+") do allowed[#allowed + 1] = t end
  end
  local card, cst = card_facts(o, cli)
  if not card then return cst end
  -- the programs run_command runs unasked: orket.lua's verify.commands, when it reads
  -- without orket.lua, no project's programs; one that does not load is said, not taken for
  -- none: the decision would differ from the run's, which refuses to start
  local cfg, s, ccode = config.settings(o.workspace)
  if not cfg and ccode ~= "ENOENT" then
    cli.err("%s", cli.in_dir(o.workspace, s)) -- DIR/orket.lua under -C DIR, as run names it
    return 1
  end
  if not cfg then s = nil end
  local seat, seat_note, card_note = stand_ins(o, s and s.team, card)
  local d = gate.check {
    actor = { seat = seat, roles = o.role }, tool = o.tool, args = call_args,
    card = card, tools = rules.tools, policies = rules.policies, allowed = allowed, commands = s and s.verify.commands,
  }
  print_decision(d, o.json)
  -- what the decision names that the command line did not say, where it names it: a
  -- placeholder is never taken for a real name (JSON keeps its four fields)
  if not o.json then
    local said = d.reason .. " " .. (d.remedy or "")
    local notes = { seat_note and said:find(seat, 1, true) and seat_note or nil,
      card_note and said:find("CARD", 1, true) and card_note or nil, card_rules_note(o, rules.policies) }
    for i = 1, 3 do if notes[i] then io.stdout:write("note: ", notes[i], "\n") end end
  end
  return d.verdict == "allow" and 0 or d.verdict == "ask" and 4 or 1
end

return cmd
