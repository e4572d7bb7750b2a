-- orket.lua's lists and the settings validate refuses although a run would start with them:
-- a set or a holed array where a list is asked (verify.require, verify.commands, the view's
-- paths, verify.command, a seat's roles) is refused naming the field and the key, not read
-- as fewer names; a layer both required and switched off, and a budget of 0 that would
-- allow nothing, are refused by orket validate, each on its line.
local settings = require "orket.settings"
local H = require "tests.helpers"

-- orket validate's problems for an orket.lua of text, as it prints them
local function validate(text)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/orket.lua", text)
  local got = {}
  for _, p in ipairs(require("orket.validate").check(dir)) do
    got[#got + 1] = require("orket.engine.scriptcheck").format(p)
  end
  return got
end

describe("orket.lua's lists", function()
  after_each(H.cleanup)

  it("refuse a set, a hole or a named key in verify's lists, naming the field and the key", function()
    local cases = {
      { { require = { landlock = true, netns = true } },
        'orket.lua: verify.require: must be an array of layer names, e.g. {"netns", "landlock"}; got key landlock' },
      { { require = { "netns", nil, "landlock" } },
        'orket.lua: verify.require: must be an array of layer names, e.g. {"netns", "landlock"}; got key 3, but [2] is nil' },
      { { require = { "landlock", net = true } },
        'orket.lua: verify.require: must be an array of layer names, e.g. {"netns", "landlock"}; got key net' },
      { { commands = { make = true } },
        'orket.lua: verify.commands: must be an array of program names, e.g. {"make", "lua"}; got key make' },
      { { commands = { "make", nil, "lua" } },
        'orket.lua: verify.commands: must be an array of program names, e.g. {"make", "lua"}; got key 3, but [2] is nil' },
      { { read_only = { "/opt", x = "/usr" } },
        'orket.lua: verify.read_only: must be an array of absolute paths, e.g. {"/opt/jdk"}; got key x' },
      { { read_write = { [2] = "/var/cache" } },
        'orket.lua: verify.read_write: must be an array of absolute paths, e.g. {"/opt/jdk"}; got key 2, but [1] is nil' },
      { { command = { "make", nil, "test" } },
        'orket.lua: verify.command: must be an argv array of strings, e.g. {"make", "test"}; got key 3, but [2] is nil' },
    }
    for _, c in ipairs(cases) do
      local s, err = settings.resolve { verify = c[1] }
      assert.is_nil(s, c[2])
      assert.equal(c[2], err)
    end
    -- plain arrays load whole
    local s = assert(settings.resolve { verify = { require = { "netns", "landlock" }, commands = { "make", "lua" },
      read_only = { "/opt/jdk" } } })
    assert.same({ "netns", "landlock" }, s.verify.require)
    assert.same({ "make", "lua" }, s.verify.commands)
  end)

  it("refuse a seat's roles with a hole or a named key, naming team.SEAT.roles and the key", function()
    local _, err = settings.resolve { team = { dev = { roles = { "coder", lead = "architect" } },
      guard = { roles = { "integrity_guard" } } } }
    assert.equal('orket.lua: team.dev.roles: must be an array of role names, e.g. {"coder"}; got key lead', err)
    _, err = settings.resolve { team = { dev = { roles = { "coder", nil, "integrity_guard" } } } }
    assert.equal('orket.lua: team.dev.roles: must be an array of role names, e.g. {"coder"}; got key 3, but [2] is nil',
      err)
    -- a role's name alone, or a plain array, still
    local s = assert(settings.resolve { team = { dev = { roles = "coder" }, guard = { roles = { "integrity_guard" } } } })
    assert.same({ "coder" }, s.team.dev.roles)
    assert.same({ 'orket.lua:2: team.dev.roles: must be an array of role names, e.g. {"coder"}; got key lead' },
      validate('team = {\n  dev = { roles = { "coder", lead = "architect" } },\n  guard = { roles = { "integrity_guard" } },\n}\n'))
  end)
end)

describe("orket validate", function()
  after_each(H.cleanup)

  it("refuses a layer both required and switched off, naming both fields and the line", function()
    assert.same({ 'orket.lua:2: verify.require[1]: "netns" is required, but verify.layers.netns = false switches it '
      .. 'off, so every run would fail closed; drop it from one of the two' },
      validate('name = "x"\nverify = { require = { "netns", "landlock" }, layers = { netns = false } }\n'))
    assert.same({}, validate('verify = { require = { "landlock" }, layers = { netns = false } }\n'))
  end)

  it("refuses a turn, step or tool-call budget of 0 (it would allow nothing), naming each with its line", function()
    local tail = " (0 is no limit only for tokens_per_card, tokens_per_run, wall_ms_per_card and wall_ms_per_run)"
    assert.same({
      "orket.lua:2: budgets.turns_per_card: must be at least 1: 0 would allow a card no work turn" .. tail,
      "orket.lua:3: budgets.steps_per_turn: must be at least 1: 0 would allow a turn no model call" .. tail,
      "orket.lua:4: budgets.tool_calls_per_turn: must be at least 1: 0 would allow a turn no tool call" .. tail,
    }, validate('budgets = {\n  turns_per_card = 0,\n  steps_per_turn = 0,\n  tool_calls_per_turn = 0,\n'
      .. '  tokens_per_card = 0, tokens_per_run = 0, wall_ms_per_card = 0, wall_ms_per_run = 0,\n}\n'))
    assert.same({}, validate('budgets = { turns_per_card = 1, steps_per_turn = 1, tool_calls_per_turn = 1 }\n'))
  end)
end)
