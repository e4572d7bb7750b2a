-- What a sandbox runs: orket.lua's sandbox and bug_fix sections, the stack found in main's
-- tree with its reasons (orket.sandboxes.plan), read as hostile data, and the compose file
-- and Dockerfile written for it (orket.sandboxes.compose).
local settings = require "orket.settings"
local ss = require "orket.settings.sandbox"
local plan = require "orket.sandboxes.plan"
local compose = require "orket.sandboxes.compose"
local workspace = require "orket.workspace"
local H = require "tests.helpers"

local function tree(files)
  local dir = H.tmpdir()
  for name, text in pairs(files) do
    os.execute("mkdir -p " .. H.quote(dir .. "/" .. (name:match("^(.*)/") or ".")))
    H.write(dir .. "/" .. name, text)
  end
  return dir
end

local function detect(files, sandbox)
  local dir = tree(files)
  local ws = assert(workspace.open(dir))
  local p, err, code, why = plan.detect(ws, ss.sandbox { sandbox = sandbox })
  ws:close()
  return p, err, code, why, dir
end

local function joined(p) return table.concat(p.command, " ") end

describe("orket.lua's sandbox and bug_fix sections", function()
  after_each(H.cleanup)

  it("default to a manual sandbox on $PORT with a TCP probe, and a 7 to 28 day phase", function()
    local s = assert(settings.resolve {})
    assert.equal("manual", s.sandbox.deploy)
    assert.equal("PORT", s.sandbox.port_env)
    assert.equal("tcp", s.sandbox.health.kind)
    assert.is_false(s.sandbox.network)
    assert.is_nil(s.sandbox.command)
    assert.same({ days = 7, extend_above = 1.0, max_days = 28, check_interval_ms = 60000, recheck_interval_ms = 3600000 },
      s.bug_fix)
  end)

  it("take a command, an HTTP probe and the phase's days", function()
    local s = assert(settings.resolve { sandbox = { command = "python3 app.py --port {port}", deploy = "rock",
      health = { http = "/health", interval_ms = 500, failures = 2 }, env = { MODE = "demo" } },
      bug_fix = { days = 3, max_days = 10, extend_above = 0.5 } })
    assert.same({ "python3", "app.py", "--port", "{port}" }, s.sandbox.command)
    assert.equal("rock", s.sandbox.deploy)
    assert.same({ kind = "http", path = "/health", interval_ms = 500, timeout_ms = 1000, failures = 2,
      start_timeout_ms = 30000 }, s.sandbox.health)
    assert.equal("demo", s.sandbox.env.MODE)
    assert.equal(3, s.bug_fix.days)
    assert.equal(0.5, s.bug_fix.extend_above)
  end)

  it("refuse what cannot work, naming the field", function()
    for _, c in ipairs {
      { { sandbox = { command = {} } }, "orket.lua: sandbox.command: must be a command" },
      { { sandbox = { command = { "a", 3 } } }, "orket.lua: sandbox.command%[2%]: must be a string" },
      { { sandbox = { deploy = "often" } }, "orket.lua: sandbox.deploy: must be \"manual\", \"merge\", \"epic\" or \"rock\"" },
      { { sandbox = { port_env = "my port" } }, "orket.lua: sandbox.port_env: must name an environment variable" },
      { { sandbox = { health = { http = "health" } } }, "orket.lua: sandbox.health.http: must be a path beginning with /" },
      { { sandbox = { health = { http = "/h", tcp = true } } }, "orket.lua: sandbox.health: takes http = PATH or tcp = true, not both" },
      { { sandbox = { health = { failures = 0 } } }, "orket.lua: sandbox.health.failures: must be an integer from 1 to 100" },
      { { sandbox = { helth = {} } }, "orket.lua: sandbox.helth: unknown setting" },
      { { sandbox = { env = { ["A B"] = "x" } } }, 'orket.lua: sandbox.env%["A B"%]: must name an environment variable' },
      { { sandbox = { network = "yes" } }, "orket.lua: sandbox.network: must be true or false" },
      -- refused where every command reading orket.lua meets it (validate passed it, the start refused it)
      { { sandbox = { network = true } }, "orket.lua: sandbox.network: = true is not built yet" },
      -- the port replaces the variable: PATH so named left nothing to start, HOST is Orket's
      { { sandbox = { port_env = "PATH" } }, "orket.lua: sandbox.port_env: PATH is a variable the app's start needs" },
      { { sandbox = { port_env = "HOST" } }, "orket.lua: sandbox.port_env: HOST is a variable the app's start needs" },
      { { sandbox = { port_env = "LD_PRELOAD" } }, "orket.lua: sandbox.port_env: LD_PRELOAD is a variable" },
      -- Orket's own variables: a value given would be dropped at the start without a word
      { { sandbox = { env = { PORT = "3000" } } }, "orket.lua: sandbox.env.PORT: is set by Orket when the sandbox starts" },
      { { sandbox = { port_env = "APP_PORT", env = { APP_PORT = "1" } } }, "orket.lua: sandbox.env.APP_PORT: is set by Orket" },
      { { sandbox = { env = { HOST = "0.0.0.0" } } }, "orket.lua: sandbox.env.HOST: is set by Orket when the sandbox starts" },
      { { bug_fix = { days = 10, max_days = 5 } }, "orket.lua: bug_fix.max_days: must not be below bug_fix.days" },
      { { bug_fix = { extend_above = -1 } }, "orket.lua: bug_fix.extend_above: must be a number of bugs per day" },
      { { bug_fix = { weeks = 1 } }, "orket.lua: bug_fix.weeks: unknown setting" },
    } do
      local s, err, code = settings.resolve(c[1])
      assert.is_nil(s)
      assert.equal("EINVAL", code)
      assert.matches(c[2], err)
    end
    -- a long or odd name is shown cut and escaped, never whole
    local _, err = settings.resolve { sandbox = { env = { [string.rep("K", 100000) .. " "] = "x" } } }
    assert.equal('orket.lua: sandbox.env["' .. string.rep("K", 40) .. '... (100001 bytes)"]: must name an environment '
      .. "variable (letters, digits, _), got " .. string.rep("K", 40) .. "... (100001 bytes)", err)
    _, err = settings.resolve { sandbox = { env = { ["A\nB"] = "x" } } }
    assert.equal('orket.lua: sandbox.env["A\\010B"]: must name an environment variable (letters, digits, _), got A\\010B',
      err)
    -- validate lists them with every other problem
    local problems = settings.check { sandbox = { deploy = 1 }, bug_fix = { days = 0 } }
    assert.equal(2, #problems)
  end)
end)

describe("a sandbox's plan", function()
  after_each(H.cleanup)

  it("runs a package.json start script, or its main file", function()
    local p = assert(detect { ["package.json"] = '{"scripts":{"start":"node server.js"}}', ["server.js"] = "" })
    assert.equal("node", p.stack)
    assert.equal("npm start", joined(p))
    assert.matches('package.json has a "start" script', p.reasons[1])
    p = assert(detect { ["package.json"] = '{"main":"src/app.js","dependencies":{"x":"1"}}', ["src/app.js"] = "" })
    assert.equal("node src/app.js", joined(p))
    assert.same({ "npm", "install", "--omit=dev" }, p.install)
    -- a main naming a file outside the tree is not used
    p = assert(detect { ["package.json"] = '{"main":"../../etc/x.js"}', ["index.js"] = "" })
    assert.equal("node index.js", joined(p))
  end)

  it("serves a Python app by its framework, or runs a standard-library one", function()
    local p = assert(detect { ["app.py"] = "", ["requirements.txt"] = "Flask==2.2\n" })
    assert.equal("python3 -m flask --app app.py run --host {host} --port {port}", joined(p))
    assert.same({ "python3", "-m", "pip", "install", "-r", "requirements.txt" }, p.install)
    p = assert(detect { ["main.py"] = "", ["pyproject.toml"] = "[project]\ndependencies = [\"fastapi\", \"uvicorn\"]\n" })
    assert.equal("python3 -m uvicorn main:app --host {host} --port {port}", joined(p))
    p = assert(detect { ["manage.py"] = "", ["app.py"] = "", ["requirements.txt"] = "django\n" })
    assert.equal("python3 manage.py runserver --noreload {host}:{port}", joined(p))
    p = assert(detect { ["server.py"] = "import http.server\n" })
    assert.equal("python3 server.py", joined(p))
    assert.is_nil(p.install)
    assert.matches("standard library", p.reasons[1])
    assert.same({ "python3", "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", "4100" },
      plan.argv(assert(detect { ["main.py"] = "", ["requirements.txt"] = "uvicorn\n" }), "127.0.0.1", 4100))
  end)

  it("runs go.mod's module, or a Makefile's run target", function()
    assert.equal("go run .", joined(assert(detect { ["go.mod"] = "module x\n" })))
    local p = assert(detect { Makefile = "build:\n\tcc x.c\nserve: build\n\t./a.out\n" })
    assert.equal("make serve", joined(p))
    local _, err, code, why = detect { Makefile = "run := 1\nbuild:\n\ttrue\n" }
    assert.equal("ENOENT", code)
    assert.matches("add sandbox = { command", err)
    assert.matches("no run, serve or start target", why[1])
  end)

  -- The reason looked for {port} alone: a compose service's ${PORT} (which compose and
  -- Orket fill in) was "given in $PORT" only, and orket.lua's words are never read so
  local function port_reason(p)
    for _, r in ipairs(p.reasons) do if r:match("^the port is given in ") then return r end end
  end
  it("says the port is on the command line when the command names it, as it will be filled in", function()
    local function compose(cmd) return "services:\n  web:\n    command: " .. cmd .. "\n    ports: [\"80\"]\n" end
    for _, case in ipairs {
      { { ["compose.yaml"] = compose('["node", "s.js", "--port", "${PORT}"]') }, nil, true },
      { { ["compose.yaml"] = compose('node s.js --port $PORT') }, nil, true },
      { { ["compose.yaml"] = compose('["node", "s.js"]') }, nil, false },
      { {}, { command = { "./serve", "--port", "{port}" } }, true },
      { {}, { command = { "./serve", "--port", "$PORT" } }, false }, -- passed as written
      { {}, { command = { "sh", "-c", "exec ./serve --port ${PORT}" } }, true },
      { { ["compose.yaml"] = compose('["node", "s.js", "--port", "${PORT}"]') }, { command = { "./x", "$PORT" } }, false },
    } do
      local p = assert(detect(case[1], case[2]))
      assert.equal(case[3] and "the port is given in $PORT and on the command line; health: a TCP connect"
        or "the port is given in $PORT; health: a TCP connect", port_reason(p), joined(p))
    end
  end)

  it("always takes orket.lua's command, keeping the stack for the image", function()
    local p = assert(detect({ ["package.json"] = '{"scripts":{"start":"x"}}' }, { command = { "node", "other.js" } }))
    assert.equal("node other.js", joined(p))
    assert.is_true(p.explicit)
    assert.equal("node", p.stack)
    assert.matches("sandbox.command", p.reasons[1])
    p = assert(detect({}, { command = "./serve --port {port}" }))
    assert.equal("custom", p.stack)
  end)

  it("reads the tree as data: special files, links out and huge or broken files are no evidence", function()
    local dir = tree { ["app.py"] = "" }
    assert.equal(0, os.execute("mkfifo " .. H.quote(dir .. "/package.json")) and 0 or 1)
    os.execute("ln -s /etc/passwd " .. H.quote(dir .. "/requirements.txt"))
    H.write(dir .. "/Makefile", "run:\n" .. string.rep("x", plan.READ_MAX + 10) .. "\n")
    local ws = assert(workspace.open(dir))
    local t0 = os.time()
    local p = assert(plan.detect(ws, ss.sandbox {}))
    ws:close()
    assert.is_true(os.time() - t0 < 5) -- the FIFO was not opened and waited on
    assert.equal("python3 app.py", joined(p))
    assert.is_nil(p.install) -- the link out of the tree is not a requirements file
    local q, _, _, why = detect { ["package.json"] = "{not json" }
    assert.is_nil(q)
    assert.matches("package.json is not a JSON object", why[1])
  end)
end)

describe("the compose file", function()
  after_each(H.cleanup)

  it("runs the plan's command on all interfaces with its port, health check and environment", function()
    local p = assert(detect({ ["app.py"] = "", ["requirements.txt"] = "flask\n" },
      { health = { http = "/health" }, env = { MODE = "demo" } }))
    local y = compose.yaml(p, { name = "Notes Web" })
    assert.matches('"notes-web":', y, 1, true)
    assert.matches('command: ["python3", "-m", "flask", "--app", "app.py", "run", "--host", "0.0.0.0", "--port", "8080"]', y, 1, true)
    assert.matches('"PORT": "8080"', y, 1, true)
    assert.matches('"MODE": "demo"', y, 1, true)
    assert.matches("GET /health HTTP/1.0", y, 1, true)
    local d = assert(compose.dockerfile(p))
    assert.matches("FROM python:3.11", d, 1, true)
    assert.matches("pip install --no-cache-dir -r requirements.txt", d, 1, true)
    assert.matches('CMD ["python3", "-m", "flask"', d, 1, true)
    -- a tree with its own Dockerfile gets none
    p = assert(detect { ["go.mod"] = "module x\n", Dockerfile = "FROM scratch\n" })
    assert.is_nil(compose.dockerfile(p))
  end)

  -- Docker replaces no variable in CMD's exec form: a $ of the command is written once
  -- there (compose's own command: doubles it, as compose reads $$ as $)
  it("writes a command's $ once in the Dockerfile's CMD, doubled in the compose file", function()
    local p = assert(detect({}, { command = { "sh", "-c", "echo $HOME/x" } }))
    assert.matches('CMD ["sh", "-c", "echo $HOME/x"]\n', assert(compose.dockerfile(p)), 1, true)
    assert.matches('command: ["sh", "-c", "echo $$HOME/x"]', compose.yaml(p), 1, true)
  end)

  it("keeps hostile values inside their strings", function()
    local p = assert(detect({}, { command = { "x", "a\"\nservices: {evil: 1}", "b: c" },
      env = { EVIL = "\n  privileged: true" } }))
    local y = compose.yaml(p)
    -- every line is the generator's own: no line starts with a key taken from the values
    for line in y:gmatch("[^\n]+") do
      assert.is_nil(line:match("^%s*privileged"), line)
      assert.is_nil(line:match("^%s*evil"), line)
    end
  end)
end)
