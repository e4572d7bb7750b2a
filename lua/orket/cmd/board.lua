-- orket board [EPIC] [--json]: the board as a tree (rock > epic > issue) with status,
-- seat and priority; --json prints the documented format (docs/store.md).
local board_mod = require "orket.board"
local view = require "orket.views.board"
local inert = require "orket.inert"
local uv = require "luv"

local USAGE = "orket board [EPIC|ROCK] [--json] [-C DIR]"
local cmd = { summary = "show the board as a tree", usage = USAGE }
cmd.help = [[
Shows rocks, their epics and the epics' issues with status, priority and seat. EPIC (or a
rock id) limits the tree to it. --json prints every card as data instead (docs/store.md).
Colour is used only on a terminal and never when NO_COLOR is set.]]

local COLORS = {
  done = "32", in_progress = "33", code_review = "36", ready_for_testing = "36",
  blocked = "31", waiting_for_developer = "35", canceled = "90", archived = "90",
}

local function color_on()
  local nc = os.getenv("NO_COLOR")
  if nc ~= nil and nc ~= "" then return false end
  return uv.guess_handle(1) == "tty"
end

local function pname(p)
  if p >= 3 then return "high" elseif p >= 2 then return "medium" elseif p >= 1 then return "low" end
  return "none"
end
cmd.priority_name = pname

-- parse(args, cli[, one]) -> options | nil, status; `one` names what a second id is refused as.
local function parse(args, cli, one)
  local o = { dir = "." }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--json" then o.json = true
    elseif a == "-C" then
      i = i + 1
      o.dir = args[i]
      if not o.dir then return nil, cli.usage_error(cmd, "-C needs a directory") end
    elseif a:match("^%-") then return nil, cli.usage_error(cmd, "unknown option '%s'", a)
    elseif o.id then return nil, cli.usage_error(cmd, "%s", one or "give at most one epic or rock")
    else o.id = a end
    i = i + 1
  end
  return o
end
cmd.parse = parse

function cmd.run(args, cli)
  local o, status = parse(args, cli)
  if not o then return status end
  local db = cli.open_store(o.dir, false, true)
  if not db then return 1 end
  local b = board_mod.open(db)
  if o.json then
    local text, jerr = view.json(b, o.id)
    db:close()
    if not text then
      cli.err("%s", jerr)
      return 1
    end
    io.stdout:write(text, "\n")
    return 0
  end
  local cards, gerr = view.gather(b, o.id)
  db:close()
  if not cards then
    cli.err("%s", gerr)
    return 1
  end
  local ordered = view.tree(cards)
  if #ordered == 0 then
    io.stdout:write("the board is empty; put epics in epics/ and run 'orket import'\n")
    return 0
  end
  local color = color_on()
  local function paint(code, s) return color and code and ("\27[" .. code .. "m" .. s .. "\27[0m") or s end
  local out, rows = {}, {}
  -- columns as wide as their widest cell (at least the usual width), so a long id, a
  -- status with its wait reason or a long seat name does not push the row out of line
  local w_label, w_status, w_seat = 36, 22, 18
  for _, e in ipairs(ordered) do
    local c = e.card
    -- cards agents filed carry their text: each cell inert and on its row (the colour
    -- codes are ours, added after)
    local id = inert.line(c.id)
    local r = {
      label = string.rep("  ", e.depth) .. (c.type == "issue" and id or (c.type:upper() .. " " .. id)),
      status = inert.line(c.status .. (c.wait_reason and ("(" .. c.wait_reason .. ")") or "")),
      seat = inert.line(c.seat or "-"),
    }
    w_label, w_status, w_seat = math.max(w_label, #r.label), math.max(w_status, #r.status), math.max(w_seat, #r.seat)
    rows[e] = r
  end
  for _, e in ipairs(ordered) do
    local c, r = e.card, rows[e]
    local title = c.summary or c.name or ""
    if c.type ~= "issue" and c.name and c.name ~= "" then title = c.name end
    local line = string.format("%-" .. w_label .. "s %s %-8s %-" .. w_seat .. "s %s", r.label,
      paint(COLORS[c.status], string.format("%-" .. w_status .. "s", r.status)), pname(c.priority), r.seat,
      inert.line(title))
    if c.type ~= "issue" and color then line = "\27[1m" .. line .. "\27[0m" end
    out[#out + 1] = line:gsub("%s+$", "")
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
  return 0
end

return cmd
