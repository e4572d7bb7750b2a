-- orket.terminal.console (the REPL's `project`): messages without a model call, one turn of
-- one card, replay of a recorded run through the replay provider, reload, on the notes example.
local H = require "tests.helpers"
local import = require "orket.import"
local project_mod = require "orket.project"
local console = require "orket.terminal.console"

local function notes_project()
  local dir = H.tmpdir()
  os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
  local db = assert(project_mod.open_store(dir, true))
  assert(import.import(db, dir))
  db:close()
  return dir
end

local function turns(p) return p.db:row("SELECT count(*) AS n FROM turns").n end

-- What is left of replays: folders in .orket and files this process still holds open.
local function replay_leftovers(dir)
  local uv = require "luv"
  local left = {}
  local h = uv.fs_scandir(dir .. "/.orket")
  for name in function() return uv.fs_scandir_next(h) end do
    if name:match("^replay") then left[#left + 1] = name end
  end
  local fds = uv.fs_scandir("/proc/self/fd")
  for fd in function() return uv.fs_scandir_next(fds) end do
    local target = uv.fs_readlink("/proc/self/fd/" .. fd)
    if target and target:find("/.orket/replay-", 1, true) then left[#left + 1] = "open: " .. target end
  end
  return left
end

describe("REPL project", function()
  after_each(H.cleanup)

  it("opens a project with its board, store, models, gate, tools and engine", function()
    local p = assert(console.open(notes_project()))
    for _, k in ipairs { "board", "db", "llm", "gate", "tools", "policies", "roles", "routing", "engine", "memory" } do
      assert.is_not_nil(p[k], k)
    end
    assert.equal("NOTES-1", p.board:get("NOTES-1").id)
    assert.is_table(p.tools:get("write_file"))
    assert.equal("function", type(p.gate))
    p:close()
    p:close()
    local none, err = console.open(H.tmpdir())
    assert.is_nil(none)
    assert.matches("orket.lua", err)
  end)

  it("shows the messages a role would send, without calling the model or writing", function()
    local p = assert(console.open(notes_project()))
    local called = false
    p.llm.chat = function() called = true end
    local before = p.db:row("SELECT count(*) AS n FROM events").n
    local msgs, info = assert(p:messages("NOTES-2"))
    assert.equal("system", msgs[1].role)
    assert.matches("senior_developer, a careful software developer", msgs[2].content)
    assert.matches("^Issue NOTES%-2: Store notes", msgs[2].content)
    assert.same({ seat = "senior_developer", role = "coder", phase = "work", model = "scripted:team" },
      { seat = info.seat, role = info.role, phase = info.phase, model = info.model })
    assert.is_true(#info.tools > 3)
    -- Another phase or seat on request: the reviewer's view.
    local rmsgs, rinfo = assert(p:messages("NOTES-2", { phase = "review" }))
    assert.equal("integrity_guard", rinfo.role)
    -- seats share the system message (a prompt cache keeps it); the role's text differs
    assert.equal(msgs[1].content, rmsgs[1].content)
    assert.not_equal(msgs[2].content, rmsgs[2].content)
    assert.is_false(called)
    assert.equal(before, p.db:row("SELECT count(*) AS n FROM events").n)
    assert.equal("ready", p.board:get("NOTES-2").status)
    local none, err, code = p:messages("NOPE")
    assert.is_nil(none)
    assert.equal("ENOENT", code)
    assert.matches("NOPE", err)
    -- a wrong argument is an answer as a wrong card is, not a raise (a traceback in the REPL)
    local function usage(want, ...)
      local r, e, c = ...
      assert.is_nil(r)
      assert.equal(want, e)
      assert.equal("EUSAGE", c)
    end
    usage("bad argument #1 to 'messages' (card id expected, got number)", p:messages(42))
    usage("bad argument #1 to 'messages' (card id expected, got no value)", p:messages())
    usage("bad argument #2 to 'messages' ({phase=, seat=, turn=} expected, got string)", p:messages("NOTES-2", "review"))
    usage("bad argument #1 to 'replay' (run number expected, got string)", p:replay("x"))
    usage("bad argument #2 to 'replay' ({keep=, emit=} expected, got boolean)", p:replay(1, true))
    usage("bad argument #1 to 'approvals' (card id expected, got no value)", p:approvals())
    usage("bad argument #1 to 'approve' (card id expected, got number)", p:approve(1))
    usage("bad argument #2 to 'approve' (note string expected, got number)", p:approve("NOTES-2", 3))
    usage("bad argument #2 to 'deny' (reason string expected, got no value)", p:deny("NOTES-2"))
    usage("bad argument #1 to 'deny' (card id expected, got no value)", p:deny())
    usage("bad argument #1 to 'turn' (card id expected, got no value)", p:turn())
    p:close()
  end)

  it("runs one turn of one card, journaled as a run that resume can continue", function()
    local p = assert(console.open(notes_project()))
    local r = assert(p:turn("NOTES-1"))
    assert.same({ run = 1, turn = 1, seat = "lead_architect", role = "architect", phase = "work",
      outcome = "handed_in", status = "code_review" },
      { run = r.run, turn = r.turn, seat = r.seat, role = r.role, phase = r.phase, outcome = r.outcome, status = r.status })
    assert.equal(2, turns(p))
    assert.equal("stopped", p.db:row("SELECT status FROM runs WHERE id = 1").status)
    -- The review turn next: the card is done and that run is done.
    local r2 = assert(p:turn("NOTES-1"))
    assert.equal("review", r2.phase)
    assert.equal("done", r2.status)
    assert.equal("done", p.db:row("SELECT status FROM runs WHERE id = 2").status)
    local none, err, code = p:turn("NOTES-1")
    assert.is_nil(none)
    assert.equal("ESTATUS", code)
    assert.matches("NOTES%-1 is done", err)
    p:close()
  end)

  it("takes turns of issues only, checks phase, and ends an interrupted turn's run", function()
    local p = assert(console.open(notes_project()))
    local none, err, code = p:turn("NOTES")
    assert.is_nil(none)
    assert.equal("ETYPE", code)
    assert.matches("NOTES is an epic; turns are an issue's", err)
    assert.equal("ETYPE", select(3, p:messages("NOTES")))
    assert.same({}, p:approvals("NOTES-1"))
    assert.equal("ENOENT", select(3, p:approvals("NOPE")))
    local none2, perr, pcode = p:messages("NOTES-2", { phase = "bogus" })
    assert.is_nil(none2)
    assert.equal("EUSAGE", pcode)
    assert.equal("bad argument #2 to 'messages' (phase must be work, rework, review or escalation, got bogus)", perr)
    -- a turn cancelled while its model thinks (Ctrl-C in the REPL) ends its run interrupted
    local chat = p.engine.llm.chat
    local thinking = false
    p.engine.llm.chat = function(client, req)
      thinking = true
      orket.sleep(60000)
      return chat(client, req)
    end
    local t = require("orket.task").spawn(function() return p:turn("NOTES-1") end)
    -- cancelled once the model thinks (50 ms could end before the run had started)
    H.wait_for(function() return thinking end, "the turn's model call")
    assert.is_true(t:cancel())
    assert.equal("interrupted", p.db:row("SELECT status FROM runs WHERE id = 1").status)
    -- and nothing of the turn's lease is left: no holder, no fence on the REPL's engine
    local runlease = require "orket.engine.runlease"
    assert.is_nil(runlease.holders(p.db)[1])
    assert.is_nil(p.engine.run_fence)
    p.engine.llm.chat = chat
    p:close()
  end)

  it("ends interrupted, for resume, the run whose stop left its turn open", function()
    -- the turn's run stopped under it (a tool's write meeting a full disk, Run:git_broken):
    -- the turn stays open, so its run is one `orket resume` continues and a new turn of the
    -- card is refused, not a stopped run whose half-done turn no one takes up
    local p = assert(console.open(notes_project()))
    local chat = p.engine.llm.chat
    p.engine.llm.chat = function(client, req)
      p.engine.current:git_broken(req.meta.card, "git: No space left on device", "ENOSPC")
      return chat(client, req)
    end
    local r = assert(p:turn("NOTES-1"))
    p.engine.llm.chat = chat
    assert.equal("canceled", r.outcome)
    assert.equal("in_progress", r.status)
    assert.equal("interrupted", p.db:row("SELECT status FROM runs WHERE id = 1").status)
    local none, _, code = p:turn("NOTES-1")
    assert.is_nil(none)
    assert.equal("EUNFINISHED", code)
    p:close()
  end)

  it("leaves run lock files alone: only a start in the folder's claim section removes stale ones", function()
    local dir = notes_project()
    local p = assert(console.open(dir))
    assert(os.execute("mkdir -p " .. H.quote(dir .. "/.orket/runs")))
    local stale = dir .. "/.orket/runs/7.lock" -- a killed server's, nobody holds it
    assert(io.open(stale, "w")):close()
    assert(p:turn("NOTES-1"))
    -- a worker's hold between its open and its lock would be on an unlinked file
    local f = io.open(stale)
    assert.truthy(f)
    f:close()
    p:close()
  end)

  it("lets the turn's lease go even when writing the run's end raises", function()
    local p = assert(console.open(notes_project()))
    local runlease = require "orket.engine.runlease"
    local thinking = false
    p.engine.llm.chat = function()
      thinking = true
      orket.sleep(60000)
    end
    local t = require("orket.task").spawn(function() return p:turn("NOTES-1") end)
    H.wait_for(function() return thinking end, "the turn's model call")
    assert.equal(runlease.owner(), runlease.holders(p.db)[1])
    local finish_run = p.db.finish_run
    p.db.finish_run = function() error("the store went away") end
    pcall(t.cancel, t)
    p.db.finish_run = finish_run
    -- else an idle REPL renewed the run's lease, and every resume of it was refused
    assert.is_nil(runlease.holders(p.db)[1])
    assert.is_nil(p.engine.run_fence)
    p:close()
  end)

  it("stops a turn whose run lease another process took, writing no more of that run", function()
    local p = assert(console.open(notes_project()))
    local runlease = require "orket.engine.runlease"
    local leases = require "orket.store.leases"
    local ttl = runlease.TTL_MS
    runlease.TTL_MS = 300 -- renewed every 100 ms, the fence asks the store after 150 ms
    finally(function() runlease.TTL_MS = ttl end)
    local chat = p.engine.llm.chat
    local thinking, woke = false, false
    p.engine.llm.chat = function(client, req)
      thinking = true
      orket.sleep(3000) -- the renewals find the lease another's meanwhile (every 100 ms)
      woke = true
      return chat(client, req)
    end
    local res
    local t = require("orket.task").spawn(function() res = table.pack(p:turn("NOTES-1")) end)
    H.wait_for(function() return thinking end, "the turn's model call")
    assert.is_function(p.engine.run_fence) -- each step fenced, as orket run's
    -- another process takes the run (as a resume elsewhere does once the lease lapsed)
    assert(p.db:tx(function()
      leases.run_take(p.db, 1, "elsewhere/-/1/00", 60000, runlease.owner())
      return true
    end))
    H.wait_for(function() return t.state ~= "running" and t.state ~= "suspended" end, "the turn to end", 5000)
    if res then
      assert.is_nil(res[1])
      assert.equal("ELEASELOST", res[3])
    end
    assert.is_false(woke) -- cancelled while its model thought, as by Ctrl-C
    -- the run is the other process's: its status is not written here, its steps no more
    assert.equal("running", p.db:row("SELECT status FROM runs WHERE id = 1").status)
    assert.equal("elsewhere/-/1/00", p.db:row("SELECT owner FROM run_leases WHERE run_id = 1").owner)
    assert.equal(0, p.db:row("SELECT count(*) AS n FROM turns WHERE run_id = 1 AND response IS NOT NULL").n)
    assert.is_nil(p.engine.run_fence)
    p.engine.llm.chat = chat
    p:close()
  end)

  it("starts a turn's run as orket run does: not beside a run of its cards left to the workers or live in another folder", function()
    local p = assert(console.open(notes_project()))
    -- a run of the epic left to the workers, which no worker works yet (no lease anywhere)
    local q = assert(p.db:record_run { target = "NOTES", kind = "epic", data = { workers = true } })
    local none, err, code = p:turn("NOTES-1")
    assert.is_nil(none)
    assert.equal("ERUNGOING", code)
    assert.matches("run " .. q .. " %(NOTES%) is left to the workers", err)
    assert.matches("orket runs stop " .. q, err, 1, true)
    assert.equal(0, turns(p))
    assert.equal(1, p.db:row("SELECT count(*) AS n FROM runs").n) -- nothing recorded
    assert(p.db:finish_run(q, "interrupted"))
    -- a run of the card going in a process of another folder of the store: its lease alone says so
    local o = assert(p.db:record_run { target = "NOTES-1", kind = "issue" })
    local leases = require "orket.store.leases"
    assert(p.db:tx(function() return not leases.run_take(p.db, o, "elsewhere/-/1/00", 60000) end))
    local none2, err2, code2 = p:turn("NOTES-1")
    assert.is_nil(none2)
    assert.equal("ERUNGOING", code2)
    assert.matches("run " .. o .. " %(NOTES%-1%) is working on", err2)
    assert.equal(0, turns(p))
    assert(p.db:tx(function() leases.run_drop(p.db, o, "elsewhere/-/1/00"); return true end))
    -- the turn's own run holds its lease while it goes, and drops it when done
    local held
    local chat = p.engine.llm.chat
    p.engine.llm.chat = function(client, req)
      held = held or require("orket.engine.runlease").holders(p.db)
      return chat(client, req)
    end
    local r = assert(p:turn("NOTES-1"))
    p.engine.llm.chat = chat
    assert.equal(require("orket.engine.runlease").owner(), held[r.run])
    assert.is_nil(require("orket.engine.runlease").holders(p.db)[r.run])
    p:close()
  end)

  it("refuses a model that is not configured before a run starts or the card is touched", function()
    local p = assert(console.open(notes_project()))
    local events = p.db:row("SELECT count(*) AS n FROM events").n
    local none, err, code = p:turn("NOTES-1", { model = "nope" })
    assert.is_nil(none)
    assert.equal("EUSAGE", code)
    assert.matches('^model nope: a model is named "provider:model"', err)
    none, err, code = p:turn("NOTES-1", { model = "nope:x" })
    assert.is_nil(none)
    assert.equal("EUSAGE", code)
    assert.matches("^model nope:x: names provider 'nope', which is not configured %(configured: .*scripted", err)
    assert.equal(0, p.db:row("SELECT count(*) AS n FROM runs").n)
    assert.equal(events, p.db:row("SELECT count(*) AS n FROM events").n)
    assert.equal("ready", p.board:get("NOTES-1").status)
    assert.is_nil(p.engine.model)
    local none3, terr, tcode = p:turn("NOTES-1", "scripted:team")
    assert.is_nil(none3)
    assert.equal("EUSAGE", tcode)
    assert.equal("bad argument #2 to 'turn' ({model=} expected, got string)", terr)
    -- a configured one is taken
    local r = assert(p:turn("NOTES-1", { model = "scripted:team" }))
    assert.equal("code_review", r.status)
    p:close()
  end)

  it("tells the model which dependencies are finished and which are not", function()
    local p = assert(console.open(notes_project()))
    local msgs = assert(p:messages("NOTES-4"))
    assert.matches("\n\nWork this issue builds on that is not finished yet:\n%- NOTES%-2 %(ready%): Store notes\n"
      .. "%- NOTES%-3 %(ready%): List notes\n\nYou are senior_developer", msgs[2].content)
    assert.is_nil(msgs[2].content:find("Finished work", 1, true))
    p:close()
    local prompt = require "orket.engine.prompt"
    assert.equal("Finished work this issue builds on:\n- A-1 (done): one\n  outcome: built\n\n"
      .. "Work this issue builds on that is not finished yet:\n- A-2 (in_progress): two",
      prompt.dependencies { { id = "A-1", status = "done", summary = "one", outcome = "built" },
        { id = "A-2", status = "in_progress", summary = "two" } })
    assert.equal("Finished work this issue builds on:\n- A-1 (done): one",
      prompt.dependencies { { id = "A-1", status = "done", summary = "one" } })
    assert.equal("", prompt.dependencies {})
  end)

  it("removes a replay's scratch copy and closes its store when the replay fails or is cancelled", function()
    local dir = notes_project()
    local p = assert(console.open(dir))
    assert(p:turn("NOTES-1"))
    local ok, err = pcall(p.replay, p, 1, { emit = function() error("boom") end })
    assert.is_false(ok)
    assert.matches("boom", err) -- raised again once the scratch copy is gone
    assert.same({}, replay_leftovers(dir))
    -- Ctrl-C in the REPL cancels the task running the replay
    local replaying = false
    local t = require("orket.task").spawn(function()
      return p:replay(1, { emit = function(ev)
        if ev.type == "run_start" then
          replaying = true
          orket.sleep(60000)
        end
      end })
    end)
    -- cancelled once the replay runs (50 ms could end before it had begun)
    H.wait_for(function() return replaying end, "the replay's run to start")
    assert.is_true(t:cancel())
    assert.same({}, replay_leftovers(dir))
    -- kept on request, even when it fails
    ok = pcall(p.replay, p, 1, { keep = true, emit = function() error("boom") end })
    assert.is_false(ok)
    local left = replay_leftovers(dir)
    assert.equal(1, #left)
    assert.matches("^replay%-1%-", left[1])
    p:close()
  end)

  it("replays a recorded run through the replay provider to the same board", function()
    local dir = notes_project()
    local p = assert(console.open(dir))
    local e = p.engine
    assert.equal("done", (e:execute(assert(e:start("NOTES")))))
    local recorded = turns(p)
    local calls = 0
    local chat = p.llm.chat
    p.llm.chat = function(...) calls = calls + 1 return chat(...) end
    local rep = assert(p:replay(1))
    assert.equal("done", rep.status)
    assert.equal(recorded, rep.calls)
    assert.equal(recorded, rep.recorded)
    assert.same({}, rep.missing)
    assert.same({}, rep.differs)
    assert.same({ replay = "done", now = "done" }, rep.cards["NOTES-2"])
    assert.equal(0, calls) -- the project's model was not asked
    assert.equal(recorded, turns(p)) -- nor its journal written
    local uv = require "luv"
    local h = uv.fs_scandir(dir .. "/.orket")
    for name in function() return uv.fs_scandir_next(h) end do
      assert.is_nil(name:match("^replay")) -- the scratch copy is gone
    end
    -- Routing changed since the run takes the replay elsewhere, and the report says where.
    H.write(dir .. "/routing.lua", "return { worker = function() return 'lead_architect' end }\n")
    assert.is_true(p:reload())
    local rep2 = assert(p:replay(1, { keep = true }))
    assert.equal("failed", rep2.status)
    assert.matches("^NOTES%-%d turn 1 step 1 %(lead_architect%)$", rep2.missing[1])
    assert.is_true(#rep2.differs > 0)
    assert.is_not_nil(require("luv").fs_stat(rep2.dir .. "/.orket/orket.db"))
    local none, err, code = p:replay(99)
    assert.is_nil(none)
    assert.equal("ENOENT", code)
    assert.matches("no run 99", err)
    p:close()
  end)

  it("says in project.gate's help what it takes, with an example that checks a recorded call again", function()
    local help = require "orket.terminal.help"
    local dir = notes_project()
    local p = assert(console.open(dir))
    local text = help.text_of(help.new({ project = p })("project.gate"))
    assert.matches("project.gate{tool=, args=, actor={seat=, roles={...}}", text, 1, true)
    assert.matches("`arguments` column", text, 1, true)
    -- the example, as written there, run against NOTES-1's recorded write_file
    assert.equal("code_review", assert(p:turn("NOTES-1")).status)
    local lines = {}
    for line in text:gmatch("[^\n]+") do
      if line:find("^    ") then lines[#lines + 1] = line end
    end
    local chunk = table.concat(lines, "\n"):gsub("\n(%s*)project%.gate{", "\n%1return project.gate{")
    local function example()
      return assert(load(chunk, "=help", "t", { project = p, orket = require "orket" }))()
    end
    local d = example()
    assert.same({ "allow", "ALLOWED" }, { d.verdict, d.code })
    -- a rule added since refuses it, named
    os.execute("mkdir -p " .. H.quote(dir .. "/policies"))
    H.write(dir .. "/policies/sql.lua", 'deny { tool = "write_file", path = "*.sql", reason = "no SQL" }\n')
    assert.is_true(p:reload())
    d = example()
    assert.same({ "deny", "POLICY_DENY", "policies/sql.lua:1" }, { d.verdict, d.code, d.rule_name })
    p:close()
  end)
end)
