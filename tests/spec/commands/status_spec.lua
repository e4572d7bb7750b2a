-- orket status's words: its help says what it lists (the paths main's merges changed where
-- workspace/ keeps a person's version, and a view behind main), and a workspace without a
-- repository is told what makes one (the next run), not to run orket init on a project.
local H = require "tests.helpers"

describe("orket status", function()
  after_each(H.cleanup)

  it("says in its help what it lists, not every difference from main", function()
    local r = H.orket("help status")
    assert.equal(0, r.status, r.stderr)
    assert.not_matches("differs from main", r.stdout)
    assert.matches("paths main's merges changed where workspace/ keeps yours", r.stdout)
    assert.matches("behind main", r.stdout)
  end)

  it("tells a project whose workspace/ lost its repository that the next run makes one", function()
    local dir = H.tmpdir()
    assert(os.execute("mkdir -p " .. H.quote(dir .. "/workspace")))
    for _, args in ipairs { "status", "status --json" } do
      local r = H.orket(args .. " -C " .. H.quote(dir))
      assert.equal(1, r.status)
      assert.not_matches("run orket init", r.stderr)
      assert.matches("workspace/ has no git repository: the next 'orket run' makes one", r.stderr)
      assert.matches("history of a removed one is not brought back", r.stderr)
    end
  end)

  it("tells a project whose workspace/ is gone, or is a file, what the next run does, not to run orket init", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", "name = 'x'\n")
    -- (with .orket/: a project without it has not run yet here, tests/spec/commands/status_fresh_spec.lua)
    assert(require("luv").fs_mkdir(dir .. "/.orket", 448))
    for _, args in ipairs { "status", "status --json" } do
      local r = H.orket(args .. " -C " .. H.quote(dir))
      assert.equal(1, r.status)
      assert.not_matches("orket init", r.stderr)
      -- the run that makes it names the project, as typed from where the person is
      assert.matches("/workspace is missing: the next 'orket run EPIC -C " .. dir .. "' makes workspace/ anew",
        r.stderr, 1, true)
      assert.matches("not brought back", r.stderr, 1, true)
    end
    H.write(dir .. "/workspace", "a file\n")
    local r = H.orket("status -C " .. H.quote(dir))
    assert.equal(1, r.status)
    assert.not_matches("orket init", r.stderr)
    assert.not_matches("has no git repository", r.stderr)
    assert.matches("/workspace is a file, not a folder: move it aside (mv ", r.stderr, 1, true)
    -- and orket run says the same, where it said "cannot open root ./workspace: Not a directory"
    r = H.orket("run X -C " .. H.quote(dir))
    assert.equal(1, r.status)
    assert.matches("^orket: %S+/workspace is a file, not a folder: move it aside %(mv ", r.stderr)

    -- a link to nothing: git's "no git repository (run orket init)" from status, EEXIST from run
    os.remove(dir .. "/workspace")
    assert(os.execute("ln -s nowhere " .. H.quote(dir .. "/workspace")))
    for _, args in ipairs { "status", "run X" } do
      r = H.orket(args .. " -C " .. H.quote(dir))
      assert.equal(1, r.status, args)
      assert.matches("/workspace is a link to nothing, not a folder: move it aside (mv ", r.stderr, 1, true)
    end
  end)

  it("quotes a word so that bash, given it back, has those very bytes", function()
    local cli = require "orket.cli"
    local words = { "plain.txt", "it's here", "new\nline.txt", "tab\there", "a\\nb", "esc\27]0;x\7",
      "bad\255byte", "rtl\226\128\174x", "caf\195\169 'q'\n" }
    for _, w in ipairs(words) do
      local q = cli.shell_quote(w)
      -- printable as it is: nothing in it a terminal would show escaped
      assert.equal(q, require("orket.inert").line(q), q)
      local f = io.popen("bash -c " .. H.quote("printf %s " .. q))
      assert.equal(w, f:read("a"), q)
      f:close()
    end
    assert.equal("$'new\\x0aline.txt'", cli.shell_quote("new\nline.txt"))
  end)
end)

-- The note a run prints after its merges names the diverged paths as orket status writes
-- them: a name an agent made with a newline would otherwise start a terminal line of its own
describe("the run's note of diverged paths", function()
  local view = require "orket.views.status"

  it("writes each path as a shell word, a newline never raw", function()
    local doc = { diverged = { { path = "plain.txt" }, { path = "new\nline.txt" }, { path = "my file" } } }
    local note = view.note(doc)
    assert.is_nil(note:find("\n", 1, true), note)
    assert.matches("your version of plain.txt, $'new\\x0aline.txt', 'my file' where main has another (3 paths)",
      note, 1, true)
    assert.is_nil(view.note({ diverged = {} }))
  end)
end)
