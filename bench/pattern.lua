-- bench/pattern.lua: the step-budgeted matcher (orket.c.pattern) against Lua's own, the
-- cost of the string metatable's dispatch for host code, and how soon a pathological
-- pattern in a script is stopped. Run: build/orket lua bench/pattern.lua
local P = require "orket.c.pattern"
local scriptenv = require "orket.scriptenv"

local function bench(name, n, fn)
  local t0 = orket.now()
  for i = 1, n do fn(i) end
  local ms = orket.now() - t0
  print(string.format("%-40s %8d ops  %8.1f ms  %7.2f us/op", name, n, ms, ms * 1000 / n))
end

local text = ("The quick brown fox jumps over the lazy dog. "):rep(2000) -- 90 KB
local pairs_text = ("key_%d = value %d\n"):rep(1000):gsub("%%d", "7")
for _, impl in ipairs { { "stock", string }, { "budgeted", P } } do
  local name, S = impl[1], impl[2]
  bench(name .. " find captures (short)", 200000, function() return S.find("hello world", "(o)%s(w)") end)
  bench(name .. " match key=value (short)", 200000, function() return S.match("x = 12", "^(%w+)%s*=%s*(%d+)$") end)
  bench(name .. " gsub %w+ over 90 KB", 50, function() return S.gsub(text, "%w+", "x") end)
  bench(name .. " gmatch lines over 19 KB", 200, function() for _ in S.gmatch(pairs_text, "[^\n]+") do end end)
end

-- host code: the metatable's dispatcher picks Lua's own function
local s = "hello world"
bench("host string.find (direct)", 500000, function() return string.find(s, "o w", 1, true) end)
bench("host s:find (metatable dispatch)", 500000, function() return s:find("o w", 1, true) end)

-- scripts: a pathological pattern, stopped by the default budget
local box = scriptenv.new { name = "bench.lua" }
local fn = assert(box:load([[return (("a"):rep(200000)):find(".-.-.-.-b")]], "bench.lua"))
local t0 = orket.now()
local ok, _, code = box:pcall(fn)
print(string.format("%-40s %s %s after %.1f ms", "pathological find in a script", tostring(ok), code, orket.now() - t0))
