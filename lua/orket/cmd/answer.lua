-- orket answer CARD "text": answers a card waiting for input: the answer becomes a comment
-- and the card goes back to ready, so the next 'orket run' or 'orket resume' picks it up.
local project = require "orket.project"
local board_mod = require "orket.board"

local cmd = { summary = "answer a card that waits for input", usage = "orket answer CARD \"text\" [-C DIR]" }

function cmd.run(args, cli)
  local dir = "."
  local pos = {}
  local i = 1
  while i <= #args do
    if args[i] == "-C" and args[i + 1] then dir = args[i + 1] i = i + 1
    else pos[#pos + 1] = args[i] end
    i = i + 1
  end
  if #pos ~= 2 then return cli.usage_error(cmd, "answer needs a card id and the answer text") end
  if not pos[2]:find("%S") then return cli.usage_error(cmd, "the answer is empty") end
  local db, err = project.open_store(dir, false)
  if not db then
    cli.err("%s", err)
    return 1
  end
  local b = board_mod.open(db)
  local ok, aerr = db:tx(function()
    local c, gerr, code = b:get(pos[1])
    if not c then return nil, gerr, code end
    if c.status ~= "waiting_for_developer" then
      return nil, string.format("%s is %s, not waiting for input", c.id, c.status), "ESTATE"
    end
    assert(b:comment(c.id, { author = "developer", body = pos[2] }))
    local t, terr, tcode = b:transition(c.id, "ready", { actor = { seat = "developer", roles = {} }, note = "answered" })
    if not t then return nil, terr, tcode end
    return true
  end)
  db:close()
  if not ok then
    cli.err("%s", aerr)
    return 1
  end
  io.stdout:write(string.format("answered %s; continue with 'orket resume' or 'orket run'\n", pos[1]))
  return 0
end

return cmd
