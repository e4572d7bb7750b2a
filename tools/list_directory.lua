-- list_directory: the entries of one workspace directory.
return {
  name = "list_directory",
  description = "List a workspace directory: name, type (file, directory, symlink, other) and size of each entry.",
  effect = "read",
  parameters = {
    type = "object",
    properties = { path = { type = "string", format = "path", maxLength = 1023, description = "default: the workspace root" } },
  },
  handler = function(args, ctx)
    local entries, truncated, code = ctx.fs:list(args.path or ".")
    if not entries then return nil, truncated, code end
    local out = {}
    for i, e in ipairs(entries) do out[i] = { name = e.name, type = e.type, size = e.size } end
    return { path = args.path or ".", entries = out, truncated = truncated }
  end,
}
