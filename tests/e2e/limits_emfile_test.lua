-- Out of descriptors partway through a run (a low ulimit -n, or serve's event streams holding
-- them): every failure it causes is the host's, said as too many open files with the limit to
-- raise, and stops the run for `orket resume`. It was said as something else, and blocked the
-- cards for good: a card's branch that libgit2 could not open read as missing ("cannot locate
-- local branch"), a socket that could not be made as "nothing is listening ... Is the model
-- server running?" (a working server restarted for nothing), and a tool's answer carried the
-- code ENOSPC, a full disk to a JSON consumer.
local H = require "tests.helpers"
local cjson = require "cjson"

-- runs the Lua text under `ulimit -n 64` in a child orket -> its output's lines
local function under_limit(text)
  local dir = H.tmpdir()
  H.write(dir .. "/probe.lua", text)
  local st, out = H.sh(string.format("cd %s && ulimit -n 64 && %s lua probe.lua", H.quote(dir), H.quote(H.BIN)))
  assert.equal(0, st, out)
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines, out
end

-- opens /dev/null until no descriptor is left (the script's prelude): hold, release()
local EXHAUST = [[
local hold = {}
local function exhaust()
  while true do local f = io.open("/dev/null") if not f then break end hold[#hold + 1] = f end
end
local function release() for _, f in ipairs(hold) do f:close() end hold = {} end
]]

local events = H.events

describe("out of descriptors", function()
  after_each(function() H.cleanup() end)

  it("a card's branch that cannot be read is too many open files, the host's, never a missing branch", function()
    local base = H.tmpdir()
    assert(os.execute("mkdir -p " .. H.quote(base .. "/ws") .. " " .. H.quote(base .. "/state")))
    H.write(base .. "/ws/README", "hello\n")
    local lines, out = under_limit(EXHAUST .. string.format([[
local G = require "orket.c.gitrepo"
local gitwork = require "orket.engine.gitwork"
local base = %q
local repo = assert(G.init(base .. "/ws", { name = "integrity_guard", email = "integrity_guard@orket.invalid" }))
assert(repo:attach("C1", base .. "/cards/C1", base .. "/state/C1"))
local run = { git = { repo = repo, dir = base .. "/cards", state = base .. "/state" } }
exhaust()
local ok, msg, code = repo:attach("C1", base .. "/cards/C1", base .. "/state/C1")
release()
print(tostring(ok))
print(code)
print(msg)
local host, cause = gitwork.host_fault(run, "C1", code, msg)
print(cause)
print(host)
local _, created = repo:attach("C1", base .. "/cards/C1", base .. "/state/C1")
print(tostring(created))
]], base))
    assert.equal("nil", lines[1], out)
    assert.equal("EGIT", lines[2], out)
    assert.matches("^git: orket/C1: .*Too many open files", lines[3])
    -- the host's fault, named by its own code (a tool's answer carries it: gitwork.mover)
    assert.equal("EMFILE", lines[4], out)
    assert.equal(lines[3] .. "; this process may open no more files: raise its limit, ulimit -n or systemd "
      .. "LimitNOFILE=", lines[5])
    -- once descriptors are back the card's own branch is found again, never made anew
    assert.equal("false", lines[6], out)
  end)

  it("a file tool's failure for want of descriptors carries EMFILE, never the workspace's EIO", function()
    local base = H.tmpdir()
    local lines, out = under_limit(EXHAUST .. string.format([[
local W = require "orket.c.workspace"
local gitwork = require "orket.engine.gitwork"
local ws = assert(W.open(%q))
exhaust()
local ok, msg, code = ws:write("a.txt", "x")
release()
print(tostring(ok))
print(code)
print(msg)
print(select(2, gitwork.host_fault({}, "C1", code, msg)))
print(tostring(ws:write("a.txt", "x") ~= nil))
]], base))
    assert.equal("nil", lines[1], out)
    assert.equal("EMFILE", lines[2], out)
    assert.matches("^workspace: .*Too many open files", lines[3])
    assert.equal("EMFILE", lines[4], out)
    assert.equal("true", lines[5], out)
  end)

  -- libuv aborted (SIGABRT, no word) at 4 or 5, and the loop said only "too many open files" at 6 to 9
  it("too few to start with is said with the limit to raise, before anything is opened", function()
    for _, n in ipairs { 5, 8, 15 } do
      local st, out = H.sh(string.format("(ulimit -n %d && exec %s version)", n, H.quote(H.BIN)))
      assert.equal(1, st, n .. ": " .. out)
      assert.equal(string.format("orket: this process may open at most %d files (ulimit -n %d), and orket needs at "
        .. "least 16: raise its limit, ulimit -n or systemd LimitNOFILE=\n", n, n), out)
    end
    local st, out = H.sh(string.format("ulimit -n 16 && %s version", H.quote(H.BIN)))
    assert.equal(0, st, out)
  end)

  it("a socket that cannot be made is too many open files, never nothing listening", function()
    local lines, out = under_limit(EXHAUST .. [[
local llm = require "orket.llm"
local c = llm.new { providers = { x = { kind = "openai", base_url = "http://127.0.0.1:1/v1",
  retry = { max_attempts = 2, base_ms = 2, max_ms = 5 } } } }
local USER = { { role = "user", content = "hi" } }
c:chat { model = "x:m", messages = USER } -- libcurl loaded, while it can be
exhaust()
local r, msg, class, failure = c:chat { model = "x:m", messages = USER }
release()
print(msg)
print(class, tostring(failure.host_fault))
r, msg, class, failure = c:chat { model = "x:m", messages = USER }
print(msg)
print(class, tostring(failure.host_fault))
]])
    assert.matches("^provider x %(openai, http://127%.0%.0%.1:1/v1%), model m: POST http://127%.0%.0%.1:1: no socket "
      .. "could be opened %(Too many open files%): this process may open no more files: raise its limit, ulimit %-n or "
      .. "systemd LimitNOFILE= %(gave up after 2 attempts", lines[1])
    assert.is_nil(out:match("^[^\n]*nothing is listening"), out)
    assert.equal("transient\ttrue", lines[2], out)
    -- with descriptors back, a port nothing listens on is said as before
    assert.matches("^provider x: nothing is listening at http://127%.0%.0%.1:1/v1 %(connection refused%)", lines[3])
    assert.equal("transient\tnil", lines[4], out)
  end)

  it("mid-run: stops the run as the host's fault, blocks no card, and resume finishes them all", function()
    local fake = require("tests.fake_server").start()
    finally(function() fake.stop() end)
    local base = H.tmpdir()
    assert(os.execute("mkdir -p " .. H.quote(base .. "/epics")))
    H.write(base .. "/orket.lua", string.format([[
name = "lim"
models = { default = "fake:tool=update_issue_status,arg_status=code_review,chunks=3,chunk_ms=50",
  providers = { fake = { kind = "openai", base_url = %q, retry = { max_attempts = 2, base_ms = 5, max_ms = 10 } } } }
team = { senior_developer = { roles = { "coder" } },
  integrity_guard = { roles = { "integrity_guard" }, model = "fake:tool=update_issue_status,arg_status=done" } }
]], fake.url .. "/v1"))
    local issues = {}
    for i = 1, 12 do issues[i] = { id = "M-" .. i, summary = "issue " .. i, seat = "senior_developer" } end
    H.write(base .. "/epics/m.json", cjson.encode { id = "M", name = "M", description = "m", issues = issues })
    local imp = H.orket("import", { cwd = base })
    assert.equal(0, imp.status, imp.stdout .. imp.stderr)
    local stopped = 0
    -- from too few descriptors for a card's branch, through too few for the model's socket,
    -- to enough: every failure on the way is the host's
    for _, n in ipairs { 22, 24, 26, 28, 30 } do
      local dir = H.tmpdir()
      os.execute("cp -R " .. H.quote(base .. "/.") .. " " .. H.quote(dir))
      local r = H.orket("run M --concurrency 4 --json",
        { cwd = dir, wrap = string.format("sh -c 'ulimit -n %d && exec \"$@\"' sh", n) })
      local all = r.stdout .. r.stderr
      assert.is_nil(all:find("nothing is listening", 1, true), n .. ": " .. all)
      local ended
      for _, ev in ipairs(events(r.stdout)) do
        assert.is_not.equal("card_blocked", ev.type, n .. ": " .. all)
        -- a tool's failure says its cause, never ENOSPC for a want of descriptors
        if ev.type == "tool" and ev.ok == false then
          assert.is_not.equal("ENOSPC", ev.code, n .. ": " .. all)
          assert.is_not.equal("EIO", ev.code, n .. ": " .. all)
        end
        if ev.type == "run_end" then ended = ev end
      end
      assert.truthy(ended, n .. ": " .. all)
      if ended.status ~= "done" then
        stopped = stopped + 1
        assert.equal("failed", ended.status, n .. ": " .. all)
        assert.matches("Too many open files.*ulimit %-n or systemd LimitNOFILE=.*'orket resume 1' carries on",
          ended.reason)
        -- a limit with room enough may finish the run (a loaded machine's timing decides how
        -- many cards hold descriptors at once): only a stopped run has anything to resume
        local again = H.orket("resume 1 --json", { cwd = dir })
        assert.equal(0, again.status, n .. ": " .. again.stdout .. again.stderr)
      end
      local board = H.orket("board", { cwd = dir }).stdout
      for i = 1, 12 do assert.truthy(board:find("M%-" .. i .. "%s+done"), n .. ": " .. board) end
    end
    assert.is_true(stopped > 0, "no limit tried stopped the run: the test no longer reaches the fault")
  end)
end)
