-- orket.c.schema, the binding of core/schema.c: validate and check_schema answer true or
-- nil, msg, "ESCHEMA"; a value that is not plain data fails the same way, a schema that is
-- not raises, and misuse raises naming the argument.
local cschema = require "orket.c.schema"

local SCHEMA = { type = "object", properties = { path = { type = "string", maxLength = 3 } }, required = { "path" } }

describe("orket.c.schema.validate", function()
  it("accepts a value the schema allows", function()
    assert.is_true(cschema.validate(SCHEMA, { path = "abc" }))
  end)

  it("refuses one it does not with nil, msg, ESCHEMA", function()
    local ok, msg, code = cschema.validate(SCHEMA, { path = "abcd" })
    assert.is_nil(ok)
    assert.equal("args.path: string of 4 bytes is longer than the limit of 3", msg)
    assert.equal("ESCHEMA", code)
    ok, msg, code = cschema.validate(SCHEMA, { path = "a", x = 1 })
    assert.is_nil(ok)
    assert.matches("^args%.x: unknown argument", msg)
    assert.equal("ESCHEMA", code)
  end)

  it("refuses a value that is not plain data, and one past the caller's limits", function()
    assert.same({ nil, "args.path: functions, userdata and threads are not plain data", "ESCHEMA" },
      { cschema.validate(SCHEMA, { path = print }) })
    local ok, msg = cschema.validate(SCHEMA, { path = "a" }, { max_depth = 0 })
    assert.is_nil(ok)
    assert.matches("^args%.path: nested deeper than 0 levels", msg)
  end)

  it("raises on misuse and on a schema that is not plain data", function()
    assert.has_error(function() cschema.validate("x", {}) end, "bad argument #1 to 'validate' (table expected, got string)")
    assert.has_error(function() cschema.validate(SCHEMA) end, "bad argument #2 to 'validate' (value expected)")
    assert.has_error(function() cschema.validate(SCHEMA, {}, 5) end, "bad argument #3 to 'validate' (table expected, got number)")
    assert.has_error(function() cschema.validate({ type = "object", f = print }, {}) end,
      "bad schema (schema.f: functions, userdata and threads are not plain data)")
  end)
end)

describe("orket.c.schema.check_schema", function()
  it("accepts a schema of the supported subset and names the field of one that is not", function()
    assert.is_true(cschema.check_schema(SCHEMA))
    assert.same({ nil, "tools/x.lua: parameters.type: unknown type 'nope'", "ESCHEMA" },
      { cschema.check_schema({ type = "nope" }, "tools/x.lua: parameters") })
    assert.same({ nil, "parameters.f: functions, userdata and threads are not plain data", "ESCHEMA" },
      { cschema.check_schema { type = "object", f = print } })
  end)

  it("raises on misuse", function()
    assert.has_error(function() cschema.check_schema() end, "bad argument #1 to 'check_schema' (value expected)")
  end)
end)
