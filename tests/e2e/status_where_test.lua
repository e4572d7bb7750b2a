-- `orket status` prints commands run from the project's folder (git -C workspace ...): it says
-- where that is whenever its text holds one and it was asked from elsewhere (workspace/, or
-- with -C), not only when a path is listed: a branch of the person's checked out, or a
-- refresh that failed, name git commands too. --json names the folder (dir). A run given
-- -C names the project in its 'orket status' hint, and so does `orket log -C`.
local H = require "tests.helpers"
local cjson = require "cjson"
local backends = require "tests.backends"

local CD = "(the commands below run in the project's folder: cd "

-- starter() -> dir, root: the starter project `orket init` makes, in a folder of its own
local function starter()
  local root = H.tmpdir()
  assert.equal(0, H.orket("init p", { cwd = root }).status)
  local dir = backends.project(root .. "/p")
  if backends.name() == "pg" then assert.equal(0, H.orket("import", { cwd = dir }).status) end
  return dir, root
end

local function realpath(p) return io.popen("realpath " .. H.quote(p)):read("l") end

describe("where orket status's commands run", function()
  after_each(function() H.cleanup() end)

  it("says it with a branch checked out, a failed refresh, and in --json", function()
    local dir, root = starter()
    local real = realpath(dir)
    local ws = H.quote(dir .. "/workspace")
    -- a refresh that fails: git's split index, which libgit2 cannot read
    assert(os.execute("git -C " .. ws .. " update-index --split-index"))
    local r = H.orket("run START", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local inside = H.orket("status", { cwd = dir .. "/workspace" })
    assert.equal(0, inside.status, inside.stderr)
    assert.matches("workspace/ is behind main", inside.stdout, 1, true)
    assert.matches("git -C workspace update-index --no-split-index", inside.stdout, 1, true)
    assert.matches(CD .. real .. ")\n", inside.stdout, 1, true)
    local from_root = H.orket("status -C p", { cwd = root })
    assert.equal(0, from_root.status, from_root.stderr)
    assert.matches(CD .. real .. ")\n", from_root.stdout, 1, true)
    -- asked from the project's folder: nothing to say
    local here = H.orket("status", { cwd = dir })
    assert.is_nil(here.stdout:find(CD, 1, true), here.stdout)
    assert(os.execute("git -C " .. ws .. " update-index --no-split-index"))

    -- a branch of the person's checked out: the line names git -C workspace checkout main
    assert(os.execute("git -C " .. ws .. " checkout -q -b mine"))
    inside = H.orket("status", { cwd = dir .. "/workspace" })
    assert.equal(0, inside.status, inside.stderr)
    assert.matches("refs/heads/mine", inside.stdout, 1, true)
    assert.matches("-C workspace", inside.stdout, 1, true)
    assert.matches(CD .. real .. ")\n", inside.stdout, 1, true)
    -- the printed commands work where it says
    assert(os.execute("cd " .. H.quote(real) .. " && git -C workspace checkout -q main"))

    -- --json: the folder the argv lists run in, absolute, from wherever it was asked
    local j = H.orket("status --json", { cwd = dir .. "/workspace" })
    assert.equal(0, j.status, j.stderr)
    local doc = cjson.decode(j.stdout)
    assert.equal(real, doc.dir)
    assert.equal(real, cjson.decode(H.orket("status --json -C p", { cwd = root }).stdout).dir)
  end)

  it("names -C in a run's and orket log's 'orket status' hint", function()
    local dir, root = starter()
    H.write(dir .. "/workspace/hello.txt", "draft\n") -- a person's file at a path the card adds
    local r = H.orket("run START-1 -C p", { cwd = root })
    assert.equal(0, r.status, r.stderr)
    local line = r.stdout:match('[^\n]*"type":"view_diverged"[^\n]*')
    assert.truthy(line, r.stdout)
    assert.matches("'orket status -C p' shows both", cjson.decode(line).message, 1, true)
    local log = H.orket("log 1 -C p", { cwd = root })
    assert.equal(0, log.status, log.stderr)
    assert.matches("kept your version of 1 path: hello.txt; 'orket status -C p' shows both", log.stdout, 1, true)
    -- from the project's folder, as before: no -C
    log = H.orket("log 1", { cwd = dir })
    assert.matches("hello.txt; 'orket status' shows both", log.stdout, 1, true)
    -- the document has no trace of the caller's spelling of the folder
    assert.is_nil(H.orket("status --json -C p", { cwd = root }).stdout:find("given_dir", 1, true))
  end)
end)
