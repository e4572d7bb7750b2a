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
    assert.equal("args.path: string of 4 characters is longer than the limit of 3 characters", msg)
    assert.equal("ESCHEMA", code)
    ok, msg, code = cschema.validate(SCHEMA, { path = "a", x = 1 })
    assert.is_nil(ok)
    assert.matches("^args%.x: unknown argument", msg)
    assert.equal("ESCHEMA", code)
  end)

  -- the value is JSON (a request's body, a model's or client's call): its items are counted
  -- from 0, as import counts a JSON file's (the second entry was said as [2])
  it("names an array's item by its index from 0", function()
    local list = { type = "object", properties = { ids = { type = "array", items = { type = "string" } } } }
    assert.same({ nil, "args.ids[1]: expected string, got integer", "ESCHEMA" },
      { cschema.validate(list, { ids = { "a", 5 } }) })
  end)

  -- an infinity is a number to Lua and to a JSON reader that takes 1e999: refused as not
  -- finite (it was "expected number, got number")
  it("names an infinity or NaN as not a finite number", function()
    local num = { type = "object", properties = { ratio = { type = "number" } } }
    assert.same({ nil, "args.ratio: expected number, got infinity (not a finite number)", "ESCHEMA" },
      { cschema.validate(num, { ratio = math.huge }) })
    assert.same({ nil, "args.ratio: expected number, got -infinity (not a finite number)", "ESCHEMA" },
      { cschema.validate(num, { ratio = -math.huge }) })
  end)

  -- JSON Schema counts characters (code points), and so do the models, MCP clients and the
  -- OpenAPI document that read these schemas: a Japanese summary of 72 characters (216
  -- bytes) is within create_issue's maxLength of 200
  it("counts maxLength and minLength in characters, not bytes", function()
    local params = dofile("tools/create_issue.lua").parameters
    assert.is_true(cschema.validate(params, { summary = string.rep("ログイン画面", 12) }))
    assert.same({ nil, "args.summary: string of 201 characters is longer than the limit of 200 characters", "ESCHEMA" },
      { cschema.validate(params, { summary = string.rep("日", 201) }) })
    assert.is_true(cschema.validate(SCHEMA, { path = "🔐é日" }))
    assert.same({ nil, "args: string of 1 character is shorter than the minimum of 2 characters", "ESCHEMA" },
      { cschema.validate({ type = "string", minLength = 2 }, "🔐") })
    -- bytes that are not UTF-8 count at most 4 to a character: within maxLength is within
    -- 4 * maxLength bytes
    assert.is_true(cschema.validate(SCHEMA, { path = string.rep("\x80", 12) }))
    assert.same({ nil, "args.path: string of 4 characters is longer than the limit of 3 characters", "ESCHEMA" },
      { cschema.validate(SCHEMA, { path = string.rep("\x80", 13) }) })
    -- a string without maxLength is held to the caller's cap in bytes
    assert.same({ nil, "args: string of 6 bytes is longer than the limit of 4 bytes", "ESCHEMA" },
      { cschema.validate({ type = "string" }, "ééé", { max_string = 4 }) })
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

describe("additionalProperties", function()
  local cgate = require "orket.c.gate"
  local function with(ap) return { type = "object", properties = { a = { type = "string" } }, additionalProperties = ap } end

  it("reads a boolean as it names and a schema as JSON Schema does: each extra checked against it", function()
    assert.is_true(cschema.validate(with(true), { b = 1 }))
    assert.matches("^args%.b: unknown argument", select(2, cschema.validate(with(false), { b = 1 })))
    -- {} allows any extra; an object schema checks each one (it used to let any through)
    assert.is_true(cschema.validate(with({}), { b = "x", c = { 1, 2 } }))
    assert.is_true(cschema.validate(with({ type = "string" }), { a = "x", b = "y" }))
    assert.same({ nil, "args.b: expected string, got integer", "ESCHEMA" },
      { cschema.validate(with({ type = "string" }), { b = 1 }) })
    assert.same({ nil, "args.c.d: expected integer, got string", "ESCHEMA" },
      { cschema.validate(with({ type = "object", additionalProperties = { type = "integer" } }), { c = { d = "x" } }) })
    -- the listed ones keep their own schema
    assert.same({ nil, "args.a: expected string, got integer", "ESCHEMA" },
      { cschema.validate(with({ type = "integer" }), { a = 1 }) })
    -- absent: listed properties mean only those; no properties at all means any
    assert.is_nil(cschema.validate({ type = "object", properties = { a = { type = "string" } } }, { b = 1 }))
    assert.is_true(cschema.validate({ type = "object" }, { anything = { 1, 2, { deep = true } }, more = "x" }))
    -- anything else allows no extra, whatever the value's bits
    assert.is_nil(cschema.validate(with("yes"), { b = 1 }))
    assert.is_nil(cschema.validate(with(1), { b = 1 }))
  end)

  it("is refused at compile time when neither a boolean nor a schema, naming the field", function()
    assert.is_true(cschema.check_schema(with({ type = "string" })))
    assert.is_true(cschema.check_schema(with({})))
    assert.same({ nil, "parameters: additionalProperties must be a boolean or a schema", "ESCHEMA" },
      { cschema.check_schema(with("yes")) })
    assert.same({ nil, "parameters.additionalProperties.type: unknown type 'nope'", "ESCHEMA" },
      { cschema.check_schema(with({ type = "nope" })) })
    -- a schema from elsewhere (an MCP server's): compile_schema refuses only what the
    -- validator would read looser than it says
    assert.has_no.errors(function() cgate.compile_schema(with({ type = "string" })) end)
    assert.has_error(function() cgate.compile_schema(with("yes")) end,
      "inputSchema.additionalProperties: must be a boolean or a schema, got string")
    assert.has_error(function()
      cgate.compile_schema { type = "object", properties = { x = { type = "array", items = { additionalProperties = 1 } } } }
    end, "inputSchema.properties.x.items.additionalProperties: must be a boolean or a schema, got integer")
  end)
end)
