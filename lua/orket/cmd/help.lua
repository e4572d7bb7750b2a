-- orket help [COMMAND]: the list of commands, or one command's usage (orket.cli.help_text,
-- which `orket COMMAND --help` prints too).
local help
help = {
  name = "help",
  summary = "show commands, or one command's usage",
  args = { extra = "help takes at most one command", { "COMMAND", optional = true } },
  run = function(args, cli)
    local o, st = cli.parse(help, args)
    if not o then return st end
    if not o.command then
      cli.usage(io.stdout)
      return 0
    end
    local cmd = cli.load_command(o.command)
    if not cmd then return cli.unknown_command(o.command) end
    io.stdout:write(cli.help_text(o.command))
    return 0
  end,
}

return help
