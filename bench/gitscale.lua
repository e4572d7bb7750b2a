-- Benchmark of git's share of a run as the board grows (the W2 workload): per card the coder
-- writes a file of its own (write_file), then hands in; the reviewer moves it to done, which
-- merges its branch into main. The fake model server answers at once. Each round runs, one
-- after another, Orket at SMALL and LARGE cards (concurrency 1), the git floor
-- (bench/gitfloor.c, the least libgit2 work per card) at the same sizes, the journal floor
-- and the C floor at LARGE, then Orket and the git floor at SMALL cards with concurrency 8;
-- peak RSS at RSS_SMALL and RSS_LARGE cards last. Prints per round and then min/median/max
-- over the rounds:
--   - W2 as the issue behind this benchmark sets its target: Orket's wall per card over the
--     C floor "doing the same requests and durable writes" plus the git floor, at LARGE. The
--     C floor is the journal floor (bench/engine.lua's: the rows the run wrote, written
--     again, one commit a turn; it stands for a C program making the same durable writes)
--     plus bench/w2floor.c: the model requests of a LARGE run (captured once, untimed, before
--     the rounds), replayed in order to the same server by a plain libcurl client, and each
--     card's file written durably; target <= 1.5;
--   - the stricter form of it: Orket's overhead per card (wall minus the time inside the
--     model client) over the journal floor plus the git floor, the requests out of both
--     sides; the same target;
--   - us per card at LARGE over SMALL (target <= 1.2): cost per card must not grow with the board;
--   - W2 CPU per card at LARGE over the C floor's CPU (journal floor and w2floor) plus the git
--     floor's; target <= 1.5 (CPU is steadier than wall time on a shared machine);
--   - CPU per card at concurrency 8 over 1, read against the git floor's own ratio at 8 over 1
--     in the same round (what the layout itself adds at 8: merge commits, directories catching
--     up with main): Orket's ratio over the floor's, target <= 1;
--   - peak RSS at RSS_LARGE over RSS_SMALL (target <= 1.2).
--   build/orket lua bench/gitscale.lua [ROUNDS [SMALL LARGE [RSS_SMALL RSS_LARGE]]]
-- (defaults 3, 50 400, 100 1000). The machine is shared: keep ROUNDS small.
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local stats = require "bench.stats"

local ROUNDS = tonumber(arg and arg[1]) or 3
local SMALL, LARGE = tonumber(arg and arg[2]) or 50, tonumber(arg and arg[3]) or 400
local RSS_SMALL, RSS_LARGE = tonumber(arg and arg[4]) or 100, tonumber(arg and arg[5]) or 1000
local BIN = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")
local FLOOR = os.getenv("ORKET_GITFLOOR") or (package.orket_home .. "/build/gitfloor")
local W2FLOOR = os.getenv("ORKET_W2FLOOR") or (package.orket_home .. "/build/w2floor")
local q = require("tests.helpers").quote

local fake = require("tests.fake_server").start()

-- On ext4 without a journal, a new inode is searched for past every inode of its block group
-- freed in the last 30 seconds, so one measurement's removals (the bench's cleanup, or a
-- program's own deleted files) made the next one's every new file dearer, Orket or floor
-- alike, by the order they ran in. So every measurement's directory is made in one marked
-- as the top of a hierarchy (chattr +T), which ext4's allocator spreads over block groups,
-- and all are removed only at the end. Where the mark is refused nothing else changes.
local PARENT = io.popen("mktemp -d /tmp/orket-gitscale.XXXXXX"):read("l")
os.execute("chattr +T " .. q(PARENT) .. " 2>/dev/null")

local CODER = "tool=write_file,arg_path=f-%n.txt,arg_content=the change of card %n,"
  .. "then=update_issue_status,then_arg_status=code_review"

local function cpu_now()
  local u = uv.getrusage()
  return (u.utime.sec + u.stime.sec) * 1e6 + u.utime.usec + u.stime.usec
end

local function project(n)
  local dir = require("bench.project").make(n, fake.url .. "/v1",
    { model = "chunks=1,nolog,", coder = CODER, parent = PARENT })
  local store = require "orket.store"
  local db = assert(store.open(dir .. "/.orket/orket.db"))
  assert(require("orket.import").import(db, dir))
  db:close()
  return dir
end

local function reset_peak()
  local f = io.open("/proc/self/clear_refs", "w")
  if f then
    f:write("5")
    f:close()
  end
end

local function peak_kb()
  local f = io.open("/proc/self/status")
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s+(%d+) kB")) or 0
end

-- One W2 run of n cards at concurrency conc -> {us=, cpu=, turns=, done=, dir=, peak=}
-- (per card; the project's dir stays, for the journal floor)
local function run(n, conc)
  local dir = project(n)
  local turns = 0
  collectgarbage()
  reset_peak()
  local e = assert(require("orket.engine.setup").open(dir, { concurrency = conc, emit = function(ev)
    if ev.type == "turn_end" then turns = turns + 1 end
  end }))
  -- the engine's model client is fixed once it is made: its chat is timed in place
  local client, model_ns = e.llm, 0
  local chat = client.chat
  client.chat = function(self, req)
    local t0 = uv.hrtime()
    local r, err, class = chat(self, req)
    model_ns = model_ns + (uv.hrtime() - t0)
    return r, err, class
  end
  local id = assert(e:start("B"))
  local c0, t0 = cpu_now(), uv.hrtime()
  local status = e:execute(id)
  local wall, cpu = uv.hrtime() - t0, cpu_now() - c0
  local done = e.db:row("SELECT count(*) AS n FROM cards WHERE parent = 'B' AND status = 'done'").n
  local peak = peak_kb()
  e.close_all()
  if done ~= n then error(string.format("W2 run of %d cards ended %s with %d done", n, status, done), 0) end
  return { us = (wall - (conc == 1 and model_ns or 0)) / 1e3 / n, wall = wall / 1e3 / n, cpu = cpu / n, turns = turns,
    dir = dir, peak = peak }
end

-- The model requests of a W2 run of n cards as its client sent them, for the C floor: a run
-- of its own (untimed) with the HTTP binding's request wrapped, each POST's body written out
-- as it goes (kept, they would raise the process's resident set for the peaks measured
-- later) -> the path of a file of the bodies, one a line, and their URL
local function capture(n)
  local http = require "orket.c.http"
  local request = http.request
  local path = PARENT .. "/w2-bodies"
  local f = assert(io.open(path, "w"))
  local count, url, bad = 0, nil, nil
  http.request = function(o)
    -- the model's requests only: POSTs to the fake model server, all to one URL
    if o.method == "POST" and o.body and o.url:sub(1, #fake.url + 1) == fake.url .. "/" then
      if o.body:find("\n", 1, true) then bad = bad or "a request body holds a newline: the bodies cannot be kept one a line" end
      if url and o.url ~= url then bad = bad or ("the model's requests went to two URLs: " .. url .. ", " .. o.url) end
      if not f:write(o.body, "\n") then bad = bad or ("cannot write " .. path) end
      count, url = count + 1, url or o.url
    end
    return request(o)
  end
  local ok, err = pcall(run, n, 1)
  http.request = request
  local closed, cerr = f:close()
  if not ok then error(err, 0) end
  if not closed then error("cannot write " .. path .. ": " .. tostring(cerr), 0) end
  if bad then error(bad, 0) end
  if count == 0 then error("the capture run made no model request", 0) end
  return path, url
end


-- the journal floor of a run's store, per card (bench/engine.lua's, in a process of its own)
local function journal_floor(r, n)
  local p = io.popen(string.format("%s lua %s %d journal-floor %s nogit", q(BIN),
    q(package.orket_home .. "/bench/engine.lua"), n, q(r.dir)))
  local out = p:read("a")
  p:close()
  local us, cpu = out:match("^(%S+) %S+ %S+ %S+ (%S+)")
  if not us then error("the journal floor failed: " .. out, 0) end
  return tonumber(us) * r.turns / n, tonumber(cpu) * r.turns / n
end

-- a C floor program's answer, "us_per_card cpu_us_per_card ..." -> us, CPU us per card
local function floor_program(what, cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  p:close()
  local us, cpu = out:match("^(%S+) (%S+)")
  if not tonumber(us) then error("the " .. what .. " failed: " .. out, 0) end
  return tonumber(us), tonumber(cpu)
end

-- the git floor at n cards, conc of them in flight (default 1; bench/gitfloor.c, in a
-- directory it makes)
local function git_floor(n, conc)
  local dir = io.popen("mktemp -u " .. q(PARENT) .. "/orket-gitfloor.XXXXXX"):read("l")
  return floor_program("git floor", string.format("%s %s %d %d", q(FLOOR), q(dir), n, conc or 1))
end

-- the C floor's requests and file writes at n cards (bench/w2floor.c)
local function c_floor(bodies, url, n)
  local dir = io.popen("mktemp -d " .. q(PARENT) .. "/orket-w2floor.XXXXXX"):read("l")
  return floor_program("C floor", string.format("%s %s %s %s %d", q(W2FLOOR), q(url), q(bodies), q(dir), n))
end

local t = orket.spawn(function()
  local issue, over, over_cpu, w2cpu, growth, conc8, floor8, rss = {}, {}, {}, {}, {}, {}, {}, {}
  local bodies, url = capture(LARGE)
  for round = 1, ROUNDS do
    local s = run(SMALL, 1)
    local gs, gscpu = git_floor(SMALL)
    local l = run(LARGE, 1)
    local gl, glcpu = git_floor(LARGE)
    local jl, jlcpu = journal_floor(l, LARGE)
    local cl, clcpu = c_floor(bodies, url, LARGE)
    local s8 = run(SMALL, 8)
    local _, gs8cpu = git_floor(SMALL, 8)
    issue[round] = l.wall / (jl + cl + gl)
    over[round] = l.us / (jl + gl)
    -- CPU is steadier than wall time on a shared machine (the floors' wall is mostly fsync
    -- waits); the model client's CPU is left in Orket's figure
    over_cpu[round] = l.cpu / (jlcpu + glcpu)
    w2cpu[round] = l.cpu / (jlcpu + clcpu + glcpu)
    growth[round] = l.us / s.us
    conc8[round] = s8.cpu / s.cpu
    floor8[round] = gs8cpu / gscpu
    print(string.format("round %d: W2 at %d cards %.0f us a card (CPU %.0f), at %d %.0f us (CPU %.0f; with the model's "
      .. "time %.0f); git floor %.0f / %.0f us (at %d CPU %.0f), journal floor at %d %.0f us a card, C floor's requests "
      .. "and files %.0f", round, SMALL, s.us, s.cpu, LARGE, l.us, l.cpu, l.wall, gs, gl, LARGE, glcpu, LARGE, jl, cl))
    print(string.format("round %d: wall at %d / (journal + C + git floor) %.2f; overhead / (journal + git floor) %.2f; "
      .. "us a card %d / %d %.2f (git floor's own %.2f); CPU a card at concurrency 8 / 1 %.2f (git floor's own %.2f: "
      .. "%.0f / %.0f us); CPU at %d / (journal + git floor's CPU %.0f) %.2f; / (C floor + git floor's CPU %.0f) %.2f",
      round, LARGE, issue[round], over[round], LARGE, SMALL, growth[round], gl / gs, conc8[round], floor8[round], gs8cpu,
      gscpu, LARGE, jlcpu + glcpu, over_cpu[round], jlcpu + clcpu + glcpu, w2cpu[round]))
  end
  local a = run(RSS_SMALL, 1)
  local b = run(RSS_LARGE, 1)
  rss[1] = b.peak / a.peak
  print(string.format("peak RSS at %d cards %.1f MB, at %d %.1f MB (%.0f us a card)", RSS_SMALL, a.peak / 1024,
    RSS_LARGE, b.peak / 1024, b.us))
  local function verdict(list, target)
    return stats.sorted(list)[(#list + 1) // 2] <= target and "met" or "MISSED"
  end
  print(string.format("W2 wall a card / (C floor: journal, requests, files + git floor) at %d cards: %s; "
    .. "target <= 1.5 -> %s", LARGE, stats.line(issue), verdict(issue, 1.5)))
  print(string.format("W2 overhead without the model's time / (journal + git floor) at %d cards: %s; "
    .. "the same target, stricter -> %s", LARGE, stats.line(over), verdict(over, 1.5)))
  print(string.format("W2 CPU a card / (journal + git floor's CPU) at %d cards: %s", LARGE, stats.line(over_cpu)))
  print(string.format("W2 CPU a card / (C floor: journal, requests, files + git floor's CPU) at %d cards: %s; "
    .. "target <= 1.5 -> %s", LARGE, stats.line(w2cpu), verdict(w2cpu, 1.5)))
  print(string.format("us a card at %d / at %d: %s; target <= 1.2 -> %s", LARGE, SMALL, stats.line(growth),
    verdict(growth, 1.2)))
  -- read against the floor's own: what the layout itself costs at 8 (merge commits, catching
  -- up directories), measured in the same round
  local against = {}
  for i = 1, #conc8 do against[i] = conc8[i] / floor8[i] end
  print(string.format("CPU a card, concurrency 8 / 1: %s; the git floor's own: %s; Orket's / the floor's: %s; "
    .. "target <= 1 -> %s", stats.line(conc8), stats.line(floor8), stats.line(against), verdict(against, 1)))
  print(string.format("peak RSS at %d / at %d cards: %.2f; target <= 1.2 -> %s", RSS_LARGE, RSS_SMALL, rss[1],
    verdict(rss, 1.2)))
end)
local ok, err = t:join()
fake.stop()
os.execute("rm -rf " .. q(PARENT))
if not ok then error(err, 0) end
