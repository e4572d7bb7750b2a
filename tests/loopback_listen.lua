-- tests.loopback_listen: the listening end of the tests' own servers run as programs (the
-- fake model server, the fault proxy): on 127.0.0.1 only, each connection handed to serve,
-- SIGPIPE ignored (a client that hangs up mid-answer must not end the server), and
-- "listening http://127.0.0.1:PORT" printed for whoever started it.
local uv = require "luv"

--- listen(port, serve) -> port: port 0 for any free one; serve(sock) for each connection
return function(port, serve)
  local sigpipe = uv.new_signal()
  sigpipe:start("sigpipe", function() end)
  sigpipe:unref()
  local server = uv.new_tcp()
  assert(server:bind("127.0.0.1", port))
  assert(server:listen(4096, function(err)
    if err then return end
    local sock = uv.new_tcp()
    server:accept(sock)
    sock:nodelay(true)
    serve(sock)
  end))
  local bound = server:getsockname().port
  io.stdout:write("listening http://127.0.0.1:", bound, "\n")
  io.stdout:flush()
  return bound
end
