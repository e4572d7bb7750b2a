-- orket board [EPIC] [--json]: the board as a tree (rock > epic > issue) with status,
-- seat and priority; --json prints the documented format (docs/store.md).
local board_mod = require "orket.board"
local view = require "orket.views.board"
local inert = require "orket.inert"
local liveview = require "orket.terminal.liveview" -- (its colour rules: a terminal, TERM, NO_COLOR)
local cmdline = require "orket.cmdline"
local config = require "orket.config"

local cmd = { name = "board", summary = "show the board as a tree", args = {
  extra = "give at most one epic or rock",
  { "EPIC|ROCK", optional = true, key = "id" },
  { "--json", help = "print every card as data (docs/store.md)" },
  cmdline.DIR,
} }
cmd.help = [[
Shows rocks, their epics and the epics' issues with status, priority and seat. EPIC (or a
rock id) limits the tree to it. --json prints every card as data instead (docs/store.md).
Colour is used only on a terminal that is not dumb (TERM unset, empty or dumb) and never when NO_COLOR is set.]]

local COLORS = {
  done = "32", in_progress = "33", code_review = "36", ready_for_testing = "36",
  blocked = "31", waiting_for_developer = "35", canceled = "90", archived = "90",
}

local function color_on() return liveview.color_on(1) end

local function pname(p)
  if p >= 3 then return "high" elseif p >= 2 then return "medium" elseif p >= 1 then return "low" end
  return "none"
end
cmd.priority_name = pname

-- The board as one JSON document -> exit status.
local function print_json(b, id, cli)
  local text, jerr = view.json(b, id)
  if not text then
    cli.err("%s", jerr)
    return 1
  end
  io.stdout:write(text, "\n")
  return 0
end

-- Each card's cells, inert: cards agents filed carry their text (the colour codes are ours,
-- added after) -> rows (entry -> cells), and the widths of the columns: as wide as their
-- widest cell (at least the usual width), so a long id, a status with its wait reason or a
-- long seat name does not push the row out of line.
local function cells(ordered)
  local rows, w = {}, { label = 36, status = 22, seat = 18 }
  for _, e in ipairs(ordered) do
    local c = e.card
    local id = inert.line(c.id)
    local r = {
      label = string.rep("  ", e.depth) .. (c.type == "issue" and id or (c.type:upper() .. " " .. id)),
      status = inert.line(c.status .. (c.wait_reason and ("(" .. c.wait_reason .. ")") or "")),
      seat = inert.line(c.seat or "-"),
    }
    for k in pairs(w) do w[k] = math.max(w[k], #r[k]) end
    rows[e] = r
  end
  return rows, w
end

-- s left-aligned in a column w bytes wide: by hand, since string.format takes widths of at
-- most 99 and ids (up to 100) plus their indent, or seat names, can be wider.
local function pad(s, w) return s .. string.rep(" ", w - #s) end

-- The tree's lines, coloured on a terminal.
local function tree_lines(ordered)
  local color = color_on()
  local function paint(code, s) return color and code and ("\27[" .. code .. "m" .. s .. "\27[0m") or s end
  local rows, w = cells(ordered)
  local out = {}
  for _, e in ipairs(ordered) do
    local c, r = e.card, rows[e]
    local title = c.summary or c.name or ""
    if c.type ~= "issue" and c.name and c.name ~= "" then title = c.name end
    local line = table.concat({ pad(r.label, w.label), paint(COLORS[c.status], pad(r.status, w.status)),
      pad(pname(c.priority), 8), pad(r.seat, w.seat), inert.line(title) }, " ")
    if c.type ~= "issue" and color then line = "\27[1m" .. line .. "\27[0m" end
    out[#out + 1] = line:gsub("%s+$", "")
  end
  return out
end

function cmd.run(args, cli)
  local o, status = cli.parse(cmd, args)
  if not o then return status end
  local db = cli.open_store(o.dir, false, true, true)
  if not db then return 1 end
  local b = board_mod.open(db)
  if o.json then
    local st = print_json(b, o.id, cli)
    db:close()
    return st
  end
  local cards, gerr = view.gather(b, o.id)
  db:close()
  if not cards then
    cli.err("%s", gerr)
    return 1
  end
  local ordered = view.tree(cards)
  if #ordered == 0 then
    io.stdout:write(string.format("the board is empty; put epics in %s and run %s\n",
      o.dir == "." and "epics/" or (o.dir:gsub("/+$", "") .. "/epics/"), config.command("import", o.dir)))
    return 0
  end
  io.stdout:write(table.concat(tree_lines(ordered), "\n"), "\n")
  return 0
end

return cmd
