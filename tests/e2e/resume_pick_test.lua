-- `orket resume` without a run: the latest run that is not done and that no process is
-- executing now. A server's run going beside a run killed here was picked, and refused as
-- "working on the same target", never naming the killed run.
local H = require "tests.helpers"
local backends = require "tests.backends"

describe("orket resume without a run", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("carries on the latest run no process executes, passing over one that goes elsewhere", function()
    local root = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = root }).status)
    local dir = backends.project(root .. "/p")
    if backends.name() == "pg" then assert.equal(0, H.orket("import", { cwd = dir }).status) end
    -- two runs killed as their first turn asks its model: run 1 of START-1, run 2 of START-2
    for _, card in ipairs { "START-1", "START-2" } do
      local r = H.orket("run " .. card, { cwd = dir, env = { ORKET_FAULT = "before_model:1" } })
      assert.are_not.equal(0, r.status)
    end
    -- run 2 is executed by another process now (a server's run holds its lock)
    local holder = io.popen(string.format("cd %s && exec %s lua -e %s", H.quote(dir), H.quote(H.BIN),
      H.quote("assert(require('orket.engine.claims').hold('.', 2)); io.stdout:write(require('luv').os_getpid(), "
        .. "'\\n'); io.stdout:flush(); orket.sleep(60000)")))
    local pid = assert(math.tointeger(tonumber(holder:read("l"))), "the holder did not start")
    finally(function()
      os.execute("kill -9 " .. pid)
      holder:close()
    end)
    local r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches('"run_id":1', r.stdout, 1, true)
    assert.is_nil(r.stdout:find('"run_id":2', 1, true))
    assert.matches("START%-1%s+done", H.orket("board", { cwd = dir }).stdout)
  end)

  -- the journal kept no trace of the kill or the resume: the transcript of a run killed
  -- and carried on read as one uninterrupted run
  it("is shown in the run's transcript, with what the run was", function()
    local root = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = root }).status)
    local dir = backends.project(root .. "/p")
    if backends.name() == "pg" then assert.equal(0, H.orket("import", { cwd = dir }).status) end
    assert.are_not.equal(0, H.orket("run START", { cwd = dir, env = { ORKET_FAULT = "before_model:1" } }).status)
    assert.equal(0, H.orket("resume 1", { cwd = dir }).status)
    local r = H.orket("log 1", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local resumed = r.stdout:find("\n%*%* %S+ run resumed %(it was killed%)\n")
    assert(resumed, r.stdout)
    -- where it was carried on: killed as its first turn asked the model, before that turn's
    -- record, which the resume wrote
    assert(resumed < r.stdout:find("== START-1 turn 1", 1, true), r.stdout)
    assert(resumed < r.stdout:find("\nrun done", 1, true), r.stdout)
    local doc = require("cjson").decode(H.orket("log 1 --json", { cwd = dir }).stdout)
    local kinds = {}
    for _, ev in ipairs(doc.events) do if ev.kind == "run_resumed" then kinds[#kinds + 1] = ev.data.was end end
    assert.same({ "killed" }, kinds)
  end)
end)
