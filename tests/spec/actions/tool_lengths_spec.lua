-- The built-in tools' maxLength counts characters (core/schema.c, as JSON Schema does), and a
-- character is up to 4 bytes: every string a tool's schema takes must then also fit the byte
-- limit that meets it later (docs/tools.md, "Parameter schemas"), or the model is refused
-- for a value within the limit it was shown.
local cschema = require "orket.c.schema"
local cgate = require "orket.c.gate"
local checks = require "orket.actions.sandbox_checks"
local H = require "tests.helpers"

local function params(name) return dofile(H.ROOT .. "/tools/" .. name .. ".lua").parameters end

local FOUR = "\u{1F510}" -- one character of 4 bytes

describe("the built-in tools' string lengths", function()
  it("take no path longer than the 4095 bytes the file system's paths may have", function()
    for _, t in ipairs { { "read_file", "path" }, { "write_file", "path" }, { "list_directory", "path" },
      { "create_directory", "path" }, { "delete_file", "path" }, { "move_file", "from" }, { "move_file", "to" },
      { "search_files", "path" } } do
      local schema = params(t[1]).properties[t[2]]
      local most = string.rep(FOUR, schema.maxLength)
      assert.is_true(cschema.validate(schema, most), t[1])
      assert.is_true(#most <= 4095, t[1] .. "." .. t[2] .. " takes " .. #most .. " bytes")
      assert.is_nil((cschema.validate(schema, most .. "a")))
    end
  end)

  it("take no search_files glob the gate's glob cannot take (512 bytes)", function()
    local schema = params("search_files").properties.glob
    local most = string.rep(FOUR, schema.maxLength)
    assert.is_true(cschema.validate(schema, most))
    assert.is_false(cgate.glob(most, "a.txt"))
    local over = most .. FOUR
    assert.matches("string of %d+ characters is longer than the limit", select(2, cschema.validate(schema, over)))
    assert.has_error(function() cgate.glob(over, "a.txt") end)
  end)

  it("take no http_request path or body an HTTP check refuses", function()
    local p = params("http_request").properties
    local path = "/" .. string.rep(FOUR, p.path.maxLength - 1)
    local body = string.rep(FOUR, p.body.maxLength)
    assert.is_true(cschema.validate(p.path, path))
    assert.is_true(cschema.validate(p.body, body))
    local c, field, err = checks.normalize { http = { path = path, body = body } }
    assert.is_table(c, tostring(field) .. ": " .. tostring(err))
  end)
end)
