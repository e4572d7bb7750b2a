-- bench/gate.lua: gate decisions per second (with the default policies), tool-call text
-- parsing, and workspace write+read round trips. Run: build/orket lua bench/gate.lua
local gate = require "orket.gate"
local tools = require "orket.tools"
local policy = require "orket.policy"
local toolcalls = require "orket.toolcalls"
local W = require "orket.workspace"

local home = orket.home
local reg = assert(tools.load_dirs { home .. "/tools" })
local set = assert(policy.load(policy.files_in { home .. "/policies" }))

local function bench(name, n, fn)
  local t0 = orket.now()
  for i = 1, n do fn(i) end
  local ms = orket.now() - t0
  print(string.format("%-34s %8d ops  %8.1f ms  %10.0f ops/s  %7.2f us/op", name, n, ms, n / ms * 1000, ms * 1000 / n))
end

local actor = { seat = "senior_developer", roles = { "coder" } }
local card = { id = "ISS-1", status = "in_progress" }
bench("gate.check write_file (allow)", 20000, function(i)
  gate.check { actor = actor, tool = "write_file", args = { path = "src/f" .. i .. ".c", content = "int x;" },
    card = card, tools = reg, policies = set }
end)
bench("gate.check write_file ../ (deny)", 20000, function()
  gate.check { actor = actor, tool = "write_file", args = { path = "../x", content = "y" }, card = card, tools = reg, policies = set }
end)
local text = "I'll write it now.\n```json\n" ..
  '{"tool":"write_file","args":{"path":"src/main.c","content":"' .. string.rep("x", 2000) .. '"}}\n```\n'
bench("toolcalls.from_text (2 KB reply)", 20000, function() assert(toolcalls.from_text(text)) end)

local dir = io.popen("mktemp -d /tmp/orket-bench.XXXXXX"):read("l")
for _, mode in ipairs { "openat2", "walk" } do
  local ws = assert(W.open(dir, { resolve = mode }))
  ws:mkdir("a/b/c")
  bench("ws write+read a/b/c/f (" .. mode .. ")", 5000, function(i)
    assert(ws:write("a/b/c/f" .. (i % 50), "hello"))
    assert(ws:read("a/b/c/f" .. (i % 50)))
  end)
  bench("ws stat a/b/c (" .. mode .. ")", 50000, function() assert(ws:stat("a/b/c")) end)
  ws:close()
end
os.execute("rm -rf " .. dir)
