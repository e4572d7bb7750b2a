-- create_directory: mkdir -p inside the workspace.
return {
  name = "create_directory",
  description = "Create a directory (and any missing parents) in the workspace; created is false when it was already there.",
  effect = "write",
  idempotent = true, -- mkdir -p of an existing directory succeeds
  parameters = {
    type = "object",
    properties = { path = { type = "string", format = "path", maxLength = 1023 } },
    required = { "path" },
  },
  handler = function(args, ctx)
    -- an existing directory (the root ".", or one made before) is left as it is: say so
    local st = ctx.fs:stat(args.path)
    local existed = st ~= nil and st.type == "directory"
    local ok, err, code = ctx.fs:mkdir(args.path)
    if not ok then return nil, err, code end
    return { path = args.path, created = not existed }
  end,
}
