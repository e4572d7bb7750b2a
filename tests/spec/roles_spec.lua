-- orket.engine.roles.messages: what a role script sees of ctx. The context is a fresh copy
-- except the tools' parameter schemas, which are read-only views of the registry's own.
local H = require "tests.helpers"
local cjson = require "cjson"
local roles = require "orket.engine.roles"
local tools = require "orket.tools"
local schemas = require "orket.engine.schemas"

local function registry()
  return assert(tools.load_dirs { require("orket.c.runtime").home() .. "/tools" })
end

local function role(src)
  local dir = H.tmpdir()
  H.write(dir .. "/r.lua", src)
  return assert(roles.load_file(dir .. "/r.lua"))
end

local function ctx(reg)
  return { card = { id = "E-1", summary = "s", depends_on = { "E-0" } }, deps = {}, comments = {},
    memory = {}, history = {}, seat = "dev", role = "r", phase = "work", turn = 1,
    tools = reg:specs { "write_file", "update_issue_status" }, project = { name = "p" } }
end

describe("roles.messages", function()
  after_each(H.cleanup)

  it("lets a role read the tools' schemas through pairs, ipairs, # and nesting", function()
    local r = role([[return { intent = "x", tools = {}, build = function(ctx)
      local out = {}
      for _, t in ipairs(ctx.tools) do
        local keys = {}
        for k in pairs(t.parameters.properties) do keys[#keys + 1] = k end
        table.sort(keys)
        out[#out + 1] = t.name .. "=" .. table.concat(keys, ",") .. ";" .. #t.parameters.required
          .. ";" .. t.parameters.type
      end
      return { { role = "system", content = table.concat(out, " ") } }
    end }]])
    local msgs = assert(roles.messages(r, ctx(registry())))
    assert.equal("write_file=content,path;2;object update_issue_status=note,status,wait_reason;1;object",
      msgs[1].content)
  end)

  it("refuses writes to a schema and leaves the registry's untouched", function()
    local reg = registry()
    local r = role([[return { intent = "x", tools = {}, build = function(ctx)
      ctx.tools[1].parameters.properties.path = nil
      return { { role = "system", content = "x" } }
    end }]])
    local msgs, err, code = roles.messages(r, ctx(reg))
    assert.is_nil(msgs)
    assert.matches("read%-only table", err)
    assert.equal("ERUNTIME", code)
    assert.is_table(reg:get("write_file").parameters.properties.path)
    -- rawset and setmetatable cannot get around it either
    for _, body in ipairs { "rawset(ctx.tools[1].parameters, 'type', 'x')",
      "setmetatable(ctx.tools[1].parameters, {})", "getmetatable(ctx.tools[1].parameters).__index = 1" } do
      local r2 = role("return { intent = 'x', tools = {}, build = function(ctx) " .. body
        .. " return { { role = 'system', content = 'x' } } end }")
      assert.is_nil((roles.messages(r2, ctx(reg))), body)
    end
    assert.equal("object", reg:get("write_file").parameters.type)
  end)

  it("gives a fresh copy of everything else, every call", function()
    local reg = registry()
    local r = role([[return { intent = "x", tools = {}, build = function(ctx)
      local seen = ctx.card.summary .. "/" .. #ctx.tools .. "/" .. tostring(ctx.tools[1].mark)
      ctx.card.summary = "changed"
      ctx.card.depends_on[1] = "X"
      ctx.tools[1].mark = true
      ctx.tools[1].name = "renamed"
      table.insert(ctx.tools, { name = "more" })
      return { { role = "system", content = seen } }
    end }]])
    local c = ctx(reg)
    assert.equal("s/2/nil", assert(roles.messages(r, c))[1].content)
    assert.equal("s/2/nil", assert(roles.messages(r, c))[1].content)
    assert.equal("s", c.card.summary)
    assert.equal("E-0", c.card.depends_on[1])
    assert.equal("write_file", c.tools[1].name)
    assert.equal(2, #c.tools)
  end)

  it("writes the whole schema into the json dialect's tool instructions", function()
    local reg = registry()
    local r = role([[return { intent = "x", tools = {}, dialect = "json", system = "sys" }]])
    local msgs = assert(roles.messages(r, ctx(reg)))
    local want = cjson.encode(reg:get("update_issue_status").parameters)
    assert.truthy(msgs[1].content:find(want, 1, true))
    assert.truthy(want:find('"required"', 1, true))
  end)

  it("schemas.plain rebuilds a part of a view and passes other values through", function()
    local reg = registry()
    local p = reg:get("update_issue_status").parameters
    local v = schemas.view(p)
    assert.equal(p, schemas.plain(v))
    assert.same(p.properties.status, schemas.plain(v.properties.status))
    local t = {}
    assert.equal(t, schemas.plain(t))
    assert.equal(3, schemas.plain(3))
  end)
end)
