-- orket.lua's engine settings: defaults, overrides, and errors that name the field.
local settings = require "orket.settings"
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
    -- bounded as --concurrency and the API are: a run uses orket.lua's when not told
    s, err = settings.resolve { concurrency = settings.CONCURRENCY_MAX + 1 }
    assert.is_nil(s)
    assert.matches("orket.lua: concurrency: must be an integer from 1 to 64 (got 65)", err, 1, true)
    assert.equal(64, assert(settings.resolve { concurrency = 64 }).concurrency)
    -- the field and its message apart, as every other field's ("models.default a model is named")
    for _, v in ipairs { 5, "gpt-4o" } do
      s, err = settings.validate_models { default = v, providers = {} }
      assert.is_nil(s)
      assert.matches('^orket.lua: models.default: a model is named "provider:model"', err)
    end
  end)

  it("verify.commands: a list of program names, checked by name", function()
    local s = assert(settings.resolve { verify = { commands = { "make", "lua" } } })
    assert.same({ "make", "lua" }, s.verify.commands)
    assert.same({}, assert(settings.resolve {}).verify.commands)
    local _, err = settings.resolve { verify = { commands = "make" } }
    assert.equal('orket.lua: verify.commands: must be an array of program names, e.g. {"make", "lua"}', err)
    _, err = settings.resolve { verify = { commands = { "make", 3 } } }
    assert.equal("orket.lua: verify.commands[2]: must be a string", err)
    _, err = settings.resolve { verify = { commands = { "" } } }
    assert.matches("orket.lua: verify.commands%[1%]: must be a program name", err)
  end)

  it("verify.read_only, read_write, unix_sockets: the view's extra paths, checked", function()
    local s = assert(settings.resolve { verify = { read_only = { "/opt/jdk" }, read_write = { "/var/cache/cc" },
      unix_sockets = true } })
    assert.same({ "/opt/jdk" }, s.verify.read_only)
    assert.same({ "/var/cache/cc" }, s.verify.read_write)
    assert.is_true(s.verify.unix_sockets)
    local d = assert(settings.resolve {}).verify
    assert.same({}, d.read_only)
    assert.is_false(d.unix_sockets)
    for _, bad in ipairs { "opt", "/", "/opt/", "/opt/../etc", "/opt//x", "/a/./b" } do
      local _, err = settings.resolve { verify = { read_only = { "/ok", bad } } }
      assert.matches("^orket.lua: verify.read_only%[2%]: must be an absolute path", err)
    end
    local _, err = settings.resolve { verify = { read_write = "/x" } }
    assert.equal('orket.lua: verify.read_write: must be an array of absolute paths, e.g. {"/opt/jdk"}', err)
    _, err = settings.resolve { verify = { unix_sockets = "yes" } }
    assert.equal("orket.lua: verify.unix_sockets: must be true or false", err)
    local many = {}
    for i = 1, 65 do many[i] = "/p" .. i end
    _, err = settings.resolve { verify = { read_only = many } }
    assert.matches("more than 64 extra paths", err)
  end)

  it("verify.limits and verify.tool_limits: the programs' limits, within the server's ceilings", function()
    local runlimits = require "orket.settings.runlimits"
    local s = assert(settings.resolve { verify = { limits = { processes = 64, memory = 1073741824, cpu_seconds = 30 },
      tool_limits = { run_tests = { processes = 512 } } } })
    assert.same({ processes = 64, memory = 1073741824, cpu_seconds = 30 }, s.verify.limits)
    -- the checks get the project's, a tool its own over them, the rest the server's defaults
    local checks = runlimits.limits(s.verify)
    assert.equal(64, checks.processes)
    assert.equal(runlimits.CEILINGS.open_files.default, checks.open_files)
    assert.equal(512, runlimits.limits(s.verify, "run_tests").processes)
    assert.equal(30, runlimits.limits(s.verify, "run_tests").cpu_seconds)
    assert.equal(64, runlimits.limits(s.verify, "run_command").processes)
    assert.equal(runlimits.CEILINGS.processes.default, runlimits.limits(assert(settings.resolve {}).verify).processes)
    local cases = {
      { { limits = { processes = 100000 } },
        "orket.lua: verify.limits.processes: must be from 8 to 4096 tasks at once (processes and threads), "
          .. "the server's ceiling (got 100000)" },
      { { limits = { memory = 1.5 } }, "orket.lua: verify.limits.memory: must be an integer, not 1.5" },
      { { limits = { procs = 5 } }, "orket.lua: verify.limits.procs: unknown limit (limits: cpu_seconds, file_size, "
          .. "memory, open_files, processes)" },
      { { limits = 5 }, "orket.lua: verify.limits: must be a table such as {processes = 256} (limits: cpu_seconds, "
          .. "file_size, memory, open_files, processes)" },
      { { tool_limits = { run_tests = { cpu_seconds = 0 } } },
        "orket.lua: verify.tool_limits.run_tests.cpu_seconds: must be from 1 to 86400 CPU seconds of each process, "
          .. "the server's ceiling (got 0)" },
      { { tool_limits = { ["Run Tests"] = {} } }, "orket.lua: verify.tool_limits.Run Tests: must name a tool (snake_case)" },
    }
    for _, c in ipairs(cases) do
      local _, err = settings.resolve { verify = c[1] }
      assert.equal(c[2], err)
    end
  end)

  -- said as team.bad seat, with no line: neither where it is nor which seat was meant
  it("name a seat whose name is no word as written, team[\"a b\"], which finds its line", function()
    local _, err = settings.resolve { team = { ["bad seat"] = { roles = { "coder" } } } }
    assert.equal('orket.lua: team["bad seat"]: a seat\'s name is a word: ASCII letters, digits, _ and -', err)
    local H = require "tests.helpers"
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", 'team = {\n  coder = { roles = { "coder" } },\n  ["bad seat"] = { roles = { "coder" } },\n}\n')
    local file, line = require("orket.fieldline").place(err, function(path) return H.read(dir .. "/" .. path) end)
    assert.same({ "orket.lua", 3 }, { file, line })
    H.cleanup()
  end)

  it("say a misspelt setting first among unknown ones, whatever the others' names", function()
    assert.same({ "teams", "aaa", "zzz" }, settings.unknown { zzz = 1, teams = {}, aaa = 2, team = {} })
    assert.equal("orket.lua: teams: unknown setting (settings: " .. settings.list() .. ")",
      settings.check({ aaa = 1, teams = {} })[1])
  end)

  -- a section's field written at the top of orket.lua (prices, cost_per_run) was only
  -- "unknown setting": the section it belongs in is said; a name of the operator's in a
  -- section of free names (a seat, a server) is no field of it
  it("say which section a field at the top belongs in", function()
    local function said(k, v) return settings.check({ [k] = v })[1] end
    local list = settings.list()
    assert.equal("orket.lua: cost_per_run: unknown setting (settings: " .. list .. "); it is a field of budgets: "
      .. "budgets = { cost_per_run = ... }", said("cost_per_run", "1 USD"))
    assert.matches("; it is a field of models: models = { prices = ... }$", said("prices", {}))
    assert.matches("; it is a field of review: review = { escalate_after = ... }$", said("escalate_after", 2))
    assert.matches("; it is a field of serve: serve = { cors = ... }$", said("cors", {}))
    -- a value the field would refuse still names the field's section
    assert.matches("; it is a field of budgets:", said("turns_per_card", "many"))
    for _, k in ipairs { "coder", "files", "zzz", "teams" } do
      assert.equal("orket.lua: " .. k .. ": unknown setting (settings: " .. list .. ")", said(k, {}), k)
    end
  end)

  -- models' keys were passed over unchecked: a misspelt default (defualt) left the built-in
  -- default model in use without a word
  it("refuse a key of models that is none of its settings, naming the one nearest it", function()
    local err = settings.check({ models = { defualt = "scripted:x", providers = {} } })[1]
    assert.equal("orket.lua: models.defualt: unknown setting (known: default, prices, providers)", err)
    assert.matches("; did you mean 'default'%?$", require("orket.nearest").hint(err))
  end)

  -- a provider's unknown setting was "is not a provider setting", naming neither the known
  -- ones nor the one meant
  it("name a provider's known settings under an unknown one, and the one nearest it", function()
    local err = settings.check({ models = { providers = { x = { kind = "scripted", fiel = "s.lua" } } } })[1]
    assert.equal("orket.lua: models.providers.x.fiel: unknown setting (known: api_key, api_key_env, base_url, "
      .. "base_url_env, cache_marks, default, file, headers, kind, max_concurrency, max_response_bytes, models, "
      .. "retry, rules, sequence, stream, timeouts)", err)
    assert.matches("; did you mean 'file'%?$", require("orket.nearest").hint(err))
  end)

  it("are one schema: check reports every problem of orket.lua at once, resolve the first", function()
    assert.matches("^audit, budgets, bug_fix, concurrency, context, experiments, git, ", settings.list())
    assert.matches(", sandbox, serve, sign_in, store, team, telemetry, updates, verify, vision, workspace$", settings.list())
    local data = { teams = {}, name = "caf\233", budgets = { turns = 1 }, concurrency = 0,
      review = { escalate_after = 5, requirements_review_after = 1 },
      models = { providers = { x = { kind = "nope" } } } }
    assert.same({
      "orket.lua: teams: unknown setting (settings: " .. settings.list() .. ")",
      "orket.lua: name: is not valid UTF-8 (byte 4)",
      "orket.lua: models.providers.x.kind must be one of openai, ollama, scripted, replay (got nope)",
      "orket.lua: concurrency: must be an integer from 1 to 64 (got 0)",
      "orket.lua: budgets.turns: unknown setting (known: backoff_ms, cost_per_card, cost_per_day, cost_per_epic, "
        .. "cost_per_rock, cost_per_run, max_output_tokens, model_retries, steps_per_turn, tokens_per_card, "
        .. "tokens_per_run, tool_calls_per_turn, turns_per_card, wall_ms_per_card, wall_ms_per_run)",
      "orket.lua: review.requirements_review_after: must not be below review.escalate_after",
    }, settings.check(data))
    assert.same({}, settings.check {})
    local s, err = settings.resolve { name = "caf\233" }
    assert.is_nil(s)
    assert.equal("orket.lua: name: is not valid UTF-8 (byte 4)", err)
    -- orket.config and orket validate use the same list
    assert.equal(settings.SETTINGS, require("orket.validate").KNOWN)
    local H = require "tests.helpers"
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", "teams = {}\n")
    local cfg, cerr = require("orket.config").load(dir)
    H.cleanup()
    assert.is_nil(cfg)
    -- the same message, with the line that sets the field
    assert.equal((settings.check({ teams = {} })[1]:gsub("^orket%.lua: ", "orket.lua:1: ")), cerr)
  end)

  it("say every bad field of a section, in the order of orket.lua, and a run refuses with them all", function()
    -- each section said only the first bad field pairs() met: which one changed from run to run
    assert.same({
      "orket.lua: serve.cors: must be an array of origins, e.g. {\"https://board.example\"}",
      "orket.lua: serve.trusted_proxies: must be an array of addresses or networks, e.g. {\"127.0.0.1\", \"10.0.0.0/8\"}",
    }, settings.check { serve = { trusted_proxies = 7, cors = 5 } })
    assert.same({ "orket.lua: review.escalate_after: must be an integer, not string",
      "orket.lua: review.requirements_review_after: must be an integer, not string" },
      settings.check { review = { requirements_review_after = "b", escalate_after = "a" } })
    local H = require "tests.helpers"
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
    local text = 'context = { recall = "b", max_chars = "a" }\n'
      .. 'budgets = { steps_per_turn = "y" }\nbudgets.cost_per_day = 2\nbudgets.turns_per_card = "x"\n'
      .. 'budgets.cost_per_card = 1\n'
    H.write(dir .. "/orket.lua", text)
    local want = {
      'orket.lua:2: budgets.steps_per_turn: must be an integer, not string',
      'orket.lua:3: budgets.cost_per_day: must be an amount and a currency, e.g. "5.00 USD" (got number)',
      'orket.lua:4: budgets.turns_per_card: must be an integer, not string',
      'orket.lua:5: budgets.cost_per_card: must be an amount and a currency, e.g. "5.00 USD" (got number)',
      -- two on one line: by field name
      'orket.lua:1: context.max_chars: must be an integer, not string',
      'orket.lua:1: context.recall: must be an integer, not string',
    }
    local problems = require("orket.validate").check(dir)
    local got = {}
    for _, p in ipairs(problems) do got[#got + 1] = require("orket.engine.scriptcheck").format(p) end
    -- the budgets section's, in file order, then context's
    assert.same(want, got)
    -- a run's start refuses with the first section's problems, all of them, each on its line
    local cfg, err = require("orket.config").settings(dir)
    H.cleanup()
    assert.is_nil(cfg)
    assert.equal(table.concat({ want[1], want[2], want[3], want[4] }, "\n"), err)
  end)

  it("take telemetry.endpoint's scheme in any case and spaces around it left out, as OTEL_EXPORTER_OTLP_ENDPOINT", function()
    assert.equal("http://c:4318", settings.resolve({ telemetry = { endpoint = " HTTP://c:4318\t" } }).telemetry.endpoint)
    assert.equal("https://c/otlp", settings.resolve({ telemetry = { endpoint = "Https://c/otlp" } }).telemetry.endpoint)
    for _, v in ipairs { "ftp://c", "c:4318", "http:///x", "  ", 5 } do
      assert.same({ "orket.lua: telemetry.endpoint: must be an http:// or https:// URL (the collector's base; "
        .. "/v1/traces is added)" }, settings.check { telemetry = { endpoint = v } }, tostring(v))
    end
  end)

  it("refuse an empty or blank telemetry.service_name, naming the field and its line", function()
    for _, v in ipairs { "", "  \t" } do
      assert.same({ 'orket.lua: telemetry.service_name: must not be empty or only spaces (leave it out for "orket")' },
        settings.check { telemetry = { service_name = v } })
    end
    assert.same({}, settings.check { telemetry = { service_name = "shop" } })
    local H = require "tests.helpers"
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", 'telemetry = {\n  endpoint = "http://c:4318",\n  service_name = " ",\n}\n')
    local cfg, err = require("orket.config").settings(dir)
    H.cleanup()
    assert.is_nil(cfg)
    assert.matches("^orket%.lua:3: telemetry%.service_name: must not be empty", err)
  end)

  it("take telemetry.max_request_bytes as an integer of 64 KiB or more (orket.otel's cap on a request)", function()
    assert.equal(1048576, settings.resolve({ telemetry = { max_request_bytes = 1048576.0 } }).telemetry.max_request_bytes)
    assert.same({ "orket.lua: telemetry.max_request_bytes: must be an integer from 65536 to 1000000000000 (got 1000)" },
      settings.check { telemetry = { max_request_bytes = 1000 } })
    assert.matches("known: endpoint, max_request_bytes, service_name",
      settings.check({ telemetry = { max_bytes = 1 } })[1], 1, true)
  end)
end)
