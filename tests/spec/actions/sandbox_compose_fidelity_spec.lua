-- A real project's compose file read as Compose reads it, or refused with its file and
-- line where Orket would run something else without a word (docs/sandbox.md, *Several
-- services*): a port's host IP kept, an image with a command, build's and depends_on's
-- keys, the top level and override files, YAML merge keys, healthcheck start_period and
-- disable, x-* fields.
local composefile = require "orket.sandboxes.composefile"
local supervise = require "orket.sandboxes.supervise"
local compose = require "orket.sandboxes.compose"
local H = require "tests.helpers"
local F = require "tests.fixtures"

local detect = F.sandbox_detect

local function read(text) return composefile.read(text, "compose.yaml") end

local function refused(text)
  local doc, err = read(text)
  assert.is_nil(doc)
  return err
end

local function by_name(doc)
  local by = {}
  for _, sv in ipairs(doc.services) do by[sv.name] = sv end
  return by
end

describe("a compose file's published port", function()
  after_each(H.cleanup)

  it("keeps the host IP the project binds it to, and `orket sandbox compose` writes it back", function()
    local doc = assert(read("services:\n  a:\n    command: [x]\n    ports: ['127.0.0.1:8000:8000']\n"
      .. "  b:\n    command: [x]\n    ports: ['[::1]:8001:80/tcp']\n"
      .. "  c:\n    command: [x]\n    ports:\n      - {target: 80, published: 8002, host_ip: 127.0.0.2}\n"
      .. "  d:\n    command: [x]\n    ports:\n      - {target: 80, published: 8003, host_ip: '::1'}\n"
      .. "  e:\n    command: [x]\n    ports: ['8004:80']\n"))
    local by = by_name(doc)
    assert.same({ "127.0.0.1", 8000, 8000 }, { by.a.host_ip, by.a.listens, by.a.published })
    assert.same({ "[::1]", 80, 8001 }, { by.b.host_ip, by.b.listens, by.b.published })
    assert.same({ "127.0.0.2", 80, 8002 }, { by.c.host_ip, by.c.listens, by.c.published })
    assert.same({ "[::1]", 80, 8003 }, { by.d.host_ip, by.d.listens, by.d.published })
    assert.is_nil(by.e.host_ip)
    -- written for Compose on that IP, never on every interface
    local p = assert(detect { ["compose.yaml"] = "services:\n  api:\n    command: [python3, app.py]\n"
      .. "    ports: ['127.0.0.1:8000:8000']\n" })
    local written = compose.yaml(p, { context = "../workspace", dockerfiles = {} })
    assert.matches('- "127.0.0.1:8080:8080"', written, 1, true)
    p = assert(detect { ["compose.yaml"] = "services:\n  api:\n    command: [python3, app.py]\n    ports:\n"
      .. "      - {target: 8000, published: 8000, host_ip: '::1'}\n" })
    assert.matches('- "[::1]:8080:8080"', compose.yaml(p, { context = "../workspace", dockerfiles = {} }), 1, true)
    p = assert(detect { ["compose.yaml"] = "services:\n  api:\n    command: [python3, app.py]\n    ports: ['8000:8000']\n" })
    assert.matches('- "8080:8080"', compose.yaml(p, { context = "../workspace", dockerfiles = {} }), 1, true)
  end)

  it("refuses a host part that is no IP address, which would be written back as it is", function()
    local want = '("8000", "8080:8000", "127.0.0.1:8080:8000" or {target: 8000, published: 8080, host_ip: 127.0.0.1})'
    assert.equal('compose.yaml:4: services.a.ports: "localhost:80:80" is not a port ' .. want,
      refused "services:\n  a:\n    command: [x]\n    ports: ['localhost:80:80']\n")
    assert.equal('compose.yaml:4: services.a.ports: "1.2.3.400:80:80" is not a port ' .. want,
      refused "services:\n  a:\n    command: [x]\n    ports: ['1.2.3.400:80:80']\n")
    assert.equal('compose.yaml:4: services.a.ports: "{target: ..., published: ...}" is not a port ' .. want,
      refused "services:\n  a:\n    command: [x]\n    ports:\n      - {target: 80, host_ip: 'a b'}\n")
  end)
end)

describe("a compose service with an image and a command", function()
  after_each(H.cleanup)

  it("is refused at the image's line: the command would run on the host, without the image", function()
    assert.equal("compose.yaml:3: services.q.image: redis:7 with a command: Orket runs the command as a process, "
      .. "never the image, so the image's programs and files would be missing: give build: the folder the command "
      .. "runs in (the image is then a name only), or run the service elsewhere",
      refused "services:\n  q:\n    image: redis:7\n    command: redis-server --save ''\n")
    -- with build, the image is the built image's name: the command runs in the folder
    local doc = assert(read("services:\n  a:\n    image: me/api:1\n    build: .\n    command: [python3, app.py]\n"))
    assert.same({ "python3", "app.py" }, doc.services[1].command)
  end)

  it("is refused for a postgres image, whose command's flags Orket's own PostgreSQL would not honour", function()
    assert.equal("compose.yaml:4: services.db.command: Orket runs image postgres:15's PostgreSQL itself, as a "
      .. "process with its own settings, so this command's flags would not be honoured: remove command to have the "
      .. "database, or give build: its folder to run the command as an app",
      refused "services:\n  db:\n    image: postgres:15\n    command: [postgres, -c, log_statement=all]\n")
    -- orket validate and the plan say it alike
    local p, err = detect { ["compose.yaml"] = "services:\n  db:\n    image: postgres:15\n    command: [postgres]\n" }
    assert.is_nil(p)
    assert.matches("sandbox: compose.yaml:4: services.db.command: Orket runs image postgres:15's", err, 1, true)
  end)
end)

describe("a compose file's build and depends_on keys", function()
  after_each(H.cleanup)

  it("refuse a misspelt key under build or under a depends_on entry, naming it and its line", function()
    assert.equal("compose.yaml:4: services.api.build.contxt: not a field Orket reads (it reads context; it passes "
      .. "over cache_from, cache_to, labels, tags, pull, no_cache, network, shm_size and platforms)",
      refused "services:\n  api:\n    build:\n      contxt: ./api\n    command: [x]\n")
    assert.equal("compose.yaml:6: services.api.depends_on.db.conditon: not a field Orket reads (it reads condition; "
      .. "it passes over required and restart)",
      refused("services:\n  api:\n    command: [x]\n    depends_on:\n      db:\n"
        .. "        conditon: service_completed_successfully\n  db:\n    command: [y]\n"))
    -- what they pass over, and an extension field, are read as before
    local doc = assert(read("services:\n  api:\n    build:\n      context: ./api\n      labels: {a: b}\n"
      .. "      x-note: n\n    command: [x]\n    depends_on:\n      db:\n        condition: service_healthy\n"
      .. "        required: 'false'\n        restart: 'true'\n  db:\n    command: [y]\n"))
    local api = by_name(doc).api
    assert.equal("api", api.dir)
    assert.same({ name = "db", line = 9, completed = false, healthy = true }, api.depends_on[1])
  end)

  it("refuse a Dockerfile, target or build args for a service with no command: its folder's files would say what runs",
    function()
      assert.equal("compose.yaml:5: services.worker.build.dockerfile: Orket runs the service's command as a process "
        .. "in its build folder, never an image built from a Dockerfile, so its Dockerfile would not be used and the "
        .. "folder's files would say what runs: give the service a command (what the Dockerfile's CMD runs)",
        refused "services:\n  worker:\n    build:\n      context: .\n      dockerfile: worker.Dockerfile\n")
      assert.matches("^compose.yaml:4: services.w.build.target: .* so its build stage would not be used",
        refused "services:\n  w:\n    build:\n      target: prod\n")
      assert.matches("^compose.yaml:4: services.w.build.args: .* so its build args would not be used",
        refused "services:\n  w:\n    build:\n      args: {A: b}\n")
    end)

  it("pass over a Dockerfile for a service with a command, and the plan says so at its line", function()
    local p = assert(detect { ["compose.yaml"] = "services:\n  api:\n    build:\n      context: .\n"
      .. "      dockerfile: Dockerfile.prod\n    command: [python3, app.py]\n" })
    assert.same({ "python3", "app.py" }, p.services[1].command)
    assert.matches("compose.yaml:5: build.dockerfile is passed over: Orket runs the command in the build folder, "
      .. "never an image built from a Dockerfile", table.concat(p.services[1].reasons, "\n"), 1, true)
  end)
end)

describe("a compose file's top level", function()
  after_each(H.cleanup)

  it("refuses include: the included files' services would be missing", function()
    assert.equal("compose.yaml:1: include: Orket reads this one file, not the files it includes, so their services "
      .. "would be missing: write them in this file's services",
      refused "include:\n  - db.compose.yaml\nservices:\n  api:\n    command: [x]\n")
  end)

  it("refuses another key it does not know, and passes over those the docs name", function()
    assert.equal("compose.yaml:4: servces: not a top-level field Orket reads (it reads services; it passes over "
      .. "name, version, volumes, networks, secrets, configs and x-*)",
      refused "services:\n  api:\n    command: [x]\nservces:\n  b: {}\n")
    assert.is_table(read("name: p\nversion: '3.8'\nx-env: &e {A: b}\nservices:\n  api:\n    command: [x]\n"
      .. "volumes: {d: {}}\nnetworks: {n: {}}\nsecrets: {s: {file: s.txt}}\nconfigs: {c: {file: c.txt}}\n"))
  end)

  it("says in the plan that an override file beside it is not read", function()
    local p, _, _, _ = detect { ["compose.yaml"] = "services:\n  api:\n    command: [x]\n",
      ["docker-compose.override.yml"] = "services:\n  api:\n    command: [y]\n" }
    assert.matches("docker-compose.override.yml is not read (Compose merges it into compose.yaml; a sandbox runs "
      .. "compose.yaml alone): put what the sandbox needs of it in compose.yaml", table.concat(p.reasons, "\n"), 1, true)
    p = assert(detect { ["compose.yaml"] = "services:\n  api:\n    command: [x]\n" })
    assert.is_nil(table.concat(p.reasons, "\n"):find("override", 1, true))
  end)
end)

describe("YAML merge keys in a compose file", function()
  after_each(H.cleanup)

  it("let an explicit key after << override the merged one, as YAML's merge says", function()
    local doc = assert(read("x-env: &env\n  TZ: UTC\n  APP_ENV: development\nx-base: &base\n  restart: always\n"
      .. "  command: [a]\nservices:\n  api:\n    <<: *base\n    command: [b]\n    restart: 'no'\n"
      .. "    environment:\n      <<: *env\n      APP_ENV: production\n"))
    local api = doc.services[1]
    assert.same({ TZ = "UTC", APP_ENV = "production" }, api.env)
    assert.same({ "b" }, api.command)
    -- the explicit key's own line
    assert.equal(14, api.env_lines.APP_ENV)
  end)

  it("merge a list of mappings, the earlier winning, and explicit keys over all", function()
    local doc = assert(read("x-a: &a {A: a1, B: a2}\nx-b: &b {B: b2, C: b3}\nservices:\n  api:\n    command: [x]\n"
      .. "    environment:\n      <<: [*a, *b]\n      C: own\n"))
    assert.same({ A = "a1", B = "a2", C = "own" }, doc.services[1].env)
    assert.equal("compose.yaml:6: << merges a mapping or a list of mappings only",
      refused "x-a: &a {A: a1}\nservices:\n  api:\n    command: [x]\n    environment:\n      <<: [*a, x]\n")
  end)

  it("still refuse an explicit key given twice, before or after a merge", function()
    assert.equal('compose.yaml:6: the key "A" is there twice',
      refused "x-a: &a {A: a1}\nservices:\n  api:\n    command: [x]\n    environment: {<<: *a, A: b,\n      A: c}\n")
    assert.equal('compose.yaml:7: the key "B" is there twice',
      refused "x-a: &a {A: a1}\nservices:\n  api:\n    command: [x]\n    environment:\n      B: b\n      B: c\n      <<: *a\n")
  end)
end)

describe("a compose health check", function()
  after_each(H.cleanup)

  it("takes disable as any YAML boolean, and refuses a value that is none", function()
    for _, yes in ipairs { "true", "True", "TRUE" } do
      local doc = assert(read("services:\n  a:\n    command: [x]\n    healthcheck:\n      disable: " .. yes .. "\n"
        .. "      test: [CMD, x]\n"))
      assert.same({ kind = "none" }, doc.services[1].health)
    end
    local doc = assert(read("services:\n  a:\n    command: [x]\n    healthcheck:\n      disable: False\n"
      .. "      test: [CMD, x]\n"))
    assert.equal("cmd", doc.services[1].health.kind)
    assert.equal("compose.yaml:5: services.a.healthcheck.disable must be true or false",
      refused "services:\n  a:\n    command: [x]\n    healthcheck:\n      disable: maybe\n")
  end)

  local function run(text)
    local p = assert(detect({ ["compose.yaml"] = text }))
    local script = assert(supervise.script(p, supervise.ports(p, 8080), { HOST = "127.0.0.1" }, 10000))
    local dir = H.tmpdir()
    H.write(dir .. "/s.sh", script)
    local f = assert(io.popen("cd " .. H.quote(dir) .. " && bash -c \"$(cat s.sh)\" orket-services 2>&1; echo rc=$?"))
    local out = f:read("a")
    f:close()
    return out
  end

  it("does not count a failure within start_period, as Compose does not", function()
    -- a is ready after 0.6 s; two failures 100 ms apart are its limit, but not within 3 s
    local out = run("services:\n  a:\n    command: [sh, -c, 'sleep 0.6; touch ready; exec sleep 5']\n"
      .. "    healthcheck:\n      test: [CMD, test, -e, ready]\n      interval: 100ms\n      retries: 2\n"
      .. "      start_period: 3s\n"
      .. "  b:\n    command: [sh, -c, 'echo b ran; exit 5']\n    depends_on: {a: {condition: service_healthy}}\n")
    assert.matches("orket: a is healthy\n", out, 1, true)
    assert.matches("[b] b ran", out, 1, true)
    -- after start_period, failures count again
    out = run("services:\n  a:\n    command: [sleep, '5']\n"
      .. "    healthcheck:\n      test: [CMD, test, -e, ready]\n      interval: 100ms\n      retries: 2\n"
      .. "      start_period: 300ms\n"
      .. "  b:\n    command: [sh, -c, 'exit 5']\n    depends_on: {a: {condition: service_healthy}}\n")
    assert.matches("orket: a was not healthy after 2 checks, 100 ms apart (after its start_period, 300 ms)\nrc=1\n",
      out, 1, true)
  end)
end)

describe("a compose service's x-* fields", function()
  it("are extension fields, passed over as the Compose spec allows", function()
    local doc = assert(read("services:\n  a:\n    command: [x]\n    x-foo: bar\n    x-team: {owner: me}\n"))
    assert.same({ "x" }, doc.services[1].command)
    doc = assert(read("services:\n  a:\n    command: [x]\n    healthcheck: {test: [CMD, y], x-why: slow}\n"))
    assert.same({ "y" }, doc.services[1].health.argv)
    -- x-orket is still Orket's own, checked
    assert.matches("x%-orket%.nope: unknown", refused "services:\n  a:\n    command: [x]\n    x-orket: {nope: 1}\n")
  end)
end)
