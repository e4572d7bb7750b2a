-- orket.sourcepos: the source positions of Orket's own Lua taken out of a message ("/x/lua/
-- orket/store/cards.lua:34: "), for what a person, a log or a model reads: a store failure
-- raised through assert(), a helper a script misused. One reading of them, for the command
-- line, the server's log and the scripts' errors alike.
local M = {}

-- whether tail (what Lua kept of a long chunk name, after its "...") ends the name of a
-- module in lib: some end of lib, then a module's path there
local function lib_tail(tail, lib)
  for k = 1, math.min(#tail, #lib) do
    local rel = tail:sub(k + 1)
    if lib:sub(-k) == tail:sub(1, k) and rel:match("^[%w_/%-]+%.lua$") then
      local f = io.open(lib .. rel)
      if f then f:close() return true end
    end
  end
  return false
end

--- plain(msg [, lib]) -> msg without the source positions of Orket's own modules
--- ("/x/lua/orket/store/cards.lua:34: ", or as Lua shortens a long one, "...e/lua/orket/
--- store/cards.lua:34: ") and a traceback after it: a store failure raised through
--- assert() as the user sees it. Only positions under lib (Orket's own library, HOME/lua/
--- orket/, which may hold a space) go: a user's file keeps its place ("orket.lua:3: "), in
--- a folder named orket too.
function M.plain(msg, lib)
  msg = msg:gsub("\nstack traceback:\n.*$", "")
  lib = lib or (package.orket_home and package.orket_home .. "/lua/orket/")
  if not lib then return msg end
  local out, i = {}, 1
  while true do
    -- the next position "NAME.lua:N: "; NAME is lib's module or "..." and its end
    local s, e = msg:find("%.lua:%d+: ", i)
    if not s then break end
    local from
    local at = i
    while true do -- the last "..." or lib before it that makes NAME one of Orket's
      local p = msg:find(lib, at, true)
      if not p or p > s then break end
      if msg:sub(p + #lib, s + 3):match("^[%w_/%-]+%.lua$") then from = p end
      at = p + 1
    end
    if not from then
      at = math.max(i, s - 64) -- Lua keeps some 56 bytes of a long name
      while true do
        local p = msg:find("...", at, true)
        if not p or p > s then break end
        if lib_tail(msg:sub(p + 3, s + 3), lib) then from = p break end
        at = p + 1
      end
    end
    out[#out + 1] = msg:sub(i, (from or e + 1) - 1)
    i = e + 1
  end
  out[#out + 1] = msg:sub(i)
  return table.concat(out)
end

return M
