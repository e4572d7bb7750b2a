-- read_file: a file's text from the workspace, capped; large files are read in ranges. A
-- file that is not UTF-8 text is answered with its size and first bytes, not its content.

-- Where data (a range of a file) stops being text -> what ("a NUL byte", "a byte that is not
-- UTF-8") and its position (from 1), or nil. A range may start inside a character (after an
-- offset) or end inside one (cut by the limit): those edges are not held against it.
local function binary_at(data, mid_start, cut_end)
  local nul = data:find("\0", 1, true)
  if nul then return "a NUL byte", nul end
  local first, last = 1, #data
  if mid_start then
    while first <= 3 and first <= last and data:byte(first) >= 0x80 and data:byte(first) < 0xC0 do first = first + 1 end
  end
  if cut_end then
    -- an incomplete character at the end: its lead byte, within the last three
    for i = last, math.max(first, last - 2), -1 do
      local b = data:byte(i)
      if b >= 0xC0 then
        local need = b >= 0xF0 and 4 or b >= 0xE0 and 3 or 2
        if last - i + 1 < need then last = i - 1 end
        break
      elseif b < 0x80 then
        break
      end
    end
  end
  local n, at = utf8.len(data, first, last)
  if n == nil then return "a byte that is not UTF-8", at end
  return nil
end

return {
  name = "read_file",
  description = "Read a text file from the workspace. Large files come back truncated; read further with offset. "
    .. "A file that is not text comes back as its size and first bytes in hex (binary = true), without content.",
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
    local offset = args.offset or 0
    local data, info, code = ctx.fs:read(args.path, { offset = offset, limit = args.limit or 65536 })
    if not data then return nil, info, code end
    local bad, at = binary_at(data, offset > 0, info.truncated)
    if bad then
      -- bytes that are not text would reach the model escaped, each as up to six characters
      -- (a MiB as 5.6 MB in the store), and mean nothing to it: said, with how to look inside
      return { path = args.path, size = info.size, binary = true, offset = offset, bytes = #data,
        head = (data:sub(1, 16):gsub(".", function(c) return string.format("%02x", c:byte()) end)),
        note = string.format("not UTF-8 text (%s at byte %d): its bytes are not shown. head is the first "
          .. "ones in hex; a program can look inside if this role may run one (e.g. file, or xxd -s %d -l 256)",
          bad, offset + at - 1, offset) }
    end
    return { path = args.path, content = data, size = info.size, truncated = info.truncated }
  end,
}
