-- What `orket answer` and `orket retry` say continues a card: it always said "continue with
-- 'orket resume' or 'orket run CARD'", where a run going on the card takes it up itself and
-- a new run is refused while a killed or interrupted run left a turn half done on its cards.
-- And a run of an epic a person archived is refused, naming the epic and how to end its issues.
local H = require "tests.helpers"
local F = require "tests.fixtures"

local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "ASK-1", match = "^Issue ", reply = { tool_calls = {
    call("request_input", { question = "Which database?" }) } } },
  { role = "coder", card = "ASK-3", match = "^Issue ", reply = { tool_calls = {
    call("request_input", { question = "Which port?" }) } } },
  -- ASK-2's work turn waits 60 s for its model: the run is going meanwhile
  { role = "coder", card = "ASK-2", match = "^Issue ", reply = { delay_ms = 60000, tool_calls = {
    call("write_file", { path = "slow.txt", content = "x\n" }) } } },
}, default = { content = "Nothing more to do." } }
]]

local EPIC = [[
{ "id": "ASK", "name": "Questions", "issues": [
  { "id": "ASK-1", "summary": "Ask one", "seat": "senior_developer", "priority": "High" },
  { "id": "ASK-3", "summary": "Ask two", "seat": "senior_developer", "priority": "High" },
  { "id": "ASK-2", "summary": "Slow", "seat": "senior_developer", "priority": "Low" } ] }
]]

local function status_of(dir, id) return H.card_json(dir, id).card.status end

describe("the command that continues an answered or retried card", function()
  after_each(H.cleanup)

  it("names the going run, then the interrupted run's resume, never a run that is refused", function()
    local dir = F.scripted_project { name = "ask", script = SCRIPT, settings = "concurrency = 1\n",
      epics = { ["ask.json"] = EPIC } }
    -- the run is started; once ASK-2's slow turn is in flight, ASK-1 is answered (the run
    -- going), then the run is interrupted with that turn half done
    local sh = string.format("cd %s && { %s run ASK --json >out.jsonl 2>err.txt & pid=$!; "
      .. "for i in $(seq 1 400); do grep -Eq 'turn_start.*ASK-2|ASK-2.*turn_start' out.jsonl && break; sleep 0.05; done; "
      .. "%s answer ASK-1 'sqlite' >answer.txt 2>answer.err; kill -INT $pid; wait $pid; echo $?; } 2>/dev/null",
      H.quote(dir), H.quote(H.BIN), H.quote(H.BIN))
    local p = io.popen(sh)
    local status = tonumber(p:read("a"):match("(%d+)%s*$"))
    p:close()
    assert.equal(130, status, H.read(dir .. "/err.txt"))
    assert.matches("^answered ASK%-1; run 1 %(ASK, process %d+%) is going and takes it up on its next pass\n$",
      H.read(dir .. "/answer.txt"))
    -- interrupted in its model call, the turn had written nothing: a new run is not refused
    local r = H.orket("answer ASK-3 'port 80'", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("answered ASK-3; continue with 'orket resume' or 'orket run ASK-3'\n", r.stdout)
  end)

  it("names the resume of a killed run that left a turn half done", function()
    local dir = F.scripted_project { name = "ask", script = SCRIPT:gsub("delay_ms = 60000, ", ""),
      settings = "concurrency = 1\n", epics = { ["ask.json"] = EPIC } }
    -- killed as ASK-2's write_file takes effect, before its record: its turn is half done
    local killed = H.orket("run ASK", { cwd = dir, env = { ORKET_FAULT = "before_effect:1" } })
    assert.equal(137, killed.status, killed.stderr)
    assert.equal("waiting_for_developer", status_of(dir, "ASK-1"))
    local resume = "continue with 'orket resume 1' (run 1 of ASK left a turn half done: a new run would redo it, "
      .. "so 'orket run' is refused)\n"
    local r = H.orket("answer ASK-1 sqlite", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("answered ASK-1; " .. resume, r.stdout)
    -- what the hint says: a new run is refused
    assert.equal(1, H.orket("run ASK-1", { cwd = dir }).status)
    -- orket retry says the same
    r = H.orket("retry ASK-3", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("ASK-3 is ready; " .. resume, r.stdout)
  end)

  it("refuses a run of an archived epic, naming it and how to end its issues", function()
    local dir = F.scripted_project { name = "ask", script = SCRIPT, epics = { ["ask.json"] = EPIC } }
    H.orket("lua -e " .. H.quote([[
      local db = assert(require("orket.project").open_store(".", true))
      local b = require("orket.board").open(db)
      assert(b:transition("ASK", "archived", { actor = { seat = "developer", roles = {}, by = "person" } }))
      db:close()]]), { cwd = dir })
    for _, target in ipairs { "ASK", "ASK-2" } do
      local r = H.orket("run " .. target, { cwd = dir })
      assert.equal(1, r.status, target)
      assert.matches("ASK is archived: ", r.stderr, 1, true)
      assert.matches("orket cancel ", r.stderr, 1, true)
    end
    -- nothing was recorded, nor worked
    assert.equal("ready", status_of(dir, "ASK-1"))
    assert.matches('"runs":[]', H.orket("runs --json", { cwd = dir }).stdout, 1, true)
  end)
end)
