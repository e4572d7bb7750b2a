-- sandbox_status: the state, health and last log lines of the project's live sandbox (main's
-- tree running as a service, docs/sandbox.md). The handler only asks; the engine reads the
-- sandbox (effect "sandbox", docs/tools.md).
return {
  name = "sandbox_status",
  description = "See the project's live sandbox: main's tree running as a service after merges. Gives its "
    .. "state (starting, healthy, unhealthy), its health detail, the commit it runs and the last lines of "
    .. "its log (stdout and stderr of the app). Use it to see whether what was merged runs.",
  effect = "sandbox",
  idempotent = true, -- it only reads
  parameters = {
    type = "object",
    properties = {
      lines = { type = "integer", minimum = 1, maximum = 200 },
    },
  },
  handler = function(args)
    return { op = "status", lines = args.lines }
  end,
}
