-- orket.c.gitrepo adopting a person's repository (orket init on an existing one): the view's
-- state is established from main's commit at the first open, never from main's index, which
-- holds the person's staging. A merge afterwards follows only the card's paths: what they
-- staged stays staged, and nothing they staged is reported as "main has another".
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local GC = require "tests.gitcards"
local WHO, GUARD, sh, git = GC.WHO, GC.GUARD, GC.sh, GC.git


describe("orket.c.gitrepo adopting a repository with a person's staging", function()
  local base, ws
  local STAGED = "R  README.md -> README.rst\nA  feature.c\nM  notes.txt\n"
  before_each(function()
    base = H.tmpdir()
    ws = base .. "/ws"
    sh("mkdir -p " .. ws .. " && cd " .. H.quote(ws) .. " && git init -q -b main && git config user.email a@b"
      .. " && git config user.name A && echo v1 > notes.txt && echo Readme > README.md && git add -A"
      .. " && git commit -qm initial && echo 'v2 staged by me' > notes.txt && git add notes.txt"
      .. " && echo 'new work' > feature.c && git add feature.c && git mv README.md README.rst")
    assert.equal(STAGED, git(ws, "status --short"))
  end)
  after_each(function() H.cleanup() end)

  local function card_merged(repo, card)
    local d = assert(repo:attach(card, base .. "/cards/" .. card, base .. "/state/" .. card))
    H.write(d .. "/" .. card .. ".txt", card .. "\n")
    assert(repo:commit(card, { name = WHO.name, email = WHO.email, message = card .. ": turn 1",
      turn = "1/" .. card .. "/1" }))
    return assert(repo:merge_to_main(card, GUARD))
  end

  for _, how in ipairs { "open", "init" } do
    it("keeps the staging through the first merges (adopted by " .. how .. ")", function()
      local repo = how == "open" and assert(G.open(ws)) or assert(G.init(ws, WHO))
      repo:close() -- as orket init does: the state is written then, not at the first merge
      repo = assert(G.open(ws))
      local m = card_merged(repo, "A1")
      assert.equal(0, m.diverged or 0)
      assert.is_nil(m.stale)
      assert.equal("A1\n", H.read(ws .. "/A1.txt"))
      assert.equal(STAGED, git(ws, "status --short"))
      assert.same({}, (repo:view_status()))
      m = card_merged(repo, "A2")
      assert.equal(0, m.diverged or 0)
      assert.equal(STAGED, git(ws, "status --short"))
      assert.equal("v2 staged by me\n", H.read(ws .. "/notes.txt"))
      assert.same({}, (repo:view_status()))
      repo:close()
    end)
  end
end)
