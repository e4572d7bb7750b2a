-- What the specs of main against a remote start from: a workspace repository with one commit
-- (a.txt), an empty bare remote beside it (remote.git), and a store; and a shell runner that
-- fails the test on a failed command.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"
local F = require "tests.engine_fakes"

local M = {}

M.WHO = { name = "senior_developer", email = "senior_developer@orket.invalid" }

--- sh(cmd) -> its output; a failed command fails the test, naming it
function M.sh(cmd)
  local rc, out = H.sh(cmd)
  assert(rc == 0, cmd .. ": " .. out)
  return out
end

--- make(base) -> db, repo: base/ws (the repository, a.txt committed), base/remote.git (bare,
--- empty), base/o.db (the store)
function M.make(base)
  local db = F.fixture(base .. "/o.db", {})
  M.sh("mkdir -p " .. H.quote(base .. "/ws"))
  H.write(base .. "/ws/a.txt", "a\n")
  local repo = assert(G.init(base .. "/ws", M.WHO))
  assert(G.init_bare(base .. "/remote.git"))
  return db, repo
end

return M
