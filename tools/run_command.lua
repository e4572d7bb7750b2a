-- run_command: runs one program in the card's workspace, confined like the acceptance
-- checks (docs/verify.md). The handler only checks the argv and asks; the engine runs it
-- (effect "process", docs/tools.md). A program not in orket.lua's verify.commands, and not
-- allowed by a policy, is held for a developer's approval by the gate.
return {
  name = "run_command",
  description = "Run a program in your workspace and get its exit code and output (the start and end "
    .. "of stdout and stderr). argv is the program and its arguments as an array, never a shell line: "
    .. "{\"argv\": [\"make\", \"test\"]}; use [\"sh\", \"-c\", \"...\"] only when you need a shell. No network. "
    .. "Programs the project does not allow wait for a developer's approval.",
  effect = "process",
  -- not re-run after a crash: the program may have changed files (the model is told)
  parameters = {
    type = "object",
    properties = {
      argv = { type = "array", minItems = 1, maxItems = 256,
        items = { type = "string", minLength = 1, maxLength = 4096 } },
      timeout_ms = { type = "integer", minimum = 1, maximum = 3600000 },
    },
    required = { "argv" },
  },
  handler = function(args, ctx)
    for i, a in ipairs(args.argv) do
      if a:find("\0", 1, true) then
        return nil, "run_command: argv[" .. i .. "] contains a NUL byte; each argument must be plain text", "EINVAL"
      end
    end
    return { steps = { { command = args.argv } }, timeout_ms = args.timeout_ms }
  end,
}
