-- orket worker, orket mcp serve, orket run and orket resume with an output whose reader
-- stopped reading: their lines are written by threads of their own (orket.serve.logwriter),
-- so the loop goes on. Before, each line was a blocking write on the loop: a full pipe
-- (orket serve --workers gives its workers its own stderr; a stalled log collector) froze
-- the worker, its leases unrenewed, SIGTERM unheard, and froze mcp serve's answers; orket
-- run and resume stayed in their write past SIGTERM and SIGINT, the run `running` and its
-- lock held. The pipe here is a FIFO the shell holds open and fills (64 KiB, a pipe's
-- default size) before the command starts, and never reads.
local H = require "tests.helpers"
local cjson = require "cjson"

-- runs `orket ARGS` in dir with stream (1 or 2) on a FIFO full and never read, stdin from
-- in.txt, the other stream to a file; killed after 20 s (its TERM unheard, 1 s more), or
-- sent SIGTERM after stop_after s (then killed 5 s later, the status its own: 137 when
-- killed) -> exit status, stdout's text (when on a file), seconds it took
local function stalled(dir, args, stream, stop_after)
  local other = stream == 1 and "2>err.txt" or ">out.txt"
  local timeout = stop_after and ("timeout --preserve-status -k 5 " .. stop_after) or "timeout -k 1 20"
  local t0 = os.time()
  os.execute(string.format("cd %s && rm -f full.fifo && mkfifo full.fifo && exec 3<>full.fifo && "
    .. "head -c 65536 /dev/zero >&3 && { %s %s %s <in.txt %d>full.fifo %s; echo $? >rc; }", H.quote(dir), timeout,
    H.quote(H.BIN), args, stream, other))
  return tonumber((H.read(dir .. "/rc") or ""):match("^%d+")), H.read(dir .. "/out.txt"), os.time() - t0
end

-- the notes example, each model answer taking 2 s: a run is still going when the signal comes
local function slow_notes()
  local dir = H.example("notes")
  local script = H.read(dir .. "/script.lua")
  H.write(dir .. "/script.lua", (script:gsub("return { rules",
    "for _, r in ipairs(rules) do r.reply.delay_ms = 2000 end\nreturn { rules", 1)))
  H.write(dir .. "/in.txt", "")
  return dir
end

local function runs_of(dir) return cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs end

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

  it("orket run and orket resume stop on SIGTERM with stdout on a full pipe: 130, interrupted", function()
    local dir = slow_notes()
    local rc, _, took = stalled(dir, "run NOTES --json", 1, 3)
    assert.equal(130, rc, H.read(dir .. "/err.txt"))
    assert(took <= 6, "took " .. took .. " s")
    local runs = runs_of(dir)
    assert.equal("interrupted", runs[1].status)
    -- what the reader never took is said on stderr
    assert.matches("stdout's reader stopped reading", H.read(dir .. "/err.txt"), 1, true)
    -- its lock given back: resumed, and stopped the same way
    rc, _, took = stalled(dir, "resume --json", 1, 3)
    assert.equal(130, rc, H.read(dir .. "/err.txt"))
    assert(took <= 6, "took " .. took .. " s")
    runs = runs_of(dir)
    assert.equal(1, #runs)
    assert.equal("interrupted", runs[1].status)
  end)

  it("orket run waits at its end for a reader that reads late, and gives it every event", function()
    local dir = H.example("notes")
    H.write(dir .. "/in.txt", "")
    -- the run ends (done in the store) while its events wait; the reader then takes them all
    os.execute(string.format("cd %s && mkfifo late.fifo && exec 3<>late.fifo && head -c 65536 /dev/zero >&3 && "
      .. "{ %s run NOTES --json <in.txt >late.fifo 2>err.txt & p=$!; i=0; "
      .. "while [ $i -lt 300 ] && ! %s runs --json 2>/dev/null | grep -q '\"status\":\"done\"'; do sleep 0.1; i=$((i+1)); done; "
      .. "sleep 1; kill -0 $p 2>/dev/null && echo waiting >alive.txt; "
      .. "timeout 3 cat <&3 >got.txt; wait $p; echo $? >rc; }", H.quote(dir), H.quote(H.BIN), H.quote(H.BIN)))
    assert.equal("0", (H.read(dir .. "/rc") or ""):match("^%d+"), H.read(dir .. "/err.txt"))
    assert.equal("waiting\n", H.read(dir .. "/alive.txt"))
    local got = (H.read(dir .. "/got.txt") or ""):gsub("^%z+", "")
    local last
    for line in got:gmatch("[^\n]+") do last = cjson.decode(line) end
    assert.equal("run_end", last and last.type, got:sub(-300))
    assert.equal("done", last.status)
    assert.equal("", H.read(dir .. "/err.txt"))
  end)
end)
