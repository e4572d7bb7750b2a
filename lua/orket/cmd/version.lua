-- orket version: prints the version of Orket and of the libraries it runs on.
local rt = require "orket.c.runtime"

local version
version = {
  summary = "print the version",
  usage = "orket version",
  run = function(args, cli)
    if #args > 0 then return cli.usage_error(version, "version takes no arguments") end
    io.stdout:write("orket ", rt.version(), " (", _VERSION, ")\n")
    return 0
  end,
}

return version
