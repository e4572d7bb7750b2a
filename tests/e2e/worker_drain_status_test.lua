-- orket worker --start TARGET --drain (or --resume RUN --drain) exits as orket run would for
-- that run: 0 done, 1 failed, 3 stalled, so that a CI job that works a target through a
-- worker reads the outcome from the status; a drain with no run of its own stays 0.
local H = require "tests.helpers"
local cjson = require "cjson"

-- the run_end the worker said for its run
local function run_end(out)
  for line in out:gmatch("[^\n]+") do
    local ev = cjson.decode(line)
    if ev.type == "run_end" then return ev end
  end
end

describe("orket worker --drain with its own run", function()
  after_each(H.cleanup)

  it("exits 3 when the run stalls, and as the resumed run ends with --resume", function()
    local dir = H.example("notes", { import = false })
    os.execute("mkdir -p " .. H.quote(dir .. "/policies"))
    H.write(dir .. "/policies/ask.lua",
      'ask { tool = "write_file", args = { path = "README.md" }, reason = "docs need a human" }\n')
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local r = H.orket("worker --start NOTES --drain", { cwd = dir })
    assert.equal(3, r.status, r.stderr)
    assert.equal("stalled", run_end(r.stdout).status)
    -- the same run left to the workers again, the approval given: the scripted reviewer
    -- then never decides on NOTES-4, whose turn budget blocks it, and the run fails: 1
    assert.equal(0, H.orket("answer NOTES-4 --approve", { cwd = dir }).status)
    r = H.orket("worker --resume 1 --drain", { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.equal("failed", run_end(r.stdout).status)
    assert.equal("", r.stderr)
    -- with nothing of its own, a drain is 0 whatever the board holds
    r = H.orket("worker --drain", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
  end)

  it("exits 0 when the run is done", function()
    local r = H.orket("worker --start NOTES --drain", { cwd = H.example("notes") })
    assert.equal(0, r.status, r.stderr)
    assert.equal("done", run_end(r.stdout).status)
  end)

  it("exits 1 when the run fails", function()
    -- the engine's later rounds after 25 ms onwards, not 5 s (75 s of waiting in all)
    local dir = H.example("notes", { append = '\nmodels.default = "down:x"\nmodels.providers.down = { kind = "ollama", '
      .. 'base_url = "http://127.0.0.1:1", retry = { max_attempts = 1 } }\nbudgets = { backoff_ms = 1 }\n' })
    local r = H.orket("worker --start NOTES-1 --drain", { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.equal("failed", run_end(r.stdout).status)
    assert.equal("", r.stderr)
  end)
end)
