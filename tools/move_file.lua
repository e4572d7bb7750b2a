-- move_file: renames within the workspace; never replaces an existing file.
return {
  name = "move_file",
  description = "Move or rename a file or directory within the workspace. Fails if the destination exists.",
  effect = "write",
  parameters = {
    type = "object",
    properties = {
      from = { type = "string", format = "path", maxLength = 4096 },
      to = { type = "string", format = "path", maxLength = 4096 },
    },
    required = { "from", "to" },
  },
  handler = function(args, ctx)
    local parent = args.to:match("^(.*)/[^/]*$")
    if parent and parent ~= "" then
      local ok, err, code = ctx.fs:mkdir(parent)
      if not ok then return nil, err, code end
    end
    local ok, err, code = ctx.fs:move(args.from, args.to)
    if not ok then return nil, err, code end
    return { from = args.from, to = args.to, moved = true }
  end,
}
