-- read_file: a file's text from the workspace, capped; large files are read in ranges.
return {
  name = "read_file",
  description = "Read a text file from the workspace. Large files come back truncated; read further with offset.",
  effect = "read",
  parameters = {
    type = "object",
    properties = {
      path = { type = "string", format = "path", maxLength = 1023, description = "path relative to the workspace root" },
      offset = { type = "integer", minimum = 0, description = "byte offset to start at (default 0)" },
      limit = { type = "integer", minimum = 1, maximum = 1048576, description = "bytes to read at most (default 65536)" },
    },
    required = { "path" },
  },
  handler = function(args, ctx)
    local data, info, code = ctx.fs:read(args.path, { offset = args.offset or 0, limit = args.limit or 65536 })
    if not data then return nil, info, code end
    return { path = args.path, content = data, size = info.size, truncated = info.truncated }
  end,
}
