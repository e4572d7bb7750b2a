-- An app's answer streamed through the proxy in a hosted project
-- (/v1/projects/P/sandboxes/ID/app/...) ends once its caller may no longer read it, as in
-- the default project (serve_stream_revoke_test.lua): taken out of the project, disabled,
-- their key revoked, or the project removed (orket projects remove) while the server runs.
-- Its log line says `cut: ...` and names the project. A node app in a sandbox (skipped
-- where none can run).
local H = require "tests.helpers"
local proc = require "orket.c.proc"

local SERVER = [[
const http = require('http');
console.log('listening ' + process.env.PORT);
http.createServer((req, res) => {
  if (req.url === '/slow') { res.write('first'); return; } // held open: a stream
  res.end('hello');
}).listen(Number(process.env.PORT), '127.0.0.1');
]]

local PASS = "correct horse battery"

local function offered()
  local p = proc.probe()
  return p.netns and p.userns and os.execute("command -v node >/dev/null 2>&1")
end

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

-- the default project (main) and the hosted one (web), whose sandbox runs the app
local function projects()
  local main, web = H.tmpdir() .. "/main", H.tmpdir() .. "/web"
  ok(H.orket("init " .. H.quote(main)), "init main")
  ok(H.orket("init " .. H.quote(web)), "init web")
  H.write(web .. "/workspace/server.js", SERVER)
  H.commit_main(web, "the app")
  H.write(web .. "/orket.lua", H.read(web .. "/orket.lua")
    .. '\nsandbox = { command = { "node", "server.js" }, health = { http = "/health", interval_ms = 200 } }\n')
  ok(H.orket("projects add " .. H.quote(web) .. " --name web", { cwd = main }), "projects add")
  return main
end

local function follow(s, path, key)
  return H.stream { url = s.url .. path, headers = { "Authorization: Bearer " .. key }, total_timeout_ms = 60000 }
end

describe("a hosted project's app stream whose caller may read no more", function()
  local skip
  setup(function()
    if not offered() then skip = "the kernel offers no network namespace here, or node is missing" end
  end)
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("ends at a revoke, a disable, a key's revoke and the project's removal, with the cut's note", function()
    if skip then return pending(skip) end
    local dir = projects()
    -- alice starts the sandbox; bob is taken out of web, carl disabled, dave's key revoked,
    -- erin's stream lasts until the project is removed
    local keys = {}
    for _, p in ipairs { { "alice", "operator", "developer" }, { "bob", "viewer", "viewer" },
        { "carl", "viewer", "viewer" }, { "dave", "viewer", "viewer" }, { "erin", "viewer", "viewer" } } do
      ok(H.orket("users add " .. p[1] .. " --role " .. p[2] .. " --password-env PW", { cwd = dir,
        env = { PW = PASS } }), "users add")
      ok(H.orket("projects grant web " .. p[1] .. " " .. p[3], { cwd = dir }), "grant")
      keys[p[1]] = (ok(H.orket("keys create k" .. p[1] .. " --role " .. p[2] .. " --for " .. p[1], { cwd = dir }),
        "key").stdout:gsub("\n$", ""))
    end
    local s = H.serve(dir)
    local st, doc, text = H.api(s, "POST", "/v1/projects/web/sandboxes", keys.alice, {})
    assert.equal(201, st, text)
    local id = math.tointeger(doc.sandbox.id)
    local one = "/v1/projects/web/sandboxes/" .. id
    H.wait_for(function()
      local gst, gdoc = H.api(s, "GET", one, keys.alice)
      return gst == 200 and gdoc.sandbox.status == "healthy"
    end, "healthy", 5000)
    local app = one .. "/app/slow"
    local streams = {}
    for _, who in ipairs { "bob", "carl", "dave", "erin", "alice" } do
      streams[who] = follow(s, app, keys[who])
      H.wait_for(function() return streams[who].text():find("first", 1, true) end, who .. "'s first bytes")
    end
    -- each act cuts its caller's stream at once, and only theirs
    local acts = { { "bob", "projects revoke web bob" }, { "carl", "users disable carl" }, { "dave", "keys revoke kdave" } }
    for _, act in ipairs(acts) do
      ok(H.orket(act[2], { cwd = dir }), act[2])
      H.wait_for(streams[act[1]].done, act[1] .. "'s app stream to end after " .. act[2], 1000)
      assert.is_false(streams.erin.done(), "erin's stream was cut by " .. act[2])
    end
    -- the project removed: its members' streams end too
    ok(H.orket("projects remove web", { cwd = dir }), "projects remove")
    for _, who in ipairs { "erin", "alice" } do
      H.wait_for(streams[who].done, who .. "'s app stream to end after the project's removal", 1000)
    end
    for _, x in pairs(streams) do x.close() end
    H.wait_for(function()
      local n = 0
      for line in s.log():gmatch("[^\n]+") do
        if line:find('"note":"cut: ', 1, true) and line:find('"project":"web"', 1, true)
          and line:find("/v1/projects/{p}/sandboxes/{id}/app/{path}", 1, true) then n = n + 1 end
      end
      return n >= 5
    end, "the five cut lines", 1000)
  end)
end)
