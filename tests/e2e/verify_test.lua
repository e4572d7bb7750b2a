-- End to end: acceptance checks gate review. The adder example's fail -> rework -> done
-- story, a kill -9 while the checks run (run again on resume, counted once), the project's
-- default check counted as rejections up to a requirements review, verify.require failing
-- closed, and cards without checks going to review as before.
local H = require "tests.helpers"

local card = H.card_json

-- A project whose coder writes out.txt and hands in with `handin`, and a reviewer that
-- approves; epic ONE has one issue, with `verification` (a JSON text) or none.
local function project(handin, verification, settings)
  local dir = H.tmpdir()
  H.write(dir .. "/orket.lua", [[
name = "v"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { dev = { roles = { "coder" } }, guard = { roles = { "integrity_guard" } } }
]] .. (settings or ""))
  H.write(dir .. "/script.lua", string.format([[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = { call("write_file", { path = "out.txt", content = "x" }) } } },
  { role = "coder", match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = %q }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "done" } }
]], handin))
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/epics/one.json", string.format([[
{ "id": "ONE", "issues": [ { "id": "ONE-1", "summary": "write out.txt", "seat": "dev"%s } ] }
]], verification and (', "verification": ' .. verification) or ""))
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

describe("verification", function()
  after_each(H.cleanup)

  it("the adder example: the checks fail, the rework fixes add.sh, the card ends done", function()
    local dir = H.example("adder")
    local r = H.orket("run ADD", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local c = card(dir, "ADD-1")
    assert.equal("done", c.card.status)
    assert.equal(1, c.card.retries) -- the failed check counted as one rejection
    assert.equal(2, #c.verifications)
    assert.is_false(c.verifications[1].passed)
    assert.matches("add.sh 2 3 %-> %-1", c.verifications[1].output)
    assert.is_true(c.verifications[2].passed)
    assert.matches("seccomp", c.verifications[2].layers)
    assert.matches("Verification failed: command", c.comments[1].body)
    assert.matches("add.sh 2 3 %-> %-1", c.comments[1].body)
    assert.matches("Verification passed: 2 checks", c.comments[2].body)
    -- the move back is the engine's, and the rework turn saw the failing output
    local log = H.orket("log 1 --full", { cwd = dir })
    assert.equal(0, log.status, log.stderr)
    assert.matches("ADD%-1 verification FAILED: command:", log.stdout)
    assert.matches("ADD%-1%s+ready_for_testing %-> in_progress by orket", log.stdout)
    assert.matches("== ADD%-1 turn 2: senior_developer as coder %(rework%).-add.sh 2 3 %-> %-1", log.stdout)
    -- the reviewer's brief carries the engine's result
    assert.matches("== ADD%-1 turn 3.-Acceptance checks run by the engine: passed", log.stdout)
    local text = H.orket("card ADD-1", { cwd = dir }).stdout
    assert.matches("verifications:\n  %S+ run 1 FAILED", text)
  end)

  for _, n in ipairs { 1, 2 } do
    it("a kill -9 during verification " .. n .. " runs it again on resume, counted once", function()
      local dir = H.example("adder")
      local r = H.orket("run ADD", { cwd = dir, env = { ORKET_FAULT = "mid_verify:" .. n } })
      assert.equal(137, r.status, r.stderr)
      local c = card(dir, "ADD-1")
      assert.equal("ready_for_testing", c.card.status)
      assert.equal(n - 1, #c.verifications)
      r = H.orket("resume", { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      c = card(dir, "ADD-1")
      assert.equal("done", c.card.status)
      assert.equal(1, c.card.retries)
      assert.equal(2, #c.verifications)
      assert.is_false(c.verifications[1].passed)
      assert.is_true(c.verifications[2].passed)
    end)
  end

  it("the project's verify.command checks a card without its own; failures count as rejections", function()
    local dir = project("code_review", nil,
      'verify = { command = { "sh", "-c", "echo broken >&2; exit 3" } }\nreview = { escalate_after = 2, requirements_review_after = 3 }\n')
    local r = H.orket("run ONE", { cwd = dir })
    assert.equal(3, r.status, r.stderr) -- stalled: waiting for input
    local c = card(dir, "ONE-1")
    assert.equal("waiting_for_developer", c.card.status)
    assert.equal(3, c.card.retries)
    assert.equal(3, #c.verifications)
    for _, v in ipairs(c.verifications) do
      assert.is_false(v.passed)
      assert.equal(3, v.code)
      assert.matches("broken", v.output)
    end
    -- the hand-in to code_review was sent to testing first: no review turn ever ran
    assert.not_matches("ONE%-1 turn %d+: guard", H.orket("log 1", { cwd = dir }).stdout)
  end)

  it("a check whose program does not exist fails the hand-in, with the reason", function()
    local dir = project("ready_for_testing", '{ "command": ["no-such-program-here"] }',
      "review = { escalate_after = 1, requirements_review_after = 1 }\n")
    local r = H.orket("run ONE", { cwd = dir })
    assert.equal(3, r.status, r.stderr)
    local c = card(dir, "ONE-1")
    assert.equal("waiting_for_developer", c.card.status)
    assert.equal(1, #c.verifications)
    assert.is_false(c.verifications[1].passed)
    assert.equal("not run", c.verifications[1].reason)
    assert.matches("no%-such%-program%-here", c.verifications[1].output)
  end)

  it("verify.require fails closed, naming the missing layer", function()
    local dir = project("ready_for_testing", '{ "command": ["true"] }',
      'verify = { require = { "netns" }, layers = { netns = false } }\n')
    local r = H.orket("run ONE", { cwd = dir })
    assert.equal(3, r.status, r.stderr) -- stalled, the card held for want of the layer
    assert.matches("verification could not run: .*'netns'", r.stdout)
    local c = card(dir, "ONE-1")
    assert.equal("ready_for_testing", c.card.status)
    assert.matches("Verification could not run: .*'netns'", c.comments[#c.comments].body)
    assert.equal(0, #c.verifications)
    assert.equal(0, c.card.retries)
    -- without the requirement the same hand-in is checked and goes on to done
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua"):gsub("require = { \"netns\" }, ", ""))
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    c = card(dir, "ONE-1")
    assert.equal("done", c.card.status)
    assert.equal(1, #c.verifications)
    assert.is_true(c.verifications[1].passed)
  end)

  it("refuses a verify setting it does not know and a layer that is not one", function()
    local dir = project("code_review", nil, 'verify = { require = { "netz" } }\n')
    local r = H.orket("run ONE", { cwd = dir })
    assert.not_equal(0, r.status)
    assert.matches("verify.require%[1%]", r.stderr)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua"):gsub('verify = .-\n', 'verify = { command = "make test" }\n'))
    r = H.orket("run ONE", { cwd = dir })
    assert.matches("verify.command: must be an argv array", r.stderr)
  end)

  for _, handin in ipairs { "code_review", "ready_for_testing" } do
    it("a card without checks handed in to " .. handin .. " goes to review as before", function()
      local dir = project(handin, nil)
      local r = H.orket("run ONE", { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      local c = card(dir, "ONE-1")
      assert.equal("done", c.card.status)
      assert.equal(0, c.card.retries)
      assert.equal(0, #c.verifications)
    end)
  end

  it("an epic file's verification is checked on import", function()
    local dir = project("code_review", nil)
    H.write(dir .. "/epics/one.json", '{ "id": "ONE", "issues": [ { "id": "ONE-1", "summary": "s", '
      .. '"verification": { "command": "make test" } } ] }')
    local r = H.orket("import", { cwd = dir })
    assert.not_equal(0, r.status)
    assert.matches("issues%[0%]%.verification%.command: must be an argv array", r.stderr)
  end)
end)
