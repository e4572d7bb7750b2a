-- orket.c.httpd on a unix socket: the file's mode, the peer's uid as the request's remote,
-- what it refuses to replace, argument errors. The client is a luv pipe.
local httpd = require "orket.c.httpd"
local H = require "tests.helpers"
local task = require "orket.task"
local uv = require "luv"

-- ask(path, text) -> what the server answered before closing or 2 s
local function ask(path, text)
  local pipe = uv.new_pipe(false)
  local got, done = {}, false
  pipe:connect(path, function(err)
    if err then done = true return end
    pipe:write(text)
    pipe:read_start(function(_, d)
      if d then got[#got + 1] = d else done = true end
    end)
  end)
  H.wait_for(function() return done or table.concat(got):find("\r\n\r\n.*}") end, "an answer", 200)
  pipe:close()
  return table.concat(got)
end

describe("orket.c.httpd on a unix socket", function()
  after_each(function() H.cleanup() end)

  it("listens at a path with mode 0600 and names this user's peers 'unix'", function()
    local path = H.tmpdir() .. "/s.sock"
    local srv = assert(httpd.listen { unix = path })
    assert.equal(384, uv.fs_stat(path).mode & 511)
    local remote
    task.spawn(function()
      local req = srv:accept()
      remote = req.remote
      req:respond(200, { "Content-Type: application/json" }, "{}")
      req:close()
    end)
    local answer = ask(path, "GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert.matches("^HTTP/1.1 200", answer)
    assert.equal("unix", remote)
    srv:close()
  end)

  it("replaces a socket left behind, refuses any other file, and needs host or unix", function()
    local dir = H.tmpdir()
    local a = assert(httpd.listen { unix = dir .. "/s.sock" })
    a:close()
    local b = assert(httpd.listen { unix = dir .. "/s.sock" }) -- the old socket file is replaced
    b:close()
    H.write(dir .. "/file", "keep me")
    local srv, err, code = httpd.listen { unix = dir .. "/file" }
    assert.is_nil(srv)
    assert.matches("exists and is not a socket", err)
    assert.equal("ELISTEN", code)
    assert.equal("keep me", H.read(dir .. "/file"))
    assert.has_error(function() httpd.listen {} end, "bad argument #1 to 'listen' (give host or unix, a string)")
    assert.has_error(function() httpd.listen { host = "127.0.0.1", unix = dir .. "/t.sock" } end,
      "bad argument #1 to 'listen' (give host or unix, a string)")
  end)
end)
