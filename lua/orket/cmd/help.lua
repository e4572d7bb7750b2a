-- orket help [COMMAND]: the list of commands, or one command's usage (orket.cli.help_text,
-- which `orket COMMAND --help` prints too).
local help
help = {
  summary = "show commands, or one command's usage",
  usage = "orket help [COMMAND]",
  run = function(args, cli)
    if #args == 0 then
      cli.usage(io.stdout)
      return 0
    end
    if #args > 1 then return cli.usage_error(help, "help takes at most one command") end
    local cmd = cli.load_command(args[1])
    if not cmd then
      cli.err("unknown command '%s'", args[1])
      cli.usage(io.stderr)
      return cli.EXIT.usage
    end
    io.stdout:write(cli.help_text(args[1]))
    return 0
  end,
}

return help
