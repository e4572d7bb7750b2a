-- What a real project's compose file holds that a sandbox does not do as Compose does,
-- said in the plan at its line, or read as Compose reads it (docs/sandbox.md, *Several
-- services*): another service's Compose host name and ${VAR}s from .env in an environment
-- value, a postgres image's settings, a lone container port, and the messages of a
-- variable in ports, an unknown field and an environment item without =.
local composefile = require "orket.sandboxes.composefile"
local H = require "tests.helpers"
local F = require "tests.fixtures"

local detect = F.sandbox_detect

local function read(text) return composefile.read(text, "compose.yaml") end

local function refused(text)
  local doc, err = read(text)
  assert.is_nil(doc)
  return err
end

describe("a compose environment value", function()
  after_each(H.cleanup)

  it("that names another service by its Compose host name is said at its line, with Orket's variable", function()
    local p = assert(detect { ["compose.yaml"] = "services:\n  db:\n    image: postgres:15\n  api:\n"
      .. "    command: [python3, app.py]\n    environment:\n"
      .. "      DATABASE_URL: postgres://myapp:pw@db:5432/myapp\n"
      .. "      REDIS: cache:6379\n      DOCS: http://api.example.com\n      MODE: web\n      OWN: ${WEB_URL}/x\n"
      .. "  cache:\n    command: [redis-server]\n"
      .. "  web:\n    command: [python3, app.py]\n    environment:\n      - API_URL=http://api:8000/v1\n"
      .. "      - API_HOST=api\n    ports: ['8080:8080']\n    depends_on: [api]\n" })
    local why = table.concat(p.reasons, "\n")
    local function said(line, key, value, rest)
      local svc = line < 14 and "api" or "web"
      assert.matches(string.format("compose.yaml:%d: services.%s.environment.%s (%s) names service %s", line, svc, key,
        value, rest), why, 1, true)
    end
    said(7, "DATABASE_URL", "postgres://myapp:pw@db:5432/myapp", "db by its Compose host name, which nothing resolves "
      .. "in a sandbox (each service listens on 127.0.0.1 at the port Orket gives it): Orket gives db's connection "
      .. "string in DATABASE_URL (and DB_HOST, DB_PORT), with its own user and database; remove this setting to have "
      .. "Orket's DATABASE_URL")
    said(8, "REDIS", "cache:6379", "cache by its Compose host name, which nothing resolves in a sandbox (each service "
      .. "listens on 127.0.0.1 at the port Orket gives it): Orket gives cache's address in CACHE_URL (and CACHE_HOST, "
      .. "CACHE_PORT); write ${CACHE_HOST}:${CACHE_PORT} in its place")
    -- a list's item at its own line
    said(17, "API_URL", "http://api:8000/v1", "api by its Compose host name")
    assert.matches("remove this setting to have Orket's API_URL", why, 1, true)
    said(18, "API_HOST", "api", "api by its Compose host name")
    -- a longer host name, a word that is a service's name, and Orket's own variable: not it
    assert.is_nil(why:find("DOCS", 1, true))
    assert.is_nil(why:find("MODE", 1, true))
    assert.is_nil(why:find("OWN", 1, true))
    -- the file's value still wins, as written
    local api
    for _, sv in ipairs(p.services) do if sv.name == "api" then api = sv end end
    assert.equal("postgres://myapp:pw@db:5432/myapp", api.env.DATABASE_URL)
  end)

  it("says a ${VAR} Compose fills in from .env is not filled in, and what it becomes", function()
    local p = assert(detect { ["compose.yaml"] = "services:\n  api:\n    command: [python3, app.py]\n"
      .. "    environment:\n      A: x${DB_PASSWORD}y\n      B: ${LEVEL:-info}\n      C: $$HOME ${PORT} ${API_URL}\n"
      .. "      D: $SECRET\n", [".env"] = "DB_PASSWORD=s3cret\n" })
    local why = table.concat(p.reasons, "\n")
    local tail = ": Orket reads no .env file and not the host's environment (Compose fills these in from them); it "
      .. "fills in only the variables it gives (NAME_URL, NAME_HOST, NAME_PORT, $PORT, DATABASE_URL beside one "
      .. "database) and orket.lua's sandbox.env"
    assert.matches("compose.yaml:5: services.api.environment.A (x${DB_PASSWORD}y): ${DB_PASSWORD} stays as written"
      .. tail, why, 1, true)
    assert.matches("compose.yaml:6: services.api.environment.B (${LEVEL:-info}): ${LEVEL:-...} takes its default" .. tail,
      why, 1, true)
    assert.matches("compose.yaml:8: services.api.environment.D ($SECRET): ${SECRET} stays as written" .. tail, why, 1, true)
    -- $$ is a $, and Orket's own variables are filled in
    assert.is_nil(why:find("environment.C", 1, true))
  end)
end)

describe("a postgres image service", function()
  after_each(H.cleanup)

  it("says at their lines the image's settings, init scripts and health check Orket's PostgreSQL passes over", function()
    local text = "services:\n  db:\n    image: postgres:15\n    environment:\n      POSTGRES_USER: myapp\n"
      .. "      POSTGRES_PASSWORD: s3cret\n      POSTGRES_DB: myapp\n      TZ: UTC\n    volumes:\n"
      .. "      - ./db/init.sql:/docker-entrypoint-initdb.d/init.sql:ro\n      - data:/var/lib/postgresql/data\n"
      .. "      - {type: bind, source: ./db/more, target: /docker-entrypoint-initdb.d/more}\n"
      .. "    healthcheck:\n      test: [CMD, 'false']\n"
      .. "  api:\n    command: [python3, app.py]\n    depends_on: {db: {condition: service_healthy}}\n"
    local db = read(text).services[1]
    local why = table.concat(db.reasons, "\n")
    for line, k in pairs { [5] = "POSTGRES_USER", [6] = "POSTGRES_PASSWORD", [7] = "POSTGRES_DB" } do
      assert.matches(string.format("compose.yaml:%d: environment.%s is not used: Orket's PostgreSQL has its own user "
        .. "and database, app, with no password; the others find it in DB_URL (and DATABASE_URL beside one database)",
        line, k), why, 1, true)
    end
    assert.is_nil(why:find("TZ", 1, true))
    assert.matches("compose.yaml:10: volumes: ./db/init.sql mounted in /docker-entrypoint-initdb.d is not run (Orket "
      .. "passes volumes over, and runs no image): give a SQL file as x-orket.seed (x-orket: {seed: db/init.sql}), or "
      .. "x-orket.seed_command", why, 1, true)
    assert.matches("compose.yaml:12: volumes: ./db/more mounted in /docker-entrypoint-initdb.d is not run", why, 1, true)
    assert.is_nil(why:find("/var/lib/postgresql", 1, true))
    assert.matches("compose.yaml:13: healthcheck is passed over: Orket's PostgreSQL is healthy when pg_isready says so",
      why, 1, true)
    -- the plan shows the check that runs, not the compose file's
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir)).status)
    H.write(dir .. "/workspace/compose.yaml", text)
    H.commit_main(dir, "the app")
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local block = r.stdout:match("\n  db\n(.-)\n  api")
    assert.matches("health:   the database answers (pg_isready)", block, 1, true)
    assert.not_matches("false", block, 1, true)
    assert.matches("compose.yaml:5: environment.POSTGRES_USER is not used", block, 1, true)
  end)
end)

describe("a compose port with no host port", function()
  after_each(H.cleanup)

  it("is published on a random host port, as Compose does: two services' clash on none", function()
    local doc = assert(read("services:\n  api:\n    command: [x]\n    ports: ['8000']\n  admin:\n    command: [y]\n"
      .. "    ports: ['8000']\n  b:\n    command: [z]\n    ports: ['127.0.0.1::8000']\n"
      .. "  c:\n    command: [z]\n    ports:\n      - {target: 8000}\n"
      .. "  d:\n    command: [z]\n    ports: ['127.0.0.1:9000:8000']\n  e:\n    command: [z]\n    ports: ['127.0.0.2:9000:80']\n"))
    local by = {}
    for _, sv in ipairs(doc.services) do by[sv.name] = sv end
    assert.same({ 8000, true }, { by.api.listens, by.api.published })
    assert.same({ 8000, true }, { by.admin.listens, by.admin.published })
    assert.same({ 8000, true, "127.0.0.1" }, { by.b.listens, by.b.published, by.b.host_ip })
    assert.same({ 8000, true }, { by.c.listens, by.c.published })
    -- one host port on two IPs is no clash either; on one IP, or beside every interface, it is
    assert.same({ 9000, 9000 }, { by.d.published, by.e.published })
    assert.equal("compose.yaml:7: services a and b both ask for port 9000 (line 4)",
      refused "services:\n  a:\n    command: [x]\n    ports: ['127.0.0.1:9000:80']\n  b:\n    command: [y]\n    ports: ['9000:80']\n")
    assert.equal("compose.yaml:7: services a and b both ask for port 9000 (line 4)",
      refused "services:\n  a:\n    command: [x]\n    ports: ['127.0.0.1:9000:80']\n  b:\n    command: [y]\n    ports: ['127.0.0.1:9000:81']\n")
    -- an empty host part without an IP is no port
    assert.matches('services.a.ports: ":8000" is not a port', refused "services:\n  a:\n    command: [x]\n    ports: [':8000']\n",
      1, true)
    -- one with a lone container port is published: the entry
    local p = assert(detect { ["compose.yaml"] = "services:\n  api:\n    command: [x]\n    ports: ['8000']\n"
      .. "  worker:\n    command: [y]\n    depends_on: [api]\n" })
    for _, sv in ipairs(p.services) do assert.equal(sv.name == "api", sv.entry) end
  end)
end)

describe("a compose file's messages", function()
  it("say that a variable in ports is not filled in, and .env not read", function()
    assert.equal('compose.yaml:4: services.web.ports: "${WEB_PORT:-8080}:8080" is not a port ("8000", "8080:8000", '
      .. '"127.0.0.1:8080:8000" or {target: 8000, published: 8080, host_ip: 127.0.0.1}); variables are not filled in '
      .. 'here (Orket reads no .env file): write the port',
      refused "services:\n  web:\n    command: [x]\n    ports: ['${WEB_PORT:-8080}:8080']\n")
  end)

  it("name, for an unknown field, the fields Orket passes over as well as those it reads", function()
    assert.equal("compose.yaml:4: services.a.logging: not a field Orket reads (it reads command, build, image, ports, "
      .. "environment, depends_on, healthcheck, working_dir, x-orket; it passes over restart, volumes, networks, labels, "
      .. "expose, container_name and x-*)", refused "services:\n  a:\n    command: [x]\n    logging: {driver: none}\n")
  end)

  it("name an environment item without = at its own line, saying the host's value is not passed on", function()
    assert.equal("compose.yaml:7: services.a.environment: a mapping of names to strings, or a list of NAME=value "
      .. "(API_KEY: Compose passes the host's value on, Orket does not: give it as API_KEY=value)",
      refused "services:\n  a:\n    command: [x]\n    environment:\n      - A=1\n      - B=2\n      - API_KEY\n")
  end)
end)
