-- orket.ready: the one ready order (board:ready and the scheduler's view read it). An order
-- followed through the journal must stay the order built afresh from the store, on graphs
-- with mixed priorities, shared dependents, chains, finished cards and epic dependencies;
-- and the rules themselves: what is runnable, and in which order.
local H = require "tests.helpers"
local B = require "tests.backends"
local ready = require "orket.ready"
local scheduler = require "orket.engine.scheduler"
local board_mod = require "orket.board"
local imports = require "orket.store.imports"

-- An epic E with these issues on the backend under test (tests.backends), as
-- tests.engine_fakes' fixture makes it on SQLite.
local function fixture(issues)
  local db = B.open_store()
  imports.insert_card(db, { id = "E", type = "epic", name = "Epic", priority = 2 })
  local b = board_mod.open(db)
  for _, i in ipairs(issues) do
    assert(b:create { parent = "E", id = i.id, summary = i.summary, depends_on = i.depends_on,
      seat = i.seat or "senior_developer", priority = i.priority })
  end
  return db, b
end

-- moves made as a person, so every move of the table is open to the random walk
local CODER = { seat = "senior_developer", roles = { "coder" }, by = "person" }
local REVIEWER = { seat = "integrity_guard", roles = { "integrity_guard" }, by = "person" }

local function ids_of(o)
  local ids = {}
  for c in o:each() do ids[#ids + 1] = c.id end
  return ids
end

-- the followed order against one built now from the store
local function check(o, b, scope)
  o:refresh()
  local want = {}
  for _, c in ipairs(assert(b:ready(scope.id))) do want[#want + 1] = c.id end
  assert.same(want, ids_of(o))
  assert.same(ids_of(ready.new(b, scope)), want)
  return want
end

describe("ready order", function()
  after_each(H.cleanup)

  it("orders by priority, then transitive unfinished dependents, then age", function()
    local db, b = fixture({
      { id = "low-old", summary = "a", priority = 1 },
      { id = "mid-a", summary = "b", priority = 2 },
      { id = "mid-b", summary = "c", priority = 2 },
      { id = "high", summary = "d", priority = 3 },
      { id = "w1", summary = "e", priority = 1, depends_on = { "mid-b" } },
      { id = "w2", summary = "f", priority = 1, depends_on = { "w1" } },
      { id = "low-new", summary = "g", priority = 1 },
    })
    local o = ready.new(b, { id = "E", type = "epic" })
    assert.same({ "high", "mid-b", "mid-a", "low-old", "low-new" }, ids_of(o))
    assert.equal(2, b:ready("E")[2].dependents)
    db:close()
  end)

  -- The order keeps light cards (id, type, parent, priority, status); what board:ready and
  -- board:list hand out must still be the whole cards board:get gives, dependencies in
  -- their order, past the size from which dependencies are read in one go.
  it("lists whole cards with their dependencies in order, on small and large boards", function()
    local issues = {}
    for i = 1, 300 do
      local deps = {}
      if i > 2 and i % 2 == 1 then deps = { "E-" .. (i - 1), "E-" .. (i - 2) } end
      issues[i] = { id = "E-" .. i, summary = "Issue " .. i, depends_on = deps, priority = i % 4 }
    end
    local db, b = fixture(issues)
    local function same_as_get(c)
      local want = assert(b:get(c.id))
      for k, v in pairs(want) do
        if k ~= "depends_on" then assert.equal(v, c[k], c.id .. "." .. k) end
      end
      assert.same(want.depends_on, c.depends_on)
    end
    local listed = b:list { type = "issue" }
    assert.equal(300, #listed)
    for _, c in ipairs(listed) do same_as_get(c) end -- board:get loads one card, its own way
    assert.same({ "E-4", "E-3" }, listed[5].depends_on)
    for _, c in ipairs(b:list { type = "issue", status = "ready", epic = "E" }) do same_as_get(c) end
    local r = assert(b:ready("E"))
    assert.is_true(#r > 100)
    for _, c in ipairs(r) do
      assert.is_number(c.dependents)
      same_as_get(c)
      assert.equal("Issue " .. c.id:match("%d+"), c.summary)
    end
    db:close()
  end)

  it("holds back an epic's issues until the epics it depends on are done", function()
    local db, b = fixture({ { id = "E-1", summary = "first" } })
    assert(db:tx(function()
      imports.insert_card(db, { id = "L", type = "epic", name = "Later", priority = 2 })
      imports.add_dependency(db, "L", "E", 1)
      return true
    end))
    assert(b:create { parent = "L", id = "L-1", summary = "after E" })
    local o = ready.new(b, nil)
    assert.same({ "E-1" }, check(o, b, {}))
    -- the state machine holds it back too
    local _, _, code = b:transition("L-1", "in_progress", { actor = CODER })
    assert.equal("EDEPENDENCY", code)
    assert(b:transition("E-1", "in_progress", { actor = CODER }))
    assert(b:transition("E-1", "code_review", { actor = CODER }))
    assert.same({}, check(o, b, {}))
    assert(b:transition("E-1", "done", { actor = REVIEWER }))
    assert.equal("done", b:get("E").status) -- the epic followed its issue
    assert.same({ "L-1" }, check(o, b, {}))
    assert(b:transition("L-1", "in_progress", { actor = CODER }))
    db:close()
  end)

  it("lists a card handed in for testing with the cards in review", function()
    local db, b = fixture({ { id = "E-1", summary = "a" }, { id = "E-2", summary = "b" } })
    assert(b:transition("E-1", "in_progress", { actor = CODER }))
    assert(b:transition("E-1", "ready_for_testing", { actor = CODER }))
    local v = scheduler.view(b, { id = "E", type = "epic" })
    local got = {}
    for c in v:candidates({}) do got[#got + 1] = c.id .. ":" .. c.status end
    assert.same({ "E-1:ready_for_testing", "E-2:ready" }, got)
    db:close()
  end)

  it("drops from its view the cards an import moves to another epic, and takes those it moves in", function()
    local db, b = fixture({ { id = "E-1", summary = "a" }, { id = "E-2", summary = "b" },
      { id = "E-3", summary = "c" } })
    assert(db:tx(function()
      imports.insert_card(db, { id = "F", type = "epic", name = "Other", priority = 2 })
      return true
    end))
    assert(b:create { parent = "F", id = "F-1", summary = "f", seat = "senior_developer" })
    assert(b:transition("E-1", "in_progress", { actor = CODER }))
    assert(b:transition("E-2", "in_progress", { actor = CODER }))
    assert(b:transition("E-2", "code_review", { actor = CODER }))
    local v = scheduler.view(b, { id = "E", type = "epic" })
    local function got()
      v:refresh()
      local out = {}
      for c in v:candidates({}) do out[#out + 1] = c.id .. ":" .. c.status end
      return out
    end
    assert.same({ "E-2:code_review", "E-1:in_progress", "E-3:ready" }, got())
    -- an import moves E-1 and E-2 to F and F-1 to E, as orket.import writes it
    local function move(id, to)
      local c = assert(b:get(id))
      c.parent = to
      imports.update_card(db, c)
      db:event { kind = "import", card = id, data = { changed = { "parent" } } }
    end
    assert(db:tx(function()
      move("E-1", "F"); move("E-2", "F"); move("F-1", "E")
      return true
    end))
    assert.same({ "E-3:ready", "F-1:ready" }, got())
    assert.same({ { id = "E-1", parent = "F" }, { id = "E-2", parent = "F" } }, v:left())
    -- their later moves are no longer the view's: E-2 done is not a card in review of E
    assert(b:transition("E-2", "done", { actor = REVIEWER }))
    assert(b:transition("E-1", "code_review", { actor = CODER }))
    assert.same({ "E-3:ready", "F-1:ready" }, got())
    db:close()
  end)

  it("follows an issue an import moved to another epic: one build of that epic's order, one read of the issue a pass", function()
    local db, b = fixture({ { id = "E-1", summary = "a" }, { id = "E-2", summary = "b" } })
    assert(db:tx(function()
      imports.insert_card(db, { id = "F", type = "epic", name = "Other", priority = 2 })
      return true
    end))
    assert(b:create { parent = "F", id = "F-1", summary = "f", seat = "senior_developer" })
    local target = assert(b:get("E-1"))
    local v = scheduler.view(b, target)
    local builds, reads = 0, 0
    local cards_op = require "orket.store.cards"
    local light, get = cards_op.light, b.get
    cards_op.light = function(...) builds = builds + 1 return light(...) end
    b.get = function(self, id, ...)
      if id == "E-1" then reads = reads + 1 end
      return get(self, id, ...)
    end
    local function pass()
      builds, reads = 0, 0
      v:refresh()
      local got = {}
      for c in v:candidates({}) do got[#got + 1] = c.id .. ":" .. c.status end
      return got
    end
    local ok, err = pcall(function()
      assert.same({ "E-1:ready" }, pass())
      assert.same({ 0, 1 }, { builds, reads })
      -- the import moves E-1 to F, as orket.import writes it
      assert(db:tx(function()
        local c = assert(get(b, "E-1"))
        c.parent = "F"
        imports.update_card(db, c)
        db:event { kind = "import", card = "E-1", data = { changed = { "parent" } } }
        return true
      end))
      -- F's order alone is built (E's, rebuilt for the import, was dropped at once)
      assert.same({ "E-1:ready" }, pass())
      assert.same({ 1, 1 }, { builds, reads })
      assert.equal("F", v.issue_parent)
      assert.same({ "E-1:ready" }, pass())
      assert.same({ 0, 1 }, { builds, reads })
      -- without a kept order, the epic the issue is under now answers too
      cards_op.light, b.get = light, nil
      local now = {}
      for _, c in ipairs(scheduler.candidates(b, target, { assert(b:get("E-1")) }, {})) do now[#now + 1] = c.id end
      assert.equal("E", target.parent) -- (the target as the run read it, before the move)
      assert.same({ "E-1" }, now)
    end)
    cards_op.light, b.get = light, nil
    db:close()
    assert(ok, err)
  end)

  it("answers an issue's run from its epic's kept order, as building the order each pass does", function()
    local db, b = fixture({ { id = "E-1", summary = "a" },
      { id = "E-2", summary = "b", depends_on = { "E-1" } } })
    local target = assert(b:get("E-2"))
    local v = scheduler.view(b, target)
    local function both()
      v:refresh()
      local got, want = {}, {}
      for c in v:candidates({}) do got[#got + 1] = c.id .. ":" .. c.status end
      for _, c in ipairs(scheduler.candidates(b, target, scheduler.scope(b, target), {})) do
        want[#want + 1] = c.id .. ":" .. c.status
      end
      assert.same(want, got)
      return got
    end
    assert.same({}, both())
    assert(b:transition("E-1", "in_progress", { actor = CODER }))
    assert(b:transition("E-1", "code_review", { actor = CODER }))
    assert.same({}, both())
    assert(b:transition("E-1", "done", { actor = REVIEWER }))
    assert.same({ "E-2:ready" }, both())
    assert(b:transition("E-2", "in_progress", { actor = CODER }))
    assert.same({ "E-2:in_progress" }, both())
    db:close()
  end)

  it("reads no card a move leaves outside its graph, and reads each one inside it", function()
    local db, b = fixture({ { id = "E-1", summary = "a" }, { id = "E-2", summary = "b" } })
    assert(db:tx(function()
      imports.insert_card(db, { id = "F", type = "epic", name = "Other", priority = 2 })
      return true
    end))
    assert(b:create { parent = "F", id = "F-1", summary = "f", seat = "senior_developer" })
    local o = ready.new(b, { id = "E", type = "epic" })
    local reads, get = {}, b.get
    b.get = function(self, id, ...)
      reads[#reads + 1] = id
      return get(self, id, ...)
    end
    local ok, err = pcall(function()
      -- F-1 (and F, which its start moves too): another epic's, no edge to E's: the
      -- order's answer without a copy of either
      assert(b:transition("F-1", "in_progress", { actor = CODER }))
      reads = {} -- (the move's own reads)
      o:refresh()
      assert.same({}, reads)
      assert(b:transition("E-1", "in_progress", { actor = CODER }))
      reads = {}
      o:refresh()
      assert.same({ "E-1", "E" }, reads) -- (E: the epic its issues wait for)
      assert.same({ "E-2" }, ids_of(o))
    end)
    b.get = nil
    db:close()
    assert(ok, err)
  end)

  for seed = 1, 4 do
    it("follows finished cards exactly (seed " .. seed .. ")", function()
      math.randomseed(seed)
      local issues = {}
      for i = 1, 60 do
        local deps = {}
        for j = 1, i - 1 do
          if math.random() < 0.04 then deps[#deps + 1] = "E-" .. j end
        end
        issues[i] = { id = "E-" .. i, summary = "Issue " .. i, depends_on = deps }
      end
      local db, b = fixture(issues)
      local prios = { 0, 1, 2, 2, 2, 3, 2.5, 10 }
      for i = 1, 60 do
        local c = assert(b:get("E-" .. i))
        c.priority = prios[math.random(#prios)]
        imports.update_card(db, c)
      end
      local scope = { id = "E", type = "epic" }
      local o = ready.new(b, scope)
      assert.is_true(#check(o, b, scope) > 5)
      for _ = 1, 6 do
        local now = ids_of(o)
        local id = now[math.random(#now)]
        assert(b:transition(id, "in_progress", { actor = CODER }))
        assert(b:transition(id, "code_review", { actor = CODER }))
        assert(b:transition(id, "done", { actor = REVIEWER }))
        check(o, b, scope)
      end
      db:close()
    end)
  end

  -- Random changes of every kind the journal carries: moves between any statuses the state
  -- machine allows (finishing, reopening, blocking, canceling), new cards with dependencies
  -- in the epic and in another epic, which depends on a third; after each refresh the
  -- followed order must still be the one built afresh.
  for seed = 1, 6 do
    it("follows creates, reopens, blocks, cancels and epic dependencies exactly (seed " .. seed .. ")", function()
      math.randomseed(100 + seed)
      local issues = {}
      for i = 1, 40 do
        local deps = {}
        for j = 1, i - 1 do
          if math.random() < 0.06 then deps[#deps + 1] = "E-" .. j end
        end
        issues[i] = { id = "E-" .. i, summary = "Issue " .. i, depends_on = deps, priority = math.random(0, 3) }
      end
      local db, b = fixture(issues)
      assert(db:tx(function()
        imports.insert_card(db, { id = "R", type = "rock", name = "Rock", priority = 2 })
        imports.update_card(db, { id = "E", parent = "R", name = "Epic", priority = 2 })
        imports.insert_card(db, { id = "O", type = "epic", parent = "R", name = "Other", priority = 2 })
        imports.insert_card(db, { id = "P", type = "epic", parent = "R", name = "Prior", priority = 2 })
        imports.add_dependency(db, "O", "P", 1)
        return true
      end))
      assert(b:create { parent = "P", id = "P-1", summary = "prior work" })
      local scope = { id = "R", type = "rock" }
      local o = ready.new(b, scope)
      local next_of = {
        ready = { "in_progress", "in_progress", "blocked", "canceled" },
        in_progress = { "code_review", "code_review", "blocked", "waiting_for_developer", "canceled" },
        code_review = { "done", "done", "done", "in_progress", "blocked" },
        blocked = { "ready", "in_progress", "canceled" },
        waiting_for_developer = { "ready", "in_progress" },
        done = { "archived" }, canceled = { "archived" },
      }
      local reasons = { "resource", "dependency", "review", "input", "system" }
      local ids, moves, creates = { "P-1" }, 0, 0
      for i = 1, 40 do ids[#ids + 1] = "E-" .. i end
      for step = 1, 200 do
        local r = math.random()
        if r < 0.15 then
          local deps = {}
          for _ = 1, math.random(0, 3) do deps[#deps + 1] = ids[math.random(#ids)] end
          local parent = math.random() < 0.3 and "O" or "E"
          local c = b:create { parent = parent, summary = "new " .. step, depends_on = deps, priority = math.random(0, 3),
            seat = "senior_developer" }
          if c then
            creates = creates + 1
            ids[#ids + 1] = c.id
          end
        else
          local id = ids[math.random(#ids)]
          local nexts = next_of[b:get(id).status] or { "archived" }
          local to = nexts[math.random(#nexts)]
          local actor = to == "done" and REVIEWER or CODER
          local reason = (to == "blocked" or to == "waiting_for_developer") and reasons[math.random(#reasons)] or nil
          if b:transition(id, to, { actor = actor, reason = reason }) then moves = moves + 1 end
        end
        if math.random() < 0.5 then check(o, b, scope) end
      end
      check(o, b, scope)
      assert.is_true(moves > 50 and creates > 10, moves .. " moves, " .. creates .. " creates")
      db:close()
    end)
  end
end)
