-- Benchmark of the engine: a run of a 1,000-issue epic through the fake model server (a
-- separate process, real HTTP on loopback, OpenAI wire format) with the real store (durable
-- WAL journal in a temp dir), tools, gate, roles and routing. Every issue takes two turns
-- (the coder hands it in, the reviewer approves it), one model call each; every tenth issue
-- depends on the one before it. Prints turns/s, the orchestration overhead per turn (wall
-- time minus the time spent inside the model client, at concurrency 1 so model time does not
-- overlap), this process's CPU time per turn, the same at concurrency 8, peak RSS (VmHWM),
-- and the journal floor under the overhead: what writing the same rows costs with nothing
-- else (see journal_floor), and the same with the run's git steps through libgit2
-- alone interleaved (journal_floor's with_git), each also as CPU time: the run's CPU per turn
-- without the model client's (measured around each call; at concurrency 1 nothing else runs
-- then) against the floor's, steadier than wall time on a shared machine where the git
-- floor alone swings by half between rounds. Each round also runs concurrency 1 with the
-- workspace as a plain folder (no git step at all) against its own journal floor: the
-- orchestration alone, without git's noise. Three rounds, each its own floors; the
-- targets' figures with min/median/max over them, peak RSS against `orket version` plus
-- the store's page cache.
-- Each round's no-git run is also held against its statement floor (bench/statements.lua):
-- the store calls it made, made again with nothing else; "statements" makes only that.
--   build/orket lua bench/engine.lua [ISSUES] [nogit|statements|profile|profile-vm|profile-alloc|parts [CONCURRENCY [nogit]]] [money]
-- "money" (last) prices the two seats' models and sets a run's money budget too high to
-- reach, so every model call also pays the budget's check (its estimate, its totals).
-- With "profile" only one run is made (concurrency 1 unless given), under orket.profile
-- (model time not charged), and its costliest lines are printed per turn; "profile-vm"
-- counts Lua VM instructions instead of wall time, so the git and SQLite calls' time is
-- not charged to whichever Lua line is sampled next (sandboxed calls are sampled inside);
-- "profile-alloc" the Lua heap's growth
-- (the collector stopped meanwhile: keep ISSUES small), what makes the collector's work. With "parts"
-- only one run is made, with wall (hrtime) and CPU (os.clock) time summed around the
-- engine's main calls (inclusive: a record inside the step's commit counts in both).
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local rt = require "orket.c.runtime"
local cjson = require "cjson"

local N = tonumber(arg and arg[1]) or 1000

-- this process's CPU time (user + system, all threads), us
local function cpu_now()
  local u = uv.getrusage()
  return (u.utime.sec + u.stime.sec) * 1e6 + u.utime.usec + u.stime.usec
end
local PROFILE = arg and (arg[2] == "profile" or arg[2] == "profile-vm" or arg[2] == "profile-alloc")
local PARTS = arg and arg[2] == "parts"
-- profile and parts: the concurrency (third argument), 1 unless given
local MODE_CONC = (PROFILE or PARTS) and tonumber(arg[3]) or 1
local MODE_NOGIT = (PROFILE or PARTS) and arg[4] == "nogit"
-- "journal-floor DIR [nogit]": only the journal floors of the store in DIR, printed as
-- "us git_us writes git_cpu_us cpu_us" (per turn; nogit: the git floor skipped, its figures 0);
-- the rounds run it so, in a process of its own, as it reads a whole journal into memory
-- and the heap it leaves would count in the next run's peak RSS
local FLOOR_DIR = arg and arg[2] == "journal-floor" and arg[3]
-- "nogit": only the no-git run at concurrency 1 and its journal floor, one line (for
-- alternating two builds: a cut's before and after)
local NOGIT_ONLY = arg and arg[2] == "nogit"
-- "statements": the no-git run at concurrency 1 against its journal floor and its
-- statement floor (bench/statements.lua: every store call the run made, made again with
-- nothing else), three rounds; "statement-floor DIR TURNS" is that floor alone, in a
-- process of its own, printed as "cpu_us_per_turn statements reads writes transactions"
local STATEMENTS = arg and arg[2] == "statements"
local STMT_DIR = arg and arg[2] == "statement-floor" and arg[3]
local MONEY = arg and arg[#arg] == "money"
local prof
local journal_floor

-- "parts": wraps obj[name] (a function or method) to sum its time under label
local parts, part_order = {}, {}
local function timed(obj, name, label)
  local f = obj[name]
  if type(f) ~= "function" then return end
  local p = { wall = 0, cpu = 0, n = 0, depth = 0 }
  parts[label] = p
  part_order[#part_order + 1] = label
  obj[name] = function(...)
    p.depth = p.depth + 1
    local t0, c0 = uv.hrtime(), os.clock()
    local r = table.pack(f(...))
    p.depth = p.depth - 1
    if p.depth == 0 then -- outermost call only (db:tx nests)
      p.wall, p.cpu, p.n = p.wall + (uv.hrtime() - t0), p.cpu + (os.clock() - c0), p.n + 1
    end
    return table.unpack(r, 1, r.n)
  end
end

local function status_kb(field)
  local f = io.open("/proc/self/status")
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s+(%d+) kB"))
end

local fake = not FLOOR_DIR and not STMT_DIR and require("tests.fake_server").start()

-- What the resident set holds at the end of a run (it has not shrunk from its peak: freed
-- heap stays mapped): anonymous memory (the C heap, where Lua's and SQLite's caches live,
-- and the libraries' written pages), of it Lua's heap, and the pages of the TLS stack
-- libcurl loads for the model client (the floor, `orket version`, maps libcrypto for
-- libpq but runs none of it). -> {anon=, lua=, tls=} KB
local function memory_parts()
  local anon, tls, name = 0, 0, nil
  for line in io.lines("/proc/self/smaps") do
    local n = line:match("^%x+%-%x+ %S+ %S+ %S+ %S+%s*(.*)$")
    if n then
      name = n
    else
      local k, v = line:match("^(%a+):%s+(%d+) kB")
      if k == "Anonymous" then anon = anon + tonumber(v) end
      if k == "Rss" and (name:find("libcurl", 1, true) or name:find("libssl", 1, true)
          or name:find("libcrypto", 1, true) or name:find("libnghttp2", 1, true)) then
        tls = tls + tonumber(v)
      end
    end
  end
  return { anon = anon, lua = collectgarbage("count"), tls = tls }
end

-- The benchmark's epic (bench/project.lua), imported.
local function project(n)
  local dir = require("bench.project").make(n, fake.url .. "/v1", { description = true, extra = MONEY and [[
local price = { input = "0.15", cached_input = "0.075", output = "0.60", currency = "USD" }
models.prices = { ["fake:tool=update_issue_status,arg_status=code_review"] = price,
  ["fake:tool=update_issue_status,arg_status=done"] = price }
budgets.cost_per_run = "1000000 USD"
]] or nil })
  local store = require "orket.store"
  local db = assert(store.open(dir .. "/.orket/orket.db"))
  assert(require("orket.import").import(db, dir))
  db:close()
  return dir
end

-- The journal's own cost, the floor under the overhead figure: the rows the run just wrote
-- (its events, turns and tool calls, and one cards update per board move) written again
-- into a fresh store of the same schema, one commit per turn (the fewest the journal
-- allows: a turn's model response is on disk before its tool effects, and each turn's
-- results before the next turn's request), with no orchestration at all. -> us per turn
journal_floor = function(dir, with_git)
  local store = require "orket.store"
  local src = assert(store.open(dir .. "/.orket/orket.db", { create = false }))
  local fdir = io.popen("mktemp -d /tmp/orket-bench.XXXXXX"):read("l")
  local dst = assert(store.open(fdir .. "/orket.db"))
  local cards = assert(src:rows("SELECT * FROM cards ORDER BY rowid"))
  -- one INSERT text per table (all its columns, NULLs included), as the engine's are
  local sqls, columns = {}, {}
  local function insert(db, tbl, row)
    if not sqls[tbl] then
      local cols, qs = {}, {}
      for _, c in ipairs(assert(src:rows("SELECT name FROM pragma_table_info(?) ORDER BY cid", tbl))) do
        cols[#cols + 1], qs[#qs + 1] = c.name, "?"
      end
      columns[tbl] = cols
      sqls[tbl] = string.format("INSERT INTO %s (%s) VALUES (%s)", tbl, table.concat(cols, ", "), table.concat(qs, ", "))
    end
    local vals = { n = #columns[tbl] }
    for i, c in ipairs(columns[tbl]) do vals[i] = row[c] end
    return sqls[tbl], vals
  end
  -- the board as it was before the run: every card ready, as imported
  assert(dst:tx(function()
    for _, c in ipairs(cards) do
      c.status, c.wait_reason, c.worked_by = "ready", nil, nil
      local sql, vals = insert(dst, "cards", c)
      assert(dst:run(sql, table.unpack(vals, 1, vals.n)))
    end
    for _, r in ipairs(assert(src:rows("SELECT * FROM runs"))) do
      local sql, vals = insert(dst, "runs", r)
      assert(dst:run(sql, table.unpack(vals, 1, vals.n)))
    end
    return true
  end))
  -- each commit's statements, built before the clock starts: everything up to a turn_end
  local turns_by_id, calls_by_turn = {}, {}
  for _, t in ipairs(assert(src:rows("SELECT * FROM turns"))) do turns_by_id[t.id] = t end
  for _, c in ipairs(assert(src:rows("SELECT * FROM tool_calls ORDER BY id"))) do
    local l = calls_by_turn[c.turn_id] or {}
    calls_by_turn[c.turn_id] = l
    l[#l + 1] = c
  end
  local commits, cur, nturns, turn_of = {}, {}, 0, {}
  local function add(tbl, row)
    local sql, vals = insert(dst, tbl, row)
    cur[#cur + 1] = { sql, vals }
  end
  for _, ev in ipairs(assert(src:rows("SELECT * FROM events ORDER BY id"))) do
    add("events", ev)
    local data = cjson.decode(ev.data)
    if ev.kind == "turn" and turns_by_id[data.id] then
      add("turns", turns_by_id[data.id])
      for _, c in ipairs(calls_by_turn[data.id] or {}) do add("tool_calls", c) end
    elseif ev.kind == "transition" and data.to then
      cur[#cur + 1] = { "UPDATE cards SET status = ?, updated_at = ? WHERE id = ?", { data.to, ev.at, ev.card_id, n = 3 } }
    elseif ev.kind == "turn_end" then
      commits[#commits + 1], cur, nturns = cur, {}, nturns + 1
      turn_of[#commits] = { card = ev.card_id, first = data.turn == 1 }
    end
  end
  src:close()
  -- with_git: each turn's git steps too, through orket.c.gitrepo alone in a fresh
  -- repository, before its commit (their fsyncs and the journal's share the disk, as in
  -- the run): the coder's turn makes the card's worktree and commits (the bench's turns
  -- change no file); the reviewer's finds it, commits, merges into main on done, commits
  -- at its end and removes the worktree
  local repo, who
  if with_git then
    uv.fs_mkdir(fdir .. "/ws", 493)
    who = { name = "orket", email = "orket@orket.invalid" }
    repo = assert(require("orket.c.gitrepo").init(fdir .. "/ws", who))
  end
  local function commit(card, turn)
    assert(repo:commit(card, { name = who.name, email = who.email, message = card .. ": turn " .. turn,
      turn = "1/" .. card .. "/" .. turn }))
  end
  local t0, c0 = uv.hrtime(), cpu_now()
  for i, stmts in ipairs(commits) do
    local card = turn_of[i].card
    if repo and card then
      assert(repo:worktree(card, fdir .. "/wt/" .. card))
      if turn_of[i].first then
        commit(card, 1)
      else
        commit(card, 2)
        assert(repo:merge_to_main(card, who))
        commit(card, 2)
        assert(repo:worktree_remove(card))
      end
    end
    assert(dst:tx(function()
      for _, st in ipairs(stmts) do assert(dst:run(st[1], table.unpack(st[2], 1, st[2].n))) end
      return true
    end))
  end
  local us = (uv.hrtime() - t0) / 1e3 / math.max(1, nturns)
  local cpu = (cpu_now() - c0) / math.max(1, nturns)
  local nstmts = 0
  for _, stmts in ipairs(commits) do nstmts = nstmts + #stmts end
  dst:close()
  if repo then repo:close() end
  os.execute("rm -rf '" .. fdir .. "'")
  return us, nstmts / math.max(1, nturns), cpu
end

-- nogit: the workspace as a plain folder (setup's scratch workspace), no repository, so
-- no git step: the orchestration alone, over the journal floor alone
-- capture (the statements mode): the store's calls are logged (bench/statements.lua) into
-- DIR/statements.lua, and the store as imported kept as DIR/before.db to make them again on
local function run(n, conc, nogit, capture)
  local dir = project(n)
  local log, stop_capture
  if capture then
    assert(not uv.fs_stat(dir .. "/.orket/orket.db-wal"), "statements: the imported store left a WAL")
    assert(uv.fs_copyfile(dir .. "/.orket/orket.db", dir .. "/before.db"))
    local probe = assert(require("orket.c.store").open(dir .. "/probe.db", true))
    log, stop_capture = require("bench.statements").capture(getmetatable(probe).__index)
    probe:close()
  end
  local turns, tools, failures = 0, 0, 0
  local e = assert(require("orket.engine.setup").open(dir, { concurrency = conc,
    workspace = nogit and (dir .. "/workspace") or nil, emit = function(ev)
    if ev.type == "turn_end" then turns = turns + 1 end
    if ev.type == "tool" then
      tools = tools + 1
      if not ev.ok then failures = failures + 1 end
    end
  end }))
  -- the engine's model client is fixed once it is made: its chat is timed in place
  local client, model_ns, model_cpu = e.llm, 0, 0
  local chat = client.chat
  client.chat = function(self, req)
    if prof then prof:pause() end
    local t0, c0 = uv.hrtime(), cpu_now()
    local r, err, class = chat(self, req)
    model_ns = model_ns + (uv.hrtime() - t0)
    -- at concurrency 1 nothing else runs meanwhile: this is the model client's own CPU
    model_cpu = model_cpu + (cpu_now() - c0)
    if prof then prof:resume() end
    return r, err, class
  end
  if PARTS then
    timed(e.db, "tx", "db:tx (outermost: step commits and others)")
    -- the outermost transactions' BEGIN + COMMIT alone: the tx minus the function inside
    local inner_tx, outer_tx = { wall = 0, cpu = 0, n = 0, depth = 0 }, e.db.tx
    parts["  BEGIN + COMMIT of those"] = inner_tx
    part_order[#part_order + 1] = "  BEGIN + COMMIT of those"
    e.db.tx = function(db, fn, ...)
      if inner_tx.depth > 0 then return outer_tx(db, fn, ...) end
      local t0, c0 = uv.hrtime(), os.clock()
      local fw, fc = 0, 0
      inner_tx.depth = 1
      local r = table.pack(outer_tx(db, function(...)
        local t1, c1 = uv.hrtime(), os.clock()
        local rr = table.pack(fn(...))
        fw, fc = uv.hrtime() - t1, os.clock() - c1
        return table.unpack(rr, 1, rr.n)
      end, ...))
      inner_tx.depth = 0
      inner_tx.wall = inner_tx.wall + (uv.hrtime() - t0) - fw
      inner_tx.cpu = inner_tx.cpu + (os.clock() - c0) - fc
      inner_tx.n = inner_tx.n + 1
      return table.unpack(r, 1, r.n)
    end
    -- a run's methods are the Run class's (orket.engine.run), found before the engine's
    local Run = require("orket.engine.run").Run
    timed(Run, "prepare", "run:prepare (a card's next turn, in the round)")
    timed(Run, "begin_records", "begin_records (claim, turn_begin)")
    timed(Run, "end_turn_records", "end_turn_records (turn_end)")
    timed(require("orket.engine.recorded"), "turns", "  recorded.turns (prepare)")
    timed(require("orket.engine.verify"), "prepare", "  verify.prepare")
    timed(require("orket.engine.pull_request"), "prepare", "  pull_request.prepare")
    timed(e.routing, "choose", "  routing:choose")
    timed(e.db, "event", "db:event")
    timed(e.db, "record_turn", "record_turn")
    timed(e.db, "record_tool_call", "record_tool_call")
    timed(e.db, "record_gate_decision", "record_gate_decision")
    timed(require("orket.gate"), "check", "gate.check (Lua + C)") -- what the engine's gate calls
    timed(package.loaded["orket.c.gate"], "check", "cgate.check")
    timed(e.tools, "run", "tools:run (a script's handler)")
    timed(e.board, "transition", "board:transition")
    timed(e.board, "_follow", "  board:_follow (the epic follows its issues)")
    local gitwork = require "orket.engine.gitwork"
    timed(gitwork, "enter", "gitwork.enter (card's worktree)")
    timed(gitwork, "commit", "gitwork.commit (turn's files)")
    timed(gitwork, "leave", "gitwork.leave")
    timed(gitwork, "mover", "gitwork.mover")
    timed(require("orket.engine.roles"), "messages", "roles.messages (role script)")
    local sched = require "orket.engine.scheduler"
    local mk = sched.view
    sched.view = function(...)
      local v = mk(...)
      timed(v, "refresh", "scheduler refresh")
      return v
    end
  end
  local id = assert(e:start("B"))
  if PROFILE then
    prof = require("orket.profile").start { vm = arg[2] == "profile-vm", alloc = arg[2] == "profile-alloc" }
  end
  if log then log.mark() end
  local c0 = cpu_now()
  local t0 = uv.hrtime()
  local status = e:execute(id)
  local wall_ns = uv.hrtime() - t0
  local cpu = cpu_now() - c0
  if log then log.stop() end
  if prof then prof:stop() end
  local done = e.db:row("SELECT count(*) AS n FROM cards WHERE parent = 'B' AND status = 'done'").n
  local page = e.db:row("PRAGMA page_size").page_size
  local db_kb = page * e.db:row("PRAGMA page_count").page_count / 1024
  local wal = uv.fs_stat(dir .. "/.orket/orket.db-wal")
  if wal then db_kb = db_kb + wal.size / 1024 end
  local cs = e.db:row("PRAGMA cache_size").cache_size -- negative: KiB; positive: pages
  local cache_kb = cs < 0 and -cs or cs * page / 1024
  local mem = memory_parts()
  e.close_all()
  if log then
    stop_capture()
    require("bench.statements").save(log, dir .. "/statements.lua")
  end
  -- the concurrency-1 store is kept for the journal floor (measured in a process of its own)
  local keep = conc == 1 and not PARTS and not PROFILE
  if not keep then os.execute("rm -rf '" .. dir .. "'") end
  return { status = status, turns = turns, tools = tools, failures = failures, done = done,
    wall_s = wall_ns / 1e9, model_s = model_ns / 1e9, cpu_us = cpu, model_cpu_us = model_cpu, dir = keep and dir or nil,
    db_kb = db_kb, cache_kb = cache_kb, mem = mem }
end

local function report(label, r, conc)
  local over_us = (r.wall_s - r.model_s) * 1e6 / math.max(1, r.turns)
  print(string.format("%-16s %s: %d/%d done, %d turns, %d tool calls (%d failed) in %.2f s: %.0f turns/s",
    label, r.status, r.done, N, r.turns, r.tools, r.failures, r.wall_s, r.turns / r.wall_s))
  if conc == 1 then
    print(string.format("%-16s overhead per turn (excluding model time %.2f s): %.0f us", "", r.model_s, over_us))
    -- CPU time is steadier than wall time on a loaded machine; it includes the model
    -- client's own work (HTTP, JSON), which the overhead figure leaves out
    print(string.format("%-16s CPU per turn (this process, model client included): %.0f us", "",
      r.cpu_us / math.max(1, r.turns)))
  end
end

local ROUNDS = 3

-- Peak RSS per run: VmHWM is reset before each (clear_refs 5), so neither the journal
-- floor's reading of a whole journal nor an earlier run counts in a later one.
local function reset_peak()
  local f = io.open("/proc/self/clear_refs", "w")
  if f then
    f:write("5")
    f:close()
  end
end

-- The memory floor: the peak RSS of `orket version` (the runtime, Lua and the libraries
-- loaded, nothing done; GNU time's maximum resident size) plus the page cache SQLite may
-- keep for the board's store: the database and its WAL as the run left them, capped at
-- the connection's cache_size. -> KB, or nil without /usr/bin/time
local function version_kb()
  local p = io.popen("/usr/bin/time -f 'maxrss %M' '" .. (os.getenv("ORKET_BIN") or "build/orket")
    .. "' version 2>&1 >/dev/null")
  local out = p:read("a")
  p:close()
  return tonumber(out:match("maxrss (%d+)"))
end

local sorted = require("bench.stats").sorted
local spread = require("bench.stats").line -- (list, fmt) -> "min X median Y max Z"

if FLOOR_DIR then
  local us, per, cpu = journal_floor(FLOOR_DIR)
  local git_us, git_cpu = 0, 0
  if arg[4] ~= "nogit" then git_us, _, git_cpu = journal_floor(FLOOR_DIR, true) end
  print(string.format("%.3f %.3f %.3f %.3f %.3f", us, git_us, per, git_cpu, cpu))
  return
end

if STMT_DIR then
  local st = require "bench.statements"
  local path = os.tmpname()
  assert(uv.fs_copyfile(STMT_DIR .. "/before.db", path, { excl = false }))
  local db = assert(require("orket.store").open(path, { create = false }))
  local log = dofile(STMT_DIR .. "/statements.lua")
  local turns = assert(tonumber(arg[4]), "statement-floor DIR TURNS")
  local cpu = st.replay(db.conn, log, cpu_now)
  -- the calls made again wrote what the run wrote: the same journal, records and board
  local run_db = assert(require("orket.store").open(STMT_DIR .. "/.orket/orket.db", { create = false }))
  for _, q in ipairs({ "SELECT count(*) AS n FROM events", "SELECT count(*) AS n FROM turns",
    "SELECT count(*) AS n FROM tool_calls", "SELECT count(*) AS n FROM cards WHERE status = 'done'" }) do
    local a, b = assert(run_db:row(q)).n, assert(db:row(q)).n
    if a ~= b then error(string.format("statements: %s gave %d after the run, %d after the replay", q, a, b), 0) end
  end
  run_db:close()
  db:close()
  os.remove(path)
  os.remove(path .. "-wal")
  os.remove(path .. "-shm")
  local n, reads, writes, txs = st.counts(log)
  print(string.format("%.3f %.3f %.3f %.3f %.3f", cpu / turns, n / turns, reads / turns, writes / turns, txs / turns))
  return
end

-- statement_floor(dir, turns) in a process of its own -> CPU us a turn, statements, reads,
-- writes and transactions a turn
local function statement_floor_apart(dir, turns)
  local p = io.popen(string.format("'%s' lua '%s' %d statement-floor '%s' %d", os.getenv("ORKET_BIN") or "build/orket",
    package.orket_home .. "/bench/engine.lua", N, dir, turns))
  local out = p:read("a")
  p:close()
  local f = {}
  for x in out:gmatch("%S+") do f[#f + 1] = tonumber(x) end
  if #f ~= 5 then error("the statement floor failed: " .. out, 0) end
  return table.unpack(f)
end

-- journal_floor(dir) in a process of its own -> us per turn without and with git, writes a
-- turn, CPU us per turn with git, CPU us per turn without (nogit: the git floor is skipped)
local function journal_floor_apart(dir, nogit)
  local p = io.popen(string.format("'%s' lua '%s' %d journal-floor '%s'%s", os.getenv("ORKET_BIN") or "build/orket",
    package.orket_home .. "/bench/engine.lua", N, dir, nogit and " nogit" or ""))
  local out = p:read("a")
  p:close()
  local us, git_us, per, git_cpu, cpu = out:match("^(%S+) (%S+) (%S+) (%S+) (%S+)")
  if not us then error("the journal floor failed: " .. out, 0) end
  return tonumber(us), tonumber(git_us), tonumber(per), tonumber(git_cpu), tonumber(cpu)
end

-- The statement floor of a no-git run like r0 (whose CPU a turn and journal floor are
-- known): a second run whose store calls are captured (the capture's wrappers cost its CPU,
-- so only its log is used), made again apart. -> the statement floor above the journal
-- floor, the run above the statement floor (CPU us a turn)
local function statement_round(round, r0, nfloor_cpu)
  local own = (r0.cpu_us - r0.model_cpu_us) / math.max(1, r0.turns)
  collectgarbage()
  local rc = run(N, 1, true, true)
  assert(rc.turns == r0.turns, "statements: the captured run made another number of turns")
  local scpu, nst, nr, nw, ntx = statement_floor_apart(rc.dir, rc.turns)
  os.execute("rm -rf '" .. rc.dir .. "'")
  print(string.format("round %d, no git: CPU a turn: the run %.0f us (model client excluded), its statement floor "
    .. "%.0f us (%.1f store calls a turn: %.1f reads, %.1f writes; %.1f transactions), the journal floor %.0f us",
    round, own, scpu, nst, nr, nw, ntx, nfloor_cpu))
  return scpu - nfloor_cpu, own - scpu
end

local function statement_summary(sabove, rabove)
  print(string.format("no git: the statement floor's CPU above the journal floor's: %s us a turn; the run's above "
    .. "the statement floor's: %s", spread(sabove, "%.0f"), spread(rabove, "%.0f")))
end

local t = orket.spawn(function()
  if NOGIT_ONLY then
    local r0 = run(N, 1, true)
    local nfloor, _, _, _, nfloor_cpu = journal_floor_apart(r0.dir, true)
    os.execute("rm -rf '" .. r0.dir .. "'")
    local over = (r0.wall_s - r0.model_s) * 1e6 / math.max(1, r0.turns)
    local own = (r0.cpu_us - r0.model_cpu_us) / math.max(1, r0.turns)
    print(string.format("no git: floor %.0f us, overhead %.0f us: %.0f above, %.2fx; CPU %.0f us, floor's %.0f: %.0f above, %.2fx",
      nfloor, over, over - nfloor, over / nfloor, own, nfloor_cpu, own - nfloor_cpu, own / nfloor_cpu))
    return
  end
  if STATEMENTS then
    local sabove, rabove = {}, {}
    for round = 1, ROUNDS do
      collectgarbage()
      local r0 = run(N, 1, true)
      local _, _, _, _, nfloor_cpu = journal_floor_apart(r0.dir, true)
      os.execute("rm -rf '" .. r0.dir .. "'")
      sabove[round], rabove[round] = statement_round(round, r0, nfloor_cpu)
    end
    statement_summary(sabove, rabove)
    return
  end
  if PROFILE or PARTS then
    local r1 = run(N, MODE_CONC, MODE_NOGIT)
    report("concurrency " .. MODE_CONC, r1, MODE_CONC)
    if prof then
      print(prof:report(40, r1.turns))
      return
    end
    for _, label in ipairs(part_order) do
      local p = parts[label]
      print(string.format("  %-45s %7.1f us wall %7.1f us CPU per turn (%d calls)", label,
        p.wall / 1e3 / r1.turns, p.cpu * 1e6 / r1.turns, p.n))
    end
    return
  end
  -- rounds of: the run at concurrency 1, its journal floor, the run at concurrency 8
  local above, ratio, cpu_ratio, rss_ratio, cpu_above = {}, {}, {}, {}, {}
  local ng_above, ng_ratio, ng_cpu_above = {}, {}, {}
  local st_above, st_rest = {}, {}
  for round = 1, ROUNDS do
    collectgarbage()
    reset_peak()
    local r1 = run(N, 1)
    local peak1 = status_kb("VmHWM") or 0
    report("concurrency 1", r1, 1)
    local jfloor, floor, per, floor_cpu = journal_floor_apart(r1.dir)
    local gfloor = floor - jfloor
    local over = (r1.wall_s - r1.model_s) * 1e6 / math.max(1, r1.turns)
    os.execute("rm -rf '" .. r1.dir .. "'")
    -- the same run with no git step, over the journal floor alone (its own rows)
    collectgarbage()
    local r0 = run(N, 1, true)
    report("no git, conc. 1", r0, 1)
    local nfloor, _, nper, _, nfloor_cpu = journal_floor_apart(r0.dir, true)
    os.execute("rm -rf '" .. r0.dir .. "'")
    local nover = (r0.wall_s - r0.model_s) * 1e6 / math.max(1, r0.turns)
    local nown = (r0.cpu_us - r0.model_cpu_us) / math.max(1, r0.turns)
    ng_above[round], ng_ratio[round], ng_cpu_above[round] = nover - nfloor, nover / nfloor, nown - nfloor_cpu
    print(string.format("round %d, no git: journal floor %.0f us per turn (%.1f writes a turn), overhead %.0f us: %.0f us "
      .. "above the floor, %.2fx; CPU per turn without the model client's %.0f us, the floor's %.0f us: %.0f us above",
      round, nfloor, nper, nover, nover - nfloor, nover / nfloor, nown, nfloor_cpu, nown - nfloor_cpu))
    st_above[round], st_rest[round] = statement_round(round, r0, nfloor_cpu)
    collectgarbage()
    reset_peak()
    local r8 = run(N, 8)
    local peak8 = status_kb("VmHWM") or 0
    report("concurrency 8", r8, 8)
    local c1, c8 = r1.cpu_us / math.max(1, r1.turns), r8.cpu_us / math.max(1, r8.turns)
    local vkb = version_kb()
    local cache_kb = math.min(r1.db_kb, r1.cache_kb)
    local peak = math.max(peak1, peak8)
    above[round], ratio[round], cpu_ratio[round] = over - floor, over / floor, c8 / c1
    print(string.format("round %d: floor %.0f us per turn (journal %.0f: %.1f writes a turn; git steps %.0f more), overhead %.0f us: "
      .. "%.0f us above the floor, %.2fx", round, floor, jfloor, per, gfloor, over, over - floor, over / floor))
    -- CPU is steadier than wall time on a shared machine: the run's CPU per turn without the
    -- model client's (HTTP, JSON: the floor has no model) against the floor's CPU
    local own = (r1.cpu_us - r1.model_cpu_us) / math.max(1, r1.turns)
    cpu_above[round] = own - floor_cpu
    print(string.format("round %d: CPU per turn at concurrency 1 %.0f us, at 8 %.0f us: ratio %.2f", round, c1, c8, c8 / c1))
    print(string.format("round %d: CPU per turn at concurrency 1 without the model client's %.0f us, the floor's %.0f us "
      .. "(journal + git): %.0f us above, %.2fx", round, own, floor_cpu, own - floor_cpu, own / floor_cpu))
    if vkb then
      rss_ratio[round] = peak / (vkb + cache_kb)
      print(string.format("round %d: peak RSS %.1f MB (concurrency 1 %.1f, 8 %.1f); floor %.1f MB (orket version %.1f MB "
        .. "+ page cache %.1f MB: the store %.1f MB capped at cache_size %.1f MB): ratio %.2f", round, peak / 1024,
        peak1 / 1024, peak8 / 1024, (vkb + cache_kb) / 1024, vkb / 1024, cache_kb / 1024, r1.db_kb / 1024,
        r1.cache_kb / 1024, rss_ratio[round]))
      print(string.format("round %d: at the end of the concurrency-1 run: anonymous %.1f MB (Lua's heap %.1f MB), "
        .. "libcurl with libssl and libcrypto %.1f MB (libcrypto is also mapped in the floor)", round,
        r1.mem.anon / 1024, r1.mem.lua / 1024, r1.mem.tls / 1024))
    end
  end
  print(string.format("overhead above the floor (journal + git, us per turn): %s; target <= 150 -> %s", spread(above, "%.0f"),
    sorted(above)[(ROUNDS + 1) // 2] <= 150 and "met" or "MISSED"))
  print(string.format("overhead / floor: %s", spread(ratio, "%.2f")))
  print(string.format("CPU above the floor's CPU (us per turn, concurrency 1, model client excluded): %s",
    spread(cpu_above, "%.0f")))
  print(string.format("no git: overhead above the journal floor (us per turn): %s; / floor: %s; CPU above the floor's: %s",
    spread(ng_above, "%.0f"), spread(ng_ratio, "%.2f"), spread(ng_cpu_above, "%.0f")))
  statement_summary(st_above, st_rest)
  print(string.format("CPU per turn, concurrency 8 / 1: %s; target <= 1 -> %s", spread(cpu_ratio, "%.2f"),
    sorted(cpu_ratio)[(ROUNDS + 1) // 2] <= 1 and "met" or "MISSED"))
  if #rss_ratio > 0 then
    print(string.format("peak RSS / (orket version + page cache): %s; target <= 1.2 -> %s", spread(rss_ratio, "%.2f"),
      sorted(rss_ratio)[(#rss_ratio + 1) // 2] <= 1.2 and "met" or "MISSED"))
  else
    print("peak RSS floor: no /usr/bin/time here to measure `orket version`")
  end
end)
local ok, err = t:join()
fake.stop()
if not ok then error(err, 0) end
local _ = rt
