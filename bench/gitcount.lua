-- Benchmark of git's work per card counted, not timed (the W2 workload of bench/gitscale.lua:
-- per card the coder writes a file of its own and hands in, the reviewer's move to done
-- merges its branch into main):
--   - instructions per card of the calls into libgit2 (and zlib) from outside, inclusive of
--     what they call, counted by callgrind in Orket's run and in the git floor
--     (bench/gitfloor.c) at each size; target: Orket <= 1.3x the floor at every size. A count
--     moves by a percent or two between runs (commit times, directory names: other ids,
--     other deflate work), so ROUNDS rounds alternate Orket and the floor at each size and
--     the ratios print as min/median/max; the floor itself grows with the board (a flat
--     directory's tree object is rewritten by every commit), and the ratio allows for it;
--   - fsync, fdatasync and syncfs calls per card in Orket's run (the store's and git's), by
--     strace -c -f; target <= 12 (the floor's beside it).
-- Each size's run is made in this process (untimed) and executed in a child under the
-- counting tool; Orket and the floor alternate.
--   build/orket lua bench/gitcount.lua [ROUNDS [SIZES]]   (defaults 3, "50,200,400"; the
--   syncs counted at the first size). About 10 minutes on a shared 2-core machine.
--   build/orket lua bench/gitcount.lua --run DIR  (the child: DIR's epic B run to the end)
package.path = package.orket_home .. "/?.lua;" .. package.path

if arg and arg[1] == "--run" then
  local t = orket.spawn(function()
    local e = assert(require("orket.engine.setup").open(arg[2], { concurrency = 1 }))
    local id = assert(e:start("B"))
    local status = e:execute(id)
    local done = e.db:row("SELECT count(*) AS n FROM cards WHERE parent = 'B' AND status = 'done'").n
    e.close_all()
    print(status, done)
  end)
  local ok, err = t:join()
  if not ok then error(err, 0) end
  return
end

local ROUNDS = tonumber(arg and arg[1]) or 3
local SIZES = {}
for n in ((arg and arg[2]) or "50,200,400"):gmatch("%d+") do SIZES[#SIZES + 1] = tonumber(n) end
local stats = require "bench.stats"
local BIN = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")
local FLOOR = os.getenv("ORKET_GITFLOOR") or (package.orket_home .. "/build/gitfloor")
local SELF = package.orket_home .. "/bench/gitcount.lua"
local q = require("tests.helpers").quote

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

for _, tool in ipairs { "valgrind", "strace" } do
  if not sh("command -v " .. tool) then
    print("skipped: " .. tool .. " is not installed (scripts/deps.sh --bench)")
    return
  end
end

local fake = require("tests.fake_server").start()
local PARENT = io.popen("mktemp -d /tmp/orket-gitcount.XXXXXX"):read("l")
local CODER = "tool=write_file,arg_path=f-%n.txt,arg_content=the change of card %n,"
  .. "then=update_issue_status,then_arg_status=code_review"

-- a W2 project of n cards, imported (untimed, uncounted)
local function project(n)
  local dir = require("bench.project").make(n, fake.url .. "/v1",
    { model = "chunks=1,nolog,", coder = CODER, parent = PARENT })
  local db = assert(require("orket.store").open(dir .. "/.orket/orket.db"))
  assert(require("orket.import").import(db, dir))
  db:close()
  return dir
end

-- The objects that are git's: libgit2 and the zlib it deflates with.
local function is_git(object) return object:find("libgit2", 1, true) or object:find("libz%.so") end

-- callgrind's output file -> instructions of every call into git's objects from outside
-- them, inclusive (what libgit2 called beneath: zlib, libc, the kernel's entry): the cost
-- line after a "calls=" line whose callee's object (cob=, else the caller's) is git's while
-- the caller's (ob=) is not; git_libgit2_init left out
local function git_instructions(path)
  local names, fns, object, callee, fn, total, call = {}, {}, "", nil, "", 0, false
  for line in io.lines(path) do
    local kind, id, name = line:match("^(c?ob)=%((%d+)%)%s*(.*)")
    local fid, fname = line:match("^cfn=%((%d+)%)%s*(.*)")
    if id then
      if name ~= "" then names[id] = name end -- a name is given once, by ob= or cob=
      if kind == "ob" then object = names[id] or "" else callee = names[id] or "" end
    elseif fid then
      if fname ~= "" then fns[fid] = fname end
      fn = fns[fid] or ""
    elseif line:find("^fn=") then
      local gid, gname = line:match("^fn=%((%d+)%)%s*(.*)")
      if gid and gname ~= "" then fns[gid] = gname end
      callee = nil
    elseif line:find("^calls=") then
      call = true
    elseif line:find("^[%d%+%-%*]") then
      -- libgit2's setup, once a process, is no card's work
      if call and is_git(callee or object) and not is_git(object) and fn ~= "git_libgit2_init" then
        total = total + (tonumber(line:match("(%d+)%s*$")) or 0)
      end
      if call then callee = nil end
      call = false
    end
  end
  return total
end

-- a child's run must have ended with its n cards done (the floor prints its figures)
local function check(what, text, n, run)
  if run and not text:find("\n?done\t" .. n .. "\n") then error(what .. " did not end with " .. n .. " done: " .. text, 0) end
end

-- instructions git's objects executed under cmd (callgrind); run: cmd is Orket's, of n cards
local function counted(what, cmd, n, run)
  local out = PARENT .. "/callgrind.out"
  os.remove(out)
  local ok, text = sh(string.format("valgrind --tool=callgrind --callgrind-out-file=%s %s", q(out), cmd))
  if not ok then error(what .. " under callgrind failed: " .. text, 0) end
  check(what, text, n, run)
  return git_instructions(out)
end

-- fsync, fdatasync and syncfs calls under cmd, children included (strace -c -f)
local function syncs(what, cmd, n, run)
  local out = PARENT .. "/strace.out"
  local ok, text = sh(string.format("strace -f -c -e trace=fsync,fdatasync,syncfs -o %s %s", q(out), cmd))
  if not ok then error(what .. " under strace failed: " .. text, 0) end
  check(what, text, n, run)
  local n = 0
  for line in io.lines(out) do
    local calls, name = line:match("^%s*[%d%.]+%s+[%d%.]+%s+%d+%s+(%d+)%s+%d*%s*(%a+)%s*$")
    if name == "fsync" or name == "fdatasync" or name == "syncfs" then n = n + tonumber(calls) end
  end
  return n
end

local function orket_cmd(dir) return string.format("%s lua %s --run %s", q(BIN), q(SELF), q(dir)) end

local function floor_cmd(n)
  local dir = io.popen("mktemp -u " .. q(PARENT) .. "/gitfloor.XXXXXX"):read("l")
  return string.format("%s %s %d 1", q(FLOOR), q(dir), n)
end

local t = orket.spawn(function()
  local ratios, floors, mine = {}, {}, {}
  for _, n in ipairs(SIZES) do ratios[n], floors[n], mine[n] = {}, {}, {} end
  for round = 1, ROUNDS do
    for _, n in ipairs(SIZES) do
      local o = counted("Orket's run", orket_cmd(project(n)), n, true) / n
      local f = counted("the git floor", floor_cmd(n), n) / n
      mine[n][round], floors[n][round], ratios[n][round] = o, f, o / f
      print(string.format("round %d: libgit2 instructions a card at %d cards: floor %.0f, Orket %.0f, ratio %.2f", round,
        n, f, o, o / f))
    end
  end
  local met = true
  for _, n in ipairs(SIZES) do
    local median = stats.sorted(ratios[n])[(ROUNDS + 1) // 2]
    met = met and median <= 1.3
    print(string.format("libgit2 instructions a card at %d cards: floor %s, Orket %s, ratio %s", n,
      stats.line(floors[n], "%.0f"), stats.line(mine[n], "%.0f"), stats.line(ratios[n])))
  end
  print(string.format("libgit2 instructions a card / the git floor's at %s cards: target <= 1.3 at each -> %s",
    table.concat(SIZES, ", "), met and "met" or "MISSED"))
  local n = SIZES[1]
  local mine = syncs("Orket's run", orket_cmd(project(n)), n, true) / n
  local floor = syncs("the git floor", floor_cmd(n), n) / n
  print(string.format("fsync, fdatasync and syncfs calls a card at %d cards: Orket %.1f (the git floor %.1f); "
    .. "target <= 12 -> %s", n, mine, floor, mine <= 12 and "met" or "MISSED"))
end)
local ok, err = t:join()
fake.stop()
os.execute("rm -rf " .. q(PARENT))
if not ok then error(err, 0) end
