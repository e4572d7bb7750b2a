-- orket init killed by SIGKILL (the OOM killer, `docker kill`, `timeout -s KILL`) at each of
-- its steps (the fault point init_step, orket.engine.fault): the folder is never a project
-- half made that passes for one. Either init had not begun (a retry makes it), or it was
-- whole, or its mark in .orket/ says it did not finish: every command then says to run
-- `orket init` again, and that init removes what the killed one made (never a file of the
-- person's) and makes the project. Before, validate said ok, the board was empty, run said
-- "no card" and a retried init refused ("already holds a project; nothing was changed").
local H = require "tests.helpers"
local uv = require "luv"

local UNFINISHED = "orket init did not finish making the project in "

-- the files under dir (not .orket/'s, not workspace/.git's), one a line, sorted
local function files(dir)
  local p = io.popen("cd " .. H.quote(dir) .. " && find . -path ./.orket -prune -o -path ./workspace/.git -prune -o "
    .. "-print | sort")
  local out = p:read("a")
  p:close()
  return out
end

-- a person's folder that init adopts: a file of theirs, an epic, a workspace/ with their code
local function persons(dir)
  os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/workspace"))
  H.write(dir .. "/keep.txt", "mine\n")
  H.write(dir .. "/epics/mine.json", '{ "id": "MINE", "name": "Mine", "issues": [{ "id": "MINE-1", "summary": "s" }] }')
  H.write(dir .. "/workspace/app.py", "print('hi')\n")
end

local function killed_at(top, n)
  return H.orket("init --yes p", { cwd = top, env = { ORKET_FAULT = "init_step:" .. n } })
end

-- after a kill: every command of the project refuses, naming the way out
local function says_unfinished(dir)
  -- (import without epics/ yet says so first: cmd/import.lua looks for it before orket.lua)
  local import = uv.fs_stat(dir .. "/epics") and "import" or "runs --json"
  for _, args in ipairs { "validate", "board", "board --json", "run START", "status", import, "runs" } do
    local r = H.orket(args, { cwd = dir })
    assert.equal(1, r.status, args .. ": " .. r.stdout .. r.stderr)
    assert.matches(UNFINISHED .. ".* %(it was killed midway%): run 'orket init' again", r.stderr, nil, false)
  end
  local r = H.orket("validate p", { cwd = dir .. "/.." })
  assert.matches(UNFINISHED .. "p .*run 'orket init p' again", r.stderr)
end

describe("orket init killed midway", function()
  after_each(H.cleanup)

  for _, case in ipairs { { "a new folder" }, { "a person's folder it adopts", persons } } do
    it("leaves no half-made project in " .. case[1] .. ", at any of its steps", function()
      -- the reference: what a whole init makes there
      local ref = H.tmpdir()
      if case[2] then case[2](ref .. "/p") end
      assert.equal(0, H.orket("init --yes p", { cwd = ref }).status)
      local whole = files(ref .. "/p")
      local marked, n = 0, 0
      while true do
        n = n + 1
        assert(n < 40, "init_step reached more than 40 times")
        local top = H.tmpdir()
        local dir = top .. "/p"
        if case[2] then case[2](dir) end
        local before = case[2] and files(dir)
        local r = killed_at(top, n)
        if r.status == 0 then break end -- past its last step
        assert.equal(137, r.status, r.stderr)
        if uv.fs_stat(dir .. "/.orket/init.lock") then
          marked = marked + 1
          says_unfinished(dir)
          r = H.orket("init --yes p", { cwd = top })
          assert.equal(0, r.status, r.stderr)
          assert.matches("a killed orket init had left p half made: what it made was removed; making the project again",
            r.stderr, 1, true)
        elseif uv.fs_stat(dir .. "/orket.lua") then
          -- killed after its last step: the project is whole
          assert.is_nil(uv.fs_stat(dir .. "/.orket/init.lock"))
        else
          -- killed before it began: nothing of a project there, and init makes it
          assert.equal(0, H.orket("init --yes p", { cwd = top }).status)
        end
        assert.equal(whole, files(dir), "killed at step " .. n)
        if case[2] then
          assert.equal("mine\n", H.read(dir .. "/keep.txt"))
          assert.equal("print('hi')\n", H.read(dir .. "/workspace/app.py"))
          assert.truthy(before)
        end
        assert.equal(0, H.orket("validate", { cwd = dir }).status, "killed at step " .. n)
        r = H.orket("run " .. (case[2] and "MINE" or "START") .. " --json", { cwd = dir })
        -- it runs (the offline model answers only the example's cards: a person's fail)
        assert.truthy(r.status <= 1, r.stderr)
        assert.matches('"type":"run_end"', r.stdout)
      end
      assert.is_true(marked >= 5, "steps with the mark: " .. marked)
    end)
  end

  it("is made by a retried init after a SIGKILL while it imported (no fault point)", function()
    local top = H.tmpdir()
    local dir = top .. "/p"
    os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
    -- epics enough that their import (after the files and the store are made) takes a while
    for f = 1, 40 do
      local issues = {}
      for i = 1, 300 do issues[i] = string.format('{"id": "E%d-%d", "summary": "%s"}', f, i, string.rep("s", 40)) end
      H.write(string.format("%s/epics/e%02d.json", dir, f),
        string.format('{"id": "E%d", "name": "e", "issues": [%s]}', f, table.concat(issues, ",")))
    end
    local p = io.popen(string.format("cd %s && { %s init p --yes >out 2>err & pid=$!; "
      .. "while [ ! -e p/.orket/orket.db ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done; "
      .. "kill -KILL $pid; wait $pid; echo $?; }", H.quote(top), H.quote(H.BIN)))
    local rc = p:read("l")
    p:close()
    assert.equal("137", rc, H.read(top .. "/err"))
    says_unfinished(dir)
    local r = H.orket("init --yes p", { cwd = top })
    assert.equal(0, r.status, r.stderr)
    assert.matches("START%-1", H.orket("board", { cwd = dir }).stdout)
    assert.equal(0, H.orket("run START", { cwd = dir }).status)
  end)

  it("refuses while another init makes the project, and commands say so", function()
    local top = H.tmpdir()
    local dir = top .. "/p"
    -- an init stopped (SIGSTOP) at its third step, holding its mark
    os.execute(string.format("cd %s && { ORKET_FAULT=init_step:3:stop %s init --yes p >out 2>err & echo $! >pid; } ",
      H.quote(top), H.quote(H.BIN)))
    local pid = H.wait_for(function() return tonumber((H.read(top .. "/pid") or ""):match("^%d+")) end, "its pid")
    finally(function() os.execute("kill -KILL " .. pid .. " 2>/dev/null") end)
    H.wait_for(function() return (H.read("/proc/" .. pid .. "/stat") or ""):match("^%d+ %b() T") end, "it to stop")
    local r = H.orket("init --yes p", { cwd = top })
    assert.equal(1, r.status)
    assert.equal(string.format("orket: orket init (process %d) is making a project in p now; wait for it to end; "
      .. "nothing was changed\n", pid), r.stderr)
    r = H.orket("board", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal(string.format("orket: orket init (process %d) is making the project in . now: wait for it to end\n", pid),
      r.stderr)
    -- it goes on, and finishes the project
    os.execute("kill -CONT " .. pid)
    H.wait_for(function() return not H.alive(pid) end, "it to end")
    assert.equal(0, H.orket("validate", { cwd = dir }).status)
    assert.is_nil(uv.fs_stat(dir .. "/.orket/init.lock"))
    assert.is_nil(uv.fs_stat(dir .. "/.orket/init.made"))
  end)
end)
