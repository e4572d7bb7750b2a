-- orket.serve's sandbox proxy on the API's route (/v1/sandboxes/{id}/app/...): the app is
-- asked for the path as the client sent it, a trailing "/" and RFC 3986's sub-delimiters,
-- ":" and "@" included (an app that redirects /docs to /docs/ looped forever when the "/"
-- was dropped; /items:search reached it as /items%3Asearch), with what the router refuses
-- ("." and "..", an encoded "/", an empty segment) still refused. Raw sockets: a client
-- library would normalise some of these paths itself.
local httpd = require "orket.c.httpd"
local ops = require "orket.store.sandboxes"
local task = require "orket.task"
local uv = require "luv"
local cjson = require "cjson"
local H = require "tests.helpers"
local F = require "tests.fixtures"

describe("orket.serve's proxy: the app's path", function()
  after_each(function() H.cleanup() end)

  -- a local-use server of a store with one healthy sandbox whose app is at sock
  local function server(sock)
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local srv, stop = F.served { dir = dir, db = db, host = "127.0.0.1", port = 0 }
    local pid = uv.os_getpid()
    local id = ops.insert(db, { target = "main", port = 0, socket = sock, command = "[]", owner_pid = pid,
      owner_start = require("orket.sandboxes.service").start_time(pid) })
    ops.set_status(db, id, "healthy")
    return srv, id, stop
  end

  -- an app answering each request with the target it got ({path, query} as JSON); for a
  -- path ending "/go/", a 303 to the relative "next"
  local function app()
    local sock = H.tmpdir() .. "/app.sock"
    local up = assert(httpd.listen { unix = sock })
    task.spawn(function()
      while true do
        local req = up:accept()
        if not req then return end
        task.spawn(function()
          if req.path:find("/go/$") then
            req:respond(303, { "Location: next" }, "")
          else
            req:respond(200, { "Content-Type: application/json" },
              cjson.encode { path = req.path, query = req.raw_query or cjson.null })
          end
          req:close()
        end)
      end
    end)
    return up, sock
  end

  -- the answer to a GET of target, sent as these bytes: status, headers' text, body
  local function get(port, target)
    local c = uv.new_tcp()
    local data, closed, connected = {}, false, false
    c:connect("127.0.0.1", port, function(err)
      assert(not err, err)
      connected = true
      c:write("GET " .. target .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
      c:read_start(function(_, d) if d then data[#data + 1] = d else closed = true end end)
    end)
    H.wait_for(function() return connected and closed end, "the answer to " .. target)
    c:close()
    local text = table.concat(data)
    local head, body = text:match("^(.-\r\n)\r\n(.*)$")
    return tonumber(text:match("^HTTP/1.1 (%d+)")), head, body
  end

  it("asks the app for the path as sent: a trailing slash, sub-delimiters, ':' and '@', escapes", function()
    local up, sock = app()
    local srv, id, stop = server(sock)
    local ok, e = pcall(function()
      local port = srv:port()
      for _, prefix in ipairs { "/v1/sandboxes/" .. id .. "/app", "/v1/projects/default/sandboxes/" .. id .. "/app" } do
        local cases = {
          -- sent (after the prefix) -> the app's path, its query
          { "/dir/", "/dir/" }, { "/dir/?x=1", "/dir/", "x=1" }, { "/a/b/c/", "/a/b/c/" },
          { "", "/" }, { "/", "/" }, { "?q=1", "/", "q=1" }, { "/?q=1", "/", "q=1" },
          { "/items:search", "/items:search" }, { "/@user/x", "/@user/x" }, { "/x;p=1?y", "/x;p=1", "y" },
          { "/a,b", "/a,b" }, { "/a=b", "/a=b" }, { "/a+b", "/a+b" }, { "/f(1)!*'$&+~", "/f(1)!*'$&+~" },
          { "/v1/things:batchGet/", "/v1/things:batchGet/" },
          -- escapes as sent, not decoded and made again
          { "/a%20b", "/a%20b" }, { "/caf%C3%A9/", "/caf%C3%A9/" }, { "/%41%7e", "/%41%7e" },
          { "/a%3Ab/", "/a%3Ab/" },
          -- what RFC 3986 has no place for in a path (a browser sends it as typed): escaped
          { "/a[0]|b", "/a%5B0%5D%7Cb" },
          -- the route's own words, in the app's path, are the app's
          { "/sandboxes/1/app/", "/sandboxes/1/app/" },
        }
        for _, c in ipairs(cases) do
          local st, _, body = get(port, prefix .. c[1])
          assert.equal(200, st, prefix .. c[1] .. ": " .. tostring(body))
          local got = cjson.decode(body)
          assert.same({ c[2], c[3] or cjson.null }, { got.path, got.query }, prefix .. c[1])
        end
        -- refused as on every route: ".", "..", encoded or not, an encoded "/", an empty segment
        for _, bad in ipairs { "/a/../b", "/..", "/./x", "/%2e%2E/x", "/a%2Fb", "/a%2fb/", "/a//b", "//", "/a%5Cb",
          "/a%00b", "/a%0D%0Ab" } do
          local st, _, body = get(port, prefix .. bad)
          assert.equal(400, st, prefix .. bad)
          assert.equal("bad_path", cjson.decode(body).error.code, prefix .. bad)
        end
        -- a relative redirect is resolved against the path the app was asked for, its "/" kept
        local st, head = get(port, prefix .. "/form/go/")
        assert.equal(303, st)
        assert.equal(prefix .. "/form/go/next", head:match("\r\n[Ll]ocation: ([^\r]*)"))
      end
    end)
    stop()
    up:close()
    assert(ok, e)
  end)
end)
