-- A policy edit a hot reload takes up holds from the very next call, in the turn in flight
-- too (its role and tools stay the turn's): an emergency deny saved while the coder's turn
-- runs refuses that turn's next write, and the denial names the rule the file holds now. A
-- broken edit keeps the set in force, so the old rule, which the denial names, still holds.
local H = require "tests.helpers"
local store = require "orket.store"
local import = require "orket.import"
local project = require "orket.project"
local setup = require "orket.engine.setup"
local reload = require "orket.engine.reload"

local function notes_project()
  local dir = H.tmpdir()
  os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
  local db = assert(project.open_store(dir, true))
  assert(import.import(db, dir))
  db:close()
  os.execute("mkdir " .. H.quote(dir .. "/policies"))
  return dir
end

-- Runs the notes epic; at NOTES-4's first model call (its coder writes README.md in that
-- step) edit(dir, watcher) is called. -> the engine, its events
local function run_with_edit(dir, edit)
  local events = {}
  local e = assert(setup.open(dir, { emit = function(ev) events[#events + 1] = ev end }))
  local w = reload.watch(e, { debounce_ms = 10000 }) -- only trigger() reloads here
  local chat, done = e.llm.chat, false
  e.llm.chat = function(client, req)
    if not done and req.meta.card == "NOTES-4" and req.meta.role == "coder" then
      done = true
      edit(dir, w)
    end
    return chat(client, req)
  end
  e:execute(assert(e:start("NOTES")))
  w:close()
  assert.is_true(done)
  return e, events
end

-- the tool event of NOTES-4's write_file
local function write_event(events)
  for _, ev in ipairs(events) do
    if ev.type == "tool" and ev.card == "NOTES-4" and ev.tool == "write_file" then return ev end
  end
end

describe("a policy edited during a turn", function()
  after_each(H.cleanup)

  it("refuses the turn's next call, naming the rule the file holds now", function()
    local dir = notes_project()
    H.write(dir .. "/policies/stop.lua", "-- nothing denied yet\n")
    local e, events = run_with_edit(dir, function(d, w)
      H.write(d .. "/policies/stop.lua", '\ndeny { tool = "write_file", path = "README.md", reason = "emergency stop" }\n')
      w:touch("policies/stop.lua")
      assert.is_true(w:trigger())
    end)
    local ev = write_event(events)
    assert.is_table(ev)
    assert.is_true(ev.denied)
    assert.equal("POLICY_DENY", ev.code)
    assert.equal("policies/stop.lua:2", ev.rule)
    local v = e.db:violations("NOTES-4")
    assert.equal(1, #v)
    assert.equal("write_file: emergency stop (policy policies/stop.lua:2)", v[1].detail)
    assert.is_nil(H.read(dir .. "/workspace/README.md"))
    e.close_all()
  end)

  it("is refused when broken: the set in force still judges, and its rule is named", function()
    local dir = notes_project()
    H.write(dir .. "/policies/stop.lua", 'deny { tool = "write_file", path = "README.md", reason = "old rule" }\n')
    local e, events = run_with_edit(dir, function(d, w)
      H.write(d .. "/policies/stop.lua", "deny { tool = \n")
      w:touch("policies/stop.lua")
      assert.is_falsy((w:trigger())) -- refused: the old set stays
    end)
    local ev = write_event(events)
    assert.equal("policies/stop.lua:1", ev.rule)
    local v = e.db:violations("NOTES-4")
    assert.equal("write_file: old rule (policy policies/stop.lua:1)", v[1].detail)
    e.close_all()
  end)
end)
