-- People changing cards from different processes at once (the "together" review, findings 2
-- and 3): three `orket cancel`s, or two servers' card writes, were refused while no run
-- existed, with "another orket run is working on this project ... continue with 'orket
-- resume'", mostly naming no process, and the API's refusal gave a terminal's steps. A short
-- command's hold of the run lock is now waited for; a refusal names the holder as what it is.
local H = require "tests.helpers"
local uv = require "luv"

local function project()
  local dir = H.example("webapp", { import = false })
  local issues = {}
  for i = 1, 12 do
    issues[#issues + 1] = string.format('{ "id": "W-%d", "summary": "card %d", "seat": "senior_developer" }', i, i)
  end
  H.write(dir .. "/epics/w.json", '{ "id": "W", "name": "W", "issues": [ ' .. table.concat(issues, ", ") .. " ] }\n")
  local r = H.orket("import", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  return dir
end

-- another process holding the run lock as what (a word), tagged with a run id or not, for ms
-- -> its pid, and a function that waits for it to end
local function hold(dir, what, ms, tag)
  local script = string.format("local l = assert(require('orket.c.lockfile').acquire('.orket/run.lock', %q)); %s"
    .. "print(require('luv').os_getpid()); io.stdout:flush(); orket.sleep(%d)", what, tag and ("l:tag(" .. tag .. "); ")
    or "", ms)
  local p = io.popen(string.format("cd %s && exec %s lua -e %s", H.quote(dir), H.quote(H.BIN), H.quote(script)))
  local pid = math.tointeger(tonumber(p:read("l")))
  assert(pid, "the lock holder did not start")
  return pid, function() p:close() end
end

local function card_status(dir, id)
  return require("cjson").decode(H.orket("card " .. id .. " --json", { cwd = dir }).stdout).card.status
end

describe("a short command's hold of the run lock", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("is waited for by a cancel of another card, which then goes through", function()
    local dir = project()
    local _, done = hold(dir, "cancel", 700)
    local t0 = uv.hrtime()
    local r = H.orket('cancel W-1 "by op1"', { cwd = dir })
    local took = (uv.hrtime() - t0) / 1e6
    done()
    assert.equal(0, r.status, r.stderr)
    assert.is_true(took >= 300, "it did not wait: " .. took .. " ms")
    assert.equal("canceled", card_status(dir, "W-1"))
  end)

  it("is refused after the wait, naming the command that holds it and no run", function()
    local dir = project()
    local pid, done = hold(dir, "retry", 4000)
    local r = H.orket('cancel W-2 "by op2"', { cwd = dir })
    done()
    assert.equal(75, r.status, r.stderr)
    assert.matches("orket retry (process " .. pid .. ") is changing cards of this project, and held its run lock for "
      .. "over 2.5 s; try again when it is done", r.stderr, 1, true)
    assert.is_nil(r.stderr:find("another orket run", 1, true))
    assert.is_nil(r.stderr:find("Ctrl-C", 1, true))
    assert.equal("ready", card_status(dir, "W-2"))
  end)

  it("lets three people cancel their own cards at once, round after round", function()
    local dir = project()
    local sh = {}
    for round = 0, 3 do
      for j = 1, 3 do
        local n = 3 * round + j
        sh[#sh + 1] = string.format("{ %s cancel W-%d 'by op%d' >out.%d 2>&1; echo $? >rc.%d; } &", H.quote(H.BIN), n, j,
          n, n)
      end
      sh[#sh + 1] = "wait;"
    end
    os.execute("cd " .. H.quote(dir) .. " || exit 1; " .. table.concat(sh, " "))
    for n = 1, 12 do
      assert.equal("0", (H.read(dir .. "/rc." .. n) or ""):match("%d+"), "W-" .. n .. ": " .. tostring(H.read(dir .. "/out." .. n)))
      assert.equal("canceled", card_status(dir, "W-" .. n))
    end
  end)

  it("is refused at once when a run holds it, and said to an API client without a terminal's steps", function()
    local dir = project()
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local pid, done = hold(dir, "run", 1500, 9)
    local t0 = uv.hrtime()
    local st, doc = H.api(s, "POST", "/v1/cards/W-3/cancel", op, { reason = "by op3" })
    local took = (uv.hrtime() - t0) / 1e6
    done()
    assert.equal(409, st)
    assert.equal("ELOCKED", doc.error.code)
    assert.is_true(took < 1200, "a run's hold was waited for: " .. took .. " ms")
    assert.matches("another orket run is working on this project (process " .. pid .. ", run 9), started from a "
      .. "terminal (orket run)", doc.error.message, 1, true)
    assert.is_nil(doc.error.message:find("Ctrl-C", 1, true))
    assert.is_nil(doc.error.message:find("orket resume", 1, true))
    -- a cancel from a terminal (or another server's write) is waited for, the server's loop
    -- answering meanwhile
    _, done = hold(dir, "cancel", 700)
    local rst = H.api(s, "GET", "/v1/cards/W-4", op)
    assert.equal(200, rst)
    st, doc = H.api(s, "POST", "/v1/cards/W-4/cancel", op, { reason = "by op3" })
    done()
    assert.equal(200, st, require("cjson").encode(doc))
    assert.equal("canceled", card_status(dir, "W-4"))
  end)
end)
