-- The commands that take the built-in defaults where there is no orket.lua (models, sandbox
-- plan/up/compose) run where there is no project: outside any project, sandbox plan, up and
-- compose write nothing (a stray .orket/sandboxes/ made the folder look like a project, and
-- a later 'orket init' there was refused) and say to make one; inside a project's own
-- folders (workspace/, the team's repository, or epics/) they, and models, name that project
-- and its -C as every other command does, instead of the defaults or a write into the tree.
local H = require "tests.helpers"

local SANDBOX = { "sandbox plan", "sandbox up --detach", "sandbox compose" }

local function exists(path) return os.execute("test -e " .. H.quote(path)) == true end

-- what a folder holds, hidden names too, one word per entry ("" for nothing)
local function listing(dir)
  local _, out = H.sh("ls -A " .. H.quote(dir))
  return (out:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

describe("a command run where there is no project", function()
  after_each(function() H.cleanup() end)

  it("sandbox plan, up and compose outside any project write nothing and name 'orket init'", function()
    local dir = H.tmpdir() .. "/new"
    assert(os.execute("mkdir -p " .. H.quote(dir)))
    for _, c in ipairs(SANDBOX) do
      local r = H.orket(c, { cwd = dir })
      assert.equal(1, r.status, c .. ": " .. r.stdout .. r.stderr)
      assert.matches("no project in . (orket.lua not found); 'orket init' creates one", r.stderr, 1, true)
      assert.equal("", listing(dir), c)
    end
    -- models keeps showing the built-in providers there (its help says so)
    local m = H.orket("models --no-check", { cwd = dir })
    assert.equal(0, m.status, m.stderr)
    assert.matches("^default: ", m.stdout)
    assert.equal("", listing(dir))
    local init = H.orket("init --yes .", { cwd = dir })
    assert.equal(0, init.status, init.stderr)
  end)

  it("names the project and its -C from its workspace/ and epics/, writing nothing there", function()
    local dir = H.tmpdir() .. "/p"
    local init = H.orket("init --yes " .. H.quote(dir))
    assert.equal(0, init.status, init.stderr)
    assert(os.execute("mkdir -p " .. H.quote(dir .. "/workspace/tools")))
    local real = select(2, H.sh("cd " .. H.quote(dir) .. " && pwd -P")):gsub("%s+$", "")
    for _, at in ipairs { { "workspace/tools", "workspace" }, { "epics", "epics" } } do
      local cwd = dir .. "/" .. at[1]
      local before = listing(cwd)
      for _, c in ipairs { SANDBOX[1], SANDBOX[2], SANDBOX[3], "models --no-check" } do
        local r = H.orket(c, { cwd = cwd })
        assert.equal(1, r.status, c .. " in " .. at[1] .. ": " .. r.stdout .. r.stderr)
        assert.matches("this folder is in the " .. at[2] .. "/ of the project " .. real .. ": give it with -C " .. real,
          r.stderr, 1, true)
        assert.equal("", r.stdout, c) -- not the built-in models
        assert.equal(before, listing(cwd), c .. " in " .. at[1])
      end
    end
    assert.is_false(exists(dir .. "/workspace/deploy"))
    -- nothing stray left there: secrets list still points at the project
    local s = H.orket("secrets list", { cwd = dir .. "/workspace/tools" })
    assert.equal(1, s.status)
    assert.matches("of the project " .. real, s.stderr, 1, true)
    assert.matches("with -C " .. real, s.stderr, 1, true)
    -- and with -C the project's own models are listed
    local m = H.orket("models --no-check -C " .. H.quote(real), { cwd = dir .. "/workspace/tools" })
    assert.equal(0, m.status, m.stderr)
    assert.matches("default: scripted:", m.stdout, 1, true)
  end)
end)
