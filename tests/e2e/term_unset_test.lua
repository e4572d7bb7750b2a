-- TERM unset or empty on a terminal (a runner that gives the command a pseudo-terminal
-- without naming one: cron under `script`, some CI agents) counts as dumb, as git takes it:
-- `orket board` prints no colour and `orket run`'s live view no colour and no cursor moves.
-- Before, only TERM=dumb did, and such logs filled with escapes.
local H = require "tests.helpers"

local PTY = H.BIN:gsub("orket$", "ptydrive")

-- `orket ARGS` in dir on a terminal, TERM as env sets it (env's words), NO_COLOR empty
-- -> the transcript
local function on_terminal(dir, env, args, expect)
  H.write(dir .. "/steps", "expect " .. expect .. "\n")
  local p = io.popen(string.format("cd %s && env %s NO_COLOR= %s -t 30 -- %s %s <steps 2>&1", H.quote(dir),
    env, H.quote(PTY), H.quote(H.BIN), args))
  local out = p:read("a")
  p:close()
  return out
end

describe("a terminal with TERM unset or empty", function()
  after_each(H.cleanup)

  for _, case in ipairs { { "unset", "-u TERM" }, { "empty", "TERM=" } } do
    it("gets no colour or cursor moves from board and run (TERM " .. case[1] .. ")", function()
      local dir = H.example("notes")
      local board = on_terminal(dir, case[2], "board", "NOTES-")
      assert.matches("%[ptydrive: ok, exit 0%]", board)
      assert.matches("EPIC NOTES", board)
      assert.is_nil(board:find("\27", 1, true), board)
      local run = on_terminal(dir, case[2], "run NOTES", "run 1 NOTES done in ")
      assert.matches("%[ptydrive: ok, exit 0%]", run)
      assert.matches("^orket run 1 NOTES\r?\n", run)
      assert.is_nil(run:find("\27", 1, true), run)
      -- a terminal that names itself still gets them
      local colour = on_terminal(dir, "TERM=xterm", "board", "NOTES-")
      assert.truthy(colour:find("\27[32mdone", 1, true), colour)
    end)
  end
end)
