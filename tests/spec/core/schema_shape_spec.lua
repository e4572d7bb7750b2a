-- What the gate holds a schema it did not check in full to (schema_check_shape, at
-- compile_schema and at check's and measure's table schemas): properties an object,
-- required a list of names, each count keyword a non-negative whole number. A JSON
-- decoder's counts are floats (5.0): they are bounds all the same.
local cjson = require "cjson"
local gate = require "orket.c.gate"
local cschema = require "orket.c.schema"
local client = require "orket.mcp.client"

local function check(schema, args)
  return gate.check { tool = "t", tool_known = true, schema = schema, args = args }
end

describe("gate.compile_schema", function()
  -- a list has no keys and a string's length is no key count: check read past them
  it("refuses properties that is a list or a string, naming the field", function()
    for _, props in ipairs { { "a", "b" }, "abc" } do
      local ok, err = pcall(gate.compile_schema, { type = "object", properties = props })
      assert.is_false(ok)
      assert.matches("^inputSchema%.properties: must be an object of schemas, got ", err)
      ok, err = pcall(check, { type = "object", properties = props }, { zz = 1 })
      assert.is_false(ok)
      assert.matches("schema%.properties: must be an object of schemas", err)
    end
    local ok, err = pcall(gate.compile_schema, { type = "object", properties = { x = { type = "object", properties = "s" } } })
    assert.is_false(ok)
    assert.matches("^inputSchema%.properties%.x%.properties: must be an object of schemas, got string", err)
    -- validate, which no shape check precedes, refuses rather than reads past it
    local vok, msg = cschema.validate({ type = "object", properties = { "a" } }, { zz = 1 })
    assert.is_nil(vok)
    assert.matches("properties is not an object", msg)
  end)

  it("refuses a required that is not a list of names", function()
    local ok, err = pcall(gate.compile_schema, { type = "object", properties = { a = {} }, required = { false } })
    assert.is_false(ok)
    assert.matches("^inputSchema%.required%[1%]: must be a property name %(a string%), got boolean", err)
    ok, err = pcall(gate.compile_schema, { type = "object", required = "a" })
    assert.is_false(ok)
    assert.matches("^inputSchema%.required: must be a list of property names, got string", err)
  end)

  -- a negative count cast to a size lifted the 1 MiB and 256-item caps
  it("refuses a negative or fractional count, naming it", function()
    for kw, v in pairs { maxLength = -1, minLength = -1, maxItems = -1.0, minItems = 2.5 } do
      local ok, err = pcall(gate.compile_schema, { type = "object", properties = { s = { [kw] = v } } })
      assert.is_false(ok)
      assert.equal("inputSchema.properties.s." .. kw .. ": must be a non-negative integer, got "
        .. (v == 2.5 and "2.5" or "-1"), err)
    end
    assert.same({ nil, "parameters.maxLength: must be a non-negative integer, got -1", "ESCHEMA" },
      { cschema.check_schema { type = "string", maxLength = -1 } })
  end)
end)

-- A Go server's nil map is "properties": null: the shape check took it as not sent, but the
-- validator read it as an empty list and refused every argument as unknown
describe("an MCP server's \"properties\": null", function()
  it("is properties not sent: any argument is taken, as with none", function()
    local kept, refused = client.tools_of(cjson.decode('[{"name":"t","inputSchema":{"type":"object","properties":null}},'
      .. '{"name":"u","inputSchema":{"type":"object"}}]'))
    assert.equal(0, #refused)
    assert.equal(2, #kept)
    for _, tool in ipairs(kept) do
      local r = check(tool.compiled, cjson.decode('{"x":1,"y":{"z":"a"}}'))
      assert.equal("allow", r.verdict, tool.name .. ": " .. tostring(r.reason))
    end
    -- validate, with no shape check before it, reads it the same way
    assert.is_true(cschema.validate(cjson.decode('{"type":"object","properties":null}'), { x = 1 }))
    -- an additionalProperties false beside it still refuses what it lists not
    local r = check(gate.compile_schema(cjson.decode('{"type":"object","properties":null,"additionalProperties":false}')),
      { x = 1 })
    assert.equal("deny", r.verdict)
    assert.equal("t: args.x: unknown argument; this tool accepts only the parameters its schema lists", r.reason)
  end)
end)

describe("an MCP server's counts (floats, from JSON)", function()
  local TOOLS = '[{"name":"t","description":"d","inputSchema":{"type":"object","properties":'
    .. '{"s":{"type":"string","maxLength":5},"n":{"type":"array","maxItems":1},"m":{"type":"string","minLength":3},'
    .. '"k":{"type":"array","minItems":2}},"required":["s"]}}]'

  it("are checked as the bounds they are", function()
    local kept = client.tools_of(cjson.decode(TOOLS))
    assert.equal(1, #kept)
    local c = kept[1].compiled
    for args, why in pairs {
      ['{"s":"0123456789"}'] = "t: args.s: string of 10 characters is longer than the limit of 5 characters",
      ['{"s":"a","n":[1,2,3]}'] = "t: args.n: 3 items, more than the limit of 1",
      ['{"s":"a","m":""}'] = "t: args.m: string of 0 characters is shorter than the minimum of 3 characters",
      ['{"s":"a","k":[1]}'] = "t: args.k: fewer than 2 items",
    } do
      local r = check(c, cjson.decode(args))
      assert.equal("deny", r.verdict, args)
      assert.equal(why, r.reason)
    end
    assert.equal("allow", check(c, cjson.decode('{"s":"abcde","n":[1],"m":"abc","k":[1,2]}')).verdict)
  end)

  it("refuse the tool when negative or fractional, naming the field", function()
    local kept, refused = client.tools_of(cjson.decode('[{"name":"t","inputSchema":{"type":"object",'
      .. '"properties":{"s":{"type":"string","maxLength":-1}}}},{"name":"u","inputSchema":{"type":"object",'
      .. '"properties":{"l":{"type":"array","maxItems":1.5}}}}]'))
    assert.equal(0, #kept)
    local why = {}
    for _, f in ipairs(refused) do why[f.name] = f.why end
    assert.matches("inputSchema%.properties%.s%.maxLength: must be a non%-negative integer, got %-1", why.t)
    assert.matches("inputSchema%.properties%.l%.maxItems: must be a non%-negative integer, got 1%.5", why.u)
  end)
end)
