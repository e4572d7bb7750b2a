-- The part every generated piece of docs/ shares (scripts/errors-doc.lua, scripts/repl-doc.lua):
-- text between two markers replaced by what the code says, then written (--write) or
-- compared (--check). Loaded with dofile from the script's own folder.
local M = {}

--- between(text, open, close, body) -> text with body between the markers | nil when they
--- are missing. open ends its line, close starts one.
function M.between(text, open, close, body)
  local _, b = text:find(open, 1, true)
  local c = b and text:find(close, b + 1, true)
  if not c then return nil end
  return text:sub(1, b) .. body .. text:sub(c)
end

--- settle(path, text, out, mode, stale) -> exit status. --write writes out over path when it
--- differs from text (0); --check says stale on standard error when it differs (1).
function M.settle(path, text, out, mode, stale)
  if mode == "--write" then
    if out ~= text then
      local w = assert(io.open(path, "wb"))
      w:write(out)
      w:close()
    end
    return 0
  end
  if out ~= text then
    io.stderr:write(path, ": ", stale, "\n")
    return 1
  end
  return 0
end

return M
