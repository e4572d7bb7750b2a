-- orket.import: the example project, re-import keeping status and history, derived ids,
-- and every kind of invalid input named by file and field, with nothing written.
local H = require "tests.helpers"
local store = require "orket.store"
local import = require "orket.import"
local board_mod = require "orket.board"

local function project(files)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics/core"))
  for name, text in pairs(files) do H.write(dir .. "/epics/" .. name, text) end
  return dir
end

local B = require "tests.backends"

-- the project's store; under tests/with_pg.lua (run.sh's pg layer), a fresh PostgreSQL
-- database: import's reads and writes are the store's, on either backend
local function open(dir)
  local db = B.name() == "pg" and B.open_store() or assert(store.open(dir .. "/.orket/orket.db"))
  return db, board_mod.open(db)
end

describe("import", function()
  after_each(H.cleanup)

  it("records what it read, so changed tells new and edited files from touched ones", function()
    local dir = project { ["a.json"] = '{"id":"A","issues":[{"summary":"one"}]}' }
    local db = open(dir)
    assert.same({}, import.changed(db, dir)) -- nothing imported yet: nothing to compare
    assert(import.import(db, dir))
    assert.same({}, import.changed(db, dir))
    H.write(dir .. "/epics/a.json", '{"id":"A","issues":[{"summary":"one"}]}') -- same text
    assert.same({}, import.changed(db, dir))
    H.write(dir .. "/epics/a.json", '{"id":"A","issues":[{"summary":"two"}]}')
    H.write(dir .. "/epics/core/b.json", '{"id":"B","issues":[]}')
    assert.same({ "epics/a.json", "epics/core/b.json" }, import.changed(db, dir))
    -- a failed import records nothing
    H.write(dir .. "/epics/c.json", "{")
    assert.is_nil(import.import(db, dir))
    assert.same({ "epics/a.json", "epics/c.json", "epics/core/b.json" }, import.changed(db, dir))
    os.remove(dir .. "/epics/c.json")
    assert(import.import(db, dir))
    assert.same({}, import.changed(db, dir))
    assert.equal(2, db:row("SELECT count(*) AS n FROM imported_files").n)
    db:close()
  end)

  -- orket import checks the files, then writes: the write read them again, so a file
  -- edited in between was written unchecked by the command's own warnings (and a large
  -- epic parsed twice). What was checked is what is written, and recorded as read.
  it("imports the files as they were checked, not as edited since", function()
    local dir = project { ["a.json"] = '{"id":"A","issues":[{"id":"A-1","summary":"one"}]}' }
    local db, b = open(dir)
    local set = assert(import.load(dir))
    H.write(dir .. "/epics/a.json", '{"id":"A","issues":[{"id":"A-1","summary":"edited"},{"id":"A-2","summary":"new"}]}')
    local r = assert(import.import(db, dir, set))
    assert.same({ 2, 2 }, { r.cards, r.created })
    assert.equal("one", b:get("A-1").summary)
    assert.is_nil(b:get("A-2"))
    -- the edit is not taken for imported: the next import (or a run) sees it changed
    assert.same({ "epics/a.json" }, import.changed(db, dir))
    r = assert(import.import(db, dir))
    assert.same({ 1, 1 }, { r.created, r.updated })
    assert.same({}, import.changed(db, dir))
    -- a refusal's line is the checked text's, not the edited file's
    local text = '{"id":"A","issues":[\n{"id":"A-1","summary":"one"},\n{"id":"A-3","summary":"x","depends_on":["NOPE"]}]}'
    H.write(dir .. "/epics/a.json", text)
    set = assert(import.load(dir))
    H.write(dir .. "/epics/a.json", "\n\n\n" .. text)
    assert.same({ nil, 'epics/a.json:3: issues[1].depends_on[0]: unknown card "NOPE"', "EINVAL" },
      { import.import(db, dir, set) })
    db:close()
  end)

  -- A cycle already on the board (left by an older Orket, which took an epic depending on
  -- its own issue) among cards no file defines now: the import did not make it, so it
  -- imports, warning about it; a cycle this import would close is refused as before.
  it("imports cards that reach a cycle already on the board, warning; refuses one it closes", function()
    local imports = require "orket.store.imports"
    local dir = project { ["old.json"] = '{"id":"O","issues":[{"id":"O-1","summary":"a"},'
      .. '{"id":"O-2","summary":"b","depends_on":["O-1"]},{"id":"O-3","summary":"c"}]}',
      ["new.json"] = '{"id":"N","issues":[{"id":"N-1","summary":"n"}]}' }
    local db, b = open(dir)
    assert(import.import(db, dir))
    imports.add_dependency(db, "O-1", "O-2", 1) -- O-1 -> O-2 -> O-1
    os.remove(dir .. "/epics/old.json")
    H.write(dir .. "/epics/new.json", '{"id":"N","issues":[{"id":"N-1","summary":"n"},\n'
      .. '{"id":"N-2","summary":"m","depends_on":["O-1"]}]}')
    local r, err = import.import(db, dir)
    assert(r, err)
    assert.equal(1, r.created)
    assert.same({ "O-1" }, b:get("N-2").depends_on)
    local said = table.concat(r.warnings, "\n")
    assert.matches("dependency cycle already on the board: O-1 -> O-2 -> O-1 (no card of epics/ is on it)", said, 1, true)
    assert.matches("cards depending on it wait for ever", said, 1, true)
    -- a cycle through the files' cards is still refused, named at its line, even when the
    -- old one is met first
    imports.add_dependency(db, "O-3", "N-1", 1)
    H.write(dir .. "/epics/new.json", '{"id":"N","issues":[{"id":"N-1","summary":"n",\n'
      .. '"depends_on":["O-1","O-3"]}]}')
    r, err = import.import(db, dir)
    assert.is_nil(r)
    assert.equal("epics/new.json:2: issues[0].depends_on[1]: dependency cycle: N-1 -> O-3 -> N-1", err)
    db:close()
  end)

  it("imports the example project and re-imports it unchanged", function()
    local dir = H.tmpdir()
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/webapp/epics") .. " " .. H.quote(dir))
    local db, b = open(dir)
    assert.same({ files = 3, cards = 10, created = 10, updated = 0, unchanged = 0, warnings = {} },
      assert(import.import(db, dir)))
    assert.equal("LAUNCH", b:get("WEB").parent)
    assert.equal("LAUNCH", b:get("API").parent)
    assert.same({ "API-3", "WEB-1" }, b:get("WEB-2").depends_on)
    assert.equal("WEB-accessibility-pass", b:list { epic = "WEB" }[3].id)
    assert.equal("schema.sql creates both tables\na migration test passes", b:get("API-1").acceptance)
    assert.equal(1, b:get("API-4").priority)
    local ready = b:ready("LAUNCH")
    assert.equal(1, #ready)
    assert.equal("API-1", ready[1].id)
    local events = #db:events()
    assert.same({ files = 3, cards = 10, created = 0, updated = 0, unchanged = 10, warnings = {} },
      assert(import.import(db, dir)))
    assert.equal(events, #db:events())
    db:close()
  end)

  it("updates definitions on re-import and keeps status, comments and history", function()
    local dir = project { ["e.json"] = [[{"id":"E","issues":[{"id":"E-1","summary":"one"},{"id":"E-2","summary":"two"}]}]] }
    local db, b = open(dir)
    assert(import.import(db, dir))
    assert(b:transition("E-1", "in_progress", { actor = { seat = "dev" } }))
    assert(b:comment("E-1", { author = "dev", body = "on it" }))
    H.write(dir .. "/epics/e.json", [[{"id":"E","issues":[{"id":"E-1","summary":"one, better","priority":"High"},
      {"id":"E-2","summary":"two","depends_on":["E-1"]}]}]])
    local r = assert(import.import(db, dir))
    assert.same({ 0, 2, 1 }, { r.created, r.updated, r.unchanged })
    local c = b:get("E-1")
    assert.equal("in_progress", c.status)
    assert.equal("one, better", c.summary)
    assert.equal(3, c.priority)
    assert.same({ "E-1" }, b:get("E-2").depends_on)
    local kinds = {}
    for _, e in ipairs(b:history("E-1")) do kinds[#kinds + 1] = e.kind end
    assert.same({ "import", "transition", "comment", "import" }, kinds)
    assert.same({ "summary", "priority" }, b:history("E-1")[4].data.changed)
    db:close()
  end)

  it("adds no unfinished dependency to an issue under way or done, which it would no longer hold back", function()
    local dir = project { ["e.json"] = [[{"id":"E","issues":[{"id":"E-1","summary":"one"},{"id":"E-2","summary":"two"},
      {"id":"E-3","summary":"three"}]}]], ["f.json"] = [[{"id":"F","issues":[{"id":"F-1","summary":"x"}]}]] }
    local db, b = open(dir)
    assert(import.import(db, dir))
    local coder, guard = { seat = "dev", roles = { "coder" } }, { seat = "guard", roles = { "integrity_guard" } }
    assert(b:transition("E-1", "in_progress", { actor = coder }))
    assert(b:transition("E-2", "in_progress", { actor = coder }))
    assert(b:transition("E-2", "code_review", { actor = coder }))
    assert(b:transition("E-2", "done", { actor = guard }))
    local events = #db:events()
    for _, case in ipairs {
      { [[{"id":"E","issues":[{"id":"E-1","summary":"one","depends_on":["E-9"]},{"id":"E-2","summary":"two"},
          {"id":"E-3","summary":"three"},{"id":"E-9","summary":"new"}]}]],
        "epics/e.json:1: issues[0].depends_on[0]: E-1 is in_progress, so the new dependency E-9 (ready) would not hold "
          .. "it back (dependencies hold back only a start): drop the dependency, or cancel E-1 and give its work to a "
          .. "new card that depends on E-9" },
      { [[{"id":"E","issues":[{"id":"E-1","summary":"one"},{"id":"E-2","summary":"two","depends_on":["F-1"]},
          {"id":"E-3","summary":"three"}]}]],
        "epics/e.json:1: issues[1].depends_on[0]: E-2 is done, so it was done without the new dependency F-1 (ready): "
          .. "drop the dependency, or give the work that needs F-1 to a new card that depends on it" },
    } do
      H.write(dir .. "/epics/e.json", case[1])
      local ok, err, code = import.import(db, dir)
      assert.is_nil(ok)
      assert.equal("EINVAL", code)
      assert.equal(1, select(2, err:find(case[2], 1, true)) and 1 or 0, "got: " .. tostring(err))
    end
    assert.equal(events, #db:events()) -- nothing written
    assert.is_nil(b:get("E-9"))
    assert.same({}, b:get("E-1").depends_on)
    -- an epic's new dependency holds back its issues not yet started (E-3), the way to hold
    -- the rest of an epic: taken, though E-1 is under way and E-2 done
    H.write(dir .. "/epics/e.json", '{"id":"E",\n"depends_on":["F-1"],"issues":[{"id":"E-1","summary":"one"},'
      .. '{"id":"E-2","summary":"two"},{"id":"E-3","summary":"three"}]}')
    assert(import.import(db, dir))
    assert.same({ "F-1" }, b:get("E").depends_on)
    -- a finished dependency, or an unfinished one of an issue that has not started, is fine
    assert(b:transition("F-1", "in_progress", { actor = coder }))
    assert(b:transition("F-1", "code_review", { actor = coder }))
    assert(b:transition("F-1", "done", { actor = guard }))
    H.write(dir .. "/epics/e.json", [[{"id":"E","issues":[{"id":"E-1","summary":"one","depends_on":["F-1"]},
      {"id":"E-2","summary":"two"},{"id":"E-3","summary":"three","depends_on":["E-9"]},{"id":"E-9","summary":"new"}]}]])
    assert(import.import(db, dir))
    assert.same({ "F-1" }, b:get("E-1").depends_on)
    assert.same({ "E-9" }, b:get("E-3").depends_on)
    assert(import.import(db, dir)) -- and kept on the next import
    db:close()
  end)

  it("adds no work to a finished epic or rock, which would run under a parent that is over", function()
    local dir = project { ["e.json"] = [[{"id":"E","issues":[{"id":"E-1","summary":"one"}]}]],
      ["f.json"] = [[{"id":"F","issues":[{"id":"F-1","summary":"other"}]}]] }
    local db, b = open(dir)
    assert(import.import(db, dir))
    local coder, guard = { seat = "dev", roles = { "coder" } }, { seat = "guard", roles = { "integrity_guard" } }
    assert(b:transition("E-1", "in_progress", { actor = coder }))
    assert(b:transition("E-1", "code_review", { actor = coder }))
    assert(b:transition("E-1", "done", { actor = guard }))
    assert.equal("done", b:get("E").status)
    -- a new issue, or an unfinished one moved in from another epic: refused, nothing written
    for _, text in ipairs {
      [[{"id":"E","issues":[{"id":"E-1","summary":"one"},{"id":"E-2","summary":"more"}]}]],
      [[{"id":"E","issues":[{"id":"E-1","summary":"one"},{"id":"F-1","summary":"other"}]}]],
    } do
      H.write(dir .. "/epics/e.json", text)
      if text:find("F-1", 1, true) then H.write(dir .. "/epics/f.json", [[{"id":"F","issues":[]}]]) end
      local ok, err, code = import.import(db, dir)
      assert.is_nil(ok)
      assert.equal("EINVAL", code)
      assert.matches('^epics/e%.json:1: issues%[1%]: epic "E" is done, so it cannot take the issue "[EF]%-[12]"; put it '
        .. "in a new epic$", err)
    end
    assert.is_nil(b:get("E-2"))
    assert.equal("F", b:get("F-1").parent)
    -- the finished epic re-imported as it was is fine
    H.write(dir .. "/epics/e.json", [[{"id":"E","issues":[{"id":"E-1","summary":"one"}]}]])
    H.write(dir .. "/epics/f.json", [[{"id":"F","issues":[{"id":"F-1","summary":"other"}]}]])
    assert(import.import(db, dir))
    db:close()
  end)

  -- A card moved between epics changes where both stand: the epic it left, with all its
  -- other work done, was left in progress for ever; the one it joined stayed ready with
  -- its work under way. Both follow their children, as after a child's move.
  it("brings the epics a card moved between in line with their children", function()
    local dir = project { ["e.json"] = [[{"id":"E","issues":[{"id":"E-1","summary":"one"},{"id":"E-2","summary":"two"}]}]],
      ["f.json"] = [[{"id":"F","issues":[{"id":"F-1","summary":"other"}]}]] }
    local db, b = open(dir)
    assert(import.import(db, dir))
    local coder, guard = { seat = "dev", roles = { "coder" } }, { seat = "guard", roles = { "integrity_guard" } }
    assert(b:transition("E-1", "in_progress", { actor = coder }))
    assert(b:transition("E-1", "code_review", { actor = coder }))
    assert(b:transition("E-1", "done", { actor = guard }))
    assert(b:transition("E-2", "in_progress", { actor = coder }))
    assert.same({ "in_progress", "ready" }, { b:get("E").status, b:get("F").status })
    -- E-2, under way, moved to F: E has only done work left, F has work under way
    H.write(dir .. "/epics/e.json", [[{"id":"E","issues":[{"id":"E-1","summary":"one"}]}]])
    H.write(dir .. "/epics/f.json", [[{"id":"F","issues":[{"id":"F-1","summary":"other"},{"id":"E-2","summary":"two"}]}]])
    assert(import.import(db, dir))
    assert.equal("F", b:get("E-2").parent)
    assert.same({ "done", "in_progress", "in_progress" }, { b:get("E").status, b:get("F").status, b:get("E-2").status })
    local last = b:history("E")[#b:history("E")]
    assert.same({ "transition", "in_progress", "done", "orket" }, { last.kind, last.data.from, last.data.to, last.actor })
    -- and on to an epic this import creates: it starts with it
    H.write(dir .. "/epics/f.json", [[{"id":"F","issues":[{"id":"F-1","summary":"other"}]}]])
    H.write(dir .. "/epics/g.json", [[{"id":"G","issues":[{"id":"E-2","summary":"two"}]}]])
    assert(import.import(db, dir))
    assert.same({ "G", "in_progress" }, { b:get("E-2").parent, b:get("G").status })
    db:close()
  end)

  -- A rock's depends_on was taken and followed nowhere: its epics' issues ran before it was
  -- met, and the rock, held back from in_progress, stayed ready after its work was done
  it("refuses a rock's depends_on, naming its line and where a dependency goes", function()
    local dir = project { ["f.json"] = [[{"id":"F","issues":[{"id":"F-1","summary":"first"}]}]],
      ["e.json"] = [[{"id":"E","issues":[{"id":"E-1","summary":"one"}]}]],
      ["r.json"] = '{"type":"rock","id":"R",\n"depends_on":["F"],"epics":["E"]}' }
    local db = open(dir)
    assert.same({ nil, "epics/r.json:2: depends_on: a rock's dependencies are not followed (an epic's and an issue's "
      .. "are): put the dependency on the epics that need it", "EINVAL" }, { import.import(db, dir) })
    -- a rock naming a card that is no epic: said so, not "unknown epic"
    H.write(dir .. "/epics/r.json", '{"type":"rock","id":"R","epics":["E-1"]}')
    assert.same({ nil, 'epics/r.json:1: epics[0].epic: "E-1" is an issue (in epics/e.json), not an epic: a rock holds '
      .. "epics, which hold issues", "EINVAL" }, { import.import(db, dir) })
    -- an epic, only in another department: unknown there, as before
    H.write(dir .. "/epics/r.json", '{"type":"rock","id":"R","epics":[{"epic":"E","department":"web"}]}')
    assert.same({ nil, 'epics/r.json:1: epics[0].epic: unknown epic "E" in department web', "EINVAL" },
      { import.import(db, dir) })
    db:close()
  end)

  -- An epic in progress whose issues all moved away stays in progress (a parent with no
  -- children stays as it is): said, for a person to give it work or end it, never ended by
  -- the import; and an epic its last unfinished issue left was done without a word, so that
  -- moving the issue back was refused as a surprise.
  it("leaves an epic in progress that moves left with no issues as it is, and says it and what moves changed", function()
    local dir = project { ["e.json"] = [[{"id":"E","issues":[{"id":"E-1","summary":"one"},{"id":"E-2","summary":"two"}]}]],
      ["f.json"] = [[{"id":"F","issues":[{"id":"F-1","summary":"other"}]}]],
      ["r.json"] = [[{"type":"rock","id":"R","epics":["E"]}]] }
    local db, b = open(dir)
    assert(import.import(db, dir))
    local coder, guard = { seat = "dev", roles = { "coder" } }, { seat = "guard", roles = { "integrity_guard" } }
    assert(b:transition("E-1", "in_progress", { actor = coder }))
    assert.same({ "in_progress", "in_progress" }, { b:get("E").status, b:get("R").status })
    local before = #b:history("E")
    -- both issues moved to F: E keeps its status, and is said with the command that ends it
    H.write(dir .. "/epics/e.json", [[{"id":"E","issues":[]}]])
    H.write(dir .. "/epics/f.json", [[{"id":"F","issues":[{"id":"F-1","summary":"other"},{"id":"E-1","summary":"one"},
      {"id":"E-2","summary":"two"}]}]])
    local r = assert(import.import(db, dir))
    assert.same({ "in_progress", "in_progress", "in_progress", "in_progress" },
      { b:get("E").status, b:get("R").status, b:get("F").status, b:get("E-1").status })
    assert.equal(before, #b:history("E"))
    assert.same({ { id = "E", type = "epic", status = "in_progress" } }, r.emptied)
    assert.same({ "epic F: ready -> in_progress (one of its children under way moved in)" }, r.followed)
    -- it takes new work later, and is said no more
    H.write(dir .. "/epics/e.json", [[{"id":"E","issues":[{"id":"E-3","summary":"new work"}]}]])
    r = assert(import.import(db, dir))
    assert.same({ "E", "ready", "in_progress" }, { b:get("E-3").parent, b:get("E-3").status, b:get("E").status })
    assert.is_nil(r.emptied)
    -- a rock in progress whose only epic moved to another rock: as it is, said
    H.write(dir .. "/epics/r.json", [[{"type":"rock","id":"R","epics":[]}]])
    H.write(dir .. "/epics/s.json", [[{"type":"rock","id":"S","epics":["E"]}]])
    r = assert(import.import(db, dir))
    assert.same({ "in_progress", "in_progress" }, { b:get("R").status, b:get("S").status })
    assert.same({ { id = "R", type = "rock", status = "in_progress" } }, r.emptied)
    -- a ready epic emptied stays ready, unsaid: it takes issues later, as a new one does
    H.write(dir .. "/epics/f.json", [[{"id":"F","issues":[{"id":"E-1","summary":"one"},{"id":"E-2","summary":"two"}]}]])
    H.write(dir .. "/epics/g.json", [[{"id":"G","issues":[{"id":"G-1","summary":"g"}]}]])
    assert(import.import(db, dir))
    H.write(dir .. "/epics/f.json", [[{"id":"F","issues":[{"id":"E-1","summary":"one"},{"id":"E-2","summary":"two"},
      {"id":"G-1","summary":"g"}]}]])
    H.write(dir .. "/epics/g.json", [[{"id":"G","issues":[]}]])
    r = assert(import.import(db, dir))
    assert.equal("ready", b:get("G").status)
    assert.is_nil(r.emptied)
    assert.is_nil(r.followed)
    db:close()
    -- an epic left with only done work is done, and said with what that means
    local dir2 = project { ["e.json"] = [[{"id":"E","issues":[{"id":"E-1","summary":"one"},{"id":"E-2","summary":"two"}]}]],
      ["f.json"] = [[{"id":"F","issues":[{"id":"F-1","summary":"other"}]}]] }
    local db2, b2 = open(dir2)
    assert(import.import(db2, dir2))
    assert(b2:transition("E-1", "in_progress", { actor = coder }))
    assert(b2:transition("E-1", "code_review", { actor = coder }))
    assert(b2:transition("E-1", "done", { actor = guard }))
    H.write(dir2 .. "/epics/e.json", [[{"id":"E","issues":[{"id":"E-1","summary":"one"}]}]])
    H.write(dir2 .. "/epics/f.json", [[{"id":"F","issues":[{"id":"F-1","summary":"other"},{"id":"E-2","summary":"two"}]}]])
    r = assert(import.import(db2, dir2))
    assert.same({ "epic E: in_progress -> done (its unfinished children moved away, and the rest is finished); a "
      .. "finished epic takes no new work: put any in a new epic" }, r.followed)
    -- nothing moved, nothing said
    assert.is_nil(assert(import.import(db2, dir2)).followed)
    -- an empty epic that takes a finished issue is done: said as what it took, not lost
    H.write(dir2 .. "/epics/h.json", [[{"id":"H","issues":[]}]])
    assert(import.import(db2, dir2))
    H.write(dir2 .. "/epics/e.json", [[{"id":"E","issues":[]}]])
    H.write(dir2 .. "/epics/h.json", [[{"id":"H","issues":[{"id":"E-1","summary":"one"}]}]])
    r = assert(import.import(db2, dir2))
    assert.same({ "epic H: ready -> done (finished children moved in, and all its children are finished); a "
      .. "finished epic takes no new work: put any in a new epic" }, r.followed)
    db2:close()
  end)

  -- An issue under way moved into an epic that waits for a card not done: the epic may not
  -- start (Guards 3), so it could not follow its started child and stayed `ready` unsaid, and
  -- the issue came under a dependency the file could not give it directly. Refused as that
  -- is. A finished issue that starts a ready epic is said as finished, not "under way".
  it("refuses a started issue moved under an epic dependency not done, and says a finished one moved in as such", function()
    local dir = project { ["m1.json"] = [[{"id":"M1","issues":[{"id":"M1-1","summary":"started one"},
      {"id":"M1-2","summary":"finished one"}]}]],
      ["m2.json"] = [[{"id":"M2","depends_on":["M3"],"issues":[{"id":"M2-1","summary":"m2 one"}]}]],
      ["m3.json"] = [[{"id":"M3","issues":[{"id":"M3-1","summary":"m3 one"}]}]],
      ["m4.json"] = [[{"id":"M4","issues":[{"id":"M4-1","summary":"m4 one"}]}]] }
    local db, b = open(dir)
    assert(import.import(db, dir))
    local coder, guard = { seat = "dev", roles = { "coder" } }, { seat = "guard", roles = { "integrity_guard" } }
    assert(b:transition("M1-1", "in_progress", { actor = coder }))
    assert(b:transition("M1-2", "in_progress", { actor = coder }))
    assert(b:transition("M1-2", "code_review", { actor = coder }))
    assert(b:transition("M1-2", "done", { actor = guard }))
    H.write(dir .. "/epics/m1.json", [[{"id":"M1","issues":[{"id":"M1-2","summary":"finished one"}]}]])
    H.write(dir .. "/epics/m2.json", [[{"id":"M2","depends_on":["M3"],"issues":[{"id":"M2-1","summary":"m2 one"},
      {"id":"M1-1","summary":"started one"}]}]])
    assert.same({ nil, "epics/m2.json:2: issues[1]: M1-1 is in_progress, so moved into epic M2 it would not wait for "
      .. "M2's dependency M3 (ready) as its issues do (dependencies hold back only a start): leave M1-1 in its epic "
      .. "until M3 is done, or drop M3 from M2's depends_on", "EINVAL" }, { import.import(db, dir) })
    assert.same({ "M1", "ready" }, { b:get("M1-1").parent, b:get("M2").status })
    -- a finished one likewise: done work under an epic that waits
    H.write(dir .. "/epics/m1.json", [[{"id":"M1","issues":[{"id":"M1-1","summary":"started one"}]}]])
    H.write(dir .. "/epics/m2.json", [[{"id":"M2","depends_on":["M3"],"issues":[{"id":"M2-1","summary":"m2 one"},
      {"id":"M1-2","summary":"finished one"}]}]])
    assert.matches("^epics/m2.json:2: issues%[1%]: M1%-2 is done, so moved into epic M2 it would be done work under an "
      .. "epic that waits for M3 %(ready%)", select(2, import.import(db, dir)))
    -- into an epic that waits for nothing: it follows, said with what moved in
    H.write(dir .. "/epics/m2.json", [[{"id":"M2","depends_on":["M3"],"issues":[{"id":"M2-1","summary":"m2 one"}]}]])
    H.write(dir .. "/epics/m4.json", [[{"id":"M4","issues":[{"id":"M4-1","summary":"m4 one"},
      {"id":"M1-2","summary":"finished one"}]}]])
    local r = assert(import.import(db, dir))
    assert.same({ "epic M4: ready -> in_progress (a finished child moved in)" }, r.followed)
    db:close()
  end)

  -- Windows editors save UTF-8 with a byte order mark; cjson refused it as "invalid token
  -- at character 1", and Lua's load as an unexpected symbol
  -- an epic file's name was printed as it is: a newline in it split the message into lines
  -- that each read as orket's, and an escape sequence reached the terminal
  it("names an epic file inert in its messages, its line still found, and records the name as it is", function()
    local odd = "a\nb\27[31m"
    local said = "epics/a\\nb\\x1b[31m"
    for _, c in ipairs {
      { odd .. ".json", '{"id": ', said .. ".json:1: Expected value" },
      { odd .. ".json", "", said .. ".json: is empty" },
      { odd .. ".json", "[]", said .. ".json: must hold an object" },
      { odd .. ".json", '{"id": "A", "id": "B"}', said .. '.json:1: "id" is given twice' },
      { odd .. ".lua", "return nil", said .. ".lua: returns nothing" },
      { odd .. ".lua", "error('no')", said .. ".lua:1: no" },
      { odd .. ".json", '{"id": "A", "issues": [{"summary": 3}]}', said .. ".json: issues[0].summary: must be a string" },
      { odd .. ".lua", 'return { id = "A",\n  nmae = "x" }', said .. ".lua:2: nmae: unknown field" },
      { odd .. ".lua", 'return { id = "A", issues = { { summary = "s",\n  depends_on = { "NOPE" } } } }',
        said .. '.lua:2: issues[1].depends_on[1]: unknown card "NOPE"' },
    } do
      local dir = project { [c[1]] = c[2] }
      local set, err = import.load(dir)
      if set then -- a dependency is looked up with the board's cards: by import
        local db = open(dir)
        set, err = import.import(db, dir)
        db:close()
      end
      assert.is_nil(set, c[2])
      assert.matches(c[3], err, 1, true)
      assert.is_nil(err:find("\n", 1, true), err)
      assert.is_nil(err:find("\27", 1, true), err)
    end
    -- two files: a card's id used twice, each file named so
    local dir = project { [odd .. ".json"] = '{"id": "A"}', ["core/" .. odd .. ".json"] = '{"id": "A"}' }
    local _, err = import.load(dir)
    assert.matches('epics/core/a\\nb\\x1b[31m.json: id: card id "A" is already used by ' .. said .. ".json", err, 1, true)
    -- imported, the card's source is the file's name as it is
    dir = project { [odd .. ".json"] = '{"id": "A", "issues": [{"id": "A-1", "summary": "s"}]}' }
    local db, b = open(dir)
    assert(import.import(db, dir))
    assert.equal("epics/" .. odd .. ".json", b:get("A-1").source)
    db:close()
  end)

  it("reads a file that starts with a UTF-8 byte order mark", function()
    local dir = project { ["a.json"] = '\239\187\191{"id":"A",\r\n"issues":[{"id":"A-1","summary":"one"}]}\r\n',
      ["b.lua"] = '\239\187\191return {id="B", issues={{id="B-1", summary="two"}}}' }
    local db, b = open(dir)
    local r = assert(import.import(db, dir))
    assert.same({ 4, 4 }, { r.cards, r.created })
    assert.same({ "one", "two" }, { b:get("A-1").summary, b:get("B-1").summary })
    assert.same({}, import.changed(db, dir))
    -- the mark before an array is the array's error, as without it
    H.write(dir .. "/epics/a.json", "\239\187\191 []")
    assert.same({ nil, "epics/a.json: must hold an object (a rock or an epic), not an array", "EINVAL" },
      { import.import(db, dir) })
    db:close()
  end)

  -- an epic written as YAML or saved as WEB.JSON was passed over without a word: "imported
  -- 0 cards from 0 files", its cards missing from the board
  it("says the files of epics/ that look meant as epics and are not read", function()
    local dir = project { ["a.json"] = '{"id":"A","issues":[]}', ["web.yaml"] = "id: WEB\n",
      ["core/API.JSON"] = '{"id":"API"}', ["README.md"] = "the epics", ["core/notes.txt"] = "x",
      ["backlog.csv"] = "Issue key,Summary\nX-1,a\n" }
    local db = open(dir)
    local r = assert(import.import(db, dir))
    assert.same({ 1, 1 }, { r.files, r.cards })
    -- (a tracker's CSV export said as one: it passed as "imported 0 cards", exit 0)
    assert.same({ "epics/backlog.csv: not read: another tracker's export is not read: convert it to an epic's JSON "
      .. "(docs/board.md)",
      "epics/core/API.JSON: not read: epic files are named *.json or *.lua (lower case), and YAML is not read",
      "epics/web.yaml: not read: epic files are named *.json or *.lua (lower case), and YAML is not read" }, r.warnings)
    db:close()
  end)

  -- a folder two levels under epics/ is read no more than a third would be: its epics were
  -- missing from the board without a word, a card depending on one of them "unknown"
  it("says the epic files in a folder deeper than a department's as not read", function()
    local dir = project { ["a.json"] = '{"id":"A","issues":[]}' }
    os.execute("mkdir -p " .. H.quote(dir .. "/epics/web/deep/deeper"))
    H.write(dir .. "/epics/web/deep/x.json", '{"id":"DEEP","issues":[{"id":"DEEP-1","summary":"deep"}]}')
    H.write(dir .. "/epics/web/deep/deeper/y.lua", "return {}")
    H.write(dir .. "/epics/web/deep/notes.txt", "x")
    local db = open(dir)
    local r = assert(import.import(db, dir))
    assert.same({ 1, 1 }, { r.files, r.cards })
    local why = "not read: epic files are in epics/ or in one department folder under it (epics/DEPARTMENT/)"
    assert.same({ "epics/web/deep/deeper/y.lua: " .. why, "epics/web/deep/x.json: " .. why }, r.warnings)
    db:close()
  end)

  -- a JSON 11 or -1 is a float to cjson, and was said as 11.0
  it("says a priority out of range as the file has it", function()
    for _, p in ipairs { "11", "-1" } do
      local dir = project { ["a.json"] = '{"id":"A","issues":[{"summary":"a","priority":' .. p .. '}]}' }
      local db = open(dir)
      local ok, err = import.import(db, dir)
      assert.is_nil(ok)
      assert.equal("epics/a.json:1: issues[0].priority: priority must be a whole number from 0 to 10 (3 high, 2 medium, "
        .. "1 low), not " .. p, err)
      db:close()
    end
  end)

  -- A run's E-2 (board:create numbers E-<n>) and a new issue the operator numbered E-2 are
  -- two pieces of work: the import replaced the run's definition with the file's, and the
  -- new work took the run's card's status (done: never worked).
  it("takes no card made on the board over for a file's card of another summary", function()
    local dir = project { ["e.json"] = [[{"id":"E","issues":[{"id":"E-1","summary":"one"}]}]] }
    local db, b = open(dir)
    assert(import.import(db, dir))
    local made = assert(b:create { parent = "E", summary = "split off: tests", actor = { seat = "dev" } })
    assert.equal("E-2", made.id)
    local coder, guard = { seat = "dev", roles = { "coder" } }, { seat = "guard", roles = { "integrity_guard" } }
    assert(b:transition("E-2", "in_progress", { actor = coder }))
    assert(b:transition("E-2", "code_review", { actor = coder }))
    assert(b:transition("E-2", "done", { actor = guard }))
    local events = #db:events()
    H.write(dir .. "/epics/e.json", '{"id":"E","issues":[{"id":"E-1","summary":"one"},\n{"id":"E-3","summary":"three"},'
      .. '\n{"id":"E-2","summary":"translate"}]}')
    local ok, err, code = import.import(db, dir)
    assert.is_nil(ok)
    assert.equal("EINVAL", code)
    assert.equal('epics/e.json:3: issues[2]: card "E-2" was made on the board, not imported ("split off: tests", done): '
      .. "give this issue another id; or, to define that card in the file, give it the board's summary", err)
    assert.equal(events, #db:events()) -- nothing written, E-3 neither
    assert.is_nil(b:get("E-3"))
    assert.same({ "split off: tests", nil }, { b:get("E-2").summary, b:get("E-2").source })
    -- with the board's summary the file defines that very card, from then on
    H.write(dir .. "/epics/e.json", '{"id":"E","issues":[{"id":"E-1","summary":"one"},'
      .. '{"id":"E-2","summary":"split off: tests","description":"kept in the file now"}]}')
    local r = assert(import.import(db, dir))
    assert.equal(1, r.updated)
    assert.same({ "done", "epics/e.json", "kept in the file now" }, { b:get("E-2").status, b:get("E-2").source,
      b:get("E-2").description })
    H.write(dir .. "/epics/e.json", '{"id":"E","issues":[{"id":"E-1","summary":"one"},'
      .. '{"id":"E-2","summary":"split off: the tests","description":"kept in the file now"}]}')
    assert(import.import(db, dir)) -- an imported card's summary may change, as any
    db:close()
  end)

  -- a canceled or archived dependency blocks until it is done, which it never will be:
  -- the import took it, and the card could never start (a run stalled on it)
  it("adds no dependency on a canceled or archived card, which would hold a card back for ever", function()
    local dir = project { ["e.json"] = [[{"id":"E","issues":[{"id":"E-1","summary":"one"},{"id":"E-2","summary":"two"}]}]],
      ["f.json"] = [[{"id":"F","issues":[{"id":"F-1","summary":"x"}]}]] }
    local db, b = open(dir)
    assert(import.import(db, dir))
    local person = { seat = "lead", by = "person" }
    assert(b:cancel("E-1", { actor = person, reason = "not needed" }))
    assert(b:transition("E-2", "archived", { actor = person }))
    local events = #db:events()
    for _, case in ipairs {
      { [[{"id":"F","issues":[{"id":"F-1","summary":"x"},{"id":"F-2","summary":"y",
          "depends_on":["E-1"]}]}]],
        "epics/f.json:2: issues[1].depends_on[0]: E-1 is canceled, so F-2 could never start (a dependency holds back "
          .. "a start until it is done): drop the dependency, or depend on the card that does its work now" },
      { [[{"id":"F","issues":[{"id":"F-1","summary":"x","depends_on":["E-2"]}]}]],
        "epics/f.json:1: issues[0].depends_on[0]: E-2 is archived, so F-1 could never start" },
      { '{"id":"F",\n"depends_on":["E-1"],"issues":[{"id":"F-1","summary":"x"}]}',
        "epics/f.json:2: depends_on[0]: E-1 is canceled, so the issues of epic F could never start" },
    } do
      H.write(dir .. "/epics/f.json", case[1])
      local ok, err, code = import.import(db, dir)
      assert.is_nil(ok)
      assert.equal("EINVAL", code)
      assert.equal(1, select(2, err:find(case[2], 1, true)) and 1 or 0, "got: " .. tostring(err))
    end
    assert.equal(events, #db:events()) -- nothing written
    assert.is_nil(b:get("F-2"))
    assert.same({}, b:get("F-1").depends_on)
    db:close()
  end)

  -- a started issue is past the start a dependency holds back: the refusal of its new
  -- dependency on a canceled card said it "could never start"
  it("refuses a started issue's new dependency on a canceled card as one that would not hold it back", function()
    local dir = project { ["e.json"] = [[{"id":"E","issues":[{"id":"E-1","summary":"one"}]}]],
      ["f.json"] = [[{"id":"F","issues":[{"id":"F-1","summary":"x"}]}]] }
    local db, b = open(dir)
    assert(import.import(db, dir))
    assert(b:cancel("E-1", { actor = { seat = "lead", by = "person" }, reason = "not needed" }))
    assert(b:transition("F-1", "in_progress", { actor = { seat = "dev" } }))
    local events = #db:events()
    H.write(dir .. "/epics/f.json", [[{"id":"F","issues":[{"id":"F-1","summary":"x","depends_on":["E-1"]}]}]])
    local ok, err = import.import(db, dir)
    assert.is_nil(ok)
    assert.equal("epics/f.json:1: issues[0].depends_on[0]: F-1 is in_progress, so the new dependency E-1 (canceled) "
      .. "would not hold it back (dependencies hold back only a start): drop the dependency, or cancel F-1 and give "
      .. "its work to a new card that depends on E-1", err)
    assert.equal(events, #db:events())
    db:close()
  end)

  it("finds a key given twice in one object, and none where keys repeat in other objects", function()
    local cases = {
      { '{"a":1,"b":{"a":2,"b":[{"a":3},{"a":4}]},"c":"\\"a\\":","d":["a","a"]}', nil },
      { '{"s":"x\\\\","s" :2}', 14, "s" }, -- the offset: to the end of the second copy's key
      { '{"o":{"k":1,"k":2}}', 15, "k" },
      { '{"a\\"b":1,"a\\"b":2}', 16, 'a"b' },
      { '[{"x":1},{"x":1,"y":{},"x":2}]', 26, "x" },
      -- keys equal once unescaped are one key to cjson, which keeps the last
      { '{"issues":[],\n"\\u0069ssues":[]}', 27, "issues" },
      { '{"/":1,"\\/":2}', 11, "/" },
    }
    for _, c in ipairs(cases) do
      assert.same({ c[2], c[3] }, { import.duplicate_key(c[1]) }, c[1])
    end
  end)

  -- a rock's epic named by a file name or a name that several epics have took the first of
  -- them, putting the other's work (or none of the one meant) under the rock unseen
  it("refuses a rock's epic named by a file name or name that several epics have", function()
    local dir = project { ["r.json"] = [[{"id":"R","epics":[{"epic":"backend"}]}]],
      ["core/backend.json"] = [[{"id":"CB","name":"Backend","issues":[]}]],
      ["x.json"] = [[{"id":"X","name":"Y","issues":[]}]], ["y.json"] = [[{"id":"Y","issues":[]}]] }
    os.execute("mkdir " .. H.quote(dir .. "/epics/web"))
    H.write(dir .. "/epics/web/backend.json", [[{"id":"WB","name":"Backend","issues":[]}]])
    local db, b = open(dir)
    for _, name in ipairs { "backend", "Backend" } do
      H.write(dir .. "/epics/r.json", '{"id":"R","epics":[{"epic":"' .. name .. '"}]}')
      local ok, err, code = import.import(db, dir)
      assert.is_nil(ok)
      assert.equal("EINVAL", code)
      assert.equal('epics/r.json:1: epics[0].epic: "' .. name .. '" names 2 epics (CB in epics/core/backend.json, WB in '
        .. "epics/web/backend.json): give the epic's id, or its department", err)
    end
    assert.equal(0, db:row("SELECT count(*) AS n FROM cards").n)
    -- with its department, or its id, it names one; an id before another epic's name
    H.write(dir .. "/epics/r.json", [[{"id":"R","epics":[{"epic":"backend","department":"web"},"CB","Y"]}]])
    assert(import.import(db, dir))
    assert.same({ "R", "R", "R", nil }, { b:get("WB").parent, b:get("CB").parent, b:get("Y").parent, b:get("X").parent })
    db:close()
  end)

  -- listed twice, a dependency is one on the board: the card never compared equal, and
  -- every import updated it and journaled "depends_on changed"
  it("takes a dependency listed twice as one, and leaves the card unchanged on re-import", function()
    local dir = project { ["d.json"] = [[{"id":"D","issues":[{"id":"D-1","summary":"a"},{"id":"D-2","summary":"b"},
      {"id":"D-3","summary":"c","depends_on":["D-1","D-2","D-1"]}]}]] }
    local db, b = open(dir)
    assert(import.import(db, dir))
    assert.same({ "D-1", "D-2" }, b:get("D-3").depends_on)
    local events = #db:events()
    local r = assert(import.import(db, dir))
    assert.same({ 0, 4 }, { r.updated, r.unchanged })
    assert.equal(events, #db:events())
    db:close()
  end)

  -- acceptance checks were written apart from the compared fields: a changed check was
  -- said as "0 updated" and journaled nowhere
  it("counts a change of an issue's acceptance checks as an update, journaled", function()
    local function file(checks)
      return '{"id":"V","issues":[{"id":"V-1","summary":"a"' .. (checks and (',"verification":' .. checks) or "") .. '}]}'
    end
    local dir = project { ["v.json"] = file '{"command":["sh","t.sh"],"expect_exit":0,"timeout_ms":5000}' }
    local db, b = open(dir)
    assert(import.import(db, dir))
    local r = assert(import.import(db, dir)) -- the same checks: unchanged, whatever the store's JSON form
    assert.same({ 0, 2 }, { r.updated, r.unchanged })
    for _, checks in ipairs { '{"command":["sh","t.sh"],"expect_exit":1,"timeout_ms":5000}', false } do
      H.write(dir .. "/epics/v.json", file(checks or nil))
      r = assert(import.import(db, dir))
      assert.same({ 1, 1 }, { r.updated, r.unchanged })
      local h = b:history("V-1")
      assert.same({ "verification" }, h[#h].data.changed)
    end
    assert.is_nil(require("orket.store.verifications").checks(db, "V-1"))
    assert.equal(0, assert(import.import(db, dir)).updated) -- none, as none before
    db:close()
  end)

  it("derives stable ids from the file name and the summary", function()
    local dir = project { ["core/web.json"] = [[{"stories":[{"summary":"Add the login form!"},{"name":"Logout"}]}]],
      ["goal.lua"] = [[return { epics = { { epic = "web", department = "core" } } }]] }
    local db, b = open(dir)
    assert(import.import(db, dir))
    assert.equal("web", b:get("web-add-the-login-form").parent)
    assert.equal("core", b:get("web").department)
    assert.equal("goal", b:get("web").parent)
    assert.equal(0, assert(import.import(db, dir)).created)
    db:close()
  end)

  -- an epic as the original Orket wrote them (its own field names and shapes)
  local ORIGINAL = [[{
  "id": "LEGACY",
  "name": "Legacy epic",
  "type": "epic",
  "team": "standard",
  "environment": "standard",
  "iterations": 3,
  "description": "Written for the original",
  "requirements": "Keep it small.",
  "architecture_governance": {"idesign": false, "pattern": "Standard"},
  "lessons_learned": ["one", "two"],
  "params": {"model_overrides": {"coder": "ollama:qwen2.5-coder"}},
  "references": ["docs/a.md"],
  "handshake_enabled": false, "example_task": "Say hello.", "build_id": "b-1",
  "issues": [
    {"id": "LEGACY-1", "summary": "Do work", "seat": "lead_architect", "priority": "High", "depends_on": [],
     "params": {"model_overrides": {}}},
    {"id": "LEGACY-2", "summary": "More", "params": {}, "assignee": "x", "retry_count": 0, "max_retries": 3}
  ]
}]]

  it("imports an epic written for the original Orket, noting each field read and ignored", function()
    local dir = project { ["legacy.json"] = ORIGINAL }
    local db, b = open(dir)
    local r = assert(import.import(db, dir))
    assert.equal(3, r.created)
    assert.equal("Keep it small.", b:get("LEGACY").requirements)
    assert.equal(3, b:get("LEGACY-1").priority)
    local notes = table.concat(r.warnings, "\n")
    for _, k in ipairs { "architecture_governance", "environment", "iterations", "lessons_learned", "references", "team",
      "handshake_enabled", "example_task", "build_id", "assignee", "retry_count", "max_retries" } do
      assert.matches("epics/legacy.json:%d+: " .. k .. ": read and ignored", notes)
    end
    -- one note per field and file, at its first line, saying where Orket keeps the same
    assert.matches("epics/legacy.json:12: params %(3 times%): read and ignored, as Orket has no such field %(for "
      .. "model_overrides, give the seat a model in orket.lua %(team.SEAT.model%)", notes)
    assert.matches("team: read and ignored, as Orket has no such field %(the seats are orket.lua's team%)", notes)
    assert.equal(13, #r.warnings)
    db:close()
  end)

  local cases = {
    { "a misspelt field beside the original's", { ["a.json"] = [[{"id":"A","team":"standard","issues":[{"summary":"a","depends_onn":["A"]}]}]] },
      "epics/a.json:1: issues[0].depends_onn: unknown field" },
    { "an unknown dependency", { ["web.json"] = [[{"id":"WEB","issues":[{"id":"W1","summary":"a"},{"id":"W2","summary":"b"},
        {"id":"W3","summary":"c"},{"id":"W4","summary":"d","depends_on":["API-9"]}]}]] },
      'epics/web.json:2: issues[3].depends_on[0]: unknown card "API-9"' },
    { "a cycle across files", { ["a.json"] = [[{"id":"A","issues":[{"id":"A1","summary":"a","depends_on":["B1"]}]}]],
        ["b.json"] = [[{"id":"B","issues":[{"id":"B1","summary":"b","depends_on":["B2"]},{"id":"B2","summary":"c","depends_on":["A1"]}]}]] },
      "epics/b.json:1: issues[1].depends_on[0]: dependency cycle: A1 -> B1 -> B2 -> A1" },
    -- an issue waits for its epic's dependencies too (the scheduler's rule): a cycle through them
    { "an epic depending on one of its own issues", { ["e.json"] = '{"id":"E","depends_on":["E-1"],"issues":[{"id":"E-1","summary":"a"}]}' },
      "epics/e.json:1: depends_on[0]: dependency cycle: E-1 -> (epic E) -> E-1" },
    { "a cycle across two epics through an epic's dependency", {
        ["e.json"] = '{"id":"E",\n"depends_on":["F-1"],\n"issues":[{"id":"E-1","summary":"a"}]}',
        ["f.json"] = '{"id":"F","issues":[{"id":"F-1","summary":"a","depends_on":["E-1"]}]}' },
      "epics/e.json:2: depends_on[0]: dependency cycle: F-1 -> E-1 -> (epic E) -> F-1" },
    -- an epic's own depends_on written after its issues (as a serializer appending a key
    -- writes it) was said at the first issue's depends_on: the wrong card to edit
    { "a cycle closed by an epic's own depends_on written after its issues", {
        ["e.json"] = '{"id":"E",\n"issues":[{"id":"E-1","summary":"a",\n"depends_on":[]}],\n"depends_on":["F-1"]}',
        ["f.json"] = '{"id":"F","issues":[{"id":"F-1","summary":"a","depends_on":["E-1"]}]}' },
      "epics/e.json:4: depends_on[0]: dependency cycle: F-1 -> E-1 -> (epic E) -> F-1" },
    { "an epic's own unknown dependency written after its issues", {
        ["e.json"] = '{"id":"E",\n"issues":[{"id":"E-1","summary":"a"},\n{"id":"E-2","summary":"b","depends_on":["E-1"]}],\n"depends_on":["NOPE"]}' },
      'epics/e.json:4: depends_on[0]: unknown card "NOPE"' },
    { "an epic's own unknown dependency after its issues in a Lua file", {
        ["e.lua"] = 'return {id="E",\nissues={{id="E-1",summary="a",\ndepends_on={}}},\n-- depends_on = {"X"}\ndepends_on={"NOPE"}}' },
      'epics/e.lua:5: depends_on[1]: unknown card "NOPE"' },
    -- and a card depending on an epic waits for all its issues (an epic is done when they are)
    { "a cycle through a dependency on another epic", {
        ["e.json"] = '{"id":"E","issues":[{"id":"E-1","summary":"a","depends_on":["F"]}]}',
        ["f.json"] = '{"id":"F","issues":[{"id":"F-1","summary":"a"},\n{"id":"F-2","summary":"b","depends_on":["E-1"]}]}' },
      "epics/f.json:2: issues[1].depends_on[0]: dependency cycle: E-1 -> F -> F-2 -> E-1" },
    { "a self dependency", { ["a.json"] = [[{"id":"A","issues":[{"id":"A1","summary":"a","depends_on":"A1"}]}]] },
      "epics/a.json:1: issues[0].depends_on[0]: a card cannot depend on itself" },
    { "broken JSON, with its line", { ["a.json"] = "{\n  \"id\": \"A\",\n  \"issues\": [\n    {\"summary\" \"x\"}\n  ]\n}" },
      "epics/a.json:4: Expected colon but found T_STRING at character 45" },
    { "a wrong field type", { ["a.json"] = [[{"id":"A","issues":[{"summary":"a","priority":"urgent"}]}]] },
      'epics/a.json:1: issues[0].priority: unknown priority "urgent"; use High, Medium, Low or a number' },
    -- 2.5 was stored and shown as "medium (2.5)"
    { "a fractional priority", { ["a.json"] = '{"id":"A","issues":[\n{"summary":"a"},\n{"summary":"b","priority":2.5}]}' },
      "epics/a.json:3: issues[1].priority: priority must be a whole number from 0 to 10 (3 high, 2 medium, 1 low), not 2.5" },
    { "a fractional priority in a Lua file", { ["a.lua"] = 'return {id="A", priority=0.5, issues={}}' },
      "epics/a.lua:1: priority: priority must be a whole number from 0 to 10 (3 high, 2 medium, 1 low), not 0.5" },
    { "a missing summary", { ["a.json"] = [[{"id":"A","cards":[{"summary":"a"},{"seat":"dev"}]}]] },
      "epics/a.json:1: cards[1]: needs a summary or a name" },
    { "a misspelt summary as the unknown field it is, not as a missing summary",
      { ["a.json"] = [[{"id":"A","issues":[{"sumary":"a"}]}]] },
      "epics/a.json:1: issues[0].sumary: unknown field (an issue's fields: " },
    -- with another unknown field before it by name: the misspelt one is said, with the others
    { "a misspelt summary first among unknown fields, the others named",
      { ["a.json"] = [[{"id":"A","issues":[{"aaa":1,"sumary":"a","zzz":2}]}]] },
      "epics/a.json:1: issues[0].sumary: unknown field (an issue's fields: " },
    { "the others named after the first, as many as there are",
      { ["a.json"] = [[{"id":"A","issues":[{"aaa":1,"sumary":"a","zzz":2}]}]] },
      "verification) (and 2 more unknown fields: issues[0].aaa, issues[0].zzz; 'orket validate' lists them)" },
    { "duplicate ids", { ["a.json"] = [[{"id":"A","issues":[{"id":"X","summary":"a"}]}]],
        ["b.json"] = [[{"id":"B","issues":[{"id":"X","summary":"b"}]}]] },
      'epics/b.json:1: issues[0]: card id "X" is already used by epics/a.json issues[0]; change one of the two ids' },
    { "a derived id already used", { ["a.json"] = [[{"id":"A","issues":[{"id":"A-x","summary":"a"},{"summary":"x"}]}]] },
      'epics/a.json:1: issues[1]: card id "A-x" is already used by epics/a.json issues[0]; give one of them an explicit id' },
    -- an id names the card's git branch: what git's ref-name rules refuse is refused here
    { "an id ending in .lock", { ["a.json"] = [[{"id":"A","issues":[{"id":"X.lock","summary":"a"}]}]] },
      [[epics/a.json:1: issues[0].id: bad id "X.lock": an id is a letter or digit, then letters, digits, '_', '.', '-' ]]
      .. [[(ASCII, 100 at most), without '..' and not ending in '.' or '.lock' (it names the card's git branch)]] },
    { "an id longer than a branch of a card may be", { ["a.json"] = '{"id":"A","issues":[{"id":"' .. string.rep("x", 101)
      .. '","summary":"a"}]}' }, [[issues[0].id: bad id "]] .. string.rep("x", 101) .. [[": an id is]] },
    { "an id holding ..", { ["a.json"] = [[{"id":"A","issues":[{"id":"A..B","summary":"a"}]}]] },
      [[issues[0].id: bad id "A..B": an id is a letter or digit]] },
    { "an id ending in .", { ["a.json"] = [[{"id":"a.","issues":[]}]] }, [[epics/a.json:1: id: bad id "a.": an id is]] },
    { "an id not starting with a letter or digit", { ["a.json"] = [[{"id":"_a","issues":[]}]] },
      [[id: bad id "_a": an id is a letter or digit, then]] },
    { "an id derived from a summary with no ASCII letter or digit (\"A-\" before)",
      { ["a.json"] = '{"id":"A","issues":[{"summary":"\230\151\165\230\156\172"}]}' },
      [[epics/a.json:1: issues[0].id: cannot derive an id (no ASCII letter or digit to make one of); give one]] },
    -- an issue without an id is said at its own line, found by its place in the list: it has
    -- no id to find it by, and was said at the epic's id (or the issues key)
    { "an issue with neither id nor summary, at its line", { ["d.json"] = '{ "id": "D", "name": "Derived",\n'
        .. '  "issues": [\n  { "id": "D-1", "summary": "ok" },\n  { "summary": "ok too" },\n  { "priority": 1 },\n'
        .. '  { "id": "D-9", "summary": "later" }\n] }' },
      "epics/d.json:5: issues[2]: needs a summary or a name" },
    { "an id that cannot be derived, at its issue's line", { ["d.json"] = '{ "id": "D", "name": "Derived",\n'
        .. '  "issues": [\n  { "id": "D-1", "summary": "ok" },\n  { "summary": "ok too" },\n'
        .. '  { "summary": "\230\151\165" },\n  { "id": "D-9", "summary": "later" }\n] }' },
      "epics/d.json:5: issues[2].id: cannot derive an id (no ASCII letter or digit to make one of); give one" },
    { "an id-less issue of a Lua file, at its line", { ["d.lua"] = '-- an epic: { "id": "no" }\nreturn { id = "DL",\n'
        .. '  issues = {\n    { id = "DL-1", summary = "ok, {" }, -- a comment, }\n    [[x]] and { summary = "ok too" },\n'
        .. '    { priority = 1 },\n  } }' },
      "epics/d.lua:6: issues[3]: needs a summary or a name" },
    { "an id derived from a file name git cannot name", { ["v1..2.json"] = [[{"issues":[]}]] },
      [[epics/v1..2.json: id: the id derived, "v1..2", is no usable id (an id is a letter or digit]] },
    { "two issue keys", { ["a.json"] = [[{"id":"A","issues":[],"stories":[]}]] },
      "epics/a.json:1: stories: give issues under one key only (found issues and stories)" },
    { "a rock naming an epic twice", { ["a.json"] = [[{"id":"A","issues":[]}]],
        ["r.json"] = [[{"id":"R","epics":[{"epic":"A"},{"epic":"a"}]}]] },
      'epics/r.json:1: epics[1].epic: epic "A" is listed already, as epics[0]; name each epic once' },
    { "a rock naming an unknown epic", { ["r.json"] = [[{"id":"R","epics":[{"epic":"nope","department":"core"}]}]] },
      'epics/r.json:1: epics[0].epic: unknown epic "nope" in department core' },
    { "a Lua file with an error, 1-based paths", { ["a.lua"] = [[return {id="A", issues={{summary="a"}, {summary=5}}}]] },
      "epics/a.lua:1: issues[2].summary: must be a string, not number" },
    { "a Lua file that does not compile", { ["a.lua"] = "return {" },
      "epics/a.lua:1:" },
    -- cjson keeps the last of a key given twice, dropping the first's cards or dependencies
    { "a second issues key in one object", { ["a.json"] = '{"id":"A","issues":[{"id":"A-1","summary":"a"}],\n'
        .. '"issues":[{"id":"A-2","summary":"b"}]}' },
      'epics/a.json:2: "issues" is given twice in one object; JSON keeps only the last, and what the first holds would '
        .. "be dropped: merge them into one" },
    { "a second issues key written with an escape", { ["a.json"] = '{"id":"A","issues":[{"id":"A-1","summary":"a"}],\n'
        .. '"\\u0069ssues":[{"id":"A-2","summary":"b"}]}' },
      'epics/a.json:2: "issues" is given twice in one object' },
    -- cjson takes hex numbers, NaN and Infinity, which no other JSON tool would
    { "a number JSON has not", { ["a.json"] = '{"id":"A",\n"issues":[{"id":"A-1","summary":"a","priority":0x3}]}' },
      "epics/a.json:2: not JSON: lexical error: invalid char in json text" },
    { "a second depends_on in one issue", { ["a.json"] = '{"id":"A","issues":[{"id":"A-1","summary":"a"},\n'
        .. '{"id":"A-3","summary":"c"},\n{"id":"A-2","summary":"b \\"{[\\\\","depends_on":["A-1"],\n"depends_on":["A-3"]}]}' },
      'epics/a.json:4: "depends_on" is given twice in one object' },
    -- as Windows editors save "Unicode": said as a bad token at character 1, or an
    -- unexpected symbol, or (without a byte order mark) with the file name run into it
    { "a file saved as UTF-16", { ["a.json"] = '\255\254{\0"\0i\0d\0"\0:\0"\0A\0"\0}\0' },
      "epics/a.json: is saved as UTF-16 or UTF-32, not UTF-8; save the file as UTF-8" },
    { "a file saved as UTF-16 without a byte order mark", { ["a.lua"] = 'r\0e\0t\0u\0r\0n\0' },
      "epics/a.lua: is saved as UTF-16 or UTF-32, not UTF-8; save the file as UTF-8" },
    { "a file saved as big-endian UTF-32", { ["a.json"] = '\0\0\254\255\0\0\0{' },
      "epics/a.json: is saved as UTF-16 or UTF-32, not UTF-8; save the file as UTF-8" },
    { "an empty file", { ["a.json"] = " \n" }, "epics/a.json: is empty; it must hold an object (a rock or an epic)" },
    { "a file that is not an object", { ["a.json"] = "[1, 2]" },
      "epics/a.json: must hold an object (a rock or an epic), not an array" },
  }
  for _, case in ipairs(cases) do
    it("refuses " .. case[1] .. " naming file and field, writing nothing", function()
      local dir = project(case[2])
      local db = open(dir)
      local ok, err, code = import.import(db, dir)
      assert.is_nil(ok)
      assert.truthy(code)
      assert.equal(1, select(2, err:find(case[3], 1, true)) and 1 or 0, "got: " .. tostring(err))
      assert.equal(0, db:row("SELECT count(*) AS n FROM cards").n)
      assert.equal(0, db:row("SELECT count(*) AS n FROM events").n)
      db:close()
    end)
  end

  -- These four were said as "file: path: ..." where every other import error names the
  -- line, as validate does: in a long file the card had to be searched for.
  it("names the line of an unknown card, a self dependency, a type change and a finished epic", function()
    local dir = project { ["e.json"] = '{"id":"E",\n"depends_on":["NOPE"],\n"issues":[]}' }
    local db, b = open(dir)
    assert.same({ nil, 'epics/e.json:2: depends_on[0]: unknown card "NOPE"', "EINVAL" }, { import.import(db, dir) })
    H.write(dir .. "/epics/e.json", '{"id":"E","issues":[\n{"id":"E-1","summary":"one"},\n{"id":"E-2",\n"summary":"two",'
      .. '\n"depends_on":["E-1","E-2"]}]}')
    assert.same({ nil, "epics/e.json:5: issues[1].depends_on[1]: a card cannot depend on itself", "EINVAL" },
      { import.import(db, dir) })
    H.write(dir .. "/epics/e.json", '{"id":"E","issues":[\n{"id":"E-1","summary":"one"},\n{"id":"E-2","summary":"two"}]}')
    assert(import.import(db, dir))
    -- an issue given an epic's id, and an epic an issue's
    H.write(dir .. "/epics/g.json", '{"id":"G","issues":[]}')
    assert(import.import(db, dir))
    os.remove(dir .. "/epics/g.json")
    H.write(dir .. "/epics/f.json", '{"id":"F","issues":[\n{"id":"G","summary":"x"}]}')
    assert.same({ nil, 'epics/f.json:2: issues[0]: card "G" is an epic on the board, not an issue', "EINVAL" },
      { import.import(db, dir) })
    os.remove(dir .. "/epics/f.json")
    H.write(dir .. "/epics/r.json", '{"type":"rock",\n"id":"G","epics":[]}')
    assert.same({ nil, 'epics/r.json:2: id: card "G" is an epic on the board, not a rock', "EINVAL" },
      { import.import(db, dir) })
    os.remove(dir .. "/epics/r.json")
    local coder, guard = { seat = "dev", roles = { "coder" } }, { seat = "guard", roles = { "integrity_guard" } }
    for _, id in ipairs { "E-1", "E-2" } do
      assert(b:transition(id, "in_progress", { actor = coder }))
      assert(b:transition(id, "code_review", { actor = coder }))
      assert(b:transition(id, "done", { actor = guard }))
    end
    H.write(dir .. "/epics/e.json", '{"id":"E","issues":[\n{"id":"E-1","summary":"one"},\n{"id":"E-2","summary":"two"},'
      .. '\n\n{"id":"E-3","summary":"three"}]}')
    assert.same({ nil, 'epics/e.json:5: issues[2]: epic "E" is done, so it cannot take the issue "E-3"; put it in a new epic',
      "EINVAL" }, { import.import(db, dir) })
    db:close()
  end)

  -- A card's id names its directory and git branch: on a case-insensitive filesystem
  -- API-1 and api-1 are one, and one card's work would land in the other's.
  it("refuses an id differing only in case from another, in the files or on the board", function()
    local dir = project { ["a.json"] = '{"id":"A","issues":[\n{"id":"API-1","summary":"one"},\n{"id":"api-1","summary":"two"}]}' }
    local db, b = open(dir)
    assert.same({ nil, 'epics/a.json:3: issues[1]: card id "api-1" differs only in case from "API-1" (epics/a.json '
      .. "issues[0]): " .. import.CASE_CLASH, "EINVAL" }, { import.import(db, dir) })
    -- across files, an epic's own id too
    H.write(dir .. "/epics/a.json", '{"id":"A","issues":[{"id":"API-1","summary":"one"}]}')
    H.write(dir .. "/epics/b.json", '{"issues":[]}')
    H.write(dir .. "/epics/c.json", '{\n"id":"a","issues":[]}')
    local ok, err = import.import(db, dir)
    assert.is_nil(ok)
    assert.equal('epics/c.json:2: id: card id "a" differs only in case from "A" (epics/a.json): ' .. import.CASE_CLASH, err)
    os.remove(dir .. "/epics/c.json")
    assert(import.import(db, dir))
    -- against the board: a card the files no longer define is still a directory and a branch
    H.write(dir .. "/epics/a.json", '{"id":"A","issues":[\n{"id":"Api-1","summary":"one"}]}')
    assert.same({ nil, 'epics/a.json:2: issues[0]: card id "Api-1" differs only in case from "API-1" on the board: '
      .. import.CASE_CLASH, "EINVAL" }, { import.import(db, dir) })
    assert.is_nil(b:get("Api-1"))
    -- the same id again is the same card
    H.write(dir .. "/epics/a.json", '{"id":"A","issues":[{"id":"API-1","summary":"one"}]}')
    local r = assert(import.import(db, dir))
    assert.same({ 0, 3 }, { r.created, r.unchanged })
    -- the files' pair with one of the two on the board would make the other: refused
    H.write(dir .. "/epics/a.json", '{"id":"A","issues":[{"id":"API-1","summary":"one"},\n{"id":"api-1","summary":"2"}]}')
    assert.same({ nil, 'epics/a.json:2: issues[1]: card id "api-1" differs only in case from "API-1" (epics/a.json '
      .. "issues[0]): " .. import.CASE_CLASH, "EINVAL" }, { import.import(db, dir) })
    -- a pair an older Orket imported stays importable, as nothing is created, and is said
    local imports = require "orket.store.imports"
    imports.insert_card(db, { id = "api-1", type = "issue", parent = "A", summary = "two", priority = 2,
      source = "epics/a.json" })
    r = assert(import.import(db, dir))
    assert.same({ 0, 1 }, { r.created, r.updated })
    assert.equal("2", b:get("api-1").summary)
    assert.equal(1, #r.warnings)
    assert.same({ 'epics/a.json:2: issues[1]: card id "api-1" differs only in case from "API-1" (epics/a.json '
      .. "issues[0]), both on the board already: " .. import.CASE_OLD }, r.warnings)
    db:close()
  end)

  it("refuses a ring of 3,000 cards as a cycle, said shortened", function()
    local n, issues = 3000, {}
    for i = 1, n do issues[i] = string.format('{"id":"A%d","summary":"s","depends_on":["A%d"]}', i, i % n + 1) end
    local dir = project { ["a.json"] = '{"id":"A","issues":[' .. table.concat(issues, ",") .. "]}" }
    local db = open(dir)
    local ok, err, code = import.import(db, dir)
    assert.is_nil(ok)
    assert.equal("ECYCLE", code)
    assert.equal("epics/a.json:1: issues[2999].depends_on[0]: dependency cycle: A1 -> A2 -> A3 -> A4 -> A5 -> A6 -> A7 -> A8 -> A9 -> A10 -> A11 "
      .. "-> A12 -> ... (2983 more) -> A2996 -> A2997 -> A2998 -> A2999 -> A3000 -> A1", err)
    assert.equal(0, db:row("SELECT count(*) AS n FROM cards").n)
    db:close()
  end)

  it("refuses a directory without epics/", function()
    local ok, err, code = import.load(H.tmpdir())
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    assert.matches("no epics/ folder", err)
  end)
end)
