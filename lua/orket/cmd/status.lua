-- orket status: where main's view (workspace/) holds your version of a file rather than
-- main's, with both versions and the commands that settle each (orket.views.status).
local uv = require "luv"
local jsonout = require "orket.jsonout"
local inert = require "orket.inert"
local status_view = require "orket.views.status"
local config = require "orket.config"

-- (not every difference from main: a person's edit where no merge changed the path is git's
-- to show, docs/git.md)
local cmd = { summary = "show paths main's merges changed where workspace/ keeps yours, and if it is behind main",
  usage = "orket status [--json] [-C DIR]" }
cmd.help = [[
Prints the commit main is at; with git.remote, main against the remote's main as Orket last
fetched or pushed it (the same, ahead: not pushed yet, behind, or diverged: with the
commands that merge them; nothing is fetched); whether workspace/ (main's view) is behind
main and why, and each path where a merge of main changed a file that workspace/ keeps your
version of: what main has, what you have, and the commands that take main's or keep yours.
Runs carry on either way (docs/git.md). From inside a project's folder (workspace/, epics/...) it reports
that project. Exits 0 when it could tell (whatever it found), 1 when it could not: no
project, no workspace/ yet (no run is recorded: the first 'orket run' makes it), or
workspace/ missing or not a repository; 2 on a wrong argument.

  --json  the same as data (orket.status/1), as GET /v1/status answers
  -C DIR  the project's directory (default: the current one)]]

-- a path as shown: as it is, or, where the shell would need it quoted, as its commands
-- quote it, so that a newline in a name, a backslash and an n, and a name written like
-- $'...' all differ
local function shown(cli, path)
  local q = cli.shell_quote(path)
  return q == path and path or q
end

local function side(cli, s)
  if s.kind == "none" then return "nothing" end
  local t = s.kind
  if s.id then t = t .. " " .. s.id:sub(1, 12) end
  if s.size then t = t .. string.format(" (%d bytes)", s.size) end
  if s.at then t = t .. " at " .. shown(cli, s.at) .. ", in the way" end
  return t
end

local function line(cli, list)
  local out = {}
  for i, argv in ipairs(list) do
    local words = {}
    for j, w in ipairs(argv) do words[j] = cli.shell_quote(w) end
    out[i] = table.concat(words, " ")
  end
  return inert.line(table.concat(out, " && "))
end

-- The project a person asks from: DIR, or, from inside one of a project's own folders
-- (workspace/, epics/, ...) with no -C, that project (orket.config.holding).
local function project_of(dir)
  if dir ~= "." then return dir end
  return config.holding(".") or dir
end

-- Why main's view is behind main, as a line | "" when it is not
local function behind_text(behind)
  if behind and behind.waits then return inert.line(behind.reason .. "; " .. behind.catch_up) .. "\n" end
  if behind and behind.unfollowed then
    return inert.line("workspace/ is behind main: " .. behind.reason .. "; " .. behind.catch_up) .. "\n"
  end
  if behind then return inert.line(status_view.behind_line(behind.reason)) .. "\n" end
  return ""
end

-- The commands name workspace/ from the project's folder: where that is, said when it is
-- elsewhere and body holds one (a listed path's, or a git command of the behind, waits or
-- merging line: pasted from workspace/ or from where -C was given, they fail) -> line | ""
local function where_line(doc, body, cli)
  if not doc.dir or doc.dir == uv.fs_realpath(uv.cwd()) then return "" end
  if #doc.diverged == 0 and not body:find("-C workspace", 1, true) then return "" end
  return "(the commands below run in the project's folder: cd " .. cli.shell_quote(doc.dir) .. ")\n"
end

-- main against git.remote's main as Orket last fetched or pushed it (views.status.remote_of),
-- a paragraph | "": each line made inert, each command quoted as the paths' are
local function remote_text(r, cli)
  if not r then return "" end
  local url, at = r.url, r.main and r.main:sub(1, 12)
  local out
  if r.state == "same" then
    out = { string.format("the remote's main (%s) is main, as Orket last fetched or pushed it", url) }
  elseif r.state == "ahead" then
    out = { string.format("main is ahead of the remote's main as Orket last fetched or pushed it (%s, at %s): not "
      .. "pushed yet; the next merge or 'orket run' pushes it ('orket log' says why a push failed)", url, at) }
  elseif r.state == "behind" then
    out = { string.format("the remote's main (%s, at %s as Orket last fetched it) is ahead of main: the next merge "
      .. "or 'orket run' merges it into main and pushes main", url, at) }
  elseif r.state == "diverged" then
    out = { string.format("main and the remote's main (%s, at %s as Orket last fetched it) have diverged: main is "
      .. "not pushed until a person merges them:", url, at),
      "  " .. line(cli, { r.commands[1] }),
      "  (resolve the conflicts it leaves: edit the files, then git -C workspace add them)",
      "  " .. line(cli, { r.commands[2] }),
      "  then any run ('orket run EPIC', 'orket resume') pushes main" }
  else
    out = { string.format("the remote's main (%s) is not known yet (nothing fetched or pushed): the next 'orket run' "
      .. "pushes main", url) }
  end
  if r.dropped then
    out[#out + 1] = string.format("the remote's main had moved back past commits main holds (it was at %s): the "
      .. "next push of main puts them back", r.dropped:sub(1, 12))
  end
  for i, l in ipairs(out) do out[i] = inert.line(l) end
  return table.concat(out, "\n") .. "\n"
end

-- The status as a person reads it -> text
local function shown_text(doc, cli)
  local out = { behind_text(doc.behind) }
  if doc.behind and doc.behind.waits then -- nothing listed: said above
  elseif #doc.diverged == 0 and doc.behind then
    out[#out + 1] = "nothing of yours is recorded where main changed before that\n"
  elseif #doc.diverged == 0 then
    out[#out + 1] = "workspace/ shows main: nothing of yours differs from it where main changed\n"
  else
    out[#out + 1] = string.format("workspace/ keeps your version where main has another (%d path%s); "
      .. "runs carry on either way:\n", #doc.diverged, #doc.diverged == 1 and "" or "s")
  end
  if doc.merging then out[#out + 1] = doc.merging .. "\n" end
  if doc.lost then out[#out + 1] = doc.lost.message .. "\n" end
  if doc.moved then
    -- where the move was made (workspace/, another clone, a push) is not known, and the
    -- listed paths may include others than the move's (a person's edit since)
    out[#out + 1] = string.format("main was moved by someone other than Orket (a reset, amend, rebase or commit on "
      .. "another base) from %s to %s: where Orket's merges since changed what that move changed, workspace/ keeps "
      .. "what it had; those paths are among the ones listed below\n"
      .. "  take main's for every listed path:  %s\n  keep yours for every listed path:   %s\n",
      doc.moved.from:sub(1, 12), doc.moved.to:sub(1, 12), line(cli, doc.moved.take_main), line(cli, doc.moved.keep_view))
  end
  for _, d in ipairs(doc.diverged) do
    out[#out + 1] = string.format("\n  %s\n    main has:     %s\n    yours:        %s\n    take main's:  %s\n"
      .. "    keep yours:   %s\n", shown(cli, d.path), side(cli, d.main), side(cli, d.view), line(cli, d.take_main),
      #d.keep_view > 0 and line(cli, d.keep_view) or "(none: git commits no FIFO, socket or device)")
    if d.keep_warning then out[#out + 1] = "                  (" .. d.keep_warning .. ")\n" end
  end
  local body = remote_text(doc.remote, cli) .. table.concat(out)
  return string.format("main is at %s\n", doc.main:sub(1, 12)) .. where_line(doc, body, cli) .. body
end

-- Whether dir holds nothing of a project (no orket.lua, .orket/ or workspace/): said as
-- every command says it, not as a git repository missing at DIR/./workspace. A project
-- whose workspace/ lost its repository is told what makes one (orket.status_view).
--- nothing_at(dir) -> the error code when dir holds none of a project's files (ENOENT, or
--- ENOTDIR / ENAMETOOLONG for a folder that cannot be one), else nil
local function nothing_at(dir)
  local ok, _, code = uv.fs_stat(dir .. "/orket.lua")
  if ok or uv.fs_stat(dir .. "/.orket") or uv.fs_stat(dir .. "/workspace") then return nil end
  return code or "ENOENT"
end

-- ran(dir) -> a function telling whether the store records a run: false when it records
-- none; nil when there is no store (removed with .orket/, it may have recorded some) or it
-- cannot be read: workspace/ is then taken for one a run made, and removed since
local function ran(dir)
  return function()
    local db = require("orket.project").open_store(dir, false, true) -- lazy: only for a missing workspace/
    if not db then return nil end
    local ok, any = pcall(require("orket.store.runs").any, db) -- lazy: as the store
    db:close()
    if ok then return any end
  end
end

function cmd.run(args, cli)
  local json = false
  local dir, pos = cli.words(cmd, args, { ["--json"] = function() json = true end }, "no text is taken")
  if not dir then return pos end
  if #pos > 0 then return cli.usage_error(cmd, "unknown argument '%s'", pos[1]) end
  dir = project_of(dir)
  local missing = nothing_at(dir)
  if missing then
    cli.err("%s", config.not_a_project(dir, missing))
    return 1
  end
  local gone, gcode = config.workspace_gone(dir, ran(dir))
  if gone then return cli.fail(gcode, "%s", gone) or 1 end
  local doc, err, code = status_view.of_project(dir)
  if not doc then return cli.fail(code, "%s", err) or 1 end
  if json then
    io.stdout:write(jsonout.encode(status_view.as_json(doc)), "\n")
    return 0
  end
  io.stdout:write(shown_text(doc, cli))
  return 0
end

return cmd
