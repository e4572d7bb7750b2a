-- orket init [DIR]: scaffolds a project that runs at once: orket.lua (models, team,
-- budgets), one epic under epics/, workspace/, and a scripted model (script.lua) so the
-- first run works offline; imports the epic into the board and says what to run next.
-- The files come from templates/project/ under Orket's home.
local uv = require "luv"
local import = require "orket.import"

local cmd = { summary = "create a new project", usage = "orket init [DIR]" }
cmd.help = [[
Creates DIR (default: the current directory) with orket.lua, epics/start.json (one epic of
two issues), script.lua (an offline scripted model), and workspace/, imports the epic, and
prints the command that runs it. Refuses to touch a directory that already holds a project
(orket.lua, epics/start.json, script.lua or .orket/), naming the file.]]

local FILES = { "orket.lua", "epics/start.json", "script.lua" }

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

local function mkdir_p(path)
  local acc = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    acc = acc .. "/" .. part
    local st = uv.fs_stat(acc)
    if not st then
      local ok, err = uv.fs_mkdir(acc, 493)
      if not ok then return nil, err end
    elseif st.type ~= "directory" then
      return nil, acc .. " is not a directory"
    end
  end
  return true
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
  texts["orket.lua"] = texts["orket.lua"]:gsub('"PROJECT"', string.format("%q", name), 1)
  for _, d in ipairs { dir, dir .. "/epics", dir .. "/workspace" } do
    local ok, err = mkdir_p(d)
    if not ok then
      cli.err("cannot create %s: %s", d, tostring(err))
      return 1
    end
  end
  for _, f in ipairs(FILES) do
    local out, err = io.open(dir .. "/" .. f, "wb")
    if not out then
      cli.err("cannot write %s/%s: %s", dir, f, tostring(err))
      return 1
    end
    out:write(texts[f])
    out:close()
  end
  local db = cli.open_store(dir, true)
  if not db then return 1 end
  local r, ierr = import.import(db, dir)
  db:close()
  if not r then
    cli.err("%s", ierr)
    return 1
  end
  local cd = dir == "." and "" or ("cd " .. dir .. " && ")
  io.stdout:write(string.format("created a project in %s: orket.lua, epics/start.json (epic START, %d issues), "
    .. "script.lua (offline model), workspace/\n", dir, r.cards - 1))
  io.stdout:write("next: " .. cd .. "orket run START\n")
  return 0
end

return cmd
