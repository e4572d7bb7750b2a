-- orket.validate: checks a project without running anything: orket.lua (every setting),
-- epics/, roles/, tools/, policies/ and routing.lua, each file on its own so that every
-- broken file is reported, then the links between them over whatever loaded (team roles
-- exist, role tools exist, a reviewer seat, seat models name configured providers, policy
-- rules name existing tools, roles and seats, cards name seats of the team and not the only
-- reviewer's, issue dependencies). orket.lua's MCP servers are started (orket.mcp.manager)
-- to list the tools roles and policies may name. Uses orket.config, orket.import,
-- orket.engine.scriptcheck (the scripts), orket.settings and orket.policy. Prints nothing.
local composefile = require "orket.sandboxes.composefile"
local workspace = require "orket.workspace"
local config = require "orket.config"
local import = require "orket.import"
local settings = require "orket.settings"
local policy = require "orket.policy"
local scriptfile = require "orket.scriptfile"
local fieldline = require "orket.fieldline"
local nearest = require "orket.nearest"
local scriptcheck = require "orket.engine.scriptcheck"
local sm = require "orket.c.statemachine"
local spend = require "orket.engine.spend"
local llm = require "orket.llm"
local scripted = require "orket.llm.scripted"
local board = require "orket.board"
local project = require "orket.project"
local imports_store = require "orket.store.imports"
local identity = require "orket.serve.identity"
local signin = require "orket.serve.signin"
local serve_projects = require "orket.serve.projects"
local manager = require "orket.mcp.manager"
local mcp_client = require "orket.mcp.client"
local mcp_settings = require "orket.settings.mcp"
local experiments = require "orket.settings.experiments"
local secret = require "orket.settings.secret"
local signin_settings = require "orket.settings.signin"
local inert = require "orket.inert"
local cost = require "orket.cost"
local uv = require "luv"
local rt = require "orket.c.runtime"
local wsnames = require "orket.c.workspace" -- its name rules (core/workspace.c)

local M = {}

-- Top-level settings of orket.lua (orket.settings owns the schema).
M.KNOWN = settings.SETTINGS

-- The text to find a line in: never a FIFO or a device (the problem may be that it is one).
local function read(path) return (scriptfile.read(path, import.MAX_FILE)) end

-- Adds a problem from a message "file:line: text" or "file: field.path: text", its line
-- found where the message has none (orket.fieldline.place).
local function add(out, dir, msg, default_file, anchor)
  scriptcheck.add(out, dir, msg, default_file, anchor, read)
end

local exists, names_of = scriptcheck.exists, scriptcheck.names_of

-- sign_in.project_roles: each project it names must be one a server of dir hosts (the
-- default, serve.projects, those `orket projects add` put in the store), or `orket serve`
-- refuses to start; said here in its words (orket.serve.identity's unhosted), with the line.
-- The added projects are known from a SQLite store alone (read, never made): a project on
-- PostgreSQL is not asked (validate opens no connection), a folder with no store yet has
-- none added.
local function check_signin_projects(dir, out, data)
  local ok, s = pcall(settings.resolve, { sign_in = data.sign_in, serve = data.serve })
  local roles = ok and s and s.sign_in and s.sign_in.project_roles
  if not roles then return end -- none, or a bad section: said by settings.check
  if project.database_url(dir) ~= false then return end
  local hosted
  if uv.fs_stat(dir .. "/.orket/orket.db") then
    local db = project.open_store(dir, false, true)
    if not db then return end -- the store's problem, said by the commands that open it
    hosted = serve_projects.hosted(db, dir)
    db:close()
    if not hosted then return end -- (a project named twice: serve's own refusal)
  else
    hosted = { [serve_projects.DEFAULT] = true }
    for name in pairs(s.serve.projects or {}) do hosted[name] = true end
  end
  for _, msg in ipairs(identity.unhosted(roles, hosted)) do add(out, dir, msg) end
end

-- a provider or directory of sign_in reached in clear on another host: `orket serve` warns
-- of it at its start, in the same words (orket.serve.signin's cleartext); a bind_dn whose
-- password's variable is unset or blank here, on which it refuses to start
local function check_signin_clear(dir, warnings, data, out)
  local ok, s = pcall(settings.resolve, { sign_in = data.sign_in })
  if not (ok and s and s.sign_in) then return end -- none, or a bad section: said by settings.check
  for _, w in ipairs(signin.cleartext(s.sign_in)) do add(warnings, dir, w) end
  local nopw = signin_settings.service_password(s.sign_in.ldap)
  if nopw then add(out, dir, nopw) end
end

-- orket.lua: every problem of its settings (orket.settings.check), then the scripted
-- models' files as a run would load them. -> cfg (nil when models are broken), team (nil
-- when the team section is), the mcp section (nil when it is broken).
local function check_config(dir, out)
  local data, err, code = config.read(dir)
  if not data then
    add(out, dir, code == "ENOENT" and M.not_found(dir) or err, "orket.lua")
    return nil, nil
  end
  -- each section's problems in the order of the file: the line each is placed at
  local function line(m) return select(2, fieldline.in_project(m, dir, read)) end
  for _, p in ipairs(settings.check(data, line)) do add(out, dir, p) end
  check_signin_projects(dir, out, data)
  -- each secret "NAME" the store or the environment must give (orket.settings.secret)
  for _, p in ipairs(secret.problems(secret.bind_all(data, dir), dir)) do add(out, dir, p) end
  -- its problems are among those above; of the environment, only what gives a secret
  local cfg = config.finish(data, dir, function(k) return k:find("^" .. secret.ENV_PREFIX) and os.getenv(k) or nil end)
  local ts = settings.resolve { team = data.team }
  local mok, msection = pcall(mcp_settings.section, data.mcp) -- its problems are among check's
  if cfg then
    -- The scripted models' files, loaded as a run would (a mistake there is the run's
    -- first failure otherwise); each problem with its file and line.
    for _, name in ipairs(names_of(cfg.models.providers)) do
      local p = cfg.models.providers[name]
      if p.kind == "scripted" and p.file then
        if not exists(p.file) then
          add(out, dir, "orket.lua: models.providers." .. name .. ".file: the scripted model's file "
            .. p.file:gsub("^%./", "") .. " does not exist")
        else
          local ok, serr = scripted.load(p, name)
          if not ok then add(out, dir, serr, p.file) end
        end
      end
    end
  end
  return cfg, ts and ts.team, mok and msection or nil, data
end

-- With a money budget set, a model of the project without a price in a budget's currency
-- has calls that count against no money budget: said now, as a run says it at the model's
-- first call (budget_unpriced). Offline models (scripted, replay) cost nothing.
local function check_unpriced(dir, warnings, data, cfg, team, by_name)
  local ok, s = pcall(settings.resolve, data)
  if not ok or not s or not cfg then return end
  local currencies, first = {}, nil
  for _, scope in ipairs(spend.SCOPES) do
    local b = s.budgets["cost_per_" .. scope]
    if type(b) == "table" and b.currency then
      currencies[b.currency] = true
      first = first or ("budgets.cost_per_" .. scope)
    end
  end
  if not first then return end
  local prices = cost.prices(cfg.models.prices) or {}
  local online = false
  for _, m in ipairs(llm.models_named(cfg.models, team, by_name, data.experiments)) do
    local prov = m:match("^([^:]+):")
    local kind = prov and cfg.models.providers[prov] and cfg.models.providers[prov].kind
    if kind ~= "scripted" and kind ~= "replay" then
      online = true
      local price = prices[m]
      local why = not price and "has no price in models.prices"
        or not currencies[price.currency] and string.format("is priced in %s, the currency of no money budget",
          price.currency)
      if why then
        add(warnings, dir, string.format("orket.lua: %s: %s %s, so its calls count against no money budget "
          .. "(a run says so at its first call: budget_unpriced)", first, inert.line(m), why), "orket.lua")
      end
    end
  end
  -- nothing is sent as max_tokens then (a default of Orket's would be refused by models that
  -- take another field, or pass a small context window): the check's 4096 is no bound
  if online and s.budgets.max_output_tokens == 0 then
    add(warnings, dir, string.format("orket.lua: %s: budgets.max_output_tokens is 0, so nothing bounds a call's "
      .. "answer: the check before each call assumes %d output tokens, and a call that answers more passes the "
      .. "budget by the rest; set budgets.max_output_tokens (sent as max_tokens) for the budget to hold", first,
      spend.DEFAULT_MAX_OUTPUT), "orket.lua")
  end
end

-- orket.lua's MCP servers, started as a run's listing starts them (a stdio server in a
-- scratch directory of its own, each request bound by the server's timeout_ms), listed, and stopped: a role or a policy naming SERVER__TOOL
-- is checked against the tools the server has. -> {name -> {tools = {names}, why = msg,
-- refused = the tools it lists that are refused, each {name=, why=, naming=}}}
-- (why: it could not be started; its tools are then taken on trust, as a run does until
-- the server answers).
local function start_mcp(dir, section)
  if not section or #section.names == 0 then return {} end
  local status, err = manager.probe(section, dir)
  local out = {}
  if not status then
    for _, name in ipairs(section.names) do out[name] = { tools = {}, why = tostring(err) } end
    return out
  end
  for _, e in ipairs(status) do
    out[e.name] = { tools = e.tools, why = e.why and tostring(e.why) or nil, refused = e.refused or {} }
  end
  return out
end

-- The links between orket.lua and the scripts: seats' and roles' models, the team's roles,
-- a reviewer seat, the roles' tools, and the tools, roles and seats policy rules name.
-- verify.tool_limits is keyed by tool: a name of no tool (run_test for run_tests) would
-- never apply, its limits silently not in force
local function check_tool_limits(dir, out, cfg, tool_names, broken, unlisted_tool)
  -- (a verify or tool_limits of the wrong shape is orket.lua's own check's to say)
  local v = type(cfg) == "table" and cfg.verify
  local limits = type(v) == "table" and v.tool_limits
  if type(limits) ~= "table" then return end
  local names = {}
  for name in pairs(limits) do
    if type(name) == "string" then names[#names + 1] = name end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    if not tool_names[name] and not broken[name] and not unlisted_tool(name) then
      add(out, dir, nearest.hint(string.format("orket.lua: verify.tool_limits.%s: no tool named %q (tools: %s)",
        name, name, table.concat(names_of(tool_names), ", "))), "orket.lua")
    end
  end
end

local function check_links(dir, out, cfg, team, by_name, tool_names, sets, broken, servers, half)
  if cfg then
    for _, m in ipairs(llm.check_models(cfg.models, team or {}, by_name)) do
      add(out, dir, m, "orket.lua", m:match("^orket%.lua: team%.([%w_%-]+)%.")
        and fieldline.table_set(m:match("^orket%.lua: team%.([%w_%-]+)%.")) or nil)
    end
  end
  local s = team and { team = team }
  if s then
    for _, seat in ipairs(settings.seats(s)) do
      for i, r in ipairs(team[seat].roles) do
        if not by_name[r] and not broken[r] then
          -- the roles known, as a run's message gives them: the nearest is named (orket.nearest)
          add(out, dir, string.format("orket.lua: team.%s.roles[%d]: no role named %q (roles: %s)", seat, i, r,
            table.concat(names_of(by_name), ", ")), nil, fieldline.table_set(seat))
        end
      end
    end
    if #settings.seats_with(s, "integrity_guard") == 0 then
      add(out, dir, "orket.lua: team: no seat holds the integrity_guard role, so nothing could be reviewed")
    end
  end
  -- a variant's role (docs/cost.md, "Experiments"), once orket.lua's section checked out
  local ok_x, xs = pcall(experiments.section, cfg and cfg.experiments, cfg and cfg.models)
  local xerr = ok_x and experiments.check_roles(xs, by_name) or nil
  if xerr then add(out, dir, xerr) end
  -- the MCP servers' tools: a started server's by name; one that could not start, any of
  -- its names (SERVER__*), as a run takes them until the server answers
  local unlisted, refused_as = {}, {}
  for name, sv in pairs(servers) do
    for _, t in ipairs(sv.tools) do tool_names[t] = true end
    if sv.why then unlisted[#unlisted + 1] = name .. "__" end
    -- a tool the server lists but Orket refuses: its role's line says why, not only "no tool"
    for _, r in ipairs(sv.refused or {}) do
      if type(r.name) == "string" and r.name:match("^[%w_%-%.]+$") then
        refused_as[name .. "__" .. mcp_client.orket_spelling(r.name)] = string.format(
          "the MCP server %s lists %s, but it is refused: %s", name, r.name, r.why)
      end
    end
  end
  table.sort(unlisted)
  local function unlisted_tool(t)
    for _, prefix in ipairs(unlisted) do if t:sub(1, #prefix) == prefix then return true end end
    return false
  end
  -- the loaded roles, then the broken ones (their other problems do not hide this one)
  local with_tools = {}
  for _, n in ipairs(names_of(by_name)) do with_tools[#with_tools + 1] = by_name[n] end
  for _, r in ipairs(half) do with_tools[#with_tools + 1] = r end
  for _, r in ipairs(with_tools) do
    for i, t in ipairs(r.tools) do
      if type(t) == "string" and not tool_names[t] and not broken[t] and not unlisted_tool(t) then
        add(out, dir, string.format("%s: tools[%d]: no tool named %q%s", r.file, i, t,
          refused_as[t] and ("; " .. refused_as[t]) or ""), r.file)
      end
    end
  end
  check_tool_limits(dir, out, cfg, tool_names, broken, unlisted_tool)
  -- A broken file's stem stands in for the name it would have had: no second problem.
  local known = { tool = names_of(tool_names), role = names_of(by_name), seat = s and settings.seats(s),
    tool_prefixes = unlisted, status = sm.statuses(), arguments = tool_names }
  for stem in pairs(broken) do
    known.tool[#known.tool + 1] = stem
    known.role[#known.role + 1] = stem
  end
  for _, set in ipairs(sets) do
    for _, m in ipairs(policy.unmatched(set, known)) do add(out, dir, m) end
  end
end

-- The board's cards by id (store.imports.cards' rows), read only, and the connection, for
-- import.board_waits (closed by the caller); {} for a project with no board yet, or one
-- that cannot be opened (validate reads the files alone then: import would create them).
-- import.case_pairs and the dependencies read the board through it.
local function board_rows(dir)
  local row = {}
  if not uv.fs_stat(dir .. "/.orket/orket.db") then return row end
  local db = project.open_store(dir, false, true)
  if not db then return row end
  for _, r in ipairs(imports_store.cards(db)) do row[r.id] = r end
  return row, db
end

-- epics/: each file on its own, then the links across files (import.link), dependencies
-- and their cycles, and the seats cards name against the team.
local function check_epics(dir, out, warnings, summary, team)
  local files, ferr = import.list_files(dir)
  if not files then
    add(out, dir, ferr, "epics")
    return
  end
  for _, n in ipairs(files.skipped) do add(warnings, dir, n, "epics") end -- a YAML epic, a WEB.JSON
  for _, t in ipairs(files.twins) do add(out, dir, t.message, t.shown) end -- epics/Web.json and epics/web.json
  local parsed, all = {}, {}
  for _, f in ipairs(files) do
    local cards, cerr, third = import.check_file(f)
    if not cards then
      add(out, dir, cerr, f.rel, third) -- third: the anchor of the card the message is about
    else
      parsed[#parsed + 1] = { file = f, cards = cards }
      for _, c in ipairs(cards) do all[#all + 1] = c end
      for _, u in ipairs(cerr) do add(out, dir, u.message, f.rel, u.anchor) end
      for _, n in ipairs(third) do add(warnings, dir, n, f.rel) end -- third: the fields read and ignored
    end
  end
  local set, problems = import.link(parsed)
  for _, p in ipairs(problems) do
    if not p.board then add(out, dir, p.message, "epics", p.anchor) end
  end
  -- two ids differing only in case, an id that is a device name: refused, as import refuses
  -- them, unless the cards are on the board already (import.case_pairs decides for both):
  -- then a warning
  local row, bdb = board_rows(dir)
  local refused, warned = import.case_pairs(problems, function(id) return row[id] ~= nil end)
  for _, p in ipairs(refused) do add(out, dir, p.message, "epics", p.anchor) end
  for _, w in ipairs(warned) do add(warnings, dir, w.message, "epics", w.anchor) end
  local ids = {}
  for _, c in ipairs(all) do
    ids[c.id] = true
    if c.type == "epic" then summary.epics = summary.epics + 1 end
    if c.type == "issue" then summary.issues = summary.issues + 1 end
  end
  -- A card whose id is taken (reported by link) stays out of the graph: its edges would
  -- show a cycle that is only the clash.
  -- A dependency on the card's own epic or rock (reported by link) stays out too: it is a
  -- cycle through the parent, said once.
  local waits, nodes = {}, {}
  local function under(c, id) -- whether id is c's epic or rock (the board is three levels deep)
    local up, n = c.parent, 0
    while up and n < 8 do
      if up == id then return true end
      up, n = set.by_id[up] and set.by_id[up].parent, n + 1
    end
    return false
  end
  -- the board's cards, as import resolves dependencies against them after the files' (a
  -- card made by create_issue, orket bug or the API, or imported from a file since removed)
  for _, c in ipairs(set.cards) do
    local deps = {}
    for _, d in ipairs(c.deps or {}) do
      if not ids[d.id] and not row[d.id] then
        -- an epic's or rock's own entry at its depends_on's line, as import says it
        add(out, dir, string.format("%s%s: %s: unknown card %q", config.shown(c.file), import.own_deps_at(c), d.path,
          d.id), c.file, c.anchor)
      elseif not under(c, d.id) then
        deps[#deps + 1] = d.id
      end
    end
    nodes[#nodes + 1] = c.id
    waits[#waits + 1] = { id = c.id, type = c.type, parent = c.parent, deps = deps, status = row[c.id] and row[c.id].status }
  end
  if bdb then
    local had = import.board_waits(bdb, row, set.by_id, waits)
    bdb:close()
    -- what import refuses for the board's state, refused here too: "ok" was said of files the
    -- import then refused (a new dependency on a canceled card or on an issue under way, a
    -- new issue in a finished epic)
    local late, lanchor = import.late_dependency(set, row, had)
    if late then add(out, dir, late, late:match("^[^:]*"), lanchor) end
    for _, c in ipairs(set.cards) do
      local finished = import.finished_parent(c, row)
      if finished then add(out, dir, finished, c.file, c.anchor) end
    end
  end
  -- what the scheduler waits for (board.waits_for), said at the depends_on that closes it;
  -- a cycle of the board's cards alone is import's warning too
  local cycle, via, old_cycle = import.cycle_of(waits, nodes, set.by_id)
  if cycle then
    local msg, anchor = import.cycle_problem(cycle, via, set.by_id)
    add(out, dir, msg, msg:match("^[^:]*"), anchor)
  end
  if old_cycle then add(warnings, dir, import.old_cycle_warning(old_cycle), "epics") end
  -- Seats: one the team lacks is worked by another seat unseen; the only reviewer seat
  -- can never review its own work, and a seat holding only the reviewer's role cannot do
  -- it, so their cards would stall (import.seat_problems, import's warnings too).
  if not team then return end
  for _, p in ipairs(import.seat_problems(set.cards, team)) do add(out, dir, p.message, p.card.file, p.card.anchor) end
end

--- check(dir) -> problems {{file=, line=|nil, message=}...}, summary {epics=, issues=, roles=,
--- tools=, policies=, mcp = {{name=, tools=n}...} (the MCP servers started for the check)},
--- warnings (as problems: what is ignored, such as the original's epic fields, and each MCP
--- server that could not be started, whose tools are then not checked).
--- Every problem in one pass: each file on its own, and the links between files checked
--- over whatever loaded, so fixing one file never uncovers problems that were there before.
-- The repository's compose file (workspace/compose.yaml, as the person's folder holds it:
-- what they are editing): each problem a sandbox's plan would refuse (docs/sandbox.md,
-- *Several services*). The file is the agents' work: read through the confined workspace,
-- so a symbolic link out of the tree is not followed and a FIFO is never opened (it would
-- block validate for good). As the plan does, a name that is not a regular file is passed
-- over for the next (a warning names it).
local KIND = { directory = "a directory", symlink = "a symbolic link", other = "a FIFO, socket or device" }

local function check_compose(dir, out, warnings)
  local ws = workspace.open(dir .. "/workspace")
  if not ws then return end
  for _, name in ipairs(composefile.NAMES) do
    local st = ws:stat(name)
    local file = "workspace/" .. name
    if st and st.type ~= "file" then
      warnings[#warnings + 1] = { file = file, message = string.format("is %s, not a regular file: a sandbox's plan "
        .. "passes it over", KIND[st.type] or st.type) }
    elseif st then
      local text, info
      if st.size <= composefile.MAX_READ then text, info = ws:read(name, { limit = composefile.MAX_READ }) end
      if not text then
        ws:close()
        out[#out + 1] = { file = file, message = st.size > composefile.MAX_READ
          and string.format("is larger than %d bytes", composefile.MAX_READ) or ("cannot be read: " .. tostring(info)) }
        return
      end
      local ok, err = composefile.read(text, file)
      -- each service's folder, in the tree as the person's folder holds it
      if ok then ok, err = composefile.folders(ok.services, file, ws) end
      ws:close()
      if not ok then
        local efile, line, msg = err:match("^(.-):(%d+): (.*)$")
        out[#out + 1] = efile and { file = efile, line = tonumber(line), message = msg } or { file = file, message = err }
      end
      return
    end
  end
  ws:close()
end

local function check_folders(dir, out, warnings)
  -- a script folder that is a file (or a FIFO, a device) is never read, so its scripts would
  -- silently be the built-in ones: said as a run refuses it (config.not_a_folder)
  for _, name in ipairs(config.SCRIPT_FOLDERS) do
    local msg = config.not_a_folder(dir, name)
    -- (a file in one taken for a script but not named NAME.lua, "deny v2.lua", is the
    -- loaders' error, said with the scripts': orket.scriptfile.misnamed)
    if msg then add(out, dir, msg, name) end
    -- Policies/ where policies/ is not, a policies/x.lua.txt (Notepad's): refused by the
    -- run as the folder's listing (orket.scriptfile.list), which the loaders' checks here
    -- do not pass on
    local _, lerr, lcode = scriptfile.list(dir .. "/" .. name, name)
    -- ("policies: not there; ...": the file is named by add)
    if not msg and lcode == "ENOENT" then add(out, dir, (lerr:gsub("^[^:]*: ", "", 1)), name) end
    if not msg and lcode == "EINVAL" then add(out, dir, lerr, name) end
  end
  -- .orket/ holds the store: as a file, every command that opens the board refuses it
  local st = uv.fs_stat(dir .. "/.orket")
  if st and st.type ~= "directory" then
    add(out, dir, string.format("a %s, not a folder: the board lives in .orket/orket.db; move the file away",
      st.type), ".orket")
  end
end

-- roles/, tools/ and policies/: two scripts a clone on macOS or Windows would take for one
-- file (roles/Coder.lua and roles/coder.lua) give that clone another team or policy than
-- this one, unseen; refused as epics/' twins are (orket.import) and card ids' (orket.board)
local function check_twins(dir, out)
  for _, name in ipairs(config.SCRIPT_FOLDERS) do
    local names = {}
    for _, path in ipairs(scriptfile.list(dir .. "/" .. name)) do names[#names + 1] = path:match("[^/]*$") end
    for _, t in ipairs(scriptfile.twins(names)) do
      local msg, shown = scriptfile.twin_message(name .. "/" .. t[1], name .. "/" .. t[2], t[3])
      add(out, dir, msg, shown)
    end
  end
end

-- roles/Coder.lua, policies/Default.lua: a project's script whose name differs only in
-- case from a built-in's is one beside it, not one in its place (a role named Coder; a
-- policy file whose rules are added to the built-in default's), where the project meant
-- to replace it (it does on Windows, where the two names are one); refused as case twins
-- of one folder are (check_twins). Tools' names are lower case already (scriptfile.misnamed).
local BUILT_IN = { roles = "role", policies = "policy file" }

local function check_builtin_case(dir, out)
  local home = rt.home()
  for _, name in ipairs { "roles", "policies" } do
    local builtin = {}
    for _, path in ipairs(scriptfile.list(home .. "/" .. name)) do
      local n = path:match("[^/]*$")
      builtin[wsnames.name_fold(n)] = n
    end
    for _, path in ipairs(scriptfile.list(dir .. "/" .. name)) do
      local n = path:match("[^/]*$")
      local b = builtin[wsnames.name_fold(n)]
      if b and b ~= n then
        local shown = name .. "/" .. n
        add(out, dir, string.format("%s: differs only in case from the built-in %s %s, so it is loaded beside it, not "
          .. "in its place (%s); rename it %s/%s to replace the built-in, or give it a name of its own",
          inert.line(shown), BUILT_IN[name], inert.line(b:gsub("%.lua$", "")),
          name == "roles" and "a seat naming " .. inert.line(b:gsub("%.lua$", "")) .. " gets the built-in"
            or "the built-in's rules stay in force beside its own", name, inert.line(b)), shown)
      end
    end
  end
end

-- A name a Windows clone cannot check out under epics/ (a file or a department folder),
-- roles/, tools/ or policies/ (ws_portable_name_refused, core/workspace.c: a device name,
-- < > : " | ? * \, a trailing dot or space): refused as the workspace refuses an agent's
-- write of one, and as case twins here are, since the project's files are committed to the
-- team's repository too; a project that sets workspace = { portable_names = false } (a
-- team on Linux only) is not asked.
local function check_portable(dir, out, data)
  local ws = type(data) == "table" and type(data.workspace) == "table" and data.workspace
  if ws and ws.portable_names == false then return end
  -- (epics/aux.json with no id: said once, as the device name its derived id is)
  local said = {}
  for _, p in ipairs(out) do
    if p.message:find("is the Windows device name", 1, true) then said[p.file] = true end
  end
  local function check(shown, name)
    local why = wsnames.portable_name_refused((name:gsub("/$", "")))
    if why and not said[shown] then
      -- (the file is named by add: a message led by a name with a space is read as a file's)
      out[#out + 1] = { file = scriptfile.apart(shown), message = string.format("the name %s cannot be checked out on "
        .. "Windows: %s; choose another name (a team on Linux only may set workspace = { portable_names = false } in "
        .. "orket.lua)", scriptfile.apart((name:gsub("/$", ""))), why) }
    end
  end
  for _, name in ipairs(config.SCRIPT_FOLDERS) do
    for _, path in ipairs(scriptfile.list(dir .. "/" .. name)) do check(name .. "/" .. path:match("[^/]*$"), path:match("[^/]*$")) end
  end
  local files = import.list_files(dir)
  for _, folder in ipairs(files and files.names or {}) do
    for _, n in ipairs(folder.names) do check(folder.rel .. "/" .. n, n) end
  end
end

--- not_found(dir) -> "orket.lua: not found; ...", validate's: Orket.lua there said (a
--- Windows teammate's project, where the two names are one)
function M.not_found(dir)
  local near = scriptfile.near_miss(dir, "orket.lua")
  return "orket.lua: not found" .. (near ~= "" and near or ("; " .. config.no_project(dir, "a project")))
end

function M.check(dir)
  dir = dir or "."
  local out, warnings = {}, {}
  local summary = { epics = 0, issues = 0, roles = 0, tools = 0, policies = 0 }
  -- a folder in a project's tree: none of its scripts is loaded (its tools would run)
  local tree = config.in_tree(dir)
  if tree then
    add(out, dir, uv.fs_stat(dir .. "/orket.lua") and tree or M.not_found(dir), "orket.lua")
    summary.mcp = {}
    return out, summary, warnings
  end
  local cfg, team, msection, data = check_config(dir, out)
  check_folders(dir, out, warnings)
  check_twins(dir, out)
  check_builtin_case(dir, out)
  local by_name, tool_names, sets, broken, half = scriptcheck.check(dir, out, summary)
  local servers = start_mcp(dir, msection)
  summary.mcp = {}
  for _, name in ipairs(msection and msection.names or {}) do
    local sv = servers[name]
    if sv.why then
      add(warnings, dir, string.format("orket.lua: mcp.servers.%s: could not be started to list its tools (%s), so "
        .. "the roles and policies naming them are not checked", name, sv.why:match("^[^\n]*")), nil, fieldline.table_set(name))
    else
      summary.mcp[#summary.mcp + 1] = { name = name, tools = #sv.tools }
    end
    -- a tool the server lists that Orket refuses (docs/mcp.md: its Orket name another tool
    -- has too, a schema the gate cannot read, a name no tool may have): no call reaches it.
    -- Those past the cap on a server's tools are one line, as orket mcp list says them.
    local over = {}
    for _, r in ipairs(sv.refused or {}) do
      if r.why == mcp_client.OVER_CAP then
        over[#over + 1] = r.name
      else
        add(warnings, dir, string.format("orket.lua: mcp.servers.%s: its tool %s is refused: %s", name,
          inert.line(r.name), r.why), nil, fieldline.table_set(name))
      end
    end
    if #over > 0 then
      add(warnings, dir, string.format("orket.lua: mcp.servers.%s: %d more of its tools are refused (%s%s): %s",
        name, #over, inert.line(over[1]), #over > 1 and (" to " .. inert.line(over[#over])) or "",
        mcp_client.OVER_CAP), nil, fieldline.table_set(name))
    end
    -- servers a and a_: a's tool _b (or -b) and a_'s tool b would both be a___b, known
    -- without starting either
    if msection.servers[name .. "_"] then
      add(warnings, dir, string.format("orket.lua: mcp.servers.%s_: its tools' Orket names (%s___TOOL) are also "
        .. "those of %s's tools named _TOOL or -TOOL: a name both have is refused in both, and one may be held "
        .. "while the other server is down; renaming one of the two servers avoids it", name, name, name), nil,
        fieldline.table_set(name .. "_"))
    end
  end
  check_links(dir, out, cfg, team, by_name, tool_names, sets, broken, servers, half)
  -- a price that looks written per 1,000 tokens, 1000 times too small (docs/cost.md)
  for _, w in ipairs(cost.price_warnings(cfg and cfg.models.prices)) do add(warnings, dir, w, "orket.lua") end
  if data then
    check_unpriced(dir, warnings, data, cfg, team, by_name)
    check_signin_clear(dir, warnings, data, out)
  end
  check_epics(dir, out, warnings, summary, team)
  check_portable(dir, out, data)
  check_compose(dir, out, warnings)
  return out, summary, warnings
end

--- format(problem) -> "file:line: message" (or "file: message" when the line is unknown)
M.format = scriptcheck.format

return M
