-- remember: a note in the project memory, found later with recall.
return {
  name = "remember",
  description = "Store a short fact in the project memory for later turns (decisions, conventions, gotchas).",
  effect = "board",
  parameters = {
    type = "object",
    properties = {
      text = { type = "string", minLength = 1, maxLength = 4000 },
      -- one word each: the store keeps them space-joined (the handler refuses whitespace,
      -- naming tags[i]; the schema has no pattern keyword to say it first)
      tags = { type = "array", maxItems = 10,
        items = { type = "string", minLength = 1, maxLength = 40, description = "one word, no spaces" } },
    },
    required = { "text" },
  },
  handler = function(args, ctx)
    local e, err, code = ctx.memory:remember { text = args.text, tags = args.tags or {} }
    if not e then return nil, err, code end
    return { id = e.id, remembered = true }
  end,
}
