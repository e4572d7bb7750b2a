-- move_file: renames within the workspace; never replaces an existing file.
return {
  name = "move_file",
  description = "Move or rename a file or directory within the workspace. Fails if the destination exists.",
  effect = "write",
  parameters = {
    type = "object",
    properties = {
      from = { type = "string", format = "path", maxLength = 1023 },
      to = { type = "string", format = "path", maxLength = 1023 },
    },
    required = { "from", "to" },
  },
  handler = function(args, ctx)
    local parent = args.to:match("^(.*)/[^/]*$")
    if parent and parent ~= "" then
      -- tried first: a move that cannot be (into itself) makes no folder on its way to failing
      local ok, err, code = ctx.fs:move(args.from, args.to)
      if ok then return { from = args.from, to = args.to, moved = true } end
      if code == "EINVAL" then return nil, err, code end
      ok, err, code = ctx.fs:mkdir(parent)
      -- the model asked for a move: name it and both ends, not this internal step
      if not ok then
        local why = err:gsub("^workspace: mkdir: ", "")
        return nil, ("workspace: move: %s -> %s: cannot make the destination's folder: %s"):format(args.from, args.to, why), code
      end
    end
    local ok, err, code = ctx.fs:move(args.from, args.to)
    if not ok then return nil, err, code end
    return { from = args.from, to = args.to, moved = true }
  end,
  -- After a crash during the move: `from` gone and `to` there means it happened (running it
  -- again would fail on the missing `from`); otherwise run it again, which moves it or fails
  -- for the reason the first try would have.
  recover = function(args, ctx)
    local _, _, from_code = ctx.fs:stat(args.from)
    if from_code == "ENOENT" and ctx.fs:stat(args.to) then
      return { from = args.from, to = args.to, moved = true, note = "the runtime stopped during this "
        .. "call; the source is gone and the destination exists (moved by this call, or already so)" }
    end
    return nil
  end,
}
