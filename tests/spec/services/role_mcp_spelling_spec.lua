-- A role naming an MCP server's tool as the server spells it (SERVER__get-sum, with a - or a
-- .) names no tool: Orket's name for it is SERVER__get_sum (orket.mcp.client.orket_spelling).
-- It is refused when the role loads, and by orket validate, with the file, tools[i] and the
-- spelling to write (docs/roles.md, docs/mcp.md), not found missing at its first call.
local H = require "tests.helpers"
local roles = require "orket.engine.roles"

describe("a role naming a tool with a - or a .", function()
  after_each(H.cleanup)

  local function load(tools_src)
    local dir = H.tmpdir()
    H.write(dir .. "/r.lua", "return { intent = 'x', system = 's', tools = " .. tools_src .. " }")
    return dir .. "/r.lua", roles.load_file(dir .. "/r.lua")
  end

  it("is refused when the role loads, with its place and Orket's spelling of it", function()
    local file, r, err, code, problems = load [[{ "read_file", "everything__get-sum" }]]
    assert.is_nil(r)
    assert.equal("EINVAL", code)
    assert.equal(file .. ': tools[2]: no tool is named "everything__get-sum": Orket names the MCP server everything\'s '
      .. 'tool get-sum everything__get_sum (a - or . reads _): write "everything__get_sum"', err)
    assert.same({ err }, problems)
    _, r, err = load [[{ "files__admin.tools-list" }]]
    assert.is_nil(r)
    assert.matches(': tools%[1%]: no tool is named "files__admin%.tools%-list": .* write "files__admin_tools_list"$', err)
    -- not a server's: the one spelling a tool's name could have
    _, r, err = load [[{ "read-file" }]]
    assert.is_nil(r)
    assert.matches(': tools%[1%]: no tool is named "read%-file": a tool\'s name is letters, digits and _ %(an MCP '
      .. 'tool\'s %- or %. reads _%): write "read_file"$', err)
  end)

  it("is loaded in Orket's spelling", function()
    local _, r, err = load [[{ "read_file", "everything__get_sum", "files__admin_tools_list" }]]
    assert(r, err)
    assert.same({ "read_file", "everything__get_sum", "files__admin_tools_list" }, r.tools)
  end)

  it("is said once by a half-read role, not again as a tool that is not there", function()
    local _, r, _, _, problems, half = load [[{ "ok_tool", "s__a-b", 42 }]]
    assert.is_nil(r)
    assert.equal(2, #problems)
    assert.same({ "ok_tool", false, 42 }, half.tools)
  end)
end)

describe("orket validate on a role naming a server's tool in the server's spelling", function()
  after_each(H.cleanup)

  it("says it once, with the file's line and the spelling to write, the server up or down", function()
    local bin = H.BIN:find("asan", 1, true) and H.ROOT .. "/build/orket" or H.BIN
    local exe = io.open(bin, "rb")
    if not exe then return pending("the server fixture needs the release build, " .. bin .. " (make)") end
    exe:close()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/roles"))
    -- h lists get-sum (Orket's h__get_sum); down never starts, so its names are taken on
    -- trust: the spelling is what is refused, not an unknown tool
    H.write(dir .. "/orket.lua", string.format([[
name = "spelling"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
mcp = { servers = {
  h = { command = { %q, "lua", %q, "tool=get-sum" }, read_only = { %q } },
  down = { command = { "/nonexistent/server" } },
} }
]], bin, H.ROOT .. "/tests/mcp/hostile_server.lua", H.ROOT))
    H.write(dir .. "/script.lua", "return { rules = {}, default = { content = 'done' } }\n")
    local function role(tools)
      H.write(dir .. "/roles/coder.lua", "return { intent = 'Call the tools.',\n  tools = { " .. tools
        .. " },\n  system = 'You code.' }\n")
    end
    role [["update_issue_status", "h__get-sum", "down__x.y"]]
    local v = H.orket("validate", { cwd = dir })
    assert.equal(1, v.status, v.stdout .. v.stderr)
    assert.matches('roles/coder.lua:2: tools[2]: no tool is named "h__get-sum": Orket names the MCP server h\'s tool '
      .. 'get-sum h__get_sum (a - or . reads _): write "h__get_sum"\n', v.stdout, 1, true)
    assert.matches('roles/coder.lua:2: tools[3]: no tool is named "down__x.y": Orket names the MCP server down\'s '
      .. 'tool x.y down__x_y (a - or . reads _): write "down__x_y"\n', v.stdout, 1, true)
    local _, n = v.stdout:gsub("tools%[", "")
    assert.equal(2, n, v.stdout)
    role [["update_issue_status", "h__get_sum", "down__x_y"]]
    v = H.orket("validate", { cwd = dir })
    assert.equal(0, v.status, v.stdout .. v.stderr)
    assert.is_nil(v.stdout:find("tools[", 1, true), v.stdout)
  end)
end)
