-- orket serve's query parameters: each route declares the ones it takes (router:add's
-- query, what GET /v1/openapi.json describes), and one it does not declare is refused with
-- 400 bad_query naming it, not ignored (a typo such as ?actr= once listed everyone's writes
-- as if asked). The routes whose query is someone else's (the sandbox's app, the identity
-- provider's callback, the probes) take any; the board's files are answered before the router.
local H = require "tests.helpers"
local serve = require "orket.serve"
local router_mod = require "orket.serve.router"

local REMEDY = "GET /v1/openapi.json lists each route's query parameters (docs/serve.md)"

-- the route of method and path (a path as a client writes it), as the server finds it
local function route_of(router, method, path)
  return router:match(method, assert(router_mod.segments(path)))
end

-- the names of a query string ("a=1&b=2" -> {"a", "b"})
local function names_of(q)
  local out = {}
  for pair in q:gmatch("[^&]+") do out[#out + 1] = pair:match("^([^=]*)") end
  return out
end

describe("orket serve: query parameters", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("refuses a query parameter its route does not declare, naming it and those the route takes", function()
    local dir = H.example("webapp")
    local viewer = H.api_key(dir, "viewer", "viewer")
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    -- the typo that once listed everyone's writes
    local st, doc = H.api(s, "GET", "/v1/audit?actr=user:bob", viewer)
    assert.same({ 400, "bad_query", "unknown query parameter ?actr=: this route takes ?after=, ?limit=, ?actor=, ?key=",
      REMEDY }, { st, doc.error.code, doc.error.message, doc.error.remedy })
    -- a declared one next to it does not make it pass; several are named, sorted
    st, doc = H.api(s, "GET", "/v1/audit?actor=user:bob&limt=5", viewer)
    assert.same({ 400, "unknown query parameter ?limt=: this route takes ?after=, ?limit=, ?actor=, ?key=" },
      { st, doc.error.message })
    st, doc = H.api(s, "GET", "/v1/board?rot=API&limt=5", viewer)
    assert.same({ 400, "unknown query parameters ?limt=, ?rot=: this route takes ?root=" }, { st, doc.error.message })
    -- a route that takes none says so
    st, doc = H.api(s, "GET", "/v1/status?verbose=1", viewer)
    assert.same({ 400, "unknown query parameter ?verbose=: this route takes no query parameters" },
      { st, doc.error.message })
    -- decoded as the handlers see them; a long name is cut in the answer
    st, doc = H.api(s, "GET", "/v1/runs?st%61te=done&x+y=1", viewer)
    assert.same({ 400, "unknown query parameter ?x y=: this route takes ?state=, ?after=, ?limit=" }, { st, doc.error.message })
    st, doc = H.api(s, "GET", "/v1/runs?" .. ("n"):rep(300) .. "=1", viewer)
    assert.equal("unknown query parameter ?" .. ("n"):rep(64) .. "... (300 bytes)=: this route takes ?state=, ?after=, ?limit=",
      doc.error.message)
    -- a name without a value is one too; a stray "&" is none
    st, doc = H.api(s, "GET", "/v1/status?verbose", viewer)
    assert.same({ 400, "unknown query parameter ?verbose=: this route takes no query parameters" },
      { st, doc.error.message })
    assert.equal(200, (H.api(s, "GET", "/v1/board?&&root=API&", viewer)))
    -- a header a route describes (Last-Event-ID) is no query parameter
    st, doc = H.api(s, "GET", "/v1/runs/1/events?Last-Event-ID=3", viewer)
    assert.same({ 400, "unknown query parameter ?Last-Event-ID=: this route takes ?card=, ?after=, ?lastEventId=, ?store=" },
      { st, doc.error.message })
    -- under a project's prefix as well, and HEAD as GET
    st, doc = H.api(s, "GET", "/v1/projects/default/board?limt=5", viewer)
    assert.same({ 400, "bad_query" }, { st, doc.error.code })
    assert.equal(400, (H.fetch { url = s.url .. "/v1/board?limt=5", method = "HEAD",
      headers = { "Authorization: Bearer " .. viewer } }))
    -- a write with one is refused before it is done: no comment is made
    st, doc = H.api(s, "POST", "/v1/cards/API-1/comments?dry_run=1", op, { body = "not meant to be kept" })
    assert.same({ 400, "unknown query parameter ?dry_run=: this route takes no query parameters" },
      { st, doc.error.message })
    local _, card = H.api(s, "GET", "/v1/cards/API-1", viewer)
    for _, c in ipairs(card.comments) do assert.not_equal("not meant to be kept", c.body) end
    -- the key comes first: a stranger learns nothing of a route's parameters
    assert.equal(401, (H.api(s, "GET", "/v1/audit?actr=user:bob")))
    -- the declared ones answer as before
    assert.equal(200, (H.api(s, "GET", "/v1/audit?actor=user:bob&limit=5", viewer)))
    -- a limit past any integer is taken as the cap, as any larger one is (docs/serve.md)
    assert.equal(200, (H.api(s, "GET", "/v1/audit?limit=99999999999999999999999", viewer)))
    -- a flag's value is 1, true, 0 or false: "yes" answered as if it were not given
    st, doc = H.api(s, "GET", "/v1/sandboxes?all=maybe", viewer)
    assert.same({ 400, "bad_query", '?all= takes 1 (or true) or 0 (or false), not "maybe"' },
      { st, doc.error.code, doc.error.message })
    assert.equal(200, (H.api(s, "GET", "/v1/sandboxes?all=0", viewer)))
    assert.equal(200, (H.api(s, "GET", "/v1/runs?state=done&limit=1", viewer)))
    assert.equal(200, (H.api(s, "GET", "/v1/board?root=API", viewer)))
  end)

  it("declares every parameter a handler reads, and every one the board and the MCP tools send", function()
    local router = serve.router()
    -- each ctx.query.NAME a route file reads is declared by a route of that file (a name
    -- read but undeclared would now be refused: GET /v1/sandboxes?all=1 was)
    local dir = H.ROOT .. "/lua/orket/serve/"
    local declared_in = {} -- file -> name -> true
    for _, r in ipairs(router.routes) do
      local src = r.handler and debug.getinfo(r.handler, "S").source or ""
      local file = src:match("([%w_]+%.lua)$")
      if file then
        declared_in[file] = declared_in[file] or {}
        for name in pairs(r.query_known) do declared_in[file][name] = true end
      end
    end
    local read = 0
    for file, _ in pairs(declared_in) do
      local text = assert(H.read(dir .. file), file)
      for name in text:gmatch("ctx%.query%.([%a_][%w_]*)") do
        read = read + 1
        assert(declared_in[file][name], file .. " reads ?" .. name .. "= but no route of it declares it")
      end
    end
    assert.is_true(read >= 10, "the handlers' reads were not found")
    -- the web board's requests (web/app.js) send only declared parameters
    local app = assert(H.read(H.ROOT .. "/web/app.js"))
    local sent = 0
    for path, q in app:gmatch('"(/v1/[^"?]*)%?([^"]*)"') do
      local route = route_of(router, "GET", path)
      assert(route, "the board asks for " .. path .. ", no route")
      for _, name in ipairs(names_of(q)) do
        sent = sent + 1
        assert(route.query_known[name], "the board sends ?" .. name .. "= to " .. path .. ", which does not declare it")
      end
    end
    assert.is_true(sent >= 3, "the board's requests were not found")
    -- the MCP tools' query arguments are their routes' parameters
    local by_name = {}
    for _, r in ipairs(router.routes) do if r.name then by_name[r.name] = r end end
    for _, t in ipairs(require("orket.serve.mcp_server").TOOLS) do
      for name in pairs(t.query) do
        assert(by_name[t.route].query_known[name], "tool " .. t.name .. "'s " .. name .. " is not declared on " .. t.route)
      end
    end
    -- and the API's description lists them
    local api = require("orket.serve.openapi").document(router)
    local listed = {}
    for _, p in ipairs(api.paths["/v1/sandboxes"].get.parameters or {}) do listed[p.name] = p["in"] end
    assert.same({ all = "query" }, listed)
  end)

  it("answers GET /v1/sandboxes?all=1, as the board asks", function()
    local dir = H.example("webapp")
    local viewer = H.api_key(dir, "viewer", "viewer")
    local s = H.serve(dir)
    local st, doc = H.api(s, "GET", "/v1/sandboxes?all=1", viewer)
    assert.equal(200, st)
    assert.same({}, doc.sandboxes)
  end)

  -- An id the server gives (the board's journal_id, a reset's) is the newest of the rows the
  -- caller may read: the whole journal's newest told any viewer, as often as they asked,
  -- when someone signed in or a key or a member was made. An id past the journal's end (a
  -- store restored from a backup) is answered with a reset, and the journal follows.
  it("gives a caller ids of rows they may read: the board's journal_id, a reset past the journal's end", function()
    local dir = H.example("webapp")
    local viewer = H.api_key(dir, "viewer", "viewer")
    local admin = H.api_key(dir, "boss", "admin")
    local s = H.serve(dir)
    local function board_id(k)
      local st, doc = H.api(s, "GET", "/v1/board", k)
      assert.equal(200, st)
      return math.tointeger(doc.journal_id)
    end
    local v0 = board_id(viewer)
    assert.is_true(v0 ~= nil and v0 > 0)
    local a0 = board_id(admin) -- (the keys made are rows about people too)
    assert.is_true(a0 > v0)
    -- rows about the server's people (keys made): the admin's to read, not the viewer's
    assert.equal(0, H.orket("keys create second --role viewer", { cwd = dir }).status)
    assert.equal(0, H.orket("keys create third --role viewer", { cwd = dir }).status)
    local a1 = board_id(admin)
    assert.is_true(a1 > a0)
    assert.equal(v0, board_id(viewer))
    -- past the end: a reset carrying the viewer's newest, then what is written comes
    local ev = H.stream { url = s.url .. "/v1/events", headers = { "Authorization: Bearer " .. viewer,
      "Last-Event-ID: " .. (a1 + 50) } }
    assert.equal(200, ev.status)
    local RESET = '\nid: (%d+)\nevent: reset\ndata: {"id":(%d+)}\n\n'
    H.wait_for(function() return ev.text():match(RESET) end, "the reset", 5000)
    local id, data = ev.text():match(RESET)
    assert.same({ v0, v0 }, { tonumber(id), tonumber(data) })
    assert.equal(200, (H.api(s, "POST", "/v1/cards/API-1/comments", admin, { body = "after the reset" })))
    H.wait_for(function() return ev.text():find("\nevent: comment\n", 1, true) end, "the comment's event", 5000)
    ev.close()
    -- within the journal, no reset
    local ev2 = H.stream { url = s.url .. "/v1/events?after=" .. v0, headers = { "Authorization: Bearer " .. viewer } }
    H.wait_for(function() return ev2.text():find("\nevent: comment\n", 1, true) end, "the comment replayed", 5000)
    assert.is_nil(ev2.text():find("event: reset", 1, true))
    ev2.close()
    assert.equal(0, s.stop())
  end)

  it("replays an event stream after ?lastEventId=, as EventSource polyfills reconnect", function()
    local dir = H.example("webapp")
    local viewer = H.api_key(dir, "viewer", "viewer")
    H.api_key(dir, "other", "viewer") -- a second journal row
    local s = H.serve(dir)
    local function ids(query)
      local ev = H.stream { url = s.url .. "/v1/events" .. query, headers = { "Authorization: Bearer " .. viewer } }
      assert.equal(200, ev.status)
      local out
      H.wait_for(function()
        out = {}
        for id in ev.text():gmatch("\nid: (%d+)") do out[#out + 1] = tonumber(id) end
        for id in ev.text():gmatch("^id: (%d+)") do table.insert(out, 1, tonumber(id)) end
        return #out >= 1
      end, "an event of " .. query)
      ev.close()
      return out
    end
    local all = ids("?lastEventId=0")
    assert.is_true(#all >= 2, "two rows at least")
    -- after the first: the second comes first; the header wins over the query, as over ?after=
    assert.equal(all[2], ids("?lastEventId=" .. all[1])[1])
    assert.equal(all[2], ids("?lastEventId=" .. all[1] .. "&after=0")[1])
    local st, doc = H.api(s, "GET", "/v1/events?lastEventId=x", viewer)
    assert.same({ 400, "bad_query", "Last-Event-ID, ?lastEventId= and ?after= take a journal id (a whole number)" },
      { st, doc.error.code, doc.error.message })
    -- the header's value without the blanks around it (RFC 9110 5.5)
    local ev = H.stream { url = s.url .. "/v1/events", headers = { "Authorization: Bearer " .. viewer,
      "Last-Event-ID: " .. all[1] .. " " }, total_timeout_ms = 60000 }
    assert.equal(200, ev.status)
    H.wait_for(function() return ev.text():find("\nid: " .. all[2] .. "\n", 1, true) or ev.text():find("^id: " .. all[2] .. "\n") end,
      "the event after the header's id")
    ev.close()
  end)

  it("takes any query where it is someone else's: the sandbox's app, the provider's callback, the probes, the board's files", function()
    local dir = H.example("webapp")
    local viewer = H.api_key(dir, "viewer", "viewer")
    local s = H.serve(dir)
    -- the probes: monitors add their own
    assert.equal(200, (H.api(s, "GET", "/health?nocache=123")))
    assert.equal(200, (H.api(s, "GET", "/ready?nocache=123")))
    -- the proxy passes the query on to the app: no sandbox here, so its 404, not a 400
    local st, doc = H.api(s, "GET", "/v1/sandboxes/7/app/search?q=x&page=2", viewer)
    assert.same({ 404, "not_found" }, { st, doc.error.code })
    -- the provider adds its own to code and state: no provider is set up here, so its 404
    st, doc = H.api(s, "GET", "/v1/sign-in/oidc/callback?code=c&state=s&session_state=x&iss=https%3A%2F%2Fidp", viewer)
    assert.same({ 404, "not_found" }, { st, doc.error.code })
    -- a sign-in the provider starts (an app tile) adds iss, login_hint, target_link_uri
    st, doc = H.api(s, "GET", "/v1/sign-in/oidc?iss=https%3A%2F%2Fidp&login_hint=bob&target_link_uri=x", viewer)
    assert.same({ 404, "not_found" }, { st, doc.error.code })
    -- the board's files are answered before the router (a cache-buster's ?v=)
    assert.equal(200, (H.fetch { url = s.url .. "/app.js?v=3" }))
    assert.equal(200, (H.fetch { url = s.url .. "/?v=3" }))
    -- and the description says which take any
    local api = require("orket.serve.openapi").document(serve.router())
    assert.is_true(api.paths["/v1/sandboxes/{id}/app/{path}"].get["x-orket-any-query"])
    assert.is_true(api.paths["/v1/sign-in/oidc/callback"].get["x-orket-any-query"])
    assert.is_true(api.paths["/v1/sign-in/oidc"].get["x-orket-any-query"])
    assert.is_true(api.paths["/health"].get["x-orket-any-query"])
    assert.is_nil(api.paths["/v1/audit"].get["x-orket-any-query"])
  end)
end)
