-- End to end: what agent code can leave in a card's worktree does not stop the engine. A
-- FIFO, a socket and a device node there (planted, and made through run_command) are left
-- out of commits and noted in the journal, and the run ends; a FIFO .gitignore or a .git
-- rewritten to point at a planted repository with hooks and an fsmonitor blocks the card
-- with the reason, nothing runs and nothing lands outside. And a full disk under the
-- repository stops the run; `orket resume`, once there is room, finishes every card.
-- Every run is under a timeout, so a regression fails instead of hanging.
local H = require "tests.helpers"
local cjson = require "cjson"

local card = H.card_json
local LIMIT = "timeout -s KILL 60"

-- A project with one issue ONE-1 whose coder follows `rules` (Lua source of scripted rules,
-- `call` defined); run_command may run sh.
local function project(rules)
  local dir = H.tmpdir()
  H.write(dir .. "/orket.lua", [[
name = "t"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { dev = { roles = { "coder" } }, guard = { roles = { "integrity_guard" } } }
verify = { commands = { "sh" } }
]])
  H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
]] .. rules .. [[
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "done" } }
]])
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/epics/one.json", [[{ "id": "ONE", "issues": [ { "id": "ONE-1", "summary": "s", "seat": "dev" } ] }]])
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local function ran(r) assert.are_not.equal(137, r.status, "orket did not end within 60 s: " .. tostring(r.stderr)) end

describe("a card's worktree written by agent code", function()
  after_each(H.cleanup)

  it("a FIFO, a socket and a device node (planted, and made by run_command) are left out; the run ends", function()
    local dir = project([[
  { role = "coder", match = "made", reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "coder", match = "yes, go on", reply = { tool_calls = {
    call("write_file", { path = "a.txt", content = "work\n" }),
    call("run_command", { argv = { "sh", "-c", "mkfifo made-fifo; mkdir -p sub; mkfifo sub/pipe; echo made" } }) } } },
  { role = "coder", match = "^Issue ", reply = { tool_calls = { call("request_input", { question = "ready?" }) } } },
]])
    -- the first turn asks a question: the card's worktree exists, and the run stalls
    local r = H.orket("run ONE", { cwd = dir, wrap = LIMIT })
    ran(r)
    assert.equal(3, r.status, r.stderr)
    local wt = dir .. "/.orket/worktrees/ONE-1"
    assert.truthy(require("luv").fs_stat(wt)) -- the card's directory (it holds no .git: docs/git.md)
    -- planted there directly: a FIFO, a unix socket, and (as root) /dev/zero's device node
    assert(os.execute("mkfifo " .. H.quote(wt .. "/planted-fifo")))
    local sock = os.execute(string.format("perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Type => SOCK_STREAM(), "
      .. "Local => $ARGV[0], Listen => 1) or exit 1' %s 2>/dev/null", H.quote(wt .. "/planted-sock")))
    local dev = os.execute("mknod " .. H.quote(wt .. "/planted-zero") .. " c 1 5 2>/dev/null")
    if not dev then io.write("\n  device node not planted: mknod needs root\n") end
    assert.equal(0, H.orket("answer ONE-1 'yes, go on'", { cwd = dir }).status)
    r = H.orket("resume", { cwd = dir, wrap = LIMIT })
    ran(r)
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("done", card(dir, "ONE-1").card.status)
    -- merged: the file is on main, the special files are not
    assert.equal("work\n", H.read(dir .. "/workspace/a.txt"))
    for _, f in ipairs { "made-fifo", "sub/pipe", "planted-fifo", "planted-sock", "planted-zero" } do
      assert.is_nil(io.open(dir .. "/workspace/" .. f), f)
    end
    -- the journal says what was left out and why
    local notes = H.orket("log 1 --full", { cwd = dir }).stdout
    assert.matches("%[git%] left out: [^\n]*made%-fifo", notes)
    assert.matches("made%-fifo %(a FIFO: never opened, not committed%)", notes)
    assert.matches("sub/pipe %(a FIFO", notes)
    assert.matches("planted%-fifo %(a FIFO", notes)
    if sock then assert.matches("planted%-sock %(a socket", notes) end
    if dev then assert.matches("planted%-zero %(a character device", notes) end
  end)

  it("a FIFO .gitignore made by run_command blocks the card with the reason; the run ends", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "a.txt", content = "work\n" }),
    call("run_command", { argv = { "sh", "-c", "mkfifo .gitignore; mkdir d; mkfifo d/.gitattributes; echo made" } }) } } },
  { role = "coder", match = "made", reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
]])
    local r = H.orket("run ONE --json", { cwd = dir, wrap = LIMIT })
    ran(r)
    assert.equal(1, r.status, r.stderr)
    local c = card(dir, "ONE-1")
    assert.equal("blocked", c.card.status)
    assert.equal("system", c.card.wait_reason)
    assert.matches("The turn's files were not committed: git: %.gitignore is a FIFO %(never opened%); git reads that "
      .. "file by name", c.comments[#c.comments].body)
    assert.is_nil(H.read(dir .. "/workspace/a.txt")) -- nothing merged
  end)

  it("a .git written by run_command naming a planted repository with hooks and an fsmonitor: only data, nothing runs", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "a.txt", content = "work\n" }),
    call("run_command", { argv = { "sh", "-c", "printf 'gitdir: %s\\n' \"$EVIL\" > .git; echo rewrote" } }) } } },
  { role = "coder", match = "rewrote", reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
]])
    -- the planted repository (agent code could make one anywhere it can write): a copy of
    -- the project's own, with hooks and a config naming an fsmonitor and a hooksPath, each
    -- of which would create the marker if anything ran it
    assert.equal(0, H.orket("lua -e " .. H.quote('assert(require("orket.c.gitrepo").init("workspace", {name="o", email="o@x"}))'),
      { cwd = dir }).status)
    local evil, marker = dir .. "/evil.git", dir .. "/hook-ran"
    assert(os.execute("cp -a " .. H.quote(dir .. "/workspace/.git") .. " " .. H.quote(evil)))
    local hook = "#!/bin/sh\ntouch " .. H.quote(marker) .. "\n"
    for _, h in ipairs { "pre-commit", "post-commit", "post-checkout", "post-merge", "reference-transaction" } do
      H.write(evil .. "/hooks/" .. h, hook)
      os.execute("chmod +x " .. H.quote(evil .. "/hooks/" .. h))
    end
    H.write(evil .. "/fsmonitor", hook)
    os.execute("chmod +x " .. H.quote(evil .. "/fsmonitor"))
    H.write(evil .. "/config", H.read(evil .. "/config") .. "[core]\n\tfsmonitor = " .. evil .. "/fsmonitor\n\thooksPath = "
      .. evil .. "/hooks\n[extensions]\n\tworktreeConfig = true\n")
    local p = io.popen("cd " .. H.quote(evil) .. " && find . -type f | sort | xargs md5sum")
    local before = p:read("a")
    p:close()
    -- the agent's command names it
    H.write(dir .. "/script.lua", H.read(dir .. "/script.lua"):gsub('%$EVIL', evil))
    -- a card's directory holds no .git of the engine's (the engine opens the project's
    -- repository on it itself), so the planted pointer is a file of the card like any other,
    -- never followed and never committed
    local r = H.orket("run ONE", { cwd = dir, wrap = LIMIT })
    ran(r)
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("done", card(dir, "ONE-1").card.status)
    assert.is_nil(io.open(marker)) -- no hook, no fsmonitor ran
    p = io.popen("cd " .. H.quote(evil) .. " && find . -type f | sort | xargs md5sum")
    assert.equal(before, p:read("a")) -- nothing landed in the planted repository
    p:close()
    assert.equal("work\n", H.read(dir .. "/workspace/a.txt"))
    assert.equal("directory", require("luv").fs_stat(dir .. "/workspace/.git").type)
    local repo <close> = assert(require("orket.c.gitrepo").open(dir .. "/workspace"))
    assert.is_true(repo:check())
  end)
end)

local state = H.board_state -- the notes example's board: statuses, retries and comment bodies

-- The files the notes example's script writes (examples/notes/script.lua), as main holds
-- them once every card is done
local NOTES_FILES = {
  ["schema.sql"] = "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);\n",
  ["store.lua"] = "local M = {}\nfunction M.save(db, text)\n  assert(text ~= '', 'empty note')\n  db[#db + 1] = text\nend\n"
    .. "return M\n",
  ["list.lua"] = "return function(db) return db end\n",
  ["README.md"] = "# Notes\n\nsave(db, text) and list(db).\n",
}

-- The board an uninterrupted run of the notes example ends with, which a resumed run must
-- reach: the same project every time, so run once for the file.
local reference
local function notes_reference()
  if not reference then
    local ref = H.example("notes")
    assert.equal(0, H.orket("run NOTES", { cwd = ref }).status)
    reference = state(ref)
  end
  return reference
end

describe("a full disk under the repository", function()
  after_each(H.cleanup)

  -- the full disk is a small file system mounted on workspace/.git (the repository's objects,
  -- refs and worktree metadata); the store stays writable, so only git fails
  local sqlite_it = require("tests.backends").name() == "sqlite" and it or pending
  sqlite_it("stops the run, failed, blocking no card; once there is room resume finishes every card", function()
    local want = notes_reference()
    local init = H.quote('assert(require("orket.c.gitrepo").init("workspace", {name="orket", email="orket@orket.invalid"}))')
    local hit = 0 -- the levels at which the disk was too full for the run
    for _, free in ipairs { 24, 48, 96 } do
      local dir = H.example("notes")
      assert.equal(0, H.orket("lua -e " .. init, { cwd = dir }).status)
      local git = dir .. "/workspace/.git"
      os.execute("cp -a " .. H.quote(git) .. " " .. H.quote(dir .. "/git.bak"))
      if not os.execute("mount -t tmpfs -o size=2m tmpfs " .. H.quote(git) .. " 2>/dev/null") then
        io.write("\n  skipped: cannot mount a small tmpfs here\n")
        return pending("skipped: cannot mount a small tmpfs here")
      end
      os.execute("cp -a " .. H.quote(dir .. "/git.bak") .. "/. " .. H.quote(git))
      os.execute(string.format("cd %s && dd if=/dev/zero of=filler bs=1k count=$(($(df -k --output=avail . | tail -1) - %d)) "
        .. "2>/dev/null", H.quote(git), free))
      local r = H.orket("run NOTES --json", { cwd = dir, wrap = LIMIT })
      -- then the space comes back: the repository copied back to the real disk
      os.remove(git .. "/filler")
      os.execute("rm -rf " .. H.quote(dir .. "/git.bak") .. " && cp -a " .. H.quote(git) .. " " .. H.quote(dir .. "/git.bak"))
      os.execute("umount " .. H.quote(git))
      os.execute("rm -rf " .. H.quote(git) .. " && cp -a " .. H.quote(dir .. "/git.bak") .. " " .. H.quote(git))
      local why = "free " .. free .. " KB"
      ran(r)
      if r.status == 0 then
        -- room enough for this run: it simply finished
        assert.equal(want, state(dir), why)
        goto next_level
      end
      hit = hit + 1
      assert.equal(1, r.status, why .. ": " .. r.stderr)
      local events = {}
      for line in r.stdout:gmatch("[^\n]+") do events[#events + 1] = cjson.decode(line) end
      local last = events[#events]
      assert.same({ "run_end", "failed" }, { last.type, last.status }, why)
      assert.matches("^the repository could not be written %(git: .*No space left on device%); once there is room on "
        .. "its disk, 'orket resume 1' carries on", last.reason, 1, false, why)
      for _, ev in ipairs(events) do
        assert.is_false(ev.type == "card_blocked", why .. ": " .. tostring(ev.detail))
      end
      r = H.orket("resume", { cwd = dir, wrap = LIMIT })
      ran(r)
      assert.equal(0, r.status, why .. ": " .. r.stderr)
      assert.equal(want, state(dir), why)
      do
        local repo <close> = assert(require("orket.c.gitrepo").open(dir .. "/workspace"))
        assert.is_true(repo:check())
      end
      ::next_level::
    end
    assert.is_true(hit >= 1, "no level was too full for the run: the case was not exercised")
  end)

  -- the cards' directories (.orket/worktrees) on a full file system of their own: the first
  -- file a tool writes there fails with ENOSPC inside the call. Before, the call's error went
  -- to the model like any other and the run went on: every card's files lost, each card
  -- handed in and passed as done without them, or the model asking again until its steps ran
  -- out. And a stop that recorded the failed write let the resumed turn go on without it.
  sqlite_it("met by a tool's write into a card's directory stops the run the same way; resume finishes every card",
    function()
    local want = notes_reference()
    local dir = H.example("notes")
    local init = H.quote('assert(require("orket.c.gitrepo").init("workspace", {name="orket", email="orket@orket.invalid"}))')
    assert.equal(0, H.orket("lua -e " .. init, { cwd = dir }).status)
    local trees = dir .. "/.orket/worktrees"
    assert(os.execute("mkdir -p " .. H.quote(trees)))
    if not os.execute("mount -t tmpfs -o size=1m tmpfs " .. H.quote(trees) .. " 2>/dev/null") then
      io.write("\n  skipped: cannot mount a small tmpfs here\n")
      return pending("skipped: cannot mount a small tmpfs here")
    end
    -- unmounted however the test ends, before its directory is removed
    local _ <close> = setmetatable({}, { __close = function() os.execute("umount -l " .. H.quote(trees)) end })
    os.execute("head -c 2m /dev/zero >" .. H.quote(trees .. "/.filler") .. " 2>/dev/null")
    local r = H.orket("run NOTES --json", { cwd = dir, wrap = LIMIT })
    os.remove(trees .. "/.filler")
    ran(r)
    assert.equal(1, r.status, r.stderr .. r.stdout:sub(-2000))
    local events = {}
    for line in r.stdout:gmatch("[^\n]+") do events[#events + 1] = cjson.decode(line) end
    local last, full = events[#events], 0
    assert.same({ "run_end", "failed" }, { last.type, last.status })
    assert.matches("^the workspace could not be written %(workspace: write: no space left on device: [^)]*%); once "
      .. "there is room on its disk, 'orket resume 1' carries on", last.reason)
    for _, ev in ipairs(events) do
      assert.is_false(ev.type == "card_blocked", tostring(ev.detail))
      assert.is_false(ev.type == "turn_end" and ev.status == "done", "a card was passed without its files")
      if ev.type == "git" and ev.action == "disk_full" then full = full + 1 end
      -- once the run stopped, no call is run and recorded (one left open is redone on resume).
      -- This holds by event order: the step's own events, the open call's last, come before
      -- its disk_full, and every other turn is closed where it waits, so no later segment of
      -- another turn emits a tool event after the stop
      assert.is_false(full > 0 and ev.type == "tool" and not ev.open, "a call ran after the stop: " .. tostring(ev.tool))
    end
    assert.equal(1, full)
    -- the resume with room again, the cards' directories still on the tmpfs
    r = H.orket("resume", { cwd = dir, wrap = LIMIT })
    ran(r)
    assert.equal(0, r.status, r.stderr)
    assert.equal(want, state(dir))
    -- every card's file is on main, as the script wrote it (the board alone cannot tell)
    for path, content in pairs(NOTES_FILES) do
      assert.equal(content, H.read(dir .. "/workspace/" .. path), path)
    end
  end)
end)

describe("a kill while a card's directory index was being written", function()
  after_each(H.cleanup)

  it("leaves a stale index lock that resume clears before it settles the directories", function()
    local want = notes_reference()
    local dir = H.example("notes")
    local r = H.orket("run NOTES", { cwd = dir, env = { ORKET_FAULT = "after_git_commit" }, wrap = LIMIT })
    assert.equal(137, r.status, r.stdout .. r.stderr)
    -- the lock a kill during the index's write leaves, in every card's state
    local planted = 0
    local h = require("luv").fs_scandir(dir .. "/.orket/worktree-state")
    while h do
      local name = require("luv").fs_scandir_next(h)
      if not name then break end
      H.write(dir .. "/.orket/worktree-state/" .. name .. "/index.lock", "")
      planted = planted + 1
    end
    assert.is_true(planted >= 1)
    r = H.orket("resume", { cwd = dir, wrap = LIMIT })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal(want, state(dir))
  end)
end)
