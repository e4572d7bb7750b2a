-- TERM=dumb (Emacs' shell and compile buffers, some CI log viewers) shows escapes as text:
-- `orket board` prints no colour there and `orket run`'s live view no colour and no cursor
-- moves (its first line, then the summary). Before, only isatty and NO_COLOR were asked.
local H = require "tests.helpers"

local PTY = H.BIN:gsub("orket$", "ptydrive")

-- `orket ARGS` in dir on a terminal of type term, NO_COLOR empty -> the transcript
local function on_terminal(dir, term, args, expect)
  H.write(dir .. "/steps", "expect " .. expect .. "\n")
  local p = io.popen(string.format("cd %s && env NO_COLOR= TERM=%s %s -t 30 -- %s %s <steps 2>&1", H.quote(dir),
    term, H.quote(PTY), H.quote(H.BIN), args))
  local out = p:read("a")
  p:close()
  return out
end

describe("a dumb terminal", function()
  after_each(H.cleanup)

  it("gets no colour or cursor moves from board and run", function()
    local dir = H.example("notes")
    local board = on_terminal(dir, "dumb", "board", "NOTES-")
    assert.matches("%[ptydrive: ok, exit 0%]", board)
    assert.matches("EPIC NOTES", board)
    assert.is_nil(board:find("\27", 1, true), board)
    local run = on_terminal(dir, "dumb", "run NOTES", "run 1 NOTES done in ")
    assert.matches("%[ptydrive: ok, exit 0%]", run)
    assert.matches("^orket run 1 NOTES\r?\n", run)
    assert.matches("cards %(4%): done 4", run)
    assert.is_nil(run:find("\27", 1, true), run)
    -- any other terminal still gets them
    local colour = on_terminal(dir, "xterm", "board", "NOTES-")
    assert.truthy(colour:find("\27[32mdone", 1, true), colour)
  end)
end)
