-- search_files: literal text search over workspace files, optionally limited to a file-name
-- glob (the gate's glob: *, **, ?). Capped in files scanned, bytes per file and results.
local MAX_FILES, MAX_FILE_BYTES, MAX_DIRS = 5000, 1048576, 2000

return {
  name = "search_files",
  description = "Search workspace files for a literal string. glob limits the files searched (e.g. \"src/**/*.c\"). Returns path, line number and the line.",
  effect = "read",
  parameters = {
    type = "object",
    properties = {
      query = { type = "string", minLength = 1, maxLength = 200, description = "literal text (not a pattern)" },
      path = { type = "string", format = "path", maxLength = 1023, description = "directory to search (default: the root)" },
      -- maxLength counts characters (up to 4 bytes each): 128 fit the glob's 512-byte patterns
      glob = { type = "string", maxLength = 128, description = "only files whose workspace path matches this glob" },
      max_results = { type = "integer", minimum = 1, maximum = 200, description = "default 50" },
    },
    required = { "query" },
  },
  handler = function(args, ctx)
    local limit = args.max_results or 50
    local results, scanned, dirs = {}, 0, 0
    local capped = false
    local queue = { args.path or "." }
    local qi = 1
    while queue[qi] and not capped do
      local dir = queue[qi]
      qi = qi + 1
      dirs = dirs + 1
      local entries, _, code = ctx.fs:list(dir)
      if not entries then
        if dir == (args.path or ".") then return nil, _, code end
        entries = {}
      end
      for _, e in ipairs(entries) do
        local p = dir == "." and e.name or (dir .. "/" .. e.name)
        if e.type == "directory" and e.name ~= ".git" and e.name ~= ".orket" then
          if dirs + #queue - qi < MAX_DIRS then queue[#queue + 1] = p else capped = true end
        elseif e.type == "file" and e.size <= MAX_FILE_BYTES and (not args.glob or glob(args.glob, p)) then
          scanned = scanned + 1
          if scanned > MAX_FILES then capped = true break end
          local data = ctx.fs:read(p, { limit = MAX_FILE_BYTES })
          if data and data:find(args.query, 1, true) then
            local n = 0
            for line in (data .. "\n"):gmatch("([^\n]*)\n") do
              n = n + 1
              if line:find(args.query, 1, true) then
                results[#results + 1] = { path = p, line = n, text = #line > 200 and line:sub(1, 200) .. "..." or line }
                if #results >= limit then capped = true break end
              end
            end
          end
        end
        if capped then break end
      end
    end
    return { query = args.query, results = results, files_scanned = scanned, truncated = capped }
  end,
}
