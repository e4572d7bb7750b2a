-- orket init [DIR]: scaffolds a project that runs at once: orket.lua (models, team,
-- budgets), one epic under epics/, workspace/, and a scripted model (script.lua) so the
-- first run works offline; imports the epic into the board and says what to run next.
-- The files come from templates/project/ under Orket's home.
local uv = require "luv"
local import = require "orket.import"
local project = require "orket.project"

local cmd = { summary = "create a new project", usage = "orket init [DIR]" }
cmd.help = [[
Creates DIR (default: the current directory) with orket.lua, epics/start.json (one epic of
two issues), script.lua (an offline scripted model), and workspace/ (a git repository on
branch main; docs/git.md), imports the epic, and prints the command that runs it. Refuses to touch a directory that already holds a project
(orket.lua, epics/start.json, script.lua or .orket/), naming the file. All or nothing: when
a step fails (e.g. a broken file already in DIR/epics/), what init created is removed again
and files that were there before are left as they were.]]

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
local function create(dir, texts, made)
  for _, d in ipairs { dir, dir .. "/epics", dir .. "/workspace" } do
    local ok, err = mkdir_p(d, made)
    if not ok then return nil, string.format("cannot create %s: %s", d, tostring(err)) end
  end
  for _, f in ipairs(FILES) do
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
  local git, gerr = require("orket.engine.gitwork").open(dir .. "/workspace", dir .. "/.orket/worktrees")
  if not git then return nil, gerr end
  git.repo:close()
  return r
end

function cmd.run(args, cli)
  if #args > 1 then return cli.usage_error(cmd, "init takes at most one directory") end
  if args[1] and args[1]:match("^%-") then return cli.usage_error(cmd, "unknown option '%s'", args[1]) end
  local dir = args[1] or "."
  for _, f in ipairs { "orket.lua", "epics/start.json", "script.lua", ".orket" } do
    if uv.fs_stat(dir .. "/" .. f) then
      cli.err("%s/%s already exists: %s already holds a project; nothing was changed", dir, f, dir)
      return 1
    end
  end
  local home = require("orket.c.runtime").home()
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
  local made = undo_list()
  local r, err = create(dir, texts, made)
  if not r then
    made.undo()
    cli.err("%s; init removed what it had created in %s, so it can be run again", err, dir)
    return 1
  end
  local cd = dir == "." and "" or ("cd " .. shell_quote(dir) .. " && ")
  io.stdout:write(string.format("created a project in %s: orket.lua, epics/start.json (epic START, %d issues), "
    .. "script.lua (offline model), workspace/ (git)\n", dir, r.cards - 1))
  -- the binary as run (an absolute path unless `orket` on PATH is this one): the line works
  -- as printed, in a shell where orket is not installed
  io.stdout:write("next: " .. cd .. cli.program() .. " run START\n")
  return 0
end

return cmd
