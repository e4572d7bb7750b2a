-- add_issue_comment: a comment on the current card, signed by the acting seat.
return {
  name = "add_issue_comment",
  description = "Add a comment to your issue (progress, findings, hand-over notes).",
  effect = "board",
  parameters = {
    type = "object",
    properties = { body = { type = "string", minLength = 1, maxLength = 20000 } },
    required = { "body" },
  },
  handler = function(args, ctx)
    local c, err, code = ctx.board:comment(args.body)
    if not c then return nil, err, code end
    return { comment = c }
  end,
}
