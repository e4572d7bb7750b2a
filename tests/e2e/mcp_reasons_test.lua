-- What `orket mcp list` and `orket validate` say of a server that cannot start: the cause,
-- not a symptom of it. A server answering with the request's id as a string ("1" for 1) was
-- shown as a timeout ("initialize got no answer in N ms"); one whose script lies outside
-- its read_only, or named relative to the project, showed only the interpreter's "no such
-- file". And a policy whose role or
-- seat glob can match no name is refused when it loads (`orket gate check`, a run), as a
-- tool glob is, not only warned of by `orket validate`.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local function project(dir, servers)
  H.write(dir .. "/orket.lua", 'name = "reasons"\n'
    .. 'models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }\n'
    .. "mcp = { servers = { " .. servers .. " } }\n")
  H.write(dir .. "/script.lua", "return { rules = {} }\n")
end

describe("orket mcp list and orket validate", function()
  after_each(H.cleanup)

  it("say that a server answered with the id as a string, not that it timed out", function()
    local dir = H.tmpdir()
    local bin, script = F.mcp_lua_server(dir, "strid", { string_ids = true })
    if not bin then return pending(script) end
    -- a long timeout: the answer is refused when it comes, not waited for
    project(dir, string.format("strid = { command = { %q, \"lua\", %q }, read_only = { %q, %q }, timeout_ms = 60000 }",
      bin, script, dir .. "/srv", H.ROOT))
    local said = 'the server answered request 1 with the id "1" (a string); JSON-RPC 2.0 requires the id as sent '
      .. "(1, a number), so the answer is refused"
    local l = H.orket("mcp list", { cwd = dir })
    assert.equal(1, l.status, l.stdout .. l.stderr)
    assert.equal("strid            stdio  down: initialize: " .. said .. "\n", l.stdout)
    local j = cjson.decode(H.orket("mcp list --json", { cwd = dir }).stdout)
    assert.equal("initialize: " .. said, j.servers[1].why)
    local v = H.orket("validate", { cwd = dir })
    assert.matches("mcp.servers.strid: could not be started to list its tools (initialize: " .. said .. ")", v.stdout, 1, true)
    assert.is_nil(v.stdout:find("no answer", 1, true), v.stdout)
  end)

  it("name a server's script outside its read_only and the setting to change", function()
    local dir = H.tmpdir()
    local bin, script = F.mcp_lua_server(dir, "plain")
    if not bin then return pending(script) end
    local p = require("orket.c.proc").probe()
    if not (p.view or p.landlock) then
      return pending("the kernel offers neither the view nor Landlock here: the server sees every file")
    end
    project(dir, string.format("plain = { command = { %q, \"lua\", %q }, read_only = { %q } }", bin, script, H.ROOT))
    local hint = script .. " is outside what the server sees of this machine (the system's directories and its "
      .. 'read_only): add "' .. dir .. '/srv" to mcp.servers.plain.read_only in orket.lua (docs/mcp.md)'
    local l = H.orket("mcp list", { cwd = dir })
    assert.equal(1, l.status, l.stdout .. l.stderr)
    assert.matches("^plain            stdio  down: the server exited %(status %d+%): ", l.stdout)
    assert.matches("; " .. hint .. "\n", l.stdout, 1, true)
    local v = H.orket("validate", { cwd = dir })
    assert.matches("; " .. hint .. "), so the roles and policies naming them are not checked", v.stdout, 1, true)
    -- listed in read_only, it starts
    project(dir, string.format("plain = { command = { %q, \"lua\", %q }, read_only = { %q, %q } }", bin, script, H.ROOT,
      dir .. "/srv"))
    l = H.orket("mcp list", { cwd = dir })
    assert.equal(0, l.status, l.stdout .. l.stderr)
    assert.equal("plain            stdio  ready, 1 tool\n  plain__t\n", l.stdout)
  end)

  -- asked from another folder (-C): the relative path is the project's, not the shell's
  it("name a script given relative to the project, with the absolute path to give", function()
    local dir = H.tmpdir()
    local bin, script = F.mcp_lua_server(dir, "rel")
    if not bin then return pending(script) end
    local path = require("luv").fs_realpath(script)
    project(dir, string.format("rel = { command = { %q, \"lua\", \"srv/rel.lua\" }, read_only = { %q } }", bin, H.ROOT))
    local elsewhere = H.tmpdir()
    local l = H.orket("mcp list -C " .. H.quote(dir), { cwd = elsewhere })
    assert.equal(1, l.status, l.stdout .. l.stderr)
    local hint = 'srv/rel.lua is a relative path, and the server runs in a directory of its own, where there is no '
      .. 'such file: give it as "' .. path .. '" in mcp.servers.rel.command, and add "' .. path:match("^(.+)/")
      .. '" to its read_only (docs/mcp.md)'
    assert.matches("; " .. hint .. "\n", l.stdout, 1, true)
    local v = H.orket("validate -C " .. H.quote(dir), { cwd = elsewhere })
    assert.matches("; " .. hint .. "), so the roles", v.stdout, 1, true)
    -- as the hint says, it starts
    project(dir, string.format("rel = { command = { %q, \"lua\", %q }, read_only = { %q, %q } }", bin, path, H.ROOT,
      path:match("^(.+)/")))
    l = H.orket("mcp list -C " .. H.quote(dir), { cwd = elsewhere })
    assert.equal(0, l.status, l.stdout .. l.stderr)
    assert.equal("rel              stdio  ready, 1 tool\n  rel__t\n", l.stdout)
  end)
end)

describe("a policy's role and seat globs", function()
  after_each(H.cleanup)

  it("that can match no name stop the policies' load", function()
    local p = F.initialized { "policies" }
    H.write(p .. "/policies/extra.lua", 'deny { tool = "write_file", role = "senior-dev" }\n')
    local g = H.orket('gate check --role coder --tool write_file --args \'{"path":"a","content":""}\'', { cwd = p })
    assert.equal(1, g.status, g.stdout .. g.stderr)
    assert.matches('policies/extra.lua:1: deny.role "senior-dev" can match no role, so the rule would never apply: '
      .. "no role's name holds \"-\"", g.stderr, 1, true)
    H.write(p .. "/policies/extra.lua", 'ask { seat = "lead dev" }\n')
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches('policies/extra.lua:1: ask.seat "lead dev" can match no seat, so the rule would never apply: '
      .. "no seat's name holds \" \": a seat of orket.lua's team is named in letters, digits, _ and -", v.stdout, 1, true)
  end)
end)
