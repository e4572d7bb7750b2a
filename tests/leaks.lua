-- tests/leaks.lua MINE PGID LOG: what a test file left behind, checked by tests/run.sh after
-- the file's process ended. MINE is the empty directory that reserves the file's prefix: its
-- temp trees are MINE.XXXXXX beside it (tests/helpers.lua's tmpdir). Leaks: processes (of its
-- process group PGID, or whose working directory or arguments are in its trees), mounts
-- under them, and the trees themselves (a file removes what it made: H.cleanup). Each leak
-- is named in LOG and counted as one more failed test on the file's last count line; then
-- the leaked processes are killed (by pid), mounts detached and the trees removed, so that
-- one file's leak does not spill into the next run.
local uv = require "luv"
local mine, pgid, log = arg[1], tonumber(arg[2]), arg[3]
assert(mine and mine:match("^/.+/orket%-[^/]+$") and pgid and log, "usage: tests/leaks.lua MINE PGID LOG")
local parent, prefix = mine:match("^(.*)/([^/]+)$")

local read = require("orket.fieldline").read -- path -> text | nil

local function inside(path)
  if path == nil then return false end
  local head = path:sub(1, #mine + 1)
  return path == mine or head == mine .. "/" or head == mine .. "."
end

-- pid -> "PID: command line" for each process of the file's: in its group, or at work in DIR.
local function processes()
  local found, self = {}, uv.os_getpid()
  local d = uv.fs_scandir("/proc")
  while d do
    local name = uv.fs_scandir_next(d)
    if not name then break end
    local pid = tonumber(name)
    if pid and pid ~= self then
      local stat = read("/proc/" .. name .. "/stat") or ""
      -- the group is the 5th field, after "(comm)", which may hold spaces
      local state, group = stat:match("^%d+ %(.*%) (%S) %S+ (%d+)")
      local cmd = (read("/proc/" .. name .. "/cmdline") or ""):gsub("%z", " ")
      if state and state ~= "Z" and (tonumber(group) == pgid or inside(uv.fs_readlink("/proc/" .. name .. "/cwd"))
          or cmd:find(mine, 1, true)) then
        found[pid] = name .. ": " .. cmd
      end
    end
  end
  return found
end

local function mounts()
  local found = {}
  for line in (read("/proc/self/mounts") or ""):gmatch("[^\n]+") do
    local point = line:match("^%S+ (%S+)")
    point = point and point:gsub("\\040", " ")
    if inside(point) then found[#found + 1] = point end
  end
  return found
end

-- The file's trees left beside MINE, and anything in MINE.
local function left_trees()
  local found = {}
  for _, where in ipairs { { parent, prefix .. "." }, { mine, "" } } do
    local d = uv.fs_scandir(where[1])
    while d do
      local name = uv.fs_scandir_next(d)
      if not name then break end
      if name:sub(1, #where[2]) == where[2] then found[#found + 1] = where[1] .. "/" .. name end
    end
  end
  table.sort(found)
  return found
end

local function remove(path) os.execute("rm -rf '" .. path:gsub("'", [['\'']]) .. "'") end

-- A process that is still exiting (a server told to stop as the file ended) is given a
-- moment before it counts.
local procs = processes()
for _ = 1, 20 do
  if next(procs) == nil then break end
  uv.sleep(100)
  procs = processes()
end

local leaks = {}
for pid, what in pairs(procs) do
  leaks[#leaks + 1] = "process " .. what
  uv.kill(pid, "sigkill")
end
local points = mounts()
for _, p in ipairs(points) do
  leaks[#leaks + 1] = "mount " .. p
  os.execute("umount -l '" .. p:gsub("'", [['\'']]) .. "' 2>/dev/null")
end
for _, f in ipairs(left_trees()) do
  leaks[#leaks + 1] = "temp dir " .. f
  remove(f)
end
remove(mine)
if #leaks == 0 then return end

local text = read(log) or ""
local last
for l in text:gmatch("[^\n]+") do
  if l:match("^spec: %d+ passed, %d+ failed") then last = l end
end
local out = assert(io.open(log, "ab"))
out:write("\nFAIL: the file left behind what it started or made (each test cleans up after itself):\n")
for _, l in ipairs(leaks) do out:write("  leaked: ", l, "\n") end
if last then
  local p, f, s = last:match("^spec: (%d+) passed, (%d+) failed, (%d+) skipped")
  out:write(string.format("spec: %d passed, %d failed, %d skipped\n", p, f + 1, s or 0))
end
out:close()
