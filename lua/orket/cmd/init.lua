-- orket init [DIR]: scaffolds a project that runs at once: orket.lua (models, team,
-- budgets), one epic under epics/, workspace/, and a scripted model (script.lua) so the
-- first run works offline; imports the epic into the board and says what to run next.
-- The files come from templates/project/ under Orket's home; --forge adds a CI workflow,
-- checks.sh and a README with the workflow's badge from templates/forge/ (docs/git.md).
local uv = require "luv"
local import = require "orket.import"
local project = require "orket.project"
local gitwork = require "orket.engine.gitwork"
local rt = require "orket.c.runtime"

local cmd = { summary = "create a new project",
  usage = "orket init [DIR] [--forge gitea|github [--repo OWNER/NAME] [--forge-url URL]]" }
cmd.help = [[
Creates DIR (default: the current directory) with orket.lua, epics/start.json (one epic of
two issues), script.lua (an offline scripted model), and workspace/ (a git repository on
branch main; docs/git.md), imports the epic, and prints the command that runs it. Refuses to touch a directory that already holds a project
(orket.lua, epics/start.json, script.lua or .orket/), naming the file. All or nothing: when
a step fails (e.g. a broken file already in DIR/epics/), what init created is removed again
and files that were there before are left as they were.

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
(docs/sandbox.md, *CI that deploys*).]]

-- The forges init writes a workflow for: where the workflow goes, the web address of a
-- repository's server, and its workflow badge.
local FORGES = {
  github = { dir = ".github/workflows", url = "https://github.com", api = "https://api.github.com",
    badge = "[![orket](%s/%s/actions/workflows/orket.yml/badge.svg)](%s/%s/actions/workflows/orket.yml)" },
  gitea = { dir = ".gitea/workflows", url = "https://gitea.example", api = nil,
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
-- leave what was there before untouched.
local function undo_list()
  local made = {}
  function made.undo()
    for i = #made, 1, -1 do
      local m = made[i]
      if m.dir then uv.fs_rmdir(m.path) else os.remove(m.path) end
    end
  end
  return made
end

local function mkdir_p(path, made)
  local acc = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    acc = acc .. "/" .. part
    local st = uv.fs_stat(acc)
    if not st then
      local ok, err = uv.fs_mkdir(acc, 493)
      if not ok then return nil, err end
      made[#made + 1] = { path = acc, dir = true }
    elseif st.type ~= "directory" then
      return nil, acc .. " is not a directory"
    end
  end
  return true
end

-- Writes the project; nil, msg on the first failure (the caller undoes what was made).
-- files: the paths under dir to write from texts, in order.
local function create(dir, texts, made, files)
  local dirs = { dir, dir .. "/epics", dir .. "/workspace" }
  for _, f in ipairs(files) do
    local sub = f:match("^(.*)/[^/]+$")
    if sub then dirs[#dirs + 1] = dir .. "/" .. sub end
  end
  for _, d in ipairs(dirs) do
    local ok, err = mkdir_p(d, made)
    if not ok then return nil, string.format("cannot create %s: %s", d, tostring(err)) end
  end
  for _, f in ipairs(files) do
    local path = dir .. "/" .. f
    local out, err = io.open(path, "wb")
    if not out then return nil, string.format("cannot write %s: %s", path, tostring(err)) end
    made[#made + 1] = { path = path }
    local ok, werr = out:write(texts[f])
    out:close()
    if not ok then return nil, string.format("cannot write %s: %s", path, tostring(werr)) end
  end
  -- the store: .orket/ (checked absent above) and the database with its WAL files
  local orket_dir = dir .. "/.orket"
  made[#made + 1] = { path = orket_dir, dir = true }
  for _, sfx in ipairs { "", "-wal", "-shm" } do made[#made + 1] = { path = project.db_path(dir) .. sfx } end
  local db, oerr = project.open_store(dir, true)
  if not db then return nil, oerr end
  local r, ierr = import.import(db, dir)
  db:close()
  if not r then return nil, ierr end
  -- last, so a failure before leaves no repository behind: workspace/ is a git repository
  -- with main's first commit; each card gets its branch and worktree on its first turn
  -- (docs/git.md)
  local git, gerr = gitwork.open(dir .. "/workspace", dir .. "/.orket/worktrees")
  if not git then return nil, gerr end
  git.repo:close()
  return r
end

-- The options: dir, {forge=, repo=, url=} | nil, exit status (a usage error said).
local function options(args, cli)
  local pos, o = {}, {}
  local VALUES = { ["--forge"] = { "forge", "gitea or github" }, ["--repo"] = { "repo", "OWNER/NAME" },
    ["--forge-url"] = { "url", "the forge's URL" } }
  local i = 1
  while i <= #args do
    local a = args[i]
    local v = VALUES[a]
    if v then
      if args[i + 1] == nil then return nil, cli.usage_error(cmd, "%s needs %s", a, v[2]) end
      o[v[1]] = args[i + 1]
      i = i + 1
    elseif a:match("^%-") then
      return nil, cli.usage_error(cmd, "unknown option '%s'", a)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  if #pos > 1 then return nil, cli.usage_error(cmd, "init takes at most one directory") end
  if o.forge and not FORGES[o.forge] then
    return nil, cli.usage_error(cmd, "--forge: unknown forge '%s' (gitea or github)", o.forge)
  end
  if (o.repo or o.url) and not o.forge then
    return nil, cli.usage_error(cmd, "%s needs --forge gitea|github", o.repo and "--repo" or "--forge-url")
  end
  if o.repo and not o.repo:match("^[%w_.%-]+/[%w_.%-]+$") then
    return nil, cli.usage_error(cmd, "--repo: '%s' is not OWNER/NAME", o.repo)
  end
  if o.url then
    if not o.url:match("^https?://[%w_.%-]+[%w_.%-:/]*$") then
      return nil, cli.usage_error(cmd, "--forge-url: '%s' is not an http(s) URL", o.url)
    end
    o.url = o.url:gsub("/+$", "")
  end
  return pos[1] or ".", o
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
  texts[workflow] = files["orket.yml"]:gsub("FORGE", o.forge)
  -- the deploy workflow (docs/sandbox.md, *CI that deploys*), and for Gitea its runner's config
  local deploy_wf = "workspace/" .. f.dir .. "/deploy.yml"
  texts[deploy_wf] = files["deploy.yml"]:gsub("FORGE", o.forge)
  local extra = { workflow, deploy_wf }
  if o.forge == "gitea" then
    texts["act_runner.yaml"] = files["act_runner.yaml"]
    extra[#extra + 1] = "act_runner.yaml"
  end
  texts["workspace/checks.sh"] = files["checks.sh"]
  texts["workspace/README.md"] = files["README.md"]:gsub("PROJECT", lit(name), 1):gsub("BADGE", lit(badge), 1)
    :gsub("WORKFLOW", lit(f.dir .. "/orket.yml"), 1)
  -- the offline model's README keeps the badge (its text is a Lua string in script.lua)
  local n
  texts["script.lua"], n = texts["script.lua"]:gsub('"# Project\\n\\n', lit('"# Project\\n\\n' .. badge .. '\\n\\n'), 1)
  if n ~= 1 then return nil, "the project template script.lua has no README text for the badge" end
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

function cmd.run(args, cli)
  local dir, o = options(args, cli)
  if not dir then return o end
  for _, f in ipairs { "orket.lua", "epics/start.json", "script.lua", ".orket" } do
    if uv.fs_stat(dir .. "/" .. f) then
      cli.err("%s/%s already exists: %s already holds a project; nothing was changed", dir, f, dir)
      return 1
    end
  end
  local home = rt.home()
  local texts = {}
  for _, f in ipairs(FILES) do
    local text, err = read(home .. "/templates/project/" .. f)
    if not text then
      cli.err("cannot read the project template %s: %s", f, tostring(err))
      return 1
    end
    texts[f] = text
  end
  local name = uv.fs_realpath(".") or "project"
  if dir ~= "." then name = dir end
  name = name:match("([^/]+)/*$") or "project"
  -- a function, not a string: '%' in the name is not a capture reference
  texts["orket.lua"] = texts["orket.lua"]:gsub('"PROJECT"', function() return string.format("%q", name) end, 1)
  local files = { table.unpack(FILES) }
  if o.forge then
    local extra, ferr = forge_texts(home, texts, o, name)
    if not extra then
      cli.err("%s", ferr)
      return 1
    end
    for _, f in ipairs(extra) do
      -- a repository already in workspace/ keeps its own files: nothing is overwritten
      if uv.fs_stat(dir .. "/" .. f) then
        cli.err("%s/%s already exists; nothing was changed", dir, f)
        return 1
      end
      files[#files + 1] = f
    end
  end
  local made = undo_list()
  local r, err = create(dir, texts, made, files)
  if not r then
    made.undo()
    cli.err("%s; init removed what it had created in %s, so it can be run again", err, dir)
    return 1
  end
  local cd = dir == "." and "" or ("cd " .. shell_quote(dir) .. " && ")
  io.stdout:write(string.format("created a project in %s: orket.lua, epics/start.json (epic START, %d issues), "
    .. "script.lua (offline model), workspace/ (git)\n", dir, r.cards - 1))
  if o.forge then
    io.stdout:write(string.format("forge %s: workspace/%s/orket.yml runs workspace/checks.sh on pull requests and "
      .. "reports to Orket (secrets ORKET_URL, ORKET_API_KEY); README.md has its badge; orket.lua's git section "
      .. "is to fill in (docs/git.md)\n", o.forge, FORGES[o.forge].dir))
    io.stdout:write(string.format("deploy: workspace/%s/deploy.yml deploys the sandbox of main on each push to main "
      .. "and reports it as the commit status orket/deploy%s (docs/sandbox.md)\n", FORGES[o.forge].dir,
      o.forge == "gitea" and "; act_runner.yaml configures a Gitea runner for both" or ""))
  end
  -- the binary as run (an absolute path unless `orket` on PATH is this one): the line works
  -- as printed, in a shell where orket is not installed
  io.stdout:write("next: " .. cd .. cli.program() .. " run START\n")
  return 0
end

return cmd
