-- orket.sandboxes.deploy: when a merge makes a sandbox due (sandbox.deploy = merge, epic,
-- rock or manual), read from the board; and a tree with nothing to run is said at once,
-- with no owner started in the background.
local H = require "tests.helpers"
local deploy = require "orket.sandboxes.deploy"
local board_mod = require "orket.board"
local imports = require "orket.store.imports"

local function board()
  local db = require("tests.backends").open_store()
  imports.insert_card(db, { id = "R", type = "rock", name = "rock", priority = 2, seat = "developer" })
  for _, e in ipairs { "E", "F" } do
    imports.insert_card(db, { id = e, type = "epic", parent = "R", name = e, priority = 2, seat = "developer" })
    for i = 1, 2 do
      imports.insert_card(db, { id = e .. "-" .. i, type = "issue", parent = e, name = e .. i, priority = 2,
        seat = "developer" })
    end
  end
  return db, board_mod.open(db)
end

local function done(db, id)
  require("orket.store.cards").set_status(db, id, "done", nil, "developer", 0)
end

describe("sandbox deploys", function()
  after_each(H.cleanup)

  it("are due after each merge, once an epic's issues are done, once a rock's are, never by hand", function()
    local db, b = board()
    assert.equal("E-1 merged", deploy.due("merge", b, "E-1"))
    assert.is_nil(deploy.due("manual", b, "E-1"))
    done(db, "E-1")
    assert.is_nil(deploy.due("epic", b, "E-1"))
    done(db, "E-2")
    assert.equal("epic E done", deploy.due("epic", b, "E-2"))
    assert.is_nil(deploy.due("rock", b, "E-2"))
    done(db, "F-1")
    done(db, "F-2")
    assert.equal("rock R done", deploy.due("rock", b, "F-2"))
    db:close()
  end)

  it("say at once that a tree with nothing to run gets no sandbox", function()
    local db, b = board()
    local dir = H.tmpdir()
    assert(os.execute("mkdir -p " .. dir .. "/workspace"))
    H.write(dir .. "/workspace/notes.txt", "nothing to run\n")
    -- main's commit holds nothing to run
    local repo = assert(require("orket.c.gitrepo").init(dir .. "/workspace", { name = "t", email = "t@orket.invalid" }))
    repo:close()
    local settings = { sandbox = require("orket.settings.sandbox").sandbox({}) }
    settings.sandbox.deploy = "merge"
    local d = deploy.after_merge_at(dir, settings, b, "E-1")
    assert.equal("E-1 merged", d.reason)
    assert.is_nil(d.owner_pid)
    assert.matches("^no sandbox started: sandbox: nothing to run in main's tree", d.error)
    settings.sandbox.deploy = "manual"
    assert.is_nil(deploy.after_merge_at(dir, settings, b, "E-1"))
    db:close()
  end)
end)
