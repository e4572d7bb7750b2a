-- delete_file: removes a file or an empty directory. The default policy asks a developer.
return {
  name = "delete_file",
  description = "Delete a file or an empty directory in the workspace (a developer may have to approve).",
  effect = "write",
  parameters = {
    type = "object",
    properties = { path = { type = "string", format = "path", maxLength = 1023 } },
    required = { "path" },
  },
  handler = function(args, ctx)
    local ok, err, code = ctx.fs:delete(args.path)
    if not ok then return nil, err, code end
    return { path = args.path, deleted = true }
  end,
  -- After a crash during the delete: the path gone means it happened; otherwise delete again.
  recover = function(args, ctx)
    local _, _, code = ctx.fs:stat(args.path)
    -- Gone: this call deleted it before the runtime stopped, or it was never there. Say
    -- both rather than claim an effect the call may not have had.
    if code == "ENOENT" then
      return { path = args.path, deleted = true, note = "the runtime stopped during this call; "
        .. "the path is gone now (deleted by this call, or already missing)" }
    end
    return nil
  end,
}
