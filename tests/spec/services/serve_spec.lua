-- orket.serve's pure parts: path and query decoding, routing, token buckets, JSON bodies,
-- keys (format, hash, pepper, revocation, roles), limits and SSE messages.
local router = require "orket.serve.router"
local ratelimit = require "orket.serve.ratelimit"
local body = require "orket.serve.body"
local keys = require "orket.serve.keys"
local auth = require "orket.serve.auth"
local events = require "orket.serve.events"
local serve = require "orket.serve"
local H = require "tests.helpers"

describe("orket.serve.router", function()
  it("decodes paths and refuses tricks", function()
    assert.same({ "v1", "cards", "A B" }, router.segments("/v1/cards/A%20B"))
    assert.same({ "v1", "board" }, router.segments("/v1/board/"))
    assert.same({ "" }, router.segments("/"))
    for _, p in ipairs { "/v1/cards/..", "/v1/cards/%2e%2e", "/v1/cards/%2E%2e", "/v1/./board", "/v1/cards/a%2fb",
      "/v1/cards/a%5cb", "/v1/cards/a%00b", "/v1/cards/a%0ab", "/v1/cards/%zz", "/v1/cards/%4", "/v1//board",
      "v1/board", "/v1/cards/a\\b", "/v1/cards/a\tb", "/v1/cards/a\127b", "/v1/cards/a\0b", "/v1/cards/." } do
      assert.is_nil(router.segments(p), p)
    end
    -- a long path is refused as long, not as one that does not start with /
    assert.same({ nil, "the path is longer than 2048 bytes" }, { router.segments("/" .. string.rep("a", 3000)) })
    assert.same({ nil, "the path must start with /" }, { router.segments("v1/board") })
  end)

  it("takes a project's routes under its prefix, and its /v1 routes only without a second v1", function()
    local projects = require "orket.serve.projects"
    assert.same({ "web", { "v1", "board" }, { "board" } }, { projects.scope(router.segments("/v1/projects/web/board")) })
    assert.same({ "web", { "v1", "mcp" }, { "mcp" } }, { projects.scope(router.segments("/v1/projects/web/mcp")) })
    -- /v1/projects/web/v1/board is no path of web's board
    assert.same({ "web", { "v1", "v1", "board" } }, { projects.scope(router.segments("/v1/projects/web/v1/board")) })
    assert.is_nil(projects.scope(router.segments("/v1/projects/web")))
  end)

  it("decodes queries and refuses NUL", function()
    assert.same({ after = "12", card = "API 2" }, router.query { after = "12", card = "API+2" })
    assert.is_nil(router.query { card = "a%00" })
    assert.is_nil(router.query { ["a%"] = "1" })
  end)

  it("matches routes with parameters, HEAD as GET, and tells 404 from 405", function()
    local r = router.new()
    r:add("GET", "/v1/cards/{id}", { name = "card" })
    r:add("GET", "/health", { name = "health" })
    local route, params = r:match("GET", router.segments("/v1/cards/X-1"))
    assert.equal("card", route.name)
    assert.same({ id = "X-1" }, params)
    assert.equal("health", (r:match("HEAD", router.segments("/health"))).name)
    assert.same({ nil, 405, { "GET" } }, { r:match("POST", router.segments("/health")) })
    assert.same({ nil, 404 }, { r:match("GET", router.segments("/nope")) })
    assert.same({ nil, 404 }, { r:match("GET", router.segments("/")) })
  end)

  it("takes the route added first where several match, and the rest of a path as one parameter", function()
    local r = router.new()
    r:add("GET", "/v1/cards/{id}", { name = "card" })
    r:add("GET", "/v1/cards/search", { name = "search" }) -- after {id}: {id} wins
    r:add("GET", "/v1/runs/latest", { name = "latest" })
    r:add("GET", "/v1/runs/{id}", { name = "run" }) -- after the literal: the literal wins
    r:add("POST", "/v1/runs/{id}", { name = "run_post" })
    r:add("GET", "/v1/sandboxes/{id}/app/{path*}", { name = "app" })
    r:add("DELETE", "/v1/sandboxes/{id}/app/{path*}", { name = "app_delete" })
    r:add("GET", "/v1/sandboxes/{id}/logs", { name = "logs" })
    assert.equal("card", (r:match("GET", router.segments("/v1/cards/search"))).name)
    assert.equal("latest", (r:match("GET", router.segments("/v1/runs/latest"))).name)
    local route, params = r:match("GET", router.segments("/v1/runs/7"))
    assert.equal("run", route.name)
    assert.same({ id = "7" }, params)
    assert.equal("run_post", (r:match("POST", router.segments("/v1/runs/latest"))).name)
    route, params = r:match("GET", router.segments("/v1/sandboxes/3/app/a/b%20c/d"))
    assert.equal("app", route.name)
    assert.same({ id = "3", path = "a/b c/d" }, params)
    route, params = r:match("GET", router.segments("/v1/sandboxes/3/app"))
    assert.equal("app", route.name)
    assert.same({ id = "3", path = "" }, params)
    assert.equal("logs", (r:match("GET", router.segments("/v1/sandboxes/3/logs"))).name)
    assert.same({ nil, 405, { "GET", "DELETE" } }, { r:match("PUT", router.segments("/v1/sandboxes/3/app/x")) })
    assert.same({ nil, 405, { "GET", "POST" } }, { r:match("PUT", router.segments("/v1/runs/7")) })
    assert.same({ nil, 404 }, { r:match("GET", router.segments("/v1/sandboxes/3")) })
    assert.same({ nil, 404 }, { r:match("GET", router.segments("/v1/cards/1/2")) })
    assert.has_error(function() r:add("GET", "/v1/{rest*}/x", {}) end)
  end)
end)

describe("orket.serve.sandboxes.app_path", function()
  local sandboxes = require "orket.serve.sandboxes"
  -- the proxy's route known from the path must be the router's, parameters and all: every
  -- path it answers for is checked against the router's split and match
  it("gives the proxy's route and parameters as the router does, and declines what it is not sure of", function()
    local r = serve.router()
    local routes = sandboxes.app_routes(r)
    local pieces = { "", "/", "//", "/a", "/a/", "/a//b", "/.", "/..", "/./x", "/../x", "/.well-known/x", "/a.js",
      "/a%20b", "/a%2fb", "/a\\b", "/a\tb", "/x/y/z.css", "/a/b/", "/%2e%2e", "s", "/-_~!$&'()*+,;=:@" }
    local ids = { "1", "42", "", ".", "..", "x", "%31", "1.5" }
    local answered = 0
    for _, id in ipairs(ids) do
      for _, rest in ipairs(pieces) do
        for _, m in ipairs { "GET", "HEAD", "POST", "DELETE" } do
          local path = "/v1/sandboxes/" .. id .. "/app" .. rest
          local fid, frest = sandboxes.app_path(path)
          if fid then
            answered = answered + 1
            local segs = assert(router.segments(path), path)
            local route, params = r:match(m, segs)
            assert.equal(route, routes[m], path)
            assert.same(params, { id = fid, path = frest }, path)
            -- clean: the rest is the app's URL path as it is (nothing the proxy would encode)
            local cid, crest, clean = sandboxes.app_route(path)
            assert.same({ fid, frest }, { cid, crest }, path)
            if clean then
              assert.is_nil(crest:find("[^%w%-%._~/]"), path)
              assert.is_nil(crest:find("//", 1, true), path)
              assert.is_true(crest:byte(1) ~= 47 and crest:byte(-1) ~= 47, path)
            end
          end
        end
      end
    end
    assert.is_true(answered > 100)
    assert.same({ "1", "x/y/z.css" }, { sandboxes.app_path("/v1/sandboxes/1/app/x/y/z.css") })
    assert.same({ "1", "" }, { sandboxes.app_path("/v1/sandboxes/1/app") })
    assert.same({ "1", "a/b" }, { sandboxes.app_path("/v1/sandboxes/1/app/a/b/") })
    for _, p in ipairs { "/v1/sandboxes/1/apps", "/v1/sandboxes/1/logs", "/v1/sandboxes/1", "/v1/sandboxes//app",
      "/v1/sandboxes/1/app/a%2fb", "/v1/sandboxes/1/app/..", "/v1/sandboxes/1/app//", "/x/v1/sandboxes/1/app",
      "/v1/sandboxes/1/app/" .. string.rep("a", 2100) } do
      assert.is_nil(sandboxes.app_path(p), p)
    end
  end)
end)

describe("orket.serve.ratelimit", function()
  it("takes tokens, refills them and says how long to wait", function()
    local l = ratelimit.new { rate = 2, burst = 3 }
    for _ = 1, 3 do assert.is_true((l:take("a", 0))) end
    assert.same({ false, 1 }, { l:take("a", 0) })
    assert.is_true((l:take("b", 0))) -- another name has its own bucket
    assert.equal(1, l:empty("a", 100))
    assert.is_true((l:take("a", 500))) -- one token back after half a second
    local slow = ratelimit.new { rate = 0.1, burst = 1 }
    slow:take("x", 0)
    assert.same({ false, 10 }, { slow:take("x", 0) })
  end)

  it("keeps its table bounded", function()
    local l = ratelimit.new { rate = 1, burst = 1, max = 100 }
    for i = 1, 1000 do l:take("addr" .. i, 0) end
    assert.is_true(l:count() <= 100, l:count())
    -- past max names, the full buckets go first: idle clients are forgotten
    local idle = ratelimit.new { rate = 1000, burst = 1, max = 4 }
    for _, name in ipairs { "a", "b", "c", "d" } do idle:take(name, 0) end
    idle:take("e", 10000)
    assert.equal(1, idle:count())
    -- none full: the least recently seen half goes, the others keep their empty buckets
    local busy = ratelimit.new { rate = 0.001, burst = 1, max = 4 }
    for i, name in ipairs { "a", "b", "c", "d" } do busy:take(name, i) end
    busy:take("e", 5)
    assert.equal(3, busy:count())
    assert.is_true((busy:take("a", 6))) -- forgotten: a full bucket again
    assert.is_false((busy:take("c", 6))) -- kept: still empty
    -- a key id is a number: its bucket is the one of its text
    assert.is_true((busy:take(7, 6)))
    assert.same({ false, 1000 }, { busy:take("7", 6) })
    assert.has_error(function() busy:take({}, 1) end, "bad argument #1 to 'take' (string or number expected, got table)")
    busy:close()
    busy:close() -- idempotent
    assert.has_error(function() busy:take("a", 1) end, "calling 'take' on bad self (the limiter is closed)")
  end)
end)

describe("orket.serve.body", function()
  local function req(text, code)
    return { body = function() if code then return nil, "x", code end return text end }
  end

  it("decodes JSON and refuses deep nesting, invalid UTF-8 and junk", function()
    assert.same({ a = { 1, 2 } }, body.json(req('{"a":[1,2]}')))
    -- 32 levels pass, 33 do not; brackets inside strings are no nesting
    local at32 = '{"a":' .. string.rep("[", 30) .. '{"s":"[[[[\\"]]"}' .. string.rep("]", 30) .. "}"
    assert.is_table((body.json(req(at32))))
    local deep = string.rep("[", 100000) .. string.rep("]", 100000)
    assert.same({ nil, 400, "bad_json", "the body nests deeper than 32 levels" }, { body.json(req(deep)) })
    assert.same({ nil, 400, "bad_json", "the body nests deeper than 32 levels" },
      { body.json(req(string.rep("[", 33) .. string.rep("]", 33))) })
    assert.same({ nil, 400, "bad_json", "the body is not valid UTF-8" }, { body.json(req('{"a":"\255\254"}')) })
    local v, st, code = body.json(req("{nope"))
    assert.is_nil(v)
    assert.equal(400, st)
    assert.equal("bad_json", code)
    assert.equal(413, select(2, body.json(req(nil, "E2BIG"))))
    assert.equal(408, select(2, body.json(req(nil, "ETIMEDOUT"))))
  end)

  it("refuses the numbers JSON does not have, as MCP's door does", function()
    for _, n in ipairs { "0x2", "0X2", "010", "-01", "+5", "NaN", "nan", "Infinity", "-Infinity", "inf" } do
      local v, st, code, why = body.json(req('{"n":' .. n .. "}"))
      assert.same({ nil, 400, "bad_json" }, { v, st, code }, n)
      assert.matches("^the body is not JSON: expected value but found invalid ", why)
      assert.is_nil(body.decode(n), n)
    end
    for _, n in ipairs { "0", "-0", "10", "1.5", "-2e3", "1E+2", "0.5e-1" } do
      assert.is_number(body.json(req('{"n":' .. n .. "}")).n, n)
    end
  end)

  it("refuses a body that is no object, an empty array too (cjson reads [] as {})", function()
    local no = { nil, 400, "bad_request", "the body must be a JSON object ({} when no field is given)" }
    for _, text in ipairs { "[]", " \r\n\t[ ]", "[5]", '[{"to":"done"}]', '"x"', "5", "true", "false", "null" } do
      assert.same(no, { body.json(req(text)) }, text)
    end
    assert.same({}, body.json(req(" \n{ }")))
    assert.is_true(body.is_object('\t{"a":[]}'))
    assert.is_false(body.is_object(" [{}]"))
  end)

  it("says what is wrong with a body that is not JSON in words, and an empty one as empty", function()
    local empty = "the body is empty: send a JSON object ({} when no field is given)"
    assert.same({ nil, 400, "bad_json", empty }, { body.json(req("")) })
    assert.same({ nil, 400, "bad_json", empty }, { body.json(req(" \r\n")) })
    assert.same({ nil, 400, "bad_json", "the body is not JSON: expected comma or object end but found the end of the "
      .. "body at byte 12" }, { body.json(req('{"body":"x"')) })
    local _, _, _, why = body.json(req('{"a" 1}'))
    assert.is_nil(why:find("T_", 1, true), why)
    assert.is_nil(why:find("character", 1, true), why)
  end)

  it("takes an optional member sent as null as absent, and leaves a required one", function()
    local cjson = require "cjson"
    local schema = { type = "object", required = { "to" }, properties = { to = { type = "string" },
      note = { type = "string" } } }
    local v = body.without_nulls(schema, body.json(req('{"to":"done","note":null,"n":[null]}')))
    assert.same({ to = "done", n = { cjson.null } }, v) -- only top-level optional members
    assert.same({ to = cjson.null }, body.without_nulls(schema, { to = cjson.null, note = cjson.null }))
    assert.equal("x", body.without_nulls(schema, "x"))
    local doc = require("orket.serve.openapi").nullable_optional(schema)
    assert.same({ "string", "null" }, doc.properties.note.type)
    assert.equal("string", doc.properties.to.type)
    assert.equal("string", schema.properties.note.type) -- the route's own schema is left alone
  end)

  it("describes every response of the API document, the statuses routes name themselves too", function()
    local openapi = require "orket.serve.openapi"
    local r = require("orket.serve.router").new()
    r:add("POST", "/v1/x", { handler = function() end, role = "operator", name = "x", errors = { 422, 502, 418 },
      schema = { type = "object", properties = {} }, body = "json" })
    local doc = openapi.document(r)
    local responses = doc.paths["/v1/x"].post.responses
    for _, st in ipairs { "400", "409", "418", "422", "502" } do
      assert.equal("string", type(responses[st] and responses[st].description), st)
    end
  end)
end)

describe("orket.serve.keys", function()
  after_each(H.cleanup)

  local function project()
    local dir = H.tmpdir()
    -- the keys' pepper lives in .orket/ on either backend (orket.project makes it)
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    return dir, require("tests.backends").open_store()
  end

  it("makes a key shown once, stores only a keyed hash, and verifies it in constant time", function()
    local dir, db = project()
    local key, info = keys.create(db, dir, "ci", "viewer")
    assert.matches("^ork_%x+_%x+$", key)
    assert.equal(85, #key)
    local id, secret = keys.parse(key)
    assert.equal(info.id, id)
    local pepper = assert(keys.pepper(dir, false))
    assert.equal(32, #pepper)
    assert.equal(384, require("luv").fs_stat(keys.pepper_path(dir)).mode & 511) -- 0600
    local row = db:row("SELECT * FROM api_keys")
    for _, v in pairs(row) do
      assert.is_nil(tostring(v):find(secret, 1, true))
    end
    assert.same({ id = id, name = "ci", role = "viewer" }, keys.verify(db, pepper, key))
    assert.same({ nil, "wrong" }, { keys.verify(db, pepper, key:sub(1, -2) .. (key:sub(-1) == "0" and "1" or "0")) })
    assert.same({ nil, "malformed" }, { keys.verify(db, pepper, "Bearer " .. key) })
    assert.same({ nil, "unknown" }, { keys.verify(db, pepper, "ork_0000000000000000_" .. secret) })
    -- the journal knows the key was made, never the key
    local ev = db:events { limit = 10 }
    assert.equal("key_create", ev[#ev].kind)
    assert.is_nil(require("cjson").encode(ev):find(secret, 1, true))
    db:close()
  end)

  it("revokes by id or name, and refuses duplicates and bad names", function()
    local dir, db = project()
    local key = keys.create(db, dir, "a", "admin")
    assert.same({ nil, "a key named 'a' exists already; revoke it first or choose another name", "EEXIST" },
      { keys.create(db, dir, "a", "viewer") })
    assert.equal("EUSAGE", select(3, keys.create(db, dir, "../x", "viewer")))
    assert.equal("EUSAGE", select(3, keys.create(db, dir, "x", "root")))
    assert.equal("a", keys.revoke(db, "a").name)
    assert.same({ nil, "revoked" }, { keys.verify(db, keys.pepper(dir), key) })
    assert.equal(0, keys.active_count(db))
    assert.equal(1, keys.total_count(db))
    assert.truthy(keys.create(db, dir, "a", "viewer")) -- the name is free again
    assert.equal("ENOENT", select(3, keys.revoke(db, "nobody")))
    db:close()
  end)

  it("refuses a pepper others may read", function()
    local dir, db = project()
    keys.create(db, dir, "a", "viewer")
    require("luv").fs_chmod(keys.pepper_path(dir), 420) -- 0644
    assert.equal("EPERM", select(3, keys.pepper(dir)))
    db:close()
  end)

  it("orders roles", function()
    assert.is_true(keys.allows("admin", "viewer"))
    assert.is_true(keys.allows("operator", "operator"))
    assert.is_false(keys.allows("viewer", "operator"))
    assert.is_false(keys.allows("nobody", "viewer"))
  end)
end)

describe("orket.serve.auth", function()
  after_each(H.cleanup)

  it("knows loopback host names", function()
    for _, h in ipairs { "localhost", "localhost:8765", "127.0.0.1:1", "[::1]:8765", "LOCALHOST", "127.255.0.254:80" } do
      assert.is_true(auth.loopback_host(h), h)
    end
    -- the server accepts a Host's trailing dot and %XX as sent (docs/serve.md): neither is local use
    for _, h in ipairs { "evil.com", "127.0.0.1.evil.com", "localhost.evil.com:80", "10.0.0.1", "localhost.",
      "localhost.:8765", "127.0.0.1.", "%6Cocalhost", "localhost%3A8765",
      -- digits that are no address: a browser refuses such a name, and so does the check
      "127.999.0.1", "127.0000.0.1", "127.0.0.01:80", "127.1" } do
      assert.is_false(auth.loopback_host(h), h)
    end
    assert.is_false(auth.loopback_host(nil))
  end)

  it("keeps its answers for at most 64 Host names, and answers the same past them", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = assert(require("orket.store").open(dir .. "/orket.db"))
    local a = auth.new(db, dir, true)
    local function check(host)
      return a:check { method = "GET", path = "/v1/board", remote = "127.0.0.1", headers = { host = host } }
    end
    for i = 1, 200 do
      local _, status = check("h" .. i .. ".example")
      assert.equal(403, status)
      assert.is_true(a.nhosts <= 64)
      assert.is_true(check("localhost:" .. i).local_use)
    end
    db:close()
  end)

  it("reads the store once a request until a key exists, and sees the first key another connection made", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local store, backends = require "orket.store", require "tests.backends"
    local url = backends.name() == "pg" and backends.fresh_url() -- two connections to one store
    local function open() return assert(url and store.open_url(url) or store.open(dir .. "/orket.db")) end
    local db, other = open(), open()
    local reads = 0
    local counted = setmetatable({}, { __index = function(_, k)
      local v = db[k]
      if type(v) ~= "function" then return v end
      return function(_, ...)
        if k == "row" or k == "rows" then reads = reads + 1 end
        return v(db, ...)
      end
    end })
    local a = auth.new(counted, dir, true)
    local req = { method = "GET", path = "/v1/board", remote = "127.0.0.1", headers = { host = "localhost:1" } }
    assert.is_true(a:check(req).local_use)
    assert.equal(1, reads)
    assert.is_true(a:check(req).local_use)
    assert.equal(2, reads)
    keys.create(other, dir, "ci", "viewer") -- as `orket keys create` in another process
    local who, status = a:check(req)
    assert.is_nil(who)
    assert.equal(401, status)
    reads = 0
    a:check(req) -- once a key exists, the question is not asked again
    assert.equal(0, reads)
    other:close()
    db:close()
  end)

  -- a store and another connection to it, and the first's reads counted
  local function counted_store()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local store = require "orket.store"
    local db, other = assert(store.open(dir .. "/orket.db")), assert(store.open(dir .. "/orket.db"))
    local n = { reads = 0 }
    n.db = setmetatable({}, { __index = function(_, k)
      local v = db[k]
      if type(v) ~= "function" then return v end
      return function(_, ...)
        if k == "row" or k == "rows" then n.reads = n.reads + 1 end
        return v(db, ...)
      end
    end })
    return dir, db, other, n
  end

  it("with the store's stamp, asks whether a key exists only when a connection wrote since", function()
    if require("tests.backends").name() == "pg" then
      -- PostgreSQL's store has no stamp: the server passes none, and every request reads
      local db = require("tests.backends").open_store()
      assert.is_nil(type(db.conn) == "userdata" and db.conn.stamp or nil)
      db:close()
      return
    end
    local dir, db, other, n = counted_store()
    local a = auth.new(n.db, dir, true)
    local req = { method = "GET", path = "/v1/board", remote = "127.0.0.1", headers = { host = "localhost:1" } }
    local function check() return a:check(req, db.conn:stamp()) end
    assert.is_true(check().local_use)
    assert.equal(1, n.reads)
    for _ = 1, 3 do assert.is_true(check().local_use) end
    assert.equal(1, n.reads) -- nothing written since: the answer stands
    assert(db:run("INSERT INTO rate_buckets (scope, name, tokens, at_ms) VALUES ('s', 'n', 1, 1)"))
    assert.is_true(check().local_use) -- its own write, to any table: asked again
    assert.equal(2, n.reads)
    keys.create(other, dir, "ci", "viewer") -- as `orket keys create` in another process
    local who, status = check() -- seen at the next request
    assert.is_nil(who)
    assert.equal(401, status)
    assert.equal(3, n.reads)
    other:close()
    db:close()
  end)

  it("with the store's stamp, verifies a key again only when a connection wrote since: a revoke is seen at once", function()
    if require("tests.backends").name() == "pg" then return end -- no stamp there (above)
    local dir, db, other, n = counted_store()
    local key = assert(keys.create(db, dir, "ci", "operator"))
    local a = auth.new(n.db, dir, false)
    local function check(k)
      return a:check({ method = "GET", path = "/v1/board", remote = "10.0.0.1",
        headers = { host = "orket.example", authorization = "Bearer " .. k } }, db.conn:stamp())
    end
    assert.equal("operator", check(key).role)
    local reads = n.reads
    assert.is_true(reads >= 1)
    for _ = 1, 3 do assert.equal("operator", check(key).role) end
    assert.equal(reads, n.reads) -- verified while nothing was written: not read again
    -- a key that is not valid is never kept: read each time
    local wrong = key:sub(1, -2) .. (key:sub(-1) == "0" and "1" or "0")
    local _, st = check(wrong)
    assert.equal(401, st)
    _, st = check(wrong)
    assert.equal(401, st)
    assert.equal(reads + 2, n.reads)
    keys.revoke(other, "ci") -- as `orket keys revoke` in another process
    local who, status, _, _, why = check(key) -- refused at its next request
    assert.is_nil(who)
    assert.equal(401, status)
    assert.equal("revoked", why)
    other:close()
    db:close()
  end)

  it("with the store's stamp, reads a failed-authentication bucket only when a connection wrote since", function()
    if require("tests.backends").name() == "pg" then return end -- no stamp there (above)
    local _, db, other, n = counted_store()
    local o = { rate = 0.001, burst = 2 }
    local l, lo = ratelimit.shared(n.db, "auth_fail", o), ratelimit.shared(other, "auth_fail", o)
    local function empty(name) return l:empty(name, 0, db.conn:stamp()) end
    assert.is_false(empty("a"))
    assert.is_false(empty("a"))
    assert.is_false(empty("b"))
    assert.equal(2, n.reads) -- one a name while nothing is written
    lo:take("a")
    lo:take("a") -- another server's failures: a's bucket empty, seen at the next request
    assert.is_true(empty("a") >= 1)
    assert.is_false(empty("b"))
    assert.equal(4, n.reads)
    assert.is_true(empty("a") >= 1)
    assert.equal(4, n.reads)
    l:take("b") -- its own write: read again
    assert.is_false(empty("b"))
    l:take("b")
    assert.is_true(empty("b") >= 1)
    assert.equal(6, n.reads)
    -- without a stamp (PostgreSQL's), every call reads
    assert.is_true(l:empty("b") >= 1)
    assert.equal(7, n.reads)
    other:close()
    db:close()
  end)
end)

describe("orket.serve limits and messages", function()
  after_each(H.cleanup)

  it("reads ORKET_SERVE_LIMITS", function()
    local l = assert(serve.limits("heartbeat_ms=100, max_body_bytes=10"))
    assert.equal(100, l.heartbeat_ms)
    assert.equal(10, l.max_body_bytes)
    assert.equal(serve.DEFAULTS.max_connections, l.max_connections)
    assert.matches("bad limit 'nope=1'", select(2, serve.limits("nope=1")))
    assert.matches("bad limit 'x'", select(2, serve.limits("x")))
    -- a fraction or a number past an int was taken, and raised by the listener or a timer
    -- at start-up (an internal error with a traceback)
    for _, spec in ipairs { "poll_ms=0.5", "heartbeat_ms=1.5", "max_connections=1.5", "max_connections=100001",
      "max_body_bytes=99999999999999999999", "idle_timeout_s=2.5", "body_min_rate=0.5",
      -- past what the listener takes (raised there at start-up: exit 70)
      "body_min_rate=2000000000", "header_timeout_ms=100000000", "body_timeout_ms=86400001", "idle_timeout_s=86401",
      "max_header_bytes=16777217", "max_stream_queue=1073741825" } do
      local l, err = serve.limits(spec)
      assert.is_nil(l, spec)
      assert.matches("bad limit '" .. spec:gsub("%p", "%%%0") .. "': " .. spec:match("^[%w_]+") .. " takes a whole number", err)
    end
    -- a limiter that refills nothing was refused by the limiter's own assert at start-up
    for _, spec in ipairs { "addr_rate=0", "key_rate=0", "addr_burst=0", "key_burst=0.5" } do
      local l, err = serve.limits(spec)
      assert.is_nil(l, spec)
      assert.matches("bad limit '" .. spec:gsub("%p", "%%%0") .. "': " .. spec:match("^[%w_]+") .. " takes a number ", err)
    end
    -- spaces around a name or value are the item's, not other items
    l = assert(serve.limits(" max_body_bytes = 10 , addr_rate=2.5"))
    assert.same({ 10, "integer", 2.5 }, { l.max_body_bytes, math.type(l.max_body_bytes), l.addr_rate })
    -- the body's minimum rate is bytes a second, whole (0: its default), not a limiter's tokens
    l = assert(serve.limits("body_min_rate=512.0"))
    assert.same({ 512, "integer" }, { l.body_min_rate, math.type(l.body_min_rate) })
    assert.equal(0, assert(serve.limits("body_min_rate=0")).body_min_rate)
  end)

  it("refuses a failed sign-in limit that would turn it off, naming what it takes", function()
    for _, spec in ipairs { "account_fail_names=0", "account_fail_names=0.5", "account_fail_names=2.5",
      "account_fail_rate=0", "account_fail_burst=0", "account_fail_burst=0.9", "auth_fail_rate=0", "auth_fail_burst=0" } do
      local l, err = serve.limits(spec)
      assert.is_nil(l, spec)
      assert.matches("bad limit '" .. spec:gsub("%p", "%%%0") .. "': " .. spec:match("^[%w_]+") .. " takes ", err)
      assert.matches("cannot be turned off", err, 1, true)
    end
    local l = assert(serve.limits("account_fail_names=1,account_fail_rate=0.001,account_fail_burst=1"))
    assert.same({ 1, 0.001, 1 }, { l.account_fail_names, l.account_fail_rate, l.account_fail_burst })
    assert.equal("integer", math.type(assert(serve.limits("account_fail_names=20.0")).account_fail_names))
    assert.matches("takes a whole number from 1", select(2, serve.limits("account_fail_names=0")), 1, true)
  end)

  it("writes one SSE message per journal row, on one data line", function()
    local m = events.message { id = 7, at = "t", kind = "turn", card_id = "A-1", run_id = 3, actor = "dev",
      data = '{"path":"a\\/b"}' }
    assert.equal('id: 7\nevent: turn\ndata: {"id":7,"at":"t","kind":"turn","card":"A-1","run":3,"actor":"dev",'
      .. '"data":{"path":"a/b"}}\n\n', m)
    assert.matches("event: a_b\n", events.message { id = 1, at = "t", kind = "a\nb" })
  end)

  -- A PostgreSQL notification carries its events (pg_schema migration 15): the hub delivers
  -- those that follow its cursor with no journal read, and reads the journal for the rest.
  -- The journal here is a table the hub reads through a stand-in store that counts reads.
  it("delivers a notification's carried events without a journal read, and reads the journal for a gap", function()
    local dialect = require "orket.store.dialect"
    local journal, fetched = {}, 0
    local function row(id) return { id = id, at = "t", kind = "comment", card_id = "A-1", actor = "x", data = "{}" } end
    for id = 1, 16 do if id ~= 14 then journal[#journal + 1] = row(id) end end -- 14 rolled back
    local db = { dialect = dialect.sqlite, backend = "test" }
    function db:row() return { id = 10 } end -- the newest id when the hub starts
    function db:rows(_, after, _, _, limit)
      fetched = fetched + 1
      local out = {}
      for _, r in ipairs(journal) do if r.id > after and #out < limit then out[#out + 1] = r end end
      return out
    end
    local hub = events.new(db, { poll_ms = 600000, heartbeat_ms = 600000 })
    local sent = {}
    local stream = { send = function(_, msg) sent[#sent + 1] = msg return true end, close = function() end }
    hub.subs[stream] = { cursor = 10 }
    local function note(ids)
      local list = {}
      for i, id in ipairs(ids) do
        list[i] = string.format('{"id":%d,"at":"t","kind":"comment","card_id":"A-1","run_id":null,"actor":"x","data":"{}"}', id)
      end
      return { channel = "orket_journal", payload = #ids > 0 and "[" .. table.concat(list, ",") .. "]" or "" }
    end
    -- 11 and 12 follow the cursor: delivered from the payload, no read
    hub:_woken({ note { 11, 12 } }, {})
    assert.same({ 12, 1, 0, 0 }, { hub.last, hub.carried, hub.reads.notify, fetched })
    -- 12 again (already delivered) and 13: only 13 is new
    hub:_woken({ note { 12, 13 } }, {})
    assert.same({ 13, 2, 0, 3 }, { hub.last, hub.carried, fetched, #sent })
    -- 15 skips 14: the gap is read from the journal (14 is not there: rolled back), which
    -- brings 15 and 16; 16's own notification then repeats nothing
    hub:_woken({ note { 15 }, note { 16 } }, {})
    assert.same({ 16, 1, 3, 5 }, { hub.last, hub.reads.notify, hub.carried, #sent })
    assert.is_true(fetched >= 1)
    -- a notification without its events (too large for a payload) reads the journal
    journal[#journal + 1] = row(17)
    hub:_woken({ note {} }, {})
    assert.same({ 17, 2, 6 }, { hub.last, hub.reads.notify, #sent })
    assert.same({ 17 }, { hub.subs[stream].cursor })
    hub:close()
  end)

  -- `orket restore` replaces the journal under an open stream and gives the store a new id
  -- (orket.store.projects.renew): the hub reads the id as it reads the journal, once per
  -- poll or wake-up for all its streams, and on a new one resets every stream onto the new
  -- journal's end. Its rows, which PostgreSQL's notifications carry from id 1, are never
  -- taken for new events. The store here is a stand-in that counts the id's reads.
  it("resets its streams when the store's id changes, reading the id once per poll or wake-up", function()
    local dialect = require "orket.store.dialect"
    local sid, newest, id_reads, journal = "s1", 20, 0, {}
    local db = { dialect = dialect.sqlite, backend = "test" }
    function db:row(sql)
      if sql:find("store_identity", 1, true) then
        id_reads = id_reads + 1
        return { id = sid }
      end
      return { id = newest }
    end
    function db:rows(_, after, _, _, limit)
      local out = {}
      for _, r in ipairs(journal) do if r.id > after and #out < limit then out[#out + 1] = r end end
      return out
    end
    local function row(id) return { id = id, at = "t", kind = "comment", card_id = "A-1", actor = "x", data = "{}" } end
    local hub = events.new(db, { poll_ms = 600000, heartbeat_ms = 600000 })
    local sent = {}
    local stream = { send = function(_, msg) sent[#sent + 1] = msg return true end, close = function() end }
    hub.subs[stream] = { cursor = 20, people = true }
    -- a poll with the same id: nothing sent, the id read once
    id_reads = 0
    hub:poll()
    assert.same({ 1, 0 }, { id_reads, #sent })
    -- restored (SQLite: from another process) to a longer journal: a reset with its
    -- newest, not its rows past the old cursor; then its new rows
    sid, newest = "s1-a", 30
    for id = 1, 30 do journal[id] = row(id) end
    hub:poll()
    assert.same({ events.reset(30) }, sent)
    assert.same({ 30, 30, 1 }, { hub.last, hub.subs[stream].cursor, hub:epoch() })
    journal[31] = row(31)
    hub:poll()
    assert.same({ 2, 31, "userdata" }, { #sent, hub.last, type(sent[2]) }) -- (an event: a shared blob)
    -- PostgreSQL: the restore's rows come carried by notifications from id 1 (one
    -- statement each): the first row the hub is past has the id read, once for the wake-up
    local function note(ids)
      local list = {}
      for i, id in ipairs(ids) do
        list[i] = string.format('{"id":%d,"at":"t","kind":"comment","card_id":"A-1","run_id":null,"actor":"x","data":"{}"}', id)
      end
      return { channel = "orket_journal", payload = "[" .. table.concat(list, ",") .. "]" }
    end
    sid, newest, journal = "s1-b", 3, { row(1), row(2), row(3) }
    id_reads, sent = 0, {}
    hub:_woken({ note { 1 }, note { 2 }, note { 3 } }, {})
    assert.same({ events.reset(3) }, sent)
    assert.same({ 1, 3, 2 }, { id_reads, hub.subs[stream].cursor, hub:epoch() })
    -- and the new journal's next event, carried, follows the reset
    journal[4], newest = row(4), 4
    hub:_woken({ note { 4 } }, {})
    assert.same({ 2, 1, 4 }, { #sent, id_reads, hub.last })
    -- a carried row the hub is past with the same id (a journal read ran ahead of it): no reset
    hub:_woken({ note { 4 } }, {})
    assert.same({ 2, 2 }, { #sent, id_reads })
    -- a stream that opened on the new id before the hub saw it (its route read it) is not
    -- reset: it follows the new journal already, and gets the rows up to the hub's cursor
    local mine = {}
    local other = { send = function(_, msg) mine[#mine + 1] = msg return true end, close = function() end }
    sid, newest, journal = "s1-c", 3, { row(1), row(2), row(3) }
    hub.subs[other] = { cursor = 1, people = true, sid = "s1-c" }
    sent = {}
    hub:poll()
    assert.same({ { events.reset(3) }, 2, 3 }, { sent, #mine, hub.subs[other].cursor })
    assert.equal("string", type(mine[1])) -- (rows 2 and 3, no reset)
    assert.is_nil(mine[1]:find("event: reset", 1, true))
    hub:close()
  end)

  -- The checks of the store's id when a read fails (a locked SQLite, a dropped connection):
  -- a failed check is done again at the next poll, not lost; a failed id read on
  -- PostgreSQL has the next wake-up read it, whatever its rows; a hub whose first read
  -- failed still resets a stream that registered with an older id (its route's read). And
  -- no stream open, no id read. The store is a stand-in whose reads fail on demand.
  it("does a check of the store's id that failed again, and reads the id only while a stream is open", function()
    local dialect = require "orket.store.dialect"
    local sid, newest, id_reads, id_fail, latest_fail, journal = "s1", 20, 0, 1, 0, {}
    local db = { dialect = dialect.sqlite, backend = "test" }
    function db:row(sql)
      if sql:find("store_identity", 1, true) then
        id_reads = id_reads + 1
        if id_fail > 0 then id_fail = id_fail - 1 error("database is locked") end
        return { id = sid }
      end
      if latest_fail > 0 then latest_fail = latest_fail - 1 return nil, "database is locked" end
      return { id = newest }
    end
    function db:rows(_, after, _, _, limit)
      local out = {}
      for _, r in ipairs(journal) do if r.id > after and #out < limit then out[#out + 1] = r end end
      return out
    end
    local function row(id) return { id = id, at = "t", kind = "comment", card_id = "A-1", actor = "x", data = "{}" } end
    -- the hub's first read fails
    local hub = events.new(db, { poll_ms = 600000, heartbeat_ms = 600000 })
    assert.same({ 1 }, { id_reads })
    assert.is_nil(hub.sid)
    -- no stream open: no id read
    id_reads = 0
    hub:poll()
    hub:poll()
    assert.same({ 0 }, { id_reads })
    -- a stream opens (its route read s1), then a restore to a 5-row journal, and the first
    -- read of its newest id fails: no reset yet, the next poll does the check again
    local sent = {}
    local stream = { send = function(_, msg) sent[#sent + 1] = msg return true end, close = function() end }
    hub.subs[stream] = { cursor = 20, people = true, sid = "s1" }
    sid, newest, latest_fail = "s1-a", 5, 1
    for id = 1, 5 do journal[id] = row(id) end
    local ok, err = pcall(hub.poll, hub)
    assert.is_false(ok)
    assert.matches("database is locked", err)
    assert.same({ 0, 20 }, { #sent, hub.last })
    hub:poll()
    assert.same({ events.reset(5) }, sent)
    assert.same({ 5, "s1-a" }, { hub.subs[stream].cursor, hub.sid })
    journal[6], newest = row(6), 6
    hub:poll()
    assert.same({ 2, 6, 6 }, { #sent, hub.subs[stream].cursor, hub.last })
    -- again with the hub's id read: another restore, a failed check, then one reset
    sid, newest, latest_fail, journal = "s1-b", 3, 1, { row(1), row(2), row(3) }
    sent = {}
    assert.is_false((pcall(hub.poll, hub)))
    hub:poll()
    hub:poll()
    assert.same({ { events.reset(3) }, 3, 3 }, { sent, hub.subs[stream].cursor, hub.last })
    -- PostgreSQL: the wake-up with the restore's rows (to a journal longer than the hub's
    -- cursor) fails to read the id; the next wake-up reads it, whatever its rows' ids
    local function note(ids)
      local list = {}
      for i, id in ipairs(ids) do
        list[i] = string.format('{"id":%d,"at":"t","kind":"comment","card_id":"A-1","run_id":null,"actor":"x","data":"{}"}', id)
      end
      return { channel = "orket_journal", payload = "[" .. table.concat(list, ",") .. "]" }
    end
    sid, newest, id_fail, journal = "s1-c", 5, 1, {}
    for id = 1, 5 do journal[id] = row(id) end
    sent = {}
    hub:_woken({ note { 1 }, note { 2 }, note { 3 }, note { 4 }, note { 5 } }, {})
    assert.same({ 2, 5 }, { #sent, hub.last }) -- (4 and 5 went out: the id was not known)
    journal[6], newest = row(6), 6
    hub:_woken({ note { 6 } }, {})
    assert.same({ 3, events.reset(6), "s1-c" }, { #sent, sent[3], hub.sid })
    -- read, the next wake-ups carrying new rows read it no more
    id_reads = 0
    journal[7], newest = row(7), 7
    hub:_woken({ note { 7 } }, {})
    assert.same({ 0, 4, 7 }, { id_reads, #sent, hub.subs[stream].cursor })
    hub:close()
  end)

  -- Notifications that come close together are delivered in one pass (orket.serve.events,
  -- GATHER_MS): the hub's listener here is a stand-in that answers each wait from a script.
  -- Every stream gets the one encoding of each event; a stream that cannot take one (its
  -- client gone, or fallen behind: send fails) is dropped and closed.
  it("gathers notifications that follow each other into one pass, and shares each event's encoding", function()
    local db = { dialect = require("orket.store.dialect").sqlite, backend = "test" }
    function db:row() return { id = 0 } end
    function db:rows() error("no journal read expected") end
    -- (a window no test run outlasts: the stand-in answers at once)
    local hub = events.new(db, { poll_ms = 600000, heartbeat_ms = 600000, gather_ms = 600000, gather_max = 4 })
    local function note(id)
      return { channel = "orket_journal", payload = string.format(
        '[{"id":%d,"at":"t","kind":"comment","card_id":"A-1","run_id":null,"actor":"x","data":"{}"}]', id) }
    end
    local script, waits = {}, {}
    hub.listener = { wait = function(_, ms)
      waits[#waits + 1] = ms
      local nxt = table.remove(script, 1)
      if nxt then return nxt[1], nxt[2] or {} end
      return {}, {}
    end }
    -- three waits bring one more each, then none: all four notes in one list
    script = { { { note(2) } }, { { note(3), note(4) } }, { {} } }
    local notes = { note(1) }
    hub:_gather(notes, {})
    assert.same({ 4, 2 }, { #notes, #waits })
    for _, ms in ipairs(waits) do assert.is_true(ms > 0 and ms <= 600000) end
    -- at most gather_max: no further wait once it is reached
    script, waits = { { { note(6), note(7), note(8), note(9) } } }, {}
    notes = { note(5) }
    hub:_gather(notes, {})
    assert.same({ 5, 1 }, { #notes, #waits })
    -- at most GATHER_BYTES of payloads: what one pass queues on a stream stays far below its cap
    local big = { channel = "orket_journal", payload = ("x"):rep(events.GATHER_BYTES // 2 + 1) }
    script, waits = { { { big } }, { { note(8) } } }, {}
    notes = { big }
    hub:_gather(notes, {})
    assert.same({ 2, 1 }, { #notes, #waits })
    -- a reconnect meanwhile ends the gathering and is kept: the journal is read then
    script, waits = { { { note(10) }, { reconnected = true } } }, {}
    local info = {}
    notes = { note(9) }
    hub:_gather(notes, info)
    assert.same({ 2, true }, { #notes, info.reconnected })
    -- a reconnect's own wake-up (no notes) is kept too, not taken for the end
    script, waits = { { {}, { reconnected = true } } }, {}
    info = {}
    notes = { note(9) }
    hub:_gather(notes, info)
    assert.same({ 1, true }, { #notes, info.reconnected })
    -- the window runs from the first note, however many keep coming: a listener that
    -- always has one more, after the whole wait, is asked once
    hub.gather_ms, waits = 20, {}
    local rt = require "orket.c.runtime"
    hub.listener = { wait = function(_, ms)
      waits[#waits + 1] = ms
      local till = rt.now() + ms -- (a timer may fire a fraction of a millisecond early)
      repeat orket.sleep(1) until rt.now() >= till
      return { note(12) }, {}
    end }
    notes = { note(11) }
    hub:_gather(notes, {})
    assert.same({ 2, 1 }, { #notes, #waits })
    -- one pass over them: each stream gets each event once, the same encoding on both; a
    -- stream whose send fails is dropped and closed
    local got, closed = { {}, {} }, false
    local function stream(list) return { send = function(_, m) list[#list + 1] = m return true end, close = function() end } end
    local a, b = stream(got[1]), stream(got[2])
    local gone = { send = function() return nil, "the client fell behind", "ESLOW" end, close = function() closed = true end }
    hub.subs[a], hub.subs[b], hub.subs[gone] = { cursor = 0 }, { cursor = 0 }, { cursor = 0 }
    hub:_woken({ note(1), note(2), note(3) }, {})
    assert.same({ 3, 3, 3 }, { #got[1], #got[2], hub.last })
    for i = 1, 3 do assert.is_true(rawequal(got[1][i], got[2][i])) end
    assert.same({ true, 2 }, { closed, hub:count() })
    hub.listener = nil
    hub:close()
  end)

  it("answers GET /health before the router, as the router's route answers it", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local task = require "orket.task"
    local srv = assert(serve.new { dir = dir, db = db, host = "127.0.0.1", port = 0 })
    local running = task.spawn(srv.run, srv)
    local match, matched = srv.router.match, 0
    srv.router.match = function(...) matched = matched + 1 return match(...) end
    local url = "http://127.0.0.1:" .. srv:port() .. "/health"
    local st, text, headers = H.fetch { url = url }
    assert.equal(200, st)
    assert.equal('{"status":"ok"}\n', text)
    assert.matches("^application/json", headers["content-type"])
    assert.equal("no-store", headers["cache-control"])
    assert.equal(0, matched) -- settled before the router
    local st2, text2 = H.fetch { url = url .. "?verbose=1" } -- anything else goes the router's way
    assert.equal(200, st2)
    assert.equal(text, text2)
    assert.equal(1, matched)
    task.spawn(srv.stop, srv):join()
    running:join()
    db:close()
  end)

  it("makes the decoy hash of unknown names' sign-ins at its start, once people exist", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local task = require "orket.task"
    local accounts = require "orket.serve.accounts"
    local prepare, prepared = accounts.prepare, 0
    accounts.prepare = function() prepared = prepared + 1 end
    local function started()
      local srv = assert(serve.new { dir = dir, db = db, host = "127.0.0.1", port = 0 })
      local running = task.spawn(srv.run, srv)
      task.spawn(srv.stop, srv):join()
      running:join()
    end
    local ok, e = pcall(function()
      started()
      assert.equal(0, prepared) -- nobody to sign in: no names to tell apart
      require("orket.store.users").insert(db, "ann", "viewer", "$argon2id$not-checked-here")
      started()
      assert.equal(1, prepared)
    end)
    accounts.prepare = prepare
    db:close()
    assert(ok, e)
  end)

  -- GET /health is answered in C (core/health.c): the same way as before, each part seen.
  local task = require "orket.task"
  local cjson = require "cjson"
  local metrics = require "orket.serve.metrics"
  local function health_server(orket_lua, limits)
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    if orket_lua then H.write(dir .. "/orket.lua", orket_lua) end
    local db = require("tests.backends").open_store()
    local lines = {}
    local srv, stop = require("tests.fixtures").served { dir = dir, db = db, host = "127.0.0.1", port = 0,
      limits = limits and assert(serve.limits(limits)), log = function(line) lines[#lines + 1] = line end }
    return srv, lines, stop, db
  end
  -- collects until weak[1] is gone, a loop turn between tries (closed handles' callbacks let
  -- go; on PostgreSQL the hub's connection ends asynchronously, later on a sanitizer
  -- build): at most 5 s, then the caller sees it still there
  local function let_go(weak)
    local deadline = require("luv").now() + 5000
    repeat
      require("orket.c.runtime").sleep(20)
      collectgarbage()
      collectgarbage()
    until weak[1] == nil or require("luv").now() > deadline
  end

  it("answers /health in C with the log line's fields, and /metrics counts it", function()
    local srv, lines, stop, db = health_server()
    local match, matched = srv.router.match, 0
    srv.router.match = function(...) matched = matched + 1 return match(...) end
    local url = "http://127.0.0.1:" .. srv:port() .. "/health"
    for _ = 1, 3 do assert.equal(200, (H.fetch { url = url })) end
    assert.equal(0, matched)
    assert.equal(3, #lines)
    local c = cjson.decode(lines[1])
    assert.same({ "GET", "/health", 200, cjson.null, "127.0.0.1" }, { c.method, c.route, c.status, c.key, c.addr })
    assert.matches('"us":%d+}$', lines[1]) -- whole microseconds
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", c.t)
    -- the same keys, in the same order, as the line the Lua way writes for the route
    assert.equal(200, (H.fetch { url = url .. "?x=1" }))
    local l = cjson.decode(lines[4])
    assert.equal("/health", l.route)
    local function keys(line) return (line:gsub('"us":%d+', '"us":0'):gsub('"t":"[^"]*"', '"t":""')) end
    assert.equal(keys(lines[4]), keys(lines[1]))
    local text = metrics.render(db, srv.metrics, 0)
    assert.matches('orket_http_requests_total{route="/health",status="200"} 4\n', text, 1, true)
    assert.matches('orket_http_request_duration_seconds_count{route="/health"} 4\n', text, 1, true)
    assert.matches('orket_http_request_duration_seconds_bucket{route="/health",le="+Inf"} 4\n', text, 1, true)
    local n = srv.health:stats()
    assert.equal(3, n)
    stop()
  end)

  it("refuses /health past the address's rate limit with 429, from the buckets of every route", function()
    local srv, lines, stop = health_server(nil, "addr_rate=0.01,addr_burst=2")
    local url = "http://127.0.0.1:" .. srv:port() .. "/health"
    assert.equal(200, (H.fetch { url = url }))
    assert.equal(404, (H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/nope" })) -- the same bucket
    local st, text, headers = H.fetch { url = url }
    assert.equal(429, st)
    assert.equal("rate_limited", cjson.decode(text).error.code)
    assert.equal("100", headers["retry-after"])
    assert.equal(429, cjson.decode(lines[#lines]).status)
    assert.equal(1, (srv.health:stats()))
    stop()
  end)

  it("sends CORS headers with /health to the allowed origins only", function()
    local many = {} -- serve.cors has no bound: a long list is answered as a short one
    for i = 1, 99 do many[i] = string.format("%q", "https://o" .. i .. ".example") end
    local srv, _, stop = health_server('serve = { cors = { ' .. table.concat(many, ", ") .. ', "https://ok.example" } }\n')
    local url = "http://127.0.0.1:" .. srv:port() .. "/health"
    local _, _, h = H.fetch { url = url, headers = { "Origin: https://ok.example" } }
    assert.equal("https://ok.example", h["access-control-allow-origin"])
    assert.equal("Retry-After, WWW-Authenticate, Mcp-Session-Id", h["access-control-expose-headers"])
    assert.equal("Origin", h["vary"])
    local st, _, h2 = H.fetch { url = url, headers = { "Origin: https://evil.example" } }
    assert.equal(200, st)
    assert.is_nil(h2["access-control-allow-origin"])
    assert.equal("Origin", h2["vary"])
    -- each answer is made once and kept: the allowed origin's again, then none
    local _, _, h3 = H.fetch { url = url, headers = { "Origin: https://ok.example" } }
    assert.equal("https://ok.example", h3["access-control-allow-origin"])
    local _, _, h4 = H.fetch { url = url }
    assert.is_nil(h4["access-control-allow-origin"])
    assert.equal(4, (srv.health:stats()))
    stop()
  end)

  it("hands /health on an app's origin over to the app, not answered as the API's", function()
    local srv, lines, stop = health_server('serve = { app_origin = "http://{id}.apps.localhost:{port}" }\n')
    local url = "http://127.0.0.1:" .. srv:port() .. "/health"
    local st, text = H.fetch { url = url, headers = { "Host: 7.apps.localhost:" .. srv:port() } }
    assert.is_true(st ~= 200 or text ~= '{"status":"ok"}\n', text)
    assert.is_true(cjson.decode(lines[#lines]).route ~= "/health")
    -- a Host under the apps' domain that names no app is the API's, answered the Lua way
    local st2, text2 = H.fetch { url = url, headers = { "Host: x.apps.localhost" } }
    assert.same({ 200, '{"status":"ok"}\n' }, { st2, text2 })
    assert.equal(0, (srv.health:stats()))
    stop()
  end)

  it("lets a stopped server be collected, its /health answer closed", function()
    local srv, _, stop = health_server()
    assert.equal(200, (H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/health" }))
    local health = srv.health
    local weak = setmetatable({ srv }, { __mode = "v" })
    stop()
    srv, stop = nil, nil -- luacheck: ignore
    let_go(weak)
    assert.is_nil(weak[1], "the stopped server is still reachable")
    assert.equal("health (closed)", tostring(health))
  end)

  it("lets a server dropped without stop() be collected once its listeners are closed", function()
    local srv, _, stop, db = health_server()
    stop = nil -- luacheck: ignore
    srv.srv:close()
    for _, p in pairs(srv.projects) do p.hub:close() end
    local weak = setmetatable({ srv }, { __mode = "v" })
    srv = nil -- luacheck: ignore
    let_go(weak)
    local kept = weak[1] ~= nil
    if kept then weak[1].health:close() end
    db:close()
    assert.is_false(kept, "the dropped server is still reachable")
  end)

  it("reads /health's counts in /metrics after the stop", function()
    local srv, _, stop, db = health_server()
    assert.equal(200, (H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/health" }))
    task.spawn(srv.stop, srv):join()
    local text = metrics.render(db, srv.metrics, 0)
    assert.matches('orket_http_requests_total{route="/health",status="200"} 1\n', text, 1, true)
    stop()
  end)

  it("leaves a request with two Origin lines to the Lua way, which joins them", function()
    local srv, lines, stop = health_server('serve = { cors = { "https://ok.example" } }\n')
    local url = "http://127.0.0.1:" .. srv:port() .. "/health"
    local _, _, h = H.fetch { url = url, headers = { "Origin: https://ok.example", "Origin: https://evil.example" } }
    assert.is_nil(h["access-control-allow-origin"])
    assert.equal(0, (srv.health:stats()))
    assert.equal("/health", cjson.decode(lines[#lines]).route)
    stop()
  end)

  it("answers /health once when its log function raises, and reports the error", function()
    local srv, _, stop = health_server()
    local rt = require "orket.c.runtime"
    local reported = {}
    rt.set_reporter(function(msg) reported[#reported + 1] = msg end)
    srv.log = function() error("the log went wrong") end
    local match, matched = srv.router.match, 0
    srv.router.match = function(...) matched = matched + 1 return match(...) end
    local st, text = H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/health" }
    assert.same({ 200, '{"status":"ok"}\n' }, { st, text })
    assert.equal(0, matched) -- not handed over and handled again
    assert.equal(0, srv.inflight)
    rt.set_reporter(function(msg) io.stderr:write("orket: ", tostring(msg), "\n") end)
    assert.equal(1, #reported)
    assert.matches("the log went wrong", reported[1])
    srv.log = function() end
    stop()
  end)

  it("refuses to close the server from /health's log function: libmicrohttpd is running", function()
    local srv, _, stop = health_server()
    local rt = require "orket.c.runtime"
    local reported = {}
    rt.set_reporter(function(msg) reported[#reported + 1] = msg end)
    srv.log = function() srv.srv:close() end
    local st = H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/health" }
    rt.set_reporter(function(msg) io.stderr:write("orket: ", tostring(msg), "\n") end)
    assert.equal(200, st)
    assert.equal(1, #reported)
    assert.matches("a server cannot be closed from its quick function", reported[1])
    srv.log = function() end
    assert.equal(200, (H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/health" })) -- still serving
    stop()
  end)
end)

describe("orket.serve.events", function()
  it("tells the rows about the server's people from the project's own", function()
    local events = require "orket.serve.events"
    for _, k in ipairs { "member_grant", "member_revoke", "user_add", "user_disable", "key_create", "key_revoke",
      "session_start", "project_add", "project_remove", "project_rebound" } do
      assert.is_true(events.people(k), k)
    end
    for _, k in ipairs { "comment", "transition", "import", "turn_begin", "run_start", "projects", "keys", "" } do
      assert.is_false(events.people(k), k)
    end
    assert.is_false(events.people(nil))
  end)

  it("tells a person whose role follows sign-in groups, not of a grant that would come undone", function()
    local projects, users = require "orket.serve.projects", require "orket.store.users"
    local dir = H.tmpdir()
    local db = assert(require("orket.store").open(dir .. "/orket.db"))
    users.insert(db, "erin", "viewer", "!oidc:0011")
    local who = { id = "user:erin", user = "erin", role = "viewer" }
    local msg, remedy = projects.refusal(db, who, "viewer", "operator", "default", { oidc = {} })
    assert.equal("this needs the developer role in project 'default'; you act there as viewer", msg)
    assert.matches("^erin signs in through oidc: their role in 'default' follows their groups", remedy)
    -- in a project the groups do not set, or once the provider is no longer set up, a grant does
    assert.matches("^a server admin grants it", select(2, projects.refusal(db, who, "viewer", "operator", "notes",
      { oidc = {} })))
    assert.matches("^a server admin grants it", select(2, projects.refusal(db, who, "viewer", "operator", "default", {})))
    db:close()
  end)

  it("gives which of a person's keys an API write came through to the server's admins alone", function()
    local events = require "orket.serve.events"
    local r = { id = 7, at = "t", kind = "api_write", card_id = "E-1", actor = "user:bob",
      data = '{"action":"comment","key":"64021cf2f18970cc","route":"/x"}' }
    assert.matches('"key":"64021cf2f18970cc"', events.message(r, true), 1, true)
    local plain = events.message(r, false)
    assert.is_nil(plain:find("64021cf2f18970cc", 1, true))
    assert.matches('"action":"comment"', plain, 1, true)
    assert.matches('"actor":"user:bob"', plain, 1, true)
    -- other rows go as they are stored
    r.kind, r.data = "comment", '{"key":"x"}'
    assert.matches('"key":"x"', events.message(r, false), 1, true)
  end)
end)

-- A live-only stream (no id to replay after) starts at the journal's newest id, read from the
-- store: on PostgreSQL that read waits for its answer, and the hub may hand events to its
-- subscribers meanwhile. The stream is one of them before it reads (holding what it is
-- handed till it knows its start). The seam here makes that happen on either backend: events
-- are committed and the hub passes them on after the read's snapshot and before its answer;
-- the stream must get those past the id, once each, and no other (docs/serve.md, GET /v1/events).
describe("orket.serve.events live-only streams", function()
  local B = require "tests.backends"
  after_each(H.cleanup)
  -- later(fn): fn runs at the test's end, whatever it raised (busted keeps one finally a test)
  local undo = {}
  local function later(fn) undo[#undo + 1] = fn end
  after_each(function()
    for i = #undo, 1, -1 do undo[i]() end
    undo = {}
  end)

  -- a stand-in for an SSE stream: keeps the ids of the events it is sent (the hub's shared
  -- copies, httpd blobs, read through the texts they were made of), "reset N" for a reset,
  -- the text of any other; closed once closed (sends then fail)
  local httpd = require "orket.c.httpd"
  local texts = setmetatable({}, { __mode = "k" })
  local blob = httpd.blob
  before_each(function()
    httpd.blob = function(t)
      local b = blob(t)
      texts[b] = t
      return b
    end
  end)
  after_each(function() httpd.blob = blob end)
  local function sink()
    local got, s = {}, { closed = false }
    function s.send(_, m)
      local t = texts[m] or m
      local id = t:match("^id: (%d+)\n")
      if t:find("\nevent: reset\n", 1, true) then
        got[#got + 1] = "reset " .. id
      else
        got[#got + 1] = id and math.tointeger(tonumber(id)) or t
      end
      return not s.closed
    end
    function s.queued() return 0 end
    function s.drain() return false end
    function s.close() s.closed = true end
    return got, s
  end

  -- a hub that reads the journal only when the test says (hub:poll): on PostgreSQL its
  -- listener is closed, or it would deliver as notifications come, whenever a read waits
  local function opened(db)
    local hub = events.new(db, { poll_ms = 600000, listen_poll_ms = 600000, heartbeat_ms = 600000 })
    if hub.listener then hub.listener:close() end
    return hub
  end

  -- during(): runs once, between the stream's read of the newest id and its answer. The read
  -- is put back once it ran, and at the test's end whatever it raised (later). -> ran():
  -- whether it ran
  local function while_reading(during)
    local latest, ran = events.latest, false
    events.latest = function(d)
      local id = latest(d)
      events.latest = latest
      ran = true
      during()
      return id
    end
    later(function() events.latest = latest end)
    return function() return ran end
  end

  -- a stand-in store: its journal (st.journal, rows by id: its newest is #st.journal) and
  -- id (st.sid) are the test's; st.on_latest(), when set, runs once inside the next read of
  -- the newest id, after its answer was read
  local function row(id) return { id = id, at = "t", kind = "comment", card_id = "A-1", actor = "x", data = "{}" } end
  local function standin()
    local st = { sid = "s1", journal = {} }
    for id = 1, 20 do st.journal[id] = row(id) end
    local db = { dialect = require("orket.store.dialect").sqlite, backend = "test" }
    function db.row(_, sql)
      if sql:find("store_identity", 1, true) then return { id = st.sid } end
      local id, f = #st.journal, st.on_latest
      st.on_latest = nil
      if f then f() end
      return { id = id }
    end
    function db.rows(_, _, after, _, _, limit)
      local out = {}
      for id = after + 1, math.min(#st.journal, after + limit) do out[#out + 1] = st.journal[id] end
      return out
    end
    return st, db
  end

  it("gets an event the hub hands on while the stream reads the newest id, and none older", function()
    local db = B.open_store()
    local hub = opened(db)
    local ok, e = pcall(function()
      local function event(kind) return assert(db:event { kind = kind, actor = "t" }) end
      event("before")
      hub:poll()
      event("lagging") -- committed before the stream opens; the hub has not read it yet
      local mid
      local ran = while_reading(function()
        mid = event("during")
        hub:poll()
      end)
      local got, s = sink()
      local followed = hub:follow(s, {}, nil)
      assert.same({ true, true }, { ran(), followed })
      local last = event("after")
      hub:poll()
      assert.same({ mid, last }, got)
    end)
    hub:close()
    db:close()
    assert(ok, e)
  end)

  it("gets, of the events handed on while it reads the newest id, those its filter and reader take, once each", function()
    local db = B.open_store()
    local hub = opened(db)
    local ok, e = pcall(function()
      local function event(kind) return assert(db:event { kind = kind, actor = "t" }) end
      local want = {}
      local ran = while_reading(function()
        want[#want + 1] = event("comment")
        event("user_add") -- about the server's people: not this reader's
        hub:poll()
        want[#want + 1] = event("comment")
        hub:poll()
        want[#want + 1] = event("comment") -- committed, not yet read by the hub
      end)
      local got, s = sink()
      local followed = hub:follow(s, {}, nil)
      assert.same({ true, true, 3 }, { ran(), followed, #want })
      want[#want + 1] = event("comment")
      hub:poll()
      hub:poll()
      assert.same(want, got)
    end)
    hub:close()
    db:close()
    assert(ok, e)
  end)

  it("gets, of the events handed on while it reads the newest id, those of its run and card alone", function()
    local db = B.open_store()
    local hub = opened(db)
    local ok, e = pcall(function()
      local function event(run, card) return assert(db:event { kind = "comment", actor = "t", run = run, card = card }) end
      event(7, "A-1") -- committed before the stream opens, the hub not past it: not the stream's
      local want = {}
      local ran = while_reading(function()
        want[#want + 1] = event(7, "A-1")
        event(7, "B-2")
        event(8, "A-1")
        event(nil, "A-1")
        hub:poll()
        want[#want + 1] = event(7, "A-1") -- committed, not yet read by the hub
        event(7, "B-2")
      end)
      local got, s = sink()
      local followed = hub:follow(s, { run = 7, card = "A-1" }, nil)
      assert.same({ true, true }, { ran(), followed })
      event(8, "A-1")
      want[#want + 1] = event(7, "A-1")
      hub:poll()
      assert.same(want, got)
    end)
    hub:close()
    db:close()
    assert(ok, e)
  end)

  -- the usual case costs no read of the journal's rows: nothing was handed on meanwhile
  it("reads no rows to open when the hub handed none on while it read the newest id", function()
    local db = B.open_store()
    local hub = opened(db)
    local fetch, fetched = events.fetch, 0
    local ok, e = pcall(function()
      local function event(kind) return assert(db:event { kind = kind, actor = "t" }) end
      event("before")
      hub:poll()
      event("lagging") -- the hub's to deliver, not this stream's
      events.fetch = function(...)
        fetched = fetched + 1
        return fetch(...)
      end
      local got, s = sink()
      local followed = hub:follow(s, {}, nil)
      events.fetch = fetch
      assert.same({ true, 0 }, { followed, fetched })
      local last = event("after")
      hub:poll()
      assert.same({ last }, got)
    end)
    events.fetch = fetch
    hub:close()
    db:close()
    assert(ok, e)
  end)

  -- Under load the hub hands a row on during every read the stream makes, and, with a filter
  -- nothing matches, the stream's cursor never moves: opening must still end, in a bounded
  -- number of reads (once, a loop of reads that ended only when the hub had not moved during
  -- one never did).
  it("opens while the hub hands a row on during each of its reads", function()
    local db = B.open_store()
    local hub = opened(db)
    local ok, e = pcall(function()
      local function event(card) return assert(db:event { kind = "comment", actor = "t", card = card }) end
      local latest, fetch, n = events.latest, events.fetch, 0
      later(function() events.latest, events.fetch = latest, fetch end)
      events.latest = function(d)
        local id = latest(d)
        event("B-2")
        hub:poll()
        return id
      end
      events.fetch = function(d, after, f, limit)
        if f.card then -- the stream's reads (the hub's have no filter)
          n = n + 1
          if n > 50 then error("opening did not end after 50 reads of the journal") end
          local rows = fetch(d, after, f, limit)
          event("B-2")
          hub:poll()
          return rows
        end
        return fetch(d, after, f, limit)
      end
      local got, s = sink()
      assert.is_true(hub:follow(s, { card = "A-1" }, nil))
      events.latest, events.fetch = latest, fetch
      local mine = event("A-1")
      hub:poll()
      assert.same({ mine }, got)
    end)
    hub:close()
    db:close()
    assert(ok, e)
  end)

  -- What a stream holds while it opens is capped (events.HOLD_BYTES): past the cap it holds
  -- no more, and once it has sent what it held past its start it reads the rest from the
  -- journal (as a stream given an id does), then follows live; it stays open.
  it("reads the rest from the journal once what it was handed while it read the newest id passes the cap", function()
    local db = B.open_store()
    local hub = opened(db)
    local cap = events.HOLD_BYTES
    later(function() events.HOLD_BYTES = cap end)
    local ok, e = pcall(function()
      local function event() return assert(db:event { kind = "comment", actor = "t" }) end
      local function size(id) return #events.message(events.fetch(db, id - 1, {}, 1)[1], false) end
      -- past the stream's start: the first two held (the cap holds two and a half), the third read
      local ids = {}
      local ran = while_reading(function()
        for i = 1, 3 do ids[i] = event() end
        events.HOLD_BYTES = size(ids[1]) * 5 // 2
        hub:poll()
      end)
      local got, s = sink()
      local followed = hub:follow(s, {}, nil)
      ids[4] = event()
      hub:poll()
      assert.same({ true, true, false }, { ran(), followed, s.closed })
      assert.same(ids, got)
      -- none past its start held (one at its start, then the cap passed): what came past it
      -- is read, and nothing from before it
      local lagging = event() -- committed before the stream opens; the hub not past it
      local past = {}
      ran = while_reading(function()
        events.HOLD_BYTES = size(lagging) // 2
        past[1] = event()
        hub:poll()
      end)
      got, s = sink()
      followed = hub:follow(s, {}, nil)
      past[2] = event()
      hub:poll()
      assert.same({ true, true, false }, { ran(), followed, s.closed })
      assert.same(past, got)
    end)
    hub:close()
    db:close()
    assert(ok, e)
  end)

  -- That read, after the client saw the stream open, may fail: the stream ends, and its client
  -- reconnects from the last id it got; one that got none is sent a reset to its start first
  -- (reconnected live only, it would miss what came since).
  it("ends when the journal's read past the cap fails, its client given an id to reconnect from", function()
    local db = B.open_store()
    local hub = opened(db)
    local cap, fetch = events.HOLD_BYTES, events.fetch
    later(function() events.HOLD_BYTES, events.fetch = cap, fetch end)
    local ok, e = pcall(function()
      local function event() return assert(db:event { kind = "comment", actor = "t" }) end
      local function size(id) return #events.message(fetch(db, id - 1, {}, 1)[1], false) end
      local function failing() events.fetch = function() events.fetch = fetch error("the store went away", 0) end end
      for _, people in ipairs { false, true } do
        local lagging = event()
        local ran = while_reading(function()
          events.HOLD_BYTES = size(lagging) // 2
          event()
          hub:poll()
          failing()
        end)
        local got, s = sink()
        local fok, ferr = pcall(hub.follow, hub, s, { people = people }, nil)
        assert.same({ true, false, "the store went away", true, 0 }, { ran(), fok, ferr, s.closed, hub:count() })
        assert.same({ "reset " .. lagging }, got)
        hub:poll() -- (the hub past what it held)
      end
      -- the reset's read failing too: the stream ends all the same
      local readable_latest = events.readable_latest
      later(function() events.readable_latest = readable_latest end)
      event()
      local ran = while_reading(function()
        event()
        hub:poll()
        failing()
        events.readable_latest = function() error("nor this", 0) end
      end)
      local got, s = sink()
      local fok, ferr = pcall(hub.follow, hub, s, {}, nil)
      events.readable_latest = readable_latest
      assert.same({ true, false, "the store went away", true, {} }, { ran(), fok, ferr, s.closed, got })
      hub:poll()
      -- a row past its start sent: that id is the client's, no reset
      local ids = {}
      ran = while_reading(function()
        for i = 1, 2 do ids[i] = event() end
        events.HOLD_BYTES = size(ids[1]) * 3 // 2
        hub:poll()
        failing()
      end)
      got, s = sink()
      fok = pcall(hub.follow, hub, s, {}, nil)
      assert.same({ true, false, true, { ids[1] } }, { ran(), fok, s.closed, got })
      hub:poll()
      -- a row past its start read, and sent, before a later read failed: no reset either
      local lag = event()
      ran = while_reading(function()
        events.HOLD_BYTES = size(lag) // 2
        ids[2] = event()
        hub:poll()
        local n, polling = 0, false
        events.fetch = function(...)
          if polling then return fetch(...) end -- (the hub's own read)
          n = n + 1
          if n == 2 then failing() return events.fetch(...) end
          local rows = fetch(...)
          -- handed on during the read, past what it may hold: it reads again
          event()
          polling = true
          hub:poll()
          polling = false
          return rows
        end
      end)
      got, s = sink()
      fok = pcall(hub.follow, hub, s, {}, nil)
      assert.same({ true, false, true, { ids[2] } }, { ran(), fok, s.closed, got })
    end)
    hub:close()
    db:close()
    assert(ok, e)
  end)

  -- An opening stream is a subscriber already: heartbeats reach it, and a hub closed
  -- meanwhile ends it.
  it("gets heartbeats while it reads the newest id, and ends with a hub closed meanwhile", function()
    local db = B.open_store()
    local hub = opened(db)
    local ok, e = pcall(function()
      local ran = while_reading(function() hub:broadcast(": heartbeat\n\n") end)
      local got, s = sink()
      assert.same({ true, true, { ": heartbeat\n\n" } }, { hub:follow(s, {}, nil), ran(), got })
      ran = while_reading(function() hub:close() end)
      got, s = sink()
      assert.same({ false, true, true, 0 }, { hub:follow(s, {}, nil), ran(), s.closed, hub:count() })
    end)
    hub:close()
    db:close()
    assert(ok, e)
  end)

  -- A restore the hub sees while the stream reads the newest id resets the stream with the
  -- others: its start, read meanwhile, may be of the old journal. Its reset comes first, then
  -- the new journal's events past the reset's id. The store is a stand-in.
  it("is reset with the others by a restore the hub sees while it reads the newest id", function()
    local st, db = standin()
    local hub = events.new(db, { poll_ms = 600000, heartbeat_ms = 600000 })
    local got, s = sink()
    st.on_latest = function()
      st.sid, st.journal = "s1-a", { row(1), row(2), row(3) }
      hub:poll()
      st.journal[4] = row(4)
      hub:poll()
    end
    assert.is_true(hub:follow(s, { people = true }, nil))
    st.journal[5] = row(5)
    hub:poll()
    assert.same({ "reset 3", 4, 5 }, got)
    hub:close()
  end)

  -- A stream whose route read the restored store's id before the hub saw the restore
  -- registers with the new id and the old journal's cursor; the hub's reset while it reads
  -- its start must still reset it, not catch it up: the rows past its start it would be
  -- sent then, before it has a stream, would be lost. The store is a stand-in.
  it("is reset by a restore the hub sees while it opens, though its route read the new store's id", function()
    local st, db = standin()
    local hub = events.new(db, { poll_ms = 600000, heartbeat_ms = 600000 })
    later(function() hub:close() end)
    st.sid = "s1-a" -- restored (the hub has not looked): a longer journal
    for id = 21, 25 do st.journal[id] = row(id) end
    st.on_latest = function() -- its start is 25
      for id = 26, 30 do st.journal[id] = row(id) end
      hub:poll()
    end
    local got, s = sink()
    assert.is_true(hub:follow(s, { people = true }, nil, nil, hub:epoch(), "s1-a"))
    st.journal[31] = row(31)
    hub:poll()
    assert.same({ "reset 30", 31 }, got)
  end)

  -- The stream is among the subscribers while it reads its start: a task closed while the
  -- read waits (task:cancel) takes it out, as a read that raises does.
  it("leaves the subscribers when the task reading its start is cancelled", function()
    local st, db = standin()
    local hub = events.new(db, { poll_ms = 600000, heartbeat_ms = 600000 })
    later(function() hub:close() end)
    st.on_latest = function() orket.sleep(600000) end
    local t = require("orket.task").spawn(function() hub:open({ people = true }, "s1") end)
    assert.equal(1, hub:count())
    t:cancel()
    assert.equal(0, hub:count())
  end)

  -- A restore the hub saw after the stream's route read the store's id (and before the
  -- stream opened): the stream is reset first, as every open stream was, then follows the
  -- new journal. The store is a stand-in.
  it("is reset when the hub saw a restore after its route read the store's id", function()
    local st, db = standin()
    local hub = events.new(db, { poll_ms = 600000, heartbeat_ms = 600000 })
    local _, other = sink()
    hub.subs[other] = { cursor = 20, people = true, sid = "s1" } -- a stream open: the hub reads the id
    local epoch = hub:epoch() -- the route's reads
    st.sid, st.journal = "s1-a", { row(1), row(2), row(3) } -- restored, and seen
    hub:poll()
    local got, s = sink()
    assert.is_true(hub:follow(s, { people = true }, nil, nil, epoch, "s1"))
    st.journal[4] = row(4)
    hub:poll()
    assert.same({ "reset 3", 4 }, got)
    hub:close()
  end)

  -- The hub takes the store's new id before it reads the new journal's end (a read that may
  -- wait): a stream opening meanwhile, its route's read of the store's id the old one, is
  -- reset (the store changed since its caller looked), and follows the new journal from its
  -- end, not from the hub's cursor, which is the old journal's still. Live only, then with an
  -- id to replay after. The store is a stand-in.
  it("follows the new journal from its end when it opens while the hub reads that end after a restore", function()
    for _, after in ipairs { false, 10 } do
      local st, db = standin()
      local hub = events.new(db, { poll_ms = 600000, heartbeat_ms = 600000 })
      local _, other = sink()
      hub.subs[other] = { cursor = 20, people = true, sid = "s1" } -- a stream open: the hub reads the id
      local epoch = hub:epoch()
      st.sid, st.journal = "s1-a", { row(1), row(2), row(3) } -- restored
      local got, s = sink()
      local followed
      st.on_latest = function()
        followed = hub:follow(s, { people = true }, after or nil, nil, epoch, "s1")
      end
      hub:poll()
      st.journal[4] = row(4)
      hub:poll()
      assert.same({ true, { "reset 3", 4 } }, { followed, got })
      hub:close()
    end
  end)

  -- A stream given an id replays the journal after it before it follows live; it is a
  -- subscriber meanwhile, as a live one: counted, given heartbeats, checked for permission
  -- and ended by the hub's end (docs/serve.md, GET /v1/events). during() runs once, inside
  -- the replay's first read of the journal, after its rows were read; the read is put back
  -- then, and at the test's end whatever it raised. -> ran(): whether it ran
  local function while_fetching(during)
    local fetch, ran = events.fetch, false
    events.fetch = function(...)
      local rows = fetch(...)
      events.fetch = fetch
      ran = true
      during()
      return rows
    end
    later(function() events.fetch = fetch end)
    return function() return ran end
  end

  it("counts while it replays after an id, gets heartbeats then, and misses no event handed on meanwhile", function()
    local db = B.open_store()
    local hub = opened(db)
    local ok, e = pcall(function()
      local function event() return assert(db:event { kind = "comment", actor = "t" }) end
      local from = event()
      local ids = { event(), event() }
      hub:poll()
      local n
      local ran = while_fetching(function()
        n = hub:count()
        hub:broadcast(": heartbeat\n\n")
        ids[3] = event()
        hub:poll()
      end)
      local got, s = sink()
      assert.same({ true, true, 1, 1 }, { hub:follow(s, {}, from), ran(), n, hub:count() })
      ids[4] = event()
      hub:poll()
      assert.same({ ": heartbeat\n\n", ids[1], ids[2], ids[3], ids[4] }, got)
    end)
    hub:close()
    db:close()
    assert(ok, e)
  end)

  it("is ended by a permission check that fails while it replays after an id", function()
    local db = B.open_store()
    local hub = opened(db)
    local ok, e = pcall(function()
      local function event() return assert(db:event { kind = "comment", actor = "t" }) end
      local from = event()
      event()
      event()
      hub:poll()
      -- still allowed: the check keeps it
      local allowed = true
      local function still() return allowed end
      local ran = while_fetching(function() hub:recheck() end)
      local got, s = sink()
      assert.same({ true, true, false, 2, 1 }, { hub:follow(s, {}, from, still), ran(), s.closed, #got, hub:count() })
      hub:forget(s)
      -- no longer: it ends, sent nothing more, and leaves the hub
      ran = while_fetching(function()
        allowed = false
        hub:recheck()
      end)
      got, s = sink()
      assert.same({ false, true, true, {}, 0 }, { hub:follow(s, {}, from, still), ran(), s.closed, got, hub:count() })
    end)
    hub:close()
    db:close()
    assert(ok, e)
  end)

  -- Under sustained load every read of the journal finds a new event: a replay that waited
  -- for a read to find none would chase them for as long as the load lasts. One read that
  -- is not a full batch, the hub not moving till its rows are sent, has all the stream is
  -- owed up to where the hub is: it follows live from there.
  it("follows live after a replay's read that is not a full batch, though events keep coming", function()
    local db = B.open_store()
    local hub = opened(db)
    local fetch = events.fetch
    later(function() events.fetch = fetch end)
    local ok, e = pcall(function()
      local function event() return assert(db:event { kind = "comment", actor = "t" }) end
      local from = event()
      local ids = { event(), event() }
      hub:poll()
      -- an event committed and handed on during each read of the journal, and each wait for
      -- the client, 30 in all
      local loading = false
      local function load()
        if #ids < 32 and not loading then
          loading = true -- (the hub's read is not counted, nor adds load)
          ids[#ids + 1] = event()
          hub:poll()
          loading = false
        end
      end
      local reads = 0
      events.fetch = function(...)
        if loading then return fetch(...) end
        reads = reads + 1
        local rows = fetch(...)
        load()
        return rows
      end
      local got, s = sink()
      s.drain = function()
        load()
        return false
      end
      assert.is_true(hub:follow(s, {}, from))
      events.fetch = fetch
      assert.is_true(reads <= 3, reads .. " reads")
      ids[#ids + 1] = event()
      hub:poll()
      assert.same(ids, got)
    end)
    hub:close()
    db:close()
    assert(ok, e)
  end)

  -- A replay's read that begins while the hub takes in a restore cannot trust the hub's
  -- cursor (the old journal's still): it catches up only at a read the hub did not move
  -- during. Here the read waits (a coroutine stands for the store's wait) while the hub ends
  -- its reset and hands on the new journal's next event, which the read did not see. The
  -- store is a stand-in.
  it("misses no event the hub hands on while a read it began during a restore waits", function()
    local st, db = standin()
    local hub = events.new(db, { poll_ms = 600000, heartbeat_ms = 600000 })
    local _, other = sink()
    hub.subs[other] = { cursor = 20, people = true, sid = "s1" } -- a stream open: the hub reads the id
    local epoch = hub:epoch()
    st.sid, st.journal = "s1-a", { row(1), row(2), row(3) } -- restored
    local fetch = events.fetch
    later(function() events.fetch = fetch end)
    local reads = 0
    events.fetch = function(d, after, f, limit)
      local rows = fetch(d, after, f, limit)
      if next(f) ~= nil then -- the stream's reads (the hub's take no filter)
        reads = reads + 1
        if reads == 2 then coroutine.yield() end -- the read after its reset waits
      end
      return rows
    end
    local got, s = sink()
    local co, followed
    st.on_latest = function()
      co = coroutine.create(function() followed = hub:follow(s, { people = true }, 10, nil, epoch, "s1") end)
      assert(coroutine.resume(co))
    end
    hub:poll() -- the restore seen; the stream opens while the hub reads the new journal's end
    st.journal[4] = row(4)
    hub:poll() -- handed on while the stream's read waits
    assert(coroutine.resume(co))
    st.journal[5] = row(5)
    hub:poll()
    assert.same({ true, { "reset 3", 4, 5 } }, { followed, got })
    hub:close()
  end)

  it("ends with a hub closed while it replays after an id, reading or waiting for its client", function()
    local db = B.open_store()
    local ok, e = pcall(function()
      local function event() return assert(db:event { kind = "comment", actor = "t" }) end
      local from = event()
      event()
      event()
      -- while it reads the journal
      local hub = opened(db)
      hub:poll()
      local ran = while_fetching(function() hub:close() end)
      local got, s = sink()
      assert.same({ false, true, true, {}, 0 }, { hub:follow(s, {}, from), ran(), s.closed, got, hub:count() })
      -- while it waits for its client to take what it sent (a wait the stream's close ends,
      -- with nothing said)
      hub = opened(db)
      hub:poll()
      got, s = sink()
      function s.queued() return events.REPLAY_HIGH end
      function s.drain()
        hub:close()
        return nil
      end
      assert.same({ false, true, {}, 0 }, { hub:follow(s, {}, from), s.closed, got, hub:count() })
      -- one given a closed hub ends at once
      got, s = sink()
      assert.same({ false, true, {} }, { hub:follow(s, {}, from), s.closed, got })
    end)
    db:close()
    assert(ok, e)
  end)

  -- The hub may hand on a row the replay's read then returns too (on PostgreSQL, committed
  -- before the read and notified during it): the stream keeps it, and the read sends it;
  -- once caught up the stream sends only what it kept past the read's last row.
  it("sends once an event the hub hands on that the replay's read returns too", function()
    local db = B.open_store()
    local hub = opened(db)
    local fetch = events.fetch
    later(function() events.fetch = fetch end)
    local ok, e = pcall(function()
      local function event() return assert(db:event { kind = "comment", actor = "t" }) end
      local from = event()
      local ids = { event(), event() }
      hub:poll()
      local reads = 0
      events.fetch = function(d, after, f, limit)
        if next(f) ~= nil then -- the stream's reads (the hub's take no filter)
          reads = reads + 1
          if reads == 1 then
            ids[3] = event() -- committed and handed on before the read
            hub:poll()
          end
        end
        return fetch(d, after, f, limit)
      end
      local got, s = sink()
      assert.is_true(hub:follow(s, {}, from))
      events.fetch = fetch
      ids[4] = event()
      hub:poll()
      assert.same({ 1, ids }, { reads, got })
    end)
    hub:close()
    db:close()
    assert(ok, e)
  end)

  -- Past events.HOLD_BYTES kept during a read, the stream keeps no more: the read does not
  -- say it caught up, and it reads again from the last row it sent.
  it("misses no event when what it keeps while it replays after an id passes the cap", function()
    local db = B.open_store()
    local hub = opened(db)
    local cap = events.HOLD_BYTES
    later(function() events.HOLD_BYTES = cap end)
    local ok, e = pcall(function()
      local function event() return assert(db:event { kind = "comment", actor = "t" }) end
      local function size(id) return #events.message(events.fetch(db, id - 1, {}, 1)[1], false) end
      local from = event()
      local ids = { event(), event() }
      hub:poll()
      events.HOLD_BYTES = size(ids[1]) * 5 // 2 -- two kept, of the five handed on
      local ran = while_fetching(function()
        for _ = 1, 5 do ids[#ids + 1] = event() end
        hub:poll()
      end)
      local got, s = sink()
      assert.same({ true, true }, { hub:follow(s, {}, from), ran() })
      ids[#ids + 1] = event()
      hub:poll()
      assert.same(ids, got)
    end)
    hub:close()
    db:close()
    assert(ok, e)
  end)

  -- A restore the hub sees while a replay reads is the replay's to tell its client (a
  -- reset), not the hub's: the hub moving the stream onto the new journal as an opening
  -- one would leave its client with the old journal's ids, and no reset. The store is a
  -- stand-in.
  it("is sent one reset, then the new journal's events, for a restore the hub sees while it replays", function()
    local st, db = standin()
    local hub = events.new(db, { poll_ms = 600000, heartbeat_ms = 600000 })
    local epoch = hub:epoch()
    local fetch = events.fetch
    later(function() events.fetch = fetch end)
    local reads = 0
    events.fetch = function(d, after, f, limit)
      local rows = fetch(d, after, f, limit)
      if next(f) ~= nil then -- the stream's reads (the hub's take no filter)
        reads = reads + 1
        if reads == 1 then -- restored while it waits, and the hub sees it
          st.sid, st.journal = "s1-a", { row(1), row(2), row(3) }
          hub:poll()
        end
      end
      return rows
    end
    local got, s = sink()
    local followed = hub:follow(s, { people = true }, 10, nil, epoch, "s1")
    st.journal[4] = row(4)
    hub:poll()
    assert.same({ true, { "reset 3", 4 } }, { followed, got })
    hub:close()
  end)

  -- A stream whose caller read the restored store's id (so it needs no reset) begins its
  -- replay with the hub's cursor still the old journal's: the hub then takes in the restore
  -- and hands on a new event, at or below that old cursor, while the replay's read waits.
  -- The stream keeps nothing (it keeps only rows past its cursor): it must read again, not
  -- take that read for caught up. The store is a stand-in.
  it("misses no event the hub hands on when it takes in a restore while a replay on the new journal reads", function()
    local st, db = standin()
    local hub = events.new(db, { poll_ms = 600000, heartbeat_ms = 600000 })
    local epoch = hub:epoch()
    st.sid, st.journal = "s1-a", { row(1), row(2), row(3) } -- restored; the hub has not looked
    local fetch = events.fetch
    later(function() events.fetch = fetch end)
    local reads = 0
    events.fetch = function(d, after, f, limit)
      local rows = fetch(d, after, f, limit)
      if next(f) ~= nil then -- the stream's reads (the hub's take no filter)
        reads = reads + 1
        if reads == 1 then
          hub:poll() -- the restore seen, its reset done
          st.journal[4] = row(4)
          hub:poll() -- handed on (4: below the old journal's 20)
        end
      end
      return rows
    end
    local got, s = sink()
    local followed = hub:follow(s, { people = true }, 1, nil, epoch, "s1-a")
    st.journal[5] = row(5)
    hub:poll()
    assert.same({ true, { 2, 3, 4, 5 } }, { followed, got })
    hub:close()
  end)
end)

-- A stream holds its connection for as long as its client likes: one key may not hold them
-- all (docs/serve.md, "Limits": max_streams_per_key, max_streams).
describe("orket.serve streams", function()
  after_each(H.cleanup)

  local function wait_for(pred, what)
    for _ = 1, 1000 do
      if pred() then return end
      orket.sleep(5)
    end
    error("timed out waiting for " .. what)
  end

  it("caps the streams open per key and in all, and gives a slot back as a stream ends", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local a = keys.create(db, dir, "a", "viewer")
    local b = keys.create(db, dir, "b", "viewer")
    local srv, stop = require("tests.fixtures").served { dir = dir, db = db, host = "127.0.0.1", port = 0,
      limits = assert(serve.limits("max_streams_per_key=2,max_streams=3,heartbeat_ms=60000")), log = function() end }
    local url = "http://127.0.0.1:" .. srv:port() .. "/v1/events"
    local open = {}
    local function stream(key)
      local s = H.stream { url = url, headers = { "Authorization: Bearer " .. key }, total_timeout_ms = 30000 }
      open[#open + 1] = s
      return s
    end
    local a1, a2, a3 = stream(a), stream(a), stream(a)
    assert.same({ 200, 200, 429 }, { a1.status, a2.status, a3.status })
    assert.equal("5", a3.headers["retry-after"])
    wait_for(a3.done, "the refusal's body")
    assert.matches('"code":"rate_limited"', a3.text(), 1, true)
    assert.matches("streams open with this key (2)", a3.text(), 1, true)
    -- another key has streams of its own, up to the server's cap
    local b1, b2 = stream(b), stream(b)
    assert.same({ 200, 429 }, { b1.status, b2.status })
    wait_for(b2.done, "the refusal's body")
    assert.matches("streams open on this server (3)", b2.text(), 1, true)
    -- a stream closed by its client gives its slot back at once
    a1.close()
    wait_for(function() return srv.nstreams == 2 end, "the slot given back")
    local a4 = stream(a)
    assert.equal(200, a4.status)
    assert.equal(3, srv.nstreams)
    assert.equal(2, srv.streams_of[(keys.parse(a))])
    for _, s in ipairs(open) do s.close() end
    wait_for(function() return srv.nstreams == 0 and next(srv.streams_of) == nil end, "every slot given back")
    stop()
  end)

  -- A live-only stream starts at the journal's newest id, read by its route before it answers:
  -- an event committed once the client sees the stream open is past the start, and comes.
  -- The seam holds that read till the client has seen the stream open and committed an event,
  -- or 300 ms (the client never sees it open before the read is done, as it must not).
  it("reads a live-only stream's start before its client sees the stream open", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local a = keys.create(db, dir, "a", "admin")
    local srv, stop = require("tests.fixtures").served { dir = dir, db = db, host = "127.0.0.1", port = 0,
      limits = assert(serve.limits("heartbeat_ms=60000")), log = function() end }
    local latest, committed, ran = events.latest, nil, false
    finally(function() events.latest = latest end)
    events.latest = function(d)
      events.latest = latest
      ran = true
      for _ = 1, 60 do
        if committed then break end
        orket.sleep(5)
      end
      return latest(d)
    end
    local ev = H.stream { url = "http://127.0.0.1:" .. srv:port() .. "/v1/events",
      headers = { "Authorization: Bearer " .. a }, total_timeout_ms = 30000 }
    assert.equal(200, ev.status)
    committed = assert(db:event { kind = "comment", actor = "t" })
    local last = assert(db:event { kind = "comment", actor = "t" })
    local function has(id) return ev.text():find("\nid: " .. id .. "\n", 1, true) ~= nil end
    wait_for(function() return has(last) end, "the events")
    assert.same({ true, true }, { ran, has(committed) })
    ev.close()
    wait_for(function() return srv.nstreams == 0 end, "every stream ended")
    stop()
  end)

  -- A stream opened live only is among the hub's subscribers from its route's read of the
  -- start: a raise after it (here hub:follow's) must not leave it there (counted, sent
  -- heartbeats, never freed).
  it("takes a live-only stream out of the hub's subscribers when its route raises after opening it", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local a = keys.create(db, dir, "a", "admin")
    local srv, stop = require("tests.fixtures").served { dir = dir, db = db, host = "127.0.0.1", port = 0,
      limits = assert(serve.limits("heartbeat_ms=60000")), log = function() end }
    local raised = false
    srv.hub.follow = function()
      srv.hub.follow = nil -- the class's again
      raised = true
      error("follow failed", 0)
    end
    local ev = H.stream { url = "http://127.0.0.1:" .. srv:port() .. "/v1/events",
      headers = { "Authorization: Bearer " .. a }, total_timeout_ms = 30000 }
    wait_for(function() return raised and srv.nstreams == 0 end, "the stream ended")
    ev.close()
    assert.equal(0, srv.hub:count())
    stop()
  end)

  -- Journal ids are of one store's journal: a project added again from another folder (another
  -- store) with a longer journal would replay it from an id that means nothing there. The
  -- board names its store; a stream asked with ?store= another is answered with a reset.
  it("answers a stream asked for another store's journal with a reset, its own with the replay", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local a = keys.create(db, dir, "a", "admin")
    keys.create(db, dir, "b", "viewer") -- (rows in the journal: the keys made)
    local run = assert(db:record_run { target = "E", kind = "epic" })
    local srv, stop = require("tests.fixtures").served { dir = dir, db = db, host = "127.0.0.1", port = 0,
      limits = assert(serve.limits("heartbeat_ms=60000")), log = function() end }
    local s = { url = "http://127.0.0.1:" .. srv:port() }
    local st, board = H.api(s, "GET", "/v1/board", a)
    assert.equal(200, st)
    local own = require("orket.store.projects").store_id(db)
    assert.is_string(own)
    assert.equal(own, board.store)
    local at = math.tointeger(board.journal_id)
    assert.is_true(at >= 2)
    local RESET = 'id: (%d+)\nevent: reset\ndata: {"id":(%d+)}\n\n'
    local function open(query, header, path)
      local hs = { "Authorization: Bearer " .. a }
      if header then hs[#hs + 1] = header end
      local ev = H.stream { url = s.url .. (path or "/v1/events") .. query, headers = hs, total_timeout_ms = 30000 }
      assert.equal(200, ev.status)
      return ev
    end
    -- its own store, the id by ?after= or Last-Event-ID: the rows after the id, no reset
    local ev
    for _, q in ipairs { { "?after=0&store=" .. own }, { "?store=" .. own, "Last-Event-ID: 1" } } do
      ev = open(q[1], q[2])
      wait_for(function() return ev.text():find("\nid: " .. at .. "\n", 1, true) end, "the replay")
      assert.is_nil(ev.text():find("event: reset", 1, true))
      ev.close()
    end
    -- another store's, the id within this journal (by ?after= or Last-Event-ID, on the whole
    -- journal's stream or one run's, an id as long as taken): a reset carrying this journal's
    -- newest (the caller, an admin, reads every row), nothing replayed
    local runs = "/v1/runs/" .. run .. "/events"
    for _, q in ipairs { { "?after=1&store=0123abcd" }, { "?store=0123abcd", "Last-Event-ID: 1" },
      { "?after=1&store=" .. string.rep("a", 128), nil, runs } } do
      ev = open(q[1], q[2], q[3])
      wait_for(function() return ev.text():match(RESET) end, "the reset")
      local id, data = ev.text():match(RESET)
      assert.same({ at, at }, { tonumber(id), tonumber(data) })
      orket.sleep(100)
      assert.equal(1, select(2, ev.text():gsub("\nid: ", ""))) -- the reset alone
      ev.close()
    end
    -- another store's with no id: nothing to replay, so no reset either; followed from the end
    ev = open("?store=0123abcd")
    orket.sleep(200)
    assert.is_nil(ev.text():find("\nid: ", 1, true))
    ev.close()
    for _, bad in ipairs { "/v1/events?store=no%20such", runs .. "?store=" .. string.rep("a", 129) } do
      local st2, doc = H.api(s, "GET", bad, a)
      assert.same({ 400, "?store= takes a store's id (the board's store: letters, digits and -)" },
        { st2, doc and doc.error.message })
    end
    wait_for(function() return srv.nstreams == 0 end, "every stream ended")
    stop()
  end)

  -- A restore replaces the journal whole: its ids mean other events than before (it may be
  -- longer or shorter). The store gets a new id with it, on both backends, its lasting part
  -- kept, so it is the same store to its members (a project's binding) and to old traces.
  it("gives a store restored from a backup a new id, its lasting part kept", function()
    local dir = H.tmpdir()
    local backup = require "orket.store.backup"
    local sp = require "orket.store.projects"
    local db = require("tests.backends").open_store()
    local before = assert(sp.journal_store_id(db))
    assert.equal(before, sp.store_id(db)) -- never restored: the id made with the store alone
    assert.truthy(assert(backup.backup(db, dir .. "/b")))
    assert.equal(before, sp.journal_store_id(db)) -- a backup changes nothing
    assert.truthy(assert(backup.restore(db, dir .. "/b")))
    local after = assert(sp.journal_store_id(db))
    assert.are_not.equal(before, after)
    assert.matches("^[%w-]+$", after) -- what ?store= takes
    assert.equal(before, sp.lasting(after))
    assert.equal(before, sp.store_id(db)) -- its identity: what members and traces key off
    assert.is_true(sp.same_store(before, after)) -- a binding made before names it still
    assert.is_true(sp.same_store(after, before))
    -- each restore another id, however many times the same backup is restored
    assert.truthy(assert(backup.restore(db, dir .. "/b")))
    local again = sp.journal_store_id(db)
    assert.are_not.equal(after, again)
    assert.are_not.equal(before, again)
    assert.equal(before, sp.store_id(db))
    assert.is_false(sp.same_store("77aa-0123", again))
    db:close()
  end)

  -- Only the word a restore writes after the 32 hex digits made with the store is cut: an id
  -- of another shape, dashes in it, is taken whole, never shortened to its first part.
  it("cuts only a restore's word from a store's id", function()
    local sp = require "orket.store.projects"
    local id = string.rep("5e1f", 8)
    assert.equal(id, sp.lasting(id))
    assert.equal(id, sp.lasting(id .. "-0123456789abcdef"))
    for _, whole in ipairs { "5e1f-0123", "0ther5t0re", id .. "-", id .. "-xyz", "a-" .. id .. "-0123",
      "5e1f0000-1111-2222-3333-444444444444" } do
      assert.equal(whole, sp.lasting(whole))
    end
    assert.is_false(sp.same_store("5e1f0000-1111", "5e1f0000-2222"))
    assert.is_true(sp.same_store(id .. ":16384", id .. "-0123456789abcdef")) -- an old PostgreSQL binding
  end)

  -- A restore whose new id was not written must say so (orket restore exits 1), never pass
  -- for renewed: a failed read of the id raises, as a failed write does.
  it("raises when a restore cannot read the store's id it makes anew", function()
    local sp = require "orket.store.projects"
    local failing = { row = function() return nil, "disk I/O error" end }
    assert.has_error(function() sp.renew(failing, true) end, "reading the store's id: disk I/O error")
    assert.has_error(function() sp.renew({ row = function() return nil end }, true) end,
      "the store has no id (store_identity is empty)")
    sp.renew(failing, false) -- a backup older than the table: its migration draws the id
  end)

  -- The board reads the store's id before the journal's: a restore between the two reads
  -- then leaves the page the old store's id, whose stream is reset. Read the other way, the
  -- page held the new store's id with an event id of the old journal, and its stream replayed
  -- the restored journal from that id. The restore runs where the board reads the store's id.
  it("never pairs the old journal's id with a restored store's id on the board", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local backup = require "orket.store.backup"
    local sp = require "orket.store.projects"
    local db = require("tests.backends").open_store()
    local a = keys.create(db, dir, "a", "admin")
    local srv, stop = require("tests.fixtures").served { dir = dir, db = db, host = "127.0.0.1", port = 0,
      limits = assert(serve.limits("heartbeat_ms=60000")), log = function() end }
    local s = { url = "http://127.0.0.1:" .. srv:port() }
    assert.truthy(assert(backup.backup(db, dir .. "/b")))
    keys.create(db, dir, "b", "viewer")
    keys.create(db, dir, "c", "viewer")
    local read = sp.journal_store_id
    finally(function() sp.journal_store_id = read end)
    sp.journal_store_id = function(d)
      sp.journal_store_id = read
      assert.truthy(assert(backup.restore(db, dir .. "/b")))
      return read(d)
    end
    local st, board = H.api(s, "GET", "/v1/board", a)
    assert.equal(200, st)
    assert.equal(read, sp.journal_store_id) -- the restore ran in the board's read
    local first = events.latest(db) + 1 -- the first event written after the board was read
    for i = 1, 4 do keys.create(db, dir, "k" .. i, "viewer") end
    local newest = events.latest(db)
    local ev = H.stream { url = s.url .. "/v1/events?after=" .. math.tointeger(board.journal_id) .. "&store="
      .. board.store, headers = { "Authorization: Bearer " .. a }, total_timeout_ms = 30000 }
    assert.equal(200, ev.status)
    -- a reset, or every event written since the board was read: none missed
    wait_for(function()
      local t = ev.text()
      return t:find("event: reset", 1, true) or t:find("\nid: " .. newest .. "\n", 1, true)
    end, "the stream")
    local t = ev.text()
    if not t:find("event: reset", 1, true) then
      assert.truthy(t:find("\nid: " .. first .. "\n", 1, true), t)
    end
    ev.close()
    wait_for(function() return srv.nstreams == 0 end, "every stream ended")
    stop()
  end)

  -- A page that read the board before a restore holds an event id of the old journal; the
  -- restored one, grown past that id since, would be replayed from it as if nothing changed.
  it("answers a stream asked with the store's id from before a restore with a reset", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local backup = require "orket.store.backup"
    local db = require("tests.backends").open_store()
    local a = keys.create(db, dir, "a", "admin")
    local srv, stop = require("tests.fixtures").served { dir = dir, db = db, host = "127.0.0.1", port = 0,
      limits = assert(serve.limits("heartbeat_ms=60000")), log = function() end }
    local s = { url = "http://127.0.0.1:" .. srv:port() }
    assert.truthy(assert(backup.backup(db, dir .. "/b")))
    keys.create(db, dir, "b", "viewer")
    keys.create(db, dir, "c", "viewer")
    -- the page's board: after the backup
    local st, board = H.api(s, "GET", "/v1/board", a)
    assert.equal(200, st)
    local old, held = board.store, math.tointeger(board.journal_id)
    assert.truthy(assert(backup.restore(db, dir .. "/b")))
    -- the restored journal grows past the page's id: no id past the end tells it
    for i = 1, 4 do keys.create(db, dir, "k" .. i, "viewer") end
    st, board = H.api(s, "GET", "/v1/board", a)
    assert.equal(200, st)
    local newest = math.tointeger(board.journal_id)
    assert.is_true(newest > held)
    local RESET = 'id: (%d+)\nevent: reset\ndata: {"id":(%d+)}\n\n'
    local function open(query)
      local ev = H.stream { url = s.url .. "/v1/events" .. query, headers = { "Authorization: Bearer " .. a },
        total_timeout_ms = 30000 }
      assert.equal(200, ev.status)
      return ev
    end
    -- the id from before the restore: a reset to the restored journal's newest, nothing replayed
    local ev = open("?after=" .. held .. "&store=" .. old)
    wait_for(function() return ev.text():match(RESET) end, "the reset")
    local id, data = ev.text():match(RESET)
    assert.same({ newest, newest }, { tonumber(id), tonumber(data) })
    orket.sleep(100)
    assert.equal(1, select(2, ev.text():gsub("\nid: ", ""))) -- the reset alone
    ev.close()
    assert.are_not.equal(old, board.store)
    -- the restored store's id: the replay, no reset
    ev = open("?after=" .. held .. "&store=" .. board.store)
    wait_for(function() return ev.text():find("\nid: " .. newest .. "\n", 1, true) end, "the replay")
    assert.is_nil(ev.text():find("event: reset", 1, true))
    ev.close()
    wait_for(function() return srv.nstreams == 0 end, "every stream ended")
    stop()
  end)

  it("leaves a quarter of the connections to other requests by default", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local a = keys.create(db, dir, "a", "viewer")
    assert.equal(0, serve.DEFAULTS.max_streams)
    assert.equal(16, serve.DEFAULTS.max_streams_per_key)
    local srv, stop = require("tests.fixtures").served { dir = dir, db = db, host = "127.0.0.1", port = 0,
      limits = assert(serve.limits("max_connections=8,heartbeat_ms=60000")), log = function() end }
    local url = "http://127.0.0.1:" .. srv:port()
    local open, got = {}, {}
    for i = 1, 7 do
      open[i] = H.stream { url = url .. "/v1/events", headers = { "Authorization: Bearer " .. a }, total_timeout_ms = 30000 }
      got[i] = open[i].status
    end
    assert.same({ 200, 200, 200, 200, 200, 200, 429 }, got) -- 6 of 8
    assert.equal(200, (H.fetch { url = url .. "/health" }))
    for _, s in ipairs(open) do s.close() end
    stop()
  end)
end)

-- One address whose failed authentications are used up: a reverse proxy's, whose clients
-- all come from it, one of them guessing (docs/serve.md, Limits). Its valid keys and
-- sessions still act; what is refused, and a password, waits.
describe("orket.serve failed authentications", function()
  after_each(H.cleanup)

  it("hold off an address's refused credentials and password sign-ins, never its valid keys and sessions", function()
    local cjson = require "cjson"
    local accounts = require "orket.serve.accounts"
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local k = assert(keys.create(db, dir, "ci", "viewer"))
    local PW = "correct horse battery 1"
    assert(accounts.add(db, "ann", "viewer", assert(accounts.hash("ann", "viewer", PW)), "root"))
    local lines = {}
    local srv, stop = require("tests.fixtures").served { dir = dir, db = db, host = "127.0.0.1", port = 0,
      limits = assert(serve.limits("auth_fail_burst=3,auth_fail_rate=0.001")),
      log = function(line) lines[#lines + 1] = line end }
    local url = "http://127.0.0.1:" .. srv:port() .. "/v1/session"
    local function get(headers)
      local st, text, h = H.fetch { url = url, headers = headers }
      return st, cjson.decode(text), h
    end
    local function sign_in(body)
      local st, text, h = H.fetch { url = url, method = "POST", headers = { "Content-Type: application/json" },
        body = cjson.encode(body) }
      return st, cjson.decode(text), h
    end
    local st, doc, h = sign_in { key = k } -- a session of the board, opened before
    assert.equal(200, st)
    local jar = "Cookie: " .. h["set-cookie"]:match("^(orket_session=ors_%x+);")
    local wrong = k:sub(1, -2) .. (k:sub(-1) == "0" and "1" or "0")
    local bearer, refused = function(key) return { "Authorization: Bearer " .. key } end, nil
    refused = { bearer(wrong), bearer("ork_0000000000000000_" .. ("0"):rep(64)),
      { "Cookie: orket_session=ors_" .. ("0"):rep(64) }, { "Authorization: Basic eDp5" } }
    for i = 1, 3 do assert.equal(401, (get(refused[i])), i) end -- the burst (3) used up
    -- a valid key and session act, before and after refused ones; each refused one is 429
    local was = type(db.conn) == "userdata" and { db.conn:stamp() } -- SQLite's
    for i = 1, #refused do
      assert.equal(200, (get(bearer(k))))
      st, doc = get { jar }
      assert.same({ 200, "ci" }, { st, doc.key.name })
      st, doc, h = get(refused[i])
      assert.same({ 429, "rate_limited" }, { st, doc.error.code }, i)
      assert.matches("failed authentications from this address", doc.error.message, 1, true)
      assert.matches("^%d+$", h["retry-after"])
    end
    -- held off, a refusal is not counted: the store is not written (a flood writes nothing)
    if was then assert.same(was, { db.conn:stamp() }) end
    -- the log says why each was refused
    local why = cjson.decode(lines[#lines])
    assert.same({ 429, "malformed" }, { why.status, why.auth })
    -- a request that carries no credential at all (the board asking whether it is signed
    -- in, before anyone types) is no guess: 401 as ever, held off by nothing
    st, doc = get {}
    assert.same({ 401, "unauthorized" }, { st, doc.error.code })
    -- a sign-in with the key opens a session; a wrong key's waits
    st, doc = sign_in { key = k }
    assert.same({ 200, "viewer" }, { st, doc.role })
    st, doc = sign_in { key = wrong }
    assert.same({ 429, "rate_limited" }, { st, doc.error.code })
    assert.matches("authentications from this address", doc.error.message, 1, true)
    -- a password waits, the right one too (it is a guess that may come true), and a body
    -- that is neither way
    st, doc = sign_in { user = "ann", password = PW }
    assert.same({ 429, "rate_limited" }, { st, doc.error.code })
    assert.equal(429, (sign_in { user = "ann", key = k }))
    stop()
  end)

  -- Every load of the board before its sign-in asks GET /v1/session with nothing: counted,
  -- ten loads from one address (an office's NAT, an unlisted proxy) refused the right password
  it("never counts a request without any credential, so opening the board spends no sign-in", function()
    local cjson = require "cjson"
    local accounts = require "orket.serve.accounts"
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    assert(keys.create(db, dir, "ci", "viewer")) -- a key: no more local use, so a sign-in is needed
    local PW = "correct horse battery 1"
    assert(accounts.add(db, "ann", "viewer", assert(accounts.hash("ann", "viewer", PW)), "root"))
    local srv, stop = require("tests.fixtures").served { dir = dir, db = db, host = "127.0.0.1", port = 0,
      limits = assert(serve.limits("auth_fail_burst=3,auth_fail_rate=0.001")), log = function() end }
    local url = "http://127.0.0.1:" .. srv:port() .. "/v1/session"
    for i = 1, 12 do
      local st, text = H.fetch { url = url }
      assert.same({ 401, "unauthorized" }, { st, cjson.decode(text).error.code }, i)
    end
    local st, text = H.fetch { url = url, method = "POST", headers = { "Content-Type: application/json" },
      body = cjson.encode { user = "ann", password = PW } }
    assert.same({ 200, "viewer" }, { st, cjson.decode(text).role })
    stop()
  end)

  it("counts a refused credential while the address has tokens, and answers it 401", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local k = assert(keys.create(db, dir, "ci", "viewer"))
    local srv, stop = require("tests.fixtures").served { dir = dir, db = db, host = "127.0.0.1", port = 0,
      limits = assert(serve.limits("auth_fail_burst=2,auth_fail_rate=0.001")), log = function() end }
    local url = "http://127.0.0.1:" .. srv:port() .. "/v1/session"
    local function get(key) return (H.fetch { url = url, headers = { "Authorization: Bearer " .. key } }) end
    -- valid requests take nothing from the bucket, nor give back to it
    for _ = 1, 5 do assert.equal(200, get(k)) end
    assert.same({ 401, 200, 401, 200, 429 }, { get("x"), get(k), get("y"), get(k), get("z") })
    stop()
  end)
end)

describe("orket.serve.mcp_server batches", function()
  local server = require "orket.serve.mcp_server"
  local rpc = require "orket.mcp.jsonrpc"
  local cjson = require "cjson"

  -- a session whose every request answers 100 bytes of text, counting what it ran
  local function session()
    local s = { ran = 0 }
    function s.handle(self, msg, kind)
      if kind ~= "request" then return nil end
      self.ran = self.ran + 1
      return rpc.result(msg.id, { text = string.rep("a", 100) })
    end
    return s
  end
  local function batch(n)
    local parts = {}
    for i = 1, n do parts[i] = string.format('{"jsonrpc":"2.0","id":%d,"method":"ping"}', i) end
    parts[#parts + 1] = '{"jsonrpc":"2.0","method":"notifications/x"}'
    return "[" .. table.concat(parts, ",") .. "]"
  end

  it("takes a token for each message after the first, and answers those past the limit without running them", function()
    local s, tokens, pauses = session(), 3, 0
    local out = cjson.decode(server.handle_batch(s, batch(6), {
      take = function() tokens = tokens - 1 return tokens >= 0 end,
      pause = function() pauses = pauses + 1 end }))
    assert.equal(4, s.ran) -- the first (the request's own token) and three more
    assert.equal(6, #out)
    for i = 1, 4 do assert.equal("aaa", out[i].result.text:sub(1, 3)) end
    for i = 5, 6 do
      assert.equal(i, out[i].id)
      assert.equal(server.RATE_LIMITED, out[i].error.code)
      assert.matches("rate limited", out[i].error.message)
    end
    assert.equal(6, pauses) -- between every two of the seven messages: the loop's other requests go there
  end)

  it("stops running a batch's messages once its answer reaches the cap, and says so in each answer left", function()
    local s = session()
    local text = server.handle_batch(s, batch(50), { cap = 1000 })
    local out = cjson.decode(text)
    assert.equal(50, #out)
    assert.is_true(s.ran < 10)
    assert.is_true(#text < 1000 + 200 + 50 * 200) -- answers past the cap are short errors
    for i = s.ran + 1, 50 do
      assert.equal(server.BATCH_TOO_LARGE, out[i].error.code)
      assert.matches("reached 1000 bytes", out[i].error.message)
    end
    -- the default cap is the message limit a client reads
    assert.equal(rpc.MAX_MESSAGE, server.BATCH_ANSWER_CAP)
  end)

  it("runs none of a batch's messages left once its session or server ended during a pause", function()
    local s, live = session(), true
    local out = cjson.decode(server.handle_batch(s, batch(5), {
      pause = function() if s.ran == 2 then live = false end end, live = function() return live end }))
    assert.equal(2, s.ran)
    assert.equal(5, #out)
    for i = 3, 5 do
      assert.equal(server.SESSION_ENDED, out[i].error.code)
      assert.matches("ended during this batch", out[i].error.message)
    end
  end)
end)

describe("an audited write that changed nothing", function()
  it("is left out of the audit only when its result is marked unchanged, not for a field of that name", function()
    local B = require "tests.backends"
    local audit_chain = require "orket.audit.chain"
    local localuse = require "orket.serve.localuse"
    local db = B.open_store()
    local function entries() return db:row("SELECT count(*) AS n FROM audit_log").n + 0 end
    local ok, err = pcall(function()
      -- a result that counts its unchanged parts (0 is true in Lua) changed something
      assert(localuse.audited(db, "import", nil, function() return { created = 2, unchanged = 0 } end))
      assert(localuse.audited(db, "import", nil, function() return { unchanged = true } end))
      assert.equal(2, entries())
      local res = assert(localuse.audited(db, "member_grant", nil, function()
        return audit_chain.unchanged { role = "viewer", unchanged = true }
      end))
      assert.same({ 2, "viewer" }, { entries(), res.role })
    end)
    db:close()
    H.cleanup()
    assert(ok, err)
  end)
end)
