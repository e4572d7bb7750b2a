-- `orket repl`: a history path that cannot be used (ORKET_HISTORY naming a folder, or a file
-- in a folder that does not exist) is said when the prompt opens; before, no history was
-- kept and nothing said so. Its help names -C DIR, the only way it takes a folder (it
-- spoke of a DIR argument the command refuses).
local H = require "tests.helpers"

describe("orket repl's history path and help", function()
  after_each(H.cleanup)

  it("warns of a history path that cannot be used, and keeps one that can", function()
    local dir = H.tmpdir()
    for _, c in ipairs({
      { dir .. "/no/such/h", "the folder " .. dir .. "/no/such does not exist" },
      { dir, "it is a folder, not a file" },
    }) do
      local r = H.orket("repl", { cwd = dir, stdin = "1 + 1\n", env = { ORKET_HISTORY = c[1] } })
      assert.equal(0, r.status, r.stderr)
      assert.matches("> 2\n", r.stdout, 1, true)
      assert.equal("orket: warning: no history is kept: ORKET_HISTORY=" .. c[1] .. ": " .. c[2] .. "\n", r.stderr)
    end
    local r = H.orket("repl", { cwd = dir, stdin = "1 + 1\n", env = { ORKET_HISTORY = dir .. "/h" } })
    assert.equal("", r.stderr)
    assert.matches("\n1[^\n]*%+[^\n]*1\n", H.read(dir .. "/h")) -- (libedit writes a space as \040)
    r = H.orket("repl", { cwd = dir, stdin = "1 + 1\n", env = { ORKET_HISTORY = "" } })
    assert.equal("", r.stderr)
    -- HOME unset: said (it was silent), with the way to keep one
    r = H.orket("repl", { cwd = dir, stdin = "1 + 1\n", wrap = "env -u HOME -u ORKET_HISTORY" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("orket: warning: no history is kept: the history file: HOME is not set (set ORKET_HISTORY=FILE to "
      .. "keep one)\n", r.stderr)
    -- HOME with a trailing slash: the file is named once, without a doubled slash
    local home = dir .. "/home"
    assert(os.execute("mkdir " .. H.quote(home)))
    r = H.orket("repl", { cwd = dir, stdin = "1 + 1\n", wrap = "env -u ORKET_HISTORY HOME=" .. H.quote(home .. "/") })
    assert.equal("", r.stderr)
    assert.truthy(io.open(home .. "/.orket_history"))
    -- a folder that cannot be written in: said when the prompt opens, not only at its end
    -- (root writes anywhere: only checked as another user)
    local ro = dir .. "/ro"
    assert(os.execute("mkdir " .. H.quote(ro) .. " && chmod 555 " .. H.quote(ro)))
    r = H.orket("repl", { cwd = dir, stdin = "1 + 1\n", env = { ORKET_HISTORY = ro .. "/h" } })
    if H.read("/proc/self/status"):match("\nUid:%s+0%s") then
      assert.equal("", r.stderr)
    else
      assert.equal("orket: warning: no history is kept: ORKET_HISTORY=" .. ro .. "/h: the folder " .. ro .. " cannot "
        .. "be written in (no permission, or a read-only file system)\n", r.stderr)
    end
  end)

  it("names -C DIR in its help, not a DIR argument", function()
    local r = H.orket("help repl")
    assert.equal(0, r.status)
    assert.matches("the folder %-C DIR names", r.stdout)
    assert.is_nil(r.stdout:find("(DIR, default", 1, true))
    assert.equal(2, H.orket("repl " .. H.quote(H.tmpdir())).status)
  end)
end)
