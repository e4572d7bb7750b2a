-- create_directory: mkdir -p inside the workspace.
return {
  name = "create_directory",
  description = "Create a directory (and any missing parents) in the workspace.",
  effect = "write",
  idempotent = true, -- mkdir -p of an existing directory succeeds
  parameters = {
    type = "object",
    properties = { path = { type = "string", format = "path", maxLength = 4096 } },
    required = { "path" },
  },
  handler = function(args, ctx)
    local ok, err, code = ctx.fs:mkdir(args.path)
    if not ok then return nil, err, code end
    return { path = args.path, created = true }
  end,
}
