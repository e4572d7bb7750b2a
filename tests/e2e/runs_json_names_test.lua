-- orket runs --json (orket.runs/1) names a run's state and its calls' totals as orket log
-- --json (orket.log/1) and GET /v1/runs do (`state`, `usage`), beside its own first names
-- (`status`, `tokens`, `tokens_cached`), and a run not ended has ended_at null, as there.
local H = require "tests.helpers"
local cjson = require "cjson"

describe("orket runs --json", function()
  after_each(H.cleanup)

  it("gives state and usage as orket log --json does, beside status and tokens", function()
    local dir = H.example("notes")
    assert.equal(0, H.orket("run NOTES-1", { cwd = dir }).status)
    local r = H.orket("runs --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local run = cjson.decode(r.stdout).runs[1]
    local log = cjson.decode(H.orket("log 1 --json", { cwd = dir }).stdout)
    assert.equal("done", run.status)
    assert.equal(log.run.state, run.state)
    assert.equal(log.run.ended_at, run.ended_at)
    assert.same(log.usage, run.usage)
    assert.equal(run.usage.input + run.usage.output, run.tokens)
    assert.equal(run.usage.cached, run.tokens_cached)
    assert.is_true(run.usage.calls > 0)
  end)

  it("writes ended_at null while the run goes on", function()
    local dir = H.example("notes")
    local script = H.read(dir .. "/script.lua")
    H.write(dir .. "/script.lua", (script:gsub("return { rules", "for _, r in ipairs(rules) do r.reply.delay_ms = 60000 end\nreturn { rules", 1)))
    os.execute(string.format("cd %s && { %s run NOTES --json >out 2>err & echo $! >pid; wait $!; echo $? >rc; } >/dev/null 2>&1 &",
      H.quote(dir), H.quote(H.BIN)))
    finally(function() H.end_started(dir, "pid", "rc", true) end)
    H.wait_for(function() return (H.read(dir .. "/out") or ""):find('"turn_start"', 1, true) end, "the first turn")
    local r = H.orket("runs --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches('"ended_at":null', r.stdout, 1, true)
    local run = cjson.decode(r.stdout).runs[1]
    assert.same({ "running", "running" }, { run.state, run.status })
  end)
end)
