-- orket.config: loads a project's orket.lua (operator-written, so it runs in a script environment and
-- only plain data comes out), refuses unknown settings, merges the built-in model providers,
-- applies the environment's overrides and checks the models section. What orket.lua may
-- contain (schema, defaults, checks) is orket.settings'; this module reads the file.
local scriptenv = require "orket.scriptenv"
local settings = require "orket.settings"
local scriptfile = require "orket.scriptfile"
local pgurl = require "orket.store.pgurl"
local fieldline = require "orket.fieldline"
local secret = require "orket.settings.secret"
local cost = require "orket.cost"
local inert = require "orket.inert"
local lockfile = require "orket.c.lockfile"
local uv = require "luv"

local M = {}

-- What orket.lua may contain, its defaults and their checks are orket.settings';
-- these two are the model client's (orket.llm) way in.
M.split_model = settings.split_model
M.validate_models = settings.validate_models

--- dir_word(dir) -> the shell word for a folder in a command a message suggests: quoted as
--- every suggested word is (orket.inert.shell_word), and a relative one starting with '-'
--- written ./-x, which no command reads as an option.
function M.dir_word(dir)
  if dir:sub(1, 1) == "-" then dir = "./" .. dir end
  return inert.shell_word(dir)
end

--- shown(path) -> a folder's (or a file's) path as a message prints it: on its line, as
--- orket.inert.line writes a value (a newline in a folder's name is written \n, and cannot
--- split the message into lines that read as two). Only the message: the path is unchanged.
function M.shown(path) return inert.line(path) end

--- at(dir) -> " -C DIR" for a project elsewhere than ".", else "": what a suggested command
--- needs to act on that project from where the person typed the one that failed.
function M.at(dir)
  if not dir or dir == "." or dir == "" then return "" end
  return " -C " .. M.dir_word(dir)
end

--- command(word, dir) -> "'orket WORD'", or "'orket WORD DIR'" for a project elsewhere than
--- ".": a command a message suggests, as a person can type it where they are (init and
--- import take the project's folder as their argument; without it they would act on ".").
function M.command(word, dir)
  if not dir or dir == "." or dir == "" then return "'orket " .. word .. "'" end
  return "'orket " .. word .. " " .. M.dir_word(dir) .. "'"
end

local function is_project(d)
  return uv.fs_stat(d .. "/orket.lua") and uv.fs_stat(d .. "/.orket") and uv.fs_stat(d .. "/workspace/.git")
end

-- The project's own folders a person works in: main's view, the epic files, the scripts,
-- the store's. A project made in one of them would be files of the project's (an orket.lua
-- in epics/ breaks its import).
local OWN_FOLDERS = { "workspace", "epics", ".orket", "roles", "tools", "policies", "deploy" }

--- no_project(dir[, noun]) -> what to do where dir holds no project, for every command's
--- message: inside a project's workspace/ (main's working tree), to name that project with
--- -C, since an init there would make a project inside main's tree; else the init that
--- creates one in dir ("'orket init DIR' creates NOUN", NOUN "one" unless given).
function M.no_project(dir, noun)
  local above, folder = M.holding(dir or ".")
  if above then
    return string.format("this folder is in the %s/ of the project %s: give it with -C %s", folder or "workspace",
      M.shown(above), M.dir_word(above))
  end
  return M.command("init", dir) .. " creates " .. (noun or "one")
end

--- workspace_gone(dir[, ran]) -> msg, code | nil: a project whose workspace/ is gone, or is
--- not a folder (a file, a link to nothing), said with what repairs it (the next run makes
--- workspace/ anew), not as git's "no git repository ... (run orket init)", which orket
--- init, refusing a folder that holds a project, cannot act on. For status, run and resume.
--- ran() -> false when the store records no run: a workspace/ missing then was never made
--- (a project imported from a checkout), and nothing went with it; asked only when it is missing.
--- Neither .orket/ nor workspace/ there (a fresh checkout of orket.lua and epics/, both
--- being local state) is a project where nothing has run yet either, whatever ran says.
--- A project an init is making, or that a killed one left (M.unfinished), is said as that:
--- its workspace/ is init's to make.
function M.workspace_gone(dir, ran)
  local unfinished = M.unfinished(dir)
  if unfinished then return unfinished, "EINVAL" end
  local path = dir .. "/workspace"
  local st, _, code = uv.fs_lstat(path)
  local at = M.dir_word(path)
  local run = "'orket run EPIC" .. M.at(dir) .. "'"
  if not st and code == "ENOENT" and not uv.fs_lstat(dir .. "/.orket") and not (ran and ran()) then
    return string.format("%s does not exist yet: nothing has run here yet (there is no .orket/ either); %s makes "
      .. "the board, and the first %s makes workspace/", at, M.command("import", dir), run), "ENOENT"
  end
  if not st and code == "ENOENT" and ran and ran() == false then
    return string.format("%s does not exist yet: no run is recorded, and the first %s makes it", at, run), "ENOENT"
  end
  if not st and code == "ENOENT" then
    return string.format("%s is missing: the next %s makes workspace/ anew, an empty repository (main's history "
      .. "and the done cards' merged work went with the removed one and are not brought back: put a copy of "
      .. "workspace/ back first to keep them)", at, run), "ENOENT"
  end
  local kind = st and st.type ~= "directory" and st.type
  if kind == "link" then kind = not uv.fs_stat(path) and "link to nothing" end
  if kind then
    return string.format("%s is a %s, not a folder: move it aside (mv %s %s.old); the next %s then makes "
      .. "workspace/ anew", at, kind, at, at, run), "ENOTDIR"
  end
end

--- INIT_MARK: the file in .orket/ that `orket init` makes first, holds locked while it makes
--- the project and removes last (orket.cmd.init): there and not held, that init was killed
--- midway. INIT_MADE beside it lists what it made outside .orket/, each before it was made.
M.INIT_MARK, M.INIT_MADE = "init.lock", "init.made"

--- unfinished(dir) -> message | nil: dir is a project another process's `orket init` is
--- making now, or one that a killed init left half made (a workspace/ without its
--- repository, an empty store), said with what to run rather than as the odd errors of a
--- project half there ("no card", an empty board). This process's own init passes.
function M.unfinished(dir)
  dir = dir or "."
  local mark = dir .. "/.orket/" .. M.INIT_MARK
  if not uv.fs_lstat(mark) then return nil end
  local held, pid = lockfile.probe(mark)
  if held and pid == uv.os_getpid() then return nil end
  if held then
    return string.format("orket init (process %s) is making the project in %s now: wait for it to end",
      tostring(pid or "?"), M.shown(dir))
  end
  return string.format("orket init did not finish making the project in %s (it was killed midway): run %s again "
    .. "(with the options it was given), which removes what that init made and makes the project anew", M.shown(dir),
    M.command("init", dir))
end

-- The project's script folders and the page of docs/ that says what goes in each.
M.SCRIPT_FOLDERS = { "roles", "tools", "policies" }
local FOLDER_DOC = { roles = "roles.md", tools = "tools.md", policies = "policies.md" }

--- not_a_folder(dir, name) -> message, CODE | nil: the project's script folder name (roles,
--- tools, policies) is there and is not a folder (a file, a FIFO, a device: ENOTDIR), or is
--- one that cannot be listed (EACCES, EIO ...), or a link to nothing or a link loop. Its
--- scripts would never be read and the built-in ones silently used (a policies/ read as
--- empty drops the project's denies): `orket validate` names it as a problem, a run
--- (orket.engine.setup.open, through M.script_folders) refuses the project and a hot reload
--- keeps the set it has, each as "NAME: message", the form of a message about a project's
--- file. Only a folder that is not there (ENOENT) holds no scripts.
function M.not_a_folder(dir, name)
  local path = dir .. "/" .. name
  local st, serr, scode = uv.fs_stat(path)
  local doc = string.format("a project's %s are .lua files in a folder %s/ (docs/%s)", name, name, FOLDER_DOC[name])
  if not st and scode == "ENOENT" then
    local to = uv.fs_readlink(path)
    if not to then return nil end
    return string.format("a link to %s, which does not exist: %s; point the link at the folder, or remove it",
      inert.line(to), doc), "ENOENT"
  end
  if not st then
    return string.format("cannot be read (%s): %s; fix the link or the folder", scriptfile.cause(serr, scode, path),
      doc), scode
  end
  if st.type ~= "directory" then
    return string.format("a %s, not a folder: %s; move the %s away", st.type, doc, st.type), "ENOTDIR"
  end
  local h, lerr, lcode = uv.fs_scandir(path)
  if not h then
    return string.format("cannot be listed (%s): its scripts would not be read and the built-in ones used in "
      .. "their place; let the user Orket runs as read it (chmod u+rx %s, or its owner), or move it away",
      scriptfile.cause(lerr, lcode, path), name), lcode
  end
end

--- script_folders(dir) -> "NAME: message", CODE | nil: the first of the script folders
--- that is not a folder, or cannot be listed (M.not_a_folder), for a run that refuses the
--- project (cli.in_dir names it from where the command ran)
function M.script_folders(dir)
  for _, name in ipairs(M.SCRIPT_FOLDERS) do
    local msg, code = M.not_a_folder(dir, name)
    if msg then return name .. ": " .. msg, code end
  end
end

-- A base URL from the environment: http(s) only, the scheme in any case. OLLAMA_HOST may
-- also be "host" or "host:port" (Ollama's own convention), the port 11434 by default.
local function env_url(kind, v)
  -- lazy: the URL rules are otel's, needed only when such a variable is set
  local otel = require "orket.otel"
  v = v:match("^%s*(.-)%s*$") -- spaces around it left out, as orket.otel.http_url does
  local scheme = v:match("^(%a[%w+.-]*)://")
  local forms = kind == "ollama" and "host, host:port or an http:// or https:// URL" or "an http:// or https:// URL"
  -- the value said as an endpoint is (a user, password, path or query may hold a key)
  local bad = "must be " .. forms .. " (got " .. otel.shown_endpoint(v) .. ")"
  if scheme then
    local url = otel.http_url(v)
    if not url then return nil, bad end
    v = url
  elseif kind == "ollama" then
    -- a bare IPv6 address ("::1", "fe80::2") is a host: bracket it as a URL needs
    if not v:find("[%[/]") and select(2, v:gsub(":", "")) >= 2 then v = "[" .. v .. "]" end
    v = "http://" .. v
  else
    return nil, bad
  end
  if not v:match("^https?://[^/]") then return nil, bad end
  if kind == "ollama" then
    local host = v:match("^https?://([^/]*)")
    local has_port = host:match("^%[.*%]:%d+$") or (not host:match("^%[") and host:match(":%d+$"))
    if not has_port then v = v:gsub("^(https?://[^/]+)", "%1:11434") end
  end
  return v
end

--- apply_env(cfg, getenv) -> cfg | nil, message, "EINVAL": each provider's base_url_env
--- overrides its base_url; ORKET_MODEL overrides models.default. A bad value is reported
--- with the variable's name (not as orket.lua's). getenv defaults to os.getenv.
function M.apply_env(cfg, getenv)
  getenv = getenv or os.getenv
  local models = cfg.models
  for _, p in pairs(models.providers) do
    local var = p.base_url_env
    local v = var and getenv(var)
    -- empty or only spaces is unset, as for the OTEL_* variables (the OpenTelemetry
    -- specification's rule): `OPENAI_BASE_URL= orket run` keeps orket.lua's base_url
    if v and v:find("%S") then
      local url, err = env_url(p.kind, v)
      if not url then return nil, var .. ": " .. err, "EINVAL" end
      p.base_url = url
    end
  end
  local m = settings.env_model(getenv)
  if m then
    local prov, err = settings.split_model(m)
    if not prov then return nil, "ORKET_MODEL: " .. err, "EINVAL" end
    if not models.providers[prov] then
      local names = {}
      for name in pairs(models.providers) do names[#names + 1] = tostring(name) end
      table.sort(names)
      return nil, string.format("ORKET_MODEL: names provider '%s', which is not configured (configured: %s)",
        prov, table.concat(names, ", ")), "EINVAL"
    end
    models.default = m
  end
  return cfg
end

--- finish(data, dir, getenv) -> cfg | nil, message, code: merges defaults into plain config
--- data, validates, resolves relative files against dir, applies the environment, binds
--- each secret "NAME" to the project (orket.settings.secret; data's are bound in place).
function M.finish(data, dir, getenv)
  -- each secret "NAME" bound to this project; a name nothing gives is orket.lua's error
  local missing = secret.problems(secret.bind_all(data, dir), dir, getenv)
  if missing[1] then return nil, missing[1], "EINVAL" end
  local cfg = {}
  for k, v in pairs(data) do cfg[k] = v end
  local models, merr, mcode = settings.merge_models(data)
  if not models then return nil, merr, mcode end
  cfg.models = models
  local eok, eerr, ecode = M.apply_env(cfg, getenv)
  if not eok then return nil, eerr, ecode end
  local ok, err, code = settings.validate_models(models)
  if not ok then return nil, err, code end
  for _, p in pairs(models.providers) do
    if p.file and dir and not p.file:match("^/") then p.file = dir .. "/" .. p.file end
  end
  -- where the store is: false for the project's SQLite file (the only backend for now),
  -- else a PostgreSQL URL from ORKET_DATABASE_URL or store.url (docs/store.md)
  local url, uerr, ucode = pgurl.resolve(data.store, getenv)
  if url == nil then return nil, uerr, ucode end
  cfg.database_url = url
  cfg.dir = dir
  return cfg
end

--- placed(dir, msg) -> a check's message "orket.lua: field.path: text" with the line that
--- sets the field, as `orket validate` gives it (orket.fieldline.place): every command that
--- loads orket.lua, or runs a team it sets, says where. Other messages, and a field not
--- found, are left as they are.
function M.placed(dir, err)
  if type(err) ~= "string" or not err:find("^orket%.lua: ") then return err end
  local file, line, text = fieldline.place(err, function(f) return (scriptfile.read((dir or ".") .. "/" .. f)) end)
  if not line then return err end
  return string.format("%s:%d: %s", file, line, text)
end

-- ":LINE" for a message's file, or "" when the line is not known.
local function at_line(line) return line and (":" .. line) or "" end

-- The globals orket.lua set (env's names not in before): its settings, in the order the
-- text sets them, and apart the functions (helpers, never a setting), sorted by name.
local function set_globals(env, before, src)
  local set, helpers, line = {}, {}, {}
  for k, v in next, env do
    if not before[k] then
      if type(v) == "function" and type(k) == "string" then helpers[#helpers + 1] = k
      else set[#set + 1] = k; line[k] = type(k) == "string" and fieldline.of(src, k) or math.huge end
    end
  end
  table.sort(set, function(a, b)
    if line[a] ~= line[b] then return line[a] < line[b] end
    return tostring(a) < tostring(b)
  end)
  table.sort(helpers)
  return set, helpers
end

-- The line of the chunk's `return` (the last line that starts with one: a chunk's return
-- ends it), or nil.
local function return_line(src)
  local n, found = 0, nil
  for line in (src .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:find("^%s*return%f[^%w_]") then found = n end
  end
  return found
end

--- read(dir) -> plain data of orket.lua before defaults and checks | nil, msg, code
--- load(dir[, getenv]) -> cfg | nil, "orket.lua:LINE: ...", code
--- orket.lua may set globals (models = {...}) or return a table, not both (the table would
--- replace the globals: refused, naming them); a global function is refused as no setting
--- (a helper in a file that returns a table is let be). Missing file: ENOENT.
function M.load(dir, getenv)
  local copy, err, code = M.read(dir)
  if not copy then return nil, err, code end
  local unknown = settings.unknown(copy)
  if #unknown > 0 then
    return nil, M.placed(dir, settings.unknown_text(unknown[1], copy[unknown[1]])), "EINVAL"
  end
  local cfg, ferr, fcode = M.finish(copy, dir, getenv)
  if not cfg then return nil, M.placed(dir, ferr), fcode end
  -- a price that looks written per 1,000 tokens: said (once a process), not refused;
  -- otel (where warnings go) lazy: loaded only when there is one to say. A project's
  -- directory other than "." named: `orket serve` loads several projects' orket.lua
  local pw = cost.price_warnings(cfg.models.prices)
  if #pw > 0 and dir and dir ~= "." then
    for i, w in ipairs(pw) do pw[i] = dir .. "/" .. w end
  end
  if #pw > 0 then require("orket.otel").say { warnings = pw } end -- lazy
  return cfg
end

-- path with its "." and ".." parts taken out by name (an absolute path)
local function lexical(path)
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." then parts[#parts] = nil elseif part ~= "." then parts[#parts + 1] = part end
  end
  return "/" .. table.concat(parts, "/")
end

-- The system's own answer for path: its real path, or, for one that is not there (yet),
-- its nearest folder's that is with the rest as named | nil (a ".." past what is not there)
local function resolved(path)
  local rest = ""
  while true do
    local real = uv.fs_realpath(path)
    if real then return real == "/" and (rest ~= "" and rest or "/") or real .. rest end
    local up, last = path:match("^(.*)/([^/]+)/*$")
    if last == "." or last == ".." then return nil end
    if not up then up, last = ".", path:match("^([^/]+)/*$") end
    if not last then return nil end
    rest = "/" .. last .. rest
    path = up == "" and "/" or up
  end
end

--- fixed_dir(dir) -> the project's directory as a command keeps it (orket.cmdline's -C and
--- DIR), fixed once as it starts so that nothing later depends on the working directory: a
--- name that goes through ".." ("../p", "/ci/job/../p") is made absolute, its "." and ".."
--- taken out, naming the folder the system would (a link before a ".." goes up from where it
--- points). Removing a CI job's working directory then no longer takes the project with it
--- (a run failed as "moved", a server refused every new run). One that names the working
--- directory is "."; a folder below it ("p", "./p") is kept as typed, as messages show it:
--- it cannot go while the working directory stays, nor the working directory while it is there.
function M.fixed_dir(dir)
  if type(dir) ~= "string" or dir == "" or not ("/" .. dir .. "/"):find("/%.%./") then return dir end
  local cwd = uv.cwd()
  if dir:sub(1, 1) ~= "/" and not cwd then return dir end -- (gone already: as given, failing as it would)
  local named = lexical((dir:sub(1, 1) == "/" and "" or cwd) .. "/" .. dir)
  local real = resolved(dir)
  if real and real ~= resolved(named) then named = real end
  if named == cwd then return "." end
  return named
end

-- dir's absolute paths to look above: the real one, and the one as it was named (from the
-- shell's $PWD when that is this folder): a workspace/ that is a link to another place is
-- only left on the way up the latter.
local function paths_of(dir)
  local real = uv.fs_realpath(dir)
  local out = { real } -- (empty when dir is not there)
  local base = ""
  if dir:sub(1, 1) ~= "/" then
    local pwd, here = os.getenv("PWD"), uv.fs_realpath(".")
    base = (pwd and pwd:sub(1, 1) == "/" and uv.fs_realpath(pwd) == here) and pwd or here or ""
  end
  local named = lexical(base .. "/" .. dir)
  if named ~= real then out[#out + 1] = named end
  return out
end

-- outermost(dir, region) -> the outermost folder up above dir, along each of dir's paths in
-- turn (paths_of), for which region(up, path) names a folder of up that path lies in, and
-- that name | nil
local function outermost(dir, region)
  for _, path in ipairs(paths_of(dir)) do
    local at, found, folder = path, nil, nil
    while true do
      local up = at:match("^(.*)/[^/]+$")
      if not up or up == "" then break end
      local name = region(up, path)
      if name then found, folder = up, name end
      at = up
    end
    if found then return found, folder end
  end
end

-- The name of project up's folder that path lies in and that holds what agents and exports
-- write: workspace/ (main's view), .orket/ (the cards' directories, the sandboxes' exported
-- trees: all of it but the folder of a replay the REPL kept, whose orket.lua is Orket's own
-- for the read commands' -C) and deploy/ (sandbox compose's tree of main) | nil
local function tree_region(up, path)
  local p = path .. "/"
  local function under(prefix) return p:sub(1, #prefix) == prefix end
  if under(up .. "/workspace/") then return "workspace" end
  if under(up .. "/.orket/") and not path:sub(#up + 2):match("^%.orket/replay%-[^/]+$") then return ".orket" end
  if under(up .. "/deploy/") then return "deploy" end
end

-- A project as the tree check sees one above a folder: orket.lua and .orket/ (its
-- workspace/ may be away: removed, moved aside, a link to nothing, while the cards'
-- directories under .orket/ stay)
local function has_project(d)
  local st = uv.fs_stat(d .. "/.orket")
  return st and st.type == "directory" and uv.fs_stat(d .. "/orket.lua") ~= nil
end

-- tree_file(dir) -> the outermost project, and its folder, whose tree dir lies in | nil.
-- Agents write there: an orket.lua, tools/ and policies/ an agent wrote or committed are
-- files of the tree, and read as a project they would run its tools and reach its MCP
-- servers with the person's environment. Looked at whatever dir holds: a program an agent
-- ran can make a folder there look like a project (.orket/ and a workspace link to itself).
local function tree_file(dir)
  return outermost(dir, function(up, path) return has_project(up) and tree_region(up, path) end)
end

--- holding(dir) -> dir when it is a project, else the project one of whose own folders holds
--- dir (workspace/: a person editing main's view works inside it; epics/, roles/, tools/,
--- policies/, .orket/, deploy/), as an absolute path, and that folder's name | nil: the
--- outermost folder above with orket.lua, .orket/ and workspace/.git, so that an orket.lua
--- the agents committed in the tree is not taken for the project. Looked for along dir's
--- real path and the one it was named by (a workspace/ that is a link to another place).
function M.holding(dir)
  if is_project(dir) then return dir end
  return outermost(dir, function(up, path)
    if not is_project(up) then return nil end
    for _, name in ipairs(OWN_FOLDERS) do
      local prefix = up .. "/" .. name .. "/"
      if (path .. "/"):sub(1, #prefix) == prefix then return name end
    end
  end)
end

--- in_tree(dir) -> message | nil: dir lies in a project's workspace/, .orket/ or deploy/
--- (tree_region), so nothing of it is read, whatever it holds (its orket.lua, tools/,
--- policies/ are files of that tree, which agents write)
function M.in_tree(dir)
  local above, folder = tree_file(dir or ".")
  if not above then return nil end
  return string.format("%s is in the %s/ of the project %s: an orket.lua there is a file of the project's tree "
    .. "(an agent's or a person's), not a project, and is not read; give the project with -C %s",
    M.shown(dir or "."), folder, M.shown(above), M.dir_word(above))
end

--- not_a_project(dir, code) -> why dir holds no project, for orket.lua's ENOENT, ENOTDIR
--- or ENAMETOOLONG: a folder that cannot be one (-C through a file, a name past the
--- system's limit) is said of the folder, not of an orket.lua that is not there.
function M.not_a_project(dir, code)
  if code == "ENOTDIR" or code == "ENAMETOOLONG" then
    return string.format("%s cannot be a project's folder: %s", M.shown(dir), code == "ENOTDIR"
      and "a part of its path is a file, not a folder" or "a name in its path is longer than the system allows")
  end
  -- Orket.lua (a Windows teammate's, where the two names are one) named, with the rename
  local near = scriptfile.near_miss(dir, "orket.lua")
  if near ~= "" then return string.format("no project in %s (orket.lua not found%s)", M.shown(dir), near) end
  return string.format("no project in %s (orket.lua not found); %s", M.shown(dir), M.no_project(dir))
end

function M.read(dir)
  dir = dir or "."
  local unfinished = M.unfinished(dir)
  if unfinished then return nil, unfinished, "EINVAL" end
  -- (without an orket.lua there, the read's own "not found" says where the project is)
  local tree = uv.fs_stat(dir .. "/orket.lua") and M.in_tree(dir)
  if tree then return nil, tree, "EINVAL" end
  local path = dir .. "/orket.lua"
  local src, rerr, rcode = scriptfile.read(path)
  if not src then
    -- the folder itself cannot be one (-C through a file, a name past the system's limit):
    -- said of the folder, not of an orket.lua that is not there
    if rcode == "ENOTDIR" or rcode == "ENAMETOOLONG" or rcode == "ENOENT" then
      return nil, M.not_a_project(dir, rcode), rcode
    end
    return nil, "orket.lua: " .. rerr:sub(#path + 3), rcode
  end
  local box = scriptenv.new { name = "orket.lua", globals = { secret = secret.global } }
  local before = {}
  for k in next, box.env do before[k] = true end
  local fn, err, code = box:load(src, "orket.lua")
  if not fn then return nil, err, code end
  local ok, data, pcode = box:pcall(fn)
  if not ok then return nil, scriptfile.message(data, "orket.lua"), pcode end
  local set, helpers = set_globals(box.env, before, src)
  if data == nil then
    if helpers[1] then
      local name = helpers[1]
      local pat = name:gsub("%p", "%%%0")
      local line = fieldline.at(src, "%f[%w_]function%s+" .. pat .. "%s*%(")
        or fieldline.at(src, "%f[%w_.:]" .. pat .. "%s*=%s*function%f[^%w_]")
      return nil, string.format("orket.lua%s: %s: a global function is not a setting; make it local",
        at_line(line), inert.line(name)), "EINVAL"
    end
    data = {}
    for _, k in ipairs(set) do data[k] = box.env[k] end
  elseif type(data) ~= "table" then
    return nil, "orket.lua: returns a " .. type(data) .. "; return a table or set globals", "EINVAL"
  elseif set[1] then
    local names = {}
    for i, k in ipairs(set) do names[i] = tostring(k) end
    -- the globals would be dropped without a word (the run on the default team and model)
    return nil, string.format("orket.lua%s: returns a table and also sets the global%s %s: a returned table "
      .. "replaces %s; use one or the other", at_line(return_line(src)), set[2] and "s" or "",
      inert.line(table.concat(names, ", ")), set[2] and "them" or "it"), "EINVAL"
  end
  local copy, cerr = scriptenv.copy(data)
  if not copy then return nil, M.placed(dir, "orket.lua: " .. scriptfile.plain_error(cerr)), "EINVAL" end
  return copy
end

--- load_or_defaults(dir[, getenv]) -> cfg | nil, message, code: like load, but a directory
--- without orket.lua gets the built-in models (for `orket models`, the REPL).
function M.load_or_defaults(dir, getenv)
  local cfg, err, code = M.load(dir, getenv)
  if cfg or code ~= "ENOENT" then return cfg, err, code end
  return M.finish({}, dir, getenv)
end

--- settings(dir, defaults) -> cfg, settings | nil, message, code: the project's orket.lua
--- (the built-in defaults when it has none, with defaults) and its settings resolved
function M.settings(dir, defaults)
  local cfg, err, code
  if defaults then cfg, err, code = M.load_or_defaults(dir) else cfg, err, code = M.load(dir) end
  if not cfg then return nil, err, code end
  local s, serr, scode, all = settings.resolve(cfg)
  if not s then
    -- every problem of the section, each on its line, in the order of the file (as validate)
    local placed = {}
    for i, m in ipairs(all or { serr }) do placed[i] = M.placed(dir, m) end
    settings.in_file_order(placed, function(m) return tonumber(m:match("^[^:]+:(%d+): ")) end)
    return nil, table.concat(placed, "\n"), scode
  end
  return cfg, s
end

return M
