-- orket gate check: the decision, its reason and remedy, exit statuses, project policies.
local H = require "tests.helpers"

describe("orket gate check", function()
  after_each(H.cleanup)

  it("denies an escaping write with reason and remedy", function()
    local r = H.orket([[gate check --role coder --tool write_file --args '{"path":"../x","content":"y"}']])
    assert.equal(1, r.status)
    assert.matches("^deny %(PATH_ESCAPE%)\n", r.stdout)
    assert.matches("reason: write_file: argument 'path' path escapes root: ../x", r.stdout, 1, true)
    assert.matches("remedy: Name files with paths relative", r.stdout, 1, true)
  end)

  it("takes a call without --args as {}, and its usage shows --args as optional", function()
    local r = H.orket("gate check --role coder --tool list_directory")
    assert.equal(0, r.status, r.stderr)
    assert.matches("^allow %(ALLOWED%)", r.stdout)
    r = H.orket("gate check --role coder")
    assert.equal(2, r.status)
    assert.matches("usage: orket gate check --role ROLE --tool TOOL [--args JSON] [--seat SEAT]", r.stderr, 1, true)
  end)

  it("allows, asks and prints JSON", function()
    local r = H.orket([[gate check --role coder --tool write_file --args '{"path":"src/a.c","content":"y"}']])
    assert.equal(0, r.status)
    assert.matches("^allow %(ALLOWED%)", r.stdout)
    r = H.orket([[gate check --role coder --tool delete_file --args '{"path":"src/a.c"}' --json]])
    assert.equal(4, r.status)
    local d = require("cjson.safe").decode(r.stdout)
    assert.equal("ask", d.verdict)
    assert.equal("POLICY_ASK", d.code)
    -- keys in sorted order, the policy's path written plain, the same bytes every time
    assert.matches("%(policy [%w:]*policies/default%.lua:%d+%)", d.reason)
    local want = '{"code":"POLICY_ASK","reason":"' .. d.reason .. '","remedy":"' .. d.remedy .. '","verdict":"ask"}\n'
    assert.equal(want, r.stdout)
    for _ = 1, 3 do
      local again = H.orket([[gate check --role coder --tool delete_file --args '{"path":"src/a.c"}' --json]])
      assert.equal(want, again.stdout)
    end
  end)

  it("asks a developer before an agent writes, moves or deletes CI configuration, which runs with secrets", function()
    local function check(tool, args, dir)
      return H.orket("gate check --role coder --tool " .. tool .. " --args " .. H.quote(args)
        .. (dir and (" --workspace " .. H.quote(dir)) or ""))
    end
    for _, path in ipairs { ".github/workflows/orket.yml", ".github/workflows/sub/x.yaml", "./.github/workflows/x.yml",
      ".gitea/workflows/deploy.yml", ".forgejo/workflows/x.yml", ".gitlab-ci.yml", ".github/actions/a/action.yml",
      ".circleci/config.yml", ".woodpecker.yml", "Jenkinsfile" } do
      local r = check("write_file", '{"path":"' .. path .. '","content":"x"}')
      assert.equal(4, r.status, path .. ": " .. r.stdout)
      assert.matches("^ask %(POLICY_ASK%)\nreason: write_file: CI configuration runs with the forge's secrets", r.stdout)
    end
    assert.equal(4, check("move_file", '{"from":"ci.yml","to":".github/workflows/ci.yml"}').status)
    assert.equal(4, check("move_file", '{"from":".gitea/workflows/ci.yml","to":"old.yml"}').status)
    assert.equal(4, check("delete_file", '{"path":".github/workflows/orket.yml"}').status)
    assert.equal(4, check("create_directory", '{"path":".github/workflows/x"}').status)
    -- the folders that hold it: a folder of the agent's own moved in its place, or it moved
    -- away, changes the workflows without writing any of them
    assert.equal(4, check("move_file", '{"from":".github","to":"old"}').status)
    assert.equal(4, check("move_file", '{"from":"staging","to":".github"}').status)
    assert.equal(4, check("move_file", '{"from":"staging/w","to":".github/workflows"}').status)
    assert.equal(4, check("move_file", '{"from":"x","to":"./.gitea"}').status)
    assert.equal(4, check("delete_file", '{"path":".forgejo/workflows"}').status)
    -- reading it, and writing elsewhere, as before
    assert.equal(0, check("read_file", '{"path":".github/workflows/orket.yml"}').status)
    assert.equal(0, check("list_directory", '{"path":".github/workflows"}').status)
    assert.equal(0, check("write_file", '{"path":"src/workflows/a.yml","content":"x"}').status)
    assert.equal(0, check("write_file", '{"path":".github/CODEOWNERS.md","content":"x"}').status)
    -- a project's own policies/default.lua replaces Orket's, this rule with it
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/policies")
    H.write(dir .. "/policies/default.lua", "-- the project's own\n")
    assert.equal(0, check("write_file", '{"path":".github/workflows/orket.yml","content":"x"}', dir).status)
  end)

  it("asks about run_command unless the project's verify.commands lists its program", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", 'name = "g"\nverify = { commands = { "make" } }\n')
    local r = H.orket([[gate check --role coder --tool run_command --args '{"argv":["make","test"]}' --workspace ]]
      .. H.quote(dir))
    assert.equal(0, r.status, r.stdout .. r.stderr)
    r = H.orket([[gate check --role coder --tool run_command --args '{"argv":["rm","-rf","x"]}' --workspace ]]
      .. H.quote(dir))
    assert.equal(4, r.status)
    assert.matches("^ask %(COMMAND_ASK%)\nreason: program \"rm\" is not in verify.commands", r.stdout)
    r = H.orket([[gate check --role coder --tool run_command --args '{"argv":"make test"}' --workspace ]] .. H.quote(dir))
    assert.equal(1, r.status)
    assert.matches("ARGS_INVALID", r.stdout)
  end)

  -- a run refuses to start on it: a decision made without it would not be the run's
  it("refuses a project whose orket.lua does not load, naming its line and field", function()
    local dir = H.tmpdir()
    local call = [[gate check --role coder --tool run_command --args '{"argv":["make","test"]}' -C ]] .. H.quote(dir)
    H.write(dir .. "/orket.lua", 'name = "g"\nverify = { commands = { "make" } }\nconcurrency = "two"\n')
    local r = H.orket(call)
    assert.equal(1, r.status, r.stdout)
    assert.equal("", r.stdout)
    -- named as every command names it (orket run -C DIR too): DIR/orket.lua
    assert.equal("orket: " .. dir .. "/orket.lua:3: concurrency: must be an integer, not string\n", r.stderr)
    H.write(dir .. "/orket.lua", 'name = "g"\nverify = { commands = { "make" }\n')
    r = H.orket(call)
    assert.equal(1, r.status, r.stdout)
    assert.equal("", r.stdout)
    assert.matches("^orket: " .. dir:gsub("%p", "%%%0") .. "/orket.lua:%d: .*'}' expected", r.stderr)
    -- from the project itself, the name it always had; and a relative -C DIR as run says it
    r = H.orket("gate check --role coder --tool read_file", { cwd = dir })
    assert.matches("^orket: orket.lua:%d: .*'}' expected", r.stderr)
    local parent, name = dir:match("^(.*)/([^/]+)$")
    local gate = H.orket("gate check --role coder --tool read_file -C " .. H.quote(name), { cwd = parent })
    local run = H.orket("run START -C " .. H.quote(name), { cwd = parent })
    assert.matches("^orket: " .. name:gsub("%p", "%%%0") .. "/orket.lua:%d: .*'}' expected", gate.stderr)
    assert.equal(run.stderr, gate.stderr)
  end)

  it("applies the project's policies from --workspace", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/policies " .. dir .. "/roles")
    H.write(dir .. "/roles/tester.lua", [[return { intent = "writes tests", system = "You write tests.",
      tools = { "read_file", "write_file" } }]])
    H.write(dir .. "/policies/limits.lua", [[deny { role = "tester", tool = "write_file", outside = "tests/**",
      reason = "testers write tests only", remedy = "Write under tests/." }]])
    local r = H.orket([[gate check --role tester --tool write_file --args '{"path":"src/a.c","content":""}' --workspace ]] .. dir)
    assert.equal(1, r.status)
    assert.matches("testers write tests only", r.stdout)
    assert.matches("remedy: Write under tests/.", r.stdout, 1, true)
    H.write(dir .. "/policies/broken.lua", "deny { tool = 'x', colour = 'red' }")
    r = H.orket([[gate check --role tester --tool read_file --args '{"path":"a"}' --workspace ]] .. dir)
    assert.equal(1, r.status)
    assert.matches("broken.lua:1: unknown field 'colour'", r.stderr, 1, true)
  end)

  it("applies the role's tools, built-in or the project's, as a run does", function()
    local write = [[--tool write_file --args '{"path":"a","content":"x"}']]
    local r = H.orket("gate check --role integrity_guard " .. write)
    assert.equal(1, r.status)
    assert.matches("^deny %(ROLE_FORBIDDEN%)\n", r.stdout)
    assert.matches("reason: write_file: seat 'integrity_guard' (roles: integrity_guard) may not use this tool", r.stdout, 1, true)
    -- the role playing the turn decides, not the seat's other roles
    assert.equal(1, H.orket("gate check --role integrity_guard --role coder " .. write).status)
    assert.equal(0, H.orket("gate check --role coder --role integrity_guard " .. write).status)
    -- --allow-tools replaces the role's list
    r = H.orket("gate check --role integrity_guard --allow-tools read_file,write_file " .. write)
    assert.equal(0, r.status, r.stdout)
    -- an empty list is a role with no tool at all, not a missing value
    r = H.orket("gate check --role coder --allow-tools '' " .. write)
    assert.equal(1, r.status, r.stderr)
    assert.matches("ROLE_FORBIDDEN", r.stdout, 1, true)
    -- a project's roles/ overrides a built-in role by name
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/roles")
    H.write(dir .. "/roles/coder.lua", [[return { intent = "reads only", system = "Read.", tools = { "read_file" } }]])
    r = H.orket("gate check --role coder --workspace " .. dir .. " " .. write)
    assert.equal(1, r.status)
    assert.matches("ROLE_FORBIDDEN", r.stdout)
    r = H.orket([[gate check --role coder --tool read_file --args '{"path":"a"}' --workspace ]] .. dir)
    assert.equal(0, r.status)
    H.write(dir .. "/roles/broken.lua", [[return { intent = "x", system = "y", tools = { 5 } }]])
    r = H.orket("gate check --role coder --workspace " .. dir .. " " .. write)
    assert.equal(1, r.status)
    assert.matches("roles/broken.lua:1: tools[1] must be a tool name", r.stderr, 1, true) -- at its line, as validate says it
    assert.equal("", r.stdout)
  end)

  it("reads a card's facts from the project's board with --card, as a run does", function()
    local dir = H.tmpdir()
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/webapp/epics") .. " " .. H.quote(dir))
    assert.equal(0, H.orket("import " .. H.quote(dir)).status)
    local start = [[gate check --role coder --tool update_issue_status --args '{"status":"in_progress"}' ]]
    -- API-2 depends on API-1, which is not done: it cannot start
    local r = H.orket(start .. "--card API-2 --workspace " .. H.quote(dir))
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("moving card API-2 from ready to in_progress is not allowed", r.stdout, 1, true)
    -- API-1 depends on nothing
    r = H.orket(start .. "--card API-1 --workspace " .. H.quote(dir))
    assert.equal(0, r.status, r.stdout .. r.stderr)
    r = H.orket(start .. "--card NOPE-1 --workspace " .. H.quote(dir))
    assert.equal(2, r.status) -- a usage error, never deny's 1
    assert.matches("--card NOPE-1: board: no card", r.stderr, 1, true)
    r = H.orket(start .. "--card API-1 --card-status ready --workspace " .. H.quote(dir))
    assert.equal(2, r.status)
  end)

  -- without --card the card is the stand-in CARD: a rule naming cards never matched it, and
  -- the allow read as if the policy had been judged
  it("notes, without --card, the policy rules naming a card that it could not apply", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init .", { cwd = dir }).status)
    os.execute("mkdir -p " .. H.quote(dir .. "/policies"))
    H.write(dir .. "/policies/q.lua", 'deny { tool = "add_issue_comment", card = "START-*", reason = "quiet" }\n'
      .. 'deny { tool = "add_issue_comment", card = "C*", reason = "any" }\n')
    local check = [[gate check --role coder --tool add_issue_comment --args '{"body":"x"}' ]]
    local r = H.orket(check .. "--card-status in_progress", { cwd = dir })
    -- C* matches CARD: it is judged, and refuses
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("note: no --card: the rule policies/q.lua:1 (card = \"START-*\") never matches the stand-in CARD, "
      .. "so it was not applied; give --card ID to judge it\n", r.stdout, 1, true)
    H.write(dir .. "/policies/q.lua", 'deny { tool = "add_issue_comment", card = "START-*", reason = "quiet" }\n')
    r = H.orket(check .. "--card-status in_progress", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("note: no --card: the rule policies/q.lua:1", r.stdout, 1, true)
    -- with the card, judged
    r = H.orket(check .. "--card START-1", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.not_matches("note:", r.stdout, 1, true)
  end)

  it("refuses an unknown role and a missing workspace by name", function()
    local r = H.orket([[gate check --role nosuchrole --tool read_file --args '{"path":"a"}']])
    assert.equal(2, r.status)
    assert.matches('orket: --role nosuchrole: no role named "nosuchrole" (roles: architect, coder, integrity_guard)', r.stderr, 1, true)
    assert.equal("", r.stdout)
    r = H.orket([[gate check --role coder --role nosuchrole --tool read_file --args '{"path":"a"}']])
    assert.equal(2, r.status)
    assert.matches("--role nosuchrole: no role named", r.stderr, 1, true)
    r = H.orket([[gate check --role coder --tool read_file --args '{"path":"a"}' --workspace /nonexistent/orket-ws]])
    assert.equal(2, r.status)
    assert.matches("orket: --workspace /nonexistent/orket-ws: no such directory", r.stderr, 1, true)
    assert.equal("", r.stdout)
    local dir = H.tmpdir()
    H.write(dir .. "/file", "x")
    r = H.orket([[gate check --role coder --tool read_file --args '{"path":"a"}' --workspace ]] .. dir .. "/file")
    assert.equal(2, r.status)
    assert.matches("--workspace " .. dir .. "/file: not a directory", r.stderr, 1, true)
  end)

  -- The directory's refusal named it --workspace whichever name was given: it says the one used
  it("refuses a missing or file -C DIR by the option's name as given, -C or --workspace", function()
    local dir = H.tmpdir()
    H.write(dir .. "/file", "x")
    local call = [[gate check --role coder --tool read_file --args '{"path":"a"}']]
    for _, c in ipairs {
      { call .. " -C /nonexistent/orket-ws", "-C /nonexistent/orket-ws: no such directory" },
      { "-C /nonexistent/orket-ws " .. call, "-C /nonexistent/orket-ws: no such directory" },
      { call .. " -C " .. H.quote(dir .. "/file"), "-C " .. dir .. "/file: not a directory" },
      { call .. " --workspace=" .. H.quote(dir .. "/file"), "--workspace " .. dir .. "/file: not a directory" },
    } do
      local r = H.orket(c[1])
      assert.equal(2, r.status, c[1] .. ": " .. r.stderr)
      assert.equal("", r.stdout)
      assert.matches("orket: " .. c[2] .. "\nusage: orket gate check", r.stderr, 1, true)
    end
  end)

  it("says which card and seat stand in for those not given, where the decision names them", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    local p = dir .. "/p"
    local r = H.orket([[gate check --role coder --card-status code_review --tool update_issue_status ]]
      .. [[--args '{"status":"done"}' -C ]] .. H.quote(p))
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("reason: update_issue_status: moving card CARD from code_review to done is not allowed", r.stdout, 1, true)
    assert.matches("\nnote: no %-%-card: CARD stands for a card in status code_review with its dependencies done\n$",
      r.stdout)
    -- the seat a run would give the role: the team's seat holding it, not the role's name
    r = H.orket([[gate check --role coder --allow-tools read_file --tool write_file --args '{"path":"a","content":"x"}' -C ]]
      .. H.quote(p))
    assert.equal(1, r.status)
    assert.matches("reason: write_file: seat 'senior_developer' (roles: coder) may not use this tool", r.stdout, 1, true)
    assert.matches("\nnote: no %-%-seat: the team's seat senior_developer, which holds coder\n$", r.stdout)
    -- a role no seat holds: the seat is named after it, and the note says so
    os.execute("mkdir -p " .. H.quote(p .. "/roles"))
    H.write(p .. "/roles/tester.lua", 'return { intent = "t", tools = { "read_file" }, system = "s" }')
    r = H.orket([[gate check --role tester --tool write_file --args '{"path":"a","content":"x"}' -C ]] .. H.quote(p))
    assert.matches("\nnote: no %-%-seat, and no seat of the team holds tester: the seat is named 'tester' after it\n",
      r.stdout)
    -- given, or not named in the decision: no note; --json: its four fields only
    r = H.orket([[gate check --role coder --seat senior_developer --card-status code_review --tool update_issue_status ]]
      .. [[--args '{"status":"done"}' -C ]] .. H.quote(p))
    assert.is_nil(r.stdout:find("no --seat", 1, true))
    r = H.orket([[gate check --role coder --tool read_file --args '{"path":"a"}' -C ]] .. H.quote(p))
    assert.is_nil(r.stdout:find("note:", 1, true))
    r = H.orket([[gate check --role coder --card-status code_review --tool update_issue_status ]]
      .. [[--args '{"status":"done"}' --json -C ]] .. H.quote(p))
    assert.is_nil(r.stdout:find("note", 1, true))
  end)

  it("takes the project's directory as -C DIR, as every other command does", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/policies")
    H.write(dir .. "/policies/no_src.lua", 'deny { tool = "write_file", path = "src/**", reason = "not here" }\n')
    local write = [[--tool write_file --args '{"path":"src/a.c","content":"x"}']]
    local r = H.orket("gate check --role coder " .. write .. " -C " .. H.quote(dir))
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("^deny %(POLICY_DENY%)\nreason: write_file: not here", r.stdout)
    r = H.orket("gate check --role coder " .. write .. " -C=" .. H.quote(dir))
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("[-C DIR]", H.orket("gate check --help").stdout, 1, true)
  end)

  it("reports usage errors with status 2", function()
    local r = H.orket("gate check --tool read_file")
    assert.equal(2, r.status)
    assert.matches("orket: %-%-role is required", r.stderr)
    r = H.orket([[gate check --role x --tool read_file --args '{nope']])
    assert.equal(2, r.status)
    assert.matches("--args is not valid JSON", r.stderr, 1, true)
    r = H.orket("gate frobnicate")
    assert.equal(2, r.status)
  end)

  -- a rule naming an MCP tool as its server spells it (get-sum, Orket's SERVER__get_sum) can
  -- never match: validate said "ok" while the server was down, and the deny let calls through
  it("refuses a policy naming a tool in a spelling no tool has, its server down, with the name to write", function()
    local dir = H.example("webapp")
    local f = assert(io.open(dir .. "/orket.lua", "a"))
    f:write('\nmcp = { servers = { down = { command = { "/nonexistent/server" } } } }\n')
    f:close()
    os.execute("mkdir -p " .. H.quote(dir .. "/policies"))
    H.write(dir .. "/policies/mcp.lua", 'deny { tool = "read_file", path = "x" }\nask { tool = "down__get-sum" }\n')
    local msg = 'policies/mcp.lua:2: ask.tool "down__get-sum" can match no tool, so the rule would never apply: '
      .. 'Orket names the MCP server down\'s tool get-sum down__get_sum (a - or . reads _): write "down__get_sum"'
    local v = H.orket("validate", { cwd = dir })
    assert.equal(1, v.status, v.stdout .. v.stderr)
    assert.matches(msg, v.stdout, 1, true)
    local r = H.orket("gate check --role coder --tool read_file --args '{\"path\":\"a\"}'", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("", r.stdout)
    assert.matches(msg, r.stderr, 1, true)
    -- in Orket's spelling it loads (the server's tools taken on trust while it is down)
    H.write(dir .. "/policies/mcp.lua", 'ask { tool = "down__get_sum" }\n')
    r = H.orket("gate check --role coder --tool read_file --args '{\"path\":\"a\"}'", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
  end)
end)
