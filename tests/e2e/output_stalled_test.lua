-- orket worker and orket mcp serve with an output whose reader stopped reading: their lines
-- are written by threads of their own (orket.serve.logwriter), so the loop goes on. Before,
-- each line was a blocking write on the loop: a full pipe (orket serve --workers gives its
-- workers its own stderr; a stalled log collector) froze the worker, its leases unrenewed,
-- SIGTERM unheard, and froze mcp serve's answers. The pipe here is a FIFO the shell holds
-- open and fills (64 KiB, a pipe's default size) before the command starts, and never reads.
local H = require "tests.helpers"
local cjson = require "cjson"

-- runs `orket ARGS` in dir with stream (1 or 2) on a FIFO full and never read, stdin from
-- in.txt, the other stream to a file; killed after 20 s (its TERM unheard, 1 s more) ->
-- exit status, stdout's text (when on a file)
local function stalled(dir, args, stream)
  local other = stream == 1 and "2>err.txt" or ">out.txt"
  os.execute(string.format("cd %s && mkfifo full.fifo && exec 3<>full.fifo && head -c 65536 /dev/zero >&3 && "
    .. "{ timeout -k 1 20 %s %s <in.txt %d>full.fifo %s; echo $? >rc; }", H.quote(dir), H.quote(H.BIN), args, stream,
    other))
  return tonumber((H.read(dir .. "/rc") or ""):match("^%d+")), H.read(dir .. "/out.txt")
end

describe("output whose reader stopped", function()
  after_each(H.cleanup)

  it("orket worker works its run to the end with stdout on a full pipe", function()
    local dir = H.example("notes")
    H.write(dir .. "/in.txt", "")
    local rc = stalled(dir, "worker --start NOTES --drain", 1)
    assert.equal(0, rc, H.read(dir .. "/err.txt"))
    local runs = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs
    assert.equal("done", runs[1].status)
  end)

  it("orket mcp serve answers and runs with stderr on a full pipe", function()
    local dir = H.example("notes")
    H.write(dir .. "/in.txt", table.concat({
      '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},'
        .. '"clientInfo":{"name":"t","version":"1"}}}',
      '{"jsonrpc":"2.0","method":"notifications/initialized"}',
      -- the run's events are mcp serve's log lines, on stderr
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"start_run","arguments":{"target":"NOTES"}}}',
      '{"jsonrpc":"2.0","id":2,"method":"ping"}',
    }, "\n") .. "\n")
    local rc, out = stalled(dir, "mcp serve", 2)
    assert.equal(0, rc, out)
    local ids = {}
    for line in (out or ""):gmatch("[^\n]+") do ids[cjson.decode(line).id] = true end
    assert.is_true(ids[1] and ids[2], out)
    -- the run it started, stopped at stdin's end, is resumable: not stuck half-written
    local runs = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs
    assert.equal(1, #runs)
    assert.is_true(runs[1].status ~= "running", runs[1].status)
  end)
end)
