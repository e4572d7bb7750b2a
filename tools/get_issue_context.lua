-- get_issue_context: the card being worked on, its dependencies and its recent history.
return {
  name = "get_issue_context",
  description = "Get the issue you are working on: its fields, the status of what it depends on, and its recent history.",
  effect = "board",
  parameters = { type = "object", properties = {} },
  handler = function(_, ctx)
    local card, err, code = ctx.board:get()
    if not card then return nil, err, code end
    local deps = {}
    for i, id in ipairs(card.depends_on or {}) do
      local d = ctx.board:get(id)
      deps[i] = d and { id = d.id, summary = d.summary, status = d.status } or { id = id, status = "missing" }
    end
    local history = ctx.board:history() or {}
    local recent = {}
    for i = math.max(1, #history - 19), #history do recent[#recent + 1] = history[i] end
    return { card = card, dependencies = deps, history = recent }
  end,
}
