-- GET /v1/board says which cards wait on a tool call held for a decision (`held`), so that
-- the web board tells "waiting for approval" from a question without reading every waiting
-- card (docs/serve.md, The web board): read at each request (a request or a decision does
-- not move the cards' stamp the board's text is kept by), and described in the API document.
local keys = require "orket.serve.keys"
local serve = require "orket.serve"
local H = require "tests.helpers"

describe("GET /v1/board's held", function()
  after_each(H.cleanup)

  it("lists the cards with an undecided tool call, at each request, and the API document says so", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local imports = require "orket.store.imports"
    local sa = require "orket.store.approvals"
    assert(db:tx(function()
      imports.insert_card(db, { id = "E", type = "epic", name = "epic", priority = 2, seat = "developer" })
      for _, id in ipairs { "E-1", "E-2", "E-3" } do
        imports.insert_card(db, { id = id, type = "issue", parent = "E", name = id, priority = 2, seat = "developer" })
      end
      return true
    end))
    local a = keys.create(db, dir, "a", "viewer")
    local srv, stop = require("tests.fixtures").served { dir = dir, db = db, host = "127.0.0.1", port = 0,
      limits = assert(serve.limits("heartbeat_ms=60000")), log = function() end }
    local s = { url = "http://127.0.0.1:" .. srv:port() }
    local function held()
      local st, board = H.api(s, "GET", "/v1/board", a)
      assert.equal(200, st)
      assert.equal(4, #board.cards)
      return board.held
    end
    assert.same({}, held())
    local one = assert(sa.insert(db, { card = "E-3", tool = "rm", arguments = "{}", digest = "d" }))
    assert(sa.insert(db, { card = "E-1", tool = "rm", arguments = "{}", digest = "d" }))
    -- (the cards did not change: the board's kept text is answered, with the held read now)
    assert.same({ "E-1", "E-3" }, held())
    sa.set_decision(db, one, "deny", "dev", "no")
    assert.same({ "E-1" }, held())
    -- and with ?root= (of the whole project still)
    local _, rooted = H.api(s, "GET", "/v1/board?root=E", a)
    assert.same({ "E-1" }, rooted.held)
    -- the API document describes it, and the answer always has it
    local _, api = H.api(s, "GET", "/v1/openapi.json", a)
    local schema = api.paths["/v1/board"].get.responses["200"].content["application/json"].schema
    assert.equal("array", schema.properties.held.type)
    assert.equal("string", schema.properties.held.items.type)
    local required = {}
    for _, k in ipairs(schema.required) do required[k] = true end
    assert.is_true(required.held)
    stop()
  end)
end)
