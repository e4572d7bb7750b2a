-- orket retry end to end: a card blocked by a failing model or a spent budget goes back to
-- ready and the next run (or the resumed one) finishes it; what retry refuses.
local H = require "tests.helpers"
local F = require "tests.fixtures"

-- the card, with its comments and history
local card = F.card


local function call(name, args) return string.format("{ name = %q, arguments = %s }", name, args) end

-- The coder's model: broken (every call a bad request), "idle" (answers without handing the
-- card in) or working.
local function script(broken)
  local coder = broken == "idle" and '{ content = "Still thinking." }'
    or broken and '{ error = { class = "bad_request", message = "model not found" } }'
    or "{ tool_calls = { " .. call("update_issue_status", '{ status = "code_review" }') .. " } }"
  return [[return { rules = {
  { role = "coder", reply = ]] .. coder .. [[ },
  { role = "integrity_guard", reply = { tool_calls = { ]] .. call("update_issue_status", '{ status = "done" }') .. [[ } } },
}, default = { content = "Nothing more to do." } }
]]
end

local function project()
  return F.scripted_project { name = "retry", script = script(true), settings = "budgets = { backoff_ms = 1 }\n",
    epics = { ["r.json"] = [[
{ "id": "R", "name": "Retry", "issues": [ { "id": "R-1", "summary": "Do it", "seat": "senior_developer" } ] }
]] } }
end

describe("orket retry", function()
  after_each(H.cleanup)

  -- it said "continue with 'orket resume' or 'orket run'": under -C DIR both looked for a
  -- project where the person was, and `orket run` alone is a usage error
  it("under -C DIR says the commands to continue with -C DIR, and the one given works", function()
    local dir = project()
    assert.equal(1, H.orket("run R", { cwd = dir }).status)
    H.write(dir .. "/script.lua", script(false))
    local parent, name = dir:match("^(.*)/([^/]+)$")
    local r = H.orket("retry R-1 -C " .. name, { cwd = parent })
    assert.equal(0, r.status, r.stderr)
    assert.equal(string.format("R-1 is ready; continue with 'orket resume -C %s' or 'orket run R-1 -C %s'\n", name,
      name), r.stdout)
    r = H.orket(r.stdout:match("or 'orket ([^']+)'"), { cwd = parent })
    assert.equal(0, r.status, r.stderr)
    assert.equal("done", card(dir, "R-1").status)
  end)

  it("puts a card a failing model blocked back to ready, and the next run finishes it", function()
    local dir = project()
    local r = H.orket("run R", { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.equal("blocked", card(dir, "R-1").status)
    -- blocked stays blocked: a second run fails at once, and answer is for waiting cards
    assert.equal(1, H.orket("run R", { cwd = dir }).status)
    r = H.orket("answer R-1 retry", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("is blocked, not waiting for input", r.stderr)

    H.write(dir .. "/script.lua", script(false)) -- the model works again
    r = H.orket("retry R-1 'the model is back'", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    -- commands that work as given: `orket run` alone is a usage error
    assert.equal("R-1 is ready; continue with 'orket resume' or 'orket run R-1'\n", r.stdout)
    assert.matches("^orket: acting as the local operator %(local:[%w._-]+%)\n$", r.stderr)
    local c = card(dir, "R-1")
    assert.equal("ready", c.status)
    assert.matches("^local:[%w._-]+: the model is back$", c.comments[#c.comments].author .. ": " .. c.comments[#c.comments].body)
    local kinds = {}
    for _, ev in ipairs(c.history) do kinds[#kinds + 1] = ev.kind end
    assert.equal("retry", kinds[#kinds])

    r = H.orket("run R", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("done", card(dir, "R-1").status)
    -- a done card is not retried
    r = H.orket("retry R-1", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: R-1 is done; only a blocked, waiting or ready_for_testing card can be retried\n", r.stderr)
  end)

  it("starts a card's turn budget over, so resuming the run that blocked it finishes it", function()
    -- turns_per_card = 1: the work turn ends without handing the card in, and a second
    -- work turn is over budget
    local dir = project()
    H.write(dir .. "/script.lua", script("idle"))
    -- appended: the project keeps its store (on PostgreSQL, the line naming its database)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "budgets = { backoff_ms = 1, turns_per_card = 1 }\n")
    local r = H.orket("run R", { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    local c = card(dir, "R-1")
    assert.equal("blocked", c.status)
    assert.equal("resource", c.wait_reason)
    assert.matches("'orket retry R%-1' puts it back to ready", c.comments[#c.comments].body)
    -- without a retry, resuming finishes nothing
    assert.equal(1, H.orket("resume", { cwd = dir }).status)
    -- the same budget: after the retry the run's first work turn no longer counts, so the
    -- working coder's one turn (and the review, counted apart) finish it
    H.write(dir .. "/script.lua", script(false))
    r = H.orket("retry R-1", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("done", card(dir, "R-1").status)
  end)

  it("refuses while a run holds the project, and bad arguments", function()
    local dir = project()
    assert.equal(1, H.orket("run R", { cwd = dir }).status)
    local pid, stop = H.hold_lock(dir)
    local r = H.orket("retry R-1", { cwd = dir })
    -- on a terminal, each refusal carries the run lock's code: its remedy is the hint
    H.write(dir .. "/steps", "expect hint: \n")
    local outs = {}
    for i, words in ipairs { "retry R-1", "run R" } do
      local p = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 30 -- %s %s <steps 2>&1",
        H.quote(dir), H.quote((H.BIN:gsub("orket$", "ptydrive"))), H.quote(H.BIN), words))
      outs[i] = p:read("a")
      p:close()
    end
    stop()
    for _, out in ipairs(outs) do
      assert.matches("another orket run is working on this project", out, 1, true)
      assert.matches("hint: " .. require("orket.errors").remedy("ELOCKED"), out, 1, true)
      -- the hint adds to the refusal, which already says to wait or stop: how to see the holder
      local hint = out:match("hint: ([^\r\n]*)")
      assert.is_nil(hint:find("wait for it", 1, true))
      assert.is_nil(hint:find("stop it", 1, true))
      assert.matches("`ps -p PID`", hint, 1, true)
    end
    assert.equal(75, r.status)
    assert.matches("another orket run is working on this project %(process " .. pid .. "%)", r.stderr)
    assert.equal("blocked", card(dir, "R-1").status)

    r = H.orket("retry", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("retry needs a card id", r.stderr)
    r = H.orket("retry R-1 -x", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("unknown option '%-x'", r.stderr)
    r = H.orket("retry R-1 a b", { cwd = dir })
    assert.equal(2, r.status)
    r = H.orket("retry NOPE", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("no card \"NOPE\"", r.stderr)
    r = H.orket("retry R-1 -- '-1 was wrong'", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local c = card(dir, "R-1")
    assert.equal("-1 was wrong", c.comments[#c.comments].body)
    assert.matches("\n  retry ", H.orket("help").stdout)
  end)
end)
