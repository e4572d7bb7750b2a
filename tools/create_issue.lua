-- create_issue: a new issue in the current card's epic; the engine schedules it.
return {
  name = "create_issue",
  description = "Create a new issue in the same epic as yours (for work you found that is out of your issue's scope).",
  effect = "board",
  parameters = {
    type = "object",
    properties = {
      summary = { type = "string", minLength = 1, maxLength = 200 },
      description = { type = "string", maxLength = 20000 },
      seat = { type = "string", maxLength = 64 },
      priority = { type = "number", minimum = 1, maximum = 3 },
      depends_on = { type = "array", maxItems = 32, items = { type = "string", maxLength = 128 } },
      requirements = { type = "string", maxLength = 20000 },
      acceptance = { type = "string", maxLength = 20000 },
    },
    required = { "summary" },
  },
  handler = function(args, ctx)
    local parent = ctx.card.type == "epic" and ctx.card.id or ctx.card.parent
    if not parent then return nil, "create_issue: your card has no epic to add the issue to", "EINVAL" end
    -- the board view files it under that epic whatever the arguments say, and refuses a
    -- seat that is not the team's
    local card, err, code = ctx.board:create {
      summary = args.summary, description = args.description, seat = args.seat,
      priority = args.priority, depends_on = args.depends_on, requirements = args.requirements,
      acceptance = args.acceptance,
    }
    if not card then return nil, err, code end
    return { id = card.id, status = card.status, parent = parent }
  end,
}
