-- update_issue_status: moves the current card through the state machine. blocked and
-- waiting_for_developer need a wait_reason.
return {
  name = "update_issue_status",
  description = "Move your issue to another status. blocked and waiting_for_developer need a wait_reason; note says why.",
  effect = "board",
  parameters = {
    type = "object",
    properties = {
      status = {
        type = "string", format = "status",
        enum = { "ready", "in_progress", "blocked", "waiting_for_developer", "ready_for_testing", "code_review", "done" },
      },
      wait_reason = { type = "string", enum = { "resource", "dependency", "review", "input", "system" } },
      note = { type = "string", maxLength = 4000 },
    },
    required = { "status" },
  },
  handler = function(args, ctx)
    if (args.status == "blocked" or args.status == "waiting_for_developer") and not args.wait_reason then
      return nil, "update_issue_status: " .. args.status .. " needs a wait_reason (resource, dependency, review, input or system)", "EINVAL"
    end
    local card, err, code = ctx.board:transition(args.status, { reason = args.wait_reason, note = args.note })
    if not card then return nil, err, code end
    return { id = card.id, status = card.status, wait_reason = card.wait_reason }
  end,
}
