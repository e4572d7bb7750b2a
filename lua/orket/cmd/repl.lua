-- orket repl: an interactive Lua prompt inside the runtime, with `orket` at hand.
return {
  summary = "interactive prompt with the runtime loaded",
  usage = "orket repl",
  help = "Expressions print their values; statements run. Incomplete input continues on\n" ..
      "the next line (>>). Ctrl-C interrupts a running chunk, Ctrl-D exits.\n" ..
      "History is kept in $ORKET_HISTORY (default ~/.orket_history; empty disables).",
  run = function(args, cli)
    if #args > 0 then return cli.usage_error(require "orket.cmd.repl", "repl takes no arguments") end
    _G.orket = require "orket"
    _G.llm = require "orket.llm" -- llm.chat{messages = {...}} streams to the prompt
    return require("orket.repl").run()
  end,
}
