-- orket.sandboxes.seed_child: a SQLite seed run in a process of its own (docs/sandbox.md,
-- *A database per sandbox*). database.lua starts Orket's binary on it under the kernel's
-- limits (address space, CPU time, file size) and SIGKILLs it at the deadline or a stop:
-- one slow SQL function call is a single VM step that nothing inside SQLite interrupts,
-- and SQLite's memory is bounded only per process. Here the seed keeps every limit of
-- orket.c.sqlseed (its own file, refused pragmas, size caps, the deadline).
local sqlseed = require "orket.c.sqlseed"

local M = {}

--- main(db, sqlfile, timeout_ms, max_bytes): runs the SQL of sqlfile in the new file db and
--- writes one line on stdout: "OK", or "CODE<TAB>message"
function M.main(db, sqlfile, timeout_ms, max_bytes)
  local ok, a, b, c = pcall(function()
    local f = assert(io.open(sqlfile, "rb"))
    local sql = f:read("a")
    f:close()
    return sqlseed.exec(db, sql, { timeout_ms = math.tointeger(tonumber(timeout_ms)),
      max_bytes = math.tointeger(tonumber(max_bytes)) })
  end)
  local line
  if not ok then
    -- Lua's own allocations fail first when the address space runs out
    local msg = tostring(a)
    line = (msg:find("not enough memory", 1, true) and "ENOMEM\t" or "EIO\t") .. msg:gsub("[\r\n]", " ")
  elseif a then
    line = "OK"
  else
    line = tostring(c) .. "\t" .. tostring(b):gsub("[\r\n]", " ")
  end
  io.stdout:write(line, "\n")
  io.stdout:flush()
end

return M
