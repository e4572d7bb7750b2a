-- orket gate check answers as a run would: a policy or tool file a run refuses for its name
-- (Notepad's x.lua.txt) is refused here too, never answered without it (a deny not in force).
local H = require "tests.helpers"

describe("orket gate check", function()
  after_each(function() H.cleanup() end)

  it("refuses a policies/ or tools/ file saved as NAME.lua.txt, naming the rename", function()
    local dir = H.example("notes")
    local ask = "gate check --role coder --tool run_command --args '{\"argv\":[\"ls\"]}'"
    for _, f in ipairs { "policies/no_shell.lua.txt", "tools/x.lua.txt" } do
      assert(os.execute("mkdir -p " .. H.quote(dir .. "/" .. f:match("^[^/]+"))))
      H.write(dir .. "/" .. f, 'deny{ tool = "run_command", reason = "no shell" }\r\n')
      local r = H.orket(ask, { cwd = dir })
      assert.equal(1, r.status, r.stdout .. r.stderr)
      assert.matches("orket: " .. f .. ": not read: its name ends in .txt, as Windows Notepad saves a \"Text Document\" "
        .. "(Explorer hides the ending); rename it " .. f:gsub("%.txt$", ""), r.stderr, 1, true)
      os.remove(dir .. "/" .. f)
    end
    assert.equal(4, H.orket(ask, { cwd = dir }).status) -- (ask: no policy allows ls)
  end)
end)
