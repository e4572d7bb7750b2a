-- orket.engine.gitwork.pack: a run's end packs workspace/.git when git's gc.auto would (more
-- than 6,700 / 256 loose objects in objects/17, i.e. 27), consolidates past gc.autoPackLimit's
-- 50 packs, and a failure is an event, never an error of the run. And the binding over a real
-- repository: repo:pack_count and repo:pack (core/gitrepo/pack.c; its C test covers the rest).
local G = require "orket.c.gitrepo"
local gitwork = require "orket.engine.gitwork"
local H = require "tests.helpers"

-- a run whose repository answers pack_count with count and pack with pack_fn
local function fake_run(count, pack_fn)
  local run = { events = {}, calls = {} }
  run.git = { repo = {
    pack_count = function() return count end,
    pack = function(_, opts)
      run.calls[#run.calls + 1] = opts
      return pack_fn(opts)
    end,
  } }
  function run:emit(ev) self.events[#self.events + 1] = ev end
  return run
end

local function packed() return { loose = 1, packed = 1, removed = 1, packs_gone = 0, unread = 0, name = "x" } end

describe("orket.engine.gitwork.pack", function()
  it("packs past git's estimate only, and consolidates past 50 packs", function()
    local run = fake_run({ loose = 27 * 256, packs = 50 }, packed)
    gitwork.pack(run)
    assert.same({}, run.calls)
    assert.same({}, run.events)

    run = fake_run({ loose = 28 * 256, packs = 3 }, packed)
    gitwork.pack(run)
    assert.equal(1, #run.calls)
    assert.is_false(run.calls[1].all)
    assert.equal(gitwork.PACK_MAX_OBJECTS, run.calls[1].max_objects)
    assert.equal(gitwork.PACK_MS, run.calls[1].deadline_ms)
    assert.equal("packed", run.events[1].outcome)
    assert.equal("pack", run.events[1].action)

    run = fake_run({ loose = 0, packs = 51 }, packed)
    gitwork.pack(run)
    assert.is_true(run.calls[1].all)
    assert.is_true(run.events[1].all)
  end)

  it("says a failure as an event and never raises", function()
    local run = fake_run({ loose = 100 * 256, packs = 0 }, function() return nil, "git: pack: disk full", "ENOSPC" end)
    gitwork.pack(run)
    assert.same({ "failed", "git: pack: disk full", "ENOSPC" },
      { run.events[1].outcome, run.events[1].error, run.events[1].code })

    run = fake_run({ loose = 100 * 256, packs = 0 }, function() error("boom") end)
    gitwork.pack(run)
    assert.equal("failed", run.events[1].outcome)
    assert.matches("boom", run.events[1].error, 1, true)

    run = fake_run(nil, packed)
    run.git.repo.pack_count = function() return nil, "git: cannot list", "EIO" end
    gitwork.pack(run)
    assert.same({ "failed", "EIO" }, { run.events[1].outcome, run.events[1].code })

    -- no repository, or one without packing: nothing
    gitwork.pack({ emit = error })
    gitwork.pack({ git = { repo = {} }, emit = error })
  end)
end)

describe("repo:pack", function()
  after_each(H.cleanup)

  it("packs the loose objects a repository's commits left, which stay readable", function()
    local base = H.tmpdir()
    assert(os.execute("mkdir -p " .. H.quote(base .. "/ws")))
    H.write(base .. "/ws/README", "hello\n")
    local who = { name = "t", email = "t@orket.invalid" }
    local repo = assert(G.init(base .. "/ws", who))
    for i = 1, 5 do
      assert(repo:attach("C" .. i, base .. "/cards/C" .. i, base .. "/state/C" .. i))
      H.write(base .. "/cards/C" .. i .. "/f" .. i .. ".txt", "card " .. i .. "\n")
      assert(repo:commit("C" .. i, { name = who.name, email = who.email, message = "C" .. i, turn = "1/C" .. i .. "/1" }))
      assert(repo:merge_to_main("C" .. i, who))
    end
    local c = assert(repo:pack_count())
    assert.equal(0, c.packs)
    assert.equal(0, c.loose % 256)
    local res = assert(repo:pack { max_objects = 100000 })
    assert.is_true(res.loose > 10)
    assert.equal(res.loose, res.removed)
    assert.equal(0, res.unread)
    assert.matches("^%x+$", res.name)
    assert.equal(40, #res.name)
    assert.equal(1, assert(repo:pack_count()).packs)
    assert.is_true(repo:check())
    -- nothing loose: nothing written
    local again = assert(repo:pack())
    assert.same({ 0, 0 }, { again.loose, again.packed })
    assert.is_nil(again.name)
    -- a card goes on over packed objects
    assert(repo:attach("C9", base .. "/cards/C9", base .. "/state/C9"))
    H.write(base .. "/cards/C9/f9.txt", "card 9\n")
    assert(repo:commit("C9", { name = who.name, email = who.email, message = "C9", turn = "1/C9/1" }))
    assert(repo:merge_to_main("C9", who))
    assert.equal("card 1\n", H.read(base .. "/ws/f1.txt"))
    assert.equal("card 9\n", H.read(base .. "/ws/f9.txt"))
    assert.is_true(repo:check())
    -- hostile options refused, naming the field
    assert.has_error(function() repo:pack { max_objects = 0 } end)
    local ok, err = pcall(repo.pack, repo, { deadline_ms = -1 })
    assert.is_false(ok)
    assert.matches("deadline_ms", err, 1, true)
    repo:close()
  end)
end)
