-- orket.lua's engine settings: defaults, overrides, and errors that name the field.
local settings = require "orket.engine.settings"
local gate = require "orket.gate"

describe("engine settings", function()
  it("fill every section with defaults", function()
    local s = assert(settings.resolve {})
    assert.equal(3, s.concurrency)
    assert.same(gate.DEFAULT_LIMITS, s.limits)
    assert.equal(6, s.budgets.turns_per_card)
  end)

  it("let orket.lua raise the gate's limits for a large run", function()
    local s = assert(settings.resolve { limits = { calls_run = 5000 } })
    assert.equal(5000, s.limits.calls_run)
    assert.equal(gate.DEFAULT_LIMITS.calls_turn, s.limits.calls_turn)
    -- and the gate applies them
    local d = gate.check { actor = { seat = "s", roles = { "coder" } }, tool = "read_file",
      args = { path = "a" }, tools = assert(require("orket.tools").load_dirs { package.orket_home .. "/tools" }),
      counters = { run = { calls = 1000 } }, limits = s.limits }
    assert.equal("allow", d.verdict)
    d = gate.check { actor = { seat = "s", roles = { "coder" } }, tool = "read_file",
      args = { path = "a" }, tools = assert(require("orket.tools").load_dirs { package.orket_home .. "/tools" }),
      counters = { run = { calls = 1000 } } }
    assert.equal("LIMIT_EXCEEDED", d.code)
  end)

  it("refuse unknown and malformed fields, naming them", function()
    local s, err, code = settings.resolve { limits = { calls = 5 } }
    assert.is_nil(s)
    assert.equal("EINVAL", code)
    assert.matches("orket.lua: limits.calls: unknown setting", err)
    s, err = settings.resolve { limits = { calls_run = "many" } }
    assert.is_nil(s)
    assert.matches("orket.lua: limits.calls_run", err)
    s, err = settings.resolve { concurrency = 0 }
    assert.is_nil(s)
    assert.matches("orket.lua: concurrency", err)
  end)
end)
