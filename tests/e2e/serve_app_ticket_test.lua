-- Opening a sandbox's app on its own origin (docs/serve.md, "Apps on their own origins"),
-- as found by a pentest: another project's /open names a sandbox that does not exist 404,
-- as every other sandbox route, before saying it is no app of an origin of its own; and in
-- Chromium, the board's own link, followed from the board's page (another site than the
-- app's), reaches a page of the app's origin that asks before signing in, whose button
-- opens the app; a page of another site sending the browser to a ticket gets that page,
-- never the app's session. Needs network and user namespaces, node and Chromium.
local H = require "tests.helpers"
local WD = require "tests.webdriver"

local SERVER = [[
const mark = process.argv[2];
require('http').createServer((req, res) => {
  res.setHeader('Content-Type', 'text/html');
  res.end('<!doctype html><title>app</title><p id="hello">app ' + mark + ' at ' + req.url + '</p>');
}).listen(Number(process.env.PORT), '127.0.0.1');
]]

local PASS = "correct horse battery"

local function ok(r, what)
  assert(r.status == 0, what .. ": " .. tostring(r.stderr))
  return r
end

describe("opening a sandbox's app", function()
  local skip
  setup(function()
    if not H.sandbox_offered("node") then skip = "the kernel offers no network namespace here, or node is missing" end
  end)
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("of another project: 404 for a sandbox that does not exist, 409 with its route for one that does", function()
    if skip then return pending(skip) end
    local dir = H.example("webapp")
    local other = H.node_project(SERVER, "opn" .. math.random(1, 1e9))
    ok(H.orket("import", { cwd = other }), "import")
    ok(H.orket("projects add " .. other .. " --name notes", { cwd = dir }), "projects add")
    ok(H.orket("users add boss --role admin --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    local boss = ok(H.orket("keys create bk --role admin --for boss", { cwd = dir }), "key").stdout:gsub("\n$", "")
    local s = H.serve(dir)
    for _, id in ipairs { "999", "abc" } do
      local st, doc, text = H.api(s, "GET", "/v1/projects/notes/sandboxes/" .. id .. "/open", boss)
      assert.equal(404, st, text)
      local st2, doc2 = H.api(s, "GET", "/v1/projects/notes/sandboxes/" .. id, boss)
      assert.equal(404, st2)
      assert.same(doc2, doc) -- as the sandbox's own route says it
    end
    local st, doc, text = H.api(s, "POST", "/v1/projects/notes/sandboxes", boss, {})
    assert.equal(201, st, text)
    local id = math.tointeger(doc.sandbox.id)
    local at = "/v1/projects/notes/sandboxes/" .. id .. "/app/"
    st, doc, text = H.api(s, "GET", "/v1/projects/notes/sandboxes/" .. id .. "/open", boss)
    assert.equal(409, st, text)
    assert.equal("conflict", doc.error.code)
    assert.equal("apps on their own origin are the default project's; open this one at " .. at, doc.error.message)
    assert.equal("open " .. at .. " (the board's Open the app does)", doc.error.remedy)
    assert.equal(0, H.orket("sandbox stop " .. id, { cwd = other }).status)
    assert.equal(0, s.stop())
  end)

  it("in Chromium: the board's link asks on the app's origin first, and another site's link never signs in", function()
    if skip then return pending(skip) end
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local mark = "tkt" .. math.random(1, 1e9)
    local dir = H.node_project(SERVER, mark)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local op = H.api_key(dir, "op", "operator")
    local ci = H.api_key(dir, "ci", "viewer") -- another's: the ticket a stranger makes
    local s = H.serve(dir)
    local st, doc, text = H.api(s, "POST", "/v1/sandboxes", op, {})
    assert.equal(201, st, text)
    local id = math.tointeger(doc.sandbox.id)
    local board = "http://127.0.0.1:" .. s.port -- of another site than the app's, as by default
    local origin = "http://" .. id .. ".sandbox.localhost:" .. s.port
    WD.with({ width = 1024, height = 800 }, function(wd)
      wd:sign_in(board, op)
      local link = '#sandbox-list li[data-sandbox="' .. id .. '"] a.sandbox-app'
      wd:wait(link, "the sandbox's link on the board")
      -- the board's own link, followed in this tab (it opens another): a page of the app's
      -- origin names whose session it opens, and its button opens the app
      wd:js("document.querySelector(arguments[0]).removeAttribute('target')", link)
      wd:press(link, "the board's Open the app")
      wd:wait("form button", "the page that asks")
      assert.equal(origin, wd:js("return location.origin"))
      assert.equal("Open sandbox " .. id .. "'s app?", wd:js("return document.title"))
      assert.matches("as key op (operator)", wd:text_of("body"), 1, true)
      wd:press("form button", "the page's button")
      wd:wait("#hello", "the app's page")
      assert.equal("app " .. mark .. " at /", wd:text_of("#hello"))
      -- a stranger's ticket, which a page of another site sends the browser to: the page
      -- that asks, naming the stranger's key; the person's own session stays
      local _, sdoc = H.api(s, "GET", "/v1/sandboxes/" .. id .. "/open?path=%2Fphish", ci)
      wd:go("data:text/html,<a id=go href='" .. sdoc.url .. "'>go</a>")
      wd:press("#go", "the other site's link")
      wd:wait("form button", "the page that asks")
      assert.matches("as key ci (viewer)", wd:text_of("body"), 1, true)
      wd:go(origin .. "/mine")
      wd:wait("#hello", "the app's page")
      assert.equal("app " .. mark .. " at /mine", wd:text_of("#hello"))
      -- and the stranger's ticket, posted from another site's page, is refused
      wd:go("data:text/html,<form method=post action='" .. sdoc.url .. "'><button id=post>go</button></form>")
      wd:press("#post", "the other site's form")
      H.wait_for(function() return wd:js("return location.origin") == origin end, "the post's answer")
      assert.matches("on the app's own page only", wd:text_of("body"), 1, true)
    end)
    assert.equal(0, H.orket("sandbox stop " .. id, { cwd = dir }).status)
    assert.equal(0, s.stop())
  end)
end)
