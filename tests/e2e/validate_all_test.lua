-- orket validate finds everything in one pass: file-level and cross-file problems together,
-- policy rules that name no tool, role or seat (they would never apply), cards seated at a
-- seat the team lacks or at the only reviewer seat; each with file and line.
local H = require "tests.helpers"
local F = require "tests.fixtures"

local function project() return F.initialized { "roles", "policies" } end

local function lines_of(out)
  local t = {}
  for l in out:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

describe("orket validate", function()
  after_each(H.cleanup)

  it("reports policy rules naming a tool, role or seat that does not exist, with the line", function()
    local p = project()
    H.write(p .. "/policies/extra.lua", table.concat({
      'deny { tool = "wirte_file", reason = "typo" }',
      'ask { role = "archtect" }',
      'deny { seat = "qa_*", tool = "write_file" }',
      'deny { tool = "*_file", role = "coder", seat = "senior_*" }',
      "",
    }, "\n"))
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches('policies/extra.lua:1: deny.tool: "wirte_file" matches no tool, so the rule never applies (tools: ',
      v.stdout, 1, true)
    assert.matches('policies/extra.lua:2: ask.role: "archtect" matches no role, so the rule never applies '
      .. "(roles: architect, coder, integrity_guard)", v.stdout, 1, true)
    assert.matches('policies/extra.lua:3: deny.seat: "qa_*" matches no seat of the team, so the rule never applies '
      .. "(seats: integrity_guard, lead_architect, senior_developer)", v.stdout, 1, true)
    assert.is_nil(v.stdout:find("extra.lua:4", 1, true))
    assert.matches("\n3 problems\n$", v.stdout)
  end)

  -- a tool's limits under a name of no tool never applied, its limits silently not in force
  it("reports verify.tool_limits naming no tool, with the line and the nearest tool", function()
    local p = project()
    H.write(p .. "/orket.lua", H.read(p .. "/orket.lua")
      .. "\nverify = { tool_limits = { run_test = { processes = 10 }, run_tests = { processes = 20 } } }\n")
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches('orket.lua:%d+: verify%.tool_limits%.run_test: no tool named "run_test" %(tools: [^\n]*%); did you '
      .. "mean 'run_tests'%?", v.stdout)
    assert.matches("\n1 problem\n$", v.stdout)
    -- a verify or tool_limits of the wrong shape is said by orket.lua's own check, once
    local base = H.read(p .. "/orket.lua")
    for _, bad in ipairs { "verify = 5", "verify = { tool_limits = 5 }",
        "verify = { tool_limits = { [1] = {}, run_tests = { processes = 2 } } }" } do
      H.write(p .. "/orket.lua", base .. "\n" .. bad .. "\n")
      v = H.orket("validate", { cwd = p })
      assert.equal(1, v.status, v.stdout .. v.stderr)
      assert.no_match("internal", v.stdout .. v.stderr, 1, true)
      assert.matches("\n1 problem\n$", v.stdout)
    end
  end)

  -- a misspelt status or argument passed: a deny on args.contnet let every key through
  it("reports policy rules naming a card status, or an argument no tool they apply to takes", function()
    local p = project()
    H.write(p .. "/policies/extra.lua", table.concat({
      'deny { tool = "write_file", args = { contnet = "*PRIVATE KEY*" }, reason = "no keys" }',
      'deny { tool = "write_file", status = "in_progres", reason = "frozen" }',
      'deny { tool = "*_file", args = { zzz = "*" }, reason = "many" }',
      'deny { tool = "write_*", args = { path = "*.pem" }, status = "in_*", reason = "fine" }',
      'deny { args = { body = "*secret*" }, reason = "fine: tools take it" }',
      'deny { tool = "run_command", args = { argv = "rm" }, reason = "argv is an array" }',
      "",
    }, "\n"))
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches('policies/extra.lua:1: deny.args.contnet: no tool the rule applies to takes an argument "contnet", '
      .. "so the rule never applies (write_file's arguments: content, path)", v.stdout, 1, true)
    assert.matches('policies/extra.lua:2: deny.status: "in_progres" matches no card status, so the rule never applies '
      .. "(statuses: ready, in_progress, ", v.stdout, 1, true)
    assert.matches('policies/extra.lua:3: deny.args.zzz: no tool the rule applies to takes an argument "zzz", so the '
      .. "rule never applies (4 tools: delete_file, move_file, read_file, write_file)", v.stdout, 1, true)
    assert.is_nil(v.stdout:find("extra.lua:4", 1, true))
    assert.is_nil(v.stdout:find("extra.lua:5", 1, true))
    assert.matches('policies/extra.lua:6: deny.args.argv: an args glob matches text, and no tool the rule applies '
      .. 'to takes "argv" as text, so the rule never applies (run_command\'s argv is an array)', v.stdout, 1, true)
    assert.matches("\n4 problems\n$", v.stdout)
    -- orket gate check refuses such a status too, and an array for --args
    local r = H.orket("gate check --role coder --tool write_file --card-status in_progres", { cwd = p })
    assert.equal(2, r.status)
    assert.matches("--card-status: no card status 'in_progres' (statuses: ready, ", r.stderr, 1, true)
    r = H.orket("gate check --role coder --tool write_file --args '[1]'", { cwd = p })
    assert.equal(2, r.status)
    assert.matches("--args must be a JSON object", r.stderr, 1, true)
  end)

  -- validate read the files alone: a dependency on a card only on the board was "unknown"
  -- though import took it, and a cycle through such a card passed though import refused it
  it("resolves dependencies against the board after the files, as import does", function()
    local p = project()
    H.write(p .. "/epics/x.json", '{ "id": "X", "name": "X", "issues": [ { "id": "X-1", "summary": "x", '
      .. '"seat": "senior_developer" }, { "id": "X-2", "summary": "y", "seat": "senior_developer", '
      .. '"depends_on": ["X-1"] } ] }')
    H.ok(H.orket("import", { cwd = p }), "import")
    -- X's file gone: a new epic's card depends on X-2, on the board alone
    os.remove(p .. "/epics/x.json")
    H.write(p .. "/epics/n.json", '{ "id": "N", "name": "N", "issues": [ { "id": "N-1", "summary": "n", '
      .. '"seat": "senior_developer", "depends_on": ["X-2"] } ] }')
    local v = H.orket("validate", { cwd = p })
    assert.equal(0, v.status, v.stdout)
    H.ok(H.orket("import", { cwd = p }), "import of n.json")
    -- X-1 back in a file, depending on X-2, which the board has depending on X-1
    H.write(p .. "/epics/x.json", '{ "id": "X", "name": "X", "issues": [ { "id": "X-1", "summary": "x", '
      .. '"seat": "senior_developer", "depends_on": ["X-2"] } ] }')
    v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches("epics/x.json:1: issues[0].depends_on[0]: dependency cycle: X-2 -> X-1 -> X-2", v.stdout, 1, true)
    local i = H.orket("import", { cwd = p })
    assert.equal(1, i.status)
    assert.matches("dependency cycle: X-2 -> X-1 -> X-2", i.stderr, 1, true)
    -- an id on neither is still unknown
    H.write(p .. "/epics/x.json", '{ "id": "X", "name": "X", "issues": [ { "id": "X-1", "summary": "x", '
      .. '"seat": "senior_developer", "depends_on": ["NOPE-2"] } ] }')
    v = H.orket("validate", { cwd = p })
    assert.matches('epics/x.json:1: issues[0].depends_on[0]: unknown card "NOPE-2"', v.stdout, 1, true)
    -- an epic's own unknown dependency, written after its issues, at its own line, as import
    -- says it (validate said the epic's id line, import the first issue's depends_on)
    H.write(p .. "/epics/x.json", '{ "id": "X", "name": "X", "issues": [ { "id": "X-1", "summary": "x", '
      .. '"seat": "senior_developer",\n "depends_on": [] } ],\n "depends_on": ["NOPE-3"] }')
    v = H.orket("validate", { cwd = p })
    assert.matches('epics/x.json:3: depends_on[0]: unknown card "NOPE-3"', v.stdout, 1, true)
    assert.matches('epics/x.json:3: depends_on[0]: unknown card "NOPE-3"', H.orket("import", { cwd = p }).stderr, 1, true)
  end)

  -- validate said "ok" of files import then refused for the board's state
  it("refuses what import refuses for the board's state: a canceled dependency, a finished epic's new issue", function()
    local p = project()
    H.write(p .. "/epics/x.json", '{ "id": "X", "name": "X", "issues": [ { "id": "X-1", "summary": "x", '
      .. '"seat": "senior_developer" }, { "id": "X-2", "summary": "y", "seat": "senior_developer" } ] }')
    H.ok(H.orket("import", { cwd = p }), "import")
    H.ok(H.orket('cancel X-2 "not needed"', { cwd = p }), "cancel")
    H.write(p .. "/epics/n.json", '{ "id": "N", "name": "N", "issues": [ { "id": "N-1", "summary": "n", '
      .. '"seat": "senior_developer", "depends_on": ["X-2"] } ] }')
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches("epics/n.json:1: issues[0].depends_on[0]: X-2 is canceled, so N-1 could never start", v.stdout, 1, true)
    assert.equal(1, H.orket("import", { cwd = p }).status)
    os.remove(p .. "/epics/n.json")
    -- the whole epic canceled: a new issue in it is refused by both
    H.ok(H.orket('cancel X "not needed"', { cwd = p }), "cancel X")
    H.write(p .. "/epics/x.json", '{ "id": "X", "name": "X", "issues": [ { "id": "X-1", "summary": "x", '
      .. '"seat": "senior_developer" }, { "id": "X-2", "summary": "y", "seat": "senior_developer" }, '
      .. '{ "id": "X-3", "summary": "z", "seat": "senior_developer" } ] }')
    v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches('epic "X" is canceled, so it cannot take the issue "X-3"', v.stdout, 1, true)
    assert.equal(1, H.orket("import", { cwd = p }).status)
  end)

  -- validate's own epic messages (an unknown card, a seat) named the file raw: a newline in
  -- its name split the message, and the first line alone was kept ("epics/a")
  it("names an epic file whose name holds a newline escaped, on the message's one line", function()
    local p = project()
    H.write(p .. "/epics/a\nb.json", '{ "id": "B", "name": "x", "issues": [ { "id": "B-1", "summary": "one", '
      .. '"seat": "senior_developer", "depends_on": ["Z-9"] }, { "id": "B-2", "summary": "two", "seat": "nobody" } ] }')
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches('\nepics/a\\nb.json: issues[0].depends_on[0]: unknown card "Z-9"\n', "\n" .. v.stdout, 1, true)
    assert.matches('\nepics/a\\nb.json: issues[1].seat: no seat "nobody" in orket.lua\'s team', "\n" .. v.stdout, 1, true)
    -- (and the name itself: a Windows clone cannot check it out)
    assert.matches("\nepics/a\\nb.json: the name a\\nb.json cannot be checked out on Windows: it holds a control "
      .. "character", "\n" .. v.stdout, 1, true)
    assert.matches("\n3 problems\n$", v.stdout)
  end)

  it("refuses a tool or role file named otherwise than its name, and says which built-ins are replaced", function()
    local p = project()
    os.execute("mkdir -p " .. p .. "/tools")
    H.write(p .. "/tools/my_write.lua", assert(io.open(H.ROOT .. "/tools/write_file.lua")):read("a"))
    H.write(p .. "/roles/tester.lua", 'return { name = "coder", intent = "x", tools = {}, system = "s" }')
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches('\ntools/my_write.lua:%d+: name "write_file" differs from the file\'s name "my_write"', "\n" .. v.stdout)
    assert.matches('\nroles/tester.lua:1: name "coder" differs from the file\'s name "tester"', "\n" .. v.stdout)
    -- renamed: each overrides its built-in, which validate says; tools are counted, not files
    os.rename(p .. "/tools/my_write.lua", p .. "/tools/write_file.lua")
    os.rename(p .. "/roles/tester.lua", p .. "/roles/coder.lua")
    v = H.orket("validate", { cwd = p })
    assert.equal(0, v.status, v.stdout)
    assert.matches("roles/coder.lua replaces the built-in role coder\n", v.stdout, 1, true)
    assert.matches("tools/write_file.lua replaces the built-in tool write_file\n", v.stdout, 1, true)
    local n = 0
    for _ in io.popen("ls " .. H.ROOT .. "/tools/*.lua"):lines() do n = n + 1 end
    assert.matches(", 3 roles, " .. n .. " tools,", v.stdout, 1, true)
    -- a new tool adds one
    H.write(p .. "/tools/shout.lua", [[return { name = "shout", description = "d", effect = "read",
      handler = function() return {} end }]])
    v = H.orket("validate", { cwd = p })
    assert.matches(", " .. (n + 1) .. " tools,", v.stdout, 1, true)
    assert.is_nil(v.stdout:find("shout.lua replaces", 1, true))
  end)

  it("reports a card seated at a seat not in the team, or at the only reviewer seat", function()
    local p = project()
    local text = H.read(p .. "/epics/start.json")
    text = text:gsub('"summary": "Write a greeting", "seat": "senior_developer"',
      '"summary": "Write a greeting", "seat": "qa"', 1)
    text = text:gsub('"summary": "Document the greeting", "seat": "senior_developer"',
      '"summary": "Document the greeting", "seat": "integrity_guard"', 1)
    H.write(p .. "/epics/start.json", text)
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches('epics/start.json:6: issues[0].seat: no seat "qa" in orket.lua\'s team, so another seat would '
      .. "work the card (seats: integrity_guard, lead_architect, senior_developer)", v.stdout, 1, true)
    assert.matches('epics/start.json:9: issues[1].seat: "integrity_guard" is the only seat holding integrity_guard, '
      .. "and no seat reviews its own work", v.stdout, 1, true)
    -- with a second reviewer seat, integrity_guard is no longer the only one, but it holds
    -- no working role: the reviewer's role would be given the work, and could not do it
    local cfg = H.read(p .. "/orket.lua"):gsub("team = {", 'team = {\n  second_guard = { roles = { "integrity_guard" } },', 1)
    H.write(p .. "/orket.lua", cfg)
    v = H.orket("validate", { cwd = p })
    assert.is_nil(v.stdout:find("only seat holding", 1, true), v.stdout)
    assert.matches('epics/start.json:9: issues[1].seat: "integrity_guard" holds only integrity_guard, so no working '
      .. "role could do the card", v.stdout, 1, true)
    assert.matches("\n2 problems\n$", v.stdout)
    -- given a working role too, it may work a card
    H.write(p .. "/orket.lua", (cfg:gsub('integrity_guard = { roles = { "integrity_guard" }',
      'integrity_guard = { roles = { "integrity_guard", "coder" }', 1)))
    v = H.orket("validate", { cwd = p })
    assert.is_nil(v.stdout:find("integrity_guard, so no working role", 1, true), v.stdout)
    assert.matches("\n1 problem\n$", v.stdout)
  end)

  it("takes an epic written for the original Orket, noting what it ignores, and names a typo", function()
    local p = project()
    H.write(p .. "/epics/legacy.json", table.concat({
      '{ "id": "LEGACY", "name": "Legacy", "team": "standard", "environment": "standard", "iterations": 2,',
      '  "architecture_governance": { "idesign": false, "pattern": "Standard" }, "lessons_learned": "none",',
      '  "params": { "model_overrides": { "coder": "ollama:qwen" } }, "references": [ "a.md" ],',
      '  "issues": [ { "id": "LEGACY-1", "summary": "Work", "seat": "senior_developer", "priority": "High" } ] }',
    }, "\n"))
    local v = H.orket("validate", { cwd = p })
    assert.equal(0, v.status, v.stdout)
    assert.matches("warning: epics/legacy.json:1: team: read and ignored", v.stdout, 1, true)
    assert.matches("warning: epics/legacy.json:3: params: read and ignored", v.stdout, 1, true)
    assert.matches("(7 warnings)", v.stdout, 1, true)
    local i = H.orket("import", { cwd = p })
    assert.equal(0, i.status, i.stderr)
    assert.matches("warning: epics/legacy.json:2: architecture_governance: read and ignored", i.stderr, 1, true)
    assert.equal("Legacy", H.card_json(p, "LEGACY").card.name)
    -- a real field misspelt is still refused, with the field it nearly is
    H.write(p .. "/epics/legacy.json", H.read(p .. "/epics/legacy.json"):gsub('"priority"', '"depends_onn": [], "priority"'))
    v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches("epics/legacy.json:4: issues[0].depends_onn: unknown field", v.stdout, 1, true)
    assert.matches("did you mean 'depends_on'?", v.stdout, 1, true)
    i = H.orket("import", { cwd = p })
    assert.equal(1, i.status)
    assert.matches("did you mean 'depends_on'?", i.stderr, 1, true)
  end)

  -- a tracker's export read as an epic: its "key" stood in for the missing summary, which was
  -- said only once the field was removed (a second pass); a misspelt summary still stands in
  it("says a missing summary beside an unknown field that is no summary, in one pass", function()
    local p = project()
    H.write(p .. "/epics/e.json", '{"id":"E","issues":[\n{"id":"E-1","key":"PAY-1"},\n{"id":"E-2","sumary":"s"}]}')
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches("epics/e.json:2: issues[0].key: unknown field", v.stdout, 1, true)
    assert.matches("epics/e.json:2: issues[0]: needs a summary or a name", v.stdout, 1, true)
    assert.matches("issues[1].sumary: unknown field", v.stdout, 1, true)
    assert.is_nil(v.stdout:find("issues[1]: needs a summary", 1, true), v.stdout)
  end)

  -- an epic written as YAML, or saved as WEB.JSON, was passed over without a word
  it("says a file of epics/ that looks meant as an epic and is not read, validate and import alike", function()
    local p = project()
    H.write(p .. "/epics/web.yaml", "id: WEB\nissues:\n  - summary: Login\n")
    local v = H.orket("validate", { cwd = p })
    assert.equal(0, v.status, v.stdout)
    local said = "warning: epics/web.yaml: not read: epic files are named *.json or *.lua (lower case), and YAML is not read"
    assert.matches(said, v.stdout, 1, true)
    local i = H.orket("import", { cwd = p })
    assert.equal(0, i.status, i.stderr)
    assert.matches(said, i.stderr, 1, true)
  end)

  -- import took a misspelt seat without a word, and another seat worked the card
  it("has import warn of a card seated at a seat not in the team, as validate says it, with the line", function()
    local p = project()
    H.write(p .. "/epics/s.json", '{"id":"S",\n"issues":[{"id":"S-1","summary":"a","seat":"senior_developer"},\n'
      .. '{"id":"S-2","summary":"b","seat":"senior_developr"}]}')
    local said = 'epics/s.json:3: issues[1].seat: no seat "senior_developr" in orket.lua\'s team, so another seat would '
      .. "work the card (seats: integrity_guard, lead_architect, senior_developer)"
    local v = H.orket("validate", { cwd = p })
    assert.matches(said, v.stdout, 1, true)
    local i = H.orket("import", { cwd = p })
    assert.equal(0, i.status, i.stderr)
    assert.matches("warning: " .. said, i.stderr, 1, true)
    assert.is_nil(i.stderr:find("S-1", 1, true))
    assert.equal("senior_developr", H.card_json(p, "S-2").card.seat) -- imported as written
  end)

  -- A card's id names its directory and git branch: API-1 and api-1 are one on a
  -- case-insensitive filesystem. A new pair is refused by both commands; a pair both on the
  -- board already (an older Orket imported it) is a warning in both, naming the two.
  it("refuses ids differing only in case as import does, and warns of a pair both on the board", function()
    local p = project()
    H.write(p .. "/epics/c.json", '{"id":"C","issues":[\n{"id":"API-1","summary":"one"},\n{"id":"api-1","summary":"two"}]}')
    local said = 'epics/c.json:3: issues[1]: card id "api-1" differs only in case from "API-1" (epics/c.json issues[0])'
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches(said .. ": a card's id names its directory and git branch, which on a case-insensitive "
      .. "filesystem (macOS, Windows) would be one; change one of the two ids\n", v.stdout, 1, true)
    local i = H.orket("import", { cwd = p })
    assert.equal(1, i.status, i.stderr)
    assert.matches(said, i.stderr, 1, true)
    -- the pair on the board, as an older Orket imported it
    H.write(p .. "/epics/c.json", '{"id":"C","issues":[\n{"id":"API-1","summary":"one"}]}')
    assert.equal(0, H.orket("import", { cwd = p }).status)
    local db = assert(require("orket.store").open(p .. "/.orket/orket.db"))
    assert(db:tx(function()
      require("orket.store.imports").insert_card(db, { id = "api-1", type = "issue", parent = "C", summary = "two",
        priority = 2, source = "epics/c.json" })
      return true
    end))
    db:close()
    H.write(p .. "/epics/c.json", '{"id":"C","issues":[\n{"id":"API-1","summary":"one"},\n{"id":"api-1","summary":"two"}]}')
    local warned = said .. ", both on the board already: a card's id names its directory and git branch, which on "
      .. "a case-insensitive filesystem (macOS, Windows) would be one; work this project on a case-sensitive "
      .. 'filesystem only, or end one of the two (orket cancel ID "reason") and give its work a new id\n'
    v = H.orket("validate", { cwd = p })
    assert.equal(0, v.status, v.stdout)
    assert.matches("warning: " .. warned, v.stdout, 1, true)
    i = H.orket("import", { cwd = p })
    assert.equal(0, i.status, i.stderr)
    assert.matches("warning: " .. warned, i.stderr, 1, true)
  end)

  it("checks roles and policies naming an MCP server's tools against the tools it lists", function()
    local ndir, why = require("tests.npm").ensure()
    if not ndir then
      return pending("server-everything from npm: " .. why)
    end
    local server = ndir .. "/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
    local p = project()
    local cfg = H.read(p .. "/orket.lua") .. string.format(
      'mcp = { servers = { everything = { command = { "node", %q, "stdio" }, read_only = { %q } } } }\n', server, ndir)
    H.write(p .. "/orket.lua", cfg)
    H.write(p .. "/roles/summer.lua", 'return { intent = "x", tools = { "everything__get_sum", "everything__nope" }, '
      .. 'system = function() return "x" end }\n')
    -- docs/mcp.md's example, and one that names no tool of the server
    H.write(p .. "/policies/mcp.lua", 'ask { tool = "everything__get_*", reason = "a person looks first" }\n'
      .. 'deny { tool = "everything__wirte_*" }\n')
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches("mcp: everything started to list its tools: %d+ tools", v.stdout)
    assert.matches('roles/summer.lua:1: tools[2]: no tool named "everything__nope"', v.stdout, 1, true)
    assert.is_nil(v.stdout:find('no tool named "everything__get_sum"', 1, true), v.stdout)
    assert.matches('policies/mcp.lua:2: deny.tool: "everything__wirte_*" matches no tool', v.stdout, 1, true)
    assert.is_nil(v.stdout:find("policies/mcp.lua:1", 1, true), v.stdout)
    -- a server that cannot start: said, and its tools taken on trust as a run takes them
    H.write(p .. "/orket.lua", (cfg:gsub("dist/index%.js", "dist/nonexistent.js")))
    v = H.orket("validate", { cwd = p })
    assert.matches("warning: orket.lua:%d+: mcp.servers.everything: could not be started to list its tools", v.stdout)
    assert.is_nil(v.stdout:find("no tool named", 1, true), v.stdout)
    assert.is_nil(v.stdout:find("matches no tool", 1, true), v.stdout)
    assert.equal(0, v.status, v.stdout)
  end)

  it("reports cross-file problems together with file-level ones, in one pass", function()
    local p = project()
    -- file-level: a broken epic, a broken budgets section, a broken role
    H.write(p .. "/epics/broken.json", '{ "id": "B", "issues": [ { "summary": 3 } ] }')
    local cfg = H.read(p .. "/orket.lua"):gsub("budgets = {", "budgets = { turns = 1,", 1)
    cfg = cfg:gsub('senior_developer = { roles = { "coder" } }', 'senior_developer = { roles = { "coder", "pilot" } }', 1)
    H.write(p .. "/orket.lua", cfg)
    H.write(p .. "/roles/tester.lua", "return { intent = 3, tools = {}, system = 's' }\n")
    -- cross-file: an id used twice, a rock naming an unknown epic, a role the team lacks
    H.write(p .. "/epics/again.json", '{ "id": "START", "summary": "the same id" }')
    H.write(p .. "/epics/rock.json", '{ "id": "R", "type": "rock", "epics": [ "NOPE" ] }')
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    local want = {
      "orket.lua:16: budgets.turns: unknown setting",
      "roles/tester.lua:1: intent must be a string",
      'orket.lua:12: team.senior_developer.roles[2]: no role named "pilot"',
      "epics/broken.json:1: issues[0].summary: must be a string, not number",
      'epics/start.json:2: id: card id "START" is already used by epics/again.json',
      'epics/rock.json:1: epics[0].epic: unknown epic "NOPE"',
    }
    for _, w in ipairs(want) do assert.matches(w, v.stdout, 1, true) end
    assert.matches("\n" .. #want .. " problems\n$", v.stdout)
    -- a role whose file is broken is not also called missing
    cfg = cfg:gsub('"pilot"', '"tester"', 1)
    H.write(p .. "/orket.lua", cfg)
    v = H.orket("validate", { cwd = p })
    assert.is_nil(v.stdout:find('no role named "tester"', 1, true), v.stdout)
    assert.equal(#want - 1, #lines_of(v.stdout) - 1)
  end)

  it("reports a broken role's wrong tool name with its other problems, not after them", function()
    local p = project()
    -- an unknown field used to hide the wrong tool name until it was fixed
    H.write(p .. "/roles/tester.lua", 'return {\n  intent = "x",\n  colour = 1,\n  tools = { "read_file",\n'
      .. '    "write_fiel", 7 },\n  system = "s",\n}\n')
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches("roles/tester.lua:3: unknown field 'colour'", v.stdout, 1, true)
    assert.matches('roles/tester.lua:4: tools[2]: no tool named "write_fiel"', v.stdout, 1, true)
    assert.matches("roles/tester.lua:4: tools[3] must be a tool name", v.stdout, 1, true)
    assert.matches("\n3 problems\n$", v.stdout)
  end)

  it("names the line that set the value in force, when orket.lua sets a field again below", function()
    local p = project()
    -- as the guides change a seat: a line added at the end of orket.lua
    local cfg = H.read(p .. "/orket.lua")
    local n = select(2, cfg:gsub("\n", ""))
    H.write(p .. "/orket.lua", cfg .. 'team.senior_developer = { roles = { "codr" } }\n'
      .. 'models.default = "nosuch:model"\nconcurrency = 0\n')
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches(string.format('orket.lua:%d: team.senior_developer.roles[1]: no role named "codr" '
      .. "(roles: architect, coder, integrity_guard); did you mean 'coder'?", n + 1), v.stdout, 1, true)
    assert.matches(string.format("orket.lua:%d: models.default names provider 'nosuch'", n + 2), v.stdout, 1, true)
    assert.matches(string.format("orket.lua:%d: concurrency", n + 3), v.stdout, 1, true)
  end)
end)
