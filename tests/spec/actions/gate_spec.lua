-- The gate: check order and reason codes, policies (levels, globs, predicates under budget),
-- the transition callback, counters, and the record(kind, data) calls.
local gate = require "orket.gate"
local tools = require "orket.tools"
local policy = require "orket.policy"
local H = require "tests.helpers"

local reg = assert(tools.load_dirs { H.ROOT .. "/tools" })

local function policies(src)
  local dir = H.tmpdir()
  H.write(dir .. "/p.lua", src)
  return assert(policy.load { dir .. "/p.lua" })
end

local function check(t)
  t.actor = t.actor or { seat = "senior_developer", roles = { "coder" } }
  t.tools = t.tools or reg
  t.card = t.card or { id = "ISS-1", status = "in_progress" }
  return gate.check(t)
end

describe("gate.check", function()
  after_each(H.cleanup)

  it("checks path arguments whatever the length of their names", function()
    local dir = H.tmpdir()
    local long = string.rep("p", 150)
    H.write(dir .. "/longname.lua", ([[
      return { name = "longname", description = "a tool with a long argument name", effect = "write",
        parameters = { type = "object", properties = { %s = { type = "string", format = "path" } } },
        handler = function() return {} end }]]):format(long))
    local r = assert(tools.load { dir .. "/longname.lua" })
    local d = check { tool = "longname", tools = r, args = { [long] = "../outside" } }
    assert.equal("deny", d.verdict)
    assert.equal("PATH_ESCAPE", d.code)
  end)

  it("allows a well-formed call", function()
    local d = check { tool = "write_file", args = { path = "src/a.c", content = "x" } }
    assert.same({ verdict = "allow", code = "ALLOWED", reason = "write_file: allowed (no rule refused it)", remedy = "" }, d)
  end)

  it("denies in order, each with its code, reason and remedy", function()
    local cases = {
      { { tool = "rm_rf" }, "TOOL_UNKNOWN" },
      { { tool = "read_file", args = { path = "a" }, allowed = { "write_file" } }, "ROLE_FORBIDDEN" },
      { { tool = "read_file", args = {} }, "ARGS_INVALID", "args.path: required argument is missing" },
      { { tool = "read_file", args = { path = 5 } }, "ARGS_INVALID", "expected string, got integer" },
      { { tool = "read_file", args = { path = "a", extra = 1 } }, "ARGS_INVALID", "unknown argument" },
      { { tool = "update_issue_status", args = { status = "finished" } }, "ARGS_INVALID", "must be one of" },
      { { tool = "write_file", args = { path = "../x", content = "y" } }, "PATH_ESCAPE" },
      { { tool = "write_file", args = { path = "/etc/passwd", content = "y" } }, "PATH_ESCAPE" },
      { { tool = "write_file", args = { path = ".git/config", content = "y" } }, "PATH_PROTECTED" },
      { { tool = "move_file", args = { from = "a", to = ".orket/x.lua" } }, "PATH_PROTECTED" },
      { { tool = "read_file", args = { path = "a" }, counters = { turn = { calls = 50 } } }, "LIMIT_EXCEEDED" },
      { { tool = "write_file", args = { path = "a", content = string.rep("x", 100) },
          limits = { bytes_run = 99 } }, "LIMIT_EXCEEDED", "bytes written" },
    }
    for _, c in ipairs(cases) do
      local d = check(c[1])
      assert.equal("deny", d.verdict, c[2])
      assert.equal(c[2], d.code)
      if c[3] then assert.matches(c[3], d.reason, 1, true) end
      assert.truthy(#d.remedy > 0)
    end
  end)

  it("tells a malformed path from an escape, with a remedy for what is wrong", function()
    local cases = {
      { "write_file", string.rep("M", 252) .. "xxxx.txt", "path component longer than 255 bytes in MMM", "at most 255 bytes each" },
      { "write_file", "a\0b.txt", "path contains a NUL byte", "Remove the NUL byte" },
      { "list_directory", "", "argument 'path' empty path", '"." is the workspace root), or leave out an optional path' },
    }
    for _, c in ipairs(cases) do
      local d = check { tool = c[1], args = { path = c[2], content = c[1] == "write_file" and "x" or nil } }
      assert.equal("deny", d.verdict)
      assert.equal("ARGS_INVALID", d.code, c[3])
      assert.matches(c[3], d.reason, 1, true)
      assert.matches(c[4], d.remedy, 1, true)
      assert.is_nil(d.remedy:find("..", 1, true), d.remedy)
    end
    -- a path past 4095 bytes: a built-in tool's maxLength (1023 characters of up to 4 bytes)
    -- refuses it first, in characters; a tool without one meets the gate's own byte limit
    local long = string.rep("a/", 2048)
    local d = check { tool = "write_file", args = { path = long, content = "x" } }
    assert.equal("ARGS_INVALID", d.code)
    assert.matches("args.path: string of 4096 characters is longer than the limit of 1023 characters", d.reason, 1, true)
    local dir = H.tmpdir()
    H.write(dir .. "/put.lua", [[
      return { name = "put", description = "a path without maxLength", effect = "write",
        parameters = { type = "object", properties = { path = { type = "string", format = "path" } } },
        handler = function() return {} end }]])
    d = check { tool = "put", tools = assert(tools.load { dir .. "/put.lua" }), args = { path = long } }
    assert.equal("ARGS_INVALID", d.code)
    assert.matches("path longer than 4095 bytes", d.reason, 1, true)
    assert.matches("at most 4095 bytes", d.remedy, 1, true)
    -- an escape stays one, with its own remedy
    for _, p in ipairs { "../x", "/etc/passwd", "a/../../b" } do
      local d = check { tool = "write_file", args = { path = p, content = "x" } }
      assert.equal("PATH_ESCAPE", d.code, p)
      assert.matches("without '..'", d.remedy, 1, true)
    end
    -- list_directory without a path lists the root
    assert.equal("ALLOWED", check { tool = "list_directory", args = {} }.code)
  end)

  it("reads protected paths but does not write them", function()
    assert.equal("allow", check { tool = "read_file", args = { path = ".orket/orket.db" } }.verdict)
    assert.equal("PATH_PROTECTED", check { tool = "delete_file", args = { path = ".orket/orket.db" } }.code)
  end)

  it("caps oversized and deeply nested arguments", function()
    local deep = {}
    local cur = deep
    for _ = 1, 100 do cur.x = {} cur = cur.x end
    local d = check { tool = "create_issue", args = { summary = "s", depends_on = { deep } } }
    assert.equal("ARGS_INVALID", d.code)
    d = check { tool = "write_file", args = { path = "a", content = string.rep("x", 4194305) } }
    assert.equal("ARGS_INVALID", d.code)
    assert.matches("longer than the limit", d.reason)
    local many = {}
    for i = 1, 40 do many[i] = "x" end
    d = check { tool = "create_issue", args = { summary = "s", depends_on = many } }
    assert.matches("more than the limit of 32", d.reason)
    d = check { tool = "read_file", args = { path = "a", offset = 0 / 0 } }
    assert.equal("ARGS_INVALID", d.code)
    d = check { tool = "read_file", args = { path = print } }
    assert.equal("ARGS_INVALID", d.code)
  end)

  it("asks the state machine about status changes, fixed or argued, from the card's facts", function()
    local coder = { seat = "senior_developer", roles = { "coder" } }
    local guard = { seat = "integrity_guard", roles = { "integrity_guard" } }
    local in_review = { id = "ISS-1", type = "issue", status = "code_review", worked_by = "senior_developer" }
    local d = check { tool = "update_issue_status", args = { status = "done" }, card = in_review, actor = coder }
    assert.equal("deny", d.verdict)
    assert.equal("EREVIEWER", d.code)
    assert.matches("from code_review to done", d.reason, 1, true)
    assert.truthy(#d.remedy > 0)
    -- the reviewer may, unless it did the work itself
    d = check { tool = "update_issue_status", args = { status = "done" }, card = in_review, actor = guard }
    assert.equal("allow", d.verdict)
    in_review.worked_by = "integrity_guard"
    d = check { tool = "update_issue_status", args = { status = "done" }, card = in_review, actor = guard }
    assert.equal("deny", d.verdict)
    -- dependencies not done: the card cannot start
    local waiting = { id = "ISS-2", status = "ready", deps_done = false }
    d = check { tool = "update_issue_status", args = { status = "in_progress" }, card = waiting }
    assert.equal("deny", d.verdict)
    waiting.deps_done = true
    assert.equal("allow", check { tool = "update_issue_status", args = { status = "in_progress" }, card = waiting }.verdict)
    -- the card's type is the state machine's to judge
    d = check { tool = "update_issue_status", args = { status = "code_review" },
      card = { id = "E", type = "sprint", status = "in_progress" } }
    assert.equal("ETYPE", d.code)
    -- a status with a NUL byte is not the status before it
    d = check { tool = "update_issue_status", args = { status = "blocked\0x", wait_reason = "input" } }
    assert.equal("deny", d.verdict)
  end)

  it("gives a run and `orket gate check` one decision: no Lua callback decides a status", function()
    -- a caller's own transition check is not taken: the C gate asks the state machine
    local d = check { tool = "update_issue_status", args = { status = "done" },
      check_transition = function() return true end }
    assert.equal("deny", d.verdict)
    assert.equal("ETRANSITION", d.code)
  end)

  it("lets the state machine judge a fixed status with the tool's own wait reason", function()
    -- no check_transition stub: the real state machine, as in a run
    local d = check { tool = "request_input", args = { question = "which db?" } }
    assert.same({ verdict = "allow", code = "ALLOWED", reason = "request_input: allowed (no rule refused it)", remedy = "" }, d)
    -- an argued status still needs the call's own wait_reason
    d = check { tool = "update_issue_status", args = { status = "waiting_for_developer" } }
    assert.equal("deny", d.verdict)
    assert.equal("EREASON_REQUIRED", d.code)
    d = check { tool = "update_issue_status", args = { status = "waiting_for_developer", wait_reason = "input" } }
    assert.equal("allow", d.verdict)
    -- the fixed status is still judged: a card that is not being worked cannot wait for input
    d = check { tool = "request_input", args = { question = "q" }, card = { id = "ISS-1", status = "done" } }
    assert.equal("deny", d.verdict)
    assert.matches("from done to waiting_for_developer", d.reason, 1, true)
  end)

  it("applies policies deny -> ask -> allow, first match within a level", function()
    local set = policies [[
      allow { tool = "delete_file", reason = "cleanup is fine" }
      ask { tool = "delete_file", path = "build/**", reason = "build output" }
      deny { tool = "write_file", path = "**/*.env", reason = "no secrets" }
      deny { role = "tester", tool = "write_file", outside = "tests/**", reason = "testers write tests only",
             remedy = "Write under tests/." }
      deny { tool = "write_file", args = { content = "*BEGIN RSA*" }, reason = "no keys" }
      deny { tool = "*", seat = "intern", status = "code_review" }
    ]]
    local function v(t)
      t.policies = set
      local d = check(t)
      return d.verdict, d.code, d
    end
    assert.equal("allow", (v { tool = "delete_file", args = { path = "src/a" } }))
    local verdict, code, d = v { tool = "delete_file", args = { path = "build/x/y.o" } }
    assert.equal("ask", verdict)
    assert.equal("POLICY_ASK", code)
    assert.matches("p.lua:2", d.reason)
    assert.equal("deny", (v { tool = "write_file", args = { path = "app/.env", content = "" } }))
    assert.equal("deny", (v { tool = "write_file", args = { path = ".env", content = "" } }))
    local tester = { seat = "qa", roles = { "tester" } }
    verdict, code, d = v { tool = "write_file", actor = tester, args = { path = "src/main.c", content = "" } }
    assert.equal("deny", verdict)
    assert.equal("Write under tests/.", d.remedy)
    assert.equal("allow", (v { tool = "write_file", actor = tester, args = { path = "tests/a_spec.lua", content = "" } }))
    assert.equal("allow", (v { tool = "write_file", actor = tester, args = { path = "tests", content = "" } }))
    assert.equal("deny", (v { tool = "write_file", args = { path = "k", content = "-----BEGIN RSA KEY" } }))
    assert.equal("deny", (v { tool = "read_file", actor = { seat = "intern", roles = {} },
      card = { id = "X", status = "code_review" }, args = { path = "a" } }))
  end)

  it("asks about run_command unless verify.commands or a policy allows its program", function()
    local args = { argv = { "make", "test" } }
    local d = check { tool = "run_command", args = args }
    assert.equal("ask", d.verdict)
    assert.equal("COMMAND_ASK", d.code)
    assert.equal('program "make" is not in verify.commands and no policy allows it', d.reason)
    assert.equal("allow", check { tool = "run_command", args = args, commands = { "lua", "make" } }.verdict)
    -- the program is argv[1] exactly: no PATH lookup, no prefix match
    assert.equal("ask", check { tool = "run_command", args = { argv = { "/usr/bin/make" } }, commands = { "make" } }.verdict)
    assert.equal("ask", check { tool = "run_command", args = { argv = { "make2" } }, commands = { "make" } }.verdict)
    -- a policy's allow stands; its deny and ask decide before the commands list
    local set = policies [[
      allow { tool = "run_command", when = function(c) return c.args.argv[1] == "cc" end }
      deny { tool = "run_command", when = function(c) return c.args.argv[1] == "rm" end, reason = "no rm" }
    ]]
    assert.equal("POLICY_ALLOW", check { tool = "run_command", args = { argv = { "cc" } }, policies = set }.code)
    assert.equal("deny", check { tool = "run_command", args = { argv = { "rm" } }, policies = set,
      commands = { "rm" } }.verdict)
    -- run_tests runs the project's own command: nothing to ask
    assert.equal("allow", check { tool = "run_tests", args = {} }.verdict)
    -- argv that is not an array is refused by the schema before
    d = check { tool = "run_command", args = { argv = "make test" }, commands = { "make" } }
    assert.equal("ARGS_INVALID", d.code)
  end)

  it("decides COMMAND_ASK in core/gate.c itself, from the tool's effect kind and the commands", function()
    local cgate = require "orket.c.gate"
    local input = { tool = "run_command", tool_known = true, effect = "process", args = { argv = { "make" } } }
    local d = cgate.check(input)
    assert.equal("ask", d.verdict)
    assert.equal("COMMAND_ASK", d.code)
    input.commands = { "make" }
    assert.equal("ALLOWED", cgate.check(input).code)
    -- a tool of another kind runs no program: nothing to ask
    assert.equal("ALLOWED", cgate.check { tool = "x", tool_known = true, effect = "board", args = { argv = { "rm" } } }.code)
    assert.equal("INTERNAL", cgate.check { tool = "x", tool_known = true, effect = "exec", args = {} }.code)
    assert.is_nil(gate.program_check) -- no second decision left in Lua
  end)

  it("reads the effect kinds from one table, the gate's, as the registry and the engine do", function()
    local kinds = {}
    for k in pairs(gate.EFFECTS) do kinds[#kinds + 1] = k end
    table.sort(kinds)
    assert.same({ "board", "mcp", "process", "read", "sandbox", "write" }, kinds)
    assert.same({ writes = true, outside = true, program = false, recover = true, declared = true }, gate.EFFECTS.write)
    assert.is_true(gate.effect { effect = "process" }.program)
    assert.is_true(gate.effect { effect = "mcp" }.outside)
    assert.is_nil(gate.effect { effect = "read" }.outside and true or nil)
    assert.same({}, gate.effect(nil))
    -- the registry refuses a kind no tool file may declare, and recover where the kind has none
    local dir = H.tmpdir()
    H.write(dir .. "/t.lua", 'return { name = "t", description = "d", effect = "mcp", handler = function() end }\n')
    local r, err = tools.load_dirs { dir }
    assert.is_nil(r)
    assert.matches("effect must be", err)
    H.write(dir .. "/t.lua", 'return { name = "t", description = "d", effect = "board", idempotent = true, '
      .. 'handler = function() end }\n')
    r, err = tools.load_dirs { dir }
    assert.is_nil(r)
    assert.matches("idempotent and recover apply only", err)
    H.write(dir .. "/t.lua", 'return { name = "t", description = "d", effect = "sandbox", idempotent = true, '
      .. 'handler = function() end }\n')
    assert.is_table((tools.load_dirs { dir }))
  end)

  it("denies when a predicate cannot be handed the call (a JSON null in the arguments)", function()
    local dir = H.tmpdir()
    H.write(dir .. "/echo.lua", [[return { name = "echo", description = "echo", effect = "read",
      parameters = { type = "object", properties = { a = { type = { "string", "null" } }, b = { type = "string" } } },
      handler = function() return {} end }]])
    local r = assert(tools.load { dir .. "/echo.lua" })
    local set = policies [[ deny { tool = "echo", when = function(c) return c.tool == "echo" end, reason = "no echo" } ]]
    local args = require("orket.llm.common").tool_call("1", "echo", '{"a":null,"b":"x"}').arguments
    local d = check { tool = "echo", tools = r, args = args, policies = set }
    assert.equal("deny", d.verdict)
    assert.equal("POLICY_ERROR", d.code)
    assert.matches("the call cannot be handed to the rule: value.args.a: userdata is not plain data", d.reason, 1, true)
    assert.equal("POLICY_DENY", check { tool = "echo", tools = r, args = { b = "x" }, policies = set }.code)
  end)

  -- the inner deny was listed in the set (one more at every call) and never applied: the
  -- call it named was allowed
  it("denies when a predicate calls deny{}, ask{} or allow{}, naming the rule; the set does not grow", function()
    local set = policies [[
      deny { tool = "read_file", when = function(call) deny { tool = "write_file", reason = "late" } return true end }
      ask { tool = "list_directory", when = function(call) allow { tool = "write_file" } return false end }
    ]]
    for _ = 1, 3 do
      local d = check { tool = "read_file", policies = set, args = { path = "a" } }
      assert.equal("deny", d.verdict)
      assert.equal("POLICY_ERROR", d.code)
      assert.matches("the predicate of policy rule p.lua:1 failed: ", d.reason, 1, true)
      assert.matches("deny{} may only be called while p.lua loads", d.reason, 1, true)
      assert.matches("allow{} may only be called while p.lua loads",
        check { tool = "list_directory", policies = set, args = { path = "." } }.reason, 1, true)
    end
    assert.equal(2, #set.rules)
    assert.equal("allow", check { tool = "write_file", policies = set, args = { path = "a", content = "x" } }.verdict)
  end)

  it("runs predicates under the script budget; a failing predicate denies", function()
    -- no deadline to race: the instruction budget alone must stop the loop
    local set = H.without_deadline(policies, [[
      deny { tool = "write_file", when = function(call) return #call.args.content > 10 end, reason = "too long" }
      deny { tool = "read_file", when = function() while true do end end }
      ask { tool = "list_directory", when = function(call) call.args.path = "hacked" return false end }
    ]])
    assert.equal("deny", check { tool = "write_file", policies = set, args = { path = "a", content = string.rep("x", 11) } }.verdict)
    assert.equal("allow", check { tool = "write_file", policies = set, args = { path = "a", content = "short" } }.verdict)
    local d = check { tool = "read_file", policies = set, args = { path = "a" } }
    assert.equal("POLICY_ERROR", d.code)
    assert.matches("instruction budget exceeded", d.reason)
    assert.matches("EBUDGET", d.reason)
    local args = { path = "src" }
    assert.equal("allow", check { tool = "list_directory", policies = set, args = args }.verdict)
    assert.equal("src", args.path) -- the predicate saw a copy
  end)

  it("records every decision, and every denial as a violation with what/why/how to fix", function()
    local log = {}
    local function record(kind, data) log[#log + 1] = { kind = kind, data = data } end
    check { tool = "read_file", args = { path = "a" }, record = record }
    check { tool = "write_file", args = { path = "../x", content = "y" }, record = record }
    assert.equal(3, #log)
    assert.equal("gate_decision", log[1].kind)
    assert.equal("allow", log[1].data.verdict)
    assert.equal("gate_decision", log[2].kind)
    assert.equal("deny", log[2].data.verdict)
    local v = log[3]
    assert.equal("policy_violation", v.kind)
    assert.matches('^write_file {.*"path":"..\\/x"', v.data.what)
    assert.matches("path escapes root", v.data.why)
    assert.matches("relative to the workspace root", v.data.how_to_fix)
    assert.equal("PATH_ESCAPE", v.data.code)
    assert.equal("ISS-1", v.data.card)
    assert.equal("senior_developer", v.data.seat)
  end)

  it("refuses a call whose argument text was not a JSON object, recording that text", function()
    local log = {}
    local function record(kind, data) log[#log + 1] = { kind = kind, data = data } end
    local bad = "arguments are not valid JSON (Expected value but found T_END at character 10)"
    -- list_directory needs no argument: on {} it would run
    local d = check { tool = "list_directory", args = {}, args_error = bad, raw_args = '{"path": ', record = record }
    assert.equal("deny", d.verdict)
    assert.equal("ARGS_MALFORMED", d.code)
    assert.equal("list_directory: the call's " .. bad, d.reason)
    assert.truthy(#d.remedy > 0)
    assert.equal('{"path": ', log[1].data.args)
    assert.equal("policy_violation", log[2].kind)
    assert.equal('list_directory {"path": ', log[2].data.what)
    assert.equal("ARGS_MALFORMED", log[2].data.code)
    -- policies, the state machine and the schema are not asked about arguments nobody sent
    local asked = false
    local set = policies [[ deny { tool = "*", when = function() return true end } ]]
    set.predicate = function() asked = true return true end
    d = check { tool = "request_input", args = {}, args_error = bad, policies = set }
    assert.equal("ARGS_MALFORMED", d.code)
    assert.is_false(asked)
    -- an unknown tool or one the role may not use is reported as such
    assert.equal("TOOL_UNKNOWN", check { tool = "rm_rf", args = {}, args_error = bad }.code)
    assert.equal("ROLE_FORBIDDEN", check { tool = "read_file", args = {}, args_error = bad, allowed = { "write_file" } }.code)
    -- a huge text is cut in the records
    log = {}
    check { tool = "read_file", args = {}, args_error = bad, raw_args = string.rep("[", 5000), record = record }
    assert.equal(string.rep("[", 500) .. "... (5000 bytes)", log[1].data.args)
    -- cut on a character's start, never through one (invalid UTF-8), and marked so
    log = {}
    check { tool = "read_file", args = {}, args_error = bad, raw_args = "a" .. string.rep("\u{e9}", 600), record = record }
    assert.equal("a" .. string.rep("\u{e9}", 249) .. "... (1201 bytes)", log[1].data.args)
    assert.has_error(function() check { tool = "read_file", args = {}, args_error = 5 } end,
      "bad argument #1 to 'check' (args_error must be a string)")
  end)

  it("refuses lists of tool names and programs that are not lists of strings", function()
    -- what a role's tools and orket.lua's commands are checked by: nil or false is none
    assert.has_error(function() gate.check { tool = "read_file", allowed = { "read_file", 3 } } end,
      "bad argument #1 to 'check' (allowed[2] must be a string)")
    assert.has_error(function() gate.check { tool = "read_file", allowed = "read_file" } end,
      "bad argument #1 to 'check' (allowed must be a list of strings)")
    assert.has_error(function() gate.check { tool = "read_file", commands = { true } } end,
      "bad argument #1 to 'check' (commands[1] must be a string)")
    assert.has_error(function() gate.check { tool = "read_file", actor = { roles = { {} } } } end,
      "bad argument #1 to 'check' (actor.roles[1] must be a string)")
    assert.equal("ROLE_FORBIDDEN", gate.check { tool = "read_file", tools = reg, allowed = {} }.code)
    assert.equal("ALLOWED", gate.check { tool = "read_file", tools = reg, args = { path = "a" }, allowed = false }.code)
  end)

  it("decides the same from compiled schemas and rules as from the tables", function()
    local cgate = require "orket.c.gate"
    local set = policies [[
      deny { tool = "write_file", path = "**/*.env", reason = "no secrets" }
      ask { tool = "delete_file", reason = "asks" }
    ]]
    assert.equal("userdata", type(reg:get("write_file").compiled_schema))
    assert.equal("userdata", type(set.compiled))
    assert.matches("^gate schema", tostring(reg:get("write_file").compiled_schema))
    assert.matches("^gate rules %(2%)", tostring(set.compiled))
    -- a registry and a set without compiled forms (built by hand) take the tables
    local plain_reg = { get = function(_, n)
      local d = reg:get(n)
      return d and { name = d.name, parameters = d.parameters, effect = d.effect }
    end }
    local plain_set = setmetatable({ rules = set.rules, predicates = set.predicates }, getmetatable(set))
    local cases = {
      { tool = "write_file", args = { path = "a/.env", content = "" } },
      { tool = "write_file", args = { path = "a/b", content = "" } },
      { tool = "write_file", args = { path = "../b", content = "" } },
      { tool = "write_file", args = { path = 5 } },
      { tool = "delete_file", args = { path = "x" } },
      { tool = "update_issue_status", args = { status = "finished" } },
    }
    for _, c in ipairs(cases) do
      local a = check { tool = c.tool, args = c.args, policies = set }
      local b = check { tool = c.tool, args = c.args, policies = plain_set, tools = plain_reg }
      assert.same(a, b)
    end
    assert.equal("deny", check { tool = "write_file", args = { path = "a/.env", content = "" }, policies = set }.verdict)
    -- misuse: not a table, a value of the wrong kind, a schema that is not plain data
    assert.has_error(function() cgate.compile_schema("x") end)
    assert.has_error(function() cgate.compile_schema { type = "object", f = print } end,
      "bad argument #1 to 'compile_schema' (argument #1 to 'compile_schema'.f: functions, userdata and threads are not plain data)")
    assert.has_error(function() cgate.compile_rules { { level = "maybe" } } end,
      "bad gate input (rules[1].level must be deny, ask or allow)")
    assert.has_error(function()
      cgate.check { tool = "read_file", args = {}, schema = set.compiled }
    end, "bad gate input (schema must be a table or compile_schema's result)")
    assert.has_error(function()
      cgate.check { tool = "read_file", args = {}, rules = reg:get("read_file").compiled_schema }
    end, "bad gate input (rules must be a rules list or compile_rules' result)")
  end)

  it("decides alike when a check runs inside another's predicate, or after one that raised", function()
    local cgate = require "orket.c.gate"
    local schema = reg:get("write_file").compiled_schema
    local function input(path, extra)
      local t = { tool = "write_file", tool_known = true, effect = "write", schema = schema,
        args = { path = path, content = string.rep("x", 300) } }
      for k, v in pairs(extra or {}) do t[k] = v end
      return t
    end
    local alone = { ok = cgate.check(input("a/b")), bad = cgate.check(input("../b")) }
    assert.equal("allow", alone.ok.verdict)
    assert.equal("deny", alone.bad.verdict)
    -- a predicate that asks the gate itself, while the outer check's arguments are converted
    local inner = {}
    local rules = { { level = "deny", tool = "write_file", predicate = true, reason = "inner said so" } }
    local outer = cgate.check(input("c/d", { rules = rules, predicate = function()
      inner[#inner + 1] = cgate.check(input("../b"))
      inner[#inner + 1] = cgate.check(input("a/b"))
      return true
    end }))
    assert.equal("deny", outer.verdict)
    assert.equal("POLICY_DENY", outer.code)
    assert.same({ alone.bad, alone.ok }, inner)
    -- a check that raises half-way (its arguments converted, then a bad rule) leaves the
    -- next ones whole, also with arguments far larger than one arena block
    for _ = 1, 3 do
      assert.has_error(function() cgate.check(input("a/b", { rules = { { level = "maybe" } } })) end,
        "bad gate input (rules[1].level must be deny, ask or allow)")
      assert.same(alone.ok, cgate.check(input("a/b")))
      assert.same(alone.bad, cgate.check(input("../b")))
      local big = input("a/big")
      big.args.content = string.rep("y", 100000)
      assert.equal("allow", cgate.check(big).verdict)
    end
  end)

  it("measures alike inside a check's predicate, around it and after a measure that raised", function()
    local cgate = require "orket.c.gate"
    local schema = reg:get("write_file").compiled_schema
    local function args(n) return { path = "p" .. n, content = string.rep("x", n) } end
    assert.same({ 3, 1 }, { cgate.measure(schema, args(3), "write") })
    -- measure and check share one arena: a measure the predicate makes while the outer check
    -- holds it counts what it is given, and the outer check still decides on its own arguments
    local inner = {}
    local function check(call_args)
      return cgate.check { tool = "write_file", tool_known = true, effect = "write", schema = schema, args = call_args,
        rules = { { level = "deny", tool = "write_file", predicate = true } },
        predicate = function()
          inner[#inner + 1] = { cgate.measure(schema, args(5), "write") }
          return false
        end }
    end
    local d = check { path = "../b", content = "y" }
    assert.equal("deny", d.verdict)
    assert.equal("PATH_ESCAPE", d.code)
    assert.same({}, inner) -- the path refusal comes before the policies: nothing asked
    d = check(args(2))
    assert.equal("allow", d.verdict)
    assert.same({ { 5, 1 } }, inner)
    for _ = 1, 3 do
      assert.has_error(function() cgate.measure({ type = "object", properties = { path = print } }, args(1), "write") end,
        "bad schema (schema.properties.path: functions, userdata and threads are not plain data)")
      assert.same({ 100000, 1 }, { cgate.measure(schema, args(100000), "write") })
      assert.same({ 7, 1 }, { cgate.measure(schema, args(7), "write") })
    end
  end)

  it("summarizes the arguments of a decision only when the recorder reads them", function()
    local seen
    check { tool = "read_file", args = { path = "a" }, record = function(_, d) seen = d end }
    assert.is_nil(rawget(seen, "args"))
    assert.equal('{"path":"a"}', seen.args)
    assert.is_nil(seen.nothing)
  end)

  it("counts calls, bytes and files", function()
    local c = {}
    local def = reg:get("write_file")
    gate.counters_add(c, def, { path = "a", content = "hello" })
    gate.counters_add(c, reg:get("read_file"), { path = "a" })
    assert.same({ calls = 2, bytes = 5, files = 1 }, c.turn)
    local d = check { tool = "write_file", args = { path = "b", content = "x" }, counters = c, limits = { files_turn = 1 } }
    assert.equal("LIMIT_EXCEEDED", d.code)
    assert.matches("files touched", d.reason)
    -- no limits (nil or false): the defaults
    for _, none in ipairs { false, nil } do
      d = check { tool = "write_file", args = { path = "b", content = "x" }, counters = c, limits = none }
      assert.equal("allow", d.verdict, tostring(none))
    end
    assert.has_error(function() check { tool = "write_file", args = { path = "b" }, limits = 3 } end,
      "bad argument #1 to 'check' (limits must be a table)")
    -- limits are read by name, as any field: a proxy's __index is honoured
    local proxy = setmetatable({}, { __index = { files_turn = 1 } })
    d = check { tool = "write_file", args = { path = "b", content = "x" }, counters = c, limits = proxy }
    assert.equal("LIMIT_EXCEEDED", d.code)
  end)

  it("confines paths nested in objects and lists, naming the argument", function()
    local dir = H.tmpdir()
    H.write(dir .. "/apply_edits.lua", [[
      return { name = "apply_edits", description = "edits several files", effect = "write",
        parameters = { type = "object", properties = {
          edits = { type = "array", items = { type = "object", properties = {
            path = { type = "string", format = "path" },
            content = { type = "string", format = "content" } } } },
          target = { type = "object", properties = {
            path = { type = "string", format = "path" },
            also = { type = "array", items = { type = "string", format = "path" } } } } } },
        handler = function() return {} end }]])
    local r = assert(tools.load { dir .. "/apply_edits.lua" })
    local function call(args, extra)
      local t = { tool = "apply_edits", tools = r, args = args }
      for k, v in pairs(extra or {}) do t[k] = v end
      return check(t)
    end
    local good = { edits = { { path = "a.c", content = "abc" }, { path = "src/b.c", content = "de" } },
                   target = { path = "src", also = { "lib/x", "lib/y" } } }
    assert.equal("allow", call(good).verdict)
    local cases = {
      { { edits = { { path = "a.c" }, { path = "../../etc/passwd" } } }, "PATH_ESCAPE", "argument 'edits[1].path'" },
      { { edits = { { path = "/etc/passwd" } } }, "PATH_ESCAPE", "argument 'edits[0].path'" },
      { { target = { path = "x/../../y" } }, "PATH_ESCAPE", "argument 'target.path'" },
      { { target = { also = { "ok", "../up" } } }, "PATH_ESCAPE", "argument 'target.also[1]'" },
      { { edits = { { path = ".git/hooks/pre-commit", content = "x" } } }, "PATH_PROTECTED", "argument 'edits[0].path' names a protected path" },
      { { target = { also = { ".orket/x" } } }, "PATH_PROTECTED", "argument 'target.also[0]'" },
    }
    for _, c in ipairs(cases) do
      local d = call(c[1])
      assert.equal("deny", d.verdict)
      assert.equal(c[2], d.code)
      assert.is_truthy(d.reason:find(c[3], 1, true), d.reason)
    end
    -- properties not listed, under an additionalProperties schema, get the same checks
    H.write(dir .. "/put_many.lua", [[
      return { name = "put_many", description = "files by name", effect = "write",
        parameters = { type = "object", properties = { note = { type = "string" } },
          additionalProperties = { type = "string", format = "path" } },
        handler = function() return {} end }]])
    local r2 = assert(tools.load { dir .. "/put_many.lua" })
    assert.equal("allow", check { tool = "put_many", tools = r2, args = { note = "../n", a = "src/x" } }.verdict)
    local d2 = check { tool = "put_many", tools = r2, args = { note = "n", a = "../../etc/passwd" } }
    assert.equal("PATH_ESCAPE", d2.code)
    assert.is_truthy(d2.reason:find("argument 'a'", 1, true), d2.reason)
    d2 = check { tool = "put_many", tools = r2, args = { a = 5 } }
    assert.equal("ARGS_INVALID", d2.code)
    -- per-turn file and byte limits count nested values
    local d = call(good, { limits = { files_turn = 5 } })
    assert.equal("allow", d.verdict)
    d = call(good, { limits = { files_turn = 4 } })
    assert.equal("LIMIT_EXCEEDED", d.code)
    assert.matches("this call adds 5", d.reason)
    d = call(good, { limits = { bytes_turn = 4 } })
    assert.equal("LIMIT_EXCEEDED", d.code)
    assert.matches("bytes written", d.reason)
    -- operator path rules see nested paths
    local p = policies [[deny { path = "lib/**", reason = "lib is vendored" }]]
    d = call(good, { policies = p })
    assert.equal("POLICY_DENY", d.code)
    assert.matches("lib is vendored", d.reason)
    -- and the counters agree with the gate
    local c = {}
    gate.counters_add(c, r:get("apply_edits"), good)
    assert.same({ calls = 1, bytes = 5, files = 5 }, c.turn)
  end)

  it("reads its input as handed: no actor, card, counters or arguments, a number for a card id", function()
    -- an absent actor, card, counters or arguments counts as empty
    local d = gate.check { tool = "read_file", tools = reg }
    assert.same({ "deny", "ARGS_INVALID" }, { d.verdict, d.code })
    assert.matches("args.path: required argument is missing", d.reason, 1, true)
    assert.equal("ALLOWED", gate.check { tool = "read_file", tools = reg, args = { path = "a" }, actor = false,
      card = false, counters = false, limits = false }.code)
    local set = policies [[ deny { tool = "read_file", card = "7", reason = "not card 7" } ]]
    d = gate.check { tool = "read_file", tools = reg, policies = set, args = { path = "a" }, card = { id = 7 } }
    assert.same({ "deny", "POLICY_DENY" }, { d.verdict, d.code })
    -- the checks keep their order: the tool's definition is asked for after the actor's
    local asked = 0
    local counting = { get = function(_, name) asked = asked + 1 return reg:get(name) end }
    assert.has_error(function() gate.check { tool = "x", tools = counting, actor = 1, args_error = 1 } end,
      "bad argument #1 to 'check' (actor must be a table)")
    assert.equal(0, asked)
    assert.has_error(function() gate.check { tool = "x", tools = counting, args_error = false } end,
      "bad argument #1 to 'check' (args_error must be a string)")
    assert.equal(1, asked)
    assert.has_error(function() gate.check { tool = "x", limits = "x" } end, "bad argument #1 to 'check' (limits must be a table)")
  end)

  it("refuses a tool registry or definition of the wrong type, never counting the tool as known", function()
    -- false (or any value that is not a registry) made every tool known, so an unknown tool
    -- was allowed
    for _, bad in ipairs { false, true, 5, "tools" } do
      assert.has_error(function() gate.check { tool = "no_such_tool", tools = bad } end,
        "bad argument #1 to 'check' (tools must be a tool registry, got " .. type(bad) .. ")")
    end
    for _, bad in ipairs { false, true, 5, "read_file" } do
      local odd = { get = function() return bad end }
      assert.has_error(function() gate.check { tool = "no_such_tool", tools = odd } end,
        "bad argument #1 to 'check' (tools:get('no_such_tool') must return a tool definition or nil, got "
        .. type(bad) .. ")")
    end
    -- no registry at all: no tool is known
    assert.equal("TOOL_UNKNOWN", gate.check { tool = "no_such_tool" }.code)
    assert.equal("TOOL_UNKNOWN", gate.check { tool = "no_such_tool", tools = reg }.code)
  end)

  it("matches names and globs whole: a NUL byte never cuts one short", function()
    -- a glob is refused, the subject matched whole ("*\0.env" was "*" and matched anything)
    assert.has_error(function() gate.glob("*\0.env", "abc") end, "bad argument #1 to 'glob' (pattern holds a NUL byte)")
    assert.is_true(gate.glob("a*", "a\0b"))
    assert.is_false(gate.glob("a", "a\0"))
    -- a policy's glob: read to its NUL, this allow rule let every run_command program through
    local dir = H.tmpdir()
    H.write(dir .. "/p.lua", 'allow { tool = "run_command\\0 (never)" }')
    local set, msg = policy.load { dir .. "/p.lua" }
    assert.is_nil(set)
    assert.matches('p.lua:1: allow.tool "run_command\\x00 (never)" can match no tool, so the rule would never '
      .. "apply: it holds a control character (shown escaped)", msg, 1, true)
    -- any other glob: named as the operator wrote it, not by its place in the loaded set
    -- (rules[N].paths[2], N counting Orket's own rules before the file's)
    H.write(dir .. "/p.lua", 'deny { tool = "read_file" }\nallow { tool = "write_file", path = { "a", "*\\0.env" } }')
    set, msg = policy.load { dir .. "/p.lua" }
    assert.is_nil(set)
    assert.equal('p.lua:2: allow.path[2] "*\\x00.env" holds a NUL byte (shown escaped), which a glob may not hold',
      msg:match("[^/]*$"))
    H.write(dir .. "/p.lua", 'ask { args = { ["path\\0"] = "x" } }')
    set, msg = policy.load { dir .. "/p.lua" }
    assert.is_nil(set)
    assert.matches('p.lua:1: ask.args: the argument name "path\\x00" holds a NUL byte (shown escaped)', msg, 1, true)
    for _, f in ipairs { "role", "seat", "card", "status" } do
      H.write(dir .. "/p.lua", "\ndeny { " .. f .. ' = "c\\0" }')
      set, msg = policy.load { dir .. "/p.lua" }
      assert.is_nil(set)
      -- a role's or seat's, as a tool's: no such name holds a control character
      assert.matches("p.lua:2: deny." .. f .. ' "c\\x00" ' .. ((f == "role" or f == "seat")
        and ("can match no " .. f .. ", so the rule would never apply: it holds a control character (shown escaped)")
        or "holds a NUL byte"), msg, 1, true)
      assert.is_nil(msg:find("rules[", 1, true))
    end
    local cgate = require "orket.c.gate"
    for field, rule in pairs {
      ["rules[1].role"] = { level = "allow", role = "c\0" },
      ["rules[1].seat"] = { level = "allow", seat = "c\0" },
      ["rules[1].card"] = { level = "allow", card = "c\0" },
      ["rules[1].status"] = { level = "allow", status = "c\0" },
      ["rules[1].paths[2]"] = { level = "allow", paths = { "a", "*\0.env" } },
      ["rules[1].outside[1]"] = { level = "deny", outside = { "src/**\0" } },
      ["rules[1].args[1]'s key"] = { level = "allow", args = { { "path\0", "x" } } },
      ["rules[1].args[1]'s glob"] = { level = "allow", args = { { "path", "x\0" } } },
    } do
      assert.has_error(function() cgate.compile_rules { rule } end, "bad gate input (" .. field .. " holds a NUL byte)")
    end
    -- the caller's names: "lead\0x" matched what "lead" matches
    local allow_lead = policies [[ allow { tool = "run_command", seat = "lead", role = "lead", card = "ISS-1", status = "in_progress" } ]]
    local call = { tool = "run_command", args = { argv = { "rm" } }, policies = allow_lead,
      actor = { seat = "lead", roles = { "lead" } } }
    assert.equal("POLICY_ALLOW", check(call).code)
    for field, input in pairs {
      seat = { actor = { seat = "lead\0x", roles = { "lead" } } },
      ["roles[1]"] = { actor = { seat = "lead", roles = { "lead\0x" } } },
      card_id = { card = { id = "ISS-1\0x", status = "in_progress" } },
      card_status = { card = { id = "ISS-1", status = "in_progress\0x" } },
    } do
      local t = { tool = call.tool, args = call.args, policies = allow_lead, actor = input.actor or call.actor, card = input.card }
      assert.has_error(function() check(t) end, "bad gate input (" .. field .. " holds a NUL byte)")
    end
    assert.has_error(function() check { tool = "read_file", args = { path = "a" }, allowed = { "read_file\0x" } } end,
      "bad argument #1 to 'check' (allowed[1] holds a NUL byte)")
    assert.has_error(function() check { tool = "run_command", args = { argv = { "rm" } }, commands = { "rm\0x" } } end,
      "bad argument #1 to 'check' (commands[1] holds a NUL byte)")
    -- the model's tool name, even one a registry knows: no tool, never run_command to a rule
    local lenient = { get = function(_, name) return reg:get((name:gsub("\0.*", ""))) end }
    local d = check { tool = "run_command\0x", tools = lenient, args = call.args, policies = allow_lead, actor = call.actor }
    assert.same({ "deny", "TOOL_UNKNOWN", "no tool named 'run_command?x'" }, { d.verdict, d.code, d.reason })
  end)

  it("rejects misuse with the argument named", function()
    assert.has_error(function() gate.check(nil) end, "bad argument #1 to 'check' (table expected, got nil)")
    assert.has_error(function() gate.check { tool = 5 } end, "bad argument #1 to 'check' (tool must be a string)")
    assert.has_error(function() gate.check { tool = "x", actor = { roles = { 1 } } } end,
      "bad argument #1 to 'check' (actor.roles[1] must be a string)")
  end)
end)

describe("policy.load", function()
  after_each(H.cleanup)
  local function load_err(src)
    local dir = H.tmpdir()
    H.write(dir .. "/bad.lua", src)
    local set, msg, code = policy.load { dir .. "/bad.lua" }
    assert.is_nil(set)
    return msg, code
  end

  it("names the file and line of a bad rule", function()
    local msg = load_err("\n\ndeny { tool = 'x', paht = 'a' }")
    assert.matches("bad.lua:3: unknown field 'paht' in deny rule", msg, 1, true)
    -- of several unknown fields the misspelt one, whatever the table's order
    for _ = 1, 5 do
      msg = load_err("deny { aaa = 1, bbb = 2, ccc = 3, ddd = 4, tol = 'x', eee = 5, path = {} }")
      assert.matches("bad.lua:1: unknown field 'tol' in deny rule", msg, 1, true)
    end
    msg = load_err("ask { path = {} }")
    assert.matches("ask.path must be a glob or a list of globs", msg, 1, true)
    -- a rule over several lines: the field's own line, not the rule's first (within the
    -- rule: a later rule's field of the same name is not taken for it)
    msg = load_err("deny {\n  tool = 't',\n\n  path = { 'a', 7 },\n  reason = 'r' }\n")
    assert.matches("bad.lua:4: deny.path[2] must be a non-empty glob string", msg, 1, true)
    msg = load_err("deny {\n  tool = 't',\n  reson = 'typo' }\n")
    assert.matches("bad.lua:3: unknown field 'reson'", msg, 1, true)
    msg = load_err("local spec = { tool = 7 }\ndeny(spec)\nask {\n  tool = 'x' }\n")
    assert.matches("bad.lua:2: deny.tool must be a non-empty glob string", msg, 1, true)
    local code
    msg, code = load_err("deny {")
    assert.equal("ESYNTAX", code)
    msg, code = H.without_deadline(load_err, "while true do end")
    assert.equal("EBUDGET", code)
    msg = load_err("io.open('/etc/passwd')")
    assert.matches("undefined global 'io'", msg)
  end)

  -- a file shaped as a role or tool is (return { deny = {...} }) declared no rule: the gate
  -- allowed what it meant to deny, and orket validate said ok
  it("refuses a file that returns a value instead of declaring its rules", function()
    local msg, code = load_err("return { deny = { { tool = 'write_file' } } }")
    assert.equal("EINVAL", code)
    assert.matches("bad.lua: returns a table, which a policy file does not: it declares its rules by calling "
      .. "deny { ... }, ask { ... } or allow { ... }", msg, 1, true)
    msg = load_err("deny { tool = 'x' } return true")
    assert.matches("bad.lua: returns a boolean", msg, 1, true)
    -- rules and nothing returned (or nil) load as before
    local dir = H.tmpdir()
    H.write(dir .. "/ok.lua", "deny { tool = 'x' } return nil")
    assert.equal(1, #assert(policy.load { dir .. "/ok.lua" }).rules)
  end)

  -- a tool is named in letters, digits and _ (an MCP server's get-sum is SERVER__get_sum): a
  -- rule spelling it with a - or . (or a control character) never matched, and while the
  -- server was down nothing said so
  it("refuses a tool glob that can match no tool's name, naming the rule and the name to write", function()
    local msg = load_err("deny { tool = 'read_file' }\n\ndeny { tool = 'srv__get-sum', reason = 'no' }")
    assert.equal('bad.lua:3: deny.tool "srv__get-sum" can match no tool, so the rule would never apply: Orket '
      .. "names the MCP server srv's tool get-sum srv__get_sum (a - or . reads _): write \"srv__get_sum\"",
      msg:match("[^/]*$"))
    msg = load_err("ask { tool = 'srv__admin.tools.*' }")
    assert.matches('bad.lua:1: ask.tool "srv__admin.tools.*" can match no tool', msg, 1, true)
    assert.matches('write "srv__admin_tools_*"', msg, 1, true)
    msg = load_err("allow { tool = 'get-sum' }")
    assert.matches("a tool's name is letters, digits and _ (an MCP tool's - or . reads _): write \"get_sum\"", msg, 1, true)
    -- a control character, shown escaped, and any other character no name holds
    msg = load_err("deny { tool = 'srv__a\\27[31m\\n' }")
    assert.matches('bad.lua:1: deny.tool "srv__a\\x1b[31m\\n" can match no tool, so the rule would never apply: it '
      .. "holds a control character (shown escaped), which no tool's name has: a tool of the MCP server srv is "
      .. "named srv__TOOL, TOOL in letters, digits and _", msg, 1, true)
    for _, g in ipairs { "a b", "*/read_file", "read_file/**", "re:ad" } do
      msg = load_err("deny { tool = '" .. g .. "' }")
      assert.matches('bad.lua:1: deny.tool "' .. g .. '" can match no tool', msg, 1, true)
    end
    -- globs of names load, wildcards and all ("**/" may match no folder at all)
    local dir = H.tmpdir()
    H.write(dir .. "/ok.lua", "deny { tool = '*_file' } ask { tool = 'everything__get_*' } allow { tool = '?ead_file' }"
      .. " deny { tool = '**/read_file' } deny { tool = '***' } deny { tool = 'Srv__Get_Sum2' }")
    local set = assert(policy.load { dir .. "/ok.lua" })
    assert.equal(6, #set.rules)
    assert.equal("deny", check { tool = "read_file", policies = set, args = { path = "x" } }.verdict)
  end)

  it("loads the default policy: delete asks, secrets are denied", function()
    local set = assert(policy.load(policy.files_in { H.ROOT .. "/policies" }))
    assert.equal("ask", check { tool = "delete_file", policies = set, args = { path = "x" } }.verdict)
    assert.equal("deny", check { tool = "read_file", policies = set, args = { path = "config/.env" } }.verdict)
  end)

  it("names a policy to the model without Orket's install path or the project's directory", function()
    local home = require("orket.c.runtime").home()
    local set = assert(policy.load(policy.files_in { home .. "/policies" }))
    local d = check { tool = "delete_file", policies = set, args = { path = "x" } }
    assert.equal("POLICY_ASK", d.code)
    assert.matches("(policy orket:policies/default.lua:", d.reason, 1, true)
    assert.is_nil(d.reason:find(home, 1, true), d.reason)
    local proj = H.tmpdir()
    os.execute("mkdir -p " .. proj .. "/policies")
    H.write(proj .. "/policies/extra.lua", "\ndeny { tool = 'read_file', path = 'private/**' }")
    set = assert(policy.load { proj .. "/policies/extra.lua" })
    d = check { tool = "read_file", policies = set, args = { path = "private/a" } }
    assert.matches("(policy policies/extra.lua:2)", d.reason, 1, true)
    assert.is_nil(d.reason:find(proj, 1, true), d.reason)
    -- the operator's load errors still give the whole path
    H.write(proj .. "/policies/bad.lua", "deny { colour = 'red' }")
    local _, msg = policy.load { proj .. "/policies/bad.lua" }
    assert.matches(proj .. "/policies/bad.lua:1:", msg, 1, true)
  end)

  it("lets a project's file replace Orket's of the same name, and others add to it", function()
    local proj = H.tmpdir()
    os.execute("mkdir -p " .. proj .. "/policies")
    H.write(proj .. "/policies/default.lua", "allow { tool = 'delete_file' }")
    H.write(proj .. "/policies/extra.lua", "deny { tool = 'read_file', path = 'private/**' }")
    local files = policy.files_in { H.ROOT .. "/policies", proj .. "/policies", proj .. "/missing" }
    assert.same({ proj .. "/policies/default.lua", proj .. "/policies/extra.lua" }, files)
    local set = assert(policy.load(files))
    assert.equal("allow", check { tool = "delete_file", policies = set, args = { path = "x" } }.verdict)
    assert.equal("deny", check { tool = "read_file", policies = set, args = { path = "private/a" } }.verdict)
  end)

  it("writes a card's facts into the table it is given, the same facts as a new table's", function()
    local deps = 1
    local board = { open_deps = function() return deps end }
    local card = { id = "ISS-1", status = "in_progress", type = "issue", worked_by = "senior_developer", summary = "s" }
    local into = { id = "old" }
    assert.equal(into, gate.card_facts(board, card, into))
    assert.same(gate.card_facts(board, card), into)
    assert.same({ id = "ISS-1", status = "in_progress", type = "issue", worked_by = "senior_developer",
      deps_done = false }, into)
    -- written again at every call: a field the next card lacks is not left from the last
    deps = 0
    gate.card_facts(board, { id = "ISS-2", status = "ready", type = "issue" }, into)
    assert.same({ id = "ISS-2", status = "ready", type = "issue", deps_done = true }, into)
  end)

  it("gives policy scripts exactly the allow-listed globals plus deny/ask/allow/glob", function()
    local dir = H.tmpdir()
    H.write(dir .. "/keys.lua", [[
      local names = {}
      for k in pairs(_G) do names[#names + 1] = k end
      table.sort(names)
      deny { tool = "x", reason = table.concat(names, " ") }]])
    local set = assert(policy.load { dir .. "/keys.lua" })
    assert.equal("_G _VERSION allow ask assert collectgarbage coroutine deny error getmetatable glob ipairs " ..
      "load math next os pairs pcall rawequal rawget rawlen rawset select setmetatable string table " ..
      "tonumber tostring type utf8 xpcall", set.rules[1].reason)
  end)
end)

