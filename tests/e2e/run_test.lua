-- orket run end to end on the notes example with the scripted model: the epic to done, the
-- transcript, exit codes, and kill -9 at every named fault point followed by 'orket resume'
-- ending with exactly the board of an uninterrupted run.
local H = require "tests.helpers"
local cjson = require "cjson"

local function project() return H.example("notes") end

local state = H.board_state -- what "the same board" means

describe("orket run", function()
  after_each(H.cleanup)

  it("finishes the example epic, and orket log and orket runs tell the story", function()
    local dir = project()
    -- every answer takes 50 ms, so NOTES-2's and NOTES-3's turns overlap
    local script = H.read(dir .. "/script.lua")
    H.write(dir .. "/script.lua", (script:gsub("return { rules", "for _, r in ipairs(rules) do r.reply.delay_ms = 50 end\nreturn { rules", 1)))
    local r = H.orket("run NOTES", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local last = cjson.decode(r.stdout:match("([^\n]+)\n$"))
    assert.equal("run_end", last.type)
    assert.equal("done", last.status)
    assert.matches("NOTES%-2 done r1 {senior_developer: Wrote store.lua. | integrity_guard: store.lua does not reject", state(dir))
    local log = H.orket("log 1", { cwd = dir })
    assert.equal(0, log.status, log.stderr)
    assert.matches("== NOTES%-2 turn 2: integrity_guard as integrity_guard %(review%)", log.stdout)
    assert.matches("%[call%] update_issue_status", log.stdout)
    assert.matches("NOTES%-2%s+code_review %-> in_progress by integrity_guard", log.stdout)
    -- NOTES-2 and NOTES-3 work at once and their steps interleave in the journal: each step
    -- is printed under its own card's header
    local current, files, ends = nil, {}, {}
    for line in log.stdout:gmatch("[^\n]+") do
      if line:match("^== ") then ends[#ends + 1] = 0 end
      if line:match("^%s+turn ended") then ends[#ends] = ends[#ends] + 1 end
      current = line:match("^== (NOTES%-%d) turn") or current
      -- the files each card's calls write, and those its comments name
      local path = line:match('^%s+%[call%] write_file .*"path":"([^"]+)"')
        or line:match('^%s+%[call%] add_issue_comment .*"body":"Wrote ([%w_]+%.%w+)')
      if path then files[#files + 1] = current .. ":" .. path end
    end
    for _, f in ipairs(files) do
      assert.truthy(f:match("^NOTES%-1:schema") or f:match("^NOTES%-2:store") or f:match("^NOTES%-3:list")
        or f:match("^NOTES%-4:README"), table.concat(files, " "))
    end
    assert.is_true(#files >= 8, table.concat(files, " "))
    for i, n in ipairs(ends) do assert.is_true(n <= 1, "header " .. i .. " has " .. n .. " turn ends") end
    -- messages are clipped at 400 characters, and --full shows them whole
    local _, clipped = log.stdout:gsub("%.%.%. %(%d+ bytes%)\n", "")
    assert.is_true(clipped > 0)
    local full = H.orket("log 1 --full", { cwd = dir }).stdout
    assert.is_true(#full > #log.stdout + clipped * 100, #full .. " vs " .. #log.stdout)
    assert.is_true(select(2, full:gsub("%.%.%.\n", "")) < clipped)
    local runs = H.orket("runs", { cwd = dir })
    assert.matches("\n%s+1  done", runs.stdout)
    -- JSON output writes "/" plain (not "\/")
    runs = H.orket("runs --json", { cwd = dir })
    assert.matches('^{"format":"orket.runs/1","runs":%[{"ended_at":', runs.stdout)
    assert.is_nil(runs.stdout:find("\\/", 1, true))
    assert.matches('"format":"orket.board/1"', H.orket("board --json", { cwd = dir }).stdout, 1, true)
    assert.equal(2, H.orket("run", { cwd = dir }).status)
    local bad = H.orket("run NOPE", { cwd = dir })
    assert.equal(2, bad.status) -- a target that names no card: bad input
    assert.matches("NOPE", bad.stderr)
  end)

  it("refuses a new run on cards a killed run left a turn half done on, and not otherwise", function()
    -- killed after a tool's effect, before its record: NOTES-1's turn is half done
    local dir = project()
    assert.equal(137, H.orket("run NOTES", { cwd = dir, env = { ORKET_FAULT = "before_effect:1" } }).status)
    for _, target in ipairs { "NOTES", "NOTES-1" } do
      local again = H.orket("run " .. target, { cwd = dir })
      assert.equal(1, again.status)
      assert.matches("run 1 %(NOTES%) did not finish %(it was killed%): continue it with 'orket resume 1'", again.stderr)
    end
    -- killed before the first model call answered: no turn began, so nothing is half done
    local fresh = project()
    assert.equal(137, H.orket("run NOTES", { cwd = fresh, env = { ORKET_FAULT = "before_model:1" } }).status)
    local r = H.orket("run NOTES", { cwd = fresh })
    assert.equal(0, r.status, r.stderr)
  end)

  -- A resumed run is worked again: its row said the end it had before (stalled) while the
  -- resume worked it, and still after that resume was killed
  it("shows a resumed run as running while it is worked, and killed when its resume dies", function()
    local dir = project()
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "budgets = { tokens_per_run = 1500 }\n")
    local r = H.orket("run NOTES", { cwd = dir })
    assert.equal(3, r.status, r.stderr)
    assert.matches('"status":"stalled"', H.orket("runs --json", { cwd = dir }).stdout, 1, true)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "budgets = { tokens_per_run = 0 }\n")
    r = H.orket("resume", { cwd = dir, env = { ORKET_FAULT = "turn_end:1" } })
    assert.equal(137, r.status, r.stderr)
    local runs = H.orket("runs --json", { cwd = dir }).stdout
    assert.matches('"status":"killed"', runs, 1, true)
    assert.is_nil(runs:find('"ended_at":"', 1, true), runs)
    assert.matches("\n%s+1%s+killed%s+NOTES", H.orket("runs", { cwd = dir }).stdout)
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches('"status":"done"', H.orket("runs --json", { cwd = dir }).stdout, 1, true)
  end)

  it("orket log of a killed run shows its own board moves, not a later run's", function()
    local dir = project()
    -- run 1 is killed once NOTES-1 is done: it never ends, so it has no end time
    local r = H.orket("run NOTES-1", { cwd = dir, env = { ORKET_FAULT = "turn_end:2" } })
    assert.equal(137, r.status, r.stderr)
    -- stored as running, but no process holds the run lock: runs and log say killed
    assert.matches("\n%s+1%s+killed%s+NOTES%-1", H.orket("runs", { cwd = dir }).stdout)
    assert.matches('"status":"killed"', H.orket("runs --json", { cwd = dir }).stdout, 1, true)
    assert.matches("^run 1: issue NOTES%-1, killed,", H.orket("log 1", { cwd = dir }).stdout)
    r = H.orket("run NOTES-3", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local function moves(run)
      local log = H.orket("log " .. run, { cwd = dir })
      assert.equal(0, log.status, log.stderr)
      return assert(log.stdout:match("\ntransitions:\n(.*)$"), log.stdout)
    end
    local first = moves(1)
    assert.matches("NOTES%-1%s+code_review %-> done by integrity_guard", first)
    assert.is_nil(first:find("NOTES-3", 1, true), first)
    local second = moves(2)
    assert.matches("NOTES%-3%s+code_review %-> done by integrity_guard", second)
    assert.is_nil(second:find("NOTES-1", 1, true), second)
  end)

  it("resumes after kill -9 at every fault point with the uninterrupted run's board", function()
    local ref = project()
    assert.equal(0, H.orket("run NOTES", { cwd = ref }).status)
    local want = state(ref)
    -- the example makes 5 write_file calls: their effect points are reached fewer times
    local points = { before_model = { 1, 4, 9 }, after_model = { 1, 4, 9 }, before_tool = { 1, 4, 9 },
      after_tool = { 1, 4, 9 }, before_effect = { 1, 3, 5 }, after_effect = { 1, 3, 5 }, turn_end = { 1, 4, 9 } }
    for _, point in ipairs { "before_model", "after_model", "before_tool", "after_tool", "before_effect",
        "after_effect", "turn_end" } do
      for _, n in ipairs(points[point]) do
        local dir = project()
        local r = H.orket("run NOTES", { cwd = dir, env = { ORKET_FAULT = point .. ":" .. n } })
        assert.equal(137, r.status, point .. ":" .. n .. " was not killed: " .. r.stderr)
        local tries = 0
        repeat
          r = H.orket("resume", { cwd = dir })
          tries = tries + 1
        until r.status ~= 130 or tries > 3
        assert.equal(0, r.status, point .. ":" .. n .. ": " .. r.stderr)
        assert.equal(want, state(dir), point .. ":" .. n)
      end
    end
  end)

  it("resumes a kill right after a budget blocks a card, with the uninterrupted run's board", function()
    -- turns_per_card = 1: NOTES-2, rejected once, needs two work turns and is blocked by the
    -- scheduling round before its rework; after_transition fires once that block is durable
    local function budget_project()
      local dir = project()
      local f = assert(io.open(dir .. "/orket.lua", "a"))
      f:write("budgets = { turns_per_card = 1 }\n")
      f:close()
      return dir
    end
    local ref = budget_project()
    assert.equal(1, H.orket("run NOTES", { cwd = ref }).status)
    local want = state(ref)
    assert.matches("NOTES%-2 blocked", want)
    local dir = budget_project()
    local r = H.orket("run NOTES --json", { cwd = dir, env = { ORKET_FAULT = "after_transition:1" } })
    assert.equal(137, r.status, r.stderr)
    -- the event went out after the commit: the block it announced is on the board
    assert.matches('"type":"card_blocked"', r.stdout)
    assert.matches("NOTES%-2 blocked", state(dir))
    r = H.orket("resume", { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.equal(want, state(dir))
  end)

  it("stops gracefully on SIGTERM, SIGINT and SIGHUP mid model call (exit 130), and resume finishes the run", function()
    local ref = project()
    assert.equal(0, H.orket("run NOTES", { cwd = ref }).status)
    local want = state(ref)
    for _, sig in ipairs { "TERM", "INT", "HUP" } do
      local dir = project()
      -- NOTES-3's first model call takes 60 s: the signal arrives while it is in flight
      local script = H.read(dir .. "/script.lua")
      H.write(dir .. "/script.lua", script:gsub("local rules = {", [[local rules = {
  { role = "coder", card = "NOTES-3", match = "^Issue ", reply = { delay_ms = 60000, tool_calls = {
    call("write_file", { path = "list.lua", content = "return function(db) return db end\n" }),
    call("add_issue_comment", { body = "Wrote list.lua." }) } } },]], 1))
      local sh = string.format("cd %s && { %s run NOTES --json >out.jsonl 2>err.txt & pid=$!; "
        .. "for i in $(seq 1 400); do grep -Eq 'turn_start.*NOTES-3|NOTES-3.*turn_start' out.jsonl && break; sleep 0.05; done; "
        .. "sleep 0.3; kill -%s $pid; wait $pid; echo $?; } 2>/dev/null", H.quote(dir), H.quote(H.BIN), sig)
      local p = io.popen(sh)
      local status = tonumber(p:read("a"):match("(%d+)%s*$"))
      p:close()
      assert.equal(130, status, sig .. ": " .. tostring(H.read(dir .. "/err.txt")))
      local events = {}
      for line in H.read(dir .. "/out.jsonl"):gmatch("[^\n]+") do events[#events + 1] = cjson.decode(line) end
      local last = events[#events]
      assert.equal("run_end", last.type, sig)
      assert.equal("interrupted", last.status, sig)
      -- the call was cancelled, not waited for: NOTES-3's turn started, and no response of
      -- it was ever recorded
      local started = false
      for _, ev in ipairs(events) do started = started or (ev.type == "turn_start" and ev.card == "NOTES-3") end
      assert.is_true(started, sig .. ": the signal came before NOTES-3's turn")
      for _, ev in ipairs(events) do
        assert.is_false(ev.type == "model" and ev.card == "NOTES-3", sig .. ": NOTES-3's model call completed")
      end
      assert.not_matches("== NOTES%-3 turn 1", H.orket("log 1", { cwd = dir }).stdout)
      assert.matches("\n%s+1%s+interrupted%s+NOTES", H.orket("runs", { cwd = dir }).stdout)
      -- the operator puts the normal script back; resume ends with the uninterrupted board
      H.write(dir .. "/script.lua", script)
      local r = H.orket("resume", { cwd = dir })
      assert.equal(0, r.status, sig .. ": " .. r.stderr)
      assert.equal(want, state(dir), sig)
    end
  end)

  it("stops on SIGTERM even when no turn waits on the loop (a scripted model answering at once)", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
    H.write(dir .. "/orket.lua", [[
models = { default = "scripted:s", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
limits = { calls_run = 100000 }
]])
    H.write(dir .. "/script.lua", [[
local function status(s) return { tool_calls = { { name = "update_issue_status", arguments = { status = s } } } } end
return { rules = { { role = "coder", reply = status("code_review") }, { role = "integrity_guard", reply = status("done") } } }
]])
    local issues = {}
    for i = 1, 2000 do issues[i] = { id = "B-" .. i, summary = "Issue " .. i, seat = "senior_developer" } end
    H.write(dir .. "/epics/b.json", cjson.encode { id = "B", name = "Big", issues = issues })
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local sh = string.format("cd %s && { %s run B --json >out.jsonl 2>err.txt & pid=$!; "
      .. "for i in $(seq 1 400); do grep -q turn_end out.jsonl && break; sleep 0.01; done; "
      .. "kill -TERM $pid; wait $pid; echo $?; } 2>/dev/null", H.quote(dir), H.quote(H.BIN))
    local p = io.popen(sh)
    local status = tonumber(p:read("a"):match("(%d+)%s*$"))
    p:close()
    assert.equal(130, status, H.read(dir .. "/err.txt"))
    local last = cjson.decode(H.read(dir .. "/out.jsonl"):match("([^\n]+)\n$"))
    assert.same({ "run_end", "interrupted" }, { last.type, last.status })
  end)

  -- the full disk is the SQLite file's (a small file system under .orket/); a PostgreSQL
  -- server's disk is not the test's to fill
  local sqlite_it = require("tests.backends").name() == "sqlite" and it
    or function(name) pending(name .. " [SQLite only: its file's own failures]") end
  sqlite_it("ends a run failed, once, when the journal cannot be written (a full disk), and resume carries on", function()
    local ref = project()
    assert.equal(0, H.orket("run NOTES", { cwd = ref }).status)
    local want = state(ref)
    -- the store on a 2 MB file system filled up to leave this much room (KB): the journal
    -- runs out at different steps of the run, in a turn's middle and at its end
    for _, free in ipairs { 100, 180, 260, 340 } do
      local dir = project()
      local store = dir .. "/.orket"
      os.execute("cp -a " .. H.quote(store) .. " " .. H.quote(dir .. "/store.bak"))
      if not os.execute("mount -t tmpfs -o size=2m tmpfs " .. H.quote(store) .. " 2>/dev/null") then
        io.write("\n  skipped: cannot mount a small tmpfs here\n")
        return pending("skipped: cannot mount a small tmpfs here")
      end
      os.execute("cp -a " .. H.quote(dir .. "/store.bak") .. "/. " .. H.quote(store))
      os.execute(string.format("cd %s && dd if=/dev/zero of=filler bs=1k count=$(($(df -k --output=avail . | tail -1) - %d)) "
        .. "2>/dev/null", H.quote(store), free))
      -- (a run that loops on its failing journal is killed after 60 s and fails the test)
      local r = H.orket("run NOTES --json", { cwd = dir, wrap = "timeout -s KILL 60" })
      local events = {}
      for line in r.stdout:gmatch("[^\n]+") do events[#events + 1] = cjson.decode(line) end
      -- then the space comes back: the store copied back to the real disk
      os.remove(store .. "/filler")
      os.execute("cp -a " .. H.quote(store) .. "/. " .. H.quote(dir .. "/store.full"))
      os.execute("umount " .. H.quote(store))
      os.execute("cp -a " .. H.quote(dir .. "/store.full") .. "/. " .. H.quote(store))
      local why = "free " .. free .. " KB"
      assert.equal(1, r.status, why .. ": " .. r.stderr)
      local last = events[#events]
      assert.same({ "run_end", "failed" }, { last.type, last.status }, why)
      assert.matches("^the journal could not be written %(.*full.*%); once the store can be written", last.reason)
      for _, ev in ipairs(events) do
        -- no card is blocked for the journal's failure: a resume takes its turn up again
        assert.is_false(ev.type == "card_blocked", why .. ": " .. tostring(ev.detail))
      end
      r = H.orket("resume", { cwd = dir })
      assert.equal(0, r.status, why .. ": " .. r.stderr)
      assert.equal(want, state(dir), why)
    end
  end)

  it("stops like SIGINT when the reader of its JSON Lines goes away (run | head)", function()
    local ref = project()
    assert.equal(0, H.orket("run NOTES", { cwd = ref }).status)
    local want = state(ref)
    local dir = project()
    -- NOTES-3's first model call takes 60 s: the run is still working when its reader has left
    local script = H.read(dir .. "/script.lua")
    H.write(dir .. "/script.lua", script:gsub("local rules = {", [[local rules = {
  { role = "coder", card = "NOTES-3", match = "^Issue ", reply = { delay_ms = 60000, tool_calls = {
    call("write_file", { path = "list.lua", content = "return function(db) return db end\n" }),
    call("add_issue_comment", { body = "Wrote list.lua." }) } } },]], 1))
    os.execute(string.format("cd %s && { { %s run NOTES 2>err.txt; echo $? >status.txt; } | true; } 2>/dev/null",
      H.quote(dir), H.quote(H.BIN)))
    local status = tonumber(H.read(dir .. "/status.txt"))
    assert.equal(130, status, H.read(dir .. "/err.txt"))
    assert.matches("\n%s*1%s+interrupted", H.orket("runs", { cwd = dir }).stdout)
    H.write(dir .. "/script.lua", script)
    local r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal(want, state(dir))
  end)

  it("resumes a scripted sequence where it stopped, not from its first reply", function()
    -- the coder's replies for SQ-1 come from one sequence, one per model step; a resumed
    -- run reads the recorded steps back, and the provider is told about them so the next
    -- step gets the next reply (before: the first reply again, and a second "first" comment)
    local function seq_project()
      local dir = H.tmpdir()
      os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
      H.write(dir .. "/orket.lua", [[
name = "sequences"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { backoff_ms = 1 }
]])
      -- the first reply is a transient error: the engine retries, and that failed call
      -- counts in the sequence on resume too (it is journaled as a model_failure)
      H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "SQ-1", sequence = {
    { error = { class = "transient", message = "flaky" } },
    { tool_calls = { call("add_issue_comment", { body = "first" }) } },
    { tool_calls = { call("add_issue_comment", { body = "second" }) } },
    { tool_calls = { call("add_issue_comment", { body = "third" }), call("update_issue_status", { status = "code_review" }) } },
  } },
  { role = "integrity_guard", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]])
      H.write(dir .. "/epics/sq.json", [[
{ "id": "SQ", "name": "Sequence", "issues": [ { "id": "SQ-1", "summary": "Comment three times", "seat": "senior_developer" } ] }
]])
      assert.equal(0, H.orket("import", { cwd = dir }).status)
      return dir
    end
    local ref = seq_project()
    local r = H.orket("run SQ", { cwd = ref })
    assert.equal(0, r.status, r.stderr)
    local want = state(ref)
    assert.matches("SQ%-1 done r0 {senior_developer: first | senior_developer: second | senior_developer: third}", want)
    assert.matches("%[model failed%] step 1: transient: scripted: flaky", H.orket("log 1", { cwd = ref }).stdout)
    for _, fault in ipairs { "after_tool:1", "after_tool:2", "after_model:2" } do
      local dir = seq_project()
      r = H.orket("run SQ", { cwd = dir, env = { ORKET_FAULT = fault } })
      assert.equal(137, r.status, fault .. " was not killed: " .. r.stderr)
      r = H.orket("resume", { cwd = dir })
      assert.equal(0, r.status, fault .. ": " .. r.stderr)
      assert.equal(want, state(dir), fault)
    end
  end)

  -- A kill between a file effect and its record: the journal holds the call's intent and no
  -- result. move_file is not re-run blindly (the file moved already, so a second try would
  -- fail with ENOENT and the model would go another way): recover sees the move happened.
  -- A tool with neither idempotent nor recover gives the model EINTERRUPTED, and is not re-run.
  local MOVE_SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "MV-1", match = "^Issue ", reply = { tool_calls = {
    call("move_file", { from = "draft.txt", to = "final/notes.txt" }) } } },
  { role = "coder", card = "MV-2", match = "^Issue ", reply = { tool_calls = {
    call("stamp", {}) } } },
  { role = "coder", match = '"moved"', reply = { tool_calls = {
    call("add_issue_comment", { body = "Moved the draft." }), call("update_issue_status", { status = "code_review" }) } } },
  { role = "coder", match = '"stamped"', reply = { tool_calls = {
    call("add_issue_comment", { body = "Stamped." }), call("update_issue_status", { status = "code_review" }) } } },
  { role = "coder", match = "EINTERRUPTED", reply = { tool_calls = {
    call("add_issue_comment", { body = "The stamp may have happened; checked the log." }),
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = {
    call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

  local function move_project()
    local dir = H.tmpdir()
    for _, d in ipairs { "epics", "tools", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
    H.write(dir .. "/orket.lua", [[
name = "moves"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = {
  senior_developer = { roles = { "coder" } },
  integrity_guard = { roles = { "integrity_guard" } },
}
]])
    H.write(dir .. "/script.lua", MOVE_SCRIPT)
    H.write(dir .. "/tools/stamp.lua", [[
return { name = "stamp", description = "Append a line to stamps.log.", effect = "write",
  handler = function(args, ctx)
    local n, err, code = ctx.fs:append("stamps.log", "stamp\n")
    if not n then return nil, err, code end
    return { stamped = true }
  end }
]])
    -- the built-in coder with the project's stamp tool added
    os.execute("mkdir -p " .. H.quote(dir .. "/roles"))
    H.write(dir .. "/roles/coder.lua", (H.read(H.ROOT .. "/roles/coder.lua"):gsub('"update_issue_status" }',
      '"update_issue_status", "stamp" }')))
    H.write(dir .. "/epics/mv.json", [[
{ "id": "MV", "name": "Moves", "issues": [
  { "id": "MV-1", "summary": "Move the draft", "seat": "senior_developer" },
  { "id": "MV-2", "summary": "Stamp the log", "seat": "senior_developer", "depends_on": ["MV-1"] } ] }
]])
    H.write(dir .. "/workspace/draft.txt", "draft\n")
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    return dir
  end

  it("resumes a kill between a file effect and its record without repeating it blindly", function()
    local ref = move_project()
    local r = H.orket("run MV", { cwd = ref })
    assert.equal(0, r.status, r.stderr)
    local want = state(ref)
    assert.matches("MV%-1 done r0 {senior_developer: Moved the draft%.}", want)
    for _, fault in ipairs { "after_effect:1", "before_effect:1" } do
      local dir = move_project()
      r = H.orket("run MV", { cwd = dir, env = { ORKET_FAULT = fault } })
      assert.equal(137, r.status, fault .. " was not killed: " .. r.stderr)
      -- the turn works in MV-1's worktree (docs/git.md); main's files follow its merge
      assert.equal(fault == "after_effect:1", H.read(dir .. "/.orket/worktrees/MV-1/draft.txt") == nil, fault)
      r = H.orket("resume", { cwd = dir })
      assert.equal(0, r.status, fault .. ": " .. r.stderr)
      assert.equal(want, state(dir), fault)
      assert.equal("draft\n", H.read(dir .. "/workspace/final/notes.txt"))
      assert.is_nil(H.read(dir .. "/workspace/draft.txt"))
      local log = H.orket("log 1", { cwd = dir }).stdout
      assert.matches("%[result%] move_file ok", log)
      assert.not_matches("move_file failed", log)
    end
    -- the stamp cannot say whether it ran: the model is told, and it is not run twice
    local dir = move_project()
    r = H.orket("run MV", { cwd = dir, env = { ORKET_FAULT = "after_effect:2" } })
    assert.equal(137, r.status, r.stderr)
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("stamp\n", H.read(dir .. "/workspace/stamps.log"))
    assert.matches("MV%-2 done r0 {senior_developer: The stamp may have happened; checked the log%.}", state(dir))
    assert.matches("%[result%] stamp failed .*EINTERRUPTED", H.orket("log 1", { cwd = dir }).stdout)
  end)

  it("refuses a second run on the same project, and a killed run leaves no stale lock", function()
    local dir = project()
    -- a holder in another process: the lock is held until it dies
    local pid, stop = H.hold_lock(dir)
    local r = H.orket("run NOTES", { cwd = dir })
    assert.equal(75, r.status) -- busy (EX_TEMPFAIL)
    assert.matches("another orket run is working on this project %(process " .. pid .. "%)", r.stderr)
    assert.equal(0, H.orket("board --json", { cwd = dir }).status) -- readers are not locked out
    stop()
    local again = H.orket("run NOTES", { cwd = dir })
    assert.equal(0, again.status, again.stderr)
  end)

  it("refuses a run whose start another process holds past the wait, with ESTARTING and that process", function()
    local dir = project()
    -- a process stuck inside the start of a run (.orket/claim.lock) until it is killed
    local p = io.popen(string.format("cd %s && { %s lua -e %s & echo $!; }", H.quote(dir), H.quote(H.BIN),
      H.quote("local c = assert(require('orket.engine.claims').enter('.')); io.stdout:write('held\\n'); "
        .. "io.stdout:flush(); orket.sleep(60000)")))
    local first, second = p:read("l"), p:read("l")
    local pid = math.tointeger(tonumber(first) or tonumber(second))
    assert(pid and (tonumber(first) and second or first) == "held", "the claim holder did not start")
    -- on a terminal, so the code's remedy is printed as the hint
    H.write(dir .. "/steps", "expect hint: \n")
    local t = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 30 -- %s run NOTES <steps 2>&1",
      H.quote(dir), H.quote((H.BIN:gsub("orket$", "ptydrive"))), H.quote(H.BIN)))
    local out = t:read("a")
    t:close()
    local r = H.orket("run NOTES --json", { cwd = dir })
    -- a worker that would leave the run to the workers: the same, with the same hint
    t = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 30 -- %s worker --start NOTES --drain "
      .. "<steps 2>&1", H.quote(dir), H.quote((H.BIN:gsub("orket$", "ptydrive"))), H.quote(H.BIN)))
    local wout = t:read("a")
    t:close()
    os.execute("kill -9 " .. pid)
    p:close()
    H.wait_for(function() return not H.alive(pid) end, "the claim holder to end")
    assert.matches("another process is starting a run on this project (process " .. pid .. ")", out, 1, true)
    assert.matches("hint: " .. require("orket.errors").remedy("ESTARTING"), out, 1, true)
    assert.equal(75, r.status) -- busy: the same command later may pass (EX_TEMPFAIL)
    assert.matches('"code":"ESTARTING"', r.stdout, 1, true)
    assert.matches("(process " .. pid .. ")", r.stderr, 1, true)
    assert.matches("another process is starting a run on this project (process " .. pid .. ")", wout, 1, true)
    assert.matches("hint: " .. require("orket.errors").remedy("ESTARTING"), wout, 1, true)
    -- nothing was started: the next run goes
    local again = H.orket("run NOTES", { cwd = dir })
    assert.equal(0, again.status, again.stderr)
  end)

  it("resumes after kill -9 at random moments with the uninterrupted run's board", function()
    local uv = require "luv"
    -- each answer takes a few ms: on an idle machine the whole run otherwise ends within the
    -- shell's own latency (the wait for run_start polls every 10 ms), and no kill lands in it
    local function project()
      local dir = H.example("notes")
      local script = H.read(dir .. "/script.lua")
      H.write(dir .. "/script.lua", (script:gsub("return { rules", "for _, r in ipairs(rules) do r.reply.delay_ms = 8 end\nreturn { rules", 1)))
      return dir
    end
    local ref = project()
    -- the span from the run being recorded (run_start) to its end, measured as the kills wait
    local WAIT_START = "i=0; while [ $i -lt 400 ] && ! grep -q '\"run_start\"' out.jsonl 2>/dev/null; do sleep 0.01; i=$((i+1)); done; "
    local p0 = io.popen(string.format("cd %s && { %s run NOTES --json >out.jsonl 2>err.txt & pid=$!; %s"
      .. "t1=$(date +%%s%%N); wait $pid; rc=$?; t2=$(date +%%s%%N); echo $rc $(( (t2 - t1) / 1000000 )); } 2>/dev/null",
      H.quote(ref), H.quote(H.BIN), WAIT_START))
    local rc, ms = p0:read("a"):match("(%d+) (%d+)%s*$")
    p0:close()
    assert.equal("0", rc)
    local span_ms = math.max(20, tonumber(ms))
    local want = state(ref)
    local killed, resumed = 0, 0
    for seed = 1, 12 do
      math.randomseed(seed)
      -- a random moment after the run is recorded (its run_start line is out), so that on a
      -- loaded machine a slow start does not swallow every kill; the wait for it is bounded
      local delay_ms = math.random(0, span_ms * 3 // 4)
      local dir = project()
      local sh = string.format("cd %s && { %s run NOTES --json >out.jsonl 2>err.txt & pid=$!; %s"
        .. "sleep %.3f; kill -9 $pid; wait $pid; echo $?; } 2>/dev/null", H.quote(dir), H.quote(H.BIN), WAIT_START, delay_ms / 1000)
      local p = io.popen(sh)
      local status = tonumber(p:read("a"):match("(%d+)%s*$"))
      p:close()
      if status == 137 then killed = killed + 1 end
      local tries, r = 0, nil
      repeat
        r = H.orket("resume", { cwd = dir })
        tries = tries + 1
      until r.status ~= 130 or tries > 3
      local why = string.format("seed %d, killed after %d ms (exit %s)", seed, delay_ms, tostring(status))
      if status ~= 0 and r.stderr:find("no run to resume", 1, true) then
        -- killed while starting, before the run was recorded: nothing happened yet
        r = H.orket("run NOTES", { cwd = dir })
      elseif status ~= 0 then
        resumed = resumed + 1
      end
      if status == 0 then
        assert.equal(1, r.status, why) -- the run had finished: nothing to resume
      else
        assert.equal(0, r.status, why .. ": " .. r.stderr)
      end
      assert.equal(want, state(dir), why)
    end
    assert.is_true(killed >= 4, "only " .. killed .. " of 12 runs were killed before they finished")
    assert.is_true(resumed >= 2, "only " .. resumed .. " of 12 kills happened during a recorded run")
  end)
end)
