-- orket.serve.web and orket.serve.session, their pure parts: the web board's files read only
-- as regular files (no symbolic link, nothing but the allow-list), serve.cors checked with
-- the field named, the session cookie parsed and its CSRF token derived.
local web = require "orket.serve.web"
local session = require "orket.serve.session"
local settings = require "orket.settings"
local H = require "tests.helpers"

describe("orket.serve.web", function()
  after_each(H.cleanup)

  it("serves a fixed allow-list of the files in web/", function()
    local names = {}
    for path, name in pairs(web.FILES) do
      assert.matches("^/[%w.]*$", path)
      assert.is_nil(name:find("/", 1, true))
      names[name] = true
    end
    for name in pairs(names) do assert.is_string(web.read(web.dir(), name), name) end
    assert.equal(H.ROOT .. "/web", web.dir())
  end)

  it("reads regular files only: not a symbolic link, a directory or a missing file", function()
    local dir = H.tmpdir()
    H.write(dir .. "/app.js", "ok")
    H.write(dir .. "/secret.txt", "secret")
    assert.equal("ok", web.read(dir, "app.js"))
    os.execute("ln -s " .. H.quote(dir .. "/secret.txt") .. " " .. H.quote(dir .. "/app.css"))
    os.execute("ln -s /etc/passwd " .. H.quote(dir .. "/index.html"))
    os.execute("mkdir " .. H.quote(dir .. "/icon.svg"))
    for _, name in ipairs { "app.css", "index.html", "icon.svg", "missing.js" } do
      local data, err = web.read(dir, name)
      assert.is_nil(data, name)
      assert.matches("is not a regular file", err, 1, true)
    end
    -- a directory of links is refused as well: each file is checked, not its directory
    local linked = H.tmpdir()
    os.execute("ln -s " .. H.quote(dir .. "/secret.txt") .. " " .. H.quote(linked .. "/app.js"))
    assert.is_nil(web.read(linked, "app.js"))
  end)

  it("reads serve.cors from orket.lua and refuses what is not an origin, naming the field", function()
    local dir = H.tmpdir()
    assert.same({}, web.cors(dir)) -- no orket.lua: no CORS
    H.write(dir .. "/orket.lua", 'serve = { cors = { "https://Board.Example", "http://127.0.0.1:8080", "http://[::1]:9" } }\n')
    assert.same({ ["https://board.example"] = true, ["http://127.0.0.1:8080"] = true, ["http://[::1]:9"] = true }, web.cors(dir))
    local bad = {
      { '"*"', "serve.cors[1]: must be an origin" }, { '"https://x.example/"', "serve.cors[1]: must be an origin" },
      { '"x.example"', "serve.cors[1]: must be an origin" }, { '"ftp://x.example"', "serve.cors[1]: must be an origin" },
      { '"https://x.example", 3', "serve.cors[2]: must be an origin" },
    }
    local many = {} -- one more than /health keeps answers for
    for i = 1, 4097 do many[i] = string.format("%q", "https://o" .. i .. ".example") end
    bad[#bad + 1] = { table.concat(many, ", "), "serve.cors: lists 4097 origins; at most 4096" }
    for _, b in ipairs(bad) do
      H.write(dir .. "/orket.lua", "serve = { cors = { " .. b[1] .. " } }\n")
      local set, err = web.cors(dir)
      assert.is_nil(set, b[1])
      assert.matches("orket.lua: " .. b[2], err, 1, true)
    end
    for src, msg in pairs { ['serve = "x"'] = "orket.lua: serve: must be a table (fields: cors, app_origin, projects, branding, trusted_proxies)",
      ["serve = { cros = {} }"] = "orket.lua: serve.cros: unknown setting (known: cors, app_origin, projects, branding, trusted_proxies)",
      ['serve = { app_origin = "https://apps.example" }'] = "orket.lua: serve.app_origin: must be an origin whose host starts with {id}",
      ['serve = { app_origin = "https://{id}.apps.example/x" }'] = "orket.lua: serve.app_origin: must be an origin",
      ['serve = { app_origin = "https://{id}..example" }'] = "orket.lua: serve.app_origin: must be an origin",
      ['serve = { app_origin = 5 }'] = "orket.lua: serve.app_origin: must be an origin",
      ['serve = { cors = "https://x.example" }'] = "orket.lua: serve.cors: must be an array of origins",
      ['serve = { cors = { a = "https://x.example" } }'] = "orket.lua: serve.cors: must be an array (no named fields)" } do
      H.write(dir .. "/orket.lua", src .. "\n")
      local set, err = web.cors(dir)
      assert.is_nil(set, src)
      assert.matches(msg, err, 1, true)
    end
    -- orket validate reports it with every other problem
    local problems = settings.check { serve = { cors = { "*" } } }
    assert.equal(1, #problems)
    assert.matches("serve.cors[1]", problems[1], 1, true)
    assert.same({ cors = {}, app_origin = "http://{id}.sandbox.localhost:{port}", projects = {},
      branding = { name = "Orket", colors = {} }, trusted_proxies = {} }, settings.resolve({}).serve)
    assert.equal("https://{id}.apps.example", settings.resolve({ serve = { app_origin = "https://{id}.Apps.example" } }).serve.app_origin)
    assert.equal("http://{id}.sandbox.localhost:8443",
      settings.resolve({ serve = { app_origin = "http://{id}.sandbox.localhost:8443" } }).serve.app_origin)
  end)
end)

describe("orket.serve.session", function()
  it("finds its cookie among others and derives a CSRF token that is not the session's", function()
    local t = "ors_" .. string.rep("ab", 32)
    assert.equal(t, session.token_of { headers = { cookie = "a=1; orket_session=" .. t .. "; b=2" } })
    assert.equal(t, session.token_of { headers = { cookie = "orket_session=" .. t } })
    assert.is_nil(session.token_of { headers = { cookie = "xorket_session=" .. t } })
    assert.is_nil(session.token_of { headers = { cookie = "a=1" } })
    assert.is_nil(session.token_of { headers = {} })
    local csrf = session.csrf_of(t)
    assert.matches("^%x+$", csrf)
    assert.equal(64, #csrf)
    assert.is_nil(csrf:find(t:sub(5), 1, true))
    assert.equal(csrf, session.csrf_of(t))
    assert.is_not.equal(csrf, session.csrf_of("ors_" .. string.rep("cd", 32)))
  end)
end)

describe("orket.serve.session's foreign_page", function()
  local function req(method, h) return { method = method, headers = h } end

  it("is a page of another origin as the browser says, or by Origin on a write when it does not say", function()
    -- the board's own page, a typed address
    assert.is_false(session.foreign_page(req("GET", { ["sec-fetch-site"] = "same-origin", ["sec-fetch-mode"] = "cors" })))
    assert.is_false(session.foreign_page(req("POST", { ["sec-fetch-site"] = "same-origin", host = "h:1", origin = "http://h:1" })))
    assert.is_false(session.foreign_page(req("GET", { ["sec-fetch-site"] = "none", ["sec-fetch-mode"] = "navigate" })))
    -- an app of the same site: its script's reads and writes, even with the board's host as Origin
    assert.is_true(session.foreign_page(req("GET", { ["sec-fetch-site"] = "same-site", ["sec-fetch-mode"] = "cors" })))
    assert.is_true(session.foreign_page(req("POST", { ["sec-fetch-site"] = "same-site", ["sec-fetch-mode"] = "no-cors" })))
    assert.is_true(session.foreign_page(req("GET", { ["sec-fetch-site"] = "cross-site", ["sec-fetch-mode"] = "no-cors" })))
    -- a link followed from there reads what the person may read; a form posted from there does not write
    assert.is_false(session.foreign_page(req("GET", { ["sec-fetch-site"] = "same-site", ["sec-fetch-mode"] = "navigate" })))
    assert.is_true(session.foreign_page(req("POST", { ["sec-fetch-site"] = "same-site", ["sec-fetch-mode"] = "navigate" })))
    -- a browser that does not say: a write's Origin decides
    assert.is_true(session.foreign_page(req("POST", { host = "h:1", origin = "http://1.sandbox.h:1" })))
    assert.is_false(session.foreign_page(req("POST", { host = "h:1", origin = "http://h:1" })))
    assert.is_false(session.foreign_page(req("GET", { host = "h:1" })))
  end)
end)

describe("orket.serve.apps", function()
  local apps = require "orket.serve.apps"

  it("finds the sandbox a Host names under the base, and nothing else", function()
    local a = apps.new("http://{id}.sandbox.localhost:{port}")
    local function of(host) return a:sandbox_of { headers = { host = host } } end
    assert.equal(3, of("3.sandbox.localhost:8765"))
    assert.equal(3, of("3.Sandbox.LOCALHOST:8765"))
    assert.equal(12, of("12.sandbox.localhost"))
    for _, h in ipairs { "sandbox.localhost:1", "localhost:1", "127.0.0.1:1", "x.sandbox.localhost:1", "3.sandbox.localhost.evil:1",
      "3.sandboxxlocalhost:1", "3.3.sandbox.localhost:1", "[::1]:1", "" } do
      assert.is_nil(of(h), h)
    end
    assert.is_nil(a:sandbox_of { headers = {} })
    -- kept per Host, for 64 names at most, and the same answers past them
    for i = 1, 200 do
      assert.equal(i, of(i .. ".sandbox.localhost:8765"))
      assert.is_nil(of("h" .. i .. ".example"))
      assert.is_true(a.nhosts <= 64)
    end
    assert.equal(3, of("3.sandbox.localhost:8765"))
    assert.equal("http://3.sandbox.localhost:8765", a:origin(3, { headers = { host = "127.0.0.1:8765" } }))
    assert.equal("http://3.sandbox.localhost", a:origin(3, { headers = { host = "board" } }))
    local b = apps.new("https://{id}.apps.example")
    assert.equal("https://7.apps.example", b:origin(7, { headers = { host = "board.example:443" } }))
    assert.equal(7, b:sandbox_of { headers = { host = "7.apps.example" } })
  end)

end)
