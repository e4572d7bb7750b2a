-- request_input: asks the developer a question; the card waits for them (reason "input").
return {
  name = "request_input",
  description = "Ask the developer a question you cannot answer yourself. Your issue waits until they reply.",
  effect = "board",
  status = "waiting_for_developer",
  wait_reason = "input",
  parameters = {
    type = "object",
    properties = { question = { type = "string", minLength = 1, maxLength = 4000 } },
    required = { "question" },
  },
  handler = function(args, ctx)
    local card, err, code = ctx.board:transition("waiting_for_developer", { reason = "input", note = args.question })
    if not card then return nil, err, code end
    -- the question is a comment too: the developer reads it with the card (orket card, the
    -- stall report), and the brief of the turn after the answer shows both, in order
    local c, cerr, ccode = ctx.board:comment("Question: " .. args.question)
    if not c then return nil, cerr, ccode end
    return { id = card.id, status = card.status, question = args.question }
  end,
}
