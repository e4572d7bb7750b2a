-- orket import [DIR]: loads DIR/epics/ into DIR/.orket/orket.db (see docs/board.md).
local import = require "orket.import"
local project = require "orket.project"
local uv = require "luv"

local cmd = { name = "import", summary = "load a project's epics/ into its board",
  args = require("orket.cmdline").dir_args("import") }
cmd.help = [[
Reads DIR/epics/*.json and *.lua (and one level of department folders), checks every file,
then writes all cards in one transaction to DIR/.orket/orket.db. Re-importing updates
definitions and keeps status, comments and history. DIR defaults to the current directory.]]

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
  local fresh = not uv.fs_stat(project.db_path(dir))
  local db = cli.open_store(dir, true)
  if not db then return 1 end
  local r, ierr = import.import(db, dir)
  db:close()
  if not r then
    if fresh then -- the first import failed: leave no empty store behind
      for _, sfx in ipairs { "", "-wal", "-shm" } do os.remove(project.db_path(dir) .. sfx) end
    end
    cli.err("%s", ierr)
    return 1
  end
  for _, w in ipairs(r.warnings or {}) do cli.err("warning: %s", w) end
  io.stdout:write(string.format("imported %d cards from %d files: %d new, %d updated, %d unchanged\n",
    r.cards, r.files, r.created, r.updated, r.unchanged))
  return 0
end

return cmd
