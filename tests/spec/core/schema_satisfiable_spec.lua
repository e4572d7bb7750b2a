-- core/schema.c through orket.c.schema: a schema that no call can satisfy is refused when
-- it is checked (a tool's load), naming the field, rather than refusing every call; and an
-- enum's refusal lists the values it allows, whatever their type.
local cschema = require "orket.c.schema"

local function params(prop) return { type = "object", properties = { x = prop } } end

local function refused(prop)
  local ok, msg, code = cschema.check_schema(params(prop), "tools/t.lua: parameters")
  assert.is_nil(ok, "accepted")
  assert.equal("ESCHEMA", code)
  return msg
end

describe("orket.c.schema.check_schema refuses a schema no call can satisfy", function()
  it("when a lower bound is above its upper bound", function()
    assert.equal("tools/t.lua: parameters.properties.x: minimum 10 is above maximum 1, so no value is allowed",
      refused { type = "integer", minimum = 10, maximum = 1 })
    assert.equal("tools/t.lua: parameters.properties.x: minimum 0.5 is above maximum 0.25, so no value is allowed",
      refused { type = "number", minimum = 0.5, maximum = 0.25 })
    assert.equal("tools/t.lua: parameters.properties.x: minLength 5 is above maxLength 2, so no value is allowed",
      refused { type = "string", minLength = 5, maxLength = 2 })
    assert.equal("tools/t.lua: parameters.properties.x: minItems 3 is above maxItems 1, so no value is allowed",
      refused { type = "array", minItems = 3, maxItems = 1 })
    -- equal bounds allow one value
    assert.is_true(cschema.check_schema(params { type = "integer", minimum = 3, maximum = 3 }))
    -- an integer's bounds that do not cross but hold no whole number between them
    assert.equal("tools/t.lua: parameters.properties.x: no integer lies between minimum 1.5 and maximum 1.7, so no "
      .. "value is allowed", refused { type = "integer", minimum = 1.5, maximum = 1.7 })
    assert.equal("tools/t.lua: parameters.properties.x: no integer lies between minimum -1.7 and maximum -1.5, so no "
      .. "value is allowed", refused { type = { "integer" }, minimum = -1.7, maximum = -1.5 })
    -- an integer between them, or another type that fits there: taken
    assert.is_true(cschema.check_schema(params { type = "integer", minimum = 1.5, maximum = 2 }))
    assert.is_true(cschema.check_schema(params { type = "integer", minimum = 0.5, maximum = 1.5 }))
    assert.is_true(cschema.check_schema(params { type = "number", minimum = 1.5, maximum = 1.7 }))
    assert.is_true(cschema.check_schema(params { type = { "integer", "null" }, minimum = 1.5, maximum = 1.7 }))
    assert.is_true(cschema.check_schema(params { minimum = 1.5, maximum = 1.7 }))
    assert.is_true(cschema.check_schema(params { type = "string", minLength = 2, maxLength = 2 }))
  end)

  it("when an enum value is one the schema itself refuses", function()
    assert.equal("tools/t.lua: parameters.properties.x.enum[1]: expected string, got integer; the schema refuses "
      .. "this value of its own enum, so no call can send it", refused { type = "string", enum = { 1, 2 } })
    assert.equal("tools/t.lua: parameters.properties.x.enum[2]: expected integer, got number; the schema refuses "
      .. "this value of its own enum, so no call can send it", refused { type = "integer", enum = { 1, 2.5 } })
    assert.matches("parameters.properties.x.enum[2]: string of 6 characters is longer than the limit of 3 characters;",
      refused { type = "string", enum = { "ab", "abcdef" }, maxLength = 3 }, 1, true)
    assert.matches("parameters.properties.x.enum[1]: must be at least 5;", refused { type = "integer", enum = { 1 }, minimum = 5 },
      1, true)
    assert.equal("tools/t.lua: parameters.properties.x.enum[1]: an enum value is a string, a number, a boolean or "
      .. "null; no argument equals a list", refused { enum = { { 1 } } })
    -- values of the types it allows, within its bounds, are fine
    assert.is_true(cschema.check_schema(params { type = "integer", enum = { 1, 2 } }))
    assert.is_true(cschema.check_schema(params { type = { "string", "boolean" }, enum = { "a", true } }))
    assert.is_true(cschema.check_schema(params { enum = { "a", 1, false } }))
  end)

  it("when its default is one it refuses", function()
    assert.equal("tools/t.lua: parameters.properties.x.default: expected integer, got string; the schema refuses its "
      .. "own default", refused { type = "integer", default = "five" })
    assert.equal("tools/t.lua: parameters.properties.x.default: must be one of \"a\", \"b\"; the schema refuses its "
      .. "own default", refused { type = "string", enum = { "a", "b" }, default = "c" })
    assert.equal("tools/t.lua: parameters.properties.x.default.a: expected integer, got string; the schema refuses "
      .. "its own default", refused { type = "object", properties = { a = { type = "integer" } }, default = { a = "x" } })
    assert.is_true(cschema.check_schema(params { type = "integer", default = 5, minimum = 1 }))
  end)

  it("when a format is on a type it never applies to", function()
    assert.equal("tools/t.lua: parameters.properties.x.format: \"path\" applies to strings and lists of strings, not "
      .. "to integer", refused { type = "integer", format = "path" })
    assert.equal("tools/t.lua: parameters.properties.x.format: \"content\" applies to strings, not to array or object",
      refused { type = { "array", "object" }, format = "content" })
    assert.is_true(cschema.check_schema(params { type = "array", items = { type = "string" }, format = "path" }))
    -- a list, but of items that are never strings: the gate reads none of them as a path
    assert.equal("tools/t.lua: parameters.properties.x.format: \"path\" applies to strings and lists of strings, not "
      .. "to array of integer", refused { type = "array", items = { type = "integer" }, format = "path" })
    assert.equal("tools/t.lua: parameters.properties.x.format: \"path\" applies to strings and lists of strings, not "
      .. "to array of integer or boolean", refused { type = "array", items = { type = { "integer", "boolean" } },
        format = "path" })
    -- items that may be strings (no type says otherwise): taken
    assert.is_true(cschema.check_schema(params { type = "array", items = { type = { "integer", "string" } },
      format = "path" }))
    assert.is_true(cschema.check_schema(params { type = "array", items = { maxLength = 9 }, format = "path" }))
    assert.is_true(cschema.check_schema(params { type = "array", format = "path" }))
    assert.is_true(cschema.check_schema(params { type = { "string", "null" }, format = "content" }))
    assert.is_true(cschema.check_schema(params { format = "status" }))
  end)

  -- a call's arguments nest at most 8 levels (the validator's default max_depth), so a
  -- schema's level below that is one every call reaching it is refused at
  it("when it nests deeper than any call's arguments may", function()
    local function deep(n, step)
      local s = { type = "string" }
      for _ = 1, n do s = step(s) end
      return s
    end
    local function prop(s) return { type = "object", properties = { a = s } } end
    local function list(s) return { type = "array", items = s } end
    assert.is_true(cschema.check_schema(deep(8, prop)))
    assert.is_true(cschema.check_schema(deep(8, list)))
    local cut = "schema nested deeper than 8 levels: a call's arguments nest at most 8 levels, so none could reach it"
    assert.equal("parameters" .. string.rep(".properties.a", 9) .. ": " .. cut, select(2, cschema.check_schema(deep(9, prop))))
    assert.equal("parameters" .. string.rep(".items", 9) .. ": " .. cut, select(2, cschema.check_schema(deep(9, list))))
    -- the cap is the validator's: a value at the deepest level the check allows is taken,
    -- one level deeper is not
    local v = "x"
    for _ = 1, 8 do v = { v } end
    assert.is_true(cschema.validate(deep(8, list), v))
    assert.matches("nested deeper than 8 levels", select(2, cschema.validate(deep(9, list), { v })), 1, true)
  end)
end)

describe("orket.c.schema.validate's refusal of a value outside an enum", function()
  it("lists the allowed values as JSON writes them, whatever their type", function()
    local function said(schema, v) return select(2, cschema.validate(schema, v)) end
    assert.equal("args.x: must be one of 1, 2", said(params { type = "integer", enum = { 1, 2 } }, { x = 3 }))
    assert.equal("args: must be one of 0.5, -3, 1e+20", said({ type = "number", enum = { 0.5, -3, 1e20 } }, 7))
    assert.equal('args: must be one of true, false, "a\\"b\\n", 7', said({ enum = { true, false, "a\"b\n", 7 } }, 5))
    -- a long string is cut at 40 bytes, never inside a character
    assert.equal('args: must be one of "' .. string.rep("é", 20) .. '"', said({ enum = { string.rep("é", 30) } }, 5))
    -- many values: as many as fit, then ", ..."
    local many = {}
    for i = 1, 100 do many[i] = i * 1000000 end
    local msg = said({ type = "integer", enum = many }, 5)
    assert.matches("^args: must be one of 1000000, 2000000, .*, %.%.%.$", msg)
    assert.is_true(#msg < 300)
  end)
end)
