-- orket.actions.mainline after a person moved the remote's main back past commits Orket had
-- pushed (git reset --hard OLD && git push -f): the next push puts them back, as any clone's
-- would, and says so in the journal's push event (and in the sync's answer, for the run's
-- output), once; a remote that moved forward says nothing of the kind.
local mainline = require "orket.actions.mainline"
local H = require "tests.helpers"

local MF = require "tests.mainline_fixture"
local WHO, sh = MF.WHO, MF.sh

describe("a remote whose main was moved back", function()
  local base, db, repo
  before_each(function()
    base = H.tmpdir()
    db, repo = MF.make(base)
  end)
  after_each(function()
    repo:close()
    db:close()
    H.cleanup()
  end)

  local function sync()
    return mainline.sync { db = db, repo = repo, g = { remote = base .. "/remote.git" }, sleep = function() end }
  end

  -- a card's commit merged into main
  local function merge(card, path)
    assert(repo:worktree(card, base .. "/wt/" .. card))
    H.write(base .. "/wt/" .. card .. "/" .. path, card .. "\n")
    assert(repo:commit(card, { name = WHO.name, email = WHO.email, message = card }))
    return assert(repo:merge_to_main(card, WHO)).id
  end

  local function pushes()
    local out = {}
    for _, e in ipairs(db:events {}) do
      if e.kind == "push" then out[#out + 1] = e.data end
    end
    return out
  end

  it("is pushed again, journaled with where it was and where it went", function()
    assert.equal("pushed", sync().code)
    local first = repo:head("main")
    local second = merge("C-1", "c1.txt")
    assert.equal("pushed", sync().code)
    local third = merge("C-2", "c2.txt")
    assert.equal("pushed", sync().code)
    -- a person drops C-1 and C-2 from the remote's main
    sh("git -C " .. H.quote(base .. "/remote.git") .. " update-ref refs/heads/main " .. first)
    local fourth = merge("C-3", "c3.txt")
    local out = sync()
    assert.equal("pushed", out.code)
    assert.equal(fourth, out.id)
    assert.same({ from = third, to = first }, { from = out.rewound.from, to = out.rewound.to })
    assert.matches("the remote's main had moved back past commits pushed before", out.rewound.note, 1, true)
    assert.matches("pushed again", out.rewound.note, 1, true)
    local p = pushes()
    assert.equal(out.rewound.note, p[#p].rewound.note)
    assert.equal(third, p[#p].rewound.from)
    assert.is_true(repo:contains("refs/remotes/orket/main", second))
    -- said once: the next push finds the remote as Orket left it
    merge("C-4", "c4.txt")
    out = sync()
    assert.equal("pushed", out.code)
    assert.is_nil(out.rewound)
    p = pushes()
    assert.is_nil(p[#p].rewound)
  end)

  it("seen first by the fetch before a review, it is said by the push that follows", function()
    assert.equal("pushed", sync().code)
    local first = repo:head("main")
    merge("C-1", "c1.txt")
    assert.equal("pushed", sync().code)
    local pushed = repo:head("main")
    sh("git -C " .. H.quote(base .. "/remote.git") .. " update-ref refs/heads/main " .. first)
    -- the review's fetch (orket.engine.aftermerge.fetch_main) sees it first
    assert.equal(first, mainline.fetch(repo, { remote = base .. "/remote.git" }, {}))
    merge("C-2", "c2.txt")
    local out = sync()
    assert.equal("pushed", out.code)
    assert.equal(pushed, out.rewound and out.rewound.from)
  end)

  it("a remote that moved ahead (a person's push on top) is no rewind", function()
    assert.equal("pushed", sync().code)
    local remote = H.quote(base .. "/remote.git")
    sh("git clone -q " .. remote .. " " .. H.quote(base .. "/person") .. " && cd " .. H.quote(base .. "/person")
      .. " && echo p > p.txt && git add p.txt && git -c user.name=p -c user.email=p@x commit -qm theirs"
      .. " && git push -q origin main")
    merge("C-1", "c1.txt")
    local out = sync()
    assert.equal("pushed", out.code)
    assert.is_nil(out.rewound)
  end)
end)
