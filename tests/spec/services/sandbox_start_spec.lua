-- How often a starting sandbox is probed (orket.sandboxes.service.start_pause): soon at
-- first, then less often, never beyond its bound however long the start takes.
local service = require "orket.sandboxes.service"
local H = require "tests.helpers"

describe("a starting sandbox's probe pauses", function()
  it("start at 10 ms and double up to START_PROBE_MAX_MS", function()
    local seen, p = {}, nil
    for i = 1, 5 do
      p = service.start_pause(p)
      seen[i] = p
    end
    assert.same({ 10, 20, 40, 50, 50 }, seen)
    assert.equal(50, service.START_PROBE_MAX_MS)
  end)

  it("stay within their bound over a start as long as any timeout allows", function()
    -- a start_timeout_ms of an hour, probed at the shortest pause: more steps than that
    local p = nil
    for _ = 1, 3600000 // 10 do
      p = service.start_pause(p)
      assert(p >= 10 and p <= service.START_PROBE_MAX_MS and math.type(p) == "integer", tostring(p))
    end
  end)
end)

describe("a starting sandbox of several services", function()
  after_each(H.cleanup)
  it("reads its script's lines whole, one pipe at a time, never from a line's middle", function()
    local function reader()
      local got = {}
      return got, service.line_reader(function(line) got[#got + 1] = line end)
    end
    -- a line split across reads is taken once it ends
    local got, read = reader()
    read("orket: starting w")
    read("eb on port 8080 (web/)\n[api] x\nhalf")
    assert.same({ "orket: starting web on port 8080 (web/)", "[api] x" }, got)
    -- a service's long line cut before its end: its tail is dropped up to its end, so a
    -- script's words inside it never begin a line
    got, read = reader()
    read("[api] " .. string.rep("x", 1000) .. "orket: db ended (status 9)" .. string.rep("y", 374))
    read("y\norket: db is healthy\n")
    assert.same({ "orket: db is healthy" }, got)
    -- the supervise module's words are those the script prints
    local supervise = require "orket.sandboxes.supervise"
    assert.equal("orket: starting web ", supervise.SAY .. supervise.start_words("web"))
  end)

  it("reads a service's long lines in time linear in their length", function()
    -- a service writing 5000-byte lines (a JSON log, a stack trace on one line) cost its
    -- owner 1.4 s of CPU a 64 KiB read, and a 32 KiB read with no line end about 8 s: the
    -- patterns tried each start in a line. What it does now takes well under a millisecond
    -- here; the bound is thousands of times that, yet below what one such read cost before.
    local n, said = 0, {}
    local read = service.line_reader(function(line)
      n = n + 1
      if line:sub(1, 7) == "orket: " then said[#said + 1] = line end
    end)
    local t0 = os.clock()
    local long = "[api] " .. string.rep("x", 5000) .. "\n"
    for _ = 1, 4 do read(string.rep(long, 13)) end
    read("[api] " .. string.rep("y", 32768))
    read("y\norket: api is healthy\n")
    local spent = os.clock() - t0
    assert.equal(4 * 13 + 1, n)
    assert.same({ "orket: api is healthy" }, said)
    assert.is_true(spent < 3, string.format("%.2f s of CPU to read 300 KiB of lines", spent))
  end)

  it("is probed every 10 ms while a service starts", function()
    assert.equal(10, service.start_pause(50, true))
    assert.equal(10, service.start_pause(nil, true))
    assert.equal(50, service.start_pause(50, false))
  end)

  it("is started by a script whose waits and connects start no process", function()
    -- a pause was a `sleep` (and a $(printf) for its length) and a check a ( subshell )
    -- each time: a process or two every few ms while a service started
    local supervise = require "orket.sandboxes.supervise"
    local p = { port_env = "PORT", services = {
      { name = "db", dir = "", command = { "node", "db.js" } },
      { name = "web", dir = "", command = { "node", "web.js" }, entry = true, depends_on = { { name = "db" } } } } }
    local text = supervise.script(p, supervise.ports(p, 8080), { HOST = "127.0.0.1" }, 20000)
    assert.is_nil(text:find("sleep", 1, true))
    assert.is_nil(text:find("%$%([^(]")) -- a command substitution (arithmetic $(( )) starts none)
    assert.is_nil(text:find("exec env", 1, true))
    assert.matches("until { : 3<>/dev/tcp/127.0.0.1/8081; } 2>/dev/null; do", text, 1, true)
    assert.matches("  nap 0.010\n", text, 1, true)
  end)

  it("kills a health check command that hangs past its timeout, its children too, and says so", function()
    local supervise = require "orket.sandboxes.supervise"
    local mark = string.format("%d.%d", 300 + math.random(1, 99), math.random(100, 999)) -- a sleep's length none else has
    local p = { port_env = "PORT", services = {
      { name = "db", dir = "", command = { "sleep", "30" },
        health = { kind = "cmd", argv = { "sh", "-c", "sleep " .. mark .. "; :" }, interval_ms = 20, retries = 3,
          timeout_ms = 150 } },
      { name = "web", dir = "", command = { "sleep", "30" }, entry = true, depends_on = { { name = "db" } } } } }
    local text = supervise.script(p, supervise.ports(p, 8080), { HOST = "127.0.0.1" }, 5000)
    local path = H.tmpdir() .. "/start.sh"
    H.write(path, text)
    local t0 = orket.now()
    -- (bounded: before, a hung check held the start for good)
    local f = io.popen("timeout -k 1 10 bash " .. H.quote(path) .. " 2>&1")
    local out = f:read("a")
    local ok, _, status = f:close()
    assert.falsy(ok)
    assert.equal(1, status)
    -- three checks of 150 ms, not one that never ends
    assert.is_true(orket.now() - t0 < 3000, "the start waited on a hung check")
    local _, n = out:gsub("db's health check did not finish within 150 ms %(healthcheck.timeout%): counted as failed", "")
    assert.equal(3, n, out)
    assert.matches("db was not healthy after 3 checks, 20 ms apart", out, 1, true)
    local pg = io.popen("pgrep -f '^sleep " .. mark .. "'")
    local left = pg:read("a")
    pg:close()
    assert.equal("", left)
    -- a stop while a check is under way kills the check's group too (it is not in the
    -- services' group, which a stop reaches)
    p.services[1].health.timeout_ms = 8000
    H.write(path, supervise.script(p, supervise.ports(p, 8080), { HOST = "127.0.0.1" }, 9000))
    local out_path = H.tmpdir() .. "/out"
    local bg = io.popen("timeout -k 1 10 bash " .. H.quote(path) .. " > " .. H.quote(out_path) .. " 2>&1 & echo $!")
    local bash_pid = math.tointeger(tonumber(bg:read("l")))
    bg:close()
    local function running()
      local pc = io.popen("pgrep -f '^sleep " .. mark .. "'")
      local text = pc:read("a")
      pc:close()
      return text ~= ""
    end
    H.wait_for(function() orket.sleep(20) return running() end, "the check to start", 250)
    os.execute("kill -TERM " .. bash_pid)
    H.wait_for(function() orket.sleep(20) return not running() end, "the check to end with the stop", 150)
    assert.equal(150, supervise.check_timeout_ms({ timeout_ms = 150 }, 5000))
    assert.equal(5000, supervise.check_timeout_ms({}, 5000))
    assert.equal(30000, supervise.check_timeout_ms(nil, 60000))
  end)

  it("says in the system's words why its command could not run, as proc.run does", function()
    local uv = require "luv"
    local fds = assert(uv.pipe({ nonblock = true }, { nonblock = true }))
    local pipe = uv.new_pipe(false)
    assert(pipe:open(fds.read))
    local st = {}
    service.read_report(pipe, st, "sandbox: the runner refused", "sandbox: ")
    -- the confinement helper's report: its exec failed with ENOENT, then EACCES
    assert(uv.fs_write(fds.write, "E 2 nosuchprog\n"))
    H.wait_for(function() return st.failure end, "the report's E line")
    assert.equal("sandbox: cannot run nosuchprog: no such file or directory (ENOENT)", st.failure)
    st.failure = nil
    assert(uv.fs_write(fds.write, "E 13 ./app.sh\nE 99999 x\n"))
    H.wait_for(function() return st.failure and st.failure:find("99999", 1, true) end, "the report's last E line")
    -- an errno the system has no words for is said as its number
    assert.equal("sandbox: cannot run x (errno 99999)", st.failure)
    pipe:close()
    uv.fs_close(fds.write)
    assert.equal("cannot run ./app.sh: permission denied (EACCES)", require("orket.errors").exec_failure(13, "./app.sh"))
  end)

  it("is refused with what to do when its script would pass the kernel's cap on one argument", function()
    local supervise = require "orket.sandboxes.supervise"
    local p = { port_env = "PORT", services = {
      { name = "db", dir = "", command = { "node", "db.js" } },
      { name = "web", dir = "", command = { "node", "web.js" }, entry = true, depends_on = { { name = "db" } } } } }
    -- 40 values of 4096 bytes, as orket.lua's sandbox.env allows each: given to both services
    local base = {}
    for i = 1, 40 do base["V" .. i] = string.rep("v", 4096) end
    local argv, err = supervise.argv(p, 8080, base, 20000)
    assert.is_nil(argv)
    assert.matches("^the script that starts the services is %d+ bytes, over the 131072 one command line argument may "
      .. "have: make the services' environments", err)
    base = { V1 = string.rep("v", 4096) }
    argv = assert(supervise.argv(p, 8080, base, 20000))
    assert.equal("bash", argv[1])
  end)
end)
