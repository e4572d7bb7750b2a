-- orket.engine.reload: the operator scripts a project runs with (roles, tools, policies,
-- routing.lua), loaded as one set and hot-reloaded while a run goes on. Uses luv fs events
-- on the project's script folders (debounced), orket.engine.roles, orket.tools,
-- orket.policy and orket.engine.routing. Contract: docs/engine.md, "Hot reload".
local uv = require "luv"
local rt = require "orket.c.runtime"
local roles = require "orket.engine.roles"
local routing = require "orket.engine.routing"
local tools_mod = require "orket.tools"
local policy = require "orket.policy"
local jsonout = require "orket.jsonout"
local settings_mod = require "orket.settings"
local experiments = require "orket.settings.experiments"
local llm = require "orket.llm"
local fieldline = require "orket.fieldline"
local scriptcheck = require "orket.engine.scriptcheck"
local scriptfile = require "orket.scriptfile"
local manager = require "orket.mcp.manager"
local task = require "orket.task"
local crypto = require "orket.c.crypto"
local config = require "orket.config"

local M = {}

-- What the engine swaps, in the order they are compiled.
M.KINDS = { "roles", "tools", "policies", "routing" }
M.DIRS = { roles = true, tools = true, policies = true }
M.DEBOUNCE_MS = 100
-- How long close() waits for the journal rows still being written (a store that hangs,
-- rather than refuses, must not hold a run's end for ever; the run's own writes would)
M.CLOSE_WAIT_MS = 5000

--- where(message) -> file, line | file | nil: the script position a load error names.
function M.where(msg)
  local file, line = tostring(msg):match("^([^\n]-%.lua):(%d+):")
  if file then return file, math.tointeger(tonumber(line)) end
  return tostring(msg):match("^([^\n:]-%.lua):")
end

-- {"roles/x.lua" = hash of its text, or of the reason it cannot be read} for folder name of dir.
local function folder_digest(dir, name)
  local out = {}
  local list, lerr = scriptfile.list(dir .. "/" .. name)
  for _, path in ipairs(list) do
    local text, err = scriptfile.read(path)
    out[name .. "/" .. path:match("[^/]+$")] = crypto.hash(text or ("\0" .. tostring(err)))
  end
  -- a listing's refusal (a policy saved as x.lua.txt, a Policies/ folder) is a change too:
  -- the reload that follows refuses it, where no digest moved and nothing was said
  if lerr then out[name .. "/"] = crypto.hash("\0" .. tostring(lerr)) end
  return out
end

--- digest(dir) -> {"roles/x.lua" = hash, ..., "routing.lua" = hash, "orket.lua" = hash}:
--- each script of the project as it is now (a hash of its text, or of why it cannot be
--- read; routing.lua and orket.lua only when they are there). load() keeps the one taken
--- before it compiles as scripts.seen.
function M.digest(dir)
  local out = {}
  for name in pairs(M.DIRS) do
    for file, h in pairs(folder_digest(dir, name)) do out[file] = h end
  end
  -- orket.lua too: its edit is a change the run takes up in part (its mcp section) and says
  -- (unapplied), even one made before the watch began or in a burst that was refused
  for _, file in ipairs { "routing.lua", "orket.lua" } do
    local path = dir .. "/" .. file
    if uv.fs_stat(path) then
      local text, err = scriptfile.read(path)
      out[file] = crypto.hash(text or ("\0" .. tostring(err)))
    end
  end
  return out
end

-- paths without the ones held ({path = true}, or nil)
local function unheld(paths, held)
  if not held then return paths end
  local out = {}
  for _, p in ipairs(paths) do if not held[p] then out[#out + 1] = p end end
  return out
end

--- load(dir[, held]) -> scripts {roles=, tools=, policies=, routing=} | nil, "file[:line]: message", CODE
--- Compiles every script afresh, each in a new restricted environment: Orket's built-ins
--- (roles/, tools/, policies/ next to lua/), then the project's, which override by name.
--- Nothing is shared with an earlier set, so a caller can keep using the old one. A script
--- folder that is a file: nil, "roles: a file, not a folder: ...", "ENOTDIR"; one that
--- cannot be listed: nil, "policies: cannot be listed (EACCES: ...) ...", "EACCES"
--- (config.script_folders). held: {path = true} of the project's files left unread (a hot
--- reload's empty files, kept at their loaded version: held_files).
function M.load(dir, held)
  local home = rt.home()
  -- taken before anything is compiled: an edit made while the set is read, or after it and
  -- before the watch starts, differs from it, and the watch reloads it (M.watch)
  local seen = M.digest(dir)
  -- roles, tools or policies that is a file: its scripts would never be read and the
  -- built-in ones silently put in their place; refused as a run's setup refuses it
  local ferr, fcode = config.script_folders(dir)
  if ferr then return nil, ferr, fcode end
  -- each of the project's scripts named from dir (scriptfile.name): its errors say
  -- "roles/x.lua:3", at load and in a turn, however the project was given
  local role_set, rerr, rcode = roles.load(roles.dirs(dir), dir, held)
  if not role_set then return nil, rerr, rcode end
  -- (a folder made unreadable since the check above is refused too, never read as empty)
  local tpaths, lerr, lcode = policy.files_in({ home .. "/tools", dir .. "/tools" }, dir, held)
  if lerr then return nil, lerr, lcode end
  local reg, terr, tcode = tools_mod.load(tpaths, dir)
  if not reg then return nil, terr, tcode end
  local ppaths, plerr, plcode = policy.files_in({ home .. "/policies", dir .. "/policies" }, dir, held)
  if plerr then return nil, plerr, plcode end
  local pol, perr, pcode = policy.load(ppaths, dir)
  if not pol then return nil, perr, pcode end
  local rpath = dir .. "/routing.lua"
  local route, oerr, ocode = routing.load(not (held and held[rpath]) and rpath or nil, dir)
  if not route then return nil, oerr, ocode end
  return { roles = role_set, tools = reg, policies = pol, routing = route, seen = seen }
end

--- validate(scripts, settings[, models]) -> true | nil, msg, CODE: the set fits the team
--- (every role a seat or an experiment's variant plays exists) and, given orket.lua's
--- models, every role's model names a configured provider. The engine checks the same
--- before a run starts.
function M.validate(s, settings, models)
  for _, seat in ipairs(settings_mod.seats(settings)) do
    for i, r in ipairs(settings.team[seat].roles) do
      if not s.roles.by_name[r] then
        return nil, string.format("orket.lua: team.%s.roles[%d]: no role named %q after the reload (roles: %s)",
          seat, i, r, table.concat(s.roles.names, ", ")), "EROLE"
      end
    end
  end
  -- a variant's role, as the engine's start checks it: taken, the set left every variant
  -- card that has not started skipped and the run stalled
  local xerr = experiments.check_roles(settings.experiments, s.roles.by_name)
  if xerr then
    return nil, string.format("%s after the reload (roles: %s)", xerr, table.concat(s.roles.names, ", ")), "EROLE"
  end
  if models then
    local bad = llm.check_models(models, nil, s.roles.by_name)
    if #bad > 0 then return nil, bad[1], "EINVAL" end
  end
  return M.check_tools(s, settings.mcp)
end

--- check_tools(scripts[, mcp]) -> true | nil, "roles/x.lua:LINE: tools[i]: no tool named ...", "ENOENT":
--- every tool a role lists is loaded (a tool file deleted or renamed under a role that
--- uses it would otherwise leave the role calling a tool that is not there).
-- mcp: orket.lua's mcp section; SERVER__TOOL of a server it names passes (its tools are
--- known once it is connected: docs/mcp.md).
function M.check_tools(s, mcp)
  for _, name in ipairs(s.roles.names) do
    local r = s.roles.by_name[name]
    for i, t in ipairs(r.tools or {}) do
      local server = t:match("^([a-z][a-z0-9_]-)__")
      if not s.tools:get(t) and not (server and mcp and mcp.servers[server]) then
        local file = scriptfile.shown(r, "roles/" .. name .. ".lua")
        local line = fieldline.of(scriptfile.read(r.file or file), "tools")
        return nil, string.format("%s%s: tools[%d]: no tool named %q", file, line and (":" .. line) or "", i, t), "ENOENT"
      end
    end
  end
  return true
end

-- The changed files ({name = true}) as the events list them: sorted, an array even when empty.
local function file_list(files)
  local names = jsonout.array()
  for name in pairs(files or {}) do names[#names + 1] = name end
  table.sort(names)
  return names
end

-- orket.lua evaluated as a reload takes it up -> cfg, settings | nil, "orket.lua:LINE: ...",
-- CODE: its error placed at its field's line, as orket validate places it
local function read_orket(dir)
  local now
  local cfg, merr, mcode = config.load(dir)
  if cfg then now, merr, mcode = settings_mod.resolve(cfg) end
  if now then return cfg, now end
  local placed = {}
  scriptcheck.add(placed, dir, merr, "orket.lua")
  return nil, scriptcheck.format(placed[1]), mcode
end

--- problems(dir[, orket]) -> array of "file:line: message" (an array even when empty):
--- orket.lua's error (orket: the one a reload got already, false when it read it fine; nil:
--- read now, when orket.lua is there), each script folder that is not a folder or cannot be
--- listed ("roles: a file, not a folder: ...", config.not_a_folder), then every script of
--- the project that is broken on its own, each with its line (orket.engine.scriptcheck), as
--- orket validate reports them
function M.problems(dir, orket)
  local out = jsonout.array()
  if orket == nil and uv.fs_stat(dir .. "/orket.lua") then
    local cfg, msg = read_orket(dir)
    orket = not cfg and msg
  end
  if orket then out[#out + 1] = orket end
  for _, name in ipairs(config.SCRIPT_FOLDERS) do
    local msg = config.not_a_folder(dir, name)
    if msg then out[#out + 1] = name .. ": " .. msg end
  end
  local found = {}
  pcall(scriptcheck.check, dir, found, { policies = 0 })
  for _, p in ipairs(found) do out[#out + 1] = scriptcheck.format(p) end
  return out
end

-- The loaded version of each script whose file is gone, put back in the set s read from
-- the folders while orket.lua is away (a checkout in progress, say, that takes the
-- project's script folders too): a removal then must never loosen the policies mid-run,
-- nor drop a role, a tool or routing.lua; scripts edited or added are read as usual. A
-- script of the project's own that the folders give now wins over a kept one of its name.
-- held ({path = rel}): the project's files held as empty (held_files), kept at their loaded
-- version likewise, orket.lua there or not; keep: orket.lua is away, and removed files are kept.
-- -> s | nil, msg, CODE
local function keep_removed(engine, s, keep, held)
  local home = rt.home() .. "/"
  local function own(path) return type(path) == "string" and path:sub(1, #home) ~= home end
  local function gone(path) return own(path) and (held[path] ~= nil or (keep and not uv.fs_lstat(path))) end
  for _, kind in ipairs { "roles", "tools" } do
    local old, new = engine[kind], s[kind]
    for name, def in pairs(old and old.by_name or {}) do
      local now = new.by_name[name]
      if gone(def.file) and not (now and own(now.file)) then
        if now then
          for i, p in ipairs(new.files or {}) do if p == now.file then new.files[i] = def.file end end
        else
          new.names[#new.names + 1] = name
          if new.files then new.files[#new.files + 1] = def.file end
        end
        new.by_name[name] = def
      end
    end
    table.sort(new.names)
  end
  local kept = {}
  for _, path in ipairs(engine.policies and engine.policies.files or {}) do
    if gone(path) then kept[#kept + 1] = path end
  end
  if kept[1] then
    -- in the order a load reads them: Orket's, each overridden in its place by the
    -- project's of its name, then the project's others by name
    -- (a held file is listed there: in its place only if it was loaded, as kept says)
    local project = unheld(scriptfile.list(engine.dir .. "/policies"), held)
    for _, path in ipairs(kept) do project[#project + 1] = path end
    table.sort(project, function(a, b) return a:match("[^/]+$") < b:match("[^/]+$") end)
    local pol, err, code = policy.merge(policy.order { scriptfile.list(home .. "policies"), project },
      { s.policies, engine.policies })
    if not pol then return nil, err, code end
    s.policies = pol
  end
  if engine.routing and gone(engine.routing.file) and not s.routing.file then s.routing = engine.routing end
  return s
end

-- The project's scripts (its folders' files, routing.lua, orket.lua) that are empty, 0
-- bytes, now and were not as the set in force was read (engine.scripts_seen): taken for a
-- save in progress (an editor that truncates the file, then writes it, later than the
-- quiet period), whose empty file would be a policy file without its denies for every turn
-- begun in between. -> {path = "policies/x.lua"}, sorted names. A file made empty on purpose
-- stays held; removing it is the way to remove a script.
local function held_files(engine)
  local was, empty = engine.scripts_seen, crypto.hash("")
  local held, names = {}, {}
  local function check(path, rel)
    local st = uv.fs_stat(path)
    if st and st.type == "file" and st.size == 0 and not (was and was[rel] == empty) then
      held[path] = rel
      names[#names + 1] = rel
    end
  end
  for _, name in ipairs(config.SCRIPT_FOLDERS) do
    for _, path in ipairs(scriptfile.list(engine.dir .. "/" .. name)) do check(path, name .. "/" .. path:match("[^/]*$")) end
  end
  check(engine.dir .. "/routing.lua", "routing.lua")
  check(engine.dir .. "/orket.lua", "orket.lua")
  table.sort(names)
  return held, names
end

-- engine -> the held files last said (say_held); weak: an engine's own STATE fields are
-- declared in orket.engine, and this is the reload's bookkeeping alone
local held_said = setmetatable({}, { __mode = "k" })

-- Says the files held (held_files) as a `reload_held` event, once while the same ones are.
local function say_held(engine, names)
  local said = #names > 0 and (tostring(engine.run_id) .. "\n" .. table.concat(names, "\n")) or nil
  if held_said[engine] == said then return end
  held_said[engine] = said
  if not said then return end
  local files = jsonout.array()
  for i, n in ipairs(names) do files[i] = n end
  local msg = string.format("%s %s empty, taken for a save in progress: what was loaded is kept (a new file "
    .. "is not read, a built-in of its name stays) until %s content again (remove the file to remove the script)",
    table.concat(names, ", "),
    #names > 1 and "are" or "is", #names > 1 and "each has" or "it has")
  engine.db:event { kind = "reload_held", run = engine.run_id, data = { file = names[1], files = files, message = msg } }
  engine:emit { type = "reload_held", file = names[1], files = files, message = msg }
end

-- The sections of orket.lua, as it reads now, that differ from the run's and that the run
-- does not take up (all but mcp: budgets, models and their prices, the team ... apply from
-- the next run), sorted; nil when none. A reload naming orket.lua says them, so an edit of
-- a price or a budget is not taken for applied.
local function unapplied(engine, cfg, now)
  local out, seen = jsonout.array(), {}
  local function differs(k, a, b)
    if k ~= "mcp" and not seen[k] and not jsonout.same(a, b) then
      seen[k] = true
      out[#out + 1] = k
    end
  end
  for k, v in pairs(now) do differs(k, v, engine.settings[k]) end
  for k, v in pairs(engine.settings) do differs(k, now[k], v) end
  if engine.models then differs("models", cfg.models, engine.models) end
  if #out == 0 then return nil end
  table.sort(out)
  return out
end

-- Whether this reload takes orket.lua up (its mcp section, and says what it leaves out):
-- the burst names it, or (a watcher's reload, given files) orket.lua differs from the one
-- the set in force was read with. The second is an edit of it in a burst that was refused
-- (a broken role saved with it), or made before the watch began: the next reload that
-- succeeds takes it up and says it, rather than never.
local function takes_orket(engine, s, files, keep)
  if not s or keep or not files then return false end
  if files["orket.lua"] then return true end
  local was = engine.scripts_seen
  return was ~= nil and s.seen ~= nil and s.seen["orket.lua"] ~= nil and s.seen["orket.lua"] ~= was["orket.lua"]
end

-- err, said with what to do when it is a role's model naming a provider that orket.lua
-- configures now but did not as the run began: a run keeps the models it started with (cfg:
-- orket.lua as this reload read it, else read now).
local function models_kept(engine, err, cfg)
  local p = tostring(err):match("names provider '([^']*)', which is not configured")
  if not p then return err end
  if not cfg then cfg = config.load(engine.dir) end
  local providers = cfg and type(cfg.models) == "table" and cfg.models.providers
  if type(providers) ~= "table" or providers[p] == nil then return err end
  return string.format("%s; orket.lua configures %s now, but a run keeps orket.lua's models from its start (they "
    .. "are not reloaded): to use it, stop the run and start it again (orket run, or orket resume)", err, p)
end

-- Loads the set, validates it and swaps it in, or says why not (apply's work; keep: orket.lua
-- is away, keep_removed).
local function reload_set(engine, files, keep)
  local held, held_names = held_files(engine)
  say_held(engine, held_names)
  local s, err, code = M.load(engine.dir, held)
  if s and next(held) then
    -- as the set in force read them: a later event on the file compares with that version
    local was = engine.scripts_seen
    for _, rel in pairs(held) do s.seen[rel] = was and was[rel] end
  end
  if s and (keep or next(held)) then s, err, code = keep_removed(engine, s, keep, held) end
  if next(held) and files then
    local rest = {}
    for name in pairs(files) do rest[name] = true end
    for _, rel in pairs(held) do rest[rel] = nil end
    files = rest
  end
  local not_taken, orket_err, orket_cfg
  local orket = takes_orket(engine, s, files, keep)
  if orket and not files["orket.lua"] then
    -- named as the burst that saved it would have named it
    local more = { ["orket.lua"] = true }
    for name in pairs(files) do more[name] = true end
    files = more
  end
  if orket then
    -- the MCP servers are the one part of orket.lua a run takes up again (docs/mcp.md);
    -- orket.lua is evaluated once for them and for the sections left out (unapplied)
    local cfg, now, mcode = read_orket(engine.dir)
    if cfg then
      manager.reload(engine, now)
      not_taken = unapplied(engine, cfg, now)
      orket_err, orket_cfg = false, cfg
    else
      -- "orket.lua: mcp.servers.x.command: ..." placed at its field's line
      s, err, code, orket_err = nil, now, mcode, now
    end
  end
  if s then
    local ok
    ok, err, code = M.validate(s, engine.settings, engine.models)
    if not ok then s, err = nil, models_kept(engine, err, orket_cfg) end
  end
  local names = file_list(files)
  if not s then
    -- (orket.lua held as empty: not read, its loaded version in force)
    if held[engine.dir .. "/orket.lua"] then orket_err = false end
    local problems = M.problems(engine.dir, orket_err)
    -- every broken file with its line, as orket validate says them; the set's own error
    -- when no file is broken on its own (a team role gone, a role's tool gone)
    if #problems > 0 then err = problems[1] end
    local file, line = M.where(err)
    -- A standing error is said once: a later burst (a change to another file, a folder's
    -- own event) that leaves the same problems says nothing new; the caller still gets it.
    local said = table.concat({ tostring(engine.run_id), tostring(code), tostring(err), table.concat(problems, "\n") },
      "\n")
    if engine.reload_said == said then return nil, err, code end
    engine.reload_said = said
    engine.db:event { kind = "reload_error", run = engine.run_id,
      data = { file = file, line = line, error = err, code = code, files = names, problems = problems } }
    engine:emit { type = "reload_error", file = file, line = line, error = err, code = code, files = names,
      problems = problems }
    return nil, err, code
  end
  -- every script that differs from the set in force is named, not only the burst's: one
  -- changed while another file was broken (its burst said nothing new) is taken up now.
  -- (orket.lua only as takes_orket decided: away, or unchanged in what a run takes up)
  local was = engine.scripts_seen
  if was and s.seen then
    local all, more = {}, false
    for name in pairs(files or {}) do all[name] = true end
    local function differs(name)
      if name ~= "orket.lua" and not all[name] and was[name] ~= s.seen[name] then all[name], more = true, true end
    end
    for name in pairs(s.seen) do differs(name) end
    for name in pairs(was) do differs(name) end
    if more then names = file_list(all) end
  end
  -- nothing changed but files held: the set in force is the one the files give
  if next(held) and #names == 0 then return true end
  -- the MCP servers' tools beside the files'
  engine:swap_scripts { roles = s.roles, tools = engine.mcp and engine.mcp:wrap(s.tools) or s.tools, policies = s.policies,
    routing = s.routing, scripts_seen = s.seen }
  engine.reloads = (engine.reloads or 0) + 1
  engine.reload_said = nil
  engine.db:event { kind = "reload", run = engine.run_id,
    data = { files = names, roles = s.roles.names, tools = s.tools.names, unapplied = not_taken } }
  engine:emit { type = "reload", files = names, unapplied = not_taken }
  return true
end

-- orket.lua removed (or moved away) during the run: the run goes on with the settings it
-- loaded, its MCP servers as they are; the project loader's "no project here" would not say
-- it. Until it is back, the scripts a burst names still reload, on those settings, keeping
-- the loaded version of any removed (keep_removed): in the burst that removed it first, so
-- the removal is the error said last and returned. The removal is said once while it
-- stands (engine.orket_removed, apart from the scripts' own reload_said).
local function removed(engine, files, rescan)
  local scripts = {}
  for name in pairs(files or {}) do if name ~= "orket.lua" then scripts[name] = true end end
  -- (a burst naming orket.lua alone reloads nothing; a later one, even naming no file, as
  -- any burst does, and so does one with a change that names no file beside orket.lua:
  -- the folders are read again for it)
  local ok, serr, scode = true, nil, nil
  if next(scripts) or rescan or not (files and files["orket.lua"]) then
    ok, serr, scode = reload_set(engine, scripts, true)
  end
  local err = "orket.lua: removed; the run goes on with the settings it loaded (its MCP servers as they are); "
    .. "put it back before the next run"
  local said = table.concat({ tostring(engine.run_id), "ENOENT", err }, "\n")
  if engine.orket_removed ~= said then
    engine.orket_removed = said
    local names = file_list(files)
    local problems = jsonout.array()
    engine.db:event { kind = "reload_error", run = engine.run_id,
      data = { file = "orket.lua", error = err, code = "ENOENT", files = names, problems = problems } }
    engine:emit { type = "reload_error", file = "orket.lua", error = err, code = "ENOENT", files = names,
      problems = problems }
  end
  -- a burst naming orket.lua hears of its removal; one that does not, of its scripts
  if files and files["orket.lua"] then return nil, err, "ENOENT" end
  return ok, serr, scode
end

--- apply(e[, files[, rescan]]) -> true | nil, message, CODE
--- Reloads e.dir's scripts: compile (load), validate, then swap e.roles, e.tools,
--- e.policies and e.routing together (no wait in between, so no turn sees half a set).
--- On error the engine keeps the set it had. Either way the outcome is journaled (event
--- `reload` or `reload_error` with data.file and data.line) and emitted to the engine's
--- listener ({type="reload", files=} or {type="reload_error", file=, line=, error=, code=,
--- files=, problems=}: problems names every broken file with its line, error the first). files: every changed file given (project-relative, sorted), an array even
--- when empty. An error the run's journal last said, still standing, is returned but not said again.
--- Turns already started keep the role and tools they captured; the policies judge each call
--- from the newest set, in those turns too (see turn.lua).
--- While orket.lua is removed, a script removed keeps its loaded version (removed).
--- rescan: the burst held a change that names no file (an event on a folder itself).
function M.apply(engine, files, rescan)
  if type(engine) ~= "table" or type(engine.dir) ~= "string" then
    error("bad argument #1 to 'apply' (an engine from orket.engine.setup expected)", 2)
  end
  local here = uv.fs_stat(engine.dir .. "/orket.lua") ~= nil
  if here then engine.orket_removed = nil end -- back: the folders alone are the set again
  if not here and (engine.orket_removed or (files and files["orket.lua"])) then return removed(engine, files, rescan) end
  return reload_set(engine, files)
end

local Watcher = {}
Watcher.__index = Watcher

-- What the kernel's codes mean for a watch: libuv's own text for ENOSPC ("no space left on
-- device") would send the operator to the disk, while it is inotify's per-user limit.
local WATCH_CAUSE = {
  ENOSPC = "ENOSPC: the kernel's inotify watches are used up; raise sysctl fs.inotify.max_user_watches",
  EMFILE = "EMFILE: the kernel's inotify instances are used up; raise sysctl fs.inotify.max_user_instances",
}

-- A watch that cannot be made (no inotify watch left, a folder it may not read) is said as
-- a `watch_error` event, once while it stands, as a reload error is: the project's watch
-- retries it at each event on the folder and at each reload, and each retry failing the same
-- way says nothing. It is journaled too, so a run with no listener (orket serve's) shows it
-- in `orket log` and its events.
-- The watch starts before the run (orket run, orket serve, a worker): a failure seen before
-- the run's run_start is held and said right after it (the engine's on_run_start), with the
-- run's id and journaled in the run's own task, so a stream reader never sees a run's event
-- before its run_start nor one without its id; a run that never begins says nothing of it.
-- fn() run in a task of its own that close() waits for (w.writing: the tasks still going).
local function tracked(w, fn)
  local t
  t = task.spawn(function()
    fn()
    if t then w.writing[t] = nil end
  end)
  if t.state == "running" then w.writing[t] = true end
end

local function say_watch(w, ev)
  local engine = w.engine
  engine:emit { type = "watch_error", file = ev.file, error = ev.error, code = ev.code }
  local function journal()
    -- a store gone away must not raise out of the loop or the run's start
    pcall(engine.db.event, engine.db, { kind = "watch_error", run = engine.run_id,
      data = { file = ev.file, error = ev.error, code = ev.code } })
  end
  -- in a task the row is written now; from an fs callback, which cannot wait on the
  -- journal (on PostgreSQL it waits on the server), in a task of its own that close() waits for
  if task.current() then return journal() end
  tracked(w, journal)
end

local function watch_failed(w, path, rel, err, code)
  if w.closed then return end -- (an event already queued as it closed: no run to tell)
  local msg = string.format("%s: cannot be watched (%s); edits in it are not reloaded until it can be",
    rel == "" and "." or (rel .. "/"), WATCH_CAUSE[code] or tostring(err))
  if w.failing[path] == msg then return end
  w.failing[path] = msg
  -- (path: a held one is said only if it still fails so, run_started)
  local ev = { file = rel == "" and "." or rel, error = msg, code = code, path = path }
  if w.started then return say_watch(w, ev) end
  w.held[#w.held + 1] = ev
end

-- Starts watching one folder; events carry the file name (inotify, non-recursive), noted
-- relative to the project ("roles/coder.lua", "routing.lua") as the reload event names it.
local function watch_dir(w, path, filter)
  if w.handles[path] or w.closed then return end
  -- a folder (a link to one is followed, as the loaders follow it), never a file so named
  local st = uv.fs_stat(path)
  if not st or st.type ~= "directory" then
    w.failing[path] = nil
    return
  end
  local rel = path == w.dir and "" or path:sub(#w.dir + 2)
  local h = uv.new_fs_event()
  local ok, serr, scode = h:start(path, {}, function(err, name)
    if err then return end
    local what = filter(name)
    if what == "noted" then return end -- the filter touched the files itself
    if what == "file" then
      w:touch(rel == "" and name or (rel .. "/" .. name))
    elseif what then
      w:touch() -- a change to reload for, with no file to name
    end
  end)
  if not ok then
    h:close()
    -- gone between the check and the watch: as if it had not been there, not a failure
    if scode == "ENOENT" or scode == "ENOTDIR" then
      w.failing[path] = nil
      return
    end
    return watch_failed(w, path, rel, serr, scode)
  end
  w.failing[path] = nil
  w.handles[path] = h
end

-- A digest of each script of a folder ({"roles/x.lua" = hash of its text, or of the reason
-- it cannot be read}), kept as last reloaded: an event on the folder itself (a chmod, a
-- touch) reloads only the scripts that differ from it. A hash, not the text: a copy of every
-- script per live run would add up in orket serve.
local function contents(w, name) return folder_digest(w.dir, name) end

-- Every script's digest, as seen now.
local function all_contents(w) return M.digest(w.dir) end

-- Stops watching path, if it was watched.
local function unwatch(w, path)
  local h = w.handles[path]
  if not h then return end
  w.handles[path] = nil
  h:stop()
  h:close()
end

-- What to watch for a script that is a link: {folder, name} pairs, an event on name in
-- folder being a change to what the script reads. Its chain is walked as the kernel walks
-- it: each further link met on the way (a folder link `current -> releases/v2` too) is
-- watched in its folder for its name, pointed elsewhere being a change; so is the end, the
-- target's name in its folder, the target there or not (removed, to be put back). Where a
-- folder on the way is missing (removed, or moved away as a deploy swaps it), the one
-- above it is watched for its name, so its return is seen. Folders are real paths.
local MAX_LINKS = 40 -- (as the kernel's ELOOP)
local function link_hops(path)
  local hops, stack = {}, {}
  local to, at = uv.fs_readlink(path), uv.fs_realpath(path:match("^(.*)/[^/]*$"))
  if not (to and at) then return hops end
  local function push(p) -- its components, the first on top
    local parts = {}
    for c in p:gmatch("[^/]+") do parts[#parts + 1] = c end
    for i = #parts, 1, -1 do stack[#stack + 1] = parts[i] end
  end
  local function join(a, b) return a == "/" and ("/" .. b) or (a .. "/" .. b) end
  if to:sub(1, 1) == "/" then at = "/" end
  push(to)
  local links = 0
  while #stack > 0 do
    local c = table.remove(stack)
    if c == ".." then
      at = at:match("^(.*)/[^/]*$")
      if at == "" then at = "/" end
    elseif c ~= "." then
      local p = join(at, c)
      local st = uv.fs_lstat(p)
      if st and st.type == "link" then
        hops[#hops + 1] = { at, c }
        links = links + 1
        local next_to = links <= MAX_LINKS and uv.fs_readlink(p)
        if not next_to then return hops end
        if next_to:sub(1, 1) == "/" then at = "/" end
        push(next_to)
      elseif not st or #stack == 0 or st.type ~= "directory" then
        -- the end (the target, there or not), or a folder on the way that is not there
        hops[#hops + 1] = { at, c }
        return hops
      else
        at = p
      end
    end
  end
  return hops
end

-- The same folder as when it was watched: inotify watches the inode, not the path, so a
-- folder replaced at its path (moved away and another moved in, removed and made again)
-- is no longer the one watched.
local function same_folder(folder, lh)
  local st = uv.fs_stat(folder)
  return st ~= nil and st.dev == lh.dev and st.ino == lh.ino
end

-- A link's target folder that cannot be watched is said as a script folder's is
-- (watch_failed), naming the links into it; it is tried again at each reload.
local function link_failed(w, folder, names, err, code)
  if w.closed then return end
  local scripts = {}
  for _, list in pairs(names) do
    for _, rel in ipairs(list) do scripts[#scripts + 1] = rel end
  end
  table.sort(scripts)
  local msg = string.format("%s %s through %s, which cannot be watched (%s); edits there are not reloaded "
    .. "until it can be (a reload another change starts reads them)", table.concat(scripts, ", "),
    #scripts > 1 and "are links" or "is a link", folder, WATCH_CAUSE[code] or tostring(err))
  if w.link_failing[folder] == msg then return end
  w.link_failing[folder] = msg
  local ev = { file = scripts[1], error = msg, code = code, path = folder, failing = w.link_failing }
  if w.started then return say_watch(w, ev) end
  w.held[#w.held + 1] = ev
end

-- Watches a folder links point into (w.links[folder]: {name -> {script, ...}}).
local function watch_link_folder(w, folder)
  local st = uv.fs_stat(folder) -- (before the watch: a folder replaced in between is a mismatch, watched again)
  if not st then return end
  local lh = { h = uv.new_fs_event(), dev = st.dev, ino = st.ino }
  local base = folder:match("[^/]+$")
  local ok, serr, scode = lh.h:start(folder, {}, function(err, name)
    if w.closed then return end
    local links = w.links[folder]
    if not links then return end
    for _, rel in ipairs(not err and name and links[name] or {}) do w:touch(rel) end
    -- the folder's own events come with its name (or none): moved away, removed or
    -- replaced, the handle follows what went, so every link into it is a change, and the
    -- reload that follows watches whatever is at its path now (watch_links)
    if err or name == nil or name == base then
      if err or not same_folder(folder, lh) then
        for _, list in pairs(links) do
          for _, rel in ipairs(list) do w:touch(rel) end
        end
      end
    end
  end)
  if ok then
    w.link_failing[folder] = nil
    w.link_handles[folder] = lh
    return
  end
  lh.h:close()
  -- gone between the check and the watch: as if it had not been there, not a failure
  if scode == "ENOENT" or scode == "ENOTDIR" then return end
  link_failed(w, folder, w.links[folder], serr, scode)
end

-- The scripts that are symbolic links (loaders follow them): an edit of the file a link
-- points to is an event in the target's folder, not in the script folder, so each target's
-- folder is watched too (w.link_handles, apart from the script folders' handles), and an
-- event on a target's name notes the link, named as the script ("roles/coder.lua"). Made
-- again at each reload and as the watch starts: a link added, removed or pointed elsewhere
-- is an event in its own folder, which reloads; one further along its chain, an event in
-- that link's folder (link_hops).
local function watch_links(w)
  if w.closed then return end
  local targets = {} -- watched folder -> {name -> {script, ...}}
  local scripts = {}
  for name in pairs(M.DIRS) do
    for _, path in ipairs(scriptfile.list(w.dir .. "/" .. name)) do scripts[#scripts + 1] = path end
  end
  scripts[#scripts + 1] = w.dir .. "/routing.lua"
  for _, path in ipairs(scripts) do
    local st = uv.fs_lstat(path)
    for _, hop in ipairs(st and st.type == "link" and link_hops(path) or {}) do
      local folder, base = hop[1], hop[2]
      targets[folder] = targets[folder] or {}
      local names = targets[folder][base] or {}
      names[#names + 1] = path:sub(#w.dir + 2)
      targets[folder][base] = names
    end
  end
  -- a folder no longer pointed into, or replaced at its path since it was watched
  for folder, lh in pairs(w.link_handles) do
    if not (targets[folder] and same_folder(folder, lh)) then
      w.link_handles[folder] = nil
      lh.h:stop()
      lh.h:close()
    end
  end
  for folder in pairs(w.link_failing) do
    if not targets[folder] then w.link_failing[folder] = nil end
  end
  w.links = targets
  for folder in pairs(targets) do
    if not w.link_handles[folder] then watch_link_folder(w, folder) end
  end
end

-- A filter says "file" for a change to the named file, true for a change to reload for
-- that names none (the folder itself), false for nothing to do.
local function is_script(name)
  if name == nil then return true end
  -- (a name no script has, "deny v2.lua", too: the reload it makes is refused, saying why)
  return scriptfile.meant(name) and "file"
end

-- The project folder itself: routing.lua, and script folders created, made again or moved
-- in after the start, whose scripts are named as changed files (`files` lists files, never
-- folders).
local function project_filter(w)
  return function(name)
    if name == "routing.lua" or name == "orket.lua" then return "file" end -- orket.lua: its mcp section
    if name and M.DIRS[name] then
      -- The name changed hands (deleted and made again, or swapped with mv): the old
      -- handle follows the folder that went (inotify watches the inode, not the name), so
      -- it is dropped and whatever is at the name now is watched; its scripts are listed
      -- after the watch starts, so an edit made in between is taken too.
      -- Only scripts whose content differs from what was last reloaded are changed: an
      -- event on the same folder (its mode, its times) names none and reloads nothing.
      unwatch(w, w.dir .. "/" .. name)
      watch_dir(w, w.dir .. "/" .. name, is_script)
      local now, changed = contents(w, name), false
      for file, text in pairs(now) do
        if w.seen[file] ~= text then changed = true w:touch(file) end
      end
      for file in pairs(w.seen) do
        if file:sub(1, #name + 1) == name .. "/" and now[file] == nil then changed = true w:touch(file) end
      end
      return changed and "noted"
    end
    return false
  end
end

--- watch(engine[, {debounce_ms=}]) -> watcher with :trigger(), :close(), .handles
--- Watches engine.dir (for routing.lua and new folders) and its roles/, tools/, policies/.
--- A burst of events (an editor's save is several) becomes one apply() after debounce_ms
--- of quiet. The watcher only reads the scripts; it never writes to the project.
function M.watch(engine, opts)
  if type(engine) ~= "table" or type(engine.dir) ~= "string" then
    error("bad argument #1 to 'watch' (an engine from orket.engine.setup expected)", 2)
  end
  opts = opts or {}
  local w = setmetatable({ engine = engine, dir = engine.dir, handles = {}, link_handles = {}, links = {},
    link_failing = {}, changed = {}, seen = {}, failing = {},
    held = {}, writing = {}, started = false, debounce_ms = opts.debounce_ms or M.DEBOUNCE_MS }, Watcher)
  w.timer = uv.new_timer()
  -- the watch failures seen before the run began are said once it has (watch_failed)
  w.on_run_start = function() w:run_started() end
  engine.on_run_start = w.on_run_start
  watch_dir(w, engine.dir, project_filter(w))
  for name in pairs(M.DIRS) do watch_dir(w, engine.dir .. "/" .. name, is_script) end
  watch_links(w)
  -- The set in force was read before the watch began (orket run opens the store, the
  -- repository and the run's lock in between): a script that differs now from the digest
  -- taken as it was read, edited or removed or added in that gap, had no event to tell it
  -- and is reloaded as if it had (its digest is taken after the watches start, so an
  -- edit from then on is an event or is in it). Without a digest (a set given by the
  -- caller), what is on disk now is the reference.
  local now, loaded = all_contents(w), engine.scripts_seen
  w.seen = loaded or now
  if loaded then
    for file, h in pairs(now) do if loaded[file] ~= h then w:touch(file) end end
    for file in pairs(loaded) do if now[file] == nil then w:touch(file) end end
  end
  return w
end

-- (Re)starts the quiet period, after which the changes noted are reloaded.
local function arm(w)
  w.timer:stop()
  -- in a task: the reload writes its journal event, which on PostgreSQL waits on the
  -- server, and a timer's callback cannot wait; close() waits for it, so a run that ends
  -- right after has the rows
  w.timer:start(w.debounce_ms, 0, function() tracked(w, function() w:trigger() end) end)
end

--- watcher:touch([name]): notes a change to file name (project-relative; none: a change
--- that names no file) and (re)starts the quiet period. The fs event callbacks call it;
--- tests call it to drive the same path without the kernel.
function Watcher:touch(name)
  if self.closed then return end
  if name then self.changed[name] = true else self.rescan = true end
  arm(self)
end

--- watcher:trigger() -> apply()'s results: reloads now with the changes noted so far.
--- While a reload is under way it returns true at once: that reload is made again, once
--- over, with the changes noted by then. Nothing noted, or the watcher closed: true, and
--- nothing is reloaded (nor journaled).
function Watcher:trigger()
  if self.closed then return true end
  self.timer:stop()
  -- One reload at a time: a reload waits on its journal row (on PostgreSQL, the server), and
  -- one started meanwhile (the next save's timer) would swap and say its set before the first
  -- said its own, a refusal of the older save then said last, over the set in force. One
  -- flag, not a queue: every change noted meanwhile goes into the one reload that follows.
  if self.busy then
    self.again = true
    return true
  end
  self.busy = true
  -- released however the reload ends: raising, or its task cancelled where it waits
  -- (coroutine.close runs a to-be-closed variable, not the code after a pcall)
  local _ <close> = setmetatable({}, { __close = function()
    self.busy = false
    -- ended before its second round: what is noted waits for the next quiet period
    if self.again then
      self.again = nil
      if not self.closed then arm(self) end
    end
  end })
  local res, err, code = self:reload_now()
  while self.again and not self.closed do
    self.again = nil
    self:reload_now()
  end
  self.again = nil
  return res, err, code
end

-- trigger's work, one at a time.
function Watcher:reload_now()
  local files, rescan = self.changed, self.rescan
  if not next(files) and not rescan then return true end -- nothing to reload: no empty reload said
  self.changed, self.rescan = {}, nil
  -- a failed watch is tried again at each reload: the project folder's own events cannot
  -- retry it (it is the one not watched)
  for path in pairs(self.failing) do
    if not self.handles[path] then
      watch_dir(self, path, path == self.dir and project_filter(self) or is_script)
    end
  end
  watch_links(self) -- (before the scripts are read: a target edited from then on is an event)
  local reloads = self.engine.reloads
  local ok, res, err, code = pcall(M.apply, self.engine, files, rescan)
  if not ok then
    -- the watcher's own failure, said once while it stands, as a reload error is
    local said = "raised\n" .. tostring(res)
    if self.engine.reload_said ~= said then
      self.engine.reload_said = said
      self.engine:emit { type = "reload_error", error = tostring(res), files = file_list(files) }
    end
    return nil, tostring(res), "ERUNTIME"
  end
  -- The scripts as this reload read them (load's digest, taken before it compiled, after
  -- the links were watched) are what a later event on their folder compares with, once
  -- the set is swapped; a reload refused, or raising, is tried again by the next event on
  -- the folder. (A set swapped though an error is returned: orket.lua removed in the same
  -- burst.)
  if res or self.engine.reloads ~= reloads then self.seen = self.engine.scripts_seen or all_contents(self) end
  return res, err, code
end

--- watcher:run_started(): the engine's run has said its run_start (engine.on_run_start):
--- the watch failures held until then are said and journaled, and later ones at once.
function Watcher:run_started()
  if self.closed then return end
  self.started = true
  local held = self.held
  self.held = {}
  -- (one whose folder a later retry watched, or that fails another way now, said already
  -- or not at all: it no longer stands)
  for _, ev in ipairs(held) do
    if (ev.failing or self.failing)[ev.path] == ev.error then say_watch(self, ev) end
  end
end

-- Waits until task t ends or the clock (uv.now()) passes deadline.
local function wait_until(t, deadline)
  if t.state ~= "running" then return end
  if task.current() then
    while t.state == "running" and uv.now() < deadline do rt.sleep(10) end
    return
  end
  -- the main thread: the loop runs until then (a timer wakes it at the deadline)
  local timer = uv.new_timer()
  timer:start(math.max(0, deadline - uv.now()), 0, function() end)
  while t.state == "running" and uv.now() < deadline do rt.run("once") end
  timer:close()
end

--- watcher:close(): stops every handle (idempotent), then waits, CLOSE_WAIT_MS at most,
--- for the journal rows still being written: a watch failure said from an fs event, a
--- reload the debounce timer started (the run ends with their rows written). A watch
--- failure held for a run that never began is dropped.
function Watcher:close()
  if self.closed then return end
  self.closed = true
  if self.engine.on_run_start == self.on_run_start then self.engine.on_run_start = nil end
  -- first, so no event comes while it waits (nothing more is said, nor added to writing)
  for _, h in pairs(self.handles) do
    h:stop()
    h:close()
  end
  for _, lh in pairs(self.link_handles) do
    lh.h:stop()
    lh.h:close()
  end
  self.handles, self.link_handles = {}, {}
  self.timer:stop()
  self.timer:close()
  uv.update_time() -- (the loop's clock, cached: it may not have run for a while)
  local writing, deadline = self.writing, uv.now() + M.CLOSE_WAIT_MS
  self.writing = {}
  for t in pairs(writing) do wait_until(t, deadline) end
end
Watcher.__close = Watcher.close

return M
