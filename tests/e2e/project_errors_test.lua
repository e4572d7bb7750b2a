-- A project's mistakes in its scripted model file, model names, large numbers and Lua
-- files: validate reports them with file and line, run/models/import refuse them with a
-- plain "orket: file:line: message" (no traceback) before any card is touched.
local H = require "tests.helpers"
local F = require "tests.fixtures"

local project = F.initialized

local append = F.append

local function untouched(p)
  assert.is_nil(H.read(p .. "/workspace/hello.txt"))
  assert.matches("START%-1%s+ready", H.orket("board", { cwd = p }).stdout)
end

describe("a broken scripted model file", function()
  after_each(H.cleanup)

  it("is reported by validate with file and line, and refused by run and models without a traceback", function()
    local p = project()
    local cases = {
      { 'return { rules = { {role="coder" match="x"} } }', "script.lua:1: '}' expected near 'match'" },
      { "local a\nreturn a.b\n", "script.lua:2: attempt to index a nil value (local 'a')" },
      { "return {\n  rulez = {} }\n", "script.lua:2: rulez is not a script field (rules, default)" },
      { "return { rules = {\n  { role = 'x',\n    reply = { text = 'hi' } } } }\n", "script.lua:3: rules[1].reply.text is not a reply field" },
    }
    for _, c in ipairs(cases) do
      H.write(p .. "/script.lua", c[1])
      local v = H.orket("validate", { cwd = p })
      assert.equal(1, v.status, v.stdout)
      assert.matches(c[2], v.stdout, 1, true)
      for _, cmd in ipairs { "run START", "models --no-check" } do
        local r = H.orket(cmd, { cwd = p })
        assert.equal(1, r.status, cmd .. ": " .. r.stderr)
        assert.matches("^orket: " .. c[2]:gsub("%p", "%%%0"), r.stderr)
        assert.is_nil(r.stderr:find("traceback"), r.stderr)
      end
    end
    os.remove(p .. "/script.lua")
    local v = H.orket("validate", { cwd = p })
    assert.matches("orket.lua:8: models.providers.scripted.file: the scripted model's file script.lua does not exist", v.stdout, 1, true)
    local r = H.orket("run START", { cwd = p })
    assert.equal(1, r.status)
    assert.matches("^orket: orket.lua: models.providers.scripted.file: cannot read the scripted model's file", r.stderr)
    untouched(p)
  end)
end)

describe("a model name that names no configured provider", function()
  after_each(H.cleanup)

  it("given to run --model is refused before any card is touched", function()
    local p = project()
    for _, m in ipairs { "typo", "nope:x" } do
      local r = H.orket("run START --model " .. m, { cwd = p })
      assert.equal(2, r.status) -- a usage error: the argument is wrong
      assert.matches("^orket: %-%-model " .. m, r.stderr)
    end
    untouched(p)
  end)

  it("on a seat or a role is reported by validate with the line, and refused by run", function()
    local p = project()
    local text = H.read(p .. "/orket.lua"):gsub('senior_developer = { roles = { "coder" } }',
      'senior_developer = { roles = { "coder" }, model = "nope:x" }')
    H.write(p .. "/orket.lua", text)
    os.execute("mkdir -p " .. H.quote(p .. "/roles"))
    H.write(p .. "/roles/pilot.lua", 'return {\n  intent = "fly",\n  tools = {},\n  model = "bad",\n  system = "s",\n}\n')
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status)
    assert.matches("orket.lua:12: team.senior_developer.model: names provider 'nope', which is not configured", v.stdout, 1, true)
    assert.matches('roles/pilot.lua:4: model: a model is named "provider:model"', v.stdout, 1, true)
    local r = H.orket("run START", { cwd = p })
    assert.equal(1, r.status)
    -- run names the line as validate does
    assert.matches("^orket: orket.lua:12: team.senior_developer.model: names provider 'nope'", r.stderr)
    untouched(p)
  end)
end)

-- The team's problems a run finds as it starts (no reviewer, a role no script defines) name
-- orket.lua's line, as validate does, in `orket run` and `orket worker` alike.
describe("a team that cannot work", function()
  after_each(H.cleanup)

  local function line_of(text, pat)
    local n = 0
    for l in (text .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      if l:find(pat) then return n end
    end
  end

  it("with no reviewer seat, or a seat's role unknown, is refused by run and worker naming orket.lua's line", function()
    local p = project()
    local orig = H.read(p .. "/orket.lua")
    local cases = {
      { orig:gsub("\n  integrity_guard = { roles = { \"integrity_guard\" } },", ""), "^team = {",
        "team: no seat holds the integrity_guard role" },
      { orig:gsub('roles = { "coder" }', 'roles = { "codr" }'), "senior_developer = {",
        'team.senior_developer.roles[1]: no role named "codr"' },
    }
    for _, c in ipairs(cases) do
      H.write(p .. "/orket.lua", c[1])
      local want = string.format("orket.lua:%d: %s", line_of(c[1], c[2]), c[3])
      assert.matches(want, H.orket("validate", { cwd = p }).stdout, 1, true)
      for _, cmd in ipairs { "run START", "worker" } do
        local r = H.orket(cmd, { cwd = p })
        assert.equal(1, r.status, cmd .. ": " .. r.stderr)
        assert.matches("^orket: " .. want:gsub("%p", "%%%0"), r.stderr)
      end
    end
    untouched(p)
  end)

  -- The seat that works a card is its only reviewer: validate refuses the card, a run works
  -- it into a block whose `next` said only to retry it, which met the same block
  it("blocks a card only its own seat could review, saying what lifts the block", function()
    local p = project()
    local orig = H.read(p .. "/orket.lua")
    local one = orig:gsub("\n  integrity_guard = { roles = { \"integrity_guard\" } },", "")
      :gsub('roles = { "coder" }', 'roles = { "coder", "integrity_guard" }')
    assert.is_true(one ~= orig)
    H.write(p .. "/orket.lua", one)
    assert.matches("is the only seat holding integrity_guard", H.orket("validate", { cwd = p }).stdout, 1, true)
    H.orket("run START", { cwd = p })
    local card = H.card_json(p, "START-1")
    assert.equal("blocked", card.card.status)
    local said = H.orket("board", { cwd = p }).stdout .. H.orket("card START-1", { cwd = p }).stdout
    assert.matches("give another seat integrity_guard in orket.lua's team, or seat the card elsewhere", said, 1, true)
  end)

  -- resume worked the card into a block no retry lifts ("No seat holding integrity_guard
  -- other than senior_developer can review this card")
  it("is refused by resume as by run, the killed run's cards left as they were", function()
    local p = project()
    local orig = H.read(p .. "/orket.lua")
    local r = H.orket("run START", { cwd = p, env = { ORKET_FAULT = "after_model:1" } })
    assert.equal(137, r.status, r.stderr)
    local broken = orig:gsub("\n  integrity_guard = { roles = { \"integrity_guard\" } },", "")
    H.write(p .. "/orket.lua", broken)
    for _, cmd in ipairs { "resume", "resume 1" } do
      r = H.orket(cmd, { cwd = p })
      assert.equal(1, r.status, cmd .. ": " .. r.stderr)
      assert.matches(string.format("^orket: orket%%.lua:%d: team: no seat holds the integrity_guard role",
        line_of(broken, "^team = {")), r.stderr)
    end
    assert.not_matches("blocked", H.orket("board", { cwd = p }).stdout)
    H.write(p .. "/orket.lua", orig)
    r = H.orket("resume", { cwd = p })
    assert.equal(0, r.status, r.stderr)
    assert.matches("START%-1%s+done", H.orket("board", { cwd = p }).stdout)
  end)
end)

-- roles/, tools/ or policies/ written as a file, or a script in one under a name no load
-- reads: validate said ok, and a run used the built-in scripts without a word
describe("a script folder that is a file", function()
  after_each(H.cleanup)

  it("is a problem validate names, with the folder it should be", function()
    local p = project()
    for _, name in ipairs { "roles", "tools", "policies" } do
      H.write(p .. "/" .. name, "deny { tool = '*' }\n")
      local v = H.orket("validate", { cwd = p })
      assert.equal(1, v.status, name)
      assert.matches(name .. ": a file, not a folder: a project's " .. name .. " are .lua files in a folder "
        .. name .. "/", v.stdout, 1, true)
      os.remove(p .. "/" .. name)
    end
    assert.equal(0, H.orket("validate", { cwd = p }).status)
    -- .orket as a file: board and run refuse it; validate said ok
    assert(os.execute("mv " .. H.quote(p .. "/.orket") .. " " .. H.quote(p .. "/orket.keep")))
    H.write(p .. "/.orket", "x\n")
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status)
    assert.matches(".orket: a file, not a folder: the board lives in .orket/orket.db", v.stdout, 1, true)
    os.remove(p .. "/.orket")
    assert(os.execute("mv " .. H.quote(p .. "/orket.keep") .. " " .. H.quote(p .. "/.orket")))
    -- a script whose file name no load reads (a dot in it, .LUA) was passed over unseen, by
    -- a run without a word (validate warned): a policy's deny so named never applied
    assert(os.execute("mkdir -p " .. H.quote(p .. "/roles") .. " " .. H.quote(p .. "/policies")))
    H.write(p .. "/roles/code.reviewer.lua", 'return { intent = "x", tools = {}, system = "s" }\n')
    H.write(p .. "/policies/NoSSH.LUA", 'deny { tool = "*" }\n')
    H.write(p .. "/policies/deny.v2.lua", 'deny { tool = "*" }\n')
    H.write(p .. "/policies/notes.txt", "not a script\n")
    local rule = "the file's name is no script's: a script is named NAME.lua, NAME of letters, digits, '_' and '-'; "
      .. "rename it, or move it out of "
    v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches("roles/code.reviewer.lua: the file's name is no script's: a role is named NAME.lua, NAME of "
      .. "letters, digits and '_' (the role's name: seats and policies name it); rename it roles/code_reviewer.lua, "
      .. "or move it out of roles/", v.stdout, 1, true)
    assert.matches("policies/NoSSH.LUA: " .. rule .. "policies/", v.stdout, 1, true)
    assert.matches("policies/deny.v2.lua: " .. rule .. "policies/", v.stdout, 1, true)
    assert.not_matches("notes.txt", v.stdout)
    for _, cmd in ipairs { "run START", "gate check --role coder --tool read_file" } do
      local r = H.orket(cmd, { cwd = p })
      assert.equal(1, r.status, cmd .. ": " .. r.stderr)
      assert.matches("^orket: [%w/.]+: the file's name is no script's", r.stderr)
    end
    untouched(p)
    os.remove(p .. "/roles/code.reviewer.lua")
    os.remove(p .. "/policies/NoSSH.LUA")
    local r = H.orket("run START", { cwd = p })
    assert.equal(1, r.status, r.stderr)
    assert.equal("orket: policies/deny.v2.lua: " .. rule .. "policies/\n", r.stderr)
    os.remove(p .. "/policies/deny.v2.lua")
    -- a name with a space is said once (it was "roles/a b.lua: roles/a b.lua: not read"); an
    -- editor's files (Emacs's .#coder.lua lock, macOS's ._x.lua, a backup coder.lua~, Vim's
    -- .coder.lua.swp) are no one's scripts: not said
    H.write(p .. "/roles/a b.lua", "return {}\n")
    H.write(p .. "/roles/.#coder.lua", "x\n")
    H.write(p .. "/roles/._x.lua", "x\n")
    H.write(p .. "/roles/coder.lua~", "x\n")
    H.write(p .. "/roles/.coder.lua.swp", "x\n")
    v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches("roles/a b.lua: the file's name is no script's: a role is named NAME.lua, NAME of letters, "
      .. "digits and '_' (the role's name: seats and policies name it); rename it roles/a_b.lua, or move it out of "
      .. "roles/", v.stdout, 1, true)
    assert.not_matches("a b.lua: roles/", v.stdout, 1, true)
    assert.not_matches("#coder", v.stdout, 1, true)
    assert.not_matches("._x", v.stdout, 1, true)
    assert.not_matches("coder.lua~", v.stdout, 1, true)
    assert.not_matches("swp", v.stdout, 1, true)
    os.remove(p .. "/roles/a b.lua")
    assert.equal(0, H.orket("validate", { cwd = p }).status)
  end)
end)

describe("orket.lua", function()
  after_each(H.cleanup)

  it("with a huge number names the field and the range", function()
    for _, v in ipairs { "budgets = { turns_per_card = 1e300 }", "budgets = { turns_per_card = math.huge }",
      "budgets = { turns_per_card = 2^63 }", "concurrency = 1e20" } do
      local p = project()
      append(p .. "/orket.lua", v .. "\n")
      local field = v:match("^concurrency") and "concurrency" or "budgets.turns_per_card"
      local val = H.orket("validate", { cwd = p })
      assert.equal(1, val.status, val.stdout)
      -- (concurrency's range is its own: at most 64 turns at once)
      assert.matches(field .. ": must be an integer from %d to " .. (field == "concurrency" and "64" or "1000000000000"),
        val.stdout)
      local r = H.orket("run START", { cwd = p })
      assert.equal(1, r.status, r.stderr)
      assert.matches("^orket: orket%.lua:%d+: " .. field:gsub("%p", "%%%0") .. ": must be an integer from", r.stderr)
    end
  end)

  it("with a runtime error shows file:line only, in run, models and repl", function()
    local p = project()
    append(p .. "/orket.lua", "local a; team = a.b\n")
    for _, cmd in ipairs { "run START", "models --no-check", "repl" } do
      local r = H.orket(cmd, { cwd = p })
      assert.matches("orket.lua:18: attempt to index a nil value (local 'a')", r.stderr, 1, true)
      assert.is_nil(r.stderr:find("traceback"), cmd .. ": " .. r.stderr)
    end
  end)

  it("under -C DIR is named DIR/orket.lua:LINE, the path from where the command ran", function()
    local p = project()
    append(p .. "/orket.lua", "budgets = { turn = 4 }\n")
    local parent, name = p:match("^(.*)/([^/]+)$")
    for _, cmd in ipairs { "-C " .. name .. " run START", "-C " .. name .. " models --no-check",
      "run -C " .. name .. " START", "-C " .. name .. " worker" } do
      local r = H.orket(cmd, { cwd = parent })
      assert.equal(1, r.status, cmd .. ": " .. r.stderr)
      assert.matches("^orket: " .. name:gsub("%p", "%%%0") .. "/orket%.lua:18: budgets%.turn: unknown setting", r.stderr)
    end
    -- from the project itself, the name it always had
    assert.matches("^orket: orket%.lua:18: budgets%.turn", H.orket("run START", { cwd = p }).stderr)
    -- one that does not load, refused by the commands that open the store and need it, and
    -- named so in the warning of one that only reads it (it sets no store)
    local b = project()
    append(b .. "/orket.lua", "x = \n")
    local bparent, bname = b:match("^(.*)/([^/]+)$")
    for _, cmd in ipairs { "board", "import", "resume" } do
      local r = H.orket("-C " .. bname .. " " .. cmd, { cwd = bparent })
      assert.equal(cmd == "board" and 0 or 1, r.status, cmd .. ": " .. r.stderr)
      assert.matches("^orket: " .. (cmd == "board" and "warning: " or "") .. bname:gsub("%p", "%%%0")
        .. "/orket%.lua:%d+: ", r.stderr)
    end
    assert.matches("so " .. bname .. "/.orket/orket.db is read)", H.orket("-C " .. bname .. " board",
      { cwd = bparent }).stderr, 1, true)
    -- a team's error, found once the engine is open (its check), is named the same way, with
    -- the line of the statement in force
    local q = project()
    append(q .. "/orket.lua", 'team.senior_developer = { roles = { "codr" } }\n')
    local qparent, qname = q:match("^(.*)/([^/]+)$")
    for _, cmd in ipairs { "-C " .. qname .. " run START", "-C " .. qname .. " worker" } do
      local r = H.orket(cmd, { cwd = qparent })
      assert.equal(1, r.status, cmd .. ": " .. r.stderr)
      assert.matches("^orket: " .. qname:gsub("%p", "%%%0") .. '/orket%.lua:18: team%.senior_developer%.roles%[1%]: no role named "codr"', r.stderr)
    end
  end)

  -- A script's own error (a role raising as it loads) named the file by the path it was
  -- loaded from ("./roles/x.lua", "/abs/p/roles/x.lua"), unlike a field's error; one form now.
  it("names a role script that raises as it loads relative to the project, DIR/ before it under -C DIR", function()
    local p = project { "roles" }
    H.write(p .. "/roles/pilot.lua", 'local x = 1\nerror("kaput")\n')
    local parent, name = p:match("^(.*)/([^/]+)$")
    for _, cmd in ipairs { "run START", "worker", "gate check --role coder --tool read_file" } do
      local r = H.orket(cmd, { cwd = p })
      assert.equal(1, r.status, cmd .. ": " .. r.stderr)
      assert.matches("^orket: roles/pilot%.lua:2: kaput", r.stderr)
      r = H.orket("-C " .. name .. " " .. cmd, { cwd = parent })
      assert.matches("^orket: " .. name:gsub("%p", "%%%0") .. "/roles/pilot%.lua:2: kaput", r.stderr)
      r = H.orket("-C " .. H.quote(p) .. " " .. cmd, { cwd = parent })
      assert.matches("^orket: " .. p:gsub("%p", "%%%0") .. "/roles/pilot%.lua:2: kaput", r.stderr)
    end
    untouched(p)
  end)

  -- A role's hook (build) raising in a turn, later than its load: named as the load names it
  -- (the chunk's own name, "roles/x.lua"), never by the path the project was loaded from,
  -- however the project was given (cwd, a relative -C DIR, an absolute one)
  it("names a role hook that raises during a turn roles/NAME.lua:LINE, with no absolute path", function()
    local p = project { "roles" }
    H.write(p .. "/roles/coder.lua", 'return { intent = "x", tools = { "update_issue_status" },\n'
      .. '  build = function(ctx)\n    error("kaput")\n  end }\n')
    assert.equal(0, H.orket("import", { cwd = p }).status)
    local parent, name = p:match("^(.*)/([^/]+)$")
    for _, c in ipairs { { "", p }, { "-C " .. H.quote(name) .. " ", parent }, { "-C " .. H.quote(p) .. " ", parent } } do
      local r = H.orket(c[1] .. "run START-1 --json", { cwd = c[2] })
      assert.equal(1, r.status, c[1] .. ": " .. r.stderr)
      assert.matches('"outcome":"role_error"', r.stdout, 1, true)
      assert.matches('"The turn failed: roles/coder.lua:3: kaput"', r.stdout, 1, true)
      assert.is_nil(r.stdout:find(p, 1, true), c[1] .. ": " .. r.stdout)
      assert.is_nil(r.stderr:find(p, 1, true), c[1] .. ": " .. r.stderr)
      -- the card's comment, as the board keeps it, names it so too
      local shown = H.orket("card START-1", { cwd = p }).stdout
      assert.matches("roles/coder.lua:3: kaput", shown, 1, true)
      assert.is_nil(shown:find(p, 1, true), shown)
      -- and `orket log` says why the turn ended (it said "turn ended: role_error" alone)
      assert.matches("\n   turn ended: role_error: roles/coder.lua:3: kaput\n",
        H.orket("log", { cwd = p }).stdout, 1, true)
      assert.equal(0, H.orket("retry START-1", { cwd = p }).status)
    end
  end)

  -- a helper the role misused (prompt.brief(5)) raised in Orket's own file: the card's
  -- comment, the next turn's prompt, said "roles/coder.lua: /ORKET/lua/orket/engine/prompt.lua:15: ..."
  it("names a prompt helper a role misused at the role's line, with no file or directory of Orket's", function()
    local p = project { "roles" }
    H.write(p .. "/roles/coder.lua", 'return { intent = "x", tools = { "update_issue_status" },\n'
      .. '  build = function(ctx)\n    local m = prompt.brief(5)\n    return m\n  end }\n')
    assert.equal(0, H.orket("import", { cwd = p }).status)
    local r = H.orket("run START-1 --json", { cwd = p })
    assert.equal(1, r.status, r.stderr)
    assert.matches([["The turn failed: roles/coder.lua:3: bad argument #1 to 'prompt.brief' (card table expected, ]]
      .. [[got number)"]], r.stdout, 1, true)
    local shown = H.orket("card START-1", { cwd = p }).stdout
    assert.matches("roles/coder.lua:3: bad argument #1 to 'prompt.brief'", shown, 1, true)
    for _, text in ipairs { r.stdout, shown } do
      assert.is_nil(text:find(H.ROOT, 1, true), text)
      assert.is_nil(text:find("lua/orket/", 1, true), text)
    end
  end)

  -- The worker's own last failure (a run's engine that did not open: orket.lua broken after
  -- the worker started) is printed as it ends, under -C DIR named from where it ran too
  it("under -C DIR names DIR/orket.lua in the worker's closing failure, a run's engine that did not open", function()
    local p = project()
    local parent, name = p:match("^(.*)/([^/]+)$")
    -- a coder's answer that waits a minute: the first worker is stopped with its run in flight
    H.write(p .. "/script.lua", (assert(H.read(p .. "/script.lua")):gsub("reply = { tool_calls =",
      "reply = { delay_ms = 60000, tool_calls =")))
    local function start(tag, args)
      os.execute(string.format("cd %s && { %s -C %s worker %s >%s.out 2>%s.err & echo $! >%s.pid; wait $!; echo $? >%s.rc; } &",
        H.quote(parent), H.quote(H.BIN), H.quote(name), args, tag, tag, tag, tag))
      finally(function() H.end_started(parent, tag .. ".pid", tag .. ".rc", true) end)
      return H.wait_for(function() return tonumber(H.read(parent .. "/" .. tag .. ".pid")) end, tag .. "'s pid")
    end
    local function said(tag, what)
      return (H.read(parent .. "/" .. tag .. ".out") or ""):find('"type":"' .. what .. '"', 1, true)
    end
    -- the run left to the workers: started by one, which is stopped while its turn waits
    local w1 = start("w1", "--start START")
    H.wait_for(function() return said("w1", "turn_start") end, "the first worker's turn")
    os.execute("kill -TERM " .. w1)
    -- the shell makes an rc file before it writes the status in it: wait for the digits
    H.wait_for(function() return (H.read(parent .. "/w1.rc") or ""):match("^%d+") end, "the first worker to end")
    -- the next worker opens its engine, says so, and waits to join the run at the claim
    -- section (held here, for less than claims.WAIT_MS); orket.lua breaks meanwhile
    local claim = assert(require("orket.c.lockfile").acquire(p .. "/.orket/claim.lock"))
    local ok, err = pcall(function()
      start("w2", "--drain")
      H.wait_for(function() return said("w2", "worker_start") end, "the second worker's start")
      append(p .. "/orket.lua", "budgets = { turn = 4 }\n")
    end)
    claim:release()
    assert(ok, err)
    H.wait_for(function() return (H.read(parent .. "/w2.rc") or ""):match("^%d+") end, "the second worker to end")
    local stderr = H.read(parent .. "/w2.err")
    assert.equal("1", (H.read(parent .. "/w2.rc"):match("%d+")), stderr)
    assert.truthy(said("w2", "worker_end"), stderr) -- its closing failure, not its start's
    assert.matches("^orket: " .. name:gsub("%p", "%%%0") .. "/orket%.lua:%d+: budgets%.turn: unknown setting", stderr)
  end)

  it("with an unknown engine setting is refused by models as by run", function()
    local p = project()
    append(p .. "/orket.lua", "budgets = { turn = 4 }\n")
    local r = H.orket("models --no-check", { cwd = p })
    assert.equal(1, r.status)
    assert.matches("orket: orket.lua:18: budgets.turn: unknown setting", r.stderr, 1, true)
  end)
end)

describe("epics that validate and import must refuse", function()
  after_each(H.cleanup)

  it("a dependency on the issue's own epic, issues as an object, a hole, with file and field", function()
    local cases = {
      { "x.json", '{"id":"X","issues":[{"id":"X-1","summary":"a","depends_on":["X"]}]}',
        'epics/x.json:1: issues[0].depends_on[0]: X-1 depends on "X", the epic it belongs to' },
      { "x.json", '{"id":"X","issues":{"a":{"summary":"s"}}}',
        'epics/x.json:1: issues: must be an array of issues, not an object' },
      { "x.lua", 'return { id = "L", issues = { {summary="a"}, nil, {summary="b"} } }',
        "epics/x.lua:1: issues[2]: is nil: a hole in the array of issues" },
      { "x.lua", "local a\nreturn a.b\n", "epics/x.lua:2: attempt to index a nil value (local 'a')" },
      { "x.lua", "", "epics/x.lua: returns nothing; return a table" },
      { "x.lua", "local t = {} t.self = t return t", "epics/x.lua:1: self: cycle" },
    }
    for _, c in ipairs(cases) do
      local p = project()
      H.write(p .. "/epics/" .. c[1], c[2])
      local v = H.orket("validate", { cwd = p })
      assert.equal(1, v.status, v.stdout)
      assert.matches(c[3], v.stdout, 1, true)
      local r = H.orket("import", { cwd = p })
      assert.equal(1, r.status)
      -- import names the file, the line and the field as validate does
      assert.matches("orket: " .. c[3], r.stderr, 1, true)
      assert.is_nil(r.stderr:find("traceback"))
      assert.is_nil(r.stderr:find("@"))
    end
  end)
end)

describe("validate's line for a card's field", function()
  after_each(H.cleanup)

  it("is the field's line in that card, and a duplicate id's own line", function()
    local p = project()
    H.write(p .. "/epics/x.json", '{\n  "id": "X",\n  "priority": "High",\n  "issues": [\n'
      .. '    { "id": "X-1", "summary": "a",\n      "priority": "High" },\n'
      .. '    { "id": "X-2", "summary": "b",\n      "priority": "Soon" }\n  ]\n}\n')
    local v = H.orket("validate", { cwd = p })
    assert.matches("epics/x.json:8: issues[1].priority: unknown priority", v.stdout, 1, true)
    H.write(p .. "/epics/x.json", '{\n  "id": "X",\n  "priority": "High",\n  "issues": [\n'
      .. '    { "id": "X-1", "summary": "a" },\n    { "id": "X-2", "summary": "b" },\n'
      .. '    { "id": "X-1", "summary": "c" }\n  ]\n}\n')
    v = H.orket("validate", { cwd = p })
    assert.matches('epics/x.json:7: issues[2]: card id "X-1" is already used', v.stdout, 1, true)
  end)

  it("of a seat's roles is that seat's line, and an unknown role field has its line", function()
    local p = project()
    local text = H.read(p .. "/orket.lua"):gsub('senior_developer = { roles = { "coder" } }',
      'senior_developer = {\n    roles = { "coder", "nobody" },\n  }')
    H.write(p .. "/orket.lua", text)
    os.execute("mkdir -p " .. H.quote(p .. "/roles"))
    H.write(p .. "/roles/pilot.lua", 'return {\n  intent = "fly",\n  tools = {},\n  sytem = "s",\n}\n')
    local v = H.orket("validate", { cwd = p })
    assert.matches('orket.lua:13: team.senior_developer.roles[2]: no role named "nobody"', v.stdout, 1, true)
    assert.matches("roles/pilot.lua:4: unknown field 'sytem'", v.stdout, 1, true)
  end)

  it("of a role or a tool are all reported, each with its line, not only the first", function()
    local p = project()
    os.execute("mkdir -p " .. H.quote(p .. "/roles") .. " " .. H.quote(p .. "/tools"))
    H.write(p .. "/roles/pilot.lua", 'return {\n  intent = 5,\n  tools = { "read_file", 7 },\n'
      .. '  model = 42,\n  dialect = "telepathy",\n  system = "s",\n}\n')
    H.write(p .. "/tools/bad.lua", 'return {\n  name = "Bad Tool",\n  description = "d",\n  effect = "explode",\n'
      .. '  handler = function() end,\n  parameters = { type = "array" },\n}\n')
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status)
    for _, want in ipairs {
      "roles/pilot.lua:2: intent must be a string", "roles/pilot.lua:3: tools[2] must be a tool name",
      'roles/pilot.lua:4: model must be "provider:model"', 'roles/pilot.lua:5: dialect must be "native" or "json"',
      "tools/bad.lua:2: name must be a snake_case string", 'tools/bad.lua:4: effect must be "read"',
      'tools/bad.lua:6: parameters.type must be "object"',
    } do
      assert.matches(want, v.stdout, 1, true)
    end
    assert.matches("\n7 problems\n$", v.stdout)
    -- run refuses with the first, as before
    local r = H.orket("run START", { cwd = p })
    assert.equal(1, r.status)
    assert.matches("roles/pilot.lua:2: intent must be a string", r.stderr, 1, true)
  end)
end)

describe("orket run outside a project", function()
  after_each(H.cleanup)

  it("says that orket init creates one, as the other commands do", function()
    local dir = H.tmpdir()
    for _, c in ipairs { { "run X", "orket init" }, { "run X -C sub", "orket init sub" } } do
      local r = H.orket(c[1], { cwd = dir })
      assert.equal(1, r.status)
      assert.matches("^orket: no project in %S+ %(orket.lua not found%); '" .. c[2] .. "' creates one\n$", r.stderr)
      assert.is_nil(r.stderr:find("cannot open", 1, true))
    end
  end)

  -- The command a message suggests names the project's folder when it is not ".": a bare
  -- 'orket init' or 'orket import' would act on the folder the person is in.
  it("suggests init and import for the folder given with -C DIR, and the suggestion works", function()
    local dir = H.tmpdir()
    assert(os.execute("mkdir -p " .. H.quote(dir .. "/sub") .. " " .. H.quote(dir .. "/my dir")))
    local cases = {
      { "-C sub board", "no orket.lua there either: 'orket init sub' creates a project" },
      { "-C sub status", "'orket init sub' creates one" },
      { "-C sub secrets list", "'orket init sub' creates one" },
      { "validate sub", "orket.lua: not found; 'orket init sub' creates a project" },
      -- a folder not there: not "not a directory"
      { "validate nodir", "orket: no project in nodir (no such directory); 'orket init nodir' creates one" },
      { "-C 'my dir' board", [['orket init 'my dir'' creates a project]] },
    }
    for _, c in ipairs(cases) do
      local r = H.orket(c[1], { cwd = dir })
      assert.equal(1, r.status, c[1])
      assert.matches(c[2], r.stdout .. r.stderr, 1, true)
    end
    H.write(dir .. "/sub/orket.lua", 'name = "x"\n')
    local r = H.orket("-C sub board", { cwd = dir })
    assert.matches("run 'orket import sub' first", r.stderr, 1, true)
    -- the project's own folder without epics/: told where they go, not to give the project's folder
    r = H.orket("import sub", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("import: sub/epics: no such folder: write the project's epics there", r.stderr, 1, true)
    H.write(dir .. "/sub/epics", "")
    r = H.orket("import sub", { cwd = dir })
    assert.matches("import: sub/epics: a file, not a folder", r.stderr, 1, true)
    os.remove(dir .. "/sub/epics")
    os.remove(dir .. "/sub/orket.lua")
    assert.equal(0, H.orket("init sub --yes", { cwd = dir }).status)
    assert.equal(0, H.orket("-C sub board", { cwd = dir }).status)
    assert.is_nil(H.read(dir .. "/orket.lua")) -- nothing made where the person stood
    -- from inside the project's workspace/ (main's working tree), init would make a project
    -- in it: the project above is named instead, and the commands given it with -C work
    assert(os.execute("mkdir -p " .. H.quote(dir .. "/sub/workspace/src")))
    local real = select(2, H.sh("cd " .. H.quote(dir .. "/sub") .. " && pwd -P")):gsub("%s+$", "")
    for _, cmd in ipairs { "board", "runs", "run START", "worker", "validate", "import", "secrets list" } do
      r = H.orket(cmd, { cwd = dir .. "/sub/workspace/src" })
      assert.equal(1, r.status, cmd)
      assert.matches("this folder is in the workspace/ of the project " .. real .. ": give it with -C " .. real,
        r.stdout .. r.stderr, 1, true)
      assert.not_matches("orket init", r.stdout .. r.stderr)
      assert.not_matches("give the project directory", r.stdout .. r.stderr)
    end
    for _, cmd in ipairs { "board", "runs", "validate", "secrets list" } do
      assert.equal(0, H.orket(cmd .. " -C " .. H.quote(real), { cwd = dir .. "/sub/workspace/src" }).status, cmd)
    end
    -- from its epics/ the same: 'orket init' there made a project whose files broke the import
    r = H.orket("board", { cwd = dir .. "/sub/epics" })
    assert.equal(1, r.status)
    assert.matches("this folder is in the epics/ of the project " .. real .. ": give it with -C " .. real, r.stderr, 1, true)
  end)

  -- A suggested command, pasted into a shell, acts on the folder it names: the folder in
  -- single quotes (neither bash's history expansion of ! nor $ acts there; double quotes
  -- gave "event not found"), a leading '-' as ./-x (not an option), a newline as $'...'
  -- (printed raw, it split the command in two).
  it("suggests an init that, pasted into sh or an interactive bash, makes the folder named", function()
    local dir = H.tmpdir()
    local bash = "HISTFILE=/dev/null bash --norc -i < cmd.txt"
    for _, c in ipairs {
      { "-it's !x $HOME", { "sh cmd.txt", bash } },
      { "a\nb!", { bash } },
    } do
      local r = H.orket("validate -- " .. H.quote(c[1]), { cwd = dir })
      assert.equal(1, r.status)
      local cmd = r.stderr:match("; '(orket init .*)' creates one\n$")
      assert(cmd, r.stderr)
      for _, shell in ipairs(c[2]) do
        H.write(dir .. "/cmd.txt", H.quote(H.BIN) .. cmd:sub(#"orket" + 1) .. " --yes\n")
        H.sh("cd " .. H.quote(dir) .. " && " .. shell .. " >/dev/null 2>&1")
        assert.is_not_nil(H.read(dir .. "/" .. c[1] .. "/orket.lua"), shell .. ": " .. cmd)
        assert.is_nil(H.read(dir .. "/orket.lua"), shell .. ": " .. cmd)
        assert(os.execute("rm -rf " .. H.quote(dir .. "/" .. c[1])))
      end
    end
  end)

  -- board, run's epics warning and bug said 'orket import' and 'orket run ROCK' with no
  -- folder: from elsewhere, those act on the folder the person is in
  it("says the commands a board, a run and a bug suggest with the project's folder", function()
    local dir = H.tmpdir()
    assert(os.execute("mkdir -p " .. H.quote(dir .. "/e/epics")))
    H.write(dir .. "/e/orket.lua", 'name = "x"\n')
    assert.equal(0, H.orket("import e", { cwd = dir }).status)
    local r = H.orket("-C e board", { cwd = dir })
    assert.equal("the board is empty; put epics in e/epics/ and run 'orket import e'\n", r.stdout)
    assert.equal(0, H.orket("init p --yes", { cwd = dir }).status)
    H.write(dir .. "/p/epics/r.json", '{ "id": "R", "type": "rock", "name": "Rock", "epics": [ "START" ] }\n')
    r = H.orket("-C p run START", { cwd = dir })
    assert.matches("epics/r.json changed since the last import; this run works the board as imported: run "
      .. "'orket import p' to apply them", r.stdout, 1, true)
    assert.equal(0, H.orket("import p", { cwd = dir }).status)
    r = H.orket("bug R 'it broke' -C p", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("R-bugs-1 filed; 'orket run R -C p' works it\n", r.stdout)
  end)
end)

describe("a Lua file nested too deeply to compile", function()
  after_each(H.cleanup)

  -- Lua's parser stops at 200 levels; its error reached orket's own handler, which made
  -- it a traceback (import) or "table: 0x..." (every other command)
  it("is named by every command that loads it, never a traceback or a table", function()
    local deep = ("{"):rep(250) .. ("}"):rep(250)
    local p = project()
    H.write(p .. "/epics/deep.lua", "return " .. deep .. "\n")
    local want = "epics/deep.lua: nested too deeply to compile (C stack overflow)"
    local r = H.orket("import", { cwd = p })
    assert.equal(1, r.status, r.stderr)
    assert.equal("orket: " .. want .. "\n", r.stderr)
    assert.matches(want, H.orket("validate", { cwd = p }).stdout, 1, true)
    os.remove(p .. "/epics/deep.lua")
    local cfg = H.read(p .. "/orket.lua")
    H.write(p .. "/orket.lua", cfg .. "x = " .. deep .. "\n")
    want = "orket.lua: nested too deeply to compile (C stack overflow)"
    assert.matches(want, H.orket("validate", { cwd = p }).stdout, 1, true)
    r = H.orket("run START", { cwd = p })
    assert.equal(1, r.status, r.stderr)
    assert.equal("orket: " .. want .. "\n", r.stderr)
    H.write(p .. "/orket.lua", cfg)
    os.execute("mkdir -p " .. H.quote(p .. "/roles"))
    H.write(p .. "/roles/deep.lua", "return " .. deep .. "\n")
    assert.matches("roles/deep.lua: nested too deeply to compile (C stack overflow)",
      H.orket("validate", { cwd = p }).stdout, 1, true)
    r = H.orket("lua roles/deep.lua", { cwd = p })
    assert.equal(1, r.status, r.stderr)
    assert.equal("orket: roles/deep.lua: nested too deeply to compile (C stack overflow)\n", r.stderr)
    untouched(p)
  end)
end)

describe("a budget error in orket.lua", function()
  after_each(H.cleanup)

  it("names the file and the line under run, validate and models", function()
    local p = project()
    local orig = H.read(p .. "/orket.lua")
    H.write(p .. "/orket.lua", orig .. "local n = 0\nwhile true do n = n + 1 end\n")
    local line = select(2, H.read(p .. "/orket.lua"):gsub("\n", ""))
    for _, cmd in ipairs { "run START", "validate", "models --no-check", "board" } do
      local r = H.orket(cmd, { cwd = p })
      -- (the board, which only reads the store, reads it all the same: orket.lua sets none)
      assert.equal(cmd == "board" and 0 or 1, r.status, cmd)
      assert.matches("orket%.lua:" .. line .. ": script: instruction budget exceeded", r.stdout .. r.stderr)
    end
    -- (the board read once orket.lua loads again: it names the store)
    H.write(p .. "/orket.lua", orig)
    untouched(p)
  end)
end)

describe("a wrong setting in orket.lua", function()
  after_each(H.cleanup)

  -- the line of the field, as validate gives it, from every command that loads orket.lua
  it("is named with its line by every command that loads orket.lua, not only validate", function()
    local p = project()
    local lines = select(2, H.read(p .. "/orket.lua"):gsub("\n", "")) -- the line the section starts after
    append(p .. "/orket.lua", '\nsandbox = {\n  deploy = "sometimes",\n}\n')
    local want = "orket.lua:" .. (lines + 3) .. ": sandbox.deploy: must be"
    assert.matches(want, H.orket("validate", { cwd = p }).stdout, 1, true)
    for _, c in ipairs { "run START", "sandbox plan", "models" } do
      local r = H.orket(c, { cwd = p })
      assert.is_not.equal(0, r.status, c)
      assert.matches("orket: " .. want, r.stderr, 1, true)
    end
    untouched(p)
    -- an unknown setting: the line that sets it
    p = project()
    append(p .. "/orket.lua", "\nverfy = {}\n")
    local r = H.orket("run START", { cwd = p })
    assert.equal(1, r.status)
    assert.matches("orket: orket.lua:" .. (lines + 2) .. ": verfy: unknown setting", r.stderr, 1, true)
  end)

  -- orket.lua may name a PostgreSQL database: a command that took the SQLite file instead
  -- made a board beside the project's (import), or said it had none (board, runs)
  it("that does not load is refused by the commands that only open the store, which open none", function()
    local p = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(p)).status)
    local lines = select(2, H.read(p .. "/orket.lua"):gsub("\n", ""))
    append(p .. "/orket.lua", '\nconcurrency = tonumber(os.getenv("CONC")) or 3\n')
    -- a folder without a SQLite store, as a PostgreSQL project's is
    os.remove(p .. "/.orket/orket.db")
    for _, c in ipairs { "import", "board", "runs", "backup " .. H.quote(p .. "/b.bak") } do
      local r = H.orket(c, { cwd = p })
      assert.equal(1, r.status, c)
      assert.matches("orket: orket.lua:" .. (lines + 2) .. ": attempt to call a nil value (field 'getenv')", r.stderr, 1, true)
    end
    assert.is_nil(io.open(p .. "/.orket/orket.db"))
  end)

  -- a typo in orket.lua stopped the nightly backup and the commands an operator diagnoses
  -- with: those only read or copy the store, which orket.lua moves only by its store
  -- setting; without one in its text, they read the SQLite file and warn
  it("that does not load leaves the commands that only read or copy the store working, when it sets no store",
    function()
    if require("tests.backends").name() ~= "sqlite" then
      return pending("a SQLite store: a PostgreSQL project's orket.lua sets store.url")
    end
    local p = project()
    assert.equal(0, H.orket("run START", { cwd = p }).status)
    local good = H.read(p .. "/orket.lua")
    local line = select(2, good:gsub("\n", "")) + 1
    H.write(p .. "/orket.lua", good .. "x = {\n")
    local want = "orket: warning: orket.lua:" .. (line + 1) .. ": unexpected symbol near <eof> (the commands that "
      .. "need orket.lua refuse until it is fixed; it sets no store, so .orket/orket.db is read)\n"
    local cases = { { "board", "START%-1%s+done" }, { "runs", "START%s+epic" }, { "card START-1", "START%-1" },
      { "audit verify", "audit" }, { "backup " .. H.quote(p .. "/b.bak"), "backed up %d+ cards" },
      { "log 1", "run 1: epic START" } }
    for _, c in ipairs(cases) do
      local r = H.orket(c[1], { cwd = p })
      assert.equal(0, r.status, c[1] .. ": " .. r.stderr)
      assert.equal(want, r.stderr, c[1])
      assert.matches(c[2], r.stdout)
    end
    assert.equal(0, H.orket("restore --check " .. H.quote(p .. "/b.bak"), { cwd = p }).status)
    -- the commands that need it refuse as ever, naming its line
    for _, c in ipairs { "run START", "resume", "comment START-1 note", "serve --listen 127.0.0.1:0", "worker" } do
      local r = H.orket(c, { cwd = p })
      assert.equal(1, r.status, c .. ": " .. r.stderr)
      assert.matches("orket.lua:" .. (line + 1) .. ": unexpected symbol near <eof>", r.stderr, 1, true)
      assert.is_nil(r.stderr:find("warning", 1, true), c)
    end
    -- one that names the store anywhere (a comment too) may set it: nothing is read
    H.write(p .. "/orket.lua", good .. "-- the store is SQLite\nx = {\n")
    for _, c in ipairs { "board", "backup " .. H.quote(p .. "/c.bak") } do
      local r = H.orket(c, { cwd = p })
      assert.equal(1, r.status, c)
      assert.matches("unexpected symbol near <eof>; it may set the store (store.url), so which store to read cannot "
        .. "be told until it loads: fix it, or give the store as ORKET_DATABASE_URL (nothing was read)", r.stderr, 1, true)
    end
    assert.is_nil(io.open(p .. "/c.bak"))
  end)

  it("an issue's bad priority is refused by import with its line", function()
    local p = project()
    local f = p .. "/epics/start.json"
    local text = H.read(f):gsub('"priority": "High"', '"priority": "urgent"')
    H.write(f, text)
    local line
    local n = 0
    for l in (text .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      if l:find('"urgent"', 1, true) then line = n end
    end
    local r = H.orket("import", { cwd = p })
    assert.equal(1, r.status)
    assert.matches("orket: epics/start.json:" .. line .. ": issues[0].priority: unknown priority", r.stderr, 1, true)
  end)
end)

describe("a store file the command cannot use", function()
  after_each(H.cleanup)

  -- SQLite's own words were all a person got: "unable to open database file" for a folder
  -- where the store should be, "attempt to write a readonly database" at a writer's first
  -- write to a file it may not write (SQLite opens it read-only without a word)
  it("is said as a folder, or as a file this command may not write, readers reading it", function()
    local backends = require "tests.backends"
    if backends.name() ~= "sqlite" then return pending("a SQLite store's file: PostgreSQL keeps none in the project") end
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir)).status)
    local db = dir .. "/.orket/orket.db"
    assert(os.execute(string.format("mv %s %s.kept && mkdir %s", H.quote(db), H.quote(db), H.quote(db))))
    local r = H.orket("board", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("store: .orket/orket.db is a folder, not the store; move it away", r.stderr, 1, true)
    assert(os.execute(string.format("rmdir %s && mv %s.kept %s", H.quote(db), H.quote(db), H.quote(db))))
    -- (root may write any file: the check is a normal user's; CI runs the tests as one too)
    if H.sh("test $(id -u) -eq 0") == 0 then return pending("run as root, who may write a file of mode 0444") end
    assert(os.execute("chmod 444 " .. H.quote(db)))
    finally(function() os.execute("chmod 600 " .. H.quote(db)) end)
    r = H.orket("import", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("store: .orket/orket.db cannot be written", r.stderr, 1, true)
    assert.equal(0, H.orket("board", { cwd = dir }).status)
  end)
end)

-- -C through a file or with a name past the system's limit blamed an orket.lua that is not
-- there, and told to set ORKET_DATABASE_URL
describe("a project folder that cannot be one", function()
  after_each(function() H.cleanup() end)

  it("is said of the folder by the reading and writing commands, not of an orket.lua", function()
    local p = project()
    local cases = {
      { p .. "/orket.lua/x", "a part of its path is a file, not a folder" },
      { H.tmpdir() .. "/" .. string.rep("y", 300), "a name in its path is longer than the system allows" },
    }
    for _, c in ipairs(cases) do
      for _, cmd in ipairs { "board", "runs", "run START", "status", "status --json" } do
        local r = H.orket("-C " .. H.quote(c[1]) .. " " .. cmd)
        assert.equal(1, r.status, cmd)
        assert.matches(" cannot be a project's folder: " .. c[2], r.stderr, 1, true)
        assert.is_nil(r.stderr:find("ORKET_DATABASE_URL", 1, true), r.stderr)
      end
    end
  end)
end)
