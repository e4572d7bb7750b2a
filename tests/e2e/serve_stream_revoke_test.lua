-- A sandbox's log followed, and an app's answer streamed through the proxy, end once their
-- caller may no longer read them (a key revoked, a person disabled or taken out of the
-- project), as an event stream does: the hub checks them at such a journal row and at each
-- heartbeat (orket.serve.events, hub:watch). The proxy's memory's own requests (started in
-- C) are cut at such a row too, those of callers still allowed left to run. A node app in a sandbox (skipped where none can run).
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

local function project()
  local dir = H.tmpdir() .. "/p"
  ok(H.orket("init " .. H.quote(dir)), "init")
  H.write(dir .. "/workspace/server.js", SERVER)
  H.commit_main(dir, "the app")
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua")
    .. '\nsandbox = { command = { "node", "server.js" }, health = { http = "/health", interval_ms = 200 } }\n')
  return dir
end

local function follow(s, path, key)
  return H.stream { url = s.url .. path, headers = { "Authorization: Bearer " .. key }, total_timeout_ms = 60000 }
end

describe("a stream whose caller may read no more", function()
  local skip
  setup(function()
    if not offered() then skip = "the kernel offers no network namespace here, or node is missing" end
  end)
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("ends: a log followed and an app's answer proxied, the Lua way and from the memory", function()
    if skip then return pending(skip) end
    local dir = project()
    for _, p in ipairs { { "alice", "operator" }, { "bob", "viewer" }, { "carl", "viewer" } } do
      ok(H.orket("users add " .. p[1] .. " --role " .. p[2] .. " --password-env PW", { cwd = dir,
        env = { PW = PASS } }), "users add")
    end
    local function key(name, user, role)
      return (ok(H.orket("keys create " .. name .. " --role " .. role .. " --for " .. user, { cwd = dir }),
        "key").stdout:gsub("\n$", ""))
    end
    local op, bk, ck = key("op", "alice", "operator"), key("bk", "bob", "viewer"), key("ck", "carl", "viewer")
    local s = H.serve(dir)
    local st, doc, text = H.api(s, "POST", "/v1/sandboxes", op, {})
    assert.equal(201, st, text)
    local id = math.tointeger(doc.sandbox.id)
    local logs, app = "/v1/sandboxes/" .. id .. "/logs?follow=1", "/v1/sandboxes/" .. id .. "/app/slow"
    H.wait_for(function() return (H.api(s, "GET", "/v1/sandboxes/" .. id, op)) == 200
      and select(2, H.api(s, "GET", "/v1/sandboxes/" .. id, op)).sandbox.status == "healthy" end, "healthy", 3000)

    -- bob's key: a log followed, the app's stream twice (the second from the proxy's memory)
    local blog = follow(s, logs, bk)
    local bapp = follow(s, app, bk)
    H.wait_for(function() return bapp.text():find("first", 1, true) end, "the app's first bytes")
    local bapp2 = follow(s, app, bk)
    H.wait_for(function() return bapp2.text():find("first", 1, true) end, "the app's first bytes again")
    -- alice's key: the app's stream twice too, the second from the memory, which a revoke
    -- of another's key leaves alone
    local aapp = follow(s, app, op)
    H.wait_for(function() return aapp.text():find("first", 1, true) end, "alice's first bytes")
    local aapp2 = follow(s, app, op)
    H.wait_for(function() return aapp2.text():find("first", 1, true) end, "alice's first bytes again")
    -- carl's: a log followed; he is taken out of the project
    local clog = follow(s, logs, ck)
    H.wait_for(function() return blog.text():find("listening", 1, true) and clog.text():find("listening", 1, true) end,
      "the logs' tails")
    ok(H.orket("keys revoke bk", { cwd = dir }), "keys revoke")
    ok(H.orket("projects revoke default carl", { cwd = dir }), "projects revoke")
    for _, x in ipairs { { blog, "bob's log" }, { bapp, "bob's app stream" }, { bapp2, "bob's app stream (memory)" },
        { clog, "carl's log" } } do
      H.wait_for(x[1].done, x[2] .. " to end", 500)
    end
    -- nothing the app prints afterwards reaches them
    local logf = assert(io.open(dir .. "/.orket/sandboxes/" .. id .. "/app.log", "a"))
    logf:write("SECRET-AFTER-REVOKE\n")
    logf:close()
    orket.sleep(600)
    assert.no_match("SECRET-AFTER-REVOKE", blog.text(), 1, true)
    assert.no_match("SECRET-AFTER-REVOKE", clog.text(), 1, true)
    for _, x in ipairs { blog, bapp, bapp2, clog } do x.close() end
    -- a caller still allowed keeps theirs, and the server logged the cut streams as cut
    local alog = follow(s, logs, op)
    H.wait_for(function() return alog.text():find("SECRET-AFTER-REVOKE", 1, true) end, "alice's log")
    assert.is_false(alog.done())
    alog.close()
    for _, x in ipairs { { aapp, "alice's app stream" }, { aapp2, "alice's app stream (memory)" } } do
      assert.is_false(x[1].done(), x[2] .. " was cut with the revoked callers'")
      x[1].close()
    end
    H.wait_for(function() local _, n = s.log():gsub('"note":"cut: ', "") return n >= 2 end, "the cut lines", 500)
  end)
end)
