-- orket.llm.common.wire_tools with fixed_tools: the text of a whole tool list is kept by
-- its entries and reused for a list of the same entries, and joined again for any other.
local common = require "orket.llm.common"
local cjson = require "cjson"
local tools = require "orket.tools"
local H = require "tests.helpers"
local F = require "tests.fixtures"
local calls = require "tests.calls"

local function entry(name, description)
  return { name = name, description = description or name,
    parameters = { type = "object", properties = { path = { type = "string" } } } }
end

local function text_of(list)
  local body, text = common.wire_tools { tools = list, fixed_tools = true }
  assert.is_nil(body)
  return text
end

local function names_in(text)
  local out = {}
  for i, t in ipairs(cjson.decode(text)) do out[i] = t["function"].name end
  return out
end

-- table.concat's calls while f runs: a list's text is joined with it, so none means the
-- text kept for the list was given
local function joins(f) return calls(table, "concat", f) end

describe("the tools' text of a fixed tool list", function()
  after_each(H.cleanup)

  it("is reused for a fresh list of the same entries, not joined again", function()
    local a, b, c = entry("a"), entry("b"), entry("c")
    local first = text_of { a, b, c }
    assert.same({ "a", "b", "c" }, names_in(first))
    local again
    -- the engine hands a new list every turn, of the registry's same entries
    assert.equal(0, joins(function() again = text_of { a, b, c } end))
    assert.equal(first, again)
  end)

  it("is joined again for a list that differs in its entries, their order or its length", function()
    local a, b, c, d = entry("a"), entry("b"), entry("c"), entry("d")
    assert.same({ "a", "b", "c" }, names_in(text_of { a, b, c }))
    assert.same({ "a", "c", "b" }, names_in(text_of { a, c, b }))
    assert.same({ "a", "b" }, names_in(text_of { a, b }))
    assert.same({ "a", "b", "c", "d" }, names_in(text_of { a, b, c, d }))
    assert.same({ "a", "b", "d" }, names_in(text_of { a, b, d }))
    -- a list changed in place between two requests
    local list = { a, b, c }
    text_of(list)
    list[2] = d
    assert.same({ "a", "d", "c" }, names_in(text_of(list)))
    list[3] = nil
    assert.same({ "a", "d" }, names_in(text_of(list)))
    -- and each of these is still its own after the others (several lists per first entry)
    assert.same({ "a", "c", "b" }, names_in(text_of { a, c, b }))
    assert.same({ "a", "d" }, names_in(text_of { a, d }))
    -- an equal entry that is another table (a reloaded one) is not the same entry
    assert.same({ "a", "b", "x" }, names_in(text_of { a, b, entry("x") }))
  end)

  it("follows a hot reload of the registry, whose entries are new", function()
    local dir = H.tmpdir()
    local function write(description) F.note_tool(dir, description) end
    write("first words")
    local reg = assert(tools.load_dirs { H.ROOT .. "/tools", dir })
    local before = text_of(reg:specs())
    assert.matches("first words", before, 1, true)
    write("second words")
    reg = assert(tools.load_dirs { H.ROOT .. "/tools", dir })
    local after = text_of(reg:specs())
    assert.matches("second words", after, 1, true)
    assert.is_nil(after:find("first words", 1, true))
  end)

  it("gives the tables when an entry cannot be encoded, for the body's encoding to refuse", function()
    local bad = entry("bad")
    bad.parameters.properties.path.default = print
    local body, text = common.wire_tools { tools = { entry("ok"), bad }, fixed_tools = true }
    assert.is_nil(text)
    assert.equal(2, #body)
    -- and again: nothing of the list was kept
    body, text = common.wire_tools { tools = { entry("ok"), bad }, fixed_tools = true }
    assert.is_nil(text)
    assert.equal("bad", body[2]["function"].name)
  end)
end)
