-- orket.engine.reload: hot reload of roles, tools, policies and routing.lua during a run of
-- the notes example (scripted model), through watcher:touch (the fs event path without the
-- kernel) and once through a real file write and fs event.
local H = require "tests.helpers"
local store = require "orket.store"
local import = require "orket.import"
local project = require "orket.project"
local setup = require "orket.engine.setup"
local reload = require "orket.engine.reload"

-- journaled: on PostgreSQL (tests/with_pg.lua), the project names a database there
local function notes_project(journaled)
  local dir = H.tmpdir()
  os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
  if journaled then require("tests.backends").project(dir) end
  local db = assert(project.open_store(dir, true))
  assert(import.import(db, dir))
  db:close()
  os.execute("mkdir " .. H.quote(dir .. "/roles") .. " " .. H.quote(dir .. "/policies"))
  return dir
end

-- An engine on a fresh copy of the example; records events and every model request, and
-- calls hooks.on_request(req) before each when a test sets it.
local hooks = {}
local function open(dir)
  local events = {}
  local e = assert(setup.open(dir, { emit = function(ev) events[#events + 1] = ev end }))
  local requests = {}
  local chat = e.llm.chat
  e.llm.chat = function(client, req)
    requests[#requests + 1] = req
    if hooks.on_request then hooks.on_request(req) end
    return chat(client, req)
  end
  return e, events, requests
end

local MARKED_CODER = [[
return {
  intent = "Implement the issue (reloaded version).",
  tools = { "read_file", "write_file", "add_issue_comment", "update_issue_status" },
  system = function(ctx) return "RELOADED-CODER for " .. ctx.seat end,
}
]]

-- The comment tool, version 2: signs its comments, so a test sees which version ran.
local V2_COMMENT = [[
return {
  name = "add_issue_comment", description = "Add a comment (v2).", effect = "board",
  parameters = { type = "object", properties = { body = { type = "string" } }, required = { "body" } },
  handler = function(args, ctx)
    local c, err, code = ctx.board:comment("v2: " .. args.body)
    if not c then return nil, err, code end
    return { comment = c }
  end,
}
]]

-- the role's text ends the first user message (after the card's brief, docs/cost.md)
local function system_of(req) return req.messages[2].content end

local function count(events, ty)
  local n = 0
  for _, ev in ipairs(events) do if ev.type == ty then n = n + 1 end end
  return n
end

describe("hot reload", function()
  after_each(function()
    hooks.on_request = nil
    H.cleanup()
  end)

  it("changes the next turn's prompt; the turn in flight finishes on its version", function()
    local dir = notes_project()
    local e, events, requests = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 }) -- only trigger() reloads in this test
    local reloaded_at
    hooks.on_request = function(req)
      if not reloaded_at and req.meta.role == "coder" then
        H.write(dir .. "/roles/coder.lua", MARKED_CODER)
        os.execute("mkdir " .. H.quote(dir .. "/tools"))
        H.write(dir .. "/tools/add_issue_comment.lua", V2_COMMENT)
        w:touch("roles/coder.lua")
        w:touch("tools/add_issue_comment.lua")
        assert.is_true(w:trigger())
        reloaded_at = { card = req.meta.card, turn = req.meta.turn }
      end
    end
    local status = e:execute(assert(e:start("NOTES")))
    w:close()
    assert.equal("done", status)
    assert.is_table(reloaded_at)
    -- Every step of the turn that was in flight kept the built-in coder's prompt ...
    local in_flight, later = 0, 0
    for _, req in ipairs(requests) do
      local m = req.meta
      if m.card == reloaded_at.card and m.turn == reloaded_at.turn then
        in_flight = in_flight + 1
        assert.matches("careful software developer", system_of(req))
      elseif m.role == "coder" and m.card == "NOTES-4" then
        later = later + 1
        assert.matches("\n\nRELOADED%-CODER for senior_developer$", system_of(req))
      end
    end
    assert.is_true(in_flight >= 2) -- the write and the hand-in, on the old role
    assert.is_true(later >= 1)
    -- ... and its tool calls ran on the tools it started with; later turns on version 2.
    local first = e.board:comments(reloaded_at.card)[1]
    assert.matches("^Wrote ", first.body)
    local readme = e.board:comments("NOTES-4")[1]
    assert.equal("v2: Wrote README.md.", readme.body)
    assert.equal(1, count(events, "reload"))
    local files = { "roles/coder.lua", "tools/add_issue_comment.lua" }
    for _, ev in ipairs(events) do
      if ev.type == "reload" then assert.same(files, ev.files) end
    end
    local ev = e.db:row("SELECT data FROM events WHERE kind = 'reload'")
    assert.same(files, require("cjson").decode(ev.data).files)
    e.close_all()
  end)

  it("hands the next turns an edited tool's new entry when the role is unchanged", function()
    -- the roles stay as they were, so every turn asks for the same kept order of names:
    -- what the model is told of the tools must still follow the reloaded registry
    local dir = notes_project()
    local e, _, requests = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 }) -- only trigger() reloads in this test
    local reloaded_at
    hooks.on_request = function(req)
      if not reloaded_at and req.meta.role == "coder" then
        os.execute("mkdir " .. H.quote(dir .. "/tools"))
        H.write(dir .. "/tools/add_issue_comment.lua", V2_COMMENT)
        w:touch("tools/add_issue_comment.lua")
        assert.is_true(w:trigger())
        reloaded_at = { card = req.meta.card, turn = req.meta.turn }
      end
    end
    local status = e:execute(assert(e:start("NOTES")))
    w:close()
    hooks.on_request = nil
    assert.equal("done", status)
    assert.is_table(reloaded_at)
    local function described(req)
      for _, t in ipairs(req.tools or {}) do
        if t.name == "add_issue_comment" then return t.description end
      end
    end
    local in_flight, later = 0, 0
    for _, req in ipairs(requests) do
      local m = req.meta
      if m.card == reloaded_at.card and m.turn == reloaded_at.turn then
        in_flight = in_flight + 1
        assert.not_equal("Add a comment (v2).", described(req))
      elseif m.role == "coder" and m.card == "NOTES-4" then
        later = later + 1
        assert.equal("Add a comment (v2).", described(req))
      end
    end
    assert.is_true(in_flight >= 1)
    assert.is_true(later >= 1)
    e.close_all()
  end)

  it("keeps the old role on a broken edit and records file:line", function()
    local dir = notes_project()
    local e, events, requests = open(dir)
    local before = e.roles
    H.write(dir .. "/roles/coder.lua", "return {\n  intent = \"x\",\n  tools = { \"read_file\" \n  system = 1,\n}\n")
    local ok, err, code = reload.apply(e, { ["roles/coder.lua"] = true })
    assert.is_nil(ok)
    assert.equal("ESYNTAX", code)
    assert.matches("^roles/coder.lua:4:", err) -- relative to the project, as `files`
    assert.equal(before, e.roles)
    local last = events[#events]
    assert.equal("reload_error", last.type)
    assert.equal("roles/coder.lua", last.file)
    assert.equal(4, last.line)
    local row = e.db:row("SELECT data FROM events WHERE kind = 'reload_error'")
    local data = require("cjson").decode(row.data)
    assert.equal(4, data.line)
    assert.equal("roles/coder.lua", data.file)
    -- A shape error is refused too, placed at its field's line as orket validate places it;
    -- and every broken file is named, each with its line, not only the first
    H.write(dir .. "/roles/coder.lua", "return { intent = 3, tools = {}, system = \"s\" }\n")
    H.write(dir .. "/policies/bad.lua", "deny { tool = \"write_file\" }\ndeny { tool = \"x\", bogus = 1 }\n")
    ok, err = reload.apply(e)
    assert.is_nil(ok)
    assert.matches("^roles/coder.lua:1: intent must be a string", err)
    assert.equal("roles/coder.lua", events[#events].file)
    assert.equal(1, events[#events].line)
    local problems = events[#events].problems
    assert.equal(2, #problems, table.concat(problems, "\n"))
    assert.matches("^roles/coder.lua:1: intent must be a string", problems[1])
    assert.matches("^policies/bad.lua:2: unknown field 'bogus'", problems[2])
    os.remove(dir .. "/policies/bad.lua")
    assert.equal(before, e.roles)
    -- The run goes on with the built-in coder.
    os.remove(dir .. "/roles/coder.lua")
    assert.equal("done", (e:execute(assert(e:start("NOTES")))))
    for _, req in ipairs(requests) do
      if req.meta.role == "coder" then assert.matches("careful software developer", system_of(req)) end
    end
    e.close_all()
  end)

  it("refuses a set that drops a role the team holds, and reloads tools, policies and routing", function()
    local dir = notes_project()
    local e, events = open(dir)
    -- A broken policy is named with its line.
    H.write(dir .. "/policies/extra.lua", "deny { tool = \"write_file\" }\ndeny { toool = \"x\" }\n")
    local ok, err = reload.apply(e)
    assert.is_nil(ok)
    assert.matches("policies/extra.lua:2: unknown field 'toool'", err)
    assert.equal(2, events[#events].line)
    -- A valid one is swapped in, together with a project tool and routing.lua.
    H.write(dir .. "/policies/extra.lua", "deny { tool = \"delete_file\", reason = \"no deletes here\" }\n")
    os.execute("mkdir " .. H.quote(dir .. "/tools"))
    H.write(dir .. "/tools/shout.lua", [[return { name = "shout", description = "Shouts.", effect = "read",
      handler = function(args) return { said = "HEY" } end }]])
    H.write(dir .. "/routing.lua", "return { worker = function(card, team) return 'lead_architect' end }\n")
    local old_tools, old_policies = e.tools, e.policies
    assert.is_true(reload.apply(e))
    assert.not_equal(old_tools, e.tools)
    assert.not_equal(old_policies, e.policies)
    assert.is_table(e.tools:get("shout"))
    assert.equal("lead_architect", e.routing:choose("worker", { id = "X" }, e.settings.team))
    assert.equal(dir .. "/policies/extra.lua", e.policies.files[#e.policies.files])
    -- A team role that disappears with the edit keeps the old set.
    e.settings.team.qa = { roles = { "tester" } }
    H.write(dir .. "/roles/tester.lua", "return { intent = 't', tools = {}, system = 's' }\n")
    assert.is_true(reload.apply(e))
    os.remove(dir .. "/roles/tester.lua")
    local kept = e.roles
    ok, err = reload.apply(e)
    assert.is_nil(ok)
    assert.matches("team.qa.roles%[1%]: no role named \"tester\"", err)
    assert.equal(kept, e.roles)
    e.close_all()
  end)

  it("keeps the old set when a script folder becomes a file, and says it", function()
    local dir = notes_project()
    H.write(dir .. "/roles/coder.lua", MARKED_CODER)
    local e, events = open(dir)
    local kept = e.roles
    assert.equal("Implement the issue (reloaded version).", e.roles.by_name.coder.intent)
    os.remove(dir .. "/roles/coder.lua")
    os.remove(dir .. "/roles")
    H.write(dir .. "/roles", "not a folder\n")
    local ok, err, code = reload.apply(e, { ["roles/coder.lua"] = true })
    assert.is_nil(ok)
    assert.equal("ENOTDIR", code)
    assert.matches("^roles: a file, not a folder", err)
    assert.equal(kept, e.roles) -- not the built-in coder in its place
    local last = events[#events]
    assert.equal("reload_error", last.type)
    assert.matches("^roles: a file, not a folder", last.problems[1])
    assert.matches("^roles: a file, not a folder",
      require("cjson").decode(e.db:row("SELECT data FROM events WHERE kind = 'reload_error'").data).error)
    e.close_all()
  end)

  it("keeps the old role when an edit names a model no provider serves", function()
    local dir = notes_project()
    local e, events = open(dir)
    local kept = e.roles
    H.write(dir .. "/roles/coder.lua", "return { intent = 'x', tools = {}, system = 's',\n  model = 'nope:x' }\n")
    local ok, err = reload.apply(e)
    assert.is_nil(ok)
    assert.matches("roles/coder%.lua:2: model: names provider 'nope', which is not configured", err)
    assert.equal(kept, e.roles)
    assert.equal("reload_error", events[#events].type)
    e.close_all()
  end)

  it("keeps the old set when a tool a role lists is gone; a run does not start with it", function()
    local dir = notes_project()
    os.execute("mkdir " .. H.quote(dir .. "/tools"))
    H.write(dir .. "/tools/shout.lua", [[return { name = "shout", description = "Shouts.", effect = "read",
      handler = function(args) return { said = "HEY" } end }]])
    H.write(dir .. "/roles/tester.lua", "return { intent = 't',\n  tools = { 'shout' }, system = 's' }\n")
    local e, events = open(dir)
    local kept = e.roles
    os.remove(dir .. "/tools/shout.lua")
    local ok, err = reload.apply(e)
    assert.is_nil(ok)
    assert.matches("roles/tester%.lua:2: tools%[1%]: no tool named \"shout\"", err)
    assert.equal(kept, e.roles)
    assert.equal("reload_error", events[#events].type)
    e.close_all()
    local e2, serr = setup.open(dir, {})
    assert.is_nil(e2)
    assert.matches("roles/tester%.lua:2: tools%[1%]: no tool named \"shout\"", serr)
  end)

  it("says why a workspace folder it could not make is missing", function()
    -- sysfs makes no folders, for root too: as a read-only project's workspace/ on its first run
    local e, err, code = setup.open(notes_project(), { workspace = "/sys/orket-no-workspace" })
    assert.is_nil(e)
    assert.equal("EIO", code)
    assert.matches("^workspace: cannot make /sys/orket%-no%-workspace: E%u+", err)
  end)

  it("names every file of a burst of saves in one reload event, relative to the project", function()
    local dir = notes_project()
    os.execute("mkdir " .. H.quote(dir .. "/tools"))
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 200 })
    -- Four files in three folders and the project's own routing.lua, saved in a row.
    H.write(dir .. "/roles/coder.lua", MARKED_CODER)
    H.write(dir .. "/tools/shout.lua", [[return { name = "shout", description = "Shouts.", effect = "read",
      handler = function(args) return { said = "HEY" } end }]])
    H.write(dir .. "/policies/extra.lua", "deny { tool = \"delete_file\", reason = \"no deletes here\" }\n")
    H.write(dir .. "/routing.lua", "return { worker = function(card, team) return 'lead_architect' end }\n")
    local t0 = orket.now()
    while count(events, "reload") == 0 and orket.now() - t0 < 5000 do orket.sleep(20) end
    w:close()
    assert.equal(1, count(events, "reload"))
    local want = { "policies/extra.lua", "roles/coder.lua", "routing.lua", "tools/shout.lua" }
    local ev = events[#events]
    assert.equal("reload", ev.type)
    assert.same(want, ev.files)
    assert.is_table(e.tools:get("shout"))
    local row = e.db:row("SELECT data FROM events WHERE kind = 'reload'")
    assert.same(want, require("cjson").decode(row.data).files)
    -- as `orket run --json` prints it; a reload with no file named has an empty array
    local jsonout = require "orket.jsonout"
    assert.equal('{"files":["policies/extra.lua","roles/coder.lua","routing.lua","tools/shout.lua"],"type":"reload"}',
      jsonout.encode(ev))
    assert.is_true(reload.apply(e))
    assert.equal('{"files":[],"type":"reload"}', jsonout.encode(events[#events]))
    e.close_all()
  end)

  it("names the scripts of a folder moved in, never the folder, in a reload's files", function()
    local dir = notes_project()
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 50 })
    -- tools/ does not exist yet: it arrives whole, with a script in it
    os.execute("mkdir " .. H.quote(dir .. "/tools.new"))
    H.write(dir .. "/tools.new/shout.lua", [[return { name = "shout", description = "Shouts.", effect = "read",
      handler = function(args) return { said = "HEY" } end }]])
    os.execute("mv " .. H.quote(dir .. "/tools.new") .. " " .. H.quote(dir .. "/tools"))
    local t0 = orket.now()
    while count(events, "reload") == 0 and orket.now() - t0 < 5000 do orket.sleep(20) end
    assert.equal(1, count(events, "reload"))
    assert.same({ "tools/shout.lua" }, events[#events].files)
    assert.is_table(e.tools:get("shout"))
    -- a change the kernel reports on the folder itself names no file either
    w:touch()
    assert.is_true(w:trigger())
    assert.same({}, events[#events].files)
    w:close()
    e.close_all()
  end)

  it("picks up a real edit through the fs watcher, one reload per burst", function()
    local dir = notes_project()
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 50 })
    assert.is_not_nil(w.handles[dir .. "/roles"] or w.handles[dir])
    -- Five saves in a row (no wait in between): one reload after the quiet period.
    for i = 1, 5 do H.write(dir .. "/roles/coder.lua", MARKED_CODER .. "-- save " .. i .. "\n") end
    local t0 = orket.now()
    while count(events, "reload") == 0 and orket.now() - t0 < 5000 do orket.sleep(20) end
    assert.equal(1, count(events, "reload"))
    assert.equal(dir .. "/roles/coder.lua", e.roles.by_name.coder.file)
    -- A broken save: reported, the reloaded coder stays.
    local good = e.roles
    H.write(dir .. "/roles/coder.lua", "return {{\n")
    t0 = orket.now()
    while count(events, "reload_error") == 0 and orket.now() - t0 < 5000 do orket.sleep(20) end
    assert.equal(1, count(events, "reload_error"))
    assert.equal("roles/coder.lua", events[#events].file)
    assert.equal(2, events[#events].line)
    assert.equal(good, e.roles)
    -- A folder created after the start is watched too.
    os.execute("mkdir " .. H.quote(dir .. "/tools"))
    t0 = orket.now()
    while not w.handles[dir .. "/tools"] and orket.now() - t0 < 5000 do orket.sleep(20) end
    assert.is_not_nil(w.handles[dir .. "/tools"])
    w:close()
    w:close()
    e.close_all()
  end)

  -- a coder role with this intent, to see which version is in force
  local function coder(intent)
    return "return { intent = " .. string.format("%q", intent) .. ", tools = { \"read_file\" }, system = \"s\" }\n"
  end
  local q = H.quote
  -- waits for the n-th event of type ty
  local function wait(events, ty, n)
    local t0 = orket.now()
    while count(events, ty) < n and orket.now() - t0 < 5000 do orket.sleep(20) end
    assert.equal(n, count(events, ty))
  end

  -- a policy saved under a name no script has (a copy, "deny copy.lua") made no event, and
  -- every later reload passed it over: its deny never applied, and nothing said so
  it("refuses a script saved under a name no script has, at its own event, naming it; an editor's file is nothing",
    function()
    local dir = notes_project()
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 50 })
    local before = e.policies
    H.write(dir .. "/policies/.#p.lua", "x\n") -- Emacs's lock, no one's script
    H.write(dir .. "/policies/deny copy.lua", 'deny { tool = "write_file" }\n')
    wait(events, "reload_error", 1)
    local last = events[#events]
    assert.equal("policies/deny copy.lua", last.file)
    assert.matches("^policies/deny copy%.lua: the file's name is no script's: a script is named NAME%.lua", last.error)
    assert.equal(before, e.policies)
    assert.equal(0, count(events, "reload"))
    w:close()
    e.close_all()
  end)

  it("reloads an edit made after the set was read and before the watch began, with no fs event for it", function()
    local dir = notes_project()
    H.write(dir .. "/roles/old.lua", coder("OLD"))
    local e, events = open(dir)
    -- between setup.open's read and the watch (orket run opens the store, the repository and
    -- its lock there): a role edited, one removed, routing.lua added; no watch saw them
    H.write(dir .. "/roles/coder.lua", coder("GAP"))
    os.remove(dir .. "/roles/old.lua")
    H.write(dir .. "/routing.lua", "return { worker = function(card, team) return 'lead_architect' end }\n")
    local w = reload.watch(e, { debounce_ms = 50 })
    -- noted as the fs events would have noted them (the quiet period started), not waited for
    assert.same({ ["roles/coder.lua"] = true, ["roles/old.lua"] = true, ["routing.lua"] = true }, w.changed)
    assert.is_true(w:trigger())
    assert.equal("GAP", e.roles.by_name.coder.intent)
    assert.is_nil(e.roles.by_name.old)
    assert.equal("lead_architect", e.routing:choose("worker", { id = "X" }, e.settings.team))
    assert.same({ "roles/coder.lua", "roles/old.lua", "routing.lua" }, events[#events].files)
    w:close()
    -- nothing changed since the set was read: a watch started again notes nothing
    local w2 = reload.watch(e, { debounce_ms = 50 })
    assert.same({}, w2.changed)
    w2:close()
    e.close_all()
  end)

  it("reloads a script that is a link when the file it points to is edited, and follows the link moved", function()
    local dir = notes_project()
    local uv = require "luv"
    local a, b = uv.fs_realpath(H.tmpdir()), uv.fs_realpath(H.tmpdir())
    H.write(a .. "/coder.lua", coder("L1"))
    H.write(b .. "/coder.lua", coder("B1"))
    os.execute("ln -s " .. q(a .. "/coder.lua") .. " " .. q(dir .. "/roles/coder.lua"))
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 50 })
    assert.equal("L1", e.roles.by_name.coder.intent)
    -- the link's target folder is watched, its events naming the link
    assert.is_not_nil(w.link_handles[a])
    assert.same({ "roles/coder.lua" }, w.links[a]["coder.lua"])
    H.write(a .. "/coder.lua", coder("L2")) -- no event in roles/: only the target's folder has one
    wait(events, "reload", 1)
    assert.equal("L2", e.roles.by_name.coder.intent)
    assert.same({ "roles/coder.lua" }, events[#events].files)
    -- the target removed: said, the loaded version kept; put back: reloaded (its folder stays watched)
    os.remove(a .. "/coder.lua")
    wait(events, "reload_error", 1)
    assert.equal("roles/coder.lua", events[#events].file)
    assert.equal("L2", e.roles.by_name.coder.intent)
    assert.is_not_nil(w.link_handles[a])
    H.write(a .. "/coder.lua", coder("L3"))
    wait(events, "reload", 2)
    assert.equal("L3", e.roles.by_name.coder.intent)
    -- pointed elsewhere: the new target's folder is watched, the old one no longer
    os.execute("ln -sfn " .. q(b .. "/coder.lua") .. " " .. q(dir .. "/roles/coder.lua"))
    wait(events, "reload", 3)
    assert.equal("B1", e.roles.by_name.coder.intent)
    assert.is_nil(w.link_handles[a])
    assert.is_not_nil(w.link_handles[b])
    H.write(b .. "/coder.lua", coder("B2"))
    wait(events, "reload", 4)
    assert.equal("B2", e.roles.by_name.coder.intent)
    w:close()
    assert.same({}, w.link_handles)
    e.close_all()
  end)

  it("says which sections of an edited orket.lua the run does not take up (a price, a budget)", function()
    local dir = notes_project(true)
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 })
    local text = assert(H.read(dir .. "/orket.lua"))
    -- orket.lua saved unchanged: a reload naming it, nothing left out
    w:touch("orket.lua")
    assert.is_true(w:trigger())
    assert.same({ "orket.lua" }, events[#events].files)
    assert.is_nil(events[#events].unapplied)
    -- a price and a budget changed mid-run: the run keeps its own, and the reload says so
    H.write(dir .. "/orket.lua", (text:gsub('default = "scripted:team",', 'default = "scripted:team",\n'
      .. '  prices = { ["scripted:team"] = { input = "1", cached_input = "1", output = "2", currency = "USD" } },'))
      .. "budgets = { turns_per_card = 2 }\n")
    local budgets = e.settings.budgets
    w:touch("orket.lua")
    assert.is_true(w:trigger())
    assert.equal("reload", events[#events].type)
    assert.same({ "budgets", "models" }, events[#events].unapplied)
    assert.equal(budgets, e.settings.budgets)
    local row = e.db:row("SELECT data FROM events WHERE kind = 'reload' ORDER BY id DESC LIMIT 1")
    assert.same({ "budgets", "models" }, require("cjson").decode(row.data).unapplied)
    w:close()
    e.close_all()
  end)

  it("evaluates orket.lua once per reload that names it", function()
    local dir = notes_project()
    local e = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 })
    local config = require "orket.config"
    local read, n = config.read, 0
    config.read = function(...)
      n = n + 1
      return read(...)
    end
    local text = assert(H.read(dir .. "/orket.lua"))
    H.write(dir .. "/orket.lua", text .. "budgets = { turns_per_card = 2 }\n")
    w:touch("orket.lua")
    local ok, err = pcall(w.trigger, w)
    config.read = read
    assert(ok, err)
    assert.is_true(err)
    assert.equal(1, n)
    w:close()
    e.close_all()
  end)

  it("has orket log say the sections of orket.lua edited during the run that it did not take up", function()
    local dir = notes_project(true)
    local e = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 }) -- only trigger() reloads in this test
    local text, edited = assert(H.read(dir .. "/orket.lua")), false
    hooks.on_request = function(req)
      if not edited and req.meta.role == "coder" then
        edited = true
        H.write(dir .. "/orket.lua", text .. "budgets = { turns_per_card = 2 }\n")
        w:touch("orket.lua")
        assert.is_true(w:trigger())
      end
    end
    assert.equal("done", e:execute(assert(e:start("NOTES"))))
    w:close()
    e.close_all()
    local log = H.orket("log 1 --full", { cwd = dir })
    assert.matches("%*%* scripts reloaded: orket.lua\n   orket.lua: budgets changed; not applied to this run", log.stdout)
  end)

  it("runs one reload at a time: one asked for while another waits on its journal row follows it", function()
    local task = require "orket.task"
    local dir = notes_project()
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 }) -- only trigger() reloads in this test
    -- the refusal's journal row waits (as a write to PostgreSQL does) until released
    local event, held, release = e.db.event, false, false
    e.db.event = function(db, ev)
      if ev.kind == "reload_error" and not held then
        held = true
        while not release do orket.sleep(5) end
      end
      return event(db, ev)
    end
    H.write(dir .. "/roles/coder.lua", "return {\n")
    w:touch("roles/coder.lua")
    local first = task.spawn(function() return w:trigger() end)
    while not held do orket.sleep(5) end
    -- fixed while the refusal is being written: this reload comes after it, never before
    H.write(dir .. "/roles/coder.lua", coder("FIXED"))
    w:touch("roles/coder.lua")
    local second = task.spawn(function() return w:trigger() end)
    assert.equal(0, count(events, "reload"))
    release = true
    assert.is_true(second:join())
    first:join()
    while count(events, "reload") == 0 do orket.sleep(5) end
    assert.equal("FIXED", e.roles.by_name.coder.intent)
    assert.equal("reload", events[#events].type) -- the refusal of the broken save is not said last
    assert.same({ "reload_error", "reload" }, { events[#events - 1].type, events[#events].type })
    e.db.event = nil
    w:close()
    e.close_all()
  end)

  it("watches a script folder deleted and made again, and takes the edits in it", function()
    local dir = notes_project()
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 50 })
    -- deleted and made again: the edit made with it, then a later one, are taken
    os.execute("rm -rf " .. q(dir .. "/roles") .. " && mkdir " .. q(dir .. "/roles"))
    H.write(dir .. "/roles/coder.lua", coder("VA"))
    wait(events, "reload", 1)
    orket.sleep(150) -- the burst is over
    local n = count(events, "reload")
    assert.equal("VA", e.roles.by_name.coder.intent)
    assert.same({ "roles/coder.lua" }, events[#events].files) -- the script of the folder made again is named
    H.write(dir .. "/roles/coder.lua", coder("VB"))
    wait(events, "reload", n + 1)
    assert.equal("VB", e.roles.by_name.coder.intent)
    w:close()
    e.close_all()
  end)

  it("watches a script folder swapped in with mv, and takes the edits in it and not in the old one", function()
    local dir = notes_project()
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 50 })
    -- swapped in whole: the edit in it, then a later one, are taken; the folder moved away is no longer watched
    os.execute("mkdir " .. q(dir .. "/roles.new"))
    H.write(dir .. "/roles.new/coder.lua", coder("SWAP1"))
    os.execute("mv " .. q(dir .. "/roles") .. " " .. q(dir .. "/roles.old") .. " && mv " .. q(dir .. "/roles.new") .. " "
      .. q(dir .. "/roles"))
    local t0 = orket.now()
    while e.roles.by_name.coder.intent ~= "SWAP1" and orket.now() - t0 < 5000 do orket.sleep(20) end
    assert.equal("SWAP1", e.roles.by_name.coder.intent)
    orket.sleep(150)
    local n = count(events, "reload")
    H.write(dir .. "/roles/coder.lua", coder("SWAP2"))
    wait(events, "reload", n + 1)
    assert.equal("SWAP2", e.roles.by_name.coder.intent)
    assert.same({ "roles/coder.lua" }, events[#events].files)
    -- the folder moved away is not a script folder any more: a change there is nothing
    H.write(dir .. "/roles.old/coder.lua", coder("OLD"))
    orket.sleep(300)
    assert.equal(n + 1, count(events, "reload"))
    -- a broken file in it is said, with its line
    H.write(dir .. "/roles/extra.lua", "return {\n")
    wait(events, "reload_error", 1)
    assert.equal("roles/extra.lua", events[#events].file)
    assert.equal(2, events[#events].line)
    assert.equal("SWAP2", e.roles.by_name.coder.intent)
    w:close()
    e.close_all()
  end)

  it("reloads nothing for an event on a script folder itself, and only the scripts changed", function()
    local dir = notes_project()
    H.write(dir .. "/roles/coder.lua", coder("C1"))
    H.write(dir .. "/roles/other.lua", coder("O1"))
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 50 })
    -- its mode and times changed, no script: no reload
    os.execute("chmod 700 " .. q(dir .. "/roles") .. " && touch " .. q(dir .. "/roles"))
    orket.sleep(300)
    assert.equal(0, count(events, "reload"))
    assert.is_not_nil(w.handles[dir .. "/roles"])
    -- a script edited, then an event on the folder: the edit is reloaded once, by itself
    H.write(dir .. "/roles/coder.lua", coder("C2"))
    wait(events, "reload", 1)
    assert.same({ "roles/coder.lua" }, events[#events].files)
    orket.sleep(150)
    os.execute("chmod 755 " .. q(dir .. "/roles"))
    orket.sleep(300)
    assert.equal(1, count(events, "reload"))
    -- a copy with one script changed swapped in names that script only
    os.execute("cp -R " .. q(dir .. "/roles") .. " " .. q(dir .. "/roles.new"))
    H.write(dir .. "/roles.new/other.lua", coder("O2"))
    os.execute("mv " .. q(dir .. "/roles") .. " " .. q(dir .. "/roles.old") .. " && mv " .. q(dir .. "/roles.new") .. " "
      .. q(dir .. "/roles"))
    wait(events, "reload", 2)
    assert.same({ "roles/other.lua" }, events[#events].files)
    assert.equal("O2", e.roles.by_name.other.intent)
    w:close()
    e.close_all()
  end)

  it("says a watch that cannot be made once while it fails the same way", function()
    local dir = notes_project(true)
    local e, events = open(dir)
    assert.equal(require("tests.backends").name(), e.db.backend == "pg" and "pg" or "sqlite")
    local uv = require "luv"
    local real = uv.new_fs_event
    -- roles/ cannot be watched, as when the kernel's inotify watches are used up
    uv.new_fs_event = function()
      local h = real()
      return setmetatable({}, { __index = function(_, k)
        if k == "start" then
          return function(_, path, ...)
            if path == dir .. "/roles" then return nil, "ENOSPC: no space left on device", "ENOSPC" end
            return h:start(path, ...)
          end
        end
        return function(_, ...) return h[k](h, ...) end
      end })
    end
    local ok, w = pcall(reload.watch, e, { debounce_ms = 50 })
    if not ok then
      uv.new_fs_event = real
      error(w)
    end
    -- a run with no listener but its journal (orket serve's) hears of it there, once the
    -- run begins: the watch starts before it
    local run = assert(e.db:record_run { target = "NOTES", kind = "epic" })
    e:use_run(run)
    -- held until the run has said its run_start (Run:open_execution calls the hook)
    assert.equal(0, count(events, "watch_error"))
    e.on_run_start(run)
    local said = count(events, "watch_error")
    -- each event on the folder tries again, failing the same way: said once
    for _ = 1, 3 do
      os.execute("touch " .. q(dir .. "/roles"))
      orket.sleep(120)
    end
    uv.new_fs_event = real
    assert.equal(1, said)
    assert.equal(1, count(events, "watch_error"))
    local ev
    for _, x in ipairs(events) do if x.type == "watch_error" then ev = x end end
    assert.equal("roles", ev.file)
    assert.equal("ENOSPC", ev.code)
    -- the usual cause named as it is: inotify's limit, not the disk
    assert.matches("^roles/: cannot be watched %(ENOSPC: the kernel's inotify watches are used up; raise sysctl "
      .. "fs%.inotify%.max_user_watches%)", ev.error)
    assert.is_nil(ev.error:find("no space left", 1, true))
    assert.is_nil(w.handles[dir .. "/roles"])
    -- once it can be watched, a later failure is said again
    os.execute("touch " .. q(dir .. "/roles"))
    local t0 = orket.now()
    while not w.handles[dir .. "/roles"] and orket.now() - t0 < 5000 do orket.sleep(20) end
    assert.is_not_nil(w.handles[dir .. "/roles"])
    w:close()
    -- journaled once, with the run, as `orket log` shows it
    local rows = e.db:rows("SELECT run_id, data FROM events WHERE kind = 'watch_error'")
    assert.equal(1, #rows)
    assert.equal(run, rows[1].run_id)
    local data = require("cjson").decode(rows[1].data)
    assert.equal("roles", data.file)
    assert.equal("ENOSPC", data.code)
    assert.equal(ev.error, data.error)
    local log = H.orket("log " .. run, { cwd = dir })
    assert.equal(0, log.status, log.stderr)
    assert.matches("** hot reload: " .. ev.error, log.stdout, 1, true)
    -- the watcher's own failure (apply raising) is said once too
    local apply = reload.apply
    reload.apply = function() error("boom") end
    local w2 = reload.watch(e, { debounce_ms = 10000 })
    local before = count(events, "reload_error")
    w2:touch("roles/coder.lua")
    w2:trigger()
    w2:touch("roles/coder.lua")
    w2:trigger()
    reload.apply = apply
    w2:close()
    assert.equal(before + 1, count(events, "reload_error"))
    e.close_all()
  end)

  it("tries a failed watch of the project folder again at the next reload; a folder gone before its watch is nothing",
    function()
    local dir = notes_project()
    local e, events = open(dir)
    local uv = require "luv"
    local real = uv.new_fs_event
    local fails = 1
    uv.new_fs_event = function()
      local h = real()
      return setmetatable({}, { __index = function(_, k)
        if k == "start" then
          return function(_, path, ...)
            -- the project folder fails once; roles/ is removed between its check and its watch
            if path == dir and fails > 0 then
              fails = fails - 1
              return nil, "EMFILE: too many open files", "EMFILE"
            end
            if path == dir .. "/roles" then return nil, "ENOENT: no such file or directory", "ENOENT" end
            return h:start(path, ...)
          end
        end
        return function(_, ...) return h[k](h, ...) end
      end })
    end
    local ok, w = pcall(reload.watch, e, { debounce_ms = 10000 })
    uv.new_fs_event = real
    if not ok then error(w) end
    w:run_started() -- (said once a run has begun)
    assert.equal(1, count(events, "watch_error"))
    local ev = events[#events]
    assert.equal(".", ev.file)
    assert.matches("fs.inotify.max_user_instances", ev.error, 1, true)
    assert.is_nil(w.handles[dir])
    -- any reload (a tool's edit, say) tries it again
    w:touch("tools/x.lua")
    w:trigger()
    assert.is_not_nil(w.handles[dir])
    assert.is_nil(w.failing[dir])
    assert.equal(1, count(events, "watch_error"))
    w:close()
    e.close_all()
  end)

  it("keeps a digest of each script as last reloaded; a refused reload is tried again at the folder's next event",
    function()
    local dir = notes_project()
    H.write(dir .. "/roles/coder.lua", coder("C1"))
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 50 })
    local crypto = require "orket.c.crypto"
    assert.equal(crypto.hash(coder("C1")), w.seen["roles/coder.lua"])
    -- the reload of an edit fails for a passing reason (an MCP server that did not start)
    local apply = reload.apply
    reload.apply = function()
      reload.apply = apply
      return nil, "passing", "EIO"
    end
    H.write(dir .. "/roles/coder.lua", coder("C2"))
    local t0 = orket.now()
    while reload.apply ~= apply and orket.now() - t0 < 5000 do orket.sleep(20) end
    reload.apply = apply
    orket.sleep(100)
    assert.equal(0, count(events, "reload"))
    assert.equal(crypto.hash(coder("C1")), w.seen["roles/coder.lua"])
    -- an event on the folder itself finds the edit not yet in force
    os.execute("touch " .. q(dir .. "/roles"))
    wait(events, "reload", 1)
    assert.same({ "roles/coder.lua" }, events[#events].files)
    assert.equal("C2", e.roles.by_name.coder.intent)
    assert.equal(crypto.hash(coder("C2")), w.seen["roles/coder.lua"])
    w:close()
    e.close_all()
  end)

  it("places an orket.lua mcp error at its line, as orket validate does", function()
    local dir = notes_project()
    local e, events = open(dir)
    local f = assert(io.open(dir .. "/orket.lua", "a"))
    f:write("mcp = { servers = { bad_srv = { command = \"notarray\" } } }\n")
    f:close()
    local ok, err = reload.apply(e, { ["orket.lua"] = true })
    assert.is_nil(ok)
    assert.matches("^orket.lua:15: mcp.servers.bad_srv.command: ", err)
    local ev = events[#events]
    assert.equal("reload_error", ev.type)
    assert.equal("orket.lua", ev.file)
    assert.equal(15, ev.line)
    local data = require("cjson").decode(e.db:row("SELECT data FROM events WHERE kind = 'reload_error'").data)
    assert.equal(15, data.line)
    e.close_all()
  end)

  it("says orket.lua removed during a run, and goes on with the settings it loaded", function()
    local dir = notes_project()
    local e, events = open(dir)
    local settings = e.settings
    os.remove(dir .. "/orket.lua")
    local ok, err, code = reload.apply(e, { ["orket.lua"] = true })
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    assert.matches("^orket.lua: removed; the run goes on with the settings it loaded", err)
    assert.not_matches("orket init", err, 1, true)
    local ev = events[#events]
    assert.equal("reload_error", ev.type)
    assert.equal("orket.lua", ev.file)
    assert.equal(err, ev.error)
    assert.same({}, ev.problems)
    local data = require("cjson").decode(e.db:row("SELECT data FROM events WHERE kind = 'reload_error'").data)
    assert.equal("orket.lua", data.file)
    assert.equal(settings, e.settings)
    -- the scripts still reload, on those settings
    H.write(dir .. "/roles/coder.lua", coder("NO-ORKET-LUA"))
    assert.is_true(reload.apply(e, { ["roles/coder.lua"] = true }))
    assert.equal("NO-ORKET-LUA", e.roles.by_name.coder.intent)
    e.close_all()
  end)

  it("says a standing reload error once, and again only when it changes", function()
    local dir = notes_project()
    local e, events = open(dir)
    H.write(dir .. "/roles/coder.lua", "return {{\n")
    assert.is_nil(reload.apply(e, { ["roles/coder.lua"] = true }))
    assert.equal(1, count(events, "reload_error"))
    -- another file changes, the same error stands: nothing new is said, the caller still hears it
    H.write(dir .. "/policies/extra.lua", "deny { tool = \"delete_file\", reason = \"no\" }\n")
    local ok, err = reload.apply(e, { ["policies/extra.lua"] = true })
    assert.is_nil(ok)
    assert.matches("^roles/coder.lua:2:", err)
    assert.is_nil(reload.apply(e, {}))
    assert.equal(1, count(events, "reload_error"))
    assert.equal(1, e.db:row("SELECT count(*) AS n FROM events WHERE kind = 'reload_error'").n)
    -- a different error is said
    H.write(dir .. "/roles/coder.lua", "return {{{\n\n")
    assert.is_nil(reload.apply(e, { ["roles/coder.lua"] = true }))
    assert.equal(2, count(events, "reload_error"))
    -- fixed, then broken the same way again: said again
    os.remove(dir .. "/roles/coder.lua")
    assert.is_true(reload.apply(e, { ["roles/coder.lua"] = true }))
    H.write(dir .. "/roles/coder.lua", "return {{\n")
    assert.is_nil(reload.apply(e, { ["roles/coder.lua"] = true }))
    assert.equal(3, count(events, "reload_error"))
    e.close_all()
  end)

  -- uv.new_fs_event with the watch of path failing as the kernel's inotify limit does ->
  -- a function that puts the real one back
  local function failing_watch(path)
    local uv = require "luv"
    local real = uv.new_fs_event
    uv.new_fs_event = function()
      local h = real()
      return setmetatable({}, { __index = function(_, k)
        if k == "start" then
          return function(_, p, ...)
            if p == path then return nil, "ENOSPC: no space left on device", "ENOSPC" end
            return h:start(p, ...)
          end
        end
        return function(_, ...) return h[k](h, ...) end
      end })
    end
    return function() uv.new_fs_event = real end
  end

  it("says a watch that failed before the run began after its run_start, with its id, journaled as the run ends",
    function()
    local dir = notes_project(true)
    local e, events = open(dir)
    local restore = failing_watch(dir .. "/roles")
    local ok, w = pcall(reload.watch, e, { debounce_ms = 10000 })
    restore()
    if not ok then error(w) end
    -- nothing of the run is said before its run_start, in the stream or the journal
    assert.equal(0, count(events, "watch_error"))
    local id = assert(e:start("NOTES"))
    -- a run that ends at once, the watch closed right after, as orket run closes it
    e:stop()
    local status = e:execute(id)
    w:close()
    assert.equal("interrupted", status)
    local start_at, watch_at
    for i, ev in ipairs(events) do
      if ev.type == "run_start" then start_at = start_at or i end
      if ev.type == "watch_error" then watch_at = watch_at or i end
    end
    assert.is_number(start_at)
    assert.is_number(watch_at)
    assert.is_true(start_at < watch_at, "watch_error said before run_start")
    assert.equal(1, count(events, "watch_error"))
    assert.equal(id, events[watch_at].run_id)
    assert.equal("roles", events[watch_at].file)
    -- the journal's row was written before the watch closed, with the run
    local rows = e.db:rows("SELECT run_id, data FROM events WHERE kind = 'watch_error'")
    assert.equal(1, #rows)
    assert.equal(id, rows[1].run_id)
    assert.equal(events[watch_at].error, require("cjson").decode(rows[1].data).error)
    e.close_all()
  end)

  it("says nothing of a watch that failed for a run that never began", function()
    local dir = notes_project()
    local e, events = open(dir)
    local restore = failing_watch(dir .. "/roles")
    local ok, w = pcall(reload.watch, e, { debounce_ms = 10000 })
    restore()
    if not ok then error(w) end
    w:close()
    assert.is_nil(e.on_run_start)
    assert.equal(0, count(events, "watch_error"))
    assert.equal(0, e.db:row("SELECT count(*) AS n FROM events WHERE kind = 'watch_error'").n)
    e.close_all()
  end)

  it("says no held watch failure whose folder was watched before the run began", function()
    local dir = notes_project()
    local e, events = open(dir)
    local restore = failing_watch(dir .. "/roles")
    local ok, w = pcall(reload.watch, e, { debounce_ms = 10000 })
    restore()
    if not ok then error(w) end
    -- before the run's start, a reload retries the watch, which works now
    w:touch("tools/x.lua")
    w:trigger()
    assert.is_truthy(w.handles[dir .. "/roles"])
    w:run_started()
    assert.equal(0, count(events, "watch_error"))
    assert.equal(0, e.db:row("SELECT count(*) AS n FROM events WHERE kind = 'watch_error'").n)
    w:close()
    e.close_all()
  end)

  -- e.db:event slowed for events of kind, as a store that waits on its server: -> state
  -- {entered=, hold=} (the write waits while hold is true)
  local function slow_journal(e, kind)
    local st, db = { entered = false, hold = true }, e.db
    local real = db.event
    db.event = function(self, ev)
      if ev.kind == kind then
        st.entered = true
        while st.hold do orket.sleep(10) end
      end
      return real(self, ev)
    end
    return st
  end
  local function rows(e, kind)
    return e.db:row("SELECT count(*) AS n FROM events WHERE kind = '" .. kind .. "'").n
  end

  it("waits as it closes for the row of a reload its timer started, as a run ends right after", function()
    local dir = notes_project(true)
    local e = open(dir)
    local w = reload.watch(e, { debounce_ms = 10 })
    local st = slow_journal(e, "reload")
    H.write(dir .. "/roles/coder.lua", MARKED_CODER)
    w:touch("roles/coder.lua")
    local t0 = orket.now()
    while not st.entered and orket.now() - t0 < 5000 do orket.sleep(5) end
    assert.is_true(st.entered)
    local uv = require "luv"
    local release = uv.new_timer()
    release:start(200, 0, function() st.hold = false end)
    w:close()
    release:close()
    assert.is_false(st.hold)
    assert.equal(1, rows(e, "reload"))
    -- closed in a task, as orket serve's executor closes it: the same
    w = reload.watch(e, { debounce_ms = 10 })
    st.entered, st.hold = false, true
    H.write(dir .. "/roles/coder.lua", coder("IN-A-TASK"))
    w:touch("roles/coder.lua")
    t0 = orket.now()
    while not st.entered and orket.now() - t0 < 5000 do orket.sleep(5) end
    assert.is_true(st.entered)
    release = uv.new_timer()
    release:start(200, 0, function() st.hold = false end)
    assert(require("orket.task").spawn(function() w:close() end):join())
    release:close()
    assert.is_false(st.hold)
    assert.equal(2, rows(e, "reload"))
    e.close_all()
  end)

  it("stops its watches before it waits for a row as it closes, and waits a bounded while", function()
    local dir = notes_project(true)
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 })
    w:run_started()
    -- tools/ made during the run cannot be watched; then, while the watch closes, roles/
    -- swapped for a folder that cannot be watched either
    local restore1 = failing_watch(dir .. "/tools")
    local restore2 = failing_watch(dir .. "/roles")
    local st = slow_journal(e, "watch_error")
    local ok, err = pcall(function()
      os.execute("mkdir " .. q(dir .. "/tools"))
      local t0 = orket.now()
      while not st.entered and orket.now() - t0 < 5000 do orket.sleep(5) end
      assert.is_true(st.entered)
      assert.equal(1, count(events, "watch_error"))
      local uv = require "luv"
      local swap, release = uv.new_timer(), uv.new_timer()
      swap:start(30, 0, function()
        os.execute("mv " .. q(dir .. "/roles") .. " " .. q(dir .. "/roles.old") .. " && mkdir " .. q(dir .. "/roles"))
      end)
      release:start(3000, 0, function() st.hold = false end)
      local old = reload.CLOSE_WAIT_MS
      reload.CLOSE_WAIT_MS = 300
      t0 = orket.now()
      w:close()
      reload.CLOSE_WAIT_MS = old
      local took = orket.now() - t0
      -- the row still being written when the wait ended is written after
      while st.hold do orket.sleep(10) end
      swap:close()
      release:close()
      assert.is_true(took < 2000, "close waited " .. took .. " ms")
      -- nothing said once it closed
      assert.equal(1, count(events, "watch_error"))
      t0 = orket.now()
      while rows(e, "watch_error") < 1 and orket.now() - t0 < 5000 do orket.sleep(10) end
      assert.equal(1, rows(e, "watch_error"))
    end)
    restore2()
    restore1()
    st.hold = false
    if not ok then error(err, 0) end
    e.close_all()
  end)

  -- a script saved while another was broken: its burst left the same error (said once, so
  -- nothing), and the reload that took the set up named only the fix's own burst
  it("names in the reload that takes them up the scripts changed while another was broken", function()
    local dir = notes_project()
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 }) -- only trigger() reloads in this test
    H.write(dir .. "/policies/broken.lua", "return {\n")
    w:touch("policies/broken.lua")
    assert.is_nil((w:trigger()))
    H.write(dir .. "/routing.lua", "return { worker = function(card, team) return 'lead_architect' end }\n")
    w:touch("routing.lua")
    assert.is_nil((w:trigger()))
    assert.equal(1, count(events, "reload_error")) -- the same error: said once
    os.remove(dir .. "/policies/broken.lua")
    w:touch("policies/broken.lua")
    assert.is_true(w:trigger())
    w:close()
    local ev = events[#events]
    assert.equal("reload", ev.type)
    assert.same({ "policies/broken.lua", "routing.lua" }, ev.files)
    e.close_all()
  end)

  it("takes the scripts edited in the burst that removed orket.lua, and says the removal once", function()
    local dir = notes_project()
    local e, events = open(dir)
    local settings = e.settings
    local w = reload.watch(e, { debounce_ms = 10000 }) -- only trigger() reloads in this test
    -- one burst: orket.lua moved away and a role edited (a checkout of another branch, say)
    os.remove(dir .. "/orket.lua")
    H.write(dir .. "/roles/coder.lua", coder("SAME-BURST"))
    w:touch("orket.lua")
    w:touch("roles/coder.lua")
    local ok, err, code = w:trigger()
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    assert.matches("^orket.lua: removed; the run goes on with the settings it loaded", err)
    assert.equal("SAME-BURST", e.roles.by_name.coder.intent)
    assert.equal(settings, e.settings)
    -- the reload of the script, then the removal, said last
    assert.equal(1, count(events, "reload"))
    assert.equal(1, count(events, "reload_error"))
    local last, before = events[#events], events[#events - 1]
    assert.equal("reload", before.type)
    assert.same({ "roles/coder.lua" }, before.files)
    assert.equal("reload_error", last.type)
    assert.equal("orket.lua", last.file)
    assert.same({ "orket.lua", "roles/coder.lua" }, last.files)
    assert.equal(1, e.db:row("SELECT count(*) AS n FROM events WHERE kind = 'reload'").n)
    assert.equal(1, e.db:row("SELECT count(*) AS n FROM events WHERE kind = 'reload_error'").n)
    -- what the watch compares a folder's next event with is the script in force
    assert.equal(require("orket.c.crypto").hash(coder("SAME-BURST")), w.seen["roles/coder.lua"])
    -- a later burst naming orket.lua, still gone, with another edit: the edit reloads, the
    -- standing removal is not said again
    H.write(dir .. "/roles/coder.lua", coder("NEXT-BURST"))
    w:touch("orket.lua")
    w:touch("roles/coder.lua")
    assert.is_nil(w:trigger())
    assert.equal("NEXT-BURST", e.roles.by_name.coder.intent)
    assert.equal(2, count(events, "reload"))
    assert.equal(1, count(events, "reload_error"))
    -- a broken script in such a burst is said, the old set kept
    H.write(dir .. "/roles/coder.lua", "return {{\n")
    w:touch("orket.lua")
    w:touch("roles/coder.lua")
    assert.is_nil(w:trigger())
    assert.equal("NEXT-BURST", e.roles.by_name.coder.intent)
    assert.equal(2, count(events, "reload_error"))
    assert.equal("roles/coder.lua", events[#events].file)
    w:close()
    e.close_all()
  end)

  it("keeps the loaded version of each script removed while orket.lua is away; takes the edited and added ones",
    function()
    local dir = notes_project()
    os.execute("mkdir " .. q(dir .. "/tools"))
    H.write(dir .. "/policies/guard.lua", "deny { tool = \"delete_file\", reason = \"guarded\" }\n"
      .. "deny { tool = \"write_file\", reason = \"when-guard\", when = function(call) return true end }\n")
    H.write(dir .. "/policies/default.lua", "deny { tool = \"run_command\", reason = \"own default\" }\n")
    H.write(dir .. "/roles/coder.lua", coder("OWN-CODER"))
    H.write(dir .. "/tools/add_issue_comment.lua", V2_COMMENT)
    H.write(dir .. "/routing.lua", "return { model = function(t) return nil end }\n")
    local e, events = open(dir)
    local policies, routing = e.policies, e.routing
    local function reasons()
      local out = {}
      for _, r in ipairs(e.policies.rules) do out[#out + 1] = r.reason end
      return out
    end
    local before = reasons()
    assert.is_truthy(routing.file)
    local w = reload.watch(e, { debounce_ms = 10000 })
    -- a checkout in progress: orket.lua, the policies folder, a role, a tool and routing.lua
    -- go; a role is added and another edited in the same burst
    os.remove(dir .. "/orket.lua")
    os.execute("rm -r " .. q(dir .. "/policies") .. " " .. q(dir .. "/tools"))
    os.remove(dir .. "/roles/coder.lua")
    os.remove(dir .. "/routing.lua")
    H.write(dir .. "/roles/extra.lua", coder("ADDED"))
    H.write(dir .. "/roles/architect.lua", coder("EDITED"))
    for _, f in ipairs { "orket.lua", "policies/guard.lua", "policies/default.lua", "roles/coder.lua",
      "tools/add_issue_comment.lua", "routing.lua", "roles/extra.lua", "roles/architect.lua" } do
      w:touch(f)
    end
    local ok, err, code = w:trigger()
    assert.is_nil(ok, err)
    assert.equal("ENOENT", code)
    assert.equal(1, count(events, "reload"))
    -- edited and added: taken
    assert.equal("ADDED", e.roles.by_name.extra.intent)
    assert.equal("EDITED", e.roles.by_name.architect.intent)
    -- removed: the loaded version kept, never Orket's own in its place
    assert.equal("OWN-CODER", e.roles.by_name.coder.intent)
    assert.equal("Add a comment (v2).", e.tools:get("add_issue_comment").description)
    assert.same(policies.files, e.policies.files)
    assert.same(before, reasons())
    assert.is_truthy(e.policies.compiled)
    -- a kept rule's `when` answers at its place in the new set
    for i, r in ipairs(e.policies.rules) do
      if r.reason == "when-guard" then assert.is_true(e.policies:predicate(i, { tool = "write_file" })) end
    end
    assert.equal(routing, e.routing)
    -- a later burst, orket.lua still away and not named: the same
    H.write(dir .. "/roles/extra.lua", coder("ADDED-AGAIN"))
    w:touch("roles/extra.lua")
    assert.is_true(w:trigger())
    assert.equal("ADDED-AGAIN", e.roles.by_name.extra.intent)
    assert.equal("OWN-CODER", e.roles.by_name.coder.intent)
    assert.same(policies.files, e.policies.files)
    assert.same(before, reasons())
    assert.equal(1, count(events, "reload_error"))
    -- and one naming no file (an event on a folder itself) reloads as any burst does
    H.write(dir .. "/roles/extra.lua", coder("UNNAMED"))
    w:touch()
    assert.is_true(w:trigger())
    assert.equal("UNNAMED", e.roles.by_name.extra.intent)
    assert.equal("OWN-CODER", e.roles.by_name.coder.intent)
    assert.same(before, reasons())
    -- orket.lua back: the folders alone are the set again
    os.execute("cp " .. q(H.ROOT .. "/examples/notes/orket.lua") .. " " .. q(dir .. "/orket.lua"))
    w:touch("orket.lua")
    assert.is_true(w:trigger())
    assert.not_equal("OWN-CODER", e.roles.by_name.coder.intent)
    assert.not_equal("Add a comment (v2).", e.tools:get("add_issue_comment").description)
    for _, r in ipairs(reasons()) do assert.not_equal("guarded", r) end
    assert.is_nil(e.routing.file)
    w:close()
    e.close_all()
  end)

  it("reloads a burst naming orket.lua, away, with a change that names no file (the folders read again)", function()
    local dir = notes_project()
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 })
    os.remove(dir .. "/orket.lua")
    -- an edit the kernel reported on roles/ itself, without the file's name
    H.write(dir .. "/roles/coder.lua", coder("UNNAMED-EDIT"))
    w:touch("orket.lua")
    w:touch()
    local ok, err, code = w:trigger()
    assert.is_nil(ok)
    assert.matches("^orket.lua: removed", err)
    assert.equal("ENOENT", code)
    -- taken now, not at the folder's next event
    assert.equal("UNNAMED-EDIT", e.roles.by_name.coder.intent)
    assert.equal(1, count(events, "reload"))
    assert.equal(1, count(events, "reload_error"))
    assert.equal(require("orket.c.crypto").hash(coder("UNNAMED-EDIT")), w.seen["roles/coder.lua"])
    -- a burst naming orket.lua alone, still away, reloads nothing
    H.write(dir .. "/roles/coder.lua", coder("NOT-YET"))
    w:touch("orket.lua")
    assert.is_nil(w:trigger())
    assert.equal("UNNAMED-EDIT", e.roles.by_name.coder.intent)
    assert.equal(1, count(events, "reload"))
    w:close()
    e.close_all()
  end)

  it("says a broken script of the burst that removed orket.lua once, at later bursts too", function()
    local dir = notes_project()
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 })
    os.remove(dir .. "/orket.lua")
    H.write(dir .. "/roles/coder.lua", "return {{\n")
    w:touch("orket.lua")
    w:touch("roles/coder.lua")
    assert.is_nil(w:trigger())
    assert.equal(2, count(events, "reload_error"))
    -- another burst, the script still broken, orket.lua still away (named or not)
    w:touch("roles/architect.lua")
    local ok, err = w:trigger()
    assert.is_nil(ok)
    assert.matches("^roles/coder.lua:", err)
    w:touch("orket.lua")
    w:touch("roles/architect.lua")
    assert.is_nil(w:trigger())
    assert.equal(2, count(events, "reload_error"))
    assert.equal(2, e.db:row("SELECT count(*) AS n FROM events WHERE kind = 'reload_error'").n)
    w:close()
    e.close_all()
  end)

  -- a role linked from roles/coder.lua into folder/coder.lua (intent given), under a base
  -- folder outside the project: -> base, engine, events, watcher
  local function linked_role(folder_name, intent)
    local dir = notes_project()
    local uv = require "luv"
    local base = uv.fs_realpath(H.tmpdir())
    os.execute("mkdir " .. q(base .. "/" .. folder_name))
    H.write(base .. "/" .. folder_name .. "/coder.lua", coder(intent))
    os.execute("ln -s " .. q(base .. "/" .. folder_name .. "/coder.lua") .. " " .. q(dir .. "/roles/coder.lua"))
    local e, events = open(dir)
    return base, e, events, reload.watch(e, { debounce_ms = 50 })
  end

  it("follows a link's target folder replaced at its path (moved away, another moved in)", function()
    local base, e, events, w = linked_role("shared", "V1")
    local shared = base .. "/shared"
    local ino = w.link_handles[shared].ino
    -- a deploy's swap: the new folder made beside it, then moved over the name
    os.execute("mkdir " .. q(base .. "/new"))
    H.write(base .. "/new/coder.lua", coder("V2"))
    os.execute("mv " .. q(shared) .. " " .. q(base .. "/old") .. " && mv " .. q(base .. "/new") .. " " .. q(shared))
    wait(events, "reload", 1)
    assert.equal("V2", e.roles.by_name.coder.intent)
    assert.same({ "roles/coder.lua" }, events[#events].files)
    -- the folder now at the name is the one watched: its edits reload, the old one's do not
    assert.is_not_nil(w.link_handles[shared])
    assert.are_not.equal(ino, w.link_handles[shared].ino)
    H.write(shared .. "/coder.lua", coder("V3"))
    wait(events, "reload", 2)
    assert.equal("V3", e.roles.by_name.coder.intent)
    w:close()
    e.close_all()
  end)

  it("follows a link's target folder removed and made again later", function()
    local base, e, events, w = linked_role("shared", "V1")
    local shared = base .. "/shared"
    os.execute("rm -rf " .. q(shared))
    wait(events, "reload_error", 1)
    assert.equal("roles/coder.lua", events[#events].file)
    assert.equal("V1", e.roles.by_name.coder.intent)
    -- the folder gone, the one above it is watched for its name
    assert.is_nil(w.link_handles[shared])
    assert.is_not_nil(w.link_handles[base])
    assert.same({ "roles/coder.lua" }, w.links[base].shared)
    os.execute("mkdir " .. q(shared))
    H.write(shared .. "/coder.lua", coder("V2"))
    wait(events, "reload", 1)
    assert.equal("V2", e.roles.by_name.coder.intent)
    assert.is_not_nil(w.link_handles[shared])
    H.write(shared .. "/coder.lua", coder("V3"))
    wait(events, "reload", 2)
    assert.equal("V3", e.roles.by_name.coder.intent)
    w:close()
    assert.same({}, w.link_handles)
    e.close_all()
  end)

  it("follows a link further along a script's chain pointed elsewhere (a current -> release folder link)", function()
    local dir = notes_project()
    local uv = require "luv"
    local base = uv.fs_realpath(H.tmpdir())
    for _, r in ipairs { "r1", "r2" } do
      os.execute("mkdir " .. q(base .. "/" .. r))
      H.write(base .. "/" .. r .. "/coder.lua", coder(r:upper()))
    end
    os.execute("ln -s r1 " .. q(base .. "/current"))
    os.execute("ln -s " .. q(base .. "/current/coder.lua") .. " " .. q(dir .. "/roles/coder.lua"))
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 50 })
    assert.equal("R1", e.roles.by_name.coder.intent)
    assert.same({ "roles/coder.lua" }, w.links[base].current)
    assert.same({ "roles/coder.lua" }, w.links[base .. "/r1"]["coder.lua"])
    -- the release switched: an event in base/, on current
    os.execute("ln -sfn r2 " .. q(base .. "/current"))
    wait(events, "reload", 1)
    assert.equal("R2", e.roles.by_name.coder.intent)
    assert.is_nil(w.link_handles[base .. "/r1"])
    H.write(base .. "/r2/coder.lua", coder("R2-EDITED"))
    wait(events, "reload", 2)
    assert.equal("R2-EDITED", e.roles.by_name.coder.intent)
    w:close()
    e.close_all()
  end)

  it("says a link's target folder that cannot be watched, once while it fails, and watches it once it can", function()
    local dir = notes_project(true)
    local uv = require "luv"
    local a = uv.fs_realpath(H.tmpdir())
    H.write(a .. "/coder.lua", coder("L1"))
    os.execute("ln -s " .. q(a .. "/coder.lua") .. " " .. q(dir .. "/roles/coder.lua"))
    local e, events = open(dir)
    local restore = failing_watch(a)
    local ok, err = pcall(function()
      local w = reload.watch(e, { debounce_ms = 10000 })
      assert.is_nil(w.link_handles[a])
      assert.equal(0, count(events, "watch_error")) -- (held until the run has begun)
      w:run_started()
      assert.equal(1, count(events, "watch_error"))
      local ev = events[#events]
      assert.equal("roles/coder.lua", ev.file)
      assert.equal("ENOSPC", ev.code)
      assert.matches("roles/coder.lua is a link through " .. a .. ", which cannot be watched", ev.error, 1, true)
      assert.matches("fs.inotify.max_user_watches", ev.error, 1, true)
      assert.equal(1, e.db:row("SELECT count(*) AS n FROM events WHERE kind = 'watch_error'").n)
      -- tried again at each reload, failing the same way: not said again
      H.write(dir .. "/roles/other.lua", coder("O"))
      w:touch("roles/other.lua")
      assert.is_true(w:trigger())
      assert.equal(1, count(events, "watch_error"))
      restore()
      -- watchable again: the next reload watches it
      w:touch("roles/other.lua")
      assert.is_true(w:trigger())
      assert.is_not_nil(w.link_handles[a])
      assert.same({}, w.link_failing)
      w:close()
    end)
    restore()
    e.close_all()
    if not ok then error(err, 0) end
  end)

  -- e.db:event held for the first reload row until st.release: -> st {held=, release=}
  local function hold_first_reload(e)
    local st, real = { held = false, release = false }, e.db.event
    e.db.event = function(db, ev)
      if ev.kind == "reload" and not st.held then
        st.held = true
        while not st.release do orket.sleep(5) end
      end
      return real(db, ev)
    end
    return st
  end

  it("makes one reload of the saves asked for while one is under way, never one with nothing to reload", function()
    local task = require "orket.task"
    local dir = notes_project()
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 }) -- only trigger() reloads in this test
    local st = hold_first_reload(e)
    H.write(dir .. "/roles/coder.lua", coder("V1"))
    w:touch("roles/coder.lua")
    local first = task.spawn(function() return w:trigger() end)
    while not st.held do orket.sleep(5) end
    -- two saves while its row is being written, each with its quiet period over
    H.write(dir .. "/roles/coder.lua", coder("V2"))
    w:touch("roles/coder.lua")
    local second = task.spawn(function() return w:trigger() end)
    H.write(dir .. "/roles/architect.lua", coder("A2"))
    w:touch("roles/architect.lua")
    local third = task.spawn(function() return w:trigger() end)
    st.release = true
    assert.is_true(first:join())
    assert.is_true(second:join())
    assert.is_true(third:join())
    assert.equal("V2", e.roles.by_name.coder.intent)
    assert.equal("A2", e.roles.by_name.architect.intent)
    local files = {}
    for _, ev in ipairs(events) do
      if ev.type == "reload" then files[#files + 1] = table.concat(ev.files, " ") end
    end
    assert.same({ "roles/coder.lua", "roles/architect.lua roles/coder.lua" }, files)
    assert.equal(2, e.reloads)
    assert.equal(2, e.db:row("SELECT count(*) AS n FROM events WHERE kind = 'reload'").n)
    -- nothing noted: nothing reloaded
    assert.is_true(w:trigger())
    assert.equal(2, e.reloads)
    w:close()
    e.close_all()
  end)

  it("makes no reload once closed, for a save asked for while one was under way", function()
    local task = require "orket.task"
    local dir = notes_project()
    local e, events = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 })
    local st = hold_first_reload(e)
    H.write(dir .. "/roles/coder.lua", coder("V1"))
    w:touch("roles/coder.lua")
    local first = task.spawn(function() return w:trigger() end)
    while not st.held do orket.sleep(5) end
    H.write(dir .. "/roles/coder.lua", coder("V2"))
    w:touch("roles/coder.lua")
    local second = task.spawn(function() return w:trigger() end)
    w:close()
    st.release = true
    first:join()
    second:join()
    assert.equal(1, count(events, "reload"))
    assert.equal("V1", e.roles.by_name.coder.intent)
    e.close_all()
  end)

  it("is free for the next reload when the task of the one under way is cancelled", function()
    local task = require "orket.task"
    local dir = notes_project()
    local e = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 })
    local st = hold_first_reload(e)
    H.write(dir .. "/roles/coder.lua", coder("V1"))
    w:touch("roles/coder.lua")
    local first = task.spawn(function() return w:trigger() end)
    while not st.held do orket.sleep(5) end
    first:cancel()
    assert.is_falsy(w.busy)
    H.write(dir .. "/roles/coder.lua", coder("V2"))
    w:touch("roles/coder.lua")
    assert.is_true(w:trigger())
    assert.equal("V2", e.roles.by_name.coder.intent)
    w:close()
    e.close_all()
  end)

  it("reads the project's scripts once per reload to know what it reloaded", function()
    local dir = notes_project()
    local e = open(dir)
    local w = reload.watch(e, { debounce_ms = 10000 })
    local real, n = reload.digest, 0
    reload.digest = function(...)
      n = n + 1
      return real(...)
    end
    H.write(dir .. "/roles/coder.lua", coder("V1"))
    w:touch("roles/coder.lua")
    local ok, err = pcall(w.trigger, w)
    reload.digest = real
    assert(ok, err)
    assert.equal(1, n)
    -- and it is what a later event on the folder compares with
    assert.same(reload.digest(dir), w.seen)
    w:close()
    e.close_all()
  end)

  it("says an orket.lua edit the run does not take up, made before the watch began or in a refused burst", function()
    local dir = notes_project(true)
    local e, events = open(dir)
    local text = assert(H.read(dir .. "/orket.lua"))
    -- edited before the watch began: noted as it starts
    H.write(dir .. "/orket.lua", text .. "budgets = { turns_per_card = 2 }\n")
    local w = reload.watch(e, { debounce_ms = 10000 })
    assert.same({ ["orket.lua"] = true }, w.changed)
    assert.is_true(w:trigger())
    assert.same({ "budgets" }, events[#events].unapplied)
    -- edited again in a burst refused for a broken role beside it: the reload that fixes
    -- the role says it, though its burst does not name orket.lua
    H.write(dir .. "/orket.lua", text .. "budgets = { turns_per_card = 3 }\n")
    H.write(dir .. "/roles/coder.lua", "return {\n")
    w:touch("orket.lua")
    w:touch("roles/coder.lua")
    assert.is_nil(w:trigger())
    assert.equal("reload_error", events[#events].type)
    H.write(dir .. "/roles/coder.lua", coder("FIXED"))
    w:touch("roles/coder.lua")
    assert.is_true(w:trigger())
    assert.equal("reload", events[#events].type)
    assert.same({ "orket.lua", "roles/coder.lua" }, events[#events].files)
    assert.same({ "budgets" }, events[#events].unapplied)
    local row = e.db:row("SELECT data FROM events WHERE kind = 'reload' ORDER BY id DESC LIMIT 1")
    assert.same({ "budgets" }, require("cjson").decode(row.data).unapplied)
    -- said once: the next reload, orket.lua as the set in force was read with, says nothing of it
    H.write(dir .. "/roles/coder.lua", coder("AGAIN"))
    w:touch("roles/coder.lua")
    assert.is_true(w:trigger())
    assert.same({ "roles/coder.lua" }, events[#events].files)
    assert.is_nil(events[#events].unapplied)
    w:close()
    e.close_all()
  end)
end)

-- A server's project is given by its absolute path: every script of it is still named from
-- it (scriptfile.name, each loader given the directory), at its load, in a reload's problems
-- (scriptcheck, as orket validate says them) and in a handler, a `when` or a route called later.
describe("a project's scripts under an absolute directory", function()
  after_each(H.cleanup)

  it("are named from it at load, in reload problems and when a tool, a policy's when or a route raises later",
    function()
    local dir = require("luv").fs_realpath(H.tmpdir())
    os.execute("mkdir " .. H.quote(dir .. "/roles") .. " " .. H.quote(dir .. "/tools") .. " "
      .. H.quote(dir .. "/policies"))
    local function clean(msg)
      assert.is_nil(tostring(msg):find(dir, 1, true), msg)
      return msg
    end
    -- each kind broken on its own: an undefined global at line 2
    for _, f in ipairs { "roles/r.lua", "tools/t.lua", "policies/p.lua", "routing.lua" } do
      H.write(dir .. "/" .. f, "local x = 1\nlocal y = nosuch\nreturn {}\n")
      local s, err = reload.load(dir)
      assert.is_nil(s, f)
      local want = "^" .. f:gsub("%.", "%%.") .. ":2: undefined global 'nosuch' in " .. f:gsub("%.", "%%.") .. "$"
      assert.matches(want, clean(err))
      local problems = reload.problems(dir)
      assert.equal(1, #problems, f)
      assert.matches(want, clean(problems[1]))
      os.remove(dir .. "/" .. f)
    end
    H.write(dir .. "/tools/t.lua", 'return { name = "t", description = "d", effect = "read",\n'
      .. '  handler = function(args, ctx)\n    error("tool kaput")\n  end }\n')
    H.write(dir .. "/policies/p.lua", 'deny { tool = "t", reason = "r",\n'
      .. '  when = function(call) error("when kaput") end }\n')
    H.write(dir .. "/routing.lua", "return {\n  worker = function(card) error('route kaput') end }\n")
    local s = assert(reload.load(dir))
    assert.equal("tools/t.lua", s.tools:get("t").chunk)
    assert.equal("t: the tool failed: tools/t.lua:3: tool kaput", clean(s.tools:run("t", {}, {}).error))
    local rule
    for i, origin in ipairs(s.policies.origin) do if origin == dir .. "/policies/p.lua" then rule = i end end
    assert.equal("policies/p.lua:1", s.policies.rules[rule].name)
    local matched, why = s.policies:predicate(rule, { tool = "t", args = {} })
    assert.is_nil(matched)
    assert.equal("policies/p.lua:2: when kaput (ERUNTIME)", clean(why))
    local v, rerr = s.routing:choose("worker", {})
    assert.is_nil(v)
    assert.matches("^routing worker: routing%.lua:2: route kaput\n", clean(rerr))
  end)
end)
