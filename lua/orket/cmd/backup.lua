-- orket backup FILE: the project's store copied into FILE (orket.store.backup) while it keeps
-- serving: SQLite's online backup, or one snapshot of a PostgreSQL database.
local backup = require "orket.store.backup"

local USAGE = "orket backup FILE [-C DIR]"
local cmd = { summary = "copy the project's store into a file, while it runs", usage = USAGE }
cmd.help = [[
Copies the board, its journal, runs, keys' hashes and everything else in the store into
FILE, replaced atomically once the copy is whole and checked. A running 'orket serve',
'orket run' or worker goes on meanwhile. On SQLite FILE is an orket store itself (SQLite's
online backup); on PostgreSQL it is one consistent snapshot of every table as JSON Lines.
Not in it: workspace/ (a git repository: back it up with git) and .orket/keys.pepper
(the secret API keys are checked with; keep it apart, as a secret). 'orket restore FILE'
puts it back. See docs/guide/deploying.md.]]

function cmd.run(args, cli)
  local dir, pos = cli.words(cmd, args, {}, "a file name")
  if not dir then return pos end
  if #pos ~= 1 then return cli.usage_error(cmd, "backup needs one FILE") end
  local db = cli.open_store(dir, false, true)
  if not db then return 1 end
  local info, err, code = backup.backup(db, pos[1])
  db:close()
  if not info then
    cli.fail(code, "backup: %s", err)
    return 1
  end
  io.stdout:write(string.format("backed up %d cards (schema version %d, %s) to %s\n", info.cards, info.version,
    info.format == "pg" and "PostgreSQL export" or "SQLite store", pos[1]))
  return 0
end

return cmd
