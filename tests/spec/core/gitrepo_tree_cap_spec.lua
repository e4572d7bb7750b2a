-- orket.c.gitrepo caps the files of a card's directory (GR_TREE_FILES_MAX, core/gitrepo/scan.c):
-- a commit of a tree past it is refused (EUNSAFE, naming the directory and the limit) rather
-- than staged, committed and merged on the loop thread. 300,000 files agent code made
-- stalled `orket serve` for 52 s (reports11/escape.md, 2). An ignored directory does not count.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local WHO = { name = "coder", email = "coder@orket.invalid" }
local LIMIT = 50000

local function sh(cmd) assert(os.execute(cmd), cmd) end

-- n empty files under dir, 1,000 a folder (one process: a few hundred ms)
local function files(dir, n)
  sh(string.format("python3 -c 'import os,sys\nd,n=sys.argv[1],int(sys.argv[2])\n"
    .. "for i in range(n):\n  p=\"%%s/d%%d\" %% (d, i // 1000)\n  os.makedirs(p, exist_ok=True)\n"
    .. "  open(\"%%s/f%%d\" %% (p, i), \"w\").close()' %s %d", H.quote(dir), n))
end

describe("a card's directory past the files limit", function()
  local base, ws, repo, wtp
  before_each(function()
    base = H.tmpdir()
    ws = base .. "/ws"
    sh("mkdir -p " .. ws)
    H.write(ws .. "/README", "hello\n")
    repo = assert(G.init(ws, WHO))
    wtp = assert(repo:worktree("X1", base .. "/wt/X1"))
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  it("is not committed: EUNSAFE names the directory and the limit", function()
    files(wtp .. "/many", LIMIT + 1)
    local t0 = os.time()
    local id, msg, code = repo:commit("X1", { name = "c", email = "c@x", message = "m", turn = "1/X1/1" })
    assert.is_nil(id)
    assert.equal("EUNSAFE", code)
    assert.matches("50000 more than its index tracks", msg, 1, true)
    assert.matches("GR_TREE_FILES_MAX", msg, 1, true)
    assert.matches(wtp, msg, 1, true)
    assert.is_true(os.time() - t0 < 20)
  end)

  it("does not count an ignored directory", function()
    files(wtp .. "/build", LIMIT + 1)
    H.write(wtp .. "/.gitignore", "build/\n")
    H.write(wtp .. "/a.txt", "a\n")
    local id, kind = repo:commit("X1", { name = "c", email = "c@x", message = "m", turn = "1/X1/1" })
    assert.is_string(id, kind)
    assert.equal("committed", kind)
  end)
end)
