-- orket.engine.reload and orket.lua's experiments (docs/cost.md, "Experiments"): a reload
-- that deletes the role an experiment's variant plays is refused as one that deletes a
-- team's role is, and the run keeps its scripts; taken, it left every variant card that
-- had not started skipped and the run stalled.
local H = require "tests.helpers"
local import = require "orket.import"
local project = require "orket.project"
local setup = require "orket.engine.setup"
local reload = require "orket.engine.reload"

local TWIN = "return { intent = 'Implement the issue.', tools = { 'read_file', 'write_file', 'update_issue_status' },\n"
  .. "  system = 'twin' }\n"

describe("hot reload with an experiment", function()
  after_each(H.cleanup)

  it("refuses a set that drops the role a variant plays, naming the experiment, and keeps the old one", function()
    local dir = H.tmpdir()
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
    os.execute("mkdir -p " .. H.quote(dir .. "/roles"))
    H.write(dir .. "/roles/twin.lua", TWIN)
    local db = assert(project.open_store(dir, true))
    assert(import.import(db, dir))
    db:close()
    local events = {}
    local e = assert(setup.open(dir, { emit = function(ev) events[#events + 1] = ev end }))
    e.settings.experiments = { tw = { share = 0.5, role = "twin" } }
    assert(e:check())
    assert.is_true(reload.apply(e))
    local kept = e.roles
    os.remove(dir .. "/roles/twin.lua")
    local ok, err, code = reload.apply(e)
    assert.is_nil(ok)
    assert.equal("EROLE", code)
    assert.matches("^orket%.lua: experiments%.tw%.role: no role named \"twin\" after the reload %(roles: ", err)
    assert.equal(kept, e.roles)
    assert.is_table(e.roles.by_name.twin)
    assert.equal("reload_error", events[#events].type)
    e.close_all()
  end)
end)
