-- run_tests: runs the project's test command in the card's workspace, confined: the issue's
-- acceptance checks (its verification) or orket.lua's verify.command (docs/verify.md), the
-- same the engine runs when the card is handed in. The engine runs them (effect "process").
return {
  name = "run_tests",
  description = "Run the project's tests for your issue (the checks your work must pass before review) "
    .. "and get whether they passed, with each command's exit code and output.",
  effect = "process",
  idempotent = true, -- the tests again after a crash: what the model would ask for
  parameters = { type = "object", properties = {} },
  handler = function(args, ctx)
    if not ctx.tests or #ctx.tests == 0 then
      return nil, "run_tests: this project has no test command for this issue (orket.lua's verify.command or the "
        .. "issue's verification); use run_command", "ENOENT"
    end
    return { steps = ctx.tests }
  end,
}
