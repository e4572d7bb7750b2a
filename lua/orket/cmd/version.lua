-- orket version: prints the version of Orket, of the Lua it runs on and of the store
-- schemas it knows; with --check,
-- also asks the forge orket.lua's updates section names whether a newer release is out.
local rt = require "orket.c.runtime"
local cmdline = require "orket.cmdline"
local schema = require "orket.store.schema_versions"

local version
version = {
  name = "version",
  summary = "print the version (--check: is a newer release out?)",
  args = { extra = "version takes no arguments but --check and -C DIR",
    { "--check" }, cmdline.DIR },
  help = [[
--check asks the releases API of the forge that the project's orket.lua names in its
updates section (Gitea or GitHub: updates = { repo = "owner/name", forge =, api_url =,
token_env = }, the forge and its URL defaulting to the git section's) for a newer release
than this one, and says which. Nothing else in Orket asks: the check runs only when this
command is given, never during a run. Exit 1 when the forge cannot be asked.
See docs/guide/deploying.md, "Update checks".]],
  run = function(args, cli)
    local o, st = cli.parse(version, args)
    if not o then return st end
    -- the schemas too: two builds of one release tell apart by them, and a store refused as
    -- "newer than this orket knows (N)" names the same numbers
    io.stdout:write("orket ", rt.version(), " (", _VERSION, "; store schema ", schema.sqlite, ", PostgreSQL schema ",
      schema.pg, ")\n")
    if not o.check then return 0 end
    return version.check(o.dir, cli)
  end,
}

--- check(dir, cli) -> exit status: asks the forge of dir's orket.lua updates section
--- whether a newer release than this one is out, and says which.
function version.check(dir, cli)
  -- lazy: plain `orket version` is the floor of the startup benchmarks, so what only
  -- --check needs loads here
  local config = require "orket.config" -- lazy: as above
  local task = require "orket.task" -- lazy: as above
  local updates = require "orket.updates" -- lazy: as above
  io.stdout:flush()
  local cfg, s = config.settings(dir)
  if not cfg then
    cli.err("%s", cli.in_dir(dir, s))
    return 1
  end
  local u = s.updates
  if not u then
    cli.err("%s/orket.lua has no updates section: say where Orket's releases are, "
      .. "e.g. updates = { forge = \"github\", repo = \"OWNER/orket\" }", dir)
    return 1
  end
  -- the forge is asked over the event loop: in a task, joined here
  local ok, r, err = task.spawn(updates.check, u, rt.version()):join()
  if not ok then r, err = nil, r end
  if not r then
    cli.err("%s", err)
    return 1
  end
  if r.newer then
    io.stdout:write(string.format("a newer release is out: %s%s\n", r.latest.tag, r.latest.url and (" " .. r.latest.url) or ""))
  elseif r.latest then
    io.stdout:write(string.format("up to date: the newest release of %s is %s\n", u.repo, r.latest.tag))
  else
    io.stdout:write(string.format("no release of %s yet\n", u.repo))
  end
  return 0
end

return version
