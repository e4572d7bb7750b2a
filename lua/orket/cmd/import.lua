-- orket import [DIR]: loads DIR/epics/ into DIR/.orket/orket.db (see docs/board.md).
local import = require "orket.import"
local project = require "orket.project"
local uv = require "luv"
local board_mod = require "orket.board"
local imports = require "orket.store.imports"
local config = require "orket.config"
local settings = require "orket.settings"

local cmd = { name = "import", summary = "load a project's epics/ into its board",
  args = require("orket.cmdline").dir_args("import") }
cmd.help = [[
Reads DIR/epics/*.json and *.lua (and one level of department folders), checks every file,
then writes all cards in one transaction to DIR/.orket/orket.db. Re-importing updates
definitions and keeps status, comments and history. DIR defaults to the current directory.
A card deleted from epics/ is not deleted from the board: the import names the unfinished
ones it had imported, for 'orket cancel CARD "reason"' to end them.
An import during a run is allowed (it takes no run lock): its cards are written in one
transaction and the run takes them up from its next pass; the import names the runs going.]]

-- The unfinished cards an import once brought (they have a source file) that epics/ no
-- longer defines: import deletes no card, so they stay on the board and a run still works
-- them. -> { {id =, type =, under = unfinished cards below it} } of the topmost such cards,
-- by id; a canceled epic or rock takes its unfinished cards along (orket cancel).
local function gone_cards(db, set)
  -- the lean rows the import itself reads; a card's source only for those epics/ lacks:
  -- every card read whole costs several times more on a large board (docs/board.md)
  local rows = imports.cards(db)
  local b, by_id, gone, any = board_mod.open(db), {}, {}, false
  for _, c in ipairs(rows) do
    by_id[c.id] = c
    if not set.by_id[c.id] and not board_mod.FINAL[c.status] then
      local card = b:get(c.id)
      if card and card.source then gone[c.id], any = true, true end
    end
  end
  if not any then return {} end
  local out, at = {}, {}
  for _, c in ipairs(rows) do
    if gone[c.id] and not (c.parent and gone[c.parent]) then
      at[c.id] = { id = c.id, type = c.type, under = 0 }
      out[#out + 1] = at[c.id]
    end
  end
  -- every unfinished card below a listed one, its own or a run's, ends with it
  for _, c in ipairs(rows) do
    if not board_mod.FINAL[c.status] then
      local p = c.parent and by_id[c.parent]
      while p and not at[p.id] do p = p.parent and by_id[p.parent] end
      if p then at[p.id].under = at[p.id].under + 1 end
    end
  end
  table.sort(out, function(x, y) return x.id < y.id end)
  return out
end

-- While a run goes, a cancel is refused (it takes the run lock), and the run works the card
-- still: the command is said for once it has ended.
local function when(busy) return busy and "once the run below has ended (a cancel waits for it), " or "" end

-- gone_cards' list said once, with the command that ends them (busy: a run goes).
local function say_gone(gone, dir, cli, busy)
  local names, parent = {}, false
  for i, g in ipairs(gone) do
    names[i] = g.id .. (g.under > 0 and string.format(" (and the %d unfinished card%s under it)", g.under,
      g.under == 1 and "" or "s") or "")
    parent = parent or g.type ~= "issue"
  end
  local one = #gone == 1
  io.stdout:write(string.format("not in epics/ any more, still on the board (import deletes no card): %s\n"
    .. "  %send %s with: %s cancel %s \"reason\"%s%s, or put %s back in epics/\n", table.concat(names, ", "),
    when(busy), one and "it" or "each", cli.program(), one and gone[1].id or "CARD",
    config.at(dir),
    parent and (one and " (the cards under it end with it)" or " (a rock's or epic's cards end with it)") or "",
    one and "it" or "them"))
end

-- The started epics and rocks the moves left with no children (import.import's emptied):
-- they stay as they are, as a parent with no children does, until a person gives them work
-- or ends them; said with the command, as the cards gone from epics/ are.
local function say_emptied(emptied, dir, cli, busy)
  for _, e in ipairs(emptied) do
    io.stdout:write(string.format("moved cards left %s %s %s with no %s: it stays so; give it %s in epics/, or "
      .. "%send it with: %s cancel %s \"reason\"%s\n", e.type, e.id, e.status, e.type == "rock" and "epics" or "issues",
      e.type == "rock" and "epics" or "issues", when(busy), cli.program(), e.id,
      config.at(dir)))
  end
end

-- The runs going in the project as the import ends (db: its store, still open), one line a
-- run: several workers share one. An import takes no run lock: it is one transaction, and a
-- run rebuilds its order from the import's event on its next pass (docs/engine.md, "Order"),
-- so the import is not refused; said, so that a person who moved cards under a run knows it
-- works from them now. -> the lines
local function runs_going(dir, db)
  -- lazy: only the import's end asks; a lock nobody holds (a dead process's) is no run
  local live = require("orket.engine.claims").going(dir, db)
  local by, order = {}, {}
  for _, r in ipairs(live) do
    local g = by[r.id]
    if not g then
      g = { pids = {}, others = {}, seen = {} }
      by[r.id] = g
      order[#order + 1] = r.id
    end
    -- (a lock just taken may show no pid yet: that holder is not named)
    local pid = type(r.pid) == "number" and math.tointeger(r.pid) or r.pid
    if pid ~= nil and not g.seen[pid] then
      g.seen[pid] = true
      if math.type(pid) == "integer" then g.pids[#g.pids + 1] = pid
      else g.others[#g.others + 1] = r.by == "lease" and ("another folder's process " .. pid) or tostring(pid) end
    end
  end
  table.sort(order)
  local lines = {}
  for _, id in ipairs(order) do
    local g, who = by[id], {}
    table.sort(g.pids)
    if #g.pids > 0 then
      who[1] = (#g.pids == 1 and "process " or "processes ") .. table.concat(g.pids, ", ")
    end
    for _, o in ipairs(g.others) do who[#who + 1] = o end
    lines[#lines + 1] = string.format("run %d is going%s: it takes this import up from its next pass (an epic's "
      .. "or rock's run leaves a card moved out of it to a run of its new parent; an issue's run follows its issue)\n",
      id, #who > 0 and (" (" .. table.concat(who, "; ") .. ")") or "")
  end
  return lines
end

-- forgetting(dir) -> forget(): for a first import that fails, called after the store is
-- closed, removes the empty store it made (and its -wal, -shm) and the .orket/ made for it
-- (only when empty: nothing of another's is lost); of a store there before, nothing.
local function forgetting(dir)
  local path = project.db_path(dir)
  local fresh = not uv.fs_stat(path)
  local home = path:match("^(.*)/[^/]+$")
  local had_home = uv.fs_stat(home) ~= nil
  return function()
    if fresh then
      for _, sfx in ipairs { "", "-wal", "-shm" } do os.remove(path .. sfx) end
    end
    if not had_home then
      os.remove(home .. "/.gitignore") -- (the open's: project.ensure_home)
      uv.fs_rmdir(home)
    end
  end
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local dir = o.dir
  -- Check the files before creating a store, so a typo'd DIR leaves nothing behind.
  local set, lerr = import.load(dir)
  if not set then
    cli.err("%s", lerr)
    return 1
  end
  local forget = forgetting(dir)
  local db = cli.open_store(dir, true)
  if not db then return 1 end
  -- the files as checked: read once, and the warnings below are of what is written
  local r, ierr = import.import(db, dir, set)
  local gone = r and gone_cards(db, set)
  local going = r and runs_going(dir, db)
  db:close()
  if not r then
    forget()
    cli.err("%s", ierr)
    return 1
  end
  for _, w in ipairs(r.warnings or {}) do cli.err("warning: %s", w) end
  -- a seat misspelt in an epic file is worked by another seat, unseen: said as validate
  -- does (when orket.lua cannot be read, its own command says so; the import stands)
  local data = config.read(dir)
  local ok, s = pcall(settings.resolve, data and { team = data.team })
  if data and ok and s and s.team then
    for _, w in ipairs(import.unseated(dir, set, settings.seats(s), s.team)) do cli.err("warning: %s", w) end
  end
  io.stdout:write(string.format("imported %d card%s from %d file%s: %d new, %d updated, %d unchanged\n",
    r.cards, r.cards == 1 and "" or "s", r.files, r.files == 1 and "" or "s", r.created, r.updated, r.unchanged))
  -- an epic a move finished takes no work back: said where the summary is read
  for _, f in ipairs(r.followed or {}) do io.stdout:write("moved cards changed ", f, "\n") end
  if r.emptied then say_emptied(r.emptied, dir, cli, #going > 0) end
  if #gone > 0 then say_gone(gone, dir, cli, #going > 0) end
  for _, l in ipairs(going) do io.stdout:write(l) end
  return 0
end

return cmd
