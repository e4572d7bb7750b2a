-- bench.stats: the figures every benchmark prints over its alternated rounds: percentiles
-- and min/median/max. One implementation, so every bench reads its rounds the same way.
local M = {}

--- sorted(t) -> a sorted copy of the list t
function M.sorted(t)
  local c = { table.unpack(t) }
  table.sort(c)
  return c
end

--- pct(t, p) -> the p-quantile (0 < p <= 1, nearest rank) of the list t; NaN when empty
function M.pct(t, p)
  local s = M.sorted(t)
  if #s == 0 then return 0 / 0 end
  return s[math.max(1, math.min(#s, math.ceil(#s * p)))]
end

--- spread(t) -> min, median, max of the list t
function M.spread(t)
  local s = M.sorted(t)
  return s[1], s[(#s + 1) // 2], s[#s]
end

--- line(t [, fmt]) -> "min X median Y max Z", each number in fmt (default "%.2f")
function M.line(t, fmt)
  fmt = fmt or "%.2f"
  return string.format("min " .. fmt .. " median " .. fmt .. " max " .. fmt, M.spread(t))
end

return M
