-- The workspace as a git repository in a run: a worktree and branch per card, a commit per
-- turn that changed files, the merge into main on done, a conflict sending the card back,
-- kill -9 during commits and merges followed by `orket resume`, and an agent's writes to
-- .git or out of its worktree refused.
local H = require "tests.helpers"
local G = require "orket.c.gitrepo"
local cjson = require "cjson"

local function state(dir)
  local doc = cjson.decode(H.orket("board --json", { cwd = dir }).stdout)
  local out = {}
  for _, c in ipairs(doc.cards) do out[#out + 1] = c.id .. " " .. c.status .. " r" .. math.tointeger(c.retries) end
  return table.concat(out, "\n")
end

-- main's commits by summary, and how many times each summary appears
local function main_log(dir)
  local repo <close> = assert(G.open(dir .. "/workspace"))
  local seen = {}
  for _, c in ipairs(assert(repo:log("main", 1000))) do seen[c.summary] = (seen[c.summary] or 0) + 1 end
  return seen
end

-- A resumed run's main against the uninterrupted run's: every turn's commit there once, no
-- commit twice, and the same merges. On SQLite a run's store calls never yield, so two runs
-- of the same project interleave their turns alike and main's history is the same commit
-- for commit; on PostgreSQL the store's round trips yield to the other turns in flight, so
-- which card's merge found main moved (a merge commit rather than a fast-forward) may
-- differ from run to run.
local function same_main(want, got, what)
  if require("tests.backends").name() == "sqlite" then return assert.same(want, got, what) end
  local function turns(log)
    local out = {}
    for summary, n in pairs(log) do
      assert.equal(1, n, what .. ": " .. summary .. " twice on main")
      if not summary:match("^Merge ") then out[summary] = n end
    end
    return out
  end
  assert.same(turns(want), turns(got), what)
end

local function consistent(dir)
  local repo <close> = assert(G.open(dir .. "/workspace"))
  return repo:check()
end

-- A project of the notes team whose epic and script are given.
local function project(epic, script)
  local dir = H.tmpdir()
  os.execute("cp " .. H.quote(H.ROOT .. "/examples/notes/orket.lua") .. " " .. H.quote(dir))
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/epics/e.json", cjson.encode(epic))
  H.write(dir .. "/script.lua", script)
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local HEAD = [[
local function call(name, args) return { name = name, arguments = args } end
local rules = {}
local function add(r) rules[#rules + 1] = r end
]]
local TAIL = [[
add { match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } }
add { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } }
return { rules = rules, default = { content = "Nothing more to do." } }
]]

describe("git in a run", function()
  after_each(H.cleanup)

  it("runs an epic at concurrency 3 with every card merged and no card's files lost", function()
    local dir = H.example("notes")
    local script = H.read(dir .. "/script.lua")
    -- every answer takes 20 ms, so NOTES-2's and NOTES-3's turns overlap
    H.write(dir .. "/script.lua", (script:gsub("return { rules", "for _, r in ipairs(rules) do r.reply.delay_ms = 20 end\nreturn { rules", 1)))
    -- a project from before git: workspace/ holds a file and no repository
    os.execute("mkdir -p " .. H.quote(dir .. "/workspace"))
    H.write(dir .. "/workspace/keep.txt", "kept\n")
    local r = H.orket("run NOTES --concurrency 3", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("NOTES done r0\nNOTES-1 done r0\nNOTES-2 done r1\nNOTES-3 done r0\nNOTES-4 done r0", state(dir))
    -- main holds each card's commits, once each, and every card's file
    local log = main_log(dir)
    for _, s in ipairs { "NOTES-1: turn 1 (work, run 1)", "NOTES-2: turn 1 (work, run 1)", "NOTES-2: turn 3 (rework, run 1)",
        "NOTES-3: turn 1 (work, run 1)", "NOTES-4: turn 1 (work, run 1)" } do
      assert.equal(1, log[s], s)
    end
    for _, f in ipairs { "schema.sql", "store.lua", "list.lua", "README.md" } do
      assert.truthy(H.read(dir .. "/workspace/" .. f), f)
    end
    assert.matches("assert%(text ~= ''", H.read(dir .. "/workspace/store.lua"))
    -- the first run made the repository with the file in main's first commit, and every
    -- card's branch started from it
    assert.equal("kept\n", H.read(dir .. "/workspace/keep.txt"))
    -- a done card's worktree is removed (its branch stays); made again from the branch
    assert.is_nil(H.read(dir .. "/.orket/worktrees/NOTES-1/keep.txt"))
    local repo <close> = assert(require("orket.c.gitrepo").open(dir .. "/workspace"))
    assert.equal("kept\n", H.read(assert(repo:worktree("NOTES-1", dir .. "/.orket/worktrees/NOTES-1")) .. "/keep.txt"))
    -- NOTES-4 started from a main holding its dependencies' work
    local wt4 = assert(repo:worktree("NOTES-4", dir .. "/.orket/worktrees/NOTES-4"))
    for _, f in ipairs { "schema.sql", "store.lua", "list.lua" } do
      assert.truthy(H.read(wt4 .. "/" .. f), f)
    end
    assert.is_true(consistent(dir))
    -- orket card and orket log show the branch and its commits
    local card = H.orket("card NOTES-2", { cwd = dir })
    assert.matches("branch:%s+orket/NOTES%-2", card.stdout)
    assert.matches("%x+ run 1 turn 3 by senior_developer", card.stdout)
    local jcard = cjson.decode(H.orket("card NOTES-2 --json", { cwd = dir }).stdout)
    assert.equal("orket/NOTES-2", jcard.git.branch)
    local l = H.orket("log 1", { cwd = dir })
    assert.matches("%[git%] commit %x+ on orket/NOTES%-3", l.stdout)
    assert.matches("merged orket/NOTES%-2 into main", l.stdout)
  end)

  -- two cards writing the same file; the rework turn (3) resolves the markers main's merge left.
  -- CF-2's first answer takes a second, so CF-1 is merged first and CF-2 is the one sent back
  -- on both backends: on PostgreSQL the store's round trips yield, and on a loaded machine a
  -- resumed run could otherwise merge them in the other order than the reference run did.
  local function conflict_project()
    return project({ id = "CF", name = "Conflict", description = "Two cards, one file.", issues = {
      { id = "CF-1", summary = "Write shared", seat = "senior_developer" },
      { id = "CF-2", summary = "Write shared too", seat = "senior_developer" },
    } }, HEAD .. [[
for _, c in ipairs { "CF-1", "CF-2" } do
  add { role = "coder", card = c, turn = 3, match = "^Issue ", reply = { tool_calls = {
    call("read_file", { path = "shared.txt" }),
    call("write_file", { path = "shared.txt", content = "both\n" }) } } }
  add { role = "coder", card = c, match = "^Issue ", reply = { delay_ms = c == "CF-2" and 1000 or nil, tool_calls = {
    call("write_file", { path = "shared.txt", content = c .. "\n" }) } } }
end
]] .. TAIL)
  end

  it("sends the second card of a conflict back to in_progress naming the file, then merges its rework", function()
    local dir = conflict_project()
    local r = H.orket("run CF --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    local st = state(dir)
    local back = st:match("(CF%-%d) done r1")
    assert.truthy(back, st)
    assert.matches("done r0", st)
    local card = cjson.decode(H.orket("card " .. back .. " --json", { cwd = dir }).stdout)
    local named = false
    for _, c in ipairs(card.comments) do
      if c.author == "orket" and c.body:match("conflicts in: shared%.txt") then named = true end
    end
    assert.is_true(named)
    -- the rework turn read the markers of main merged into its branch
    local log = H.orket("log 1 --full", { cwd = dir }).stdout
    assert.matches("<<<<<<< orket/" .. back:gsub("%-", "%%-"), log)
    assert.equal("both\n", H.read(dir .. "/workspace/shared.txt"))
    assert.is_true(consistent(dir))
  end)

  it("resumes after kill -9 during commits and merges: consistent, nothing lost, nothing twice", function()
    local ref = H.example("notes")
    assert.equal(0, H.orket("run NOTES", { cwd = ref }).status)
    local want, want_log = state(ref), main_log(ref)
    local files = {}
    for _, f in ipairs { "schema.sql", "store.lua", "list.lua", "README.md" } do files[f] = H.read(ref .. "/workspace/" .. f) end
    for _, fault in ipairs { "after_git_commit:1", "after_git_commit:3", "after_git_commit:5", "after_git_merge:1",
        "after_git_merge:2", "after_git_merge:4", "turn_end:3" } do
      local dir = H.example("notes")
      local r = H.orket("run NOTES", { cwd = dir, env = { ORKET_FAULT = fault } })
      assert.equal(137, r.status, fault .. " was not killed: " .. r.stderr)
      r = H.orket("resume", { cwd = dir })
      assert.equal(0, r.status, fault .. ": " .. r.stderr)
      assert.equal(want, state(dir), fault)
      assert.is_true(consistent(dir), fault)
      -- the same commits on main (none twice), the same files
      same_main(want_log, main_log(dir), fault)
      for f, text in pairs(files) do assert.equal(text, H.read(dir .. "/workspace/" .. f), fault .. ": " .. f) end
    end
  end)

  it("resumes a conflict's rework after kill -9 in its merges and commits", function()
    local ref = conflict_project()
    assert.equal(0, H.orket("run CF", { cwd = ref }).status)
    local want, want_log = state(ref), main_log(ref)
    for _, fault in ipairs { "after_git_merge_main:1", "after_git_merge:1", "after_git_merge:2", "after_git_commit:3" } do
      local dir = conflict_project()
      local r = H.orket("run CF", { cwd = dir, env = { ORKET_FAULT = fault } })
      assert.equal(137, r.status, fault .. " was not killed: " .. r.stderr)
      r = H.orket("resume", { cwd = dir })
      assert.equal(0, r.status, fault .. ": " .. r.stderr)
      assert.equal(want, state(dir), fault)
      assert.is_true(consistent(dir), fault)
      same_main(want_log, main_log(dir), fault)
      assert.equal("both\n", H.read(dir .. "/workspace/shared.txt"), fault)
    end
  end)

  it("refuses a parked directory replaced by a symbolic link: the card is blocked, nothing written where it points", function()
    local dir = project({ id = "T", name = "T", description = "Two.", issues = {
      { id = "T-1", summary = "One", seat = "senior_developer" },
      { id = "T-2", summary = "Two", seat = "senior_developer" } } }, HEAD .. [[
add { role = "coder", match = "^Issue T%-1", reply = { tool_calls = { call("write_file", { path = "one.txt", content = "one\n" }) } } }
add { role = "coder", match = "^Issue T%-2", reply = { tool_calls = { call("write_file", { path = "two.txt", content = "two\n" }) } } }
]] .. TAIL)
    assert.equal(0, H.orket("run T-1", { cwd = dir }).status)
    local pool, victim = dir .. "/.orket/worktrees/.pool-T-1", H.tmpdir()
    H.write(victim .. "/precious.txt", "precious\n")
    assert(os.execute(string.format("rm -rf %s && ln -s %s %s", H.quote(pool), H.quote(victim), H.quote(pool))))
    H.orket("run T-2", { cwd = dir })
    local c = H.card_json(dir, "T-2")
    assert.equal("blocked", c.card.status)
    assert.equal("system", c.card.wait_reason)
    assert.matches("is not a directory %(a symbolic link%)", c.comments[#c.comments].body)
    assert.equal("precious\n", H.read(victim .. "/precious.txt"))
    assert.is_nil(H.read(victim .. "/two.txt"))
  end)

  it("denies an agent's writes to .git and out of its worktree", function()
    local dir = project({ id = "EV", name = "Evil", description = "Escapes.", issues = {
      { id = "EV-1", summary = "Try", seat = "senior_developer" } } }, HEAD .. [[
add { role = "coder", card = "EV-1", match = "^Issue ", reply = { tool_calls = {
  call("write_file", { path = ".git/config", content = "[core]\n" }),
  call("write_file", { path = ".git/hooks/x", content = "#!/bin/sh\n" }),
  call("write_file", { path = ".git", content = "gitdir: /tmp\n" }),
  call("write_file", { path = "../NOTES/x", content = "out" }),
  call("write_file", { path = "../../../workspace/x", content = "out" }),
  call("write_file", { path = "/etc/x", content = "out" }),
  call("write_file", { path = "ok.txt", content = "fine" }) } } }
]] .. TAIL)
    local r = H.orket("run EV --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local oks = {}
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = cjson.decode(line)
      if ev.type == "tool" and ev.tool == "write_file" then oks[#oks + 1] = tostring(ev.code or ev.ok) end
    end
    -- the gate refuses them before the workspace (which refuses them too: workspace_spec)
    assert.equal("PATH_PROTECTED PATH_PROTECTED PATH_PROTECTED PATH_ESCAPE PATH_ESCAPE PATH_ESCAPE true",
      table.concat(oks, " "))
    -- EV-1 is done, so its worktree was removed: made again from its branch
    local repo <close> = assert(require("orket.c.gitrepo").open(dir .. "/workspace"))
    local wt = assert(repo:worktree("EV-1", dir .. "/.orket/worktrees/EV-1"))
    assert.matches("^gitdir: ", H.read(wt .. "/.git"))
    -- past the gate, the worktree's confinement refuses them as well
    local ws <close> = assert(require("orket.workspace").open(wt))
    for _, p in ipairs { ".git", ".git/config", ".GIT/hooks/x", "sub/.git/config", "../x" } do
      local ok, _, code = ws:write(p, "x")
      assert.is_nil(ok, p)
      assert.equal("EPERM", code, p)
    end
    assert.is_nil(H.read(dir .. "/workspace/x"))
    assert.is_nil(H.read(dir .. "/.orket/worktrees/NOTES/x"))
    assert.equal("fine", H.read(dir .. "/workspace/ok.txt"))
    assert.is_true(consistent(dir))
  end)
end)
