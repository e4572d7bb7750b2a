-- write_file: replaces a file atomically, creating missing parent directories.
return {
  name = "write_file",
  description = "Write a whole text file in the workspace (created or replaced atomically; parent directories are created).",
  effect = "write",
  idempotent = true, -- the same whole content again gives the same file
  parameters = {
    type = "object",
    properties = {
      -- a path's maxLength (every tool's): 1023 characters of up to 4 bytes fit 4095 bytes
      path = { type = "string", format = "path", maxLength = 1023 },
      content = { type = "string", format = "content", maxLength = 4194304 },
    },
    required = { "path", "content" },
  },
  handler = function(args, ctx)
    -- "dir/" or "dir/." names no file: the write refuses it, so make no folder for it first
    local parent, leaf = args.path:match("^(.*)/([^/]*)$")
    if parent and parent ~= "" and leaf ~= "" and leaf ~= "." then
      local ok, err, code = ctx.fs:mkdir(parent)
      if not ok then return nil, err, code end
    end
    local n, err, code = ctx.fs:write(args.path, args.content)
    if not n then return nil, err, code end
    return { path = args.path, bytes = n }
  end,
}
