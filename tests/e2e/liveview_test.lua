-- End-to-end: `orket run` on a pseudo-terminal draws the live view and leaves the final
-- summary; --json on a terminal still prints JSON Lines. The notes example, scripted model.
local H = require "tests.helpers"

local PTY = H.BIN:gsub("orket$", "ptydrive")

local function project() return H.example("notes") end

-- Runs `orket ARGS` in dir on a terminal (ptydrive), waiting for each expected text.
local function pty(dir, args, expects, no_color)
  local steps = {}
  for _, e in ipairs(expects) do steps[#steps + 1] = "expect " .. e end
  H.write(dir .. "/steps", table.concat(steps, "\n") .. "\n")
  local p = io.popen(string.format("cd %s && env NO_COLOR=%s TERM=xterm %s -t 30 -- %s %s <steps 2>&1",
    H.quote(dir), H.quote(no_color), H.quote(PTY), H.quote(H.BIN), args))
  local out = p:read("a")
  p:close()
  return out
end

describe("orket run on a terminal", function()
  after_each(H.cleanup)

  it("shows the live view and ends with the summary, exit 0", function()
    local dir = project()
    local out = pty(dir, "run NOTES", { "orket run 1 NOTES", "run 1 NOTES done in ", "cards (4): done 4" }, "1")
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.matches("\27%[%d+A\27%[J", out) -- the live frame was redrawn in place
    assert.is_nil(out:find("\27[32m", 1, true), "colour despite NO_COLOR")
    assert.is_nil(out:find('"type"', 1, true), "JSON on a terminal without --json")
  end)

  it("uses colour when NO_COLOR is empty, and --json keeps JSON Lines", function()
    local dir = project()
    local out = pty(dir, "run NOTES", { "\27[32mdone" }, "")
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    dir = project()
    out = pty(dir, "run NOTES --json", { '"type":"run_start"', '"status":"done"' }, "1")
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.is_nil(out:find("orket run 1", 1, true))
  end)
end)
