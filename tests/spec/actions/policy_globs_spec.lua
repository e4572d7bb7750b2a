-- orket.policy refuses a role or seat glob that can match no role's or seat's name, as it
-- refuses such a tool glob (one check for the three), and a rule it refuses is bad input:
-- EINVAL, whether the file let the error end its load or not. A failing script stays ERUNTIME.
local H = require "tests.helpers"
local policy = require "orket.policy"
local gate = require "orket.gate"
local tools = require "orket.tools"

local function load_err(src)
  local dir = H.tmpdir()
  H.write(dir .. "/bad.lua", src)
  local set, msg, code = policy.load { dir .. "/bad.lua" }
  assert.is_nil(set)
  assert.equal(dir .. "/", msg:sub(1, #dir + 1)) -- the file named by its path
  return msg:sub(#dir + 2), code
end

local function loads(src)
  local dir = H.tmpdir()
  H.write(dir .. "/ok.lua", src)
  local set, msg = policy.load { dir .. "/ok.lua" }
  assert.is_not_nil(set, msg)
  return set
end

describe("policy.load's role and seat globs", function()
  after_each(H.cleanup)

  it("refuse a role glob holding a character no role's name has, saying which", function()
    local msg, code = load_err("\ndeny { tool = 'write_file', role = 'senior-dev' }")
    assert.equal("EINVAL", code)
    assert.equal('bad.lua:2: deny.role "senior-dev" can match no role, so the rule would never apply: no role\'s name '
      .. 'holds "-": a role is named by its file, roles/NAME.lua, NAME in letters, digits and _ (wildcards: *, **, ?)', msg)
    for _, g in ipairs { "lead dev", "coder.*", "roles/coder", "*/coder" } do
      msg = load_err("ask { role = '" .. g .. "' }")
      assert.matches('bad.lua:1: ask.role "' .. g .. '" can match no role', msg, 1, true)
    end
    msg = load_err("allow { role = 'co\\27[31mder' }")
    assert.matches('bad.lua:1: allow.role "co\\x1b[31mder" can match no role, so the rule would never apply: it holds '
      .. "a control character (shown escaped), which no role's name has: a role is named by its file", msg, 1, true)
  end)

  it("refuse a seat glob holding a character no seat's name has; a seat's - is one", function()
    local msg, code = load_err("deny { seat = 'senior.dev' }")
    assert.equal("EINVAL", code)
    assert.equal('bad.lua:1: deny.seat "senior.dev" can match no seat, so the rule would never apply: no seat\'s name '
      .. 'holds ".": a seat of orket.lua\'s team is named in letters, digits, _ and - (wildcards: *, **, ?)', msg)
    msg = load_err("deny { seat = 'lead\\n' }")
    assert.matches('bad.lua:1: deny.seat "lead\\n" can match no seat, so the rule would never apply: it holds a control '
      .. "character (shown escaped), which no seat's name has", msg, 1, true)
    -- team = { ["senior-dev"] = ... } is a seat (orket.settings), and the rule applies to it
    local set = loads("deny { tool = 'write_file', seat = 'senior-*' } ask { role = '*_guard', seat = '**/lead' }"
      .. " allow { role = '?oder', seat = 'Lead_2' }")
    assert.equal(3, #set.rules)
    local d = gate.check { tool = "write_file", policies = set, args = { path = "x", content = "" },
      tools = assert(tools.load_dirs { H.ROOT .. "/tools" }), card = { id = "E-1", status = "in_progress" },
      actor = { seat = "senior-dev", roles = { "coder" } } }
    assert.equal("POLICY_DENY", d.code)
  end)

  it("leave the card and status globs as they were", function()
    assert.equal(2, #loads("deny { card = 'E-1.*' } ask { status = 'in progress' }").rules)
  end)
end)

describe("policy.load's error codes", function()
  after_each(H.cleanup)

  it("are EINVAL for a rule refused, caught by the file or not", function()
    for _, src in ipairs {
      "deny { tool = 'x', paht = 'a' }",                -- unknown field
      "deny { tool = 'a b' }",                          -- a tool glob no name matches
      "deny { tool = 'x' }\nask { path = {} }",         -- a field of the wrong shape
      "pcall(deny, { tool = 'x', paht = 'a' })",         -- caught: the rule still missing
      "deny { tool = 'x', paht = 'a' } error('then')",  -- never reached: the load ended at the rule
    } do
      local msg, code = load_err(src)
      assert.equal("EINVAL", code, src .. ": " .. msg)
    end
  end)

  it("stay ERUNTIME for a script that fails, ESYNTAX for one that does not compile", function()
    local msg, code = load_err("local t = nil\nt.x = 1")
    assert.equal("ERUNTIME", code, msg)
    assert.matches("bad.lua:2: attempt to index a nil value", msg, 1, true)
    assert.equal("ERUNTIME", select(2, load_err("error('no')")))
    assert.equal("ESYNTAX", select(2, load_err("deny {")))
  end)
end)
