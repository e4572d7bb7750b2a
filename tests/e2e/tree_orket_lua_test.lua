-- An orket.lua with tools/ and policies/ beside it inside a project's workspace/ (an agent
-- may write those names there: they are the team's files) is a file of the tree, never a
-- project: a person who runs orket there is told to name the project, and nothing of it is
-- loaded (its tool script would run, its MCP servers be started with the person's
-- environment).
local H = require "tests.helpers"

describe("an orket.lua inside a project's workspace/", function()
  after_each(function() H.cleanup() end)

  it("is not read as a project by any command run there", function()
    local dir = H.tmpdir() .. "/p"
    local init = H.orket("init --yes " .. H.quote(dir))
    assert.equal(0, init.status, init.stderr)
    local ws = dir .. "/workspace"
    local sub = ws .. "/svc"
    for _, d in ipairs({ ws, sub }) do
      assert(os.execute("mkdir -p " .. H.quote(d .. "/tools") .. " " .. H.quote(d .. "/policies")))
      H.write(d .. "/orket.lua", 'name = "tree"\n')
      H.write(d .. "/tools/evil.lua", 'error("EVIL TOOL LOADED")\n')
      H.write(d .. "/policies/evil.lua", 'error("EVIL POLICY LOADED")\n')
    end
    for _, d in ipairs({ ws, sub }) do
      for _, cmd in ipairs({ "validate", "run START", "gate check --role coder --tool read_file --args {}" }) do
        local r = H.orket(cmd, { cwd = d })
        local out = r.stdout .. r.stderr
        assert.is_not.equal(0, r.status, cmd .. " in " .. d)
        assert.is_nil(out:find("EVIL", 1, true), cmd .. ": " .. out)
        assert.matches("in the workspace/ of the project", out, 1, true)
        assert.matches("-C", out, 1, true)
      end
    end
    -- a card's directory (agents' too), but not a replay the REPL kept under .orket/
    local card = dir .. "/.orket/worktrees/START-1"
    assert(os.execute("mkdir -p " .. H.quote(card .. "/tools")))
    H.write(card .. "/orket.lua", 'name = "tree"\n')
    H.write(card .. "/tools/evil.lua", 'error("EVIL TOOL LOADED")\n')
    local r = H.orket("validate", { cwd = card })
    assert.is_not.equal(0, r.status)
    assert.is_nil((r.stdout .. r.stderr):find("EVIL", 1, true), r.stdout .. r.stderr)
    assert.matches("in the .orket/ of the project", r.stdout .. r.stderr, 1, true)
    -- the project itself is read as always
    local v = H.orket("validate", { cwd = dir })
    assert.equal(0, v.status, v.stdout .. v.stderr)
  end)

  -- refused, with nothing of the folder loaded, run from dir and given with -C from the project
  local function refused(project, dir, rel, folder)
    for _, how in ipairs { { cwd = dir, args = "validate" }, { cwd = project, args = "validate -C " .. rel } } do
      local r = H.orket(how.args, { cwd = how.cwd })
      local out = r.stdout .. r.stderr
      assert.is_not.equal(0, r.status, how.args .. " in " .. how.cwd .. ": " .. out)
      assert.is_nil(out:find("EVIL", 1, true), out)
      assert.matches("in the " .. folder .. "/ of the project", out, 1, true)
    end
  end

  local function evil(d)
    assert(os.execute("mkdir -p " .. H.quote(d .. "/tools")))
    H.write(d .. "/orket.lua", 'name = "tree"\n')
    H.write(d .. "/tools/evil.lua", 'error("EVIL TOOL LOADED")\n')
  end

  it("is refused though a program made its folder look like a project", function()
    -- .orket/ and a workspace link to the folder itself: what a card's program can make and
    -- commit (the gate stops only the file tools)
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init --yes " .. H.quote(dir)).status)
    local sub = dir .. "/workspace/svc"
    evil(sub)
    assert(os.execute("mkdir -p " .. H.quote(sub .. "/.orket") .. " && ln -s . " .. H.quote(sub .. "/workspace")))
    refused(dir, sub, "workspace/svc", "workspace")
    evil(dir .. "/workspace")
    assert(os.execute("mkdir -p " .. H.quote(dir .. "/workspace/.orket") .. " && ln -s . "
      .. H.quote(dir .. "/workspace/workspace")))
    refused(dir, dir .. "/workspace", "workspace", "workspace")
  end)

  it("is refused when workspace/ is a link to another place", function()
    local top = H.tmpdir()
    local dir = top .. "/p"
    assert.equal(0, H.orket("init --yes " .. H.quote(dir)).status)
    assert(os.execute("mv " .. H.quote(dir .. "/workspace") .. " " .. H.quote(top .. "/repo") .. " && ln -s "
      .. H.quote(top .. "/repo") .. " " .. H.quote(dir .. "/workspace")))
    evil(top .. "/repo/svc")
    refused(dir, dir .. "/workspace/svc", "workspace/svc", "workspace")
    -- nor may the server host it (it keeps the real path, where nothing above is a project)
    local r = H.orket("projects add workspace/svc", { cwd = dir })
    assert.is_not.equal(0, r.status, r.stdout)
    assert.matches("in the workspace/ of the project", r.stderr, 1, true)
  end)

  it("is refused in a card's directory while workspace/ is away", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init --yes " .. H.quote(dir)).status)
    assert(os.execute("rm -rf " .. H.quote(dir .. "/workspace")))
    local card = dir .. "/.orket/worktrees/START-1"
    evil(card)
    refused(dir, card, ".orket/worktrees/START-1", ".orket")
  end)

  it("is refused by projects add and by secrets list", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init --yes " .. H.quote(dir)).status)
    evil(dir .. "/workspace/sub")
    local r = H.orket("projects add workspace/sub", { cwd = dir })
    assert.is_not.equal(0, r.status, r.stdout)
    assert.matches("in the workspace/ of the project", r.stderr, 1, true)
    r = H.orket("secrets list", { cwd = dir .. "/workspace/sub" })
    assert.is_not.equal(0, r.status, r.stdout)
    assert.matches("in the workspace/ of the project", r.stderr, 1, true)
  end)

  it("is refused in sandbox compose's copy of main's tree", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init --yes " .. H.quote(dir)).status)
    evil(dir .. "/deploy/src/svc")
    refused(dir, dir .. "/deploy/src/svc", "deploy/src/svc", "deploy")
  end)
end)
