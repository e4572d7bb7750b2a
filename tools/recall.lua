-- recall: full-text search of the project memory.
return {
  name = "recall",
  description = "Search the project memory for facts stored with remember.",
  effect = "board",
  parameters = {
    type = "object",
    properties = {
      query = { type = "string", minLength = 1, maxLength = 200 },
      limit = { type = "integer", minimum = 1, maximum = 20 },
    },
    required = { "query" },
  },
  handler = function(args, ctx)
    local found, err, code = ctx.memory:recall(args.query, { limit = args.limit or 5 })
    if not found then return nil, err, code end
    local out = {}
    for i, e in ipairs(found) do out[i] = { id = e.id, card = e.card, text = e.text, score = e.score } end
    return { results = out }
  end,
}
