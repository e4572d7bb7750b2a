-- A policy rule's ignore_case: its path, outside and args globs match ASCII letters in either
-- case (core/gate.c, GATE_GLOB_IGNORE_CASE), and the default policy's secrets and CI rules use
-- it: SERVER.PEM, Prod.ENV and ID_RSA from a Windows or macOS checkout are secrets too, and
-- .GITHUB/workflows is CI configuration where the filesystem ignores case. Without the
-- option a glob still compares bytes exactly.
local H = require "tests.helpers"
local policy = require "orket.policy"
local gate = require "orket.gate"
local tools = require "orket.tools"
local cgate = require "orket.c.gate"

-- orket gate check's first line for the coder's call of tool on path, in the notes example
local function answer(dir, tool, path)
  local args = tool == "write_file" and string.format('{"path":"%s","content":"x"}', path)
    or string.format('{"path":"%s"}', path)
  local r = H.orket("gate check --role coder --tool " .. tool .. " --args " .. H.quote(args), { cwd = dir })
  return (r.stdout:match("^[^\n]*") or "") .. (r.stderr ~= "" and (" / " .. r.stderr) or "")
end

local function load(src)
  local dir = H.tmpdir()
  H.write(dir .. "/p.lua", src)
  return policy.load({ dir .. "/p.lua" }, dir)
end

describe("policies' letter case", function()
  after_each(H.cleanup)

  it("the default policy denies secrets files and asks for CI configuration in any letter case", function()
    local dir = H.example("notes", { import = false })
    local want = {
      { "read_file", ".env", "deny (POLICY_DENY)" },
      { "read_file", ".ENV", "deny (POLICY_DENY)" },
      { "read_file", "config/PROD.ENV", "deny (POLICY_DENY)" },
      { "read_file", "Prod.Env", "deny (POLICY_DENY)" },
      { "read_file", "key.pem", "deny (POLICY_DENY)" },
      { "read_file", "KEY.PEM", "deny (POLICY_DENY)" },
      { "read_file", "certs/SERVER.PEM", "deny (POLICY_DENY)" },
      { "read_file", "id_rsa", "deny (POLICY_DENY)" },
      { "read_file", "ID_RSA", "deny (POLICY_DENY)" },
      { "write_file", ".github/workflows/ci.yml", "ask (POLICY_ASK)" },
      { "write_file", ".GITHUB/workflows/ci.yml", "ask (POLICY_ASK)" },
      { "write_file", ".github/Workflows/ci.yml", "ask (POLICY_ASK)" },
      { "write_file", "JENKINSFILE", "ask (POLICY_ASK)" },
      -- still globs: other names are not caught, reading CI configuration is not asked
      { "read_file", ".GITHUB/workflows/ci.yml", "allow (ALLOWED)" },
      { "read_file", "PEM.txt", "allow (ALLOWED)" },
      { "write_file", "src/Jenkinsfile.md", "allow (ALLOWED)" },
    }
    local got, expect = {}, {}
    for i, w in ipairs(want) do
      got[i] = w[1] .. " " .. w[2] .. ": " .. answer(dir, w[1], w[2])
      expect[i] = w[1] .. " " .. w[2] .. ": " .. w[3]
    end
    assert.same(expect, got)
  end)

  it("matches a rule's path, outside and args globs in either case with ignore_case; exactly without it", function()
    local set = assert(load(table.concat({
      'deny { tool = "write_file", path = "**/*.key", ignore_case = true, reason = "key" }',
      'deny { tool = "write_file", path = "**/*.crt", reason = "crt" }',
      'deny { tool = "write_file", outside = "src/**", ignore_case = true, reason = "outside" }',
      'ask { tool = "write_file", args = { content = "*SECRET*" }, ignore_case = true, reason = "secret" }',
    }, "\n")))
    assert.is_true(set.rules[1].ignore_case)
    local registry = assert(tools.load_dirs { H.ROOT .. "/tools" })
    local function reason(path, content)
      local d = gate.check { tool = "write_file", policies = set, tools = registry,
        args = { path = path, content = content or "x" }, card = { id = "E-1", status = "in_progress" },
        actor = { seat = "senior_developer", roles = { "coder" } } }
      return d.verdict .. (d.reason:match("write_file: (%w+) %(policy") and (" " .. d.reason:match("write_file: (%w+)")) or "")
    end
    assert.equal("deny key", reason("src/A.KEY"))
    assert.equal("deny crt", reason("src/a.crt"))
    assert.equal("allow", reason("src/A.CRT")) -- no ignore_case: bytes compared exactly
    -- a deny rule's outside stays exact (fail closed): on Linux SRC/ is not src/, and
    -- folding it let a write out of src/**
    assert.equal("deny outside", reason("SRC/main.c"))
    assert.equal("deny outside", reason("lib/main.c"))
    assert.equal("ask secret", reason("src/a.c", "a Secret here"))
    assert.equal("allow", reason("src/a.c", "nothing"))
  end)

  it("keeps tool, role, seat, card and status exact, and refuses ignore_case with no glob it applies to", function()
    local set = assert(load('deny { tool = "write_file", role = "coder", path = "x", ignore_case = true }'))
    local d = cgate.check { tool = "write_file", tool_known = true, roles = { "CODER" }, rules = set.compiled,
      schema = { type = "object", properties = { path = { type = "string", format = "path" } } },
      args = { path = "X" } }
    assert.equal("ALLOWED", d.code)
    local nope, msg, code = load('\ndeny { tool = "read_file", ignore_case = true }')
    assert.is_nil(nope)
    assert.equal("EINVAL", code)
    assert.matches("p.lua:2: deny.ignore_case applies to the rule's path, outside and args globs, and it gives none",
      msg, 1, true)
    -- false says what the default says
    assert.is_not_nil(load('allow { tool = "read_file", ignore_case = false }'))
  end)

  it("orket validate refuses an ignore_case that is not true or false, naming the file, line and field", function()
    local dir = H.example("notes", { import = false })
    assert(os.execute("mkdir " .. H.quote(dir .. "/policies")))
    for _, bad in ipairs { { '"yes"', '"yes"' }, { "1", "1" }, { "{}", "a table" } } do
      H.write(dir .. "/policies/case.lua", '-- secrets\ndeny { tool = "read_file", path = "*.key", ignore_case = '
        .. bad[1] .. " }\n")
      local v = H.orket("validate", { cwd = dir })
      assert.equal(1, v.status, v.stdout .. v.stderr)
      assert.matches("policies/case.lua:2: deny.ignore_case must be true or false, not " .. bad[2],
        v.stdout .. v.stderr, 1, true)
    end
    H.write(dir .. "/policies/case.lua", 'deny { tool = "read_file", path = "*.key", ignore_case = true }\n')
    local v = H.orket("validate", { cwd = dir })
    assert.equal(0, v.status, v.stdout .. v.stderr)
  end)

  it("glob(pattern, s, {ignore_case = true}) is the same match for a script", function()
    assert.is_false(cgate.glob("**/*.pem", "certs/SERVER.PEM"))
    assert.is_true(cgate.glob("**/*.pem", "certs/SERVER.PEM", { ignore_case = true }))
    assert.is_false(cgate.glob("*.pem", "certs/SERVER.PEM", { ignore_case = true }))
    assert.is_false(cgate.glob("**/*.pem", "certs/SERVER.PEM", { ignore_case = false }))
    assert.has_error(function() cgate.glob("*", "x", true) end)
    local ok, err = pcall(cgate.glob, "*", "x", { ignore_case = "yes" })
    assert.is_false(ok)
    assert.matches("ignore_case must be true or false", err, 1, true)
  end)
end)
