-- Benchmark of one `repo:view_status()` (gitrepo_view_status) on main's view with PATHS
-- paths listed, counted, not timed: callgrind's instructions of gitrepo_view_status,
-- inclusive (libgit2, zlib and libc beneath it). Each listed path is a person's small file
-- where main holds a text file of BYTES bytes (random hex digits: text deflates and inflates as
-- source does, where random bytes are stored as they are; loose objects, as a merge leaves them).
--   build/orket lua bench/viewstatus.lua [PATHS [BYTES]]   (defaults 1000, 32768; counts instructions)
--   build/orket lua bench/viewstatus.lua --run DIR          (the child: one status of DIR)
package.path = package.orket_home .. "/?.lua;" .. package.path
local G = require "orket.c.gitrepo"

if arg and arg[1] == "--run" then
  local repo = assert(G.open(arg[2]))
  local v = assert(repo:view_status())
  print("listed", #v)
  return
end

local PATHS = tonumber(arg and arg[1]) or 1000
local BYTES = tonumber(arg and arg[2]) or 32768
local BIN = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")
local SELF = package.orket_home .. "/bench/viewstatus.lua"
local q = require("tests.helpers").quote

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

if not sh("command -v valgrind") then
  print("skipped: valgrind is not installed (scripts/deps.sh --bench)")
  return
end

local mk = io.popen("mktemp -d /tmp/orket-viewstatus.XXXXXX")
local dir = mk:read("l")
mk:close()
assert(dir and dir ~= "", "mktemp -d failed")
-- removed however the bench ends (PATHS x BYTES of files: 32 MB by default)
local _ <close> = setmetatable({}, { __close = function() os.execute("rm -rf " .. q(dir)) end })
local function path(i) return string.format("d%02d/f%05d.bin", i % 20, i) end
local function write(name, data)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(data)
  f:close()
end

-- main: PATHS files of random content, committed; then the person's own at each path
assert(sh("git init -q -b main " .. q(dir)))
for i = 0, 19 do assert(os.execute("mkdir -p " .. q(string.format("%s/d%02d", dir, i)))) end
local rnd = assert(io.open("/dev/urandom", "rb"))
local HEX = {}
for b = 0, 255 do HEX[string.char(b)] = string.format("%02x", b) end
for i = 1, PATHS do write(path(i), "main " .. i .. "\n" .. rnd:read(BYTES // 2):gsub(".", HEX)) end
rnd:close()
local git = "git -C " .. q(dir) .. " -c user.name=bench -c user.email=bench@orket.invalid "
assert(sh(git .. "add -A") and sh(git .. "commit -qm main"))
local ids = io.popen("git -C " .. q(dir) .. " rev-parse main main^{tree}")
local commit, tree = ids:read("l"), ids:read("l")
ids:close()
for i = 1, PATHS do write(path(i), "mine " .. i .. "\n") end
-- the view's state: main's tree its base, every path recorded as diverged (docs/git.md)
local st = { "orket-view 1 " .. tree .. "\n", "/base " .. commit .. "\0" }
for i = 1, PATHS do st[#st + 1] = path(i) .. "\0" end
write(".git/orket-view", table.concat(st))

local out = dir .. "/callgrind.out"
local ok, text = sh(string.format("valgrind --tool=callgrind --toggle-collect=gitrepo_view_status --callgrind-out-file=%s %s lua %s --run %s",
  q(out), q(BIN), q(SELF), q(dir)))
if not ok or not text:find("listed\t" .. PATHS, 1, true) then error("status under callgrind failed: " .. text, 0) end
local total
for line in io.lines(out) do total = total or tonumber(line:match("^totals:%s*(%d+)") or line:match("^summary:%s*(%d+)")) end
print(string.format("view_status, %d paths listed, main's files %d bytes: %.1f M instructions (%.1f K a path)",
  PATHS, BYTES, total / 1e6, total / PATHS / 1e3))
