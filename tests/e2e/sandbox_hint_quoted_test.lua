-- The commands `orket sandbox up` prints are pasted as they are: its "reach it:" line once
-- gave the socket's path bare, so a project whose path holds a space or a newline printed a
-- curl that named another socket (exit 7), and `orket sandbox list` split its row in two.
local H = require "tests.helpers"

describe("orket sandbox up's reach-it line", function()
  local skip
  setup(function()
    if not H.sandbox_offered("python3") then skip = "the kernel offers no network namespace here, or python3 is missing" end
  end)
  after_each(H.cleanup)

  it("quotes the socket's path, so that the command works pasted, and sandbox list keeps its row on one line", function()
    if skip then return pending(skip) end
    local dir = H.tmpdir() .. "/my proj\nnext"
    local r = H.orket("init " .. H.quote(dir))
    assert.equal(0, r.status, r.stderr)
    H.write(dir .. "/workspace/index.html", "hello from main\n")
    H.commit_main(dir, "the app")
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua")
      .. '\nsandbox = { command = { "python3", "-m", "http.server", "{port}", "--bind", "{host}" } }\n')
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local cmd = r.stdout:match("reach it: ([^\n]+)")
    assert.truthy(cmd, r.stdout)
    -- pasted into bash (the $'...' of a newline is bash's)
    local p = io.popen("bash -c " .. H.quote("curl -s " .. cmd:gsub("^curl ", "")) .. " 2>&1")
    local got = p:read("a")
    p:close()
    assert.equal("hello from main\n", got)
    local list = H.orket("sandbox list", { cwd = dir }).stdout
    local rows = 0
    for line in list:gmatch("[^\n]+") do
      if line:match("^1 ") then
        rows = rows + 1
        assert.matches("my proj\\nnext/.orket/sandboxes/1/app.sock", line, 1, true)
      end
    end
    assert.equal(1, rows, list)
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
  end)
end)
