-- orket status: where main's view (workspace/) holds your version of a file rather than
-- main's, with both versions and the commands that settle each (orket.views.status).
local jsonout = require "orket.jsonout"
local inert = require "orket.inert"
local status_view = require "orket.views.status"

-- (not every difference from main: a person's edit where no merge changed the path is git's
-- to show, docs/git.md)
local cmd = { summary = "show paths main's merges changed where workspace/ keeps yours, and if it is behind main",
  usage = "orket status [--json] [-C DIR]" }

local function side(s)
  if s.kind == "none" then return "nothing" end
  local t = s.kind
  if s.id then t = t .. " " .. s.id:sub(1, 12) end
  if s.size then t = t .. string.format(" (%d bytes)", s.size) end
  if s.at then t = t .. " at " .. s.at .. ", in the way" end
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

function cmd.run(args, cli)
  local json = false
  local dir, pos = cli.words(cmd, args, { ["--json"] = function() json = true end }, "no text is taken")
  if not dir then return pos end
  if #pos > 0 then return cli.usage_error(cmd, "unknown argument '%s'", pos[1]) end
  local doc, err, code = status_view.of_project(dir)
  if not doc then return cli.fail(code, "%s", err) or 1 end
  if json then
    io.stdout:write(jsonout.encode(doc), "\n")
    return 0
  end
  local out = { string.format("main is at %s\n", doc.main:sub(1, 12)) }
  if doc.behind and doc.behind.waits then
    out[#out + 1] = inert.line(doc.behind.reason .. "; " .. doc.behind.catch_up) .. "\n"
  elseif doc.behind then
    out[#out + 1] = inert.line(status_view.behind_line(doc.behind.reason)) .. "\n"
  end
  if doc.behind and doc.behind.waits then -- nothing listed: said above
  elseif #doc.diverged == 0 and doc.behind then
    out[#out + 1] = "nothing of yours is recorded where main changed before that\n"
  elseif #doc.diverged == 0 then
    out[#out + 1] = "workspace/ shows main: nothing of yours differs from it where main changed\n"
  else
    out[#out + 1] = string.format("workspace/ keeps your version where main has another (%d path%s); "
      .. "runs carry on either way:\n", #doc.diverged, #doc.diverged == 1 and "" or "s")
  end
  for _, d in ipairs(doc.diverged) do
    out[#out + 1] = string.format("\n  %s\n    main has:     %s\n    yours:        %s\n    take main's:  %s\n"
      .. "    keep yours:   %s\n", inert.line(d.path), side(d.main), side(d.view), line(cli, d.take_main),
      line(cli, d.keep_view))
  end
  io.stdout:write(table.concat(out))
  return 0
end

return cmd
