-- What the git layer's specs share (tests/spec/core/gitrepo_*_spec.lua): the seats' git
-- identities, the real git CLI on a scratch repository, and a repository's card
-- directories under a base folder as the engine lays them out (cards/ID, state/ID).
local H = require "tests.helpers"

local M = {}

M.WHO = { name = "senior_developer (coder)", email = "senior_developer@orket.invalid" }
M.GUARD = { name = "integrity_guard", email = "integrity_guard@orket.invalid" }

--- sh(cmd): runs cmd, raising when it fails
function M.sh(cmd) assert(os.execute(cmd), cmd) end

--- git(dir, args) -> what `git -C dir ARGS` printed, stderr included
function M.git(dir, args)
  local f = assert(io.popen("git -C " .. H.quote(dir) .. " " .. args .. " 2>&1"))
  local out = f:read("a")
  f:close()
  return out
end

--- cards(repo, base) -> {att(card[, dir]), hand_over(from, to), commit(card, turn[, paths])}:
--- attach card at base/cards/DIR (its state at base/state/DIR); hand a detached directory
--- to another card, as the engine's pool does; commit a turn as the coder's seat
function M.cards(repo, base)
  local c = {}
  function c.att(card, dir)
    return repo:attach(card, base .. "/cards/" .. (dir or card), base .. "/state/" .. (dir or card))
  end
  function c.hand_over(from, to)
    M.sh(string.format("mv %s/cards/%s %s/cards/%s && mv %s/state/%s %s/state/%s", base, from, base, to, base, from,
      base, to))
  end
  function c.commit(card, turn, paths)
    return repo:commit(card, { name = M.WHO.name, email = M.WHO.email, message = card .. ": turn " .. turn,
      turn = "1/" .. card .. "/" .. turn, paths = paths })
  end
  return c
end

return M
