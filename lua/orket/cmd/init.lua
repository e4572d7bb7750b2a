-- orket init [DIR]: scaffolds a project that runs at once: orket.lua (models, team,
-- budgets), one epic under epics/, workspace/, and a scripted model (script.lua) so the
-- first run works offline; imports the epic into the board and says what to run next.
-- The files come from templates/project/ under Orket's home; --forge adds a CI workflow,
-- checks.sh and a README with the workflow's badge from templates/forge/ (docs/git.md).
-- On a terminal and without options it asks first (orket.terminal.ask): name, model,
-- forge, example or empty. A workspace/ already holding a team's files gets no example.
local uv = require "luv"
local config = require "orket.config"
local json = require "cjson.safe"
local import = require "orket.import"
local project = require "orket.project"
local gitwork = require "orket.engine.gitwork"
local rt = require "orket.c.runtime"
local tree = require "orket.tree"
local stopsignals = require "orket.stopsignals"
local ask = require "orket.terminal.ask"
local gitdiff = require "orket.c.gitdiff"
local lockfile = require "orket.c.lockfile"
local fault = require "orket.engine.fault"
local inert = require "orket.inert"

local cmd = { name = "init", summary = "create a new project" }
cmd.help = [[
Creates DIR (default: the current directory) with orket.lua, epics/start.json (one epic of
two issues), script.lua (an offline scripted model), and workspace/ (a git repository on
branch main; docs/git.md), imports the epic, and prints the command that runs it. Refuses to touch a directory that already holds a project
(orket.lua or .orket/), or a file of the name of one it writes (epics/start.json,
script.lua), naming the file. All or nothing: when
a step fails (e.g. a broken file already in DIR/epics/), what init created is removed again
and files that were there before are left as they were.

A workspace/ that already holds files (a team's repository, adopted as it is when it is on
branch main, docs/git.md; or files init makes its first commit of) gets no example epic:
its cards write files of their own (README.md) into main, over the team's. init then says
to write an epic into epics/, set a real model, import and run it (docs/guide/adopting.md).

--forge gitea|github also writes, into workspace/ (so they are in main's first commit), a
workflow (.gitea/workflows/orket.yml or .github/workflows/orket.yml) that runs checks.sh,
the project's acceptance checks, on each pull request and reports the outcome to Orket's
API (secrets ORKET_URL and ORKET_API_KEY), checks.sh itself (orket.lua's verify.command
runs it at each hand-in too) and README.md with the workflow's status badge; orket.lua gets
a git section to fill in. --repo OWNER/NAME and --forge-url URL (Gitea's server; GitHub's
is https://github.com) fill in the badge and that section; without them they say OWNER/NAME.
It also writes a deploy workflow (deploy.yml beside orket.yml): on each push to main it asks
Orket (the same two secrets) to deploy the sandbox of main and reports the outcome as the
commit status orket/deploy; for Gitea, act_runner.yaml in DIR configures a runner for both
(docs/sandbox.md, *CI that deploys*).

On a terminal, without options, init asks first: the project's name (DIR's), the model's
provider (scripted, the offline model; ollama; openai) and model, the forge (none, gitea,
github, with its repository and, for gitea, its URL) and whether to start from the example
epic or empty. Enter takes the answer in brackets; Ctrl-D cancels and changes nothing.
--yes asks nothing and takes those answers, as init does without a terminal.]]

-- The forges init writes a workflow for: where the workflow goes, the web address of a
-- repository's server, its workflow badge, and what names a run in the address of its page:
-- GitHub's run id; Forgejo and Gitea up to 1.25 number each repository's runs and address
-- them by that number (their github.run_id is another, server-wide count: a 404).
local FORGES = {
  github = { dir = ".github/workflows", url = "https://github.com", api = "https://api.github.com",
    run = "github.run_id", run_note = "the run's page, by the run's id",
    badge = "[![orket](%s/%s/actions/workflows/orket.yml/badge.svg)](%s/%s/actions/workflows/orket.yml)" },
  gitea = { dir = ".gitea/workflows", url = "https://gitea.example", api = nil, run = "github.run_number",
    run_note = "the run's page, by its number as Forgejo and Gitea up to 1.25 address it (Gitea 1.26 and later: github.run_id)",
    badge = "[![orket](%s/%s/actions/workflows/orket.yml/badge.svg)](%s/%s/actions?workflow=orket.yml)" },
}

local FILES = { "orket.lua", "epics/start.json", "script.lua" }

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

local shell_quote = require("orket.cli").shell_quote
cmd.shell_quote = shell_quote

-- What this init made, newest last, so a failure can take exactly that away again and
-- leave what was there before untouched. A SIGKILL (the OOM killer, docker kill) cannot be
-- undone so: init makes .orket/ first, holding its mark (config.INIT_MARK) locked there, and
-- writes each path it is about to make outside .orket/ into its journal (config.INIT_MADE)
-- before making it; the mark goes last (commit). A killed init's project is then known
-- (config.unfinished tells the other commands) and the next init takes exactly what that
-- one made away again (clear_killed), never a file of the person's.
local function undo_list()
  local made = {}
  -- add(path, is_dir[, rel]): path is about to be made; rel, its path under DIR, journaled
  function made.add(path, is_dir, rel)
    if rel and made.journal then
      assert(made.journal:write((is_dir and "d " or "f ") .. rel .. "\n"))
      assert(made.journal:flush())
    end
    made[#made + 1] = { path = path, dir = is_dir }
    fault.hit("init_step")
  end
  -- -> the first path it could not remove (something not made here is in it), or nil
  function made.undo()
    if made.repo then tree.remove(made.repo) end
    local left
    for i = #made, 1, -1 do
      local m = made[i]
      if m.tree then tree.remove(m.path) elseif m.dir then uv.fs_rmdir(m.path) else os.remove(m.path) end
      if not left and uv.fs_lstat(m.path) then left = m.path end
    end
    if made.journal then made.journal:close() end
    if made.lock then made.lock:release() end
    return left
  end
  return made
end

-- Makes the folders of path that are not there (DIR itself and those above it: made before
-- .orket/ and its journal, so not journaled; a killed init leaves them empty, and the
-- next one makes the project in them)
local function mkdir_p(path, made)
  local acc = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    acc = acc .. "/" .. part
    local st = uv.fs_stat(acc)
    if not st then
      local ok, err = uv.fs_mkdir(acc, 493)
      if not ok then return nil, err end
      made.add(acc, true)
    elseif st.type ~= "directory" then
      return nil, config.shown(acc) .. " is not a directory"
    end
  end
  return true
end

-- Makes the folders of rel under dir that are not there, each journaled before it is made
local function mkdir_in(dir, rel, made)
  local acc
  for part in rel:gmatch("[^/]+") do
    acc = acc and (acc .. "/" .. part) or part
    local path = dir .. "/" .. acc
    local st = uv.fs_stat(path)
    if not st then
      made.add(path, true, acc)
      local ok, err = uv.fs_mkdir(path, 493)
      if not ok then return nil, err end
    elseif st.type ~= "directory" then
      return nil, config.shown(path) .. " is not a directory"
    end
  end
  return true
end

-- Whether path is an empty folder (a killed init's .orket/ made before its mark)
local function empty_dir(path)
  local h = uv.fs_scandir(path)
  local first = h and uv.fs_scandir_next(h)
  while first and uv.fs_scandir_next(h) do end -- (read to its end: luv frees a listing so)
  return h ~= nil and first == nil
end

-- The first step: DIR/.orket/ made (or one left empty taken), its mark held locked and the
-- journal opened -> true | nil, msg. The mark held by another init: that one is making
-- the project now.
local function begin(dir, made)
  local home = dir .. "/.orket"
  local ok, err, code = uv.fs_mkdir(home, 448)
  if not ok and code == "EEXIST" and not empty_dir(home) then
    -- (another init made it since in_the_way looked)
    return nil, string.format("%s/.orket already exists: %s already holds a project", config.shown(dir),
      config.shown(dir))
  elseif not ok and code ~= "EEXIST" then
    return nil, string.format("cannot create %s/.orket: %s", config.shown(dir), tostring(err))
  end
  local lock, lerr, lcode, holder = lockfile.acquire(home .. "/" .. config.INIT_MARK)
  if not lock then
    if lcode ~= "EBUSY" then return nil, lerr end
    return nil, string.format("orket init (process %s) is making a project in %s now", tostring(holder or "?"),
      config.shown(dir))
  end
  -- .orket/ is this init's from here (made by it, or left empty by a killed one): all it holds goes with it
  made[#made + 1] = { path = home, tree = true }
  made.lock = lock
  made.journal, err = io.open(home .. "/" .. config.INIT_MADE, "wb")
  if not made.journal then return nil, err end
  fault.hit("init_step")
  return true
end

-- The last step, so a failure before leaves no repository behind: workspace/ is a git
-- repository with main's first commit; each card gets its branch and worktree on its first
-- turn (docs/git.md). One there already is the person's: only one made here is removed
-- again (journaled before it is made). -> true | nil, msg
local function make_repo(dir, made)
  if not uv.fs_lstat(dir .. "/workspace/.git") then
    assert(made.journal:write("repo\n"))
    assert(made.journal:flush())
    made.repo = dir .. "/workspace/.git"
  end
  local git, gerr = gitwork.open(dir .. "/workspace", dir .. "/.orket/worktrees")
  if not git then return nil, gerr end
  git.repo:close()
  fault.hit("init_step")
  return true
end

-- Writes the project; nil, msg on the first failure (the caller undoes what was made).
-- files: the paths under dir to write from texts, in order.
local function create(dir, texts, made, files)
  local ok, err = mkdir_p(dir, made)
  if not ok then return nil, string.format("cannot create %s: %s", config.shown(dir), tostring(err)) end
  ok, err = begin(dir, made)
  if not ok then return nil, err end
  local dirs = { "epics", "workspace" }
  for _, f in ipairs(files) do dirs[#dirs + 1] = f:match("^(.*)/[^/]+$") end
  for _, d in ipairs(dirs) do
    ok, err = mkdir_in(dir, d, made)
    if not ok then return nil, string.format("cannot create %s: %s", config.shown(dir .. "/" .. d), tostring(err)) end
  end
  for _, f in ipairs(files) do
    local path = dir .. "/" .. f
    made.add(path, false, f)
    local out, oerr = io.open(path, "wb")
    if not out then return nil, string.format("cannot write %s: %s", config.shown(path), tostring(oerr)) end
    local wok, werr = out:write(texts[f])
    out:close()
    if not wok then return nil, string.format("cannot write %s: %s", config.shown(path), tostring(werr)) end
  end
  -- the store in .orket/ (this init's: its files go with it)
  local db, oerr = project.open_store(dir, true)
  if not db then return nil, oerr end
  local r, ierr = import.import(db, dir)
  db:close()
  if not r then return nil, ierr end
  fault.hit("init_step")
  ok, err = make_repo(dir, made)
  if not ok then return nil, err end
  return r
end

-- The project whole: its mark removed first (from here no init's leftovers), then the
-- journal, and the lock let go
local function commit(dir, made)
  os.remove(dir .. "/.orket/" .. config.INIT_MARK)
  fault.hit("init_step")
  made.journal:close()
  os.remove(dir .. "/.orket/" .. config.INIT_MADE)
  made.lock:release()
end

-- A journal line's path under DIR, as init writes them: relative, without "." or "..",
-- of a sane length (a line that is not is left alone)
local function journaled(rel)
  if not rel or rel == "" or rel:sub(1, 1) == "/" or #rel > 512 then return nil end
  for part in rel:gmatch("[^/]*") do
    if part == "" or part == "." or part == ".." then return nil end
  end
  return rel
end

-- A killed init's project (its mark there and not held: config.unfinished) made ready to
-- be made again: what its journal lists removed, newest first, then .orket/, which it made
-- first -> true when there was one | nil | nil, refusal (another init makes it now)
local function clear_killed(dir)
  local home = dir .. "/.orket"
  if not uv.fs_lstat(home .. "/" .. config.INIT_MARK) then return nil end
  local lock, lerr, lcode, holder = lockfile.acquire(home .. "/" .. config.INIT_MARK)
  if not lock then
    if lcode ~= "EBUSY" then return nil, lerr end
    return nil, string.format("orket init (process %s) is making a project in %s now; wait for it to end; "
      .. "nothing was changed", tostring(holder or "?"), config.shown(dir))
  end
  local lines = {}
  for line in ((read(home .. "/" .. config.INIT_MADE)) or ""):gmatch("[^\n]+") do lines[#lines + 1] = line end
  for i = #lines, 1, -1 do
    local kind, rel = lines[i]:match("^([df]) (.+)$")
    rel = journaled(rel)
    if lines[i] == "repo" then tree.remove(dir .. "/workspace/.git")
    elseif rel and kind == "d" then uv.fs_rmdir(dir .. "/" .. rel)
    elseif rel then os.remove(dir .. "/" .. rel) end
  end
  tree.remove(home)
  lock:release()
  return true
end

-- What a repository and a forge URL must look like: true | nil, why
local function check_repo(v)
  if v:match("^[%w_.%-]+/[%w_.%-]+$") then return true end
  return nil, string.format("'%s' is not OWNER/NAME", v)
end
local function check_url(v)
  if v:match("^https?://[%w_.%-]+[%w_.%-:/]*$") then return true end
  return nil, string.format("'%s' is not an http(s) URL", v)
end

-- A parser check from one of the above: the value, or the option named in the refusal.
local function checked(name, check)
  return function(v)
    local ok, why = check(v)
    if not ok then return nil, name .. ": " .. why end
    return v
  end
end

-- The words: [DIR], --yes, or --forge with its repository and URL (checked as given).
cmd.args = { usage = "orket init [DIR] [--yes | --forge gitea|github [--repo OWNER/NAME] [--forge-url URL]]",
  extra = "init takes at most one directory",
  -- (fixed as every command's DIR is: "../p" made absolute, orket.config.fixed_dir)
  { "DIR", optional = true, what = "a directory", check = config.fixed_dir },
  { "--yes" },
  { "--forge", value = "gitea|github", what = "gitea or github", check = function(v)
    if FORGES[v] then return v end
    return nil, string.format("--forge: unknown forge '%s' (gitea or github)", v)
  end },
  { "--repo", value = "OWNER/NAME", check = checked("--repo", check_repo) },
  { "--forge-url", value = "URL", key = "url", what = "the forge's URL", check = checked("--forge-url", check_url) },
}

-- The options: dir, {forge=, repo=, url=, yes=} | nil, exit status (a usage error said).
local function options(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return nil, st end
  if (o.repo or o.url) and not o.forge then
    return nil, cli.usage_error(cmd, "%s needs --forge gitea|github", o.repo and "--repo" or "--forge-url")
  end
  if o.url then o.url = o.url:gsub("/+$", "") end
  return o.dir or ".", o
end

-- The deploy workflow (docs/sandbox.md, *CI that deploys*), and for Gitea its runner's
-- config, put in texts -> their paths
local function deploy_texts(texts, files, f, o)
  local deploy_wf = "workspace/" .. f.dir .. "/deploy.yml"
  texts[deploy_wf] = files["deploy.yml"]:gsub("FORGE", o.forge)
  local paths = { deploy_wf }
  if o.forge == "gitea" then
    texts["act_runner.yaml"] = files["act_runner.yaml"]
    paths[#paths + 1] = "act_runner.yaml"
  end
  return paths
end

-- The forge's texts: the workflow, checks.sh and README.md in workspace/, the script's
-- README with the badge (its START-2 writes README.md), and orket.lua's verify and git
-- sections. nil, msg when a template cannot be read.
local function forge_texts(home, texts, o, name)
  local f = FORGES[o.forge]
  local url, repo = o.url or f.url, o.repo or "OWNER/NAME"
  local badge = string.format(f.badge, url, repo, url, repo)
  local files = {}
  for _, t in ipairs { "orket.yml", "deploy.yml", "checks.sh", "README.md", "act_runner.yaml" } do
    local text, err = read(home .. "/templates/forge/" .. t)
    if not text then return nil, string.format("cannot read the forge template %s: %s", t, tostring(err)) end
    files[t] = text
  end
  local workflow = "workspace/" .. f.dir .. "/orket.yml"
  local function lit(v) return function() return v end end -- '%' in a value is no capture
  texts[workflow] = files["orket.yml"]:gsub("FORGE", o.forge):gsub("RUN_NOTE", f.run_note):gsub("RUN_KEY", f.run)
  local extra = deploy_texts(texts, files, f, o)
  table.insert(extra, 1, workflow)
  texts["workspace/checks.sh"] = files["checks.sh"]
  texts["workspace/README.md"] = files["README.md"]:gsub("PROJECT", lit(name), 1):gsub("BADGE", lit(badge), 1)
    :gsub("WORKFLOW", lit(f.dir .. "/orket.yml"), 1)
  -- the offline model's README keeps the badge (its text is a Lua string in script.lua)
  if texts["script.lua"] then -- not written for a project on a real model
    local n
    texts["script.lua"], n = texts["script.lua"]:gsub('"# Project\\n\\n', lit('"# Project\\n\\n' .. badge .. '\\n\\n'), 1)
    if n ~= 1 then return nil, "the project template script.lua has no README text for the badge" end
  end
  texts["orket.lua"] = texts["orket.lua"] .. string.format([[
-- orket init --forge %s: checks.sh (in workspace/) holds the acceptance checks, run at each
-- hand-in and by the forge's workflow on each pull request (%s/orket.yml; docs/git.md).
verify = { command = { "sh", "checks.sh" } }
-- Fill in and uncomment to push each hand-in and review it on the forge (docs/git.md):
-- git = { remote = "%s/%s.git", forge = "%s", repo = "%s",
--   api_url = "%s", token_env = "FORGE_TOKEN", webhook_secret_env = "FORGE_HOOK_SECRET" }
-- review = { human = true }
]], o.forge, f.dir, url, repo, o.forge, repo, f.api or url)
  extra[#extra + 1] = "workspace/checks.sh"
  extra[#extra + 1] = "workspace/README.md"
  return extra
end

-- The model providers the wizard offers, each with the model it suggests and what
-- orket.lua says of it (the built-in providers need no section: docs/llm.md).
local PROVIDERS = { "scripted", "ollama", "openai" }
local SUGGESTED = { ollama = "qwen2.5-coder:7b", openai = "gpt-4o-mini" }
local ABOUT = {
  ollama = "ollama is built in: a server at 127.0.0.1:11434, or at OLLAMA_HOST",
  openai = "openai is built in: its key comes from OPENAI_API_KEY (never written here), and\n"
    .. "-- OPENAI_BASE_URL points it at another OpenAI-compatible server",
}

local function check_name(v)
  if v == "" or #v > 128 or v:find("%c") then return nil, "a name of 1 to 128 printable characters" end
  return true
end
local function check_model(v)
  if #v <= 128 and v:match("^[%w][%w._:/%-]*$") then return true end
  return nil, "a model name such as " .. SUGGESTED.ollama .. " (letters, digits and . _ : / -)"
end
-- an answer that may be left empty, else checked
local function optional(check)
  return function(v)
    if v == "" then return true end
    return check(v)
  end
end

-- Why an adopted repository gets no example epic (said after the making)
local ADOPTED = "workspace/ already holds files (your repository's): init wrote no example epic, "
  .. "whose cards would write files of their own over yours"

-- Whether DIR's workspace/ holds a team's files, which the example's cards would write over:
-- an entry besides .git, or a repository whose main has a commit (its files may all be
-- deleted in the working tree). An empty workspace/, or a repository with no commit yet, has
-- nothing to lose.
local function team_files(dir)
  local ws = dir .. "/workspace"
  local scan, any = uv.fs_scandir(ws), false
  -- read to its end: luv frees a listing's entries only then
  while scan do
    local name = uv.fs_scandir_next(scan)
    if not name then break end
    any = any or name ~= ".git"
  end
  if any or not uv.fs_lstat(ws .. "/.git") then return any end
  -- read-only: opening it as Orket's repository writes the view's state into .git, which a
  -- failed init would leave (one without main is refused later, with the commands that make it)
  local repo <close> = gitdiff.open(ws)
  return repo ~= nil and repo:resolve("refs/heads/main") ~= nil
end

-- The wizard (a terminal, no options): o gets name, provider, model, forge, repo, url and
-- empty from the answers (o.adopt: empty, not asked) | nil when the person cancelled (Ctrl-D).
local function wizard(o, name)
  local q = ask.new(io.stdin, io.stdout)
  io.stdout:write("orket init: Enter takes the answer in brackets, Ctrl-D cancels.\n")
  o.name = q:line("Project name", name, check_name)
  o.provider = o.name and q:choice("Model provider", PROVIDERS, "scripted")
  if not o.provider then return nil end
  if SUGGESTED[o.provider] then
    o.model = q:line("Model", SUGGESTED[o.provider], check_model)
    if not o.model then return nil end
  end
  local forge = q:choice("Forge", { "none", "gitea", "github" }, "none")
  if not forge then return nil end
  if forge ~= "none" then
    o.forge = forge
    local repo = q:line("Repository on " .. forge .. " (OWNER/NAME, Enter to fill in later)", nil, optional(check_repo))
    if not repo then return nil end
    o.repo = repo ~= "" and repo or nil
    if forge == "gitea" then
      local url = q:line("Gitea's URL (Enter to fill in later)", nil, optional(check_url))
      if not url then return nil end
      o.url = url ~= "" and url:gsub("/+$", "") or nil
    end
  end
  if o.adopt then
    io.stdout:write("Start from: empty (workspace/ already holds your repository's files: no example)\n")
    return o
  end
  local start = q:choice("Start from", { "example", "empty" }, "example")
  if not start then return nil end
  o.empty = start == "empty"
  return o
end

-- orket.lua's models section for a real model: the template's scripted one replaced.
-- true | nil, msg
local function real_model(texts, provider, model)
  local section = string.format("-- The model (docs/llm.md; `orket models` checks that it answers).\n-- %s.\n"
    .. "models = { default = %q }\n", ABOUT[provider], provider .. ":" .. model)
  local n
  texts["orket.lua"], n = texts["orket.lua"]:gsub("%-%- The scripted model.-\nmodels = {.-\n}\n", function() return section end, 1)
  if n ~= 1 then return nil, "the project template orket.lua has no models section" end
  texts["script.lua"] = nil
  return true
end

-- The texts init writes, by path, and the paths in the order they are written | nil, msg
local function project_texts(home, dir, o, name)
  local texts = {}
  for _, f in ipairs(FILES) do
    local text, err = read(home .. "/templates/project/" .. f)
    if not text then return nil, string.format("cannot read the project template %s: %s", f, tostring(err)) end
    texts[f] = text
  end
  -- a function, not a string: '%' in the name is not a capture reference
  texts["orket.lua"] = texts["orket.lua"]:gsub('"PROJECT"', function() return string.format("%q", name) end, 1)
  if o.model then
    local ok, merr = real_model(texts, o.provider, o.model)
    if not ok then return nil, merr end
  end
  if o.empty then texts["epics/start.json"] = nil end
  local files = {}
  for _, f in ipairs(FILES) do files[#files + 1] = texts[f] and f or nil end
  if o.forge then
    local extra, ferr = forge_texts(home, texts, o, name)
    if not extra then return nil, ferr end
    for _, f in ipairs(extra) do
      -- a repository already in workspace/ keeps its own files: nothing is overwritten
      if uv.fs_stat(dir .. "/" .. f) then return nil, string.format("%s/%s already exists; nothing was changed", config.shown(dir), f) end
      files[#files + 1] = f
    end
  end
  return texts, files
end

-- The step to take next, with the binary as run (an absolute path unless `orket` on PATH
-- is this one): the line works as printed, in a shell where orket is not installed. cd: the
-- "cd DIR && " that goes first ("" for .).
local function next_step(dir, o, texts, cd, prog)
  local epics = (dir == "." and "" or config.shown(dir) .. "/") .. "epics/"
  if o.adopt then
    -- the team's own epic next; the offline model answers only the example's cards
    io.stdout:write(ADOPTED .. "\n")
    io.stdout:write("next: write an epic into " .. epics .. " (docs/guide/adopting.md)"
      .. (texts["script.lua"] and " and set models.default in orket.lua to a real model (script.lua's offline one "
        .. "answers only the example's cards; docs/llm.md)" or "")
      .. ", then " .. cd .. prog .. " import && " .. prog .. " run EPIC\n")
  elseif o.empty then
    io.stdout:write("next: write an epic into " .. epics .. " (docs/board.md), then " .. cd .. prog .. " import\n")
  else
    io.stdout:write("next: " .. cd .. prog .. " run START\n")
  end
end

-- What init made, and the command to run next.
local function say_made(dir, o, texts, r, cli)
  -- a name starting with '-' would be read by cd as its option: config.dir_word writes ./-x
  local cd = dir == "." and "" or ("cd " .. config.dir_word(dir) .. " && ")
  -- START's issues as its file holds them: r.cards counts epics/ files that were there too
  local start = texts["epics/start.json"] and json.decode(texts["epics/start.json"])
  local issues = start and #(start.issues or {}) or 0
  local others = r.cards - (start and issues + 1 or 0)
  local said = { "orket.lua", start and string.format("epics/start.json (epic START, %d issues)", issues)
    or others == 0 and "epics/ (empty)" or nil }
  if others > 0 then said[#said + 1] = string.format("%d more card%s from epics/", others, others == 1 and "" or "s") end
  if texts["script.lua"] then said[#said + 1] = "script.lua (offline model)" end
  said[#said + 1] = "workspace/ (git)"
  io.stdout:write(string.format("created a project in %s: %s\n", config.shown(dir), table.concat(said, ", ")))
  if o.model then io.stdout:write(string.format("model: %s:%s (docs/llm.md)\n", o.provider, o.model)) end
  if o.forge then
    io.stdout:write(string.format("forge %s: workspace/%s/orket.yml runs workspace/checks.sh on pull requests and "
      .. "reports to Orket (secrets ORKET_URL, ORKET_API_KEY); README.md has its badge; orket.lua's git section "
      .. "is to fill in (docs/git.md)\n", o.forge, FORGES[o.forge].dir))
    io.stdout:write(string.format("deploy: workspace/%s/deploy.yml deploys the sandbox of main on each push to main "
      .. "and reports it as the commit status orket/deploy%s (docs/sandbox.md)\n", FORGES[o.forge].dir,
      o.forge == "gitea" and "; act_runner.yaml configures a Gitea runner for both" or ""))
  end
  next_step(dir, o, texts, cd, cli.program())
end

-- A directory's name as a project's name, which orket.lua needs in UTF-8: each byte that
-- is no part of a UTF-8 character becomes U+FFFD, the rest is kept.
local function utf8_name(s)
  local ok, at = utf8.len(s)
  while not ok do
    s = s:sub(1, at - 1) .. "\u{FFFD}" .. s:sub(at + 1)
    ok, at = utf8.len(s, at + 3)
  end
  return s
end

-- A create interrupted (it may have ended meanwhile), undone: what was made removed, the
-- workspace's repository too when init made it (in a workspace/ that was there or not)
-- -> exit status 130
local function interrupted(cli, dir, made, signal)
  local left = made.undo()
  if left then
    cli.err("init interrupted; it could not remove %s, which it had created: remove it before running init again",
      config.shown(left))
  else
    cli.err("init interrupted; it removed what it had created in %s, so it can be run again", config.shown(dir))
  end
  return stopsignals.STATUS[signal]
end

-- A failed create, undone: what was made removed, and said -> exit status 1
local function undone(cli, dir, made, err)
  local left = made.undo()
  -- the git layer's commands name workspace/ as seen from the project folder: from
  -- elsewhere, as seen from here (orket init p: git -C p/workspace)
  if type(err) == "string" and dir ~= "." then
    local ws = config.dir_word(dir .. "/workspace")
    err = err:gsub("git %-C workspace ", function() return "git -C " .. ws .. " " end)
  end
  if #made == 0 then
    -- it failed before making anything (DIR is a file): nothing to have removed
    cli.err("%s; nothing was changed", err)
  elseif left then
    cli.err("%s; init could not remove %s, which it had created: remove it before running init again", err,
      config.shown(left))
  else
    cli.err("%s; init removed what it had created in %s, so it can be run again", err, config.shown(dir))
  end
  return 1
end

-- A project folder's own files, which a repository keeping a project may hold beside .git
local PROJECT_FILES = { [".git"] = true, [".gitignore"] = true, [".gitattributes"] = true, ["orket.lua"] = true,
  [".orket"] = true, epics = true, roles = true, tools = true, policies = true, templates = true, ["script.lua"] = true,
  workspace = true, ["README.md"] = true, README = true, LICENSE = true, [".github"] = true }

-- DIR a git repository's root holding other files than a project's (the team's code: the
-- plain reading of "init on the existing repo") -> the refusal | nil. Made there, the project
-- put orket.lua and epics/ among the team's files and a new, empty repository in workspace/,
-- where the agents would work instead of on the team's code. A repository keeping only a
-- project's files (its orket.lua, epics/, roles/ versioned) is a project's, and passes.
local function team_repository(dir)
  if not uv.fs_lstat(dir .. "/.git") then return nil end
  local scan, other = uv.fs_scandir(dir), nil
  while scan do -- read to its end: luv frees a listing's entries only then
    local name = uv.fs_scandir_next(scan)
    if not name then break end
    if not PROJECT_FILES[name] then other = other or name end
  end
  if not other then return nil end
  return string.format("%s is a git repository holding files of its own (%s, ...): a project made there would put "
    .. "orket.lua and epics/ among them, and the agents would work in a new, empty workspace/ repository, not on "
    .. "this one; to adopt it, make a project folder and clone or move this repository into its workspace/ "
    .. "(docs/guide/adopting.md); nothing was changed", config.shown(dir), inert.line(other))
end

-- What in DIR init would not overwrite -> the refusal | nil. orket.lua or .orket/ is a
-- project (asked before the questions: texts nil); another file of the same name as one
-- init writes (texts, after the answers: a person's own script.lua is in the way of the
-- scripted model, not of a real one) is only in the way, and said so.
local function in_the_way(dir, texts)
  -- a folder in a project's workspace/ (main's working tree, where a person editing it
  -- works): a project made there would be files of main's tree, its board inside the agents'
  -- repository. The nearest folder of dir's that is there is asked (init makes the rest).
  local probe = dir
  while not uv.fs_stat(probe) and probe:find("/", 1, true) do probe = probe:match("^(.*)/[^/]*$") end
  if probe == "" then probe = "/" end -- (an absolute path's first folder missing)
  if not uv.fs_stat(probe) then probe = "." end
  local above, folder = config.holding(probe)
  if above and uv.fs_realpath(above) ~= uv.fs_realpath(probe) then
    if folder == "workspace" then
      return string.format("%s is in the workspace/ of the project %s (main's working tree): a project made there "
        .. "would be files of main's; give init a folder outside it; nothing was changed", config.shown(dir),
        config.shown(above))
    end
    return string.format("%s is in the %s/ of the project %s: a project made there would be files of that project's "
      .. "(an orket.lua in epics/ breaks its import); give init a folder outside it; nothing was changed",
      config.shown(dir), folder, config.shown(above))
  end
  if not texts then
    local repo = team_repository(dir)
    if repo then return repo end
  end
  for _, f in ipairs(texts and {} or { "orket.lua", ".orket" }) do
    -- (an empty .orket/ holds nothing: a killed init's, made before its mark)
    if uv.fs_lstat(dir .. "/" .. f) and not (f == ".orket" and empty_dir(dir .. "/" .. f)) then
      return string.format("%s/%s already exists: %s already holds a project; nothing was changed", config.shown(dir), f,
        config.shown(dir))
    end
  end
  for _, f in ipairs { "epics/start.json", "script.lua" } do
    if texts and texts[f] and uv.fs_lstat(dir .. "/" .. f) then
      return string.format("%s/%s already exists, and init writes a file of that name: move it aside, or give "
        .. "init another folder; nothing was changed", config.shown(dir), f)
    end
  end
end

-- The project's name: DIR's (the current directory's for .), as orket.lua can hold it
local function name_of(dir)
  local name = dir ~= "." and dir or uv.fs_realpath(".") or "project"
  return utf8_name(name:match("([^/]+)/*$") or "project")
end

-- What init made is said on stdout: closed (`>&-`), it would make the whole project and then
-- fail on its summary, where a failing init otherwise means nothing was made -> 1 (said) | nil
local function closed_stdout(cli)
  if not cli.stdout_unwritable() then return nil end
  cli.err("cannot write the output: stdout is closed (or open only for reading), so nothing was created; send it to "
    .. "a file, a pipe or /dev/null")
  return 1
end

function cmd.run(args, cli)
  local dir, o = options(args, cli)
  if not dir then return o end
  if closed_stdout(cli) then return 1 end
  -- a project a killed init left half made is made again (what that init made removed first)
  local cleared, refused = clear_killed(dir)
  if cleared then cli.err("a killed orket init had left %s half made: what it made was removed; making the project "
    .. "again", config.shown(dir)) end
  refused = refused or in_the_way(dir)
  if refused then
    cli.err("%s", refused)
    return 1
  end
  o.adopt = team_files(dir)
  o.empty = o.empty or o.adopt
  local name = name_of(dir)
  if not (o.forge or o.yes) and uv.guess_handle(0) == "tty" and uv.guess_handle(1) == "tty" then
    if not wizard(o, name) then
      cli.err("init cancelled; nothing was changed")
      return 1
    end
    name = o.name
  end
  local texts, files = project_texts(rt.home(), dir, o, name)
  refused = texts and in_the_way(dir, texts)
  if not texts or refused then
    cli.err("%s", refused or files)
    return 1
  end
  local made = undo_list()
  -- Ctrl-C halfway would leave a half-made project (a workspace without its repository, an
  -- empty board) that init then refused as a project and validate passed: held, and undone
  local signal, r, err = stopsignals.hold(function() return create(dir, texts, made, files) end)
  if signal then return interrupted(cli, dir, made, signal) end
  if not r then return undone(cli, dir, made, err) end
  commit(dir, made)
  say_made(dir, o, texts, r, cli)
  return 0
end

return cmd
