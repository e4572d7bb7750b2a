-- A compose file's list commands and folders, as a person coming from Compose writes them:
-- "${PORT}" in a list command is the service's port (no shell reads a list's words, so it
-- was passed on as those letters), and a folder named "a..b" is a folder of the tree, while
-- a ".." path component, which leads out of it, is still refused.
local plan = require "orket.sandboxes.plan"
local composefile = require "orket.sandboxes.composefile"
local supervise = require "orket.sandboxes.supervise"
local compose = require "orket.sandboxes.compose"
local yamldoc = require "orket.sandboxes.yamldoc"
local H = require "tests.helpers"
local F = require "tests.fixtures"

local function detect(files)
  local p, err = F.sandbox_detect(files)
  return p, err
end

local function by_name(p)
  local by = {}
  for _, sv in ipairs(p.services) do by[sv.name] = sv end
  return by
end

describe("a compose file's list command", function()
  after_each(H.cleanup)

  local TEXT = "services:\n"
    .. "  api:\n    command: [python3, app.py, --port, '${PORT}', --also, '$PORT', --lit, '$$PORT', --none, '${NOPE}']\n"
    .. "    environment:\n      MODE: demo\n"
    .. "    healthcheck:\n      test: [CMD, curl, -f, 'http://127.0.0.1:${PORT}/health']\n"
    .. "  web:\n    command: [node, server.js, '--api=${API_URL}/v1', '--mode=$MODE', '{port}']\n"
    .. "    depends_on: [api]\n    ports: ['8080:8080']\n"
    .. "    environment:\n      MODE: prod\n"

  it("fills ${NAME} and $NAME from the service's environment when it starts, as the string's shell would", function()
    local p = assert(detect { ["compose.yaml"] = TEXT })
    local by = by_name(p)
    local ports = supervise.ports(p, 8080)
    local env = supervise.env_of(p, by.api, ports, { HOST = "127.0.0.1" })
    local api = plan.argv(by.api, "127.0.0.1", ports.api, env)
    local port = tostring(ports.api)
    -- its port, in both spellings; $$ is one $ (Compose's escape); a name the service's
    -- environment lacks stays as written, as in an environment value
    assert.same({ "python3", "app.py", "--port", port, "--also", port, "--lit", "$PORT", "--none", "${NOPE}" }, api)
    local wenv = supervise.env_of(p, by.web, ports, { HOST = "127.0.0.1" })
    assert.same({ "node", "server.js", "--api=http://127.0.0.1:" .. port .. "/v1", "--mode=prod", "8080" },
      plan.argv(by.web, "127.0.0.1", ports.web, wenv))
    -- the plan shows the command as written (its $$ read as $)
    assert.same({ "python3", "app.py", "--port", "${PORT}", "--also", "$PORT", "--lit", "$PORT", "--none", "${NOPE}" },
      by.api.command)
    -- the script that starts the services runs the filled words, the health check's too
    local script = assert(supervise.script(p, ports, { HOST = "127.0.0.1" }, 30000))
    assert.matches("exec 'python3' 'app.py' '--port' '" .. port .. "' '--also' '" .. port .. "' '--lit' '$PORT'",
      script, 1, true)
    assert.matches("exec 'curl' '-f' 'http://127.0.0.1:" .. port .. "/health'", script, 1, true)
    assert.matches("'--api=http://127.0.0.1:" .. port .. "/v1' '--mode=prod' '8080'", script, 1, true)
    assert.is_nil(script:find("${PORT}", 1, true))
  end)

  -- a common form (["uvicorn", "app:app", "--port", "${PORT:-8000}"]) was passed on as those
  -- letters: only ${NAME} and $NAME were read
  it("fills ${NAME:-WORD} and the other forms Compose reads, in a list and in the environment", function()
    local p = assert(detect { ["compose.yaml"] = "services:\n  api:\n"
      .. "    command: [app, '${PORT:-8000}', '${NOPE:-dflt}', '${NOPE-x}', '${MODE:+on}', '${NOPE:+on}', '${NOPE:?say}']\n"
      .. "    environment:\n      MODE: demo\n      X: '${PORT:-1}'\n      Y: '${NOPE:-$$HOME}'\n" })
    local by = by_name(p)
    local ports = supervise.ports(p, 8080)
    local env = supervise.env_of(p, by.api, ports, { HOST = "127.0.0.1" })
    local port = tostring(ports.api)
    assert.same({ "app", port, "dflt", "x", "on", "", "${NOPE:?say}" }, plan.argv(by.api, "127.0.0.1", ports.api, env))
    assert.equal(port, env.X)
    assert.equal("$HOME", env.Y)
  end)

  it("is written for Compose with the port and addresses filled in, other dollars escaped", function()
    local p = assert(detect { ["compose.yaml"] = TEXT })
    local written = compose.yaml(p, { context = "../workspace", dockerfiles = {} })
    assert.matches('"command": ["python3", "app.py", "--port", "8080", "--also", "8080", "--lit", "$$PORT", '
      .. '"--none", "$${NOPE}"]', written:gsub("command: ", '"command": '), 1, true)
    assert.matches('"--api=http://api:8080/v1", "--mode=prod", "8080"', written, 1, true)
    assert.matches("http://127.0.0.1:8080/health", written, 1, true)
  end)

  it("is written with the line breaks only YAML has (U+0085, U+2028, U+2029) escaped, so they are read back", function()
    local odd = "a\u{85}b\u{2028}c\u{2029}d"
    -- (in the tree's file as YAML's own escapes: written raw, a reader folds them too)
    local p = assert(detect { ["compose.yaml"] = "services:\n  api:\n    command: [app, \"a\\Nb\\Lc\\Pd\"]\n"
      .. "    environment:\n      MODE: \"a\\Nb\\Lc\\Pd\"\n" })
    local written = compose.yaml(p, { context = "../workspace", dockerfiles = {} })
    assert.is_nil(written:find("\u{85}", 1, true))
    assert.matches('"a\\u0085b\\u2028c\\u2029d"', written, 1, true)
    -- LibYAML, a YAML 1.1 reader as PyYAML is, gives each back as it was
    local doc = assert(yamldoc.parse(written, "written.yaml"))
    assert.same({ "app", odd }, { doc.services.api.command[1], doc.services.api.command[2] })
    assert.equal(odd, doc.services.api.environment.MODE)
  end)

  it("leaves a string command to its shell, as before", function()
    local doc = assert(composefile.read("services:\n  a:\n    command: exec app --port $PORT $$HOME\n", "compose.yaml"))
    assert.same({ "sh", "-c", "exec app --port $PORT $HOME" }, doc.services[1].command)
    assert.is_nil(doc.services[1].command_raw)
  end)
end)

describe("a compose file's folders", function()
  after_each(H.cleanup)

  local function read(field, value)
    local text = "services:\n  a:\n    command: [x]\n    " .. field .. ": '" .. value .. "'\n"
    return composefile.read(text, "compose.yaml")
  end

  it("take a name holding .. (a..b, v1..2/x) as a folder of the tree", function()
    for _, field in ipairs { "build", "working_dir" } do
      for _, d in ipairs { "a..b", "v1..2/x", "..a", "a..", "./a..b/" } do
        local doc, err = read(field, d)
        assert.is_nil(err, field .. " " .. d)
        assert.equal(d:gsub("^%./", ""):gsub("/$", ""), doc.services[1].dir)
      end
    end
    local doc = assert(composefile.read("services:\n  a:\n    x-orket: {database: sqlite, seed: 'db/v1..2.sql'}\n",
      "compose.yaml"))
    assert.equal("db/v1..2.sql", doc.services[1].seed)
  end)

  it("refuse a .. path component, which leads out of the tree, naming the file, line and field", function()
    for _, field in ipairs { "build", "working_dir" } do
      for _, d in ipairs { "..", "../x", "a/../../x", "a/..", "a/../b", "./../x", "a//../x" } do
        local doc, err = read(field, d)
        assert.is_nil(doc, field .. " " .. d)
        assert.equal("compose.yaml:4: services.a." .. field .. ": a folder of the repository (no .. component, "
          .. "no absolute path)", err)
      end
    end
    local doc, err = composefile.read("services:\n  a:\n    x-orket: {database: sqlite, seed: '../x.sql'}\n",
      "compose.yaml")
    assert.is_nil(doc)
    assert.matches("services.a.x-orket.seed: a SQL file of the repository (no .. component, no absolute path)", err, 1,
      true)
  end)

  it("are found in the tree by the plan: a..b/ runs there", function()
    local p = assert(detect {
      ["compose.yaml"] = "services:\n  api:\n    build: a..b\n    command: [python3, app.py]\n",
      ["a..b/app.py"] = "",
    })
    assert.equal("a..b", p.services[1].dir)
  end)
end)
