-- Scripts whose tables carry metamethods that never return (__index, __pairs, __len,
-- __tostring, __eq), or that share one table so often that a copy would never end: the host
-- reads what scripts return raw (orket.c.plain), so validate, run and a run's hot reload
-- finish with an error naming the file. Each command runs under `timeout`: a host that
-- runs such a metamethod outside the script's budget fails the test (124) instead of hanging.
local H = require "tests.helpers"
local F = require "tests.fixtures"

local LOOP = "local function loop() while true do end end\n"
-- A table 2^30 tables wide when copied, a few hundred bytes in the script.
local WIDE = "local function wide() local t = {} for i = 1, 30 do t = { t, t } end return t end\n"

-- target, text, what the refusal says after "target[:line]: "
local CASES = {
  { "roles/coder.lua", LOOP .. [[return { intent = "x", system = "s",
  tools = setmetatable({}, { __index = loop, __len = loop, __pairs = loop, __eq = loop }) }
]], "tools: a table with a metatable" },
  { "roles/tester.lua", LOOP .. [[return { intent = "x", system = "s", tools = {},
  [setmetatable({}, { __tostring = loop, __eq = loop })] = 1 }
]], "key of type table" },
  { "tools/extra.lua", LOOP .. [[return setmetatable({ name = "extra", description = "d", effect = "read",
  handler = function() return {} end }, { __index = loop, __pairs = loop, __len = loop })
]], "a table with a metatable" },
  { "tools/params.lua", LOOP .. [[return { name = "params", description = "d", effect = "read",
  handler = function() return {} end,
  parameters = { type = "object", properties = setmetatable({}, { __index = loop, __pairs = loop }) } }
]], "parameters.properties: a table with a metatable" },
  { "routing.lua", LOOP .. [[return setmetatable({}, { __pairs = loop, __index = loop, __tostring = loop })
]], "a table with a metatable" },
  { "policies/extra.lua", LOOP .. [[deny(setmetatable({ tool = "write_file" }, { __pairs = loop, __index = loop }))
]], "deny: value: a table with a metatable" },
}

local function project() return F.initialized { "roles", "tools", "policies" } end

local function pat(s) return (s:gsub("%p", "%%%0")) end
local function refusal(c) return pat(c[1]) .. "[:%d]*: " .. pat(c[3]) end

describe("a script whose tables run forever through metamethods", function()
  after_each(H.cleanup)

  it("is reported by validate (all of them) and refused by run, naming the file", function()
    local p = project()
    for _, c in ipairs(CASES) do H.write(p .. "/" .. c[1], c[2]) end
    local v = H.orket("validate", { cwd = p, wrap = "timeout 60" })
    assert.equal(1, v.status, v.stdout .. v.stderr)
    for _, c in ipairs(CASES) do assert.matches(refusal(c), v.stdout) end
    for _, c in ipairs(CASES) do
      for _, o in ipairs(CASES) do os.remove(p .. "/" .. o[1]) end
      H.write(p .. "/" .. c[1], c[2])
      local r = H.orket("run START", { cwd = p, wrap = "timeout 60" })
      assert.equal(1, r.status, c[1] .. ": " .. r.stderr)
      assert.matches(refusal(c), r.stderr)
    end
  end)

  it("in orket.lua or a Lua epic, a table shared too often is refused by name", function()
    local p = project()
    local orig = H.read(p .. "/orket.lua")
    H.write(p .. "/orket.lua", orig .. WIDE .. "limits = wide()\n")
    for _, cmd in ipairs { "validate", "run START" } do
      local r = H.orket(cmd, { cwd = p, wrap = "timeout 60" })
      assert.equal(1, r.status, cmd)
      assert.matches("orket%.lua:%d+: limits[%[%]%d]*: more than 1000000 values", r.stdout .. r.stderr)
    end
    H.write(p .. "/orket.lua", orig)
    H.write(p .. "/epics/wide.lua", WIDE .. "return { id = 'W', summary = 's', issues = wide() }\n")
    for _, cmd in ipairs { "validate", "import" } do
      local r = H.orket(cmd, { cwd = p, wrap = "timeout 60" })
      assert.equal(1, r.status, cmd)
      assert.matches("epics/wide%.lua[:%d]*: issues[%[%]%d]*: more than 1000000 values", r.stdout .. r.stderr)
    end
  end)

  it("left by a role's system(ctx) in its ctx, runs under the role's budget: the card is blocked", function()
    local p = project()
    H.write(p .. "/roles/coder.lua", LOOP .. [[return { intent = "x", tools = { "update_issue_status" },
  system = function(ctx)
    ctx.card = setmetatable({}, { __index = loop })
    return "You are a coder."
  end }
]])
    assert.equal(0, H.orket("import", { cwd = p }).status)
    -- KILL: a host running the loop ignores SIGTERM (it is handled on the loop)
    local r = H.orket("run START-1 --json", { cwd = p, wrap = "timeout -s KILL 60" })
    assert.equal(1, r.status, r.stderr) -- the run fails (its card is blocked), it is not killed (137)
    assert.matches('"outcome":"role_error"', r.stdout, 1, true)
    assert.matches("roles/coder.lua: building the messages from the ctx system%(ctx%) left: [^\n]*instruction budget",
      r.stdout)
  end)

  it("is refused by a run's hot reload, which keeps the old set while the run goes on", function()
    local p = project()
    assert.equal(0, H.orket("import", { cwd = p }).status)
    local list = {}
    for _, c in ipairs(CASES) do list[#list + 1] = string.format("{ %q, %q }", c[1], c[2]) end
    H.write(p .. "/drive.lua", "local CASES = { " .. table.concat(list, ",\n") .. " }\n" .. [==[
local setup = require "orket.engine.setup"
local reload = require "orket.engine.reload"
local e = assert(setup.open(".", {}))
local done = false
local chat = e.llm.chat
e.llm.chat = function(client, req)
  if not done then
    done = true
    for i, c in ipairs(CASES) do
      local before = e.roles
      local f = assert(io.open(c[1], "wb"))
      f:write(c[2])
      f:close()
      local ok, err = reload.apply(e, { [c[1]] = true })
      print(string.format("CASE %d %s %s %s", i, tostring(ok), tostring(before == e.roles), tostring(err)))
      os.remove(c[1])
    end
  end
  return chat(client, req)
end
print("STATUS", e:execute(assert(e:start("START"))))
e.close_all()
]==])
    local r = H.orket("lua drive.lua", { cwd = p, wrap = "timeout 120" })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local seen = 0
    for i, ok, kept, err in r.stdout:gmatch("CASE (%d+) (%S+) (%S+) ([^\n]*)") do
      seen = seen + 1
      local c = CASES[tonumber(i)]
      assert.equal("nil", ok, c[1])
      assert.equal("true", kept, c[1])
      assert.matches("^" .. refusal(c), err)
    end
    assert.equal(#CASES, seen)
    assert.matches("STATUS\tdone", r.stdout)
  end)
end)
